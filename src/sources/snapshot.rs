//! Reading rows straight from the tables: a table's current rows, so that
//! views see data written before SSP (or before the first view that reads
//! the table), and the current content of given records, which is how the
//! change worker applies what the change feed says changed (the newest state
//! wins over any older one, so a re-read can never move a record back).

use std::collections::HashSet;

use surrealdb::types as sdb;

use crate::db::values::{from_surreal, record_id_from_surreal, record_id_to_surreal};
use crate::db::{Db, DbError, Query};
use crate::engine::Change;
use crate::engine::value::{RecordId, Value};

/// Records re-read per query.
const READ_CHUNK: usize = 1000;

/// Rows of a table read per round trip by [`TablePages`].
pub const PAGE_ROWS: usize = 2000;

/// How many rows `table` holds now (one round trip): the total that a
/// progress line counts against.
pub async fn count_rows(db: &Db, table: &str) -> Result<u64, DbError> {
    let q = Query::new("SELECT count() AS n FROM type::table($table) GROUP ALL")
        .bind("table", table.to_string());
    let mut response = db.run_background(q).await?;
    let rows: Vec<sdb::Value> = response.take(0)?;
    let n = rows.first().and_then(|row| match row {
        sdb::Value::Object(o) => match o.get("n") {
            Some(sdb::Value::Number(sdb::Number::Int(n))) => Some((*n).max(0) as u64),
            _ => None,
        },
        _ => None,
    });
    Ok(n.unwrap_or(0))
}

/// A table's rows, page by page in record-id order: each page starts after
/// the last id of the one before (a record-id range, so every page costs
/// its own rows, not a skip over the ones before). A long load can then
/// report progress and keep each round trip small. Pages are separate
/// reads, not one snapshot: callers that need every write covered take a
/// change-feed cursor first, as for a single read.
pub struct TablePages {
    table: String,
    size: usize,
    after: Option<sdb::RecordIdKey>,
    done: bool,
}

impl TablePages {
    pub fn new(table: &str, size: usize) -> Self {
        TablePages {
            table: table.to_owned(),
            size: size.max(1),
            after: None,
            done: false,
        }
    }

    /// The next page, or `None` after the last.
    pub async fn next(&mut self, db: &Db) -> Result<Option<Vec<Change>>, DbError> {
        if self.done {
            return Ok(None);
        }
        let limit = self.size as i64;
        let q = match self.after.take() {
            None => Query::new("SELECT * FROM type::table($table) LIMIT $limit")
                .bind("table", self.table.clone()),
            Some(after) => {
                let range = sdb::RecordIdKeyRange {
                    start: std::ops::Bound::Excluded(after),
                    end: std::ops::Bound::Unbounded,
                };
                let from = sdb::RecordId {
                    table: self.table.clone().into(),
                    key: sdb::RecordIdKey::Range(Box::new(range)),
                };
                Query::new("SELECT * FROM $from LIMIT $limit").bind("from", from)
            }
        }
        .bind("limit", limit);
        let mut response = db.run_background(q).await?;
        let rows: Vec<sdb::Value> = response.take(0)?;
        self.done = rows.len() < self.size;
        self.after = rows.last().and_then(|row| match row {
            sdb::Value::Object(o) => match o.get("id") {
                Some(sdb::Value::RecordId(r)) => Some(r.key.clone()),
                _ => None,
            },
            _ => None,
        });
        if self.after.is_none() {
            self.done = true;
        }
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(rows.into_iter().filter_map(row_to_change).collect()))
    }
}

/// What a resync deletes: every record the engine holds of the table
/// (`held`) that the snapshot did not find (`present`). Applied after the
/// snapshot's rows, it makes the engine's copy of the table equal the
/// snapshot.
pub fn deletions(held: Vec<RecordId>, present: &HashSet<RecordId>) -> Vec<Change> {
    held.into_iter()
        .filter(|id| !present.contains(id))
        .map(|id| Change { id, content: None })
        .collect()
}

/// The current content of `ids`: an upsert for each record that exists, a
/// delete for each that does not. One round trip per 1000 records.
pub async fn read_records(db: &Db, ids: &[RecordId]) -> Result<Vec<Change>, DbError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(READ_CHUNK) {
        let bound: Vec<sdb::Value> = chunk
            .iter()
            .map(|id| sdb::Value::RecordId(record_id_to_surreal(id)))
            .collect();
        let q = Query::new("SELECT * FROM $ids").bind("ids", sdb::Value::Array(bound.into()));
        let mut response = db.run_background(q).await?;
        let rows: Vec<sdb::Value> = response.take(0)?;
        let found: Vec<Change> = rows.into_iter().filter_map(row_to_change).collect();
        let present: HashSet<RecordId> = found.iter().map(|c| c.id.clone()).collect();
        out.extend(found);
        out.extend(
            chunk
                .iter()
                .filter(|id| !present.contains(*id))
                .map(|id| Change {
                    id: id.clone(),
                    content: None,
                }),
        );
    }
    Ok(out)
}

/// A row (an object with an `id`) as an upsert of that record.
pub fn row_to_change(row: sdb::Value) -> Option<Change> {
    let sdb::Value::Object(obj) = row else {
        return None;
    };
    let id = match obj.get("id") {
        Some(sdb::Value::RecordId(r)) => record_id_from_surreal(r),
        _ => return None,
    };
    match from_surreal(sdb::Value::Object(obj)) {
        Value::Object(content) => Some(Change {
            id,
            content: Some(content),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Key;

    #[test]
    fn resync_deletes_what_the_database_lost() {
        let rid = |k: i64| RecordId::new("t", Key::Int(k));
        let present: HashSet<RecordId> = [rid(1)].into_iter().collect();
        let changes = deletions(vec![rid(1), rid(2)], &present);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].id, rid(2));
        assert!(changes[0].content.is_none());
    }
}
