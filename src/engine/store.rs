//! The records SSP knows, with their versions, and the hash indexes that
//! route a changed record to the nodes that may care about it.

use std::sync::Arc;

use ahash::{AHashMap, AHashSet};

use super::smallset::SmallSet;
use super::value::{IndexKey, Key, Object, PathPart, RecordId, Shape, TableName, Value};

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
    pub records: AHashMap<IndexKey, SmallSet<Key>>,
    pub nodes: AHashMap<IndexKey, Vec<NodeId>>,
}

#[derive(Default)]
pub struct Table {
    pub records: AHashMap<Key, Record>,
    pub indexes: Vec<(Vec<PathPart>, FieldIndex)>,
    /// Nodes without a hashable equality term: evaluated on every change.
    pub scan_nodes: AHashSet<NodeId>,
    /// The shape of the last record stored: the next record with the same
    /// fields shares it.
    shape: Option<Shape>,
}

/// Strings up to this length are shared between records: a link like
/// `user:42` or a tag is stored once however many records hold it.
const SHARED_STRING_MAX: usize = 32;

fn share_string(strings: &mut AHashSet<Arc<str>>, s: &Arc<str>) -> Arc<str> {
    if let Some(x) = strings.get(s.as_ref()) {
        return x.clone();
    }
    strings.insert(s.clone());
    s.clone()
}

fn intern(names: &mut AHashSet<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(n) = names.get(name) {
        return n.clone();
    }
    let n: Arc<str> = name.into();
    names.insert(n.clone());
    n
}

/// A copy of a nested value whose object field names are the shared ones.
fn share_names(names: &mut AHashSet<Arc<str>>, v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let shape: Shape = Arc::new(o.names().iter().map(|k| intern(names, k)).collect());
            let values = o.values().iter().map(|v| share_names(names, v)).collect();
            Value::Object(Object::with_shape(shape, values))
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| share_names(names, v)).collect()),
        other => other.clone(),
    }
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
                IndexKey::Thing(rid) if rid.table.as_str() == table => {
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
    pub tables: AHashMap<TableName, Table>,
    /// Field names, shared by every stored record that has them.
    names: AHashSet<Arc<str>>,
    /// `names.len()` after the last sweep of names no record uses.
    names_swept: usize,
    /// Short string values, shared by every stored record that has them.
    strings: AHashSet<Arc<str>>,
    strings_swept: usize,
}

impl Store {
    /// The content to store for record `id`: `content` with the `id` field
    /// set to the record id, the table's shared shape (field names) when it
    /// has the same fields, shared short strings, and no spare capacity.
    /// Records are most of SSP's memory: a record's own copy of each field
    /// name (and the doubled capacity of a vector that grew by one for `id`)
    /// used to cost more than its values, and a name per field per record
    /// still cost 16 bytes a field before records shared shapes.
    ///
    /// `old` is the record's current content: a string field that did not
    /// change keeps the old record's allocation without a lookup.
    pub fn stored_content(
        &mut self,
        id: &RecordId,
        content: &Object,
        old: Option<&Value>,
    ) -> Value {
        let (old_names, old_values): (&[Arc<str>], &[Value]) = match old {
            Some(Value::Object(o)) => (o.names(), o.values()),
            _ => (&[], &[]),
        };
        let table_name = match self.tables.get_key_value(&id.table) {
            Some((name, _)) => name.clone(),
            None => {
                self.tables.insert(id.table.clone(), Table::default());
                id.table.clone()
            }
        };
        let table = self.tables.get_mut(&id.table).expect("just ensured");
        let mut id_value = Some(Value::Thing(RecordId {
            table: table_name,
            key: id.key.clone(),
        }));
        let mut field_names: Vec<&str> = Vec::with_capacity(content.len() + 1);
        let mut values = Vec::with_capacity(content.len() + 1);
        for (k, v) in content.iter() {
            if k.as_ref() >= "id"
                && let Some(idv) = id_value.take()
            {
                field_names.push("id");
                values.push(idv);
            }
            if k.as_ref() == "id" {
                continue;
            }
            let i = values.len();
            let value = match v {
                Value::Object(_) | Value::Array(_) => share_names(&mut self.names, v),
                // Short strings repeat across records (links, tags, states).
                Value::String(s) if s.len() <= SHARED_STRING_MAX => {
                    match (old_names.get(i), old_values.get(i)) {
                        (Some(n), Some(Value::String(o))) if **n == **k && o == s => {
                            Value::String(o.clone())
                        }
                        _ => Value::String(share_string(&mut self.strings, s)),
                    }
                }
                _ => v.clone(),
            };
            field_names.push(k);
            values.push(value);
        }
        if let Some(idv) = id_value {
            field_names.push("id");
            values.push(idv);
        }
        let same = |shape: &Shape| {
            shape.len() == field_names.len()
                && shape
                    .iter()
                    .zip(&field_names)
                    .all(|(a, b)| a.as_ref() == *b)
        };
        let shape = match &table.shape {
            Some(shape) if same(shape) => shape.clone(),
            _ => {
                let names = &mut self.names;
                let shape: Shape = Arc::new(field_names.iter().map(|n| intern(names, n)).collect());
                table.shape = Some(shape.clone());
                shape
            }
        };
        self.sweep_names();
        self.sweep_strings();
        Value::Object(Object::with_shape(shape, values.into_boxed_slice()))
    }

    /// Forgets names no record holds any more, so that a stream of ever new
    /// field names cannot grow the set forever.
    /// As [`Store::sweep_names`], for shared string values.
    fn sweep_strings(&mut self) {
        if self.strings.len() > 4096 && self.strings.len() > 2 * self.strings_swept {
            self.strings.retain(|s| Arc::strong_count(s) > 1);
            self.strings_swept = self.strings.len();
        }
    }

    fn sweep_names(&mut self) {
        if self.names.len() > 1024 && self.names.len() > 2 * self.names_swept {
            // A name held only by the set: no shape or object uses it.
            self.names.retain(|n| Arc::strong_count(n) > 1);
            self.names_swept = self.names.len();
        }
    }

    pub fn table_mut(&mut self, name: &TableName) -> &mut Table {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::Number;

    fn obj(pairs: Vec<(&str, Value)>) -> Object {
        Object::from_pairs(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn object(v: &Value) -> &Object {
        match v {
            Value::Object(o) => o,
            _ => panic!("an object"),
        }
    }

    #[test]
    fn a_stored_record_is_its_content_with_its_id_and_shares_names_and_strings() {
        let mut store = Store::default();
        let int = |i| Value::Number(Number::Int(i));
        let nested = Value::Object(obj(vec![("k", int(1))]));
        for (id, content) in [
            // `id` sorts in the middle, first, last, or is missing.
            (
                "t:1",
                obj(vec![
                    ("b", Value::str("x")),
                    ("id", Value::str("t:9")),
                    ("a", nested.clone()),
                ]),
            ),
            ("t:2", obj(vec![("z", Value::str("x")), ("a", int(2))])),
            ("t:3", obj(vec![("j", Value::str("x"))])),
            ("t:4", obj(vec![])),
        ] {
            let id = RecordId::parse(id).unwrap();
            let mut expected = content.clone();
            expected.insert("id".into(), Value::Thing(id.clone()));
            let stored = store.stored_content(&id, &content, None);
            assert_eq!(stored, Value::Object(expected));
        }
        let a = store.stored_content(
            &RecordId::parse("t:5").unwrap(),
            &obj(vec![("b", Value::str("x"))]),
            None,
        );
        let b = store.stored_content(
            &RecordId::parse("t:6").unwrap(),
            &obj(vec![("b", Value::str("x"))]),
            None,
        );
        let (fa, fb) = (object(&a), object(&b));
        assert!(Arc::ptr_eq(fa.shape(), fb.shape()), "one shape");
        assert!(
            Arc::ptr_eq(&fa.names()[0], &fb.names()[0]),
            "one field name"
        );
        match (&fa.values()[0], &fb.values()[0]) {
            (Value::String(x), Value::String(y)) => assert!(Arc::ptr_eq(x, y), "one string"),
            _ => panic!("strings"),
        }
    }
}
