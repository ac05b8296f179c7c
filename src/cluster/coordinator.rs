//! The coordinator: on each lease renewal, compares the holds this
//! instance keeps with the view rows and the live instances, and acts:
//! takes over the views the hash gives it whose holder is gone (or that
//! were released), hands over a few views the hash gives a live other
//! instance, and lets go of the views another instance took.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;

use super::{Cluster, membership, ownership};
use crate::api::AppState;
use crate::app::Core;
use crate::engine::ViewMeta;
use crate::shutdown::Shutdown;

/// Most views handed over per renewal: a joining instance takes its share
/// gradually, so that no instance rebuilds many views at once.
const HAND_OVER_PER_ROUND: usize = 64;

/// Views taken over at once (each one a registration: its tables loaded,
/// its result computed, its edges written).
const TAKE_OVER_AT_ONCE: usize = 8;

/// Runs until shutdown, once SSP is ready.
pub async fn run(state: Arc<AppState>, cluster: Arc<Cluster>, shutdown: Shutdown) {
    let mut readiness = state.readiness();
    tokio::select! {
        biased;
        () = shutdown.wait() => return,
        ready = readiness.wait() => if !ready { return },
    }
    let mut tick = tokio::time::interval(cluster.renew_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        let Some(core) = state.try_core() else {
            continue;
        };
        // A round is not cut off by the shutdown (its calls are bounded by
        // the call timeout): the leave waits for it, then no round follows.
        let _round = cluster.round.lock().await;
        if cluster.left.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Err(error) = round(&state, core, &cluster).await {
            tracing::warn!(%error, "cluster: a round of lease renewal and holds failed; the next one tries again");
        }
    }
}

/// What one round decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Held here, but the row names another instance or epoch, or is gone.
    pub lost: Vec<Arc<str>>,
    /// Held here, but the hash gives them to another live instance.
    pub hand_over: Vec<(Arc<str>, u64)>,
    /// Free (no holder, a gone holder, or this instance's id from an
    /// earlier run), and the hash gives them to this instance.
    pub take_over: Vec<ownership::HoldRow>,
}

/// Decides a round from the holds taken before the rows were read (a view
/// registered after that snapshot is not in it, so it is never mistaken
/// for one whose row is gone).
pub fn plan(
    me: &str,
    held: &[(Arc<str>, u64)],
    rows: &[ownership::HoldRow],
    peers: &[super::Peer],
) -> Plan {
    let live: HashSet<&str> = peers.iter().map(|p| p.id.as_str()).collect();
    let held_map: std::collections::HashMap<&str, u64> =
        held.iter().map(|(v, e)| (v.as_ref(), *e)).collect();
    let mut out = Plan::default();
    let mut seen: HashSet<&str> = HashSet::new();
    for row in rows {
        seen.insert(row.view.as_str());
        let wanted_here = ownership::rendezvous(&row.view, peers).is_some_and(|p| p.id == me);
        match held_map.get(row.view.as_str()) {
            Some(&epoch) if row.node.as_deref() == Some(me) && row.epoch == epoch => {
                if !wanted_here && out.hand_over.len() < HAND_OVER_PER_ROUND {
                    out.hand_over.push((row.view.as_str().into(), epoch));
                }
            }
            Some(_) => out.lost.push(row.view.as_str().into()),
            None => {
                let free = match row.node.as_deref() {
                    None => true,
                    Some(n) => n == me || !live.contains(n),
                };
                if free && wanted_here {
                    out.take_over.push(row.clone());
                }
            }
        }
    }
    for (view, _) in held {
        if !seen.contains(view.as_ref()) {
            out.lost.push(view.clone());
        }
    }
    out
}

/// One round: renew, read, act.
async fn round(state: &AppState, core: &Core, cluster: &Cluster) -> Result<(), String> {
    let db = &state.db;
    let peers = membership::renew(db, cluster)
        .await
        .map_err(|e| format!("renewing the lease: {e}"))?;
    cluster.set_peers(peers);
    let held = cluster.holds.all();
    let rows = ownership::all_holds(db)
        .await
        .map_err(|e| format!("reading the holds: {e}"))?;
    let plan = plan(cluster.node(), &held, &rows, &cluster.peers());
    metrics::gauge!("ssp_cluster_views_held").set(held.len() as f64);

    if !plan.lost.is_empty() {
        tracing::info!(
            views = plan.lost.len(),
            "cluster: views another instance took (or that were removed) leave this one"
        );
        metrics::counter!("ssp_cluster_views_lost_total").increment(plan.lost.len() as u64);
        core.pipeline
            .disown(plan.lost)
            .await
            .map_err(|e| e.to_string())?;
    }
    if !plan.hand_over.is_empty() {
        tracing::info!(
            views = plan.hand_over.len(),
            "cluster: handing views over to the instances the hash gives them"
        );
        let ids = plan.hand_over.iter().map(|(v, _)| v.clone()).collect();
        core.pipeline.disown(ids).await.map_err(|e| e.to_string())?;
        ownership::release(db, cluster, &plan.hand_over)
            .await
            .map_err(|e| format!("releasing views: {e}"))?;
        metrics::counter!("ssp_cluster_views_handed_over_total")
            .increment(plan.hand_over.len() as u64);
    }
    if !plan.take_over.is_empty() {
        take_over(state, core, cluster, plan.take_over).await?;
    }
    Ok(())
}

/// Takes over free views: each is claimed (epoch raised), the engine's
/// versions raised above those its edges (and the kept versions) show,
/// registered from its row as
/// `POST /view/register` would, and its edges the former holder left that
/// are not in its result deleted.
async fn take_over(
    state: &AppState,
    core: &Core,
    cluster: &Cluster,
    rows: Vec<ownership::HoldRow>,
) -> Result<(), String> {
    let db = &state.db;
    let started = std::time::Instant::now();
    // Versions kept for deleted edges: a record that re-enters a view must
    // not come back below a version a client saw.
    let kept = crate::sink::reconcile::read_kept_versions(db)
        .await
        .map_err(|e| format!("reading kept versions: {e}"))?
        .into_iter()
        .map(|(r, v)| (r, v + 1))
        .collect();
    core.pipeline
        .raise_versions(kept)
        .await
        .map_err(|e| e.to_string())?;
    let ids: Vec<String> = rows.iter().map(|r| r.view.clone()).collect();
    let metas = crate::bootstrap::restore::read_view_rows(db, Some(&ids))
        .await
        .map_err(|e| format!("reading view rows: {e}"))?;
    let count = rows.len();
    let taken = futures::stream::iter(rows.into_iter().filter_map(|row| {
        let meta = metas.iter().find(|m| *m.id == *row.view)?.clone();
        Some((row, meta))
    }))
    .map(|(row, meta)| take_one(state, core, cluster, row, meta))
    .buffer_unordered(TAKE_OVER_AT_ONCE)
    .filter(|taken| std::future::ready(*taken))
    .count()
    .await;
    metrics::counter!("ssp_cluster_views_taken_over_total").increment(taken as u64);
    tracing::info!(
        taken,
        of = count,
        took_ms = started.elapsed().as_millis() as u64,
        "cluster: views taken over"
    );
    Ok(())
}

async fn take_one(
    state: &AppState,
    core: &Core,
    cluster: &Cluster,
    row: ownership::HoldRow,
    meta: ViewMeta,
) -> bool {
    let db = &state.db;
    let view = row.view.clone();
    let epoch = match ownership::claim(db, cluster, &view, row.node.as_deref(), row.epoch).await {
        Ok(Some(epoch)) => epoch,
        Ok(None) => return false,
        Err(error) => {
            tracing::warn!(%view, %error, "cluster: claiming a view failed");
            return false;
        }
    };
    cluster.holds.set(view.as_str().into(), epoch);
    let edges = match ownership::view_edges(db, &view).await {
        Ok(edges) => edges,
        Err(error) => {
            tracing::warn!(%view, %error, "cluster: reading a taken view's edges failed; it is released");
            release_again(state, cluster, &view, epoch).await;
            return false;
        }
    };
    let records: Vec<_> = edges.iter().map(|(r, _)| r.clone()).collect();
    // One above what the edges show: the former holder gave that version to
    // the content it had seen, and the record may have changed since (while
    // it was gone). A client then fetches the view's records once more,
    // rather than keep an older copy under an equal version.
    let above: Vec<_> = edges.into_iter().map(|(r, v)| (r, v + 1)).collect();
    if let Err(error) = core.pipeline.raise_versions(above).await {
        tracing::warn!(%view, %error, "cluster: raising a taken view's versions failed; it is released");
        release_again(state, cluster, &view, epoch).await;
        return false;
    }
    if let Err(error) = crate::api::views::register_view(state, core, meta).await {
        // Kept held (not released), so that instances do not pass a view
        // that no longer registers back and forth: it stays as it is.
        tracing::error!(%view, %error, "cluster: a view taken over does not register here; its edges stay as they were");
        return false;
    }
    match core.pipeline.prune(view.as_str().into(), records).await {
        Ok(pruned) => tracing::debug!(%view, epoch, pruned, "cluster: view taken over"),
        Err(error) => {
            tracing::warn!(%view, %error, "cluster: deleting a taken view's stale edges failed")
        }
    }
    true
}

async fn release_again(state: &AppState, cluster: &Cluster, view: &str, epoch: u64) {
    cluster.holds.remove(view);
    let _ = ownership::release(&state.db, cluster, &[(view.into(), epoch)]).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Peer;

    fn peer(id: &str) -> Peer {
        Peer {
            id: id.into(),
            address: String::new(),
        }
    }

    fn row(view: &str, node: Option<&str>, epoch: u64) -> ownership::HoldRow {
        ownership::HoldRow {
            view: view.into(),
            node: node.map(str::to_owned),
            epoch,
        }
    }

    #[test]
    fn a_round_takes_free_views_and_lets_go_of_lost_ones() {
        let peers = [peer("a"), peer("b")];
        // Views the hash gives to "a" and to "b".
        let (mut for_a, mut for_b) = (Vec::new(), Vec::new());
        for i in 0..40 {
            let v = format!("v{i}");
            match ownership::rendezvous(&v, &peers).map(|p| p.id.as_str()) {
                Some("a") => for_a.push(v),
                _ => for_b.push(v),
            }
        }
        let held: Vec<(Arc<str>, u64)> = vec![
            (for_a[0].as_str().into(), 3), // still ours
            (for_a[1].as_str().into(), 3), // taken by b at epoch 4
            (for_b[0].as_str().into(), 1), // ours, but the hash says b
            ("gone".into(), 2),            // its row was deleted
        ];
        let rows = vec![
            row(&for_a[0], Some("a"), 3),
            row(&for_a[1], Some("b"), 4),
            row(&for_b[0], Some("a"), 1),
            row(&for_a[2], Some("dead"), 7), // holder gone: ours to take
            row(&for_a[3], None, 2),         // released: ours to take
            row(&for_a[4], Some("b"), 1),    // held by a live b: left alone
            row(&for_b[1], None, 0),         // free, but b's to take
        ];
        let p = plan("a", &held, &rows, &peers);
        assert_eq!(
            p.lost,
            vec![Arc::<str>::from(for_a[1].as_str()), "gone".into()]
        );
        assert_eq!(p.hand_over, vec![(Arc::<str>::from(for_b[0].as_str()), 1)]);
        assert_eq!(
            p.take_over,
            vec![row(&for_a[2], Some("dead"), 7), row(&for_a[3], None, 2)]
        );
    }
}
