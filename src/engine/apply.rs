//! Applying a batch of record changes: store, dispatch to candidate nodes, and the deltas views emit.

use super::*;

/// A record the batch changed, on its way through dispatch: its content
/// before and after the batch, and the nodes that may hold it.
struct Changed<'a> {
    id: &'a RecordId,
    old: &'a Option<Value>,
    new: Option<Value>,
    /// Its keys in its table's indexes.
    keys: Vec<store::IndexKeys>,
    candidates: Vec<NodeId>,
}

impl Engine {
    /// Applies a batch of changes and returns one combined delta per view
    /// that changed. A record changed several times in one batch counts as
    /// one change, from its content before the batch to its last content.
    pub fn apply_batch(&mut self, changes: &[Change]) -> Vec<ViewDelta> {
        self.apply_with_flips(changes, &[])
    }

    /// [`Engine::apply_batch`], and `flips`: unchanged records the clock
    /// reached (see [`Engine::advance_clock`]).
    pub(super) fn apply_with_flips(
        &mut self,
        changes: &[Change],
        flips: &[RecordId],
    ) -> Vec<ViewDelta> {
        value::take_link_followed();
        links::take_unknown_tables();
        let noted = self.link_views.len();
        // The edges SurrealDB deletes with their `in` or `out`.
        let cascaded = self.cascade(changes);
        let changes = cascaded.as_deref().unwrap_or(changes);
        let dependents = self.param_dependents(changes);
        let (mut out, bumped) = self.apply_batch_with_flips(changes, flips);
        let followed = value::take_link_followed();
        for t in links::take_unknown_tables() {
            if !self.loaded.contains(&t) {
                self.wanted.insert(Arc::from(t.as_str()));
            }
        }
        if !dependents.is_empty() {
            self.refresh_param_views(dependents, &bumped, &mut out);
        }
        if followed || self.link_views.len() > noted {
            self.links_not_followed += 1;
        }
        out
    }

    /// Whether [`Engine::take_link_views`] has views to give.
    pub fn has_link_views(&self) -> bool {
        !self.link_views.is_empty()
    }

    /// The incremental views whose evaluation went through a record link
    /// (see [`Engine::links_not_followed`]) since the last call, which only
    /// the re-query tier keeps exact: the pipeline moves them there.
    pub fn take_link_views(&mut self) -> Vec<ViewMeta> {
        let ids = std::mem::take(&mut self.link_views);
        let mut seen = AHashSet::new();
        ids.into_iter()
            .filter(|id| seen.insert(id.clone()))
            .filter_map(|id| self.views.get(&id).map(|v| v.meta.to_meta()))
            .collect()
    }

    /// Notes the views node `n` serves (through its parents, up to their
    /// roots) when evaluating it just went through a record link.
    fn note_link_followed(&mut self, n: NodeId) {
        if value::take_link_followed() {
            self.note_link_nodes(vec![n]);
        }
    }

    /// Notes the views nodes `todo` serve, through their parents up to
    /// their roots (see [`Engine::take_link_views`]).
    pub(super) fn note_link_nodes(&mut self, mut todo: Vec<NodeId>) {
        let mut seen = AHashSet::new();
        while let Some(n) = todo.pop() {
            if !seen.insert(n) || !self.alive(n) {
                continue;
            }
            let node = &self.nodes[n as usize].as_deref().expect("alive");
            if let Some(root) = &node.root {
                self.link_views
                    .extend(root.views.iter().map(|v| v.id.clone()));
            }
            todo.extend(node.parents.iter().map(|(p, _)| *p));
        }
    }

    /// How many batches evaluated a path through a record link for an
    /// incremental view (see [`PlanError::FollowsLink`]): a view registered
    /// while its data held no link there, whose data now does. Its result
    /// may differ from SurrealDB's; the pipeline reports it.
    pub fn links_not_followed(&self) -> u64 {
        self.links_not_followed
    }

    /// [`Engine::apply_with_flips`] without the param paths' refresh; also
    /// returns the records whose version the batch raised. `flips` are
    /// evaluated again by the nodes that compare with `time::now()`.
    pub(super) fn apply_batch_with_flips(
        &mut self,
        changes: &[Change],
        flips: &[RecordId],
    ) -> (Vec<ViewDelta>, AHashSet<RecordId>) {
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
        // At a million records the records and the shared strings are cold:
        // fetching them for every change first lets their loads overlap.
        self.store.prefetch_store(&finals);
        for (id, content) in finals {
            let table = self.store.table_mut(&id.table);
            let old = table.records.get(&id.key).cloned();
            touched.push((id.clone(), old.as_ref().map(|r| r.content.clone())));
            let Some(content) = content else {
                if table.records.remove(&id.key).is_some() {
                    self.journal.record(id);
                    self.note_prescan_change(id);
                }
                continue;
            };
            // Stored without an `id` field: the id is the key, whatever the
            // JSON said (expressions read it through `eval::Row`).
            let content = self
                .store
                .stored_content(id, content, old.as_ref().map(|r| &r.content));
            let version = match &old {
                Some(old) if old.content.same_content(&content) => {
                    // Same content, or the same in another representation
                    // (JSON text vs SurrealDB's typed value): keep the
                    // version, and keep the typed copy whichever came last,
                    // so that views compare what SurrealDB compares.
                    if old.content == content
                        || old.content.typed_leaves() >= content.typed_leaves()
                    {
                        continue;
                    }
                    old.version
                }
                Some(old) => {
                    bumped.insert(id.clone());
                    old.version + 1
                }
                None => {
                    bumped.insert(id.clone());
                    let table_floor = self.table_floors.get(&id.table).copied().unwrap_or(0);
                    self.version_floors.remove(id).unwrap_or(0).max(table_floor) + 1
                }
            };
            let shaped = self.watches_edge_shape(&id.table, &content);
            self.store
                .table_mut(&id.table)
                .records
                .insert(id.key.clone(), Record { content, version });
            if shaped {
                self.note_edge_shaped(id);
            }
            self.journal.record(id);
            self.note_prescan_change(id);
        }

        // 2. Dispatch: evaluate candidate nodes before and after.
        let mut events: Vec<Event> = Vec::new();
        let mut dirty: Vec<NodeId> = Vec::new();
        let mut candidates: Vec<NodeId> = Vec::new();
        let mut held: Vec<(RecordId, Vec<NodeId>)> = Vec::with_capacity(bumped.len());
        // Candidates with subqueries: the nodes that may hold the record as
        // a member after the batch (see the rebinds below).
        let mut hosts: Vec<(RecordId, Vec<NodeId>)> = Vec::new();
        // What the batch's records held before it, for nodes that read
        // through links: a record matched before the batch by what the
        // records it links to held then.
        let before: Option<AHashMap<RecordId, Option<Value>>> =
            (self.link_nodes > 0).then(|| touched.iter().cloned().collect());
        // Every change's candidates first, then their evaluation: at a
        // million records the candidates' nodes are cold, and prefetching
        // them all (below) lets the CPU fetch them at once, not one per
        // evaluation. Evaluating reads no index and changes no candidate
        // list, so the order of the two does not matter.
        let mut dispatched: Vec<Changed> = Vec::with_capacity(touched.len());
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
            let keys = self
                .store
                .tables
                .get(&id.table)
                .map(|t| t.index_keys(id, old.as_ref(), new.as_ref()))
                .unwrap_or_default();
            dispatched.push(Changed {
                id,
                old,
                new,
                keys,
                candidates: Vec::new(),
            });
        }
        // The index entries the batch moves, fetched for all its changes at
        // once (see `prefetch`).
        self.store
            .prefetch_reindex(dispatched.iter().map(|c| (c.id, c.keys.as_slice())));
        for c in &mut dispatched {
            self.links.change(c.id, c.old.as_ref(), c.new.as_ref());
            let mut through_links = Vec::new();
            if let Some(table) = self.store.tables.get_mut(&c.id.table) {
                table.reindex(c.id, &c.keys, &mut c.candidates, &mut through_links);
            }
            if !through_links.is_empty() {
                self.note_link_nodes(through_links);
            }
            c.candidates.sort_unstable();
            c.candidates.dedup();
        }
        self.prefetch_nodes(&dispatched);
        for Changed {
            id,
            old,
            new,
            candidates,
            ..
        } in dispatched
        {
            if bumped.contains(id) {
                held.push((id.clone(), candidates.clone()));
            }
            // Whether a path went through a link is the evaluation's to say
            // (see `note_link_followed`): cleared, as `reindex` left it.
            value::take_link_followed();
            for &n in &candidates {
                let (old, new) = (old.as_ref(), new.as_ref());
                self.evaluate(n, id, old, new, before.as_ref(), &mut events, &mut dirty);
                self.note_link_followed(n);
            }
            let with_subqueries: Vec<NodeId> = candidates
                .iter()
                .copied()
                .filter(|&n| {
                    self.alive(n)
                        && (!self.node(n).plan.subplans.is_empty()
                            || !self.node(n).plan.fetch.is_empty())
                })
                .collect();
            if !with_subqueries.is_empty() {
                hosts.push((id.clone(), with_subqueries));
            }
        }

        // 2b. Records that link to a changed record, unchanged themselves:
        //     the nodes that read through their links evaluate them again.
        if let Some(before) = &before {
            for (id, content) in self.linking_to_changed(&touched) {
                candidates.clear();
                if let Some(table) = self.store.tables.get(&id.table) {
                    table.link_candidates(&id, &content, &mut candidates);
                }
                candidates.sort_unstable();
                candidates.dedup();
                for &n in &candidates {
                    let c = Some(&content);
                    self.evaluate(n, &id, c, c, Some(before), &mut events, &mut dirty);
                    self.note_link_followed(n);
                }
                // `(SELECT ... FROM $parent.links)[0]`: which of the links is
                // the first record that exists may have changed.
                let first_of_arrays: Vec<NodeId> = candidates
                    .iter()
                    .copied()
                    .filter(|&n| {
                        self.alive(n) && self.node(n).plan.fetch.iter().any(|f| f.first_only)
                    })
                    .collect();
                if !first_of_arrays.is_empty() {
                    hosts.push((id, first_of_arrays));
                }
            }
        }

        // 2c. Records whose answer to a `time::now()` comparison changed as
        //     the clock moved, unchanged themselves.
        for id in flips {
            let Some(content) = self.store.get(id).map(|r| r.content.clone()) else {
                continue; // Deleted since: nothing holds it.
            };
            candidates.clear();
            if let Some(table) = self.store.tables.get(&id.table) {
                table.clock_candidates(id, &content, &mut candidates);
            }
            candidates.sort_unstable();
            candidates.dedup();
            for &n in &candidates {
                let c = Some(&content);
                self.evaluate(n, id, c, c, before.as_ref(), &mut events, &mut dirty);
                self.note_link_followed(n);
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
        (out, bumped)
    }

    /// Prefetches what evaluating the batch's candidate nodes reads, and
    /// what adding or removing their records then reads, in steps over all
    /// of them (see [`prefetch`]): the nodes' slots; the nodes; their
    /// parts ([`Node::prefetch`]); what those lead to
    /// ([`Node::prefetch_inner`]) and the parents' slots; the parents.
    fn prefetch_nodes(&self, dispatched: &[Changed]) {
        let live = |n: NodeId| self.nodes.get(n as usize).and_then(|x| x.as_deref());
        let slot = |n: NodeId| prefetch::line(self.nodes.as_ptr().wrapping_add(n as usize));
        let pairs: Vec<(NodeId, &Key)> = dispatched
            .iter()
            .flat_map(|c| c.candidates.iter().map(|&n| (n, &c.id.key)))
            .collect();
        for &(n, _) in &pairs {
            slot(n);
        }
        for &(n, _) in &pairs {
            if let Some(node) = live(n) {
                prefetch::lines(node);
            }
        }
        for &(n, _) in &pairs {
            if let Some(node) = live(n) {
                node.prefetch();
            }
        }
        for &(n, k) in &pairs {
            if let Some(node) = live(n) {
                node.prefetch_inner(k);
                for &(p, _) in &node.parents {
                    slot(p);
                }
            }
        }
        for &(n, _) in &pairs {
            if let Some(node) = live(n) {
                for &(p, _) in &node.parents {
                    if let Some(parent) = live(p) {
                        prefetch::lines(parent);
                    }
                }
            }
        }
    }

    /// The records, with their contents, that reach a record this batch
    /// changed over as many links as the longest path a node reads follows,
    /// and that did not change themselves.
    fn linking_to_changed(&self, touched: &[(RecordId, Option<Value>)]) -> Vec<(RecordId, Value)> {
        let mut level: Vec<&RecordId> = touched
            .iter()
            .filter(|(id, old)| {
                // Unchanged records change nothing their linkers read.
                match (old, self.store.get(id)) {
                    (Some(Value::Object(o)), Some(r)) => {
                        !matches!(&r.content, Value::Object(n) if o.ptr_eq(n))
                    }
                    _ => true,
                }
            })
            .map(|(id, _)| id)
            .collect();
        // The records that changed were evaluated already; a record the
        // batch wrote unchanged was not, and may link to one that changed.
        let mut seen: AHashSet<&RecordId> = level.iter().copied().collect();
        let mut out = Vec::new();
        for _ in 0..self.link_hops {
            let mut next = Vec::new();
            for id in level {
                for r in self.links.linking_to(id) {
                    if seen.insert(r) {
                        next.push(r);
                        if let Some(rec) = self.store.get(r) {
                            out.push((r.clone(), rec.content.clone()));
                        }
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        out
    }

    /// Re-query views hold their members without nodes: a member whose
    /// version changed is `updated` here; whether it stays is the re-run's
    /// answer, which the pipeline adds to the same transaction.
    pub(super) fn requery_bumps(&self, bumped: &AHashSet<RecordId>, out: &mut Vec<ViewDelta>) {
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

    /// Evaluates node `n` on record `id` before (`old`, and the linked
    /// records as `before` holds them) and after the batch, and notes the
    /// membership events or window moves that follow.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn evaluate(
        &mut self,
        n: NodeId,
        id: &RecordId,
        old: Option<&Value>,
        new: Option<&Value>,
        before: Option<&AHashMap<RecordId, Option<Value>>>,
        events: &mut Vec<Event>,
        dirty: &mut Vec<NodeId>,
    ) {
        // Before the batch at the clock's old instant (see `clock`), after
        // it at its new one.
        let then = links::Fetcher {
            store: &self.store,
            loaded: &self.loaded,
            before,
            clock: self.clock.then,
        };
        let now = links::Fetcher {
            before: None,
            clock: self.clock.now,
            ..then
        };
        let (then, now): (&dyn eval::Links, &dyn eval::Links) = (&then, &now);
        let node = self.nodes[n as usize].as_deref_mut().expect("a live node");
        let filter = node.bound.filter.as_ref();
        let was = old.is_some_and(|c| matches(filter, Row::linked(id, c, Some(then))));
        let is = new.is_some_and(|c| matches(filter, Row::linked(id, c, Some(now))));
        if node.plan.clocked
            && let (Some(c), Some(f)) = (new, filter)
            && let Some(t) = clock::next_flip(f, Row::linked(id, c, Some(now)), self.clock.now_ns())
        {
            self.clock.schedule(id, t);
        }
        if node.sorted.is_none() {
            // A node that reads through links holds what it saw when it
            // last evaluated the record, perhaps through a table it did not
            // hold then (a view the re-query tier cannot take keeps its
            // nodes while the table loads): its membership is what was.
            let was = if node.plan.follows_links {
                node.is_member(id)
            } else {
                was
            };
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
            .map(|c| node::SortEntry::new(&node.plan, id, c, then));
        let new_entry = new
            .filter(|_| is)
            .map(|c| node::SortEntry::new(&node.plan, id, c, now));
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
    pub(super) fn refill_order(&mut self, n: NodeId) {
        let Some(node) = self.nodes.get(n as usize).and_then(|x| x.as_deref()) else {
            return;
        };
        let Some(table) = self.store.tables.get(&node.plan.table) else {
            return;
        };
        let fetcher = links::Fetcher {
            store: &self.store,
            loaded: &self.loaded,
            before: None,
            clock: self.clock.now,
        };
        let entries: Vec<node::SortEntry> = matching_records(
            table,
            &node.plan,
            node.bound.filter.as_ref(),
            &node.dispatch,
            &fetcher,
        )
        .into_iter()
        .map(|(id, content)| node::SortEntry::new(&node.plan, &id, content, &fetcher))
        .collect();
        let node = self.node_mut(n);
        node.order_clear();
        for e in entries {
            node.order_insert(e);
        }
    }

    pub(super) fn refresh_window(&mut self, n: NodeId) {
        if self
            .nodes
            .get(n as usize)
            .and_then(|x| x.as_deref())
            .is_some_and(Node::needs_refill)
        {
            self.refill_order(n);
            self.note_link_followed(n);
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

    pub(super) fn run_events(&mut self, events: Vec<Event>) {
        for ev in events {
            match ev {
                Event::Add(n, r) => self.add_member(n, r),
                Event::Remove(n, r) => self.remove_member(n, &r),
                Event::Rebind(n, r) => self.rebind(n, &r),
            }
        }
    }

    pub(super) fn alive(&self, n: NodeId) -> bool {
        self.nodes.get(n as usize).is_some_and(|x| x.is_some())
    }

    pub(super) fn add_member(&mut self, n: NodeId, r: RecordId) {
        if !self.alive(n) || !self.node_mut(n).insert_member(&r) {
            return;
        }
        // A traversal's edges are no members: only what they name is.
        let mut delta = if self.node(n).plan.hidden {
            Vec::new()
        } else {
            vec![(r.clone(), 1i64)]
        };
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

    pub(super) fn remove_member(&mut self, n: NodeId, r: &RecordId) {
        if !self.alive(n) || !self.node_mut(n).remove_member(r) {
            return;
        }
        let mut delta = if self.node(n).plan.hidden {
            Vec::new()
        } else {
            vec![(r.clone(), -1i64)]
        };
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

    /// Sends a Z-set delta up from node `n` to every root above it.
    pub(super) fn propagate(&mut self, n: NodeId, delta: &[(RecordId, i64)], factor: i64) {
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

    pub(super) fn apply_root(&mut self, root: NodeId, r: &RecordId, d: i64) {
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
    pub(super) fn roots_holding(&self, r: &RecordId, nodes: &[NodeId], out: &mut Vec<NodeId>) {
        let mut stack: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|&n| self.alive(n) && self.node(n).is_member(r) && !self.node(n).plan.hidden)
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
    pub(super) fn collect_deltas(
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
        let mut order: Vec<(&node::RootView, usize)> = Vec::new();
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
            order.extend(rd.views.iter().map(|v| (v, deltas.len())));
            deltas.push(d);
        }
        // The views' ids are cloned below, each a cache miss of its own
        // at 100,000 views. Reading their counts first, in a loop whose
        // loads do not wait on each other, lets the CPU fetch them all at
        // once instead of one after another.
        std::hint::black_box(
            order
                .iter()
                .map(|(v, _)| Arc::strong_count(&v.id) ^ Arc::strong_count(&v.client_id))
                .fold(0, |a, b| a ^ b),
        );
        // View ids are unique, so an unstable sort gives the same order.
        order.sort_unstable_by(|a, b| a.0.cmp_id(b.0));
        let out = order
            .into_iter()
            .map(|(v, i)| {
                let d = &deltas[i];
                ViewDelta {
                    view: v.id.clone(),
                    client_id: v.client_id.clone(),
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
    pub(super) fn root_records(&self, n: NodeId) -> Vec<RecordId> {
        let node = self.node(n);
        match node.root.as_ref().map(|r| &r.flat) {
            None => Vec::new(),
            Some(Some(flat)) => flat.keys().cloned().collect(),
            Some(None) => node.member_ids().collect(),
        }
    }

    pub(super) fn root_data(&self, n: NodeId) -> Option<&RootData> {
        self.nodes.get(n as usize)?.as_ref()?.root.as_deref()
    }

    pub(super) fn finish_batch(&mut self) {
        self.touched.clear();
        self.free.append(&mut self.freed_in_batch);
    }
}
