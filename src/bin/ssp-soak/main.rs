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

mod checks;
mod follower;
mod http;
mod load;
mod procs;
mod records;
mod run;
mod state;
mod views;

use checks::*;
use follower::*;
use http::*;
use load::*;
use procs::*;
use records::*;
use run::*;
use state::*;
use views::*;

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
