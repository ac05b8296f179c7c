//! The HTTP API end to end: HTTP in,
//! SurrealDB edges out, on the embedded engine and over ws://.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use ssp::db::Query;
use ssp::db::values::record_id_from_surreal;
use surrealdb::types as sdb;

use crate::support::{Backend, TestApp, TestDb, wait_for};

/// (view, record) -> version, as the database holds the edges.
pub(crate) type Edges = BTreeMap<(String, String), i64>;

pub(crate) async fn edges(app: &TestApp) -> Edges {
    let mut res = app
        .db
        .run(Query::new(
            "SELECT record::id(in) AS view, out, version FROM _spooky_list_ref",
        ))
        .await
        .expect("read edges");
    let rows: Vec<sdb::Value> = res.take(0).expect("rows");
    let mut out = Edges::new();
    for row in rows {
        let sdb::Value::Object(o) = row else { continue };
        let view = match o.get("view") {
            Some(sdb::Value::String(s)) => s.clone(),
            other => panic!("edge view {other:?}"),
        };
        let Some(sdb::Value::RecordId(r)) = o.get("out") else {
            panic!("edge out")
        };
        let Some(sdb::Value::Number(sdb::Number::Int(v))) = o.get("version") else {
            panic!("edge version")
        };
        out.insert(
            (
                view,
                record_id_from_surreal(r).expect("a record id").to_string(),
            ),
            *v,
        );
    }
    out
}

/// The edges of one view: record -> version.
pub(crate) async fn view_edges(app: &TestApp, view: &str) -> BTreeMap<String, i64> {
    edges(app)
        .await
        .into_iter()
        .filter(|((v, _), _)| v == view)
        .map(|((_, r), version)| (r, version))
        .collect()
}

pub(crate) async fn count(app: &TestApp, table: &str) -> i64 {
    let mut res = app
        .db
        .run(
            Query::new("SELECT count() AS n FROM type::table($t) GROUP ALL")
                .bind("t", table.to_string()),
        )
        .await
        .expect("count");
    let rows: Vec<sdb::Value> = res.take(0).expect("rows");
    match rows.first() {
        Some(sdb::Value::Object(o)) => match o.get("n") {
            Some(sdb::Value::Number(sdb::Number::Int(n))) => *n,
            _ => 0,
        },
        _ => 0,
    }
}

pub(crate) async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let res = app.post(path).json(&body).send().await.expect("request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn ingest(app: &TestApp, body: Value) -> Value {
    let (status, body) = post(app, "/ingest", body).await;
    assert_eq!(status, StatusCode::OK, "ingest: {body}");
    body
}

pub(crate) fn change(op: &str, id: &str, record: Value) -> Value {
    let table = id.split(':').next().unwrap_or_default();
    json!({"table": table, "op": op, "id": id, "record": record})
}

pub(crate) async fn register(app: &TestApp, id: &str, sql: &str, params: Value) -> Value {
    let (status, body) = post(
        app,
        "/view/register",
        json!({"id": id, "sql": sql, "params": params, "clientId": "client-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "register: {body}");
    body
}

fn versions(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(r, v)| (r.to_string(), *v)).collect()
}

async fn round_trips(app: &TestApp) -> u64 {
    let body = app.get_json("/health").await;
    body["pipeline"]["round_trips"]
        .as_u64()
        .expect("round trips")
}

/// Every view's edges equal its result set in the engine.
pub(crate) async fn assert_edges_match_engine(app: &TestApp, views: &[&str]) {
    for v in views {
        let body = app.get_json(&format!("/view/{v}")).await;
        let engine: BTreeMap<String, i64> = body["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["version"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(view_edges(app, v).await, engine, "edges of {v} vs engine");
    }
}

async fn cases_1_to_7(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = register(
        &app,
        "v",
        "SELECT * FROM thread WHERE author = $uid",
        json!({"uid": "user:1"}),
    )
    .await;
    assert_eq!(body["records"], json!([]));
    assert!(view_edges(&app, "v").await.is_empty(), "1: no edges");
    let mut res = app
        .db
        .run(Query::new(
            "SELECT clientId, surql, params, ttl, lastActiveAt FROM _spooky_query:v",
        ))
        .await
        .unwrap();
    let row = res.take_json(0).unwrap();
    assert_eq!(row[0]["clientId"], "client-1", "1: row {row}");
    assert_eq!(row[0]["surql"], "SELECT * FROM thread WHERE author = $uid");
    assert_eq!(row[0]["params"], json!({"uid": "user:1"}));
    assert!(
        row[0]["ttl"].is_string() && row[0]["lastActiveAt"].is_string(),
        "1: {row}"
    );

    let s = ingest(
        &app,
        change(
            "CREATE",
            "thread:1",
            json!({"author": "user:1", "title": "a"}),
        ),
    )
    .await;
    assert_eq!(s["edges"]["created"], 1);
    assert_eq!(
        view_edges(&app, "v").await,
        versions(&[("thread:1", 1)]),
        "2"
    );
    ingest(
        &app,
        change("create", "thread:2", json!({"author": "user:2"})),
    )
    .await;
    assert_eq!(
        view_edges(&app, "v").await,
        versions(&[("thread:1", 1)]),
        "3"
    );
    ingest(
        &app,
        change(
            "UPDATE",
            "thread:1",
            json!({"author": "user:1", "title": "b"}),
        ),
    )
    .await;
    assert_eq!(
        view_edges(&app, "v").await,
        versions(&[("thread:1", 2)]),
        "4"
    );
    ingest(
        &app,
        change(
            "UPDATE",
            "thread:1",
            json!({"author": "user:2", "title": "b"}),
        ),
    )
    .await;
    assert!(view_edges(&app, "v").await.is_empty(), "5");
    ingest(
        &app,
        change("UPDATE", "thread:2", json!({"author": "user:1"})),
    )
    .await;
    assert_eq!(
        view_edges(&app, "v").await,
        versions(&[("thread:2", 2)]),
        "6"
    );
    ingest(
        &app,
        json!({"table": "thread", "op": "DELETE", "id": "thread:2"}),
    )
    .await;
    assert!(view_edges(&app, "v").await.is_empty(), "7");
    app.stop().await;
}
backend_tests!(cases_1_to_7);

const AUTHOR_VIEW: &str = "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author FROM thread ORDER BY title DESC LIMIT 10";

async fn cases_8_to_11(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(&app, "v", AUTHOR_VIEW, json!({})).await;
    ingest(
        &app,
        json!([
            change("CREATE", "user:1", json!({"name": "ann"})),
            change(
                "CREATE",
                "thread:1",
                json!({"author": "user:1", "title": "t1"})
            ),
        ]),
    )
    .await;
    assert_eq!(
        view_edges(&app, "v").await,
        versions(&[("thread:1", 1), ("user:1", 1)]),
        "8"
    );
    ingest(&app, change("UPDATE", "user:1", json!({"name": "ann2"}))).await;
    assert_eq!(
        view_edges(&app, "v").await,
        versions(&[("thread:1", 1), ("user:1", 2)]),
        "9"
    );
    let s = ingest(&app, change("CREATE", "user:2", json!({"name": "bob"}))).await;
    assert_eq!(s["views_affected"], 0, "9: unreferenced user");
    ingest(
        &app,
        change(
            "CREATE",
            "thread:2",
            json!({"author": "user:1", "title": "t2"}),
        ),
    )
    .await;
    ingest(
        &app,
        json!({"table": "thread", "op": "DELETE", "id": "thread:1"}),
    )
    .await;
    assert_eq!(
        view_edges(&app, "v").await,
        versions(&[("thread:2", 1), ("user:1", 2)]),
        "10a"
    );
    ingest(
        &app,
        json!({"table": "thread", "op": "DELETE", "id": "thread:2"}),
    )
    .await;
    assert!(view_edges(&app, "v").await.is_empty(), "10b");
    ingest(
        &app,
        change(
            "CREATE",
            "thread:1",
            json!({"author": "user:1", "title": "t1"}),
        ),
    )
    .await;
    ingest(
        &app,
        change(
            "UPDATE",
            "thread:1",
            json!({"author": "user:2", "title": "t1"}),
        ),
    )
    .await;
    assert_eq!(
        view_edges(&app, "v").await,
        versions(&[("thread:1", 2), ("user:2", 1)]),
        "11"
    );
    app.stop().await;
}
backend_tests!(cases_8_to_11);

async fn case_12_top_k(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(
        &app,
        "top",
        "SELECT * FROM post ORDER BY score DESC LIMIT 2",
        json!({}),
    )
    .await;
    for (i, score) in [(1, 10), (2, 20), (3, 30)] {
        ingest(
            &app,
            change("CREATE", &format!("post:{i}"), json!({"score": score})),
        )
        .await;
    }
    let ids = |e: BTreeMap<String, i64>| e.into_keys().collect::<Vec<_>>();
    assert_eq!(ids(view_edges(&app, "top").await), ["post:2", "post:3"]);
    ingest(&app, change("UPDATE", "post:1", json!({"score": 100}))).await;
    assert_eq!(ids(view_edges(&app, "top").await), ["post:1", "post:3"]);
    ingest(&app, change("UPDATE", "post:3", json!({"score": 0}))).await;
    assert_eq!(ids(view_edges(&app, "top").await), ["post:1", "post:2"]);
    app.stop().await;
}
backend_tests!(case_12_top_k);

async fn cases_13_14(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(
        &app,
        "v13",
        "SELECT * FROM item ORDER BY category ASC, score DESC LIMIT 2",
        json!({}),
    )
    .await;
    register(
        &app,
        "v14",
        "SELECT * FROM item WHERE (category = 'A' OR category = 'B') AND active = true",
        json!({}),
    )
    .await;
    ingest(
        &app,
        json!([
            change(
                "CREATE",
                "item:1",
                json!({"category": "A", "score": 10, "active": true})
            ),
            change(
                "CREATE",
                "item:2",
                json!({"category": "A", "score": 20, "active": false})
            ),
            change(
                "CREATE",
                "item:3",
                json!({"category": "B", "score": 10, "active": true})
            ),
            change(
                "CREATE",
                "item:4",
                json!({"category": "A", "score": 30, "active": true})
            ),
        ]),
    )
    .await;
    let ids = |e: BTreeMap<String, i64>| e.into_keys().collect::<Vec<_>>();
    assert_eq!(ids(view_edges(&app, "v13").await), ["item:2", "item:4"]);
    assert_eq!(
        ids(view_edges(&app, "v14").await),
        ["item:1", "item:3", "item:4"]
    );
    app.stop().await;
}
backend_tests!(cases_13_14);

async fn case_15_two_views_one_transaction_and_cleanup(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(
        &app,
        "a",
        "SELECT * FROM thread WHERE author = $uid",
        json!({"uid": "user:1"}),
    )
    .await;
    register(&app, "b", "SELECT * FROM thread", json!({})).await;
    ingest(
        &app,
        change("CREATE", "thread:1", json!({"author": "user:1"})),
    )
    .await;
    let before = round_trips(&app).await;
    let s = ingest(
        &app,
        change("UPDATE", "thread:1", json!({"author": "user:1", "x": 1})),
    )
    .await;
    assert_eq!(s["views_affected"], 2);
    assert_eq!(
        round_trips(&app).await - before,
        1,
        "both views' edges in ONE transaction"
    );
    assert_eq!(view_edges(&app, "a").await, versions(&[("thread:1", 2)]));
    assert_eq!(view_edges(&app, "b").await, versions(&[("thread:1", 2)]));

    let (status, _) = post(&app, "/view/unregister", json!({"id": "a"})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(view_edges(&app, "a").await.is_empty());
    assert_eq!(view_edges(&app, "b").await.len(), 1, "only a's edges go");
    assert_eq!(count(&app, "_spooky_query").await, 1, "only a's row goes");
    let (status, _) = post(&app, "/view/unregister", json!({"id": "a"})).await;
    assert_eq!(status, StatusCode::OK, "unregistering is idempotent");
    let res = app.get("/view/a").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let (status, _) = post(&app, "/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(count(&app, "_spooky_query").await, 0, "reset: no view rows");
    assert_eq!(count(&app, "_spooky_list_ref").await, 0, "reset: no edges");
    app.stop().await;
}
backend_tests!(case_15_two_views_one_transaction_and_cleanup);

async fn round_trips_per_operation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(
        &app,
        "first",
        "SELECT * FROM thread WHERE n > 100",
        json!({}),
    )
    .await;
    ingest(&app, change("CREATE", "thread:1", json!({"n": 1}))).await;

    let rt = round_trips(&app).await;
    register(
        &app,
        "second",
        "SELECT * FROM thread WHERE n = 1",
        json!({}),
    )
    .await;
    assert_eq!(
        round_trips(&app).await - rt,
        2,
        "registration: row + initial edges"
    );

    let rt = round_trips(&app).await;
    ingest(
        &app,
        change("UPDATE", "thread:1", json!({"n": 1, "t": "x"})),
    )
    .await;
    assert_eq!(
        round_trips(&app).await - rt,
        1,
        "an ingest that changes edges"
    );

    let rt = round_trips(&app).await;
    let s = ingest(
        &app,
        change("UPDATE", "thread:1", json!({"n": 1, "t": "x"})),
    )
    .await;
    assert_eq!(
        s["edges"],
        json!({"created": 0, "updated": 0, "deleted": 0})
    );
    ingest(&app, change("CREATE", "thread:2", json!({"n": 5}))).await;
    assert_eq!(
        round_trips(&app).await - rt,
        0,
        "ingests that change nothing"
    );
    app.stop().await;
}
backend_tests!(round_trips_per_operation);

async fn group_commit(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await);
    register(&app, "all", "SELECT * FROM thread", json!({})).await;
    let rt = round_trips(&app).await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let (status, body) = post(
                &app,
                "/ingest",
                change("CREATE", &format!("thread:{i}"), json!({"i": i})),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            // Answered only after its own change is committed.
            let e = view_edges(&app, "all").await;
            assert!(
                e.contains_key(&format!("thread:{i}")),
                "thread:{i} committed before the answer"
            );
        }));
    }
    for t in tasks {
        t.await.expect("ingest task");
    }
    let used = round_trips(&app).await - rt;
    assert!(used < 32, "32 concurrent ingests took {used} transactions");
    assert_eq!(view_edges(&app, "all").await.len(), 32);
}
backend_tests!(group_commit);

/// With two group transactions in flight (`write_concurrency = 2`, the
/// default over ws://), a group that writes other edges commits while an
/// earlier one is still being written, but a later change to an edge that
/// is still in flight waits for it: each edge's writes commit in the
/// engine's order.
async fn pipelined_commits_keep_each_edge_in_order(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let settings = test_db.settings_with(&[("SPOOKY_WRITE_CONCURRENCY", "2")]);
    let app = std::sync::Arc::new(TestApp::spawn_on(test_db, settings).await);
    register(&app, "all", "SELECT * FROM thread", json!({})).await;
    // Any transaction that writes version 1 of thread:slow's edge takes a
    // second, so it stays in flight while the next requests arrive.
    app.db
        .run(Query::new(
            "DEFINE EVENT slow_edge ON _spooky_list_ref \
             WHEN $after.out = thread:slow AND $after.version = 1 THEN { sleep(1s) }",
        ))
        .await
        .expect("define the slow event");

    let slow = {
        let app = app.clone();
        tokio::spawn(async move {
            post(
                &app,
                "/ingest",
                change("CREATE", "thread:slow", json!({"n": 1})),
            )
            .await
        })
    };
    wait_for(
        "the slow transaction in flight",
        Duration::from_secs(5),
        || {
            let app = app.clone();
            async move {
                let body = app.get_json("/view/all").await;
                (body["records"].as_array().map(Vec::len) == Some(1)).then_some(())
            }
        },
    )
    .await;

    // Another edge: committed in the second slot while the first is written.
    let (status, body) = post(
        &app,
        "/ingest",
        change("CREATE", "thread:fast", json!({"n": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !slow.is_finished(),
        "thread:fast waited for thread:slow's transaction"
    );
    assert_eq!(view_edges(&app, "all").await.get("thread:fast"), Some(&1));

    // The same edge again: waits for version 1, then writes version 2.
    let (status, body) = post(
        &app,
        "/ingest",
        change("UPDATE", "thread:slow", json!({"n": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = slow.await.expect("slow ingest");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        view_edges(&app, "all").await,
        versions(&[("thread:fast", 1), ("thread:slow", 2)])
    );
    assert_edges_match_engine(&app, &["all"]).await;
}
backend_tests!(pipelined_commits_keep_each_edge_in_order);

/// Over ws:// each write slot writes on a connection of its own, so that
/// group commits in flight together overlap on the server; embedded, every
/// slot shares SSP's one connection (a second would open a second store).
async fn write_slots_have_their_own_connections_over_ws(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sink = ssp::sink::EdgeSink::with_writers(app.db.clone(), 2).await;
    assert_eq!(sink.slots(), 2);
    let mut changes = ssp::sink::EdgeChanges::default();
    changes.absorb(&[ssp::engine::ViewDelta {
        view: "slots".into(),
        client_id: "c1".into(),
        created: vec![(ssp::engine::value::RecordId::parse("thread:1").unwrap(), 7)],
        ..Default::default()
    }]);
    let before = app.db.round_trips();
    sink.write_on(1, &changes).await.expect("write on slot 1");
    let on_main = app.db.round_trips() - before;
    match backend {
        Backend::Ws => assert_eq!(on_main, 0, "slot 1 wrote on SSP's main connection"),
        _ => assert_eq!(on_main, 1, "slot 1 shares SSP's connection"),
    }
    assert_eq!(
        view_edges(&app, "slots").await,
        versions(&[("thread:1", 7)])
    );
    app.stop().await;
}
backend_tests!(write_slots_have_their_own_connections_over_ws);

async fn hostile_ids_are_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let view = "v'`;-- DROP TABLE x; ü🎃";
    let record = "thread:⟨it's `odd`; -- ü⟩";
    register(
        &app,
        view,
        "SELECT * FROM thread WHERE tag = $t",
        json!({"t": "'; DELETE _spooky_query; --"}),
    )
    .await;
    ingest(
        &app,
        json!({"table": "thread", "op": "CREATE", "id": record, "record": {"tag": "'; DELETE _spooky_query; --"}}),
    )
    .await;
    let e = view_edges(&app, view).await;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        count(&app, "_spooky_query").await,
        1,
        "the view row survived"
    );
    let res = app
        .get(&format!("/view/{}", urlencode(view)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], view);
    assert_edges_match_engine(&app, &[view]).await;
    app.stop().await;
}
backend_tests!(hostile_ids_are_data);

/// Escapes every byte but the unreserved ones, so that any view id is one
/// path segment.
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn bad_input_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(&app, "v", "SELECT * FROM thread", json!({})).await;
    ingest(&app, change("CREATE", "thread:1", json!({"a": 1}))).await;
    let before_edges = edges(&app).await;
    let before_views = count(&app, "_spooky_query").await;
    let rt = round_trips(&app).await;

    let res = app
        .http
        .post(app.url("/ingest"))
        .bearer_auth("wrong")
        .json(&change("CREATE", "thread:9", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .http
        .post(app.url("/ingest"))
        .json(&change("CREATE", "thread:9", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let res = app
        .post("/ingest")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].is_string());

    let cases = [
        (
            "/ingest",
            json!({"table": "thread", "op": "UPSERT", "id": "thread:9", "record": {}}),
            "unknown op",
        ),
        (
            "/ingest",
            json!({"table": "thread", "op": "CREATE", "record": {}}),
            "id",
        ),
        (
            "/ingest",
            json!([change("CREATE", "thread:8", json!({})), {"table": "thread", "op": "CREATE"}]),
            "change 1",
        ),
        ("/view/register", json!({"id": "w", "clientId": "c"}), "sql"),
        (
            "/view/register",
            json!({"sql": "SELECT * FROM t", "clientId": "c"}),
            "id",
        ),
        (
            "/view/register",
            json!({"id": "w", "sql": "SELECT * FROM t"}),
            "clientId",
        ),
        (
            "/view/register",
            json!({"id": "w", "sql": "SELECT * FROM t", "clientId": "c", "ttl": "soon"}),
            "ttl",
        ),
    ];
    for (path, body, needle) in cases {
        let (status, res) = post(&app, path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {res}");
        assert!(
            res["error"].as_str().unwrap_or_default().contains(needle),
            "{res} should mention {needle}"
        );
    }
    for sql in [
        "SELECT count() FROM thread GROUP BY x",
        "SELECT * FROM thread garbage",
        "SELECT * FROM thread WHERE at = time::now()",
        "SELECT * FROM thread WHERE x = rand()",
    ] {
        let (status, res) = post(
            &app,
            "/view/register",
            json!({"id": "w", "sql": sql, "clientId": "c"}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{sql} -> {res}");
        assert!(res["error"].is_string());
    }
    assert_eq!(edges(&app).await, before_edges, "a 4xx changes no edge");
    assert_eq!(
        count(&app, "_spooky_query").await,
        before_views,
        "a 4xx changes no view"
    );
    assert_eq!(round_trips(&app).await, rt, "a 4xx writes nothing");
    let res = app.get("/view/w").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}
backend_tests!(bad_input_changes_nothing);

/// The database goes away mid-stream: ingests wait (or get 503 past the
/// budget), nothing is lost or duplicated, and the edges equal the engine.
async fn database_outage_mid_stream(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await);
    register(&app, "all", "SELECT * FROM thread WHERE n >= 0", json!({})).await;
    for i in 0..5 {
        ingest(
            &app,
            change("CREATE", &format!("thread:{i}"), json!({"n": i})),
        )
        .await;
    }
    app.test_db.proxy().stop();
    app.test_db.proxy().cut();
    let mut tasks = Vec::new();
    for i in 5..15 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            post(
                &app,
                "/ingest",
                change("CREATE", &format!("thread:{i}"), json!({"n": i})),
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.test_db.proxy().start().await;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} {body}"
        );
    }
    wait_for("all 15 edges", Duration::from_secs(30), || {
        let app = app.clone();
        async move { (view_edges(&app, "all").await.len() == 15).then_some(()) }
    })
    .await;
    assert_edges_match_engine(&app, &["all"]).await;
}
backend_tests!(database_outage_mid_stream: ws);

/// `/health` tells which tables the worker follows, and its lag.
async fn health_reports_the_worker(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register(&app, "v", "SELECT * FROM thread", json!({})).await;
    let body = wait_for("thread to be tracked", Duration::from_secs(10), || async {
        let body: Value = app.get("/health").send().await.ok()?.json().await.ok()?;
        let tracked = body["worker"]["tracked_tables"].as_array()?.clone();
        tracked.iter().any(|t| t == "thread").then_some(body)
    })
    .await;
    assert!(body["worker"]["lag"].is_u64(), "{body}");
    app.stop().await;
}
backend_tests!(health_reports_the_worker);

/// `GET /view/{id}` pages with `limit` and `after`: the pages, walked by
/// `next`, are the whole result set in order, each record once; without
/// `limit` the answer is all of it, as the contract says.
async fn get_view_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sql = "SELECT * FROM item WHERE n >= 0";
    let r = app
        .post("/view/register")
        .json(&json!({"id": "paged", "sql": sql, "clientId": "c"}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), StatusCode::OK);
    // Keys whose text order differs from their order (9 < 10 as numbers).
    for k in 1..=25 {
        let r = app
            .post("/ingest")
            .json(&json!({"table": "item", "op": "CREATE", "id": format!("item:{k}"), "record": {"n": k}}))
            .send()
            .await
            .expect("ingest");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let all = app.get_json("/view/paged").await;
    assert!(all.get("next").is_none(), "{all}");
    let everything = all["records"].as_array().cloned().unwrap_or_default();
    assert_eq!(everything.len(), 25);

    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            None => "/view/paged?limit=10".to_owned(),
            Some(a) => format!("/view/paged?limit=10&after={a}"),
        };
        let page = app.get_json(&path).await;
        let records = page["records"].as_array().cloned().unwrap_or_default();
        assert!(records.len() <= 10, "{page}");
        walked.extend(records);
        pages += 1;
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(walked, everything, "the pages are the whole set, in order");

    for (query, why) in [
        ("limit=0", "limit"),
        ("limit=100001", "limit"),
        ("limit=ten", "limit"),
        ("after=not%20an%20id", "after"),
    ] {
        let r = app
            .get(&format!("/view/paged?{query}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = r.json().await.expect("a JSON error");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{query}: {error}");
    }
    app.stop().await;
}
backend_tests!(get_view_pages: mem);

/// A view with more initial edges than one transaction takes is filled
/// beside the stream: an ingest for another view answers while the big
/// registration is still writing, and an ingest that touches the filling
/// view answers after it, with its edges right.
async fn a_big_registration_does_not_stall_other_ingests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut many = String::new();
    for i in 0..4000 {
        many.push_str(&format!("CREATE item:{i} SET n = {i};"));
    }
    app.db.run(Query::new(many)).await.expect("records");
    let r = app
        .post("/view/register")
        .json(&json!({"id": "small", "sql": "SELECT * FROM note", "clientId": "c"}))
        .send()
        .await
        .expect("register small");
    assert_eq!(r.status(), StatusCode::OK);

    let big = {
        let req = app
            .post("/view/register")
            .json(&json!({"id": "big", "sql": "SELECT * FROM item WHERE n >= 0", "clientId": "c"}));
        tokio::spawn(async move { req.send().await.expect("register big").status() })
    };
    // The engine has the view (its edges are being written).
    wait_for(
        "the big view in the engine",
        Duration::from_secs(60),
        || async {
            let r = app.get("/view/big").send().await.ok()?;
            (r.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
    let ingest = |id: &str, record: Value| {
        app.post("/ingest")
            .json(&json!({"table": id.split(':').next().unwrap_or_default(), "op": "UPDATE", "id": id, "record": record}))
            .send()
    };
    let r = ingest("note:1", json!({"text": "hi"}))
        .await
        .expect("ingest");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !big.is_finished(),
        "the ingest for another view answered only after the big registration"
    );
    // The same registration again (what a client does after a 503 that
    // said the edges are still being written) joins the fill, and a
    // heartbeat of another view waits for no fill: ingests still go on.
    let again = {
        let req = app
            .post("/view/register")
            .json(&json!({"id": "big", "sql": "SELECT * FROM item WHERE n >= 0", "clientId": "c"}));
        tokio::spawn(async move { req.send().await.expect("register big again") })
    };
    let r = app
        .post("/view/heartbeat")
        .json(&json!({"id": "small"}))
        .send()
        .await
        .expect("heartbeat");
    assert_eq!(r.status(), StatusCode::OK);
    let r = ingest("note:2", json!({"text": "there"}))
        .await
        .expect("ingest");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !big.is_finished() && !again.is_finished(),
        "a heartbeat or a second registration held up the ingests until the fill ended"
    );
    // A change to the filling view waits for it, and is exact after.
    let r = ingest("item:7", json!({"n": 7, "edited": true}))
        .await
        .expect("ingest");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(big.await.expect("register task"), StatusCode::OK);
    let again = again.await.expect("register again task");
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["records"].as_array().map(Vec::len), Some(4000));
    let view = app.get_json("/view/big").await;
    let records = view["records"].as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 4000);
    let seven = records.iter().find(|r| r["id"] == "item:7").cloned();
    assert_eq!(seven.map(|r| r["version"].clone()), Some(json!(2)));
    // Every edge of the view is one of its records at its version.
    let held: Edges = edges(&app)
        .await
        .into_iter()
        .filter(|((view, _), _)| view == "big")
        .collect();
    let want: Edges = records
        .iter()
        .map(|r| {
            (
                (
                    "big".to_owned(),
                    r["id"].as_str().unwrap_or_default().to_owned(),
                ),
                r["version"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(held.len(), 4000);
    assert_eq!(held, want);
    assert_eq!(held.get(&("big".to_owned(), "item:7".to_owned())), Some(&2));
    assert_eq!(
        app.get_json("/view/small").await["records"],
        json!([{"id": "note:1", "version": 1}, {"id": "note:2", "version": 1}])
    );
    app.stop().await;
}
backend_tests!(a_big_registration_does_not_stall_other_ingests: mem);

/// A new view over a big table gets its first result from a snapshot
/// evaluated beside the stream (`/health`'s `pipeline.prescans` counts it),
/// while the table keeps changing through the database and `/ingest`; its
/// edges are SurrealDB's own answer once the changes are in.
async fn a_big_first_result_is_computed_beside_the_stream(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.db
        .run(Query::new(
            "FOR $i IN 0..12000 { CREATE type::record('item', $i) SET n = $i % 100 }",
        ))
        .await
        .expect("records");
    let writer = {
        let db = app.db.clone();
        let changes: Vec<_> = (0..300)
            .map(|k| {
                let (i, n) = ((k * 7919) % 12000, k % 6);
                let ingest = app.post("/ingest").json(
                    &json!({"table": "item", "op": "UPDATE", "id": format!("item:{i}"), "record": {"n": n}}),
                );
                (i, n, ingest)
            })
            .collect();
        tokio::spawn(async move {
            for (i, n, ingest) in changes {
                db.run(
                    Query::new("UPDATE type::record('item', $i) SET n = $n")
                        .bind("i", i)
                        .bind("n", n),
                )
                .await
                .expect("update");
                let r = ingest.send().await.expect("ingest");
                assert_eq!(r.status(), StatusCode::OK);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = app
        .post("/view/register")
        .json(&json!({"id": "low", "sql": "SELECT * FROM item WHERE n < 3", "clientId": "c"}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), StatusCode::OK);
    writer.await.expect("writer");
    let health = app.get_json("/health").await;
    assert_eq!(health["pipeline"]["prescans"], 1, "{health}");

    let mut res = app
        .db
        .run(Query::new(
            "SELECT VALUE record::id(id) FROM item WHERE n < 3",
        ))
        .await
        .expect("answer");
    let answer: Vec<i64> = res.take(0).expect("ids");
    let want: std::collections::BTreeSet<String> =
        answer.iter().map(|i| format!("item:{i}")).collect();
    assert!(want.len() > 300, "{}", want.len());
    wait_for(
        "the view's edges to be SurrealDB's answer",
        Duration::from_secs(30),
        || async {
            let held: std::collections::BTreeSet<String> = edges(&app)
                .await
                .into_keys()
                .filter(|(view, _)| view == "low")
                .map(|(_, record)| record)
                .collect();
            (held == want).then_some(())
        },
    )
    .await;
    app.stop().await;
}
backend_tests!(a_big_first_result_is_computed_beside_the_stream: mem, ws);
