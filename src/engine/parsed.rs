//! Query texts already parsed, so that views registering the same text
//! (every client of one page, and every view a restart brings back) parse
//! it once.
//!
//! Parsing is SurrealDB's parser and the lowering of its AST. At a restart
//! with 100,000 views over four texts, parsing each view's text was a
//! quarter of the views' restore time. A parse depends on the text alone;
//! the params are bound after (`plan::resolve`), on a copy.

use std::sync::Arc;

use ahash::AHashMap;

use super::EngineError;
use super::ast::Select;
use super::parser;
use super::plan;

/// Texts kept at most: an app has a handful of query shapes; a client that
/// sends a new text per view (literals inlined) just finds the cache full,
/// and it starts again.
const CAPACITY: usize = 1024;

#[derive(Default)]
pub(super) struct Parsed {
    texts: AHashMap<Arc<str>, Arc<Select>>,
    /// The user functions a text may inline: a parse depends on them too,
    /// so the texts are parsed again when one changes.
    functions: parser::Definitions,
}

impl Parsed {
    /// Adds (or replaces) user function definitions (see
    /// [`super::Engine::set_functions`]).
    pub(super) fn set_functions(&mut self, functions: parser::Definitions) {
        let mut changed = false;
        for (name, text) in functions {
            if self.functions.get(&name) != Some(&text) {
                self.functions.insert(name, text);
                changed = true;
            }
        }
        if changed {
            self.texts.clear();
        }
    }

    pub(super) fn functions(&self) -> &parser::Definitions {
        &self.functions
    }

    /// The text parsed and checked as a view's query, or why it is refused.
    /// Only texts that pass are kept: a refusal is rare, and is parsed again
    /// to name its position anew.
    pub(super) fn select(&mut self, sql: &str) -> Result<Arc<Select>, EngineError> {
        if let Some(s) = self.texts.get(sql) {
            return Ok(s.clone());
        }
        let select =
            plan::projection::order_by_renamed(parser::parse_select_with(sql, &self.functions)?);
        if let Some(e) = plan::projection::order_by_computed(&select)
            .or_else(|| plan::projection::fetch_unsupported(&select))
        {
            return Err(e.into());
        }
        if self.texts.len() >= CAPACITY {
            self.texts.clear();
        }
        let select = Arc::new(select);
        self.texts.insert(Arc::from(sql), select.clone());
        Ok(select)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_parsed_once_and_a_refusal_is_not_kept() {
        let mut p = Parsed::default();
        let a = p.select("SELECT * FROM t WHERE a = $a").unwrap();
        let b = p.select("SELECT * FROM t WHERE a = $a").unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second registration shares the parse"
        );
        assert!(p.select("SELECT * FROM t WHERE").is_err());
        assert!(p.select("SELECT * FROM t WHERE").is_err());
        assert_eq!(p.texts.len(), 1);
        for i in 0..CAPACITY + 1 {
            p.select(&format!("SELECT * FROM t WHERE a = {i}")).unwrap();
        }
        assert!(p.texts.len() <= CAPACITY, "the cache stays bounded");
    }
}
