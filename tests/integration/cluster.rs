//! Several SSP instances against one SurrealDB server (`[cluster]`): views
//! spread over the instances, any instance answers, a killed or stopped one
//! hands its views on, and a former holder's late writes are fenced out.
//! Every check is against SurrealDB's own answer to the view's query.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use surrealdb::Surreal;
use surrealdb::engine::any::Any;

use crate::support::process::SspProcess;
use crate::support::surreal::root_connection;
use crate::support::{Backend, TestApp, TestDb, wait_for};

const LEASE_MS: &str = "1500";

/// An instance; its log (`stderr.log` in `dir`) at `CLUSTER_LOG`'s level.
fn node(dir: &std::path::Path, url: &str, id: &str) -> SspProcess {
    let log = std::env::var("CLUSTER_LOG").unwrap_or_else(|_| "info".into());
    SspProcess::spawn_as_operator(
        dir,
        Some(url),
        &[
            ("SPOOKY_CLUSTER_ENABLED", "true"),
            ("SPOOKY_CLUSTER_NODE_ID", id),
            ("SPOOKY_CLUSTER_LEASE_MS", LEASE_MS),
            ("SPOOKY_LOG", &log),
        ],
    )
}

/// A view of the test and the query that gives SurrealDB's own answer.
struct View {
    id: String,
    sql: String,
    params: Value,
    truth: String,
}

fn views() -> Vec<View> {
    let mut out = Vec::new();
    for a in 0..6 {
        out.push(View {
            id: format!("by-author-{a}"),
            sql: "SELECT * FROM post WHERE author = $a".into(),
            params: json!({"a": a}),
            truth: "SELECT VALUE <string> id FROM post WHERE author = $a".into(),
        });
    }
    for k in 0..6 {
        out.push(View {
            id: format!("top-{k}"),
            sql: "SELECT * FROM post WHERE n >= $k ORDER BY n DESC LIMIT 3".into(),
            params: json!({"k": k * 100}),
            truth: "SELECT VALUE <string> id FROM (SELECT id, n FROM post WHERE n >= $k \
                    ORDER BY n DESC LIMIT 3)"
                .into(),
        });
    }
    out
}

async fn strings(root: &Surreal<Any>, sql: &str, params: &Value) -> BTreeSet<String> {
    let mut q = root.query(sql.to_string());
    if let Some(o) = params.as_object() {
        for (k, v) in o {
            q = q.bind((k.clone(), v.clone()));
        }
    }
    let mut r = q.await.expect("query");
    let v: surrealdb::types::Value = r.take(0).expect("rows");
    ssp::db::values::surreal_to_json(v)
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

async fn edges(root: &Surreal<Any>, view: &str) -> BTreeSet<String> {
    strings(
        root,
        "SELECT VALUE <string> out FROM _spooky_list_ref WHERE in = type::record('_spooky_query', $v)",
        &json!({"v": view}),
    )
    .await
}

/// The views whose edges differ from SurrealDB's answer.
async fn mismatches(root: &Surreal<Any>, views: &[View]) -> Vec<String> {
    let mut out = Vec::new();
    for v in views {
        let truth = strings(root, &v.truth, &v.params).await;
        let have = edges(root, &v.id).await;
        if truth != have {
            out.push(format!("{}: truth {truth:?}, edges {have:?}", v.id));
        }
    }
    out
}

/// Edges that name another instance than their view's holder: written by
/// a former holder after it lost the view (a take-over rewrites every edge
/// of the view, and the fence refuses a former holder's writes).
async fn edges_of_former_holders(root: &Surreal<Any>) -> BTreeSet<String> {
    strings(
        root,
        "SELECT VALUE <string> id + ' by ' + (node OR 'none') FROM _spooky_list_ref WHERE node != in.node",
        &json!({}),
    )
    .await
}

/// Each view's hold epoch, as its row says.
async fn epochs_now(root: &Surreal<Any>) -> std::collections::BTreeMap<String, i64> {
    strings(
        root,
        "SELECT VALUE record::id(id) + '=' + <string> (epoch OR 0) FROM _spooky_query",
        &json!({}),
    )
    .await
    .into_iter()
    .filter_map(|row| {
        let (view, epoch) = row.split_once('=')?;
        Some((view.to_owned(), epoch.parse().ok()?))
    })
    .collect()
}

/// Holders of the views, as their rows name them.
async fn holders(root: &Surreal<Any>) -> Vec<String> {
    strings(
        root,
        "SELECT VALUE node OR 'none' FROM _spooky_query",
        &json!({}),
    )
    .await
    .into_iter()
    .collect()
}

async fn post_ok(http: &reqwest::Client, p: &SspProcess, path: &str, body: &Value) -> Value {
    let mut last = String::new();
    for _ in 0..40 {
        match http
            .post(format!("{}{path}", p.base))
            .bearer_auth(&p.secret)
            .json(body)
            .send()
            .await
        {
            Ok(r) if r.status() == StatusCode::OK => return r.json().await.expect("json"),
            Ok(r) if r.status().is_server_error() => {
                last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default())
            }
            Ok(r) => panic!(
                "{path} answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{path} never answered 200: {last}");
}

async fn peers_seen(http: &reqwest::Client, p: &SspProcess) -> usize {
    let Ok(r) = http.get(format!("{}/health", p.base)).send().await else {
        return 0;
    };
    let body: Value = r.json().await.unwrap_or_default();
    body["cluster"]["peers"].as_array().map_or(0, Vec::len)
}

async fn start_nodes(server_url: &str, ids: &[&str]) -> (Vec<tempfile::TempDir>, Vec<SspProcess>) {
    let http = reqwest::Client::new();
    let dirs: Vec<_> = ids.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<SspProcess> = ids
        .iter()
        .zip(&dirs)
        .map(|(id, dir)| node(dir.path(), server_url, id))
        .collect();
    for n in &nodes {
        let up = tokio::time::timeout(Duration::from_secs(50), n.wait_up(&http)).await;
        assert!(up.is_ok(), "an instance did not start: {}", n.stderr());
    }
    for n in &nodes {
        wait_for(
            "every instance to see the others",
            Duration::from_secs(30),
            || async { (peers_seen(&http, n).await == ids.len()).then_some(()) },
        )
        .await;
    }
    (dirs, nodes)
}

/// A SurrealDB server with `posts` posts (`author` = i % `authors`, `n` =
/// i * 10), a root connection to it, and instances `ids` that see each other.
async fn setup(
    posts: i64,
    authors: i64,
    ids: &[&str],
) -> (
    Arc<TestDb>,
    Surreal<Any>,
    Vec<tempfile::TempDir>,
    Vec<SspProcess>,
) {
    let test_db = TestDb::start(Backend::Ws).await;
    let url = test_db.server.as_ref().expect("ws server").url();
    let root = root_connection(&test_db, "spooky", "spooky").await;
    write(
        &root,
        "DEFINE TABLE post SCHEMALESS; FOR $i IN 0..$posts { \
         CREATE type::record('post', $i) SET author = $i % $authors, n = $i * 10; }",
        json!({"posts": posts, "authors": authors}),
    )
    .await;
    let (dirs, nodes) = start_nodes(&url, ids).await;
    (test_db, root, dirs, nodes)
}

/// Runs `sql` as an app does: a write that conflicts (with SSP's edge
/// transactions, through the edges a delete takes along) is written again.
async fn write(root: &Surreal<Any>, sql: &str, binds: Value) {
    for attempt in 0.. {
        let mut q = root.query(sql.to_string());
        if let Some(o) = binds.as_object() {
            for (k, v) in o {
                q = q.bind((k.clone(), v.clone()));
            }
        }
        match q.await.and_then(|r| r.check()) {
            Ok(_) => return,
            Err(e) if attempt < 20 && e.to_string().contains("retried") => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }
}

/// Three instances; views registered through all of them; writes through
/// SurrealDB and `/ingest` on random instances; one instance killed (-9)
/// and another stopped (SIGTERM) mid-stream. Afterwards every view's edges
/// are SurrealDB's answer, and the one instance left holds every view.
#[test]
fn three_instances_share_the_views_and_survive_kill_and_term() {
    crate::support::run(async {
        let (_test_db, root, _dirs, mut nodes) = setup(30, 6, &["n1", "n2", "n3"]).await;
        let http = reqwest::Client::new();
        let views = views();
        for (i, v) in views.iter().enumerate() {
            let body = json!({"id": v.id, "sql": v.sql, "params": v.params, "clientId": "c"});
            let answer = post_ok(&http, &nodes[i % 3], "/view/register", &body).await;
            let truth = strings(&root, &v.truth, &v.params).await;
            let records: BTreeSet<String> = answer["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(records, truth, "{} as registered", v.id);
        }
        let spread: BTreeSet<String> = holders(&root).await.into_iter().collect();
        assert!(spread.len() >= 2, "the views are spread: {spread:?}");
        assert!(!spread.contains("none"), "every view is held: {spread:?}");
        // Any instance answers for any view.
        for v in &views {
            let r = http
                .get(format!("{}/view/{}", nodes[0].base, v.id))
                .bearer_auth(&nodes[0].secret)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "GET {} through n1", v.id);
        }

        let mut rng = rand::rngs::StdRng::seed_from_u64(19);
        let mut alive = [true, true, true];
        let mut next_id = 30;
        let mut epochs: std::collections::BTreeMap<String, i64> = Default::default();
        let writes = std::time::Instant::now();
        for step in 0..90 {
            if step % 5 == 0 {
                // A hold moves only forward: a view's epoch never goes
                // back. (Which instance writes is the fence's business:
                // the tests below, and the edges' `node` at the end. An
                // instance may believe for a moment that it holds a view it
                // lost, as a paused one does; it writes nothing to it.)
                for (view, epoch) in epochs_now(&root).await {
                    let before = epochs.insert(view.clone(), epoch).unwrap_or(0);
                    assert!(epoch >= before, "{view}: epoch {before} then {epoch}");
                }
            }
            if step == 30 {
                nodes[0].signal("-KILL");
                nodes[0].wait();
                alive[0] = false;
            }
            if step == 60 {
                let t = std::time::Instant::now();
                nodes[1].signal("-TERM");
                let status = nodes[1].wait();
                if std::env::var("CLUSTER_DEBUG").is_ok() {
                    eprintln!("{}", nodes[1].stderr());
                }
                eprintln!("cluster: SIGTERM to exit in {:?}", t.elapsed());
                assert!(status.success(), "SIGTERM exits cleanly: {status}");
                alive[1] = false;
            }
            let (op, id, record) = match rng.random_range(0..10) {
                0..=2 => {
                    next_id += 1;
                    let rec = json!({"author": rng.random_range(0..6), "n": next_id * 10 + 1});
                    ("CREATE", next_id, Some(rec))
                }
                3 => ("DELETE", rng.random_range(0..next_id), None),
                _ => {
                    let rec = json!({"author": rng.random_range(0..6), "n": step * 1000 + 7});
                    ("UPDATE", rng.random_range(0..next_id), Some(rec))
                }
            };
            let rid = format!("post:{id}");
            match &record {
                Some(rec) => {
                    let binds = json!({"id": id, "rec": rec});
                    write(
                        &root,
                        "UPSERT type::record('post', $id) CONTENT $rec",
                        binds,
                    )
                    .await
                }
                None => write(&root, "DELETE type::record('post', $id)", json!({"id": id})).await,
            }
            // Every other write is also sent to a random live instance.
            if step % 2 == 0 {
                let live: Vec<usize> = (0..3).filter(|i| alive[*i]).collect();
                let at = live[rng.random_range(0..live.len())];
                let mut body = json!({"table": "post", "op": op, "id": rid});
                if let Some(rec) = record {
                    body["record"] = rec;
                }
                post_ok(&http, &nodes[at], "/ingest", &body).await;
            }
        }

        eprintln!("cluster: 90 writes in {:?}", writes.elapsed());
        let settle = std::time::Instant::now();
        wait_for(
            "every view to equal SurrealDB's answer on the last instance",
            Duration::from_secs(90),
            || async {
                let wrong = mismatches(&root, &views).await;
                let held = holders(&root).await;
                (wrong.is_empty() && held == vec!["n3".to_string()]).then_some(())
            },
        )
        .await;
        eprintln!(
            "cluster: the last instance held every view, exactly, {:?} after the last write",
            settle.elapsed()
        );
        // And they stay so (nothing late rewrites them).
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(mismatches(&root, &views).await, Vec::<String>::new());
        assert_eq!(edges_of_former_holders(&root).await, BTreeSet::new());
        let health: Value = http
            .get(format!("{}/health", nodes[2].base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["cluster"]["views_held"], views.len(), "{health}");
        assert_eq!(health["views"], views.len(), "{health}");
    });
}

/// The fence itself: a transaction written at an epoch the view row no
/// longer has, or by an instance the row does not name, fails whole and
/// writes nothing; and a registration does not take a view another live
/// instance holds, but does take it once that instance's lease passed.
#[test]
fn late_writes_of_a_former_holder_are_refused() {
    use ssp::cluster::holds::Holds;
    use ssp::engine::ViewDelta;
    use ssp::engine::value::RecordId;
    use ssp::sink::{EdgeChanges, EdgeSink};

    crate::support::run(async {
        let app = TestApp::spawn(Backend::Mem).await;
        let db = Arc::clone(&app.db);
        db.run(ssp::db::Query::new(
            "CREATE _spooky_query:v SET clientId = 'c', surql = 'SELECT * FROM t', node = 'a', epoch = 2; \
             CREATE _spooky_node:a SET address = 'x', started = time::now(), heartbeat = time::now(), \
                lease_until = time::now() + 1h;",
        ))
        .await
        .expect("rows");
        let edge_count = || async {
            let mut r = db
                .run(ssp::db::Query::new(
                    "RETURN [count(SELECT VALUE id FROM _spooky_list_ref WHERE in = _spooky_query:v)]",
                ))
                .await
                .expect("count");
            let v: Vec<i64> = r.take(0).expect("count");
            v.first().copied().unwrap_or(0)
        };
        let write = |holds: Arc<Holds>, key: i64| {
            let db = Arc::clone(&db);
            async move {
                let sink = EdgeSink::with_writers(db, 1).await.fenced_by(Some(holds));
                let mut changes = EdgeChanges::default();
                changes.absorb(&[ViewDelta {
                    view: "v".into(),
                    client_id: "c".into(),
                    created: vec![(RecordId::new("t", ssp::engine::Key::Int(key)), 1)],
                    ..Default::default()
                }]);
                sink.write(&changes).await
            }
        };

        // "a" at the epoch before the row's: refused, nothing written.
        let stale = Arc::new(Holds::new("a".into()));
        stale.set("v".into(), 1);
        let err = write(stale, 1).await.expect_err("a stale epoch is fenced");
        assert!(err.is_fenced(), "{err}");
        assert_eq!(edge_count().await, 0);
        // Another instance, at the row's epoch: refused too.
        let other = Arc::new(Holds::new("b".into()));
        other.set("v".into(), 2);
        assert!(
            write(other.clone(), 1)
                .await
                .expect_err("not the holder")
                .is_fenced()
        );
        assert_eq!(edge_count().await, 0);
        // The holder at its epoch writes.
        let holder = Arc::new(Holds::new("a".into()));
        holder.set("v".into(), 2);
        write(holder.clone(), 1).await.expect("the holder writes");
        assert_eq!(edge_count().await, 1);

        // "b" registering the view while "a"'s lease runs: refused.
        let meta = ssp::engine::ViewMeta {
            id: "v".into(),
            client_id: "c".into(),
            sql: "SELECT * FROM t".into(),
            params: Default::default(),
            ttl: "1h".into(),
            last_active_at: chrono::Utc::now(),
            owner: None,
        };
        let b_sink = EdgeSink::with_writers(Arc::clone(&db), 1)
            .await
            .fenced_by(Some(other.clone()));
        let err = b_sink
            .upsert_view(&meta, false)
            .await
            .expect_err("a is alive");
        assert!(err.is_fenced(), "{err}");
        // Once "a"'s lease has passed, "b" takes the view at a new epoch,
        // and "a"'s writes at its old one are refused from then on.
        db.run(ssp::db::Query::new(
            "UPDATE _spooky_node:a SET lease_until = time::now() - 1s",
        ))
        .await
        .expect("expire a");
        b_sink.upsert_view(&meta, false).await.expect("b takes it");
        assert_eq!(other.epoch("v"), Some(3));
        assert!(
            write(holder, 2)
                .await
                .expect_err("a is fenced out")
                .is_fenced()
        );
        write(other, 2).await.expect("b writes");
        assert_eq!(edge_count().await, 2);
    });
}

/// A holder paused (SIGSTOP) past its lease: the other instance takes its
/// view and keeps it exact; resumed, the former holder's late writes for
/// it are refused, and the edges stay SurrealDB's answer.
#[test]
fn a_paused_holder_is_taken_over_and_fenced_out() {
    crate::support::run(async {
        let (_test_db, root, _dirs, nodes) = setup(10, 2, &["p1", "p2"]).await;
        let http = reqwest::Client::new();
        let views: Vec<View> = (0..4)
            .map(|i| View {
                id: format!("v{i}"),
                sql: "SELECT * FROM post WHERE author = $a".into(),
                params: json!({"a": i % 2}),
                truth: "SELECT VALUE <string> id FROM post WHERE author = $a".into(),
            })
            .collect();
        for v in &views {
            let body = json!({"id": v.id, "sql": v.sql, "params": v.params, "clientId": "c"});
            post_ok(&http, &nodes[0], "/view/register", &body).await;
        }
        // Pause the instance holding v0.
        let holder = strings(&root, "SELECT VALUE node FROM _spooky_query:v0", &json!({})).await;
        let paused = if holder.contains("p1") { 0 } else { 1 };
        let other = 1 - paused;
        nodes[paused].signal("-STOP");
        for i in 10..16 {
            let sql = "CREATE type::record('post', $i) SET author = $i % 2, n = $i";
            write(&root, sql, json!({"i": i})).await;
        }
        let other_id = if other == 0 { "p1" } else { "p2" };
        wait_for(
            "the other instance to take every view, exactly",
            Duration::from_secs(30),
            || async {
                let held = holders(&root).await;
                (held == vec![other_id.to_string()] && mismatches(&root, &views).await.is_empty())
                    .then_some(())
            },
        )
        .await;
        // Every view was taken over: its epoch rose above the first hold's.
        let epochs_before = epochs_now(&root).await;
        assert_eq!(epochs_before.len(), views.len());
        assert!(
            epochs_before.values().all(|e| *e >= 2),
            "every view taken over: {epochs_before:?}"
        );
        nodes[paused].signal("-CONT");
        // At once, a change sent to the resumed instance itself: answered
        // (after retries while it lets go of the views it lost), never a
        // write over the new holder's edges.
        write(&root, "CREATE post:30 SET author = 0, n = 30", json!({})).await;
        post_ok(
            &http,
            &nodes[paused],
            "/ingest",
            &json!({"table": "post", "op": "CREATE", "id": "post:30", "record": {"author": 0, "n": 30}}),
        )
        .await;
        // More writes after the resume, and some deletes.
        for i in 16..20 {
            let sql = "CREATE type::record('post', $i) SET author = $i % 2, n = $i";
            write(&root, sql, json!({"i": i})).await;
        }
        write(&root, "DELETE post:1, post:2", json!({})).await;
        // The resumed instance comes back as a member; views the hash gives
        // it move back to it, one epoch up. Throughout, the edges converge
        // to SurrealDB's answer and stay there.
        wait_for(
            "the edges to equal SurrealDB's answer",
            Duration::from_secs(30),
            || async { mismatches(&root, &views).await.is_empty().then_some(()) },
        )
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(mismatches(&root, &views).await, Vec::<String>::new());
        assert_eq!(edges_of_former_holders(&root).await, BTreeSet::new());
        // Holds only move forward, also once the resumed one is back.
        let epochs_after = epochs_now(&root).await;
        for (view, before) in &epochs_before {
            assert!(
                epochs_after.get(view).is_some_and(|after| after >= before),
                "{view}: epoch {before}, then {:?}",
                epochs_after.get(view)
            );
        }
        let metrics = http
            .get(format!("{}/metrics", nodes[paused].base))
            .bearer_auth(&nodes[paused].secret)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let fenced: Vec<&str> = metrics
            .lines()
            .filter(|l| {
                l.starts_with("ssp_fenced_writes_total")
                    || l.starts_with("ssp_cluster_views_lost_total")
            })
            .collect();
        eprintln!("the resumed instance: {fenced:?}");
        assert!(
            !fenced.is_empty(),
            "the resumed instance let go of the views it lost (or had writes fenced): {metrics}"
        );
    });
}
