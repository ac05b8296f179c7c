//! The change-feed cursors: per tracked table, the versionstamp from which a
//! re-read of the change feed is guaranteed to find every change SSP may not
//! have applied yet, and when that was last confirmed.
//!
//! They are shared (`Arc<Mutex<..>>`) between the change worker, which
//! advances them, and the state saver, which snapshots them: a restart then
//! resumes from the cursor instead of re-reading whole tables.
//!
//! Why a confirmation time next to each versionstamp: SurrealDB drops change
//! feed entries older than the feed's retention. A cursor is only usable if
//! nothing after it can have been dropped, i.e. if every entry after it is
//! younger than the retention. When a feed read finds nothing after the
//! cursor, the cursor is as good as "now" even though its versionstamp did not
//! move (an idle database), so the worker records that moment here. A cursor
//! whose confirmation is older than the retention (SSP was down too long)
//! means a full resync of that table instead of a feed read.
//!
//! Consistency with the engine state: a cursor only ever advances after the
//! changes before it are committed through the pipeline. A saver must
//! therefore take the cursors *before* the engine state (see
//! [`Cursors::snapshot`]), so the file never holds a cursor that is ahead of
//! the engine state saved with it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

/// One table's cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Re-read the change feed from here (inclusive).
    pub versionstamp: u64,
    /// Every feed entry after `versionstamp` was committed after this moment.
    pub confirmed_at: DateTime<Utc>,
}

/// The shared cursor map. Cheap to clone (one `Arc`).
#[derive(Clone, Debug, Default)]
pub struct Cursors {
    inner: Arc<Mutex<BTreeMap<String, Cursor>>>,
}

impl Cursors {
    /// No cursors: every tracked table is loaded by a snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cursors as saved in the state file (`StateFile::cursors` and
    /// `StateFile::cursor_times`). A cursor without a time is treated as
    /// confirmed at the Unix epoch, i.e. too old to trust: its table is
    /// resynced, which is always safe.
    pub fn from_saved(
        versionstamps: &BTreeMap<String, u64>,
        confirmed: &BTreeMap<String, DateTime<Utc>>,
    ) -> Self {
        let map = versionstamps
            .iter()
            .map(|(table, &versionstamp)| {
                let confirmed_at = confirmed
                    .get(table)
                    .copied()
                    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
                (
                    table.clone(),
                    Cursor {
                        versionstamp,
                        confirmed_at,
                    },
                )
            })
            .collect();
        Cursors {
            inner: Arc::new(Mutex::new(map)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Cursor>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (every update is a single insert/remove), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cursors for the state file: `(versionstamps, confirmation times)`,
    /// shaped like `StateFile::cursors` and `StateFile::cursor_times`. Take
    /// it before the engine state (see the module docs).
    pub fn snapshot(&self) -> (BTreeMap<String, u64>, BTreeMap<String, DateTime<Utc>>) {
        let map = self.lock();
        let versionstamps = map
            .iter()
            .map(|(t, c)| (t.clone(), c.versionstamp))
            .collect();
        let times = map
            .iter()
            .map(|(t, c)| (t.clone(), c.confirmed_at))
            .collect();
        (versionstamps, times)
    }

    /// Table -> versionstamp (for `/health`, tests and logs).
    pub fn versionstamps(&self) -> BTreeMap<String, u64> {
        self.snapshot().0
    }

    pub fn get(&self, table: &str) -> Option<Cursor> {
        self.lock().get(table).copied()
    }

    /// Sets a table's cursor (after a snapshot: back to an earlier point is allowed).
    pub(crate) fn set(&self, table: &str, cursor: Cursor) {
        self.lock().insert(table.to_owned(), cursor);
    }

    /// Moves a table's cursor forward, never back. Returns true when the
    /// versionstamp moved.
    pub(crate) fn advance(&self, table: &str, to: Cursor) -> bool {
        let mut map = self.lock();
        match map.get_mut(table) {
            Some(c) => {
                let moved = to.versionstamp > c.versionstamp;
                c.versionstamp = c.versionstamp.max(to.versionstamp);
                c.confirmed_at = c.confirmed_at.max(to.confirmed_at);
                moved
            }
            None => false,
        }
    }

    pub(crate) fn remove(&self, table: &str) {
        self.lock().remove(table);
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_round_trip_and_monotonic_advance() {
        let t0 = Utc::now();
        let c = Cursors::new();
        c.set(
            "thread",
            Cursor {
                versionstamp: 10,
                confirmed_at: t0,
            },
        );
        assert!(!c.advance(
            "thread",
            Cursor {
                versionstamp: 5,
                confirmed_at: t0 + chrono::Duration::seconds(1),
            }
        ));
        let got = c.get("thread").unwrap();
        assert_eq!(got.versionstamp, 10, "never moves back");
        assert_eq!(
            got.confirmed_at,
            t0 + chrono::Duration::seconds(1),
            "time does"
        );
        assert!(c.advance(
            "thread",
            Cursor {
                versionstamp: 12,
                confirmed_at: t0,
            }
        ));
        assert!(!c.advance("unknown", got), "only tracked tables advance");

        let (vs, times) = c.snapshot();
        let back = Cursors::from_saved(&vs, &times);
        assert_eq!(back.get("thread"), c.get("thread"));

        let legacy = Cursors::from_saved(&vs, &BTreeMap::new());
        assert_eq!(
            legacy.get("thread").unwrap().confirmed_at,
            DateTime::<Utc>::UNIX_EPOCH,
            "a cursor without a time is too old to trust"
        );
    }
}
