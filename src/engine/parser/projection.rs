//! The projection and what shapes rows: fields and aliases, subquery
//! fields, `field.*`, `SELECT VALUE`, `OMIT` and `FETCH`.

use super::*;
use crate::engine::value::FieldName;

impl<'a> Parser<'a> {
    /// The projection list.
    pub(super) fn parse_fields(&mut self) -> PResult<Vec<Field>> {
        let mut fields = Vec::new();
        loop {
            let t = self.peek()?;
            let field = if t.is("*") {
                self.bump(&t);
                Field::All
            } else if t.is("(") && self.peek_after(&t)?.is_kw("SELECT") {
                self.parse_subquery_field()?
            } else if let Some(field) = self.parse_link_all()? {
                field
            } else if let Some(field) = self.parse_computed()? {
                field
            } else {
                let expr = self.parse_expr(Bp::Base)?;
                let alias = self.parse_alias()?;
                Field::Expr { expr, alias }
            };
            fields.push(field);
            let t = self.peek()?;
            if !t.is(",") {
                return Ok(fields);
            }
            self.bump(&t);
        }
    }

    /// `field.* [AS alias]`, if that is what comes: a whole linked record.
    /// A path after it (`author.*.name`) is refused by name.
    pub(super) fn parse_link_all(&mut self) -> PResult<Option<Field>> {
        let t = self.peek()?;
        let Some(name) = t.ident() else {
            return Ok(None);
        };
        let dot = self.peek_after(&t)?;
        if !dot.is(".") || !self.peek_after(&dot)?.is("*") {
            return Ok(None);
        }
        let name = FieldName::from(name);
        let star = self.peek_after(&dot)?;
        self.bump(&t);
        self.bump(&dot);
        self.bump(&star);
        let next = self.peek()?;
        if self.is_path_continuation(&next) {
            return Err(self.refuse(
                next.start,
                "path after `.*`",
                "project the linked record whole (`author.* AS a`) or one of its fields (`author.name`)",
            ));
        }
        let alias = self
            .parse_alias()?
            .unwrap_or_else(|| vec![PathPart::Field(name.clone())]);
        Ok(Some(Field::LinkAll { field: name, alias }))
    }

    /// The one expression after `SELECT VALUE`. A subquery there would be
    /// a value made of records, which is not a projection of them.
    pub(super) fn parse_value_field(&mut self) -> PResult<Vec<Field>> {
        let t = self.peek()?;
        if t.is("(") && self.peek_after(&t)?.is_kw("SELECT") {
            return Err(self.refuse(
                t.start,
                "SELECT VALUE of a subquery",
                "project the subquery as a field: `SELECT *, (SELECT ...) AS x FROM ...`",
            ));
        }
        let expr = self.parse_expr(Bp::Base)?;
        Ok(vec![Field::Expr { expr, alias: None }])
    }

    /// A value of the rows SSP does not evaluate (see [`Field::Computed`]),
    /// if one comes: a traversal from the row, `count(` of one `)`, or a
    /// `$param` or record id `IN` one. Anything after it but the end of
    /// the field is refused by name.
    pub(super) fn parse_computed(&mut self) -> PResult<Option<Field>> {
        let save = self.pos;
        let t = self.peek()?;
        let at = t.start;
        let matched = if self.graph_arrow(&t).is_some() {
            self.parse_traversal_value()?;
            true
        } else if t.is_kw("count") && self.peek_after(&t)?.is("(") {
            let open = self.peek_after(&t)?;
            if self.graph_arrow(&self.peek_after(&open)?).is_some() {
                self.bump(&open);
                self.parse_traversal_value()?;
                self.expect_punct(")", "`)` closing `count(`")?;
                true
            } else {
                false
            }
        } else if matches!(t.tok, Tok::Param(_))
            || (matches!(t.tok, Tok::Word(_)) && self.peek_after(&t)?.is(":"))
        {
            // `$user IN <-member<-user.id`: read ahead, and go back if it is
            // anything else.
            match self.parse_primary() {
                Ok(Expr::Param { .. } | Expr::Literal(Value::Thing(_))) => {
                    let kw = self.peek()?;
                    if (kw.is_kw("IN") || kw.is_kw("INSIDE"))
                        && self.graph_arrow(&self.peek_after(&kw)?).is_some()
                    {
                        self.bump(&kw);
                        self.parse_traversal_value()?;
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            }
        } else {
            false
        };
        if !matched {
            self.pos = save;
            return Ok(None);
        }
        self.end_of_computed(at)?;
        let alias = self.parse_alias()?;
        Ok(Some(Field::Computed { alias }))
    }

    /// After a computed value: the end of the field, or a refusal (an
    /// operator over it, which SSP would have to evaluate).
    fn end_of_computed(&self, at: usize) -> PResult<()> {
        if ends_field(&self.peek()?) {
            Ok(())
        } else {
            Err(self.refuse(
                at,
                "expression over a graph traversal",
                "a traversal is projected as a value (`<-likes<-user AS fans`, `count(<-likes)`, \
                 `$user IN <-likes<-user`)",
            ))
        }
    }

    /// `->likes->post.title`, `<-owns<-user.id`: named tables, then a
    /// path.
    fn parse_traversal_value(&mut self) -> PResult<()> {
        loop {
            let t = self.peek()?;
            let Some(out) = self.graph_arrow(&t) else {
                break;
            };
            self.bump(&t);
            if !out {
                let dash = self.peek()?;
                self.bump(&dash);
            }
            let name = self.peek()?;
            let after = self.peek_after(&name)?;
            if name.ident().is_none() || after.is("(") {
                return Err(self.refuse(
                    name.start,
                    "graph traversal",
                    "each step of a projected traversal names one table (not `?`, a list or a \
                     filter)",
                ));
            }
            self.bump(&name);
        }
        let mut path = Vec::new();
        self.parse_path_rest(&mut path)
    }

    /// `[OMIT path, ...]`.
    pub(super) fn parse_omit(&mut self) -> PResult<Vec<Vec<PathPart>>> {
        if !self.eat_kw("OMIT")? {
            return Ok(Vec::new());
        }
        Ok(self
            .parse_path_list("a field to omit")?
            .into_iter()
            .map(|(_, path)| path)
            .collect())
    }

    /// `path, path, ...` of fields (`OMIT`, `FETCH`), each with where it starts.
    fn parse_path_list(&mut self, what: &str) -> PResult<Vec<(usize, Vec<PathPart>)>> {
        let mut out = Vec::new();
        loop {
            let t = self.peek()?;
            let Some(name) = t.ident() else {
                return Err(self.unexpected(&t, what));
            };
            let mut path = vec![PathPart::Field(name.into())];
            self.bump(&t);
            self.parse_path_rest(&mut path)?;
            out.push((t.start, path));
            let t = self.peek()?;
            if !t.is(",") {
                return Ok(out);
            }
            self.bump(&t);
        }
    }

    /// `(SELECT ...)[n] [AS alias]`, the parenthesis being next.
    pub(super) fn parse_subquery_field(&mut self) -> PResult<Field> {
        let open = self.expect_punct("(", "`(`")?;
        let select_kw = self.peek()?;
        self.bump(&select_kw);
        let query = self.parse_select_body(true)?;
        self.expect_punct(")", "`)` closing the subquery")?;

        let t = self.peek()?;
        let index = if t.is("[") {
            Some(self.parse_bracket_index()?)
        } else {
            None
        };

        // A path after it (`(SELECT name FROM ...)[0].name AS by`): a value
        // of the rows, whose records are no members (see `Field::Computed`).
        let t = self.peek()?;
        if index.is_some() && t.is(".") {
            let mut path = Vec::new();
            self.parse_path_rest(&mut path)?;
            if let Some(why) = computed_subquery_refusal(&query) {
                return Err(self.refuse(open.start, "path after a subquery", why));
            }
            self.end_of_computed(open.start)?;
            let alias = self.parse_alias()?;
            return Ok(Field::Computed { alias });
        }
        // Only the whole subquery (or one element of it) may be projected:
        // anything else would be an expression over its result.
        // (`OMIT` is refused by name once the field list ends.)
        if !ends_field(&t) {
            let construct = if self.is_path_continuation(&t) {
                "path after a subquery"
            } else {
                "subquery inside an expression"
            };
            return Err(self.refuse(
                if self.is_path_continuation(&t) {
                    t.start
                } else {
                    open.start
                },
                construct,
                "a subquery may only be projected whole, as `(SELECT ...)[n] AS alias`",
            ));
        }
        let alias = self.parse_alias()?;
        Ok(Field::Subquery {
            query: Box::new(query),
            index,
            alias,
        })
    }

    /// `[AS alias]`, where the alias is a plain field path.
    pub(super) fn parse_alias(&mut self) -> PResult<Option<Vec<PathPart>>> {
        if !self.eat_kw("AS")? {
            return Ok(None);
        }
        let t = self.peek()?;
        let Some(name) = t.ident() else {
            if t.is("->") || t.is("<") {
                return Err(self.refuse(
                    t.start,
                    "graph traversal",
                    "graph traversal is not supported",
                ));
            }
            return Err(self.unexpected(&t, "an alias name"));
        };
        let mut path = vec![PathPart::Field(name.into())];
        self.bump(&t);
        self.parse_path_rest(&mut path)?;
        Ok(Some(path))
    }

    /// `[FETCH field, ...]`: fields of the row, and paths of field names
    /// through them (`FETCH comments.user`: `comments`, and `user` in each
    /// record fetched there; measured on 3.3.5, `comments` is fetched
    /// whether or not it is listed too).
    #[allow(clippy::type_complexity)]
    pub(super) fn parse_fetch(
        &mut self,
    ) -> PResult<(Vec<FieldName>, Vec<(FieldName, Vec<FieldName>)>)> {
        let t = self.peek()?;
        if !t.is_kw("FETCH") {
            return Ok((Vec::new(), Vec::new()));
        }
        self.bump(&t);
        let mut fetch = Vec::new();
        let mut nested = Vec::new();
        for (at, path) in self.parse_path_list("a field to fetch")? {
            let names: Option<Vec<FieldName>> = path
                .iter()
                .map(|p| match p {
                    PathPart::Field(name) => Some(name.clone()),
                    _ => None,
                })
                .collect();
            let Some((first, rest)) = names.as_deref().and_then(|n| n.split_first()) else {
                return Err(self.refuse(
                    at,
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
        self.check_clause()?;
        Ok((fetch, nested))
    }
}

/// Whether `t` ends a projected field.
fn ends_field(t: &Token) -> bool {
    t.is(",") || t.is_kw("AS") || t.is_kw("FROM") || t.is_kw("OMIT")
}

/// Why a subquery shown only through a path after it cannot be left
/// unevaluated: SurrealDB fails the whole query when one of its functions
/// gets a value of the wrong type or its window a value that is not an
/// integer, which depends on the data SSP would not look at.
fn computed_subquery_refusal(q: &Select) -> Option<&'static str> {
    fn calls(e: &Expr) -> bool {
        match e {
            Expr::Call { .. } | Expr::Arith { .. } | Expr::Subquery(_) | Expr::Traversal(_) => true,
            Expr::Literal(_) | Expr::Field(_) | Expr::Param { .. } => false,
            Expr::Array(items) => items.iter().any(calls),
            Expr::Not(e) => calls(e),
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
