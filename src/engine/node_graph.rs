//! The graph of shared nodes: creating, re-using and dropping nodes, and their index registrations.

use super::*;

impl Engine {
    pub(super) fn node(&self, n: NodeId) -> &Node {
        self.nodes[n as usize].as_deref().expect("a live node")
    }

    pub(super) fn node_mut(&mut self, n: NodeId) -> &mut Node {
        self.nodes[n as usize].as_deref_mut().expect("a live node")
    }

    /// Finds the node for `plan` bound to these parameters, or creates it
    /// and computes its initial result from the store.
    pub(super) fn get_or_create(
        &mut self,
        plan: &Arc<Plan>,
        params: &Arc<Object>,
        parent: Option<Row<'_>>,
    ) -> NodeId {
        let env = Env { params, parent };
        let key = node::node_key(plan, plan.key_args(&env));
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
        let dispatch = dispatch(plan, &env);

        // Initial result: from the index when there is one, else a scan.
        let table = self.store.table_mut(&plan.table);
        if matches!(dispatch, Dispatch::Indexed(_)) {
            table.field_index(index_path(plan));
        }
        let keep = self.keep(&bound);
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
        let prescanned = self.prescanned.take_if(|p| p.key == key);
        let fetcher = links::Fetcher {
            store: &self.store,
            loaded: &self.loaded,
            before: None,
            clock: self.clock.now,
        };
        let table = self
            .store
            .tables
            .get(&plan.table)
            .expect("created just above");
        let mut matched = Vec::new();
        // A prescan of this node (see `prescan`) did most of the work.
        let prescanned =
            prescanned.is_some_and(|p| p.fill(&mut node, table, &fetcher, &mut matched));
        self.prescan_used |= prescanned;
        if !prescanned {
            for (id, content) in
                matching_records(table, plan, node.bound.filter.as_ref(), &dispatch, &fetcher)
            {
                if node.sorted.is_some() {
                    node.order_insert(node::SortEntry::new(plan, &id, content, &fetcher));
                } else {
                    matched.push(id);
                }
            }
            if node.sorted.is_some() {
                matched = node.window();
            }
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
        if plan.clocked {
            table.clock_nodes.insert(n);
        }
        if plan.follows_links {
            table.link_nodes.insert(n);
            self.link_nodes += 1;
            self.link_hops = self.link_hops.max(plan.link_hops);
            if self.link_nodes == 1 {
                self.start_backlinks();
            }
        }
        node.members = matched.iter().map(|r| r.key.clone()).collect();
        self.nodes[n as usize] = Some(Box::new(node));
        self.node_keys.insert(key, n);
        self.schedule_node_flips(n);
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

    pub(super) fn destroy(&mut self, n: NodeId) {
        let Some(node) = self.nodes[n as usize].take() else {
            return;
        };
        self.freed_in_batch.push(n);
        self.node_keys
            .remove(&node::node_key(&node.plan, node.key_args.clone()));
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
            table.clock_nodes.remove(&n);
            if table.link_nodes.remove(&n) {
                self.link_nodes -= 1;
                if self.link_nodes == 0 {
                    self.link_hops = 0;
                    self.links.stop_back();
                    if self.requery.is_empty() {
                        self.links.stop();
                    }
                }
            }
        }
        for kids in node.children.into_values() {
            for &k in kids.iter() {
                self.unlink(k, n);
            }
        }
    }
}

/// Which nodes' records a node of `plan` under `env` starts from, and how
/// its table routes changes to it: one index entry, or every record.
pub(super) fn dispatch(plan: &Plan, env: &Env<'_>) -> Dispatch {
    match &plan.index_term {
        Some(term) => match bind(&term.value, env) {
            ast::Expr::Literal(v) => {
                let key = if store::is_id_path(&term.path) {
                    id_lookup_key(&v)
                } else {
                    v.index_key()
                };
                match key {
                    // A decimal literal: `=` to numbers no key names.
                    Some(value::IndexKey::Inexact) | None => Dispatch::Scan,
                    Some(k) => Dispatch::Indexed(k),
                }
            }
            _ => Dispatch::Scan,
        },
        None => Dispatch::Scan,
    }
}

impl Engine {
    /// How many matches a node with `bound` keeps in its order (`None`: all).
    pub(super) fn keep(&self, bound: &Bound) -> Option<usize> {
        match (bound.windowed, bound.limit) {
            (true, Some(limit)) => {
                let end = bound.start.saturating_add(limit);
                let slack = self.window_slack.unwrap_or(end.max(WINDOW_SLACK_MIN));
                Some(end.saturating_add(slack))
            }
            _ => None,
        }
    }
}

impl Engine {
    /// Node `n` reads, from now on, which records its members link to exist:
    /// a member whose `(SELECT ... FROM $parent.links)[0]` met an array
    /// (the first record of it that exists, see `fetch_children`). It is
    /// evaluated, and bound again, when a record one link away changes.
    /// Only nodes that meet such an array pay for it: a view whose field
    /// holds one record id never does.
    pub(super) fn follow_links_of(&mut self, n: NodeId) {
        let table = self.node(n).plan.table.clone();
        if self.store.table_mut(&table).link_nodes.insert(n) {
            self.link_nodes += 1;
            self.link_hops = self.link_hops.max(1);
            if self.link_nodes == 1 {
                self.start_backlinks();
            }
        }
    }

    /// Starts keeping who links to whom (and which tables link where), for
    /// the first node that follows links.
    fn start_backlinks(&mut self) {
        self.start_links();
        let store = &self.store;
        self.links
            .start_back(store.tables.iter().flat_map(|(name, t)| {
                t.records
                    .iter()
                    .map(move |(k, r)| (RecordId::new(name.clone(), k.clone()), &r.content))
            }));
    }
}

/// The key an `id = <record id>` term of a view's top-level `AND` looks up.
///
/// SurrealDB 3.3.5 answers such a term by looking the key up, so it matches
/// exactly that key: `WHERE id = t:[1, 'a']` does not find `t:[1f, 'a']`,
/// although `t:[1f, 'a'] = t:[1, 'a']` is true as values (and `WHERE id =
/// t:[1, 'a'] OR ...`, a scan, finds it). So the node looks the exact key
/// up too, array and object keys included (fields compare by content: see
/// [`value::Value::index_key`]); its filter still decides.
fn id_lookup_key(v: &Value) -> Option<value::IndexKey> {
    match v {
        Value::Thing(t) => Some(value::IndexKey::Thing((**t).clone())),
        Value::String(s) => match RecordId::parse(s) {
            Some(rid) => Some(value::IndexKey::Thing(rid)),
            None => v.index_key(),
        },
        _ => v.index_key(),
    }
}
