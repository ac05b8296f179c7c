//! Graph traversals over `TYPE RELATION` tables in the incremental tier:
//! `(SELECT ... FROM $parent<-wrote<-user)`, the edges themselves
//! (`$parent<-wrote`), from an edge to its end (`$parent->post`), and
//! `WHERE gu:2 IN <-wrote<-user` from the row.
//!
//! Data is written in SurrealDB with `RELATE`, as an app would; after each
//! change every view's edges must equal the ids SurrealDB returns for its
//! query, and the views stay incremental. Deleting a user deletes its
//! edges in SurrealDB; the engine must too.

use std::time::Duration;

use surrealdb::types as sdb;

use crate::support::{Backend, TestApp};
use crate::worker::{View, direct_db, edges, register, rid, run, wait_agree};

const AGREE: Duration = Duration::from_secs(5);

fn s(v: &str) -> sdb::Value {
    sdb::Value::String(v.to_owned())
}

/// A user key with quotes, a backtick and `;`: bound, never pasted.
fn odd_user() -> sdb::Value {
    sdb::Value::RecordId(sdb::RecordId::new("gu", "a'b;`c".to_owned()))
}

async fn relate(db: &ssp::db::Db, edge: &str, from: sdb::Value, to: sdb::Value) {
    run(
        db,
        "RELATE $from->gwrote->$to SET id = $id, n = 0",
        vec![
            (
                "id",
                sdb::Value::RecordId(sdb::RecordId::new("gwrote", edge.to_owned())),
            ),
            ("from", from),
            ("to", to),
        ],
    )
    .await;
}

async fn traversals_run_incrementally(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    run(&db, "DEFINE TABLE gwrote TYPE RELATION", vec![]).await;
    for (k, name) in [(1, "ann"), (2, "bob")] {
        run(
            &db,
            "UPSERT $id SET name = $n",
            vec![("id", rid("gu", k)), ("n", s(name))],
        )
        .await;
    }
    run(&db, "UPSERT $id SET name = 'odd'", vec![("id", odd_user())]).await;
    for k in 1..=3 {
        run(&db, "UPSERT $id SET n = $id", vec![("id", rid("gp", k))]).await;
    }
    relate(&db, "b", rid("gu", 2), rid("gp", 1)).await;
    relate(&db, "a", rid("gu", 1), rid("gp", 1)).await;
    relate(&db, "c", odd_user(), rid("gp", 2)).await;
    // gu:9 does not exist (yet); gp:9 neither.
    relate(&db, "d", rid("gu", 9), rid("gp", 2)).await;
    relate(&db, "e", rid("gu", 1), rid("gp", 9)).await;

    let authors = View {
        id: "gp_authors",
        sql: "SELECT id, (SELECT id, name FROM $parent<-gwrote<-gu) AS by FROM gp",
    };
    let first = View {
        id: "gp_first_author",
        sql: "SELECT id, (SELECT id, name FROM $parent<-gwrote<-gu WHERE name != 'bob')[0] AS by \
              FROM gp",
    };
    let wrote = View {
        id: "gu_posts",
        sql: "SELECT id, (SELECT id FROM $parent->gwrote->gp) AS posts FROM gu",
    };
    let edge_rows = View {
        id: "gp_edges",
        sql: "SELECT id, (SELECT id, n FROM $parent<-gwrote WHERE n > 0) AS e FROM gp",
    };
    let ends = View {
        id: "gwrote_posts",
        sql: "SELECT id, (SELECT id FROM $parent->gp)[0] AS p FROM gwrote",
    };
    // Values SSP does not evaluate: the rows' records only.
    let values = View {
        id: "gp_values",
        sql: "SELECT id, count(<-gwrote) AS n, <-gwrote<-gu.name AS names, gu:1 IN <-gwrote<-gu \
              AS by_ann, $me INSIDE <-gwrote<-gu.id AS by_me, (SELECT name FROM gu WHERE name = \
              'bob')[0].name AS bob FROM gp \
              WHERE n != NONE",
    };
    // Membership in a traversal from the row, in `WHERE`.
    let by_bob = View {
        id: "gp_by_bob",
        sql: "SELECT id FROM gp WHERE gu:2 IN <-gwrote<-gu",
    };
    let not_by_ann = View {
        id: "gp_not_by_ann",
        sql: "SELECT id FROM gp WHERE gu:1 NOT IN <-gwrote<-gu",
    };
    let wrote_gp1 = View {
        id: "gu_wrote_gp1",
        sql: "SELECT id, name FROM gu WHERE gp:1 ∈ ->gwrote->gp",
    };
    let views = [
        authors, first, wrote, edge_rows, ends, values, by_bob, not_by_ann, wrote_gp1,
    ];
    for v in views {
        let body = register(&app, v).await;
        assert_eq!(body["tier"]["kind"], "incremental", "{}: {body}", v.sql);
    }
    wait_agree(&db, &views, AGREE).await;
    let e = edges(&db, authors.id).await;
    assert!(
        e.contains_key("gu:1")
            && e.keys().any(|k| k.starts_with("gu:") && k.contains("a'b;"))
            && !e.contains_key("gu:9"),
        "{e:?}"
    );
    assert!(edges(&db, by_bob.id).await.contains_key("gp:1"));
    assert!(edges(&db, wrote_gp1.id).await.contains_key("gu:2"));

    // The missing user arrives; an edge gains a field; a new edge.
    run(
        &db,
        "CREATE $id SET name = 'zed'",
        vec![("id", rid("gu", 9))],
    )
    .await;
    run(&db, "UPDATE gwrote:b SET n = 2", vec![]).await;
    relate(&db, "f", rid("gu", 2), rid("gp", 3)).await;
    wait_agree(&db, &views, AGREE).await;
    assert!(edges(&db, edge_rows.id).await.contains_key("gwrote:b"));
    // ann is deleted, and with her (in SurrealDB) her edges.
    run(&db, "DELETE $id", vec![("id", rid("gu", 1))]).await;
    wait_agree(&db, &views, AGREE).await;
    assert!(!edges(&db, ends.id).await.contains_key("gwrote:a"));
    assert!(edges(&db, not_by_ann.id).await.contains_key("gp:1"));
    // A post is deleted, an edge too, a user renamed.
    run(&db, "DELETE $id", vec![("id", rid("gp", 2))]).await;
    run(&db, "DELETE gwrote:b", vec![]).await;
    run(
        &db,
        "UPDATE $id SET name = 'bob'",
        vec![("id", rid("gu", 9))],
    )
    .await;
    wait_agree(&db, &views, AGREE).await;
    for v in views {
        let tier = app.get_json(&format!("/view/{}", v.id)).await["tier"].clone();
        assert_eq!(tier["kind"], "incremental", "{}: {tier}", v.sql);
    }

    // Over a table that is not `TYPE RELATION`, SSP cannot tell edges from
    // records with `in` and `out`: the re-query tier answers, exactly.
    run(
        &db,
        "RELATE $from->gany->$to",
        vec![("from", rid("gu", 2)), ("to", rid("gp", 1))],
    )
    .await;
    let any = View {
        id: "gp_any",
        sql: "SELECT id, (SELECT id FROM $parent<-gany<-gu) AS by FROM gp",
    };
    let body = register(&app, any).await;
    assert_eq!(body["tier"]["kind"], "requery", "{body}");
    assert!(
        body["tier"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("TYPE RELATION")),
        "{body}"
    );
    wait_agree(&db, &[any], AGREE).await;
    assert!(edges(&db, any.id).await.contains_key("gu:2"));
    app.stop().await;
}
backend_tests!(traversals_run_incrementally);

/// What the lowering of `$p IN <-edge<-table` (into `id IN (SELECT VALUE
/// out FROM edge WHERE in = $p AND record::tb(in) = 'table')`) rests on,
/// asked of SurrealDB itself: both give the same rows for an edge from a
/// record that does not exist, a `$p` equal by value to the edge's end
/// (`lu:[1]` and `lu:[1f]`), a `$p` of another table, a string and NONE.
/// Where they differ (an end with an array key, which the graph index
/// holds exactly), the view runs in the re-query tier, and agrees.
async fn membership_lowering_rests_on_surrealdb(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    run(
        &db,
        "DEFINE TABLE lown TYPE RELATION; CREATE la:1, la:2, la:3 CONTENT {}; \
         CREATE lu:1 CONTENT {}; RELATE lu:9->lown->la:1; RELATE lu:[1f]->lown->la:2; \
         RELATE ladm:1->lown->la:3;",
        vec![],
    )
    .await;
    let traversal = "SELECT VALUE id FROM la WHERE $p IN <-lown<-lu";
    let lowered = "SELECT VALUE id FROM la WHERE id IN (SELECT VALUE out FROM lown WHERE in = $p \
                   AND record::tb(in) = 'lu')";
    let array_key = |k: f64| {
        sdb::Value::RecordId(sdb::RecordId::new(
            "lu",
            sdb::RecordIdKey::Array(sdb::Array::from(vec![sdb::Value::Number(
                sdb::Number::Float(k),
            )])),
        ))
    };
    let ps = [
        rid("lu", 9),
        array_key(1.0),
        rid("ladm", 1),
        s("lu:9"),
        sdb::Value::None,
    ];
    for p in ps {
        let a = run(&db, traversal, vec![("p", p.clone())]).await;
        let b = run(&db, lowered, vec![("p", p.clone())]).await;
        assert_eq!(a, b, "$p = {p:?}");
    }
    assert_eq!(
        run(&db, traversal, vec![("p", rid("lu", 9))]).await,
        serde_json::json!(["la:1"])
    );

    // An end with an array key: not reached from the row with an equal key.
    run(
        &db,
        "RELATE lu:1->lown->la:[4f]; CREATE la:[4] CONTENT {};",
        vec![],
    )
    .await;
    let a = run(&db, traversal, vec![("p", rid("lu", 1))]).await;
    let b = run(&db, lowered, vec![("p", rid("lu", 1))]).await;
    assert_ne!(a, b, "the graph index holds exact keys: {a} / {b}");
    let view = View {
        id: "la_of_lu1",
        sql: "SELECT id FROM la WHERE lu:1 IN <-lown<-lu",
    };
    let body = register(&app, view).await;
    assert_eq!(body["tier"]["kind"], "requery", "{body}");
    wait_agree(&db, &[view], AGREE).await;
    app.stop().await;
}
backend_tests!(membership_lowering_rests_on_surrealdb);

/// `FROM $team->gatt` / `FROM $ev<-gatt`: the edges of the record a param
/// names, incrementally, as `RELATE` and `DELETE` in SurrealDB move them;
/// the edges equal SurrealDB's answer to the same query with the same
/// params after each change.
async fn edges_of_a_param_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    run(
        &db,
        "DEFINE TABLE gatt TYPE RELATION; CREATE gteam:1, gteam:2 CONTENT {}; \
         RELATE gteam:1->gatt->gev:1 SET id = gatt:b, n = 1; \
         RELATE gteam:2->gatt->gev:1 SET id = gatt:c, n = 2; \
         RELATE gteam:1->gatt->gev:2 SET id = gatt:d, n = 0; \
         RELATE gteam:1->gatt->gplace:7 SET id = gatt:p, n = 9;",
        vec![],
    )
    .await;
    let views = [
        (
            "team_attends",
            "SELECT * FROM $team->gatt ORDER BY n DESC LIMIT 2",
            ("team", "gteam:1", rid("gteam", 1)),
        ),
        (
            "event_attended",
            "SELECT id, in FROM $ev<-gatt WHERE n > 0 LIMIT 1",
            ("ev", "gev:1", rid("gev", 1)),
        ),
    ];
    for (id, sql, (name, text, _)) in &views {
        let body = crate::pipeline::register(&app, id, sql, serde_json::json!({*name: text})).await;
        assert_eq!(body["tier"]["kind"], "incremental", "{sql}: {body}");
    }
    let agree = || async {
        let deadline = std::time::Instant::now() + AGREE;
        loop {
            let mut problem = None;
            for (id, sql, (name, _, value)) in &views {
                let got: Vec<String> = edges(&db, id).await.into_keys().collect();
                let answer = run(&db, sql, vec![(name, value.clone())]).await;
                let mut want: Vec<String> = answer
                    .as_array()
                    .expect("rows")
                    .iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect();
                want.sort();
                if got != want {
                    problem = Some(format!("{id}: edges {got:?}, SurrealDB {want:?}"));
                }
            }
            let Some(problem) = problem else { return };
            assert!(std::time::Instant::now() < deadline, "{problem}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    agree().await;
    assert_eq!(
        edges(&db, "team_attends")
            .await
            .into_keys()
            .collect::<Vec<_>>(),
        ["gatt:b", "gatt:p"]
    );
    // An app reports `DELETE gplace:7`, a record that never existed: no
    // view reads `gplace`, so SSP does not hold it and cannot tell.
    // SurrealDB deleted nothing, so the edge to it stays. (gatt:p was made
    // before any view followed `gatt`: no copy of it from the change
    // worker would bring it back if SSP deleted it.)
    let (status, body) = crate::pipeline::post(
        &app,
        "/ingest",
        serde_json::json!({"table": "gplace", "op": "DELETE", "id": "gplace:7"}),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    agree().await;
    assert!(edges(&db, "team_attends").await.contains_key("gatt:p"));
    // A new edge, one that changes, and gteam:1 deleted with its edges.
    run(
        &db,
        "RELATE gteam:1->gatt->gev:3 SET id = gatt:a, n = 5; UPDATE gatt:c SET n = 0;",
        vec![],
    )
    .await;
    agree().await;
    assert!(edges(&db, "team_attends").await.contains_key("gatt:a"));
    run(&db, "DELETE gteam:1", vec![]).await;
    agree().await;
    assert!(edges(&db, "team_attends").await.is_empty());
    app.stop().await;
}
backend_tests!(edges_of_a_param_record);
