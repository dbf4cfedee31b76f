//! ListObjectVersions (`GET /bucket?versions`): every version and delete marker, keys in
//! order and each key's versions newest first, paged by `key-marker` + `version-id-marker`.
//! An unversioned bucket's objects are listed with the version ID `null`.

use std::ops::Bound;
use std::sync::Arc;

use axum::response::Response;
use serde::Serialize;

use super::listing::{CommonPrefix, ListParams, Listed};
use super::shared::iso8601;
use super::shared::{OWNER, Owner, to_xml};
use super::{Query, q_get};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::store::Visit;

/// The version ID of an object written while versioning was off.
const NULL_VERSION: &str = "null";

#[derive(Serialize)]
struct ListVersionsResult {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Prefix")]
    prefix: String,
    #[serde(rename = "KeyMarker")]
    key_marker: String,
    #[serde(rename = "VersionIdMarker")]
    version_id_marker: String,
    #[serde(rename = "MaxKeys")]
    max_keys: usize,
    #[serde(rename = "Delimiter")]
    delimiter: String,
    #[serde(rename = "EncodingType", skip_serializing_if = "Option::is_none")]
    encoding_type: Option<&'static str>,
    #[serde(rename = "IsTruncated")]
    is_truncated: bool,
    #[serde(rename = "NextKeyMarker", skip_serializing_if = "Option::is_none")]
    next_key_marker: Option<String>,
    #[serde(
        rename = "NextVersionIdMarker",
        skip_serializing_if = "Option::is_none"
    )]
    next_version_id_marker: Option<String>,
    /// Versions and delete markers interleaved, in listing order.
    #[serde(rename = "$value")]
    entries: Vec<VersionEntry>,
    #[serde(rename = "CommonPrefixes")]
    common_prefixes: Vec<CommonPrefix>,
}

#[derive(Serialize)]
enum VersionEntry {
    Version(ObjectVersion),
    DeleteMarker(DeleteMarker),
}

#[derive(Serialize)]
struct ObjectVersion {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "VersionId")]
    version_id: String,
    #[serde(rename = "IsLatest")]
    is_latest: bool,
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
    #[serde(rename = "Owner")]
    owner: Owner,
    #[serde(rename = "RestoreInfo", skip_serializing_if = "Option::is_none")]
    restore_info: Option<String>,
}

#[derive(Serialize)]
struct DeleteMarker {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "VersionId")]
    version_id: String,
    #[serde(rename = "IsLatest")]
    is_latest: bool,
    #[serde(rename = "LastModified")]
    last_modified: String,
    #[serde(rename = "Owner")]
    owner: Owner,
}

fn version_id(v: &Listed) -> String {
    v.version_id.as_deref().unwrap_or(NULL_VERSION).to_owned()
}

/// One entry of a page: a version of a key (and whether it is the latest) or a prefix.
enum Entry {
    Version(String, Listed, bool),
    Prefix(String),
}

pub(super) fn list_object_versions(
    state: &Arc<State>,
    bucket: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let params = ListParams::parse(query)?;
    let key_marker = q_get(query, "key-marker").unwrap_or("");
    let id_marker = q_get(query, "version-id-marker").unwrap_or("");
    // With a version-id-marker the page starts inside the marker's key, after that version;
    // with a key-marker alone, after every version of that key.
    let from = match (key_marker, id_marker) {
        ("", _) => Bound::Unbounded,
        (k, "") => Bound::Excluded(k),
        (k, _) => Bound::Included(k),
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut truncated = false;
    state
        .store
        .scan(bucket, params.prefix, from, |key, versions| {
            if let Some(common) = params.common_prefix(key) {
                if !key_marker.is_empty() && common.as_str() <= key_marker {
                    return Visit::SkipPrefix(common);
                }
                if entries.len() == params.max_keys {
                    truncated = true;
                    return Visit::Stop;
                }
                entries.push(Entry::Prefix(common.clone()));
                return Visit::SkipPrefix(common);
            }
            let newest_first = versions.iter().rev().enumerate();
            // Inside the marker's key, skip up to and including the marker version (all of
            // them if it is gone: it was listed, and what came before it too).
            let skip = if key == key_marker && !id_marker.is_empty() {
                versions
                    .iter()
                    .rev()
                    .position(|v| v.version_id.as_deref().unwrap_or(NULL_VERSION) == id_marker)
                    .map_or(versions.len(), |i| i + 1)
            } else {
                0
            };
            for (i, v) in newest_first.skip(skip) {
                if entries.len() == params.max_keys {
                    truncated = true;
                    return Visit::Stop;
                }
                entries.push(Entry::Version(key.to_owned(), Listed::of(v), i == 0));
            }
            Visit::Continue
        })?;
    let (next_key, next_id) = match entries.last().filter(|_| truncated) {
        Some(Entry::Version(key, v, _)) => (Some(key.clone()), Some(version_id(v))),
        Some(Entry::Prefix(p)) => (Some(p.clone()), Some(String::new())),
        None => (None, None),
    };
    let mut listed = Vec::new();
    let mut common_prefixes = Vec::new();
    for entry in entries {
        match entry {
            Entry::Prefix(p) => common_prefixes.push(CommonPrefix {
                prefix: params.encode(&p),
            }),
            Entry::Version(key, v, is_latest) if v.delete_marker => {
                listed.push(VersionEntry::DeleteMarker(DeleteMarker {
                    key: params.encode(&key),
                    version_id: version_id(&v),
                    is_latest,
                    last_modified: iso8601(v.last_modified_ms),
                    owner: OWNER,
                }));
            }
            Entry::Version(key, v, is_latest) => {
                listed.push(VersionEntry::Version(ObjectVersion {
                    key: params.encode(&key),
                    version_id: version_id(&v),
                    is_latest,
                    last_modified: iso8601(v.last_modified_ms),
                    etag: v.etag,
                    object_type: v.object_type,
                    size: v.size,
                    storage_class: v.storage_class,
                    owner: OWNER,
                    restore_info: v.restore_info,
                }));
            }
        }
    }
    to_xml(
        "ListVersionsResult",
        &ListVersionsResult {
            name: bucket.to_owned(),
            prefix: params.encode(params.prefix),
            key_marker: params.encode(key_marker),
            version_id_marker: id_marker.to_owned(),
            max_keys: params.max_keys,
            delimiter: params.encode(params.delimiter),
            encoding_type: params.encoding_type(),
            is_truncated: truncated,
            next_key_marker: next_key.map(|k| params.encode(&k)),
            next_version_id_marker: next_id,
            entries: listed,
            common_prefixes,
        },
    )
}
