//! What a view's projection does to its plan: `ORDER BY` an alias that
//! renames a field, or one the projection computes; `FETCH` and
//! `field.*`, whose linked records are members.

use super::{PlanError, output_path};
use crate::engine::ast::{Expr, Field, Select};
use crate::engine::eval::may_fetch;
use crate::engine::value::{FieldName, PathPart};

/// `ORDER BY` an alias that only renames a stored field (`SELECT *, title
/// AS score ... ORDER BY score`) sorts on that field: SurrealDB sorts on
/// the alias's value, which is the field's. Rewritten only where nothing
/// else in the projection writes at or around the alias (no second field
/// of that name, no `OMIT` of it), in the query and its subqueries;
/// anything else is left to [`order_by_computed`].
pub fn order_by_renamed(mut select: Select) -> Select {
    for o in &mut select.order {
        let overlapping: Vec<&Field> = select
            .fields
            .iter()
            .filter(|f| {
                output_path(f).is_some_and(|p| p.starts_with(&o.path) || o.path.starts_with(p))
            })
            .collect();
        let omitted = select
            .omit
            .iter()
            .any(|p| p.starts_with(&o.path) || o.path.starts_with(p));
        if let (
            [
                Field::Expr {
                    expr: Expr::Field(stored),
                    alias: Some(alias),
                },
            ],
            false,
        ) = (overlapping.as_slice(), omitted)
            && *alias == o.path
        {
            // The alias holds what the projection read, links followed.
            o.fetch = may_fetch(stored);
            o.path = stored.clone();
        }
    }
    for f in &mut select.fields {
        if let Field::Subquery { query, .. } = f {
            **query = order_by_renamed(std::mem::take(&mut **query));
        }
    }
    select
}

/// The first `ORDER BY` path of `select` (or of a subquery in it) that
/// overlaps a field the projection computes: an `expr AS alias` other than
/// a stored field under its own name. Overlap either way (`ORDER BY a` with
/// `x AS a.b`, `ORDER BY a.b` with `x AS a`) changes what is sorted on.
pub fn order_by_computed(select: &Select) -> Option<PlanError> {
    let text = |p: &[PathPart]| {
        p.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(".")
    };
    for field in &select.fields {
        // A field list path is its own output name (`SELECT author.name`).
        let (expr, alias) = match field {
            // `out.*` under its own name: SurrealDB fetches the record after
            // it sorted, so `ORDER BY out.start` sorts as without it, on the
            // stored `out` with links not followed (measured on 3.3.5:
            // `ORDER BY out`, `out.start`, ASC and DESC, with record ids,
            // missing records, arrays, objects and numbers in `out`).
            Field::LinkAll { field, alias }
                if alias.as_slice() == [PathPart::Field(field.clone())] =>
            {
                continue;
            }
            // Computed whatever their name: `author.* AS a`, `count(<-likes)`.
            Field::LinkAll { alias, .. } | Field::Computed { alias: Some(alias) } => {
                if let Some(o) = select
                    .order
                    .iter()
                    .find(|o| o.path.starts_with(alias) || alias.starts_with(&o.path))
                {
                    return Some(PlanError::OrderByComputed {
                        order: text(&o.path),
                        field: text(alias),
                    });
                }
                continue;
            }
            Field::Expr {
                expr,
                alias: Some(alias),
            } => (expr, alias),
            Field::Expr {
                expr: expr @ Expr::Field(path),
                alias: None,
            } => (expr, path),
            _ => continue,
        };
        // A stored field under its own name sorts as stored: SurrealDB reads
        // an `ORDER BY` path that names no alias on the record, links not
        // followed (measured: `SELECT id, link.title ... ORDER BY
        // link.title` sorts as NONE), so it overlaps nothing computed.
        if matches!(expr, Expr::Field(p) if p == alias) {
            continue;
        }
        for o in &select.order {
            if o.path.starts_with(alias) || alias.starts_with(&o.path) {
                return Some(PlanError::OrderByComputed {
                    order: text(&o.path),
                    field: text(alias),
                });
            }
        }
    }
    select.fields.iter().find_map(|f| match f {
        Field::Subquery { query, .. } => order_by_computed(query),
        _ => None,
    })
}

/// The parameter a `FETCH` child's plan binds to the linked record id.
pub const FETCH_PARAM: &str = "__fetch";

/// A `FETCH` field of a plan, and what its rows hold there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchField {
    pub field: FieldName,
    /// The projection writes only paths of the field (`user.id,
    /// user.name`), `user.id` among them, so the row holds an object, which
    /// `FETCH` leaves as it is (measured on 3.3.5). Its `id` is the linked
    /// record's id while that record exists, and such an object is a
    /// member in the re-query tier's rows: so the linked record is a member
    /// when the field holds a record id itself (not in an array: `links.id`
    /// is an array of ids then, no record).
    pub ids_only: bool,
    /// `FETCH comments.user`: what is fetched in each record fetched here.
    pub nested: Vec<FetchField>,
    /// `(SELECT ... FROM $parent.field)[0]`: the one record the field names;
    /// of an array there, the first record that exists (see
    /// `Engine::fetch_children`), bound again as they come and go.
    pub first_only: bool,
}

/// The fetch tree of `paths` (`[user]`, `[user, org]`): in a fetched
/// record, which is whole, every field is stored.
fn nested_fetches(paths: &[&[FieldName]]) -> Vec<FetchField> {
    let mut out: Vec<FetchField> = Vec::new();
    for p in paths {
        let Some((first, _)) = p.split_first() else {
            continue;
        };
        if out.iter().any(|f| f.field == *first) {
            continue;
        }
        let deeper: Vec<&[FieldName]> = paths
            .iter()
            .filter(|q| q.first() == Some(first) && q.len() > 1)
            .map(|q| &q[1..])
            .collect();
        out.push(FetchField {
            field: first.clone(),
            ids_only: false,
            nested: nested_fetches(&deeper),
            first_only: false,
        });
    }
    out
}

/// The `FETCH` fields of `select` that its rows hold as stored (`*`, or the
/// field under its own name), or as the object of its paths with `id`
/// among them (see [`FetchField::ids_only`]): SurrealDB fetches in the
/// rows, so a field the projection leaves out is not fetched (measured:
/// `SELECT id ... FETCH author` fetches nothing), nor one whose paths
/// leave out `id` (its object holds no record). A field the projection
/// computes otherwise, omits or renames, and `SELECT VALUE`, are the
/// re-query tier's.
pub fn fetched_fields(select: &Select) -> Result<Vec<FetchField>, PlanError> {
    let mut out = Vec::new();
    // `author.* AS a`: the linked records, whole, unless a later field
    // writes over them or `OMIT` drops them (the re-query tier's cases).
    let outputs: Vec<Option<&[PathPart]>> = select.fields.iter().map(output_path).collect();
    for (i, f) in select.fields.iter().enumerate() {
        let Field::LinkAll { field, alias } = f else {
            continue;
        };
        let overlaps = |p: &[PathPart]| p.starts_with(alias) || alias.starts_with(p);
        // `out.*, out.start` (playrbase's registrations): a stored path of
        // the field under its own name writes the value it reads through
        // the link into the fetched record (its `start` again; for an
        // array of links, the array of starts into each), never its `id`:
        // the same records (measured on 3.3.5).
        let own_name = alias.as_slice() == [PathPart::Field(field.clone())];
        let same_records = |j: usize| {
            own_name
                && matches!(&select.fields[j], Field::Expr { expr: Expr::Field(p), alias: None }
                    if p.len() > 1
                        && p[0] == PathPart::Field(field.clone())
                        && matches!(&p[1], PathPart::Field(x) if x.as_ref() != "id"))
        };
        let clash = |j: usize| outputs[j].is_some_and(overlaps) && !same_records(j);
        let later = (i + 1..select.fields.len()).any(clash);
        let earlier = (0..i).any(clash);
        if later || earlier || select.omit.iter().any(|p| overlaps(p)) {
            return Err(PlanError::Unsupported(format!(
                "`{field}.*` where the projection also writes or omits `{}`",
                alias
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(".")
            )));
        }
        if !out.iter().any(|f: &FetchField| f.field == *field) {
            out.push(FetchField {
                field: field.clone(),
                ids_only: false,
                nested: Vec::new(),
                first_only: false,
            });
        }
    }
    for f in &select.fetch {
        let at = [PathPart::Field(f.clone())];
        let overlaps = |p: &[PathPart]| p.starts_with(&at) || at.starts_with(p);
        let refuse = |why: &str| {
            Err(PlanError::Unsupported(format!(
                "`FETCH {f}` of a field the projection {why}"
            )))
        };
        if select.value {
            return refuse("turns into values (`SELECT VALUE`)");
        }
        if select.omit.iter().any(|p| overlaps(p)) {
            return refuse("omits");
        }
        let mut stored = false;
        // Paths of the field (`user.id`, `user.name`): after the field's own
        // name, each a field name.
        let mut paths = 0;
        let mut id = 0;
        let mut under_id = 0;
        for field in &select.fields {
            match field {
                Field::All => stored = true,
                Field::Expr {
                    expr: Expr::Field(p),
                    alias: None,
                } if *p == at => stored = true,
                Field::Expr {
                    expr: Expr::Field(p),
                    alias: None,
                } if p.len() > 1
                    && p[0] == at[0]
                    && p[1..].iter().all(|x| matches!(x, PathPart::Field(_))) =>
                {
                    paths += 1;
                    if matches!(&p[1], PathPart::Field(n) if n.as_ref() == "id") {
                        if p.len() == 2 {
                            id += 1;
                        } else {
                            under_id += 1;
                        }
                    }
                }
                Field::Expr { expr, alias } => {
                    let written = alias.as_deref().or(match expr {
                        Expr::Field(p) => Some(p.as_slice()),
                        _ => None,
                    });
                    if written.is_some_and(overlaps) {
                        return refuse("computes");
                    }
                    // `*, link AS l ... FETCH link`: SurrealDB 3.3.5 leaves
                    // `link` unfetched then (found by the differential).
                    if matches!(expr, Expr::Field(p) if overlaps(p)) {
                        return refuse("also shows under another name");
                    }
                }
                Field::Subquery { alias, .. } | Field::Computed { alias } => {
                    if alias.as_deref().is_some_and(overlaps) {
                        return refuse("computes");
                    }
                }
                Field::LinkAll { alias, .. } => {
                    if overlaps(alias) {
                        return refuse("computes");
                    }
                }
            }
        }
        if paths > 0 && (stored || (id > 0 && under_id > 0)) {
            // `*, user.name`, `user.id, user.id.x`: rows SSP does not model.
            return refuse("computes");
        }
        let ids_only = paths > 0 && id > 0;
        let deeper: Vec<&[FieldName]> = select
            .fetch_nested
            .iter()
            .filter(|(first, _)| first == f)
            .map(|(_, rest)| rest.as_slice())
            .collect();
        if !deeper.is_empty() && (ids_only || (!stored && paths > 0)) {
            // `user.id ... FETCH user.org`: the row holds no record there.
            return refuse("computes, through a nested `FETCH`");
        }
        if !deeper.is_empty() && out.iter().any(|x| x.field == *f) {
            // Also shown whole by `f.*`: the re-query tier's.
            return refuse("also shows whole (`.*`), through a nested `FETCH`");
        }
        if (stored || ids_only) && !out.iter().any(|x| x.field == *f) {
            out.push(FetchField {
                field: f.clone(),
                ids_only,
                nested: nested_fetches(&deeper),
                first_only: false,
            });
        }
    }
    Ok(out)
}

/// The first `FETCH` of `select` or a subquery in it that the engine does
/// not maintain (see [`fetched_fields`]).
pub fn fetch_unsupported(select: &Select) -> Option<PlanError> {
    if let Err(e) = fetched_fields(select) {
        return Some(e);
    }
    select.fields.iter().find_map(|f| match f {
        Field::Subquery { query, .. } => fetch_unsupported(query),
        _ => None,
    })
}

/// Whether `ORDER BY` term `o` sorts on a value the projection fetched
/// through links: only an alias does (see [`crate::engine::ast::Order::fetch`]).
pub(super) fn order_fetches(o: &crate::engine::ast::Order) -> bool {
    o.fetch && may_fetch(&o.path)
}
