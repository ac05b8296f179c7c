//! SurrealDB's change feed: making sure tracked tables have one, and reading
//! it to fill the gaps LIVE SELECT leaves (a reconnect, a restart, a LIVE
//! error, the select-then-live race at subscription time).
//!
//! What SurrealDB 3.3.5 does, as read in its source and checked by the
//! integration tests:
//! - A versionstamp is a hybrid logical clock: `(unix millis << 16) | counter`
//!   (mem, SurrealKV and RocksDB stores). It is taken just before the commit,
//!   so two concurrent commits can become visible out of stamp order: a reader
//!   must re-read a little behind what it has seen ([`crate::sources::change_worker`]
//!   keeps one poll interval of overlap).
//! - `SHOW CHANGES ... SINCE n` is inclusive of `n`.
//! - `LIMIT` (at most 1000) counts the raw entries of *every* table of the
//!   database (one per table per commit) before the `FOR TABLE` filter, so a
//!   short or even empty page of `FOR TABLE t` proves nothing. We therefore
//!   read `SHOW CHANGES FOR DATABASE`, unfiltered, and page on the highest
//!   versionstamp returned: a page whose highest stamp is the one we asked
//!   from (the inclusive re-read) or that is empty means we reached the head.
//! - `SINCE d'...'` (a datetime) is converted with the store's nanosecond
//!   clock while entries carry millisecond HLC stamps, so on these stores it
//!   silently returns nothing. Only integer versionstamps are used here.
//! - `SINCE` only takes a literal, not a parameter: the integer (ours, never
//!   user data) is formatted into the statement.
//! - Retention: entries older than the largest change-feed expiry of the
//!   database are garbage collected.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use surrealdb::types as sdb;

use crate::config::ChangefeedMode;
use crate::db::values::{object_from_surreal, record_id_from_surreal};
use crate::db::{Db, DbError, Query, escape_ident};
use crate::engine::value::{Object, RecordId};

/// Most entries one `SHOW CHANGES` returns (SurrealDB's own cap).
pub const PAGE_LIMIT: u32 = 1000;

/// One record change read from the feed.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEntry {
    pub versionstamp: u64,
    pub id: RecordId,
    /// The record's content after the change; `None` for a delete.
    pub content: Option<Object>,
}

/// One page of the database-wide feed, in commit (versionstamp) order.
#[derive(Debug, Default)]
pub struct FeedPage {
    pub entries: Vec<FeedEntry>,
    /// The highest versionstamp of the page (any table), if it was not empty.
    pub last_versionstamp: Option<u64>,
}

/// Reads one page of `SHOW CHANGES FOR DATABASE SINCE since` (inclusive).
pub async fn read_page(db: &Db, since: u64) -> Result<FeedPage, DbError> {
    // `SINCE` accepts only a literal; `since` is an integer of ours.
    let q = Query::new(format!(
        "SHOW CHANGES FOR DATABASE SINCE {since} LIMIT {PAGE_LIMIT}"
    ));
    let mut response = db.run_background(q).await?;
    let sets: Vec<sdb::Value> = response.take(0)?;
    Ok(parse_change_sets(sets))
}

/// Parses the change sets `SHOW CHANGES` returns:
/// `[{versionstamp, changes: [{update: {..}} | {current, update: [patch]} | {delete: {id}} | {define_table}]}]`.
pub fn parse_change_sets(sets: Vec<sdb::Value>) -> FeedPage {
    let mut page = FeedPage::default();
    for set in sets {
        let sdb::Value::Object(set) = set else {
            continue;
        };
        let mut set = set.into_inner();
        let Some(versionstamp) = set.remove("versionstamp").and_then(as_u64) else {
            tracing::warn!("change feed entry without a readable versionstamp skipped");
            continue;
        };
        page.last_versionstamp = Some(
            page.last_versionstamp
                .map_or(versionstamp, |v| v.max(versionstamp)),
        );
        let Some(sdb::Value::Array(changes)) = set.remove("changes") else {
            continue;
        };
        for change in changes.into_inner() {
            if let Some((id, content)) = parse_mutation(change) {
                page.entries.push(FeedEntry {
                    versionstamp,
                    id,
                    content,
                });
            }
        }
    }
    page
}

/// One mutation: `(record, content after)`; `None` for table definitions.
fn parse_mutation(change: sdb::Value) -> Option<(RecordId, Option<Object>)> {
    let sdb::Value::Object(change) = change else {
        return None;
    };
    let mut change = change.into_inner();
    if let Some(sdb::Value::Object(deleted)) = change.remove("delete") {
        return match deleted.get("id") {
            Some(sdb::Value::RecordId(r)) => Some((record_id_from_surreal(r)?, None)),
            _ => None,
        };
    }
    // `INCLUDE ORIGINAL` feeds carry the new content in `current` and a patch
    // in `update`; plain feeds carry the new content in `update`.
    let content = match change.remove("current") {
        Some(sdb::Value::Object(current)) => current,
        _ => match change.remove("update") {
            Some(sdb::Value::Object(update)) => update,
            _ => return None,
        },
    };
    let id = match content.get("id") {
        // A range is never a stored record's id.
        Some(sdb::Value::RecordId(r)) => record_id_from_surreal(r)?,
        _ => return None,
    };
    Some((id, Some(object_from_surreal(content))))
}

fn as_u64(v: sdb::Value) -> Option<u64> {
    match v {
        sdb::Value::Number(sdb::Number::Int(i)) => u64::try_from(i).ok(),
        sdb::Value::Number(n @ sdb::Number::Decimal(_)) => {
            sdb::ToSql::to_sql(&n).trim_end_matches("dec").parse().ok()
        }
        sdb::Value::Number(sdb::Number::Float(f)) if f >= 0.0 && f.fract() == 0.0 => Some(f as u64),
        _ => None,
    }
}

/// What the database says about a table, for the worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableInfo {
    pub exists: bool,
    /// The table has a change feed.
    pub has_feed: bool,
    /// The feed's expiry, when it could be read.
    pub expiry: Option<Duration>,
    /// Defined `TYPE RELATION`: every record is an edge (see
    /// `engine::graph`).
    pub relation: bool,
}

/// Every table of the database and its change feed, from `INFO FOR DB STRUCTURE`.
pub async fn table_infos(db: &Db) -> Result<BTreeMap<String, TableInfo>, DbError> {
    let mut response = db
        .run_background(Query::new("INFO FOR DB STRUCTURE"))
        .await?;
    let info: sdb::Value = response.take(0)?;
    Ok(parse_table_infos(info))
}

/// The tables the schema defines `TYPE RELATION`.
pub async fn relation_tables(db: &Db) -> Result<BTreeSet<std::sync::Arc<str>>, DbError> {
    Ok(relations_of(&table_infos(db).await?))
}

/// The tables of `infos` defined `TYPE RELATION`.
pub fn relations_of(infos: &BTreeMap<String, TableInfo>) -> BTreeSet<std::sync::Arc<str>> {
    infos
        .iter()
        .filter(|(_, t)| t.relation)
        .map(|(name, _)| std::sync::Arc::from(name.as_str()))
        .collect()
}

/// Parses the `tables` of `INFO FOR DB STRUCTURE` (an array of table
/// structures; an object keyed by name is accepted too).
pub fn parse_table_infos(info: sdb::Value) -> BTreeMap<String, TableInfo> {
    let mut out = BTreeMap::new();
    let sdb::Value::Object(info) = info else {
        return out;
    };
    let tables: Vec<sdb::Value> = match info.into_inner().remove("tables") {
        Some(sdb::Value::Array(a)) => a.into_inner(),
        Some(sdb::Value::Object(o)) => o.into_inner().into_values().collect(),
        _ => Vec::new(),
    };
    for table in tables {
        let sdb::Value::Object(table) = table else {
            continue;
        };
        let table = table.into_inner();
        let Some(sdb::Value::String(name)) = table.get("name") else {
            continue;
        };
        let (has_feed, expiry) = match table.get("changefeed") {
            Some(sdb::Value::Object(cf)) => (
                true,
                match cf.get("expiry") {
                    Some(sdb::Value::Duration(d)) => Some(d.into_inner()),
                    Some(sdb::Value::String(s)) => crate::config::parse_surreal_duration(s),
                    _ => None,
                },
            ),
            _ => (false, None),
        };
        // `kind: {kind: "RELATION", in, out, enforced}` (3.3.5).
        let relation = match table.get("kind") {
            Some(sdb::Value::Object(k)) => {
                matches!(k.get("kind"), Some(sdb::Value::String(s)) if s.eq_ignore_ascii_case("relation"))
            }
            _ => false,
        };
        out.insert(
            name.clone(),
            TableInfo {
                exists: true,
                has_feed,
                expiry: expiry.filter(|e| !e.is_zero()),
                relation,
            },
        );
    }
    out
}

/// Whether a tracked table can be followed through its change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedStatus {
    /// The table has a change feed SSP can read.
    pub has_feed: bool,
    /// Entries older than this may be gone.
    pub retention: Option<Duration>,
}

/// Makes `table` ready to follow:
/// - defined if missing (a `LIVE SELECT` on an undefined table fails in 3.x),
///   `SCHEMALESS` and, in `auto` mode, with a change feed — `IF NOT EXISTS`,
///   so an existing definition is never replaced;
/// - in `auto` mode, an existing table without a feed gets one with
///   `ALTER TABLE ... CHANGEFEED` (which changes nothing else);
/// - otherwise a table without a feed is reported so the caller can warn.
///
/// Table names are identifiers in DDL and cannot be bound as parameters:
/// they come from parsed view queries or validated settings and are quoted
/// with [`escape_ident`].
pub async fn prepare_table(
    db: &Db,
    table: &str,
    mode: ChangefeedMode,
    retention_setting: &str,
    retention: Duration,
) -> Result<FeedStatus, DbError> {
    let infos = table_infos(db).await?;
    let info = infos.get(table).cloned().unwrap_or_default();
    let ident = escape_ident(table);
    if mode == ChangefeedMode::Off {
        if !info.exists {
            define_missing(
                db,
                &format!("DEFINE TABLE IF NOT EXISTS {ident} SCHEMALESS"),
            )
            .await?;
        }
        return Ok(FeedStatus {
            has_feed: false,
            retention: None,
        });
    }
    if info.has_feed {
        return Ok(FeedStatus {
            has_feed: true,
            retention: info.expiry,
        });
    }
    match (mode, info.exists) {
        (ChangefeedMode::Auto, false) => {
            define_missing(
                db,
                &format!(
                    "DEFINE TABLE IF NOT EXISTS {ident} SCHEMALESS CHANGEFEED {retention_setting}"
                ),
            )
            .await?;
        }
        (ChangefeedMode::Auto, true) => {
            db.run_background(Query::new(format!(
                "ALTER TABLE {ident} CHANGEFEED {retention_setting}"
            )))
            .await?;
            tracing::info!(
                table,
                retention = retention_setting,
                "added a change feed to the table"
            );
        }
        (_, false) => {
            define_missing(
                db,
                &format!("DEFINE TABLE IF NOT EXISTS {ident} SCHEMALESS"),
            )
            .await?;
            return Ok(FeedStatus {
                has_feed: false,
                retention: None,
            });
        }
        (_, true) => {
            return Ok(FeedStatus {
                has_feed: false,
                retention: None,
            });
        }
    }
    // Someone may have defined the table in between (IF NOT EXISTS kept
    // theirs): check what it really has now.
    let info = table_infos(db).await?.remove(table).unwrap_or_default();
    Ok(FeedStatus {
        has_feed: info.has_feed,
        retention: info.expiry.or(Some(retention)),
    })
}

async fn define_missing(db: &Db, statement: &str) -> Result<(), DbError> {
    db.run_background(Query::new(statement.to_owned())).await?;
    tracing::info!(
        statement,
        "defined a table a view reads, so that it can be followed"
    );
    Ok(())
}

/// A versionstamp at or before every commit that is not yet visible: the
/// server's clock minus `margin`, as a hybrid-logical-clock stamp. Used as the
/// starting cursor of a table that has none, taken *before* its snapshot, so
/// that a feed read from it covers every write the snapshot may have missed.
pub async fn versionstamp_before_now(db: &Db, margin: Duration) -> Result<u64, DbError> {
    let mut response = db
        .run_background(Query::new("RETURN time::millis(time::now())"))
        .await?;
    let value: sdb::Value = response.take(0)?;
    let millis = as_u64(value).ok_or_else(|| DbError::Other {
        op: "server clock".into(),
        message: "time::millis(time::now()) did not return an integer".into(),
    })?;
    Ok(hlc_from_millis(
        millis.saturating_sub(margin.as_millis() as u64),
    ))
}

/// The HLC versionstamp of a unix time in milliseconds (counter 0).
pub fn hlc_from_millis(millis: u64) -> u64 {
    millis << 16
}

/// The unix time in milliseconds of an HLC versionstamp.
pub fn hlc_millis(versionstamp: u64) -> u64 {
    versionstamp >> 16
}

/// The tables among `entries`, for logs.
pub fn tables_of(entries: &[FeedEntry]) -> Vec<Arc<str>> {
    let mut t: Vec<Arc<str>> = entries
        .iter()
        .map(|e| Arc::from(e.id.table.as_str()))
        .collect();
    t.sort();
    t.dedup();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid(t: &str, k: i64) -> sdb::Value {
        sdb::Value::RecordId(sdb::RecordId::new(t, k))
    }

    fn obj(pairs: Vec<(&str, sdb::Value)>) -> sdb::Value {
        let mut o = sdb::Object::new();
        for (k, v) in pairs {
            o.insert(k, v);
        }
        sdb::Value::Object(o)
    }

    #[test]
    fn change_sets_parse_into_entries_in_order() {
        let sets = vec![
            obj(vec![
                ("versionstamp", sdb::Value::Number(sdb::Number::Int(65536))),
                (
                    "changes",
                    sdb::Value::Array(
                        vec![
                            obj(vec![(
                                "define_table",
                                obj(vec![("name", sdb::Value::String("t".into()))]),
                            )]),
                            obj(vec![(
                                "update",
                                obj(vec![
                                    ("id", rid("t", 1)),
                                    ("a", sdb::Value::Number(sdb::Number::Int(1))),
                                ]),
                            )]),
                        ]
                        .into(),
                    ),
                ),
            ]),
            obj(vec![
                ("versionstamp", sdb::Value::Number(sdb::Number::Int(65537))),
                (
                    "changes",
                    sdb::Value::Array(
                        vec![
                            obj(vec![("delete", obj(vec![("id", rid("t", 1))]))]),
                            obj(vec![
                                ("current", obj(vec![("id", rid("u", 2))])),
                                ("update", sdb::Value::Array(Vec::<sdb::Value>::new().into())),
                            ]),
                        ]
                        .into(),
                    ),
                ),
            ]),
        ];
        let page = parse_change_sets(sets);
        assert_eq!(page.last_versionstamp, Some(65537));
        assert_eq!(page.entries.len(), 3);
        assert_eq!(page.entries[0].id.to_string(), "t:1");
        assert!(page.entries[0].content.is_some());
        assert_eq!(page.entries[1].content, None);
        assert_eq!(page.entries[1].versionstamp, 65537);
        assert_eq!(page.entries[2].id.to_string(), "u:2");
    }

    #[test]
    fn table_infos_from_info_structure() {
        let mut cf = sdb::Object::new();
        cf.insert(
            "expiry",
            sdb::Value::Duration(Duration::from_secs(86400).into()),
        );
        cf.insert("original", sdb::Value::Bool(false));
        let info = obj(vec![(
            "tables",
            sdb::Value::Array(
                vec![
                    obj(vec![
                        ("name", sdb::Value::String("fed".into())),
                        ("changefeed", sdb::Value::Object(cf)),
                    ]),
                    obj(vec![("name", sdb::Value::String("plain".into()))]),
                ]
                .into(),
            ),
        )]);
        let infos = parse_table_infos(info);
        assert_eq!(
            infos["fed"],
            TableInfo {
                exists: true,
                has_feed: true,
                expiry: Some(Duration::from_secs(86400)),
                relation: false,
            }
        );
        assert_eq!(
            infos["plain"],
            TableInfo {
                exists: true,
                has_feed: false,
                expiry: None,
                relation: false,
            }
        );
        assert!(!infos.contains_key("missing"));
    }

    #[test]
    fn hlc_arithmetic() {
        assert_eq!(
            hlc_millis(hlc_from_millis(1_700_000_000_000) | 0xFFFF),
            1_700_000_000_000
        );
    }
}
