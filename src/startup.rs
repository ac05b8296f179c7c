//! Startup and shutdown: builds everything from [`Settings`] and runs the
//! server until SIGINT/SIGTERM (or [`Shutdown::trigger`]).
//!
//! Two phases:
//! - [`Application::build`] does the work that either succeeds quickly or
//!   means the configuration is wrong (connect with a deadline, migrate, bind
//!   the port), before anything is served, so a bad start fails with one
//!   error instead of a half-running server. Binding to port 0 gives a free
//!   port, which is how the tests run many servers in one process.
//! - [`Application::run_until_stopped`] serves at once and runs the
//!   [`crate::bootstrap`] (restore, reconcile, start the pipeline
//!   and the worker) beside it, which may take long and outlast a database
//!   outage; [`Application::readiness`] resolves when it has finished.
//!
//! Shutdown order (in any phase): stop accepting and cancel a bootstrap that
//! has not finished, let in-flight requests finish (bounded by
//! [`SHUTDOWN_GRACE`]), then drain the pipeline and save the state (only if
//! the bootstrap finished), stop the background tasks, and run the hooks
//! registered with [`Application::on_shutdown`], each bounded by
//! [`SHUTDOWN_HOOK_TIMEOUT`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::app::{App, Readiness};
use crate::bootstrap;
use crate::bootstrap::restore::RestoreError;
use crate::config::Settings;
use crate::db::migrations::{self, MigrationError, MigrationReport};
use crate::db::{Db, DbError};
pub use crate::shutdown::Shutdown;

/// How long a request waits for its changes to commit before a 503.
pub const WRITE_BUDGET: Duration = Duration::from_secs(10);

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
    #[error("the bootstrap task failed: {0}")]
    Bootstrap(String),
}

type Hook = (
    &'static str,
    Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>,
);

/// A built, not yet running SSP: connected, migrated and bound; the engine
/// is restored once it runs.
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
    /// secret once when none is configured. The engine is not restored yet:
    /// that is the bootstrap, run by [`Application::run_until_stopped`].
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
        let state = Arc::new(AppState::new(
            Arc::new(App::new(settings, db)),
            WRITE_BUDGET,
        ));
        let hooks: Vec<Hook> = Vec::new();
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

    /// Resolves once the bootstrap has finished (what `/health` reports as
    /// ready, minus the database ping).
    pub fn readiness(&self) -> Readiness {
        self.state.readiness()
    }

    /// True while a rebuild from the database runs (it goes on after SSP
    /// is ready: see `bootstrap::rebuild`); watch it for its end.
    pub fn rebuilding(&self) -> tokio::sync::watch::Receiver<bool> {
        self.state.rebuilding()
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

    /// Registers work to do after the server has stopped serving, after
    /// SSP's own (drain, save). Hooks run in registration order.
    pub fn on_shutdown<F, Fut>(&mut self, name: &'static str, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.push((name, Box::new(move || Box::pin(hook()))));
    }

    /// Serves until shutdown while the bootstrap runs beside it, then drains
    /// and runs the shutdown hooks. A bootstrap that fails for good stops the
    /// server and is the error returned.
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
        // The bootstrap beside the server: a fatal failure stops the server.
        let boot = {
            let state = Arc::clone(&state);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let result = bootstrap::run(&state, &shutdown).await;
                if let Err(error) = &result {
                    tracing::error!(%error, "bootstrap failed; stopping");
                    shutdown.trigger();
                }
                result
            })
        };
        if let Some(cluster) = state.cluster.clone() {
            tokio::spawn(crate::cluster::coordinator::run(
                Arc::clone(&state),
                cluster,
                shutdown.clone(),
            ));
        }
        let server = axum::serve(listener, router).with_graceful_shutdown(graceful);
        let result = tokio::select! {
            result = server => result.map_err(StartupError::Serve),
            () = async { shutdown.wait().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                tracing::warn!("requests still running after the shutdown grace period; stopping anyway");
                Ok(())
            }
        };
        tracing::info!("HTTP server stopped; running shutdown hooks");
        // Also when the server failed on its own: a bootstrap still running
        // must end before the engine's tasks are stopped.
        shutdown.trigger();
        let booted = match boot.await {
            Ok(booted) => booted.map_err(StartupError::from),
            Err(e) => Err(StartupError::Bootstrap(e.to_string())),
        };
        let booted = match booted {
            Ok(Some(started)) => {
                bootstrap::stop(&state, started, SHUTDOWN_HOOK_TIMEOUT).await;
                Ok(())
            }
            Ok(None) => {
                tracing::info!(
                    "stopped before the bootstrap finished; the state file is left as it was"
                );
                Ok(())
            }
            Err(error) => Err(error),
        };

        for (name, hook) in hooks {
            if tokio::time::timeout(SHUTDOWN_HOOK_TIMEOUT, hook())
                .await
                .is_err()
            {
                tracing::error!(hook = name, "shutdown hook timed out");
            }
        }
        tracing::info!("SSP stopped");
        result.and(booted)
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

/// Turns transparent huge pages off for this process (Linux; elsewhere a
/// no-op). Call it first thing in `main`, before the runtime starts.
///
/// Why: the embedded SurrealDB allocates fresh stacks for every query it
/// parses and runs, and mimalloc advises huge pages on its arenas, so new
/// memory is faulted in 2 MiB at a time, each fault zeroing the whole page
/// (`clear_page_erms` under `do_huge_pmd_anonymous_page`, 4% of all CPU at
/// 32 embedded `/ingest` clients in `perf`). Without huge pages the CPU per
/// ingest at 32 embedded clients fell from 189-194 us to 161-169 us, and
/// the engine's rows did not move (267-276k changes/s either way, memory
/// per record and per view unchanged). Returns whether the kernel took it.
pub fn disable_transparent_huge_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a
        // flag on this process; no memory is passed to the kernel.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// How long the process waits, once SSP has stopped, for the tasks it does
/// not own (the embedded SurrealDB's) to end. See [`wait_for_background_tasks`].
pub const BACKGROUND_TASKS_GRACE: Duration = Duration::from_secs(10);

/// Waits until no task is left on the runtime, or `grace` has passed; returns
/// how many were still alive at the end.
///
/// Why: the embedded SurrealDB shuts its datastore down in a task of its own
/// when the last client handle is dropped (it stops its maintenance tasks,
/// then closes the storage engine), and nothing hands SSP that task to await.
/// Dropping the runtime straight after SSP stopped cancelled that shutdown
/// half way: SurrealDB then logged "Background task did not shut down
/// cleanly: task N was cancelled" for each maintenance task, and the store
/// was not closed cleanly. Measured after SSP stopped: 3-12 tasks alive, 1
/// after 1 ms, none after ~250 ms (SurrealDB's debounced compaction tasks
/// notice the datastore is gone at their next tick); surrealkv then logs
/// "LSM tree shutdown complete" 0.2-0.8 s after "SSP stopped", a line it
/// never reached before. The grace bounds a stop that some other task would
/// otherwise hold up, well inside the usual 30 s a supervisor allows.
pub async fn wait_for_background_tasks(grace: Duration) -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        let alive = metrics.num_alive_tasks();
        if alive == 0 || tokio::time::Instant::now() >= deadline {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waits_for_tasks_to_end_but_not_past_the_grace() {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        assert_eq!(wait_for_background_tasks(Duration::from_secs(5)).await, 0);
        assert!(
            done.load(std::sync::atomic::Ordering::SeqCst),
            "the task ended first"
        );

        let stuck = tokio::spawn(std::future::pending::<()>());
        let started = std::time::Instant::now();
        assert_eq!(
            wait_for_background_tasks(Duration::from_millis(50)).await,
            1
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "gave up at the grace"
        );
        stuck.abort();
    }
}
