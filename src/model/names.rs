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

/// An OSS object key: UTF-8, 1–1023 bytes, not starting with `/` or `\`, not `.` or `..`,
/// and without U+0000. Case-sensitive.
///
/// Other control characters (U+0001–U+001F, U+007F) are legal, as in OSS (whose listings
/// return such keys URL-encoded under `encoding-type=url`). Logs stay unforgeable because
/// the text log format escapes caller values, not because keys are refused.
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
        // In a URL path these are dot-segments, which HTTP clients and servers resolve away
        // (RFC 3986 5.2.4): no request can name such an object.
        if s == "." || s == ".." {
            return fail(format!(
                "object key {s:?} is not allowed; '.' and '..' cannot be addressed in a URL"
            ));
        }
        // NUL ends a string in C-based tools and OSS documents no key with it: kept out.
        if let Some(i) = s.find('\0') {
            return fail(format!(
                "object key {s:?} contains control character {} at byte {i}",
                describe_char('\0')
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bucket_err(s: &str) -> String {
        let v = BucketName::parse(s).expect_err(s);
        assert_eq!(v.field, "");
        v.description
    }

    fn key_err(s: &str) -> String {
        let v = ObjectKey::parse(s).expect_err(s);
        assert_eq!(v.field, "");
        v.description
    }

    #[test]
    fn bucket_names_accepted() {
        for s in [
            "abc",
            "a-b",
            "0a9",
            "my-bucket-2024",
            "123",
            "a--b",
            &"a".repeat(63),
        ] {
            let b = BucketName::parse(s).expect(s);
            assert_eq!(b.as_str(), s);
            assert_eq!(b.to_string(), s);
            assert_eq!(b.as_ref(), s);
            assert_eq!(b, s);
        }
    }

    #[test]
    fn bucket_name_length_bounds() {
        assert_eq!(
            bucket_err("ab"),
            "bucket name \"ab\" is 2 characters; it must be 3 to 63 characters"
        );
        assert!(bucket_err("").contains("is 0 characters"));
        assert!(BucketName::parse(&"a".repeat(63)).is_ok());
        assert!(bucket_err(&"a".repeat(64)).contains("is 64 characters"));
    }

    #[test]
    fn bucket_name_characters() {
        assert_eq!(
            bucket_err("My-bucket"),
            "bucket name \"My-bucket\" contains 'M'; only lower-case letters a-z, digits 0-9 and '-' are allowed"
        );
        for s in [
            "a_b",
            "a.b",
            "a b",
            "ab\u{e9}",
            "abc/",
            "a\tb",
            "\u{4e2d}\u{6587}\u{540d}",
        ] {
            assert!(bucket_err(s).contains("only lower-case letters"), "{s:?}");
        }
        assert!(bucket_err("a\tbc").contains("U+0009"));
    }

    #[test]
    fn bucket_name_edges_must_be_alphanumeric() {
        for s in ["-abc", "abc-", "-a-", "---"] {
            assert_eq!(
                bucket_err(s),
                format!("bucket name {s:?} must start and end with a letter or digit, not '-'")
            );
        }
    }

    #[test]
    fn object_keys_accepted() {
        for s in [
            "a",
            "dir/file.txt",
            "a/",
            "dir//x",
            "\u{4e2d}\u{6587}/\u{6587}\u{4ef6}.txt",
            "sp ace",
            "a\\b",
            "~!@#$%^&*()+=?",
            "...",
            "./x",
            "x/../y",
        ] {
            let k = ObjectKey::parse(s).expect(s);
            assert_eq!(k.as_str(), s);
            assert_eq!(k.len_bytes(), s.len());
        }
    }

    #[test]
    fn object_key_byte_length_bounds() {
        assert_eq!(
            key_err(""),
            "object key is empty; it must be 1 to 1023 bytes"
        );
        assert!(ObjectKey::parse(&"k".repeat(1023)).is_ok());
        assert_eq!(
            key_err(&"k".repeat(1024)),
            "object key is 1024 bytes (UTF-8); the limit is 1023"
        );
        // Multi-byte characters count in bytes: 341 * 3 = 1023, 342 * 3 = 1026.
        assert!(ObjectKey::parse(&"\u{4e2d}".repeat(341)).is_ok());
        assert!(key_err(&"\u{4e2d}".repeat(342)).contains("1026 bytes"));
        // 1022 ASCII + one 2-byte char = 1024 bytes although only 1023 chars.
        let s = format!("{}\u{e9}", "k".repeat(1022));
        assert_eq!(s.chars().count(), 1023);
        assert!(key_err(&s).contains("1024 bytes"));
    }

    #[test]
    fn object_key_leading_separator() {
        assert_eq!(
            key_err("/a"),
            "object key \"/a\" must not start with '/' or '\\'"
        );
        assert!(key_err("\\a").contains("must not start with"));
        assert!(key_err("/").contains("must not start with"));
        assert!(ObjectKey::parse("a/").is_ok());
    }

    #[test]
    fn object_keys_that_are_dot_segments() {
        // A URL cannot carry them: clients and servers resolve them away.
        for s in [".", ".."] {
            assert!(key_err(s).contains("cannot be addressed in a URL"), "{s:?}");
        }
    }

    #[test]
    fn object_key_control_characters() {
        // OSS accepts U+0001–U+001F and U+007F in keys.
        for s in [
            "a\tb", "a\nb", "a\r", "\u{1}", "x\u{1f}", "x\u{7f}y", "a\u{85}b",
        ] {
            assert!(ObjectKey::parse(s).is_ok(), "{s:?}");
        }
        assert_eq!(
            key_err("a\0b"),
            "object key \"a\\0b\" contains control character U+0000 at byte 1"
        );
        assert!(key_err("\0").contains("control character"));
    }

    #[test]
    fn version_ids() {
        for s in [
            "null",
            "CAEQNhiBgMDJgZCA0BYiIDc4MGZjZGI2OTBjOTRmNTE5NmU5NmFmZjQxYmI3****",
            "a b",
            &"v".repeat(1024),
        ] {
            assert_eq!(VersionId::parse(s).expect(s).as_str(), s);
        }
        assert_eq!(
            VersionId::parse("").unwrap_err().description,
            "version ID is empty"
        );
        assert_eq!(
            VersionId::parse(&"v".repeat(1025)).unwrap_err().description,
            "version ID is 1025 bytes; the limit is 1024"
        );
        assert_eq!(
            VersionId::parse("ab\tc").unwrap_err().description,
            "version ID contains U+0009; only printable ASCII characters are allowed"
        );
        assert!(VersionId::parse("\u{e9}").is_err());
        assert!(VersionId::parse("a\u{7f}").is_err());
    }

    #[test]
    fn conversions() {
        let k: ObjectKey = "a/b".parse().unwrap();
        assert_eq!(String::from(k.clone()), "a/b");
        assert_eq!(k.clone().into_string(), "a/b");
        assert_eq!(ObjectKey::try_from("a/b".to_owned()), Ok(k.clone()));
        assert_eq!(ObjectKey::try_from("a/b"), Ok(k));
        assert!("AB".parse::<BucketName>().is_err());
        assert!(VersionId::try_from("").is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_accept_what_they_check(s in any::<String>()) {
            if let Ok(b) = BucketName::parse(&s) {
                prop_assert!((3..=63).contains(&b.as_str().len()));
            }
            if let Ok(k) = ObjectKey::parse(&s) {
                prop_assert!((1..=1023).contains(&k.as_str().len()));
                prop_assert!(!k.as_str().starts_with(['/', '\\']));
            }
            let _ = VersionId::parse(&s);
        }

        #[test]
        fn generated_bucket_names_are_valid(s in "[a-z0-9][a-z0-9-]{1,61}[a-z0-9]") {
            prop_assert!(BucketName::parse(&s).is_ok());
        }
    }
}
