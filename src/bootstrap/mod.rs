//! The bootstrap: everything between "the port is bound" and "ready".
//!
//! Restoring the engine (from the state file, or rebuilt from the database),
//! reconciling the edges and starting the pipeline, the change worker, the
//! saver and the TTL sweep can take minutes on a large database, and the
//! database may be down meanwhile. So it runs while the server already
//! answers: the probes say `starting`, routes that need the engine answer 503
//! `not_ready`. While the database is unavailable the bootstrap retries with
//! backoff instead of exiting; an error that waiting will not fix (a state
//! file that cannot be moved aside, a statement SurrealDB refuses) is fatal
//! and stops the server with one error, as a failed `build` does.
//!
//! Nothing is saved until the bootstrap has finished: the saver is one of the
//! things it starts, so a server stopped while starting never overwrites the
//! state file with an empty engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backoff::backoff::Backoff;
use tokio::task::JoinHandle;

pub mod rebuild;
pub mod restore;

use restore::RestoreError;

use crate::app::{App, Core};
use crate::persistence::Saver;
use crate::persistence::change_log::LogEntry;
use crate::persistence::saver::Taken;
use crate::persistence::state_file::{FORMAT_VERSION, StateFile};
use crate::pipeline::{Pipeline, ttl_sweep};
use crate::shutdown::Shutdown;
use crate::sink::EdgeSink;
use crate::sources::change_worker::ChangeWorker;
use crate::sources::cursors::Cursors;

/// How long a clustered instance tries to hand its views over on shutdown.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);

/// How often expired views are swept.
pub const TTL_SWEEP_EVERY: Duration = Duration::from_secs(5);

/// The first wait after a failed attempt; about doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a finished bootstrap leaves for the shutdown: the tasks that hold the
/// connection (stopped last, so that a stopped SSP releases an embedded
/// store). The rest is in [`App`]'s [`Core`].
pub struct Started {
    pub background: Vec<JoinHandle<()>>,
    /// A rebuild from the database still running: stopped first.
    pub rebuild: Option<JoinHandle<()>>,
}

/// Runs the bootstrap until it has finished (`Ok(Some)`, readiness flipped),
/// the shutdown started (`Ok(None)`, nothing started), or it failed for good.
pub async fn run(
    state: &Arc<crate::api::AppState>,
    shutdown: &Shutdown,
) -> Result<Option<Started>, RestoreError> {
    let started = Instant::now();
    let mut backoff = crate::db::backoff_forever(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        let attempt = tokio::select! {
            biased;
            () = shutdown.wait() => return Ok(None),
            attempt = attempt(state) => attempt,
        };
        match attempt {
            Ok((core, mut started_tasks, rebuild)) => {
                let views = core.pipeline.read(|e| e.view_count());
                let records = core.pipeline.read(|e| e.record_count());
                if !state.set_core(core) {
                    // Cannot happen: only this function sets the core.
                    tracing::error!("the engine was already started; keeping the first one");
                }
                tracing::info!(
                    views,
                    records,
                    took_ms = started.elapsed().as_millis() as u64,
                    "SSP ready"
                );
                started_tasks.rebuild =
                    rebuild.map(|pending| tokio::spawn(rebuild::run(Arc::clone(state), pending)));
                return Ok(Some(started_tasks));
            }
            Err(error) if retryable(&error) => {
                let wait = backoff.next_backoff().unwrap_or(MAX_BACKOFF);
                tracing::warn!(
                    %error,
                    retry_in_ms = wait.as_millis() as u64,
                    "bootstrap: the database is unavailable; retrying"
                );
                state.bootstrap_failed(error.to_string());
                tokio::select! {
                    biased;
                    () = shutdown.wait() => return Ok(None),
                    () = tokio::time::sleep(wait) => {}
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// Whether waiting can fix it: the database did not answer, or a
/// transaction conflicted.
fn retryable(error: &RestoreError) -> bool {
    match error {
        RestoreError::Db(e) => e.is_unavailable() || e.is_conflict(),
        RestoreError::MoveAside(_) => false,
    }
}

/// One attempt: restore, reconcile, then start everything. Cancel-safe: the
/// only awaits are the restore and the reconcile, which start nothing.
async fn attempt(state: &App) -> Result<(Core, Started, Option<rebuild::Pending>), RestoreError> {
    let settings = &state.settings;
    let db = &state.db;
    // The engine: from the state file, or rebuilt from the database.
    // Clustered, an instance starts empty and keeps no state file: its
    // views are the ones it takes, each rebuilt from its row, its records
    // and its edges (see `crate::cluster`).
    let persistence = (!settings.persistence_file.as_os_str().is_empty()
        && state.cluster.is_none())
    .then(|| settings.persistence_file.clone());
    let sink = EdgeSink::with_writers(Arc::clone(db), settings.write_concurrency)
        .await
        .fenced_by(state.cluster.as_ref().map(|c| Arc::clone(&c.holds)));
    let restored = match &state.cluster {
        Some(_) => restore::Restored {
            engine: crate::engine::Engine::new(),
            cursors: Default::default(),
            cursor_times: Default::default(),
            origin: "cluster",
            pending: Vec::new(),
        },
        None => {
            let mut restored = restore::restore(persistence.as_deref(), db).await?;
            match restored.pending.is_empty() {
                // Writes made (or lost) while SSP was down: make the edges
                // match first.
                true => {
                    crate::sink::reconcile::reconcile(&mut restored.engine, &sink).await?;
                }
                // Each view's edges are compared as it comes back.
                false => rebuild::raise_to_kept(&mut restored.engine, db).await?,
            }
            restored
        }
    };
    let mut restored = restored;
    let origin = restored.origin;
    tracing::info!(origin, "state restored");

    if persistence.is_some() {
        // The saver writes what changed from here on (its first save is a
        // full snapshot either way).
        restored.engine.track_changes();
    }
    let (pipeline, applier) = Pipeline::start(restored.engine, sink);
    let mut background = vec![applier];
    let rebuild = (!restored.pending.is_empty()).then(|| rebuild::Pending {
        views: std::mem::take(&mut restored.pending),
    });
    if let Some(r) = &rebuild {
        if let Err(e) = pipeline.rebuilding(true).await {
            tracing::warn!(error = %e, "starting the rebuild in the pipeline failed");
        }
        tracing::info!(
            views = r.views.len(),
            "rebuilding the views from the database while serving"
        );
        state.rebuild_started(r.views.len());
    }
    let cursors = Cursors::from_saved(&restored.cursors, &restored.cursor_times);
    let worker = Arc::new(ChangeWorker::start(
        Arc::clone(db),
        pipeline.clone(),
        settings.worker.clone(),
        cursors.clone(),
    ));
    let saver = persistence.map(|path| {
        let snapshot_pipeline = pipeline.clone();
        let snapshot_cursors = cursors.clone();
        let (saver, handle) = Saver::new(
            path,
            settings.save_debounce,
            Arc::clone(pipeline.dirty()),
            Arc::new(move |full| {
                // Cursors first: a restart then replays a little more,
                // never less.
                let (cursors, cursor_times) = snapshot_cursors.snapshot();
                let saved_at = chrono::Utc::now();
                snapshot_pipeline.write(|e| {
                    if full || e.wants_full_save() {
                        Taken::Full(StateFile {
                            format: FORMAT_VERSION,
                            saved_at: Some(saved_at),
                            generation: 0,
                            cursors,
                            cursor_times,
                            engine: e.take_state(),
                        })
                    } else {
                        Taken::Delta(LogEntry {
                            generation: 0,
                            saved_at,
                            cursors,
                            cursor_times,
                            engine: e.take_delta(),
                        })
                    }
                })
            }),
        );
        background.push(tokio::spawn(saver.run()));
        handle
    });
    background.push(tokio::spawn(ttl_sweep::run(
        pipeline.clone(),
        TTL_SWEEP_EVERY,
    )));
    let core = Core {
        tracker: worker.tracker(),
        pipeline,
        worker,
        saver,
        origin,
    };
    let started = Started {
        background,
        rebuild: None,
    };
    Ok((core, started, rebuild))
}

/// The shutdown of a bootstrapped SSP, in order: stop the worker and drain
/// the pipeline, save the state file, stop the background tasks.
pub async fn stop(state: &App, started: Started, hook_timeout: Duration) {
    // A rebuild still running stops here: the views it has not brought
    // back yet keep their rows, and come back at the next start.
    if let Some(task) = started.rebuild {
        task.abort();
        let _ = task.await;
    }
    if let Some(core) = state.try_core() {
        if let Some(cluster) = &state.cluster {
            // Hand every view over now, rather than after the lease, and
            // first: the server already answered its last request, and an
            // edge write of the drain for a view released here is fenced
            // out, to be rebuilt by its next holder from the database.
            // Bounded by a few seconds, not the hook timeout: if it fails the
            // views move when the lease ends anyway. (In the tests, under
            // write conflicts between instances, the in-memory server
            // sometimes left a commit of this instance unanswered.)
            match tokio::time::timeout(
                LEAVE_TIMEOUT.min(hook_timeout),
                crate::cluster::membership::leave(&state.db, cluster),
            )
            .await
            {
                Ok(Ok(views)) => tracing::info!(
                    views,
                    "cluster: left; every view this instance held is released"
                ),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cluster: leaving failed; the views move when the lease ends")
                }
                Err(_) => tracing::error!(hook = "leave the cluster", "shutdown hook timed out"),
            }
        }
        let drain = async {
            core.worker.shutdown(Duration::from_secs(5)).await;
            if let Err(e) = core.pipeline.flush().await {
                tracing::error!(error = %e, "draining the pipeline failed");
            }
        };
        if tokio::time::timeout(hook_timeout, drain).await.is_err() {
            tracing::error!(hook = "drain the pipeline", "shutdown hook timed out");
        }
        if let Some(saver) = &core.saver {
            match tokio::time::timeout(hook_timeout, saver.save_now()).await {
                Ok(Ok(())) => tracing::info!(path = %saver.path().display(), "state saved"),
                Ok(Err(e)) => tracing::error!(error = %e, "saving the state on shutdown failed"),
                Err(_) => tracing::error!(hook = "save the state file", "shutdown hook timed out"),
            }
        }
    }
    for task in started.background {
        task.abort();
        let _ = task.await;
    }
}
