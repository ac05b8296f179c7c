//! Re-convergence: make the edges in SurrealDB equal the engine's result
//! sets, whatever happened in between.
//!
//! Used at startup (the engine restored from a state file that may be older
//! than the last commits, or rebuilt from the database) and by the pipeline
//! after a commit failed for good: the engine had applied that batch, the
//! database never took its edges, and nothing else would write them again.

use std::collections::{BTreeMap, HashMap};

use surrealdb::types as sdb;

use super::{EdgeChanges, EdgeSink, MAX_EDGES_PER_TX};
use crate::db::records::read_records;
use crate::db::schema::{EDGE_TABLE, VERSION_TABLE};
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

/// Every edge in the database; with `node` (clustered), the edges of the
/// views whose row names that instance.
pub async fn read_edges(db: &Db, node: Option<&str>) -> Result<Vec<EdgeRow>, DbError> {
    let q = match node {
        None => Query::new(format!(
            "SELECT record::id(in) AS view, out, version, clientId FROM {EDGE_TABLE}"
        )),
        Some(node) => Query::new(format!(
            "SELECT record::id(in) AS view, out, version, clientId FROM {EDGE_TABLE} \
             WHERE in.node = $node"
        ))
        .bind("node", node.to_string()),
    };
    let mut response = db.run(q).await?;
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

/// Every version kept in [`VERSION_TABLE`]: per record, the highest version
/// an edge SSP deleted showed.
pub async fn read_kept_versions(db: &Db) -> Result<Vec<(RecordId, u64)>, DbError> {
    let mut response = db
        .run(Query::new(format!(
            "SELECT record, version FROM {VERSION_TABLE}"
        )))
        .await?;
    let rows: Vec<sdb::Value> = response.take(0)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let sdb::Value::Object(o) = row else { continue };
        let (Some(sdb::Value::RecordId(r)), Some(sdb::Value::Number(sdb::Number::Int(v)))) =
            (o.get("record"), o.get("version"))
        else {
            continue;
        };
        let Some(record) = record_id_from_surreal(r) else {
            continue;
        };
        out.push((record, (*v).max(0) as u64));
    }
    Ok(out)
}

/// Raises every record's version to what [`VERSION_TABLE`] kept for it: a
/// version a client saw must never go back, even when the edge that showed
/// it is gone.
pub fn raise_to_kept(engine: &mut Engine, kept: &[(RecordId, u64)]) {
    for (record, version) in kept {
        engine.raise_version(record, *version);
    }
}

/// The writes that make `edges` equal the engine's result sets: missing or
/// stale edges (version or client id) upserted, extra ones deleted, with the
/// rows of views the engine does not know.
///
/// First every record's version is raised to the highest version any edge
/// shows for it: a version a client saw must never go back, and the engine
/// may hold an older one (a state file saved before the last commits).
///
/// `scoped` (clustered): the edges of a view the engine does not hold are
/// left alone, not removed: it may be another instance's, or one this
/// instance is taking over.
pub fn plan(engine: &mut Engine, edges: Vec<EdgeRow>, scoped: bool) -> EdgeChanges {
    let mut have = raise_to_edges(engine, edges);
    let metas: Vec<_> = engine.views().collect();
    let mut deltas: BTreeMap<String, ViewDelta> = BTreeMap::new();
    for meta in metas {
        deltas.insert(meta.id.to_string(), view_delta(engine, &meta, &mut have));
    }
    let mut changes = EdgeChanges::default();
    for ((view, record), _) in have {
        match deltas.get_mut(&view) {
            Some(d) => d.deleted.push(record),
            None if scoped => {}
            None => changes.remove_view(view.into()),
        }
    }
    let deltas: Vec<ViewDelta> = deltas.into_values().collect();
    changes.absorb(&deltas);
    changes
}

/// What makes one view's `edges` (as the database holds them) equal its
/// result set in the engine, as [`plan`] does for every view: for a view
/// registered again from its row, whose edges are mostly right already.
pub fn plan_view(engine: &mut Engine, view: &str, edges: &[EdgeRow]) -> ViewDelta {
    let edges = edges.iter().filter(|e| e.view == view).cloned().collect();
    let mut have = raise_to_edges(engine, edges);
    let Some(meta) = engine.view(view) else {
        return ViewDelta::default();
    };
    let mut delta = view_delta(engine, &meta, &mut have);
    delta
        .deleted
        .extend(have.into_keys().map(|(_, record)| record));
    delta.deleted.sort();
    delta
}

/// Raises every record's version to the highest version any of `edges`
/// shows for it (a version a client saw must never go back, and the engine
/// may hold an older one), and indexes them by (view, record).
fn raise_to_edges(
    engine: &mut Engine,
    edges: Vec<EdgeRow>,
) -> HashMap<(String, RecordId), (u64, String)> {
    let mut have = HashMap::with_capacity(edges.len());
    for e in edges {
        engine.raise_version(&e.record, e.version);
        have.insert((e.view, e.record), (e.version, e.client_id));
    }
    have
}

/// The edges `meta`'s view lacks (or holds at another version or client
/// id) as `created`; takes the edges it holds rightly out of `have`.
fn view_delta(
    engine: &Engine,
    meta: &crate::engine::ViewMeta,
    have: &mut HashMap<(String, RecordId), (u64, String)>,
) -> ViewDelta {
    let mut d = ViewDelta {
        view: meta.id.clone(),
        client_id: meta.client_id.clone(),
        ..Default::default()
    };
    for (r, version) in engine.view_records(&meta.id).unwrap_or_default() {
        match have.remove(&(meta.id.to_string(), r.clone())) {
            Some((v, client)) if v == version && *client == *meta.client_id => {}
            _ => d.created.push((r, version)),
        }
    }
    d
}

/// Conflicting attempts at one part of the startup reconcile before the
/// bootstrap gives up and starts over.
const CONFLICT_RETRIES: u32 = 8;

/// Makes the edges equal the engine at startup: reads the edges and the kept
/// versions, raises the engine's versions to them, refreshes from the
/// database every record whose edge the plan would write, plans again and
/// writes the fix (in bounded transactions); returns how many edges were
/// fixed.
///
/// The refresh is what keeps a stale state file from reaching clients: the
/// engine restored after a kill -9 may hold a record the database has
/// deleted since (its edges went with it) or content the record no longer
/// has. Planned from that, the reconcile would write edges for records that
/// are not in the view any more, at the state file's older versions, and
/// the change worker's catch-up would take them back only later (the soak
/// saw versions go down this way at every restart). Only the records the
/// plan touches are read, so a reconcile that finds the edges right costs
/// no extra read.
#[tracing::instrument(skip_all)]
pub async fn reconcile(engine: &mut Engine, sink: &EdgeSink) -> Result<usize, DbError> {
    let edges = read_edges(sink.db(), None).await?;
    let kept = read_kept_versions(sink.db()).await?;
    raise_to_kept(engine, &kept);
    let first = plan(engine, edges.clone(), false);
    let mut stale: Vec<RecordId> = first.edges.keys().map(|(_, r)| r.clone()).collect();
    stale.sort();
    stale.dedup();
    if !stale.is_empty() {
        let current = read_records(sink.db(), &stale).await?;
        // A record deleted since keeps its version as a floor: the change
        // worker's catch-up replays the feed from the state file's cursors,
        // and a page that ends before the delete brings the record back for
        // a moment, as new (at version 1 without the floor).
        let gone: Vec<(RecordId, u64)> = current
            .iter()
            .filter(|c| c.content.is_none())
            .filter_map(|c| Some((c.id.clone(), engine.version(&c.id)?)))
            .collect();
        engine.apply_batch(&current);
        for (record, version) in &gone {
            engine.raise_version(record, *version);
        }
        tracing::info!(
            records = stale.len(),
            kept = kept.len(),
            "reconcile: records the edges disagree with read again from the database"
        );
    }
    let changes = plan(engine, edges, false);
    if tracing::enabled!(tracing::Level::DEBUG) {
        for ((view, record), op) in &changes.edges {
            tracing::debug!(%view, %record, ?op, "reconcile: edge written");
        }
    }
    let fixed = changes.len();
    if fixed > 0 {
        tracing::info!(fixed, "edges reconciled with the engine");
        for part in changes.split(MAX_EDGES_PER_TX) {
            write_retrying_conflicts(sink, &part).await?;
        }
    }
    Ok(fixed)
}

/// Writes one part, retrying a transaction conflict at once (with a short
/// backoff) instead of failing the whole bootstrap attempt: under load the
/// records' own writers conflict with a reconcile that touches hundreds of
/// their edges, and every failed attempt cost a restore, a reconcile and a
/// backoff that doubled up to 5 s (the soak's restarts took 8-19 s to
/// become ready). The part is idempotent, so writing it again is safe.
async fn write_retrying_conflicts(sink: &EdgeSink, part: &EdgeChanges) -> Result<(), DbError> {
    let mut wait = std::time::Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        match sink.write(part).await {
            Err(e) if e.is_conflict() && attempt < CONFLICT_RETRIES => {
                tracing::debug!(attempt, error = %e, "reconcile: transaction conflict; writing the part again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_millis(500));
                attempt += 1;
            }
            result => return result,
        }
    }
}
