//! The re-query tier: queries SurrealDB accepts and SSP's
//! incremental engine does not maintain are registered anyway, and their
//! edges follow SurrealDB's own answer, re-run after each change.
//!
//! Every test writes directly in SurrealDB, as an app would, and waits until
//! each view's edges equal the ids SurrealDB returns for its query.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use surrealdb::types as sdb;

use crate::pipeline::post;
use crate::support::{Backend, TestApp};
use crate::worker::{View, direct_db, register, rid, run, wait_agree};

const AGREE: Duration = Duration::from_secs(5);

async fn tier(app: &TestApp, view: &str) -> Value {
    app.get_json(&format!("/view/{view}")).await["tier"].clone()
}

async fn write(db: &ssp::db::Db, sql: &str, vars: Vec<(&str, sdb::Value)>) {
    run(db, sql, vars).await;
}

fn s(v: &str) -> sdb::Value {
    sdb::Value::String(v.to_owned())
}

/// A record-link path in WHERE and a fetched link in the projection: the
/// post enters when its author is renamed, although no row of the view
/// showed that author before (the link is found in the data).
async fn link_paths_follow_the_linked_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    write(
        &db,
        "UPSERT $id SET name = 'ann'",
        vec![("id", rid("lu", 1))],
    )
    .await;
    write(
        &db,
        "UPSERT $id SET name = 'bob'",
        vec![("id", rid("lu", 2))],
    )
    .await;
    write(
        &db,
        "UPSERT $id SET title = 'hello', author = $a",
        vec![("id", rid("lp", 1)), ("a", rid("lu", 1))],
    )
    .await;
    write(
        &db,
        "UPSERT $id SET title = 'world', author = $a",
        vec![("id", rid("lp", 2)), ("a", rid("lu", 2))],
    )
    .await;
    let view = View {
        id: "by_ann",
        sql: "SELECT *, author.{id, name} AS a FROM lp WHERE author.name = 'ann'",
    };
    let body = register(&app, view).await;
    assert_eq!(body["tier"]["kind"], "requery", "{body}");
    let records: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(records, ["lp:1", "lu:1"], "the post and its fetched author");
    wait_agree(&db, &[view], AGREE).await;

    // The plain forms of the same query: the engine follows `author` into
    // `lu` (loaded for the view) and keeps them incremental, and a `$param`
    // path through a record id the same way.
    for (id, sql, params, kind) in [
        (
            "plain_link",
            "SELECT * FROM lp WHERE author.name = 'ann'",
            json!({}),
            "incremental",
        ),
        (
            "link_id",
            "SELECT * FROM lp WHERE author.id = $uid",
            json!({"uid": "lu:1"}),
            "incremental",
        ),
        // A param holding a record id is a link too (found in playrbase).
        (
            "param_link",
            "SELECT * FROM lp WHERE author = $u.id",
            json!({"u": "lu:1"}),
            "incremental",
        ),
    ] {
        let response = app
            .post("/view/register")
            .json(&json!({"id": id, "sql": sql, "params": params, "clientId": "c"}))
            .send()
            .await
            .expect("register");
        let body: Value = response.json().await.expect("body");
        assert_eq!(body["tier"]["kind"], kind, "{sql}: {body}");
        let records: Vec<&str> = body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(records, ["lp:1"], "{sql}");
    }

    // A view that shows no row yet: nothing in its answer links to `lu`;
    // the links in `lp`'s records say that it reads `lu` all the same.
    let none_yet = View {
        id: "by_dan",
        sql: "SELECT *, author.{id} AS a FROM lp WHERE author.name = 'dan'",
    };
    register(&app, none_yet).await;
    wait_agree(&db, &[none_yet], AGREE).await;
    write(
        &db,
        "UPDATE $id SET name = 'dan'",
        vec![("id", rid("lu", 3))],
    )
    .await;
    write(
        &db,
        "UPSERT $id SET title = 'three', author = $a",
        vec![("id", rid("lp", 3)), ("a", rid("lu", 3))],
    )
    .await;
    wait_agree(&db, &[none_yet], AGREE).await;
    write(
        &db,
        "UPDATE $id SET name = 'dan'",
        vec![("id", rid("lu", 2))],
    )
    .await;
    wait_agree(&db, &[none_yet], AGREE).await;
    assert!(
        crate::worker::edges(&db, none_yet.id)
            .await
            .contains_key("lp:2")
    );

    // bob becomes ann: his post enters, though the view never showed him.
    write(
        &db,
        "UPDATE $id SET name = 'ann'",
        vec![("id", rid("lu", 2))],
    )
    .await;
    wait_agree(&db, &[view], AGREE).await;
    let e = crate::worker::edges(&db, view.id).await;
    assert!(e.contains_key("lp:2") && e.contains_key("lu:2"), "{e:?}");
    // A change to a member's content bumps its version on the edge.
    let v1 = e["lu:1"];
    write(&db, "UPDATE $id SET bio = 'x'", vec![("id", rid("lu", 1))]).await;
    crate::worker::wait_edges(&db, view.id, "lu:1's new version", AGREE, |e| {
        e.get("lu:1") == Some(&(v1 + 1))
    })
    .await;
    // ann leaves: her post and she leave the view.
    write(
        &db,
        "UPDATE $id SET name = 'cat'",
        vec![("id", rid("lu", 1))],
    )
    .await;
    wait_agree(&db, &[view], AGREE).await;
    let e = crate::worker::edges(&db, view.id).await;
    assert!(!e.contains_key("lp:1") && !e.contains_key("lu:1"), "{e:?}");
    app.stop().await;
}
backend_tests!(link_paths_follow_the_linked_record);

/// A view registered before its data exists cannot know that `author` will
/// hold record links: it starts incremental. The first change that puts a
/// link on a path it reads into a table SSP does not hold moves it to the
/// re-query tier, and its edges become SurrealDB's answer; once the change
/// worker has loaded that table, it comes back to the engine. A link into a
/// table SSP follows for another view is followed in the engine at once; a
/// view that reads no such path stays.
async fn a_view_moves_to_requery_when_its_data_gains_a_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    write(&db, "DEFINE TABLE gp; DEFINE TABLE gu;", vec![]).await;
    let by_name = View {
        id: "gp_by_author_name",
        sql: "SELECT * FROM gp WHERE author.name = 'ann'",
    };
    let by_title = View {
        id: "gp_by_title",
        sql: "SELECT * FROM gp WHERE title = 'hello'",
    };
    // `ge` is a table no view reads.
    let by_editor = View {
        id: "gp_by_editor_name",
        sql: "SELECT * FROM gp WHERE editor.name = 'ann'",
    };
    // The link only in a subquery's `$parent` path: the namesakes of the
    // post's author.
    let namesakes = View {
        id: "gp_author_namesakes",
        sql: "SELECT *, (SELECT * FROM gu WHERE name = $parent.author.name) AS same FROM gp",
    };
    for v in [by_name, by_title, namesakes, by_editor] {
        let body = register(&app, v).await;
        assert_eq!(body["tier"]["kind"], "incremental", "{body}");
    }
    write(
        &db,
        "UPSERT $id SET name = 'ann'",
        vec![("id", rid("ge", 1))],
    )
    .await;
    write(
        &db,
        "UPSERT $id SET name = 'ann'",
        vec![("id", rid("gu", 2))],
    )
    .await;
    write(
        &db,
        "UPSERT $id SET name = 'ann'",
        vec![("id", rid("gu", 1))],
    )
    .await;
    write(
        &db,
        "UPSERT $id SET title = 'hello', author = $a, editor = $e",
        vec![
            ("id", rid("gp", 1)),
            ("a", rid("gu", 1)),
            ("e", rid("ge", 1)),
        ],
    )
    .await;
    let all = [by_name, by_title, namesakes, by_editor];
    wait_agree(&db, &all, AGREE).await;
    assert!(
        crate::worker::edges(&db, by_editor.id)
            .await
            .contains_key("gp:1")
    );
    let e = crate::worker::edges(&db, by_name.id).await;
    assert!(e.contains_key("gp:1"), "the post by ann: {e:?}");
    let e = crate::worker::edges(&db, namesakes.id).await;
    assert!(
        e.contains_key("gu:1") && e.contains_key("gu:2"),
        "both anns, through the post's author: {e:?}"
    );
    // Moved out, and back once `ge` is loaded (the log says both).
    crate::support::wait_for("by_editor back in the engine", AGREE, || async {
        let back = tier(&app, by_editor.id).await["kind"] == "incremental"
            && crate::worker::logged(&[by_editor.id, "back in the incremental tier"]);
        back.then_some(())
    })
    .await;
    assert!(crate::worker::logged(&[
        by_editor.id,
        "moved to the re-query tier"
    ]));
    assert_eq!(tier(&app, namesakes.id).await["kind"], "requery");
    // `gu` is loaded for the namesakes' subquery: followed in the engine.
    assert_eq!(tier(&app, by_name.id).await["kind"], "incremental");
    assert_eq!(tier(&app, by_title.id).await["kind"], "incremental");
    // From now on it follows the linked record too.
    write(
        &db,
        "UPDATE $id SET name = 'bob'",
        vec![("id", rid("gu", 1))],
    )
    .await;
    write(
        &db,
        "UPDATE $id SET name = 'bob'",
        vec![("id", rid("ge", 1))],
    )
    .await;
    wait_agree(&db, &all, AGREE).await;
    assert!(crate::worker::edges(&db, by_name.id).await.is_empty());
    assert!(crate::worker::edges(&db, by_editor.id).await.is_empty());
    app.stop().await;
}
backend_tests!(a_view_moves_to_requery_when_its_data_gains_a_link);

/// Graph traversal and counts over a relation table, and a user function
/// that reads another table: each change to any of them re-runs the views.
async fn traversals_counts_and_user_functions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    write(
        &db,
        "DEFINE FUNCTION fn::banned($u: record) { RETURN count(SELECT * FROM ban WHERE who = $u) > 0; }",
        vec![],
    )
    .await;
    for k in 1..=3 {
        write(
            &db,
            "UPSERT $id SET name = $n",
            vec![("id", rid("gu", k)), ("n", s(&format!("u{k}")))],
        )
        .await;
    }
    write(
        &db,
        "UPSERT $id SET title = 'p'",
        vec![("id", rid("gp", 1))],
    )
    .await;
    write(
        &db,
        "RELATE $a->glikes->$b",
        vec![("a", rid("gu", 1)), ("b", rid("gp", 1))],
    )
    .await;
    let popular = View {
        id: "popular",
        sql: "SELECT id, count(<-glikes) AS likes FROM gp WHERE count(<-glikes) >= 2",
    };
    let likers = View {
        id: "likers",
        sql: "SELECT id, name, ->glikes->gp AS liked FROM gu WHERE count(->glikes) > 0",
    };
    let allowed = View {
        id: "allowed",
        sql: "SELECT * FROM gu WHERE !fn::banned(id)",
    };
    for v in [popular, likers, allowed] {
        assert_eq!(
            register(&app, v).await["tier"]["kind"],
            "requery",
            "{}",
            v.sql
        );
    }
    let views = [popular, likers, allowed];
    wait_agree(&db, &views, AGREE).await;
    write(
        &db,
        "RELATE $a->glikes->$b",
        vec![("a", rid("gu", 2)), ("b", rid("gp", 1))],
    )
    .await;
    wait_agree(&db, &views, AGREE).await;
    assert!(
        crate::worker::edges(&db, "popular")
            .await
            .contains_key("gp:1")
    );
    write(
        &db,
        "UPSERT $id SET who = $u",
        vec![("id", rid("ban", 1)), ("u", rid("gu", 3))],
    )
    .await;
    wait_agree(&db, &views, AGREE).await;
    assert!(
        !crate::worker::edges(&db, "allowed")
            .await
            .contains_key("gu:3")
    );
    write(
        &db,
        "DELETE glikes WHERE in = $a",
        vec![("a", rid("gu", 1))],
    )
    .await;
    wait_agree(&db, &views, AGREE).await;
    assert!(
        !crate::worker::edges(&db, "popular")
            .await
            .contains_key("gp:1")
    );
    app.stop().await;
}
backend_tests!(traversals_counts_and_user_functions);

/// What neither tier can keep exact is still refused, saying why: a clock
/// in the query, a param the view does not give, a write.
async fn what_cannot_be_kept_exact_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (sql, needle) in [
        // A time window is incremental (`time_windows.rs`); a clock in
        // the projection changes its answer at instants SSP cannot know.
        (
            "SELECT *, at > time::now() - 1h AS recent FROM t",
            "time::now",
        ),
        (
            "SELECT *, array::group(a) AS n FROM t WHERE a = $nope",
            "$nope",
        ),
        ("SELECT *, fn::nope() AS n FROM t", "fn::nope"),
        ("SELECT * FROM (CREATE t SET a = 1)", "CREATE"),
        // `$auth` without the viewer given as `owner` (the answer says so),
        // and the session params SSP never has.
        ("SELECT * FROM room WHERE owner == $auth.id", "`owner`"),
        ("SELECT * FROM user WHERE id = $session.rd", "$session"),
    ] {
        let response = app
            .post("/view/register")
            .json(&json!({"id": "refused", "sql": sql, "clientId": "c"}))
            .send()
            .await
            .expect("register");
        let status = response.status();
        let body: Value = response.json().await.expect("body");
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{sql}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{sql}: {error}");
    }
    assert_eq!(
        app.get("/view/refused").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
backend_tests!(what_cannot_be_kept_exact_is_refused: mem);

/// A re-query view survives a restart: the state file keeps its tier and
/// answer, and changes made while SSP was down reach its edges.
async fn a_requery_view_survives_a_restart(backend: Backend) {
    let test_db = crate::support::TestDb::start(backend).await;
    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    let db = direct_db(&test_db, Some(&app)).await;
    write(
        &db,
        "UPSERT $id SET name = 'ann'",
        vec![("id", rid("ru", 1))],
    )
    .await;
    write(
        &db,
        "UPSERT $id SET author = $a",
        vec![("id", rid("rp", 1)), ("a", rid("ru", 1))],
    )
    .await;
    let view = View {
        id: "restarted",
        sql: "SELECT *, author.{id, name} AS a FROM rp WHERE author.name = 'ann'",
    };
    register(&app, view).await;
    wait_agree(&db, &[view], AGREE).await;
    // The embedded store is released only once every handle on it is gone.
    drop(db);
    app.stop().await;

    let app = TestApp::spawn_on(test_db.clone(), test_db.settings()).await;
    let db = direct_db(&test_db, Some(&app)).await;
    assert_eq!(tier(&app, view.id).await["kind"], "requery");
    write(
        &db,
        "UPSERT $id SET author = $a",
        vec![("id", rid("rp", 2)), ("a", rid("ru", 1))],
    )
    .await;
    wait_agree(&db, &[view], AGREE).await;
    assert_eq!(
        crate::worker::edges(&db, view.id).await.len(),
        3,
        "rp:1, rp:2, ru:1"
    );
    app.stop().await;

    // Without the state file, the view is rebuilt from its row, in its tier.
    let settings = test_db.settings();
    std::fs::remove_file(&settings.persistence_file).expect("the state file was saved");
    let app = TestApp::spawn_on(test_db.clone(), settings).await;
    assert_eq!(tier(&app, view.id).await["kind"], "requery");
    write(
        &db,
        "UPDATE $id SET name = 'bob'",
        vec![("id", rid("ru", 1))],
    )
    .await;
    wait_agree(&db, &[view], AGREE).await;
    assert!(crate::worker::edges(&db, view.id).await.is_empty());
    app.stop().await;
}
// Over ws only: an embedded SurrealKV store stays locked in-process while the
// stopped server's background tasks hold it (see `worker.rs`).
backend_tests!(a_requery_view_survives_a_restart: ws);

/// Until the viewer signs in again, `$auth` is the record id the app gave
/// as `auth`: plain `$auth` runs incrementally, `$auth.id` (which fetches
/// the viewer's record) in the re-query tier, both as SurrealDB answers
/// with `$auth` that record.
async fn auth_is_the_viewer_given_at_registration(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    for (room, owner) in [(1, 1), (2, 2), (3, 1)] {
        write(
            &db,
            "UPSERT $id SET owner = $o",
            vec![("id", rid("room", room)), ("o", rid("user", owner))],
        )
        .await;
    }
    let register = |id: &'static str, sql: &'static str, auth: Value| {
        post(
            &app,
            "/view/register",
            json!({"id": id, "sql": sql, "auth": auth, "clientId": "c"}),
        )
    };
    let ids = |body: &Value| -> Vec<String> {
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = register(
        "mine",
        "SELECT * FROM room WHERE owner = $auth",
        json!("user:1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tier"]["kind"], "incremental", "{body}");
    assert_eq!(body["params"]["auth"], "user:1", "kept among the params");
    assert_eq!(ids(&body), ["room:1", "room:3"]);

    // `$auth.id` fetches the viewer's record: NONE while it does not exist.
    // The engine reads it from its store, and follows it.
    let (status, body) = register(
        "mine_by_id",
        "SELECT * FROM room WHERE owner == $auth.id",
        json!("user:2"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tier"]["kind"], "incremental", "{body}");
    assert!(ids(&body).is_empty(), "{body}");
    write(
        &db,
        "UPSERT $id SET name = 'bob'",
        vec![("id", rid("user", 2))],
    )
    .await;
    write(
        &db,
        "UPSERT $id SET owner = $o",
        vec![("id", rid("room", 4)), ("o", rid("user", 2))],
    )
    .await;
    let want = |view: &'static str, records: &'static [&'static str]| {
        crate::worker::wait_edges(&db, view, view, AGREE, move |e| {
            e.keys().map(String::as_str).eq(records.iter().copied())
        })
    };
    want("mine_by_id", &["room:2", "room:4"]).await;
    write(
        &db,
        "UPSERT $id SET owner = $o",
        vec![("id", rid("room", 5)), ("o", rid("user", 1))],
    )
    .await;
    want("mine", &["room:1", "room:3", "room:5"]).await;

    // Bad viewers are 400s, and change nothing.
    for (auth, params) in [
        (json!("not a record"), json!({})),
        (json!(1), json!({})),
        (json!("user:1"), json!({"auth": "user:2"})),
    ] {
        let (status, body) = post(
            &app,
            "/view/register",
            json!({
                "id": "bad", "sql": "SELECT * FROM room WHERE owner = $auth",
                "auth": auth, "params": params, "clientId": "c"
            }),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{auth} {params}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains("auth"),
            "{body}"
        );
    }
    assert_eq!(
        app.get("/view/bad").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
backend_tests!(auth_is_the_viewer_given_at_registration);

/// Rows that do not show their `id` still come from their records, and in
/// both tiers those records are the view's members, with the records the
/// rows fetch or the subqueries they project select: a client learns of
/// every record it reads. A `SELECT VALUE` of a link holds the rows'
/// records, not the linked ones (not fetched, they show nothing). Each view
/// is checked against the same query showing `id` everywhere, whose ids
/// SurrealDB returns.
async fn rows_without_their_id_hold_their_records(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = direct_db(&app.test_db, Some(&app)).await;
    write(
        &db,
        "DEFINE FUNCTION fn::rbanned($u: any) { LET $n = count(SELECT * FROM rban WHERE who = $u); \
         RETURN $n > 0; }",
        vec![],
    )
    .await;
    write(
        &db,
        "UPSERT ru:1 SET name = 'ann', follows = [ru:2, ru:9]; UPSERT ru:2 SET name = 'bob'; \
         UPSERT rp:1 SET title = 'a', author = ru:1; UPSERT rp:2 SET title = 'b', author = ru:2;",
        vec![],
    )
    .await;
    // (View, the same query showing `id`, the tier SSP runs it in.)
    let views = [
        (
            View {
                id: "names",
                sql: "SELECT name FROM ru WHERE !fn::rbanned(id)",
            },
            "SELECT id, name FROM ru WHERE !fn::rbanned(id)",
            "requery",
        ),
        (
            View {
                id: "posts",
                sql: "SELECT title, (SELECT name FROM ru WHERE id = $parent.author)[0] AS by \
                      FROM rp WHERE !fn::rbanned(author)",
            },
            "SELECT id, title, (SELECT id, name FROM ru WHERE id = $parent.author)[0] AS by \
             FROM rp WHERE !fn::rbanned(author)",
            "requery",
        ),
        (
            View {
                id: "values",
                sql: "SELECT VALUE author FROM rp WHERE !fn::rbanned(author)",
            },
            "SELECT id FROM rp WHERE !fn::rbanned(author)",
            "requery",
        ),
        (
            View {
                id: "follows",
                sql: "SELECT follows FROM ru WHERE name = 'ann' FETCH follows",
            },
            "SELECT id, follows FROM ru WHERE name = 'ann' FETCH follows",
            "incremental",
        ),
        (
            View {
                id: "latest",
                sql: "SELECT name, (SELECT title FROM rp WHERE author = $parent.id ORDER BY \
                      title)[$] AS latest FROM ru",
            },
            "SELECT id, name, (SELECT id, title FROM rp WHERE author = $parent.id ORDER BY \
             title)[$] AS latest FROM ru",
            "incremental",
        ),
    ];
    for (v, _, kind) in &views {
        assert_eq!(register(&app, *v).await["tier"]["kind"], *kind, "{}", v.sql);
    }
    let members: Vec<View> = views
        .iter()
        .map(|(v, members, _)| View {
            id: v.id,
            sql: members,
        })
        .collect();
    wait_agree(&db, &members, AGREE).await;
    assert_eq!(
        crate::worker::edges(&db, "names")
            .await
            .into_keys()
            .collect::<Vec<_>>(),
        ["ru:1", "ru:2"]
    );
    for round in [
        "UPSERT rp:3 SET title = 'c', author = ru:1; UPSERT ru:9 SET name = 'cat';",
        "UPSERT rban:1 SET who = ru:2; UPDATE ru:1 SET follows = [ru:9];",
        "DELETE rp:3; DELETE ru:2;",
    ] {
        write(&db, round, vec![]).await;
        wait_agree(&db, &members, AGREE).await;
    }
    app.stop().await;
}
backend_tests!(rows_without_their_id_hold_their_records);
