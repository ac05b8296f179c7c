//! Startup: restore the engine from the state file, or rebuild it from the
//! database. The bootstrap then makes the edges match it
//! ([`crate::sink::reconcile`], which also takes the record versions back
//! from the edges and from the versions kept for deleted edges, so clients
//! see no version go back or bump spuriously).
//!
//! SSP never silently starts empty while views exist in the database: a
//! missing, corrupt or incompatible state file is moved aside and the state
//! is rebuilt from the `_spooky_query` rows and the tables they read, while
//! SSP serves (see `bootstrap::rebuild`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use surrealdb::types as sdb;

use crate::db::schema::QUERY_TABLE;
use crate::db::values::surreal_to_json;
use crate::db::{Db, DbError, Query};
use crate::engine::plan::PlanError;
use crate::engine::{Engine, EngineError, ViewMeta};
use crate::persistence::state_file::{self, LoadError, move_aside};
use crate::progress::Progress;
use crate::requery::{self, AnalyseError};
use crate::sources::snapshot::TablePages;

/// What startup restored.
pub struct Restored {
    pub engine: Engine,
    pub cursors: BTreeMap<String, u64>,
    pub cursor_times: BTreeMap<String, DateTime<Utc>>,
    /// How the state was obtained, for the log and `/health`.
    pub origin: &'static str,
    /// Rebuilt from the database: the views of its rows, registered again
    /// while SSP serves (see `bootstrap::rebuild`); the engine is empty.
    pub pending: Vec<ViewMeta>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot move the unreadable state file aside: {0}")]
    MoveAside(std::io::Error),
}

/// Loads the state file; or, when there is none usable, reads the views'
/// rows to rebuild them from the database once SSP serves. `path` is `None`
/// when persistence is off.
pub async fn restore(path: Option<&Path>, db: &Db) -> Result<Restored, RestoreError> {
    let loaded = match path {
        None => Ok(None),
        Some(p) => state_file::restore(p),
    };
    match loaded {
        Ok(Some((file, mut engine))) => {
            let views = file.engine.views.len();
            let records = engine.record_count();
            tracing::info!(views, records, "state restored from the state file");
            sync_views(&mut engine, db).await?;
            rerun_requery(&mut engine, db).await?;
            return Ok(Restored {
                engine,
                cursors: file.cursors,
                cursor_times: file.cursor_times,
                origin: "state_file",
                pending: Vec::new(),
            });
        }
        Err(state_file::RestoreError::Engine(e)) => {
            tracing::warn!(error = %e, "the state file holds a view that no longer plans; rebuilding from the database");
            if let Some(p) = path {
                set_aside(p)?;
            }
        }
        Ok(None) => {
            if let Some(p) = path {
                tracing::info!(path = %p.display(), "no state file; rebuilding the state from the database");
            }
        }
        Err(state_file::RestoreError::Load(e)) => {
            tracing::warn!(error = %e, "the state file is unusable; moving it aside and rebuilding from the database");
            if let (Some(p), false) = (path, matches!(e, LoadError::Io { .. })) {
                set_aside(p)?;
            }
        }
    }
    Ok(Restored {
        engine: Engine::new(),
        cursors: BTreeMap::new(),
        cursor_times: BTreeMap::new(),
        origin: "database",
        pending: view_rows(db).await?,
    })
}

/// Makes the engine's views match the `_spooky_query` rows: a view
/// registered after the last save is re-planned from its row, and a view
/// whose row was deleted while SSP was down is dropped.
async fn sync_views(engine: &mut Engine, db: &Db) -> Result<(), DbError> {
    let rows = view_rows(db).await?;
    let known: std::collections::HashSet<String> = rows.iter().map(|v| v.id.to_string()).collect();
    let stale: Vec<String> = engine
        .views()
        .filter(|v| !known.contains(v.id.as_ref()))
        .map(|v| v.id.to_string())
        .collect();
    for id in stale {
        tracing::info!(view = %id, "view row deleted while SSP was down: unregistering it");
        engine.unregister(&id);
    }
    for mut meta in rows {
        let id = meta.id.clone();
        match engine.view(&id) {
            None => {
                tracing::info!(view = %id, "view registered after the last save: re-planning it from its row");
                if let Err(e) = register_stored(engine, db, meta).await? {
                    tracing::warn!(view = %id, error = %e, "a stored view no longer plans; it is skipped");
                }
            }
            // The row is written before a registration or heartbeat is
            // answered, the state file only at the next save: after a kill
            // -9 the row can be newer. Its `lastActiveAt` must win, or views
            // kept alive by heartbeats expire at the first sweep.
            Some(have) if same_view(&have, &meta) => {
                if meta.last_active_at > have.last_active_at {
                    engine.touch(&id, meta.last_active_at);
                }
            }
            Some(have) => {
                tracing::info!(view = %id, "view re-registered after the last save: re-planning it from its row");
                meta.last_active_at = meta.last_active_at.max(have.last_active_at);
                if let Err(e) = register_stored(engine, db, meta).await? {
                    tracing::warn!(view = %id, error = %e, "the view's row no longer plans; the saved view is kept");
                }
            }
        }
    }
    Ok(())
}

/// Whether a view row says the same as the view the engine holds (but for
/// `lastActiveAt`). The row's `ttl` is SurrealDB's rendering of the
/// duration, so durations are compared, not their text.
fn same_view(engine: &ViewMeta, row: &ViewMeta) -> bool {
    let ttl = |m: &ViewMeta| crate::pipeline::ttl_sweep::parse_ttl(&m.ttl).ok();
    engine.sql == row.sql
        && engine.params == row.params
        && engine.client_id == row.client_id
        && engine.owner == row.owner
        && ttl(engine) == ttl(row)
}

async fn view_rows(db: &Db) -> Result<Vec<ViewMeta>, DbError> {
    read_view_rows(db, None).await
}

/// The views the `_spooky_query` rows describe: all, or those of `ids`.
pub async fn read_view_rows(db: &Db, ids: Option<&[String]>) -> Result<Vec<ViewMeta>, DbError> {
    let fields = "id, clientId, surql, params, <string> ttl AS ttl, lastActiveAt, owner";
    let q = match ids {
        None => Query::new(format!("SELECT {fields} FROM {QUERY_TABLE}")),
        Some(ids) => Query::new(format!("SELECT {fields} FROM $rows")).bind(
            "rows",
            sdb::Value::Array(
                ids.iter()
                    .map(|id| sdb::Value::RecordId(crate::db::schema::view_row(id)))
                    .collect::<Vec<_>>()
                    .into(),
            ),
        ),
    };
    let mut response = db.run(q).await?;
    let rows: Vec<sdb::Value> = response.take(0)?;
    let mut views = Vec::new();
    for row in rows {
        match view_from_row(row) {
            Some(meta) => views.push(meta),
            None => tracing::warn!("skipping a malformed _spooky_query row"),
        }
    }
    Ok(views)
}

fn set_aside(path: &Path) -> Result<(), RestoreError> {
    let aside = move_aside(path).map_err(RestoreError::MoveAside)?;
    tracing::warn!(moved_to = %aside.display(), "unreadable state file moved aside");
    Ok(())
}

/// Reads every record of `table` into the engine, page by page (every call
/// bounded whatever the table's size); returns how many.
async fn load_table(engine: &mut Engine, db: &Db, table: &Arc<str>) -> Result<usize, DbError> {
    let mut progress = Progress::start("rebuild", table, None);
    let mut pages = TablePages::new(table);
    let mut rows = 0usize;
    while let Some(page) = pages.next_page(db).await? {
        engine.apply_batch(&page);
        rows += page.len();
        progress.add(page.len() as u64);
    }
    progress.finish();
    Ok(rows)
}

/// Registers a view from its row in whichever tier takes it, as
/// `POST /view/register` would. The inner error is why it no longer
/// registers (the view is skipped); the outer one a database failure (the
/// bootstrap retries).
async fn register_stored(
    engine: &mut Engine,
    db: &Db,
    meta: ViewMeta,
) -> Result<Result<(), String>, DbError> {
    let mut rounds = 0;
    let refusal = loop {
        match engine.register(meta.clone()) {
            Ok(_) => return Ok(Ok(())),
            // Its record links reach tables no view's text names: load
            // them too, as `POST /view/register` does.
            Err(EngineError::NeedsTables(tables)) if rounds < 4 => {
                rounds += 1;
                for t in &tables {
                    load_table(engine, db, t).await?;
                }
                engine.mark_loaded(&tables);
            }
            Err(EngineError::NeedsTables(_)) => break EngineError::Plan(PlanError::FollowsLink),
            Err(e) if e.is_unsupported() => break e,
            Err(e) => return Ok(Err(e.to_string())),
        }
    };
    let plan = match requery::plan(db, &meta.sql, &meta.params, refusal.to_string()).await {
        Ok(plan) => plan,
        Err(AnalyseError::Db(e)) => return Err(e),
        Err(AnalyseError::Refused(why)) => return Ok(Err(format!("{refusal}; {why}"))),
    };
    let answer = match requery::run(db, &meta.sql, &meta.params).await {
        Ok(answer) => answer,
        Err(e) if e.is_unavailable() || e.is_conflict() => return Err(e),
        Err(e) => return Ok(Err(e.to_string())),
    };
    engine.register_requery(
        meta,
        plan.reason,
        plan.tables,
        answer.members,
        answer.linked.into_iter().collect(),
    );
    Ok(Ok(()))
}

/// Runs every re-query view again: its tables may have changed while SSP
/// was down, in ways no change feed replays (a feed older than its
/// retention, a function redefined). The reconcile then writes what moved.
async fn rerun_requery(engine: &mut Engine, db: &Db) -> Result<(), DbError> {
    for task in engine.requery_all() {
        match requery::run(db, &task.sql, &task.params).await {
            Ok(a) => {
                engine.requery_answer(&task.view, a.members, a.linked.into_iter().collect());
            }
            Err(e) if e.is_unavailable() || e.is_conflict() => return Err(e),
            Err(e) => engine.requery_failed(&task.view, e.to_string()),
        }
    }
    Ok(())
}

fn view_from_row(row: sdb::Value) -> Option<ViewMeta> {
    let sdb::Value::Object(mut o) = row else {
        return None;
    };
    let id = match o.remove("id")? {
        sdb::Value::RecordId(r) => match &r.key {
            sdb::RecordIdKey::String(s) => s.clone(),
            sdb::RecordIdKey::Number(n) => n.to_string(),
            _ => return None,
        },
        _ => return None,
    };
    let text = |v: Option<sdb::Value>| match v {
        Some(sdb::Value::String(s)) => Some(s),
        _ => None,
    };
    let client_id = text(o.remove("clientId"))?;
    let sql = text(o.remove("surql"))?;
    let ttl = text(o.remove("ttl")).unwrap_or_else(|| "1h".into());
    let params = match o.remove("params").map(surreal_to_json) {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let last_active_at = match o.remove("lastActiveAt") {
        Some(sdb::Value::Datetime(d)) => d.into_inner(),
        _ => Utc::now(),
    };
    let owner = match o.remove("owner") {
        Some(sdb::Value::RecordId(r)) => match surreal_to_json(sdb::Value::RecordId(r)) {
            serde_json::Value::String(s) => Some(s.into()),
            _ => return None,
        },
        _ => None,
    };
    Some(ViewMeta {
        id: id.into(),
        client_id: client_id.into(),
        sql,
        params,
        ttl,
        last_active_at,
        owner,
    })
}
