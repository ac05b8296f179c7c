//! Expressions: operators, paths, function calls, and the uncorrelated
//! subquery on the right of `IN`.

use super::*;
use surrealdb::types::ToSql;

const ARITH: &str = "SSP does not evaluate arithmetic in queries";
const UNSUPPORTED_OP: &str = "this operator is not supported in SSP queries";
const NOT_IN_SSP: &str = "not supported in SSP queries";

impl Lower<'_> {
    /// An expression of `WHERE`, the projection or a function argument.
    pub(super) fn expr(&self, e: sql::Expr) -> PResult<Expr> {
        match e {
            sql::Expr::Literal(l) => self.literal(l),
            sql::Expr::Param(p) if p.as_str().eq_ignore_ascii_case("this") => {
                Err(self.this_alone())
            }
            sql::Expr::Param(p) => Ok(Expr::Param {
                name: p.as_str().to_owned(),
                path: Vec::new(),
            }),
            sql::Expr::Idiom(i) => self.idiom(i),
            sql::Expr::Prefix { op, expr } => self.prefix(op, *expr),
            sql::Expr::Postfix { op, .. } => Err(match op {
                sql::PostfixOperator::Range | sql::PostfixOperator::RangeSkip => {
                    self.refuse("..", "range", "ranges are not supported in SSP queries")
                }
                sql::PostfixOperator::MethodCall(name, _) => self.method(&name),
                sql::PostfixOperator::Call(_) => self.refuse(
                    "(",
                    "call of an expression",
                    "only the builtin functions SSP supports may be called",
                ),
            }),
            sql::Expr::Binary { left, op, right } => self.binary(*left, op, *right),
            sql::Expr::FunctionCall(call) => self.call(*call),
            sql::Expr::Select(_) => Err(self.subquery_in_expression()),
            sql::Expr::Table(t) => {
                Err(self.refuse(t.as_str(), "table name in an expression", NOT_IN_SSP))
            }
            sql::Expr::Constant(c) => {
                let name = c.to_sql().to_lowercase();
                Err(self.refuse(
                    &name,
                    &format!("constant {name}"),
                    &format!("the constant `{name}` is not supported in SSP queries"),
                ))
            }
            sql::Expr::Mock(_) => Err(self.refuse("|", "mock", NOT_IN_SSP)),
            sql::Expr::Block(_) => Err(self.refuse(
                "{",
                "object literal or block",
                "objects and blocks are not supported in SSP queries",
            )),
            sql::Expr::Closure(_) => {
                Err(self.refuse("|", "closure", "closures are not supported in SSP queries"))
            }
            sql::Expr::IfElse(_) => {
                Err(self.refuse("IF", "IF expression", "not supported inside an SSP query"))
            }
            e => {
                let kw = select::statement_keyword(&e).unwrap_or("expression");
                Err(self.refuse(
                    kw,
                    &format!("{kw} statement"),
                    "not supported inside an SSP query",
                ))
            }
        }
    }

    fn this_alone(&self) -> ParseError {
        self.refuse(
            "$this",
            "`$this` (the whole record)",
            "SSP reads fields of the current record: `$this.field`, or `field`",
        )
    }

    pub(super) fn subquery_in_expression(&self) -> ParseError {
        self.refuse(
            "(",
            "subquery inside an expression",
            "subqueries are supported only as projections: `(SELECT ...)[n] AS alias`",
        )
    }

    fn unknown_function(&self, name: &str) -> ParseError {
        self.refuse(
            name,
            &format!("function {name}"),
            &format!(
                "unknown or unsupported function `{name}`; SSP supports {}",
                supported_functions()
            ),
        )
    }

    fn method(&self, name: &str) -> ParseError {
        self.refuse(
            &format!(".{name}"),
            &format!("method call .{name}()"),
            "method calls are not supported in SSP queries",
        )
    }

    /// `!e`, `-5`; casts and ranges are refused.
    fn prefix(&self, op: sql::PrefixOperator, e: sql::Expr) -> PResult<Expr> {
        match op {
            sql::PrefixOperator::Not => Ok(Expr::Not(Box::new(self.expr(e)?))),
            sql::PrefixOperator::Positive | sql::PrefixOperator::Negate => {
                let negate = matches!(op, sql::PrefixOperator::Negate);
                let sign = if negate { "-" } else { "+" };
                // Negation SSP folds for number literals only.
                match (self.expr(e), negate) {
                    (Ok(e @ Expr::Literal(Value::Number(_))), false) => Ok(e),
                    (Ok(Expr::Literal(Value::Number(Number::Float(f)))), true) => {
                        Ok(Expr::Literal(Value::Number(Number::Float(-f))))
                    }
                    (Ok(Expr::Literal(Value::Number(Number::Int(i)))), true) if i != i64::MIN => {
                        Ok(Expr::Literal(Value::Number(Number::Int(-i))))
                    }
                    (Err(e), _) => Err(e),
                    (Ok(Expr::Literal(Value::Duration(_))), _) => {
                        Err(self.refuse(sign, "signed duration literal", "durations have no sign"))
                    }
                    _ => Err(self.refuse(sign, &format!("arithmetic operator `{sign}`"), ARITH)),
                }
            }
            sql::PrefixOperator::Range | sql::PrefixOperator::RangeInclusive => {
                Err(self.refuse("..", "range", "ranges are not supported in SSP queries"))
            }
            sql::PrefixOperator::Cast(_) => Err(self.refuse("<", "cast", NOT_IN_SSP)),
        }
    }

    fn binary(&self, left: sql::Expr, op: sql::BinaryOperator, right: sql::Expr) -> PResult<Expr> {
        use sql::BinaryOperator as B;
        let op = match op {
            B::Or => BinOp::Or,
            B::And => BinOp::And,
            B::Equal => BinOp::Eq,
            B::ExactEqual => BinOp::ExactEq,
            B::NotEqual => BinOp::Ne,
            B::LessThan => BinOp::Lt,
            B::LessThanEqual => BinOp::Le,
            B::MoreThan => BinOp::Gt,
            B::MoreThanEqual => BinOp::Ge,
            B::Contain => BinOp::Contains,
            B::ContainAny => BinOp::ContainsAny,
            B::ContainAll => BinOp::ContainsAll,
            B::ContainNone => BinOp::ContainsNone,
            B::Inside => BinOp::Inside,
            B::NotInside => BinOp::NotInside,
            B::Add | B::Subtract | B::Multiply | B::Divide | B::Remainder | B::Power => {
                let text = op.to_sql();
                return Err(self.refuse(
                    text.trim(),
                    &format!("arithmetic operator `{}`", text.trim()),
                    ARITH,
                ));
            }
            B::Range | B::RangeInclusive | B::RangeSkip | B::RangeSkipInclusive => {
                return Err(self.refuse("..", "range", "ranges are not supported in SSP queries"));
            }
            B::Matches(_) => {
                return Err(self.refuse("@", "full-text match `@@`", UNSUPPORTED_OP));
            }
            B::NearestNeighbor(_) => {
                return Err(self.refuse(
                    "<|",
                    "nearest-neighbour operator `<|..|>`",
                    UNSUPPORTED_OP,
                ));
            }
            other => {
                let text = other.to_sql();
                let text = text.trim();
                let construct = if text.chars().all(|c| c.is_ascii_alphabetic()) {
                    format!("operator {}", text.to_ascii_uppercase())
                } else {
                    format!("operator `{text}`")
                };
                return Err(self.refuse(text, &construct, UNSUPPORTED_OP));
            }
        };
        if matches!(op, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge) {
            // `expires > time::now()`, `time::now() - 35s < ping`: a time
            // window (see [`Expr::Now`]). A clock on both sides is refused
            // as the unknown function it then is.
            if let Some(now) = self.clock(&left)? {
                return Ok(Expr::Binary {
                    op,
                    lhs: Box::new(now),
                    rhs: Box::new(self.expr(right)?),
                });
            }
            if let Some(now) = self.clock(&right)? {
                return Ok(Expr::Binary {
                    op,
                    lhs: Box::new(self.expr(left)?),
                    rhs: Box::new(now),
                });
            }
        }
        let lhs = self.expr(left)?;
        let membership = matches!(op, BinOp::Inside | BinOp::NotInside);
        let right = match right {
            sql::Expr::Idiom(i) => sql::Expr::Idiom(of_the_row(i)),
            e => e,
        };
        let rhs = match right {
            sql::Expr::Select(q) if membership => self.value_subquery(*q)?,
            sql::Expr::Idiom(i)
                if membership && matches!(i.0.first(), Some(sql::Part::Graph(_))) =>
            {
                Expr::Traversal(self.graph_steps(
                    &i.0,
                    "a traversal is `->edge` or `->edge->table`, or the same with `<-`",
                )?)
            }
            e => self.expr(e)?,
        };
        Ok(Expr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        })
    }

    /// `time::now()`, or `time::now() + d` / `time::now() - d` with a
    /// duration literal `d`, as [`Expr::Now`]; `None` for anything else.
    fn clock(&self, e: &sql::Expr) -> PResult<Option<Expr>> {
        fn is_now(e: &sql::Expr) -> bool {
            matches!(e, sql::Expr::FunctionCall(c)
                if c.arguments.is_empty()
                    && matches!(&c.receiver, sql::Function::Normal(n) if n.eq_ignore_ascii_case("time::now")))
        }
        if is_now(e) {
            return Ok(Some(Expr::Now { offset_ns: 0 }));
        }
        let sql::Expr::Binary { left, op, right } = e else {
            return Ok(None);
        };
        let minus = match op {
            sql::BinaryOperator::Add => false,
            sql::BinaryOperator::Subtract => true,
            _ => return Ok(None),
        };
        let (true, sql::Expr::Literal(sql::Literal::Duration(d))) = (is_now(left), &**right) else {
            return Ok(None);
        };
        let Ok(ns) = i64::try_from(d.as_nanos()) else {
            return Err(self.refuse(
                "time::now",
                "function time::now",
                "SSP takes durations of up to 292 years next to `time::now()`",
            ));
        };
        Ok(Some(Expr::Now {
            offset_ns: if minus { -ns } else { ns },
        }))
    }

    /// `(SELECT VALUE path FROM table [WHERE ..])` on the right of `IN`
    /// (see [`Expr::Subquery`]). Nothing in it may read the row (`$parent`,
    /// `$this`): its value is the same for every row, so a change to its
    /// table is one evaluation, not one per row.
    fn value_subquery(&self, q: sql::SelectStatement) -> PResult<Expr> {
        const WHAT: &str = "subquery inside an expression";
        const SHAPE: &str = "SSP takes `x IN (SELECT VALUE path FROM table [WHERE ...])` in an \
                             expression, and subqueries as projections: `(SELECT ...)[n] AS alias`";
        let select::Parts {
            fields,
            omit,
            only,
            what,
            cond,
            order,
            limit,
            start,
            fetch,
            refused,
        } = select::parts(q);
        let sql::Fields::Value(selector) = fields else {
            return Err(self.refuse("(", WHAT, SHAPE));
        };
        let plain = omit.is_empty()
            && !only
            && order.is_none()
            && limit.is_none()
            && start.is_none()
            && fetch.is_none()
            && refused.refusal().is_none()
            && selector.alias.is_none();
        let table = match what.as_slice() {
            [sql::Expr::Table(t)] if plain => t.as_str().to_owned(),
            _ => return Err(self.refuse("(", WHAT, SHAPE)),
        };
        let value = self.expr(selector.expr)?;
        if !matches!(value, Expr::Field(_)) {
            return Err(self.refuse("(", WHAT, SHAPE));
        }
        let filter = cond.map(|c| self.expr(c.0)).transpose()?;
        if filter.as_ref().is_some_and(Expr::reads_the_clock) {
            // Its value is computed once and bound; no timer moves it.
            return Err(self.refuse(
                "time::now",
                "`time::now()` in a subquery inside an expression",
                "SSP follows `time::now()` in the `WHERE` of the view and of its subquery \
                 projections only",
            ));
        }
        if filter.as_ref().is_some_and(reads_the_row) {
            return Err(self.refuse(
                "(",
                "correlated subquery inside an expression",
                "a subquery in `WHERE` may not read `$parent` or `$this`",
            ));
        }
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

    /// A path: of the row (`a.b[0]`) or of a `$param` (`$parent.author`).
    fn idiom(&self, i: sql::Idiom) -> PResult<Expr> {
        let mut parts = of_the_row(i).0.into_iter();
        match parts.next() {
            Some(sql::Part::Field(name)) => {
                let mut path = vec![PathPart::Field(name.as_str().into())];
                path.extend(self.parts(parts.collect(), "a field")?);
                Ok(Expr::Field(path))
            }
            // `$this[0]` and the like: `$this` other than before a field
            // or a traversal (see `of_the_row`).
            Some(sql::Part::Start(sql::Expr::Param(p)))
                if p.as_str().eq_ignore_ascii_case("this") =>
            {
                Err(self.this_alone())
            }
            Some(sql::Part::Start(sql::Expr::Param(p))) => Ok(Expr::Param {
                name: p.as_str().to_owned(),
                path: self.parts(parts.collect(), "a parameter")?,
            }),
            // `record::id(id) < -1`: SurrealDB's parser reads `< -` as the
            // start of a traversal (`<-`) and, backing off, leaves the left
            // side as a path of nothing but its start, which is that
            // expression itself. (The differential suite found
            // `fn::linkname(link) < -0.0` refused.)
            Some(sql::Part::Start(start)) if parts.len() == 0 => self.expr(start),
            Some(sql::Part::Start(sql::Expr::Select(_))) => Err(self.refuse(
                "(",
                "path on a subquery",
                "field paths are supported only on fields and $params",
            )),
            // `array::last(content).text`: a path on a function's value
            // (`parts` refuses the parts SSP does not follow).
            Some(sql::Part::Start(start @ sql::Expr::FunctionCall(_))) if parts.len() > 0 => {
                let of = self.expr(start)?;
                let path = self.parts(parts.collect(), "a function result")?;
                Ok(Expr::Get {
                    of: Box::new(of),
                    path,
                })
            }
            Some(sql::Part::Start(start)) => {
                // Lowered first, so that what SSP refuses inside is named.
                let what = match self.expr(start)? {
                    Expr::Literal(Value::Thing(_)) => "a record id",
                    Expr::Literal(_) => "a literal",
                    Expr::Array(_) => "an array literal",
                    Expr::Call { .. } | Expr::Not(_) => "a function result",
                    _ => "a parenthesised expression",
                };
                let rest: Vec<sql::Part> = parts.collect();
                if matches!(rest.first(), Some(sql::Part::Graph(_))) {
                    return Err(self.refuse(
                        "-",
                        "graph traversal",
                        "graph traversal is not supported",
                    ));
                }
                if let Some(sql::Part::Method(name, _)) = rest.first() {
                    return Err(self.method(name));
                }
                Err(self.refuse(
                    "",
                    &format!("path on {what}"),
                    "field paths are supported only on fields and $params",
                ))
            }
            Some(sql::Part::Graph(_)) => {
                Err(self.refuse("-", "graph traversal", "graph traversal is not supported"))
            }
            Some(other) => {
                self.parts(vec![other], "the current record")?;
                Err(self.refuse("", "path", NOT_IN_SSP))
            }
            None => Err(self.refuse("", "empty path", NOT_IN_SSP)),
        }
    }

    /// Path parts after a field or param: `.name` and `[n]`.
    pub(super) fn parts(&self, parts: Vec<sql::Part>, on: &str) -> PResult<Vec<PathPart>> {
        parts.into_iter().map(|p| self.part(p, on)).collect()
    }

    fn part(&self, p: sql::Part, on: &str) -> PResult<PathPart> {
        let refused =
            |needle: &str, construct: &str| Err(self.refuse(needle, construct, NOT_IN_SSP));
        match p {
            sql::Part::Field(name) => Ok(PathPart::Field(name.as_str().into())),
            sql::Part::First => Ok(PathPart::Index(0)),
            sql::Part::Value(e) => match e {
                sql::Expr::Literal(sql::Literal::Integer(n)) if n >= 0 => usize::try_from(n)
                    .map(PathPart::Index)
                    .map_err(|_| self.refuse("[", "index", "index out of range")),
                sql::Expr::Literal(sql::Literal::String(_)) => Err(self.refuse(
                    "[",
                    "index by a string `['key']`",
                    "write the field as a path: `a.key`",
                )),
                _ => Err(self.refuse(
                    "[",
                    "computed index",
                    "only `[n]` with a non-negative integer literal is supported",
                )),
            },
            // SurrealDB reads `a.*` and `a[*]` alike.
            sql::Part::All => {
                if self
                    .src
                    .position("[*]")
                    .is_some_and(|b| self.src.position(".*").is_none_or(|d| b < d))
                {
                    refused("[*]", "`[*]` (all elements)")
                } else {
                    refused(".*", "`.*` (all fields)")
                }
            }
            sql::Part::Last => refused("[$]", "`[$]` (last element)"),
            sql::Part::Where(_) => refused("[", "filter `[WHERE ...]`"),
            sql::Part::Flatten => refused("...", "flatten `...`"),
            sql::Part::Optional => refused(".?", "optional part `.?`"),
            sql::Part::Recurse(..) | sql::Part::RepeatRecurse => refused(".@", "recursion `.@`"),
            sql::Part::Destructure(_) => refused(".{", "destructuring or recursion `.{}`"),
            sql::Part::Doc => refused("@", "document reference `@`"),
            sql::Part::Method(name, _) => Err(self.method(&name)),
            sql::Part::Graph(_) => {
                Err(self.refuse("-", "graph traversal", "graph traversal is not supported"))
            }
            sql::Part::Start(_) => Err(self.refuse(
                "",
                &format!("path on {on}"),
                "field paths are supported only on fields and $params",
            )),
        }
    }

    /// `name(args)`: `not`, and the builtins of [`Function`].
    fn call(&self, call: sql::FunctionCall) -> PResult<Expr> {
        let name = match &call.receiver {
            sql::Function::Normal(name) => name.to_lowercase(),
            sql::Function::Custom(name) => {
                let body = self.inline(name, call.arguments)?;
                return self.expr(body);
            }
            sql::Function::Script(_) => {
                return Err(self.refuse(
                    "FUNCTION",
                    "embedded JavaScript function",
                    "not supported inside an SSP query",
                ));
            }
            other => {
                let text = sql::Expr::FunctionCall(Box::new(sql::FunctionCall {
                    receiver: other.clone(),
                    arguments: Vec::new(),
                }))
                .to_sql();
                let name = text.split('(').next().unwrap_or("").to_lowercase();
                return Err(self.unknown_function(&name));
            }
        };
        let mut args = call
            .arguments
            .into_iter()
            .map(|a| self.expr(a))
            .collect::<PResult<Vec<_>>>()?;
        let arity_error = |want: usize, got: usize| {
            self.refuse(
                &name,
                &format!("function {name}"),
                &format!(
                    "`{name}` takes {want} argument{}, found {got}",
                    if want == 1 { "" } else { "s" }
                ),
            )
        };
        if name == "not" {
            // `NOT (x)` is a call of the builtin `not`: logical negation.
            return match <[Expr; 1]>::try_from(args) {
                Ok([a]) => Ok(Expr::Not(Box::new(a))),
                Err(args) => Err(arity_error(1, args.len())),
            };
        }
        let Some(func) = Function::from_name(&name) else {
            return Err(self.unknown_function(&name));
        };
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
                &name,
                &format!("function {name}"),
                "SSP takes `string::slice(s, start[, end])` with integer literals for `start` and \
                 `end`",
            ));
        }
        // SurrealDB fails the whole query when one of these meets anything
        // but a record id; `id` and `$parent.id` always hold one.
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
                    &name,
                    &format!("function {name}"),
                    &format!(
                        "SSP takes `{name}` only of `id` or `$parent.id` (anything that is not a \
                         record id fails the whole query in SurrealDB)"
                    ),
                ));
            }
        }
        Ok(Expr::Call { func, args })
    }
}

/// A path of the current record written from `$this` (`$this.name`,
/// `$this<-owns<-user`) as the path itself (`name`, `<-owns<-user`):
/// SurrealDB's `$this` in `WHERE`, the projection and `ORDER BY` is the
/// record they are evaluated on (measured on 3.3.5, in subqueries too). A
/// function body inlined with `$this` for an argument reads it so.
pub(super) fn of_the_row(i: sql::Idiom) -> sql::Idiom {
    match i.0.as_slice() {
        [
            sql::Part::Start(sql::Expr::Param(p)),
            sql::Part::Field(_) | sql::Part::Graph(_),
            ..,
        ] if p.as_str().eq_ignore_ascii_case("this") => {
            sql::Idiom(i.0.into_iter().skip(1).collect())
        }
        _ => i,
    }
}

/// Whether `e` reads the row a subquery is evaluated for.
fn reads_the_row(e: &Expr) -> bool {
    match e {
        Expr::Param { name, .. } => {
            name.eq_ignore_ascii_case("parent") || name.eq_ignore_ascii_case("this")
        }
        Expr::Literal(_) | Expr::Field(_) | Expr::Now { .. } => false,
        Expr::Array(items) => items.iter().any(reads_the_row),
        Expr::Not(x) | Expr::Get { of: x, .. } => reads_the_row(x),
        Expr::Binary { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
            reads_the_row(lhs) || reads_the_row(rhs)
        }
        Expr::Call { args, .. } => args.iter().any(reads_the_row),
        Expr::Subquery(q) => q.filter.as_ref().is_some_and(reads_the_row),
        // From the subquery's own rows.
        Expr::Traversal(_) => false,
    }
}
