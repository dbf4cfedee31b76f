//! What the write operations read from a request: validated `x-oss-tagging` and
//! `x-oss-meta-*` headers (with their ECs), the other object attributes, Content-MD5, and
//! small XML bodies.

use std::collections::BTreeMap;

use axum::body::Body;
use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;

use super::header;
use crate::emulator::error::ApiError;
use crate::model::{ObjectAcl, StorageClass, TagSet, UserMetadata, Violation};
use crate::oss::protocol;

/// Entity headers stored with an object and returned on GET/HEAD.
const ENTITY_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

// ---- validation of request headers --------------------------------------------------------

/// Validates `x-oss-tagging` (EC 0010-…).
pub(super) fn tags_from_header(h: &HeaderMap) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(raw) = h.get(protocol::header::TAGGING) else {
        return Ok(BTreeMap::new());
    };
    let Ok(raw) = raw.to_str() else {
        return Err(ApiError::invalid_argument(
            "The x-oss-tagging header must be URL-encoded ASCII.",
        )
        .ec("0010-00000219"));
    };
    match TagSet::parse_header_value(raw) {
        Ok(tags) => Ok(tags.into_map()),
        Err(violations) => {
            // Classify on the raw pairs for the EC.
            let mut pairs = Vec::new();
            let mut format_error = false;
            for seg in raw.trim().split('&').filter(|s| !s.is_empty()) {
                let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
                if v.contains('=') {
                    format_error = true;
                }
                match (
                    percent_encoding::percent_decode_str(k).decode_utf8(),
                    percent_encoding::percent_decode_str(v).decode_utf8(),
                ) {
                    (Ok(k), Ok(v)) => pairs.push((k.into_owned(), v.into_owned())),
                    _ => format_error = true,
                }
            }
            let ec = if format_error {
                "0010-00000219"
            } else {
                tag_ec(&pairs)
            };
            Err(tag_error(violations, ec))
        }
    }
}

/// The EC of the first problem in a set of tags that failed validation.
pub(super) fn tag_ec(pairs: &[(String, String)]) -> &'static str {
    let tag_char = |c: char| c.is_alphanumeric() || " +-=._:/".contains(c);
    let mut seen = std::collections::BTreeSet::new();
    if pairs.iter().any(|(k, _)| !seen.insert(k.as_str())) {
        return "0010-00000210";
    }
    if pairs.iter().any(|(k, v)| {
        k.is_empty()
            || k.chars().count() > TagSet::MAX_KEY_CHARS
            || v.chars().count() > TagSet::MAX_VALUE_CHARS
    }) {
        return "0010-00000209";
    }
    if pairs.iter().any(|(k, _)| !k.chars().all(tag_char)) {
        return "0010-00000216";
    }
    if pairs.iter().any(|(_, v)| !v.chars().all(tag_char)) {
        return "0010-00000217";
    }
    // More than 10 tags (EC not confirmed).
    "0010-00000211"
}

pub(super) fn tag_error(violations: Vec<Violation>, ec: &str) -> ApiError {
    let text: Vec<String> = violations.iter().map(|v| v.description.clone()).collect();
    ApiError::invalid_argument(format!("Invalid tags: {}", text.join("; "))).ec(ec)
}

/// Validates `x-oss-meta-*` (EC 0011-…).
pub(super) fn meta_from_headers(h: &HeaderMap) -> Result<BTreeMap<String, String>, ApiError> {
    let mut pairs = Vec::new();
    for (name, value) in h {
        let Some(key) = name.as_str().strip_prefix(UserMetadata::HEADER_PREFIX) else {
            continue;
        };
        let Ok(value) = value.to_str() else {
            return Err(ApiError::invalid_argument(format!(
                "The value of x-oss-meta-{key} must be printable ASCII."
            ))
            .ec("0011-00000004"));
        };
        pairs.push((key.to_owned(), value.to_owned()));
    }
    let total: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    UserMetadata::from_pairs(pairs)
        .map(UserMetadata::into_map)
        .map_err(|violations| {
            let text: Vec<String> = violations.iter().map(|v| v.description.clone()).collect();
            let ec = if total > UserMetadata::MAX_TOTAL_BYTES {
                "0011-00000002"
            } else {
                "0011-00000004"
            };
            ApiError::invalid_argument(format!("Invalid user metadata: {}", text.join("; "))).ec(ec)
        })
}

/// Common object headers of PutObject/PutSymlink: forbid-overwrite, ACL, storage class.
pub(super) struct WriteOptions {
    pub(super) forbid_overwrite: bool,
    pub(super) acl: String,
    pub(super) storage_class: String,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) meta: BTreeMap<String, String>,
}

/// What a write's headers ask for. Without `x-oss-storage-class` the object gets
/// `bucket_class`, the bucket's storage class, as in OSS.
pub(super) fn write_options(h: &HeaderMap, bucket_class: &str) -> Result<WriteOptions, ApiError> {
    let forbid_overwrite = match header(h, protocol::header::FORBID_OVERWRITE) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(ApiError::invalid_argument(format!(
                "x-oss-forbid-overwrite must be true or false, not {v:?}."
            ))
            .ec("0017-00000279"));
        }
    };
    let acl =
        match h.get(protocol::header::ACL) {
            None => ObjectAcl::Default,
            Some(v) => v.to_str().ok().and_then(ObjectAcl::parse).ok_or_else(|| {
                ApiError::invalid_argument("The x-oss-object-acl value is invalid.")
            })?,
        };
    let storage_class = match h.get(protocol::header::STORAGE_CLASS) {
        None => StorageClass::parse(bucket_class).unwrap_or(StorageClass::Standard),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(StorageClass::parse)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidStorageClass",
                    "The storage class you specified is not valid.",
                )
            })?,
    };
    Ok(WriteOptions {
        forbid_overwrite,
        acl: acl.as_str().to_owned(),
        storage_class: storage_class.as_str().to_owned(),
        tags: tags_from_header(h)?,
        meta: meta_from_headers(h)?,
    })
}

/// The decoded `Content-MD5`, if sent.
pub(super) fn content_md5(h: &HeaderMap) -> Result<Option<[u8; 16]>, ApiError> {
    let Some(v) = h.get("content-md5") else {
        return Ok(None);
    };
    let bad = || ApiError::invalid_digest("The Content-MD5 you specified was invalid.");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .map_err(|_| bad())?;
    <[u8; 16]>::try_from(raw.as_slice())
        .map(Some)
        .map_err(|_| bad())
}

pub(super) fn digest_mismatch() -> ApiError {
    ApiError::invalid_digest("The Content-MD5 you specified did not match what we received.")
}

pub(super) fn entity_headers(h: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in ENTITY_HEADERS {
        if let Some(v) = header(h, name) {
            out.insert((*name).to_owned(), v.to_owned());
        }
    }
    out.entry("content-type".to_owned())
        .or_insert_with(|| "application/octet-stream".to_owned());
    out
}

/// Reads an XML request body of at most `limit` bytes (larger is MalformedXML), checking its
/// Content-MD5 when one is sent.
pub(super) async fn read_small_body(
    body: Body,
    h: &HeaderMap,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let md5 = content_md5(h)?;
    let limited = http_body_util::Limited::new(body, limit);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::malformed_xml().ec("0010-00000101")
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "IncompleteBody",
                    "The request body did not arrive completely.",
                )
            }
        })?
        .to_bytes();
    if let Some(expected) = md5 {
        let got: [u8; 16] =
            md5::Digest::finalize(<md5::Md5 as md5::Digest>::new_with_prefix(&bytes)).into();
        if got != expected {
            return Err(digest_mismatch());
        }
    }
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::emulator::ops::header_map as h;

    #[test]
    fn tag_header_errors_have_ecs() {
        let ec = |v: &str| {
            tags_from_header(&h(&[("x-oss-tagging", v)]))
                .unwrap_err()
                .ec
                .clone()
        };
        assert_eq!(ec("a=b=c").as_deref(), Some("0010-00000219"));
        assert_eq!(ec("a=1&a=2").as_deref(), Some("0010-00000210"));
        assert_eq!(
            ec(&format!("{}=1", "k".repeat(129))).as_deref(),
            Some("0010-00000209")
        );
        assert_eq!(ec("k%21=1").as_deref(), Some("0010-00000216"));
        assert_eq!(ec("k=v%21").as_deref(), Some("0010-00000217"));
        let tags = tags_from_header(&h(&[("x-oss-tagging", "a=1&b=x%20y%2B%2F")])).unwrap();
        assert_eq!(tags.get("b").map(String::as_str), Some("x y+/"));
    }

    #[test]
    fn metadata_errors_have_ecs() {
        let big = "v".repeat(9000);
        let e = meta_from_headers(&h(&[("x-oss-meta-a", &big)])).unwrap_err();
        assert_eq!(e.ec.as_deref(), Some("0011-00000002"));
        let e = meta_from_headers(&h(&[("x-oss-meta-a_b", "1")])).unwrap_err();
        assert_eq!(e.ec.as_deref(), Some("0011-00000004"));
        let m = meta_from_headers(&h(&[("x-oss-meta-Color", "Red")])).unwrap();
        assert_eq!(m.get("color").map(String::as_str), Some("Red"));
    }
}
