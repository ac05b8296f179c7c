//! SSP's own tables in SurrealDB, named once. `migrations/` defines them;
//! the sink writes them, the bootstrap and the change worker read them.
//!
//! Every name starts with [`RESERVED_PREFIX`], and no table with that prefix
//! is ever a view's table, an ingested table or a followed one: an edge write
//! is a change to its table, so a view over the edges would feed itself.

use surrealdb::types as sdb;

use super::values::record_id_to_surreal;
use crate::engine::value::{Key, RecordId};

pub use crate::engine::value::{RESERVED_PREFIX, is_reserved_table};

/// One row per view: its query, params, client and liveness
/// (`_spooky_query:<view id>`).
pub const QUERY_TABLE: &str = "_spooky_query";

/// The membership edges, `_spooky_query:<view> -> _spooky_list_ref -> <record>`,
/// each with the view's `clientId` and the record's `version`.
pub const EDGE_TABLE: &str = "_spooky_list_ref";

/// Per record, the highest version a deleted edge of it showed (migrations
/// 0002 and 0003: an event on [`EDGE_TABLE`] keeps it on every delete, SSP's
/// own and SurrealDB's cascades alike): a version clients saw must never
/// come back lower after a restart.
pub const VERSION_TABLE: &str = "_spooky_version";

/// One row per running instance when clustering is on (migration 0006).
pub const NODE_TABLE: &str = "_spooky_node";

/// The migrations applied, with their checksums.
pub const MIGRATION_TABLE: &str = "_spooky_migration";

/// The record id of a view's row in [`QUERY_TABLE`].
pub fn view_row(view: &str) -> sdb::RecordId {
    sdb::RecordId::new(QUERY_TABLE, view.to_string())
}

/// The deterministic id of the edge from `view` to `record`: writing an
/// edge twice is one edge, so every edge write can be retried.
///
/// `[view, record]`, and for a record with an array or object key also the
/// record's text: `[view, record, "t:[1f, 'a']"]`. SurrealDB keeps
/// `t:[1, 'a']` and `t:[1f, 'a']` as two records, but compares them as
/// equal values, and 3.3.5's transaction reads edges whose ids are equal
/// values as one document: after one edge was written, an update of the
/// other in the same transaction wrote the first one's `out` into it. The
/// text (`t:[1, 'a']` vs `t:[1f, 'a']`) keeps the ids apart as values too.
pub fn edge_id(view: &str, record: &RecordId) -> sdb::RecordId {
    let out = record_id_to_surreal(record);
    let text = matches!(record.key, Key::Composite(_)).then(|| sdb::ToSql::to_sql(&out));
    let mut key: Vec<sdb::Value> = vec![
        sdb::Value::String(view.to_string()),
        sdb::Value::RecordId(out),
    ];
    // SurrealDB's own text of the id, as `<string> out` gives it (migration
    // 0004 renames older edges with that).
    key.extend(text.map(sdb::Value::String));
    sdb::RecordId::new(EDGE_TABLE, sdb::RecordIdKey::Array(key.into()))
}
