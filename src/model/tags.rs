//! [`TagSet`]: validated object tags, with the `x-oss-tagging` header codec
//! and the `<Tagging>` XML codec.

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use quick_xml::Reader;
use quick_xml::events::Event;

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

    /// The tagging XML document (PutObjectTagging body, GetObjectTagging
    /// result): `<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag>…</TagSet></Tagging>`
    /// in key order, text XML-escaped (`&`, `<`, `>`, quotes), no XML
    /// declaration, no whitespace between elements.
    pub fn to_xml(&self) -> String {
        tags_to_xml(self.iter())
    }

    /// Parses a tagging XML document (see [`parse_tagging_xml`]) and
    /// validates the tags ([`TagXmlError::Invalid`]).
    pub fn from_xml(xml: &str) -> Result<Self, TagXmlError> {
        let pairs = parse_tagging_xml(xml)?;
        Self::from_pairs(pairs).map_err(TagXmlError::Invalid)
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

/// Writes tagging XML for any pairs (no validation; text is XML-escaped).
fn tags_to_xml<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("<Tagging><TagSet>");
    for (k, v) in pairs {
        out.push_str("<Tag><Key>");
        out.push_str(&quick_xml::escape::escape(k));
        out.push_str("</Key><Value>");
        out.push_str(&quick_xml::escape::escape(v));
        out.push_str("</Value></Tag>");
    }
    out.push_str("</TagSet></Tagging>");
    out
}

/// Why a tagging XML document was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagXmlError {
    /// Not well-formed XML, or not shaped like a `<Tagging>` document
    /// (OSS answers `MalformedXML`). The string says what was wrong.
    Malformed(String),
    /// Well-formed, but the tags break the rules (see [`TagSet`]).
    Invalid(Vec<Violation>),
}

impl fmt::Display for TagXmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagXmlError::Malformed(why) => write!(f, "malformed tagging XML: {why}"),
            TagXmlError::Invalid(violations) => {
                f.write_str("invalid tags: ")?;
                for (i, v) in violations.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for TagXmlError {}

/// Where the parser is inside the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the root element.
    Prolog,
    /// Inside `<Tagging>`.
    Tagging,
    /// Inside `<TagSet>`.
    TagSet,
    /// Inside `<Tag>`.
    Tag,
    /// Inside `<Key>` or `<Value>` (text is collected).
    Text(TextField),
    /// After `</Tagging>`.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextField {
    Key,
    Value,
}

/// Parses a tagging XML document without checking the tag rules (for reading
/// what OSS returns; [`TagSet::from_xml`] validates too).
///
/// The shape is strict: root `<Tagging>` (namespace prefix and attributes
/// ignored) holding at most one `<TagSet>`, which holds only `<Tag>`
/// elements, each with exactly one `<Key>` and at most one `<Value>`
/// (missing = empty value). `<Tagging/>` and `<TagSet/>` mean no tags.
/// Text is unescaped (predefined entities, character references, CDATA) and
/// kept exactly, including spaces. Comments, processing instructions and a
/// declaration are allowed; anything else (unknown elements, stray text, a
/// second root, a DOCTYPE) is [`TagXmlError::Malformed`]. Pairs are returned
/// in document order, duplicates included.
pub fn parse_tagging_xml(xml: &str) -> Result<Vec<(String, String)>, TagXmlError> {
    let malformed = |why: String| Err(TagXmlError::Malformed(why));
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;

    let mut state = State::Prolog;
    let mut seen_tagset = false;
    let mut pairs = Vec::new();
    let mut key: Option<String> = None;
    let mut value: Option<String> = None;
    let mut text = String::new();

    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                return malformed(format!("{e} (at byte {})", reader.error_position()));
            }
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                let name = String::from_utf8_lossy(local.as_ref()).into_owned();
                match (state, name.as_str()) {
                    (State::Prolog, "Tagging") => {
                        state = if empty { State::Done } else { State::Tagging };
                    }
                    (State::Prolog, _) => {
                        return malformed(format!(
                            "the root element is <{name}>; expected <Tagging>"
                        ));
                    }
                    (State::Tagging, "TagSet") => {
                        if seen_tagset {
                            return malformed("more than one <TagSet>".to_owned());
                        }
                        seen_tagset = true;
                        if !empty {
                            state = State::TagSet;
                        }
                    }
                    (State::TagSet, "Tag") => {
                        if empty {
                            return malformed("a <Tag> has no <Key>".to_owned());
                        }
                        key = None;
                        value = None;
                        state = State::Tag;
                    }
                    (State::Tag, "Key") | (State::Tag, "Value") => {
                        let field = if name == "Key" {
                            TextField::Key
                        } else {
                            TextField::Value
                        };
                        let slot = match field {
                            TextField::Key => &mut key,
                            TextField::Value => &mut value,
                        };
                        if slot.is_some() {
                            return malformed(format!("a <Tag> has more than one <{name}>"));
                        }
                        if empty {
                            *slot = Some(String::new());
                        } else {
                            text.clear();
                            state = State::Text(field);
                        }
                    }
                    (State::Done, _) => {
                        return malformed(format!("element <{name}> after the end of <Tagging>"));
                    }
                    (State::Text(_), _) => {
                        return malformed(format!(
                            "element <{name}> inside a <Key> or <Value>; only text is allowed"
                        ));
                    }
                    (_, _) => {
                        return malformed(format!(
                            "unexpected element <{name}> in {}",
                            where_(state)
                        ));
                    }
                }
            }
            Event::End(_) => {
                state = match state {
                    State::Tagging => State::Done,
                    State::TagSet => State::Tagging,
                    State::Tag => {
                        let Some(k) = key.take() else {
                            return malformed("a <Tag> has no <Key>".to_owned());
                        };
                        pairs.push((k, value.take().unwrap_or_default()));
                        State::TagSet
                    }
                    State::Text(field) => {
                        let s = std::mem::take(&mut text);
                        match field {
                            TextField::Key => key = Some(s),
                            TextField::Value => value = Some(s),
                        }
                        State::Tag
                    }
                    // check_end_names makes unmatched end tags a reader error.
                    State::Prolog | State::Done => {
                        return malformed("unexpected end tag".to_owned());
                    }
                };
            }
            Event::Text(t) => {
                let s = match t.xml10_content() {
                    Ok(s) => s,
                    Err(e) => return malformed(e.to_string()),
                };
                if let State::Text(_) = state {
                    text.push_str(&s);
                } else if !s.trim_matches(is_xml_space).is_empty() {
                    return malformed(format!("unexpected text {s:?} in {}", where_(state)));
                }
            }
            Event::CData(c) => {
                if let State::Text(_) = state {
                    match c.decode() {
                        Ok(s) => text.push_str(&s),
                        Err(e) => return malformed(e.to_string()),
                    }
                } else {
                    return malformed(format!("unexpected CDATA in {}", where_(state)));
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = match r.decode() {
                            Ok(n) => n.into_owned(),
                            Err(e) => return malformed(e.to_string()),
                        };
                        match quick_xml::escape::resolve_xml_entity(&name) {
                            Some(s) => s.to_owned(),
                            None => {
                                return malformed(format!("unknown entity &{name};"));
                            }
                        }
                    }
                    Err(e) => return malformed(e.to_string()),
                };
                if let State::Text(_) = state {
                    text.push_str(&resolved);
                } else {
                    return malformed(format!("unexpected text {resolved:?} in {}", where_(state)));
                }
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return malformed("a DOCTYPE is not allowed".to_owned()),
            Event::Eof => {
                return match state {
                    State::Done => Ok(pairs),
                    State::Prolog => malformed("no <Tagging> element".to_owned()),
                    _ => malformed(format!("the document ends inside {}", where_(state))),
                };
            }
        }
    }
}

fn where_(state: State) -> &'static str {
    match state {
        State::Prolog => "the prolog",
        State::Tagging => "<Tagging>",
        State::TagSet => "<TagSet>",
        State::Tag => "<Tag>",
        State::Text(TextField::Key) => "<Key>",
        State::Text(TextField::Value) => "<Value>",
        State::Done => "the end of the document",
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}
