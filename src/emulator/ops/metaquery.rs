//! The MetaQuery data index: OpenMetaQuery (`POST /?metaQuery&comp=add`), GetMetaQueryStatus
//! (`GET /?metaQuery`), DoMetaQuery (`POST /?metaQuery&comp=query`, mode `basic`) and
//! CloseMetaQuery (`POST /?metaQuery&comp=delete`). The index and the query language are in
//! [`crate::emulator::store::meta_query`] and the store's `meta_index`.
//!
//! Mode `semantic` (vector search) can be opened, and its status says so, but a semantic
//! DoMetaQuery is 501 NotImplemented: the emulator has no embedding model.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;

use super::request::read_small_body;
use super::shared::{el, has_root, xml_response};
use super::{Query, base_response, blocking, finish, q_get};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::store::meta_query::{
    Aggregation, AggregationResult, Cond, Field, Order, PageToken, USER_META_PREFIX, crc64_text,
    object_size, object_type, rfc3339_nanos,
};
use crate::emulator::store::{MAX_RESULTS, MetaPage, MetaSearch, Version};

/// Largest DoMetaQuery body: a query of nested SubQueries fits in a few KiB.
const MAX_QUERY_BODY: usize = 64 * 1024;

/// The retrieval modes OSS documents.
const MODES: [&str; 2] = ["basic", "semantic"];

/// Runs a `?metaQuery` request on `bucket`.
pub(super) async fn handle(
    state: &Arc<State>,
    bucket: &str,
    method: &Method,
    query: &Query,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let comp = q_get(query, "comp");
    let mode = q_get(query, "mode").filter(|m| !m.is_empty());
    if let Some(m) = mode
        && !MODES.contains(&m)
    {
        return Err(ApiError::invalid_argument(format!(
            "the mode {m:?} is neither basic nor semantic"
        ))
        .with("ArgumentName", "mode")
        .with("ArgumentValue", m));
    }
    match (method, comp) {
        (&Method::POST, Some("add")) => {
            // Building the index reads every object (and writes its state file on disk):
            // off the async threads.
            let (bucket, mode) = (bucket.to_owned(), mode.unwrap_or("basic").to_owned());
            blocking(state, move |s| s.open_meta_query(&bucket, &mode)).await?;
            finish(base_response(StatusCode::OK), Body::empty())
        }
        (&Method::GET, None) => status(state, bucket),
        (&Method::POST, Some("query")) => {
            if mode == Some("semantic") {
                // The bucket's existence and index are checked first, like any query.
                state.store.meta_query_status(bucket)?;
                return Err(ApiError::not_implemented("DoMetaQuery in mode semantic"));
            }
            let bytes =
                read_small_body(body.take().unwrap_or_default(), headers, MAX_QUERY_BODY).await?;
            let search = parse_request(&bytes)?;
            // A query that only a scan answers reads every object: off the async threads.
            let bucket = bucket.to_owned();
            let page = blocking(state, move |s| s.meta_query(&bucket, &search)).await?;
            xml_response(render_page(&page))
        }
        (&Method::POST, Some("delete")) => {
            state.store.close_meta_query(bucket)?;
            finish(base_response(StatusCode::OK), Body::empty())
        }
        (&Method::GET | &Method::POST, _) => {
            Err(ApiError::not_implemented("This metaQuery operation"))
        }
        (other, _) => Err(ApiError::method_not_allowed(other.as_str())),
    }
}

fn status(state: &Arc<State>, bucket: &str) -> Result<Response, ApiError> {
    let s = state.store.meta_query_status(bucket)?;
    let ms = |ms: u64| rfc3339_nanos(i128::from(ms) * 1_000_000);
    let mut xml = String::from("<MetaQueryStatus>");
    xml.push_str(&el("State", s.state));
    xml.push_str(&el("Phase", s.phase));
    xml.push_str(&el("CreateTime", &ms(s.created_ms)));
    xml.push_str(&el("UpdateTime", &ms(s.updated_ms)));
    xml.push_str(&el("MetaQueryMode", &s.mode));
    xml.push_str("</MetaQueryStatus>");
    xml_response(xml)
}

#[derive(Deserialize)]
struct MetaQueryXml {
    #[serde(rename = "NextToken", default)]
    next_token: String,
    #[serde(rename = "MaxResults", default)]
    max_results: String,
    #[serde(rename = "Query", default)]
    query: String,
    #[serde(rename = "Sort", default)]
    sort: String,
    #[serde(rename = "Order", default)]
    order: String,
    #[serde(rename = "Aggregations", default)]
    aggregations: Option<AggregationsXml>,
}

#[derive(Deserialize)]
struct AggregationsXml {
    #[serde(rename = "Aggregation", default)]
    items: Vec<AggregationXml>,
}

#[derive(Deserialize)]
struct AggregationXml {
    #[serde(rename = "Field", default)]
    field: String,
    #[serde(rename = "Operation", default)]
    operation: String,
}

/// Parses a DoMetaQuery body (`<MetaQuery>`) into a search.
fn parse_request(bytes: &[u8]) -> Result<MetaSearch, ApiError> {
    let malformed = || ApiError::malformed_xml().ec("0010-00000101");
    let xml = std::str::from_utf8(bytes).map_err(|_| malformed())?;
    if has_root(xml, "MetaQuery") != Some(true) {
        return Err(malformed());
    }
    let doc: MetaQueryXml = quick_xml::de::from_str(xml).map_err(|_| malformed())?;
    if doc.query.trim().is_empty() {
        return Err(
            ApiError::invalid_argument("the MetaQuery needs a Query").with("ArgumentName", "Query")
        );
    }
    let cond = Cond::parse(&doc.query)?;
    // OSS documents 0 to 100 (0 or none: 100). The SDK's own tests send more and expect
    // an answer, so a larger number is read as 100.
    let max_results = match doc.max_results.trim() {
        "" => MAX_RESULTS,
        n => match n.parse::<u64>() {
            Ok(0) => MAX_RESULTS,
            Ok(n) => (n as usize).min(MAX_RESULTS),
            Err(_) => {
                return Err(ApiError::invalid_argument(format!(
                    "MaxResults {n:?} is not a non-negative integer"
                ))
                .with("ArgumentName", "MaxResults")
                .with("ArgumentValue", n));
            }
        },
    };
    let sort = match doc.sort.trim() {
        "" => Field::Filename,
        name => Field::parse(name)?,
    };
    let order = Order::parse(&doc.order)?;
    let after = match doc.next_token.trim() {
        "" => None,
        token => Some(PageToken::decode(token, &sort, order)?.after),
    };
    let aggregations = doc
        .aggregations
        .map(|a| a.items)
        .unwrap_or_default()
        .iter()
        .map(|a| Aggregation::parse(a.field.trim(), a.operation.trim()))
        .collect::<Result<_, _>>()?;
    Ok(MetaSearch {
        cond,
        sort,
        order,
        max_results,
        after,
        aggregations,
    })
}

/// The DoMetaQuery answer: `<MetaQuery>` with NextToken (always present, empty on the last
/// page: oss2 requires the element), Files and Aggregations.
fn render_page(page: &MetaPage) -> String {
    let mut xml = String::from("<MetaQuery>");
    xml.push_str(&el("NextToken", page.next_token.as_deref().unwrap_or("")));
    xml.push_str("<Files>");
    for (key, v) in &page.files {
        render_file(&mut xml, key, v);
    }
    xml.push_str("</Files>");
    if !page.aggregations.is_empty() {
        xml.push_str("<Aggregations>");
        for a in &page.aggregations {
            render_aggregation(&mut xml, a);
        }
        xml.push_str("</Aggregations>");
    }
    xml.push_str("</MetaQuery>");
    xml
}

/// One `<File>`, its elements in the order of the documented example.
fn render_file(xml: &mut String, key: &str, v: &Version) {
    xml.push_str("<File>");
    xml.push_str(&el("Filename", key));
    xml.push_str(&el("Size", &object_size(v).to_string()));
    xml.push_str(&el(
        "FileModifiedTime",
        &rfc3339_nanos(i128::from(v.last_modified_ms) * 1_000_000),
    ));
    xml.push_str(&el("OSSObjectType", object_type(v)));
    xml.push_str(&el("OSSStorageClass", &v.storage_class));
    xml.push_str(&el("ObjectACL", &v.acl));
    xml.push_str(&el("ETag", &format!("\"{}\"", v.etag())));
    if let Some(crc) = crc64_text(v) {
        xml.push_str(&el("OSSCRC64", &crc));
    }
    xml.push_str(&el("OSSTaggingCount", &v.tags.len().to_string()));
    if !v.tags.is_empty() {
        xml.push_str("<OSSTagging>");
        for (k, val) in &v.tags {
            xml.push_str("<Tagging>");
            xml.push_str(&el("Key", k));
            xml.push_str(&el("Value", val));
            xml.push_str("</Tagging>");
        }
        xml.push_str("</OSSTagging>");
    }
    if !v.meta.is_empty() {
        xml.push_str("<OSSUserMeta>");
        for (k, val) in &v.meta {
            xml.push_str("<UserMeta>");
            xml.push_str(&el("Key", &format!("{USER_META_PREFIX}{k}")));
            xml.push_str(&el("Value", val));
            xml.push_str("</UserMeta>");
        }
        xml.push_str("</OSSUserMeta>");
    }
    xml.push_str("</File>");
}

fn render_aggregation(xml: &mut String, a: &AggregationResult) {
    xml.push_str("<Aggregation>");
    xml.push_str(&el("Field", &a.field));
    xml.push_str(&el("Operation", &a.operation));
    if let Some(value) = a.value {
        xml.push_str(&el("Value", &number_text(value)));
    }
    if !a.groups.is_empty() {
        xml.push_str("<Groups>");
        for (value, count) in &a.groups {
            xml.push_str("<Group>");
            xml.push_str(&el("Value", value));
            xml.push_str(&el("Count", &count.to_string()));
            xml.push_str("</Group>");
        }
        xml.push_str("</Groups>");
    }
    xml.push_str("</Aggregation>");
}

/// A whole number without a fraction (`4859250309`, as the documented example), else as is.
fn number_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_request() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<MetaQuery>
  <NextToken></NextToken>
  <MaxResults>5</MaxResults>
  <Query>{"Field": "Size","Value": "1048576","Operation": "gt"}</Query>
  <Sort>Size</Sort>
  <Order>asc</Order>
  <Aggregations>
    <Aggregation><Field>Size</Field><Operation>sum</Operation></Aggregation>
    <Aggregation><Field>Size</Field><Operation>max</Operation></Aggregation>
  </Aggregations>
</MetaQuery>"#;
        let s = parse_request(body).unwrap();
        assert_eq!(s.max_results, 5);
        assert_eq!(s.sort, Field::Size);
        assert_eq!(s.order, Order::Asc);
        assert_eq!(s.aggregations.len(), 2);
        assert!(s.after.is_none());
    }

    #[test]
    fn max_results_defaults_and_caps_at_100() {
        let with = |n: &str| {
            let body = format!(
                "<MetaQuery><MaxResults>{n}</MaxResults><Query>{{\"Field\":\"Size\",\"Value\":\"1\",\"Operation\":\"gt\"}}</Query></MetaQuery>"
            );
            parse_request(body.as_bytes()).map(|s| s.max_results)
        };
        assert_eq!(with("").unwrap(), 100);
        assert_eq!(with("0").unwrap(), 100);
        assert_eq!(with("7").unwrap(), 7);
        assert_eq!(with("80369").unwrap(), 100);
        assert_eq!(with("None").unwrap_err().code, "InvalidArgument");
    }

    #[test]
    fn bad_bodies() {
        assert_eq!(parse_request(b"<Other/>").unwrap_err().code, "MalformedXML");
        assert_eq!(
            parse_request(b"<MetaQuery><MaxResults>1</MaxResults></MetaQuery>")
                .unwrap_err()
                .code,
            "InvalidArgument"
        );
        assert_eq!(
            parse_request(b"<MetaQuery><Query>{}</Query></MetaQuery>")
                .unwrap_err()
                .code,
            "InvalidArgument"
        );
        assert_eq!(
            parse_request(
                br#"<MetaQuery><Query>{"Field":"Size","Value":"1","Operation":"gt"}</Query><NextToken>x!</NextToken></MetaQuery>"#
            )
            .unwrap_err()
            .code,
            "InvalidArgument"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number_text(4_859_250_309.0), "4859250309");
        assert_eq!(number_text(2.5), "2.5");
    }
}
