//! The edge sink: where view membership is written into SurrealDB.
//!
//! Every write here is one round trip, and all the edge changes of one
//! (group-committed) batch go into ONE transaction. Everything user-supplied
//! (view ids, record ids, client ids, params) is bound, never pasted into
//! the SurrealQL text.
//!
//! Edges have a deterministic id, `_spooky_list_ref:[<view id>, <record>]`,
//! on top of the unique (in, out) index, so a retried transaction can only
//! rewrite the same edges, never duplicate them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ahash::AHashMap;
use chrono::{DateTime, Utc};
use surrealdb::types as sdb;

use crate::cluster::FENCED;
use crate::cluster::holds::{FENCE_STATEMENT, Holds};
use crate::db::schema::{EDGE_TABLE, NODE_TABLE, QUERY_TABLE, VERSION_TABLE, edge_id, view_row};
use crate::db::values::to_surreal;
use crate::db::{Db, DbError, Query};
use crate::engine::value::RecordId;
use crate::engine::{ViewDelta, ViewMeta};

pub mod reconcile;

/// Most edges written per transaction where a write can be as big as a
/// view's whole result set (a registration, a reconcile). SurrealDB's cost
/// per edge grows with the transaction (in 3.3.5 each row of an `INSERT`
/// sets a savepoint, and the in-memory engine's savepoint clones the
/// transaction's whole write set, so n edges cost O(n^2)): 40k edges
/// committed in 43 s in parts of 1,000, while one transaction of them never
/// finished within a 30 s call timeout (mem engine, debug build).
pub const MAX_EDGES_PER_TX: usize = 1_000;

/// One fixed hasher for [`EdgeChanges::edge_hashes`]: hashes from different
/// groups are compared with each other.
fn edge_hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(0x5350_5350, 0x6564_6765, 0x6861_7368, 0x6b65_7973)
}

#[derive(Clone, Debug)]
enum EdgeOp {
    Upsert { client_id: Arc<str>, version: u64 },
    Delete,
}

/// The edge changes waiting to be committed, coalesced per edge: when a
/// record leaves and re-enters a view within one group, only the final state
/// is written, so the statements of a transaction never depend on order.
#[derive(Default)]
pub struct EdgeChanges {
    edges: AHashMap<(Arc<str>, RecordId), EdgeOp>,
    /// Views whose row and remaining edges are deleted in this transaction.
    removed_views: Vec<Arc<str>>,
    /// Delete every edge and view row first (`/reset`).
    reset: bool,
}

/// Counts of what a delta asks for, as reported to the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct EdgeCounts {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
}

impl EdgeCounts {
    pub fn of(deltas: &[ViewDelta]) -> EdgeCounts {
        let mut c = EdgeCounts::default();
        for d in deltas {
            c.created += d.created.len();
            c.updated += d.updated.len();
            c.deleted += d.deleted.len();
        }
        c
    }

    pub fn total(&self) -> usize {
        self.created + self.updated + self.deleted
    }
}

impl EdgeChanges {
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty() && self.removed_views.is_empty() && !self.reset
    }

    pub fn len(&self) -> usize {
        self.edges.len() + self.removed_views.len()
    }

    pub fn absorb(&mut self, deltas: &[ViewDelta]) {
        for d in deltas {
            for (r, v) in d.created.iter().chain(&d.updated) {
                self.edges.insert(
                    (d.view.clone(), r.clone()),
                    EdgeOp::Upsert {
                        client_id: d.client_id.clone(),
                        version: *v,
                    },
                );
            }
            for r in &d.deleted {
                self.edges
                    .insert((d.view.clone(), r.clone()), EdgeOp::Delete);
            }
        }
    }

    /// Whether these changes write an edge of a view `of` picks.
    pub fn touches_any(&self, of: impl Fn(&Arc<str>) -> bool) -> bool {
        self.edges.keys().any(|(view, _)| of(view))
    }

    /// A hash of each edge these changes write, so that the pipeline can
    /// keep two in-flight transactions that write the same edge in order.
    /// (A reset or a removed view writes every edge of a view; the pipeline
    /// runs those alone.)
    pub fn edge_hashes(&self) -> Vec<u64> {
        let hasher = edge_hasher();
        self.edges.keys().map(|k| hasher.hash_one(k)).collect()
    }

    /// These changes as transactions of at most `max_edges` edges each (the
    /// first one also carries the reset and the removed views): for writes
    /// that may be as big as a view's whole result set, so that no one call
    /// grows with it. Edges are independent of each other (see above), so the
    /// split needs no order.
    pub fn split(self, max_edges: usize) -> Vec<EdgeChanges> {
        let max_edges = max_edges.max(1);
        if self.edges.len() <= max_edges {
            return vec![self];
        }
        let EdgeChanges {
            edges,
            removed_views,
            reset,
        } = self;
        let mut parts = vec![EdgeChanges {
            edges: AHashMap::with_capacity(max_edges),
            removed_views,
            reset,
        }];
        for (key, op) in edges {
            if parts.last().is_some_and(|p| p.edges.len() >= max_edges) {
                parts.push(EdgeChanges {
                    edges: AHashMap::with_capacity(max_edges),
                    ..Default::default()
                });
            }
            if let Some(part) = parts.last_mut() {
                part.edges.insert(key, op);
            }
        }
        parts
    }

    /// Removes a view's row and any edge of it that is still there.
    pub fn remove_view(&mut self, view: Arc<str>) {
        self.edges.retain(|(v, _), _| *v != view);
        self.removed_views.push(view);
    }

    pub fn reset(&mut self) {
        *self = EdgeChanges {
            reset: true,
            ..Default::default()
        };
    }

    /// The one transaction that commits these changes.
    pub fn to_query(&self, now: DateTime<Utc>) -> Query {
        self.to_fenced_query(now, None)
    }

    /// The views these changes write, once each or more.
    pub fn views(&self) -> impl Iterator<Item = &Arc<str>> {
        self.edges
            .keys()
            .map(|(v, _)| v)
            .chain(self.removed_views.iter())
    }

    /// [`EdgeChanges::to_query`], headed by the cluster's fence when `holds`
    /// is given (see [`crate::cluster::holds::FENCE_STATEMENT`]).
    pub fn to_fenced_query(&self, now: DateTime<Utc>, holds: Option<&Holds>) -> Query {
        let mut q = Query::transaction();
        if let Some(holds) = holds
            && !self.reset
        {
            q.push(FENCE_STATEMENT);
            q.set("fence", holds.fence(self.views()));
            q.set("fence_node", holds.node().to_string());
        }
        if self.reset {
            q.push(format!("DELETE {EDGE_TABLE} RETURN NONE"));
            q.push(format!("DELETE {QUERY_TABLE} RETURN NONE"));
            // The engine forgets every record: versions start again.
            q.push(format!("DELETE {VERSION_TABLE} RETURN NONE"));
        }
        let mut upserts: Vec<sdb::Value> = Vec::new();
        let mut deletes: Vec<sdb::Value> = Vec::new();
        let updated_at = sdb::Value::Datetime(now.into());
        for ((view, record), op) in &self.edges {
            match op {
                EdgeOp::Upsert { client_id, version } => {
                    let mut row = sdb::Object::new();
                    row.insert(
                        "id".to_string(),
                        sdb::Value::RecordId(edge_id(view, record)),
                    );
                    row.insert("in".to_string(), sdb::Value::RecordId(view_row(view)));
                    row.insert(
                        "out".to_string(),
                        to_surreal(&crate::engine::value::Value::thing(record.clone())),
                    );
                    row.insert(
                        "clientId".to_string(),
                        sdb::Value::String(client_id.to_string()),
                    );
                    row.insert(
                        "version".to_string(),
                        sdb::Value::Number(sdb::Number::Int(*version as i64)),
                    );
                    row.insert("updatedAt".to_string(), updated_at.clone());
                    if let Some(holds) = holds {
                        row.insert(
                            "node".to_string(),
                            sdb::Value::String(holds.node().to_string()),
                        );
                    }
                    upserts.push(sdb::Value::Object(row));
                }
                EdgeOp::Delete => deletes.push(sdb::Value::RecordId(edge_id(view, record))),
            }
        }
        if !upserts.is_empty() {
            let node = if holds.is_some() {
                ", node = $input.node"
            } else {
                ""
            };
            q.push(format!(
                "INSERT RELATION INTO {EDGE_TABLE} $upserts ON DUPLICATE KEY UPDATE \
                 version = $input.version, clientId = $input.clientId, updatedAt = $input.updatedAt{node} \
                 RETURN NONE"
            ));
            q.set("upserts", sdb::Value::Array(upserts.into()));
        }
        if !deletes.is_empty() {
            q.push("DELETE $deletes RETURN NONE");
            q.set("deletes", sdb::Value::Array(deletes.into()));
        }
        if !self.removed_views.is_empty() {
            let rows: Vec<sdb::Value> = self
                .removed_views
                .iter()
                .map(|v| sdb::Value::RecordId(view_row(v)))
                .collect();
            q.push(format!(
                "DELETE {EDGE_TABLE} WHERE in INSIDE $removed RETURN NONE"
            ));
            q.push("DELETE $removed RETURN NONE");
            q.set("removed", sdb::Value::Array(rows.into()));
        }
        q
    }
}

/// Writes edges and view rows. Cheap to clone.
#[derive(Clone)]
pub struct EdgeSink {
    /// One connection per write slot (see [`EdgeSink::with_writers`]). The
    /// first is SSP's main connection, which also writes the view rows.
    writers: Arc<[Arc<Db>]>,
    /// Round trips made by this sink: the figure behind "1 ingest = 1 round
    /// trip", unaffected by the change worker's own reads.
    round_trips: Arc<AtomicU64>,
    /// When clustered: the views this instance holds. Every transaction is
    /// fenced by them, and a registration takes its view's hold.
    holds: Option<Arc<Holds>>,
}

impl EdgeSink {
    /// A sink on SSP's main connection `db`, with `slots` write slots for
    /// group commits in flight at once.
    ///
    /// Over `ws://` every slot gets a connection of its own. Transactions in
    /// flight together on ONE connection barely overlap (measured on
    /// SurrealDB 3.3.5 by `ssp-bench`'s "writers per connection" rows: two
    /// writers of 16-edge transactions commit 7,100-8,000 edges/s on one
    /// connection and 10,300-12,300 on a connection each, against
    /// 5,900-6,700 for one writer of 32-edge transactions), so pipelined
    /// commits need their own connections to run in parallel. An embedded
    /// engine already runs one connection's transactions in parallel, and a
    /// second embedded connection would open a second store, so there all
    /// slots share `db`. A slot whose connection cannot be opened shares
    /// `db` too: slower, never wrong.
    pub async fn with_writers(db: Arc<Db>, slots: usize) -> Self {
        let mut writers = vec![Arc::clone(&db)];
        let settings = db.settings();
        for slot in 1..slots.max(1) {
            if !settings.endpoint.is_remote() {
                writers.push(Arc::clone(&db));
                continue;
            }
            let opened =
                match tokio::time::timeout(settings.call_timeout, Db::connect(settings)).await {
                    Ok(opened) => opened.map_err(|e| e.to_string()),
                    Err(_) => Err("the connect timed out".to_owned()),
                };
            match opened {
                Ok(conn) => writers.push(Arc::new(conn)),
                Err(error) => {
                    tracing::warn!(slot, %error, "could not open a write connection; the slot shares the main one");
                    writers.push(Arc::clone(&db));
                }
            }
        }
        EdgeSink {
            writers: writers.into(),
            round_trips: Arc::default(),
            holds: None,
        }
    }

    /// This sink, fencing every write by `holds` (a clustered instance).
    pub fn fenced_by(mut self, holds: Option<Arc<Holds>>) -> Self {
        self.holds = holds;
        self
    }

    /// The holds that fence this sink's writes, when clustered.
    pub fn holds(&self) -> Option<&Arc<Holds>> {
        self.holds.as_ref()
    }

    /// How many write slots [`EdgeSink::write_on`] takes.
    pub fn slots(&self) -> usize {
        self.writers.len()
    }

    /// The connections the write slots opened besides the main one (none
    /// embedded), for `/health` to ping.
    pub fn own_connections(&self) -> Vec<Arc<Db>> {
        self.writers
            .iter()
            .filter(|w| !Arc::ptr_eq(w, self.db()))
            .cloned()
            .collect()
    }

    pub fn round_trips(&self) -> &Arc<AtomicU64> {
        &self.round_trips
    }

    /// One counted round trip on `conn`.
    async fn run_on(&self, conn: &Db, q: Query) -> Result<(), DbError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        conn.run(q).await.map(|_| ())
    }

    /// SSP's main connection.
    pub fn db(&self) -> &Arc<Db> {
        &self.writers[0]
    }

    /// Commits `changes` in one transaction: one round trip.
    pub async fn write(&self, changes: &EdgeChanges) -> Result<(), DbError> {
        self.write_on(0, changes).await
    }

    /// Commits `changes` in one transaction on write slot `slot` (taken
    /// modulo [`EdgeSink::slots`]): one round trip.
    #[tracing::instrument(skip_all, fields(edges = changes.len(), slot))]
    pub async fn write_on(&self, slot: usize, changes: &EdgeChanges) -> Result<(), DbError> {
        if changes.is_empty() {
            return Ok(());
        }
        let conn = &self.writers[slot % self.writers.len()];
        let q = changes.to_fenced_query(Utc::now(), self.holds.as_deref());
        self.run_on(conn, q).await?;
        if let Some(holds) = &self.holds {
            if changes.reset {
                holds.clear();
            }
            // Their rows are gone: nothing is held any more.
            for view in &changes.removed_views {
                holds.remove(view);
            }
        }
        Ok(())
    }

    /// Commits `changes` without the cluster's fence: for an unregister of a
    /// view no live instance holds (its holder is gone), which removes the
    /// row and edges whoever took them meanwhile (a taker's own writes for
    /// it are then fenced: the row is gone).
    pub async fn write_unfenced(&self, changes: &EdgeChanges) -> Result<(), DbError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.run_on(self.db(), changes.to_query(Utc::now())).await
    }

    /// Upserts a view's `_spooky_query` row: one round trip.
    ///
    /// With `owner_changed` (a re-registration that names another viewer,
    /// or a repair that cannot know), the same transaction rewrites the
    /// owner of the view's existing edges: each edge computes its `owner`
    /// from the view row when written (migration 0005), and an edge that
    /// kept the old owner would stay readable by the old viewer.
    #[tracing::instrument(skip_all, fields(view = %meta.id))]
    pub async fn upsert_view(&self, meta: &ViewMeta, owner_changed: bool) -> Result<(), DbError> {
        let params =
            crate::db::values::json_to_surreal(&serde_json::Value::Object(meta.params.clone()));
        let owner = match meta.owner.as_deref().and_then(RecordId::parse) {
            Some(r) => to_surreal(&crate::engine::value::Value::thing(r)),
            None => sdb::Value::None,
        };
        let mut q = Query::transaction();
        let epoch_at = match &self.holds {
            None => {
                q.push(
                    "UPSERT $row CONTENT { clientId: $clientId, surql: $surql, params: $params, \
                     ttl: <duration> $ttl, lastActiveAt: <datetime> $lastActiveAt, owner: $owner } \
                     RETURN NONE",
                );
                None
            }
            Some(holds) => {
                // Registering takes the view's hold, unless a live instance
                // has it (then the caller was routed wrongly: it retries).
                // The epoch stays when this instance holds it already, and
                // rises otherwise, which fences out any former holder.
                q.push("LET $holder = $row.node");
                q.push(format!(
                    "IF $holder != NONE AND $holder != $node {{ \
                     IF type::record('{NODE_TABLE}', $holder).lease_until > time::now() {{ \
                     THROW '{FENCED}: the view is held by instance ' + $holder; }}; }}"
                ));
                let at = q.push(
                    "UPSERT $row SET clientId = $clientId, surql = $surql, params = $params, \
                     ttl = <duration> $ttl, lastActiveAt = <datetime> $lastActiveAt, \
                     owner = $owner, node = $node, \
                     epoch = IF $holder = $node AND epoch = $held { epoch } ELSE { (epoch OR 0) + 1 } \
                     RETURN VALUE epoch",
                );
                q.set("node", holds.node().to_string());
                q.set(
                    "held",
                    match holds.epoch(&meta.id) {
                        Some(e) => sdb::Value::Number(sdb::Number::Int(e as i64)),
                        None => sdb::Value::None,
                    },
                );
                Some(at)
            }
        };
        if owner_changed {
            q.push(format!(
                "UPDATE {EDGE_TABLE} SET owner = $owner WHERE in = $row AND owner != $owner \
                 RETURN NONE"
            ));
        }
        let q = q
            .bind("owner", owner)
            .bind("row", view_row(&meta.id))
            .bind("clientId", meta.client_id.to_string())
            .bind("surql", meta.sql.clone())
            .bind("params", params)
            .bind("ttl", meta.ttl.clone())
            .bind(
                "lastActiveAt",
                sdb::Value::Datetime(meta.last_active_at.into()),
            );
        let (Some(holds), Some(at)) = (&self.holds, epoch_at) else {
            return self.run_on(self.db(), q).await;
        };
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut response = self.db().run(q).await?;
        let epochs: Vec<i64> = response.take(at)?;
        match epochs.first() {
            Some(&epoch) => {
                holds.set(meta.id.clone(), epoch.max(0) as u64);
                Ok(())
            }
            None => Err(DbError::Other {
                op: "upsert_view".into(),
                message: "the view row's upsert returned no epoch".into(),
            }),
        }
    }

    /// Sets a view's `lastActiveAt`: one round trip.
    pub async fn touch_view(&self, view: &str, at: DateTime<Utc>) -> Result<(), DbError> {
        let q = Query::new("UPDATE $row SET lastActiveAt = $at RETURN NONE")
            .bind("row", view_row(view))
            .bind("at", sdb::Value::Datetime(at.into()));
        self.run_on(self.db(), q).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Key;

    #[test]
    fn a_big_change_set_splits_into_bounded_parts() {
        let rid = |k: i64| RecordId::new("t", Key::Int(k));
        let delta = ViewDelta {
            view: "v".into(),
            client_id: "c".into(),
            created: (0..10).map(|k| (rid(k), 1)).collect(),
            updated: vec![],
            deleted: vec![rid(10), rid(11)],
        };
        let mut changes = EdgeChanges::default();
        changes.absorb(std::slice::from_ref(&delta));
        changes.remove_view("old".into());
        let parts = changes.split(5);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.edges.len() <= 5));
        assert_eq!(parts.iter().map(|p| p.edges.len()).sum::<usize>(), 12);
        assert_eq!(parts[0].removed_views.len(), 1, "the first part removes");
        assert!(parts[1..].iter().all(|p| p.removed_views.is_empty()));
    }
}
