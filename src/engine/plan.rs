//! From a parsed `SELECT` to the plan the engine maintains.
//!
//! A plan is the query with its parameters still open. Plans are interned:
//! two views with the same query text share one plan, and so (when their
//! parameters agree too) one maintained node. Subquery projections become
//! child plans, bound once per including record.

use std::collections::HashMap;
use std::sync::Arc;

use super::ast::{BinOp, Expr, Field, Select};
use super::eval::{Env, bind};
use super::value::{Number, PathPart, Value};

/// An equality conjunct of the `WHERE` clause that the engine can hash on:
/// `path = value`, where `value` is a literal or a parameter. Views with such
/// a term are found by the changed record's value at `path`, never scanned.
#[derive(Debug)]
pub struct IndexTerm {
    pub path: Vec<PathPart>,
    pub value: Expr,
}

#[derive(Debug)]
pub struct Plan {
    pub table: super::value::TableName,
    pub filter: Option<Expr>,
    /// `ORDER BY` terms: path and descending.
    pub order: Vec<(Vec<PathPart>, bool)>,
    pub limit: Option<Expr>,
    pub start: Option<Expr>,
    /// `(SELECT ...)[n]`: only the n-th element of the window is included.
    pub element: Option<usize>,
    pub subplans: Vec<Arc<Plan>>,
    pub index_term: Option<IndexTerm>,
    /// Every `$param` (with its path) that the filter, limit and start read.
    /// Together with the plan, their values identify a node. They include
    /// the view parameters its subqueries read (not their `$parent`).
    pub param_refs: Vec<(String, Vec<PathPart>)>,
}

/// What a plan is with its parameters bound: the data of one node.
pub struct Bound {
    pub filter: Option<Expr>,
    pub start: usize,
    pub limit: Option<usize>,
    /// Whether membership depends on order (a window), or is all matches.
    pub windowed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{clause} must be a non-negative integer, got {got}")]
    BadWindow { clause: &'static str, got: String },
    /// SSP's own tables change with every edge SSP writes: a view over them
    /// would feed itself (each edge write a change that writes more edges).
    #[error("`{table}` is one of SSP's own tables (`_spooky_*`); a view cannot read it")]
    ReservedTable { table: String },
    /// SurrealDB orders the projected rows, so `ORDER BY` a computed field
    /// sorts by the computed value; SSP sorts records by their stored
    /// fields, and would silently cut a different window.
    #[error(
        "ORDER BY `{order}` names the computed field `{field}` of the projection; SSP can only \
         order by stored fields: order by the field it is computed from, or drop the alias"
    )]
    OrderByComputed { order: String, field: String },
    /// A path goes through a field that holds a record link in the data:
    /// SurrealDB fetches the linked record there, the engine cannot.
    #[error(
        "a path of the query goes through a record link in the data (e.g. `author.name` where \
         `author` holds `user:1`); SSP's engine does not follow links"
    )]
    FollowsLink,
}

/// The first `ORDER BY` path of `select` (or of a subquery in it) that
/// overlaps a field the projection computes: an `expr AS alias` other than
/// a stored field under its own name. Overlap either way (`ORDER BY a` with
/// `x AS a.b`, `ORDER BY a.b` with `x AS a`) changes what is sorted on.
pub fn order_by_computed(select: &Select) -> Option<PlanError> {
    let text = |p: &[PathPart]| {
        p.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(".")
    };
    for field in &select.fields {
        let Field::Expr {
            expr,
            alias: Some(alias),
        } = field
        else {
            continue;
        };
        if matches!(expr, Expr::Field(p) if p == alias) {
            continue;
        }
        for o in &select.order {
            if o.path.starts_with(alias) || alias.starts_with(&o.path) {
                return Some(PlanError::OrderByComputed {
                    order: text(&o.path),
                    field: text(alias),
                });
            }
        }
    }
    select.fields.iter().find_map(|f| match f {
        Field::Subquery { query, .. } => order_by_computed(query),
        _ => None,
    })
}

impl Plan {
    /// The values of the parameters this plan reads, in `param_refs` order.
    pub fn key_args(&self, env: &Env<'_>) -> Vec<Value> {
        self.param_refs
            .iter()
            .map(|(name, path)| env.param(name, path))
            .collect()
    }

    pub fn bind(&self, env: &Env<'_>) -> Result<Bound, PlanError> {
        let filter = self.filter.as_ref().map(|f| bind(f, env));
        let mut start = window_arg("START", self.start.as_ref(), env)?.unwrap_or(0);
        let mut limit = window_arg("LIMIT", self.limit.as_ref(), env)?;
        if let Some(i) = self.element {
            // `(..)[i]` keeps element i of the window, if the window has one.
            let available = limit.map(|l| l.saturating_sub(i)).unwrap_or(1);
            start += i;
            limit = Some(available.min(1));
        }
        Ok(Bound {
            filter,
            start,
            limit,
            windowed: start > 0 || limit.is_some(),
        })
    }

    /// Every table this plan and its subplans read.
    pub fn tables(&self, out: &mut Vec<Arc<str>>) {
        if !out.iter().any(|t| **t == *self.table) {
            out.push(Arc::from(self.table.as_str()));
        }
        for s in &self.subplans {
            s.tables(out);
        }
    }

    /// Checks that LIMIT and START bind to integers under `env`, in this plan
    /// and every subplan (whose view-level params are the same).
    pub fn validate(&self, env: &Env<'_>) -> Result<(), PlanError> {
        window_arg("START", self.start.as_ref(), env)?;
        window_arg("LIMIT", self.limit.as_ref(), env)?;
        for s in &self.subplans {
            s.validate(env)?;
        }
        Ok(())
    }
}

fn window_arg(
    clause: &'static str,
    expr: Option<&Expr>,
    env: &Env<'_>,
) -> Result<Option<usize>, PlanError> {
    let Some(expr) = expr else { return Ok(None) };
    let v = match bind(expr, env) {
        Expr::Literal(v) => v,
        other => {
            return Err(PlanError::BadWindow {
                clause,
                got: format!("{other:?}"),
            });
        }
    };
    // As SurrealDB 3.3.5 evaluates LIMIT/START: a number is truncated toward
    // zero (`1.9` is 1) and must not be negative; NONE and NULL count as 0, so
    // `LIMIT NONE` selects nothing; anything else is an error.
    let n = match &v {
        Value::Number(Number::Int(i)) => *i,
        Value::Number(Number::Float(f)) => *f as i64,
        // SurrealDB's `Number::to_int`: truncated, and 0 when out of range.
        Value::Decimal(d) => i64::try_from(d.trunc()).unwrap_or_default(),
        Value::None | Value::Null => 0,
        _ => -1,
    };
    if n < 0 {
        return Err(PlanError::BadWindow {
            clause,
            got: v.to_json().to_string(),
        });
    }
    Ok(Some(n as usize))
}

/// Interns plans so that equal queries share one plan, and so one node.
#[derive(Default)]
pub struct Planner {
    plans: HashMap<(Select, Option<usize>), Arc<Plan>>,
}

impl Planner {
    pub fn plan(&mut self, select: &Select) -> Arc<Plan> {
        self.intern(select, None)
    }

    fn intern(&mut self, select: &Select, element: Option<usize>) -> Arc<Plan> {
        let key = (select.clone(), element);
        if let Some(p) = self.plans.get(&key) {
            return p.clone();
        }
        let outputs: Vec<Option<&[PathPart]>> = select.fields.iter().map(output_path).collect();
        let subplans = select
            .fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match f {
                Field::Subquery {
                    query,
                    index,
                    alias,
                } if !shadowed(alias.as_deref(), &outputs[i + 1..]) => {
                    Some(self.intern(query, *index))
                }
                _ => None,
            })
            .collect();
        let mut param_refs = Vec::new();
        for e in [&select.filter, &select.limit, &select.start]
            .into_iter()
            .flatten()
        {
            collect_params(e, &mut param_refs);
        }
        // The view parameters the subqueries read are part of what this plan
        // computes too: two views that differ only in a parameter of a
        // subquery must not share a node. (`$parent` in a subquery is the
        // member record, bound per member, not a view parameter.)
        for sub in &subplans {
            let sub: &Arc<Plan> = sub;
            for r in &sub.param_refs {
                if !r.0.eq_ignore_ascii_case("parent") && !param_refs.contains(r) {
                    param_refs.push(r.clone());
                }
            }
        }
        let plan = Arc::new(Plan {
            table: select.table.as_str().into(),
            filter: select.filter.clone(),
            order: select
                .order
                .iter()
                .map(|o| (o.path.clone(), o.descending))
                .collect(),
            limit: select.limit.clone(),
            start: select.start.clone(),
            element,
            subplans,
            index_term: select.filter.as_ref().and_then(index_term),
            param_refs,
        });
        self.plans.insert(key, plan.clone());
        plan
    }

    /// Forgets plans that no node or view holds any more.
    pub fn collect_garbage(&mut self) {
        // A parent plan holds its subplans, so repeat until nothing changes.
        loop {
            let before = self.plans.len();
            self.plans.retain(|_, p| Arc::strong_count(p) > 1);
            if self.plans.len() == before {
                break;
            }
        }
    }
}

/// The path a projected field writes in the output row, where it is known.
fn output_path(f: &Field) -> Option<&[PathPart]> {
    match f {
        Field::Expr { alias: Some(a), .. } | Field::Subquery { alias: Some(a), .. } => Some(a),
        Field::Expr {
            expr: Expr::Field(p),
            alias: None,
        } => Some(p),
        _ => None,
    }
}

/// Whether a later field replaces a subquery's rows in the output: SurrealDB
/// writes a row's fields in order, so a later field written at the alias (or
/// at a prefix of it) drops the subquery's records from the result, as in
/// `SELECT (SELECT * FROM u) AS a, (SELECT * FROM u WHERE false) AS a FROM t`.
fn shadowed(alias: Option<&[PathPart]>, later: &[Option<&[PathPart]>]) -> bool {
    let Some(alias) = alias else { return false };
    later.iter().flatten().any(|p| alias.starts_with(p))
}

fn collect_params(e: &Expr, out: &mut Vec<(String, Vec<PathPart>)>) {
    match e {
        Expr::Param { name, path } => {
            let r = (name.clone(), path.clone());
            if !out.contains(&r) {
                out.push(r);
            }
        }
        Expr::Literal(_) | Expr::Field(_) => {}
        Expr::Array(items) => items.iter().for_each(|i| collect_params(i, out)),
        Expr::Not(x) => collect_params(x, out),
        Expr::Binary { lhs, rhs, .. } => {
            collect_params(lhs, out);
            collect_params(rhs, out);
        }
        Expr::Call { args, .. } => args.iter().for_each(|i| collect_params(i, out)),
    }
}

/// Picks the equality conjunct to hash on, preferring `id = ...`.
fn index_term(filter: &Expr) -> Option<IndexTerm> {
    let mut conjuncts = Vec::new();
    flatten_and(filter, &mut conjuncts);
    let mut best: Option<IndexTerm> = None;
    for c in conjuncts {
        let Expr::Binary { op, lhs, rhs } = c else {
            continue;
        };
        if !matches!(op, BinOp::Eq | BinOp::ExactEq) {
            continue;
        }
        let term = match (lhs.as_ref(), rhs.as_ref()) {
            (Expr::Field(p), v @ (Expr::Literal(_) | Expr::Param { .. }))
            | (v @ (Expr::Literal(_) | Expr::Param { .. }), Expr::Field(p)) => IndexTerm {
                path: p.clone(),
                value: v.clone(),
            },
            _ => continue,
        };
        let is_id = term.path == [PathPart::Field("id".into())];
        if best.is_none() || is_id {
            best = Some(term);
        }
        if is_id {
            break;
        }
    }
    best
}

fn flatten_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::Binary {
            op: BinOp::And,
            lhs,
            rhs,
        } => {
            flatten_and(lhs, out);
            flatten_and(rhs, out);
        }
        other => out.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::Object;

    fn arg(v: Value) -> Result<Option<usize>, PlanError> {
        let params = Object::from_pairs(vec![("n".into(), v)]);
        let env = Env {
            params: &params,
            parent: None,
        };
        let expr = Expr::Param {
            name: "n".into(),
            path: vec![],
        };
        window_arg("LIMIT", Some(&expr), &env)
    }

    #[test]
    fn a_later_field_with_the_same_name_drops_a_subquery() {
        // Measured on SurrealDB 3.3.5; found by tests/differential/.
        let subs = |sql: &str| {
            let select = crate::engine::parser::parse_select(sql).unwrap();
            Planner::default().plan(&select).subplans.len()
        };
        let sub = "(SELECT * FROM u)";
        assert_eq!(subs(&format!("SELECT *, {sub} AS a, {sub} AS b FROM t")), 2);
        assert_eq!(subs(&format!("SELECT *, {sub} AS a, {sub} AS a FROM t")), 1);
        assert_eq!(subs(&format!("SELECT id, {sub} AS a, a FROM t")), 0);
        assert_eq!(subs(&format!("SELECT id, {sub} AS a, b AS a FROM t")), 0);
        assert_eq!(subs(&format!("SELECT id, a, {sub} AS a FROM t")), 1);
        assert_eq!(subs(&format!("SELECT {sub} AS a, * FROM t")), 1);
        assert_eq!(subs(&format!("SELECT {sub} AS a.b, 1 AS a FROM t")), 0);
        assert_eq!(subs(&format!("SELECT {sub} AS a, 1 AS a.b FROM t")), 1);
    }

    #[test]
    fn window_args_as_surrealdb_evaluates_them() {
        // Measured on SurrealDB 3.3.5; found by tests/differential/.
        let int = |i| Value::Number(Number::Int(i));
        let float = |f| Value::Number(Number::Float(f));
        assert_eq!(arg(int(2)).unwrap(), Some(2));
        assert_eq!(arg(float(1.9)).unwrap(), Some(1), "`LIMIT 1.9` keeps 1 row");
        assert_eq!(arg(float(0.5)).unwrap(), Some(0));
        assert_eq!(
            arg(Value::None).unwrap(),
            Some(0),
            "`LIMIT NONE` keeps nothing"
        );
        assert_eq!(
            arg(Value::Null).unwrap(),
            Some(0),
            "`START NULL` is `START 0`"
        );
        assert!(arg(int(-1)).is_err(), "SurrealDB fails the query");
        assert!(arg(Value::str("2")).is_err(), "SurrealDB fails the query");
    }
}
