//! Reading the engine: views, records, versions, counts (for the API, metrics and persistence).

use super::param_links::ParamLinks;
use super::*;

impl Engine {
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

    /// Record `id`'s fields as stored (no `id` field), if it is held.
    pub fn record_fields(&self, id: &RecordId) -> Option<&Object> {
        match &self.store.get(id)?.content {
            Value::Object(o) => Some(o),
            _ => None,
        }
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

    /// Every table some registered view reads: those its query names, and
    /// for a view that reads through record links, every loaded table its
    /// tables' records link to (so that they stay followed while linked),
    /// and the tables a batch found links into without holding them.
    pub fn tables(&self) -> BTreeSet<Arc<str>> {
        let mut out = Vec::new();
        let mut linking = Vec::new();
        for v in self.views.values() {
            v.plan.tables(&mut out);
            for d in v.deps.iter() {
                if !out.iter().any(|t| **t == *d.table) {
                    out.push(Arc::from(d.table.as_str()));
                }
            }
            if v.plan.reads_links() {
                v.plan.tables(&mut linking);
            }
        }
        let mut all: BTreeSet<Arc<str>> = out.into_iter().collect();
        if !linking.is_empty() {
            all.extend(
                self.links
                    .closure(linking.iter().map(|t| t.as_ref()))
                    .into_iter()
                    .filter(|t| self.loaded.contains(t.as_ref())),
            );
        }
        for v in self.requery.values() {
            all.extend(self.requery_tables(v));
        }
        all.extend(self.wanted.iter().cloned());
        all
    }

    /// The tables a change to which may change a re-query view's answer:
    /// those its text reads, those its last answer showed record ids of,
    /// and every table reachable from them over the links records hold.
    pub(super) fn requery_tables(&self, v: &RequeryView) -> BTreeSet<Arc<str>> {
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
        let (plan, _, _) = match self.plan_view(sql, params) {
            Ok(planned) => planned,
            // A `$param` path reads a table the engine does not hold: load
            // it first (the registration then finds the rest).
            Err(EngineError::NeedsTables(tables)) => return Ok(tables),
            Err(e) => return Err(e),
        };
        let mut tables = Vec::new();
        plan.tables(&mut tables);
        drop(plan);
        self.planner.collect_garbage();
        Ok(tables)
    }

    /// Parses, plans and validates a view's query under its params.
    pub(super) fn plan_view(
        &mut self,
        sql: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(Arc<Plan>, Arc<Object>, ParamLinks), EngineError> {
        let select = self.parsed.select(sql)?;
        let mut params = match Value::param_from_json(&serde_json::Value::Object(params.clone())) {
            Value::Object(o) => o,
            _ => return Err(EngineError::BadParams),
        };
        let mut select = ast::Select::clone(&select);
        let from_param = select.ids.is_some();
        let relations = &self.relation_tables;
        let rows_traverse =
            plan::resolve::lower_row_traversals(&mut select, &|t| relations.contains(t))?;
        // The edges of a lowered traversal are read through an index on
        // the edge field (see `param_links`), kept from now on.
        let mut ends = Vec::new();
        plan::resolve::lowered_ends(&select, &mut ends);
        for (table, field) in ends {
            let path = [value::PathPart::Field(field.as_str().into())];
            self.store
                .table_mut(&value::TableName::from(table.as_str()))
                .field_index(&path);
        }
        let links = self.resolve_param_links(&mut select, &mut params);
        if links.unfollowable {
            return Err(PlanError::FollowsLink.into());
        }
        if links.inexact {
            return Err(PlanError::Unsupported(
                "`$x IN <-edge<-table` where an edge names a record with an array or object key \
                 (SurrealDB's graph index holds that exact key)"
                    .into(),
            )
            .into());
        }
        if !links.unknown.is_empty() {
            // A `$param` path reads a record of a table the engine does not
            // hold: the caller loads it and registers again.
            return Err(EngineError::NeedsTables(
                links
                    .unknown
                    .iter()
                    .map(|t| Arc::from(t.as_str()))
                    .collect(),
            ));
        }
        super::param_links::empty_from_path(&mut select, &params, &links);
        let params = Arc::new(params);
        let relations = &self.relation_tables;
        let mut select = plan::resolve::resolve(select, &params, &|t| relations.contains(t))?;
        if rows_traverse {
            plan::resolve::traversed_rows(&mut select, &|t| relations.contains(t))?;
        }
        // `FROM $team.players`: the table comes from a record, so the caller
        // could not load it before: it does now.
        if from_param && !links.deps.is_empty() && !self.loaded.contains(select.table.as_str()) {
            return Err(EngineError::NeedsTables(vec![Arc::from(
                select.table.as_str(),
            )]));
        }
        let plan = self.planner.plan(&select);
        let env = Env {
            params: &params,
            parent: None,
        };
        let mut tables = Vec::new();
        plan.tables(&mut tables);
        let follows_link = plan.param_refs.iter().any(|(name, path)| {
            !name.eq_ignore_ascii_case("parent")
                && params
                    .get(name)
                    .is_some_and(|v| plan::resolve::through_link(v, path))
        });
        let checked = match tables.iter().find(|t| super::value::is_reserved_table(t)) {
            Some(t) => Err(PlanError::ReservedTable {
                table: t.to_string(),
            }),
            None if follows_link => Err(PlanError::FollowsLink),
            None => plan.validate(&env).and_then(|()| self.check_graph(&plan)),
        };
        if let Err(e) = checked {
            drop(plan);
            self.planner.collect_garbage();
            return Err(e.into());
        }
        Ok((plan, params, links))
    }
}
