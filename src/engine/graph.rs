//! Graph traversals over relation tables: which tables are `TYPE
//! RELATION`, what the data must not hold for a lowered traversal to stay
//! exact, and the edges SurrealDB deletes with a record.
//!
//! A traversal (`$parent<-wrote<-user`) is lowered into a select over the
//! relation table before it is planned (see
//! [`super::plan::resolve::lower_graph`]): SurrealDB answers it from its
//! graph index, which holds exactly the edges of such a table, by their
//! `in` and `out` fields (measured on 3.3.5: they cannot change, and a
//! record of a `TYPE RELATION` table cannot be made without them). Two
//! things the lowered select does not see are checked on the data:
//!
//! * a record with record ids in `in` and `out` in a table of any other
//!   type may be an edge (`RELATE` into a table of `TYPE ANY`) or not
//!   (`CREATE` with those fields): SSP cannot tell, so such a record where
//!   a traversal could reach it sends the view to the re-query tier;
//! * deleting a record deletes its edges in the same transaction: the
//!   engine deletes the edges of relation tables it holds with it, so that
//!   a change that names only the record (`/ingest`) leaves what the
//!   database holds.

use super::*;

impl Engine {
    /// The tables SurrealDB's schema defines `TYPE RELATION` (the caller
    /// reads them with `INFO FOR DB` before a registration that traverses).
    pub fn set_relation_tables(&mut self, tables: BTreeSet<Arc<str>>) {
        self.relation_tables = tables;
    }

    pub fn relation_tables(&self) -> &BTreeSet<Arc<str>> {
        &self.relation_tables
    }

    /// User function definitions (`INFO FOR DB`) that queries may inline,
    /// added to those already known (the caller reads the ones a view's
    /// text reaches before it registers). A view keeps the plan it was
    /// registered with; a later view, and every view after a restart, is
    /// planned with the definitions given last.
    pub fn set_functions(&mut self, functions: super::parser::Definitions) {
        self.parsed.set_functions(functions);
    }

    /// Refuses a plan whose traversals reach a table that holds a record
    /// shaped like an edge (see the module documentation).
    pub(super) fn check_graph(&mut self, plan: &Plan) -> Result<(), PlanError> {
        let mut tables = Vec::new();
        plan.no_edges_in(&mut tables);
        for t in tables {
            if self.holds_edge_shaped(&t) {
                return Err(PlanError::Unsupported(format!(
                    "a traversal reaches `{t}`, which holds records with record ids in both `in` \
                     and `out`: SSP cannot tell whether they are edges"
                )));
            }
        }
        Ok(())
    }

    fn holds_edge_shaped(&mut self, table: &str) -> bool {
        if let Some(&known) = self.edge_shaped.get(table) {
            return known;
        }
        let name = value::TableName::from(table);
        let found = self.store.tables.get(&name).is_some_and(|t| {
            t.records
                .values()
                .any(|r| children::is_edge_shaped(&r.content))
        });
        self.edge_shaped.insert(name, found);
        found
    }

    /// Whether a batch writing `content` into `table` must call
    /// [`Engine::note_edge_shaped`].
    pub(super) fn watches_edge_shape(&self, table: &value::TableName, content: &Value) -> bool {
        self.edge_shaped.get(table) == Some(&false) && children::is_edge_shaped(content)
    }

    /// A batch wrote `id`, shaped like an edge, in a table a traversal must
    /// not see edges in: the views of those traversals go to the re-query
    /// tier.
    pub(super) fn note_edge_shaped(&mut self, id: &RecordId) {
        self.edge_shaped.insert(id.table.clone(), true);
        let moved: Vec<Arc<str>> = self
            .views
            .iter()
            .filter(|(_, v)| {
                let mut tables = Vec::new();
                v.plan.no_edges_in(&mut tables);
                tables.iter().any(|t| **t == *id.table)
            })
            .map(|(id, _)| id.clone())
            .collect();
        self.link_views.extend(moved);
    }

    /// A loaded table's records came in whole: what was known of its
    /// shape is not.
    pub(super) fn forget_edge_shapes(&mut self, tables: &[Arc<str>]) {
        for t in tables {
            self.edge_shaped.remove(t.as_ref());
        }
    }

    /// `changes` with, after each delete of a record that existed, the
    /// deletes of the edges (of relation tables the engine holds) whose
    /// `in` or `out` it is at that point, as SurrealDB deletes them with it
    /// (measured on 3.3.5: an edge made after the delete stays, and deleting
    /// a record that does not exist deletes nothing). A record of a table
    /// the engine does not hold is taken to have existed, unless the applier
    /// found its edges still in the database. `None` when
    /// nothing cascades. An edge the applier found still in the database
    /// ([`Engine::set_kept_edges`]) stays.
    pub(super) fn cascade(&self, changes: &[Change]) -> Option<Vec<Change>> {
        if self.relation_tables.is_empty() || changes.iter().all(|c| c.content.is_some()) {
            return None;
        }
        // What the batch wrote so far, over the store.
        let mut now: AHashMap<RecordId, Option<Object>> = AHashMap::new();
        let mut out: Vec<Change> = Vec::with_capacity(changes.len());
        let mut more = false;
        for c in changes {
            let mut todo = vec![c.clone()];
            while let Some(c) = todo.pop() {
                let existed = match now.get(&c.id) {
                    Some(v) => v.is_some(),
                    None => self.store.get(&c.id).is_some() || !self.loaded.contains(&c.id.table),
                };
                now.insert(c.id.clone(), c.content.clone());
                let deleted = c.content.is_none() && existed;
                let target = c.id.clone();
                out.push(c);
                if !deleted {
                    continue;
                }
                for e in self.edges_at(&target, &now) {
                    if self.kept_edges.contains(&e) {
                        continue;
                    }
                    more = true;
                    // Deleted before it is looked at again (an edge of an edge).
                    now.insert(e.clone(), Some(Object::default()));
                    todo.push(Change {
                        id: e,
                        content: None,
                    });
                }
            }
        }
        more.then_some(out)
    }

    /// The edges the cascade of `changes` would delete because a record
    /// they end at, of a table SSP does not hold, is deleted: whether that
    /// record existed (and so took its edges with it) only the database
    /// can tell. The applier reads these edges there first (see
    /// [`Engine::set_kept_edges`]).
    pub fn unsure_cascades(&self, changes: &[Change]) -> Vec<RecordId> {
        if self.relation_tables.is_empty() {
            return Vec::new();
        }
        let now = AHashMap::new();
        let mut out = Vec::new();
        for c in changes {
            if c.content.is_none()
                && !self.loaded.contains(&c.id.table)
                && self.store.get(&c.id).is_none()
            {
                out.extend(self.edges_at(&c.id, &now));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The edges of [`Engine::unsure_cascades`] that the database still
    /// holds: the batches until the next call do not delete them with a
    /// record they end at. The database was read after those batches were
    /// written, so an edge it holds was not deleted by them.
    pub fn set_kept_edges(&mut self, edges: AHashSet<RecordId>) {
        self.kept_edges = edges;
    }

    /// The edges whose `in` or `out` is `target`, with the batch's writes
    /// so far (`now`) over the store.
    fn edges_at(
        &self,
        target: &RecordId,
        now: &AHashMap<RecordId, Option<Object>>,
    ) -> Vec<RecordId> {
        let ends_at = |o: &Object| {
            ["in", "out"]
                .iter()
                .any(|f| matches!(o.get(f), Some(Value::Thing(r)) if **r == *target))
        };
        let mut out: Vec<RecordId> = now
            .iter()
            .filter(|(id, c)| {
                self.relation_tables.contains(id.table.as_str()) && c.as_ref().is_some_and(&ends_at)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let ends = [
            vec![value::PathPart::Field("in".into())],
            vec![value::PathPart::Field("out".into())],
        ];
        for t in &self.relation_tables {
            let name = table_name(t);
            let Some(table) = self.store.tables.get(&name) else {
                continue;
            };
            let indexed = ends
                .iter()
                .all(|p| table.indexes.iter().any(|(q, _)| q == p));
            // Both ends indexed (a traversal's filter made one): look the
            // record up, under the key the index gives its value, rather
            // than read every edge.
            let keys: Vec<Key> = match Value::thing(target.clone()).index_key() {
                Some(k) if indexed => ends.iter().flat_map(|p| table.lookup(t, p, &k)).collect(),
                _ => table.records.keys().cloned().collect(),
            };
            for key in keys {
                let id = RecordId::new(name.clone(), key);
                if now.contains_key(&id) || out.contains(&id) {
                    continue;
                }
                if let Some(Value::Object(o)) = table.records.get(&id.key).map(|r| &r.content)
                    && ends_at(o)
                {
                    out.push(id);
                }
            }
        }
        out.sort();
        out
    }
}

fn table_name(t: &Arc<str>) -> value::TableName {
    value::TableName::from(t.as_ref())
}
