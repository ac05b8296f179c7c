//! Reading rows straight from the tables: a table's current rows, so that
//! views see data written before SSP (or before the first view that reads
//! the table), and the current content of given records, which is how the
//! change worker applies what the change feed says changed (the newest state
//! wins over any older one, so a re-read can never move a record back).
//! A page reaches the pipeline after it was read, so it goes with a read
//! mark (`Pipeline::ingest_read`): a row whose record changed in the
//! pipeline since is read again at its turn.
//!
//! **A table is read page by page** ([`TablePages`]), never in one call. One
//! `SELECT * FROM table` answers in one websocket message whose size and time
//! grow with the table: past the SDK's 64 MiB message limit the client drops
//! the connection (every LIVE query ends with it), and past the call timeout
//! the read is abandoned; either way a big table never loaded and the worker
//! retried forever. A page is a key range after the last record id seen,
//! `LIMIT`ed: every call is bounded by [`PAGE_ROWS`], whatever the table's
//! size, and a page that fails for a transient reason is retried on its own,
//! smaller.

use std::collections::HashSet;
use std::ops::Bound;
use std::time::Duration;

use backoff::backoff::Backoff;
use surrealdb::types as sdb;

use crate::db::records::row_to_change;
use crate::db::{Db, DbError, Query};
use crate::engine::Change;
use crate::engine::value::RecordId;

/// Rows of a snapshot applied per batch: a large table's load reports
/// progress as it goes, and no edge transaction grows with the table. Small,
/// because SurrealDB's cost per edge grows with the transaction (mem engine,
/// debug build: 1,000 edges in ~0.8s, 5,000 in over 20s).
pub const APPLY_CHUNK: usize = 1_000;

/// Rows per page of a table read. A page is one websocket message: at 1,000
/// rows, rows would have to average 64 KiB to reach the SDK's message limit.
/// Smaller pages cost little: a page's cost is per row, not per call (debug
/// build, 100k rows of ~360 bytes: 1.0s in pages of 1,000, 0.7s in pages of
/// 2,000, 1.3s in one read).
pub const PAGE_ROWS: usize = 1_000;

/// One page: the records after a key, in key order.
///
/// SurrealDB 3.3.5 plans a record-id range it can see when planning (a
/// literal, or a bound parameter) as a `RecordIdScan` that reads the *whole
/// rest* of the range before `LIMIT` applies, so paging with it costs the
/// rest of the table per page (quadratic). A range it only learns while
/// running goes through `DynamicScan`, which pushes `LIMIT` into the
/// key-value scan and stops there: `array::first([$range])` hides the range
/// from the planner. (`WHERE id > $last ORDER BY id LIMIT n` is linear per
/// page too: the scan starts at the table's first key and skips.) Measured
/// on 300k rows in pages of 10,000: 3.2s this way, 10.8s with `FROM $range`,
/// 5.8s with `WHERE id >`. Were a later SurrealDB to plan it differently,
/// the pages would still be right, only slower (the integration test checks
/// the plan).
pub const PAGE_QUERY: &str = "SELECT * FROM array::first([$range]) LIMIT $limit";

/// Attempts per page before a transient failure is returned. Each failed
/// attempt halves the page, so the last one asks for 1/128 of [`PAGE_ROWS`].
const PAGE_ATTEMPTS: u32 = 8;

/// A table's rows, page by page in record-id order: each call to
/// [`TablePages::next_page`] is one bounded database call (background: not
/// counted as a request round trip, see [`Db::run_background`]).
///
/// A page that fails because the database is unavailable (a timeout, a
/// dropped connection) or conflicts is retried, with backoff, *smaller*:
/// rows so big that a page of them is over the websocket message limit make
/// the SDK drop the connection, and a page too slow for the call timeout
/// times out; half as many rows gets through. Each page that succeeds doubles
/// the size again, up to the maximum. The read resumes where it was, never
/// from the start.
///
/// Pages are separate reads, not one transaction: a record written while the
/// table is read may show up in its old or its new state (or not at all if
/// created behind the reader, or deleted ahead of it). Callers that need
/// every write make sure the writes after the read started reach them by
/// another way (the change worker: LIVE first, then the feed cursor, then
/// the pages).
#[derive(Debug)]
pub struct TablePages {
    table: String,
    max_rows: usize,
    /// Rows the next page asks for.
    rows: usize,
    /// The key of the last record read; `None` before the first page.
    after: Option<sdb::RecordIdKey>,
    done: bool,
    pages: u64,
}

impl TablePages {
    /// Pages of up to [`PAGE_ROWS`] rows over `table`.
    pub fn new(table: &str) -> Self {
        Self::with_page_rows(table, PAGE_ROWS)
    }

    /// Pages of up to `page_rows` rows (at least 1).
    pub fn with_page_rows(table: &str, page_rows: usize) -> Self {
        let page_rows = page_rows.max(1);
        TablePages {
            table: table.to_owned(),
            max_rows: page_rows,
            rows: page_rows,
            after: None,
            done: false,
            pages: 0,
        }
    }

    /// Pages read so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// The next page's rows as upserts, or `None` once the table is read.
    #[tracing::instrument(skip(self, db), fields(table = %self.table, page = self.pages))]
    pub async fn next_page(&mut self, db: &Db) -> Result<Option<Vec<Change>>, DbError> {
        if self.done {
            return Ok(None);
        }
        let mut backoff =
            crate::db::backoff_forever(Duration::from_millis(200), Duration::from_secs(2));
        let mut attempt = 1;
        let (rows, asked) = loop {
            let asked = self.rows;
            match db.run_background(self.page_query(asked)).await {
                Ok(mut response) => break (response.take::<Vec<sdb::Value>>(0)?, asked),
                Err(error)
                    if attempt < PAGE_ATTEMPTS
                        && (error.is_unavailable() || error.is_conflict()) =>
                {
                    let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(2));
                    self.rows = (asked / 2).max(1);
                    tracing::warn!(
                        table = %self.table,
                        page = self.pages,
                        %error,
                        page_rows = self.rows,
                        retry_in_ms = wait.as_millis() as u64,
                        "reading a page of the table failed; retrying it with fewer rows"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        };
        self.pages += 1;
        self.rows = (asked * 2).min(self.max_rows);
        if rows.len() < asked {
            self.done = true;
        }
        match rows.last().and_then(row_key) {
            Some(key) => self.after = Some(key),
            // An empty page, or rows without a record id: nothing after it.
            None => self.done = true,
        }
        let changes: Vec<Change> = rows.into_iter().filter_map(row_to_change).collect();
        if changes.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(changes))
    }

    /// [`PAGE_QUERY`] for the `rows` records after the last one read.
    fn page_query(&self, rows: usize) -> Query {
        let range = sdb::RecordIdKeyRange {
            start: match &self.after {
                Some(key) => Bound::Excluded(key.clone()),
                None => Bound::Unbounded,
            },
            end: Bound::Unbounded,
        };
        let range = sdb::Value::RecordId(sdb::RecordId {
            table: self.table.as_str().into(),
            key: sdb::RecordIdKey::Range(Box::new(range)),
        });
        Query::new(PAGE_QUERY)
            .bind("range", range)
            .bind("limit", rows as i64)
    }
}

/// The key of a row's record id.
fn row_key(row: &sdb::Value) -> Option<sdb::RecordIdKey> {
    match row {
        sdb::Value::Object(obj) => match obj.get("id") {
            Some(sdb::Value::RecordId(id)) => Some(id.key.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A delete for every record the engine holds (`held`) that a full read of
/// the table did not see (`present`): what makes the engine's copy of the
/// table equal the snapshot after a resync.
pub fn deletes_for(held: Vec<RecordId>, present: &HashSet<RecordId>) -> Vec<Change> {
    held.into_iter()
        .filter(|id| !present.contains(id))
        .map(|id| Change { id, content: None })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Key;

    #[test]
    fn resync_deletes_what_the_database_lost() {
        let rid = |k: i64| RecordId::new("t", Key::Int(k));
        let present: HashSet<RecordId> = [rid(1)].into_iter().collect();
        let gone = deletes_for(vec![rid(1), rid(2)], &present);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].id, rid(2));
        assert!(gone[0].content.is_none());
    }
}
