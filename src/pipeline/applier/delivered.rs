//! What the change worker delivered lately, so that a late `/ingest` of an
//! older write can be told from a new one (see `Applier::stale_ingests`).
//!
//! Two apps write one record, A then B, and B's `/ingest` reaches SSP
//! first. The worker's notifications of both writes are read again at
//! their turn and give B's state. When A's `/ingest` comes last, applied
//! as sent it would put A's older state back until the record's next
//! write. Nothing in it says which write it copies, but one thing is
//! known: the worker already delivered that very content for that record.
//! Such an `/ingest` copies a write the database has seen and the pipeline
//! has read past, or an identical later one; either way, reading the record
//! at its turn gives a state as new as its write. A fingerprint of each
//! content the worker delivered is kept, bounded, for that test: 8 bytes
//! whatever the record's size, shared by its JSON and its typed copies
//! (`Value::hash_content`).

use std::collections::VecDeque;

use ahash::AHashMap;

use crate::engine::value::{Object, RecordId};

/// A record content's fingerprint, its `id` field aside (a notification
/// has it, an `/ingest` may not); a delete has one too. Equal for two
/// copies with the same content (see `same`); two other contents share
/// one only by a hash collision, which costs an `/ingest` a read.
pub(in crate::pipeline) fn fingerprint(content: Option<&Object>) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    static SEED: std::sync::LazyLock<ahash::RandomState> =
        std::sync::LazyLock::new(ahash::RandomState::new);
    let mut h = SEED.build_hasher();
    match content {
        None => 0u8.hash(&mut h),
        Some(o) => {
            1u8.hash(&mut h);
            for (k, v) in o.iter().filter(|(k, _)| k.as_ref() != "id") {
                k.hash(&mut h);
                v.hash_content(&mut h);
            }
        }
    }
    h.finish()
}

/// Delivered contents remembered, over all records. The race it covers
/// lasts as long as an `/ingest` takes to arrive after a newer write's
/// notification was applied: milliseconds, thousands of writes at most.
const REMEMBERED: usize = 8_192;

/// Delivered contents remembered per record: a late `/ingest` has seldom
/// more than a few writes of its record after it, and every `/ingest` of a
/// record compares its content with each one kept.
const PER_RECORD: usize = 16;

/// The fingerprints of the contents the change worker's notifications
/// carried (before they were read again), per record: the last
/// [`REMEMBERED`] of them, at most [`PER_RECORD`] a record.
#[derive(Default)]
pub(in crate::pipeline) struct Delivered {
    /// Each record's delivered fingerprints, oldest first, with the number
    /// each was noted under.
    by_record: AHashMap<RecordId, VecDeque<(u64, u64)>>,
    /// The numbers noted, oldest first, to forget in that order.
    order: VecDeque<(u64, RecordId)>,
    noted: u64,
}

impl Delivered {
    /// Remembers that the worker delivered `content` for `id`.
    pub(in crate::pipeline) fn note(&mut self, id: &RecordId, content: Option<&Object>) {
        let content = fingerprint(content);
        self.noted += 1;
        let contents = self.by_record.entry(id.clone()).or_default();
        if contents.len() == PER_RECORD {
            contents.pop_front();
        }
        contents.push_back((self.noted, content));
        self.order.push_back((self.noted, id.clone()));
        while self.order.len() > REMEMBERED {
            let Some((number, oldest)) = self.order.pop_front() else {
                break;
            };
            // Gone already if its record had PER_RECORD newer ones.
            if let Some(contents) = self.by_record.get_mut(&oldest) {
                if contents.front().is_some_and(|(n, _)| *n == number) {
                    contents.pop_front();
                }
                if contents.is_empty() {
                    self.by_record.remove(&oldest);
                }
            }
        }
    }

    /// Whether the worker delivered the same content (the same in JSON or
    /// typed form, as versions count it) for `id`, or a delete for a delete.
    /// Only a record the worker delivered lately has its `content` hashed.
    pub(in crate::pipeline) fn has(&self, id: &RecordId, content: Option<&Object>) -> bool {
        self.by_record.get(id).is_some_and(|seen| {
            let content = fingerprint(content);
            seen.iter().any(|(_, s)| *s == content)
        })
    }

    pub(in crate::pipeline) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// Whether two copies of a record's content are the same, its `id` field
/// aside (a notification has it, an `/ingest` may not).
pub(in crate::pipeline) fn same(a: Option<&Object>, b: Option<&Object>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let mut a = a.iter().filter(|(k, _)| k.as_ref() != "id");
            let mut b = b.iter().filter(|(k, _)| k.as_ref() != "id");
            loop {
                match (a.next(), b.next()) {
                    (None, None) => return true,
                    (Some((ka, va)), Some((kb, vb))) if ka == kb && va.same_content(vb) => {}
                    _ => return false,
                }
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::Value;

    fn object(json: serde_json::Value) -> Object {
        match Value::from(&json) {
            Value::Object(o) => o,
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn a_content_is_found_in_either_form_and_its_id_field_aside() {
        let id = RecordId::parse("t:1").expect("id");
        let mut d = Delivered::default();
        d.note(&id, Some(&object(serde_json::json!({"id": "t:1", "n": 1}))));
        d.note(&id, None);
        assert!(d.has(&id, Some(&object(serde_json::json!({"n": 1})))));
        assert!(d.has(&id, None), "a delete for a delete");
        assert!(!d.has(&id, Some(&object(serde_json::json!({"n": 2})))));
        assert!(!d.has(&id, Some(&object(serde_json::json!({"n": 1, "m": 0})))));
        let other = RecordId::parse("t:2").expect("id");
        assert!(!d.has(&other, None));
        // SurrealDB's typed copy, and the app's JSON one.
        let at = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .expect("datetime")
            .with_timezone(&chrono::Utc);
        let typed = Object::from_pairs(vec![("at".into(), Value::datetime(at))]);
        d.note(&other, Some(&typed));
        assert!(d.has(
            &other,
            Some(&object(serde_json::json!({"at": "2024-01-01T00:00:00Z"})))
        ));
        assert!(!d.has(
            &other,
            Some(&object(serde_json::json!({"at": "2024-01-02T00:00:00Z"})))
        ));
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_go_first() {
        let mut d = Delivered::default();
        let first = RecordId::parse("t:0").expect("id");
        d.note(&first, None);
        for i in 1..=REMEMBERED as i64 {
            let id = RecordId::parse(&format!("t:{i}")).expect("id");
            d.note(&id, None);
        }
        assert_eq!(d.order.len(), REMEMBERED);
        assert_eq!(d.by_record.len(), REMEMBERED);
        assert!(!d.has(&first, None), "the oldest is forgotten");
        let last = RecordId::parse(&format!("t:{REMEMBERED}")).expect("id");
        assert!(d.has(&last, None));
    }

    #[test]
    fn a_record_keeps_its_last_contents_only() {
        let mut d = Delivered::default();
        let id = RecordId::parse("t:1").expect("id");
        let n = |i: usize| Some(object(serde_json::json!({ "n": i })));
        for i in 0..PER_RECORD + 2 {
            d.note(&id, n(i).as_ref());
        }
        assert!(!d.has(&id, n(1).as_ref()));
        assert!(d.has(&id, n(2).as_ref()));
        assert!(d.has(&id, n(PER_RECORD + 1).as_ref()));
        // Forgetting the record's first notes (dropped already) keeps the rest.
        let other = RecordId::parse("t:2").expect("id");
        for _ in 0..REMEMBERED - PER_RECORD {
            d.note(&other, None);
        }
        assert!(d.has(&id, n(2).as_ref()), "{} kept", d.order.len());
        d.note(&other, None);
        assert!(!d.has(&id, n(2).as_ref()));
        assert!(d.has(&id, n(3).as_ref()));
    }
}
