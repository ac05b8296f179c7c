//! What the soak's tasks share: counters, memory samples, violations, the
//! follower's view of the edges, and the connections to SurrealDB.

use super::*;

/// Operations of one kind: how many succeeded, how many failed and why.
#[derive(Default, Serialize, Clone)]
pub(crate) struct OpCount {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    /// Failures by class (`503 db_unavailable`, `connect`, `timeout`, ...).
    pub(crate) errors: BTreeMap<String, u64>,
    /// The first few failures of each class, verbatim.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) samples: Vec<String>,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) ops: Mutex<BTreeMap<&'static str, OpCount>>,
}

impl Stats {
    pub(crate) fn ok(&self, kind: &'static str) {
        self.ops.lock().unwrap().entry(kind).or_default().ok += 1;
    }

    pub(crate) fn fail(&self, kind: &'static str, class: &str, detail: &str) {
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
pub(crate) struct Mem {
    /// `VmHWM`: the process's own peak resident set, as last sampled.
    pub(crate) vm_hwm_kib: u64,
    /// The largest `VmRSS` sampled.
    pub(crate) vm_rss_max_kib: u64,
    pub(crate) samples: u64,
}

/// A version that went down, as the edge follower saw it.
#[derive(Serialize, Clone)]
pub(crate) struct Violation {
    /// Seconds since the start of the run.
    pub(crate) t: f64,
    /// `edge`: this view's edge to the record went down; `record`: the
    /// record's version in this view is below one seen before in any view.
    pub(crate) kind: &'static str,
    pub(crate) view: String,
    pub(crate) record: String,
    pub(crate) before: i64,
    /// The view where `before` was seen.
    pub(crate) before_view: String,
    pub(crate) before_t: f64,
    pub(crate) after: i64,
    pub(crate) ssp_instance: u64,
    pub(crate) db_epoch: u64,
    pub(crate) last_event: String,
}

/// What the edge follower knows.
#[derive(Default)]
pub(crate) struct Follower {
    /// Last version seen per (view, record), kept after the edge goes.
    pub(crate) edges: HashMap<(String, String), (i64, f64)>,
    pub(crate) present: HashSet<(String, String)>,
    /// Highest version seen per record in any view, where and when.
    pub(crate) record_max: HashMap<String, (i64, String, f64)>,
    pub(crate) violations: u64,
    /// Violations by the last scheduler event before them.
    pub(crate) violations_after: BTreeMap<String, u64>,
    pub(crate) samples: Vec<Violation>,
    pub(crate) polls_ok: u64,
    pub(crate) polls_failed: u64,
    pub(crate) created: u64,
    pub(crate) updated: u64,
    pub(crate) deleted: u64,
    pub(crate) max_edges: usize,
    /// Snapshots in which one record's edges carried different versions.
    pub(crate) skewed_polls: u64,
    pub(crate) skew_samples: Vec<String>,
}

pub(crate) struct Ctx {
    pub(crate) t0: Instant,
    pub(crate) stop: AtomicBool,
    pub(crate) stats: Stats,
    pub(crate) model: Model,
    pub(crate) http: reqwest::Client,
    pub(crate) ssp_base: String,
    pub(crate) writers: Conn,
    pub(crate) checker: Conn,
    /// Which SSP process and which database process serve now (1, 2, ...).
    pub(crate) ssp_instance: AtomicU64,
    pub(crate) db_epoch: AtomicU64,
    /// Pids whose memory the sampler reads, by label (`ssp#2`, `db#3`).
    pub(crate) pids: Mutex<BTreeMap<String, u32>>,
    pub(crate) mem: Mutex<BTreeMap<String, Mem>>,
    pub(crate) events: Mutex<Vec<(f64, String)>>,
    pub(crate) views: Mutex<BTreeMap<String, ViewRec>>,
    pub(crate) lifecycle: Mutex<Vec<String>>,
    pub(crate) follower: Mutex<Follower>,
    pub(crate) seed: u64,
    /// Set a few seconds before SSP is killed: a view is re-registered with
    /// new params, so that a kill follows a change SSP has not saved yet.
    pub(crate) reregister_now: AtomicBool,
    /// `--edge-log`.
    pub(crate) edge_log: Option<Mutex<std::io::BufWriter<File>>>,
}

impl Ctx {
    pub(crate) fn secs(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    pub(crate) fn event(&self, what: String) {
        let t = self.secs();
        println!("[{t:7.1}s] {what}");
        self.events.lock().unwrap().push((t, what));
    }

    pub(crate) fn last_event(&self) -> String {
        self.events
            .lock()
            .unwrap()
            .last()
            .map(|(t, e)| format!("{t:.1}s {e}"))
            .unwrap_or_default()
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub(crate) fn lifecycle_failure(&self, what: String) {
        println!("[{:7.1}s] LIFECYCLE: {what}", self.secs());
        self.lifecycle.lock().unwrap().push(what);
    }
}

/// A SurrealDB connection of the soak's own. The SDK reconnects after a
/// restart of the server; if a connection still fails long after the server
/// is back, it is replaced, so that one stuck socket cannot end the load.
pub(crate) struct Conn {
    pub(crate) settings: DbSettings,
    pub(crate) db: tokio::sync::RwLock<Arc<Db>>,
    pub(crate) failing_since: Mutex<Option<Instant>>,
    pub(crate) replaced: AtomicU64,
}

impl Conn {
    pub(crate) async fn connect(settings: DbSettings) -> anyhow::Result<Conn> {
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

    pub(crate) async fn run(&self, query: Query) -> Result<ssp::db::Response, (String, String)> {
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

    pub(crate) async fn replace(&self) {
        let mut settings = self.settings.clone();
        settings.connect_deadline = Duration::from_secs(5);
        if let Ok(db) = Db::connect(&settings).await {
            *self.db.write().await = Arc::new(db);
            *self.failing_since.lock().unwrap() = None;
            self.replaced.fetch_add(1, Ordering::Relaxed);
        }
    }
}
