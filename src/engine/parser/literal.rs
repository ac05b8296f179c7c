//! Literals that carry structure: datetimes and record ids.

use super::*;

impl<'a> Parser<'a> {
    pub(super) fn parse_datetime(&self, t: &Token, s: &str) -> PResult<DateTime<Utc>> {
        // SurrealDB's own datetime grammar (RFC 3339 plus date-only and a
        // space separator), so SSP reads `d"..."` exactly as SurrealDB does.
        surrealdb_syn::lexer::Lexer::lex_datetime(s)
            .map(|d| d.into_inner())
            .map_err(|_| self.error(t.start, "invalid datetime", &format!("{s:?}"), None))
    }

    /// `table:key`, the table token `t` being next.
    pub(super) fn parse_record_id(&mut self, t: &Token) -> PResult<RecordId> {
        let table = t.ident().unwrap_or("").to_string();
        self.bump(t);
        let colon = self.expect_punct(":", "`:`")?;
        if colon.ws_before {
            return Err(self.unexpected(&colon, "no whitespace in a record id"));
        }
        let (key, end) = self.parse_record_key(colon.end)?;
        self.pos = end;
        // Ranges: `t:1..5`, `t:1>..`, `t:..`.
        if self.src[end..].starts_with("..")
            || self.src[end..].starts_with('>') && self.src[end + 1..].starts_with("..")
        {
            return Err(self.refuse(
                t.start,
                "record id range",
                "record ranges are not supported",
            ));
        }
        Ok(RecordId::new(table, key))
    }

    /// The key of a record id starting at byte `i` (right after the `:`),
    /// with SurrealDB's rules (including flexible keys like `user:1abc`).
    pub(super) fn parse_record_key(&self, i: usize) -> PResult<(Key, usize)> {
        let b = self.bytes();
        let at = |j: usize| b.get(j).copied();
        let digits_end = |mut j: usize| {
            while matches!(at(j), Some(b'0'..=b'9' | b'_')) {
                j += 1;
            }
            j
        };
        let word_end = |mut j: usize| {
            while at(j).is_some_and(is_ident_continue) {
                j += 1;
            }
            j
        };
        let refuse_key = |what: &str| {
            Err(self.refuse(
                i,
                &format!("{what} record id key"),
                "only integer, string and uuid record id keys are supported",
            ))
        };
        if self.src[i..].starts_with("..") {
            return Err(self.refuse(i, "record id range", "record ranges are not supported"));
        }
        match at(i) {
            Some(b'`') => {
                let (k, end) = self.lex_quoted(i, 1, '`')?;
                Ok((Key::String(k.into()), end))
            }
            Some(b'u') if matches!(at(i + 1), Some(b'"' | b'\'')) => {
                let quote = at(i + 1).unwrap_or(b'"');
                let (text, end) = self.lex_string(i + 2, quote)?;
                match text.parse::<sdb::Uuid>() {
                    Ok(u) => Ok((Key::Uuid(*u.into_inner().as_bytes()), end)),
                    Err(e) => Err(self.error(i, "invalid uuid", &e.to_string(), None)),
                }
            }
            Some(b'{') => refuse_key("object"),
            Some(b'[') => refuse_key("array"),
            Some(sign @ (b'+' | b'-')) => {
                if !at(i + 1).is_some_and(|x| x.is_ascii_digit()) {
                    return Err(self.error(
                        i,
                        "invalid record id",
                        "expected an integer key",
                        None,
                    ));
                }
                let end = digits_end(i + 1);
                let digits = &self.src[i + 1..end];
                let key = match (sign, digits.parse::<u64>()) {
                    (b'+', Ok(n)) if n <= i64::MAX as u64 => Key::Int(n as i64),
                    (b'-', Ok(n)) if n <= i64::MAX as u64 + 1 => {
                        Key::Int((n as i128).wrapping_neg() as i64)
                    }
                    (b'+', _) => Key::String(digits.into()),
                    _ => Key::String(format!("-{digits}").into()),
                };
                Ok((key, end))
            }
            Some(b'0'..=b'9') => {
                let end = digits_end(i);
                if at(end).is_some_and(|x| x.is_ascii_alphabetic() || x == b'_') {
                    // Flexible key: digits directly followed by an identifier.
                    let end = word_end(end);
                    return Ok((Key::String(self.src[i..end].into()), end));
                }
                let digits = &self.src[i..end];
                let key = match digits.parse::<i64>() {
                    Ok(n) => Key::Int(n),
                    Err(_) => Key::String(digits.into()),
                };
                Ok((key, end))
            }
            Some(x) if x.is_ascii_alphabetic() || x == b'_' => {
                let end = word_end(i);
                let word = &self.src[i..end];
                let generated = ["ULID", "UUID", "RAND"]
                    .iter()
                    .any(|g| word.eq_ignore_ascii_case(g));
                if generated && self.lex(end)?.is("(") {
                    return refuse_key("generated");
                }
                Ok((Key::String(word.into()), end))
            }
            _ if self.char_at(i) == Some('⟨') => {
                let (k, end) = self.lex_quoted(i, '⟨'.len_utf8(), '⟩')?;
                Ok((Key::String(k.into()), end))
            }
            _ => Err(self.error(i, "invalid record id", "expected a record id key", None)),
        }
    }

    /// The content of `r"table:key"`.
    pub(super) fn parse_record_id_string(&self, t: &Token, s: &str) -> PResult<RecordId> {
        let bad = || self.error(t.start, "invalid record id string", &format!("{s:?}"), None);
        let inner = Parser::new(s);
        let first = inner.peek().map_err(|_| bad())?;
        if first.ident().is_none() {
            return Err(bad());
        }
        let colon = inner.peek_after(&first).map_err(|_| bad())?;
        if !colon.is(":") || colon.ws_before {
            return Err(bad());
        }
        if s[colon.end..].starts_with("..") {
            return Err(self.refuse(
                t.start,
                "record id range",
                "record ranges are not supported",
            ));
        }
        let (key, end) = inner
            .parse_record_key(colon.end)
            .map_err(|e| match e.construct {
                Some(_) => self.refuse(
                    t.start,
                    e.construct.as_deref().unwrap_or(""),
                    "only integer, string and uuid record id keys are supported",
                ),
                None => bad(),
            })?;
        if end != s.len() {
            return Err(bad());
        }
        Ok(RecordId::new(first.ident().unwrap_or(""), key))
    }
}
