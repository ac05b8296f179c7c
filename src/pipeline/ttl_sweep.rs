//! Removes views whose `lastActiveAt + ttl` lies in the past, exactly as an
//! unregister would (same pipeline request, same transaction).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Pipeline, PipelineError};
use crate::engine::ViewMeta;

/// Parses a SurrealDB duration (`30s`, `1h`, `1d12h`) as SurrealDB does.
pub fn parse_ttl(ttl: &str) -> Result<Duration, String> {
    crate::config::parse_surreal_duration(ttl)
        .ok_or_else(|| format!("`ttl` is not a SurrealDB duration: `{ttl}` (e.g. \"30m\", \"1h\")"))
}

/// Whether `view` has expired at `now`: `lastActiveAt + ttl` lies before it.
pub fn is_expired(view: &ViewMeta, now: DateTime<Utc>) -> bool {
    let ttl = parse_ttl(&view.ttl).unwrap_or(Duration::from_secs(3600));
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    view.last_active_at
        .checked_add_signed(ttl)
        .is_some_and(|end| end < now)
}

/// The views that have expired at `now`.
pub fn expired(pipeline: &Pipeline, now: DateTime<Utc>) -> Vec<String> {
    pipeline.read(|engine| {
        engine
            .views()
            .filter(|v| is_expired(v, now))
            .map(|v| v.id.to_string())
            .collect()
    })
}

/// Sweeps every `every` until the pipeline closes.
///
/// The expired views are found under a read lock, then each is expired
/// through the pipeline, which checks again in order with every other
/// request: a heartbeat or re-registration that came in meanwhile keeps the
/// view. A failed removal is logged and tried again at the next sweep; only
/// a closed pipeline ends the task.
pub async fn run(pipeline: Pipeline, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Utc::now();
        for id in expired(&pipeline, now) {
            match pipeline.expire(id.clone(), now).await {
                Ok(true) => tracing::info!(view = %id, "view expired: removed"),
                Ok(false) => tracing::debug!(view = %id, "view kept alive since the sweep looked"),
                Err(PipelineError::Closed) => return,
                Err(error) => {
                    tracing::warn!(view = %id, %error, "removing an expired view failed; the next sweep tries again")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, last_active_at: DateTime<Utc>) -> ViewMeta {
        ViewMeta {
            id: id.into(),
            client_id: "c".into(),
            sql: "SELECT * FROM thread".into(),
            params: Default::default(),
            ttl: "1h".into(),
            last_active_at,
            owner: None,
        }
    }

    /// The sweep finds a view expired, then a heartbeat comes in before the
    /// removal reaches the applier: the view stays. Without the heartbeat
    /// the same removal goes through.
    #[test]
    fn a_heartbeat_after_the_sweep_looked_keeps_the_view() {
        let runtime = crate::startup::runtime(Some(2)).expect("runtime");
        runtime.block_on(async {
            let (pipeline, _db) = crate::pipeline::on_a_fresh_database().await;
            let long_ago = Utc::now() - chrono::Duration::hours(2);
            for id in ["kept", "gone"] {
                pipeline
                    .register(view(id, long_ago))
                    .await
                    .expect("register");
            }
            let now = Utc::now();
            let mut found = expired(&pipeline, now);
            found.sort();
            assert_eq!(found, ["gone", "kept"]);

            assert!(
                pipeline
                    .heartbeat("kept".into(), Utc::now())
                    .await
                    .expect("heartbeat")
            );
            assert!(!pipeline.expire("kept".into(), now).await.expect("expire"));
            assert!(pipeline.expire("gone".into(), now).await.expect("expire"));
            let left: Vec<String> =
                pipeline.read(|e| e.views().map(|v| v.id.to_string()).collect());
            assert_eq!(left, ["kept"]);
        });
        runtime.shutdown_background();
    }
}
