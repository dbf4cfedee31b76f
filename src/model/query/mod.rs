//! The tag query language shared by FindObjects (which objects match) and `if_tags` conditions
//! (does this object match): parsing with positioned errors, the syntax tree, evaluation, and
//! the split of a query into what a backend index can filter and what is checked afterwards.
//! The grammar, with examples and the error format, is in docs/query.md.
//!
//! ```text
//! "team" = 'storage' AND ("env" STARTS_WITH 'prod' OR NOT EXISTS "legal-hold") AND @size > 1048576
//! ```
//!
//! The parser is hand-written recursive descent over a small lexer. The grammar has a dozen
//! productions; a combinator crate (`winnow`, `chumsky`, `nom`) would add a dependency without
//! making the code shorter, and the errors this module wants (a character offset and a reason
//! naming what was expected after which token) are simplest to produce by hand. Every path
//! returns an error instead of panicking, and the limits below bound time, memory and recursion.
//!
//! Pure: no I/O, no clock, nothing outside `crate::model`.

mod ast;
mod eval;
mod lexer;
mod parser;
mod pushdown;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use ast::{Expr, Op, Predicate};
pub use eval::ObjectFacts;
pub use pushdown::{Filter, Pushdown};

use crate::model::TagSet;

/// Longest query text, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;
/// Deepest nesting of parentheses and `NOT`s.
pub const MAX_DEPTH: usize = 32;
/// Most conditions (comparisons and `EXISTS`) in one query.
pub const MAX_TERMS: usize = 64;

/// Why a query text was refused: where (a 0-based offset in characters, not bytes) and why.
/// Displays as `at 12: expected a quoted value after '='`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {position}: {reason}")]
pub struct QueryError {
    /// Offset of the offending character in the query, counting characters from 0; the
    /// query's length when the text ended too early.
    pub position: usize,
    /// What is wrong, e.g. `expected a quoted value after '='`.
    pub reason: String,
}

impl QueryError {
    fn new(position: usize, reason: impl Into<String>) -> Self {
        Self {
            position,
            reason: reason.into(),
        }
    }
}

/// A parsed, validated query: tag keys and values follow the `TagSet` rules, and the text was
/// within [`MAX_QUERY_BYTES`], [`MAX_DEPTH`] and [`MAX_TERMS`].
///
/// `Display` gives the canonical text, which parses back to the same query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    expr: Expr,
}

impl Query {
    /// Parses and validates `text`. An empty (or all-blank) text is an error: callers that
    /// treat an absent condition as "no condition" check for that before parsing.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        parser::parse(text).map(|expr| Self { expr })
    }

    /// The syntax tree, for an engine to translate.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether an object with `tags` and `facts` matches.
    pub fn matches(&self, tags: &TagSet, facts: &ObjectFacts<'_>) -> bool {
        self.expr.matches(tags, facts)
    }

    /// Whether an object with `tags` matches a query that reads no attribute (an `if_tags`
    /// check with only the tag set at hand); `None` when the query also needs [`ObjectFacts`].
    pub fn matches_tags(&self, tags: &TagSet) -> Option<bool> {
        if self.uses_attributes() {
            return None;
        }
        // Never read: the query has no attribute condition.
        let unread = ObjectFacts {
            key: "",
            size: 0,
            modified: time::OffsetDateTime::UNIX_EPOCH,
        };
        Some(self.expr.matches(tags, &unread))
    }

    /// Whether the query reads `@key`, `@size` or `@modified`, so evaluating it needs
    /// [`ObjectFacts`] (e.g. a HEAD before an `if_tags` check) and not only the tags.
    pub fn uses_attributes(&self) -> bool {
        fn uses(expr: &Expr) -> bool {
            match expr {
                Expr::And(operands) | Expr::Or(operands) => operands.iter().any(uses),
                Expr::Not(operand) => uses(operand),
                Expr::Predicate(p) => {
                    !matches!(p, Predicate::Tag { .. } | Predicate::TagExists { .. })
                }
            }
        }
        uses(&self.expr)
    }
}

impl FromStr for Query {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}
