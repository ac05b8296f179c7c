//! Record ids: `table:key`, with every kind of key a stored record can have.
//!
//! SurrealDB 3.3.5 keys a record by a number, a string, a uuid, an array or an
//! object (a range names many records, never one). Keys used to be only ints
//! and strings here, and the other kinds were kept as their text: the edges
//! then pointed at a string-keyed record that does not exist. Measured on
//! 3.3.5 (`shared/spec/surrealql-semantics.md` has the table):
//!
//! * id order (a scan, `ORDER BY id`, the tie-break of every `ORDER BY`):
//!   number < string < uuid < array < object; arrays and objects element by
//!   element, numbers by value and then int < float, so `[1] < [1, 'a'] <
//!   [1f]`: `[1]` and `[1f]` are two records;
//! * value comparison (`=`, `<`, `ORDER BY` a field holding the id): the
//!   contents compare as values, so `item:[1] = item:[1f]`;
//! * text: strings in backticks unless plain (`item:\`1\``, `item:a`),
//!   `item:u'…'`, `item:[1, 'a']`, `item:{ a: 1 }`.

use std::cmp::Ordering;
use std::fmt::{self, Write};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use surrealdb::types as sdb;

use super::value::{Number, Value};

/// The key part of a record id, in SurrealDB's id order (the variants' order
/// is the kinds' order).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    Int(i64),
    String(KeyStr),
    /// The 16 bytes, big-endian: their order is SurrealDB's uuid order. Not a
    /// `u128`, whose 16-byte alignment would make every key 32 bytes.
    Uuid(#[serde(with = "uuid_text")] [u8; 16]),
    /// An array or object key: rare, so shared behind one pointer and the
    /// key stays 24 bytes.
    Composite(Arc<Composite>),
}

/// A string key, hashed once, as it is made (see [`super::hashed`]): the
/// batch of 1,000 new string-keyed records that grew a table past
/// 1,835,000 took 436-462 ms when the record map hashed each key's text
/// again, and 118-163 ms with the hash kept (number keys: ~100 ms;
/// `ssp-bench --only growth`). Thin (`ArcStr`) beside its hash, so the key
/// stays 24 bytes.
pub type KeyStr = super::hashed::Hashed<arcstr::ArcStr>;

impl From<&str> for KeyStr {
    fn from(s: &str) -> Self {
        KeyStr::new(s.into())
    }
}

impl From<String> for KeyStr {
    fn from(s: String) -> Self {
        KeyStr::new(s.into())
    }
}

impl AsRef<str> for KeyStr {
    fn as_ref(&self) -> &str {
        self
    }
}

/// An array or object key.
///
/// Held three ways because each use needs a different one: SurrealDB's own
/// value, so the edge written names exactly the record (`[1]`, `[1f]` and
/// `[1dec]` are three records, and the engine's values cannot tell the last
/// two apart); its SurrealQL text, which is that identity as a string (and
/// the state file's form); and the engine's value, which `WHERE` compares.
#[derive(Clone, Debug)]
pub struct Composite {
    value: Value,
    sql: Box<str>,
    native: sdb::RecordIdKey,
}

impl Composite {
    /// `native` is an array or object key, `value` its engine value.
    pub(crate) fn new(native: sdb::RecordIdKey, value: Value) -> Composite {
        let sql = sdb::ToSql::to_sql(&native).into_boxed_str();
        Composite { value, sql, native }
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    pub fn native(&self) -> &sdb::RecordIdKey {
        &self.native
    }
}

impl PartialEq for Composite {
    fn eq(&self, other: &Self) -> bool {
        self.sql == other.sql
    }
}

impl Eq for Composite {}

impl Hash for Composite {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sql.hash(state)
    }
}

impl Ord for Composite {
    fn cmp(&self, other: &Self) -> Ordering {
        id_order(&self.value, &other.value).then_with(|| self.sql.cmp(&other.sql))
    }
}

impl PartialOrd for Composite {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The state file holds a composite key as its SurrealQL text, read back by
/// SurrealDB's parser: no engine layout to keep compatible, and exact.
impl Serialize for Composite {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.sql)
    }
}

impl<'de> Deserialize<'de> for Composite {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        match parse_with_surrealdb(&format!("t:{text}")) {
            Ok(RecordId {
                key: Key::Composite(c),
                ..
            }) => Ok(Arc::unwrap_or_clone(c)),
            _ => Err(D::Error::custom(format!(
                "not an array or object record key: `{text}`"
            ))),
        }
    }
}

mod uuid_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(b: &[u8; 16], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&uuid::Uuid::from_bytes(*b).hyphenated())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 16], D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        uuid::Uuid::parse_str(&text)
            .map(|u| *u.as_bytes())
            .map_err(|e| D::Error::custom(format!("not a uuid: `{text}`: {e}")))
    }
}

/// SurrealDB's id order on the contents of array and object keys: the value
/// order, except that a number's kind breaks a tie (`1 < 1f`), as the keys
/// are stored.
fn id_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.cmp_num(*y).then_with(|| {
            let kind = |n: &Number| matches!(n, Number::Float(_)) as u8;
            kind(x).cmp(&kind(y))
        }),
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y.iter())
            .map(|(p, q)| id_order(p, q))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Value::Object(x), Value::Object(y)) => x
            .iter()
            .zip(y.iter())
            .map(|((kp, p), (kq, q))| kp.cmp(kq).then_with(|| id_order(p, q)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Value::Thing(x), Value::Thing(y)) => x.cmp(y),
        _ => a.sql_cmp(b),
    }
}

impl Key {
    /// The key as a value, as `record::id` returns it: `t:[1f, 'a']` gives
    /// `[1f, 'a']`, `t:u'…'` a uuid.
    pub fn to_value(&self) -> Value {
        match self {
            Key::Int(i) => Value::Number(Number::Int(*i)),
            Key::String(s) => Value::String(s.as_ref().into()),
            Key::Uuid(b) => Value::uuid(uuid::Uuid::from_bytes(*b)),
            Key::Composite(c) => c.value.clone(),
        }
    }

    /// The items of an array key.
    pub fn array_key(&self) -> Option<&[Value]> {
        match self {
            Key::Composite(c) => match &c.value {
                Value::Array(items) => Some(items),
                _ => None,
            },
            _ => None,
        }
    }

    /// Value equality (`=`): composite keys by content, so `[1] = [1f]`.
    pub fn sql_eq(&self, other: &Key) -> bool {
        match (self, other) {
            (Key::Composite(a), Key::Composite(b)) => a.value.sql_eq(&b.value),
            _ => self == other,
        }
    }

    /// Value order (`<`, `ORDER BY` a field): composite keys by content.
    pub fn sql_cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Composite(a), Key::Composite(b)) => a.value.sql_cmp(&b.value),
            _ => self.cmp(other),
        }
    }
}

/// A table name as record ids hold it: shared, behind a thin pointer.
pub type TableName = arcstr::ArcStr;

/// A record id, `table:key`. Its `Ord` is SurrealDB's id order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordId {
    pub table: TableName,
    pub key: Key,
}

/// Why a text is not the id of one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is a range of record ids, not the id of one record")]
    Range(String),
    #[error("record id `{id}` belongs to table `{found}`, not `{table}`")]
    OtherTable {
        id: String,
        found: String,
        table: String,
    },
    #[error("record id is empty")]
    Empty,
}

impl RecordId {
    pub fn new(table: impl Into<TableName>, key: Key) -> Self {
        RecordId {
            table: table.into(),
            key,
        }
    }

    /// A record id of `table`, whose name is shared with the other ids of
    /// that table parsed on this thread (see [`table_name`]).
    pub(crate) fn in_table(table: &str, key: Key) -> Self {
        RecordId {
            table: table_name(table),
            key,
        }
    }

    /// Value equality: see [`Key::sql_eq`].
    pub fn sql_eq(&self, other: &RecordId) -> bool {
        self.table == other.table && self.key.sql_eq(&other.key)
    }

    /// Value order: see [`Key::sql_cmp`].
    pub fn sql_cmp(&self, other: &RecordId) -> Ordering {
        self.table
            .cmp(&other.table)
            .then_with(|| self.key.sql_cmp(&other.key))
    }

    /// Parses the text form `table:key` as a JSON client would write it;
    /// `None` when it is not the id of one record.
    ///
    /// Every string of a record goes through here (the JSON rule, and index
    /// keys), so plain keys are read by hand: digits-only keys are integers,
    /// as in SurrealQL (`user:1`), and keys wrapped in `⟨...⟩` or backticks
    /// without escapes are taken verbatim as strings. Anything else SurrealQL
    /// has (uuids, arrays, objects, escapes) is read by SurrealDB's own
    /// parser; what it refuses stays a string key, as it always was.
    pub fn parse(text: &str) -> Option<RecordId> {
        Self::parse_checked(text).ok().flatten()
    }

    /// As [`RecordId::parse`], telling a range (an error) from text that is
    /// no record id at all (`Ok(None)`).
    fn parse_checked(text: &str) -> Result<Option<RecordId>, IdError> {
        let Some((table, key)) = text.split_once(':') else {
            return Ok(None);
        };
        if needs_surrealdb(key) {
            if let Ok(rid) = parse_with_surrealdb(text) {
                return Ok(Some(rid));
            }
            if key.contains("..") && is_range(text) {
                return Err(IdError::Range(text.to_owned()));
            }
        }
        let Some(table) = unquote_ident(table) else {
            return Ok(None);
        };
        if table.is_empty() || key.is_empty() {
            return Ok(None);
        }
        Ok(Some(RecordId::in_table(table, parse_key(key))))
    }

    /// Parses `id`, which is either `table:key` or a bare key of `table`.
    pub fn parse_in_table(table: &str, id: &str) -> Result<RecordId, IdError> {
        if id.is_empty() {
            return Err(IdError::Empty);
        }
        // A bare array or object key holds colons of its own (`{a: 1}`).
        let bare = id.starts_with(['[', '{']);
        if !bare && let Some(rid) = RecordId::parse_checked(id)? {
            if rid.table.as_str() != table {
                return Err(IdError::OtherTable {
                    id: id.to_owned(),
                    found: rid.table.to_string(),
                    table: table.to_owned(),
                });
            }
            return Ok(rid);
        }
        if needs_surrealdb(id) {
            match RecordId::parse_checked(&format!("t:{id}")) {
                Ok(Some(rid)) => return Ok(RecordId::in_table(table, rid.key)),
                Err(_) => return Err(IdError::Range(id.to_owned())),
                Ok(None) => {}
            }
        }
        Ok(RecordId::in_table(table, parse_key(id)))
    }
}

/// Whether a key's text needs SurrealDB's parser: a kind of key, or an
/// escape, that the hand-written reading does not know.
fn needs_surrealdb(key: &str) -> bool {
    key.starts_with(['[', '{'])
        || key.starts_with("u'")
        || key.starts_with("u\"")
        || key.contains("..")
        || (key.starts_with(['`', '⟨']) && key.contains('\\'))
}

/// Reads `text`, all of it, with SurrealDB 3.3.5's parser.
fn parse_with_surrealdb(text: &str) -> Result<RecordId, ()> {
    // The parser is not ours: a panic in it must not take a request down.
    let parsed = std::panic::catch_unwind(|| {
        surrealdb_syn::parse_with(text.as_bytes(), async |parser, stk| {
            let rid = parser.parse_value_record_id(stk).await?;
            // `item:1..3` would otherwise read as `item:1`.
            parser.assert_finished()?;
            Ok(rid)
        })
    })
    .map_err(|_| ())?;
    let rid = parsed.map_err(|_| ())?;
    super::value::surreal::record_id_from_surreal(&rid).ok_or(())
}

/// Whether SurrealDB reads `text` as a range of record ids (`item:1..3`),
/// which its record-id parser does not take.
fn is_range(text: &str) -> bool {
    std::panic::catch_unwind(|| surrealdb_syn::parse(&format!("RETURN {text}")).is_ok())
        .unwrap_or(false)
}

/// The shared name of a table. Every parsed record id (and every string
/// that reads as one, when it is hashed for an index) names its table; a
/// small per-thread cache of the tables seen lets them share one allocation
/// instead of one per id. Bounded: past `TABLES` distinct names, a name is
/// simply allocated.
fn table_name(table: &str) -> TableName {
    const TABLES: usize = 64;
    thread_local! {
        static NAMES: std::cell::RefCell<Vec<TableName>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(n) = names.iter().find(|n| n.as_str() == table) {
            return n.clone();
        }
        let n: TableName = table.into();
        if names.len() < TABLES {
            names.push(n.clone());
        }
        n
    })
}

fn unquote_ident(s: &str) -> Option<&str> {
    if let Some(inner) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        return Some(inner);
    }
    if let Some(inner) = s.strip_prefix('⟨').and_then(|r| r.strip_suffix('⟩')) {
        return Some(inner);
    }
    Some(s)
}

fn parse_key(key: &str) -> Key {
    if let Some(inner) = key
        .strip_prefix('⟨')
        .and_then(|r| r.strip_suffix('⟩'))
        .or_else(|| key.strip_prefix('`').and_then(|r| r.strip_suffix('`')))
    {
        return Key::String(inner.into());
    }
    let digits = key.strip_prefix('-').unwrap_or(key);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = key.parse::<i64>()
    {
        return Key::Int(n);
    }
    Key::String(key.into())
}

/// SurrealDB's escaping inside a quoted identifier or key.
fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str, quote: char) -> fmt::Result {
    f.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\0' => f.write_str("\\0")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\n' => f.write_str("\\n")?,
            '\x08' => f.write_str("\\u{8}")?,
            '\x0C' => f.write_str("\\f")?,
            '\\' => f.write_str("\\\\")?,
            c if c == quote => {
                f.write_char('\\')?;
                f.write_char(c)?
            }
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

fn is_word(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Display for Key {
    /// As SurrealDB renders it (`EscapeRecordKey`): a string key is quoted
    /// when empty, when it has other than ASCII letters, digits and `_`, or
    /// when it is only digits and `_`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(n) => write!(f, "{n}"),
            Key::String(s)
                if !s.is_empty()
                    && is_word(s)
                    && !s.bytes().all(|b| b.is_ascii_digit() || b == b'_') =>
            {
                f.write_str(s)
            }
            Key::String(s) => write_escaped(f, s, '`'),
            Key::Uuid(b) => write!(f, "u'{}'", uuid::Uuid::from_bytes(*b).hyphenated()),
            Key::Composite(c) => f.write_str(&c.sql),
        }
    }
}

impl fmt::Display for RecordId {
    /// As SurrealDB renders it (`EscapeSqonIdent` for the table).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.table.as_str();
        if t.is_empty() || t.starts_with(|c: char| c.is_ascii_digit()) || !is_word(t) {
            write_escaped(f, t, '`')?;
        } else {
            f.write_str(t)?;
        }
        write!(f, ":{}", self.key)
    }
}

/// The prefix of SSP's own tables (`_spooky_*`, named in `db::schema`).
pub const RESERVED_PREFIX: &str = "_spooky_";

/// True for a table SSP owns: never a view's table, never ingested, never
/// followed (an edge write is a change to its table, so a view over the
/// edges would feed itself).
pub fn is_reserved_table(table: &str) -> bool {
    table.starts_with(RESERVED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> RecordId {
        RecordId::parse(text).unwrap_or_else(|| panic!("{text} is no record id"))
    }

    #[test]
    fn every_key_kind_reads_and_renders_as_surrealdb_does() {
        // The right-hand sides are SurrealDB 3.3.5's own renderings.
        for (text, rendered) in [
            ("item:1", "item:1"),
            ("item:-3", "item:-3"),
            ("item:a", "item:a"),
            ("item:⟨1⟩", "item:`1`"),
            ("item:`a b`", "item:`a b`"),
            ("item:⟨a-b⟩", "item:`a-b`"),
            ("item:⟨é⟩", "item:`é`"),
            ("item:1a", "item:1a"),
            ("item:`a\\`b`", "item:`a\\`b`"),
            ("`my t`:1", "`my t`:1"),
            (
                "item:u'0190e2a4-0000-7000-8000-000000000000'",
                "item:u'0190e2a4-0000-7000-8000-000000000000'",
            ),
            ("item:[1,'a']", "item:[1, 'a']"),
            ("item:[1f]", "item:[1f]"),
            ("item:{b:0, a:'x'}", "item:{ a: 'x', b: 0 }"),
            (
                "item:[u'00000000-0000-4000-8000-000000000001', 2dec, 1d]",
                "item:[u'00000000-0000-4000-8000-000000000001', 2dec, 1d]",
            ),
        ] {
            let rid = id(text);
            assert_eq!(rid.to_string(), rendered, "{text}");
            assert_eq!(id(rendered), rid, "{rendered} reads back");
        }
        assert!(matches!(
            id("item:u'0190e2a4-0000-7000-8000-000000000000'").key,
            Key::Uuid(_)
        ));
        assert!(matches!(id("item:[1,'a']").key, Key::Composite(_)));
        assert_eq!(id("item:`a\\`b`").key, Key::String("a`b".into()));
    }

    #[test]
    fn a_range_is_refused_with_its_reason() {
        assert_eq!(RecordId::parse("item:1..3"), None);
        assert!(matches!(
            RecordId::parse_in_table("item", "item:1..3"),
            Err(IdError::Range(_))
        ));
        assert!(matches!(
            RecordId::parse_in_table("item", "[1]..[2]"),
            Err(IdError::Range(_))
        ));
        // Bare keys of every kind.
        assert_eq!(
            RecordId::parse_in_table("item", "[1, 'a']").unwrap(),
            id("item:[1,'a']")
        );
        assert_eq!(
            RecordId::parse_in_table("item", "{a: 1}").unwrap(),
            id("item:{a:1}")
        );
    }

    #[test]
    fn ids_order_and_compare_as_measured_on_surrealdb() {
        // `SELECT VALUE id FROM item` (and `ORDER BY id`) on 3.3.5.
        let scan = [
            "item:-3",
            "item:1",
            "item:`1`",
            "item:B",
            "item:a",
            "item:`a b`",
            "item:u'00000000-0000-4000-8000-000000000001'",
            "item:u'0190e2a4-0000-7000-8000-000000000000'",
            "item:[]",
            "item:[NONE]",
            "item:[NULL]",
            "item:[true]",
            "item:[-1f]",
            "item:[0]",
            "item:[1]",
            "item:[1, 'a']",
            "item:[1f]",
            "item:[1.5f]",
            "item:[2]",
            "item:['a', 1]",
            "item:['ab']",
            "item:['b']",
            "item:[d'2024-01-01T00:00:00Z']",
            "item:[[1]]",
            "item:[{ a: 1 }]",
            "item:[item:1]",
            "item:{  }",
            "item:{ a: 1 }",
            "item:{ a: 1, b: 0 }",
            "item:{ a: 1f }",
            "item:{ a: 2 }",
            "item:{ a: 'x' }",
            "item:{ b: 0 }",
        ]
        .map(id);
        for w in scan.windows(2) {
            assert!(w[0] < w[1], "{} < {}", w[0], w[1]);
        }
        // Values compare by content: `item:[1] = item:[1f]`, and
        // `WHERE id > item:[1]` leaves out `[1f]`.
        let v = |t: &str| Value::thing(id(t));
        assert!(v("item:[1]").sql_eq(&v("item:[1f]")));
        assert_ne!(id("item:[1]"), id("item:[1f]"));
        assert_eq!(v("item:[1f]").sql_cmp(&v("item:[1, 'a']")), Ordering::Less);
        assert_eq!(v("item:[2]").sql_cmp(&v("item:[1.5f]")), Ordering::Greater);
        // The JSON rule holds for every kind.
        assert!(v("item:[1, 'a']").sql_eq(&Value::str("item:[1,'a']")));
        assert!(
            v("item:u'0190e2a4-0000-7000-8000-000000000000'")
                .sql_eq(&Value::str("item:u'0190e2a4-0000-7000-8000-000000000000'"))
        );
    }

    #[test]
    fn keys_stay_small_and_survive_the_state_file() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for text in [
            "item:1",
            "item:`a b`",
            "item:u'0190e2a4-0000-7000-8000-000000000000'",
            "item:[1, 'a', [u'00000000-0000-4000-8000-000000000001'], 2dec]",
            "item:{ a: { b: [1f] } }",
        ] {
            let rid = id(text);
            let json = serde_json::to_string(&rid).unwrap();
            let back: RecordId = serde_json::from_str(&json).unwrap();
            assert_eq!(back, rid, "{json}");
            assert_eq!(back.to_string(), rid.to_string());
        }
    }
}
