//! The SurrealQL parser for the subset SSP can maintain incrementally.
//!
//! [`parse_select`] turns the text of a view's query into the [`Select`] AST of
//! `ast.rs`, or refuses it with a [`ParseError`] that names the construct and
//! its position (the API answers that with HTTP 422).
//!
//! # Two passes
//!
//! 1. **SurrealDB's own parser** (`surrealdb_syn::parse`, the exact release SSP
//!    is measured against) runs first. If SurrealDB rejects the text, its own
//!    rendered diagnostic is returned. So a syntax error is reported exactly as
//!    SurrealDB would report it, and SSP never accepts text that SurrealDB
//!    would not run.
//! 2. **This recursive-descent parser** then reads the same text and builds
//!    SSP's AST. It mirrors SurrealDB's grammar for the subset (same lexing,
//!    same keyword rules, same operator binding powers) and refuses everything
//!    else by name. Because the text already parsed in SurrealDB, anything this
//!    parser does not understand is by definition a construct SSP does not
//!    support, never a typo; the refusal says which construct it is.
//!
//! # Operator precedence
//!
//! Taken from SurrealDB 3.3.5's pratt parser (`surrealdb-syn`,
//! `src/parser/expression.rs`, and `BindingPower` in `surrealdb-sql`), loosest
//! first:
//!
//! | level     | operators |
//! |-----------|-----------|
//! | Or        | `OR`, `\|\|` |
//! | And       | `AND`, `&&` |
//! | Equality  | `=`, `IS`, `IS NOT`, `==`, `!=` (and the refused `*=`, `?=`, `@@`) |
//! | Relation  | `<`, `<=`, `>`, `>=`, `CONTAINS*`, `INSIDE`, `IN`, `NOT IN`, `NOTINSIDE`, ... |
//! | AddSub .. Power | arithmetic, refused |
//! | Prefix    | `!` (binds to one operand: `!a = 1` is `(!a) = 1`) |
//!
//! All binary operators are left associative (SurrealDB itself rejects chains
//! of non-associative comparisons such as `a = b = c`). `NOT` is not a prefix
//! operator in SurrealQL: `NOT (x)` is a call of the builtin function `not`,
//! which this parser maps to [`Expr::Not`]. A `-` directly followed by digits
//! is part of the number literal; `- 5` and `-(5)` negate a literal, which is
//! folded; negating anything else is arithmetic and refused.
//!
//! # Where SSP is stricter than SurrealDB
//!
//! Everything below is refused with a named construct, never reinterpreted:
//!
//! * `LIMIT` / `START` take only a non-negative integer literal or a `$param`
//!   (SurrealDB evaluates any expression there).
//! * Paths are `.field` and `[n]` with a non-negative integer literal, on
//!   fields and `$params` only (no `[*]`, `[$]`, `[WHERE]`, `['key']`,
//!   methods, or paths on literals, subqueries and function results).
//! * A subquery may only be a whole projection, `(SELECT ...)[n] AS alias`,
//!   written in parentheses.
//! * SurrealDB parses a top-level `SELECT` as an expression, so
//!   `SELECT * FROM t ORDER BY a = 1` is `(SELECT ...) = 1` to it; SSP
//!   refuses the operator. A parenthesised top-level `(SELECT ...)` is
//!   refused too.
//! * `r"table:key"` strings must contain exactly a record id (SurrealDB
//!   ignores text after the id inside the string).

use chrono::{DateTime, Utc};

use super::ast::{ArithOp, BinOp, Expr, Field, Function, GraphStep, Order, Select};
use super::value::{Key, Number, PathPart, RecordId, Value};
use surrealdb::types as sdb;
use surrealdb::types::Decimal;

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
    check_with_surrealdb(sql)?;
    Parser::new(sql).parse_query()
}

/// What SSP supports, appended to refusals so the client knows what to write.
const SUPPORTED: &str = "SSP maintains only queries of the form `SELECT <fields> FROM <table> \
     [WHERE <condition>] [ORDER BY <fields>] [LIMIT <n>] [START <n>]`, with subquery \
     projections `(SELECT ... FROM t WHERE ... $parent ...)[n] AS alias`";

/// Nesting limit (expressions, parentheses, subqueries). SurrealDB's own limits
/// are lower, so this is only a guard against stack exhaustion.
const MAX_DEPTH: usize = 256;

// ---------------------------------------------------------------------------
// Pass 1: SurrealDB's parser.
// ---------------------------------------------------------------------------

/// Runs SurrealDB's parser and converts its rejection into a [`ParseError`].
fn check_with_surrealdb(sql: &str) -> Result<(), ParseError> {
    // SurrealDB's parser is not expected to panic, but a panic here would take
    // down an HTTP handler for what is only a bad query.
    let result = std::panic::catch_unwind(|| surrealdb_syn::parse(sql).map(|_| ()));
    let err = match result {
        Ok(Ok(())) => return Ok(()),
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

mod expr;
mod lexer;
mod literal;
mod projection;
mod select;

// Pass 2, one file per part of the grammar: the lexer, `SELECT` and its
// clauses, expressions, and the literals with structure.
use expr::*;
use lexer::*;

/// The recursive-descent parser: a cursor over the text. Tokens are lexed
/// on demand at the cursor, as SurrealDB's parser does.
struct Parser<'a> {
    src: &'a str,
    /// Byte offset of the first unconsumed byte.
    pos: usize,
    depth: usize,
}

type PResult<T> = Result<T, ParseError>;

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            pos: 0,
            depth: 0,
        }
    }

    // --- errors -----------------------------------------------------------

    fn error(
        &self,
        at: usize,
        headline: &str,
        detail: &str,
        construct: Option<String>,
    ) -> ParseError {
        let (line, column) = line_col(self.src, at);
        ParseError {
            message: format!("{headline} at line {line}, column {column}: {detail}"),
            line,
            column,
            construct,
        }
    }

    /// A construct SurrealDB accepts but SSP does not maintain.
    fn refuse(&self, at: usize, construct: &str, why: &str) -> ParseError {
        self.error(
            at,
            &format!("unsupported construct {construct}"),
            why,
            Some(construct.to_string()),
        )
    }

    /// Something this parser did not expect at this point.
    fn unexpected(&self, t: &Token, expected: &str) -> ParseError {
        let found = self.describe(t);
        self.error(
            t.start,
            &format!("unexpected {found}"),
            &format!("expected {expected}; {SUPPORTED}"),
            Some(found),
        )
    }

    fn describe(&self, t: &Token) -> String {
        match &t.tok {
            Tok::Eof => "end of query".into(),
            _ => {
                let text = self.src.get(t.start..t.end).unwrap_or("");
                let short: String = text.chars().take(40).collect();
                format!("`{short}`")
            }
        }
    }

    fn enter(&mut self, at: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(at, "query nests too deeply", "simplify the query", None));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // --- lexing -----------------------------------------------------------
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
