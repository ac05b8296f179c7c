//! The HTTP API: the router, the state every handler shares, and the layers
//! every request goes through.
//!
//! Layers, outermost first:
//! 1. [`error::normalize_error_responses`]: every error leaves as JSON;
//! 2. tracing of each request;
//! 3. [`auth::require_bearer`]: 401 unless public or the token matches, before
//!    anything else is looked at;
//! 4. [`admission::admit`]: a request with a body takes its share of a fixed
//!    budget of body bytes in flight, or gets 503 `not_queued`, so that
//!    memory stays bounded while the database is down;
//! 5. the body limit ([`crate::config::Settings::body_limit_bytes`]; 413 past it), enforced
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

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{App, Core};
use crate::engine::EngineError;
use crate::engine::plan::PlanError;
use crate::pipeline::{Pipeline, PipelineError};

pub use error::{ApiError, ApiJson, ErrorBody};

/// What every handler can reach: the application ([`App`], reached through
/// `Deref`: `state.db`, `state.settings`, `state.try_core()`), and what only
/// the HTTP layer needs. Built once by `startup`, shared behind an `Arc`.
pub struct AppState {
    pub app: Arc<App>,
    /// How long a request waits for its changes to commit before it is
    /// answered 503 (saying whether the change is queued).
    pub write_budget: std::time::Duration,
    /// The budget of request bodies held at once.
    pub admission: admission::Admission,
    /// The database status `/health` reports, pinged at most once per
    /// [`health::DB_STATUS_TTL`].
    pub db_status: health::DbStatusCache,
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(app: Arc<App>, write_budget: std::time::Duration) -> Self {
        AppState {
            admission: admission::Admission::new(app.settings.body_limit_bytes),
            db_status: health::DbStatusCache::new(health::DB_STATUS_TTL),
            app,
            write_budget,
        }
    }

    /// The engine side, or 503 `not_ready` while the bootstrap runs.
    pub fn core(&self) -> Result<&Core, ApiError> {
        self.app.try_core().ok_or_else(|| {
            ApiError::NotReady(
                "SSP is starting (restoring its state); retry when GET /health answers 200".into(),
            )
        })
    }

    /// The pipeline as routes use it: each call waits at most
    /// [`AppState::write_budget`] and then says whether its request is
    /// queued ([`Pipeline::within`]). 503 `not_ready` while starting.
    pub fn pipeline(&self) -> Result<Pipeline, ApiError> {
        Ok(self.core()?.pipeline.within(self.write_budget))
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
        // The register route loads the tables and tries again; reaching a
        // client means they did not load in time.
        PipelineError::Engine(e @ EngineError::NeedsTables(_)) => {
            ApiError::NotQueued(format!("{e}; the view was not registered: retry it"))
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
            crate::cluster::forward::route,
        ))
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
