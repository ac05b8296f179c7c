//! The browser path, end to end: the JS client library's own tests
//! (`clients/js`, `npm test`) and the demo page in headless Chromium
//! (`examples/demo/test/browser.mjs`), each against a real SurrealDB server
//! and a real SSP started here.
//!
//! The JavaScript side gets everything it needs in environment variables
//! (`SSP_URL`, `SSP_SECRET`, `SURREAL_URL`, `SURREAL_NS`, `SURREAL_DB`,
//! `SURREAL_USER`, `SURREAL_PASS`) and exits 0 when all its checks passed;
//! its output is shown when it fails. `dev_env` (ignored) starts the same
//! servers and waits, for working on the JavaScript by hand.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Command;

use crate::support::surreal::{ROOT_PASS, ROOT_USER};
use crate::support::{Backend, SECRET, TestApp, TestDb};

/// Most a JavaScript suite may take (debug SSP, 2 cores).
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A SurrealDB server and an SSP on it, and the environment that tells a
/// JavaScript program where they are.
struct Servers {
    _test_db: Arc<TestDb>,
    _app: TestApp,
    env: Vec<(&'static str, String)>,
}

impl Servers {
    async fn start() -> Servers {
        let test_db = TestDb::start(Backend::Ws).await;
        let app = TestApp::spawn_on(Arc::clone(&test_db), test_db.settings()).await;
        let server = test_db.server.as_ref().expect("ws server");
        let settings = test_db.settings();
        let env = vec![
            ("SSP_URL", app.base.clone()),
            ("SSP_SECRET", SECRET.to_owned()),
            // Straight to the server: the JavaScript puts its own proxy in
            // front when it wants to cut a connection.
            ("SURREAL_URL", server.url()),
            ("SURREAL_NS", settings.surrealdb.ns.clone()),
            ("SURREAL_DB", settings.surrealdb.db.clone()),
            ("SURREAL_USER", ROOT_USER.to_owned()),
            ("SURREAL_PASS", ROOT_PASS.to_owned()),
        ];
        Servers {
            _test_db: test_db,
            _app: app,
            env,
        }
    }

    /// Runs `program args` in `dir` with the servers' environment; panics
    /// with its output unless it exits 0 within [`SUITE_TIMEOUT`].
    async fn run(&self, dir: &Path, program: &str, args: &[&str], extra: &[(&str, String)]) {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in self
            .env
            .iter()
            .map(|(k, v)| (*k, v))
            .chain(extra.iter().map(|(k, v)| (*k, v)))
        {
            command.env(k, v);
        }
        let started = std::time::Instant::now();
        let output = tokio::time::timeout(SUITE_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "`{program} {}` in {} took over {SUITE_TIMEOUT:?}",
                    args.join(" "),
                    dir.display()
                )
            })
            .unwrap_or_else(|e| panic!("start `{program}`: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "`{program} {}` in {} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            args.join(" "),
            dir.display(),
            output.status
        );
        eprintln!(
            "`{program} {}` passed in {:.1}s:\n{stdout}",
            args.join(" "),
            started.elapsed().as_secs_f64()
        );
    }
}

/// The library's own tests: views, events, the shared record cache, a
/// burst of notifications, a dropped connection, unregistering.
#[test]
fn js_client_library() {
    crate::support::run(async {
        let dir = repo("clients/js");
        let install = dir.clone();
        tokio::task::spawn_blocking(move || crate::support::node::npm_ci(&install, &[]))
            .await
            .expect("npm install task");
        let servers = Servers::start().await;
        servers.run(&dir, "npm", &["test", "--silent"], &[]).await;
    });
}

/// The demo page in headless Chromium: two signed-in users, writes through
/// SurrealDB and `/ingest`, a dropped connection, and what each user may
/// see. Takes a screenshot in a temporary folder; with
/// `SSP_UPDATE_SCREENSHOT=1` it regenerates the README's (`docs/demo.png`)
/// instead, so that a test run leaves the work tree as it was.
#[test]
fn demo_page_in_chromium() {
    crate::support::run(async {
        let dir = repo("examples/demo");
        let install = dir.clone();
        tokio::task::spawn_blocking(move || {
            crate::support::node::npm_ci(&install, &[&repo("clients/js")])
        })
        .await
        .expect("npm install task");
        let servers = Servers::start().await;
        let shots = tempfile::tempdir().expect("a folder for the screenshot");
        let screenshot = match std::env::var("SSP_UPDATE_SCREENSHOT").as_deref() {
            Ok("1") => repo("docs/demo.png"),
            _ => shots.path().join("demo.png"),
        };
        servers
            .run(
                &dir,
                "node",
                &["test/browser.mjs"],
                &[("SCREENSHOT", screenshot.display().to_string())],
            )
            .await;
    });
}

/// Not a test: starts the servers, writes their environment as JSON to
/// `$SSP_DEV_ENV_FILE` (default `/tmp/ssp-dev/env.json`) and runs until
/// killed. `cargo test --test integration dev_env -- --ignored --nocapture`.
#[test]
#[ignore = "a development aid that never ends"]
fn dev_env() {
    crate::support::run(async {
        let servers = Servers::start().await;
        let path =
            std::env::var("SSP_DEV_ENV_FILE").unwrap_or_else(|_| "/tmp/ssp-dev/env.json".into());
        let env: serde_json::Map<String, serde_json::Value> = servers
            .env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
            .collect();
        if let Some(parent) = Path::new(&path).parent() {
            std::fs::create_dir_all(parent).expect("create the env file's folder");
        }
        std::fs::write(&path, serde_json::Value::Object(env).to_string())
            .expect("write the env file");
        eprintln!("dev env written to {path}");
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}
