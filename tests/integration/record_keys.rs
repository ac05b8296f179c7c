//! Record ids of every key kind SurrealDB stores: number, string,
//! uuid, array, object. A view over them must write edges whose `out` is
//! exactly the record, whether the record came from SurrealDB (the worker)
//! or from `/ingest`, and `GET /view` must name them as SurrealDB does.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use ssp::db::{Db, Query};
use surrealdb::types as sdb;

use crate::support::{Backend, TestApp, wait_for};

const VIEW: &str = "keyed_items";
const SQL: &str = "SELECT * FROM item WHERE active = true";

/// Records of every kind of key, written straight into SurrealDB (fixed test
/// text, no user data).
const CREATE: &str = "CREATE item:1, item:⟨a b⟩, item:u'0190e2a4-0000-7000-8000-000000000000', \
    item:[1, 'a'], item:[1f], item:{ a: 1, b: [u'00000000-0000-4000-8000-000000000001'] } \
    CONTENT { active: true }";

/// The same kinds, as JSON clients send them to `/ingest`.
const INGESTED: [(&str, &str); 5] = [
    ("item:[2,'b']", "item:[2, 'b']"),
    (
        "item:u'00000000-0000-4000-8000-0000000000aa'",
        "item:u'00000000-0000-4000-8000-0000000000aa'",
    ),
    ("[3, [true]]", "item:[3, [true]]"),
    ("item:{b: 'x', a: 2}", "item:{ a: 2, b: 'x' }"),
    ("item:`x y`", "item:`x y`"),
];

async fn run(db: &Db, sql: &str, vars: Vec<(&str, sdb::Value)>) -> Value {
    let mut q = Query::new(sql.to_owned());
    for (k, v) in vars {
        q.set(k, v);
    }
    let mut response = db
        .run(q)
        .await
        .unwrap_or_else(|e| panic!("`{sql}` failed: {e}"));
    response.take_json(0).expect("result")
}

fn view_rid() -> sdb::Value {
    sdb::Value::RecordId(sdb::RecordId::new("_spooky_query", VIEW.to_owned()))
}

/// The `out` of the view's edges, as SurrealDB renders them.
async fn outs(db: &Db) -> BTreeSet<String> {
    let rows = run(
        db,
        "SELECT VALUE out FROM _spooky_list_ref WHERE in = $q",
        vec![("q", view_rid())],
    )
    .await;
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| r.as_str().expect("out").to_owned())
        .collect()
}

/// How many edges of the view point at exactly `id` (a typed record id).
async fn edges_to(db: &Db, id: sdb::RecordId) -> i64 {
    let rows = run(
        db,
        "SELECT VALUE count() FROM _spooky_list_ref WHERE in = $q AND out = $id GROUP ALL",
        vec![("q", view_rid()), ("id", sdb::Value::RecordId(id))],
    )
    .await;
    rows[0].as_i64().unwrap_or(0)
}

async fn records_in_view(app: &TestApp) -> BTreeSet<String> {
    let body = app.get_json(&format!("/view/{VIEW}")).await;
    body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

/// A typed record id, read by SurrealDB's parser (test text).
fn typed(text: &str) -> sdb::RecordId {
    surrealdb_syn::record_id(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

async fn every_key_kind_reaches_the_edges_as_the_record_itself(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;
    let response = app
        .post("/view/register")
        .json(&json!({"id": VIEW, "sql": SQL, "clientId": "keys-test"}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::OK);

    // From SurrealDB, through the worker.
    run(db, CREATE, vec![]).await;
    let ids: BTreeSet<String> = run(db, "SELECT VALUE id FROM item", vec![])
        .await
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), 6);
    let got = wait_for("an edge per record", Duration::from_secs(10), || async {
        let o = outs(db).await;
        (o.len() >= ids.len()).then_some(o)
    })
    .await;
    assert_eq!(got, ids, "the edges' `out` are the records SurrealDB holds");
    for id in &ids {
        assert_eq!(edges_to(db, typed(id)).await, 1, "{id}");
    }
    let dangling = run(
        db,
        "SELECT VALUE out FROM _spooky_list_ref WHERE in = $q AND out NOTINSIDE (SELECT VALUE id FROM item)",
        vec![("q", view_rid())],
    )
    .await;
    assert_eq!(
        dangling,
        json!([]),
        "no edge names a record that does not exist"
    );
    assert_eq!(
        records_in_view(&app).await,
        ids,
        "GET /view names them as SurrealDB does"
    );

    // From JSON, through /ingest.
    for (id, _) in INGESTED {
        let response = app
            .post("/ingest")
            .json(&json!({"table": "item", "op": "CREATE", "id": id, "record": {"active": true}}))
            .send()
            .await
            .expect("ingest");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "{id}: {body}");
    }
    let all = wait_for(
        "the ingested records' edges",
        Duration::from_secs(10),
        || async {
            let o = outs(db).await;
            (o.len() >= ids.len() + INGESTED.len()).then_some(o)
        },
    )
    .await;
    for (sent, rendered) in INGESTED {
        assert!(
            all.contains(rendered),
            "{sent} is in the edges as {rendered}: {all:?}"
        );
        assert_eq!(edges_to(db, typed(rendered)).await, 1, "{sent}");
    }
    let listed = records_in_view(&app).await;
    for (_, rendered) in INGESTED {
        assert!(
            listed.contains(rendered),
            "GET /view lists {rendered}: {listed:?}"
        );
    }

    // A range names many records, none of them one: refused, with why.
    let response = app
        .post("/ingest")
        .json(&json!({"table": "item", "op": "CREATE", "id": "item:1..3", "record": {"active": true}}))
        .send()
        .await
        .expect("ingest");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.unwrap_or_default();
    assert!(body.contains("range"), "{body}");
    app.stop().await;
}
backend_tests!(every_key_kind_reaches_the_edges_as_the_record_itself: mem, ws);
