//! Big registrations beside the stream: `/ingest` latency for a small view,
//! idle and while a view over a big table registers (its edges written
//! beside the stream), or while views with few members scan a big table
//! (their first result computed beside the stream); `/health/live`
//! meanwhile. Embedded.

use super::*;

pub(crate) fn registration_stall(results: &mut Results, mode: Mode) {
    use ssp::db::Query;
    let Some(ssp) = Embedded::start("stall", results, "stall: /ingest p99 while registering")
    else {
        return;
    };
    let (runtime, addr, db) = (&ssp.runtime, ssp.addr, Arc::clone(&ssp.db));
    // Edges cost ~1 ms each to write in SurrealDB 3.3.5: the big view is
    // sized so that its fill takes seconds to minutes, not hours.
    let rows = if mode.smoke {
        2_000
    } else if mode.quick {
        20_000
    } else {
        100_000
    };
    runtime
        .block_on(
            db.run(
                Query::new("FOR $i IN 0..$n { CREATE type::record('big', $i) SET n = $i; }")
                    .bind("n", rows as i64),
            ),
        )
        .expect("the big table");
    let mut http = Http::connect(addr, SECRET);
    let small = json!({"id": "small", "sql": "SELECT * FROM small", "clientId": "c"});
    assert_eq!(http.post("/view/register", &small.to_string()), 200);

    let mut key = 0usize;
    let mut ingest = |http: &mut Http| {
        key += 1;
        let started = Instant::now();
        let status = http.post("/ingest", &small_change(key));
        assert_eq!(status, 200, "ingest");
        started.elapsed()
    };
    settle(&mut http);
    let mut idle: Vec<Duration> = (0..2000).map(|_| ingest(&mut http)).collect();
    idle.sort();
    settle(&mut http);

    // The big registration, on a connection of its own. Past the write
    // budget it answers 503 while its edges are still being written; it is
    // sent again until it answers 200, as the README says to.
    let big = json!({"id": "big", "sql": "SELECT * FROM big WHERE n >= 0", "clientId": "c"});
    let registering = std::thread::spawn(move || {
        let mut http = Http::connect(addr, SECRET);
        let started = Instant::now();
        let mut status = 503;
        for _ in 0..100 {
            status = http.post("/view/register", &big.to_string());
            if status != 503 {
                break;
            }
        }
        (status, started.elapsed())
    });
    let (during, live_max) = while_running(addr, &registering, || ingest(&mut http));
    let (status, took) = registering.join().expect("the registration thread");
    assert_eq!(status, 200, "the big registration");
    ssp.stop();

    results.add(
        &format!("stall: registering a view over {rows} rows"),
        took.as_secs_f64(),
        "s",
        None,
    );
    report(results, "stall", "registering", &idle, &during, live_max);
}

/// The `key`th change of the small view: one of its 500 records, with new
/// content each time, so that every ingest (idle or not) writes one edge.
fn small_change(key: usize) -> String {
    json!({"table": "small", "op": "UPDATE", "id": format!("small:{}", key % 500), "record": {"n": key}})
        .to_string()
}

/// Waits until the state file's saves stop (the first save after a big
/// load is a full snapshot, which would count as idle latency otherwise):
/// no new save for 3 s, at most 2 minutes.
fn settle(http: &mut Http) {
    let saves = |http: &mut Http| {
        let (_, body) = http.get_body("/health");
        serde_json::from_str::<Json>(&body)
            .ok()
            .map(|h| h["state_file"]["saves"].clone())
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = saves(http);
    let mut since = Instant::now();
    while Instant::now() < deadline && since.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(250));
        let now = saves(http);
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// Runs `ingest` in a loop while `task` runs, probing `/health/live` every
/// tenth time: the ingests' latencies, and the slowest probe.
fn while_running<T>(
    addr: std::net::SocketAddr,
    task: &std::thread::JoinHandle<T>,
    mut ingest: impl FnMut() -> Duration,
) -> (Vec<Duration>, Duration) {
    let mut live = Http::connect(addr, SECRET);
    let mut during: Vec<Duration> = Vec::new();
    let mut live_max = Duration::ZERO;
    while !task.is_finished() || during.is_empty() {
        during.push(ingest());
        if during.len().is_multiple_of(10) {
            let started = Instant::now();
            assert_eq!(live.get("/health/live"), 200);
            live_max = live_max.max(started.elapsed());
        }
    }
    during.sort();
    (during, live_max)
}

/// The rows of one stall measurement: `/ingest` p99 idle and during
/// (`what`), their ratio (target <= 3x), and the slowest `/health/live`.
fn report(
    results: &mut Results,
    section: &str,
    what: &str,
    idle: &[Duration],
    during: &[Duration],
    live_max: Duration,
) {
    let idle_p99 = p(idle, 0.99);
    results.add(
        &format!("{section}: /ingest p99, idle"),
        us(idle_p99),
        "us",
        None,
    );
    results.add(
        &format!(
            "{section}: /ingest p99 while {what} ({} ingests)",
            during.len()
        ),
        us(p(during, 0.99)),
        "us",
        None,
    );
    let ratio = p(during, 0.99).as_secs_f64() / idle_p99.as_secs_f64().max(1e-9);
    results.add(
        &format!("{section}: /ingest p99 while {what} / idle"),
        ratio,
        "x",
        Some(("<= 3x", ratio <= 3.0)),
    );
    let live_ms = live_max.as_secs_f64() * 1000.0;
    results.add(
        &format!("{section}: /health/live, slowest while {what}"),
        live_ms,
        "ms",
        Some(("<= 50 ms", live_ms <= 50.0)),
    );
}

/// Views over a big table with few members: each one's first result is a
/// scan of every row (computed beside the stream: `engine::prescan`).
/// `/ingest` latency for another view while ten such views register, one
/// after another, against idle.
pub(crate) fn scan_stall(results: &mut Results, mode: Mode) {
    use ssp::db::Query;
    let Some(ssp) = Embedded::start("scan", results, "scan: /ingest p99 while views scan") else {
        return;
    };
    let (runtime, addr, db) = (&ssp.runtime, ssp.addr, Arc::clone(&ssp.db));
    let rows: i64 = if mode.smoke {
        20_000
    } else if mode.quick {
        200_000
    } else {
        1_000_000
    };
    let started = Instant::now();
    for from in (0..rows).step_by(100_000) {
        runtime
            .block_on(
                db.run(
                    Query::new("FOR $i IN $a..$b { CREATE type::record('wide', $i) SET n = $i; }")
                        .bind("a", from)
                        .bind("b", (from + 100_000).min(rows)),
                ),
            )
            .expect("the wide table");
    }
    let mut http = Http::connect(addr, SECRET);
    let small = json!({"id": "small", "sql": "SELECT * FROM small", "clientId": "c"});
    assert_eq!(http.post("/view/register", &small.to_string()), 200);
    // The first view over the table loads it into SSP.
    let first = json!({"id": "w0", "sql": "SELECT * FROM wide WHERE n < 0", "clientId": "c"});
    assert_eq!(http.post("/view/register", &first.to_string()), 200);
    results.add(
        &format!("scan: {rows} rows written and loaded into SSP"),
        started.elapsed().as_secs_f64(),
        "s",
        None,
    );

    let mut key = 0usize;
    let mut ingest = |http: &mut Http| {
        key += 1;
        let started = Instant::now();
        assert_eq!(http.post("/ingest", &small_change(key)), 200);
        started.elapsed()
    };
    settle(&mut http);
    let mut idle: Vec<Duration> = (0..2000).map(|_| ingest(&mut http)).collect();
    idle.sort();
    settle(&mut http);

    let registering = std::thread::spawn(move || {
        let mut http = Http::connect(addr, SECRET);
        let started = Instant::now();
        for k in 1..=10 {
            let view = json!({"id": format!("w{k}"), "sql": "SELECT * FROM wide WHERE n < $k",
                              "params": {"k": k}, "clientId": "c"});
            assert_eq!(http.post("/view/register", &view.to_string()), 200);
        }
        started.elapsed() / 10
    });
    let (during, live_max) = while_running(addr, &registering, || ingest(&mut http));
    let took = registering.join().expect("the registration thread");
    ssp.stop();

    results.add(
        &format!("scan: registering a view over {rows} rows (mean of 10)"),
        took.as_secs_f64() * 1000.0,
        "ms",
        None,
    );
    report(results, "scan", "views scan", &idle, &during, live_max);
}
