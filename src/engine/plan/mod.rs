//! From a parsed `SELECT` to the plan the engine maintains.
//!
//! A plan is the query with its parameters still open. Plans are interned:
//! two views with the same query text share one plan, and so (when their
//! parameters agree too) one maintained node. Subquery projections become
//! child plans, bound once per including record.

use std::collections::HashMap;
use std::sync::Arc;

use super::ast::{BinOp, Expr, Field, Pick, Select};
use super::eval::{Env, bind, may_fetch};
pub mod projection;
pub mod resolve;

use self::projection::{FETCH_PARAM, fetched_fields, order_fetches};
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
    /// `ORDER BY` terms: path, descending, and whether the path is read
    /// through links (see [`super::ast::Order::fetch`]).
    pub order: Vec<(Vec<PathPart>, bool, bool)>,
    /// Ties in `order` break by record id descending, not ascending: the
    /// plan of a `(SELECT ...)[$]`, whose `order` is the select's reversed.
    pub ids_descending: bool,
    pub limit: Option<Expr>,
    pub start: Option<Expr>,
    /// `(SELECT ...)[n]`: only the n-th element of the window is included
    /// (`[$]` is `[0]` of the reversed order, see `ids_descending`).
    pub element: Option<usize>,
    pub subplans: Vec<Arc<Plan>>,
    pub index_term: Option<IndexTerm>,
    /// Its `WHERE` reads a path that may go through a record link
    /// (`author.name`), or its `ORDER BY` sorts on one that the projection
    /// fetched: its nodes are evaluated again when a linked
    /// record changes (see [`super::links`]).
    pub follows_links: bool,
    /// Its `WHERE` compares with `time::now()`: its nodes' records are
    /// evaluated again when the clock reaches their instant (see
    /// [`super::clock`]).
    pub clocked: bool,
    /// The most links one of those paths can go through (`author.org.name`:
    /// two): how far back from a changed record its nodes' records can be.
    pub link_hops: usize,
    /// `FETCH` fields the rows hold as stored, or as the object of `f.id`
    /// and other paths of `f` (see [`fetched_fields`]): the records their
    /// links name are members, as children of each member.
    pub fetch: Vec<projection::FetchField>,
    /// Every `$param` (with its path) that the filter, limit and start read.
    /// Together with the plan, their values identify a node. They include
    /// the view parameters its subqueries read (not their `$parent`).
    pub param_refs: Vec<(String, Vec<PathPart>)>,
    /// A two-step traversal's edges (`$parent<-wrote<-user`): its rows
    /// are no members of the view, only the records their [`Plan::fetch`]
    /// field names are (see [`super::ast::Select::through`]).
    pub hidden: bool,
    /// What the data must not hold for a lowered traversal to stay exact.
    pub graph_checks: Option<super::ast::GraphChecks>,
    /// Tables that must hold no edge-shaped record for the traversals
    /// lowered out of `WHERE` to stay exact ([`super::ast::Select::no_edges_in`]).
    pub no_edges_in: Vec<String>,
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
        "a path of the query goes through a record link in the data that SSP's engine does not \
         follow there (behind `$parent` or a `$param`, into a table SSP does not hold, or through \
         a string that holds a record id's text)"
    )]
    FollowsLink,
    /// A construct the engine reads but cannot keep exact under these
    /// params (the re-query tier takes the view).
    #[error("{0}")]
    Unsupported(String),
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

    /// Every table this plan and its subplans read, with the tables a
    /// lowered `$x IN <-edge<-table` checks for edge-shaped records (the
    /// engine must hold them in full to see those).
    pub fn tables(&self, out: &mut Vec<Arc<str>>) {
        let edge_free = self.no_edges_in.iter().map(String::as_str);
        for t in std::iter::once(self.table.as_str()).chain(edge_free) {
            if !out.iter().any(|x| **x == *t) {
                out.push(Arc::from(t));
            }
        }
        for s in &self.subplans {
            s.tables(out);
        }
    }

    /// The tables whose edges the lowered traversals of this plan and its
    /// subplans must not see (see [`super::ast::GraphChecks::no_edges_in`]).
    pub fn no_edges_in(&self, out: &mut Vec<Arc<str>>) {
        let lowered = self
            .graph_checks
            .as_ref()
            .and_then(|c| c.no_edges_in.as_deref());
        for t in lowered
            .into_iter()
            .chain(self.no_edges_in.iter().map(String::as_str))
        {
            if !out.iter().any(|x| **x == *t) {
                out.push(Arc::from(t));
            }
        }
        for s in &self.subplans {
            s.no_edges_in(out);
        }
    }

    /// Whether this plan or a subplan reads through record links (a path,
    /// or a `FETCH`).
    pub fn reads_links(&self) -> bool {
        self.follows_links
            || !self.fetch.is_empty()
            || self.subplans.iter().any(|s| s.reads_links())
    }

    /// The plan of a `FETCH` child: the one record of `table` that a
    /// member's link names, `$__fetch`. Its nodes are found by the id index,
    /// so a change to the linked record reaches them as to any node.
    pub fn fetch_child(table: &super::value::TableName, nested: &[projection::FetchField]) -> Plan {
        let target = Expr::Param {
            name: FETCH_PARAM.into(),
            path: Vec::new(),
        };
        let id = vec![PathPart::Field("id".into())];
        Plan {
            table: table.clone(),
            filter: Some(Expr::Binary {
                op: BinOp::Eq,
                lhs: Box::new(Expr::Field(id.clone())),
                rhs: Box::new(target.clone()),
            }),
            order: Vec::new(),
            ids_descending: false,
            limit: None,
            start: None,
            element: None,
            subplans: Vec::new(),
            index_term: Some(IndexTerm {
                path: id,
                value: target,
            }),
            clocked: false,
            follows_links: false,
            link_hops: 0,
            fetch: nested.to_vec(),
            param_refs: vec![(FETCH_PARAM.into(), Vec::new())],
            hidden: false,
            graph_checks: None,
            no_edges_in: Vec::new(),
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

pub(super) fn window_arg(
    clause: &'static str,
    expr: Option<&Expr>,
    env: &Env<'_>,
) -> Result<Option<usize>, PlanError> {
    let Some(expr) = expr else { return Ok(None) };
    let v = match bind(expr, env) {
        Expr::Literal(v) => v,
        // Arithmetic on something other than integers, or an overflow:
        // SurrealDB's own rules decide (the re-query tier).
        Expr::Arith { .. } => {
            return Err(PlanError::Unsupported(format!(
                "`{clause}` arithmetic on values other than integers"
            )));
        }
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
    plans: HashMap<(Select, Option<Pick>), Arc<Plan>>,
}

impl Planner {
    pub fn plan(&mut self, select: &Select) -> Arc<Plan> {
        self.intern(select, None)
    }

    fn intern(&mut self, select: &Select, pick: Option<Pick>) -> Arc<Plan> {
        let key = (select.clone(), pick);
        if let Some(p) = self.plans.get(&key) {
            return p.clone();
        }
        // `[$]` is `[0]` of the result in reverse: every `ORDER BY` term
        // turned around, and ties broken by record id descending (SurrealDB
        // breaks them in its scan order, ascending ids). `resolve::lower_graph`
        // kept it to subqueries without a window, whose whole result is the
        // window.
        let element = match pick {
            None => None,
            Some(Pick::At(i)) => Some(i),
            Some(Pick::Last) => Some(0),
        };
        let mut order: Vec<(Vec<PathPart>, bool, bool)> = select
            .order
            .iter()
            .map(|o| (o.path.clone(), o.descending, order_fetches(o)))
            .collect();
        let ids_descending = pick == Some(Pick::Last);
        if ids_descending {
            for o in &mut order {
                o.1 = !o.1;
            }
        }
        let outputs: Vec<Option<&[PathPart]>> = select.fields.iter().map(output_path).collect();
        let subplans = shown_subqueries(select, &outputs)
            .filter(|(query, _)| parent_field(query).is_none())
            .map(|(query, index)| self.intern(query, index))
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
            order,
            ids_descending,
            limit: select.limit.clone(),
            start: select.start.clone(),
            element,
            subplans,
            index_term: select.filter.as_ref().and_then(index_term),
            fetch: match &select.through {
                // The traversal's records, as FETCH fetches a link.
                Some(f) => vec![projection::FetchField {
                    field: f.clone(),
                    ids_only: false,
                    nested: Vec::new(),
                    first_only: false,
                }],
                None => {
                    let mut fetch = fetched_fields(select).unwrap_or_default();
                    fetch.extend(rows_of_fields(select, &outputs));
                    fetch
                }
            },
            hidden: select.through.is_some(),
            graph_checks: select.graph_checks.clone(),
            no_edges_in: select.no_edges_in.clone(),
            clocked: select.filter.as_ref().is_some_and(Expr::reads_the_clock),
            follows_links: select.filter.as_ref().is_some_and(reads_through_links)
                || select.order.iter().any(order_fetches),
            link_hops: select
                .order
                .iter()
                .filter(|o| order_fetches(o))
                .map(|o| hops(&o.path))
                .chain(select.filter.as_ref().map(max_hops))
                .max()
                .unwrap_or(0),
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

/// `(SELECT ... FROM $parent.field)`: the field (see [`rows_of_fields`]).
pub(super) fn parent_field(q: &Select) -> Option<&super::value::FieldName> {
    match &q.ids {
        Some(Expr::Param { name, path }) if name.eq_ignore_ascii_case("parent") => {
            match path.as_slice() {
                [PathPart::Field(f)] => Some(f),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The subqueries `(SELECT ... FROM $parent.field)[0]` of `select` whose
/// rows the output shows, as fetches of the field: SurrealDB selects the
/// record the field names, or each one directly in an array, as `FETCH`
/// fetches them (a missing one is no row). `resolve::lower_graph` refused
/// any other clause in them.
fn rows_of_fields(select: &Select, outputs: &[Option<&[PathPart]>]) -> Vec<projection::FetchField> {
    let mut out: Vec<projection::FetchField> = Vec::new();
    for (query, index) in shown_subqueries(select, outputs) {
        if let Some(field) = parent_field(query) {
            let f = projection::FetchField {
                field: field.clone(),
                ids_only: false,
                nested: Vec::new(),
                first_only: index.is_some(),
            };
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

/// The subqueries of `select`'s projection (with their `[index]`) whose
/// rows the output shows: no later field writes over them, and `OMIT`
/// does not drop them. `outputs` is [`output_path`] of each field.
fn shown_subqueries<'s>(
    select: &'s Select,
    outputs: &'s [Option<&[PathPart]>],
) -> impl Iterator<Item = (&'s Select, Option<Pick>)> {
    select
        .fields
        .iter()
        .enumerate()
        .filter_map(move |(i, f)| match f {
            Field::Subquery {
                query,
                index,
                alias,
            } if !shadowed(alias.as_deref(), &outputs[i + 1..])
                && !omitted(alias.as_deref(), &select.omit) =>
            {
                Some((query.as_ref(), *index))
            }
            _ => None,
        })
}

/// The path a projected field writes in the output row, where it is known.
pub(super) fn output_path(f: &Field) -> Option<&[PathPart]> {
    match f {
        Field::Expr { alias: Some(a), .. }
        | Field::Subquery { alias: Some(a), .. }
        | Field::Computed { alias: Some(a) } => Some(a),
        Field::LinkAll { alias, .. } => Some(alias),
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

/// Whether `OMIT` drops a subquery's rows from the output: it names the
/// alias or a prefix of it. (Paths inside the alias are refused by
/// [`resolve`].)
fn omitted(alias: Option<&[PathPart]>, omit: &[Vec<PathPart>]) -> bool {
    let Some(alias) = alias else { return false };
    omit.iter().any(|p| alias.starts_with(p))
}

fn collect_params(e: &Expr, out: &mut Vec<(String, Vec<PathPart>)>) {
    match e {
        Expr::Param { name, path } => {
            let r = (name.clone(), path.clone());
            if !out.contains(&r) {
                out.push(r);
            }
        }
        Expr::Literal(_)
        | Expr::Field(_)
        | Expr::Subquery(_)
        | Expr::Traversal(_)
        | Expr::Now { .. } => {}
        Expr::Array(items) => items.iter().for_each(|i| collect_params(i, out)),
        Expr::Not(x) | Expr::Get { of: x, .. } => collect_params(x, out),
        Expr::Binary { lhs, rhs, .. } => {
            collect_params(lhs, out);
            collect_params(rhs, out);
        }
        Expr::Call { args, .. } => args.iter().for_each(|i| collect_params(i, out)),
        Expr::Arith { lhs, rhs, .. } => {
            collect_params(lhs, out);
            collect_params(rhs, out);
        }
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
        // A record's value on a path through a link changes with the linked
        // record, not the record: no index can hold it.
        if may_fetch(&term.path) {
            continue;
        }
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

/// How many links `path` can go through: each field after the first may
/// be a field of a linked record.
fn hops(path: &[PathPart]) -> usize {
    path.iter()
        .skip(1)
        .filter(|p| matches!(p, PathPart::Field(_)))
        .count()
}

/// The most links a path `e` reads can go through.
fn max_hops(e: &Expr) -> usize {
    match e {
        Expr::Field(path) => hops(path),
        Expr::Literal(_)
        | Expr::Param { .. }
        | Expr::Subquery(_)
        | Expr::Traversal(_)
        | Expr::Now { .. } => 0,
        Expr::Array(items) => items.iter().map(max_hops).max().unwrap_or(0),
        Expr::Not(e) => max_hops(e),
        Expr::Binary { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
            max_hops(lhs).max(max_hops(rhs))
        }
        Expr::Call { args, .. } => args.iter().map(max_hops).max().unwrap_or(0),
        // The value may be a record id whose fields the path reads.
        Expr::Get { of, path } => {
            max_hops(of)
                + path
                    .iter()
                    .filter(|p| matches!(p, PathPart::Field(_)))
                    .count()
        }
    }
}

/// Whether `e` reads a record's field on a path that may fetch a linked record.
fn reads_through_links(e: &Expr) -> bool {
    match e {
        Expr::Field(path) => may_fetch(path),
        Expr::Literal(_)
        | Expr::Param { .. }
        | Expr::Subquery(_)
        | Expr::Traversal(_)
        | Expr::Now { .. } => false,
        Expr::Array(items) => items.iter().any(reads_through_links),
        Expr::Not(e) => reads_through_links(e),
        Expr::Binary { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
            reads_through_links(lhs) || reads_through_links(rhs)
        }
        Expr::Call { args, .. } => args.iter().any(reads_through_links),
        Expr::Get { of, path } => {
            reads_through_links(of) || path.iter().any(|p| matches!(p, PathPart::Field(_)))
        }
    }
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
    use super::projection::order_by_renamed;
    use super::resolve::resolve;
    use super::*;
    use crate::engine::value::Object;
    use serde_json::json;

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

    fn resolved(sql: &str, params: serde_json::Value) -> Result<Select, PlanError> {
        let select = crate::engine::parser::parse_select(sql).unwrap();
        let Value::Object(params) = Value::from(&params) else {
            panic!("params")
        };
        resolve(select, &params, &|_| false)
    }

    #[test]
    fn record_targets_become_id_conditions() {
        // `FROM t:1` is `FROM t WHERE id = t:1`; the ids come in as
        // literals, so the node hashes on them (`index_term`).
        let s = resolved("SELECT * FROM $a WHERE x = 1", json!({"a": "asset:1"})).unwrap();
        assert_eq!(s.table, "asset");
        assert!(s.ids.is_none());
        let plan = Planner::default().plan(&s);
        let term = plan.index_term.as_ref().expect("hashes on id");
        assert_eq!(term.path, [PathPart::Field("id".into())]);
        let s = resolved("SELECT * FROM $a", json!({"a": ["a:1", "a:2", "a:1"]})).unwrap();
        assert!(matches!(
            s.filter,
            Some(Expr::Binary {
                op: BinOp::Inside,
                ..
            })
        ));
        let s = resolved("SELECT * FROM ONLY a:1", json!({})).unwrap();
        assert!(!s.only && s.table == "a");
        // One id under a window is still one row.
        assert!(resolved("SELECT * FROM a:1 LIMIT 1 START 1", json!({})).is_ok());
    }

    #[test]
    fn record_targets_the_engine_cannot_keep_exact_are_unsupported() {
        let unsupported = |sql: &str, params: serde_json::Value| {
            assert!(
                matches!(resolved(sql, params), Err(PlanError::Unsupported(_))),
                "{sql}"
            )
        };
        // SurrealDB cuts the window in the list's order, repeats included.
        unsupported("SELECT * FROM [a:2, a:1] LIMIT 1", json!({}));
        unsupported("SELECT * FROM $a START 1", json!({"a": ["a:1", "a:2"]}));
        unsupported("SELECT * FROM $a", json!({"a": ["a:1", "b:2"]}));
        unsupported("SELECT * FROM $a", json!({"a": "not a record"}));
        unsupported("SELECT * FROM $a", json!({"a": []}));
        unsupported("SELECT * FROM $a", json!({}));
        // Fetched by exact key, but `id =` compares `[1]` equal to `[1f]`.
        unsupported("SELECT * FROM $a", json!({"a": "a:[1, 'x']"}));
        // `ONLY` fails the query in SurrealDB when two rows come out.
        unsupported("SELECT * FROM ONLY $a", json!({"a": ["a:1", "a:2"]}));
        unsupported("SELECT * FROM ONLY [a:1]", json!({}));
        unsupported("SELECT * FROM ONLY t WHERE x = 1", json!({}));
        unsupported("SELECT * FROM ONLY t LIMIT $n", json!({"n": 2}));
        assert!(resolved("SELECT * FROM ONLY t LIMIT $n", json!({"n": 1})).is_ok());
        // What `OMIT s.a` drops inside a subquery's rows (nothing, in 3.3.5).
        unsupported(
            "SELECT *, (SELECT * FROM u) AS s OMIT s.a FROM t",
            json!({}),
        );
    }

    #[test]
    fn order_by_an_alias_that_renames_a_stored_field_sorts_on_the_field() {
        let order = |sql: &str| {
            let select = order_by_renamed(crate::engine::parser::parse_select(sql).unwrap());
            let sub = select.fields.iter().find_map(|f| match f {
                Field::Subquery { query, .. } => Some(query.order[0].path.clone()),
                _ => None,
            });
            (select.order[0].path.clone(), sub)
        };
        let path = |p: &str| vec![PathPart::Field(p.into())];
        assert_eq!(
            order("SELECT *, title AS score FROM t ORDER BY score").0,
            path("title")
        );
        assert_eq!(
            order("SELECT *, (SELECT name AS n FROM u ORDER BY n) AS s FROM t ORDER BY a").1,
            Some(path("name"))
        );
        // Written twice, omitted, or computed: left to `order_by_computed`.
        for sql in [
            "SELECT title AS score, name AS score FROM t ORDER BY score",
            "SELECT *, title AS score OMIT score FROM t ORDER BY score",
            "SELECT *, string::lowercase(title) AS score FROM t ORDER BY score",
            "SELECT *, title AS score FROM t ORDER BY score.x",
        ] {
            assert_ne!(order(sql).0, path("title"), "{sql}");
        }
    }

    #[test]
    fn omitting_a_subquery_alias_drops_its_records() {
        let subs = |sql: &str| {
            let select = resolved(sql, json!({})).unwrap();
            Planner::default().plan(&select).subplans.len()
        };
        let sub = "(SELECT * FROM u)";
        assert_eq!(subs(&format!("SELECT *, {sub} AS s OMIT s FROM t")), 0);
        assert_eq!(subs(&format!("SELECT *, {sub} AS s.x OMIT s FROM t")), 0);
        assert_eq!(subs(&format!("SELECT *, {sub} AS s OMIT a FROM t")), 1);
    }

    #[test]
    fn window_arithmetic_binds_from_integer_params() {
        let bound = |sql: &str, params: serde_json::Value| {
            let select = crate::engine::parser::parse_select(sql).unwrap();
            let Value::Object(params) = Value::from(&params) else {
                panic!("params")
            };
            let env = Env {
                params: &params,
                parent: None,
            };
            window_arg("START", select.start.as_ref(), &env)
        };
        let sql = "SELECT * FROM t LIMIT 50 START ($page - 1) * 50";
        assert_eq!(bound(sql, json!({"page": 3})).unwrap(), Some(100));
        assert!(matches!(
            bound(sql, json!({"page": 0})),
            Err(PlanError::BadWindow { .. })
        ));
        // Floats, NONE and overflows: SurrealDB's own rules (re-query tier).
        for page in [json!(1.5), json!(null), json!(i64::MAX)] {
            assert!(
                matches!(
                    bound(sql, json!({ "page": page })),
                    Err(PlanError::Unsupported(_))
                ),
                "{page}"
            );
        }
        assert!(matches!(
            bound(sql, json!({})),
            Err(PlanError::Unsupported(_))
        ));
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
