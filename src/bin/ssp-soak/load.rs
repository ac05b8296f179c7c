//! The load: writers, the registrar and the heartbeats.

use super::*;

pub(crate) struct Change {
    pub(crate) table: usize,
    pub(crate) op: &'static str,
    pub(crate) key: i64,
    pub(crate) content: Option<Content>,
}

/// One writer: its own records (so that no two writers race on one record),
/// written directly or written and then sent to `/ingest`.
pub(crate) struct Writer {
    pub(crate) ingest: bool,
    pub(crate) owned: [BTreeMap<i64, Content>; 3],
    pub(crate) rng: StdRng,
}

impl Writer {
    pub(crate) fn plan_one(&mut self, ctx: &Ctx, taken: &HashSet<(usize, i64)>) -> Option<Change> {
        let rng = &mut self.rng;
        let r: f64 = rng.random();
        let table = if r < 0.2 {
            0
        } else if r < 0.55 {
            1
        } else {
            2
        };
        let n = self.owned[table].len();
        let target = TARGET[table];
        let (p_create, p_delete) = if n < target * 8 / 10 {
            (0.6, 0.1)
        } else if n > target * 12 / 10 {
            (0.1, 0.5)
        } else {
            (0.25, 0.2)
        };
        let r: f64 = rng.random();
        let existing: Vec<i64> = self.owned[table]
            .keys()
            .copied()
            .filter(|k| !taken.contains(&(table, *k)))
            .collect();
        if r < p_create || existing.is_empty() {
            let key = ctx.model.fresh_key(table);
            let content = ctx.model.content(table, key, rng);
            return Some(Change {
                table,
                op: "CREATE",
                key,
                content: Some(content),
            });
        }
        let key = *existing.choose(rng)?;
        if r < p_create + p_delete {
            return Some(Change {
                table,
                op: "DELETE",
                key,
                content: None,
            });
        }
        let content = ctx.model.update(table, &self.owned[table][&key], rng);
        Some(Change {
            table,
            op: "UPDATE",
            key,
            content: Some(content),
        })
    }

    pub(crate) async fn step(&mut self, ctx: &Ctx) {
        let batch = if self.ingest && self.rng.random_bool(0.1) {
            self.rng.random_range(2..=4)
        } else {
            1
        };
        let mut taken = HashSet::new();
        let mut changes = Vec::new();
        for _ in 0..batch {
            if let Some(change) = self.plan_one(ctx, &taken) {
                taken.insert((change.table, change.key));
                changes.push(change);
            }
        }
        if changes.is_empty() {
            return;
        }
        let statements: Vec<String> = changes
            .iter()
            .enumerate()
            .map(|(i, change)| match change.op {
                "CREATE" => format!("CREATE $id{i} CONTENT $c{i}"),
                "UPDATE" => format!("UPDATE $id{i} CONTENT $c{i}"),
                _ => format!("DELETE $id{i}"),
            })
            .collect();
        let mut query = if statements.len() > 1 {
            let mut query = Query::transaction();
            for statement in statements {
                query.push(statement);
            }
            query
        } else {
            Query::new(statements.into_iter().next().unwrap_or_default())
        };
        for (i, change) in changes.iter().enumerate() {
            query.set(format!("id{i}"), rid(change.table, change.key));
            if let Some(content) = &change.content {
                query.set(format!("c{i}"), content.to_surreal());
            }
        }
        let kind = match (self.ingest, changes.first().map(|c| c.op)) {
            (true, _) => "ingest: db write",
            (false, Some("CREATE")) => "direct: create",
            (false, Some("UPDATE")) => "direct: update",
            _ => "direct: delete",
        };
        let written = ctx.writers.run(query).await;
        for change in &changes {
            let owned = &mut self.owned[change.table];
            match (change.op, written.is_ok()) {
                ("CREATE", true) => {
                    owned.insert(change.key, change.content.clone().unwrap());
                    ctx.model.created(change.table, change.key);
                }
                ("UPDATE", true) => {
                    owned.insert(change.key, change.content.clone().unwrap());
                }
                // A delete that failed may still have committed: never touch
                // that id again, or it could come back.
                ("DELETE", _) => {
                    owned.remove(&change.key);
                    ctx.model.deleted(change.table, change.key);
                }
                _ => {}
            }
        }
        if let Err((class, detail)) = written {
            ctx.stats.fail(kind, &class, &detail);
            return;
        }
        ctx.stats.ok(kind);
        if !self.ingest {
            return;
        }
        let body: Vec<Json> = changes
            .iter()
            .map(|c| {
                let mut change = json!({
                    "table": TABLES[c.table],
                    "op": c.op,
                    "id": format!("{}:{}", TABLES[c.table], c.key),
                });
                if let Some(content) = &c.content {
                    change["record"] = content.to_json();
                }
                change
            })
            .collect();
        let (kind, body) = if body.len() == 1 {
            ("ingest: post", body.into_iter().next().unwrap())
        } else {
            ("ingest: post batch", Json::Array(body))
        };
        let answer = post(ctx, "/ingest", &body).await;
        record(ctx, kind, &answer);
    }
}

pub(crate) async fn writer_task(ctx: Arc<Ctx>, mut writer: Writer, period: Duration, end: Instant) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !ctx.stopping() && Instant::now() < end {
        tick.tick().await;
        writer.step(&ctx).await;
    }
}

/// Initial data, so that views start with members; split among the writers.
pub(crate) async fn seed_data(
    ctx: &Ctx,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<[BTreeMap<i64, Content>; 3]>> {
    let mut owned: Vec<[BTreeMap<i64, Content>; 3]> =
        (0..WRITERS).map(|_| Default::default()).collect();
    for table in 0..3 {
        let count = TARGET[table] * WRITERS;
        let mut keys: Vec<i64> = (0..count).map(|_| ctx.model.fresh_key(table)).collect();
        while !keys.is_empty() {
            let chunk: Vec<i64> = keys.drain(..keys.len().min(25)).collect();
            let mut query = Query::transaction();
            let mut contents = Vec::new();
            for (i, key) in chunk.iter().enumerate() {
                let content = ctx.model.content(table, *key, rng);
                query.push(format!("CREATE $id{i} CONTENT $c{i}"));
                query.set(format!("id{i}"), rid(table, *key));
                query.set(format!("c{i}"), content.to_surreal());
                contents.push(content);
            }
            ctx.writers
                .run(query)
                .await
                .map_err(|(_, e)| anyhow!("seeding {}: {e}", TABLES[table]))?;
            for (key, content) in chunk.into_iter().zip(contents) {
                ctx.model.created(table, key);
                owned[key as usize % WRITERS][table].insert(key, content);
            }
        }
    }
    Ok(owned)
}

pub(crate) async fn register_with(ctx: &Ctx, id: &str, kind: &'static str, body: Json) {
    let sent = ctx.secs();
    let answer = post(ctx, "/view/register", &body).await;
    let ok = record(ctx, kind, &answer);
    let mut views = ctx.views.lock().unwrap();
    let Some(view) = views.get_mut(id) else {
        return;
    };
    view.history.push(format!(
        "{sent:.1}s {kind} {} -> {} at {:.1}s{}",
        body["params"],
        answer.class(),
        ctx.secs(),
        match &answer {
            Answer::Ok(b) => format!(" lastActiveAt {}", b["lastActiveAt"]),
            _ => String::new(),
        }
    ));
    if ok {
        view.acked = Some(body["params"].clone());
        view.uncertain = false;
        if let Answer::Ok(b) = &answer {
            view.last_active = b["lastActiveAt"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc));
        }
    } else {
        view.uncertain = true;
    }
}

/// A new view in the book; returns its id and registration body.
pub(crate) fn new_view(
    ctx: &Ctx,
    rng: &mut StdRng,
    n: &mut u64,
    shape: Shape,
    life: Life,
) -> (String, Json) {
    *n += 1;
    let ttl_secs = match life {
        Life::Long | Life::Churn => 3600,
        Life::KeptAlive => 20,
        Life::Expiring => rng.random_range(20..=40),
    };
    let id = format!("{}_{}", life.name(), *n);
    let client_id = format!("client-{}", *n % 7);
    let now = Instant::now();
    let view = ViewRec {
        id: id.clone(),
        shape,
        life,
        ttl_secs,
        client_id: client_id.clone(),
        acked: None,
        uncertain: false,
        last_active: None,
        unregistered: false,
        unregister_failed: false,
        next_heartbeat: match life {
            Life::Long => Some(now + Duration::from_secs(20)),
            Life::KeptAlive => Some(now + Duration::from_secs(5)),
            _ => None,
        },
        unregister_at: (life == Life::Churn)
            .then(|| now + Duration::from_secs(rng.random_range(10..60))),
        reregister_at: (life == Life::Churn && rng.random_bool(0.3))
            .then(|| now + Duration::from_secs(rng.random_range(4..10))),
        history: Vec::new(),
    };
    let params = shape.params(&ctx.model, rng);
    ctx.views.lock().unwrap().insert(id.clone(), view);
    let body = json!({
        "id": id,
        "sql": shape.sql(),
        "params": params,
        "clientId": client_id,
        "ttl": format!("{ttl_secs}s"),
    });
    (id, body)
}

/// Registrations, re-registrations and unregistrations.
pub(crate) async fn registrar_task(ctx: Arc<Ctx>, seed: u64, end: Instant) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    let mut next_churn = Instant::now();
    let mut next_expiring = Instant::now();
    let mut next_rereg = Instant::now() + Duration::from_secs(20);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    // The long-lived views: every shape once, and a few kept alive.
    for shape in SHAPES {
        let (id, body) = new_view(&ctx, &mut rng, &mut n, shape, Life::Long);
        register_with(&ctx, &id, "register", body).await;
    }
    for shape in [
        Shape::ByAuthor,
        Shape::Tagged,
        Shape::ActiveUsers,
        Shape::ThreadComments,
    ] {
        let (id, body) = new_view(&ctx, &mut rng, &mut n, shape, Life::KeptAlive);
        register_with(&ctx, &id, "register", body).await;
    }
    while !ctx.stopping() && Instant::now() < end {
        tick.tick().await;
        let now = Instant::now();
        let (churning, expiring) = {
            let views = ctx.views.lock().unwrap();
            let alive = |life| {
                views
                    .values()
                    .filter(|v| v.life == life && !v.unregistered && !v.must_be_gone(Utc::now()))
                    .count()
            };
            (alive(Life::Churn), alive(Life::Expiring))
        };
        if now >= next_churn && churning < 15 {
            next_churn = now + Duration::from_secs(3);
            let shape = *SHAPES.choose(&mut rng).unwrap();
            let (id, body) = new_view(&ctx, &mut rng, &mut n, shape, Life::Churn);
            register_with(&ctx, &id, "register", body).await;
            continue;
        }
        if now >= next_expiring && expiring < 10 {
            next_expiring = now + Duration::from_secs(6);
            let shape = *SHAPES.choose(&mut rng).unwrap();
            let (id, body) = new_view(&ctx, &mut rng, &mut n, shape, Life::Expiring);
            register_with(&ctx, &id, "register", body).await;
            continue;
        }
        // Re-register with new params: a long view now and then, and the
        // churned views that planned it.
        let due: Option<(String, Shape)> = {
            let mut views = ctx.views.lock().unwrap();
            let long: Vec<String> = views
                .values()
                // Views with params, so that a re-registration changes them.
                .filter(|v| v.life == Life::Long && v.shape != Shape::TopWithAuthor)
                .map(|v| v.id.clone())
                .collect();
            if now >= next_rereg || ctx.reregister_now.swap(false, Ordering::Relaxed) {
                next_rereg = now + Duration::from_secs(15);
                long.choose(&mut rng)
                    .map(|id| (id.clone(), views[id].shape))
            } else {
                views
                    .values_mut()
                    .find(|v| v.reregister_at.is_some_and(|at| at <= now) && !v.unregistered)
                    .map(|v| {
                        v.reregister_at = None;
                        (v.id.clone(), v.shape)
                    })
            }
        };
        if let Some((id, shape)) = due {
            let body = {
                let views = ctx.views.lock().unwrap();
                let view = &views[&id];
                json!({
                    "id": id,
                    "sql": shape.sql(),
                    "params": shape.params(&ctx.model, &mut rng),
                    "clientId": view.client_id,
                    "ttl": format!("{}s", view.ttl_secs),
                })
            };
            register_with(&ctx, &id, "re-register", body).await;
            continue;
        }
        let due: Option<String> = {
            let views = ctx.views.lock().unwrap();
            views
                .values()
                .find(|v| !v.unregistered && v.unregister_at.is_some_and(|at| at <= now))
                .map(|v| v.id.clone())
        };
        if let Some(id) = due {
            let sent = ctx.secs();
            let answer = post(&ctx, "/view/unregister", &json!({ "id": id })).await;
            let ok = record(&ctx, "unregister", &answer);
            let mut views = ctx.views.lock().unwrap();
            if let Some(view) = views.get_mut(&id) {
                view.history.push(format!(
                    "{sent:.1}s unregister -> {} at {:.1}s",
                    answer.class(),
                    ctx.secs()
                ));
                if ok {
                    view.unregistered = true;
                    view.unregister_failed = false;
                    view.unregister_at = None;
                } else {
                    // Retried later; meanwhile SSP may or may not hold it.
                    view.unregister_failed = true;
                    view.unregister_at = Some(now + Duration::from_secs(5));
                }
            }
            continue;
        }
        if rng.random_bool(0.05) {
            let id = {
                let views = ctx.views.lock().unwrap();
                let ids: Vec<&String> = views.keys().collect();
                ids.choose(&mut rng).map(|s| (*s).clone())
            };
            if let Some(id) = id {
                let answer = get(&ctx, &format!("/view/{id}")).await;
                match &answer {
                    Answer::Status(404, _) => ctx.stats.ok("get view (404)"),
                    other => {
                        record(&ctx, "get view", other);
                    }
                }
                if let Answer::Status(404, _) = answer {
                    premature_404(&ctx, &id, "GET /view");
                }
            }
        }
    }
}

/// A 404 for a view the soak holds alive is a lifecycle failure.
pub(crate) fn premature_404(ctx: &Ctx, id: &str, what: &str) {
    let view = ctx.views.lock().unwrap().get(id).cloned();
    if let Some(view) = view
        && view.must_exist(Utc::now())
        && !view.uncertain
    {
        ctx.lifecycle_failure(format!(
            "{what} {id} ({:?}, ttl {}s, last active {:?}) answered 404 while it should exist; \
             ssp#{}, last event: {}",
            view.life,
            view.ttl_secs,
            view.last_active.map(|d| d.to_rfc3339()),
            ctx.ssp_instance.load(Ordering::Relaxed),
            ctx.last_event()
        ));
    }
}

/// Heartbeats of the long and kept-alive views: each view's own request, so
/// that one slow answer (the database is down) delays no other view's.
pub(crate) async fn heartbeat_task(ctx: Arc<Ctx>, end: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut in_flight = tokio::task::JoinSet::new();
    while !ctx.stopping() && Instant::now() < end {
        tick.tick().await;
        while in_flight.try_join_next().is_some() {}
        let now = Instant::now();
        let due: Vec<String> = ctx
            .views
            .lock()
            .unwrap()
            .values_mut()
            .filter(|v| v.next_heartbeat.is_some_and(|at| at <= now) && v.acked.is_some())
            .map(|v| {
                // Until its answer: one heartbeat at a time per view.
                v.next_heartbeat = None;
                v.id.clone()
            })
            .collect();
        for id in due {
            in_flight.spawn(heartbeat(Arc::clone(&ctx), id));
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), in_flight.join_all()).await;
}

pub(crate) async fn heartbeat(ctx: Arc<Ctx>, id: String) {
    let sent = ctx.secs();
    let answer = post(&ctx, "/view/heartbeat", &json!({ "id": id })).await;
    let gone = matches!(answer, Answer::Status(404, _));
    if gone {
        ctx.stats.fail("heartbeat", "404", &id);
        premature_404(&ctx, &id, "heartbeat");
    } else {
        record(&ctx, "heartbeat", &answer);
    }
    let mut views = ctx.views.lock().unwrap();
    let Some(view) = views.get_mut(&id) else {
        return;
    };
    view.history.push(format!(
        "{sent:.1}s heartbeat -> {} at {:.1}s{}",
        answer.class(),
        ctx.secs(),
        match &answer {
            Answer::Ok(b) => format!(" lastActiveAt {}", b["lastActiveAt"]),
            _ => String::new(),
        }
    ));
    // A view that is gone stays gone: no more heartbeats for it.
    if !gone {
        let period = match view.life {
            Life::KeptAlive => Duration::from_secs(5),
            _ => Duration::from_secs(20),
        };
        view.next_heartbeat = Some(Instant::now() + period);
    }
    if let Answer::Ok(body) = &answer
        && let Some(at) = body["lastActiveAt"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    {
        view.last_active = Some(at.with_timezone(&Utc));
    }
}
