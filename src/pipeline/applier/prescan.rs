//! A big registration's first result, computed beside the stream.
//!
//! The engine's side is `engine::prescan`: the new view's candidates,
//! evaluated in steps under short read locks, and the records changed
//! meanwhile placed again at the registration's turn. Here the applier
//! runs the steps on a blocking thread as one of its futures in flight, so
//! ingest groups go on between them; view operations wait for it (and for
//! the registration it ends in), as they wait for a group commit. The registration then goes on as any other: the row, and the
//! edges committed (or filled) before it answers.

use super::*;
use crate::engine::{Prescan, Prescanned};

/// A registration whose first result is being computed.
pub(in crate::pipeline) struct Resume {
    meta: ViewMeta,
    from_row: Option<FromRow>,
    reply: Reply<ViewDelta>,
    /// `None`: the evaluation panicked; the registration computes under
    /// the lock instead.
    prescanned: Option<Prescanned>,
}

impl Applier {
    /// Starts computing `meta`'s first result off the lock, if the engine
    /// finds it worth it; else gives `reply` back to register at once.
    pub(super) fn try_prescan(
        &mut self,
        meta: ViewMeta,
        from_row: Option<FromRow>,
        reply: Reply<ViewDelta>,
    ) -> Option<(ViewMeta, Option<FromRow>, Reply<ViewDelta>)> {
        let started = std::time::Instant::now();
        let Some(scan) = self.engine().prescan(&meta) else {
            return Some((meta, from_row, reply));
        };
        tracing::info!(
            view = %meta.id,
            candidates = scan.len(),
            keys_us = started.elapsed().as_micros() as u64,
            "computing a view's first result beside the stream"
        );
        self.prescanning = true;
        let engine = Arc::clone(&self.engine);
        self.in_flight.push(Box::pin(async move {
            let prescanned = evaluate(engine, scan).await;
            Done {
                failed: false,
                edges: Vec::new(),
                requests: 0,
                slot: None,
                filled: None,
                resume: Some(Box::new(Resume {
                    meta,
                    from_row,
                    reply,
                    prescanned,
                })),
            }
        }));
        None
    }

    /// Waits for a prescan under way and registers its view, so that what
    /// comes next sees the registration done.
    pub(super) async fn finish_prescan(&mut self) {
        while self.prescanning && self.resume.is_none() {
            match self.in_flight.next().await {
                Some(done) => self.release(done),
                None => break,
            }
        }
        if let Some(r) = self.resume.take() {
            self.prescanning = false;
            let Resume {
                meta,
                from_row,
                reply,
                prescanned,
            } = *r;
            if prescanned.is_none() {
                self.engine().cancel_prescan();
            }
            self.register(meta, None, prescanned, from_row, reply).await;
        }
    }
}

/// Candidates a step evaluates under one read lock: the applier, which
/// waits for the lock to apply a batch, waits at most one step. Measured
/// (release, `ssp-bench --only stall`, ten views over 1,000,000 rows):
/// `/ingest` p99 1.9-2.0x idle with steps of 2,000, 7.1-7.3x with 10,000;
/// a registration took 372-374 ms against 243-277 ms.
const STEP: usize = 2_000;

/// Runs a prescan on a blocking thread, in steps under read locks.
async fn evaluate(engine: Arc<RwLock<Engine>>, mut scan: Prescan) -> Option<Prescanned> {
    let started = std::time::Instant::now();
    let candidates = scan.len();
    let evaluated = tokio::task::spawn_blocking(move || {
        while scan.step(&engine.read().unwrap_or_else(|p| p.into_inner()), STEP) {
            // Taken again at once, the read lock starves the applier
            // waiting to write (measured: ingests stalled for the whole
            // scan); a pause lets it in.
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        scan.finish()
    });
    match evaluated.await {
        Ok(p) => {
            tracing::debug!(
                candidates,
                ms = started.elapsed().as_millis() as u64,
                "prescan evaluated"
            );
            Some(p)
        }
        Err(e) => {
            tracing::error!(error = %e, "a prescan failed; the view is evaluated under the lock");
            None
        }
    }
}
