//! Reading records' current content by id: what the startup reconcile, the
//! change worker's gap repair and the pipeline's ordering (changes the
//! worker delivers are resolved to the database's current state) share.

use std::collections::HashSet;

use surrealdb::types as sdb;

use super::values::{from_surreal, record_id_from_surreal, record_id_to_surreal};
use super::{Db, DbError, Query};
use crate::engine::Change;
use crate::engine::value::{Key, RecordId, Value};

/// Records re-read per query.
const READ_CHUNK: usize = 1000;

/// The current content of `ids`: an upsert for each record that exists, a
/// delete for each that does not. One round trip per 1000 records.
///
/// Records with array or object keys are read by statements of their own:
/// SurrealDB 3.3.5 answers `SELECT * FROM [t:[1, 'a'], t:[1f, 'a']]` with
/// the first record twice (the two keys are equal as values, and distinct
/// records), which would read the second as deleted. The mixed-mode
/// differential test found it.
pub async fn read_records(db: &Db, ids: &[RecordId]) -> Result<Vec<Change>, DbError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(READ_CHUNK) {
        let (composite, plain): (Vec<&RecordId>, Vec<&RecordId>) = chunk
            .iter()
            .partition(|id| matches!(id.key, Key::Composite(_)));
        let bound: Vec<sdb::Value> = plain
            .iter()
            .map(|id| sdb::Value::RecordId(record_id_to_surreal(id)))
            .collect();
        let mut q = Query::new("SELECT * FROM $ids").bind("ids", sdb::Value::Array(bound.into()));
        for (i, id) in composite.iter().enumerate() {
            q.push(format!("SELECT * FROM $c{i}"));
            q.set(
                format!("c{i}"),
                sdb::Value::RecordId(record_id_to_surreal(id)),
            );
        }
        let mut response = db.run_background(q).await?;
        let mut rows: Vec<sdb::Value> = response.take(0)?;
        for i in 0..composite.len() {
            rows.extend(response.take::<Vec<sdb::Value>>(i + 1)?);
        }
        // Only the records asked for, each once.
        let wanted: HashSet<&RecordId> = chunk.iter().collect();
        let mut present: HashSet<RecordId> = HashSet::with_capacity(rows.len());
        out.extend(
            rows.into_iter()
                .filter_map(row_to_change)
                .filter(|c| wanted.contains(&c.id) && present.insert(c.id.clone())),
        );
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
