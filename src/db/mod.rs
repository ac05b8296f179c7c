//! SSP's SurrealDB connections, and the only door to them.
//!
//! A [`Db`] is one connection (`Arc<Surreal<Any>>`, shared by reference: in
//! SurrealDB 3.x `Surreal::clone()` opens a *new session*, which would lose
//! the namespace, database and signin). SSP holds the main one, and over
//! `ws://` one more per edge-write slot (see `sink::EdgeSink::with_writers`);
//! embedded, every slot shares the main one. It speaks `ws://`/`wss://` to a
//! server or runs the engine embedded (`mem://`, `surrealkv://PATH`).
//!
//! Every database call goes through [`Db::call`] (or [`Db::run`], built on it),
//! which
//! - bounds the call with a timeout, so a call made while the database is down
//!   fails with [`DbError::Timeout`] instead of hanging, and
//! - counts one round trip ([`Db::round_trips`]), so the pipeline and the tests
//!   can check the contract's "one ingest = one round trip".
//!
//! **Reconnects.** The 3.3.5 SDK reconnects a dropped websocket by itself: its
//! router retries every second, forever, and replays the session (signin,
//! `use ns/db`, `let` variables) on the new socket. Calls made in between wait
//! in the router's queue, which is why every call has a timeout here. LIVE
//! query streams end on a disconnect and are *not* replayed: whoever holds one
//! must re-subscribe, using [`Db::wait_available`] (exponential backoff) to
//! wait for the connection to come back. The first connect is ours to retry:
//! [`Db::connect`] backs off exponentially up to the configured deadline.

pub mod field_types;
pub mod migrations;
mod query;
pub mod records;
pub mod schema;
/// The conversions between SurrealDB's values and the engine's.
pub mod values {
    pub use crate::engine::value::surreal::*;
}

pub use query::{Query, Response};

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backoff::backoff::Backoff;
use backoff::{ExponentialBackoff, ExponentialBackoffBuilder};
use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::opt::auth::Root;
use surrealdb::types::{QueryError, Variables};

use crate::config::{DbEndpoint, DbSettings};

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The first connect did not succeed before the deadline.
    #[error(
        "cannot reach SurrealDB at {url}: gave up after {}s ({attempts} attempts); last error: {last_error}",
        deadline.as_secs_f32()
    )]
    ConnectDeadline {
        url: String,
        deadline: Duration,
        attempts: u32,
        last_error: String,
    },
    /// Connecting failed in a way retrying will not fix (bad credentials, an
    /// embedded store that cannot be opened).
    #[error("cannot open SurrealDB at {url}: {step} failed: {message}")]
    Setup {
        url: String,
        step: &'static str,
        message: String,
    },
    /// The call did not finish in time (the database is down or overloaded).
    #[error("SurrealDB call `{op}` timed out after {}ms", after.as_millis())]
    Timeout {
        op: Cow<'static, str>,
        after: Duration,
    },
    /// The connection failed during the call.
    #[error("SurrealDB is unavailable (`{op}`): {message}")]
    Unavailable {
        op: Cow<'static, str>,
        message: String,
    },
    /// A statement failed. For a transaction this is the statement that
    /// actually failed, not the ones cancelled because of it.
    #[error("{0}")]
    Statement(StatementError),
    /// Any other failure reported by the SDK (serialisation, permissions...).
    #[error("SurrealDB call `{op}` failed: {message}")]
    Other {
        op: Cow<'static, str>,
        message: String,
    },
}

impl DbError {
    /// True when the database could not be reached or did not answer: the
    /// API answers 503 and callers may retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DbError::ConnectDeadline { .. } | DbError::Timeout { .. } | DbError::Unavailable { .. }
        )
    }

    /// True when a cluster's fence refused the write: this instance no
    /// longer holds a view it wrote (see `crate::cluster`). Never retried:
    /// the view is another instance's now.
    pub fn is_fenced(&self) -> bool {
        matches!(self, DbError::Statement(s) if s.message.contains(crate::cluster::FENCED))
    }

    /// True for a transaction conflict, which SurrealDB says can be retried.
    pub fn is_conflict(&self) -> bool {
        matches!(self, DbError::Statement(s) if s.conflict)
    }

    /// Maps an SDK error for the call `op` (taken as `&str` so that callers can
    /// pass `&Cow`; errors are the cold path, the copy does not matter).
    pub(crate) fn from_sdk(op: &str, error: surrealdb::Error) -> Self {
        let op = Cow::Owned(op.to_owned());
        if error.is_connection() {
            DbError::Unavailable {
                op,
                message: error.message().to_owned(),
            }
        } else if matches!(error.query_details(), Some(QueryError::TransactionConflict)) {
            // Retryable, and callers retry what `is_conflict` says: e.g. a
            // LIVE SELECT that races the kill of an earlier one on the same
            // table (after a reset) fails this way, not as a statement.
            DbError::Statement(StatementError {
                index: 0,
                statement: Some(op.into_owned()),
                message: error.message().to_owned(),
                conflict: true,
            })
        } else {
            DbError::Other {
                op,
                message: error.message().to_owned(),
            }
        }
    }
}

/// One failed statement of a query.
#[derive(Debug, Clone)]
pub struct StatementError {
    /// Index of the statement among those pushed into the [`Query`] (BEGIN
    /// and COMMIT of a [`Query::transaction`] not counted).
    pub index: usize,
    /// The statement's text, when the query was built statement by statement.
    pub statement: Option<String>,
    /// SurrealDB's message.
    pub message: String,
    /// A transaction conflict: retrying may succeed.
    pub conflict: bool,
}

impl fmt::Display for StatementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.statement {
            Some(statement) => write!(
                f,
                "statement {} (`{}`) failed: {}",
                self.index + 1,
                abbreviate(statement, 200),
                self.message
            ),
            None => write!(f, "statement {} failed: {}", self.index + 1, self.message),
        }
    }
}

fn abbreviate(text: &str, max: usize) -> Cow<'_, str> {
    let text = text.trim();
    if text.chars().count() <= max {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("{}…", text.chars().take(max).collect::<String>()))
    }
}

/// The shared SurrealDB connection.
pub struct Db {
    client: Arc<Surreal<Any>>,
    settings: DbSettings,
    round_trips: AtomicU64,
    /// Calls made by background work (the change worker), counted apart so
    /// that [`Db::round_trips`] measures the request path only.
    background_round_trips: AtomicU64,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("url", &self.settings.url)
            .field("ns", &self.settings.ns)
            .field("db", &self.settings.db)
            .field("round_trips", &self.round_trips())
            .finish()
    }
}

/// The exponential backoff used for the first connect, for retries and for
/// waiting on a dropped connection: 100ms doubling to at most 2s, ±30%,
/// within a time budget.
///
/// The budget is kept here rather than by `backoff`'s own `max_elapsed_time`,
/// which gives up as soon as the *next* wait would overshoot: with a 1.5s
/// budget it would stop after ~0.7s. Here the last wait is cut short so that
/// the budget is used up, never overshot.
struct BackoffBudget {
    backoff: ExponentialBackoff,
    started: Instant,
    budget: Duration,
}

impl BackoffBudget {
    fn new(budget: Duration) -> Self {
        BackoffBudget {
            backoff: ExponentialBackoffBuilder::new()
                .with_initial_interval(Duration::from_millis(100))
                .with_randomization_factor(0.3)
                .with_multiplier(2.0)
                .with_max_interval(Duration::from_secs(2))
                .with_max_elapsed_time(None)
                .build(),
            started: Instant::now(),
            budget,
        }
    }

    /// Time left in the budget.
    fn remaining(&self) -> Duration {
        self.budget.saturating_sub(self.started.elapsed())
    }

    /// How long to wait before the next try, or `None` once the budget is spent.
    fn next_wait(&mut self) -> Option<Duration> {
        let remaining = self.remaining();
        if remaining.is_zero() {
            return None;
        }
        self.backoff.next_backoff().map(|wait| wait.min(remaining))
    }
}

/// Exponential backoff that never gives up (doubling from `first` to at most
/// `max`, ±30%), for work that must wait out an unavailable database rather
/// than fail: edge writes, page reads, re-subscribing, the bootstrap.
pub fn backoff_forever(first: Duration, max: Duration) -> ExponentialBackoff {
    ExponentialBackoffBuilder::new()
        .with_initial_interval(first)
        .with_randomization_factor(0.3)
        .with_multiplier(2.0)
        .with_max_interval(max)
        .with_max_elapsed_time(None)
        .build()
}

/// Quotes a SurrealQL identifier (namespace, database, table) when needed.
pub fn escape_ident(name: &str) -> String {
    let mut chars = name.chars();
    let plain = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        name.to_owned()
    } else {
        format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
    }
}

/// Whether a failed connect attempt is worth retrying.
enum Attempt {
    Retry(String),
    Fatal(DbError),
}

impl Db {
    /// Connects, signs in, creates and selects the namespace and database.
    ///
    /// A server that cannot be reached is retried with exponential backoff
    /// until `settings.connect_deadline`, then [`DbError::ConnectDeadline`].
    /// Bad credentials and embedded stores that cannot be opened fail at once.
    pub async fn connect(settings: &DbSettings) -> Result<Db, DbError> {
        let deadline = settings.connect_deadline;
        let mut backoff = BackoffBudget::new(deadline);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let remaining = backoff.remaining();
            let outcome = match tokio::time::timeout(remaining, Self::try_connect(settings)).await {
                Ok(Ok(client)) => {
                    tracing::info!(
                        url = %settings.url,
                        ns = %settings.ns,
                        db = %settings.db,
                        attempts,
                        "connected to SurrealDB"
                    );
                    return Ok(Db {
                        client: Arc::new(client),
                        settings: settings.clone(),
                        round_trips: AtomicU64::new(0),
                        background_round_trips: AtomicU64::new(0),
                    });
                }
                Ok(Err(Attempt::Fatal(error))) => return Err(error),
                Ok(Err(Attempt::Retry(message))) => message,
                Err(_) => "the attempt timed out".to_owned(),
            };
            let Some(wait) = backoff.next_wait() else {
                return Err(DbError::ConnectDeadline {
                    url: settings.url.clone(),
                    deadline,
                    attempts,
                    last_error: outcome,
                });
            };
            tracing::warn!(
                url = %settings.url,
                attempt = attempts,
                retry_in_ms = wait.as_millis() as u64,
                error = %outcome,
                "SurrealDB not reachable yet"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One connect attempt: connect, signin, define and use ns/db.
    async fn try_connect(settings: &DbSettings) -> Result<Surreal<Any>, Attempt> {
        let remote = settings.endpoint.is_remote();
        let fail = |step: &'static str, error: surrealdb::Error| {
            if remote && error.is_connection() {
                Attempt::Retry(format!("{step}: {}", error.message()))
            } else {
                Attempt::Fatal(DbError::Setup {
                    url: settings.url.clone(),
                    step,
                    message: error.message().to_owned(),
                })
            }
        };

        let address = match &settings.endpoint {
            DbEndpoint::Remote { url } => url.clone(),
            DbEndpoint::Memory => "mem://".to_owned(),
            DbEndpoint::SurrealKv { path } => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
                    && let Err(error) = std::fs::create_dir_all(parent)
                {
                    return Err(Attempt::Fatal(DbError::Setup {
                        url: settings.url.clone(),
                        step: "creating the data directory",
                        message: format!("{}: {error}", parent.display()),
                    }));
                }
                format!("surrealkv://{}", path.display())
            }
        };

        // An embedded engine runs with authentication only when credentials
        // are configured; then they become its root user.
        let client = match (&settings.credentials, remote) {
            (Some(creds), false) => {
                let config = surrealdb::opt::Config::new().user(Root {
                    username: creds.user.clone(),
                    password: creds.pass.expose().to_owned(),
                });
                surrealdb::engine::any::connect((address, config)).await
            }
            _ => surrealdb::engine::any::connect(address).await,
        }
        .map_err(|e| fail("connect", e))?;

        if let Some(creds) = &settings.credentials {
            client
                .signin(Root {
                    username: creds.user.clone(),
                    password: creds.pass.expose().to_owned(),
                })
                .await
                .map_err(|e| fail("signin", e))?;
        }

        let ns = escape_ident(&settings.ns);
        let db = escape_ident(&settings.db);
        client
            .query(format!("DEFINE NAMESPACE IF NOT EXISTS {ns}"))
            .await
            .and_then(|r| r.check())
            .map_err(|e| fail("DEFINE NAMESPACE", e))?;
        client
            .use_ns(settings.ns.clone())
            .await
            .map_err(|e| fail("use namespace", e))?;
        client
            .query(format!("DEFINE DATABASE IF NOT EXISTS {db}"))
            .await
            .and_then(|r| r.check())
            .map_err(|e| fail("DEFINE DATABASE", e))?;
        client
            .use_db(settings.db.clone())
            .await
            .map_err(|e| fail("use database", e))?;
        Ok(client)
    }

    /// The settings this connection was made with.
    pub fn settings(&self) -> &DbSettings {
        &self.settings
    }

    /// `ws`, `wss`, `mem` or `surrealkv`.
    pub fn backend(&self) -> &'static str {
        self.settings.endpoint.kind()
    }

    /// Database calls made so far through [`Db::call`] / [`Db::run`]
    /// (health pings excluded).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Database calls made by background work ([`Db::run_background`]).
    pub fn background_round_trips(&self) -> u64 {
        self.background_round_trips.load(Ordering::Relaxed)
    }

    /// The SDK client, for what [`Db::run`] does not cover (e.g. `LIVE SELECT`
    /// streams). Use it inside [`Db::call`] so that the call is bounded and
    /// counted. Never clone the `Surreal` itself: that opens a new session.
    pub fn client(&self) -> &Arc<Surreal<Any>> {
        &self.client
    }

    /// The per-call timeout.
    pub fn call_timeout(&self) -> Duration {
        self.settings.call_timeout
    }

    /// Runs one database call: counted as one round trip, bounded by the
    /// call timeout, SDK errors mapped to [`DbError`].
    pub async fn call<'a, T, F, Fut>(
        &'a self,
        op: impl Into<Cow<'static, str>>,
        f: F,
    ) -> Result<T, DbError>
    where
        F: FnOnce(&'a Surreal<Any>) -> Fut,
        Fut: Future<Output = surrealdb::Result<T>> + 'a,
    {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.call_uncounted(op, f).await
    }

    /// [`Db::call`] without counting the call in [`Db::round_trips`].
    async fn call_uncounted<'a, T, F, Fut>(
        &'a self,
        op: impl Into<Cow<'static, str>>,
        f: F,
    ) -> Result<T, DbError>
    where
        F: FnOnce(&'a Surreal<Any>) -> Fut,
        Fut: Future<Output = surrealdb::Result<T>> + 'a,
    {
        let op = op.into();
        let after = self.settings.call_timeout;
        match tokio::time::timeout(after, f(&self.client)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(DbError::from_sdk(&op, error)),
            Err(_) => Err(DbError::Timeout { op, after }),
        }
    }

    /// Runs a query (one round trip). Any failed statement makes the whole
    /// call fail with [`DbError::Statement`] naming the statement that really
    /// failed; in a transaction, the statements SurrealDB reports as "not
    /// executed due to a failed transaction" are skipped over.
    pub async fn run(&self, mut query: Query) -> Result<Response, DbError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let vars = std::mem::take(&mut query.vars);
        let mut response = self.run_raw(&query, vars).await?;
        if let Some(error) = first_failure(&query, &mut response) {
            return Err(DbError::Statement(error));
        }
        Ok(response)
    }

    /// Runs a query and returns the per-statement results, failed ones
    /// included (each [`Response::take`] then reports its own error).
    pub async fn run_unchecked(&self, query: &Query) -> Result<Response, DbError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.run_raw(query, query.vars.clone()).await
    }

    /// Like [`Db::run`], for background work (the change worker's reads and
    /// schema checks): bounded the same way, but counted in
    /// [`Db::background_round_trips`] instead of [`Db::round_trips`], so that
    /// a feed poll never shows up in a request's round-trip count.
    pub async fn run_background(&self, mut query: Query) -> Result<Response, DbError> {
        self.background_round_trips.fetch_add(1, Ordering::Relaxed);
        let vars = std::mem::take(&mut query.vars);
        let mut response = self.run_raw(&query, vars).await?;
        if let Some(error) = first_failure(&query, &mut response) {
            return Err(DbError::Statement(error));
        }
        Ok(response)
    }

    /// One uncounted query call, with `vars` taken out of `query` (owned
    /// callers move them instead of cloning, e.g. a batch's edge rows).
    async fn run_raw(&self, query: &Query, vars: Variables) -> Result<Response, DbError> {
        let text = query.text();
        let inner = self
            .call_uncounted("query", |client| async move {
                client.query(text).bind(vars).await
            })
            .await?;
        let offset = usize::from(query.transaction && inner.num_statements() > query.len());
        Ok(Response { inner, offset })
    }

    /// Runs an idempotent query, retrying with exponential backoff while the
    /// database is unavailable or the transaction conflicts, for at most
    /// `budget`. Only for queries that are safe to apply twice (a call that
    /// timed out may have committed).
    pub async fn run_idempotent(
        &self,
        query: Query,
        budget: Duration,
    ) -> Result<Response, DbError> {
        let mut backoff = BackoffBudget::new(budget);
        loop {
            match self.run(query.clone()).await {
                Err(error) if error.is_unavailable() || error.is_conflict() => {
                    match backoff.next_wait() {
                        Some(wait) => {
                            tracing::debug!(%error, retry_in_ms = wait.as_millis() as u64, "retrying");
                            tokio::time::sleep(wait).await;
                        }
                        None => return Err(error),
                    }
                }
                other => return other,
            }
        }
    }

    /// Checks that the database answers a trivial query, within the call
    /// timeout. Returns the latency. Not counted as a round trip, so that
    /// health probes do not disturb round-trip measurements.
    pub async fn ping(&self) -> Result<Duration, DbError> {
        let started = Instant::now();
        let op = Cow::Borrowed("ping");
        let after = self.settings.call_timeout;
        match tokio::time::timeout(after, self.client.query("RETURN true")).await {
            Ok(Ok(response)) => match response.check() {
                Ok(_) => Ok(started.elapsed()),
                Err(error) => Err(DbError::from_sdk(&op, error)),
            },
            Ok(Err(error)) => Err(DbError::from_sdk(&op, error)),
            Err(_) => Err(DbError::Timeout { op, after }),
        }
    }

    /// Waits, pinging with exponential backoff, until the database answers
    /// again or `budget` has passed (then the last error). Used after a
    /// disconnect, e.g. before re-subscribing LIVE queries.
    pub async fn wait_available(&self, budget: Duration) -> Result<(), DbError> {
        let mut backoff = BackoffBudget::new(budget);
        loop {
            match self.ping().await {
                Ok(_) => return Ok(()),
                Err(error) => match backoff.next_wait() {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(error),
                },
            }
        }
    }
}

/// The first statement that really failed, if any.
fn first_failure(query: &Query, response: &mut Response) -> Option<StatementError> {
    let errors = response.inner.take_errors();
    if errors.is_empty() {
        return None;
    }
    let mut errors: Vec<(usize, surrealdb::Error)> = errors.into_iter().collect();
    errors.sort_by_key(|(index, _)| *index);
    let is_collateral = |error: &surrealdb::Error| {
        matches!(
            error.query_details(),
            Some(QueryError::NotExecuted | QueryError::Cancelled)
        )
    };
    let position = errors
        .iter()
        .position(|(_, error)| !is_collateral(error))
        .unwrap_or(0);
    let (raw_index, error) = errors.swap_remove(position);
    let index = raw_index.saturating_sub(response.offset);
    // One text may hold several statements; only map back when it is one per push.
    let statement = if query.statements.len() > 1 || query.transaction {
        query.statements.get(index).cloned()
    } else {
        None
    };
    Some(StatementError {
        index,
        statement,
        message: error.message().to_owned(),
        conflict: matches!(error.query_details(), Some(QueryError::TransactionConflict)),
    })
}

#[cfg(test)]
mod tests;
