use super::*;

#[test]
fn non_finite_floats_survive_the_state_file_format() {
    for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1.5e300] {
        let v = Value::Number(Number::Float(f));
        let text = serde_json::to_string(&v).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let Value::Number(Number::Float(g)) = back else {
            panic!("{text} read back as {back:?}")
        };
        assert_eq!(f.to_bits(), g.to_bits(), "{text}");
    }
    // Finite floats are written as before: files from earlier versions read.
    assert_eq!(
        serde_json::to_string(&Value::Number(Number::Float(2.5))).unwrap(),
        r#"{"Number":{"Float":2.5}}"#
    );
}

#[test]
fn an_object_serialises_as_its_pairs_and_shares_nothing_it_should_not() {
    let o = Object::from_pairs(vec![
        ("b".into(), Value::str("x")),
        ("a".into(), Value::Number(Number::Int(1))),
    ]);
    // The state file's format from before objects had shapes: a list
    // of [name, value] pairs in name order.
    let json = serde_json::to_value(&o).unwrap();
    let legacy = serde_json::to_value(vec![
        ("a", Value::Number(Number::Int(1))),
        ("b", Value::str("x")),
    ])
    .unwrap();
    assert_eq!(json, legacy);
    let back: Object = serde_json::from_value(json).unwrap();
    assert_eq!(back, o);

    let mut p = o.clone();
    p.insert("c".into(), Value::Null);
    p.remove_at(0);
    assert_eq!(
        p.names().iter().map(|n| n.as_ref()).collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(
        o.names().len(),
        2,
        "changing a copy leaves the shared shape alone"
    );
    assert_eq!(o.get("a"), Some(&Value::Number(Number::Int(1))));
    assert_eq!(Object::default().len(), 0);
}

fn int(i: i64) -> Value {
    Value::Number(Number::Int(i))
}
fn float(f: f64) -> Value {
    Value::Number(Number::Float(f))
}
fn thing(s: &str) -> Value {
    Value::thing(RecordId::parse(s).unwrap())
}

#[test]
fn measured_equalities() {
    assert!(int(1).sql_eq(&float(1.0)));
    assert!(!int(1).sql_eq(&Value::str("1")));
    assert!(!Value::None.sql_eq(&Value::Null));
    assert!(Value::Null.sql_eq(&Value::Null));
    assert!(thing("user:1").sql_eq(&thing("user:1")));
    assert!(Value::Array(thin_vec::thin_vec![]).sql_eq(&Value::Array(thin_vec::thin_vec![])));
    // The JSON rule.
    assert!(thing("user:1").sql_eq(&Value::str("user:1")));
    assert!(!thing("user:1").sql_eq(&Value::str("user:2")));
}

#[test]
fn measured_order() {
    use Ordering::*;
    assert_eq!(Value::str("B").sql_cmp(&Value::str("a")), Less);
    assert_eq!(int(1).sql_cmp(&Value::str("a")), Less);
    assert_eq!(Value::Bool(true).sql_cmp(&int(1)), Less);
    assert_eq!(Value::Null.sql_cmp(&int(0)), Less);
    assert_eq!(Value::None.sql_cmp(&Value::Null), Less);
    assert_eq!(thing("user:2").sql_cmp(&thing("user:10")), Less);
    assert_eq!(thing("user:a").sql_cmp(&thing("user:1")), Greater);
    assert_eq!(
        Value::Array(thin_vec::thin_vec![int(1)])
            .sql_cmp(&Value::Array(thin_vec::thin_vec![int(1), int(0)])),
        Less
    );
    assert_eq!(Value::str("10").sql_cmp(&Value::str("9")), Less);
    assert_eq!(int(10).sql_cmp(&float(9.99)), Greater);
    assert_eq!(float(1.5).sql_cmp(&int(1)), Greater);
}

#[test]
fn numbers_compare_exactly_at_every_magnitude() {
    // As SurrealDB 3.3.5 (`Ord for Number`); found by tests/differential/.
    use Ordering::*;
    assert!(float(-0.0).sql_eq(&float(0.0)));
    assert!(float(-0.0).sql_eq(&int(0)));
    assert_eq!(float(-0.0).sql_cmp(&float(0.0)), Equal);
    assert_eq!(
        int(i64::MAX).sql_cmp(&float(9.223_372_036_854_776e18)),
        Less
    );
    assert_eq!(
        int(i64::MIN).sql_cmp(&float(-9.223_372_036_854_776e18)),
        Equal
    );
    assert_eq!(
        int(9_007_199_254_740_993).sql_cmp(&float(9_007_199_254_740_992.0)),
        Greater
    );
    assert!(int(9_007_199_254_740_992).sql_eq(&float(9_007_199_254_740_992.0)));
    assert_eq!(int(i64::MAX).sql_cmp(&float(1e300)), Less);
    assert_eq!(int(1).sql_cmp(&float(1.5)), Less);
    assert_eq!(int(-1).sql_cmp(&float(-1.5)), Greater);
    assert_eq!(int(i64::MAX).sql_cmp(&float(f64::INFINITY)), Less);
    assert_eq!(int(i64::MIN).sql_cmp(&float(f64::NEG_INFINITY)), Greater);
}

#[test]
fn index_keys_agree_with_equality() {
    assert_eq!(float(-0.0).index_key(), int(0).index_key());
    assert_eq!(
        float(9_007_199_254_740_992.0).index_key(),
        int(9_007_199_254_740_992).index_key()
    );
    assert_eq!(
        float(-9.223_372_036_854_776e18).index_key(),
        int(i64::MIN).index_key()
    );
    assert_ne!(
        float(9.223_372_036_854_776e18).index_key(),
        int(i64::MAX).index_key()
    );
    assert_eq!(int(1).index_key(), float(1.0).index_key());
    assert_eq!(
        thing("user:1").index_key(),
        Value::str("user:1").index_key()
    );
    assert_ne!(int(1).index_key(), Value::str("1").index_key());
}

#[test]
fn record_id_text_round_trips() {
    for text in ["user:1", "user:abc", "user:`a b`", "user:-5"] {
        assert_eq!(RecordId::parse(text).unwrap().to_string(), text);
    }
    // Angle brackets are read, and written as SurrealDB writes them.
    assert_eq!(
        RecordId::parse("user:⟨a b⟩").unwrap().to_string(),
        "user:`a b`"
    );
    assert_eq!(RecordId::parse("user:1").unwrap().key, Key::Int(1));
    assert!(RecordId::parse("nocolon").is_none());
    assert_eq!(
        RecordId::parse_in_table("t", "x'; DROP").unwrap().key,
        Key::String("x'; DROP".into())
    );
    assert!(RecordId::parse_in_table("t", "u:1").is_err());
}

#[test]
fn same_content_bridges_json_and_typed_values() {
    let d = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    assert!(Value::datetime(d).same_content(&Value::str("2024-01-01T00:00:00Z")));
    assert!(thing("user:1").same_content(&Value::str("user:1")));
    assert!(!int(1).same_content(&int(2)));
}

/// `Value::hash_content` of `v`, finished.
fn content_hash(v: &Value) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    v.hash_content(&mut h);
    std::hash::Hasher::finish(&h)
}

/// `same_content` implies equal `hash_content`: the change worker's typed
/// copy of a write and an app's JSON copy share a fingerprint.
#[test]
fn the_same_content_has_the_same_content_hash() {
    let d = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let decimal = |s: &str| Value::decimal(s.parse().unwrap());
    let uuid = "0190d7b4-1111-7000-8000-000000000001";
    let float = |f: f64| Value::Number(Number::Float(f));
    let same = [
        (Value::datetime(d), Value::str("2024-01-01T00:00:00Z")),
        (Value::datetime(d), Value::str("2024-01-01T01:00:00+01:00")),
        (thing("user:1"), Value::str("user:1")),
        (decimal("1.50"), Value::str("1.5")),
        (
            Value::Duration(Box::new(std::time::Duration::from_secs(90))),
            Value::str("1m30s"),
        ),
        (
            Value::Uuid(Box::new(uuid::Uuid::try_parse(uuid).unwrap())),
            Value::str(uuid),
        ),
        (
            Value::Uuid(Box::new(
                uuid::Uuid::try_parse(&uuid.replace('0', "f")).unwrap(),
            )),
            Value::str(&uuid.replace('0', "f")),
        ),
        (int(1), float(1.0)),
        (
            Value::Array(vec![Value::datetime(d), int(2)].into()),
            Value::Array(vec![Value::str("2024-01-01T00:00:00Z"), float(2.0)].into()),
        ),
        (
            Value::Object(Object::from_pairs(vec![("at".into(), Value::datetime(d))])),
            Value::Object(Object::from_pairs(vec![(
                "at".into(),
                Value::str("2024-01-01T00:00:00Z"),
            )])),
        ),
    ];
    for (a, b) in &same {
        assert!(a.same_content(b), "{a:?} and {b:?}");
        assert_eq!(content_hash(a), content_hash(b), "{a:?} and {b:?}");
    }
    let other = [
        (Value::str("a"), Value::str("b")),
        (int(1), int(2)),
        (int(1), decimal("1")),
        (Value::str("user:1"), Value::str("user:2")),
        (
            Value::Array(vec![int(1)].into()),
            Value::Set(vec![int(1)].into()),
        ),
    ];
    for (a, b) in &other {
        assert!(!a.same_content(b), "{a:?} and {b:?}");
        assert_ne!(content_hash(a), content_hash(b), "{a:?} and {b:?}");
    }
}

/// The property behind the fingerprints of delivered contents, on random
/// trees: a tree and its JSON twin (each typed leaf, at random, replaced by
/// one of its text forms) have the same content and the same hash; and any
/// two random trees with the same content hash alike.
#[test]
fn same_content_implies_the_same_hash_on_random_trees() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A typed leaf, and the texts an app may send for it.
    fn leaf(rng: &mut StdRng) -> (Value, Vec<String>) {
        match rng.random_range(0..9) {
            0 => {
                let secs = rng.random_range(0..4_000_000_000i64);
                let nanos = [0, 500_000_000, 123_456_789][rng.random_range(0..3)];
                let d = DateTime::from_timestamp(secs, nanos).expect("in range");
                let texts = vec![
                    d.to_rfc3339(),
                    d.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    d.with_timezone(&chrono::FixedOffset::east_opt(3600).expect("offset"))
                        .to_rfc3339(),
                ];
                (Value::datetime(d), texts)
            }
            1 => {
                let d = Decimal::new(rng.random_range(-10_000..10_000), rng.random_range(0..4));
                let wide = format!("{d:.6}");
                (Value::decimal(d), vec![d.to_string(), wide])
            }
            2 => {
                let d = std::time::Duration::new(rng.random_range(0..100_000), 0);
                let text = sdb::Duration::from(d).to_string();
                (Value::Duration(Box::new(d)), vec![text])
            }
            3 => {
                let u = uuid::Uuid::from_u128(rng.random());
                let texts = vec![
                    u.hyphenated().to_string(),
                    u.simple().to_string(),
                    u.braced().to_string(),
                    u.urn().to_string(),
                ];
                (Value::Uuid(Box::new(u)), texts)
            }
            4 => {
                let text = format!("user:{}", rng.random_range(0..50));
                (thing(&text), vec![text])
            }
            5 => {
                let i = rng.random_range(-50..50);
                (int(i), Vec::new())
            }
            6 => (float(rng.random_range(-50..50) as f64 / 4.0), Vec::new()),
            7 => {
                let words = ["alpha", "beta", "", "10", "9", "B", "a"];
                (
                    Value::str(words[rng.random_range(0..words.len())]),
                    Vec::new(),
                )
            }
            _ => (
                [Value::None, Value::Null, Value::Bool(true)][rng.random_range(0..3)].clone(),
                Vec::new(),
            ),
        }
    }
    /// A random tree, and its JSON twin.
    fn tree(rng: &mut StdRng, depth: u32) -> (Value, Value) {
        let kind = if depth == 0 {
            0
        } else {
            rng.random_range(0..4)
        };
        match kind {
            1 | 2 => {
                let n = rng.random_range(0..4);
                let (a, b): (Vec<Value>, Vec<Value>) = (0..n).map(|_| tree(rng, depth - 1)).unzip();
                if kind == 1 {
                    (Value::Array(a.into()), Value::Array(b.into()))
                } else {
                    (Value::Set(a.into()), Value::Set(b.into()))
                }
            }
            3 => {
                let n = rng.random_range(0..4);
                let (a, b): (Vec<_>, Vec<_>) = (0..n)
                    .map(|i| {
                        let (x, y) = tree(rng, depth - 1);
                        let k: Arc<str> = format!("f{i}").into();
                        ((k.clone(), x), (k, y))
                    })
                    .unzip();
                (
                    Value::Object(Object::from_pairs(a)),
                    Value::Object(Object::from_pairs(b)),
                )
            }
            _ => {
                let (typed, texts) = leaf(rng);
                let twin = if texts.is_empty() || rng.random_bool(0.3) {
                    typed.clone()
                } else {
                    Value::str(&texts[rng.random_range(0..texts.len())])
                };
                (typed, twin)
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(0x4841_5348);
    let mut trees = Vec::new();
    for _ in 0..5_000 {
        let (a, b) = tree(&mut rng, 3);
        assert!(
            a.same_content(&b),
            "a tree and its JSON twin: {a:?} / {b:?}"
        );
        assert_eq!(
            content_hash(&a),
            content_hash(&b),
            "a tree and its JSON twin: {a:?} / {b:?}"
        );
        trees.push(a);
    }
    // Shallow trees repeat: pairs with the same content come up by chance.
    let mut shallow: Vec<Value> = (0..3_000).map(|_| tree(&mut rng, 1).1).collect();
    shallow.extend(trees.iter().take(500).cloned());
    let mut same = 0;
    for (i, a) in shallow.iter().enumerate() {
        for b in &shallow[i + 1..] {
            if a.same_content(b) {
                same += 1;
                assert_eq!(content_hash(a), content_hash(b), "{a:?} / {b:?}");
            }
        }
    }
    assert!(
        same > 100,
        "only {same} pairs with the same content: the check is vacuous"
    );
}

#[test]
fn an_index_reads_an_array_key_of_a_record_id() {
    // Measured on SurrealDB 3.3.5: `t:[1f, 'a'][0]` is `1f`, `t:7[0]` NONE,
    // with or without such a record (no fetch). Found by the differential.
    let rec = Value::Object(Object::from_pairs(vec![("l".into(), thing("t:[1f, 'a']"))]));
    let at = |path: Vec<PathPart>| rec.get_path(&path);
    let l = PathPart::Field("l".into());
    assert!(
        matches!(at(vec![l.clone(), PathPart::Index(0)]), Value::Number(Number::Float(f)) if f == 1.0)
    );
    assert_eq!(at(vec![l.clone(), PathPart::Index(1)]), Value::str("a"));
    assert_eq!(at(vec![l.clone(), PathPart::Index(2)]), Value::None);
    assert_eq!(thing("t:7").get_path(&[PathPart::Index(0)]), Value::None);
    assert!(
        rec.lookup(&[l, PathPart::Index(1)])
            .is_some_and(|v| *v == Value::str("a"))
    );
    assert!(!take_link_followed(), "no record was fetched");
}
