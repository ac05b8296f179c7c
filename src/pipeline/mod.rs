//! The one ordered pipeline between the sources and the engine and sink.
//!
//! Every source (`POST /ingest`, the change worker, table bootstraps) and
//! every view operation sends a request into one queue. One task, the
//! applier, takes requests in order, applies them to the engine and commits
//! the resulting edge changes, so the edges in SurrealDB follow exactly the
//! engine's order.
//!
//! Group commit: while transactions are in flight, new ingests queue up; the
//! applier then takes all of them at once and commits their edges in ONE
//! transaction. Each caller is answered only after that commit.
//!
//! Pipelined commits: up to `write_concurrency` group transactions may be in
//! flight at once, each on a write slot of its own (over `ws://`, its own
//! connection; see [`EdgeSink::with_writers`]), so that SurrealDB works on
//! one group while SSP applies the next, and a server (or the embedded
//! engine) can use more than one core. While a group is in flight, the
//! waiting ingests start another only once they are as many as it holds
//! (see `worth_a_group`). Order is kept where it matters, per edge: a group
//! that touches an edge still being written by an earlier group waits for
//! that commit, and view operations (register, unregister, heartbeat,
//! reset, flush) wait for every commit before them. Edges are independent
//! of each other, so two groups with no edge in common commit in either
//! order to the same state.
//!
//! Failures: a transaction that fails because the database is unavailable
//! (or a transaction conflict) is retried with backoff, and nothing that
//! touches its edges overtakes it. A caller with a budget ([`Pipeline::within`])
//! is told which of two things happened when the budget runs out: its
//! request never entered the queue (nothing was done), or it is queued and
//! is committed when the database returns (a retry is harmless: identical
//! content is a no-op).
//!
//! A write the database refuses for good (after a few attempts) fails its
//! callers with a 500, but the engine has already moved on: it applied the
//! batch, or the view operation. So the applier schedules a repair (see
//! `Repair`) that, with backoff until it succeeds, rewrites the view rows
//! involved and makes every edge equal the engine again
//! ([`crate::sink::reconcile`]). Engine and edges re-converge without a
//! restart.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ahash::AHashMap;
use backoff::backoff::Backoff;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::Instrument;

use crate::db::DbError;
use crate::engine::{Change, Engine, EngineError, ViewDelta, ViewMeta};
use crate::requery::{self, RequeryPlan};
use crate::sink::{EdgeChanges, EdgeCounts, EdgeSink, MAX_EDGES_PER_TX, reconcile};

/// Where a batch of changes came from (for metrics and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Http,
    Live,
    ChangeFeed,
    Bootstrap,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Http => "http",
            Source::Live => "live",
            Source::ChangeFeed => "changefeed",
            Source::Bootstrap => "bootstrap",
        }
    }
}

/// What one ingest did, once committed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct IngestSummary {
    /// Views whose result set changed.
    pub views_affected: usize,
    pub edges: EdgeCounts,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A write that failed in a way waiting does not heal (the statement
    /// that failed is named). Transient failures are retried, never returned.
    #[error("database write failed: {0}")]
    Write(String),
    /// The database did not take the write in time; it stays queued.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The request never entered the queue within the caller's budget;
    /// nothing was done.
    #[error("{0}")]
    NotQueued(String),
    #[error("the pipeline has stopped")]
    Closed,
    /// SurrealDB refused to run a re-query view's query on its data.
    #[error("SurrealDB cannot run the query: {0}")]
    Query(String),
}

type Reply<T> = oneshot::Sender<Result<T, PipelineError>>;

enum Request {
    Ingest {
        changes: Vec<Change>,
        source: Source,
        /// Rows read from the database after this mark (see
        /// [`Pipeline::ingest_read`]); `None` for every other source.
        read_at: Option<ReadMark>,
        reply: Reply<IngestSummary>,
    },
    Register {
        meta: ViewMeta,
        /// `Some` for a view of the re-query tier.
        requery: Option<RequeryPlan>,
        /// Tables the caller loaded for the view's record links (see
        /// [`EngineError::NeedsTables`]).
        loaded: Vec<Arc<str>>,
        /// Registered again from its row by a rebuild from the database
        /// (see `bootstrap::rebuild`), with the edges it has there: skipped
        /// if the view is registered already, or was unregistered (or
        /// everything reset) meanwhile; else only the edges that differ
        /// from its result are written.
        from_row: Option<applier::FromRow>,
        reply: Reply<ViewDelta>,
    },
    Unregister {
        id: String,
        /// A rebuild's view with edges but no row: removed only if nothing
        /// registered it since.
        orphan: bool,
        reply: Reply<bool>,
    },
    /// A rebuild from the database starts (`true`) or ends: meanwhile the
    /// applier remembers which views went, for `Register::from_row`.
    Rebuilding {
        on: bool,
        reply: Reply<()>,
    },
    Heartbeat {
        id: String,
        at: DateTime<Utc>,
        reply: Reply<bool>,
    },
    /// Unregisters the view if it is still expired at `now` (a heartbeat or
    /// re-registration may have come in since the sweep looked).
    Expire {
        id: String,
        now: DateTime<Utc>,
        reply: Reply<bool>,
    },
    Reset {
        reply: Reply<()>,
    },
    /// Answered once everything queued before it is committed.
    Flush {
        reply: Reply<()>,
    },
    /// The change worker stopped following a table: its records go, unless
    /// a view reads it again by now.
    ForgetTable {
        table: Arc<str>,
        reply: Reply<usize>,
    },
    /// Clustered: views this instance no longer holds (it handed them over,
    /// or another instance took them). They leave the engine; their rows
    /// and edges are the new holder's, so nothing is written.
    Disown {
        ids: Vec<Arc<str>>,
        reply: Reply<usize>,
    },
    /// Clustered, before a view is taken over: the versions its edges show,
    /// so that the engine never hands a record out below them.
    RaiseVersions {
        versions: Vec<(crate::engine::value::RecordId, u64)>,
        reply: Reply<()>,
    },
    /// Clustered, after a view was taken over and registered here: deletes
    /// its edges (as the former holder left them) whose record is not in
    /// its result now.
    Prune {
        id: Arc<str>,
        edges: Vec<crate::engine::value::RecordId>,
        reply: Reply<usize>,
    },
    /// The change worker loaded a table and follows it: paths through
    /// links into it can be evaluated, and views that left for the re-query
    /// tier for want of it come back.
    TableLoaded {
        table: Arc<str>,
        reply: Reply<()>,
    },
}

/// The handle every source and route uses. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<Request>,
    engine: Arc<RwLock<Engine>>,
    /// Signalled after every state change, for the background saver.
    dirty: Arc<Notify>,
    /// Database round trips made by the pipeline's writes.
    round_trips: Arc<std::sync::atomic::AtomicU64>,
    /// The write slots' own connections (over `ws://`), for `/health`.
    write_connections: Arc<[Arc<crate::db::Db>]>,
    /// How long a call may wait (see [`Pipeline::within`]); `None`: as long
    /// as it takes (the change worker, the TTL sweep, the shutdown).
    budget: Option<Duration>,
    /// True while a repair is pending (see `Repair`), for `/health`.
    diverged: Arc<std::sync::atomic::AtomicBool>,
    /// Signalled when the tables views read may have grown without a
    /// registration (a re-query answer showed links to a new table); the
    /// change worker then follows them.
    tables_wanted: Arc<Notify>,
    /// The engine's counts as last read, for [`Pipeline::counts`].
    counts: Arc<CachedCounts>,
    /// Registrations sent through this handle come from a rebuild, with
    /// the view's edges (see [`Pipeline::from_row`]).
    from_row: Option<applier::FromRow>,
    /// Registrations whose first result was computed beside the stream
    /// (see `applier::prescan`), for `/health`.
    prescans: Arc<std::sync::atomic::AtomicU64>,
    /// Ingest groups applied so far (see [`ReadMark`]).
    applied: Arc<std::sync::atomic::AtomicU64>,
}

/// Where the pipeline's order stood before a source began reading records
/// from the database: every ingest group applied up to it (its content read
/// or written before the mark) is no newer than what the read returns.
/// Taken with [`Pipeline::read_mark`], handed back to
/// [`Pipeline::ingest_read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadMark(u64);

/// How many views and records the engine holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineCounts {
    pub views: usize,
    pub requery_views: usize,
    pub records: usize,
}

#[derive(Default)]
struct CachedCounts {
    views: std::sync::atomic::AtomicUsize,
    requery_views: std::sync::atomic::AtomicUsize,
    records: std::sync::atomic::AtomicUsize,
}

/// Most changes merged into one transaction.
const MAX_GROUP_CHANGES: usize = 8192;

impl Pipeline {
    /// Starts the applier task over `engine`, writing through `sink` with at
    /// most one group transaction in flight per write slot of the sink
    /// (`write_concurrency`).
    pub fn start(engine: Engine, sink: EdgeSink) -> (Pipeline, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let engine = Arc::new(RwLock::new(engine));
        let dirty = Arc::new(Notify::new());
        let round_trips = Arc::clone(sink.round_trips());
        let write_connections = sink.own_connections().into();
        let free_slots = (0..sink.slots()).collect();
        let diverged = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tables_wanted = Arc::new(Notify::new());
        let prescans = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let applied = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let applier = Applier {
            recent: applier::Recent::new(Arc::clone(&applied)),
            delivered: applier::Delivered::default(),
            prescans: prescans.clone(),
            tables_wanted: tables_wanted.clone(),
            filling: AHashMap::new(),
            link_retiered: Vec::new(),
            prescanning: false,
            resume: None,
            rebuild: applier::Rebuild::Off,
            classified: ahash::AHashSet::new(),
            repair: Repair::new(Arc::clone(&diverged)),
            rx,
            engine: engine.clone(),
            sink,
            dirty: dirty.clone(),
            in_flight: FuturesUnordered::new(),
            in_flight_edges: AHashMap::new(),
            in_flight_requests: 0,
            free_slots,
        };
        let handle = tokio::spawn(applier.run());
        (
            Pipeline {
                tx,
                engine,
                dirty,
                round_trips,
                write_connections,
                budget: None,
                diverged,
                tables_wanted,
                counts: Arc::default(),
                prescans,
                applied,
                from_row: None,
            },
            handle,
        )
    }

    /// This pipeline for a caller that waits at most `budget` for each
    /// request: past it, the call answers [`PipelineError::NotQueued`] if
    /// the request never entered the queue (it stayed full), or
    /// [`PipelineError::Unavailable`] if it is queued and not committed yet.
    pub fn within(&self, budget: Duration) -> Pipeline {
        Pipeline {
            budget: Some(budget),
            ..self.clone()
        }
    }

    /// This pipeline for a rebuild from the database: its registrations
    /// are of a view read from its row, whose edges in the database are
    /// `edges`, and step aside for what clients did meanwhile (see
    /// `Request::Register::from_row`).
    pub fn from_row(&self, edges: Vec<reconcile::EdgeRow>) -> Pipeline {
        Pipeline {
            from_row: Some(Arc::new(edges)),
            ..self.clone()
        }
    }

    /// See [`Request::Rebuilding`].
    pub async fn rebuilding(&self, on: bool) -> Result<(), PipelineError> {
        self.call(|reply| Request::Rebuilding { on, reply }).await
    }

    /// Removes the row and edges of a view that has edges but no row, if
    /// nothing registered it since; true if it did.
    pub async fn drop_orphan(&self, id: String) -> Result<bool, PipelineError> {
        self.call(|reply| Request::Unregister {
            id,
            orphan: true,
            reply,
        })
        .await
    }

    /// True while edges or view rows may differ from the engine after a
    /// write the database refused; a repair is pending.
    pub fn diverged(&self) -> bool {
        self.diverged.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Read access to the engine, for queries that need no ordering.
    pub fn engine(&self) -> &Arc<RwLock<Engine>> {
        &self.engine
    }

    /// How many registrations had their first result computed beside
    /// the stream so far.
    pub fn prescans(&self) -> u64 {
        self.prescans.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Database round trips made by edge and view writes so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The connections write slots opened besides SSP's main one.
    pub fn write_connections(&self) -> &[Arc<crate::db::Db>] {
        &self.write_connections
    }

    /// Requests waiting for the applier.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    pub fn dirty(&self) -> &Arc<Notify> {
        &self.dirty
    }

    /// See the field of the same name.
    pub fn tables_wanted(&self) -> &Arc<Notify> {
        &self.tables_wanted
    }

    /// Plans a view's query (parse, plan, check the params) without
    /// registering it, and names the tables it reads: a refusal before
    /// anything changes. The engine's lock is held for the planning only (the
    /// planner shares plans between views), never while data is read.
    pub fn plan(
        &self,
        sql: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<Arc<str>>, EngineError> {
        self.engine
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .prepare(sql, params)
    }

    /// Tells the engine which tables the schema defines `TYPE RELATION`,
    /// before a view that traverses is planned (see `engine::graph`).
    pub fn set_relation_tables(&self, tables: std::collections::BTreeSet<Arc<str>>) {
        let mut engine = self.engine.write().unwrap_or_else(|p| p.into_inner());
        if *engine.relation_tables() != tables {
            engine.set_relation_tables(tables);
        }
    }

    /// Tells the engine the user functions a view's text calls, before it
    /// is planned (see `engine::parser::functions`).
    pub fn set_functions(&self, functions: crate::engine::parser::Definitions) {
        if functions.is_empty() {
            return;
        }
        self.engine
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .set_functions(functions);
    }

    /// The engine's counts, without waiting: while the applier holds the
    /// engine (a batch, a registration over a big table), the counts read
    /// last. `/health` and `/metrics` use this, so that a probe never
    /// stalls behind the stream (nor blocks a runtime thread on the lock).
    pub fn counts(&self) -> EngineCounts {
        use std::sync::atomic::Ordering::Relaxed;
        let cached = &self.counts;
        match self.engine.try_read() {
            Ok(engine) => {
                let now = EngineCounts {
                    views: engine.view_count(),
                    requery_views: engine.requery_count(),
                    records: engine.record_count(),
                };
                cached.views.store(now.views, Relaxed);
                cached.requery_views.store(now.requery_views, Relaxed);
                cached.records.store(now.records, Relaxed);
                now
            }
            Err(_) => EngineCounts {
                views: cached.views.load(Relaxed),
                requery_views: cached.requery_views.load(Relaxed),
                records: cached.records.load(Relaxed),
            },
        }
    }

    /// Changes the engine under its lock, outside the pipeline's order: for
    /// the saver, which takes the engine's journal of changes. Blocks while
    /// the applier holds the engine: call it off the runtime's threads.
    pub fn write<T>(&self, f: impl FnOnce(&mut Engine) -> T) -> T {
        let mut guard = self.engine.write().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Reads the engine under its lock. While the applier holds it (a
    /// registration computing a big view's first result), the wait is
    /// announced to the runtime (`block_in_place`), so that the thread's
    /// other tasks (`/health/live`, other requests) move to another
    /// thread instead of waiting too.
    pub fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        if let Ok(guard) = self.engine.try_read() {
            return f(&guard);
        }
        let read = || {
            let guard = self.engine.read().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(read)
            }
            _ => read(),
        }
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, PipelineError> {
        let (reply, rx) = oneshot::channel();
        let Some(budget) = self.budget else {
            self.tx
                .send(make(reply))
                .await
                .map_err(|_| PipelineError::Closed)?;
            return rx.await.map_err(|_| PipelineError::Closed)?;
        };
        // Two waits under one deadline, so that the caller can be told
        // truthfully whether its request is queued.
        let deadline = tokio::time::Instant::now() + budget;
        let seconds = budget.as_secs_f32();
        let permit = match tokio::time::timeout_at(deadline, self.tx.reserve()).await {
            Ok(permit) => permit.map_err(|_| PipelineError::Closed)?,
            Err(_) => {
                return Err(PipelineError::NotQueued(format!(
                    "SSP's queue stayed full for {seconds}s (the database is slow or unavailable): \
                     the request was not queued and nothing was done; retry it"
                )));
            }
        };
        permit.send(make(reply));
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(answer) => answer.map_err(|_| PipelineError::Closed)?,
            Err(_) => Err(PipelineError::Unavailable(format!(
                "not committed within {seconds}s; the request is queued and is carried out \
                 when the database answers again (retrying it is harmless)"
            ))),
        }
    }

    /// Applies a batch of changes and waits until its edges are committed.
    pub async fn ingest(
        &self,
        changes: Vec<Change>,
        source: Source,
    ) -> Result<IngestSummary, PipelineError> {
        self.call(|reply| Request::Ingest {
            changes,
            source,
            read_at: None,
            reply,
        })
        .await
    }

    /// Where the pipeline's order stands now: take it before reading the
    /// rows that go to [`Pipeline::ingest_read`].
    pub fn read_mark(&self) -> ReadMark {
        ReadMark(self.applied.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Applies rows read from the database (a table's snapshot, and the
    /// deletes of the records it no longer has) that were read after
    /// `mark`.
    ///
    /// Why the mark: the rows are the table as it was when read, and they
    /// reach the applier later. An `/ingest` of a newer write can be
    /// applied in between; applied as read, a row would then move its
    /// record back (its version rising for nothing, its views briefly
    /// wrong) until the LIVE notification of that write brought it forward
    /// again. So a row whose record the pipeline applied anything for
    /// after `mark` is read again at its turn, as the change worker's
    /// notifications are; the others are applied as read.
    pub async fn ingest_read(
        &self,
        changes: Vec<Change>,
        mark: ReadMark,
    ) -> Result<IngestSummary, PipelineError> {
        self.call(|reply| Request::Ingest {
            changes,
            source: Source::Bootstrap,
            read_at: Some(mark),
            reply,
        })
        .await
    }

    /// Registers (or refreshes) a view; returns the edges it created or deleted.
    pub async fn register(&self, meta: ViewMeta) -> Result<ViewDelta, PipelineError> {
        self.register_after_loading(meta, Vec::new()).await
    }

    /// As [`Pipeline::register`], after the caller loaded `loaded` (tables
    /// the view reaches through record links, which an earlier try
    /// answered [`EngineError::NeedsTables`] for).
    pub async fn register_after_loading(
        &self,
        meta: ViewMeta,
        loaded: Vec<Arc<str>>,
    ) -> Result<ViewDelta, PipelineError> {
        self.call(|reply| Request::Register {
            meta,
            requery: None,
            loaded,
            from_row: self.from_row.clone(),
            reply,
        })
        .await
    }

    /// Registers (or refreshes) a view of the re-query tier: its query is
    /// run in SurrealDB now, and again after each change to a table it reads.
    pub async fn register_requery(
        &self,
        meta: ViewMeta,
        plan: RequeryPlan,
    ) -> Result<ViewDelta, PipelineError> {
        self.call(|reply| Request::Register {
            meta,
            requery: Some(plan),
            loaded: Vec::new(),
            from_row: self.from_row.clone(),
            reply,
        })
        .await
    }

    /// See [`Request::Disown`]; returns how many the engine had.
    pub async fn disown(&self, ids: Vec<Arc<str>>) -> Result<usize, PipelineError> {
        self.call(|reply| Request::Disown { ids, reply }).await
    }

    /// See [`Request::RaiseVersions`].
    pub async fn raise_versions(
        &self,
        versions: Vec<(crate::engine::value::RecordId, u64)>,
    ) -> Result<(), PipelineError> {
        self.call(|reply| Request::RaiseVersions { versions, reply })
            .await
    }

    /// See [`Request::Prune`]; returns how many edges it deleted.
    pub async fn prune(
        &self,
        id: Arc<str>,
        edges: Vec<crate::engine::value::RecordId>,
    ) -> Result<usize, PipelineError> {
        self.call(|reply| Request::Prune { id, edges, reply }).await
    }

    /// Unregisters a view; false if it was unknown.
    pub async fn unregister(&self, id: String) -> Result<bool, PipelineError> {
        self.call(|reply| Request::Unregister {
            id,
            orphan: false,
            reply,
        })
        .await
    }

    pub async fn heartbeat(&self, id: String, at: DateTime<Utc>) -> Result<bool, PipelineError> {
        self.call(|reply| Request::Heartbeat { id, at, reply })
            .await
    }

    /// Unregisters `id` if it is still expired at `now`; true if it was.
    pub async fn expire(&self, id: String, now: DateTime<Utc>) -> Result<bool, PipelineError> {
        self.call(|reply| Request::Expire { id, now, reply }).await
    }

    pub async fn reset(&self) -> Result<(), PipelineError> {
        self.call(|reply| Request::Reset { reply }).await
    }

    /// Waits until everything queued so far is applied and committed.
    pub async fn flush(&self) -> Result<(), PipelineError> {
        self.call(|reply| Request::Flush { reply }).await
    }

    /// Lets go of a table's records if no view reads it (in order with the
    /// batches, so a view registered meanwhile keeps them); how many went.
    pub async fn forget_table(&self, table: Arc<str>) -> Result<usize, PipelineError> {
        self.call(|reply| Request::ForgetTable { table, reply })
            .await
    }

    /// See [`Request::TableLoaded`].
    pub async fn table_loaded(&self, table: Arc<str>) -> Result<(), PipelineError> {
        self.call(|reply| Request::TableLoaded { table, reply })
            .await
    }
}

mod applier;
pub mod ttl_sweep;

use applier::*;

/// A pipeline over a fresh embedded database with SSP's schema, for the
/// tests of the pipeline's own ordering (the HTTP-level tests start SSP).
#[cfg(test)]
pub(crate) async fn on_a_fresh_database() -> (Pipeline, Arc<crate::db::Db>) {
    let env: std::collections::HashMap<String, String> =
        [("SPOOKY_SURREALDB_URL".to_owned(), "mem://".to_owned())].into();
    let settings = crate::config::Settings::load_from(None, false, &env).expect("settings");
    let db = Arc::new(
        crate::db::Db::connect(&settings.surrealdb)
            .await
            .expect("an embedded database"),
    );
    crate::db::migrations::migrate(&db)
        .await
        .expect("migrations");
    let sink = EdgeSink::with_writers(Arc::clone(&db), 1).await;
    let (pipeline, _applier) = Pipeline::start(Engine::new(), sink);
    (pipeline, db)
}
