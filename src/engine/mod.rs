//! The incremental view engine: SurrealQL `SELECT`s kept up to date by deltas.
//!
//! Pure computation: no I/O, no async. The pipeline feeds it batches of record
//! changes and writes the per-view deltas it returns as edges.
//!
//! How a batch flows through (see [`Engine::apply_batch`]):
//!
//! 1. `store`: each change replaces a record's content (kept under its id,
//!    with no `id` field of its own); its version grows by one when the
//!    content really changed.
//! 2. dispatch: the changed record's indexed field values are hashed to find
//!    the nodes that filter on them (plus the few nodes that must scan); each
//!    is evaluated on the record's content before and after the batch.
//! 3. nodes: membership changes of a node, and of its subquery children, flow
//!    up as Z-set deltas (+1/-1 per record) to the roots of views.
//! 4. roots: a record whose count at a root leaves or reaches 0 is a
//!    `deleted` or `created` edge for each of the root's views; a record that
//!    stays and changed version is `updated`.

pub mod ast;
pub mod eval;
pub mod flat;
pub mod key;
pub mod keyset;
pub mod links;
pub mod node;
pub mod parser;
pub mod plan;
pub mod smallset;
pub mod store;
pub mod value;

// `impl Engine`, one file per concern.
mod apply;
mod children;
pub mod clock;
mod graph;
mod hashed;
mod node_graph;
mod param_links;
mod parsed;
mod prefetch;
mod prescan;
mod read;
mod requery_views;
mod state;
mod views;

use std::collections::BTreeSet;
use std::sync::Arc;

use ahash::{AHashMap, AHashSet};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use self::eval::{Env, Row, bind, matches};
use self::node::{Dispatch, Node, RootData};
use self::parser::ParseError;
use self::plan::{Bound, Plan, PlanError, Planner};
use self::smallset::{SmallMap, SortedSet, push_small};
use self::store::{NodeId, Record, Store};
use self::value::{Object, RecordId, Value};

pub use self::prescan::{PRESCAN_MIN_CANDIDATES, Prescan, Prescanned};
pub use self::value::Key;

/// One record change, as every source delivers it.
#[derive(Clone, Debug)]
pub struct Change {
    pub id: RecordId,
    /// The record's full new content, or `None` for a delete.
    pub content: Option<Object>,
}

/// What a view is, as registered.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ViewMeta {
    pub id: Arc<str>,
    #[serde(rename = "clientId")]
    pub client_id: Arc<str>,
    pub sql: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub ttl: String,
    #[serde(rename = "lastActiveAt")]
    pub last_active_at: DateTime<Utc>,
    /// The app user who views it (a record id, as text): the only record
    /// user SurrealDB lets read the view's row and edges (migration 0005).
    /// `None`: only system users (SSP, the app's backend) read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Arc<str>>,
}

/// The edge changes one batch (or registration) causes for one view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ViewDelta {
    pub view: Arc<str>,
    pub client_id: Arc<str>,
    /// Records that entered the view, with their versions.
    pub created: Vec<(RecordId, u64)>,
    /// Records that stayed and whose edge changes: their version changed
    /// (or, on a re-registration, the view's client id did).
    pub updated: Vec<(RecordId, u64)>,
    /// Records that left the view.
    pub deleted: Vec<RecordId>,
}

impl ViewDelta {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("params must be a JSON object")]
    BadParams,
    /// The view reads through record links into tables the engine does not
    /// hold in full yet: the caller loads them, marks them
    /// ([`Engine::mark_loaded`]) and registers again.
    #[error("the view follows record links into tables SSP has not loaded: {}", .0.join(", "))]
    NeedsTables(Vec<Arc<str>>),
}

impl EngineError {
    /// True when SurrealDB parsed the query and SSP's incremental engine
    /// does not maintain one of its constructs: the re-query tier may take
    /// it. Syntax errors, bad params and SSP's own tables stay refused.
    pub fn is_unsupported(&self) -> bool {
        match self {
            EngineError::Parse(p) => p.construct.is_some(),
            EngineError::Plan(
                PlanError::OrderByComputed { .. }
                | PlanError::FollowsLink
                | PlanError::Unsupported(_),
            ) => true,
            _ => false,
        }
    }
}

struct View {
    meta: CompactMeta,
    plan: Arc<Plan>,
    root: NodeId,
    /// The records its `$param` paths read (see [`param_links`]).
    deps: Box<[RecordId]>,
    /// Those paths, with the values its nodes were made with.
    param_paths: Box<[param_links::ParamPath]>,
}

/// A [`ViewMeta`] as the engine keeps it. At 10,000 views the API's form
/// cost ~700 B a view more: its params map is a `BTreeMap`, whose one leaf
/// is ~630 B even for one parameter, and every view of one query held its
/// own copy of the query text. Here the params are an exact slice (same
/// keys and JSON values, so [`CompactMeta::to_meta`] gives back exactly what
/// was registered) and the text is shared by the views of one query.
struct CompactMeta {
    id: Arc<str>,
    client_id: Arc<str>,
    sql: Arc<str>,
    params: Box<[(Box<str>, serde_json::Value)]>,
    ttl: Box<str>,
    last_active_at: DateTime<Utc>,
    owner: Option<Arc<str>>,
}

impl CompactMeta {
    fn new(meta: ViewMeta, sql: Arc<str>) -> Self {
        CompactMeta {
            id: meta.id,
            client_id: meta.client_id,
            sql,
            params: meta
                .params
                .into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v))
                .collect(),
            ttl: meta.ttl.into_boxed_str(),
            last_active_at: meta.last_active_at,
            owner: meta.owner,
        }
    }

    fn to_meta(&self) -> ViewMeta {
        ViewMeta {
            id: self.id.clone(),
            client_id: self.client_id.clone(),
            sql: self.sql.to_string(),
            params: self
                .params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ttl: self.ttl.to_string(),
            last_active_at: self.last_active_at,
            owner: self.owner.clone(),
        }
    }
}

/// The serialized form of the engine: views and records with versions.
/// Indexes and nodes are derived, and rebuilt on load.
#[derive(Serialize, Deserialize, Default)]
pub struct EngineState {
    pub views: Vec<ViewMeta>,
    pub records: Vec<StoredRecord>,
    /// The views of `views` that run in the re-query tier, with the
    /// records their last answer showed. Absent in files written before
    /// the tier existed (every view was incremental then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requery: Vec<RequeryState>,
    /// Per table whose records were let go when no view read it any more,
    /// the highest version they had: when the table is read again, its
    /// records start above it, so no version a client saw comes back lower.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub table_floors: std::collections::BTreeMap<String, u64>,
    /// The tables the engine holds in full (see `Engine::mark_loaded`):
    /// those views read, and those they reach through record links.
    /// Absent in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaded: Vec<String>,
    /// The field indexes the views read, by table: a restart builds them
    /// all at once, on every core, before the views come back. Derived, so
    /// absent or stale only costs time. Absent in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<(String, Vec<value::PathPart>)>,
    /// The schema's `TYPE RELATION` tables when the views were planned
    /// (see [`Engine::set_relation_tables`]): a restart plans their
    /// traversals as they were. Absent in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relation_tables: Vec<String>,
    /// The user functions the views' queries inline, as the database
    /// defined them when the views registered (see
    /// [`Engine::set_functions`]): a restart plans the views as they were.
    /// Absent in older files.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub functions: parser::Definitions,
}

/// A re-query view as the state file keeps it: what was measured about it
/// (its tables, its last answer) rather than derived, as re-deriving needs
/// the database.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RequeryState {
    pub id: Arc<str>,
    /// Why the incremental tier does not take the view.
    pub reason: String,
    /// The tables its text reads (user functions' bodies included).
    pub tables: Vec<Arc<str>>,
    /// The tables of the record ids its last answer held.
    pub linked: Vec<Arc<str>>,
    pub members: Vec<RecordId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Which tier maintains a view, and why (for the API and metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Maintained by deltas in the engine.
    Incremental,
    /// Re-run in SurrealDB after each change to a table it reads.
    Requery {
        reason: String,
        /// The last re-run's failure, if it failed (the edges then show the
        /// answer before it).
        error: Option<String>,
    },
}

/// What a re-query view's next run needs.
#[derive(Clone, Debug)]
pub struct RequeryTask {
    pub view: Arc<str>,
    pub sql: Arc<str>,
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// A view of the re-query tier (see the `requery` module): no nodes, only the
/// records its last answer showed.
struct RequeryView {
    meta: CompactMeta,
    reason: Box<str>,
    tables: Box<[Arc<str>]>,
    linked: Box<[Arc<str>]>,
    members: AHashSet<RecordId>,
    error: Option<Box<str>>,
}

#[derive(Serialize, Deserialize)]
pub struct StoredRecord {
    pub id: RecordId,
    pub version: u64,
    /// Flat, so that a record of any depth loads (see [`flat`]).
    #[serde(with = "flat")]
    pub content: Value,
}

#[derive(Default)]
pub struct Engine {
    planner: Planner,
    store: Store,
    /// Boxed: a node is ~300 bytes, and the slot vector doubles.
    nodes: Vec<Option<Box<Node>>>,
    free: Vec<NodeId>,
    /// Slots freed during a batch; reused only after it, so that queued events
    /// for a destroyed node can never hit a new one.
    freed_in_batch: Vec<NodeId>,
    node_keys: AHashMap<node::NodeKey, NodeId>,
    views: AHashMap<Arc<str>, Box<View>>,
    /// Query texts, shared by the views that registered the same one.
    sqls: AHashSet<Arc<str>>,
    /// Client ids, shared by the views of one client: a batch's deltas
    /// clone a view's client id for every view they name, and at 100,000
    /// views one copy per view is a cache miss per view.
    clients: AHashSet<Arc<str>>,
    /// `clients.len()` after the last sweep of ids no view holds.
    clients_swept: usize,
    /// Query texts parsed, for the next view that registers one.
    parsed: parsed::Parsed,
    /// Per (root, record) touched in this batch: was it present before?
    touched: AHashMap<(NodeId, RecordId), bool>,
    /// How many matches past its end a bounded window keeps; `None` is the
    /// default (as many as the window holds, at least [`WINDOW_SLACK_MIN`]).
    window_slack: Option<usize>,
    /// The highest version an edge showed for a record the engine does not
    /// hold (see [`Engine::raise_version`]): when it arrives, its version
    /// starts above it. Emptied as the records arrive.
    version_floors: AHashMap<RecordId, u64>,
    /// See [`EngineState::table_floors`] and [`Engine::forget_table`].
    table_floors: AHashMap<value::TableName, u64>,
    /// Views of the re-query tier, by id (never also in `views`).
    requery: AHashMap<Arc<str>, RequeryView>,
    /// Which tables records link to, while a view needs it, and which
    /// records link to each record, while an incremental view follows links.
    links: links::Links,
    /// Tables whose records the engine holds in full (loaded by the change
    /// worker when a view came to read them, and followed since): a path
    /// through a link into one of them is evaluated, into any other it is
    /// [`eval::Fetched::Unknown`].
    loaded: AHashSet<value::TableName>,
    /// Tables a batch's evaluation followed a link into without holding
    /// them, for a view the re-query tier cannot take either (a time
    /// window): wanted by [`Engine::tables`] until loaded, when the load's
    /// records reach the nodes that fetch them.
    wanted: BTreeSet<Arc<str>>,
    /// Live nodes whose plan reads a path through record links.
    link_nodes: usize,
    /// Per table, the plan of the `FETCH` children of its records (see
    /// [`plan::Plan::fetch_child`]): one per table, so that every member
    /// that fetches a record shares its node.
    fetch_plans: AHashMap<(value::TableName, Vec<plan::projection::FetchField>), Arc<Plan>>,
    /// The most links a path of such a node goes through (see
    /// [`plan::Plan::link_hops`]); 0 again when the last one goes.
    link_hops: usize,
    /// See [`Engine::links_not_followed`].
    links_not_followed: u64,
    /// See [`Engine::take_link_views`].
    link_views: Vec<Arc<str>>,
    /// A view's nodes are being made (see `note_fetch_not_followed`).
    registering: bool,
    /// Per record that a view's `$param` path reads, those views (see
    /// [`param_links`]).
    param_deps: AHashMap<RecordId, Vec<Arc<str>>>,
    /// What changed since the state file last took it (see
    /// [`Engine::take_delta`]).
    journal: Journal,
    /// The records of a prescanned table that changed since its keys were taken
    /// (see [`Engine::prescan`]).
    watch: Option<prescan::Watch>,
    /// A prescan's result while its view registers, and whether the
    /// view's node took it.
    prescanned: Option<prescan::Pending>,
    prescan_used: bool,
    /// The tables SurrealDB's schema defines `TYPE RELATION` (see
    /// [`Engine::set_relation_tables`]): traversals over them are lowered
    /// to selects (see [`plan::resolve::lower_graph`]).
    relation_tables: BTreeSet<Arc<str>>,
    /// Per table a traversal's [`ast::GraphChecks::no_edges_in`] names,
    /// whether it holds a record with record ids in both `in` and `out`
    /// (computed when first asked, then kept up by each batch).
    edge_shaped: AHashMap<value::TableName, bool>,
    /// Edges the database still held when the applier looked, although
    /// the batch deletes a record they end at that SSP does not hold (it
    /// may never have existed, and then its delete deleted nothing): the
    /// cascade leaves them (see [`Engine::set_kept_edges`]).
    kept_edges: AHashSet<RecordId>,
    /// The instant views are computed at, and the records to evaluate
    /// again when it moves (see [`clock`]).
    clock: clock::Clock,
}

/// The records and views that changed since the last save, so that a save
/// writes what changed rather than everything. Off (empty, free) unless
/// the state is saved ([`Engine::track_changes`]).
#[derive(Default)]
struct Journal {
    on: bool,
    records: AHashSet<RecordId>,
    views: AHashSet<Arc<str>>,
    /// Something no delta describes happened (a reset): the next save is
    /// a full snapshot.
    full: bool,
}

impl Journal {
    fn record(&mut self, id: &RecordId) {
        if self.on {
            self.records.insert(id.clone());
        }
    }

    fn view(&mut self, id: &Arc<str>) {
        if self.on {
            self.views.insert(id.clone());
        }
    }
}

/// What changed in the engine's state since the last save: the records and
/// views that changed, as they are now (see [`EngineState::apply`]).
#[derive(Serialize, Deserialize, Default)]
pub struct EngineDelta {
    /// Changed records that exist, with their content and version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<StoredRecord>,
    /// Changed records that are gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<RecordId>,
    /// Changed views that exist, as registered now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<ViewMeta>,
    /// The re-query tier's state of those of `views` that run in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requery: Vec<RequeryState>,
    /// Changed views that are gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_views: Vec<Arc<str>>,
    /// Small, so always whole: see [`EngineState::table_floors`].
    #[serde(default)]
    pub table_floors: std::collections::BTreeMap<String, u64>,
    /// Always whole: see [`EngineState::loaded`].
    #[serde(default)]
    pub loaded: Vec<String>,
    /// Always whole: see [`EngineState::indexes`].
    #[serde(default)]
    pub indexes: Vec<(String, Vec<value::PathPart>)>,
    /// Always whole: see [`EngineState::relation_tables`].
    #[serde(default)]
    pub relation_tables: Vec<String>,
    /// Always whole (a few definitions): see [`EngineState::functions`].
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub functions: parser::Definitions,
}

/// The fewest matches past its end a window with a `LIMIT` keeps. A window
/// holds the first matches of its order only (not every match of the table),
/// and reads the table again when removals leave it short; the slack makes
/// that rare.
const WINDOW_SLACK_MIN: usize = 32;

enum Event {
    Add(NodeId, RecordId),
    Remove(NodeId, RecordId),
    Rebind(NodeId, RecordId),
}

impl Engine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fetches linked records as the store holds them now (or, with
    /// `before`, as a batch found them), at the engine's clock.
    pub(super) fn fetcher<'a>(
        &'a self,
        before: Option<&'a AHashMap<RecordId, Option<Value>>>,
    ) -> links::Fetcher<'a> {
        links::Fetcher {
            store: &self.store,
            loaded: &self.loaded,
            before,
            clock: self.clock.now,
        }
    }

    /// The engine with its clock at `t` instead of the wall clock (see
    /// [`clock`]), so that tests move it as they like.
    #[doc(hidden)]
    pub fn starting_at(mut self, t: DateTime<Utc>) -> Self {
        self.clock.now = t;
        self.clock.then = t;
        self
    }

    /// An engine whose bounded windows keep only `slack` matches past their
    /// end, so that tests reach the refill from the table often.
    #[doc(hidden)]
    pub fn with_window_slack(slack: usize) -> Self {
        Engine {
            window_slack: Some(slack),
            ..Self::default()
        }
    }
}

/// The records of `table` that a node of `plan` with `filter` matches: from
/// its index entry when `dispatch` has one (the index must exist), else a
/// scan of the table.
fn matching_records<'a>(
    table: &'a store::Table,
    plan: &Plan,
    filter: Option<&ast::Expr>,
    dispatch: &Dispatch,
    links: &dyn eval::Links,
) -> Vec<(RecordId, &'a Value)> {
    let candidates: Vec<Key> = match dispatch {
        Dispatch::Indexed(k) => table.lookup(&plan.table, index_path(plan), k),
        Dispatch::Scan => table.records.keys().cloned().collect(),
    };
    // Every candidate is read, and at a million records each is out of
    // cache: a view's first result (a registration, every view of a
    // restart) waited for them one at a time. Asked for a few at a time,
    // their slots and then their contents arrive together (see `prefetch`).
    const AHEAD: usize = 16;
    let mut out = Vec::new();
    let mut hashes = [0u64; AHEAD];
    for chunk in candidates.chunks(AHEAD) {
        let raw = table.records.raw_table();
        for (k, h) in chunk.iter().zip(hashes.iter_mut()) {
            *h = table.records.hasher().hash_one(k);
            prefetch::entry_hashed(raw, *h);
        }
        let mut found: [Option<&'a Value>; AHEAD] = [None; AHEAD];
        for ((k, h), slot) in chunk.iter().zip(&hashes).zip(found.iter_mut()) {
            if let Some((_, rec)) = table.records.raw_entry().from_key_hashed_nocheck(*h, k) {
                if let Value::Object(o) = &rec.content {
                    o.prefetch();
                }
                *slot = Some(&rec.content);
            }
        }
        for (k, content) in chunk.iter().zip(found) {
            let Some(content) = content else { continue };
            let id = RecordId::new(plan.table.clone(), k.clone());
            if matches(filter, Row::linked(&id, content, Some(links))) {
                out.push((id, content));
            }
        }
    }
    out
}

/// The path an indexed node of `plan` is registered under.
fn index_path(plan: &Plan) -> &[value::PathPart] {
    &plan
        .index_term
        .as_ref()
        .expect("an indexed node's plan has an index term")
        .path
}

#[cfg(test)]
mod tests;
