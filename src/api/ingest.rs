//! `POST /ingest`: the push source. Apps send record changes; they enter the
//! same pipeline as the change worker's.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiError, ApiJson, AppState, ErrorBody, pipeline_error};
use crate::engine::Change;
use crate::engine::value::{RecordId, Value};
use crate::pipeline::{IngestSummary, Source};

/// One change as JSON: `{"table", "op", "id", "record"}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IngestItem {
    /// The record's table.
    #[schema(example = "thread")]
    table: String,
    /// `CREATE`, `UPDATE` or `DELETE` (any case).
    #[schema(example = "CREATE")]
    op: String,
    /// The record id, with or without the table prefix.
    #[schema(example = "thread:1")]
    id: String,
    /// The whole record after the change (required unless DELETE).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    record: Option<serde_json::Value>,
}

/// One change, or a non-empty array of changes applied as one batch.
// The route parses the body with `parse_body` (for errors that name the
// index in the batch); this type only describes the same shape.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IngestBody {
    One(IngestItem),
    Batch(Vec<IngestItem>),
}

/// What a change does to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn parse(op: &str) -> Option<Op> {
        match op.to_ascii_uppercase().as_str() {
            "CREATE" => Some(Op::Create),
            "UPDATE" => Some(Op::Update),
            "DELETE" => Some(Op::Delete),
            _ => None,
        }
    }
}

/// Parses the body: a single change or an array of changes (one batch).
/// Every problem is a 400 that names the field and, in an array, the index.
pub fn parse_body(body: serde_json::Value) -> Result<Vec<Change>, ApiError> {
    let items = match body {
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                return Err(ApiError::BadRequest("the batch is empty".into()));
            }
            items
        }
        obj @ serde_json::Value::Object(_) => vec![obj],
        _ => {
            return Err(ApiError::BadRequest(
                "expected a change object or an array of changes".into(),
            ));
        }
    };
    let many = items.len() > 1;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            parse_item(item).map_err(|e| match many {
                true => ApiError::BadRequest(format!("change {i}: {e}")),
                false => ApiError::BadRequest(e),
            })
        })
        .collect()
}

fn parse_item(item: serde_json::Value) -> Result<Change, String> {
    let item: IngestItem = serde_json::from_value(item).map_err(|e| e.to_string())?;
    if item.table.is_empty() {
        return Err("`table` is empty".into());
    }
    if crate::db::schema::is_reserved_table(&item.table) {
        return Err(format!(
            "`{}` is one of SSP's own tables (`_spooky_*`); SSP writes it, apps do not ingest it",
            item.table
        ));
    }
    let op = Op::parse(&item.op).ok_or_else(|| {
        format!(
            "unknown op `{}`: expected CREATE, UPDATE or DELETE",
            item.op
        )
    })?;
    let id = RecordId::parse_in_table(&item.table, &item.id).map_err(|e| e.to_string())?;
    let content = match op {
        Op::Delete => None,
        Op::Create | Op::Update => match item.record.as_ref().map(Value::from) {
            Some(Value::Object(o)) => Some(o),
            Some(_) => return Err("`record` must be a JSON object".into()),
            None => {
                return Err(format!(
                    "`record` is required for {}",
                    item.op.to_ascii_uppercase()
                ));
            }
        },
    };
    Ok(Change { id, content })
}

/// Converts the fields the tables' schemas type (datetime, decimal,
/// duration, uuid, record) from their JSON form to SurrealDB's type, as the
/// database holds them (see [`crate::db::field_types`]).
async fn typed(state: &AppState, changes: &mut [Change]) {
    let mut tables: Vec<&str> = changes.iter().map(|c| c.id.table.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    let mut by_table = Vec::with_capacity(tables.len());
    for t in tables {
        let types = state.field_types.of(&state.db, t).await;
        if !types.is_empty() {
            by_table.push((t.to_owned(), types));
        }
    }
    if by_table.is_empty() {
        return;
    }
    for c in changes.iter_mut() {
        if let (Some(content), Some((_, types))) = (
            c.content.as_mut(),
            by_table.iter().find(|(t, _)| t == c.id.table.as_str()),
        ) {
            types.apply(content);
        }
    }
}

/// Ingest record changes.
///
/// Applies the changes to every view and answers once their edges are
/// committed (one transaction per batch).
#[utoipa::path(
    post,
    path = "/ingest",
    tag = "ingest",
    request_body = IngestBody,
    responses(
        (status = 200, description = "Committed", body = IngestSummary),
        (status = 400, description = "Malformed body, unknown `op`, missing `record`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 503, description = "`not_ready`: SSP is still starting; `db_unavailable`: the database did not take the write in time (it is queued and carried out later); `not_queued`: it never entered the queue (nothing was done)", body = ErrorBody),
        (status = 500, description = "`write_failed`: the database refused the write for good; the message says what SSP keeps and repairs", body = ErrorBody),
    )
)]
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<IngestSummary>, ApiError> {
    let mut changes = parse_body(body)?;
    typed(&state, &mut changes).await;
    let summary = state
        .pipeline()?
        .ingest(changes, Source::Http)
        .await
        .map_err(pipeline_error)?;
    Ok(ApiJson(summary))
}
