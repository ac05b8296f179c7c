//! `SELECT` and its clauses: fields, subquery projections, `FROM`,
//! `ORDER BY`, `LIMIT`/`START`.

use super::*;

/// The keywords that may follow a `FROM` target.
const CLAUSES: [&str; 14] = [
    "WITH",
    "WHERE",
    "SPLIT",
    "GROUP",
    "ORDER",
    "LIMIT",
    "START",
    "FETCH",
    "VERSION",
    "TIMEOUT",
    "FOR",
    "TEMPFILES",
    "EXPLAIN",
    "PARALLEL",
];

impl<'a> Parser<'a> {
    /// `SELECT ... [;]` and nothing else.
    pub(super) fn parse_query(mut self) -> PResult<Select> {
        // Empty statements before the query are harmless (SurrealDB skips them).
        let mut t = self.peek()?;
        while t.is(";") {
            self.bump(&t);
            t = self.peek()?;
        }
        if !t.is_kw("SELECT") {
            return Err(match &t.tok {
                Tok::Eof => self.error(t.start, "empty query", "expected a SELECT statement", None),
                Tok::Word(w) => self.refuse(
                    t.start,
                    &format!("{} statement", w.to_ascii_uppercase()),
                    "a view must be exactly one SELECT statement",
                ),
                _ => self.refuse(
                    t.start,
                    "expression statement",
                    "a view must be exactly one SELECT statement",
                ),
            });
        }
        self.bump(&t);
        let select = self.parse_select_body(false)?;
        let mut semicolon = false;
        loop {
            let t = self.peek()?;
            if t.is(";") {
                self.bump(&t);
                semicolon = true;
                continue;
            }
            if matches!(t.tok, Tok::Eof) {
                return Ok(select);
            }
            return Err(if semicolon {
                self.refuse(
                    t.start,
                    "several statements",
                    "a view must be exactly one SELECT statement",
                )
            } else {
                self.trailing(&t)
            });
        }
    }

    /// Text after a complete query. SurrealDB parses a statement as an
    /// expression, so an operator there (`SELECT * FROM t ORDER BY a = 1`)
    /// applies to the whole query's result: refused as such.
    pub(super) fn trailing(&self, t: &Token) -> ParseError {
        if let Ok(Some(_)) = self.infix(t) {
            return self.refuse(
                t.start,
                "operator applied to the query",
                "a view must be exactly one plain SELECT statement",
            );
        }
        let rest: String = self.src[t.start..].trim_end().chars().take(40).collect();
        self.error(
            t.start,
            "unexpected text after the query",
            &format!("{rest:?}"),
            Some("trailing text".into()),
        )
    }

    /// Everything after `SELECT`. `nested` is true inside `( ... )`; the
    /// caller consumes the closing parenthesis.
    pub(super) fn parse_select_body(&mut self, nested: bool) -> PResult<Select> {
        let t = self.peek()?;
        self.enter(t.start)?;
        let result = self.parse_select_body_inner(nested);
        self.leave();
        result
    }

    pub(super) fn parse_select_body_inner(&mut self, nested: bool) -> PResult<Select> {
        let t = self.peek()?;
        let value = t.is_kw("VALUE");
        let fields = if value {
            if nested {
                return Err(self.refuse(
                    t.start,
                    "SELECT VALUE in a subquery",
                    "a subquery projection selects records: `(SELECT * FROM ...)`",
                ));
            }
            self.bump(&t);
            self.parse_value_field()?
        } else {
            self.parse_fields()?
        };

        let omit = self.parse_omit()?;
        let t = self.peek()?;
        if !t.is_kw("FROM") {
            return Err(self.unexpected(&t, "`FROM`"));
        }
        self.bump(&t);

        let (only, table, ids, graph) = self.parse_from_target(nested)?;
        self.check_clause()?;

        let filter = if self.eat_kw("WHERE")? {
            let e = self.parse_expr(Bp::Base)?;
            self.check_clause()?;
            Some(e)
        } else {
            None
        };

        let mut order = Vec::new();
        let t = self.peek()?;
        if t.is_kw("ORDER") {
            self.bump(&t);
            self.eat_kw("BY")?;
            loop {
                order.push(self.parse_order()?);
                let t = self.peek()?;
                if !t.is(",") {
                    break;
                }
                self.bump(&t);
            }
            self.check_clause()?;
        }

        // SurrealDB accepts LIMIT and START in either order.
        let (mut limit, mut start) = (None, None);
        for _ in 0..2 {
            let t = self.peek()?;
            if t.is_kw("LIMIT") && limit.is_none() {
                self.bump(&t);
                self.eat_kw("BY")?;
                limit = Some(self.parse_count("LIMIT", nested)?);
            } else if t.is_kw("START") && start.is_none() {
                self.bump(&t);
                self.eat_kw("AT")?;
                start = Some(self.parse_count("START", nested)?);
            } else {
                break;
            }
            self.check_clause()?;
        }

        let (fetch, fetch_nested) = self.parse_fetch()?;

        let t = self.peek()?;
        let at_end = if nested {
            t.is(")")
        } else {
            t.is(";") || matches!(t.tok, Tok::Eof)
        };
        if !at_end {
            return Err(if nested {
                self.unexpected(&t, "`)` closing the subquery")
            } else {
                self.trailing(&t)
            });
        }

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

    /// Refuses a clause SurrealDB accepts at this point but SSP does not
    /// maintain. Called between the supported clauses so that no clause is
    /// ever skipped.
    pub(super) fn check_clause(&self) -> PResult<()> {
        let t = self.peek()?;
        let Tok::Word(w) = &t.tok else { return Ok(()) };
        let upper = w.to_ascii_uppercase();
        let (construct, why): (&str, &str) = match upper.as_str() {
            "WITH" => (
                "WITH",
                "index hints are not supported; remove the WITH clause",
            ),
            "SPLIT" => (
                "SPLIT",
                "splitting records into several rows is not supported",
            ),
            "GROUP" => {
                let next = self.peek_after(&t)?;
                let construct = if next.is_kw("ALL") {
                    "GROUP ALL"
                } else {
                    "GROUP BY"
                };
                (
                    construct,
                    "grouping and aggregation are not supported; SSP maintains only plain record selections",
                )
            }
            // Read at its place, after `LIMIT`/`START` (`parse_fetch`).
            "FETCH" => return Ok(()),
            "VERSION" => ("VERSION", "historical (versioned) reads are not supported"),
            "TIMEOUT" => ("TIMEOUT", "remove the TIMEOUT clause"),
            "PARALLEL" => ("PARALLEL", "remove the PARALLEL clause"),
            "FOR" => ("FOR UPDATE", "row locking is not supported in views"),
            "TEMPFILES" => ("TEMPFILES", "remove the TEMPFILES clause"),
            "EXPLAIN" => ("EXPLAIN", "query plans are not views"),
            _ => return Ok(()),
        };
        Err(self.refuse(t.start, construct, why))
    }

    /// The single `FROM` target: `[ONLY]` and one table name, a record id,
    /// an array of record ids or (outside subqueries) a `$param`, or (in a
    /// subquery) a graph traversal from `$parent`, as `(only, table, ids,
    /// graph)`. A param's table is known only once it is bound.
    pub(super) fn parse_from_target(
        &mut self,
        nested: bool,
    ) -> PResult<(bool, String, Option<Expr>, Vec<GraphStep>)> {
        let mut t = self.peek()?;
        if nested
            && matches!(&t.tok, Tok::Param(p) if p.eq_ignore_ascii_case("parent"))
            && self.graph_arrow(&self.peek_after(&t)?).is_some()
        {
            self.bump(&t);
            let graph = self.parse_graph_steps()?;
            self.end_of_from_target("a traversal in FROM goes from `$parent`")?;
            return Ok((false, String::new(), None, graph));
        }
        // `FROM $team->attends` (outer query): the edges of the record the
        // param names, lowered once the param is known (see
        // `plan::resolve::lower_from_traversal`).
        if !nested
            && let Tok::Param(name) = &t.tok
            && !name.eq_ignore_ascii_case("parent")
            && self.graph_arrow(&self.peek_after(&t)?).is_some()
        {
            let start = Expr::Param {
                name: name.clone(),
                path: Vec::new(),
            };
            self.bump(&t);
            let graph = self.parse_graph_steps()?;
            self.end_of_from_target("a view reads exactly one table: `FROM <table>`")?;
            return Ok((false, String::new(), Some(start), graph));
        }
        let why_one = "a view reads exactly one table: `FROM <table>`";
        // `ONLY` followed by a target (not by a clause or the end, where it
        // is a table named `only`).
        let only = t.is_kw("ONLY") && {
            let n = self.peek_after(&t)?;
            (matches!(
                n.tok,
                Tok::Word(_) | Tok::Quoted(_) | Tok::Param(_) | Tok::Prefixed(..)
            ) || n.is("["))
                && !CLAUSES.iter().any(|kw| n.is_kw(kw))
        };
        if only {
            if nested {
                return Err(self.refuse(
                    t.start,
                    "ONLY in a subquery",
                    "`FROM ONLY` is supported in the outer query only",
                ));
            }
            self.bump(&t);
            t = self.peek()?;
        }
        if let Some(ids) = self.parse_from_ids(&t, nested)? {
            let table = match &ids {
                Expr::Literal(Value::Thing(r)) => r.table.to_string(),
                Expr::Array(items) => {
                    let mut tables = items.iter().map(|i| match i {
                        Expr::Literal(Value::Thing(r)) => Some(r.table.as_str()),
                        _ => None,
                    });
                    let first = tables.next().flatten();
                    match first {
                        Some(f) if tables.all(|x| x == Some(f)) => f.to_owned(),
                        _ => {
                            return Err(self.refuse(
                                t.start,
                                "FROM a list of values",
                                "a list in FROM must hold record ids of one table",
                            ));
                        }
                    }
                }
                _ => String::new(),
            };
            self.end_of_from_target(why_one)?;
            return Ok((only, table, Some(ids), Vec::new()));
        }
        let name = match &t.tok {
            Tok::Word(w) if Self::word_is_special_prime(w) => {
                return Err(self.refuse(
                    t.start,
                    &format!("FROM {}", w.to_ascii_uppercase()),
                    why_one,
                ));
            }
            Tok::Word(w) | Tok::Quoted(w) => w.clone(),
            Tok::Param(_) => return Err(self.refuse(t.start, "FROM a parameter", why_one)),
            Tok::Punct("(") => return Err(self.refuse(t.start, "FROM a subquery", why_one)),
            _ if t.is("->") || self.is_path_continuation(&t) => {
                return Err(self.refuse(
                    t.start,
                    "graph traversal",
                    "graph traversal is not supported",
                ));
            }
            _ => return Err(self.refuse(t.start, "FROM a value", why_one)),
        };
        self.bump(&t);

        let next = self.peek()?;
        let refusal = if next.is(":") {
            Some("FROM a record id")
        } else if next.is("::") || next.is("(") {
            Some("FROM a function call")
        } else if self.is_path_continuation(&next) {
            Some("FROM a field path or graph traversal")
        } else if next.is(",") {
            Some("several FROM targets")
        } else {
            None
        };
        if let Some(construct) = refusal {
            let at = if next.is(",") { next.start } else { t.start };
            return Err(self.refuse(at, construct, why_one));
        }
        self.end_of_from_target(why_one)?;
        Ok((only, name, None, Vec::new()))
    }

    /// Whether `t` starts a graph step: `->` gives `Some(true)`, `<-` (not
    /// `<->`) `Some(false)`.
    pub(super) fn graph_arrow(&self, t: &Token) -> Option<bool> {
        if t.is("->") {
            Some(true)
        } else if t.is("<") && self.followed_by(t, "-") && !self.followed_by(t, "->") {
            Some(false)
        } else {
            None
        }
    }

    /// `->wrote->post` / `<-wrote<-user`: one or two steps, each to a named
    /// table. Anything else a traversal may say (`->?`, `->(wrote WHERE
    /// ...)`, `<->`, a third step, a path after it) is refused by name.
    pub(super) fn parse_graph_steps(&mut self) -> PResult<Vec<GraphStep>> {
        let mut steps = Vec::new();
        loop {
            let t = self.peek()?;
            let Some(out) = self.graph_arrow(&t) else {
                if t.is("<") || self.is_path_continuation(&t) {
                    return Err(self.refuse(
                        t.start,
                        "graph traversal",
                        "a traversal is `->edge` or `->edge->table`, or the same with `<-` (in \
                         FROM, from `$parent`)",
                    ));
                }
                return Ok(steps);
            };
            self.bump(&t);
            if !out {
                // The `-` of `<-`.
                let dash = self.peek()?;
                self.bump(&dash);
            }
            let name = self.peek()?;
            let Some(table) = name.ident().map(str::to_owned) else {
                return Err(self.refuse(
                    name.start,
                    "graph traversal",
                    "each step of a traversal names one table (not `?`, a list or a filter)",
                ));
            };
            self.bump(&name);
            let after = self.peek()?;
            if after.is(",") || after.is("(") || after.is(":") || after.is(".") || after.is("[") {
                return Err(self.refuse(
                    after.start,
                    "graph traversal",
                    "each step of a traversal names one table (not `?`, a list or a filter)",
                ));
            }
            steps.push(GraphStep { out, table });
            if steps.len() > 2 {
                return Err(self.refuse(
                    t.start,
                    "graph traversal",
                    "a traversal takes at most two steps (`<-edge<-table`)",
                ));
            }
        }
    }

    /// `FROM t:1`, `FROM [t:1, t:2]`, `FROM $ids`: the target when it names
    /// records rather than a table; `None` for anything else.
    fn parse_from_ids(&mut self, t: &Token, nested: bool) -> PResult<Option<Expr>> {
        let record = matches!(t.tok, Tok::Word(_)) && self.peek_after(t)?.is(":")
            || matches!(t.tok, Tok::Prefixed('r', _));
        if matches!(t.tok, Tok::Param(_)) {
            if nested {
                // `(SELECT ... FROM $parent.field)`: the record(s) the
                // including record's field names.
                let parent = matches!(&t.tok, Tok::Param(p) if p.eq_ignore_ascii_case("parent"));
                if parent && self.peek_after(t)?.is(".") {
                    let e = self.parse_primary()?;
                    return match e {
                        Expr::Param { ref path, .. }
                            if matches!(path.as_slice(), [PathPart::Field(_)]) =>
                        {
                            Ok(Some(e))
                        }
                        _ => Err(self.refuse(
                            t.start,
                            "FROM a path of `$parent`",
                            "a subquery reads `FROM $parent.field`, one field of the \
                             including record",
                        )),
                    };
                }
                return Ok(None);
            }
            // `$ids`, or a path into one (`$team.players`, read through
            // the record `$team` names: see `engine::param_links`).
            let e = self.parse_primary()?;
            return match e {
                Expr::Param { .. } => Ok(Some(e)),
                _ => Err(self.refuse(
                    t.start,
                    "FROM a parameter's expression",
                    "`FROM $param` takes a parameter (or a path of one) holding record ids",
                )),
            };
        }
        if !record && !t.is("[") {
            return Ok(None);
        }
        let e = self.parse_primary()?;
        let ok = match &e {
            Expr::Literal(Value::Thing(_)) => true,
            Expr::Array(items) => {
                !items.is_empty()
                    && items
                        .iter()
                        .all(|i| matches!(i, Expr::Literal(Value::Thing(_))))
            }
            _ => false,
        };
        if !ok {
            return Err(self.refuse(
                t.start,
                "FROM a list of values",
                "a list in FROM must hold record ids of one table",
            ));
        }
        Ok(Some(e))
    }

    /// After the FROM target: a clause, the end, or a refusal.
    fn end_of_from_target(&self, why_one: &str) -> PResult<()> {
        let next = self.peek()?;
        if next.is(",") {
            return Err(self.refuse(next.start, "several FROM targets", why_one));
        }
        let ends = matches!(next.tok, Tok::Eof)
            || next.is(";")
            || next.is(")")
            || CLAUSES.iter().any(|kw| next.is_kw(kw));
        if !ends {
            // SurrealDB parsed the target as an expression (`FROM t AND x`,
            // `FROM a - b`, ...), or the text is trailing garbage.
            return Err(self.refuse(next.start, "expression in FROM", why_one));
        }
        Ok(())
    }

    /// One `ORDER BY` item: a basic field path and an optional direction.
    pub(super) fn parse_order(&mut self) -> PResult<Order> {
        let t = self.peek()?;
        if t.is_kw("RAND") && self.peek_after(&t)?.is("(") {
            return Err(self.refuse(
                t.start,
                "ORDER BY RAND()",
                "random order cannot be maintained",
            ));
        }
        let Some(name) = t.ident() else {
            return Err(self.unexpected(&t, "a field to order by"));
        };
        let mut path = vec![PathPart::Field(name.into())];
        self.bump(&t);
        self.parse_path_rest(&mut path)?;
        let t = self.peek()?;
        if t.is_kw("COLLATE") || t.is_kw("NUMERIC") {
            let w = t.ident().unwrap_or("").to_ascii_uppercase();
            return Err(self.refuse(
                t.start,
                &format!("ORDER BY ... {w}"),
                "only plain ascending and descending order is supported",
            ));
        }
        let descending = if t.is_kw("DESC") || t.is_kw("DESCENDING") {
            self.bump(&t);
            true
        } else {
            if t.is_kw("ASC") || t.is_kw("ASCENDING") {
                self.bump(&t);
            }
            false
        };
        Ok(Order {
            path,
            descending,
            fetch: false,
        })
    }

    /// The value of `LIMIT` or `START`: a non-negative int literal or a
    /// `$param`, or (outside subqueries, where it is bound once from the
    /// view's params) `+`, `-`, `*` and parentheses over those.
    pub(super) fn parse_count(&mut self, clause: &str, nested: bool) -> PResult<Expr> {
        let t = self.peek()?;
        let refusal = |p: &Self| {
            p.refuse(
                t.start,
                &format!("{clause} expression"),
                &format!(
                    "{clause} takes a non-negative integer literal or a $parameter (or, in the \
                     outer query, + - * of those)"
                ),
            )
        };
        let e = if nested {
            self.parse_expr(Bp::Base)?
        } else {
            // SurrealDB parsed the text: whatever this does not take is a
            // construct the engine does not, not a syntax error.
            let e = self.parse_count_sum().map_err(|_| refusal(self))?;
            // An operator SurrealDB read on (`LIMIT 10 ..`, `LIMIT $n / 2`).
            let next = self.peek()?;
            if matches!(next.tok, Tok::Punct(_)) && !next.is(";") && !next.is(")") {
                return Err(refusal(self));
            }
            e
        };
        match &e {
            Expr::Literal(Value::Number(Number::Int(n))) if *n >= 0 => Ok(e),
            Expr::Param { .. } | Expr::Arith { .. } => Ok(e),
            _ => Err(refusal(self)),
        }
    }

    /// `a + b - c` of [`parse_count_product`]s, left to right.
    fn parse_count_sum(&mut self) -> PResult<Expr> {
        let mut lhs = self.parse_count_product()?;
        loop {
            let t = self.peek()?;
            let op = if t.is("+") {
                ArithOp::Add
            } else if t.is("-") {
                ArithOp::Sub
            } else {
                return Ok(lhs);
            };
            self.bump(&t);
            let rhs = self.parse_count_product()?;
            lhs = Expr::Arith {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    /// `a * b` of integer literals, `$params` and parenthesised sums.
    fn parse_count_product(&mut self) -> PResult<Expr> {
        let mut lhs = self.parse_count_term()?;
        loop {
            let t = self.peek()?;
            if !(t.is("*") || t.is("×")) {
                return Ok(lhs);
            }
            self.bump(&t);
            let rhs = self.parse_count_term()?;
            lhs = Expr::Arith {
                op: ArithOp::Mul,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    fn parse_count_term(&mut self) -> PResult<Expr> {
        let t = self.peek()?;
        if t.is("(") {
            self.bump(&t);
            let e = self.parse_count_sum()?;
            self.expect_punct(")", "`)`")?;
            return Ok(e);
        }
        let e = self.parse_primary()?;
        match e {
            Expr::Literal(Value::Number(Number::Int(n))) if n >= 0 => Ok(e),
            Expr::Param { .. } => Ok(e),
            _ => Err(self.refuse(
                t.start,
                "LIMIT expression",
                "not an integer or a $parameter",
            )),
        }
    }

    // --- expressions ------------------------------------------------------
}
