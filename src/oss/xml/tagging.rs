//! The `<Tagging>` XML codec (PutObjectTagging body, GetObjectTagging result), used by the
//! client and the emulator.
//!
//! Unlike the other OSS documents in [`super`], this one is read with quick-xml's event reader
//! rather than serde: the emulator must refuse what OSS refuses (a second `<TagSet>`, a repeated
//! `<Key>`, stray text, a DOCTYPE, anything after the root) with a precise reason, and keep
//! `<Key>`/`<Value>` text exactly, spaces included. A serde DTO ignores or trims these, so it
//! would accept documents this parser refuses (the tests below pin every case).

use std::fmt;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::model::{TagSet, Violation};

/// The tagging XML document (PutObjectTagging body, GetObjectTagging
/// result): `<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag>…</TagSet></Tagging>`
/// in key order, text XML-escaped (`&`, `<`, `>`, quotes), no XML
/// declaration, no whitespace between elements.
pub fn tagging_xml(tags: &TagSet) -> String {
    tags_to_xml(tags.iter())
}

/// Parses a tagging XML document (see [`parse_tagging_xml`]) and
/// validates the tags ([`TagXmlError::Invalid`]).
pub fn tag_set_from_xml(xml: &str) -> Result<TagSet, TagXmlError> {
    let pairs = parse_tagging_xml(xml)?;
    TagSet::from_pairs(pairs).map_err(TagXmlError::Invalid)
}

/// Writes tagging XML for any pairs (no validation; text is XML-escaped): the emulator's
/// bucket tags, whose rules differ from an object's [`TagSet`].
pub fn tags_to_xml<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
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
/// what OSS returns; [`tag_set_from_xml`] validates too).
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::model::test_support::tag_set;

    fn set(pairs: &[(&str, &str)]) -> TagSet {
        TagSet::from_pairs(pairs.iter().copied()).expect("valid tags")
    }

    // ---- XML codec --------------------------------------------------------

    #[test]
    fn xml_exact_output() {
        assert_eq!(
            tagging_xml(&set(&[("b", "2"), ("a", "1")])),
            "<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag>\
             <Tag><Key>b</Key><Value>2</Value></Tag></TagSet></Tagging>"
        );
        assert_eq!(
            tagging_xml(&TagSet::empty()),
            "<Tagging><TagSet></TagSet></Tagging>"
        );
    }

    #[test]
    fn xml_matches_sdk_capture_body() {
        // Body of the PutObjectTagging wire captures (tests/fixtures/sdk-captures).
        assert_eq!(
            tagging_xml(&set(&[("key two", "value/2"), ("k1", "v1")])),
            "<Tagging><TagSet><Tag><Key>k1</Key><Value>v1</Value></Tag>\
             <Tag><Key>key two</Key><Value>value/2</Value></Tag></TagSet></Tagging>"
        );
    }

    #[test]
    fn xml_escaping_round_trip() {
        let pairs = [("a&b", "<x>"), ("q\"'", "&amp;")];
        let xml = tags_to_xml(pairs.iter().copied());
        assert!(
            xml.contains("<Key>a&amp;b</Key><Value>&lt;x&gt;</Value>"),
            "{xml}"
        );
        assert!(xml.contains("<Value>&amp;amp;</Value>"), "{xml}");
        let back = parse_tagging_xml(&xml).unwrap();
        let want: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn xml_round_trip_examples() {
        for t in [
            set(&[("a b", " x "), ("\u{4e2d}\u{6587}", "\u{e9}/+=:._-")]),
            set(&[("k", "")]),
            TagSet::empty(),
        ] {
            assert_eq!(tag_set_from_xml(&tagging_xml(&t)).unwrap(), t);
        }
    }

    #[test]
    fn xml_parse_accepts_common_shapes() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<Tagging xmlns="http://doc.oss-cn-hangzhou.aliyuncs.com">
  <!-- comment -->
  <TagSet>
    <Tag>
      <Key>project</Key>
      <Value>alpha</Value>
    </Tag>
    <Tag><Value>v2</Value><Key>k2</Key></Tag>
  </TagSet>
</Tagging>
"#;
        assert_eq!(
            tag_set_from_xml(doc).unwrap(),
            set(&[("project", "alpha"), ("k2", "v2")])
        );
        for empty in [
            "<Tagging/>",
            "<Tagging></Tagging>",
            "<Tagging><TagSet/></Tagging>",
            "<Tagging><TagSet></TagSet></Tagging>",
            "<?xml version=\"1.0\"?>\n<Tagging>\n<TagSet>\n</TagSet>\n</Tagging>\n",
        ] {
            assert_eq!(tag_set_from_xml(empty).unwrap(), TagSet::empty(), "{empty}");
        }
    }

    #[test]
    fn xml_parse_value_forms() {
        let one = |xml: &str| parse_tagging_xml(xml).unwrap();
        let wrap = |tag: &str| format!("<Tagging><TagSet><Tag>{tag}</Tag></TagSet></Tagging>");
        assert_eq!(one(&wrap("<Key>k</Key>")), [("k".into(), "".into())]);
        assert_eq!(
            one(&wrap("<Key>k</Key><Value/>")),
            [("k".into(), "".into())]
        );
        assert_eq!(
            one(&wrap("<Key>k</Key><Value></Value>")),
            [("k".into(), "".into())]
        );
        assert_eq!(
            one(&wrap("<Key> k </Key><Value>  </Value>")),
            [(" k ".into(), "  ".into())],
            "whitespace is kept"
        );
        assert_eq!(
            one(&wrap(
                "<Key>&#20013;&#x6587;</Key><Value><![CDATA[a<b&c]]></Value>"
            )),
            [("\u{4e2d}\u{6587}".into(), "a<b&c".into())]
        );
        assert_eq!(
            one(&wrap("<Key>a&lt;&gt;&amp;&quot;&apos;b</Key>")),
            [("a<>&\"'b".into(), "".into())]
        );
        // Duplicates and order are preserved by the lenient parser.
        assert_eq!(
            one(
                "<Tagging><TagSet><Tag><Key>b</Key></Tag><Tag><Key>a</Key></Tag><Tag><Key>b</Key></Tag></TagSet></Tagging>"
            ),
            [
                ("b".into(), "".into()),
                ("a".into(), "".into()),
                ("b".into(), "".into())
            ]
        );
    }

    fn malformed(xml: &str) -> String {
        match parse_tagging_xml(xml) {
            Err(TagXmlError::Malformed(why)) => {
                assert!(matches!(
                    tag_set_from_xml(xml),
                    Err(TagXmlError::Malformed(_))
                ));
                why
            }
            other => panic!("{xml:?} gave {other:?}"),
        }
    }

    #[test]
    fn xml_malformed_documents() {
        assert_eq!(malformed(""), "no <Tagging> element");
        assert_eq!(malformed("   "), "no <Tagging> element");
        assert_eq!(
            malformed("not xml"),
            "unexpected text \"not xml\" in the prolog"
        );
        assert_eq!(
            malformed("<Foo/>"),
            "the root element is <Foo>; expected <Tagging>"
        );
        assert_eq!(
            malformed("<TagSet><Tag><Key>a</Key></Tag></TagSet>"),
            "the root element is <TagSet>; expected <Tagging>"
        );
        assert!(malformed("<Tagging>").contains("ends inside <Tagging>"));
        assert!(malformed("<Tagging><TagSet><Tag><Key>a").contains("<Key>"));
        malformed("<Tagging><TagSet></Tagging>");
        malformed("<Tagging></TagSet>");
        malformed("<Tagging><TagSet><Tag><Key>a</Value></Tag></TagSet></Tagging>");
        assert_eq!(
            malformed("<Tagging/><Tagging/>"),
            "element <Tagging> after the end of <Tagging>"
        );
        assert!(malformed("<Tagging/>junk").contains("unexpected text"));
        assert_eq!(
            malformed("<Tagging><Foo/></Tagging>"),
            "unexpected element <Foo> in <Tagging>"
        );
        assert_eq!(
            malformed("<Tagging><TagSet/><TagSet/></Tagging>"),
            "more than one <TagSet>"
        );
        assert_eq!(
            malformed("<Tagging><TagSet><Key>a</Key></TagSet></Tagging>"),
            "unexpected element <Key> in <TagSet>"
        );
        assert_eq!(
            malformed("<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>"),
            "a <Tag> has no <Key>"
        );
        assert_eq!(
            malformed("<Tagging><TagSet><Tag/></TagSet></Tagging>"),
            "a <Tag> has no <Key>"
        );
        assert_eq!(
            malformed("<Tagging><TagSet><Tag><Key>a</Key><Key>b</Key></Tag></TagSet></Tagging>"),
            "a <Tag> has more than one <Key>"
        );
        assert!(
            malformed("<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value><Value>2</Value></Tag></TagSet></Tagging>")
                .contains("more than one <Value>")
        );
        assert!(
            malformed("<Tagging><TagSet><Tag><Key><b>x</b></Key></Tag></TagSet></Tagging>")
                .contains("only text is allowed")
        );
        assert!(malformed("<Tagging>text</Tagging>").contains("unexpected text"));
        assert!(
            malformed("<Tagging><TagSet><Tag><Key>a&foo;</Key></Tag></TagSet></Tagging>")
                .contains("unknown entity &foo;")
        );
        malformed("<Tagging><TagSet><Tag><Key>a&b</Key></Tag></TagSet></Tagging>");
        malformed("<Tagging><TagSet><Tag><Key>&#0;</Key></Tag></TagSet></Tagging>");
        assert_eq!(
            malformed("<!DOCTYPE x [<!ENTITY e \"v\">]><Tagging/>"),
            "a DOCTYPE is not allowed"
        );
        malformed("<Tagging attr=\"unterminated></Tagging>");
    }

    #[test]
    fn xml_invalid_tags() {
        let wrap = |tags: &str| format!("<Tagging><TagSet>{tags}</TagSet></Tagging>");
        let dup =
            wrap("<Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>a</Key><Value>2</Value></Tag>");
        match tag_set_from_xml(&dup) {
            Err(TagXmlError::Invalid(v)) => {
                assert_eq!(v.len(), 1);
                assert_eq!(v[0].field, "tags[\"a\"]");
                assert!(v[0].description.starts_with("duplicate"));
            }
            other => panic!("{other:?}"),
        }
        match tag_set_from_xml(&wrap("<Tag><Key>a&amp;b</Key><Value>v</Value></Tag>")) {
            Err(TagXmlError::Invalid(v)) => assert_eq!(v[0].field, "tags[\"a&b\"]"),
            other => panic!("{other:?}"),
        }
        let eleven: String = (0..11)
            .map(|i| format!("<Tag><Key>k{i}</Key></Tag>"))
            .collect();
        assert_eq!(
            tag_set_from_xml(&wrap(&eleven)),
            Err(TagXmlError::Invalid(vec![Violation::new(
                "tags",
                "11 tags given; the limit is 10"
            )]))
        );
        // The lenient parser still returns them.
        assert_eq!(parse_tagging_xml(&wrap(&eleven)).unwrap().len(), 11);
    }

    #[test]
    fn error_display() {
        assert_eq!(
            TagXmlError::Malformed("no <Tagging> element".into()).to_string(),
            "malformed tagging XML: no <Tagging> element"
        );
        let e = TagXmlError::Invalid(vec![
            Violation::new("tags[\"a\"]", "x"),
            Violation::new("tags", "y"),
        ]);
        assert_eq!(e.to_string(), "invalid tags: tags[\"a\"]: x; tags: y");
    }
    // ---- properties -------------------------------------------------------

    proptest! {
        #[test]
        fn xml_round_trip(t in tag_set()) {
            prop_assert_eq!(tag_set_from_xml(&tagging_xml(&t)).unwrap(), t);
        }

        #[test]
        fn xml_parse_never_panics(s in any::<String>()) {
            let _ = tag_set_from_xml(&s);
        }

        #[test]
        fn xml_parse_never_panics_on_markup_soup(
            s in "(<Tagging>|</Tagging>|<TagSet>|</TagSet>|<Tag>|</Tag>|<Key>|</Key>|<Value>|</Value>|<Tag/>|&amp;|&#[0-9]{1,7};|&x;|<!--c-->|<!\\[CDATA\\[z\\]\\]>|[a-z &<>])*"
        ) {
            let _ = tag_set_from_xml(&s);
        }

    }
}
