//! The change feed: the periodic pass and the catch-up after a reconnect or a shed, with its cursors.

use super::*;

impl Worker {
    pub(super) async fn feed_pass(&mut self) -> Result<(), StepError> {
        match self.try_feed_pass().await {
            Err(StepError::Db(e)) => {
                // Rate-limit: while the database is down this fails every pass.
                if self
                    .last_feed_error
                    .is_none_or(|t| t.elapsed() > Duration::from_secs(30))
                {
                    tracing::warn!(error = %e, "change feed pass failed; will retry");
                    self.last_feed_error = Some(Instant::now());
                }
                Ok(())
            }
            other => {
                if other.is_ok() {
                    self.last_feed_error = None;
                }
                other
            }
        }
    }

    pub(super) async fn try_feed_pass(&mut self) -> Result<(), StepError> {
        // 1. Gaps that the feed cannot fill: no feed, no cursor, or a cursor
        //    older than the retention. Resync those tables.
        let now = Utc::now();
        let mut to_resync = Vec::new();
        for (name, t) in &self.tables {
            if !t.gap || !t.feed_follows() {
                continue;
            }
            match (t.feed, self.cursors.get(name)) {
                (None, _) => to_resync.push((name.clone(), None)),
                (Some(_), None) => to_resync.push((name.clone(), None)),
                (Some(retention), Some(cursor)) => {
                    let age = (now - cursor.confirmed_at).to_std().unwrap_or_default();
                    let margin = (retention / 10).min(Duration::from_secs(60));
                    if age + margin > retention {
                        to_resync.push((name.clone(), Some((age, retention))));
                    }
                }
            }
        }
        for (name, stale) in to_resync {
            if let Some((age, retention)) = stale {
                tracing::warn!(
                    table = %name,
                    cursor_age_s = age.as_secs_f64(),
                    retention_s = retention.as_secs_f64(),
                    "change-feed cursor is older than the feed's retention (changes after it may be gone): resyncing the table from a full snapshot"
                );
                WorkerStats::bump(&self.stats.stale_cursor_resyncs, 1);
                metrics::counter!("ssp_worker_stale_cursor_resyncs_total").increment(1);
            }
            self.resync(&name, true).await?;
            if let Some(t) = self.tables.get_mut(&name) {
                // Without a feed the snapshot closed the gap; with one, the
                // pass below checks the changes since the new cursor.
                t.gap = t.feed.is_some();
            }
        }

        // 2. The tables the feed follows, with their cursors.
        let mut followed: HashMap<Arc<str>, (u64, bool, u64)> = HashMap::new();
        for (name, t) in &self.tables {
            if t.feed.is_none() || !t.feed_follows() {
                continue;
            }
            if let Some(cursor) = self.cursors.get(name) {
                followed.insert(
                    name.clone(),
                    (cursor.versionstamp, t.gap, t.live.generation),
                );
            }
        }
        let Some(start) = followed.values().map(|(c, _, _)| *c).min() else {
            return Ok(());
        };
        let pass_started = Utc::now();
        let settled_upto = self.feed_prev.map(|(head, _)| head);

        // 3. Read to the head, checking entries against the engine.
        let mut since = start;
        let mut head = start;
        let mut pending: HashMap<RecordId, Option<Object>> = HashMap::new();
        let mut pages = 0u64;
        loop {
            let db = Arc::clone(&self.db);
            let page = self
                .drain_while(async move { changefeed::read_page(&db, since).await })
                .await?;
            pages += 1;
            if let Some(last) = page.last_versionstamp {
                self.check_clock(last);
            }
            for entry in page.entries {
                let Some(&(cursor, gap, _)) = followed.get(entry.id.table.as_str()) else {
                    continue;
                };
                if entry.versionstamp < cursor {
                    continue;
                }
                let settled = gap || settled_upto.is_some_and(|s| entry.versionstamp <= s);
                if settled {
                    pending.insert(entry.id, entry.content);
                } else {
                    // Its newest state is still LIVE's to deliver; checked
                    // next pass (the cursor stays at or before it).
                    pending.remove(&entry.id);
                }
            }
            if pending.len() >= FEED_FLUSH_AT {
                self.repair(&mut pending).await?;
            }
            match page.last_versionstamp {
                Some(last) if last > since => {
                    head = head.max(last);
                    since = last;
                }
                _ => break,
            }
        }
        self.repair(&mut pending).await?;

        // 4. Advance: to the head of the previous pass (one interval of
        //    overlap for commits that become visible out of stamp order).
        let mut moved = false;
        if let Some((prev_head, prev_started)) = self.feed_prev {
            let to = Cursor {
                versionstamp: prev_head,
                confirmed_at: prev_started,
            };
            for name in followed.keys() {
                moved |= self.cursors.advance(name, to);
            }
        }
        self.feed_prev = Some((head, pass_started));
        self.stats.feed_head.fetch_max(head, Ordering::Relaxed);
        for (name, (_, gap, generation)) in &followed {
            if let Some(t) = self.tables.get_mut(name)
                && *gap
                && t.live.generation == *generation
                && t.live.is_up()
            {
                t.gap = false;
            }
        }
        if moved || self.last_cursor_save.elapsed() >= CURSOR_SAVE_EVERY {
            self.last_cursor_save = Instant::now();
            self.pipeline.dirty().notify_one();
        }
        WorkerStats::bump(&self.stats.feed_passes, 1);
        metrics::counter!("ssp_worker_feed_pages_total").increment(pages);
        Ok(())
    }

    /// Warns once if versionstamps are not the hybrid logical clock this
    /// worker assumes when it derives a starting cursor from the server's
    /// clock (true of SurrealDB's mem, SurrealKV and RocksDB stores).
    pub(super) fn check_clock(&mut self, versionstamp: u64) {
        if self.warned_clock {
            return;
        }
        let now = Utc::now().timestamp_millis().max(0) as u64;
        let at = changefeed::hlc_millis(versionstamp);
        if now.abs_diff(at) > 24 * 3600 * 1000 {
            self.warned_clock = true;
            tracing::warn!(
                versionstamp,
                "change-feed versionstamps do not look like a hybrid logical clock (unix ms << 16); the starting cursor of a newly followed table may be off, so writes racing its first load could be missed"
            );
        }
    }

    /// Applies the current content of every pending record whose feed state
    /// differs from the engine's.
    pub(super) async fn repair(
        &mut self,
        pending: &mut HashMap<RecordId, Option<Object>>,
    ) -> Result<(), StepError> {
        if pending.is_empty() {
            return Ok(());
        }
        let candidates: Vec<(RecordId, Option<Object>)> = pending.drain().collect();
        let mut stale: Vec<RecordId> = self.pipeline.read(|engine| {
            candidates
                .into_iter()
                .filter(|(id, content)| {
                    !matches_engine(engine.record(id).as_ref(), content.as_ref())
                })
                .map(|(id, _)| id)
                .collect()
        });
        if stale.is_empty() {
            return Ok(());
        }
        stale.sort();
        let db = Arc::clone(&self.db);
        let changes = self.drain_while(read_records(&db, &stale)).await?;
        tracing::info!(
            records = stale.len(),
            first = %stale[0],
            "caught up from the change feed: applied changes LIVE had not delivered"
        );
        WorkerStats::bump(&self.stats.feed_repairs, stale.len() as u64);
        metrics::counter!("ssp_worker_feed_repairs_total").increment(stale.len() as u64);
        self.ingest(changes, Source::ChangeFeed).await?;
        Ok(())
    }
}
