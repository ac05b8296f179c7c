//! The view routes: register, unregister, heartbeat, read, reset.

use std::sync::Arc;

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, AppState, Core, pipeline_error};
use crate::engine::ViewMeta;
use crate::pipeline::ttl_sweep::parse_ttl;

/// The prefix a view id may carry; the stored id is without it.
const VIEW_PREFIX: &str = "_spooky_query:";

/// A view id as clients may send it: with or without `_spooky_query:`.
pub fn normalize_view_id(id: &str) -> Result<String, ApiError> {
    let id = id.strip_prefix(VIEW_PREFIX).unwrap_or(id);
    let id = id
        .strip_prefix('⟨')
        .and_then(|x| x.strip_suffix('⟩'))
        .unwrap_or(id);
    if id.is_empty() {
        return Err(ApiError::BadRequest("`id` is empty".into()));
    }
    Ok(id.to_string())
}

#[derive(Debug, Deserialize)]
struct RegisterBody {
    id: String,
    #[serde(alias = "surql")]
    sql: String,
    #[serde(rename = "clientId")]
    client_id: String,
    #[serde(default)]
    params: Option<serde_json::Value>,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default, rename = "lastActiveAt")]
    last_active_at: Option<String>,
}

fn parse_register(body: serde_json::Value) -> Result<ViewMeta, ApiError> {
    let b: RegisterBody =
        serde_json::from_value(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let id = normalize_view_id(&b.id)?;
    if b.client_id.is_empty() {
        return Err(ApiError::BadRequest("`clientId` is empty".into()));
    }
    let params = match b.params {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(o)) => o,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`params` must be a JSON object".into(),
            ));
        }
    };
    let ttl = b.ttl.unwrap_or_else(|| "1h".into());
    parse_ttl(&ttl).map_err(ApiError::BadRequest)?;
    let last_active_at = match b.last_active_at {
        None => Utc::now(),
        Some(s) => DateTime::parse_from_rfc3339(&s)
            .map_err(|e| ApiError::BadRequest(format!("`lastActiveAt` is not RFC 3339: {e}")))?
            .with_timezone(&Utc),
    };
    Ok(ViewMeta {
        id: id.into(),
        client_id: b.client_id.into(),
        sql: b.sql,
        params,
        ttl,
        last_active_at,
    })
}

/// One record of a view, as `GET /view/{id}` lists it.
#[derive(Debug, Serialize)]
pub struct RecordRef {
    pub id: String,
    pub version: u64,
}

/// A view and its current result set.
#[derive(Debug, Serialize)]
pub struct ViewBody {
    pub id: String,
    #[serde(rename = "clientId")]
    pub client_id: String,
    pub sql: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub ttl: String,
    #[serde(rename = "lastActiveAt")]
    pub last_active_at: DateTime<Utc>,
    pub records: Vec<RecordRef>,
}

fn view_body(core: &Core, id: &str) -> Option<ViewBody> {
    core.pipeline.read(|engine| {
        let meta = engine.view(id)?;
        let records = engine
            .view_records(id)?
            .into_iter()
            .map(|(r, version)| RecordRef {
                id: r.to_string(),
                version,
            })
            .collect();
        Some(ViewBody {
            id: meta.id.to_string(),
            client_id: meta.client_id.to_string(),
            sql: meta.sql.clone(),
            params: meta.params.clone(),
            ttl: meta.ttl.clone(),
            last_active_at: meta.last_active_at,
            records,
        })
    })
}

pub async fn register(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<ViewBody>, ApiError> {
    let meta = parse_register(body)?;
    let core = state.core()?;
    // Plan first: an unsupported query is refused before anything happens.
    let tables = core
        .pipeline
        .engine()
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .prepare(&meta.sql)
        .map_err(|e| pipeline_error(e.into()))?;
    // The first view to need a table loads the table's existing rows.
    state
        .await_pipeline(core.tracker.ensure(&tables))
        .await
        .map_err(pipeline_error)?;
    let id = meta.id.to_string();
    state
        .await_pipeline(core.pipeline.register(meta))
        .await
        .map_err(pipeline_error)?;
    view_body(core, &id)
        .map(ApiJson)
        .ok_or_else(|| ApiError::Internal("the view vanished after registering".into()))
}

#[derive(Debug, Deserialize)]
struct IdBody {
    id: String,
}

fn parse_id(body: serde_json::Value) -> Result<String, ApiError> {
    let b: IdBody =
        serde_json::from_value(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    normalize_view_id(&b.id)
}

#[derive(Debug, Serialize)]
pub struct UnregisterBody {
    pub id: String,
    pub existed: bool,
}

pub async fn unregister(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<UnregisterBody>, ApiError> {
    let id = parse_id(body)?;
    let core = state.core()?;
    let existed = state
        .await_pipeline(core.pipeline.unregister(id.clone()))
        .await
        .map_err(pipeline_error)?;
    Ok(ApiJson(UnregisterBody { id, existed }))
}

#[derive(Debug, Serialize)]
pub struct HeartbeatBody {
    pub id: String,
    #[serde(rename = "lastActiveAt")]
    pub last_active_at: DateTime<Utc>,
}

pub async fn heartbeat(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<HeartbeatBody>, ApiError> {
    let id = parse_id(body)?;
    let core = state.core()?;
    let now = Utc::now();
    let known = state
        .await_pipeline(core.pipeline.heartbeat(id.clone(), now))
        .await
        .map_err(pipeline_error)?;
    if !known {
        return Err(ApiError::NotFound(format!("no view `{id}`")));
    }
    Ok(ApiJson(HeartbeatBody {
        id,
        last_active_at: now,
    }))
}

pub async fn get_view(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<ApiJson<ViewBody>, ApiError> {
    let id = normalize_view_id(&id)?;
    view_body(state.core()?, &id)
        .map(ApiJson)
        .ok_or_else(|| ApiError::NotFound(format!("no view `{id}`")))
}

#[derive(Debug, Serialize)]
pub struct ResetBody {
    pub reset: bool,
}

pub async fn reset(State(state): State<Arc<AppState>>) -> Result<ApiJson<ResetBody>, ApiError> {
    let core = state.core()?;
    state
        .await_pipeline(core.pipeline.reset())
        .await
        .map_err(pipeline_error)?;
    core.tracker.clear().await;
    Ok(ApiJson(ResetBody { reset: true }))
}
