//! Against the naive approach: re-running every view's SELECT after each change.

use super::*;

/// The naive approach: re-run every view's SELECT in SurrealDB per change,
/// against SSP's engine plus one edge transaction.
pub(crate) fn naive(results: &mut Results, mode: Mode, runtime: &tokio::runtime::Runtime, db: &Db) {
    // The same forum as the engine rows, at 5,000 records and the issue's
    // 1,000 views, loaded into SurrealDB with links as record ids.
    let views_n = if mode.smoke { 8 } else { 1_000 };
    let forum = Forum::sized(if mode.smoke { 400 } else { 5_000 });
    let naive_changes = if mode.smoke { 2 } else { 3 };
    let ssp_changes = if mode.smoke { 20 } else { 300 };
    let mut rng = StdRng::seed_from_u64(9);
    let users: Vec<Change> = (0..forum.users).map(|i| forum.user(i)).collect();
    let threads: Vec<Change> = (0..forum.threads)
        .map(|i| forum.thread(i, &mut rng))
        .collect();
    let comments: Vec<Change> = (0..forum.comments)
        .map(|i| forum.comment(i, &mut rng, 0))
        .collect();
    let views = forum.views(views_n, &mut rng);
    // "20% of comments change": one comment's text, thread and author.
    let changes: Vec<Change> = (0..ssp_changes)
        .map(|_| forum.comment(rng.random_range(0..forum.comments), &mut rng, 1))
        .collect();

    let naive = runtime.block_on(async {
        // The earlier workloads' edges, in chunks: each deleted edge runs
        // the event that keeps its version (migration 0003), and one
        // statement over every edge outlasts the call timeout.
        loop {
            let mut r = db
                .run(ssp::db::Query::new(
                    "LET $ids = SELECT VALUE id FROM _spooky_list_ref LIMIT 2000; \
                     DELETE $ids RETURN NONE; RETURN array::len($ids);",
                ))
                .await
                .expect("naive: clear the edges");
            let left: Option<i64> = r.take(2).expect("naive: count the edges cleared");
            if left.unwrap_or(0) == 0 {
                break;
            }
        }
        db.run(ssp::db::Query::new(
            "REMOVE TABLE IF EXISTS user; REMOVE TABLE IF EXISTS thread; REMOVE TABLE IF EXISTS comment; \
             DEFINE TABLE user; DEFINE TABLE thread; DEFINE TABLE comment;",
        ))
        .await
        .expect("naive: clear the forum tables");
        for (table, rows) in [
            ("user", &users),
            ("thread", &threads),
            ("comment", &comments),
        ] {
            for chunk in rows.chunks(500) {
                let rows = Value::Array(
                    chunk
                        .iter()
                        .map(|c| {
                            let mut row =
                                linked(&Value::Object(c.content.clone().unwrap_or_default()));
                            if let Value::Object(o) = &mut row {
                                o.insert("id".into(), Value::thing(c.id.clone()));
                            }
                            row
                        })
                        .collect(),
                );
                // The table name is one of three constants, not input.
                db.run(
                    ssp::db::Query::new(format!("INSERT INTO {table} $rows"))
                        .bind("rows", to_surreal(&rows)),
                )
                .await
                .expect("naive: load the forum");
            }
        }
        // Each view's query with its params bound, as an app would send it.
        let queries: Vec<ssp::db::Query> = views
            .iter()
            .map(|v| {
                let mut q = ssp::db::Query::new(v.sql.clone());
                for (k, p) in &v.params {
                    q.set(k.clone(), to_surreal(&linked(&Value::from(p))));
                }
                q
            })
            .collect();
        let mut previous: Vec<std::collections::HashMap<String, Json>> =
            vec![Default::default(); queries.len()];
        let run_all = async |previous: &mut Vec<std::collections::HashMap<String, Json>>| {
            let mut changed = 0usize;
            for (q, prev) in queries.iter().zip(previous.iter_mut()) {
                let rows = db
                    .run(q.clone())
                    .await
                    .expect("naive: select")
                    .take_json(0)
                    .expect("naive: rows");
                let now: std::collections::HashMap<String, Json> = rows
                    .as_array()
                    .map(|a| a.iter().map(|r| (r["id"].to_string(), r.clone())).collect())
                    .unwrap_or_default();
                // The diff an app needs to tell its clients what changed.
                changed += now.iter().filter(|(k, r)| prev.get(*k) != Some(*r)).count();
                changed += prev.keys().filter(|k| !now.contains_key(*k)).count();
                *prev = now;
            }
            changed
        };
        std::hint::black_box(run_all(&mut previous).await);
        let mut total = Duration::ZERO;
        for change in &changes[..naive_changes] {
            db.run(
                ssp::db::Query::new("UPSERT $id CONTENT $content")
                    .bind("id", to_surreal(&Value::thing(change.id.clone())))
                    .bind(
                        "content",
                        to_surreal(&linked(&Value::Object(
                            change.content.clone().unwrap_or_default(),
                        ))),
                    ),
            )
            .await
            .expect("naive: write the change");
            // Timed from after the write: both approaches need the write.
            let t = Instant::now();
            std::hint::black_box(run_all(&mut previous).await);
            total += t.elapsed();
        }
        us(total) / naive_changes as f64
    });

    // SSP for the same kind of change over the same data and views: the
    // engine's delta plus the one transaction that writes its edge changes.
    let mut engine = Engine::new();
    for rows in [&users, &threads, &comments] {
        engine.apply_batch(rows);
    }
    for v in views {
        engine.register(v).expect("plan");
    }
    let ssp_us = runtime.block_on(async {
        let mut total = Duration::ZERO;
        for change in &changes {
            let t = Instant::now();
            let deltas = engine.apply_batch(std::slice::from_ref(change));
            let mut edges = ssp::sink::EdgeChanges::default();
            edges.absorb(&deltas);
            if !edges.is_empty() {
                db.run(edges.to_query(chrono::Utc::now()))
                    .await
                    .expect("ssp: edge transaction");
            }
            total += t.elapsed();
        }
        us(total) / changes.len() as f64
    });
    results.add(
        &format!("naive: re-run {views_n} forum SELECTs and diff, per change"),
        naive,
        "us",
        None,
    );
    results.add(
        &format!("ssp: same change, {views_n} forum views (engine + edge tx)"),
        ssp_us,
        "us",
        None,
    );
    let ratio = naive / ssp_us;
    results.add(
        &format!("naive / ssp at {views_n} views"),
        ratio,
        "x",
        Some((">= 100x", ratio >= 100.0)),
    );
}

/// Links as SurrealDB record ids: the engine reads `"user:3"` in JSON as the
/// record it names (the JSON rule), SurrealDB needs the typed id to follow it.
pub(crate) fn linked(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("user:") || s.starts_with("thread:") => {
            RecordId::parse(s).map_or_else(|| v.clone(), Value::thing)
        }
        Value::Object(o) => Value::Object(Object::from_pairs(
            o.iter().map(|(k, v)| (k.clone(), linked(v))).collect(),
        )),
        _ => v.clone(),
    }
}
