//! Startup and shutdown: builds everything from [`Settings`] and runs the
//! server until SIGINT/SIGTERM (or [`Shutdown::trigger`]).
//!
//! [`Application::build`] does all the fallible work (connect with backoff,
//! migrate, bind the port) before anything is served, so a bad start fails
//! with one error instead of a half-running server. Binding to port 0 gives a
//! free port, which is how the tests run many servers in one process.
//!
//! Shutdown order: stop accepting, let in-flight requests finish (bounded by
//! [`SHUTDOWN_GRACE`]), then run the hooks registered with
//! [`Application::on_shutdown`] in order (drain queues, save state), each
//! bounded by [`SHUTDOWN_HOOK_TIMEOUT`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::Settings;
use crate::db::migrations::{self, MigrationError, MigrationReport};
use crate::db::{Db, DbError};
use crate::persistence::Saver;
use crate::persistence::restore::{self, RestoreError};
use crate::persistence::state_file::{FORMAT_VERSION, StateFile};
use crate::pipeline::{Pipeline, ttl_sweep};
use crate::sink::EdgeSink;
use crate::sources::change_worker::ChangeWorker;
use crate::sources::cursors::Cursors;

/// How long a request waits for its changes to commit before a 503.
pub const WRITE_BUDGET: Duration = Duration::from_secs(10);
/// How often expired views are swept.
pub const TTL_SWEEP_EVERY: Duration = Duration::from_secs(5);

/// How long in-flight requests may take to finish once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long one shutdown hook may take.
pub const SHUTDOWN_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Why SSP could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("cannot listen on {addr} (SPOOKY_LISTEN_ADDR): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("cannot restore the state: {0}")]
    Restore(#[from] RestoreError),
}

/// A cloneable switch that starts a graceful shutdown.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    /// Starts the shutdown (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// True once [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the shutdown has started.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // Err means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|triggered| *triggered).await;
    }
}

type Hook = (
    &'static str,
    Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>,
);

/// A built, not yet running SSP: connected, migrated and bound.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Shutdown,
    hooks: Vec<Hook>,
    handle_signals: bool,
    router: Option<Router>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("local_addr", &self.local_addr)
            .field(
                "hooks",
                &self.hooks.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Application {
    /// Connects to SurrealDB (retrying up to the deadline), applies the
    /// migrations and binds the listen address. Prints the generated bearer
    /// secret once when none is configured.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        announce_generated_secret(&settings);
        let db = Arc::new(Db::connect(&settings.surrealdb).await?);
        Self::build_with_db(settings, db).await
    }

    /// Like [`Application::build`] over an existing connection: applies the
    /// migrations (a no-op when they are applied) and binds.
    pub async fn build_with_db(settings: Settings, db: Arc<Db>) -> Result<Self, StartupError> {
        let report = migrations::migrate(&db).await?;
        tracing::info!(
            applied = report.applied.len(),
            skipped = report.skipped.len(),
            "migrations up to date"
        );
        let listener = TcpListener::bind(settings.listen_addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: settings.listen_addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.listen_addr,
            source,
        })?;
        crate::api::metrics::install();
        // The engine: from the state file, or rebuilt from the database.
        let persistence = (!settings.persistence_file.as_os_str().is_empty())
            .then(|| settings.persistence_file.clone());
        let restored = restore::restore(persistence.as_deref(), &db).await?;
        let sink = EdgeSink::new(Arc::clone(&db));
        // Writes made (or lost) while SSP was down: make the edges match first.
        restore::reconcile_edges(&restored.engine, &sink).await?;
        let (pipeline, applier) = Pipeline::start(restored.engine, sink);
        // Tasks that hold the connection: stopped after the shutdown hooks, so
        // that a stopped SSP releases an embedded store.
        let mut background = vec![applier];
        let cursors = Cursors::from_saved(&restored.cursors, &restored.cursor_times);
        let worker = Arc::new(ChangeWorker::start(
            Arc::clone(&db),
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
                Arc::new(move || {
                    // Cursors first: a restart then replays a little more,
                    // never less.
                    let (cursors, cursor_times) = snapshot_cursors.snapshot();
                    let engine = snapshot_pipeline.read(|e| e.to_state());
                    StateFile {
                        format: FORMAT_VERSION,
                        saved_at: Some(chrono::Utc::now()),
                        cursors,
                        cursor_times,
                        engine,
                    }
                }),
            );
            background.push(tokio::spawn(saver.run()));
            handle
        });
        background.push(tokio::spawn(ttl_sweep::run(
            pipeline.clone(),
            TTL_SWEEP_EVERY,
        )));
        let state = Arc::new(AppState {
            settings,
            db,
            pipeline: pipeline.clone(),
            tracker: worker.tracker(),
            worker: Arc::clone(&worker),
            saver: saver.clone(),
            write_budget: WRITE_BUDGET,
        });
        let mut hooks: Vec<Hook> = Vec::new();
        {
            let worker = Arc::clone(&worker);
            let pipeline = pipeline.clone();
            hooks.push((
                "drain the pipeline",
                Box::new(move || {
                    Box::pin(async move {
                        worker.shutdown(Duration::from_secs(5)).await;
                        if let Err(e) = pipeline.flush().await {
                            tracing::error!(error = %e, "draining the pipeline failed");
                        }
                    })
                }),
            ));
        }
        if let Some(handle) = saver {
            hooks.push((
                "save the state file",
                Box::new(move || {
                    Box::pin(async move {
                        match handle.save_now().await {
                            Ok(()) => {
                                tracing::info!(path = %handle.path().display(), "state saved")
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "saving the state on shutdown failed")
                            }
                        }
                    })
                }),
            ));
        }
        hooks.push((
            "stop background tasks",
            Box::new(move || {
                Box::pin(async move {
                    for task in background {
                        task.abort();
                        let _ = task.await;
                    }
                })
            }),
        ));
        Ok(Application {
            listener,
            local_addr,
            state,
            shutdown: Shutdown::default(),
            hooks,
            handle_signals: true,
            router: None,
        })
    }

    /// The bound address (the real port when listening on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The shared state.
    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// The shared database connection.
    pub fn db(&self) -> Arc<Db> {
        Arc::clone(&self.state.db)
    }

    /// A handle that stops the server gracefully from anywhere.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Whether SIGINT/SIGTERM stop the server (default true). Tests running
    /// servers in-process turn it off and use [`Application::shutdown_handle`].
    pub fn handle_signals(mut self, handle: bool) -> Self {
        self.handle_signals = handle;
        self
    }

    /// Replaces the router (later issues build theirs from [`api::router`]
    /// plus their state); by default [`api::router`] over [`Self::state`].
    pub fn with_router(mut self, router: Router) -> Self {
        self.router = Some(router);
        self
    }

    /// Registers work to do after the server has stopped serving: drain
    /// queues, save state. Hooks run in registration order.
    pub fn on_shutdown<F, Fut>(&mut self, name: &'static str, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.push((name, Box::new(move || Box::pin(hook()))));
    }

    /// Serves until shutdown, then drains and runs the shutdown hooks.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let Application {
            listener,
            local_addr,
            state,
            shutdown,
            hooks,
            handle_signals,
            router,
        } = self;
        let router = router.unwrap_or_else(|| api::router(Arc::clone(&state)));

        if handle_signals {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                shutdown.trigger();
            });
        }

        tracing::info!(%local_addr, db = state.db.backend(), "SSP listening");
        // Small request/response pairs on keep-alive connections: without
        // TCP_NODELAY, Nagle and delayed ACKs add ~40ms to some answers.
        let listener = listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        let graceful = {
            let shutdown = shutdown.clone();
            async move { shutdown.wait().await }
        };
        let server = axum::serve(listener, router).with_graceful_shutdown(graceful);
        let result = tokio::select! {
            result = server => result.map_err(StartupError::Serve),
            () = async { shutdown.wait().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                tracing::warn!("requests still running after the shutdown grace period; stopping anyway");
                Ok(())
            }
        };
        tracing::info!("HTTP server stopped; running shutdown hooks");

        for (name, hook) in hooks {
            if tokio::time::timeout(SHUTDOWN_HOOK_TIMEOUT, hook())
                .await
                .is_err()
            {
                tracing::error!(hook = name, "shutdown hook timed out");
            }
        }
        tracing::info!("SSP stopped");
        result
    }
}

/// The tokio runtime SSP runs on: multi-threaded, with 16 MiB thread stacks
/// because the embedded SurrealDB engine recurses deeply (its docs ask for
/// 10 MiB or more). `worker_threads` defaults to the number of cores.
pub fn runtime(worker_threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_stack_size(16 * 1024 * 1024);
    if let Some(n) = worker_threads {
        builder.worker_threads(n);
    }
    builder.build()
}

/// `ssp migrate`: connects, applies the migrations, and reports.
pub async fn migrate_only(settings: &Settings) -> Result<MigrationReport, StartupError> {
    let db = Db::connect(&settings.surrealdb).await?;
    Ok(migrations::migrate(&db).await?)
}

fn announce_generated_secret(settings: &Settings) {
    if settings.auth.generated {
        println!(
            "SPOOKY_AUTH_SECRET is not set; the bearer secret for this run is: {}",
            settings.auth.secret.expose()
        );
        tracing::warn!(
            "no auth secret configured: generated one for this run (printed on stdout); set SPOOKY_AUTH_SECRET to keep it across restarts"
        );
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}
