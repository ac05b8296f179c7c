//! Commits of edge changes: one transaction, retried while the database
//! is unavailable, split in parts when a batch is too big for one.

use super::*;

/// Commits edge changes in one transaction, retrying as [`retry`] does.
pub(in crate::pipeline) async fn commit(
    sink: &EdgeSink,
    edges: &EdgeChanges,
) -> Result<(), DbError> {
    commit_on(sink, 0, edges).await
}

/// [`commit`] on write slot `slot`.
pub(in crate::pipeline) async fn commit_on(
    sink: &EdgeSink,
    slot: usize,
    edges: &EdgeChanges,
) -> Result<(), DbError> {
    if edges.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let result = retry(|| sink.write_on(slot, edges)).await;
    metrics::histogram!("ssp_edge_tx_seconds").record(started.elapsed().as_secs_f64());
    result
}

/// Commits a view's initial result set in transactions of at most
/// [`MAX_EDGES_PER_TX`] edges: one transaction of a big view's edges (every
/// record of a large table) took longer than the call timeout, was retried
/// whole and timed out again, so the view was never committed. In parts
/// each call is bounded; a client following its edges sees them arrive in
/// parts, before the register answer.
pub(in crate::pipeline) async fn commit_in_parts(
    sink: &EdgeSink,
    edges: EdgeChanges,
    max_edges: usize,
) -> Result<(), DbError> {
    for part in edges.split(max_edges) {
        commit(sink, &part).await?;
    }
    Ok(())
}

/// Runs a write until it succeeds. While the database is unavailable (or
/// the transaction conflicts) it retries with backoff for as long as it
/// takes: nothing that touches the same edges may overtake it (see the
/// module doc). Any other error is retried a few times and then reported,
/// since it will not heal by waiting.
pub(in crate::pipeline) async fn retry<'a, F, Fut>(mut write: F) -> Result<(), DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), DbError>> + 'a,
{
    let mut backoff = crate::db::backoff_forever(Duration::from_millis(50), Duration::from_secs(2));
    let mut hard_failures = 0;
    loop {
        match write().await {
            Ok(()) => return Ok(()),
            // Another instance holds a view of it now: the write can never
            // land, and must not (see `crate::cluster`).
            Err(e) if e.is_fenced() => {
                metrics::counter!("ssp_fenced_writes_total").increment(1);
                tracing::warn!(error = %e, "a write was fenced out: another instance holds its view now");
                return Err(e);
            }
            Err(e) => {
                let transient = e.is_unavailable() || e.is_conflict();
                if !transient {
                    hard_failures += 1;
                    if hard_failures >= 3 {
                        tracing::error!(error = %e, "edge write failed permanently");
                        return Err(e);
                    }
                }
                metrics::counter!("ssp_write_retries_total").increment(1);
                let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(2));
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "edge write failed, retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}
