//! `GET /metrics` after a known workload, on a real `ssp` process (its own
//! metrics registry, so the counters hold exactly this test's workload).

use serde_json::json;

use crate::support::process::SspProcess;

/// The value of one sample line (`name{labels} value`), 0 when absent.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn metrics_after_known_workload() {
    crate::support::run(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let ssp = SspProcess::spawn(dir.path(), "mem://", &[]);
        let http = reqwest::Client::new();
        ssp.wait_up(&http).await;
        let base = ssp.base.clone();
        let secret = ssp.secret.clone();
        let post = |path: &str, body: serde_json::Value| {
            http.post(format!("{base}{path}"))
                .bearer_auth(&secret)
                .json(&body)
                .send()
        };
        let r = post(
            "/view/register",
            json!({"id": "m", "sql": "SELECT * FROM thread", "clientId": "c"}),
        )
        .await
        .unwrap();
        assert!(r.status().is_success());
        let batch = json!([
            {"table": "thread", "op": "CREATE", "id": "thread:1", "record": {"a": 1}},
            {"table": "thread", "op": "CREATE", "id": "thread:2", "record": {"a": 2}},
            {"table": "thread", "op": "CREATE", "id": "thread:3", "record": {"a": 3}},
        ]);
        assert!(post("/ingest", batch).await.unwrap().status().is_success());
        let one = json!({"table": "thread", "op": "UPDATE", "id": "thread:1", "record": {"a": 10}});
        assert!(post("/ingest", one).await.unwrap().status().is_success());
        let del = json!({"table": "thread", "op": "DELETE", "id": "thread:2"});
        assert!(post("/ingest", del).await.unwrap().status().is_success());

        let unauthorized = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(unauthorized.status(), reqwest::StatusCode::UNAUTHORIZED);
        let text = http
            .get(format!("{base}/metrics"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let http_upserts = sample(
            &text,
            "ssp_ingest_changes_total",
            &[("source", "http"), ("op", "upsert")],
        );
        let http_deletes = sample(
            &text,
            "ssp_ingest_changes_total",
            &[("source", "http"), ("op", "delete")],
        );
        assert_eq!(http_upserts, 4.0, "{text}");
        assert_eq!(http_deletes, 1.0, "{text}");
        assert_eq!(
            sample(&text, "ssp_edge_ops_total", &[("kind", "created")]),
            3.0,
            "{text}"
        );
        assert_eq!(
            sample(&text, "ssp_edge_ops_total", &[("kind", "updated")]),
            1.0,
            "{text}"
        );
        assert_eq!(
            sample(&text, "ssp_edge_ops_total", &[("kind", "deleted")]),
            1.0,
            "{text}"
        );
        assert_eq!(sample(&text, "ssp_views_registered", &[]), 1.0, "{text}");
        // 3 ingests one after another: 3 group transactions of 1 request,
        // none in flight now that all were answered.
        assert_eq!(
            sample(&text, "ssp_group_commit_requests_count", &[]),
            3.0,
            "{text}"
        );
        assert_eq!(
            sample(&text, "ssp_group_commit_requests_sum", &[]),
            3.0,
            "{text}"
        );
        assert_eq!(sample(&text, "ssp_edge_tx_in_flight", &[]), 0.0, "{text}");
        assert!(text.contains("ssp_edge_tx_in_flight "), "{text}");
        // register: row + (no initial edges); 3 ingests: one transaction each.
        assert_eq!(
            sample(&text, "ssp_pipeline_round_trips", &[]),
            4.0,
            "{text}"
        );
    });
}

#[test]
fn scrape_after_known_workload() {
    metrics_after_known_workload();
}

/// `/health` is public: concurrent and repeated calls within
/// `DB_STATUS_TTL` share one database ping round
/// (`ssp_health_ping_rounds_total`), and the next call after it pings again.
#[test]
fn health_pings_the_database_at_most_once_per_ttl() {
    use std::time::{Duration, Instant};

    use ssp::api::health::DB_STATUS_TTL;

    crate::support::run(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let ssp = SspProcess::spawn(dir.path(), "mem://", &[]);
        let http = reqwest::Client::new();
        ssp.wait_up(&http).await;
        let rounds = || async {
            let text = http
                .get(format!("{}/metrics", ssp.base))
                .bearer_auth(&ssp.secret)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            sample(&text, "ssp_health_ping_rounds_total", &[])
        };
        let health = || async {
            let response = http
                .get(format!("{}/health", ssp.base))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["db"]["status"], "up", "{body}");
        };

        let before = rounds().await;
        assert!(before >= 1.0, "wait_up called /health");
        let started = Instant::now();
        futures::future::join_all((0..64).map(|_| health())).await;
        for _ in 0..20 {
            health().await;
        }
        let elapsed = started.elapsed();
        let made = rounds().await - before;
        // Rounds start at least DB_STATUS_TTL apart: at most one while the
        // burst lasted less than that (the usual case, ~tens of ms).
        let allowed = 1 + (elapsed.as_secs_f64() / DB_STATUS_TTL.as_secs_f64()).floor() as u64;
        assert!(
            made <= allowed as f64,
            "{made} ping rounds for 84 calls in {elapsed:?} (at most {allowed})"
        );

        // Once the last round is older than the TTL, the next call pings.
        tokio::time::sleep(DB_STATUS_TTL + Duration::from_millis(100)).await;
        let before = rounds().await;
        health().await;
        assert_eq!(rounds().await - before, 1.0);
    });
}
