//! [`TagSet`]: validated object tags, with the `x-oss-tagging` header codec. The `<Tagging>`
//! XML codec is in `crate::oss::xml::tagging`, with the other OSS XML.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::Violation;
use super::names::describe_char;

/// Bytes percent-encoded in the `x-oss-tagging` header: everything outside
/// `A-Z a-z 0-9 - _ . ~` (so `/` becomes `%2F`, space `%20`, `+` `%2B`).
const TAG_HEADER_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The field name tag violations are rooted at.
const FIELD: &str = "tags";

/// `tags["key"]`, with the key quoted like a Rust string literal.
fn tag_field(key: &str) -> String {
    format!("{FIELD}[{key:?}]")
}

/// Whether `c` may appear in a tag key or value: Unicode letters and digits,
/// space, and `+ - = . _ : /`.
fn is_tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || matches!(c, ' ' | '+' | '-' | '=' | '.' | '_' | ':' | '/')
}

/// A validated set of object tags: at most 10 tags, unique keys of 1–128
/// characters, values of 0–256 characters (lengths in Unicode scalar values,
/// not bytes), every character a Unicode letter or digit, a space, or one of
/// `+ - = . _ : /`. Keys and values are case-sensitive.
///
/// Violations are reported with field `tags` (for the set as a whole) or
/// `tags["<key>"]` (for one tag, key quoted with Rust string escaping).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TagSet(BTreeMap<String, String>);

impl TagSet {
    /// Most tags an object may carry.
    pub const MAX_TAGS: usize = 10;
    /// Longest tag key, in characters.
    pub const MAX_KEY_CHARS: usize = 128;
    /// Longest tag value, in characters.
    pub const MAX_VALUE_CHARS: usize = 256;

    /// The empty tag set.
    pub fn empty() -> Self {
        Self(BTreeMap::new())
    }

    /// Validates `(key, value)` pairs. Every problem is reported (not just
    /// the first); a key given twice is a violation.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, Vec<Violation>>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut violations = Vec::new();
        let mut count = 0usize;
        for (k, v) in pairs {
            count += 1;
            let (k, v) = (k.into(), v.into());
            if !seen.insert(k.clone()) {
                violations.push(Violation::new(
                    tag_field(&k),
                    format!("duplicate tag key {k:?}; tag keys must be unique"),
                ));
                continue;
            }
            let before = violations.len();
            check_key(&k, &mut violations);
            check_value(&k, &v, &mut violations);
            if violations.len() == before {
                map.insert(k, v);
            }
        }
        if count > Self::MAX_TAGS {
            violations.push(Violation::new(
                FIELD,
                format!("{count} tags given; the limit is {}", Self::MAX_TAGS),
            ));
        }
        if violations.is_empty() {
            Ok(Self(map))
        } else {
            Err(violations)
        }
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of tag `key`, if present (case-sensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `(key, value)` pairs sorted by key (byte order).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The tags as a map.
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    /// The `x-oss-tagging` header value: `k1=v1&k2=v2` in key order, each key
    /// and value percent-encoded as UTF-8: every byte outside
    /// `A-Z a-z 0-9 - _ . ~` becomes `%XX` (upper-case hex). So space is
    /// `%20` (never `+`), `+` is `%2B`, and `/` is `%2F` (encoded, like every
    /// other reserved byte; [`parse_header_value`](Self::parse_header_value)
    /// accepts it raw too). An empty value is written as `k=`. The empty set
    /// gives `""`.
    pub fn to_header_value(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.extend(utf8_percent_encode(k, TAG_HEADER_ENCODE));
            out.push('=');
            out.extend(utf8_percent_encode(v, TAG_HEADER_ENCODE));
        }
        out
    }

    /// Parses an `x-oss-tagging` header value, the inverse of
    /// [`to_header_value`](Self::to_header_value), then validates the tags.
    ///
    /// Segments are split on `&`, then on the first `=`; a bare `k` means an
    /// empty value. Keys and values are percent-decoded (`%2F` and a raw `/`
    /// are the same; a literal `+` stays `+`, it is not a space). A raw `=`
    /// inside a value (e.g. `a=b=c`) is a violation: it must be sent as
    /// `%3D`. Empty segments (`a=1&&b=2`, a trailing `&`) are ignored, and
    /// an empty or all-whitespace header is the empty set. Decoded bytes
    /// must be UTF-8.
    pub fn parse_header_value(s: &str) -> Result<Self, Vec<Violation>> {
        let mut pairs = Vec::new();
        let mut violations = Vec::new();
        for segment in s.trim().split('&').filter(|seg| !seg.is_empty()) {
            let (raw_key, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
            let key = match percent_decode_str(raw_key).decode_utf8() {
                Ok(k) => k.into_owned(),
                Err(_) => {
                    violations.push(Violation::new(
                        tag_field(raw_key),
                        format!("tag key {raw_key:?} is not valid UTF-8 after percent-decoding"),
                    ));
                    continue;
                }
            };
            if raw_value.contains('=') {
                violations.push(Violation::new(
                    tag_field(&key),
                    format!(
                        "tag header segment {segment:?} has more than one '='; \
                         an '=' inside a key or value must be percent-encoded as %3D"
                    ),
                ));
                continue;
            }
            match percent_decode_str(raw_value).decode_utf8() {
                Ok(v) => pairs.push((key, v.into_owned())),
                Err(_) => violations.push(Violation::new(
                    tag_field(&key),
                    format!("value of tag {key:?} is not valid UTF-8 after percent-decoding"),
                )),
            }
        }
        match Self::from_pairs(pairs) {
            Ok(set) if violations.is_empty() => Ok(set),
            Ok(_) => Err(violations),
            Err(more) => {
                violations.extend(more);
                Err(violations)
            }
        }
    }
}

impl<'a> IntoIterator for &'a TagSet {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

fn check_key(k: &str, out: &mut Vec<Violation>) {
    if k.is_empty() {
        out.push(Violation::new(
            tag_field(k),
            "tag key is empty; it must be 1 to 128 characters",
        ));
        return;
    }
    let chars = k.chars().count();
    if chars > TagSet::MAX_KEY_CHARS {
        out.push(Violation::new(
            tag_field(k),
            format!(
                "tag key {k:?} is {chars} characters; the limit is {}",
                TagSet::MAX_KEY_CHARS
            ),
        ));
    }
    if let Some(c) = k.chars().find(|&c| !is_tag_char(c)) {
        out.push(Violation::new(
            tag_field(k),
            format!(
                "tag key {k:?} contains {}; allowed are letters, digits, space and + - = . _ : /",
                describe_char(c)
            ),
        ));
    }
}

fn check_value(k: &str, v: &str, out: &mut Vec<Violation>) {
    let chars = v.chars().count();
    if chars > TagSet::MAX_VALUE_CHARS {
        out.push(Violation::new(
            tag_field(k),
            format!(
                "value of tag {k:?} is {chars} characters; the limit is {}",
                TagSet::MAX_VALUE_CHARS
            ),
        ));
    }
    if let Some(c) = v.chars().find(|&c| !is_tag_char(c)) {
        out.push(Violation::new(
            tag_field(k),
            format!(
                "value of tag {k:?} contains {}; allowed are letters, digits, space and + - = . _ : /",
                describe_char(c)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::model::test_support::tag_set;

    fn set(pairs: &[(&str, &str)]) -> TagSet {
        TagSet::from_pairs(pairs.iter().copied()).expect("valid tags")
    }

    fn errs(pairs: &[(&str, &str)]) -> Vec<Violation> {
        TagSet::from_pairs(pairs.iter().copied()).expect_err("invalid tags")
    }

    fn one_err(pairs: &[(&str, &str)]) -> Violation {
        let mut v = errs(pairs);
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    // ---- validation -------------------------------------------------------

    #[test]
    fn basic_set_is_sorted_and_queryable() {
        let t = set(&[("b", "2"), ("a", "1"), ("C", "3")]);
        assert_eq!(t.len(), 3);
        assert!(!t.is_empty());
        assert_eq!(t.get("a"), Some("1"));
        assert_eq!(t.get("A"), None, "keys are case-sensitive");
        assert_eq!(t.get("C"), Some("3"));
        let keys: Vec<&str> = t.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["C", "a", "b"]);
        let map = t.clone().into_map();
        assert_eq!(map.get("b").map(String::as_str), Some("2"));
        assert_eq!((&t).into_iter().count(), 3);
        assert!(TagSet::empty().is_empty());
        assert_eq!(TagSet::empty(), TagSet::default());
        assert_eq!(
            TagSet::from_pairs(Vec::<(String, String)>::new()),
            Ok(TagSet::empty())
        );
    }

    #[test]
    fn count_limit_is_ten() {
        let ten: Vec<(String, String)> = (0..10).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(
            TagSet::from_pairs(ten.clone()).unwrap().len(),
            TagSet::MAX_TAGS
        );
        let mut eleven = ten;
        eleven.push(("k10".into(), "v".into()));
        let v = TagSet::from_pairs(eleven).unwrap_err();
        assert_eq!(
            v,
            vec![Violation::new("tags", "11 tags given; the limit is 10")]
        );
    }

    #[test]
    fn key_length_in_characters() {
        assert!(TagSet::from_pairs([("k".repeat(128), "")]).is_ok());
        let long = "k".repeat(129);
        let v = TagSet::from_pairs([(long.clone(), "")]).unwrap_err();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].field, format!("tags[\"{long}\"]"));
        assert_eq!(
            v[0].description,
            format!("tag key \"{long}\" is 129 characters; the limit is 128")
        );
        // 128 three-byte characters (384 bytes) are fine: characters count, not bytes.
        assert!(TagSet::from_pairs([("\u{4e2d}".repeat(128), "")]).is_ok());
        assert!(TagSet::from_pairs([("\u{4e2d}".repeat(129), "")]).is_err());
        assert!(TagSet::from_pairs([("\u{e9}".repeat(128), "")]).is_ok());
    }

    #[test]
    fn value_length_in_characters() {
        assert!(TagSet::from_pairs([("k", "v".repeat(256))]).is_ok());
        let v = one_err(&[("k", &"v".repeat(257))]);
        assert_eq!(v.field, "tags[\"k\"]");
        assert_eq!(
            v.description,
            "value of tag \"k\" is 257 characters; the limit is 256"
        );
        assert!(TagSet::from_pairs([("k", "\u{e9}".repeat(256))]).is_ok());
        assert!(TagSet::from_pairs([("k", "\u{e9}".repeat(257))]).is_err());
    }

    #[test]
    fn empty_key_rejected_empty_value_allowed() {
        let v = one_err(&[("", "v")]);
        assert_eq!(v.field, "tags[\"\"]");
        assert_eq!(
            v.description,
            "tag key is empty; it must be 1 to 128 characters"
        );
        assert_eq!(set(&[("k", "")]).get("k"), Some(""));
    }

    #[test]
    fn allowed_characters() {
        let t = set(&[
            ("a+b-c=d.e_f:g/h", "A+B-C=D.E_F:G/H"),
            ("with space", " leading and trailing "),
            ("\u{4e2d}\u{6587}", "\u{e9}t\u{e9}"),
            ("digits0123", "\u{0663}\u{0664}"),
            ("\u{3b1}\u{3b2}\u{3b3}", "\u{416}"),
        ]);
        assert_eq!(t.len(), 5);
        assert_eq!(t.get("with space"), Some(" leading and trailing "));
    }

    #[test]
    fn rejected_characters_in_keys() {
        for c in [
            '&', '?', '#', '*', '\t', '\n', '%', '<', '>', '"', '\'', ',', ';', '@', '!', '~',
            '\\', '\0',
        ] {
            let key = format!("a{c}b");
            let v = one_err(&[(&key, "v")]);
            assert_eq!(v.field, format!("tags[{key:?}]"), "{c:?}");
            assert!(
                v.description
                    .starts_with(&format!("tag key {key:?} contains ")),
                "{}",
                v.description
            );
            assert!(
                v.description
                    .ends_with("allowed are letters, digits, space and + - = . _ : /")
            );
        }
        assert_eq!(
            one_err(&[("bad&key", "v")]),
            Violation::new(
                "tags[\"bad&key\"]",
                "tag key \"bad&key\" contains '&'; allowed are letters, digits, space and + - = . _ : /"
            )
        );
        assert!(one_err(&[("a\tb", "v")]).description.contains("U+0009"));
    }

    #[test]
    fn rejected_characters_in_values() {
        for c in ['&', '?', '#', '*', '\t', '%', '<', '>', '"', '\u{7f}'] {
            let value = format!("x{c}");
            let v = one_err(&[("key", &value)]);
            assert_eq!(v.field, "tags[\"key\"]", "{c:?}");
            assert!(
                v.description.starts_with("value of tag \"key\" contains "),
                "{}",
                v.description
            );
        }
    }

    #[test]
    fn duplicate_keys_rejected() {
        let v = one_err(&[("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(v.field, "tags[\"a\"]");
        assert_eq!(
            v.description,
            "duplicate tag key \"a\"; tag keys must be unique"
        );
        // Case-sensitive: "a" and "A" are different keys.
        assert_eq!(set(&[("a", "1"), ("A", "2")]).len(), 2);
        // A duplicated invalid key is still reported as duplicate.
        let v = errs(&[("a&", "1"), ("a&", "2")]);
        assert_eq!(v.len(), 2);
        assert!(v[1].description.starts_with("duplicate"));
    }

    #[test]
    fn all_problems_reported() {
        let mut pairs: Vec<(String, String)> =
            (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        pairs[0].0 = "bad?".into();
        pairs[1].1 = "x".repeat(300);
        let v = TagSet::from_pairs(pairs).unwrap_err();
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["tags[\"bad?\"]", "tags[\"k1\"]", "tags"]);
    }

    #[test]
    fn key_with_too_many_chars_and_bad_char_gives_both() {
        let key = format!("{}#", "k".repeat(130));
        assert_eq!(errs(&[(&key, "")]).len(), 2);
    }

    // ---- header codec -----------------------------------------------------

    #[test]
    fn header_encoding_exact() {
        assert_eq!(set(&[("a b+c", "x")]).to_header_value(), "a%20b%2Bc=x");
        assert_eq!(
            set(&[("project", "alpha"), ("team", "storage ops")]).to_header_value(),
            "project=alpha&team=storage%20ops"
        );
        assert_eq!(set(&[("path", "a/b")]).to_header_value(), "path=a%2Fb");
        assert_eq!(set(&[("k", "a=b:c")]).to_header_value(), "k=a%3Db%3Ac");
        assert_eq!(set(&[("k", "")]).to_header_value(), "k=");
        assert_eq!(set(&[("k", "-_.")]).to_header_value(), "k=-_.");
        assert_eq!(
            set(&[("\u{4e2d}\u{6587}", "\u{e9}")]).to_header_value(),
            "%E4%B8%AD%E6%96%87=%C3%A9"
        );
        assert_eq!(TagSet::empty().to_header_value(), "");
        // Sorted by key.
        assert_eq!(set(&[("b", "2"), ("a", "1")]).to_header_value(), "a=1&b=2");
    }

    #[test]
    fn header_parse_basic() {
        assert_eq!(
            TagSet::parse_header_value("project=alpha&team=storage%20ops").unwrap(),
            set(&[("project", "alpha"), ("team", "storage ops")])
        );
        assert_eq!(TagSet::parse_header_value("").unwrap(), TagSet::empty());
        assert_eq!(TagSet::parse_header_value("  ").unwrap(), TagSet::empty());
        assert_eq!(TagSet::parse_header_value("k").unwrap(), set(&[("k", "")]));
        assert_eq!(TagSet::parse_header_value("k=").unwrap(), set(&[("k", "")]));
        assert_eq!(
            TagSet::parse_header_value("a&b=1").unwrap(),
            set(&[("a", ""), ("b", "1")])
        );
        assert_eq!(
            TagSet::parse_header_value("a=1&&b=2&").unwrap(),
            set(&[("a", "1"), ("b", "2")])
        );
    }

    #[test]
    fn header_parse_slash_encoded_or_raw() {
        let want = set(&[("a/b", "c/d")]);
        assert_eq!(TagSet::parse_header_value("a%2Fb=c%2Fd").unwrap(), want);
        assert_eq!(TagSet::parse_header_value("a/b=c/d").unwrap(), want);
        assert_eq!(TagSet::parse_header_value("a%2fb=c%2fd").unwrap(), want);
    }

    #[test]
    fn header_parse_plus_is_literal() {
        assert_eq!(
            TagSet::parse_header_value("a+b=c+d").unwrap(),
            set(&[("a+b", "c+d")])
        );
        assert_eq!(
            TagSet::parse_header_value("a%20b%2Bc=x").unwrap(),
            set(&[("a b+c", "x")])
        );
    }

    #[test]
    fn header_parse_unicode() {
        assert_eq!(
            TagSet::parse_header_value("%E4%B8%AD%E6%96%87=%C3%A9").unwrap(),
            set(&[("\u{4e2d}\u{6587}", "\u{e9}")])
        );
        // Raw (unencoded) UTF-8 is tolerated.
        assert_eq!(
            TagSet::parse_header_value("\u{4e2d}=\u{e9}").unwrap(),
            set(&[("\u{4e2d}", "\u{e9}")])
        );
    }

    #[test]
    fn header_parse_raw_equals_in_value_rejected() {
        let v = TagSet::parse_header_value("aa=bb=cc").unwrap_err();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].field, "tags[\"aa\"]");
        assert!(v[0].description.contains("%3D"), "{}", v[0].description);
        assert_eq!(
            TagSet::parse_header_value("aa=bb%3Dcc").unwrap(),
            set(&[("aa", "bb=cc")])
        );
    }

    #[test]
    fn header_parse_bad_encoding() {
        let v = TagSet::parse_header_value("k=%FF").unwrap_err();
        assert_eq!(v[0].field, "tags[\"k\"]");
        assert!(v[0].description.contains("not valid UTF-8"));
        let v = TagSet::parse_header_value("%C3=v").unwrap_err();
        assert_eq!(v[0].field, "tags[\"%C3\"]");
        // A '%' that is not an escape stays a '%', which is not a tag character.
        let v = TagSet::parse_header_value("k=50%zz").unwrap_err();
        assert!(v[0].description.contains("'%'"), "{}", v[0].description);
        let v = TagSet::parse_header_value("k=%").unwrap_err();
        assert_eq!(v[0].field, "tags[\"k\"]");
    }

    #[test]
    fn header_parse_validates() {
        let v = TagSet::parse_header_value("a=1&a=2").unwrap_err();
        assert_eq!(
            v[0].description,
            "duplicate tag key \"a\"; tag keys must be unique"
        );
        let v = TagSet::parse_header_value("=v").unwrap_err();
        assert_eq!(v[0].field, "tags[\"\"]");
        let v = TagSet::parse_header_value("bad%26key=v").unwrap_err();
        assert_eq!(v[0].field, "tags[\"bad&key\"]");
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        let v = TagSet::parse_header_value(&eleven.join("&")).unwrap_err();
        assert_eq!(
            v,
            vec![Violation::new("tags", "11 tags given; the limit is 10")]
        );
        // Problems found while decoding and while validating are all reported.
        let v = TagSet::parse_header_value("a=b=c&d%3F=1").unwrap_err();
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn header_round_trip_examples() {
        for t in [
            set(&[("a b+c", "x/y=z:w")]),
            set(&[("\u{4e2d}\u{6587}", " \u{e9} "), ("k", "")]),
            set(&[("k".repeat(128).as_str(), "v".repeat(256).as_str())]),
            TagSet::empty(),
        ] {
            assert_eq!(TagSet::parse_header_value(&t.to_header_value()).unwrap(), t);
        }
    }

    // ---- properties -------------------------------------------------------

    proptest! {
        #[test]
        fn header_round_trip(t in tag_set()) {
            let header = t.to_header_value();
            prop_assert!(header.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%=&".contains(&b)));
            prop_assert_eq!(TagSet::parse_header_value(&header).unwrap(), t);
        }

        #[test]
        fn header_parse_never_panics(s in any::<String>()) {
            let _ = TagSet::parse_header_value(&s);
        }

        #[test]
        fn header_parse_never_panics_on_escape_soup(s in "[a%=&+/ 0-9A-Fa-f\u{e9}]{0,40}") {
            if let Ok(t) = TagSet::parse_header_value(&s) {
                prop_assert!(t.len() <= TagSet::MAX_TAGS);
            }
        }

        #[test]
        fn from_pairs_never_panics(pairs in proptest::collection::vec((any::<String>(), any::<String>()), 0..12)) {
            if let Err(v) = TagSet::from_pairs(pairs) {
                prop_assert!(!v.is_empty());
                prop_assert!(v.iter().all(|v| v.field.starts_with("tags") && !v.description.is_empty()));
            }
        }
    }
}
