//! Moving views between the tiers as their data changes: to the re-query
//! tier when it links where the engine does not follow (inside the batch's
//! own commit), and back once the change worker has loaded the table.

use super::*;

impl Applier {
    /// As [`Applier::retier_in_group`] for views noted outside a group (a
    /// view operation evaluated them): after every earlier commit, their
    /// re-runs commit on their own.
    pub(super) async fn retier_link_views(&mut self) {
        if !self.read_engine(|e| e.has_link_views()) {
            return;
        }
        self.drain().await;
        let tasks = self.retier_in_group().await;
        if tasks.is_empty() {
            return;
        }
        let mut edges = EdgeChanges::default();
        self.rerun(tasks, &mut edges, &mut [], &[]).await;
        if let Err(e) = commit_in_parts(&self.sink, edges, MAX_EDGES_PER_TX).await {
            tracing::warn!(error = %e, "writing the edges of views moved to the re-query tier failed; repairing");
            self.repair.needed();
        }
    }

    /// Moves the incremental views the last batches evaluated through a link
    /// the engine does not follow to the re-query tier, keeping their
    /// current members (no edge moves yet), and returns their re-runs for
    /// the group under way: its commit then holds SurrealDB's answer. A view
    /// the re-query tier cannot take either stays (and is logged).
    pub(super) async fn retier_in_group(&mut self) -> Vec<crate::engine::RequeryTask> {
        let metas = self.engine().take_link_views();
        let mut tasks = Vec::new();
        for meta in metas {
            let reason =
                "a path through a record link (found in the data after the view registered)";
            let plan = match requery::plan(self.sink.db(), &meta.sql, &meta.params, reason.into())
                .await
            {
                Ok(plan) => plan,
                Err(e) => {
                    // The engine wants the tables its links lead into (see
                    // `Engine::tables`): once the change worker loaded them,
                    // their records reach the view's fetches.
                    self.tables_wanted.notify_one();
                    tracing::warn!(view = %meta.id, error = %e, "could not move the view to the re-query tier; it stays incremental, and differs from SurrealDB until the tables its links reach are loaded");
                    continue;
                }
            };
            let id = meta.id.clone();
            let task = crate::engine::RequeryTask {
                view: id.clone(),
                sql: meta.sql.as_str().into(),
                params: meta.params.clone(),
            };
            {
                let mut engine = self.engine();
                let members: Vec<RecordId> = engine
                    .view_records(&id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(r, _)| r)
                    .collect();
                engine.register_requery(meta, plan.reason, plan.tables, members, Vec::new());
            }
            self.tables_wanted.notify_one();
            self.dirty.notify_one();
            if !self.link_retiered.contains(&id) {
                self.link_retiered.push(id.clone());
            }
            metrics::counter!("ssp_views_retiered_total").increment(1);
            tracing::info!(view = %id, "view moved to the re-query tier: its data now holds a record link on a path it reads");
            tasks.push(task);
        }
        tasks
    }

    /// Registers the views [`Applier::link_retiered`] holds in the engine
    /// again, now that another table is loaded: one whose links all lead
    /// into loaded tables comes back to the incremental tier (its edges
    /// move by the difference, in one transaction); one that still needs a
    /// table waits for the next; any other stays where it is.
    pub(super) async fn promote_link_views(&mut self) {
        if self.link_retiered.is_empty() {
            return;
        }
        self.drain().await;
        for id in std::mem::take(&mut self.link_retiered) {
            let Some(meta) = self.read_engine(|e| {
                e.view(&id)
                    .filter(|_| matches!(e.tier(&id), Some(crate::engine::Tier::Requery { .. })))
            }) else {
                continue;
            };
            let tried = self.engine().register(meta.clone());
            match tried {
                Ok(delta) => {
                    self.dirty.notify_one();
                    let mut edges = EdgeChanges::default();
                    edges.absorb(std::slice::from_ref(&delta));
                    match commit_in_parts(&self.sink, edges, MAX_EDGES_PER_TX).await {
                        Ok(()) => {
                            metrics::counter!("ssp_views_promoted_total").increment(1);
                            tracing::info!(view = %id, "view back in the incremental tier: the tables its links reach are loaded");
                        }
                        Err(e) => {
                            // The engine moved on; the edges did not: repair.
                            tracing::warn!(view = %id, error = %e, "writing the edges of a view back in the incremental tier failed; repairing");
                            self.repair.needed();
                        }
                    }
                }
                Err(EngineError::NeedsTables(_)) => self.link_retiered.push(id),
                Err(e) => {
                    tracing::debug!(view = %id, error = %e, "the view stays in the re-query tier");
                }
            }
        }
    }
}
