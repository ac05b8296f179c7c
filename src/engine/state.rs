//! The engine's state as the state file holds it: export and restore.

use super::*;

impl Engine {
    /// Keeps a journal of what changes from now on, for [`Engine::take_delta`]
    /// (only an engine whose state is saved needs one).
    pub fn track_changes(&mut self) {
        self.journal.on = true;
    }

    /// True when the changes since the last save cannot be written as a
    /// delta (the engine was reset): the next save must be a full snapshot.
    pub fn wants_full_save(&self) -> bool {
        self.journal.full
    }

    /// A full snapshot ([`Engine::to_state`]), after which the journal
    /// starts again from nothing.
    pub fn take_state(&mut self) -> EngineState {
        let state = self.to_state();
        self.clear_journal();
        state
    }

    fn clear_journal(&mut self) {
        let on = self.journal.on;
        self.journal = Journal {
            on,
            ..Journal::default()
        };
    }

    /// What changed since the last [`Engine::take_state`] or `take_delta`:
    /// each changed record and view as it is now. Costs what changed, not
    /// what the engine holds.
    pub fn take_delta(&mut self) -> EngineDelta {
        let journal = std::mem::take(&mut self.journal);
        self.journal.on = journal.on;
        let mut delta = EngineDelta {
            table_floors: self.saved_floors(),
            loaded: self.saved_loaded(),
            ..EngineDelta::default()
        };
        for id in journal.records {
            match self.store.get(&id) {
                Some(rec) => delta.records.push(StoredRecord {
                    id,
                    version: rec.version,
                    content: rec.content.clone(),
                }),
                None => delta.deleted.push(id),
            }
        }
        for id in journal.views {
            match self.view(&id) {
                Some(meta) => {
                    if let Some(r) = self.requery_state(&id) {
                        delta.requery.push(r);
                    }
                    delta.views.push(meta);
                }
                None => delta.removed_views.push(id),
            }
        }
        delta.records.sort_by(|a, b| a.id.cmp(&b.id));
        delta.deleted.sort();
        delta.views.sort_by(|a, b| a.id.cmp(&b.id));
        delta.requery.sort_by(|a, b| a.id.cmp(&b.id));
        delta.removed_views.sort();
        delta
    }

    /// [`EngineState::table_floors`] as saved.
    fn saved_floors(&self) -> std::collections::BTreeMap<String, u64> {
        self.table_floors
            .iter()
            .map(|(t, v)| (t.to_string(), *v))
            .collect()
    }

    /// [`EngineState::loaded`] as saved: sorted, so that equal states save
    /// equal text.
    fn saved_loaded(&self) -> Vec<String> {
        let mut loaded: Vec<String> = self.loaded.iter().map(|t| t.to_string()).collect();
        loaded.sort();
        loaded
    }

    /// A consistent snapshot of everything that is not derived.
    pub fn to_state(&self) -> EngineState {
        let mut views: Vec<ViewMeta> = self.views().collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        let mut requery: Vec<RequeryState> = self
            .requery
            .keys()
            .filter_map(|id| self.requery_state(id))
            .collect();
        requery.sort_by(|a, b| a.id.cmp(&b.id));
        let mut records = Vec::with_capacity(self.store.len());
        for (table, t) in &self.store.tables {
            for (k, rec) in &t.records {
                records.push(StoredRecord {
                    id: RecordId::new(table.clone(), k.clone()),
                    version: rec.version,
                    content: rec.content.clone(),
                });
            }
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        EngineState {
            views,
            records,
            requery,
            table_floors: self.saved_floors(),
            loaded: self.saved_loaded(),
        }
    }

    /// Rebuilds an engine from a snapshot: records first, then views, whose
    /// nodes and indexes are derived again.
    pub fn from_state(state: EngineState) -> Result<Engine, EngineError> {
        let mut engine = Engine::new();
        engine.table_floors = state
            .table_floors
            .into_iter()
            .map(|(t, v)| (value::TableName::from(t.as_str()), v))
            .collect();
        engine.loaded = state
            .loaded
            .iter()
            .map(|t| value::TableName::from(t.as_str()))
            .collect();
        for rec in state.records {
            let content = match &rec.content {
                Value::Object(o) => engine.store.stored_content(&rec.id, o, None),
                _ => rec.content,
            };
            let table = engine.store.table_mut(&rec.id.table);
            table.records.insert(
                rec.id.key,
                Record {
                    content,
                    version: rec.version,
                },
            );
        }
        let mut requery: AHashMap<Arc<str>, RequeryState> = state
            .requery
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        for v in state.views {
            match requery.remove(&v.id) {
                Some(r) => {
                    engine.register_requery(v, r.reason, r.tables, r.members, r.linked);
                    if let Some(e) = r.error {
                        engine.requery_failed(&r.id, e);
                    }
                }
                None => engine.restore_view(v)?,
            }
        }
        Ok(engine)
    }

    /// Raises a record's version to at least `version`, changing nothing
    /// else. Clients cache records by version, so a version SSP hands out
    /// must never be below one an edge already showed: after a kill -9 the
    /// state file can be older than the edges the last commits wrote.
    ///
    /// A record the engine does not hold (created after the state file was
    /// saved) gets a floor instead: when it arrives, its version starts
    /// above what its edges showed.
    pub fn raise_version(&mut self, id: &RecordId, version: u64) {
        match self
            .store
            .tables
            .get_mut(&id.table)
            .and_then(|t| t.records.get_mut(&id.key))
        {
            Some(r) => {
                if r.version < version {
                    r.version = version;
                    self.journal.record(id);
                }
            }
            None => {
                let floor = self.version_floors.entry(id.clone()).or_default();
                *floor = (*floor).max(version);
            }
        }
    }

    /// Lets go of `table`'s records when no view reads it any more (the
    /// change worker stopped following it): memory follows the views. Its
    /// highest version is kept as the table's floor, so that when a view
    /// reads it again its records start above any version a client saw.
    /// Returns how many records were dropped (none if a view reads it).
    pub fn forget_table(&mut self, table: &str) -> usize {
        if self.tables().iter().any(|t| t.as_ref() == table) {
            return 0;
        }
        let Some(t) = self.store.tables.get(table) else {
            return 0;
        };
        // A node of a view on another table may still be registered under
        // this one (nothing reads it, so none should): keep it then.
        if !t.scan_nodes.is_empty() || t.has_index_nodes() {
            return 0;
        }
        let Some(t) = self.store.tables.remove(table) else {
            return 0;
        };
        let name = value::TableName::from(table);
        self.drop_prescan_of(table);
        self.loaded.remove(table);
        let mut floor = self.table_floors.get(&name).copied().unwrap_or(0);
        for (k, r) in &t.records {
            floor = floor.max(r.version);
            let id = RecordId::new(name.clone(), k.clone());
            self.links.change(&id, Some(&r.content), None);
            self.journal.record(&id);
        }
        let dropped = t.records.len();
        if dropped > 0 {
            self.table_floors.insert(name, floor);
        }
        dropped
    }
}

impl EngineState {
    /// Applies deltas saved after this state, in order (see
    /// [`Engine::take_delta`]): each record and view one names is replaced
    /// by what the last one says, or removed. The records are indexed once
    /// for all of them, not once per delta.
    pub fn apply(&mut self, deltas: impl IntoIterator<Item = EngineDelta>) {
        use std::collections::BTreeMap;
        let mut records: Option<BTreeMap<RecordId, StoredRecord>> = None;
        let mut views: Option<BTreeMap<Arc<str>, ViewMeta>> = None;
        let mut requery: Option<BTreeMap<Arc<str>, RequeryState>> = None;
        for delta in deltas {
            if !delta.records.is_empty() || !delta.deleted.is_empty() {
                let records = records.get_or_insert_with(|| {
                    std::mem::take(&mut self.records)
                        .into_iter()
                        .map(|r| (r.id.clone(), r))
                        .collect()
                });
                for id in delta.deleted {
                    records.remove(&id);
                }
                for r in delta.records {
                    records.insert(r.id.clone(), r);
                }
            }
            if !delta.views.is_empty() || !delta.removed_views.is_empty() {
                let views = views.get_or_insert_with(|| {
                    std::mem::take(&mut self.views)
                        .into_iter()
                        .map(|v| (v.id.clone(), v))
                        .collect()
                });
                let requery = requery.get_or_insert_with(|| {
                    std::mem::take(&mut self.requery)
                        .into_iter()
                        .map(|r| (r.id.clone(), r))
                        .collect()
                });
                // A changed view's tier is what the delta says: a view
                // that left the re-query tier has no state there any more.
                for id in delta
                    .views
                    .iter()
                    .map(|v| &v.id)
                    .chain(&delta.removed_views)
                {
                    views.remove(id);
                    requery.remove(id);
                }
                views.extend(delta.views.into_iter().map(|v| (v.id.clone(), v)));
                requery.extend(delta.requery.into_iter().map(|r| (r.id.clone(), r)));
            }
            self.table_floors = delta.table_floors;
            self.loaded = delta.loaded;
        }
        if let Some(records) = records {
            self.records = records.into_values().collect();
        }
        if let Some(views) = views {
            self.views = views.into_values().collect();
        }
        if let Some(requery) = requery {
            self.requery = requery.into_values().collect();
        }
    }
}
