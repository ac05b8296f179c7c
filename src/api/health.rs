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
//!
//! `/health` is public, so its database status comes from a short-lived
//! cache ([`DbStatusCache`]): at most one ping round (every connection
//! pinged once) per [`DB_STATUS_TTL`], shared by every request that arrives
//! while it runs, whatever it answered. Hammering `/health` therefore never
//! hammers the database, and a database that goes down shows within
//! [`DB_STATUS_TTL`] plus the call timeout. Everything else in the body is
//! read fresh on each call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::app::BootstrapProgress;
use crate::db::Db;

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
    /// Present while starting, and while a rebuild from the database runs:
    /// failed bootstrap attempts, the last error, the rebuild's progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapProgress>,
    /// Present when clustered: this instance, the live ones, its views.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::cluster::ClusterHealth>,
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
    /// Of `saves`, the full snapshots; the others appended what changed to
    /// the change log.
    pub full_saves: u64,
    /// The size of the last save, in bytes.
    pub last_bytes: u64,
    pub failures: u64,
    pub last_save_unix_ms: Option<u64>,
    /// Where the state came from at startup (`state_file`, or how it was
    /// rebuilt from the database); none before the bootstrap finishes. A
    /// state file that stopped loading shows here, not only in the log.
    pub origin: Option<&'static str>,
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
    /// Registrations whose first result was computed beside the stream
    /// (views over 10,000 or more candidate records), since the start.
    pub prescans: u64,
}

/// The database part of `/health`. `status`, `latency_ms` and `error` are
/// those of the last ping round, which is at most about a second old
/// (`DB_STATUS_TTL`): concurrent and repeated calls share one round.
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
    let connections = 1 + writers.len();
    let ping = state
        .db_status
        .get(connections, || {
            ping_round(Arc::clone(&state.db), writers.to_vec()).boxed()
        })
        .await;
    let db = DbHealth {
        status: if ping.is_ok() { "up" } else { "down" },
        backend: state.db.backend(),
        latency_ms: ping.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
        error: ping.as_ref().err().cloned(),
        round_trips: state.db.round_trips(),
        connections,
    };
    let (status, code) = match (core, &ping) {
        (None, _) => ("starting", StatusCode::SERVICE_UNAVAILABLE),
        (Some(_), Ok(_)) => ("ok", StatusCode::OK),
        (Some(_), Err(_)) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
    };
    let persistence =
        !state.settings.persistence_file.as_os_str().is_empty() && state.cluster.is_none();
    let counts = core.map(|c| c.pipeline.counts()).unwrap_or_default();
    let body = Health {
        status,
        ready: code == StatusCode::OK,
        live: true,
        version: env!("CARGO_PKG_VERSION"),
        db,
        views: counts.views,
        records: counts.records,
        pipeline: PipelineHealth {
            round_trips: core.map_or(0, |c| c.pipeline.round_trips()),
            queue_depth: core.map_or(0, |c| c.pipeline.queue_depth()),
            diverged: core.is_some_and(|c| c.pipeline.diverged()),
            prescans: core.map_or(0, |c| c.pipeline.prescans()),
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
                    full_saves: stats.full_saves.load(Relaxed),
                    last_bytes: stats.last_bytes.load(Relaxed),
                    failures: stats.failures.load(Relaxed),
                    last_save_unix_ms: (last > 0).then_some(last),
                    origin: core.map(|c| c.origin),
                }
            }
            None => StateFileHealth {
                enabled: persistence,
                saves: 0,
                full_saves: 0,
                last_bytes: 0,
                failures: 0,
                last_save_unix_ms: None,
                origin: core.map(|c| c.origin),
            },
        },
        bootstrap: {
            let progress = state.bootstrap_progress();
            (core.is_none() || progress.rebuild.is_some()).then_some(progress)
        },
        cluster: state.cluster.as_ref().map(|c| c.health()),
    };
    (code, Json(body))
}

/// How long one ping round answers `/health`.
pub const DB_STATUS_TTL: Duration = Duration::from_secs(1);

/// What a ping round found: the main connection's latency, or why one of
/// the connections did not answer.
pub type PingOutcome = Result<Duration, String>;

/// One ping round: every connection answers, or the API cannot serve (an
/// ingest may be written on any of them).
async fn ping_round(db: Arc<Db>, writers: Vec<Arc<Db>>) -> PingOutcome {
    let (ping, writer_pings) = futures::join!(
        db.ping(),
        futures::future::join_all(writers.iter().map(|w| w.ping()))
    );
    let writer_error = writer_pings
        .into_iter()
        .enumerate()
        .find_map(|(i, r)| r.err().map(|e| format!("write connection {}: {e}", i + 1)));
    match (ping, writer_error) {
        (Ok(_), Some(error)) => Err(error),
        (ping, _) => ping.map_err(|e| e.to_string()),
    }
}

/// The database status `/health` reports, cached so that a public endpoint
/// cannot make SSP ping its database as fast as requests arrive.
///
/// - A finished round answers every call for `ttl` after it finished,
///   whether it found the database up or down.
/// - Past that, the next call starts a new round, and every call that comes
///   while it runs waits for that same round (single flight).
/// - A round runs as its own task: it finishes and is cached even when the
///   requests waiting for it go away, so disconnecting clients cannot make
///   SSP start round after round.
/// - A round is for a number of connections: when it changes (the write
///   connections appear once the bootstrap has finished) the cached status
///   does not count.
///
/// So rounds for the same connections start at least `ttl` apart, and a
/// database that goes down is reported within `ttl` plus the time a ping
/// takes to fail (at most the call timeout).
pub struct DbStatusCache {
    ttl: Duration,
    state: Arc<Mutex<CacheState>>,
    rounds: AtomicU64,
}

#[derive(Default)]
struct CacheState {
    /// The last round that finished.
    last: Option<FinishedRound>,
    /// The round running now, which callers join.
    running: Option<RunningRound>,
    /// Numbers the rounds, so that a round only clears itself.
    next_id: u64,
}

struct FinishedRound {
    finished: Instant,
    connections: usize,
    outcome: PingOutcome,
}

struct RunningRound {
    id: u64,
    connections: usize,
    outcome: Shared<BoxFuture<'static, PingOutcome>>,
}

impl std::fmt::Debug for DbStatusCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbStatusCache")
            .field("ttl", &self.ttl)
            .field("rounds", &self.rounds())
            .finish_non_exhaustive()
    }
}

impl DbStatusCache {
    /// A cache whose rounds answer for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        DbStatusCache {
            ttl,
            state: Arc::default(),
            rounds: AtomicU64::new(0),
        }
    }

    /// Ping rounds started so far (also `ssp_health_ping_rounds_total`).
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// The status of `connections` connections: the cached outcome while it
    /// is fresh, else the outcome of the running round, else of a new round
    /// made by `ping` (called only then). Must be called within a Tokio
    /// runtime (the round is spawned).
    pub async fn get<F>(&self, connections: usize, ping: F) -> PingOutcome
    where
        F: FnOnce() -> BoxFuture<'static, PingOutcome>,
    {
        let outcome = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(last) = &state.last
                && last.connections == connections
                && last.finished.elapsed() < self.ttl
            {
                return last.outcome.clone();
            }
            match &state.running {
                // A round that ended without clearing itself (its task
                // panicked or was cancelled) is not joined.
                Some(round)
                    if round.connections == connections && round.outcome.peek().is_none() =>
                {
                    round.outcome.clone()
                }
                _ => self.start_round(&mut state, connections, ping()),
            }
        };
        outcome.await
    }

    fn start_round(
        &self,
        state: &mut CacheState,
        connections: usize,
        ping: BoxFuture<'static, PingOutcome>,
    ) -> Shared<BoxFuture<'static, PingOutcome>> {
        self.rounds.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ssp_health_ping_rounds_total").increment(1);
        let id = state.next_id;
        state.next_id += 1;
        let cache = Arc::clone(&self.state);
        let task = tokio::spawn(async move {
            let outcome = ping.await;
            let mut state = cache.lock().unwrap_or_else(PoisonError::into_inner);
            state.last = Some(FinishedRound {
                finished: Instant::now(),
                connections,
                outcome: outcome.clone(),
            });
            if state.running.as_ref().is_some_and(|r| r.id == id) {
                state.running = None;
            }
            outcome
        });
        let outcome = async move {
            task.await
                .unwrap_or_else(|e| Err(format!("the database ping did not finish: {e}")))
        }
        .boxed()
        .shared();
        state.running = Some(RunningRound {
            id,
            connections,
            outcome: outcome.clone(),
        });
        outcome
    }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A ping that counts its calls, takes `takes`, and answers `outcome`.
    fn counted(
        calls: &Arc<AtomicUsize>,
        takes: Duration,
        outcome: PingOutcome,
    ) -> impl FnOnce() -> BoxFuture<'static, PingOutcome> + use<> {
        let calls = Arc::clone(calls);
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(takes).await;
                outcome
            }
            .boxed()
        }
    }

    const UP: PingOutcome = Ok(Duration::from_millis(1));

    #[tokio::test]
    async fn concurrent_and_repeated_calls_share_one_round() {
        let cache = Arc::new(DbStatusCache::new(Duration::from_secs(30)));
        let calls = Arc::new(AtomicUsize::new(0));
        let waiters = (0..50).map(|_| {
            let cache = Arc::clone(&cache);
            let ping = counted(&calls, Duration::from_millis(50), UP);
            tokio::spawn(async move { cache.get(1, ping).await })
        });
        for outcome in futures::future::join_all(waiters).await {
            assert_eq!(outcome.unwrap(), UP);
        }
        for _ in 0..50 {
            let ping = counted(&calls, Duration::ZERO, Err("not called".into()));
            assert_eq!(cache.get(1, ping).await, UP);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.rounds(), 1);
    }

    #[tokio::test]
    async fn a_failed_round_is_cached_too_and_a_stale_one_is_redone() {
        let ttl = Duration::from_millis(200);
        let cache = DbStatusCache::new(ttl);
        let calls = Arc::new(AtomicUsize::new(0));
        let down: PingOutcome = Err("connection refused".into());
        assert_eq!(
            cache
                .get(1, counted(&calls, Duration::ZERO, down.clone()))
                .await,
            down
        );
        let started = Instant::now();
        while started.elapsed() < ttl / 2 {
            assert_eq!(
                cache.get(1, counted(&calls, Duration::ZERO, UP)).await,
                down
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the failure answered");
        tokio::time::sleep(ttl).await;
        assert_eq!(cache.get(1, counted(&calls, Duration::ZERO, UP)).await, UP);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.rounds(), 2);
    }

    #[tokio::test]
    async fn another_number_of_connections_is_another_round() {
        let cache = DbStatusCache::new(Duration::from_secs(30));
        let calls = Arc::new(AtomicUsize::new(0));
        assert_eq!(cache.get(1, counted(&calls, Duration::ZERO, UP)).await, UP);
        let writer_down: PingOutcome = Err("write connection 1: down".into());
        let ping = counted(&calls, Duration::ZERO, writer_down.clone());
        assert_eq!(cache.get(2, ping).await, writer_down);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// Callers that go away do not cancel the round: the next caller joins
    /// it, and its outcome is cached.
    #[tokio::test]
    async fn a_round_outlives_the_callers_that_give_up() {
        let cache = DbStatusCache::new(Duration::from_secs(30));
        let calls = Arc::new(AtomicUsize::new(0));
        for _ in 0..5 {
            let ping = counted(&calls, Duration::from_millis(300), UP);
            let gave_up = tokio::time::timeout(Duration::from_millis(10), cache.get(1, ping)).await;
            assert!(gave_up.is_err());
        }
        assert_eq!(cache.get(1, counted(&calls, Duration::ZERO, UP)).await, UP);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_round_that_panics_does_not_stick() {
        let cache = DbStatusCache::new(Duration::from_secs(30));
        let outcome = cache
            .get(1, || async { panic!("ping panicked") }.boxed())
            .await;
        assert!(outcome.unwrap_err().contains("did not finish"));
        let calls = Arc::new(AtomicUsize::new(0));
        assert_eq!(cache.get(1, counted(&calls, Duration::ZERO, UP)).await, UP);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
