//! LIVE notifications: subscribing, re-subscribing after a reconnect, applying what arrives.

use super::*;

impl Worker {
    /// Applies the oldest notifications: the backlog's, then what the
    /// streams have ready, up to [`MAX_LIVE_BATCH`].
    pub(super) async fn on_events(&mut self) -> Result<(), StepError> {
        let take = self.backlog.len().min(MAX_LIVE_BATCH);
        let mut batch: Vec<Tagged> = self.backlog.drain(..take).collect();
        while batch.len() < MAX_LIVE_BATCH && self.backlog.is_empty() {
            match self.events.next().now_or_never() {
                Some(Some(tagged)) => batch.push(tagged),
                _ => break,
            }
        }
        let mut changes = Vec::new();
        let mut deleted_views = Vec::new();
        let mut ended: Vec<Arc<str>> = Vec::new();
        let mut errors: Vec<(Target, String)> = Vec::new();
        let mut check_view_rows = false;
        for Tagged {
            target,
            generation,
            event,
        } in batch
        {
            match &target {
                Target::Table(name) => {
                    let Some(table) = self.tables.get_mut(name) else {
                        continue;
                    };
                    if table.live.generation != generation || !table.live.is_up() {
                        continue;
                    }
                    match event {
                        LiveEvent::Change(change) => changes.push(change),
                        LiveEvent::Deleted(_) => {}
                        LiveEvent::Error(message) => {
                            table.gap = true;
                            errors.push((target.clone(), message));
                        }
                        LiveEvent::Ended => {
                            // The live query is gone with the connection (or
                            // was killed): nothing to kill.
                            table.gap = true;
                            table.live.set_down();
                            ended.push(name.clone());
                        }
                    }
                }
                Target::Views => {
                    if self.views.generation != generation || !self.views.is_up() {
                        continue;
                    }
                    match event {
                        LiveEvent::Deleted(id) => deleted_views.push(id),
                        LiveEvent::Change(_) => {}
                        LiveEvent::Error(message) => {
                            // A delete may have been missed: compare the rows.
                            check_view_rows = true;
                            errors.push((target.clone(), message));
                        }
                        LiveEvent::Ended => {
                            self.views.set_down();
                            ended.push(Arc::from(QUERY_TABLE));
                        }
                    }
                }
            }
        }
        // An error followed by the end of the stream is a disconnect, said
        // once below; other errors are worth a line each.
        for (target, message) in errors {
            let name: Arc<str> = match &target {
                Target::Table(name) => name.clone(),
                Target::Views => Arc::from(QUERY_TABLE),
            };
            if !ended.contains(&name) {
                tracing::warn!(table = %name, error = %message, "LIVE error: catching the table up from the change feed");
            }
        }
        if !ended.is_empty() {
            tracing::warn!(
                tables = ?ended.iter().map(|n| n.as_ref()).collect::<Vec<_>>(),
                "LIVE subscriptions ended (connection lost?); re-subscribing, then catching up from the change feed"
            );
        }
        if !changes.is_empty() {
            let n = changes.len() as u64;
            self.ingest(changes, Source::Live).await?;
            WorkerStats::bump(&self.stats.live_changes, n);
        }
        for id in deleted_views {
            self.view_row_deleted(id).await?;
        }
        if check_view_rows && let Err(e) = self.remove_views_without_rows().await {
            tracing::debug!(error = %e, "cannot compare views with their rows yet");
        }
        Ok(())
    }

    /// Re-subscribes what is down and due, and reconciles now and then.
    pub(super) async fn maintain(&mut self) -> Result<(), StepError> {
        let now = Instant::now();
        let due: Vec<Arc<str>> = self
            .tables
            .iter()
            .filter(|(_, t)| t.live.due(now))
            .map(|(name, _)| name.clone())
            .collect();
        let views_due = self.views.due(now);
        if !due.is_empty() || views_due {
            if let Err(e) = self.db.wait_available(RECONNECT_PROBE).await {
                tracing::debug!(error = %e, "database still unavailable");
                for name in &due {
                    if let Some(t) = self.tables.get_mut(name) {
                        t.live.retry_later();
                    }
                }
                if views_due {
                    self.views.retry_later();
                }
                return Ok(());
            }
            let any = !due.is_empty();
            for name in due {
                self.resubscribe(&name).await;
            }
            if views_due {
                self.follow_views().await;
            }
            if any {
                // Close the gap now rather than at the next tick.
                self.feed_pass().await?;
            }
        }
        if self.last_reconcile.elapsed() >= RECONCILE_INTERVAL {
            self.reconcile().await;
        }
        Ok(())
    }

    pub(super) async fn resubscribe(&mut self, table: &Arc<str>) {
        let mut result = live::subscribe(&self.db, table, false).await;
        if let Err(DbError::Statement(_) | DbError::Other { .. }) = &result {
            // The table may have been removed meanwhile: define it again.
            if self.prepare(table).await.is_ok() {
                result = live::subscribe(&self.db, table, false).await;
            }
        }
        match result {
            Ok(sub) => {
                let follow = self.attach(Target::Table(table.clone()), sub);
                if let Some(t) = self.tables.get_mut(table) {
                    t.live = follow.replacing(&t.live);
                    t.gap = true;
                    t.shed = false;
                }
                WorkerStats::bump(&self.stats.resubscribes, 1);
                metrics::counter!("ssp_worker_resubscribes_total").increment(1);
                tracing::info!(table = %table, "LIVE re-subscribed; catching up from the change feed");
            }
            Err(e) => {
                tracing::warn!(table = %table, error = %e, "cannot re-subscribe LIVE yet");
                if let Some(t) = self.tables.get_mut(table) {
                    t.live.retry_later();
                }
            }
        }
    }
}
