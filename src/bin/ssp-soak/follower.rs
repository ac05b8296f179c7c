//! The edge follower: reads the edges as a client would and checks that no
//! version a client saw goes back.

use super::*;

pub(crate) type Edges = BTreeMap<(String, String), i64>;

/// The view id of `_spooky_query:<id>`.
pub(crate) fn view_of(r: &sdb::RecordId) -> String {
    match &r.key {
        sdb::RecordIdKey::String(s) => s.clone(),
        other => sdb::ToSql::to_sql(other),
    }
}

pub(crate) fn record_of(r: &sdb::RecordId) -> String {
    record_id_from_surreal(r).map_or_else(|| sdb::ToSql::to_sql(r), |id| id.to_string())
}

pub(crate) fn parse_edges(rows: sdb::Value) -> Result<Edges, String> {
    let sdb::Value::Array(rows) = rows else {
        return Err("edges: not an array".to_owned());
    };
    let mut edges = Edges::new();
    for row in rows.iter() {
        let sdb::Value::Object(o) = row else {
            return Err("edges: a row is not an object".to_owned());
        };
        let (Some(sdb::Value::RecordId(i)), Some(sdb::Value::RecordId(out))) =
            (o.get("in"), o.get("out"))
        else {
            return Err(format!(
                "edges: a row without in/out: {}",
                sdb::ToSql::to_sql(row)
            ));
        };
        let version = match o.get("version") {
            Some(sdb::Value::Number(sdb::Number::Int(v))) => *v,
            other => return Err(format!("edges: version {other:?}")),
        };
        edges.insert((view_of(i), record_of(out)), version);
    }
    Ok(edges)
}

pub(crate) async fn read_edges(conn: &Conn) -> Result<Edges, String> {
    let mut response = conn
        .run(Query::new("SELECT in, out, version FROM _spooky_list_ref"))
        .await
        .map_err(|(_, e)| e)?;
    parse_edges(response.take::<sdb::Value>(0).map_err(|e| e.to_string())?)
}

pub(crate) fn observe(ctx: &Ctx, edges: &Edges) {
    let t = ctx.secs();
    let ssp_instance = ctx.ssp_instance.load(Ordering::Relaxed);
    let db_epoch = ctx.db_epoch.load(Ordering::Relaxed);
    let mut f = ctx.follower.lock().unwrap();
    f.polls_ok += 1;
    f.max_edges = f.max_edges.max(edges.len());
    let mut found = Vec::new();
    let mut per_record: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut present = HashSet::with_capacity(edges.len());
    let mut edge_log = Vec::new();
    for ((view, rec), &version) in edges {
        let key = (view.clone(), rec.clone());
        let span = per_record.entry(rec.as_str()).or_insert((version, version));
        span.0 = span.0.min(version);
        span.1 = span.1.max(version);
        let previous = f.edges.get(&key).copied();
        let was_present = f.present.contains(&key);
        // A state seen before is reported once, not at every poll.
        let changed = !was_present || previous.map(|(v, _)| v) != Some(version);
        let violation = |kind, before, before_view: &str, before_t| Violation {
            t,
            kind,
            view: view.clone(),
            record: rec.clone(),
            before,
            before_view: before_view.to_owned(),
            before_t,
            after: version,
            ssp_instance,
            db_epoch,
            last_event: String::new(),
        };
        match (previous, f.record_max.get(rec.as_str())) {
            (Some((before, before_t)), _) if version < before => {
                found.push(violation("edge", before, view, before_t));
            }
            (_, Some((max, max_view, max_t))) if changed && version < *max => {
                found.push(violation("record", *max, max_view, *max_t));
            }
            _ => {}
        }
        if !was_present {
            f.created += 1;
        } else if changed {
            f.updated += 1;
        }
        if changed {
            let before = previous.map_or("-".to_owned(), |(v, _)| v.to_string());
            edge_log.push(format!("{t:.2} {view} {rec} {before} -> {version}"));
        }
        f.edges.insert(key.clone(), (version, t));
        present.insert(key);
    }
    for ((view, rec), &version) in edges {
        let entry = f
            .record_max
            .entry(rec.clone())
            .or_insert_with(|| (version, view.clone(), t));
        if version > entry.0 {
            *entry = (version, view.clone(), t);
        }
    }
    for (view, rec) in f.present.difference(&present) {
        edge_log.push(format!("{t:.2} {view} {rec} gone"));
    }
    let gone = f.present.difference(&present).count() as u64;
    f.deleted += gone;
    f.present = present;
    if let Some(log) = &ctx.edge_log {
        use std::io::Write as _;
        let mut log = log.lock().unwrap();
        for line in edge_log {
            let _ = writeln!(log, "{line}");
        }
        let _ = log.flush();
    }
    let skewed: Vec<String> = per_record
        .iter()
        .filter(|(_, (lo, hi))| lo != hi)
        .map(|(rec, (lo, hi))| format!("{rec}: {lo}..{hi}"))
        .collect();
    if !skewed.is_empty() {
        f.skewed_polls += 1;
        if f.skew_samples.len() < 10 {
            f.skew_samples.push(format!(
                "t={t:.1}s ssp#{ssp_instance}: {}",
                skewed.join(", ")
            ));
        }
    }
    if found.is_empty() {
        return;
    }
    drop(f);
    let last_event = ctx.last_event();
    let mut f = ctx.follower.lock().unwrap();
    for mut v in found {
        v.last_event = last_event.clone();
        f.violations += 1;
        *f.violations_after.entry(v.last_event.clone()).or_default() += 1;
        if f.samples.len() < 500 {
            println!(
                "[{t:7.1}s] VERSION WENT DOWN ({}): view {} record {}: {} (seen in {} at {:.1}s) -> {} \
                 [ssp#{} db#{}; last event: {}]",
                v.kind,
                v.view,
                v.record,
                v.before,
                v.before_view,
                v.before_t,
                v.after,
                v.ssp_instance,
                v.db_epoch,
                v.last_event
            );
            f.samples.push(v);
        }
    }
}

pub(crate) async fn follower_task(ctx: Arc<Ctx>, until: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Bounded: the soak's duration plus its end phase, at most.
    while !until.load(Ordering::Relaxed) {
        tick.tick().await;
        match read_edges(&ctx.checker).await {
            Ok(edges) => {
                ctx.stats.ok("edge poll");
                observe(&ctx, &edges);
            }
            Err(e) => {
                ctx.follower.lock().unwrap().polls_failed += 1;
                ctx.stats.fail("edge poll", "failed", &e);
            }
        }
    }
}

pub(crate) async fn sampler_task(ctx: Arc<Ctx>, until: Arc<AtomicBool>) {
    while !until.load(Ordering::Relaxed) {
        sample_mem(&ctx);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
