//! A rebuild from the database, while SSP serves.
//!
//! Without a usable state file (none, corrupt, or persistence off) SSP
//! rebuilds its views from their `_spooky_query` rows. It does so with the
//! pipeline, the change worker and the routes already running: SSP is ready
//! as soon as it is connected, and the views come back one after another,
//! each the way a client's registration brings one (its tables loaded and
//! followed, its first result computed, in whichever tier takes it). So
//! `/ingest`, the change worker's changes and new registrations are served
//! during the rebuild, and each view is exact from the moment it is back;
//! until then its edges stay as they were. A rebuild of a large database
//! costs minutes of reading, not minutes of downtime.
//!
//! Only the edges that differ are written: a view registered again from its
//! row is compared with the edges it has in the database, as the startup
//! reconcile compares every view (`sink::reconcile::plan_view`). Versions
//! are taken back from those edges (and from the versions kept for deleted
//! edges), so no version a client saw goes back, and a record whose content
//! did not change keeps its version.
//!
//! What clients do meanwhile wins: a view registered again, unregistered or
//! expired during the rebuild, or a reset, is not undone by it (see the
//! pipeline's `Request::Rebuilding`). A view whose row no longer plans, and
//! edges of views that have no row, are removed as the startup reconcile
//! removes them. `/health` shows `bootstrap.rebuild` (`views`, done of
//! total) until the rebuild ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backoff::backoff::Backoff;

use crate::api::{ApiError, AppState};
use crate::app::{Core, RebuildProgress};
use crate::db::DbError;
use crate::engine::ViewMeta;
use crate::sink::reconcile::{self, EdgeRow};

/// Views to rebuild, as their rows were at startup.
pub struct Pending {
    pub views: Vec<ViewMeta>,
}

/// Rebuilds `pending`'s views one after another; ends with the pipeline
/// told that the rebuild is over. Runs until done or aborted (shutdown).
pub async fn run(state: Arc<AppState>, pending: Pending) {
    let Some(core) = state.try_core() else {
        return;
    };
    let started = std::time::Instant::now();
    let total = pending.views.len();
    let mut edges = loop {
        match reconcile::read_edges(&state.db, None).await {
            Ok(edges) => break by_view(edges),
            Err(e) => {
                tracing::warn!(error = %e, "rebuild: reading the edges failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut rebuilt = 0;
    for (i, meta) in pending.views.into_iter().enumerate() {
        let id = meta.id.to_string();
        let view_edges = edges.remove(&id).unwrap_or_default();
        match register(&state, core, meta, view_edges).await {
            Ok(()) => rebuilt += 1,
            Err(e) => {
                tracing::warn!(view = %id, error = %e, "rebuild: a stored view no longer registers; its row and edges are removed");
                drop_orphan(core, id).await;
            }
        }
        state.rebuild_progress(RebuildProgress {
            step: "views",
            done: i + 1,
            total,
        });
    }
    // Edges of views that have no row: removed, unless a client registered
    // the view since.
    for (id, _) in edges {
        drop_orphan(core, id).await;
    }
    if let Err(e) = core.pipeline.rebuilding(false).await {
        tracing::warn!(error = %e, "rebuild: ending it in the pipeline failed");
    }
    state.rebuild_finished();
    tracing::info!(
        views = rebuilt,
        of = total,
        took_ms = started.elapsed().as_millis() as u64,
        "rebuild from the database finished"
    );
}

fn by_view(edges: Vec<EdgeRow>) -> HashMap<String, Vec<EdgeRow>> {
    let mut out: HashMap<String, Vec<EdgeRow>> = HashMap::new();
    for e in edges {
        out.entry(e.view.clone()).or_default().push(e);
    }
    out
}

/// Registers one view from its row, waiting out an unavailable database.
/// `Err`: the view no longer registers (it does not plan any more).
async fn register(
    state: &AppState,
    core: &Core,
    meta: ViewMeta,
    edges: Vec<EdgeRow>,
) -> Result<(), ApiError> {
    let mut backoff =
        crate::db::backoff_forever(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match crate::api::views::register_from_row(state, core, meta.clone(), edges.clone()).await {
            Ok(()) => return Ok(()),
            Err(e @ (ApiError::Unprocessable { .. } | ApiError::BadRequest(_))) => return Err(e),
            Err(e) => {
                let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(5));
                tracing::warn!(view = %meta.id, error = %e, retry_in_ms = wait.as_millis() as u64, "rebuild: registering a view failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn drop_orphan(core: &Core, id: String) {
    if let Err(e) = core.pipeline.drop_orphan(id.clone()).await {
        tracing::warn!(view = %id, error = %e, "rebuild: removing a view's row and edges failed");
    }
}

/// Gives `engine` the versions kept for deleted edges, as the startup
/// reconcile does, before the pipeline starts: a record that enters a view
/// again comes back above them.
pub async fn raise_to_kept(
    engine: &mut crate::engine::Engine,
    db: &crate::db::Db,
) -> Result<(), DbError> {
    let kept = reconcile::read_kept_versions(db).await?;
    reconcile::raise_to_kept(engine, &kept);
    Ok(())
}
