//! The records SSP knows, with their versions, and the hash indexes that
//! route a changed record to the nodes that may care about it.

use std::sync::Arc;

use ahash::{AHashMap, AHashSet};

use super::keyset::KeySet;
use super::prefetch;
use super::value::{IndexKey, Key, Object, PathPart, RecordId, Shape, Str, TableName, Value};

pub type NodeId = u32;

/// One record: its latest content and its version (1 on first sight, +1 per
/// content change). The content is an object, shared on clone, so a batch
/// keeps the content a record had before it without copying.
#[derive(Clone, Debug)]
pub struct Record {
    pub content: Value,
    pub version: u64,
}

/// A hash index on one field path of one table.
///
/// `records` answers "which records have this value" when a node is created
/// (the initial result of `WHERE author = $uid` is one lookup, not a scan);
/// `nodes` answers "which nodes filter on this value" when a record changes.
///
/// The two maps share one hasher (see `Default`), and a key hashed for one
/// is looked up in the other with that hash ([`IndexKeys`]): replacing
/// either map alone would make those lookups miss. Clear them instead.
pub struct FieldIndex {
    pub records: prefetch::Map<IndexKey, KeySet>,
    pub nodes: prefetch::Map<IndexKey, Vec<NodeId>>,
}

/// Both maps hash alike, so that a batch hashes each key once for both
/// (see [`IndexKeys`]).
impl Default for FieldIndex {
    fn default() -> Self {
        let hasher = ahash::RandomState::new();
        FieldIndex {
            records: prefetch::Map::with_hasher(hasher.clone()),
            nodes: prefetch::Map::with_hasher(hasher),
        }
    }
}

impl FieldIndex {
    fn hash(&self, k: &IndexKey) -> u64 {
        self.records.hasher().hash_one(k)
    }
}

/// A changed record's keys in one index of its table, before and after the
/// change, with their hashes: computed once per batch for the prefetch and
/// for [`Table::reindex`].
pub struct IndexKeys {
    old: Option<(IndexKey, u64)>,
    new: Option<(IndexKey, u64)>,
    /// The indexed path went through a record link.
    through_link: bool,
}

impl IndexKeys {
    fn moved(&self) -> bool {
        self.old.as_ref().map(|k| &k.0) != self.new.as_ref().map(|k| &k.0)
    }
}

#[derive(Default)]
pub struct Table {
    pub records: prefetch::Map<Key, Record>,
    pub indexes: Vec<(Vec<PathPart>, FieldIndex)>,
    /// Nodes without a hashable equality term: evaluated on every change.
    pub scan_nodes: AHashSet<NodeId>,
    /// Nodes whose plan reads a path through record links (also in
    /// `scan_nodes` or an index): evaluated again when a record their
    /// records link to changes.
    pub link_nodes: AHashSet<NodeId>,
    /// Nodes whose plan compares with `time::now()` (also in `scan_nodes`
    /// or an index): evaluated again when the clock reaches a record's
    /// instant (see [`super::clock`]).
    pub clock_nodes: AHashSet<NodeId>,
    /// The shape of the last record stored: the next record with the same
    /// fields shares it.
    shape: Option<Shape>,
}

/// Strings up to this length are shared between records: a link like
/// `user:42` or a tag is stored once however many records hold it.
const SHARED_STRING_MAX: usize = 32;

fn share_string(strings: &mut prefetch::Set<Str>, s: &Str) -> Str {
    if let Some(x) = strings.get(s.as_str()) {
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
        Value::Set(items) => Value::Set(items.iter().map(|v| share_names(names, v)).collect()),
        other => other.clone(),
    }
}

pub fn is_id_path(path: &[PathPart]) -> bool {
    matches!(path, [PathPart::Field(f)] if f.as_ref() == "id")
}

/// The key record `id` with `content` has at `path` in a field index.
/// Records without a hashable value there are simply not in the index.
pub fn record_key(id: &RecordId, content: &Value, path: &[PathPart]) -> Option<IndexKey> {
    if is_id_path(path) {
        // The id is the record's key, not a stored field.
        return Some(IndexKey::Thing(id.clone()));
    }
    field_key(content, path)
}

/// As [`record_key`], for a path other than `id`.
fn field_key(content: &Value, path: &[PathPart]) -> Option<IndexKey> {
    match content.lookup(path) {
        Some(v) => v.index_key(),
        None => Some(IndexKey::None),
    }
}

fn build_index(records: &prefetch::Map<Key, Record>, path: &[PathPart]) -> FieldIndex {
    let mut index = FieldIndex::default();
    if !is_id_path(path) {
        for (key, rec) in records {
            if let Some(k) = field_key(&rec.content, path) {
                index.records.entry(k).or_default().insert(key.clone());
            }
        }
    }
    index
}

impl Table {
    /// Whether some node is registered under a value of one of the indexes.
    pub fn has_index_nodes(&self) -> bool {
        self.indexes
            .iter()
            .any(|(_, i)| i.nodes.values().any(|n| !n.is_empty()))
    }

    pub fn field_index(&mut self, path: &[PathPart]) -> &mut FieldIndex {
        let pos = match self.indexes.iter().position(|(p, _)| p == path) {
            Some(pos) => pos,
            None => {
                let index = build_index(&self.records, path);
                self.indexes.push((path.to_vec(), index));
                self.indexes.len() - 1
            }
        };
        &mut self.indexes[pos].1
    }

    /// The paths of the indexes some node is registered under, for the
    /// state file (see [`Store::build_indexes`]).
    pub fn used_index_paths(&self) -> impl Iterator<Item = &[PathPart]> {
        self.indexes
            .iter()
            .filter(|(_, i)| i.nodes.values().any(|n| !n.is_empty()))
            .map(|(p, _)| p.as_slice())
    }

    /// Record `id`'s keys in each index (in `indexes`' order), with its
    /// content `old` and `new`.
    pub fn index_keys(
        &self,
        id: &RecordId,
        old: Option<&Value>,
        new: Option<&Value>,
    ) -> Vec<IndexKeys> {
        self.indexes
            .iter()
            .map(|(path, index)| {
                super::value::take_link_followed();
                let hashed = |k: IndexKey| {
                    let h = index.hash(&k);
                    (k, h)
                };
                let old = old.and_then(|c| record_key(id, c, path)).map(hashed);
                let new = new.and_then(|c| record_key(id, c, path)).map(hashed);
                IndexKeys {
                    old,
                    new,
                    through_link: super::value::take_link_followed(),
                }
            })
            .collect()
    }

    /// Moves a record between index entries after its content changed, and
    /// collects the nodes registered under its old or new values. `keys`
    /// are the record's, from [`Table::index_keys`].
    pub fn reindex(
        &mut self,
        id: &RecordId,
        keys: &[IndexKeys],
        candidates: &mut Vec<NodeId>,
        through_links: &mut Vec<NodeId>,
    ) {
        use hashbrown::hash_map::RawEntryMut;
        let key = &id.key;
        for ((path, index), keys) in self.indexes.iter_mut().zip(keys) {
            if keys.through_link {
                // The indexed path goes through a record link, which
                // SurrealDB would follow: every node indexed on it reads
                // through that link.
                through_links.extend(index.nodes.values().flatten().copied());
            }
            let moved = keys.moved();
            if !is_id_path(path) && moved {
                if let Some((k, h)) = &keys.old
                    && let RawEntryMut::Occupied(mut e) =
                        index.records.raw_entry_mut().from_key_hashed_nocheck(*h, k)
                {
                    let set = e.get_mut();
                    set.remove(key);
                    if set.is_empty() {
                        e.remove();
                    }
                }
                if let Some((k, h)) = &keys.new {
                    match index.records.raw_entry_mut().from_key_hashed_nocheck(*h, k) {
                        RawEntryMut::Occupied(mut e) => {
                            e.get_mut().insert(key.clone());
                        }
                        RawEntryMut::Vacant(e) => {
                            let mut set = KeySet::new();
                            set.insert(key.clone());
                            e.insert_hashed_nocheck(*h, k.clone(), set);
                        }
                    }
                }
            }
            let inexact = |k: &Option<(IndexKey, u64)>| matches!(k, Some((IndexKey::Inexact, _)));
            if inexact(&keys.old) || inexact(&keys.new) {
                // A decimal may be `=` to any number: every view that looks
                // up a number on this path is a candidate.
                for (k, nodes) in &index.nodes {
                    if k.is_numeric() {
                        candidates.extend_from_slice(nodes);
                    }
                }
            }
            for (k, h) in keys.old.iter().chain(keys.new.iter().filter(|_| moved)) {
                if let Some((_, nodes)) = index.nodes.raw_entry().from_key_hashed_nocheck(*h, k) {
                    candidates.extend_from_slice(nodes);
                }
            }
        }
        candidates.extend(self.scan_nodes.iter().copied());
    }

    /// The nodes that follow links and may match record `id` with
    /// `content` (unchanged in this batch): those registered under its
    /// index keys, and those that scan.
    pub fn link_candidates(&self, id: &RecordId, content: &Value, out: &mut Vec<NodeId>) {
        self.candidates_among(&self.link_nodes, id, content, out);
    }

    /// The nodes of `clock_nodes` that may hold this record.
    pub fn clock_candidates(&self, id: &RecordId, content: &Value, out: &mut Vec<NodeId>) {
        self.candidates_among(&self.clock_nodes, id, content, out);
    }

    /// The nodes of `among` that may hold this record: those under its
    /// keys in the indexes, and those that scan.
    fn candidates_among(
        &self,
        among: &AHashSet<NodeId>,
        id: &RecordId,
        content: &Value,
        out: &mut Vec<NodeId>,
    ) {
        if among.is_empty() {
            return;
        }
        for (path, index) in &self.indexes {
            let Some(k) = record_key(id, content, path) else {
                continue;
            };
            if matches!(k, IndexKey::Inexact) {
                for (key, nodes) in &index.nodes {
                    if key.is_numeric() {
                        out.extend(nodes.iter().filter(|n| among.contains(n)));
                    }
                }
            }
            if let Some(nodes) = index.nodes.get(&k) {
                out.extend(nodes.iter().filter(|n| among.contains(n)));
            }
        }
        out.extend(self.scan_nodes.iter().filter(|n| among.contains(n)));
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
        let Some((_, idx)) = self.indexes.iter().find(|(p, _)| p == path) else {
            return Vec::new();
        };
        let mut keys: Vec<Key> = idx
            .records
            .get(key)
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        if key.is_numeric() && *key != IndexKey::Inexact {
            // Decimals that may be `=` to this number (the caller's filter
            // decides).
            if let Some(s) = idx.records.get(&IndexKey::Inexact) {
                keys.extend(s.iter());
            }
        }
        keys
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
    strings: prefetch::Set<Str>,
    strings_swept: usize,
}

impl Store {
    /// Starts the field indexes `wanted` (table, path), empty, so that
    /// [`Store::restore_record`] fills them as it stores the records. A
    /// restart knows which indexes its views will read (the state file
    /// lists them). Built one by one as the views came back, each was a
    /// second pass over a table's records, most of it waiting on memory:
    /// together a quarter of a million-record restart.
    pub fn start_indexes(&mut self, wanted: &[(TableName, Vec<PathPart>)]) {
        for (t, p) in wanted {
            let table = self.tables.entry(t.clone()).or_default();
            if !table.indexes.iter().any(|(q, _)| q == p) {
                table.indexes.push((p.clone(), FieldIndex::default()));
            }
        }
    }

    /// Stores a record of the state file, and adds it to its table's
    /// indexes while its content is at hand. An index whose value for it
    /// went through a record link is added to `through_links`.
    pub fn restore_record(
        &mut self,
        id: RecordId,
        content: Value,
        version: u64,
        through_links: &mut Vec<(TableName, Vec<PathPart>)>,
    ) {
        let content = match &content {
            Value::Object(o) => self.stored_content(&id, o, None),
            _ => content,
        };
        let table = self.tables.entry(id.table.clone()).or_default();
        for (path, index) in &mut table.indexes {
            if is_id_path(path) {
                continue;
            }
            let outer = super::value::take_link_followed();
            if let Some(k) = field_key(&content, path) {
                index.records.entry(k).or_default().insert(id.key.clone());
            }
            if super::value::take_link_followed() {
                let this = (id.table.clone(), path.clone());
                if !through_links.contains(&this) {
                    through_links.push(this);
                }
            }
            if outer {
                super::value::note_link_followed();
            }
        }
        table.records.insert(id.key, Record { content, version });
    }

    /// Ends what [`Store::start_indexes`] started: drops the indexes whose
    /// values went through a record link (built again as their view comes
    /// back, where that is noticed: see `value::take_link_followed`), and
    /// the tables it made that got no record.
    pub fn finish_indexes(
        &mut self,
        wanted: &[(TableName, Vec<PathPart>)],
        through_links: &[(TableName, Vec<PathPart>)],
    ) {
        for (t, p) in through_links {
            if let Some(table) = self.tables.get_mut(t) {
                table.indexes.retain(|(q, _)| q != p);
            }
        }
        for (t, _) in wanted {
            if self
                .tables
                .get(t)
                .is_some_and(|table| table.records.is_empty())
            {
                self.tables.remove(t);
            }
        }
    }

    /// The content to store for record `id`: `content` without its `id`
    /// field (the id is the key the record is stored under; see
    /// [`super::eval::Row`]), with the table's shared shape (field names)
    /// when it has the same fields, shared short strings, and no spare
    /// capacity. Records are most of SSP's memory: a record's own copy of
    /// each field name used to cost more than its values, and a name per
    /// field per record still cost 16 bytes a field before records shared
    /// shapes.
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
        if !self.tables.contains_key(&id.table) {
            self.tables.insert(id.table.clone(), Table::default());
        }
        let table = self.tables.get_mut(&id.table).expect("just ensured");
        let mut field_names: Vec<&str> = Vec::with_capacity(content.len());
        let mut values = Vec::with_capacity(content.len());
        for (k, v) in content.iter() {
            if k.as_ref() == "id" {
                continue;
            }
            let i = values.len();
            let value = match v {
                Value::Object(_) | Value::Array(_) | Value::Set(_) => {
                    share_names(&mut self.names, v)
                }
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
        Value::Object(Object::with_shape(shape, values))
    }

    /// Prefetches what [`Table::reindex`] reads for these changes (each a
    /// record id with its [`Table::index_keys`]), in three steps over all of
    /// them: the slots of the index entries and node lists under their old
    /// and new keys; then each entry's set and each list; then where the
    /// record's key is in each set. See [`super::prefetch`].
    pub fn prefetch_reindex<'a>(
        &self,
        changes: impl Iterator<Item = (&'a RecordId, &'a [IndexKeys])>,
    ) {
        let mut entries: Vec<(&FieldIndex, &IndexKey, u64, &Key)> = Vec::new();
        for (id, keys) in changes {
            let Some(table) = self.tables.get(&id.table) else {
                continue;
            };
            for ((path, index), keys) in table.indexes.iter().zip(keys) {
                let moves = !is_id_path(path) && keys.moved();
                for (k, h) in keys.old.iter().chain(&keys.new) {
                    prefetch::entry_hashed(index.nodes.raw_table(), *h);
                    if moves {
                        prefetch::entry_hashed(index.records.raw_table(), *h);
                        entries.push((index, k, *h, &id.key));
                    }
                }
            }
        }
        for (index, k, h, _) in &entries {
            if let Some((_, set)) = index.records.raw_entry().from_key_hashed_nocheck(*h, *k) {
                set.prefetch_outer();
            }
        }
        for (index, k, h, key) in &entries {
            if let Some((_, set)) = index.records.raw_entry().from_key_hashed_nocheck(*h, *k) {
                set.prefetch_inner(key);
            }
        }
    }

    /// Prefetches what storing `finals` reads, in three steps over the
    /// whole batch (see [`super::prefetch`]): each record's slot, and the
    /// slots of the shared copies of its new short strings; then the record's
    /// content and those copies' text; then the strings the record held,
    /// which storing compares and lets go.
    pub fn prefetch_store(&self, finals: &[(&RecordId, Option<&Object>)]) {
        let mut found: Vec<(&Table, u64, &Key)> = Vec::with_capacity(finals.len());
        let mut strings: Vec<u64> = Vec::new();
        for (id, content) in finals {
            let Some(table) = self.tables.get(&id.table) else {
                continue;
            };
            let h = table.records.hasher().hash_one(&id.key);
            prefetch::entry_hashed(table.records.raw_table(), h);
            found.push((table, h, &id.key));
            if let Some(content) = content {
                self.prefetch_shared_strings(content, |h| strings.push(h));
            }
        }
        let mut objects: Vec<&Object> = Vec::with_capacity(found.len());
        for (table, h, key) in &found {
            if let Some((_, rec)) = table.records.raw_entry().from_key_hashed_nocheck(*h, *key)
                && let Value::Object(o) = &rec.content
            {
                o.prefetch();
                objects.push(o);
            }
        }
        for h in strings {
            // SAFETY: the buckets are read while `self.strings`, borrowed,
            // cannot change.
            for bucket in unsafe { self.strings.raw_table().iter_hash(h) } {
                prefetch::line(unsafe { bucket.as_ref() }.0.as_ptr());
            }
        }
        for o in objects {
            for v in o.values() {
                if let Value::String(s) = v {
                    prefetch::line(s.as_ptr());
                }
            }
        }
    }

    /// Asks for what [`Store::restore_record`] of this record will read:
    /// its slot in its table's map, and the slots of the shared copies of
    /// its short strings.
    pub fn prefetch_restore(&self, id: &RecordId, content: &Value) {
        if let Some(table) = self.tables.get(&id.table) {
            prefetch::entry(&table.records, &id.key);
        }
        if let Value::Object(o) = content {
            self.prefetch_shared_strings(o, |_| {});
        }
    }

    /// Asks for the slots where the shared copies of `content`'s short
    /// strings are (or will be); `hashed` gets each one's hash.
    fn prefetch_shared_strings(&self, content: &Object, mut hashed: impl FnMut(u64)) {
        for v in content.values() {
            if let Value::String(s) = v
                && s.len() <= SHARED_STRING_MAX
            {
                let h = self.strings.hasher().hash_one(s.as_str());
                prefetch::entry_hashed(self.strings.raw_table(), h);
                hashed(h);
            }
        }
    }

    /// Forgets names no record holds any more, so that a stream of ever new
    /// field names cannot grow the set forever.
    /// As [`Store::sweep_names`], for shared string values.
    fn sweep_strings(&mut self) {
        if self.strings.len() > 4096 && self.strings.len() > 2 * self.strings_swept {
            self.strings
                .retain(|s| Str::strong_count(s).is_none_or(|n| n > 1));
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
    use crate::engine::eval::Row;
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
    fn a_stored_record_is_its_content_without_its_id_and_shares_names_and_strings() {
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
            let without_id = Object::from_pairs(
                content
                    .iter()
                    .filter(|(k, _)| k.as_ref() != "id")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            let stored = store.stored_content(&id, &content, None);
            assert_eq!(stored, Value::Object(without_id.clone()));
            // As a row, the record has its own id, whatever `id` it was sent.
            let mut whole = without_id;
            whole.insert("id".into(), Value::thing(id.clone()));
            assert_eq!(Row::new(&id, &stored).to_value(), Value::Object(whole));
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
            (Value::String(x), Value::String(y)) => assert!(Str::ptr_eq(x, y), "one string"),
            _ => panic!("strings"),
        }
    }
}
