//! The state file format and its atomic write.
//!
//! A save writes a temp file in the same folder, fsyncs it, renames it over
//! the state file and fsyncs the folder: at every instant the path holds
//! either the old file or the new one, whole, whatever kills the process.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::EngineState;

/// Bumped whenever the layout changes incompatibly; a file this SSP cannot
/// read is moved aside and the state is rebuilt from the database.
///
/// 2: records' content is flat, so that any depth loads
/// ([`crate::engine::flat`]); record ids may have uuid, array and object
/// keys. Format 1 files are still read: they differ only in the content's
/// form, which the reader tells apart.
pub const FORMAT_VERSION: u32 = 2;

/// The formats this SSP reads.
const READS: [u32; 2] = [1, FORMAT_VERSION];

#[derive(Serialize, Deserialize, Default)]
pub struct StateFile {
    pub format: u32,
    pub saved_at: Option<DateTime<Utc>>,
    /// New with every full snapshot: the change log's lines that follow
    /// this snapshot carry it (see `change_log`). 0 in older files.
    #[serde(default)]
    pub generation: u64,
    /// Change-feed cursors: table -> last applied versionstamp.
    #[serde(default)]
    pub cursors: BTreeMap<String, u64>,
    /// When each cursor was last confirmed (older than the change-feed
    /// retention means the table must be resynced).
    #[serde(default)]
    pub cursor_times: BTreeMap<String, DateTime<Utc>>,
    pub engine: EngineState,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read state file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("state file {path} is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("state file {path} has format {found}, this SSP reads formats 1 to {FORMAT_VERSION}")]
    Incompatible { path: PathBuf, found: u32 },
}

impl StateFile {
    /// Reads the state file and applies the lines of its change log
    /// (`change_log`); `Ok(None)` when there is no state file.
    pub fn load_with_log(path: &Path) -> Result<Option<StateFile>, LoadError> {
        let Some(mut state) = Self::load(path)? else {
            return Ok(None);
        };
        let log = super::change_log::log_path(path);
        let applied = super::change_log::replay(&log, &mut state)?;
        if applied > 0 {
            tracing::info!(
                saves = applied,
                "applied the state log's saves to the snapshot"
            );
        }
        Ok(Some(state))
    }

    /// Reads the state file alone; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<StateFile>, LoadError> {
        let Some(bytes) = read_file(path)? else {
            return Ok(None);
        };
        // One parse when the file is good (a header read first scans all of
        // it too); the header only tells a file of another format from a
        // corrupt one.
        let full: Result<StateFile, _> = serde_json::from_slice(&bytes);
        #[derive(Deserialize)]
        struct Header {
            format: u32,
        }
        let format = match &full {
            Ok(file) => file.format,
            Err(_) => match serde_json::from_slice::<Header>(&bytes) {
                Ok(h) => h.format,
                Err(e) => return Err(corrupt(path, e)),
            },
        };
        if !READS.contains(&format) {
            return Err(LoadError::Incompatible {
                path: path.to_owned(),
                found: format,
            });
        }
        full.map(Some).map_err(|e| corrupt(path, e))
    }

    /// Writes the file atomically (see the module docs).
    pub fn save(&self, path: &Path) -> io::Result<u64> {
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        write_atomic(path, &bytes)?;
        Ok(bytes.len() as u64)
    }
}

/// The state file as a restart reads it: the records left as their JSON
/// text, to be parsed while they are stored (see [`restore`]).
#[derive(Deserialize)]
struct RawStateFile<'a> {
    format: u32,
    saved_at: Option<DateTime<Utc>>,
    #[serde(default)]
    generation: u64,
    #[serde(default)]
    cursors: BTreeMap<String, u64>,
    #[serde(default)]
    cursor_times: BTreeMap<String, DateTime<Utc>>,
    #[serde(borrow)]
    engine: RawEngineState<'a>,
}

/// [`EngineState`], but for its records (see [`RawStateFile`]).
#[derive(Deserialize)]
struct RawEngineState<'a> {
    views: Vec<crate::engine::ViewMeta>,
    #[serde(borrow)]
    records: Vec<&'a serde_json::value::RawValue>,
    #[serde(default)]
    requery: Vec<crate::engine::RequeryState>,
    #[serde(default)]
    table_floors: BTreeMap<String, u64>,
    #[serde(default)]
    loaded: Vec<String>,
    #[serde(default)]
    indexes: Vec<(String, Vec<crate::engine::value::PathPart>)>,
    #[serde(default)]
    relation_tables: Vec<String>,
    #[serde(default)]
    functions: crate::engine::parser::Definitions,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

/// A restart: the state file and its log into an engine; `Ok(None)` when
/// there is no state file. The result is what [`StateFile::load_with_log`]
/// and `Engine::from_state` give (the returned file's records are in the
/// engine, not in it), faster: one thread parses the records while the
/// other stores them, instead of all being parsed and then all stored
/// (each ~1.5-2 s at a million records).
pub fn restore(path: &Path) -> Result<Option<(StateFile, crate::engine::Engine)>, RestoreError> {
    use crate::engine::{Engine, EngineState, StoredRecord};
    let Some(bytes) = read_file(path)? else {
        return Ok(None);
    };
    let raw: RawStateFile = match serde_json::from_slice(&bytes) {
        Ok(raw) => raw,
        // The full reader says which: another format, or corrupt.
        Err(_) => {
            drop(bytes);
            return match StateFile::load(path)? {
                Some(_) => Err(LoadError::Corrupt {
                    path: path.to_owned(),
                    message: "the records do not read".into(),
                }
                .into()),
                None => Ok(None),
            };
        }
    };
    if !READS.contains(&raw.format) {
        return Err(LoadError::Incompatible {
            path: path.to_owned(),
            found: raw.format,
        }
        .into());
    }
    let mut file = StateFile {
        format: raw.format,
        saved_at: raw.saved_at,
        generation: raw.generation,
        cursors: raw.cursors,
        cursor_times: raw.cursor_times,
        engine: EngineState {
            views: raw.engine.views,
            records: Vec::new(),
            requery: raw.engine.requery,
            table_floors: raw.engine.table_floors,
            loaded: raw.engine.loaded,
            indexes: raw.engine.indexes,
            relation_tables: raw.engine.relation_tables,
            functions: raw.engine.functions,
        },
    };
    // The log: its records' last word overrides the snapshot's; the rest
    // applies to the state as `load_with_log` applies it.
    let entries = super::change_log::read(&super::change_log::log_path(path), file.generation)?;
    if !entries.is_empty() {
        tracing::info!(
            saves = entries.len(),
            "applying the state log's saves to the snapshot"
        );
    }
    let mut overrides = ahash::AHashMap::new();
    let mut deltas = Vec::with_capacity(entries.len());
    for mut entry in entries {
        file.saved_at = Some(entry.saved_at);
        file.cursors = entry.cursors;
        file.cursor_times = entry.cursor_times;
        for id in std::mem::take(&mut entry.engine.deleted) {
            overrides.insert(id, None);
        }
        for r in std::mem::take(&mut entry.engine.records) {
            overrides.insert(r.id.clone(), Some(r));
        }
        deltas.push(entry.engine);
    }
    file.engine.apply(deltas);
    let state = std::mem::take(&mut file.engine);
    const PART: usize = 8_192;
    let records = raw.engine.records;
    // Each table's map is sized once (grown from empty, a million records
    // were rehashed ~20 times over): the table is the first thing a record's
    // text says. A text that does not start so is just not counted.
    let mut sizes: ahash::AHashMap<&str, usize> = ahash::AHashMap::new();
    for r in &records {
        if let Some(table) = r
            .get()
            .strip_prefix("{\"id\":{\"table\":\"")
            .and_then(|rest| rest.split_once('"'))
            .map(|(t, _)| t)
            .filter(|t| !t.contains('\\'))
        {
            *sizes.entry(table).or_default() += 1;
        }
    }
    let sizes = sizes
        .into_iter()
        .map(|(t, n)| (crate::engine::value::TableName::from(t), n))
        .collect();
    let failed: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let engine = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<StoredRecord>>(4);
        let failed = &failed;
        let records = &records;
        s.spawn(move || {
            for part in records.chunks(PART) {
                let parsed: Result<Vec<StoredRecord>, _> =
                    part.iter().map(|r| serde_json::from_str(r.get())).collect();
                match parsed {
                    Ok(p) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        if let Ok(mut f) = failed.lock() {
                            *f = Some(e.to_string());
                        }
                        return;
                    }
                }
            }
        });
        Engine::from_state_streamed(state, sizes, rx, overrides)
    });
    if let Some(message) = failed.into_inner().ok().flatten() {
        return Err(LoadError::Corrupt {
            path: path.to_owned(),
            message,
        }
        .into());
    }
    Ok(Some((file, engine?)))
}

/// The bytes of `path`; `Ok(None)` when there is no such file.
pub(super) fn read_file(path: &Path) -> Result<Option<Vec<u8>>, LoadError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LoadError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn corrupt(path: &Path, e: serde_json::Error) -> LoadError {
    LoadError::Corrupt {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    // The rename itself is durable only once the folder is synced.
    File::open(&dir)?.sync_all()?;
    Ok(())
}

/// Moves an unreadable state file out of the way, keeping it for inspection.
pub fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S");
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".bad-{stamp}"));
    let aside = PathBuf::from(aside);
    fs::rename(path, &aside)?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StoredRecord;
    use crate::engine::value::{Number, Object, RecordId, Value};

    /// A value `depth` levels deep, objects and arrays in turn.
    fn deep(depth: usize) -> Value {
        let mut v = Value::Number(Number::Float(f64::NAN));
        for i in 0..depth {
            v = if i % 2 == 0 {
                Value::Object(Object::from_pairs(vec![("a".into(), v)]))
            } else {
                Value::Array(thin_vec::thin_vec![
                    v,
                    Value::Number(Number::Float(f64::INFINITY))
                ])
            };
        }
        v
    }

    #[test]
    fn records_as_deep_as_surrealdb_allows_round_trip_on_a_small_stack() {
        // 3.3.5 stores a record nested at most 255 levels; more, to be safe.
        let ids = [
            "item:1",
            "item:`a b`",
            "item:u'0190e2a4-0000-7000-8000-000000000000'",
            "item:[1, 'a', 1f]",
            "item:{ a: [u'00000000-0000-4000-8000-000000000001'] }",
        ];
        let mut s = StateFile {
            format: FORMAT_VERSION,
            ..Default::default()
        };
        for (i, id) in ids.iter().enumerate() {
            s.engine.records.push(StoredRecord {
                id: RecordId::parse(id).unwrap(),
                version: i as u64 + 7,
                content: Value::Object(Object::from_pairs(vec![("x".into(), deep(300))])),
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        // A thread's stack as small as a tokio worker's is plenty.
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                s.save(&path).unwrap();
                let back = StateFile::load(&path).unwrap().unwrap();
                assert_eq!(back.engine.records.len(), ids.len());
                for (i, (a, b)) in back
                    .engine
                    .records
                    .iter()
                    .zip(&s.engine.records)
                    .enumerate()
                {
                    assert_eq!(a.id, b.id);
                    assert_eq!(a.id.to_string(), ids[i]);
                    assert_eq!(a.version, b.version);
                    // Structural equality: NaN is NaN here, bit for bit.
                    assert_eq!(a.content, b.content, "{}", ids[i]);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn a_format_1_file_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let v1 = r#"{"format":1,"saved_at":null,"engine":{"views":[],"records":[
            {"id":{"table":"item","key":{"Int":1}},"version":3,
             "content":{"Object":[["a",{"Number":{"Float":"NaN"}}],["b",{"Array":["None","Null"]}]]}},
            {"id":{"table":"item","key":{"String":"x"}},"version":4,"content":"Null"}]}}"#;
        fs::write(&path, v1).unwrap();
        let back = StateFile::load(&path).unwrap().unwrap();
        let r = &back.engine.records;
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].version, 3);
        assert_eq!(r[0].id.to_string(), "item:1");
        let Value::Object(o) = &r[0].content else {
            panic!("{:?}", r[0].content)
        };
        assert!(matches!(o.get("a"), Some(Value::Number(Number::Float(f))) if f.is_nan()));
        assert_eq!(
            o.get("b"),
            Some(&Value::Array(thin_vec::thin_vec![Value::None, Value::Null]))
        );
        assert_eq!(r[1].content, Value::Null);
    }

    #[test]
    fn round_trip_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        assert!(StateFile::load(&path).unwrap().is_none());
        let mut s = StateFile {
            format: FORMAT_VERSION,
            ..Default::default()
        };
        s.cursors.insert("thread".into(), 42);
        s.save(&path).unwrap();
        let back = StateFile::load(&path).unwrap().unwrap();
        assert_eq!(back.cursors.get("thread"), Some(&42));

        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            StateFile::load(&path),
            Err(LoadError::Corrupt { .. })
        ));
        fs::write(&path, br#"{"format": 999}"#).unwrap();
        assert!(matches!(
            StateFile::load(&path),
            Err(LoadError::Incompatible { .. })
        ));
        let aside = move_aside(&path).unwrap();
        assert!(aside.exists() && !path.exists());
    }
}
