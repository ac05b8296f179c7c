//! The debounced background saver.
//!
//! Every state change notifies it. It saves once activity has stopped for
//! the debounce delay, and at the latest `max_delay` after the first unsaved
//! change, so that a continuous load cannot starve it. What it saves is
//! taken under the engine's lock (a copy), then serialized and written
//! without it, so the ingest path never waits on the disk.
//!
//! A save costs what changed: it appends the changes since the save before
//! to the change log (`change_log`). A full snapshot is written instead
//! when there is none yet in this process (the first save after a start),
//! after a failed save, after a reset, and when the log has grown past half
//! the snapshot's size (so that loading replays at most that much).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::change_log::{self, LogEntry};
use super::state_file::StateFile;

/// What a save writes: a full snapshot, or the changes since the last save.
pub enum Taken {
    Full(StateFile),
    Delta(LogEntry),
}

/// Takes what to save, consistently: everything when its argument is true,
/// else the changes since the last call (or everything when the engine
/// cannot tell them apart). Either way the engine's journal restarts.
pub type Snapshot = Arc<dyn Fn(bool) -> Taken + Send + Sync>;

/// Where the log stands against its snapshot. `generation` is `None` until
/// this process wrote a snapshot, and again after a failed save: the next
/// save is then a full one.
#[derive(Default)]
struct LogState {
    generation: Option<u64>,
    snapshot_bytes: u64,
    log_bytes: u64,
}

impl LogState {
    fn wants_full(&self) -> bool {
        self.generation.is_none() || self.log_bytes.saturating_mul(2) > self.snapshot_bytes
    }
}

pub struct Saver {
    path: PathBuf,
    debounce: Duration,
    max_delay: Duration,
    dirty: Arc<Notify>,
    snapshot: Snapshot,
    stats: Arc<SaveStats>,
    save_lock: Arc<tokio::sync::Mutex<LogState>>,
}

/// What the saver has done, for `/metrics` and tests.
#[derive(Default)]
pub struct SaveStats {
    pub saves: AtomicU64,
    /// Of `saves`, those that wrote a full snapshot (the others appended
    /// to the change log).
    pub full_saves: AtomicU64,
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
    save_lock: Arc<tokio::sync::Mutex<LogState>>,
}

impl Saver {
    pub fn new(
        path: PathBuf,
        debounce: Duration,
        dirty: Arc<Notify>,
        snapshot: Snapshot,
    ) -> (Saver, SaverHandle) {
        let stats = Arc::new(SaveStats::default());
        let save_lock = Arc::new(tokio::sync::Mutex::new(LogState::default()));
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
        // One at a time: the log's lines must follow their snapshot.
        let mut log = self.save_lock.lock().await;
        let started = Instant::now();
        let full = log.wants_full();
        let generation = log.generation;
        let snapshot = self.snapshot.clone();
        let path = self.path.clone();
        // Taking the state waits for the engine's lock: not on a runtime
        // thread.
        let result = tokio::task::spawn_blocking(move || write(&path, snapshot(full), generation))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        match result {
            Ok(written) => {
                let kind = match written {
                    Written::Snapshot { .. } => "full",
                    Written::Log { .. } => "log",
                };
                let bytes = match written {
                    Written::Snapshot { generation, bytes } => {
                        *log = LogState {
                            generation: Some(generation),
                            snapshot_bytes: bytes,
                            log_bytes: 0,
                        };
                        self.stats.full_saves.fetch_add(1, Ordering::Relaxed);
                        bytes
                    }
                    Written::Log { bytes } => {
                        log.log_bytes += bytes;
                        bytes
                    }
                };
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
                if matches!(kind, "full") {
                    metrics::counter!("ssp_state_full_saves_total").increment(1);
                }
                metrics::histogram!("ssp_state_save_seconds").record(took.as_secs_f64());
                metrics::gauge!("ssp_state_last_save_timestamp_seconds")
                    .set(chrono::Utc::now().timestamp() as f64);
                tracing::debug!(
                    bytes,
                    kind,
                    took_ms = took.as_millis() as u64,
                    "state saved"
                );
                Ok(())
            }
            Err(e) => {
                // What was taken is no longer in the engine's journal: only
                // a full snapshot saves it now.
                log.generation = None;
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

enum Written {
    Snapshot { generation: u64, bytes: u64 },
    Log { bytes: u64 },
}

/// Writes what was taken: a snapshot (then empties the log), or one line of
/// the log after the snapshot of `generation`.
fn write(
    path: &std::path::Path,
    taken: Taken,
    generation: Option<u64>,
) -> std::io::Result<Written> {
    let log = change_log::log_path(path);
    match (taken, generation) {
        (Taken::Delta(mut entry), Some(generation)) => {
            entry.generation = generation;
            let bytes = change_log::append(&log, &entry)?;
            Ok(Written::Log { bytes })
        }
        (Taken::Full(mut state), previous) => {
            // New, so that lines of the log before this snapshot (left by a
            // crash before the truncation below) are never replayed on it.
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0).max(0) as u64;
            state.generation = match previous {
                Some(p) if p >= now => p + 1,
                _ => now,
            };
            let bytes = state.save(path)?;
            change_log::truncate(&log)?;
            Ok(Written::Snapshot {
                generation: state.generation,
                bytes,
            })
        }
        (Taken::Delta(_), None) => Err(std::io::Error::other(
            "a delta was taken with no snapshot to follow (a bug): the next save is a full one",
        )),
    }
}
