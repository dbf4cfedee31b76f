//! The query language of OSS MetaQuery (`DoMetaQuery`, mode `basic`): the `Query` JSON
//! (`{"Field", "Value", "Operation", "SubQueries"}`), the `Sort`/`Order` of the results,
//! the `NextToken` that pages through them, and the `Aggregations`.
//!
//! A condition is checked against an object's key and current version, so the index
//! ([`super::meta_index`]) only has to narrow the candidates; every candidate is checked
//! here again against the live version.
//!
//! Fields: `Filename`, `Size`, `FileModifiedTime`, `ETag`, `OSSObjectType`,
//! `OSSStorageClass`, `ObjectACL`, `OSSCRC64`, `OSSTaggingCount`, `OSSTagging.<key>` (key
//! case-sensitive) and `OSSUserMeta.<key>` (key case-insensitive, with or without the
//! `x-oss-meta-` prefix, as OSS documents both spellings). `Size` and `OSSTaggingCount`
//! compare as numbers, `FileModifiedTime` as an RFC 3339 time, the rest as strings (bytes).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::version::{Kind, Version};
use crate::emulator::error::ApiError;

/// Deepest nesting of SubQueries accepted (the body limit bounds the size; this bounds
/// the recursion).
const MAX_DEPTH: usize = 16;

/// The prefix OSS shows on user metadata keys in MetaQuery (`x-oss-meta-location`).
pub const USER_META_PREFIX: &str = "x-oss-meta-";

/// A field of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The object key.
    Filename,
    /// Size in bytes.
    Size,
    /// Last modified time.
    FileModifiedTime,
    /// ETag (without quotes).
    ETag,
    /// `Normal`, `Appendable`, `Multipart` or `Symlink`.
    ObjectType,
    /// Storage class.
    StorageClass,
    /// Object ACL.
    ObjectAcl,
    /// CRC-64 (as the index writes it).
    Crc64,
    /// Number of tags.
    TaggingCount,
    /// The value of one tag.
    Tag(String),
    /// The value of one user metadata item (lower-case key without `x-oss-meta-`).
    UserMeta(String),
}

/// How a field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Number,
    Time,
    Text,
}

impl Field {
    /// Parses a field name as OSS spells it.
    pub fn parse(name: &str) -> Result<Self, ApiError> {
        let field = match name {
            "Filename" => Self::Filename,
            "Size" => Self::Size,
            "FileModifiedTime" => Self::FileModifiedTime,
            "ETag" => Self::ETag,
            "OSSObjectType" => Self::ObjectType,
            "OSSStorageClass" => Self::StorageClass,
            "ObjectACL" => Self::ObjectAcl,
            "OSSCRC64" => Self::Crc64,
            "OSSTaggingCount" => Self::TaggingCount,
            _ => {
                if let Some(key) = name.strip_prefix("OSSTagging.")
                    && !key.is_empty()
                {
                    Self::Tag(key.to_owned())
                } else if let Some(key) = name.strip_prefix("OSSUserMeta.")
                    && !key.is_empty()
                {
                    let lower = key.to_ascii_lowercase();
                    let bare = lower.strip_prefix(USER_META_PREFIX).unwrap_or(&lower);
                    if bare.is_empty() {
                        return Err(invalid(format!("the field {name:?} names no key")));
                    }
                    Self::UserMeta(bare.to_owned())
                } else {
                    return Err(invalid(format!("the field {name:?} is not supported")));
                }
            }
        };
        Ok(field)
    }

    /// The name as OSS spells it (user metadata with the `x-oss-meta-` prefix).
    pub fn name(&self) -> String {
        match self {
            Self::Filename => "Filename".into(),
            Self::Size => "Size".into(),
            Self::FileModifiedTime => "FileModifiedTime".into(),
            Self::ETag => "ETag".into(),
            Self::ObjectType => "OSSObjectType".into(),
            Self::StorageClass => "OSSStorageClass".into(),
            Self::ObjectAcl => "ObjectACL".into(),
            Self::Crc64 => "OSSCRC64".into(),
            Self::TaggingCount => "OSSTaggingCount".into(),
            Self::Tag(k) => format!("OSSTagging.{k}"),
            Self::UserMeta(k) => format!("OSSUserMeta.{USER_META_PREFIX}{k}"),
        }
    }

    fn kind(&self) -> FieldKind {
        match self {
            Self::Size | Self::TaggingCount => FieldKind::Number,
            Self::FileModifiedTime => FieldKind::Time,
            _ => FieldKind::Text,
        }
    }

    /// The field's value for an object (`None`: the object has no such tag or metadata).
    pub fn value_of(&self, key: &str, v: &Version) -> Option<FieldValue> {
        Some(match self {
            Self::Filename => FieldValue::Text(key.to_owned()),
            Self::Size => FieldValue::Number(object_size(v)),
            Self::FileModifiedTime => FieldValue::Time(i128::from(v.last_modified_ms) * 1_000_000),
            Self::ETag => FieldValue::Text(v.etag()),
            Self::ObjectType => FieldValue::Text(object_type(v).to_owned()),
            Self::StorageClass => FieldValue::Text(v.storage_class.clone()),
            Self::ObjectAcl => FieldValue::Text(v.acl.clone()),
            Self::Crc64 => FieldValue::Text(crc64_text(v)?),
            Self::TaggingCount => FieldValue::Number(v.tags.len() as u64),
            Self::Tag(k) => FieldValue::Text(v.tags.get(k)?.clone()),
            Self::UserMeta(k) => FieldValue::Text(v.meta.get(k)?.clone()),
        })
    }

    /// Parses a condition's value for this field.
    fn parse_value(&self, text: &str) -> Result<FieldValue, ApiError> {
        match self.kind() {
            FieldKind::Number => text
                .trim()
                .parse::<u64>()
                .map(FieldValue::Number)
                .map_err(|_| {
                    invalid(format!(
                        "the value {text:?} of {} is not a non-negative integer",
                        self.name()
                    ))
                }),
            FieldKind::Time => OffsetDateTime::parse(text.trim(), &Rfc3339)
                .map(|t| FieldValue::Time(t.unix_timestamp_nanos()))
                .map_err(|_| {
                    invalid(format!(
                        "the value {text:?} of {} is not an RFC 3339 time",
                        self.name()
                    ))
                }),
            FieldKind::Text => Ok(FieldValue::Text(text.to_owned())),
        }
    }
}

/// Size of a version as the index shows it (0 for a symlink).
pub fn object_size(v: &Version) -> u64 {
    match &v.kind {
        Kind::Data { size, .. } => *size,
        _ => 0,
    }
}

/// `OSSObjectType` of a version.
pub fn object_type(v: &Version) -> &str {
    match &v.kind {
        Kind::Data { object_type, .. } => object_type,
        Kind::Symlink { .. } => "Symlink",
        Kind::DeleteMarker => "",
    }
}

/// `OSSCRC64` as the documented example writes it (16 upper-case hex digits); a symlink
/// has none.
pub fn crc64_text(v: &Version) -> Option<String> {
    match &v.kind {
        Kind::Data { crc64, .. } => Some(format!("{crc64:016X}")),
        _ => None,
    }
}

/// A field's value, ordered within its kind (a query never compares across kinds: values
/// are parsed for the field they are compared with).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FieldValue {
    /// Sizes and counts.
    Number(u64),
    /// Unix nanoseconds.
    Time(i128),
    /// Strings, compared as bytes.
    Text(String),
}

impl FieldValue {
    /// The value as aggregations show it.
    pub fn text(&self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Time(ns) => rfc3339_nanos(*ns),
            Self::Text(s) => s.clone(),
        }
    }
}

/// `2021-08-02T02:49:17.289000000+00:00`: RFC 3339 with nine fraction digits and a numeric
/// offset, the shape of the documented examples (which are in +08:00; the emulator is UTC).
pub fn rfc3339_nanos(nanos: i128) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]+00:00"
    );
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000000000+00:00".to_owned())
}

/// A comparison of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafOp {
    /// `eq`
    Eq,
    /// `gt`
    Gt,
    /// `gte`
    Gte,
    /// `lt`
    Lt,
    /// `lte`
    Lte,
    /// `prefix` (text fields)
    Prefix,
    /// `match` (text fields): the emulator matches a substring, a stand-in for OSS's fuzzy
    /// match whose tokenization is not documented.
    Match,
}

/// A parsed `Query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// One field compared with one value.
    Leaf {
        /// The field.
        field: Field,
        /// The comparison.
        op: LeafOp,
        /// The value, parsed for the field.
        value: FieldValue,
    },
    /// All SubQueries hold.
    And(Vec<Cond>),
    /// At least one SubQuery holds.
    Or(Vec<Cond>),
    /// None of the SubQueries holds (an object without the field satisfies `not eq`).
    Not(Vec<Cond>),
}

impl Cond {
    /// Parses the `Query` JSON.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| invalid(format!("the Query is not valid JSON: {e}")))?;
        Self::from_json(&json, 0)
    }

    fn from_json(json: &Json, depth: usize) -> Result<Self, ApiError> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!(
                "the Query nests SubQueries deeper than {MAX_DEPTH} levels"
            )));
        }
        let obj = json
            .as_object()
            .ok_or_else(|| invalid("a Query must be a JSON object"))?;
        let operation = obj
            .get("Operation")
            .and_then(Json::as_str)
            .ok_or_else(|| invalid("a Query needs an Operation (a string)"))?;
        let sub = |name: &str| -> Result<Vec<Cond>, ApiError> {
            let list = obj
                .get("SubQueries")
                .and_then(Json::as_array)
                .filter(|l| !l.is_empty())
                .ok_or_else(|| {
                    invalid(format!(
                        "the Operation {name:?} needs a non-empty SubQueries"
                    ))
                })?;
            list.iter().map(|q| Self::from_json(q, depth + 1)).collect()
        };
        let op = match operation {
            "and" => return Ok(Self::And(sub("and")?)),
            "or" => return Ok(Self::Or(sub("or")?)),
            "not" => return Ok(Self::Not(sub("not")?)),
            "eq" => LeafOp::Eq,
            "gt" => LeafOp::Gt,
            "gte" => LeafOp::Gte,
            "lt" => LeafOp::Lt,
            "lte" => LeafOp::Lte,
            "prefix" => LeafOp::Prefix,
            "match" => LeafOp::Match,
            other => {
                return Err(invalid(format!("the Operation {other:?} is not supported")));
            }
        };
        let field = Field::parse(
            obj.get("Field")
                .and_then(Json::as_str)
                .ok_or_else(|| invalid(format!("the Operation {operation:?} needs a Field")))?,
        )?;
        let text = match obj.get("Value") {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            _ => {
                return Err(invalid(format!(
                    "the Operation {operation:?} needs a Value (a string)"
                )));
            }
        };
        if matches!(op, LeafOp::Prefix | LeafOp::Match) && field.kind() != FieldKind::Text {
            return Err(invalid(format!(
                "the Operation {operation:?} does not apply to {}",
                field.name()
            )));
        }
        let value = field.parse_value(&text)?;
        Ok(Self::Leaf { field, op, value })
    }

    /// Whether an object (its key and current version) satisfies the condition.
    pub fn matches(&self, key: &str, v: &Version) -> bool {
        match self {
            Self::And(subs) => subs.iter().all(|c| c.matches(key, v)),
            Self::Or(subs) => subs.iter().any(|c| c.matches(key, v)),
            Self::Not(subs) => !subs.iter().any(|c| c.matches(key, v)),
            Self::Leaf { field, op, value } => {
                let Some(actual) = field.value_of(key, v) else {
                    return false;
                };
                match (op, &actual, value) {
                    (LeafOp::Prefix, FieldValue::Text(a), FieldValue::Text(p)) => a.starts_with(p),
                    (LeafOp::Match, FieldValue::Text(a), FieldValue::Text(p)) => a.contains(p),
                    (LeafOp::Prefix | LeafOp::Match, _, _) => false,
                    (op, actual, value) => {
                        let ord = actual.cmp(value);
                        match op {
                            LeafOp::Eq => ord == Ordering::Equal,
                            LeafOp::Gt => ord == Ordering::Greater,
                            LeafOp::Gte => ord != Ordering::Less,
                            LeafOp::Lt => ord == Ordering::Less,
                            _ => ord != Ordering::Greater,
                        }
                    }
                }
            }
        }
    }
}

/// `asc` or `desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Ascending (the default).
    Asc,
    /// Descending.
    Desc,
}

impl Order {
    /// Parses `asc`/`desc` (any case); empty is ascending.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "asc" => Ok(Self::Asc),
            "desc" => Ok(Self::Desc),
            _ => Err(invalid(format!(
                "the Order {text:?} is neither asc nor desc"
            ))),
        }
    }
}

/// Where an object stands in the requested order: objects without the sort field come
/// last in both orders; ties are broken by the key, so the order is total and a
/// [`PageToken`] names one place in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortPosition {
    /// The sort field's value (`None`: the object has no such tag or metadata).
    #[serde(rename = "v")]
    pub value: Option<FieldValue>,
    /// The object key.
    #[serde(rename = "k")]
    pub key: String,
}

impl SortPosition {
    /// Compares two positions in `order`.
    pub fn cmp_in(&self, other: &Self, order: Order) -> Ordering {
        let by_value = match (&self.value, &other.value) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(a), Some(b)) => a.cmp(b),
        };
        let ord = by_value.then_with(|| self.key.cmp(&other.key));
        match order {
            Order::Asc => ord,
            Order::Desc => ord.reverse(),
        }
    }
}

/// What a NextToken carries: the sort it belongs to and the last position returned, so
/// the next page starts strictly after it. Keyset paging: objects written or deleted in
/// between never shift the pages (only an object whose sort value changes can move).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageToken {
    /// The sort field's name.
    #[serde(rename = "s")]
    pub sort: String,
    /// The order.
    #[serde(rename = "o")]
    pub order: Order,
    /// The last position returned.
    #[serde(rename = "p")]
    pub after: SortPosition,
}

impl PageToken {
    /// The opaque text (URL-safe base64 of JSON).
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Parses a token, checking it belongs to the same sort and order.
    pub fn decode(text: &str, sort: &Field, order: Order) -> Result<Self, ApiError> {
        use base64::Engine as _;
        let bad = || invalid("the NextToken is not valid");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| bad())?;
        let token: Self = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if token.sort != sort.name() || token.order != order {
            return Err(invalid(
                "the NextToken belongs to a query with another Sort or Order",
            ));
        }
        Ok(token)
    }
}

/// One requested aggregation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregation {
    /// The field as the request named it (echoed back).
    pub field_name: String,
    /// The field.
    pub field: Field,
    /// `min`, `max`, `average`, `sum`, `count`, `distinct` or `group`.
    pub operation: String,
}

impl Aggregation {
    /// Checks an aggregation: `min`/`max`/`average`/`sum` need a numeric field.
    pub fn parse(field_name: &str, operation: &str) -> Result<Self, ApiError> {
        let field = Field::parse(field_name)?;
        match operation {
            "min" | "max" | "average" | "sum" if field.kind() != FieldKind::Number => Err(invalid(
                format!("the aggregation {operation:?} does not apply to {field_name}"),
            )),
            "min" | "max" | "average" | "sum" | "count" | "distinct" | "group" => Ok(Self {
                field_name: field_name.to_owned(),
                field,
                operation: operation.to_owned(),
            }),
            other => Err(invalid(format!(
                "the aggregation operation {other:?} is not supported"
            ))),
        }
    }

    /// Computes it over the values of the matching objects that have the field.
    pub fn compute(&self, values: &[FieldValue]) -> AggregationResult {
        let numbers: Vec<f64> = values
            .iter()
            .filter_map(|v| match v {
                FieldValue::Number(n) => Some(*n as f64),
                _ => None,
            })
            .collect();
        let mut result = AggregationResult {
            field: self.field_name.clone(),
            operation: self.operation.clone(),
            value: None,
            groups: Vec::new(),
        };
        match self.operation.as_str() {
            "min" => result.value = numbers.iter().copied().reduce(f64::min),
            "max" => result.value = numbers.iter().copied().reduce(f64::max),
            "sum" => result.value = Some(numbers.iter().sum()),
            "average" if !numbers.is_empty() => {
                result.value = Some(numbers.iter().sum::<f64>() / numbers.len() as f64);
            }
            "average" => result.value = Some(0.0),
            "count" => result.value = Some(values.len() as f64),
            "distinct" | "group" => {
                let mut counts = std::collections::BTreeMap::<&FieldValue, u64>::new();
                for v in values {
                    *counts.entry(v).or_default() += 1;
                }
                if self.operation == "distinct" {
                    result.value = Some(counts.len() as f64);
                } else {
                    let mut groups: Vec<(String, u64)> =
                        counts.into_iter().map(|(v, n)| (v.text(), n)).collect();
                    // Largest groups first, then by value, as a stable order.
                    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    result.groups = groups;
                }
            }
            _ => {}
        }
        result
    }
}

/// One computed aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationResult {
    /// The field as requested.
    pub field: String,
    /// The operation.
    pub operation: String,
    /// The value (not for `group`).
    pub value: Option<f64>,
    /// `(value, count)` per group (for `group`).
    pub groups: Vec<(String, u64)>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_argument(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(size: u64, tags: &[(&str, &str)], meta: &[(&str, &str)]) -> Version {
        let mut v = Version::new(Kind::Data {
            object_type: "Normal".into(),
            blob: "b".into(),
            size,
            etag: "E".into(),
            crc64: 255,
        });
        v.last_modified_ms = 1_700_000_000_000;
        for (k, val) in tags {
            v.tags.insert((*k).into(), (*val).into());
        }
        for (k, val) in meta {
            v.meta.insert((*k).into(), (*val).into());
        }
        v
    }

    #[test]
    fn leaf_and_nested_conditions() {
        let v = version(2048, &[("team", "storage")], &[("location", "hangzhou")]);
        let yes = [
            r#"{"Field":"Size","Value":"1024","Operation":"gt"}"#,
            r#"{"Field":"Size","Value":2048,"Operation":"lte"}"#,
            r#"{"Field":"OSSTagging.team","Value":"storage","Operation":"eq"}"#,
            r#"{"Field":"OSSTagging.team","Value":"sto","Operation":"prefix"}"#,
            r#"{"Field":"OSSTagging.team","Value":"tora","Operation":"match"}"#,
            r#"{"Field":"OSSUserMeta.x-oss-meta-Location","Value":"hangzhou","Operation":"eq"}"#,
            r#"{"Field":"OSSUserMeta.location","Value":"hangzhou","Operation":"eq"}"#,
            r#"{"Field":"Filename","Value":"docs/","Operation":"prefix"}"#,
            r#"{"Field":"FileModifiedTime","Value":"2023-11-14T22:13:19+00:00","Operation":"gt"}"#,
            r#"{"Field":"OSSTaggingCount","Value":"1","Operation":"eq"}"#,
            r#"{"Operation":"not","SubQueries":[{"Field":"OSSTagging.owner","Value":"x","Operation":"eq"}]}"#,
            r#"{"Operation":"and","SubQueries":[{"Field":"Size","Value":"1","Operation":"gte"},
               {"Operation":"or","SubQueries":[{"Field":"OSSTagging.team","Value":"x","Operation":"eq"},
               {"Field":"OSSTagging.team","Value":"storage","Operation":"eq"}]}]}"#,
        ];
        for q in yes {
            assert!(Cond::parse(q).unwrap().matches("docs/a.txt", &v), "{q}");
        }
        let no = [
            r#"{"Field":"Size","Value":"2048","Operation":"lt"}"#,
            r#"{"Field":"OSSTagging.Team","Value":"storage","Operation":"eq"}"#,
            r#"{"Field":"OSSTagging.owner","Value":"","Operation":"gte"}"#,
            r#"{"Field":"FileModifiedTime","Value":"2023-11-14T22:13:21Z","Operation":"gte"}"#,
        ];
        for q in no {
            assert!(!Cond::parse(q).unwrap().matches("docs/a.txt", &v), "{q}");
        }
    }

    #[test]
    fn invalid_queries_are_invalid_argument() {
        for q in [
            "not json",
            "[]",
            r#"{"Field":"Size","Value":"1"}"#,
            r#"{"Field":"Size","Value":"x","Operation":"gt"}"#,
            r#"{"Field":"Size","Value":"1","Operation":"like"}"#,
            r#"{"Field":"Colour","Value":"1","Operation":"eq"}"#,
            r#"{"Field":"Size","Value":"1","Operation":"prefix"}"#,
            r#"{"Field":"FileModifiedTime","Value":"yesterday","Operation":"gt"}"#,
            r#"{"Operation":"and","SubQueries":[]}"#,
            r#"{"Operation":"or"}"#,
            r#"{"Field":"OSSTagging.","Value":"1","Operation":"eq"}"#,
        ] {
            let e = Cond::parse(q).unwrap_err();
            assert_eq!(e.code, "InvalidArgument", "{q}");
        }
    }

    #[test]
    fn positions_order_missing_last_and_tokens_round_trip() {
        let p = |v: Option<u64>, k: &str| SortPosition {
            value: v.map(FieldValue::Number),
            key: k.into(),
        };
        assert_eq!(
            p(Some(1), "b").cmp_in(&p(Some(2), "a"), Order::Asc),
            Ordering::Less
        );
        assert_eq!(
            p(Some(1), "b").cmp_in(&p(Some(2), "a"), Order::Desc),
            Ordering::Greater
        );
        assert_eq!(
            p(None, "a").cmp_in(&p(Some(2), "b"), Order::Asc),
            Ordering::Greater
        );
        assert_eq!(
            p(None, "a").cmp_in(&p(Some(2), "b"), Order::Desc),
            Ordering::Greater
        );
        assert_eq!(
            p(Some(1), "a").cmp_in(&p(Some(1), "b"), Order::Asc),
            Ordering::Less
        );
        let token = PageToken {
            sort: "Size".into(),
            order: Order::Desc,
            after: p(Some(7), "k"),
        };
        let text = token.encode();
        assert_eq!(
            PageToken::decode(&text, &Field::Size, Order::Desc).unwrap(),
            token
        );
        assert!(PageToken::decode(&text, &Field::Size, Order::Asc).is_err());
        assert!(PageToken::decode("%%", &Field::Size, Order::Desc).is_err());
    }

    #[test]
    fn aggregations() {
        let values = [1u64, 5, 5].map(FieldValue::Number);
        let agg = |op: &str| Aggregation::parse("Size", op).unwrap().compute(&values);
        assert_eq!(agg("sum").value, Some(11.0));
        assert_eq!(agg("max").value, Some(5.0));
        assert_eq!(agg("min").value, Some(1.0));
        assert_eq!(agg("count").value, Some(3.0));
        assert_eq!(agg("distinct").value, Some(2.0));
        assert_eq!(
            agg("group").groups,
            vec![("5".to_owned(), 2), ("1".to_owned(), 1)]
        );
        assert!(Aggregation::parse("Filename", "sum").is_err());
        assert!(Aggregation::parse("Size", "median").is_err());
    }
}
