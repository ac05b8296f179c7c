//! The run: starting the processes, the kills and restarts, and the report.

use super::*;

#[derive(Serialize)]
pub(crate) struct SspInstance {
    pub(crate) instance: u64,
    pub(crate) started_at_s: f64,
    pub(crate) ready_after_s: Option<f64>,
    pub(crate) ended: String,
    pub(crate) log: LogSummary,
}

/// What an SSP log says: ERROR and WARN lines (tower-http's line for each
/// 503 apart, since outages make many), and the WARN messages by kind.
pub(crate) fn scan_log(path: &Path) -> LogSummary {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut summary = LogSummary::default();
    for line in text.lines() {
        if line.contains("tower_http") {
            summary.http_failure_lines += 1;
        } else if line.contains(" ERROR ") || line.contains("panicked") {
            summary.error_lines += 1;
            if summary.first_errors.len() < 5 {
                summary.first_errors.push(line.chars().take(400).collect());
            }
        } else if let Some((_, rest)) = line.split_once(" WARN ") {
            summary.warn_lines += 1;
            // The message without its fields: target and text up to the first `key=`.
            let message: String = rest
                .split_whitespace()
                .take_while(|w| !w.contains('='))
                .collect::<Vec<_>>()
                .join(" ");
            *summary.warnings.entry(message).or_default() += 1;
        }
    }
    summary
}

#[derive(Serialize, Default)]
pub(crate) struct LogSummary {
    pub(crate) error_lines: usize,
    pub(crate) warn_lines: usize,
    /// tower-http's ERROR line for each response that failed (503s).
    pub(crate) http_failure_lines: usize,
    pub(crate) first_errors: Vec<String>,
    pub(crate) warnings: BTreeMap<String, usize>,
}

pub(crate) fn db_settings(url: &str) -> anyhow::Result<DbSettings> {
    let env: HashMap<String, String> = [
        ("SPOOKY_SURREALDB_URL", url),
        ("SPOOKY_AUTH_SECRET", SECRET),
        ("SPOOKY_SURREALDB_CALL_TIMEOUT_MS", "3000"),
        ("SPOOKY_SURREALDB_CONNECT_DEADLINE_MS", "30000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Ok(Settings::load_from(None, false, &env)
        .map_err(|e| anyhow!("settings: {e}"))?
        .surrealdb)
}

/// When SSP is killed: the `i`-th of `n`, spread over the run and moved to the
/// middle of a database period, so that a kill and a database restart do not
/// blur into one event.
pub(crate) fn kill_times(duration: Duration, period: Duration, n: u32) -> Vec<Duration> {
    let (d, p) = (duration.as_secs_f64(), period.as_secs_f64());
    (1..=n)
        .map(|i| {
            let t = d * 0.35 * f64::from(i);
            let t = (t / p).floor() * p + p / 2.0;
            Duration::from_secs_f64(t.min(d - 20.0).max(1.0))
        })
        .collect()
}

/// Takes the current SSP process off the memory sampler, after a last sample.
pub(crate) fn forget_ssp_pid(ctx: &Ctx) {
    let instance = ctx.ssp_instance.load(Ordering::Relaxed);
    sample_mem(ctx);
    ctx.pids.lock().unwrap().remove(&format!("ssp#{instance}"));
}

pub(crate) async fn soak(o: Options) -> anyhow::Result<bool> {
    let seed = o.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let duration = Duration::from_secs_f64(o.minutes * 60.0);
    let period = Duration::from_secs(o.db_period_secs.max(5));
    let down = Duration::from_secs(o.db_down_secs);
    let exe = std::env::current_exe().context("where am I")?;
    let ssp_bin = o.ssp.clone().unwrap_or_else(|| exe.with_file_name("ssp"));
    if !ssp_bin.is_file() {
        bail!(
            "no ssp binary at {} (build it: cargo build --bin ssp, or pass --ssp)",
            ssp_bin.display()
        );
    }
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ssp-soak-{}-{seed}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    println!(
        "ssp-soak: {} min, seed {seed}, database restart every {}s (down {}s), {} SSP kills, \
         {} writes/s; run directory {}",
        o.minutes,
        period.as_secs(),
        down.as_secs(),
        o.ssp_kills,
        o.rate,
        dir.display()
    );

    let mut db = DbProc {
        exe,
        port: free_port()?,
        path: dir.join("surreal"),
        log: dir.join("surreal.log"),
        child: None,
    };
    let pid = db.start("first start")?;
    db.wait_ready(Duration::from_secs(120)).await?;
    let settings = db_settings(&db.url())?;
    let writers = Conn::connect(settings.clone()).await?;
    let checker = Conn::connect(settings).await?;
    let ssp_port = free_port()?;
    let edge_log = match &o.edge_log {
        Some(path) => Some(Mutex::new(std::io::BufWriter::new(
            File::create(path).with_context(|| format!("create {}", path.display()))?,
        ))),
        None => None,
    };
    let ctx = Arc::new(Ctx {
        t0: Instant::now(),
        stop: AtomicBool::new(false),
        stats: Stats::default(),
        model: Model::new(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?,
        ssp_base: format!("http://127.0.0.1:{ssp_port}"),
        writers,
        checker,
        ssp_instance: AtomicU64::new(0),
        db_epoch: AtomicU64::new(1),
        pids: Mutex::new(BTreeMap::from([("db#1".to_owned(), pid)])),
        mem: Mutex::new(BTreeMap::new()),
        events: Mutex::new(Vec::new()),
        views: Mutex::new(BTreeMap::new()),
        lifecycle: Mutex::new(Vec::new()),
        follower: Mutex::new(Follower::default()),
        seed,
        reregister_now: AtomicBool::new(false),
        edge_log,
    });
    ctx.event(format!("database db#1 up at {}", db.url()));
    let mut rng = StdRng::seed_from_u64(seed);
    let owned = seed_data(&ctx, &mut rng).await?;
    ctx.event(format!(
        "seeded {} users, {} threads, {} comments",
        TARGET[0] * WRITERS,
        TARGET[1] * WRITERS,
        TARGET[2] * WRITERS
    ));

    let mut ssp = SspProc {
        bin: ssp_bin.clone(),
        port: ssp_port,
        dir: dir.clone(),
        db_url: db.url(),
        child: None,
    };
    let mut instances: Vec<SspInstance> = Vec::new();
    let start_ssp = |ssp: &mut SspProc, instances: &mut Vec<SspInstance>| -> anyhow::Result<()> {
        let instance = ctx.ssp_instance.fetch_add(1, Ordering::Relaxed) + 1;
        let pid = ssp.start(instance)?;
        ctx.pids
            .lock()
            .unwrap()
            .insert(format!("ssp#{instance}"), pid);
        instances.push(SspInstance {
            instance,
            started_at_s: ctx.secs(),
            ready_after_s: None,
            ended: "running".to_owned(),
            log: LogSummary::default(),
        });
        Ok(())
    };
    start_ssp(&mut ssp, &mut instances)?;
    match ssp.wait_ready(&ctx, Duration::from_secs(180)).await {
        Ok(after) => {
            instances.last_mut().unwrap().ready_after_s = Some(after.as_secs_f64());
            ctx.event(format!("ssp#1 ready after {:.1}s", after.as_secs_f64()));
        }
        Err(e) => bail!(
            "SSP did not start: {e}; see {}",
            dir.join("ssp-1.log").display()
        ),
    }

    let end = Instant::now() + duration;
    let stop_polls = Arc::new(AtomicBool::new(false));
    let follower = tokio::spawn(follower_task(Arc::clone(&ctx), Arc::clone(&stop_polls)));
    let sampler = tokio::spawn(sampler_task(Arc::clone(&ctx), Arc::clone(&stop_polls)));
    let mut load = Vec::new();
    load.push(tokio::spawn(registrar_task(
        Arc::clone(&ctx),
        seed ^ 0x5eed,
        end,
    )));
    load.push(tokio::spawn(heartbeat_task(Arc::clone(&ctx), end)));
    let period_per_writer = Duration::from_secs_f64(WRITERS as f64 / f64::from(o.rate.max(1)));
    for (index, owned) in owned.into_iter().enumerate() {
        let writer = Writer {
            ingest: index % 2 == 1,
            owned,
            rng: StdRng::seed_from_u64(seed.wrapping_add(index as u64 + 1)),
        };
        load.push(tokio::spawn(writer_task(
            Arc::clone(&ctx),
            writer,
            period_per_writer,
            end,
        )));
    }

    // The schedule: database restarts every period, SSP kills in between.
    let t0 = Instant::now();
    let mut db_restarts: Vec<Instant> = (1..)
        .map(|k| t0 + period * k)
        .take_while(|t| *t + down + Duration::from_secs(15) < end)
        .collect();
    db_restarts.reverse();
    let mut kills: Vec<Instant> = kill_times(duration, period, o.ssp_kills)
        .into_iter()
        .map(|d| t0 + d)
        .collect();
    kills.reverse();
    let mut db_stops = (0u32, 0u32);
    let mut db_ready_after = Vec::new();
    let mut crashes = Vec::new();
    let mut kill_count = 0;
    let mut restart_failures = Vec::new();
    let mut rereg_flagged = false;
    while Instant::now() < end {
        if let Some(status) = ssp.exited() {
            let instance = ctx.ssp_instance.load(Ordering::Relaxed);
            forget_ssp_pid(&ctx);
            crashes.push(format!("ssp#{instance} exited by itself: {status}"));
            ctx.event(format!(
                "ssp#{instance} EXITED BY ITSELF ({status}); starting it again"
            ));
            if let Some(i) = instances.last_mut() {
                i.ended = format!("exited by itself: {status}");
            }
            start_ssp(&mut ssp, &mut instances)?;
        }
        if let Some(status) = db.exited() {
            crashes.push(format!("database exited by itself: {status}"));
            ctx.event(format!(
                "database EXITED BY ITSELF ({status}); starting it again"
            ));
            let epoch = ctx.db_epoch.fetch_add(1, Ordering::Relaxed) + 1;
            let pid = db.start("after a crash")?;
            ctx.pids.lock().unwrap().insert(format!("db#{epoch}"), pid);
        }
        let now = Instant::now();
        if db_restarts.last().is_some_and(|t| *t <= now) {
            db_restarts.pop();
            let kill = (db_stops.0 + db_stops.1) % 2 == 1;
            let epoch = ctx.db_epoch.load(Ordering::Relaxed);
            sample_mem(&ctx);
            ctx.pids.lock().unwrap().remove(&format!("db#{epoch}"));
            let how = db.stop(kill).await;
            if kill {
                db_stops.1 += 1;
            } else {
                db_stops.0 += 1;
            }
            ctx.event(format!(
                "database db#{epoch} stopped with {} ({how})",
                if kill { "SIGKILL" } else { "SIGTERM" }
            ));
            tokio::time::sleep(down).await;
            let epoch = ctx.db_epoch.fetch_add(1, Ordering::Relaxed) + 1;
            let pid = db.start("restart")?;
            ctx.pids.lock().unwrap().insert(format!("db#{epoch}"), pid);
            // A restart that ran late does not make the next ones bunch up.
            let soonest = Instant::now() + period / 2;
            db_restarts.retain(|t| *t >= soonest);
            match db.wait_ready(Duration::from_secs(120)).await {
                Ok(after) => {
                    db_ready_after.push(after.as_secs_f64());
                    ctx.event(format!(
                        "database db#{epoch} up after {:.1}s",
                        after.as_secs_f64()
                    ));
                }
                Err(e) => {
                    restart_failures.push(format!("db#{epoch}: {e}"));
                    ctx.event(format!("database db#{epoch} FAILED to start: {e}"));
                }
            }
            continue;
        }
        if kills
            .last()
            .is_some_and(|t| *t <= now + Duration::from_secs(3))
            && !rereg_flagged
        {
            ctx.reregister_now.store(true, Ordering::Relaxed);
            rereg_flagged = true;
        }
        if kills.last().is_some_and(|t| *t <= now) {
            rereg_flagged = false;
            kills.pop();
            let instance = ctx.ssp_instance.load(Ordering::Relaxed);
            forget_ssp_pid(&ctx);
            ssp.kill9().await;
            kill_count += 1;
            if let Some(i) = instances.last_mut() {
                i.ended = "kill -9".to_owned();
            }
            ctx.event(format!("ssp#{instance} killed with SIGKILL"));
            tokio::time::sleep(Duration::from_secs(1)).await;
            start_ssp(&mut ssp, &mut instances)?;
            let instance = instance + 1;
            match ssp.wait_ready(&ctx, Duration::from_secs(180)).await {
                Ok(after) => {
                    instances.last_mut().unwrap().ready_after_s = Some(after.as_secs_f64());
                    ctx.event(format!(
                        "ssp#{instance} ready after {:.1}s",
                        after.as_secs_f64()
                    ));
                }
                Err(e) => {
                    restart_failures.push(format!("ssp#{instance}: {e}"));
                    ctx.event(format!("ssp#{instance} FAILED to become ready: {e}"));
                }
            }
            continue;
        }
        let next = [db_restarts.last(), kills.last(), Some(&end)]
            .into_iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or(end);
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(500));
        tokio::time::sleep(wait).await;
    }

    // ----- the end ----------------------------------------------------------
    ctx.stop.store(true, Ordering::Relaxed);
    ctx.event("load stopped".to_owned());
    for task in load {
        let _ = tokio::time::timeout(Duration::from_secs(60), task).await;
    }
    let load_secs = ctx.secs();
    if ssp.pid().is_none() {
        start_ssp(&mut ssp, &mut instances)?;
    }
    let ready = ssp.wait_ready(&ctx, Duration::from_secs(180)).await;
    if let Err(e) = &ready {
        restart_failures.push(format!("at the end: {e}"));
    }
    let (settled, settle_secs) = settle(&ctx, Duration::from_secs(120)).await;
    ctx.event(format!(
        "{} after {settle_secs:.1}s",
        if settled { "settled" } else { "did NOT settle" }
    ));
    let mut checks = FinalChecks::default();
    api_check(&ctx, &mut checks.api_mismatches).await;
    let before_stop = read_edges(&ctx.checker).await.unwrap_or_default();
    let freeze = Utc::now();
    let instance = ctx.ssp_instance.load(Ordering::Relaxed);
    forget_ssp_pid(&ctx);
    let stopped = ssp.term().await;
    let graceful = match &stopped {
        Ok((status, took)) => {
            ctx.event(format!(
                "ssp#{instance} stopped with SIGTERM: {status} after {:.1}s",
                took.as_secs_f64()
            ));
            status.success()
        }
        Err(e) => {
            ctx.event(format!("ssp#{instance} SIGTERM: {e}"));
            false
        }
    };
    if let Some(i) = instances.last_mut() {
        i.ended = match &stopped {
            Ok((status, took)) => format!("SIGTERM: {status} after {:.1}s", took.as_secs_f64()),
            Err(e) => format!("SIGTERM: {e}"),
        };
    }
    // One last look by the follower, then it stops.
    if let Ok(edges) = read_edges(&ctx.checker).await {
        observe(&ctx, &edges);
        if edges != before_stop {
            // Not a failure: a TTL sweep may run during the stop.
            checks.notes.push(format!(
                "the edges changed during the graceful stop: {} before, {} after",
                before_stop.len(),
                edges.len()
            ));
        }
    }
    stop_polls.store(true, Ordering::Relaxed);
    let _ = follower.await;
    let _ = sampler.await;
    if let Err(e) = final_checks(&ctx, freeze, &mut checks).await {
        checks.evaluation_errors.push(e.to_string());
    }
    checks
        .lifecycle
        .extend(ctx.lifecycle.lock().unwrap().iter().cloned());
    let _ = db.stop(false).await;
    for i in &mut instances {
        i.log = scan_log(&dir.join(format!("ssp-{}.log", i.instance)));
    }

    // ----- the report -------------------------------------------------------
    let follower = ctx.follower.lock().unwrap();
    let mem = ctx.mem.lock().unwrap().clone();
    let ssp_peak = mem
        .iter()
        .filter(|(k, _)| k.starts_with("ssp#"))
        .map(|(_, m)| m.vm_hwm_kib.max(m.vm_rss_max_kib))
        .max()
        .unwrap_or(0);
    let db_peak = mem
        .iter()
        .filter(|(k, _)| k.starts_with("db#"))
        .map(|(_, m)| m.vm_hwm_kib.max(m.vm_rss_max_kib))
        .max()
        .unwrap_or(0);
    let views = ctx.views.lock().unwrap().clone();
    let count_life = |life: Life| views.values().filter(|v| v.life == life).count();
    let failures: Vec<String> = [
        (follower.violations > 0).then(|| format!("{} version violations", follower.violations)),
        (!checks.edge_mismatches.is_empty()).then(|| {
            format!(
                "{} views whose edges differ from SurrealDB",
                checks.edge_mismatches.len()
            )
        }),
        (!checks.orphan_edges.is_empty())
            .then(|| format!("{} orphan edges", checks.orphan_edges.len())),
        (!checks.version_skew.is_empty()).then(|| {
            format!(
                "{} records with edges of different versions",
                checks.version_skew.len()
            )
        }),
        (!checks.api_mismatches.is_empty())
            .then(|| format!("{} GET /view disagreements", checks.api_mismatches.len())),
        (!checks.lifecycle.is_empty())
            .then(|| format!("{} lifecycle failures", checks.lifecycle.len())),
        (!checks.evaluation_errors.is_empty())
            .then(|| format!("{} evaluation errors", checks.evaluation_errors.len())),
        (!settled).then(|| "SSP did not settle".to_owned()),
        (!graceful).then(|| "SSP did not stop cleanly on SIGTERM".to_owned()),
        (!crashes.is_empty()).then(|| format!("{} unexpected exits", crashes.len())),
        (!restart_failures.is_empty())
            .then(|| format!("{} failed restarts", restart_failures.len())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let passed = failures.is_empty();
    let ops = ctx.stats.ops.lock().unwrap().clone();
    let report = json!({
        "passed": passed,
        "failures": failures,
        "seed": ctx.seed,
        "options": o,
        "finished_at": Utc::now().to_rfc3339(),
        "duration_s": {"load": load_secs, "total": ctx.secs(), "settle": settle_secs},
        "ops": ops,
        "database": {
            "restarts": db_stops.0 + db_stops.1,
            "stopped_with_sigterm": db_stops.0,
            "stopped_with_sigkill": db_stops.1,
            "up_after_s": db_ready_after,
            "peak_rss_kib": db_peak,
            "connections_replaced": ctx.writers.replaced.load(Ordering::Relaxed)
                + ctx.checker.replaced.load(Ordering::Relaxed),
        },
        "ssp": {
            "kills": kill_count,
            "restarts": instances.len().saturating_sub(1),
            "unexpected_exits": crashes,
            "restart_failures": restart_failures,
            "peak_rss_kib": ssp_peak,
            "instances": instances,
        },
        "memory": mem,
        "view_book": views,
        "views": {
            "registered": views.len(),
            "long": count_life(Life::Long),
            "kept_alive": count_life(Life::KeptAlive),
            "churn": count_life(Life::Churn),
            "expiring": count_life(Life::Expiring),
            "in_db_at_end": checks.views_in_db,
            "edges_at_end": checks.edges_in_db,
        },
        "follower": {
            "polls_ok": follower.polls_ok,
            "polls_failed": follower.polls_failed,
            "edges_created": follower.created,
            "edges_updated": follower.updated,
            "edges_deleted": follower.deleted,
            "max_edges": follower.max_edges,
            "version_violations": follower.violations,
            "version_violations_after": follower.violations_after,
            "violations": follower.samples,
            "polls_with_version_skew": follower.skewed_polls,
            "skew_samples": follower.skew_samples,
        },
        "checks": checks,
        "events": ctx.events.lock().unwrap().iter().map(|(t, e)| format!("{t:.1}s {e}")).collect::<Vec<_>>(),
        "run_dir": dir.display().to_string(),
    });
    if let Some(parent) = o.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&o.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("write {}", o.out.display()))?;

    println!();
    println!("===== ssp-soak report (seed {seed}) =====");
    println!("load {load_secs:.0}s, total {:.0}s", ctx.secs());
    println!("operations (ok / failed):");
    for (kind, count) in &ops {
        let why: Vec<String> = count
            .errors
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        println!(
            "  {kind:<22} {:>7} / {:<6} {}",
            count.ok,
            count.failed,
            why.join(", ")
        );
    }
    println!(
        "database: {} restarts ({} SIGTERM, {} SIGKILL), up again after {:?} s",
        db_stops.0 + db_stops.1,
        db_stops.0,
        db_stops.1,
        db_ready_after
            .iter()
            .map(|s| (s * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    println!(
        "ssp: {kill_count} kill -9, {} processes; peak RSS {:.1} MiB (database {:.1} MiB)",
        instances.len(),
        ssp_peak as f64 / 1024.0,
        db_peak as f64 / 1024.0
    );
    for (label, m) in &mem {
        println!(
            "  {label:<7} VmHWM {:>7.1} MiB  max VmRSS {:>7.1} MiB",
            m.vm_hwm_kib as f64 / 1024.0,
            m.vm_rss_max_kib as f64 / 1024.0
        );
    }
    for i in &instances {
        println!(
            "  ssp#{}: started {:.1}s, ready after {:?}s, ended: {}; log: {} ERROR, {} WARN lines",
            i.instance,
            i.started_at_s,
            i.ready_after_s.map(|s| (s * 10.0).round() / 10.0),
            i.ended,
            i.log.error_lines,
            i.log.warn_lines
        );
        for (message, n) in &i.log.warnings {
            println!("      WARN x{n}: {message}");
        }
    }
    println!(
        "views: {} registered ({} long, {} kept alive, {} churned, {} expiring); at the end {} views, {} edges",
        views.len(),
        count_life(Life::Long),
        count_life(Life::KeptAlive),
        count_life(Life::Churn),
        count_life(Life::Expiring),
        checks.views_in_db,
        checks.edges_in_db
    );
    println!(
        "edge follower: {} polls ({} failed), edges created {}, updated {}, deleted {}; \
         version violations {}; polls with skew {}",
        follower.polls_ok + follower.polls_failed,
        follower.polls_failed,
        follower.created,
        follower.updated,
        follower.deleted,
        follower.violations,
        follower.skewed_polls
    );
    for (event, n) in &follower.violations_after {
        println!("  {n} version violations after: {event}");
    }
    println!(
        "final: {} views compared, {} mismatched, {} orphan edges, {} skewed records, \
         {} GET /view disagreements, {} lifecycle failures, {} evaluation errors",
        checks.views_compared,
        checks.edge_mismatches.len(),
        checks.orphan_edges.len(),
        checks.version_skew.len(),
        checks.api_mismatches.len(),
        checks.lifecycle.len(),
        checks.evaluation_errors.len()
    );
    for m in checks.edge_mismatches.iter().take(10) {
        println!(
            "  MISMATCH {}: {} edges, {} expected; missing {:?}, extra {:?}  [{} {}]",
            m.view, m.edges, m.expected, m.missing, m.extra, m.sql, m.params
        );
    }
    for line in checks
        .orphan_edges
        .iter()
        .chain(&checks.version_skew)
        .chain(&checks.api_mismatches)
        .chain(&checks.lifecycle)
        .chain(&checks.evaluation_errors)
        .chain(&checks.notes)
        .take(30)
    {
        println!("  {line}");
    }
    println!("report: {}", o.out.display());
    if passed {
        println!("PASSED");
        if !o.keep && o.dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    } else {
        println!("FAILED: {}", failures_line(&report));
        println!("run directory kept: {}", dir.display());
    }
    Ok(passed)
}

pub(crate) fn failures_line(report: &Json) -> String {
    report["failures"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}
