//! The forum records the writers make, and the model of what SurrealDB holds.

use super::*;

#[derive(Clone, PartialEq)]
pub(crate) enum Field {
    Int(i64),
    Str(String),
    Bool(bool),
    Link(&'static str, i64),
    Tags(Vec<&'static str>),
}

/// A record's content, written to SurrealDB with typed links and sent to
/// `/ingest` as JSON (links as `table:key` strings, as an app's JSON has them).
#[derive(Clone, PartialEq)]
pub(crate) struct Content(pub(crate) Vec<(&'static str, Field)>);

impl Content {
    pub(crate) fn to_surreal(&self) -> sdb::Value {
        let mut object = sdb::Object::new();
        for (name, field) in &self.0 {
            let value = match field {
                Field::Int(i) => sdb::Value::Number(sdb::Number::Int(*i)),
                Field::Str(s) => sdb::Value::String(s.clone()),
                Field::Bool(b) => sdb::Value::Bool(*b),
                Field::Link(table, key) => sdb::Value::RecordId(sdb::RecordId::new(*table, *key)),
                Field::Tags(tags) => sdb::Value::Array(
                    tags.iter()
                        .map(|t| sdb::Value::String((*t).to_owned()))
                        .collect::<Vec<_>>()
                        .into(),
                ),
            };
            object.insert(*name, value);
        }
        sdb::Value::Object(object)
    }

    pub(crate) fn to_json(&self) -> Json {
        let mut object = serde_json::Map::new();
        for (name, field) in &self.0 {
            let value = match field {
                Field::Int(i) => json!(i),
                Field::Str(s) => json!(s),
                Field::Bool(b) => json!(b),
                Field::Link(table, key) => json!(format!("{table}:{key}")),
                Field::Tags(tags) => json!(tags),
            };
            object.insert((*name).to_owned(), value);
        }
        Json::Object(object)
    }

    pub(crate) fn set(&mut self, name: &str, value: Field) {
        if let Some(slot) = self.0.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        }
    }
}

/// Keys handed out and the records links may point at.
pub(crate) struct Model {
    pub(crate) next_key: [AtomicI64; 3],
    /// Order of comments (`created`), unique so that views ordered by it have
    /// no ties.
    pub(crate) seq: AtomicI64,
    /// Users and threads that exist (or did: links may dangle, as in apps).
    pub(crate) linkable: [Mutex<Vec<i64>>; 2],
}

impl Model {
    pub(crate) fn new() -> Model {
        Model {
            next_key: [AtomicI64::new(1), AtomicI64::new(1), AtomicI64::new(1)],
            seq: AtomicI64::new(1),
            linkable: [Mutex::new(Vec::new()), Mutex::new(Vec::new())],
        }
    }

    pub(crate) fn fresh_key(&self, table: usize) -> i64 {
        self.next_key[table].fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn pick(&self, table: usize, rng: &mut StdRng) -> i64 {
        let keys = self.linkable[table].lock().unwrap();
        keys.choose(rng).copied().unwrap_or(1)
    }

    pub(crate) fn created(&self, table: usize, key: i64) {
        if table < 2 {
            self.linkable[table].lock().unwrap().push(key);
        }
    }

    pub(crate) fn deleted(&self, table: usize, key: i64) {
        if table < 2 {
            let mut keys = self.linkable[table].lock().unwrap();
            if let Some(i) = keys.iter().position(|k| *k == key) {
                keys.swap_remove(i);
            }
        }
    }

    pub(crate) fn content(&self, table: usize, key: i64, rng: &mut StdRng) -> Content {
        match table {
            0 => Content(vec![
                (
                    "name",
                    Field::Str(format!("{} {key}", WORDS.choose(rng).unwrap())),
                ),
                ("karma", Field::Int(rng.random_range(0..100))),
                ("active", Field::Bool(rng.random_bool(0.7))),
            ]),
            1 => Content(vec![
                ("author", Field::Link("user", self.pick(0, rng))),
                ("title", Field::Str(title(rng))),
                ("score", Field::Int(rng.random_range(0..100))),
                (
                    "status",
                    Field::Str(
                        if rng.random_bool(0.7) {
                            "open"
                        } else {
                            "closed"
                        }
                        .to_owned(),
                    ),
                ),
                ("tags", Field::Tags(tags(rng))),
            ]),
            _ => Content(vec![
                ("thread", Field::Link("thread", self.pick(1, rng))),
                ("author", Field::Link("user", self.pick(0, rng))),
                (
                    "body",
                    Field::Str(format!("comment {key} r{}", rng.random_range(0..1000))),
                ),
                ("score", Field::Int(rng.random_range(0..50))),
                (
                    "created",
                    Field::Int(self.seq.fetch_add(1, Ordering::Relaxed)),
                ),
            ]),
        }
    }

    /// A changed copy: a few fields move, as app updates do; sometimes none,
    /// which SSP must treat as a no-op.
    pub(crate) fn update(&self, table: usize, old: &Content, rng: &mut StdRng) -> Content {
        let mut new = old.clone();
        if rng.random_bool(0.05) {
            return new;
        }
        match table {
            0 => {
                new.set("karma", Field::Int(rng.random_range(0..100)));
                if rng.random_bool(0.3) {
                    new.set("active", Field::Bool(rng.random_bool(0.7)));
                }
            }
            1 => {
                new.set("score", Field::Int(rng.random_range(0..100)));
                if rng.random_bool(0.3) {
                    new.set("title", Field::Str(title(rng)));
                }
                if rng.random_bool(0.2) {
                    new.set("author", Field::Link("user", self.pick(0, rng)));
                }
                if rng.random_bool(0.2) {
                    new.set("tags", Field::Tags(tags(rng)));
                }
                if rng.random_bool(0.2) {
                    let open = rng.random_bool(0.7);
                    new.set(
                        "status",
                        Field::Str(if open { "open" } else { "closed" }.to_owned()),
                    );
                }
            }
            _ => {
                new.set("score", Field::Int(rng.random_range(0..50)));
                if rng.random_bool(0.3) {
                    let body = format!("edited r{}", rng.random_range(0..1000));
                    new.set("body", Field::Str(body));
                }
            }
        }
        new
    }
}

pub(crate) fn title(rng: &mut StdRng) -> String {
    format!("{} {}", WORDS.choose(rng).unwrap(), rng.random_range(0..40))
}

pub(crate) fn tags(rng: &mut StdRng) -> Vec<&'static str> {
    TAGS.iter()
        .copied()
        .filter(|_| rng.random_bool(0.4))
        .collect()
}

pub(crate) fn rid(table: usize, key: i64) -> sdb::Value {
    sdb::Value::RecordId(sdb::RecordId::new(TABLES[table], key))
}
