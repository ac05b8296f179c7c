//! Values written and read as SurrealQL literals.

use super::*;

// ===========================================================================
// Values
// ===========================================================================

pub(crate) fn int(i: i64) -> Value {
    Value::Number(Number::Int(i))
}

pub(crate) fn float(f: f64) -> Value {
    Value::Number(Number::Float(f))
}

pub(crate) fn string(s: &str) -> Value {
    Value::String(s.into())
}

pub(crate) fn thing(table: &str, key: Key) -> Value {
    Value::thing(RecordId::new(table, key))
}

pub(crate) fn object(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(Object::from_pairs(
        pairs
            .into_iter()
            .filter(|(_, v)| !matches!(v, Value::None))
            .map(|(k, v)| (k.into(), v))
            .collect(),
    ))
}

pub(crate) fn contains_thing(v: &Value) -> bool {
    match v {
        Value::Thing(_) => true,
        Value::Array(a) => a.iter().any(contains_thing),
        Value::Object(o) => o.iter().any(|(_, v)| contains_thing(v)),
        _ => false,
    }
}

pub(crate) fn contains_object(v: &Value) -> bool {
    match v {
        Value::Object(_) => true,
        Value::Array(a) => a.iter().any(contains_object),
        _ => false,
    }
}

/// Whether `v` holds a value JSON has no form for (a datetime, decimal,
/// duration, uuid, bytes, geometry, NaN or an infinity): params are JSON,
/// so it cannot be one.
pub(crate) fn contains_typed(v: &Value) -> bool {
    match v {
        Value::Number(Number::Float(f)) => !f.is_finite(),
        Value::Datetime(_)
        | Value::Decimal(_)
        | Value::Duration(_)
        | Value::Uuid(_)
        | Value::Bytes(_)
        | Value::Geometry(_)
        | Value::Set(_) => true,
        Value::Array(a) => a.iter().any(contains_typed),
        Value::Object(o) => o.iter().any(|(_, v)| contains_typed(v)),
        _ => false,
    }
}

/// Whether `v` holds bytes, a geometry or a record id with an array or
/// object key, which SSP's queries have no literal for.
pub(crate) fn contains_unwritable(v: &Value) -> bool {
    match v {
        Value::Bytes(_) | Value::Geometry(_) | Value::Set(_) => true,
        Value::Thing(t) => matches!(t.key, Key::Composite(_)),
        Value::Array(a) => a.iter().any(contains_unwritable),
        Value::Object(o) => o.iter().any(|(_, v)| contains_unwritable(v)),
        _ => false,
    }
}

/// A value as a SurrealQL literal.
pub(crate) fn lit(v: &Value) -> String {
    match v {
        Value::None => "NONE".into(),
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(Number::Int(i)) => i.to_string(),
        Value::Number(Number::Float(f)) => float_lit(*f),
        Value::String(s) => quote(s),
        Value::Datetime(d) => format!("d\"{}\"", d.to_rfc3339_opts(SecondsFormat::Secs, true)),
        Value::Array(a) => format!("[{}]", a.iter().map(lit).collect::<Vec<_>>().join(", ")),
        Value::Set(a) => format!(
            "<set>[{}]",
            a.iter().map(lit).collect::<Vec<_>>().join(", ")
        ),
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
        // SurrealDB's own SurrealQL text for them (`1.5dec`, `1h30m`, `u'…'`).
        Value::Decimal(_)
        | Value::Duration(_)
        | Value::Uuid(_)
        | Value::Bytes(_)
        | Value::Geometry(_) => sdb::ToSql::to_sql(&to_surreal(v)),
    }
}

pub(crate) fn float_lit(f: f64) -> String {
    match f {
        f if f.is_nan() => "NaN".into(),
        f if f == f64::INFINITY => "Infinity".into(),
        f if f == f64::NEG_INFINITY => "-Infinity".into(),
        // `{:?}` always writes a `.` or an exponent, which SurrealQL reads as a float.
        f => format!("{f:?}"),
    }
}

pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}
