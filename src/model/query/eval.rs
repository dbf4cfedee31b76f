//! Evaluation of an [`Expr`] against one object's tags and [`ObjectFacts`].

use std::cmp::Ordering;

use time::OffsetDateTime;

use super::ast::{Expr, Op, Predicate};
use crate::model::TagSet;

/// What a query may ask of an object besides its tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectFacts<'a> {
    /// The object key.
    pub key: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// Last-modified time.
    pub modified: OffsetDateTime,
}

impl Op {
    /// Whether `ordering` (found value compared with the query's value) satisfies the
    /// operator; `STARTS_WITH` is never satisfied by an ordering alone.
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering.is_eq(),
            Op::Ne => ordering.is_ne(),
            Op::Lt => ordering.is_lt(),
            Op::Le => ordering.is_le(),
            Op::Gt => ordering.is_gt(),
            Op::Ge => ordering.is_ge(),
            Op::StartsWith => false,
        }
    }

    /// Whether `found op wanted` holds for text: comparisons by bytes, `STARTS_WITH` by prefix.
    fn holds_for_text(self, found: &str, wanted: &str) -> bool {
        match self {
            Op::StartsWith => found.starts_with(wanted),
            _ => self.holds(found.as_bytes().cmp(wanted.as_bytes())),
        }
    }
}

impl Predicate {
    /// Whether the predicate holds for an object with `tags` and `facts`.
    pub fn matches(&self, tags: &TagSet, facts: &ObjectFacts<'_>) -> bool {
        match self {
            Predicate::Tag { key, op, value } => tags
                .get(key)
                .is_some_and(|found| op.holds_for_text(found, value)),
            Predicate::TagExists { key } => tags.get(key).is_some(),
            Predicate::Key { op, value } => op.holds_for_text(facts.key, value),
            Predicate::Size { op, value } => op.holds(facts.size.cmp(value)),
            Predicate::Modified { op, value } => op.holds(facts.modified.cmp(value)),
        }
    }
}

impl Expr {
    /// Whether the expression holds for an object with `tags` and `facts`. Pure; stops at the
    /// first operand that decides an `AND` or `OR`.
    pub fn matches(&self, tags: &TagSet, facts: &ObjectFacts<'_>) -> bool {
        match self {
            Expr::And(operands) => operands.iter().all(|e| e.matches(tags, facts)),
            Expr::Or(operands) => operands.iter().any(|e| e.matches(tags, facts)),
            Expr::Not(operand) => !operand.matches(tags, facts),
            Expr::Predicate(p) => p.matches(tags, facts),
        }
    }
}
