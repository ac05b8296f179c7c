//! Record links: which tables the records of each table link to, which
//! records link to each record, and fetching through them.
//!
//! An incremental view whose `WHERE` or `ORDER BY` reads a path through a
//! link (`author.name = 'ann'`) is evaluated with a [`Fetcher`] that reads
//! the linked record from the store, when the engine holds that record's
//! table in full (it is *loaded*); when the linked record changes, the
//! records that link to it ([`Links::linking_to`]) are evaluated again.
//!
//! A re-query view that follows a record link (`WHERE author.name = 'ann'`)
//! reads the linked table although its text never names it, and it must be
//! re-run when that table changes, even while no row of its current result
//! shows such a link (the post that would enter is not in the result yet).
//! So the engine counts, per table, the record ids its records hold, by the
//! table they point to; a re-query view depends on the closure of its tables
//! over these links.
//!
//! Kept only while a re-query view exists: the walk over each changed
//! record's values is wasted work otherwise.

use std::collections::BTreeSet;
use std::sync::Arc;

use ahash::{AHashMap, AHashSet};

use super::eval::{self, Fetched};
use super::store::Store;
use super::value::{RecordId, TableName, Value};

#[derive(Default)]
pub struct Links {
    /// `None` while no view needs the counts.
    counts: Option<AHashMap<TableName, AHashMap<TableName, u32>>>,
    /// Per record id, the records that hold it (once per record, however
    /// often). `None` while no incremental view follows links.
    back: Option<AHashMap<RecordId, Vec<RecordId>>>,
}

impl Links {
    pub fn is_tracking(&self) -> bool {
        self.counts.is_some()
    }

    /// Starts counting, from every record the store holds now.
    pub fn start<'a>(&mut self, records: impl Iterator<Item = (&'a TableName, &'a Value)>) {
        if self.counts.is_some() {
            return;
        }
        self.counts = Some(AHashMap::new());
        let none = AHashSet::new();
        for (table, content) in records {
            self.count(table, &none, &link_targets(content));
        }
    }

    /// Stops counting (no view needs the counts).
    pub fn stop(&mut self) {
        self.counts = None;
    }

    /// Starts keeping who links to whom, from every record the store holds
    /// now.
    pub fn start_back<'a>(&mut self, records: impl Iterator<Item = (RecordId, &'a Value)>) {
        if self.back.is_some() {
            return;
        }
        let mut back: AHashMap<RecordId, Vec<RecordId>> = AHashMap::new();
        for (id, content) in records {
            for target in link_targets(content) {
                back.entry(target).or_default().push(id.clone());
            }
        }
        self.back = Some(back);
    }

    /// Stops keeping backlinks (no incremental view follows links).
    pub fn stop_back(&mut self) {
        self.back = None;
    }

    /// The records that hold a link to `id`.
    pub fn linking_to(&self, id: &RecordId) -> &[RecordId] {
        self.back
            .as_ref()
            .and_then(|b| b.get(id))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Record `id` changed from `old` to `new`. Its links are read once,
    /// for both the backlinks and the per-table counts.
    pub fn change(&mut self, id: &RecordId, old: Option<&Value>, new: Option<&Value>) {
        if self.back.is_none() && self.counts.is_none() {
            return;
        }
        let before = old.map(link_targets).unwrap_or_default();
        let after = new.map(link_targets).unwrap_or_default();
        if let Some(back) = self.back.as_mut() {
            for gone in before.difference(&after) {
                if let Some(list) = back.get_mut(gone) {
                    if let Some(pos) = list.iter().position(|r| r == id) {
                        list.swap_remove(pos);
                    }
                    if list.is_empty() {
                        back.remove(gone);
                    }
                }
            }
            for came in after.difference(&before) {
                back.entry(came.clone()).or_default().push(id.clone());
            }
        }
        self.count(&id.table, &before, &after);
    }

    /// The per-table counts' part of [`Links::change`]: a record counts
    /// once per record it links to.
    fn count(
        &mut self,
        table: &TableName,
        before: &AHashSet<RecordId>,
        after: &AHashSet<RecordId>,
    ) {
        let Some(counts) = self.counts.as_mut() else {
            return;
        };
        let mut delta: AHashMap<&TableName, i64> = AHashMap::new();
        for r in before {
            *delta.entry(&r.table).or_default() -= 1;
        }
        for r in after {
            *delta.entry(&r.table).or_default() += 1;
        }
        if delta.values().all(|d| *d == 0) {
            return;
        }
        let per = counts.entry(table.clone()).or_default();
        for (target, d) in delta {
            let c = per.entry(target.clone()).or_default();
            *c = (*c as i64 + d).max(0) as u32;
            if *c == 0 {
                per.remove(target);
            }
        }
    }

    /// `start` and every table reachable from it over record links.
    pub fn closure<'a>(&self, start: impl Iterator<Item = &'a str>) -> BTreeSet<Arc<str>> {
        let mut seen: BTreeSet<Arc<str>> = BTreeSet::new();
        let mut stack: Vec<Arc<str>> = start.map(Arc::from).collect();
        while let Some(t) = stack.pop() {
            if !seen.insert(t.clone()) {
                continue;
            }
            if let Some(per) = self.counts.as_ref().and_then(|c| c.get(t.as_ref())) {
                stack.extend(per.keys().map(|k| Arc::<str>::from(k.as_str())));
            }
        }
        seen
    }
}

/// The record ids `v` holds, at any depth, once each.
fn link_targets(v: &Value) -> AHashSet<RecordId> {
    let mut out = AHashSet::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Thing(r) => {
                out.insert((**r).clone());
            }
            Value::Array(items) | Value::Set(items) => stack.extend(items.iter()),
            Value::Object(o) => stack.extend(o.values().iter()),
            _ => {}
        }
    }
    out
}

/// Reads linked records for [`eval::Row`]s from the store, for tables the
/// engine holds in full; with `before`, as they were before the batch (the
/// old contents of the records it changed), so that a node can tell what a
/// record matched before and after.
pub struct Fetcher<'a> {
    pub store: &'a Store,
    pub loaded: &'a AHashSet<TableName>,
    pub before: Option<&'a AHashMap<RecordId, Option<Value>>>,
    /// The instant `time::now()` reads (see [`super::clock`]).
    pub clock: chrono::DateTime<chrono::Utc>,
}

thread_local! {
    static UNKNOWN_TABLES: std::cell::RefCell<Vec<TableName>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The tables a [`Fetcher`] was asked for and does not hold, on this thread
/// since the last call: what a registration must load first.
pub fn take_unknown_tables() -> Vec<TableName> {
    let mut tables = UNKNOWN_TABLES.with(|u| std::mem::take(&mut *u.borrow_mut()));
    tables.sort();
    tables.dedup();
    tables
}

/// Notes that a record of `table`, which the engine does not hold in full,
/// was needed (see [`take_unknown_tables`]).
pub fn note_unknown_table(table: &TableName) {
    UNKNOWN_TABLES.with(|u| {
        let mut u = u.borrow_mut();
        if !u.contains(table) {
            u.push(table.clone());
        }
    });
}

impl eval::Links for Fetcher<'_> {
    fn clock(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        Some(self.clock)
    }

    fn fetch(&self, id: &RecordId) -> Fetched<'_> {
        if !self.loaded.contains(&id.table) {
            note_unknown_table(&id.table);
            return Fetched::Unknown;
        }
        if let Some(old) = self.before.and_then(|b| b.get(id)) {
            return match old {
                Some(content) => Fetched::Record(content),
                None => Fetched::Missing,
            };
        }
        match self.store.get(id) {
            Some(r) => Fetched::Record(&r.content),
            None => Fetched::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::{Key, Object, RecordId};

    fn post(author: Option<&str>) -> Value {
        let mut pairs = vec![(Arc::<str>::from("title"), Value::str("t"))];
        if let Some(a) = author {
            pairs.push((
                Arc::from("author"),
                Value::thing(RecordId::new(a, Key::Int(1))),
            ));
        }
        Value::Object(Object::from_pairs(pairs))
    }

    #[test]
    fn the_closure_follows_links_while_a_record_holds_one() {
        let mut links = Links::default();
        let p = RecordId::new("post", Key::Int(1));
        let u = RecordId::new("user", Key::Int(1));
        links.start(std::iter::empty());
        links.change(&p, None, Some(&post(Some("user"))));
        links.change(&u, None, Some(&post(Some("org"))));
        let c: Vec<String> = links
            .closure(["post"].into_iter())
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(c, ["org", "post", "user"]);
        // The one link from post to user goes away.
        links.change(&p, Some(&post(Some("user"))), Some(&post(None)));
        let c: Vec<String> = links
            .closure(["post"].into_iter())
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(c, ["post"]);
    }
}
