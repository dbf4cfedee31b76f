//! The bucket's data index (OSS MetaQuery, docs/oss-protocol.md "MetaQuery"): GetMetaQueryStatus
//! (is the index there and queryable) and DoMetaQuery in mode `basic` (one page of at most 100
//! files matching a query JSON, resumed with `NextToken`).
//!
//! [`MetaQueryCondition`] is the query JSON; [`MetaQueryCondition::from_filter`] translates the
//! part of a tag query that the index can evaluate (`model::query::Filter`, from the query's
//! pushdown split) into it. Opening and closing the index are administrative and not sent by
//! the gateway.

use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use time::format_description::well_known::Rfc3339;

use super::{OssOperation, OssRequest, Resp, parse_iso_time};
use crate::model::BucketName;
use crate::model::query::{Filter, Op, Predicate};
use crate::oss::client::{Client, MAX_XML_BODY};
use crate::oss::error::OssError;
use crate::oss::xml::parse_document;

/// The most files one DoMetaQuery page holds (OSS caps `MaxResults` at 100).
pub const MAX_META_QUERY_RESULTS: u32 = 100;

/// Largest DoMetaQuery answer read: 100 files with 1023-byte keys, 10 tags and user
/// metadata stay well under this.
const MAX_META_QUERY_BODY: usize = 4 << 20;

/// The query parameters of the MetaQuery operations.
mod param {
    pub const META_QUERY: &str = "metaQuery";
    pub const COMP: &str = "comp";
    pub const MODE: &str = "mode";
}

/// The field prefix of a tag's value in the query JSON (`OSSTagging.<key>`).
const TAG_FIELD_PREFIX: &str = "OSSTagging.";

// ---------------------------------------------------------------- GetMetaQueryStatus

/// Result of GetMetaQueryStatus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaQueryStatus {
    /// `State`: `Ready` (being prepared by its first full scan), `Running`, `Stop`,
    /// `Retrying`, `Failed`, `Deleted`.
    pub state: String,
    /// `Phase`: `FullScanning` or `IncrementalScanning`.
    pub phase: Option<String>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

impl MetaQueryStatus {
    /// Whether the index answers queries over the whole bucket: `Running`. OSS documents
    /// `Ready` as the state of an index still being prepared (its first full scan), whose
    /// answers would miss objects, so it does not count.
    pub fn is_queryable(&self) -> bool {
        self.state == "Running"
    }
}

/// Builds `GET /?metaQuery`.
pub fn build_get_meta_query_status(bucket: &BucketName) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::GetMetaQueryStatus, bucket, None);
    req.query_set(param::META_QUERY, "");
    req
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StatusDocument {
    #[serde(rename = "State")]
    state: Option<String>,
    #[serde(rename = "Phase")]
    phase: Option<String>,
}

/// Parses a GetMetaQueryStatus success; the `State` is required.
pub fn parse_get_meta_query_status(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<MetaQueryStatus, OssError> {
    let r = Resp::new(status, headers);
    let text =
        std::str::from_utf8(body).map_err(|_| r.invalid("GetMetaQueryStatus body is not UTF-8"))?;
    let doc: StatusDocument = parse_document(text, "MetaQueryStatus")
        .ok_or_else(|| r.invalid("unparsable MetaQueryStatus body"))?;
    let state = doc
        .state
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| r.invalid("MetaQueryStatus without a State"))?;
    Ok(MetaQueryStatus {
        state,
        phase: doc
            .phase
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty()),
        request_id: r.request_id(),
    })
}

// ---------------------------------------------------------------- OpenMetaQuery, CloseMetaQuery

/// Builds `POST /?metaQuery&comp=add&mode=basic` (no body).
pub fn build_open_meta_query(bucket: &BucketName) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::OpenMetaQuery, bucket, None);
    req.query_set(param::META_QUERY, "");
    req.query_set(param::COMP, "add");
    req.query_set(param::MODE, "basic");
    req
}

/// Builds `POST /?metaQuery&comp=delete` (no body).
pub fn build_close_meta_query(bucket: &BucketName) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::CloseMetaQuery, bucket, None);
    req.query_set(param::META_QUERY, "");
    req.query_set(param::COMP, "delete");
    req
}

// ---------------------------------------------------------------- the query JSON

/// A DoMetaQuery condition: one comparison of a field, or `and`/`or`/`not` of sub-queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaQueryCondition {
    /// `{"Field", "Value", "Operation"}`; values are sent as text, as the SDKs send them.
    Compare {
        /// `Filename`, `Size`, `FileModifiedTime`, `OSSTagging.<key>`, ...
        field: String,
        /// `eq gt gte lt lte prefix`.
        operation: &'static str,
        /// The value, as text.
        value: String,
    },
    /// Every sub-query holds.
    And(Vec<MetaQueryCondition>),
    /// At least one sub-query holds.
    Or(Vec<MetaQueryCondition>),
}

impl MetaQueryCondition {
    /// `Filename prefix <prefix>`: the objects under a key prefix.
    pub fn key_prefix(prefix: &str) -> Self {
        Self::Compare {
            field: "Filename".to_owned(),
            operation: "prefix",
            value: prefix.to_owned(),
        }
    }

    /// `Size gte 0`: every object (a query must name a condition).
    pub fn every_object() -> Self {
        Self::Compare {
            field: "Size".to_owned(),
            operation: "gte",
            value: "0".to_owned(),
        }
    }

    /// The index condition of a pushed-down filter: tags as `OSSTagging.<key>`, `@key` as
    /// `Filename`, `@size` as `Size`, `@modified` as `FileModifiedTime` (RFC 3339, UTC).
    pub fn from_filter(filter: &Filter) -> Self {
        match filter {
            Filter::All(parts) => Self::And(parts.iter().map(Self::from_filter).collect()),
            Filter::Any(parts) => Self::Or(parts.iter().map(Self::from_filter).collect()),
            Filter::Term(p) => term(p),
        }
    }

    /// `self AND other`, flattened.
    pub fn and(self, other: MetaQueryCondition) -> Self {
        match self {
            Self::And(mut parts) => {
                parts.push(other);
                Self::And(parts)
            }
            first => Self::And(vec![first, other]),
        }
    }

    /// The JSON value.
    pub fn to_json(&self) -> Json {
        match self {
            Self::Compare {
                field,
                operation,
                value,
            } => json!({"Field": field, "Value": value, "Operation": operation}),
            Self::And(parts) => json!({
                "Operation": "and",
                "SubQueries": parts.iter().map(Self::to_json).collect::<Vec<_>>(),
            }),
            Self::Or(parts) => json!({
                "Operation": "or",
                "SubQueries": parts.iter().map(Self::to_json).collect::<Vec<_>>(),
            }),
        }
    }
}

/// MetaQuery's name of a comparison other than `<>`.
fn operation(op: Op) -> &'static str {
    match op {
        Op::Eq => "eq",
        Op::Lt => "lt",
        Op::Le => "lte",
        Op::Gt => "gt",
        Op::Ge => "gte",
        Op::StartsWith => "prefix",
        Op::Ne => unreachable!("`<>` is sent as `lt OR gt`"),
    }
}

fn term(p: &Predicate) -> MetaQueryCondition {
    let (field, op, value) = match p {
        Predicate::Tag { key, op, value } => {
            (format!("{TAG_FIELD_PREFIX}{key}"), *op, value.clone())
        }
        Predicate::Key { op, value } => ("Filename".to_owned(), *op, value.clone()),
        Predicate::Size { op, value } => ("Size".to_owned(), *op, value.to_string()),
        Predicate::Modified { op, value } => {
            let utc = value.to_offset(time::UtcOffset::UTC);
            let text = utc
                .format(&Rfc3339)
                .unwrap_or_else(|_| utc.unix_timestamp().to_string());
            ("FileModifiedTime".to_owned(), *op, text)
        }
        // The pushdown never hands an existence test to the index; should one come, `prefix ""`
        // (every value starts with the empty text) is what the index can say about it.
        Predicate::TagExists { key } => (
            format!("{TAG_FIELD_PREFIX}{key}"),
            Op::StartsWith,
            String::new(),
        ),
    };
    let compare = |op: Op| MetaQueryCondition::Compare {
        field: field.clone(),
        operation: operation(op),
        value: value.clone(),
    };
    // MetaQuery has no `ne`; on a value that is present, `<>` is `< OR >` (the pushdown
    // already splits it so; kept here so the translation is total).
    if op == Op::Ne {
        MetaQueryCondition::Or(vec![compare(Op::Lt), compare(Op::Gt)])
    } else {
        compare(op)
    }
}

// ---------------------------------------------------------------- DoMetaQuery

/// Input of DoMetaQuery (mode `basic`, one page, in the index's default order: by key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoMetaQueryInput {
    /// The bucket.
    pub bucket: BucketName,
    /// The condition.
    pub query: MetaQueryCondition,
    /// The previous page's `NextToken`.
    pub next_token: Option<String>,
    /// Files per page, 1..=100.
    pub max_results: u32,
}

/// One file of a DoMetaQuery page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaQueryFile {
    /// `Filename`: the object key.
    pub key: String,
    /// `Size`.
    pub size: u64,
    /// `FileModifiedTime`.
    pub modified: Option<SystemTime>,
    /// `ETag` (quoted).
    pub etag: Option<String>,
    /// `OSSTagging`: the whole tag set, as the index holds it (not re-validated).
    pub tags: Vec<(String, String)>,
}

/// Result of DoMetaQuery (one page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoMetaQueryOutput {
    /// The files, in the index's order.
    pub files: Vec<MetaQueryFile>,
    /// `NextToken`: `None` on the last page.
    pub next_token: Option<String>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `POST /?metaQuery&comp=query&mode=basic` with the `<MetaQuery>` body.
pub fn build_do_meta_query(input: &DoMetaQueryInput) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::DoMetaQuery, &input.bucket, None);
    req.query_set(param::META_QUERY, "");
    req.query_set(param::COMP, "query");
    req.query_set(param::MODE, "basic");
    let escape = |s: &str| quick_xml::escape::escape(s).into_owned();
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><MetaQuery>");
    if let Some(token) = &input.next_token {
        body.push_str(&format!("<NextToken>{}</NextToken>", escape(token)));
    }
    body.push_str(&format!(
        "<MaxResults>{}</MaxResults><Query>{}</Query></MetaQuery>",
        input.max_results,
        escape(&input.query.to_json().to_string())
    ));
    req.bytes_body(Bytes::from(body), true);
    req
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct QueryDocument {
    #[serde(rename = "NextToken")]
    next_token: Option<String>,
    #[serde(rename = "Files")]
    files: Option<FilesXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FilesXml {
    #[serde(rename = "File")]
    file: Vec<FileXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FileXml {
    #[serde(rename = "Filename")]
    filename: Option<String>,
    #[serde(rename = "Size")]
    size: Option<String>,
    #[serde(rename = "FileModifiedTime")]
    modified: Option<String>,
    #[serde(rename = "ETag")]
    etag: Option<String>,
    #[serde(rename = "OSSTagging")]
    tagging: Option<TaggingXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TaggingXml {
    #[serde(rename = "Tagging")]
    tags: Vec<TagXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TagXml {
    #[serde(rename = "Key")]
    key: Option<String>,
    #[serde(rename = "Value")]
    value: Option<String>,
}

/// Parses a DoMetaQuery success. Every file needs a `Filename` and a `Size`.
pub fn parse_do_meta_query(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<DoMetaQueryOutput, OssError> {
    let r = Resp::new(status, headers);
    let text = std::str::from_utf8(body).map_err(|_| r.invalid("DoMetaQuery body is not UTF-8"))?;
    let doc: QueryDocument = parse_document(text, "MetaQuery")
        .ok_or_else(|| r.invalid("unparsable DoMetaQuery body"))?;
    let mut files = Vec::new();
    for f in doc.files.unwrap_or_default().file {
        let key = f
            .filename
            .filter(|k| !k.is_empty())
            .ok_or_else(|| r.invalid("DoMetaQuery File without a Filename"))?;
        let size = f
            .size
            .as_deref()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| r.invalid(format!("DoMetaQuery File {key:?} without a Size")))?;
        let tags = f
            .tagging
            .unwrap_or_default()
            .tags
            .into_iter()
            .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
            .collect();
        files.push(MetaQueryFile {
            key,
            size,
            modified: parse_iso_time(f.modified.as_deref()),
            etag: f
                .etag
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty()),
            tags,
        });
    }
    Ok(DoMetaQueryOutput {
        files,
        next_token: doc
            .next_token
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty()),
        request_id: r.request_id(),
    })
}

impl Client {
    /// GetMetaQueryStatus: whether the bucket has a data index, and its state. A bucket
    /// without one is a `NotFound` error (`MetaQueryNotExist`).
    pub async fn get_meta_query_status(
        &self,
        bucket: &BucketName,
    ) -> Result<MetaQueryStatus, OssError> {
        self.send_and_parse(
            &build_get_meta_query_status(bucket),
            MAX_XML_BODY,
            parse_get_meta_query_status,
        )
        .await
    }

    /// OpenMetaQuery (mode `basic`): starts building the bucket's data index.
    pub async fn open_meta_query(&self, bucket: &BucketName) -> Result<(), OssError> {
        self.send(&build_open_meta_query(bucket)).await.map(drop)
    }

    /// CloseMetaQuery: deletes the bucket's data index (asynchronously, on OSS).
    pub async fn close_meta_query(&self, bucket: &BucketName) -> Result<(), OssError> {
        self.send(&build_close_meta_query(bucket)).await.map(drop)
    }

    /// DoMetaQuery (mode `basic`): one page of the files matching the query.
    pub async fn do_meta_query(
        &self,
        input: &DoMetaQueryInput,
    ) -> Result<DoMetaQueryOutput, OssError> {
        if !(1..=MAX_META_QUERY_RESULTS).contains(&input.max_results) {
            return Err(OssError::invalid_argument(format!(
                "MaxResults {} is outside 1..={MAX_META_QUERY_RESULTS}",
                input.max_results
            )));
        }
        self.send_and_parse(
            &build_do_meta_query(input),
            MAX_META_QUERY_BODY,
            parse_do_meta_query,
        )
        .await
    }
}

#[cfg(test)]
mod tests;
