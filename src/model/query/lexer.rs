//! Splits query text into [`Token`]s, each with its position (a 0-based character offset).

use super::QueryError;
use super::ast::Op;
use crate::model::names::describe_char;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// `(`
    Open,
    /// `)`
    Close,
    /// `=`, `<>`, `<`, `<=`, `>`, `>=` (`STARTS_WITH` is a [`TokenKind::Word`]).
    Compare(Op),
    /// `"..."`, quotes inside doubled: a tag key.
    DoubleQuoted(String),
    /// `'...'`, quotes inside doubled: a value.
    SingleQuoted(String),
    /// A run of ASCII digits.
    Number(u64),
    /// A bare word: a keyword or an unquoted tag key.
    Word(String),
    /// `@name`: an object attribute (the name without the `@`).
    Attribute(String),
}

/// A token and the character offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub kind: TokenKind,
    pub position: usize,
}

/// Whether `c` may start a bare word (a keyword or an unquoted tag key).
fn starts_word(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

/// Whether `c` may continue a bare word: letters, digits and `_ . : / -` (the tag characters
/// that cannot be mistaken for an operator; keys with space, `+` or `=` must be quoted).
fn continues_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')
}

/// Splits `text` into tokens.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                i += 1;
                TokenKind::Open
            }
            ')' => {
                i += 1;
                TokenKind::Close
            }
            '=' => {
                i += 1;
                TokenKind::Compare(Op::Eq)
            }
            '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', _) => (Op::Lt, 1),
                    _ => (Op::Gt, 1),
                };
                i += len;
                TokenKind::Compare(op)
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                return Err(QueryError::new(
                    start,
                    "'!=' is not an operator; write '<>'",
                ));
            }
            '"' | '\'' => {
                let (content, end) = quoted(&chars, start)?;
                i = end;
                if c == '"' {
                    TokenKind::DoubleQuoted(content)
                } else {
                    TokenKind::SingleQuoted(content)
                }
            }
            '@' => {
                i += 1;
                let name_start = i;
                while chars.get(i).is_some_and(|&c| continues_word(c)) {
                    i += 1;
                }
                if i == name_start {
                    return Err(QueryError::new(
                        start,
                        "expected an attribute name after '@' (@key, @size or @modified)",
                    ));
                }
                TokenKind::Attribute(chars[name_start..i].iter().collect())
            }
            c if c.is_ascii_digit() => {
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                if chars.get(i).is_some_and(|&c| continues_word(c)) {
                    return Err(QueryError::new(
                        start,
                        "expected a whole number (a tag key starting with a digit must be double-quoted)",
                    ));
                }
                let digits: String = chars[start..i].iter().collect();
                let n = digits.parse().map_err(|_| {
                    QueryError::new(start, format!("{digits} is too large a number"))
                })?;
                TokenKind::Number(n)
            }
            c if starts_word(c) => {
                while chars.get(i).is_some_and(|&c| continues_word(c)) {
                    i += 1;
                }
                TokenKind::Word(chars[start..i].iter().collect())
            }
            other => {
                return Err(QueryError::new(
                    start,
                    format!(
                        "unexpected {}; quote tag keys with \"...\" and values with '...'",
                        describe_char(other)
                    ),
                ));
            }
        };
        tokens.push(Token {
            kind,
            position: start,
        });
    }
    Ok(tokens)
}

/// The content of the quoted string opening at `chars[start]`, and the index just past its
/// closing quote. A doubled quote stands for one quote.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
    let quote = chars[start];
    let mut content = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                let what = if quote == '"' { "key" } else { "value" };
                return Err(QueryError::new(
                    start,
                    format!(
                        "unterminated quoted {what}: no closing {quote} (a {quote} inside is written {quote}{quote})"
                    ),
                ));
            }
            Some(&c) if c == quote => {
                if chars.get(i + 1) == Some(&quote) {
                    content.push(quote);
                    i += 2;
                } else {
                    return Ok((content, i + 1));
                }
            }
            Some(&c) => {
                content.push(c);
                i += 1;
            }
        }
    }
}
