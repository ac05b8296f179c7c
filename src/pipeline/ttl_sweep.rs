//! Removes views whose `lastActiveAt + ttl` lies in the past, exactly as an
//! unregister would (same pipeline request, same transaction).

use std::time::Duration;

use chrono::Utc;

use super::Pipeline;

/// Parses a SurrealDB duration (`30s`, `1h`, `1d12h`) as SurrealDB does.
pub fn parse_ttl(ttl: &str) -> Result<Duration, String> {
    crate::config::parse_surreal_duration(ttl)
        .ok_or_else(|| format!("`ttl` is not a SurrealDB duration: `{ttl}` (e.g. \"30m\", \"1h\")"))
}

/// The views that have expired at `now`.
pub fn expired(pipeline: &Pipeline, now: chrono::DateTime<Utc>) -> Vec<String> {
    pipeline.read(|engine| {
        engine
            .views()
            .filter(|v| {
                let ttl = parse_ttl(&v.ttl).unwrap_or(Duration::from_secs(3600));
                let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
                v.last_active_at
                    .checked_add_signed(ttl)
                    .is_some_and(|end| end < now)
            })
            .map(|v| v.id.to_string())
            .collect()
    })
}

/// Sweeps every `every` until the pipeline closes.
pub async fn run(pipeline: Pipeline, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for id in expired(&pipeline, Utc::now()) {
            tracing::info!(view = %id, "view expired: removing it");
            if pipeline.unregister(id).await.is_err() {
                return;
            }
        }
    }
}
