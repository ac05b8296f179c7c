//! The random generator of cases.

use super::*;

// ===========================================================================
// Generator
// ===========================================================================

/// The engine's key for an array or object key, as the change worker makes it.
pub(crate) fn composite_key(key: sdb::RecordIdKey) -> Key {
    record_id_from_surreal(&sdb::RecordId::new("t", key))
        .expect("not a range")
        .key
}

pub(crate) const STRS: &[&str] = &[
    "", "a", "A", "B", "b", "ab", "abc", "Ba", "10", "9", "x y", "é", "a b",
];
pub(crate) const PREFIXES: &[&str] = &["", "a", "A", "b", "B", "ab", "1", "9", "é", "x"];
pub(crate) const FLOATS: &[f64] = &[0.5, 1.0, 2.5, -1.5, 3.0, 4.75, 10.5, 0.0, -0.0, 0.1];
/// Numbers where int/float comparison needs care (beyond 2^53, at i64::MAX).
pub(crate) const BIG_INTS: &[i64] = &[
    9_007_199_254_740_993,
    -9_007_199_254_740_993,
    i64::MAX,
    i64::MIN,
];
pub(crate) const BIG_FLOATS: &[f64] = &[
    9_007_199_254_740_992.0,
    9.223_372_036_854_776e18,
    -9.223_372_036_854_776e18,
    1e300,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];
/// Decimals: equal to ints (`1`, `3`), to floats only approximately (`0.1`,
/// `1.5`), beyond f64's precision (`1.00000000000000000001`, `2^53 + 1`),
/// with trailing zeros (`2.50 = 2.5`).
pub(crate) const DECIMALS: &[&str] = &[
    "0",
    "1",
    "3",
    "1.5",
    "-1.5",
    "0.1",
    "2.50",
    "0.5",
    "1.00000000000000000001",
    "9007199254740993",
];
/// Durations in nanoseconds: zero (falsy), and values whose text sorts
/// unlike their length (`1h` < `30m` as text).
pub(crate) const DURATIONS_NS: &[u64] = &[
    0,
    1_000_000,
    30_000_000_000,
    90_000_000_000,
    1_800_000_000_000,
    3_600_000_000_000,
    86_400_000_000_000,
];
pub(crate) const UUIDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "0190fe58-8c5b-7d0c-9d5e-7b7a1c2f4e3a",
    "0190fe58-8c5b-7d0c-9d5e-7b7a1c2f4e3b",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
];
pub(crate) const DATES: &[&str] = &[
    "2024-01-01T00:00:00Z",
    "2024-01-02T00:00:00Z",
    "2023-06-15T12:30:00Z",
];

/// The values of `t.when` that are datetimes: `DATES`, and halfway
/// between the instants of `CLOCKS`.
pub(crate) const WHEN_DATES: &[&str] = &[
    "2024-01-01T00:00:00Z",
    "2024-01-02T00:00:00Z",
    "2023-06-15T12:30:00Z",
    "2023-12-31T06:00:00Z",
    "2024-01-01T06:00:00Z",
    "2024-01-02T06:00:00Z",
];

/// The instants the runner's clock takes, in order: the dates of `DATES`
/// moved by the offsets of `CLOCK_OFFSETS`, and 1 ns after some, where
/// `>` and `>=` part.
pub(crate) const CLOCKS: &[&str] = &[
    "2023-06-14T12:30:00Z",
    "2023-06-15T12:30:00Z",
    "2023-06-15T12:30:00.000000001Z",
    "2023-12-31T00:00:00Z",
    "2023-12-31T12:00:00Z",
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00.000000001Z",
    "2024-01-01T12:00:00Z",
    "2024-01-02T00:00:00Z",
    "2024-01-02T00:00:00.000000001Z",
    "2024-01-02T12:00:00Z",
    "2024-01-03T00:00:00Z",
    "2024-01-03T00:00:00.000000001Z",
    "2025-01-01T00:00:00Z",
];

/// `time::now()` moved by these (the text after it, and the shift).
pub(crate) const CLOCK_OFFSETS: &[(&str, i64)] = &[
    ("", 0),
    (" - 1d", -86_400),
    (" + 1d", 86_400),
    (" - 12h", -43_200),
    (" + 12h", 43_200),
    (" - 200d", -17_280_000),
];

/// `title` is on every record and always a string: `string::starts_with`
/// makes SurrealDB fail the whole query on any other argument (NONE and NULL
/// included), which no result set can mirror, so it is only used on `title`.
/// Likewise `lim` is never negative nor a non-number (SurrealDB fails the
/// query on such a `LIMIT`/`START`), so it drives `LIMIT $parent.lim`.
pub(crate) const T_FIELDS: &[&str] = &[
    "title", "score", "name", "flag", "tags", "obj", "link", "links", "when", "lim", "ttl",
];
pub(crate) const U_FIELDS: &[&str] = &["title", "score", "name", "tags", "owner", "friend", "lim"];
pub(crate) const T_PATHS: &[&str] = &[
    "score", "name", "title", "flag", "tags", "tags[0]", "obj", "obj.b", "obj.c.d", "link",
    "links", "when", "ttl", "id", "nope",
];
pub(crate) const U_PATHS: &[&str] = &[
    "score", "name", "title", "tags", "owner", "friend", "id", "nope",
];
pub(crate) const T_ORDER: &[&str] = &[
    "score", "name", "title", "flag", "obj.b", "link", "id", "tags", "when", "ttl", "obj", "nope",
];
pub(crate) const U_ORDER: &[&str] = &["score", "name", "title", "friend", "owner", "id", "tags"];
pub(crate) const CMP_OPS: &[Op] = &[
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

/// Paths through record links (`t.link` holds a `u` or a `t` id, `t.links`
/// an array or set of `u` ids, `u.owner` a `t` id, `u.friend` a `u` id):
/// SurrealDB fetches the linked record; so does the engine. Only in a
/// view's own `WHERE` and `ORDER BY`, never behind `$parent` (a subquery
/// bound through a link runs in the re-query tier).
pub(crate) const T_LINK_PATHS: &[&str] = &[
    "link.name",
    "link.score",
    "link.title",
    "link.friend.name",
    "links.name",
    "link.id",
    "link.owner.link.score",
    "links[0].name",
    // A field of the record's own id fetches the record itself.
    "id.title",
];
pub(crate) const U_LINK_PATHS: &[&str] = &[
    "owner.title",
    "owner.score",
    "friend.name",
    "friend.owner.name",
    "owner.links.score",
    "id.name",
];

pub(crate) fn link_paths(table: &str) -> &'static [&'static str] {
    if table == "t" {
        T_LINK_PATHS
    } else {
        U_LINK_PATHS
    }
}

pub(crate) fn paths(table: &str) -> &'static [&'static str] {
    if table == "t" { T_PATHS } else { U_PATHS }
}

pub(crate) fn is_eq_family(op: Op) -> bool {
    !matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge)
}

pub(crate) struct Ctx {
    pub(crate) table: &'static str,
    pub(crate) parent: Option<&'static str>,
    /// Whether `time::now()` may appear: not in a subquery on the right
    /// of `IN`, which SSP evaluates once.
    pub(crate) clock: bool,
}

pub(crate) struct Gen {
    pub(crate) rng: StdRng,
    pub(crate) next_param: usize,
    /// The data as generated so far, to derive updates from.
    pub(crate) model: BTreeMap<RecordId, Object>,
}

impl Gen {
    pub(crate) fn new(seed: u64, case: u64) -> Gen {
        let mixed = seed ^ case.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Gen {
            rng: StdRng::seed_from_u64(mixed),
            next_param: 0,
            model: BTreeMap::new(),
        }
    }

    pub(crate) fn p(&mut self, prob: f64) -> bool {
        self.rng.random_bool(prob)
    }

    pub(crate) fn n(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi)
    }

    pub(crate) fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.rng.random_range(0..xs.len())].clone()
    }

    pub(crate) fn weighted(&mut self, ws: &[u32]) -> usize {
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

    pub(crate) fn int_v(&mut self) -> Value {
        if self.p(0.03) {
            return int(self.pick(BIG_INTS));
        }
        // A narrow range, so that equal values (ties, `<=` at the bound) are common.
        int(self.n(-1, 6))
    }

    pub(crate) fn float_v(&mut self) -> Value {
        if self.p(0.05) {
            return float(self.pick(BIG_FLOATS));
        }
        float(self.pick(FLOATS))
    }

    pub(crate) fn str_v(&mut self) -> Value {
        string(self.pick(STRS))
    }

    pub(crate) fn date_v(&mut self) -> Value {
        let d = DateTime::parse_from_rfc3339(self.pick(DATES)).expect("a date");
        Value::datetime(d.with_timezone(&Utc))
    }

    pub(crate) fn dec_v(&mut self) -> Value {
        // Half the time one of the decimals f64 cannot tell from a
        // neighbour, where approximate comparison would show.
        let text = if self.p(0.5) {
            self.pick(&["1.00000000000000000001", "0.1", "9007199254740993"])
        } else {
            self.pick(DECIMALS)
        };
        Value::decimal(text.parse().expect("a decimal"))
    }

    pub(crate) fn dur_v(&mut self) -> Value {
        Value::duration(std::time::Duration::from_nanos(self.pick(DURATIONS_NS)))
    }

    pub(crate) fn uuid_v(&mut self) -> Value {
        Value::uuid(uuid::Uuid::parse_str(self.pick(UUIDS)).expect("a uuid"))
    }

    /// Bytes or a geometry: data only (queries have no literal for them).
    pub(crate) fn blob_v(&mut self) -> Value {
        if self.p(0.5) {
            let n = self.n(0, 2) as usize;
            Value::Bytes((0..n).map(|i| [0u8, 7, 255][i]).collect())
        } else {
            let (x, y) = (self.n(-1, 1) as f64, self.pick(&[0.5, 1.0]));
            Value::Geometry(Box::new(sdb::Geometry::Point((x, y).into())))
        }
    }

    pub(crate) fn t_key(&mut self) -> Key {
        match self.weighted(&[80, 10, 4, 4, 2]) {
            0 => Key::Int(self.n(1, 7)),
            // `t:⟨7⟩` is a string key, distinct from `t:7`.
            1 => Key::String(self.pick(&["a", "B", "7"]).into()),
            2 => Key::Uuid(
                *uuid::Uuid::parse_str(self.pick(UUIDS))
                    .expect("a uuid")
                    .as_bytes(),
            ),
            // Array and object keys, compared by content (`[1] = [1f]`).
            3 => {
                let first = if self.p(0.5) {
                    sdb::Value::Number(sdb::Number::Int(self.n(1, 2)))
                } else {
                    sdb::Value::Number(sdb::Number::Float(1.0))
                };
                composite_key(sdb::RecordIdKey::Array(
                    vec![first, sdb::Value::String("a".into())].into(),
                ))
            }
            _ => {
                let mut o = sdb::Object::new();
                o.insert(
                    "a".to_owned(),
                    sdb::Value::Number(sdb::Number::Int(self.n(1, 2))),
                );
                composite_key(sdb::RecordIdKey::Object(o))
            }
        }
    }

    pub(crate) fn u_key(&mut self) -> Key {
        if self.p(0.1) {
            Key::String("x".into())
        } else {
            Key::Int(self.n(1, 5))
        }
    }

    pub(crate) fn t_ref(&mut self) -> Value {
        let k = self.t_key();
        thing("t", k)
    }

    pub(crate) fn u_ref(&mut self) -> Value {
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

    pub(crate) fn scalar(&mut self) -> Value {
        match self.weighted(&[4, 2, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1]) {
            0 => self.int_v(),
            1 => self.float_v(),
            2 => self.str_v(),
            3 => Value::Bool(self.p(0.5)),
            4 => Value::Null,
            5 => self.date_v(),
            6 => self.u_ref(),
            7 => self.t_ref(),
            8 => self.dec_v(),
            9 => self.dur_v(),
            10 => self.uuid_v(),
            _ => self.blob_v(),
        }
    }

    pub(crate) fn any(&mut self, depth: u32) -> Value {
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

    pub(crate) fn score(&mut self) -> Value {
        match self.weighted(&[42, 18, 20, 20]) {
            0 => self.int_v(),
            1 => self.float_v(),
            2 => self.dec_v(),
            _ => self.any(1),
        }
    }

    pub(crate) fn name(&mut self) -> Value {
        if self.p(0.8) {
            self.str_v()
        } else {
            self.scalar()
        }
    }

    pub(crate) fn flag(&mut self) -> Value {
        match self.weighted(&[60, 10, 10, 10, 10]) {
            0 => Value::Bool(self.p(0.5)),
            1 => int(self.n(0, 1)),
            2 => string(self.pick(&["", "a"])),
            3 => Value::Null,
            _ => self.any(1),
        }
    }

    pub(crate) fn tag(&mut self) -> Value {
        match self.weighted(&[6, 2, 1, 1]) {
            0 => self.str_v(),
            1 => int(self.n(0, 3)),
            2 => self.u_ref(),
            _ => Value::Null,
        }
    }

    pub(crate) fn tags(&mut self) -> Value {
        match self.weighted(&[60, 12, 10, 20]) {
            0 => {
                let n = self.n(0, 4);
                Value::Array((0..n).map(|_| self.tag()).collect())
            }
            // A set (a `set<T>` field): SurrealDB orders and deduplicates it.
            1 => {
                let n = self.n(0, 4);
                Value::Set((0..n).map(|_| self.tag()).collect())
            }
            2 => self.str_v(),
            _ => self.any(1),
        }
    }

    pub(crate) fn obj_b(&mut self) -> Value {
        if self.p(0.75) {
            int(self.n(0, 4))
        } else {
            self.str_v()
        }
    }

    pub(crate) fn obj_d(&mut self) -> Value {
        if self.p(0.6) {
            Value::Bool(self.p(0.5))
        } else {
            int(self.n(0, 2))
        }
    }

    pub(crate) fn obj(&mut self) -> Value {
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

    pub(crate) fn link(&mut self) -> Value {
        match self.weighted(&[80, 6, 6, 8]) {
            0 => self.u_ref(),
            1 => self.t_ref(),
            2 => Value::Null,
            _ => self.scalar(),
        }
    }

    pub(crate) fn links(&mut self) -> Value {
        if self.p(0.7) {
            let n = self.n(0, 3);
            // Now and then NONE or a value that is no record id among the
            // links: `(SELECT * FROM $parent.links)[0]` skips NONE and NULL
            // and stops at any other value (a row of its own).
            Value::Array(
                (0..n)
                    .map(|_| match self.weighted(&[16, 1, 1, 2]) {
                        0 => self.u_ref(),
                        1 => Value::None,
                        2 => Value::Null,
                        _ => self.scalar(),
                    })
                    .collect(),
            )
        } else if self.p(0.35) {
            let n = self.n(0, 3);
            Value::Set((0..n).map(|_| self.u_ref()).collect())
        } else {
            self.scalar()
        }
    }

    pub(crate) fn field_value(&mut self, table: &str, field: &str) -> Value {
        match (table, field) {
            (_, "score") => self.score(),
            (_, "name") => self.name(),
            (_, "title") => self.str_v(),
            // NULL, or a number that SurrealDB truncates to a usize.
            (_, "lim") => match self.weighted(&[15, 50, 20, 15]) {
                0 => Value::Null,
                1 => int(self.n(0, 3)),
                2 => float(self.pick(&[0.5, 1.9, 2.5, 0.0])),
                _ => Value::decimal(self.pick(&["0", "1.9", "2.50"]).parse().expect("a decimal")),
            },
            (_, "flag") => self.flag(),
            (_, "tags") => self.tags(),
            (_, "obj") => self.obj(),
            (_, "link") => self.link(),
            (_, "links") => self.links(),
            (_, "when") => {
                if self.p(0.8) {
                    // Dates the runner's clock passes (`CLOCKS`), in time
                    // windows (`clock_atom`).
                    let d = self.pick(WHEN_DATES);
                    Value::datetime(
                        DateTime::parse_from_rfc3339(d)
                            .expect("a date")
                            .with_timezone(&Utc),
                    )
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
            (_, "ttl") => {
                if self.p(0.75) {
                    self.dur_v()
                } else {
                    self.scalar()
                }
            }
            _ => self.scalar(),
        }
    }

    pub(crate) fn link_u(&mut self) -> Value {
        if self.p(0.85) {
            self.u_ref()
        } else {
            self.scalar()
        }
    }

    pub(crate) fn content(&mut self, table: &str) -> Object {
        let (fields, probs): (&[&str], &[f64]) = if table == "t" {
            (
                T_FIELDS,
                &[1.0, 0.88, 0.85, 0.8, 0.75, 0.7, 0.8, 0.5, 0.7, 0.6, 0.5],
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

    /// A record id of `table`: with probability `existing`, one the data
    /// holds so far (if any), else a fresh key, which may exist too.
    pub(crate) fn record_of(&mut self, table: &'static str, existing: f64) -> RecordId {
        let held: Vec<RecordId> = self
            .model
            .keys()
            .filter(|r| r.table.as_str() == table)
            .cloned()
            .collect();
        if !held.is_empty() && self.p(existing) {
            return self.pick(&held);
        }
        let k = if table == "t" {
            self.t_key()
        } else {
            self.u_key()
        };
        RecordId::new(table, k)
    }

    /// A write to the relation table `r` (`TYPE RELATION`): a new edge
    /// between a `t` or `u` record and another (either may be missing),
    /// its `w` changed (its `in` and `out` never change), the same again,
    /// or its deletion.
    pub(crate) fn edge_write(&mut self) -> Write {
        let id = RecordId::new("r", Key::Int(self.n(1, 6)));
        let content = match self.model.get(&id).cloned() {
            Some(old) => match self.weighted(&[55, 10, 35]) {
                0 => {
                    let mut o = old;
                    o.insert("w".into(), int(self.n(0, 3)));
                    Some(o)
                }
                1 => Some(old),
                _ => None,
            },
            None => {
                // Mostly records that exist, so that traversals find them.
                let end = |g: &mut Gen| {
                    let table = if g.p(0.5) { "t" } else { "u" };
                    Value::thing(g.record_of(table, 0.85))
                };
                let from = end(self);
                let to = end(self);
                let mut pairs: Vec<(ssp::engine::value::FieldName, Value)> =
                    vec![("in".into(), from), ("out".into(), to)];
                if self.p(0.8) {
                    pairs.push(("w".into(), int(self.n(0, 3))));
                }
                Some(Object::from_pairs(pairs))
            }
        };
        match &content {
            Some(c) => self.model.insert(id.clone(), c.clone()),
            None => self.model.remove(&id),
        };
        Write { id, content }
    }

    pub(crate) fn write(&mut self) -> Write {
        if self.p(0.12) {
            return self.edge_write();
        }
        let table = if self.p(0.6) { "t" } else { "u" };
        let id = self.record_of(table, 0.7);
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
            None => {
                // SurrealDB deletes a record's edges with it.
                self.model.retain(|k, v| {
                    k.table.as_str() != "r"
                        || !["in", "out"]
                            .iter()
                            .any(|f| matches!(v.get(f), Some(Value::Thing(t)) if **t == id))
                });
                self.model.remove(&id)
            }
        };
        Write { id, content }
    }

    pub(crate) fn batch(&mut self, first: bool) -> Vec<Write> {
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
    pub(crate) fn new_param(&mut self, v: Value, params: &mut BTreeMap<String, Value>) -> Ex {
        self.new_named_param("p", v, params)
    }

    pub(crate) fn new_named_param(
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
    /// Object literals are outside the supported subset, so a
    /// value holding an object becomes a param, or else is replaced.
    pub(crate) fn operand(
        &mut self,
        v: Value,
        eq_family: bool,
        params: &mut BTreeMap<String, Value>,
    ) -> Ex {
        let param_ok = !contains_typed(&v) && (eq_family || !contains_thing(&v));
        if self.p(0.01) {
            // An unbound param is NONE on both sides.
            return Ex::Param("unbound".into());
        }
        if param_ok && (contains_object(&v) || self.p(0.3)) {
            self.new_param(v, params)
        } else if contains_object(&v) || contains_unwritable(&v) {
            let s = self.scalar();
            self.operand(s, eq_family, params)
        } else {
            Ex::Lit(v)
        }
    }

    /// A value to compare `path` of `table` with: mostly of the field's own
    /// kind, sometimes anything.
    pub(crate) fn value_for(&mut self, table: &str, path: &str) -> Value {
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
            // Through a link: a value of the last field, of the linked table.
            f if link_paths(table).contains(&f) => {
                let last = f.rsplit('.').next().unwrap_or(f);
                let linked = if f.contains("owner") && !f.contains("friend") {
                    "t"
                } else {
                    "u"
                };
                if last == "id" {
                    self.u_ref()
                } else {
                    self.field_value(linked, last)
                }
            }
            f => self.field_value(table, f),
        }
    }

    pub(crate) fn array_for(&mut self, table: &str, path: &str) -> Value {
        let n = self.n(0, 3);
        Value::Array((0..n).map(|_| self.value_for(table, path)).collect())
    }

    /// `$pN.path` where `$pN` holds a record id (of `u` mostly, which
    /// batches change often): SurrealDB fetches the record each time; the
    /// engine reads it from its store and follows its changes.
    pub(crate) fn record_param_path(&mut self, params: &mut BTreeMap<String, Value>) -> Ex {
        let (target, path) = if self.p(0.7) {
            let path = self.pick(&[
                "name",
                "score",
                "title",
                "id",
                "tags",
                "friend",
                "friend.name",
                "owner.title",
                "owner.link.score",
            ]);
            (self.u_ref(), path)
        } else {
            let path = self.pick(&[
                "title",
                "score",
                "name",
                "link",
                "link.name",
                "links",
                "links.name",
                "id",
                "obj.b",
            ]);
            (self.t_ref(), path)
        };
        match self.new_param(target, params) {
            Ex::Param(name) => Ex::Param(format!("{name}.{path}")),
            other => other,
        }
    }

    pub(crate) fn parent_ref(&mut self, parent: &str) -> Ex {
        let f = self.pick(paths(parent));
        Ex::Param(format!("parent.{f}"))
    }

    pub(crate) fn cond(
        &mut self,
        ctx: &Ctx,
        depth: u32,
        params: &mut BTreeMap<String, Value>,
    ) -> Ex {
        if depth > 0 && self.p(0.45) {
            match self.weighted(&[40, 40, 10, 10, 3]) {
                i @ (0 | 1) => {
                    let op = if i == 0 { Op::And } else { Op::Or };
                    let l = self.cond(ctx, depth - 1, params);
                    let r = self.cond(ctx, depth - 1, params);
                    let paren = self.p(0.5);
                    Ex::Bin(op, Box::new(l), Box::new(r), paren)
                }
                2 => Ex::Not(Box::new(self.cond(ctx, depth - 1, params))),
                3 => Ex::NotFn(Box::new(self.cond(ctx, depth - 1, params))),
                // `fn::not_(cond)`: a condition passed to a user function.
                _ => Ex::Call("not_", vec![self.cond(ctx, depth - 1, params)]),
            }
        } else {
            self.atom(ctx, params)
        }
    }

    pub(crate) fn atom(&mut self, ctx: &Ctx, params: &mut BTreeMap<String, Value>) -> Ex {
        let table = ctx.table;
        let ps = paths(table);
        let clock_p = if table == "t" && ctx.parent.is_none() {
            0.15
        } else {
            0.05
        };
        if ctx.clock && self.p(clock_p) {
            return self.clock_atom(table);
        }
        if self.p(0.04) {
            return self.key_fn_atom(ctx, params);
        }
        if self.p(0.035) {
            return self.value_sub_atom(ctx, params);
        }
        if self.p(0.04) {
            return self.fn_atom(ctx, params);
        }
        if ctx.table != "r" && self.p(0.05) {
            return self.graph_in_atom(params);
        }
        let parent_w = if ctx.parent.is_some() { 20 } else { 0 };
        match self.weighted(&[40, 5, 14, 12, 8, 5, 6, 6, 8, parent_w]) {
            // field op value
            0 | 1 => {
                let f = if self.p(0.15) {
                    self.pick(link_paths(table))
                } else {
                    self.pick(ps)
                };
                let op = self.pick(CMP_OPS);
                let rhs = match ctx.parent {
                    Some(parent) if self.p(0.25) => self.parent_ref(parent),
                    _ if self.p(0.08) => self.record_param_path(params),
                    _ => {
                        let v = self.value_for(table, f);
                        self.operand(v, is_eq_family(op), params)
                    }
                };
                // `$this.score`: the row's field, as SurrealDB reads it.
                let f = if self.p(0.06) {
                    format!("$this.{f}")
                } else {
                    f.to_owned()
                };
                let mut e = Ex::bin(op, Ex::Field(f), rhs);
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
                if self.p(0.5) {
                    // `string::slice(title, a[, b]) = 'x'`: bounds either
                    // side of the titles' lengths, negative too.
                    let start = self.n(-4, 4);
                    let end = self.p(0.8).then(|| self.n(-3, 5));
                    let op = self.pick(&[Op::Eq, Op::Eq, Op::Ne, Op::Lt]);
                    // Mostly what some title's slice is, so that `=` holds
                    // for some rows (SurrealDB decides; this only aims).
                    let rhs = if self.p(0.7) {
                        let title = self.pick(STRS);
                        Ex::Lit(string(&slice_hint(title, start, end.unwrap_or(i64::MAX))))
                    } else {
                        arg
                    };
                    return Ex::bin(
                        op,
                        Ex::Slice(Box::new(Ex::Field(f.into())), start, end),
                        rhs,
                    );
                }
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
                match self.weighted(&[3, 2, 1, 1, 1]) {
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
                    3 => {
                        let back = if table == "t" { "link" } else { "owner" };
                        Ex::bin(
                            Op::Eq,
                            Ex::Field(back.into()),
                            Ex::Param("parent.id".into()),
                        )
                    }
                    // Two records' collections, arrays or sets:
                    // `tags CONTAINSANY $parent.tags`.
                    _ => {
                        let op = self.pick(&[Op::ContainsAny, Op::ContainsAll, Op::ContainsNone]);
                        Ex::bin(
                            op,
                            Ex::Field("tags".into()),
                            Ex::Param("parent.tags".into()),
                        )
                    }
                }
            }
        }
    }

    /// A user function of `runner::FUNCTIONS`, which SSP inlines:
    /// `fn::eq(score, $p1)`, `fn::unflagged($this)`, `fn::dig(obj) > 2`,
    /// `fn::starts(title, 'a')`.
    pub(crate) fn fn_atom(&mut self, ctx: &Ctx, params: &mut BTreeMap<String, Value>) -> Ex {
        let table = ctx.table;
        match self.weighted(&[
            4,
            3,
            2,
            if table == "t" { 5 } else { 0 },
            if table == "r" { 0 } else { 2 },
        ]) {
            i @ (0 | 1) => {
                let f = self.pick(paths(table));
                let v = self.value_for(table, f);
                let rhs = self.operand(v, true, params);
                let f = if self.p(0.3) {
                    format!("$this.{f}")
                } else {
                    f.to_owned()
                };
                let name = if i == 0 { "eq" } else { "ne" };
                Ex::Call(name, vec![Ex::Field(f), rhs])
            }
            2 => Ex::Call("unflagged", vec![Ex::Field("$this".into())]),
            // `fn::dig(obj)` is `array::first([obj]).b`: `obj.b`.
            3 => {
                let (name, arg, path) = self.pick(&[
                    ("dig", "obj", "obj.b"),
                    ("lastc", "obj", "obj.c.d"),
                    ("linkname", "link", "link.name"),
                    ("linkname", "link", "link.name"),
                ]);
                let op = self.pick(CMP_OPS);
                let v = self.value_for(table, path);
                let rhs = self.operand(v, is_eq_family(op), params);
                Ex::bin(op, Ex::Call(name, vec![Ex::Field(arg.into())]), rhs)
            }
            _ => {
                let prefix = string(self.pick(PREFIXES));
                let arg = if self.p(0.3) {
                    self.new_param(prefix, params)
                } else {
                    Ex::Lit(prefix)
                };
                Ex::Call("starts", vec![Ex::Field("title".into()), arg])
            }
        }
    }

    /// `record::id(id) = <key>`, `meta::tb($parent.id) != 'u'`, ...
    /// `f [NOT] IN (SELECT VALUE path FROM t|u [WHERE ..])`: an
    /// uncorrelated subquery, whose value changes with its table, not with
    /// the row.
    pub(crate) fn value_sub_atom(&mut self, ctx: &Ctx, params: &mut BTreeMap<String, Value>) -> Ex {
        let inner: &'static str = self.pick(&["t", "u"]);
        // Paths that meet the outer fields: ids, links, names, numbers.
        let path: &'static str = match self.n(0, 6) {
            0 | 1 => "id",
            2 => {
                if inner == "t" {
                    "link"
                } else {
                    "friend"
                }
            }
            3 => "name",
            4 => "score",
            // Through record links (`link.name`, `friend.owner.name`).
            5 => self.pick(link_paths(inner)),
            _ => self.pick(paths(inner)),
        };
        let cond = if self.p(0.8) {
            let inner_ctx = Ctx {
                table: inner,
                parent: None,
                clock: false,
            };
            let c = if self.p(0.7) {
                self.atom(&inner_ctx, params)
            } else {
                self.cond(&inner_ctx, 1, params)
            };
            Some(Box::new(c))
        } else {
            None
        };
        let f = match self.n(0, 3) {
            0 => "id",
            1 => {
                if ctx.table == "t" {
                    "link"
                } else {
                    "friend"
                }
            }
            _ => self.pick(paths(ctx.table)),
        };
        let op = self.pick(&[Op::In, Op::NotIn, Op::Inside]);
        Ex::bin(op, Ex::Field(f.into()), Ex::ValueSub(path, inner, cond))
    }

    /// `when > time::now() - 1d`, `time::now() <= when`: a time window,
    /// which changes its answer as the runner moves the clock (see
    /// `CLOCKS`). Mostly on `t.when`, a datetime four times in five; on
    /// other fields (never datetimes) the answer never changes.
    pub(crate) fn clock_atom(&mut self, table: &str) -> Ex {
        let f = match (table, self.weighted(&[70, 10, 20])) {
            ("t", 0) => "when",
            ("t", 1) => "link.when",
            _ => self.pick(paths(table)),
        };
        let op = self.pick(&[Op::Lt, Op::Le, Op::Gt, Op::Ge]);
        let now = Ex::Now(self.pick(CLOCK_OFFSETS));
        if self.p(0.3) {
            Ex::bin(op, now, Ex::Field(f.into()))
        } else {
            Ex::bin(op, Ex::Field(f.into()), now)
        }
    }

    /// `$p IN <-r<-u`, `t:1 NOT IN ->r->t`, `$p INSIDE ->r<-t`: whether a
    /// record (mostly one an edge may name) is among the ends of the edges
    /// of `r` at the row, a traversal from the row.
    pub(crate) fn graph_in_atom(&mut self, params: &mut BTreeMap<String, Value>) -> Ex {
        let first = if self.p(0.5) { "->" } else { "<-" };
        let second = match (self.p(0.8), first) {
            (true, a) => a,
            (false, "->") => "<-",
            (false, _) => "->",
        };
        let end: &'static str = self.pick(&["t", "u"]);
        // Mostly a record of the step's table, sometimes of the other one.
        let of = if self.p(0.85) {
            end
        } else if end == "t" {
            "u"
        } else {
            "t"
        };
        let v = if self.p(0.05) {
            self.scalar()
        } else {
            Value::thing(self.record_of(of, 0.85))
        };
        let lhs = if self.p(0.15) {
            // `$p.friend IN ...`: a param path through a record, which the
            // lowered subquery's filter reads (and follows the changes of).
            self.record_param_path(params)
        } else if self.p(0.5) && !contains_unwritable(&v) {
            Ex::Lit(v)
        } else {
            self.new_param(v, params)
        };
        let op = self.pick(&[Op::In, Op::NotIn, Op::Inside]);
        Ex::bin(op, lhs, Ex::Graph(format!("{first}r{second}{end}")))
    }

    pub(crate) fn key_fn_atom(&mut self, ctx: &Ctx, params: &mut BTreeMap<String, Value>) -> Ex {
        let arg = match ctx.parent {
            Some(_) if self.p(0.4) => Ex::Param("parent.id".into()),
            _ => Ex::Field("id".into()),
        };
        if self.p(0.65) {
            let name = self.pick(&["record::id", "meta::id"]);
            let key = if ctx.table == "t" {
                self.t_key()
            } else {
                self.u_key()
            };
            let op = self.pick(&[Op::Eq, Op::Eq, Op::Ne, Op::Lt, Op::Ge, Op::In]);
            let v = if op == Op::In {
                let other = self.t_key().to_value();
                Value::Array(thin_vec::thin_vec![key.to_value(), other])
            } else {
                key.to_value()
            };
            let rhs = self.operand(v, is_eq_family(op), params);
            Ex::bin(op, Ex::KeyFn(name, Box::new(arg)), rhs)
        } else {
            let name = self.pick(&["record::tb", "meta::tb", "record::table"]);
            let op = self.pick(&[Op::Eq, Op::Ne]);
            let t = Value::str(self.pick(&["t", "u"]));
            Ex::bin(op, Ex::KeyFn(name, Box::new(arg)), Ex::Lit(t))
        }
    }

    /// `FROM` records of `q.table` instead of the table: one id or a list,
    /// as a literal or a `$param`. Views are drawn before their data, so
    /// the ids come from the small key space the writes use: some come to
    /// exist, some never do.
    pub(crate) fn record_source(&mut self, q: &mut Query, params: &mut BTreeMap<String, Value>) {
        let table = q.table;
        let list = self.p(0.45);
        let n = if list { self.n(1, 3) as usize } else { 1 };
        let ids: Vec<RecordId> = (0..n).map(|_| self.record_of(table, 0.4)).collect();
        // Literal record ids take plain keys only; arrays and objects go
        // through a param (the engine refers those to the re-query tier).
        let composite = ids.iter().any(|r| matches!(r.key, Key::Composite(_)));
        let param = (composite || self.p(0.5)).then(|| {
            let v = if list {
                Value::Array(ids.iter().cloned().map(Value::thing).collect())
            } else {
                Value::thing(ids[0].clone())
            };
            let Ex::Param(name) = self.new_named_param("f", v, params) else {
                unreachable!("a param")
            };
            name
        });
        if list && ids.len() > 1 && self.p(0.8) {
            // A window over a list is cut in the list's order (re-query tier).
            q.limit = None;
            q.start = None;
        }
        q.from = Source::Ids { ids, list, param };
    }

    /// `FROM $fN.link`: the records a field of the record `$fN` names (`FROM
    /// $team.players`). The field holds, as the writes leave it, a record
    /// id of the rows' table or of the other one, a list of ids (empty
    /// too), NULL, a scalar, or nothing (the field or the record missing);
    /// SurrealDB reads it each time, the engine follows the record.
    pub(crate) fn param_path_source(
        &mut self,
        q: &mut Query,
        params: &mut BTreeMap<String, Value>,
    ) {
        let (table, field) = if q.table == "t" {
            ("u", "owner")
        } else if self.p(0.4) {
            ("u", "friend")
        } else {
            ("t", self.pick(&["link", "links"]))
        };
        // Mostly a record there is now, whose field names records.
        let holders: Vec<Value> = self
            .model
            .iter()
            .filter(|(k, o)| {
                k.table.as_str() == table
                    && matches!(o.get(field), Some(Value::Thing(_) | Value::Array(_)))
            })
            .map(|(k, _)| Value::thing(k.clone()))
            .collect();
        let start = if !holders.is_empty() && self.p(0.7) {
            self.pick(&holders)
        } else if table == "u" {
            self.u_ref()
        } else {
            self.t_ref()
        };
        let Ex::Param(name) = self.new_named_param("f", start, params) else {
            unreachable!("a param")
        };
        // `?? []` changes nothing there (NONE, NULL and `[]` give no row).
        let coalesce = if self.p(0.3) { " ?? []" } else { "" };
        q.from = Source::ParamPath(format!("${name}.{field}{coalesce}"));
    }

    /// `LIMIT $w + k`, `START ($w - 1) * m` (outer query only): the same
    /// window as a literal, bound from params; now and then a float param,
    /// which the engine leaves to SurrealDB.
    pub(crate) fn window_arithmetic(
        &mut self,
        q: &mut Query,
        params: &mut BTreeMap<String, Value>,
    ) {
        let lit = |e: &Option<Ex>| match e {
            Some(Ex::Lit(Value::Number(Number::Int(n)))) => Some(*n),
            _ => None,
        };
        if let Some(n) = lit(&q.limit)
            && self.p(0.15)
        {
            let k = self.n(0, n.min(2));
            let v = if self.p(0.1) {
                Value::Number(Number::Float((n - k) as f64 + 0.5))
            } else {
                int(n - k)
            };
            let w = self.new_named_param("w", v, params);
            q.limit = Some(Ex::Arith("+", Box::new(w), Box::new(Ex::Lit(int(k)))));
        }
        if let Some(n) = lit(&q.start)
            && self.p(0.15)
        {
            // `($w - 1) * m` with `m` 1 or 2: `n` when `m` divides it.
            let m = if n % 2 == 0 && n > 0 { self.n(1, 2) } else { 1 };
            let w = self.new_named_param("w", int(n / m + 1), params);
            let minus = Ex::Arith("-", Box::new(w), Box::new(Ex::Lit(int(1))));
            q.start = Some(Ex::Arith("*", Box::new(minus), Box::new(Ex::Lit(int(m)))));
        }
    }

    /// Now and then, `ORDER BY` an alias that renames the first order field
    /// (`SELECT ..., score AS rscore ... ORDER BY rscore`). Not for `id`:
    /// SurrealDB's rows then lose `id`, which the oracle reads.
    pub(crate) fn rename_order(&mut self, q: &mut Query) {
        // (An alias cannot hold an index: `links[0].name` keeps its name.)
        if !q.order.is_empty()
            && q.order[0].0 != "id"
            && !q.order[0].0.contains('[')
            && self.p(0.15)
        {
            let f = q.order[0].0.clone();
            q.key_fns.push(format!("{f} AS r{f}"));
            q.order[0].0 = format!("r{f}");
        }
    }

    /// Projections that do not decide membership: `OMIT`, `record::id(id)`;
    /// and `FETCH` of the link fields, which brings the linked records in.
    pub(crate) fn extras(&mut self, q: &mut Query) {
        if self.p(0.1) {
            // A linked record whole: `link.* AS rl`, or `link.*` in `link`.
            let (text, key) = self.pick(if q.table == "t" {
                &[
                    ("link.* AS rl", "rl"),
                    ("links.* AS rls", "rls"),
                    ("link.*", "link"),
                ]
            } else {
                &[
                    ("friend.* AS rf", "rf"),
                    ("owner.* AS ro", "ro"),
                    ("friend.*", "friend"),
                ]
            });
            // Not where the order reads (a renaming alias `r<path>` sorts on
            // `<path>`): ordering by a computed field is the re-query tier's.
            let sorted = q.order.iter().any(|(o, _)| {
                [o.as_str(), o.strip_prefix('r').unwrap_or(o)]
                    .iter()
                    .any(|o| *o == key || o.starts_with(&format!("{key}.")))
            });
            // `link.*` under its own name is fetched after the sort, which
            // reads the stored link (see `order_by_computed`): now and then
            // the order reads a path of it.
            let own_name = !text.contains(" AS ");
            if !sorted || own_name {
                q.key_fns.push(text.to_string());
                q.fetch_keys.push(key.to_string());
                if own_name && self.p(0.3) {
                    // `link.*, link.title`: a path of it, written again.
                    let f = self.pick(&["name", "score", "title", "friend.name"]);
                    let at = if self.p(0.5) {
                        q.key_fns.len()
                    } else {
                        q.key_fns.len() - 1
                    };
                    q.key_fns.insert(at, format!("{key}.{f}"));
                }
                if own_name && self.p(0.4) {
                    let f = self.pick(&["name", "score", "title"]);
                    let dir = self.pick(&[Dir::Default, Dir::Asc, Dir::Desc]);
                    q.order.insert(0, (format!("{key}.{f}"), dir));
                }
            }
        }
        if self.p(0.12) {
            let pool: &[&str] = if q.table == "t" {
                &["link", "links"]
            } else {
                &["friend", "owner"]
            };
            for _ in 0..self.n(1, 2) {
                let f = self.pick(pool).to_string();
                if !q.fetch.contains(&f) {
                    q.fetch.push(f);
                }
            }
            // `FETCH link.friend`: the link, and a link in what it fetched
            // (`t.link` and `t.links` name `u` records, `u.friend` a `u`,
            // `u.owner` a `t`, whose `link`/`links` name `u` ones again).
            if self.p(0.35) {
                let nested = self.pick(if q.table == "t" {
                    &[
                        "link.friend",
                        "link.owner",
                        "links.friend",
                        "link.owner.links",
                    ]
                } else {
                    &[
                        "friend.friend",
                        "friend.owner",
                        "owner.link",
                        "owner.links.friend",
                    ]
                });
                q.fetch.push(nested.to_string());
            }
            // `link.id, link.name ... FETCH link`: the row holds an object
            // (left as it is by `FETCH`) whose `id` is the linked record's.
            if !q.star && self.p(0.5) {
                let sorted = |f: &str| {
                    q.order.iter().any(|(o, _)| {
                        let o = o.strip_prefix('r').unwrap_or(o);
                        o == f || o.starts_with(&format!("{f}."))
                    })
                };
                let paths: Vec<String> = q
                    .fetch
                    .iter()
                    .filter(|f| !sorted(f) && !f.contains('.'))
                    .cloned()
                    .collect();
                for f in paths {
                    q.fields.retain(|x| *x != f);
                    if self.p(0.8) {
                        q.key_fns.push(format!("{f}.id"));
                    }
                    let other = self.pick(&["name", "title", "score"]);
                    q.key_fns.push(format!("{f}.{other}"));
                }
            }
        }
        if self.p(0.1) {
            let fields = if q.table == "t" { T_FIELDS } else { U_FIELDS };
            let mut pool: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            pool.extend(q.subs.iter().map(|s| s.alias.clone()));
            for _ in 0..self.n(1, 2) {
                let f = self.pick(&pool);
                if !q.omit.contains(&f) {
                    q.omit.push(f);
                }
            }
        }
        if self.p(0.1) && !q.value {
            // Values of the rows SSP does not evaluate: membership unchanged.
            let link = if q.table == "t" { "link" } else { "friend" };
            for _ in 0..self.n(1, 2) {
                let f = match self.n(0, 11) {
                    // Counts and values of subqueries: no records.
                    8 => "count(SELECT 1 FROM $parent<-r WHERE w > 1) AS cq".to_string(),
                    9 => "(SELECT VALUE record::id(id) FROM $parent->r->t) AS cv".to_string(),
                    10 => "count(SELECT * FROM u WHERE owner = $parent.id) AS cq".to_string(),
                    11 => format!("(SELECT VALUE name FROM u WHERE id = $parent.{link}) AS cv"),
                    0 => "->r->t AS cg".to_string(),
                    1 => "<-r<-u.id AS cg".to_string(),
                    2 => "<-r AS cg".to_string(),
                    3 => "count(<-r) AS cn".to_string(),
                    4 => "count(->r->u) AS cn".to_string(),
                    5 => "u:1 IN <-r<-u AS ci".to_string(),
                    // `record::id`/`meta::tb` of `id` never fail the query.
                    6 => {
                        let f = self.pick(&["record::id", "meta::tb"]);
                        format!(
                            "(SELECT {f}(id) AS k FROM u WHERE id = $parent.{link} LIMIT 1)[0].k AS cs"
                        )
                    }
                    _ => {
                        format!("(SELECT * FROM u WHERE id = $parent.{link} LIMIT 1)[0].name AS cs")
                    }
                };
                q.computed.push(f);
            }
        }
        if self.p(0.08) {
            let f = self.pick(&[
                "record::id(id) AS rid",
                "meta::id(id) AS rid",
                "record::tb(id) AS rtb",
                "meta::tb(id) AS rtb",
            ]);
            q.key_fns.push(f.into());
        }
    }

    /// Maps `t`'s field names to `u`'s equivalents.
    pub(crate) fn local(&mut self, table: &str, f: &'static str) -> &'static str {
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

    pub(crate) fn window(&mut self, q: &mut Query, params: &mut BTreeMap<String, Value>) {
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

    pub(crate) fn order(&mut self, table: &str, exclude: &[String]) -> Vec<(String, Dir)> {
        let pool = if table == "t" { T_ORDER } else { U_ORDER };
        let n = self.weighted(&[50, 30, 15, 5]) as i64;
        let mut out: Vec<(String, Dir)> = Vec::new();
        for _ in 0..n {
            let f = if self.p(0.12) {
                self.pick(link_paths(table))
            } else {
                self.pick(pool)
            };
            // An order path is projected, and SurrealDB will not write a
            // field into the row's `id`: `id.name` is for `WHERE` only.
            if f.starts_with("id.") {
                continue;
            }
            if exclude.iter().any(|e| e == f) || out.iter().any(|(g, _)| g == f) {
                continue;
            }
            let d = self.pick(&[Dir::Default, Dir::Asc, Dir::Desc, Dir::Desc]);
            out.push((f.into(), d));
        }
        out
    }

    pub(crate) fn projection(&mut self, q: &mut Query) {
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

    pub(crate) fn query(&mut self, params: &mut BTreeMap<String, Value>) -> Query {
        if self.p(0.04) {
            return self.edge_query(params);
        }
        if self.p(0.04) {
            return self.count_query(params);
        }
        if self.p(0.05) {
            // One record and its traversals: what they bring stands out.
            let table = if self.p(0.5) { "t" } else { "u" };
            let mut q = Query::empty(table);
            let id = self.record_of(table, 0.9);
            // (Array and object keys have no literal in SSP's queries.)
            if !matches!(id.key, Key::Composite(_)) {
                q.cond = Some(Ex::bin(
                    Op::Eq,
                    Ex::Field("id".into()),
                    Ex::Lit(Value::thing(id)),
                ));
            }
            for i in 0..self.n(1, 2) as usize {
                let s = if self.p(0.5) {
                    let mut s = self.parent_field_sub(table, 1, i);
                    if table == "t" && self.p(0.5) {
                        // The first record of an array: SurrealDB skips
                        // missing ones.
                        s.q.from = Source::ParentField("links");
                        s.index = Some(Pick::At(0));
                    }
                    s
                } else {
                    self.graph_sub(table, 1, i, params)
                };
                q.subs.push(s);
            }
            return q;
        }
        let table = if self.p(0.88) { "t" } else { "u" };
        let mut q = Query::empty(table);
        self.projection(&mut q);
        let ctx = Ctx {
            table,
            parent: None,
            clock: true,
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
            self.rename_order(&mut q);
        }
        self.window(&mut q, params);
        self.window_arithmetic(&mut q, params);
        if self.p(0.12) {
            self.record_source(&mut q, params);
            if self.p(0.5) {
                // Few of a handful of ids pass a condition too.
                q.cond = None;
            }
        } else if self.p(0.06) {
            self.param_path_source(&mut q, params);
            if self.p(0.5) {
                q.cond = None;
            }
        }
        // `ONLY` a list fails the query unless exactly one row comes out.
        let one_id = matches!(&q.from, Source::Ids { list: false, .. })
            || matches!(&q.from, Source::ParamPath(p) if !p.trim_end_matches(" ?? []").ends_with(".links"));
        let limit_one = matches!(q.limit, Some(Ex::Lit(Value::Number(Number::Int(0 | 1)))));
        if (one_id || (q.from == Source::Table && limit_one)) && self.p(0.3) {
            q.only = true;
        }
        if q.subs.is_empty() && self.p(0.06) {
            q.value = true;
            if self.p(0.5) {
                // Values that are not the rows' ids, evaluated or not.
                let link = self.local(table, "link");
                q.value_expr = Some(self.pick(&[
                    "name",
                    "score",
                    link,
                    "record::id(id)",
                    "count(<-r)",
                    "->r->t",
                    "count(->r->u)",
                ]));
            }
        } else {
            self.extras(&mut q);
        }
        self.hide_ids(&mut q);
        q
    }

    /// Now and then, rows without `id` (`SELECT name FROM t`), outside and
    /// in subqueries, unless `ORDER BY` sorts on the subquery's rows.
    fn hide_ids(&mut self, q: &mut Query) {
        if q.value || q.count.is_some() {
            return;
        }
        let shows_more = !q.fields.is_empty()
            || !q.subs.is_empty()
            || !q.key_fns.is_empty()
            || !q.computed.is_empty();
        if !q.star && shows_more && self.p(0.3) {
            q.hide_id = true;
        }
        let order = q.order.clone();
        for s in &mut q.subs {
            if !order
                .iter()
                .any(|(f, _)| f.split('.').next() == Some(s.alias.as_str()))
            {
                self.hide_ids(&mut s.q);
            }
        }
    }

    /// A subquery projection of a record of `parent`, at nesting `depth`.
    pub(crate) fn sub(
        &mut self,
        parent: &'static str,
        depth: u32,
        nth: usize,
        parent_star: bool,
        params: &mut BTreeMap<String, Value>,
    ) -> Sub {
        if self.p(0.14) {
            return self.graph_sub(parent, depth, nth, params);
        }
        if parent != "r" && self.p(0.12) {
            return self.parent_field_sub(parent, depth, nth);
        }
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
            clock: true,
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
                    index = Some(Pick::At(0));
                }
                if depth == 1 && parent_star && parent == "t" && self.p(0.3) {
                    // Shadow the link field itself, as `... AS author` does.
                    alias = "link".into();
                }
            }
            1 if self.p(0.3) => {
                // The records sharing a tag with the parent (arrays or sets
                // on either side): `tags CONTAINSANY $parent.tags`.
                let op = self.pick(&[Op::ContainsAny, Op::ContainsAll, Op::ContainsNone]);
                q.cond = Some(Ex::bin(
                    op,
                    Ex::Field("tags".into()),
                    Ex::Param("parent.tags".into()),
                ));
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
                self.rename_order(&mut q);
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
                self.rename_order(&mut q);
            }
            self.window(&mut q, params);
            if self.p(0.15) {
                index = Some(self.pick_index(&q, true));
            }
        }
        // A window read from the parent record (NONE/NULL count as 0).
        if shape != 0 && self.p(0.1) {
            q.limit = Some(Ex::Param("parent.lim".into()));
        }
        if shape != 0 && self.p(0.08) {
            q.start = Some(Ex::Param("parent.lim".into()));
        }
        self.extras(&mut q);
        Sub { q, index, alias }
    }

    /// A traversal from `$parent` over the relation table `r`, whose edges
    /// join `t` and `u` records either way (see [`Gen::edge_write`]):
    /// `$parent->r->t` / `$parent<-r<-u` (the records the edges name, in
    /// edge order, repeats included, with a `WHERE` on them and a window
    /// or `[0]`), `$parent->r` / `$parent<-r` (the edges, with `WHERE`,
    /// `ORDER BY` and a window on them), and from an edge, `$parent->t`.
    pub(crate) fn graph_sub(
        &mut self,
        parent: &'static str,
        depth: u32,
        nth: usize,
        params: &mut BTreeMap<String, Value>,
    ) -> Sub {
        let alias = format!("g{depth}{nth}");
        let arrow = if self.p(0.5) { "->" } else { "<-" };
        // In a subquery's `FROM`, `$this` is the row around it, as `$parent`.
        let from = if self.p(0.15) { "$this" } else { "$parent" };
        let mut index = None;
        if parent == "r" {
            let table = self.pick(&["t", "u"]);
            let mut q = Query::empty(table);
            self.projection(&mut q);
            q.from = Source::Graph(format!("{from}{arrow}{table}"));
            if self.p(0.7) {
                index = Some(Pick::At(0));
            }
            return Sub { q, index, alias };
        }
        if self.p(0.6) {
            let table: &'static str = self.pick(&["t", "u"]);
            let mut q = Query::empty(table);
            self.projection(&mut q);
            q.from = Source::Graph(format!("{from}{arrow}r{arrow}{table}"));
            if self.p(0.5) {
                let ctx = Ctx {
                    table,
                    parent: Some(parent),
                    clock: true,
                };
                q.cond = Some(self.cond(&ctx, 1, params));
            }
            self.window(&mut q, params);
            if self.p(0.35) {
                // (`[$]` of records in edge order is the re-query tier's.)
                index = Some(self.pick_index(&q, false));
            }
            return Sub { q, index, alias };
        }
        let mut q = Query::empty("r");
        q.from = Source::Graph(format!("{from}{arrow}r"));
        if self.p(0.5) {
            let op = self.pick(&[Op::Gt, Op::Le, Op::Eq, Op::Ne]);
            q.cond = Some(Ex::bin(
                op,
                Ex::Field("w".into()),
                Ex::Lit(int(self.n(0, 3))),
            ));
        }
        if self.p(0.4) {
            q.order = vec![("w".into(), self.pick(&[Dir::Default, Dir::Desc]))];
        }
        self.window(&mut q, params);
        if self.p(0.3) {
            index = Some(self.pick_index(&q, true));
        }
        Sub { q, index, alias }
    }

    /// `[0]`, `[1]`, or with `last` and no window, `[$]` (the last row:
    /// in the planner, the first of the order reversed, ties by id).
    fn pick_index(&mut self, q: &Query, last: bool) -> Pick {
        if last && q.limit.is_none() && q.start.is_none() && self.p(0.4) {
            Pick::Last
        } else if self.p(0.8) {
            Pick::At(0)
        } else {
            Pick::At(1)
        }
    }

    /// `(SELECT * FROM $parent.link)[0]`: the records a field of the parent
    /// names, as `FETCH` would: `t.link` a `u` or `t` id, `t.links` an array
    /// or set of `u` ids, `u.friend` a `u`, `u.owner` a `t`.
    pub(crate) fn parent_field_sub(&mut self, parent: &'static str, depth: u32, nth: usize) -> Sub {
        let (field, table): (&'static str, &'static str) = if parent == "t" {
            self.pick(&[("link", "u"), ("links", "u")])
        } else {
            self.pick(&[("friend", "u"), ("owner", "t")])
        };
        let mut q = Query::empty(table);
        self.projection(&mut q);
        q.from = Source::ParentField(field);
        let index = self.p(0.5).then_some(Pick::At(0));
        Sub {
            q,
            index,
            alias: format!("f{depth}{nth}"),
        }
    }

    /// A query over the edges themselves: `SELECT * FROM r [WHERE w ..]`
    /// with traversals from each edge to its ends.
    /// `SELECT count([arg]) [AS n] FROM t|u|$f->r [WHERE ...] GROUP ALL`:
    /// the records counted are the members.
    pub(crate) fn count_query(&mut self, params: &mut BTreeMap<String, Value>) -> Query {
        let (table, edges) = match self.weighted(&[45, 30, 25]) {
            0 => ("t", false),
            1 => ("u", false),
            _ => ("r", true),
        };
        let mut q = Query::empty(table);
        if edges {
            q.from = Source::Graph(self.edges_of_one(params));
            q.cond = self.edge_weight_cond();
        } else {
            let ctx = Ctx {
                table,
                parent: None,
                clock: true,
            };
            if self.p(0.6) {
                let depth = self.weighted(&[50, 35, 15]) as u32;
                q.cond = Some(self.cond(&ctx, depth, params));
            }
            // Not `$this`: SurrealDB refuses it in a `GROUP` select's
            // projection (the engine leaves such a view to it).
            let arg = self.p(0.4).then(|| self.atom(&ctx, params)).filter(|a| {
                let mut text = String::new();
                a.render(&mut text);
                !text.contains("$this")
            });
            q.count = Some(Count {
                arg,
                alias: self.p(0.3).then_some("n"),
            });
            return q;
        }
        q.count = Some(Count {
            arg: None,
            alias: self.p(0.3).then_some("n"),
        });
        q
    }

    /// `$f->r` / `$f<-r`: the edges of one record, mostly the end of an
    /// edge there is now, from which it leaves.
    pub(crate) fn edges_of_one(&mut self, params: &mut BTreeMap<String, Value>) -> String {
        let arrow = if self.p(0.5) { "->" } else { "<-" };
        let end = if arrow == "->" { "in" } else { "out" };
        let ends: Vec<Value> = self
            .model
            .iter()
            .filter(|(k, _)| k.table.as_str() == "r")
            .filter_map(|(_, o)| o.get(end).cloned())
            .collect();
        let start = if !ends.is_empty() && self.p(0.7) {
            self.pick(&ends)
        } else {
            let table = self.pick(&["t", "u"]);
            Value::thing(self.record_of(table, 0.85))
        };
        let Ex::Param(name) = self.new_named_param("f", start, params) else {
            unreachable!("a param")
        };
        format!("${name}{arrow}r")
    }

    /// Half the time, a condition on the edges' weight: `w > 2`, ...
    pub(crate) fn edge_weight_cond(&mut self) -> Option<Ex> {
        if !self.p(0.5) {
            return None;
        }
        let op = self.pick(&[Op::Gt, Op::Le, Op::Ne]);
        Some(Ex::bin(
            op,
            Ex::Field("w".into()),
            Ex::Lit(int(self.n(0, 3))),
        ))
    }

    pub(crate) fn edge_query(&mut self, params: &mut BTreeMap<String, Value>) -> Query {
        let mut q = Query::empty("r");
        if self.p(0.4) {
            // `FROM $f->r` / `$f<-r`: the edges of one record (mostly one
            // an edge names), in id order, under a window.
            q.from = Source::Graph(self.edges_of_one(params));
            self.window(&mut q, params);
        }
        q.cond = self.edge_weight_cond();
        for i in 0..self.n(1, 2) as usize {
            let s = self.graph_sub("r", 1, i, params);
            q.subs.push(s);
        }
        q
    }

    pub(crate) fn view(&mut self, id: String) -> ViewDef {
        let mut params = BTreeMap::new();
        let q = self.query(&mut params);
        ViewDef { id, q, params }
    }

    pub(crate) fn case(&mut self) -> Case {
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
        // The clock starts early in `CLOCKS` and moves on between steps.
        let mut clock = self.n(0, 4) as usize;
        steps.push(Step::Clock(clock));
        for (b, evs) in schedule.into_iter().enumerate() {
            steps.extend(evs);
            if b < nbatches {
                steps.push(Step::Batch(self.batch(b == 0)));
            }
            if clock + 1 < CLOCKS.len() && self.p(0.7) {
                clock = (clock + self.n(1, 3) as usize).min(CLOCKS.len() - 1);
                steps.push(Step::Clock(clock));
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

/// A guess at `string::slice(s, start, end)`, to aim the generated
/// comparisons at values some rows have (SurrealDB is the oracle).
fn slice_hint(s: &str, start: i64, end: i64) -> String {
    let n = s.chars().count() as i64;
    let from = if start < 0 { (n + start).max(0) } else { start };
    let to = if end < 0 { n + end } else { end.min(n) };
    s.chars()
        .skip(from as usize)
        .take((to - from).max(0) as usize)
        .collect()
}
