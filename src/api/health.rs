//! Public probes: `GET /health` (liveness and readiness) and `GET /version`.
//!
//! `/health` answers 200 when the database answers a ping within the call
//! timeout and 503 when it does not, with the same JSON body either way, so
//! that load balancers and people read the same thing.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;

use super::AppState;

/// The SurrealDB SDK version SSP is built and measured against.
pub const SURREALDB_VERSION: &str = "3.3.5";

/// `GET /health` body.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok` when the database answers, else `unavailable`.
    pub status: &'static str,
    pub version: &'static str,
    pub db: DbHealth,
    /// Registered views.
    pub views: usize,
    /// Records the engine holds.
    pub records: usize,
    pub pipeline: PipelineHealth,
    pub state_file: StateFileHealth,
    pub worker: WorkerHealth,
}

/// The change-worker part of `/health`.
#[derive(Debug, Serialize)]
pub struct WorkerHealth {
    /// Tables followed with a change-feed cursor.
    pub tracked_tables: Vec<String>,
    /// Newest versionstamp seen minus the oldest cursor (on SurrealKV, mem and
    /// RocksDB a versionstamp is milliseconds << 16, so `lag >> 16` is ms).
    pub lag: u64,
}

/// The state-file part of `/health`.
#[derive(Debug, Serialize)]
pub struct StateFileHealth {
    pub enabled: bool,
    /// Saves since start.
    pub saves: u64,
    pub failures: u64,
    pub last_save_unix_ms: Option<u64>,
}

/// The pipeline part of `/health`.
#[derive(Debug, Serialize)]
pub struct PipelineHealth {
    /// Round trips made by edge and view writes (not the worker's reads).
    pub round_trips: u64,
    /// Requests waiting for the applier.
    pub queue_depth: usize,
}

/// The database part of `/health`.
#[derive(Debug, Serialize)]
pub struct DbHealth {
    /// `up` or `down`.
    pub status: &'static str,
    /// `ws`, `wss`, `mem` or `surrealkv`.
    pub backend: &'static str,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    /// Database calls made so far.
    pub round_trips: u64,
}

/// `GET /health`.
pub async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let ping = state.db.ping().await;
    let db = DbHealth {
        status: if ping.is_ok() { "up" } else { "down" },
        backend: state.db.backend(),
        latency_ms: ping.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
        error: ping.as_ref().err().map(ToString::to_string),
        round_trips: state.db.round_trips(),
    };
    let (status, code) = match ping {
        Ok(_) => ("ok", StatusCode::OK),
        Err(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
    };
    (
        code,
        Json(Health {
            status,
            version: env!("CARGO_PKG_VERSION"),
            db,
            views: state.pipeline.read(|e| e.view_count()),
            records: state.pipeline.read(|e| e.record_count()),
            pipeline: PipelineHealth {
                round_trips: state.pipeline.round_trips(),
                queue_depth: state.pipeline.queue_depth(),
            },
            worker: {
                let (tracked_tables, lag) = state.worker_lag();
                WorkerHealth {
                    tracked_tables,
                    lag,
                }
            },
            state_file: match &state.saver {
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
                    enabled: false,
                    saves: 0,
                    failures: 0,
                    last_save_unix_ms: None,
                },
            },
        }),
    )
}

/// `GET /version` body.
#[derive(Debug, Serialize)]
pub struct Version {
    pub name: &'static str,
    pub version: &'static str,
    pub surrealdb: &'static str,
}

/// `GET /version`.
pub async fn version() -> Json<Version> {
    Json(Version {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        surrealdb: SURREALDB_VERSION,
    })
}
