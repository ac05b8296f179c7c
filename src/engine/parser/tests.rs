use super::*;
use chrono::{DateTime, Utc};

// --- helpers ------------------------------------------------------------

/// Parses `sql`, asserting that SurrealDB accepts it too.
fn ok(sql: &str) -> Select {
    if let Err(e) = surrealdb_syn::parse(sql) {
        panic!("SurrealDB rejects {sql:?}: {e}");
    }
    match parse_select(sql) {
        Ok(s) => s,
        Err(e) => panic!("SSP rejects {sql:?}: {e}"),
    }
}

/// Parses `sql`, expecting a refusal.
fn err(sql: &str) -> ParseError {
    match parse_select(sql) {
        Ok(s) => panic!("SSP accepts {sql:?} as {s:?}"),
        Err(e) => {
            assert!(e.message.contains("line"), "no position in {:?}", e.message);
            assert!(e.line >= 1 && e.column >= 1);
            e
        }
    }
}

/// Asserts that `sql` is valid SurrealQL refused by SSP as `construct`.
fn refused(sql: &str, construct: &str) -> ParseError {
    if let Err(e) = surrealdb_syn::parse(sql) {
        panic!("SurrealDB rejects {sql:?} (the test wants a refusal by SSP): {e}");
    }
    let e = err(sql);
    assert_eq!(
        e.construct.as_deref(),
        Some(construct),
        "{sql:?}: {}",
        e.message
    );
    assert!(
        e.message
            .starts_with(&format!("unsupported construct {construct} at line ")),
        "{sql:?}: {}",
        e.message
    );
    e
}

/// The WHERE clause of `SELECT * FROM t WHERE <cond>`.
fn cond(c: &str) -> Expr {
    ok(&format!("SELECT * FROM t WHERE {c}"))
        .filter
        .expect("a WHERE clause")
}

fn field(path: &[&str]) -> Expr {
    Expr::Field(path.iter().map(|p| PathPart::Field((*p).into())).collect())
}
fn int(i: i64) -> Expr {
    Expr::Literal(Value::Number(Number::Int(i)))
}
fn float(f: f64) -> Expr {
    Expr::Literal(Value::Number(Number::Float(f)))
}
fn string(s: &str) -> Expr {
    Expr::Literal(Value::str(s))
}
fn boolean(b: bool) -> Expr {
    Expr::Literal(Value::Bool(b))
}
fn thing(table: &str, key: Key) -> Expr {
    Expr::Literal(Value::thing(RecordId::new(table, key)))
}
fn bin(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}
fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}
fn param(name: &str, path: &[&str]) -> Expr {
    Expr::Param {
        name: name.into(),
        path: path.iter().map(|p| PathPart::Field((*p).into())).collect(),
    }
}
#[test]
fn typed_literals_are_read_as_surrealdb_reads_them() {
    let lit = |c: &str| match cond(c) {
        Expr::Binary { rhs, .. } => match *rhs {
            Expr::Literal(v) => v,
            other => panic!("{c}: {other:?}"),
        },
        other => panic!("{c}: {other:?}"),
    };
    let dec = |t: &str| Value::decimal(t.parse().unwrap());
    assert_eq!(lit("a = 1.50dec"), dec("1.5"));
    assert_eq!(lit("a = -2dec"), dec("-2"));
    assert_eq!(lit("a = 1.5e2dec"), dec("150"));
    assert_eq!(
        lit("a = 1.00000000000000000001dec"),
        dec("1.00000000000000000001")
    );
    let secs = |s: u64| Value::duration(std::time::Duration::from_secs(s));
    assert_eq!(lit("a = 5s"), secs(5));
    assert_eq!(lit("a = 1h30m"), secs(5400));
    assert_eq!(lit("a = 2d"), secs(172_800));
    assert_eq!(
        lit("a = 3µs"),
        Value::duration(std::time::Duration::from_micros(3))
    );
    assert_eq!(lit("a = 0ns"), Value::duration(std::time::Duration::ZERO));
    assert_eq!(
        lit("a = u'0190fe58-8c5b-7d0c-9d5e-7b7a1c2f4e3a'"),
        Value::uuid(uuid::Uuid::parse_str("0190fe58-8c5b-7d0c-9d5e-7b7a1c2f4e3a").unwrap())
    );
    assert_eq!(
        lit("a = t:u'0190fe58-8c5b-7d0c-9d5e-7b7a1c2f4e3a'"),
        Value::thing(RecordId::new(
            "t",
            Key::Uuid(
                *uuid::Uuid::parse_str("0190fe58-8c5b-7d0c-9d5e-7b7a1c2f4e3a")
                    .unwrap()
                    .as_bytes()
            )
        ))
    );
    assert!(parse_select("SELECT * FROM t WHERE a = u'nope'").is_err());
    assert!(parse_select("SELECT * FROM t WHERE a = t:u'nope'").is_err());
    assert!(parse_select("SELECT * FROM t WHERE a = 5parsecs").is_err());
}

fn a_eq(v: Expr) -> Expr {
    bin(BinOp::Eq, field(&["a"]), v)
}

// --- the contract's queries --------------------------------------------

#[test]
fn contract_thread_query() {
    let s = ok(
        "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author \
                FROM thread ORDER BY title DESC LIMIT 10",
    );
    assert_eq!(s.table, "thread");
    assert_eq!(s.filter, None);
    assert_eq!(
        s.order,
        vec![Order {
            path: vec![PathPart::Field("title".into())],
            descending: true,
            fetch: false,
        }]
    );
    assert_eq!(s.limit, Some(int(10)));
    assert_eq!(s.start, None);
    assert_eq!(s.fields.len(), 2);
    assert_eq!(s.fields[0], Field::All);
    let Field::Subquery {
        query,
        index,
        alias,
    } = &s.fields[1]
    else {
        panic!("not a subquery: {:?}", s.fields[1]);
    };
    assert_eq!(*index, Some(Pick::At(0)));
    assert_eq!(
        alias.as_deref(),
        Some(&[PathPart::Field("author".into())][..])
    );
    assert_eq!(query.table, "user");
    assert_eq!(query.fields, vec![Field::All]);
    assert_eq!(
        query.filter,
        Some(bin(BinOp::Eq, field(&["id"]), param("parent", &["author"])))
    );
    assert_eq!(query.limit, Some(int(1)));
}

#[test]
fn contract_item_query() {
    let s = ok("SELECT * FROM item WHERE (category = 'A' OR category = 'B') AND active = true");
    assert_eq!(
        s.filter,
        Some(bin(
            BinOp::And,
            bin(
                BinOp::Or,
                bin(BinOp::Eq, field(&["category"]), string("A")),
                bin(BinOp::Eq, field(&["category"]), string("B")),
            ),
            bin(BinOp::Eq, field(&["active"]), boolean(true)),
        ))
    );
}

// --- projections ---------------------------------------------------------

#[test]
fn field_lists_and_aliases() {
    let s = ok("SELECT id, a.b AS x, 'lit' AS l, 5, $p AS p, tags[0] AS first, a AS b.c FROM t");
    assert_eq!(
        s.fields,
        vec![
            Field::Expr {
                expr: field(&["id"]),
                alias: None
            },
            Field::Expr {
                expr: field(&["a", "b"]),
                alias: Some(vec![PathPart::Field("x".into())])
            },
            Field::Expr {
                expr: string("lit"),
                alias: Some(vec![PathPart::Field("l".into())])
            },
            Field::Expr {
                expr: int(5),
                alias: None
            },
            Field::Expr {
                expr: param("p", &[]),
                alias: Some(vec![PathPart::Field("p".into())])
            },
            Field::Expr {
                expr: Expr::Field(vec![PathPart::Field("tags".into()), PathPart::Index(0)]),
                alias: Some(vec![PathPart::Field("first".into())]),
            },
            Field::Expr {
                expr: field(&["a"]),
                alias: Some(vec![
                    PathPart::Field("b".into()),
                    PathPart::Field("c".into())
                ]),
            },
        ]
    );
    // Keywords are identifiers where SurrealDB reads them as such.
    let s = ok("SELECT type, count, `value` FROM user WHERE value = 1");
    assert_eq!(
        s.fields[0],
        Field::Expr {
            expr: field(&["type"]),
            alias: None
        }
    );
    assert_eq!(
        s.fields[1],
        Field::Expr {
            expr: field(&["count"]),
            alias: None
        }
    );
    assert_eq!(s.filter, Some(bin(BinOp::Eq, field(&["value"]), int(1))));
}

#[test]
fn nested_subqueries_and_optional_index() {
    let s = ok(
        "SELECT *, (SELECT *, (SELECT * FROM user WHERE id = $parent.author)[0] AS author \
                FROM comment WHERE thread = $parent.id ORDER BY created_at) AS comments FROM thread",
    );
    let Field::Subquery {
        query,
        index: None,
        alias,
    } = &s.fields[1]
    else {
        panic!("{:?}", s.fields[1]);
    };
    assert_eq!(
        alias.as_deref(),
        Some(&[PathPart::Field("comments".into())][..])
    );
    assert_eq!(query.table, "comment");
    assert_eq!(query.order.len(), 1);
    let Field::Subquery {
        query: inner,
        index: Some(Pick::At(0)),
        ..
    } = &query.fields[1]
    else {
        panic!("{:?}", query.fields[1]);
    };
    assert_eq!(inner.table, "user");
    // Without alias too.
    let s = ok("SELECT (SELECT * FROM u WHERE id = $parent.u)[2] FROM t");
    assert!(matches!(
        s.fields[0],
        Field::Subquery {
            index: Some(Pick::At(2)),
            alias: None,
            ..
        }
    ));
    // `[$]`, the last row; a path after it is a value of the row.
    let s = ok("SELECT (SELECT * FROM u WHERE t = $parent.id ORDER BY at)[$] AS latest FROM t");
    assert!(matches!(
        s.fields[0],
        Field::Subquery {
            index: Some(Pick::Last),
            ..
        }
    ));
    let s = ok("SELECT (SELECT * FROM u WHERE t = $parent.id)[$].name AS latest FROM t");
    assert!(matches!(s.fields[0], Field::Computed { .. }));
}

// --- FROM ------------------------------------------------------------------

#[test]
fn from_quoted_tables() {
    assert_eq!(ok("SELECT * FROM `my table`").table, "my table");
    assert_eq!(ok("SELECT * FROM ⟨my-table⟩").table, "my-table");
    assert_eq!(ok("SELECT * FROM user").table, "user");
    assert_eq!(ok("SELECT * FROM t;").table, "t");
}

// --- WHERE operators --------------------------------------------------------

#[test]
fn comparison_operators() {
    let cases = [
        ("a = 1", BinOp::Eq),
        ("a == 1", BinOp::ExactEq),
        ("a != 1", BinOp::Ne),
        ("a < 1", BinOp::Lt),
        ("a <= 1", BinOp::Le),
        ("a > 1", BinOp::Gt),
        ("a >= 1", BinOp::Ge),
        ("a IS 1", BinOp::Eq),
        ("a IS NOT 1", BinOp::Ne),
        ("a CONTAINS 1", BinOp::Contains),
        ("a CONTAINSANY 1", BinOp::ContainsAny),
        ("a CONTAINSALL 1", BinOp::ContainsAll),
        ("a CONTAINSNONE 1", BinOp::ContainsNone),
        ("a INSIDE 1", BinOp::Inside),
        ("a IN 1", BinOp::Inside),
        ("a NOT IN 1", BinOp::NotInside),
        ("a NOTINSIDE 1", BinOp::NotInside),
        ("a ∋ 1", BinOp::Contains),
        ("a ∈ 1", BinOp::Inside),
        ("a ∉ 1", BinOp::NotInside),
        ("a ⊇ 1", BinOp::ContainsAll),
        ("a ⊃ 1", BinOp::ContainsAny),
        ("a ⊅ 1", BinOp::ContainsNone),
        ("a contains 1", BinOp::Contains),
        ("a is not 1", BinOp::Ne),
        ("a not in 1", BinOp::NotInside),
    ];
    for (c, op) in cases {
        assert_eq!(cond(c), bin(op, field(&["a"]), int(1)), "{c}");
    }
}

#[test]
fn none_null_and_booleans() {
    assert_eq!(cond("a IS NONE"), a_eq(Expr::Literal(Value::None)));
    assert_eq!(cond("a = NONE"), a_eq(Expr::Literal(Value::None)));
    assert_eq!(
        cond("a IS NOT NULL"),
        bin(BinOp::Ne, field(&["a"]), Expr::Literal(Value::Null))
    );
    assert_eq!(cond("a = null"), a_eq(Expr::Literal(Value::Null)));
    assert_eq!(cond("a = TRUE"), a_eq(boolean(true)));
    assert_eq!(cond("a = false"), a_eq(boolean(false)));
    assert_eq!(cond("a"), field(&["a"]));
}

#[test]
fn logical_operators() {
    assert_eq!(
        cond("a && b"),
        bin(BinOp::And, field(&["a"]), field(&["b"]))
    );
    assert_eq!(cond("a || b"), bin(BinOp::Or, field(&["a"]), field(&["b"])));
    assert_eq!(
        cond("a and b or c"),
        bin(
            BinOp::Or,
            bin(BinOp::And, field(&["a"]), field(&["b"])),
            field(&["c"])
        )
    );
    assert_eq!(cond("!a"), not(field(&["a"])));
    assert_eq!(cond("!!a"), not(not(field(&["a"]))));
    // `!` binds to one operand, as SurrealDB's prefix binding power says.
    assert_eq!(cond("!a = 1"), bin(BinOp::Eq, not(field(&["a"])), int(1)));
    assert_eq!(
        cond("!a.b AND c"),
        bin(BinOp::And, not(field(&["a", "b"])), field(&["c"]))
    );
    assert_eq!(cond("!(a = 1)"), not(a_eq(int(1))));
    // `NOT (x)` is the builtin `not`.
    assert_eq!(cond("NOT (a = 1)"), not(a_eq(int(1))));
    assert_eq!(
        cond("NOT(a) AND b"),
        bin(BinOp::And, not(field(&["a"])), field(&["b"]))
    );
    assert_eq!(
        cond("not(a = 1 OR b = 2)"),
        not(bin(
            BinOp::Or,
            a_eq(int(1)),
            bin(BinOp::Eq, field(&["b"]), int(2))
        ))
    );
}

#[test]
fn precedence_matches_surrealdb() {
    let (a1, b2, c3) = (
        a_eq(int(1)),
        bin(BinOp::Eq, field(&["b"]), int(2)),
        bin(BinOp::Eq, field(&["c"]), int(3)),
    );
    // AND binds tighter than OR.
    assert_eq!(
        cond("a = 1 OR b = 2 AND c = 3"),
        bin(
            BinOp::Or,
            a1.clone(),
            bin(BinOp::And, b2.clone(), c3.clone())
        )
    );
    assert_eq!(
        cond("a = 1 AND b = 2 OR c = 3"),
        bin(
            BinOp::Or,
            bin(BinOp::And, a1.clone(), b2.clone()),
            c3.clone()
        )
    );
    // Left associative.
    assert_eq!(
        cond("a = 1 OR b = 2 OR c = 3"),
        bin(
            BinOp::Or,
            bin(BinOp::Or, a1.clone(), b2.clone()),
            c3.clone()
        )
    );
    assert_eq!(
        cond("(a = 1 OR b = 2) AND c = 3"),
        bin(BinOp::And, bin(BinOp::Or, a1, b2), c3)
    );
    // Relations bind tighter than equality.
    assert_eq!(
        cond("a < 1 = true"),
        bin(
            BinOp::Eq,
            bin(BinOp::Lt, field(&["a"]), int(1)),
            boolean(true)
        )
    );
    assert_eq!(
        cond("true = a < 1"),
        bin(
            BinOp::Eq,
            boolean(true),
            bin(BinOp::Lt, field(&["a"]), int(1))
        )
    );
    assert_eq!(
        cond("a IN [1] = b CONTAINS 2"),
        bin(
            BinOp::Eq,
            bin(BinOp::Inside, field(&["a"]), Expr::Array(vec![int(1)])),
            bin(BinOp::Contains, field(&["b"]), int(2)),
        )
    );
}

#[test]
fn paths_and_params() {
    assert_eq!(
        cond("a.b.c = 1"),
        bin(BinOp::Eq, field(&["a", "b", "c"]), int(1))
    );
    assert_eq!(
        cond("a[0].b[12] = 1"),
        bin(
            BinOp::Eq,
            Expr::Field(vec![
                PathPart::Field("a".into()),
                PathPart::Index(0),
                PathPart::Field("b".into()),
                PathPart::Index(12),
            ]),
            int(1),
        )
    );
    assert_eq!(
        cond("`a b`.⟨c⟩ = 1"),
        bin(BinOp::Eq, field(&["a b", "c"]), int(1))
    );
    assert_eq!(
        cond("owner = $uid"),
        bin(BinOp::Eq, field(&["owner"]), param("uid", &[]))
    );
    assert_eq!(cond("a = $x.y.z"), a_eq(param("x", &["y", "z"])));
    assert_eq!(
        cond("a = $x[1]"),
        a_eq(Expr::Param {
            name: "x".into(),
            path: vec![PathPart::Index(1)]
        })
    );
    assert_eq!(cond("a = $`odd name`"), a_eq(param("odd name", &[])));
}

// --- literals ---------------------------------------------------------------

#[test]
fn string_literals() {
    assert_eq!(cond("a = 'x'"), a_eq(string("x")));
    assert_eq!(cond("a = \"x\""), a_eq(string("x")));
    assert_eq!(cond("a = s'x'"), a_eq(string("x")));
    assert_eq!(cond(r#"a = 'it\'s'"#), a_eq(string("it's")));
    assert_eq!(cond(r#"a = "say \"hi\"""#), a_eq(string("say \"hi\"")));
    assert_eq!(cond(r"a = 'a\nb\tc\\d\0'"), a_eq(string("a\nb\tc\\d\0")));
    assert_eq!(cond(r"a = '\u00e9\u{1F600}'"), a_eq(string("é😀")));
    assert_eq!(cond("a = 'ünïcödé ⟨⟩'"), a_eq(string("ünïcödé ⟨⟩")));
    assert_eq!(cond("a = ''"), a_eq(string("")));
}

#[test]
fn number_literals() {
    assert_eq!(cond("a = 42"), a_eq(int(42)));
    assert_eq!(cond("a = 1_000"), a_eq(int(1000)));
    assert_eq!(cond("a = -42"), a_eq(int(-42)));
    assert_eq!(cond("a = - 42"), a_eq(int(-42)));
    assert_eq!(cond("a = -(42)"), a_eq(int(-42)));
    assert_eq!(cond("a = +7"), a_eq(int(7)));
    assert_eq!(cond("a = 1.5"), a_eq(float(1.5)));
    assert_eq!(cond("a = -1.5"), a_eq(float(-1.5)));
    assert_eq!(cond("a = 1e3"), a_eq(float(1000.0)));
    assert_eq!(cond("a = 2.5E-2"), a_eq(float(0.025)));
    assert_eq!(cond("a = 3f"), a_eq(float(3.0)));
    assert_eq!(cond("a = 9223372036854775807"), a_eq(int(i64::MAX)));
    assert_eq!(cond("a = -9223372036854775808"), a_eq(int(i64::MIN)));
    assert_eq!(cond("a = Infinity"), a_eq(float(f64::INFINITY)));
    assert_eq!(cond("a = -Infinity"), a_eq(float(f64::NEG_INFINITY)));
    assert_eq!(
        cond("a > 0 AND a < 10"),
        bin(
            BinOp::And,
            bin(BinOp::Gt, field(&["a"]), int(0)),
            bin(BinOp::Lt, field(&["a"]), int(10))
        )
    );
    assert_eq!(cond("a < -1"), bin(BinOp::Lt, field(&["a"]), int(-1)));
}

#[test]
fn record_id_literals() {
    let k = |s: &str| Key::String(s.into());
    assert_eq!(cond("a = user:1"), a_eq(thing("user", Key::Int(1))));
    assert_eq!(cond("a = user:abc"), a_eq(thing("user", k("abc"))));
    assert_eq!(cond("a = user:⟨a b⟩"), a_eq(thing("user", k("a b"))));
    assert_eq!(cond("a = user:`x y`"), a_eq(thing("user", k("x y"))));
    assert_eq!(cond("a = user:-5"), a_eq(thing("user", Key::Int(-5))));
    assert_eq!(cond("a = user:1abc"), a_eq(thing("user", k("1abc"))));
    assert_eq!(
        cond("a = user:99999999999999999999"),
        a_eq(thing("user", k("99999999999999999999")))
    );
    assert_eq!(cond("a = user:uuid"), a_eq(thing("user", k("uuid"))));
    assert_eq!(
        cond("a = `my table`:1"),
        a_eq(thing("my table", Key::Int(1)))
    );
    assert_eq!(cond("a = r'user:1'"), a_eq(thing("user", Key::Int(1))));
    assert_eq!(cond("a = r\"user:⟨a b⟩\""), a_eq(thing("user", k("a b"))));
    assert_eq!(
        cond("id = user:1 AND b = 2"),
        bin(
            BinOp::And,
            bin(BinOp::Eq, field(&["id"]), thing("user", Key::Int(1))),
            bin(BinOp::Eq, field(&["b"]), int(2))
        )
    );
    assert_eq!(
        cond("a IN [user:1, user:2]"),
        bin(
            BinOp::Inside,
            field(&["a"]),
            Expr::Array(vec![thing("user", Key::Int(1)), thing("user", Key::Int(2))])
        )
    );
}

#[test]
fn datetime_literals() {
    let d = |s: &str| {
        Expr::Literal(Value::datetime(
            DateTime::parse_from_rfc3339(s)
                .expect("valid")
                .with_timezone(&Utc),
        ))
    };
    assert_eq!(
        cond("a < d\"2024-01-01T00:00:00Z\""),
        bin(BinOp::Lt, field(&["a"]), d("2024-01-01T00:00:00Z"))
    );
    assert_eq!(
        cond("a = d'2024-01-02T03:04:05.123456789+02:00'"),
        a_eq(d("2024-01-02T03:04:05.123456789+02:00"))
    );
    assert_eq!(cond("a = d'2024-01-02'"), a_eq(d("2024-01-02T00:00:00Z")));
}

#[test]
fn array_literals() {
    assert_eq!(
        cond("a IN []"),
        bin(BinOp::Inside, field(&["a"]), Expr::Array(vec![]))
    );
    assert_eq!(
        cond("a IN [1, 'x', [true, NONE], $p, b,]"),
        bin(
            BinOp::Inside,
            field(&["a"]),
            Expr::Array(vec![
                int(1),
                string("x"),
                Expr::Array(vec![boolean(true), Expr::Literal(Value::None)]),
                param("p", &[]),
                field(&["b"]),
            ]),
        )
    );
}

#[test]
fn functions() {
    let call = |func, args| Expr::Call { func, args };
    assert_eq!(
        cond("string::starts_with(name, 'ab')"),
        call(
            Function::StringStartsWith,
            vec![field(&["name"]), string("ab")]
        )
    );
    assert_eq!(
        cond("string::ends_with(name, 'ab')"),
        call(
            Function::StringEndsWith,
            vec![field(&["name"]), string("ab")]
        )
    );
    assert_eq!(
        cond("string::contains(name, $q)"),
        call(
            Function::StringContains,
            vec![field(&["name"]), param("q", &[])]
        )
    );
    assert_eq!(
        cond("string::lowercase(name) = 'x'"),
        a_eq_f(call(Function::StringLowercase, vec![field(&["name"])]))
    );
    assert_eq!(
        cond("STRING::UPPERCASE(name) = 'x'"),
        a_eq_f(call(Function::StringUppercase, vec![field(&["name"])]))
    );
    assert_eq!(
        cond("array::len(tags) > 2"),
        bin(
            BinOp::Gt,
            call(Function::ArrayLen, vec![field(&["tags"])]),
            int(2)
        )
    );
    assert_eq!(
        cond("!string::starts_with(name, 'ab',)"),
        not(call(
            Function::StringStartsWith,
            vec![field(&["name"]), string("ab")]
        ))
    );

    fn a_eq_f(lhs: Expr) -> Expr {
        bin(BinOp::Eq, lhs, string("x"))
    }
}

// --- ORDER / LIMIT / START ---------------------------------------------

#[test]
fn order_by() {
    let o = |p: &[&str], d| Order {
        path: p.iter().map(|x| PathPart::Field((*x).into())).collect(),
        descending: d,
        fetch: false,
    };
    assert_eq!(
        ok("SELECT * FROM t ORDER BY a, b DESC").order,
        vec![o(&["a"], false), o(&["b"], true)]
    );
    assert_eq!(
        ok("SELECT * FROM t ORDER BY a ASC, b.c DESC, d").order,
        vec![o(&["a"], false), o(&["b", "c"], true), o(&["d"], false)]
    );
    assert_eq!(
        ok("SELECT * FROM t ORDER a DESCENDING").order,
        vec![o(&["a"], true)]
    );
    assert_eq!(
        ok("SELECT * FROM t order by a ascending").order,
        vec![o(&["a"], false)]
    );
    assert_eq!(
        ok("SELECT * FROM t ORDER BY a[0] DESC").order,
        vec![Order {
            path: vec![PathPart::Field("a".into()), PathPart::Index(0)],
            descending: true,
            fetch: false,
        }]
    );
}

#[test]
fn limit_and_start() {
    let s = ok("SELECT * FROM t LIMIT 10 START 5");
    assert_eq!((s.limit, s.start), (Some(int(10)), Some(int(5))));
    let s = ok("SELECT * FROM t START 5 LIMIT 10");
    assert_eq!((s.limit, s.start), (Some(int(10)), Some(int(5))));
    let s = ok("SELECT * FROM t LIMIT BY 10 START AT 5");
    assert_eq!((s.limit, s.start), (Some(int(10)), Some(int(5))));
    let s = ok("SELECT * FROM t START AT $s");
    assert_eq!((s.limit, s.start), (None, Some(param("s", &[]))));
    let s = ok("SELECT * FROM t WHERE a = 1 ORDER BY a LIMIT $n");
    assert_eq!(s.limit, Some(param("n", &[])));
    let s = ok("SELECT * FROM t LIMIT 0");
    assert_eq!(s.limit, Some(int(0)));
}

#[test]
fn keywords_are_case_insensitive_and_comments_are_skipped() {
    let s = ok("select * from t where a = 1 and b != 2 order by a desc limit 5 start 1");
    assert_eq!(s.limit, Some(int(5)));
    assert_eq!(s.order.len(), 1);
    let s = ok("SeLeCt *\n-- a comment\nFrOm t /* block */ WHERE a = 1 # trailing\n// more\n;");
    assert_eq!(s.table, "t");
    assert_eq!(s.filter, Some(a_eq(int(1))));
}

// --- refusals ----------------------------------------------------------------

#[test]
fn refuses_group_by_with_position() {
    let e = refused("SELECT * FROM t GROUP BY a", "GROUP BY");
    assert_eq!((e.line, e.column), (1, 17));
    assert!(e.message.contains("line 1, column 17"), "{}", e.message);
    refused("SELECT * FROM t GROUP ALL", "GROUP ALL");
    refused("SELECT * FROM t WHERE a = 1 GROUP BY a", "GROUP BY");
    let e = refused("SELECT *\nFROM t\n  GROUP BY a", "GROUP BY");
    assert_eq!((e.line, e.column), (3, 3));
}

/// SurrealDB's AST has no positions: a refusal points at the first place
/// its construct's text appears, outside strings and comments.
#[test]
fn refusals_point_at_their_construct() {
    for (sql, construct, at) in [
        (
            "SELECT * FROM t\nWHERE name = 'fn::x' AND fn::banned(id)",
            "function fn::banned",
            (2, 26),
        ),
        (
            "SELECT * -- count(\nFROM t WHERE count(a) > 1",
            "function count",
            (2, 14),
        ),
        (
            "SELECT * FROM t WHERE tags[$] = 1",
            "`[$]` (last element)",
            (1, 27),
        ),
        (
            "SELECT * FROM t WHERE a.* = 1",
            "`.*` (all fields)",
            (1, 24),
        ),
        (
            "SELECT * FROM t WHERE a[*] = 1",
            "`[*]` (all elements)",
            (1, 24),
        ),
        (
            "SELECT * FROM t WHERE a.len() = 1",
            "method call .len()",
            (1, 24),
        ),
        ("SELECT * FROM t WHERE a = 1\n  SPLIT b", "SPLIT", (2, 3)),
        ("SELECT * FROM t, u", "several FROM targets", (1, 16)),
    ] {
        let e = refused(sql, construct);
        assert_eq!((e.line, e.column), at, "{sql}: {}", e.message);
    }
}

#[test]
fn refuses_aggregates_and_unknown_functions() {
    let e = refused("SELECT count(), a FROM t GROUP BY a", "function count");
    assert!(
        e.message
            .contains("unknown or unsupported function `count`"),
        "{}",
        e.message
    );
    refused(
        "SELECT * FROM t WHERE math::max(a) > 1",
        "function math::max",
    );
    refused(
        "SELECT * FROM t WHERE string::len(a) > 1",
        "function string::len",
    );
    refused("SELECT * FROM t WHERE fn::custom(a)", "function fn::custom");
    refused("SELECT * FROM t WHERE a = math::pi", "constant math::pi");
    refused(
        "SELECT * FROM t WHERE string::starts_with(a)",
        "function string::starts_with",
    );
    refused("SELECT * FROM t WHERE not(a, b)", "function not");
}

#[test]
fn refuses_several_tables_and_other_targets() {
    refused("SELECT * FROM a, b", "several FROM targets");
    refused("SELECT * FROM user:1..5", "record id range");
    refused("SELECT * FROM user:1, user:2", "several FROM targets");
    refused("SELECT * FROM [user:1, 5]", "FROM a list of values");
    refused("SELECT * FROM [user:1, post:1]", "FROM a list of values");
    refused("SELECT * FROM []", "FROM a list of values");
    refused("SELECT * FROM (SELECT * FROM t)", "FROM a subquery");
    // A path of a param: resolved with the params (see `engine::param_links`).
    let s = ok("SELECT * FROM $team.players");
    assert!(
        matches!(&s.ids, Some(Expr::Param { name, path }) if name == "team" && path.len() == 1)
    );
    // (`?? []` is the path itself: `from_a_path_or_nothing_is_the_path`.)
    refused(
        "SELECT * FROM $team.players ?? $others",
        "expression in FROM",
    );
    refused(
        "SELECT *, (SELECT * FROM $ids) AS x FROM t",
        "FROM a parameter",
    );
    refused(
        "SELECT *, (SELECT * FROM ONLY u:1) AS x FROM t",
        "ONLY in a subquery",
    );
    refused("SELECT * FROM type::table('t')", "FROM a function call");
    refused("SELECT * FROM t AND u", "expression in FROM");
}

#[test]
fn refuses_clauses() {
    refused("SELECT * FROM t FETCH tags[0]", "FETCH of an indexed path");
    let s = ok("SELECT * FROM t FETCH comments.user, author");
    assert_eq!(
        s.fetch,
        vec![
            crate::engine::value::FieldName::from("comments"),
            crate::engine::value::FieldName::from("author")
        ]
    );
    assert_eq!(
        s.fetch_nested,
        vec![(
            crate::engine::value::FieldName::from("comments"),
            vec![crate::engine::value::FieldName::from("user")]
        )]
    );
    refused("SELECT * FROM t SPLIT tags", "SPLIT");
    refused("SELECT * FROM t WITH NOINDEX WHERE a = 1", "WITH");
    refused("SELECT * FROM t TIMEOUT 5s", "TIMEOUT");
    refused("SELECT * FROM t EXPLAIN", "EXPLAIN");
    refused("SELECT * FROM t TEMPFILES", "TEMPFILES");
    refused("SELECT * FROM t VERSION d'2024-01-01'", "VERSION");
    refused(
        // (`SELECT VALUE id` is a value: `counts_and_values_of_subqueries_...`.)
        "SELECT *, (SELECT VALUE id FROM u)[0] AS x FROM t",
        "SELECT VALUE in a subquery",
    );
    refused(
        "SELECT VALUE (SELECT * FROM u) FROM t",
        "SELECT VALUE of a subquery",
    );
    refused(
        "SELECT record::id(owner) AS o FROM t",
        "function record::id",
    );
    refused(
        "SELECT * FROM t WHERE meta::tb($x) = 'u'",
        "function meta::tb",
    );
    refused("SELECT * FROM t ORDER BY RAND()", "ORDER BY RAND()");
    refused("SELECT * FROM t ORDER BY a COLLATE", "ORDER BY ... COLLATE");
    refused(
        "SELECT * FROM t ORDER BY a NUMERIC DESC",
        "ORDER BY ... NUMERIC",
    );
    refused("SELECT * FROM t LIMIT 10 FETCH a TIMEOUT 1s", "TIMEOUT");
    for sql in [
        "SELECT * FROM t FETCH author",
        "SELECT * FROM t LIMIT 10 FETCH a, b",
        "SELECT * FROM t WHERE a = 1 ORDER BY a LIMIT 1 START 2 FETCH a",
        "SELECT *, (SELECT * FROM u WHERE id = $parent.a FETCH b) AS x FROM t",
    ] {
        assert!(parse_select(sql).is_ok(), "{sql}");
    }
    refused("SELECT * FROM t LIMIT 1.5", "LIMIT expression");
    refused("SELECT * FROM t LIMIT -1", "LIMIT expression");
    refused("SELECT * FROM t START a", "START expression");
}

#[test]
fn refuses_other_statements() {
    refused("UPDATE t SET a = 1", "UPDATE statement");
    refused("DELETE t", "DELETE statement");
    refused("LET $x = 1; SELECT * FROM t", "LET statement");
    refused("SELECT * FROM t; SELECT * FROM u", "several statements");
    refused("RETURN 1", "RETURN statement");
    refused(
        "SELECT * FROM t ORDER BY a = 1",
        "operator applied to the query",
    );
    refused(
        "SELECT * FROM t ORDER BY a DESC AND true",
        "operator applied to the query",
    );
    for (sql, found) in [
        ("SELECT * FROM t WHERE not(a, b)", "found 2"),
        ("SELECT * FROM t WHERE not()", "found 0"),
    ] {
        let e = refused(sql, "function not");
        assert!(e.message.contains(found), "{}", e.message);
    }
    // SurrealDB's AST has no parentheses: the same query, the same answer.
    assert_eq!(ok("(SELECT * FROM t)").table, "t");
    for empty in ["", ";", " -- nothing\n"] {
        let e = err(empty);
        assert!(e.message.contains("empty query"), "{}", e.message);
    }
    assert_eq!(ok("; SELECT * FROM t;;").table, "t");
}

#[test]
fn refuses_expressions_ssp_does_not_evaluate() {
    refused("SELECT * FROM t WHERE a + 1 = 2", "arithmetic operator `+`");
    refused("SELECT * FROM t WHERE a = b - 1", "arithmetic operator `-`");
    refused("SELECT * FROM t WHERE a * 2 = 2", "arithmetic operator `*`");
    refused("SELECT * FROM t WHERE a / 2 = 2", "arithmetic operator `/`");
    refused(
        "SELECT * FROM t WHERE a ** 2 = 4",
        "arithmetic operator `**`",
    );
    refused("SELECT * FROM t WHERE -a = 1", "arithmetic operator `-`");
    refused("SELECT * FROM t WHERE a ?= 1", "operator `?=`");
    refused("SELECT * FROM t WHERE a *= 1", "operator `*=`");
    refused("SELECT * FROM t WHERE a @@ 'x'", "full-text match `@@`");
    refused("SELECT * FROM t WHERE a ?? 1", "operator `??`");
    refused("SELECT * FROM t WHERE a OUTSIDE b", "operator OUTSIDE");
    refused("SELECT * FROM t WHERE <int> a = 1", "cast");
    refused("SELECT * FROM t WHERE ->likes->post", "graph traversal");
    refused(
        "SELECT ->likes->post + 1 AS p FROM t",
        "expression over a graph traversal",
    );
    refused("SELECT * FROM t WHERE a->likes", "graph traversal");
    refused("SELECT * FROM t WHERE a<-likes", "graph traversal");
    refused(
        "SELECT * FROM t WHERE IF a THEN 1 ELSE 2 END",
        "IF expression",
    );
    refused("SELECT * FROM t WHERE |$x| $x", "closure");
    refused(
        "SELECT * FROM t WHERE a IN (SELECT id FROM u)",
        "subquery inside an expression",
    );
    refused(
        "SELECT * FROM t WHERE a = {x: 1}",
        "object literal or block",
    );
    refused("SELECT * FROM t WHERE a = 1..5", "range");
    refused("SELECT * FROM t WHERE a = -5s", "signed duration literal");
    refused("SELECT * FROM t WHERE a = /x/", "regex literal");
    refused("SELECT * FROM t WHERE a.*", "`.*` (all fields)");
    refused("SELECT * FROM t WHERE a[*] = 1", "`[*]` (all elements)");
    refused("SELECT * FROM t WHERE a[$] = 1", "`[$]` (last element)");
    refused(
        "SELECT * FROM t WHERE a[WHERE b = 1]",
        "filter `[WHERE ...]`",
    );
    refused("SELECT * FROM t WHERE a[$i] = 1", "computed index");
    refused("SELECT * FROM t WHERE a.len() = 1", "method call .len()");
    refused(
        "SELECT * FROM t WHERE a = user:1.name",
        "path on a record id",
    );
    refused(
        "SELECT * FROM t WHERE a = user:[1, 2]",
        "array record id key",
    );
    refused(
        "SELECT * FROM t WHERE a = user:ulid()",
        "generated record id key",
    );
    refused("SELECT * FROM t WHERE a = (1, 2)", "geometry point");
    refused("SELECT * FROM t WHERE @.a = 1", "document reference `@`");
    refused(
        "SELECT (SELECT * FROM u).name AS n FROM t",
        "path after a subquery",
    );
    refused(
        "SELECT (SELECT * FROM u) = 1 AS n FROM t",
        "subquery inside an expression",
    );
}

#[test]
fn trailing_text_is_an_error() {
    // SurrealDB itself rejects these; its message (with position) is used.
    for sql in [
        "SELECT * FROM t garbage",
        "SELECT * FROM t WHERE a = 1 garbage",
        "SELECT * FROM t LIMIT 1 2",
    ] {
        let e = err(sql);
        assert!(surrealdb_syn::parse(sql).is_err());
        assert!(
            e.message
                .starts_with("SurrealDB cannot parse the query at line 1, column "),
            "{}",
            e.message
        );
        assert!(e.column > 15, "{sql}: {}", e.message);
    }
}

#[test]
fn syntax_errors_come_from_surrealdb() {
    let e = err("SELECT * FROM");
    assert!(
        e.message.starts_with("SurrealDB cannot parse"),
        "{}",
        e.message
    );
    assert_eq!(e.construct, None);
    let e = err("SELECT * FROM t WHERE a = 'unterminated");
    assert!(e.message.contains("line 1"), "{}", e.message);
    let e = err("SELECT *\nFROM t\nWHERE a = = 1");
    assert_eq!(e.line, 3, "{}", e.message);
}

/// Literal values read exactly as SurrealDB reads them: compared with the
/// `Debug` form of SurrealDB's own AST for the same literal.
#[test]
fn literal_values_agree_with_surrealdb() {
    fn surreal_form(v: &Value) -> String {
        match v {
            Value::Number(Number::Int(i)) => format!("Literal(Integer({i}))"),
            Value::Number(Number::Float(f)) => format!("Literal(Float({f:?}))"),
            Value::Datetime(d) => format!("Literal(Datetime({d:?}))"),
            Value::Thing(r) => format!(
                "Literal(RecordId(RecordIdLit {{ table: TableName({:?}), key: {} }}))",
                r.table.as_str(),
                match &r.key {
                    Key::Int(i) => format!("Number({i})"),
                    Key::String(s) => format!("String({:?})", s.as_ref()),
                    other => panic!("no SurrealDB form for key {other:?}"),
                }
            ),
            other => panic!("no SurrealDB form for {other:?}"),
        }
    }
    let literals = [
        "user:1",
        "user:1abc",
        "user:1e5",
        "user:1_a",
        "user:-5",
        "user:99999999999999999999",
        "user:9223372036854775808",
        "user:-9223372036854775808",
        "user:1_000",
        "user:⟨a b⟩",
        "user:`x y`",
        "user:ulid",
        "user:_x9",
        "user:true",
        "`a b`:x",
        "⟨t⟩:⟨k⟩",
        "r'user:1'",
        "r\"user:⟨a b⟩\"",
        "1e3",
        "3f",
        "1_000",
        "-42",
        "2.5E-2",
        "0.1",
        "1.5f",
        "007",
        "9223372036854775807",
        "-9223372036854775808",
        "d'2024-01-02'",
        "d\"2024-01-02T03:04:05.123456789+02:00\"",
        "d'2024-01-02 03:04:05Z'",
        "d'2024-01-02T03:04:05.1234567891Z'",
    ];
    for lit in literals {
        let Expr::Binary { rhs, .. } = cond(&format!("a = {lit}")) else {
            panic!("{lit}")
        };
        let Expr::Literal(v) = *rhs else {
            panic!("{lit}: not a literal")
        };
        let theirs = match surrealdb_syn::expr(lit) {
            Ok(e) => format!("{e:?}"),
            Err(e) => panic!("SurrealDB rejects {lit}: {e}"),
        };
        assert_eq!(surreal_form(&v), theirs, "{lit}");
    }
}

/// Nesting as deep as SurrealDB allows parses without exhausting the
/// stack; deeper nesting is SurrealDB's error, not a crash.
#[test]
fn deep_nesting() {
    // The deepest nesting of each shape that SurrealDB still accepts.
    fn deepest(make: impl Fn(usize) -> String) -> (usize, String) {
        let mut best = (0, make(0));
        for n in 1..=300 {
            let q = make(n);
            if surrealdb_syn::parse(&q).is_err() {
                break;
            }
            best = (n, q);
        }
        best
    }
    let shapes: [Box<dyn Fn(usize) -> String>; 5] = [
        Box::new(|n| {
            format!(
                "SELECT * FROM t WHERE {}a = 1{}",
                "(".repeat(n),
                ")".repeat(n)
            )
        }),
        Box::new(|n| format!("SELECT * FROM t WHERE {}a", "!".repeat(n))),
        Box::new(|n| {
            format!(
                "SELECT * FROM t WHERE a IN {}1{}",
                "[".repeat(n),
                "]".repeat(n)
            )
        }),
        Box::new(|n| format!("SELECT * FROM t WHERE a = 1{}", " OR a = 1".repeat(n))),
        Box::new(|n| {
            let mut sub = String::from("SELECT * FROM u");
            for _ in 0..n {
                sub = format!("SELECT *, ({sub})[0] AS x FROM u");
            }
            sub
        }),
    ];
    for make in shapes {
        let (n, q) = deepest(make);
        assert!(n >= 5, "SurrealDB accepts only depth {n} of {q:?}");
        ok(&q);
    }
    for deep in [
        format!(
            "SELECT * FROM t WHERE {}a{}",
            "(".repeat(5000),
            ")".repeat(5000)
        ),
        format!("SELECT * FROM t WHERE {}a", "!".repeat(5000)),
        format!(
            "SELECT * FROM t WHERE a IN {}1{}",
            "[".repeat(5000),
            "]".repeat(5000)
        ),
    ] {
        assert!(parse_select(&deep).is_err());
    }
}

// --- robustness ---------------------------------------------------------------

/// Garbage, truncated and randomly assembled inputs never panic, and
/// mutants of valid queries that SurrealDB accepts are either parsed or
/// refused by name (never an unexplained "unexpected" error).
#[test]
fn garbage_never_panics() {
    let garbage = [
        "",
        " ",
        ";",
        ";;",
        "SELECT",
        "SELECT *",
        "SELECT * FROM",
        "(((((",
        ")))",
        "⟨",
        "`",
        "'",
        "\"",
        "$",
        "$`",
        "d'",
        "user:",
        "SELECT * FROM t WHERE a = user:",
        "\u{0}",
        "SELECT * FROM t WHERE a = ⟨",
        "SELECT * FROM t WHERE a = 1e",
        "/*",
        "--",
        "SELECT * FROM t WHERE a = '\\u{110000}'",
        "SELECT * FROM t WHERE a = 99999999999999999999",
        "SELECT * FROM t WHERE a = d'2024-13-45'",
        "SELECT * FROM t WHERE a = r'nonsense'",
        "SELECT * FROM t WHERE a = r'user:1..2'",
        "SELECT * FROM t WHERE a[99999999999999999999]",
        "🦀🦀🦀",
        "SELECT * FROM t WHERE a = -9223372036854775809",
        "SELECT * FROM t ORDER BY",
    ];
    for g in garbage {
        let _ = parse_select(g);
    }

    // Every prefix of some valid queries.
    let valid = [
        "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author FROM thread ORDER BY title DESC LIMIT 10",
        "SELECT a.b, `x`, ⟨y⟩ AS z FROM t WHERE !(a = d'2024-01-01T00:00:00Z') AND b IN [user:⟨a b⟩, -1.5e3] START AT 2",
    ];
    for q in valid {
        for (i, _) in q.char_indices() {
            let _ = parse_select(&q[..i]);
        }
    }

    // Random token soup, deterministic.
    let atoms = [
        "SELECT",
        "*",
        ",",
        "FROM",
        "t",
        "WHERE",
        "a",
        "=",
        "1",
        "(",
        ")",
        "[",
        "]",
        "AND",
        "OR",
        "!",
        "NOT",
        "IN",
        "'s'",
        "$p",
        ".",
        "b",
        "user:1",
        "ORDER",
        "BY",
        "DESC",
        "LIMIT",
        "START",
        "-",
        "+",
        "<",
        ">",
        "IS",
        "NONE",
        "string::starts_with",
        "count",
        ";",
        "AS",
        "x",
        "0",
        "d'2024-01-01'",
        "CONTAINS",
        "->",
        "<-",
        "..",
        "{",
        "}",
        ":",
        "::",
        "GROUP",
        "FETCH",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let len = 3 + (next() % 14) as usize;
        let mut q = String::from("SELECT * FROM t WHERE ");
        for _ in 0..len {
            q.push_str(atoms[(next() % atoms.len() as u64) as usize]);
            q.push(' ');
        }
        let _ = parse_select(&q);
    }

    // Mutants of valid queries (a word deleted, duplicated, swapped or
    // inserted): many are still valid SurrealQL that reaches this parser.
    let bases = [
        "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author FROM thread WHERE a.b[0] IN [1, 'x'] ORDER BY title DESC LIMIT 10 START 2",
        "SELECT a AS b, c FROM t WHERE !x AND NOT (y = user:1) OR z CONTAINS d'2024-01-01' ORDER BY a, b ASC",
        "SELECT * FROM `odd table` WHERE ⟨odd⟩ = -1.5e3 AND a IS NOT NONE AND b NOT IN [user:⟨a b⟩, r'user:2'] AND string::starts_with(name, 'ab') LIMIT BY $n START AT 3",
        "SELECT *, (SELECT *, (SELECT * FROM u WHERE id = $parent.x)[0] AS y FROM v WHERE w = $parent.id ORDER BY k) AS z FROM t WHERE !(a.b.c == 1) && x != 2 || y <= 3",
        "select count, type from user where value > 0 and $x.y[1] = - 5 order value desc limit 0",
    ];
    const ITER: usize = 1500;
    let mut reached = 0;
    for base in bases {
        let words: Vec<&str> = base.split(' ').collect();
        for _ in 0..ITER {
            let mut w = words.clone();
            let i = (next() % w.len() as u64) as usize;
            let j = (next() % w.len() as u64) as usize;
            match next() % 4 {
                0 => {
                    w.remove(i);
                }
                1 => w.insert(i, words[j]),
                2 => w.swap(i, j),
                _ => w.insert(i, atoms[(next() % atoms.len() as u64) as usize]),
            }
            let q = w.join(" ");
            let valid = surrealdb_syn::parse(&q).is_ok();
            if valid {
                reached += 1;
            }
            // Valid SurrealQL is either parsed or refused by name: this
            // parser never fails to understand what SurrealDB accepts.
            if let (true, Err(e)) = (valid, parse_select(&q)) {
                assert!(
                    e.message.starts_with("unsupported construct"),
                    "{q:?}: {}",
                    e.message
                );
            }
        }
    }
    assert!(reached > 100, "only {reached} mutants were valid SurrealQL");
}

/// Every query SSP accepts in these tests is accepted by SurrealDB too
/// (checked by `ok`), and here explicitly for a list of supported forms.
#[test]
fn supported_queries_agree_with_surrealdb() {
    let supported = [
        "SELECT * FROM t",
        "SELECT * FROM t;",
        "SELECT id, name AS n FROM t",
        "SELECT *, (SELECT * FROM user WHERE id = $parent.author LIMIT 1)[0] AS author FROM thread ORDER BY title DESC LIMIT 10",
        "SELECT * FROM item WHERE (category = 'A' OR category = 'B') AND active = true",
        "SELECT * FROM t WHERE a IS NONE OR b IS NOT NULL",
        "SELECT * FROM t WHERE tags CONTAINS 'x' AND tags CONTAINSANY ['a', 'b'] AND tags CONTAINSALL ['c'] AND tags CONTAINSNONE ['d']",
        "SELECT * FROM t WHERE a INSIDE [1, 2] AND b IN [3] AND c NOT IN [4] AND d NOTINSIDE [5]",
        "SELECT * FROM t WHERE !a AND NOT(b)",
        "SELECT * FROM t WHERE a.b.c = 1 AND d[0] = 2",
        "SELECT * FROM t WHERE owner = $uid AND team = $ctx.team",
        "SELECT * FROM t WHERE a = 'x' AND b = \"y\" AND c = 1 AND d = 1.5 AND e = -2 AND f = 1e3 AND g = false",
        "SELECT * FROM t WHERE author = user:1 OR author = user:abc OR author = user:⟨a b⟩ OR author = user:`x`",
        "SELECT * FROM t WHERE created > d\"2024-01-01T00:00:00Z\" AND created < d'2025-01-01'",
        "SELECT * FROM t WHERE string::starts_with(name, 'ab')",
        "SELECT * FROM t ORDER BY a, b DESC",
        "SELECT * FROM t ORDER a",
        "SELECT * FROM t LIMIT BY 5 START AT 2",
        "SELECT * FROM t START 2 LIMIT 5",
        "SELECT * FROM t LIMIT $n START $s",
        "SELECT * FROM `odd table` WHERE ⟨odd field⟩ = 1",
        "select * from t where a = 1 order by a asc limit 1",
    ];
    for q in supported {
        assert!(surrealdb_syn::parse(q).is_ok(), "SurrealDB rejects {q:?}");
        ok(q);
    }
}

#[test]
fn value_omit_only_and_record_targets() {
    let s = ok("SELECT VALUE name FROM t ORDER BY age");
    assert!(s.value);
    assert_eq!(s.fields.len(), 1);
    let s = ok("SELECT * OMIT secret, meta.a FROM t");
    assert_eq!(
        s.omit,
        vec![
            vec![PathPart::Field("secret".into())],
            vec![PathPart::Field("meta".into()), PathPart::Field("a".into())],
        ]
    );
    let s = ok("SELECT * FROM ONLY user:1");
    assert!(s.only);
    assert_eq!(s.table, "user");
    assert!(matches!(s.ids, Some(Expr::Literal(Value::Thing(_)))));
    let s = ok("SELECT * FROM [user:1, user:`a;b`] WHERE x = 1");
    assert_eq!(s.table, "user");
    assert!(matches!(s.ids, Some(Expr::Array(ref a)) if a.len() == 2));
    let s = ok("SELECT * FROM $asset");
    assert_eq!(s.table, "", "known once the param is bound");
    assert!(matches!(s.ids, Some(Expr::Param { .. })));
    let s = ok("SELECT * FROM ONLY organisation WHERE slug = $s LIMIT 1");
    assert!(s.only);
    assert_eq!(s.table, "organisation");
    let s =
        ok("SELECT record::id(id) AS id, meta::tb(id) AS tb FROM t WHERE record::table(id) = 't'");
    assert!(matches!(
        s.filter,
        Some(Expr::Binary { ref lhs, .. }) if matches!(**lhs, Expr::Call { func: Function::RecordTable, .. })
    ));
    ok("SELECT *, (SELECT * FROM u WHERE k = record::id($parent.id)) AS x FROM t");
}

#[test]
fn arithmetic_in_windows_of_view_params() {
    let s = ok("SELECT * FROM t LIMIT 50 START ($page - 1) * 50");
    assert!(matches!(
        s.start,
        Some(Expr::Arith {
            op: ArithOp::Mul,
            ..
        })
    ));
    let s = ok("SELECT * FROM t LIMIT $n + 1 START 2");
    assert!(matches!(
        s.limit,
        Some(Expr::Arith {
            op: ArithOp::Add,
            ..
        })
    ));
    refused("SELECT * FROM t LIMIT $n / 2", "LIMIT expression");
    refused("SELECT * FROM t LIMIT 10 ..", "LIMIT expression");
    refused("SELECT * FROM t LIMIT $n + 'a'", "LIMIT expression");
    let s = ok("SELECT *, (SELECT * FROM u LIMIT $n + 1 START ($p - 1) * 2) AS x FROM t");
    let Field::Subquery { query, .. } = &s.fields[1] else {
        panic!("a subquery projection")
    };
    assert!(matches!(query.limit, Some(Expr::Arith { .. })));
    refused(
        "SELECT *, (SELECT * FROM u LIMIT $parent.n + 1) AS x FROM t",
        "LIMIT expression",
    );
    refused("SELECT * FROM t WHERE a + 1 = 2", "arithmetic operator `+`");
}

#[test]
fn a_linked_record_whole() {
    let s = parse_select("SELECT *, author.* AS a, editor.* FROM t").expect("parses");
    assert_eq!(
        s.fields[1..],
        [
            Field::LinkAll {
                field: "author".into(),
                alias: vec![PathPart::Field("a".into())],
            },
            Field::LinkAll {
                field: "editor".into(),
                alias: vec![PathPart::Field("editor".into())],
            },
        ]
    );
    refused("SELECT author.*.name AS n FROM t", "path after `.*`");
    refused("SELECT * FROM t WHERE author.* = 1", "`.*` (all fields)");
}

#[test]
fn traversals_from_parent_in_subqueries() {
    let q = ok("SELECT *, (SELECT id FROM $parent<-wrote<-user WHERE a = 1)[0] AS by FROM post");
    let Field::Subquery { query, index, .. } = &q.fields[1] else {
        panic!("a subquery")
    };
    assert_eq!(*index, Some(Pick::At(0)));
    assert_eq!(
        query.graph,
        vec![
            GraphStep {
                out: false,
                table: "wrote".into()
            },
            GraphStep {
                out: false,
                table: "user".into()
            }
        ]
    );
    assert!(query.table.is_empty() && query.filter.is_some());
    let q = ok("SELECT *, (SELECT * FROM $PARENT->likes) AS l FROM post");
    let Field::Subquery { query, .. } = &q.fields[1] else {
        panic!("a subquery")
    };
    assert_eq!(query.graph.len(), 1);
    assert!(query.graph[0].out);
    refused(
        "SELECT *, (SELECT * FROM $parent->?) AS l FROM post",
        "graph traversal",
    );
    refused(
        "SELECT *, (SELECT * FROM $parent->a->b->c) AS l FROM post",
        "graph traversal",
    );
    refused(
        "SELECT *, (SELECT * FROM $parent->(likes WHERE a = 1)) AS l FROM post",
        "graph traversal",
    );
    refused(
        "SELECT *, (SELECT * FROM $parent<->likes) AS l FROM post",
        "graph traversal",
    );
    // `FROM $p->likes` is lowered (see `plan::resolve`); not under `ONLY`.
    refused("SELECT * FROM ONLY $p->likes", "graph traversal");
}

#[test]
fn values_ssp_does_not_evaluate() {
    let q = ok(
        "SELECT id, count(<-likes) AS n, <-owns<-user.id AS owners, $u IN <-member<-user.id \
         AS mine, user:1 INSIDE ->follows->user AS f, (SELECT name FROM user WHERE id = \
         $parent.owner)[0].name AS by FROM post",
    );
    let computed: Vec<_> = q
        .fields
        .iter()
        .filter_map(|f| match f {
            Field::Computed { alias } => Some(alias.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(computed.len(), 5, "{:?}", q.fields);
    assert!(matches!(&q.fields[0], Field::Expr { .. }));
    // `$u = 1` and friends are ordinary expressions still.
    assert!(matches!(
        ok("SELECT $u = 1 AS x FROM t").fields[0],
        Field::Expr { .. }
    ));
    refused(
        "SELECT count(<-likes) + 1 AS n FROM post",
        "expression over a graph traversal",
    );
    refused("SELECT ->? AS any FROM post", "graph traversal");
    refused(
        "SELECT (SELECT name FROM user WHERE string::starts_with(name, 'a'))[0].name AS n FROM t",
        "path after a subquery",
    );
    refused(
        "SELECT (SELECT name FROM user LIMIT $parent.n)[0].name AS n FROM t",
        "path after a subquery",
    );
    // `record::id` of `id` cannot fail: a value like any other.
    assert!(matches!(
        ok("SELECT (SELECT record::id(id) AS k FROM $parent->r->a)[0].k AS i FROM t").fields[0],
        Field::Computed { .. }
    ));
    // A value of `SELECT VALUE` too: the rows' records are the members.
    assert!(matches!(
        ok("SELECT VALUE count(<-likes) FROM post").fields[0],
        Field::Computed { alias: None }
    ));
    refused(
        "SELECT VALUE author.* FROM post",
        "SELECT VALUE of a linked record",
    );
    refused(
        "SELECT * FROM post WHERE count(<-likes) > 1",
        "graph traversal",
    );
}

#[test]
fn uncorrelated_value_subqueries_on_the_right_of_in() {
    let q = ok("SELECT * FROM t WHERE id NOT IN (SELECT VALUE out FROM m WHERE active = true)");
    let Some(Expr::Binary {
        op: BinOp::NotInside,
        rhs,
        ..
    }) = q.filter
    else {
        panic!("{:?}", q.filter)
    };
    let Expr::Subquery(sub) = *rhs else {
        panic!("{rhs:?}")
    };
    assert_eq!(sub.table, "m");
    assert!(sub.value);
    assert_eq!(sub.filter, Some(cond("active = true")));
    ok(
        "SELECT * FROM t WHERE a ∈ (SELECT VALUE b.c FROM u) AND x INSIDE (SELECT VALUE id FROM u WHERE n IN (SELECT VALUE id FROM v))",
    );
    for (sql, construct) in [
        // Only `IN` and its kin take one; the rows are values, not records.
        (
            "SELECT * FROM t WHERE a = (SELECT VALUE id FROM u)",
            "subquery inside an expression",
        ),
        (
            "SELECT * FROM t WHERE a IN (SELECT id FROM u)",
            "subquery inside an expression",
        ),
        (
            "SELECT * FROM t WHERE a IN (SELECT VALUE string::lowercase(n) FROM u)",
            "subquery inside an expression",
        ),
        (
            "SELECT * FROM t WHERE a IN (SELECT VALUE id FROM u ORDER BY n)",
            "subquery inside an expression",
        ),
        (
            "SELECT * FROM t WHERE a IN (SELECT VALUE id FROM u LIMIT 2)",
            "subquery inside an expression",
        ),
        (
            "SELECT * FROM t WHERE a IN (SELECT VALUE id FROM $ids)",
            "subquery inside an expression",
        ),
        // The row's value would differ per row.
        (
            "SELECT *, (SELECT * FROM u WHERE id IN (SELECT VALUE id FROM v WHERE w = $parent.id)) AS s FROM t",
            "correlated subquery inside an expression",
        ),
        (
            "SELECT * FROM t WHERE a IN (SELECT VALUE id FROM u)[0]",
            "path on a subquery",
        ),
    ] {
        refused(sql, construct);
    }
}

#[test]
fn traversals_on_the_right_of_in_and_from_a_param() {
    let q = ok("SELECT * FROM asset WHERE $user IN <-owns<-user AND t:1 ∉ ->r->t");
    let Some(Expr::Binary { lhs, rhs, .. }) = q.filter else {
        panic!("{:?}", q.filter)
    };
    let steps = |e: &Expr| match e {
        Expr::Binary {
            rhs,
            op: BinOp::Inside | BinOp::NotInside,
            ..
        } => match rhs.as_ref() {
            Expr::Traversal(s) => s
                .iter()
                .map(|s| format!("{}{}", s.arrow(), s.table))
                .collect::<String>(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(steps(&lhs), "<-owns<-user");
    assert_eq!(steps(&rhs), "->r->t");
    let q = ok("SELECT * FROM $team->attends WHERE n > 1 LIMIT 2");
    assert_eq!(q.table, "");
    assert_eq!(
        q.ids,
        Some(Expr::Param {
            name: "team".into(),
            path: Vec::new()
        })
    );
    assert_eq!(q.graph.len(), 1);
    for sql in [
        "SELECT * FROM t WHERE $u IN <-a<-b.name",
        "SELECT * FROM t WHERE $u IN <-a<-b<-c",
        "SELECT * FROM t WHERE $u IN ->(a WHERE x)->b",
        "SELECT * FROM t WHERE $u = ->a->b",
    ] {
        refused(sql, "graph traversal");
    }
}

#[test]
fn string_slice_takes_integer_literal_bounds() {
    ok(
        "SELECT *, string::uppercase(string::slice(name, 0, 2)) AS i FROM t WHERE string::slice(name, -2) = 'ab'",
    );
    for sql in [
        "SELECT * FROM t WHERE string::slice(name, $s, 2) = 'a'",
        "SELECT * FROM t WHERE string::slice(name, 0, 1.5) = 'a'",
        "SELECT * FROM t WHERE string::slice(name, 0, n) = 'a'",
    ] {
        refused(sql, "function string::slice");
    }
}

// --- time windows ---------------------------------------------------------

#[test]
fn time_now_is_read_as_a_shifted_clock_in_where_comparisons() {
    let now = |offset_ns: i64| Expr::Now { offset_ns };
    let cmp = bin;
    assert_eq!(
        cond("expires > time::now()"),
        cmp(BinOp::Gt, field(&["expires"]), now(0))
    );
    assert_eq!(
        cond("ping > time::now() - 35s"),
        cmp(BinOp::Gt, field(&["ping"]), now(-35_000_000_000))
    );
    assert_eq!(
        cond("time::now() + 1d <= created"),
        cmp(BinOp::Le, now(86_400_000_000_000), field(&["created"]))
    );
    // In a subquery projection's WHERE too (`$parent<-playing` in the corpus).
    let s = ok("SELECT *, (SELECT * FROM p WHERE at >= TIME::NOW() - 5m) AS recent FROM t");
    let Field::Subquery { query, .. } = &s.fields[1] else {
        panic!("a subquery: {s:?}");
    };
    assert_eq!(
        query.filter,
        Some(cmp(BinOp::Ge, field(&["at"]), now(-300_000_000_000)))
    );
}

#[test]
fn time_now_elsewhere_is_refused() {
    // Equality holds for one nanosecond; SSP follows order comparisons.
    refused(
        "SELECT * FROM t WHERE at = time::now()",
        "function time::now",
    );
    // Arithmetic on the record's side, or a clock on both.
    refused(
        "SELECT * FROM t WHERE at + 1d > time::now()",
        "arithmetic operator `+`",
    );
    refused(
        "SELECT * FROM t WHERE time::now() - 1s < time::now()",
        "function time::now",
    );
    // A value that changes with nothing to follow.
    refused(
        "SELECT *, at > time::now() AS live FROM t",
        "`time::now()` outside `WHERE`",
    );
    // Computed once, when the view registers.
    refused(
        "SELECT * FROM t WHERE id IN (SELECT VALUE t FROM s WHERE at > time::now())",
        "`time::now()` in a subquery inside an expression",
    );
}

// --- count() GROUP ALL ------------------------------------------------------

#[test]
fn count_group_all_selects_the_records_it_counts() {
    let s = ok("SELECT count() FROM event WHERE organiser = $org GROUP ALL");
    assert_eq!(s.table, "event");
    assert_eq!(
        s.fields,
        vec![Field::Computed {
            alias: Some(vec![PathPart::Field("count".into())])
        }]
    );
    assert_eq!(
        s.filter,
        Some(bin(
            BinOp::Eq,
            field(&["organiser"]),
            Expr::Param {
                name: "org".into(),
                path: vec![]
            }
        ))
    );
    // `count(x)` counts the rows where `x` is truthy: they are the members.
    let s = ok("SELECT count(tags CONTAINS 'rust') AS n FROM user WHERE active GROUP ALL");
    assert_eq!(
        s.fields,
        vec![Field::Computed {
            alias: Some(vec![PathPart::Field("n".into())])
        }]
    );
    assert_eq!(
        s.filter,
        Some(bin(
            BinOp::And,
            field(&["active"]),
            bin(
                BinOp::Contains,
                field(&["tags"]),
                Expr::Literal(Value::str("rust"))
            )
        ))
    );
    // The edges of one record: each counted once.
    let s = ok("SELECT count() FROM $team->attends GROUP ALL");
    assert!(s.ids.is_some() && !s.graph.is_empty(), "{s:?}");
}

#[test]
fn other_groupings_are_refused() {
    // A list may name a record twice, which SurrealDB counts twice.
    refused(
        "SELECT count() FROM [user:1, user:1] GROUP ALL",
        "GROUP ALL",
    );
    refused("SELECT count() FROM $ids GROUP ALL", "GROUP ALL");
    // SurrealDB 3.3.5 ignores `LIMIT 0` on it, and `START 1` drops the row.
    refused(
        "SELECT count() FROM user GROUP ALL LIMIT 1",
        "function count",
    );
    refused("SELECT count(), name FROM user GROUP ALL", "function count");
    refused(
        "SELECT math::sum(score) FROM user GROUP ALL",
        "function math::sum",
    );
    refused(
        "SELECT count(), name FROM user GROUP BY name",
        "function count",
    );
    // Only the view's own query.
    refused(
        "SELECT *, (SELECT count() FROM like WHERE post = $parent.id GROUP ALL) AS n FROM post",
        "function count",
    );
}

#[test]
fn counts_and_values_of_subqueries_are_values_of_the_row() {
    // MercuryCore's home page: players online, a time window inside.
    let s = ok(
        "SELECT id, count(SELECT 1 FROM $parent<-playing WHERE valid AND ping > \
                time::now() - 35s) AS players FROM place",
    );
    assert_eq!(
        s.fields[1],
        Field::Computed {
            alias: Some(vec![PathPart::Field("players".into())])
        }
    );
    let s = ok(
        "SELECT *, (SELECT VALUE record::id(id) FROM $parent->wearing->asset) AS wearing \
                FROM user",
    );
    assert!(matches!(s.fields[1], Field::Computed { .. }), "{s:?}");
    // What could fail the query on some data stays out.
    refused(
        "SELECT *, count(SELECT * FROM u LIMIT $parent.lim) AS n FROM t",
        "subquery value",
    );
    refused(
        "SELECT *, (SELECT VALUE string::lowercase(name) FROM u) AS n FROM t",
        "SELECT VALUE in a subquery",
    );
    refused(
        "SELECT *, count(SELECT * FROM u FETCH owner) AS n FROM t",
        "FETCH in a counted subquery",
    );
}

#[test]
fn from_a_path_or_nothing_is_the_path() {
    // `?? []`: NONE, NULL and `[]` give no row either way.
    let plain = ok("SELECT * FROM $event.tournament_path");
    assert_eq!(ok("SELECT * FROM $event.tournament_path ?? []"), plain);
    refused(
        "SELECT * FROM $event.tournament_path ?? [t:1]",
        "expression in FROM",
    );
}

/// `$this` is the record being evaluated, in a subquery its own row
/// (measured on 3.3.5): its paths are the row's fields.
#[test]
fn this_is_the_row() {
    assert_eq!(
        ok(
            "SELECT * FROM t WHERE !$this.private AND a IN (SELECT VALUE id FROM u WHERE o = $this.id)"
        ),
        ok("SELECT * FROM t WHERE !private AND a IN (SELECT VALUE id FROM u WHERE o = id)"),
    );
    assert_eq!(
        ok("SELECT *, $this.a.b AS x FROM t WHERE $u IN $this<-owns<-user"),
        ok("SELECT *, a.b AS x FROM t WHERE $u IN <-owns<-user"),
    );
    // In a subquery's FROM, the record of the query around it.
    assert_eq!(
        ok("SELECT *, (SELECT VALUE id FROM $this->w->a) AS x FROM t"),
        ok("SELECT *, (SELECT VALUE id FROM $parent->w->a) AS x FROM t"),
    );
    refused(
        "SELECT * FROM t WHERE $this = 1",
        "`$this` (the whole record)",
    );
    refused(
        "SELECT * FROM t WHERE $this[0] = 1",
        "`$this` (the whole record)",
    );
}

fn defs(texts: &[&str]) -> Definitions {
    texts
        .iter()
        .map(|t| {
            let name = t.split("fn::").nth(1).unwrap().split('(').next().unwrap();
            (name.to_owned(), t.to_string())
        })
        .collect()
}

/// A user function is its body with its arguments in place, as SurrealDB
/// evaluates it on the caller's row.
#[test]
fn user_functions_are_inlined() {
    let f = defs(&[
        "DEFINE FUNCTION fn::search($q: string, $m: string) { RETURN string::contains(string::lowercase($m), string::lowercase($q)); }",
        "DEFINE FUNCTION fn::visible($t: any) { RETURN !$t.private AND !$t.deleted; }",
        "DEFINE FUNCTION fn::current($c: any) { RETURN array::last($c).text }",
        "DEFINE FUNCTION fn::owns($t: object, $u: any) { RETURN $u IN $t<-owns<-user; }",
        "DEFINE FUNCTION fn::outer($x: any) { RETURN fn::visible($x) AND $flag; }",
    ]);
    let with = |sql: &str| parse_select_with(sql, &f).expect(sql);
    assert_eq!(
        with("SELECT * FROM t WHERE fn::search($query, name)"),
        ok(
            "SELECT * FROM t WHERE string::contains(string::lowercase(name), string::lowercase($query))"
        ),
    );
    assert_eq!(
        with("SELECT * FROM t WHERE fn::visible($this)"),
        ok("SELECT * FROM t WHERE !private AND !deleted"),
    );
    assert_eq!(
        with("SELECT * FROM t WHERE fn::outer($this.inner)"),
        ok("SELECT * FROM t WHERE !inner.private AND !inner.deleted AND $flag"),
    );
    assert_eq!(
        with("SELECT * FROM t WHERE fn::owns($this, $me)"),
        ok("SELECT * FROM t WHERE $me IN <-owns<-user"),
    );
    let s = with("SELECT id, fn::current($this.content) AS c FROM t");
    let Field::Expr {
        expr: Expr::Get { of, path },
        ..
    } = &s.fields[1]
    else {
        panic!("a path on array::last: {:?}", s.fields[1])
    };
    assert!(matches!(
        **of,
        Expr::Call {
            func: Function::ArrayLast,
            ..
        }
    ));
    assert_eq!(path, &vec![PathPart::Field("text".into())]);
}

#[test]
fn user_functions_that_would_change_meaning_are_refused() {
    let f = defs(&[
        "DEFINE FUNCTION fn::sub($x: any) { RETURN $x IN (SELECT VALUE id FROM u WHERE o = $x); }",
        "DEFINE FUNCTION fn::int($x: int) { RETURN $x > 1; }",
        "DEFINE FUNCTION fn::ret($x: any) -> bool { RETURN $x; }",
        "DEFINE FUNCTION fn::two($x: any) { LET $y = $x; RETURN $y; }",
        "DEFINE FUNCTION fn::par($x: any) { RETURN $x = $parent.id; }",
        "DEFINE FUNCTION fn::me($x: any) { RETURN fn::me($x); }",
    ]);
    let refused_with = |sql: &str, why: &str| {
        let e = parse_select_with(sql, &f).expect_err(sql);
        assert!(e.message.contains(why), "{sql}: {}", e.message);
    };
    refused_with("SELECT * FROM t WHERE fn::sub(a)", "inside a subquery");
    refused_with("SELECT * FROM t WHERE fn::int(a)", "coerced to `int`");
    refused_with("SELECT * FROM t WHERE fn::ret(a)", "coerces its result");
    refused_with("SELECT * FROM t WHERE fn::two(a)", "one expression");
    refused_with("SELECT * FROM t WHERE fn::par(a)", "`$parent`");
    refused_with("SELECT * FROM t WHERE fn::me(a)", "calls per query at most");
    refused_with("SELECT * FROM t WHERE fn::nope(a)", "defines no `fn::nope`");
    refused_with("SELECT * FROM t WHERE fn::sub(1, 2)", "takes 1 arguments");
}

/// `x < -1`: SurrealDB's parser reads `< -` as the start of a traversal
/// and leaves the left side wrapped in a path of nothing but itself; it
/// lowers as `x < (-1)` does (SSP refused these before).
#[test]
fn a_comparison_with_a_negative_number_reads_its_left_side_whole() {
    let f = defs(&["DEFINE FUNCTION fn::linkname($o: any) { RETURN array::first([$o]).name; }"]);
    for (sql, same) in [
        (
            "SELECT * FROM t WHERE record::id(id) < -1",
            "SELECT * FROM t WHERE record::id(id) < (-1)",
        ),
        (
            "SELECT * FROM t WHERE fn::linkname(link) < -0.5",
            "SELECT * FROM t WHERE fn::linkname(link) < (-0.5)",
        ),
        (
            "SELECT * FROM t WHERE (n) < -1",
            "SELECT * FROM t WHERE n < (-1)",
        ),
        (
            "SELECT *, (SELECT * FROM t WHERE fn::linkname(link) < -1) AS s FROM t",
            "SELECT *, (SELECT * FROM t WHERE fn::linkname(link) < (-1)) AS s FROM t",
        ),
    ] {
        assert_eq!(
            parse_select_with(sql, &f).expect(sql),
            parse_select_with(same, &f).expect(same),
            "{sql}"
        );
    }
}
