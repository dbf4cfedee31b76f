//! What an engine can hand to a backend index: [`Expr::pushdown`] splits a query into a
//! [`Filter`] that a MetaQuery-like backend expresses and whether the backend's answer is
//! already exact or must be post-filtered with the whole query; [`Expr::required_key_prefix`]
//! gives the key prefix every match shares, for a listing's scope.
//!
//! The backend model is OSS MetaQuery's: `eq gt gte lt lte prefix` on a field (a tag,
//! `Filename`, `Size`, `FileModifiedTime`) and `and`/`or` of sub-queries. It has no key
//! existence test, and its `not` on a tag the object lacks is not documented, so negations of
//! tag conditions and `EXISTS` are never pushed: they stay in the post-filter. Negations of
//! `@size`/`@modified`/`@key` comparisons are pushed as the complementary operator (those facts
//! always exist); `<>` is pushed as `< OR >`, which on a present value is the same.

use super::ast::{Expr, Op, Predicate};

/// A condition a backend index can evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every operand holds (two or more).
    All(Vec<Filter>),
    /// At least one operand holds (two or more).
    Any(Vec<Filter>),
    /// One comparison: never [`Predicate::TagExists`], never [`Op::Ne`], and
    /// [`Op::StartsWith`] only on a tag or `@key` (MetaQuery's `prefix`).
    Term(Predicate),
}

/// A query split for a backend index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushdown {
    /// A condition every match satisfies; `None` when the backend cannot narrow the search
    /// (it must return every object in scope).
    pub filter: Option<Filter>,
    /// Whether the backend's answer is exactly the matches. When false, the engine re-checks
    /// each candidate with [`Expr::matches`] (the whole query: cheap, and always right).
    pub exact: bool,
}

impl Expr {
    /// Splits the expression for a backend index (see the module documentation).
    pub fn pushdown(&self) -> Pushdown {
        necessary(self, false)
    }

    /// A prefix every matching object's key starts with (from `@key STARTS_WITH` and
    /// `@key =`), or `None` when the query does not bound the key. An engine lists only under
    /// it (intersected with the request's own prefix).
    pub fn required_key_prefix(&self) -> Option<String> {
        match self {
            Expr::Predicate(Predicate::Key {
                op: Op::StartsWith | Op::Eq,
                value,
            }) => Some(value.clone()),
            Expr::Predicate(_) | Expr::Not(_) => None,
            // Each operand's prefix is required; the longest says the most.
            Expr::And(operands) => operands
                .iter()
                .filter_map(Expr::required_key_prefix)
                .max_by_key(String::len),
            // A match satisfies one operand, so only what all operands share is required.
            Expr::Or(operands) => {
                let mut prefixes = operands.iter().map(Expr::required_key_prefix);
                let first = prefixes.next().flatten()?;
                prefixes.try_fold(first, |common, next| {
                    let next = next?;
                    let shared: usize = common
                        .chars()
                        .zip(next.chars())
                        .take_while(|(a, b)| a == b)
                        .map(|(a, _)| a.len_utf8())
                        .sum();
                    Some(common[..shared].to_owned())
                })
            }
        }
    }
}

/// The pushdown of `expr`, or of `NOT expr` when `negated`.
fn necessary(expr: &Expr, negated: bool) -> Pushdown {
    match (expr, negated) {
        (Expr::Not(operand), _) => necessary(operand, !negated),
        (Expr::And(operands), false) | (Expr::Or(operands), true) => all(operands, negated),
        (Expr::Or(operands), false) | (Expr::And(operands), true) => any(operands, negated),
        (Expr::Predicate(p), _) => predicate(p, negated),
    }
}

/// Every operand (possibly negated) must hold: push what can be pushed, drop the rest (a
/// weaker filter is still a necessary one), exact only if nothing was dropped or inexact.
fn all(operands: &[Expr], negated: bool) -> Pushdown {
    let parts: Vec<Pushdown> = operands.iter().map(|e| necessary(e, negated)).collect();
    let exact = parts.iter().all(|p| p.exact);
    let mut filters: Vec<Filter> = parts.into_iter().filter_map(|p| p.filter).collect();
    let filter = match filters.len() {
        0 => None,
        1 => filters.pop(),
        _ => Some(Filter::All(filters)),
    };
    Pushdown { filter, exact }
}

/// One operand (possibly negated) must hold: pushable only if every operand is.
fn any(operands: &[Expr], negated: bool) -> Pushdown {
    let mut filters = Vec::with_capacity(operands.len());
    let mut exact = true;
    for part in operands.iter().map(|e| necessary(e, negated)) {
        let Some(filter) = part.filter else {
            return UNPUSHABLE;
        };
        exact &= part.exact;
        filters.push(filter);
    }
    Pushdown {
        filter: Some(Filter::Any(filters)),
        exact,
    }
}

/// Nothing for the backend: the post-filter does it all.
const UNPUSHABLE: Pushdown = Pushdown {
    filter: None,
    exact: false,
};

fn predicate(p: &Predicate, negated: bool) -> Pushdown {
    let op = match p {
        Predicate::TagExists { .. } => return UNPUSHABLE,
        Predicate::Tag { .. } if negated => return UNPUSHABLE,
        Predicate::Tag { op, .. } => Some(*op),
        Predicate::Key { op, .. } | Predicate::Size { op, .. } | Predicate::Modified { op, .. } => {
            if negated {
                op.negated()
            } else {
                Some(*op)
            }
        }
    };
    let Some(op) = op else {
        return UNPUSHABLE;
    };
    let term = |op: Op| Filter::Term(with_op(p, op));
    let filter = if op == Op::Ne {
        Filter::Any(vec![term(Op::Lt), term(Op::Gt)])
    } else {
        term(op)
    };
    Pushdown {
        filter: Some(filter),
        exact: true,
    }
}

/// `p` with its operator replaced by `op`.
fn with_op(p: &Predicate, op: Op) -> Predicate {
    let mut p = p.clone();
    match &mut p {
        Predicate::Tag { op: o, .. }
        | Predicate::Key { op: o, .. }
        | Predicate::Size { op: o, .. }
        | Predicate::Modified { op: o, .. } => *o = op,
        Predicate::TagExists { .. } => {}
    }
    p
}
