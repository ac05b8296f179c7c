//! The projection and what shapes rows: fields and aliases, subquery
//! fields, `field.*`, values SSP leaves unevaluated, `SELECT VALUE`, `OMIT`
//! and `FETCH`.

use super::*;
use crate::engine::value::FieldName;

impl Lower<'_> {
    /// The projection list.
    pub(super) fn fields(&self, fields: Vec<sql::Field>) -> PResult<Vec<Field>> {
        fields
            .into_iter()
            .map(|f| match f {
                sql::Field::All => Ok(Field::All),
                sql::Field::Single(s) => self.field(s),
            })
            .collect()
    }

    fn field(&self, mut s: sql::field::Selector) -> PResult<Field> {
        s.expr = self.inline_top(s.expr)?;
        let alias = s.alias;
        let alias = |l: &Self| -> PResult<Option<Vec<PathPart>>> {
            alias
                .map(|a| l.idiom_path(a, "AS", "an alias name"))
                .transpose()
        };
        // `count(<-likes)`, `$user IN <-member<-user.id`: values over a
        // traversal from the row.
        if let Some((left, parts)) = traversal_value_of(&s.expr) {
            if let Some(left) = left {
                self.expr(left.clone())?;
            }
            self.traversal_value(parts)?;
            return Ok(Field::Computed {
                alias: alias(self)?,
            });
        }
        // `count(SELECT 1 FROM $parent<-playing WHERE ...)`, `(SELECT VALUE
        // record::id(id) FROM $this->wearing->asset)`: numbers or values,
        // no records, so no members; left unevaluated when they cannot
        // fail the query.
        if let Some(q) = computed_subquery_of(&s.expr) {
            let mut q = q.clone();
            let value = matches!(q.fields, sql::Fields::Value(_));
            if value {
                let sql::Fields::Value(selector) = &q.fields else {
                    unreachable!("just matched")
                };
                if selector.alias.is_some() || !self.plain_value(&selector.expr) {
                    return Err(self.refuse(
                        "VALUE",
                        "SELECT VALUE in a subquery",
                        "a subquery projection selects records: `(SELECT * FROM ...)`; `SELECT \
                         VALUE` of a field or of `record::id(id)` is a value SSP leaves as is",
                    ));
                }
                q.fields = sql::Fields::Select(vec![sql::Field::All]);
            }
            let query = self.select(q, true)?;
            if !query.fetch.is_empty() || !query.fetch_nested.is_empty() {
                return Err(self.refuse(
                    "FETCH",
                    "FETCH in a counted subquery",
                    "a subquery counted or shown as values fetches nothing",
                ));
            }
            if let Some(why) = computed_subquery_refusal(&query) {
                return Err(self.refuse("(", "subquery value", why));
            }
            return Ok(Field::Computed {
                alias: alias(self)?,
            });
        }
        match s.expr {
            sql::Expr::Select(q) => Ok(Field::Subquery {
                query: Box::new(self.select(*q, true)?),
                index: None,
                alias: alias(self)?,
            }),
            sql::Expr::Idiom(idiom) => {
                let mut parts = idiom.0.into_iter();
                let first = parts.next();
                let rest: Vec<sql::Part> = parts.collect();
                match first {
                    Some(sql::Part::Start(sql::Expr::Select(q))) => {
                        self.subquery_field(*q, rest, alias(self)?)
                    }
                    // `author.*`: the linked record, whole.
                    Some(sql::Part::Field(name))
                        if matches!(rest.first(), Some(sql::Part::All)) =>
                    {
                        let name = FieldName::from(name.as_str());
                        if rest.len() > 1 {
                            return Err(self.refuse(
                                ".*",
                                "path after `.*`",
                                "project the linked record whole (`author.* AS a`) or one of \
                                 its fields (`author.name`)",
                            ));
                        }
                        let alias =
                            alias(self)?.unwrap_or_else(|| vec![PathPart::Field(name.clone())]);
                        Ok(Field::LinkAll { field: name, alias })
                    }
                    first => Ok(Field::Expr {
                        expr: self.expr(sql::Expr::Idiom(sql::Idiom(
                            first.into_iter().chain(rest).collect(),
                        )))?,
                        alias: alias(self)?,
                    }),
                }
            }
            e => {
                let graph = contains_graph(&e);
                let expr = self.expr(e).map_err(|err| {
                    if graph {
                        self.refuse(
                            "-",
                            "expression over a graph traversal",
                            "a traversal is projected as a value (`<-likes<-user AS fans`, \
                             `count(<-likes)`, `$user IN <-likes<-user`)",
                        )
                    } else {
                        err
                    }
                })?;
                Ok(Field::Expr {
                    expr,
                    alias: alias(self)?,
                })
            }
        }
    }

    /// `->likes->post.title`, `<-owns<-user.id`: steps to named tables,
    /// then a path.
    fn traversal_value(&self, parts: &[sql::Part]) -> PResult<()> {
        let steps = self.traversal(parts)?;
        if steps.is_empty() {
            return Err(self.refuse(
                "-",
                "graph traversal",
                "each step of a projected traversal names one table (not `?`, a list or a filter)",
            ));
        }
        self.parts(parts[steps.len()..].to_vec(), "a traversal")?;
        Ok(())
    }

    /// A value no row can fail on: a field path, or `record::id`/`meta::tb`
    /// of `id`.
    fn plain_value(&self, e: &sql::Expr) -> bool {
        match self.expr(e.clone()) {
            Ok(Expr::Field(_)) => true,
            Ok(Expr::Call { func, .. }) => {
                // The parser takes these of `id` or `$parent.id` only.
                matches!(func, Function::RecordKey | Function::RecordTable)
            }
            _ => false,
        }
    }

    /// The one expression after `SELECT VALUE`. A subquery there would be
    /// a value made of records, which is not a projection of them.
    pub(super) fn value_field(&self, s: sql::field::Selector) -> PResult<Field> {
        if s.alias.is_some() {
            return Err(self.refuse(
                "AS",
                "SELECT VALUE with an alias",
                "`SELECT VALUE` shows the value itself, without a name",
            ));
        }
        if is_subquery(&s.expr) {
            return Err(self.refuse(
                "(",
                "SELECT VALUE of a subquery",
                "project the subquery as a field: `SELECT *, (SELECT ...) AS x FROM ...`",
            ));
        }
        // A value SSP leaves unevaluated (`SELECT VALUE count(->owns->place)
        // FROM $user`) as well as one it evaluates: either way the members
        // are the `FROM` records. A linked record whole (`VALUE author.*`)
        // is a member of the re-query tier's answer only.
        match self.field(s)? {
            f @ (Field::Expr { .. } | Field::Computed { .. }) => Ok(f),
            _ => Err(self.refuse(
                "VALUE",
                "SELECT VALUE of a linked record",
                "`SELECT VALUE` of a field or of a value computed from the row",
            )),
        }
    }

    /// `(SELECT ...)[n] [AS alias]`, and `(SELECT ...)[n].path` (a value of
    /// the rows whose records are no members, see [`Field::Computed`]).
    fn subquery_field(
        &self,
        q: sql::SelectStatement,
        rest: Vec<sql::Part>,
        alias: Option<Vec<PathPart>>,
    ) -> PResult<Field> {
        let query = self.select(q, true)?;
        let mut rest = rest.into_iter();
        let index = match rest.next() {
            None => None,
            Some(sql::Part::Last) => Some(Pick::Last),
            Some(p @ (sql::Part::Value(_) | sql::Part::First)) => {
                match self.parts(vec![p], "a subquery")?.as_slice() {
                    [PathPart::Index(i)] => Some(Pick::At(*i)),
                    _ => None,
                }
            }
            Some(sql::Part::Field(_)) => {
                return Err(self.refuse(
                    ")",
                    "path after a subquery",
                    "a subquery may only be projected whole, as `(SELECT ...)[n] AS alias`",
                ));
            }
            Some(other) => {
                self.parts(vec![other], "a subquery")?;
                return Err(self.refuse(
                    ")",
                    "path after a subquery",
                    "a subquery may only be projected whole, as `(SELECT ...)[n] AS alias`",
                ));
            }
        };
        let after: Vec<sql::Part> = rest.collect();
        if !after.is_empty() {
            // `(SELECT name FROM ...)[0].name AS by`.
            self.parts(after, "a subquery")?;
            if let Some(why) = computed_subquery_refusal(&query) {
                return Err(self.refuse("(", "path after a subquery", why));
            }
            return Ok(Field::Computed { alias });
        }
        Ok(Field::Subquery {
            query: Box::new(query),
            index,
            alias,
        })
    }

    /// `[FETCH field, ...]`: fields of the row, and paths of field names
    /// through them (`FETCH comments.user`: `comments`, and `user` in each
    /// record fetched there; measured on 3.3.5, `comments` is fetched
    /// whether or not it is listed too).
    #[allow(clippy::type_complexity)]
    pub(super) fn fetch(
        &self,
        fetchs: sql::Fetchs,
    ) -> PResult<(Vec<FieldName>, Vec<(FieldName, Vec<FieldName>)>)> {
        let mut fetch = Vec::new();
        let mut nested = Vec::new();
        for f in fetchs.0 {
            let path = self.plain_path(&f.0, "FETCH", "a field to fetch")?;
            let names: Option<Vec<FieldName>> = path
                .iter()
                .map(|p| match p {
                    PathPart::Field(name) => Some(name.clone()),
                    _ => None,
                })
                .collect();
            let Some((first, rest)) = names.as_deref().and_then(|n| n.split_first()) else {
                return Err(self.refuse(
                    "FETCH",
                    "FETCH of an indexed path",
                    "fetch fields by name (`FETCH author`, `FETCH comments.user`)",
                ));
            };
            if !fetch.contains(first) {
                fetch.push(first.clone());
            }
            if !rest.is_empty() {
                nested.push((first.clone(), rest.to_vec()));
            }
        }
        Ok((fetch, nested))
    }

    /// A path of the row in `OMIT` or `FETCH`: `a.b`, `a[0]`.
    pub(super) fn plain_path(
        &self,
        e: &sql::Expr,
        clause: &str,
        what: &str,
    ) -> PResult<Vec<PathPart>> {
        match e {
            sql::Expr::Idiom(i) => self.idiom_path(i.clone(), clause, what),
            _ => Err(self.refuse(
                clause,
                &format!("{clause} of an expression"),
                &format!("expected {what}; {SUPPORTED}"),
            )),
        }
    }

    /// A path of the row starting with a field name (an alias, an `ORDER
    /// BY` item, ...).
    pub(super) fn idiom_path(
        &self,
        i: sql::Idiom,
        clause: &str,
        what: &str,
    ) -> PResult<Vec<PathPart>> {
        if !matches!(i.0.first(), Some(sql::Part::Field(_))) {
            if matches!(i.0.first(), Some(sql::Part::Graph(_))) {
                return Err(self.refuse(
                    "-",
                    "graph traversal",
                    "graph traversal is not supported",
                ));
            }
            return Err(self.refuse(
                clause,
                &format!("{clause} of an expression"),
                &format!("expected {what}; {SUPPORTED}"),
            ));
        }
        self.parts(i.0, "a field")
    }
}

/// The traversal of a projected value SSP leaves unevaluated, and the
/// value on the left of `IN`: `<-owns<-user` itself, `count(<-likes)`,
/// `$user IN <-member<-user.id`.
fn traversal_value_of(e: &sql::Expr) -> Option<(Option<&sql::Expr>, &[sql::Part])> {
    fn graph(e: &sql::Expr) -> Option<&[sql::Part]> {
        match e {
            sql::Expr::Idiom(i) if matches!(i.0.first(), Some(sql::Part::Graph(_))) => {
                Some(i.0.as_slice())
            }
            _ => None,
        }
    }
    match e {
        sql::Expr::Idiom(_) => graph(e).map(|p| (None, p)),
        sql::Expr::FunctionCall(call) if matches!(&call.receiver, sql::Function::Normal(n) if n.eq_ignore_ascii_case("count")) => {
            match call.arguments.as_slice() {
                [arg] => graph(arg).map(|p| (None, p)),
                _ => None,
            }
        }
        sql::Expr::Binary {
            left,
            op: sql::BinaryOperator::Inside,
            right,
        } if reads_no_row(left) => graph(right).map(|p| (Some(&**left), p)),
        _ => None,
    }
}

/// The subquery of `count((SELECT ...))`, or a `SELECT VALUE` subquery
/// (no path after it): values of the row, not records.
fn computed_subquery_of(e: &sql::Expr) -> Option<&sql::SelectStatement> {
    match e {
        sql::Expr::FunctionCall(call) if matches!(&call.receiver, sql::Function::Normal(n) if n.eq_ignore_ascii_case("count")) => {
            match call.arguments.as_slice() {
                [sql::Expr::Select(q)] => Some(q),
                _ => None,
            }
        }
        sql::Expr::Select(q) if matches!(q.fields, sql::Fields::Value(_)) => Some(q),
        _ => None,
    }
}

/// Whether `e` is a subquery, alone or with a path after it.
fn is_subquery(e: &sql::Expr) -> bool {
    match e {
        sql::Expr::Select(_) => true,
        sql::Expr::Idiom(i) => matches!(i.0.first(), Some(sql::Part::Start(sql::Expr::Select(_)))),
        _ => false,
    }
}

/// Whether `e` reads nothing of the row: a `$param` (not `$this`/`$parent`)
/// or a literal record id, the left side of `$user IN <-member<-user`.
fn reads_no_row(e: &sql::Expr) -> bool {
    match e {
        sql::Expr::Param(_) => true,
        sql::Expr::Idiom(i) => matches!(i.0.first(), Some(sql::Part::Start(sql::Expr::Param(_)))),
        sql::Expr::Literal(sql::Literal::RecordId(_)) => true,
        _ => false,
    }
}

/// Whether a traversal appears anywhere in `e`.
fn contains_graph(e: &sql::Expr) -> bool {
    match e {
        sql::Expr::Idiom(i) => i.0.iter().any(|p| match p {
            sql::Part::Graph(_) => true,
            sql::Part::Start(e) | sql::Part::Value(e) | sql::Part::Where(e) => contains_graph(e),
            _ => false,
        }),
        sql::Expr::Binary { left, right, .. } => contains_graph(left) || contains_graph(right),
        sql::Expr::Prefix { expr, .. } | sql::Expr::Postfix { expr, .. } => contains_graph(expr),
        sql::Expr::FunctionCall(c) => c.arguments.iter().any(contains_graph),
        sql::Expr::Literal(sql::Literal::Array(items)) => items.iter().any(contains_graph),
        _ => false,
    }
}

/// Why a subquery shown only through a path after it cannot be left
/// unevaluated: SurrealDB fails the whole query when one of its functions
/// gets a value of the wrong type or its window a value that is not an
/// integer, which depends on the data SSP would not look at.
fn computed_subquery_refusal(q: &Select) -> Option<&'static str> {
    fn calls(e: &Expr) -> bool {
        match e {
            // Taken only of `id` or `$parent.id` (see `expr::call`): a record
            // id in every row, so they never fail.
            Expr::Call {
                func: Function::RecordKey | Function::RecordTable,
                ..
            } => false,
            Expr::Call { .. } | Expr::Arith { .. } | Expr::Subquery(_) | Expr::Traversal(_) => true,
            Expr::Literal(_) | Expr::Field(_) | Expr::Param { .. } | Expr::Now { .. } => false,
            Expr::Array(items) => items.iter().any(calls),
            Expr::Not(e) | Expr::Get { of: e, .. } => calls(e),
            Expr::Binary { lhs, rhs, .. } => calls(lhs) || calls(rhs),
        }
    }
    let window_reads_parent = [&q.limit, &q.start]
        .into_iter()
        .flatten()
        .any(|e| matches!(e, Expr::Param { name, .. } if name.eq_ignore_ascii_case("parent")));
    let nested = q.fields.iter().any(|f| match f {
        Field::Subquery { query, .. } => computed_subquery_refusal(query).is_some(),
        Field::Expr { expr, .. } => calls(expr),
        _ => false,
    });
    if q.filter.as_ref().is_some_and(calls) || window_reads_parent || nested {
        Some(
            "a subquery with functions, or a window read from `$parent`, is shown only whole \
             (`(SELECT ...)[0] AS x`): SurrealDB may fail the query on its data",
        )
    } else {
        None
    }
}
