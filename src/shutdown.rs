//! The switch that starts a graceful shutdown, shared by the server, the
//! bootstrap and the background tasks (its own module so that none of them
//! imports another for it).

use std::sync::Arc;

use tokio::sync::watch;

/// A cloneable switch that starts a graceful shutdown.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    /// Starts the shutdown (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// True once [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the shutdown has started.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // Err means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|triggered| *triggered).await;
    }
}
