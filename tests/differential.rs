//! Differential test: the engine against SurrealDB's own evaluation.
//!
//! Each case is a random little world, run twice in lock step:
//!
//! * **data**: a main table `t` and a linked table `u` with ints, floats,
//!   strings that sort interestingly (`'B'` < `'a'`, `'10'` < `'9'`, `''`),
//!   bools, missing fields (NONE), NULL, arrays, nested objects (`obj.c.d`),
//!   datetimes and record links (`u:3`, real SurrealDB record ids);
//!   Numbers include `-0.0` and values beyond 2^53 and near `i64::MAX`; keys
//!   include `t:a`, `t:B` and the string key `t:⟨7⟩` beside `t:7`;
//! * **views**: random queries of the supported subset (contract §3): `*` or
//!   field lists, `WHERE` with every supported operator, `NOT (..)`/`!`,
//!   `IS [NOT] NONE`, nested and indexed paths, literals of every kind and
//!   `$params`, `ORDER BY` on several fields, `LIMIT`/`START` (literal, param,
//!   NULL, or `$parent.lim`), and subquery projections on `$parent` (link
//!   lookups with `[0]`, reverse links, `IN $parent.links`, non-indexed
//!   `score > $parent.score ORDER BY .. LIMIT`, random ones), nested one level
//!   deeper, with aliases that repeat or shadow plain fields; views sharing a
//!   query (with equal or other params);
//! * **steps**: batches of creates, updates (small and whole), deletes and
//!   identical rewrites, with views registered before and after data exists,
//!   refreshed (same or another query), unregistered and registered again.
//!
//! Every write goes to an embedded SurrealDB (`mem://`) with bound parameters;
//! the stored record is read back and fed to the engine through
//! `from_surreal`, exactly as the change worker does. After every step, every
//! registered view's query runs in SurrealDB with the same params; its result
//! (top-level ids plus, recursively, the ids inside subquery fields) must equal
//! the engine's result set, and the edges implied by the deltas the engine
//! emitted so far.
//!
//! Besides the result set, the deltas are checked: applied in order they must
//! give exactly the engine's result set with current versions (the edges SSP
//! would hold), `created`/`deleted`/`updated` must each make sense, an
//! unchanged record is never `updated`, a batch that changes nothing emits
//! nothing, versions start at 1 and grow by one per changing batch, and an
//! unregister must delete exactly the edges.
//!
//! Params: a record link param is bound to SurrealDB as a record id and given
//! to the engine as its JSON text (`"u:3"`), the documented JSON rule; such
//! params only appear in equality-like comparisons (`=`, `!=`, `==`, `IN`,
//! `CONTAINS`), where the rule applies. Params are JSON: no datetimes.
//!
//! Generator restrictions, where SurrealDB does something no result set can
//! mirror: `string::starts_with` only gets string arguments (SurrealDB fails
//! the whole query on any other, NONE and NULL included); data strings never
//! look like record ids (the JSON rule would apply to them); object literals
//! only appear as params (they are not in the supported subset).
//!
//! A failure is shrunk (steps, writes, views, clauses, fields) and printed as
//! a SurrealQL script that can be pasted into `surreal sql`.
//!
//! Environment: `SSP_DIFF_SEED` (default fixed), `SSP_DIFF_CASES` (default
//! [`DEFAULT_CASES`]), `SSP_DIFF_ONLY=<case>` to run a single case,
//! `SSP_DIFF_DUMP=1` to print every generated view.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssp::db::values::{
    object_from_surreal, record_id_from_surreal, record_id_to_surreal, to_surreal,
};
use ssp::engine::value::{Key, Number, Object, RecordId, Value};
use ssp::engine::{Change, Engine, ViewDelta, ViewMeta};
use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types as sdb;

const DEFAULT_SEED: u64 = 0x5350_5f44_4946_4631;
const DEFAULT_CASES: u64 = 2500;
/// Stop after this many (shrunk and printed) failures.
const MAX_FAILURES: usize = 3;
/// Runs of the case allowed while shrinking one failure.
const SHRINK_BUDGET: usize = 4000;

// ===========================================================================
// Values
// ===========================================================================

fn int(i: i64) -> Value {
    Value::Number(Number::Int(i))
}

fn float(f: f64) -> Value {
    Value::Number(Number::Float(f))
}

fn string(s: &str) -> Value {
    Value::String(s.into())
}

fn thing(table: &str, key: Key) -> Value {
    Value::thing(RecordId::new(table, key))
}

fn object(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(Object::from_pairs(
        pairs
            .into_iter()
            .filter(|(_, v)| !matches!(v, Value::None))
            .map(|(k, v)| (k.into(), v))
            .collect(),
    ))
}

fn contains_thing(v: &Value) -> bool {
    match v {
        Value::Thing(_) => true,
        Value::Array(a) => a.iter().any(contains_thing),
        Value::Object(o) => o.iter().any(|(_, v)| contains_thing(v)),
        _ => false,
    }
}

fn contains_object(v: &Value) -> bool {
    match v {
        Value::Object(_) => true,
        Value::Array(a) => a.iter().any(contains_object),
        _ => false,
    }
}

fn contains_datetime(v: &Value) -> bool {
    match v {
        Value::Datetime(_) => true,
        Value::Array(a) => a.iter().any(contains_datetime),
        Value::Object(o) => o.iter().any(|(_, v)| contains_datetime(v)),
        _ => false,
    }
}

/// A value as a SurrealQL literal.
fn lit(v: &Value) -> String {
    match v {
        Value::None => "NONE".into(),
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(Number::Int(i)) => i.to_string(),
        Value::Number(Number::Float(f)) => float_lit(*f),
        Value::String(s) => quote(s),
        Value::Datetime(d) => format!("d\"{}\"", d.to_rfc3339_opts(SecondsFormat::Secs, true)),
        Value::Array(a) => format!("[{}]", a.iter().map(lit).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => {
            let fields: Vec<String> = o
                .iter()
                .filter(|(_, v)| !matches!(v, Value::None))
                .map(|(k, v)| format!("{k}: {}", lit(v)))
                .collect();
            if fields.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", fields.join(", "))
            }
        }
        Value::Thing(t) => t.to_string(),
    }
}

fn float_lit(f: f64) -> String {
    // `{:?}` always writes a `.` or an exponent, which SurrealQL reads as a float.
    format!("{f:?}")
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

// ===========================================================================
// Queries
// ===========================================================================

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    And,
    Or,
    Eq,
    ExactEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    ContainsAny,
    ContainsAll,
    ContainsNone,
    Inside,
    In,
    NotIn,
    Is,
    IsNot,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::And => "AND",
            Op::Or => "OR",
            Op::Eq => "=",
            Op::ExactEq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "CONTAINS",
            Op::ContainsAny => "CONTAINSANY",
            Op::ContainsAll => "CONTAINSALL",
            Op::ContainsNone => "CONTAINSNONE",
            Op::Inside => "INSIDE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::Is => "IS",
            Op::IsNot => "IS NOT",
        }
    }
}

#[derive(Clone, Debug)]
enum Ex {
    Lit(Value),
    Field(String),
    /// `$name`, or `$parent.path` (name = "parent.path").
    Param(String),
    Not(Box<Ex>),
    /// `NOT (x)`: SurrealQL's builtin `not` function.
    NotFn(Box<Ex>),
    /// Operator, operands, and whether the whole is parenthesised.
    Bin(Op, Box<Ex>, Box<Ex>, bool),
    StartsWith(Box<Ex>, Box<Ex>),
}

impl Ex {
    fn bin(op: Op, l: Ex, r: Ex) -> Ex {
        Ex::Bin(op, Box::new(l), Box::new(r), false)
    }

    fn render(&self, out: &mut String) {
        match self {
            Ex::Lit(v) => out.push_str(&lit(v)),
            Ex::Field(p) => out.push_str(p),
            Ex::Param(n) => {
                out.push('$');
                out.push_str(n);
            }
            Ex::Not(e) => match e.as_ref() {
                Ex::Field(_) | Ex::Param(_) | Ex::Lit(_) | Ex::Not(_) => {
                    out.push('!');
                    e.render(out);
                }
                _ => {
                    out.push_str("!(");
                    e.render(out);
                    out.push(')');
                }
            },
            Ex::NotFn(e) => {
                out.push_str("NOT (");
                e.render(out);
                out.push(')');
            }
            Ex::Bin(op, l, r, paren) => {
                if *paren {
                    out.push('(');
                }
                l.render(out);
                out.push(' ');
                out.push_str(op.text());
                out.push(' ');
                r.render(out);
                if *paren {
                    out.push(')');
                }
            }
            Ex::StartsWith(a, b) => {
                out.push_str("string::starts_with(");
                a.render(out);
                out.push_str(", ");
                b.render(out);
                out.push(')');
            }
        }
    }

    fn params(&self, out: &mut BTreeSet<String>) {
        match self {
            Ex::Lit(_) | Ex::Field(_) => {}
            Ex::Param(n) => {
                if !n.starts_with("parent.") {
                    out.insert(n.clone());
                }
            }
            Ex::Not(e) | Ex::NotFn(e) => e.params(out),
            Ex::Bin(_, l, r, _) | Ex::StartsWith(l, r) => {
                l.params(out);
                r.params(out);
            }
        }
    }

    /// Smaller expressions, for shrinking.
    fn shrinks(&self) -> Vec<Ex> {
        let mut out = Vec::new();
        match self {
            Ex::Bin(op @ (Op::And | Op::Or), l, r, p) => {
                out.push((**l).clone());
                out.push((**r).clone());
                for l2 in l.shrinks() {
                    out.push(Ex::Bin(*op, Box::new(l2), r.clone(), *p));
                }
                for r2 in r.shrinks() {
                    out.push(Ex::Bin(*op, l.clone(), Box::new(r2), *p));
                }
            }
            Ex::Not(e) | Ex::NotFn(e) => {
                out.push((**e).clone());
                for e2 in e.shrinks() {
                    out.push(match self {
                        Ex::Not(_) => Ex::Not(Box::new(e2)),
                        _ => Ex::NotFn(Box::new(e2)),
                    });
                }
            }
            Ex::Bin(op, l, r, p) => {
                if *p {
                    out.push(Ex::Bin(*op, l.clone(), r.clone(), false));
                }
                if let Ex::Lit(Value::Array(a)) = r.as_ref() {
                    for i in 0..a.len() {
                        let mut a2 = a.clone();
                        a2.remove(i);
                        out.push(Ex::Bin(
                            *op,
                            l.clone(),
                            Box::new(Ex::Lit(Value::Array(a2))),
                            *p,
                        ));
                    }
                }
            }
            _ => {}
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dir {
    Default,
    Asc,
    Desc,
}

#[derive(Clone, Debug)]
struct Query {
    table: &'static str,
    /// `SELECT *` or `SELECT id, <fields>`.
    star: bool,
    fields: Vec<String>,
    subs: Vec<Sub>,
    cond: Option<Ex>,
    order: Vec<(String, Dir)>,
    limit: Option<Ex>,
    start: Option<Ex>,
    /// Write `START` before `LIMIT` (SurrealQL accepts both orders).
    start_first: bool,
    /// Write the plain fields after the subqueries (a later field with the
    /// same name replaces an earlier one in SurrealDB's rows).
    fields_last: bool,
}

impl Query {
    /// `SELECT * FROM table` with no clauses yet.
    fn empty(table: &'static str) -> Query {
        Query {
            table,
            star: true,
            fields: Vec::new(),
            subs: Vec::new(),
            cond: None,
            order: Vec::new(),
            limit: None,
            start: None,
            start_first: false,
            fields_last: false,
        }
    }
}

#[derive(Clone, Debug)]
struct Sub {
    q: Query,
    index: Option<usize>,
    alias: String,
}

impl Query {
    fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        out.push_str("SELECT ");
        let mut items: Vec<String> = Vec::new();
        let mut plain: Vec<String> = Vec::new();
        if self.star {
            items.push("*".into());
        } else {
            items.push("id".into());
            for f in &self.fields {
                plain.push(f.clone());
            }
            // SurrealDB orders the projected rows: order fields must be there.
            for (f, _) in &self.order {
                if !plain.contains(f) {
                    plain.push(f.clone());
                }
            }
        }
        if !self.fields_last {
            items.append(&mut plain);
        }
        for s in &self.subs {
            let mut text = String::from("(");
            s.q.render_into(&mut text);
            text.push(')');
            if let Some(i) = s.index {
                let _ = write!(text, "[{i}]");
            }
            let _ = write!(text, " AS {}", s.alias);
            items.push(text);
        }
        items.append(&mut plain);
        out.push_str(&items.join(", "));
        out.push_str(" FROM ");
        out.push_str(self.table);
        if let Some(c) = &self.cond {
            out.push_str(" WHERE ");
            c.render(out);
        }
        if !self.order.is_empty() {
            out.push_str(" ORDER BY ");
            let terms: Vec<String> = self
                .order
                .iter()
                .map(|(f, d)| match d {
                    Dir::Default => f.clone(),
                    Dir::Asc => format!("{f} ASC"),
                    Dir::Desc => format!("{f} DESC"),
                })
                .collect();
            out.push_str(&terms.join(", "));
        }
        let limit = |out: &mut String| {
            if let Some(l) = &self.limit {
                out.push_str(" LIMIT ");
                l.render(out);
            }
        };
        let start = |out: &mut String| {
            if let Some(s) = &self.start {
                out.push_str(" START ");
                s.render(out);
            }
        };
        if self.start_first {
            start(out);
            limit(out);
        } else {
            limit(out);
            start(out);
        }
    }

    fn params(&self, out: &mut BTreeSet<String>) {
        for e in [&self.cond, &self.limit, &self.start].into_iter().flatten() {
            e.params(out);
        }
        for s in &self.subs {
            s.q.params(out);
        }
    }

    /// Simpler queries, for shrinking.
    fn shrinks(&self) -> Vec<Query> {
        let mut out = Vec::new();
        for (i, _) in self.subs.iter().enumerate() {
            let mut q = self.clone();
            q.subs.remove(i);
            out.push(q);
        }
        if let Some(c) = &self.cond {
            let mut q = self.clone();
            q.cond = None;
            out.push(q);
            for c2 in c.shrinks() {
                let mut q = self.clone();
                q.cond = Some(c2);
                out.push(q);
            }
        }
        for i in 0..self.order.len() {
            let mut q = self.clone();
            q.order.remove(i);
            out.push(q);
        }
        if self.limit.is_some() {
            let mut q = self.clone();
            q.limit = None;
            out.push(q);
        }
        if self.start.is_some() {
            let mut q = self.clone();
            q.start = None;
            out.push(q);
        }
        if !self.star {
            let mut q = self.clone();
            q.star = true;
            q.fields.clear();
            out.push(q);
        }
        for (i, s) in self.subs.iter().enumerate() {
            if s.index.is_some() {
                let mut q = self.clone();
                q.subs[i].index = None;
                out.push(q);
            }
            for sq in s.q.shrinks() {
                let mut q = self.clone();
                q.subs[i].q = sq;
                out.push(q);
            }
        }
        out
    }
}

// ===========================================================================
// Cases
// ===========================================================================

#[derive(Clone, Debug)]
struct ViewDef {
    id: String,
    q: Query,
    /// Param values; record links become JSON text for the engine.
    params: BTreeMap<String, Value>,
}

impl ViewDef {
    fn sql(&self) -> String {
        self.q.render()
    }

    fn engine_params(&self) -> serde_json::Map<String, serde_json::Value> {
        self.params
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect()
    }

    fn surreal_params(&self) -> sdb::Value {
        let mut o = sdb::Object::new();
        for (k, v) in &self.params {
            o.insert(k.clone(), to_surreal(v));
        }
        sdb::Value::Object(o)
    }

    fn prune_params(&mut self) {
        let mut used = BTreeSet::new();
        self.q.params(&mut used);
        self.params.retain(|k, _| used.contains(k));
    }
}

#[derive(Clone, Debug)]
struct Write {
    id: RecordId,
    content: Option<Object>,
}

#[derive(Clone, Debug)]
enum Step {
    Batch(Vec<Write>),
    Register(usize),
    Unregister(usize),
}

#[derive(Clone, Debug)]
struct Case {
    views: Vec<Option<ViewDef>>,
    steps: Vec<Step>,
    /// When set, the engine's windows keep only this many matches past
    /// their end, so that dropping matches and reading the table again
    /// (`Engine::with_window_slack`) happen all the time.
    window_slack: Option<usize>,
}

// ===========================================================================
// Generator
// ===========================================================================

const STRS: &[&str] = &[
    "", "a", "A", "B", "b", "ab", "abc", "Ba", "10", "9", "x y", "é", "a b",
];
const PREFIXES: &[&str] = &["", "a", "A", "b", "B", "ab", "1", "9", "é", "x"];
const FLOATS: &[f64] = &[0.5, 1.0, 2.5, -1.5, 3.0, 4.75, 10.5, 0.0, -0.0];
/// Numbers where int/float comparison needs care (beyond 2^53, at i64::MAX).
const BIG_INTS: &[i64] = &[
    9_007_199_254_740_993,
    -9_007_199_254_740_993,
    i64::MAX,
    i64::MIN,
];
const BIG_FLOATS: &[f64] = &[
    9_007_199_254_740_992.0,
    9.223_372_036_854_776e18,
    -9.223_372_036_854_776e18,
    1e300,
];
const DATES: &[&str] = &[
    "2024-01-01T00:00:00Z",
    "2024-01-02T00:00:00Z",
    "2023-06-15T12:30:00Z",
];

/// `title` is on every record and always a string: `string::starts_with`
/// makes SurrealDB fail the whole query on any other argument (NONE and NULL
/// included), which no result set can mirror, so it is only used on `title`.
/// Likewise `lim` is never negative nor a non-number (SurrealDB fails the
/// query on such a `LIMIT`/`START`), so it drives `LIMIT $parent.lim`.
const T_FIELDS: &[&str] = &[
    "title", "score", "name", "flag", "tags", "obj", "link", "links", "when", "lim",
];
const U_FIELDS: &[&str] = &["title", "score", "name", "tags", "owner", "friend", "lim"];
const T_PATHS: &[&str] = &[
    "score", "name", "title", "flag", "tags", "tags[0]", "obj", "obj.b", "obj.c.d", "link",
    "links", "when", "id", "nope",
];
const U_PATHS: &[&str] = &[
    "score", "name", "title", "tags", "owner", "friend", "id", "nope",
];
const T_ORDER: &[&str] = &[
    "score", "name", "title", "flag", "obj.b", "link", "id", "tags", "when", "obj", "nope",
];
const U_ORDER: &[&str] = &["score", "name", "title", "friend", "owner", "id", "tags"];
const CMP_OPS: &[Op] = &[
    Op::Eq,
    Op::Eq,
    Op::Eq,
    Op::Ne,
    Op::ExactEq,
    Op::Lt,
    Op::Le,
    Op::Gt,
    Op::Ge,
];

fn paths(table: &str) -> &'static [&'static str] {
    if table == "t" { T_PATHS } else { U_PATHS }
}

fn is_eq_family(op: Op) -> bool {
    !matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge)
}

struct Ctx {
    table: &'static str,
    parent: Option<&'static str>,
}

struct Gen {
    rng: StdRng,
    next_param: usize,
    /// The data as generated so far, to derive updates from.
    model: BTreeMap<RecordId, Object>,
}

impl Gen {
    fn new(seed: u64, case: u64) -> Gen {
        let mixed = seed ^ case.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Gen {
            rng: StdRng::seed_from_u64(mixed),
            next_param: 0,
            model: BTreeMap::new(),
        }
    }

    fn p(&mut self, prob: f64) -> bool {
        self.rng.random_bool(prob)
    }

    fn n(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi)
    }

    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.rng.random_range(0..xs.len())].clone()
    }

    fn weighted(&mut self, ws: &[u32]) -> usize {
        let total: u32 = ws.iter().sum();
        let mut x = self.rng.random_range(0..total);
        for (i, w) in ws.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        unreachable!()
    }

    // ----- values --------------------------------------------------------

    fn int_v(&mut self) -> Value {
        if self.p(0.03) {
            return int(self.pick(BIG_INTS));
        }
        // A narrow range, so that equal values (ties, `<=` at the bound) are common.
        int(self.n(-1, 6))
    }

    fn float_v(&mut self) -> Value {
        if self.p(0.05) {
            return float(self.pick(BIG_FLOATS));
        }
        float(self.pick(FLOATS))
    }

    fn str_v(&mut self) -> Value {
        string(self.pick(STRS))
    }

    fn date_v(&mut self) -> Value {
        let d = DateTime::parse_from_rfc3339(self.pick(DATES)).expect("a date");
        Value::datetime(d.with_timezone(&Utc))
    }

    fn t_key(&mut self) -> Key {
        if self.p(0.1) {
            // `t:⟨7⟩` is a string key, distinct from `t:7`.
            Key::String(self.pick(&["a", "B", "7"]).into())
        } else {
            Key::Int(self.n(1, 7))
        }
    }

    fn u_key(&mut self) -> Key {
        if self.p(0.1) {
            Key::String("x".into())
        } else {
            Key::Int(self.n(1, 5))
        }
    }

    fn t_ref(&mut self) -> Value {
        let k = self.t_key();
        thing("t", k)
    }

    fn u_ref(&mut self) -> Value {
        if self.p(0.06) {
            return thing("u", Key::Int(99));
        }
        if self.p(0.5) {
            // Mostly records that exist, so that links resolve.
            let existing: Vec<RecordId> = self
                .model
                .keys()
                .filter(|r| r.table.as_str() == "u")
                .cloned()
                .collect();
            if !existing.is_empty() {
                return Value::thing(self.pick(&existing));
            }
        }
        let k = self.u_key();
        thing("u", k)
    }

    fn scalar(&mut self) -> Value {
        match self.weighted(&[4, 2, 4, 2, 1, 1, 1, 1]) {
            0 => self.int_v(),
            1 => self.float_v(),
            2 => self.str_v(),
            3 => Value::Bool(self.p(0.5)),
            4 => Value::Null,
            5 => self.date_v(),
            6 => self.u_ref(),
            _ => self.t_ref(),
        }
    }

    fn any(&mut self, depth: u32) -> Value {
        if depth > 0 && self.p(0.25) {
            if self.p(0.6) {
                let n = self.n(0, 3);
                Value::Array((0..n).map(|_| self.any(depth - 1)).collect())
            } else {
                let b = self.any(depth - 1);
                let c = if self.p(0.5) {
                    self.any(depth - 1)
                } else {
                    Value::None
                };
                object(vec![("b", b), ("c", c)])
            }
        } else {
            self.scalar()
        }
    }

    fn score(&mut self) -> Value {
        match self.weighted(&[55, 20, 25]) {
            0 => self.int_v(),
            1 => self.float_v(),
            _ => self.any(1),
        }
    }

    fn name(&mut self) -> Value {
        if self.p(0.8) {
            self.str_v()
        } else {
            self.scalar()
        }
    }

    fn flag(&mut self) -> Value {
        match self.weighted(&[60, 10, 10, 10, 10]) {
            0 => Value::Bool(self.p(0.5)),
            1 => int(self.n(0, 1)),
            2 => string(self.pick(&["", "a"])),
            3 => Value::Null,
            _ => self.any(1),
        }
    }

    fn tag(&mut self) -> Value {
        match self.weighted(&[6, 2, 1, 1]) {
            0 => self.str_v(),
            1 => int(self.n(0, 3)),
            2 => self.u_ref(),
            _ => Value::Null,
        }
    }

    fn tags(&mut self) -> Value {
        match self.weighted(&[70, 10, 20]) {
            0 => {
                let n = self.n(0, 4);
                Value::Array((0..n).map(|_| self.tag()).collect())
            }
            1 => self.str_v(),
            _ => self.any(1),
        }
    }

    fn obj_b(&mut self) -> Value {
        if self.p(0.75) {
            int(self.n(0, 4))
        } else {
            self.str_v()
        }
    }

    fn obj_d(&mut self) -> Value {
        if self.p(0.6) {
            Value::Bool(self.p(0.5))
        } else {
            int(self.n(0, 2))
        }
    }

    fn obj(&mut self) -> Value {
        match self.weighted(&[70, 15, 15]) {
            0 => {
                let b = if self.p(0.85) {
                    self.obj_b()
                } else {
                    Value::None
                };
                let c = if self.p(0.6) {
                    let d = if self.p(0.8) {
                        self.obj_d()
                    } else {
                        Value::None
                    };
                    object(vec![("d", d)])
                } else {
                    Value::None
                };
                object(vec![("b", b), ("c", c)])
            }
            1 => {
                let n = self.n(0, 3);
                Value::Array(
                    (0..n)
                        .map(|_| {
                            let b = self.obj_b();
                            object(vec![("b", b)])
                        })
                        .collect(),
                )
            }
            _ => self.scalar(),
        }
    }

    fn link(&mut self) -> Value {
        match self.weighted(&[80, 6, 6, 8]) {
            0 => self.u_ref(),
            1 => self.t_ref(),
            2 => Value::Null,
            _ => self.scalar(),
        }
    }

    fn links(&mut self) -> Value {
        if self.p(0.8) {
            let n = self.n(0, 3);
            Value::Array((0..n).map(|_| self.u_ref()).collect())
        } else {
            self.scalar()
        }
    }

    fn field_value(&mut self, table: &str, field: &str) -> Value {
        match (table, field) {
            (_, "score") => self.score(),
            (_, "name") => self.name(),
            (_, "title") => self.str_v(),
            // NULL, or a number that SurrealDB truncates to a usize.
            (_, "lim") => match self.weighted(&[15, 60, 25]) {
                0 => Value::Null,
                1 => int(self.n(0, 3)),
                _ => float(self.pick(&[0.5, 1.9, 2.5, 0.0])),
            },
            (_, "flag") => self.flag(),
            (_, "tags") => self.tags(),
            (_, "obj") => self.obj(),
            (_, "link") => self.link(),
            (_, "links") => self.links(),
            (_, "when") => {
                if self.p(0.8) {
                    self.date_v()
                } else {
                    self.str_v()
                }
            }
            (_, "owner") => {
                if self.p(0.85) {
                    self.t_ref()
                } else {
                    self.scalar()
                }
            }
            (_, "friend") => self.link_u(),
            _ => self.scalar(),
        }
    }

    fn link_u(&mut self) -> Value {
        if self.p(0.85) {
            self.u_ref()
        } else {
            self.scalar()
        }
    }

    fn content(&mut self, table: &str) -> Object {
        let (fields, probs): (&[&str], &[f64]) = if table == "t" {
            (
                T_FIELDS,
                &[1.0, 0.88, 0.85, 0.8, 0.75, 0.7, 0.8, 0.5, 0.4, 0.6],
            )
        } else {
            (U_FIELDS, &[1.0, 0.88, 0.8, 0.5, 0.7, 0.6, 0.5])
        };
        let mut pairs = Vec::new();
        for (f, p) in fields.iter().zip(probs) {
            if self.p(*p) {
                let v = self.field_value(table, f);
                pairs.push((f.to_string(), v));
            }
        }
        Object::from_pairs(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    // ----- writes --------------------------------------------------------

    fn write(&mut self) -> Write {
        let table = if self.p(0.6) { "t" } else { "u" };
        let existing: Vec<RecordId> = self
            .model
            .keys()
            .filter(|r| r.table.as_str() == table)
            .cloned()
            .collect();
        let id = if !existing.is_empty() && self.p(0.7) {
            self.pick(&existing)
        } else {
            let k = if table == "t" {
                self.t_key()
            } else {
                self.u_key()
            };
            RecordId::new(table, k)
        };
        let content = match self.model.get(&id).cloned() {
            Some(old) => match self.weighted(&[50, 20, 22, 8]) {
                // The same content again: must change nothing.
                3 => Some(old),
                0 => {
                    // A small update: one field changes or goes.
                    let fields = if table == "t" { T_FIELDS } else { U_FIELDS };
                    let f = self.pick(fields);
                    let mut pairs: Vec<_> = old
                        .into_pairs()
                        .into_iter()
                        .filter(|(k, _)| k.as_ref() != f)
                        .collect();
                    if f == "title" || self.p(0.8) {
                        let v = self.field_value(table, f);
                        pairs.push((f.into(), v));
                    }
                    Some(Object::from_pairs(pairs))
                }
                1 => Some(self.content(table)),
                _ => None,
            },
            None => {
                if self.p(0.05) {
                    None
                } else {
                    Some(self.content(table))
                }
            }
        };
        match &content {
            Some(c) => self.model.insert(id.clone(), c.clone()),
            None => self.model.remove(&id),
        };
        Write { id, content }
    }

    fn batch(&mut self, first: bool) -> Vec<Write> {
        let n = if first && self.p(0.6) {
            // Often start with some data, so that links resolve.
            self.n(4, 10) as usize
        } else {
            self.weighted(&[30, 30, 20, 12, 8]) + 1
        };
        (0..n).map(|_| self.write()).collect()
    }

    // ----- expressions ---------------------------------------------------

    /// A new param; `prefix` is `p` for values, `w` for LIMIT/START.
    fn new_param(&mut self, v: Value, params: &mut BTreeMap<String, Value>) -> Ex {
        self.new_named_param("p", v, params)
    }

    fn new_named_param(
        &mut self,
        prefix: &str,
        v: Value,
        params: &mut BTreeMap<String, Value>,
    ) -> Ex {
        let name = format!("{prefix}{}", self.next_param);
        self.next_param += 1;
        params.insert(name.clone(), v);
        Ex::Param(name)
    }

    /// A literal or a param holding `v`. Params are JSON: no datetimes, and
    /// record links only where the JSON rule applies (equality-like ops).
    ///
    /// Object literals are outside the supported subset (contract §3), so a
    /// value holding an object becomes a param, or else is replaced.
    fn operand(&mut self, v: Value, eq_family: bool, params: &mut BTreeMap<String, Value>) -> Ex {
        let param_ok = !contains_datetime(&v) && (eq_family || !contains_thing(&v));
        if self.p(0.01) {
            // An unbound param is NONE on both sides.
            return Ex::Param("unbound".into());
        }
        if param_ok && (contains_object(&v) || self.p(0.3)) {
            self.new_param(v, params)
        } else if contains_object(&v) {
            let s = self.scalar();
            self.operand(s, eq_family, params)
        } else {
            Ex::Lit(v)
        }
    }

    /// A value to compare `path` of `table` with: mostly of the field's own
    /// kind, sometimes anything.
    fn value_for(&mut self, table: &str, path: &str) -> Value {
        if self.p(0.15) {
            return self.scalar();
        }
        match path {
            "obj.b" => self.obj_b(),
            "obj.c.d" => self.obj_d(),
            "id" => {
                if table == "t" {
                    self.t_ref()
                } else {
                    thing("u", self.u_key())
                }
            }
            "tags" => {
                if self.p(0.5) {
                    self.tag()
                } else {
                    self.tags()
                }
            }
            "tags[0]" => self.tag(),
            "nope" => self.scalar(),
            f => self.field_value(table, f),
        }
    }

    fn array_for(&mut self, table: &str, path: &str) -> Value {
        let n = self.n(0, 3);
        Value::Array((0..n).map(|_| self.value_for(table, path)).collect())
    }

    fn parent_ref(&mut self, parent: &str) -> Ex {
        let f = self.pick(paths(parent));
        Ex::Param(format!("parent.{f}"))
    }

    fn cond(&mut self, ctx: &Ctx, depth: u32, params: &mut BTreeMap<String, Value>) -> Ex {
        if depth > 0 && self.p(0.45) {
            match self.weighted(&[40, 40, 10, 10]) {
                i @ (0 | 1) => {
                    let op = if i == 0 { Op::And } else { Op::Or };
                    let l = self.cond(ctx, depth - 1, params);
                    let r = self.cond(ctx, depth - 1, params);
                    let paren = self.p(0.5);
                    Ex::Bin(op, Box::new(l), Box::new(r), paren)
                }
                2 => Ex::Not(Box::new(self.cond(ctx, depth - 1, params))),
                _ => Ex::NotFn(Box::new(self.cond(ctx, depth - 1, params))),
            }
        } else {
            self.atom(ctx, params)
        }
    }

    fn atom(&mut self, ctx: &Ctx, params: &mut BTreeMap<String, Value>) -> Ex {
        let table = ctx.table;
        let ps = paths(table);
        let parent_w = if ctx.parent.is_some() { 20 } else { 0 };
        match self.weighted(&[40, 5, 14, 12, 8, 5, 6, 6, 8, parent_w]) {
            // field op value
            0 | 1 => {
                let f = self.pick(ps);
                let op = self.pick(CMP_OPS);
                let rhs = match ctx.parent {
                    Some(parent) if self.p(0.25) => self.parent_ref(parent),
                    _ => {
                        let v = self.value_for(table, f);
                        self.operand(v, is_eq_family(op), params)
                    }
                };
                let mut e = Ex::bin(op, Ex::Field(f.into()), rhs);
                if self.p(0.12) {
                    // value op field
                    if let Ex::Bin(_, l, r, _) = &mut e {
                        std::mem::swap(l, r);
                    }
                }
                e
            }
            // CONTAINS family
            2 => {
                let f = self.pick(&["tags", "tags", "name", "links", "obj", "score", "link"]);
                let f = self.local(table, f);
                match self.weighted(&[4, 2, 2, 2, 2]) {
                    0 => {
                        let v = if f == "name" {
                            self.str_v()
                        } else {
                            self.value_for(table, "tags")
                        };
                        let rhs = self.operand(v, true, params);
                        Ex::bin(Op::Contains, Ex::Field(f.into()), rhs)
                    }
                    i @ (1..=3) => {
                        let op = [Op::ContainsAny, Op::ContainsAll, Op::ContainsNone][i - 1];
                        let v = if self.p(0.9) {
                            self.array_for(table, if f == "name" { "name" } else { "tags" })
                        } else {
                            self.value_for(table, "tags")
                        };
                        // Not `true`: a record link given as JSON text would turn
                        // a mixed array into an all-string one, which these
                        // operators treat differently (substrings of a string).
                        let rhs = self.operand(v, false, params);
                        Ex::bin(op, Ex::Field(f.into()), rhs)
                    }
                    _ => {
                        let g = self.pick(&["score", "name", "link", "id"]);
                        let g = self.local(table, g);
                        let v = self.array_for(table, g);
                        let lhs = self.operand(v, true, params);
                        Ex::bin(Op::Contains, lhs, Ex::Field(g.into()))
                    }
                }
            }
            // INSIDE family
            3 => {
                let op = self.pick(&[Op::Inside, Op::In, Op::NotIn]);
                if self.p(0.7) {
                    let f = self.pick(ps);
                    let v = if self.p(0.9) {
                        self.array_for(table, f)
                    } else {
                        self.value_for(table, f)
                    };
                    let rhs = self.operand(v, true, params);
                    Ex::bin(op, Ex::Field(f.into()), rhs)
                } else {
                    let f = self.pick(&["tags", "links", "name"]);
                    let f = self.local(table, f);
                    let v = if f == "name" {
                        self.str_v()
                    } else {
                        self.value_for(table, "tags")
                    };
                    let lhs = self.operand(v, true, params);
                    Ex::bin(op, lhs, Ex::Field(f.into()))
                }
            }
            // NONE / NULL
            4 => {
                let f = self.pick(ps);
                let (op, v) = self.pick(&[
                    (Op::Is, Value::None),
                    (Op::Eq, Value::None),
                    (Op::IsNot, Value::None),
                    (Op::Ne, Value::None),
                    (Op::ExactEq, Value::None),
                    (Op::Eq, Value::Null),
                    (Op::Is, Value::Null),
                    (Op::Ne, Value::Null),
                ]);
                Ex::bin(op, Ex::Field(f.into()), Ex::Lit(v))
            }
            // string::starts_with
            5 => {
                let f = "title";
                let prefix = string(self.pick(PREFIXES));
                let arg = match ctx.parent {
                    Some(_) if self.p(0.2) => Ex::Param("parent.title".into()),
                    _ if self.p(0.3) => self.new_param(prefix, params),
                    _ => Ex::Lit(prefix),
                };
                Ex::StartsWith(Box::new(Ex::Field(f.into())), Box::new(arg))
            }
            // truthiness
            6 => {
                let f = self.pick(ps);
                if self.p(0.6) {
                    Ex::Not(Box::new(Ex::Field(f.into())))
                } else {
                    Ex::Field(f.into())
                }
            }
            // id
            7 => {
                let key = |g: &mut Gen| if table == "t" { g.t_key() } else { g.u_key() };
                if self.p(0.3) {
                    let n = self.n(1, 3);
                    let v = Value::Array((0..n).map(|_| thing(table, key(self))).collect());
                    let rhs = self.operand(v, true, params);
                    let op = self.pick(&[Op::In, Op::NotIn]);
                    Ex::bin(op, Ex::Field("id".into()), rhs)
                } else {
                    let op = self.pick(CMP_OPS);
                    let v = thing(table, key(self));
                    let rhs = self.operand(v, is_eq_family(op), params);
                    Ex::bin(op, Ex::Field("id".into()), rhs)
                }
            }
            // links
            8 => {
                let f = if table == "t" {
                    "link"
                } else {
                    self.pick(&["friend", "owner"])
                };
                let v = if f == "owner" {
                    self.t_ref()
                } else {
                    self.u_ref()
                };
                match self.weighted(&[3, 1, 1]) {
                    0 => {
                        let op = self.pick(&[Op::Eq, Op::Eq, Op::Ne, Op::ExactEq]);
                        let rhs = self.operand(v, true, params);
                        Ex::bin(op, Ex::Field(f.into()), rhs)
                    }
                    1 => {
                        let arr = Value::Array(thin_vec::thin_vec![v, self.u_ref()]);
                        let rhs = self.operand(arr, true, params);
                        Ex::bin(Op::In, Ex::Field(f.into()), rhs)
                    }
                    _ => {
                        let f = if table == "t" { "links" } else { "tags" };
                        let rhs = self.operand(v, true, params);
                        Ex::bin(Op::Contains, Ex::Field(f.into()), rhs)
                    }
                }
            }
            // $parent
            _ => {
                let parent = ctx.parent.expect("weight 0 without a parent");
                match self.weighted(&[3, 2, 1, 1]) {
                    0 => {
                        let f = self.pick(ps);
                        let op = self.pick(CMP_OPS);
                        let r = self.parent_ref(parent);
                        Ex::bin(op, Ex::Field(f.into()), r)
                    }
                    1 => {
                        let link = if parent == "t" { "link" } else { "friend" };
                        Ex::bin(
                            Op::Eq,
                            Ex::Field("id".into()),
                            Ex::Param(format!("parent.{link}")),
                        )
                    }
                    2 => {
                        let links = if parent == "t" { "links" } else { "tags" };
                        if self.p(0.5) {
                            Ex::bin(
                                Op::In,
                                Ex::Field("id".into()),
                                Ex::Param(format!("parent.{links}")),
                            )
                        } else {
                            Ex::bin(
                                Op::Contains,
                                Ex::Param(format!("parent.{links}")),
                                Ex::Field("id".into()),
                            )
                        }
                    }
                    _ => {
                        let back = if table == "t" { "link" } else { "owner" };
                        Ex::bin(
                            Op::Eq,
                            Ex::Field(back.into()),
                            Ex::Param("parent.id".into()),
                        )
                    }
                }
            }
        }
    }

    /// Maps `t`'s field names to `u`'s equivalents.
    fn local(&mut self, table: &str, f: &'static str) -> &'static str {
        if table == "t" {
            return f;
        }
        match f {
            "link" => "friend",
            "links" | "obj" => "tags",
            other => other,
        }
    }

    // ----- queries -------------------------------------------------------

    fn window(&mut self, q: &mut Query, params: &mut BTreeMap<String, Value>) {
        if self.p(0.45) {
            let n = if self.p(0.1) { 0 } else { self.n(1, 6) };
            q.limit = Some(if self.p(0.2) {
                // `LIMIT NULL` selects nothing, as `LIMIT 0` does.
                let v = if self.p(0.1) { Value::Null } else { int(n) };
                self.new_named_param("w", v, params)
            } else {
                Ex::Lit(int(n))
            });
        }
        if self.p(0.2) {
            let n = self.n(0, 3);
            q.start = Some(if self.p(0.2) {
                let v = if self.p(0.1) { Value::Null } else { int(n) };
                self.new_named_param("w", v, params)
            } else {
                Ex::Lit(int(n))
            });
        }
        q.start_first = self.p(0.3);
    }

    fn order(&mut self, table: &str, exclude: &[String]) -> Vec<(String, Dir)> {
        let pool = if table == "t" { T_ORDER } else { U_ORDER };
        let n = self.weighted(&[50, 30, 15, 5]) as i64;
        let mut out: Vec<(String, Dir)> = Vec::new();
        for _ in 0..n {
            let f = self.pick(pool);
            if exclude.iter().any(|e| e == f) || out.iter().any(|(g, _)| g == f) {
                continue;
            }
            let d = self.pick(&[Dir::Default, Dir::Asc, Dir::Desc, Dir::Desc]);
            out.push((f.into(), d));
        }
        out
    }

    fn projection(&mut self, q: &mut Query) {
        q.star = self.p(0.8);
        if !q.star {
            let fields = if q.table == "t" { T_FIELDS } else { U_FIELDS };
            for f in fields {
                if self.p(0.3) {
                    q.fields.push(f.to_string());
                }
            }
        }
    }

    fn query(&mut self, params: &mut BTreeMap<String, Value>) -> Query {
        let table = if self.p(0.88) { "t" } else { "u" };
        let mut q = Query::empty(table);
        self.projection(&mut q);
        let ctx = Ctx {
            table,
            parent: None,
        };
        let nsubs = self.weighted(&[45, 40, 15]);
        if self.p(if nsubs > 0 { 0.5 } else { 0.85 }) {
            let depth = self.weighted(&[50, 35, 15]) as u32;
            q.cond = Some(self.cond(&ctx, depth, params));
        }
        q.fields_last = !q.star && self.p(0.3);
        for i in 0..nsubs {
            let mut s = self.sub(table, 1, i, q.star, params);
            if i > 0 && self.p(0.12) {
                // The same alias twice: the later subquery's rows win.
                s.alias = q.subs[i - 1].alias.clone();
            } else if !q.fields.is_empty() && self.p(0.15) {
                // The alias of a plain field: whichever comes later wins.
                s.alias = self.pick(&q.fields);
            }
            q.subs.push(s);
        }
        let aliases: Vec<String> = q.subs.iter().map(|s| s.alias.clone()).collect();
        if self.p(0.5) {
            q.order = self.order(table, &aliases);
        }
        self.window(&mut q, params);
        q
    }

    /// A subquery projection of a record of `parent`, at nesting `depth`.
    fn sub(
        &mut self,
        parent: &'static str,
        depth: u32,
        nth: usize,
        parent_star: bool,
        params: &mut BTreeMap<String, Value>,
    ) -> Sub {
        let mut alias = format!("s{depth}{nth}");
        let shape = self.weighted(&[34, 12, 14, 20, 20]);
        let table: &'static str = match (shape, parent) {
            (0 | 1 | 3, _) => "u",
            (2, "t") => "u",
            (2, _) => "t",
            _ => {
                if self.p(0.7) {
                    "u"
                } else {
                    "t"
                }
            }
        };
        let mut q = Query::empty(table);
        self.projection(&mut q);
        let ctx = Ctx {
            table,
            parent: Some(parent),
        };
        let mut index = None;
        match shape {
            0 => {
                // The link lookup: `(SELECT * FROM u WHERE id = $parent.link LIMIT 1)[0]`.
                let link = if parent == "t" { "link" } else { "friend" };
                q.cond = Some(Ex::bin(
                    Op::Eq,
                    Ex::Field("id".into()),
                    Ex::Param(format!("parent.{link}")),
                ));
                if self.p(0.8) {
                    q.limit = Some(Ex::Lit(int(1)));
                }
                if self.p(0.85) {
                    index = Some(0);
                }
                if depth == 1 && parent_star && parent == "t" && self.p(0.3) {
                    // Shadow the link field itself, as `... AS author` does.
                    alias = "link".into();
                }
            }
            1 => {
                let links = if parent == "t" { "links" } else { "tags" };
                q.cond = Some(if self.p(0.5) {
                    Ex::bin(
                        Op::In,
                        Ex::Field("id".into()),
                        Ex::Param(format!("parent.{links}")),
                    )
                } else {
                    Ex::bin(
                        Op::Contains,
                        Ex::Param(format!("parent.{links}")),
                        Ex::Field("id".into()),
                    )
                });
            }
            2 => {
                let back = if table == "u" { "owner" } else { "link" };
                q.cond = Some(Ex::bin(
                    Op::Eq,
                    Ex::Field(back.into()),
                    Ex::Param("parent.id".into()),
                ));
            }
            3 => {
                // Not indexable: `score > $parent.score ORDER BY score LIMIT 2`.
                let f = self.pick(&["score", "score", "name"]);
                let op = self.pick(&[Op::Gt, Op::Lt, Op::Ge, Op::Le, Op::Ne]);
                q.cond = Some(Ex::bin(
                    op,
                    Ex::Field(f.into()),
                    Ex::Param(format!("parent.{f}")),
                ));
                q.order = vec![(f.into(), self.pick(&[Dir::Default, Dir::Desc]))];
                q.limit = Some(Ex::Lit(int(self.n(1, 3))));
            }
            _ => {
                q.cond = Some(self.cond(&ctx, 1, params));
            }
        }
        if shape != 0 && self.p(0.2) {
            let extra = self.atom(&ctx, params);
            let c = q.cond.take().expect("every shape has a condition");
            q.cond = Some(Ex::Bin(Op::And, Box::new(c), Box::new(extra), self.p(0.5)));
        }
        if depth < 2 && self.p(0.3) {
            let s = self.sub(table, depth + 1, 0, q.star, params);
            q.subs.push(s);
        }
        if shape != 0 && shape != 3 {
            let aliases: Vec<String> = q.subs.iter().map(|s| s.alias.clone()).collect();
            if self.p(0.4) {
                q.order = self.order(table, &aliases);
            }
            self.window(&mut q, params);
            if self.p(0.15) {
                index = Some(if self.p(0.8) { 0 } else { 1 });
            }
        }
        // A window read from the parent record (NONE/NULL count as 0).
        if shape != 0 && self.p(0.1) {
            q.limit = Some(Ex::Param("parent.lim".into()));
        }
        if shape != 0 && self.p(0.08) {
            q.start = Some(Ex::Param("parent.lim".into()));
        }
        Sub { q, index, alias }
    }

    fn view(&mut self, id: String) -> ViewDef {
        let mut params = BTreeMap::new();
        let q = self.query(&mut params);
        ViewDef { id, q, params }
    }

    fn case(&mut self) -> Case {
        let ndefs = self.weighted(&[25, 35, 25, 15]) + 1;
        let mut views: Vec<Option<ViewDef>> = Vec::new();
        for i in 0..ndefs {
            let id = format!("v{i}");
            if i > 0 && self.p(0.2) {
                // The query of an earlier view, under another id: shared nodes.
                let j = self.n(0, i as i64 - 1) as usize;
                let mut def = views[j].clone().expect("just made");
                def.id = id;
                if self.p(0.4) {
                    // ... with other param values: same plan, other nodes.
                    // (Value params only: LIMIT/START params stay valid.)
                    let names: Vec<String> = def
                        .params
                        .keys()
                        .filter(|k| k.starts_with('p'))
                        .cloned()
                        .collect();
                    let other = self.view(format!("v{i}"));
                    for (name, v) in names.iter().zip(other.params.values()) {
                        if matches!(
                            (&def.params[name], v),
                            (Value::Number(Number::Int(_)), Value::Number(Number::Int(_)))
                                | (Value::String(_), Value::String(_))
                                | (Value::Thing(_), Value::Thing(_))
                        ) {
                            def.params.insert(name.clone(), v.clone());
                        }
                    }
                }
                views.push(Some(def));
            } else {
                views.push(Some(self.view(id)));
            }
        }
        let nbatches = self.n(2, 8) as usize;
        // schedule[b]: what happens before batch b (b == nbatches: after the last).
        let mut schedule: Vec<Vec<Step>> = vec![Vec::new(); nbatches + 1];
        for d in 0..ndefs {
            let at = if self.p(0.5) {
                0
            } else {
                self.n(0, nbatches as i64) as usize
            };
            schedule[at].push(Step::Register(d));
            if at < nbatches && self.p(0.12) {
                let off = self.n((at + 1) as i64, nbatches as i64) as usize;
                schedule[off].push(Step::Unregister(d));
                if off < nbatches && self.p(0.5) {
                    let again = self.n((off + 1) as i64, nbatches as i64) as usize;
                    schedule[again].push(Step::Register(d));
                }
            } else if at < nbatches && self.p(0.1) {
                // Refresh: the same id registered again, with another query.
                let again = self.n((at + 1) as i64, nbatches as i64) as usize;
                let id = format!("v{d}");
                let def = if self.p(0.3) {
                    // Same query, same params: must change nothing.
                    views[d].clone().expect("just made")
                } else {
                    self.view(id)
                };
                views.push(Some(def));
                schedule[again].push(Step::Register(views.len() - 1));
            }
        }
        let mut steps = Vec::new();
        for (b, evs) in schedule.into_iter().enumerate() {
            steps.extend(evs);
            if b < nbatches {
                steps.push(Step::Batch(self.batch(b == 0)));
            }
        }
        let window_slack = self.p(0.5).then(|| self.n(0, 2) as usize);
        Case {
            views,
            steps,
            window_slack,
        }
    }
}

// ===========================================================================
// Running a case
// ===========================================================================

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The engine's result set differs from SurrealDB's.
    Mismatch,
    /// The engine refused a query of the supported subset.
    Rejected,
    /// The deltas the engine emitted do not add up to its result set.
    Delta,
    /// SurrealDB failed to run something the generator made (a test bug).
    Surreal,
}

#[derive(Clone, Debug)]
struct Failure {
    kind: Kind,
    step: usize,
    view: Option<usize>,
    detail: String,
    surreal: BTreeSet<RecordId>,
    engine: BTreeSet<RecordId>,
}

#[derive(Default)]
struct Stats {
    cases: u64,
    steps: u64,
    writes: u64,
    checks: u64,
    nonempty: u64,
    with_sub_records: u64,
    windowed: u64,
    sub_views: u64,
    sub_views_nonempty: u64,
}

struct Runner {
    db: Surreal<Any>,
}

fn vars(pairs: Vec<(&str, sdb::Value)>) -> sdb::Value {
    let mut o = sdb::Object::new();
    for (k, v) in pairs {
        o.insert(k.to_string(), v);
    }
    sdb::Value::Object(o)
}

fn fail(kind: Kind, step: usize, view: Option<usize>, detail: String) -> Failure {
    Failure {
        kind,
        step,
        view,
        detail,
        surreal: BTreeSet::new(),
        engine: BTreeSet::new(),
    }
}

/// The ids of a SurrealDB result: each row's id, plus recursively the rows
/// inside its subquery fields.
/// `nested` counts the records found inside subquery fields (`depth` > 0).
fn flatten(
    rows: &sdb::Value,
    q: &Query,
    out: &mut BTreeSet<RecordId>,
    depth: usize,
    nested: &mut usize,
) -> Result<(), String> {
    let sdb::Value::Array(rows) = rows else {
        return Err(format!(
            "expected an array of rows, got {}",
            sdb::ToSql::to_sql(rows)
        ));
    };
    for row in rows.iter() {
        flatten_row(row, q, out, depth, nested)?;
    }
    Ok(())
}

fn flatten_row(
    row: &sdb::Value,
    q: &Query,
    out: &mut BTreeSet<RecordId>,
    depth: usize,
    nested: &mut usize,
) -> Result<(), String> {
    let sdb::Value::Object(o) = row else {
        return Err(format!(
            "expected a row object, got {}",
            sdb::ToSql::to_sql(row)
        ));
    };
    match o.get("id") {
        Some(sdb::Value::RecordId(r)) => {
            out.insert(record_id_from_surreal(r).expect("a record id"));
            if depth > 0 {
                *nested += 1;
            }
        }
        other => return Err(format!("row without a record id: {other:?}")),
    }
    for s in written_subs(q) {
        match o.get(&s.alias) {
            None | Some(sdb::Value::None) | Some(sdb::Value::Null) => {}
            Some(v @ sdb::Value::Object(_)) => flatten_row(v, &s.q, out, depth + 1, nested)?,
            Some(v @ sdb::Value::Array(_)) => flatten(v, &s.q, out, depth + 1, nested)?,
            Some(other) => {
                return Err(format!(
                    "subquery field `{}` holds {}",
                    s.alias,
                    sdb::ToSql::to_sql(other)
                ));
            }
        }
    }
    Ok(())
}

/// The subqueries whose rows a query's output holds: SurrealDB writes the
/// fields of a row in order, so a later field with the same name (another
/// subquery, or a plain field) replaces an earlier subquery's rows.
fn written_subs(q: &Query) -> Vec<&Sub> {
    let plain_later = |alias: &str| {
        !q.star
            && q.fields_last
            && (q.fields.iter().any(|f| f == alias) || q.order.iter().any(|(f, _)| f == alias))
    };
    q.subs
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            !q.subs[i + 1..].iter().any(|t| t.alias == s.alias) && !plain_later(&s.alias)
        })
        .map(|(_, s)| s)
        .collect()
}

fn meta(def: &ViewDef) -> ViewMeta {
    ViewMeta {
        id: def.id.as_str().into(),
        client_id: "diff".into(),
        sql: def.sql(),
        params: def.engine_params(),
        ttl: "1h".into(),
        last_active_at: Utc::now(),
    }
}

/// A view's edges as SurrealDB would hold them: record -> edge version.
type Edges = BTreeMap<RecordId, u64>;

/// Applies one view's delta to the edges it implies, checking that it is
/// consistent with them.
fn apply_delta(edges: &mut Edges, d: &ViewDelta) -> Result<(), String> {
    for r in &d.deleted {
        if edges.remove(r).is_none() {
            return Err(format!("`deleted` for {r}, which has no edge"));
        }
    }
    for (r, v) in &d.created {
        if edges.insert(r.clone(), *v).is_some() {
            return Err(format!("`created` for {r}, which already has an edge"));
        }
    }
    for (r, v) in &d.updated {
        match edges.get_mut(r) {
            Some(old) if *old < *v => *old = *v,
            Some(old) => return Err(format!("`updated` for {r} from version {old} to {v}")),
            None => return Err(format!("`updated` for {r}, which has no edge")),
        }
    }
    Ok(())
}

fn edge_text(edges: &Edges) -> String {
    let v: Vec<String> = edges.iter().map(|(r, v)| format!("{r}@{v}")).collect();
    v.join(", ")
}

impl Runner {
    async fn reset(&self) -> Result<(), String> {
        let mut r = self
            .db
            .query("REMOVE TABLE IF EXISTS t; REMOVE TABLE IF EXISTS u; DEFINE TABLE t SCHEMALESS; DEFINE TABLE u SCHEMALESS;")
            .await
            .map_err(|e| e.to_string())?;
        let errors = r.take_errors();
        if !errors.is_empty() {
            return Err(format!("{errors:?}"));
        }
        Ok(())
    }

    /// Writes one change to SurrealDB and returns it as the change worker
    /// would see it: the stored record, read back.
    async fn write(&self, w: &Write) -> Result<Change, String> {
        let id = sdb::Value::RecordId(record_id_to_surreal(&w.id));
        match &w.content {
            None => {
                let mut r = self
                    .db
                    .query("DELETE $id")
                    .bind(vars(vec![("id", id)]))
                    .await
                    .map_err(|e| e.to_string())?;
                r.take::<sdb::Value>(0).map_err(|e| e.to_string())?;
                Ok(Change {
                    id: w.id.clone(),
                    content: None,
                })
            }
            Some(c) => {
                let content = to_surreal(&Value::Object(c.clone()));
                let mut r = self
                    .db
                    .query("UPSERT $id CONTENT $c RETURN NONE; SELECT * FROM ONLY $id")
                    .bind(vars(vec![("id", id), ("c", content)]))
                    .await
                    .map_err(|e| e.to_string())?;
                r.take::<sdb::Value>(0).map_err(|e| e.to_string())?;
                match r.take::<sdb::Value>(1).map_err(|e| e.to_string())? {
                    sdb::Value::Object(o) => Ok(Change {
                        id: w.id.clone(),
                        content: Some(object_from_surreal(o)),
                    }),
                    other => Err(format!(
                        "read back {}: {}",
                        w.id,
                        sdb::ToSql::to_sql(&other)
                    )),
                }
            }
        }
    }

    /// The view's result in SurrealDB, and how many records subqueries brought.
    async fn surreal_view(&self, def: &ViewDef) -> Result<(BTreeSet<RecordId>, usize), String> {
        let sql = def.sql();
        let mut r = self
            .db
            .query(sql.as_str())
            .bind(def.surreal_params())
            .await
            .map_err(|e| e.to_string())?;
        let v: sdb::Value = r.take(0).map_err(|e| e.to_string())?;
        let mut out = BTreeSet::new();
        let mut nested = 0;
        flatten(&v, &def.q, &mut out, 0, &mut nested)?;
        Ok((out, nested))
    }

    async fn run(&self, case: &Case, stats: &mut Stats) -> Result<(), Failure> {
        let setup = |e: String| fail(Kind::Surreal, 0, None, format!("setup: {e}"));
        self.reset().await.map_err(setup)?;
        let mut engine = match case.window_slack {
            Some(slack) => Engine::with_window_slack(slack),
            None => Engine::new(),
        };
        // View id -> (definition index, edges implied by the deltas so far).
        let mut active: BTreeMap<String, (usize, Edges)> = BTreeMap::new();
        // Every record's content as the engine was given it, and its version.
        let mut contents: BTreeMap<RecordId, Object> = BTreeMap::new();
        let mut versions: BTreeMap<RecordId, u64> = BTreeMap::new();
        for (si, step) in case.steps.iter().enumerate() {
            stats.steps += 1;
            match step {
                Step::Batch(ws) => {
                    let mut changes = Vec::with_capacity(ws.len());
                    for w in ws {
                        stats.writes += 1;
                        let c = self
                            .write(w)
                            .await
                            .map_err(|e| fail(Kind::Surreal, si, None, format!("write: {e}")))?;
                        changes.push(c);
                    }
                    let deltas = engine.apply_batch(&changes);
                    // Versions: 1 on first sight, +1 per batch that changed the
                    // content, gone with the record; unchanged records are in no
                    // `updated`, and a batch that changes nothing emits nothing.
                    let mut finals: BTreeMap<&RecordId, Option<&Object>> = BTreeMap::new();
                    for c in &changes {
                        finals.insert(&c.id, c.content.as_ref());
                    }
                    let mut unchanged = BTreeSet::new();
                    for (id, new) in &finals {
                        let old = contents.get(*id);
                        let same = match (old, new) {
                            (None, None) => true,
                            (Some(o), Some(n)) => {
                                let mut n = (*n).clone();
                                n.insert("id".into(), Value::thing((*id).clone()));
                                Value::Object(o.clone()).same_content(&Value::Object(n))
                            }
                            _ => false,
                        };
                        if same {
                            unchanged.insert((*id).clone());
                        } else {
                            match new {
                                Some(n) => {
                                    let mut n = (*n).clone();
                                    n.insert("id".into(), Value::thing((*id).clone()));
                                    contents.insert((*id).clone(), n);
                                    *versions.entry((*id).clone()).or_insert(0) += 1;
                                }
                                None => {
                                    contents.remove(*id);
                                    versions.remove(*id);
                                }
                            }
                        }
                        if engine.version(id) != versions.get(*id).copied() {
                            return Err(fail(
                                Kind::Delta,
                                si,
                                None,
                                format!(
                                    "{id} has version {:?}, expected {:?}",
                                    engine.version(id),
                                    versions.get(*id)
                                ),
                            ));
                        }
                    }
                    if unchanged.len() == finals.len() && !deltas.is_empty() {
                        return Err(fail(
                            Kind::Delta,
                            si,
                            None,
                            format!("a batch that changed nothing emitted {deltas:?}"),
                        ));
                    }
                    let mut seen = BTreeSet::new();
                    for d in &deltas {
                        let Some((di, edges)) = active.get_mut(d.view.as_ref()) else {
                            return Err(fail(
                                Kind::Delta,
                                si,
                                None,
                                format!("a delta for unknown view {}", d.view),
                            ));
                        };
                        if !seen.insert(d.view.to_string()) {
                            return Err(fail(
                                Kind::Delta,
                                si,
                                Some(*di),
                                "two deltas for one view in one batch".into(),
                            ));
                        }
                        if d.is_empty() {
                            return Err(fail(Kind::Delta, si, Some(*di), "an empty delta".into()));
                        }
                        apply_delta(edges, d).map_err(|e| fail(Kind::Delta, si, Some(*di), e))?;
                        if let Some((r, _)) = d.updated.iter().find(|(r, _)| unchanged.contains(r))
                        {
                            return Err(fail(
                                Kind::Delta,
                                si,
                                Some(*di),
                                format!("`updated` for unchanged {r}"),
                            ));
                        }
                    }
                }
                Step::Register(di) => {
                    let Some(def) = &case.views[*di] else {
                        continue;
                    };
                    match engine.register(meta(def)) {
                        Ok(delta) => {
                            let entry = active.entry(def.id.clone()).or_insert((*di, Edges::new()));
                            entry.0 = *di;
                            apply_delta(&mut entry.1, &delta)
                                .map_err(|e| fail(Kind::Delta, si, Some(*di), e))?;
                        }
                        // Its paths go through record links in this data:
                        // SSP runs it in the re-query tier (SurrealDB's own
                        // answer, `tests/integration/requery.rs`); the engine
                        // keeps what it had.
                        Err(ssp::engine::EngineError::Plan(
                            ssp::engine::plan::PlanError::FollowsLink,
                        )) => continue,
                        Err(e) => return Err(fail(Kind::Rejected, si, Some(*di), e.to_string())),
                    }
                }
                Step::Unregister(di) => {
                    let Some(def) = &case.views[*di] else {
                        continue;
                    };
                    let Some((_, edges)) = active.remove(&def.id) else {
                        continue;
                    };
                    let delta = engine.unregister(&def.id);
                    let deleted: BTreeSet<RecordId> = delta
                        .map(|d| d.deleted.into_iter().collect())
                        .unwrap_or_default();
                    let edges: BTreeSet<RecordId> = edges.into_keys().collect();
                    if deleted != edges {
                        let mut f = fail(
                            Kind::Delta,
                            si,
                            Some(*di),
                            "unregister did not delete exactly the edges".into(),
                        );
                        f.engine = deleted;
                        f.surreal = edges;
                        return Err(f);
                    }
                }
            }
            // Check every registered view against SurrealDB.
            for (vid, (di, edges)) in &active {
                let def = case.views[*di].as_ref().expect("active views exist");
                stats.checks += 1;
                let (want, nested) = self
                    .surreal_view(def)
                    .await
                    .map_err(|e| fail(Kind::Surreal, si, Some(*di), format!("view query: {e}")))?;
                let got_versions: Edges = engine
                    .view_records(vid)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let got: BTreeSet<RecordId> = got_versions.keys().cloned().collect();
                if !want.is_empty() {
                    stats.nonempty += 1;
                }
                if nested > 0 {
                    stats.with_sub_records += 1;
                }
                if !def.q.subs.is_empty() {
                    stats.sub_views += 1;
                    if !want.is_empty() {
                        stats.sub_views_nonempty += 1;
                    }
                }
                if !def.q.order.is_empty() || def.q.limit.is_some() || def.q.start.is_some() {
                    stats.windowed += 1;
                }
                if want != got {
                    // What the engine holds for the records in dispute.
                    let detail: Vec<String> = want
                        .symmetric_difference(&got)
                        .map(|r| match engine.record(r) {
                            Some(v) => format!("{r} = {}", lit(&v)),
                            None => format!("{r} unknown"),
                        })
                        .collect();
                    let mut f = fail(Kind::Mismatch, si, Some(*di), detail.join("; "));
                    f.surreal = want;
                    f.engine = got;
                    return Err(f);
                }
                if *edges != got_versions {
                    let detail = format!(
                        "the edges implied by the deltas differ from the result set (record@version)\n\
                         -- from deltas: [{}]\n-- engine:      [{}]",
                        edge_text(edges),
                        edge_text(&got_versions)
                    );
                    return Err(fail(Kind::Delta, si, Some(*di), detail));
                }
            }
        }
        Ok(())
    }

    /// Smaller cases that may still fail the same way.
    fn candidates(case: &Case) -> Vec<Case> {
        let mut out = Vec::new();
        // Whole steps, later ones first.
        for i in (0..case.steps.len()).rev() {
            let mut c = case.clone();
            c.steps.remove(i);
            out.push(c);
        }
        // Whole views.
        for d in 0..case.views.len() {
            if case.views[d].is_some() {
                let mut c = case.clone();
                c.views[d] = None;
                c.steps
                    .retain(|s| !matches!(s, Step::Register(x) | Step::Unregister(x) if *x == d));
                out.push(c);
            }
        }
        // Single writes; a batch split in two.
        for (i, s) in case.steps.iter().enumerate() {
            if let Step::Batch(ws) = s
                && ws.len() > 1
            {
                for j in 0..ws.len() {
                    let mut c = case.clone();
                    if let Step::Batch(ws) = &mut c.steps[i] {
                        ws.remove(j);
                    }
                    out.push(c);
                }
                let mut c = case.clone();
                let (a, b) = ws.split_at(ws.len() / 2);
                c.steps[i] = Step::Batch(a.to_vec());
                c.steps.insert(i + 1, Step::Batch(b.to_vec()));
                out.push(c);
            }
        }
        // Simpler queries and fewer params.
        for (d, def) in case.views.iter().enumerate() {
            let Some(def) = def else { continue };
            for q in def.q.shrinks() {
                let mut c = case.clone();
                let v = c.views[d].as_mut().expect("checked");
                v.q = q;
                v.prune_params();
                out.push(c);
            }
        }
        // Simpler records: drop a field, or simplify its value.
        for (i, s) in case.steps.iter().enumerate() {
            let Step::Batch(ws) = s else { continue };
            for (j, w) in ws.iter().enumerate() {
                let Some(content) = &w.content else { continue };
                for (k, (_, v)) in content.iter().enumerate() {
                    let mut simpler = vec![None];
                    match v {
                        Value::Array(a) if !a.is_empty() => {
                            for x in 0..a.len() {
                                let mut a2 = a.clone();
                                a2.remove(x);
                                simpler.push(Some(Value::Array(a2)));
                            }
                        }
                        Value::Object(o) if !o.is_empty() => {
                            for x in 0..o.len() {
                                let mut o2 = o.clone();
                                o2.remove_at(x);
                                simpler.push(Some(Value::Object(o2)));
                            }
                        }
                        _ => {}
                    }
                    for sv in simpler {
                        let mut c = case.clone();
                        if let Step::Batch(ws) = &mut c.steps[i]
                            && let Some(content) = &mut ws[j].content
                        {
                            match sv {
                                None => content.remove_at(k),
                                Some(v) => content.set_at(k, v),
                            }
                        }
                        out.push(c);
                    }
                }
            }
        }
        out
    }

    async fn shrink(&self, mut case: Case, mut failure: Failure) -> (Case, Failure, usize) {
        let mut runs = 0;
        case.steps.truncate(failure.step + 1);
        'outer: loop {
            for cand in Self::candidates(&case) {
                if runs >= SHRINK_BUDGET {
                    break 'outer;
                }
                runs += 1;
                if let Err(f) = self.run(&cand, &mut Stats::default()).await
                    && f.kind == failure.kind
                {
                    case = cand;
                    case.steps.truncate(f.step + 1);
                    failure = f;
                    continue 'outer;
                }
            }
            break;
        }
        (case, failure, runs)
    }
}

// ===========================================================================
// Reporting
// ===========================================================================

fn ids(set: &BTreeSet<RecordId>) -> String {
    let v: Vec<String> = set.iter().map(|r| r.to_string()).collect();
    format!("[{}]", v.join(", "))
}

fn repro(seed: u64, index: u64, case: &Case, f: &Failure, runs: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n======== differential failure: {:?} (seed {seed}, case {index}) ========",
        f.kind
    );
    let _ = writeln!(
        s,
        "rerun: SSP_DIFF_SEED={seed} SSP_DIFF_ONLY={index} cargo test --test differential -- --nocapture"
    );
    let _ = writeln!(s, "(shrunk in {runs} runs)");
    if let Some(slack) = case.window_slack {
        let _ = writeln!(s, "(engine windows keep {slack} matches past their end)");
    }
    let _ = writeln!(
        s,
        "-- SurrealQL, to paste into `surreal sql`. Each `-- [step n] batch` is one engine batch;\n\
         -- the engine.register/unregister lines are what SSP was told between them."
    );
    let _ = writeln!(s, "REMOVE TABLE IF EXISTS t; REMOVE TABLE IF EXISTS u;");
    for (i, step) in case.steps.iter().enumerate() {
        match step {
            Step::Batch(ws) => {
                let _ = writeln!(s, "-- [step {i}] batch");
                for w in ws {
                    match &w.content {
                        Some(c) => {
                            let _ = writeln!(
                                s,
                                "UPSERT {} CONTENT {};",
                                w.id,
                                lit(&Value::Object(c.clone()))
                            );
                        }
                        None => {
                            let _ = writeln!(s, "DELETE {};", w.id);
                        }
                    }
                }
            }
            Step::Register(d) => {
                if let Some(def) = &case.views[*d] {
                    let _ = writeln!(
                        s,
                        "-- [step {i}] engine.register(\"{}\"): {}   params {}",
                        def.id,
                        def.sql(),
                        serde_json::Value::Object(def.engine_params())
                    );
                }
            }
            Step::Unregister(d) => {
                if let Some(def) = &case.views[*d] {
                    let _ = writeln!(s, "-- [step {i}] engine.unregister(\"{}\")", def.id);
                }
            }
        }
    }
    if let Some(def) = f.view.and_then(|d| case.views[d].as_ref()) {
        let _ = writeln!(s, "-- view \"{}\", checked after step {}:", def.id, f.step);
        for (k, v) in &def.params {
            let _ = writeln!(s, "LET ${k} = {};", lit(v));
        }
        let _ = writeln!(s, "{};", def.sql());
        let _ = writeln!(
            s,
            "-- engine params (JSON): {}",
            serde_json::Value::Object(def.engine_params())
        );
    }
    match f.kind {
        Kind::Mismatch => {
            let _ = writeln!(s, "-- SurrealDB: {}", ids(&f.surreal));
            let _ = writeln!(s, "-- engine:    {}", ids(&f.engine));
            let only_s: BTreeSet<RecordId> = f.surreal.difference(&f.engine).cloned().collect();
            let only_e: BTreeSet<RecordId> = f.engine.difference(&f.surreal).cloned().collect();
            let _ = writeln!(
                s,
                "-- only in SurrealDB: {}   only in engine: {}",
                ids(&only_s),
                ids(&only_e)
            );
            let _ = writeln!(s, "-- the engine holds: {}", f.detail);
        }
        Kind::Delta => {
            let _ = writeln!(s, "-- {}", f.detail);
            if !f.surreal.is_empty() || !f.engine.is_empty() {
                let _ = writeln!(s, "-- from deltas / expected: {}", ids(&f.surreal));
                let _ = writeln!(s, "-- engine:                 {}", ids(&f.engine));
            }
        }
        Kind::Rejected | Kind::Surreal => {
            let _ = writeln!(s, "-- error: {}", f.detail);
        }
    }
    s
}

// ===========================================================================
// The test
// ===========================================================================

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name} must be an integer, got {v:?}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_agrees_with_surrealdb() {
    let seed = env_u64("SSP_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("SSP_DIFF_CASES").unwrap_or(DEFAULT_CASES);
    let only = env_u64("SSP_DIFF_ONLY");
    let range = match only {
        Some(i) => i..i + 1,
        None => 0..cases,
    };

    let db = surrealdb::engine::any::connect("mem://")
        .await
        .expect("embedded SurrealDB");
    db.use_ns("diff").use_db("diff").await.expect("ns/db");
    let runner = Runner { db };

    let started = Instant::now();
    let mut stats = Stats::default();
    let mut failures: Vec<String> = Vec::new();
    for i in range {
        let case = Gen::new(seed, i).case();
        if std::env::var("SSP_DIFF_DUMP").is_ok() {
            for v in case.views.iter().flatten() {
                eprintln!(
                    "DUMP {} {}",
                    v.sql(),
                    serde_json::Value::Object(v.engine_params())
                );
            }
        }
        stats.cases += 1;
        if let Err(f) = runner.run(&case, &mut stats).await {
            let (small, f, runs) = runner.shrink(case, f).await;
            let text = repro(seed, i, &small, &f, runs);
            eprintln!("{text}");
            failures.push(text);
            if failures.len() >= MAX_FAILURES {
                break;
            }
        }
    }
    eprintln!(
        "differential: seed {seed:#x}: {} cases, {} steps, {} writes, {} view checks \
         ({} non-empty; {} of views with subqueries, {} of them non-empty, {} with subquery records; \
         {} windowed) in {:.1?}; {} failure(s)",
        stats.cases,
        stats.steps,
        stats.writes,
        stats.checks,
        stats.nonempty,
        stats.sub_views,
        stats.sub_views_nonempty,
        stats.with_sub_records,
        stats.windowed,
        started.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} differential failure(s); the shrunk reproductions are printed above",
        failures.len()
    );
}
