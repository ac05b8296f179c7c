//! The types SurrealDB gives a table's fields (`DEFINE FIELD ... TYPE`),
//! read with `INFO FOR TABLE`: what `/ingest`'s JSON is converted to.
//!
//! JSON has no datetime, decimal, duration, uuid or record id: an app sends
//! them as strings (or a decimal as a number). SurrealDB holds them typed,
//! and compares them as their type (a string sorts below every datetime).
//! So a field the schema types is converted to that type, as SurrealDB
//! holds it, and a view compares what SurrealDB would compare. A value that
//! does not read as its field's type is left as it came: SurrealDB would
//! have refused such a write, and guessing would be worse.
//!
//! Types are cached per table and read again in the background once older
//! than [`TTL`]: a schema change is seen within about that long. Schemaless
//! fields stay as JSON gave them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ahash::AHashMap;
use surrealdb::types as sdb;
use surrealdb::types::Decimal;
use surrealdb_sql::Kind;

use super::{Db, Query};
use crate::engine::value::{Object, RecordId, Value};

/// How long a table's field types are used before they are read again.
pub const TTL: Duration = Duration::from_secs(5);

/// What a typed field's JSON value becomes.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    Datetime,
    Decimal,
    Duration,
    Uuid,
    Record,
    /// `array<T>`: each element.
    Each(Box<Target>),
    /// `set` and `set<T>`: a set (items in SurrealDB's order, each once),
    /// each element converted first.
    Set(Option<Box<Target>>),
}

/// The typed fields of one table, by path (`meta.created` is two parts).
#[derive(Debug, Default)]
pub struct TableTypes {
    fields: Vec<(Vec<String>, Target)>,
}

impl TableTypes {
    /// From `INFO FOR TABLE <t> STRUCTURE` (`{fields: [{name, kind}, ...]}`).
    fn from_info(info: &sdb::Value) -> TableTypes {
        let mut fields = Vec::new();
        let Some(sdb::Value::Array(defs)) = (match info {
            sdb::Value::Object(o) => o.get("fields"),
            _ => None,
        }) else {
            return TableTypes::default();
        };
        for def in defs.iter() {
            let sdb::Value::Object(def) = def else {
                continue;
            };
            let (Some(sdb::Value::String(name)), Some(sdb::Value::String(kind))) =
                (def.get("name"), def.get("kind"))
            else {
                continue;
            };
            // Plain paths only: `tags[*]`, quoted names and the like keep
            // their JSON values.
            if name.contains(['[', '`', '⟨', '*']) {
                continue;
            }
            let Some(target) = surrealdb_syn::kind(kind).ok().as_ref().and_then(target_of) else {
                continue;
            };
            fields.push((name.split('.').map(str::to_owned).collect(), target));
        }
        TableTypes { fields }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Converts the typed fields of `content` (a record from JSON).
    pub fn apply(&self, content: &mut Object) {
        for (path, target) in &self.fields {
            convert_at(content, path, target);
        }
    }
}

/// The single type a kind converts to: `option<T>` and `none | T` are `T`;
/// a union of several convertible types is ambiguous, and left alone.
fn target_of(kind: &Kind) -> Option<Target> {
    match kind {
        Kind::Datetime => Some(Target::Datetime),
        Kind::Decimal => Some(Target::Decimal),
        Kind::Duration => Some(Target::Duration),
        Kind::Uuid => Some(Target::Uuid),
        Kind::Record(_) => Some(Target::Record),
        Kind::Array(inner, _) => target_of(inner).map(|t| Target::Each(Box::new(t))),
        Kind::Set(inner, _) => Some(Target::Set(target_of(inner).map(Box::new))),
        Kind::Either(kinds) => {
            let mut targets = kinds
                .iter()
                .filter(|k| !matches!(k, Kind::None | Kind::Null))
                .map(target_of);
            match (targets.next(), targets.next()) {
                (Some(t), None) => t,
                _ => None,
            }
        }
        _ => None,
    }
}

fn convert_at(content: &mut Object, path: &[String], target: &Target) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(pos) = content.names().iter().position(|n| n.as_ref() == first) else {
        return;
    };
    let mut value = content.values()[pos].clone();
    if rest.is_empty() {
        value = convert(value, target);
    } else if let Value::Object(mut inner) = value {
        convert_at(&mut inner, rest, target);
        value = Value::Object(inner);
    } else {
        return;
    }
    content.set_at(pos, value);
}

/// `v` as `target`, when it reads as one; else `v` unchanged.
fn convert(v: Value, target: &Target) -> Value {
    let converted = match (&v, target) {
        (Value::Array(items), Target::Each(t)) => Some(Value::Array(
            items.iter().map(|x| convert(x.clone(), t)).collect(),
        )),
        (Value::Array(items), Target::Set(t)) => {
            let mut items: Vec<Value> = items
                .iter()
                .map(|x| match t {
                    Some(t) => convert(x.clone(), t),
                    None => x.clone(),
                })
                .collect();
            items.sort_by(|a, b| a.sql_cmp(b));
            items.dedup_by(|a, b| a.sql_eq(b));
            Some(Value::Set(items.into()))
        }
        (Value::String(s), Target::Datetime) => surrealdb_syn::datetime(s)
            .ok()
            .map(|d| Value::datetime(d.into_inner())),
        (Value::String(s), Target::Decimal) => s.parse::<Decimal>().ok().map(Value::decimal),
        (Value::Number(n), Target::Decimal) => {
            // The number's shortest text (`0.1`, not 0.1000000000000000055…).
            let text = match n {
                crate::engine::value::Number::Int(i) => i.to_string(),
                crate::engine::value::Number::Float(f) => f.to_string(),
            };
            text.parse::<Decimal>().ok().map(Value::decimal)
        }
        (Value::String(s), Target::Duration) => s
            .parse::<sdb::Duration>()
            .ok()
            .map(|d| Value::duration(d.into_inner())),
        (Value::String(s), Target::Uuid) => uuid::Uuid::try_parse(s).ok().map(Value::uuid),
        (Value::String(s), Target::Record) => RecordId::parse(s).map(Value::thing),
        _ => None,
    };
    converted.unwrap_or(v)
}

/// Per table: when its types were read (or their refresh began), and them.
type Cache = Arc<Mutex<AHashMap<String, (Instant, Arc<TableTypes>)>>>;

/// The field types of the tables `/ingest` has seen, read again after [`TTL`].
#[derive(Default)]
pub struct FieldTypes {
    cache: Cache,
}

impl FieldTypes {
    /// `table`'s field types. The first time a table is seen they are read
    /// now (one background round trip); after that the cached ones answer,
    /// and once they are older than [`TTL`] a task reads them again while
    /// the request goes on with them: no request waits on the schema again.
    /// A table that cannot be read has none (nothing is converted).
    pub async fn of(&self, db: &Arc<Db>, table: &str) -> Arc<TableTypes> {
        let cached = self.cache.lock().ok().and_then(|mut c| {
            let (at, types) = c.get_mut(table)?;
            if at.elapsed() >= TTL {
                // One refresh per TTL: the entry counts as fresh meanwhile.
                *at = Instant::now();
                let (db, cache, table) =
                    (Arc::clone(db), Arc::clone(&self.cache), table.to_owned());
                tokio::spawn(async move {
                    let types = Arc::new(read(&db, &table).await);
                    if let Ok(mut c) = cache.lock() {
                        c.insert(table, (Instant::now(), types));
                    }
                });
            }
            Some(Arc::clone(types))
        });
        if let Some(types) = cached {
            return types;
        }
        let types = Arc::new(read(db, table).await);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(table.to_owned(), (Instant::now(), Arc::clone(&types)));
        }
        types
    }
}

/// Reads `table`'s field types (`INFO FOR TABLE`); none if it cannot.
async fn read(db: &Db, table: &str) -> TableTypes {
    let q =
        Query::new("INFO FOR TABLE $t STRUCTURE").bind("t", sdb::Value::String(table.to_owned()));
    match db.run_background(q).await {
        Ok(mut response) => match response.take::<sdb::Value>(0) {
            Ok(info) => TableTypes::from_info(&info),
            Err(e) => {
                tracing::debug!(table, error = %e, "no field types for the table");
                TableTypes::default()
            }
        },
        Err(e) => {
            tracing::debug!(table, error = %e, "could not read the table's field types");
            TableTypes::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(fields: &[(&str, &str)]) -> sdb::Value {
        let defs: Vec<sdb::Value> = fields
            .iter()
            .map(|(name, kind)| {
                let mut o = sdb::Object::new();
                o.insert("name".to_owned(), sdb::Value::String((*name).to_owned()));
                o.insert("kind".to_owned(), sdb::Value::String((*kind).to_owned()));
                sdb::Value::Object(o)
            })
            .collect();
        let mut o = sdb::Object::new();
        o.insert("fields".to_owned(), sdb::Value::Array(defs.into()));
        sdb::Value::Object(o)
    }

    #[test]
    fn typed_fields_convert_and_the_rest_stays() {
        let types = TableTypes::from_info(&info(&[
            ("at", "datetime"),
            ("amount", "decimal"),
            ("price", "option<decimal>"),
            ("ttl", "none | duration"),
            ("uid", "uuid"),
            ("owner", "record<user>"),
            ("meta.seen", "array<datetime>"),
            ("either", "datetime | uuid"),
            ("name", "string"),
            ("tags[*]", "datetime"),
        ]));
        assert_eq!(types.fields.len(), 7, "{types:?}");
        let json = serde_json::json!({
            "at": "2024-01-02T03:04:05Z",
            "amount": "1.00000000000000000001",
            "price": 0.1,
            "ttl": "1h30m",
            "uid": "0190fe58-8c5b-7d0c-9d5e-7b7a1c2f4e3a",
            "owner": "user:1",
            "meta": {"seen": ["2024-01-01T00:00:00Z", "not a date"]},
            "either": "2024-01-01T00:00:00Z",
            "name": "2024-01-01T00:00:00Z",
            "bad": "x",
        });
        let Value::Object(mut o) = Value::from(&json) else {
            panic!()
        };
        types.apply(&mut o);
        let get = |k: &str| o.get(k).cloned().unwrap_or_default();
        assert!(matches!(get("at"), Value::Datetime(_)));
        assert_eq!(
            get("amount"),
            Value::decimal("1.00000000000000000001".parse().unwrap())
        );
        assert_eq!(get("price"), Value::decimal("0.1".parse().unwrap()));
        assert_eq!(
            get("ttl"),
            Value::duration(std::time::Duration::from_secs(5400))
        );
        assert!(matches!(get("uid"), Value::Uuid(_)));
        assert!(matches!(get("owner"), Value::Thing(_)));
        let Value::Object(meta) = get("meta") else {
            panic!()
        };
        let Some(Value::Array(seen)) = meta.get("seen") else {
            panic!()
        };
        assert!(matches!(seen[0], Value::Datetime(_)));
        assert_eq!(seen[1], Value::str("not a date"), "left as it came");
        assert_eq!(
            get("either"),
            Value::str("2024-01-01T00:00:00Z"),
            "ambiguous"
        );
        assert_eq!(get("name"), Value::str("2024-01-01T00:00:00Z"), "a string");
    }
}
