//! User functions (`fn::name(...)`) and `$this` in views, as an app writes
//! them: SSP reads the functions' definitions from the database when the
//! view registers and inlines them, so the view runs in the incremental
//! tier, with the edges SurrealDB's own answer implies; a function SSP
//! cannot inline runs in the re-query tier. A restart plans the view with
//! the definitions it kept.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ssp::db::{Db, Query};
use surrealdb::types as sdb;

use crate::pipeline::register;
use crate::support::{Backend, TestApp, TestDb};
use crate::worker::{direct_db, edges, run};

const AGREE: Duration = Duration::from_secs(10);

const FUNCTIONS: &str = "
    DEFINE FUNCTION fn::search($query: string, $match: string) {
        RETURN string::contains(string::lowercase($match), string::lowercase($query));
    };
    DEFINE FUNCTION fn::listed($thing: object) { RETURN !$thing.private AND !$thing.deleted; };
    DEFINE FUNCTION fn::currentContent($thing: any) { RETURN array::last($thing).text; };
    DEFINE FUNCTION fn::owned($thing: any) {
        RETURN count(SELECT * FROM owns WHERE out = $thing) > 0;
    };
";

/// (id, query, params, tier): the views of the test.
fn views() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    vec![
        (
            "search",
            "SELECT id, name, fn::currentContent($this.description) AS description FROM place \
             WHERE fn::search($q, name) AND fn::listed($this)",
            json!({"q": "OBBY"}),
            "incremental",
        ),
        (
            "public",
            "SELECT * FROM place WHERE !$this.private",
            json!({}),
            "incremental",
        ),
        // A function next to a time window: read although the re-query
        // tier could not take the view.
        (
            "recent",
            "SELECT * FROM place WHERE fn::listed($this) AND seen > time::now() - 1h",
            json!({}),
            "incremental",
        ),
        (
            "owned",
            "SELECT * FROM place WHERE fn::owned(id)",
            json!({}),
            "requery",
        ),
    ]
}

/// The records SurrealDB's answer to `sql` has.
async fn answer(db: &Db, sql: &str, params: &Value) -> BTreeSet<String> {
    let mut q = Query::new(sql);
    for (k, v) in params.as_object().expect("params") {
        q.set(k, ssp::db::values::param_to_surreal(v));
    }
    let mut response = db.run(q).await.expect("the view's query runs");
    let rows: sdb::Value = response.take(0).expect("rows");
    let sdb::Value::Array(rows) = rows else {
        panic!("rows: {rows:?}")
    };
    rows.iter()
        .filter_map(|r| match r {
            sdb::Value::Object(o) => match o.get("id") {
                Some(sdb::Value::RecordId(id)) => {
                    ssp::db::values::record_id_from_surreal(id).map(|id| id.to_string())
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Waits until every view's edges are SurrealDB's answer, and returns the
/// answers.
async fn agree(db: &Db) -> Vec<BTreeSet<String>> {
    let deadline = Instant::now() + AGREE;
    let mut answers = Vec::new();
    for (id, sql, params, _) in views() {
        loop {
            let want = answer(db, sql, &params).await;
            let got: BTreeSet<String> = edges(db, id).await.into_keys().collect();
            if got == want {
                answers.push(want);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: edges {got:?}, SurrealDB {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    answers
}

async fn functions_are_inlined_and_follow_surrealdb(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    let db = direct_db(&test_db, Some(&app)).await;
    run(&db, FUNCTIONS, vec![]).await;
    run(
        &db,
        "DEFINE TABLE owns TYPE RELATION;
         UPSERT place:1 SET name = 'Obby land', private = false, description = [{ text: 'v1' }],
             seen = time::now();
         UPSERT place:2 SET name = 'Big obby', private = true, description = [];
         UPSERT place:3 SET name = 'Quiet', private = false, deleted = false;
         UPSERT place:4 SET name = 'obby; DROP', private = false, deleted = true;",
        vec![],
    )
    .await;
    for (id, sql, params, tier) in views() {
        let body = register(&app, id, sql, params).await;
        assert_eq!(body["tier"]["kind"], tier, "{sql}: {body}");
        if tier == "requery" {
            let reason = body["tier"]["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("fn::owned"), "{reason}");
        }
    }
    let first = agree(&db).await;
    assert_eq!(first[0], BTreeSet::from(["place:1".to_owned()]));
    assert_eq!(first[2], BTreeSet::from(["place:1".to_owned()]));
    assert_eq!(first[1].len(), 3, "place:2 is private: {:?}", first[1]);
    run(
        &db,
        "UPDATE place:2 SET private = false;
         UPDATE place:1 SET deleted = true;
         UPSERT place:5 SET name = 'OBBY 2', description = [{ text: 'a' }, { text: 'b' }];
         RELATE user:1->owns->place:3;",
        vec![],
    )
    .await;
    let second = agree(&db).await;
    assert_eq!(
        second[0],
        BTreeSet::from(["place:2".to_owned(), "place:5".to_owned()])
    );
    assert_eq!(second[3], BTreeSet::from(["place:3".to_owned()]));
    drop(db);
    app.stop().await;

    // A restart plans the views with the definitions it kept, although the
    // database no longer has one of them.
    let admin = direct_db(&test_db, None).await;
    run(&admin, "REMOVE FUNCTION fn::listed;", vec![]).await;
    drop(admin);
    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    let db = direct_db(&test_db, Some(&app)).await;
    run(&db, "UPDATE place:5 SET private = true;", vec![]).await;
    let deadline = Instant::now() + AGREE;
    while edges(&db, "search").await.contains_key("place:5") {
        assert!(Instant::now() < deadline, "place:5 stays in `search`");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let view = app.get_json("/view/search").await;
    assert_eq!(view["tier"]["kind"], "incremental", "{view}");
    app.stop().await;
}
// Over ws only: a restart on an embedded store is not possible in-process
// (see `worker.rs`).
backend_tests!(functions_are_inlined_and_follow_surrealdb: ws);

async fn a_function_the_database_lacks_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post("/view/register")
        .json(&json!({"id": "v", "clientId": "c", "ttl": "1h",
                      "sql": "SELECT * FROM place WHERE fn::nope(name)", "params": {}}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("a JSON error");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("fn::nope"), "{error}");
    app.stop().await;
}
backend_tests!(a_function_the_database_lacks_is_refused: mem);
