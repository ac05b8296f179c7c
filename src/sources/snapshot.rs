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

/// Rows of a snapshot applied per batch: a large table's load reports
/// progress as it goes, and no edge transaction grows with the table.
pub const APPLY_CHUNK: usize = 10_000;

/// Every row of `table`, as upserts. One round trip (background: not counted
/// as a request round trip, see [`Db::run_background`]).
#[tracing::instrument(skip(db))]
pub async fn read_table(db: &Db, table: &str) -> Result<Vec<Change>, DbError> {
    let q = Query::new("SELECT * FROM type::table($table)").bind("table", table.to_string());
    let mut response = db.run_background(q).await?;
    let rows: Vec<sdb::Value> = response.take(0)?;
    Ok(rows.into_iter().filter_map(row_to_change).collect())
}

/// A table's rows as a resync: every row as an upsert, plus a delete for
/// every record the engine holds in that table that the database no longer
/// has. Applying it makes the engine's copy of the table equal the snapshot.
pub fn resync_changes(rows: Vec<Change>, engine_ids: Vec<RecordId>) -> (Vec<Change>, usize) {
    let present: HashSet<&RecordId> = rows.iter().map(|c| &c.id).collect();
    let gone: Vec<Change> = engine_ids
        .into_iter()
        .filter(|id| !present.contains(id))
        .map(|id| Change { id, content: None })
        .collect();
    let deleted = gone.len();
    let mut changes = rows;
    changes.extend(gone);
    (changes, deleted)
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
        let rows = vec![Change {
            id: rid(1),
            content: Some(Default::default()),
        }];
        let (changes, deleted) = resync_changes(rows, vec![rid(1), rid(2)]);
        assert_eq!(deleted, 1);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].id, rid(2));
        assert!(changes[1].content.is_none());
    }
}
