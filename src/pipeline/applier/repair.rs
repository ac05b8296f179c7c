//! The repair after a write the database refused for good: the engine is
//! the truth, and the rows and edges it names are rewritten from it.

use super::*;

/// The rows and edges that may differ from the engine after a write the
/// database refused for good. The engine is the truth: it applied the batch
/// (or the view operation) before the commit failed, and nothing else would
/// write those edges again.
pub(in crate::pipeline) struct Repair {
    /// Edges may differ from the engine's result sets.
    pub(in crate::pipeline) edges: bool,
    /// Views whose `_spooky_query` row must be rewritten from the engine, or
    /// removed with its edges when the engine no longer has the view.
    pub(in crate::pipeline) views: std::collections::BTreeSet<Arc<str>>,
    /// A reset that did not commit.
    pub(in crate::pipeline) reset: bool,
    /// The next attempt; backoff after a failed one.
    pub(in crate::pipeline) at: tokio::time::Instant,
    pub(in crate::pipeline) backoff: backoff::ExponentialBackoff,
    /// Shared with [`Pipeline::diverged`].
    pub(in crate::pipeline) flag: Arc<std::sync::atomic::AtomicBool>,
}

impl Repair {
    pub(in crate::pipeline) fn new(flag: Arc<std::sync::atomic::AtomicBool>) -> Self {
        Repair {
            edges: false,
            views: Default::default(),
            reset: false,
            at: tokio::time::Instant::now(),
            backoff: crate::db::backoff_forever(
                Duration::from_millis(200),
                Duration::from_secs(10),
            ),
            flag,
        }
    }

    pub(in crate::pipeline) fn pending(&self) -> bool {
        self.edges || self.reset || !self.views.is_empty()
    }

    pub(in crate::pipeline) fn due(&self) -> bool {
        self.pending() && tokio::time::Instant::now() >= self.at
    }

    /// Something must be repaired; the first attempt is at once.
    pub(in crate::pipeline) fn needed(&mut self) {
        if !self.pending() {
            self.backoff.reset();
            self.at = tokio::time::Instant::now();
        }
        self.edges = true;
        self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!("ssp_edges_diverged").set(1.0);
    }
}

impl Applier {
    /// One repair attempt; on failure the next one comes after a backoff.
    pub(in crate::pipeline) async fn run_repair(&mut self) {
        let span = tracing::info_span!("repair");
        match self.try_repair().instrument(span).await {
            Ok(fixed) => {
                tracing::info!(fixed, "edges and view rows re-converged with the engine");
                metrics::counter!("ssp_edge_repairs_total").increment(1);
                metrics::gauge!("ssp_edges_diverged").set(0.0);
                self.repair
                    .flag
                    .store(false, std::sync::atomic::Ordering::Relaxed);
            }
            Err(error) => {
                let wait = self
                    .repair
                    .backoff
                    .next_backoff()
                    .unwrap_or(Duration::from_secs(10));
                self.repair.at = tokio::time::Instant::now() + wait;
                tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "repairing the edges failed; retrying");
            }
        }
    }

    /// Rewrites what [`Repair`] lists, then makes every edge equal the
    /// engine. Each step is cleared once it committed.
    pub(in crate::pipeline) async fn try_repair(&mut self) -> Result<usize, DbError> {
        // Clustered: a write may have failed because another instance took
        // its view. Those views leave the engine first; the rest is
        // repaired within the views still held.
        let node = self.sink.holds().map(|h| h.node().to_string());
        if let Some(holds) = self.sink.holds().cloned() {
            let held = crate::cluster::ownership::held_rows(self.sink.db(), holds.node()).await?;
            // Held here, and its row still says so at the same epoch.
            let still_held = |id: &str| holds.epoch(id).is_some_and(|e| held.get(id) == Some(&e));
            let lost: Vec<Arc<str>> = self.read_engine(|e| {
                e.views()
                    .map(|v| v.id)
                    .filter(|id| !still_held(id))
                    .collect()
            });
            {
                let mut engine = self.engine();
                for id in &lost {
                    tracing::warn!(view = %id, "another instance holds the view now: this one lets it go");
                    engine.unregister(id);
                    holds.remove(id);
                }
            }
            self.repair.views.retain(|id| still_held(id));
            if !lost.is_empty() {
                self.dirty.notify_one();
                self.tables_wanted.notify_one();
            }
        }
        if self.repair.reset {
            let mut edges = EdgeChanges::default();
            edges.reset();
            self.sink.write(&edges).await?;
            self.repair.reset = false;
        }
        while let Some(id) = self.repair.views.first().cloned() {
            match self.read_engine(|e| e.view(&id)) {
                // The row may be older than the engine's view, owner included.
                Some(meta) => self.sink.upsert_view(&meta, true).await?,
                None => {
                    let mut edges = EdgeChanges::default();
                    edges.remove_view(id.clone());
                    self.sink.write(&edges).await?;
                }
            }
            self.repair.views.remove(&id);
        }
        let rows = reconcile::read_edges(self.sink.db(), node.as_deref()).await?;
        let kept = reconcile::read_kept_versions(self.sink.db()).await?;
        let changes = {
            let mut engine = self.engine();
            reconcile::raise_to_kept(&mut engine, &kept);
            reconcile::plan(&mut engine, rows, node.is_some())
        };
        let fixed = changes.len();
        for part in changes.split(MAX_EDGES_PER_TX) {
            self.sink.write(&part).await?;
        }
        self.repair.edges = false;
        Ok(fixed)
    }
}
