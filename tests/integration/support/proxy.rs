//! A TCP proxy in front of the test SurrealDB server, to simulate outages
//! without losing the datastore:
//! - [`Proxy::cut`] drops every live connection (a network blip, a server
//!   restart as the client sees it);
//! - [`Proxy::stop`] also stops listening: new connections are refused (the
//!   database is down);
//! - [`Proxy::start`] listens again on the same port;
//! - [`Proxy::stall`] stops forwarding what clients send (the server's
//!   answers and notifications still flow): a database that takes no writes
//!   while the connection stays up; [`Proxy::resume`] forwards it again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    acceptor: Option<AbortHandle>,
    connections: Vec<AbortHandle>,
}

/// The proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    accepted: Arc<AtomicU64>,
    stalled: watch::Sender<bool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.halt(true);
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Rebinding the same port right after stop() must not trip over
    // connections still in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

impl Proxy {
    /// A proxy on 127.0.0.1:0 forwarding to `upstream`, already listening.
    pub async fn start_to(upstream: SocketAddr) -> Self {
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let proxy = Proxy {
            addr,
            upstream,
            state: Arc::default(),
            accepted: Arc::default(),
            stalled: watch::Sender::new(false),
        };
        proxy.spawn_acceptor(listener);
        proxy
    }

    /// `ws://127.0.0.1:PORT` through the proxy.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far (a reconnect shows up here).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Live connections being forwarded right now.
    pub fn live_connections(&self) -> usize {
        let mut state = self.state.lock().expect("proxy state");
        state.connections.retain(|c| !c.is_finished());
        state.connections.len()
    }

    /// Stops forwarding client-to-server bytes on every connection, current
    /// and new (they wait, unread); server-to-client bytes still flow.
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Forwards client-to-server bytes again after [`Proxy::stall`].
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }

    /// Drops every live connection; keeps accepting new ones.
    pub fn cut(&self) {
        self.halt(false);
    }

    /// Drops every live connection and refuses new ones.
    pub fn stop(&self) {
        self.halt(true);
    }

    /// Listens again on the same port after [`Proxy::stop`].
    pub async fn start(&self) {
        if self.state.lock().expect("proxy state").acceptor.is_some() {
            return;
        }
        // The old listener is dropped asynchronously by the aborted task;
        // retry briefly until the port is free again.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let listener = loop {
            match bind(self.addr) {
                Ok(listener) => break listener,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(error) => panic!("cannot rebind proxy on {}: {error}", self.addr),
            }
        };
        self.spawn_acceptor(listener);
    }

    fn halt(&self, stop_accepting: bool) {
        let mut state = self.state.lock().expect("proxy state");
        if stop_accepting && let Some(acceptor) = state.acceptor.take() {
            acceptor.abort();
        }
        for connection in state.connections.drain(..) {
            connection.abort();
        }
    }

    fn spawn_acceptor(&self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream;
        let state = Arc::clone(&self.state);
        let accepted = Arc::clone(&self.accepted);
        let stalled = self.stalled.subscribe();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let pump = tokio::spawn(pump(client, upstream, stalled.clone()));
                let mut state = state.lock().expect("proxy state");
                state.connections.retain(|c| !c.is_finished());
                state.connections.push(pump.abort_handle());
            }
        });
        self.state.lock().expect("proxy state").acceptor = Some(task.abort_handle());
    }
}

/// Copies bytes both ways until either side closes (or the task is aborted,
/// which drops both sockets). Client-to-server bytes wait while `stalled`.
async fn pump(client: TcpStream, upstream: SocketAddr, mut stalled: watch::Receiver<bool>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if stalled.wait_for(|s| !*s).await.is_err() {
                return;
            }
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    // Bytes read just before a stall wait for its end too.
                    if stalled.wait_for(|s| !*s).await.is_err()
                        || server_write.write_all(&buf[..n]).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    let downstream = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
