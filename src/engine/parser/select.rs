//! The statement, `SELECT` and its clauses: `FROM`, `WHERE`, `ORDER BY`,
//! `LIMIT`/`START` and the clauses SSP refuses.

use super::*;

const ONE_TABLE: &str = "a view reads exactly one table: `FROM <table>`";
const ONE_SELECT: &str = "a view must be exactly one SELECT statement";

/// What a `FROM` target lowers to: `(table, ids, graph)`, see [`Select`].
type Target = (String, Option<Expr>, Vec<GraphStep>);

const COUNT_SHAPE: &str = "SSP maintains `SELECT count() FROM <table or traversal> [WHERE ...] GROUP ALL` \
     (its members are the records counted); other groupings and aggregates run in the re-query tier";

impl Lower<'_> {
    /// The whole query: exactly one `SELECT`.
    pub(super) fn query(&self, ast: sql::Ast) -> PResult<Select> {
        let mut statements = ast.expressions.into_iter();
        let Some(first) = statements.next() else {
            return Err(self.error("", "empty query", "expected a SELECT statement", None));
        };
        let several = statements.next().is_some();
        match first {
            sql::TopLevelExpr::Expr(sql::Expr::Select(_)) if several => {
                Err(self.refuse(";", "several statements", ONE_SELECT))
            }
            sql::TopLevelExpr::Expr(sql::Expr::Select(s)) => {
                let select = self.select(*s, false)?;
                self.clock_in_where_only(&select)?;
                Ok(select)
            }
            sql::TopLevelExpr::Expr(e @ (sql::Expr::Binary { .. } | sql::Expr::Postfix { .. }))
                if starts_with_select(&e) =>
            {
                // SurrealDB parses a statement as an expression:
                // `SELECT * FROM t ORDER BY a = 1` is `(SELECT ...) = 1`.
                Err(self.refuse(
                    &operator_text(&e),
                    "operator applied to the query",
                    "a view must be exactly one plain SELECT statement",
                ))
            }
            sql::TopLevelExpr::Expr(e) => Err(self.statement(&e)),
            other => {
                let kw = match other {
                    sql::TopLevelExpr::Begin => "BEGIN",
                    sql::TopLevelExpr::Cancel => "CANCEL",
                    sql::TopLevelExpr::Commit => "COMMIT",
                    sql::TopLevelExpr::Access(_) => "ACCESS",
                    sql::TopLevelExpr::Kill(_) => "KILL",
                    sql::TopLevelExpr::Live(_) => "LIVE",
                    sql::TopLevelExpr::Option(_) => "OPTION",
                    sql::TopLevelExpr::Use(_) => "USE",
                    sql::TopLevelExpr::Show(_) => "SHOW",
                    sql::TopLevelExpr::Expr(_) => "expression",
                };
                Err(self.refuse(kw, &format!("{kw} statement"), ONE_SELECT))
            }
        }
    }

    /// A statement or expression where a `SELECT` was expected.
    fn statement(&self, e: &sql::Expr) -> ParseError {
        match statement_keyword(e) {
            Some(kw) => self.refuse(kw, &format!("{kw} statement"), ONE_SELECT),
            None => self.refuse("", "expression statement", ONE_SELECT),
        }
    }

    /// A `SELECT`; `nested` inside a subquery projection.
    /// Refuses `time::now()` anywhere but in a `WHERE` (of the view or of
    /// a subquery projection): there the engine knows when each record's
    /// answer changes (see [`crate::engine::clock`]); in a projection or a
    /// window it would be a value that changes with nothing to follow.
    fn clock_in_where_only(&self, select: &Select) -> PResult<()> {
        let refused = || {
            Err(self.refuse(
                "time::now",
                "`time::now()` outside `WHERE`",
                "SSP follows `time::now()` in `WHERE` comparisons only: `expires > time::now()`, \
                 `ping > time::now() - 35s`",
            ))
        };
        let exprs = [&select.ids, &select.limit, &select.start];
        if exprs.into_iter().flatten().any(Expr::reads_the_clock) {
            return refused();
        }
        for field in &select.fields {
            match field {
                Field::Expr { expr, .. } if expr.reads_the_clock() => return refused(),
                Field::Subquery { query, .. } => self.clock_in_where_only(query)?,
                _ => {}
            }
        }
        Ok(())
    }

    pub(super) fn select(&self, s: sql::SelectStatement, nested: bool) -> PResult<Select> {
        let Parts {
            fields,
            omit,
            only,
            what,
            cond,
            order,
            limit,
            start,
            fetch,
            mut refused,
        } = parts(s);
        // `SELECT count() FROM ... GROUP ALL`: its members are the records
        // it counts (see `counted`).
        if !nested && refused.group == Some(true) {
            refused.group = None;
            if refused.refusal().is_none()
                && let Some(counted) =
                    self.counted(&fields, &omit, only, &order, &limit, &start, &fetch)
            {
                let (table, ids, graph) = self.from(what, nested)?;
                if ids.is_some() && graph.is_empty() {
                    // A list may name a record twice: SurrealDB counts it
                    // twice, the edges hold it once. (The edges of the one
                    // record a traversal starts from are each one record.)
                    return Err(self.refuse("GROUP", "GROUP ALL", COUNT_SHAPE));
                }
                let filter = match (cond.map(|c| self.expr(c.0)).transpose()?, counted.1) {
                    (Some(c), Some(e)) => Some(Expr::Binary {
                        op: BinOp::And,
                        lhs: Box::new(c),
                        rhs: Box::new(e),
                    }),
                    (c, e) => c.or(e),
                };
                return Ok(Select {
                    fields: vec![Field::Computed {
                        alias: Some(counted.0),
                    }],
                    table,
                    ids,
                    graph,
                    filter,
                    ..Select::default()
                });
            }
            refused.group = Some(true);
        }
        // Refused after the projection and `FROM`, as they come in the text.
        let clauses = match refused.refusal() {
            Some((needle, construct, why)) => Err(self.refuse(needle, construct, why)),
            None => Ok(()),
        };
        let (value, fields) = match fields {
            sql::Fields::Value(selector) => {
                if nested {
                    return Err(self.refuse(
                        "VALUE",
                        "SELECT VALUE in a subquery",
                        "a subquery projection selects records: `(SELECT * FROM ...)`",
                    ));
                }
                (true, vec![self.value_field(*selector)?])
            }
            sql::Fields::Select(fields) => (false, self.fields(fields)?),
        };
        let omit = omit
            .iter()
            .map(|e| self.plain_path(e, "OMIT", "a field to omit"))
            .collect::<PResult<Vec<_>>>()?;
        if only && nested {
            return Err(self.refuse(
                "ONLY",
                "ONLY in a subquery",
                "`FROM ONLY` is supported in the outer query only",
            ));
        }
        let (table, ids, graph) = self.from(what, nested)?;
        if only && !graph.is_empty() {
            return Err(self.refuse(
                "ONLY",
                "graph traversal",
                "`FROM ONLY` takes a record id, not a traversal",
            ));
        }
        clauses?;
        let filter = cond.map(|c| self.expr(c.0)).transpose()?;
        let order = match order {
            None => Vec::new(),
            Some(sql::order::Ordering::Random) => {
                return Err(self.refuse(
                    "RAND",
                    "ORDER BY RAND()",
                    "random order cannot be maintained",
                ));
            }
            Some(sql::order::Ordering::Order(list)) => list
                .0
                .into_iter()
                .map(|o| self.order(o))
                .collect::<PResult<_>>()?,
        };
        let limit = limit
            .map(|l| self.count(l.0, "LIMIT", nested))
            .transpose()?;
        let start = start
            .map(|l| self.count(l.0, "START", nested))
            .transpose()?;
        let (fetch, fetch_nested) = match fetch {
            Some(f) => self.fetch(f)?,
            None => (Vec::new(), Vec::new()),
        };
        Ok(Select {
            value,
            fields,
            omit,
            only,
            table,
            ids,
            filter,
            order,
            limit,
            start,
            fetch,
            fetch_nested,
            no_edges_in: Vec::new(),
            graph,
            through: None,
            graph_checks: None,
        })
    }

    /// For a `GROUP ALL` query of the one field `count()` or `count(expr)`
    /// (with or without `AS`) and no other clause but `WHERE`: the field's
    /// name, and `expr` (a row counts when it is truthy, as SurrealDB's
    /// `count(v)`). SurrealDB answers `[{ count: n }]`, `n` the number of
    /// such rows; the view's members are those rows' records, so the count
    /// is the number of edges, and a client learns when it changes. `None`
    /// for anything else (`GROUP ALL` stays refused: the re-query tier).
    #[allow(clippy::too_many_arguments)]
    fn counted(
        &self,
        fields: &sql::Fields,
        omit: &[sql::Expr],
        only: bool,
        order: &Option<sql::order::Ordering>,
        limit: &Option<sql::Limit>,
        start: &Option<sql::Start>,
        fetch: &Option<sql::Fetchs>,
    ) -> Option<(Vec<PathPart>, Option<Expr>)> {
        // SurrealDB 3.3.5 ignores `LIMIT 0` here, and `START 1` drops the
        // one row: the re-query tier's.
        if !omit.is_empty()
            || only
            || order.is_some()
            || limit.is_some()
            || start.is_some()
            || fetch.is_some()
        {
            return None;
        }
        let sql::Fields::Select(list) = fields else {
            return None;
        };
        let [sql::Field::Single(selector)] = list.as_slice() else {
            return None;
        };
        let sql::Expr::FunctionCall(call) = &selector.expr else {
            return None;
        };
        let sql::Function::Normal(name) = &call.receiver else {
            return None;
        };
        if !name.eq_ignore_ascii_case("count") || call.arguments.len() > 1 {
            return None;
        }
        let counted = match call.arguments.first() {
            None => None,
            // SurrealDB refuses `$this` there ("no defined document" in a
            // `GROUP` select): left to it.
            Some(e) if functions::reads_param(&surrealdb::types::ToSql::to_sql(e), "this") => {
                return None;
            }
            Some(e) => Some(self.expr(e.clone()).ok()?),
        };
        let name = match &selector.alias {
            None => vec![PathPart::Field("count".into())],
            Some(alias) => self.idiom_path(alias.clone(), "AS", "an alias name").ok()?,
        };
        Some((name, counted))
    }

    /// The single `FROM` target: one table name, a record id, an array of
    /// record ids or (outside subqueries) a `$param` or a path of one, the
    /// edges of the record a `$param` names (`$team->attends`), or (in a
    /// subquery) a traversal from `$parent` or `$parent.field`.
    fn from(&self, what: Vec<sql::Expr>, nested: bool) -> PResult<Target> {
        if what.len() > 1 {
            return Err(self.refuse(",", "several FROM targets", ONE_TABLE));
        }
        let Some(target) = what.into_iter().next() else {
            return Err(self.refuse("FROM", "FROM nothing", ONE_TABLE));
        };
        match target {
            sql::Expr::Table(t) => Ok((t.as_str().to_owned(), None, Vec::new())),
            sql::Expr::Literal(sql::Literal::RecordId(r)) => {
                let r = self.record_id(r)?;
                Ok((
                    r.table.to_string(),
                    Some(Expr::Literal(Value::thing(r))),
                    Vec::new(),
                ))
            }
            sql::Expr::Literal(sql::Literal::Array(items)) => {
                let mut ids = Vec::new();
                for item in items {
                    match item {
                        sql::Expr::Literal(sql::Literal::RecordId(r)) => {
                            ids.push(self.record_id(r)?)
                        }
                        _ => return Err(self.refuse_from_list()),
                    }
                }
                let table = match ids.first() {
                    Some(f) if ids.iter().all(|r| r.table == f.table) => f.table.to_string(),
                    _ => return Err(self.refuse_from_list()),
                };
                let ids = ids
                    .into_iter()
                    .map(|r| Expr::Literal(Value::thing(r)))
                    .collect();
                Ok((table, Some(Expr::Array(ids)), Vec::new()))
            }
            sql::Expr::Param(p) if !nested => Ok((
                String::new(),
                Some(Expr::Param {
                    name: p.as_str().to_owned(),
                    path: Vec::new(),
                }),
                Vec::new(),
            )),
            sql::Expr::Param(_) => Err(self.refuse("$", "FROM a parameter", ONE_TABLE)),
            sql::Expr::Idiom(idiom) => self.target_path(idiom, nested),
            // `FROM $event.path ?? []`: SurrealDB reads no row from NONE,
            // NULL or `[]` through a path, so `?? []` changes nothing
            // (measured on 3.3.5, `FROM ONLY` too).
            sql::Expr::Binary {
                left,
                op: sql::BinaryOperator::NullCoalescing,
                right,
            } if !nested
                && matches!(&*right, sql::Expr::Literal(sql::Literal::Array(a)) if a.is_empty())
                && matches!(&*left, sql::Expr::Idiom(_)) =>
            {
                self.from(vec![*left], nested)
            }
            sql::Expr::Select(_) => Err(self.refuse("(", "FROM a subquery", ONE_TABLE)),
            sql::Expr::FunctionCall(_) => {
                Err(self.refuse("FROM", "FROM a function call", ONE_TABLE))
            }
            sql::Expr::Literal(
                l @ (sql::Literal::None | sql::Literal::Null | sql::Literal::Bool(_)),
            ) => {
                let kw = match l {
                    sql::Literal::None => "NONE",
                    sql::Literal::Null => "NULL",
                    sql::Literal::Bool(true) => "TRUE",
                    _ => "FALSE",
                };
                Err(self.refuse(kw, &format!("FROM {kw}"), ONE_TABLE))
            }
            sql::Expr::Literal(_) | sql::Expr::Mock(_) | sql::Expr::Constant(_) => {
                Err(self.refuse("FROM", "FROM a value", ONE_TABLE))
            }
            e if statement_keyword(&e).is_some() => {
                let kw = statement_keyword(&e).unwrap_or_default();
                Err(self.refuse(kw, &format!("FROM {kw}"), ONE_TABLE))
            }
            _ => Err(self.refuse("FROM", "expression in FROM", ONE_TABLE)),
        }
    }

    fn refuse_from_list(&self) -> ParseError {
        self.refuse(
            "[",
            "FROM a list of values",
            "a list in FROM must hold record ids of one table",
        )
    }

    /// A path or traversal in `FROM`.
    fn target_path(&self, idiom: sql::Idiom, nested: bool) -> PResult<Target> {
        let mut parts = idiom.0.into_iter();
        let first = parts.next();
        let rest: Vec<sql::Part> = parts.collect();
        let name = match first {
            // In a subquery's `FROM`, `$this` is still the record of the
            // query around it, `$parent` (measured on 3.3.5).
            Some(sql::Part::Start(sql::Expr::Param(p)))
                if nested && p.as_str().eq_ignore_ascii_case("this") =>
            {
                "parent".to_owned()
            }
            Some(sql::Part::Start(sql::Expr::Param(p))) => p.as_str().to_owned(),
            Some(sql::Part::Graph(_)) => {
                return Err(self.refuse(
                    "-",
                    "graph traversal",
                    "graph traversal is not supported",
                ));
            }
            _ => {
                return Err(self.refuse("FROM", "FROM a field path or graph traversal", ONE_TABLE));
            }
        };
        let parent = name.eq_ignore_ascii_case("parent");
        if matches!(rest.first(), Some(sql::Part::Graph(_))) {
            if nested && !parent {
                return Err(self.refuse("$", "FROM a parameter", ONE_TABLE));
            }
            let why = if nested {
                "a traversal is `->edge` or `->edge->table`, or the same with `<-` (in FROM, \
                 from `$parent`)"
            } else {
                ONE_TABLE
            };
            let graph = self.graph_steps(&rest, why)?;
            let ids = (!nested).then(|| Expr::Param {
                name,
                path: Vec::new(),
            });
            return Ok((String::new(), ids, graph));
        }
        let path = self.parts(rest, "a parameter")?;
        if nested {
            if !parent {
                return Err(self.refuse("$", "FROM a parameter", ONE_TABLE));
            }
            if !matches!(path.as_slice(), [PathPart::Field(_)]) {
                return Err(self.refuse(
                    "$parent",
                    "FROM a path of `$parent`",
                    "a subquery reads `FROM $parent.field`, one field of the including record",
                ));
            }
        }
        Ok((String::new(), Some(Expr::Param { name, path }), Vec::new()))
    }

    /// `->wrote->post` / `<-wrote<-user`: one or two steps, each to one
    /// named table. Anything else a traversal may say (`->?`, `->(wrote
    /// WHERE ...)`, `<->`, a third step, a path after it) is refused by name.
    pub(super) fn graph_steps(&self, parts: &[sql::Part], why: &str) -> PResult<Vec<GraphStep>> {
        let steps = self.traversal(parts)?;
        if steps.len() != parts.len() {
            return Err(self.refuse("-", "graph traversal", why));
        }
        if steps.len() > 2 {
            return Err(self.refuse(
                "-",
                "graph traversal",
                "a traversal takes at most two steps (`<-edge<-table`)",
            ));
        }
        Ok(steps)
    }

    /// The leading graph steps of `parts`, each to one named table; the
    /// parts after them are the caller's.
    pub(super) fn traversal(&self, parts: &[sql::Part]) -> PResult<Vec<GraphStep>> {
        let mut steps = Vec::new();
        for part in parts {
            let sql::Part::Graph(lookup) = part else {
                break;
            };
            let out = match lookup.kind {
                sql::lookup::LookupKind::Graph(sql::Dir::Out) => true,
                sql::lookup::LookupKind::Graph(sql::Dir::In) => false,
                _ => {
                    return Err(self.refuse(
                        "-",
                        "graph traversal",
                        "a traversal goes `->` or `<-` (not `<->` nor `<~`)",
                    ));
                }
            };
            let table = match lookup.what.as_slice() {
                [
                    sql::lookup::LookupSubject::Table {
                        table,
                        referencing_field: None,
                    },
                ] if plain_lookup(lookup) => table.as_str().to_owned(),
                _ => {
                    return Err(self.refuse(
                        "-",
                        "graph traversal",
                        "each step of a traversal names one table (not `?`, a list or a filter)",
                    ));
                }
            };
            steps.push(GraphStep { out, table });
        }
        Ok(steps)
    }

    /// One `ORDER BY` item: a basic field path and a direction.
    fn order(&self, o: sql::Order) -> PResult<Order> {
        let sql::Order {
            value,
            collate,
            numeric,
            direction,
        } = o;
        let refused = if collate {
            Some("COLLATE")
        } else if numeric {
            Some("NUMERIC")
        } else {
            None
        };
        if let Some(w) = refused {
            return Err(self.refuse(
                w,
                &format!("ORDER BY ... {w}"),
                "only plain ascending and descending order is supported",
            ));
        }
        let path = self.idiom_path(value, "ORDER BY", "a field to order by")?;
        Ok(Order {
            path,
            descending: !direction,
            fetch: false,
        })
    }

    /// The value of `LIMIT` or `START`: a non-negative int literal or a
    /// `$param`, or `+`, `-`, `*` of those, bound once from the view's
    /// params (so, in a subquery, of no `$parent`).
    fn count(&self, e: sql::Expr, clause: &str, nested: bool) -> PResult<Expr> {
        let refusal = || {
            self.refuse(
                clause,
                &format!("{clause} expression"),
                &format!(
                    "{clause} takes a non-negative integer literal or a $parameter, or + - * of \
                     those (in a subquery, of no `$parent`)"
                ),
            )
        };
        if nested && !matches!(e, sql::Expr::Binary { .. }) {
            // What a subquery's window says is evaluated per row: the
            // expression is read as any other, then checked.
            return match self.expr(e)? {
                e @ (Expr::Literal(Value::Number(Number::Int(0..))) | Expr::Param { .. }) => Ok(e),
                _ => Err(refusal()),
            };
        }
        match e {
            sql::Expr::Literal(sql::Literal::Integer(n)) if n >= 0 => {
                Ok(Expr::Literal(Value::Number(Number::Int(n))))
            }
            sql::Expr::Param(_) | sql::Expr::Idiom(_) => match self.expr(e) {
                Ok(p @ Expr::Param { .. }) => Ok(p),
                _ => Err(refusal()),
            },
            sql::Expr::Binary { left, op, right } => {
                let op = match op {
                    sql::BinaryOperator::Add => ArithOp::Add,
                    sql::BinaryOperator::Subtract => ArithOp::Sub,
                    sql::BinaryOperator::Multiply => ArithOp::Mul,
                    _ => return Err(refusal()),
                };
                let lhs = self.count(*left, clause, nested)?;
                let rhs = self.count(*right, clause, nested)?;
                // A subquery's window is checked once per view (see
                // `Plan::validate`): arithmetic bound from the view's
                // params only (each side was checked the same way).
                let of_parent = |e: &Expr| matches!(e, Expr::Param { name, .. } if name.eq_ignore_ascii_case("parent"));
                if nested && (of_parent(&lhs) || of_parent(&rhs)) {
                    return Err(refusal());
                }
                Ok(Expr::Arith {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                })
            }
            _ => Err(refusal()),
        }
    }
}

/// A `SELECT` as SSP reads it: the parts it lowers, and the clauses it
/// refuses.
pub(super) struct Parts {
    pub(super) fields: sql::Fields,
    pub(super) omit: Vec<sql::Expr>,
    pub(super) only: bool,
    pub(super) what: Vec<sql::Expr>,
    pub(super) cond: Option<sql::Cond>,
    pub(super) order: Option<sql::order::Ordering>,
    pub(super) limit: Option<sql::Limit>,
    pub(super) start: Option<sql::Start>,
    pub(super) fetch: Option<sql::Fetchs>,
    pub(super) refused: Refused,
}

/// Which of the clauses SurrealDB runs and SSP does not maintain a
/// `SELECT` has.
pub(super) struct Refused {
    with: bool,
    split: bool,
    /// `Some(true)` for `GROUP ALL`.
    group: Option<bool>,
    version: bool,
    timeout: bool,
    for_update: bool,
    tempfiles: bool,
    explain: bool,
}

impl Refused {
    /// The first refused clause: `(text to place it, construct, why)`.
    pub(super) fn refusal(&self) -> Option<(&'static str, &'static str, &'static str)> {
        if self.with {
            Some((
                "WITH",
                "WITH",
                "index hints are not supported; remove the WITH clause",
            ))
        } else if self.split {
            Some((
                "SPLIT",
                "SPLIT",
                "splitting records into several rows is not supported",
            ))
        } else if let Some(all) = self.group {
            Some((
                "GROUP",
                if all { "GROUP ALL" } else { "GROUP BY" },
                "grouping and aggregation are not supported; SSP maintains only plain record \
                 selections",
            ))
        } else if self.version {
            Some((
                "VERSION",
                "VERSION",
                "historical (versioned) reads are not supported",
            ))
        } else if self.timeout {
            Some(("TIMEOUT", "TIMEOUT", "remove the TIMEOUT clause"))
        } else if self.for_update {
            Some(("FOR", "FOR UPDATE", "row locking is not supported in views"))
        } else if self.tempfiles {
            Some(("TEMPFILES", "TEMPFILES", "remove the TEMPFILES clause"))
        } else if self.explain {
            Some(("EXPLAIN", "EXPLAIN", "query plans are not views"))
        } else {
            None
        }
    }
}

/// Every clause of `s` by name, no `..`: a clause a SurrealDB upgrade adds
/// fails to compile here instead of being dropped.
pub(super) fn parts(s: sql::SelectStatement) -> Parts {
    let sql::SelectStatement {
        fields,
        omit,
        only,
        what,
        with,
        cond,
        split,
        group,
        order,
        limit,
        start,
        fetch,
        version,
        timeout,
        explain,
        tempfiles,
        for_update,
    } = s;
    let set = |e: &sql::Expr| !matches!(e, sql::Expr::Literal(sql::Literal::None));
    Parts {
        fields,
        omit,
        only,
        what,
        cond,
        order,
        limit,
        start,
        fetch,
        refused: Refused {
            with: with.is_some(),
            split: split.is_some(),
            group: group.map(|g| g.0.is_empty()),
            version: set(&version),
            timeout: set(&timeout),
            for_update,
            tempfiles,
            explain: explain.is_some(),
        },
    }
}

/// Whether a lookup is a bare `->table`: no fields, filter, window or alias
/// (every part by name, as for `SELECT`).
fn plain_lookup(l: &sql::Lookup) -> bool {
    let sql::Lookup {
        kind: _,
        what: _,
        expr,
        only,
        cond,
        split,
        group,
        order,
        limit,
        start,
        alias,
    } = l;
    expr.is_none()
        && !only
        && cond.is_none()
        && split.is_none()
        && group.is_none()
        && order.is_none()
        && limit.is_none()
        && start.is_none()
        && alias.is_none()
}

/// Whether the leftmost operand of `e` is a `SELECT` statement.
fn starts_with_select(e: &sql::Expr) -> bool {
    match e {
        sql::Expr::Select(_) => true,
        sql::Expr::Binary { left, .. } => starts_with_select(left),
        sql::Expr::Postfix { expr, .. } => starts_with_select(expr),
        _ => false,
    }
}

/// The text of the operator applied to a statement, to place its refusal.
fn operator_text(e: &sql::Expr) -> String {
    match e {
        sql::Expr::Binary { op, .. } => surrealdb::types::ToSql::to_sql(op),
        sql::Expr::Postfix { op, .. } => surrealdb::types::ToSql::to_sql(op),
        _ => String::new(),
    }
}

/// The keyword of a statement SurrealDB parses as an expression.
pub(super) fn statement_keyword(e: &sql::Expr) -> Option<&'static str> {
    Some(match e {
        sql::Expr::Create(_) => "CREATE",
        sql::Expr::Update(_) => "UPDATE",
        sql::Expr::Upsert(_) => "UPSERT",
        sql::Expr::Delete(_) => "DELETE",
        sql::Expr::Relate(_) => "RELATE",
        sql::Expr::Insert(_) => "INSERT",
        sql::Expr::Define(_) => "DEFINE",
        sql::Expr::Remove(_) => "REMOVE",
        sql::Expr::Rebuild(_) => "REBUILD",
        sql::Expr::Alter(_) => "ALTER",
        sql::Expr::Info(_) => "INFO",
        sql::Expr::Foreach(_) => "FOR",
        sql::Expr::Let(_) => "LET",
        sql::Expr::Sleep(_) => "SLEEP",
        sql::Expr::Return(_) => "RETURN",
        sql::Expr::Throw(_) => "THROW",
        sql::Expr::Break => "BREAK",
        sql::Expr::Continue => "CONTINUE",
        sql::Expr::IfElse(_) => "IF",
        sql::Expr::Explain { .. } => "EXPLAIN",
        _ => return None,
    })
}
