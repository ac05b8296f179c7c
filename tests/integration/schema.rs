//! The schema of migration 0001, checked on a real SurrealDB 3.3.5: what the
//! edge sink and the view registry rely on.

use serde_json::{Value as Json, json};
use ssp::db::{Db, DbError, Query};
use surrealdb::types::{Array, Number, Object, RecordId, Value};

use crate::support::{Backend, TestApp};

fn view(key: &str) -> RecordId {
    RecordId::new("_spooky_query", key)
}

/// The sink's deterministic edge id: `_spooky_list_ref:[<view>, <record>]`.
fn edge_id(view_key: &str, record: &RecordId) -> RecordId {
    RecordId::new(
        "_spooky_list_ref",
        Array::from(vec![
            Value::String(view_key.to_owned()),
            Value::RecordId(record.clone()),
        ]),
    )
}

/// One row for `INSERT RELATION`.
fn edge_row(id: &RecordId, view_key: &str, out: &RecordId, version: i64) -> Value {
    let mut row = Object::new();
    row.insert("id".to_owned(), Value::RecordId(id.clone()));
    row.insert("in".to_owned(), Value::RecordId(view(view_key)));
    row.insert("out".to_owned(), Value::RecordId(out.clone()));
    row.insert("clientId".to_owned(), Value::String("client-1".to_owned()));
    row.insert("version".to_owned(), Value::Number(Number::Int(version)));
    Value::Array(vec![Value::Object(row)].into())
}

const UPSERT_EDGES: &str = "INSERT RELATION INTO _spooky_list_ref $rows \
     ON DUPLICATE KEY UPDATE version = $input.version, updatedAt = time::now() RETURN NONE";

async fn edges_between(db: &Db, view_key: &str, out: &RecordId) -> Json {
    db.run(
        Query::new(
            "SELECT id, version, clientId FROM _spooky_list_ref WHERE in = $in AND out = $out",
        )
        .bind("in", view(view_key))
        .bind("out", out.clone()),
    )
    .await
    .expect("select edges")
    .take_json(0)
    .expect("rows")
}

fn statement_error(result: Result<ssp::db::Response, DbError>) -> String {
    match result {
        Err(DbError::Statement(error)) => error.message,
        other => panic!("expected a failed statement, got {other:?}"),
    }
}

async fn one_edge_per_view_and_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;

    // RELATE with bound ids, into a table that does not exist (not ENFORCED).
    let ghost = RecordId::new("no_such_table", "it's; -- `1`");
    let relate = || {
        Query::new("RELATE $in->_spooky_list_ref->$out SET clientId = $c, version = 1, updatedAt = time::now()")
            .bind("in", view("v1"))
            .bind("out", ghost.clone())
            .bind("c", "client-1")
    };
    db.run(relate()).await.expect("relate into a missing table");
    let edges = edges_between(db, "v1", &ghost).await;
    assert_eq!(edges.as_array().map(Vec::len), Some(1), "{edges}");

    // The unique (in, out) index refuses a second edge.
    let message = statement_error(db.run(relate()).await);
    assert!(message.contains("_spooky_list_ref_in_out"), "{message}");
    assert_eq!(
        edges_between(db, "v1", &ghost)
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // The sink's idiom: deterministic ids and INSERT RELATION ... ON DUPLICATE
    // KEY UPDATE, which creates, then updates in place.
    let thread = RecordId::new("thread", "1");
    let id = edge_id("v1", &thread);
    for version in [1, 2] {
        db.run(Query::new(UPSERT_EDGES).bind("rows", edge_row(&id, "v1", &thread, version)))
            .await
            .expect("upsert edge");
    }
    let edges = edges_between(db, "v1", &thread).await;
    assert_eq!(edges.as_array().map(Vec::len), Some(1), "{edges}");
    assert_eq!(edges[0]["version"], 2, "{edges}");

    // Another id for the same (view, record) hits the unique index and
    // updates the existing edge instead of adding one.
    let other_id = RecordId::new("_spooky_list_ref", "some-other-id");
    db.run(Query::new(UPSERT_EDGES).bind("rows", edge_row(&other_id, "v1", &thread, 3)))
        .await
        .expect("upsert by index");
    let edges = edges_between(db, "v1", &thread).await;
    assert_eq!(edges.as_array().map(Vec::len), Some(1), "{edges}");
    assert_eq!(edges[0]["version"], 3, "{edges}");

    // Typed fields and the FROM side are enforced.
    let message = statement_error(
        db.run(
            Query::new("RELATE $in->_spooky_list_ref->$out SET clientId = 'c', version = 'x', updatedAt = time::now()")
                .bind("in", view("v1"))
                .bind("out", RecordId::new("thread", "2")),
        )
        .await,
    );
    assert!(message.contains("version"), "{message}");
    let message = statement_error(
        db.run(
            Query::new("RELATE $in->_spooky_list_ref->$out SET clientId = 'c', version = 1, updatedAt = time::now()")
                .bind("in", RecordId::new("user", "1"))
                .bind("out", RecordId::new("thread", "3")),
        )
        .await,
    );
    assert!(message.contains("record<_spooky_query>"), "{message}");

    // UPSERT cannot write a relation (even an existing one); UPDATE can.
    let message = statement_error(
        db.run(Query::new("UPSERT $e SET version = 9").bind("e", id.clone()))
            .await,
    );
    assert!(message.contains("not a relation"), "{message}");
    db.run(Query::new("UPDATE $e SET version = 4").bind("e", id.clone()))
        .await
        .expect("update edge");
    assert_eq!(edges_between(db, "v1", &thread).await[0]["version"], 4);

    // Deleting edges by id, missing ones included.
    db.run(Query::new("DELETE $ids RETURN NONE").bind(
        "ids",
        vec![id.clone(), RecordId::new("_spooky_list_ref", "missing")],
    ))
    .await
    .expect("delete");
    assert_eq!(edges_between(db, "v1", &thread).await, json!([]));
    app.stop().await;
}
backend_tests!(one_edge_per_view_and_record);

async fn view_rows_are_typed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;
    let upsert = |client: &str, ttl: &str, at: &str| {
        Query::new(
            "UPSERT $row CONTENT { clientId: $clientId, surql: $surql, params: $params, \
             ttl: <duration> $ttl, lastActiveAt: <datetime> $at } RETURN AFTER",
        )
        .bind("row", view("v1"))
        .bind("clientId", client.to_owned())
        .bind("surql", "SELECT * FROM thread WHERE author = $uid")
        .bind(
            "params",
            json!({"uid": "user:1", "nested": {"list": [1, "x", null]}}),
        )
        .bind("ttl", ttl.to_owned())
        .bind("at", at.to_owned())
    };
    let first = db
        .run(upsert("client-1", "1h", "2024-01-01T00:00:00Z"))
        .await
        .expect("create row")
        .take_json(0)
        .unwrap();
    assert_eq!(first[0]["ttl"], "1h", "{first}");
    assert_eq!(
        first[0]["params"]["nested"]["list"],
        json!([1, "x", null]),
        "{first}"
    );
    let created = first[0]["createdAt"].clone();
    assert!(created.is_string(), "{first}");

    // Re-registering rewrites the row; createdAt stays.
    let second = db
        .run(upsert("client-2", "2h", "2024-01-02T00:00:00Z"))
        .await
        .expect("rewrite row")
        .take_json(0)
        .unwrap();
    assert_eq!(second[0]["clientId"], "client-2");
    assert_eq!(second[0]["ttl"], "2h");
    assert_eq!(second[0]["createdAt"], created, "{second}");

    // Types are checked: a datetime must be cast, a duration must parse,
    // clientId is required.
    let message = statement_error(
        db.run(
            Query::new("UPSERT $row SET clientId = 'c', surql = 's', lastActiveAt = $at")
                .bind("row", view("v2"))
                .bind("at", "2024-01-01T00:00:00Z"),
        )
        .await,
    );
    assert!(message.contains("lastActiveAt"), "{message}");
    assert!(
        db.run(upsert("c", "soon", "2024-01-01T00:00:00Z"))
            .await
            .is_err()
    );
    let message = statement_error(
        db.run(Query::new("CREATE $row SET surql = 's'").bind("row", view("v3")))
            .await,
    );
    assert!(message.contains("clientId"), "{message}");
    app.stop().await;
}
backend_tests!(view_rows_are_typed);

/// Record users (the app's clients) may read their own views and edges
/// (whose `owner` they are), never write them, and never see the
/// migrations table. Over ws only: the embedded engine runs as root.
async fn clients_read_but_only_ssp_writes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;
    let mut setup = Query::transaction();
    setup.push("DEFINE TABLE user SCHEMALESS PERMISSIONS FULL");
    setup.push(
        "DEFINE ACCESS account ON DATABASE TYPE RECORD \
         SIGNUP (CREATE user SET name = $name) \
         SIGNIN (SELECT * FROM user WHERE name = $name) \
         DURATION FOR SESSION 1h",
    );
    setup.push("CREATE _spooky_query:v1 SET clientId = 'c1', surql = 'SELECT * FROM thread', lastActiveAt = time::now()");
    setup.push("RELATE _spooky_query:v1->_spooky_list_ref->thread:1 SET clientId = 'c1', version = 1, updatedAt = time::now()");
    db.run(setup).await.expect("setup");

    let client = surrealdb::engine::any::connect(app.test_db.url())
        .await
        .expect("client connects");
    client
        .signup(surrealdb::opt::auth::Record {
            namespace: "spooky".to_owned(),
            database: "spooky".to_owned(),
            access: "account".to_owned(),
            params: json!({"name": "alice"}),
        })
        .await
        .expect("signup");
    client.use_ns("spooky").use_db("spooky").await.expect("use");
    // v1 becomes alice's; v2 (and its edge) belongs to no one.
    let mut own = Query::transaction();
    own.push(
        "UPDATE _spooky_query:v1 SET owner = (SELECT VALUE id FROM user WHERE name = 'alice')[0]",
    );
    own.push("UPDATE _spooky_list_ref SET owner = NONE");
    own.push("CREATE _spooky_query:v2 SET clientId = 'c2', surql = 'SELECT * FROM thread', lastActiveAt = time::now()");
    own.push("RELATE _spooky_query:v2->_spooky_list_ref->thread:1 SET clientId = 'c2', version = 1, updatedAt = time::now()");
    db.run(own).await.expect("owners");

    let select = |sql: &'static str| {
        let client = &client;
        async move {
            let mut response = client.query(sql).await.expect("query");
            let rows: Vec<Value> = response.take(0).expect("rows");
            rows.len()
        }
    };
    assert_eq!(select("SELECT * FROM _spooky_list_ref").await, 1);
    assert_eq!(select("SELECT * FROM _spooky_query").await, 1);
    assert_eq!(select("SELECT * FROM _spooky_migration").await, 0);

    for write in [
        "RELATE _spooky_query:v1->_spooky_list_ref->thread:2 SET clientId = 'x', version = 1, updatedAt = time::now()",
        "UPDATE _spooky_list_ref SET version = 99",
        "DELETE _spooky_list_ref",
        "CREATE _spooky_query:evil SET clientId = 'x', surql = 'x', lastActiveAt = time::now()",
        "UPDATE _spooky_query SET clientId = 'x'",
        "DELETE _spooky_query",
        "DELETE _spooky_migration",
    ] {
        // Refused or a no-op; either way nothing may change.
        let _ = client.query(write).await;
    }
    let edges = db
        .run(Query::new(
            "SELECT out, version, clientId FROM _spooky_list_ref ORDER BY clientId",
        ))
        .await
        .unwrap()
        .take_json(0)
        .unwrap();
    assert_eq!(
        edges,
        json!([
            {"out": "thread:1", "version": 1, "clientId": "c1"},
            {"out": "thread:1", "version": 1, "clientId": "c2"}
        ])
    );
    let views = db
        .run(Query::new(
            "SELECT VALUE clientId FROM _spooky_query ORDER BY clientId",
        ))
        .await
        .unwrap()
        .take_json(0)
        .unwrap();
    assert_eq!(views, json!(["c1", "c2"]));
    assert_eq!(
        ssp::db::migrations::applied(db).await.unwrap().len(),
        ssp::db::migrations::MIGRATIONS.len()
    );
    app.stop().await;
}
backend_tests!(clients_read_but_only_ssp_writes: ws);
