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
}

impl EngineError {
    /// True when SurrealDB parsed the query and SSP's incremental engine
    /// does not maintain one of its constructs: the re-query tier may take
    /// it. Syntax errors, bad params and SSP's own tables stay refused.
    pub fn is_unsupported(&self) -> bool {
        match self {
            EngineError::Parse(p) => p.construct.is_some(),
            EngineError::Plan(PlanError::OrderByComputed { .. } | PlanError::FollowsLink) => true,
            _ => false,
        }
    }
}

struct View {
    meta: CompactMeta,
    plan: Arc<Plan>,
    root: NodeId,
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

/// A view of the re-query tier (see `crate::requery`): no nodes, only the
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
    node_keys: AHashMap<(usize, Vec<Value>), NodeId>,
    views: AHashMap<Arc<str>, Box<View>>,
    /// Query texts, shared by the views that registered the same one.
    sqls: AHashSet<Arc<str>>,
    /// Per (root, record) touched in this batch: was it present before?
    touched: AHashMap<(NodeId, RecordId), bool>,
    /// How many matches past its end a bounded window keeps; `None` is the
    /// default (as many as the window holds, at least [`WINDOW_SLACK_MIN`]).
    window_slack: Option<usize>,
    /// The highest version an edge showed for a record the engine does not
    /// hold (see [`Engine::raise_version`]): when it arrives, its version
    /// starts above it. Emptied as the records arrive.
    version_floors: AHashMap<RecordId, u64>,
    /// Views of the re-query tier, by id (never also in `views`).
    requery: AHashMap<Arc<str>, RequeryView>,
    /// Which tables records link to, while a re-query view needs it.
    links: links::Links,
    /// See [`Engine::links_not_followed`].
    links_not_followed: u64,
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

    /// An engine whose bounded windows keep only `slack` matches past their
    /// end, so that tests reach the refill from the table often.
    #[doc(hidden)]
    pub fn with_window_slack(slack: usize) -> Self {
        Engine {
            window_slack: Some(slack),
            ..Self::default()
        }
    }

    // ----- reading -------------------------------------------------------

    pub fn view_count(&self) -> usize {
        self.views.len() + self.requery.len()
    }

    /// How many views run in the re-query tier.
    pub fn requery_count(&self) -> usize {
        self.requery.len()
    }

    pub fn record_count(&self) -> usize {
        self.store.len()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_some()).count()
    }

    pub fn view(&self, id: &str) -> Option<ViewMeta> {
        match self.views.get(id) {
            Some(v) => Some(v.meta.to_meta()),
            None => self.requery.get(id).map(|v| v.meta.to_meta()),
        }
    }

    pub fn views(&self) -> impl Iterator<Item = ViewMeta> + '_ {
        self.views
            .values()
            .map(|v| v.meta.to_meta())
            .chain(self.requery.values().map(|v| v.meta.to_meta()))
    }

    /// Which tier maintains view `id`.
    pub fn tier(&self, id: &str) -> Option<Tier> {
        if self.views.contains_key(id) {
            return Some(Tier::Incremental);
        }
        self.requery.get(id).map(|v| Tier::Requery {
            reason: v.reason.to_string(),
            error: v.error.as_deref().map(str::to_string),
        })
    }

    pub fn version(&self, id: &RecordId) -> Option<u64> {
        self.store.get(id).map(|r| r.version)
    }

    /// Record `id` as SurrealDB would return it, `id` field included.
    pub fn record(&self, id: &RecordId) -> Option<Value> {
        self.store
            .get(id)
            .map(|r| Row::new(id, &r.content).to_value())
    }

    /// A view's result set with versions, sorted by record id.
    pub fn view_records(&self, id: &str) -> Option<Vec<(RecordId, u64)>> {
        if let Some(v) = self.requery.get(id) {
            let mut out: Vec<(RecordId, u64)> = v
                .members
                .iter()
                .map(|r| (r.clone(), self.version(r).unwrap_or(1)))
                .collect();
            out.sort();
            return Some(out);
        }
        let view = self.views.get(id)?;
        self.node(view.root).root.as_ref()?;
        let mut out: Vec<(RecordId, u64)> = self
            .root_records(view.root)
            .into_iter()
            .map(|r| {
                let v = self.store.get(&r).map(|x| x.version).unwrap_or(0);
                (r, v)
            })
            .collect();
        out.sort();
        Some(out)
    }

    /// Every table some registered view reads.
    pub fn tables(&self) -> BTreeSet<Arc<str>> {
        let mut out = Vec::new();
        for v in self.views.values() {
            v.plan.tables(&mut out);
        }
        let mut all: BTreeSet<Arc<str>> = out.into_iter().collect();
        for v in self.requery.values() {
            all.extend(self.requery_tables(v));
        }
        all
    }

    /// The tables a change to which may change a re-query view's answer:
    /// those its text reads, those its last answer showed record ids of,
    /// and every table reachable from them over the links records hold.
    fn requery_tables(&self, v: &RequeryView) -> BTreeSet<Arc<str>> {
        self.links
            .closure(v.tables.iter().chain(v.linked.iter()).map(|t| t.as_ref()))
    }

    /// Every record of `table`, for diffing against a snapshot.
    pub fn table_records(&self, table: &str) -> Vec<RecordId> {
        self.store
            .tables
            .get(table)
            .map(|t| {
                t.records
                    .keys()
                    .map(|k| RecordId::new(table, k.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks a view as [`Engine::register`] would, without registering
    /// it: the tables it reads, so that the caller can load them first.
    /// Everything that can refuse a registration (syntax, SSP's own tables,
    /// params that do not bind) is checked here, before the caller touches
    /// the database: a refused registration must change nothing, the
    /// tables it names included.
    pub fn prepare(
        &mut self,
        sql: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<Arc<str>>, EngineError> {
        let (plan, _) = self.plan_view(sql, params)?;
        let mut tables = Vec::new();
        plan.tables(&mut tables);
        drop(plan);
        self.planner.collect_garbage();
        Ok(tables)
    }

    /// Parses, plans and validates a view's query under its params.
    fn plan_view(
        &mut self,
        sql: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(Arc<Plan>, Arc<Object>), EngineError> {
        let select = parser::parse_select(sql)?;
        if let Some(e) = plan::order_by_computed(&select) {
            return Err(e.into());
        }
        let params = Arc::new(
            match Value::from(&serde_json::Value::Object(params.clone())) {
                Value::Object(o) => o,
                _ => return Err(EngineError::BadParams),
            },
        );
        let plan = self.planner.plan(&select);
        let env = Env {
            params: &params,
            parent: None,
        };
        let mut tables = Vec::new();
        plan.tables(&mut tables);
        let checked = match tables
            .iter()
            .find(|t| crate::db::schema::is_reserved_table(t))
        {
            Some(t) => Err(PlanError::ReservedTable {
                table: t.to_string(),
            }),
            None => plan.validate(&env),
        };
        if let Err(e) = checked {
            drop(plan);
            self.planner.collect_garbage();
            return Err(e.into());
        }
        Ok((plan, params))
    }

    // ----- views ---------------------------------------------------------

    /// Registers a view, or refreshes one with the same id. Returns the edge
    /// changes: for a new view, every record as `created`; for a refresh,
    /// only the difference. A failed registration changes nothing.
    pub fn register(&mut self, meta: ViewMeta) -> Result<ViewDelta, EngineError> {
        // Binding the params may already look through a link (`$org.id`).
        value::take_link_followed();
        let (plan, params) = self.plan_view(&meta.sql, &meta.params)?;
        let before: AHashSet<RecordId> = match self.views.get(&meta.id) {
            Some(v) => self.root_records(v.root).into_iter().collect(),
            None => self
                .requery
                .get(&meta.id)
                .map(|v| v.members.clone())
                .unwrap_or_default(),
        };
        // Edges carry the client id: when it changes, every edge that stays
        // is rewritten too, or a client following its edges by `clientId`
        // would never see the records that did not move.
        let client_changed = self.client_changes(&meta);

        let root = self.get_or_create(&plan, &params, None);
        if value::take_link_followed() {
            // Evaluating it on the data went through a record link: refuse
            // it (the re-query tier takes it), undoing the nodes just made.
            if self.node(root).root.is_none() && self.node(root).parents.is_empty() {
                self.destroy(root);
            }
            self.finish_batch();
            drop(plan);
            self.planner.collect_garbage();
            return Err(PlanError::FollowsLink.into());
        }
        // A view that moves here from the re-query tier.
        self.remove_requery(&meta.id);

        self.make_root(root);
        if let Some(r) = self.node_mut(root).root.as_mut() {
            r.views.push((meta.id.clone(), meta.client_id.clone()));
        }
        let id = meta.id.clone();
        let client_id = meta.client_id.clone();
        let sql = match self.sqls.get(meta.sql.as_str()) {
            Some(s) => s.clone(),
            None => {
                let s: Arc<str> = meta.sql.as_str().into();
                self.sqls.insert(s.clone());
                s
            }
        };
        let meta = CompactMeta::new(meta, sql);
        if let Some(old) = self
            .views
            .insert(id.clone(), Box::new(View { meta, plan, root }))
        {
            self.detach_view(&old.meta.id, old.root);
            self.forget_sql(old.meta.sql);
        }
        self.finish_batch();

        let after: AHashSet<RecordId> = self.root_records(root).into_iter().collect();
        let mut delta = ViewDelta {
            view: id,
            client_id,
            ..Default::default()
        };
        for r in &after {
            if !before.contains(r) {
                delta
                    .created
                    .push((r.clone(), self.version(r).unwrap_or(1)));
            }
        }
        for r in before {
            if !after.contains(&r) {
                delta.deleted.push(r);
            } else if client_changed {
                let version = self.version(&r).unwrap_or(1);
                delta.updated.push((r, version));
            }
        }
        delta.created.sort();
        delta.updated.sort();
        delta.deleted.sort();
        Ok(delta)
    }

    fn client_changes(&self, meta: &ViewMeta) -> bool {
        match self.views.get(&meta.id) {
            Some(v) => v.meta.client_id != meta.client_id,
            None => self
                .requery
                .get(&meta.id)
                .is_some_and(|v| v.meta.client_id != meta.client_id),
        }
    }

    // ----- the re-query tier ---------------------------------------------

    /// Registers (or refreshes) a view of the re-query tier with its first
    /// answer, `members` (see `crate::requery`). `tables` are those its
    /// text reads, `linked` those of the record ids the answer held.
    /// Returns the edge changes, as [`Engine::register`] does.
    pub fn register_requery(
        &mut self,
        meta: ViewMeta,
        reason: String,
        tables: Vec<Arc<str>>,
        members: Vec<RecordId>,
        linked: Vec<Arc<str>>,
    ) -> ViewDelta {
        let before: AHashSet<RecordId> = match self.views.get(&meta.id) {
            Some(v) => self.root_records(v.root).into_iter().collect(),
            None => self
                .requery
                .get(&meta.id)
                .map(|v| v.members.clone())
                .unwrap_or_default(),
        };
        let client_changed = self.client_changes(&meta);
        if let Some(old) = self.views.remove(&meta.id) {
            self.detach_view(&old.meta.id, old.root);
            self.forget_sql(old.meta.sql);
            self.finish_batch();
            self.planner.collect_garbage();
        }
        self.start_links();
        let sql = self.shared_sql(&meta.sql);
        let id = meta.id.clone();
        let client_id = meta.client_id.clone();
        let after: AHashSet<RecordId> = members.into_iter().collect();
        let old = self.requery.insert(
            id.clone(),
            RequeryView {
                meta: CompactMeta::new(meta, sql),
                reason: reason.into_boxed_str(),
                tables: tables.into_boxed_slice(),
                linked: linked.into_boxed_slice(),
                members: after.clone(),
                error: None,
            },
        );
        if let Some(old) = old {
            self.forget_sql(old.meta.sql);
        }
        let mut delta = ViewDelta {
            view: id,
            client_id,
            ..Default::default()
        };
        for r in &after {
            if !before.contains(r) {
                delta
                    .created
                    .push((r.clone(), self.version(r).unwrap_or(1)));
            }
        }
        for r in before {
            if !after.contains(&r) {
                delta.deleted.push(r);
            } else if client_changed {
                let version = self.version(&r).unwrap_or(1);
                delta.updated.push((r, version));
            }
        }
        delta.created.sort();
        delta.updated.sort();
        delta.deleted.sort();
        delta
    }

    /// The re-query views a batch that changed `tables` may have changed.
    pub fn requery_due(&self, tables: &AHashSet<&str>) -> Vec<RequeryTask> {
        let mut due: Vec<RequeryTask> = self
            .requery
            .values()
            .filter(|v| {
                self.requery_tables(v)
                    .iter()
                    .any(|t| tables.contains(t.as_ref()))
            })
            .map(|v| RequeryTask {
                view: v.meta.id.clone(),
                sql: v.meta.sql.clone(),
                params: v.meta.to_meta().params,
            })
            .collect();
        due.sort_by(|a, b| a.view.cmp(&b.view));
        due
    }

    /// A re-query view as the state file keeps it.
    pub fn requery_state(&self, id: &str) -> Option<RequeryState> {
        let v = self.requery.get(id)?;
        let mut members: Vec<RecordId> = v.members.iter().cloned().collect();
        members.sort();
        Some(RequeryState {
            id: v.meta.id.clone(),
            reason: v.reason.to_string(),
            tables: v.tables.to_vec(),
            linked: v.linked.to_vec(),
            members,
            error: v.error.as_deref().map(str::to_string),
        })
    }

    /// Every re-query view, for a re-run of all of them (after a restart).
    pub fn requery_all(&self) -> Vec<RequeryTask> {
        let mut due: Vec<RequeryTask> = self
            .requery
            .values()
            .map(|v| RequeryTask {
                view: v.meta.id.clone(),
                sql: v.meta.sql.clone(),
                params: v.meta.to_meta().params,
            })
            .collect();
        due.sort_by(|a, b| a.view.cmp(&b.view));
        due
    }

    /// A re-query view's new answer: the records that entered and left.
    /// (Members whose version changed were already `updated` by the batch.)
    /// `None` if the view is gone or left the tier meanwhile. The flag says
    /// whether the answer links to a table it did not before (the change
    /// worker may have to follow it).
    pub fn requery_answer(
        &mut self,
        id: &str,
        members: Vec<RecordId>,
        linked: Vec<Arc<str>>,
    ) -> Option<(ViewDelta, bool)> {
        let versions: Vec<u64> = members
            .iter()
            .map(|r| self.version(r).unwrap_or(1))
            .collect();
        let v = self.requery.get_mut(id)?;
        v.error = None;
        let grew = linked.iter().any(|t| !v.linked.contains(t));
        v.linked = linked.into_boxed_slice();
        let after: AHashSet<RecordId> = members.iter().cloned().collect();
        let mut delta = ViewDelta {
            view: v.meta.id.clone(),
            client_id: v.meta.client_id.clone(),
            ..Default::default()
        };
        for (r, version) in members.into_iter().zip(versions) {
            if !v.members.contains(&r) {
                delta.created.push((r, version));
            }
        }
        for r in &v.members {
            if !after.contains(r) {
                delta.deleted.push(r.clone());
            }
        }
        v.members = after;
        delta.created.sort();
        delta.deleted.sort();
        Some((delta, grew))
    }

    /// A re-run failed for a reason waiting does not heal (SurrealDB
    /// refuses the query on the data it holds now): the edges keep the last
    /// answer, and `GET /view` shows why.
    pub fn requery_failed(&mut self, id: &str, error: String) {
        if let Some(v) = self.requery.get_mut(id) {
            v.error = Some(error.into_boxed_str());
        }
    }

    /// Removes a re-query view; returns its id, client id and members.
    fn remove_requery(&mut self, id: &str) -> Option<(Arc<str>, Arc<str>, AHashSet<RecordId>)> {
        let v = self.requery.remove(id)?;
        if self.requery.is_empty() {
            self.links.stop();
        }
        let CompactMeta {
            id, client_id, sql, ..
        } = v.meta;
        self.forget_sql(sql);
        Some((id, client_id, v.members))
    }

    fn start_links(&mut self) {
        if self.links.is_tracking() {
            return;
        }
        let store = &self.store;
        self.links.start(
            store
                .tables
                .iter()
                .flat_map(|(name, t)| t.records.values().map(move |r| (name, &r.content))),
        );
    }

    fn shared_sql(&mut self, sql: &str) -> Arc<str> {
        match self.sqls.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s: Arc<str> = sql.into();
                self.sqls.insert(s.clone());
                s
            }
        }
    }

    /// Updates a view's `lastActiveAt`.
    pub fn touch(&mut self, id: &str, at: DateTime<Utc>) -> bool {
        if let Some(v) = self.views.get_mut(id) {
            v.meta.last_active_at = at;
            return true;
        }
        match self.requery.get_mut(id) {
            Some(v) => {
                v.meta.last_active_at = at;
                true
            }
            None => false,
        }
    }

    /// Removes a view; returns its records (all of which lose their edge).
    pub fn unregister(&mut self, id: &str) -> Option<ViewDelta> {
        if let Some((view, client_id, members)) = self.remove_requery(id) {
            let mut deleted: Vec<RecordId> = members.into_iter().collect();
            deleted.sort();
            return Some(ViewDelta {
                view,
                client_id,
                deleted,
                ..Default::default()
            });
        }
        let view = self.views.remove(id)?;
        let mut records = self.root_records(view.root);
        records.sort();
        self.detach_view(&view.meta.id, view.root);
        let View { meta, plan, .. } = *view;
        self.forget_sql(meta.sql);
        drop(plan);
        self.finish_batch();
        self.planner.collect_garbage();
        Some(ViewDelta {
            view: meta.id,
            client_id: meta.client_id,
            deleted: records,
            ..Default::default()
        })
    }

    /// Drops the shared copy of a query text no view uses any more.
    fn forget_sql(&mut self, sql: Arc<str>) {
        // Held by the set and by `sql` only.
        if Arc::strong_count(&sql) == 2 {
            self.sqls.remove(&sql);
        }
    }

    /// Forgets every view and record.
    pub fn reset(&mut self) {
        *self = Engine::default();
    }

    fn detach_view(&mut self, view_id: &Arc<str>, root: NodeId) {
        let Some(rd) = self.node_mut(root).root.as_mut() else {
            return;
        };
        if let Some(pos) = rd.views.iter().position(|(v, _)| v == view_id) {
            rd.views.swap_remove(pos);
        }
        if !rd.views.is_empty() {
            return;
        }
        self.node_mut(root).root = None;
        if self.node(root).parents.is_empty() {
            self.destroy(root);
        }
    }

    fn make_root(&mut self, id: NodeId) {
        if self.node(id).root.is_some() {
            return;
        }
        // Without subqueries a node's result is its members, each once: no
        // counts to keep (most roots; the big ones, like `text = $w`).
        let flat = if self.node(id).plan.subplans.is_empty() {
            None
        } else {
            let mut all = Vec::new();
            self.collect_flat(id, &mut all);
            let mut flat: SmallMap<RecordId, u32> = SmallMap::new();
            for r in all {
                match flat.get_mut(&r) {
                    Some(c) => *c += 1,
                    None => {
                        flat.insert(r, 1);
                    }
                }
            }
            Some(flat)
        };
        self.node_mut(id).root = Some(Box::new(RootData {
            views: Vec::new(),
            flat,
        }));
    }

    // ----- changes -------------------------------------------------------

    /// Applies a batch of changes and returns one combined delta per view
    /// that changed. A record changed several times in one batch counts as
    /// one change, from its content before the batch to its last content.
    pub fn apply_batch(&mut self, changes: &[Change]) -> Vec<ViewDelta> {
        value::take_link_followed();
        let out = self.apply_batch_inner(changes);
        if value::take_link_followed() {
            self.links_not_followed += 1;
        }
        out
    }

    /// How many batches evaluated a path through a record link for an
    /// incremental view (see [`PlanError::FollowsLink`]): a view registered
    /// while its data held no link there, whose data now does. Its result
    /// may differ from SurrealDB's; the pipeline reports it.
    pub fn links_not_followed(&self) -> u64 {
        self.links_not_followed
    }

    fn apply_batch_inner(&mut self, changes: &[Change]) -> Vec<ViewDelta> {
        // 1. Store: each record's final content in this batch (last change
        //    wins), so its version grows at most once per batch, and a feed
        //    that replays older states before the newest one changes nothing.
        let mut finals: Vec<(&RecordId, Option<&Object>)> = Vec::with_capacity(changes.len());
        let mut index: AHashMap<&RecordId, usize> = AHashMap::with_capacity(changes.len());
        for change in changes {
            match index.get(&change.id) {
                Some(&i) => finals[i].1 = change.content.as_ref(),
                None => {
                    index.insert(&change.id, finals.len());
                    finals.push((&change.id, change.content.as_ref()));
                }
            }
        }
        let mut touched: Vec<(RecordId, Option<Value>)> = Vec::with_capacity(finals.len());
        let mut bumped: AHashSet<RecordId> = AHashSet::with_capacity(finals.len());
        for (id, content) in finals {
            let table = self.store.table_mut(&id.table);
            let old = table.records.get(&id.key).cloned();
            touched.push((id.clone(), old.as_ref().map(|r| r.content.clone())));
            let Some(content) = content else {
                table.records.remove(&id.key);
                continue;
            };
            // Stored without an `id` field: the id is the key, whatever the
            // JSON said (expressions read it through `eval::Row`).
            let content = self
                .store
                .stored_content(id, content, old.as_ref().map(|r| &r.content));
            let table = self.store.table_mut(&id.table);
            let version = match &old {
                Some(old) if old.content.same_content(&content) => {
                    if old.content == content {
                        continue;
                    }
                    // Same content in another representation (JSON vs typed):
                    // keep the richer value, keep the version.
                    old.version
                }
                Some(old) => {
                    bumped.insert(id.clone());
                    old.version + 1
                }
                None => {
                    bumped.insert(id.clone());
                    self.version_floors.remove(id).map_or(1, |floor| floor + 1)
                }
            };
            table
                .records
                .insert(id.key.clone(), Record { content, version });
        }

        // 2. Dispatch: evaluate candidate nodes before and after.
        let mut events: Vec<Event> = Vec::new();
        let mut dirty: Vec<NodeId> = Vec::new();
        let mut candidates: Vec<NodeId> = Vec::new();
        let mut held: Vec<(RecordId, Vec<NodeId>)> = Vec::with_capacity(bumped.len());
        // Candidates with subqueries: the nodes that may hold the record as
        // a member after the batch (see the rebinds below).
        let mut hosts: Vec<(RecordId, Vec<NodeId>)> = Vec::new();
        for (id, old) in &touched {
            let new = self.store.get(id).map(|r| r.content.clone());
            // Unchanged: the store kept the very same content.
            if let (Some(Value::Object(o)), Some(Value::Object(n))) = (old, &new)
                && o.ptr_eq(n)
            {
                continue;
            }
            if old.is_none() && new.is_none() {
                continue;
            }
            self.links.change(&id.table, old.as_ref(), new.as_ref());
            candidates.clear();
            if let Some(table) = self.store.tables.get_mut(&id.table) {
                table.reindex(id, old.as_ref(), new.as_ref(), &mut candidates);
            }
            candidates.sort_unstable();
            candidates.dedup();
            if bumped.contains(id) {
                held.push((id.clone(), candidates.clone()));
            }
            for &n in &candidates {
                self.evaluate(n, id, old.as_ref(), new.as_ref(), &mut events, &mut dirty);
            }
            let with_subqueries: Vec<NodeId> = candidates
                .iter()
                .copied()
                .filter(|&n| self.alive(n) && !self.node(n).plan.subplans.is_empty())
                .collect();
            if !with_subqueries.is_empty() {
                hosts.push((id.clone(), with_subqueries));
            }
        }

        // 3. Nodes: apply membership changes and let them flow to roots.
        self.run_events(events);
        for n in dirty {
            self.refresh_window(n);
        }
        // Every node that holds a changed record as a member and has
        // subqueries must check whether the record's link fields moved. Such
        // a node was a candidate for the record: a member matches the node's
        // filter, so the record's new value is under the node's index key
        // (`sql_eq` implies equal index keys), or the node scans. So the
        // candidates are searched, and no record-to-host map is kept (it
        // cost ~90 bytes per member of every such node).
        let mut rebinds: Vec<Event> = Vec::new();
        for (id, nodes) in hosts {
            for n in nodes {
                if self.alive(n) && self.node(n).is_member(&id) {
                    rebinds.push(Event::Rebind(n, id.clone()));
                }
            }
        }
        self.run_events(rebinds);

        // 4. Roots: turn count transitions and version bumps into deltas.
        let mut out = self.collect_deltas(&bumped, &held);
        self.finish_batch();
        if !self.requery.is_empty() {
            self.requery_bumps(&bumped, &mut out);
        }
        out
    }

    /// Re-query views hold their members without nodes: a member whose
    /// version changed is `updated` here; whether it stays is the re-run's
    /// answer, which the pipeline adds to the same transaction.
    fn requery_bumps(&self, bumped: &AHashSet<RecordId>, out: &mut Vec<ViewDelta>) {
        let mut added = false;
        for v in self.requery.values() {
            let mut updated: Vec<(RecordId, u64)> = if bumped.len() < v.members.len() {
                bumped
                    .iter()
                    .filter(|r| v.members.contains(*r))
                    .map(|r| (r.clone(), self.version(r).unwrap_or(1)))
                    .collect()
            } else {
                v.members
                    .iter()
                    .filter(|r| bumped.contains(*r))
                    .map(|r| (r.clone(), self.version(r).unwrap_or(1)))
                    .collect()
            };
            if updated.is_empty() {
                continue;
            }
            updated.sort();
            out.push(ViewDelta {
                view: v.meta.id.clone(),
                client_id: v.meta.client_id.clone(),
                updated,
                ..Default::default()
            });
            added = true;
        }
        if added {
            out.sort_by(|a, b| a.view.cmp(&b.view));
        }
    }

    fn evaluate(
        &mut self,
        n: NodeId,
        id: &RecordId,
        old: Option<&Value>,
        new: Option<&Value>,
        events: &mut Vec<Event>,
        dirty: &mut Vec<NodeId>,
    ) {
        let node = self.node_mut(n);
        let was = old.is_some_and(|c| matches(node.bound.filter.as_ref(), Row::new(id, c)));
        let is = new.is_some_and(|c| matches(node.bound.filter.as_ref(), Row::new(id, c)));
        if node.sorted.is_none() {
            match (was, is) {
                (false, true) => events.push(Event::Add(n, id.clone())),
                (true, false) => events.push(Event::Remove(n, id.clone())),
                _ => {}
            }
            return;
        }
        if !was && !is {
            return;
        }
        let old_entry = old
            .filter(|_| was)
            .map(|c| node::SortEntry::new(&node.plan, id, c));
        let new_entry = new
            .filter(|_| is)
            .map(|c| node::SortEntry::new(&node.plan, id, c));
        if old_entry == new_entry && old_entry.is_some() {
            return; // Same place in the order: the window cannot move.
        }
        let mut shifts = false;
        if let Some(e) = &old_entry {
            shifts |= node.is_member(id) || node.may_shift_window(e);
            node.order_remove(e);
        }
        if let Some(e) = new_entry {
            shifts |= node.may_shift_window(&e);
            node.order_insert(e);
        }
        shifts |= node.needs_refill();
        if shifts && !node.dirty {
            node.dirty = true;
            dirty.push(n);
        }
    }

    /// Reads a bounded window's order again from the table, once its kept
    /// matches no longer fill the window: the records past them were
    /// dropped. Uses the node's index entry when it has one.
    fn refill_order(&mut self, n: NodeId) {
        let Some(node) = self.nodes.get(n as usize).and_then(|x| x.as_deref()) else {
            return;
        };
        let Some(table) = self.store.tables.get(&node.plan.table) else {
            return;
        };
        let entries: Vec<node::SortEntry> = matching_records(
            table,
            &node.plan,
            node.bound.filter.as_ref(),
            &node.dispatch,
        )
        .into_iter()
        .map(|(id, content)| node::SortEntry::new(&node.plan, &id, content))
        .collect();
        let node = self.node_mut(n);
        node.order_clear();
        for e in entries {
            node.order_insert(e);
        }
    }

    fn refresh_window(&mut self, n: NodeId) {
        if self
            .nodes
            .get(n as usize)
            .and_then(|x| x.as_deref())
            .is_some_and(Node::needs_refill)
        {
            self.refill_order(n);
        }
        let Some(node) = self
            .nodes
            .get_mut(n as usize)
            .and_then(|x| x.as_deref_mut())
        else {
            return;
        };
        node.dirty = false;
        let window = node.window();
        let now: AHashSet<&RecordId> = window.iter().collect();
        let mut events: Vec<Event> = node
            .member_ids()
            .filter(|r| !now.contains(r))
            .map(|r| Event::Remove(n, r))
            .collect();
        events.extend(
            window
                .iter()
                .filter(|r| !node.is_member(r))
                .map(|r| Event::Add(n, r.clone())),
        );
        self.run_events(events);
    }

    fn run_events(&mut self, events: Vec<Event>) {
        for ev in events {
            match ev {
                Event::Add(n, r) => self.add_member(n, r),
                Event::Remove(n, r) => self.remove_member(n, &r),
                Event::Rebind(n, r) => self.rebind(n, &r),
            }
        }
    }

    fn alive(&self, n: NodeId) -> bool {
        self.nodes.get(n as usize).is_some_and(|x| x.is_some())
    }

    fn add_member(&mut self, n: NodeId, r: RecordId) {
        if !self.alive(n) || !self.node_mut(n).insert_member(&r) {
            return;
        }
        let mut delta = vec![(r.clone(), 1i64)];
        let kids = self.attach_children(n, &r);
        for &k in &kids {
            let mut flat = Vec::new();
            self.collect_flat(k, &mut flat);
            delta.extend(flat.into_iter().map(|x| (x, 1)));
        }
        if !kids.is_empty() {
            self.node_mut(n)
                .children
                .insert(r.key, kids.into_boxed_slice());
        }
        self.propagate(n, &delta, 1);
    }

    fn remove_member(&mut self, n: NodeId, r: &RecordId) {
        if !self.alive(n) || !self.node_mut(n).remove_member(r) {
            return;
        }
        let mut delta = vec![(r.clone(), -1i64)];
        let kids = self.node_mut(n).children.remove(&r.key).unwrap_or_default();
        for &k in kids.iter() {
            let mut flat = Vec::new();
            self.collect_flat(k, &mut flat);
            delta.extend(flat.into_iter().map(|x| (x, -1)));
        }
        self.propagate(n, &delta, 1);
        for &k in kids.iter() {
            self.unlink(k, n);
        }
    }

    /// Re-binds a member's subqueries after its content changed, when a
    /// field they read through `$parent` moved (a thread changing author).
    fn rebind(&mut self, n: NodeId, r: &RecordId) {
        if !self.alive(n) || !self.node(n).is_member(r) {
            return;
        }
        let Some(content) = self.store.get(r).map(|x| x.content.clone()) else {
            return;
        };
        let node = self.node(n);
        let plan = node.plan.clone();
        let params = node.params.clone();
        let current = node.children.get(&r.key).cloned().unwrap_or_default();
        for (i, sub) in plan.subplans.iter().enumerate() {
            let env = Env {
                params: &params,
                parent: Some(Row::new(r, &content)),
            };
            let key = (Arc::as_ptr(sub) as usize, sub.key_args(&env));
            let old = current.get(i).copied();
            if old.is_some() && self.node_keys.get(&key).copied() == old {
                continue;
            }
            let new = self.get_or_create(sub, &params, Some(Row::new(r, &content)));
            self.node_mut(new).add_parent(n);
            let mut delta = Vec::new();
            let mut flat = Vec::new();
            self.collect_flat(new, &mut flat);
            delta.extend(flat.into_iter().map(|x| (x, 1i64)));
            if let Some(old) = old {
                let mut flat = Vec::new();
                self.collect_flat(old, &mut flat);
                delta.extend(flat.into_iter().map(|x| (x, -1i64)));
            }
            if let Some(kids) = self.node_mut(n).children.get_mut(&r.key)
                && i < kids.len()
            {
                kids[i] = new;
            }
            self.propagate(n, &delta, 1);
            if let Some(old) = old {
                self.unlink(old, n);
            }
        }
    }

    /// Creates (or finds) the child nodes of member `r` of node `n`.
    fn attach_children(&mut self, n: NodeId, r: &RecordId) -> Vec<NodeId> {
        let node = self.node(n);
        if node.plan.subplans.is_empty() {
            return Vec::new();
        }
        let plan = node.plan.clone();
        let params = node.params.clone();
        let Some(content) = self.store.get(r).map(|x| x.content.clone()) else {
            return Vec::new();
        };
        let mut kids = Vec::with_capacity(plan.subplans.len());
        for sub in &plan.subplans {
            let k = self.get_or_create(sub, &params, Some(Row::new(r, &content)));
            self.node_mut(k).add_parent(n);
            kids.push(k);
        }
        kids
    }

    fn unlink(&mut self, child: NodeId, parent: NodeId) {
        if !self.alive(child) {
            return;
        }
        if self.node_mut(child).remove_parent(parent) {
            self.destroy(child);
        }
    }

    /// Every record a node contributes, with multiplicity: its members and,
    /// recursively, their subquery children's.
    fn collect_flat(&self, n: NodeId, out: &mut Vec<RecordId>) {
        let node = self.node(n);
        for r in node.member_ids() {
            let kids = node.children.get(&r.key);
            out.push(r);
            if let Some(kids) = kids {
                for &k in kids.iter() {
                    self.collect_flat(k, out);
                }
            }
        }
    }

    /// Sends a Z-set delta up from node `n` to every root above it.
    fn propagate(&mut self, n: NodeId, delta: &[(RecordId, i64)], factor: i64) {
        if delta.is_empty() {
            return;
        }
        if self.node(n).root.is_some() {
            for (r, d) in delta {
                self.apply_root(n, r, d * factor);
            }
        }
        // Propagation changes roots' results, never the node graph, so the
        // parent list can be walked in place.
        for i in 0..self.node(n).parents.len() {
            let (p, m) = self.node(n).parents[i];
            self.propagate(p, delta, factor * i64::from(m));
        }
    }

    fn apply_root(&mut self, root: NodeId, r: &RecordId, d: i64) {
        let rd = self.node_mut(root).root.as_mut().expect("a root");
        let was = match rd.flat.as_mut() {
            Some(flat) => {
                let before = flat.get(r).copied().unwrap_or(0);
                let after = (i64::from(before) + d).max(0) as u32;
                if after == 0 {
                    flat.remove(r);
                } else {
                    flat.insert(r.clone(), after);
                }
                before > 0
            }
            // The result is the members, already updated: a member that
            // joined was not there before, one that left was.
            None => d < 0,
        };
        self.touched.entry((root, r.clone())).or_insert(was);
    }

    /// The roots whose result holds `r` through one of `nodes` (the nodes
    /// that were dispatched `r`'s final content: every node that can hold it).
    fn roots_holding(&self, r: &RecordId, nodes: &[NodeId], out: &mut Vec<NodeId>) {
        let mut stack: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|&n| self.alive(n) && self.node(n).is_member(r))
            .collect();
        let mut seen: Vec<NodeId> = stack.clone();
        while let Some(n) = stack.pop() {
            let node = self.node(n);
            if node.root.is_some() {
                out.push(n);
            }
            for &(p, _) in &node.parents {
                if !seen.contains(&p) {
                    seen.push(p);
                    stack.push(p);
                }
            }
        }
    }

    /// `held`: each record whose version grew, with the nodes it was
    /// dispatched to.
    fn collect_deltas(
        &mut self,
        bumped: &AHashSet<RecordId>,
        held: &[(RecordId, Vec<NodeId>)],
    ) -> Vec<ViewDelta> {
        let mut touched = std::mem::take(&mut self.touched);
        let mut per_root: AHashMap<NodeId, ViewDelta> = AHashMap::with_capacity(touched.len());
        let version = |store: &Store, r: &RecordId| store.get(r).map(|x| x.version).unwrap_or(1);
        for ((root, r), was) in &touched {
            let Some(rd) = self.root_data(*root) else {
                continue;
            };
            let is = match &rd.flat {
                Some(flat) => flat.contains_key(r),
                None => self.node(*root).is_member(r),
            };
            let d = per_root.entry(*root).or_default();
            match (was, is) {
                (false, true) => d.created.push((r.clone(), version(&self.store, r))),
                (true, false) => d.deleted.push(r.clone()),
                (true, true) if bumped.contains(r) => {
                    d.updated.push((r.clone(), version(&self.store, r)))
                }
                _ => {}
            }
        }
        // Records that kept their place in a root but changed version.
        let mut roots = Vec::new();
        for (r, nodes) in held {
            roots.clear();
            self.roots_holding(r, nodes, &mut roots);
            for &root in &roots {
                if !touched.contains_key(&(root, r.clone())) {
                    let v = version(&self.store, r);
                    per_root
                        .entry(root)
                        .or_default()
                        .updated
                        .push((r.clone(), v));
                }
            }
        }
        // Sorted by view id through a list of small entries, rather than by
        // moving the (large) deltas themselves.
        let mut deltas = Vec::with_capacity(per_root.len());
        let mut order: Vec<(&Arc<str>, &Arc<str>, usize)> = Vec::new();
        for (root, mut d) in per_root {
            if d.is_empty() {
                continue;
            }
            let Some(rd) = self.root_data(root) else {
                continue;
            };
            d.created.sort();
            d.updated.sort();
            d.deleted.sort();
            order.extend(rd.views.iter().map(|(v, c)| (v, c, deltas.len())));
            deltas.push(d);
        }
        // View ids are unique, so an unstable sort gives the same order.
        order.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let out = order
            .into_iter()
            .map(|(v, c, i)| {
                let d = &deltas[i];
                ViewDelta {
                    view: v.clone(),
                    client_id: c.clone(),
                    created: d.created.clone(),
                    updated: d.updated.clone(),
                    deleted: d.deleted.clone(),
                }
            })
            .collect();
        // Keep the touched map's allocation for the next batch.
        touched.clear();
        self.touched = touched;
        out
    }

    /// The records in root `n`'s result (none if `n` is not a root).
    fn root_records(&self, n: NodeId) -> Vec<RecordId> {
        let node = self.node(n);
        match node.root.as_ref().map(|r| &r.flat) {
            None => Vec::new(),
            Some(Some(flat)) => flat.keys().cloned().collect(),
            Some(None) => node.member_ids().collect(),
        }
    }

    fn root_data(&self, n: NodeId) -> Option<&RootData> {
        self.nodes.get(n as usize)?.as_ref()?.root.as_deref()
    }

    fn finish_batch(&mut self) {
        self.touched.clear();
        self.free.append(&mut self.freed_in_batch);
    }

    // ----- nodes ---------------------------------------------------------

    fn node(&self, n: NodeId) -> &Node {
        self.nodes[n as usize].as_deref().expect("a live node")
    }

    fn node_mut(&mut self, n: NodeId) -> &mut Node {
        self.nodes[n as usize].as_deref_mut().expect("a live node")
    }

    /// Finds the node for `plan` bound to these parameters, or creates it
    /// and computes its initial result from the store.
    fn get_or_create(
        &mut self,
        plan: &Arc<Plan>,
        params: &Arc<Object>,
        parent: Option<Row<'_>>,
    ) -> NodeId {
        let env = Env { params, parent };
        let key = (Arc::as_ptr(plan) as usize, plan.key_args(&env));
        if let Some(&n) = self.node_keys.get(&key) {
            return n;
        }
        let bound = plan.bind(&env).unwrap_or(Bound {
            // Only a `$parent`-driven LIMIT can fail here (root plans are
            // validated at registration); SurrealDB errors there, we match nothing.
            filter: Some(ast::Expr::Literal(Value::Bool(false))),
            start: 0,
            limit: Some(0),
            windowed: true,
        });
        let dispatch = match &plan.index_term {
            Some(term) => match bind(&term.value, &env) {
                ast::Expr::Literal(v) => match v.index_key() {
                    Some(k) => Dispatch::Indexed(k),
                    None => Dispatch::Scan,
                },
                _ => Dispatch::Scan,
            },
            None => Dispatch::Scan,
        };

        // Initial result: from the index when there is one, else a scan.
        let table = self.store.table_mut(&plan.table);
        if matches!(dispatch, Dispatch::Indexed(_)) {
            table.field_index(index_path(plan));
        }
        let keep = match (bound.windowed, bound.limit) {
            (true, Some(limit)) => {
                let end = bound.start.saturating_add(limit);
                let slack = self.window_slack.unwrap_or(end.max(WINDOW_SLACK_MIN));
                Some(end.saturating_add(slack))
            }
            _ => None,
        };
        let mut node = Node {
            plan: plan.clone(),
            key_args: key.1.clone(),
            params: params.clone(),
            sorted: bound.windowed.then(SortedSet::new),
            keep,
            truncated: false,
            bound,
            dispatch: dispatch.clone(),
            members: keyset::KeySet::new(),
            children: SmallMap::new(),
            parents: Vec::new(),
            root: None,
            dirty: false,
        };
        let mut matched = Vec::new();
        for (id, content) in matching_records(table, plan, node.bound.filter.as_ref(), &dispatch) {
            if node.sorted.is_some() {
                node.order_insert(node::SortEntry::new(plan, &id, content));
            } else {
                matched.push(id);
            }
        }
        if node.sorted.is_some() {
            matched = node.window();
        }
        let n = match self.free.pop() {
            Some(n) => n,
            None => {
                self.nodes.push(None);
                (self.nodes.len() - 1) as NodeId
            }
        };
        // Register for change routing.
        let table = self.store.table_mut(&plan.table);
        match &dispatch {
            Dispatch::Indexed(k) => push_small(
                table
                    .field_index(index_path(plan))
                    .nodes
                    .entry(k.clone())
                    .or_default(),
                n,
            ),
            Dispatch::Scan => {
                table.scan_nodes.insert(n);
            }
        }
        node.members = matched.iter().map(|r| r.key.clone()).collect();
        self.nodes[n as usize] = Some(Box::new(node));
        self.node_keys.insert(key, n);
        for r in matched {
            let kids = self.attach_children(n, &r);
            if !kids.is_empty() {
                self.node_mut(n)
                    .children
                    .insert(r.key, kids.into_boxed_slice());
            }
        }
        n
    }

    fn destroy(&mut self, n: NodeId) {
        let Some(node) = self.nodes[n as usize].take() else {
            return;
        };
        self.freed_in_batch.push(n);
        self.node_keys
            .remove(&(Arc::as_ptr(&node.plan) as usize, node.key_args.clone()));
        if let Some(table) = self.store.tables.get_mut(&node.plan.table) {
            match &node.dispatch {
                Dispatch::Indexed(k) => {
                    let idx = table.field_index(index_path(&node.plan));
                    if let Some(list) = idx.nodes.get_mut(k) {
                        list.retain(|x| *x != n);
                        if list.is_empty() {
                            idx.nodes.remove(k);
                        }
                    }
                }
                Dispatch::Scan => {
                    table.scan_nodes.remove(&n);
                }
            }
        }
        for kids in node.children.into_values() {
            for &k in kids.iter() {
                self.unlink(k, n);
            }
        }
    }

    // ----- persistence ---------------------------------------------------

    /// A consistent snapshot of everything that is not derived.
    pub fn to_state(&self) -> EngineState {
        let mut views: Vec<ViewMeta> = self.views().collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        let mut requery: Vec<RequeryState> = self
            .requery
            .keys()
            .filter_map(|id| self.requery_state(id))
            .collect();
        requery.sort_by(|a, b| a.id.cmp(&b.id));
        let mut records = Vec::with_capacity(self.store.len());
        for (table, t) in &self.store.tables {
            for (k, rec) in &t.records {
                records.push(StoredRecord {
                    id: RecordId::new(table.clone(), k.clone()),
                    version: rec.version,
                    content: rec.content.clone(),
                });
            }
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        EngineState {
            views,
            records,
            requery,
        }
    }

    /// Rebuilds an engine from a snapshot: records first, then views, whose
    /// nodes and indexes are derived again.
    pub fn from_state(state: EngineState) -> Result<Engine, EngineError> {
        let mut engine = Engine::new();
        for rec in state.records {
            let content = match &rec.content {
                Value::Object(o) => engine.store.stored_content(&rec.id, o, None),
                _ => rec.content,
            };
            let table = engine.store.table_mut(&rec.id.table);
            table.records.insert(
                rec.id.key,
                Record {
                    content,
                    version: rec.version,
                },
            );
        }
        let mut requery: AHashMap<Arc<str>, RequeryState> = state
            .requery
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        for v in state.views {
            match requery.remove(&v.id) {
                Some(r) => {
                    engine.register_requery(v, r.reason, r.tables, r.members, r.linked);
                    if let Some(e) = r.error {
                        engine.requery_failed(&r.id, e);
                    }
                }
                None => {
                    engine.register(v)?;
                }
            }
        }
        Ok(engine)
    }

    /// Raises a record's version to at least `version`, changing nothing
    /// else. Clients cache records by version, so a version SSP hands out
    /// must never be below one an edge already showed: after a kill -9 the
    /// state file can be older than the edges the last commits wrote.
    ///
    /// A record the engine does not hold (created after the state file was
    /// saved) gets a floor instead: when it arrives, its version starts
    /// above what its edges showed.
    pub fn raise_version(&mut self, id: &RecordId, version: u64) {
        match self
            .store
            .tables
            .get_mut(&id.table)
            .and_then(|t| t.records.get_mut(&id.key))
        {
            Some(r) => r.version = r.version.max(version),
            None => {
                let floor = self.version_floors.entry(id.clone()).or_default();
                *floor = (*floor).max(version);
            }
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
) -> Vec<(RecordId, &'a Value)> {
    let candidates: Vec<Key> = match dispatch {
        Dispatch::Indexed(k) => table.lookup(&plan.table, index_path(plan), k),
        Dispatch::Scan => table.records.keys().cloned().collect(),
    };
    candidates
        .into_iter()
        .filter_map(|k| {
            let rec = table.records.get(&k)?;
            let id = RecordId::new(plan.table.clone(), k);
            matches(filter, Row::new(&id, &rec.content)).then_some((id, &rec.content))
        })
        .collect()
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
