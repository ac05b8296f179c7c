//! The child processes: SurrealDB's server and SSP, their logs, signals and memory.

use super::*;

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(crate) fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits at most `limit` for `child` to exit.
pub(crate) async fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn log_file(path: &Path) -> anyhow::Result<(Stdio, Stdio)> {
    let file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

/// `/proc/<pid>/status`: (`VmHWM`, `VmRSS`) in KiB.
pub(crate) fn proc_mem(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

pub(crate) fn sample_mem(ctx: &Ctx) {
    let pids = ctx.pids.lock().unwrap().clone();
    let mut mem = ctx.mem.lock().unwrap();
    for (label, pid) in pids {
        if let Some((hwm, rss)) = proc_mem(pid) {
            let m = mem.entry(label).or_default();
            m.vm_hwm_kib = m.vm_hwm_kib.max(hwm);
            m.vm_rss_max_kib = m.vm_rss_max_kib.max(rss);
            m.samples += 1;
        }
    }
}

/// The SurrealDB server: this binary as `surreal start` on SurrealKV.
pub(crate) struct DbProc {
    pub(crate) exe: PathBuf,
    pub(crate) port: u16,
    pub(crate) path: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) child: Option<Child>,
}

impl Drop for DbProc {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl DbProc {
    pub(crate) fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub(crate) fn start(&mut self, ctx_label: &str) -> anyhow::Result<u32> {
        let (out, err) = log_file(&self.log)?;
        let child = Command::new(&self.exe)
            .arg0("surreal")
            .args([
                "start",
                "--bind",
                &format!("127.0.0.1:{}", self.port),
                "--user",
                "root",
                "--pass",
                "root",
                "--log",
                "warn",
                "--no-banner",
                "--allow-all",
                &format!("surrealkv://{}", self.path.display()),
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(ROLE_ENV, "surreal")
            .env("SURREAL_ONLINE_VERSION_CHECK", "false")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start the SurrealDB server ({ctx_label})"))?;
        let pid = child.id();
        self.child = Some(child);
        Ok(pid)
    }

    /// Stops the server: SIGTERM (a clean shutdown) or SIGKILL (a crash).
    /// `surreal` waits for its clients on SIGTERM and stops at once on a
    /// second one; a supervisor sends SIGKILL last.
    pub(crate) async fn stop(&mut self, kill: bool) -> String {
        let Some(mut child) = self.child.take() else {
            return "not running".to_owned();
        };
        let started = Instant::now();
        let steps: &[&str] = if kill {
            &["-KILL"]
        } else {
            &["-TERM", "-TERM", "-KILL"]
        };
        for (i, sig) in steps.iter().enumerate() {
            signal(child.id(), sig);
            if let Some(status) = wait_exit(&mut child, Duration::from_secs(10)).await {
                let how = if i == 0 {
                    String::new()
                } else {
                    format!(", after {} signals", i + 1)
                };
                return format!("{status} in {:.1}s{how}", started.elapsed().as_secs_f64());
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        "did not exit even on SIGKILL".to_owned()
    }

    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Waits until the server accepts connections.
    pub(crate) async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let addr = format!("127.0.0.1:{}", self.port);
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.exited() {
                bail!(
                    "the SurrealDB server exited while starting ({status}); see {}",
                    self.log.display()
                );
            }
            if started.elapsed() > limit {
                bail!("the SurrealDB server did not listen within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The `ssp` binary.
pub(crate) struct SspProc {
    pub(crate) bin: PathBuf,
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    pub(crate) db_url: String,
    pub(crate) child: Option<Child>,
}

impl Drop for SspProc {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl SspProc {
    pub(crate) fn start(&mut self, instance: u64) -> anyhow::Result<u32> {
        let (out, err) = log_file(&self.dir.join(format!("ssp-{instance}.log")))?;
        let child = Command::new(&self.bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SPOOKY_LISTEN_ADDR", format!("127.0.0.1:{}", self.port))
            .env("SPOOKY_AUTH_SECRET", SECRET)
            .env("SPOOKY_SURREALDB_URL", &self.db_url)
            .env(
                "SPOOKY_PERSISTENCE_FILE",
                self.dir.join("spooky_state.json"),
            )
            .env("SPOOKY_WORKER_TABLES", TABLES.join(","))
            .env("SPOOKY_SURREALDB_CONNECT_DEADLINE_MS", "120000")
            // SSP_SOAK_LOG: another filter for SSP's log, to trace a violation.
            .env(
                "SPOOKY_LOG",
                std::env::var("SSP_SOAK_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start {}", self.bin.display()))?;
        let pid = child.id();
        self.child = Some(child);
        Ok(pid)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    pub(crate) async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "-KILL");
            let _ = wait_exit(&mut child, Duration::from_secs(10)).await;
        }
    }

    /// SIGTERM, as a supervisor stops it: drain, save, exit.
    pub(crate) async fn term(&mut self) -> Result<(ExitStatus, Duration), String> {
        let Some(mut child) = self.child.take() else {
            return Err("not running".to_owned());
        };
        let started = Instant::now();
        signal(child.id(), "-TERM");
        match wait_exit(&mut child, Duration::from_secs(60)).await {
            Some(status) => Ok((status, started.elapsed())),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err("did not exit within 60s of SIGTERM; killed".to_owned())
            }
        }
    }

    /// Waits until `GET /health` answers 200.
    pub(crate) async fn wait_ready(
        &mut self,
        ctx: &Ctx,
        limit: Duration,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            let health = ctx
                .http
                .get(format!("{}/health", ctx.ssp_base))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.exited() {
                return Err(format!("ssp exited while starting: {status}"));
            }
            if started.elapsed() > limit {
                return Err(format!("ssp not ready within {limit:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
