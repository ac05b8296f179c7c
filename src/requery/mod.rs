//! The re-query tier: views the incremental engine cannot maintain exactly,
//! kept exact by SurrealDB itself.
//!
//! A query SurrealDB accepts but the engine does not (user functions,
//! aggregates, graph traversals, record-link paths, ...) is not refused: SSP
//! finds the tables it reads ([`deps`]), and after every committed batch that
//! changed one of them the pipeline runs the query again in SurrealDB, with
//! the view's params bound, and turns the difference in the records it shows
//! into edges, in the batch's one transaction. Each view runs at most once
//! per batch, and one batch at a time, so re-runs coalesce under load.
//!
//! What a re-query view's records are: the record each row comes from, as
//! in the incremental tier (the query runs with one more field, or for
//! `SELECT VALUE` one more statement, that says which: see [`rows`]), and
//! every record whose content the result shows, i.e. every object with a
//! record `id` nested in a row (subquery results, fetched links), once
//! each. A link that is only referenced (`author: user:1`, not fetched, or
//! a value of `SELECT VALUE author`) is not a member.

pub mod deps;
pub mod rows;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use surrealdb::types as sdb;

use crate::db::values::{param_to_surreal, record_id_from_surreal};
use crate::db::{Db, DbError, Query};
use crate::engine::value::RecordId;

pub use deps::{Reads, Refused};

/// Why a query cannot be a re-query view, or could not be analysed yet.
#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a query reads, user functions' bodies included (read from the
/// database's `INFO FOR DB`, transitively).
pub async fn analyse(
    db: &Db,
    sql: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Reads, AnalyseError> {
    let mut reads = deps::reads(sql, params)?;
    if reads.functions.is_empty() {
        return Ok(reads);
    }
    let definitions = defined_functions(db).await?;
    let mut done = BTreeSet::new();
    loop {
        let pending: Vec<String> = reads.functions.difference(&done).cloned().collect();
        if pending.is_empty() {
            return Ok(reads);
        }
        for name in pending {
            match definitions.get(&name) {
                Some(text) => reads.absorb_function(text)?,
                None => {
                    return Err(Refused(format!(
                        "the query calls `fn::{name}`, which the database does not define"
                    ))
                    .into());
                }
            }
            done.insert(name);
        }
    }
}

/// Every user function the database defines: its `DEFINE FUNCTION` text
/// by name without `fn::` (`INFO FOR DB`).
async fn defined_functions(db: &Db) -> Result<BTreeMap<String, String>, DbError> {
    let mut response = db.run(Query::new("INFO FOR DB")).await?;
    let info: sdb::Value = response.take(0)?;
    let sdb::Value::Object(mut info) = info else {
        return Ok(BTreeMap::new());
    };
    let Some(sdb::Value::Object(functions)) = info.remove("functions") else {
        return Ok(BTreeMap::new());
    };
    Ok(functions
        .into_iter()
        .filter_map(|(name, text)| match text {
            sdb::Value::String(text) => {
                let name = name.strip_prefix("fn::").unwrap_or(&name).to_owned();
                Some((name, text))
            }
            _ => None,
        })
        .collect())
}

/// The definitions of the user functions `sql` names, and of those their
/// bodies name, for the incremental tier to inline (see
/// `engine::parser::functions`). Names are read from the text, so a name
/// in a string literal costs one definition more, nothing else; a name the
/// database does not define is left out (the engine then refuses the call).
/// A text that names none costs no read.
pub async fn function_definitions(
    db: &Db,
    sql: &str,
) -> Result<crate::engine::parser::Definitions, DbError> {
    let mut out = crate::engine::parser::Definitions::new();
    let mut pending = function_names(sql);
    if pending.is_empty() {
        return Ok(out);
    }
    let defined = defined_functions(db).await?;
    while let Some(name) = pending.pop() {
        if out.contains_key(&name) {
            continue;
        }
        if let Some(text) = defined.get(&name) {
            pending.extend(function_names(text));
            out.insert(name, text.clone());
        }
    }
    Ok(out)
}

/// The names after each `fn::` (any case, as SurrealDB reads the prefix)
/// in `text` (`fn::a::b(` gives `a::b`).
fn function_names(text: &str) -> Vec<String> {
    // ASCII lowercasing keeps every byte offset.
    text.to_ascii_lowercase()
        .match_indices("fn::")
        .map(|(at, _)| {
            let rest = &text[at + 4..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches(':').to_owned()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// How a view enters the re-query tier: why the incremental tier did not
/// take it, and the tables its text reads.
#[derive(Clone, Debug)]
pub struct RequeryPlan {
    pub reason: String,
    pub tables: Vec<Arc<str>>,
}

/// The re-query tier's plan for a view the incremental engine refused
/// with `reason`: the tables it reads, its user functions' bodies included.
pub async fn plan(
    db: &Db,
    sql: &str,
    params: &serde_json::Map<String, serde_json::Value>,
    reason: String,
) -> Result<RequeryPlan, AnalyseError> {
    let reads = analyse(db, sql, params).await?;
    if let Some(t) = reads
        .tables
        .iter()
        .find(|t| crate::db::schema::is_reserved_table(t))
    {
        return Err(Refused(format!(
            "`{t}` is one of SSP's own tables (`_spooky_*`); a view cannot read it"
        ))
        .into());
    }
    Ok(RequeryPlan {
        reason,
        tables: reads.tables.iter().map(|t| Arc::from(t.as_str())).collect(),
    })
}

/// One run of a view's query.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Answer {
    /// The records the result shows (see the module documentation), sorted.
    pub members: Vec<RecordId>,
    /// Every table a record id in the result belongs to, members or
    /// links: a change there may change the answer too.
    pub linked: BTreeSet<Arc<str>>,
}

/// Runs `sql` with `params` bound, as SurrealDB answers it.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn run(
    db: &Db,
    sql: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Answer, DbError> {
    let rows::Rewritten { sql, ids_after } = rows::with_row_ids(sql);
    let mut query = match params.get(deps::AUTH) {
        Some(_) => Query::new(deps::rename_auth(&sql)),
        None => Query::new(sql),
    };
    for (name, value) in params {
        let name = if name == deps::AUTH {
            deps::AUTH_BOUND_AS.to_owned()
        } else {
            name.clone()
        };
        query.set(name, param_to_surreal(value));
    }
    let mut response = db.run(query).await?;
    let result: sdb::Value = response.take(0)?;
    // A `SELECT VALUE` answer's bare record ids are values (`VALUE author`),
    // not rows: its rows' records are the second statement's answer.
    let mut answer = answer_of(result, !ids_after);
    if ids_after {
        let ids = answer_of(response.take(1)?, true);
        answer.linked.extend(ids.linked);
        answer.members.extend(ids.members);
        answer.members.sort();
        answer.members.dedup();
    }
    Ok(answer)
}

/// Runs `tasks` (at most [`MAX_CONCURRENT_RUNS`] at once), each until it
/// answers: while the database is unavailable a run is retried with
/// backoff, like an edge write, since the batch's edges wait for it. An
/// error SurrealDB gives for the query itself is returned.
pub async fn run_all(
    db: &Db,
    tasks: Vec<crate::engine::RequeryTask>,
) -> Vec<(Arc<str>, Result<Answer, DbError>)> {
    use futures::stream::StreamExt;
    futures::stream::iter(tasks)
        .map(|task| async move {
            let started = std::time::Instant::now();
            let answer = run_until_answered(db, &task.sql, &task.params).await;
            metrics::histogram!("ssp_requery_seconds").record(started.elapsed().as_secs_f64());
            metrics::counter!("ssp_requery_runs_total").increment(1);
            (task.view, answer)
        })
        .buffer_unordered(MAX_CONCURRENT_RUNS)
        .collect()
        .await
}

/// Re-runs in flight at once: enough to use a server's cores, few enough
/// not to crowd out the edge writes on the same connection.
pub const MAX_CONCURRENT_RUNS: usize = 8;

/// [`run`], retried with backoff while the database is unavailable.
pub async fn run_until_answered(
    db: &Db,
    sql: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Answer, DbError> {
    use backoff::backoff::Backoff;
    let mut backoff = crate::db::backoff_forever(
        std::time::Duration::from_millis(50),
        std::time::Duration::from_secs(2),
    );
    loop {
        match run(db, sql, params).await {
            Err(e) if e.is_unavailable() || e.is_conflict() => {
                let wait = backoff
                    .next_backoff()
                    .unwrap_or(std::time::Duration::from_secs(2));
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "re-query failed, retrying");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// The members of an answer: each object's record `id` (or
/// [`rows::ROW_ID`]), and with `ids_are_rows`, each record id that is a
/// row itself (`SELECT VALUE id`).
fn answer_of(result: sdb::Value, ids_are_rows: bool) -> Answer {
    let mut members = BTreeSet::new();
    let mut linked = BTreeSet::new();
    let rows = match result {
        sdb::Value::Array(a) => a.into_inner(),
        // `SELECT ... FROM ONLY`: one row, or NONE.
        other => vec![other],
    };
    // Iterative: a result is as deep as the data, which SurrealDB lets nest
    // deeper than a recursive walk would like.
    let mut stack: Vec<(sdb::Value, bool)> = rows.into_iter().map(|v| (v, true)).collect();
    while let Some((value, top)) = stack.pop() {
        match value {
            sdb::Value::RecordId(r) => {
                // A range names many records and is the id of none.
                let Some(id) = record_id_from_surreal(&r) else {
                    continue;
                };
                linked.insert(Arc::<str>::from(id.table.as_str()));
                if top && ids_are_rows {
                    members.insert(id);
                }
            }
            sdb::Value::Object(o) => {
                for (k, v) in o.into_inner() {
                    match (k.as_str(), v) {
                        ("id" | rows::ROW_ID, sdb::Value::RecordId(r)) => {
                            let Some(id) = record_id_from_surreal(&r) else {
                                continue;
                            };
                            linked.insert(Arc::<str>::from(id.table.as_str()));
                            members.insert(id);
                        }
                        (_, v) => stack.push((v, false)),
                    }
                }
            }
            sdb::Value::Array(a) => stack.extend(a.into_inner().into_iter().map(|v| (v, top))),
            sdb::Value::Set(s) => stack.extend(s.into_iter().map(|v| (v, top))),
            _ => {}
        }
    }
    Answer {
        members: members.into_iter().collect(),
        linked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_are_read_from_the_text() {
        assert_eq!(
            function_names("SELECT fn::a(x), fn::team::b_c($y) FROM t WHERE fn::a(1)"),
            ["a", "team::b_c", "a"]
        );
        assert_eq!(function_names("SELECT FN::Ab(1) FROM t"), ["Ab"]);
        assert!(function_names("SELECT * FROM fn").is_empty());
    }

    fn rid(t: &str, k: i64) -> sdb::Value {
        sdb::Value::RecordId(sdb::RecordId::new(t, k))
    }

    fn obj(pairs: Vec<(&str, sdb::Value)>) -> sdb::Value {
        let mut o = sdb::Object::new();
        for (k, v) in pairs {
            o.insert(k.to_string(), v);
        }
        sdb::Value::Object(o)
    }

    #[test]
    fn members_are_the_records_the_result_shows() {
        let result = sdb::Value::Array(
            vec![
                obj(vec![
                    ("id", rid("post", 1)),
                    ("author", rid("user", 7)),
                    (
                        "comments",
                        sdb::Value::Array(
                            vec![obj(vec![
                                ("id", rid("comment", 3)),
                                ("text", sdb::Value::None),
                            ])]
                            .into(),
                        ),
                    ),
                ]),
                obj(vec![("title", sdb::Value::String("no id".into()))]),
                obj(vec![
                    ("title", sdb::Value::String("its record".into())),
                    (rows::ROW_ID, rid("post", 4)),
                ]),
                rid("post", 2),
            ]
            .into(),
        );
        let a = answer_of(result.clone(), true);
        let members: Vec<String> = a.members.iter().map(|r| r.to_string()).collect();
        assert_eq!(members, ["comment:3", "post:1", "post:2", "post:4"]);
        let linked: Vec<&str> = a.linked.iter().map(|t| t.as_ref()).collect();
        assert_eq!(
            linked,
            ["comment", "post", "user"],
            "the author link counts as read"
        );
        // In a `SELECT VALUE` answer, an id is a value, not a row.
        let a = answer_of(result, false);
        let members: Vec<String> = a.members.iter().map(|r| r.to_string()).collect();
        assert_eq!(members, ["comment:3", "post:1", "post:4"]);
    }
}
