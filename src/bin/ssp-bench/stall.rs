//! A big registration beside the stream (issue 18): `/ingest` latency for a
//! small view, idle and while a view over a big table registers (its edges
//! written beside the stream), and `/health/live` meanwhile. Embedded.

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
        let status = http.post("/ingest", &ingest_body("small", key % 500));
        assert_eq!(status, 200, "ingest");
        started.elapsed()
    };
    let mut idle: Vec<Duration> = (0..2000).map(|_| ingest(&mut http)).collect();
    idle.sort();

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
    let mut live = Http::connect(addr, SECRET);
    let mut during: Vec<Duration> = Vec::new();
    let mut live_max = Duration::ZERO;
    while !registering.is_finished() {
        during.push(ingest(&mut http));
        if during.len().is_multiple_of(10) {
            let started = Instant::now();
            assert_eq!(live.get("/health/live"), 200);
            live_max = live_max.max(started.elapsed());
        }
    }
    if during.is_empty() {
        during.push(ingest(&mut http));
    }
    let (status, took) = registering.join().expect("the registration thread");
    assert_eq!(status, 200, "the big registration");
    during.sort();
    ssp.stop();

    let idle_p99 = p(&idle, 0.99);
    results.add(
        &format!("stall: registering a view over {rows} rows"),
        took.as_secs_f64(),
        "s",
        None,
    );
    results.add("stall: /ingest p99, idle", us(idle_p99), "us", None);
    results.add(
        &format!(
            "stall: /ingest p99 while it registers ({} ingests)",
            during.len()
        ),
        us(p(&during, 0.99)),
        "us",
        None,
    );
    let ratio = p(&during, 0.99).as_secs_f64() / idle_p99.as_secs_f64().max(1e-9);
    results.add(
        "stall: /ingest p99 while registering / idle",
        ratio,
        "x",
        Some(("<= 3x", ratio <= 3.0)),
    );
    let live_ms = live_max.as_secs_f64() * 1000.0;
    results.add(
        "stall: /health/live, slowest while registering",
        live_ms,
        "ms",
        Some(("<= 50 ms", live_ms <= 50.0)),
    );
}
