//! Time windows: `WHERE ping > time::now() - 2s`, `expires > time::now()`.
//! A record enters or leaves such a view when its time comes, with no
//! write at all; the edges follow SurrealDB's own answer, and a restart
//! finds the records whose time came while SSP was down.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;
use ssp::db::Db;

use crate::pipeline::register;
use crate::support::{Backend, TestApp, TestDb};
use crate::worker::{direct_db, edges, run};

/// `(view id, query, params)`.
fn views() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    vec![
        // Present: pinged in the last 2 s. Leaves the view.
        (
            "present",
            "SELECT * FROM presence WHERE ping > time::now() - 2s",
            json!({}),
        ),
        // A user's live sessions; the other condition is an index lookup.
        (
            "sessions",
            "SELECT * FROM session WHERE user = $u AND expires > time::now()",
            json!({"u": "user:1"}),
        ),
        // Tasks due, oldest first: enters the view, in a window.
        (
            "due",
            "SELECT * FROM task WHERE time::now() >= due ORDER BY due LIMIT 2",
            json!({}),
        ),
    ]
}

/// The edges of `view`, as record id texts.
async fn members(db: &Db, view: &str) -> BTreeSet<String> {
    edges(db, view).await.into_keys().collect()
}

/// Waits until `view`'s edges are `want`, and returns how long it took.
async fn wait_for(db: &Db, view: &str, want: &[&str], within: Duration) -> Duration {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    let start = Instant::now();
    loop {
        let got = members(db, view).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{view}: after {within:?}, edges {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SurrealDB's own answer to `view`'s query now, as record id texts.
async fn answer(db: &Db, view: &str) -> BTreeSet<String> {
    let (_, sql, params) = views().into_iter().find(|v| v.0 == view).expect("a view");
    let mut q = ssp::db::Query::new(format!("SELECT VALUE id FROM ({sql})"));
    for (k, v) in params.as_object().expect("params") {
        q.set(k.clone(), ssp::db::values::param_to_surreal(v));
    }
    let mut response = db.run(q).await.expect("query");
    let ids: Vec<surrealdb::types::RecordId> = response.take(0).expect("ids");
    ids.iter()
        .map(|r| {
            ssp::db::values::record_id_from_surreal(r)
                .expect("a record id")
                .to_string()
        })
        .collect()
}

async fn records_move_in_and_out_when_their_time_comes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    for (id, sql, params) in views() {
        let body = register(&app, id, sql, params).await;
        assert_eq!(body["tier"]["kind"], "incremental", "{sql}: {body}");
    }
    run(
        &db,
        "UPSERT presence:a SET ping = time::now();
         UPSERT presence:b SET ping = time::now() - 10s;
         UPSERT session:1 SET user = user:1, expires = time::now() + 1500ms;
         UPSERT session:2 SET user = user:2, expires = time::now() + 1h;
         UPSERT task:1 SET due = time::now() + 1s;
         UPSERT task:2 SET due = time::now() + 1h;
         UPSERT task:3 SET due = 'not a datetime';",
        vec![],
    )
    .await;
    let soon = Duration::from_secs(5);
    wait_for(&db, "present", &["presence:a"], soon).await;
    wait_for(&db, "sessions", &["session:1"], soon).await;
    // A string sorts before every datetime in SurrealDB, whatever the time.
    wait_for(&db, "due", &["task:3"], soon).await;
    // Nothing is written from here on.
    let left = wait_for(&db, "sessions", &[], soon).await;
    let entered = wait_for(&db, "due", &["task:1", "task:3"], soon).await;
    let gone = wait_for(&db, "present", &[], soon).await;
    eprintln!(
        "session left after {left:?}, task entered {entered:?} later, presence left {gone:?} later"
    );
    for (view, _, _) in views() {
        assert_eq!(members(&db, view).await, answer(&db, view).await, "{view}");
    }
    // The flip moved no record's version: the client has nothing to fetch
    // again for a record that stays.
    assert_eq!(edges(&db, "due").await["task:1"], 1);

    // A ping brings `presence:a` back, a new version.
    run(&db, "UPDATE presence:a SET ping = time::now()", vec![]).await;
    wait_for(&db, "present", &["presence:a"], soon).await;
    assert_eq!(edges(&db, "present").await["presence:a"], 2);
    app.stop().await;
}
backend_tests!(records_move_in_and_out_when_their_time_comes);

async fn a_restart_finds_the_records_whose_time_came_meanwhile(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    let db = direct_db(&test_db, Some(&app)).await;
    for (id, sql, params) in views() {
        register(&app, id, sql, params).await;
    }
    run(
        &db,
        "UPSERT session:1 SET user = user:1, expires = time::now() + 1s;
         UPSERT task:1 SET due = time::now() + 1s;",
        vec![],
    )
    .await;
    wait_for(&db, "sessions", &["session:1"], Duration::from_secs(5)).await;
    drop(db);
    app.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    let db = direct_db(&test_db, Some(&app)).await;
    wait_for(&db, "sessions", &[], Duration::from_secs(5)).await;
    wait_for(&db, "due", &["task:1"], Duration::from_secs(5)).await;
    wait_for(&db, "present", &[], Duration::from_secs(5)).await;
    app.stop().await;
}
// Over ws only: an embedded store stays locked in-process while the stopped
// server's background tasks hold it (see `worker.rs`).
backend_tests!(a_restart_finds_the_records_whose_time_came_meanwhile: ws);
