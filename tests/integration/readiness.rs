//! Liveness and readiness: SSP serves while it bootstraps, says
//! `starting` until it is ready, refuses engine work with 503 `not_ready`
//! meanwhile, and follows the database going away and coming back.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use ssp::api::health::DB_STATUS_TTL;
use ssp::db::Query;
use ssp::startup::Application;

use crate::support::{Backend, TestApp, TestDb, wait_for};

/// Status and JSON body of a request.
async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("SSP answers");
    let status = response.status();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

/// `/health` without a token (it is public).
async fn health(app: &TestApp) -> (StatusCode, Value) {
    answer(app.http.get(app.url("/health"))).await
}

async fn live(app: &TestApp) -> (StatusCode, Value) {
    answer(app.http.get(app.url("/health/live"))).await
}

async fn wait_ready(app: &TestApp) -> Value {
    wait_for("/health to answer 200", Duration::from_secs(30), || async {
        let (status, body) = health(app).await;
        (status == StatusCode::OK).then_some(body)
    })
    .await
}

fn register_body() -> Value {
    json!({"id": "v", "sql": "SELECT * FROM thread", "clientId": "c"})
}

fn ingest_body() -> Value {
    json!({"table": "thread", "op": "CREATE", "id": "thread:1", "record": {"n": 1}})
}

/// A ready SSP reports `unavailable` (503) while the database is down and
/// `ok` (200) again when it returns; liveness stays 200 throughout.
async fn readiness_flips_while_the_db_is_down_and_recovers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, _) = answer(app.post("/view/register").json(&register_body())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["views"], 1, "{body}");
    assert!(body["worker"]["tracked_tables"].is_array(), "{body}");
    assert!(body["worker"]["lag"].is_u64(), "{body}");
    assert!(body.get("bootstrap").is_none(), "{body}");

    app.test_db.proxy().stop();
    // The database status is cached for DB_STATUS_TTL: the outage shows
    // within that plus the time a ping takes to fail (the call timeout).
    let stopped = Instant::now();
    let bound = DB_STATUS_TTL + app.db.call_timeout();
    let (status, body) = wait_for("/health to see the outage", bound * 2, || async {
        let (status, body) = health(&app).await;
        (status != StatusCode::OK).then_some((status, body))
    })
    .await;
    assert!(
        stopped.elapsed() <= bound + Duration::from_millis(500),
        "the outage showed after {:?}",
        stopped.elapsed()
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["db"]["status"], "down", "{body}");
    assert_eq!(body["views"], 1, "the engine is kept: {body}");
    let (status, body) = live(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["live"], true, "{body}");

    app.test_db.proxy().start().await;
    let body = wait_ready(&app).await;
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["ready"], true, "{body}");
    app.stop().await;
}
backend_tests!(readiness_flips_while_the_db_is_down_and_recovers: ws);

/// The database goes down right after `build`: SSP serves but stays
/// `starting`, refuses engine work without changing anything, and becomes
/// ready once the database returns.
async fn a_db_down_during_bootstrap_keeps_ssp_starting(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let built = Application::build(test_db.settings())
        .await
        .expect("builds");
    test_db.proxy().stop();
    let app = TestApp::run_unready(test_db, built);

    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "starting", "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["live"], true, "{body}");
    assert_eq!(body["views"], 0, "{body}");
    let (status, body) = live(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], false, "{body}");
    // The bootstrap keeps trying (and says why it has not finished).
    let body = wait_for(
        "a failed bootstrap attempt",
        Duration::from_secs(30),
        || async {
            let (_, body) = health(&app).await;
            (body["bootstrap"]["failed_attempts"].as_u64()? > 0).then_some(body)
        },
    )
    .await;
    assert!(body["bootstrap"]["last_error"].is_string(), "{body}");
    assert_eq!(body["status"], "starting", "{body}");

    for (path, request) in [
        ("/ingest", app.post("/ingest").json(&ingest_body())),
        (
            "/view/register",
            app.post("/view/register").json(&register_body()),
        ),
        ("/view/v", app.get("/view/v")),
    ] {
        let (status, body) = answer(request).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body["code"], "not_ready", "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    // Auth still comes first.
    let (status, _) = answer(app.http.post(app.url("/ingest")).json(&ingest_body())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    app.test_db.proxy().start().await;
    let body = wait_ready(&app).await;
    assert_eq!(body["status"], "ok", "{body}");
    assert!(body.get("bootstrap").is_none(), "{body}");

    // Nothing of the refused requests was kept: no view, no record.
    let (status, body) = answer(app.get("/view/v")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = answer(app.post("/view/register").json(&register_body())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"], json!([]), "{body}");
    // The same requests now succeed.
    let (status, body) = answer(app.post("/ingest").json(&ingest_body())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = answer(app.get("/view/v")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"][0]["id"], "thread:1", "{body}");
    app.stop().await;
}
backend_tests!(a_db_down_during_bootstrap_keeps_ssp_starting: ws);

/// Stopping SSP before its bootstrap finished is a clean stop that leaves
/// the state file alone (no empty engine saved over it).
async fn stopping_while_starting_keeps_the_state_file(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let state_file = test_db.dir.path().join("spooky_state.json");
    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    let (status, _) = answer(app.post("/view/register").json(&register_body())).await;
    assert_eq!(status, StatusCode::OK);
    // In the database, so that any way of restoring finds it.
    app.db
        .run(Query::new("CREATE thread:1 SET n = 1"))
        .await
        .expect("write");
    wait_for(
        "the view to hold thread:1",
        Duration::from_secs(15),
        || async {
            let (_, body) = answer(app.get("/view/v")).await;
            (body["records"][0]["id"] == "thread:1").then_some(())
        },
    )
    .await;
    app.stop().await;
    let saved = std::fs::read(&state_file).expect("state saved on stop");

    let built = Application::build(test_db.settings())
        .await
        .expect("builds");
    test_db.proxy().stop();
    let app = TestApp::run_unready(test_db.clone(), built);
    let (status, body) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "starting", "{body}");
    app.stop().await; // panics unless it stops in time and without error
    let after = std::fs::read(&state_file).expect("state file still there");
    assert!(after == saved, "the state file changed while starting");

    // And it is what the next start restores.
    test_db.proxy().start().await;
    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    let (status, body) = answer(app.get("/view/v")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"][0]["id"], "thread:1", "{body}");
    app.stop().await;
}
backend_tests!(stopping_while_starting_keeps_the_state_file: ws);
