//! Time windows: the engine's clock, and the instants at which a record's
//! answer to a `time::now()` comparison changes.
//!
//! `expires > time::now()` or `ping > time::now() - 35s` change their answer
//! with no change to the data. Each such comparison of a record changes at
//! most once as time goes on, at an instant the record's own value gives
//! (`ping + 35s`). So the engine computes, per record, the next instant at
//! which any comparison of a view that evaluates it changes, and evaluates
//! the record again there ([`Engine::advance_clock`]), like a change. The
//! pipeline moves the clock (a timer waits for [`Engine::next_flip`]); the
//! engine never reads the wall clock after it starts, so tests move it as
//! they like.
//!
//! Every node's result is the query's answer at [`Clock::now`]: a batch is
//! evaluated there, and moving the clock first evaluates every record whose
//! instant has come, before (at the old instant) and after (at the new one).

use std::collections::BTreeSet;

use ahash::AHashMap;
use chrono::{DateTime, TimeDelta, Utc};

use super::ast::{BinOp, Expr};
use super::eval::{self, Row};
use super::value::{RecordId, Value};
use super::*;

/// The engine's clock, and the records to evaluate again at an instant.
pub struct Clock {
    /// The instant every node's result is the query's answer at.
    pub(super) now: DateTime<Utc>,
    /// While the clock moves, the instant it moves from: what a record
    /// matched "before" is evaluated there. Equal to `now` otherwise.
    pub(super) then: DateTime<Utc>,
    /// (instant in ns since the epoch, record), one entry per record.
    due: BTreeSet<(i64, RecordId)>,
    at: AHashMap<RecordId, i64>,
}

impl Default for Clock {
    /// The wall clock when the engine starts; the pipeline moves it.
    fn default() -> Self {
        let now = Utc::now();
        Clock {
            now,
            then: now,
            due: BTreeSet::new(),
            at: AHashMap::new(),
        }
    }
}

impl Clock {
    /// Evaluates `id` again at `instant` (ns), unless it is due earlier
    /// already: there its next instant is computed again anyway.
    pub(super) fn schedule(&mut self, id: &RecordId, instant: i64) {
        match self.at.get(id) {
            Some(&t) if t <= instant => {}
            Some(&t) => {
                self.due.remove(&(t, id.clone()));
                self.due.insert((instant, id.clone()));
                self.at.insert(id.clone(), instant);
            }
            None => {
                self.due.insert((instant, id.clone()));
                self.at.insert(id.clone(), instant);
            }
        }
    }

    /// Takes the records due at or before `instant` (ns).
    fn take_due(&mut self, instant: i64) -> Vec<RecordId> {
        let mut out = Vec::new();
        while let Some((t, _)) = self.due.first()
            && *t <= instant
        {
            let (_, id) = self.due.pop_first().expect("just seen");
            self.at.remove(&id);
            out.push(id);
        }
        out
    }

    /// The clock's instant in ns since the epoch.
    pub(super) fn now_ns(&self) -> i64 {
        nanos(self.now)
    }

    /// How many records wait for an instant.
    pub fn pending(&self) -> usize {
        self.due.len()
    }
}

/// The next instant after `now` (ns since the epoch) at which one of the
/// `time::now()` comparisons in `filter` changes its answer for `row`.
///
/// `x > now + o` holds while `now < x - o`: it changes at `x - o`;
/// `x >= now + o` at `x - o` + 1 ns; the same two instants for `<` and
/// `<=`. Only a datetime `x` changes with time (SurrealDB orders values of
/// different types by type, whatever the instant). Every comparison of the
/// filter counts, whether or not the rest of it lets it decide: an instant
/// too many costs one evaluation, one too few a wrong view.
pub fn next_flip(filter: &Expr, row: Row<'_>, now: i64) -> Option<i64> {
    let mut best: Option<i64> = None;
    walk(filter, row, now, &mut best);
    best
}

fn walk(e: &Expr, row: Row<'_>, now: i64, best: &mut Option<i64>) {
    match e {
        Expr::Binary { op, lhs, rhs } => {
            let compare = matches!(op, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge);
            let clocked = match (&**lhs, &**rhs) {
                (Expr::Now { offset_ns }, other) | (other, Expr::Now { offset_ns }) if compare => {
                    Some((*offset_ns, other))
                }
                _ => None,
            };
            match clocked {
                Some((offset, other)) => {
                    if let Value::Datetime(x) = &*eval::eval(other, row)
                        && let Some(x) = x.timestamp_nanos_opt()
                        && let Some(t) = x.checked_sub(offset)
                    {
                        for t in [Some(t), t.checked_add(1)].into_iter().flatten() {
                            if t > now && best.is_none_or(|b| t < b) {
                                *best = Some(t);
                            }
                        }
                    }
                }
                None => {
                    walk(lhs, row, now, best);
                    walk(rhs, row, now, best);
                }
            }
        }
        Expr::Not(x) | Expr::Get { of: x, .. } => walk(x, row, now, best),
        Expr::Array(items) | Expr::Call { args: items, .. } => {
            items.iter().for_each(|i| walk(i, row, now, best))
        }
        Expr::Arith { lhs, rhs, .. } => {
            walk(lhs, row, now, best);
            walk(rhs, row, now, best);
        }
        Expr::Literal(_)
        | Expr::Field(_)
        | Expr::Param { .. }
        | Expr::Subquery(_)
        | Expr::Traversal(_)
        | Expr::Now { .. } => {}
    }
}

/// `clock` moved by `offset_ns`: the value of [`Expr::Now`].
pub fn shifted(clock: DateTime<Utc>, offset_ns: i64) -> Value {
    match clock.checked_add_signed(TimeDelta::nanoseconds(offset_ns)) {
        Some(t) => Value::datetime(t),
        None => Value::None,
    }
}

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

impl Engine {
    /// The instant every view's result is computed at.
    pub fn clock(&self) -> DateTime<Utc> {
        self.clock.now
    }

    /// The next instant at which a record's answer to a `time::now()`
    /// comparison may change: when the pipeline should move the clock.
    pub fn next_flip(&self) -> Option<DateTime<Utc>> {
        self.clock
            .due
            .first()
            .map(|(t, _)| DateTime::from_timestamp_nanos(*t))
    }

    /// Moves the clock towards `to` as far as no record's answer changes on
    /// the way, which costs nothing: no record is evaluated and no view
    /// changes. A view registered next is then computed at (nearly) `to`,
    /// even if nothing moved the clock for a while.
    pub fn catch_up_clock(&mut self, to: DateTime<Utc>) {
        let limit = match self.clock.due.first() {
            Some((t, _)) => DateTime::from_timestamp_nanos(t.saturating_sub(1)).min(to),
            None => to,
        };
        if limit > self.clock.now {
            self.clock.now = limit;
            self.clock.then = limit;
        }
    }

    /// Moves the clock to `to` (never back), and evaluates every record
    /// whose answer to a `time::now()` comparison changed by then: the
    /// views' deltas, as for a batch of changes.
    pub fn advance_clock(&mut self, to: DateTime<Utc>) -> Vec<ViewDelta> {
        if to <= self.clock.now {
            return Vec::new();
        }
        let flips = self.clock.take_due(nanos(to));
        self.clock.then = self.clock.now;
        self.clock.now = to;
        if flips.is_empty() {
            self.clock.then = to;
            return Vec::new();
        }
        metrics::counter!("ssp_clock_flips_total").increment(flips.len() as u64);
        let out = self.apply_with_flips(&[], &flips);
        self.clock.then = to;
        out
    }

    /// Schedules every record a new clocked node `n` may hold: those under
    /// its index key, or its whole table.
    pub(super) fn schedule_node_flips(&mut self, n: NodeId) {
        let node = self.node(n);
        if !node.plan.clocked {
            return;
        }
        let Some(filter) = node.bound.filter.as_ref() else {
            return;
        };
        let Some(table) = self.store.tables.get(&node.plan.table) else {
            return;
        };
        let keys: Vec<Key> = match &node.dispatch {
            Dispatch::Indexed(k) => table.lookup(&node.plan.table, index_path(&node.plan), k),
            Dispatch::Scan => table.records.keys().cloned().collect(),
        };
        let links = self.fetcher(None);
        let now = nanos(self.clock.now);
        let mut due = Vec::new();
        for k in keys {
            let Some(rec) = table.records.get(&k) else {
                continue;
            };
            let id = RecordId::new(node.plan.table.clone(), k);
            if let Some(t) = next_flip(filter, Row::linked(&id, &rec.content, Some(&links)), now) {
                due.push((id, t));
            }
        }
        for (id, t) in due {
            self.clock.schedule(&id, t);
        }
    }
}
