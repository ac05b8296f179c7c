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
    ///
    /// Its records are in no order: sorting a million of them held the
    /// engine (every ingest) for a third of the snapshot's time under the
    /// lock, and a restart does not need them sorted.
    pub fn take_state(&mut self) -> EngineState {
        let state = self.snapshot();
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
            indexes: self.saved_indexes(),
            relation_tables: self.saved_relations(),
            functions: self.parsed.functions().clone(),
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

    /// A consistent snapshot of everything that is not derived, its
    /// records sorted by id (so that equal states compare equal).
    pub fn to_state(&self) -> EngineState {
        let mut state = self.snapshot();
        state.records.sort_by(|a, b| a.id.cmp(&b.id));
        state
    }

    fn snapshot(&self) -> EngineState {
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
        EngineState {
            views,
            records,
            requery,
            table_floors: self.saved_floors(),
            loaded: self.saved_loaded(),
            indexes: self.saved_indexes(),
            relation_tables: self.saved_relations(),
            functions: self.parsed.functions().clone(),
        }
    }

    fn saved_relations(&self) -> Vec<String> {
        self.relation_tables.iter().map(|t| t.to_string()).collect()
    }

    fn saved_indexes(&self) -> Vec<(String, Vec<value::PathPart>)> {
        let mut out: Vec<(String, Vec<value::PathPart>)> = self
            .store
            .tables
            .iter()
            .flat_map(|(t, table)| {
                table
                    .used_index_paths()
                    .map(move |p| (t.to_string(), p.to_vec()))
            })
            .collect();
        out.sort();
        out
    }

    /// Rebuilds an engine from a snapshot: records first, then views, whose
    /// nodes and indexes are derived again.
    pub fn from_state(mut state: EngineState) -> Result<Engine, EngineError> {
        let records = std::mem::take(&mut state.records);
        // Each table's map sized once: grown from empty, a million records
        // were rehashed ~20 times over.
        let mut sizes: AHashMap<value::TableName, usize> = AHashMap::new();
        for rec in &records {
            *sizes.entry(rec.id.table.clone()).or_default() += 1;
        }
        Self::from_state_streamed(state, sizes, std::iter::once(records), AHashMap::new())
    }

    /// [`Engine::from_state`], with the records arriving in parts while
    /// they are still being parsed (see `persistence::state_file::restore`):
    /// `state.records` is ignored. `sizes` is how many records each table
    /// has, when known. A record `overrides` names is stored as it says
    /// (or not at all), whatever a part holds: the change log's last word.
    pub fn from_state_streamed(
        state: EngineState,
        sizes: AHashMap<value::TableName, usize>,
        parts: impl IntoIterator<Item = Vec<StoredRecord>>,
        mut overrides: AHashMap<RecordId, Option<StoredRecord>>,
    ) -> Result<Engine, EngineError> {
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
        engine.parsed.set_functions(state.functions);
        engine.relation_tables = state
            .relation_tables
            .iter()
            .map(|t| Arc::from(t.as_str()))
            .collect();
        let indexes: Vec<(value::TableName, Vec<value::PathPart>)> = state
            .indexes
            .into_iter()
            .map(|(t, p)| (value::TableName::from(t.as_str()), p))
            .collect();
        engine.store.start_indexes(&indexes);
        for (t, n) in sizes {
            engine.store.table_mut(&t).records.reserve(n);
        }
        let mut through_links = Vec::new();
        // A million records land at random places in their table's map and
        // share strings through a set as big: each store waits on memory.
        // Asking for a record's lines a few records ahead overlaps those
        // waits (see `prefetch`).
        const AHEAD: usize = 8;
        for part in parts {
            let mut part = part.into_iter();
            loop {
                if let Some(ahead) = part.as_slice().get(AHEAD) {
                    engine.store.prefetch_restore(&ahead.id, &ahead.content);
                }
                let Some(rec) = part.next() else { break };
                if !overrides.is_empty() && overrides.contains_key(&rec.id) {
                    continue;
                }
                engine
                    .store
                    .restore_record(rec.id, rec.content, rec.version, &mut through_links);
            }
        }
        let mut last: Vec<StoredRecord> = overrides.drain().filter_map(|(_, r)| r).collect();
        last.sort_by(|a, b| a.id.cmp(&b.id));
        for rec in last {
            engine
                .store
                .restore_record(rec.id, rec.content, rec.version, &mut through_links);
        }
        engine.store.finish_indexes(&indexes, &through_links);
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
    /// by what the last one says, or removed. What the deltas say is
    /// gathered first, then merged in one pass over the state: a restart
    /// after a few small saves costs what they changed, not a re-sort of a
    /// million records.
    pub fn apply(&mut self, deltas: impl IntoIterator<Item = EngineDelta>) {
        let mut records: AHashMap<RecordId, Option<StoredRecord>> = AHashMap::new();
        let mut views: AHashMap<Arc<str>, Option<ViewMeta>> = AHashMap::new();
        let mut requery: AHashMap<Arc<str>, Option<RequeryState>> = AHashMap::new();
        for delta in deltas {
            for id in delta.deleted {
                records.insert(id, None);
            }
            for r in delta.records {
                records.insert(r.id.clone(), Some(r));
            }
            // A changed view's tier is what the delta says: a view that
            // left the re-query tier has no state there any more.
            for id in delta
                .views
                .iter()
                .map(|v| &v.id)
                .chain(&delta.removed_views)
            {
                views.insert(id.clone(), None);
                requery.insert(id.clone(), None);
            }
            for v in delta.views {
                views.insert(v.id.clone(), Some(v));
            }
            for r in delta.requery {
                requery.insert(r.id.clone(), Some(r));
            }
            self.table_floors = delta.table_floors;
            self.loaded = delta.loaded;
            self.indexes = delta.indexes;
            self.relation_tables = delta.relation_tables;
            self.functions = delta.functions;
        }
        merge(&mut self.records, records, |r| &r.id);
        merge(&mut self.views, views, |v| &v.id);
        merge(&mut self.requery, requery, |r| &r.id);
    }
}

/// Replaces or removes the items of `items` that `changes` names (`None`
/// removes), and appends the ones it names that were not there, in key
/// order (as a snapshot lists them), so that equal states save alike.
fn merge<T, K: std::hash::Hash + Eq + Ord>(
    items: &mut Vec<T>,
    mut changes: AHashMap<K, Option<T>>,
    key: impl Fn(&T) -> &K,
) {
    if changes.is_empty() {
        return;
    }
    let mut kept = Vec::with_capacity(items.len() + changes.len());
    for item in items.drain(..) {
        match changes.remove(key(&item)) {
            None => kept.push(item),
            Some(Some(new)) => kept.push(new),
            Some(None) => {}
        }
    }
    let mut new: Vec<T> = changes.into_values().flatten().collect();
    new.sort_by(|a, b| key(a).cmp(key(b)));
    kept.extend(new);
    *items = kept;
}
