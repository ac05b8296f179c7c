//! Holds on views: which instance should hold a view (rendezvous hashing),
//! and the transactions that take and release one.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use surrealdb::types as sdb;

use super::{Cluster, Peer};
use crate::db::schema::{EDGE_TABLE, NODE_TABLE, QUERY_TABLE, view_row};
use crate::db::values::record_id_from_surreal;
use crate::db::{Db, DbError, Query};
use crate::engine::value::RecordId;

/// The live instance that should hold `view`: the one whose hash with the
/// view id is highest. Every instance computes the same answer from the
/// same peers, and when an instance joins or leaves only the views it wins
/// or held move. SHA-256, not a seeded hasher: the answer must be the same
/// in every process, on every CPU.
pub fn rendezvous<'a>(view: &str, peers: &'a [Peer]) -> Option<&'a Peer> {
    peers.iter().max_by_key(|p| score(&p.id, view))
}

fn score(node: &str, view: &str) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(node.as_bytes());
    h.update([0]);
    h.update(view.as_bytes());
    let digest = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// A view row's hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    pub view: String,
    pub node: Option<String>,
    pub epoch: u64,
}

fn view_id(v: Option<&sdb::Value>) -> Option<String> {
    match v? {
        sdb::Value::String(s) => Some(s.clone()),
        sdb::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn hold_rows(rows: Vec<sdb::Value>) -> Vec<HoldRow> {
    rows.into_iter()
        .filter_map(|row| {
            let sdb::Value::Object(o) = row else {
                return None;
            };
            Some(HoldRow {
                view: view_id(o.get("id"))?,
                node: match o.get("node") {
                    Some(sdb::Value::String(s)) => Some(s.clone()),
                    _ => None,
                },
                epoch: match o.get("epoch") {
                    Some(sdb::Value::Number(sdb::Number::Int(e))) => (*e).max(0) as u64,
                    _ => 0,
                },
            })
        })
        .collect()
}

/// Every view row's hold: one round trip.
pub async fn all_holds(db: &Db) -> Result<Vec<HoldRow>, DbError> {
    let mut response = db
        .run(Query::new(format!(
            "SELECT record::id(id) AS id, node, epoch FROM {QUERY_TABLE}"
        )))
        .await?;
    Ok(hold_rows(response.take(0)?))
}

/// The views whose row names `node`, with their epochs.
pub async fn held_rows(db: &Db, node: &str) -> Result<HashMap<String, u64>, DbError> {
    let mut response = db
        .run(
            Query::new(format!(
                "SELECT record::id(id) AS id, node, epoch FROM {QUERY_TABLE} WHERE node = $node"
            ))
            .bind("node", node.to_string()),
        )
        .await?;
    Ok(hold_rows(response.take(0)?)
        .into_iter()
        .map(|r| (r.view, r.epoch))
        .collect())
}

/// The instance whose row holds `view` while its lease runs; `None` when
/// the view is unknown, free, or its holder is gone.
pub async fn live_holder(db: &Db, view: &str) -> Result<Option<String>, DbError> {
    let mut response = db
        .run(
            Query::new(format!(
                "LET $holder = $row.node; \
                 IF $holder != NONE AND type::record('{NODE_TABLE}', $holder).lease_until > time::now() \
                 {{ $holder }} ELSE {{ NONE }}"
            ))
            .bind("row", view_row(view)),
        )
        .await?;
    Ok(match response.take::<sdb::Value>(1)? {
        sdb::Value::String(s) => Some(s),
        _ => None,
    })
}

/// Takes the hold on `view` from `from` at `from_epoch` (as read), if the
/// row still says so and `from` is none, this instance, or an instance
/// whose lease has passed: compare-and-set in one transaction. Returns the
/// new epoch, or `None` when someone else moved first.
pub async fn claim(
    db: &Db,
    cluster: &Cluster,
    view: &str,
    from: Option<&str>,
    from_epoch: u64,
) -> Result<Option<u64>, DbError> {
    let mut q = Query::transaction();
    q.push(format!(
        "LET $alive = IF $from = NONE OR $from = $node {{ false }} \
         ELSE {{ type::record('{NODE_TABLE}', $from).lease_until > time::now() }}"
    ));
    let at = q.push(
        "IF $alive { [] } ELSE { UPDATE $row SET node = $node, epoch = (epoch OR 0) + 1 \
         WHERE node = $from AND (epoch OR 0) = $from_epoch RETURN VALUE epoch }",
    );
    q.set("row", view_row(view));
    q.set("node", cluster.node().to_string());
    q.set(
        "from",
        match from {
            Some(f) => sdb::Value::String(f.to_string()),
            None => sdb::Value::None,
        },
    );
    q.set(
        "from_epoch",
        sdb::Value::Number(sdb::Number::Int(from_epoch as i64)),
    );
    let mut response = db.run(q).await?;
    let epochs: Vec<i64> = response.take(at)?;
    Ok(epochs.first().map(|e| (*e).max(0) as u64))
}

/// Releases `views` (each at the epoch held): their rows name no holder,
/// unless another instance took one meanwhile. One round trip.
pub async fn release(
    db: &Db,
    cluster: &Cluster,
    views: &[(std::sync::Arc<str>, u64)],
) -> Result<(), DbError> {
    if views.is_empty() {
        return Ok(());
    }
    let entries: Vec<sdb::Value> = views
        .iter()
        .map(|(v, e)| {
            let mut o = sdb::Object::new();
            o.insert("row".to_string(), sdb::Value::RecordId(view_row(v)));
            o.insert(
                "epoch".to_string(),
                sdb::Value::Number(sdb::Number::Int(*e as i64)),
            );
            sdb::Value::Object(o)
        })
        .collect();
    let q = Query::new(
        "FOR $r IN $views { UPDATE $r.row SET node = NONE \
         WHERE node = $node AND epoch = $r.epoch RETURN NONE; }",
    )
    .bind("views", sdb::Value::Array(entries.into()))
    .bind("node", cluster.node().to_string());
    db.run(q).await.map(|_| ())
}

/// The edges of `view` as they are: the records, with the versions shown.
pub async fn view_edges(db: &Db, view: &str) -> Result<Vec<(RecordId, u64)>, DbError> {
    let mut response = db
        .run(
            Query::new(format!(
                "SELECT out, version FROM {EDGE_TABLE} WHERE in = $row"
            ))
            .bind("row", view_row(view)),
        )
        .await?;
    let rows: Vec<sdb::Value> = response.take(0)?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let sdb::Value::Object(o) = row else {
                return None;
            };
            let record = match o.get("out") {
                Some(sdb::Value::RecordId(r)) => record_id_from_surreal(r)?,
                _ => return None,
            };
            let version = match o.get("version") {
                Some(sdb::Value::Number(sdb::Number::Int(v))) => (*v).max(0) as u64,
                _ => 0,
            };
            Some((record, version))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(ids: &[&str]) -> Vec<Peer> {
        ids.iter()
            .map(|id| Peer {
                id: id.to_string(),
                address: format!("http://{id}"),
            })
            .collect()
    }

    #[test]
    fn rendezvous_moves_only_the_views_of_the_instance_that_changed() {
        let three = peers(&["a", "b", "c"]);
        let two = peers(&["a", "b"]);
        let views: Vec<String> = (0..3000).map(|i| format!("view-{i}")).collect();
        let mut per_node: HashMap<&str, usize> = HashMap::new();
        for v in &views {
            let with_c = rendezvous(v, &three).unwrap();
            *per_node.entry(with_c.id.as_str()).or_default() += 1;
            let without_c = rendezvous(v, &two).unwrap();
            if with_c.id != "c" {
                assert_eq!(with_c, without_c, "{v} moved though its holder stayed");
            }
        }
        // Each of the three gets about a third.
        for (node, n) in per_node {
            assert!((800..1200).contains(&n), "{node} holds {n} of 3000");
        }
        // The same answer whatever the order of the peers.
        let reversed: Vec<Peer> = three.iter().rev().cloned().collect();
        for v in views.iter().take(100) {
            assert_eq!(rendezvous(v, &three), rendezvous(v, &reversed));
        }
    }
}
