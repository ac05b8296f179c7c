//! A bounded fuzz of the bodies of `POST /ingest` and `POST /view/register`
//! (proptest, deterministic by default), on the embedded engine.
//!
//! The bodies are structured but hostile: mostly the right shape, with odd,
//! missing, mistyped or extra fields, SurrealQL injection attempts, deep
//! nesting, huge numbers, broken JSON and wrong content types. Each request
//! is checked for what a client and the database can see:
//!
//! 1. SSP keeps answering: the request gets an HTTP answer (a panicking
//!    handler drops the connection) and `GET /health/live` is 200 after it;
//! 2. the status is one the route documents, never a 5xx (the database
//!    cannot be unavailable here), and every error is JSON with a string
//!    `error`; a body that writes into or reads SSP's own `_spooky_*` tables
//!    is refused;
//! 3. a 4xx changes nothing: not what SSP shows (`GET /view/{id}`, the
//!    counts and tracked tables of `/health`, its write round trips), not the
//!    database's `_spooky_query` rows and `_spooky_list_ref` edges, not its
//!    schema (`INFO FOR DB`);
//! 4. whatever the answer, each view's edges in the database are the records
//!    `GET /view/{id}` shows, and every view SSP holds has its row.
//!
//! Knobs (all optional): `SSP_FUZZ_CASES` (cases per route, default
//! [`DEFAULT_CASES`]), `SSP_FUZZ_SEED` (a `u64`; default [`DEFAULT_SEED`], so
//! CI runs the same cases every time), `SSP_FUZZ_SECONDS` (wall-clock budget
//! per route, default [`DEFAULT_SECONDS`]; cases past it are not run),
//! `SSP_FUZZ_KNOWN_DEFECTS=1` (see [`KNOWN_DEFECTS_FIXED`]),
//! `SSP_FUZZ_VERBOSE=1` (a count of the error messages, and the slowest
//! case). A failure names the seed that reproduces it, the first failing
//! body and the simplest one shrinking found.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use ssp::db::Query;
use ssp::db::values::record_id_from_surreal;
use surrealdb::types as sdb;

use crate::support::{Backend, TestApp, wait_for};

/// Whether a register whose view is already expired must answer without a
/// 500 (see [`expired_on_arrival`]): true since the TTL sweep expires views
/// through the pipeline, which checks again in order.
const KNOWN_DEFECTS_FIXED: bool = true;

/// Cases per route when `SSP_FUZZ_CASES` is not set: enough to reach every
/// generator branch many times, small enough for CI.
const DEFAULT_CASES: u32 = 500;
/// The seed when `SSP_FUZZ_SEED` is not set.
const DEFAULT_SEED: u64 = 0x5353_505f_4655_5a5a;
/// The wall-clock budget per route when `SSP_FUZZ_SECONDS` is not set.
const DEFAULT_SECONDS: u64 = 30;

/// Views that exist before every case, so that a 4xx that touches them (a
/// failed refresh of an existing id, an ingest that reaches the engine)
/// shows.
const SEED_VIEWS: &[(&str, &str)] = &[
    ("seed_all", "SELECT * FROM thread"),
    ("seed_user", "SELECT * FROM user WHERE name = $name"),
    ("seed_top", "SELECT * FROM thread ORDER BY n DESC LIMIT 2"),
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} does not parse")),
        Err(_) => default,
    }
}

/// Whether this run checks the known defects' cases in full.
fn known_defects_checked() -> bool {
    KNOWN_DEFECTS_FIXED || std::env::var("SSP_FUZZ_KNOWN_DEFECTS").is_ok_and(|v| v == "1")
}

// ----- requests ---------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Ingest,
    Register,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Route::Ingest => "/ingest",
            Route::Register => "/view/register",
        }
    }

    /// The statuses the route documents for a body (auth is always right
    /// here, and SSP is ready).
    fn allowed(self, status: StatusCode) -> bool {
        matches!(status.as_u16(), 200 | 400 | 413) || (self == Route::Register && status == 422)
    }
}

/// One request body, with the content type it is sent under.
#[derive(Clone)]
enum Body {
    Json(Value),
    Raw {
        content_type: Option<&'static str>,
        bytes: Vec<u8>,
    },
}

impl Body {
    /// The JSON SSP would read from it, if any.
    fn json(&self) -> Option<Value> {
        match self {
            Body::Json(v) => Some(v.clone()),
            Body::Raw { bytes, .. } => serde_json::from_slice(bytes).ok(),
        }
    }
}

/// Long enough to recognise a case, short enough for a failure message.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Json(v) => write!(f, "application/json {}", clip(&v.to_string(), 2000)),
            Body::Raw {
                content_type,
                bytes,
            } => write!(
                f,
                "content-type {content_type:?}, bytes {:?}",
                clip(&String::from_utf8_lossy(bytes), 2000)
            ),
        }
    }
}

/// Whether a register body asks for a view that is already expired: its
/// `lastActiveAt` (RFC 3339, as SSP reads it) plus its `ttl` (default 1h)
/// lies in the past, or so soon that the sweep may remove it meanwhile.
///
/// The known defect: SSP answers such a register 500 ("the view vanished
/// after registering") when the TTL sweep removes the view between its
/// commit and the answer, which reads the view back from the engine.
fn expired_on_arrival(body: &Value) -> bool {
    let ttl = match body.get("ttl") {
        None | Some(Value::Null) => Some(Duration::from_secs(3600)),
        Some(Value::String(t)) => ssp::config::parse_surreal_duration(t),
        Some(_) => None,
    };
    let last = body
        .get("lastActiveAt")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    match (ttl, last) {
        (Some(ttl), Some(last)) => ends_soon(last.with_timezone(&Utc), ttl),
        _ => false,
    }
}

/// True when a view last active at `last` with this `ttl` is past its end,
/// or within a minute of it.
fn ends_soon(last: DateTime<Utc>, ttl: Duration) -> bool {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| last.checked_add_signed(ttl))
        .is_some_and(|end| end < Utc::now() + chrono::Duration::seconds(60))
}

/// Whether the body writes into, or reads, one of SSP's own tables
/// (`_spooky_*`): `/ingest` must refuse it (400), and a view over one (422),
/// since a view over SSP's rows or edges would feed on its own writes.
fn touches_internal_table(route: Route, json: &Value) -> bool {
    match route {
        Route::Ingest => {
            let changes = match json {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            changes.iter().any(|c| {
                c.get("table")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.starts_with("_spooky_"))
            })
        }
        Route::Register => ["sql", "surql"]
            .iter()
            .filter_map(|k| json.get(k).and_then(Value::as_str))
            .any(|sql| sql.contains("_spooky_")),
    }
}

// ----- generators ---------------------------------------------------------------

fn pick(items: &'static [&'static str]) -> BoxedStrategy<String> {
    select(items).prop_map(str::to_owned).boxed()
}

/// Strings that have broken parsers, escapers and SurrealQL text before.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "'",
    "\"",
    "`",
    ";",
    "--",
    "\\",
    "/",
    "..",
    ":",
    "a:b",
    "a:b:c",
    "'; REMOVE TABLE thread; --",
    "\"; REMOVE TABLE thread; --",
    "`; REMOVE TABLE thread; --",
    "⟩; REMOVE TABLE thread; --",
    "⟨x⟩",
    "⟨",
    "⟩",
    "a b",
    "ünïcödé",
    "😀",
    "\u{0}",
    "\u{202e}rtl",
    "\t\n\r",
    "thread:1",
    "user:1",
    "_spooky_query:x",
    "$param",
    "$parent",
    "NONE",
    "null",
    "1",
    "-1",
    "1e400",
    "NaN",
    "[1, 2]",
    "{a: 1}",
    "<future> { 1 }",
    "r\"thread:1\"",
    "d\"2024-01-01T00:00:00Z\"",
];

fn hostile_text() -> BoxedStrategy<String> {
    prop_oneof![
        6 => pick(HOSTILE),
        3 => "\\PC{0,16}",
        1 => "[\\x00-\\x7f]{0,8}",
        1 => (pick(HOSTILE), pick(HOSTILE)).prop_map(|(a, b)| format!("{a}{b}")),
        1 => (1_000usize..20_000, pick(&["x", "'", "⟨", "😀", "\\", ";"]))
            .prop_map(|(n, s)| s.repeat(n)),
    ]
    .boxed()
}

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        select(&[0i64, 1, -1, 2, i64::MAX, i64::MIN][..]).prop_map(Value::from),
        // Non-finite floats become null: JSON has none.
        any::<f64>().prop_map(Value::from),
        select(&[1.5, -0.0, 1e308, -1e308, 5e-324, 9007199254740993.0][..]).prop_map(Value::from),
        hostile_text().prop_map(Value::from),
    ]
    .boxed()
}

/// 100 to 200 levels of arrays or objects: serde's limit is 128.
fn deep_value() -> BoxedStrategy<Value> {
    (100usize..=200, any::<bool>(), json_leaf())
        .prop_map(|(depth, arrays, leaf)| {
            (0..depth).fold(
                leaf,
                |v, _| if arrays { json!([v]) } else { json!({"a": v}) },
            )
        })
        .boxed()
}

fn field_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => pick(&[
            "title", "n", "score", "author", "tags", "active", "name", "id", "in", "out",
            "version", "clientId", "updatedAt", "a.b", "$x", "⟨k⟩", "_spooky", "",
        ]),
        1 => hostile_text(),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    let nested = json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![8 => nested, 1 => deep_value()].boxed()
}

fn object(fields: BTreeMap<String, Value>) -> Value {
    Value::Object(fields.into_iter().collect())
}

/// Mostly the right value, sometimes missing, sometimes of the wrong type.
fn maybe(good: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        8 => good.prop_map(Some),
        1 => Just(None),
        1 => json_leaf().prop_map(Some),
    ]
    .boxed()
}

/// An optional field: absent, a string from `good`, or another JSON value.
fn optional(good: BoxedStrategy<String>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        3 => Just(None),
        5 => good.prop_map(|s| Some(Value::from(s))),
        1 => json_leaf().prop_map(Some),
    ]
    .boxed()
}

fn extra_fields() -> BoxedStrategy<BTreeMap<String, Value>> {
    prop::collection::btree_map(hostile_text(), json_leaf(), 0..2).boxed()
}

/// Builds an object: the extra fields first, so that the real ones win.
fn build(extra: BTreeMap<String, Value>, fields: Vec<(&str, Option<Value>)>) -> Value {
    let mut o: Map<String, Value> = extra.into_iter().collect();
    for (name, value) in fields {
        match value {
            Some(v) => o.insert(name.to_owned(), v),
            None => o.remove(name),
        };
    }
    Value::Object(o)
}

fn table_name() -> BoxedStrategy<String> {
    prop_oneof![
        8 => pick(&["thread", "user"]),
        2 => (0u8..8).prop_map(|n| format!("fresh_{n}")),
        2 => pick(&[
            "_spooky_list_ref", "_spooky_query", "_spooky_migration", "Thread", "thread ",
            "t-h", "`thread`", "⟨thread⟩", "ü", "thread:1", "",
        ]),
        1 => hostile_text(),
    ]
    .boxed()
}

fn record_key() -> BoxedStrategy<String> {
    prop_oneof![
        6 => pick(&["1", "2", "3", "4", "a", "b"]),
        3 => pick(&[
            "0", "-1", "1.5", "007", "1e3", "123456789012345678901234567890",
            "9223372036854775807", "9223372036854775808", "-9223372036854775808",
            "⟨a b⟩", "⟨⟩", "⟨1⟩", "`x`", "'x'", "\"x\"", "[1, 2]", "[\"a\", 1]", "{a: 1}",
            "{}", "[]", "ulid()", "uuid()", "rand()",
            "u\"0189e1d4-5b8a-7d3c-9f00-000000000000\"", "a:b", "x;y", "$x",
        ]),
        2 => hostile_text(),
    ]
    .boxed()
}

fn op() -> BoxedStrategy<String> {
    prop_oneof![
        6 => pick(&["CREATE", "UPDATE", "DELETE", "create", "update", "delete"]),
        2 => pick(&[
            "Create", "uPdAtE", "dElEtE", "UPSERT", "MERGE", "RELATE", "INSERT", "",
            " CREATE", "CREATE ", "CREATE\u{0}", "ＣＲＥＡＴＥ", "create;", "DELETE; REMOVE TABLE thread",
        ]),
        1 => hostile_text(),
    ]
    .boxed()
}

fn record() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => prop::collection::btree_map(field_name(), json_value(), 0..6).prop_map(object),
        1 => json_value(),
        1 => deep_value(),
    ]
    .boxed()
}

/// One change: half of them well-formed (every field present and of the
/// right type, the id in the change's table; the content still hostile), so
/// that many reach the engine and the sink; the others anything.
fn change() -> BoxedStrategy<Value> {
    prop_oneof![1 => well_formed_change(), 1 => any_change()].boxed()
}

fn well_formed_change() -> BoxedStrategy<Value> {
    (
        prop_oneof![4 => pick(&["thread", "user"]), 1 => table_name()],
        pick(&["CREATE", "UPDATE", "DELETE", "create", "Update", "dElEtE"]),
        any::<bool>(),
        record_key(),
        prop::collection::btree_map(field_name(), json_value(), 0..6).prop_map(object),
    )
        .prop_map(|(table, op, prefixed, key, record)| {
            let id = if prefixed {
                format!("{table}:{key}")
            } else {
                key
            };
            json!({"table": table, "op": op, "id": id, "record": record})
        })
        .boxed()
}

/// One change whose fields may be missing, mistyped or contradictory: the id
/// mostly in the change's table, sometimes bare, in another table, missing,
/// or not a string.
fn any_change() -> BoxedStrategy<Value> {
    (
        maybe(table_name().prop_map(Value::from).boxed()),
        maybe(op().prop_map(Value::from).boxed()),
        (0u8..10, table_name(), record_key(), json_leaf()),
        prop_oneof![6 => record().prop_map(Some), 1 => Just(None)],
        extra_fields(),
    )
        .prop_map(|(table, op, (mode, other, key, leaf), record, extra)| {
            let own = table
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or("thread")
                .to_owned();
            let id = match mode {
                0..=3 => Some(Value::from(format!("{own}:{key}"))),
                4..=6 => Some(Value::from(key)),
                7 => Some(Value::from(format!("{other}:{key}"))),
                8 => None,
                _ => Some(leaf),
            };
            build(
                extra,
                vec![("table", table), ("op", op), ("id", id), ("record", record)],
            )
        })
        .boxed()
}

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("text/plain"),
    Some("application/json; charset=utf-8"),
    Some("application/vnd.api+json"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data"),
    Some("application/json, text/plain"),
    Some(""),
    Some("application/jsonx"),
    Some("APPLICATION/JSON"),
];

/// Texts that JSON parsers get wrong, or that are JSON only nearly.
const RAW_TEXTS: &[&str] = &[
    "",
    " ",
    "null",
    "true",
    "0",
    "\"CREATE\"",
    "[]",
    "{}",
    "[{}]",
    "[null]",
    "[[]]",
    "{",
    "[",
    "{\"table\":",
    "{\"table\":\"thread\",}",
    "{'table':'thread'}",
    "NaN",
    "Infinity",
    "{\"a\":01}",
    "[1,2,]",
    "{} {}",
    "{}garbage",
    "\u{feff}{}",
    "1e400",
    "{\"table\":\"thread\",\"op\":\"CREATE\",\"id\":\"thread:1\",\"record\":{\"n\":1e400}}",
    "{\"table\":\"thread\",\"op\":\"CREATE\",\"id\":\"thread:1\",\"record\":{\"n\":18446744073709551616}}",
    "{\"table\":\"thread\",\"op\":\"CREATE\",\"id\":\"thread:1\",\"record\":{\"n\":-0}}",
    "{\"table\":\"thread\",\"op\":\"CREATE\",\"id\":\"thread:1\",\"record\":{\"n\":1e-400}}",
    "{\"table\":\"thread\",\"op\":\"CREATE\",\"id\":\"thread:\\ud800\",\"record\":{}}",
    "{\"table\":\"thread\",\"op\":\"CREATE\",\"id\":\"thread:\\u0000\",\"record\":{}}",
    "{\"table\":\"thread\",\"op\":\"CREATE\",\"id\":\"thread:9\",\"record\":{\"\\u0000\":1}}",
    "{\"table\":\"user\",\"table\":\"thread\",\"op\":\"CREATE\",\"id\":\"9\",\"record\":{}}",
    "{\"table\":\"thread\",\"op\":\"CREATE\",\"id\":9,\"record\":{}}",
    "{\"id\":\"v\",\"sql\":\"SELECT * FROM thread\",\"surql\":\"SELECT * FROM user\",\"clientId\":\"c\"}",
    "{\"id\":\"v\",\"sql\":\"SELECT * FROM thread LIMIT $n\",\"clientId\":\"c\",\"params\":{\"n\":1e400}}",
    "{\"id\":\"v\",\"sql\":\"SELECT * FROM thread\",\"clientId\":\"c\",\"params\":{\"n\":18446744073709551616}}",
    "{\"id\":\"v\\ud800\",\"sql\":\"SELECT * FROM thread\",\"clientId\":\"c\"}",
];

/// Bodies that are not well-formed JSON under a JSON content type, or are
/// JSON under another one.
fn raw_body(valid: BoxedStrategy<Value>) -> BoxedStrategy<Body> {
    let as_json = |bytes: Vec<u8>| Body::Raw {
        content_type: Some("application/json"),
        bytes,
    };
    prop_oneof![
        3 => (valid.clone(), select(CONTENT_TYPES)).prop_map(|(v, content_type)| Body::Raw {
            content_type,
            bytes: v.to_string().into_bytes(),
        }),
        3 => (valid.clone(), 0u8..6, any::<Index>()).prop_map(move |(v, how, at)| {
            let text = v.to_string().into_bytes();
            let mut bytes = text.clone();
            match how {
                // Cut anywhere, also inside a UTF-8 sequence.
                0 => bytes.truncate(at.index(text.len() + 1)),
                1 => bytes.push(b','),
                2 => bytes.splice(0..0, "\u{feff}".bytes()).for_each(drop),
                3 => bytes.extend_from_slice(b" x"),
                4 => bytes = text.iter().map(|&b| if b == b'"' { b'\'' } else { b }).collect(),
                _ => bytes.insert(at.index(text.len() + 1), 0xff),
            }
            as_json(bytes)
        }),
        2 => pick(RAW_TEXTS).prop_map(move |t| as_json(t.into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(as_json),
        1 => (select(&[129usize, 1_000, 100_000][..]), any::<bool>()).prop_map(move |(n, arrays)| {
            as_json(if arrays { "[".repeat(n) } else { "{\"a\":".repeat(n) }.into_bytes())
        }),
        // Over the 1 MiB body limit.
        1 => valid.prop_map(move |v| {
            let v = json!({"pad": "x".repeat(1024 * 1024), "body": v});
            as_json(v.to_string().into_bytes())
        }),
    ]
    .boxed()
}

fn ingest_body() -> BoxedStrategy<Body> {
    prop_oneof![
        5 => change().prop_map(Body::Json),
        4 => prop::collection::vec(change(), 0..5).prop_map(|v| Body::Json(Value::Array(v))),
        1 => json_value().prop_map(Body::Json),
        2 => raw_body(change()),
    ]
    .boxed()
}

fn sql_table() -> BoxedStrategy<String> {
    prop_oneof![
        6 => pick(&["thread", "user"]),
        3 => (0u8..16).prop_map(|n| format!("fresh_{n}")),
        1 => pick(&["⟨odd table⟩", "`tick-table`", "ü", "thread; REMOVE TABLE user", "thread WHERE true"]),
    ]
    .boxed()
}

/// Queries over `{T}` that SSP maintains (given the right parameters).
const SUPPORTED_SQL: &[&str] = &[
    "SELECT * FROM {T}",
    "select * from {T}",
    "SELECT * FROM {T} WHERE author = $uid",
    "SELECT * FROM {T} WHERE n > $n ORDER BY n DESC LIMIT $n",
    "SELECT * FROM {T} ORDER BY score DESC, id ASC LIMIT $n START $s",
    "SELECT * FROM {T} START $s",
    "SELECT * FROM {T} ORDER BY n LIMIT 2 START 1",
    "SELECT title, n AS m FROM {T} WHERE active = true AND (n = 1 OR n = 2)",
    "SELECT * FROM {T} WHERE tags CONTAINS 'x' OR tags CONTAINSANY ['a', 'b']",
    "SELECT * FROM {T} WHERE n IN [1, 2, 3] AND title != NONE",
    "SELECT * FROM {T} WHERE string::starts_with(title, $p)",
    "SELECT * FROM {T} WHERE a.b.c = $x",
    "SELECT * FROM {T} WHERE id = thread:1 OR author = user:⟨a b⟩",
    "SELECT * FROM {T} WHERE at > d\"2024-01-01T00:00:00Z\"",
    "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author FROM {T} ORDER BY title DESC LIMIT 10",
    "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT $n)[0] AS author FROM {T}",
    "SELECT * FROM {T} WHERE $uid = author",
    "SELECT * FROM {T} WHERE title = '''; REMOVE TABLE thread; --'",
    "SELECT * FROM {T} WHERE title = $evil",
    "SELECT count() FROM {T} GROUP ALL",
    "SELECT * FROM {T} WHERE ->likes->user",
    "SELECT * FROM {T}:1",
    "SELECT * FROM {T}:1..5",
];

/// Queries over `{T}` that SSP refuses: valid but unsupported, statements
/// that are not a SELECT, injection attempts, and SurrealQL that does not
/// parse.
const REFUSED_SQL: &[&str] = &[
    "SELECT count() FROM {T} GROUP BY x",
    "SELECT * FROM {T}, user",
    "SELECT * FROM {T} FETCH author",
    "SELECT * FROM {T} garbage",
    "SELECT * FROM {T} WHERE",
    "SELECT * FROM {T} LIMIT -1",
    "SELECT * FROM {T} LIMIT 1 + 1",
    "SELECT * FROM {T} LIMIT 99999999999999999999999",
    "SELECT * FROM {T} TIMEOUT 1s",
    "SELECT * FROM {T} EXPLAIN",
    "SELECT * FROM {T} WHERE n = <future> { 1 }",
    "SELECT * FROM {T} WHERE http::get('http://127.0.0.1:1/') = 1",
    "SELECT * FROM {T} WHERE fn::nope() = 1",
    "SELECT * FROM (SELECT * FROM {T})",
    "(SELECT * FROM {T})",
    "SELECT * FROM $tbl",
    "SELECT * FROM type::table($t)",
    "SELECT * FROM {T}; REMOVE TABLE thread",
    "SELECT * FROM {T}; DEFINE TABLE evil",
    "LET $x = 1; SELECT * FROM {T}",
    "BEGIN; SELECT * FROM {T}; COMMIT",
    "DELETE {T}",
    "REMOVE TABLE {T}",
    "DEFINE TABLE {T}_evil",
    "CREATE {T}:9 SET n = 1",
    "UPDATE {T} SET n = 1",
    "INFO FOR DB",
    "LIVE SELECT * FROM {T}",
    "RETURN 1",
    "SELECT * FROM {T} WHERE n = 1; --",
    "SELECT * FROM {T} -- comment",
    "SELECT * FROM {T} /* ; REMOVE TABLE thread */",
    "",
    "   ",
    ";",
];

/// Views over SSP's own tables (see [`touches_internal_table`]).
const INTERNAL_SQL: &[&str] = &[
    "SELECT * FROM _spooky_query",
    "SELECT * FROM _spooky_list_ref",
    "SELECT * FROM _spooky_list_ref WHERE clientId = $c",
    "SELECT * FROM thread WHERE id IN (SELECT VALUE out FROM _spooky_list_ref)",
    "SELECT *, (SELECT * FROM _spooky_query WHERE id = $parent.v LIMIT 1)[0] AS q FROM thread",
];

fn sql() -> BoxedStrategy<String> {
    let template = || {
        let text = prop_oneof![2 => select(SUPPORTED_SQL), 1 => select(REFUSED_SQL)];
        (text, sql_table()).prop_map(|(t, table)| t.replace("{T}", &table))
    };
    prop_oneof![
        12 => template(),
        1 => pick(INTERNAL_SQL),
        2 => hostile_text(),
        // Valid text cut short.
        2 => (template(), any::<Index>()).prop_map(|(s, at)| {
            let n = at.index(s.chars().count() + 1);
            s.chars().take(n).collect()
        }),
        1 => (template(), hostile_text()).prop_map(|(s, junk)| format!("{s} {junk}")),
        // Deep expressions, for the recursive parsers.
        1 => (1usize..3_000, pick(&["(", "!", "["])).prop_map(|(n, open)| {
            let close = match open.as_str() { "(" => ")", "[" => "]", _ => "" };
            format!("SELECT * FROM thread WHERE {}true{}", open.repeat(n), close.repeat(n))
        }),
    ]
    .boxed()
}

fn view_id() -> BoxedStrategy<String> {
    prop_oneof![
        4 => pick(&["seed_all", "seed_user", "seed_top", "v1", "v2"]),
        3 => pick(&[
            "_spooky_query:v3", "⟨v4⟩", "_spooky_query:⟨v 5⟩", "_spooky_query:", "⟨⟩",
            "_spooky_query:⟨⟩", "'; REMOVE TABLE thread; --", "`; REMOVE TABLE _spooky_query; --",
            "⟩; REMOVE TABLE thread; --", "a/b", "a?b#c", "%2F", " ", "ü😀", "thread:1",
            "_spooky_query:_spooky_query:x", "v\u{0}", "v:1", "[1]",
        ]),
        2 => hostile_text(),
    ]
    .boxed()
}

/// Parameter values, with many that `LIMIT $n` and `START $n` must refuse.
fn param_value() -> BoxedStrategy<Value> {
    let window = vec![
        json!(0),
        json!(1),
        json!(2),
        json!(-1),
        json!(1.5),
        json!(2.0),
        json!(i64::MAX),
        json!(u64::MAX),
        json!("x"),
        json!("1"),
        json!(""),
        json!(true),
        json!(null),
        json!([]),
        json!({}),
        json!([1]),
        json!({"n": 1}),
        json!("user:1"),
        json!("ada"),
    ];
    prop_oneof![3 => select(window), 3 => json_leaf(), 1 => json_value()].boxed()
}

fn param_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => pick(&["uid", "n", "s", "p", "name", "x", "evil", "t", "tbl", "c", "v", "parent"]),
        1 => hostile_text(),
    ]
    .boxed()
}

fn params() -> BoxedStrategy<Option<Value>> {
    let name = param_name();
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        6 => prop::collection::btree_map(name, param_value(), 0..5).prop_map(|m| Some(object(m))),
        1 => json_value().prop_map(Some),
    ]
    .boxed()
}

fn ttl() -> BoxedStrategy<String> {
    prop_oneof![
        3 => pick(&["1h", "30m", "1d", "1w", "1y", "1h30m", "90s"]),
        3 => pick(&[
            "0s", "0ns", "1ns", "-1h", "soon", "", "1H", "1 h", " 1h", "1h;", "1e3s", "P1D",
            "999999999999999999y", "18446744073709551615ns", "18446744073709551616s",
            "584942417355y", "1000000000000000000000000d", "∞", "NONE",
            "1h; REMOVE TABLE thread",
        ]),
        1 => hostile_text(),
    ]
    .boxed()
}

fn last_active_at() -> BoxedStrategy<String> {
    prop_oneof![
        2 => pick(&["2024-01-01T00:00:00Z", "2031-05-06T07:08:09.123+02:00"]),
        3 => pick(&[
            "1970-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
            "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01", "2024-01-01T00:00:00",
            "yesterday", "", "2024-01-01T00:00:00+25:00", "2024-01-01T24:00:00Z",
            "2016-12-31T23:59:60Z", "+002024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.1234567891234Z", "2024-01-01t00:00:00z", "2024-01-01 00:00:00Z",
        ]),
        1 => hostile_text(),
    ]
    .boxed()
}

/// A register body: half of them well-formed (the required fields present
/// and strings, `params` an object; ids, query and values still hostile),
/// the others anything.
fn register_object() -> BoxedStrategy<Value> {
    prop_oneof![1 => well_formed_register(), 1 => any_register()].boxed()
}

fn well_formed_register() -> BoxedStrategy<Value> {
    (
        view_id(),
        sql(),
        prop_oneof![3 => pick(&["c", "browser-1"]), 1 => hostile_text()],
        (
            prop::collection::btree_map(param_name(), param_value(), 0..3),
            // The window parameters of the templates, often.
            prop::option::of(param_value()),
            prop::option::of(param_value()),
        )
            .prop_map(|(mut params, n, s)| {
                params.extend(n.map(|v| ("n".to_owned(), v)));
                params.extend(s.map(|v| ("s".to_owned(), v)));
                object(params)
            }),
        prop_oneof![3 => Just(None), 1 => ttl().prop_map(Some)],
        prop_oneof![3 => Just(None), 1 => last_active_at().prop_map(Some)],
    )
        .prop_map(|(id, sql, client_id, params, ttl, last_active_at)| {
            let mut body = json!({"id": id, "sql": sql, "clientId": client_id, "params": params});
            if let Some(ttl) = ttl {
                body["ttl"] = ttl.into();
            }
            if let Some(at) = last_active_at {
                body["lastActiveAt"] = at.into();
            }
            body
        })
        .boxed()
}

fn any_register() -> BoxedStrategy<Value> {
    (
        maybe(view_id().prop_map(Value::from).boxed()),
        (0u8..12, sql(), json_leaf()),
        maybe(
            prop_oneof![3 => pick(&["c", "browser-1"]), 1 => hostile_text()]
                .prop_map(Value::from)
                .boxed(),
        ),
        params(),
        optional(ttl()),
        optional(last_active_at()),
        extra_fields(),
    )
        .prop_map(
            |(id, (mode, sql, leaf), client_id, params, ttl, last_active_at, extra)| {
                let (sql, surql) = match mode {
                    0..=7 => (Some(Value::from(sql)), None),
                    8 => (None, Some(Value::from(sql))),
                    9 => (Some(Value::from(sql.clone())), Some(Value::from(sql))),
                    10 => (None, None),
                    _ => (Some(leaf), None),
                };
                build(
                    extra,
                    vec![
                        ("id", id),
                        ("sql", sql),
                        ("surql", surql),
                        ("clientId", client_id),
                        ("params", params),
                        ("ttl", ttl),
                        ("lastActiveAt", last_active_at),
                    ],
                )
            },
        )
        .boxed()
}

fn register_body() -> BoxedStrategy<Body> {
    prop_oneof![
        8 => register_object().prop_map(Body::Json),
        1 => json_value().prop_map(Body::Json),
        2 => raw_body(register_object()),
    ]
    .boxed()
}

// ----- observing SSP and the database ---------------------------------------------

/// Everything a request could change that a client or the database shows.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    /// From `/health`: views, records, tracked tables, write round trips.
    health: Value,
    /// `GET /view/{id}` (status and body) for the seed views and every view
    /// the database holds a row or an edge for.
    views: BTreeMap<String, Value>,
    query_rows: Value,
    edge_rows: Value,
    info_for_db: Value,
    /// The `_spooky_query` ids, with their `ttl` and `lastActiveAt` as text.
    view_rows: BTreeMap<String, (String, String)>,
    /// The edges: view -> record -> version.
    edges: BTreeMap<String, BTreeMap<String, i64>>,
}

impl Snapshot {
    /// What differs, field by field, for a failure message.
    fn diff(&self, after: &Snapshot) -> String {
        let fields: [(&str, String, String); 5] = [
            ("/health", self.health.to_string(), after.health.to_string()),
            (
                "GET /view",
                format!("{:?}", self.views),
                format!("{:?}", after.views),
            ),
            (
                "_spooky_query rows",
                self.query_rows.to_string(),
                after.query_rows.to_string(),
            ),
            (
                "_spooky_list_ref edges",
                self.edge_rows.to_string(),
                after.edge_rows.to_string(),
            ),
            (
                "INFO FOR DB",
                self.info_for_db.to_string(),
                after.info_for_db.to_string(),
            ),
        ];
        fields
            .iter()
            .filter(|(_, b, a)| b != a)
            .map(|(what, b, a)| {
                format!(
                    "{what} changed:\n  before: {}\n  after:  {}",
                    clip(b, 3000),
                    clip(a, 3000)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Longer ids do not fit in a request line; the database side still covers
/// them.
const MAX_URL_ID: usize = 2_000;

async fn get_view(app: &TestApp, id: &str) -> Value {
    if id.len() > MAX_URL_ID {
        return json!({"skipped": "id too long for a URL"});
    }
    // The route strips one `_spooky_query:` prefix and one pair of ⟨⟩: add
    // both, so that the id reaches it unchanged.
    let path = format!(
        "/view/{}",
        crate::pipeline::urlencode(&format!("_spooky_query:⟨{id}⟩"))
    );
    let response = app
        .get(&path)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET /view for {}: {e}", clip(id, 200)));
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    json!({"status": status, "body": body})
}

fn sdb_string(value: Option<&sdb::Value>) -> String {
    match value {
        Some(sdb::Value::String(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

async fn snapshot(app: &TestApp) -> Snapshot {
    let mut query = Query::new("SELECT * FROM _spooky_query ORDER BY id");
    query.push("SELECT * FROM _spooky_list_ref ORDER BY id");
    query.push("INFO FOR DB");
    query.push(
        "SELECT record::id(id) AS id, <string> ttl AS ttl, <string> lastActiveAt AS at \
         FROM _spooky_query",
    );
    query.push("SELECT record::id(in) AS view, out, version FROM _spooky_list_ref");
    let mut res = app.db.run(query).await.expect("read SSP's rows");
    let query_rows = res.take_json(0).expect("view rows");
    let edge_rows = res.take_json(1).expect("edge rows");
    let info_for_db = res.take_json(2).expect("INFO FOR DB");
    let rows: Vec<sdb::Value> = res.take(3).expect("view rows");
    let view_rows: BTreeMap<String, (String, String)> = rows
        .iter()
        .map(|row| {
            let sdb::Value::Object(o) = row else {
                panic!("view row {row:?}")
            };
            (
                sdb_string(o.get("id")),
                (sdb_string(o.get("ttl")), sdb_string(o.get("at"))),
            )
        })
        .collect();
    let mut edges: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let rows: Vec<sdb::Value> = res.take(4).expect("edges");
    for row in rows {
        let sdb::Value::Object(o) = row else {
            panic!("edge row {row:?}")
        };
        let record = match o.get("out") {
            Some(sdb::Value::RecordId(r)) => {
                record_id_from_surreal(r).expect("a record id").to_string()
            }
            other => format!("{other:?}"),
        };
        let version = match o.get("version") {
            Some(sdb::Value::Number(sdb::Number::Int(v))) => *v,
            _ => -1,
        };
        edges
            .entry(sdb_string(o.get("view")))
            .or_default()
            .insert(record, version);
    }

    let health = app.get_json("/health").await;
    let mut tracked: Vec<Value> = health["worker"]["tracked_tables"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    tracked.sort_by_key(|t| t.to_string());
    let health = json!({
        "views": health["views"],
        "records": health["records"],
        "tracked_tables": tracked,
        "write_round_trips": health["pipeline"]["round_trips"],
    });

    let mut views = BTreeMap::new();
    let seeds = SEED_VIEWS.iter().map(|(id, _)| (*id).to_owned());
    let known: BTreeSet<String> = seeds
        .chain(view_rows.keys().cloned())
        .chain(edges.keys().cloned())
        .collect();
    for id in known {
        let view = get_view(app, &id).await;
        views.insert(id, view);
    }
    Snapshot {
        health,
        views,
        query_rows,
        edge_rows,
        info_for_db,
        view_rows,
        edges,
    }
}

/// True when the TTL sweep may remove the view any moment (it runs every
/// few seconds): such a view can vanish between two reads.
fn expiring(s: &Snapshot, id: &str) -> bool {
    let Some((ttl, at)) = s.view_rows.get(id) else {
        return false;
    };
    let ttl = ssp::config::parse_surreal_duration(ttl);
    let at = DateTime::parse_from_rfc3339(at).ok();
    match (ttl, at) {
        (Some(ttl), Some(at)) => ends_soon(at.with_timezone(&Utc), ttl),
        // The database holds what SSP wrote: if it does not read back, say so.
        _ => panic!(
            "view {id}: unreadable ttl or lastActiveAt {:?}",
            s.view_rows[id]
        ),
    }
}

/// Property 4: the edges are what SSP shows, and every view has its row.
fn check_consistent(s: &Snapshot) -> Result<(), String> {
    let ids: BTreeSet<&String> = s.view_rows.keys().chain(s.edges.keys()).collect();
    let any_expiring = s.view_rows.keys().any(|id| expiring(s, id));
    for id in ids {
        let view = &s.views[id.as_str()];
        if view.get("skipped").is_some() || expiring(s, id) {
            continue;
        }
        if view["status"] != 200 {
            return Err(format!(
                "the database holds a row or edges for view {} but GET /view answers {}",
                clip(id, 200),
                clip(&view.to_string(), 500)
            ));
        }
        let shown: BTreeMap<String, i64> = view["body"]["records"]
            .as_array()
            .map(|records| {
                records
                    .iter()
                    .map(|r| {
                        (
                            r["id"].as_str().unwrap_or_default().to_owned(),
                            r["version"].as_i64().unwrap_or(-1),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stored = s.edges.get(id.as_str()).cloned().unwrap_or_default();
        if shown != stored {
            return Err(format!(
                "view {}: GET /view shows {} but the edges are {}",
                clip(id, 200),
                clip(&format!("{shown:?}"), 1500),
                clip(&format!("{stored:?}"), 1500)
            ));
        }
        if !s.view_rows.contains_key(id.as_str()) {
            return Err(format!("view {} has edges but no row", clip(id, 200)));
        }
    }
    let shown = s.health["views"].as_u64().unwrap_or(u64::MAX);
    if !any_expiring && shown != s.view_rows.len() as u64 {
        return Err(format!(
            "/health counts {shown} views but the database holds {} rows",
            s.view_rows.len()
        ));
    }
    Ok(())
}

// ----- the fuzz loop ---------------------------------------------------------------

async fn post_ok(app: &TestApp, path: &str, body: Value) {
    let response = app.post(path).json(&body).send().await.expect(path);
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "{path} {body}: {text}");
}

/// Back to the seed state: the seed views and a few records.
async fn reset_and_seed(app: &TestApp) {
    post_ok(app, "/reset", json!({})).await;
    for (id, sql) in SEED_VIEWS {
        post_ok(
            app,
            "/view/register",
            json!({"id": id, "sql": sql, "clientId": "seed", "params": {"name": "ada"}}),
        )
        .await;
    }
    post_ok(
        app,
        "/ingest",
        json!([
            {"table": "thread", "op": "CREATE", "id": "thread:1", "record": {"n": 1, "title": "a", "author": "user:1"}},
            {"table": "thread", "op": "CREATE", "id": "thread:2", "record": {"n": 2, "title": "b"}},
            {"table": "thread", "op": "CREATE", "id": "thread:3", "record": {"n": 3}},
            {"table": "user", "op": "CREATE", "id": "user:1", "record": {"name": "ada"}},
        ]),
    )
    .await;
    // The worker reports a table once it follows it; wait for that, so that it
    // does not change under a later case.
    wait_for(
        "the seed tables to be followed",
        Duration::from_secs(20),
        || async {
            let health = app.get_json("/health").await;
            let tracked = health["worker"]["tracked_tables"].as_array()?.clone();
            ["thread", "user"]
                .iter()
                .all(|t| tracked.iter().any(|x| x == t))
                .then_some(())
        },
    )
    .await;
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: String,
}

async fn send(app: &TestApp, route: Route, body: &Body) -> Result<Answer, reqwest::Error> {
    let request = app.post(route.path());
    let request = match body {
        Body::Json(v) => request
            .header(CONTENT_TYPE, "application/json")
            .body(v.to_string()),
        Body::Raw {
            content_type,
            bytes,
        } => match content_type {
            Some(ct) => request.header(CONTENT_TYPE, *ct),
            None => request,
        }
        .body(bytes.clone()),
    };
    let response = request.send().await?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await?;
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

/// What happened over a run, printed at the end: a fuzz whose cases all
/// fail the same way tests little.
#[derive(Default)]
struct Tally {
    ran: u32,
    statuses: BTreeMap<u16, u32>,
    /// The start of each error message (printed with `SSP_FUZZ_VERBOSE=1`).
    errors: BTreeMap<String, u32>,
    /// The slowest case and its time.
    slowest: (Duration, String),
}

struct Fuzz {
    app: TestApp,
    route: Route,
    /// Whether the known defects' cases are checked in full.
    known_defects: bool,
    /// The state after the last case, when nothing has changed it since.
    last: Option<Snapshot>,
    tally: Tally,
}

impl Fuzz {
    /// Sends one body and checks the properties; `Err` says which one broke.
    async fn case(&mut self, body: &Body) -> Result<(), String> {
        let json = body.json();
        let internal = json
            .as_ref()
            .is_some_and(|j| touches_internal_table(self.route, j));
        let expired = self.route == Route::Register
            && json.as_ref().is_some_and(expired_on_arrival)
            && !self.known_defects;
        let app = &self.app;
        let before = match self.last.take() {
            Some(s) => s,
            None => snapshot(app).await,
        };

        // 1. An answer, and the server still answers after it.
        let answer = send(app, self.route, body)
            .await
            .map_err(|e| format!("no answer (did the handler panic?): {e:?}"))?;
        let live = app
            .http
            .get(app.url("/health/live"))
            .send()
            .await
            .map_err(|e| format!("GET /health/live failed after the request: {e:?}"))?;
        if live.status() != StatusCode::OK {
            return Err(format!(
                "GET /health/live answered {} after the request",
                live.status()
            ));
        }
        let status = answer.status;
        *self.tally.statuses.entry(status.as_u16()).or_default() += 1;
        if !status.is_success() {
            let key: String = answer.body.chars().take(60).collect();
            *self
                .tally
                .errors
                .entry(format!("{status} {key}"))
                .or_default() += 1;
        }
        let answered = format!("answered {status}: {}", clip(&answer.body, 1000));

        // 2. A documented status; errors are JSON with a string `error`.
        let parsed: Option<Value> = serde_json::from_str(&answer.body).ok();
        let tolerated_500 = expired
            && status == StatusCode::INTERNAL_SERVER_ERROR
            && parsed.as_ref().is_some_and(|b| b["code"] == "internal");
        if !self.route.allowed(status) && !tolerated_500 {
            return Err(format!("unexpected status: {answered}"));
        }
        if !answer.content_type.starts_with("application/json") || parsed.is_none() {
            return Err(format!(
                "not a JSON answer (content-type {:?}): {answered}",
                answer.content_type
            ));
        }
        if !status.is_success() && !parsed.as_ref().is_some_and(|b| b["error"].is_string()) {
            return Err(format!("error without a string `error`: {answered}"));
        }
        if internal && !status.is_client_error() {
            return Err(format!(
                "a change to, or a view over, SSP's own tables must be refused: {answered}"
            ));
        }

        // 3. A 4xx changes nothing; 4. the edges are what SSP shows.
        let after = snapshot(app).await;
        check_consistent(&after).map_err(|e| format!("{e}\n(the request {answered})"))?;
        if status.is_client_error() && before != after {
            return Err(format!(
                "a 4xx changed state: {answered}\n{}",
                before.diff(&after)
            ));
        }
        if self.route == Route::Register && !status.is_client_error() {
            // A new view may expire or follow a new table in the background:
            // start the next case from the seed state.
            reset_and_seed(app).await;
        } else {
            self.last = Some(after);
        }
        Ok(())
    }

    /// [`Fuzz::case`], timed, and a clean state after a failure: the
    /// failure may have changed state that the next case would blame on
    /// itself.
    async fn run(&mut self, body: &Body) -> Result<(), String> {
        self.tally.ran += 1;
        let started = Instant::now();
        let outcome = self.case(body).await;
        let took = started.elapsed();
        if took > self.tally.slowest.0 {
            self.tally.slowest = (took, format!("{body:?}"));
        }
        if outcome.is_err() {
            self.last = None;
            reset_and_seed(&self.app).await;
        }
        outcome
    }
}

async fn fuzz(route: Route, strategy: fn() -> BoxedStrategy<Body>) {
    let cases = env_or("SSP_FUZZ_CASES", DEFAULT_CASES);
    let seed = env_or("SSP_FUZZ_SEED", DEFAULT_SEED);
    let budget = Duration::from_secs(env_or("SSP_FUZZ_SECONDS", DEFAULT_SECONDS));
    let verbose = std::env::var("SSP_FUZZ_VERBOSE").is_ok_and(|v| v == "1");

    let app = TestApp::spawn(Backend::Mem).await;
    reset_and_seed(&app).await;
    let mut fuzz = Fuzz {
        app,
        route,
        known_defects: known_defects_checked(),
        last: None,
        tally: Tally::default(),
    };
    let started = Instant::now();
    // proptest's strategies and value trees are not `Send`: generate on a
    // blocking thread and run each case on the runtime through its handle.
    let handle = tokio::runtime::Handle::current();
    let (fuzz, failure) = tokio::task::spawn_blocking(move || {
        let strategy = strategy();
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
        );
        for _ in 0..cases {
            if started.elapsed() > budget {
                break;
            }
            let mut tree = strategy.new_tree(&mut runner).expect("a case");
            let body = tree.current();
            if let Err(reason) = handle.block_on(fuzz.run(&body)) {
                let shrunk = shrink(&handle, &mut fuzz, &mut tree);
                return (fuzz, Some((body, reason, shrunk)));
            }
        }
        (fuzz, None)
    })
    .await
    .expect("the fuzz loop");

    let tally = &fuzz.tally;
    eprintln!(
        "fuzz {}: seed {seed}, {} of {cases} cases run in {:.1?} (budget {budget:?}), \
         statuses {:?}, slowest case {:.1?}",
        route.path(),
        tally.ran,
        started.elapsed(),
        tally.statuses,
        tally.slowest.0,
    );
    if verbose {
        for (error, n) in &tally.errors {
            eprintln!("{n:5} {error}");
        }
        eprintln!("slowest case: {}", clip(&tally.slowest.1, 500));
    }
    if let Some((body, reason, shrunk)) = failure {
        let shrunk = match shrunk {
            Some((body, reason)) => format!("\n\nshrunk to {body:?}\n{reason}"),
            None => String::new(),
        };
        panic!(
            "{} fuzz failed (SSP_FUZZ_SEED={seed} reproduces it)\nbody: {body:?}\n{reason}{shrunk}",
            route.path()
        );
    }
    // A generator that only ever produces one kind of answer would test
    // little: the runs CI makes reach success and refusal alike.
    if tally.ran >= 100 {
        let seen = |status: u16| tally.statuses.get(&status).copied().unwrap_or(0) > 0;
        assert!(seen(200), "no case was accepted: {:?}", tally.statuses);
        assert!(seen(400), "no case was refused: {:?}", tally.statuses);
        if route == Route::Register {
            assert!(seen(422), "no query was refused: {:?}", tally.statuses);
        }
    }
    fuzz.app.stop().await;
}

/// The most shrinking a failure gets: each step is a request or two.
const MAX_SHRINK_STEPS: u32 = 300;
const MAX_SHRINK_TIME: Duration = Duration::from_secs(60);

/// Proptest's shrinking loop: simplify while the case still fails, step back
/// when it passes. Returns the simplest failing body found, if simpler than
/// the first. The server starts each step from the seed state, but a failure
/// that changed state (a table defined, say) may not fail again the same
/// way: the first failure is reported too.
fn shrink(
    handle: &tokio::runtime::Handle,
    fuzz: &mut Fuzz,
    tree: &mut Box<dyn ValueTree<Value = Body>>,
) -> Option<(Body, String)> {
    let started = Instant::now();
    let mut simplest = None;
    let mut steps = 0;
    if !tree.simplify() {
        return None;
    }
    while steps < MAX_SHRINK_STEPS && started.elapsed() < MAX_SHRINK_TIME {
        steps += 1;
        let body = tree.current();
        match handle.block_on(fuzz.run(&body)) {
            Err(reason) => {
                simplest = Some((body, reason));
                if !tree.simplify() {
                    break;
                }
            }
            Ok(()) => {
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    simplest
}

#[test]
fn ingest_bodies() {
    crate::support::run(fuzz(Route::Ingest, ingest_body));
}

#[test]
fn register_bodies() {
    crate::support::run(fuzz(Route::Register, register_body));
}

/// Found by this fuzz: a large body under a content type other than JSON
/// was refused before it was read, the server closed the connection with the
/// body unread, and the client's next request on that kept-alive connection
/// failed now and then ("IncompleteMessage", "Broken pipe"). Every refusal
/// must arrive, and the connection must stay usable.
#[test]
fn a_wrong_content_type_leaves_the_connection_usable() {
    crate::support::run(async {
        let app = TestApp::spawn(Backend::Mem).await;
        let body = json!({"pad": "x".repeat(200_000)}).to_string();
        for i in 0..200 {
            let path = if i % 2 == 0 {
                "/ingest"
            } else {
                "/view/register"
            };
            let response = app
                .post(path)
                .header(CONTENT_TYPE, "text/plain")
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("request {i} to {path}: {e:?}"));
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
            let error: Value = response.json().await.expect("a JSON error");
            assert!(error["error"].is_string(), "{error}");
            let live = app
                .http
                .get(app.url("/health/live"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET /health/live after request {i}: {e:?}"));
            assert_eq!(live.status(), StatusCode::OK);
        }
        app.stop().await;
    });
}
