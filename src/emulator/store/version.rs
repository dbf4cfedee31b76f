//! One version of an object and what it holds (data, symlink or delete marker), with the
//! version IDs and clock the store gives versions.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// What a version holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Kind {
    /// Object data.
    Data {
        /// `Normal`, `Appendable` or `Multipart`.
        object_type: String,
        /// Blob ID.
        blob: String,
        /// Size in bytes.
        size: u64,
        /// ETag without quotes (upper-case hex MD5 for PutObject).
        etag: String,
        /// CRC-64/XZ of the data.
        crc64: u64,
    },
    /// A symlink.
    Symlink {
        /// The decoded target key.
        target: String,
    },
    /// A delete marker (versioned buckets only).
    DeleteMarker,
}

/// One version of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Version ID; `None` in unversioned buckets.
    pub version_id: Option<String>,
    /// Data, symlink or delete marker.
    pub kind: Kind,
    /// Unix milliseconds.
    pub last_modified_ms: u64,
    /// Standard entity headers stored with the object (lower-case names: content-type, …).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// User metadata, lower-case keys without `x-oss-meta-`.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Storage class (`Standard`, …).
    #[serde(default = "default_storage_class")]
    pub storage_class: String,
    /// Object ACL (`default`, …).
    #[serde(default = "default_acl")]
    pub acl: String,
    /// The last RestoreObject of an archive object, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Restore>,
}

/// A RestoreObject of an Archive, ColdArchive or DeepColdArchive object: ongoing until
/// `ready_ms`, then readable until `expiry_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    /// When the restored copy becomes readable (Unix milliseconds).
    pub ready_ms: u64,
    /// When the restored copy goes away again (Unix milliseconds).
    pub expiry_ms: u64,
    /// The tier asked for (`Expedited`, `Standard`, `Bulk`) of a cold archive restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

impl Restore {
    /// Whether the restore is still running at `now_ms`.
    pub fn ongoing(&self, now_ms: u64) -> bool {
        now_ms < self.ready_ms
    }

    /// Whether the restored copy can be read at `now_ms`.
    pub fn readable(&self, now_ms: u64) -> bool {
        (self.ready_ms..self.expiry_ms).contains(&now_ms)
    }

    /// The `x-oss-restore` header (and the listings' `RestoreInfo`) at `now_ms`, or `None`
    /// once the restored copy has expired.
    pub fn status(&self, now_ms: u64) -> Option<String> {
        if self.ongoing(now_ms) {
            Some("ongoing-request=\"true\"".to_owned())
        } else if self.readable(now_ms) {
            let expiry = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.expiry_ms);
            Some(format!(
                "ongoing-request=\"false\", expiry-date=\"{}\"",
                httpdate::fmt_http_date(expiry)
            ))
        } else {
            None
        }
    }
}

fn default_storage_class() -> String {
    "Standard".to_owned()
}

fn default_acl() -> String {
    "default".to_owned()
}

impl Version {
    /// A new version (ID assigned at commit) of the given kind, modified now.
    pub fn new(kind: Kind) -> Self {
        Self {
            version_id: None,
            kind,
            last_modified_ms: now_ms(),
            headers: BTreeMap::new(),
            meta: BTreeMap::new(),
            tags: BTreeMap::new(),
            storage_class: default_storage_class(),
            acl: default_acl(),
            restore: None,
        }
    }

    /// Whether this is a delete marker.
    pub fn is_delete_marker(&self) -> bool {
        matches!(self.kind, Kind::DeleteMarker)
    }

    /// The blob this version references, if any.
    pub(super) fn blob(&self) -> Option<&str> {
        match &self.kind {
            Kind::Data { blob, .. } => Some(blob),
            _ => None,
        }
    }

    /// Whether the storage class keeps the data offline until a RestoreObject.
    pub fn is_archived(&self) -> bool {
        matches!(
            self.storage_class.as_str(),
            "Archive" | "ColdArchive" | "DeepColdArchive"
        )
    }

    /// The ETag without quotes.
    pub fn etag(&self) -> String {
        match &self.kind {
            Kind::Data { etag, .. } => etag.clone(),
            Kind::Symlink { target } => hex::encode_upper(Md5::digest(target.as_bytes())),
            Kind::DeleteMarker => String::new(),
        }
    }
}

/// Current time in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A new OSS-looking version ID (`CAEQ…`, URL-safe base64 text).
pub(super) fn new_version_id() -> String {
    use base64::Engine as _;
    let mut raw = Vec::with_capacity(24);
    raw.extend_from_slice(&now_ms().to_be_bytes());
    raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!(
        "CAEQ{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}
