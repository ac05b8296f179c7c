//! A big view's first result, computed beside the stream.
//!
//! A new view over a big table starts by evaluating its `WHERE` on every
//! candidate record (and, for `ORDER BY ... LIMIT`, sorting the matches).
//! Done under the engine's lock, inside the one applier, that stalls every
//! `/ingest` and every change the worker brings for as long as it takes:
//! hundreds of milliseconds at a million rows. So the applier asks for a
//! [`Prescan`] instead: the candidates' keys, taken under the lock, then
//! evaluated on a blocking thread in steps, each under a short read lock
//! ([`Prescan::step`]), while ingests go on between them. From the moment
//! the keys are taken the engine notes every record of that table that
//! changes. At the registration's turn the view's first result is
//!
//! * the matches the steps found among records that did not change, plus
//! * the changed records (new ones included) that match now,
//!
//! which is exact: a record that did not change since the keys were taken
//! had, at its step, the content it has now, and the filter reads only the
//! record and the params. Plans that follow record links are never
//! prescanned, and a scan that meets a link anyway (a field that holds one,
//! in a path) gives up: the registration then evaluates under the lock, as
//! before.
//!
//! For a window (`ORDER BY ... LIMIT`) the steps' first matches are
//! kept, as many as the node keeps; the changed records are placed again by
//! the node's own rules, and if too many of the kept ones changed to fill
//! the window, the registration reads the table under the lock instead.

use super::node::NodeKey;
use super::*;

/// Fewer candidate records than this are evaluated under the lock, as
/// before: taking the keys and the extra turn of the applier would cost more
/// than they save.
pub const PRESCAN_MIN_CANDIDATES: usize = 10_000;

/// A new view's candidates, taken under the lock, to evaluate off it.
pub struct Prescan {
    key: NodeKey,
    plan: Arc<Plan>,
    filter: Option<ast::Expr>,
    keep: Option<usize>,
    windowed: bool,
    keys: Vec<Key>,
    /// How many of `keys` the steps evaluated.
    next: usize,
    members: Vec<Key>,
    entries: Vec<node::SortEntry>,
    /// A path met a record link: the result is not used.
    met_link: bool,
}

/// What a [`Prescan`] found, for [`Engine::register_prescanned`].
pub struct Prescanned {
    key: NodeKey,
    /// `None`: a path met a record link; the registration evaluates
    /// under the lock.
    found: Option<Found>,
}

enum Found {
    Members(Vec<Key>),
    /// The first matches in order, as many as the node keeps, and whether
    /// there were more.
    Window {
        entries: Vec<node::SortEntry>,
        truncated: bool,
    },
}

/// The records of the prescanned table that changed since its keys were
/// taken.
pub(super) struct Watch {
    table: value::TableName,
    keys: AHashSet<Key>,
}

/// A prescan's result at its registration's turn, for the root node
/// [`Engine::get_or_create`] makes.
pub(super) struct Pending {
    pub(super) key: NodeKey,
    found: Found,
    changed: AHashSet<Key>,
}

/// Links the steps cannot follow: any path that reaches one is noted
/// (see [`value::take_link_followed`]), and the prescan gives up.
struct Unfollowed;

impl eval::Links for Unfollowed {
    fn fetch(&self, _: &RecordId) -> eval::Fetched<'_> {
        eval::Fetched::Unknown
    }
}

impl Prescan {
    /// How many candidate records there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Evaluates up to `n` more candidates on `engine`'s records as they
    /// are now (a read lock is enough); true while some are left.
    pub fn step(&mut self, engine: &Engine, n: usize) -> bool {
        let end = self.keys.len().min(self.next.saturating_add(n));
        let Some(table) = engine.store.tables.get(&self.plan.table) else {
            // Let go meanwhile: the registration evaluates under the lock.
            self.met_link = true;
            self.next = self.keys.len();
            return false;
        };
        value::take_link_followed();
        let filter = self.filter.as_ref();
        for k in &self.keys[self.next..end] {
            let Some(rec) = table.records.get(k) else {
                continue;
            };
            let id = RecordId::new(self.plan.table.clone(), k.clone());
            if !matches(filter, Row::linked(&id, &rec.content, Some(&Unfollowed))) {
                continue;
            }
            match self.windowed {
                true => self.entries.push(node::SortEntry::new(
                    &self.plan,
                    &id,
                    &rec.content,
                    &Unfollowed,
                )),
                false => self.members.push(id.key),
            }
        }
        self.met_link |= value::take_link_followed();
        self.next = end;
        end < self.keys.len()
    }

    /// What the steps found.
    pub fn finish(self) -> Prescanned {
        let found = match self.windowed {
            true => {
                let mut entries = self.entries;
                let truncated = self.keep.is_some_and(|keep| entries.len() > keep);
                if let Some(keep) = self.keep.filter(|_| truncated) {
                    entries.select_nth_unstable(keep);
                    entries.truncate(keep);
                }
                entries.sort_unstable();
                Found::Window { entries, truncated }
            }
            false => Found::Members(self.members),
        };
        Prescanned {
            key: self.key,
            found: (!self.met_link && self.next == self.keys.len()).then_some(found),
        }
    }
}

impl Engine {
    /// The candidates to compute `meta`'s first result from off the lock, when
    /// that is worth it: a new node (not one another view shares already)
    /// with at least [`PRESCAN_MIN_CANDIDATES`] candidates, whose plan
    /// follows no record links. From now until [`Engine::register_prescanned`]
    /// or [`Engine::cancel_prescan`], the engine notes which records of
    /// its table change. `None` also when the query does not plan: the
    /// registration reports why.
    pub fn prescan(&mut self, meta: &ViewMeta) -> Option<Prescan> {
        value::take_link_followed();
        let planned = self.plan_view(&meta.sql, &meta.params);
        // Binding the params went through a link: the registration decides.
        if value::take_link_followed() {
            return None;
        }
        let (plan, params, param_links) = planned.ok()?;
        // A view over `$param` paths registers again when what they read
        // changes: the registration computes it under the lock.
        if !param_links.deps.is_empty() {
            return None;
        }
        // A clocked view's records are scheduled as its node is made (see
        // `clock`), under the lock anyway.
        if plan.follows_links || plan.clocked || plan.order.iter().any(|(_, _, fetch)| *fetch) {
            return None;
        }
        let env = Env {
            params: &params,
            parent: None,
        };
        let key = node::node_key(&plan, plan.key_args(&env));
        if self.node_keys.contains_key(&key) {
            return None;
        }
        let bound = plan.bind(&env).ok()?;
        let dispatch = node_graph::dispatch(&plan, &env);
        let keep = self.keep(&bound);
        let table = self.store.tables.get_mut(&plan.table)?;
        // Taken under the lock: keys only (their records are read by the
        // steps, under short read locks).
        let keys: Vec<Key> = match &dispatch {
            Dispatch::Indexed(k) => {
                table.field_index(index_path(&plan));
                table.lookup(&plan.table, index_path(&plan), k)
            }
            Dispatch::Scan if table.records.len() < PRESCAN_MIN_CANDIDATES => return None,
            Dispatch::Scan => table.records.keys().cloned().collect(),
        };
        if keys.len() < PRESCAN_MIN_CANDIDATES {
            return None;
        }
        self.watch = Some(Watch {
            table: plan.table.clone(),
            keys: AHashSet::new(),
        });
        Some(Prescan {
            key,
            filter: bound.filter,
            keep,
            windowed: bound.windowed,
            plan,
            keys,
            next: 0,
            members: Vec::new(),
            entries: Vec::new(),
            met_link: false,
        })
    }

    /// Registers `meta` (see [`Engine::register`]) with its first result
    /// taken from `prescanned` and the records changed since its keys were taken,
    /// and whether it was: the same as [`Engine::register`] when the
    /// prescan gave up, when its node exists by now, or when too many of a
    /// window's first matches changed.
    pub fn register_prescanned(
        &mut self,
        meta: ViewMeta,
        prescanned: Prescanned,
    ) -> Result<(ViewDelta, bool), EngineError> {
        if let (Some(found), Some(watch)) = (prescanned.found, self.watch.take()) {
            self.prescanned = Some(Pending {
                key: prescanned.key,
                found,
                changed: watch.keys,
            });
        }
        self.prescan_used = false;
        let result = self.register(meta);
        self.prescanned = None;
        result.map(|delta| (delta, std::mem::take(&mut self.prescan_used)))
    }

    /// Stops noting changes for a prescan whose registration will not come.
    pub fn cancel_prescan(&mut self) {
        self.watch = None;
    }

    /// Notes that `id` changed, for a prescan of its table under way.
    pub(super) fn note_prescan_change(&mut self, id: &RecordId) {
        if let Some(w) = self.watch.as_mut()
            && w.table == id.table
        {
            w.keys.insert(id.key.clone());
        }
    }

    /// Forgets a prescan of `table` (its records were let go).
    pub(super) fn drop_prescan_of(&mut self, table: &str) {
        if self
            .watch
            .as_ref()
            .is_some_and(|w| w.table.as_str() == table)
        {
            self.watch = None;
        }
    }
}

impl Pending {
    /// Fills a new node's first result (`matched`, and for a window its
    /// order) from the prescan. `false`: the window came out short, and the
    /// node must read the table (its order is left empty).
    pub(super) fn fill(
        self,
        node: &mut Node,
        table: &store::Table,
        links: &dyn eval::Links,
        matched: &mut Vec<RecordId>,
    ) -> bool {
        let plan = node.plan.clone();
        let Pending { found, changed, .. } = self;
        let matching_now = changed.iter().filter_map(|k| {
            let rec = table.records.get(k)?;
            let id = RecordId::new(plan.table.clone(), k.clone());
            matches(
                node.bound.filter.as_ref(),
                Row::linked(&id, &rec.content, Some(links)),
            )
            .then_some((id, &rec.content))
        });
        match found {
            Found::Members(keys) => {
                let matching_now: Vec<RecordId> = matching_now.map(|(id, _)| id).collect();
                matched.extend(
                    keys.into_iter()
                        .filter(|k| !changed.contains(k))
                        .map(|k| RecordId::new(plan.table.clone(), k)),
                );
                matched.extend(matching_now);
                true
            }
            Found::Window { entries, truncated } => {
                let now: Vec<node::SortEntry> = matching_now
                    .map(|(id, content)| node::SortEntry::new(&plan, &id, content, links))
                    .collect();
                let Some(sorted) = node.sorted.as_mut() else {
                    return false;
                };
                for e in entries {
                    if !changed.contains(&e.id.key) {
                        sorted.insert(e);
                    }
                }
                node.truncated = truncated;
                for e in now {
                    node.order_insert(e);
                }
                if node.needs_refill() {
                    node.order_clear();
                    return false;
                }
                *matched = node.window();
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    const N: usize = PRESCAN_MIN_CANDIDATES * 2;

    fn meta(sql: &str) -> ViewMeta {
        ViewMeta {
            id: "v".into(),
            client_id: "c".into(),
            sql: sql.into(),
            params: serde_json::Map::new(),
            ttl: "1h".into(),
            last_active_at: Utc::now(),
            owner: None,
        }
    }

    fn put(i: usize, n: i64, g: i64) -> Change {
        let Value::Object(o) = Value::from(&json!({"n": n, "g": g, "s": format!("s{}", i % 7)}))
        else {
            unreachable!()
        };
        Change {
            id: RecordId::parse(&format!("t:{i}")).expect("an id"),
            content: Some(o),
        }
    }

    /// Random creates, updates and deletes; with `top`, then the records
    /// with the smallest `n` (the first matches of the windows) move to the
    /// end of the order (after the steps have read them: see below).
    fn changes(rng: &mut StdRng, base: &[Change], count: usize, top: bool) -> Vec<Change> {
        let mut first: Vec<(i64, usize)> = Vec::new();
        if top {
            for (i, c) in base.iter().enumerate() {
                let n = c.content.as_ref().and_then(|o| o.get("n")).cloned();
                if let Some(Value::Number(value::Number::Int(n))) = n {
                    first.push((n, i));
                }
            }
            first.sort();
            first.truncate(100);
        }
        let moved = first.into_iter().map(|(_, i)| put(i, 5_000, 0));
        (0..count)
            .map(|_| {
                let i = rng.random_range(0..N + N / 10);
                if rng.random_bool(0.1) {
                    return Change {
                        id: RecordId::parse(&format!("t:{i}")).expect("an id"),
                        content: None,
                    };
                }
                put(i, rng.random_range(0..1_000), rng.random_range(0..2))
            })
            .chain(moved)
            .collect()
    }

    fn members(e: &Engine) -> Vec<(RecordId, u64)> {
        e.view_records("v").expect("registered")
    }

    /// The engine given a prescan, with changes applied between its
    /// steps and before the registration, holds what an engine that registered
    /// the view on the same data under the lock holds: the same first edges,
    /// and the same members after more changes.
    fn same_as_under_the_lock(sql: &str, top: bool, expect_used: bool) {
        for seed in 0..4 {
            let mut rng = StdRng::seed_from_u64(seed);
            let base: Vec<Change> = (0..N)
                .map(|i| put(i, rng.random_range(0..1_000), (i % 2) as i64))
                .collect();
            let during = changes(&mut rng, &base, 300, top);
            let after = changes(&mut rng, &base, 300, false);

            let mut plain = Engine::new();
            plain.apply_batch(&base);
            for part in during.chunks(37) {
                plain.apply_batch(part);
            }
            let expected = plain.register(meta(sql)).expect("registers");

            let mut engine = Engine::new();
            engine.apply_batch(&base);
            let mut scan = engine.prescan(&meta(sql)).expect("big enough to prescan");
            assert!(scan.len() >= PRESCAN_MIN_CANDIDATES);
            // Changes between the steps, as ingests come between them; the
            // last ones (the windows' first matches moving) after the steps.
            let mut parts = during.chunks(37);
            loop {
                let more = scan.step(&engine, 5_000);
                match parts.next() {
                    Some(part) => {
                        engine.apply_batch(part);
                    }
                    None if !more => break,
                    None => {}
                }
            }
            let found = scan.finish();
            let (delta, used) = engine
                .register_prescanned(meta(sql), found)
                .expect("registers");
            assert_eq!(used, expect_used, "{sql}, seed {seed}: prescan used");
            let only = |a: &ViewDelta, b: &ViewDelta| -> Vec<String> {
                (a.created.iter().filter(|x| !b.created.contains(x)))
                    .map(|(r, v)| format!("{r} v{v}"))
                    .collect()
            };
            assert!(
                delta == expected,
                "{sql}, seed {seed}: first edges; only prescanned: {:?}; only under the lock: {:?}",
                only(&delta, &expected),
                only(&expected, &delta),
            );
            assert_eq!(members(&engine), members(&plain), "{sql}, seed {seed}");

            assert_eq!(engine.apply_batch(&after), plain.apply_batch(&after));
            assert_eq!(
                members(&engine),
                members(&plain),
                "{sql}, seed {seed}: after"
            );
        }
    }

    #[test]
    fn a_scan_view() {
        same_as_under_the_lock("SELECT * FROM t WHERE n < 100 AND s != 's3'", false, true);
    }

    #[test]
    fn an_indexed_view() {
        same_as_under_the_lock("SELECT * FROM t WHERE g = 1 AND n >= 500", false, true);
    }

    /// The records that move meanwhile all enter the window's first places.
    #[test]
    fn a_window() {
        same_as_under_the_lock(
            "SELECT * FROM t WHERE n >= 100 ORDER BY n DESC, s LIMIT 10",
            true,
            true,
        );
    }

    /// Most of a small window's first matches change meanwhile: it reads
    /// the table under the lock, and is exact all the same.
    #[test]
    fn a_window_whose_first_matches_changed() {
        same_as_under_the_lock("SELECT * FROM t ORDER BY n LIMIT 2", true, false);
    }

    #[test]
    fn a_small_table_or_a_shared_node_is_not_prescanned() {
        let mut engine = Engine::new();
        engine.apply_batch(&[put(1, 1, 1)]);
        assert!(engine.prescan(&meta("SELECT * FROM t")).is_none());

        let base: Vec<Change> = (0..N).map(|i| put(i, i as i64, 0)).collect();
        engine.apply_batch(&base);
        engine
            .register(meta("SELECT * FROM t WHERE n < 5"))
            .expect("registers");
        let mut other = meta("SELECT * FROM t WHERE n < 5");
        other.id = "w".into();
        assert!(engine.prescan(&other).is_none(), "the node exists");
        // A link path: the engine follows it under the lock.
        assert!(
            engine
                .prescan(&meta("SELECT * FROM t WHERE s.x = 1"))
                .is_none()
        );
    }
}
