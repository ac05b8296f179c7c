//! Following `_spooky_query`: a view row deleted or changed in the database unregisters or refreshes the view.

use super::*;

impl Worker {
    /// Subscribes to deletes of `_spooky_query` rows, then unregisters the
    /// views whose rows are already gone (deleted while SSP was not
    /// listening).
    pub(super) async fn follow_views(&mut self) {
        match live::subscribe(&self.db, QUERY_TABLE, true).await {
            Ok(sub) => {
                let follow = self.attach(Target::Views, sub);
                self.views = follow.replacing(&self.views);
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot subscribe to _spooky_query yet");
                self.views.retry_later();
                return;
            }
        }
        if let Err(e) = self.remove_views_without_rows().await {
            tracing::warn!(error = %e, "cannot compare views with their _spooky_query rows");
        }
    }

    pub(super) async fn remove_views_without_rows(&mut self) -> Result<(), StepError> {
        // Views known now, then everything queued committed (their rows
        // written), then the rows: a view registered meanwhile is not in
        // the first list, so it is never mistaken for a deleted one.
        let known: Vec<String> = self
            .pipeline
            .read(|engine| engine.views().map(|v| v.id.to_string()).collect());
        if known.is_empty() {
            return Ok(());
        }
        self.flush().await?;
        let q =
            Query::new("SELECT VALUE id FROM type::table($t)").bind("t", QUERY_TABLE.to_string());
        let mut response = self.db.run_background(q).await?;
        let rows: Vec<sdb::Value> = response.take(0)?;
        let present: HashSet<String> = rows
            .into_iter()
            .filter_map(|v| match v {
                sdb::Value::RecordId(r) => {
                    crate::db::values::record_id_from_surreal(&r).map(|id| view_id_of(&id))
                }
                _ => None,
            })
            .collect();
        for id in known {
            if present.contains(&id) {
                continue;
            }
            if self.pipeline.read(|engine| engine.view(&id).is_some()) {
                tracing::info!(view = %id, "the view's _spooky_query row is gone: unregistering the view");
                self.unregister(id).await?;
                WorkerStats::bump(&self.stats.views_removed, 1);
            }
        }
        Ok(())
    }

    /// A `_spooky_query` row was deleted in the database.
    pub(super) async fn view_row_deleted(&mut self, row: RecordId) -> Result<(), StepError> {
        let id = view_id_of(&row);
        // Unknown views: deleted by SSP's own unregister (or never ours).
        if !self.pipeline.read(|engine| engine.view(&id).is_some()) {
            return Ok(());
        }
        // The view may have been registered again since the delete: then its
        // row exists again once everything queued is committed.
        self.flush().await?;
        let q = Query::new("SELECT VALUE id FROM $row")
            .bind("row", sdb::Value::RecordId(record_id_to_surreal(&row)));
        let exists = match self.db.run_background(q).await {
            Ok(mut response) => !response.take::<Vec<sdb::Value>>(0)?.is_empty(),
            Err(e) => return Err(e.into()),
        };
        if exists || !self.pipeline.read(|engine| engine.view(&id).is_some()) {
            return Ok(());
        }
        tracing::info!(view = %id, "the view's _spooky_query row was deleted in the database: unregistering the view");
        self.unregister(id).await?;
        WorkerStats::bump(&self.stats.views_removed, 1);
        self.reconcile_soon();
        Ok(())
    }

    pub(super) fn reconcile_soon(&mut self) {
        self.last_reconcile = Instant::now() - RECONCILE_INTERVAL;
    }
}
