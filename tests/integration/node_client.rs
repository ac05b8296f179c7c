//! A real browser-style client, end to end: the Node.js example in
//! `examples/node-client/` (the `@spooky/client` library of `clients/js/` on
//! the official `surrealdb` SDK) registers views through SSP, follows each
//! view's edges with `LIVE SELECT ... WHERE in = type::record('_spooky_query',
//! $view)` and keeps a local copy, while this test writes "from another
//! process": directly in SurrealDB (SSP's change worker picks the writes up)
//! and as an app would, writing the record and then calling `/ingest`.
//!
//! The client prints one JSON line per event; the test reads them with a
//! deadline each and asserts every notification, the edge versions and the
//! final local copy. It opens its second view on a command the test writes
//! to its stdin. Needs Node.js >= 20 and npm on `PATH`; the example's npm
//! dependencies are installed here (`npm ci`) when missing or out of date.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use ssp::db::{Db, Query};
use surrealdb::types as sdb;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::support::proxy::Proxy;
use crate::support::{Backend, SECRET, TestApp, TestDb, wait_for};

/// How long one expected event may take. Generous: debug build, 2 cores.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node-client")
}

/// The JS client library the example is built on.
fn clients_js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/js")
}

/// The running Node client: its stdout as events, its stderr kept for
/// failure messages.
struct NodeClient {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<Vec<String>>>,
    seen: Vec<Value>,
}

impl NodeClient {
    fn spawn(env: &[(&str, String)]) -> NodeClient {
        let mut command = Command::new("node");
        command
            .arg("client.mjs")
            .current_dir(example_dir())
            .env("STOP_ON_STDIN_EOF", "true")
            .env("STDIN_COMMANDS", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start the Node client");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let sink = Arc::clone(&stderr);
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                sink.lock().expect("stderr lines").push(line);
            }
        });
        NodeClient {
            child,
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    fn context(&self) -> String {
        let seen: Vec<String> = self.seen.iter().map(Value::to_string).collect();
        format!(
            "events so far:\n  {}\nclient stderr:\n  {}",
            seen.join("\n  "),
            self.stderr.lock().expect("stderr lines").join("\n  ")
        )
    }

    /// The next event, whatever it is.
    async fn next(&mut self, waiting_for: &str) -> Value {
        let line = match tokio::time::timeout(EVENT_TIMEOUT, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => panic!(
                "the Node client exited while the test waited for {waiting_for}\n{}",
                self.context()
            ),
            Ok(Err(e)) => panic!("reading the Node client's stdout: {e}\n{}", self.context()),
            Err(_) => panic!(
                "no event from the Node client within {EVENT_TIMEOUT:?} while waiting for {waiting_for}\n{}",
                self.context()
            ),
        };
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "the Node client printed a line that is not JSON ({e}): {line}\n{}",
                self.context()
            )
        });
        self.seen.push(event.clone());
        event
    }

    /// The next event, which must be named `name`.
    async fn expect(&mut self, name: &str) -> Value {
        let event = self.next(&format!("a `{name}` event")).await;
        assert_eq!(
            event["event"],
            name,
            "expected a `{name}` event, got {event}\n{}",
            self.context()
        );
        event
    }

    /// The next event, which must be an edge notification with exactly these
    /// fields (`content` is checked separately).
    async fn expect_edge(
        &mut self,
        action: &str,
        view: &str,
        record: &str,
        version: i64,
        fetched: bool,
    ) -> Value {
        let event = self.expect("edge").await;
        let got = json!({
            "action": event["action"], "view": event["view"], "record": event["record"],
            "version": event["version"], "fetched": event["fetched"],
        });
        let want = json!({
            "action": action, "view": view, "record": record, "version": version, "fetched": fetched,
        });
        assert_eq!(got, want, "edge notification\n{}", self.context());
        event
    }

    /// Writes one command line to the client's stdin.
    async fn send(&mut self, command: Value) {
        let stdin = self.child.stdin.as_mut().expect("the client's stdin");
        let line = format!("{command}\n");
        stdin
            .write_all(line.as_bytes())
            .await
            .expect("write a command to the Node client");
        stdin.flush().await.expect("flush the Node client's stdin");
    }

    /// Closes stdin (the client's stop signal) and returns its `stopped`
    /// event after checking that it exits with status 0.
    async fn stop(mut self) -> Value {
        drop(self.child.stdin.take());
        let stopped = self.expect("stopped").await;
        let status = tokio::time::timeout(EVENT_TIMEOUT, self.child.wait())
            .await
            .expect("the Node client exits after stdin closes")
            .expect("wait for the Node client");
        assert!(status.success(), "the Node client exited with {status}");
        stopped
    }
}

fn rid(table: &str, key: i64) -> sdb::Value {
    sdb::Value::RecordId(sdb::RecordId::new(table, key))
}

/// Writes a thread directly in SurrealDB, as another process would.
async fn write_thread(db: &Db, key: i64, author: i64, title: &str) {
    db.run(
        Query::new("UPSERT $id CONTENT { author: $author, title: $title }")
            .bind("id", rid("thread", key))
            .bind("author", rid("user", author))
            .bind("title", title.to_owned()),
    )
    .await
    .unwrap_or_else(|e| panic!("write thread:{key}: {e}"));
}

async fn delete_thread(db: &Db, key: i64) {
    db.run(Query::new("DELETE $id").bind("id", rid("thread", key)))
        .await
        .unwrap_or_else(|e| panic!("delete thread:{key}: {e}"));
}

/// What an app does: writes the record, then tells SSP with `/ingest`.
async fn app_write(app: &TestApp, db: &Db, op: &str, key: i64, author: i64, title: &str) {
    let record = if op == "DELETE" {
        delete_thread(db, key).await;
        Value::Null
    } else {
        write_thread(db, key, author, title).await;
        json!({"author": format!("user:{author}"), "title": title})
    };
    let response = app
        .post("/ingest")
        .json(
            &json!({"table": "thread", "op": op, "id": format!("thread:{key}"), "record": record}),
        )
        .send()
        .await
        .expect("ingest request");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "ingest {op} thread:{key}: {body}");
}

/// The view as SSP reports it: record id -> version.
async fn view_versions(app: &TestApp, view: &str) -> Value {
    let body = app.get_json(&format!("/view/{view}")).await;
    let mut out = serde_json::Map::new();
    for r in body["records"].as_array().cloned().unwrap_or_default() {
        out.insert(
            r["id"].as_str().unwrap_or_default().to_owned(),
            r["version"].clone(),
        );
    }
    Value::Object(out)
}

const MINE: &str = "threads-of-1";
const MINE_SQL: &str = "SELECT * FROM thread WHERE author = $uid";
const SECOND: &str = "second-threads";
const SECOND_SQL: &str = "SELECT * FROM thread WHERE string::starts_with(title, 'second')";

#[test]
fn node_client_follows_its_edges() {
    crate::support::run(node_client_follows_its_edges_body());
}

async fn node_client_follows_its_edges_body() {
    tokio::task::spawn_blocking(|| {
        crate::support::node::npm_ci(&example_dir(), &[&clients_js_dir()])
    })
    .await
    .expect("npm install task");

    let test_db = TestDb::start(Backend::Ws).await;
    let app = TestApp::spawn_on(Arc::clone(&test_db), test_db.settings()).await;
    let server = test_db.server.as_ref().expect("ws server");
    // "Another process": its own connection, straight to the server.
    let server_url = server.url();
    let direct_settings = test_db.settings_with(&[("SPOOKY_SURREALDB_URL", server_url.as_str())]);
    let db = Db::connect(&direct_settings.surrealdb)
        .await
        .expect("direct connection");
    // The client reaches SurrealDB through its own proxy, to cut it later.
    let client_proxy = Proxy::start_to(server.addr()).await;

    // Data written before the view exists.
    write_thread(&db, 1, 1, "first").await;

    let mut client = NodeClient::spawn(&[
        ("SSP_URL", app.base.clone()),
        ("SSP_SECRET", SECRET.to_owned()),
        ("SURREAL_URL", client_proxy.url()),
        ("SURREAL_NS", direct_settings.surrealdb.ns.clone()),
        ("SURREAL_DB", direct_settings.surrealdb.db.clone()),
        ("SURREAL_USER", "root".to_owned()),
        ("SURREAL_PASS", "root".to_owned()),
        ("CLIENT_ID", "browser-1".to_owned()),
        ("VIEW_ID", MINE.to_owned()),
        ("VIEW_SQL", MINE_SQL.to_owned()),
        ("VIEW_PARAMS", json!({"uid": "user:1"}).to_string()),
        ("HEARTBEAT_MS", "0".to_owned()),
    ]);

    // Registration answers the initial set; the subscription then reads the
    // current edges and fetches what they point at.
    let registered = client.expect("registered").await;
    assert_eq!(registered["view"], MINE);
    assert_eq!(
        registered["records"],
        json!([{"id": "thread:1", "version": 1}])
    );
    let ready = client.expect("ready").await;
    assert_eq!(ready["view"], MINE);
    assert_eq!(ready["edges"], 1);
    assert_eq!(ready["fetched"], 1);
    assert_eq!(ready["views"], json!({MINE: ["thread:1"]}));
    assert_eq!(ready["records"]["thread:1"]["version"], 1);
    assert_eq!(ready["records"]["thread:1"]["content"]["title"], "first");

    // A direct write that enters the view: the edge is created with version
    // 1, and the client fetches the record.
    write_thread(&db, 2, 1, "second").await;
    let e = client
        .expect_edge("CREATE", MINE, "thread:2", 1, true)
        .await;
    assert_eq!(e["content"]["title"], "second");
    assert_eq!(e["content"]["author"], "user:1");

    // A write outside the view, and identical content written again: no
    // edge changes, so the next event is the next step's.
    write_thread(&db, 3, 2, "other").await;
    write_thread(&db, 2, 1, "second").await;

    // An update inside the view bumps the edge's version: the client refetches.
    write_thread(&db, 2, 1, "second, edited").await;
    let e = client
        .expect_edge("UPDATE", MINE, "thread:2", 2, true)
        .await;
    assert_eq!(e["content"]["title"], "second, edited");

    // The app path: write, then /ingest (the worker sees the same write;
    // the version moves once).
    app_write(&app, &db, "CREATE", 4, 1, "fourth").await;
    let e = client
        .expect_edge("CREATE", MINE, "thread:4", 1, true)
        .await;
    assert_eq!(e["content"]["title"], "fourth");
    app_write(&app, &db, "UPDATE", 4, 1, "fourth, edited").await;
    let e = client
        .expect_edge("UPDATE", MINE, "thread:4", 2, true)
        .await;
    assert_eq!(e["content"]["title"], "fourth, edited");

    // A record leaves the view: its edge is deleted, the client drops it.
    write_thread(&db, 1, 2, "first").await;
    let e = client
        .expect_edge("DELETE", MINE, "thread:1", 1, false)
        .await;
    assert_eq!(e["dropped"], true);

    // The client opens a second view, which holds thread:2: the client
    // already has it at version 2 (the first view holds it), no fetch.
    client
        .send(json!({"open": {"id": SECOND, "sql": SECOND_SQL}}))
        .await;
    let registered = client.expect("registered").await;
    assert_eq!(registered["view"], SECOND);
    assert_eq!(registered["clientId"], "browser-1");
    assert_eq!(
        registered["records"],
        json!([{"id": "thread:2", "version": 2}])
    );
    let ready = client.expect("ready").await;
    assert_eq!(ready["view"], SECOND);
    assert_eq!(ready["edges"], 1);
    assert_eq!(ready["fetched"], 0);
    assert_eq!(
        ready["views"],
        json!({MINE: ["thread:2", "thread:4"], SECOND: ["thread:2"]})
    );
    assert_eq!(ready["records"]["thread:2"]["version"], 2);

    // One change to a record both views hold: two edge updates to the same
    // version, one fetch.
    write_thread(&db, 2, 1, "second, again").await;
    let a = client.expect("edge").await;
    let b = client.expect("edge").await;
    let mut pair: Vec<(String, String, i64, bool)> = [&a, &b]
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["view"].as_str().unwrap_or_default().to_owned(),
                e["version"].as_i64().unwrap_or_default(),
                e["fetched"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    pair.sort();
    let fetches = pair.iter().filter(|p| p.3).count();
    assert_eq!(
        fetches, 1,
        "one fetch for two edges of one version: {a} {b}"
    );
    for p in &mut pair {
        p.3 = false;
    }
    assert_eq!(
        pair,
        vec![
            ("UPDATE".to_owned(), SECOND.to_owned(), 3, false),
            ("UPDATE".to_owned(), MINE.to_owned(), 3, false),
        ]
    );
    assert_eq!(a["record"], "thread:2");
    assert_eq!(b["record"], "thread:2");

    // The app deletes a record: its edge goes.
    app_write(&app, &db, "DELETE", 4, 1, "").await;
    let e = client
        .expect_edge("DELETE", MINE, "thread:4", 2, false)
        .await;
    assert_eq!(e["dropped"], true);

    // A record that enters with history: the edge carries the record's
    // version (created 1, author changed 2), not a count of edges.
    write_thread(&db, 3, 1, "other").await;
    client
        .expect_edge("CREATE", MINE, "thread:3", 2, true)
        .await;

    // The client loses its connection; meanwhile thread:3 changes and
    // thread:2 is deleted. When it is back it subscribes again and catches
    // up from its edges.
    client_proxy.stop();
    client.expect("disconnected").await;
    write_thread(&db, 3, 1, "other, edited").await;
    delete_thread(&db, 2).await;
    let want = json!({"thread:3": 3});
    wait_for("SSP to apply the writes", EVENT_TIMEOUT, || async {
        (view_versions(&app, MINE).await == want && view_versions(&app, SECOND).await == json!({}))
            .then_some(())
    })
    .await;
    client_proxy.start().await;
    let again = client.expect("resubscribed").await;
    assert_eq!(again["edges"], 1);
    assert_eq!(again["fetched"], 1);
    assert_eq!(again["views"], json!({MINE: ["thread:3"]}));
    assert_eq!(again["records"]["thread:3"]["version"], 3);
    assert_eq!(
        again["records"]["thread:3"]["content"]["title"],
        "other, edited"
    );

    // And follows again.
    write_thread(&db, 5, 1, "fifth").await;
    client
        .expect_edge("CREATE", MINE, "thread:5", 1, true)
        .await;

    // The final local copy: exactly the records of the client's views, at
    // the versions SSP holds, with the content SurrealDB holds.
    let stopped = client.stop().await;
    assert_eq!(stopped["views"], json!({MINE: ["thread:3", "thread:5"]}));
    let records = stopped["records"].as_object().expect("records");
    let versions: Value = records
        .iter()
        .map(|(k, v)| (k.clone(), v["version"].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert_eq!(versions, view_versions(&app, MINE).await);
    for (id, title) in [("thread:3", "other, edited"), ("thread:5", "fifth")] {
        assert_eq!(records[id]["content"]["title"], title, "{id}");
        assert_eq!(records[id]["content"]["author"], "user:1", "{id}");
        assert_eq!(records[id]["content"]["id"], id, "{id}");
    }
}
