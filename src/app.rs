//! The application: what the HTTP routes and the bootstrap share. The
//! routes receive it (through `api::AppState`); the bootstrap builds
//! its engine side ([`Core`]) and flips readiness.

use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use tokio::sync::watch;

use crate::config::Settings;
use crate::db::Db;
use crate::db::field_types::FieldTypes;
use crate::persistence::SaverHandle;
use crate::pipeline::Pipeline;
use crate::sources::change_worker::{Tracker, WorkerHandle};

/// The application the routes and the bootstrap share: settings, the
/// database connection, and the engine side ([`Core`]), which only exists once
/// the bootstrap has finished: the server answers (probes, metrics) while it
/// runs, and routes that need the engine answer 503 `not_ready` until then.
pub struct App {
    pub settings: Settings,
    pub db: Arc<Db>,
    /// The schema's field types, by table: what `/ingest`'s JSON becomes.
    pub field_types: FieldTypes,
    /// This instance's side of the cluster, when `[cluster] enabled`.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    core: OnceLock<Core>,
    /// `true` once `core` is set; a watch so that waiters need no polling.
    ready: watch::Sender<bool>,
    /// True while a rebuild from the database runs (see
    /// `bootstrap::rebuild`): set before readiness flips.
    rebuilding: watch::Sender<bool>,
    bootstrap: Mutex<BootstrapProgress>,
}

/// The engine side, built by the bootstrap (restore, reconcile, start).
pub struct Core {
    /// The one ordered pipeline to the engine and the edge sink.
    pub pipeline: Pipeline,
    /// Loads and follows the tables views read.
    pub tracker: Arc<Tracker>,
    /// The change worker, for its stats and cursors.
    pub worker: Arc<WorkerHandle>,
    /// The state-file saver, when persistence is on.
    pub saver: Option<SaverHandle>,
    /// Where the engine's state came from at startup: `state_file`, or a
    /// rebuild from the database (see `persistence::restore`).
    pub origin: &'static str,
}

/// How the bootstrap is going, for `/health` while it has not finished.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct BootstrapProgress {
    /// Attempts that failed (the database was unavailable) so far.
    pub failed_attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// A rebuild from the database under way (no usable state file): SSP
    /// serves meanwhile, and views come back one by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<RebuildProgress>,
}

/// Where a rebuild from the database is: its step, and how far into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RebuildProgress {
    /// `views`: each view registered again from its row (its tables
    /// loaded, its result computed, its edges compared).
    #[schema(value_type = String, example = "tables")]
    pub step: &'static str,
    pub done: usize,
    pub total: usize,
}

/// Resolves once SSP is ready; cheap to clone.
#[derive(Debug, Clone)]
pub struct Readiness(watch::Receiver<bool>);

impl Readiness {
    /// True once the bootstrap has finished.
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until ready: `true`, or `false` when SSP stopped before it
    /// became ready (so a waiter never hangs on a server that is gone).
    pub async fn wait(&mut self) -> bool {
        self.0.wait_for(|ready| *ready).await.is_ok()
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("db", &self.db)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl App {
    /// An application whose engine side is not there yet (see [`App::set_core`]).
    pub fn new(settings: Settings, db: Arc<Db>) -> Self {
        App {
            cluster: settings
                .cluster
                .enabled
                .then(|| crate::cluster::Cluster::new(settings.cluster.clone())),
            settings,
            db,
            field_types: Default::default(),
            core: OnceLock::new(),
            ready: watch::channel(false).0,
            rebuilding: watch::channel(false).0,
            bootstrap: Mutex::default(),
        }
    }

    /// The engine side, if the bootstrap has finished.
    pub fn try_core(&self) -> Option<&Core> {
        self.core.get()
    }

    /// True once the bootstrap has finished.
    pub fn is_ready(&self) -> bool {
        self.core.get().is_some()
    }

    /// Installs the engine side and flips readiness. Only the first call
    /// counts: false (and `core` dropped) for a later one.
    pub fn set_core(&self, core: Core) -> bool {
        if self.core.set(core).is_err() {
            return false;
        }
        self.ready.send_replace(true);
        true
    }

    /// A handle that resolves once ready.
    pub fn readiness(&self) -> Readiness {
        Readiness(self.ready.subscribe())
    }

    /// Records a failed bootstrap attempt (shown by `/health`).
    pub fn bootstrap_failed(&self, error: String) {
        let mut progress = self.bootstrap.lock().unwrap_or_else(|p| p.into_inner());
        progress.failed_attempts += 1;
        progress.last_error = Some(error);
    }

    /// A rebuild from the database of `views` views starts (before SSP
    /// is ready; it goes on after).
    pub fn rebuild_started(&self, views: usize) {
        self.rebuilding.send_replace(true);
        self.rebuild_progress(RebuildProgress {
            step: "views",
            done: 0,
            total: views,
        });
    }

    /// The rebuild from the database ended.
    pub fn rebuild_finished(&self) {
        self.bootstrap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rebuild = None;
        self.rebuilding.send_replace(false);
    }

    /// Whether a rebuild from the database runs; a receiver to wait for
    /// its end (`false`).
    pub fn rebuilding(&self) -> watch::Receiver<bool> {
        self.rebuilding.subscribe()
    }

    /// Records how far a rebuild from the database is (shown by `/health`).
    pub fn rebuild_progress(&self, progress: RebuildProgress) {
        self.bootstrap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rebuild = Some(progress);
    }

    /// How the bootstrap is going.
    pub fn bootstrap_progress(&self) -> BootstrapProgress {
        self.bootstrap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Core {
    /// Tables the change worker follows (those with a cursor) and its lag:
    /// the newest versionstamp seen minus the oldest cursor, 0 when caught
    /// up or before the first feed pass.
    pub fn worker_lag(&self) -> (Vec<String>, u64) {
        let cursors = self.worker.cursors().versionstamps();
        let head = self
            .worker
            .stats()
            .feed_head
            .load(std::sync::atomic::Ordering::Relaxed);
        let oldest = cursors.values().min().copied().unwrap_or(head);
        (cursors.into_keys().collect(), head.saturating_sub(oldest))
    }
}
