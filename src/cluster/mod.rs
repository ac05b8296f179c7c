//! Several SSP instances against one SurrealDB, sharing the views, with no
//! coordination service of their own: SurrealDB transactions are the
//! coordination. Off unless `[cluster] enabled`.
//!
//! - **Membership** (`membership`): each instance keeps a `_spooky_node`
//!   row whose lease it renews every third of `lease`. A row whose lease
//!   has passed is an instance that is gone.
//! - **Holds** (`holds`, `ownership`): every view is held by one instance,
//!   named on its `_spooky_query` row with an epoch. A hold is taken by a
//!   transaction that sees the row free (no holder, or a holder whose lease
//!   passed, or released) and raises the epoch. Which live instance should
//!   hold a view is decided by rendezvous hashing of the view id, so that
//!   all instances agree without talking, and a joining or leaving one
//!   moves only its share.
//! - **Fencing**: every edge transaction checks, inside itself, that its
//!   writer still holds each view it writes at the epoch it took; a paused
//!   or cut-off former holder's writes fail whole ([`FENCED`]).
//! - **Routing** (`forward`): any instance answers any request. View
//!   requests go to the holder (or, for a new view, to the instance the hash
//!   picks); `/ingest` and `/reset` go to every live instance, and answer
//!   once all did.
//! - **Failover and balance** (`coordinator`): on each renewal an instance
//!   takes the views the hash gives it whose holder is gone or released
//!   them (each rebuilt from its row, its records and its edges), hands
//!   over a few views the hash now gives a live other one, and lets go of
//!   views another instance took. SIGTERM releases every hold first.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::ClusterSettings;

pub mod coordinator;
pub mod forward;
pub mod holds;
pub mod membership;
pub mod ownership;

use holds::Holds;

/// What the fence's THROW says; [`crate::db::DbError::is_fenced`] looks for it.
pub const FENCED: &str = "spooky_fenced";

/// A live instance, as its `_spooky_node` row says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Peer {
    pub id: String,
    /// Its HTTP API, as it advertises it.
    pub address: String,
}

/// A clustered instance's shared side: who it is, what it holds, who else
/// is alive. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Cluster {
    pub settings: ClusterSettings,
    pub holds: Arc<Holds>,
    pub started: DateTime<Utc>,
    /// The live instances (this one included) at the last renewal.
    peers: RwLock<Arc<Vec<Peer>>>,
    http: reqwest::Client,
    /// Held by a coordinator round, and by leaving: the leave waits for a
    /// round under way instead of cutting it off mid-call.
    pub(crate) round: tokio::sync::Mutex<()>,
    /// Set once this instance left: no round runs after it.
    pub(crate) left: std::sync::atomic::AtomicBool,
}

impl Cluster {
    pub fn new(settings: ClusterSettings) -> Arc<Cluster> {
        let node: Arc<str> = settings.node_id.as_str().into();
        let me = Peer {
            id: settings.node_id.clone(),
            address: settings.advertise_url.clone(),
        };
        Arc::new(Cluster {
            holds: Arc::new(Holds::new(node)),
            started: Utc::now(),
            peers: RwLock::new(Arc::new(vec![me])),
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default(),
            round: tokio::sync::Mutex::new(()),
            left: std::sync::atomic::AtomicBool::new(false),
            settings,
        })
    }

    /// This instance's id.
    pub fn node(&self) -> &str {
        &self.settings.node_id
    }

    /// The live instances at the last renewal, this one included.
    pub fn peers(&self) -> Arc<Vec<Peer>> {
        self.peers.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_peers(&self, mut peers: Vec<Peer>) {
        if !peers.iter().any(|p| p.id == self.node()) {
            peers.push(Peer {
                id: self.settings.node_id.clone(),
                address: self.settings.advertise_url.clone(),
            });
        }
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        metrics::gauge!("ssp_cluster_peers").set(peers.len() as f64);
        *self.peers.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(peers);
    }

    /// The live instances other than this one.
    pub fn others(&self) -> Vec<Peer> {
        self.peers()
            .iter()
            .filter(|p| p.id != self.node())
            .cloned()
            .collect()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// How often the lease is renewed (and holds looked at).
    pub fn renew_every(&self) -> std::time::Duration {
        self.settings.lease / 3
    }
}

/// What `/health` says of the cluster.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClusterHealth {
    pub node: String,
    pub address: String,
    /// The live instances at the last renewal, this one included.
    pub peers: Vec<Peer>,
    /// Views this instance holds.
    pub views_held: usize,
}

impl Cluster {
    pub fn health(&self) -> ClusterHealth {
        ClusterHealth {
            node: self.settings.node_id.clone(),
            address: self.settings.advertise_url.clone(),
            peers: self.peers().to_vec(),
            views_held: self.holds.len(),
        }
    }
}
