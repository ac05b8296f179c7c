//! Loading a table and keeping its follow state: the snapshot, the cursor, LIVE subscription.

use super::*;

impl Worker {
    /// Starts following `table`. With `adopt` (a table restored from the
    /// state file) and a cursor, the feed pass catches up from the cursor;
    /// otherwise the table is snapshotted and diffed.
    pub(super) async fn track(
        &mut self,
        table: &Arc<str>,
        pinned: bool,
        adopt: bool,
    ) -> Result<(), StepError> {
        let status = self.prepare(table).await?;
        let sub = live::subscribe(&self.db, table, false).await?;
        let follow = self.attach(Target::Table(table.clone()), sub);
        self.tables.insert(
            table.clone(),
            Table {
                live: follow,
                feed: status
                    .has_feed
                    .then(|| status.retention.unwrap_or(self.retention)),
                gap: true,
                shed: false,
                pinned,
                ensured_at: Instant::now(),
                unwanted_since: None,
            },
        );
        let loaded_before = !self.followed_before.insert(table.clone());
        let resume = adopt && status.has_feed && self.cursors.get(table).is_some();
        if resume {
            tracing::info!(table = %table, "following the table again; catching up from its change-feed cursor");
            self.pipeline.table_loaded(table.clone()).await?;
            return Ok(());
        }
        // A first load only adds: what the engine holds of a table never
        // followed came through `/ingest`, and may be a record the database
        // does not hold yet. Loading again (restored without a
        // usable cursor, or followed before in this run) is a resync.
        if let Err(e) = self.resync(table, adopt || loaded_before).await {
            self.untrack(table).await;
            return Err(e);
        }
        tracing::info!(table = %table, feed = status.has_feed, "table loaded and followed");
        // The engine holds it in full now: links into it can be followed.
        self.pipeline.table_loaded(table.clone()).await?;
        Ok(())
    }

    /// Defines the table if missing and gives it a change feed in `auto`
    /// mode; warns once when a table will be followed without a feed.
    pub(super) async fn prepare(&mut self, table: &Arc<str>) -> Result<FeedStatus, DbError> {
        let status = changefeed::prepare_table(
            &self.db,
            table,
            self.settings.changefeed,
            &self.settings.changefeed_retention,
            self.retention,
        )
        .await?;
        if !status.has_feed && self.warned_no_feed.insert(table.clone()) {
            match self.settings.changefeed {
                ChangefeedMode::Off => tracing::warn!(
                    table = %table,
                    "worker.changefeed = off: after a disconnect or a restart the table is reloaded in full"
                ),
                _ => tracing::warn!(
                    table = %table,
                    "the table has no change feed and worker.changefeed = manual: after a disconnect or a restart it is reloaded in full; define one with `ALTER TABLE {table} CHANGEFEED {}`",
                    self.settings.changefeed_retention
                ),
            }
        }
        Ok(status)
    }

    pub(super) fn attach(&mut self, target: Target, sub: Subscription) -> Follow {
        self.next_generation += 1;
        let generation = self.next_generation;
        let (events, abort) = futures::stream::abortable(sub.events);
        let tag = target.clone();
        self.events.push(
            events
                .map(move |event| Tagged {
                    target: tag.clone(),
                    generation,
                    event,
                })
                .boxed(),
        );
        Follow {
            generation,
            state: LiveState::Up { id: sub.id, abort },
            since: Instant::now(),
            holdoff: Duration::ZERO,
        }
    }

    pub(super) async fn untrack(&mut self, table: &Arc<str>) {
        if let Some(mut t) = self.tables.remove(table)
            && let Some(id) = t.live.set_down()
        {
            self.kill_later(vec![id]);
        }
        self.cursors.remove(table);
    }

    /// Kills live queries in the background: the worker does not wait on a
    /// connection that may be down (then there is nothing to kill anyway).
    pub(super) fn kill_later(&self, ids: Vec<sdb::Value>) {
        if ids.is_empty() {
            return;
        }
        let db = Arc::clone(&self.db);
        tokio::spawn(async move {
            for id in ids {
                live::kill(&db, id).await;
            }
        });
    }

    /// Loads the table from a snapshot: every row and, with `deletes` (a
    /// resync after a gap), a delete for every record the engine holds that
    /// the table no longer has. With a change feed, the cursor is taken
    /// first, so that the next feed pass covers every write the snapshot may
    /// have missed.
    ///
    /// An empty table never deletes what the engine holds: that is what a
    /// deployment looks like whose records reach SSP only through `/ingest`
    /// (the database does not hold them), and wiping its views would be far
    /// worse than keeping records deleted while SSP was not looking.
    pub(super) async fn resync(
        &mut self,
        table: &Arc<str>,
        deletes: bool,
    ) -> Result<(), StepError> {
        let has_feed = self.tables.get(table).is_some_and(|t| t.feed.is_some());
        // The cursor starts a margin before the server's now, and counts as
        // confirmed now: what the feed must supply is only what the snapshot
        // below may miss, i.e. commits from now on (older ones it holds).
        let cursor = if has_feed {
            let versionstamp = changefeed::versionstamp_before_now(&self.db, CURSOR_MARGIN).await?;
            Some(Cursor {
                versionstamp,
                confirmed_at: Utc::now(),
            })
        } else {
            None
        };
        // Rows reach the pipeline after they were read, and an `/ingest`
        // of a newer write may be applied in between: each batch is sent
        // with a mark taken before its first row was read, so that such
        // rows are read again at their turn (see `Pipeline::ingest_read`).
        // The deletes were decided by every page: their mark is the first.
        let first = self.pipeline.read_mark();
        // What the engine holds, read before the snapshot: a record created
        // after the snapshot (and applied meanwhile) is never deleted.
        let held = if deletes {
            self.pipeline.read(|engine| engine.table_records(table))
        } else {
            Vec::new()
        };
        let job = if deletes { "resync" } else { "snapshot" };
        let mut progress = Progress::start(job, table, None);
        // Page by page (each call bounded, whatever the table's size), applied
        // as it comes in batches of APPLY_CHUNK rows; only the ids are kept,
        // for the deletes.
        let mut pages = TablePages::new(table);
        let mut present: HashSet<RecordId> = HashSet::new();
        let mut batch: Vec<crate::engine::Change> = Vec::new();
        let mut mark = first;
        let mut count = 0usize;
        let db = Arc::clone(&self.db);
        while let Some(page) = self.drain_while(pages.next_page(&db)).await? {
            count += page.len();
            if deletes {
                present.extend(page.iter().map(|c| c.id.clone()));
            }
            batch.extend(page);
            if batch.len() >= APPLY_CHUNK {
                let n = batch.len() as u64;
                self.ingest_read(std::mem::take(&mut batch), mark).await?;
                progress.add(n);
                mark = self.pipeline.read_mark();
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            self.ingest_read(batch, mark).await?;
            progress.add(n);
        }
        let held = if count == 0 && !held.is_empty() {
            tracing::warn!(
                table = %table,
                held = held.len(),
                "the table is empty in the database but SSP holds records of it (sent through /ingest?): keeping them"
            );
            Vec::new()
        } else {
            held
        };
        let gone = deletes_for(held, &present);
        let deleted = gone.len();
        for chunk in gone.chunks(APPLY_CHUNK) {
            self.ingest_read(chunk.to_vec(), first).await?;
            progress.add(chunk.len() as u64);
        }
        progress.finish();
        if let Some(cursor) = cursor {
            self.cursors.set(table, cursor);
        }
        if let Some(t) = self.tables.get_mut(table) {
            t.gap = has_feed;
        }
        WorkerStats::bump(&self.stats.snapshots, 1);
        metrics::counter!("ssp_worker_snapshots_total").increment(1);
        tracing::debug!(table = %table, rows = count, deleted, pages = pages.pages(), "table snapshot applied");
        Ok(())
    }

    /// Compares the tracked tables with what the views need now.
    pub(super) async fn reconcile(&mut self) {
        self.last_reconcile = Instant::now();
        let mut wanted: BTreeSet<Arc<str>> = self.pipeline.read(|engine| engine.tables());
        let pinned: BTreeSet<Arc<str>> = self
            .settings
            .tables
            .iter()
            .map(|t| Arc::from(t.as_str()))
            .collect();
        wanted.extend(pinned.iter().cloned());
        for table in &wanted {
            if self.tables.contains_key(table) {
                if let Some(t) = self.tables.get_mut(table) {
                    t.unwanted_since = None;
                }
                continue;
            }
            match self.track(table, pinned.contains(table), true).await {
                Ok(()) => {}
                Err(StepError::Pipeline(PipelineError::Closed)) => return,
                Err(StepError::Db(e)) if e.is_unavailable() => {
                    tracing::debug!(table = %table, error = %e, "cannot follow the table yet; will retry");
                }
                Err(e) => {
                    tracing::warn!(table = %table, error = %e, "cannot follow the table yet; will retry")
                }
            }
        }
        let now = Instant::now();
        let unwanted: Vec<Arc<str>> = self
            .tables
            .iter_mut()
            .filter(|(name, t)| !wanted.contains(*name) && !t.pinned)
            .filter_map(|(name, t)| {
                if now.duration_since(t.ensured_at) < UNTRACK_GRACE {
                    return None;
                }
                let since = *t.unwanted_since.get_or_insert(now);
                (now.duration_since(since) >= RECONCILE_INTERVAL).then(|| name.clone())
            })
            .collect();
        for table in unwanted {
            tracing::info!(table = %table, "no view reads the table any more; no longer following it");
            self.untrack(&table).await;
            // Memory follows the views: the engine lets go of the records
            // too (it keeps them if a view came to read the table meanwhile).
            if let Err(e) = self.pipeline.forget_table(table.clone()).await {
                tracing::debug!(table = %table, error = %e, "the table's records stay for now");
            }
        }
    }
}
