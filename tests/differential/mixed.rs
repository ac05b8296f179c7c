//! The mixed mode: the generated cases, through a running SSP
//! with both sources at once, as the seed's apps use it.
//!
//! Every write of a batch is made in SurrealDB (where SSP's change worker
//! follows the tables over LIVE SELECT) and then the batch is sent to
//! `POST /ingest`: in SurrealDB's CBOR, so every value keeps its type, or as
//! JSON when the records' JSON form loses nothing (both paths run). Views
//! are registered and unregistered over HTTP. Right after each 200, with no
//! settling time, every registered view's edges in SurrealDB
//! (`_spooky_list_ref`) must equal SurrealDB's own answer to the view's
//! query, whichever tier SSP chose for it; and no edge's version may exceed
//! the number of writes that changed its record since it was created (a
//! late LIVE notification of an earlier write must neither move a record
//! back nor bump its version). After the last step the views are checked
//! once more, once the worker's notifications have had time to arrive.
//!
//! Each case runs on a fresh SSP (and database). A failure prints the case
//! as a SurrealQL script; timing makes it hard to shrink, so it is not.
//!
//! Environment: `SSP_DIFF_SEED` as the engine mode, `SSP_DIFF_MIXED_CASES`
//! (default [`DEFAULT_MIXED_CASES`]), `SSP_DIFF_ONLY=<case>`,
//! `SSP_DIFF_MIXED_BACKEND=ws` to run against SurrealDB's server over
//! ws:// instead of the embedded engine.

use std::sync::Arc;
use std::time::Duration;

use ssp::db::values::from_surreal;
use ssp::db::{Db, Query as DbQuery};

use super::*;
use crate::support::{Backend, TestApp};

pub(crate) const DEFAULT_MIXED_CASES: u64 = 100;

/// What the notifications of the last step get before the settled check.
const SETTLE: Duration = Duration::from_millis(300);

#[derive(Default)]
pub(crate) struct MixedStats {
    pub(crate) cases: u64,
    pub(crate) ingests: u64,
    pub(crate) cbor_ingests: u64,
    pub(crate) checks: u64,
    pub(crate) nonempty: u64,
    pub(crate) edges_checked: u64,
    /// `ssp_worker_snapshot_rereads_total` after the last case (the
    /// process's metrics count every case so far).
    pub(crate) snapshot_rereads: u64,
    /// `ssp_ingest_rereads_total`, the same way: `/ingest` changes read
    /// again because the worker had delivered that content before (a
    /// record written back to an earlier content).
    pub(crate) ingest_rereads: u64,
}

/// One case, through SSP. `Err` is the report to print.
pub(crate) async fn run_mixed(
    backend: Backend,
    seed: u64,
    index: u64,
    case: &Case,
    stats: &mut MixedStats,
) -> Result<(), String> {
    let app = TestApp::spawn(backend).await;
    let db: Arc<Db> = match &app.test_db.server {
        Some(server) => {
            let url = server.url();
            let settings = app
                .test_db
                .settings_with(&[("SPOOKY_SURREALDB_URL", url.as_str())]);
            Arc::new(
                Db::connect(&settings.surrealdb)
                    .await
                    .map_err(|e| e.to_string())?,
            )
        }
        None => Arc::clone(&app.db),
    };
    let mut run = MixedRun {
        app: &app,
        db: &db,
        case,
        active: BTreeMap::new(),
        held: BTreeMap::new(),
        changes: BTreeMap::new(),
    };
    let outcome = run.steps(stats).await;
    // What SSP's change worker counted (resolve failures, resyncs, repairs;
    // counters only show once raised, and count every case this process ran
    // so far): timing decides a mixed case, so a failure says what the
    // sources did.
    let counters = worker_counters(&app).await;
    let counter = |name: &str| {
        counters.iter().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|n| n.strip_prefix(' '))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
    };
    if let Some(n) = counter("ssp_worker_snapshot_rereads_total") {
        stats.snapshot_rereads = n;
    }
    if let Some(n) = counter("ssp_ingest_rereads_total") {
        stats.ingest_rereads = n;
    }
    let worker: String = match &outcome {
        Err(_) => counters.iter().map(|l| format!("-- {l}\n")).collect(),
        Ok(()) => String::new(),
    };
    app.stop().await;
    outcome.map_err(|f| {
        repro(seed, index, case, &f, 0).replace("differential failure", "mixed-mode failure")
            + worker.as_str()
    })
}

/// The change worker's counters from `/metrics`, as its lines.
async fn worker_counters(app: &TestApp) -> Vec<String> {
    let text = match app.get("/metrics").send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(e) => return vec![format!("/metrics: {e}")],
    };
    text.lines()
        .filter(|l| l.starts_with("ssp_worker_") || l.starts_with("ssp_ingest_rereads_total"))
        .map(str::to_owned)
        .collect()
}

struct MixedRun<'a> {
    app: &'a TestApp,
    db: &'a Db,
    case: &'a Case,
    /// Registered views: id -> definition index.
    active: BTreeMap<String, usize>,
    /// Each record as SurrealDB holds it.
    held: BTreeMap<RecordId, Value>,
    /// How many writes changed each record since it was first created.
    changes: BTreeMap<RecordId, u64>,
}

impl MixedRun<'_> {
    async fn steps(&mut self, stats: &mut MixedStats) -> Result<(), Failure> {
        let surreal = |si: usize, e: String| fail(Kind::Surreal, si, None, e);
        self.db
            .run(DbQuery::new(crate::runner::schema()))
            .await
            .map_err(|e| surreal(0, e.to_string()))?;
        for (si, step) in self.case.steps.iter().enumerate() {
            match step {
                // SSP runs at the wall clock, years after every date the
                // data holds: no time window changes during a case.
                Step::Clock(_) => {}
                Step::Batch(ws) => {
                    let mut body = Vec::with_capacity(ws.len());
                    for w in ws {
                        body.push(self.write(w).await.map_err(|e| surreal(si, e))?);
                    }
                    stats.ingests += 1;
                    if self
                        .ingest(body, si % 2 == 1)
                        .await
                        .map_err(|e| fail(Kind::Rejected, si, None, format!("/ingest: {e}")))?
                    {
                        stats.cbor_ingests += 1;
                    }
                }
                Step::Register(di) => {
                    let Some(def) = &self.case.views[*di] else {
                        continue;
                    };
                    let body = serde_json::json!({
                        "id": def.id,
                        "sql": def.sql(),
                        "params": def.engine_params(),
                        "clientId": "mixed",
                    });
                    match self.post("/view/register", body).await {
                        Ok(_) => {}
                        // A time window whose `FROM $param` holds no record
                        // id on this data: the engine cannot run it, and
                        // the re-query tier cannot follow a clock. Refused,
                        // nothing changes (the runner's engine mode counts
                        // it as moved instead).
                        Err(e) if e.contains(": 422 ") && e.contains("`time::now`") => continue,
                        // The same for `$unbound` (NONE to the engine): the
                        // re-query tier has no value to bind.
                        Err(e)
                            if e.contains(": 422 ")
                                && e.contains(
                                    "`$unbound`, which is not among the view's params",
                                ) =>
                        {
                            continue;
                        }
                        Err(e) => return Err(fail(Kind::Rejected, si, Some(*di), e)),
                    }
                    self.active.insert(def.id.clone(), *di);
                }
                Step::Unregister(di) => {
                    let Some(def) = &self.case.views[*di] else {
                        continue;
                    };
                    if self.active.remove(&def.id).is_none() {
                        continue;
                    }
                    self.post("/view/unregister", serde_json::json!({ "id": def.id }))
                        .await
                        .map_err(|e| fail(Kind::Rejected, si, Some(*di), e))?;
                    let left = self.edges(&def.id).await.map_err(|e| surreal(si, e))?;
                    if !left.is_empty() {
                        return Err(fail(
                            Kind::Delta,
                            si,
                            Some(*di),
                            format!("unregistered, and still {} edges", left.len()),
                        ));
                    }
                }
            }
            self.check(si, stats).await?;
        }
        tokio::time::sleep(SETTLE).await;
        self.check(self.case.steps.len().saturating_sub(1), stats)
            .await
    }

    /// Writes one change in SurrealDB and returns it as an `/ingest` change,
    /// with the record as SurrealDB stored it.
    async fn write(&mut self, w: &Write) -> Result<sdb::Value, String> {
        let id = sdb::Value::RecordId(record_id_to_surreal(&w.id));
        let (op, record) = match &w.content {
            None => {
                let mut q = DbQuery::new("DELETE $id");
                q.set("id", id.clone());
                self.run_retrying(q).await?;
                self.held.remove(&w.id);
                // Created again, a record starts at version 1 if SSP saw the
                // delete; a delete and a create read as one change (the
                // worker's read comes after both) are an update. So the
                // bound counts every changing write since the first.
                ("DELETE", sdb::Value::None)
            }
            Some(c) => {
                let (sql, content) = crate::runner::upsert(w, c);
                let mut q = DbQuery::new(sql);
                q.set("id", id.clone());
                q.set("c", content);
                let mut r = self.run_retrying(q).await?;
                let stored: sdb::Value = r.take(1).map_err(|e| e.to_string())?;
                let now = from_surreal(stored.clone());
                let op = match self.held.insert(w.id.clone(), now.clone()) {
                    Some(before) => {
                        if !before.same_content(&now) {
                            *self.changes.entry(w.id.clone()).or_insert(0) += 1;
                        }
                        "UPDATE"
                    }
                    None => {
                        *self.changes.entry(w.id.clone()).or_insert(0) += 1;
                        "CREATE"
                    }
                };
                (op, stored)
            }
        };
        let mut change = sdb::Object::new();
        change.insert(
            "table".to_owned(),
            sdb::Value::String(w.id.table.to_string()),
        );
        change.insert("op".to_owned(), sdb::Value::String(op.to_owned()));
        change.insert("id".to_owned(), id);
        if !matches!(record, sdb::Value::None) {
            change.insert("record".to_owned(), record);
        }
        Ok(sdb::Value::Object(change))
    }

    /// Runs an app's write, retried on a transaction conflict as SurrealDB
    /// asks (SSP's own transactions run beside it).
    async fn run_retrying(&self, q: DbQuery) -> Result<ssp::db::Response, String> {
        let mut attempt = 0;
        loop {
            match self.db.run(q.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) if attempt < 10 && e.is_conflict() => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Sends a batch to `/ingest`: as JSON when `json_if_exact` and JSON
    /// holds every record exactly, else in SurrealDB's CBOR. Says whether it
    /// sent CBOR.
    async fn ingest(&self, body: Vec<sdb::Value>, json_if_exact: bool) -> Result<bool, String> {
        let json = json_if_exact
            .then(|| {
                body.iter()
                    .map(|c| {
                        let sdb::Value::Object(o) = c else {
                            return None;
                        };
                        let mut j = serde_json::Map::new();
                        for (k, v) in o.iter() {
                            let as_json = match (k.as_str(), v) {
                                ("id", sdb::Value::RecordId(r)) => serde_json::Value::String(
                                    record_id_from_surreal(r)?.to_string(),
                                ),
                                // The record's own `id` is the change's.
                                ("record", sdb::Value::Object(r)) => {
                                    let mut r = r.clone();
                                    r.remove("id");
                                    let r = sdb::Value::Object(r);
                                    let as_json = ssp::db::values::surreal_to_json(r.clone());
                                    // Exact: JSON reads back as the very same value.
                                    if Value::from(&as_json) != from_surreal(r) {
                                        return None;
                                    }
                                    as_json
                                }
                                _ => ssp::db::values::surreal_to_json(v.clone()),
                            };
                            j.insert(k.clone(), as_json);
                        }
                        Some(serde_json::Value::Object(j))
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .flatten();
        let request = self.app.post("/ingest");
        let (request, cbor) = match json {
            Some(items) => (request.json(&items), false),
            None => {
                let bytes = surrealdb_core::rpc::format::cbor::encode(sdb::Value::Array(
                    sdb::Array::from(body),
                ))
                .map_err(|e| e.to_string())?;
                (
                    request
                        .header("content-type", "application/cbor")
                        .body(bytes),
                    true,
                )
            }
        };
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "{status}: {}",
                response.text().await.unwrap_or_default()
            ));
        }
        Ok(cbor)
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Result<(), String> {
        let response = self
            .app
            .post(path)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "{path}: {status}: {}",
                response.text().await.unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// A view's edges in SurrealDB: record -> version.
    async fn edges(&self, view: &str) -> Result<Edges, String> {
        let mut q = DbQuery::new("SELECT out, version FROM _spooky_list_ref WHERE in = $q");
        q.set(
            "q",
            sdb::Value::RecordId(sdb::RecordId::new("_spooky_query", view.to_owned())),
        );
        let mut r = self.db.run(q).await.map_err(|e| e.to_string())?;
        let rows: sdb::Value = r.take(0).map_err(|e| e.to_string())?;
        let sdb::Value::Array(rows) = rows else {
            return Err("edges: not an array".into());
        };
        let mut edges = Edges::new();
        for row in rows.iter() {
            let sdb::Value::Object(o) = row else {
                return Err("edges: not a row".into());
            };
            let (Some(sdb::Value::RecordId(out)), Some(sdb::Value::Number(sdb::Number::Int(v)))) =
                (o.get("out"), o.get("version"))
            else {
                return Err(format!("edge row {}", sdb::ToSql::to_sql(row)));
            };
            let out = record_id_from_surreal(out).ok_or("an edge to a range")?;
            edges.insert(out, u64::try_from(*v).map_err(|e| e.to_string())?);
        }
        Ok(edges)
    }

    /// SurrealDB's own answer to a view's query.
    async fn answer(&self, def: &ViewDef) -> Result<BTreeSet<RecordId>, String> {
        let run = |sql: String| async move {
            let mut q = DbQuery::new(sql);
            if let sdb::Value::Object(params) = def.surreal_params() {
                for (k, v) in params.into_inner() {
                    q.set(k, v);
                }
            }
            let mut r = self.db.run(q).await.map_err(|e| e.to_string())?;
            r.take::<sdb::Value>(0).map_err(|e| e.to_string())
        };
        let v = run(def.members_sql()).await?;
        let mut out = BTreeSet::new();
        flatten_answer(&v, &def.q.members_query(), &mut out, &mut 0)?;
        if def.q.count.is_some() {
            def.check_count(&run(def.sql()).await?, &out)?;
        }
        Ok(out)
    }

    /// Every registered view: its edges are SurrealDB's answer, and no
    /// version is more than its record's changes justify.
    async fn check(&self, si: usize, stats: &mut MixedStats) -> Result<(), Failure> {
        for (vid, di) in &self.active {
            let def = self.case.views[*di].as_ref().expect("active views exist");
            stats.checks += 1;
            let want = self
                .answer(def)
                .await
                .map_err(|e| fail(Kind::Surreal, si, Some(*di), format!("view query: {e}")))?;
            let edges = self
                .edges(vid)
                .await
                .map_err(|e| fail(Kind::Surreal, si, Some(*di), e))?;
            let got: BTreeSet<RecordId> = edges.keys().cloned().collect();
            if !want.is_empty() {
                stats.nonempty += 1;
            }
            if want != got {
                let detail: Vec<String> = want
                    .symmetric_difference(&got)
                    .map(|r| match self.held.get(r) {
                        Some(v) => format!("{r} = {}", lit(v)),
                        None => format!("{r} not in SurrealDB"),
                    })
                    .collect();
                let mut f = fail(Kind::Mismatch, si, Some(*di), detail.join("; "));
                f.surreal = want;
                f.engine = got;
                return Err(f);
            }
            for (r, v) in &edges {
                stats.edges_checked += 1;
                let justified = self.changes.get(r).copied().unwrap_or(0);
                if *v < 1 || *v > justified {
                    return Err(fail(
                        Kind::Delta,
                        si,
                        Some(*di),
                        format!("{r} has version {v}, but {justified} writes changed it"),
                    ));
                }
            }
        }
        Ok(())
    }
}
