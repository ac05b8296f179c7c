//! Expressions: operators by SurrealDB's binding powers, primaries,
//! function calls and paths.

use super::*;

/// Binding powers, as in SurrealDB's `BindingPower` (loosest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Bp {
    Base,
    Nullish,
    Or,
    And,
    Equality,
    Relation,
    AddSub,
    MulDiv,
    Power,
    Prefix,
}

/// An infix operator found in the token stream.
pub(super) enum Infix {
    /// Supported, with the number of extra tokens it spans (`IS NOT`, `NOT IN`).
    Op(BinOp, usize),
    /// Valid SurrealQL that SSP does not evaluate: (construct, why).
    Refused(String, &'static str),
}

impl<'a> Parser<'a> {
    /// Pratt parser with SurrealDB's binding powers. Parses operators binding
    /// tighter than `min`.
    pub(super) fn parse_expr(&mut self, min: Bp) -> PResult<Expr> {
        let t = self.peek()?;
        self.enter(t.start)?;
        let result = self.parse_expr_inner(min);
        self.leave();
        result
    }

    pub(super) fn parse_expr_inner(&mut self, min: Bp) -> PResult<Expr> {
        let t = self.peek()?;
        let mut lhs = match &t.tok {
            Tok::Punct("!") => {
                self.bump(&t);
                Expr::Not(Box::new(self.parse_expr(Bp::Prefix)?))
            }
            Tok::Punct(sign @ ("-" | "+")) => {
                let next = self.peek_after(&t)?;
                if matches!(next.tok, Tok::Digits) && !next.ws_before {
                    // `-5`, `+1.5e3`: one number literal.
                    let (n, end) = self.lex_number(t.start)?;
                    self.pos = end;
                    let e = Expr::Literal(n.into_value());
                    self.refuse_path_on(t.start, "a literal")?;
                    e
                } else {
                    // `- 5`, `-(5)`: negation, which SSP folds for numbers only.
                    self.bump(&t);
                    let operand = self.parse_expr(Bp::Prefix)?;
                    match (operand, *sign) {
                        (e @ Expr::Literal(Value::Number(_)), "+") => e,
                        (Expr::Literal(Value::Number(Number::Float(f))), _) => {
                            Expr::Literal(Value::Number(Number::Float(-f)))
                        }
                        (Expr::Literal(Value::Number(Number::Int(i))), _) if i != i64::MIN => {
                            Expr::Literal(Value::Number(Number::Int(-i)))
                        }
                        _ => {
                            return Err(self.refuse(
                                t.start,
                                &format!("arithmetic operator `{sign}`"),
                                "SSP does not evaluate arithmetic in queries",
                            ));
                        }
                    }
                }
            }
            Tok::Punct("<") => {
                let construct = if ["-", "~", "->"].iter().any(|s| self.followed_by(&t, s)) {
                    "graph traversal"
                } else {
                    "cast"
                };
                return Err(self.refuse(t.start, construct, "not supported in SSP queries"));
            }
            Tok::Punct("..") => {
                return Err(self.refuse(
                    t.start,
                    "range",
                    "ranges are not supported in SSP queries",
                ));
            }
            _ => self.parse_primary()?,
        };

        loop {
            let t = self.peek()?;
            // Postfix operators and tokens SurrealDB rejects in expressions.
            match &t.tok {
                Tok::Punct("(") => {
                    return Err(self.refuse(
                        t.start,
                        "call of an expression",
                        "only the builtin functions SSP supports may be called",
                    ));
                }
                Tok::Punct("..") => {
                    return Err(self.refuse(
                        t.start,
                        "range",
                        "ranges are not supported in SSP queries",
                    ));
                }
                Tok::Punct(">") if self.followed_by(&t, "..") => {
                    return Err(self.refuse(
                        t.start,
                        "range",
                        "ranges are not supported in SSP queries",
                    ));
                }
                Tok::Punct(p @ ("+=" | "-=" | "+?=")) => {
                    return Err(self.refuse(
                        t.start,
                        &format!("assignment `{p}`"),
                        "not valid in a query",
                    ));
                }
                _ => {}
            }
            let Some((bp, infix)) = self.infix(&t)? else {
                break;
            };
            if bp <= min {
                break;
            }
            let op = match infix {
                Infix::Op(op, extra) => {
                    self.bump(&t);
                    for _ in 0..extra {
                        let word = self.peek()?;
                        self.bump(&word);
                    }
                    op
                }
                Infix::Refused(construct, why) => return Err(self.refuse(t.start, &construct, why)),
            };
            let membership = matches!(op, BinOp::Inside | BinOp::NotInside);
            let rhs = if membership && self.subquery_next()? {
                self.parse_value_subquery()?
            } else if membership && self.graph_arrow(&self.peek()?).is_some() {
                Expr::Traversal(self.parse_graph_steps()?)
            } else {
                self.parse_expr(bp)?
            };
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok(lhs)
    }

    /// Classifies `t` as an infix operator with its binding power, or `None`
    /// if it ends the expression.
    pub(super) fn infix(&self, t: &Token) -> PResult<Option<(Bp, Infix)>> {
        use BinOp::*;
        let arith = "SSP does not evaluate arithmetic in queries";
        let unsupported_op = "this operator is not supported in SSP queries";
        let op = |bp: Bp, op: BinOp| Some((bp, Infix::Op(op, 0)));
        let refused =
            |bp: Bp, what: String, why: &'static str| Some((bp, Infix::Refused(what, why)));
        Ok(match &t.tok {
            Tok::Word(w) => match w.to_ascii_uppercase().as_str() {
                "OR" => op(Bp::Or, Or),
                "AND" => op(Bp::And, And),
                "IS" => {
                    if self.peek_after(t)?.is_kw("NOT") {
                        Some((Bp::Equality, Infix::Op(Ne, 1)))
                    } else {
                        op(Bp::Equality, Eq)
                    }
                }
                "CONTAINS" => op(Bp::Relation, Contains),
                "CONTAINSANY" => op(Bp::Relation, ContainsAny),
                "CONTAINSALL" => op(Bp::Relation, ContainsAll),
                "CONTAINSNONE" => op(Bp::Relation, ContainsNone),
                "INSIDE" | "IN" => op(Bp::Relation, Inside),
                "NOTINSIDE" => op(Bp::Relation, NotInside),
                "NOT" => {
                    if self.peek_after(t)?.is_kw("IN") {
                        Some((Bp::Relation, Infix::Op(NotInside, 1)))
                    } else {
                        refused(Bp::Relation, "NOT without IN".into(), unsupported_op)
                    }
                }
                u @ ("CONTAINSNOT" | "ALLINSIDE" | "ANYINSIDE" | "NONEINSIDE" | "OUTSIDE"
                | "INTERSECTS") => refused(Bp::Relation, format!("operator {u}"), unsupported_op),
                _ => None,
            },
            Tok::Punct(p) => match *p {
                "||" => op(Bp::Or, Or),
                "&&" => op(Bp::And, And),
                "=" => op(Bp::Equality, Eq),
                "==" => op(Bp::Equality, ExactEq),
                "!=" => op(Bp::Equality, Ne),
                "*=" | "?=" => refused(Bp::Equality, format!("operator `{p}`"), unsupported_op),
                "@" => refused(Bp::Equality, "full-text match `@@`".into(), unsupported_op),
                "<" => {
                    if ["-", "~", "->"].iter().any(|s| self.followed_by(t, s)) {
                        refused(
                            Bp::Relation,
                            "graph traversal".into(),
                            "graph traversal is not supported",
                        )
                    } else if self.followed_by(t, "..") {
                        refused(
                            Bp::Relation,
                            "range".into(),
                            "ranges are not supported in SSP queries",
                        )
                    } else {
                        op(Bp::Relation, Lt)
                    }
                }
                "<=" => op(Bp::Relation, Le),
                ">" => op(Bp::Relation, Gt),
                ">=" => op(Bp::Relation, Ge),
                "∋" => op(Bp::Relation, Contains),
                "∈" => op(Bp::Relation, Inside),
                "∉" => op(Bp::Relation, NotInside),
                "⊇" => op(Bp::Relation, ContainsAll),
                "⊃" => op(Bp::Relation, ContainsAny),
                "⊅" => op(Bp::Relation, ContainsNone),
                "∌" | "⊆" | "⊂" | "⊄" => {
                    refused(Bp::Relation, format!("operator `{p}`"), unsupported_op)
                }
                "<|" => refused(
                    Bp::Relation,
                    "nearest-neighbour operator `<|..|>`".into(),
                    unsupported_op,
                ),
                "+" | "-" => refused(Bp::AddSub, format!("arithmetic operator `{p}`"), arith),
                "*" | "×" | "/" | "÷" | "%" => {
                    refused(Bp::MulDiv, format!("arithmetic operator `{p}`"), arith)
                }
                "**" => refused(Bp::Power, "arithmetic operator `**`".into(), arith),
                "?:" | "?" => refused(Bp::Nullish, format!("operator `{p}`"), unsupported_op),
                "~" | "!~" | "?~" | "*~" => {
                    refused(Bp::Equality, format!("operator `{p}`"), unsupported_op)
                }
                _ => None,
            },
            _ => None,
        })
    }

    /// Words that SurrealDB treats as something other than an identifier when
    /// they start an expression.
    pub(super) fn word_is_special_prime(w: &str) -> bool {
        matches!(
            w.to_ascii_uppercase().as_str(),
            "NONE"
                | "NULL"
                | "TRUE"
                | "FALSE"
                | "SELECT"
                | "IF"
                | "CREATE"
                | "EXPLAIN"
                | "UPDATE"
                | "UPSERT"
                | "DELETE"
                | "RELATE"
                | "INSERT"
                | "DEFINE"
                | "REMOVE"
                | "REBUILD"
                | "ALTER"
                | "INFO"
                | "FOR"
                | "LET"
                | "RETURN"
                | "THROW"
                | "CONTINUE"
                | "BREAK"
                | "FUNCTION"
        ) || w == "NaN"
            || w == "Infinity"
    }

    /// A primary expression and its path continuation.
    pub(super) fn parse_primary(&mut self) -> PResult<Expr> {
        let t = self.peek()?;
        match &t.tok {
            Tok::Digits => {
                let (n, end) = self.lex_number(t.start)?;
                self.pos = end;
                self.refuse_path_on(t.start, "a literal")?;
                Ok(Expr::Literal(n.into_value()))
            }
            Tok::Str(s) => {
                let v = Value::str(s);
                self.bump(&t);
                self.refuse_path_on(t.start, "a literal")?;
                Ok(Expr::Literal(v))
            }
            Tok::Prefixed('d', s) => {
                let v = self.parse_datetime(&t, s)?;
                self.bump(&t);
                self.refuse_path_on(t.start, "a literal")?;
                Ok(Expr::Literal(Value::datetime(v)))
            }
            Tok::Prefixed('r', s) => {
                let rid = self.parse_record_id_string(&t, s)?;
                self.bump(&t);
                self.refuse_path_on(t.start, "a record id")?;
                Ok(Expr::Literal(Value::thing(rid)))
            }
            Tok::Prefixed('u', s) => {
                let v = match s.parse::<sdb::Uuid>() {
                    Ok(u) => Value::uuid(u.into_inner()),
                    Err(e) => {
                        return Err(self.error(t.start, "invalid uuid", &e.to_string(), None));
                    }
                };
                self.bump(&t);
                self.refuse_path_on(t.start, "a literal")?;
                Ok(Expr::Literal(v))
            }
            Tok::Prefixed(p, _) => {
                let construct = match p {
                    'b' => "bytes literal",
                    _ => "file literal",
                };
                Err(self.refuse(t.start, construct, "not supported in SSP queries"))
            }
            Tok::Param(name) => {
                let name = name.clone();
                self.bump(&t);
                let mut path = Vec::new();
                self.parse_path_rest(&mut path)?;
                Ok(Expr::Param { name, path })
            }
            Tok::Punct("[") => {
                self.bump(&t);
                let mut items = Vec::new();
                loop {
                    let n = self.peek()?;
                    if n.is("]") {
                        self.bump(&n);
                        break;
                    }
                    items.push(self.parse_expr(Bp::Base)?);
                    let n = self.peek()?;
                    if n.is(",") {
                        self.bump(&n);
                    } else if n.is("]") {
                        self.bump(&n);
                        break;
                    } else {
                        return Err(self.unexpected(&n, "`,` or `]`"));
                    }
                }
                self.refuse_path_on(t.start, "an array literal")?;
                Ok(Expr::Array(items))
            }
            Tok::Punct("(") => {
                if self.peek_after(&t)?.is_kw("SELECT") {
                    return Err(self.subquery_in_expression(&t));
                }
                self.bump(&t);
                let inner = self.parse_expr(Bp::Base)?;
                let n = self.peek()?;
                if n.is(",") {
                    return Err(self.refuse(
                        t.start,
                        "geometry point",
                        "geometries are not supported",
                    ));
                }
                self.expect_punct(")", "`)`")?;
                self.refuse_path_on(t.start, "a parenthesised expression")?;
                Ok(inner)
            }
            Tok::Punct("{") => Err(self.refuse(
                t.start,
                "object literal or block",
                "objects and blocks are not supported in SSP queries",
            )),
            Tok::Punct("|") | Tok::Punct("||") => Err(self.refuse(
                t.start,
                "closure",
                "closures are not supported in SSP queries",
            )),
            Tok::Punct("/") => Err(self.refuse(
                t.start,
                "regex literal",
                "regexes are not supported in SSP queries",
            )),
            Tok::Punct("->") => Err(self.refuse(
                t.start,
                "graph traversal",
                "graph traversal is not supported",
            )),
            Tok::Punct("@") => Err(self.refuse(
                t.start,
                "document reference `@`",
                "not supported in SSP queries",
            )),
            Tok::Word(w) => self.parse_word(&t, w),
            Tok::Quoted(_) => self.parse_identifier(&t),
            _ => Err(self.unexpected(&t, "an expression")),
        }
    }

    /// Whether `(SELECT` comes next.
    fn subquery_next(&self) -> PResult<bool> {
        let t = self.peek()?;
        Ok(t.is("(") && self.peek_after(&t)?.is_kw("SELECT"))
    }

    /// `(SELECT VALUE path FROM table [WHERE ..])` on the right of `IN`
    /// (see [`Expr::Subquery`]), the parenthesis being next. Nothing in it
    /// may read the row (`$parent`, `$this`): its value is the same for
    /// every row, so a change to its table is one evaluation, not one per
    /// row.
    pub(super) fn parse_value_subquery(&mut self) -> PResult<Expr> {
        const WHAT: &str = "subquery inside an expression";
        const SHAPE: &str = "SSP takes `x IN (SELECT VALUE path FROM table [WHERE ...])` in an \
                             expression, and subqueries as projections: `(SELECT ...)[n] AS alias`";
        let open = self.expect_punct("(", "`(`")?;
        let select_kw = self.peek()?;
        self.bump(&select_kw);
        let t = self.peek()?;
        if !t.is_kw("VALUE") {
            return Err(self.refuse(t.start, WHAT, SHAPE));
        }
        self.bump(&t);
        let at = self.peek()?.start;
        let value = self.parse_expr(Bp::Base)?;
        if !matches!(value, Expr::Field(_)) {
            return Err(self.refuse(at, WHAT, SHAPE));
        }
        let t = self.peek()?;
        if !t.is_kw("FROM") {
            return Err(self.unexpected(&t, "`FROM`"));
        }
        self.bump(&t);
        let from = self.peek()?.start;
        let (only, table, ids, graph) = self.parse_from_target(true)?;
        if only || ids.is_some() || !graph.is_empty() || table.is_empty() {
            return Err(self.refuse(from, WHAT, SHAPE));
        }
        let filter = if self.eat_kw("WHERE")? {
            Some(self.parse_expr(Bp::Base)?)
        } else {
            None
        };
        let t = self.peek()?;
        if !t.is(")") {
            return Err(self.refuse(t.start, WHAT, SHAPE));
        }
        self.bump(&t);
        if filter.as_ref().is_some_and(reads_the_row) {
            return Err(self.refuse(
                open.start,
                "correlated subquery inside an expression",
                "a subquery in `WHERE` may not read `$parent` or `$this`",
            ));
        }
        self.refuse_path_on(open.start, "a subquery")?;
        Ok(Expr::Subquery(Box::new(Select {
            value: true,
            fields: vec![Field::Expr {
                expr: value,
                alias: None,
            }],
            table,
            filter,
            ..Select::default()
        })))
    }

    pub(super) fn subquery_in_expression(&self, t: &Token) -> ParseError {
        self.refuse(
            t.start,
            "subquery inside an expression",
            "subqueries are supported only as projections: `(SELECT ...)[n] AS alias`",
        )
    }

    /// A primary starting with an unquoted word: a keyword literal, a
    /// statement keyword, or an identifier.
    pub(super) fn parse_word(&mut self, t: &Token, w: &str) -> PResult<Expr> {
        let literal = match w.to_ascii_uppercase().as_str() {
            "NONE" => Some(Value::None),
            "NULL" => Some(Value::Null),
            "TRUE" => Some(Value::Bool(true)),
            "FALSE" => Some(Value::Bool(false)),
            _ if w == "NaN" => Some(Value::Number(Number::Float(f64::NAN))),
            _ if w == "Infinity" => Some(Value::Number(Number::Float(f64::INFINITY))),
            _ => None,
        };
        if let Some(v) = literal {
            self.bump(t);
            self.refuse_path_on(t.start, "a literal")?;
            return Ok(Expr::Literal(v));
        }
        let upper = w.to_ascii_uppercase();
        if upper == "SELECT" {
            return Err(self.subquery_in_expression(t));
        }
        if Self::word_is_special_prime(w) {
            let construct = match upper.as_str() {
                "FUNCTION" => "embedded JavaScript function".to_string(),
                "IF" => "IF expression".to_string(),
                _ => format!("{upper} statement"),
            };
            return Err(self.refuse(t.start, &construct, "not supported inside an SSP query"));
        }
        let next = self.peek_after(t)?;
        if upper == "SLEEP" && !next.is("(") {
            return Err(self.refuse(
                t.start,
                "SLEEP statement",
                "not supported inside an SSP query",
            ));
        }
        // `fn::x()`, `mod::x()`, `silo::x()`, `ml::x()`: custom functions and
        // models, refused by `parse_call` as unknown functions.
        self.parse_identifier(t)
    }

    /// An identifier at the start of an expression: a function call
    /// (`name(` / `a::b(`), a record id (`table:key`) or a field path.
    pub(super) fn parse_identifier(&mut self, t: &Token) -> PResult<Expr> {
        let name = t.ident().unwrap_or("").to_string();
        let next = self.peek_after(t)?;
        if next.is("(") || next.is("::") {
            return self.parse_call(t);
        }
        if next.is(":") {
            let rid = self.parse_record_id(t)?;
            self.refuse_path_on(t.start, "a record id")?;
            return Ok(Expr::Literal(Value::thing(rid)));
        }
        self.bump(t);
        let mut path = vec![PathPart::Field(name.into())];
        self.parse_path_rest(&mut path)?;
        Ok(Expr::Field(path))
    }

    /// `name(args)` or `a::b::c(args)`; `t` is the first name token.
    pub(super) fn parse_call(&mut self, t: &Token) -> PResult<Expr> {
        let mut name = t.ident().unwrap_or("").to_lowercase();
        self.bump(t);
        loop {
            let n = self.peek()?;
            if !n.is("::") {
                break;
            }
            self.bump(&n);
            let part = self.peek()?;
            let Some(p) = part.ident() else {
                return Err(self.unexpected(&part, "a function name"));
            };
            name.push_str("::");
            name.push_str(&p.to_lowercase());
            self.bump(&part);
        }
        let open = self.peek()?;
        if !open.is("(") {
            return Err(self.refuse(
                t.start,
                &format!("constant {name}"),
                &format!("the constant `{name}` is not supported in SSP queries"),
            ));
        }
        self.bump(&open);
        let mut args = Vec::new();
        loop {
            let n = self.peek()?;
            if n.is(")") {
                self.bump(&n);
                break;
            }
            args.push(self.parse_expr(Bp::Base)?);
            let n = self.peek()?;
            if n.is(",") {
                self.bump(&n);
            } else if n.is(")") {
                self.bump(&n);
                break;
            } else {
                return Err(self.unexpected(&n, "`,` or `)`"));
            }
        }
        let arity_error = |want: usize, got: usize| {
            self.refuse(
                t.start,
                &format!("function {name}"),
                &format!(
                    "`{name}` takes {want} argument{}, found {got}",
                    if want == 1 { "" } else { "s" }
                ),
            )
        };
        let expr = if name == "not" {
            // `NOT (x)` is a call of the builtin `not`: logical negation.
            if args.len() != 1 {
                return Err(arity_error(1, args.len()));
            }
            let mut args = args;
            match args.pop() {
                Some(a) => Expr::Not(Box::new(a)),
                None => return Err(arity_error(1, 0)),
            }
        } else {
            let Some(func) = Function::from_name(&name) else {
                return Err(self.refuse(
                    t.start,
                    &format!("function {name}"),
                    &format!(
                        "unknown or unsupported function `{name}`; SSP supports {}",
                        supported_functions()
                    ),
                ));
            };
            let mut args = args;
            if func == Function::StringSlice && args.len() == 2 {
                // `string::slice(s, start)`: to the end.
                args.push(Expr::Literal(Value::Number(Number::Int(i64::MAX))));
            }
            if args.len() != func.arity() {
                return Err(arity_error(func.arity(), args.len()));
            }
            if func == Function::StringSlice
                && !args[1..]
                    .iter()
                    .all(|a| matches!(a, Expr::Literal(Value::Number(Number::Int(_)))))
            {
                return Err(self.refuse(
                    t.start,
                    &format!("function {name}"),
                    "SSP takes `string::slice(s, start[, end])` with integer literals for \
                     `start` and `end`",
                ));
            }
            // SurrealDB fails the whole query when one of these meets
            // anything but a record id; `id` and `$parent.id` always hold one.
            if matches!(func, Function::RecordKey | Function::RecordTable) {
                let id = [PathPart::Field("id".into())];
                let on_id = match &args[0] {
                    Expr::Field(p) => p.as_slice() == id,
                    Expr::Param { name, path } => {
                        name.eq_ignore_ascii_case("parent") && path.as_slice() == id
                    }
                    _ => false,
                };
                if !on_id {
                    return Err(self.refuse(
                        t.start,
                        &format!("function {name}"),
                        &format!(
                            "SSP takes `{name}` only of `id` or `$parent.id` (anything \
                             that is not a record id fails the whole query in SurrealDB)"
                        ),
                    ));
                }
            }
            Expr::Call { func, args }
        };
        self.refuse_path_on(t.start, "a function result")?;
        Ok(expr)
    }

    /// Whether `t` continues a path (`.`, `[`, `...`, `->`, `<-`, `<~`, `<->`).
    pub(super) fn is_path_continuation(&self, t: &Token) -> bool {
        t.is(".")
            || t.is("[")
            || t.is("...")
            || t.is("->")
            || (t.is("<") && ["-", "~", "->"].iter().any(|s| self.followed_by(t, s)))
    }

    /// SurrealDB lets a path continue any value (`'a'.len()`, `[1][0]`,
    /// `user:1.name`); SSP supports paths only on fields and params.
    pub(super) fn refuse_path_on(&self, at: usize, what: &str) -> PResult<()> {
        let t = self.peek()?;
        if self.is_path_continuation(&t) {
            let construct = if t.is("->") || t.is("<") {
                "graph traversal".to_string()
            } else {
                format!("path on {what}")
            };
            return Err(self.refuse(
                if t.is("->") || t.is("<") { t.start } else { at },
                &construct,
                "field paths are supported only on fields and $params",
            ));
        }
        Ok(())
    }

    /// Path parts after a field or param: `.name` and `[n]`.
    pub(super) fn parse_path_rest(&mut self, path: &mut Vec<PathPart>) -> PResult<()> {
        loop {
            let t = self.peek()?;
            if t.is(".") {
                self.bump(&t);
                let n = self.peek()?;
                let refused = match &n.tok {
                    Tok::Punct("*") => Some("`.*` (all fields)"),
                    Tok::Punct("?") => Some("optional part `.?`"),
                    Tok::Punct("@") => Some("recursion `.@`"),
                    Tok::Punct("{") => Some("destructuring or recursion `.{}`"),
                    _ => None,
                };
                if let Some(construct) = refused {
                    return Err(self.refuse(t.start, construct, "not supported in SSP queries"));
                }
                let Some(name) = n.ident() else {
                    return Err(self.unexpected(&n, "a field name"));
                };
                let name = name.to_string();
                self.bump(&n);
                let after = self.peek()?;
                if after.is("(") {
                    return Err(self.refuse(
                        n.start,
                        &format!("method call .{name}()"),
                        "method calls are not supported in SSP queries",
                    ));
                }
                path.push(PathPart::Field(name.into()));
            } else if t.is("[") {
                path.push(PathPart::Index(self.parse_bracket_index()?));
            } else if t.is("...") {
                return Err(self.refuse(t.start, "flatten `...`", "not supported in SSP queries"));
            } else if t.is("->") || (t.is("<") && self.is_path_continuation(&t)) {
                return Err(self.refuse(
                    t.start,
                    "graph traversal",
                    "graph traversal is not supported",
                ));
            } else {
                return Ok(());
            }
        }
    }

    /// `[n]` with a non-negative integer literal; the `[` is next.
    pub(super) fn parse_bracket_index(&mut self) -> PResult<usize> {
        let open = self.expect_punct("[", "`[`")?;
        let t = self.peek()?;
        let refused = if t.is("*") {
            Some("`[*]` (all elements)")
        } else if t.is("$") {
            Some("`[$]` (last element)")
        } else if t.is("?") || t.is_kw("WHERE") {
            Some("filter `[WHERE ...]`")
        } else {
            None
        };
        if let Some(construct) = refused {
            return Err(self.refuse(
                open.start,
                construct,
                "only `[n]` with an integer literal is supported",
            ));
        }
        let e = self.parse_expr(Bp::Base)?;
        self.expect_punct("]", "`]`")?;
        match e {
            Expr::Literal(Value::Number(Number::Int(n))) if n >= 0 => usize::try_from(n)
                .map_err(|_| self.refuse(open.start, "index", "index out of range")),
            _ => Err(self.refuse(
                open.start,
                "computed index",
                "only `[n]` with a non-negative integer literal is supported",
            )),
        }
    }

    // --- literals ---------------------------------------------------------
}

/// Whether `e` reads the row a subquery is evaluated for.
fn reads_the_row(e: &Expr) -> bool {
    match e {
        Expr::Param { name, .. } => {
            name.eq_ignore_ascii_case("parent") || name.eq_ignore_ascii_case("this")
        }
        Expr::Literal(_) | Expr::Field(_) => false,
        Expr::Array(items) => items.iter().any(reads_the_row),
        Expr::Not(x) => reads_the_row(x),
        Expr::Binary { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
            reads_the_row(lhs) || reads_the_row(rhs)
        }
        Expr::Call { args, .. } => args.iter().any(reads_the_row),
        Expr::Subquery(q) => q.filter.as_ref().is_some_and(reads_the_row),
        // From the subquery's own rows.
        Expr::Traversal(_) => false,
    }
}
