//! `x IN (SELECT VALUE path FROM table WHERE ..)` in the incremental tier:
//! the subquery reads no row, so the engine evaluates it once over its
//! store, and a change to its table evaluates it again. A user leaves
//! `id NOT IN (SELECT VALUE out FROM moderation WHERE active = true)` when
//! a moderation of them is made active, although the user did not change.
//!
//! Data is written in SurrealDB, as an app would; after each change every
//! view's edges must equal the ids SurrealDB returns for its query.

use std::time::Duration;

use surrealdb::types as sdb;

use crate::support::{Backend, TestApp, TestDb};
use crate::worker::{View, direct_db, edges, register, rid, run, wait_agree};

const AGREE: Duration = Duration::from_secs(5);

async fn value_subqueries_run_incrementally(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    for k in 1..=4 {
        run(
            &db,
            "UPSERT $id SET name = $n",
            vec![
                ("id", rid("qu", k)),
                ("n", sdb::Value::String(format!("u{k}';`"))),
            ],
        )
        .await;
    }
    // qm:1 is active, qm:2 not; qm:3 names a user that does not exist.
    for (k, user, active) in [(1, 1, true), (2, 2, false), (3, 9, true)] {
        run(
            &db,
            "UPSERT $id SET out = $u, active = $a",
            vec![
                ("id", rid("qm", k)),
                ("u", rid("qu", user)),
                ("a", sdb::Value::Bool(active)),
            ],
        )
        .await;
    }
    let unmoderated = View {
        id: "qu_unmoderated",
        sql: "SELECT id, name FROM qu WHERE id NOT IN (SELECT VALUE out FROM qm WHERE active = true)",
    };
    // `∈`, and names with quotes, a backtick and `;`.
    let named = View {
        id: "qu_named",
        sql: "SELECT * FROM qu WHERE name ∈ (SELECT VALUE who FROM qn WHERE kind = 'k')",
    };
    let views = [unmoderated, named];
    for v in views {
        let body = register(&app, v).await;
        assert_eq!(body["tier"]["kind"], "incremental", "{}: {body}", v.sql);
    }
    wait_agree(&db, &views, AGREE).await;
    assert_eq!(
        edges(&db, unmoderated.id).await.keys().collect::<Vec<_>>(),
        ["qu:2", "qu:3", "qu:4"]
    );
    assert!(edges(&db, named.id).await.is_empty());

    // The subquery's table changes; the users do not.
    run(&db, "UPDATE qm:2 SET active = true", vec![]).await;
    run(&db, "DELETE qm:1", vec![]).await;
    for (k, who, kind) in [(1, "u3';`", "k"), (2, "u4';`", "other")] {
        run(
            &db,
            "CREATE $id SET who = $w, kind = $k",
            vec![
                ("id", rid("qn", k)),
                ("w", sdb::Value::String(who.into())),
                ("k", sdb::Value::String(kind.into())),
            ],
        )
        .await;
    }
    wait_agree(&db, &views, AGREE).await;
    assert_eq!(
        edges(&db, unmoderated.id).await.keys().collect::<Vec<_>>(),
        ["qu:1", "qu:3", "qu:4"]
    );
    assert_eq!(
        edges(&db, named.id).await.keys().collect::<Vec<_>>(),
        ["qu:3"]
    );
    // A new user, one the moderation names; a rename into the names.
    run(&db, "CREATE qu:9 SET name = 'u9'", vec![]).await;
    run(&db, "CREATE qu:5 SET name = 'u5'", vec![]).await;
    run(&db, "UPDATE qn:2 SET kind = 'k'", vec![]).await;
    wait_agree(&db, &views, AGREE).await;
    assert!(!edges(&db, unmoderated.id).await.contains_key("qu:9"));
    assert!(edges(&db, named.id).await.contains_key("qu:4"));
    for v in views {
        let tier = app.get_json(&format!("/view/{}", v.id)).await["tier"].clone();
        assert_eq!(tier["kind"], "incremental", "{}: {tier}", v.sql);
    }
    app.stop().await;
}
backend_tests!(value_subqueries_run_incrementally);

/// The subquery's table stays followed after a restart: from the state
/// file, and rebuilt from the database without it.
async fn a_subquery_table_survives_a_restart(backend: Backend) {
    let test_db = TestDb::start(backend).await;
    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    for k in 1..=2 {
        run(&db, "UPSERT $id SET n = 1", vec![("id", rid("rqu", k))]).await;
    }
    run(&db, "UPSERT rqm:1 SET out = rqu:1, active = true", vec![]).await;
    let view = View {
        id: "rqu_unmoderated",
        sql: "SELECT * FROM rqu WHERE id NOT IN (SELECT VALUE out FROM rqm WHERE active = true)",
    };
    assert_eq!(register(&app, view).await["tier"]["kind"], "incremental");
    wait_agree(&db, &[view], AGREE).await;
    app.stop().await;

    for (active, rebuilt) in [(false, false), (true, true)] {
        if rebuilt {
            std::fs::remove_file(test_db.dir.path().join("spooky_state.json"))
                .expect("the state file");
        }
        let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
        let db = direct_db(&app.test_db, Some(&app)).await;
        let tier = app.get_json(&format!("/view/{}", view.id)).await["tier"].clone();
        assert_eq!(tier["kind"], "incremental", "{tier}");
        run(
            &db,
            "UPDATE rqm:1 SET active = $a",
            vec![("a", sdb::Value::Bool(active))],
        )
        .await;
        wait_agree(&db, &[view], AGREE).await;
        assert_eq!(edges(&db, view.id).await.len(), if active { 1 } else { 2 });
        app.stop().await;
    }
}
backend_tests!(a_subquery_table_survives_a_restart: ws);
