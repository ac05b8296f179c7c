//! The view routes: register, unregister, heartbeat, read, reset.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ApiJson, AppState, Core, ErrorBody, pipeline_error};
use crate::engine::value::RecordId;
use crate::engine::{EngineError, Tier, ViewMeta};
use crate::pipeline::PipelineError;
use crate::pipeline::ttl_sweep::parse_ttl;
use crate::requery::{self, RequeryPlan};

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

/// The body of `POST /view/register`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterBody {
    /// The view id, with or without `_spooky_query:`.
    #[schema(example = "threads-of-1")]
    id: String,
    /// The SurrealQL `SELECT` (also accepted as `surql`).
    #[serde(alias = "surql")]
    #[schema(example = "SELECT * FROM thread WHERE author = $uid")]
    sql: String,
    /// The client the edges are written for.
    #[serde(rename = "clientId")]
    #[schema(example = "browser-42")]
    client_id: String,
    /// Values of the query's `$parameters`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    params: Option<serde_json::Value>,
    /// How long the view lives without a heartbeat (SurrealQL duration,
    /// default `1h`).
    #[serde(default)]
    #[schema(example = "1h")]
    ttl: Option<String>,
    /// RFC 3339; default now.
    #[serde(default, rename = "lastActiveAt")]
    #[schema(format = DateTime)]
    last_active_at: Option<String>,
    /// The viewer: the record id of the app's signed-in user. Only that
    /// record user may read the view's row and edges in SurrealDB, and the
    /// query's `$auth` is that user (kept among the params as `auth`).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "user:1")]
    owner: Option<serde_json::Value>,
    /// The older name of `owner`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "user:1")]
    auth: Option<serde_json::Value>,
}

fn parse_register(body: serde_json::Value) -> Result<ViewMeta, ApiError> {
    let b: RegisterBody =
        serde_json::from_value(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let id = normalize_view_id(&b.id)?;
    if b.client_id.is_empty() {
        return Err(ApiError::BadRequest("`clientId` is empty".into()));
    }
    let mut params = match b.params {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(o)) => o,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`params` must be a JSON object".into(),
            ));
        }
    };
    let owner = b.owner.filter(|o| !o.is_null());
    let auth = b.auth.filter(|a| !a.is_null());
    if let (Some(o), Some(a)) = (&owner, &auth)
        && o != a
    {
        return Err(ApiError::BadRequest(
            "`owner` and `auth` differ; `auth` is the older name of `owner`: give one".into(),
        ));
    }
    let mut viewer = None;
    if let Some(auth) = owner.or(auth) {
        let Some(record) = auth
            .as_str()
            .and_then(crate::engine::value::RecordId::parse)
        else {
            return Err(ApiError::BadRequest(format!(
                "`owner` (or `auth`) must be the viewer's record id, as text (`\"user:1\"`), got {auth}"
            )));
        };
        viewer = Some(Arc::<str>::from(record.to_string()));
        match params.get("auth") {
            Some(p) if *p != auth => {
                return Err(ApiError::BadRequest(
                    "`auth` and `params.auth` differ; give the viewer once".into(),
                ));
            }
            _ => {
                params.insert("auth".into(), auth);
            }
        }
    }
    let ttl = b.ttl.unwrap_or_else(|| "1h".into());
    let ttl_duration = parse_ttl(&ttl).map_err(ApiError::BadRequest)?;
    let last_active_at = match b.last_active_at {
        None => Utc::now(),
        Some(s) => DateTime::parse_from_rfc3339(&s)
            .map_err(|e| ApiError::BadRequest(format!("`lastActiveAt` is not RFC 3339: {e}")))?
            .with_timezone(&Utc),
    };
    // A view expired on arrival would be registered only for the next
    // sweep to remove it (and could be gone before its own answer).
    let expires = chrono::Duration::from_std(ttl_duration)
        .ok()
        .and_then(|ttl| last_active_at.checked_add_signed(ttl));
    if expires.is_some_and(|end| end < Utc::now()) {
        return Err(ApiError::BadRequest(format!(
            "the view would be expired on arrival: `lastActiveAt` + `ttl` ({ttl}) is in the past"
        )));
    }
    Ok(ViewMeta {
        id: id.into(),
        client_id: b.client_id.into(),
        sql: b.sql,
        params,
        ttl,
        last_active_at,
        owner: viewer,
    })
}

/// One record of a view, as `GET /view/{id}` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordRef {
    pub id: String,
    pub version: u64,
}

/// A view and its current result set.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewBody {
    pub id: String,
    #[serde(rename = "clientId")]
    pub client_id: String,
    pub sql: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Map<String, serde_json::Value>,
    pub ttl: String,
    #[serde(rename = "lastActiveAt")]
    pub last_active_at: DateTime<Utc>,
    /// The viewer (record id), when the registration named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "user:1")]
    pub owner: Option<String>,
    /// The result set, sorted by id, with each record's version (one page
    /// of it with `limit`).
    pub records: Vec<RecordRef>,
    /// With `limit`, when more records follow: the `after` of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "thread:1000")]
    pub next: Option<String>,
    /// Which tier maintains the view.
    pub tier: TierBody,
}

/// How SSP keeps a view up to date.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierBody {
    /// `incremental`: by deltas in SSP's engine. `requery`: the query is run
    /// again in SurrealDB after each change to a table it reads.
    #[schema(example = "incremental")]
    pub kind: &'static str,
    /// Why the view is not incremental (the construct SSP's engine does not
    /// maintain), for `requery`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The last re-run's failure, if it failed: SurrealDB refused the query
    /// on the data it holds now, and the edges keep the answer before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<Tier> for TierBody {
    fn from(t: Tier) -> Self {
        match t {
            Tier::Incremental => TierBody {
                kind: "incremental",
                reason: None,
                error: None,
            },
            Tier::Requery { reason, error } => TierBody {
                kind: "requery",
                reason: Some(reason),
                error,
            },
        }
    }
}

/// Which records of a view `GET /view/{id}` answers: all of them, or with
/// `limit`, a page of at most `limit` after the record id `after`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Most records in the answer (1 to 100,000); the answer's `next` names
    /// where the next page starts.
    limit: Option<usize>,
    /// Only records after this record id (the `next` of the page before).
    after: Option<String>,
}

/// Most records in one page.
const MAX_PAGE: usize = 100_000;

/// The part of `sorted` that `page` asks for, and where the next page
/// starts.
fn page_of(
    mut sorted: Vec<(RecordId, u64)>,
    limit: Option<usize>,
    after: Option<&RecordId>,
) -> (Vec<(RecordId, u64)>, Option<String>) {
    if let Some(after) = after {
        let start = sorted.partition_point(|(r, _)| r <= after);
        sorted.drain(..start);
    }
    let mut next = None;
    if let Some(limit) = limit
        && sorted.len() > limit
    {
        sorted.truncate(limit);
        next = sorted.last().map(|(r, _)| r.to_string());
    }
    (sorted, next)
}

fn view_body(
    core: &Core,
    id: &str,
    limit: Option<usize>,
    after: Option<&RecordId>,
) -> Option<ViewBody> {
    core.pipeline.read(|engine| {
        let meta = engine.view(id)?;
        let (page, next) = page_of(engine.view_records(id)?, limit, after);
        let records = page
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
            owner: meta.owner.as_deref().map(str::to_owned),
            records,
            next,
            tier: engine.tier(id)?.into(),
        })
    })
}

/// Loads and follows `tables` (the first view to need a table loads its
/// existing rows), within the write budget.
async fn ensure_tables(state: &AppState, core: &Core, tables: &[Arc<str>]) -> Result<(), ApiError> {
    match tokio::time::timeout(state.write_budget, core.tracker.ensure(tables)).await {
        Ok(loaded) => loaded.map_err(pipeline_error),
        Err(_) => Err(ApiError::NotQueued(format!(
            "loading the tables the view reads did not finish within {}s (the database \
             is slow or unavailable): the view was not registered; retry it",
            state.write_budget.as_secs_f32()
        ))),
    }
}

/// How often a registration may come back for tables its record links
/// reach (`author.org.name` reaches two, one after the other) before the
/// view goes to the re-query tier instead.
const LINK_LOAD_ROUNDS: usize = 4;

/// Registers an incremental view; when its record links reach tables SSP
/// does not hold yet, loads them and tries again, so that the engine
/// evaluates `author.name` on the author as SurrealDB does.
async fn register_following_links(
    state: &AppState,
    core: &Core,
    pipeline: &crate::pipeline::Pipeline,
    meta: crate::engine::ViewMeta,
) -> Result<crate::engine::ViewDelta, PipelineError> {
    let mut loaded: Vec<Arc<str>> = Vec::new();
    for _ in 0..LINK_LOAD_ROUNDS {
        match pipeline
            .register_after_loading(meta.clone(), loaded.clone())
            .await
        {
            Err(PipelineError::Engine(EngineError::NeedsTables(more))) => {
                if ensure_tables(state, core, &more).await.is_err() {
                    break;
                }
                loaded.extend(more);
            }
            other => return other,
        }
    }
    // Still short of a table: SurrealDB's own answer instead.
    let why = EngineError::Plan(crate::engine::plan::PlanError::FollowsLink);
    let plan = requery::plan(&state.db, &meta.sql, &meta.params, why.to_string())
        .await
        .map_err(|e| PipelineError::Query(e.to_string()))?;
    pipeline.register_requery(meta, plan).await
}

/// Register a view.
///
/// Plans the query, computes its result set and writes the view row and its
/// edges. Registering an existing id replaces the view.
#[utoipa::path(
    post,
    path = "/view/register",
    tag = "views",
    request_body = RegisterBody,
    responses(
        (status = 200, description = "Registered; the current result set", body = ViewBody),
        (status = 400, description = "Malformed body, bad `ttl`, `params` not an object", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 422, description = "`unsupported_query` / `invalid_query`: SurrealQL outside the supported subset, or invalid", body = ErrorBody),
        (status = 503, description = "`not_ready`: SSP is still starting; `db_unavailable`: the database did not take the write in time (it is queued and carried out later); `not_queued`: it never entered the queue (nothing was done)", body = ErrorBody),
        (status = 500, description = "`write_failed`: the database refused the write for good; the message says what SSP keeps and repairs", body = ErrorBody),
    )
)]
pub async fn register(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<ViewBody>, ApiError> {
    let meta = parse_register(body)?;
    let core = state.core()?;
    let id = meta.id.to_string();
    register_view(&state, core, meta).await?;
    view_body(core, &id, None, None)
        .map(ApiJson)
        .ok_or_else(|| ApiError::Internal("the view vanished after registering".into()))
}

/// Registers a view in whichever tier takes it, and answers once its row
/// and edges are committed: `POST /view/register`, and a view a clustered
/// instance takes over from its row.
pub async fn register_view(state: &AppState, core: &Core, meta: ViewMeta) -> Result<(), ApiError> {
    register_in_tier(state, core, meta, None).await
}

/// Registers a view again from its row, for a rebuild from the database:
/// as [`register_view`], but only the edges that differ from `edges` (its
/// edges in the database) are written, and a view registered, unregistered
/// or reset meanwhile is left as it is (see `Pipeline::from_row`).
pub async fn register_from_row(
    state: &AppState,
    core: &Core,
    meta: ViewMeta,
    edges: Vec<crate::sink::reconcile::EdgeRow>,
) -> Result<(), ApiError> {
    register_in_tier(state, core, meta, Some(edges)).await
}

async fn register_in_tier(
    state: &AppState,
    core: &Core,
    meta: ViewMeta,
    from_row: Option<Vec<crate::sink::reconcile::EdgeRow>>,
) -> Result<(), ApiError> {
    // SSP runs every view as itself: `$auth` would be its own session, not
    // the viewer's (SurrealDB gives it no value the app means).
    if let Some(p) = requery::deps::session_param(&meta.sql, &meta.params) {
        let advice = if p == requery::deps::AUTH {
            "give the viewer's record id as `owner` in the registration (`\"owner\": \"user:1\"`)"
        } else {
            "pass the value as an ordinary param, e.g. `$viewer` with \
             `\"params\": {\"viewer\": \"user:1\"}`"
        };
        return Err(ApiError::unprocessable(
            "unsupported_query",
            format!(
                "the query reads `${p}`, which SSP cannot give a view (it runs every view as itself): {advice}"
            ),
        ));
    }
    // A traversal is planned from the schema's relation tables, read now
    // (a table defined since the last view is seen).
    if meta.sql.contains("->") || meta.sql.contains("<-") {
        let tables = crate::sources::changefeed::relation_tables(&state.db)
            .await
            .map_err(|e| schema_read_failed(e, "table"))?;
        core.pipeline.set_relation_tables(tables);
    }
    // A user function is inlined as the database defines it now (the
    // engine keeps what it read, for restarts). No read without `fn::`.
    let definitions = requery::function_definitions(&state.db, &meta.sql)
        .await
        .map_err(|e| schema_read_failed(e, "function"))?;
    core.pipeline.set_functions(definitions);
    // Plan first: an unsupported query is refused before anything happens.
    let planned = core.pipeline.plan(&meta.sql, &meta.params);
    let (tables, requery) = match planned {
        Ok(tables) => (tables, None),
        Err(e) if e.is_unsupported() => {
            let plan = requery_plan(state, &meta, e).await?;
            (plan.tables.clone(), Some(plan))
        }
        Err(e) => return Err(pipeline_error(e.into())),
    };
    // The first view to need a table loads the table's existing rows.
    ensure_tables(state, core, &tables).await?;
    let pipeline = match from_row {
        Some(edges) => state.pipeline()?.from_row(edges),
        None => state.pipeline()?,
    };
    match requery {
        None => register_following_links(state, core, &pipeline, meta).await,
        Some(plan) => pipeline.register_requery(meta, plan).await,
    }
    .map_err(pipeline_error)?;
    Ok(())
}

/// The re-query tier's plan for a view the engine refused with `refusal`.
/// A query it cannot bound either is a 422 that gives both reasons.
/// A read of the database's schema before a registration failed: while
/// the database is unavailable, nothing was queued and the app retries.
fn schema_read_failed(e: crate::db::DbError, what: &str) -> ApiError {
    if e.is_unavailable() {
        ApiError::NotQueued(format!(
            "reading the database's {what} definitions failed ({e}): the view was not \
             registered; retry it"
        ))
    } else {
        ApiError::Internal(e.to_string())
    }
}

async fn requery_plan(
    state: &AppState,
    meta: &ViewMeta,
    refusal: EngineError,
) -> Result<RequeryPlan, ApiError> {
    let reason = refusal.to_string();
    match requery::plan(&state.db, &meta.sql, &meta.params, reason).await {
        Ok(plan) => Ok(plan),
        Err(requery::AnalyseError::Refused(why)) => Err(ApiError::unprocessable(
            "unsupported_query",
            format!("{refusal}; and SSP cannot re-run it in SurrealDB either: {why}"),
        )),
        Err(requery::AnalyseError::Db(e)) if e.is_unavailable() => {
            Err(ApiError::NotQueued(format!(
                "reading the database's function definitions failed ({e}): the view was not \
                 registered; retry it"
            )))
        }
        Err(requery::AnalyseError::Db(e)) => Err(ApiError::Internal(e.to_string())),
    }
}

/// A view id (`/view/unregister`, `/view/heartbeat`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct IdBody {
    /// With or without `_spooky_query:`.
    #[schema(example = "threads-of-1")]
    id: String,
}

fn parse_id(body: serde_json::Value) -> Result<String, ApiError> {
    let b: IdBody =
        serde_json::from_value(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    normalize_view_id(&b.id)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnregisterBody {
    pub id: String,
    pub existed: bool,
}

/// Unregister a view.
///
/// Removes the view, its edges and its row in one transaction. Idempotent:
/// 200 for an unknown id too.
#[utoipa::path(
    post,
    path = "/view/unregister",
    tag = "views",
    request_body = IdBody,
    responses(
        (status = 200, description = "Removed (`existed` says whether it was there)", body = UnregisterBody),
        (status = 400, description = "Malformed body or a missing field", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "`not_ready`: SSP is still starting; `db_unavailable`: the database did not take the write in time (it is queued and carried out later); `not_queued`: it never entered the queue (nothing was done)", body = ErrorBody),
        (status = 500, description = "`write_failed`: the database refused the write for good; the message says what SSP keeps and repairs", body = ErrorBody),
    )
)]
pub async fn unregister(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<UnregisterBody>, ApiError> {
    let id = parse_id(body)?;
    let existed = state
        .pipeline()?
        .unregister(id.clone())
        .await
        .map_err(pipeline_error)?;
    Ok(ApiJson(UnregisterBody { id, existed }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatBody {
    pub id: String,
    #[serde(rename = "lastActiveAt")]
    pub last_active_at: DateTime<Utc>,
}

/// Keep a view alive.
///
/// Sets its `lastActiveAt` to now; a view is removed once `lastActiveAt +
/// ttl` has passed.
#[utoipa::path(
    post,
    path = "/view/heartbeat",
    tag = "views",
    request_body = IdBody,
    responses(
        (status = 200, description = "Kept alive", body = HeartbeatBody),
        (status = 400, description = "Malformed body or a missing field", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such view", body = ErrorBody),
        (status = 503, description = "`not_ready`: SSP is still starting; `db_unavailable`: the database did not take the write in time (it is queued and carried out later); `not_queued`: it never entered the queue (nothing was done)", body = ErrorBody),
        (status = 500, description = "`write_failed`: the database refused the write for good; the message says what SSP keeps and repairs", body = ErrorBody),
    )
)]
pub async fn heartbeat(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<HeartbeatBody>, ApiError> {
    let id = parse_id(body)?;
    let now = Utc::now();
    let known = state
        .pipeline()?
        .heartbeat(id.clone(), now)
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

/// Read a view.
///
/// The view and its current result set, with each record's version: all of
/// it, or a page with `limit` (and `after`, the `next` of the page before).
#[utoipa::path(
    get,
    path = "/view/{id}",
    tag = "views",
    params(("id" = String, Path, description = "The view id, with or without `_spooky_query:`"), Page),
    responses(
        (status = 200, description = "The view", body = ViewBody),
        (status = 400, description = "A bad `limit` or `after`", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No such view", body = ErrorBody),
        (status = 503, description = "`not_ready`: SSP is still starting", body = ErrorBody),
    )
)]
pub async fn get_view(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<ApiJson<ViewBody>, ApiError> {
    let id = normalize_view_id(&id)?;
    let Query(page) = page.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if page.limit.is_some_and(|l| l == 0 || l > MAX_PAGE) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be 1 to {MAX_PAGE}"
        )));
    }
    let after = match page.after.as_deref() {
        None => None,
        Some(text) => Some(RecordId::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!("`after` is not a record id: {text:?}"))
        })?),
    };
    state.core()?;
    // The read waits while the applier holds the engine (a registration
    // over a big table): on a blocking thread, not on one of the runtime's.
    let body = tokio::task::spawn_blocking(move || {
        state
            .try_core()
            .and_then(|core| view_body(core, &id, page.limit, after.as_ref()))
            .ok_or_else(|| ApiError::NotFound(format!("no view `{id}`")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading the view failed: {e}")))?;
    body.map(ApiJson)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResetBody {
    pub reset: bool,
}

/// Remove every view.
///
/// Wipes the engine state, all `_spooky_list_ref` edges and all
/// `_spooky_query` rows in one transaction.
#[utoipa::path(
    post,
    path = "/reset",
    tag = "ops",
    responses(
        (status = 200, description = "Everything removed", body = ResetBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "`not_ready`: SSP is still starting; `db_unavailable`: the database did not take the write in time (it is queued and carried out later); `not_queued`: it never entered the queue (nothing was done)", body = ErrorBody),
        (status = 500, description = "`write_failed`: the database refused the write for good; the message says what SSP keeps and repairs", body = ErrorBody),
    )
)]
pub async fn reset(State(state): State<Arc<AppState>>) -> Result<ApiJson<ResetBody>, ApiError> {
    let core = state.core()?;
    state.pipeline()?.reset().await.map_err(pipeline_error)?;
    core.tracker.clear().await;
    Ok(ApiJson(ResetBody { reset: true }))
}
