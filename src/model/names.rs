//! Validated names: [`BucketName`], [`ObjectKey`], [`VersionId`].

use std::fmt;
use std::str::FromStr;

use super::Violation;

/// Describes one character for an error message: `'&'` for visible ones,
/// `U+0009` for control and other invisible ones.
pub(crate) fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() && c != ' ' {
        format!("U+{:04X}", c as u32)
    } else if c == ' ' {
        "' ' (space)".to_owned()
    } else {
        format!("{c:?}")
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the value, returning the validated string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Violation;

            /// Same as `parse`.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Violation;

            /// Same as `parse`.
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Violation;

            /// Same as `parse`.
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

/// An OSS bucket name: 3–63 characters from `a-z`, `0-9` and `-`, starting
/// and ending with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketName(String);

impl BucketName {
    /// Shortest allowed name, in characters.
    pub const MIN_LEN: usize = 3;
    /// Longest allowed name, in characters.
    pub const MAX_LEN: usize = 63;

    /// Validates a bucket name. The violation's field is `""` (the name itself).
    pub fn parse(s: &str) -> Result<Self, Violation> {
        let fail = |d: String| Err(Violation::new("", d));
        if let Some(c) = s
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
        {
            return fail(format!(
                "bucket name {s:?} contains {}; only lower-case letters a-z, digits 0-9 and '-' are allowed",
                describe_char(c)
            ));
        }
        // From here on the name is ASCII, so bytes = characters.
        let len = s.len();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return fail(format!(
                "bucket name {s:?} is {len} characters; it must be {} to {} characters",
                Self::MIN_LEN,
                Self::MAX_LEN
            ));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return fail(format!(
                "bucket name {s:?} must start and end with a letter or digit, not '-'"
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(BucketName);

/// An OSS object key: UTF-8, 1–1023 bytes, not starting with `/` or `\`,
/// without ASCII control characters (U+0000–U+001F, U+007F). Case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Longest allowed key, in UTF-8 bytes.
    pub const MAX_BYTES: usize = 1023;

    /// Validates an object key. The violation's field is `""` (the key itself).
    pub fn parse(s: &str) -> Result<Self, Violation> {
        let fail = |d: String| Err(Violation::new("", d));
        if s.is_empty() {
            return fail("object key is empty; it must be 1 to 1023 bytes".to_owned());
        }
        let len = s.len();
        if len > Self::MAX_BYTES {
            return fail(format!(
                "object key is {len} bytes (UTF-8); the limit is {}",
                Self::MAX_BYTES
            ));
        }
        if s.starts_with('/') || s.starts_with('\\') {
            return fail(format!("object key {s:?} must not start with '/' or '\\'"));
        }
        if let Some((i, c)) = s.char_indices().find(|(_, c)| c.is_ascii_control()) {
            return fail(format!(
                "object key {s:?} contains control character {} at byte {i}",
                describe_char(c)
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Length of the key in UTF-8 bytes.
    pub fn len_bytes(&self) -> usize {
        self.0.len()
    }
}

string_newtype!(ObjectKey);

/// An OSS object version ID: non-empty, at most 1024 bytes, printable ASCII
/// (U+0020–U+007E).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(String);

impl VersionId {
    /// Longest allowed version ID, in bytes.
    pub const MAX_BYTES: usize = 1024;

    /// Validates a version ID. The violation's field is `""` (the ID itself).
    pub fn parse(s: &str) -> Result<Self, Violation> {
        let fail = |d: String| Err(Violation::new("", d));
        if s.is_empty() {
            return fail("version ID is empty".to_owned());
        }
        if let Some(c) = s.chars().find(|c| !matches!(c, ' '..='~')) {
            return fail(format!(
                "version ID contains {}; only printable ASCII characters are allowed",
                describe_char(c)
            ));
        }
        let len = s.len();
        if len > Self::MAX_BYTES {
            return fail(format!(
                "version ID is {len} bytes; the limit is {}",
                Self::MAX_BYTES
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(VersionId);
