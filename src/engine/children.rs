//! A member's children: the node of each subquery projection, bound to
//! the member, and the node of each record its `FETCH` fields (or
//! `field.*`) name; made when a member joins, re-bound when its content
//! moves, and what it contributes to its roots.

use super::*;

impl Engine {
    /// Re-binds a member's subqueries after its content changed, when a
    /// field they read through `$parent` moved (a thread changing author).
    pub(super) fn rebind(&mut self, n: NodeId, r: &RecordId) {
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
            let key = node::node_key(sub, sub.key_args(&env));
            if graph_not_exact(sub, r, &content) {
                value::note_link_followed();
            }
            // A `$parent` path through a record link (`$parent.author.name`
            // where `author` now holds `user:1`): SurrealDB follows it, so
            // the view goes to the re-query tier, even when the binding
            // reads the same (NONE) as before.
            if value::take_link_followed() {
                self.note_link_nodes(vec![n]);
            }
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
        if plan.fetch.is_empty() {
            return;
        }
        // The fetched records: after the subqueries' children, as many as
        // the member's links name now.
        let mut kids: Vec<NodeId> = self
            .node(n)
            .children
            .get(&r.key)
            .map(|k| k.to_vec())
            .unwrap_or_default();
        let old: Vec<NodeId> = kids.split_off(plan.subplans.len().min(kids.len()));
        let new = self.fetch_children(n, &plan, &content);
        self.note_fetch_not_followed(n);
        if new == old {
            return;
        }
        let mut delta = Vec::new();
        for &k in &new {
            self.node_mut(k).add_parent(n);
            let mut flat = Vec::new();
            self.collect_flat(k, &mut flat);
            delta.extend(flat.into_iter().map(|x| (x, 1i64)));
        }
        for &k in &old {
            let mut flat = Vec::new();
            self.collect_flat(k, &mut flat);
            delta.extend(flat.into_iter().map(|x| (x, -1i64)));
        }
        kids.extend(new);
        let node = self.node_mut(n);
        if kids.is_empty() {
            node.children.remove(&r.key);
        } else {
            node.children.insert(r.key.clone(), kids.into_boxed_slice());
        }
        self.propagate(n, &delta, 1);
        for k in old {
            self.unlink(k, n);
        }
    }

    /// Creates (or finds) the child nodes of member `r` of node `n`: one
    /// per subquery, then one per record its `FETCH` fields name.
    pub(super) fn attach_children(&mut self, n: NodeId, r: &RecordId) -> Vec<NodeId> {
        let node = self.node(n);
        if node.plan.subplans.is_empty() && node.plan.fetch.is_empty() {
            return Vec::new();
        }
        let plan = node.plan.clone();
        let params = node.params.clone();
        let Some(content) = self.store.get(r).map(|x| x.content.clone()) else {
            return Vec::new();
        };
        let mut kids = Vec::with_capacity(plan.subplans.len());
        for sub in &plan.subplans {
            if graph_not_exact(sub, r, &content) {
                value::note_link_followed();
            }
            let k = self.get_or_create(sub, &params, Some(Row::new(r, &content)));
            self.node_mut(k).add_parent(n);
            kids.push(k);
        }
        for k in self.fetch_children(n, &plan, &content) {
            self.node_mut(k).add_parent(n);
            kids.push(k);
        }
        self.note_fetch_not_followed(n);
        kids
    }

    /// A member of node `n` fetches through a link the engine does not
    /// follow: the views `n` serves must leave the incremental tier. The
    /// flag stays up for a registration under way, which refuses itself
    /// (in a batch it would blame the next node that looks at it).
    fn note_fetch_not_followed(&mut self, n: NodeId) {
        if value::take_link_followed() {
            self.note_link_nodes(vec![n]);
            if self.registering {
                value::note_link_followed();
            }
        }
    }

    /// The nodes of the records a member with `content` fetches, as
    /// SurrealDB's `FETCH` replaces them in the row: a record id, or a
    /// record id directly in an array (measured on 3.3.5: not in a nested
    /// array, a set or an object; a missing record reads NONE, so its node
    /// is empty). JSON text of a record id may be one in the database: the
    /// view cannot stay incremental. A record of a table the engine does not
    /// hold is asked for (see [`links::take_unknown_tables`]).
    fn fetch_children(&mut self, n: NodeId, plan: &Plan, content: &Value) -> Vec<NodeId> {
        if plan.fetch.is_empty() {
            return Vec::new();
        }
        let Value::Object(o) = content else {
            return Vec::new();
        };
        let mut targets: Vec<(RecordId, &[plan::projection::FetchField])> = Vec::new();
        let mut first_of_array = false;
        for f in &plan.fetch {
            let mut take = |v: &Value| match v {
                Value::Thing(t) => targets.push(((**t).clone(), f.nested.as_slice())),
                Value::String(s) if RecordId::parse(s).is_some() => value::note_link_followed(),
                _ => {}
            };
            match o.get(&f.field) {
                // `(SELECT ... FROM $parent.links)[0]`: the first row of
                // `SELECT * FROM [...]`, measured on 3.3.5: a record id
                // whose record is missing, NONE and NULL give no row; any
                // other value is a row of its own, no record. The member
                // is bound again as the array's records come and go (its
                // node follows links from now on: `follow_links_of`). A record
                // of a table SSP does not hold yet is taken as it is (and
                // asked for, below). (A set there is one row, no record:
                // as `FETCH`, measured.)
                Some(Value::Array(items)) if f.first_only => {
                    first_of_array = true;
                    for v in items.iter() {
                        match v {
                            Value::None | Value::Null => {}
                            Value::Thing(t)
                                if self.loaded.contains(&t.table)
                                    && self.store.get(t).is_none() => {}
                            _ => {
                                take(v);
                                break;
                            }
                        }
                    }
                }
                // `user.id`: an array's `id`s are no record (see `FetchField`).
                Some(Value::Array(_)) if f.ids_only => {}
                Some(Value::Array(items)) => items.iter().for_each(&mut take),
                // `user.id` of an object is its `id`, a member even when no
                // such record exists: the re-query tier's to answer.
                Some(Value::Object(x)) if f.ids_only => {
                    let record = |v: &Value| match v {
                        Value::Thing(_) => true,
                        Value::String(s) => RecordId::parse(s).is_some(),
                        _ => false,
                    };
                    if x.get("id").is_some_and(record) {
                        value::note_link_followed();
                    }
                }
                Some(v) => take(v),
                None => {}
            }
        }
        if first_of_array {
            self.follow_links_of(n);
        }
        targets.sort();
        targets.dedup();
        let mut kids = Vec::with_capacity(targets.len());
        for (t, nested) in targets {
            if !self.loaded.contains(&t.table) {
                // Asked for, and the view leaves for the re-query tier
                // until the table is loaded. One that cannot (a time
                // window) keeps the child: the load's records reach it.
                links::note_unknown_table(&t.table);
                value::note_link_followed();
            }
            let plan = self
                .fetch_plans
                .entry((t.table.clone(), nested.to_vec()))
                .or_insert_with(|| Arc::new(Plan::fetch_child(&t.table, nested)))
                .clone();
            let params = Arc::new(Object::from_pairs(vec![(
                plan::projection::FETCH_PARAM.into(),
                Value::thing(t),
            )]));
            kids.push(self.get_or_create(&plan, &params, None));
        }
        kids
    }

    pub(super) fn unlink(&mut self, child: NodeId, parent: NodeId) {
        if !self.alive(child) {
            return;
        }
        if self.node_mut(child).remove_parent(parent) {
            self.destroy(child);
        }
    }

    /// Every record a node contributes, with multiplicity: its members and,
    /// recursively, their subquery children's.
    pub(super) fn collect_flat(&self, n: NodeId, out: &mut Vec<RecordId>) {
        let node = self.node(n);
        let hidden = node.plan.hidden;
        for r in node.member_ids() {
            let kids = node.children.get(&r.key);
            if !hidden {
                out.push(r);
            }
            if let Some(kids) = kids {
                for &k in kids.iter() {
                    self.collect_flat(k, out);
                }
            }
        }
    }
}

/// Whether the traversal of `sub` from member `r` (with `content`) may
/// differ from what its lowered select finds (see
/// [`crate::engine::ast::GraphChecks`]), so that the re-query tier answers:
///
/// * the member holds record ids in both `in` and `out`, and the field the
///   step follows names a record of the step's table: it may be an edge
///   (its table is not `TYPE RELATION`, so SSP cannot tell), whose own end
///   SurrealDB's traversal would reach too;
/// * the record the step starts from, or the end it reaches, has an array
///   or object key: SurrealDB's graph index holds that exact key, while
///   the lowered select's `=` also matches `t:[1f]` for `t:[1]`.
fn graph_not_exact(sub: &Plan, r: &RecordId, content: &Value) -> bool {
    let Some(checks) = sub.graph_checks.as_ref() else {
        return false;
    };
    let composite = |k: &value::Key| matches!(k, value::Key::Composite(_));
    if composite(&r.key) {
        return true;
    }
    let Value::Object(o) = content else {
        return false;
    };
    if ["in", "out"]
        .iter()
        .any(|f| matches!(o.get(f), Some(Value::Thing(t)) if composite(&t.key)))
    {
        return true;
    }
    let Some((field, table)) = checks.parent_edge.as_ref() else {
        return false;
    };
    is_edge_shaped(content)
        && matches!(o.get(field.as_str()), Some(Value::Thing(t)) if t.table.as_str() == table)
}

/// A record that holds record ids in both `in` and `out`, as an edge does.
pub(super) fn is_edge_shaped(content: &Value) -> bool {
    let Value::Object(o) = content else {
        return false;
    };
    matches!(o.get("in"), Some(Value::Thing(_))) && matches!(o.get("out"), Some(Value::Thing(_)))
}
