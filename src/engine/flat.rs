//! A record's content in the state file, at any depth.
//!
//! SurrealDB 3.3.5 stores records nested up to 255 levels. Written the way
//! serde derives it (`{"Object": [["a", {...}]]}`), each level of a value is
//! about four levels of JSON, and serde_json refuses to read past 128 (its
//! switch to lift that, the `unbounded_depth` feature, would rebuild
//! SurrealDB): a record nested ~40 deep made the file unloadable after a
//! restart. So a value is written flat, as the list of its nodes in
//! pre-order, each a small JSON item, and rebuilt with an explicit stack: no
//! depth anywhere, in the file or on the call stack.
//!
//! | node | item |
//! |---|---|
//! | NONE, NULL | `"n"`, `"z"` |
//! | bool, int, float, string, datetime | `{"b": true}`, `{"i": 1}`, `{"f": 1.5}` (or `"NaN"`, `"Infinity"`, `"-Infinity"`), `{"s": "…"}`, `{"d": "…"}` |
//! | decimal, duration, uuid | `{"m": "1.50"}` (its text, exact), `{"u": {"secs": …, "nanos": …}}`, `{"g": "…"}` (hyphenated) |
//! | bytes, geometry | `{"y": [1, 2]}`, `{"e": …}` (SurrealDB's own serde form) |
//! | record id | `{"t": {"table": …, "key": …}}` (keys as in the rest of the file) |
//! | array of n items | `{"a": n}`, then the n items |
//! | object | `{"o": ["name", …]}`, then one item per name |
//!
//! Content written by format 1 (the derived, nested form) is still read.

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use thin_vec::ThinVec;

use super::value::{FieldName, Number, Object, RecordId, Value, float_repr};
use surrealdb::types as sdb;
use surrealdb::types::Decimal;

#[derive(Serialize, Deserialize)]
enum Node {
    #[serde(rename = "n")]
    None,
    #[serde(rename = "z")]
    Null,
    #[serde(rename = "b")]
    Bool(bool),
    #[serde(rename = "i")]
    Int(i64),
    #[serde(rename = "f")]
    Float(#[serde(with = "float_repr")] f64),
    #[serde(rename = "s")]
    String(Box<str>),
    #[serde(rename = "d")]
    Datetime(DateTime<Utc>),
    #[serde(rename = "m")]
    Decimal(Decimal),
    #[serde(rename = "u")]
    Duration(std::time::Duration),
    #[serde(rename = "g")]
    Uuid(uuid::Uuid),
    #[serde(rename = "y")]
    Bytes(Vec<u8>),
    #[serde(rename = "e")]
    Geometry(sdb::Geometry),
    #[serde(rename = "t")]
    Thing(RecordId),
    #[serde(rename = "a")]
    Array(usize),
    #[serde(rename = "q")]
    Set(usize),
    #[serde(rename = "o")]
    Object(Vec<FieldName>),
}

/// Borrowing twin of [`Node`] for writing: same items, no copies.
#[derive(Serialize)]
enum NodeRef<'a> {
    #[serde(rename = "n")]
    None,
    #[serde(rename = "z")]
    Null,
    #[serde(rename = "b")]
    Bool(bool),
    #[serde(rename = "i")]
    Int(i64),
    #[serde(rename = "f")]
    Float(#[serde(with = "float_repr")] f64),
    #[serde(rename = "s")]
    String(&'a str),
    #[serde(rename = "d")]
    Datetime(&'a DateTime<Utc>),
    #[serde(rename = "m")]
    Decimal(&'a Decimal),
    #[serde(rename = "u")]
    Duration(&'a std::time::Duration),
    #[serde(rename = "g")]
    Uuid(&'a uuid::Uuid),
    #[serde(rename = "y")]
    Bytes(&'a [u8]),
    #[serde(rename = "e")]
    Geometry(&'a sdb::Geometry),
    #[serde(rename = "t")]
    Thing(&'a RecordId),
    #[serde(rename = "a")]
    Array(usize),
    #[serde(rename = "q")]
    Set(usize),
    #[serde(rename = "o")]
    Object(&'a [FieldName]),
}

fn node_of(v: &Value) -> NodeRef<'_> {
    match v {
        Value::None => NodeRef::None,
        Value::Null => NodeRef::Null,
        Value::Bool(b) => NodeRef::Bool(*b),
        Value::Number(Number::Int(i)) => NodeRef::Int(*i),
        Value::Number(Number::Float(f)) => NodeRef::Float(*f),
        Value::String(s) => NodeRef::String(s),
        Value::Datetime(d) => NodeRef::Datetime(d),
        Value::Decimal(d) => NodeRef::Decimal(d),
        Value::Duration(d) => NodeRef::Duration(d),
        Value::Uuid(u) => NodeRef::Uuid(u),
        Value::Bytes(b) => NodeRef::Bytes(b),
        Value::Geometry(g) => NodeRef::Geometry(g),
        Value::Thing(t) => NodeRef::Thing(t),
        Value::Array(a) => NodeRef::Array(a.len()),
        Value::Set(a) => NodeRef::Set(a.len()),
        Value::Object(o) => NodeRef::Object(o.names()),
    }
}

pub fn serialize<S: Serializer>(value: &Value, serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(None)?;
    // Pre-order with an explicit stack of the values still to write.
    let mut todo: Vec<&Value> = vec![value];
    while let Some(v) = todo.pop() {
        seq.serialize_element(&node_of(v))?;
        match v {
            Value::Array(a) | Value::Set(a) => todo.extend(a.iter().rev()),
            Value::Object(o) => todo.extend(o.values().iter().rev()),
            _ => {}
        }
    }
    seq.end()
}

/// A container being rebuilt: its items so far, and what it still needs.
enum Open {
    Array(usize, Vec<Value>),
    Set(usize, Vec<Value>),
    Object(Vec<FieldName>, Vec<Value>),
}

impl Open {
    fn missing(&self) -> usize {
        match self {
            Open::Array(n, items) | Open::Set(n, items) => n - items.len(),
            Open::Object(names, values) => names.len() - values.len(),
        }
    }

    fn push(&mut self, v: Value) {
        match self {
            Open::Array(_, items) | Open::Set(_, items) => items.push(v),
            Open::Object(_, values) => values.push(v),
        }
    }

    fn close(self) -> Value {
        match self {
            Open::Array(_, items) => Value::Array(ThinVec::from(items)),
            Open::Set(_, items) => Value::Set(ThinVec::from(items)),
            Open::Object(names, values) => {
                Value::Object(Object::from_pairs(names.into_iter().zip(values).collect()))
            }
        }
    }
}

struct FlatVisitor;

impl<'de> Visitor<'de> for FlatVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record's content: a list of nodes, or (format 1) a value")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut open: Vec<Open> = Vec::new();
        let mut done: Option<Value> = None;
        while let Some(node) = seq.next_element::<Node>()? {
            if done.is_some() {
                return Err(de::Error::custom("a node after the value ended"));
            }
            let mut v = match node {
                Node::None => Value::None,
                Node::Null => Value::Null,
                Node::Bool(b) => Value::Bool(b),
                Node::Int(i) => Value::Number(Number::Int(i)),
                Node::Float(f) => Value::Number(Number::Float(f)),
                Node::String(s) => Value::String(s.as_ref().into()),
                Node::Datetime(d) => Value::datetime(d),
                Node::Decimal(d) => Value::decimal(d),
                Node::Duration(d) => Value::duration(d),
                Node::Uuid(u) => Value::uuid(u),
                Node::Bytes(b) => Value::Bytes(ThinVec::from(b)),
                Node::Geometry(g) => Value::Geometry(Box::new(g)),
                Node::Thing(t) => Value::thing(t),
                Node::Array(n) => {
                    // The count is the file's word: grow as items come.
                    let o = Open::Array(n, Vec::with_capacity(n.min(1024)));
                    if n > 0 {
                        open.push(o);
                        continue;
                    }
                    o.close()
                }
                Node::Set(n) => {
                    let o = Open::Set(n, Vec::with_capacity(n.min(1024)));
                    if n > 0 {
                        open.push(o);
                        continue;
                    }
                    o.close()
                }
                Node::Object(names) => {
                    let o = Open::Object(names, Vec::new());
                    if o.missing() > 0 {
                        open.push(o);
                        continue;
                    }
                    o.close()
                }
            };
            // Hand the finished value up, closing every container it fills.
            loop {
                match open.last_mut() {
                    None => {
                        done = Some(v);
                        break;
                    }
                    Some(top) => {
                        top.push(v);
                        if top.missing() > 0 {
                            break;
                        }
                        let Some(full) = open.pop() else { break };
                        v = full.close();
                    }
                }
            }
        }
        done.ok_or_else(|| de::Error::custom("a record's content ends early"))
    }

    // Format 1: the nested form serde derives for `Value`.
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Value::deserialize(de::value::StrDeserializer::<E>::new(s))
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    deserializer.deserialize_any(FlatVisitor)
}
