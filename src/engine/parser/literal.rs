//! Literals, as SurrealDB's parser read them, and record ids.

use super::*;

impl Lower<'_> {
    pub(super) fn literal(&self, l: sql::Literal) -> PResult<Expr> {
        let refused = |needle: &str, construct: &str| {
            Err(self.refuse(needle, construct, "not supported in SSP queries"))
        };
        let v = match l {
            sql::Literal::None => Value::None,
            sql::Literal::Null => Value::Null,
            sql::Literal::Bool(b) => Value::Bool(b),
            sql::Literal::Integer(i) => Value::Number(Number::Int(i)),
            sql::Literal::Float(f) => Value::Number(Number::Float(f)),
            sql::Literal::Decimal(d) => Value::decimal(d),
            sql::Literal::Duration(d) => Value::duration(d),
            sql::Literal::String(s) => Value::str(s.as_str()),
            sql::Literal::Datetime(d) => Value::datetime(d),
            sql::Literal::Uuid(u) => Value::uuid(u),
            sql::Literal::RecordId(r) => Value::thing(self.record_id(r)?),
            sql::Literal::Array(items) => {
                return Ok(Expr::Array(
                    items
                        .into_iter()
                        .map(|i| self.expr(i))
                        .collect::<PResult<_>>()?,
                ));
            }
            sql::Literal::UnboundedRange => {
                return Err(self.refuse("..", "range", "ranges are not supported in SSP queries"));
            }
            sql::Literal::Set(_) => return refused("{", "set literal"),
            sql::Literal::Regex(_) => return refused("/", "regex literal"),
            sql::Literal::Object(_) => {
                return Err(self.refuse(
                    "{",
                    "object literal or block",
                    "objects and blocks are not supported in SSP queries",
                ));
            }
            sql::Literal::Geometry(_) => {
                return Err(self.refuse("(", "geometry point", "geometries are not supported"));
            }
            sql::Literal::File(_) => return refused("f", "file literal"),
            sql::Literal::Bytes(_) => return refused("b", "bytes literal"),
        };
        Ok(Expr::Literal(v))
    }

    /// `table:key` with an integer, string or uuid key.
    pub(super) fn record_id(&self, r: sql::RecordIdLit) -> PResult<RecordId> {
        let table = r.table.as_str();
        let refuse_key = |what: &str| {
            Err(self.refuse(
                &format!("{table}:"),
                &format!("{what} record id key"),
                "only integer, string and uuid record id keys are supported",
            ))
        };
        let key = match r.key {
            sql::RecordIdKeyLit::Number(n) => Key::Int(n),
            sql::RecordIdKeyLit::String(s) => Key::String(s.as_str().into()),
            sql::RecordIdKeyLit::Uuid(u) => Key::Uuid(*u.as_bytes()),
            sql::RecordIdKeyLit::Array(_) => return refuse_key("array"),
            sql::RecordIdKeyLit::Object(_) => return refuse_key("object"),
            sql::RecordIdKeyLit::Generate(_) => return refuse_key("generated"),
            sql::RecordIdKeyLit::Range(_) => {
                return Err(self.refuse(
                    &format!("{table}:"),
                    "record id range",
                    "record ranges are not supported",
                ));
            }
        };
        Ok(RecordId::new(table, key))
    }
}
