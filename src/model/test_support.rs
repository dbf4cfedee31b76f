//! Proptest strategies for the model's types, shared by the tests of the modules that encode
//! them (the tag header codec in `model::tags`, the tag XML codec in `oss::xml::tagging`).

use proptest::prelude::*;

use super::TagSet;

/// Any string of allowed tag characters (ASCII and a few non-ASCII ones).
fn tag_text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[a-zA-Z0-9 +=._:/\\-\u{4e2d}\u{6587}\u{e9}\u{df}\u{3b1}\u{663}]{{0,{max}}}"
    ))
    .expect("valid regex")
}

/// A valid tag set of 0–10 tags, short and maximal keys and values.
pub fn tag_set() -> impl Strategy<Value = TagSet> {
    let key =
        prop_oneof![tag_text(20), tag_text(128),].prop_filter("non-empty key", |k| !k.is_empty());
    let value = prop_oneof![tag_text(20), tag_text(256)];
    proptest::collection::btree_map(key, value, 0..=10)
        .prop_map(|m| TagSet::from_pairs(m).expect("generated tags are valid"))
}
