//! User functions (`fn::name(...)`), inlined: the call becomes the body of
//! the function with its arguments in place of its params, and is lowered
//! as if the view had written that expression.
//!
//! This is exact because of how SurrealDB 3.3.5 runs a function
//! (`exec/physical_expr/function/user_defined.rs`, and measured): the body
//! is evaluated on the caller's current record (`$this` and bare fields in
//! it are the row's) and sees the query's params, plus its own arguments,
//! each evaluated once and coerced to its declared kind. Inlining keeps all
//! of that as long as:
//!
//! * the body is one expression (`RETURN e`, or `{ e }`), with no return
//!   kind to coerce to (or `any`);
//! * each param's kind passes a value through unchanged or fails the query
//!   (`any`, `string`, `bool`, `object`, `record<...>`, `option<...>` of
//!   those, ...): a failed coercion is a query SurrealDB refuses, which no
//!   set of edges can mirror, as with `string::lowercase(NONE)`. Kinds that
//!   convert (`int`, `float`, `decimal`, `set`, `array<int>`) are not
//!   inlined;
//! * an argument is put only where it keeps its meaning: not inside a
//!   subquery or a filter of the body (where the row is another one), and
//!   the body reads no `$parent` (the caller's, which SurrealDB does not
//!   hand to a body) nor a session param (SSP runs every view as itself).
//!
//! Anything else is refused by name, and the view goes to the re-query
//! tier, which runs the function in SurrealDB.
//!
//! SSP inlines a function as the database defined it when the view was
//! registered (read with `INFO FOR DB`); see the README for redefinitions.

use std::collections::BTreeMap;

use surrealdb::types::ToSql;

use super::*;

/// User functions' definitions by name without `fn::` (`a::b`), as the
/// `DEFINE FUNCTION ...` text `INFO FOR DB` gives for each.
pub type Definitions = BTreeMap<String, String>;

/// Calls inlined per query at most: a function that calls itself is
/// refused here rather than unrolled.
const MAX_INLINED: usize = 64;

/// Params a body may not read: SurrealDB sets them from the session or the
/// statement, not from the caller.
const NOT_IN_BODIES: &[&str] = &[
    "parent", "auth", "session", "token", "access", "value", "before", "after", "event", "input",
];

impl Lower<'_> {
    /// `fn::name(args)`: the body of `name` with `args` in place of its
    /// params (see the module documentation), still to be lowered.
    pub(super) fn inline(&self, name: &str, args: Vec<sql::Expr>) -> PResult<sql::Expr> {
        let construct = format!("function fn::{name}");
        let refuse = |why: String| self.refuse(&format!("fn::{name}"), &construct, &why);
        if self.inlined.get() >= MAX_INLINED {
            return Err(refuse(format!(
                "SSP inlines {MAX_INLINED} user function calls per query at most"
            )));
        }
        self.inlined.set(self.inlined.get() + 1);
        let Some(text) = self.functions.get(name) else {
            return Err(refuse(format!(
                "the database defines no `fn::{name}` (SSP reads the definitions when the view \
                 registers)"
            )));
        };
        let def = definition(text)
            .ok_or_else(|| refuse(format!("SSP cannot read the definition of `fn::{name}`")))?;
        if def
            .returns
            .as_ref()
            .is_some_and(|k| !matches!(k, sql::Kind::Any))
        {
            return Err(refuse(format!(
                "`fn::{name}` coerces its result to a kind (`-> ...`), which SSP does not inline"
            )));
        }
        let body = match def.block.0.as_slice() {
            [sql::Expr::Return(out)] if out.fetch.is_none() => out.what.clone(),
            [e] if !matches!(e, sql::Expr::Return(_) | sql::Expr::Let(_)) => e.clone(),
            _ => {
                return Err(refuse(format!(
                    "SSP inlines a function whose body is one expression (`RETURN ...`); \
                     `fn::{name}` has {} statements",
                    def.block.0.len()
                )));
            }
        };
        if args.len() != def.args.len() {
            return Err(refuse(format!(
                "`fn::{name}` takes {} arguments, found {}",
                def.args.len(),
                args.len()
            )));
        }
        let mut bound = BTreeMap::new();
        for ((param, kind), arg) in def.args.iter().zip(args) {
            if !passes_unchanged(kind) {
                return Err(refuse(format!(
                    "the param `${param}` of `fn::{name}` is coerced to `{}`, which may change \
                     the value; SSP inlines params of kinds that keep it (`any`, `string`, \
                     `bool`, `object`, `record`, ...)",
                    kind.to_sql()
                )));
            }
            bound.insert(param.clone(), arg);
        }
        substitute(body, &bound).map_err(|why| refuse(format!("`fn::{name}` {why}")))
    }

    /// `e` with a user function call at its top (`fn::a(fn::b(x))` and the
    /// like) replaced by what it inlines to, so that the projection sees
    /// the shape of the body (a traversal, a count).
    pub(super) fn inline_top(&self, mut e: sql::Expr) -> PResult<sql::Expr> {
        while let sql::Expr::FunctionCall(call) = e {
            match call.receiver {
                sql::Function::Custom(name) => e = self.inline(&name, call.arguments)?,
                receiver => {
                    return Ok(sql::Expr::FunctionCall(Box::new(sql::FunctionCall {
                        receiver,
                        arguments: call.arguments,
                    })));
                }
            }
        }
        Ok(e)
    }
}

/// The `DEFINE FUNCTION` statement of a definition's text.
fn definition(text: &str) -> Option<sql::statements::DefineFunctionStatement> {
    let ast = std::panic::catch_unwind(|| surrealdb_syn::parse(text))
        .ok()?
        .ok()?;
    match ast.expressions.into_iter().next()? {
        sql::TopLevelExpr::Expr(sql::Expr::Define(d)) => match *d {
            sql::statements::DefineStatement::Function(f) => Some(f),
            _ => None,
        },
        _ => None,
    }
}

/// Whether coercing to `kind` either passes a value through as it is or
/// fails: no number conversions, no sets, no typed elements.
fn passes_unchanged(kind: &sql::Kind) -> bool {
    use sql::Kind as K;
    match kind {
        K::Any
        | K::None
        | K::Null
        | K::Bool
        | K::Datetime
        | K::Duration
        | K::Number
        | K::Object
        | K::String
        | K::Uuid
        | K::Record(_) => true,
        K::Array(item, None) => matches!(**item, K::Any),
        K::Either(kinds) => kinds.iter().all(passes_unchanged),
        _ => false,
    }
}

/// `e` with each `$param` of `bound` replaced by its argument. Refuses (with
/// the end of a sentence about the function) a body that reads a param it
/// may not, and an argument that would land where SSP does not follow it.
fn substitute(e: sql::Expr, bound: &BTreeMap<String, sql::Expr>) -> Result<sql::Expr, String> {
    let sub = |e: sql::Expr| substitute(e, bound);
    let boxed = |e: Box<sql::Expr>| substitute(*e, bound).map(Box::new);
    Ok(match e {
        sql::Expr::Param(p) => match bound.get(p.as_str()) {
            Some(arg) => arg.clone(),
            None => {
                check_free(p.as_str())?;
                sql::Expr::Param(p)
            }
        },
        sql::Expr::Idiom(i) => sql::Expr::Idiom(substitute_idiom(i, bound)?),
        sql::Expr::Prefix { op, expr } => sql::Expr::Prefix {
            op,
            expr: boxed(expr)?,
        },
        sql::Expr::Binary { left, op, right } => sql::Expr::Binary {
            left: boxed(left)?,
            op,
            right: boxed(right)?,
        },
        sql::Expr::FunctionCall(mut call) => {
            call.arguments = call
                .arguments
                .into_iter()
                .map(sub)
                .collect::<Result<_, _>>()?;
            sql::Expr::FunctionCall(call)
        }
        sql::Expr::Literal(sql::Literal::Array(items)) => sql::Expr::Literal(sql::Literal::Array(
            items.into_iter().map(sub).collect::<Result<_, _>>()?,
        )),
        // Anything else is lowered (or refused) as it stands, provided no
        // argument or forbidden param hides in it.
        other => {
            let text = other.to_sql();
            if let Some(p) = bound.keys().find(|p| reads_param(&text, p)) {
                return Err(format!(
                    "uses its argument `${p}` inside a subquery or a construct SSP does not \
                     inline into (where the current record is another one)"
                ));
            }
            for p in NOT_IN_BODIES {
                if reads_param(&text, p) {
                    check_free(p)?;
                }
            }
            other
        }
    })
}

/// A path: `$arg.x` becomes the argument's path followed by `.x`.
fn substitute_idiom(
    i: sql::Idiom,
    bound: &BTreeMap<String, sql::Expr>,
) -> Result<sql::Idiom, String> {
    let mut parts = Vec::with_capacity(i.0.len());
    let mut iter = i.0.into_iter();
    if let Some(first) = iter.next() {
        match first {
            sql::Part::Start(sql::Expr::Param(p)) if bound.contains_key(p.as_str()) => {
                match &bound[p.as_str()] {
                    sql::Expr::Idiom(arg) => parts.extend(arg.0.iter().cloned()),
                    arg => parts.push(sql::Part::Start(arg.clone())),
                }
            }
            sql::Part::Start(e) => parts.push(sql::Part::Start(substitute(e, bound)?)),
            other => parts.push(other),
        }
    }
    for part in iter {
        let text = sql::Idiom(vec![part.clone()]).to_sql();
        if let Some(p) = bound.keys().find(|p| reads_param(&text, p)) {
            return Err(format!(
                "uses its argument `${p}` inside a path part (`[...]`, a traversal's filter), \
                 which SSP does not inline into"
            ));
        }
        for p in NOT_IN_BODIES {
            if reads_param(&text, p) {
                check_free(p)?;
            }
        }
        parts.push(part);
    }
    Ok(sql::Idiom(parts))
}

/// A param the body reads that is not one of its own: the caller's, which
/// SurrealDB hands to the body for the query's params only.
fn check_free(name: &str) -> Result<(), String> {
    if NOT_IN_BODIES.iter().any(|p| p.eq_ignore_ascii_case(name)) {
        Err(format!(
            "reads `${name}`, which SurrealDB does not give a function body as the query sees it"
        ))
    } else {
        Ok(())
    }
}

/// Whether SurrealQL `text` mentions `$name` (as a whole param name).
pub(super) fn reads_param(text: &str, name: &str) -> bool {
    let needle = format!("${name}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_param_is_found_whole() {
        assert!(reads_param("a = $x", "x"));
        assert!(reads_param("$x.y", "x"));
        assert!(!reads_param("$xy", "x"));
        assert!(!reads_param("x", "x"));
    }

    #[test]
    fn kinds_that_convert_are_not_inlined() {
        let kind = |k: &str| {
            definition(&format!("DEFINE FUNCTION fn::f($a: {k}) {{ RETURN $a; }}"))
                .expect("parses")
                .args[0]
                .1
                .clone()
        };
        for k in [
            "any",
            "string",
            "option<string>",
            "record<user>",
            "object",
            "bool",
            "array",
        ] {
            assert!(passes_unchanged(&kind(k)), "{k}");
        }
        for k in [
            "int",
            "float",
            "decimal",
            "set",
            "array<int>",
            "option<int>",
        ] {
            assert!(!passes_unchanged(&kind(k)), "{k}");
        }
    }
}
