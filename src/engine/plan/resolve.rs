//! `FROM` record ids and `$param` paths, resolved against a view's params
//! before it is planned: `FROM user:1`, `FROM [ids]` and `FROM $ids`
//! become `id` conditions on one table, and a param path through a record
//! id is told apart (SurrealDB fetches there).

use super::{PlanError, window_arg};
use crate::engine::ast::{BinOp, Expr, Field, Function, GraphChecks, GraphStep, Pick, Select};
use crate::engine::eval::Env;
use crate::engine::value::{PathPart, Value};

/// Lowers what depends on the view's params into the plain form the planner
/// takes: `FROM t:1` / `FROM $ids` become `FROM t WHERE id = ...` (or
/// `id IN [...]`), with the ids as literals; and checks that `ONLY` and
/// `OMIT` cannot make SurrealDB's rows differ from the engine's.
pub fn resolve(
    select: Select,
    params: &crate::engine::value::Object,
    is_relation: &dyn Fn(&str) -> bool,
) -> Result<Select, PlanError> {
    let mut select = select;
    if select.ids.is_some() && !select.graph.is_empty() {
        lower_from_traversal(&mut select, params, is_relation)?;
    }
    let mut select = resolve_ids(select, params)?;
    let table = select.table.clone();
    lower_graph(&mut select.fields, &table, is_relation)?;
    Ok(select)
}

/// `FROM $team->attends` / `FROM $team<-attends`, `attends` a `TYPE
/// RELATION` table: the edges whose `in` (`out`) is the record the param
/// names, in id order, as SurrealDB reads them from its graph index
/// (measured on 3.3.5; an edge from a record that does not exist counts):
/// `FROM attends WHERE in = team:1`. What the index holds and the lowered
/// select cannot see is refused or checked as for `$parent->attends` (see
/// [`lower_graph`]): a start record that is itself an edge (of a `TYPE
/// RELATION` table: refused; of another, its table must hold no
/// edge-shaped record, [`Select::no_edges_in`]) or has an array or object
/// key (refused: the index holds that exact key). One step from one
/// record; the rest is the re-query tier's.
fn lower_from_traversal(
    select: &mut Select,
    params: &crate::engine::value::Object,
    is_relation: &dyn Fn(&str) -> bool,
) -> Result<(), PlanError> {
    let unsupported = |why: String| Err(PlanError::Unsupported(why));
    let steps = std::mem::take(&mut select.graph);
    let text = steps_text(&steps);
    let Some(Expr::Param { name, path }) = select.ids.take() else {
        return unsupported(format!("`FROM ...{text}` from anything but a `$param`"));
    };
    let start = match params.get(&name).map(|v| v.get_path(&path)) {
        Some(v) => match record_ids(&v) {
            Some((ids, false)) => ids.into_iter().next(),
            _ => None,
        },
        None => {
            return unsupported(format!(
                "`FROM ${name}{text}` where the view gives no such param"
            ));
        }
    };
    let Some(start) = start else {
        return unsupported(format!(
            "`FROM ${name}{text}` where the param does not hold one record id"
        ));
    };
    let [step] = steps.as_slice() else {
        return unsupported(format!(
            "`FROM ${name}{text}`: SSP follows one step from a `$param` (`FROM $team->attends`)"
        ));
    };
    if !is_relation(&step.table) {
        return unsupported(format!(
            "`FROM ${name}{text}`: SSP follows a traversal over a table defined `TYPE RELATION` \
             (`{}` is not)",
            step.table
        ));
    }
    if is_relation(start.table.as_str()) {
        return unsupported(format!(
            "`FROM ${name}{text}` from an edge (`{}` is `TYPE RELATION`)",
            start.table
        ));
    }
    if matches!(start.key, crate::engine::key::Key::Composite(_)) {
        return unsupported(format!(
            "`FROM ${name}{text}` from a record with an array or object key (SurrealDB's graph \
             index holds that exact key)"
        ));
    }
    let term = Expr::Binary {
        op: BinOp::Eq,
        lhs: Box::new(Expr::Field(vec![PathPart::Field(step.from_field().into())])),
        rhs: Box::new(Expr::Literal(Value::thing(start.clone()))),
    };
    select.filter = Some(and_filter(term, select.filter.take()));
    select.table = step.table.clone();
    let start_table = start.table.to_string();
    if !select.no_edges_in.contains(&start_table) {
        select.no_edges_in.push(start_table);
    }
    Ok(())
}

/// `steps` as written: `->wrote->post`.
fn steps_text(steps: &[GraphStep]) -> String {
    steps
        .iter()
        .map(|s| format!("{}{}", s.arrow(), s.table))
        .collect()
}

/// `term AND filter`, or `term` alone.
fn and_filter(term: Expr, filter: Option<Expr>) -> Expr {
    match filter {
        None => term,
        Some(f) => Expr::Binary {
            op: BinOp::And,
            lhs: Box::new(term),
            rhs: Box::new(f),
        },
    }
}

fn resolve_ids(
    mut select: Select,
    params: &crate::engine::value::Object,
) -> Result<Select, PlanError> {
    let unsupported = |why: &str| Err(PlanError::Unsupported(why.to_owned()));
    for path in &select.omit {
        // `OMIT a.b` where a subquery writes `a`: what SurrealDB drops from
        // inside the subquery's rows is not something the engine tracks.
        let inside_sub = select.fields.iter().any(|f| {
            matches!(f, Field::Subquery { alias: Some(a), .. } if path.len() > a.len() && path.starts_with(a))
        });
        if inside_sub {
            return unsupported("`OMIT` of a path inside a subquery projection");
        }
    }
    if let Some(ids) = select.ids.take() {
        let (ids, many) = match ids {
            Expr::Param { name, path } => match params.get(&name).map(|v| v.get_path(&path)) {
                Some(v) => match record_ids(&v) {
                    Some(ids) => ids,
                    None => {
                        return unsupported(
                            "`FROM $param` where the param does not hold a record id or a list of them",
                        );
                    }
                },
                None => return unsupported("`FROM $param` where the view gives no such param"),
            },
            Expr::Literal(Value::Thing(r)) => (vec![(*r).clone()], false),
            Expr::Array(items) => (
                items
                    .into_iter()
                    .filter_map(|i| match i {
                        Expr::Literal(Value::Thing(r)) => Some((*r).clone()),
                        _ => None,
                    })
                    .collect(),
                true,
            ),
            _ => return unsupported("`FROM` a value that is not a record id"),
        };
        let Some(first) = ids.first() else {
            return unsupported("`FROM` an empty list");
        };
        if ids.iter().any(|r| r.table != first.table) {
            return unsupported("`FROM` record ids of several tables");
        }
        // SurrealDB fetches `FROM t:[1, 'a']` by its exact key; `id = ...`
        // compares values, where `t:[1, 'a']` equals `t:[1f, 'a']`.
        if ids
            .iter()
            .any(|r| matches!(r.key, crate::engine::value::Key::Composite(_)))
        {
            return unsupported("`FROM` a record id whose key is an array or object");
        }
        // SurrealDB cuts a window of a list in the list's order, repeats
        // included; the engine in record order.
        let windowed = select.limit.is_some() || select.start.is_some();
        if many && ids.len() > 1 && windowed {
            return unsupported("`FROM` a list of record ids with `LIMIT` or `START`");
        }
        // `FROM ONLY [t:1]` fails unless exactly one row comes out (a
        // single `FROM ONLY t:1` gives NONE for a missing record).
        if select.only && many {
            return unsupported("`FROM ONLY` a list of record ids");
        }
        select.table = first.table.to_string();
        let id = Box::new(Expr::Field(vec![PathPart::Field("id".into())]));
        let term = if many {
            Expr::Binary {
                op: BinOp::Inside,
                lhs: id,
                rhs: Box::new(Expr::Literal(Value::Array(
                    ids.into_iter().map(Value::thing).collect(),
                ))),
            }
        } else {
            Expr::Binary {
                op: BinOp::Eq,
                lhs: id,
                rhs: Box::new(Expr::Literal(Value::thing(first.clone()))),
            }
        };
        select.filter = Some(and_filter(term, select.filter.take()));
        // One id under `ONLY`: at most one row, as it needs.
        select.only = false;
    }
    if select.only {
        // `FROM ONLY <table>` fails in SurrealDB when more than one row
        // comes out; `LIMIT` 0 or 1 makes that impossible.
        let env = Env {
            params,
            parent: None,
        };
        match window_arg("LIMIT", select.limit.as_ref(), &env) {
            Ok(Some(n)) if n <= 1 => select.only = false,
            _ => return unsupported("`FROM ONLY` a table without `LIMIT 1`"),
        }
    }
    Ok(select)
}

/// Lowers `$user IN <-owns<-user` (a value that reads no row, `IN` or
/// `NOT IN` a two-step traversal from the row, the first step over a `TYPE
/// RELATION` table) in `select`'s `WHERE` and projection, and in its
/// subqueries', into an uncorrelated value subquery over the edges:
/// `id IN (SELECT VALUE out FROM owns WHERE in = $user AND record::tb(in) =
/// 'user')`, which `param_links` evaluates once over the store and again
/// when `owns` changes. Measured on 3.3.5, as that select answers:
///
/// * the traversal's value holds the ids the edges name, whether those
///   records exist or not;
/// * `IN` compares by value (`user:[1] IN [user:[1f]]`), as the lowered `=`
///   does.
///
/// What the lowered select cannot see: the graph index holds the row's
/// exact key (an edge to `asset:[4f]` is not reached from `asset:[4]`,
/// which `id IN [asset:[4f]]` matches), so a composite key among the ends
/// sends the view to the re-query tier (`param_links`); and a row that is
/// itself an edge reaches its own `in` by `<-owns`, an edge in `user`
/// pointing at an `owns` edge is reached by `<-user`: the rows' table and
/// the second step's must hold no edge-shaped record
/// ([`Select::no_edges_in`]).
///
/// Returns whether the rows' table is still to be checked, once `FROM
/// $param` is resolved (see [`traversed_rows`]).
pub fn lower_row_traversals(
    select: &mut Select,
    is_relation: &dyn Fn(&str) -> bool,
) -> Result<bool, PlanError> {
    let mut tables = Vec::new();
    for e in select.filter.iter_mut() {
        lower_row_expr(e, is_relation, &mut tables)?;
    }
    for f in &mut select.fields {
        let pending = match f {
            Field::Expr { expr, .. } => {
                lower_row_expr(expr, is_relation, &mut tables)?;
                false
            }
            Field::Subquery { query, .. } => lower_row_traversals(query, is_relation)?,
            _ => false,
        };
        if pending {
            return Err(PlanError::Unsupported(
                "`$x IN <-edge<-table` in a subquery whose rows are not one table's".into(),
            ));
        }
    }
    if tables.is_empty() {
        return Ok(false);
    }
    for t in tables {
        if !select.no_edges_in.contains(&t) {
            select.no_edges_in.push(t);
        }
    }
    if select.ids.is_some() || !select.graph.is_empty() || select.table.is_empty() {
        return Ok(true);
    }
    traversed_rows(select, is_relation)?;
    Ok(false)
}

/// The edge field and the value a subquery lowered by
/// [`lower_row_traversals`] selects its edges by (`in` and `$user` in
/// `SELECT VALUE out FROM owns WHERE in = $user AND ...`); `None` for any
/// other select.
pub fn lowered_end(q: &Select) -> Option<(&str, &Expr)> {
    q.graph_checks.as_ref()?;
    let Some(Expr::Binary {
        op: BinOp::And,
        lhs,
        ..
    }) = &q.filter
    else {
        return None;
    };
    let Expr::Binary {
        op: BinOp::Eq,
        lhs: field,
        rhs: value,
    } = &**lhs
    else {
        return None;
    };
    match &**field {
        Expr::Field(path) => match path.as_slice() {
            [PathPart::Field(f)] => Some((&**f, &**value)),
            _ => None,
        },
        _ => None,
    }
}

/// The (edge table, edge field) of every subquery [`lower_row_traversals`]
/// made in `select`: the engine keeps an index there, so that evaluating
/// one reads the edges of one record, not the whole table.
pub fn lowered_ends(select: &Select, out: &mut Vec<(String, String)>) {
    fn expr(e: &Expr, out: &mut Vec<(String, String)>) {
        match e {
            Expr::Subquery(q) => {
                if let Some((field, _)) = lowered_end(q) {
                    let end = (q.table.clone(), field.to_owned());
                    if !out.contains(&end) {
                        out.push(end);
                    }
                }
                if let Some(f) = &q.filter {
                    expr(f, out);
                }
            }
            Expr::Array(items) | Expr::Call { args: items, .. } => {
                items.iter().for_each(|i| expr(i, out))
            }
            Expr::Not(x) | Expr::Get { of: x, .. } => expr(x, out),
            Expr::Binary { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
                expr(lhs, out);
                expr(rhs, out);
            }
            Expr::Literal(_)
            | Expr::Field(_)
            | Expr::Param { .. }
            | Expr::Traversal(_)
            | Expr::Now { .. } => {}
        }
    }
    if let Some(f) = &select.filter {
        expr(f, out);
    }
    for f in &select.fields {
        match f {
            Field::Expr { expr: e, .. } => expr(e, out),
            Field::Subquery { query, .. } => lowered_ends(query, out),
            _ => {}
        }
    }
}

/// The rows' own table, for [`lower_row_traversals`]: not an edge table,
/// and holding no edge-shaped record.
pub fn traversed_rows(
    select: &mut Select,
    is_relation: &dyn Fn(&str) -> bool,
) -> Result<(), PlanError> {
    if select.table.is_empty() || select.ids.is_some() || !select.graph.is_empty() {
        return Err(PlanError::Unsupported(
            "`$x IN <-edge<-table` in a subquery whose rows are not one table's".into(),
        ));
    }
    if is_relation(&select.table) {
        return Err(PlanError::Unsupported(format!(
            "`$x IN <-edge<-table` over the rows of `{}`, a `TYPE RELATION` table (an edge \
             reaches its own `in` and `out`)",
            select.table
        )));
    }
    if !select.no_edges_in.contains(&select.table) {
        select.no_edges_in.push(select.table.clone());
    }
    Ok(())
}

fn lower_row_expr(
    e: &mut Expr,
    is_relation: &dyn Fn(&str) -> bool,
    tables: &mut Vec<String>,
) -> Result<(), PlanError> {
    let unsupported = |why: String| Err(PlanError::Unsupported(why));
    let mut again = |e: &mut Expr| lower_row_expr(e, is_relation, tables);
    match e {
        Expr::Binary {
            op: BinOp::Inside | BinOp::NotInside,
            lhs,
            rhs,
        } if matches!(**rhs, Expr::Traversal(_)) => {
            let Expr::Traversal(steps) = &**rhs else {
                return Ok(());
            };
            let text = steps_text(steps);
            let reads_no_row = match &**lhs {
                Expr::Literal(_) => true,
                Expr::Param { name, .. } => {
                    !name.eq_ignore_ascii_case("parent") && !name.eq_ignore_ascii_case("this")
                }
                _ => false,
            };
            if !reads_no_row {
                return unsupported(format!(
                    "`x IN {text}` where `x` is not a `$param` or a literal"
                ));
            }
            let [first, second] = steps.as_slice() else {
                return unsupported(format!(
                    "`IN {text}`: SSP follows `IN <-edge<-table` (two steps) from the row"
                ));
            };
            if !is_relation(&first.table) {
                return unsupported(format!(
                    "`IN {text}`: SSP follows a traversal over a table defined `TYPE RELATION` \
                     (`{}` is not)",
                    first.table
                ));
            }
            if is_relation(&second.table) {
                return unsupported(format!(
                    "`IN {text}` from edges to edges (`{}` is `TYPE RELATION`)",
                    second.table
                ));
            }
            let field = |name: &str| Expr::Field(vec![PathPart::Field(name.into())]);
            let to = second.to_field();
            let and = |lhs: Expr, rhs: Expr| Expr::Binary {
                op: BinOp::And,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
            let eq = |lhs: Expr, rhs: Expr| Expr::Binary {
                op: BinOp::Eq,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
            let filter = and(
                eq(field(to), (**lhs).clone()),
                eq(
                    Expr::Call {
                        func: Function::RecordTable,
                        args: vec![field(to)],
                    },
                    Expr::Literal(Value::str(&second.table)),
                ),
            );
            let values = Select {
                value: true,
                fields: vec![Field::Expr {
                    expr: field(first.from_field()),
                    alias: None,
                }],
                table: first.table.clone(),
                filter: Some(filter),
                // Marks the ends for the composite-key check.
                graph_checks: Some(GraphChecks {
                    parent_edge: None,
                    no_edges_in: None,
                }),
                ..Select::default()
            };
            tables.push(second.table.clone());
            **rhs = Expr::Subquery(Box::new(values));
            **lhs = field("id");
            Ok(())
        }
        Expr::Traversal(steps) => {
            let text = steps_text(steps);
            unsupported(format!(
                "`{text}` other than on the right of `IN` (`$user IN {text}`)"
            ))
        }
        // `x IN (SELECT VALUE id FROM t WHERE $u IN <-r<-u)`: from the
        // subquery's rows, which `param_links` evaluates inside out.
        Expr::Subquery(q) => {
            let mut inner = Vec::new();
            for f in q.filter.iter_mut() {
                lower_row_expr(f, is_relation, &mut inner)?;
            }
            if inner.is_empty() {
                return Ok(());
            }
            if is_relation(&q.table) {
                return unsupported(format!(
                    "`$x IN <-edge<-table` over the rows of `{}`, a `TYPE RELATION` table (an \
                     edge reaches its own `in` and `out`)",
                    q.table
                ));
            }
            tables.extend(inner);
            tables.push(q.table.clone());
            Ok(())
        }
        Expr::Literal(_) | Expr::Field(_) | Expr::Param { .. } | Expr::Now { .. } => Ok(()),
        Expr::Array(items) => items.iter_mut().try_for_each(again),
        Expr::Call { args, .. } => args.iter_mut().try_for_each(again),
        Expr::Not(x) | Expr::Get { of: x, .. } => again(x),
        Expr::Binary { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
            again(lhs)?;
            again(rhs)
        }
    }
}

/// Lowers the traversals of the subqueries in `fields` (rows of
/// `parent_table`), and in theirs, into selects of one table, as SurrealDB
/// answers them from its graph index (measured on 3.3.5):
///
/// * `$parent->wrote` / `$parent<-wrote`, `wrote` a `TYPE RELATION` table:
///   the edges whose `in` (`out`) is the parent, in id order: `FROM wrote
///   WHERE in = $parent.id`. (Only a `TYPE RELATION` table holds nothing
///   but edges, whose `in` and `out` cannot change: a table of any type
///   may hold records with `in` and `out` fields that are no edges.)
/// * `$parent->wrote->post`: for each of those edges in id order, its
///   `out` when it is a `post`, repeats included, and the rows are those
///   records (a missing one is skipped): the lowered select reads the
///   edges, with the rows' fields read through `out`, and its members are
///   the records `out` names ([`Select::through`]).
/// * `$parent->user` from an edge (the parent's table `TYPE RELATION`):
///   its `out` when it is a `user`: `FROM user WHERE id = $parent.out`.
///
/// What the data can still add (the parent being an edge, an edge in
/// `post`) is left as [`GraphChecks`]; the rest is the re-query tier's.
pub fn lower_graph(
    fields: &mut [Field],
    parent_table: &str,
    is_relation: &dyn Fn(&str) -> bool,
) -> Result<(), PlanError> {
    for f in fields {
        let Field::Subquery { query, index, .. } = f else {
            continue;
        };
        if super::parent_field(query).is_some() {
            check_parent_field(query, *index)?;
            continue;
        }
        let steps = std::mem::take(&mut query.graph);
        if !steps.is_empty() {
            lower_steps(query, &steps, parent_table, is_relation)?;
        }
        if *index == Some(Pick::Last) {
            check_last(query)?;
        }
        let table = query.table.clone();
        lower_graph(&mut query.fields, &table, is_relation)?;
    }
    Ok(())
}

/// `(SELECT ... FROM $parent.field)[0]`: the engine keeps it as a fetch of
/// the field (see `plan::rows_of_fields`), so nothing may select among, or
/// reshape, the records it names.
fn check_parent_field(q: &Select, index: Option<Pick>) -> Result<(), PlanError> {
    let plain = q
        .fields
        .iter()
        .all(|f| matches!(f, Field::All | Field::Expr { .. }));
    let clauses = q.filter.is_some()
        || !q.order.is_empty()
        || q.limit.is_some()
        || q.start.is_some()
        || !q.fetch.is_empty()
        || !q.omit.is_empty()
        || q.only
        || q.value;
    if !plain || clauses || index.is_some_and(|i| i != Pick::At(0)) {
        return Err(PlanError::Unsupported(
            "`(SELECT ... FROM $parent.field)` with a clause, a window or a subquery of its own"
                .into(),
        ));
    }
    Ok(())
}

/// `(SELECT ...)[$]`: the planner takes the first row of the reversed
/// order, which is the last of the result only when the result is not cut
/// (no `LIMIT`, no `START`) and is in the select's own order, not in the
/// order of the edges a traversal went through.
fn check_last(q: &Select) -> Result<(), PlanError> {
    if q.limit.is_some() || q.start.is_some() {
        return Err(PlanError::Unsupported(
            "`(SELECT ... LIMIT/START ...)[$]`: the last row of a cut window".into(),
        ));
    }
    if q.through.is_some() {
        return Err(PlanError::Unsupported(
            "`(SELECT ... FROM $parent->edge->table)[$]`: the last record in edge order".into(),
        ));
    }
    Ok(())
}

fn lower_steps(
    q: &mut Select,
    steps: &[GraphStep],
    parent_table: &str,
    is_relation: &dyn Fn(&str) -> bool,
) -> Result<(), PlanError> {
    let unsupported = |why: String| Err(PlanError::Unsupported(why));
    let text = steps_text(steps);
    let field = |name: &str| vec![PathPart::Field(name.into())];
    let parent = |name: &str| Expr::Param {
        name: "parent".into(),
        path: field(name),
    };
    let eq = |lhs: Expr, rhs: Expr| Expr::Binary {
        op: BinOp::Eq,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    };
    let first = &steps[0];
    let mut checks = GraphChecks {
        parent_edge: None,
        no_edges_in: None,
    };
    let term = if is_relation(&first.table) {
        if is_relation(parent_table) {
            return unsupported(format!(
                "`$parent{text}` from an edge to edges (`{parent_table}` and `{}` are both \
                 `TYPE RELATION`)",
                first.table
            ));
        }
        // The parent may still be an edge of a table of any type, whose own
        // `out` (for `->`) names a record of the step's table.
        checks.parent_edge = Some((first.to_field().into(), first.table.clone()));
        q.table = first.table.clone();
        eq(Expr::Field(field(first.from_field())), parent("id"))
    } else if is_relation(parent_table) && steps.len() == 1 {
        checks.no_edges_in = Some(first.table.clone());
        q.table = first.table.clone();
        eq(Expr::Field(field("id")), parent(first.to_field()))
    } else {
        return unsupported(format!(
            "`$parent{text}`: SSP follows a traversal over a table defined `TYPE RELATION` (`{}` \
             is not), or from such an edge to its `in` or `out`",
            first.table
        ));
    };
    let mut filter = q.filter.take();
    if let Some(second) = steps.get(1) {
        if is_relation(&second.table) {
            return unsupported(format!(
                "`$parent{text}` from edges to edges (`{}` is `TYPE RELATION`)",
                second.table
            ));
        }
        if !q.order.is_empty() {
            return unsupported(format!("`ORDER BY` of the rows of `$parent{text}`"));
        }
        let reshaped = q
            .fields
            .iter()
            .any(|f| !matches!(f, Field::Expr { .. } | Field::All));
        if reshaped || !q.fetch.is_empty() || !q.omit.is_empty() {
            return unsupported(format!(
                "`FETCH`, `OMIT`, `.*` or a subquery in the rows of `$parent{text}`"
            ));
        }
        let to = second.to_field();
        checks.no_edges_in = Some(second.table.clone());
        // The rows are the records the edges name: the edge's `to` field is
        // a `second.table` record that exists, and the `WHERE` reads it.
        let exists = Expr::Binary {
            op: BinOp::Ne,
            lhs: Box::new(Expr::Field(vec![
                PathPart::Field(to.into()),
                PathPart::Field("id".into()),
            ])),
            rhs: Box::new(Expr::Literal(Value::None)),
        };
        let of_table = eq(
            Expr::Call {
                func: Function::RecordTable,
                args: vec![Expr::Field(field(to))],
            },
            Expr::Literal(Value::str(&second.table)),
        );
        let mut terms = vec![of_table, exists];
        terms.extend(filter.take().map(|f| through_field(f, to)));
        filter = terms.into_iter().reduce(|a, b| Expr::Binary {
            op: BinOp::And,
            lhs: Box::new(a),
            rhs: Box::new(b),
        });
        q.through = Some(to.into());
    }
    q.filter = Some(and_filter(term, filter));
    q.graph_checks = Some(checks);
    Ok(())
}

/// `e` read on the record that field `to` of the row names: every field
/// path gains `to` in front (`name` becomes `out.name`, `id` `out.id`).
fn through_field(e: Expr, to: &str) -> Expr {
    let again = |e: Box<Expr>| Box::new(through_field(*e, to));
    match e {
        Expr::Field(path) => {
            let mut p = vec![PathPart::Field(to.into())];
            p.extend(path);
            Expr::Field(p)
        }
        Expr::Literal(_)
        | Expr::Param { .. }
        | Expr::Subquery(_)
        | Expr::Traversal(_)
        | Expr::Now { .. } => e,
        Expr::Array(items) => {
            Expr::Array(items.into_iter().map(|i| through_field(i, to)).collect())
        }
        Expr::Not(x) => Expr::Not(again(x)),
        Expr::Binary { op, lhs, rhs } => Expr::Binary {
            op,
            lhs: again(lhs),
            rhs: again(rhs),
        },
        Expr::Arith { op, lhs, rhs } => Expr::Arith {
            op,
            lhs: again(lhs),
            rhs: again(rhs),
        },
        Expr::Call { func, args } => Expr::Call {
            func,
            args: args.into_iter().map(|a| through_field(a, to)).collect(),
        },
        Expr::Get { of, path } => Expr::Get {
            of: again(of),
            path,
        },
    }
}

/// Whether `path` into `v` goes through a record id: SurrealDB fetches the
/// record there (`$auth.name`, `$p.id` with `$p` a record), the engine
/// cannot, so a param read that way sends the view to the re-query tier.
pub fn through_link(v: &Value, path: &[PathPart]) -> bool {
    let Some((part, rest)) = path.split_first() else {
        return false;
    };
    match (v, part) {
        (Value::Thing(_), _) => true,
        (Value::Object(o), PathPart::Field(f)) => o.get(f).is_some_and(|x| through_link(x, rest)),
        (Value::Array(a) | Value::Set(a), PathPart::Index(i)) => {
            a.get(*i).is_some_and(|x| through_link(x, rest))
        }
        (Value::Array(a) | Value::Set(a), PathPart::Field(_)) => {
            a.iter().any(|x| through_link(x, path))
        }
        _ => false,
    }
}

/// The record ids a param holds, and whether it is a list: a record id (or
/// its text, as JSON gives it), or an array of them.
fn record_ids(v: &Value) -> Option<(Vec<crate::engine::value::RecordId>, bool)> {
    let one = |v: &Value| match v {
        Value::Thing(r) => Some((**r).clone()),
        Value::String(s) => crate::engine::value::RecordId::parse(s),
        _ => None,
    };
    match v {
        Value::Array(items) => Some((items.iter().map(one).collect::<Option<Vec<_>>>()?, true)),
        other => Some((vec![one(other)?], false)),
    }
}
