//! The two tiers: one change through each kind of re-query view against a filter view, and re-query runs per change.

use super::*;

/// The cost of one change for a view of each kind (link path, `$param`
/// path through a record, traversal from `$parent` over a `TYPE RELATION`
/// table, `$u IN <-likes<-user` for a change to the edges; count, user
/// function: the re-query tier) against a plain
/// filter view (incremental), on embedded SurrealDB; and that a change
/// re-runs only the re-query views whose tables it touched, not all of them
/// (the naive way).
///
/// Each change is written in SurrealDB and then sent to `/ingest`, as apps
/// do; the figure is the `/ingest` latency (p50), which includes the
/// re-run for the re-query views.
pub(crate) fn tiers(results: &mut Results, mode: Mode) {
    use ssp::db::Query;
    use surrealdb::types as sdb;
    let Some(ssp) = Embedded::start("tiers", results, "tiers: filter view, one change p50") else {
        return;
    };
    let (runtime, addr, db) = (&ssp.runtime, ssp.addr, Arc::clone(&ssp.db));
    let (posts, changes) = if mode.smoke {
        (50, 20)
    } else if mode.quick {
        (1_000, 200)
    } else {
        (5_000, 500)
    };
    let users = (posts / 10).max(2);
    let rid = |t: &str, k: usize| sdb::Value::RecordId(sdb::RecordId::new(t, k as i64));
    let exec = |q: Query| runtime.block_on(db.run(q)).map(|_| ()).expect("bench data");
    exec(Query::new(
        "DEFINE FUNCTION fn::hot($s: number) { RETURN $s > 90; }; \
         DEFINE TABLE tlikes TYPE RELATION;",
    ));
    for u in 0..users {
        exec(
            Query::new("UPSERT $id SET name = $n")
                .bind("id", rid("tu", u))
                .bind("n", sdb::Value::String(format!("user{u}"))),
        );
    }
    for k in 0..posts {
        exec(
            // `at` far ahead: every post is in the time window's view,
            // its instant scheduled and never due.
            Query::new("UPSERT $id SET score = $s, author = $a, at = d'2100-01-01T00:00:00Z'")
                .bind("id", rid("tp", k))
                .bind("s", sdb::Value::Number(sdb::Number::Int((k % 100) as i64)))
                .bind("a", rid("tu", k % users)),
        );
        if k % 3 == 0 {
            exec(
                Query::new("RELATE $a->tlikes->$b")
                    .bind("a", rid("tu", (k * 7) % users))
                    .bind("b", rid("tp", k)),
            );
        }
    }
    let mut http = Http::connect(addr, SECRET);
    let kinds = [
        ("filter", "SELECT * FROM tp WHERE score > 90", json!({})),
        (
            "link path",
            "SELECT * FROM tp WHERE author.name = 'user1'",
            json!({}),
        ),
        (
            "param path",
            "SELECT * FROM tp WHERE author = $u.id AND score > 90",
            json!({"u": "tu:1"}),
        ),
        (
            "traversal",
            "SELECT *, (SELECT * FROM $parent<-tlikes<-tu) AS fans FROM tp WHERE score > 90",
            json!({}),
        ),
        (
            "count",
            "SELECT id, count(<-tlikes) AS likes FROM tp WHERE count(<-tlikes) >= 1 AND score > 90",
            json!({}),
        ),
        (
            "count() GROUP ALL",
            "SELECT count() FROM tp WHERE score > 90 GROUP ALL",
            json!({}),
        ),
        (
            "time window",
            "SELECT * FROM tp WHERE score > 90 AND at > time::now() - 1h",
            json!({}),
        ),
        (
            "fn:: re-query",
            "SELECT * FROM tp WHERE fn::hot(score)",
            json!({}),
        ),
    ];
    let mut filter_p50 = None;
    for (i, (kind, sql, params)) in kinds.iter().enumerate() {
        let id = format!("tier{i}");
        let status = http.post(
            "/view/register",
            &json!({"id": id, "sql": sql, "params": params, "clientId": "bench"}).to_string(),
        );
        assert_eq!(status, 200, "register {sql}");
        let mut lat = Vec::with_capacity(changes);
        for c in 0..changes {
            let k = (c * 37) % posts;
            let score = ((c * 13) % 100) as i64;
            exec(
                Query::new("UPDATE $id SET score = $s")
                    .bind("id", rid("tp", k))
                    .bind("s", sdb::Value::Number(sdb::Number::Int(score))),
            );
            let body = json!({"table": "tp", "op": "UPDATE", "id": format!("tp:{k}"),
                "record": {"score": score, "author": format!("tu:{}", k % users),
                    "at": "2100-01-01T00:00:00Z"}})
            .to_string();
            lat.push(timed_ingest(&mut http, &body));
        }
        lat.sort();
        let p50 = us(p(&lat, 0.5));
        results.add(
            &format!("tiers: {kind} view, one change p50"),
            p50,
            "us",
            None,
        );
        match filter_p50 {
            None => filter_p50 = Some(p50),
            Some(f) => results.add(
                &format!("tiers: {kind} view / filter view"),
                p50 / f.max(1.0),
                "x",
                None,
            ),
        }
        assert_eq!(
            http.post("/view/unregister", &json!({"id": id}).to_string()),
            200
        );
    }
    // `$u IN <-tlikes<-tu` in `WHERE`: each change to the edges evaluates
    // the lowered subquery again (a scan of `tlikes` in the engine), and
    // the view moves when the list does (every other change here: tu:1
    // likes a post; tu:2's likes leave the list as it was).
    let status = http.post(
        "/view/register",
        &json!({"id": "member", "sql": "SELECT * FROM tp WHERE $u IN <-tlikes<-tu",
            "params": {"u": "tu:1"}, "clientId": "bench"})
        .to_string(),
    );
    assert_eq!(status, 200, "register the membership view");
    let mut lat = Vec::with_capacity(changes / 2);
    for c in 0..(changes / 2).max(1) {
        let from = 1 + c % 2;
        let k = (c * 53) % posts;
        let key = format!("bench{c}");
        exec(
            Query::new("RELATE $a->tlikes->$b SET id = $id")
                .bind("a", rid("tu", from))
                .bind("b", rid("tp", k))
                .bind(
                    "id",
                    sdb::Value::RecordId(sdb::RecordId::new("tlikes", key.clone())),
                ),
        );
        let body = json!({"table": "tlikes", "op": "CREATE", "id": format!("tlikes:{key}"),
            "record": {"in": format!("tu:{from}"), "out": format!("tp:{k}")}})
        .to_string();
        lat.push(timed_ingest(&mut http, &body));
    }
    lat.sort();
    let p50 = us(p(&lat, 0.5));
    results.add(
        "tiers: membership view (`$u IN <-tlikes<-tu`), one change to the edges p50",
        p50,
        "us",
        None,
    );
    if let Some(f) = filter_p50 {
        results.add(
            "tiers: membership view / filter view",
            p50 / f.max(1.0),
            "x",
            None,
        );
    }
    assert_eq!(
        http.post("/view/unregister", &json!({"id": "member"}).to_string()),
        200
    );

    // A change to the record that many views' `$param` path reads
    // registers each of them again (see `engine::param_links`): views of
    // one text over `tu:1`, each with its own threshold (its own node).
    let readers = if mode.smoke {
        10
    } else if mode.quick {
        200
    } else {
        1_000
    };
    for v in 0..readers {
        let status = http.post(
            "/view/register",
            &json!({"id": format!("reader{v}"),
                "sql": "SELECT * FROM tp WHERE author = $u.id AND score > $s",
                "params": {"u": "tu:1", "s": v % 100}, "clientId": "bench"})
            .to_string(),
        );
        assert_eq!(status, 200, "register reader {v}");
    }
    let mut lat = Vec::with_capacity(changes / 4);
    for c in 0..(changes / 4).max(1) {
        let name = format!("user1-{c}");
        exec(
            Query::new("UPDATE $id SET name = $n")
                .bind("id", rid("tu", 1))
                .bind("n", sdb::Value::String(name.clone())),
        );
        let body = json!({"table": "tu", "op": "UPDATE", "id": "tu:1", "record": {"name": name}})
            .to_string();
        lat.push(timed_ingest(&mut http, &body));
    }
    lat.sort();
    let p50 = us(p(&lat, 0.5));
    results.add(
        &format!("tiers: a change to the record {readers} views' `$param` path reads, p50"),
        p50,
        "us",
        None,
    );
    if let Some(f) = filter_p50 {
        results.add(
            &format!("tiers: the same / filter view ({readers} views read their paths again)"),
            p50 / f.max(1.0),
            "x",
            None,
        );
    }
    for v in 0..readers {
        assert_eq!(
            http.post(
                "/view/unregister",
                &json!({"id": format!("reader{v}")}).to_string()
            ),
            200
        );
    }

    // Re-runs per change: 10 re-query views read `tp`, 10 read `tz` only.
    for i in 0..10 {
        for (table, sql) in [
            ("tp", format!("SELECT * FROM tp WHERE fn::hot(score + {i})")),
            ("tz", format!("SELECT * FROM tz WHERE fn::hot(score + {i})")),
        ] {
            let status = http.post(
                "/view/register",
                &json!({"id": format!("many-{table}-{i}"), "sql": sql, "clientId": "bench"})
                    .to_string(),
            );
            assert_eq!(status, 200, "register {sql}");
        }
    }
    let runs = || -> f64 {
        let text = ssp::api::metrics::install()
            .map(|h| h.render())
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("ssp_requery_runs_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let before = runs();
    for c in 0..changes {
        let k = (c * 37) % posts;
        let body = json!({"table": "tp", "op": "UPDATE", "id": format!("tp:{k}"),
            "record": {"score": c % 100, "author": format!("tu:{}", k % users)}})
        .to_string();
        assert_eq!(http.post("/ingest", &body), 200);
    }
    let per_change = (runs() - before) / changes as f64;
    results.add(
        "tiers: re-query runs per change (20 re-query views, 10 read the table)",
        per_change,
        "runs",
        Some(("10 (naive: 20)", per_change <= 10.0 + f64::EPSILON)),
    );
    ssp.stop();
}

/// One `/ingest` of `body`, until its edges are committed.
fn timed_ingest(http: &mut Http, body: &str) -> Duration {
    let t = Instant::now();
    assert_eq!(http.post("/ingest", body), 200);
    t.elapsed()
}
