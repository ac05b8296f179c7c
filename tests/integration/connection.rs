//! The one shared connection: first connect with a deadline, bounded calls
//! while the database is down, and reconnects.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use ssp::db::migrations::MIGRATIONS;
use ssp::db::{DbError, Query};
use ssp::startup::{Application, StartupError};

use crate::support::{Backend, TestApp, TestDb, wait_for};

/// A query that needs the session's signin, namespace and database.
fn probe() -> Query {
    Query::new("SELECT count() FROM _spooky_migration GROUP ALL")
}

async fn startup_fails_clearly_when_the_db_is_unreachable(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let settings = match backend {
        Backend::Ws => {
            test_db.proxy().stop();
            test_db.settings_with(&[("SPOOKY_SURREALDB_CONNECT_DEADLINE_MS", "1500")])
        }
        _ => {
            // An embedded store that cannot be opened: its directory is a file.
            let file = test_db.dir.path().join("not-a-dir");
            std::fs::write(&file, b"x").unwrap();
            let url = format!("surrealkv://{}/db", file.display());
            test_db.settings_with(&[("SPOOKY_SURREALDB_URL", url.as_str())])
        }
    };
    let started = Instant::now();
    let error = Application::build(settings)
        .await
        .expect_err("must not start");
    let elapsed = started.elapsed();
    let message = error.to_string();
    assert!(!message.contains('\n'), "{message}");
    match backend {
        Backend::Ws => {
            assert!(
                matches!(error, StartupError::Db(DbError::ConnectDeadline { attempts, .. }) if attempts > 1),
                "{error:?}"
            );
            assert!(
                message.starts_with(&format!("cannot reach SurrealDB at {}", test_db.url())),
                "{message}"
            );
            assert!(
                elapsed >= Duration::from_millis(1400),
                "gave up early: {elapsed:?}: {message}"
            );
            assert!(
                elapsed < Duration::from_secs(30), // not a benchmark: it must not hang
                "gave up late: {elapsed:?}: {message}"
            );
        }
        _ => {
            assert!(
                matches!(error, StartupError::Db(DbError::Setup { .. })),
                "{error:?}"
            );
            assert!(
                message.starts_with("cannot open SurrealDB at surrealkv://"),
                "{message}"
            );
        }
    }
}
backend_tests!(startup_fails_clearly_when_the_db_is_unreachable: kv, ws);

async fn the_first_connect_waits_for_the_db_to_come_up(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    test_db.proxy().stop();
    let settings = test_db.settings();
    let build = tokio::spawn(Application::build(settings));
    // Keep the database down for a while: the connect must keep retrying.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !build.is_finished(),
        "gave up while the deadline had not passed"
    );
    test_db.proxy().start().await;
    let app = tokio::time::timeout(Duration::from_secs(10), build)
        .await
        .expect("connects soon after the db is up")
        .unwrap()
        .expect("starts");
    let app = TestApp::run(test_db, app).await;
    app.db.run(probe()).await.expect("works");
    app.stop().await;
}
backend_tests!(the_first_connect_waits_for_the_db_to_come_up: ws);

async fn the_connection_comes_back_after_it_is_cut(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let proxy = app.test_db.proxy();
    app.db.run(probe()).await.expect("before the cut");
    let accepted = proxy.accepted();
    // SSP's connection and one per extra write slot (`write_concurrency`).
    let live = proxy.live_connections();
    assert_eq!(live, 2, "the main connection and a second write slot's");

    proxy.cut();
    wait_for(
        "the connection to come back",
        Duration::from_secs(15),
        || async { app.db.run(probe()).await.ok() },
    )
    .await;
    assert!(proxy.accepted() > accepted, "a new connection was made");
    wait_for(
        "as many live connections as before",
        Duration::from_secs(5),
        || async { (proxy.live_connections() == live).then_some(()) },
    )
    .await;

    // The session was replayed: signed in as root, on the right ns/db.
    let mut response = app.db.run(probe()).await.expect("after the cut");
    let rows = response.take_json(0).unwrap();
    assert_eq!(rows[0]["count"], MIGRATIONS.len(), "{rows}");

    // Edges commit again, on both write slots (taken in turn).
    let response = app
        .post("/view/register")
        .json(
            &serde_json::json!({"id": "after_cut", "sql": "SELECT * FROM thread", "clientId": "c"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for key in ["a", "b", "c"] {
        let response = app
            .post("/ingest")
            .json(&serde_json::json!({"table": "thread", "op": "CREATE", "id": key, "record": {"n": 1}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "ingest of thread:{key}");
    }
    let mut response = app
        .db
        .run(Query::new(
            "SELECT VALUE record::id(out) FROM _spooky_list_ref WHERE in = _spooky_query:after_cut ORDER BY out",
        ))
        .await
        .expect("edges");
    assert_eq!(
        response.take_json(0).unwrap(),
        serde_json::json!(["a", "b", "c"])
    );
    app.stop().await;
}
backend_tests!(the_connection_comes_back_after_it_is_cut: ws);

async fn calls_fail_fast_while_the_db_is_down_and_work_when_it_returns(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let proxy = app.test_db.proxy();
    proxy.stop();

    // A call while the database is down fails within the call timeout.
    let started = Instant::now();
    let error = app.db.run(probe()).await.expect_err("db is down");
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        started.elapsed() < app.db.call_timeout() + Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    // /health says so, as JSON, without hanging.
    let response = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["db"]["status"], "down", "{health}");

    proxy.start().await;
    wait_for(
        "/health to be ok again",
        Duration::from_secs(15),
        || async {
            let response = app.http.get(app.url("/health")).send().await.ok()?;
            (response.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
    let mut response = app.db.run(probe()).await.expect("works again");
    assert_eq!(response.take_json(0).unwrap()[0]["count"], MIGRATIONS.len());
    app.stop().await;
}
backend_tests!(calls_fail_fast_while_the_db_is_down_and_work_when_it_returns: ws);

async fn a_restart_on_the_same_data_finds_it(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    app.db
        .run(Query::new("CREATE thing:1 SET name = 'kept'"))
        .await
        .expect("write");
    let rounds_before = app.db.round_trips();
    assert!(rounds_before > 0);
    app.stop().await;

    // The store may be released asynchronously; retry until it opens.
    let app = wait_for("SSP to start again", Duration::from_secs(15), || {
        let test_db = test_db.clone();
        async move { Application::build(test_db.settings()).await.ok() }
    })
    .await;
    let app = TestApp::run(test_db, app).await;
    let mut response = app
        .db
        .run(Query::new("SELECT VALUE name FROM thing:1"))
        .await
        .expect("read");
    assert_eq!(response.take_json(0).unwrap(), serde_json::json!(["kept"]));
    let applied = ssp::db::migrations::applied(&app.db).await.unwrap();
    assert_eq!(applied.len(), ssp::db::migrations::MIGRATIONS.len());
    app.stop().await;
}
// Over ws only: in-process, an embedded SurrealKV store stays locked while any
// task still holds the connection, and background tasks outlive the server
// (see the report); across processes `cli::migrate_applies_once_then_skips`
// covers the embedded restart.
backend_tests!(a_restart_on_the_same_data_finds_it: ws);

async fn dropping_the_connection_releases_an_embedded_store(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let settings = test_db.settings();
    let db = ssp::db::Db::connect(&settings.surrealdb)
        .await
        .expect("open");
    db.run(Query::new("CREATE thing:1 SET name = 'kept'"))
        .await
        .expect("write");
    drop(db);
    let db = wait_for("the store to be released", Duration::from_secs(10), || {
        let settings = settings.clone();
        async move { ssp::db::Db::connect(&settings.surrealdb).await.ok() }
    })
    .await;
    let mut response = db
        .run(Query::new("SELECT VALUE name FROM thing:1"))
        .await
        .expect("read");
    assert_eq!(response.take_json(0).unwrap(), serde_json::json!(["kept"]));
}
backend_tests!(dropping_the_connection_releases_an_embedded_store: kv);

async fn every_call_is_one_counted_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = app.db.round_trips();
    let mut tx = Query::transaction();
    tx.push("CREATE counted:1");
    tx.push("CREATE counted:2");
    tx.push("CREATE counted:3");
    app.db.run(tx).await.expect("transaction");
    assert_eq!(
        app.db.round_trips(),
        before + 1,
        "a transaction is one round trip"
    );
    app.db.ping().await.expect("ping");
    assert_eq!(app.db.round_trips(), before + 1, "pings are not counted");
    app.stop().await;
}
backend_tests!(every_call_is_one_counted_round_trip);

async fn an_embedded_engine_with_credentials_runs_with_auth(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let settings = test_db.settings_with(&[
        ("SPOOKY_SURREALDB_USER", "admin"),
        ("SPOOKY_SURREALDB_PASS", "s3cret"),
    ]);
    let creds = settings.surrealdb.credentials.clone().expect("credentials");
    assert_eq!(creds.user, "admin");
    let db = ssp::db::Db::connect(&settings.surrealdb)
        .await
        .expect("signs in with the configured root user");
    // The configured user is the engine's root user.
    let mut response = db.run(Query::new("INFO FOR ROOT")).await.expect("query");
    let info = response.take_json(0).unwrap();
    assert!(info["users"].get("admin").is_some(), "{info}");
}
backend_tests!(an_embedded_engine_with_credentials_runs_with_auth: mem);
