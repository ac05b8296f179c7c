//! Waiting (for the database, for a commit) without letting LIVE notifications pile up: the bounded backlog that sheds to the change feed.

use super::*;

impl Worker {
    /// Waits for `work` while reading LIVE notifications into the backlog, so
    /// that they wait in bounded memory of ours rather than in the SDK's
    /// unbounded channels; sheds subscriptions when the backlog is full.
    pub(super) async fn drain_while<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            if self.backlog.len() >= LIVE_BACKLOG {
                self.shed();
            }
            let room = self.backlog.len() < LIVE_BACKLOG;
            tokio::select! {
                biased;
                out = &mut work => return out,
                Some(tagged) = self.events.next(), if room && !self.events.is_empty() => {
                    self.backlog.push_back(tagged);
                }
            }
        }
    }

    /// Whether an event of `generation` from `target` is still to be
    /// applied: its subscription is the table's current one and is up.
    pub(super) fn is_current(&self, target: &Target, generation: u64) -> bool {
        match target {
            Target::Table(name) => self
                .tables
                .get(name)
                .is_some_and(|t| t.live.generation == generation && t.live.is_up()),
            Target::Views => self.views.generation == generation && self.views.is_up(),
        }
    }

    // The pipeline calls, waited for with `drain_while`.

    pub(super) async fn ingest(
        &mut self,
        changes: Vec<crate::engine::Change>,
        source: Source,
    ) -> Result<(), PipelineError> {
        let pipeline = self.pipeline.clone();
        self.drain_while(async move { pipeline.ingest(changes, source).await })
            .await
            .map(|_| ())
    }

    /// [`Worker::ingest`] for rows read from the database after `mark`
    /// (see `Pipeline::ingest_read`).
    pub(super) async fn ingest_read(
        &mut self,
        changes: Vec<crate::engine::Change>,
        mark: crate::pipeline::ReadMark,
    ) -> Result<(), PipelineError> {
        let pipeline = self.pipeline.clone();
        self.drain_while(async move { pipeline.ingest_read(changes, mark).await })
            .await
            .map(|_| ())
    }

    pub(super) async fn flush(&mut self) -> Result<(), PipelineError> {
        let pipeline = self.pipeline.clone();
        self.drain_while(async move { pipeline.flush().await })
            .await
    }

    pub(super) async fn unregister(&mut self, id: String) -> Result<bool, PipelineError> {
        let pipeline = self.pipeline.clone();
        self.drain_while(async move { pipeline.unregister(id).await })
            .await
    }

    /// The backlog is full: the LIVE streams bring more than the pipeline
    /// commits. Drops what no longer counts (ended or replaced
    /// subscriptions), then ends the busiest subscriptions, dropping their
    /// notifications, until the backlog is half empty. Their tables are
    /// caught up from the change feed (or resynced), as after a disconnect.
    pub(super) fn shed(&mut self) {
        let mut backlog = std::mem::take(&mut self.backlog);
        backlog.retain(|t| self.is_current(&t.target, t.generation));
        self.backlog = backlog;
        if self.backlog.len() < LIVE_BACKLOG / 2 {
            return;
        }
        let mut counts: HashMap<Target, usize> = HashMap::new();
        for tagged in &self.backlog {
            *counts.entry(tagged.target.clone()).or_default() += 1;
        }
        let mut busiest: Vec<(Target, usize)> = counts.into_iter().collect();
        busiest.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        let mut left = self.backlog.len();
        let mut shed: HashSet<Target> = HashSet::new();
        for (target, count) in busiest {
            if left < LIVE_BACKLOG / 2 {
                break;
            }
            left -= count;
            shed.insert(target);
        }
        self.backlog.retain(|t| !shed.contains(&t.target));
        let mut kills = Vec::new();
        for target in shed {
            let (name, ended) = match &target {
                Target::Table(name) => {
                    let Some(t) = self.tables.get_mut(name) else {
                        continue;
                    };
                    let ended = t.live.shed();
                    if ended.is_some() {
                        t.gap = true;
                        t.shed = true;
                    }
                    (name.clone(), ended)
                }
                Target::Views => (Arc::from(QUERY_TABLE), self.views.shed()),
            };
            let Some((id, holdoff)) = ended else {
                continue;
            };
            kills.push(id);
            WorkerStats::bump(&self.stats.live_drops, 1);
            metrics::counter!("ssp_worker_live_drops_total").increment(1);
            tracing::warn!(
                table = %name,
                backlog = LIVE_BACKLOG,
                retry_in_s = holdoff.as_secs_f64(),
                "LIVE notifications arrive faster than SSP commits them: ending the table's LIVE subscription to bound memory; the change feed catches the table up meanwhile"
            );
        }
        self.kill_later(kills);
    }
}
