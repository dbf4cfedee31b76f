//! ListParts and ListMultipartUploads.

use std::sync::Arc;

use axum::response::Response;

use super::upload_id;
use super::uploads::{Part, Upload};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::ops::Ctx;
use crate::emulator::ops::shared::{el, iso8601, listed_key, url_encoding, xml_response};
use crate::oss::protocol::limit::MAX_LIST_PAGE;

/// Default and largest `max-parts` / `max-uploads`.
const MAX_LIST: usize = MAX_LIST_PAGE as usize;

/// The client-side encryption metadata an InitiateMultipartUpload carried
/// (`x-oss-meta-client-side-encryption-*`), which ListParts repeats so an encryption client
/// can resume the upload: (element, metadata key).
const CLIENT_ENCRYPTION_FIELDS: &[(&str, &str)] = &[
    ("ClientEncryptionKey", "client-side-encryption-key"),
    ("ClientEncryptionStart", "client-side-encryption-start"),
    ("ClientEncryptionCekAlg", "client-side-encryption-cek-alg"),
    ("ClientEncryptionWrapAlg", "client-side-encryption-wrap-alg"),
    (
        "ClientEncryptionDataSize",
        "client-side-encryption-data-size",
    ),
    (
        "ClientEncryptionPartSize",
        "client-side-encryption-part-size",
    ),
];

/// A non-negative integer query parameter, or InvalidArgument.
fn q_number(query: &[(String, String)], name: &str) -> Result<Option<u64>, ApiError> {
    match query.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) if v.is_empty() => Ok(None),
        Some((_, v)) => v.parse::<u64>().map(Some).map_err(|_| {
            ApiError::invalid_argument(format!("{name} must be a non-negative integer."))
                .with("ArgumentName", name)
                .with("ArgumentValue", v.clone())
        }),
    }
}

pub(in crate::emulator::ops) fn list_parts(
    state: &Arc<State>,
    ctx: &Ctx,
) -> Result<Response, ApiError> {
    let id = upload_id(ctx)?;
    let upload = state.uploads.get(&ctx.bucket, &ctx.key, id)?;
    let max =
        q_number(&ctx.query, "max-parts")?.map_or(MAX_LIST, |n| (n as usize).clamp(1, MAX_LIST));
    let marker = q_number(&ctx.query, "part-number-marker")?.unwrap_or(0);
    let url = url_encoding(&ctx.query);
    let after: Vec<(&u32, &Part)> = upload
        .parts
        .iter()
        .filter(|(n, _)| u64::from(**n) > marker)
        .collect();
    let truncated = after.len() > max;
    let page = &after[..after.len().min(max)];
    let next = page.last().map_or(marker, |(n, _)| u64::from(**n));
    let mut xml = String::from("<ListPartsResult>");
    if url {
        xml.push_str(&el("EncodingType", "url"));
    }
    xml.push_str(&el("Bucket", &ctx.bucket));
    xml.push_str(&el("Key", &listed_key(&ctx.key, url)));
    xml.push_str(&el("UploadId", id));
    xml.push_str(&el("StorageClass", &upload.storage_class));
    xml.push_str(&el("PartNumberMarker", &marker.to_string()));
    xml.push_str(&el("NextPartNumberMarker", &next.to_string()));
    xml.push_str(&el("MaxParts", &max.to_string()));
    xml.push_str(&el("IsTruncated", if truncated { "true" } else { "false" }));
    for (name, meta) in CLIENT_ENCRYPTION_FIELDS {
        if let Some(value) = upload.meta.get(*meta) {
            xml.push_str(&el(name, value));
        }
    }
    for (n, p) in page {
        xml.push_str("<Part>");
        xml.push_str(&el("PartNumber", &n.to_string()));
        xml.push_str(&el("LastModified", &iso8601(p.last_modified_ms)));
        xml.push_str(&el("ETag", &format!("\"{}\"", p.etag)));
        xml.push_str(&el("HashCrc64ecma", &p.crc64.to_string()));
        xml.push_str(&el("Size", &p.size.to_string()));
        xml.push_str("</Part>");
    }
    xml.push_str("</ListPartsResult>");
    xml_response(xml)
}

pub(in crate::emulator::ops) fn list_uploads(
    state: &Arc<State>,
    bucket: &str,
    query: &[(String, String)],
) -> Result<Response, ApiError> {
    state.store.is_versioned(bucket)?;
    let get = |n: &str| {
        query
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let (prefix, delimiter) = (get("prefix"), get("delimiter"));
    let (key_marker, id_marker) = (get("key-marker"), get("upload-id-marker"));
    let max = q_number(query, "max-uploads")?.map_or(MAX_LIST, |n| (n as usize).clamp(1, MAX_LIST));
    let url = url_encoding(query);
    let mut all: Vec<Upload> = state.uploads.under_prefix(bucket, prefix);
    // By key, then by upload ID: OSS continues after `key-marker` with "the same key and
    // an Upload ID greater than upload-id-marker", so pages only line up in this order.
    all.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
    // Entries after the markers: (key, upload id) or a common prefix.
    enum Entry {
        Upload(Upload),
        Prefix(String),
    }
    let mut entries: Vec<Entry> = Vec::new();
    for u in all {
        let rolled_up = (!delimiter.is_empty())
            .then(|| u.key[prefix.len()..].find(delimiter))
            .flatten()
            .map(|pos| u.key[..prefix.len() + pos + delimiter.len()].to_owned());
        let after = match &rolled_up {
            // A common prefix is a marker of its own (NextKeyMarker on the page that ended
            // with it): the next page starts after every key under it.
            Some(common) => key_marker.is_empty() || common.as_str() > key_marker,
            None if key_marker.is_empty() => true,
            None if id_marker.is_empty() => u.key.as_str() > key_marker,
            None => {
                u.key.as_str() > key_marker
                    || (u.key == key_marker && u.upload_id.as_str() > id_marker)
            }
        };
        if !after {
            continue;
        }
        match rolled_up {
            Some(common) => {
                if !matches!(entries.last(), Some(Entry::Prefix(last)) if *last == common) {
                    entries.push(Entry::Prefix(common));
                }
            }
            None => entries.push(Entry::Upload(u)),
        }
    }
    let truncated = entries.len() > max;
    entries.truncate(max);
    let (next_key, next_id) = match entries.last() {
        Some(Entry::Upload(u)) => (u.key.clone(), u.upload_id.clone()),
        Some(Entry::Prefix(p)) => (p.clone(), String::new()),
        None => (String::new(), String::new()),
    };
    let mut xml = String::from("<ListMultipartUploadsResult>");
    if url {
        xml.push_str(&el("EncodingType", "url"));
    }
    xml.push_str(&el("Bucket", bucket));
    xml.push_str(&el("KeyMarker", &listed_key(key_marker, url)));
    xml.push_str(&el("UploadIdMarker", id_marker));
    xml.push_str(&el("NextKeyMarker", &listed_key(&next_key, url)));
    xml.push_str(&el("NextUploadIdMarker", &next_id));
    xml.push_str(&el("Delimiter", &listed_key(delimiter, url)));
    xml.push_str(&el("Prefix", &listed_key(prefix, url)));
    xml.push_str(&el("MaxUploads", &max.to_string()));
    xml.push_str(&el("IsTruncated", if truncated { "true" } else { "false" }));
    for e in &entries {
        match e {
            Entry::Upload(u) => {
                xml.push_str("<Upload>");
                xml.push_str(&el("Key", &listed_key(&u.key, url)));
                xml.push_str(&el("UploadId", &u.upload_id));
                xml.push_str(&el("StorageClass", &u.storage_class));
                xml.push_str(&el("Initiated", &iso8601(u.initiated_ms)));
                xml.push_str("</Upload>");
            }
            Entry::Prefix(p) => {
                xml.push_str("<CommonPrefixes>");
                xml.push_str(&el("Prefix", &listed_key(p, url)));
                xml.push_str("</CommonPrefixes>");
            }
        }
    }
    xml.push_str("</ListMultipartUploadsResult>");
    xml_response(xml)
}
