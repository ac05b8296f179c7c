//! The benchmark binary runs (tiny sizes): its `--quick` mode is not part of
//! the test command, but it must not rot.

#[test]
fn ssp_bench_smoke_run_writes_results() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("bench.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ssp-bench"))
        .args(["--smoke", "--out"])
        .arg(&out)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("ssp-bench runs");
    assert!(status.success(), "ssp-bench --smoke failed: {status}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("results written"))
            .expect("JSON results");
    let rows = doc["results"].as_array().expect("a results array");
    for name in [
        "fan-out cost ratio",
        "registration:",
        "memory: bytes per record",
        "e2e embedded: 1 client",
        "naive / ssp",
    ] {
        assert!(
            rows.iter()
                .any(|r| r["name"].as_str().unwrap_or("").starts_with(name)),
            "no `{name}` figure in {doc}"
        );
    }
}
