//! A query with bound parameters, and its results by statement.

use std::borrow::Cow;

use surrealdb::types::{SurrealValue, Value, Variables};

use super::DbError;

/// A SurrealQL query with bound parameters.
///
/// User data never goes into the text: bind it (`$name`) instead. Push one
/// statement at a time so that a failure names the statement; a
/// [`Query::transaction`] wraps the statements in `BEGIN`/`COMMIT` so they
/// commit together in one round trip.
#[derive(Debug, Clone)]
pub struct Query {
    pub(super) statements: Vec<String>,
    pub(super) vars: Variables,
    pub(super) transaction: bool,
}

impl Query {
    /// A query of one statement (or of several in one text, in which case a
    /// failure is reported by index only).
    pub fn new(sql: impl Into<String>) -> Self {
        Query {
            statements: vec![sql.into()],
            vars: Variables::new(),
            transaction: false,
        }
    }

    /// An empty transaction: statements pushed into it run between `BEGIN
    /// TRANSACTION` and `COMMIT TRANSACTION`, all or nothing.
    pub fn transaction() -> Self {
        Query {
            statements: Vec::new(),
            vars: Variables::new(),
            transaction: true,
        }
    }

    /// Appends a statement; returns its index for [`Response::take`].
    pub fn push(&mut self, statement: impl Into<String>) -> usize {
        self.statements.push(statement.into());
        self.statements.len() - 1
    }

    /// Binds `$name` to `value` (consuming form, for chaining).
    pub fn bind(mut self, name: impl Into<String>, value: impl SurrealValue) -> Self {
        self.set(name, value);
        self
    }

    /// Binds `$name` to `value`.
    pub fn set(&mut self, name: impl Into<String>, value: impl SurrealValue) -> &mut Self {
        self.vars.insert(name.into(), value.into_value());
        self
    }

    /// Number of statements pushed (BEGIN/COMMIT not counted).
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    /// True when no statement was pushed.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// True for a [`Query::transaction`].
    pub fn is_transaction(&self) -> bool {
        self.transaction
    }

    /// The SurrealQL text sent to the database.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if self.transaction {
            text.push_str("BEGIN TRANSACTION;\n");
        }
        for statement in &self.statements {
            let statement = statement.trim().trim_end_matches(';');
            text.push_str(statement);
            text.push_str(";\n");
        }
        if self.transaction {
            text.push_str("COMMIT TRANSACTION;\n");
        }
        text
    }
}

/// The results of a [`Query`], indexed like the statements pushed into it.
#[derive(Debug)]
pub struct Response {
    pub(super) inner: surrealdb::IndexedResults,
    /// Results before the first pushed statement (the `BEGIN` of a transaction).
    pub(super) offset: usize,
}

impl Response {
    /// The result of statement `index`, as `R` (`Option<T>`, `Vec<T>` or `Value`).
    pub fn take<R>(&mut self, index: usize) -> Result<R, DbError>
    where
        R: SurrealValue,
        usize: surrealdb::opt::QueryResult<R>,
    {
        self.inner
            .take::<R>(index + self.offset)
            .map_err(|error| DbError::Other {
                op: Cow::Borrowed("take result"),
                message: error.message().to_owned(),
            })
    }

    /// The result of statement `index` as JSON.
    pub fn take_json(&mut self, index: usize) -> Result<serde_json::Value, DbError> {
        Ok(self.take::<Value>(index)?.into_json_value())
    }

    /// Number of results (BEGIN/COMMIT included, if the server reports them).
    pub fn num_results(&self) -> usize {
        self.inner.num_statements()
    }
}
