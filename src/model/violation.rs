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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keeps_field_and_description() {
        let v = Violation::new("name", "is bad");
        assert_eq!(v.field, "name");
        assert_eq!(v.description, "is bad");
    }

    #[test]
    fn under_reroots_each_field_shape() {
        assert_eq!(Violation::new("", "d").under("bucket").field, "bucket");
        assert_eq!(Violation::new("x", "d").under("req").field, "req.x");
        assert_eq!(
            Violation::new("[\"k\"]", "d").under("tags").field,
            "tags[\"k\"]"
        );
        assert_eq!(
            Violation::new("tags[\"k\"]", "d").under("request").field,
            "request.tags[\"k\"]"
        );
        assert_eq!(Violation::new("x", "d").under("").field, "x");
        // Nesting composes.
        assert_eq!(
            Violation::new("", "d").under("key").under("object").field,
            "object.key"
        );
    }

    #[test]
    fn under_keeps_description() {
        assert_eq!(
            Violation::new("", "too long").under("a").description,
            "too long"
        );
    }

    #[test]
    fn display_includes_field_when_present() {
        assert_eq!(Violation::new("", "empty").to_string(), "empty");
        assert_eq!(
            Violation::new("tags[\"a\"]", "bad").to_string(),
            "tags[\"a\"]: bad"
        );
    }
}
