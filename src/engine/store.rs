//! The records SSP knows, with their versions, and the hash indexes that
//! route a changed record to the nodes that may care about it.

use std::sync::Arc;

use ahash::{AHashMap, AHashSet};

use super::value::{IndexKey, Key, PathPart, RecordId, Value};

pub type NodeId = u32;

/// One record: its latest content and its version (1 on first sight, +1 per
/// content change).
#[derive(Clone, Debug)]
pub struct Record {
    pub content: Arc<Value>,
    pub version: u64,
}

/// A hash index on one field path of one table.
///
/// `records` answers "which records have this value" when a node is created
/// (the initial result of `WHERE author = $uid` is one lookup, not a scan);
/// `nodes` answers "which nodes filter on this value" when a record changes.
#[derive(Default)]
pub struct FieldIndex {
    pub records: AHashMap<IndexKey, AHashSet<Key>>,
    pub nodes: AHashMap<IndexKey, Vec<NodeId>>,
}

#[derive(Default)]
pub struct Table {
    pub records: AHashMap<Key, Record>,
    pub indexes: Vec<(Vec<PathPart>, FieldIndex)>,
    /// Nodes without a hashable equality term: evaluated on every change.
    pub scan_nodes: AHashSet<NodeId>,
}

pub fn is_id_path(path: &[PathPart]) -> bool {
    matches!(path, [PathPart::Field(f)] if f.as_ref() == "id")
}

/// The key a record has at `path` in a field index. Records without a
/// hashable value there are simply not in the index.
pub fn record_key(content: &Value, path: &[PathPart]) -> Option<IndexKey> {
    match content.lookup(path) {
        Some(v) => v.index_key(),
        None => Some(IndexKey::None),
    }
}

impl Table {
    pub fn field_index(&mut self, path: &[PathPart]) -> &mut FieldIndex {
        let pos = match self.indexes.iter().position(|(p, _)| p == path) {
            Some(pos) => pos,
            None => {
                let mut index = FieldIndex::default();
                if !is_id_path(path) {
                    for (key, rec) in &self.records {
                        if let Some(k) = record_key(&rec.content, path) {
                            index.records.entry(k).or_default().insert(key.clone());
                        }
                    }
                }
                self.indexes.push((path.to_vec(), index));
                self.indexes.len() - 1
            }
        };
        &mut self.indexes[pos].1
    }

    /// Moves a record between index entries after its content changed, and
    /// collects the nodes registered under its old or new values.
    pub fn reindex(
        &mut self,
        key: &Key,
        old: Option<&Value>,
        new: Option<&Value>,
        candidates: &mut Vec<NodeId>,
    ) {
        for (path, index) in &mut self.indexes {
            let old_k = old.and_then(|c| record_key(c, path));
            let new_k = new.and_then(|c| record_key(c, path));
            if !is_id_path(path) && old_k != new_k {
                if let Some(k) = &old_k
                    && let Some(set) = index.records.get_mut(k)
                {
                    set.remove(key);
                    if set.is_empty() {
                        index.records.remove(k);
                    }
                }
                if let Some(k) = &new_k {
                    index
                        .records
                        .entry(k.clone())
                        .or_default()
                        .insert(key.clone());
                }
            }
            if let Some(k) = &old_k
                && let Some(nodes) = index.nodes.get(k)
            {
                candidates.extend_from_slice(nodes);
            }
            if new_k != old_k
                && let Some(k) = &new_k
                && let Some(nodes) = index.nodes.get(k)
            {
                candidates.extend_from_slice(nodes);
            }
        }
        candidates.extend(self.scan_nodes.iter().copied());
    }

    /// Records whose value at `path` hashes to `key`.
    pub fn lookup(&self, table: &str, path: &[PathPart], key: &IndexKey) -> Vec<Key> {
        if is_id_path(path) {
            return match key {
                IndexKey::Thing(rid) if rid.table.as_ref() == table => {
                    if self.records.contains_key(&rid.key) {
                        vec![rid.key.clone()]
                    } else {
                        Vec::new()
                    }
                }
                _ => Vec::new(),
            };
        }
        self.indexes
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, idx)| idx.records.get(key))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[derive(Default)]
pub struct Store {
    pub tables: AHashMap<Arc<str>, Table>,
}

impl Store {
    pub fn table_mut(&mut self, name: &Arc<str>) -> &mut Table {
        self.tables.entry(name.clone()).or_default()
    }

    pub fn get(&self, id: &RecordId) -> Option<&Record> {
        self.tables.get(&id.table)?.records.get(&id.key)
    }

    pub fn len(&self) -> usize {
        self.tables.values().map(|t| t.records.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
