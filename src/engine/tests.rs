//! Engine-level acceptance cases: what a view must hold after each kind of
//! change, on the engine alone.

use super::*;
use serde_json::json;

fn meta(id: &str, sql: &str, params: serde_json::Value) -> ViewMeta {
    ViewMeta {
        id: id.into(),
        client_id: "client".into(),
        sql: sql.into(),
        params: params.as_object().cloned().unwrap_or_default(),
        ttl: "1h".into(),
        last_active_at: Utc::now(),
        owner: None,
    }
}

fn rid(s: &str) -> RecordId {
    RecordId::parse(s).expect("a record id")
}

fn put(id: &str, content: serde_json::Value) -> Change {
    let Value::Object(o) = Value::from(&content) else {
        panic!("an object")
    };
    Change {
        id: rid(id),
        content: Some(o),
    }
}

fn del(id: &str) -> Change {
    Change {
        id: rid(id),
        content: None,
    }
}

/// The delta of view `v` in a batch's output, as (created, updated, deleted) id texts.
fn of(out: &[ViewDelta], v: &str) -> (Vec<String>, Vec<(String, u64)>, Vec<String>) {
    match out.iter().find(|d| d.view.as_ref() == v) {
        None => Default::default(),
        Some(d) => (
            d.created.iter().map(|(r, _)| r.to_string()).collect(),
            d.updated.iter().map(|(r, v)| (r.to_string(), *v)).collect(),
            d.deleted.iter().map(|r| r.to_string()).collect(),
        ),
    }
}

/// The ids of the views the engine moved to the re-query tier since the
/// last call (see `Engine::take_link_views`).
fn moved_views(e: &mut Engine) -> Vec<String> {
    e.take_link_views()
        .iter()
        .map(|m| m.id.to_string())
        .collect()
}

fn ids(e: &Engine, v: &str) -> Vec<String> {
    e.view_records(v)
        .unwrap_or_default()
        .into_iter()
        .map(|(r, _)| r.to_string())
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn cases_1_to_7_filter_by_param() {
    let mut e = Engine::new();
    let d = e
        .register(meta(
            "v",
            "SELECT * FROM thread WHERE author = $uid",
            json!({"uid": "user:1"}),
        ))
        .unwrap();
    assert!(d.is_empty(), "1: no edges on an empty database");

    let out = e.apply_batch(&[put("thread:1", json!({"author": "user:1", "title": "a"}))]);
    let d = out.iter().find(|d| d.view.as_ref() == "v").unwrap();
    assert_eq!(
        d.created,
        vec![(rid("thread:1"), 1)],
        "2: created with version 1"
    );

    let out = e.apply_batch(&[put("thread:2", json!({"author": "user:2"}))]);
    assert!(out.is_empty(), "3: nothing happens");

    let out = e.apply_batch(&[put("thread:1", json!({"author": "user:1", "title": "b"}))]);
    assert_eq!(
        of(&out, "v").1,
        vec![("thread:1".to_string(), 2)],
        "4: version 2"
    );

    let out = e.apply_batch(&[put("thread:1", json!({"author": "user:2", "title": "b"}))]);
    assert_eq!(of(&out, "v").2, s(&["thread:1"]), "5: deleted");

    let out = e.apply_batch(&[put("thread:2", json!({"author": "user:1"}))]);
    assert_eq!(of(&out, "v").0, s(&["thread:2"]), "6: created");

    let out = e.apply_batch(&[del("thread:2")]);
    assert_eq!(of(&out, "v").2, s(&["thread:2"]), "7: deleted");
    assert!(ids(&e, "v").is_empty());
}

const AUTHOR_VIEW: &str = "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author FROM thread ORDER BY title DESC LIMIT 10";

#[test]
fn cases_8_to_11_subquery_records() {
    let mut e = Engine::new();
    e.apply_batch(&[
        put("user:1", json!({"name": "ann"})),
        put("thread:1", json!({"author": "user:1", "title": "t1"})),
    ]);
    let d = e.register(meta("v", AUTHOR_VIEW, json!({}))).unwrap();
    let created: Vec<String> = d.created.iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(created, s(&["thread:1", "user:1"]), "8");

    let out = e.apply_batch(&[put("user:1", json!({"name": "ann2"}))]);
    assert_eq!(
        of(&out, "v").1,
        vec![("user:1".to_string(), 2)],
        "9: version grows"
    );
    let out = e.apply_batch(&[put("user:2", json!({"name": "bob"}))]);
    assert!(out.is_empty(), "9: unreferenced user");

    e.apply_batch(&[put("thread:2", json!({"author": "user:1", "title": "t2"}))]);
    let out = e.apply_batch(&[del("thread:1")]);
    assert_eq!(of(&out, "v"), (vec![], vec![], s(&["thread:1"])), "10a");
    let out = e.apply_batch(&[del("thread:2")]);
    assert_eq!(
        of(&out, "v"),
        (vec![], vec![], s(&["thread:2", "user:1"])),
        "10b"
    );

    e.apply_batch(&[put("thread:1", json!({"author": "user:1", "title": "t1"}))]);
    assert_eq!(ids(&e, "v"), s(&["thread:1", "user:1"]));
    let out = e.apply_batch(&[put("thread:1", json!({"author": "user:2", "title": "t1"}))]);
    let (c, u, dl) = of(&out, "v");
    assert_eq!(c, s(&["user:2"]), "11: user:2 created");
    assert_eq!(
        u.iter().map(|x| x.0.clone()).collect::<Vec<_>>(),
        s(&["thread:1"]),
        "11: thread:1 updated"
    );
    assert_eq!(dl, s(&["user:1"]), "11: user:1 deleted");
}

#[test]
fn the_last_row_of_a_subquery_moves_when_the_order_does() {
    // MercuryCore's forum: the latest post of each category.
    let mut e = Engine::new();
    e.apply_batch(&[
        put("cat:1", json!({"name": "general"})),
        put("post:1", json!({"cat": "cat:1", "at": 1})),
        put("post:2", json!({"cat": "cat:1", "at": 3})),
        put("post:3", json!({"cat": "cat:1", "at": 2})),
    ]);
    let sql = "SELECT *, (SELECT * FROM post WHERE cat = $parent.id ORDER BY at)[$] AS latest \
               FROM cat";
    e.register(meta("v", sql, json!({}))).unwrap();
    assert_eq!(ids(&e, "v"), s(&["cat:1", "post:2"]));
    // A tie on `at` is broken by id, ascending, so the last is the greater.
    let out = e.apply_batch(&[put("post:0", json!({"cat": "cat:1", "at": 3}))]);
    assert!(of(&out, "v").0.is_empty(), "post:0 sorts before post:2");
    let out = e.apply_batch(&[put("post:4", json!({"cat": "cat:1", "at": 3}))]);
    assert_eq!(of(&out, "v"), (s(&["post:4"]), vec![], s(&["post:2"])));
    // The last one leaves: the one before it moves in.
    e.apply_batch(&[del("post:4"), del("post:2")]);
    assert_eq!(ids(&e, "v"), s(&["cat:1", "post:0"]));
    // Descending: the last is the lowest; without ORDER BY, the greatest id.
    let sql = "SELECT *, (SELECT * FROM post WHERE cat = $parent.id ORDER BY at DESC)[$] AS first \
               FROM cat";
    e.register(meta("d", sql, json!({}))).unwrap();
    assert_eq!(ids(&e, "d"), s(&["cat:1", "post:1"]));
    let sql = "SELECT *, (SELECT * FROM post WHERE cat = $parent.id)[$] AS first FROM cat";
    e.register(meta("n", sql, json!({}))).unwrap();
    assert_eq!(ids(&e, "n"), s(&["cat:1", "post:3"]));
    // The last row of a cut window is the re-query tier's.
    let sql = "SELECT *, (SELECT * FROM post WHERE cat = $parent.id LIMIT 2)[$] AS l FROM cat";
    assert!(matches!(
        e.register(meta("w", sql, json!({}))),
        Err(EngineError::Plan(plan::PlanError::Unsupported(_)))
    ));
}

#[test]
fn case_12_top_k() {
    let mut e = Engine::new();
    e.register(meta(
        "v",
        "SELECT * FROM post ORDER BY score DESC LIMIT 2",
        json!({}),
    ))
    .unwrap();
    e.apply_batch(&[
        put("post:1", json!({"score": 10})),
        put("post:2", json!({"score": 20})),
        put("post:3", json!({"score": 30})),
    ]);
    assert_eq!(ids(&e, "v"), s(&["post:2", "post:3"]));
    let out = e.apply_batch(&[put("post:1", json!({"score": 100}))]);
    assert_eq!(of(&out, "v"), (s(&["post:1"]), vec![], s(&["post:2"])));
    let out = e.apply_batch(&[put("post:3", json!({"score": 0}))]);
    assert_eq!(of(&out, "v"), (s(&["post:2"]), vec![], s(&["post:3"])));
}

#[test]
fn cases_13_14_ordering_and_filters() {
    let mut e = Engine::new();
    e.apply_batch(&[
        put(
            "item:1",
            json!({"category": "A", "score": 10, "active": true}),
        ),
        put(
            "item:2",
            json!({"category": "A", "score": 20, "active": false}),
        ),
        put(
            "item:3",
            json!({"category": "B", "score": 10, "active": true}),
        ),
        put(
            "item:4",
            json!({"category": "A", "score": 30, "active": true}),
        ),
    ]);
    e.register(meta(
        "v13",
        "SELECT * FROM item ORDER BY category ASC, score DESC LIMIT 2",
        json!({}),
    ))
    .unwrap();
    assert_eq!(ids(&e, "v13"), s(&["item:2", "item:4"]));
    e.register(meta(
        "v14",
        "SELECT * FROM item WHERE (category = 'A' OR category = 'B') AND active = true",
        json!({}),
    ))
    .unwrap();
    assert_eq!(ids(&e, "v14"), s(&["item:1", "item:3", "item:4"]));
}

#[test]
fn case_15_two_views_one_batch_and_unregister() {
    let mut e = Engine::new();
    e.register(meta(
        "a",
        "SELECT * FROM thread WHERE author = $uid",
        json!({"uid": "user:1"}),
    ))
    .unwrap();
    e.register(meta("b", "SELECT * FROM thread", json!({})))
        .unwrap();
    let out = e.apply_batch(&[put("thread:1", json!({"author": "user:1"}))]);
    assert_eq!(out.len(), 2);
    let out = e.apply_batch(&[put("thread:1", json!({"author": "user:1", "x": 1}))]);
    assert_eq!(of(&out, "a").1.len(), 1);
    assert_eq!(of(&out, "b").1.len(), 1);
    let gone = e.unregister("a").unwrap();
    assert_eq!(gone.deleted, vec![rid("thread:1")]);
    assert_eq!(ids(&e, "b"), s(&["thread:1"]));
    assert!(e.unregister("a").is_none());
}

#[test]
fn identical_content_is_a_no_op() {
    let mut e = Engine::new();
    e.register(meta("v", "SELECT * FROM t", json!({}))).unwrap();
    e.apply_batch(&[put("t:1", json!({"a": 1}))]);
    assert!(e.apply_batch(&[put("t:1", json!({"a": 1}))]).is_empty());
    assert_eq!(e.version(&rid("t:1")), Some(1));
}

#[test]
fn shared_views_get_their_own_deltas() {
    let mut e = Engine::new();
    for v in ["a", "b"] {
        e.register(meta(v, "SELECT * FROM t WHERE x = 1", json!({})))
            .unwrap();
    }
    let out = e.apply_batch(&[put("t:1", json!({"x": 1}))]);
    assert_eq!(out.len(), 2);
    assert_eq!(e.node_count(), 1, "identical views share one node");
}

#[test]
fn the_views_of_one_client_share_its_id_and_ids_no_view_holds_are_swept() {
    let mut e = Engine::new();
    for v in ["a", "b"] {
        // Each registration brings its own copy of the id, as `/view` does.
        let mut m = meta(v, "SELECT * FROM t WHERE x = 1", json!({}));
        m.client_id = String::from("tab-1").into();
        e.register(m).unwrap();
    }
    let out = e.apply_batch(&[put("t:1", json!({"x": 1}))]);
    assert_eq!(out.len(), 2);
    assert_eq!(&*out[0].client_id, "tab-1");
    assert!(
        Arc::ptr_eq(&out[0].client_id, &out[1].client_id),
        "one copy"
    );
    drop(out);
    // Clients come and go: the set keeps about as many ids as views hold.
    for i in 0..5_000 {
        let mut m = meta(&format!("v{i}"), "SELECT * FROM t WHERE x = 1", json!({}));
        m.client_id = format!("client-{i}").into();
        e.register(m).unwrap();
        e.unregister(&format!("v{i}")).unwrap();
    }
    assert!(e.clients.len() <= 2_048, "{} ids kept", e.clients.len());
    assert!(e.clients.iter().any(|c| &**c == "tab-1"), "held ids stay");
}

#[test]
fn reregistering_applies_only_the_difference() {
    let mut e = Engine::new();
    e.apply_batch(&[
        put("t:1", json!({"x": 1})),
        put("t:2", json!({"x": 2})),
        put("t:3", json!({"x": 2})),
    ]);
    e.register(meta("v", "SELECT * FROM t WHERE x = $x", json!({"x": 1})))
        .unwrap();
    let d = e
        .register(meta("v", "SELECT * FROM t WHERE x >= $x", json!({"x": 1})))
        .unwrap();
    assert_eq!(d.created, vec![(rid("t:2"), 1), (rid("t:3"), 1)]);
    assert!(d.deleted.is_empty());
    let d = e
        .register(meta("v", "SELECT * FROM t WHERE x = $x", json!({"x": 2})))
        .unwrap();
    assert!(d.created.is_empty());
    assert_eq!(d.deleted, vec![rid("t:1")]);
    assert_eq!(e.node_count(), 1, "the old nodes are gone");
}

#[test]
fn bad_registration_changes_nothing() {
    let mut e = Engine::new();
    assert!(
        e.register(meta("v", "SELECT count() FROM t GROUP BY x", json!({})))
            .is_err()
    );
    assert!(
        e.register(meta("v", "SELECT * FROM t LIMIT $n", json!({"n": "x"})))
            .is_err()
    );
    assert_eq!(e.view_count(), 0);
    assert_eq!(e.node_count(), 0);
}

#[test]
fn state_round_trips_through_json() {
    let mut e = Engine::new();
    e.register(meta("v", AUTHOR_VIEW, json!({}))).unwrap();
    e.apply_batch(&[
        put("user:1", json!({"name": "ann"})),
        put("thread:1", json!({"author": "user:1", "title": "t1"})),
    ]);
    e.apply_batch(&[put("user:1", json!({"name": "ann2"}))]);
    let text = serde_json::to_string(&e.to_state()).unwrap();
    let back = Engine::from_state(serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(back.view_records("v"), e.view_records("v"));
    assert_eq!(back.version(&rid("user:1")), Some(2));
}

#[test]
fn nested_subqueries_and_shared_children() {
    let mut e = Engine::new();
    let sql = "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author, \
        (SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author FROM comment \
         WHERE thread = $parent.id ORDER BY created_at DESC LIMIT 2) AS comments FROM thread WHERE id = $id";
    e.apply_batch(&[
        put("user:1", json!({})),
        put("user:2", json!({})),
        put("user:3", json!({})),
        put("thread:1", json!({"author": "user:1"})),
        put(
            "comment:1",
            json!({"thread": "thread:1", "author": "user:2", "created_at": 1}),
        ),
        put(
            "comment:2",
            json!({"thread": "thread:1", "author": "user:1", "created_at": 2}),
        ),
    ]);
    e.register(meta("v", sql, json!({"id": "thread:1"})))
        .unwrap();
    assert_eq!(
        ids(&e, "v"),
        s(&["comment:1", "comment:2", "thread:1", "user:1", "user:2"])
    );
    // A newer comment by user:3 pushes comment:1 (and so user:2) out.
    let out = e.apply_batch(&[put(
        "comment:3",
        json!({"thread": "thread:1", "author": "user:3", "created_at": 3}),
    )]);
    assert_eq!(
        of(&out, "v"),
        (
            s(&["comment:3", "user:3"]),
            vec![],
            s(&["comment:1", "user:2"])
        )
    );
    // user:1 is reached twice (thread author and comment author): it stays
    // until both paths are gone.
    let out = e.apply_batch(&[del("comment:2")]);
    assert_eq!(
        of(&out, "v"),
        (s(&["comment:1", "user:2"]), vec![], s(&["comment:2"]))
    );
}

#[test]
fn a_changed_record_is_updated_in_every_view_that_holds_it_by_any_path() {
    let mut e = Engine::new();
    let with_author =
        "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author FROM thread";
    e.register(meta("threads", with_author, json!({}))).unwrap();
    e.register(meta(
        "me",
        "SELECT * FROM user WHERE id = $u",
        json!({"u": "user:1"}),
    ))
    .unwrap();
    e.register(meta(
        "other",
        "SELECT * FROM user WHERE id = $u",
        json!({"u": "user:2"}),
    ))
    .unwrap();
    e.apply_batch(&[
        put("user:1", json!({"name": "ann"})),
        put("user:2", json!({"name": "bob"})),
        put("thread:1", json!({"author": "user:1"})),
        put("thread:2", json!({"author": "user:1"})),
    ]);
    // user:1 is in `threads` twice (through both threads' author node) and in `me` once.
    let out = e.apply_batch(&[put("user:1", json!({"name": "ann b"}))]);
    let updated = |v| of(&out, v).1;
    assert_eq!(updated("threads"), vec![("user:1".to_string(), 2)]);
    assert_eq!(updated("me"), vec![("user:1".to_string(), 2)]);
    assert_eq!(of(&out, "other"), Default::default(), "holds only user:2");
    assert_eq!(out.len(), 2);
}

/// A window with a `LIMIT` keeps only the first matches of its order; when
/// removals leave it short it reads the table again, and a match that sorts
/// after the kept ones while others were dropped is not taken in their
/// place.
#[test]
fn a_bounded_window_keeps_the_first_matches_and_refills_from_the_table() {
    let sql = "SELECT * FROM t ORDER BY score LIMIT 2";
    for slack in [0, 1] {
        let mut e = Engine::with_window_slack(slack);
        let rows: Vec<Change> = (1..=5)
            .map(|i| put(&format!("t:{i}"), json!({"score": i})))
            .collect();
        e.apply_batch(&rows);
        e.register(meta("v", sql, json!({}))).expect("register");
        assert_eq!(ids(&e, "v"), s(&["t:1", "t:2"]), "slack {slack}");

        // One member leaves and a far match arrives in the same batch: the
        // window is t:2 and t:3 (read again from the table), not t:10.
        let out = e.apply_batch(&[del("t:1"), put("t:10", json!({"score": 10}))]);
        assert_eq!(ids(&e, "v"), s(&["t:2", "t:3"]), "slack {slack}");
        assert_eq!(
            of(&out, "v"),
            (s(&["t:3"]), vec![], s(&["t:1"])),
            "slack {slack}"
        );

        // A match that sorts first enters; the rest shift out.
        e.apply_batch(&[put("t:0", json!({"score": 0}))]);
        assert_eq!(ids(&e, "v"), s(&["t:0", "t:2"]), "slack {slack}");

        // Every kept match goes: the window is read again, down to empty.
        e.apply_batch(&[del("t:0"), del("t:2"), del("t:3")]);
        assert_eq!(ids(&e, "v"), s(&["t:4", "t:5"]), "slack {slack}");
        e.apply_batch(&[del("t:4"), del("t:5"), del("t:10")]);
        assert!(ids(&e, "v").is_empty(), "slack {slack}");
    }
}

/// By default a window keeps as many matches again as it shows, at least
/// 32, past its end: a top-20 view over 1,000 records holds 52, not 1,000.
#[test]
fn a_bounded_window_does_not_hold_the_whole_table() {
    let mut e = Engine::new();
    let rows: Vec<Change> = (0..1000)
        .map(|i| put(&format!("t:{i}"), json!({"score": i})))
        .collect();
    e.apply_batch(&rows);
    e.register(meta(
        "v",
        "SELECT * FROM t ORDER BY score DESC LIMIT 20",
        json!({}),
    ))
    .expect("register");
    let root = e.views.get("v").expect("view").root;
    let node = e.node(root);
    assert_eq!(node.sorted.as_ref().map(|s| s.len()), Some(52));
    assert!(node.truncated);
    assert_eq!(ids(&e, "v").len(), 20);
}

/// Found by the differential suite: when every kept match of a truncated
/// window leaves, a new match cannot be placed against the dropped ones
/// and waits for the refill.
#[test]
fn a_bounded_window_emptied_in_a_batch_places_new_matches_by_refill() {
    let mut e = Engine::with_window_slack(0);
    e.apply_batch(&[put("t:7", json!({"obj": []}))]);
    e.apply_batch(&[put("t:B", json!({}))]);
    e.register(meta(
        "v",
        "SELECT * FROM t ORDER BY obj ASC LIMIT 1",
        json!({}),
    ))
    .expect("register");
    assert_eq!(ids(&e, "v"), s(&["t:B"]), "NONE sorts first");
    e.apply_batch(&[del("t:B"), put("t:3", json!({"obj": {}}))]);
    assert_eq!(ids(&e, "v"), s(&["t:7"]), "an array sorts before an object");
}

/// Found by the differential suite (seed 16): two views with the same query
/// whose subquery reads a view parameter shared one node, so the second view
/// got the first one's subquery result. A plan's node key now includes the
/// view parameters its subqueries read.
#[test]
fn views_differing_only_in_a_subquery_parameter_do_not_share_a_node() {
    let sql = "SELECT *, (SELECT * FROM u WHERE !(name CONTAINS $p0) LIMIT 4) AS s10, (SELECT * FROM u WHERE id = $parent.link LIMIT 1) AS s11 FROM t WHERE 'x y' NOT IN links";
    let mut e = Engine::new();
    e.register(meta("v1", sql, json!({"p0": "A"}))).expect("v1");
    e.register(meta("v2", sql, json!({"p0": "b"}))).expect("v2");
    e.apply_batch(&[put("t:3", json!({}))]);
    e.apply_batch(&[put("u:3", json!({"name": "ab"}))]);
    assert_eq!(ids(&e, "v1"), s(&["t:3", "u:3"]));
    assert_eq!(ids(&e, "v2"), s(&["t:3"]));
}

/// A record whose edges showed version 5 but that the engine does not hold
/// (created after the state file was saved): when it arrives it gets version
/// 6, never 1, and an engine-held record only ever goes up.
#[test]
fn a_version_floor_from_the_edges_holds_for_records_not_held_yet() {
    let mut e = Engine::new();
    e.apply_batch(&[put("t:1", json!({"n": 1}))]);
    e.raise_version(&rid("t:1"), 3);
    e.raise_version(&rid("t:1"), 2);
    assert_eq!(e.version(&rid("t:1")), Some(3));
    e.raise_version(&rid("t:2"), 5);
    assert_eq!(e.version(&rid("t:2")), None, "a floor is not a record");
    e.apply_batch(&[put("t:2", json!({"n": 2}))]);
    assert_eq!(e.version(&rid("t:2")), Some(6));
    e.apply_batch(&[del("t:2")]);
    e.apply_batch(&[put("t:2", json!({"n": 3}))]);
    assert_eq!(e.version(&rid("t:2")), Some(1), "the floor is used once");
}

/// A decimal is `=` to a float only approximately (`0.1dec = 0.1`), so no
/// hash of it can agree with a float's: such records sit under one shared
/// index key that every numeric lookup also reads. Registration (a lookup)
/// and changes (a reindex) must both find them.
#[test]
fn decimals_meet_indexed_number_views_both_ways() {
    let dec = |t: &str| Value::decimal(t.parse().unwrap());
    let with_score = |id: &str, score: Value| {
        let mut o = Object::default();
        o.insert("score".into(), score);
        Change {
            id: rid(id),
            content: Some(o),
        }
    };
    let mut e = Engine::new();
    e.apply_batch(&[
        with_score("t:1", dec("0.1")),
        with_score("t:2", dec("0.2")),
        with_score("t:3", dec("1.00000000000000000001")),
        with_score("t:4", dec("2.0")),
    ]);
    // Registered after the data: the initial result comes from the index.
    e.register(meta("f", "SELECT * FROM t WHERE score = 0.1", json!({})))
        .unwrap();
    e.register(meta("i", "SELECT * FROM t WHERE score = 2", json!({})))
        .unwrap();
    e.register(meta("one", "SELECT * FROM t WHERE score = 1", json!({})))
        .unwrap();
    e.register(meta("d", "SELECT * FROM t WHERE score = 0.2dec", json!({})))
        .unwrap();
    assert_eq!(ids(&e, "f"), s(&["t:1"]), "0.1dec = 0.1, as SurrealDB");
    assert_eq!(ids(&e, "i"), s(&["t:4"]), "2.0dec = 2");
    assert!(ids(&e, "one").is_empty(), "1.00000000000000000001dec != 1");
    assert_eq!(ids(&e, "d"), s(&["t:2"]));

    // Changes: a record moving between a decimal and other values.
    let out = e.apply_batch(&[
        with_score("t:5", dec("0.1")),
        with_score("t:1", Value::str("x")),
        with_score("t:4", dec("2.5")),
    ]);
    assert_eq!(of(&out, "f").0, s(&["t:5"]));
    assert_eq!(of(&out, "f").2, s(&["t:1"]));
    assert_eq!(of(&out, "i").2, s(&["t:4"]));
    assert_eq!(ids(&e, "f"), s(&["t:5"]));
}

/// A subquery's `$parent` path that comes to go through a record link
/// (`$parent.link.name` once `link` holds `u:1`) is one SurrealDB follows:
/// the view is handed to the re-query tier, whether the parent record is new
/// or was already a member (where the binding reads NONE before and after).
#[test]
fn a_parent_path_through_a_link_sends_the_view_to_requery() {
    for member_before in [false, true] {
        let mut e = Engine::new();
        let mut batch = vec![
            put("u:1", json!({"name": "a"})),
            put("u:2", json!({"name": "a"})),
        ];
        if member_before {
            batch.push(put("t:1", json!({"x": 1})));
        }
        e.apply_batch(&batch);
        e.register(meta(
            "v",
            "SELECT *, (SELECT * FROM u WHERE name = $parent.link.name) AS s FROM t",
            json!({}),
        ))
        .expect("no link in the data yet");
        assert!(e.take_link_views().is_empty());
        let mut t = put("t:1", json!({}));
        if let Some(c) = t.content.as_mut() {
            c.insert("link".into(), Value::thing(rid("u:1")));
        }
        e.apply_batch(&[t]);
        let moved = moved_views(&mut e);
        assert_eq!(moved, ["v"], "member before: {member_before}");
    }
}

#[test]
fn a_table_no_view_reads_is_let_go_and_its_versions_never_go_back() {
    let mut e = Engine::new();
    e.register(meta("v", "SELECT * FROM t", json!({}))).unwrap();
    e.apply_batch(&[put("t:1", json!({"a": 1})), put("u:1", json!({"b": 1}))]);
    e.apply_batch(&[put("t:1", json!({"a": 2}))]);
    assert_eq!(e.view_records("v").unwrap(), vec![(rid("t:1"), 2)]);
    assert_eq!(e.forget_table("t"), 0, "a view reads it");
    e.unregister("v");
    assert_eq!(e.forget_table("t"), 1);
    assert!(e.record(&rid("t:1")).is_none(), "let go");
    assert!(e.record(&rid("u:1")).is_some(), "another table stays");
    // Saved and restored, the table's floor survives.
    let state = serde_json::to_string(&e.to_state()).unwrap();
    let mut e = Engine::from_state(serde_json::from_str(&state).unwrap()).unwrap();
    // Read again, its records start above every version a client saw.
    e.register(meta("w", "SELECT * FROM t", json!({}))).unwrap();
    e.apply_batch(&[put("t:1", json!({"a": 2})), put("t:2", json!({"a": 3}))]);
    assert_eq!(
        e.view_records("w").unwrap(),
        vec![(rid("t:1"), 3), (rid("t:2"), 3)]
    );
}

/// `put` with record-link fields (JSON text of an id is a string, not a link).
fn put_linked(id: &str, content: serde_json::Value, links: &[(&str, &str)]) -> Change {
    let mut c = put(id, content);
    if let Some(o) = c.content.as_mut() {
        for (field, target) in links {
            o.insert((*field).into(), Value::thing(rid(target)));
        }
    }
    c
}

/// A path through record links in `WHERE` is followed into loaded tables,
/// both at registration and when the linked records change (the linking
/// records do not), two links deep; `ORDER BY` does not follow them; a
/// link into a table the engine does not hold asks for it first.
#[test]
fn paths_through_links_follow_the_linked_records() {
    let mut e = Engine::new();
    e.apply_batch(&[
        put_linked("o:1", json!({"name": "acme"}), &[]),
        put_linked("u:1", json!({"name": "ann"}), &[("org", "o:1")]),
        put_linked("u:2", json!({"name": "bob"}), &[]),
        put_linked("t:1", json!({}), &[("link", "u:1")]),
        put_linked("t:2", json!({}), &[("link", "u:2")]),
        put_linked("t:3", json!({}), &[("link", "u:9")]),
    ]);
    let by_name = meta("n", "SELECT * FROM t WHERE link.name = 'ann'", json!({}));
    match e.register(by_name.clone()) {
        Err(EngineError::NeedsTables(t)) => assert_eq!(t, [Arc::<str>::from("u")]),
        other => panic!("u is not loaded yet: {other:?}"),
    }
    e.mark_loaded(&[Arc::from("u")]);
    e.register(by_name).expect("u is loaded");
    assert_eq!(ids(&e, "n"), s(&["t:1"]));
    let by_org = meta(
        "o",
        "SELECT * FROM t WHERE link.org.name = 'acme'",
        json!({}),
    );
    assert!(matches!(
        e.register(by_org.clone()),
        Err(EngineError::NeedsTables(_))
    ));
    e.mark_loaded(&[Arc::from("o")]);
    e.register(by_org).expect("o is loaded");
    e.register(meta(
        "w",
        "SELECT * FROM t ORDER BY link.name DESC LIMIT 1",
        json!({}),
    ))
    .expect("a window on a linked field");
    assert_eq!(ids(&e, "o"), s(&["t:1"]));
    // SurrealDB's `ORDER BY` does not fetch: every post sorts as NONE.
    assert_eq!(ids(&e, "w"), s(&["t:1"]), "id order");
    assert!(e.tables().contains("o"), "followed while linked");

    // bob is renamed ann and joins acme; t:2 did not change.
    let out = e.apply_batch(&[put_linked("u:2", json!({"name": "ann"}), &[("org", "o:1")])]);
    assert_eq!(of(&out, "n").0, s(&["t:2"]));
    assert_eq!(of(&out, "o").0, s(&["t:2"]));
    // Two links away: the org is renamed.
    let out = e.apply_batch(&[put_linked("o:1", json!({"name": "initech"}), &[])]);
    assert_eq!(of(&out, "o").2, s(&["t:1", "t:2"]));
    // The missing author arrives: t:3 matches `id != NONE` through it,
    // and still sorts as NONE.
    e.register(meta(
        "i",
        "SELECT * FROM t WHERE link.id != NONE",
        json!({}),
    ))
    .expect("u is loaded");
    assert_eq!(ids(&e, "i"), s(&["t:1", "t:2"]));
    let out = e.apply_batch(&[put_linked("u:9", json!({"name": "zed"}), &[])]);
    assert_eq!(of(&out, "i").0, s(&["t:3"]));
    assert_eq!(of(&out, "w"), Default::default());
    // ann goes: her post leaves.
    let out = e.apply_batch(&[del("u:1")]);
    assert_eq!(of(&out, "n").2, s(&["t:1"]));
    assert!(e.take_link_views().is_empty(), "every link was followed");

    // Saved and restored, the views stay incremental.
    let state = serde_json::to_string(&e.to_state()).unwrap();
    let mut e = Engine::from_state(serde_json::from_str(&state).unwrap()).unwrap();
    assert_eq!(e.tier("n"), Some(Tier::Incremental));
    let out = e.apply_batch(&[put_linked("u:2", json!({"name": "bob"}), &[])]);
    assert_eq!(of(&out, "n").2, s(&["t:2"]));

    // A link into a table the engine does not hold: the view must move.
    e.apply_batch(&[put_linked("t:2", json!({}), &[("link", "x:1")])]);
    let moved = moved_views(&mut e);
    assert!(moved.contains(&"n".to_string()), "{moved:?}");
}

/// `FETCH` brings the records a member's links name into the view, as
/// SurrealDB's rows show them: a record id or one directly in an array;
/// missing ones come in when they are created, and leave with the link.
#[test]
fn fetched_links_are_members() {
    let mut e = Engine::new();
    e.apply_batch(&[
        put_linked("u:1", json!({"name": "ann"}), &[]),
        put_linked("u:2", json!({"name": "bob"}), &[]),
        put_linked("t:1", json!({}), &[("link", "u:1")]),
        put_linked("t:2", json!({}), &[("link", "u:9")]),
    ]);
    let mut arr = put("t:3", json!({"links": [3, "x"]}));
    if let Some(o) = arr.content.as_mut() {
        o.insert(
            "links".into(),
            Value::Array(
                [
                    Value::thing(rid("u:2")),
                    Value::Array([Value::thing(rid("u:1"))].into_iter().collect()),
                ]
                .into_iter()
                .collect(),
            ),
        );
    }
    e.apply_batch(&[arr]);
    let v = meta("f", "SELECT * FROM t FETCH link, links", json!({}));
    assert!(matches!(
        e.register(v.clone()),
        Err(EngineError::NeedsTables(_))
    ));
    e.mark_loaded(&[Arc::from("u")]);
    e.register(v).expect("u is loaded");
    // u:1 through t:1's link, u:2 in t:3's array; not u:1 in the nested array.
    assert_eq!(ids(&e, "f"), s(&["t:1", "t:2", "t:3", "u:1", "u:2"]));
    // Leaving the link out of the rows fetches nothing.
    e.register(meta("n", "SELECT id FROM t FETCH link", json!({})))
        .unwrap();
    assert_eq!(ids(&e, "n"), s(&["t:1", "t:2", "t:3"]));
    // `link.id, link.name ... FETCH link`: the row holds an object whose
    // `id` is the linked record's (while it exists): that record is a
    // member; an array's ids are not (t:3's `links.id` is an array).
    e.register(meta(
        "i",
        "SELECT id, link.id, link.name, links.id FROM t FETCH link, links",
        json!({}),
    ))
    .unwrap();
    assert_eq!(ids(&e, "i"), s(&["t:1", "t:2", "t:3", "u:1"]));
    // Paths that leave out `id` make an object without a record.
    e.register(meta(
        "p",
        "SELECT id, link.name FROM t FETCH link",
        json!({}),
    ))
    .unwrap();
    assert_eq!(ids(&e, "p"), s(&["t:1", "t:2", "t:3"]));
    // A fetched field the projection computes otherwise is SurrealDB's to answer.
    assert!(
        e.register(meta(
            "c",
            "SELECT *, link.name AS link FROM t FETCH link",
            json!({})
        ))
        .unwrap_err()
        .is_unsupported()
    );

    let out = e.apply_batch(&[put_linked("u:9", json!({"name": "cat"}), &[])]);
    assert_eq!(of(&out, "f").0, s(&["u:9"]), "the missing record arrives");
    assert_eq!(
        of(&out, "i").0,
        s(&["u:9"]),
        "and its `id` is no longer NONE"
    );
    // An object in the field: its `id` is SurrealDB's to judge.
    let mut obj = put("t:4", json!({}));
    if let Some(o) = obj.content.as_mut() {
        let mut inner = Object::default();
        inner.insert("id".into(), Value::thing(rid("u:1")));
        o.insert("link".into(), Value::Object(inner));
    }
    e.apply_batch(&[obj]);
    let moved = moved_views(&mut e);
    assert_eq!(moved, ["i"]);
    e.apply_batch(&[del("t:4")]);
    let out = e.apply_batch(&[put_linked("t:1", json!({}), &[("link", "u:2")])]);
    let (created, updated, deleted) = of(&out, "f");
    assert_eq!(
        (created, deleted),
        (vec![], s(&["u:1"])),
        "u:2 stays, u:1 goes"
    );
    assert_eq!(updated, vec![("t:1".to_string(), 2)]);
    let out = e.apply_batch(&[put_linked("u:2", json!({"name": "bo"}), &[])]);
    assert_eq!(of(&out, "f").1, vec![("u:2".to_string(), 2)]);
    let out = e.apply_batch(&[del("t:3"), del("t:1")]);
    assert_eq!(of(&out, "f").2, s(&["t:1", "t:3", "u:2"]));
    assert!(e.take_link_views().is_empty());
}

/// A save writes what changed (`take_delta`); the last full snapshot with
/// every delta since applied in order is the engine's state, exactly.
#[test]
fn deltas_on_a_snapshot_give_the_state() {
    let mut e = Engine::new();
    e.track_changes();
    e.apply_batch(&[
        put("thread:1", json!({"author": "user:1", "n": 1})),
        put("thread:2", json!({"author": "user:2", "n": 2})),
    ]);
    e.register(meta(
        "a",
        "SELECT * FROM thread WHERE author = $uid",
        json!({"uid": "user:1"}),
    ))
    .unwrap();
    e.register(meta("b", "SELECT * FROM thread WHERE n > 0", json!({})))
        .unwrap();
    let mut disk = e.take_state();
    let nothing = e.take_delta();
    assert!(nothing.records.is_empty() && nothing.views.is_empty() && nothing.deleted.is_empty());

    // A first save: records changed, created and deleted, a view changed.
    e.apply_batch(&[
        put("thread:1", json!({"author": "user:1", "n": 5})),
        put("thread:3", json!({"author": "user:1", "n": 3})),
        del("thread:2"),
    ]);
    e.touch("b", Utc::now() + chrono::Duration::seconds(5));
    let first = e.take_delta();
    assert_eq!(
        first.records.len(),
        2,
        "thread:1 and thread:3, not every record"
    );
    assert_eq!(first.deleted, vec![rid("thread:2")]);
    assert_eq!(first.views.len(), 1);
    // A second: a view goes, another comes, a version is raised.
    e.unregister("a");
    e.register(meta("c", "SELECT * FROM thread WHERE n >= 3", json!({})))
        .unwrap();
    e.register(meta(
        "d",
        "SELECT * FROM thread WHERE author = $uid",
        json!({"uid": "user:1"}),
    ))
    .unwrap();
    e.raise_version(&rid("thread:3"), 9);
    e.apply_batch(&[del("thread:404")]);
    let second = e.take_delta();
    assert_eq!(second.removed_views, vec![Arc::<str>::from("a")]);
    assert_eq!(second.records.len(), 1);
    assert!(
        second.deleted.is_empty(),
        "a record that never was is no change"
    );

    // Through JSON, as on disk.
    let through_json = |delta: &EngineDelta| -> EngineDelta {
        serde_json::from_str(&serde_json::to_string(delta).unwrap()).unwrap()
    };
    disk.apply([through_json(&first), through_json(&second)]);
    disk.records.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        serde_json::to_value(&disk).unwrap(),
        serde_json::to_value(e.to_state()).unwrap()
    );
    // And it loads into the same engine.
    let back = Engine::from_state(disk).unwrap();
    assert_eq!(ids(&back, "c"), s(&["thread:1", "thread:3"]));
    assert_eq!(back.version(&rid("thread:3")), Some(9));
    assert!(back.view("a").is_none());
    // The index `d` reads is listed, built before the views come back, and
    // kept up to date as with one built by the view.
    assert_eq!(
        serde_json::to_value(&second.indexes).unwrap(),
        json!([["thread", [{"Field": "author"}]]])
    );
    assert_eq!(ids(&back, "d"), s(&["thread:1", "thread:3"]));
    let mut back = back;
    back.apply_batch(&[
        put("thread:3", json!({"author": "user:2", "n": 3})),
        put("thread:4", json!({"author": "user:1", "n": 0})),
    ]);
    assert_eq!(ids(&back, "d"), s(&["thread:1", "thread:4"]));

    // A reset cannot be a delta.
    e.reset();
    assert!(e.wants_full_save());
}

/// A restart (`state_file::restore`, which stores the records while they
/// are parsed) gives the engine that reading the file and its log first
/// gives, with the log's last word on each record; a record that does not
/// read makes the file corrupt.
#[test]
fn a_restart_streams_the_records_and_the_log_wins() {
    use crate::persistence::change_log::{self, LogEntry};
    use crate::persistence::state_file::{self, FORMAT_VERSION, StateFile};
    let mut e = Engine::new();
    e.track_changes();
    // More than one part of the stream (8,192 records).
    let many: Vec<Change> = (0..20_000)
        .map(|i| {
            put(
                &format!("thread:{i}"),
                json!({"author": format!("user:{}", i % 7), "n": i}),
            )
        })
        .collect();
    e.apply_batch(&many);
    e.register(meta(
        "a",
        "SELECT * FROM thread WHERE author = $uid",
        json!({"uid": "user:1"}),
    ))
    .unwrap();
    e.register(meta("b", "SELECT * FROM thread WHERE n < 3", json!({})))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let file = StateFile {
        format: FORMAT_VERSION,
        generation: 5,
        engine: e.take_state(),
        ..StateFile::default()
    };
    file.save(&path).unwrap();
    // After the snapshot: one record changed, one deleted, one created.
    e.apply_batch(&[
        put("thread:1", json!({"author": "user:2", "n": 1})),
        del("thread:2"),
        put("thread:20001", json!({"author": "user:1", "n": 0})),
    ]);
    let entry = LogEntry {
        generation: 5,
        saved_at: Utc::now(),
        cursors: Default::default(),
        cursor_times: Default::default(),
        engine: e.take_delta(),
    };
    change_log::append(&change_log::log_path(&path), &entry).unwrap();

    let (_, streamed) = state_file::restore(&path).unwrap().unwrap();
    let read_first =
        Engine::from_state(StateFile::load_with_log(&path).unwrap().unwrap().engine).unwrap();
    assert_eq!(
        serde_json::to_value(streamed.to_state()).unwrap(),
        serde_json::to_value(e.to_state()).unwrap()
    );
    assert_eq!(
        serde_json::to_value(read_first.to_state()).unwrap(),
        serde_json::to_value(e.to_state()).unwrap()
    );
    assert_eq!(
        ids(&streamed, "b"),
        s(&["thread:0", "thread:1", "thread:20001"])
    );
    assert!(!ids(&streamed, "a").contains(&"thread:1".to_string()));

    // A record that does not read, deep in the file: corrupt, not a
    // partial engine.
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text.replacen("{\"o\":[\"author\",\"n\"]}", "{\"o\":7}", 1);
    assert_ne!(text, broken);
    std::fs::write(&path, broken).unwrap();
    let err = state_file::restore(&path).err().expect("corrupt");
    assert!(err.to_string().contains("corrupt"), "{err}");
}

/// `$param` paths through a record id (`$org.id`, `FROM $team.players`):
/// read from the store at registration, and registered again when the
/// record they read changes, appears or goes, in the batch that changes it.
#[test]
fn param_paths_through_a_record_follow_it() {
    let mut e = Engine::new();
    e.apply_batch(&[
        put_linked("org:1", json!({"name": "acme"}), &[]),
        put_linked("ev:1", json!({}), &[("organiser", "org:1")]),
        put_linked("ev:2", json!({}), &[]), // no organiser: NONE
        put_linked("u:1", json!({"n": 1}), &[]),
        put_linked("u:2", json!({"n": 2}), &[]),
        put_linked("team:1", json!({}), &[("players", "u:1")]),
    ]);
    let by_org = meta(
        "o",
        "SELECT * FROM ev WHERE organiser = $org.id",
        json!({"org": "org:1"}),
    );
    match e.register(by_org.clone()) {
        Err(EngineError::NeedsTables(t)) => assert_eq!(t, [Arc::<str>::from("org")]),
        other => panic!("org is not loaded yet: {other:?}"),
    }
    e.mark_loaded(&[Arc::from("org")]);
    let d = e.register(by_org).expect("org is loaded");
    assert_eq!(e.tier("o"), Some(Tier::Incremental));
    assert_eq!(d.created, vec![(rid("ev:1"), 1)]);
    assert!(
        e.tables().contains("org"),
        "followed while a param reads it"
    );
    // Another view of the same text on another org shares the plan.
    e.register(meta(
        "o2",
        "SELECT * FROM ev WHERE organiser = $org.id",
        json!({"org": "org:2"}),
    ))
    .unwrap();
    // org:2 does not exist: `$org.id` is NONE, which ev:2's organiser is.
    assert_eq!(ids(&e, "o2"), s(&["ev:2"]));

    // A change to the org that keeps its id changes nothing.
    let out = e.apply_batch(&[put_linked("org:1", json!({"name": "initech"}), &[])]);
    assert_eq!(of(&out, "o"), Default::default());
    // The org goes: `$org.id` is NONE; ev:1 leaves, ev:2 enters, and an
    // event changed in the same batch is judged by the new value.
    let out = e.apply_batch(&[
        del("org:1"),
        put_linked("ev:3", json!({}), &[("organiser", "org:1")]),
    ]);
    assert_eq!(of(&out, "o"), (s(&["ev:2"]), vec![], s(&["ev:1"])));
    assert_eq!(ids(&e, "o"), s(&["ev:2"]));
    // org:2 appears: o2 now holds its events (none) instead of ev:2.
    let out = e.apply_batch(&[put_linked("org:2", json!({}), &[])]);
    assert_eq!(of(&out, "o2"), (vec![], vec![], s(&["ev:2"])));
    // org:1 is back; an update of a member in the same batch is `updated`.
    let out = e.apply_batch(&[
        put_linked("org:1", json!({}), &[]),
        put_linked("ev:2", json!({"x": 1}), &[]),
    ]);
    assert_eq!(of(&out, "o"), (s(&["ev:1", "ev:3"]), vec![], s(&["ev:2"])));

    // The value changes and a member that stays changes in the same
    // batch: it is `updated`, with its new version.
    e.mark_loaded(&[Arc::from("cap")]);
    e.apply_batch(&[
        put_linked("cap:1", json!({"max": 5}), &[]),
        put_linked("it:a", json!({"n": 1}), &[]),
        put_linked("it:b", json!({"n": 7}), &[]),
    ]);
    e.register(meta(
        "c",
        "SELECT * FROM it WHERE n < $cap.max",
        json!({"cap": "cap:1"}),
    ))
    .unwrap();
    assert_eq!(ids(&e, "c"), s(&["it:a"]));
    let out = e.apply_batch(&[
        put_linked("cap:1", json!({"max": 10}), &[]),
        put_linked("it:a", json!({"n": 2}), &[]),
    ]);
    assert_eq!(
        of(&out, "c"),
        (s(&["it:b"]), vec![("it:a".to_string(), 2)], vec![])
    );
    // A change to the record that leaves the value as it was moves nothing.
    let out = e.apply_batch(&[put_linked("cap:1", json!({"max": 10, "x": 1}), &[])]);
    assert_eq!(of(&out, "c"), Default::default());
    e.unregister("c");

    // `FROM $team.players`: the team's links are the rows. Their table
    // is known from the team only: it is asked for then.
    let players = meta(
        "p",
        "SELECT * FROM $team.players",
        json!({"team": "team:1"}),
    );
    match e.register(players.clone()) {
        Err(EngineError::NeedsTables(t)) => assert_eq!(t, [Arc::<str>::from("team")]),
        other => panic!("team is not loaded yet: {other:?}"),
    }
    e.mark_loaded(&[Arc::from("team")]);
    match e.register(players.clone()) {
        Err(EngineError::NeedsTables(t)) => assert_eq!(t, [Arc::<str>::from("u")]),
        other => panic!("u is not loaded yet: {other:?}"),
    }
    e.mark_loaded(&[Arc::from("u")]);
    e.register(players).unwrap();
    assert_eq!(ids(&e, "p"), s(&["u:1"]));
    // `team:1` with these players, as record ids.
    let team = |players: &[&str]| {
        let mut team = put("team:1", json!({}));
        if let Some(c) = team.content.as_mut() {
            let ids = players
                .iter()
                .map(|p| Value::thing(rid(p)))
                .collect::<Vec<_>>();
            c.insert("players".into(), Value::Array(ids.into()));
        }
        team
    };
    let out = e.apply_batch(&[team(&["u:1", "u:2"])]);
    assert_eq!(of(&out, "p").0, s(&["u:2"]));
    // No players left: `FROM` an empty list gives no row, as in
    // SurrealDB, and the view stays.
    let out = e.apply_batch(&[put_linked("team:1", json!({"players": []}), &[])]);
    assert_eq!(of(&out, "p").2, s(&["u:1", "u:2"]));
    assert!(moved_views(&mut e).is_empty());
    let out = e.apply_batch(&[team(&["u:1"])]);
    assert_eq!(of(&out, "p").0, s(&["u:1"]));
    // Players that are no record ids: the re-query tier's.
    let out = e.apply_batch(&[put_linked("team:1", json!({"players": "nobody"}), &[])]);
    assert_eq!(
        of(&out, "p"),
        Default::default(),
        "the view keeps its edges"
    );
    let moved = moved_views(&mut e);
    assert_eq!(moved, ["p"]);

    // Saved and restored, the views read their params' records again.
    e.unregister("p");
    let state = serde_json::to_string(&e.to_state()).unwrap();
    let mut e = Engine::from_state(serde_json::from_str(&state).unwrap()).unwrap();
    assert_eq!(ids(&e, "o"), s(&["ev:1", "ev:3"]));
    let out = e.apply_batch(&[del("org:1")]);
    assert_eq!(of(&out, "o").2, s(&["ev:1", "ev:3"]));
    // Unregistered, a view no longer follows the record.
    e.unregister("o");
    e.unregister("o2");
    assert!(e.param_deps.is_empty());
}

/// `FETCH comments.user`: the comments a member links to, and the users
/// those comments link to, are members; both follow their links' changes.
#[test]
fn nested_fetches_are_members() {
    let mut e = Engine::new();
    e.mark_loaded(&[Arc::from("comment"), Arc::from("user")]);
    e.apply_batch(&[
        put_linked("user:1", json!({"name": "ann"}), &[]),
        put_linked("comment:1", json!({}), &[("user", "user:1")]),
        put_linked("comment:2", json!({}), &[("user", "user:9")]),
    ]);
    let mut chirp = put("chirp:1", json!({}));
    if let Some(o) = chirp.content.as_mut() {
        o.insert(
            "comments".into(),
            Value::Array(
                [
                    Value::thing(rid("comment:1")),
                    Value::thing(rid("comment:2")),
                ]
                .into_iter()
                .collect(),
            ),
        );
    }
    e.apply_batch(&[chirp]);
    e.register(meta(
        "c",
        "SELECT * FROM chirp FETCH comments.user",
        json!({}),
    ))
    .unwrap();
    assert_eq!(
        ids(&e, "c"),
        s(&["chirp:1", "comment:1", "comment:2", "user:1"])
    );
    // A comment's author appears, another's changes.
    let out = e.apply_batch(&[
        put_linked("user:9", json!({"name": "bob"}), &[]),
        put_linked("comment:1", json!({}), &[("user", "user:2")]),
    ]);
    assert_eq!(of(&out, "c").0, s(&["user:9"]));
    assert_eq!(of(&out, "c").2, s(&["user:1"]));
    // A field the rows do not show fetches nothing, however deep.
    e.register(meta(
        "n",
        "SELECT id FROM chirp FETCH comments.user",
        json!({}),
    ))
    .unwrap();
    assert_eq!(ids(&e, "n"), s(&["chirp:1"]));
}

fn edge(id: &str, from: &str, to: &str, content: serde_json::Value) -> Change {
    put_linked(id, content, &[("in", from), ("out", to)])
}

/// Traversals from `$parent` over a `TYPE RELATION` table, as SurrealDB
/// answers them from its graph index: the edges (`$parent<-wrote`), or
/// what they name (`$parent<-wrote<-user`: edges in id order, missing and
/// other-table records skipped, `[0]` the first); from an edge to its
/// ends (`$parent->user`); deleting a record deletes its edges; records
/// shaped like edges where SSP cannot tell send the view to re-query.
#[test]
fn traversals_over_relation_tables() {
    let mut e = Engine::new();
    let sql = "SELECT *, (SELECT name FROM $parent<-wrote<-user) AS by FROM post";
    // Not a relation table (yet): refused to the re-query tier.
    assert!(matches!(
        e.register(meta("v", sql, json!({}))),
        Err(EngineError::Plan(PlanError::Unsupported(_)))
    ));
    e.set_relation_tables([Arc::from("wrote"), Arc::from("likes")].into());
    e.mark_loaded(&[Arc::from("user"), Arc::from("wrote"), Arc::from("post")]);
    e.apply_batch(&[
        put("user:1", json!({"name": "ann"})),
        put("user:2", json!({"name": "bob"})),
        put("team:1", json!({"name": "t"})),
        put("post:1", json!({})),
        put("post:2", json!({})),
        edge("wrote:b", "user:2", "post:1", json!({})),
        edge("wrote:a", "user:1", "post:1", json!({})),
        edge("wrote:c", "team:1", "post:2", json!({})),
        edge("wrote:d", "user:9", "post:2", json!({})),
    ]);
    e.register(meta("v", sql, json!({}))).unwrap();
    assert_eq!(ids(&e, "v"), s(&["post:1", "post:2", "user:1", "user:2"]));
    // The first in edge order: wrote:a's user, then wrote:b's when it goes.
    let first = "SELECT *, (SELECT name FROM $parent<-wrote<-user)[0] AS by FROM post";
    e.register(meta("f", first, json!({}))).unwrap();
    assert_eq!(ids(&e, "f"), s(&["post:1", "post:2", "user:1"]));
    let edges = "SELECT *, (SELECT * FROM $parent<-wrote WHERE n > 1) AS w FROM post";
    e.register(meta("e", edges, json!({}))).unwrap();
    assert_eq!(ids(&e, "e"), s(&["post:1", "post:2"]));
    let ends = "SELECT *, (SELECT * FROM $parent->post)[0] AS p FROM wrote";
    e.register(meta("x", ends, json!({}))).unwrap();
    assert_eq!(
        ids(&e, "x"),
        s(&[
            "post:1", "post:2", "wrote:a", "wrote:b", "wrote:c", "wrote:d"
        ])
    );

    // The missing user appears: post:2 gains it; an edge's field changes.
    let out = e.apply_batch(&[
        put("user:9", json!({"name": "zed"})),
        edge("wrote:b", "user:2", "post:1", json!({"n": 2})),
    ]);
    assert_eq!(of(&out, "v").0, s(&["user:9"]));
    assert_eq!(of(&out, "f").0, s(&["user:9"]));
    assert_eq!(of(&out, "e").0, s(&["wrote:b"]));
    assert_eq!(
        of(&out, "v").1,
        Vec::<(String, u64)>::new(),
        "edges are no members"
    );
    // ann is deleted: SurrealDB deletes wrote:a with her.
    let out = e.apply_batch(&[del("user:1")]);
    assert_eq!(of(&out, "v").2, s(&["user:1"]));
    assert_eq!(of(&out, "f").0, s(&["user:2"]));
    assert_eq!(of(&out, "f").2, s(&["user:1"]));
    assert_eq!(of(&out, "x").2, s(&["wrote:a"]));
    assert!(e.record(&rid("wrote:a")).is_none(), "deleted with its `in`");
    // A user renamed: an `updated` through the traversal.
    let out = e.apply_batch(&[put("user:2", json!({"name": "bo"}))]);
    assert_eq!(of(&out, "v").1, vec![("user:2".to_string(), 2)]);
    assert!(e.take_link_views().is_empty());

    // Saved and restored, the traversals plan as before.
    let state = serde_json::to_string(&e.to_state()).unwrap();
    let mut e = Engine::from_state(serde_json::from_str(&state).unwrap()).unwrap();
    assert_eq!(e.tier("v"), Some(Tier::Incremental));
    let out = e.apply_batch(&[edge("wrote:e", "user:1", "post:2", json!({}))]);
    assert_eq!(of(&out, "v"), Default::default(), "user:1 is gone");
    let out = e.apply_batch(&[put("user:1", json!({"name": "ann"}))]);
    assert_eq!(of(&out, "v").0, s(&["user:1"]));

    // A record shaped like an edge in `user` (a table of any type): SSP
    // cannot tell whether `<-user` from an edge reaches it.
    e.apply_batch(&[edge("user:5", "wrote:e", "post:9", json!({}))]);
    let moved = moved_views(&mut e);
    assert!(moved.contains(&"v".to_string()), "{moved:?}");
    assert!(!moved.contains(&"e".to_string()), "{moved:?}");
    // A post shaped like a `wrote` edge may be one: its own `in` counts.
    e.apply_batch(&[edge("post:3", "wrote:e", "post:1", json!({}))]);
    let moved = moved_views(&mut e);
    assert!(moved.contains(&"e".to_string()), "{moved:?}");
}

/// `$user IN <-owns<-user` in `WHERE`, lowered into a value subquery over
/// the edges: a new edge, a deleted one, and the user's own delete (which
/// deletes the edges) move the rows; `NOT IN`; `->` from the other end; a
/// composite end, an edge-shaped row and a non-relation first step go to
/// the re-query tier.
#[test]
fn membership_in_a_traversal_from_the_row() {
    let mut e = Engine::new();
    let sql = "SELECT * FROM asset WHERE $user IN <-owns<-user";
    assert!(
        matches!(
            e.register(meta("v", sql, json!({"user": "user:1"}))),
            Err(EngineError::Plan(PlanError::Unsupported(_)))
        ),
        "`owns` is not a relation table yet"
    );
    e.set_relation_tables([Arc::from("owns")].into());
    // `user` is not marked loaded: registering loads it (see below).
    e.mark_loaded(&[Arc::from("owns"), Arc::from("asset")]);
    e.apply_batch(&[
        put("user:1", json!({})),
        put("asset:1", json!({})),
        put("asset:2", json!({})),
        put("asset:3", json!({})),
        edge("owns:a", "user:1", "asset:1", json!({})),
        edge("owns:b", "user:2", "asset:2", json!({})),
        edge("owns:c", "admin:1", "asset:3", json!({})),
    ]);
    e.register(meta("v", sql, json!({"user": "user:1"})))
        .unwrap();
    assert_eq!(e.tier("v"), Some(Tier::Incremental));
    assert_eq!(ids(&e, "v"), s(&["asset:1"]));
    let not = "SELECT * FROM asset WHERE $user NOT IN <-owns<-user";
    e.register(meta("n", not, json!({"user": "user:1"})))
        .unwrap();
    assert_eq!(ids(&e, "n"), s(&["asset:2", "asset:3"]));
    // The other way: the users that own asset:3 through `->owns->asset`.
    let back = "SELECT * FROM user WHERE $a ∈ ->owns->asset";
    e.register(meta("b", back, json!({"a": "asset:2"})))
        .unwrap();
    assert_eq!(ids(&e, "b"), s(&[]), "user:2 is not held");
    // A `user` IN is only ever a user: admin:1 owns asset:3 as no user.
    e.register(meta("adm", sql, json!({"user": "admin:1"})))
        .unwrap();
    assert_eq!(ids(&e, "adm"), s(&[]));

    let out = e.apply_batch(&[edge("owns:d", "user:1", "asset:2", json!({}))]);
    assert_eq!(of(&out, "v").0, s(&["asset:2"]));
    assert_eq!(of(&out, "n").2, s(&["asset:2"]));
    let out = e.apply_batch(&[put("user:2", json!({}))]);
    assert_eq!(of(&out, "b").0, s(&["user:2"]));
    let out = e.apply_batch(&[del("owns:a")]);
    assert_eq!(of(&out, "v").2, s(&["asset:1"]));
    // user:1 goes, and its edges with it.
    let out = e.apply_batch(&[del("user:1")]);
    assert_eq!(of(&out, "v").2, s(&["asset:2"]));
    assert_eq!(ids(&e, "n"), s(&["asset:1", "asset:2", "asset:3"]));
    assert!(e.take_link_views().is_empty());

    // An end with a composite key: the graph index holds its exact key.
    e.apply_batch(&[edge("owns:e", "user:1", "asset:[4]", json!({}))]);
    let moved = moved_views(&mut e);
    assert!(moved.contains(&"v".to_string()), "{moved:?}");
    // A row shaped like an edge may be one.
    e.register(meta("v2", sql, json!({"user": "user:2"})))
        .unwrap();
    e.apply_batch(&[edge("asset:9", "owns:b", "user:2", json!({}))]);
    let moved = moved_views(&mut e);
    assert!(moved.contains(&"v2".to_string()), "{moved:?}");
    // A `user` shaped like an edge may point at an `owns` edge, which
    // `<-user` from it reaches: the engine holds `user` in full to see it.
    assert!(e.loaded.contains("user"));
    let items = "SELECT * FROM item WHERE $user IN <-owns<-user";
    e.register(meta("v3", items, json!({"user": "user:2"})))
        .unwrap();
    e.apply_batch(&[edge("user:7", "admin:1", "owns:b", json!({}))]);
    let moved = moved_views(&mut e);
    assert!(moved.contains(&"v3".to_string()), "{moved:?}");
    // Not lowered: a row value on the left, one step, a second step over
    // edges.
    for (q, p) in [
        ("SELECT * FROM asset WHERE owner IN <-owns<-user", json!({})),
        (
            "SELECT * FROM asset WHERE $e IN <-owns",
            json!({"e": "owns:a"}),
        ),
        (
            "SELECT * FROM owns WHERE $u IN <-owns<-user",
            json!({"u": "user:1"}),
        ),
    ] {
        assert!(
            matches!(
                e.register(meta("r", q, p)),
                Err(EngineError::Plan(PlanError::Unsupported(_)))
            ),
            "{q}"
        );
    }
}

/// `FROM $team->attends`: the edges of the record a param names, in id
/// order, lowered to `FROM attends WHERE in = team:1`; a start that is
/// not one plain record id, two steps, or a table not `TYPE RELATION` go
/// to the re-query tier.
#[test]
fn from_a_traversal_of_a_param() {
    let mut e = Engine::new();
    e.set_relation_tables([Arc::from("attends")].into());
    e.mark_loaded(&[Arc::from("attends"), Arc::from("team")]);
    e.apply_batch(&[
        put("team:1", json!({})),
        edge("attends:a", "team:1", "event:1", json!({"n": 1})),
        edge("attends:b", "team:2", "event:1", json!({"n": 2})),
        edge("attends:c", "team:1", "event:2", json!({"n": 0})),
    ]);
    let first = "SELECT * FROM $team->attends LIMIT 1";
    e.register(meta("first", first, json!({"team": "team:1"})))
        .unwrap();
    assert_eq!(e.tier("first"), Some(Tier::Incremental));
    assert_eq!(ids(&e, "first"), s(&["attends:a"]));
    let to = "SELECT * FROM $ev<-attends WHERE n > 0";
    e.register(meta("to", to, json!({"ev": "event:1"})))
        .unwrap();
    assert_eq!(ids(&e, "to"), s(&["attends:a", "attends:b"]));
    // An edge with a lower id comes first; team:1 deleted takes its edges.
    let out = e.apply_batch(&[edge("attends:0", "team:1", "event:3", json!({}))]);
    assert_eq!(of(&out, "first").0, s(&["attends:0"]));
    assert_eq!(of(&out, "first").2, s(&["attends:a"]));
    let out = e.apply_batch(&[del("team:1")]);
    assert_eq!(of(&out, "first").2, s(&["attends:0"]));
    assert_eq!(of(&out, "to").2, s(&["attends:a"]));
    assert!(e.take_link_views().is_empty());
    for (q, p) in [
        (first, json!({"team": "t1"})),
        (first, json!({"team": ["team:1"]})),
        (first, json!({"team": "attends:b"})),
        (
            "SELECT * FROM $team->attends->event",
            json!({"team": "team:1"}),
        ),
        ("SELECT * FROM $team->plays", json!({"team": "team:1"})),
    ] {
        assert!(
            matches!(
                e.register(meta("r", q, p.clone())),
                Err(EngineError::Plan(PlanError::Unsupported(_)))
            ),
            "{q} {p}"
        );
    }
}

/// Deleting a record SSP does not hold deletes its edges only if it
/// existed: the applier reads the edges the cascade would take
/// ([`Engine::unsure_cascades`]), and those the database still holds stay.
#[test]
fn edges_of_a_record_that_may_never_have_existed() {
    let mut e = Engine::new();
    e.set_relation_tables([Arc::from("gatt")].into());
    e.mark_loaded(&[Arc::from("gatt")]);
    e.apply_batch(&[edge("gatt:p", "gteam:1", "gplace:7", json!({}))]);
    let delete = [del("gplace:7")];
    assert_eq!(e.unsure_cascades(&delete), vec![rid("gatt:p")]);
    e.set_kept_edges([rid("gatt:p")].into_iter().collect());
    e.apply_batch(&delete);
    assert!(
        e.record(&rid("gatt:p")).is_some(),
        "the database still holds it"
    );
    e.set_kept_edges(Default::default());
    e.apply_batch(&delete);
    assert!(e.record(&rid("gatt:p")).is_none(), "taken to have existed");
    // A record of a table SSP holds in full is known not to exist.
    e.mark_loaded(&[Arc::from("gplace")]);
    e.apply_batch(&[edge("gatt:q", "gteam:1", "gplace:8", json!({}))]);
    assert!(e.unsure_cascades(&[del("gplace:8")]).is_empty());
}

/// `secs` seconds after the start of 2030, where the time-window tests put
/// the engine's clock.
fn at(secs: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .expect("a datetime")
        .with_timezone(&Utc)
        + chrono::TimeDelta::seconds(secs)
}

/// A record with a datetime field `field` at `t`, and `kind`.
fn timed(id: &str, field: &str, t: DateTime<Utc>, kind: &str) -> Change {
    Change {
        id: rid(id),
        content: Some(Object::from_pairs(vec![
            (Arc::from(field), Value::datetime(t)),
            (Arc::from("kind"), Value::str(kind)),
        ])),
    }
}

#[test]
fn time_windows_move_records_when_their_instant_comes() {
    let t0 = at(0);
    let mut e = Engine::new();
    e.advance_clock(t0);
    e.apply_batch(&[
        timed("sess:1", "expires", at(10), "a"),
        timed("sess:2", "expires", at(20), "a"),
        timed("sess:3", "expires", at(-5), "a"),
        timed("sess:4", "expires", at(30), "b"),
    ]);
    // Live sessions of kind `a`, and those seen in the last 15 s (the
    // second window opens as well as closes: `>=` on the other side).
    e.register(meta(
        "live",
        "SELECT * FROM sess WHERE kind = 'a' AND expires > time::now()",
        json!({}),
    ))
    .expect("registers");
    e.register(meta(
        "late",
        "SELECT * FROM sess WHERE time::now() - 15s >= expires ORDER BY expires DESC LIMIT 2",
        json!({}),
    ))
    .expect("registers");
    assert_eq!(ids(&e, "live"), s(&["sess:1", "sess:2"]));
    assert_eq!(ids(&e, "late"), Vec::<String>::new());
    assert_eq!(e.next_flip(), Some(at(10)));

    // Nothing due yet: no view changes.
    assert!(e.advance_clock(at(9)).is_empty());
    // sess:1 expires at 10 s exactly (`expires > now` is false there); at
    // 10 s sess:3 (-5 s) is 15 s late.
    let out = e.advance_clock(at(10));
    assert_eq!(of(&out, "live").2, s(&["sess:1"]));
    assert_eq!(of(&out, "late").0, s(&["sess:3"]));
    assert_eq!(ids(&e, "live"), s(&["sess:2"]));

    // A change moves the record's instant: sess:2 lives on to 100 s.
    e.apply_batch(&[timed("sess:2", "expires", at(100), "a")]);
    let out = e.advance_clock(at(60));
    assert!(of(&out, "live").2.is_empty(), "{out:?}");
    assert_eq!(ids(&e, "live"), s(&["sess:2"]));
    // By 60 s, sess:1 (10 s) and sess:4 (30 s) are 15 s late as well; the
    // window keeps the two latest.
    assert_eq!(ids(&e, "late"), s(&["sess:1", "sess:4"]));

    // A clock moved far at once evaluates every record due on the way.
    let out = e.advance_clock(at(1000));
    assert_eq!(of(&out, "live").2, s(&["sess:2"]));
    assert_eq!(ids(&e, "late"), s(&["sess:2", "sess:4"]));
    assert_eq!(e.next_flip(), None);
}

#[test]
fn time_windows_follow_records_written_after_the_view() {
    let t0 = at(0);
    let mut e = Engine::new().starting_at(t0);
    e.register(meta(
        "live",
        "SELECT * FROM sess WHERE expires > time::now() - 1d",
        json!({}),
    ))
    .expect("registers");
    e.apply_batch(&[timed("sess:1", "expires", at(10), "a")]);
    assert_eq!(ids(&e, "live"), s(&["sess:1"]));
    assert_eq!(e.next_flip(), Some(at(86_410)));
    let out = e.advance_clock(at(86_410));
    assert_eq!(of(&out, "live").2, s(&["sess:1"]));
}

/// A path on a function's value reads through record links as a path on
/// the row does (`array::first([link]).name` is `link.name`, measured on
/// 3.3.5), when the view registers and when the linked record changes.
#[test]
fn a_path_on_a_function_value_follows_links() {
    let mut e = Engine::new();
    e.apply_batch(&[
        put_linked("u:1", json!({"name": "ann"}), &[]),
        put_linked("u:2", json!({"name": "bob"}), &[]),
        put_linked("t:1", json!({}), &[("link", "u:1")]),
        put_linked("t:2", json!({}), &[("link", "u:2")]),
    ]);
    let view = meta(
        "n",
        "SELECT * FROM t WHERE array::first([link]).name = 'ann'",
        json!({}),
    );
    match e.register(view.clone()) {
        Err(EngineError::NeedsTables(t)) => assert_eq!(t, [Arc::<str>::from("u")]),
        other => panic!("u is not loaded yet: {other:?}"),
    }
    e.mark_loaded(&[Arc::from("u")]);
    e.register(view).expect("u is loaded");
    assert_eq!(ids(&e, "n"), s(&["t:1"]));
    let out = e.apply_batch(&[put_linked("u:2", json!({"name": "ann"}), &[])]);
    assert_eq!(of(&out, "n").0, s(&["t:2"]));
    let out = e.apply_batch(&[del("u:1")]);
    assert_eq!(of(&out, "n").2, s(&["t:1"]));
    assert!(e.take_link_views().is_empty(), "every link was followed");
}

#[test]
fn a_link_path_reads_a_table_loaded_after_its_link_appeared() {
    // The view stays incremental meanwhile (the pipeline cannot move a view
    // with a time window to the re-query tier): once the table is loaded,
    // the next change of the row sees through the link, and the node's
    // membership, not a new look at the row's old content, is what was.
    let mut e = Engine::new();
    e.mark_loaded(&[Arc::from("kpr")]);
    e.apply_batch(&[put("kpr:1", json!({"ping": 1}))]);
    let sql = "SELECT * FROM kpr WHERE user.name = 'ann'";
    e.register(meta("v", sql, json!({}))).unwrap();
    e.apply_batch(&[put_linked(
        "kpr:1",
        json!({"ping": 1}),
        &[("user", "kpu:1")],
    )]);
    assert_eq!(moved_views(&mut e), ["v"], "noted for the re-query tier");
    assert!(
        e.tables().contains("kpu"),
        "kpu is wanted: {:?}",
        e.tables()
    );
    // The change worker loads it: its records, then the table marked loaded.
    e.apply_batch(&[put("kpu:1", json!({"name": "ann"}))]);
    e.mark_loaded(&[Arc::from("kpu")]);
    assert!(ids(&e, "v").is_empty());
    e.apply_batch(&[put_linked(
        "kpr:1",
        json!({"ping": 2}),
        &[("user", "kpu:1")],
    )]);
    assert_eq!(ids(&e, "v"), s(&["kpr:1"]));
}

/// `(SELECT * FROM $parent.links)[0]` over an array is SurrealDB's first
/// record of it that exists (measured: a missing record, NONE and NULL give
/// no row, any other value is a row of its own). The engine binds it, and
/// binds it again as the array's records come and go, so a view stays in
/// the engine, time window or not (a time-window view could not move to the
/// re-query tier: the differential suite, seed 54, case 836).
#[test]
fn a_time_window_view_holds_the_first_record_of_an_array_link() {
    let mut e = Engine::new();
    e.mark_loaded(&[Arc::from("t"), Arc::from("u")]);
    e.advance_clock(at(0));
    e.apply_batch(&[put("u:2", json!({}))]);
    e.register(meta(
        "v",
        "SELECT *, (SELECT * FROM $parent.links)[0] AS f FROM t WHERE when < time::now() - 1d",
        json!({}),
    ))
    .expect("registers");
    e.apply_batch(&[Change {
        id: rid("t:2"),
        content: Some(Object::from_pairs(vec![
            (
                Arc::from("links"),
                Value::Array(vec![Value::thing(rid("u:1")), Value::thing(rid("u:2"))].into()),
            ),
            (Arc::from("when"), Value::datetime(at(-3600))),
        ])),
    }]);
    assert_eq!(ids(&e, "v"), Vec::<String>::new());
    // u:1 does not exist: u:2 is the first record.
    let out = e.advance_clock(at(86_400));
    assert_eq!(ids(&e, "v"), s(&["t:2", "u:2"]));
    assert_eq!(of(&out, "v").0, s(&["t:2", "u:2"]));
    // u:1, before u:2 in the array, comes to exist: it is the first now.
    let out = e.apply_batch(&[put("u:1", json!({}))]);
    assert_eq!(ids(&e, "v"), s(&["t:2", "u:1"]));
    assert_eq!(of(&out, "v").0, s(&["u:1"]));
    assert_eq!(of(&out, "v").2, s(&["u:2"]));
    // And goes: u:2 again.
    e.apply_batch(&[del("u:1")]);
    assert_eq!(ids(&e, "v"), s(&["t:2", "u:2"]));
    // NONE is no row, a number is a row of its own (no record).
    let links = |items: Vec<Value>| Change {
        id: rid("t:2"),
        content: Some(Object::from_pairs(vec![
            (Arc::from("links"), Value::Array(items.into())),
            (Arc::from("when"), Value::datetime(at(-3600))),
        ])),
    };
    e.apply_batch(&[links(vec![Value::None, Value::thing(rid("u:2"))])]);
    assert_eq!(ids(&e, "v"), s(&["t:2", "u:2"]));
    e.apply_batch(&[links(vec![
        Value::Number(value::Number::Int(1)),
        Value::thing(rid("u:2")),
    ])]);
    assert_eq!(ids(&e, "v"), s(&["t:2"]));
    assert!(
        e.take_link_views().is_empty(),
        "the view stays in the engine"
    );
}
