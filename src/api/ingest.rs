//! `POST /ingest`: the push source. Apps send record changes; they enter the
//! same pipeline as the change worker's.

use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::header;
use serde::Deserialize;
use surrealdb::types as sdb;
use utoipa::ToSchema;

use super::error::read_body;
use super::{ApiError, ApiJson, AppState, ErrorBody, pipeline_error};
use crate::db::values::{from_surreal, record_id_from_surreal};
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

/// The body of `POST /ingest`, read as its content type says: JSON (typed
/// by the tables' schemas afterwards), or SurrealDB's own CBOR
/// (`application/cbor`, the encoding SurrealDB's SDKs speak), whose values
/// arrive as the types they are: an app that holds a decimal, a duration or
/// a record id says so, whatever the table's schema.
pub struct IngestPayload(pub Vec<Change>);

/// SurrealDB's CBOR media type.
const CBOR: &str = "application/cbor";

/// How deep a CBOR body may nest: SurrealDB's own limit for the values it
/// stores is lower, and the decoder's stack stays bounded.
const CBOR_DEPTH_LIMIT: usize = 256;

impl<S: Send + Sync> FromRequest<S> for IngestPayload {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let cbor = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(CBOR));
        if cbor {
            let (_, bytes) = read_body(request, state).await?;
            let value = surrealdb_core::rpc::format::cbor::decode(&bytes, CBOR_DEPTH_LIMIT)
                .map_err(|e| {
                    ApiError::BadRequest(format!("the body is not SurrealDB CBOR: {e}"))
                })?;
            return parse_cbor_body(value).map(IngestPayload);
        }
        let ApiJson(body) = ApiJson::<serde_json::Value>::from_request(request, state).await?;
        parse_body(body).map(IngestPayload)
    }
}

/// Parses a JSON body: a single change or an array of changes (one batch).
/// Every problem is a 400 that names the field and, in an array, the index.
pub fn parse_body(body: serde_json::Value) -> Result<Vec<Change>, ApiError> {
    let items = match body {
        serde_json::Value::Array(items) => items,
        obj @ serde_json::Value::Object(_) => vec![obj],
        _ => {
            return Err(ApiError::BadRequest(
                "expected a change object or an array of changes".into(),
            ));
        }
    };
    parse_items(items, parse_item)
}

/// Parses a CBOR body, as [`parse_body`] does JSON: the same fields, with
/// `id` a string or a record id, and `record` a map of SurrealDB values.
pub fn parse_cbor_body(body: sdb::Value) -> Result<Vec<Change>, ApiError> {
    let items = match body {
        sdb::Value::Array(items) => items.into_inner(),
        obj @ sdb::Value::Object(_) => vec![obj],
        _ => {
            return Err(ApiError::BadRequest(
                "expected a change map or an array of changes".into(),
            ));
        }
    };
    parse_items(items, parse_cbor_item)
}

fn parse_items<T>(
    items: Vec<T>,
    parse: impl Fn(T) -> Result<Change, String>,
) -> Result<Vec<Change>, ApiError> {
    if items.is_empty() {
        return Err(ApiError::BadRequest("the batch is empty".into()));
    }
    let many = items.len() > 1;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            parse(item).map_err(|e| match many {
                true => ApiError::BadRequest(format!("change {i}: {e}")),
                false => ApiError::BadRequest(e),
            })
        })
        .collect()
}

fn parse_item(item: serde_json::Value) -> Result<Change, String> {
    let item: IngestItem = serde_json::from_value(item).map_err(|e| e.to_string())?;
    check_table(&item.table)?;
    let id = RecordId::parse_in_table(&item.table, &item.id).map_err(|e| e.to_string())?;
    change(id, &item.op, item.record.as_ref().map(Value::from))
}

fn parse_cbor_item(item: sdb::Value) -> Result<Change, String> {
    let sdb::Value::Object(mut item) = item else {
        return Err("a change must be a map with `table`, `op`, `id` and `record`".into());
    };
    let table = match item.remove("table") {
        Some(sdb::Value::String(t)) => t,
        Some(sdb::Value::Table(t)) => t.into_string(),
        Some(_) => return Err("`table` must be a string".into()),
        None => return Err("missing field `table`".into()),
    };
    check_table(&table)?;
    let op = match item.remove("op") {
        Some(sdb::Value::String(op)) => op,
        Some(_) => return Err("`op` must be a string".into()),
        None => return Err("missing field `op`".into()),
    };
    let id = match item.remove("id") {
        Some(sdb::Value::String(id)) => {
            RecordId::parse_in_table(&table, &id).map_err(|e| e.to_string())?
        }
        Some(sdb::Value::RecordId(id)) => {
            let id = record_id_from_surreal(&id)
                .ok_or("`id` is a range of records; a change names one record")?;
            if id.table.as_str() != table {
                return Err(format!("`id` {id} is not a record of table `{table}`"));
            }
            id
        }
        Some(_) => return Err("`id` must be a string or a record id".into()),
        None => return Err("missing field `id`".into()),
    };
    let record = match item.remove("record") {
        None | Some(sdb::Value::None) => None,
        Some(v) => Some(from_surreal(v)),
    };
    change(id, &op, record)
}

fn check_table(table: &str) -> Result<(), String> {
    if table.is_empty() {
        return Err("`table` is empty".into());
    }
    if crate::db::schema::is_reserved_table(table) {
        return Err(format!(
            "`{table}` is one of SSP's own tables (`_spooky_*`); SSP writes it, apps do not ingest it"
        ));
    }
    Ok(())
}

/// The change an item describes, whichever encoding it came in.
fn change(id: RecordId, op: &str, record: Option<Value>) -> Result<Change, String> {
    let parsed = Op::parse(op)
        .ok_or_else(|| format!("unknown op `{op}`: expected CREATE, UPDATE or DELETE"))?;
    let content = match parsed {
        Op::Delete => None,
        Op::Create | Op::Update => match record {
            Some(Value::Object(o)) => Some(o),
            Some(_) => return Err("`record` must be an object".into()),
            None => {
                return Err(format!(
                    "`record` is required for {}",
                    op.to_ascii_uppercase()
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
    request_body(
        description = "JSON, or the same fields in SurrealDB's CBOR (`application/cbor`), whose values keep their types",
        content(
            (IngestBody = "application/json"),
            (IngestBody = "application/cbor"),
        )
    ),
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
    IngestPayload(mut changes): IngestPayload,
) -> Result<ApiJson<IngestSummary>, ApiError> {
    typed(&state, &mut changes).await;
    let summary = state
        .pipeline()?
        .ingest(changes, Source::Http)
        .await
        .map_err(pipeline_error)?;
    Ok(ApiJson(summary))
}
