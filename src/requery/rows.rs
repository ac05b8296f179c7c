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
//! * `GROUP BY` rows are groups and `SELECT VALUE` rows are values, from
//!   no one record: left as they are (their members are what they show).

use surrealdb_sql as sql;

/// The field a re-query answer's rows carry their record's id in.
pub const ROW_ID: &str = "__ssp_row";

/// `sql` with [`ROW_ID`] added where it applies; `sql` itself when it is
/// not one `SELECT` SurrealDB parses (the tier refused such views before).
pub fn with_row_ids(sql: &str) -> String {
    let Some(field) = row_id_field() else {
        return sql.to_owned();
    };
    let Ok(Ok(mut ast)) = std::panic::catch_unwind(|| surrealdb_syn::parse(sql)) else {
        return sql.to_owned();
    };
    let [sql::ast::TopLevelExpr::Expr(sql::Expr::Select(select))] = ast.expressions.as_mut_slice()
    else {
        return sql.to_owned();
    };
    if !add_row_id(select, &field) {
        return sql.to_owned();
    }
    surrealdb::types::ToSql::to_sql(select.as_ref())
}

/// `id AS __ssp_row`, as SurrealDB's parser builds it.
fn row_id_field() -> Option<sql::Field> {
    let ast = surrealdb_syn::parse(&format!("SELECT id AS {ROW_ID} FROM t")).ok()?;
    match ast.expressions.into_iter().next()? {
        sql::ast::TopLevelExpr::Expr(sql::Expr::Select(s)) => match s.fields {
            sql::Fields::Select(mut fields) if fields.len() == 1 => fields.pop(),
            _ => None,
        },
        _ => None,
    }
}

/// Adds `field` to `select`'s projection and to the subqueries it
/// projects; false when `select`'s rows are not one record's each.
fn add_row_id(select: &mut sql::SelectStatement, field: &sql::Field) -> bool {
    if select.group.is_some() {
        return false;
    }
    let named = names_read_from_rows(select);
    let sql::Fields::Select(fields) = &mut select.fields else {
        return false;
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
    true
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
        assert_eq!(
            with_row_ids("SELECT name FROM user WHERE a = $a"),
            "SELECT name, id AS __ssp_row FROM user WHERE a = $a"
        );
        assert_eq!(
            with_row_ids(
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
        // Groups and values come from no one record.
        for sql in [
            "SELECT count() FROM t GROUP ALL",
            "SELECT a, count() FROM t GROUP BY a",
            "SELECT VALUE name FROM t",
            "not SurrealQL",
            "SELECT * FROM a; SELECT * FROM b",
        ] {
            assert_eq!(with_row_ids(sql), sql);
        }
        // An object sorted on gains no field.
        assert_eq!(
            with_row_ids("SELECT *, (SELECT name FROM u)[0] AS o FROM t ORDER BY o"),
            "SELECT *, (SELECT name FROM u)[0] AS o, id AS __ssp_row FROM t ORDER BY o"
        );
        // Text with quotes and params survives the round trip.
        assert_eq!(
            with_row_ids("SELECT * FROM t WHERE a = \"it's `x`; y\" AND b = $b"),
            "SELECT *, id AS __ssp_row FROM t WHERE a = \"it's `x`; y\" AND b = $b"
        );
    }
}
