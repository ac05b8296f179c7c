//! Defects found by hostile input and crash tests, one test each: versions
//! that must never go back, a re-registration that must move every edge to
//! the new client, refusals that must change nothing (the schema included),
//! SSP's own tables, and edges that must re-converge after the database
//! refused a write for good.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use ssp::db::{Db, Query};
use ssp::engine::value::{RecordId, Value as EValue};
use ssp::engine::{Change, Engine, ViewMeta};
use ssp::sink::reconcile::{read_edges, reconcile};
use ssp::sink::{EdgeChanges, EdgeSink};
use surrealdb::types as sdb;

use crate::pipeline::{change, edges, ingest, post, register, view_edges};
use crate::support::process::SspProcess;
use crate::support::{Backend, TestApp, TestDb, wait_for};

/// The tables defined in the database (`INFO FOR DB`).
async fn tables(db: &Db) -> Vec<String> {
    let mut res = db
        .run(Query::new("INFO FOR DB"))
        .await
        .expect("INFO FOR DB");
    let info: sdb::Value = res.take(0).expect("info");
    let sdb::Value::Object(info) = info else {
        panic!("INFO FOR DB: {info:?}")
    };
    let Some(sdb::Value::Object(tables)) = info.get("tables") else {
        panic!("INFO FOR DB has no tables: {info:?}")
    };
    let mut names: Vec<String> = tables.keys().cloned().collect();
    names.sort();
    names
}

/// (view, record) -> clientId, as the database holds the edges.
async fn edge_clients(db: &Db) -> BTreeMap<(String, String), String> {
    let mut res = db
        .run(Query::new(
            "SELECT record::id(in) AS view, <string> out AS out, clientId FROM _spooky_list_ref",
        ))
        .await
        .expect("read edges");
    let rows = res.take_json(0).expect("rows");
    rows.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            (
                (
                    r["view"].as_str().unwrap_or_default().to_owned(),
                    r["out"].as_str().unwrap_or_default().to_owned(),
                ),
                r["clientId"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A refused registration defines no table: the params are checked before
/// the tables the view reads are set up.
async fn a_refused_registration_changes_no_schema(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = tables(&app.db).await;
    for (sql, params) in [
        ("SELECT * FROM freshtable LIMIT $n", json!({"n": "x"})),
        ("SELECT * FROM freshtable START $s", json!({"s": -1})),
        (
            "SELECT *, (SELECT * FROM freshtwo LIMIT $n) AS x FROM freshtable",
            json!({"n": [1]}),
        ),
    ] {
        let (status, body) = post(
            &app,
            "/view/register",
            json!({"id": "w", "sql": sql, "params": params, "clientId": "c"}),
        )
        .await;
        assert!(
            status.is_client_error(),
            "{sql} {params} -> {status} {body}"
        );
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(tables(&app.db).await, before, "a 4xx defines no table");
    app.stop().await;
}
backend_tests!(a_refused_registration_changes_no_schema);

/// SSP's own tables change with every edge it writes: a view over them
/// would feed itself, and an app has no business ingesting them.
async fn ssps_own_tables_are_not_views_tables(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(&app, "v", "SELECT * FROM thread", json!({})).await;
    ingest(&app, change("CREATE", "thread:1", json!({"a": 1}))).await;
    let before = edges(&app).await;
    for sql in [
        "SELECT * FROM _spooky_list_ref",
        "SELECT * FROM _spooky_query WHERE clientId = 'c'",
        "SELECT *, (SELECT * FROM _spooky_list_ref WHERE in = $parent.id) AS e FROM thread",
    ] {
        let (status, body) = post(
            &app,
            "/view/register",
            json!({"id": "self", "sql": sql, "clientId": "c"}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{sql} -> {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("_spooky_"),
            "{body}"
        );
    }
    let (status, body) = post(
        &app,
        "/ingest",
        change("UPDATE", "_spooky_list_ref:x", json!({"version": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(edges(&app).await, before, "nothing changed");
    app.stop().await;
}
backend_tests!(ssps_own_tables_are_not_views_tables);

/// Edges carry the client id: re-registering a view for another client moves
/// every edge to it, the records that stayed included.
async fn re_registering_for_another_client_moves_every_edge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..4 {
        ingest(
            &app,
            change("CREATE", &format!("thread:{i}"), json!({"n": i})),
        )
        .await;
    }
    let register_for = |client: &'static str, min: i64| {
        let app = &app;
        async move {
            let (status, body) = post(
                app,
                "/view/register",
                json!({"id": "v", "sql": "SELECT * FROM thread WHERE n >= $min",
                       "params": {"min": min}, "clientId": client}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    register_for("old-client", 0).await;
    // Same query: every record stays. Then another query: some stay, some leave.
    register_for("new-client", 0).await;
    let clients = edge_clients(&app.db).await;
    assert_eq!(clients.len(), 4, "{clients:?}");
    assert!(clients.values().all(|c| c == "new-client"), "{clients:?}");
    register_for("third-client", 2).await;
    let clients = edge_clients(&app.db).await;
    assert_eq!(clients.len(), 2, "{clients:?}");
    assert!(clients.values().all(|c| c == "third-client"), "{clients:?}");
    app.stop().await;
}
backend_tests!(re_registering_for_another_client_moves_every_edge);

/// The database refuses the edge writes for good (a field assertion here):
/// the ingest gets a 500 that says so, and once the database takes writes
/// again the edges re-converge with the engine without a restart.
async fn edges_re_converge_after_a_refused_commit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(&app, "v", "SELECT * FROM thread", json!({})).await;
    ingest(&app, change("CREATE", "thread:1", json!({"n": 1}))).await;
    let refuse = "DEFINE FIELD OVERWRITE version ON _spooky_list_ref TYPE int ASSERT $value < 0";
    app.db
        .run(Query::new(refuse))
        .await
        .expect("refuse edge writes");

    let (status, body) = post(
        &app,
        "/ingest",
        json!([
            change("UPDATE", "thread:1", json!({"n": 2})),
            change("CREATE", "thread:2", json!({"n": 3}))
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["code"], "write_failed", "{body}");
    let health = app.get_json("/health").await;
    assert_eq!(health["pipeline"]["diverged"], true, "{health}");
    assert_eq!(
        view_edges(&app, "v").await,
        BTreeMap::from([("thread:1".to_owned(), 1)]),
        "the refused write left the old edges"
    );

    let accept = "DEFINE FIELD OVERWRITE version ON _spooky_list_ref TYPE int";
    app.db
        .run(Query::new(accept))
        .await
        .expect("accept edge writes");
    let want = BTreeMap::from([("thread:1".to_owned(), 2), ("thread:2".to_owned(), 1)]);
    wait_for(
        "the edges to re-converge",
        Duration::from_secs(30),
        || async { (view_edges(&app, "v").await == want).then_some(()) },
    )
    .await;
    wait_for(
        "/health to stop saying diverged",
        Duration::from_secs(10),
        || async {
            let health = app.get_json("/health").await;
            (health["pipeline"]["diverged"] == false).then_some(())
        },
    )
    .await;
    app.stop().await;
}
backend_tests!(edges_re_converge_after_a_refused_commit);

/// kill -9 after commits the state file has not caught up with: the version
/// of a record must never go below what its edge already showed, or a
/// client caching by version never refetches it.
#[test]
fn versions_never_go_back_after_kill_9() {
    crate::support::run(async {
        let test_db = TestDb::start(Backend::Ws).await;
        let db = Db::connect(&test_db.settings().surrealdb)
            .await
            .expect("test connection");
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state.json");
        let http = reqwest::Client::new();
        let spawn = || {
            SspProcess::spawn(
                dir.path(),
                &test_db.url(),
                &[("SPOOKY_SAVE_DEBOUNCE_MS", "2000")],
            )
        };
        let saved_version = || {
            let text = std::fs::read_to_string(&state).ok()?;
            let file: Value = serde_json::from_str(&text).ok()?;
            // The only record.
            file["engine"]["records"][0]["version"].as_u64()
        };
        let db = &db;
        let edge_version = || async {
            let q = Query::new("SELECT VALUE version FROM _spooky_list_ref");
            let mut res = db.run(q).await.expect("edges");
            res.take_json(0).expect("versions")[0].as_u64()
        };
        // Written in SurrealDB; the change worker delivers each write.
        let write = |n: i64| async move {
            let q = Query::new("UPSERT thread:1 SET n = $n").bind("n", n);
            db.run(q).await.expect("write thread:1");
        };
        let edge_reaches = |want: u64| async move {
            wait_for("the edge's version", Duration::from_secs(20), || async {
                (edge_version().await >= Some(want)).then_some(())
            })
            .await;
        };

        let mut p = spawn();
        p.wait_up(&http).await;
        let res = http
            .post(format!("{}/view/register", p.base))
            .bearer_auth(&p.secret)
            .json(&json!({"id": "v", "sql": "SELECT * FROM thread", "clientId": "c"}))
            .send()
            .await
            .expect("register");
        assert!(res.status().is_success());
        write(0).await;
        edge_reaches(1).await;
        wait_for(
            "version 1 in the state file",
            Duration::from_secs(20),
            || async { (saved_version() == Some(1)).then_some(()) },
        )
        .await;
        // Two more versions, committed, then kill -9 before the next save.
        write(1).await;
        edge_reaches(2).await;
        write(2).await;
        edge_reaches(3).await;
        p.signal("-KILL");
        p.wait();
        assert_eq!(edge_version().await, Some(3));
        let saved = saved_version();
        assert!(
            saved.is_some_and(|v| v < 3),
            "the state file ({saved:?}) must be older than the edges, else this test proves nothing"
        );

        let mut p = spawn();
        p.wait_up(&http).await;
        // The restart may bump the version once more (the replayed feed
        // brings content the stale state did not have), never lower it.
        let after_restart = wait_for("SSP to settle", Duration::from_secs(20), || async {
            let v = edge_version().await?;
            tokio::time::sleep(Duration::from_millis(600)).await;
            (edge_version().await == Some(v)).then_some(v)
        })
        .await;
        assert!(
            after_restart >= 3,
            "the edge went back to version {after_restart}"
        );
        write(7).await;
        edge_reaches(after_restart + 1).await;
        p.signal("-TERM");
        p.wait();
    });
}

/// While the database is down, SSP holds a bounded amount of request
/// bodies: past it, requests are answered 503 `not_queued` without being
/// read. Each answer tells the truth: every change answered `db_unavailable`
/// (queued) is committed once the database is back, and none answered
/// `not_queued` is.
async fn bodies_in_flight_are_bounded_and_503s_tell_the_truth(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    // Bodies of at most 2 KiB: the budget is 64 such bodies.
    let settings = test_db.settings_with(&[("SPOOKY_BODY_LIMIT_BYTES", "2048")]);
    let app = std::sync::Arc::new(TestApp::spawn_on(test_db, settings).await);
    register(&app, "v", "SELECT * FROM thread", json!({})).await;
    app.test_db.proxy().stop();
    app.test_db.proxy().cut();
    let mut tasks = Vec::new();
    for i in 0..120 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let body = change(
                "CREATE",
                &format!("thread:{i}"),
                json!({"pad": "x".repeat(1500)}),
            );
            let res = app.post("/ingest").json(&body).send().await;
            let (status, code) = match res {
                Ok(res) => {
                    let status = res.status();
                    let body: Value = res.json().await.unwrap_or(Value::Null);
                    (status, body["code"].as_str().unwrap_or_default().to_owned())
                }
                Err(e) => panic!("ingest {i}: {e}"),
            };
            (format!("thread:{i}"), status, code)
        }));
    }
    let mut queued = Vec::new();
    let mut not_queued = 0;
    for t in tasks {
        let (id, status, code) = t.await.expect("task");
        match (status, code.as_str()) {
            (StatusCode::SERVICE_UNAVAILABLE, "db_unavailable") => queued.push(id),
            (StatusCode::SERVICE_UNAVAILABLE, "not_queued") => not_queued += 1,
            other => panic!("{id}: unexpected answer {other:?}"),
        }
    }
    assert!(not_queued > 0, "the body budget turned no request away");
    assert!(!queued.is_empty(), "some requests were queued");
    app.test_db.proxy().start().await;
    queued.sort();
    wait_for(
        "every queued change to commit",
        Duration::from_secs(60),
        || async {
            let mut have: Vec<String> = view_edges(&app, "v").await.into_keys().collect();
            have.sort();
            (have == queued).then_some(())
        },
    )
    .await;
}
backend_tests!(bodies_in_flight_are_bounded_and_503s_tell_the_truth: ws);

/// SurrealDB orders the projected rows: `ORDER BY` an alias of a computed
/// field sorts on the computed value, where SSP's engine would sort records
/// on their stored fields and cut another window. Such a view runs in the
/// re-query tier and its edges are SurrealDB's answer; ordering by stored
/// fields, or by an alias that only renames one, stays incremental. Either
/// way the edges follow SurrealDB as the data changes.
async fn order_by_a_computed_field_follows_surrealdb(backend: Backend) {
    use crate::worker::{View, direct_db, rid, run, wait_agree};
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    for (k, title) in [(1, "b"), (2, "C"), (3, "a")] {
        run(
            &db,
            "UPSERT $id SET title = $t, n = $k",
            vec![
                ("id", rid("t", k)),
                ("t", sdb::Value::String(title.into())),
                ("k", sdb::Value::Number(sdb::Number::Int(k))),
            ],
        )
        .await;
    }
    let views = [
        View {
            id: "w1",
            sql: "SELECT *, title AS score FROM t ORDER BY score DESC LIMIT 1",
        },
        View {
            id: "w2",
            sql: "SELECT *, string::lowercase(title) AS k FROM t ORDER BY k LIMIT 2",
        },
        View {
            id: "w3",
            sql: "SELECT *, title AS a.b FROM t ORDER BY a LIMIT 1",
        },
        View {
            id: "w4",
            sql: "SELECT *, (SELECT *, n AS m FROM t ORDER BY m DESC LIMIT 1) AS x FROM t",
        },
        // A value SSP does not evaluate is computed whatever its name.
        View {
            id: "w5",
            sql: "SELECT *, count(<-t) AS title FROM t ORDER BY title DESC LIMIT 1",
        },
    ];
    // An alias that only renames a stored field sorts on that field, in
    // the engine; a computed one (or one written around the order path)
    // is SurrealDB's to sort.
    for (v, tier) in views.iter().zip([
        "incremental",
        "requery",
        "requery",
        "incremental",
        "requery",
    ]) {
        let (status, body) = post(
            &app,
            "/view/register",
            json!({"id": v.id, "sql": v.sql, "clientId": "c"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{} -> {body}", v.sql);
        assert_eq!(body["tier"]["kind"], tier, "{body}");
        if tier == "requery" {
            assert!(
                body["tier"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("ORDER BY"),
                "{body}"
            );
        }
    }
    wait_agree(&db, &views, Duration::from_secs(5)).await;
    run(
        &db,
        "UPDATE $id SET title = 'zz'",
        vec![("id", rid("t", 3))],
    )
    .await;
    wait_agree(&db, &views, Duration::from_secs(5)).await;
    for sql in [
        "SELECT *, title AS title FROM t ORDER BY title LIMIT 1",
        "SELECT *, title AS score FROM t ORDER BY title LIMIT 1",
    ] {
        let body = register(&app, "ok", sql, json!({})).await;
        assert_eq!(body["tier"]["kind"], "incremental", "{body}");
    }
    app.stop().await;
}
backend_tests!(order_by_a_computed_field_follows_surrealdb);

/// kill -9 after heartbeats the state file has not caught up with: the view
/// rows hold the newer `lastActiveAt` (and a re-registration's new client),
/// and the restart takes them, so views kept alive by heartbeats do not
/// expire at the first sweep.
#[test]
fn heartbeats_and_re_registrations_survive_kill_9() {
    crate::support::run(async {
        let test_db = TestDb::start(Backend::Ws).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state.json");
        let http = reqwest::Client::new();
        let spawn = || {
            SspProcess::spawn(
                dir.path(),
                &test_db.url(),
                &[("SPOOKY_SAVE_DEBOUNCE_MS", "2000")],
            )
        };
        let post = |p: &SspProcess, path: &str, body: Value| {
            http.post(format!("{}{path}", p.base))
                .bearer_auth(&p.secret)
                .json(&body)
                .send()
        };
        let saved = || std::fs::read_to_string(&state).unwrap_or_default();

        let mut p = spawn();
        p.wait_up(&http).await;
        // Active 50 s ago, with a 60 s TTL: alive now, expired in 10 s
        // unless the heartbeat below counts.
        let long_ago = (chrono::Utc::now() - chrono::Duration::seconds(50)).to_rfc3339();
        for (id, client) in [("kept", "c"), ("moved", "old-client")] {
            let res = post(
                &p,
                "/view/register",
                json!({"id": id, "sql": "SELECT * FROM thread", "clientId": client,
                       "ttl": "60s", "lastActiveAt": long_ago}),
            )
            .await
            .expect("register");
            assert!(res.status().is_success());
        }
        wait_for(
            "both views in the state file",
            Duration::from_secs(20),
            || async {
                let text = saved();
                (text.contains("\"kept\"") && text.contains("old-client")).then_some(())
            },
        )
        .await;
        let beat: Value = post(&p, "/view/heartbeat", json!({"id": "kept"}))
            .await
            .expect("heartbeat")
            .json()
            .await
            .expect("heartbeat body");
        let res = post(
            &p,
            "/view/register",
            json!({"id": "moved", "sql": "SELECT * FROM thread", "clientId": "new-client",
                   "ttl": "60s", "lastActiveAt": long_ago}),
        )
        .await
        .expect("re-register");
        assert!(res.status().is_success());
        p.signal("-KILL");
        p.wait();
        assert!(
            saved().contains("old-client"),
            "the state file must be older than the rows, else this test proves nothing"
        );

        let mut p = spawn();
        p.wait_up(&http).await;
        let view = |id: &'static str| {
            let p = &p;
            let http = &http;
            async move {
                let res = http
                    .get(format!("{}/view/{id}", p.base))
                    .bearer_auth(&p.secret)
                    .send()
                    .await
                    .expect("GET /view");
                assert_eq!(res.status(), StatusCode::OK, "{id} is still registered");
                res.json::<Value>().await.expect("view body")
            }
        };
        let kept = view("kept").await;
        let at = |v: &Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
                .expect("an RFC 3339 time")
        };
        assert_eq!(
            at(&kept["lastActiveAt"]),
            at(&beat["lastActiveAt"]),
            "the heartbeat counts after the restart"
        );
        assert_eq!(view("moved").await["clientId"], "new-client");
        p.signal("-TERM");
        p.wait();
    });
}

/// kill -9 after a record left its view: the versions its edge showed are
/// on no edge any more, and the state file, older, has the record back in
/// the view at an older version. When it comes back into the view after the
/// restart, its version must be above every version a client saw.
#[test]
fn a_version_seen_on_a_deleted_edge_survives_kill_9() {
    crate::support::run(async {
        let test_db = TestDb::start(Backend::Ws).await;
        let db = Db::connect(&test_db.settings().surrealdb)
            .await
            .expect("test connection");
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state.json");
        let http = reqwest::Client::new();
        let spawn = || {
            SspProcess::spawn(
                dir.path(),
                &test_db.url(),
                &[("SPOOKY_SAVE_DEBOUNCE_MS", "2000")],
            )
        };
        let saved_version = || {
            let text = std::fs::read_to_string(&state).ok()?;
            let file: Value = serde_json::from_str(&text).ok()?;
            // The only record.
            file["engine"]["records"][0]["version"].as_u64()
        };
        let db = &db;
        let edge_version = || async {
            let q = Query::new("SELECT VALUE version FROM _spooky_list_ref");
            let mut res = db.run(q).await.expect("edges");
            res.take_json(0).expect("versions")[0].as_u64()
        };
        // Written in SurrealDB; the change worker delivers each write.
        let write = |n: i64| async move {
            let q = Query::new("UPSERT thread:1 SET n = $n").bind("n", n);
            db.run(q).await.expect("write thread:1");
        };
        let edge_is = |want: Option<u64>| async move {
            wait_for("the edge", Duration::from_secs(20), || async {
                (edge_version().await == want).then_some(())
            })
            .await;
        };

        let mut p = spawn();
        p.wait_up(&http).await;
        let res = http
            .post(format!("{}/view/register", p.base))
            .bearer_auth(&p.secret)
            .json(&json!({"id": "v", "sql": "SELECT * FROM thread WHERE n < 10", "clientId": "c"}))
            .send()
            .await
            .expect("register");
        assert!(res.status().is_success());
        write(0).await;
        edge_is(Some(1)).await;
        wait_for(
            "version 1 in the state file",
            Duration::from_secs(20),
            || async { (saved_version() == Some(1)).then_some(()) },
        )
        .await;
        // Versions 2 to 4 seen on the edge, then the record leaves the view
        // (its edge is deleted), and kill -9 before the next save.
        for (n, version) in [(1, 2), (3, 3), (5, 4)] {
            write(n).await;
            edge_is(Some(version)).await;
        }
        write(20).await;
        edge_is(None).await;
        p.signal("-KILL");
        p.wait();
        let saved = saved_version();
        assert!(
            saved.is_some_and(|v| v < 4),
            "the state file ({saved:?}) must be older than the edges, else this test proves nothing"
        );

        let mut p = spawn();
        p.wait_up(&http).await;
        write(2).await;
        let back = wait_for(
            "the record back in the view",
            Duration::from_secs(20),
            edge_version,
        )
        .await;
        assert!(
            back > 4,
            "the record came back at version {back}; clients saw version 4 before"
        );
        p.signal("-TERM");
        p.wait();
    });
}

/// As above, but SurrealDB deletes the edge itself: the view's row is
/// deleted in the database, which takes its edges with it (the soak found
/// it). The version that edge showed must still bound the record's version
/// after a kill -9, when the record enters another view.
#[test]
fn a_version_on_an_edge_the_database_deleted_survives_kill_9() {
    crate::support::run(async {
        let test_db = TestDb::start(Backend::Ws).await;
        let db = Db::connect(&test_db.settings().surrealdb)
            .await
            .expect("test connection");
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state.json");
        let http = reqwest::Client::new();
        let spawn = || {
            SspProcess::spawn(
                dir.path(),
                &test_db.url(),
                &[("SPOOKY_SAVE_DEBOUNCE_MS", "2000")],
            )
        };
        let saved_version = || {
            let text = std::fs::read_to_string(&state).ok()?;
            let file: Value = serde_json::from_str(&text).ok()?;
            file["engine"]["records"][0]["version"].as_u64()
        };
        let db = &db;
        let edge_version = |view: &'static str| async move {
            let q = Query::new("SELECT VALUE version FROM _spooky_list_ref WHERE in = $row").bind(
                "row",
                surrealdb::types::RecordId::new("_spooky_query", view.to_owned()),
            );
            let mut res = db.run(q).await.expect("edges");
            res.take_json(0).expect("versions")[0].as_u64()
        };
        let write = |n: i64| async move {
            let q = Query::new("UPSERT thread:1 SET n = $n").bind("n", n);
            db.run(q).await.expect("write thread:1");
        };
        let register = |p: &SspProcess, id: &'static str| {
            http.post(format!("{}/view/register", p.base))
                .bearer_auth(&p.secret)
                .json(
                    &json!({"id": id, "sql": "SELECT * FROM thread WHERE n < 10", "clientId": "c"}),
                )
                .send()
        };

        let mut p = spawn();
        p.wait_up(&http).await;
        assert!(
            register(&p, "a")
                .await
                .expect("register")
                .status()
                .is_success()
        );
        write(0).await;
        wait_for(
            "version 1 in the state file",
            Duration::from_secs(20),
            || async { (saved_version() == Some(1)).then_some(()) },
        )
        .await;
        for (n, version) in [(1, 2), (3, 3), (5, 4)] {
            write(n).await;
            wait_for("the edge", Duration::from_secs(20), || async {
                (edge_version("a").await == Some(version)).then_some(())
            })
            .await;
        }
        // Deleted in SurrealDB: the row and, with it, its edge.
        db.run(Query::new("DELETE _spooky_query:a"))
            .await
            .expect("delete the row");
        p.signal("-KILL");
        p.wait();
        let saved = saved_version();
        assert!(
            saved.is_some_and(|v| v < 4),
            "the state file ({saved:?}) must be older than the edges, else this test proves nothing"
        );
        assert_eq!(
            edge_version("a").await,
            None,
            "the database deleted the edge"
        );

        let mut p = spawn();
        p.wait_up(&http).await;
        assert!(
            register(&p, "b")
                .await
                .expect("register")
                .status()
                .is_success()
        );
        let back = wait_for("the record in view b", Duration::from_secs(20), || {
            edge_version("b")
        })
        .await;
        assert!(
            back >= 4,
            "the record entered view b at version {back}; clients saw version 4 before"
        );
        p.signal("-TERM");
        p.wait();
    });
}

/// The startup reconcile on an engine restored from a state file older than
/// the database (a kill -9): the state holds thread:1 in the view, but it
/// has left the view since, and thread:2 (version 2), which the database
/// has deleted since. Their edges are gone. The reconcile must not write
/// them again from the stale state (at its older versions, until the change
/// worker's catch-up takes them back): it reads those records again first.
/// And when the catch-up replays an older state of thread:2 before its
/// delete, it comes back above version 2, not as a new record at 1.
async fn the_startup_reconcile_writes_no_edge_from_stale_records(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let db = Arc::new(
        Db::connect(&test_db.settings().surrealdb)
            .await
            .expect("test connection"),
    );
    ssp::db::migrations::migrate(&db).await.expect("migrate");
    let thread = |k: i64, n: i64| {
        let EValue::Object(content) = EValue::from(&json!({ "n": n })) else {
            panic!("an object")
        };
        Change {
            id: RecordId::parse(&format!("thread:{k}")).expect("a record id"),
            content: Some(content),
        }
    };
    // The state file: three threads, all in the view.
    let mut engine = Engine::new();
    engine.apply_batch(&[thread(1, 0), thread(2, 0), thread(3, 0)]);
    engine.apply_batch(&[thread(2, 1)]);
    let meta = ViewMeta {
        id: "v".into(),
        client_id: "c".into(),
        sql: "SELECT * FROM thread WHERE n < 10".into(),
        params: Default::default(),
        ttl: "1h".into(),
        last_active_at: chrono::Utc::now(),
        owner: None,
    };
    engine.register(meta.clone()).expect("register");
    // The database now: thread:1 out of the view, thread:2 deleted,
    // thread:3 unchanged and its edge in place.
    let sink = EdgeSink::with_writers(Arc::clone(&db), 1).await;
    sink.upsert_view(&meta, false).await.expect("view row");
    db.run(Query::new(
        "CREATE thread:1 SET n = 20; CREATE thread:3 SET n = 0; \
         INSERT RELATION INTO _spooky_list_ref \
         {id: _spooky_list_ref:['v', thread:3], in: _spooky_query:v, out: thread:3, clientId: 'c', version: 1}",
    ))
    .await
    .expect("the database since");
    let edges = || async {
        read_edges(&db, None)
            .await
            .expect("edges")
            .into_iter()
            .map(|e| (e.record.to_string(), e.version))
            .collect::<Vec<_>>()
    };

    reconcile(&mut engine, &sink).await.expect("reconcile");
    assert_eq!(edges().await, [("thread:3".to_owned(), 1)]);

    // The catch-up replays thread:2 as it was before its delete.
    let deltas = engine.apply_batch(&[thread(2, 0)]);
    let mut changes = EdgeChanges::default();
    changes.absorb(&deltas);
    sink.write(&changes).await.expect("write");
    let edges = edges().await;
    assert!(
        edges.iter().any(|(r, v)| r == "thread:2" && *v > 2),
        "thread:2 must come back above version 2: {edges:?}"
    );
}
backend_tests!(the_startup_reconcile_writes_no_edge_from_stale_records);
