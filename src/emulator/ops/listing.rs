//! Listing a bucket's objects: ListObjects (V1, `GET /bucket`) and ListObjectsV2
//! (`GET /bucket?list-type=2`). ListObjectVersions is in [`super::versions`]; what all three
//! share (parameters, common prefixes, object entries) is here.
//!
//! Element names and order follow OSS's documented answers: `ListBucketResult` with Name,
//! Prefix, Marker / StartAfter, ContinuationToken, MaxKeys, Delimiter, EncodingType,
//! IsTruncated, NextMarker / NextContinuationToken, then Contents and CommonPrefixes (and
//! V2's KeyCount last). Under `encoding-type=url` every key-like field is percent-encoded
//! (`/` too), which is how keys with control characters travel in XML 1.0.

use std::ops::Bound;
use std::sync::Arc;

use axum::response::Response;
use base64::Engine as _;
use serde::Serialize;

use super::shared::{OWNER, Owner, iso8601, listed_key, to_xml};
use super::{Query, q_get};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::store::{Kind, Version, Visit, now_ms};
use crate::oss::protocol::limit::MAX_LIST_PAGE;

/// `max-keys` when the request names none.
pub(super) const DEFAULT_MAX_KEYS: usize = 100;

/// The parameters the three listings share.
pub(super) struct ListParams<'a> {
    pub(super) prefix: &'a str,
    pub(super) delimiter: &'a str,
    pub(super) max_keys: usize,
    /// `encoding-type=url`.
    pub(super) url: bool,
}

impl<'a> ListParams<'a> {
    pub(super) fn parse(query: &'a Query) -> Result<Self, ApiError> {
        let max_keys = match q_get(query, "max-keys") {
            None | Some("") => DEFAULT_MAX_KEYS,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_LIST_PAGE as usize).contains(&n) => n,
                _ => return Err(invalid_argument("max-keys", raw)),
            },
        };
        let url = match q_get(query, "encoding-type") {
            None | Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("url") => true,
            Some(v) => return Err(invalid_argument("encoding-type", v)),
        };
        Ok(Self {
            prefix: q_get(query, "prefix").unwrap_or(""),
            delimiter: q_get(query, "delimiter").unwrap_or(""),
            max_keys,
            url,
        })
    }

    /// The common prefix `key` rolls up into under the delimiter, if any.
    pub(super) fn common_prefix(&self, key: &str) -> Option<String> {
        if self.delimiter.is_empty() {
            return None;
        }
        let rest = key.get(self.prefix.len()..)?;
        rest.find(self.delimiter)
            .map(|pos| key[..self.prefix.len() + pos + self.delimiter.len()].to_owned())
    }

    /// A key-like value as the answer writes it.
    pub(super) fn encode(&self, text: &str) -> String {
        listed_key(text, self.url)
    }

    /// `Some("url")` for the EncodingType element.
    pub(super) fn encoding_type(&self) -> Option<&'static str> {
        self.url.then_some("url")
    }
}

/// 400 InvalidArgument naming the parameter.
pub(super) fn invalid_argument(name: &str, value: &str) -> ApiError {
    ApiError::invalid_argument(format!("Invalid argument {name}: {value:?}."))
        .with("ArgumentName", name)
        .with("ArgumentValue", value)
}

#[derive(Serialize)]
pub(super) struct CommonPrefix {
    #[serde(rename = "Prefix")]
    pub(super) prefix: String,
}

/// `<Contents>` of ListObjects V1 and V2.
#[derive(Serialize)]
struct Contents {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "LastModified")]
    last_modified: String,
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(rename = "Type")]
    object_type: String,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "StorageClass")]
    storage_class: String,
    #[serde(rename = "Owner", skip_serializing_if = "Option::is_none")]
    owner: Option<Owner>,
    #[serde(rename = "RestoreInfo", skip_serializing_if = "Option::is_none")]
    restore_info: Option<String>,
}

/// What a listing says of one version: only the fields it writes, so a page holds no
/// copies of tags and metadata.
pub(super) struct Listed {
    pub(super) version_id: Option<String>,
    pub(super) delete_marker: bool,
    /// `Normal`, `Appendable`, `Multipart` or `Symlink`.
    pub(super) object_type: String,
    pub(super) size: u64,
    /// The quoted ETag.
    pub(super) etag: String,
    pub(super) last_modified_ms: u64,
    pub(super) storage_class: String,
    /// `RestoreInfo`: the restore state now.
    pub(super) restore_info: Option<String>,
}

impl Listed {
    pub(super) fn of(v: &Version) -> Self {
        let (object_type, size) = match &v.kind {
            Kind::Data {
                object_type, size, ..
            } => (object_type.clone(), *size),
            Kind::Symlink { .. } => ("Symlink".to_owned(), 0),
            Kind::DeleteMarker => (String::new(), 0),
        };
        Self {
            version_id: v.version_id.clone(),
            delete_marker: v.is_delete_marker(),
            object_type,
            size,
            etag: format!("\"{}\"", v.etag()),
            last_modified_ms: v.last_modified_ms,
            storage_class: v.storage_class.clone(),
            restore_info: v.restore.as_ref().and_then(|r| r.status(now_ms())),
        }
    }
}

/// One entry of a ListObjects page.
enum Entry {
    Object(String, Listed),
    Prefix(String),
}

/// A page of current objects: keys after `from` under the parameters, delete markers left
/// out. Returns the entries and whether more follow.
fn page(
    state: &Arc<State>,
    bucket: &str,
    params: &ListParams<'_>,
    after: Option<&str>,
) -> Result<(Vec<Entry>, bool), ApiError> {
    let mut entries = Vec::new();
    let mut truncated = false;
    let from = after.map_or(Bound::Unbounded, Bound::Excluded);
    state
        .store
        .scan(bucket, params.prefix, from, |key, versions| {
            let Some(latest) = versions.last().filter(|v| !v.is_delete_marker()) else {
                return Visit::Continue;
            };
            let common = params.common_prefix(key);
            // A common prefix at or before the marker was on an earlier page.
            if let Some(common) = &common
                && after.is_some_and(|a| common.as_str() <= a)
            {
                return Visit::SkipPrefix(common.clone());
            }
            if entries.len() == params.max_keys {
                truncated = true;
                return Visit::Stop;
            }
            match common {
                Some(common) => {
                    entries.push(Entry::Prefix(common.clone()));
                    Visit::SkipPrefix(common)
                }
                None => {
                    entries.push(Entry::Object(key.to_owned(), Listed::of(latest)));
                    Visit::Continue
                }
            }
        })?;
    Ok((entries, truncated))
}

/// Contents and CommonPrefixes of a page, and the key or prefix it ended with.
fn render(
    entries: Vec<Entry>,
    params: &ListParams<'_>,
    with_owner: bool,
) -> (Vec<Contents>, Vec<CommonPrefix>, Option<String>) {
    let last = entries.last().map(|e| match e {
        Entry::Object(key, _) => key.clone(),
        Entry::Prefix(p) => p.clone(),
    });
    let mut contents = Vec::new();
    let mut prefixes = Vec::new();
    for entry in entries {
        match entry {
            Entry::Object(key, v) => {
                contents.push(Contents {
                    key: params.encode(&key),
                    last_modified: iso8601(v.last_modified_ms),
                    etag: v.etag,
                    object_type: v.object_type,
                    size: v.size,
                    storage_class: v.storage_class,
                    owner: with_owner.then_some(OWNER),
                    restore_info: v.restore_info,
                });
            }
            Entry::Prefix(p) => prefixes.push(CommonPrefix {
                prefix: params.encode(&p),
            }),
        }
    }
    (contents, prefixes, last)
}

#[derive(Serialize)]
struct ListBucketResultV1 {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Prefix")]
    prefix: String,
    #[serde(rename = "Marker")]
    marker: String,
    #[serde(rename = "MaxKeys")]
    max_keys: usize,
    #[serde(rename = "Delimiter")]
    delimiter: String,
    #[serde(rename = "EncodingType", skip_serializing_if = "Option::is_none")]
    encoding_type: Option<&'static str>,
    #[serde(rename = "IsTruncated")]
    is_truncated: bool,
    #[serde(rename = "NextMarker", skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
    #[serde(rename = "Contents")]
    contents: Vec<Contents>,
    #[serde(rename = "CommonPrefixes")]
    common_prefixes: Vec<CommonPrefix>,
}

/// ListObjects (V1): `marker`, and `NextMarker` when truncated.
pub(super) fn list_objects_v1(
    state: &Arc<State>,
    bucket: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let params = ListParams::parse(query)?;
    let marker = q_get(query, "marker").unwrap_or("");
    let after = (!marker.is_empty()).then_some(marker);
    let (entries, truncated) = page(state, bucket, &params, after)?;
    let (contents, common_prefixes, last) = render(entries, &params, true);
    to_xml(
        "ListBucketResult",
        &ListBucketResultV1 {
            name: bucket.to_owned(),
            prefix: params.encode(params.prefix),
            marker: params.encode(marker),
            max_keys: params.max_keys,
            delimiter: params.encode(params.delimiter),
            encoding_type: params.encoding_type(),
            is_truncated: truncated,
            next_marker: last.filter(|_| truncated).map(|l| params.encode(&l)),
            contents,
            common_prefixes,
        },
    )
}

#[derive(Serialize)]
struct ListBucketResultV2 {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Prefix")]
    prefix: String,
    #[serde(rename = "StartAfter", skip_serializing_if = "Option::is_none")]
    start_after: Option<String>,
    #[serde(rename = "ContinuationToken", skip_serializing_if = "Option::is_none")]
    continuation_token: Option<String>,
    #[serde(rename = "MaxKeys")]
    max_keys: usize,
    #[serde(rename = "Delimiter")]
    delimiter: String,
    #[serde(rename = "EncodingType", skip_serializing_if = "Option::is_none")]
    encoding_type: Option<&'static str>,
    #[serde(rename = "IsTruncated")]
    is_truncated: bool,
    #[serde(
        rename = "NextContinuationToken",
        skip_serializing_if = "Option::is_none"
    )]
    next_continuation_token: Option<String>,
    #[serde(rename = "Contents")]
    contents: Vec<Contents>,
    #[serde(rename = "CommonPrefixes")]
    common_prefixes: Vec<CommonPrefix>,
    #[serde(rename = "KeyCount")]
    key_count: usize,
}

/// A continuation token: the key or common prefix a page ended with, opaque to clients
/// (URL-safe base64, so it survives any encoding unchanged).
fn continuation_token(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.as_bytes())
}

fn token_key(token: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(|| invalid_argument("continuation-token", token))
}

/// ListObjectsV2: `start-after`, `continuation-token` (which wins when both are sent),
/// `fetch-owner`, and KeyCount.
pub(super) fn list_objects_v2(
    state: &Arc<State>,
    bucket: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let params = ListParams::parse(query)?;
    let start_after = q_get(query, "start-after").filter(|s| !s.is_empty());
    let token = q_get(query, "continuation-token").filter(|s| !s.is_empty());
    let token_after = token.map(token_key).transpose()?;
    let after = token_after.as_deref().or(start_after);
    let fetch_owner = q_get(query, "fetch-owner").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (entries, truncated) = page(state, bucket, &params, after)?;
    let (contents, common_prefixes, last) = render(entries, &params, fetch_owner);
    let key_count = contents.len() + common_prefixes.len();
    to_xml(
        "ListBucketResult",
        &ListBucketResultV2 {
            name: bucket.to_owned(),
            prefix: params.encode(params.prefix),
            start_after: start_after.map(|s| params.encode(s)),
            continuation_token: token.map(str::to_owned),
            max_keys: params.max_keys,
            delimiter: params.encode(params.delimiter),
            encoding_type: params.encoding_type(),
            is_truncated: truncated,
            next_continuation_token: last.filter(|_| truncated).map(|l| continuation_token(&l)),
            contents,
            common_prefixes,
            key_count,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_tokens_round_trip_any_key() {
        for key in ["a", "dir/file", "\u{1}ctl", "ünï cødé/+="] {
            assert_eq!(token_key(&continuation_token(key)).unwrap(), key);
        }
        assert!(token_key("!!").is_err());
    }

    #[test]
    fn common_prefixes_start_after_the_prefix() {
        let q: Query = vec![
            ("prefix".into(), "a/".into()),
            ("delimiter".into(), "/".into()),
        ];
        let p = ListParams::parse(&q).unwrap();
        assert_eq!(p.common_prefix("a/b/c").as_deref(), Some("a/b/"));
        assert_eq!(p.common_prefix("a/b"), None);
        assert_eq!(p.max_keys, DEFAULT_MAX_KEYS);
    }

    #[test]
    fn max_keys_and_encoding_type_are_checked() {
        let parse = |k: &str, v: &str| {
            ListParams::parse(&vec![(k.to_owned(), v.to_owned())]).map(|p| p.max_keys)
        };
        assert_eq!(parse("max-keys", "1000").unwrap(), 1000);
        assert!(parse("max-keys", "1001").is_err());
        assert!(parse("max-keys", "0").is_err());
        assert!(parse("max-keys", "x").is_err());
        assert!(parse("encoding-type", "base64").is_err());
    }
}
