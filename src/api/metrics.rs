//! `GET /metrics`: Prometheus text.
//!
//! Counters and histograms are recorded where things happen (pipeline, sink,
//! saver, worker) through the `metrics` facade; gauges that describe current
//! state (views, queue depth) are set here, at scrape time, from the state.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::{AppState, ErrorBody};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once (several servers in
/// one process, as in the tests, share it).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

/// Prometheus metrics.
///
/// Served while SSP is starting too (`ssp_ready` 0, the engine gauges not
/// set yet), so that a scrape shows a slow startup.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    )
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    metrics::gauge!("ssp_ready").set(if state.is_ready() { 1.0 } else { 0.0 });
    metrics::gauge!("ssp_db_round_trips").set(state.db.round_trips() as f64);
    if let Some(core) = state.try_core() {
        let counts = core.pipeline.counts();
        metrics::gauge!("ssp_views_registered").set(counts.views as f64);
        metrics::gauge!("ssp_views_requery").set(counts.requery_views as f64);
        metrics::gauge!("ssp_records").set(counts.records as f64);
        metrics::gauge!("ssp_pipeline_queue_depth").set(core.pipeline.queue_depth() as f64);
        metrics::gauge!("ssp_pipeline_round_trips").set(core.pipeline.round_trips() as f64);
        let (_, lag) = core.worker_lag();
        metrics::gauge!("ssp_worker_lag_versionstamps").set(lag as f64);
    }
    let body = install().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
