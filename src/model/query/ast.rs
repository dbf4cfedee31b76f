//! The query's syntax tree ([`Expr`], [`Predicate`], [`Op`]) and its canonical text form.
//!
//! `Display` prints the canonical form: upper-case keywords, every tag key double-quoted,
//! every text value single-quoted (quotes doubled), sizes as bare integers, times in RFC 3339,
//! and parentheses exactly where the tree needs them. Parsing that text gives back the same
//! tree (a property test checks it).

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A boolean expression over an object's tags and attributes.
///
/// `And` and `Or` hold two or more operands. The parser keeps the grouping the text wrote:
/// `a AND b AND c` is one `And` of three, `(a AND b) AND c` an `And` holding an `And`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Every operand holds.
    And(Vec<Expr>),
    /// At least one operand holds.
    Or(Vec<Expr>),
    /// The operand does not hold (plain boolean negation: `NOT "k" = 'v'` holds for an object
    /// without tag `k`, unlike `"k" <> 'v'`).
    Not(Box<Expr>),
    /// One test on one tag or attribute.
    Predicate(Predicate),
}

/// One test. A comparison on a tag the object does not carry is false, whatever the operator
/// (so `"k" <> 'v'` needs the tag to be present, as in Azure's tag filters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// `"key" op 'value'`: the tag's value compared as bytes (lexicographic).
    Tag {
        /// The tag key (valid under the `TagSet` rules).
        key: String,
        /// Any operator.
        op: Op,
        /// The value or prefix (valid under the `TagSet` rules).
        value: String,
    },
    /// `EXISTS "key"`: the object carries tag `key`, whatever its value.
    TagExists {
        /// The tag key (valid under the `TagSet` rules).
        key: String,
    },
    /// `@key op 'text'`: the object's key compared as bytes.
    Key {
        /// Any operator.
        op: Op,
        /// At most `ObjectKey::MAX_BYTES` bytes.
        value: String,
    },
    /// `@size op n`: the object's size in bytes, compared as a number.
    Size {
        /// Any operator but [`Op::StartsWith`].
        op: Op,
        /// Bytes.
        value: u64,
    },
    /// `@modified op 'RFC 3339 time'`: the object's last-modified time, compared as instants.
    Modified {
        /// Any operator but [`Op::StartsWith`].
        op: Op,
        /// The instant (its offset is kept for display only).
        value: OffsetDateTime,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `STARTS_WITH`: text only (tag values and `@key`).
    StartsWith,
}

impl Op {
    /// The operator as written in a query.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::StartsWith => "STARTS_WITH",
        }
    }

    /// The operator that holds exactly when `self` does not, on a value that is present;
    /// `None` for `STARTS_WITH`, whose negation is no single operator.
    pub fn negated(self) -> Option<Op> {
        Some(match self {
            Op::Eq => Op::Ne,
            Op::Ne => Op::Eq,
            Op::Lt => Op::Ge,
            Op::Le => Op::Gt,
            Op::Gt => Op::Le,
            Op::Ge => Op::Lt,
            Op::StartsWith => return None,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes `text` between `quote`s, doubling each `quote` inside it (SQL style).
fn write_quoted(f: &mut fmt::Formatter<'_>, quote: char, text: &str) -> fmt::Result {
    use fmt::Write as _;
    f.write_char(quote)?;
    for c in text.chars() {
        if c == quote {
            f.write_char(quote)?;
        }
        f.write_char(c)?;
    }
    f.write_char(quote)
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::Tag { key, op, value } => {
                write_quoted(f, '"', key)?;
                write!(f, " {op} ")?;
                write_quoted(f, '\'', value)
            }
            Predicate::TagExists { key } => {
                f.write_str("EXISTS ")?;
                write_quoted(f, '"', key)
            }
            Predicate::Key { op, value } => {
                write!(f, "@key {op} ")?;
                write_quoted(f, '\'', value)
            }
            Predicate::Size { op, value } => write!(f, "@size {op} {value}"),
            Predicate::Modified { op, value } => {
                write!(f, "@modified {op} ")?;
                // Every instant the parser accepts (years 0000-9999) formats; the fallback keeps
                // Display total for hand-built trees outside that range.
                let text = value
                    .format(&Rfc3339)
                    .unwrap_or_else(|_| value.unix_timestamp().to_string());
                write_quoted(f, '\'', &text)
            }
        }
    }
}

impl Expr {
    /// Writes `self` as an operand of `parent`, in parentheses when the grammar needs them to
    /// give back the same tree: any `And`/`Or` under `And` or `NOT`, and an `Or` under `Or`.
    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, parent: &Expr) -> fmt::Result {
        let parens = match (parent, self) {
            (Expr::Or(_), Expr::Or(_)) => true,
            (Expr::Or(_), _) => false,
            (_, Expr::And(_) | Expr::Or(_)) => true,
            _ => false,
        };
        if parens {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(operands) | Expr::Or(operands) => {
                let joiner = if matches!(self, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                for (i, operand) in operands.iter().enumerate() {
                    if i > 0 {
                        f.write_str(joiner)?;
                    }
                    operand.fmt_operand(f, self)?;
                }
                Ok(())
            }
            Expr::Not(operand) => {
                f.write_str("NOT ")?;
                operand.fmt_operand(f, self)
            }
            Expr::Predicate(p) => write!(f, "{p}"),
        }
    }
}
