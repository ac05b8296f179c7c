//! A real SurrealDB 3.3.5 server, served in-process on 127.0.0.1:0.
//!
//! The same router `surreal start` builds (community composer) over an
//! in-memory datastore with root credentials root/root, served by axum with
//! TCP_NODELAY: without it LIVE notifications arrive ~40ms late (Nagle plus
//! delayed ACKs on small frames).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use surrealdb_core::CommunityComposer;
use surrealdb_core::kvs::Datastore;
use surrealdb_rpc::capabilities::Capabilities;
use surrealdb_server::ntw::{RouterOptions, SurrealRouter};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ROOT_USER: &str = "root";
pub const ROOT_PASS: &str = "root";

/// A running server; stopped when dropped.
pub struct SurrealServer {
    addr: SocketAddr,
    canceller: CancellationToken,
    task: JoinHandle<()>,
    datastore: Arc<Datastore>,
}

impl Drop for SurrealServer {
    fn drop(&mut self) {
        self.canceller.cancel();
        self.task.abort();
    }
}

impl SurrealServer {
    /// Starts a fresh server with an empty in-memory datastore.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// Like [`SurrealServer::start`], listening on `addr`.
    pub async fn start_on(addr: &str) -> Self {
        let (send, recv) = surrealdb_core::channel::bounded(1024);
        let datastore = Datastore::builder()
            .with_capabilities(Capabilities::all())
            .with_notify(send)
            .with_auth(true)
            .build_with_path("memory")
            .await
            .expect("in-memory datastore");
        datastore
            .initialise_credentials(ROOT_USER, ROOT_PASS)
            .await
            .expect("root credentials");

        let canceller = CancellationToken::new();
        let router = SurrealRouter::build::<CommunityComposer>(
            RouterOptions::default(),
            Arc::clone(&datastore),
            recv,
            canceller.clone(),
            (),
        )
        .await
        .expect("SurrealDB router");
        router.spawn_notifications();
        let app = router.into_router();

        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind SurrealDB test server");
        let addr = listener.local_addr().expect("local addr");
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let shutdown = canceller.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        });
        SurrealServer {
            addr,
            canceller,
            task,
            datastore,
        }
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT`, straight to the server.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The datastore behind the server.
    pub fn datastore(&self) -> &Arc<Datastore> {
        &self.datastore
    }
}

/// A connection of its own to `test_db`'s server, signed in as root on
/// `ns`/`db`: "another process", or the app's backend. (Tests only:
/// `ssp-bench --features bench-ws` includes this file without `TestDb`.)
#[cfg(test)]
pub async fn root_connection(
    test_db: &super::TestDb,
    ns: &str,
    db: &str,
) -> surrealdb::Surreal<surrealdb::engine::any::Any> {
    let server = test_db.server.as_ref().expect("ws server");
    let conn = surrealdb::engine::any::connect(server.url())
        .await
        .expect("connect");
    conn.signin(surrealdb::opt::auth::Root {
        username: ROOT_USER.to_owned(),
        password: ROOT_PASS.to_owned(),
    })
    .await
    .expect("sign in as root");
    conn.use_ns(ns).use_db(db).await.expect("use ns/db");
    conn
}
