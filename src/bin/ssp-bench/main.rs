//! `ssp-bench`: SSP's benchmark suite.
//!
//! ```text
//! cargo run --release --bin ssp-bench            # the full suite
//! cargo run --release --bin ssp-bench -- --quick # under 5 minutes on 2 cores
//! cargo run --release --features bench-ws --bin ssp-bench -- --quick  # + ws:// rows
//! ```
//!
//! Every figure that matters is reported as a ratio measured in the same run
//! (absolute times on a shared machine are noise). Results go to
//! `bench-results/latest.json` and a summary table on stdout.
//!
//! Workloads:
//! * forum: users, threads, comments; a mix of filter, by-author, top-20
//!   with authors, and thread-detail views; create / update 20% of comments /
//!   delete 10%; engine alone;
//! * fan-out: N `WHERE author = $uid` views, changes spread over all users;
//! * registration: `WHERE author = $uid` views over 100,000 threads;
//! * memory: bytes per record and per view, from a counting allocator;
//! * end to end, on embedded SurrealDB and on a real server over `ws://`:
//!   `/ingest` over HTTP to committed edges, 1 and 32 clients, against the
//!   same transactions written bare with the SDK; the LIVE path (an SDK
//!   write to the edge commit, as a client watching the edges sees it);
//! * against the naive approach (re-running every view's SELECT).
//!
//! The `ws://` rows need a server: `--features bench-ws` starts SurrealDB's
//! own server in-process (a long first release build), or `--surreal-url
//! ws://HOST:PORT` uses a running one (root/root). Without either they are
//! reported as skipped. `--only e2e` (or any of forum, fan-out,
//! registration, memory, batch, growth, persistence, stall, tiers, cluster,
//! comma-separated) runs part of the suite.

// The in-process SurrealDB server (`bench-ws`) nests deep async types.
#![recursion_limit = "256"]

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value as Json, json};
use ssp::db::Db;
use ssp::db::values::to_surreal;
use ssp::engine::value::{Object, RecordId, Value};
use ssp::engine::{Change, Engine, ViewMeta};

mod cluster;
mod e2e;
mod live_path;
mod naive;
mod persistence;
mod stall;
mod tiers;
mod workloads;

use cluster::*;
use e2e::*;
use live_path::*;
use naive::*;
use persistence::*;
use stall::*;
use tiers::*;
use workloads::*;

/// Counts live heap bytes, for the memory figures, over mimalloc (the
/// allocator the `ssp` binary uses).
pub(crate) struct Counting;

pub(crate) static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
pub(crate) static ALLOC: Counting = Counting;

pub(crate) fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[derive(Clone, Copy)]
pub(crate) struct Mode {
    pub(crate) quick: bool,
    pub(crate) smoke: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = Mode {
        quick: args.iter().any(|a| a == "--quick"),
        smoke: args.iter().any(|a| a == "--smoke"),
    };
    let out_path = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "bench-results/latest.json".into());
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    // `--only e2e,forum`: run just these sections (for profiling).
    let only = value_of("--only");
    let run = |section: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|s| s == section))
    };
    // As `ssp` itself does. Without a subscriber, `tracing`'s `log` feature
    // makes every disabled span evaluate its fields: SurrealDB's key-value
    // layer would format every key it touches (~5-10% of its time).
    let _ = ssp::telemetry::try_init("error");
    #[cfg(feature = "bench-ws")]
    if let Some(addr) = value_of("--serve-surreal") {
        serve_surreal(&addr);
        return;
    }
    // As `ssp` itself does (after the server above: that one stands for a
    // stock SurrealDB server and keeps the system's setting).
    ssp::startup::disable_transparent_huge_pages();
    let mut results = Results::default();

    if run("forum") {
        forum(&mut results, mode);
    }
    if run("fan-out") {
        fan_out(&mut results, mode);
    }
    if run("registration") {
        registration(&mut results, mode);
    }
    if run("clock") {
        time_windows(&mut results, mode);
    }
    if run("memory") {
        memory(&mut results, mode);
    }
    if run("memory") || run("batch") {
        batch_at_equal_fan_out(&mut results, mode);
    }
    if run("growth") {
        table_growth(&mut results, mode);
    }
    if run("persistence") {
        persistence(&mut results, mode);
    }
    if run("stall") && !args.iter().any(|a| a == "--engine-only") {
        registration_stall(&mut results, mode);
        scan_stall(&mut results, mode);
    }
    if run("tiers") && !args.iter().any(|a| a == "--engine-only") {
        tiers(&mut results, mode);
    }
    if run("cluster") && !args.iter().any(|a| a == "--engine-only") {
        cluster(&mut results, mode, value_of("--surreal-url"));
    }
    if run("e2e") && !args.iter().any(|a| a == "--engine-only") {
        end_to_end(&mut results, mode, value_of("--surreal-url"));
    }

    results.print();
    let doc = json!({
        "machine": machine(),
        "mode": if mode.smoke { "smoke" } else if mode.quick { "quick" } else { "full" },
        "results": results.rows,
    });
    if let Some(dir) = std::path::Path::new(&out_path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(
        &out_path,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    ) {
        Ok(()) => println!("\nresults written to {out_path}"),
        Err(e) => eprintln!("cannot write {out_path}: {e}"),
    }
}

pub(crate) fn machine() -> Json {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    json!({"cpu": cpu, "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)})
}

#[derive(Default)]
pub(crate) struct Results {
    pub(crate) rows: Vec<Json>,
}

impl Results {
    pub(crate) fn add(&mut self, name: &str, value: f64, unit: &str, target: Option<(&str, bool)>) {
        let row = json!({
            "name": name, "value": value, "unit": unit,
            "target": target.map(|t| t.0), "met": target.map(|t| t.1),
        });
        println!(
            "{:<62} {:>14} {:<10} {}",
            name,
            fmt(value),
            unit,
            match target {
                Some((t, true)) => format!("target {t}: met"),
                Some((t, false)) => format!("target {t}: NOT met"),
                None => String::new(),
            }
        );
        self.rows.push(row);
    }

    /// A figure this run could not measure, and why.
    pub(crate) fn skip(&mut self, name: &str, why: &str) {
        println!("{name:<62} {:>14} {why}", "skipped");
        self.rows
            .push(json!({"name": name, "value": null, "skipped": why}));
    }

    pub(crate) fn print(&self) {
        println!("\n{} figures", self.rows.len());
    }
}

pub(crate) fn fmt(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.0}", v)
    } else if v >= 10.0 {
        format!("{:.1}", v)
    } else {
        format!("{:.3}", v)
    }
}

// ----- data -----------------------------------------------------------------

pub(crate) fn obj(j: Json) -> Object {
    match Value::from(&j) {
        Value::Object(o) => o,
        _ => Object::default(),
    }
}

pub(crate) fn put(id: String, content: Json) -> Change {
    Change {
        id: RecordId::parse(&id).expect("bench ids are valid"),
        content: Some(obj(content)),
    }
}

pub(crate) fn meta(id: String, sql: &str, params: Json) -> ViewMeta {
    ViewMeta {
        id: id.into(),
        client_id: "bench".into(),
        sql: sql.into(),
        params: params.as_object().cloned().unwrap_or_default(),
        ttl: "1h".into(),
        last_active_at: chrono::Utc::now(),
        owner: None,
    }
}

pub(crate) const WORDS: [&str; 8] = [
    "Magic", "Hello", "Rust", "Spooky", "Ghost", "Query", "Edge", "Stream",
];

pub(crate) const TOP20: &str = "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author FROM thread ORDER BY created_at DESC LIMIT 20";
pub(crate) const DETAIL: &str = "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author, \
    (SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author FROM comment \
     WHERE thread = $parent.id ORDER BY created_at DESC LIMIT 10) AS comments FROM thread WHERE id = $id";

/// `--serve-surreal 127.0.0.1:0`: only serve SurrealDB (root/root, in
/// memory) and print its URL, so that another `ssp-bench` (or `ssp`) can use
/// it as a separate process with `--surreal-url`. Stops after an hour.
#[cfg(feature = "bench-ws")]
pub(crate) fn serve_surreal(addr: &str) {
    let rt = ssp::startup::runtime(None).expect("server runtime");
    rt.block_on(async {
        let server = surreal::SurrealServer::start_on(addr).await;
        println!("{}", server.url());
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
}

/// The SurrealDB server the integration tests use, for the `ws://` rows.
#[cfg(feature = "bench-ws")]
#[allow(dead_code)]
#[path = "../../../tests/integration/support/surreal.rs"]
mod surreal;
