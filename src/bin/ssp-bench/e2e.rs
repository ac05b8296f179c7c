//! The end-to-end rows: `/ingest` over HTTP to committed edges, 1 and 32
//! clients, on embedded SurrealDB and over `ws://`, against the same
//! transactions written bare; the writers-per-connection rows.

use super::*;

/// A tiny keep-alive HTTP/1.1 client: enough for `POST /ingest`, so that the
/// bench measures SSP and not a client library.
pub(crate) struct Http {
    pub(crate) stream: TcpStream,
    pub(crate) reader: std::io::BufReader<TcpStream>,
    pub(crate) host: String,
    pub(crate) secret: String,
    /// The body of the last response read.
    pub(crate) last_body: String,
}

impl Http {
    pub(crate) fn connect(addr: std::net::SocketAddr, secret: &str) -> Http {
        let stream = TcpStream::connect(addr).expect("connect to ssp");
        stream.set_nodelay(true).ok();
        let reader = std::io::BufReader::new(stream.try_clone().expect("clone the socket"));
        Http {
            stream,
            reader,
            host: addr.to_string(),
            secret: secret.to_string(),
            last_body: String::new(),
        }
    }

    pub(crate) fn get(&mut self, path: &str) -> u16 {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.stream.write_all(req.as_bytes()).expect("write");
        self.response()
    }

    /// A GET with the bearer token.
    pub(crate) fn get_auth(&mut self, path: &str) -> u16 {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
            self.host, self.secret
        );
        self.stream.write_all(req.as_bytes()).expect("write");
        self.response()
    }

    /// A GET, with the answer's body.
    pub(crate) fn get_body(&mut self, path: &str) -> (u16, String) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.stream.write_all(req.as_bytes()).expect("write");
        let status = self.response();
        (status, std::mem::take(&mut self.last_body))
    }

    pub(crate) fn post(&mut self, path: &str, body: &str) -> u16 {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.secret,
            body.len()
        );
        self.stream.write_all(req.as_bytes()).expect("write");
        self.response()
    }

    /// Reads one response; returns its status (0 if the connection closed).
    pub(crate) fn response(&mut self) -> u16 {
        // Read the head line by line, then exactly Content-Length bytes.
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                return 0;
            }
            let end = line == "\r\n";
            head.push_str(&line);
            if end {
                break;
            }
        }
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let len = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body).ok();
        self.last_body = String::from_utf8(body).unwrap_or_default();
        status
    }
}

/// What keeps the bench's own SurrealDB server running (`bench-ws`).
pub(crate) struct ServerGuard {
    // The server first: fields drop in order, and it stops on its runtime.
    #[cfg(feature = "bench-ws")]
    _server: Option<surreal::SurrealServer>,
    #[cfg(feature = "bench-ws")]
    _runtime: Option<tokio::runtime::Runtime>,
}

/// The SurrealDB server of the `ws://` rows: `surreal_url` if given, else
/// with `--features bench-ws` SurrealDB's own server in this process, on a
/// runtime of its own as a separate process would be; else none.
pub(crate) fn ws_server(surreal_url: Option<String>) -> (ServerGuard, Option<String>) {
    #[cfg(feature = "bench-ws")]
    if surreal_url.is_none() {
        let rt = ssp::startup::runtime(None).expect("server runtime");
        let server = rt.block_on(surreal::SurrealServer::start());
        let url = server.url();
        return (
            ServerGuard {
                _server: Some(server),
                _runtime: Some(rt),
            },
            Some(url),
        );
    }
    let guard = ServerGuard {
        #[cfg(feature = "bench-ws")]
        _server: None,
        #[cfg(feature = "bench-ws")]
        _runtime: None,
    };
    (guard, surreal_url)
}

/// Where the end-to-end figures run: SSP's database for one set of rows.
pub(crate) struct Backend {
    /// `embedded` or `ws`, the prefix of the rows.
    pub(crate) label: &'static str,
    pub(crate) url: String,
    /// SurrealDB runs in this process (embedded, or the `bench-ws` server):
    /// its CPU time is in the CPU figures.
    pub(crate) local: bool,
}

/// `/ingest` over HTTP to committed edges, against the bare SDK transaction
/// writing the same edges, then the LIVE path, on embedded SurrealDB and on a
/// real server over `ws://`: its own in-process server with `--features
/// bench-ws`, or any server given with `--surreal-url ws://HOST:PORT`
/// (root/root).
pub(crate) fn end_to_end(results: &mut Results, mode: Mode, surreal_url: Option<String>) {
    let runtime = match ssp::startup::runtime(None) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("no runtime: {e}");
            return;
        }
    };
    let local = surreal_url.is_none();
    let (_server, surreal_url) = ws_server(surreal_url);
    match surreal_url {
        Some(url) => run_backend(
            results,
            mode,
            &runtime,
            &Backend {
                label: "ws",
                url: url.clone(),
                local,
            },
        ),
        None => {
            let why = "no server: build with --features bench-ws or pass --surreal-url";
            results.skip("e2e ws: 1 client", why);
            for row in [
                "e2e ws: SSP ingest / bare transaction",
                "e2e ws: group commit gain (32 vs 1 client)",
                "live ws: write -> edge committed p50",
            ] {
                results.skip(row, why);
            }
        }
    }
    // Embedded last: dropping its datastore frees a heap of small
    // allocations for seconds, which would weigh on the next run.
    let embedded = Backend {
        label: "embedded",
        url: "mem://".into(),
        local: true,
    };
    run_backend(results, mode, &runtime, &embedded);
    runtime.shutdown_timeout(Duration::from_secs(5));
}

/// SSP on `backend`, with the settings of a production start (persistence
/// debounced out of the way).
pub(crate) fn start_ssp(
    runtime: &tokio::runtime::Runtime,
    backend: &Backend,
    dir: &std::path::Path,
) -> Option<(ssp::startup::Application, ssp::config::Settings)> {
    let env: std::collections::HashMap<String, String> = [
        ("SPOOKY_LISTEN_ADDR", "127.0.0.1:0".to_string()),
        ("SPOOKY_AUTH_SECRET", SECRET.to_string()),
        ("SPOOKY_SURREALDB_URL", backend.url.clone()),
        (
            "SPOOKY_SURREALDB_DB",
            format!("bench{}", std::process::id()),
        ),
        (
            "SPOOKY_PERSISTENCE_FILE",
            dir.join("state.json").display().to_string(),
        ),
        ("SPOOKY_SAVE_DEBOUNCE_MS", "60000".to_string()),
        ("SPOOKY_LOG", "error".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    // Tuning knobs pass through, to compare settings.
    .chain(
        std::env::var("SPOOKY_WRITE_CONCURRENCY")
            .ok()
            .map(|v| ("SPOOKY_WRITE_CONCURRENCY".to_string(), v)),
    )
    .collect();
    let settings = match ssp::config::Settings::load_from(None, false, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench settings: {e}");
            return None;
        }
    };
    match runtime.block_on(ssp::startup::Application::build(settings.clone())) {
        Ok(app) => Some((app.handle_signals(false), settings)),
        Err(e) => {
            eprintln!("ssp does not start on {}: {e}", backend.url);
            None
        }
    }
}

pub(crate) const SECRET: &str = "bench-secret";

/// SSP on embedded SurrealDB (`mem://`), started and ready, for a section
/// that drives it over HTTP; `stop` shuts it down and removes its files.
pub(crate) struct Embedded {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) db: Arc<Db>,
    dir: std::path::PathBuf,
    shutdown: ssp::startup::Shutdown,
    stopped: tokio::task::JoinHandle<Result<(), ssp::startup::StartupError>>,
}

impl Embedded {
    /// `None` (and a skipped row named `row`) when SSP does not start.
    pub(crate) fn start(section: &str, results: &mut Results, row: &str) -> Option<Embedded> {
        let runtime = ssp::startup::runtime(None).ok()?;
        let dir = std::env::temp_dir().join(format!("ssp-bench-{section}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let backend = Backend {
            label: "embedded",
            url: "mem://".into(),
            local: true,
        };
        let Some((app, _)) = start_ssp(&runtime, &backend, &dir) else {
            results.skip(row, "SSP did not start");
            return None;
        };
        let addr = app.local_addr();
        let db = app.db();
        let mut readiness = app.readiness();
        let shutdown = app.shutdown_handle();
        let stopped = runtime.spawn(app.run_until_stopped());
        assert!(runtime.block_on(readiness.wait()), "ssp becomes ready");
        Some(Embedded {
            runtime,
            addr,
            db,
            dir,
            shutdown,
            stopped,
        })
    }

    pub(crate) fn stop(self) {
        self.shutdown.trigger();
        let _ = self.runtime.block_on(self.stopped);
        self.runtime.shutdown_timeout(Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn p(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// CPU time used by this process so far, all threads (user + system), from
/// `/proc/self/stat` in clock ticks (USER_HZ = 100 on Linux). On a shared
/// machine wall time includes waiting for a core; CPU time per operation
/// does not, so it shows SSP's own overhead better.
pub(crate) fn cpu_now() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Progress on stderr, so that a profiler can be attached to one phase.
pub(crate) fn phase(backend: &str, what: &str) {
    eprintln!("[e2e {backend}] {what}");
}

pub(crate) fn ingest_body(table: &str, key: usize) -> String {
    json!({"table": table, "op": "CREATE", "id": format!("{table}:{key}"), "record": {"n": key}})
        .to_string()
}

/// The edge transaction SSP writes for `records` entering `view`.
pub(crate) fn edge_tx(view: &str, records: impl Iterator<Item = usize>) -> ssp::db::Query {
    let mut changes = ssp::sink::EdgeChanges::default();
    changes.absorb(&[ssp::engine::ViewDelta {
        view: view.into(),
        client_id: "bench".into(),
        created: records
            .map(|i| (RecordId::parse(&format!("thread:{i}")).expect("id"), 1))
            .collect(),
        ..Default::default()
    }]);
    changes.to_query(chrono::Utc::now())
}

/// Why pipelined commits over `ws://` take a connection each: two writers
/// of 16-edge transactions on one connection, then on a connection each,
/// against one writer of 32-edge transactions (all bare SDK calls).
pub(crate) fn writers_per_connection(
    results: &mut Results,
    mode: Mode,
    runtime: &tokio::runtime::Runtime,
    b: &str,
    db: &Arc<ssp::db::Db>,
    settings: &ssp::config::Settings,
) {
    phase(b, "writers per connection");
    let Ok(second) = runtime.block_on(ssp::db::Db::connect(&settings.surrealdb)) else {
        results.skip(
            &format!("e2e {b}: 2 writers of 16-edge transactions, a connection each"),
            "no second connection",
        );
        return;
    };
    let second = Arc::new(second);
    let rounds = if mode.smoke {
        2
    } else if mode.quick {
        40
    } else {
        150
    };
    let cases: [(&str, Vec<Arc<ssp::db::Db>>, usize); 3] = [
        ("1 writer of 32-edge transactions", vec![db.clone()], 32),
        (
            "2 writers of 16-edge transactions, one connection",
            vec![db.clone(), db.clone()],
            16,
        ),
        (
            "2 writers of 16-edge transactions, a connection each",
            vec![db.clone(), second],
            16,
        ),
    ];
    for (n, (label, conns, edges)) in cases.into_iter().enumerate() {
        let writers = conns.len();
        let started = Instant::now();
        runtime.block_on(async {
            let tasks: Vec<_> = conns
                .into_iter()
                .enumerate()
                .map(|(w, conn)| {
                    let view = format!("conn{n}_{w}");
                    tokio::spawn(async move {
                        for r in 0..rounds {
                            let q = edge_tx(&view, (0..edges).map(|i| r * edges + i));
                            conn.run(q).await.expect("bare tx");
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("writer");
            }
        });
        let rate = (rounds * writers * edges) as f64 / started.elapsed().as_secs_f64();
        results.add(&format!("e2e {b}: {label}"), rate, "edges/s", None);
    }
}

pub(crate) fn run_backend(
    results: &mut Results,
    mode: Mode,
    runtime: &tokio::runtime::Runtime,
    backend: &Backend,
) {
    let b = backend.label;
    let dir = std::env::temp_dir().join(format!("ssp-bench-{}-{b}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let Some((app, settings)) = start_ssp(runtime, backend, &dir) else {
        results.skip(&format!("e2e {b}: 1 client"), "SSP did not start");
        return;
    };
    let addr = app.local_addr();
    let db = app.db();
    let app_state = app.state();
    let shutdown = app.shutdown_handle();
    let mut readiness = app.readiness();
    let stopped = runtime.spawn(app.run_until_stopped());
    assert!(runtime.block_on(readiness.wait()), "ssp becomes ready");

    let n = if mode.smoke {
        50
    } else if mode.quick {
        2_000
    } else {
        10_000
    };
    let mut http = Http::connect(addr, SECRET);
    let status = http.post(
        "/view/register",
        &json!({"id": "e2e", "sql": "SELECT * FROM thread WHERE n >= 0", "clientId": "bench"})
            .to_string(),
    );
    assert_eq!(status, 200, "register");

    // 1 client: one ingest at a time, each waits for its commit.
    phase(b, "1 client");
    for i in 0..n / 10 {
        assert_eq!(
            http.post("/ingest", &ingest_body("thread", 5_000_000 + i)),
            200
        );
    }
    let started = Instant::now();
    let cpu = cpu_now();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let body = ingest_body("thread", i);
        let t = Instant::now();
        assert_eq!(http.post("/ingest", &body), 200);
        lat.push(t.elapsed());
    }
    let one = n as f64 / started.elapsed().as_secs_f64();
    let cpu_one = (cpu_now() - cpu) / n as u32;
    lat.sort();
    let ssp_p50 = p(&lat, 0.5);
    results.add(&format!("e2e {b}: 1 client"), one, "ingests/s", None);
    results.add(
        &format!("e2e {b}: 1 client p50 latency"),
        us(ssp_p50),
        "us",
        None,
    );
    results.add(
        &format!("e2e {b}: 1 client p99 latency"),
        us(p(&lat, 0.99)),
        "us",
        None,
    );

    // The floor of any HTTP API here: a request that does nothing (public
    // `GET /version`), with the same client.
    phase(b, "HTTP floor");
    let cpu = cpu_now();
    let mut floor = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        assert_eq!(http.get("/version"), 200);
        floor.push(t.elapsed());
    }
    let cpu_floor = (cpu_now() - cpu) / n as u32;
    floor.sort();
    let http_floor = p(&floor, 0.5);

    // The same ingests straight into the pipeline, without HTTP: splits
    // SSP's time into HTTP and pipeline (engine, applier, sink, SDK call).
    phase(b, "pipeline without HTTP");
    let pipeline = app_state
        .try_core()
        .expect("ready, so bootstrapped")
        .pipeline
        .clone();
    let (pipe_p50, cpu_pipe) = runtime.block_on(async {
        let mut lat = Vec::with_capacity(n);
        let cpu = cpu_now();
        for i in 0..n {
            let change = ssp::engine::Change {
                id: RecordId::parse(&format!("thread:{}", 3_000_000 + i)).expect("id"),
                content: Some(obj(json!({"n": i}))),
            };
            let t = Instant::now();
            pipeline
                .ingest(vec![change], ssp::pipeline::Source::Http)
                .await
                .expect("in-process ingest");
            lat.push(t.elapsed());
        }
        let cpu = (cpu_now() - cpu) / n as u32;
        lat.sort();
        (p(&lat, 0.5), cpu)
    });

    // 32 clients at once: group commit merges their transactions.
    let clients = 32;
    // Four times the 1-client phase's ingests, so that the phase lasts about
    // as long (~1.3 s in --quick): a shorter one swung with the host.
    let per_client = (n / clients * 4).max(1);
    phase(b, "32 clients");
    let started = Instant::now();
    let cpu = cpu_now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let mut http = Http::connect(addr, SECRET);
                for i in 0..per_client {
                    let body = ingest_body("thread", 1_000_000 + c * 100_000 + i);
                    assert_eq!(http.post("/ingest", &body), 200);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let many = (per_client * clients) as f64 / started.elapsed().as_secs_f64();
    let cpu_many = (cpu_now() - cpu) / (per_client * clients) as u32;
    results.add(&format!("e2e {b}: 32 clients"), many, "ingests/s", None);
    let gain = many / one;
    results.add(
        &format!("e2e {b}: group commit gain (32 vs 1 client)"),
        gain,
        "x",
        Some((">= 5x", gain >= 5.0)),
    );

    // The physical limit: the same edge transactions, written bare with the
    // SDK on SSP's own connection. Queries are built before the clock starts.
    phase(b, "bare transactions");
    let (bare1, bare32, bare256, bare_concurrent, cpu_bare1, cpu_bare32) =
        runtime.block_on(async {
            let mut one = Vec::with_capacity(n);
            let cpu = cpu_now();
            for i in 0..n {
                let q = edge_tx("bare", std::iter::once(i));
                let t = Instant::now();
                db.run(q).await.expect("bare tx");
                one.push(t.elapsed());
            }
            let cpu_one = (cpu_now() - cpu) / n as u32;
            one.sort();
            let rounds = (n / 32).max(5);
            let cpu = cpu_now();
            let mut grouped = Vec::with_capacity(rounds);
            for r in 0..rounds {
                let q = edge_tx("bare32", (0..32).map(|i| r * 32 + i));
                let t = Instant::now();
                db.run(q).await.expect("bare tx of 32 edges");
                grouped.push(t.elapsed());
            }
            let cpu_grouped = (cpu_now() - cpu) / rounds as u32;
            grouped.sort();
            // SurrealDB's cost per edge grows with the transaction (a savepoint
            // per row clones the write set): the same edges, 256 at a time.
            let mut big = Vec::new();
            for r in 0..if mode.smoke { 1 } else { 5 } {
                let q = edge_tx("bare256", (0..256).map(|i| r * 256 + i));
                let t = Instant::now();
                db.run(q).await.expect("bare tx of 256 edges");
                big.push(t.elapsed());
            }
            big.sort();
            phase(b, "bare 32 concurrent writers");
            // 32 writers, each its own 1-edge transactions: what SurrealDB does
            // with the same concurrency and no grouping.
            let started = Instant::now();
            let tasks: Vec<_> = (0..clients)
                .map(|c| {
                    let db = db.clone();
                    tokio::spawn(async move {
                        let mut failed = 0;
                        for i in 0..per_client {
                            let q = edge_tx("bare_c", std::iter::once(c * 100_000 + i));
                            failed += usize::from(db.run(q).await.is_err());
                        }
                        failed
                    })
                })
                .collect();
            let mut failed = 0;
            for t in tasks {
                failed += t.await.unwrap_or(per_client);
            }
            let concurrent =
                (per_client * clients - failed) as f64 / started.elapsed().as_secs_f64();
            (
                p(&one, 0.5),
                p(&grouped, 0.5),
                p(&big, 0.5),
                concurrent,
                cpu_one,
                cpu_grouped,
            )
        });
    results.add(
        &format!("e2e {b}: bare edge transaction p50"),
        us(bare1),
        "us",
        None,
    );
    let overhead = ssp_p50.as_secs_f64() / bare1.as_secs_f64();
    results.add(
        &format!("e2e {b}: SSP ingest / bare transaction"),
        overhead,
        "x",
        Some(("<= 1.3x", overhead <= 1.3)),
    );
    results.add(
        &format!("e2e {b}: HTTP floor (GET /version) p50"),
        us(http_floor),
        "us",
        None,
    );
    results.add(
        &format!("e2e {b}: pipeline ingest without HTTP p50"),
        us(pipe_p50),
        "us",
        None,
    );
    results.add(
        &format!("e2e {b}: pipeline without HTTP / bare transaction"),
        pipe_p50.as_secs_f64() / bare1.as_secs_f64(),
        "x",
        None,
    );
    results.add(
        &format!("e2e {b}: bare transaction of 32 edges p50"),
        us(bare32),
        "us",
        None,
    );
    // How much one transaction of 32 edges saves over 32 of one edge: the
    // most group commit could gain if HTTP and the engine cost nothing.
    let ceiling = 32.0 * bare1.as_secs_f64() / bare32.as_secs_f64();
    results.add(
        &format!("e2e {b}: group commit ceiling (32 x 1-edge tx / 32-edge tx)"),
        ceiling,
        "x",
        None,
    );
    for (edges, d) in [(32.0, bare32), (256.0, bare256)] {
        results.add(
            &format!("e2e {b}: bare transaction of {edges} edges, per edge"),
            us(d) / edges,
            "us",
            None,
        );
    }
    let where_cpu = if backend.local {
        "SSP and SurrealDB"
    } else {
        "SSP only: the server is another process"
    };
    results.add(
        &format!("e2e {b}: CPU per ingest, 1 client ({where_cpu})"),
        us(cpu_one),
        "us",
        None,
    );
    results.add(
        &format!("e2e {b}: CPU per ingest, 32 clients"),
        us(cpu_many),
        "us",
        None,
    );
    results.add(
        &format!("e2e {b}: CPU per HTTP floor request (GET /version)"),
        us(cpu_floor),
        "us",
        None,
    );
    results.add(
        &format!("e2e {b}: CPU per pipeline ingest without HTTP"),
        us(cpu_pipe),
        "us",
        None,
    );
    results.add(
        &format!("e2e {b}: CPU per bare 1-edge transaction"),
        us(cpu_bare1),
        "us",
        None,
    );
    results.add(
        &format!("e2e {b}: CPU per bare 32-edge transaction"),
        us(cpu_bare32),
        "us",
        None,
    );
    results.add(
        &format!("e2e {b}: CPU, SSP ingest / bare transaction"),
        cpu_one.as_secs_f64() / cpu_bare1.as_secs_f64().max(1e-9),
        "x",
        None,
    );
    results.add(
        &format!("e2e {b}: bare 32 concurrent writers, 1-edge transactions"),
        bare_concurrent,
        "tx/s",
        None,
    );
    // Embedded, a second connection would open a second store.
    if settings.surrealdb.endpoint.is_remote() {
        writers_per_connection(results, mode, runtime, b, &db, &settings);
    }

    live_path(results, mode, runtime, backend, &mut http, &db, &settings);

    shutdown.trigger();
    let _ = runtime.block_on(stopped);
    // After SSP stopped: its change worker would otherwise follow the forum
    // tables the naive run writes.
    if b == "embedded" {
        naive(results, mode, runtime, &db);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
