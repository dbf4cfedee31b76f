//! What the operation groups share: XML and listing helpers, the request-body pump, and the
//! copy-source headers.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;

use super::{base_response, finish};
use crate::emulator::error::ApiError;
use crate::oss::protocol;
use crate::oss::protocol::limit::MAX_SINGLE_REQUEST_BYTES;

/// User metadata names (after `x-oss-meta-`) that carry an object's client-side-encryption
/// envelope: the SDKs' encryption clients write and read them.
pub(crate) const CLIENT_SIDE_ENCRYPTION_META: &str = "client-side-encryption-";

/// `2025-01-15T08:30:00.000Z` (OSS always writes `.000`; oss2 accepts nothing else).
pub(crate) fn iso8601(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

/// The one account every bucket and object of the emulator belongs to.
pub(crate) const OWNER_ID: &str = "1000000000000001";

/// `<Owner>` of listings, bucket answers and ACLs.
#[derive(serde::Serialize)]
pub(crate) struct Owner {
    #[serde(rename = "ID")]
    id: &'static str,
    #[serde(rename = "DisplayName")]
    display_name: &'static str,
}

pub(crate) const OWNER: Owner = Owner {
    id: OWNER_ID,
    display_name: OWNER_ID,
};

/// A 200 XML answer: `value` serialized under the root element `root`.
pub(crate) fn to_xml<T: serde::Serialize>(root: &str, value: &T) -> Result<Response, ApiError> {
    let xml = quick_xml::se::to_string_with_root(root, value)
        .map_err(|e| ApiError::internal(format!("cannot write the answer: {e}")))?;
    xml_response(xml)
}

/// Whether an XML request body's root element is `<name`: past a BOM, the XML declaration
/// and comments. `None` when a declaration or comment is not closed (malformed).
pub(crate) fn has_root(xml: &str, name: &str) -> Option<bool> {
    let mut root = xml.trim_start_matches('\u{feff}').trim_start();
    while let Some(rest) = root
        .strip_prefix("<?")
        .or_else(|| root.strip_prefix("<!--"))
    {
        let end = rest.find('>')?;
        root = rest[end + 1..].trim_start();
    }
    Some(root.starts_with(&format!("<{name}")))
}

/// A 200 response with an XML document.
pub(crate) fn xml_response(xml: String) -> Result<Response, ApiError> {
    finish(
        base_response(StatusCode::OK).header("content-type", "application/xml"),
        Body::from(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{xml}")),
    )
}

/// `<name>escaped text</name>`.
pub(crate) fn el(name: &str, text: &str) -> String {
    format!(
        "<{name}>{}</{name}>",
        crate::emulator::error::xml_escape(text)
    )
}

/// Whether the request asked for `encoding-type=url`.
pub(crate) fn url_encoding(query: &[(String, String)]) -> bool {
    query
        .iter()
        .any(|(k, v)| k == "encoding-type" && v.eq_ignore_ascii_case("url"))
}

/// A key as written in a listing: percent-encoded under `encoding-type=url`.
pub(crate) fn listed_key(key: &str, url: bool) -> String {
    if url {
        crate::oss::sign::uri_encode(key, false)
    } else {
        key.to_owned()
    }
}

/// Something data can be streamed into.
pub(crate) trait ChunkSink {
    /// Appends a chunk.
    async fn put(&mut self, chunk: &[u8]) -> std::io::Result<()>;
    /// Bytes written so far.
    fn written(&self) -> u64;
}

impl ChunkSink for crate::emulator::store::Staging {
    async fn put(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.write(chunk).await
    }
    fn written(&self) -> u64 {
        self.size()
    }
}

/// Streams a body into `sink`, refusing to go past `limit` bytes in total (EntityTooLarge).
/// A body that does not arrive completely is IncompleteBody.
pub(super) async fn pump(
    body: Body,
    sink: &mut impl ChunkSink,
    limit: u64,
) -> Result<(), ApiError> {
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                format!("The request body did not arrive completely: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if sink.written() + data.len() as u64 > limit {
                return Err(ApiError::entity_too_large());
            }
            sink.put(&data).await.map_err(store_error)?;
        }
    }
    Ok(())
}

/// 500 for a failure to write object data.
pub(crate) fn store_error(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("cannot store data: {e}"))
}

/// Streams `body` (at most one request's worth, [`MAX_SINGLE_REQUEST_BYTES`]) into a new
/// staged blob: PutObject's data, or CopyObject's copy of the source.
pub(super) async fn stage_body(
    store: &crate::emulator::store::Store,
    body: Body,
) -> Result<crate::emulator::store::StagedBlob, ApiError> {
    let mut staging = store.stage().await.map_err(store_error)?;
    pump(body, &mut staging, MAX_SINGLE_REQUEST_BYTES).await?;
    staging.finish().await.map_err(store_error)
}

/// 404 NoSuchUpload.
pub(crate) fn no_such_upload() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
    .ec("0042-00000002")
}

/// 412 PreconditionFailed.
pub(crate) fn precondition_failed() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold.",
    )
}

/// A parsed `x-oss-copy-source: /bucket/key[?versionId=id]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopySource {
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) version_id: Option<String>,
}

/// Parses `x-oss-copy-source` (bucket and key percent-decoded; `%2F` and `/` both work).
pub(crate) fn copy_source(h: &HeaderMap) -> Result<CopySource, ApiError> {
    let bad = |why: &str| {
        ApiError::invalid_argument(format!("The x-oss-copy-source header is invalid: {why}."))
    };
    let raw = h
        .get(protocol::header::COPY_SOURCE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad("not ASCII"))?;
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad("not UTF-8 after decoding"))
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    // The bucket name never contains '/' or '%', so the first raw '/' ends it; oss2 encodes
    // the '/'s inside the key as %2F, which decoding restores.
    let (bucket, key) = path.split_once('/').ok_or_else(|| bad("no object key"))?;
    let (bucket, key) = (decode(bucket)?, decode(key)?);
    if bucket.is_empty() || key.is_empty() {
        return Err(bad("empty bucket or key"));
    }
    crate::model::ObjectKey::parse(&key).map_err(|v| {
        ApiError::invalid_object_name(format!("The source key is invalid: {}", v.description))
    })?;
    let mut version_id = None;
    if let Some(q) = query {
        for pair in q.split('&').filter(|s| !s.is_empty()) {
            if let Some(v) = pair.strip_prefix("versionId=") {
                version_id = Some(decode(v)?);
            }
        }
    }
    Ok(CopySource {
        bucket,
        key,
        version_id,
    })
}

/// The four `x-oss-copy-source-if-*` preconditions, against the source's ETag and time.
/// Any that fails is 412 PreconditionFailed.
pub(crate) fn check_source_conditions(
    h: &HeaderMap,
    etag: &str,
    modified_ms: u64,
) -> Result<(), ApiError> {
    let text = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
    let matches = |list: &str| {
        list.split(',')
            .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
            .any(|t| t == "*" || t.eq_ignore_ascii_case(etag))
    };
    let date = |n: &str| {
        text(n)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    let modified_s = modified_ms / 1000;
    if let Some(list) = text(protocol::header::COPY_SOURCE_IF_MATCH)
        && !matches(list)
    {
        return Err(precondition_failed());
    }
    if let Some(list) = text(protocol::header::COPY_SOURCE_IF_NONE_MATCH)
        && matches(list)
    {
        return Err(precondition_failed());
    }
    if let Some(since) = date(protocol::header::COPY_SOURCE_IF_UNMODIFIED_SINCE)
        && modified_s > since
    {
        return Err(precondition_failed());
    }
    if let Some(since) = date(protocol::header::COPY_SOURCE_IF_MODIFIED_SINCE)
        && modified_s <= since
    {
        return Err(precondition_failed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::emulator::ops::header_map as h;

    #[test]
    fn copy_source_forms() {
        let p = |v: &str| copy_source(&h(&[("x-oss-copy-source", v)]));
        let want = CopySource {
            bucket: "b".into(),
            key: "dir/obj 1.txt".into(),
            version_id: None,
        };
        assert_eq!(p("/b/dir/obj%201.txt").unwrap(), want);
        assert_eq!(p("/b/dir%2Fobj%201.txt").unwrap(), want);
        let v = p("/b/k?versionId=CAEQ%3D").unwrap();
        assert_eq!(v.version_id.as_deref(), Some("CAEQ="));
        assert!(p("/b").is_err());
        assert!(p("/b/").is_err());
        assert!(p("/b/%FF").is_err());
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(1_736_929_800_123), "2025-01-15T08:30:00.000Z");
    }

    #[test]
    fn source_conditions() {
        let ok = |pairs: &[(&str, &str)]| check_source_conditions(&h(pairs), "ABC", 1_000_000);
        assert!(ok(&[("x-oss-copy-source-if-match", "\"abc\"")]).is_ok());
        assert!(ok(&[("x-oss-copy-source-if-match", "\"x\"")]).is_err());
        assert!(ok(&[("x-oss-copy-source-if-none-match", "\"ABC\"")]).is_err());
        let later =
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(2000));
        assert!(ok(&[("x-oss-copy-source-if-modified-since", &later)]).is_err());
        assert!(ok(&[("x-oss-copy-source-if-unmodified-since", &later)]).is_ok());
    }
}
