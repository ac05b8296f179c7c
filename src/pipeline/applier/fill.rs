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
//! operation (another registration, an unregister, a heartbeat) runs after
//! every commit in flight, fills included, as before.

use super::*;

/// A registration whose row and edges are being written.
pub(in crate::pipeline) struct Registration {
    pub(super) meta: ViewMeta,
    /// What the engine held for this id before (to go back to on failure).
    pub(super) previous: Option<(ViewMeta, Option<crate::engine::RequeryState>)>,
    pub(super) delta: ViewDelta,
    pub(super) reply: Reply<ViewDelta>,
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
        self.filling.insert(view);
        let sink = self.sink.clone();
        self.in_flight.push(Box::pin(async move {
            let result = commit_in_parts(&sink, edges).await;
            Done {
                failed: false,
                edges: Vec::new(),
                requests: 0,
                slot: None,
                filled: Some(Box::new(Filled {
                    registration,
                    result,
                })),
            }
        }));
    }

    /// A fill is done: its view's edges may be written by groups again, and
    /// its registration answers (or is undone).
    pub(super) fn filled(&mut self, filled: Filled) {
        metrics::gauge!("ssp_views_filling").decrement(1.0);
        self.filling.remove(&filled.registration.meta.id);
        self.registered(filled.registration, filled.result);
    }
}
