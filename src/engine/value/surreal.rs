//! Conversions between SurrealDB's values and the engine's.
//!
//! The engine's values are SurrealDB's (its geometry and record keys are held
//! as SurrealDB's own types); this is the one place they are converted.
//! `db::values` re-exports it for the I/O side.

use std::sync::Arc;

use surrealdb::types as sdb;

use super::{Composite, Key, Number, Object, RecordId, Value};

/// A SurrealDB value as the engine evaluates it, type for type. Tables,
/// files, regexes and ranges (values no record field holds in practice)
/// become their SurrealQL text.
pub fn from_surreal(v: sdb::Value) -> Value {
    match v {
        sdb::Value::None => Value::None,
        sdb::Value::Null => Value::Null,
        sdb::Value::Bool(b) => Value::Bool(b),
        sdb::Value::Number(sdb::Number::Int(i)) => Value::Number(Number::Int(i)),
        sdb::Value::Number(sdb::Number::Float(f)) => Value::Number(Number::Float(f)),
        sdb::Value::Number(sdb::Number::Decimal(d)) => Value::decimal(d),
        sdb::Value::String(s) => Value::String(s.into()),
        sdb::Value::Datetime(d) => Value::datetime(d.into_inner()),
        sdb::Value::Duration(d) => Value::duration(d.into_inner()),
        sdb::Value::Uuid(u) => Value::uuid(u.into_inner()),
        sdb::Value::Bytes(b) => Value::Bytes(b.into_inner().iter().copied().collect()),
        sdb::Value::Geometry(g) => Value::Geometry(Box::new(g)),
        sdb::Value::RecordId(r) => match record_id_from_surreal(&r) {
            Some(id) => Value::thing(id),
            // A range as a field's value: kept as its text, like other
            // values outside the engine's types.
            None => Value::String(sdb::ToSql::to_sql(&sdb::Value::RecordId(r)).into()),
        },
        sdb::Value::Array(a) => {
            Value::Array(a.into_inner().into_iter().map(from_surreal).collect())
        }
        // The SDK's set iterates in SurrealDB's order (the test below).
        sdb::Value::Set(s) => Value::Set(s.into_iter().map(from_surreal).collect()),
        sdb::Value::Object(o) => Value::Object(object_from_surreal(o)),
        other => Value::String(sdb::ToSql::to_sql(&other).into()),
    }
}

pub fn object_from_surreal(o: sdb::Object) -> Object {
    // BTreeMap iteration is sorted by key, which is the engine's layout too.
    Object::from_pairs(
        o.into_inner()
            .into_iter()
            .map(|(k, v)| (Arc::<str>::from(k), from_surreal(v)))
            .collect(),
    )
}

/// The engine's record id for a SurrealDB one; `None` for a range, which
/// names many records and is the id of none.
pub fn record_id_from_surreal(r: &sdb::RecordId) -> Option<RecordId> {
    Some(RecordId::new(r.table.as_str(), key_from_surreal(&r.key)?))
}

/// The engine's key for a SurrealDB key; `None` for a range.
pub fn key_from_surreal(k: &sdb::RecordIdKey) -> Option<Key> {
    Some(match k {
        sdb::RecordIdKey::Number(n) => Key::Int(*n),
        sdb::RecordIdKey::String(s) => Key::String(s.as_str().into()),
        sdb::RecordIdKey::Uuid(u) => Key::Uuid(*u.as_bytes()),
        sdb::RecordIdKey::Array(a) => Key::Composite(Arc::new(Composite::new(
            k.clone(),
            from_surreal(sdb::Value::Array(a.clone())),
        ))),
        sdb::RecordIdKey::Object(o) => Key::Composite(Arc::new(Composite::new(
            k.clone(),
            from_surreal(sdb::Value::Object(o.clone())),
        ))),
        sdb::RecordIdKey::Range(_) => return None,
    })
}

pub fn record_id_to_surreal(r: &RecordId) -> sdb::RecordId {
    let key = match &r.key {
        Key::Int(i) => sdb::RecordIdKey::Number(*i),
        Key::String(s) => sdb::RecordIdKey::String(s.to_string()),
        Key::Uuid(b) => sdb::RecordIdKey::Uuid(uuid::Uuid::from_bytes(*b).into()),
        Key::Composite(c) => c.native().clone(),
    };
    sdb::RecordId::new(r.table.as_ref(), key)
}

/// The engine's value as a SurrealDB value, for binding.
pub fn to_surreal(v: &Value) -> sdb::Value {
    match v {
        Value::None => sdb::Value::None,
        Value::Null => sdb::Value::Null,
        Value::Bool(b) => sdb::Value::Bool(*b),
        Value::Number(Number::Int(i)) => sdb::Value::Number(sdb::Number::Int(*i)),
        Value::Number(Number::Float(f)) => sdb::Value::Number(sdb::Number::Float(*f)),
        Value::Decimal(d) => sdb::Value::Number(sdb::Number::Decimal(**d)),
        Value::String(s) => sdb::Value::String(s.to_string()),
        Value::Duration(d) => sdb::Value::Duration(sdb::Duration::from_std(**d)),
        Value::Datetime(d) => sdb::Value::Datetime((**d).into()),
        Value::Uuid(u) => sdb::Value::Uuid((**u).into()),
        Value::Bytes(b) => sdb::Value::Bytes(b.to_vec().into()),
        Value::Geometry(g) => sdb::Value::Geometry((**g).clone()),
        Value::Array(a) => sdb::Value::Array(a.iter().map(to_surreal).collect::<Vec<_>>().into()),
        Value::Set(a) => sdb::Value::Set(a.iter().map(to_surreal).collect::<Vec<_>>().into()),
        Value::Object(o) => {
            let mut out = sdb::Object::new();
            for (k, v) in o.iter() {
                out.insert(k.to_string(), to_surreal(v));
            }
            sdb::Value::Object(out)
        }
        Value::Thing(r) => sdb::Value::RecordId(record_id_to_surreal(r)),
    }
}

/// A JSON value as SurrealDB should store it (`params` of a view).
pub fn json_to_surreal(j: &serde_json::Value) -> sdb::Value {
    to_surreal(&Value::from(j))
}

/// A view's param as SSP binds it when it runs the query in SurrealDB: as
/// [`Value::param_from_json`] reads it in the engine (a record id's text is
/// that record id), so that both tiers see the same value.
pub fn param_to_surreal(j: &serde_json::Value) -> sdb::Value {
    to_surreal(&Value::param_from_json(j))
}

/// A SurrealDB value as JSON (record links and datetimes become strings).
pub fn surreal_to_json(v: sdb::Value) -> serde_json::Value {
    from_surreal(v).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set's items come in SurrealDB's order (a duration before bytes,
    /// an array before a record id), which `[0]` and comparisons read, and
    /// not in the order of the SDK's value variants (Bytes < Duration,
    /// RecordId < Array).
    #[test]
    fn a_set_keeps_surrealdbs_order() {
        let set = sdb::Value::Set(
            vec![
                sdb::Value::Bytes(vec![1u8].into()),
                sdb::Value::Duration(sdb::Duration::from_std(std::time::Duration::from_secs(1))),
                sdb::Value::RecordId(sdb::RecordId::new("t", 1)),
                sdb::Value::Array(vec![sdb::Value::Number(sdb::Number::Int(1))].into()),
            ]
            .into(),
        );
        let Value::Set(items) = from_surreal(set) else {
            panic!("a set stays a set");
        };
        let kinds: Vec<&str> = items
            .iter()
            .map(|v| match v {
                Value::Duration(_) => "duration",
                Value::Array(_) => "array",
                Value::Bytes(_) => "bytes",
                Value::Thing(_) => "record",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["duration", "array", "bytes", "record"]);
    }
}
