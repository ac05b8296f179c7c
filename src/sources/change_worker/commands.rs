//! What the handle asks of the worker: track tables, untrack them, refresh.

use super::*;

impl Worker {
    pub(super) async fn command(&mut self, command: Command) -> Result<(), StepError> {
        match command {
            Command::Ensure { tables, reply } => {
                let result = self.ensure(&tables, &reply).await;
                let closed = matches!(result, Err(PipelineError::Closed));
                let _ = reply.send(result);
                if closed {
                    return Err(StepError::Pipeline(PipelineError::Closed));
                }
                Ok(())
            }
            Command::Clear { reply } => {
                let ids: Vec<sdb::Value> = self
                    .tables
                    .values_mut()
                    .filter_map(|t| t.live.set_down())
                    .collect();
                self.kill_later(ids);
                self.tables.clear();
                self.cursors.clear();
                self.feed_prev = None;
                self.pipeline.dirty().notify_one();
                let _ = reply.send(());
                tracing::info!("change worker: every table forgotten (reset)");
                Ok(())
            }
        }
    }

    pub(super) async fn ensure(
        &mut self,
        tables: &[Arc<str>],
        reply: &oneshot::Sender<Result<(), PipelineError>>,
    ) -> Result<(), PipelineError> {
        for table in tables {
            if let Some(t) = self.tables.get_mut(table) {
                t.ensured_at = Instant::now();
                t.unwanted_since = None;
                continue;
            }
            let pinned = self
                .settings
                .tables
                .iter()
                .any(|p| p.as_str() == table.as_ref());
            let mut backoff = reconnect_backoff();
            loop {
                match self.track(table, pinned, false).await {
                    Ok(()) => break,
                    Err(StepError::Pipeline(e)) => return Err(e),
                    Err(StepError::Db(e)) if e.is_unavailable() || e.is_conflict() => {
                        if reply.is_closed() {
                            // The caller gave up; the reconcile will load the
                            // table if a view needs it.
                            return Err(PipelineError::Write(e.to_string()));
                        }
                        let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(5));
                        tracing::warn!(table = %table, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot load the table yet");
                        let mut stop = self.stop.clone();
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = stop.wait_for(|s| *s) => return Err(PipelineError::Closed),
                        }
                    }
                    Err(StepError::Db(e)) => {
                        return Err(PipelineError::Write(format!(
                            "cannot follow table `{table}`: {e}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}
