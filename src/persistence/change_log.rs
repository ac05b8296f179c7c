//! The change log beside the state file: what changed, one line per save.
//!
//! Rewriting the whole state on every save costs what SSP holds (~200 MB of
//! JSON at a million records), however small the change. So a save appends
//! only the records and views that changed since the save before it (an
//! [`EngineDelta`], with the cursors) to `<state file>.log`, one JSON line,
//! fsynced; now and then the saver writes a full snapshot instead and
//! empties the log (see `saver`). Loading reads the snapshot and applies
//! the log's lines in order.
//!
//! Crash safety, as for the snapshot alone:
//! * a line is appended and fsynced before the save counts as done; a crash
//!   in the middle of one leaves a torn last line, which loading ignores
//!   (that save never finished, and the change feed replays it);
//! * every snapshot has a new `generation`, and a line belongs to the
//!   generation it was appended after. A crash between a snapshot's rename
//!   and the log's truncation leaves lines of the old generation behind:
//!   loading skips them, they are older than the snapshot.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::state_file::{LoadError, StateFile};
use crate::engine::EngineDelta;

/// One save's line in the log.
#[derive(Serialize, Deserialize)]
pub struct LogEntry {
    /// The snapshot this line follows (see [`StateFile::generation`]).
    pub generation: u64,
    pub saved_at: DateTime<Utc>,
    /// The change-feed cursors at this save, whole (they are few).
    pub cursors: BTreeMap<String, u64>,
    pub cursor_times: BTreeMap<String, DateTime<Utc>>,
    pub engine: EngineDelta,
}

/// Where the log of state file `state` lives.
pub fn log_path(state: &Path) -> PathBuf {
    let mut path = state.as_os_str().to_owned();
    path.push(".log");
    PathBuf::from(path)
}

/// Appends `entry` as one line and fsyncs it; returns the bytes written.
pub fn append(path: &Path, entry: &LogEntry) -> io::Result<u64> {
    let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(&line)?;
    file.sync_data()?;
    Ok(line.len() as u64)
}

/// Empties the log (after a full snapshot made its lines redundant).
pub fn truncate(path: &Path) -> io::Result<()> {
    match File::options().write(true).truncate(true).open(path) {
        Ok(file) => file.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Applies the log's lines of `state`'s generation to `state`, in order;
/// returns how many it applied. A torn last line is ignored; any other
/// unreadable line makes the state unreadable (it is rebuilt from the
/// database).
pub fn replay(path: &Path, state: &mut StateFile) -> Result<usize, LoadError> {
    let entries = read(path, state.generation)?;
    let applied = entries.len();
    let mut deltas = Vec::with_capacity(applied);
    for entry in entries {
        state.saved_at = Some(entry.saved_at);
        state.cursors = entry.cursors;
        state.cursor_times = entry.cursor_times;
        deltas.push(entry.engine);
    }
    state.engine.apply(deltas);
    Ok(applied)
}

/// The log's lines of snapshot `generation`, in order. A torn last line is
/// ignored; any other unreadable line makes the state unreadable.
pub fn read(path: &Path, generation: u64) -> Result<Vec<LogEntry>, LoadError> {
    let Some(bytes) = super::state_file::read_file(path)? else {
        return Ok(Vec::new());
    };
    let complete = bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut entries = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let entry: LogEntry = match serde_json::from_slice(line) {
            Ok(entry) => entry,
            Err(_) if i + 1 == lines.len() && !complete => {
                tracing::warn!(path = %path.display(), "the state log's last line is torn (a save was cut short); it is ignored");
                break;
            }
            Err(e) => {
                return Err(LoadError::Corrupt {
                    path: path.to_owned(),
                    message: format!("line {}: {e}", i + 1),
                });
            }
        };
        if entry.generation == generation {
            entries.push(entry);
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StoredRecord;
    use crate::engine::value::{Object, RecordId, Value};
    use std::fs;

    fn record(id: &str, version: u64) -> StoredRecord {
        StoredRecord {
            id: RecordId::parse(id).unwrap(),
            version,
            content: Value::Object(Object::default()),
        }
    }

    fn entry(generation: u64, records: Vec<StoredRecord>) -> LogEntry {
        LogEntry {
            generation,
            saved_at: Utc::now(),
            cursors: BTreeMap::new(),
            cursor_times: BTreeMap::new(),
            engine: EngineDelta {
                records,
                ..EngineDelta::default()
            },
        }
    }

    fn versions(s: &StateFile) -> Vec<(String, u64)> {
        s.engine
            .records
            .iter()
            .map(|r| (r.id.to_string(), r.version))
            .collect()
    }

    #[test]
    fn lines_of_the_snapshots_generation_apply_in_order_and_a_torn_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.log");
        // A line of an older snapshot, left by a crash before truncation.
        append(&path, &entry(6, vec![record("t:1", 99)])).unwrap();
        append(&path, &entry(7, vec![record("t:1", 2)])).unwrap();
        append(&path, &entry(7, vec![record("t:1", 3), record("t:2", 1)])).unwrap();
        let mut state = StateFile {
            generation: 7,
            ..StateFile::default()
        };
        state.engine.records.push(record("t:1", 1));
        let mut torn = fs::read(&path).unwrap();
        torn.extend_from_slice(br#"{"generation":7,"saved_at":"#);
        fs::write(&path, &torn).unwrap();

        assert_eq!(replay(&path, &mut state).unwrap(), 2);
        assert_eq!(
            versions(&state),
            vec![("t:1".to_owned(), 3), ("t:2".to_owned(), 1)]
        );

        // A bad line that is not the last one is corruption, not a tear.
        let mut bad = b"not json\n".to_vec();
        bad.extend_from_slice(&fs::read(&path).unwrap());
        fs::write(&path, &bad).unwrap();
        assert!(matches!(
            replay(&path, &mut StateFile::default()),
            Err(LoadError::Corrupt { .. })
        ));

        truncate(&path).unwrap();
        assert_eq!(replay(&path, &mut StateFile::default()).unwrap(), 0);
    }
}
