//! A view's viewer (`owner`): the view row and its edges carry it, and
//! SurrealDB lets a signed-in record user read only its own (migration
//! 0005). Checked by signing in as record users on the real server; if the
//! permissions were `FULL` again, alice would read bob's rows here.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use ssp::db::Query;
use surrealdb::engine::any::Any;
use surrealdb::opt::auth::Record;

use crate::support::{Backend, TestApp, TestDb};

/// A record access and two users, as an app would define them.
const APP_SCHEMA: &str = "
    DEFINE TABLE user SCHEMAFULL PERMISSIONS FOR select FULL;
    DEFINE FIELD name ON user TYPE string;
    DEFINE ACCESS account ON DATABASE TYPE RECORD
        SIGNIN (SELECT * FROM user WHERE name = $name) DURATION FOR SESSION 1h;
    DEFINE TABLE thread SCHEMALESS PERMISSIONS FOR select FULL;
    CREATE user:alice SET name = 'alice';
    CREATE user:bob SET name = 'bob';
    CREATE thread:1 SET title = 'one';
";

async fn register(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let r = app
        .post("/view/register")
        .json(&body)
        .send()
        .await
        .expect("register");
    let status = r.status();
    (status, r.json().await.expect("a JSON body"))
}

/// A connection signed in as the record user `name`.
async fn sign_in(test_db: &TestDb, ns: &str, db: &str, name: &str) -> surrealdb::Surreal<Any> {
    let server = test_db.server.as_ref().expect("ws server");
    let conn = surrealdb::engine::any::connect(server.url())
        .await
        .expect("connect");
    conn.signin(Record {
        namespace: ns.to_owned(),
        database: db.to_owned(),
        access: "account".to_owned(),
        params: json!({ "name": name }),
    })
    .await
    .unwrap_or_else(|e| panic!("sign in as {name}: {e}"));
    conn
}

/// What `sql` returns to `conn`, as JSON rows sorted by their text.
async fn rows(conn: &surrealdb::Surreal<Any>, sql: &str) -> Vec<String> {
    let mut response = conn.query(sql).await.expect("query");
    let value: surrealdb::types::Value = response.take(0).expect("rows");
    let json = ssp::db::values::surreal_to_json(value);
    let mut out: Vec<String> = json
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(Value::to_string)
        .collect();
    out.sort();
    out
}

const EDGES: &str = "SELECT record::id(in) AS view, out, owner FROM _spooky_list_ref";
const VIEWS: &str = "SELECT record::id(id) AS view, owner, surql FROM _spooky_query";

#[test]
fn edges_are_readable_by_their_owner_only() {
    crate::support::run(async {
        let test_db = TestDb::start(Backend::Ws).await;
        let settings = test_db.settings();
        let (ns, db) = (settings.surrealdb.ns.clone(), settings.surrealdb.db.clone());
        let app = TestApp::spawn_on(Arc::clone(&test_db), settings).await;
        app.db
            .run(Query::new(APP_SCHEMA))
            .await
            .expect("app schema");

        let sql = "SELECT * FROM thread";
        for (id, owner) in [
            ("of-alice", Some("user:alice")),
            ("of-bob", Some("user:bob")),
            ("of-nobody", None),
        ] {
            let (status, body) = register(
                &app,
                json!({"id": id, "sql": sql, "clientId": id, "owner": owner}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["owner"], json!(owner), "GET-able owner: {body}");
            // The query's $auth is the viewer.
            if let Some(owner) = owner {
                assert_eq!(body["params"]["auth"], owner, "{body}");
            }
        }

        // Root (SSP, a backend) reads every row, each edge with its view's owner.
        let root = crate::support::surreal::root_connection(&test_db, &ns, &db).await;
        assert_eq!(
            rows(&root, EDGES).await,
            vec![
                r#"{"out":"thread:1","owner":"user:alice","view":"of-alice"}"#,
                r#"{"out":"thread:1","owner":"user:bob","view":"of-bob"}"#,
                r#"{"out":"thread:1","view":"of-nobody"}"#,
            ]
        );

        let alice = sign_in(&test_db, &ns, &db, "alice").await;
        let bob = sign_in(&test_db, &ns, &db, "bob").await;
        assert_eq!(
            rows(&alice, EDGES).await,
            vec![r#"{"out":"thread:1","owner":"user:alice","view":"of-alice"}"#]
        );
        assert_eq!(
            rows(&alice, VIEWS).await,
            vec![r#"{"owner":"user:alice","surql":"SELECT * FROM thread","view":"of-alice"}"#]
        );
        assert_eq!(
            rows(&bob, EDGES).await,
            vec![r#"{"out":"thread:1","owner":"user:bob","view":"of-bob"}"#]
        );
        // Asking for another's rows by id gives nothing either.
        assert!(
            rows(&bob, "SELECT * FROM _spooky_query:`of-alice`")
                .await
                .is_empty()
        );
        assert!(
            rows(
                &bob,
                "SELECT * FROM _spooky_list_ref WHERE in = _spooky_query:`of-nobody`"
            )
            .await
            .is_empty()
        );

        // A change's new edge carries the owner too.
        app.db
            .run(Query::new("CREATE thread:2 SET title = 'two'"))
            .await
            .expect("write");
        crate::support::wait_for(
            "alice's second edge",
            std::time::Duration::from_secs(10),
            || async { (rows(&alice, EDGES).await.len() == 2).then_some(()) },
        )
        .await;
        assert_eq!(
            rows(&bob, EDGES).await.len(),
            2,
            "bob's view has its own two edges"
        );

        // Bob's view handed to alice: its existing edges change hands in the
        // registration's own transaction.
        let (status, body) = register(
            &app,
            json!({"id": "of-bob", "sql": sql, "clientId": "of-bob", "owner": "user:alice"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(rows(&alice, EDGES).await.len(), 4);
        assert!(rows(&bob, EDGES).await.is_empty());
        assert!(rows(&bob, VIEWS).await.is_empty());
    });
}

#[test]
fn a_bad_owner_is_refused() {
    crate::support::run(async {
        let app = TestApp::spawn(Backend::Mem).await;
        for (owner, auth, why) in [
            (json!("alice"), Value::Null, "record id"),
            (json!(42), Value::Null, "record id"),
            (json!("user:a"), json!("user:b"), "differ"),
        ] {
            let (status, body) = register(
                &app,
                json!({"id": "v", "sql": "SELECT * FROM t", "clientId": "c", "owner": owner, "auth": auth}),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{owner} {auth}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(why), "{owner} {auth}: {error}");
        }
        assert_eq!(
            app.get("/view/v").send().await.expect("GET").status(),
            StatusCode::NOT_FOUND,
            "nothing was registered"
        );
    });
}

/// The owner is part of what a restart keeps: from the state file, and
/// from the view rows when the file is gone.
#[test]
fn the_owner_survives_a_restart() {
    crate::support::run(async {
        let test_db = TestDb::start(Backend::Ws).await;
        let app = TestApp::spawn_on(Arc::clone(&test_db), test_db.settings()).await;
        let (status, body) = register(
            &app,
            json!({"id": "v", "sql": "SELECT * FROM t", "clientId": "c", "owner": "user:`o'1`"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let owner = body["owner"].clone();
        assert!(
            owner.as_str().is_some_and(|o| o.starts_with("user:")),
            "{body}"
        );
        app.stop().await;
        for damage in ["none", "delete"] {
            if damage == "delete" {
                std::fs::remove_file(test_db.dir.path().join("spooky_state.json")).expect("delete");
            }
            let app = TestApp::spawn_on(Arc::clone(&test_db), test_db.settings()).await;
            let view = app.get_json("/view/v").await;
            assert_eq!(view["owner"], owner, "{damage}: {view}");
            let mut r = app
                .db
                .run(Query::new("SELECT VALUE owner FROM _spooky_query"))
                .await
                .expect("rows");
            assert_eq!(
                r.take_json(0).expect("json"),
                json!([owner.clone()]),
                "{damage}: the view row keeps it"
            );
            app.stop().await;
        }
    });
}
