//! The `ssp` binary itself: bad settings give one clear line and exit 1 (no
//! panic, no backtrace); `ssp migrate`; `ssp serve` with a generated secret
//! and a graceful SIGTERM.

use std::process::{Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The binary, with no `SPOOKY_*` from the outer environment, run in `dir`
/// (so no stray `config.toml` is read), with backtraces requested so that
/// any panic would show one.
fn ssp(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ssp"));
    for (var, _) in ssp::config::ENV_VARS {
        command.env_remove(var);
    }
    command
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn output(mut command: Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("ssp exits")
        .expect("ssp runs")
}

/// Asserts a failed run: exit code 1, exactly one line on stderr that
/// starts with `ssp: error:` and contains every one of `needles`.
fn assert_one_line_error(output: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
    let line = lines[0];
    assert!(line.starts_with("ssp: error: "), "{line}");
    for needle in needles {
        assert!(line.contains(needle), "`{needle}` missing from: {line}");
    }
    let lower = stderr.to_lowercase();
    assert!(!lower.contains("panic"), "{stderr}");
    assert!(!lower.contains("backtrace"), "{stderr}");
    line.to_owned()
}

/// Environment variables for one run.
type Env<'a> = &'a [(&'a str, &'a str)];

#[test]
fn bad_settings_give_one_clear_line() {
    crate::support::run(async {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(Env, &[&str])] = &[
            (
                &[("SPOOKY_SURREALDB_URL", "postgres://localhost:5432")],
                &["SPOOKY_SURREALDB_URL", "unknown URL scheme `postgres`"],
            ),
            (
                &[("SPOOKY_AUTH_SECRET", "")],
                &["SPOOKY_AUTH_SECRET", "empty"],
            ),
            (
                &[("SPOOKY_AUTH_SECRET", "   ")],
                &["SPOOKY_AUTH_SECRET", "empty"],
            ),
            (
                &[("SPOOKY_LISTEN_ADDR", "localhost:eighty")],
                &["SPOOKY_LISTEN_ADDR", "localhost:eighty"],
            ),
            (
                &[("SPOOKY_SAVE_DEBOUNCE_MS", "soon")],
                &["save_debounce_ms"],
            ),
            (&[("SPOOKY_LOG", "info,[[[")], &["SPOOKY_LOG"]),
        ];
        for (env, needles) in cases {
            let mut command = ssp(dir.path());
            command.envs(env.iter().copied());
            assert_one_line_error(&output(command).await, needles);
        }

        // An explicit config file that does not exist.
        let mut command = ssp(dir.path());
        command.args(["--config", "missing.toml"]);
        assert_one_line_error(&output(command).await, &["missing.toml", "does not exist"]);

        // A bad value in a config file names its key.
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "listen_addr = \"nowhere\"\n").unwrap();
        let mut command = ssp(dir.path());
        command.arg("--config").arg(&file);
        assert_one_line_error(
            &output(command).await,
            &["SPOOKY_LISTEN_ADDR (listen_addr)"],
        );

        // The default ./config.toml is read when present.
        std::fs::write(
            dir.path().join("config.toml"),
            "[surrealdb]\nurl = \"http://x\"\n",
        )
        .unwrap();
        assert_one_line_error(&output(ssp(dir.path())).await, &["surrealdb.url", "`http`"]);
    });
}

#[test]
fn an_unreachable_db_gives_one_clear_line() {
    crate::support::run(async {
        let dir = tempfile::tempdir().unwrap();
        // A port nobody listens on.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("ws://127.0.0.1:{port}");
        let mut command = ssp(dir.path());
        command.envs([
            ("SPOOKY_SURREALDB_URL", url.as_str()),
            ("SPOOKY_SURREALDB_CONNECT_DEADLINE_MS", "500"),
            ("SPOOKY_AUTH_SECRET", "x"),
            ("SPOOKY_LOG", "off"),
        ]);
        assert_one_line_error(
            &output(command).await,
            &["cannot reach SurrealDB at", url.as_str(), "gave up after"],
        );
    });
}

#[test]
fn migrate_applies_once_then_skips() {
    crate::support::run(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("surrealkv://{}", dir.path().join("db").display());
        let env = [
            ("SPOOKY_SURREALDB_URL", url.as_str()),
            ("SPOOKY_AUTH_SECRET", "x"),
            ("SPOOKY_LOG", "warn"),
        ];
        let mut first = ssp(dir.path());
        first.arg("migrate").envs(env);
        let out = output(first).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "migrations applied: 0001_spooky_schema, 0002_spooky_version, 0003_spooky_version_event, 0004_spooky_edge_key, 0005_spooky_owner, 0006_spooky_cluster; already applied: none"
        );

        let mut second = ssp(dir.path());
        second.arg("migrate").envs(env);
        let out = output(second).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "migrations applied: none; already applied: 0001_spooky_schema, 0002_spooky_version, 0003_spooky_version_event, 0004_spooky_edge_key, 0005_spooky_owner, 0006_spooky_cluster"
        );
    });
}

#[test]
fn serve_prints_a_generated_secret_and_stops_on_sigterm() {
    crate::support::run(async {
        let dir = tempfile::tempdir().unwrap();
        let mut command = ssp(dir.path());
        command
            .envs([
                ("SPOOKY_SURREALDB_URL", "mem://"),
                ("SPOOKY_LISTEN_ADDR", "127.0.0.1:0"),
                ("SPOOKY_LOG", "info"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("ssp starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();

        let secret_line = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
            .await
            .expect("the secret is printed")
            .unwrap()
            .expect("a line");
        let secret = secret_line
            .strip_prefix("SPOOKY_AUTH_SECRET is not set; the bearer secret for this run is: ")
            .unwrap_or_else(|| panic!("unexpected stdout: {secret_line}"))
            .to_owned();
        assert!(secret.len() >= 32);

        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = stderr.next_line().await.unwrap() {
                if line.contains("SSP listening")
                    && let Some(rest) = line.split("local_addr=").nth(1)
                {
                    return rest.split_whitespace().next().unwrap().to_owned();
                }
            }
            panic!("ssp exited before listening");
        })
        .await
        .expect("ssp listens");
        // Keep draining stderr so the child never blocks on a full pipe.
        let drain = tokio::spawn(async move {
            let mut lines = Vec::new();
            while let Ok(Some(line)) = stderr.next_line().await {
                lines.push(line);
            }
            lines
        });

        let http = reqwest::Client::new();
        // Serving starts before the bootstrap ends: live at once, ready soon.
        let live = http
            .get(format!("http://{addr}/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(live.status(), StatusCode::OK);
        crate::support::wait_for("/health to answer 200", Duration::from_secs(30), || async {
            let health = http
                .get(format!("http://{addr}/health"))
                .send()
                .await
                .ok()?;
            (health.status() == StatusCode::OK).then_some(())
        })
        .await;
        let anonymous = http
            .post(format!("http://{addr}/ingest"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let authorized = http
            .post(format!("http://{addr}/ingest"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap();
        assert_ne!(authorized.status(), StatusCode::UNAUTHORIZED);

        let pid = child.id().expect("pid").to_string();
        // `sh`'s own `kill`: no dependency on a kill binary being installed.
        let status = std::process::Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("ssp stops on SIGTERM")
            .unwrap();
        assert!(status.success(), "{status:?}");
        let logs = drain.await.unwrap().join("\n");
        assert!(logs.contains("SIGTERM received"), "{logs}");
        assert!(logs.contains("SSP stopped"), "{logs}");
    });
}

/// A secret that no `Authorization: Bearer` header can carry would make
/// every request 401: the binary refuses it at startup and says why,
/// without printing the secret.
#[test]
fn a_secret_no_bearer_header_can_carry_is_refused() {
    crate::support::run(async {
        let dir = tempfile::tempdir().unwrap();
        for (secret, what) in [
            (" s3cret", "starts or ends with whitespace"),
            ("s3cret\n", "starts or ends with whitespace"),
            ("s3crét", "not printable ASCII"),
            ("s3\tcret", "not printable ASCII"),
        ] {
            let mut command = ssp(dir.path());
            command.envs([
                ("SPOOKY_AUTH_SECRET", secret),
                ("SPOOKY_SURREALDB_URL", "mem://"),
                ("SPOOKY_LISTEN_ADDR", "127.0.0.1:0"),
            ]);
            let line = assert_one_line_error(
                &output(command).await,
                &["SPOOKY_AUTH_SECRET (auth_secret)", what, "401"],
            );
            assert!(!line.contains("s3cr"), "the secret is shown: {line}");
        }
    });
}

/// At the default log level, on the default embedded `surrealkv://` store,
/// the log has SSP's own INFO lines and none of its dependencies'
/// (SurrealDB and SurrealKV print ~20 at every start at `info`).
#[test]
fn the_default_log_level_prints_only_ssps_own_info_lines() {
    use crate::support::process::SspProcess;

    crate::support::run(async {
        let dir = tempfile::tempdir().unwrap();
        let mut ssp = SspProcess::spawn_as_operator(dir.path(), None, &[]);
        let http = reqwest::Client::new();
        ssp.wait_up(&http).await;
        assert!(
            dir.path().join("data/surreal").exists(),
            "the default store"
        );
        ssp.signal("-TERM");
        assert!(ssp.wait().success());
        let stderr = ssp.stderr();

        // `2025-01-01T00:00:00.000000Z  INFO [span{..}: ]target: message`
        let info: Vec<&str> = stderr
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("INFO"))
            .collect();
        assert!(
            info.iter()
                .any(|l| l.contains("ssp::startup: SSP listening")),
            "SSP's own INFO lines are printed: {stderr}"
        );
        let targets = |line: &str| -> Vec<String> {
            line.split_whitespace()
                .skip(2)
                .filter_map(|t| t.strip_suffix(':'))
                .filter(|t| {
                    !t.is_empty()
                        && t.chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == ':')
                })
                .map(str::to_owned)
                .collect()
        };
        for line in &info {
            let targets = targets(line);
            let own = |t: &String| {
                t == "ssp" || t.starts_with("ssp::") || t.starts_with("tower_http::trace")
            };
            assert!(targets.iter().any(own), "not an SSP line: {line}");
            assert!(
                !targets.iter().any(|t| t.starts_with("surreal")),
                "a dependency's INFO line: {line}"
            );
        }
    });
}
