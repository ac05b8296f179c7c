//! The debounced background saver.
//!
//! Every state change notifies it. It saves once activity has stopped for
//! the debounce delay, and at the latest `max_delay` after the first unsaved
//! change, so that a continuous load cannot starve it. The snapshot is taken
//! under the engine's lock (a copy), then serialized and written without it,
//! so the ingest path never waits on the disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::state_file::StateFile;

/// Produces a consistent snapshot of everything to save.
pub type Snapshot = Arc<dyn Fn() -> StateFile + Send + Sync>;

pub struct Saver {
    path: PathBuf,
    debounce: Duration,
    max_delay: Duration,
    dirty: Arc<Notify>,
    snapshot: Snapshot,
    stats: Arc<SaveStats>,
    save_lock: Arc<tokio::sync::Mutex<()>>,
}

/// What the saver has done, for `/metrics` and tests.
#[derive(Default)]
pub struct SaveStats {
    pub saves: AtomicU64,
    pub failures: AtomicU64,
    pub last_save_unix_ms: AtomicU64,
    pub last_duration_us: AtomicU64,
    pub last_bytes: AtomicU64,
}

/// Saves on demand (shutdown) and reports stats. Cheap to clone.
#[derive(Clone)]
pub struct SaverHandle {
    path: PathBuf,
    snapshot: Snapshot,
    stats: Arc<SaveStats>,
    save_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Saver {
    pub fn new(
        path: PathBuf,
        debounce: Duration,
        dirty: Arc<Notify>,
        snapshot: Snapshot,
    ) -> (Saver, SaverHandle) {
        let stats = Arc::new(SaveStats::default());
        let save_lock = Arc::new(tokio::sync::Mutex::new(()));
        let handle = SaverHandle {
            path: path.clone(),
            snapshot: snapshot.clone(),
            stats: stats.clone(),
            save_lock: save_lock.clone(),
        };
        let saver = Saver {
            path,
            debounce,
            // Under continuous load, save at least this often.
            max_delay: (debounce * 5).max(Duration::from_millis(100)),
            dirty,
            snapshot,
            stats,
            save_lock,
        };
        (saver, handle)
    }

    pub async fn run(self) {
        let handle = SaverHandle {
            path: self.path.clone(),
            snapshot: self.snapshot.clone(),
            stats: self.stats.clone(),
            save_lock: self.save_lock.clone(),
        };
        loop {
            self.dirty.notified().await;
            let first = Instant::now();
            // Debounce: wait until quiet for `debounce`, or `max_delay` in all.
            loop {
                let quiet = tokio::time::sleep(self.debounce);
                let cap = tokio::time::sleep_until((first + self.max_delay).into());
                tokio::select! {
                    _ = self.dirty.notified() => continue,
                    _ = quiet => break,
                    _ = cap => break,
                }
            }
            if let Err(e) = handle.save_now().await {
                tracing::error!(error = %e, path = %self.path.display(), "saving the state file failed");
            }
        }
    }
}

impl SaverHandle {
    pub fn stats(&self) -> &SaveStats {
        &self.stats
    }

    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// Saves right now (also used on shutdown).
    pub async fn save_now(&self) -> std::io::Result<()> {
        let _one_at_a_time = self.save_lock.lock().await;
        let started = Instant::now();
        let state = (self.snapshot)();
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || state.save(&path))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        match result {
            Ok(bytes) => {
                let took = started.elapsed();
                self.stats.saves.fetch_add(1, Ordering::Relaxed);
                self.stats.last_bytes.store(bytes, Ordering::Relaxed);
                self.stats
                    .last_duration_us
                    .store(took.as_micros() as u64, Ordering::Relaxed);
                self.stats.last_save_unix_ms.store(
                    chrono::Utc::now().timestamp_millis().max(0) as u64,
                    Ordering::Relaxed,
                );
                metrics::counter!("ssp_state_saves_total").increment(1);
                metrics::histogram!("ssp_state_save_seconds").record(took.as_secs_f64());
                metrics::gauge!("ssp_state_last_save_timestamp_seconds")
                    .set(chrono::Utc::now().timestamp() as f64);
                tracing::debug!(bytes, took_ms = took.as_millis() as u64, "state saved");
                Ok(())
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}
