//! Running a case against the engine and SurrealDB in lock step.

use super::*;

// ===========================================================================
// Running a case
// ===========================================================================

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The engine's result set differs from SurrealDB's.
    Mismatch,
    /// The engine refused a query of the supported subset.
    Rejected,
    /// The deltas the engine emitted do not add up to its result set.
    Delta,
    /// SurrealDB failed to run something the generator made (a test bug).
    Surreal,
}

#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) kind: Kind,
    pub(crate) step: usize,
    pub(crate) view: Option<usize>,
    pub(crate) detail: String,
    pub(crate) surreal: BTreeSet<RecordId>,
    pub(crate) engine: BTreeSet<RecordId>,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) cases: u64,
    pub(crate) steps: u64,
    pub(crate) writes: u64,
    pub(crate) checks: u64,
    pub(crate) nonempty: u64,
    pub(crate) with_sub_records: u64,
    pub(crate) windowed: u64,
    pub(crate) sub_views: u64,
    pub(crate) sub_views_nonempty: u64,
    /// Per construct of the query's text: view checks, and non-empty ones.
    pub(crate) constructs: BTreeMap<&'static str, (u64, u64)>,
    /// Views the engine sent to the re-query tier after a batch.
    pub(crate) moved: u64,
    /// Edges that moving the clock created or deleted (time windows).
    pub(crate) clock_edges: u64,
}

/// The constructs a view's query uses, of those `constructs` counts.
pub(crate) fn constructs(def: &ViewDef) -> Vec<&'static str> {
    let sql = def.sql();
    let q = &def.q;
    let mut out = Vec::new();
    match &q.from {
        Source::Ids { param: Some(_), .. } => out.push("FROM $ids"),
        Source::Ids { list: true, .. } => out.push("FROM [ids]"),
        Source::Ids { .. } => out.push("FROM id"),
        Source::ParamPath(p) => {
            out.push("FROM $p.link (a field of a record)");
            if p.ends_with(" ?? []") {
                out.push("FROM $p.link ?? []");
            }
        }
        Source::Table | Source::Graph(_) | Source::ParentField(_) => {}
    }
    if def.parenthesised() {
        out.push("(SELECT ...) as the whole query");
    }
    if sql.contains("time::now()") {
        out.push("time::now() window");
    }
    if q.count.is_some() {
        out.push("count() GROUP ALL");
    }
    if q.key_fns.iter().any(|k| {
        k.strip_suffix(".*").is_some_and(|f| {
            q.order
                .iter()
                .any(|(o, _)| o == f || o.starts_with(&format!("{f}.")))
        })
    }) {
        out.push("ORDER BY link.x with link.* shown");
    }
    if q.key_fns.iter().any(|k| {
        k.strip_suffix(".*").is_some_and(|f| {
            q.key_fns
                .iter()
                .any(|o| o.starts_with(&format!("{f}.")) && !o.ends_with(".*"))
        })
    }) {
        out.push("link.* and link.x shown");
    }
    fn sub_values(q: &Query) -> bool {
        q.computed
            .iter()
            .any(|c| c.contains("count(SELECT") || c.contains("(SELECT VALUE"))
            || q.subs.iter().any(|s| sub_values(&s.q))
    }
    if sub_values(q) {
        out.push("count(SELECT ...), (SELECT VALUE ...) as values");
    }
    fn from_field(q: &Query) -> bool {
        q.subs
            .iter()
            .any(|s| matches!(s.q.from, Source::ParentField(_)) || from_field(&s.q))
    }
    if from_field(q) {
        out.push("(SELECT ... FROM $parent.link)");
    }
    fn renames(q: &Query) -> bool {
        q.key_fns
            .iter()
            .any(|k| !k.contains("(id)") && !k.contains(".*"))
            || q.subs.iter().any(|s| renames(&s.q))
    }
    let renamed = renames(q);
    let arith = [&q.limit, &q.start]
        .iter()
        .any(|e| matches!(e, Some(Ex::Arith(..))));
    let through_links = reads_through_links(def);
    fn fetches_paths(q: &Query) -> bool {
        q.key_fns
            .iter()
            .any(|k| q.fetch.iter().any(|f| k.starts_with(&format!("{f}."))))
            || q.subs.iter().any(|s| fetches_paths(&s.q))
    }
    let traverses = |two: bool| {
        let steps = |g: &str| g.matches("->").count() + g.matches("<-").count();
        q.subs
            .iter()
            .chain(q.subs.iter().flat_map(|s| s.q.subs.iter()))
            .any(|s| {
                matches!(&s.q.from, Source::Graph(g)
                if (steps(g) == 2) == two && (two || s.q.table == "r"))
            })
    };
    fn value_sub(e: &Ex) -> bool {
        match e {
            Ex::ValueSub(..) => true,
            Ex::Not(e) | Ex::NotFn(e) | Ex::KeyFn(_, e) | Ex::Slice(e, ..) => value_sub(e),
            Ex::Bin(_, l, r, _) | Ex::StartsWith(l, r) | Ex::Arith(_, l, r) => {
                value_sub(l) || value_sub(r)
            }
            Ex::Call(_, args) => args.iter().any(value_sub),
            Ex::Lit(_) | Ex::Field(_) | Ex::Param(_) | Ex::Graph(_) | Ex::Now(_) => false,
        }
    }
    fn value_subs(q: &Query) -> bool {
        q.cond.as_ref().is_some_and(value_sub) || q.subs.iter().any(|s| value_subs(&s.q))
    }
    fn graph_in(e: &Ex) -> bool {
        match e {
            Ex::Graph(_) => true,
            Ex::Not(e)
            | Ex::NotFn(e)
            | Ex::KeyFn(_, e)
            | Ex::Slice(e, ..)
            | Ex::ValueSub(_, _, Some(e)) => graph_in(e),
            Ex::Bin(_, l, r, _) | Ex::StartsWith(l, r) | Ex::Arith(_, l, r) => {
                graph_in(l) || graph_in(r)
            }
            Ex::Call(_, args) => args.iter().any(graph_in),
            Ex::Lit(_) | Ex::Field(_) | Ex::Param(_) | Ex::ValueSub(_, _, None) | Ex::Now(_) => {
                false
            }
        }
    }
    fn graphs_in(q: &Query) -> bool {
        q.cond.as_ref().is_some_and(graph_in) || q.subs.iter().any(|s| graphs_in(&s.q))
    }
    /// Whether `q` or a subquery has an expression `pred` holds for.
    fn any_ex(q: &Query, pred: &dyn Fn(&Ex) -> bool) -> bool {
        fn walk(e: &Ex, pred: &dyn Fn(&Ex) -> bool) -> bool {
            pred(e)
                || match e {
                    Ex::Not(e) | Ex::NotFn(e) | Ex::KeyFn(_, e) | Ex::Slice(e, ..) => walk(e, pred),
                    Ex::ValueSub(_, _, Some(e)) => walk(e, pred),
                    Ex::Bin(_, l, r, _) | Ex::StartsWith(l, r) | Ex::Arith(_, l, r) => {
                        walk(l, pred) || walk(r, pred)
                    }
                    Ex::Call(_, args) => args.iter().any(|a| walk(a, pred)),
                    _ => false,
                }
        }
        q.cond.as_ref().is_some_and(|c| walk(c, pred)) || q.subs.iter().any(|s| any_ex(&s.q, pred))
    }
    fn computes(q: &Query) -> bool {
        !q.computed.is_empty() || q.subs.iter().any(|s| computes(&s.q))
    }
    let checks: [(&'static str, bool); 27] = [
        ("(SELECT ...)[$]", sql.contains(")[$]")),
        ("rows without id", q.hides_id()),
        ("SELECT VALUE <expr>", q.value_expr.is_some()),
        (
            "FETCH in rows without id",
            q.hide_id && (!q.fetch.is_empty() || !q.fetch_keys.is_empty()),
        ),
        (
            "fn:: (a user function, inlined)",
            any_ex(q, &|e| matches!(e, Ex::Call(..))),
        ),
        (
            "$this.path",
            any_ex(q, &|e| matches!(e, Ex::Field(f) if f.starts_with("$this"))),
        ),
        (
            "FROM $this->r... in a subquery",
            q.subs
                .iter()
                .chain(q.subs.iter().flat_map(|s| s.q.subs.iter()))
                .any(|s| matches!(&s.q.from, Source::Graph(g) if g.starts_with("$this"))),
        ),
        (
            "a computed value (traversal, count, subquery path)",
            computes(q),
        ),
        ("x IN (SELECT VALUE ...)", value_subs(q)),
        ("$x IN ->r->t (from the row)", graphs_in(q)),
        (
            "FROM $f->r",
            matches!(&q.from, Source::Graph(g) if !g.starts_with("$parent") && !g.starts_with("$this")),
        ),
        ("$parent->r->t (the records of edges)", traverses(true)),
        ("$parent->r (edges)", traverses(false)),
        (
            "FROM r, $parent->t (an edge's end)",
            q.table == "r" && !q.subs.is_empty(),
        ),
        ("a path through record links", through_links),
        ("FETCH of a field shown by its paths", fetches_paths(q)),
        (
            "FETCH a.b",
            q.fetch.iter().any(|f| f.contains('.'))
                || q.subs
                    .iter()
                    .any(|s| s.q.fetch.iter().any(|f| f.contains('.'))),
        ),
        (
            "a $param path through a record",
            param_path_through_record(&sql),
        ),
        (
            "FETCH",
            !q.fetch.is_empty() || q.subs.iter().any(|s| !s.q.fetch.is_empty()),
        ),
        (
            "link.*",
            !q.fetch_keys.is_empty() || q.subs.iter().any(|s| !s.q.fetch_keys.is_empty()),
        ),
        ("LIMIT/START arithmetic", arith),
        ("ORDER BY a renaming alias", renamed),
        ("ONLY", q.only),
        ("SELECT VALUE", q.value),
        ("OMIT", sql.contains(" OMIT ")),
        ("string::slice", sql.contains("string::slice(")),
        (
            "record::/meta:: fns",
            sql.contains("record::") || sql.contains("meta::"),
        ),
    ];
    out.extend(checks.iter().filter(|c| c.1).map(|c| c.0));
    out
}

/// Whether `sql` reads a path of a generated value param (`$p3.friend.name`:
/// the generator only gives such a param a record id).
fn param_path_through_record(sql: &str) -> bool {
    sql.match_indices("$p").any(|(i, _)| {
        let rest = &sql[i + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with('.')
    })
}

/// Whether the view's text names a path through record links (or a dotted
/// path that could be one).
pub(crate) fn reads_through_links(def: &ViewDef) -> bool {
    let sql = def.sql();
    super::generator::T_LINK_PATHS
        .iter()
        .chain(super::generator::U_LINK_PATHS)
        .chain(&["obj.b", "obj.c.d"])
        .any(|p| sql.contains(p))
}

pub(crate) struct Runner {
    pub(crate) db: Surreal<Any>,
}

pub(crate) fn vars(pairs: Vec<(&str, sdb::Value)>) -> sdb::Value {
    let mut o = sdb::Object::new();
    for (k, v) in pairs {
        o.insert(k.to_string(), v);
    }
    sdb::Value::Object(o)
}

pub(crate) fn fail(kind: Kind, step: usize, view: Option<usize>, detail: String) -> Failure {
    Failure {
        kind,
        step,
        view,
        detail,
        surreal: BTreeSet::new(),
        engine: BTreeSet::new(),
    }
}

/// The ids of a SurrealDB result: each row's id, plus recursively the rows
/// inside its subquery fields.
/// `nested` counts the records found inside subquery fields (`depth` > 0).
pub(crate) fn flatten(
    rows: &sdb::Value,
    q: &Query,
    out: &mut BTreeSet<RecordId>,
    depth: usize,
    nested: &mut usize,
) -> Result<(), String> {
    let sdb::Value::Array(rows) = rows else {
        return Err(format!(
            "expected an array of rows, got {}",
            sdb::ToSql::to_sql(rows)
        ));
    };
    for row in rows.iter() {
        flatten_row(row, q, out, depth, nested)?;
    }
    Ok(())
}

/// The ids of a whole answer: [`flatten`], and for `FROM ONLY` one row or
/// NONE.
pub(crate) fn flatten_answer(
    v: &sdb::Value,
    q: &Query,
    out: &mut BTreeSet<RecordId>,
    nested: &mut usize,
) -> Result<(), String> {
    match v {
        sdb::Value::None if q.only => Ok(()),
        sdb::Value::Object(_) | sdb::Value::RecordId(_) if q.only => {
            flatten_row(v, q, out, 0, nested)
        }
        // `FROM ONLY $f.owner` where the field holds a number: that value,
        // which is no record.
        _ if q.only && matches!(q.from, Source::ParamPath(_)) => Ok(()),
        _ => flatten(v, q, out, 0, nested),
    }
}

pub(crate) fn flatten_row(
    row: &sdb::Value,
    q: &Query,
    out: &mut BTreeSet<RecordId>,
    depth: usize,
    nested: &mut usize,
) -> Result<(), String> {
    // `SELECT * FROM $parent.link` where the field holds no record: a row
    // of that value, which is no member.
    // The same for `FROM $f.link` where the field holds a scalar (a record
    // id is a record: `SELECT VALUE id` rows are ids).
    if matches!(q.from, Source::ParentField(_) | Source::ParamPath(_))
        && !matches!(row, sdb::Value::RecordId(_))
        && !matches!(row, sdb::Value::Object(o) if matches!(o.get("id"), Some(sdb::Value::RecordId(_))))
    {
        return Ok(());
    }
    let o = match row {
        sdb::Value::Object(o) => o,
        // `SELECT VALUE id`
        sdb::Value::RecordId(r) if q.value => {
            out.insert(record_id_from_surreal(r).expect("a record id"));
            return Ok(());
        }
        _ => {
            return Err(format!(
                "expected a row object, got {}",
                sdb::ToSql::to_sql(row)
            ));
        }
    };
    match o.get("id") {
        Some(sdb::Value::RecordId(r)) => {
            out.insert(record_id_from_surreal(r).expect("a record id"));
            if depth > 0 {
                *nested += 1;
            }
        }
        other => return Err(format!("row without a record id: {other:?}")),
    }
    // Fetched links: the records SurrealDB put in the row, and for
    // `FETCH link.friend`, those it put in the records fetched there.
    fn fetched(v: &sdb::Value, rest: &[&str], out: &mut BTreeSet<RecordId>, nested: &mut usize) {
        let one = |v: &sdb::Value, out: &mut BTreeSet<RecordId>, nested: &mut usize| {
            if let sdb::Value::Object(x) = v
                && let Some(sdb::Value::RecordId(r)) = x.get("id")
            {
                out.insert(record_id_from_surreal(r).expect("a record id"));
                *nested += 1;
                if let Some((next, rest)) = rest.split_first()
                    && let Some(v) = x.get(*next)
                {
                    fetched(v, rest, out, nested);
                }
            }
        };
        match v {
            sdb::Value::Array(items) => {
                for v in items.iter() {
                    one(v, out, nested);
                }
            }
            v => one(v, out, nested),
        }
    }
    for f in q.fetch.iter().chain(&q.fetch_keys) {
        let parts: Vec<&str> = f.split('.').collect();
        if let Some(v) = o.get(parts[0]) {
            fetched(v, &parts[1..], out, nested);
        }
    }
    for s in written_subs(q) {
        match o.get(&s.alias) {
            None | Some(sdb::Value::None) | Some(sdb::Value::Null) => {}
            Some(v @ sdb::Value::Object(_)) => flatten_row(v, &s.q, out, depth + 1, nested)?,
            Some(v @ sdb::Value::Array(_)) => flatten(v, &s.q, out, depth + 1, nested)?,
            // `(SELECT * FROM $parent.link)[0]` of a value that is no record.
            Some(_) if matches!(s.q.from, Source::ParentField(_)) => {}
            Some(other) => {
                return Err(format!(
                    "subquery field `{}` holds {}",
                    s.alias,
                    sdb::ToSql::to_sql(other)
                ));
            }
        }
    }
    Ok(())
}

/// The subqueries whose rows a query's output holds: SurrealDB writes the
/// fields of a row in order, so a later field with the same name (another
/// subquery, or a plain field) replaces an earlier subquery's rows.
pub(crate) fn written_subs(q: &Query) -> Vec<&Sub> {
    let plain_later = |alias: &str| {
        !q.star
            && q.fields_last
            && (q.fields.iter().any(|f| f == alias) || q.order.iter().any(|(f, _)| f == alias))
    };
    q.subs
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            !q.subs[i + 1..].iter().any(|t| t.alias == s.alias)
                && !plain_later(&s.alias)
                && !q.omit.contains(&s.alias)
                // `link.*` under the subquery's alias writes over it.
                && !q.fetch_keys.contains(&s.alias)
        })
        .map(|(_, s)| s)
        .collect()
}

/// The tables of a case: `t` and `u`, and `r`, whose records are edges
/// between them (`TYPE RELATION`); then [`FUNCTIONS`] (see [`schema`]).
const TABLES: &str =
    "DEFINE TABLE t SCHEMALESS; DEFINE TABLE u SCHEMALESS; DEFINE TABLE r TYPE RELATION;";

/// The user functions views call (`Ex::Call`), which SSP inlines.
pub(crate) const FUNCTIONS: &[&str] = &[
    // `fn::eq(score, 3)`, `fn::ne($this.name, $p1)`: a comparison, and one
    // through a nested call.
    "DEFINE FUNCTION OVERWRITE fn::eq($a: any, $b: any) { RETURN $a = $b; };",
    "DEFINE FUNCTION OVERWRITE fn::ne($a: any, $b: any) { RETURN !fn::eq($a, $b); };",
    // `fn::unflagged($this)`: the row itself as an argument.
    "DEFINE FUNCTION OVERWRITE fn::unflagged($r: object) { RETURN !$r.flag; };",
    // A path on a function's value (never failing: of an array literal).
    "DEFINE FUNCTION OVERWRITE fn::dig($o: any) { RETURN array::first([$o]).b; };",
    "DEFINE FUNCTION OVERWRITE fn::lastc($o: any) { RETURN array::last([1, $o]).c.d; };",
    // ... and through a record link (`link.name`).
    "DEFINE FUNCTION OVERWRITE fn::linkname($o: any) { RETURN array::first([$o]).name; };",
    // Typed params (`title` is always a string).
    "DEFINE FUNCTION OVERWRITE fn::starts($s: string, $p: string) { RETURN string::starts_with($s, $p); };",
    "DEFINE FUNCTION OVERWRITE fn::not_($x: any) { RETURN !$x; };",
];

/// The schema of a case: its tables and functions.
pub(crate) fn schema() -> String {
    format!("{TABLES} {}", FUNCTIONS.join(" "))
}

/// [`FUNCTIONS`], as the engine is given them (SSP reads them with `INFO
/// FOR DB`).
pub(crate) fn functions() -> ssp::engine::parser::Definitions {
    FUNCTIONS
        .iter()
        .map(|text| {
            let rest = text.split("fn::").nth(1).unwrap_or_default();
            let name = rest.split('(').next().unwrap_or_default().to_owned();
            (name, (*text).to_owned())
        })
        .collect()
}

/// How a write with content `c` is made, as an app makes it, and the
/// content to bind as `$c`; the SurrealQL then reads the record back
/// (`SELECT * FROM ONLY $id` is its second result). An edge is made with
/// `INSERT RELATION` (`UPSERT` cannot make one), and updated whole, which
/// keeps its `in` and `out`.
pub(crate) fn upsert(w: &Write, c: &Object) -> (&'static str, sdb::Value) {
    if w.id.table.as_str() == "r" {
        let mut c = c.clone();
        c.insert("id".into(), Value::thing(w.id.clone()));
        (
            "IF record::exists($id) { UPDATE $id CONTENT $c RETURN NONE; } \
             ELSE { INSERT RELATION INTO r $c RETURN NONE; }; SELECT * FROM ONLY $id",
            to_surreal(&Value::Object(c)),
        )
    } else {
        (
            "UPSERT $id CONTENT $c RETURN NONE; SELECT * FROM ONLY $id",
            to_surreal(&Value::Object(c.clone())),
        )
    }
}

pub(crate) fn meta(def: &ViewDef) -> ViewMeta {
    ViewMeta {
        id: def.id.as_str().into(),
        client_id: "diff".into(),
        sql: def.sql(),
        params: def.engine_params(),
        ttl: "1h".into(),
        last_active_at: Utc::now(),
        owner: None,
    }
}

/// A view's edges as SurrealDB would hold them: record -> edge version.
pub(crate) type Edges = BTreeMap<RecordId, u64>;

/// Applies one view's delta to the edges it implies, checking that it is
/// consistent with them.
pub(crate) fn apply_delta(edges: &mut Edges, d: &ViewDelta) -> Result<(), String> {
    for r in &d.deleted {
        if edges.remove(r).is_none() {
            return Err(format!("`deleted` for {r}, which has no edge"));
        }
    }
    for (r, v) in &d.created {
        if edges.insert(r.clone(), *v).is_some() {
            return Err(format!("`created` for {r}, which already has an edge"));
        }
    }
    for (r, v) in &d.updated {
        match edges.get_mut(r) {
            Some(old) if *old < *v => *old = *v,
            Some(old) => return Err(format!("`updated` for {r} from version {old} to {v}")),
            None => return Err(format!("`updated` for {r}, which has no edge")),
        }
    }
    Ok(())
}

pub(crate) fn edge_text(edges: &Edges) -> String {
    let v: Vec<String> = edges.iter().map(|(r, v)| format!("{r}@{v}")).collect();
    v.join(", ")
}

impl Runner {
    pub(crate) async fn reset(&self) -> Result<(), String> {
        let mut r = self
            .db
            .query(format!(
                "REMOVE TABLE IF EXISTS t; REMOVE TABLE IF EXISTS u; REMOVE TABLE IF EXISTS r; {}",
                schema()
            ))
            .await
            .map_err(|e| e.to_string())?;
        let errors = r.take_errors();
        if !errors.is_empty() {
            return Err(format!("{errors:?}"));
        }
        Ok(())
    }

    /// Writes one change to SurrealDB and returns it as the change worker
    /// would see it: the stored record, read back.
    pub(crate) async fn write(&self, w: &Write) -> Result<Change, String> {
        let id = sdb::Value::RecordId(record_id_to_surreal(&w.id));
        match &w.content {
            None => {
                let mut r = self
                    .db
                    .query("DELETE $id")
                    .bind(vars(vec![("id", id)]))
                    .await
                    .map_err(|e| e.to_string())?;
                r.take::<sdb::Value>(0).map_err(|e| e.to_string())?;
                Ok(Change {
                    id: w.id.clone(),
                    content: None,
                })
            }
            Some(c) => {
                let (sql, content) = upsert(w, c);
                let mut r = self
                    .db
                    .query(sql)
                    .bind(vars(vec![("id", id), ("c", content)]))
                    .await
                    .map_err(|e| e.to_string())?;
                r.take::<sdb::Value>(0).map_err(|e| e.to_string())?;
                match r.take::<sdb::Value>(1).map_err(|e| e.to_string())? {
                    sdb::Value::Object(o) => Ok(Change {
                        id: w.id.clone(),
                        content: Some(object_from_surreal(o)),
                    }),
                    other => Err(format!(
                        "read back {}: {}",
                        w.id,
                        sdb::ToSql::to_sql(&other)
                    )),
                }
            }
        }
    }

    /// The ids of the edges SurrealDB holds.
    pub(crate) async fn edge_ids(&self) -> Result<BTreeSet<RecordId>, String> {
        let mut r = self
            .db
            .query("SELECT VALUE id FROM r")
            .await
            .map_err(|e| e.to_string())?;
        let v: sdb::Value = r.take(0).map_err(|e| e.to_string())?;
        let sdb::Value::Array(items) = v else {
            return Err(format!("ids: {}", sdb::ToSql::to_sql(&v)));
        };
        Ok(items
            .iter()
            .filter_map(|i| match i {
                sdb::Value::RecordId(r) => record_id_from_surreal(r),
                _ => None,
            })
            .collect())
    }

    /// The view's result in SurrealDB, and how many records subqueries brought.
    pub(crate) async fn surreal_view(
        &self,
        def: &ViewDef,
        clock: DateTime<Utc>,
    ) -> Result<(BTreeSet<RecordId>, usize), String> {
        // SurrealDB's `time::now()` is the wall clock: the runner's is a
        // param (`$ssp_now - 1d` is what `time::now() - 1d` computes).
        let sdb::Value::Object(mut params) = def.surreal_params() else {
            return Err("params are an object".into());
        };
        params.insert("ssp_now".to_owned(), to_surreal(&Value::datetime(clock)));
        let run = |sql: String| {
            let params = sdb::Value::Object(params.clone());
            async move {
                let sql = sql.replace("time::now()", "$ssp_now");
                let mut r = self
                    .db
                    .query(sql.as_str())
                    .bind(params)
                    .await
                    .map_err(|e| e.to_string())?;
                r.take::<sdb::Value>(0).map_err(|e| e.to_string())
            }
        };
        let v = run(def.members_sql()).await?;
        let mut out = BTreeSet::new();
        let mut nested = 0;
        flatten_answer(&v, &def.q.members_query(), &mut out, &mut nested)?;
        if def.q.count.is_some() {
            def.check_count(&run(def.sql()).await?, &out)?;
        }
        Ok((out, nested))
    }

    pub(crate) async fn run(&self, case: &Case, stats: &mut Stats) -> Result<(), Failure> {
        let setup = |e: String| fail(Kind::Surreal, 0, None, format!("setup: {e}"));
        self.reset().await.map_err(setup)?;
        let mut clock = instant(CLOCKS[0]);
        let mut engine = match case.window_slack {
            Some(slack) => Engine::with_window_slack(slack),
            None => Engine::new(),
        }
        .starting_at(clock);
        // The engine is given every write to both tables: it holds them in
        // full, so paths through links into either are evaluated.
        engine.mark_loaded(&[
            std::sync::Arc::from("t"),
            std::sync::Arc::from("u"),
            std::sync::Arc::from("r"),
        ]);
        engine.set_relation_tables([std::sync::Arc::from("r")].into());
        engine.set_functions(functions());
        // View id -> (definition index, edges implied by the deltas so far).
        let mut active: BTreeMap<String, (usize, Edges)> = BTreeMap::new();
        // Every record's content as the engine was given it, and its version.
        let mut contents: BTreeMap<RecordId, Object> = BTreeMap::new();
        let mut versions: BTreeMap<RecordId, u64> = BTreeMap::new();
        for (si, step) in case.steps.iter().enumerate() {
            stats.steps += 1;
            match step {
                Step::Clock(c) => {
                    clock = instant(CLOCKS[*c]);
                    // Records reach their instant: views change with no
                    // change to the data, and no version moves.
                    let deltas = engine.advance_clock(clock);
                    absorb_deltas(&mut active, &deltas, si, |d| {
                        stats.clock_edges += (d.created.len() + d.deleted.len()) as u64;
                        match d.updated.first() {
                            Some((r, _)) => {
                                Err(format!("`updated` for {r}, which the clock moved"))
                            }
                            None => Ok(()),
                        }
                    })?;
                }
                Step::Batch(ws) => {
                    let mut changes = Vec::with_capacity(ws.len());
                    for w in ws {
                        stats.writes += 1;
                        let c = self
                            .write(w)
                            .await
                            .map_err(|e| fail(Kind::Surreal, si, None, format!("write: {e}")))?;
                        changes.push(c);
                    }
                    let deltas = engine.apply_batch(&changes);
                    // The edges SurrealDB deleted with their `in` or `out`
                    // (perhaps after this batch wrote them): gone from the
                    // engine too.
                    let alive = self
                        .edge_ids()
                        .await
                        .map_err(|e| fail(Kind::Surreal, si, None, format!("edges: {e}")))?;
                    // Versions: 1 on first sight, +1 per batch that changed the
                    // content, gone with the record; unchanged records are in no
                    // `updated`, and a batch that changes nothing emits nothing.
                    let mut finals: BTreeMap<&RecordId, Option<&Object>> = BTreeMap::new();
                    for c in &changes {
                        let cascaded = c.id.table.as_str() == "r" && !alive.contains(&c.id);
                        finals.insert(&c.id, c.content.as_ref().filter(|_| !cascaded));
                    }
                    let mut unchanged = BTreeSet::new();
                    for (id, new) in &finals {
                        let old = contents.get(*id);
                        let same = match (old, new) {
                            (None, None) => true,
                            (Some(o), Some(n)) => {
                                let mut n = (*n).clone();
                                n.insert("id".into(), Value::thing((*id).clone()));
                                Value::Object(o.clone()).same_content(&Value::Object(n))
                            }
                            _ => false,
                        };
                        if same {
                            unchanged.insert((*id).clone());
                        } else {
                            match new {
                                Some(n) => {
                                    let mut n = (*n).clone();
                                    n.insert("id".into(), Value::thing((*id).clone()));
                                    contents.insert((*id).clone(), n);
                                    *versions.entry((*id).clone()).or_insert(0) += 1;
                                }
                                None => {
                                    contents.remove(*id);
                                    versions.remove(*id);
                                }
                            }
                        }
                        if engine.version(id) != versions.get(*id).copied() {
                            return Err(fail(
                                Kind::Delta,
                                si,
                                None,
                                format!(
                                    "{id} has version {:?}, expected {:?}",
                                    engine.version(id),
                                    versions.get(*id)
                                ),
                            ));
                        }
                    }
                    let gone: Vec<RecordId> = contents
                        .keys()
                        .filter(|id| id.table.as_str() == "r" && !alive.contains(*id))
                        .cloned()
                        .collect();
                    // Edges SurrealDB deleted with their `in` or `out`
                    // (`UPSERT u:x; DELETE u:x` takes `r:4` from `u:x` with
                    // it): the batch changed them, although its records
                    // are as they were.
                    let cascaded = !gone.is_empty();
                    for id in gone {
                        contents.remove(&id);
                        versions.remove(&id);
                        if let Some(v) = engine.version(&id) {
                            return Err(fail(
                                Kind::Delta,
                                si,
                                None,
                                format!(
                                    "{id} is gone from SurrealDB, and the engine holds it (version {v})"
                                ),
                            ));
                        }
                    }
                    if unchanged.len() == finals.len() && !cascaded && !deltas.is_empty() {
                        return Err(fail(
                            Kind::Delta,
                            si,
                            None,
                            format!("a batch that changed nothing emitted {deltas:?}"),
                        ));
                    }
                    absorb_deltas(&mut active, &deltas, si, |d| {
                        match d.updated.iter().find(|(r, _)| unchanged.contains(r)) {
                            Some((r, _)) => Err(format!("`updated` for unchanged {r}")),
                            None => Ok(()),
                        }
                    })?;
                    // The views the engine can no longer keep exact (a
                    // record it cannot tell from an edge, a link it does not
                    // follow): SSP moves them to the re-query tier, which
                    // runs the query in SurrealDB. No longer compared.
                    for m in engine.take_link_views() {
                        if active.remove(m.id.as_ref()).is_some() {
                            engine.unregister(&m.id);
                            stats.moved += 1;
                        }
                    }
                }
                Step::Register(di) => {
                    let Some(def) = &case.views[*di] else {
                        continue;
                    };
                    match engine.register(meta(def)) {
                        Ok(delta) => {
                            let entry = active.entry(def.id.clone()).or_insert((*di, Edges::new()));
                            entry.0 = *di;
                            apply_delta(&mut entry.1, &delta)
                                .map_err(|e| fail(Kind::Delta, si, Some(*di), e))?;
                        }
                        // Its paths go through record links in this data:
                        // SSP runs it in the re-query tier (SurrealDB's own
                        // answer, `tests/integration/requery.rs`); the engine
                        // keeps what it had.
                        Err(ssp::engine::EngineError::Plan(
                            ssp::engine::plan::PlanError::FollowsLink
                            | ssp::engine::plan::PlanError::Unsupported(_),
                        )) => continue,
                        Err(e) => return Err(fail(Kind::Rejected, si, Some(*di), e.to_string())),
                    }
                }
                Step::Unregister(di) => {
                    let Some(def) = &case.views[*di] else {
                        continue;
                    };
                    let Some((_, edges)) = active.remove(&def.id) else {
                        continue;
                    };
                    let delta = engine.unregister(&def.id);
                    let deleted: BTreeSet<RecordId> = delta
                        .map(|d| d.deleted.into_iter().collect())
                        .unwrap_or_default();
                    let edges: BTreeSet<RecordId> = edges.into_keys().collect();
                    if deleted != edges {
                        let mut f = fail(
                            Kind::Delta,
                            si,
                            Some(*di),
                            "unregister did not delete exactly the edges".into(),
                        );
                        f.engine = deleted;
                        f.surreal = edges;
                        return Err(f);
                    }
                }
            }
            // Check every registered view against SurrealDB.
            for (vid, (di, edges)) in &active {
                let def = case.views[*di].as_ref().expect("active views exist");
                stats.checks += 1;
                let (want, nested) = self
                    .surreal_view(def, clock)
                    .await
                    .map_err(|e| fail(Kind::Surreal, si, Some(*di), format!("view query: {e}")))?;
                let got_versions: Edges = engine
                    .view_records(vid)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let got: BTreeSet<RecordId> = got_versions.keys().cloned().collect();
                if !want.is_empty() {
                    stats.nonempty += 1;
                }
                if nested > 0 {
                    stats.with_sub_records += 1;
                }
                if !def.q.subs.is_empty() {
                    stats.sub_views += 1;
                    if !want.is_empty() {
                        stats.sub_views_nonempty += 1;
                    }
                }
                if !def.q.order.is_empty() || def.q.limit.is_some() || def.q.start.is_some() {
                    stats.windowed += 1;
                }
                for c in constructs(def) {
                    let e = stats.constructs.entry(c).or_default();
                    e.0 += 1;
                    e.1 += u64::from(!want.is_empty());
                }
                if want != got {
                    // What the engine holds for the records in dispute.
                    let detail: Vec<String> = want
                        .symmetric_difference(&got)
                        .map(|r| match engine.record(r) {
                            Some(v) => format!("{r} = {}", lit(&v)),
                            None => format!("{r} unknown"),
                        })
                        .collect();
                    let mut f = fail(Kind::Mismatch, si, Some(*di), detail.join("; "));
                    f.surreal = want;
                    f.engine = got;
                    return Err(f);
                }
                if *edges != got_versions {
                    let detail = format!(
                        "the edges implied by the deltas differ from the result set (record@version)\n\
                         -- from deltas: [{}]\n-- engine:      [{}]",
                        edge_text(edges),
                        edge_text(&got_versions)
                    );
                    return Err(fail(Kind::Delta, si, Some(*di), detail));
                }
            }
        }
        Ok(())
    }
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a datetime")
        .with_timezone(&Utc)
}

/// Applies one step's deltas to the edges they imply, each view's once:
/// a delta for a view that is not registered, two for one view, an empty
/// one, one that does not fit the edges so far, or one `check` refuses
/// fails the step.
fn absorb_deltas(
    active: &mut BTreeMap<String, (usize, Edges)>,
    deltas: &[ViewDelta],
    si: usize,
    mut check: impl FnMut(&ViewDelta) -> Result<(), String>,
) -> Result<(), Failure> {
    let mut seen = BTreeSet::new();
    for d in deltas {
        let Some((di, edges)) = active.get_mut(d.view.as_ref()) else {
            return Err(fail(
                Kind::Delta,
                si,
                None,
                format!("a delta for unknown view {}", d.view),
            ));
        };
        let di = Some(*di);
        if !seen.insert(d.view.to_string()) {
            return Err(fail(
                Kind::Delta,
                si,
                di,
                "two deltas for one view in one step".into(),
            ));
        }
        if d.is_empty() {
            return Err(fail(Kind::Delta, si, di, "an empty delta".into()));
        }
        apply_delta(edges, d).map_err(|e| fail(Kind::Delta, si, di, e))?;
        check(d).map_err(|e| fail(Kind::Delta, si, di, e))?;
    }
    Ok(())
}
