//! Public probes: `GET /health` (readiness), `GET /health/live` (liveness)
//! and `GET /version`.
//!
//! Liveness and readiness are different questions. `/health/live` answers
//! 200 as long as the process serves HTTP, without touching the database: a
//! supervisor that restarts SSP on it never kills a server that is only
//! restoring a large state or waiting for its database. `/health` answers
//! 200 only when SSP can serve the API: the bootstrap has finished and the
//! database answers a ping within the call timeout; otherwise 503, with the
//! same JSON body either way, so that load balancers and people read the
//! same thing.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppState, BootstrapProgress};

/// The SurrealDB SDK version SSP is built and measured against.
pub const SURREALDB_VERSION: &str = "3.3.5";

/// `GET /health` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (ready), `starting` (the bootstrap has not finished) or
    /// `unavailable` (the database does not answer).
    #[schema(value_type = String, example = "ok")]
    pub status: &'static str,
    /// True when the API can be used: the answer is 200.
    pub ready: bool,
    /// Always true in an answer: the process serves.
    pub live: bool,
    #[schema(value_type = String)]
    pub version: &'static str,
    pub db: DbHealth,
    /// Registered views (0 while starting).
    pub views: usize,
    /// Records the engine holds.
    pub records: usize,
    pub pipeline: PipelineHealth,
    pub state_file: StateFileHealth,
    pub worker: WorkerHealth,
    /// Present while starting: failed bootstrap attempts and the last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapProgress>,
}

/// The change-worker part of `/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerHealth {
    /// Tables followed with a change-feed cursor.
    pub tracked_tables: Vec<String>,
    /// Newest versionstamp seen minus the oldest cursor (on SurrealKV, mem and
    /// RocksDB a versionstamp is milliseconds << 16, so `lag >> 16` is ms).
    pub lag: u64,
}

/// The state-file part of `/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateFileHealth {
    pub enabled: bool,
    /// Saves since start.
    pub saves: u64,
    pub failures: u64,
    pub last_save_unix_ms: Option<u64>,
}

/// The pipeline part of `/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineHealth {
    /// Round trips made by edge and view writes (not the worker's reads).
    pub round_trips: u64,
    /// Requests waiting for the applier.
    pub queue_depth: usize,
    /// True while the database refuses a write SSP must repair: some edges
    /// or view rows may differ from the engine until the repair commits.
    pub diverged: bool,
}

/// The database part of `/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DbHealth {
    /// `up` or `down`.
    #[schema(value_type = String, example = "up")]
    pub status: &'static str,
    /// `ws`, `wss`, `mem` or `surrealkv`.
    #[schema(value_type = String, example = "ws")]
    pub backend: &'static str,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    /// Database calls made so far (on the main connection).
    pub round_trips: u64,
    /// Connections SSP holds: the main one, plus one per extra write slot
    /// over `ws://` (`write_concurrency`). All of them must answer the ping.
    pub connections: usize,
}

/// Readiness.
///
/// 200 when SSP can serve the API (startup finished and the database
/// answers a ping), 503 while starting or while the database is down.
#[utoipa::path(
    get,
    path = "/health",
    tag = "probes",
    security(()),
    responses(
        (status = 200, description = "Ready (`status` is `ok`)", body = Health),
        (status = 503, description = "Not ready: `status` is `starting` or `unavailable`", body = Health),
    )
)]
pub async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let core = state.try_core();
    let writers = core.map_or(&[][..], |c| c.pipeline.write_connections());
    // Every connection answers, or the API cannot serve: an ingest may be
    // written on any of them.
    let (ping, writer_pings) = futures::join!(
        state.db.ping(),
        futures::future::join_all(writers.iter().map(|w| w.ping()))
    );
    let writer_error = writer_pings
        .into_iter()
        .enumerate()
        .find_map(|(i, r)| r.err().map(|e| format!("write connection {}: {e}", i + 1)));
    let ping = match (ping, writer_error) {
        (Ok(_), Some(error)) => Err(error),
        (ping, _) => ping.map_err(|e| e.to_string()),
    };
    let db = DbHealth {
        status: if ping.is_ok() { "up" } else { "down" },
        backend: state.db.backend(),
        latency_ms: ping.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
        error: ping.as_ref().err().cloned(),
        round_trips: state.db.round_trips(),
        connections: 1 + writers.len(),
    };
    let (status, code) = match (core, &ping) {
        (None, _) => ("starting", StatusCode::SERVICE_UNAVAILABLE),
        (Some(_), Ok(_)) => ("ok", StatusCode::OK),
        (Some(_), Err(_)) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
    };
    let persistence = !state.settings.persistence_file.as_os_str().is_empty();
    let body = Health {
        status,
        ready: code == StatusCode::OK,
        live: true,
        version: env!("CARGO_PKG_VERSION"),
        db,
        views: core.map_or(0, |c| c.pipeline.read(|e| e.view_count())),
        records: core.map_or(0, |c| c.pipeline.read(|e| e.record_count())),
        pipeline: PipelineHealth {
            round_trips: core.map_or(0, |c| c.pipeline.round_trips()),
            queue_depth: core.map_or(0, |c| c.pipeline.queue_depth()),
            diverged: core.is_some_and(|c| c.pipeline.diverged()),
        },
        worker: {
            let (tracked_tables, lag) = core.map(|c| c.worker_lag()).unwrap_or_default();
            WorkerHealth {
                tracked_tables,
                lag,
            }
        },
        state_file: match core.and_then(|c| c.saver.as_ref()) {
            Some(saver) => {
                use std::sync::atomic::Ordering::Relaxed;
                let stats = saver.stats();
                let last = stats.last_save_unix_ms.load(Relaxed);
                StateFileHealth {
                    enabled: true,
                    saves: stats.saves.load(Relaxed),
                    failures: stats.failures.load(Relaxed),
                    last_save_unix_ms: (last > 0).then_some(last),
                }
            }
            None => StateFileHealth {
                enabled: persistence,
                saves: 0,
                failures: 0,
                last_save_unix_ms: None,
            },
        },
        bootstrap: core.is_none().then(|| state.bootstrap_progress()),
    };
    (code, Json(body))
}

/// `GET /health/live` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    /// Always true in an answer.
    pub live: bool,
    /// Whether `/health` would say the bootstrap has finished (the database
    /// is not asked here).
    pub ready: bool,
    #[schema(value_type = String)]
    pub version: &'static str,
}

/// Liveness.
///
/// 200 as long as the process serves HTTP. No database call: use it for
/// liveness probes, `/health` for readiness.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "probes",
    security(()),
    responses((status = 200, description = "The process serves", body = Live))
)]
pub async fn live(State(state): State<Arc<AppState>>) -> Json<Live> {
    Json(Live {
        live: true,
        ready: state.is_ready(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `GET /version` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    #[schema(value_type = String, example = "ssp")]
    pub name: &'static str,
    #[schema(value_type = String)]
    pub version: &'static str,
    /// The SurrealDB version SSP is built against.
    #[schema(value_type = String, example = "3.3.5")]
    pub surrealdb: &'static str,
}

/// Versions.
///
/// The SSP version and the SurrealDB version it is built against.
#[utoipa::path(
    get,
    path = "/version",
    tag = "probes",
    security(()),
    responses((status = 200, description = "Versions", body = Version))
)]
pub async fn version() -> Json<Version> {
    Json(Version {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        surrealdb: SURREALDB_VERSION,
    })
}
