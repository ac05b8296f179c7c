//! Where a construct is in the query text.
//!
//! SurrealDB's AST has no spans, so a refusal is placed at the first
//! appearance of its construct's text (a keyword, a function name, an
//! operator) outside string literals and comments: the place a reader looks
//! for it, in all but contrived queries.

/// The text of a query, and a copy of it for searching: ASCII lowercased,
/// with string literals and comments blanked, byte for byte the same length.
pub(super) struct Source<'a> {
    text: &'a str,
    search: Vec<u8>,
}

impl<'a> Source<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Source {
            text,
            search: blank_strings_and_comments(text.as_bytes()),
        }
    }

    /// The byte offset of the first appearance of `needle` (ASCII case
    /// insensitive, a word only where it is not part of a longer one), or of
    /// the query's first character if there is none.
    pub(super) fn find(&self, needle: &str) -> usize {
        self.position(needle).unwrap_or_else(|| {
            self.search
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(0)
        })
    }

    /// The byte offset of the first appearance of `needle`, if any.
    pub(super) fn position(&self, needle: &str) -> Option<usize> {
        let n = needle.to_ascii_lowercase().into_bytes();
        if n.is_empty() || n.len() > self.search.len() {
            return None;
        }
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let starts_word = word(n[0]);
        let ends_word = word(n[n.len() - 1]);
        (0..=self.search.len() - n.len()).find(|&i| {
            self.search[i..i + n.len()] == n[..]
                && !(starts_word && i > 0 && word(self.search[i - 1]))
                && !(ends_word && self.search.get(i + n.len()).is_some_and(|&b| word(b)))
        })
    }

    /// 1-based line and column (in characters) of byte offset `at`.
    pub(super) fn line_col(&self, at: usize) -> (usize, usize) {
        let mut at = at.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }
}

/// `text` lowercased, with the inside of `'..'` and `".."` strings and of
/// `--`, `#`, `//` and `/* */` comments replaced by spaces.
fn blank_strings_and_comments(text: &[u8]) -> Vec<u8> {
    let mut out = text.to_ascii_lowercase();
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for b in &mut out[from..to.min(text.len())] {
            *b = b' ';
        }
    };
    while i < text.len() {
        match text[i] {
            q @ (b'\'' | b'"') => {
                let start = i + 1;
                let mut j = start;
                while j < text.len() && text[j] != q {
                    j += if text[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, start, j);
                i = j + 1;
            }
            b'`' => {
                // A quoted identifier stays searchable; skip its content so
                // a quote inside it starts no string.
                i += 1;
                while i < text.len() && text[i] != b'`' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'#' => {
                let end = line_end(text, i);
                blank(&mut out, i, end);
                i = end;
            }
            b'-' | b'/' if text.get(i + 1) == Some(&text[i]) => {
                let end = line_end(text, i);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if text.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(text.len(), |p| i + 2 + p + 2);
                blank(&mut out, i, end);
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

fn line_end(text: &[u8], from: usize) -> usize {
    text[from..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map_or(text.len(), |p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_words_outside_strings_and_comments() {
        let s = Source::new("SELECT * -- group\nFROM groups WHERE a = 'GROUP' GROUP BY a");
        assert_eq!(s.line_col(s.find("GROUP")), (2, 31));
        let s = Source::new("SELECT * FROM t");
        assert_eq!(s.find("nowhere"), 0);
        let s = Source::new("  SELECT * FROM t WHERE a ∈ [1]");
        assert_eq!(s.line_col(s.find("∈")), (1, 27));
        assert_eq!(s.find("missing"), 2);
    }
}
