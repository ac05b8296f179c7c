//! LIVE SELECT subscriptions: the low-latency half of following SurrealDB.
//!
//! One `LIVE SELECT * FROM type::table($t)` per tracked table, on the shared
//! connection (the table name is bound). Each notification becomes a
//! [`Change`]: a create or update carries the record's full content (`*`), a
//! delete carries the deleted record, of which only the id is used.
//!
//! What the 3.3.5 SDK does that shapes this module (read in its source):
//! - On a websocket disconnect the SDK reconnects by itself, but it ends every
//!   LIVE stream (one `Err(connection reset)`, then the end) and does not
//!   re-subscribe. [`LiveEvent::Ended`] tells the worker to re-subscribe and
//!   read the gap from the change feed.
//! - A stream's handle lives in a session of its own, so dropping it asks a
//!   session that does not own the live query to kill it. We therefore `KILL`
//!   it ourselves, on the shared session, before dropping it ([`kill`]).
//! - A `Killed` notification ends the stream; an `Error` notification means
//!   the server could not evaluate the query for some change, which is a gap.

use std::borrow::Cow;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use surrealdb::types as sdb;
use surrealdb::types::Action;

use crate::db::records::row_to_change;
use crate::db::values::record_id_from_surreal;
use crate::db::{Db, DbError, Query};
use crate::engine::Change;
use crate::engine::value::RecordId;

/// What a LIVE stream delivers to the worker.
#[derive(Debug)]
pub enum LiveEvent {
    /// A record was created or updated (full content) or deleted.
    Change(Change),
    /// `_spooky_query` only: a view row was deleted.
    Deleted(RecordId),
    /// The stream reported an error or a notification SSP cannot read: some
    /// change may be missing, so the table needs a catch-up.
    Error(String),
    /// The stream ended (disconnect, kill). Re-subscribe and catch up.
    Ended,
}

/// A live subscription: its id (to kill it) and its events.
pub struct Subscription {
    pub id: sdb::Value,
    pub events: BoxStream<'static, LiveEvent>,
}

/// Subscribes to every change of `table`. The call is bounded by the
/// connection's call timeout. `deletes_only` keeps only deletes (for
/// `_spooky_query`, where SSP only cares about rows removed behind its back).
pub async fn subscribe(db: &Db, table: &str, deletes_only: bool) -> Result<Subscription, DbError> {
    let op: Cow<'static, str> = Cow::Borrowed("LIVE SELECT");
    let query = db
        .client()
        .query("LIVE SELECT * FROM type::table($t)")
        .bind(("t", table.to_owned()));
    let mut response = match tokio::time::timeout(db.call_timeout(), query).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => return Err(DbError::from_sdk(&op, error)),
        Err(_) => {
            return Err(DbError::Timeout {
                op,
                after: db.call_timeout(),
            });
        }
    };
    if let Some((_, error)) = response.take_errors().into_iter().next() {
        return Err(DbError::from_sdk(&op, error));
    }
    let stream = response
        .stream::<sdb::Value>(0)
        .map_err(|e| DbError::from_sdk(&op, e))?;
    let id: sdb::Value = response.take(0).map_err(|e| DbError::from_sdk(&op, e))?;
    let table: Arc<str> = table.into();
    let events = stream
        .filter_map(move |item| {
            let event = match item {
                Ok(n) => to_event(&table, n.action, n.data, deletes_only),
                Err(error) => Some(LiveEvent::Error(error.message().to_owned())),
            };
            futures::future::ready(event)
        })
        .chain(futures::stream::once(futures::future::ready(
            LiveEvent::Ended,
        )))
        .boxed();
    Ok(Subscription { id, events })
}

/// A notification as an event (`None`: nothing to do).
fn to_event(
    table: &Arc<str>,
    action: Action,
    data: sdb::Value,
    deletes_only: bool,
) -> Option<LiveEvent> {
    match action {
        Action::Create | Action::Update if deletes_only => None,
        Action::Create | Action::Update => Some(match row_to_change(data) {
            Some(change) if change.id.table == *table => LiveEvent::Change(change),
            Some(change) => LiveEvent::Error(format!(
                "LIVE on `{table}` delivered a record of `{}`",
                change.id.table
            )),
            None => LiveEvent::Error(format!("LIVE on `{table}` delivered a row without an id")),
        }),
        Action::Delete => {
            let id = match &data {
                sdb::Value::Object(o) => match o.get("id") {
                    Some(sdb::Value::RecordId(r)) => record_id_from_surreal(r),
                    _ => None,
                },
                sdb::Value::RecordId(r) => record_id_from_surreal(r),
                _ => None,
            };
            Some(match id {
                Some(id) if deletes_only => LiveEvent::Deleted(id),
                Some(id) => LiveEvent::Change(Change { id, content: None }),
                None => LiveEvent::Error(format!(
                    "LIVE on `{table}` delivered a delete without an id"
                )),
            })
        }
        Action::Killed => Some(LiveEvent::Ended),
        Action::Error => Some(LiveEvent::Error(format!(
            "LIVE on `{table}` reported: {}",
            data.into_json_value()
        ))),
    }
}

/// Kills a live query on the shared session (best effort: when the
/// connection is gone, so is the live query).
pub async fn kill(db: &Db, id: sdb::Value) {
    if let Err(error) = db
        .run_background(Query::new("KILL $id").bind("id", id))
        .await
    {
        if error.is_unavailable() {
            // The connection is gone, and the live query with it.
            tracing::debug!(%error, "killing a live query failed");
        } else {
            tracing::warn!(%error, "killing a live query failed");
        }
    }
}
