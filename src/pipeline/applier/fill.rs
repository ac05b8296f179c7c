//! A big registration's initial edges, written off the applier's loop.
//!
//! A view over a big table starts with as many edges as it has records,
//! written in transactions of [`MAX_EDGES_PER_TX`] one after another
//! (~1 ms an edge on SurrealDB 3.3.5: minutes for a million). Written
//! inline, every `/ingest` and every change the worker brings would wait
//! for all of them. So the applier registers the view in the engine, writes
//! its row, and hands the edges to a fill that runs beside the group
//! commits; the register call answers when the fill has committed them all,
//! as before.
//!
//! Exactness: a group commit whose edges include one of a filling view
//! waits for the fill first (see `ingest_group`), so every edge is written
//! in the engine's order; groups of other views do not wait. A view
//! operation waits for every group commit in flight, as before, but for a
//! fill only when it is about that view (an unregister, a changed
//! registration) or about everything (a reset, a flush). The same
//! registration sent again while it fills (what a client does after a 503
//! that said its edges are still being written) joins the fill and is
//! answered with it, without holding up anything.

use super::*;

/// Edges per transaction of a fill: far fewer than [`MAX_EDGES_PER_TX`], so
/// that each of its transactions holds the database only briefly beside the
/// group commits. Measured in a release build on embedded SurrealDB (20,000
/// edges, 2 runs each, `ssp-bench --only stall`): `/ingest` p99 during the
/// fill was 5.7-6.0x idle at 200 edges a transaction, 3.2-3.4x at 50 and
/// 2.5x at 20, while the fill took as long (11.5-11.8 s beside the ingests,
/// 5.8-6.4 s alone).
const FILL_EDGES_PER_TX: usize = 20;

/// A registration whose row and edges are being written.
pub(in crate::pipeline) struct Registration {
    pub(super) meta: ViewMeta,
    /// What the engine held for this id before (to go back to on failure).
    pub(super) previous: Option<(ViewMeta, Option<crate::engine::RequeryState>)>,
    pub(super) delta: ViewDelta,
    pub(super) reply: Reply<ViewDelta>,
}

/// A fill under way: the registration it writes, and the same registration
/// sent again meanwhile, answered when it ends.
pub(in crate::pipeline) struct Filling {
    meta: ViewMeta,
    joined: Vec<Reply<ViewDelta>>,
}

/// A finished fill, for [`Applier::release`].
pub(in crate::pipeline) struct Filled {
    pub(super) registration: Registration,
    pub(super) result: Result<(), DbError>,
}

impl Applier {
    /// Starts writing `edges` (a registration's initial edges) in parts,
    /// beside the group commits.
    pub(super) fn fill(&mut self, registration: Registration, edges: EdgeChanges) {
        let view = registration.meta.id.clone();
        tracing::info!(view = %view, edges = edges.len(), "filling a view's edges beside the stream");
        metrics::gauge!("ssp_views_filling").increment(1.0);
        self.filling.insert(
            view,
            Filling {
                meta: registration.meta.clone(),
                joined: Vec::new(),
            },
        );
        let sink = self.sink.clone();
        self.in_flight.push(Box::pin(async move {
            let result = commit_in_parts(&sink, edges, FILL_EDGES_PER_TX).await;
            Done {
                failed: false,
                edges: Vec::new(),
                requests: 0,
                slot: None,
                filled: Some(Box::new(Filled {
                    registration,
                    result,
                })),
                resume: None,
            }
        }));
    }

    /// A fill is done: its view's edges may be written by groups again, and
    /// its registration answers (or is undone).
    pub(super) fn filled(&mut self, filled: Filled) {
        metrics::gauge!("ssp_views_filling").decrement(1.0);
        let joined = self
            .filling
            .remove(&filled.registration.meta.id)
            .map(|f| f.joined)
            .unwrap_or_default();
        for reply in joined {
            let _ = reply.send(match &filled.result {
                Ok(()) => Ok(filled.registration.delta.clone()),
                Err(e) => Err(PipelineError::Write(format!(
                    "{e}; the view was not registered (SSP keeps what it had before)"
                ))),
            });
        }
        self.registered(filled.registration, filled.result);
    }

    /// A registration of a view being filled, the same as the one filling
    /// (but for `lastActiveAt`), is answered with the fill: `None`. Any
    /// other request is given back.
    pub(super) fn join_fill(&mut self, request: Request) -> Option<Request> {
        let Request::Register {
            meta,
            requery,
            loaded,
            from_row,
            reply,
        } = request
        else {
            return Some(request);
        };
        match self.filling.get_mut(&meta.id) {
            Some(f)
                if ViewMeta {
                    last_active_at: meta.last_active_at,
                    ..f.meta.clone()
                } == meta =>
            {
                f.joined.push(reply);
                None
            }
            _ => Some(Request::Register {
                meta,
                requery,
                loaded,
                from_row,
                reply,
            }),
        }
    }

    /// Waits for what a view operation must see committed: every group
    /// commit, and the fill of the view it is about (every fill, for an
    /// operation on everything).
    pub(super) async fn settle_before(&mut self, request: &Request) {
        let view: Option<&str> = match request {
            Request::Register { meta, .. } => Some(&meta.id),
            Request::Unregister { id, .. } | Request::Expire { id, .. } => Some(id.as_ref()),
            // Its row only: the fill does not write it.
            Request::Heartbeat { .. } => None,
            _ => {
                self.drain().await;
                return;
            }
        };
        while self.in_flight.len() > self.filling.len()
            || view.is_some_and(|v| self.filling.contains_key(v))
        {
            match self.in_flight.next().await {
                Some(done) => self.release(done),
                None => break,
            }
        }
    }
}
