//! Which tables a query reads, from SurrealDB's own AST.
//!
//! The re-query tier re-runs a view after a committed change to a table it
//! reads, so missing one table here would leave the view stale without a
//! word. The analysis therefore walks the very AST SurrealDB executes
//! (`surrealdb_syn::parse`, lowered to `surrealdb_expr`'s logical plan, both
//! pinned to the release SSP runs against) with its own visitor, and refuses
//! what it cannot bound: a table computed at run time, a traversal over any
//! relation (`->?`), scripts, and anything that is not a pure read.
//!
//! The tables a row *links* to (`author.name` where `author` holds
//! `user:1`) are not in the text; the engine adds them from the data (see
//! `Engine::requery_tables`).

use std::collections::BTreeSet;

use surrealdb_expr::expr::function::Function;
use surrealdb_expr::expr::lookup::LookupSubject;
use surrealdb_expr::expr::order::Ordering;
use surrealdb_expr::expr::statements::DefineStatement;
use surrealdb_expr::expr::visit::{Visit, Visitor};
use surrealdb_expr::expr::{
    ClosureExpr, Expr, FunctionCall, Literal, LogicalPlan, Lookup, Param, TopLevelExpr,
};

use crate::engine::value::RecordId;

/// What a query needs from the database, as far as its text says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    /// Tables named in the text: `FROM`, subqueries, record-id literals,
    /// graph traversals, and tables that params name.
    pub tables: BTreeSet<String>,
    /// User functions called (`fn::name`, without the prefix): their bodies
    /// read tables too (see [`Reads::absorb_function`]).
    pub functions: BTreeSet<String>,
    /// Params the query reads (without `$`).
    pub params: BTreeSet<String>,
}

/// Why the re-query tier cannot take a query either.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Refused(pub String);

/// Builtin functions whose answer changes with no change to any table:
/// a view re-run only after changes would drift from SurrealDB's answer.
const UNSTABLE_FUNCTIONS: &[&str] = &["time::now", "rand", "http::", "sleep", "session::"];

/// Params that SurrealDB sets from the session, not from the caller.
const SESSION_PARAMS: &[&str] = &["auth", "session", "token", "access"];

/// Params SurrealDB binds itself inside a query.
const QUERY_PARAMS: &[&str] = &[
    "parent", "this", "value", "input", "before", "after", "event",
];

/// The session param (`auth`, `session`, ...) `sql` reads, if any: SSP
/// runs every view as itself, so such a param has no value SSP could give
/// it; the app passes the viewer as an ordinary param instead.
/// `$auth` is the exception when the view gives it (`auth` at
/// registration): the viewer's record id.
pub fn session_param(
    sql: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let plan = parse(sql).ok()?;
    let mut walker = Walker::default();
    walk(&plan, &mut walker).ok()?;
    walker
        .reads
        .params
        .into_iter()
        .find(|p| SESSION_PARAMS.contains(&p.as_str()) && !given_auth(p, params))
}

/// Whether `name` is `auth` and the view gives it.
fn given_auth(name: &str, params: &serde_json::Map<String, serde_json::Value>) -> bool {
    name == AUTH && params.contains_key(AUTH)
}

/// The session param a view may give: the viewer's record id.
pub const AUTH: &str = "auth";

/// The name `$auth` is bound under when the re-query tier runs a view:
/// SurrealDB refuses to bind `auth` itself (a protected param).
pub const AUTH_BOUND_AS: &str = "__ssp_auth";

/// `sql` with every `$auth` renamed [`AUTH_BOUND_AS`], found with
/// SurrealDB's own lexer so that text inside strings is left alone.
pub fn rename_auth(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut at = 0;
    let lexer = surrealdb_syn::lexer::Lexer::new(sql.as_bytes());
    for token in lexer {
        if token.kind != surrealdb_syn::token::TokenKind::Parameter {
            continue;
        }
        let start = token.span.offset as usize;
        let end = start + token.span.len as usize;
        if sql.get(start..end) == Some("$auth") {
            out.push_str(&sql[at..start]);
            out.push('$');
            out.push_str(AUTH_BOUND_AS);
            at = end;
        }
    }
    out.push_str(&sql[at..]);
    out
}

/// The tables `sql` reads. `params` are the view's (JSON): a param that
/// holds a record id (or a table name given to `type::table`) adds its table.
pub fn reads(
    sql: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Reads, Refused> {
    let plan = parse(sql)?;
    let [TopLevelExpr::Expr(Expr::Select(_))] = plan.expressions.as_slice() else {
        return Err(Refused(
            "a view is exactly one SELECT statement".to_string(),
        ));
    };
    let mut walker = Walker::default();
    walk(&plan, &mut walker)?;
    let mut reads = walker.reads;
    for name in &reads.params.clone() {
        if QUERY_PARAMS.contains(&name.as_str()) || walker.local_params.contains(name) {
            continue;
        }
        if SESSION_PARAMS.contains(&name.as_str()) && !given_auth(name, params) {
            return Err(Refused(format!(
                "the query reads `${name}`, which SSP's re-query tier does not have: pass the \
                 value as an ordinary param instead"
            )));
        }
        let Some(value) = params.get(name) else {
            return Err(Refused(format!(
                "the query reads `${name}`, which is not among the view's params"
            )));
        };
        add_param_tables(value, walker.table_params.contains(name), &mut reads.tables);
    }
    Ok(reads)
}

impl Reads {
    /// Adds what the body of a user function reads (`DEFINE FUNCTION`
    /// text, as `INFO FOR DB` returns it). Its own params are its
    /// arguments, so they are not the view's.
    pub fn absorb_function(&mut self, definition: &str) -> Result<(), Refused> {
        let plan = parse(definition)?;
        let [TopLevelExpr::Expr(Expr::Define(define))] = plan.expressions.as_slice() else {
            return Err(Refused(format!(
                "cannot read the function definition `{definition}`"
            )));
        };
        let DefineStatement::Function(f) = define.as_ref() else {
            return Err(Refused(format!(
                "cannot read the function definition `{definition}`"
            )));
        };
        let mut walker = Walker::default();
        walker.visit_block(&f.block)?;
        // A function runs in SSP's own session, where `$auth` and the
        // like are not the viewer's.
        if let Some(p) = walker
            .reads
            .params
            .iter()
            .find(|p| SESSION_PARAMS.contains(&p.as_str()))
        {
            return Err(Refused(format!(
                "the function `fn::{}` reads `${p}`, which SSP cannot give it (it runs every \
                 view as itself)",
                f.name.as_str()
            )));
        }
        self.tables.extend(walker.reads.tables);
        self.functions.extend(walker.reads.functions);
        Ok(())
    }
}

fn parse(sql: &str) -> Result<LogicalPlan, Refused> {
    let ast = std::panic::catch_unwind(|| surrealdb_syn::parse(sql))
        .map_err(|_| Refused("SurrealDB's parser failed on this query".into()))?
        .map_err(|e| Refused(format!("SurrealDB cannot parse the query: {e}")))?;
    Ok(LogicalPlan::from(ast))
}

fn walk(plan: &LogicalPlan, walker: &mut Walker) -> Result<(), Refused> {
    for e in &plan.expressions {
        match e {
            TopLevelExpr::Expr(e) => walker.visit_expr(e)?,
            _ => {
                return Err(Refused(
                    "only a SELECT (or a function that only reads) can be a view".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Tables a param's value names: record ids (as SurrealDB values would be,
/// or as their JSON text), and plain names where the param is given to
/// `type::table`/`type::record`/`type::thing`.
fn add_param_tables(value: &serde_json::Value, names_table: bool, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::String(s) => {
            if let Some(r) = RecordId::parse(s) {
                out.insert(r.table.to_string());
            } else if names_table {
                out.insert(s.clone());
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                add_param_tables(v, names_table, out);
            }
        }
        serde_json::Value::Object(o) => {
            for v in o.values() {
                add_param_tables(v, false, out);
            }
        }
        _ => {}
    }
}

#[derive(Default)]
struct Walker {
    reads: Reads,
    /// Params given to a function that turns a name into a table.
    table_params: BTreeSet<String>,
    /// Params the query binds itself (closure arguments).
    local_params: BTreeSet<String>,
}

impl Visitor for Walker {
    type Error = Refused;

    fn visit_expr(&mut self, e: &Expr) -> Result<(), Refused> {
        let write = match e {
            Expr::Table(t) => {
                self.reads.tables.insert(t.to_string());
                None
            }
            Expr::Mock(m) => {
                self.reads.tables.insert(m.table().to_string());
                None
            }
            Expr::Create(_) => Some("CREATE"),
            Expr::Update(_) => Some("UPDATE"),
            Expr::Upsert(_) => Some("UPSERT"),
            Expr::Delete(_) => Some("DELETE"),
            Expr::Relate(_) => Some("RELATE"),
            Expr::Insert(_) => Some("INSERT"),
            Expr::Define(_) => Some("DEFINE"),
            Expr::Remove(_) => Some("REMOVE"),
            Expr::Alter(_) => Some("ALTER"),
            Expr::Rebuild(_) => Some("REBUILD"),
            Expr::Sleep(_) => Some("SLEEP"),
            Expr::Info(_) => Some("INFO"),
            _ => None,
        };
        if let Some(statement) = write {
            return Err(Refused(format!(
                "the query contains a {statement} statement; a view only reads"
            )));
        }
        e.visit(self)
    }

    fn visit_literal(&mut self, l: &Literal) -> Result<(), Refused> {
        if let Literal::RecordId(r) = l {
            self.reads.tables.insert(r.table.to_string());
        }
        l.visit(self)
    }

    fn visit_param(&mut self, p: &Param) -> Result<(), Refused> {
        self.reads.params.insert(p.as_str().to_string());
        Ok(())
    }

    fn visit_closure(&mut self, c: &ClosureExpr) -> Result<(), Refused> {
        for (p, _) in &c.args {
            self.local_params.insert(p.as_str().to_string());
        }
        c.visit(self)
    }

    fn visit_lookup(&mut self, l: &Lookup) -> Result<(), Refused> {
        if l.what.is_empty() {
            return Err(Refused(
                "a graph traversal over any table (`->?`) reads tables SSP cannot name; name \
                 the relation table"
                    .into(),
            ));
        }
        for w in &l.what {
            match w {
                LookupSubject::Table { table, .. } | LookupSubject::Range { table, .. } => {
                    self.reads.tables.insert(table.to_string());
                }
            }
        }
        l.visit(self)
    }

    fn visit_ordering(&mut self, o: &Ordering) -> Result<(), Refused> {
        if matches!(o, Ordering::Random) {
            return Err(Refused(
                "`ORDER BY RAND()` changes its answer without any change to the data; SSP \
                 re-runs a view only after a change"
                    .to_string(),
            ));
        }
        o.visit(self)
    }

    fn visit_function_call(&mut self, f: &FunctionCall) -> Result<(), Refused> {
        match &f.receiver {
            Function::Normal(name) => {
                if let Some(unstable) = UNSTABLE_FUNCTIONS.iter().find(|u| name.starts_with(**u)) {
                    return Err(Refused(format!(
                        "`{name}` changes its answer without any change to the data \
                         (`{unstable}`); SSP re-runs a view only after a change"
                    )));
                }
                if matches!(
                    name.as_str(),
                    "type::table" | "type::record" | "type::thing"
                ) {
                    match f.arguments.first() {
                        Some(Expr::Literal(Literal::String(s))) => {
                            self.reads.tables.insert(s.to_string());
                        }
                        Some(Expr::Param(p)) => {
                            self.table_params.insert(p.as_str().to_string());
                        }
                        Some(Expr::Table(_)) => {}
                        _ => {
                            return Err(Refused(format!(
                                "`{name}` names a table computed at run time; SSP must know \
                                 the tables a view reads: give it a literal or a param"
                            )));
                        }
                    }
                }
            }
            Function::Custom(name) => {
                self.reads.functions.insert(name.clone());
            }
            _ => {
                return Err(Refused(
                    "scripts, models and modules read what SSP cannot see; a view cannot call \
                     them"
                        .into(),
                ));
            }
        }
        f.visit(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_is_renamed_where_it_is_a_param_only() {
        assert_eq!(
            rename_auth(
                "SELECT * FROM t WHERE o = $auth AND a = $author AND s = '$auth' AND x = $auth.id"
            ),
            "SELECT * FROM t WHERE o = $__ssp_auth AND a = $author AND s = '$auth' AND x = $__ssp_auth.id"
        );
        assert_eq!(rename_auth("SELECT * FROM t"), "SELECT * FROM t");
        let mut params = serde_json::Map::new();
        assert_eq!(
            session_param("SELECT * FROM t WHERE o = $auth", &params).as_deref(),
            Some("auth")
        );
        params.insert("auth".into(), "user:1".into());
        assert_eq!(
            session_param("SELECT * FROM t WHERE o = $auth", &params),
            None
        );
        assert_eq!(
            session_param("SELECT * FROM t WHERE o = $session.id", &params).as_deref(),
            Some("session")
        );
        let reads = reads("SELECT * FROM t WHERE o = $auth.id", &params).expect("reads");
        assert!(
            reads.tables.iter().any(|t| t == "user"),
            "the viewer's table: {:?}",
            reads.tables
        );
    }

    fn tables(sql: &str) -> Vec<String> {
        reads(sql, &serde_json::Map::new())
            .unwrap()
            .tables
            .into_iter()
            .collect()
    }

    #[test]
    fn finds_every_table_the_text_names() {
        assert_eq!(tables("SELECT * FROM post"), ["post"]);
        assert_eq!(
            tables("SELECT *, (SELECT * FROM user WHERE id = $parent.author)[0] AS a FROM post"),
            ["post", "user"]
        );
        assert_eq!(
            tables("SELECT * FROM post WHERE author = user:1"),
            ["post", "user"]
        );
        assert_eq!(
            tables("SELECT *, ->likes->post AS liked FROM user"),
            ["likes", "post", "user"]
        );
        assert_eq!(
            tables("SELECT count(<-follows<-user) AS n FROM user"),
            ["follows", "user"]
        );
        assert_eq!(
            tables("SELECT * FROM post WHERE author IN (SELECT VALUE id FROM user WHERE admin)"),
            ["post", "user"]
        );
        assert_eq!(
            tables("SELECT * FROM type::table('post') WHERE x = 1"),
            ["post"]
        );
    }

    #[test]
    fn tables_from_params() {
        let params = serde_json::json!({"t": "post", "u": "user:1", "ids": ["item:1", "note:2"]});
        let params = params.as_object().unwrap();
        let r = reads(
            "SELECT * FROM type::table($t) WHERE a = $u OR id IN $ids",
            params,
        )
        .unwrap();
        let t: Vec<_> = r.tables.into_iter().collect();
        assert_eq!(t, ["item", "note", "post", "user"]);
    }

    #[test]
    fn refuses_what_it_cannot_bound() {
        let none = serde_json::Map::new();
        for sql in [
            "SELECT * FROM post WHERE at > time::now() - 1h",
            "SELECT *, rand() AS r FROM post",
            "SELECT * FROM post ORDER BY RAND() LIMIT 1",
            "SELECT * FROM post WHERE a = $missing",
            "SELECT * FROM post WHERE owner = $auth.id",
            "SELECT * FROM post WHERE owner = $session.id",
            "SELECT ->?->? FROM user",
            "SELECT * FROM type::table(string::concat('p', 'ost'))",
            "SELECT * FROM (CREATE post SET a = 1)",
            "SELECT * FROM post; SELECT * FROM user",
            "DELETE post",
        ] {
            assert!(reads(sql, &none).is_err(), "{sql} should be refused");
        }
    }

    #[test]
    fn user_functions_are_listed_and_their_bodies_read() {
        let r = reads(
            "SELECT *, fn::score(id) AS s FROM post",
            &serde_json::Map::new(),
        )
        .unwrap();
        assert_eq!(r.functions.iter().collect::<Vec<_>>(), ["score"]);
        let mut r = r;
        r.absorb_function(
            "DEFINE FUNCTION fn::score($p: record) { RETURN count(SELECT * FROM vote WHERE post = $p); }",
        )
        .unwrap();
        assert!(r.tables.contains("vote"), "{:?}", r.tables);
    }
}
