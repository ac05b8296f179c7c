//! Re-convergence: make the edges in SurrealDB equal the engine's result
//! sets, whatever happened in between.
//!
//! Used at startup (the engine restored from a state file that may be older
//! than the last commits, or rebuilt from the database) and by the pipeline
//! after a commit failed for good: the engine had applied that batch, the
//! database never took its edges, and nothing else would write them again.

use std::collections::{BTreeMap, HashMap};

use surrealdb::types as sdb;

use super::{EDGE_TABLE, EdgeChanges, EdgeSink, MAX_EDGES_PER_TX};
use crate::db::values::record_id_from_surreal;
use crate::db::{Db, DbError, Query};
use crate::engine::value::RecordId;
use crate::engine::{Engine, ViewDelta};

/// One edge as the database holds it.
#[derive(Debug, Clone)]
pub struct EdgeRow {
    pub view: String,
    pub record: RecordId,
    pub version: u64,
    pub client_id: String,
}

/// Every edge in the database.
pub async fn read_edges(db: &Db) -> Result<Vec<EdgeRow>, DbError> {
    let mut response = db
        .run(Query::new(format!(
            "SELECT record::id(in) AS view, out, version, clientId FROM {EDGE_TABLE}"
        )))
        .await?;
    let rows: Vec<sdb::Value> = response.take(0)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let sdb::Value::Object(o) = row else { continue };
        let view = match o.get("view") {
            Some(sdb::Value::String(s)) => s.clone(),
            Some(sdb::Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        // A range is never an edge's `out`: SurrealDB refuses to create one.
        let Some(record) = (match o.get("out") {
            Some(sdb::Value::RecordId(r)) => record_id_from_surreal(r),
            _ => None,
        }) else {
            continue;
        };
        let version = match o.get("version") {
            Some(sdb::Value::Number(sdb::Number::Int(v))) => (*v).max(0) as u64,
            _ => 0,
        };
        let client_id = match o.get("clientId") {
            Some(sdb::Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        out.push(EdgeRow {
            view,
            record,
            version,
            client_id,
        });
    }
    Ok(out)
}

/// The writes that make `edges` equal the engine's result sets: missing or
/// stale edges (version or client id) upserted, extra ones deleted, with the
/// rows of views the engine does not know.
///
/// First every record's version is raised to the highest version any edge
/// shows for it: a version a client saw must never go back, and the engine
/// may hold an older one (a state file saved before the last commits).
pub fn plan(engine: &mut Engine, edges: Vec<EdgeRow>) -> EdgeChanges {
    let mut have: HashMap<(String, RecordId), (u64, String)> = HashMap::with_capacity(edges.len());
    for e in edges {
        engine.raise_version(&e.record, e.version);
        have.insert((e.view, e.record), (e.version, e.client_id));
    }
    let mut deltas: BTreeMap<String, ViewDelta> = BTreeMap::new();
    for meta in engine.views() {
        let records = engine.view_records(&meta.id).unwrap_or_default();
        let d = deltas
            .entry(meta.id.to_string())
            .or_insert_with(|| ViewDelta {
                view: meta.id.clone(),
                client_id: meta.client_id.clone(),
                ..Default::default()
            });
        for (r, version) in records {
            match have.remove(&(meta.id.to_string(), r.clone())) {
                Some((v, client)) if v == version && *client == *meta.client_id => {}
                _ => d.created.push((r, version)),
            }
        }
    }
    let mut changes = EdgeChanges::default();
    for ((view, record), _) in have {
        match deltas.get_mut(&view) {
            Some(d) => d.deleted.push(record),
            None => changes.remove_view(view.into()),
        }
    }
    let deltas: Vec<ViewDelta> = deltas.into_values().collect();
    changes.absorb(&deltas);
    changes
}

/// Reads the edges, plans the fix and writes it (in bounded transactions);
/// returns how many edges were fixed.
#[tracing::instrument(skip_all)]
pub async fn reconcile(engine: &mut Engine, sink: &EdgeSink) -> Result<usize, DbError> {
    let edges = read_edges(sink.db()).await?;
    let changes = plan(engine, edges);
    let fixed = changes.len();
    if fixed > 0 {
        tracing::info!(fixed, "edges reconciled with the engine");
        for part in changes.split(MAX_EDGES_PER_TX) {
            sink.write(&part).await?;
        }
    }
    Ok(fixed)
}
