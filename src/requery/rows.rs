//! Which record each row of a re-query answer comes from.
//!
//! The incremental tier's members are the records a view's rows come from
//! (its `FROM` records, and those of its projected subqueries), whatever
//! the rows show of them: `SELECT name FROM user` holds the users. A
//! re-query answer of that query has no `id` to read, so before it runs,
//! the query is given one more field, `id AS __ssp_row`, in its own
//! projection and in the subqueries it projects (`(SELECT name FROM
//! $parent<-wrote<-user)[0] AS by`). Both tiers then agree on what a view
//! holds, and a view that moves between them keeps its edges.
//!
//! The field is added through SurrealDB's own AST, and only where it
//! cannot change what else the answer holds (measured on 3.3.5):
//!
//! * a projection's expressions read the record, not the row being built,
//!   so `record::id(id) AS id, id AS __ssp_row` still reads the record id;
//! * `ORDER BY` and `SPLIT` name fields of the row, never `__ssp_row`; but
//!   an object gains a field that sorts first, so a subquery whose alias
//!   they name is left as it is;
//! * `GROUP BY` rows are groups, from no one record: left as they are
//!   (their members are what they show);
//! * `SELECT VALUE expr` rows are values: a second statement, the same
//!   `SELECT` with `VALUE id` (its `ORDER BY` sorts on the records' fields
//!   either way, so it cuts the same window), says which records they
//!   come from.

use surrealdb_sql as sql;

/// The field a re-query answer's rows carry their record's id in.
pub const ROW_ID: &str = "__ssp_row";

/// A view's query as the re-query tier runs it.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    /// The text to run: the query, with [`ROW_ID`] where it applies.
    pub sql: String,
    /// A second statement follows whose answer is the ids of the rows'
    /// records (`SELECT VALUE`).
    pub ids_after: bool,
}

/// `sql` with [`ROW_ID`] added where it applies; `sql` itself when it is
/// not one `SELECT` SurrealDB parses (the tier refused such views before).
pub fn with_row_ids(sql: &str) -> Rewritten {
    let unchanged = || Rewritten {
        sql: sql.to_owned(),
        ids_after: false,
    };
    let (Some(field), Some(value_id)) = (ROW_ID_FIELD.as_ref(), VALUE_ID.as_ref()) else {
        return unchanged();
    };
    let Ok(Ok(mut ast)) = std::panic::catch_unwind(|| surrealdb_syn::parse(sql)) else {
        return unchanged();
    };
    let [sql::ast::TopLevelExpr::Expr(sql::Expr::Select(select))] = ast.expressions.as_mut_slice()
    else {
        return unchanged();
    };
    if select.group.is_some() {
        return unchanged();
    }
    if matches!(select.fields, sql::Fields::Value(_)) {
        let mut ids = select.as_ref().clone();
        ids.fields = value_id.clone();
        ids.fetch = None;
        return Rewritten {
            sql: format!(
                "{}; {}",
                surrealdb::types::ToSql::to_sql(select.as_ref()),
                surrealdb::types::ToSql::to_sql(&ids)
            ),
            ids_after: true,
        };
    }
    add_row_id(select, field);
    Rewritten {
        sql: surrealdb::types::ToSql::to_sql(select.as_ref()),
        ids_after: false,
    }
}

/// `id AS __ssp_row`, and the projection `VALUE id`, as SurrealDB's
/// parser builds them (once).
static ROW_ID_FIELD: std::sync::LazyLock<Option<sql::Field>> =
    std::sync::LazyLock::new(
        || match fields_of(&format!("SELECT id AS {ROW_ID} FROM t")) {
            Some(sql::Fields::Select(mut fields)) if fields.len() == 1 => fields.pop(),
            _ => None,
        },
    );
static VALUE_ID: std::sync::LazyLock<Option<sql::Fields>> =
    std::sync::LazyLock::new(|| fields_of("SELECT VALUE id FROM t"));

/// The projection of `select`, as SurrealDB's parser builds it.
fn fields_of(select: &str) -> Option<sql::Fields> {
    let ast = surrealdb_syn::parse(select).ok()?;
    match ast.expressions.into_iter().next()? {
        sql::ast::TopLevelExpr::Expr(sql::Expr::Select(s)) => Some(s.fields),
        _ => None,
    }
}

/// Adds `field` to `select`'s projection and to the subqueries it
/// projects, but for rows that are not one record's each (groups, values).
fn add_row_id(select: &mut sql::SelectStatement, field: &sql::Field) {
    if select.group.is_some() {
        return;
    }
    let named = names_read_from_rows(select);
    let sql::Fields::Select(fields) = &mut select.fields else {
        return;
    };
    for f in fields.iter_mut() {
        let sql::Field::Single(selector) = f else {
            continue;
        };
        let shown_whole = match &selector.alias {
            None => true,
            Some(alias) => match alias.0.first() {
                Some(sql::Part::Field(name)) => !named.iter().any(|n| n == name.as_str()),
                _ => false,
            },
        };
        if !shown_whole {
            continue;
        }
        if let Some(sub) = projected_subquery(&mut selector.expr) {
            add_row_id(sub, field);
        }
    }
    fields.push(field.clone());
}

/// The first field names of the row that `ORDER BY` and `SPLIT` read.
fn names_read_from_rows(select: &sql::SelectStatement) -> Vec<String> {
    let mut out = Vec::new();
    let mut first = |i: &sql::Idiom| {
        if let Some(sql::Part::Field(name)) = i.0.first() {
            out.push(name.as_str().to_owned());
        }
    };
    if let Some(sql::order::Ordering::Order(list)) = &select.order {
        for o in list.iter() {
            first(&o.value);
        }
    }
    if let Some(splits) = &select.split {
        for s in splits.0.iter() {
            first(&s.0);
        }
    }
    out
}

/// `(SELECT ...)`, `(SELECT ...)[n]`, `(SELECT ...)[$]`: a subquery whose
/// rows the projection shows as they are (the incremental tier's
/// `Field::Subquery`). A path after it (`[0].name`) or a function around
/// it shows values, which are no one's rows.
fn projected_subquery(e: &mut sql::Expr) -> Option<&mut sql::SelectStatement> {
    match e {
        sql::Expr::Select(s) => Some(s),
        sql::Expr::Idiom(i) => match i.0.as_mut_slice() {
            [sql::Part::Start(sql::Expr::Select(s))] => Some(s),
            [
                sql::Part::Start(sql::Expr::Select(s)),
                sql::Part::First | sql::Part::Last | sql::Part::Value(_),
            ] => Some(s),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_projected_subqueries_carry_their_record() {
        let sql = |q: &str| with_row_ids(q).sql;
        assert_eq!(
            sql("SELECT name FROM user WHERE a = $a"),
            "SELECT name, id AS __ssp_row FROM user WHERE a = $a"
        );
        assert_eq!(
            sql(
                "SELECT record::id(id) AS id, (SELECT status FROM $parent<-owns<-user)[0] AS \
                 owner, (SELECT name FROM u)[0].name AS n, count(SELECT 1 FROM v) AS c FROM ONLY \
                 $g FETCH x"
            ),
            "SELECT record::id(id) AS id, (SELECT status, id AS __ssp_row FROM \
             $parent<-owns<-user)[0] AS owner, (SELECT name FROM u)[0].name AS n, count((SELECT 1 \
             FROM v)) AS c, id AS __ssp_row FROM ONLY $g FETCH x"
        );
    }

    #[test]
    fn what_the_field_could_change_is_left_alone() {
        // Groups come from no one record.
        for sql in [
            "SELECT count() FROM t GROUP ALL",
            "SELECT a, count() FROM t GROUP BY a",
            "SELECT VALUE count() FROM t GROUP ALL",
            "not SurrealQL",
            "SELECT * FROM a; SELECT * FROM b",
        ] {
            let same = Rewritten {
                sql: sql.to_owned(),
                ids_after: false,
            };
            assert_eq!(with_row_ids(sql), same);
        }
        // An object sorted on gains no field.
        let sql = |q: &str| with_row_ids(q).sql;
        assert_eq!(
            sql("SELECT *, (SELECT name FROM u)[0] AS o FROM t ORDER BY o"),
            "SELECT *, (SELECT name FROM u)[0] AS o, id AS __ssp_row FROM t ORDER BY o"
        );
        // Text with quotes and params survives the round trip.
        assert_eq!(
            sql("SELECT * FROM t WHERE a = \"it's `x`; y\" AND b = $b"),
            "SELECT *, id AS __ssp_row FROM t WHERE a = \"it's `x`; y\" AND b = $b"
        );
    }

    #[test]
    fn values_are_followed_by_the_ids_of_their_records() {
        assert_eq!(
            with_row_ids(
                "SELECT VALUE author FROM post WHERE a = 1 ORDER BY at LIMIT 2 FETCH author"
            ),
            Rewritten {
                sql: "SELECT VALUE author FROM post WHERE a = 1 ORDER BY at LIMIT 2 FETCH author; \
                      SELECT VALUE id FROM post WHERE a = 1 ORDER BY at LIMIT 2"
                    .into(),
                ids_after: true,
            }
        );
    }
}
