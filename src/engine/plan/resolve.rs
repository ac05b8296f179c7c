//! `FROM` record ids and `$param` paths, resolved against a view's params
//! before it is planned: `FROM user:1`, `FROM [ids]` and `FROM $ids`
//! become `id` conditions on one table, and a param path through a record
//! id is told apart (SurrealDB fetches there).

use super::{PlanError, window_arg};
use crate::engine::ast::{BinOp, Expr, Field, Select};
use crate::engine::eval::Env;
use crate::engine::value::{PathPart, Value};

/// Lowers what depends on the view's params into the plain form the planner
/// takes: `FROM t:1` / `FROM $ids` become `FROM t WHERE id = ...` (or
/// `id IN [...]`), with the ids as literals; and checks that `ONLY` and
/// `OMIT` cannot make SurrealDB's rows differ from the engine's.
pub fn resolve(
    mut select: Select,
    params: &crate::engine::value::Object,
) -> Result<Select, PlanError> {
    let unsupported = |why: &str| Err(PlanError::Unsupported(why.to_owned()));
    for path in &select.omit {
        // `OMIT a.b` where a subquery writes `a`: what SurrealDB drops from
        // inside the subquery's rows is not something the engine tracks.
        let inside_sub = select.fields.iter().any(|f| {
            matches!(f, Field::Subquery { alias: Some(a), .. } if path.len() > a.len() && path.starts_with(a))
        });
        if inside_sub {
            return unsupported("`OMIT` of a path inside a subquery projection");
        }
    }
    if let Some(ids) = select.ids.take() {
        let (ids, many) = match ids {
            Expr::Param { name, path } => match params.get(&name).map(|v| v.get_path(&path)) {
                Some(v) => match record_ids(&v) {
                    Some(ids) => ids,
                    None => {
                        return unsupported(
                            "`FROM $param` where the param does not hold a record id or a list of them",
                        );
                    }
                },
                None => return unsupported("`FROM $param` where the view gives no such param"),
            },
            Expr::Literal(Value::Thing(r)) => (vec![(*r).clone()], false),
            Expr::Array(items) => (
                items
                    .into_iter()
                    .filter_map(|i| match i {
                        Expr::Literal(Value::Thing(r)) => Some((*r).clone()),
                        _ => None,
                    })
                    .collect(),
                true,
            ),
            _ => return unsupported("`FROM` a value that is not a record id"),
        };
        let Some(first) = ids.first() else {
            return unsupported("`FROM` an empty list");
        };
        if ids.iter().any(|r| r.table != first.table) {
            return unsupported("`FROM` record ids of several tables");
        }
        // SurrealDB fetches `FROM t:[1, 'a']` by its exact key; `id = ...`
        // compares values, where `t:[1, 'a']` equals `t:[1f, 'a']`.
        if ids
            .iter()
            .any(|r| matches!(r.key, crate::engine::value::Key::Composite(_)))
        {
            return unsupported("`FROM` a record id whose key is an array or object");
        }
        // SurrealDB cuts a window of a list in the list's order, repeats
        // included; the engine in record order.
        let windowed = select.limit.is_some() || select.start.is_some();
        if many && ids.len() > 1 && windowed {
            return unsupported("`FROM` a list of record ids with `LIMIT` or `START`");
        }
        // `FROM ONLY [t:1]` fails unless exactly one row comes out (a
        // single `FROM ONLY t:1` gives NONE for a missing record).
        if select.only && many {
            return unsupported("`FROM ONLY` a list of record ids");
        }
        select.table = first.table.to_string();
        let id = Box::new(Expr::Field(vec![PathPart::Field("id".into())]));
        let term = if many {
            Expr::Binary {
                op: BinOp::Inside,
                lhs: id,
                rhs: Box::new(Expr::Literal(Value::Array(
                    ids.into_iter().map(Value::thing).collect(),
                ))),
            }
        } else {
            Expr::Binary {
                op: BinOp::Eq,
                lhs: id,
                rhs: Box::new(Expr::Literal(Value::thing(first.clone()))),
            }
        };
        select.filter = Some(match select.filter.take() {
            None => term,
            Some(f) => Expr::Binary {
                op: BinOp::And,
                lhs: Box::new(term),
                rhs: Box::new(f),
            },
        });
        // One id under `ONLY`: at most one row, as it needs.
        select.only = false;
    }
    if select.only {
        // `FROM ONLY <table>` fails in SurrealDB when more than one row
        // comes out; `LIMIT` 0 or 1 makes that impossible.
        let env = Env {
            params,
            parent: None,
        };
        match window_arg("LIMIT", select.limit.as_ref(), &env) {
            Ok(Some(n)) if n <= 1 => select.only = false,
            _ => return unsupported("`FROM ONLY` a table without `LIMIT 1`"),
        }
    }
    Ok(select)
}

/// Whether `path` into `v` goes through a record id: SurrealDB fetches the
/// record there (`$auth.name`, `$p.id` with `$p` a record), the engine
/// cannot, so a param read that way sends the view to the re-query tier.
pub fn through_link(v: &Value, path: &[PathPart]) -> bool {
    let Some((part, rest)) = path.split_first() else {
        return false;
    };
    match (v, part) {
        (Value::Thing(_), _) => true,
        (Value::Object(o), PathPart::Field(f)) => o.get(f).is_some_and(|x| through_link(x, rest)),
        (Value::Array(a) | Value::Set(a), PathPart::Index(i)) => {
            a.get(*i).is_some_and(|x| through_link(x, rest))
        }
        (Value::Array(a) | Value::Set(a), PathPart::Field(_)) => {
            a.iter().any(|x| through_link(x, path))
        }
        _ => false,
    }
}

/// The record ids a param holds, and whether it is a list: a record id (or
/// its text, as JSON gives it), or an array of them.
fn record_ids(v: &Value) -> Option<(Vec<crate::engine::value::RecordId>, bool)> {
    let one = |v: &Value| match v {
        Value::Thing(r) => Some((**r).clone()),
        Value::String(s) => crate::engine::value::RecordId::parse(s),
        _ => None,
    };
    match v {
        Value::Array(items) => Some((items.iter().map(one).collect::<Option<Vec<_>>>()?, true)),
        other => Some((vec![one(other)?], false)),
    }
}
