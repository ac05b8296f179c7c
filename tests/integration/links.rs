//! Record-link paths in the incremental tier: `WHERE author.name = 'ann'`
//! follows the link as SurrealDB does (and `ORDER BY author.name` does not,
//! as in SurrealDB), loads the linked tables when the view registers, and
//! moves a post in or out of a view when the record it links to changes.
//!
//! Data is written in SurrealDB, as an app would; after each change every
//! view's edges must equal the ids SurrealDB returns for its query.

use std::time::Duration;

use surrealdb::types as sdb;

use crate::support::{Backend, TestApp, TestDb};
use crate::worker::{View, direct_db, edges, register, rid, run, wait_agree};

const AGREE: Duration = Duration::from_secs(5);

fn s(v: &str) -> sdb::Value {
    sdb::Value::String(v.to_owned())
}

async fn tier(app: &TestApp, view: &str) -> serde_json::Value {
    app.get_json(&format!("/view/{view}")).await["tier"].clone()
}

async fn link_paths_run_incrementally(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    for (k, name) in [(1, "acme"), (2, "initech")] {
        run(
            &db,
            "UPSERT $id SET name = $n",
            vec![("id", rid("kor", k)), ("n", s(name))],
        )
        .await;
    }
    for (k, name, org) in [(1, "ann", 1), (2, "bob", 2), (3, "cat", 1)] {
        run(
            &db,
            "UPSERT $id SET name = $n, org = $o",
            vec![
                ("id", rid("kus", k)),
                ("n", s(name)),
                ("o", rid("kor", org)),
            ],
        )
        .await;
    }
    for (k, author) in [(1, 1), (2, 2), (3, 3), (4, 9)] {
        // kp:4's author does not exist (yet).
        run(
            &db,
            "UPSERT $id SET title = $t, author = $a",
            vec![
                ("id", rid("kp", k)),
                ("t", s(&format!("post {k}"))),
                ("a", rid("kus", author)),
            ],
        )
        .await;
    }
    let by_name = View {
        id: "kp_by_author_name",
        sql: "SELECT * FROM kp WHERE author.name = 'ann'",
    };
    let by_org = View {
        id: "kp_by_author_org",
        sql: "SELECT * FROM kp WHERE author.org.name = 'acme'",
    };
    let by_id = View {
        id: "kp_by_author_id",
        sql: "SELECT * FROM kp WHERE author.id != NONE",
    };
    let first = View {
        id: "kp_first_by_author",
        sql: "SELECT * FROM kp ORDER BY author.name DESC LIMIT 2",
    };
    // The linked records themselves, fetched into the rows: members.
    let fetched = View {
        id: "kp_fetch_author",
        sql: "SELECT * FROM kp WHERE title != NONE FETCH author",
    };
    let whole = View {
        id: "kp_author_whole",
        sql: "SELECT *, author.* AS by FROM kp",
    };
    // A subquery over the record a field names: as `FETCH author`.
    let from_field = View {
        id: "kp_from_author",
        sql: "SELECT id, (SELECT id, name FROM $parent.author)[0] AS by FROM kp",
    };
    let views = [by_name, by_org, by_id, first, fetched, whole, from_field];
    for v in views {
        let body = register(&app, v).await;
        assert_eq!(body["tier"]["kind"], "incremental", "{}: {body}", v.sql);
    }
    wait_agree(&db, &views, AGREE).await;
    assert_eq!(
        edges(&db, by_org.id).await.keys().collect::<Vec<_>>(),
        ["kp:1", "kp:3"],
        "two links away: ann and cat work at acme"
    );
    let e = edges(&db, fetched.id).await;
    assert!(
        e.contains_key("kus:1") && !e.contains_key("kus:9"),
        "fetched authors that exist: {e:?}"
    );

    // The linked records change; the posts do not.
    run(
        &db,
        "UPDATE $id SET name = 'ann'",
        vec![("id", rid("kus", 2))],
    )
    .await;
    wait_agree(&db, &views, AGREE).await;
    assert!(edges(&db, by_name.id).await.contains_key("kp:2"));
    run(
        &db,
        "UPDATE $id SET name = 'acme'",
        vec![("id", rid("kor", 2))],
    )
    .await;
    wait_agree(&db, &views, AGREE).await;
    assert_eq!(edges(&db, by_org.id).await.len(), 3);
    // The missing author arrives; another goes.
    run(
        &db,
        "CREATE $id SET name = 'zed', org = $o",
        vec![("id", rid("kus", 9)), ("o", rid("kor", 1))],
    )
    .await;
    run(&db, "DELETE $id", vec![("id", rid("kus", 1))]).await;
    wait_agree(&db, &views, AGREE).await;
    // `ORDER BY` does not follow links in SurrealDB: id order.
    let e = edges(&db, first.id).await;
    assert_eq!(e.keys().collect::<Vec<_>>(), ["kp:1", "kp:2"]);
    for v in [fetched, from_field] {
        let e = edges(&db, v.id).await;
        assert!(
            e.contains_key("kus:9") && !e.contains_key("kus:1"),
            "{}: zed came, ann went: {e:?}",
            v.sql
        );
    }
    assert!(!edges(&db, by_id.id).await.contains_key("kp:1"));
    // A post moves to another author.
    run(
        &db,
        "UPDATE $id SET author = $a",
        vec![("id", rid("kp", 3)), ("a", rid("kus", 2))],
    )
    .await;
    wait_agree(&db, &views, AGREE).await;
    for v in views {
        assert_eq!(tier(&app, v.id).await["kind"], "incremental", "{}", v.sql);
    }
    app.stop().await;
}
backend_tests!(link_paths_run_incrementally);

/// The tables a view reaches only through links stay followed after a
/// restart: from the state file, and rebuilt from the database without it.
async fn linked_tables_survive_a_restart(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    run(
        &db,
        "UPSERT $id SET name = 'ann'",
        vec![("id", rid("rku", 1))],
    )
    .await;
    run(
        &db,
        "UPSERT $id SET author = $a",
        vec![("id", rid("rkp", 1)), ("a", rid("rku", 1))],
    )
    .await;
    let view = View {
        id: "rkp_by_ann",
        sql: "SELECT * FROM rkp WHERE author.name = 'ann'",
    };
    assert_eq!(register(&app, view).await["tier"]["kind"], "incremental");
    wait_agree(&db, &[view], AGREE).await;
    app.stop().await;

    for (name, rebuilt) in [("bob", false), ("ann", true)] {
        if rebuilt {
            std::fs::remove_file(test_db.dir.path().join("spooky_state.json"))
                .expect("the state file");
        }
        let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
        let db = direct_db(&app.test_db, Some(&app)).await;
        assert_eq!(tier(&app, view.id).await["kind"], "incremental");
        run(
            &db,
            "UPDATE $id SET name = $n",
            vec![("id", rid("rku", 1)), ("n", s(name))],
        )
        .await;
        wait_agree(&db, &[view], AGREE).await;
        assert_eq!(edges(&db, view.id).await.len(), usize::from(name == "ann"));
        app.stop().await;
    }
}
backend_tests!(linked_tables_survive_a_restart: ws);

/// A time window with `FETCH` (a presence list): the view registers before
/// any record links into `kpu`, which SSP then does not hold; the first
/// link into it appears later, and the fetched user must become a member.
/// With a link path in `WHERE` instead, the row's next change (its next
/// ping) sees through the link once the table is loaded.
async fn a_clocked_view_follows_a_link_into_a_table_it_did_not_hold(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    run(&db, "UPSERT kpu:1 SET name = 'ann'", vec![]).await;
    run(&db, "UPSERT kpr:1 SET ping = time::now()", vec![]).await;
    let view = View {
        id: "online",
        sql: "SELECT * FROM kpr WHERE ping > time::now() - 1h FETCH user",
    };
    let named = View {
        id: "named",
        sql: "SELECT * FROM kpr WHERE ping > time::now() - 1h AND user.name = 'ann'",
    };
    register(&app, view).await;
    register(&app, named).await;
    run(&db, "UPDATE kpr:1 SET user = kpu:1", vec![]).await;
    wait_agree(&db, &[view], AGREE).await;
    // (The table's load is marked after its records arrive: a ping may
    // come between them, and the next one then sees through the link.)
    for _ in 0..20 {
        run(&db, "UPDATE kpr:1 SET ping = time::now()", vec![]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if edges(&db, "named").await.contains_key("kpr:1") {
            break;
        }
    }
    wait_agree(&db, &[view, named], AGREE).await;
    app.stop().await;
}
backend_tests!(a_clocked_view_follows_a_link_into_a_table_it_did_not_hold);
