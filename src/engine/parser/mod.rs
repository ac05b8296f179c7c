//! A view's query text, read by SurrealDB's own parser and lowered into the
//! [`Select`] the engine plans.
//!
//! [`parse_select`] runs `surrealdb_syn::parse` (the exact release SSP is
//! measured against) and walks the `surrealdb-sql` AST it returns. There is
//! one grammar, SurrealDB's: operator precedence, keywords, literals, escapes
//! and record-id keys are read by the database's own code, and a SurrealDB
//! upgrade that changes the AST breaks here at compile time instead of
//! drifting. The lowering only decides what SSP maintains:
//!
//! * a construct the engine evaluates becomes an [`Expr`] or [`Field`];
//! * one that cannot change which records a view holds nor fail the query
//!   (a traversal projected from the row, ...) becomes [`Field::Computed`];
//! * anything else is refused by name with a [`ParseError`], which the
//!   registration turns into the re-query tier or a 422. No clause is ever
//!   dropped.
//!
//! SurrealDB's AST carries no positions, so a refusal's line and column are
//! those of the construct's first appearance in the text (see [`locate`]).
//!
//! # Where SSP is stricter than SurrealDB
//!
//! * `LIMIT` / `START` take only a non-negative integer literal or a `$param`
//!   (and, in the outer query, `+ - *` of those).
//! * Paths are `.field` and `[n]` with a non-negative integer literal, on
//!   fields and `$params` only (no `[*]`, `[$]`, `[WHERE]`, methods, or paths
//!   on literals, subqueries and function results).
//! * A subquery is a whole projection, `(SELECT ...)[n] AS alias`, or the
//!   right side of `IN`: `x IN (SELECT VALUE path FROM table WHERE ...)`.

use surrealdb_sql as sql;

use super::ast::{ArithOp, BinOp, Expr, Field, Function, GraphStep, Order, Pick, Select};
use super::value::{Key, Number, PathPart, RecordId, Value};

mod expr;
mod functions;
mod literal;
mod locate;
mod projection;
mod select;

pub use functions::Definitions;
use locate::Source;

/// Why a query was refused: a syntax error (from SurrealDB) or a construct SSP
/// does not maintain. `message` is the complete, human-readable explanation,
/// including the position; it becomes the body of an HTTP 422.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// The refused construct (`GROUP BY`, `function count`, ...); `None` for
    /// plain syntax errors.
    pub construct: Option<String>,
}

/// Parses the text of a view's query.
///
/// The text must be exactly one `SELECT` statement (optionally followed by
/// `;`) that SurrealDB 3.3.5 accepts and that uses only the supported subset
/// (see the module documentation).
pub fn parse_select(sql: &str) -> Result<Select, ParseError> {
    parse_select_with(sql, &Definitions::new())
}

/// [`parse_select`], with the database's user functions to inline where
/// the query calls them (see [`functions`]).
pub fn parse_select_with(sql: &str, functions: &Definitions) -> Result<Select, ParseError> {
    let ast = parse_with_surrealdb(sql)?;
    let lower = Lower {
        src: Source::new(sql),
        functions,
        inlined: std::cell::Cell::new(0),
    };
    lower.query(ast)
}

/// What SSP supports, appended to refusals so the client knows what to write.
const SUPPORTED: &str = "SSP maintains only queries of the form `SELECT <fields> FROM <table> \
     [WHERE <condition>] [ORDER BY <fields>] [LIMIT <n>] [START <n>]`, with subquery \
     projections `(SELECT ... FROM t WHERE ... $parent ...)[n] AS alias`";

/// Runs SurrealDB's parser and converts its rejection into a [`ParseError`].
fn parse_with_surrealdb(sql: &str) -> Result<sql::Ast, ParseError> {
    // SurrealDB's parser is not expected to panic, but a panic here would take
    // down an HTTP handler for what is only a bad query.
    let result = std::panic::catch_unwind(|| surrealdb_syn::parse(sql));
    let err = match result {
        Ok(Ok(ast)) => return Ok(ast),
        Ok(Err(e)) => e,
        Err(_) => {
            return Err(ParseError {
                message: "SurrealDB's parser failed on this query".into(),
                line: 1,
                column: 1,
                construct: None,
            });
        }
    };
    let (line, column) = match &err {
        surrealdb_syn::ParseError::InvalidQuery(rendered) => rendered
            .snippets
            .first()
            .and_then(|s| snippet_location(&s.to_string()))
            .unwrap_or((1, 1)),
        surrealdb_syn::ParseError::QueryTooLarge => (1, 1),
    };
    let rendered = err.to_string();
    Err(ParseError {
        message: format!(
            "SurrealDB cannot parse the query at line {line}, column {column}: {}",
            rendered.trim_end()
        ),
        line,
        column,
        construct: None,
    })
}

/// Reads the `--> [line:column]` marker of a rendered SurrealDB snippet.
fn snippet_location(snippet: &str) -> Option<(usize, usize)> {
    let rest = &snippet[snippet.find("--> [")? + 5..];
    let inner = &rest[..rest.find(']')?];
    let (line, column) = inner.split_once(':')?;
    Some((line.trim().parse().ok()?, column.trim().parse().ok()?))
}

/// The lowering of one query: the text, kept to place refusals, and the
/// user functions it may inline.
struct Lower<'a> {
    src: Source<'a>,
    functions: &'a Definitions,
    /// User function calls inlined so far (see [`functions`]).
    inlined: std::cell::Cell<usize>,
}

type PResult<T> = Result<T, ParseError>;

impl Lower<'_> {
    /// An error at the first place `needle` appears in the text.
    fn error(
        &self,
        needle: &str,
        headline: &str,
        detail: &str,
        construct: Option<String>,
    ) -> ParseError {
        let (line, column) = self.src.line_col(self.src.find(needle));
        ParseError {
            message: format!("{headline} at line {line}, column {column}: {detail}"),
            line,
            column,
            construct,
        }
    }

    /// A construct SurrealDB accepts but SSP does not maintain, placed where
    /// `needle` first appears.
    fn refuse(&self, needle: &str, construct: &str, why: &str) -> ParseError {
        self.error(
            needle,
            &format!("unsupported construct {construct}"),
            why,
            Some(construct.to_string()),
        )
    }
}

fn supported_functions() -> String {
    [
        Function::StringStartsWith,
        Function::StringEndsWith,
        Function::StringContains,
        Function::StringLowercase,
        Function::StringUppercase,
        Function::StringSlice,
        Function::ArrayLen,
        Function::RecordKey,
        Function::RecordTable,
    ]
    .iter()
    .map(|f| format!("`{}`", f.name()))
    .collect::<Vec<_>>()
    .join(", ")
}

#[cfg(test)]
mod tests;
