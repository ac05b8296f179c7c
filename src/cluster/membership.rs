//! Membership: this instance's `_spooky_node` row and its lease. Time is
//! the database's (`time::now()`), so instances need no agreeing clocks.

use surrealdb::types as sdb;

use super::{Cluster, Peer};
use crate::db::schema::NODE_TABLE;
use crate::db::{Db, DbError, Query};

/// Renews this instance's lease and reads the live instances: one round
/// trip. Rows of instances gone for an hour are deleted on the way.
pub async fn renew(db: &Db, cluster: &Cluster) -> Result<Vec<Peer>, DbError> {
    let mut q = Query::new(format!(
        "UPSERT type::record('{NODE_TABLE}', $node) SET address = $address, \
         started = <datetime> $started, heartbeat = time::now(), \
         lease_until = time::now() + <duration> $lease RETURN NONE;\n\
         DELETE {NODE_TABLE} WHERE lease_until < time::now() - 1h RETURN NONE;\n\
         SELECT record::id(id) AS id, address FROM {NODE_TABLE} \
         WHERE lease_until > time::now() ORDER BY id"
    ));
    q.set("node", cluster.node().to_string());
    q.set("address", cluster.settings.advertise_url.clone());
    q.set("started", sdb::Value::Datetime(cluster.started.into()));
    q.set("lease", format!("{}ms", cluster.settings.lease.as_millis()));
    let mut response = db.run(q).await?;
    let rows: Vec<sdb::Value> = response.take(2)?;
    let mut peers = Vec::with_capacity(rows.len());
    for row in rows {
        let sdb::Value::Object(o) = row else { continue };
        let (Some(sdb::Value::String(id)), Some(sdb::Value::String(address))) =
            (o.get("id"), o.get("address"))
        else {
            continue;
        };
        peers.push(Peer {
            id: id.clone(),
            address: address.clone(),
        });
    }
    Ok(peers)
}

/// Leaves the cluster (SIGTERM, after the pipeline drained): releases every
/// view this instance holds and deletes its row, so that the others take
/// the views at their next renewal instead of after the lease.
pub async fn leave(db: &Db, cluster: &Cluster) -> Result<usize, DbError> {
    let _round = cluster.round.lock().await;
    cluster
        .left
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // By id, at the epochs held: an UPDATE that selects the rows through
    // the index on `node` while it changes `node` did not end on 3.3.5
    // (the call hung until its timeout).
    let held = cluster.holds.all();
    super::ownership::release(db, cluster, &held).await?;
    let q = Query::new(format!(
        "DELETE type::record('{NODE_TABLE}', $node) RETURN NONE"
    ))
    .bind("node", cluster.node().to_string());
    db.run(q).await?;
    cluster.holds.clear();
    Ok(held.len())
}
