//! `$param` paths through record ids: `WHERE organiser = $org.id`,
//! `WHERE owner = $auth.id`, `FROM $team.players`, `FROM ONLY $event.organiser`.
//!
//! SurrealDB fetches the record a param names each time it evaluates such a
//! path. The engine reads it from its store instead, once per registration:
//! it binds what it finds under a name of its own (so that the views of one
//! query text still share one plan, whatever record their params name), and
//! keeps the ids of the records it read. When a batch changes one of them,
//! the views that read it register again, and their edges move by the
//! difference in the same batch: a view over `$org.id` follows its
//! organisation's deletion exactly as SurrealDB's answer does (`$org.id`
//! is NONE then).

use std::cell::RefCell;

use super::eval::{Fetched, Links};
use super::*;

/// Starts the names a resolved param path is bound under: no SurrealQL
/// param can be written with it, so no query reads a JSON param that has it.
const RESOLVED: char = '\u{1}';

/// What resolving a view's param paths found.
#[derive(Default)]
pub(super) struct ParamLinks {
    /// Every record a path read, present or not (a missing one that appears
    /// changes the value too), sorted and without repeats.
    pub deps: Vec<RecordId>,
    /// Tables a path went into that the engine does not hold in full: the
    /// caller loads them and registers again.
    pub unknown: Vec<value::TableName>,
    /// A path went through the JSON text of a record id inside a fetched
    /// record, which the engine cannot tell from a string.
    pub unfollowable: bool,
}

/// A [`links::Fetcher`] that keeps the ids it is asked for.
struct Recording<'a> {
    inner: links::Fetcher<'a>,
    seen: RefCell<Vec<RecordId>>,
}

impl Links for Recording<'_> {
    fn fetch(&self, id: &RecordId) -> Fetched<'_> {
        let found = self.inner.fetch(id);
        if !matches!(found, Fetched::Unknown) {
            self.seen.borrow_mut().push(id.clone());
        }
        found
    }
}

impl Engine {
    /// Replaces every `$param` path of `select` (its subqueries included,
    /// `$parent` excepted) that goes through a record id in `params` by a
    /// param of its own, bound in `params` to the value the path reads in
    /// the store now.
    pub(super) fn resolve_param_links(
        &self,
        select: &mut ast::Select,
        params: &mut Object,
    ) -> ParamLinks {
        value::take_link_followed();
        links::take_unknown_tables();
        let fetcher = Recording {
            inner: links::Fetcher {
                store: &self.store,
                loaded: &self.loaded,
                before: None,
            },
            seen: RefCell::new(Vec::new()),
        };
        let mut next = 0usize;
        rewrite_select(select, params, &fetcher, &mut next);
        let mut deps = fetcher.seen.into_inner();
        deps.sort();
        deps.dedup();
        let unknown = links::take_unknown_tables();
        let unfollowable = value::take_link_followed() && unknown.is_empty();
        ParamLinks {
            deps,
            unknown,
            unfollowable,
        }
    }

    /// The views whose param paths read one of the records `changes`
    /// touches, each with its members and their versions before the batch.
    pub(super) fn param_dependents(
        &self,
        changes: &[Change],
    ) -> Vec<(Arc<str>, AHashMap<RecordId, u64>)> {
        if self.param_deps.is_empty() {
            return Vec::new();
        }
        let mut ids: Vec<Arc<str>> = changes
            .iter()
            .filter_map(|c| self.param_deps.get(&c.id))
            .flatten()
            .cloned()
            .collect();
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| {
                let view = self.views.get(&id)?;
                let before = self
                    .root_records(view.root)
                    .into_iter()
                    .map(|r| {
                        let v = self.version(&r).unwrap_or(1);
                        (r, v)
                    })
                    .collect();
                Some((id, before))
            })
            .collect()
    }

    /// Registers `dependents` again after the batch (their param paths may
    /// read other values now) and puts, in `out`, each one's delta from
    /// before the batch to now in place of the batch's own. A view that no
    /// longer registers (its path now reads a table the engine does not
    /// hold, or a record link as text) keeps its nodes and is noted for the
    /// re-query tier (see [`Engine::take_link_views`]).
    pub(super) fn refresh_param_views(
        &mut self,
        dependents: Vec<(Arc<str>, AHashMap<RecordId, u64>)>,
        out: &mut Vec<ViewDelta>,
    ) {
        for (id, before) in dependents {
            let Some(meta) = self.views.get(&id).map(|v| v.meta.to_meta()) else {
                continue;
            };
            let client_id = meta.client_id.clone();
            if let Err(e) = self.register_view(meta, false) {
                tracing::debug!(view = %id, error = %e, "a record a view's params read changed, and the view no longer registers incrementally");
                self.link_views.push(id);
                continue;
            }
            let Some(root) = self.views.get(&id).map(|v| v.root) else {
                continue;
            };
            let after = self.root_records(root);
            let mut delta = ViewDelta {
                view: id.clone(),
                client_id,
                ..Default::default()
            };
            let mut kept = AHashSet::with_capacity(after.len());
            for r in after {
                let version = self.version(&r).unwrap_or(1);
                match before.get(&r) {
                    None => delta.created.push((r.clone(), version)),
                    Some(&was) if was != version => delta.updated.push((r.clone(), version)),
                    Some(_) => {}
                }
                kept.insert(r);
            }
            delta.deleted = before.into_keys().filter(|r| !kept.contains(r)).collect();
            delta.created.sort();
            delta.updated.sort();
            delta.deleted.sort();
            out.retain(|d| d.view != id);
            if !delta.is_empty() {
                out.push(delta);
            }
        }
        out.sort_by(|a, b| a.view.cmp(&b.view));
    }

    /// Notes that view `id` reads `deps` through its params.
    pub(super) fn add_param_deps(&mut self, id: &Arc<str>, deps: &[RecordId]) {
        for d in deps {
            let views = self.param_deps.entry(d.clone()).or_default();
            if !views.contains(id) {
                views.push(id.clone());
            }
        }
    }

    /// Forgets that view `id` reads `deps` through its params.
    pub(super) fn remove_param_deps(&mut self, id: &Arc<str>, deps: &[RecordId]) {
        for d in deps {
            if let Some(views) = self.param_deps.get_mut(d) {
                views.retain(|v| v != id);
                if views.is_empty() {
                    self.param_deps.remove(d);
                }
            }
        }
    }
}

fn rewrite_select(
    select: &mut ast::Select,
    params: &mut Object,
    links: &dyn Links,
    next: &mut usize,
) {
    let exprs = select
        .ids
        .iter_mut()
        .chain(select.filter.iter_mut())
        .chain(select.limit.iter_mut())
        .chain(select.start.iter_mut());
    for e in exprs {
        rewrite_expr(e, params, links, next);
    }
    for f in &mut select.fields {
        match f {
            ast::Field::Expr { expr, .. } => rewrite_expr(expr, params, links, next),
            ast::Field::Subquery { query, .. } => rewrite_select(query, params, links, next),
            ast::Field::All | ast::Field::LinkAll { .. } => {}
        }
    }
}

fn rewrite_expr(e: &mut ast::Expr, params: &mut Object, links: &dyn Links, next: &mut usize) {
    use ast::Expr;
    match e {
        Expr::Param { name, path } => {
            if name.eq_ignore_ascii_case("parent") {
                return;
            }
            let Some(v) = params.get(name) else { return };
            if !plan::resolve::through_link(v, path) {
                return;
            }
            let value = eval::fetch_path(v, path, links);
            let bound = format!("{RESOLVED}{next}");
            *next += 1;
            params.insert(bound.as_str().into(), value);
            *e = Expr::Param {
                name: bound,
                path: Vec::new(),
            };
        }
        Expr::Literal(_) | Expr::Field(_) => {}
        Expr::Array(items) => items
            .iter_mut()
            .for_each(|i| rewrite_expr(i, params, links, next)),
        Expr::Not(x) => rewrite_expr(x, params, links, next),
        Expr::Binary { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
            rewrite_expr(lhs, params, links, next);
            rewrite_expr(rhs, params, links, next);
        }
        Expr::Call { args, .. } => args
            .iter_mut()
            .for_each(|i| rewrite_expr(i, params, links, next)),
    }
}
