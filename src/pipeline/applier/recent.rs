//! What recent groups applied, so that rows read from the database can be
//! checked against it (see `Pipeline::ingest_read`).
//!
//! A table's snapshot is read, then queued; an `/ingest` of a newer write
//! can be applied in between. The applier numbers its ingest groups and
//! remembers, by hash, the records each recent group applied; a row read
//! after mark `m` whose record a group after `m` applied may be older than
//! the engine, and is read again at its turn. Remembering is bounded: once
//! the groups after a mark are forgotten, every row read after it is read
//! again (slower, never wrong).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ahash::AHashSet;

use crate::engine::value::RecordId;
use crate::pipeline::ReadMark;

/// Record hashes remembered, over all groups kept (512 KiB). At a few
/// changes per group, thousands of groups: far more than are applied while
/// one page of a snapshot is read and queued.
const REMEMBERED: usize = 1 << 16;

pub(in crate::pipeline) struct Recent {
    /// The number of the last group applied, published for
    /// `Pipeline::read_mark`.
    applied: Arc<AtomicU64>,
    /// Each recent group's number and records (hashes), oldest first.
    /// Groups of rows read from the database are not kept: the change
    /// worker reads one page after the last was applied.
    groups: VecDeque<(u64, Vec<u64>)>,
    remembered: usize,
    /// Groups up to this number are forgotten.
    forgotten: u64,
}

impl Recent {
    pub(in crate::pipeline) fn new(applied: Arc<AtomicU64>) -> Recent {
        Recent {
            applied,
            groups: VecDeque::new(),
            remembered: 0,
            forgotten: 0,
        }
    }

    /// Numbers the group about to be applied, whose changes other than
    /// rows read from the database name `records`.
    ///
    /// Called once the group's own reads are done: a mark taken after this
    /// (the group's number or later) is taken after the group's content was
    /// read or written, so rows read after the mark are no older than it.
    pub(in crate::pipeline) fn note(&mut self, records: Vec<u64>) {
        let number = self.applied.load(Ordering::Relaxed) + 1;
        if !records.is_empty() {
            self.remembered += records.len();
            self.groups.push_back((number, records));
        }
        while self.remembered > REMEMBERED {
            let Some((n, records)) = self.groups.pop_front() else {
                break;
            };
            self.remembered -= records.len();
            self.forgotten = n;
        }
        self.applied.store(number, Ordering::Release);
    }

    /// The records groups after `mark` applied; `None` when some of those
    /// groups are forgotten (every row must then be read again).
    pub(in crate::pipeline) fn since(&self, mark: ReadMark) -> Option<AHashSet<u64>> {
        if self.forgotten > mark.0 {
            return None;
        }
        Some(
            self.groups
                .iter()
                .rev()
                .take_while(|(n, _)| *n > mark.0)
                .flat_map(|(_, records)| records.iter().copied())
                .collect(),
        )
    }
}

/// A record's hash, as [`Recent`] and the applier's in-flight edges keep
/// it. A collision only reads a row again, or makes a group wait, when it
/// need not.
pub(in crate::pipeline) fn record_hash(id: &RecordId) -> u64 {
    static HASHER: std::sync::LazyLock<ahash::RandomState> =
        std::sync::LazyLock::new(ahash::RandomState::new);
    HASHER.hash_one(("record", id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(recent: &Recent) -> ReadMark {
        ReadMark(recent.applied.load(Ordering::Acquire))
    }

    #[test]
    fn a_mark_sees_the_records_of_later_groups_only() {
        let mut recent = Recent::new(Arc::default());
        recent.note(vec![1, 2]);
        let m = mark(&recent);
        assert_eq!(recent.since(m), Some(AHashSet::new()));
        recent.note(vec![3]);
        recent.note(Vec::new());
        recent.note(vec![2, 4]);
        let mut got: Vec<u64> = recent.since(m).expect("remembered").into_iter().collect();
        got.sort_unstable();
        assert_eq!(got, [2, 3, 4]);
        assert_eq!(recent.since(mark(&recent)), Some(AHashSet::new()));
    }

    #[test]
    fn a_mark_past_what_is_remembered_reads_everything_again() {
        let mut recent = Recent::new(Arc::default());
        let old = mark(&recent);
        recent.note(vec![7]);
        let newer = mark(&recent);
        // Enough groups to push the first one out.
        for i in 0..REMEMBERED as u64 {
            recent.note(vec![100 + i]);
        }
        assert_eq!(recent.since(old), None);
        let since_newer = recent.since(newer).expect("the groups after it are kept");
        assert_eq!(since_newer.len(), REMEMBERED);
        assert!(!since_newer.contains(&7));
    }
}
