//! Registering, refreshing and unregistering incremental views.

use super::*;

impl Engine {
    /// Registers a view, or refreshes one with the same id. Returns the edge
    /// changes: for a new view, every record as `created`; for a refresh,
    /// only the difference. A failed registration changes nothing.
    pub fn register(&mut self, meta: ViewMeta) -> Result<ViewDelta, EngineError> {
        self.register_view(meta, true)
            .map(|delta| delta.unwrap_or_default())
    }

    /// Registers a view restored from the state file, whose edges exist
    /// already: no edge changes are computed. (At 100,000 records and
    /// 10,000 views the discarded deltas, a set and a sorted list of every
    /// member per view, were most of a restart's time.)
    pub(super) fn restore_view(&mut self, meta: ViewMeta) -> Result<(), EngineError> {
        self.register_view(meta, false).map(|_| ())
    }

    pub(super) fn register_view(
        &mut self,
        meta: ViewMeta,
        with_delta: bool,
    ) -> Result<Option<ViewDelta>, EngineError> {
        // Binding the params may already look through a link (`$org.id`).
        value::take_link_followed();
        links::take_unknown_tables();
        let (plan, params, param_links) = self.plan_view(&meta.sql, &meta.params)?;
        // The caller loaded the tables the plan reads before registering it.
        let mut tables = Vec::new();
        plan.tables(&mut tables);
        if self.mark_loaded(&tables) {
            // What `plan_view` found of their shapes was just forgotten:
            // found again, so that a batch writing an edge-shaped record
            // there is noticed (see `Engine::watches_edge_shape`).
            self.check_graph(&plan)?;
        }
        let before: AHashSet<RecordId> = match self.views.get(&meta.id) {
            _ if !with_delta => AHashSet::new(),
            Some(v) => self.root_records(v.root).into_iter().collect(),
            None => self
                .requery
                .get(&meta.id)
                .map(|v| v.members.clone())
                .unwrap_or_default(),
        };
        // Edges carry the client id: when it changes, every edge that stays
        // is rewritten too, or a client following its edges by `clientId`
        // would never see the records that did not move.
        let client_changed = self.client_changes(&meta);

        self.registering = true;
        let root = self.get_or_create(&plan, &params, None);
        self.registering = false;
        if value::take_link_followed() {
            // Evaluating it on the data went through a record link the
            // engine cannot follow: into a table it does not hold (the
            // caller loads it and tries again), or one it cannot see (the
            // re-query tier takes it). Undo the nodes just made.
            if self.node(root).root.is_none() && self.node(root).parents.is_empty() {
                self.destroy(root);
            }
            self.finish_batch();
            drop(plan);
            self.planner.collect_garbage();
            let unknown = links::take_unknown_tables();
            if !unknown.is_empty() {
                return Err(EngineError::NeedsTables(
                    unknown.iter().map(|t| Arc::from(t.as_str())).collect(),
                ));
            }
            return Err(PlanError::FollowsLink.into());
        }
        // A view that moves here from the re-query tier.
        self.remove_requery(&meta.id);

        self.make_root(root);
        let mut meta = meta;
        meta.client_id = self.shared_client(&meta.client_id);
        if let Some(r) = self.node_mut(root).root.as_mut() {
            r.views
                .push(node::RootView::new(meta.id.clone(), meta.client_id.clone()));
        }
        let id = meta.id.clone();
        self.journal.view(&id);
        let client_id = meta.client_id.clone();
        let sql = match self.sqls.get(meta.sql.as_str()) {
            Some(s) => s.clone(),
            None => {
                let s: Arc<str> = meta.sql.as_str().into();
                self.sqls.insert(s.clone());
                s
            }
        };
        let meta = CompactMeta::new(meta, sql);
        let deps = param_links.deps.into_boxed_slice();
        self.add_param_deps(&id, &deps);
        let view = View {
            meta,
            plan,
            root,
            deps,
            param_paths: param_links.paths.into_boxed_slice(),
        };
        if let Some(old) = self.views.insert(id.clone(), Box::new(view)) {
            let stale: Vec<RecordId> = old
                .deps
                .iter()
                .filter(|d| !self.views[&id].deps.contains(d))
                .cloned()
                .collect();
            self.remove_param_deps(&id, &stale);
            self.detach_view(&old.meta.id, old.root);
            self.forget_sql(old.meta.sql);
        }
        self.finish_batch();

        if !with_delta {
            return Ok(None);
        }
        let after: AHashSet<RecordId> = self.root_records(root).into_iter().collect();
        Ok(Some(self.membership_delta(
            id,
            client_id,
            before,
            &after,
            client_changed,
        )))
    }

    /// Notes that the engine holds every record of `tables` (the caller
    /// loaded them, and the change worker follows them): paths through
    /// links into them are evaluated. What was known of the shapes of the
    /// tables not loaded before is forgotten (their records came in whole);
    /// returns whether there were any.
    pub fn mark_loaded(&mut self, tables: &[Arc<str>]) -> bool {
        let new: Vec<Arc<str>> = tables
            .iter()
            .filter(|t| !self.loaded.contains(t.as_ref()))
            .cloned()
            .collect();
        self.forget_edge_shapes(&new);
        for t in &new {
            self.loaded.insert(value::TableName::from(t.as_ref()));
            self.wanted.remove(t);
        }
        !new.is_empty()
    }

    /// What a (re-)registration changed in a view's members, `before` to
    /// `after`: for either tier. A new client id re-announces the records
    /// that stayed, so a client following its edges by `clientId` sees them.
    pub(super) fn membership_delta(
        &self,
        id: Arc<str>,
        client_id: Arc<str>,
        before: AHashSet<RecordId>,
        after: &AHashSet<RecordId>,
        client_changed: bool,
    ) -> ViewDelta {
        let mut delta = ViewDelta {
            view: id,
            client_id,
            ..Default::default()
        };
        for r in after {
            if !before.contains(r) {
                delta
                    .created
                    .push((r.clone(), self.version(r).unwrap_or(1)));
            }
        }
        for r in before {
            if !after.contains(&r) {
                delta.deleted.push(r);
            } else if client_changed {
                let version = self.version(&r).unwrap_or(1);
                delta.updated.push((r, version));
            }
        }
        delta.created.sort();
        delta.updated.sort();
        delta.deleted.sort();
        delta
    }

    pub(super) fn client_changes(&self, meta: &ViewMeta) -> bool {
        match self.views.get(&meta.id) {
            Some(v) => v.meta.client_id != meta.client_id,
            None => self
                .requery
                .get(&meta.id)
                .is_some_and(|v| v.meta.client_id != meta.client_id),
        }
    }
}
