//! [`UserMetadata`]: validated `x-oss-meta-*` user metadata.

use std::collections::BTreeMap;

use super::Violation;
use super::names::describe_char;

/// The header name prefix of user metadata.
pub const META_PREFIX: &str = "x-oss-meta-";

/// The field name metadata violations are rooted at.
const FIELD: &str = "metadata";

/// `metadata["Key"]`, with the key as given, quoted like a Rust string literal.
fn meta_field(key: &str) -> String {
    format!("{FIELD}[{key:?}]")
}

/// Validated user metadata, keyed by the lower-case name WITHOUT the
/// `x-oss-meta-` prefix.
///
/// Rules: keys are non-empty and use only `A-Z a-z 0-9 -`; they are folded to
/// lower case (as OSS does), and two keys that are equal after folding are a
/// violation. Values are printable ASCII (U+0020–U+007E) without a leading
/// or trailing space (OSS and the signers disagree on trimming, so such values
/// are refused rather than silently changed); empty values are allowed.
/// The total size, the sum over all entries of `key.len() + value.len()`
/// (bytes, key without the prefix), is at most [`MAX_TOTAL_BYTES`](Self::MAX_TOTAL_BYTES).
///
/// Violations are reported with field `metadata` (for the whole) or
/// `metadata["<key as given>"]` (for one entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserMetadata(BTreeMap<String, String>);

impl UserMetadata {
    /// Limit on the sum of `key.len() + value.len()` over all entries.
    pub const MAX_TOTAL_BYTES: usize = 8192;
    /// The header name prefix, `x-oss-meta-`.
    pub const HEADER_PREFIX: &'static str = META_PREFIX;

    /// No metadata.
    pub fn empty() -> Self {
        Self(BTreeMap::new())
    }

    /// Validates `(key, value)` pairs (keys without `x-oss-meta-`). Every
    /// problem is reported, not just the first.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, Vec<Violation>>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        // lower-case key -> key as first given, to name collisions.
        let mut originals: BTreeMap<String, String> = BTreeMap::new();
        let mut violations = Vec::new();
        let mut total = 0usize;
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            let before = violations.len();
            total = total.saturating_add(k.len()).saturating_add(v.len());
            check_key(&k, &mut violations);
            check_value(&k, &v, &mut violations);
            let lower = k.to_ascii_lowercase();
            if let Some(first) = originals.get(&lower) {
                let description = if *first == k {
                    format!("duplicate metadata key {k:?}")
                } else {
                    format!(
                        "metadata key {k:?} collides with {first:?}: keys are case-insensitive (both are {lower:?})"
                    )
                };
                violations.push(Violation::new(meta_field(&k), description));
                continue;
            }
            originals.insert(lower.clone(), k);
            if violations.len() == before {
                map.insert(lower, v);
            }
        }
        if total > Self::MAX_TOTAL_BYTES {
            violations.push(Violation::new(
                FIELD,
                format!(
                    "user metadata is {total} bytes (keys without \"x-oss-meta-\" plus values); the limit is {}",
                    Self::MAX_TOTAL_BYTES
                ),
            ));
        }
        if violations.is_empty() {
            Ok(Self(map))
        } else {
            Err(violations)
        }
    }

    /// `(lower-case key, value)` pairs sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value for `k` (without prefix; matched case-insensitively).
    pub fn get(&self, k: &str) -> Option<&str> {
        match self.0.get(k) {
            Some(v) => Some(v.as_str()),
            None => self.0.get(&k.to_ascii_lowercase()).map(String::as_str),
        }
    }

    /// The entries as a map (lower-case keys without prefix).
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    /// Sum of `key.len() + value.len()` over all entries (the quantity
    /// limited by [`MAX_TOTAL_BYTES`](Self::MAX_TOTAL_BYTES)).
    pub fn total_bytes(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// `("x-oss-meta-<key>", value)` header pairs to send, sorted by key.
    pub fn header_pairs(&self) -> impl Iterator<Item = (String, &str)> {
        self.0
            .iter()
            .map(|(k, v)| (format!("{META_PREFIX}{k}"), v.as_str()))
    }

    /// Lenient: collects every `x-oss-meta-*` header (name matched
    /// case-insensitively; key = rest of the name in lower case) without
    /// validating anything. Other headers and a bare `x-oss-meta-` are
    /// skipped. A key seen twice gets its values joined with `", "` (HTTP
    /// field combination), in the order given.
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let Some(prefix) = name.get(..META_PREFIX.len()) else {
                continue;
            };
            if !prefix.eq_ignore_ascii_case(META_PREFIX) {
                continue;
            }
            let key = name[META_PREFIX.len()..].to_ascii_lowercase();
            if key.is_empty() {
                continue;
            }
            map.entry(key)
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_owned());
        }
        Self(map)
    }
}

fn check_key(k: &str, out: &mut Vec<Violation>) {
    if k.is_empty() {
        out.push(Violation::new(meta_field(k), "metadata key is empty"));
        return;
    }
    if let Some(c) = k
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        out.push(Violation::new(
            meta_field(k),
            format!(
                "metadata key {k:?} contains {}; only letters A-Z a-z, digits 0-9 and '-' are allowed",
                describe_char(c)
            ),
        ));
    }
}

fn check_value(k: &str, v: &str, out: &mut Vec<Violation>) {
    if let Some(c) = v.chars().find(|c| !matches!(c, ' '..='~')) {
        out.push(Violation::new(
            meta_field(k),
            format!(
                "value of metadata key {k:?} contains {}; only printable ASCII (U+0020 to U+007E) is allowed",
                describe_char(c)
            ),
        ));
    } else if v.starts_with(' ') || v.ends_with(' ') {
        out.push(Violation::new(
            meta_field(k),
            format!("value of metadata key {k:?} has a leading or trailing space"),
        ));
    }
}
