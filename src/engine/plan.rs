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
    pub table: Arc<str>,
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
    /// Together with the plan, their values identify a node.
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
}

impl Plan {
    /// The values of the parameters this plan reads, in `param_refs` order.
    pub fn key_args(&self, env: &Env<'_>) -> Vec<Value> {
        self.param_refs
            .iter()
            .map(|(name, path)| env.param(name).get_path(path))
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
        if !out.contains(&self.table) {
            out.push(self.table.clone());
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
    match v {
        Value::Number(Number::Int(i)) if i >= 0 => Ok(Some(i as usize)),
        Value::Number(Number::Float(f)) if f >= 0.0 && f.fract() == 0.0 => Ok(Some(f as usize)),
        // A parent field that is missing leaves the subquery unbounded, as NONE does in SurrealDB.
        Value::None if matches!(expr, Expr::Param { name, .. } if name.eq_ignore_ascii_case("parent")) => {
            Ok(None)
        }
        other => Err(PlanError::BadWindow {
            clause,
            got: other.to_json().to_string(),
        }),
    }
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
        let subplans = select
            .fields
            .iter()
            .filter_map(|f| match f {
                Field::Subquery { query, index, .. } => Some(self.intern(query, *index)),
                _ => None,
            })
            .collect();
        let mut param_refs = Vec::new();
        for e in [&select.filter, &select.limit, &select.start].into_iter().flatten() {
            collect_params(e, &mut param_refs);
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
        let Expr::Binary { op, lhs, rhs } = c else { continue };
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
