//! Recursive-descent parser from [`Token`]s to an [`Expr`], enforcing the limits and checking
//! tag keys and values against the `TagSet` rules.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ast::{Expr, Op, Predicate};
use super::lexer::{Token, TokenKind, tokenize};
use super::{MAX_DEPTH, MAX_QUERY_BYTES, MAX_TERMS, QueryError};
use crate::model::{ObjectKey, TagSet};

/// Parses a whole query.
pub(super) fn parse(text: &str) -> Result<Expr, QueryError> {
    if text.len() > MAX_QUERY_BYTES {
        let position = text
            .char_indices()
            .position(|(at, c)| at + c.len_utf8() > MAX_QUERY_BYTES)
            .unwrap_or(0);
        return Err(QueryError::new(
            position,
            format!(
                "the query is {} bytes long; the limit is {MAX_QUERY_BYTES}",
                text.len()
            ),
        ));
    }
    let mut parser = Parser {
        tokens: tokenize(text)?,
        next: 0,
        end: text.chars().count(),
        depth: 0,
        terms: 0,
    };
    if parser.tokens.is_empty() {
        return Err(QueryError::new(0, "the query is empty"));
    }
    let expr = parser.or_expr()?;
    match parser.peek() {
        None => Ok(expr),
        Some(Token {
            kind: TokenKind::Close,
            position,
        }) => Err(QueryError::new(*position, "')' without a matching '('")),
        Some(token) => Err(QueryError::new(
            token.position,
            "expected AND, OR or the end of the query",
        )),
    }
}

/// The keywords; a bare word spelling one (in any case) is the keyword, never a tag key.
const KEYWORDS: [&str; 5] = ["AND", "OR", "NOT", "EXISTS", "STARTS_WITH"];

/// Whether the bare word `word` is a keyword.
fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k))
}

struct Parser {
    tokens: Vec<Token>,
    /// Index of the next token.
    next: usize,
    /// Position of the end of the text (its length in characters).
    end: usize,
    /// Parentheses and NOTs currently open.
    depth: usize,
    /// Predicates parsed so far.
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    /// Position of the next token, or the end of the text.
    fn position(&self) -> usize {
        self.peek().map_or(self.end, |t| t.position)
    }

    /// Consumes the next token if it is `keyword` (any case), returning its position.
    fn eat_keyword(&mut self, keyword: &str) -> Option<usize> {
        match self.peek() {
            Some(Token {
                kind: TokenKind::Word(w),
                position,
            }) if w.eq_ignore_ascii_case(keyword) => {
                let position = *position;
                self.next += 1;
                Some(position)
            }
            _ => None,
        }
    }

    /// Opens one more level of parentheses or NOT at `position`.
    fn enter(&mut self, position: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::new(
                position,
                format!("parentheses and NOTs nest more than {MAX_DEPTH} deep"),
            ));
        }
        Ok(())
    }

    /// Counts one more predicate starting at `position`.
    fn count_term(&mut self, position: usize) -> Result<(), QueryError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(QueryError::new(
                position,
                format!("the query has more than {MAX_TERMS} conditions; the limit is {MAX_TERMS}"),
            ));
        }
        Ok(())
    }

    /// `or_expr = and_expr { "OR" and_expr }`
    fn or_expr(&mut self) -> Result<Expr, QueryError> {
        let mut operands = vec![self.and_expr()?];
        while self.eat_keyword("OR").is_some() {
            operands.push(self.and_expr()?);
        }
        Ok(join(operands, Expr::Or))
    }

    /// `and_expr = unary { "AND" unary }`
    fn and_expr(&mut self) -> Result<Expr, QueryError> {
        let mut operands = vec![self.unary()?];
        while self.eat_keyword("AND").is_some() {
            operands.push(self.unary()?);
        }
        Ok(join(operands, Expr::And))
    }

    /// `unary = "NOT" unary | "(" or_expr ")" | condition`
    fn unary(&mut self) -> Result<Expr, QueryError> {
        if let Some(position) = self.eat_keyword("NOT") {
            self.enter(position)?;
            let operand = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(operand)));
        }
        let Some(token) = self.peek().cloned() else {
            return Err(QueryError::new(
                self.end,
                "expected a condition at the end of the query",
            ));
        };
        if token.kind == TokenKind::Open {
            self.next += 1;
            self.enter(token.position)?;
            let inner = self.or_expr()?;
            if self.peek().map(|t| &t.kind) != Some(&TokenKind::Close) {
                return Err(QueryError::new(
                    self.position(),
                    format!(
                        "expected ')' to close the '(' at {}, or AND, OR",
                        token.position
                    ),
                ));
            }
            self.next += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        self.count_term(token.position)?;
        self.condition(token).map(Expr::Predicate)
    }

    /// `condition = "EXISTS" key | key op 'value' | attribute op value`, starting at `token`.
    fn condition(&mut self, token: Token) -> Result<Predicate, QueryError> {
        self.next += 1;
        let at = token.position;
        match token.kind {
            TokenKind::Word(w) if w.eq_ignore_ascii_case("EXISTS") => {
                let (key, key_at) = self.tag_key("EXISTS")?;
                check_tag(&key, key_at, None)?;
                Ok(Predicate::TagExists { key })
            }
            TokenKind::Word(w) if is_keyword(&w) => Err(QueryError::new(
                at,
                format!(
                    "expected a condition, found the keyword {}; a tag key spelled so must be double-quoted",
                    w.to_ascii_uppercase()
                ),
            )),
            TokenKind::Word(key) | TokenKind::DoubleQuoted(key) => {
                check_tag(&key, at, None)?;
                let op = self.operator(&format!("the tag key {key:?}"))?;
                let (value, value_at) = self.quoted_value(op)?;
                check_tag(&key, at, Some((&value, value_at)))?;
                Ok(Predicate::Tag { key, op, value })
            }
            TokenKind::Attribute(name) => self.attribute(&name, at),
            TokenKind::SingleQuoted(_) => Err(QueryError::new(
                at,
                "expected a condition; tag keys take double quotes (\"key\"), values single quotes",
            )),
            TokenKind::Close => Err(QueryError::new(at, "expected a condition before ')'")),
            TokenKind::Compare(op) => Err(QueryError::new(
                at,
                format!("expected a tag key or @attribute before '{op}'"),
            )),
            TokenKind::Number(_) | TokenKind::Open => Err(QueryError::new(
                at,
                "expected a condition; a tag key starting with a digit must be double-quoted",
            )),
        }
    }

    /// The tag key after `after` (a keyword), and its position.
    fn tag_key(&mut self, after: &str) -> Result<(String, usize), QueryError> {
        let found = match self.peek() {
            Some(Token {
                kind: TokenKind::DoubleQuoted(key),
                position,
            }) => Some((key.clone(), *position)),
            Some(Token {
                kind: TokenKind::Word(key),
                position,
            }) if !is_keyword(key) => Some((key.clone(), *position)),
            _ => None,
        };
        let Some(found) = found else {
            return Err(QueryError::new(
                self.position(),
                format!("expected a tag key after {after}"),
            ));
        };
        self.next += 1;
        Ok(found)
    }

    /// The comparison operator after `subject` (described for the error message).
    fn operator(&mut self, subject: &str) -> Result<Op, QueryError> {
        let op = match self.peek().map(|t| &t.kind) {
            Some(TokenKind::Compare(op)) => Some(*op),
            Some(TokenKind::Word(w)) if w.eq_ignore_ascii_case("STARTS_WITH") => {
                Some(Op::StartsWith)
            }
            _ => None,
        };
        match op {
            Some(op) => {
                self.next += 1;
                Ok(op)
            }
            None => Err(QueryError::new(
                self.position(),
                format!("expected an operator (= <> < <= > >= STARTS_WITH) after {subject}"),
            )),
        }
    }

    /// The single-quoted value after `op`, and its position.
    fn quoted_value(&mut self, op: Op) -> Result<(String, usize), QueryError> {
        match self.peek() {
            Some(Token {
                kind: TokenKind::SingleQuoted(value),
                position,
            }) => {
                let found = (value.clone(), *position);
                self.next += 1;
                Ok(found)
            }
            Some(Token {
                kind: TokenKind::DoubleQuoted(_),
                position,
            }) => Err(QueryError::new(
                *position,
                format!(
                    "expected a quoted value after '{op}'; values take single quotes ('...'), keys double"
                ),
            )),
            _ => Err(QueryError::new(
                self.position(),
                format!("expected a quoted value after '{op}'"),
            )),
        }
    }

    /// `@name op value`, the attribute token at `at` already consumed.
    fn attribute(&mut self, name: &str, at: usize) -> Result<Predicate, QueryError> {
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "key" | "size" | "modified") {
            return Err(QueryError::new(
                at,
                format!("unknown attribute @{name}; the attributes are @key, @size and @modified"),
            ));
        }
        let op_at = self.position();
        let op = self.operator(&format!("@{name}"))?;
        if op == Op::StartsWith && name != "key" {
            return Err(QueryError::new(
                op_at,
                format!("STARTS_WITH applies to tag values and @key, not to @{name}"),
            ));
        }
        match name.as_str() {
            "size" => match self.peek() {
                Some(Token {
                    kind: TokenKind::Number(value),
                    ..
                }) => {
                    let value = *value;
                    self.next += 1;
                    Ok(Predicate::Size { op, value })
                }
                _ => Err(QueryError::new(
                    self.position(),
                    format!(
                        "expected a whole number of bytes after '{op}' (@size compares numbers)"
                    ),
                )),
            },
            "modified" => {
                let (text, value_at) = self.quoted_value(op)?;
                let value = OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
                    QueryError::new(
                        value_at,
                        format!("{text:?} is not an RFC 3339 time such as '2024-05-01T08:00:00Z'"),
                    )
                })?;
                Ok(Predicate::Modified { op, value })
            }
            _ => {
                let (value, value_at) = self.quoted_value(op)?;
                if value.len() > ObjectKey::MAX_BYTES {
                    return Err(QueryError::new(
                        value_at,
                        format!(
                            "the @key value is {} bytes; object keys are at most {} bytes",
                            value.len(),
                            ObjectKey::MAX_BYTES
                        ),
                    ));
                }
                Ok(Predicate::Key { op, value })
            }
        }
    }
}

/// One operand as itself, several joined by `make` (`Expr::And` or `Expr::Or`).
fn join(mut operands: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if operands.len() == 1 {
        operands.remove(0)
    } else {
        make(operands)
    }
}

/// Checks `key` (at `key_at`), and with `value` also the value (at its position), against the
/// `TagSet` rules, so a query can only name tags an object can carry.
fn check_tag(key: &str, key_at: usize, value: Option<(&str, usize)>) -> Result<(), QueryError> {
    let (value, at) = value.unwrap_or(("", key_at));
    TagSet::from_pairs([(key, value)])
        .map(drop)
        .map_err(|violations| {
            let reasons: Vec<String> = violations.into_iter().map(|v| v.description).collect();
            QueryError::new(at, reasons.join("; "))
        })
}
