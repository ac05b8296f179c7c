//! The engine's state as the state file holds it: export and restore.

use super::*;

impl Engine {
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
            table_floors: self
                .table_floors
                .iter()
                .map(|(t, v)| (t.to_string(), *v))
                .collect(),
            loaded: {
                let mut loaded: Vec<String> = self.loaded.iter().map(|t| t.to_string()).collect();
                loaded.sort();
                loaded
            },
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
                None => {
                    engine.register(v)?;
                }
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
            Some(r) => r.version = r.version.max(version),
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
        self.loaded.remove(table);
        let mut floor = self.table_floors.get(&name).copied().unwrap_or(0);
        for (k, r) in &t.records {
            floor = floor.max(r.version);
            let id = RecordId::new(name.clone(), k.clone());
            self.links.change(&id, Some(&r.content), None);
        }
        let dropped = t.records.len();
        if dropped > 0 {
            self.table_floors.insert(name, floor);
        }
        dropped
    }
}
