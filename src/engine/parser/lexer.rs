//! The lexer: SurrealDB's tokens, read on demand from the text.

use super::*;

/// A token. Keywords are not a token kind: as in SurrealDB, almost every
/// keyword is also a valid identifier, so the parser decides by context
/// whether an unquoted [`Tok::Word`] is a keyword.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// An unquoted identifier or keyword, as written.
    Word(String),
    /// A `` `quoted` `` or `⟨quoted⟩` identifier, unescaped. Never a keyword.
    Quoted(String),
    /// A run of digits (and `_`). The parser lexes the full number from its
    /// start, because what follows the digits depends on the context (a
    /// number, a duration, a record id key).
    Digits,
    /// A string literal `'..'`, `".."`, `s'..'`, unescaped.
    Str(String),
    /// A prefixed string `d'..'`, `r'..'`, `u'..'`, `b'..'`, `f'..'`: the
    /// prefix and the unescaped content.
    Prefixed(char, String),
    /// `$name`, `` $`name` ``, `$⟨name⟩`: the name.
    Param(String),
    /// Punctuation and operators.
    Punct(&'static str),
    Eof,
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    /// Byte offset of the first byte.
    pub(super) start: usize,
    /// Byte offset just past the last byte.
    pub(super) end: usize,
    /// Whether whitespace or a comment precedes the token. SurrealDB is
    /// whitespace-sensitive in a few places (`user:1`, `-5`, `<-`).
    pub(super) ws_before: bool,
}

impl Token {
    pub(super) fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    pub(super) fn is(&self, p: &str) -> bool {
        matches!(self.tok, Tok::Punct(x) if x == p)
    }

    /// A word that names something (an identifier): unquoted or quoted.
    pub(super) fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Word(w) | Tok::Quoted(w) => Some(w),
            _ => None,
        }
    }
}

/// Single-line comment terminators besides `\n` and `\r`, as SurrealDB has them.
pub(super) fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{0085}')
}

/// Non-ASCII whitespace SurrealDB skips.
pub(super) fn is_unicode_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

pub(super) fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The 1-based line and character column of byte offset `at`.
pub(super) fn line_col(src: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(src.len());
    while !src.is_char_boundary(at) {
        at -= 1;
    }
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Unescapes the content of a string or quoted identifier with SurrealDB's
/// escapes: `\n \r \t \0 \\ \b \f \' \" \`` and `\uXXXX` / `\u{X..}`.
/// Returns the byte offset (within `content`) of a bad escape on error.
pub(super) fn unescape(content: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(content.len());
    let mut chars = content.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err((i, "missing escape character".into()));
        };
        match e {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            '0' => out.push('\0'),
            '\\' => out.push('\\'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            '`' => out.push('`'),
            'u' => {
                let mut code: u32 = 0;
                if chars.peek().map(|(_, c)| *c) == Some('{') {
                    chars.next();
                    let mut closed = false;
                    for _ in 0..7 {
                        match chars.next() {
                            Some((_, '}')) => {
                                closed = true;
                                break;
                            }
                            Some((_, h)) if h.is_ascii_hexdigit() => {
                                code = code * 16 + h.to_digit(16).unwrap_or(0);
                            }
                            _ => break,
                        }
                    }
                    if !closed {
                        return Err((i, "invalid unicode escape".into()));
                    }
                } else {
                    for _ in 0..4 {
                        match chars.next() {
                            Some((_, h)) if h.is_ascii_hexdigit() => {
                                code = code * 16 + h.to_digit(16).unwrap_or(0);
                            }
                            _ => return Err((i, "invalid unicode escape".into())),
                        }
                    }
                }
                match char::from_u32(code) {
                    Some(c) => out.push(c),
                    None => return Err((i, "unicode escape is not a valid character".into())),
                }
            }
            other => return Err((i, format!("invalid escape sequence `\\{other}`"))),
        }
    }
    Ok(out)
}

/// A number literal as lexed: a number, or the `dec` and duration
/// literals that start like one.
pub(super) enum NumLit {
    Int(i64),
    Float(f64),
    Decimal(Decimal),
    Duration(std::time::Duration),
}

impl NumLit {
    pub(super) fn into_value(self) -> Value {
        match self {
            NumLit::Int(i) => Value::Number(Number::Int(i)),
            NumLit::Float(f) => Value::Number(Number::Float(f)),
            NumLit::Decimal(d) => Value::decimal(d),
            NumLit::Duration(d) => Value::duration(d),
        }
    }
}

impl<'a> Parser<'a> {
    pub(super) fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    pub(super) fn char_at(&self, i: usize) -> Option<char> {
        self.src.get(i..).and_then(|s| s.chars().next())
    }

    /// Skips whitespace and comments (`--`, `//`, `#`, `/* */`) from `i`.
    pub(super) fn skip_trivia(&self, mut i: usize) -> PResult<usize> {
        let b = self.bytes();
        while i < b.len() {
            match b[i] {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C => i += 1,
                b'#' => i = self.line_end(i + 1),
                b'-' if b.get(i + 1) == Some(&b'-') => i = self.line_end(i + 2),
                b'/' if b.get(i + 1) == Some(&b'/') => i = self.line_end(i + 2),
                b'/' if b.get(i + 1) == Some(&b'*') => match self.src[i + 2..].find("*/") {
                    Some(off) => i = i + 2 + off + 2,
                    None => {
                        return Err(self.error(i, "unterminated comment", "missing `*/`", None));
                    }
                },
                x if x >= 0x80 => match self.char_at(i) {
                    Some(c) if is_unicode_space(c) => i += c.len_utf8(),
                    _ => break,
                },
                _ => break,
            }
        }
        Ok(i)
    }

    /// The offset just past the end of the single-line comment containing `i`.
    pub(super) fn line_end(&self, i: usize) -> usize {
        let rest = match self.src.get(i..) {
            Some(r) => r,
            None => return self.src.len(),
        };
        for (off, c) in rest.char_indices() {
            match c {
                '\n' => return i + off + 1,
                '\r' => {
                    let after = i + off + 1;
                    return if self.bytes().get(after) == Some(&b'\n') {
                        after + 1
                    } else {
                        after
                    };
                }
                c if is_line_separator(c) => return i + off + c.len_utf8(),
                _ => {}
            }
        }
        self.src.len()
    }

    /// Lexes the token starting at or after `from`.
    pub(super) fn lex(&self, from: usize) -> PResult<Token> {
        let start = self.skip_trivia(from)?;
        let ws_before = start > from;
        let b = self.bytes();
        let at = |i: usize| b.get(i).copied();
        let Some(first) = at(start) else {
            return Ok(Token {
                tok: Tok::Eof,
                start,
                end: start,
                ws_before,
            });
        };
        let punct = |p: &'static str| -> (Tok, usize) { (Tok::Punct(p), start + p.len()) };
        let (tok, end) = match first {
            b'{' => punct("{"),
            b'}' => punct("}"),
            b'[' => punct("["),
            b']' => punct("]"),
            b'(' => punct("("),
            b')' => punct(")"),
            b';' => punct(";"),
            b',' => punct(","),
            b'~' => punct("~"),
            b'@' => punct("@"),
            b'%' => punct("%"),
            b'/' => punct("/"),
            b'|' if at(start + 1) == Some(b'|') => punct("||"),
            b'|' => punct("|"),
            b'&' if at(start + 1) == Some(b'&') => punct("&&"),
            b'.' if at(start + 1) == Some(b'.') && at(start + 2) == Some(b'.') => punct("..."),
            b'.' if at(start + 1) == Some(b'.') => punct(".."),
            b'.' => punct("."),
            b'!' if at(start + 1) == Some(b'=') => punct("!="),
            b'!' if at(start + 1) == Some(b'~') => punct("!~"),
            b'!' => punct("!"),
            b'?' if at(start + 1) == Some(b':') => punct("?:"),
            b'?' if at(start + 1) == Some(b'~') => punct("?~"),
            b'?' if at(start + 1) == Some(b'=') => punct("?="),
            b'?' => punct("?"),
            b'<' if at(start + 1) == Some(b'=') => punct("<="),
            b'<' if at(start + 1) == Some(b'|') => punct("<|"),
            b'<' => punct("<"),
            b'>' if at(start + 1) == Some(b'=') => punct(">="),
            b'>' => punct(">"),
            b'-' if at(start + 1) == Some(b'>') => punct("->"),
            b'-' if at(start + 1) == Some(b'=') => punct("-="),
            b'-' => punct("-"),
            b'+' if at(start + 1) == Some(b'=') => punct("+="),
            b'+' if at(start + 1) == Some(b'?') && at(start + 2) == Some(b'=') => punct("+?="),
            b'+' => punct("+"),
            b'*' if at(start + 1) == Some(b'*') => punct("**"),
            b'*' if at(start + 1) == Some(b'=') => punct("*="),
            b'*' if at(start + 1) == Some(b'~') => punct("*~"),
            b'*' => punct("*"),
            b'=' if at(start + 1) == Some(b'=') => punct("=="),
            b'=' => punct("="),
            b':' if at(start + 1) == Some(b':') => punct("::"),
            b':' => punct(":"),
            b'$' => self.lex_param(start)?,
            b'`' => {
                let (name, end) = self.lex_quoted(start, 1, '`')?;
                (Tok::Quoted(name), end)
            }
            b'"' | b'\'' => {
                let (s, end) = self.lex_string(start + 1, first)?;
                (Tok::Str(s), end)
            }
            b'd' | b'r' | b'u' | b'b' | b'f' | b's'
                if matches!(at(start + 1), Some(b'"') | Some(b'\'')) =>
            {
                let quote = at(start + 1).unwrap_or(b'"');
                let (s, end) = self.lex_string(start + 2, quote)?;
                if first == b's' {
                    (Tok::Str(s), end)
                } else {
                    (Tok::Prefixed(first as char, s), end)
                }
            }
            b'0'..=b'9' => {
                let mut end = start;
                while matches!(at(end), Some(b'0'..=b'9' | b'_')) {
                    end += 1;
                }
                (Tok::Digits, end)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let mut end = start;
                while at(end).is_some_and(is_ident_continue) {
                    end += 1;
                }
                (Tok::Word(self.src[start..end].to_string()), end)
            }
            _ => {
                let c = self.char_at(start).unwrap_or('\u{FFFD}');
                let p: Option<&'static str> = match c {
                    '…' => Some("..."),
                    '∋' => Some("∋"),
                    '∌' => Some("∌"),
                    '∈' => Some("∈"),
                    '∉' => Some("∉"),
                    '⊇' => Some("⊇"),
                    '⊃' => Some("⊃"),
                    '⊅' => Some("⊅"),
                    '⊆' => Some("⊆"),
                    '⊂' => Some("⊂"),
                    '⊄' => Some("⊄"),
                    '×' => Some("×"),
                    '÷' => Some("÷"),
                    _ => None,
                };
                match (c, p) {
                    ('⟨', _) => {
                        let (name, end) = self.lex_quoted(start, '⟨'.len_utf8(), '⟩')?;
                        (Tok::Quoted(name), end)
                    }
                    (_, Some(p)) => (Tok::Punct(p), start + c.len_utf8()),
                    (_, None) => {
                        return Err(self.error(
                            start,
                            &format!("unexpected character `{c}`"),
                            "not valid SurrealQL",
                            None,
                        ));
                    }
                }
            }
        };
        Ok(Token {
            tok,
            start,
            end,
            ws_before,
        })
    }

    /// Lexes a `$param`, `` $`param` `` or `$⟨param⟩` starting at `start` (the `$`).
    pub(super) fn lex_param(&self, start: usize) -> PResult<(Tok, usize)> {
        let b = self.bytes();
        match b.get(start + 1).copied() {
            Some(x) if x == b'_' || x.is_ascii_alphabetic() => {
                let mut end = start + 1;
                while b.get(end).copied().is_some_and(is_ident_continue) {
                    end += 1;
                }
                Ok((Tok::Param(self.src[start + 1..end].to_string()), end))
            }
            Some(b'`') => {
                let (name, end) = self.lex_quoted(start + 1, 1, '`')?;
                Ok((Tok::Param(name), end))
            }
            _ if self.char_at(start + 1) == Some('⟨') => {
                let (name, end) = self.lex_quoted(start + 1, '⟨'.len_utf8(), '⟩')?;
                Ok((Tok::Param(name), end))
            }
            _ => Ok((Tok::Punct("$"), start + 1)),
        }
    }

    /// Lexes a quoted identifier whose opening delimiter (`open_len` bytes)
    /// starts at `start` and which ends with `close`; returns it unescaped.
    pub(super) fn lex_quoted(
        &self,
        start: usize,
        open_len: usize,
        close: char,
    ) -> PResult<(String, usize)> {
        let body = start + open_len;
        let rest = self.src.get(body..).unwrap_or("");
        let mut chars = rest.char_indices();
        while let Some((off, c)) = chars.next() {
            if c == '\\' {
                chars.next();
            } else if c == close {
                let content = &rest[..off];
                let name = unescape(content).map_err(|(i, why)| {
                    self.error(body + i, "invalid escape in identifier", &why, None)
                })?;
                return Ok((name, body + off + c.len_utf8()));
            }
        }
        Err(self.error(
            start,
            "unterminated identifier",
            &format!("missing `{close}`"),
            None,
        ))
    }

    /// Lexes a string whose content starts at `body` and ends with `quote`.
    pub(super) fn lex_string(&self, body: usize, quote: u8) -> PResult<(String, usize)> {
        let rest = self.src.get(body..).unwrap_or("");
        let mut chars = rest.char_indices();
        while let Some((off, c)) = chars.next() {
            if c == '\\' {
                chars.next();
            } else if c == quote as char {
                let content = &rest[..off];
                let s = unescape(content).map_err(|(i, why)| {
                    self.error(body + i, "invalid escape in string", &why, None)
                })?;
                return Ok((s, body + off + 1));
            }
        }
        Err(self.error(
            body.saturating_sub(1),
            "unterminated string",
            "missing closing quote",
            None,
        ))
    }

    /// Lexes the number starting at `start` (a digit, or a sign directly
    /// followed by a digit), with SurrealDB's rules: `_` separators, a
    /// fraction only when `.` is followed by a digit, an exponent, the `f`
    /// suffix for floats, the `dec` suffix for decimals, and durations
    /// (`1h30m`), read by SurrealDB's own duration parser.
    pub(super) fn lex_number(&self, start: usize) -> PResult<(NumLit, usize)> {
        let b = self.bytes();
        let at = |i: usize| b.get(i).copied();
        let mut i = start;
        let negative = at(i) == Some(b'-');
        if matches!(at(i), Some(b'-' | b'+')) {
            i += 1;
        }
        while matches!(at(i), Some(b'0'..=b'9' | b'_')) {
            i += 1;
        }
        // Durations: `1h`, `5m30s`, `1d`, `3µs`, ...
        let duration = match at(i) {
            Some(b'n' | b's' | b'm' | b'h' | b'y' | b'w' | b'u' | 0xC2) => true,
            Some(b'd') => at(i + 1) != Some(b'e'),
            _ => false,
        };
        if duration {
            if negative || at(start) == Some(b'+') {
                return Err(self.refuse(
                    start,
                    "signed duration literal",
                    "durations have no sign",
                ));
            }
            // A duration is digits and units (`µ` is two bytes) to the end
            // of the word.
            let mut end = i;
            while at(end).is_some_and(|x| x.is_ascii_alphanumeric() || x == b'_' || x >= 0x80) {
                end += 1;
            }
            let text = &self.src[start..end];
            return match text.parse::<sdb::Duration>() {
                Ok(d) => Ok((NumLit::Duration(d.into_inner()), end)),
                Err(e) => Err(self.error(start, "invalid duration", &e.to_string(), None)),
            };
        }
        let mut float = false;
        if at(i) == Some(b'.') && at(i + 1).is_some_and(|x| x.is_ascii_digit()) {
            i += 1;
            while matches!(at(i), Some(b'0'..=b'9' | b'_')) {
                i += 1;
            }
            float = true;
        }
        if matches!(at(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(at(i), Some(b'-' | b'+')) {
                i += 1;
            }
            if !at(i).is_some_and(|x| x.is_ascii_digit()) {
                return Err(self.error(i, "invalid number", "expected exponent digits", None));
            }
            while matches!(at(i), Some(b'0'..=b'9' | b'_')) {
                i += 1;
            }
            float = true;
        }
        if at(i) == Some(b'f') {
            i += 1;
            float = true;
        } else if b.get(i..i + 3) == Some(b"dec".as_slice())
            && !at(i + 3).is_some_and(|x| x.is_ascii_alphanumeric() || x == b'_')
        {
            // As SurrealDB's lexer reads a `dec` literal.
            let text: String = self.src[start..i].chars().filter(|c| *c != '_').collect();
            let parsed = if text.contains(['e', 'E']) {
                Decimal::from_scientific(&text)
            } else {
                // SurrealDB's `from_str_normalized`: rounds past 28 digits.
                text.parse::<Decimal>().map(|d| d.normalize())
            };
            return match parsed {
                Ok(d) => Ok((NumLit::Decimal(d), i + 3)),
                Err(e) => Err(self.error(start, "invalid decimal", &e.to_string(), None)),
            };
        }
        if at(i).is_some_and(|x| x.is_ascii_alphabetic()) {
            return Err(self.error(
                i,
                "invalid number",
                "unexpected character after number",
                None,
            ));
        }
        let text: String = self.src[start..i]
            .chars()
            .filter(|c| *c != '_' && *c != 'f')
            .collect();
        let lit = if float {
            match text.parse::<f64>() {
                Ok(f) => NumLit::Float(f),
                Err(e) => return Err(self.error(start, "invalid number", &e.to_string(), None)),
            }
        } else {
            // As SurrealDB: the magnitude may be up to 2^63 only when negative.
            let digits = text.trim_start_matches(['-', '+']);
            let magnitude = digits
                .parse::<u64>()
                .ok()
                .filter(|m| *m <= i64::MAX as u64 + 1);
            match (magnitude, negative) {
                (Some(m), false) if m <= i64::MAX as u64 => NumLit::Int(m as i64),
                (Some(m), true) => NumLit::Int((m as i128).wrapping_neg() as i64),
                _ => {
                    return Err(self.error(
                        start,
                        "invalid number",
                        "number does not fit in a 64-bit signed integer",
                        None,
                    ));
                }
            }
        };
        Ok((lit, i))
    }

    // --- token stream -----------------------------------------------------

    pub(super) fn peek(&self) -> PResult<Token> {
        self.lex(self.pos)
    }

    /// The token after `t`.
    pub(super) fn peek_after(&self, t: &Token) -> PResult<Token> {
        self.lex(t.end)
    }

    pub(super) fn bump(&mut self, t: &Token) {
        self.pos = t.end;
    }

    /// Consumes the next token if it is the unquoted keyword `kw`.
    pub(super) fn eat_kw(&mut self, kw: &str) -> PResult<bool> {
        let t = self.peek()?;
        if t.is_kw(kw) {
            self.bump(&t);
            return Ok(true);
        }
        Ok(false)
    }

    pub(super) fn expect_punct(&mut self, p: &str, expected: &str) -> PResult<Token> {
        let t = self.peek()?;
        if t.is(p) {
            self.bump(&t);
            Ok(t)
        } else {
            Err(self.unexpected(&t, expected))
        }
    }

    /// The bytes right after `t`, to check whitespace-sensitive continuations.
    pub(super) fn followed_by(&self, t: &Token, s: &str) -> bool {
        self.src.get(t.end..).is_some_and(|r| r.starts_with(s))
    }

    // --- statements -------------------------------------------------------
}
