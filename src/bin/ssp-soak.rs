//! `ssp-soak`: SSP under a long mixed load while its database and SSP itself
//! are stopped and restarted, then checked against SurrealDB.
//!
//! ```text
//! scripts/soak.sh                                   # build (dev profile), run 10 minutes
//! scripts/soak.sh --minutes 2 --db-period-secs 20   # a short run
//! ```
//!
//! The test suite checks each failure once, alone. What it cannot show is
//! their sum over time: a restore that races a sweep, a batch that failed
//! while the database restarted, a version that went back after a `kill -9`.
//! So for `--minutes` (default 10) this runs, all at once and at a bounded
//! rate:
//!
//! * a real SurrealDB 3.3.5 server (`surreal start`, from the
//!   `surrealdb-server` crate, run by this same binary as a child process) on
//!   SurrealKV in the run directory, stopped every `--db-period-secs`
//!   (SIGTERM and SIGKILL in turn), kept down `--db-down-secs` while the load
//!   goes on failing, and started again on the same data;
//! * the `ssp` binary as a child over `ws://`, killed with SIGKILL twice and
//!   started again on its state file;
//! * writers: direct writes (CREATE, UPDATE, DELETE of users, threads and
//!   comments) and the same kind of writes followed by `POST /ingest`, as apps
//!   do. A record id is never used again after its delete, so that its version
//!   can only grow;
//! * views of ten shapes: long-lived ones (heartbeated, re-registered with
//!   new params), churned ones (registered then unregistered), short-TTL ones
//!   left to expire and short-TTL ones kept alive by heartbeats;
//! * a client following the edges: it reads `_spooky_list_ref` every 250 ms
//!   and reports every version that went down, per edge and per record.
//!
//! At the end the load stops, SSP settles and is stopped with SIGTERM, and
//! every view's edges are compared with SurrealDB's own evaluation of the
//! view's query and params. The report (stdout and `--out`) gives operations
//! by kind, restarts, violations, mismatches and SSP's peak RSS; the exit code
//! is 1 if a check failed, 2 if the soak itself could not run.

// The in-process SurrealDB server nests deep async types.
#![recursion_limit = "256"]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::Parser;
use mimalloc::MiMalloc;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value as Json, json};
use ssp::config::{DbSettings, Settings};
use ssp::db::values::record_id_from_surreal;
use ssp::db::{Db, Query};
use surrealdb::types as sdb;

/// As the `ssp` binary, and as `surreal` itself uses a fast allocator.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Set on the child that is to be the SurrealDB server rather than the soak.
const ROLE_ENV: &str = "SSP_SOAK_ROLE";
const SECRET: &str = "soak-secret-0123456789";
const TABLES: [&str; 3] = ["user", "thread", "comment"];
const TAGS: [&str; 5] = ["rust", "db", "soak", "news", "misc"];
const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "omega", "sigma"];
/// Records each writer keeps, per table, around which it creates and deletes.
const TARGET: [usize; 3] = [10, 30, 75];
const WRITERS: usize = 4;
/// The edge follower's period.
const POLL: Duration = Duration::from_millis(250);
/// SSP's TTL sweep period, for when a view must be gone.
const SWEEP: Duration = Duration::from_secs(5);

#[derive(Parser, Debug, Clone, Serialize)]
#[command(
    name = "ssp-soak",
    about = "A soak test of SSP: mixed load, database restarts, SSP kill -9, then checks"
)]
struct Options {
    /// How long the load runs.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Seed of every random choice (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// The `ssp` binary (default: `ssp` next to this binary).
    #[arg(long)]
    ssp: Option<PathBuf>,
    /// The database is stopped and started again this often.
    #[arg(long, default_value_t = 60)]
    db_period_secs: u64,
    /// How long the database stays down each time.
    #[arg(long, default_value_t = 4)]
    db_down_secs: u64,
    /// SSP is killed with SIGKILL this many times, spread over the run.
    #[arg(long, default_value_t = 2)]
    ssp_kills: u32,
    /// Record writes per second, all writers together (each `/ingest` write
    /// also costs a request to SSP).
    #[arg(long, default_value_t = 120)]
    rate: u32,
    /// The report, as JSON.
    #[arg(long, default_value = "bench-results/soak-latest.json")]
    out: PathBuf,
    /// The run directory (database files, SSP's state file, logs). Default: a
    /// new directory under the system's temp dir, removed after a run that
    /// passed.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the run directory even when the run passed.
    #[arg(long)]
    keep: bool,
    /// Write every edge change the follower sees (created, new version,
    /// gone) to this file, one line each with its time: what a violation's
    /// record went through before it, to trace it back to what wrote it.
    #[arg(long)]
    edge_log: Option<PathBuf>,
}

fn main() -> ExitCode {
    if std::env::var_os(ROLE_ENV).is_some_and(|r| r == "surreal") {
        // `surreal start ...`: this process is the database server.
        return surrealdb_server::init(surrealdb_server::core::CommunityComposer());
    }
    let options = Options::parse();
    // The SDK logs calls abandoned during outages at ERROR; they are counted.
    let _ = ssp::telemetry::try_init("off");
    let runtime = match ssp::startup::runtime(Some(2)) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ssp-soak: no runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(soak(options));
    runtime.shutdown_timeout(Duration::from_secs(5));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("ssp-soak: {error:#}");
            ExitCode::from(2)
        }
    }
}

// ----- shared state -----------------------------------------------------------

/// Operations of one kind: how many succeeded, how many failed and why.
#[derive(Default, Serialize, Clone)]
struct OpCount {
    ok: u64,
    failed: u64,
    /// Failures by class (`503 db_unavailable`, `connect`, `timeout`, ...).
    errors: BTreeMap<String, u64>,
    /// The first few failures of each class, verbatim.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    samples: Vec<String>,
}

#[derive(Default)]
struct Stats {
    ops: Mutex<BTreeMap<&'static str, OpCount>>,
}

impl Stats {
    fn ok(&self, kind: &'static str) {
        self.ops.lock().unwrap().entry(kind).or_default().ok += 1;
    }

    fn fail(&self, kind: &'static str, class: &str, detail: &str) {
        let mut ops = self.ops.lock().unwrap();
        let count = ops.entry(kind).or_default();
        count.failed += 1;
        let n = count.errors.entry(class.to_owned()).or_default();
        *n += 1;
        if *n <= 3 && count.samples.len() < 12 {
            let detail: String = detail.chars().take(300).collect();
            count.samples.push(format!("{class}: {detail}"));
        }
    }
}

/// Peak memory of one process, from `/proc/<pid>/status`.
#[derive(Default, Serialize, Clone)]
struct Mem {
    /// `VmHWM`: the process's own peak resident set, as last sampled.
    vm_hwm_kib: u64,
    /// The largest `VmRSS` sampled.
    vm_rss_max_kib: u64,
    samples: u64,
}

/// A version that went down, as the edge follower saw it.
#[derive(Serialize, Clone)]
struct Violation {
    /// Seconds since the start of the run.
    t: f64,
    /// `edge`: this view's edge to the record went down; `record`: the
    /// record's version in this view is below one seen before in any view.
    kind: &'static str,
    view: String,
    record: String,
    before: i64,
    /// The view where `before` was seen.
    before_view: String,
    before_t: f64,
    after: i64,
    ssp_instance: u64,
    db_epoch: u64,
    last_event: String,
}

/// What the edge follower knows.
#[derive(Default)]
struct Follower {
    /// Last version seen per (view, record), kept after the edge goes.
    edges: HashMap<(String, String), (i64, f64)>,
    present: HashSet<(String, String)>,
    /// Highest version seen per record in any view, where and when.
    record_max: HashMap<String, (i64, String, f64)>,
    violations: u64,
    /// Violations by the last scheduler event before them.
    violations_after: BTreeMap<String, u64>,
    samples: Vec<Violation>,
    polls_ok: u64,
    polls_failed: u64,
    created: u64,
    updated: u64,
    deleted: u64,
    max_edges: usize,
    /// Snapshots in which one record's edges carried different versions.
    skewed_polls: u64,
    skew_samples: Vec<String>,
}

struct Ctx {
    t0: Instant,
    stop: AtomicBool,
    stats: Stats,
    model: Model,
    http: reqwest::Client,
    ssp_base: String,
    writers: Conn,
    checker: Conn,
    /// Which SSP process and which database process serve now (1, 2, ...).
    ssp_instance: AtomicU64,
    db_epoch: AtomicU64,
    /// Pids whose memory the sampler reads, by label (`ssp#2`, `db#3`).
    pids: Mutex<BTreeMap<String, u32>>,
    mem: Mutex<BTreeMap<String, Mem>>,
    events: Mutex<Vec<(f64, String)>>,
    views: Mutex<BTreeMap<String, ViewRec>>,
    lifecycle: Mutex<Vec<String>>,
    follower: Mutex<Follower>,
    seed: u64,
    /// Set a few seconds before SSP is killed: a view is re-registered with
    /// new params, so that a kill follows a change SSP has not saved yet.
    reregister_now: AtomicBool,
    /// `--edge-log`.
    edge_log: Option<Mutex<std::io::BufWriter<File>>>,
}

impl Ctx {
    fn secs(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn event(&self, what: String) {
        let t = self.secs();
        println!("[{t:7.1}s] {what}");
        self.events.lock().unwrap().push((t, what));
    }

    fn last_event(&self) -> String {
        self.events
            .lock()
            .unwrap()
            .last()
            .map(|(t, e)| format!("{t:.1}s {e}"))
            .unwrap_or_default()
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn lifecycle_failure(&self, what: String) {
        println!("[{:7.1}s] LIFECYCLE: {what}", self.secs());
        self.lifecycle.lock().unwrap().push(what);
    }
}

/// A SurrealDB connection of the soak's own. The SDK reconnects after a
/// restart of the server; if a connection still fails long after the server
/// is back, it is replaced, so that one stuck socket cannot end the load.
struct Conn {
    settings: DbSettings,
    db: tokio::sync::RwLock<Arc<Db>>,
    failing_since: Mutex<Option<Instant>>,
    replaced: AtomicU64,
}

impl Conn {
    async fn connect(settings: DbSettings) -> anyhow::Result<Conn> {
        let db = Db::connect(&settings)
            .await
            .context("connect to SurrealDB")?;
        Ok(Conn {
            settings,
            db: tokio::sync::RwLock::new(Arc::new(db)),
            failing_since: Mutex::new(None),
            replaced: AtomicU64::new(0),
        })
    }

    async fn run(&self, query: Query) -> Result<ssp::db::Response, (String, String)> {
        let db = Arc::clone(&*self.db.read().await);
        match db.run(query).await {
            Ok(response) => {
                *self.failing_since.lock().unwrap() = None;
                Ok(response)
            }
            Err(error) => {
                let class = if error.is_unavailable() {
                    "unavailable"
                } else if error.is_conflict() {
                    "conflict"
                } else {
                    "error"
                };
                if error.is_unavailable() {
                    let since = *self
                        .failing_since
                        .lock()
                        .unwrap()
                        .get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(30) {
                        self.replace().await;
                    }
                }
                Err((class.to_owned(), error.to_string()))
            }
        }
    }

    async fn replace(&self) {
        let mut settings = self.settings.clone();
        settings.connect_deadline = Duration::from_secs(5);
        if let Ok(db) = Db::connect(&settings).await {
            *self.db.write().await = Arc::new(db);
            *self.failing_since.lock().unwrap() = None;
            self.replaced.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// ----- records ----------------------------------------------------------------

#[derive(Clone, PartialEq)]
enum Field {
    Int(i64),
    Str(String),
    Bool(bool),
    Link(&'static str, i64),
    Tags(Vec<&'static str>),
}

/// A record's content, written to SurrealDB with typed links and sent to
/// `/ingest` as JSON (links as `table:key` strings, as an app's JSON has them).
#[derive(Clone, PartialEq)]
struct Content(Vec<(&'static str, Field)>);

impl Content {
    fn to_surreal(&self) -> sdb::Value {
        let mut object = sdb::Object::new();
        for (name, field) in &self.0 {
            let value = match field {
                Field::Int(i) => sdb::Value::Number(sdb::Number::Int(*i)),
                Field::Str(s) => sdb::Value::String(s.clone()),
                Field::Bool(b) => sdb::Value::Bool(*b),
                Field::Link(table, key) => sdb::Value::RecordId(sdb::RecordId::new(*table, *key)),
                Field::Tags(tags) => sdb::Value::Array(
                    tags.iter()
                        .map(|t| sdb::Value::String((*t).to_owned()))
                        .collect::<Vec<_>>()
                        .into(),
                ),
            };
            object.insert(*name, value);
        }
        sdb::Value::Object(object)
    }

    fn to_json(&self) -> Json {
        let mut object = serde_json::Map::new();
        for (name, field) in &self.0 {
            let value = match field {
                Field::Int(i) => json!(i),
                Field::Str(s) => json!(s),
                Field::Bool(b) => json!(b),
                Field::Link(table, key) => json!(format!("{table}:{key}")),
                Field::Tags(tags) => json!(tags),
            };
            object.insert((*name).to_owned(), value);
        }
        Json::Object(object)
    }

    fn set(&mut self, name: &str, value: Field) {
        if let Some(slot) = self.0.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        }
    }
}

/// Keys handed out and the records links may point at.
struct Model {
    next_key: [AtomicI64; 3],
    /// Order of comments (`created`), unique so that views ordered by it have
    /// no ties.
    seq: AtomicI64,
    /// Users and threads that exist (or did: links may dangle, as in apps).
    linkable: [Mutex<Vec<i64>>; 2],
}

impl Model {
    fn new() -> Model {
        Model {
            next_key: [AtomicI64::new(1), AtomicI64::new(1), AtomicI64::new(1)],
            seq: AtomicI64::new(1),
            linkable: [Mutex::new(Vec::new()), Mutex::new(Vec::new())],
        }
    }

    fn fresh_key(&self, table: usize) -> i64 {
        self.next_key[table].fetch_add(1, Ordering::Relaxed)
    }

    fn pick(&self, table: usize, rng: &mut StdRng) -> i64 {
        let keys = self.linkable[table].lock().unwrap();
        keys.choose(rng).copied().unwrap_or(1)
    }

    fn created(&self, table: usize, key: i64) {
        if table < 2 {
            self.linkable[table].lock().unwrap().push(key);
        }
    }

    fn deleted(&self, table: usize, key: i64) {
        if table < 2 {
            let mut keys = self.linkable[table].lock().unwrap();
            if let Some(i) = keys.iter().position(|k| *k == key) {
                keys.swap_remove(i);
            }
        }
    }

    fn content(&self, table: usize, key: i64, rng: &mut StdRng) -> Content {
        match table {
            0 => Content(vec![
                (
                    "name",
                    Field::Str(format!("{} {key}", WORDS.choose(rng).unwrap())),
                ),
                ("karma", Field::Int(rng.random_range(0..100))),
                ("active", Field::Bool(rng.random_bool(0.7))),
            ]),
            1 => Content(vec![
                ("author", Field::Link("user", self.pick(0, rng))),
                ("title", Field::Str(title(rng))),
                ("score", Field::Int(rng.random_range(0..100))),
                (
                    "status",
                    Field::Str(
                        if rng.random_bool(0.7) {
                            "open"
                        } else {
                            "closed"
                        }
                        .to_owned(),
                    ),
                ),
                ("tags", Field::Tags(tags(rng))),
            ]),
            _ => Content(vec![
                ("thread", Field::Link("thread", self.pick(1, rng))),
                ("author", Field::Link("user", self.pick(0, rng))),
                (
                    "body",
                    Field::Str(format!("comment {key} r{}", rng.random_range(0..1000))),
                ),
                ("score", Field::Int(rng.random_range(0..50))),
                (
                    "created",
                    Field::Int(self.seq.fetch_add(1, Ordering::Relaxed)),
                ),
            ]),
        }
    }

    /// A changed copy: a few fields move, as app updates do; sometimes none,
    /// which SSP must treat as a no-op.
    fn update(&self, table: usize, old: &Content, rng: &mut StdRng) -> Content {
        let mut new = old.clone();
        if rng.random_bool(0.05) {
            return new;
        }
        match table {
            0 => {
                new.set("karma", Field::Int(rng.random_range(0..100)));
                if rng.random_bool(0.3) {
                    new.set("active", Field::Bool(rng.random_bool(0.7)));
                }
            }
            1 => {
                new.set("score", Field::Int(rng.random_range(0..100)));
                if rng.random_bool(0.3) {
                    new.set("title", Field::Str(title(rng)));
                }
                if rng.random_bool(0.2) {
                    new.set("author", Field::Link("user", self.pick(0, rng)));
                }
                if rng.random_bool(0.2) {
                    new.set("tags", Field::Tags(tags(rng)));
                }
                if rng.random_bool(0.2) {
                    let open = rng.random_bool(0.7);
                    new.set(
                        "status",
                        Field::Str(if open { "open" } else { "closed" }.to_owned()),
                    );
                }
            }
            _ => {
                new.set("score", Field::Int(rng.random_range(0..50)));
                if rng.random_bool(0.3) {
                    let body = format!("edited r{}", rng.random_range(0..1000));
                    new.set("body", Field::Str(body));
                }
            }
        }
        new
    }
}

fn title(rng: &mut StdRng) -> String {
    format!("{} {}", WORDS.choose(rng).unwrap(), rng.random_range(0..40))
}

fn tags(rng: &mut StdRng) -> Vec<&'static str> {
    TAGS.iter()
        .copied()
        .filter(|_| rng.random_bool(0.4))
        .collect()
}

fn rid(table: usize, key: i64) -> sdb::Value {
    sdb::Value::RecordId(sdb::RecordId::new(TABLES[table], key))
}

// ----- views ------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
enum Shape {
    ByAuthor,
    OpenAbove,
    TopWithAuthor,
    ThreadComments,
    ActiveUsers,
    Tagged,
    TitlePrefix,
    TopCommentsNested,
    CommentWindow,
    TaggedPage,
}

const SHAPES: [Shape; 10] = [
    Shape::ByAuthor,
    Shape::OpenAbove,
    Shape::TopWithAuthor,
    Shape::ThreadComments,
    Shape::ActiveUsers,
    Shape::Tagged,
    Shape::TitlePrefix,
    Shape::TopCommentsNested,
    Shape::CommentWindow,
    Shape::TaggedPage,
];

impl Shape {
    fn sql(self) -> &'static str {
        match self {
            Shape::ByAuthor => "SELECT * FROM thread WHERE author = $uid",
            Shape::OpenAbove => "SELECT * FROM thread WHERE status = 'open' AND score >= $min",
            Shape::TopWithAuthor => {
                "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author \
                 FROM thread ORDER BY score DESC LIMIT 5"
            }
            Shape::ThreadComments => {
                "SELECT * FROM comment WHERE thread = $tid ORDER BY created DESC LIMIT 10"
            }
            Shape::ActiveUsers => "SELECT * FROM user WHERE active = true AND karma > $k",
            Shape::Tagged => "SELECT * FROM thread WHERE tags CONTAINS $tag",
            Shape::TitlePrefix => {
                "SELECT * FROM thread WHERE string::starts_with(title, $prefix) OR score > 95"
            }
            Shape::TopCommentsNested => {
                "SELECT *, (SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] \
                 AS author FROM thread WHERE id = $parent.thread LIMIT 1)[0] AS thread \
                 FROM comment WHERE score >= $s ORDER BY score DESC, created ASC LIMIT 8"
            }
            Shape::CommentWindow => {
                "SELECT * FROM comment WHERE score < $s ORDER BY score DESC START 2 LIMIT 6"
            }
            Shape::TaggedPage => {
                "SELECT id, title, score FROM thread WHERE tags CONTAINSANY $tags \
                 ORDER BY title ASC LIMIT 7"
            }
        }
    }

    fn params(self, model: &Model, rng: &mut StdRng) -> Json {
        match self {
            Shape::ByAuthor => json!({"uid": format!("user:{}", model.pick(0, rng))}),
            Shape::OpenAbove => json!({"min": rng.random_range(50..100)}),
            Shape::TopWithAuthor => json!({}),
            Shape::ThreadComments => json!({"tid": format!("thread:{}", model.pick(1, rng))}),
            Shape::ActiveUsers => json!({"k": rng.random_range(0..100)}),
            Shape::Tagged => json!({"tag": TAGS.choose(rng).unwrap()}),
            Shape::TitlePrefix => json!({"prefix": WORDS.choose(rng).unwrap()}),
            Shape::TopCommentsNested => json!({"s": rng.random_range(0..40)}),
            Shape::CommentWindow => json!({"s": rng.random_range(10..50)}),
            Shape::TaggedPage => {
                let two: Vec<_> = TAGS.choose_multiple(rng, 2).collect();
                json!({"tags": two})
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
enum Life {
    /// TTL 1h, heartbeated, re-registered with new params now and then.
    Long,
    /// TTL 20s, heartbeated every 5s: must never expire while heartbeats land.
    KeptAlive,
    /// TTL 1h, unregistered after 10-60s, some re-registered before.
    Churn,
    /// TTL 20-40s, never heartbeated: must be swept.
    Expiring,
}

#[derive(Clone, Serialize)]
struct ViewRec {
    id: String,
    shape: Shape,
    life: Life,
    ttl_secs: u64,
    client_id: String,
    /// The params of the last registration SSP confirmed.
    acked: Option<Json>,
    /// A registration failed after the last confirmed one: SSP may hold
    /// either params, or (never confirmed) the view or not.
    uncertain: bool,
    last_active: Option<DateTime<Utc>>,
    /// Unregister confirmed.
    unregistered: bool,
    unregister_failed: bool,
    #[serde(skip)]
    next_heartbeat: Option<Instant>,
    #[serde(skip)]
    unregister_at: Option<Instant>,
    #[serde(skip)]
    reregister_at: Option<Instant>,
    /// Every request about this view and its answer, for the report.
    history: Vec<String>,
}

impl Life {
    fn name(self) -> &'static str {
        match self {
            Life::Long => "long",
            Life::KeptAlive => "kept",
            Life::Churn => "churn",
            Life::Expiring => "expiring",
        }
    }
}

impl ViewRec {
    /// The view exists in SSP as far as the soak knows, and is not due to
    /// expire.
    fn must_exist(&self, at: DateTime<Utc>) -> bool {
        if self.acked.is_none() || self.unregistered || self.unregister_failed {
            return false;
        }
        match self.life {
            Life::Long | Life::Churn => true,
            Life::KeptAlive | Life::Expiring => self.last_active.is_some_and(|last| {
                last + chrono::Duration::seconds(self.ttl_secs as i64)
                    > at + chrono::Duration::seconds(1)
            }),
        }
    }

    /// The view must have been removed by now.
    fn must_be_gone(&self, at: DateTime<Utc>) -> bool {
        if self.unregistered && !self.uncertain {
            return true;
        }
        self.life == Life::Expiring
            && !self.uncertain
            && self.last_active.is_some_and(|last| {
                last + chrono::Duration::seconds(self.ttl_secs as i64)
                    + chrono::Duration::from_std(SWEEP + Duration::from_secs(10)).unwrap()
                    < at
            })
    }
}

// ----- HTTP to SSP ------------------------------------------------------------

enum Answer {
    Ok(Json),
    Status(u16, String),
    Transport(String, String),
}

impl Answer {
    fn class(&self) -> String {
        match self {
            Answer::Ok(_) => "200".to_owned(),
            Answer::Status(status, body) => {
                let code = serde_json::from_str::<Json>(body)
                    .ok()
                    .and_then(|b| b["code"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                format!("{status} {code}")
            }
            Answer::Transport(class, _) => class.clone(),
        }
    }

    fn detail(&self) -> String {
        match self {
            Answer::Ok(body) => body.to_string(),
            Answer::Status(_, body) => body.clone(),
            Answer::Transport(_, e) => e.clone(),
        }
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    match request.bearer_auth(SECRET).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            if status == 200 {
                Answer::Ok(serde_json::from_str(&body).unwrap_or(Json::Null))
            } else {
                Answer::Status(status, body)
            }
        }
        Err(error) => {
            let class = if error.is_connect() {
                "connect"
            } else if error.is_timeout() {
                "timeout"
            } else {
                "transport"
            };
            Answer::Transport(class.to_owned(), format!("{error:?}"))
        }
    }
}

async fn post(ctx: &Ctx, path: &str, body: &Json) -> Answer {
    send(ctx.http.post(format!("{}{path}", ctx.ssp_base)).json(body)).await
}

async fn get(ctx: &Ctx, path: &str) -> Answer {
    send(ctx.http.get(format!("{}{path}", ctx.ssp_base))).await
}

fn record(ctx: &Ctx, kind: &'static str, answer: &Answer) -> bool {
    match answer {
        Answer::Ok(_) => {
            ctx.stats.ok(kind);
            true
        }
        other => {
            ctx.stats.fail(kind, &other.class(), &other.detail());
            false
        }
    }
}

// ----- processes --------------------------------------------------------------

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits at most `limit` for `child` to exit.
async fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log_file(path: &Path) -> anyhow::Result<(Stdio, Stdio)> {
    let file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

/// `/proc/<pid>/status`: (`VmHWM`, `VmRSS`) in KiB.
fn proc_mem(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

fn sample_mem(ctx: &Ctx) {
    let pids = ctx.pids.lock().unwrap().clone();
    let mut mem = ctx.mem.lock().unwrap();
    for (label, pid) in pids {
        if let Some((hwm, rss)) = proc_mem(pid) {
            let m = mem.entry(label).or_default();
            m.vm_hwm_kib = m.vm_hwm_kib.max(hwm);
            m.vm_rss_max_kib = m.vm_rss_max_kib.max(rss);
            m.samples += 1;
        }
    }
}

/// The SurrealDB server: this binary as `surreal start` on SurrealKV.
struct DbProc {
    exe: PathBuf,
    port: u16,
    path: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Drop for DbProc {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl DbProc {
    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn start(&mut self, ctx_label: &str) -> anyhow::Result<u32> {
        let (out, err) = log_file(&self.log)?;
        let child = Command::new(&self.exe)
            .arg0("surreal")
            .args([
                "start",
                "--bind",
                &format!("127.0.0.1:{}", self.port),
                "--user",
                "root",
                "--pass",
                "root",
                "--log",
                "warn",
                "--no-banner",
                "--allow-all",
                &format!("surrealkv://{}", self.path.display()),
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(ROLE_ENV, "surreal")
            .env("SURREAL_ONLINE_VERSION_CHECK", "false")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start the SurrealDB server ({ctx_label})"))?;
        let pid = child.id();
        self.child = Some(child);
        Ok(pid)
    }

    /// Stops the server: SIGTERM (a clean shutdown) or SIGKILL (a crash).
    /// `surreal` waits for its clients on SIGTERM and stops at once on a
    /// second one; a supervisor sends SIGKILL last.
    async fn stop(&mut self, kill: bool) -> String {
        let Some(mut child) = self.child.take() else {
            return "not running".to_owned();
        };
        let started = Instant::now();
        let steps: &[&str] = if kill {
            &["-KILL"]
        } else {
            &["-TERM", "-TERM", "-KILL"]
        };
        for (i, sig) in steps.iter().enumerate() {
            signal(child.id(), sig);
            if let Some(status) = wait_exit(&mut child, Duration::from_secs(10)).await {
                let how = if i == 0 {
                    String::new()
                } else {
                    format!(", after {} signals", i + 1)
                };
                return format!("{status} in {:.1}s{how}", started.elapsed().as_secs_f64());
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        "did not exit even on SIGKILL".to_owned()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Waits until the server accepts connections.
    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let addr = format!("127.0.0.1:{}", self.port);
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.exited() {
                bail!(
                    "the SurrealDB server exited while starting ({status}); see {}",
                    self.log.display()
                );
            }
            if started.elapsed() > limit {
                bail!("the SurrealDB server did not listen within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The `ssp` binary.
struct SspProc {
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
    db_url: String,
    child: Option<Child>,
}

impl Drop for SspProc {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl SspProc {
    fn start(&mut self, instance: u64) -> anyhow::Result<u32> {
        let (out, err) = log_file(&self.dir.join(format!("ssp-{instance}.log")))?;
        let child = Command::new(&self.bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SPOOKY_LISTEN_ADDR", format!("127.0.0.1:{}", self.port))
            .env("SPOOKY_AUTH_SECRET", SECRET)
            .env("SPOOKY_SURREALDB_URL", &self.db_url)
            .env(
                "SPOOKY_PERSISTENCE_FILE",
                self.dir.join("spooky_state.json"),
            )
            .env("SPOOKY_WORKER_TABLES", TABLES.join(","))
            .env("SPOOKY_SURREALDB_CONNECT_DEADLINE_MS", "120000")
            // SSP_SOAK_LOG: another filter for SSP's log, to trace a violation.
            .env(
                "SPOOKY_LOG",
                std::env::var("SSP_SOAK_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start {}", self.bin.display()))?;
        let pid = child.id();
        self.child = Some(child);
        Ok(pid)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "-KILL");
            let _ = wait_exit(&mut child, Duration::from_secs(10)).await;
        }
    }

    /// SIGTERM, as a supervisor stops it: drain, save, exit.
    async fn term(&mut self) -> Result<(ExitStatus, Duration), String> {
        let Some(mut child) = self.child.take() else {
            return Err("not running".to_owned());
        };
        let started = Instant::now();
        signal(child.id(), "-TERM");
        match wait_exit(&mut child, Duration::from_secs(60)).await {
            Some(status) => Ok((status, started.elapsed())),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err("did not exit within 60s of SIGTERM; killed".to_owned())
            }
        }
    }

    /// Waits until `GET /health` answers 200.
    async fn wait_ready(&mut self, ctx: &Ctx, limit: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            let health = ctx
                .http
                .get(format!("{}/health", ctx.ssp_base))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.exited() {
                return Err(format!("ssp exited while starting: {status}"));
            }
            if started.elapsed() > limit {
                return Err(format!("ssp not ready within {limit:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// ----- load -------------------------------------------------------------------

struct Change {
    table: usize,
    op: &'static str,
    key: i64,
    content: Option<Content>,
}

/// One writer: its own records (so that no two writers race on one record),
/// written directly or written and then sent to `/ingest`.
struct Writer {
    ingest: bool,
    owned: [BTreeMap<i64, Content>; 3],
    rng: StdRng,
}

impl Writer {
    fn plan_one(&mut self, ctx: &Ctx, taken: &HashSet<(usize, i64)>) -> Option<Change> {
        let rng = &mut self.rng;
        let r: f64 = rng.random();
        let table = if r < 0.2 {
            0
        } else if r < 0.55 {
            1
        } else {
            2
        };
        let n = self.owned[table].len();
        let target = TARGET[table];
        let (p_create, p_delete) = if n < target * 8 / 10 {
            (0.6, 0.1)
        } else if n > target * 12 / 10 {
            (0.1, 0.5)
        } else {
            (0.25, 0.2)
        };
        let r: f64 = rng.random();
        let existing: Vec<i64> = self.owned[table]
            .keys()
            .copied()
            .filter(|k| !taken.contains(&(table, *k)))
            .collect();
        if r < p_create || existing.is_empty() {
            let key = ctx.model.fresh_key(table);
            let content = ctx.model.content(table, key, rng);
            return Some(Change {
                table,
                op: "CREATE",
                key,
                content: Some(content),
            });
        }
        let key = *existing.choose(rng)?;
        if r < p_create + p_delete {
            return Some(Change {
                table,
                op: "DELETE",
                key,
                content: None,
            });
        }
        let content = ctx.model.update(table, &self.owned[table][&key], rng);
        Some(Change {
            table,
            op: "UPDATE",
            key,
            content: Some(content),
        })
    }

    async fn step(&mut self, ctx: &Ctx) {
        let batch = if self.ingest && self.rng.random_bool(0.1) {
            self.rng.random_range(2..=4)
        } else {
            1
        };
        let mut taken = HashSet::new();
        let mut changes = Vec::new();
        for _ in 0..batch {
            if let Some(change) = self.plan_one(ctx, &taken) {
                taken.insert((change.table, change.key));
                changes.push(change);
            }
        }
        if changes.is_empty() {
            return;
        }
        let statements: Vec<String> = changes
            .iter()
            .enumerate()
            .map(|(i, change)| match change.op {
                "CREATE" => format!("CREATE $id{i} CONTENT $c{i}"),
                "UPDATE" => format!("UPDATE $id{i} CONTENT $c{i}"),
                _ => format!("DELETE $id{i}"),
            })
            .collect();
        let mut query = if statements.len() > 1 {
            let mut query = Query::transaction();
            for statement in statements {
                query.push(statement);
            }
            query
        } else {
            Query::new(statements.into_iter().next().unwrap_or_default())
        };
        for (i, change) in changes.iter().enumerate() {
            query.set(format!("id{i}"), rid(change.table, change.key));
            if let Some(content) = &change.content {
                query.set(format!("c{i}"), content.to_surreal());
            }
        }
        let kind = match (self.ingest, changes.first().map(|c| c.op)) {
            (true, _) => "ingest: db write",
            (false, Some("CREATE")) => "direct: create",
            (false, Some("UPDATE")) => "direct: update",
            _ => "direct: delete",
        };
        let written = ctx.writers.run(query).await;
        for change in &changes {
            let owned = &mut self.owned[change.table];
            match (change.op, written.is_ok()) {
                ("CREATE", true) => {
                    owned.insert(change.key, change.content.clone().unwrap());
                    ctx.model.created(change.table, change.key);
                }
                ("UPDATE", true) => {
                    owned.insert(change.key, change.content.clone().unwrap());
                }
                // A delete that failed may still have committed: never touch
                // that id again, or it could come back.
                ("DELETE", _) => {
                    owned.remove(&change.key);
                    ctx.model.deleted(change.table, change.key);
                }
                _ => {}
            }
        }
        if let Err((class, detail)) = written {
            ctx.stats.fail(kind, &class, &detail);
            return;
        }
        ctx.stats.ok(kind);
        if !self.ingest {
            return;
        }
        let body: Vec<Json> = changes
            .iter()
            .map(|c| {
                let mut change = json!({
                    "table": TABLES[c.table],
                    "op": c.op,
                    "id": format!("{}:{}", TABLES[c.table], c.key),
                });
                if let Some(content) = &c.content {
                    change["record"] = content.to_json();
                }
                change
            })
            .collect();
        let (kind, body) = if body.len() == 1 {
            ("ingest: post", body.into_iter().next().unwrap())
        } else {
            ("ingest: post batch", Json::Array(body))
        };
        let answer = post(ctx, "/ingest", &body).await;
        record(ctx, kind, &answer);
    }
}

async fn writer_task(ctx: Arc<Ctx>, mut writer: Writer, period: Duration, end: Instant) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !ctx.stopping() && Instant::now() < end {
        tick.tick().await;
        writer.step(&ctx).await;
    }
}

/// Initial data, so that views start with members; split among the writers.
async fn seed_data(
    ctx: &Ctx,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<[BTreeMap<i64, Content>; 3]>> {
    let mut owned: Vec<[BTreeMap<i64, Content>; 3]> =
        (0..WRITERS).map(|_| Default::default()).collect();
    for table in 0..3 {
        let count = TARGET[table] * WRITERS;
        let mut keys: Vec<i64> = (0..count).map(|_| ctx.model.fresh_key(table)).collect();
        while !keys.is_empty() {
            let chunk: Vec<i64> = keys.drain(..keys.len().min(25)).collect();
            let mut query = Query::transaction();
            let mut contents = Vec::new();
            for (i, key) in chunk.iter().enumerate() {
                let content = ctx.model.content(table, *key, rng);
                query.push(format!("CREATE $id{i} CONTENT $c{i}"));
                query.set(format!("id{i}"), rid(table, *key));
                query.set(format!("c{i}"), content.to_surreal());
                contents.push(content);
            }
            ctx.writers
                .run(query)
                .await
                .map_err(|(_, e)| anyhow!("seeding {}: {e}", TABLES[table]))?;
            for (key, content) in chunk.into_iter().zip(contents) {
                ctx.model.created(table, key);
                owned[key as usize % WRITERS][table].insert(key, content);
            }
        }
    }
    Ok(owned)
}

async fn register_with(ctx: &Ctx, id: &str, kind: &'static str, body: Json) {
    let sent = ctx.secs();
    let answer = post(ctx, "/view/register", &body).await;
    let ok = record(ctx, kind, &answer);
    let mut views = ctx.views.lock().unwrap();
    let Some(view) = views.get_mut(id) else {
        return;
    };
    view.history.push(format!(
        "{sent:.1}s {kind} {} -> {} at {:.1}s{}",
        body["params"],
        answer.class(),
        ctx.secs(),
        match &answer {
            Answer::Ok(b) => format!(" lastActiveAt {}", b["lastActiveAt"]),
            _ => String::new(),
        }
    ));
    if ok {
        view.acked = Some(body["params"].clone());
        view.uncertain = false;
        if let Answer::Ok(b) = &answer {
            view.last_active = b["lastActiveAt"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc));
        }
    } else {
        view.uncertain = true;
    }
}

/// A new view in the book; returns its id and registration body.
fn new_view(ctx: &Ctx, rng: &mut StdRng, n: &mut u64, shape: Shape, life: Life) -> (String, Json) {
    *n += 1;
    let ttl_secs = match life {
        Life::Long | Life::Churn => 3600,
        Life::KeptAlive => 20,
        Life::Expiring => rng.random_range(20..=40),
    };
    let id = format!("{}_{}", life.name(), *n);
    let client_id = format!("client-{}", *n % 7);
    let now = Instant::now();
    let view = ViewRec {
        id: id.clone(),
        shape,
        life,
        ttl_secs,
        client_id: client_id.clone(),
        acked: None,
        uncertain: false,
        last_active: None,
        unregistered: false,
        unregister_failed: false,
        next_heartbeat: match life {
            Life::Long => Some(now + Duration::from_secs(20)),
            Life::KeptAlive => Some(now + Duration::from_secs(5)),
            _ => None,
        },
        unregister_at: (life == Life::Churn)
            .then(|| now + Duration::from_secs(rng.random_range(10..60))),
        reregister_at: (life == Life::Churn && rng.random_bool(0.3))
            .then(|| now + Duration::from_secs(rng.random_range(4..10))),
        history: Vec::new(),
    };
    let params = shape.params(&ctx.model, rng);
    ctx.views.lock().unwrap().insert(id.clone(), view);
    let body = json!({
        "id": id,
        "sql": shape.sql(),
        "params": params,
        "clientId": client_id,
        "ttl": format!("{ttl_secs}s"),
    });
    (id, body)
}

/// Registrations, re-registrations and unregistrations.
async fn registrar_task(ctx: Arc<Ctx>, seed: u64, end: Instant) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    let mut next_churn = Instant::now();
    let mut next_expiring = Instant::now();
    let mut next_rereg = Instant::now() + Duration::from_secs(20);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    // The long-lived views: every shape once, and a few kept alive.
    for shape in SHAPES {
        let (id, body) = new_view(&ctx, &mut rng, &mut n, shape, Life::Long);
        register_with(&ctx, &id, "register", body).await;
    }
    for shape in [
        Shape::ByAuthor,
        Shape::Tagged,
        Shape::ActiveUsers,
        Shape::ThreadComments,
    ] {
        let (id, body) = new_view(&ctx, &mut rng, &mut n, shape, Life::KeptAlive);
        register_with(&ctx, &id, "register", body).await;
    }
    while !ctx.stopping() && Instant::now() < end {
        tick.tick().await;
        let now = Instant::now();
        let (churning, expiring) = {
            let views = ctx.views.lock().unwrap();
            let alive = |life| {
                views
                    .values()
                    .filter(|v| v.life == life && !v.unregistered && !v.must_be_gone(Utc::now()))
                    .count()
            };
            (alive(Life::Churn), alive(Life::Expiring))
        };
        if now >= next_churn && churning < 15 {
            next_churn = now + Duration::from_secs(3);
            let shape = *SHAPES.choose(&mut rng).unwrap();
            let (id, body) = new_view(&ctx, &mut rng, &mut n, shape, Life::Churn);
            register_with(&ctx, &id, "register", body).await;
            continue;
        }
        if now >= next_expiring && expiring < 10 {
            next_expiring = now + Duration::from_secs(6);
            let shape = *SHAPES.choose(&mut rng).unwrap();
            let (id, body) = new_view(&ctx, &mut rng, &mut n, shape, Life::Expiring);
            register_with(&ctx, &id, "register", body).await;
            continue;
        }
        // Re-register with new params: a long view now and then, and the
        // churned views that planned it.
        let due: Option<(String, Shape)> = {
            let mut views = ctx.views.lock().unwrap();
            let long: Vec<String> = views
                .values()
                // Views with params, so that a re-registration changes them.
                .filter(|v| v.life == Life::Long && v.shape != Shape::TopWithAuthor)
                .map(|v| v.id.clone())
                .collect();
            if now >= next_rereg || ctx.reregister_now.swap(false, Ordering::Relaxed) {
                next_rereg = now + Duration::from_secs(15);
                long.choose(&mut rng)
                    .map(|id| (id.clone(), views[id].shape))
            } else {
                views
                    .values_mut()
                    .find(|v| v.reregister_at.is_some_and(|at| at <= now) && !v.unregistered)
                    .map(|v| {
                        v.reregister_at = None;
                        (v.id.clone(), v.shape)
                    })
            }
        };
        if let Some((id, shape)) = due {
            let body = {
                let views = ctx.views.lock().unwrap();
                let view = &views[&id];
                json!({
                    "id": id,
                    "sql": shape.sql(),
                    "params": shape.params(&ctx.model, &mut rng),
                    "clientId": view.client_id,
                    "ttl": format!("{}s", view.ttl_secs),
                })
            };
            register_with(&ctx, &id, "re-register", body).await;
            continue;
        }
        let due: Option<String> = {
            let views = ctx.views.lock().unwrap();
            views
                .values()
                .find(|v| !v.unregistered && v.unregister_at.is_some_and(|at| at <= now))
                .map(|v| v.id.clone())
        };
        if let Some(id) = due {
            let sent = ctx.secs();
            let answer = post(&ctx, "/view/unregister", &json!({ "id": id })).await;
            let ok = record(&ctx, "unregister", &answer);
            let mut views = ctx.views.lock().unwrap();
            if let Some(view) = views.get_mut(&id) {
                view.history.push(format!(
                    "{sent:.1}s unregister -> {} at {:.1}s",
                    answer.class(),
                    ctx.secs()
                ));
                if ok {
                    view.unregistered = true;
                    view.unregister_failed = false;
                    view.unregister_at = None;
                } else {
                    // Retried later; meanwhile SSP may or may not hold it.
                    view.unregister_failed = true;
                    view.unregister_at = Some(now + Duration::from_secs(5));
                }
            }
            continue;
        }
        if rng.random_bool(0.05) {
            let id = {
                let views = ctx.views.lock().unwrap();
                let ids: Vec<&String> = views.keys().collect();
                ids.choose(&mut rng).map(|s| (*s).clone())
            };
            if let Some(id) = id {
                let answer = get(&ctx, &format!("/view/{id}")).await;
                match &answer {
                    Answer::Status(404, _) => ctx.stats.ok("get view (404)"),
                    other => {
                        record(&ctx, "get view", other);
                    }
                }
                if let Answer::Status(404, _) = answer {
                    premature_404(&ctx, &id, "GET /view");
                }
            }
        }
    }
}

/// A 404 for a view the soak holds alive is a lifecycle failure.
fn premature_404(ctx: &Ctx, id: &str, what: &str) {
    let view = ctx.views.lock().unwrap().get(id).cloned();
    if let Some(view) = view
        && view.must_exist(Utc::now())
        && !view.uncertain
    {
        ctx.lifecycle_failure(format!(
            "{what} {id} ({:?}, ttl {}s, last active {:?}) answered 404 while it should exist; \
             ssp#{}, last event: {}",
            view.life,
            view.ttl_secs,
            view.last_active.map(|d| d.to_rfc3339()),
            ctx.ssp_instance.load(Ordering::Relaxed),
            ctx.last_event()
        ));
    }
}

/// Heartbeats of the long and kept-alive views: each view's own request, so
/// that one slow answer (the database is down) delays no other view's.
async fn heartbeat_task(ctx: Arc<Ctx>, end: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut in_flight = tokio::task::JoinSet::new();
    while !ctx.stopping() && Instant::now() < end {
        tick.tick().await;
        while in_flight.try_join_next().is_some() {}
        let now = Instant::now();
        let due: Vec<String> = ctx
            .views
            .lock()
            .unwrap()
            .values_mut()
            .filter(|v| v.next_heartbeat.is_some_and(|at| at <= now) && v.acked.is_some())
            .map(|v| {
                // Until its answer: one heartbeat at a time per view.
                v.next_heartbeat = None;
                v.id.clone()
            })
            .collect();
        for id in due {
            in_flight.spawn(heartbeat(Arc::clone(&ctx), id));
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), in_flight.join_all()).await;
}

async fn heartbeat(ctx: Arc<Ctx>, id: String) {
    let sent = ctx.secs();
    let answer = post(&ctx, "/view/heartbeat", &json!({ "id": id })).await;
    let gone = matches!(answer, Answer::Status(404, _));
    if gone {
        ctx.stats.fail("heartbeat", "404", &id);
        premature_404(&ctx, &id, "heartbeat");
    } else {
        record(&ctx, "heartbeat", &answer);
    }
    let mut views = ctx.views.lock().unwrap();
    let Some(view) = views.get_mut(&id) else {
        return;
    };
    view.history.push(format!(
        "{sent:.1}s heartbeat -> {} at {:.1}s{}",
        answer.class(),
        ctx.secs(),
        match &answer {
            Answer::Ok(b) => format!(" lastActiveAt {}", b["lastActiveAt"]),
            _ => String::new(),
        }
    ));
    // A view that is gone stays gone: no more heartbeats for it.
    if !gone {
        let period = match view.life {
            Life::KeptAlive => Duration::from_secs(5),
            _ => Duration::from_secs(20),
        };
        view.next_heartbeat = Some(Instant::now() + period);
    }
    if let Answer::Ok(body) = &answer
        && let Some(at) = body["lastActiveAt"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    {
        view.last_active = Some(at.with_timezone(&Utc));
    }
}

// ----- the edge follower ------------------------------------------------------

type Edges = BTreeMap<(String, String), i64>;

/// The view id of `_spooky_query:<id>`.
fn view_of(r: &sdb::RecordId) -> String {
    match &r.key {
        sdb::RecordIdKey::String(s) => s.clone(),
        other => sdb::ToSql::to_sql(other),
    }
}

fn record_of(r: &sdb::RecordId) -> String {
    record_id_from_surreal(r).map_or_else(|| sdb::ToSql::to_sql(r), |id| id.to_string())
}

fn parse_edges(rows: sdb::Value) -> Result<Edges, String> {
    let sdb::Value::Array(rows) = rows else {
        return Err("edges: not an array".to_owned());
    };
    let mut edges = Edges::new();
    for row in rows.iter() {
        let sdb::Value::Object(o) = row else {
            return Err("edges: a row is not an object".to_owned());
        };
        let (Some(sdb::Value::RecordId(i)), Some(sdb::Value::RecordId(out))) =
            (o.get("in"), o.get("out"))
        else {
            return Err(format!(
                "edges: a row without in/out: {}",
                sdb::ToSql::to_sql(row)
            ));
        };
        let version = match o.get("version") {
            Some(sdb::Value::Number(sdb::Number::Int(v))) => *v,
            other => return Err(format!("edges: version {other:?}")),
        };
        edges.insert((view_of(i), record_of(out)), version);
    }
    Ok(edges)
}

async fn read_edges(conn: &Conn) -> Result<Edges, String> {
    let mut response = conn
        .run(Query::new("SELECT in, out, version FROM _spooky_list_ref"))
        .await
        .map_err(|(_, e)| e)?;
    parse_edges(response.take::<sdb::Value>(0).map_err(|e| e.to_string())?)
}

fn observe(ctx: &Ctx, edges: &Edges) {
    let t = ctx.secs();
    let ssp_instance = ctx.ssp_instance.load(Ordering::Relaxed);
    let db_epoch = ctx.db_epoch.load(Ordering::Relaxed);
    let mut f = ctx.follower.lock().unwrap();
    f.polls_ok += 1;
    f.max_edges = f.max_edges.max(edges.len());
    let mut found = Vec::new();
    let mut per_record: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut present = HashSet::with_capacity(edges.len());
    let mut edge_log = Vec::new();
    for ((view, rec), &version) in edges {
        let key = (view.clone(), rec.clone());
        let span = per_record.entry(rec.as_str()).or_insert((version, version));
        span.0 = span.0.min(version);
        span.1 = span.1.max(version);
        let previous = f.edges.get(&key).copied();
        let was_present = f.present.contains(&key);
        // A state seen before is reported once, not at every poll.
        let changed = !was_present || previous.map(|(v, _)| v) != Some(version);
        let violation = |kind, before, before_view: &str, before_t| Violation {
            t,
            kind,
            view: view.clone(),
            record: rec.clone(),
            before,
            before_view: before_view.to_owned(),
            before_t,
            after: version,
            ssp_instance,
            db_epoch,
            last_event: String::new(),
        };
        match (previous, f.record_max.get(rec.as_str())) {
            (Some((before, before_t)), _) if version < before => {
                found.push(violation("edge", before, view, before_t));
            }
            (_, Some((max, max_view, max_t))) if changed && version < *max => {
                found.push(violation("record", *max, max_view, *max_t));
            }
            _ => {}
        }
        if !was_present {
            f.created += 1;
        } else if changed {
            f.updated += 1;
        }
        if changed {
            let before = previous.map_or("-".to_owned(), |(v, _)| v.to_string());
            edge_log.push(format!("{t:.2} {view} {rec} {before} -> {version}"));
        }
        f.edges.insert(key.clone(), (version, t));
        present.insert(key);
    }
    for ((view, rec), &version) in edges {
        let entry = f
            .record_max
            .entry(rec.clone())
            .or_insert_with(|| (version, view.clone(), t));
        if version > entry.0 {
            *entry = (version, view.clone(), t);
        }
    }
    for (view, rec) in f.present.difference(&present) {
        edge_log.push(format!("{t:.2} {view} {rec} gone"));
    }
    let gone = f.present.difference(&present).count() as u64;
    f.deleted += gone;
    f.present = present;
    if let Some(log) = &ctx.edge_log {
        use std::io::Write as _;
        let mut log = log.lock().unwrap();
        for line in edge_log {
            let _ = writeln!(log, "{line}");
        }
        let _ = log.flush();
    }
    let skewed: Vec<String> = per_record
        .iter()
        .filter(|(_, (lo, hi))| lo != hi)
        .map(|(rec, (lo, hi))| format!("{rec}: {lo}..{hi}"))
        .collect();
    if !skewed.is_empty() {
        f.skewed_polls += 1;
        if f.skew_samples.len() < 10 {
            f.skew_samples.push(format!(
                "t={t:.1}s ssp#{ssp_instance}: {}",
                skewed.join(", ")
            ));
        }
    }
    if found.is_empty() {
        return;
    }
    drop(f);
    let last_event = ctx.last_event();
    let mut f = ctx.follower.lock().unwrap();
    for mut v in found {
        v.last_event = last_event.clone();
        f.violations += 1;
        *f.violations_after.entry(v.last_event.clone()).or_default() += 1;
        if f.samples.len() < 500 {
            println!(
                "[{t:7.1}s] VERSION WENT DOWN ({}): view {} record {}: {} (seen in {} at {:.1}s) -> {} \
                 [ssp#{} db#{}; last event: {}]",
                v.kind,
                v.view,
                v.record,
                v.before,
                v.before_view,
                v.before_t,
                v.after,
                v.ssp_instance,
                v.db_epoch,
                v.last_event
            );
            f.samples.push(v);
        }
    }
}

async fn follower_task(ctx: Arc<Ctx>, until: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Bounded: the soak's duration plus its end phase, at most.
    while !until.load(Ordering::Relaxed) {
        tick.tick().await;
        match read_edges(&ctx.checker).await {
            Ok(edges) => {
                ctx.stats.ok("edge poll");
                observe(&ctx, &edges);
            }
            Err(e) => {
                ctx.follower.lock().unwrap().polls_failed += 1;
                ctx.stats.fail("edge poll", "failed", &e);
            }
        }
    }
}

async fn sampler_task(ctx: Arc<Ctx>, until: Arc<AtomicBool>) {
    while !until.load(Ordering::Relaxed) {
        sample_mem(&ctx);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ----- the checks at the end --------------------------------------------------

/// A param as SurrealDB must see it: `table:key` strings of the soak's tables
/// are record links (SSP reads them so in JSON; SurrealDB needs the type).
fn param_to_surreal(j: &Json) -> sdb::Value {
    match j {
        Json::String(s) => match s.split_once(':') {
            Some((table, key)) if TABLES.contains(&table) && key.parse::<i64>().is_ok() => {
                sdb::Value::RecordId(sdb::RecordId::new(table, key.parse::<i64>().unwrap()))
            }
            _ => sdb::Value::String(s.clone()),
        },
        Json::Array(items) => sdb::Value::Array(
            items
                .iter()
                .map(param_to_surreal)
                .collect::<Vec<_>>()
                .into(),
        ),
        Json::Number(n) => match n.as_i64() {
            Some(i) => sdb::Value::Number(sdb::Number::Int(i)),
            None => sdb::Value::Number(sdb::Number::Float(n.as_f64().unwrap_or(0.0))),
        },
        Json::Bool(b) => sdb::Value::Bool(*b),
        Json::Null => sdb::Value::Null,
        Json::Object(o) => {
            let mut object = sdb::Object::new();
            for (k, v) in o {
                object.insert(k.clone(), param_to_surreal(v));
            }
            sdb::Value::Object(object)
        }
    }
}

/// A view's result set as README defines it: each row's id, and the ids of
/// the records its subquery fields hold, recursively. The soak's records hold
/// no nested objects of their own, so every object with an id is a record.
fn collect_ids(v: &sdb::Value, out: &mut BTreeSet<String>) {
    match v {
        sdb::Value::Array(items) => items.iter().for_each(|i| collect_ids(i, out)),
        sdb::Value::Object(o) => {
            if let Some(sdb::Value::RecordId(r)) = o.get("id") {
                out.insert(record_of(r));
            }
            for value in o.values() {
                if matches!(value, sdb::Value::Object(_) | sdb::Value::Array(_)) {
                    collect_ids(value, out);
                }
            }
        }
        _ => {}
    }
}

#[derive(Serialize)]
struct ViewMismatch {
    view: String,
    sql: String,
    params: Json,
    edges: usize,
    expected: usize,
    missing: Vec<String>,
    extra: Vec<String>,
}

#[derive(Serialize, Default)]
struct FinalChecks {
    views_in_db: usize,
    edges_in_db: usize,
    views_compared: usize,
    edge_mismatches: Vec<ViewMismatch>,
    evaluation_errors: Vec<String>,
    /// Edges whose view has no `_spooky_query` row.
    orphan_edges: Vec<String>,
    /// Records whose edges carry different versions in the final state.
    version_skew: Vec<String>,
    /// `GET /view/{id}` against the view's edges, before SSP was stopped.
    api_mismatches: Vec<String>,
    /// Views that should exist and do not, or should be gone and are not, or
    /// hold other params than the last registration SSP confirmed.
    lifecycle: Vec<String>,
    /// Worth knowing, not failures.
    notes: Vec<String>,
}

async fn final_snapshot(conn: &Conn) -> Result<(Vec<(String, String, Json)>, Edges), String> {
    let mut query = Query::transaction();
    query.push("SELECT id, surql, params FROM _spooky_query");
    query.push("SELECT in, out, version FROM _spooky_list_ref");
    let mut response = conn.run(query).await.map_err(|(_, e)| e)?;
    let rows = response.take::<sdb::Value>(0).map_err(|e| e.to_string())?;
    let edges = parse_edges(response.take::<sdb::Value>(1).map_err(|e| e.to_string())?)?;
    let sdb::Value::Array(rows) = rows else {
        return Err("views: not an array".to_owned());
    };
    let mut views = Vec::new();
    for row in rows.into_inner() {
        let sdb::Value::Object(mut o) = row else {
            continue;
        };
        let Some(sdb::Value::RecordId(id)) = o.get("id") else {
            continue;
        };
        let id = view_of(id);
        let sql = match o.remove("surql") {
            Some(sdb::Value::String(s)) => s,
            _ => String::new(),
        };
        let params = o
            .remove("params")
            .map(ssp::db::values::surreal_to_json)
            .unwrap_or(json!({}));
        views.push((id, sql, params));
    }
    Ok((views, edges))
}

async fn evaluate(conn: &Conn, sql: &str, params: &Json) -> Result<BTreeSet<String>, String> {
    let mut query = Query::new(sql.to_owned());
    if let Json::Object(o) = params {
        for (k, v) in o {
            query.set(k.clone(), param_to_surreal(v));
        }
    }
    let mut response = conn.run(query).await.map_err(|(_, e)| e)?;
    let rows = response.take::<sdb::Value>(0).map_err(|e| e.to_string())?;
    let mut ids = BTreeSet::new();
    collect_ids(&rows, &mut ids);
    Ok(ids)
}

fn by_view(edges: &Edges) -> BTreeMap<&str, BTreeMap<&str, i64>> {
    let mut out: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    for ((view, rec), version) in edges {
        out.entry(view).or_default().insert(rec, *version);
    }
    out
}

/// Waits until the edges stop changing and SSP's queue is empty.
async fn settle(ctx: &Ctx, limit: Duration) -> (bool, f64) {
    let started = Instant::now();
    let mut last: Option<Edges> = None;
    let mut stable_since = Instant::now();
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(edges) = read_edges(&ctx.checker).await else {
            last = None;
            continue;
        };
        let queue_empty = match get(ctx, "/health").await {
            Answer::Ok(h) => h["pipeline"]["queue_depth"].as_u64() == Some(0),
            _ => false,
        };
        if last.as_ref() == Some(&edges) && queue_empty {
            if stable_since.elapsed() >= Duration::from_secs(5) {
                return (true, started.elapsed().as_secs_f64());
            }
        } else {
            stable_since = Instant::now();
        }
        last = Some(edges);
    }
    (false, started.elapsed().as_secs_f64())
}

/// One view's edges: record -> version.
async fn view_edges(conn: &Conn, id: &str) -> Result<BTreeMap<String, i64>, String> {
    let view = sdb::Value::RecordId(sdb::RecordId::new("_spooky_query", id.to_owned()));
    let query = Query::new("SELECT in, out, version FROM _spooky_list_ref WHERE in = $view")
        .bind("view", view);
    let mut response = conn.run(query).await.map_err(|(_, e)| e)?;
    let edges = parse_edges(response.take::<sdb::Value>(0).map_err(|e| e.to_string())?)?;
    Ok(edges.into_iter().map(|((_, rec), v)| (rec, v)).collect())
}

/// `GET /view/{id}` of every view against its edges, while SSP still runs.
/// A view may be swept meanwhile, so a difference counts only if it holds
/// over three reads.
async fn api_check(ctx: &Ctx, out: &mut Vec<String>) {
    let rows: Vec<(String, String, Json)> = match final_snapshot(&ctx.checker).await {
        Ok((views, _)) => views,
        Err(e) => {
            out.push(format!("could not read the views: {e}"));
            return;
        }
    };
    for (id, _, row_params) in rows {
        let mut problem = None;
        for _ in 0..3 {
            let answer = get(ctx, &format!("/view/{id}")).await;
            let edges = view_edges(&ctx.checker, &id).await;
            problem = match (answer, edges) {
                (_, Err(e)) => Some(format!("view {id}: reading its edges: {e}")),
                (Answer::Status(404, _), Ok(edges)) if edges.is_empty() => None,
                (Answer::Ok(body), Ok(_)) if body["params"] != row_params => Some(format!(
                    "view {id}: SSP evaluates params {} but its _spooky_query row holds {row_params}",
                    body["params"]
                )),
                (Answer::Ok(body), Ok(edges)) => {
                    let api: BTreeMap<String, i64> = body["records"]
                        .as_array()
                        .map(|records| {
                            records
                                .iter()
                                .filter_map(|r| {
                                    Some((r["id"].as_str()?.to_owned(), r["version"].as_i64()?))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    (api != edges).then(|| {
                        let differ: Vec<String> = api
                            .keys()
                            .chain(edges.keys())
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .filter(|k| api.get(*k) != edges.get(*k))
                            .take(8)
                            .map(|k| format!("{k}: ssp {:?} edge {:?}", api.get(k), edges.get(k)))
                            .collect();
                        format!("view {id}: {}", differ.join(", "))
                    })
                }
                (other, Ok(edges)) => Some(format!(
                    "GET /view/{id}: {} with {} edges",
                    other.class(),
                    edges.len()
                )),
            };
            if problem.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        out.extend(problem);
    }
}

async fn final_checks(
    ctx: &Ctx,
    freeze: DateTime<Utc>,
    checks: &mut FinalChecks,
) -> anyhow::Result<()> {
    let (views, edges) = final_snapshot(&ctx.checker)
        .await
        .map_err(|e| anyhow!("final snapshot: {e}"))?;
    checks.views_in_db = views.len();
    checks.edges_in_db = edges.len();
    let grouped = by_view(&edges);
    let known: HashSet<&str> = views.iter().map(|(id, _, _)| id.as_str()).collect();
    for ((view, rec), version) in &edges {
        if !known.contains(view.as_str()) && checks.orphan_edges.len() < 50 {
            checks
                .orphan_edges
                .push(format!("{view} -> {rec} (version {version})"));
        }
    }
    let orphan_count = edges
        .keys()
        .filter(|(v, _)| !known.contains(v.as_str()))
        .count();
    if orphan_count > checks.orphan_edges.len() {
        checks
            .orphan_edges
            .push(format!("... {orphan_count} orphan edges in all"));
    }
    let mut versions: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for ((_, rec), version) in &edges {
        versions.entry(rec).or_default().insert(*version);
    }
    for (rec, set) in versions {
        if set.len() > 1 {
            checks.version_skew.push(format!("{rec}: {set:?}"));
        }
    }
    for (id, sql, params) in &views {
        let want = match evaluate(&ctx.checker, sql, params).await {
            Ok(ids) => ids,
            Err(e) => {
                checks.evaluation_errors.push(format!("view {id}: {e}"));
                continue;
            }
        };
        checks.views_compared += 1;
        let got: BTreeSet<String> = grouped
            .get(id.as_str())
            .map(|m| m.keys().map(|k| (*k).to_owned()).collect())
            .unwrap_or_default();
        if got != want {
            checks.edge_mismatches.push(ViewMismatch {
                view: id.clone(),
                sql: sql.clone(),
                params: params.clone(),
                edges: got.len(),
                expected: want.len(),
                missing: want.difference(&got).take(20).cloned().collect(),
                extra: got.difference(&want).take(20).cloned().collect(),
            });
        }
    }
    // What the soak knows of each view against what the database holds.
    let rows: HashMap<&str, &Json> = views.iter().map(|(id, _, p)| (id.as_str(), p)).collect();
    let book = ctx.views.lock().unwrap().clone();
    for view in book.values() {
        let row = rows.get(view.id.as_str());
        if view.must_exist(freeze) && row.is_none() {
            checks.lifecycle.push(format!(
                "view {} ({:?}, ttl {}s, last active {:?}) is gone but should exist",
                view.id,
                view.life,
                view.ttl_secs,
                view.last_active.map(|d| d.to_rfc3339())
            ));
        }
        if view.must_be_gone(freeze) && row.is_some() {
            checks.lifecycle.push(format!(
                "view {} ({:?}, ttl {}s, last active {:?}, unregistered {}) still exists",
                view.id,
                view.life,
                view.ttl_secs,
                view.last_active.map(|d| d.to_rfc3339()),
                view.unregistered
            ));
        }
        if let (Some(row), Some(acked), false) = (row, &view.acked, view.uncertain)
            && *row != acked
        {
            checks.lifecycle.push(format!(
                "view {} holds params {row} but the last confirmed registration had {acked}",
                view.id
            ));
        }
    }
    Ok(())
}

// ----- the run ----------------------------------------------------------------

#[derive(Serialize)]
struct SspInstance {
    instance: u64,
    started_at_s: f64,
    ready_after_s: Option<f64>,
    ended: String,
    log: LogSummary,
}

/// What an SSP log says: ERROR and WARN lines (tower-http's line for each
/// 503 apart, since outages make many), and the WARN messages by kind.
fn scan_log(path: &Path) -> LogSummary {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut summary = LogSummary::default();
    for line in text.lines() {
        if line.contains("tower_http") {
            summary.http_failure_lines += 1;
        } else if line.contains(" ERROR ") || line.contains("panicked") {
            summary.error_lines += 1;
            if summary.first_errors.len() < 5 {
                summary.first_errors.push(line.chars().take(400).collect());
            }
        } else if let Some((_, rest)) = line.split_once(" WARN ") {
            summary.warn_lines += 1;
            // The message without its fields: target and text up to the first `key=`.
            let message: String = rest
                .split_whitespace()
                .take_while(|w| !w.contains('='))
                .collect::<Vec<_>>()
                .join(" ");
            *summary.warnings.entry(message).or_default() += 1;
        }
    }
    summary
}

#[derive(Serialize, Default)]
struct LogSummary {
    error_lines: usize,
    warn_lines: usize,
    /// tower-http's ERROR line for each response that failed (503s).
    http_failure_lines: usize,
    first_errors: Vec<String>,
    warnings: BTreeMap<String, usize>,
}

fn db_settings(url: &str) -> anyhow::Result<DbSettings> {
    let env: HashMap<String, String> = [
        ("SPOOKY_SURREALDB_URL", url),
        ("SPOOKY_AUTH_SECRET", SECRET),
        ("SPOOKY_SURREALDB_CALL_TIMEOUT_MS", "3000"),
        ("SPOOKY_SURREALDB_CONNECT_DEADLINE_MS", "30000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Ok(Settings::load_from(None, false, &env)
        .map_err(|e| anyhow!("settings: {e}"))?
        .surrealdb)
}

/// When SSP is killed: the `i`-th of `n`, spread over the run and moved to the
/// middle of a database period, so that a kill and a database restart do not
/// blur into one event.
fn kill_times(duration: Duration, period: Duration, n: u32) -> Vec<Duration> {
    let (d, p) = (duration.as_secs_f64(), period.as_secs_f64());
    (1..=n)
        .map(|i| {
            let t = d * 0.35 * f64::from(i);
            let t = (t / p).floor() * p + p / 2.0;
            Duration::from_secs_f64(t.min(d - 20.0).max(1.0))
        })
        .collect()
}

/// Takes the current SSP process off the memory sampler, after a last sample.
fn forget_ssp_pid(ctx: &Ctx) {
    let instance = ctx.ssp_instance.load(Ordering::Relaxed);
    sample_mem(ctx);
    ctx.pids.lock().unwrap().remove(&format!("ssp#{instance}"));
}

async fn soak(o: Options) -> anyhow::Result<bool> {
    let seed = o.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let duration = Duration::from_secs_f64(o.minutes * 60.0);
    let period = Duration::from_secs(o.db_period_secs.max(5));
    let down = Duration::from_secs(o.db_down_secs);
    let exe = std::env::current_exe().context("where am I")?;
    let ssp_bin = o.ssp.clone().unwrap_or_else(|| exe.with_file_name("ssp"));
    if !ssp_bin.is_file() {
        bail!(
            "no ssp binary at {} (build it: cargo build --bin ssp, or pass --ssp)",
            ssp_bin.display()
        );
    }
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ssp-soak-{}-{seed}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    println!(
        "ssp-soak: {} min, seed {seed}, database restart every {}s (down {}s), {} SSP kills, \
         {} writes/s; run directory {}",
        o.minutes,
        period.as_secs(),
        down.as_secs(),
        o.ssp_kills,
        o.rate,
        dir.display()
    );

    let mut db = DbProc {
        exe,
        port: free_port()?,
        path: dir.join("surreal"),
        log: dir.join("surreal.log"),
        child: None,
    };
    let pid = db.start("first start")?;
    db.wait_ready(Duration::from_secs(120)).await?;
    let settings = db_settings(&db.url())?;
    let writers = Conn::connect(settings.clone()).await?;
    let checker = Conn::connect(settings).await?;
    let ssp_port = free_port()?;
    let edge_log = match &o.edge_log {
        Some(path) => Some(Mutex::new(std::io::BufWriter::new(
            File::create(path).with_context(|| format!("create {}", path.display()))?,
        ))),
        None => None,
    };
    let ctx = Arc::new(Ctx {
        t0: Instant::now(),
        stop: AtomicBool::new(false),
        stats: Stats::default(),
        model: Model::new(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?,
        ssp_base: format!("http://127.0.0.1:{ssp_port}"),
        writers,
        checker,
        ssp_instance: AtomicU64::new(0),
        db_epoch: AtomicU64::new(1),
        pids: Mutex::new(BTreeMap::from([("db#1".to_owned(), pid)])),
        mem: Mutex::new(BTreeMap::new()),
        events: Mutex::new(Vec::new()),
        views: Mutex::new(BTreeMap::new()),
        lifecycle: Mutex::new(Vec::new()),
        follower: Mutex::new(Follower::default()),
        seed,
        reregister_now: AtomicBool::new(false),
        edge_log,
    });
    ctx.event(format!("database db#1 up at {}", db.url()));
    let mut rng = StdRng::seed_from_u64(seed);
    let owned = seed_data(&ctx, &mut rng).await?;
    ctx.event(format!(
        "seeded {} users, {} threads, {} comments",
        TARGET[0] * WRITERS,
        TARGET[1] * WRITERS,
        TARGET[2] * WRITERS
    ));

    let mut ssp = SspProc {
        bin: ssp_bin.clone(),
        port: ssp_port,
        dir: dir.clone(),
        db_url: db.url(),
        child: None,
    };
    let mut instances: Vec<SspInstance> = Vec::new();
    let start_ssp = |ssp: &mut SspProc, instances: &mut Vec<SspInstance>| -> anyhow::Result<()> {
        let instance = ctx.ssp_instance.fetch_add(1, Ordering::Relaxed) + 1;
        let pid = ssp.start(instance)?;
        ctx.pids
            .lock()
            .unwrap()
            .insert(format!("ssp#{instance}"), pid);
        instances.push(SspInstance {
            instance,
            started_at_s: ctx.secs(),
            ready_after_s: None,
            ended: "running".to_owned(),
            log: LogSummary::default(),
        });
        Ok(())
    };
    start_ssp(&mut ssp, &mut instances)?;
    match ssp.wait_ready(&ctx, Duration::from_secs(180)).await {
        Ok(after) => {
            instances.last_mut().unwrap().ready_after_s = Some(after.as_secs_f64());
            ctx.event(format!("ssp#1 ready after {:.1}s", after.as_secs_f64()));
        }
        Err(e) => bail!(
            "SSP did not start: {e}; see {}",
            dir.join("ssp-1.log").display()
        ),
    }

    let end = Instant::now() + duration;
    let stop_polls = Arc::new(AtomicBool::new(false));
    let follower = tokio::spawn(follower_task(Arc::clone(&ctx), Arc::clone(&stop_polls)));
    let sampler = tokio::spawn(sampler_task(Arc::clone(&ctx), Arc::clone(&stop_polls)));
    let mut load = Vec::new();
    load.push(tokio::spawn(registrar_task(
        Arc::clone(&ctx),
        seed ^ 0x5eed,
        end,
    )));
    load.push(tokio::spawn(heartbeat_task(Arc::clone(&ctx), end)));
    let period_per_writer = Duration::from_secs_f64(WRITERS as f64 / f64::from(o.rate.max(1)));
    for (index, owned) in owned.into_iter().enumerate() {
        let writer = Writer {
            ingest: index % 2 == 1,
            owned,
            rng: StdRng::seed_from_u64(seed.wrapping_add(index as u64 + 1)),
        };
        load.push(tokio::spawn(writer_task(
            Arc::clone(&ctx),
            writer,
            period_per_writer,
            end,
        )));
    }

    // The schedule: database restarts every period, SSP kills in between.
    let t0 = Instant::now();
    let mut db_restarts: Vec<Instant> = (1..)
        .map(|k| t0 + period * k)
        .take_while(|t| *t + down + Duration::from_secs(15) < end)
        .collect();
    db_restarts.reverse();
    let mut kills: Vec<Instant> = kill_times(duration, period, o.ssp_kills)
        .into_iter()
        .map(|d| t0 + d)
        .collect();
    kills.reverse();
    let mut db_stops = (0u32, 0u32);
    let mut db_ready_after = Vec::new();
    let mut crashes = Vec::new();
    let mut kill_count = 0;
    let mut restart_failures = Vec::new();
    let mut rereg_flagged = false;
    while Instant::now() < end {
        if let Some(status) = ssp.exited() {
            let instance = ctx.ssp_instance.load(Ordering::Relaxed);
            forget_ssp_pid(&ctx);
            crashes.push(format!("ssp#{instance} exited by itself: {status}"));
            ctx.event(format!(
                "ssp#{instance} EXITED BY ITSELF ({status}); starting it again"
            ));
            if let Some(i) = instances.last_mut() {
                i.ended = format!("exited by itself: {status}");
            }
            start_ssp(&mut ssp, &mut instances)?;
        }
        if let Some(status) = db.exited() {
            crashes.push(format!("database exited by itself: {status}"));
            ctx.event(format!(
                "database EXITED BY ITSELF ({status}); starting it again"
            ));
            let epoch = ctx.db_epoch.fetch_add(1, Ordering::Relaxed) + 1;
            let pid = db.start("after a crash")?;
            ctx.pids.lock().unwrap().insert(format!("db#{epoch}"), pid);
        }
        let now = Instant::now();
        if db_restarts.last().is_some_and(|t| *t <= now) {
            db_restarts.pop();
            let kill = (db_stops.0 + db_stops.1) % 2 == 1;
            let epoch = ctx.db_epoch.load(Ordering::Relaxed);
            sample_mem(&ctx);
            ctx.pids.lock().unwrap().remove(&format!("db#{epoch}"));
            let how = db.stop(kill).await;
            if kill {
                db_stops.1 += 1;
            } else {
                db_stops.0 += 1;
            }
            ctx.event(format!(
                "database db#{epoch} stopped with {} ({how})",
                if kill { "SIGKILL" } else { "SIGTERM" }
            ));
            tokio::time::sleep(down).await;
            let epoch = ctx.db_epoch.fetch_add(1, Ordering::Relaxed) + 1;
            let pid = db.start("restart")?;
            ctx.pids.lock().unwrap().insert(format!("db#{epoch}"), pid);
            // A restart that ran late does not make the next ones bunch up.
            let soonest = Instant::now() + period / 2;
            db_restarts.retain(|t| *t >= soonest);
            match db.wait_ready(Duration::from_secs(120)).await {
                Ok(after) => {
                    db_ready_after.push(after.as_secs_f64());
                    ctx.event(format!(
                        "database db#{epoch} up after {:.1}s",
                        after.as_secs_f64()
                    ));
                }
                Err(e) => {
                    restart_failures.push(format!("db#{epoch}: {e}"));
                    ctx.event(format!("database db#{epoch} FAILED to start: {e}"));
                }
            }
            continue;
        }
        if kills
            .last()
            .is_some_and(|t| *t <= now + Duration::from_secs(3))
            && !rereg_flagged
        {
            ctx.reregister_now.store(true, Ordering::Relaxed);
            rereg_flagged = true;
        }
        if kills.last().is_some_and(|t| *t <= now) {
            rereg_flagged = false;
            kills.pop();
            let instance = ctx.ssp_instance.load(Ordering::Relaxed);
            forget_ssp_pid(&ctx);
            ssp.kill9().await;
            kill_count += 1;
            if let Some(i) = instances.last_mut() {
                i.ended = "kill -9".to_owned();
            }
            ctx.event(format!("ssp#{instance} killed with SIGKILL"));
            tokio::time::sleep(Duration::from_secs(1)).await;
            start_ssp(&mut ssp, &mut instances)?;
            let instance = instance + 1;
            match ssp.wait_ready(&ctx, Duration::from_secs(180)).await {
                Ok(after) => {
                    instances.last_mut().unwrap().ready_after_s = Some(after.as_secs_f64());
                    ctx.event(format!(
                        "ssp#{instance} ready after {:.1}s",
                        after.as_secs_f64()
                    ));
                }
                Err(e) => {
                    restart_failures.push(format!("ssp#{instance}: {e}"));
                    ctx.event(format!("ssp#{instance} FAILED to become ready: {e}"));
                }
            }
            continue;
        }
        let next = [db_restarts.last(), kills.last(), Some(&end)]
            .into_iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(end);
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(500));
        tokio::time::sleep(wait).await;
    }

    // ----- the end ----------------------------------------------------------
    ctx.stop.store(true, Ordering::Relaxed);
    ctx.event("load stopped".to_owned());
    for task in load {
        let _ = tokio::time::timeout(Duration::from_secs(60), task).await;
    }
    let load_secs = ctx.secs();
    if ssp.pid().is_none() {
        start_ssp(&mut ssp, &mut instances)?;
    }
    let ready = ssp.wait_ready(&ctx, Duration::from_secs(180)).await;
    if let Err(e) = &ready {
        restart_failures.push(format!("at the end: {e}"));
    }
    let (settled, settle_secs) = settle(&ctx, Duration::from_secs(120)).await;
    ctx.event(format!(
        "{} after {settle_secs:.1}s",
        if settled { "settled" } else { "did NOT settle" }
    ));
    let mut checks = FinalChecks::default();
    api_check(&ctx, &mut checks.api_mismatches).await;
    let before_stop = read_edges(&ctx.checker).await.unwrap_or_default();
    let freeze = Utc::now();
    let instance = ctx.ssp_instance.load(Ordering::Relaxed);
    forget_ssp_pid(&ctx);
    let stopped = ssp.term().await;
    let graceful = match &stopped {
        Ok((status, took)) => {
            ctx.event(format!(
                "ssp#{instance} stopped with SIGTERM: {status} after {:.1}s",
                took.as_secs_f64()
            ));
            status.success()
        }
        Err(e) => {
            ctx.event(format!("ssp#{instance} SIGTERM: {e}"));
            false
        }
    };
    if let Some(i) = instances.last_mut() {
        i.ended = match &stopped {
            Ok((status, took)) => format!("SIGTERM: {status} after {:.1}s", took.as_secs_f64()),
            Err(e) => format!("SIGTERM: {e}"),
        };
    }
    // One last look by the follower, then it stops.
    if let Ok(edges) = read_edges(&ctx.checker).await {
        observe(&ctx, &edges);
        if edges != before_stop {
            // Not a failure: a TTL sweep may run during the stop.
            checks.notes.push(format!(
                "the edges changed during the graceful stop: {} before, {} after",
                before_stop.len(),
                edges.len()
            ));
        }
    }
    stop_polls.store(true, Ordering::Relaxed);
    let _ = follower.await;
    let _ = sampler.await;
    if let Err(e) = final_checks(&ctx, freeze, &mut checks).await {
        checks.evaluation_errors.push(e.to_string());
    }
    checks
        .lifecycle
        .extend(ctx.lifecycle.lock().unwrap().iter().cloned());
    let _ = db.stop(false).await;
    for i in &mut instances {
        i.log = scan_log(&dir.join(format!("ssp-{}.log", i.instance)));
    }

    // ----- the report -------------------------------------------------------
    let follower = ctx.follower.lock().unwrap();
    let mem = ctx.mem.lock().unwrap().clone();
    let ssp_peak = mem
        .iter()
        .filter(|(k, _)| k.starts_with("ssp#"))
        .map(|(_, m)| m.vm_hwm_kib.max(m.vm_rss_max_kib))
        .max()
        .unwrap_or(0);
    let db_peak = mem
        .iter()
        .filter(|(k, _)| k.starts_with("db#"))
        .map(|(_, m)| m.vm_hwm_kib.max(m.vm_rss_max_kib))
        .max()
        .unwrap_or(0);
    let views = ctx.views.lock().unwrap().clone();
    let count_life = |life: Life| views.values().filter(|v| v.life == life).count();
    let failures: Vec<String> = [
        (follower.violations > 0).then(|| format!("{} version violations", follower.violations)),
        (!checks.edge_mismatches.is_empty()).then(|| {
            format!(
                "{} views whose edges differ from SurrealDB",
                checks.edge_mismatches.len()
            )
        }),
        (!checks.orphan_edges.is_empty())
            .then(|| format!("{} orphan edges", checks.orphan_edges.len())),
        (!checks.version_skew.is_empty()).then(|| {
            format!(
                "{} records with edges of different versions",
                checks.version_skew.len()
            )
        }),
        (!checks.api_mismatches.is_empty())
            .then(|| format!("{} GET /view disagreements", checks.api_mismatches.len())),
        (!checks.lifecycle.is_empty())
            .then(|| format!("{} lifecycle failures", checks.lifecycle.len())),
        (!checks.evaluation_errors.is_empty())
            .then(|| format!("{} evaluation errors", checks.evaluation_errors.len())),
        (!settled).then(|| "SSP did not settle".to_owned()),
        (!graceful).then(|| "SSP did not stop cleanly on SIGTERM".to_owned()),
        (!crashes.is_empty()).then(|| format!("{} unexpected exits", crashes.len())),
        (!restart_failures.is_empty())
            .then(|| format!("{} failed restarts", restart_failures.len())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let passed = failures.is_empty();
    let ops = ctx.stats.ops.lock().unwrap().clone();
    let report = json!({
        "passed": passed,
        "failures": failures,
        "seed": ctx.seed,
        "options": o,
        "finished_at": Utc::now().to_rfc3339(),
        "duration_s": {"load": load_secs, "total": ctx.secs(), "settle": settle_secs},
        "ops": ops,
        "database": {
            "restarts": db_stops.0 + db_stops.1,
            "stopped_with_sigterm": db_stops.0,
            "stopped_with_sigkill": db_stops.1,
            "up_after_s": db_ready_after,
            "peak_rss_kib": db_peak,
            "connections_replaced": ctx.writers.replaced.load(Ordering::Relaxed)
                + ctx.checker.replaced.load(Ordering::Relaxed),
        },
        "ssp": {
            "kills": kill_count,
            "restarts": instances.len().saturating_sub(1),
            "unexpected_exits": crashes,
            "restart_failures": restart_failures,
            "peak_rss_kib": ssp_peak,
            "instances": instances,
        },
        "memory": mem,
        "view_book": views,
        "views": {
            "registered": views.len(),
            "long": count_life(Life::Long),
            "kept_alive": count_life(Life::KeptAlive),
            "churn": count_life(Life::Churn),
            "expiring": count_life(Life::Expiring),
            "in_db_at_end": checks.views_in_db,
            "edges_at_end": checks.edges_in_db,
        },
        "follower": {
            "polls_ok": follower.polls_ok,
            "polls_failed": follower.polls_failed,
            "edges_created": follower.created,
            "edges_updated": follower.updated,
            "edges_deleted": follower.deleted,
            "max_edges": follower.max_edges,
            "version_violations": follower.violations,
            "version_violations_after": follower.violations_after,
            "violations": follower.samples,
            "polls_with_version_skew": follower.skewed_polls,
            "skew_samples": follower.skew_samples,
        },
        "checks": checks,
        "events": ctx.events.lock().unwrap().iter().map(|(t, e)| format!("{t:.1}s {e}")).collect::<Vec<_>>(),
        "run_dir": dir.display().to_string(),
    });
    if let Some(parent) = o.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&o.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("write {}", o.out.display()))?;

    println!();
    println!("===== ssp-soak report (seed {seed}) =====");
    println!("load {load_secs:.0}s, total {:.0}s", ctx.secs());
    println!("operations (ok / failed):");
    for (kind, count) in &ops {
        let why: Vec<String> = count
            .errors
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        println!(
            "  {kind:<22} {:>7} / {:<6} {}",
            count.ok,
            count.failed,
            why.join(", ")
        );
    }
    println!(
        "database: {} restarts ({} SIGTERM, {} SIGKILL), up again after {:?} s",
        db_stops.0 + db_stops.1,
        db_stops.0,
        db_stops.1,
        db_ready_after
            .iter()
            .map(|s| (s * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    println!(
        "ssp: {kill_count} kill -9, {} processes; peak RSS {:.1} MiB (database {:.1} MiB)",
        instances.len(),
        ssp_peak as f64 / 1024.0,
        db_peak as f64 / 1024.0
    );
    for (label, m) in &mem {
        println!(
            "  {label:<7} VmHWM {:>7.1} MiB  max VmRSS {:>7.1} MiB",
            m.vm_hwm_kib as f64 / 1024.0,
            m.vm_rss_max_kib as f64 / 1024.0
        );
    }
    for i in &instances {
        println!(
            "  ssp#{}: started {:.1}s, ready after {:?}s, ended: {}; log: {} ERROR, {} WARN lines",
            i.instance,
            i.started_at_s,
            i.ready_after_s.map(|s| (s * 10.0).round() / 10.0),
            i.ended,
            i.log.error_lines,
            i.log.warn_lines
        );
        for (message, n) in &i.log.warnings {
            println!("      WARN x{n}: {message}");
        }
    }
    println!(
        "views: {} registered ({} long, {} kept alive, {} churned, {} expiring); at the end {} views, {} edges",
        views.len(),
        count_life(Life::Long),
        count_life(Life::KeptAlive),
        count_life(Life::Churn),
        count_life(Life::Expiring),
        checks.views_in_db,
        checks.edges_in_db
    );
    println!(
        "edge follower: {} polls ({} failed), edges created {}, updated {}, deleted {}; \
         version violations {}; polls with skew {}",
        follower.polls_ok + follower.polls_failed,
        follower.polls_failed,
        follower.created,
        follower.updated,
        follower.deleted,
        follower.violations,
        follower.skewed_polls
    );
    for (event, n) in &follower.violations_after {
        println!("  {n} version violations after: {event}");
    }
    println!(
        "final: {} views compared, {} mismatched, {} orphan edges, {} skewed records, \
         {} GET /view disagreements, {} lifecycle failures, {} evaluation errors",
        checks.views_compared,
        checks.edge_mismatches.len(),
        checks.orphan_edges.len(),
        checks.version_skew.len(),
        checks.api_mismatches.len(),
        checks.lifecycle.len(),
        checks.evaluation_errors.len()
    );
    for m in checks.edge_mismatches.iter().take(10) {
        println!(
            "  MISMATCH {}: {} edges, {} expected; missing {:?}, extra {:?}  [{} {}]",
            m.view, m.edges, m.expected, m.missing, m.extra, m.sql, m.params
        );
    }
    for line in checks
        .orphan_edges
        .iter()
        .chain(&checks.version_skew)
        .chain(&checks.api_mismatches)
        .chain(&checks.lifecycle)
        .chain(&checks.evaluation_errors)
        .chain(&checks.notes)
        .take(30)
    {
        println!("  {line}");
    }
    println!("report: {}", o.out.display());
    if passed {
        println!("PASSED");
        if !o.keep && o.dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    } else {
        println!("FAILED: {}", failures_line(&report));
        println!("run directory kept: {}", dir.display());
    }
    Ok(passed)
}

fn failures_line(report: &Json) -> String {
    report["failures"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}
