//! The LIVE path: an SDK write to the edge commit, as a client watching the edges sees it.

use super::*;

/// The LIVE path: a write made with the SDK into a table a view reads, until
/// its edge is committed, as a client watching the edges (`LIVE SELECT` on
/// `_spooky_list_ref`, on a connection of its own) sees it. One write in
/// flight at a time. The same watcher also follows the written table, which
/// gives the floor: a LIVE notification alone (SSP waits for one, and the
/// watcher for another, so the path holds two).
pub(crate) fn live_path(
    results: &mut Results,
    mode: Mode,
    runtime: &tokio::runtime::Runtime,
    backend: &Backend,
    http: &mut Http,
    ssp_db: &std::sync::Arc<ssp::db::Db>,
    settings: &ssp::config::Settings,
) {
    use futures::StreamExt;
    use surrealdb::types as sdb;
    let b = backend.label;
    let status = http.post(
        "/view/register",
        &json!({"id": "live", "sql": "SELECT * FROM bench_live WHERE active = true", "clientId": "bench"})
            .to_string(),
    );
    assert_eq!(status, 200, "register the LIVE view");
    let samples = if mode.smoke {
        20
    } else if mode.quick {
        1_000
    } else {
        5_000
    };
    let warmup = if mode.smoke { 5 } else { 100 };
    phase(b, "LIVE path");
    let outcome = runtime.block_on(async {
        // Over ws the writer and the watcher are clients of their own; the
        // embedded engine is only reachable through SSP's connection.
        let connect = || async {
            match backend.url.starts_with("mem://") {
                true => Ok(ssp_db.clone()),
                false => ssp::db::Db::connect(&settings.surrealdb)
                    .await
                    .map(std::sync::Arc::new),
            }
        };
        let writer = connect().await.map_err(|e| e.to_string())?;
        let watcher = connect().await.map_err(|e| e.to_string())?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(bool, String, Instant)>();
        let mut streams = Vec::new();
        for (edge, sql) in [
            (true, "LIVE SELECT out FROM _spooky_list_ref"),
            (false, "LIVE SELECT id FROM bench_live"),
        ] {
            let mut response = watcher
                .client()
                .query(sql)
                .await
                .map_err(|e| e.to_string())?;
            let mut stream = response
                .stream::<sdb::Value>(0)
                .map_err(|e| e.to_string())?;
            let tx = tx.clone();
            streams.push(tokio::spawn(async move {
                while let Some(Ok(n)) = stream.next().await {
                    let at = Instant::now();
                    if n.action != sdb::Action::Create {
                        continue;
                    }
                    let key = if edge { "out" } else { "id" };
                    if let Some(id) = n.data.into_json_value().get(key).and_then(|o| o.as_str()) {
                        let _ = tx.send((edge, id.to_owned(), at));
                    }
                }
            }));
        }
        let mut write = Vec::with_capacity(samples);
        let mut path = Vec::with_capacity(samples);
        let mut notified = Vec::with_capacity(samples);
        for i in 0..warmup + samples {
            let want = format!("bench_live:{i}");
            let q = ssp::db::Query::new("CREATE $id CONTENT { active: true, n: $n } RETURN NONE")
                .bind("id", sdb::RecordId::new("bench_live", i as i64))
                .bind("n", i as i64);
            let t0 = Instant::now();
            writer.run(q).await.map_err(|e| e.to_string())?;
            let acked = t0.elapsed();
            let (mut edge_at, mut row_at) = (None, None);
            while edge_at.is_none() || row_at.is_none() {
                let wait = if i < warmup { 30 } else { 10 };
                let (edge, id, at) = tokio::time::timeout(Duration::from_secs(wait), rx.recv())
                    .await
                    .map_err(|_| format!("no edge for {want} within {wait}s"))?
                    .ok_or("the watcher's stream ended")?;
                if id == want {
                    *(if edge { &mut edge_at } else { &mut row_at }) = Some(at);
                }
            }
            if i >= warmup {
                write.push(acked);
                path.push(edge_at.unwrap_or(t0) - t0);
                notified.push(row_at.unwrap_or(t0) - t0);
            }
        }
        for s in streams {
            s.abort();
        }
        write.sort();
        path.sort();
        notified.sort();
        Ok::<_, String>((write, path, notified))
    });
    let (write, path, notified) = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("LIVE path on {b}: {e}");
            results.skip(&format!("live {b}: write -> edge committed p50"), &e);
            return;
        }
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (p50, p99) = (ms(p(&path, 0.5)), ms(p(&path, 0.99)));
    results.add(
        &format!("live {b}: write -> edge committed p50"),
        p50,
        "ms",
        Some(("<= 5 ms", p50 <= 5.0)),
    );
    results.add(
        &format!("live {b}: write -> edge committed p99"),
        p99,
        "ms",
        Some(("<= 50 ms", p99 <= 50.0)),
    );
    results.add(
        &format!("live {b}: the write alone (SDK round trip) p50"),
        ms(p(&write, 0.5)),
        "ms",
        None,
    );
    results.add(
        &format!("live {b}: write -> LIVE notification of the row p50 (the floor)"),
        ms(p(&notified, 0.5)),
        "ms",
        None,
    );
}
