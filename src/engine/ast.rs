//! The parsed form of the supported SurrealQL subset.
//!
//! This is deliberately small: everything here is something the engine can
//! maintain incrementally. The parser (`parser/`: SurrealDB's own, whose AST
//! it lowers into this one) refuses anything else with a
//! [`crate::engine::parser::ParseError`] that names the construct, so no
//! clause is ever silently dropped.

use serde::{Deserialize, Serialize};

use super::value::{PathPart, Value};

/// `SELECT [VALUE] <fields> [OMIT ..] FROM [ONLY] <table or ids> [WHERE ..]
/// [ORDER BY ..] [LIMIT ..] [START ..]`
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Select {
    /// `SELECT VALUE <expr>`: rows are values, not objects. Which records a
    /// view holds does not change (SurrealDB still orders by the record's
    /// fields), so the engine only needs to know it for `ORDER BY` checks.
    pub value: bool,
    pub fields: Vec<Field>,
    /// `OMIT a, b.c`: fields dropped from each row after the projection.
    /// Only a subquery projection it drops changes the view's records.
    pub omit: Vec<Vec<PathPart>>,
    /// `FROM ONLY`: one row instead of a list. Kept only where it cannot
    /// fail (one record id, or a window of at most one row).
    pub only: bool,
    /// The table read. Empty until [`crate::engine::plan::resolve::resolve`] fills it
    /// from `ids` when those come from a `$param`.
    pub table: String,
    /// `FROM t:1`, `FROM [t:1, t:2]`, `FROM $ids`: the rows are these
    /// records of `table` (a literal record id, an array literal of them,
    /// or a parameter without a path). `resolve` lowers it to an `id`
    /// condition once the parameters are known.
    pub ids: Option<Expr>,
    pub filter: Option<Expr>,
    pub order: Vec<Order>,
    /// `LIMIT n`: an integer literal or a `$param` holding one.
    pub limit: Option<Expr>,
    /// `START n`: an integer literal or a `$param` holding one.
    pub start: Option<Expr>,
    /// `FETCH a, b`: fields whose record links SurrealDB replaces by the
    /// linked records in each row; those records are members of the view.
    /// `FETCH a.b` fetches `a` (listed here) and then `b` in each record
    /// fetched there (see `fetch_nested`).
    #[serde(default)]
    pub fetch: Vec<super::value::FieldName>,
    /// `FETCH a.b.c`: `(a, [b, c])`, one per such path.
    #[serde(default)]
    pub fetch_nested: Vec<(super::value::FieldName, Vec<super::value::FieldName>)>,
    /// `FROM $parent<-wrote<-user` (in a subquery): the graph steps from
    /// the including record, `table` left empty. Lowered by
    /// [`crate::engine::plan::resolve::lower_graph`] into a plain select
    /// over the relation table, which then clears it.
    #[serde(default)]
    pub graph: Vec<GraphStep>,
    /// Set by the lowering of a two-step traversal: the rows are the
    /// records this field of each selected edge names (`in` or `out`), not
    /// the edges, which are no members of the view.
    #[serde(default)]
    pub through: Option<super::value::FieldName>,
    /// What the lowering of a traversal leaves for the engine to check
    /// on the data (see [`GraphChecks`]).
    #[serde(default)]
    pub graph_checks: Option<GraphChecks>,
    /// Tables that must hold no record shaped like an edge for the
    /// traversals lowered out of this select's `WHERE` to stay exact (see
    /// [`crate::engine::plan::resolve::lower_row_traversals`]); checked as
    /// [`GraphChecks::no_edges_in`] is.
    #[serde(default)]
    pub no_edges_in: Vec<String>,
}

/// The cases of a lowered traversal that SurrealDB answers from its graph
/// index and the lowered select cannot see, checked on the data: any of
/// them sends the view to the re-query tier rather than differ.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GraphChecks {
    /// `$parent->wrote` where the including record is itself an edge (of a
    /// table that is not `TYPE RELATION`, so SSP cannot tell from its
    /// data): its own `out` counts too when it names a `wrote` record.
    /// `(field, table)`: the parent's field and the step's table.
    pub parent_edge: Option<(String, String)>,
    /// A step from an edge to a table that is not `TYPE RELATION` (`<-user`
    /// from a `wrote` edge): an edge *in* that table pointing at the `wrote`
    /// edge counts too. SSP holds such a table to hold no record with
    /// record ids in both `in` and `out`.
    pub no_edges_in: Option<String>,
}

/// One step of a graph traversal: `->table` or `<-table`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GraphStep {
    /// `->`: from a record to the edges whose `in` it is (and from an edge
    /// to its `out`); `<-` the other way round.
    pub out: bool,
    pub table: String,
}

impl GraphStep {
    /// The edge field that names where a step comes from (`in` for `->`).
    pub fn from_field(&self) -> &'static str {
        if self.out { "in" } else { "out" }
    }

    /// The edge field that names where a step goes (`out` for `->`).
    pub fn to_field(&self) -> &'static str {
        if self.out { "out" } else { "in" }
    }

    pub fn arrow(&self) -> &'static str {
        if self.out { "->" } else { "<-" }
    }
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
    /// `field.* [AS alias]`: the record `field` links to (or each one
    /// directly in an array of links), whole, as `FETCH field` shows it; those
    /// records are members of the view.
    LinkAll {
        field: super::value::FieldName,
        /// Where the row shows it: `field` itself without `AS`.
        alias: Vec<PathPart>,
    },
    /// A value the rows show that SSP never evaluates, because it cannot
    /// change which records a view holds and cannot fail: a traversal from
    /// the row (`<-owns<-user AS owners`, `->likes->post.id`), `count(`
    /// of one `)`, `$param IN` one, and a path after a subquery
    /// (`(SELECT name FROM ...)[0].name AS by`: a value, so its records
    /// are no members, as in the re-query tier). `ORDER BY` or `FETCH` of
    /// it is the re-query tier's.
    Computed { alias: Option<Vec<PathPart>> },
    /// `(SELECT ...)[index] [AS alias]`: every record the subquery selects for
    /// an included parent record joins the view's result set. With `[index]`,
    /// only that element of the subquery's result does.
    Subquery {
        query: Box<Select>,
        index: Option<Pick>,
        alias: Option<Vec<PathPart>>,
    },
}

/// Which one element of a subquery's result a projection keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Pick {
    /// `[n]` (`[0]` also as `.first()`).
    At(usize),
    /// `[$]`: the last element. The planner reads it as `[0]` of the
    /// reversed order (see `plan::Planner`), so it is kept only where
    /// the whole result is the window: no `LIMIT` or `START`.
    Last,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    pub path: Vec<PathPart>,
    pub descending: bool,
    /// An `ORDER BY` alias sorts on the projected value, fetched through
    /// links (`author.name AS n ... ORDER BY n`); any other path is read on
    /// the record without following links (`ORDER BY author.name` sorts as
    /// NONE, whatever the projection). Measured on 3.3.5; set by
    /// [`crate::engine::plan::projection::order_by_renamed`], never by the parser.
    #[serde(default)]
    pub fetch: bool,
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
    /// `x IN (SELECT VALUE path FROM table [WHERE ..])`: an uncorrelated
    /// subquery on the right of `IN`/`NOT IN` (`INSIDE`, `∈`, ...). The
    /// engine evaluates it over its store when the view registers and binds
    /// the array under a param of its own (see `param_links`); a change to
    /// `table` evaluates it again, and the view registers again if the
    /// array changed. Never left in a plan.
    Subquery(Box<Select>),
    /// `->wrote->post` / `<-owns<-user` from the row, on the right of
    /// `IN`/`NOT IN` (`INSIDE`, `∈`, ...) with a value that reads no row on
    /// the left (`$user IN <-owns<-user`). Lowered before the view is
    /// planned into `id IN (SELECT VALUE ... FROM owns WHERE ...)`, a
    /// [`Expr::Subquery`] (see
    /// [`crate::engine::plan::resolve::lower_row_traversals`]); never left
    /// in a plan.
    Traversal(Vec<GraphStep>),
    /// `time::now()`, or `time::now()` plus or minus a duration literal
    /// (`time::now() - 35s`), as one side of `<`, `<=`, `>` or `>=` in a
    /// `WHERE` (see [`crate::engine::clock`]): its value is the engine's
    /// clock moved by `offset_ns`. Such a comparison changes its answer at
    /// one instant per record, which the engine computes and waits for.
    Now { offset_ns: i64 },
    /// `+`, `-`, `*` of integers, in the outer query's `LIMIT` and `START`
    /// only (`START ($page - 1) * 50`): bound once from the view's params.
    Arith {
        op: ArithOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// A path on a computed value: `array::last(content).text`, as the
    /// body of a user function (see `parser::functions`) may have it. The
    /// value is taken as SurrealDB takes a path on any value (NONE where
    /// it leads nowhere).
    Get { of: Box<Expr>, path: Vec<PathPart> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
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
    /// `string::slice(s, start, end)` (`end` exclusive; negative ones count
    /// from the end; a missing one is the end of the string), in chars,
    /// as SurrealDB 3.3.5's `surrealdb-runtime` slices. The parser takes
    /// integer literals for `start` and `end` only, so only `s` can make it
    /// fail in SurrealDB.
    StringSlice,
    /// `array::len(a)`
    ArrayLen,
    /// `array::first(a)`: NONE for `[]` (SurrealDB fails the query on
    /// anything but an array).
    ArrayFirst,
    /// `array::last(a)`: as `array::first`.
    ArrayLast,
    /// `record::id(id)` (also `meta::id`): the key of a record id. The parser
    /// takes it only on `id` or `$parent.id`, which always hold a record, so
    /// it never fails as it does in SurrealDB on anything else.
    RecordKey,
    /// `record::tb(id)` (also `meta::tb`, `record::table`): its table name.
    RecordTable,
}

impl Expr {
    /// Whether it reads `time::now()` (see [`Expr::Now`]), its subqueries
    /// included.
    pub fn reads_the_clock(&self) -> bool {
        match self {
            Expr::Now { .. } => true,
            Expr::Literal(_) | Expr::Field(_) | Expr::Param { .. } | Expr::Traversal(_) => false,
            Expr::Array(items) | Expr::Call { args: items, .. } => {
                items.iter().any(Expr::reads_the_clock)
            }
            Expr::Not(x) | Expr::Get { of: x, .. } => x.reads_the_clock(),
            Expr::Binary { lhs, rhs, .. } | Expr::Arith { lhs, rhs, .. } => {
                lhs.reads_the_clock() || rhs.reads_the_clock()
            }
            Expr::Subquery(q) => q.filter.as_ref().is_some_and(Expr::reads_the_clock),
        }
    }
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Function::StringStartsWith => "string::starts_with",
            Function::StringEndsWith => "string::ends_with",
            Function::StringContains => "string::contains",
            Function::StringLowercase => "string::lowercase",
            Function::StringUppercase => "string::uppercase",
            Function::StringSlice => "string::slice",
            Function::ArrayLen => "array::len",
            Function::ArrayFirst => "array::first",
            Function::ArrayLast => "array::last",
            Function::RecordKey => "record::id",
            Function::RecordTable => "record::tb",
        }
    }

    pub fn arity(self) -> usize {
        match self {
            Function::StringSlice => 3,
            Function::StringStartsWith | Function::StringEndsWith | Function::StringContains => 2,
            Function::StringLowercase
            | Function::StringUppercase
            | Function::ArrayLen
            | Function::ArrayFirst
            | Function::ArrayLast
            | Function::RecordKey
            | Function::RecordTable => 1,
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
            "string::slice" => Function::StringSlice,
            "array::len" => Function::ArrayLen,
            "array::first" => Function::ArrayFirst,
            "array::last" => Function::ArrayLast,
            "record::id" | "meta::id" => Function::RecordKey,
            "record::tb" | "meta::tb" | "record::table" => Function::RecordTable,
            _ => return None,
        })
    }
}
