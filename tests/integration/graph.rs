//! Graph traversals over `TYPE RELATION` tables in the incremental tier:
//! `(SELECT ... FROM $parent<-wrote<-user)`, the edges themselves
//! (`$parent<-wrote`), and from an edge to its end (`$parent->post`).
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
    let views = [authors, first, wrote, edge_rows, ends, values];
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
