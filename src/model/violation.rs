//! [`Violation`]: one problem with one input field.

use std::fmt;

/// One problem with one input field.
///
/// `field` is relative to the value that was parsed: `""` means the value
/// itself, `tags["k"]` one tag of a tag set, `metadata["K"]` one metadata
/// entry. Use [`Violation::under`] to re-root it under an outer field name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Violation {
    /// The offending field, relative to the parsed value (`""` = the value itself).
    pub field: String,
    /// A human-readable description of what is wrong, e.g.
    /// `tag key "x" is 129 characters; the limit is 128`.
    pub description: String,
}

impl Violation {
    /// Creates a violation of `field` described by `description`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }

    /// Re-roots the field under `prefix`: `""` -> `prefix`, `x` -> `prefix.x`,
    /// `[k]` -> `prefix[k]`. An empty `prefix` leaves the field unchanged.
    pub fn under(mut self, prefix: &str) -> Self {
        if prefix.is_empty() {
            return self;
        }
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for Violation {
    /// `field: description`, or just the description when `field` is empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.description)
        } else {
            write!(f, "{}: {}", self.field, self.description)
        }
    }
}

impl std::error::Error for Violation {}
