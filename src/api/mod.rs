//! The HTTP API (contract section 2): the router, the state every handler
//! shares, and the layers every request goes through.
//!
//! Layers, outermost first:
//! 1. [`error::normalize_error_responses`]: every error leaves as JSON;
//! 2. tracing of each request;
//! 3. [`auth::require_bearer`]: 401 unless public or the token matches, before
//!    anything else is looked at;
//! 4. the body limit ([`Settings::body_limit_bytes`]; 413 past it), enforced
//!    by axum's `DefaultBodyLimit` as handlers read the body. Deliberately no
//!    up-front `Content-Length` rejection (tower-http's `RequestBodyLimitLayer`):
//!    answering before the body is read makes the server close a socket with
//!    unread data, the kernel then sends a RST, and the client may lose the
//!    413 itself (seen as "connection reset" in tests under load).
//!
//! Routes are added in [`router`]: public ones must also be listed in
//! `auth::PUBLIC_ROUTES`, everything else is protected.

pub mod auth;
pub mod error;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::db::Db;
use crate::engine::EngineError;
use crate::persistence::SaverHandle;
use crate::pipeline::{Pipeline, PipelineError};
use crate::sources::change_worker::{Tracker, WorkerHandle};

pub use error::{ApiError, ApiJson};

/// What every handler can reach. Built once by `startup`, shared behind an
/// `Arc`.
pub struct AppState {
    pub settings: Settings,
    pub db: Arc<Db>,
    /// The one ordered pipeline to the engine and the edge sink.
    pub pipeline: Pipeline,
    /// Loads and follows the tables views read.
    pub tracker: Arc<Tracker>,
    /// The change worker, for its stats and cursors.
    pub worker: Arc<WorkerHandle>,
    /// The state-file saver, when persistence is on.
    pub saver: Option<SaverHandle>,
    /// How long a request waits for its changes to commit before it is
    /// answered 503 (the changes stay queued and are committed later).
    pub write_budget: std::time::Duration,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl AppState {
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

    /// Waits for a pipeline operation, at most [`AppState::write_budget`].
    pub async fn await_pipeline<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, PipelineError>>,
    ) -> Result<T, PipelineError> {
        match tokio::time::timeout(self.write_budget, op).await {
            Ok(result) => result,
            Err(_) => Err(PipelineError::Unavailable(format!(
                "not committed within {}s; the change stays queued and is applied when the database answers again",
                self.write_budget.as_secs_f32()
            ))),
        }
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
        PipelineError::Engine(e @ EngineError::Plan(_)) => {
            ApiError::unprocessable("invalid_query", e.to_string())
        }
        PipelineError::Unavailable(m) => ApiError::Unavailable(m),
        PipelineError::Closed => ApiError::Unavailable("SSP is shutting down".into()),
        PipelineError::Write(m) => ApiError::Internal(m),
    }
}

/// The complete router with all layers.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.settings.body_limit_bytes;
    Router::new()
        .route("/health", get(health::health))
        .route("/version", get(health::version))
        .route("/metrics", get(metrics::metrics))
        .route("/ingest", post(ingest::ingest))
        .route("/view/register", post(views::register))
        .route("/view/unregister", post(views::unregister))
        .route("/view/heartbeat", post(views::heartbeat))
        .route("/view/{id}", get(views::get_view))
        .route("/reset", post(views::reset))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
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
