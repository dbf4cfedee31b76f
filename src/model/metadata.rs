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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta(pairs: &[(&str, &str)]) -> UserMetadata {
        UserMetadata::from_pairs(pairs.iter().copied()).expect("valid metadata")
    }

    fn errs(pairs: &[(&str, &str)]) -> Vec<Violation> {
        UserMetadata::from_pairs(pairs.iter().copied()).expect_err("invalid metadata")
    }

    #[test]
    fn keys_are_folded_to_lower_case() {
        let m = meta(&[("Author", "Ann"), ("x-Trace-ID", "42"), ("a1-B2", "")]);
        let keys: Vec<&str> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a1-b2", "author", "x-trace-id"]);
        assert_eq!(m.len(), 3);
        assert!(!m.is_empty());
        assert_eq!(m.get("author"), Some("Ann"));
        assert_eq!(m.get("AUTHOR"), Some("Ann"));
        assert_eq!(m.get("a1-b2"), Some(""));
        assert_eq!(m.get("missing"), None);
        assert_eq!(
            m.clone().into_map().get("x-trace-id").map(String::as_str),
            Some("42")
        );
        assert!(UserMetadata::empty().is_empty());
        assert_eq!(UserMetadata::empty(), UserMetadata::default());
    }

    #[test]
    fn header_pairs_add_the_prefix() {
        let m = meta(&[("Author", "Ann Lee"), ("b", "x=y; z")]);
        let pairs: Vec<(String, &str)> = m.header_pairs().collect();
        assert_eq!(
            pairs,
            [
                ("x-oss-meta-author".to_owned(), "Ann Lee"),
                ("x-oss-meta-b".to_owned(), "x=y; z"),
            ]
        );
    }

    #[test]
    fn key_characters() {
        for bad in [
            "under_score",
            "sp ace",
            "dot.ted",
            "\u{e9}",
            "a/b",
            "a:b",
            "tab\t",
        ] {
            let v = errs(&[(bad, "v")]);
            assert_eq!(v.len(), 1, "{bad:?}");
            assert_eq!(v[0].field, format!("metadata[{bad:?}]"));
            assert!(
                v[0].description
                    .ends_with("only letters A-Z a-z, digits 0-9 and '-' are allowed"),
                "{}",
                v[0].description
            );
        }
        assert_eq!(
            errs(&[("my_key", "v")]),
            vec![Violation::new(
                "metadata[\"my_key\"]",
                "metadata key \"my_key\" contains '_'; only letters A-Z a-z, digits 0-9 and '-' are allowed"
            )]
        );
        assert_eq!(
            errs(&[("", "v")]),
            vec![Violation::new("metadata[\"\"]", "metadata key is empty")]
        );
        assert!(UserMetadata::from_pairs([("-", "v")]).is_ok());
    }

    #[test]
    fn case_folding_collisions() {
        let v = errs(&[("Color", "red"), ("color", "blue")]);
        assert_eq!(
            v,
            vec![Violation::new(
                "metadata[\"color\"]",
                "metadata key \"color\" collides with \"Color\": keys are case-insensitive (both are \"color\")"
            )]
        );
        let v = errs(&[("a", "1"), ("a", "2")]);
        assert_eq!(v[0].description, "duplicate metadata key \"a\"");
    }

    #[test]
    fn value_characters() {
        assert!(
            UserMetadata::from_pairs([("k", " ~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./ x")]).is_err(),
            "leading space"
        );
        assert!(UserMetadata::from_pairs([("k", "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./ x")]).is_ok());
        assert!(UserMetadata::from_pairs([("k", "inner  spaces")]).is_ok());
        let v = errs(&[("K", "caf\u{e9}")]);
        assert_eq!(
            v,
            vec![Violation::new(
                "metadata[\"K\"]",
                "value of metadata key \"K\" contains '\u{e9}'; only printable ASCII (U+0020 to U+007E) is allowed"
            )]
        );
        assert!(
            errs(&[("k", "\u{4e2d}")])[0]
                .description
                .contains("printable ASCII")
        );
        assert!(errs(&[("k", "a\tb")])[0].description.contains("U+0009"));
        assert!(errs(&[("k", "a\r\nb")])[0].description.contains("U+000D"));
        assert!(errs(&[("k", "\u{7f}")])[0].description.contains("U+007F"));
        assert_eq!(
            errs(&[("k", "v ")])[0].description,
            "value of metadata key \"k\" has a leading or trailing space"
        );
        assert_eq!(errs(&[("k", " ")]).len(), 1);
    }

    #[test]
    fn total_size_boundary() {
        // key "k" (1 byte) + value 8191 bytes = 8192: allowed.
        let m = UserMetadata::from_pairs([("k", "v".repeat(8191))]).unwrap();
        assert_eq!(m.total_bytes(), UserMetadata::MAX_TOTAL_BYTES);
        let v = UserMetadata::from_pairs([("k", "v".repeat(8192))]).unwrap_err();
        assert_eq!(
            v,
            vec![Violation::new(
                "metadata",
                "user metadata is 8193 bytes (keys without \"x-oss-meta-\" plus values); the limit is 8192"
            )]
        );
        // Summed over entries.
        let many: Vec<(String, String)> = (0..8)
            .map(|i| (format!("k{i}"), "v".repeat(1022)))
            .collect();
        assert_eq!(
            UserMetadata::from_pairs(many.clone())
                .unwrap()
                .total_bytes(),
            8192
        );
        let mut more = many;
        more.push(("z".into(), String::new()));
        assert!(UserMetadata::from_pairs(more).is_err());
    }

    #[test]
    fn all_problems_reported() {
        let v = UserMetadata::from_pairs([
            ("bad_key", "ok".to_owned()),
            ("Ok", "\u{e9}".to_owned()),
            ("big", "x".repeat(9000)),
        ])
        .unwrap_err();
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["metadata[\"bad_key\"]", "metadata[\"Ok\"]", "metadata"]
        );
    }

    #[test]
    fn from_headers_is_lenient() {
        let m = UserMetadata::from_headers([
            ("X-OSS-Meta-Author", "Ann"),
            ("x-oss-meta-under_score", " raw \u{e9} "),
            ("content-type", "text/plain"),
            ("x-oss-meta-", "skipped"),
            ("x-oss-met", "short"),
            ("x-oss-meta-multi", "a"),
            ("x-oss-meta-MULTI", "b"),
            ("x-oss-\u{e9}eta-zz", "non-ascii name"),
        ]);
        let got: Vec<(&str, &str)> = m.iter().collect();
        assert_eq!(
            got,
            [
                ("author", "Ann"),
                ("multi", "a, b"),
                ("under_score", " raw \u{e9} ")
            ]
        );
        assert!(UserMetadata::from_headers([]).is_empty());
    }

    #[test]
    fn header_round_trip() {
        let m = meta(&[("Author", "Ann"), ("trace-id", "1-2-3")]);
        let headers: Vec<(String, String)> =
            m.header_pairs().map(|(k, v)| (k, v.to_owned())).collect();
        let back =
            UserMetadata::from_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(back, m);
    }

    proptest! {
        #[test]
        fn from_pairs_never_panics(pairs in proptest::collection::vec((any::<String>(), any::<String>()), 0..6)) {
            match UserMetadata::from_pairs(pairs) {
                Ok(m) => prop_assert!(m.total_bytes() <= UserMetadata::MAX_TOTAL_BYTES),
                Err(v) => {
                    prop_assert!(!v.is_empty());
                    prop_assert!(v.iter().all(|v| v.field.starts_with("metadata")));
                }
            }
        }

        #[test]
        fn valid_metadata_round_trips_through_headers(
            m in proptest::collection::btree_map("[a-zA-Z0-9-]{1,20}", "([!-~]([ -~]{0,30}[!-~])?)?", 0..8)
        ) {
            let lower: std::collections::BTreeSet<String> = m.keys().map(|k| k.to_ascii_lowercase()).collect();
            prop_assume!(lower.len() == m.len());
            let meta = UserMetadata::from_pairs(m).unwrap();
            let headers: Vec<(String, String)> =
                meta.header_pairs().map(|(k, v)| (k, v.to_owned())).collect();
            let back = UserMetadata::from_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            prop_assert_eq!(back, meta);
        }

        #[test]
        fn from_headers_never_panics(h in proptest::collection::vec((any::<String>(), any::<String>()), 0..6)) {
            let _ = UserMetadata::from_headers(h.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
    }
}
