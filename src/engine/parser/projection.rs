//! The projection and what shapes rows: fields and aliases, subquery
//! fields, `field.*`, `SELECT VALUE`, `OMIT` and `FETCH`.

use super::*;
use crate::engine::value::FieldName;

impl<'a> Parser<'a> {
    /// The projection list.
    pub(super) fn parse_fields(&mut self) -> PResult<Vec<Field>> {
        let mut fields = Vec::new();
        loop {
            let t = self.peek()?;
            let field = if t.is("*") {
                self.bump(&t);
                Field::All
            } else if t.is("(") && self.peek_after(&t)?.is_kw("SELECT") {
                self.parse_subquery_field()?
            } else if let Some(field) = self.parse_link_all()? {
                field
            } else {
                let expr = self.parse_expr(Bp::Base)?;
                let alias = self.parse_alias()?;
                Field::Expr { expr, alias }
            };
            fields.push(field);
            let t = self.peek()?;
            if !t.is(",") {
                return Ok(fields);
            }
            self.bump(&t);
        }
    }

    /// `field.* [AS alias]`, if that is what comes: a whole linked record.
    /// A path after it (`author.*.name`) is refused by name.
    pub(super) fn parse_link_all(&mut self) -> PResult<Option<Field>> {
        let t = self.peek()?;
        let Some(name) = t.ident() else {
            return Ok(None);
        };
        let dot = self.peek_after(&t)?;
        if !dot.is(".") || !self.peek_after(&dot)?.is("*") {
            return Ok(None);
        }
        let name = FieldName::from(name);
        let star = self.peek_after(&dot)?;
        self.bump(&t);
        self.bump(&dot);
        self.bump(&star);
        let next = self.peek()?;
        if self.is_path_continuation(&next) {
            return Err(self.refuse(
                next.start,
                "path after `.*`",
                "project the linked record whole (`author.* AS a`) or one of its fields (`author.name`)",
            ));
        }
        let alias = self
            .parse_alias()?
            .unwrap_or_else(|| vec![PathPart::Field(name.clone())]);
        Ok(Some(Field::LinkAll { field: name, alias }))
    }

    /// The one expression after `SELECT VALUE`. A subquery there would be
    /// a value made of records, which is not a projection of them.
    pub(super) fn parse_value_field(&mut self) -> PResult<Vec<Field>> {
        let t = self.peek()?;
        if t.is("(") && self.peek_after(&t)?.is_kw("SELECT") {
            return Err(self.refuse(
                t.start,
                "SELECT VALUE of a subquery",
                "project the subquery as a field: `SELECT *, (SELECT ...) AS x FROM ...`",
            ));
        }
        let expr = self.parse_expr(Bp::Base)?;
        Ok(vec![Field::Expr { expr, alias: None }])
    }

    /// `[OMIT path, ...]`.
    pub(super) fn parse_omit(&mut self) -> PResult<Vec<Vec<PathPart>>> {
        if !self.eat_kw("OMIT")? {
            return Ok(Vec::new());
        }
        Ok(self
            .parse_path_list("a field to omit")?
            .into_iter()
            .map(|(_, path)| path)
            .collect())
    }

    /// `path, path, ...` of fields (`OMIT`, `FETCH`), each with where it starts.
    fn parse_path_list(&mut self, what: &str) -> PResult<Vec<(usize, Vec<PathPart>)>> {
        let mut out = Vec::new();
        loop {
            let t = self.peek()?;
            let Some(name) = t.ident() else {
                return Err(self.unexpected(&t, what));
            };
            let mut path = vec![PathPart::Field(name.into())];
            self.bump(&t);
            self.parse_path_rest(&mut path)?;
            out.push((t.start, path));
            let t = self.peek()?;
            if !t.is(",") {
                return Ok(out);
            }
            self.bump(&t);
        }
    }

    /// `(SELECT ...)[n] [AS alias]`, the parenthesis being next.
    pub(super) fn parse_subquery_field(&mut self) -> PResult<Field> {
        let open = self.expect_punct("(", "`(`")?;
        let select_kw = self.peek()?;
        self.bump(&select_kw);
        let query = self.parse_select_body(true)?;
        self.expect_punct(")", "`)` closing the subquery")?;

        let t = self.peek()?;
        let index = if t.is("[") {
            Some(self.parse_bracket_index()?)
        } else {
            None
        };

        // Only the whole subquery (or one element of it) may be projected:
        // anything else would be an expression over its result.
        let t = self.peek()?;
        // (`OMIT` is refused by name once the field list ends.)
        let ends_field = t.is(",") || t.is_kw("AS") || t.is_kw("FROM") || t.is_kw("OMIT");
        if !ends_field {
            let construct = if self.is_path_continuation(&t) {
                "path after a subquery"
            } else {
                "subquery inside an expression"
            };
            return Err(self.refuse(
                if self.is_path_continuation(&t) {
                    t.start
                } else {
                    open.start
                },
                construct,
                "a subquery may only be projected whole, as `(SELECT ...)[n] AS alias`",
            ));
        }
        let alias = self.parse_alias()?;
        Ok(Field::Subquery {
            query: Box::new(query),
            index,
            alias,
        })
    }

    /// `[AS alias]`, where the alias is a plain field path.
    pub(super) fn parse_alias(&mut self) -> PResult<Option<Vec<PathPart>>> {
        if !self.eat_kw("AS")? {
            return Ok(None);
        }
        let t = self.peek()?;
        let Some(name) = t.ident() else {
            if t.is("->") || t.is("<") {
                return Err(self.refuse(
                    t.start,
                    "graph traversal",
                    "graph traversal is not supported",
                ));
            }
            return Err(self.unexpected(&t, "an alias name"));
        };
        let mut path = vec![PathPart::Field(name.into())];
        self.bump(&t);
        self.parse_path_rest(&mut path)?;
        Ok(Some(path))
    }

    /// `[FETCH field, ...]`: fields of the row, and paths of field names
    /// through them (`FETCH comments.user`: `comments`, and `user` in each
    /// record fetched there; measured on 3.3.5, `comments` is fetched
    /// whether or not it is listed too).
    #[allow(clippy::type_complexity)]
    pub(super) fn parse_fetch(
        &mut self,
    ) -> PResult<(Vec<FieldName>, Vec<(FieldName, Vec<FieldName>)>)> {
        let t = self.peek()?;
        if !t.is_kw("FETCH") {
            return Ok((Vec::new(), Vec::new()));
        }
        self.bump(&t);
        let mut fetch = Vec::new();
        let mut nested = Vec::new();
        for (at, path) in self.parse_path_list("a field to fetch")? {
            let names: Option<Vec<FieldName>> = path
                .iter()
                .map(|p| match p {
                    PathPart::Field(name) => Some(name.clone()),
                    _ => None,
                })
                .collect();
            let Some((first, rest)) = names.as_deref().and_then(|n| n.split_first()) else {
                return Err(self.refuse(
                    at,
                    "FETCH of an indexed path",
                    "fetch fields by name (`FETCH author`, `FETCH comments.user`)",
                ));
            };
            if !fetch.contains(first) {
                fetch.push(first.clone());
            }
            if !rest.is_empty() {
                nested.push((first.clone(), rest.to_vec()));
            }
        }
        self.check_clause()?;
        Ok((fetch, nested))
    }
}
