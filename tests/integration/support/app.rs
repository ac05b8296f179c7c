//! SSP started in-process against a chosen backend, with a known secret and
//! an HTTP client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ssp::config::Settings;
use ssp::db::Db;
use ssp::startup::{Application, Shutdown, StartupError};
use tokio::task::JoinHandle;

use super::proxy::Proxy;
use super::surreal::SurrealServer;

/// The bearer secret every test app uses.
pub const SECRET: &str = "test-secret-0123456789";

/// Which SurrealDB SSP talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded in-memory engine (`mem://`).
    Mem,
    /// Embedded SurrealKV in a temporary directory (`surrealkv://`), for
    /// tests that restart SSP on the same data.
    Kv,
    /// The in-process SurrealDB server over `ws://`, through a [`Proxy`].
    Ws,
}

/// The database side of a test: the server and proxy for `ws://`, the
/// directory for SurrealKV. Shared by the SSP instances of one test so that a
/// restarted SSP finds the same data.
pub struct TestDb {
    pub backend: Backend,
    pub server: Option<SurrealServer>,
    pub proxy: Option<Proxy>,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn start(backend: Backend) -> Arc<TestDb> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (server, proxy) = if backend == Backend::Ws {
            let server = SurrealServer::start().await;
            let proxy = Proxy::start_to(server.addr()).await;
            (Some(server), Some(proxy))
        } else {
            (None, None)
        };
        Arc::new(TestDb {
            backend,
            server,
            proxy,
            dir,
        })
    }

    /// The URL SSP is given.
    pub fn url(&self) -> String {
        match self.backend {
            Backend::Mem => "mem://".to_owned(),
            Backend::Kv => format!("surrealkv://{}", self.dir.path().join("surreal").display()),
            Backend::Ws => self.proxy().url(),
        }
    }

    /// The proxy in front of the `ws://` server.
    pub fn proxy(&self) -> &Proxy {
        self.proxy
            .as_ref()
            .expect("only the ws backend has a proxy")
    }

    /// Settings for an SSP on this database: port 0, the test secret, short
    /// timeouts, state file in the temp dir. Built through the real loader.
    pub fn settings(&self) -> Settings {
        self.settings_with(&[])
    }

    /// Like [`TestDb::settings`] with extra `SPOOKY_*` variables.
    pub fn settings_with(&self, extra: &[(&str, &str)]) -> Settings {
        let state_file = self.dir.path().join("spooky_state.json");
        let mut env: HashMap<String, String> = [
            ("SPOOKY_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("SPOOKY_AUTH_SECRET", SECRET.to_owned()),
            ("SPOOKY_SURREALDB_URL", self.url()),
            ("SPOOKY_PERSISTENCE_FILE", state_file.display().to_string()),
            ("SPOOKY_SURREALDB_CONNECT_DEADLINE_MS", "10000".to_owned()),
            ("SPOOKY_SURREALDB_CALL_TIMEOUT_MS", "3000".to_owned()),
            ("SPOOKY_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Settings::load_from(None, false, &env).expect("test settings")
    }
}

/// A running SSP.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub db: Arc<Db>,
    pub test_db: Arc<TestDb>,
    pub http: reqwest::Client,
    shutdown: Shutdown,
    task: Option<JoinHandle<Result<(), StartupError>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

impl TestApp {
    /// SSP on a fresh database of `backend`.
    pub async fn spawn(backend: Backend) -> TestApp {
        let test_db = TestDb::start(backend).await;
        let settings = test_db.settings();
        Self::spawn_on(test_db, settings).await
    }

    /// SSP on an existing test database, with the given settings.
    pub async fn spawn_on(test_db: Arc<TestDb>, settings: Settings) -> TestApp {
        let app = Application::build(settings)
            .await
            .unwrap_or_else(|e| panic!("SSP failed to start: {e}"));
        Self::run(test_db, app).await
    }

    /// Runs an already built [`Application`] and waits until it is ready
    /// (its bootstrap has finished).
    pub async fn run(test_db: Arc<TestDb>, app: Application) -> TestApp {
        let mut readiness = app.readiness();
        let mut rebuilding = app.rebuilding();
        let mut test_app = Self::run_unready(test_db, app);
        let task = test_app.task.as_mut().expect("running");
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::select! {
                ready = readiness.wait() => ready,
                // A bootstrap that fails stops the server: say why.
                result = task => panic!("SSP stopped while starting: {result:?}"),
            }
        })
        .await
        .expect("SSP becomes ready within 60s");
        assert!(ready, "SSP stopped before it became ready");
        // And a rebuild from the database, which goes on after: the tests
        // that restart SSP check the views it brings back.
        tokio::time::timeout(Duration::from_secs(60), rebuilding.wait_for(|r| !*r))
            .await
            .expect("the rebuild ends within 60s")
            .expect("SSP is running");
        test_app
    }

    /// Runs an already built [`Application`] without waiting for its
    /// bootstrap: for tests of what SSP answers while starting.
    pub fn run_unready(test_db: Arc<TestDb>, app: Application) -> TestApp {
        let app = app.handle_signals(false);
        let addr = app.local_addr();
        let db = app.db();
        let shutdown = app.shutdown_handle();
        let task = tokio::spawn(app.run_until_stopped());
        TestApp {
            addr,
            base: format!("http://{addr}"),
            db,
            test_db,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            shutdown,
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with the right bearer token.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(SECRET)
    }

    /// GET with the right bearer token, the body as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    /// POST with the right bearer token.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(SECRET)
    }

    /// Stops the server gracefully and waits for it (shutdown hooks included).
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(40), task)
                .await
                .expect("SSP stops within the grace period")
                .expect("server task");
            result.expect("server ran without error");
        }
    }
}
