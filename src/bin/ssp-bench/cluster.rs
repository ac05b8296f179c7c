//! Several instances (issue 19): `/ingest` throughput with 1, 2 and 3 `ssp`
//! processes on one SurrealDB server, and the failover time of 1,000 views
//! (kill -9 of the instance holding them to every one served again).
//!
//! The instances are the `ssp` binary next to this one, as separate
//! processes; the server is `--surreal-url` or, with `--features bench-ws`,
//! SurrealDB's own server in this process (on a runtime of its own).

use std::process::{Child, Command, Stdio};

use super::*;

/// One `ssp` process of the bench's cluster, killed when dropped.
struct Instance {
    child: Child,
    addr: std::net::SocketAddr,
    id: String,
    dir: std::path::PathBuf,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SECRET: &str = "bench-cluster-secret";

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn start(bin: &std::path::Path, url: &str, ns: &str, id: &str, lease_ms: u64) -> Instance {
    let dir = std::env::temp_dir().join(format!("ssp-bench-{ns}-{id}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let addr = free_addr();
    let child = Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SPOOKY_LISTEN_ADDR", addr.to_string())
        .env("SPOOKY_AUTH_SECRET", SECRET)
        .env("SPOOKY_SURREALDB_URL", url)
        .env("SPOOKY_SURREALDB_NS", ns)
        .env("SPOOKY_LOG", "error")
        .env("SPOOKY_PERSISTENCE_FILE", dir.join("state.json"))
        .env("SPOOKY_CLUSTER_ENABLED", "true")
        .env("SPOOKY_CLUSTER_NODE_ID", id)
        .env("SPOOKY_CLUSTER_LEASE_MS", lease_ms.to_string())
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssp starts");
    Instance {
        child,
        addr,
        id: id.to_string(),
        dir,
    }
}

/// `/health`'s body, if it answers 200.
fn health(addr: std::net::SocketAddr) -> Option<Json> {
    // Not up yet: no panic from `Http::connect`.
    std::net::TcpStream::connect(addr).ok()?;
    let mut http = Http::connect(addr, SECRET);
    let (status, body) = http.get_body("/health");
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

/// Starts `n` instances and waits until each sees all of them.
fn start_all(bin: &std::path::Path, url: &str, ns: &str, n: usize, lease_ms: u64) -> Vec<Instance> {
    let all: Vec<Instance> = (0..n)
        .map(|i| start(bin, url, ns, &format!("i{i}"), lease_ms))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for inst in &all {
        loop {
            let peers = health(inst.addr)
                .and_then(|h| h["cluster"]["peers"].as_array().map(Vec::len))
                .unwrap_or(0);
            if peers == n {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "instance {} did not join",
                inst.id
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    all
}

/// `items` records in `ns`, `item:i` in the view `g{i % views}`.
fn seed(runtime: &tokio::runtime::Runtime, url: &str, ns: &str, items: usize, views: usize) {
    runtime.block_on(async {
        root(url, ns)
            .await
            .query("DEFINE TABLE item SCHEMALESS; FOR $i IN 0..$n { CREATE type::record('item', $i) SET g = $i % $v; }")
            .bind(("n", items as i64))
            .bind(("v", views as i64))
            .await
            .and_then(|r| r.check())
            .expect("items");
    });
}

async fn root(url: &str, ns: &str) -> surrealdb::Surreal<surrealdb::engine::any::Any> {
    let db = surrealdb::engine::any::connect(url).await.expect("connect");
    db.signin(surrealdb::opt::auth::Root {
        username: "root".into(),
        password: "root".into(),
    })
    .await
    .expect("sign in");
    db.use_ns(ns).use_db("spooky").await.expect("use");
    db
}

fn register_views(instances: &[Instance], views: usize) {
    let mut http: Vec<Http> = instances
        .iter()
        .map(|i| Http::connect(i.addr, SECRET))
        .collect();
    for g in 0..views {
        let body = json!({"id": format!("g{g}"), "sql": "SELECT * FROM item WHERE g = $g",
            "params": {"g": g}, "clientId": "bench"})
        .to_string();
        let at = g % http.len();
        let mut status = 0;
        for _ in 0..20 {
            status = http[at].post("/view/register", &body);
            if status == 200 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(status, 200, "register g{g}");
    }
}

pub(crate) fn cluster(results: &mut Results, mode: Mode, surreal_url: Option<String>) {
    let bin = std::env::current_exe()
        .map(|p| p.with_file_name("ssp"))
        .unwrap_or_default();
    if !bin.is_file() {
        results.skip(
            "cluster: 1 instance, /ingest",
            "no `ssp` binary beside ssp-bench (cargo build --release --bins)",
        );
        return;
    }
    let runtime = ssp::startup::runtime(None).expect("runtime");
    let (_server, surreal_url) = ws_server(surreal_url);
    let Some(url) = surreal_url else {
        results.skip(
            "cluster: 1 instance, /ingest",
            "no server: build with --features bench-ws or pass --surreal-url",
        );
        return;
    };
    let (items, views, clients, secs) = if mode.smoke {
        (200, 50, 4, 2)
    } else if mode.quick {
        (2_000, 300, 16, 5)
    } else {
        (10_000, 1_000, 32, 15)
    };
    let run_id = std::process::id();
    let mut rates = Vec::new();
    for n in 1..=3usize {
        let ns = format!("bench_cluster_{run_id}_{n}");
        seed(&runtime, &url, &ns, items, views);
        eprintln!("[cluster] {n} instance(s)");
        let instances = start_all(&bin, &url, &ns, n, 10_000);
        register_views(&instances, views);
        let addrs: Vec<_> = instances.iter().map(|i| i.addr).collect();
        let stop = Instant::now() + Duration::from_secs(secs);
        let done: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    let addrs = addrs.clone();
                    s.spawn(move || {
                        let mut rng = StdRng::seed_from_u64(c as u64);
                        let mut http: Vec<Http> =
                            addrs.iter().map(|a| Http::connect(*a, SECRET)).collect();
                        let mut ok = 0;
                        while Instant::now() < stop {
                            let k = rng.random_range(0..items);
                            let body =
                                json!({"table": "item", "op": "UPDATE", "id": format!("item:{k}"),
                                "record": {"g": rng.random_range(0..views)}})
                                .to_string();
                            let at = rng.random_range(0..http.len());
                            if http[at].post("/ingest", &body) == 200 {
                                ok += 1;
                            }
                        }
                        ok
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        let rate = done as f64 / secs as f64;
        results.add(
            &format!("cluster: {n} instance(s), {clients} clients: /ingest"),
            rate,
            "ingests/s",
            None,
        );
        rates.push(rate);
        drop(instances);
    }
    results.add(
        "cluster: 2 / 1 instance throughput",
        rates[1] / rates[0],
        "x",
        None,
    );
    results.add(
        "cluster: 3 / 1 instance throughput",
        rates[2] / rates[0],
        "x",
        None,
    );

    // Failover: two instances, `views` views, kill -9 the one holding more.
    let failover_views = if mode.smoke { 100 } else { 1_000 };
    let lease_ms = 2_000;
    let ns = format!("bench_cluster_{run_id}_failover");
    seed(&runtime, &url, &ns, failover_views * 2, failover_views);
    eprintln!("[cluster] failover of {failover_views} views");
    let mut instances = start_all(&bin, &url, &ns, 2, lease_ms);
    register_views(&instances, failover_views);
    let held = |inst: &Instance| {
        health(inst.addr)
            .and_then(|h| h["cluster"]["views_held"].as_u64())
            .unwrap_or(0)
    };
    let victim = if held(&instances[0]) >= held(&instances[1]) {
        0
    } else {
        1
    };
    let moved = held(&instances[victim]);
    let survivor = instances.remove(1 - victim);
    let mut dead = instances.remove(0);
    let killed = Instant::now();
    let _ = dead.child.kill();
    let _ = dead.child.wait();
    // Every view held by the survivor, then every one served by it.
    let deadline = killed + Duration::from_secs(300);
    while held(&survivor) < failover_views as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut http = Http::connect(survivor.addr, SECRET);
    for g in 0..failover_views {
        while http.get_auth(&format!("/view/g{g}")) != 200 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let took = killed.elapsed().as_secs_f64();
    results.add(
        &format!(
            "cluster: failover, kill -9 to {moved} moved views served (lease {} s)",
            lease_ms / 1000
        ),
        took,
        "s",
        None,
    );
    results.add(
        "cluster: failover after the lease ran out",
        took - lease_ms as f64 / 1000.0,
        "s",
        None,
    );
}
