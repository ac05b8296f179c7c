//! SSP as a real process (`CARGO_BIN_EXE_ssp`): for what only a process
//! shows — its own metrics registry, signals, `kill -9`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wait_for;

/// A running `ssp` process, killed when dropped.
pub struct SspProcess {
    pub child: Child,
    pub base: String,
    pub secret: String,
    /// Where its stderr goes, when kept (see [`SspProcess::spawn_as_operator`]).
    stderr_file: Option<PathBuf>,
}

impl Drop for SspProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl SspProcess {
    /// Starts `ssp` in `dir` (state file `dir/state.json`) with `db_url`
    /// and extra `SPOOKY_*` variables, on a free port. Logs at `warn`, to
    /// nowhere.
    pub fn spawn(dir: &Path, db_url: &str, extra: &[(&str, &str)]) -> SspProcess {
        Self::start(dir, Some(db_url), Some("warn"), None, extra)
    }

    /// Like [`SspProcess::spawn`], but with the defaults an operator gets:
    /// no `SPOOKY_LOG` (the default level), and with `db_url` `None` no
    /// `SPOOKY_SURREALDB_URL` either (the default `surrealkv://data/surreal`,
    /// under `dir`). Its stderr is kept in `dir/stderr.log`: see
    /// [`SspProcess::stderr`].
    pub fn spawn_as_operator(
        dir: &Path,
        db_url: Option<&str>,
        extra: &[(&str, &str)],
    ) -> SspProcess {
        Self::start(dir, db_url, None, Some(dir.join("stderr.log")), extra)
    }

    fn start(
        dir: &Path,
        db_url: Option<&str>,
        log: Option<&str>,
        stderr_file: Option<PathBuf>,
        extra: &[(&str, &str)],
    ) -> SspProcess {
        let port = free_port();
        let secret = "process-secret".to_string();
        let mut command = Command::new(env!("CARGO_BIN_EXE_ssp"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SPOOKY_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("SPOOKY_AUTH_SECRET", &secret)
            .env("SPOOKY_PERSISTENCE_FILE", dir.join("state.json"))
            .current_dir(dir)
            .stdout(Stdio::null());
        if let Some(url) = db_url {
            command.env("SPOOKY_SURREALDB_URL", url);
        }
        if let Some(log) = log {
            command.env("SPOOKY_LOG", log);
        }
        match &stderr_file {
            Some(path) => command.stderr(File::create(path).expect("stderr file")),
            None => command.stderr(Stdio::null()),
        };
        for (k, v) in extra {
            command.env(k, v);
        }
        SspProcess {
            child: command.spawn().expect("ssp starts"),
            base: format!("http://127.0.0.1:{port}"),
            secret,
            stderr_file,
        }
    }

    /// What it has written to stderr so far (only for
    /// [`SspProcess::spawn_as_operator`]).
    pub fn stderr(&self) -> String {
        let path = self
            .stderr_file
            .as_ref()
            .expect("stderr is kept only by spawn_as_operator");
        std::fs::read_to_string(path).expect("stderr file")
    }

    /// Waits until `/health` answers 200.
    pub async fn wait_up(&self, http: &reqwest::Client) {
        let url = format!("{}/health", self.base);
        wait_for("ssp to answer /health", Duration::from_secs(60), || async {
            http.get(&url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await;
    }

    /// Sends a signal (`-TERM`, `-KILL`) with `kill`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill {sig}");
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for ssp")
    }
}
