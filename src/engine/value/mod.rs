//! Values as the engine sees them, with SurrealDB 3.3's comparison and ordering.
//!
//! Records arrive from two directions: as JSON (`POST /ingest`, params) and as
//! native SurrealDB values (LIVE notifications, change feeds, snapshots). Both
//! are converted into this one [`Value`] type so that the engine evaluates a
//! `WHERE` clause exactly as SurrealDB would. The measured rules live in
//! `shared/spec/surrealql-semantics.md`; the ones that matter most:
//!
//! * one total order across types: NONE < NULL < bool < number < string <
//!   duration < datetime < uuid < array < set < object < geometry < bytes <
//!   record id (the order of SurrealDB's own `Value` enum);
//! * ints and floats compare numerically (`1 = 1.0`);
//! * strings compare byte-wise;
//! * record ids compare by table, then key, numeric keys first;
//! * the JSON rule: a string equals a record id when it is that id's text,
//!   because JSON has no other way to write a record link.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use surrealdb::types as sdb;
use surrealdb::types::Decimal;
use thin_vec::ThinVec;

mod object;
mod path;
pub(crate) use path::text_of_array_keyed_id;
pub mod surreal;

pub use object::Object;

/// A field name. Field names repeat across every record of a table, so they
/// are shared rather than allocated per record.
pub type FieldName = Arc<str>;

/// The field names of an object, sorted: its shape. Every stored record of a
/// table with the same fields shares one shape, so a record holds only its
/// values (a field name per field per record used to be a third of SSP's
/// memory). Shared by every object of that shape.
pub type Shape = Arc<Box<[FieldName]>>;

/// The text of a string value: shared, behind a thin (8-byte) pointer.
pub type Str = arcstr::ArcStr;

/// A record id as a value holds it: shared, behind a thin pointer. A record's
/// links (`author: user:42`) are mostly the same few ids.
pub type Thing = triomphe::Arc<RecordId>;

thread_local! {
    static LINK_FOLLOWED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a path was looked up through a record link (`author.name` where
/// `author` holds `user:1`) on this thread since the last call. SurrealDB
/// follows the link; the incremental engine cannot, so the view it
/// evaluates for must go to the re-query tier instead of differing.
pub fn take_link_followed() -> bool {
    LINK_FOLLOWED.with(|f| f.replace(false))
}

/// Notes that a path went through a record link the engine could not
/// follow (see [`take_link_followed`]).
pub fn note_link_followed() {
    LINK_FOLLOWED.with(|f| f.set(true));
}

pub use super::key::{
    Composite, IdError, Key, RESERVED_PREFIX, RecordId, TableName, is_reserved_table,
};

/// A number. SurrealDB keeps ints and floats apart but compares them by value.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Number {
    Int(i64),
    Float(#[serde(with = "float_repr")] f64),
}

/// Floats in the state file. JSON has no NaN or infinities, and serde_json
/// writes them as `null`, which then no longer reads back as a float: the
/// whole file failed to load. Finite floats stay JSON numbers (files written
/// before are read unchanged); the others are the strings `"NaN"`,
/// `"Infinity"` and `"-Infinity"`.
pub(crate) mod float_repr {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(f: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        match *f {
            f if f.is_finite() => serializer.serialize_f64(f),
            f if f.is_nan() => serializer.serialize_str("NaN"),
            f if f > 0.0 => serializer.serialize_str("Infinity"),
            _ => serializer.serialize_str("-Infinity"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr<'a> {
        Number(f64),
        #[serde(borrow)]
        Text(std::borrow::Cow<'a, str>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        match Repr::deserialize(deserializer)? {
            Repr::Number(f) => Ok(f),
            Repr::Text(t) => match t.as_ref() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                other => Err(D::Error::custom(format!("not a float: `{other}`"))),
            },
        }
    }
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// Numeric comparison across int and float, exact at every magnitude,
    /// as SurrealDB's `Ord for Number`: `-0.0 = 0.0`, and an int compares
    /// with a float by integer parts, then by the float's fraction.
    pub fn cmp_num(self, other: Number) -> Ordering {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a.cmp(&b),
            (Number::Int(a), Number::Float(b)) => cmp_int_float(a, b),
            (Number::Float(a), Number::Int(b)) => cmp_int_float(b, a).reverse(),
            (Number::Float(a), Number::Float(b)) => cmp_f64(a, b),
        }
    }

    /// The integer this number is exactly equal to, if any; used so that
    /// `1` and `1.0` (and `0` and `-0.0`) hash alike.
    fn as_exact_int(self) -> Option<i64> {
        // 2^63: the floats in [-2^63, 2^63) with no fraction are exactly i64s.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        match self {
            Number::Int(i) => Some(i),
            Number::Float(f) if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) => Some(f as i64),
            Number::Float(_) => None,
        }
    }
}

/// Floats in SurrealDB's total order: IEEE total order, except `-0.0 = 0.0`.
fn cmp_f64(a: f64, b: f64) -> Ordering {
    if a == 0.0 && b == 0.0 {
        Ordering::Equal
    } else {
        a.total_cmp(&b)
    }
}

fn cmp_int_float(a: i64, b: f64) -> Ordering {
    if !b.is_finite() {
        // An infinity (or NaN) of either sign is beyond every int.
        return if b.is_sign_positive() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // Both integer parts fit an i128 exactly (the cast saturates beyond).
    match i128::from(a).cmp(&(b as i128)) {
        Ordering::Equal => cmp_f64(0.0, b.fract()),
        o => o,
    }
}

impl PartialEq for Number {
    /// Content equality: `1` and `1.0` are the same number.
    fn eq(&self, other: &Self) -> bool {
        self.cmp_num(*other) == Ordering::Equal
    }
}

/// A SurrealQL value, with every type a record can hold in SurrealDB 3.3.5
/// except sets, tables, files, regexes and ranges (kept as their SurrealQL
/// text; see [`surreal::from_surreal`]).
///
/// The rare types are boxed: each is 12–16 bytes, and one unboxed would make
/// every value (most of SSP's memory) 24 bytes instead of 16.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub enum Value {
    /// A missing field. Distinct from NULL in every comparison.
    #[default]
    None,
    Null,
    Bool(bool),
    Number(Number),
    /// A `dec` number: exact, and compared with ints and floats by value as
    /// SurrealDB does. Apart from [`Number`] so that numbers stay `Copy`.
    Decimal(Box<Decimal>),
    String(Str),
    Duration(Box<std::time::Duration>),
    Datetime(Box<DateTime<Utc>>),
    Uuid(Box<uuid::Uuid>),
    Array(ThinVec<Value>),
    /// A SurrealDB 3 set (`<set>[..]`, a `set<T>` field): its items in
    /// SurrealDB's order, each once, as SurrealDB delivers them. Equal only
    /// to sets, and ordered between arrays and objects; otherwise read as an
    /// array is (`CONTAINS`, `IN`, `[n]`).
    Set(ThinVec<Value>),
    Object(Object),
    /// SurrealDB's own geometry type: its equality and (partial) order are
    /// SurrealDB's, with nothing to re-implement.
    Geometry(Box<sdb::Geometry>),
    Bytes(ThinVec<u8>),
    Thing(Thing),
}

// Records are most of SSP's memory, and most of a record is its values.
const _: () = assert!(std::mem::size_of::<Value>() == 16);

impl Value {
    pub fn str(s: &str) -> Value {
        Value::String(s.into())
    }

    pub fn thing(id: RecordId) -> Value {
        Value::Thing(triomphe::Arc::new(id))
    }

    pub fn datetime(d: DateTime<Utc>) -> Value {
        Value::Datetime(Box::new(d))
    }

    pub fn decimal(d: Decimal) -> Value {
        Value::Decimal(Box::new(d))
    }

    pub fn duration(d: std::time::Duration) -> Value {
        Value::Duration(Box::new(d))
    }

    pub fn uuid(u: uuid::Uuid) -> Value {
        Value::Uuid(Box::new(u))
    }

    /// SurrealDB's type order, used when two values have different types:
    /// the order of the variants of SurrealDB's `Value` (whose `PartialOrd`
    /// is derived), with decimals among the numbers.
    fn type_rank(&self) -> u8 {
        match self {
            Value::None => 0,
            Value::Null => 1,
            Value::Bool(_) => 2,
            Value::Number(_) | Value::Decimal(_) => 3,
            Value::String(_) => 4,
            Value::Duration(_) => 5,
            Value::Datetime(_) => 6,
            Value::Uuid(_) => 7,
            Value::Array(_) => 8,
            Value::Set(_) => 9,
            Value::Object(_) => 10,
            Value::Geometry(_) => 11,
            Value::Bytes(_) => 12,
            Value::Thing(_) => 13,
        }
    }

    /// The number this value is, as SurrealDB's number type: the one place
    /// where ints, floats and decimals meet (its `Ord` and `PartialEq` are
    /// the rules SurrealDB compares numbers by, including the approximate
    /// float–decimal equality).
    fn as_sdb_number(&self) -> Option<sdb::Number> {
        match self {
            Value::Number(Number::Int(i)) => Some(sdb::Number::Int(*i)),
            Value::Number(Number::Float(f)) => Some(sdb::Number::Float(*f)),
            Value::Decimal(d) => Some(sdb::Number::Decimal(**d)),
            _ => None,
        }
    }

    /// Truthiness, as `WHERE v`, `!v`, `AND` and `OR` use it
    /// (SurrealDB's `Value::is_truthy`).
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::None | Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(Number::Int(i)) => *i != 0,
            Value::Number(Number::Float(f)) => *f != 0.0,
            Value::Decimal(d) => !d.is_zero(),
            Value::String(s) => !s.is_empty(),
            Value::Duration(d) => !d.is_zero(),
            Value::Datetime(_) | Value::Uuid(_) | Value::Geometry(_) => true,
            Value::Array(a) | Value::Set(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::Thing(_) => true,
        }
    }

    /// SurrealQL `=` and `==`, plus the JSON rule for record ids.
    pub fn sql_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::None, Value::None) | (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::Decimal(_), Value::Number(_) | Value::Decimal(_))
            | (Value::Number(_), Value::Decimal(_)) => {
                self.as_sdb_number() == other.as_sdb_number()
            }
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Duration(a), Value::Duration(b)) => a == b,
            (Value::Datetime(a), Value::Datetime(b)) => a == b,
            (Value::Uuid(a), Value::Uuid(b)) => a == b,
            (Value::Geometry(a), Value::Geometry(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Thing(a), Value::Thing(b)) => a.sql_eq(b),
            (Value::Thing(t), Value::String(s)) | (Value::String(s), Value::Thing(t)) => {
                thing_matches_text(t, s)
            }
            (Value::Array(a), Value::Array(b)) | (Value::Set(a), Value::Set(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.sql_eq(y))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|((ka, va), (kb, vb))| ka == kb && va.sql_eq(vb))
            }
            _ => false,
        }
    }

    /// SurrealDB's total order across all values (`ORDER BY`, `<`, `>`).
    pub fn sql_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::None, Value::None) | (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Number(a), Value::Number(b)) => a.cmp_num(*b),
            (Value::Decimal(_), Value::Number(_) | Value::Decimal(_))
            | (Value::Number(_), Value::Decimal(_)) => {
                self.as_sdb_number().cmp(&other.as_sdb_number())
            }
            (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Duration(a), Value::Duration(b)) => a.cmp(b),
            (Value::Datetime(a), Value::Datetime(b)) => a.cmp(b),
            (Value::Uuid(a), Value::Uuid(b)) => a.cmp(b),
            // Geometries are only partly ordered (NaN coordinates): where
            // SurrealDB finds no order, its ORDER BY treats them as equal.
            (Value::Geometry(a), Value::Geometry(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Value::Bytes(a), Value::Bytes(b)) => a.as_slice().cmp(b.as_slice()),
            (Value::Array(a), Value::Array(b)) | (Value::Set(a), Value::Set(b)) => {
                for (x, y) in a.iter().zip(b) {
                    match x.sql_cmp(y) {
                        Ordering::Equal => continue,
                        o => return o,
                    }
                }
                a.len().cmp(&b.len())
            }
            (Value::Object(a), Value::Object(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b.iter()) {
                    match ka.cmp(kb).then_with(|| va.sql_cmp(vb)) {
                        Ordering::Equal => continue,
                        o => return o,
                    }
                }
                a.len().cmp(&b.len())
            }
            (Value::Thing(a), Value::Thing(b)) => a.sql_cmp(b),
            _ => self.type_rank().cmp(&other.type_rank()),
        }
    }

    /// Whether two values hold the same content, the test that decides if a
    /// record's version changes.
    ///
    /// Looser than [`Value::sql_eq`] in one way: a value that came from JSON
    /// (a string for a record link or a datetime) has the same content as the
    /// typed value SurrealDB delivers for it, so the same write seen through
    /// `/ingest` and through LIVE bumps the version once.
    pub fn same_content(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Datetime(d), Value::String(s)) | (Value::String(s), Value::Datetime(d)) => {
                DateTime::parse_from_rfc3339(s).is_ok_and(|p| p.with_timezone(&Utc) == **d)
            }
            // The JSON forms SurrealDB gives these types: their text.
            (Value::Decimal(d), Value::String(s)) | (Value::String(s), Value::Decimal(d)) => {
                s.parse::<Decimal>().is_ok_and(|p| p == **d)
            }
            (Value::Duration(d), Value::String(s)) | (Value::String(s), Value::Duration(d)) => s
                .parse::<sdb::Duration>()
                .is_ok_and(|p| p.into_inner() == **d),
            (Value::Uuid(u), Value::String(s)) | (Value::String(s), Value::Uuid(u)) => {
                uuid::Uuid::try_parse(s).is_ok_and(|p| p == **u)
            }
            // A decimal and a number can be `=` without being the same
            // number (`0.1 = 0.1dec`): a change between them is a change.
            (Value::Decimal(a), Value::Decimal(b)) => a == b,
            (Value::Decimal(_), Value::Number(_)) | (Value::Number(_), Value::Decimal(_)) => false,
            (Value::Array(a), Value::Array(b)) | (Value::Set(a), Value::Set(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_content(y))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|((ka, va), (kb, vb))| ka == kb && va.same_content(vb))
            }
            _ => self.sql_eq(other),
        }
    }

    /// Feeds `h` a hash such that `a.same_content(b)` implies equal hashes:
    /// a fingerprint that a JSON copy and SurrealDB's typed copy of one
    /// write share (a datetime and its RFC 3339 text, a record id and
    /// `"user:1"`, `1` and `1.0`). Coarser where a hash cannot follow
    /// [`Value::same_content`] (composite record ids, bytes, geometry):
    /// values it tells apart may share a hash.
    pub fn hash_content<H: Hasher>(&self, h: &mut H) {
        match self {
            Value::String(s) => match typed_text(s) {
                Some(typed) => typed.hash_content(h),
                None => {
                    0u8.hash(h);
                    self.index_key().hash(h);
                }
            },
            Value::Decimal(d) => {
                1u8.hash(h);
                let d = d.normalize();
                d.mantissa().hash(h);
                d.scale().hash(h);
            }
            Value::Array(a) | Value::Set(a) => {
                (if matches!(self, Value::Array(_)) {
                    2u8
                } else {
                    3u8
                })
                .hash(h);
                a.len().hash(h);
                a.iter().for_each(|v| v.hash_content(h));
            }
            Value::Object(o) => {
                4u8.hash(h);
                o.len().hash(h);
                for (k, v) in o.iter() {
                    k.hash(h);
                    v.hash_content(h);
                }
            }
            _ => {
                0u8.hash(h);
                self.index_key().hash(h);
            }
        }
    }

    /// How many values in `self` are of a type JSON has no form for
    /// (datetimes, decimals, durations, uuids, bytes, geometry, record ids):
    /// of two copies with the [same content](Value::same_content), the one
    /// SurrealDB delivered has more.
    pub fn typed_leaves(&self) -> usize {
        match self {
            Value::Datetime(_)
            | Value::Decimal(_)
            | Value::Duration(_)
            | Value::Uuid(_)
            | Value::Bytes(_)
            | Value::Geometry(_)
            | Value::Thing(_) => 1,
            Value::Array(a) | Value::Set(a) => a.iter().map(Value::typed_leaves).sum(),
            Value::Object(o) => o.values().iter().map(Value::typed_leaves).sum(),
            _ => 0,
        }
    }

    /// A hashable key such that `a.sql_eq(b)` implies `a.index_key() == b.index_key()`.
    ///
    /// This is what lets the engine find the views interested in a record by
    /// hashing the record's field instead of scanning views. Values that are
    /// rarely used for equality (arrays, objects) have no key, and views that
    /// filter on them are evaluated by scanning.
    pub fn index_key(&self) -> Option<IndexKey> {
        Some(match self {
            Value::None => IndexKey::None,
            Value::Null => IndexKey::Null,
            Value::Bool(b) => IndexKey::Bool(*b),
            Value::Number(n) => match n.as_exact_int() {
                Some(i) => IndexKey::Int(i),
                None => IndexKey::Float(n.as_f64().to_bits()),
            },
            Value::String(s) => match RecordId::parse(s) {
                // A string that reads as a record id must key like that id.
                Some(rid) => return thing_key(rid),
                None => IndexKey::Str(s.clone()),
            },
            Value::Thing(t) => return thing_key((**t).clone()),
            Value::Datetime(d) => IndexKey::Datetime(d.timestamp_nanos_opt().unwrap_or(0)),
            Value::Decimal(d) => match i64::try_from(**d) {
                // A whole decimal is `=` to exactly the ints and floats of
                // its value.
                Ok(i) if d.is_integer() => IndexKey::Int(i),
                // Other decimals are `=` to floats only approximately (as
                // SurrealDB's number equality is): no hash can agree with
                // that, so they share one key that every number looks in.
                _ => IndexKey::Inexact,
            },
            Value::Duration(d) => IndexKey::Duration(d.as_secs(), d.subsec_nanos()),
            Value::Uuid(u) => IndexKey::Uuid(u.into_bytes()),
            // Equal only to their own type, which no indexed literal is.
            Value::Array(_)
            | Value::Set(_)
            | Value::Object(_)
            | Value::Geometry(_)
            | Value::Bytes(_) => {
                return None;
            }
        })
    }
}

/// The typed value whose JSON form `s` may be, as [`Value::same_content`]
/// reads it: a datetime, a uuid, a decimal or a duration.
///
/// Every string of every notification goes through here: text that starts
/// with a letter (most of it) is none of them but a uuid, and is told so by
/// its first byte and length, without a parse (a failed duration parse
/// allocates its error).
fn typed_text(s: &str) -> Option<Value> {
    let first = *s.as_bytes().first()?;
    // The forms `uuid::Uuid::try_parse` reads: simple, hyphenated, braced, URN.
    if matches!(s.len(), 32 | 36 | 38 | 45)
        && let Ok(u) = uuid::Uuid::try_parse(s)
    {
        return Some(Value::Uuid(Box::new(u)));
    }
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(Value::datetime(d.with_timezone(&Utc)));
    }
    if let Ok(d) = s.parse::<Decimal>() {
        return Some(Value::decimal(d));
    }
    if let Ok(d) = s.parse::<sdb::Duration>() {
        return Some(Value::Duration(Box::new(d.into_inner())));
    }
    None
}

/// Whether `s` is the text form of `t` (the JSON rule).
fn thing_matches_text(t: &RecordId, s: &str) -> bool {
    RecordId::parse(s).is_some_and(|p| p.sql_eq(t))
}

/// The index key of a record id. Array and object keys have none: they are
/// equal by content (`[1] = [1f]`) but hashed by identity, so views that
/// compare them are evaluated by scanning.
fn thing_key(rid: RecordId) -> Option<IndexKey> {
    match rid.key {
        Key::Composite(_) => None,
        _ => Some(IndexKey::Thing(rid)),
    }
}

/// The hash key of an equality-indexable value. See [`Value::index_key`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IndexKey {
    None,
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(Str),
    Datetime(i64),
    /// Seconds and nanoseconds: a u128 would align (and so grow) every key.
    Duration(u64, u32),
    Uuid([u8; 16]),
    /// Every decimal that is not a whole i64: see [`Value::index_key`].
    /// Records here are candidates for every numeric key, and a view whose
    /// literal has this key scans.
    Inexact,
    Thing(RecordId),
}

impl IndexKey {
    /// Whether records under [`IndexKey::Inexact`] may be `=` to this key.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            IndexKey::Int(_) | IndexKey::Float(_) | IndexKey::Inexact
        )
    }
}

/// One step of a field path: `.name` or `[index]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PathPart {
    Field(FieldName),
    Index(usize),
}

impl fmt::Display for PathPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathPart::Field(n) => f.write_str(n),
            PathPart::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Structural equality, for tests and for deduplicating plans. Not SurrealQL
/// `=`: see [`Value::sql_eq`].
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Number(Number::Int(a)), Value::Number(Number::Int(b))) => a == b,
            (Value::Number(Number::Float(a)), Value::Number(Number::Float(b))) => {
                a.to_bits() == b.to_bits()
            }
            (Value::Number(_), Value::Number(_)) => false,
            (Value::Array(a), Value::Array(b)) | (Value::Set(a), Value::Set(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            _ => {
                std::mem::discriminant(self) == std::mem::discriminant(other) && self.sql_eq(other)
            }
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::None | Value::Null => {}
            Value::Bool(b) => b.hash(state),
            Value::Number(Number::Int(i)) => {
                0u8.hash(state);
                i.hash(state)
            }
            Value::Number(Number::Float(f)) => {
                1u8.hash(state);
                f.to_bits().hash(state)
            }
            Value::String(s) => s.hash(state),
            // Equal decimals (`1.0 = 1.00`) normalise alike.
            Value::Decimal(d) => d.normalize().hash(state),
            Value::Duration(d) => d.hash(state),
            Value::Datetime(d) => d.hash(state),
            Value::Uuid(u) => u.hash(state),
            Value::Bytes(b) => b.hash(state),
            // f64 coordinates have no hash that agrees with their equality.
            Value::Geometry(_) => {}
            Value::Array(a) | Value::Set(a) => a.hash(state),
            Value::Object(o) => {
                for (k, v) in o.iter() {
                    k.hash(state);
                    v.hash(state);
                }
            }
            Value::Thing(t) => t.hash(state),
        }
    }
}

impl Value {
    /// A view's param from JSON, as SSP binds it in SurrealDB too (the
    /// re-query tier does the same): a string that is a record id's text is
    /// that record id, at any depth. So `$p CONTAINS ''` or `title < $p`
    /// read a record, as SurrealDB does, and not its text.
    pub fn param_from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::String(s) => match RecordId::parse(s) {
                Some(r) => Value::thing(r),
                None => Value::String(s.as_str().into()),
            },
            serde_json::Value::Array(a) => {
                Value::Array(a.iter().map(Value::param_from_json).collect())
            }
            serde_json::Value::Object(o) => Value::Object(Object::from_pairs(
                o.iter()
                    .map(|(k, v)| (k.as_str().into(), Value::param_from_json(v)))
                    .collect(),
            )),
            other => Value::from(other),
        }
    }
}

impl From<&serde_json::Value> for Value {
    /// JSON in: strings stay strings (the JSON rule handles record links),
    /// integers that fit stay integers.
    fn from(json: &serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Number(Number::Int(i)),
                None => Value::Number(Number::Float(n.as_f64().unwrap_or(f64::NAN))),
            },
            serde_json::Value::String(s) => Value::String(s.as_str().into()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => Value::Object(Object::from_pairs(
                o.iter()
                    .map(|(k, v)| (k.as_str().into(), Value::from(v)))
                    .collect(),
            )),
        }
    }
}

impl Value {
    /// JSON out, as a client reading SurrealDB over JSON would see it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::None | Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(Number::Int(i)) => J::from(*i),
            Value::Number(Number::Float(f)) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::String(s) => J::String(s.to_string()),
            Value::Datetime(d) => J::String(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            // As SurrealDB's own JSON: decimals, durations and uuids as
            // their text, bytes as an array of numbers, geometry as GeoJSON.
            Value::Decimal(d) => J::String(d.to_string()),
            Value::Duration(d) => J::String(sdb::Duration::from_std(**d).to_string()),
            Value::Uuid(u) => J::String(u.hyphenated().to_string()),
            Value::Bytes(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
            Value::Geometry(g) => sdb::Value::Geometry((**g).clone()).into_json_value(),
            Value::Array(a) | Value::Set(a) => J::Array(a.iter().map(Value::to_json).collect()),
            Value::Object(o) => J::Object(
                o.iter()
                    .filter(|(_, v)| !matches!(v, Value::None))
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
            Value::Thing(t) => J::String(t.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
