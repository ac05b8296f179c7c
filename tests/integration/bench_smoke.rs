//! The benchmark binary runs (tiny sizes): its `--quick` mode is not part of
//! the test command, but it must not rot. Its `ws://` rows run against this
//! test's own SurrealDB server (`--surreal-url`), so they are checked too
//! without the `bench-ws` feature.

use crate::support::surreal::SurrealServer;

#[test]
fn ssp_bench_smoke_run_writes_results() {
    let runtime = ssp::startup::runtime(Some(2)).expect("server runtime");
    // Started on a worker thread: SurrealDB needs the runtime's big stacks.
    let server = runtime
        .block_on(async { tokio::spawn(SurrealServer::start()).await })
        .expect("SurrealDB server");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("bench.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ssp-bench"))
        .args(["--smoke", "--surreal-url", &server.url(), "--out"])
        .arg(&out)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("ssp-bench runs");
    assert!(status.success(), "ssp-bench --smoke failed: {status}");
    drop(server);
    runtime.shutdown_background();
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("results written"))
            .expect("JSON results");
    let rows = doc["results"].as_array().expect("a results array");
    for name in [
        "fan-out cost ratio",
        "registration:",
        "memory: bytes per record",
        "memory: a read at random in as much memory as the engine holds",
        "memory: update batch in reads at random",
        "memory: ten reads at random at once, per read",
        "growth: the worst batch (the record map grows)",
        "memory: texts growing with the views: views changed per update batch",
        "tiers: filter view, one change p50",
        "tiers: count view / filter view",
        "tiers: re-query runs per change",
        "e2e embedded: 1 client",
        "e2e embedded: SSP ingest / bare transaction",
        "live embedded: write -> edge committed p50",
        "e2e ws: 1 client",
        "e2e ws: group commit gain",
        "live ws: write -> edge committed p99",
        "naive / ssp",
        "cluster: 3 / 1 instance throughput",
        "cluster: failover, kill -9",
    ] {
        let row = rows
            .iter()
            .find(|r| r["name"].as_str().unwrap_or("").starts_with(name));
        assert!(
            row.is_some_and(|r| r["value"].is_number()),
            "no `{name}` figure in {doc}"
        );
    }
}
