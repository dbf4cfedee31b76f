//! Listing a bucket: ListObjectsV2 (the current objects, one page at a time, resumed with
//! OSS's continuation token) and ListObjectVersions (every version and delete marker,
//! resumed with a key marker and a version-id marker).
//!
//! Both send `encoding-type=url`, as the Python SDK v2 does, so a key holding characters
//! XML 1.0 cannot carry still lists; the parsers decode keys, common prefixes and the next
//! markers back (the fields the SDK decodes), and read an answer without
//! `<EncodingType>url</EncodingType>` verbatim. ListObjectsV2 leaves `fetch-owner` off: no
//! caller needs the owner, and it makes the answer larger.

use std::time::SystemTime;

use http::HeaderMap;

use super::multipart::{decode_if, flag, is_url, non_empty, opt_number, xml_text};
use super::{OssOperation, OssRequest, Resp, parse_iso_time};
use crate::model::{BucketName, ObjectType, StorageClass, VersionId};
use crate::oss::client::Client;
use crate::oss::error::OssError;
use crate::oss::protocol::limit::MAX_LIST_PAGE;
use crate::oss::protocol::query;
use crate::oss::xml::{ListedEntry, ListingChild, ListingDocument, parse_document};

/// Largest listing body read: 1000 entries with 1023-byte keys, URL-encoded, are ~4 MB.
const MAX_LIST_BODY: usize = 16 << 20;

/// The query parameters of the two listings (their sub-resources and arguments).
mod param {
    pub const LIST_TYPE: &str = "list-type";
    pub const VERSIONS: &str = "versions";
    pub const PREFIX: &str = "prefix";
    pub const DELIMITER: &str = "delimiter";
    pub const MAX_KEYS: &str = "max-keys";
    pub const CONTINUATION_TOKEN: &str = "continuation-token";
    pub const START_AFTER: &str = "start-after";
    pub const KEY_MARKER: &str = "key-marker";
    pub const VERSION_ID_MARKER: &str = "version-id-marker";
}

/// What both listings select: the bucket, the keys under `prefix`, grouped at `delimiter`,
/// at most `max_keys` entries per page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListScope {
    /// The bucket.
    pub bucket: BucketName,
    /// Only keys starting with this (`None` = every key).
    pub prefix: Option<String>,
    /// Keys that hold this after the prefix are grouped into one common prefix.
    pub delimiter: Option<String>,
    /// `max-keys`: entries (objects plus common prefixes) per page, 1..=1000; `None` = OSS's
    /// default (100).
    pub max_keys: Option<u32>,
}

impl ListScope {
    /// Every key of `bucket`, OSS's default page size.
    pub fn new(bucket: BucketName) -> Self {
        ListScope {
            bucket,
            prefix: None,
            delimiter: None,
            max_keys: None,
        }
    }

    fn request(&self, operation: OssOperation) -> OssRequest {
        OssRequest::new(operation, &self.bucket, None)
    }

    /// The scope's parameters, after the operation's own.
    fn push_to(&self, req: &mut OssRequest) {
        req.query_set(query::ENCODING_TYPE, "url");
        if let Some(p) = &self.prefix {
            req.query_set(param::PREFIX, p.as_str());
        }
        if let Some(d) = &self.delimiter {
            req.query_set(param::DELIMITER, d.as_str());
        }
        if let Some(n) = self.max_keys {
            req.query_set(param::MAX_KEYS, n.to_string());
        }
    }

    /// OSS refuses `max-keys` outside 1..=1000 and an empty delimiter means none: refused
    /// here, before anything is sent.
    fn check(&self) -> Result<(), OssError> {
        if let Some(n) = self.max_keys
            && !(1..=MAX_LIST_PAGE).contains(&n)
        {
            return Err(OssError::invalid_argument(format!(
                "max-keys {n} is outside 1..={MAX_LIST_PAGE}"
            )));
        }
        if self.delimiter.as_deref() == Some("") {
            return Err(OssError::invalid_argument("the delimiter is empty"));
        }
        Ok(())
    }
}

/// One listed object, or one version or delete marker of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    /// The key (decoded; not re-validated: OSS may hold keys the gateway would refuse).
    pub key: String,
    /// Size in bytes (0 for a delete marker).
    pub size: u64,
    /// `ETag` (quoted); `None` for a delete marker.
    pub etag: Option<String>,
    /// `LastModified`.
    pub last_modified: Option<SystemTime>,
    /// `StorageClass`, when OSS names a known one.
    pub storage_class: Option<StorageClass>,
    /// `Type`, when OSS names a known one.
    pub object_type: Option<ObjectType>,
    /// The version (ListObjectVersions; `null` for an object stored before versioning was
    /// enabled). `None` from ListObjectsV2.
    pub version_id: Option<VersionId>,
    /// The current version of its key (ListObjectVersions); always true from ListObjectsV2.
    pub is_latest: bool,
    /// A delete marker, not an object (ListObjectVersions).
    pub is_delete_marker: bool,
}

// ---------------------------------------------------------------- ListObjectsV2

/// Input of ListObjectsV2 (one page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListObjectsV2Input {
    /// Bucket, prefix, delimiter, page size.
    pub scope: ListScope,
    /// `continuation-token`: the previous page's `NextContinuationToken`.
    pub continuation_token: Option<String>,
    /// `start-after`: only keys after this one (OSS ignores it with a continuation token).
    pub start_after: Option<String>,
}

/// Result of ListObjectsV2 (one page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListObjectsV2Output {
    /// The objects on this page, in key order.
    pub objects: Vec<ListedObject>,
    /// The common prefixes on this page (decoded), in order.
    pub common_prefixes: Vec<String>,
    /// More entries follow.
    pub is_truncated: bool,
    /// `NextContinuationToken`, to ask for the next page.
    pub next_continuation_token: Option<String>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `GET /?list-type=2&encoding-type=url[&prefix=][&delimiter=][&max-keys=]`
/// `[&continuation-token=][&start-after=]`.
pub fn build_list_objects_v2(input: &ListObjectsV2Input) -> OssRequest {
    let mut req = input.scope.request(OssOperation::ListObjectsV2);
    req.query_set(param::LIST_TYPE, "2");
    input.scope.push_to(&mut req);
    if let Some(t) = &input.continuation_token {
        req.query_set(param::CONTINUATION_TOKEN, t.as_str());
    }
    if let Some(s) = &input.start_after {
        req.query_set(param::START_AFTER, s.as_str());
    }
    req
}

/// Parses a ListObjectsV2 success. Every object needs a key and a size.
pub fn parse_list_objects_v2(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ListObjectsV2Output, OssError> {
    let r = Resp::new(status, headers);
    let page = parse_listing(&r, body, "ListObjectsV2", "ListBucketResult")?;
    Ok(ListObjectsV2Output {
        objects: page.entries,
        common_prefixes: page.common_prefixes,
        is_truncated: page.is_truncated,
        next_continuation_token: page.next_continuation_token,
        request_id: r.request_id(),
    })
}

// ---------------------------------------------------------------- ListObjectVersions

/// Input of ListObjectVersions (one page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListObjectVersionsInput {
    /// Bucket, prefix, delimiter, page size.
    pub scope: ListScope,
    /// `key-marker`: only keys after this one, or with `version_id_marker`, the versions of
    /// this key after that version.
    pub key_marker: Option<String>,
    /// `version-id-marker` (only with `key_marker`).
    pub version_id_marker: Option<String>,
}

/// Result of ListObjectVersions (one page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListObjectVersionsOutput {
    /// Versions and delete markers, in OSS's order: by key, each key's newest first.
    pub versions: Vec<ListedObject>,
    /// The common prefixes on this page (decoded), in order.
    pub common_prefixes: Vec<String>,
    /// More entries follow.
    pub is_truncated: bool,
    /// `NextKeyMarker` (decoded).
    pub next_key_marker: Option<String>,
    /// `NextVersionIdMarker`.
    pub next_version_id_marker: Option<String>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `GET /?versions&encoding-type=url[&prefix=][&delimiter=][&max-keys=]`
/// `[&key-marker=][&version-id-marker=]`.
pub fn build_list_object_versions(input: &ListObjectVersionsInput) -> OssRequest {
    let mut req = input.scope.request(OssOperation::ListObjectVersions);
    req.query_set(param::VERSIONS, "");
    input.scope.push_to(&mut req);
    if let Some(m) = &input.key_marker {
        req.query_set(param::KEY_MARKER, m.as_str());
    }
    if let Some(m) = &input.version_id_marker {
        req.query_set(param::VERSION_ID_MARKER, m.as_str());
    }
    req
}

/// Parses a ListObjectVersions success. Every version needs a key, a version ID and a size;
/// every delete marker a key and a version ID.
pub fn parse_list_object_versions(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ListObjectVersionsOutput, OssError> {
    let r = Resp::new(status, headers);
    let page = parse_listing(&r, body, "ListObjectVersions", "ListVersionsResult")?;
    Ok(ListObjectVersionsOutput {
        versions: page.entries,
        common_prefixes: page.common_prefixes,
        is_truncated: page.is_truncated,
        next_key_marker: page.next_key_marker,
        next_version_id_marker: page.next_version_id_marker,
        request_id: r.request_id(),
    })
}

// ---------------------------------------------------------------- shared parsing

/// What the two documents share, decoded and checked.
struct ParsedListing {
    entries: Vec<ListedObject>,
    common_prefixes: Vec<String>,
    is_truncated: bool,
    next_continuation_token: Option<String>,
    next_key_marker: Option<String>,
    next_version_id_marker: Option<String>,
}

fn parse_listing(
    r: &Resp<'_>,
    body: &[u8],
    what: &str,
    root: &str,
) -> Result<ParsedListing, OssError> {
    let text = xml_text(r, body, what)?;
    let doc: ListingDocument =
        parse_document(text, root).ok_or_else(|| r.invalid(format!("unparsable {root} body")))?;
    // EncodingType may come after the keys: find it first.
    let url = doc.children.iter().any(|c| match c {
        ListingChild::EncodingType(e) => is_url(&Some(e.clone())),
        _ => false,
    });
    let mut page = ParsedListing {
        entries: Vec::new(),
        common_prefixes: Vec::new(),
        is_truncated: false,
        next_continuation_token: None,
        next_key_marker: None,
        next_version_id_marker: None,
    };
    for child in doc.children {
        match child {
            ListingChild::Contents(e) => {
                page.entries
                    .push(entry(r, what, url, e, EntryKind::Object)?);
            }
            ListingChild::Version(e) => {
                page.entries
                    .push(entry(r, what, url, e, EntryKind::Version)?);
            }
            ListingChild::DeleteMarker(e) => {
                page.entries
                    .push(entry(r, what, url, e, EntryKind::DeleteMarker)?);
            }
            ListingChild::CommonPrefixes(p) => {
                let prefix = decode_if(url, p.prefix)
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| r.invalid(format!("{what} CommonPrefixes without a Prefix")))?;
                page.common_prefixes.push(prefix);
            }
            ListingChild::IsTruncated(t) => page.is_truncated = flag(Some(&t)),
            ListingChild::NextContinuationToken(t) => {
                page.next_continuation_token = decode_if(url, non_empty(Some(t)));
            }
            ListingChild::NextKeyMarker(m) => {
                page.next_key_marker = decode_if(url, non_empty(Some(m)));
            }
            ListingChild::NextVersionIdMarker(m) => {
                page.next_version_id_marker = non_empty(Some(m));
            }
            ListingChild::EncodingType(_) | ListingChild::Other => {}
        }
    }
    Ok(page)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Object,
    Version,
    DeleteMarker,
}

fn entry(
    r: &Resp<'_>,
    what: &str,
    url: bool,
    e: ListedEntry,
    kind: EntryKind,
) -> Result<ListedObject, OssError> {
    let key = decode_if(url, e.key)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| r.invalid(format!("{what} entry without a Key")))?;
    let version_id = match (kind, non_empty(e.version_id)) {
        (EntryKind::Object, _) => None,
        (_, None) => return Err(r.invalid(format!("{what} entry {key:?} without a VersionId"))),
        (_, Some(v)) => Some(VersionId::parse(&v).map_err(|v| {
            r.invalid(format!(
                "{what} entry {key:?}: bad VersionId: {}",
                v.description
            ))
        })?),
    };
    let size = opt_number::<u64>(r, "Size", e.size.as_deref())?;
    let size = match (kind, size) {
        (EntryKind::DeleteMarker, size) => size.unwrap_or(0),
        (_, Some(size)) => size,
        (_, None) => return Err(r.invalid(format!("{what} entry {key:?} without a Size"))),
    };
    Ok(ListedObject {
        key,
        size,
        etag: non_empty(e.etag),
        last_modified: parse_iso_time(e.last_modified.as_deref()),
        storage_class: e
            .storage_class
            .as_deref()
            .and_then(|c| StorageClass::parse(c.trim())),
        object_type: e
            .object_type
            .as_deref()
            .and_then(|t| ObjectType::parse(t.trim())),
        version_id,
        is_latest: kind == EntryKind::Object || flag(e.is_latest.as_deref()),
        is_delete_marker: kind == EntryKind::DeleteMarker,
    })
}

impl Client {
    /// ListObjectsV2: one page of the objects under the scope.
    pub async fn list_objects_v2(
        &self,
        input: &ListObjectsV2Input,
    ) -> Result<ListObjectsV2Output, OssError> {
        input.scope.check()?;
        self.send_and_parse(
            &build_list_objects_v2(input),
            MAX_LIST_BODY,
            parse_list_objects_v2,
        )
        .await
    }

    /// ListObjectVersions: one page of the versions and delete markers under the scope.
    pub async fn list_object_versions(
        &self,
        input: &ListObjectVersionsInput,
    ) -> Result<ListObjectVersionsOutput, OssError> {
        input.scope.check()?;
        if input.version_id_marker.is_some() && input.key_marker.is_none() {
            return Err(OssError::invalid_argument(
                "a version-id-marker needs a key-marker",
            ));
        }
        self.send_and_parse(
            &build_list_object_versions(input),
            MAX_LIST_BODY,
            parse_list_object_versions,
        )
        .await
    }
}

#[cfg(test)]
mod tests;
