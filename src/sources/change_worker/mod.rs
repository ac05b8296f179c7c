//! The change worker: follows SurrealDB itself, so that apps need not call
//! `/ingest`, and makes sure no write is ever missed.
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
use super::snapshot::{APPLY_CHUNK, TablePages, deletes_for};
use crate::config::{ChangefeedMode, WorkerSettings};
use crate::db::records::read_records;
use crate::db::schema::QUERY_TABLE;
use crate::db::values::record_id_to_surreal;
use crate::db::{Db, DbError, Query};
use crate::engine::value::{Key, Object, RecordId, Value};
use crate::pipeline::{Pipeline, PipelineError, Source};
use crate::progress::Progress;

// The worker's steps, one file per concern (each an `impl Worker` block).
mod backlog;
mod commands;
mod feed;
mod live_events;
mod tables;
mod view_rows;

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
