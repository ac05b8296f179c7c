//! The HTTP API (contract section 2): the router, the state every handler
//! shares, and the layers every request goes through.
//!
//! Layers, outermost first:
//! 1. [`error::normalize_error_responses`]: every error leaves as JSON;
//! 2. tracing of each request;
//! 3. [`auth::require_bearer`]: 401 unless public or the token matches, before
//!    anything else is looked at;
//! 4. [`admission::admit`]: a request with a body takes its share of a fixed
//!    budget of body bytes in flight, or gets 503 `not_queued`, so that
//!    memory stays bounded while the database is down;
//! 5. the body limit ([`Settings::body_limit_bytes`]; 413 past it), enforced
//!    by axum's `DefaultBodyLimit` as handlers read the body. Deliberately no
//!    up-front `Content-Length` rejection (tower-http's `RequestBodyLimitLayer`):
//!    answering before the body is read makes the server close a socket with
//!    unread data, the kernel then sends a RST, and the client may lose the
//!    413 itself (seen as "connection reset" in tests under load).
//!
//! A route is declared once, on its handler (`#[utoipa::path]`: method,
//! path, bodies, answers), and added in [`routes()`], which gives both the axum
//! routes and the OpenAPI description (see [`openapi`]). Public ones must
//! also be listed in `auth::PUBLIC_ROUTES` and say `security(())`;
//! everything else is protected.

pub mod admission;
pub mod auth;
pub mod error;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod openapi;
pub mod views;

use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use serde::Serialize;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Settings;
use crate::db::Db;
use crate::engine::EngineError;
use crate::engine::plan::PlanError;
use crate::persistence::SaverHandle;
use crate::pipeline::{Pipeline, PipelineError};
use crate::sources::change_worker::{Tracker, WorkerHandle};

pub use error::{ApiError, ApiJson, ErrorBody};

/// What every handler can reach. Built once by `startup`, shared behind an
/// `Arc`. The engine side ([`Core`]) only exists once the bootstrap has
/// finished: the server answers (probes, metrics) while it runs, and routes
/// that need the engine answer 503 `not_ready` until then.
pub struct AppState {
    pub settings: Settings,
    pub db: Arc<Db>,
    /// How long a request waits for its changes to commit before it is
    /// answered 503 (saying whether the change is queued).
    pub write_budget: std::time::Duration,
    /// The budget of request bodies held at once.
    pub admission: admission::Admission,
    /// The database status `/health` reports, pinged at most once per
    /// [`health::DB_STATUS_TTL`].
    pub db_status: health::DbStatusCache,
    /// The schema's field types, by table: what `/ingest`'s JSON becomes.
    pub field_types: crate::db::field_types::FieldTypes,
    core: OnceLock<Core>,
    /// `true` once `core` is set; a watch so that waiters need no polling.
    ready: watch::Sender<bool>,
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

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// A state whose engine side is not there yet (see [`AppState::set_core`]).
    pub fn new(settings: Settings, db: Arc<Db>, write_budget: std::time::Duration) -> Self {
        AppState {
            admission: admission::Admission::new(settings.body_limit_bytes),
            settings,
            db,
            write_budget,
            db_status: health::DbStatusCache::new(health::DB_STATUS_TTL),
            field_types: Default::default(),
            core: OnceLock::new(),
            ready: watch::channel(false).0,
            bootstrap: Mutex::default(),
        }
    }

    /// The engine side, or 503 `not_ready` while the bootstrap runs.
    pub fn core(&self) -> Result<&Core, ApiError> {
        self.core.get().ok_or_else(|| {
            ApiError::NotReady(
                "SSP is starting (restoring its state); retry when GET /health answers 200".into(),
            )
        })
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

    /// How the bootstrap is going.
    pub fn bootstrap_progress(&self) -> BootstrapProgress {
        self.bootstrap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The pipeline as routes use it: each call waits at most
    /// [`AppState::write_budget`] and then says whether its request is
    /// queued ([`Pipeline::within`]). 503 `not_ready` while starting.
    pub fn pipeline(&self) -> Result<Pipeline, ApiError> {
        Ok(self.core()?.pipeline.within(self.write_budget))
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

/// How pipeline failures reach clients.
pub fn pipeline_error(error: PipelineError) -> ApiError {
    match error {
        PipelineError::Engine(EngineError::BadParams) => {
            ApiError::BadRequest("`params` must be a JSON object".into())
        }
        PipelineError::Engine(EngineError::Parse(e)) => {
            ApiError::unprocessable("unsupported_query", e.to_string())
        }
        PipelineError::Engine(e @ EngineError::Plan(PlanError::OrderByComputed { .. })) => {
            ApiError::unprocessable("unsupported_query", e.to_string())
        }
        PipelineError::Engine(e @ EngineError::Plan(_)) => {
            ApiError::unprocessable("invalid_query", e.to_string())
        }
        PipelineError::Unavailable(m) => ApiError::Unavailable(m),
        PipelineError::NotQueued(m) => ApiError::NotQueued(m),
        PipelineError::Closed => {
            ApiError::NotQueued("SSP is shutting down; the request was not carried out".into())
        }
        PipelineError::Write(m) => ApiError::WriteFailed(format!("database write failed: {m}")),
        e @ PipelineError::Query(_) => ApiError::unprocessable("invalid_query", e.to_string()),
    }
}

/// Every route, each declared once on its handler (`#[utoipa::path]`): the
/// axum routes and the OpenAPI description both come from here. One
/// `routes!` per path: `utoipa-axum` mounts all handlers of one call on
/// every path of that call.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::live))
        .routes(routes!(health::version))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(metrics::metrics))
        .routes(routes!(ingest::ingest))
        .routes(routes!(views::register))
        .routes(routes!(views::unregister))
        .routes(routes!(views::heartbeat))
        .routes(routes!(views::get_view))
        .routes(routes!(views::reset))
}

/// The OpenAPI description of [`routes()`].
pub fn spec() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// The complete router with all layers.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.settings.body_limit_bytes;
    let (routes, spec) = routes().split_for_parts();
    // Rendered once; the description is the same for every request.
    let spec = spec.to_pretty_json().unwrap_or_else(|e| {
        format!(r#"{{"error": "cannot render the OpenAPI description: {e}"}}"#)
    });
    routes
        .fallback(not_found)
        .layer(Extension(openapi::SpecJson(Arc::new(spec))))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            admission::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require_bearer,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(
            body_limit,
            error::normalize_error_responses,
        ))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}
