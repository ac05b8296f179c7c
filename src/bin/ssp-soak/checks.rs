//! The checks at the end: every view's edges against SurrealDB's own answer,
//! and the API against the edges.

use super::*;

/// A param as SurrealDB must see it: `table:key` strings of the soak's tables
/// are record links (SSP reads them so in JSON; SurrealDB needs the type).
pub(crate) fn param_to_surreal(j: &Json) -> sdb::Value {
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
pub(crate) fn collect_ids(v: &sdb::Value, out: &mut BTreeSet<String>) {
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
pub(crate) struct ViewMismatch {
    pub(crate) view: String,
    pub(crate) sql: String,
    pub(crate) params: Json,
    pub(crate) edges: usize,
    pub(crate) expected: usize,
    pub(crate) missing: Vec<String>,
    pub(crate) extra: Vec<String>,
}

#[derive(Serialize, Default)]
pub(crate) struct FinalChecks {
    pub(crate) views_in_db: usize,
    pub(crate) edges_in_db: usize,
    pub(crate) views_compared: usize,
    pub(crate) edge_mismatches: Vec<ViewMismatch>,
    pub(crate) evaluation_errors: Vec<String>,
    /// Edges whose view has no `_spooky_query` row.
    pub(crate) orphan_edges: Vec<String>,
    /// Records whose edges carry different versions in the final state.
    pub(crate) version_skew: Vec<String>,
    /// `GET /view/{id}` against the view's edges, before SSP was stopped.
    pub(crate) api_mismatches: Vec<String>,
    /// Views that should exist and do not, or should be gone and are not, or
    /// hold other params than the last registration SSP confirmed.
    pub(crate) lifecycle: Vec<String>,
    /// Worth knowing, not failures.
    pub(crate) notes: Vec<String>,
}

pub(crate) async fn final_snapshot(
    conn: &Conn,
) -> Result<(Vec<(String, String, Json)>, Edges), String> {
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

pub(crate) async fn evaluate(
    conn: &Conn,
    sql: &str,
    params: &Json,
) -> Result<BTreeSet<String>, String> {
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

pub(crate) fn by_view(edges: &Edges) -> BTreeMap<&str, BTreeMap<&str, i64>> {
    let mut out: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    for ((view, rec), version) in edges {
        out.entry(view).or_default().insert(rec, *version);
    }
    out
}

/// Waits until the edges stop changing and SSP's queue is empty.
pub(crate) async fn settle(ctx: &Ctx, limit: Duration) -> (bool, f64) {
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
pub(crate) async fn view_edges(conn: &Conn, id: &str) -> Result<BTreeMap<String, i64>, String> {
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
pub(crate) async fn api_check(ctx: &Ctx, out: &mut Vec<String>) {
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

pub(crate) async fn final_checks(
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
