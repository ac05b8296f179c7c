//! Which tables the records of each table link to.
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

use ahash::AHashMap;

use super::value::{TableName, Value};

#[derive(Default)]
pub struct Links {
    /// `None` while no re-query view needs the counts.
    counts: Option<AHashMap<TableName, AHashMap<TableName, u32>>>,
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
        for (table, content) in records {
            self.change(table, None, Some(content));
        }
    }

    /// Stops counting (no re-query view is left).
    pub fn stop(&mut self) {
        self.counts = None;
    }

    /// A record of `table` changed from `old` to `new`.
    pub fn change(&mut self, table: &TableName, old: Option<&Value>, new: Option<&Value>) {
        let Some(counts) = self.counts.as_mut() else {
            return;
        };
        let mut delta: AHashMap<TableName, i64> = AHashMap::new();
        for (v, sign) in old.into_iter().map(|v| (v, -1)).chain(new.map(|v| (v, 1))) {
            for_each_link(v, &mut |t| *delta.entry(t.clone()).or_default() += sign);
        }
        if delta.values().all(|d| *d == 0) {
            return;
        }
        let per = counts.entry(table.clone()).or_default();
        for (target, d) in delta {
            let c = per.entry(target.clone()).or_default();
            *c = (*c as i64 + d).max(0) as u32;
            if *c == 0 {
                per.remove(&target);
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

/// Calls `f` with the table of every record id in `v`, at any depth
/// (iteratively: values nest as deep as SurrealDB lets them).
fn for_each_link(v: &Value, f: &mut impl FnMut(&TableName)) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Thing(r) => f(&r.table),
            Value::Array(items) | Value::Set(items) => stack.extend(items.iter()),
            Value::Object(o) => stack.extend(o.values().iter()),
            _ => {}
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
        let p = TableName::from("post");
        let u = TableName::from("user");
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
