//! Persistence: a save costs what changed (issue 18). The engine is filled
//! with the forum mix, then saved as the saver does: a full snapshot, and
//! after 100 changes a delta appended to the change log; then loaded back
//! as a restart does (`state_file::restore`: snapshot, log, engine).

use ssp::persistence::change_log::{self, LogEntry};
use ssp::persistence::state_file::{FORMAT_VERSION, StateFile};

use super::*;

pub(crate) fn persistence(results: &mut Results, mode: Mode) {
    let records = if mode.smoke {
        2_000
    } else if mode.quick {
        100_000
    } else {
        1_000_000
    };
    let views = records / 10;
    let f = Forum::sized(records);
    let mut rng = StdRng::seed_from_u64(18);
    // What a cold rebuild does in the engine (without reading the
    // database): every record applied, every view registered.
    let cold_started = Instant::now();
    let mut engine = Engine::new();
    engine.track_changes();
    let users: Vec<Change> = (0..f.users).map(|i| f.user(i)).collect();
    engine.apply_batch(&users);
    for start in (0..f.threads).step_by(1000) {
        let chunk: Vec<Change> = (start..(start + 1000).min(f.threads))
            .map(|i| f.thread(i, &mut rng))
            .collect();
        engine.apply_batch(&chunk);
    }
    for start in (0..f.comments).step_by(1000) {
        let chunk: Vec<Change> = (start..(start + 1000).min(f.comments))
            .map(|i| f.comment(i, &mut rng, 0))
            .collect();
        engine.apply_batch(&chunk);
    }
    for v in f.views(views, &mut rng) {
        engine.register(v).expect("plan");
    }
    let cold = cold_started.elapsed();

    let dir = std::env::temp_dir().join(format!("ssp-bench-persistence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("state.json");
    let log = change_log::log_path(&path);

    // A full snapshot, as the saver writes it (taken under the lock, then
    // serialized and written with fsync and rename).
    let started = Instant::now();
    let taken = engine.take_state();
    let held = started.elapsed();
    let state = StateFile {
        format: FORMAT_VERSION,
        saved_at: Some(chrono::Utc::now()),
        generation: 1,
        engine: taken,
        ..StateFile::default()
    };
    let snapshot_bytes = state.save(&path).expect("save the snapshot");
    change_log::truncate(&log).expect("empty the log");
    let full = started.elapsed();
    drop(state);

    // Saves of 100 changed records each.
    let mut deltas = Vec::new();
    let mut delta_bytes = 0;
    for _ in 0..5 {
        let batch: Vec<Change> = (0..100)
            .map(|_| f.thread(rng.random_range(0..f.threads), &mut rng))
            .collect();
        engine.apply_batch(&batch);
        let started = Instant::now();
        let entry = LogEntry {
            generation: 1,
            saved_at: chrono::Utc::now(),
            cursors: Default::default(),
            cursor_times: Default::default(),
            engine: engine.take_delta(),
        };
        delta_bytes = change_log::append(&log, &entry).expect("append");
        deltas.push(started.elapsed());
    }
    deltas.sort();
    let delta = deltas[deltas.len() / 2];

    // A restart: the snapshot, the log, the engine rebuilt from them. Three
    // times, as this machine is noisy: the median counts, the range is shown.
    let mut runs: Vec<(Duration, Duration)> = (0..3)
        .map(|_| {
            // The way `ssp` restarts (parsing the records while storing
            // them); the file and log read alone, the old way, for the
            // part reading takes.
            let started = Instant::now();
            let loaded = StateFile::load_with_log(&path)
                .expect("load")
                .expect("present");
            let read = started.elapsed();
            drop(loaded);
            let started = Instant::now();
            let (_, restored) = ssp::persistence::state_file::restore(&path)
                .expect("restore")
                .expect("present");
            let restart = started.elapsed();
            assert_eq!(restored.record_count(), engine.record_count());
            drop(restored);
            (read, restart)
        })
        .collect();
    runs.sort_by_key(|r| r.1);
    let (read, restart) = runs[1];
    let (fastest, slowest) = (runs[0].1, runs[2].1);
    let _ = std::fs::remove_dir_all(&dir);

    results.add(
        &format!("persistence: full snapshot of {records} records, {views} views"),
        full.as_secs_f64() * 1000.0,
        "ms",
        None,
    );
    results.add(
        "persistence: full snapshot, of which taken under the engine's lock",
        held.as_secs_f64() * 1000.0,
        "ms",
        None,
    );
    results.add(
        &format!("persistence: full snapshot size ({records} records)"),
        snapshot_bytes as f64 / 1e6,
        "MB",
        None,
    );
    results.add(
        "persistence: save after 100 changes (p50 of 5)",
        delta.as_secs_f64() * 1000.0,
        "ms",
        None,
    );
    results.add(
        "persistence: save after 100 changes, size",
        delta_bytes as f64 / 1e3,
        "kB",
        None,
    );
    let ratio = delta.as_secs_f64() / full.as_secs_f64() * 100.0;
    results.add(
        "persistence: save after 100 changes / full snapshot",
        ratio,
        "%",
        // The target is at scale; a smoke-sized snapshot is tiny.
        (records >= 100_000).then_some(("<= 1%", ratio <= 1.0)),
    );
    results.add(
        &format!("persistence: restart, reading the snapshot + 5 log lines ({records} records; median of 3)"),
        read.as_secs_f64(),
        "s",
        None,
    );
    results.add(
        &format!(
            "persistence: restart from disk, views rebuilt ({records} records, {views} views; median of 3)"
        ),
        restart.as_secs_f64(),
        "s",
        (records >= 1_000_000).then_some(("<= 5 s", restart.as_secs_f64() <= 5.0)),
    );
    results.add(
        "persistence: restart from disk, fastest of 3",
        fastest.as_secs_f64(),
        "s",
        None,
    );
    results.add(
        "persistence: restart from disk, slowest of 3",
        slowest.as_secs_f64(),
        "s",
        None,
    );
    results.add(
        "persistence: a cold rebuild's engine work (records applied, views registered; no database reads)",
        cold.as_secs_f64(),
        "s",
        None,
    );
    results.add(
        "persistence: restart from disk / that cold rebuild",
        restart.as_secs_f64() / cold.as_secs_f64().max(1e-9),
        "x",
        None,
    );
}
