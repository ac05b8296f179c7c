//! Reading records' current content by id: what the startup reconcile, the
//! change worker's gap repair and the pipeline's ordering (changes the
//! worker delivers are resolved to the database's current state) share.

use std::collections::HashSet;

use surrealdb::types as sdb;

use super::values::{from_surreal, record_id_from_surreal, record_id_to_surreal};
use super::{Db, DbError, Query};
use crate::engine::Change;
use crate::engine::value::{RecordId, Value};

/// Records re-read per query.
const READ_CHUNK: usize = 1000;

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
        // A range is never a stored record's id.
        Some(sdb::Value::RecordId(r)) => record_id_from_surreal(r)?,
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
