//! Differential test: the engine against SurrealDB's own evaluation.
//!
//! Each case is a random little world, run twice in lock step:
//!
//! * **data**: a main table `t` and a linked table `u` with ints, floats,
//!   strings that sort interestingly (`'B'` < `'a'`, `'10'` < `'9'`, `''`),
//!   bools, missing fields (NONE), NULL, arrays, nested objects (`obj.c.d`),
//!   datetimes, decimals (`0.1dec`, `1.00000000000000000001dec`), durations
//!   (`ttl`, `0ns` among them), uuids, bytes, geometry points and record
//!   links (`u:3`, real SurrealDB record ids); Numbers include `-0.0`, NaN,
//!   ±Infinity and values beyond 2^53 and near `i64::MAX`; keys
//!   include `t:a`, `t:B` and the string key `t:⟨7⟩` beside `t:7`, uuid
//!   keys (`t:u'…'`, also as literals), and array and object keys
//!   (`t:[1, 'a']` beside `t:[1f, 'a']`, `t:{ a: 1 }`; in data and params);
//! * **views**: random queries of the supported subset: `*` or
//!   field lists, `WHERE` with every supported operator, `NOT (..)`/`!`,
//!   `IS [NOT] NONE`, nested and indexed paths, literals of every kind and
//!   `$params` (also paths through a param holding a record id, which
//!   batches change: `$p3.friend.name`), `ORDER BY` on several fields, `LIMIT`/`START` (literal, param,
//!   NULL, or `$parent.lim`), and subquery projections on `$parent` (link
//!   lookups with `[0]`, reverse links, `IN $parent.links`, `tags
//!   CONTAINSANY $parent.tags` (arrays or sets on either side), non-indexed
//!   `score > $parent.score ORDER BY .. LIMIT`, random ones), nested one level
//!   deeper, with aliases that repeat or shadow plain fields; views sharing a
//!   query (with equal or other params);
//! * **steps**: batches of creates, updates (small and whole), deletes and
//!   identical rewrites, with views registered before and after data exists,
//!   refreshed (same or another query), unregistered and registered again.
//!
//! Every write goes to an embedded SurrealDB (`mem://`) with bound parameters;
//! the stored record is read back and fed to the engine through
//! `from_surreal`, exactly as the change worker does. After every step, every
//! registered view's query runs in SurrealDB with the same params; its result
//! (top-level ids plus, recursively, the ids inside subquery fields) must equal
//! the engine's result set, and the edges implied by the deltas the engine
//! emitted so far.
//!
//! Besides the result set, the deltas are checked: applied in order they must
//! give exactly the engine's result set with current versions (the edges SSP
//! would hold), `created`/`deleted`/`updated` must each make sense, an
//! unchanged record is never `updated`, a batch that changes nothing emits
//! nothing, versions start at 1 and grow by one per changing batch, and an
//! unregister must delete exactly the edges.
//!
//! Params: a record link param is bound to SurrealDB as a record id and given
//! to the engine as its JSON text (`"u:3"`), the documented JSON rule; such
//! params only appear in equality-like comparisons (`=`, `!=`, `==`, `IN`,
//! `CONTAINS`), where the rule applies. Params are JSON: no datetimes,
//! decimals, durations, uuids, bytes or geometry (those are literals, and
//! bytes and geometry, which have no literal in SSP's queries, only data).
//!
//! Generator restrictions, where SurrealDB does something no result set can
//! mirror: `string::starts_with` only gets string arguments (SurrealDB fails
//! the whole query on any other, NONE and NULL included); data strings never
//! look like record ids (the JSON rule would apply to them); object literals
//! only appear as params (they are not in the supported subset).
//!
//! A failure is shrunk (steps, writes, views, clauses, fields) and printed as
//! a SurrealQL script that can be pasted into `surreal sql`.
//!
//! Environment: `SSP_DIFF_SEED` (default fixed), `SSP_DIFF_CASES` (default
//! [`DEFAULT_CASES`]), `SSP_DIFF_ONLY=<case>` to run a single case,
//! `SSP_DIFF_DUMP=1` to print every generated view.

// The in-process SurrealDB server (the mixed mode's `ws://` backend) needs it.
#![recursion_limit = "256"]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssp::db::values::{
    object_from_surreal, record_id_from_surreal, record_id_to_surreal, to_surreal,
};
use ssp::engine::value::{Key, Number, Object, RecordId, Value};
use ssp::engine::{Change, Engine, ViewDelta, ViewMeta};
use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types as sdb;

mod generator;
mod mixed;
mod query;
mod report;
mod runner;
mod shrink;
mod values;

// The integration tests' harness: SSP and SurrealDB's server in-process.
#[allow(unused_macros, unused_imports)]
#[path = "../integration/support/mod.rs"]
mod support;

use generator::*;
use query::*;
use report::*;
use runner::*;
use values::*;

pub(crate) const DEFAULT_SEED: u64 = 0x5350_5f44_4946_4631;
pub(crate) const DEFAULT_CASES: u64 = 2500;
/// Stop after this many (shrunk and printed) failures.
pub(crate) const MAX_FAILURES: usize = 3;
/// Runs of the case allowed while shrinking one failure.
pub(crate) const SHRINK_BUDGET: usize = 4000;

// ===========================================================================
// The test
// ===========================================================================

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name} must be an integer, got {v:?}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_agrees_with_surrealdb() {
    let seed = env_u64("SSP_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("SSP_DIFF_CASES").unwrap_or(DEFAULT_CASES);
    let only = env_u64("SSP_DIFF_ONLY");
    let range = match only {
        Some(i) => i..i + 1,
        None => 0..cases,
    };

    let db = surrealdb::engine::any::connect("mem://")
        .await
        .expect("embedded SurrealDB");
    db.use_ns("diff").use_db("diff").await.expect("ns/db");
    let runner = Runner { db };

    let started = Instant::now();
    let mut stats = Stats::default();
    let mut failures: Vec<String> = Vec::new();
    for i in range {
        let case = Gen::new(seed, i).case();
        if std::env::var("SSP_DIFF_DUMP").is_ok() {
            for v in case.views.iter().flatten() {
                eprintln!(
                    "DUMP {} {}",
                    v.sql(),
                    serde_json::Value::Object(v.engine_params())
                );
            }
        }
        stats.cases += 1;
        if let Err(f) = runner.run(&case, &mut stats).await {
            let (small, f, runs) = runner.shrink(case, f).await;
            let text = repro(seed, i, &small, &f, runs);
            eprintln!("{text}");
            failures.push(text);
            if failures.len() >= MAX_FAILURES {
                break;
            }
        }
    }
    eprintln!(
        "differential: seed {seed:#x}: {} cases, {} steps, {} writes, {} view checks \
         ({} non-empty; {} of views with subqueries, {} of them non-empty, {} with subquery records; \
         {} windowed; {} views moved to the re-query tier; {} edges moved by the clock) in {:.1?}; \
         {} failure(s)",
        stats.cases,
        stats.steps,
        stats.writes,
        stats.checks,
        stats.nonempty,
        stats.sub_views,
        stats.sub_views_nonempty,
        stats.with_sub_records,
        stats.windowed,
        stats.moved,
        stats.clock_edges,
        started.elapsed(),
        failures.len()
    );
    let per: Vec<String> = stats
        .constructs
        .iter()
        .map(|(c, (n, nonempty))| format!("{c}: {n} ({nonempty} non-empty)"))
        .collect();
    eprintln!(
        "differential: view checks per construct: {}",
        per.join(", ")
    );
    assert!(
        failures.is_empty(),
        "{} differential failure(s); the shrunk reproductions are printed above",
        failures.len()
    );
}

/// The mixed mode: the same generated cases through a running SSP, every
/// change written in SurrealDB (followed by the change worker) and sent to
/// `/ingest`, the edges compared with SurrealDB's answer right after each
/// 200 (see `mixed.rs`).
#[test]
fn mixed_sources_agree_with_surrealdb() {
    let seed = env_u64("SSP_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("SSP_DIFF_MIXED_CASES").unwrap_or(mixed::DEFAULT_MIXED_CASES);
    let range = match env_u64("SSP_DIFF_ONLY") {
        Some(i) => i..i + 1,
        None => 0..cases,
    };
    // Both backends unless one is asked for: the embedded engine for the
    // bulk, SurrealDB's server over ws:// (its own LIVE path) for a fifth.
    let runs: Vec<(support::Backend, std::ops::Range<u64>)> =
        match std::env::var("SSP_DIFF_MIXED_BACKEND").as_deref() {
            Ok("ws") => vec![(support::Backend::Ws, range)],
            Ok("mem") => vec![(support::Backend::Mem, range)],
            Err(_) => vec![
                (support::Backend::Mem, range.clone()),
                (
                    support::Backend::Ws,
                    range.start..range.start + (range.end - range.start).div_ceil(5),
                ),
            ],
            Ok(other) => panic!("SSP_DIFF_MIXED_BACKEND is mem or ws, not {other}"),
        };
    support::run(async move {
        let mut failures = Vec::new();
        let (mut json_ingests, mut all_cases) = (0, 0);
        for (backend, range) in runs {
            let started = Instant::now();
            let mut stats = mixed::MixedStats::default();
            for i in range {
                let case = Gen::new(seed, i).case();
                stats.cases += 1;
                if let Err(report) = mixed::run_mixed(backend, seed, i, &case, &mut stats).await {
                    eprintln!("{report}");
                    failures.push(report);
                    if failures.len() >= MAX_FAILURES {
                        break;
                    }
                }
            }
            eprintln!(
                "differential (mixed, {backend:?}): seed {seed:#x}: {} cases, {} ingests ({} in CBOR), \
                 {} view checks ({} non-empty), {} edge versions checked in {:.1?} \
                 (read again so far: {} snapshot rows, {} /ingest changes); {} failure(s)",
                stats.cases,
                stats.ingests,
                stats.cbor_ingests,
                stats.checks,
                stats.nonempty,
                stats.edges_checked,
                started.elapsed(),
                stats.snapshot_rereads,
                stats.ingest_rereads,
                failures.len()
            );
            // Not vacuous: views held records, CBOR was sent (and, over the
            // whole run, JSON too: a 20-case run may send CBOR only).
            assert!(
                stats.nonempty > 0 && stats.cbor_ingests > 0 || stats.cases < 10,
                "the mixed mode checked too little"
            );
            json_ingests += stats.ingests - stats.cbor_ingests;
            all_cases += stats.cases;
        }
        assert!(
            json_ingests > 0 || all_cases < 50,
            "the mixed mode sent no JSON ingest"
        );
        assert!(
            failures.is_empty(),
            "{} mixed-mode failure(s); the cases are printed above",
            failures.len()
        );
    });
}
