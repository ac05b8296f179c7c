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
//! touches its edges overtakes it. Callers waiting past their budget get 503
//! from the API layer, but their changes stay queued and are committed when
//! the database returns, so a caller's retry is harmless (identical content
//! is a no-op).

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
use crate::sink::{EdgeChanges, EdgeCounts, EdgeSink};

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
    #[error("the pipeline has stopped")]
    Closed,
}

type Reply<T> = oneshot::Sender<Result<T, PipelineError>>;

enum Request {
    Ingest {
        changes: Vec<Change>,
        source: Source,
        reply: Reply<IngestSummary>,
    },
    Register {
        meta: ViewMeta,
        reply: Reply<ViewDelta>,
    },
    Unregister {
        id: String,
        reply: Reply<bool>,
    },
    Heartbeat {
        id: String,
        at: DateTime<Utc>,
        reply: Reply<bool>,
    },
    Reset {
        reply: Reply<()>,
    },
    /// Answered once everything queued before it is committed.
    Flush {
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
}

/// Most edges of a view's initial result set written per transaction.
const REGISTER_EDGES_PER_TX: usize = 1_000;

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
        let applier = Applier {
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
            },
            handle,
        )
    }

    /// Read access to the engine, for queries that need no ordering.
    pub fn engine(&self) -> &Arc<RwLock<Engine>> {
        &self.engine
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

    /// Reads the engine under its lock.
    pub fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        let guard = self.engine.read().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, PipelineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| PipelineError::Closed)?;
        rx.await.map_err(|_| PipelineError::Closed)?
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
            reply,
        })
        .await
    }

    /// Registers (or refreshes) a view; returns the edges it created or deleted.
    pub async fn register(&self, meta: ViewMeta) -> Result<ViewDelta, PipelineError> {
        self.call(|reply| Request::Register { meta, reply }).await
    }

    /// Unregisters a view; false if it was unknown.
    pub async fn unregister(&self, id: String) -> Result<bool, PipelineError> {
        self.call(|reply| Request::Unregister { id, reply }).await
    }

    pub async fn heartbeat(&self, id: String, at: DateTime<Utc>) -> Result<bool, PipelineError> {
        self.call(|reply| Request::Heartbeat { id, at, reply })
            .await
    }

    pub async fn reset(&self) -> Result<(), PipelineError> {
        self.call(|reply| Request::Reset { reply }).await
    }

    /// Waits until everything queued so far is applied and committed.
    pub async fn flush(&self) -> Result<(), PipelineError> {
        self.call(|reply| Request::Flush { reply }).await
    }
}

struct Applier {
    rx: mpsc::Receiver<Request>,
    engine: Arc<RwLock<Engine>>,
    sink: EdgeSink,
    dirty: Arc<Notify>,
    /// Group commits under way; each yields the edge hashes it held.
    in_flight: FuturesUnordered<BoxFuture<'static, Done>>,
    /// Write slots (the sink's connections) no group commit is using, the
    /// least recently used first: taking them in turn keeps every
    /// connection in use, so a broken one shows at once, not under load.
    free_slots: std::collections::VecDeque<usize>,
    /// Ingests in the group commits under way.
    in_flight_requests: usize,
    /// How many in-flight groups write each edge (by hash). A hash collision
    /// only makes a group wait when it need not.
    in_flight_edges: AHashMap<u64, u32>,
}

/// Whether `waiting` ingests should start a group commit of their own while
/// `in_flight` ingests are still being committed in other groups (a write
/// slot being free).
///
/// Every transaction pays a fixed cost (a round trip, BEGIN and COMMIT), so
/// a new group starts only when it is at least as big as what is in flight;
/// smaller, the ingests wait and join the next group. Without this rule a
/// free slot took whatever was queued: at 32 closed-loop clients over
/// `ws://`, groups of 1-6 ingests alternated with groups of 25, and each
/// small one cost nearly as much as a big one. With it, they settle at two
/// groups of 16, and the 32-client rate rose by about a sixth (6,124-7,037
/// against 5,072-6,024 ingests/s in alternating runs; see the README's group
/// commit figures). The wait is bounded by the commits in flight, as
/// with a single write slot.
fn worth_a_group(waiting: usize, in_flight: usize) -> bool {
    in_flight == 0 || waiting >= in_flight
}

/// A finished group commit: what it held, to release.
struct Done {
    /// The hashes of the edges it wrote.
    edges: Vec<u64>,
    /// The ingests it answered.
    requests: usize,
    /// The write slot it used.
    slot: usize,
}

/// An ingest waiting for its group's commit.
struct Waiter {
    reply: Reply<IngestSummary>,
    summary: IngestSummary,
}

impl Applier {
    async fn run(mut self) {
        // Ingests received but not yet in a group, and the changes they hold.
        let mut queued: Vec<Request> = Vec::new();
        let mut queued_changes = 0;
        // A view operation received after `queued`: it runs once they and
        // every commit before it are done.
        let mut admin: Option<Request> = None;
        let mut closed = false;
        loop {
            // Take whatever is already waiting, up to one group's worth.
            while admin.is_none() && !closed && queued_changes < MAX_GROUP_CHANGES {
                match self.rx.try_recv() {
                    Ok(r) => self.accept(r, &mut queued, &mut queued_changes, &mut admin),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => closed = true,
                }
            }
            if !queued.is_empty()
                && !self.free_slots.is_empty()
                && (self.in_flight.is_empty()
                    || admin.is_some()
                    || closed
                    || queued_changes >= MAX_GROUP_CHANGES
                    || worth_a_group(queued.len(), self.in_flight_requests))
            {
                queued_changes = 0;
                self.ingest_group(std::mem::take(&mut queued)).await;
                continue;
            }
            if queued.is_empty() {
                if let Some(request) = admin.take() {
                    // View operations see every earlier commit done.
                    self.drain().await;
                    self.admin(request).await;
                    continue;
                }
                if closed {
                    self.drain().await;
                    return;
                }
            }
            let may_receive = admin.is_none() && !closed && queued_changes < MAX_GROUP_CHANGES;
            tokio::select! {
                // Completions first: they free a slot and answer callers.
                biased;
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.release(done);
                }
                r = self.rx.recv(), if may_receive => match r {
                    Some(r) => self.accept(r, &mut queued, &mut queued_changes, &mut admin),
                    None => closed = true,
                },
            }
        }
    }

    fn accept(
        &self,
        request: Request,
        queued: &mut Vec<Request>,
        queued_changes: &mut usize,
        admin: &mut Option<Request>,
    ) {
        match request {
            Request::Ingest { ref changes, .. } => {
                *queued_changes += changes.len().max(1);
                queued.push(request);
            }
            other => *admin = Some(other),
        }
    }

    /// Forgets the edges of a finished group commit.
    fn release(&mut self, done: Done) {
        metrics::gauge!("ssp_edge_tx_in_flight").decrement(1.0);
        self.in_flight_requests -= done.requests;
        self.free_slots.push_back(done.slot);
        for h in done.edges {
            if let std::collections::hash_map::Entry::Occupied(mut e) =
                self.in_flight_edges.entry(h)
            {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
    }

    /// Waits for every group commit in flight.
    async fn drain(&mut self) {
        while let Some(done) = self.in_flight.next().await {
            self.release(done);
        }
    }

    fn engine(&self) -> std::sync::RwLockWriteGuard<'_, Engine> {
        self.engine.write().unwrap_or_else(|p| p.into_inner())
    }

    async fn ingest_group(&mut self, group: Vec<Request>) {
        let span = tracing::debug_span!("ingest_group", requests = group.len());
        let mut edges = EdgeChanges::default();
        let mut waiters = Vec::with_capacity(group.len());
        {
            let _g = span.enter();
            let mut engine = self.engine();
            for req in group {
                let Request::Ingest {
                    changes,
                    source,
                    reply,
                } = req
                else {
                    continue;
                };
                let deletes = changes.iter().filter(|c| c.content.is_none()).count() as u64;
                metrics::counter!("ssp_ingest_changes_total", "source" => source.as_str(), "op" => "upsert")
                    .increment(changes.len() as u64 - deletes);
                metrics::counter!("ssp_ingest_changes_total", "source" => source.as_str(), "op" => "delete")
                    .increment(deletes);
                metrics::histogram!("ssp_ingest_batch_size").record(changes.len() as f64);
                let deltas = engine.apply_batch(&changes);
                let summary = IngestSummary {
                    views_affected: deltas.len(),
                    edges: EdgeCounts::of(&deltas),
                };
                edges.absorb(&deltas);
                metrics::counter!("ssp_edge_ops_total", "kind" => "created")
                    .increment(summary.edges.created as u64);
                metrics::counter!("ssp_edge_ops_total", "kind" => "updated")
                    .increment(summary.edges.updated as u64);
                metrics::counter!("ssp_edge_ops_total", "kind" => "deleted")
                    .increment(summary.edges.deleted as u64);
                waiters.push(Waiter { reply, summary });
            }
        }
        self.dirty.notify_one();
        // An edge still being written by an earlier group: wait for it, so
        // that each edge's writes commit in the engine's order.
        let hashes = edges.edge_hashes();
        while hashes.iter().any(|h| self.in_flight_edges.contains_key(h)) {
            match self.in_flight.next().await {
                Some(done) => self.release(done),
                None => break,
            }
        }
        for h in &hashes {
            *self.in_flight_edges.entry(*h).or_default() += 1;
        }
        metrics::histogram!("ssp_group_commit_requests").record(waiters.len() as f64);
        let requests = waiters.len();
        self.in_flight_requests += requests;
        metrics::gauge!("ssp_edge_tx_in_flight").increment(1.0);
        let sink = self.sink.clone();
        // `run` starts a group only with a slot free.
        let slot = self.free_slots.pop_front().unwrap_or(0);
        self.in_flight.push(Box::pin(
            async move {
                let result = commit_on(&sink, slot, &edges).await;
                for w in waiters {
                    let _ = w.reply.send(match &result {
                        Ok(()) => Ok(w.summary),
                        Err(e) => Err(PipelineError::Write(e.to_string())),
                    });
                }
                Done {
                    edges: hashes,
                    requests,
                    slot,
                }
            }
            .instrument(span),
        ));
    }

    async fn admin(&mut self, req: Request) {
        match req {
            Request::Ingest { .. } => unreachable!("ingests are grouped"),
            Request::Flush { reply } => {
                let _ = reply.send(Ok(()));
            }
            Request::Register { meta, reply } => {
                let delta = match self.engine().register(meta.clone()) {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                        return;
                    }
                };
                self.dirty.notify_one();
                let meta_write = retry(|| self.sink.upsert_view(&meta)).await;
                let result = match meta_write {
                    Ok(()) => {
                        let mut edges = EdgeChanges::default();
                        edges.absorb(std::slice::from_ref(&delta));
                        commit_in_parts(&self.sink, edges).await
                    }
                    Err(e) => Err(e),
                };
                let _ = reply.send(
                    result
                        .map(|()| delta)
                        .map_err(|e| PipelineError::Write(e.to_string())),
                );
            }
            Request::Unregister { id, reply } => {
                let existed = self.engine().unregister(&id).is_some();
                self.dirty.notify_one();
                let mut edges = EdgeChanges::default();
                // Always delete the row and edges: the database may hold a
                // view this process does not know (unregister is idempotent).
                edges.remove_view(id.into());
                let result = commit(&self.sink, &edges).await;
                let _ = reply.send(
                    result
                        .map(|()| existed)
                        .map_err(|e| PipelineError::Write(e.to_string())),
                );
            }
            Request::Heartbeat { id, at, reply } => {
                let known = self.engine().touch(&id, at);
                if !known {
                    let _ = reply.send(Ok(false));
                    return;
                }
                self.dirty.notify_one();
                let result = retry(|| self.sink.touch_view(&id, at)).await;
                let _ = reply.send(
                    result
                        .map(|()| true)
                        .map_err(|e| PipelineError::Write(e.to_string())),
                );
            }
            Request::Reset { reply } => {
                self.engine().reset();
                self.dirty.notify_one();
                let mut edges = EdgeChanges::default();
                edges.reset();
                let result = commit(&self.sink, &edges).await;
                let _ = reply.send(result.map_err(|e| PipelineError::Write(e.to_string())));
            }
        }
    }
}

/// Commits edge changes in one transaction, retrying as [`retry`] does.
async fn commit(sink: &EdgeSink, edges: &EdgeChanges) -> Result<(), DbError> {
    commit_on(sink, 0, edges).await
}

/// [`commit`] on write slot `slot`.
async fn commit_on(sink: &EdgeSink, slot: usize, edges: &EdgeChanges) -> Result<(), DbError> {
    if edges.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let result = retry(|| sink.write_on(slot, edges)).await;
    metrics::histogram!("ssp_edge_tx_seconds").record(started.elapsed().as_secs_f64());
    result
}

/// Commits a view's initial result set in transactions of at most
/// [`REGISTER_EDGES_PER_TX`] edges. One transaction of a big view's edges
/// (every record of a large table) took longer than the call timeout: it
/// timed out, was retried whole and timed out again, so the view was
/// never committed. SurrealDB's cost per edge grows with the transaction
/// (mem engine, debug build: 40k edges committed in 43s in parts of
/// 1,000; in parts of 5,000 each took over 20s; in one, never within a
/// 30s timeout): in 3.3.5 each row of an `INSERT` sets a savepoint, and
/// the in-memory engine's savepoint clones the transaction's whole write
/// set, so a transaction of n edges costs O(n^2). In parts each call is
/// bounded; a client following its edges sees them arrive in parts, before
/// the register answer.
async fn commit_in_parts(sink: &EdgeSink, edges: EdgeChanges) -> Result<(), DbError> {
    for part in edges.split(REGISTER_EDGES_PER_TX) {
        commit(sink, &part).await?;
    }
    Ok(())
}

/// Runs a write until it succeeds. While the database is unavailable (or
/// the transaction conflicts) it retries with backoff for as long as it
/// takes: nothing that touches the same edges may overtake it (see the
/// module doc). Any other error is retried a few times and then reported,
/// since it will not heal by waiting.
async fn retry<'a, F, Fut>(mut write: F) -> Result<(), DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), DbError>> + 'a,
{
    let mut backoff = crate::db::backoff_forever(Duration::from_millis(50), Duration::from_secs(2));
    let mut hard_failures = 0;
    loop {
        match write().await {
            Ok(()) => return Ok(()),
            Err(e) => {
                let transient = e.is_unavailable() || e.is_conflict();
                if !transient {
                    hard_failures += 1;
                    if hard_failures >= 3 {
                        tracing::error!(error = %e, "edge write failed permanently");
                        return Err(e);
                    }
                }
                metrics::counter!("ssp_write_retries_total").increment(1);
                let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(2));
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "edge write failed, retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

pub mod ttl_sweep;

#[cfg(test)]
mod tests {
    use super::worth_a_group;

    #[test]
    fn a_second_group_starts_only_when_as_big_as_what_is_in_flight() {
        // Nothing in flight: any waiting ingest goes at once.
        assert!(worth_a_group(1, 0));
        // One ingest in flight (a lone client, or the start of a burst).
        assert!(worth_a_group(1, 1));
        // A group of 16 in flight: 3 waiting ingests join the next group
        // instead of paying a transaction of their own; 16 start one.
        assert!(!worth_a_group(3, 16));
        assert!(!worth_a_group(15, 16));
        assert!(worth_a_group(16, 16));
        assert!(worth_a_group(20, 16));
    }
}
