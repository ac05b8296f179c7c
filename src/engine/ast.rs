//! The parsed form of the supported SurrealQL subset.
//!
//! This is deliberately small: everything here is something the engine can
//! maintain incrementally. The parser (`parser.rs`) refuses anything else with
//! a [`crate::engine::parser::ParseError`] that names the construct, so no
//! clause is ever silently dropped.

use serde::{Deserialize, Serialize};

use super::value::{PathPart, Value};

/// `SELECT <fields> FROM <table> [WHERE ..] [ORDER BY ..] [LIMIT ..] [START ..]`
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Select {
    pub fields: Vec<Field>,
    pub table: String,
    pub filter: Option<Expr>,
    pub order: Vec<Order>,
    /// `LIMIT n`: an integer literal or a `$param` holding one.
    pub limit: Option<Expr>,
    /// `START n`: an integer literal or a `$param` holding one.
    pub start: Option<Expr>,
}

/// One item of the projection list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Field {
    /// `*`
    All,
    /// `expr [AS alias]`; plain expressions don't change which records a view
    /// holds, but they are still parsed and checked.
    Expr {
        expr: Expr,
        alias: Option<Vec<PathPart>>,
    },
    /// `(SELECT ...)[index] [AS alias]`: every record the subquery selects for
    /// an included parent record joins the view's result set. With `[index]`,
    /// only that element of the subquery's result does.
    Subquery {
        query: Box<Select>,
        index: Option<usize>,
        alias: Option<Vec<PathPart>>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    pub path: Vec<PathPart>,
    pub descending: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Expr {
    /// A literal: string, number, bool, NONE, NULL, record id, `d"..."` datetime.
    Literal(Value),
    /// A field path of the current record: `a.b.c`, `tags[0]`, `id`.
    Field(Vec<PathPart>),
    /// `$name` optionally followed by a path: `$uid`, `$parent.author`.
    Param { name: String, path: Vec<PathPart> },
    /// `[a, b, ...]`, elements may be any expression.
    Array(Vec<Expr>),
    /// `!e` / `NOT e`
    Not(Box<Expr>),
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// A function call, restricted to [`Function`].
    Call { func: Function, args: Vec<Expr> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinOp {
    And,
    Or,
    /// `=` and `IS`
    Eq,
    /// `==`
    ExactEq,
    /// `!=` and `IS NOT`
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    ContainsAny,
    ContainsAll,
    ContainsNone,
    /// `INSIDE` and `IN`
    Inside,
    /// `NOT INSIDE` and `NOT IN`
    NotInside,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Function {
    /// `string::starts_with(s, prefix)`
    StringStartsWith,
    /// `string::ends_with(s, suffix)`
    StringEndsWith,
    /// `string::contains(s, needle)`
    StringContains,
    /// `string::lowercase(s)`
    StringLowercase,
    /// `string::uppercase(s)`
    StringUppercase,
    /// `array::len(a)`
    ArrayLen,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Function::StringStartsWith => "string::starts_with",
            Function::StringEndsWith => "string::ends_with",
            Function::StringContains => "string::contains",
            Function::StringLowercase => "string::lowercase",
            Function::StringUppercase => "string::uppercase",
            Function::ArrayLen => "array::len",
        }
    }

    pub fn arity(self) -> usize {
        match self {
            Function::StringStartsWith | Function::StringEndsWith | Function::StringContains => 2,
            Function::StringLowercase | Function::StringUppercase | Function::ArrayLen => 1,
        }
    }

    pub fn from_name(name: &str) -> Option<Function> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "string::starts_with" => Function::StringStartsWith,
            "string::ends_with" => Function::StringEndsWith,
            "string::contains" => Function::StringContains,
            "string::lowercase" => Function::StringLowercase,
            "string::uppercase" => Function::StringUppercase,
            "array::len" => Function::ArrayLen,
            _ => return None,
        })
    }
}
