//! The views this instance holds, each at the epoch it took it: what every
//! edge transaction's fence checks.

use std::sync::{Arc, Mutex};

use ahash::AHashMap;
use surrealdb::types as sdb;

use crate::db::schema::view_row;

/// The statement at the head of every edge transaction of a clustered
/// instance: for each view the transaction writes, the view's row must
/// still name this instance at the epoch it took. Otherwise the whole
/// transaction fails (THROW cancels it), and nothing of it is written.
/// `$f.row.node` reads the row inside the same transaction, so a hold that
/// moved a moment before is seen.
pub const FENCE_STATEMENT: &str = "FOR $fence_entry IN $fence { \
     IF $fence_entry.row.node != $fence_node OR $fence_entry.row.epoch != $fence_entry.epoch { \
     THROW 'spooky_fenced: this instance no longer holds ' + <string> $fence_entry.row; }; }";

/// This instance's holds. Cheap to share.
#[derive(Debug)]
pub struct Holds {
    node: Arc<str>,
    views: Mutex<AHashMap<Arc<str>, u64>>,
}

impl Holds {
    pub fn new(node: Arc<str>) -> Self {
        Holds {
            node,
            views: Mutex::default(),
        }
    }

    /// This instance's id.
    pub fn node(&self) -> &Arc<str> {
        &self.node
    }

    fn map(&self) -> std::sync::MutexGuard<'_, AHashMap<Arc<str>, u64>> {
        self.views.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The epoch at which this instance holds `view`.
    pub fn epoch(&self, view: &str) -> Option<u64> {
        self.map().get(view).copied()
    }

    pub fn set(&self, view: Arc<str>, epoch: u64) {
        self.map().insert(view, epoch);
    }

    pub fn remove(&self, view: &str) -> Option<u64> {
        self.map().remove(view)
    }

    pub fn clear(&self) {
        self.map().clear();
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// Every view held, with its epoch.
    pub fn all(&self) -> Vec<(Arc<str>, u64)> {
        self.map().iter().map(|(v, e)| (v.clone(), *e)).collect()
    }

    /// The `$fence` of a transaction that writes `views`: each with the
    /// epoch held, or 0 when not held (epochs start at 1, so the fence
    /// refuses it: a write for a view this instance let go must not land).
    pub fn fence<'a>(&self, views: impl IntoIterator<Item = &'a Arc<str>>) -> sdb::Value {
        let map = self.map();
        let mut seen = ahash::AHashSet::new();
        let mut out = Vec::new();
        for view in views {
            if !seen.insert(view.clone()) {
                continue;
            }
            let mut entry = sdb::Object::new();
            entry.insert("row".to_string(), sdb::Value::RecordId(view_row(view)));
            let epoch = map.get(view).copied().unwrap_or(0);
            entry.insert(
                "epoch".to_string(),
                sdb::Value::Number(sdb::Number::Int(epoch as i64)),
            );
            out.push(sdb::Value::Object(entry));
        }
        sdb::Value::Array(out.into())
    }
}
