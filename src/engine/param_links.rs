//! `$param` paths through record ids: `WHERE organiser = $org.id`,
//! `WHERE owner = $auth.id`, `FROM $team.players`, `FROM ONLY $event.organiser`.
//!
//! SurrealDB fetches the record a param names each time it evaluates such a
//! path. The engine reads it from its store instead, once per registration:
//! it binds what it finds under a name of its own (so that the views of one
//! query text still share one plan, whatever record their params name), and
//! keeps the ids of the records it read. When a batch changes one of them,
//! the views that read it read their paths again; those whose values
//! changed register again, and their edges move by the difference in the
//! same batch: a view over `$org.id` follows its organisation's deletion
//! exactly as SurrealDB's answer does (`$org.id` is NONE then), and a
//! renamed organisation moves nothing.
//!
//! `x IN (SELECT VALUE path FROM table WHERE ..)` is bound the same way:
//! the subquery reads no row, so its value is one array for every row of
//! the view. The view depends on every record of `table` (a change to any
//! of them evaluates the subquery again) through [`table_dep`].

use std::cell::RefCell;

use super::eval::{Env, Fetched, Links, Row};
use super::value::PathPart;
use super::*;

/// Starts the names a resolved param path is bound under: no SurrealQL
/// param can be written with it, so no query reads a JSON param that has it.
const RESOLVED: char = '\u{1}';

/// The dependency a view has on every record of `table`: under this id,
/// which no record has (see [`RESOLVED`]), a change to any record of the
/// table finds the view (see [`Engine::param_dependents`]).
fn table_dep(table: &value::TableName) -> RecordId {
    RecordId {
        table: table.clone(),
        key: key::Key::String(RESOLVED.to_string().into()),
    }
}

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
    /// The paths resolved, with the values they read.
    pub paths: Vec<ParamPath>,
    /// A lowered traversal's edges name a record with a composite key (see
    /// [`Recording::select_values`]).
    pub inexact: bool,
}

/// One `$param` path through a record, and the value it read when its view
/// registered: a batch that changes the record reads it again, and the view
/// keeps its nodes when every such value stays.
#[derive(Clone, Debug)]
pub(super) struct ParamPath {
    source: Source,
    value: Value,
}

/// What a [`ParamPath`] reads.
#[derive(Clone, Debug)]
enum Source {
    /// `$name.path`.
    Path { name: Box<str>, path: Vec<PathPart> },
    /// `(SELECT VALUE path FROM table WHERE ..)`, its params bound.
    Subquery(Box<ast::Select>),
}

/// A [`links::Fetcher`] that keeps the ids it is asked for.
struct Recording<'a> {
    inner: links::Fetcher<'a>,
    seen: RefCell<Vec<RecordId>>,
    inexact: std::cell::Cell<bool>,
}

impl<'a> Recording<'a> {
    /// A recorder over the engine's store; clears the thread's link notes
    /// so that [`Recording::finish`] sees only its own.
    fn new(engine: &'a Engine) -> Self {
        value::take_link_followed();
        links::take_unknown_tables();
        Recording {
            inner: engine.fetcher(None),
            seen: RefCell::new(Vec::new()),
            inexact: std::cell::Cell::new(false),
        }
    }

    /// What was read: the records (sorted, no repeats), the tables it
    /// could not read, whether a path went through the JSON text of a
    /// record id, and whether a lowered traversal is inexact.
    fn finish(self) -> Read {
        let mut deps = self.seen.into_inner();
        deps.sort();
        deps.dedup();
        let unknown = links::take_unknown_tables();
        let unfollowable = value::take_link_followed() && unknown.is_empty();
        Read {
            deps,
            unknown,
            unfollowable,
            inexact: self.inexact.get(),
        }
    }
}

/// What a [`Recording`] read.
struct Read {
    deps: Vec<RecordId>,
    unknown: Vec<value::TableName>,
    unfollowable: bool,
    inexact: bool,
}

impl Recording<'_> {
    /// `SELECT VALUE path FROM table WHERE ..` (params bound) over the
    /// store, in SurrealDB's id order, as SurrealDB scans the table. A
    /// table the engine does not hold in full is noted for loading. For a
    /// lowered traversal (`graph_checks`), an end with a composite key is
    /// noted as inexact (see `plan::resolve::lower_row_traversals`).
    fn select_values(&self, q: &ast::Select) -> Value {
        let table = value::TableName::from(q.table.as_str());
        self.seen.borrow_mut().push(table_dep(&table));
        if !self.inner.loaded.contains(&table) {
            links::note_unknown_table(&table);
            return Value::Array(Default::default());
        }
        let Some(ast::Field::Expr { expr, .. }) = q.fields.first() else {
            return Value::None;
        };
        let Some(t) = self.inner.store.tables.get(&table) else {
            return Value::Array(Default::default());
        };
        let mut rows: Vec<(RecordId, Value)> = Vec::new();
        // A lowered traversal's edges of one record, from the index on the
        // edge field the engine keeps for it (see `read.rs`); the whole
        // table when there is none (or the value is not a plain record id,
        // whose index key could differ from what `=` matches).
        let indexed: Option<Vec<key::Key>> = plan::resolve::lowered_end(q).and_then(|(f, v)| {
            let ast::Expr::Literal(v @ Value::Thing(r)) = v else {
                return None;
            };
            if matches!(r.key, key::Key::Composite(_)) {
                return None;
            }
            let path = [PathPart::Field(f.into())];
            t.indexes
                .iter()
                .any(|(p, _)| p.as_slice() == path.as_slice())
                .then(|| {
                    v.index_key()
                        .map(|k| t.lookup(&table, &path, &k))
                        .unwrap_or_default()
                })
        });
        let candidates: Box<dyn Iterator<Item = (&key::Key, &store::Record)>> = match &indexed {
            Some(keys) => Box::new(keys.iter().filter_map(|k| t.records.get_key_value(k))),
            None => Box::new(t.records.iter()),
        };
        for (key, r) in candidates {
            let id = RecordId {
                table: table.clone(),
                key: key.clone(),
            };
            let row = Row::linked(&id, &r.content, Some(self));
            if eval::matches(q.filter.as_ref(), row) {
                let v = eval::eval(expr, row).into_owned();
                if q.graph_checks.is_some()
                    && matches!(&v, Value::Thing(t) if matches!(t.key, key::Key::Composite(_)))
                {
                    self.inexact.set(true);
                }
                rows.push((id.clone(), v));
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Array(rows.into_iter().map(|(_, v)| v).collect())
    }
}

impl Links for Recording<'_> {
    fn clock(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.inner.clock()
    }

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
        let fetcher = Recording::new(self);
        let mut paths = Vec::new();
        rewrite_select(select, params, &fetcher, &mut paths);
        let read = fetcher.finish();
        ParamLinks {
            deps: read.deps,
            unknown: read.unknown,
            unfollowable: read.unfollowable,
            paths,
            inexact: read.inexact,
        }
    }

    /// Reads view `id`'s param paths again: the records they read now, when
    /// every value is the one its nodes were made with.
    fn same_param_values(&self, id: &str) -> Option<Vec<RecordId>> {
        let view = self.views.get(id)?;
        if view.param_paths.is_empty() {
            return None;
        }
        let fetcher = Recording::new(self);
        let same = view.param_paths.iter().all(|p| match &p.source {
            Source::Path { name, path } => {
                let param = view
                    .meta
                    .params
                    .iter()
                    .find(|(k, _)| **k == **name)
                    .map(|(_, v)| Value::param_from_json(v))
                    .unwrap_or(Value::None);
                eval::fetch_path(&param, path, &fetcher) == p.value
            }
            Source::Subquery(q) => fetcher.select_values(q) == p.value,
        });
        let read = fetcher.finish();
        (same && read.unknown.is_empty() && !read.unfollowable && !read.inexact)
            .then_some(read.deps)
    }

    /// The views whose param paths read one of the records `changes`
    /// touches.
    pub(super) fn param_dependents(&self, changes: &[Change]) -> Vec<Arc<str>> {
        if self.param_deps.is_empty() {
            return Vec::new();
        }
        let mut tables: Vec<&value::TableName> = Vec::new();
        let mut ids: Vec<Arc<str>> = Vec::new();
        for c in changes {
            if let Some(views) = self.param_deps.get(&c.id) {
                ids.extend(views.iter().cloned());
            }
            if !tables.contains(&&c.id.table) {
                tables.push(&c.id.table);
                if let Some(views) = self.param_deps.get(&table_dep(&c.id.table)) {
                    ids.extend(views.iter().cloned());
                }
            }
        }
        ids.sort();
        ids.dedup();
        ids
    }

    /// Reads the param paths of `dependents` again after the batch. A view
    /// whose paths read the same values keeps its nodes (most changes to
    /// such a record: a renamed organisation leaves `$org.id` as it was),
    /// and only the records it read are noted again. Any other registers
    /// again, and its delta in `out` becomes the one from before the batch
    /// to now (`bumped`: the records whose version the batch raised). A view
    /// that no longer registers (its path now reads a table the engine does
    /// not hold, or a record link as text, or `FROM` no longer names
    /// records) keeps its nodes and is noted for the re-query tier (see
    /// [`Engine::take_link_views`]).
    pub(super) fn refresh_param_views(
        &mut self,
        dependents: Vec<Arc<str>>,
        bumped: &AHashSet<RecordId>,
        out: &mut Vec<ViewDelta>,
    ) {
        let mut moved = false;
        for id in dependents {
            let Some(view) = self.views.get(&id) else {
                continue;
            };
            let root = view.root;
            // Most changes to such a record leave the values as they were.
            if let Some(deps) = self.same_param_values(&id) {
                self.set_param_deps(&id, deps);
                continue;
            }
            let Some(meta) = self.views.get(&id).map(|v| v.meta.to_meta()) else {
                continue;
            };
            let client_id = meta.client_id.clone();
            let now: AHashSet<RecordId> = self.root_records(root).into_iter().collect();
            if let Err(e) = self.register_view(meta, false) {
                tracing::debug!(view = %id, error = %e, "a record a view's params read changed, and the view no longer registers incrementally");
                self.link_views.push(id);
                continue;
            }
            let Some(root) = self.views.get(&id).map(|v| v.root) else {
                continue;
            };
            // Before the batch: now, less what the batch brought in, plus
            // what it took out.
            let mut before = now;
            if let Some(d) = out.iter().find(|d| d.view == id) {
                for (r, _) in &d.created {
                    before.remove(r);
                }
                before.extend(d.deleted.iter().cloned());
            }
            let mut delta = ViewDelta {
                view: id.clone(),
                client_id,
                ..Default::default()
            };
            for r in self.root_records(root) {
                if before.remove(&r) {
                    if bumped.contains(&r) {
                        let version = self.version(&r).unwrap_or(1);
                        delta.updated.push((r, version));
                    }
                } else {
                    let version = self.version(&r).unwrap_or(1);
                    delta.created.push((r, version));
                }
            }
            delta.deleted = before.into_iter().collect();
            delta.created.sort();
            delta.updated.sort();
            delta.deleted.sort();
            out.retain(|d| d.view != id);
            if !delta.is_empty() {
                out.push(delta);
            }
            moved = true;
        }
        if moved {
            out.sort_by(|a, b| a.view.cmp(&b.view));
        }
    }

    /// Notes that view `id` reads `deps` now, instead of what it read.
    fn set_param_deps(&mut self, id: &Arc<str>, deps: Vec<RecordId>) {
        let Some(view) = self.views.get(id) else {
            return;
        };
        if *view.deps == *deps {
            return;
        }
        let old = view.deps.clone();
        self.remove_param_deps(id, &old);
        self.add_param_deps(id, &deps);
        if let Some(view) = self.views.get_mut(id) {
            view.deps = deps.into_boxed_slice();
        }
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
    links: &Recording<'_>,
    next: &mut Vec<ParamPath>,
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
            ast::Field::All | ast::Field::LinkAll { .. } | ast::Field::Computed { .. } => {}
        }
    }
}

fn rewrite_expr(
    e: &mut ast::Expr,
    params: &mut Object,
    links: &Recording<'_>,
    next: &mut Vec<ParamPath>,
) {
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
            let bound = format!("{RESOLVED}{}", next.len());
            next.push(ParamPath {
                source: Source::Path {
                    name: name.as_str().into(),
                    path: path.clone(),
                },
                value: value.clone(),
            });
            params.insert(bound.as_str().into(), value);
            *e = Expr::Param {
                name: bound,
                path: Vec::new(),
            };
        }
        Expr::Subquery(q) => {
            // Its own `$param` paths and subqueries first.
            rewrite_select(q, params, links, next);
            let env = Env {
                params,
                parent: None,
            };
            q.filter = q.filter.as_ref().map(|f| eval::bind(f, &env));
            let value = links.select_values(q);
            let bound = format!("{RESOLVED}{}", next.len());
            next.push(ParamPath {
                source: Source::Subquery(q.clone()),
                value: value.clone(),
            });
            params.insert(bound.as_str().into(), value);
            *e = Expr::Param {
                name: bound,
                path: Vec::new(),
            };
        }
        Expr::Literal(_) | Expr::Field(_) | Expr::Traversal(_) | Expr::Now { .. } => {}
        Expr::Array(items) => items
            .iter_mut()
            .for_each(|i| rewrite_expr(i, params, links, next)),
        Expr::Not(x) | Expr::Get { of: x, .. } => rewrite_expr(x, params, links, next),
        Expr::Binary { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
            rewrite_expr(lhs, params, links, next);
            rewrite_expr(rhs, params, links, next);
        }
        Expr::Call { args, .. } => args
            .iter_mut()
            .for_each(|i| rewrite_expr(i, params, links, next)),
    }
}

/// `FROM $event.organiser`, `FROM $team.players`, where the path now holds
/// NONE, NULL or an empty list (the field or the record missing): SurrealDB
/// answers no row, with `ONLY` too (NONE; measured on 3.3.5, where a
/// literal `FROM ONLY NONE` fails instead, hence paths only). The view
/// becomes a select that keeps nothing, of a table some path read (held by
/// the engine, as every table a path reads is), so it still follows the
/// record, and registers again once the path names records.
pub(super) fn empty_from_path(select: &mut ast::Select, params: &Object, links: &ParamLinks) {
    let Some(ast::Expr::Param { name, path }) = &select.ids else {
        return;
    };
    let Some(read) = links.deps.first() else {
        return;
    };
    let empty = name.starts_with(RESOLVED)
        && select.graph.is_empty()
        && params.get(name).is_some_and(|v| match v.get_path(path) {
            Value::None | Value::Null => true,
            Value::Array(items) => items.is_empty(),
            _ => false,
        });
    if empty {
        select.ids = None;
        select.only = false;
        select.table = read.table.to_string();
        select.filter = Some(ast::Expr::Literal(Value::Bool(false)));
    }
}
