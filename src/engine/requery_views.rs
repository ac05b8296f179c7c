//! The re-query tier's side of the engine: its views, their members, and the record-link graph they need.

use super::*;

impl Engine {
    /// Registers (or refreshes) a view of the re-query tier with its first
    /// answer, `members` (see the `requery` module). `tables` are those its
    /// text reads, `linked` those of the record ids the answer held.
    /// Returns the edge changes, as [`Engine::register`] does.
    pub fn register_requery(
        &mut self,
        meta: ViewMeta,
        reason: String,
        tables: Vec<Arc<str>>,
        members: Vec<RecordId>,
        linked: Vec<Arc<str>>,
    ) -> ViewDelta {
        let before: AHashSet<RecordId> = match self.views.get(&meta.id) {
            Some(v) => self.root_records(v.root).into_iter().collect(),
            None => self
                .requery
                .get(&meta.id)
                .map(|v| v.members.clone())
                .unwrap_or_default(),
        };
        let client_changed = self.client_changes(&meta);
        if let Some(old) = self.views.remove(&meta.id) {
            self.remove_param_deps(&old.meta.id, &old.deps);
            self.detach_view(&old.meta.id, old.root);
            self.forget_sql(old.meta.sql);
            self.finish_batch();
            self.planner.collect_garbage();
        }
        self.start_links();
        let sql = self.shared_sql(&meta.sql);
        let mut meta = meta;
        meta.client_id = self.shared_client(&meta.client_id);
        let id = meta.id.clone();
        self.journal.view(&id);
        let client_id = meta.client_id.clone();
        let after: AHashSet<RecordId> = members.into_iter().collect();
        let old = self.requery.insert(
            id.clone(),
            RequeryView {
                meta: CompactMeta::new(meta, sql),
                reason: reason.into_boxed_str(),
                tables: tables.into_boxed_slice(),
                linked: linked.into_boxed_slice(),
                members: after.clone(),
                error: None,
            },
        );
        if let Some(old) = old {
            self.forget_sql(old.meta.sql);
        }
        self.membership_delta(id, client_id, before, &after, client_changed)
    }

    /// The re-query views a batch that changed `tables` may have changed.
    pub fn requery_due(&self, tables: &AHashSet<&str>) -> Vec<RequeryTask> {
        self.requery_tasks(|v| {
            self.requery_tables(v)
                .iter()
                .any(|t| tables.contains(t.as_ref()))
        })
    }

    /// A re-query view as the state file keeps it.
    pub fn requery_state(&self, id: &str) -> Option<RequeryState> {
        let v = self.requery.get(id)?;
        let mut members: Vec<RecordId> = v.members.iter().cloned().collect();
        members.sort();
        Some(RequeryState {
            id: v.meta.id.clone(),
            reason: v.reason.to_string(),
            tables: v.tables.to_vec(),
            linked: v.linked.to_vec(),
            members,
            error: v.error.as_deref().map(str::to_string),
        })
    }

    /// Every re-query view, for a re-run of all of them (after a restart).
    pub fn requery_all(&self) -> Vec<RequeryTask> {
        self.requery_tasks(|_| true)
    }

    /// The runs of the re-query views `due` picks, in view id order.
    fn requery_tasks(&self, due: impl Fn(&RequeryView) -> bool) -> Vec<RequeryTask> {
        let mut tasks: Vec<RequeryTask> = self
            .requery
            .values()
            .filter(|v| due(v))
            .map(|v| RequeryTask {
                view: v.meta.id.clone(),
                sql: v.meta.sql.clone(),
                params: v.meta.to_meta().params,
            })
            .collect();
        tasks.sort_by(|a, b| a.view.cmp(&b.view));
        tasks
    }

    /// A re-query view's new answer: the records that entered and left.
    /// (Members whose version changed were already `updated` by the batch.)
    /// `None` if the view is gone or left the tier meanwhile. The flag says
    /// whether the answer links to a table it did not before (the change
    /// worker may have to follow it).
    pub fn requery_answer(
        &mut self,
        id: &str,
        members: Vec<RecordId>,
        linked: Vec<Arc<str>>,
    ) -> Option<(ViewDelta, bool)> {
        let versions: Vec<u64> = members
            .iter()
            .map(|r| self.version(r).unwrap_or(1))
            .collect();
        let v = self.requery.get_mut(id)?;
        self.journal.view(&v.meta.id);
        v.error = None;
        let grew = linked.iter().any(|t| !v.linked.contains(t));
        v.linked = linked.into_boxed_slice();
        let after: AHashSet<RecordId> = members.iter().cloned().collect();
        let mut delta = ViewDelta {
            view: v.meta.id.clone(),
            client_id: v.meta.client_id.clone(),
            ..Default::default()
        };
        for (r, version) in members.into_iter().zip(versions) {
            if !v.members.contains(&r) {
                delta.created.push((r, version));
            }
        }
        for r in &v.members {
            if !after.contains(r) {
                delta.deleted.push(r.clone());
            }
        }
        v.members = after;
        delta.created.sort();
        delta.deleted.sort();
        Some((delta, grew))
    }

    /// A re-run failed for a reason waiting does not heal (SurrealDB
    /// refuses the query on the data it holds now): the edges keep the last
    /// answer, and `GET /view` shows why.
    pub fn requery_failed(&mut self, id: &str, error: String) {
        if let Some(v) = self.requery.get_mut(id) {
            self.journal.view(&v.meta.id);
            v.error = Some(error.into_boxed_str());
        }
    }

    /// Removes a re-query view; returns its id, client id and members.
    pub(super) fn remove_requery(
        &mut self,
        id: &str,
    ) -> Option<(Arc<str>, Arc<str>, AHashSet<RecordId>)> {
        let v = self.requery.remove(id)?;
        if self.requery.is_empty() && self.link_nodes == 0 {
            self.links.stop();
        }
        let CompactMeta {
            id, client_id, sql, ..
        } = v.meta;
        self.forget_sql(sql);
        Some((id, client_id, v.members))
    }

    pub(super) fn start_links(&mut self) {
        if self.links.is_tracking() {
            return;
        }
        let store = &self.store;
        self.links.start(
            store
                .tables
                .iter()
                .flat_map(|(name, t)| t.records.values().map(move |r| (name, &r.content))),
        );
    }

    pub(super) fn shared_sql(&mut self, sql: &str) -> Arc<str> {
        match self.sqls.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s: Arc<str> = sql.into();
                self.sqls.insert(s.clone());
                s
            }
        }
    }

    /// The shared copy of client id `c` (see `Engine::clients`). Ids no
    /// view holds any more are swept as the set doubles.
    pub(super) fn shared_client(&mut self, c: &Arc<str>) -> Arc<str> {
        if let Some(s) = self.clients.get(c) {
            return s.clone();
        }
        if self.clients.len() >= 1024 && self.clients.len() >= 2 * self.clients_swept {
            self.clients.retain(|s| Arc::strong_count(s) > 1);
            self.clients_swept = self.clients.len();
        }
        self.clients.insert(c.clone());
        c.clone()
    }

    /// Updates a view's `lastActiveAt`.
    pub fn touch(&mut self, id: &str, at: DateTime<Utc>) -> bool {
        if let Some(v) = self.views.get_mut(id) {
            v.meta.last_active_at = at;
            self.journal.view(&v.meta.id);
            return true;
        }
        match self.requery.get_mut(id) {
            Some(v) => {
                v.meta.last_active_at = at;
                self.journal.view(&v.meta.id);
                true
            }
            None => false,
        }
    }

    /// Removes a view; returns its records (all of which lose their edge).
    pub fn unregister(&mut self, id: &str) -> Option<ViewDelta> {
        if let Some((view, client_id, members)) = self.remove_requery(id) {
            self.journal.view(&view);
            let mut deleted: Vec<RecordId> = members.into_iter().collect();
            deleted.sort();
            return Some(ViewDelta {
                view,
                client_id,
                deleted,
                ..Default::default()
            });
        }
        let view = self.views.remove(id)?;
        self.remove_param_deps(&view.meta.id, &view.deps);
        let mut records = self.root_records(view.root);
        records.sort();
        self.detach_view(&view.meta.id, view.root);
        let View { meta, plan, .. } = *view;
        self.journal.view(&meta.id);
        self.forget_sql(meta.sql);
        drop(plan);
        self.finish_batch();
        self.planner.collect_garbage();
        Some(ViewDelta {
            view: meta.id,
            client_id: meta.client_id,
            deleted: records,
            ..Default::default()
        })
    }

    /// Drops the shared copy of a query text no view uses any more.
    pub(super) fn forget_sql(&mut self, sql: Arc<str>) {
        // Held by the set and by `sql` only.
        if Arc::strong_count(&sql) == 2 {
            self.sqls.remove(&sql);
        }
    }

    /// Forgets every view and record.
    pub fn reset(&mut self) {
        let on = self.journal.on;
        *self = Engine::default();
        self.journal.on = on;
        self.journal.full = on;
    }

    pub(super) fn detach_view(&mut self, view_id: &Arc<str>, root: NodeId) {
        let Some(rd) = self.node_mut(root).root.as_mut() else {
            return;
        };
        if let Some(pos) = rd.views.iter().position(|v| v.id == *view_id) {
            rd.views.swap_remove(pos);
        }
        if !rd.views.is_empty() {
            return;
        }
        self.node_mut(root).root = None;
        if self.node(root).parents.is_empty() {
            self.destroy(root);
        }
    }

    pub(super) fn make_root(&mut self, id: NodeId) {
        if self.node(id).root.is_some() {
            return;
        }
        // Without subqueries or fetches a node's result is its members, each
        // once: no counts to keep (most roots; the big ones, like `text = $w`).
        let plan = &self.node(id).plan;
        let flat = if plan.subplans.is_empty() && plan.fetch.is_empty() {
            None
        } else {
            let mut all = Vec::new();
            self.collect_flat(id, &mut all);
            let mut flat: SmallMap<RecordId, u32> = SmallMap::new();
            for r in all {
                match flat.get_mut(&r) {
                    Some(c) => *c += 1,
                    None => {
                        flat.insert(r, 1);
                    }
                }
            }
            Some(flat)
        };
        self.node_mut(id).root = Some(Box::new(RootData {
            views: Vec::new(),
            flat,
        }));
    }
}
