//! The change worker: follows SurrealDB itself, so that apps need not call
//! `/ingest`, and makes sure no write is ever missed (contract §4).
//!
//! One task owns all the state and does one thing at a time, in order: apply
//! LIVE notifications, run a change-feed pass, load a table, reconcile which
//! tables are followed. Doing it in one task is what keeps LIVE, snapshots and
//! feed reads from overtaking each other in the pipeline.
//!
//! **Tracked tables** are the tables registered views read plus
//! `worker.tables`. `POST /view/register` calls [`Tracker::ensure`] before
//! registering, which returns once each table is loaded and followed; a
//! periodic reconcile picks up tables restored from the state file and drops
//! tables nothing needs any more (after a grace period, so that a view being
//! registered right now is not left unfollowed).
//!
//! **Loading a table** (the order closes SurrealDB's select-then-live race,
//! its issue #6983, where a write concurrent with the subscription reaches
//! neither the LIVE query nor the snapshot):
//! 1. make sure the table exists (a LIVE SELECT on an undefined table fails
//!    in 3.x) and, in `auto` mode, has a change feed;
//! 2. subscribe LIVE; its notifications wait in the stream meanwhile;
//! 3. take the cursor: a versionstamp a few seconds before the server's now;
//! 4. snapshot the table, diff it against what the engine holds (deletes for
//!    records gone) and apply it. The snapshot is read in pages of bounded
//!    size (see `snapshot`), applied as they come: each page is a read made
//!    after the cursor, so whatever changed since the cursor, before or after
//!    its page was read, is still re-checked by step 5;
//! 5. then the buffered notifications are applied, and the table is in "gap"
//!    mode: the next feed pass re-checks every change since the cursor.
//!
//! **Feed passes** run every [`POLL_INTERVAL`]. A pass reads the whole
//! database feed from the lowest cursor to the head (see `changefeed` for why
//! database-wide) and, for every record of a followed table, compares the
//! feed's last content with the engine's. Where they differ, the record's
//! *current* content is re-read and applied: re-reading (rather than applying
//! the feed's possibly older content) means a feed pass can never move a
//! record back behind a newer LIVE notification. In steady state, entries
//! younger than one poll interval are left to LIVE (they are checked on the
//! next pass), so the feed only acts on what LIVE really missed; tables in
//! gap mode (just loaded, re-subscribed after a disconnect or a LIVE error,
//! or restored after a restart) have every entry checked. The cursor then
//! moves to the head seen one pass earlier: one interval of overlap, because
//! a versionstamp is taken just before its commit, so commits can become
//! visible out of stamp order.
//!
//! **Gaps.** A LIVE stream that ends (the SDK ends all of them when the
//! websocket drops, and does not re-subscribe) or errs puts its table in gap
//! mode; the worker waits for the database with exponential backoff
//! ([`Db::wait_available`], the `backoff` crate), re-subscribes, and the next
//! feed pass reads the gap. A table without a change feed is resynced
//! (snapshot and diff) instead. A cursor older than the feed's retention
//! (entries after it may be gone) means a resync too, with a warning.
//!
//! **Backpressure.** The SDK buffers a LIVE stream's notifications in an
//! unbounded channel, so a worker that stops reading (waiting for a commit
//! the database is slow to take, or for a snapshot page) would let memory
//! grow with the write rate. While it waits on anything long (the pipeline,
//! a feed or snapshot read), the worker therefore keeps reading the streams
//! into a backlog of its own, bounded by [`LIVE_BACKLOG`] notifications and
//! applied in order afterwards. When the backlog is full, the busiest
//! subscriptions are ended ("shed") and their notifications dropped, which
//! frees the SDK's buffers too: those tables go into gap mode and the change
//! feed, read in bounded pages, follows them meanwhile (a table without a
//! feed is resynced instead). LIVE is subscribed again after a hold-off that
//! doubles each time the table has to be shed again soon after, so a
//! pipeline that stays slower than the writes ends up following those
//! tables by the feed alone, one poll interval behind. Commands wait for
//! room in a bounded queue; refresh requests are coalesced into one.
//!
//! **Views deleted in the database.** Deleting a `_spooky_query` row directly
//! unregisters that view (LIVE on `_spooky_query`, deletes only). Deletes of
//! views the engine does not know are ignored, which is also what SSP's own
//! unregister produces.
//!
//! A record written within milliseconds of a catch-up read can transiently
//! take an older content (its LIVE notification still in flight when the
//! newer content was re-read) before that notification and the next one
//! restore it; the edges converge to SurrealDB's state either way.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backoff::ExponentialBackoff;
use backoff::backoff::Backoff;
use chrono::{DateTime, Utc};
use futures::future::FutureExt;
use futures::stream::{AbortHandle, BoxStream, SelectAll, StreamExt};
use surrealdb::types as sdb;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::changefeed::{self, FeedStatus};
use super::cursors::{Cursor, Cursors};
use super::live::{self, LiveEvent, Subscription};
use super::snapshot::{APPLY_CHUNK, TablePages, deletes_for, read_records};
use crate::config::{ChangefeedMode, WorkerSettings};
use crate::db::schema::QUERY_TABLE;
use crate::db::values::record_id_to_surreal;
use crate::db::{Db, DbError, Query};
use crate::engine::value::{Key, Object, RecordId, Value};
use crate::pipeline::{Pipeline, PipelineError, Source};
use crate::progress::Progress;

/// How often the change feed is read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often down LIVE subscriptions are retried (each has its own backoff)
/// and tables reconciled.
const MAINTAIN_INTERVAL: Duration = Duration::from_millis(250);
/// How often the tracked tables are compared with what the views need.
const RECONCILE_INTERVAL: Duration = Duration::from_secs(2);
/// A table stays followed at least this long after a view asked for it, so
/// that a registration in flight does not see its table dropped.
const UNTRACK_GRACE: Duration = Duration::from_secs(10);
/// A new cursor starts this far before the server's clock: covers commits
/// whose versionstamp was taken but that were not visible yet, and clocks.
const CURSOR_MARGIN: Duration = Duration::from_secs(5);
/// Most LIVE events applied as one batch.
const MAX_LIVE_BATCH: usize = 4096;
/// Most LIVE notifications the worker holds, read while it waits for the
/// pipeline or a database read. Four batches: the one being committed and
/// what a write rate the pipeline sustains brings meanwhile (a group commit
/// takes up to twice this batch at once), so steady heavy load is never
/// shed, while memory stays bounded (16 MiB at 1 KiB a record) however fast
/// SurrealDB is written and however slow the commits are.
pub const LIVE_BACKLOG: usize = 4 * MAX_LIVE_BATCH;
/// A shed LIVE subscription is re-subscribed after this long at first:
/// several poll intervals, so the feed has caught the table up by then.
const SHED_HOLDOFF: Duration = Duration::from_secs(2);
/// The longest hold-off (it doubles each time a table is shed again soon
/// after its re-subscription), i.e. how often an overloaded SSP tries LIVE.
const SHED_HOLDOFF_MAX: Duration = Duration::from_secs(60);
/// A subscription that stayed up this long is back to the first hold-off.
const SHED_HOLDOFF_RESET: Duration = Duration::from_secs(60);
/// Commands waiting for the worker. The worker answers them one at a time,
/// in order, and every caller waits within a time budget, so a longer queue
/// would only hold requests that time out anyway; past it, callers wait for
/// room (their own future holds the request).
const COMMAND_QUEUE: usize = 64;
/// Records compared at once during a feed pass before re-reading mismatches.
const FEED_FLUSH_AT: usize = 10_000;
/// How long [`Db::wait_available`] waits per reconnect attempt.
const RECONNECT_PROBE: Duration = Duration::from_secs(2);
/// Even without changes, let the saver record fresher cursor times this often.
const CURSOR_SAVE_EVERY: Duration = Duration::from_secs(30);

/// Counters, for `/metrics`, logs and tests.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// LIVE notifications applied.
    pub live_changes: AtomicU64,
    /// Completed change-feed passes.
    pub feed_passes: AtomicU64,
    /// Records the feed found that LIVE had not delivered (re-read and applied).
    pub feed_repairs: AtomicU64,
    /// Full table resyncs (snapshot and diff), first loads included.
    pub snapshots: AtomicU64,
    /// Resyncs because a cursor was older than the feed's retention.
    pub stale_cursor_resyncs: AtomicU64,
    /// LIVE subscriptions re-issued after they ended.
    pub resubscribes: AtomicU64,
    /// LIVE subscriptions ended because their notifications came faster than
    /// SSP committed them (the backlog was full); the feed caught them up.
    pub live_drops: AtomicU64,
    /// Views unregistered because their `_spooky_query` row was deleted.
    pub views_removed: AtomicU64,
    /// The newest versionstamp the last feed pass saw (0 before the first),
    /// for the worker lag: this minus the oldest cursor.
    pub feed_head: AtomicU64,
}

impl WorkerStats {
    fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }
}

enum Command {
    Ensure {
        tables: Vec<Arc<str>>,
        reply: oneshot::Sender<Result<(), PipelineError>>,
    },
    Clear {
        reply: oneshot::Sender<()>,
    },
}

/// Starts following tables; shared by the routes.
pub struct Tracker {
    tx: mpsc::Sender<Command>,
    /// A pending refresh: one permit however many were asked for, so
    /// fire-and-forget callers can never grow a queue.
    refresh: Arc<tokio::sync::Notify>,
}

impl Tracker {
    /// Makes sure every table in `tables` is loaded into the engine and
    /// followed (LIVE and change feed). Returns once that is done. While the
    /// database is unavailable it keeps trying until the caller gives up
    /// (drops the future); a failure that waiting will not fix is returned.
    pub async fn ensure(&self, tables: &[Arc<str>]) -> Result<(), PipelineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Ensure {
                tables: tables.to_vec(),
                reply,
            })
            .await
            .map_err(|_| PipelineError::Closed)?;
        rx.await.map_err(|_| PipelineError::Closed)?
    }

    /// Forgets every followed table and cursor (after `/reset`, which emptied
    /// the engine): tables are loaded again when next needed.
    pub async fn clear(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Clear { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Asks the worker to compare the tracked tables with what the views need
    /// now (e.g. after an unregister). Returns at once; requests made before
    /// the worker gets to them are served by one reconcile.
    pub fn refresh(&self) {
        self.refresh.notify_one();
    }
}

/// The running worker.
pub struct WorkerHandle {
    tracker: Arc<Tracker>,
    cursors: Cursors,
    stats: Arc<WorkerStats>,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl WorkerHandle {
    /// What `POST /view/register` and `POST /reset` use.
    pub fn tracker(&self) -> Arc<Tracker> {
        Arc::clone(&self.tracker)
    }

    /// The cursors (the same map that was passed to [`ChangeWorker::start`]).
    pub fn cursors(&self) -> &Cursors {
        &self.cursors
    }

    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// Stops the worker: it finishes the step it is in (an ingest waits for
    /// its commit) for up to `grace`, then is cancelled. LIVE queries end with
    /// the connection. Idempotent.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.send_replace(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut task) = task
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            tracing::warn!("change worker did not stop in time; cancelling it");
            task.abort();
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// The change worker's entry point.
pub struct ChangeWorker;

impl ChangeWorker {
    /// Starts the worker task. `cursors` is the shared cursor map: seed it
    /// from the state file ([`Cursors::from_saved`]) so that tables restored
    /// with the engine state resume from their cursor, and give the same map
    /// to the saver. Tables restored in the engine (and `settings.tables`) are
    /// followed right away.
    pub fn start(
        db: Arc<Db>,
        pipeline: Pipeline,
        settings: WorkerSettings,
        cursors: Cursors,
    ) -> WorkerHandle {
        let (tx, commands) = mpsc::channel(COMMAND_QUEUE);
        // The pipeline signals it too, when a re-query view starts reading
        // a table through its links.
        let refresh = Arc::clone(pipeline.tables_wanted());
        let (stop, stop_rx) = watch::channel(false);
        let stats = Arc::new(WorkerStats::default());
        let retention = settings.retention;
        let worker = Worker {
            db,
            pipeline,
            settings,
            retention,
            cursors: cursors.clone(),
            stats: Arc::clone(&stats),
            commands,
            refresh: Arc::clone(&refresh),
            stop: stop_rx,
            tables: BTreeMap::new(),
            events: SelectAll::new(),
            backlog: VecDeque::new(),
            views: Follow::down(),
            next_generation: 0,
            feed_prev: None,
            warned_no_feed: HashSet::new(),
            followed_before: HashSet::new(),
            last_cursor_save: Instant::now(),
            last_reconcile: Instant::now(),
            last_feed_error: None,
            warned_clock: false,
        };
        let task = tokio::spawn(worker.run());
        WorkerHandle {
            tracker: Arc::new(Tracker { tx, refresh }),
            cursors,
            stats,
            stop,
            task: std::sync::Mutex::new(Some(task)),
        }
    }
}

/// Which subscription an event came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    Table(Arc<str>),
    Views,
}

struct Tagged {
    target: Target,
    generation: u64,
    event: LiveEvent,
}

/// A LIVE subscription's state.
struct Follow {
    generation: u64,
    state: LiveState,
    /// When it was subscribed.
    since: Instant,
    /// The hold-off of the last shed (zero: never shed), kept across
    /// re-subscriptions so that repeated sheds back off.
    holdoff: Duration,
}

enum LiveState {
    Up {
        id: sdb::Value,
        abort: AbortHandle,
    },
    Down {
        retry_at: Instant,
        backoff: ExponentialBackoff,
    },
}

impl Follow {
    fn down() -> Self {
        Follow {
            generation: 0,
            state: LiveState::Down {
                retry_at: Instant::now(),
                backoff: reconnect_backoff(),
            },
            since: Instant::now(),
            holdoff: Duration::ZERO,
        }
    }

    /// Takes the place of `old` (a re-subscription), keeping its hold-off.
    fn replacing(mut self, old: &Follow) -> Self {
        self.holdoff = old.holdoff;
        self
    }

    /// Ends the subscription to shed its notifications: returns its id (to
    /// kill) and how long to wait before subscribing again, if it was up.
    fn shed(&mut self) -> Option<(sdb::Value, Duration)> {
        if !self.is_up() {
            return None;
        }
        let holdoff = if self.holdoff.is_zero() || self.since.elapsed() >= SHED_HOLDOFF_RESET {
            SHED_HOLDOFF
        } else {
            (self.holdoff * 2).min(SHED_HOLDOFF_MAX)
        };
        let id = self.set_down()?;
        if let LiveState::Down { retry_at, .. } = &mut self.state {
            *retry_at = Instant::now() + holdoff;
        }
        self.holdoff = holdoff;
        Some((id, holdoff))
    }

    fn is_up(&self) -> bool {
        matches!(self.state, LiveState::Up { .. })
    }

    fn due(&self, now: Instant) -> bool {
        matches!(&self.state, LiveState::Down { retry_at, .. } if *retry_at <= now)
    }

    /// Marks the subscription ended; returns its id if it was up (to kill).
    fn set_down(&mut self) -> Option<sdb::Value> {
        match std::mem::replace(
            &mut self.state,
            LiveState::Down {
                retry_at: Instant::now(),
                backoff: reconnect_backoff(),
            },
        ) {
            LiveState::Up { id, abort } => {
                abort.abort();
                Some(id)
            }
            down => {
                self.state = down;
                None
            }
        }
    }

    /// Schedules the next attempt after a failed one.
    fn retry_later(&mut self) {
        if let LiveState::Down { retry_at, backoff } = &mut self.state {
            *retry_at = Instant::now() + backoff.next_backoff().unwrap_or(Duration::from_secs(5));
        }
    }
}

fn reconnect_backoff() -> ExponentialBackoff {
    crate::db::backoff_forever(Duration::from_millis(100), Duration::from_secs(5))
}

impl Table {
    /// Whether feed passes read this table's changes: while LIVE is up, and
    /// while it is shed if there is a feed (without one, the re-subscription
    /// resyncs it).
    fn feed_follows(&self) -> bool {
        self.live.is_up() || (self.shed && self.feed.is_some())
    }
}

/// A followed table.
struct Table {
    live: Follow,
    /// The change feed's retention when the table has one.
    feed: Option<Duration>,
    /// Every feed entry since the cursor must be checked (or, without a feed,
    /// the table resynced) before LIVE alone is trusted again.
    gap: bool,
    /// LIVE was ended to shed its notifications (the database is up): the
    /// feed follows the table until LIVE is subscribed again.
    shed: bool,
    /// Listed in `worker.tables`: followed even when no view reads it.
    pinned: bool,
    ensured_at: Instant,
    unwanted_since: Option<Instant>,
}

struct Worker {
    db: Arc<Db>,
    pipeline: Pipeline,
    settings: WorkerSettings,
    retention: Duration,
    cursors: Cursors,
    stats: Arc<WorkerStats>,
    commands: mpsc::Receiver<Command>,
    refresh: Arc<tokio::sync::Notify>,
    stop: watch::Receiver<bool>,
    tables: BTreeMap<Arc<str>, Table>,
    events: SelectAll<BoxStream<'static, Tagged>>,
    /// Notifications read from `events` while the worker waited, not yet
    /// applied (at most [`LIVE_BACKLOG`]); applied before anything newer.
    backlog: VecDeque<Tagged>,
    /// The `_spooky_query` subscription.
    views: Follow,
    next_generation: u64,
    /// The head seen by the previous feed pass, and when that pass started.
    feed_prev: Option<(u64, DateTime<Utc>)>,
    warned_no_feed: HashSet<Arc<str>>,
    /// Tables loaded at least once by this process.
    followed_before: HashSet<Arc<str>>,
    last_cursor_save: Instant,
    last_reconcile: Instant,
    last_feed_error: Option<Instant>,
    warned_clock: bool,
}

/// A step failed: the database (retry later) or the pipeline (stop).
enum StepError {
    Db(DbError),
    Pipeline(PipelineError),
}

impl From<DbError> for StepError {
    fn from(e: DbError) -> Self {
        StepError::Db(e)
    }
}

impl From<PipelineError> for StepError {
    fn from(e: PipelineError) -> Self {
        StepError::Pipeline(e)
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Db(e) => e.fmt(f),
            StepError::Pipeline(e) => e.fmt(f),
        }
    }
}

impl Worker {
    async fn run(mut self) {
        self.follow_views().await;
        self.reconcile().await;
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut maintain = tokio::time::interval(MAINTAIN_INTERVAL);
        maintain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let step = tokio::select! {
                biased;
                changed = self.stop.changed() => {
                    if changed.is_err() || *self.stop.borrow() {
                        break;
                    }
                    Ok(())
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command).await,
                    None => break,
                },
                () = self.refresh.notified() => {
                    self.reconcile().await;
                    Ok(())
                }
                // What was read while waiting goes first: it is older.
                () = std::future::ready(()), if !self.backlog.is_empty() => self.on_events().await,
                Some(first) = self.events.next(), if !self.events.is_empty() => {
                    self.backlog.push_back(first);
                    self.on_events().await
                }
                _ = poll.tick() => self.feed_pass().await,
                _ = maintain.tick() => self.maintain().await,
            };
            match step {
                Ok(()) => {}
                Err(StepError::Pipeline(PipelineError::Closed)) => {
                    tracing::info!("the pipeline has stopped; the change worker stops too");
                    break;
                }
                Err(e) => tracing::error!(error = %e, "change worker step failed"),
            }
        }
        self.teardown().await;
    }

    async fn teardown(&mut self) {
        let ids: Vec<sdb::Value> = self
            .tables
            .values_mut()
            .filter_map(|t| t.live.set_down())
            .chain(self.views.set_down())
            .collect();
        // Best effort and bounded: on a dead connection there is nothing to
        // kill, and shutdown must not wait for call timeouts.
        let kills = futures::future::join_all(ids.into_iter().map(|id| live::kill(&self.db, id)));
        let _ = tokio::time::timeout(Duration::from_secs(1), kills).await;
        tracing::debug!("change worker stopped");
    }

    // ----- commands ------------------------------------------------------

    async fn command(&mut self, command: Command) -> Result<(), StepError> {
        match command {
            Command::Ensure { tables, reply } => {
                let result = self.ensure(&tables, &reply).await;
                let closed = matches!(result, Err(PipelineError::Closed));
                let _ = reply.send(result);
                if closed {
                    return Err(StepError::Pipeline(PipelineError::Closed));
                }
                Ok(())
            }
            Command::Clear { reply } => {
                let ids: Vec<sdb::Value> = self
                    .tables
                    .values_mut()
                    .filter_map(|t| t.live.set_down())
                    .collect();
                self.kill_later(ids);
                self.tables.clear();
                self.cursors.clear();
                self.feed_prev = None;
                self.pipeline.dirty().notify_one();
                let _ = reply.send(());
                tracing::info!("change worker: every table forgotten (reset)");
                Ok(())
            }
        }
    }

    async fn ensure(
        &mut self,
        tables: &[Arc<str>],
        reply: &oneshot::Sender<Result<(), PipelineError>>,
    ) -> Result<(), PipelineError> {
        for table in tables {
            if let Some(t) = self.tables.get_mut(table) {
                t.ensured_at = Instant::now();
                t.unwanted_since = None;
                continue;
            }
            let pinned = self
                .settings
                .tables
                .iter()
                .any(|p| p.as_str() == table.as_ref());
            let mut backoff = reconnect_backoff();
            loop {
                match self.track(table, pinned, false).await {
                    Ok(()) => break,
                    Err(StepError::Pipeline(e)) => return Err(e),
                    Err(StepError::Db(e)) if e.is_unavailable() || e.is_conflict() => {
                        if reply.is_closed() {
                            // The caller gave up; the reconcile will load the
                            // table if a view needs it.
                            return Err(PipelineError::Write(e.to_string()));
                        }
                        let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(5));
                        tracing::warn!(table = %table, error = %e, retry_in_ms = wait.as_millis() as u64, "cannot load the table yet");
                        let mut stop = self.stop.clone();
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = stop.wait_for(|s| *s) => return Err(PipelineError::Closed),
                        }
                    }
                    Err(StepError::Db(e)) => {
                        return Err(PipelineError::Write(format!(
                            "cannot follow table `{table}`: {e}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    // ----- tables --------------------------------------------------------

    /// Starts following `table`. With `adopt` (a table restored from the
    /// state file) and a cursor, the feed pass catches up from the cursor;
    /// otherwise the table is snapshotted and diffed.
    async fn track(
        &mut self,
        table: &Arc<str>,
        pinned: bool,
        adopt: bool,
    ) -> Result<(), StepError> {
        let status = self.prepare(table).await?;
        let sub = live::subscribe(&self.db, table, false).await?;
        let follow = self.attach(Target::Table(table.clone()), sub);
        self.tables.insert(
            table.clone(),
            Table {
                live: follow,
                feed: status
                    .has_feed
                    .then(|| status.retention.unwrap_or(self.retention)),
                gap: true,
                shed: false,
                pinned,
                ensured_at: Instant::now(),
                unwanted_since: None,
            },
        );
        let loaded_before = !self.followed_before.insert(table.clone());
        let resume = adopt && status.has_feed && self.cursors.get(table).is_some();
        if resume {
            tracing::info!(table = %table, "following the table again; catching up from its change-feed cursor");
            return Ok(());
        }
        // A first load only adds: what the engine holds of a table never
        // followed came through `/ingest`, and may be a record the database
        // does not hold yet (contract §3). Loading again (restored without a
        // usable cursor, or followed before in this run) is a resync.
        if let Err(e) = self.resync(table, adopt || loaded_before).await {
            self.untrack(table).await;
            return Err(e);
        }
        tracing::info!(table = %table, feed = status.has_feed, "table loaded and followed");
        Ok(())
    }

    /// Defines the table if missing and gives it a change feed in `auto`
    /// mode; warns once when a table will be followed without a feed.
    async fn prepare(&mut self, table: &Arc<str>) -> Result<FeedStatus, DbError> {
        let status = changefeed::prepare_table(
            &self.db,
            table,
            self.settings.changefeed,
            &self.settings.changefeed_retention,
            self.retention,
        )
        .await?;
        if !status.has_feed && self.warned_no_feed.insert(table.clone()) {
            match self.settings.changefeed {
                ChangefeedMode::Off => tracing::warn!(
                    table = %table,
                    "worker.changefeed = off: after a disconnect or a restart the table is reloaded in full"
                ),
                _ => tracing::warn!(
                    table = %table,
                    "the table has no change feed and worker.changefeed = manual: after a disconnect or a restart it is reloaded in full; define one with `ALTER TABLE {table} CHANGEFEED {}`",
                    self.settings.changefeed_retention
                ),
            }
        }
        Ok(status)
    }

    fn attach(&mut self, target: Target, sub: Subscription) -> Follow {
        self.next_generation += 1;
        let generation = self.next_generation;
        let (events, abort) = futures::stream::abortable(sub.events);
        let tag = target.clone();
        self.events.push(
            events
                .map(move |event| Tagged {
                    target: tag.clone(),
                    generation,
                    event,
                })
                .boxed(),
        );
        Follow {
            generation,
            state: LiveState::Up { id: sub.id, abort },
            since: Instant::now(),
            holdoff: Duration::ZERO,
        }
    }

    async fn untrack(&mut self, table: &Arc<str>) {
        if let Some(mut t) = self.tables.remove(table)
            && let Some(id) = t.live.set_down()
        {
            self.kill_later(vec![id]);
        }
        self.cursors.remove(table);
    }

    /// Kills live queries in the background: the worker does not wait on a
    /// connection that may be down (then there is nothing to kill anyway).
    fn kill_later(&self, ids: Vec<sdb::Value>) {
        if ids.is_empty() {
            return;
        }
        let db = Arc::clone(&self.db);
        tokio::spawn(async move {
            for id in ids {
                live::kill(&db, id).await;
            }
        });
    }

    /// Loads the table from a snapshot: every row and, with `deletes` (a
    /// resync after a gap), a delete for every record the engine holds that
    /// the table no longer has. With a change feed, the cursor is taken
    /// first, so that the next feed pass covers every write the snapshot may
    /// have missed.
    ///
    /// An empty table never deletes what the engine holds: that is what a
    /// deployment looks like whose records reach SSP only through `/ingest`
    /// (the database does not hold them), and wiping its views would be far
    /// worse than keeping records deleted while SSP was not looking.
    async fn resync(&mut self, table: &Arc<str>, deletes: bool) -> Result<(), StepError> {
        let has_feed = self.tables.get(table).is_some_and(|t| t.feed.is_some());
        // The cursor starts a margin before the server's now, and counts as
        // confirmed now: what the feed must supply is only what the snapshot
        // below may miss, i.e. commits from now on (older ones it holds).
        let cursor = if has_feed {
            let versionstamp = changefeed::versionstamp_before_now(&self.db, CURSOR_MARGIN).await?;
            Some(Cursor {
                versionstamp,
                confirmed_at: Utc::now(),
            })
        } else {
            None
        };
        // What the engine holds, read before the snapshot: a record created
        // after the snapshot (and applied meanwhile) is never deleted.
        let held = if deletes {
            self.pipeline.read(|engine| engine.table_records(table))
        } else {
            Vec::new()
        };
        let job = if deletes { "resync" } else { "snapshot" };
        let mut progress = Progress::start(job, table, None);
        // Page by page (each call bounded, whatever the table's size), applied
        // as it comes in batches of APPLY_CHUNK rows; only the ids are kept,
        // for the deletes.
        let mut pages = TablePages::new(table);
        let mut present: HashSet<RecordId> = HashSet::new();
        let mut batch: Vec<crate::engine::Change> = Vec::new();
        let mut count = 0usize;
        let db = Arc::clone(&self.db);
        while let Some(page) = self.drain_while(pages.next_page(&db)).await? {
            count += page.len();
            if deletes {
                present.extend(page.iter().map(|c| c.id.clone()));
            }
            batch.extend(page);
            if batch.len() >= APPLY_CHUNK {
                let n = batch.len() as u64;
                self.ingest(std::mem::take(&mut batch), Source::Bootstrap)
                    .await?;
                progress.add(n);
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            self.ingest(batch, Source::Bootstrap).await?;
            progress.add(n);
        }
        let held = if count == 0 && !held.is_empty() {
            tracing::warn!(
                table = %table,
                held = held.len(),
                "the table is empty in the database but SSP holds records of it (sent through /ingest?): keeping them"
            );
            Vec::new()
        } else {
            held
        };
        let gone = deletes_for(held, &present);
        let deleted = gone.len();
        for chunk in gone.chunks(APPLY_CHUNK) {
            self.ingest(chunk.to_vec(), Source::Bootstrap).await?;
            progress.add(chunk.len() as u64);
        }
        progress.finish();
        if let Some(cursor) = cursor {
            self.cursors.set(table, cursor);
        }
        if let Some(t) = self.tables.get_mut(table) {
            t.gap = has_feed;
        }
        WorkerStats::bump(&self.stats.snapshots, 1);
        metrics::counter!("ssp_worker_snapshots_total").increment(1);
        tracing::debug!(table = %table, rows = count, deleted, pages = pages.pages(), "table snapshot applied");
        Ok(())
    }

    /// Compares the tracked tables with what the views need now.
    async fn reconcile(&mut self) {
        self.last_reconcile = Instant::now();
        let mut wanted: BTreeSet<Arc<str>> = self.pipeline.read(|engine| engine.tables());
        let pinned: BTreeSet<Arc<str>> = self
            .settings
            .tables
            .iter()
            .map(|t| Arc::from(t.as_str()))
            .collect();
        wanted.extend(pinned.iter().cloned());
        for table in &wanted {
            if self.tables.contains_key(table) {
                if let Some(t) = self.tables.get_mut(table) {
                    t.unwanted_since = None;
                }
                continue;
            }
            match self.track(table, pinned.contains(table), true).await {
                Ok(()) => {}
                Err(StepError::Pipeline(PipelineError::Closed)) => return,
                Err(StepError::Db(e)) if e.is_unavailable() => {
                    tracing::debug!(table = %table, error = %e, "cannot follow the table yet; will retry");
                }
                Err(e) => {
                    tracing::warn!(table = %table, error = %e, "cannot follow the table yet; will retry")
                }
            }
        }
        let now = Instant::now();
        let unwanted: Vec<Arc<str>> = self
            .tables
            .iter_mut()
            .filter(|(name, t)| !wanted.contains(*name) && !t.pinned)
            .filter_map(|(name, t)| {
                if now.duration_since(t.ensured_at) < UNTRACK_GRACE {
                    return None;
                }
                let since = *t.unwanted_since.get_or_insert(now);
                (now.duration_since(since) >= RECONCILE_INTERVAL).then(|| name.clone())
            })
            .collect();
        for table in unwanted {
            tracing::info!(table = %table, "no view reads the table any more; no longer following it");
            self.untrack(&table).await;
        }
    }

    // ----- LIVE ----------------------------------------------------------

    /// Applies the oldest notifications: the backlog's, then what the
    /// streams have ready, up to [`MAX_LIVE_BATCH`].
    async fn on_events(&mut self) -> Result<(), StepError> {
        let take = self.backlog.len().min(MAX_LIVE_BATCH);
        let mut batch: Vec<Tagged> = self.backlog.drain(..take).collect();
        while batch.len() < MAX_LIVE_BATCH && self.backlog.is_empty() {
            match self.events.next().now_or_never() {
                Some(Some(tagged)) => batch.push(tagged),
                _ => break,
            }
        }
        let mut changes = Vec::new();
        let mut deleted_views = Vec::new();
        let mut ended: Vec<Arc<str>> = Vec::new();
        let mut errors: Vec<(Target, String)> = Vec::new();
        let mut check_view_rows = false;
        for Tagged {
            target,
            generation,
            event,
        } in batch
        {
            match &target {
                Target::Table(name) => {
                    let Some(table) = self.tables.get_mut(name) else {
                        continue;
                    };
                    if table.live.generation != generation || !table.live.is_up() {
                        continue;
                    }
                    match event {
                        LiveEvent::Change(change) => changes.push(change),
                        LiveEvent::Deleted(_) => {}
                        LiveEvent::Error(message) => {
                            table.gap = true;
                            errors.push((target.clone(), message));
                        }
                        LiveEvent::Ended => {
                            // The live query is gone with the connection (or
                            // was killed): nothing to kill.
                            table.gap = true;
                            table.live.set_down();
                            ended.push(name.clone());
                        }
                    }
                }
                Target::Views => {
                    if self.views.generation != generation || !self.views.is_up() {
                        continue;
                    }
                    match event {
                        LiveEvent::Deleted(id) => deleted_views.push(id),
                        LiveEvent::Change(_) => {}
                        LiveEvent::Error(message) => {
                            // A delete may have been missed: compare the rows.
                            check_view_rows = true;
                            errors.push((target.clone(), message));
                        }
                        LiveEvent::Ended => {
                            self.views.set_down();
                            ended.push(Arc::from(QUERY_TABLE));
                        }
                    }
                }
            }
        }
        // An error followed by the end of the stream is a disconnect, said
        // once below; other errors are worth a line each.
        for (target, message) in errors {
            let name: Arc<str> = match &target {
                Target::Table(name) => name.clone(),
                Target::Views => Arc::from(QUERY_TABLE),
            };
            if !ended.contains(&name) {
                tracing::warn!(table = %name, error = %message, "LIVE error: catching the table up from the change feed");
            }
        }
        if !ended.is_empty() {
            tracing::warn!(
                tables = ?ended.iter().map(|n| n.as_ref()).collect::<Vec<_>>(),
                "LIVE subscriptions ended (connection lost?); re-subscribing, then catching up from the change feed"
            );
        }
        if !changes.is_empty() {
            let n = changes.len() as u64;
            self.ingest(changes, Source::Live).await?;
            WorkerStats::bump(&self.stats.live_changes, n);
        }
        for id in deleted_views {
            self.view_row_deleted(id).await?;
        }
        if check_view_rows && let Err(e) = self.remove_views_without_rows().await {
            tracing::debug!(error = %e, "cannot compare views with their rows yet");
        }
        Ok(())
    }

    /// Re-subscribes what is down and due, and reconciles now and then.
    async fn maintain(&mut self) -> Result<(), StepError> {
        let now = Instant::now();
        let due: Vec<Arc<str>> = self
            .tables
            .iter()
            .filter(|(_, t)| t.live.due(now))
            .map(|(name, _)| name.clone())
            .collect();
        let views_due = self.views.due(now);
        if !due.is_empty() || views_due {
            if let Err(e) = self.db.wait_available(RECONNECT_PROBE).await {
                tracing::debug!(error = %e, "database still unavailable");
                for name in &due {
                    if let Some(t) = self.tables.get_mut(name) {
                        t.live.retry_later();
                    }
                }
                if views_due {
                    self.views.retry_later();
                }
                return Ok(());
            }
            let any = !due.is_empty();
            for name in due {
                self.resubscribe(&name).await;
            }
            if views_due {
                self.follow_views().await;
            }
            if any {
                // Close the gap now rather than at the next tick.
                self.feed_pass().await?;
            }
        }
        if self.last_reconcile.elapsed() >= RECONCILE_INTERVAL {
            self.reconcile().await;
        }
        Ok(())
    }

    async fn resubscribe(&mut self, table: &Arc<str>) {
        let mut result = live::subscribe(&self.db, table, false).await;
        if let Err(DbError::Statement(_) | DbError::Other { .. }) = &result {
            // The table may have been removed meanwhile: define it again.
            if self.prepare(table).await.is_ok() {
                result = live::subscribe(&self.db, table, false).await;
            }
        }
        match result {
            Ok(sub) => {
                let follow = self.attach(Target::Table(table.clone()), sub);
                if let Some(t) = self.tables.get_mut(table) {
                    t.live = follow.replacing(&t.live);
                    t.gap = true;
                    t.shed = false;
                }
                WorkerStats::bump(&self.stats.resubscribes, 1);
                metrics::counter!("ssp_worker_resubscribes_total").increment(1);
                tracing::info!(table = %table, "LIVE re-subscribed; catching up from the change feed");
            }
            Err(e) => {
                tracing::warn!(table = %table, error = %e, "cannot re-subscribe LIVE yet");
                if let Some(t) = self.tables.get_mut(table) {
                    t.live.retry_later();
                }
            }
        }
    }

    // ----- waiting without letting LIVE pile up -------------------------

    /// Waits for `work` while reading LIVE notifications into the backlog, so
    /// that they wait in bounded memory of ours rather than in the SDK's
    /// unbounded channels; sheds subscriptions when the backlog is full.
    async fn drain_while<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            if self.backlog.len() >= LIVE_BACKLOG {
                self.shed();
            }
            let room = self.backlog.len() < LIVE_BACKLOG;
            tokio::select! {
                biased;
                out = &mut work => return out,
                Some(tagged) = self.events.next(), if room && !self.events.is_empty() => {
                    self.backlog.push_back(tagged);
                }
            }
        }
    }

    /// Whether an event of `generation` from `target` is still to be
    /// applied: its subscription is the table's current one and is up.
    fn is_current(&self, target: &Target, generation: u64) -> bool {
        match target {
            Target::Table(name) => self
                .tables
                .get(name)
                .is_some_and(|t| t.live.generation == generation && t.live.is_up()),
            Target::Views => self.views.generation == generation && self.views.is_up(),
        }
    }

    // The pipeline calls, waited for with `drain_while`.

    async fn ingest(
        &mut self,
        changes: Vec<crate::engine::Change>,
        source: Source,
    ) -> Result<(), PipelineError> {
        let pipeline = self.pipeline.clone();
        self.drain_while(async move { pipeline.ingest(changes, source).await })
            .await
            .map(|_| ())
    }

    async fn flush(&mut self) -> Result<(), PipelineError> {
        let pipeline = self.pipeline.clone();
        self.drain_while(async move { pipeline.flush().await })
            .await
    }

    async fn unregister(&mut self, id: String) -> Result<bool, PipelineError> {
        let pipeline = self.pipeline.clone();
        self.drain_while(async move { pipeline.unregister(id).await })
            .await
    }

    /// The backlog is full: the LIVE streams bring more than the pipeline
    /// commits. Drops what no longer counts (ended or replaced
    /// subscriptions), then ends the busiest subscriptions, dropping their
    /// notifications, until the backlog is half empty. Their tables are
    /// caught up from the change feed (or resynced), as after a disconnect.
    fn shed(&mut self) {
        let mut backlog = std::mem::take(&mut self.backlog);
        backlog.retain(|t| self.is_current(&t.target, t.generation));
        self.backlog = backlog;
        if self.backlog.len() < LIVE_BACKLOG / 2 {
            return;
        }
        let mut counts: HashMap<Target, usize> = HashMap::new();
        for tagged in &self.backlog {
            *counts.entry(tagged.target.clone()).or_default() += 1;
        }
        let mut busiest: Vec<(Target, usize)> = counts.into_iter().collect();
        busiest.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        let mut left = self.backlog.len();
        let mut shed: HashSet<Target> = HashSet::new();
        for (target, count) in busiest {
            if left < LIVE_BACKLOG / 2 {
                break;
            }
            left -= count;
            shed.insert(target);
        }
        self.backlog.retain(|t| !shed.contains(&t.target));
        let mut kills = Vec::new();
        for target in shed {
            let (name, ended) = match &target {
                Target::Table(name) => {
                    let Some(t) = self.tables.get_mut(name) else {
                        continue;
                    };
                    let ended = t.live.shed();
                    if ended.is_some() {
                        t.gap = true;
                        t.shed = true;
                    }
                    (name.clone(), ended)
                }
                Target::Views => (Arc::from(QUERY_TABLE), self.views.shed()),
            };
            let Some((id, holdoff)) = ended else {
                continue;
            };
            kills.push(id);
            WorkerStats::bump(&self.stats.live_drops, 1);
            metrics::counter!("ssp_worker_live_drops_total").increment(1);
            tracing::warn!(
                table = %name,
                backlog = LIVE_BACKLOG,
                retry_in_s = holdoff.as_secs_f64(),
                "LIVE notifications arrive faster than SSP commits them: ending the table's LIVE subscription to bound memory; the change feed catches the table up meanwhile"
            );
        }
        self.kill_later(kills);
    }

    // ----- the change feed -----------------------------------------------

    async fn feed_pass(&mut self) -> Result<(), StepError> {
        match self.try_feed_pass().await {
            Err(StepError::Db(e)) => {
                // Rate-limit: while the database is down this fails every pass.
                if self
                    .last_feed_error
                    .is_none_or(|t| t.elapsed() > Duration::from_secs(30))
                {
                    tracing::warn!(error = %e, "change feed pass failed; will retry");
                    self.last_feed_error = Some(Instant::now());
                }
                Ok(())
            }
            other => {
                if other.is_ok() {
                    self.last_feed_error = None;
                }
                other
            }
        }
    }

    async fn try_feed_pass(&mut self) -> Result<(), StepError> {
        // 1. Gaps that the feed cannot fill: no feed, no cursor, or a cursor
        //    older than the retention. Resync those tables.
        let now = Utc::now();
        let mut to_resync = Vec::new();
        for (name, t) in &self.tables {
            if !t.gap || !t.feed_follows() {
                continue;
            }
            match (t.feed, self.cursors.get(name)) {
                (None, _) => to_resync.push((name.clone(), None)),
                (Some(_), None) => to_resync.push((name.clone(), None)),
                (Some(retention), Some(cursor)) => {
                    let age = (now - cursor.confirmed_at).to_std().unwrap_or_default();
                    let margin = (retention / 10).min(Duration::from_secs(60));
                    if age + margin > retention {
                        to_resync.push((name.clone(), Some((age, retention))));
                    }
                }
            }
        }
        for (name, stale) in to_resync {
            if let Some((age, retention)) = stale {
                tracing::warn!(
                    table = %name,
                    cursor_age_s = age.as_secs_f64(),
                    retention_s = retention.as_secs_f64(),
                    "change-feed cursor is older than the feed's retention (changes after it may be gone): resyncing the table from a full snapshot"
                );
                WorkerStats::bump(&self.stats.stale_cursor_resyncs, 1);
                metrics::counter!("ssp_worker_stale_cursor_resyncs_total").increment(1);
            }
            self.resync(&name, true).await?;
            if let Some(t) = self.tables.get_mut(&name) {
                // Without a feed the snapshot closed the gap; with one, the
                // pass below checks the changes since the new cursor.
                t.gap = t.feed.is_some();
            }
        }

        // 2. The tables the feed follows, with their cursors.
        let mut followed: HashMap<Arc<str>, (u64, bool, u64)> = HashMap::new();
        for (name, t) in &self.tables {
            if t.feed.is_none() || !t.feed_follows() {
                continue;
            }
            if let Some(cursor) = self.cursors.get(name) {
                followed.insert(
                    name.clone(),
                    (cursor.versionstamp, t.gap, t.live.generation),
                );
            }
        }
        let Some(start) = followed.values().map(|(c, _, _)| *c).min() else {
            return Ok(());
        };
        let pass_started = Utc::now();
        let settled_upto = self.feed_prev.map(|(head, _)| head);

        // 3. Read to the head, checking entries against the engine.
        let mut since = start;
        let mut head = start;
        let mut pending: HashMap<RecordId, Option<Object>> = HashMap::new();
        let mut pages = 0u64;
        loop {
            let db = Arc::clone(&self.db);
            let page = self
                .drain_while(async move { changefeed::read_page(&db, since).await })
                .await?;
            pages += 1;
            if let Some(last) = page.last_versionstamp {
                self.check_clock(last);
            }
            for entry in page.entries {
                let Some(&(cursor, gap, _)) = followed.get(entry.id.table.as_str()) else {
                    continue;
                };
                if entry.versionstamp < cursor {
                    continue;
                }
                let settled = gap || settled_upto.is_some_and(|s| entry.versionstamp <= s);
                if settled {
                    pending.insert(entry.id, entry.content);
                } else {
                    // Its newest state is still LIVE's to deliver; checked
                    // next pass (the cursor stays at or before it).
                    pending.remove(&entry.id);
                }
            }
            if pending.len() >= FEED_FLUSH_AT {
                self.repair(&mut pending).await?;
            }
            match page.last_versionstamp {
                Some(last) if last > since => {
                    head = head.max(last);
                    since = last;
                }
                _ => break,
            }
        }
        self.repair(&mut pending).await?;

        // 4. Advance: to the head of the previous pass (one interval of
        //    overlap for commits that become visible out of stamp order).
        let mut moved = false;
        if let Some((prev_head, prev_started)) = self.feed_prev {
            let to = Cursor {
                versionstamp: prev_head,
                confirmed_at: prev_started,
            };
            for name in followed.keys() {
                moved |= self.cursors.advance(name, to);
            }
        }
        self.feed_prev = Some((head, pass_started));
        self.stats.feed_head.fetch_max(head, Ordering::Relaxed);
        for (name, (_, gap, generation)) in &followed {
            if let Some(t) = self.tables.get_mut(name)
                && *gap
                && t.live.generation == *generation
                && t.live.is_up()
            {
                t.gap = false;
            }
        }
        if moved || self.last_cursor_save.elapsed() >= CURSOR_SAVE_EVERY {
            self.last_cursor_save = Instant::now();
            self.pipeline.dirty().notify_one();
        }
        WorkerStats::bump(&self.stats.feed_passes, 1);
        metrics::counter!("ssp_worker_feed_pages_total").increment(pages);
        Ok(())
    }

    /// Warns once if versionstamps are not the hybrid logical clock this
    /// worker assumes when it derives a starting cursor from the server's
    /// clock (true of SurrealDB's mem, SurrealKV and RocksDB stores).
    fn check_clock(&mut self, versionstamp: u64) {
        if self.warned_clock {
            return;
        }
        let now = Utc::now().timestamp_millis().max(0) as u64;
        let at = changefeed::hlc_millis(versionstamp);
        if now.abs_diff(at) > 24 * 3600 * 1000 {
            self.warned_clock = true;
            tracing::warn!(
                versionstamp,
                "change-feed versionstamps do not look like a hybrid logical clock (unix ms << 16); the starting cursor of a newly followed table may be off, so writes racing its first load could be missed"
            );
        }
    }

    /// Applies the current content of every pending record whose feed state
    /// differs from the engine's.
    async fn repair(
        &mut self,
        pending: &mut HashMap<RecordId, Option<Object>>,
    ) -> Result<(), StepError> {
        if pending.is_empty() {
            return Ok(());
        }
        let candidates: Vec<(RecordId, Option<Object>)> = pending.drain().collect();
        let mut stale: Vec<RecordId> = self.pipeline.read(|engine| {
            candidates
                .into_iter()
                .filter(|(id, content)| {
                    !matches_engine(engine.record(id).as_ref(), content.as_ref())
                })
                .map(|(id, _)| id)
                .collect()
        });
        if stale.is_empty() {
            return Ok(());
        }
        stale.sort();
        let db = Arc::clone(&self.db);
        let changes = self.drain_while(read_records(&db, &stale)).await?;
        tracing::info!(
            records = stale.len(),
            first = %stale[0],
            "caught up from the change feed: applied changes LIVE had not delivered"
        );
        WorkerStats::bump(&self.stats.feed_repairs, stale.len() as u64);
        metrics::counter!("ssp_worker_feed_repairs_total").increment(stale.len() as u64);
        self.ingest(changes, Source::ChangeFeed).await?;
        Ok(())
    }

    // ----- `_spooky_query` -----------------------------------------------

    /// Subscribes to deletes of `_spooky_query` rows, then unregisters the
    /// views whose rows are already gone (deleted while SSP was not
    /// listening).
    async fn follow_views(&mut self) {
        match live::subscribe(&self.db, QUERY_TABLE, true).await {
            Ok(sub) => {
                let follow = self.attach(Target::Views, sub);
                self.views = follow.replacing(&self.views);
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot subscribe to _spooky_query yet");
                self.views.retry_later();
                return;
            }
        }
        if let Err(e) = self.remove_views_without_rows().await {
            tracing::warn!(error = %e, "cannot compare views with their _spooky_query rows");
        }
    }

    async fn remove_views_without_rows(&mut self) -> Result<(), StepError> {
        // Views known now, then everything queued committed (their rows
        // written), then the rows: a view registered meanwhile is not in
        // the first list, so it is never mistaken for a deleted one.
        let known: Vec<String> = self
            .pipeline
            .read(|engine| engine.views().map(|v| v.id.to_string()).collect());
        if known.is_empty() {
            return Ok(());
        }
        self.flush().await?;
        let q =
            Query::new("SELECT VALUE id FROM type::table($t)").bind("t", QUERY_TABLE.to_string());
        let mut response = self.db.run_background(q).await?;
        let rows: Vec<sdb::Value> = response.take(0)?;
        let present: HashSet<String> = rows
            .into_iter()
            .filter_map(|v| match v {
                sdb::Value::RecordId(r) => {
                    crate::db::values::record_id_from_surreal(&r).map(|id| view_id_of(&id))
                }
                _ => None,
            })
            .collect();
        for id in known {
            if present.contains(&id) {
                continue;
            }
            if self.pipeline.read(|engine| engine.view(&id).is_some()) {
                tracing::info!(view = %id, "the view's _spooky_query row is gone: unregistering the view");
                self.unregister(id).await?;
                WorkerStats::bump(&self.stats.views_removed, 1);
            }
        }
        Ok(())
    }

    /// A `_spooky_query` row was deleted in the database.
    async fn view_row_deleted(&mut self, row: RecordId) -> Result<(), StepError> {
        let id = view_id_of(&row);
        // Unknown views: deleted by SSP's own unregister (or never ours).
        if !self.pipeline.read(|engine| engine.view(&id).is_some()) {
            return Ok(());
        }
        // The view may have been registered again since the delete: then its
        // row exists again once everything queued is committed.
        self.flush().await?;
        let q = Query::new("SELECT VALUE id FROM $row")
            .bind("row", sdb::Value::RecordId(record_id_to_surreal(&row)));
        let exists = match self.db.run_background(q).await {
            Ok(mut response) => !response.take::<Vec<sdb::Value>>(0)?.is_empty(),
            Err(e) => return Err(e.into()),
        };
        if exists || !self.pipeline.read(|engine| engine.view(&id).is_some()) {
            return Ok(());
        }
        tracing::info!(view = %id, "the view's _spooky_query row was deleted in the database: unregistering the view");
        self.unregister(id).await?;
        WorkerStats::bump(&self.stats.views_removed, 1);
        self.reconcile_soon();
        Ok(())
    }

    fn reconcile_soon(&mut self) {
        self.last_reconcile = Instant::now() - RECONCILE_INTERVAL;
    }
}

/// A view's id from its `_spooky_query` row id.
fn view_id_of(row: &RecordId) -> String {
    match &row.key {
        Key::String(s) => s.to_string(),
        Key::Int(i) => i.to_string(),
        other => other.to_string(),
    }
}

/// Whether the engine's copy of a record equals what the feed says it became.
fn matches_engine(engine: Option<&Value>, feed: Option<&Object>) -> bool {
    match (engine, feed) {
        (None, None) => true,
        (Some(held), Some(content)) => held.same_content(&Value::Object(content.clone())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_content_matches_engine_content() {
        let id = RecordId::new("t", Key::Int(1));
        let content = Object::from_pairs(vec![
            ("id".into(), Value::thing(id.clone())),
            (
                "a".into(),
                Value::Number(crate::engine::value::Number::Int(1)),
            ),
        ]);
        let held = Value::Object(content.clone());
        assert!(matches_engine(Some(&held), Some(&content)));
        assert!(matches_engine(None, None));
        assert!(!matches_engine(Some(&held), None));
        assert!(!matches_engine(None, Some(&content)));
        let other = Object::from_pairs(vec![("id".into(), Value::thing(id))]);
        assert!(!matches_engine(Some(&held), Some(&other)));
    }

    fn tracker() -> (Arc<Tracker>, mpsc::Receiver<Command>) {
        let (tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let refresh = Arc::new(tokio::sync::Notify::new());
        (Arc::new(Tracker { tx, refresh }), commands)
    }

    #[tokio::test]
    async fn refreshes_coalesce_instead_of_queueing() {
        let (tracker, commands) = tracker();
        for _ in 0..100_000 {
            tracker.refresh();
        }
        assert_eq!(commands.len(), 0, "a refresh queues no command");
        let pending = tracker.refresh.notified();
        assert!(pending.now_or_never().is_some(), "one refresh is pending");
        let more = tracker.refresh.notified();
        assert!(more.now_or_never().is_none(), "and only one");
    }

    #[tokio::test]
    async fn ensure_waits_for_room_in_the_queue() {
        let (tracker, mut commands) = tracker();
        let callers = 3 * COMMAND_QUEUE;
        let tasks: Vec<_> = (0..callers)
            .map(|i| {
                let tracker = Arc::clone(&tracker);
                tokio::spawn(async move { tracker.ensure(&[Arc::from(format!("t{i}"))]).await })
            })
            .collect();
        // The callers fill the queue and wait for room, none fails.
        while commands.len() < COMMAND_QUEUE {
            tokio::task::yield_now().await;
        }
        assert!(tasks.iter().all(|t| !t.is_finished()));
        for _ in 0..callers {
            match commands.recv().await {
                Some(Command::Ensure { reply, .. }) => {
                    let _ = reply.send(Ok(()));
                }
                _ => panic!("an ensure command"),
            }
        }
        for task in tasks {
            task.await.expect("caller").expect("ensured");
        }
    }

    #[test]
    fn view_ids_from_rows() {
        assert_eq!(
            view_id_of(&RecordId::new("_spooky_query", Key::String("abc".into()))),
            "abc"
        );
        assert_eq!(
            view_id_of(&RecordId::new("_spooky_query", Key::Int(7))),
            "7"
        );
    }
}
