//! A node: one plan with its parameters bound, and its maintained result.
//!
//! Nodes are shared: every view (or including record) that binds the same
//! plan to the same parameter values points at the same node. A node keeps
//!
//! * `members`: its result window, the records it contributes itself;
//! * `sorted`: for windowed nodes (`ORDER BY`/`LIMIT`/`START`), the matches
//!   in result order, so that when a member leaves the next one moves in. A
//!   window with a `LIMIT` keeps only its first `keep` matches (the window
//!   and as many again, at least 32) rather than every match of the table:
//!   see [`Node::order_insert`];
//! * `children`: per member, one child node per subquery projection;
//! * `parents`: who includes it, with multiplicity; deltas flow up this way;
//! * `root`: for nodes that are the top of one or more views, the flattened,
//!   reference-counted result set that those views' edges mirror.

use std::cmp::Ordering;
use std::sync::Arc;

use super::ast::Expr;
use super::eval::Row;
use super::keyset::KeySet;
use super::plan::{Bound, Plan};
use super::smallset::{SmallMap, SortedSet, push_small};
use super::store::NodeId;
use super::value::{IndexKey, Key, Object, RecordId, Value};

/// Where a node is registered for change routing.
#[derive(Clone, Debug)]
pub enum Dispatch {
    /// Under this key of the index on the plan's `index_term` path (the
    /// path is the plan's, not copied into every node).
    Indexed(IndexKey),
    Scan,
}

pub struct RootData {
    /// The views on this root, with their client ids (copied here so that
    /// emitting a delta needs no lookup by view id).
    pub views: Vec<RootView>,
    /// Record -> how many paths through the node tree include it.
    /// `None` for a node without subqueries, whose result is its members.
    pub flat: Option<SmallMap<RecordId, u32>>,
}

/// A view on a root, as a batch's deltas name it.
pub struct RootView {
    pub id: Arc<str>,
    pub client_id: Arc<str>,
    /// [`order_prefix`] of `id`: a batch sorts its deltas by view id, and
    /// at 100,000 views every id's text is a cache miss of its own (8% of
    /// an update batch at a million records): most comparisons end here.
    order: u64,
}

impl RootView {
    pub fn new(id: Arc<str>, client_id: Arc<str>) -> Self {
        RootView {
            order: order_prefix(&id),
            id,
            client_id,
        }
    }

    /// By view id, reading the ids only when their first 8 bytes tie.
    pub fn cmp_id(&self, other: &RootView) -> Ordering {
        self.order
            .cmp(&other.order)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// The first 8 bytes of `s`, big-endian, zero-padded: when two prefixes
/// differ they order as the strings do (a string that is a prefix of the
/// other pads with zeros, which sort first, and a shorter string sorts
/// first); when they tie, the strings must be compared.
fn order_prefix(s: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

/// A node's identity: its plan (by address) and the values of the params
/// it reads, hashed once, as it is made (see [`super::hashed`]). At
/// 100,000 views one growth of the node map took 29.5 ms inside one batch
/// when it hashed every key's values again, 5.9 ms with the hash kept.
pub type NodeKey = super::hashed::Hashed<(usize, Vec<Value>)>;

pub fn node_key(plan: &Arc<Plan>, args: Vec<Value>) -> NodeKey {
    NodeKey::new((Arc::as_ptr(plan) as usize, args))
}

pub struct Node {
    pub plan: Arc<Plan>,
    pub key_args: Vec<Value>,
    /// The view parameters this node was bound with, needed to bind the
    /// subqueries of members that join later.
    pub params: Arc<Object>,
    pub bound: Bound,
    pub dispatch: Dispatch,
    pub sorted: Option<SortedSet<SortEntry>>,
    /// For a bounded window: the most matches `sorted` keeps.
    pub keep: Option<usize>,
    /// `sorted` dropped matches past `keep`: it holds exactly the first
    /// `sorted.len()` matches in result order, not all of them.
    pub truncated: bool,
    /// Keys of records of `plan.table` (every member is of the node's
    /// table): half the bytes of full record ids, in the big member sets of
    /// roots like `text = $w`.
    pub members: KeySet,
    /// Per member with subqueries (by its key: every member is of the
    /// node's table), its child node for each subquery.
    pub children: SmallMap<Key, Box<[NodeId]>>,
    pub parents: Vec<(NodeId, u32)>,
    pub root: Option<Box<RootData>>,
    pub dirty: bool,
}

impl Node {
    /// Prefetches the parts of the node that evaluating a record and
    /// adding or removing it read: the filter's operands, the member set,
    /// the parents' list and a root's data. One of the steps of `apply`'s
    /// dispatch (see [`super::prefetch`]), after the one that fetched the
    /// node itself.
    pub fn prefetch(&self) {
        use super::prefetch::line;
        if let Some(Expr::Binary { lhs, rhs, .. }) = &self.bound.filter {
            line(&**lhs);
            line(&**rhs);
        }
        self.members.prefetch_outer();
        line(self.parents.as_ptr());
        if let Some(root) = &self.root {
            line(&**root);
        }
    }

    /// The third step: where `key` is in the member set, a literal
    /// operand's text, a root's list of views. Reads what
    /// [`Node::prefetch`] asked for.
    pub fn prefetch_inner(&self, key: &Key) {
        use super::prefetch::line;
        if let Some(Expr::Binary { lhs, rhs, .. }) = &self.bound.filter {
            for e in [lhs, rhs] {
                match &**e {
                    Expr::Literal(Value::String(s)) => line(s.as_ptr()),
                    Expr::Field(path) => line(path.as_ptr()),
                    _ => {}
                }
            }
        }
        self.members.prefetch_inner(key);
        if let Some(root) = &self.root {
            line(root.views.as_ptr());
        }
    }

    pub fn is_member(&self, r: &RecordId) -> bool {
        r.table == self.plan.table && self.members.contains(&r.key)
    }

    /// Adds `r`, a record of the node's table; false if it was a member.
    pub fn insert_member(&mut self, r: &RecordId) -> bool {
        debug_assert_eq!(r.table, self.plan.table, "a member of another table");
        self.members.insert(r.key.clone())
    }

    /// Removes `r`; false if it was not a member.
    pub fn remove_member(&mut self, r: &RecordId) -> bool {
        r.table == self.plan.table && self.members.remove(&r.key)
    }

    pub fn member_ids(&self) -> impl Iterator<Item = RecordId> + '_ {
        self.members
            .iter()
            .map(|k| RecordId::new(self.plan.table.clone(), k))
    }

    /// Where the window ends in result order (`START + LIMIT`), if it has
    /// a `LIMIT`.
    pub fn window_end(&self) -> Option<usize> {
        self.bound.limit.map(|l| self.bound.start.saturating_add(l))
    }

    /// Adds a match to the order. A bounded window keeps the first `keep`
    /// matches only: while others were dropped, a match that does not sort
    /// before the last kept one is dropped too, so `sorted` is always exactly
    /// the first `sorted.len()` matches. (Removing one of them keeps that
    /// true; adding one that sorts before the last does too.)
    pub fn order_insert(&mut self, e: SortEntry) {
        let Some(sorted) = self.sorted.as_mut() else {
            return;
        };
        // While matches are dropped, a new one is known to sort before them
        // only if it sorts before a kept one; with none kept, nothing is
        // known (the refill will place it).
        if self.truncated && sorted.last().is_none_or(|last| e > *last) {
            return;
        }
        sorted.insert(e);
        if let Some(keep) = self.keep {
            while sorted.len() > keep {
                sorted.pop_last();
                self.truncated = true;
            }
        }
    }

    pub fn order_remove(&mut self, e: &SortEntry) {
        if let Some(sorted) = self.sorted.as_mut() {
            sorted.remove(e);
        }
    }

    /// Whether the kept matches no longer fill the window although the table
    /// has more: the order must be read again from the table.
    pub fn needs_refill(&self) -> bool {
        self.truncated
            && match (&self.sorted, self.window_end()) {
                (Some(sorted), Some(end)) => sorted.len() < end,
                _ => false,
            }
    }

    /// Starts the order again (for a refill from the table).
    pub fn order_clear(&mut self) {
        if let Some(sorted) = self.sorted.as_mut() {
            *sorted = SortedSet::new();
        }
        self.truncated = false;
    }

    /// The window as it should be now: `START`..`START+LIMIT` of `sorted`.
    pub fn window(&self) -> Vec<RecordId> {
        let Some(sorted) = &self.sorted else {
            return self.member_ids().collect();
        };
        let take = self.bound.limit.unwrap_or(usize::MAX);
        sorted
            .iter()
            .skip(self.bound.start)
            .take(take)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Whether an entry entering or leaving `sorted` can change the window:
    /// false only when the window is full and the entry sorts after its end.
    pub fn may_shift_window(&self, entry: &SortEntry) -> bool {
        let Some(sorted) = &self.sorted else {
            return true;
        };
        let Some(limit) = self.bound.limit else {
            return true;
        };
        let end = self.bound.start.saturating_add(limit);
        if end == 0 {
            return false;
        }
        match sorted.iter().nth(end - 1) {
            Some(last) => entry <= last,
            None => true,
        }
    }

    pub fn add_parent(&mut self, parent: NodeId) {
        match self.parents.iter_mut().find(|(p, _)| *p == parent) {
            Some((_, m)) => *m += 1,
            None => push_small(&mut self.parents, (parent, 1)),
        }
    }

    /// Returns whether the node is now unreferenced.
    pub fn remove_parent(&mut self, parent: NodeId) -> bool {
        if let Some(pos) = self.parents.iter().position(|(p, _)| *p == parent) {
            self.parents[pos].1 -= 1;
            if self.parents[pos].1 == 0 {
                self.parents.swap_remove(pos);
            }
        }
        self.parents.is_empty() && self.root.is_none()
    }
}

/// One `ORDER BY` value with its direction.
#[derive(Clone, Debug)]
pub struct SortPart {
    pub value: Value,
    pub descending: bool,
    /// Set on the last part of a [`Plan::ids_descending`] entry (a part of
    /// its own, NONE, when the plan has no `ORDER BY`): ties break by
    /// record id descending. It lives here, in padding, rather than in
    /// every entry.
    pub ids_descending: bool,
}

/// A match's place in result order: its `ORDER BY` values, then its id, so
/// ties break by record id as SurrealDB's scan order does.
#[derive(Clone, Debug)]
pub struct SortEntry {
    pub key: Box<[SortPart]>,
    pub id: RecordId,
}

impl SortEntry {
    /// The entry of record `id` with `content` in `plan`'s `ORDER BY`: a
    /// term the projection fetched follows record links through `links`,
    /// any other reads NONE through them ([`super::eval::NoFetch`]).
    pub fn new(
        plan: &Plan,
        id: &RecordId,
        content: &Value,
        links: &dyn super::eval::Links,
    ) -> SortEntry {
        let mut key: Vec<SortPart> = plan
            .order
            .iter()
            .map(|(path, desc, fetch)| {
                let links = if *fetch { links } else { &super::eval::NoFetch };
                SortPart {
                    value: Row::linked(id, content, Some(links))
                        .get_path(path)
                        .into_owned(),
                    descending: *desc,
                    ids_descending: false,
                }
            })
            .collect();
        if plan.ids_descending {
            match key.last_mut() {
                Some(last) => last.ids_descending = true,
                None => key.push(SortPart {
                    value: Value::None,
                    descending: false,
                    ids_descending: true,
                }),
            }
        }
        SortEntry {
            key: key.into_boxed_slice(),
            id: id.clone(),
        }
    }
}

impl Ord for SortEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.key.iter().zip(other.key.iter()) {
            let o = a.value.sql_cmp(&b.value);
            let o = if a.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        let ids = self.id.cmp(&other.id);
        match self.key.last() {
            Some(p) if p.ids_descending => ids.reverse(),
            _ => ids,
        }
    }
}

impl PartialOrd for SortEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SortEntry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SortEntry {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Root views sort as their ids do, whatever the ids share: prefixes
    /// of each other, NUL bytes, multi-byte characters, more than 8 bytes.
    #[test]
    fn root_views_sort_as_their_ids() {
        let ids = [
            "",
            "a",
            "a\0",
            "a\0b",
            "ab",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgha",
            "b",
            "v1",
            "v10",
            "v2",
            "view:'x`;",
            "é",
            "e\u{301}",
            "\u{ffff}",
            "zzzzzzzzzz",
        ];
        let views: Vec<RootView> = ids
            .iter()
            .map(|s| RootView::new(Arc::from(*s), Arc::from("c")))
            .collect();
        for a in &views {
            for b in &views {
                assert_eq!(a.cmp_id(b), a.id.cmp(&b.id), "{:?} vs {:?}", a.id, b.id);
            }
        }
    }
}
