//! Paths into values (`a.b[0]`), as SurrealDB reads them on a record
//! without fetching links: a path through a record id is noted (see
//! [`super::take_link_followed`]), never followed here (`eval::Row` follows
//! them where the engine can).

use super::*;

impl Value {
    /// Follows a field path. Missing fields, and fields of non-objects, are NONE.
    /// A field of an array maps over its elements, as in SurrealQL.
    pub fn get_path(&self, path: &[PathPart]) -> Value {
        let Some((first, rest)) = path.split_first() else {
            return self.clone();
        };
        match (first, self) {
            (PathPart::Field(name), Value::Object(o)) => match o.get(name) {
                Some(v) => v.get_path(rest),
                None => Value::None,
            },
            (PathPart::Field(_), Value::Array(items) | Value::Set(items)) => {
                Value::Array(items.iter().map(|v| v.get_path(path)).collect())
            }
            (PathPart::Index(i), Value::Array(items) | Value::Set(items)) => match items.get(*i) {
                Some(v) => v.get_path(rest),
                None => Value::None,
            },
            (PathPart::Index(i), Value::Thing(t)) => {
                match t.key.array_key().and_then(|a| a.get(*i)) {
                    Some(v) => v.get_path(rest),
                    None => Value::None,
                }
            }
            (PathPart::Field(_), v) if v.is_link() => {
                // As in `lookup`: SurrealDB would follow the link.
                LINK_FOLLOWED.with(|f| f.set(true));
                Value::None
            }
            (PathPart::Index(_), Value::String(s)) if text_of_array_keyed_id(s) => {
                // If the database holds a record id there, `[n]` reads its
                // key; JSON text cannot say which it is.
                LINK_FOLLOWED.with(|f| f.set(true));
                Value::None
            }
            _ => Value::None,
        }
    }

    /// A record id, or a string that is one's text (as JSON gives them): a
    /// field path through it is a fetch of that record in SurrealDB.
    fn is_link(&self) -> bool {
        match self {
            Value::Thing(_) => true,
            Value::String(s) => RecordId::parse(s).is_some(),
            _ => false,
        }
    }

    /// Borrowing fast path of [`Value::get_path`] for plain field chains.
    pub fn lookup(&self, path: &[PathPart]) -> Option<&Value> {
        let mut cur = self;
        for part in path {
            cur = match (part, cur) {
                (PathPart::Field(name), Value::Object(o)) => o.get(name)?,
                (PathPart::Index(i), Value::Array(items) | Value::Set(items)) => items.get(*i)?,
                // `t:[1, 'a'][0]` is `1`: an index reads an array key (no
                // fetch); of any other record id it is NONE. Measured on 3.3.5.
                (PathPart::Index(i), Value::Thing(t)) => t.key.array_key()?.get(*i)?,
                (PathPart::Index(_), Value::String(s)) if text_of_array_keyed_id(s) => {
                    LINK_FOLLOWED.with(|f| f.set(true));
                    return None;
                }
                (PathPart::Field(_), v) if v.is_link() => {
                    // SurrealDB would fetch the linked record here; the
                    // engine cannot, so it says so (see `take_link_followed`).
                    LINK_FOLLOWED.with(|f| f.set(true));
                    return None;
                }
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// Whether `s` is the text of a record id with an array key (`t:[1, 'a']`).
pub(crate) fn text_of_array_keyed_id(s: &str) -> bool {
    RecordId::parse(s).is_some_and(|r| r.key.array_key().is_some())
}
