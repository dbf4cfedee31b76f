//! The OSS wire protocol's names and limits, in one place for the gateway and the emulator.
//!
//! Both sides of the wire use these constants: the gateway's request builders and response
//! parsers (`oss::ops`, `oss::error`, `oss::upload`) and the emulator that answers them. A
//! limit that OSS enforces is written here once, so the gateway's early checks and the
//! emulator's answers cannot drift apart. Limits of validated values (tag counts, key lengths,
//! metadata size) live with their types in `model`, which this module re-exports.
//!
//! This module uses nothing but `model`, so the emulator may use it as it uses `oss::sign`.

/// Header names (lower case, as HTTP/2 and the signers want them).
pub mod header {
    /// Every OSS-specific header starts with this; the signers sign all of them.
    pub const OSS_PREFIX: &str = "x-oss-";
    /// User metadata headers start with this.
    pub use crate::model::META_PREFIX;

    pub const ACL: &str = "x-oss-object-acl";
    pub const ADDITIONAL_HEADERS: &str = "x-oss-additional-headers";
    pub const COMPLETE_ALL: &str = "x-oss-complete-all";
    pub const CONTENT_SHA256: &str = "x-oss-content-sha256";
    pub const COPY_SOURCE: &str = "x-oss-copy-source";
    pub const COPY_SOURCE_IF_MATCH: &str = "x-oss-copy-source-if-match";
    pub const COPY_SOURCE_IF_MODIFIED_SINCE: &str = "x-oss-copy-source-if-modified-since";
    pub const COPY_SOURCE_IF_NONE_MATCH: &str = "x-oss-copy-source-if-none-match";
    pub const COPY_SOURCE_IF_UNMODIFIED_SINCE: &str = "x-oss-copy-source-if-unmodified-since";
    pub const COPY_SOURCE_RANGE: &str = "x-oss-copy-source-range";
    pub const COPY_SOURCE_VERSION_ID: &str = "x-oss-copy-source-version-id";
    pub const CREDENTIAL: &str = "x-oss-credential";
    pub const DATE: &str = "x-oss-date";
    pub const DELETE_MARKER: &str = "x-oss-delete-marker";
    /// The error code's detail ("EC") OSS adds to error answers.
    pub const EC: &str = "x-oss-ec";
    /// A HEAD error's XML body, base64-encoded (HEAD answers carry no body).
    pub const ERR: &str = "x-oss-err";
    pub const EXPIRES: &str = "x-oss-expires";
    pub const FORBID_OVERWRITE: &str = "x-oss-forbid-overwrite";
    pub const HASH_CRC64ECMA: &str = "x-oss-hash-crc64ecma";
    pub const METADATA_DIRECTIVE: &str = "x-oss-metadata-directive";
    pub const NEXT_APPEND_POSITION: &str = "x-oss-next-append-position";
    pub const OBJECT_TYPE: &str = "x-oss-object-type";
    pub const RANGE_BEHAVIOR: &str = "x-oss-range-behavior";
    pub const REQUEST_ID: &str = "x-oss-request-id";
    /// The state of an archive object's restore (`ongoing-request="true"`, …).
    pub const RESTORE: &str = "x-oss-restore";
    /// The tier of a cold archive object's restore.
    pub const RESTORE_PRIORITY: &str = "x-oss-object-restore-priority";
    pub const SECURITY_TOKEN: &str = "x-oss-security-token";
    pub const SERVER_TIME: &str = "x-oss-server-time";
    pub const SIGNATURE: &str = "x-oss-signature";
    pub const SIGNATURE_VERSION: &str = "x-oss-signature-version";
    pub const STORAGE_CLASS: &str = "x-oss-storage-class";
    pub const SYMLINK_TARGET: &str = "x-oss-symlink-target";
    pub const TAGGING: &str = "x-oss-tagging";
    pub const TAGGING_COUNT: &str = "x-oss-tagging-count";
    pub const TAGGING_DIRECTIVE: &str = "x-oss-tagging-directive";
    pub const VERSION_ID: &str = "x-oss-version-id";
}

/// Query parameters the gateway sends and the emulator routes on: the sub-resources that
/// name an operation (`?tagging`, `?uploads`) and the arguments several operations share.
pub mod query {
    pub const APPEND: &str = "append";
    /// `url`: keys in the XML answer arrive percent-encoded.
    pub const ENCODING_TYPE: &str = "encoding-type";
    pub const PART_NUMBER: &str = "partNumber";
    pub const POSITION: &str = "position";
    pub const SYMLINK: &str = "symlink";
    pub const TAGGING: &str = "tagging";
    pub const UPLOAD_ID: &str = "uploadId";
    pub const UPLOADS: &str = "uploads";
    pub const VERSION_ID: &str = "versionId";
}

/// Limits OSS enforces on objects and multipart uploads.
pub mod limit {
    const GIB: u64 = 1024 * 1024 * 1024;

    /// The largest body of a single PutObject, UploadPart, or CopyObject source; also the
    /// largest an appendable object may grow to.
    pub const MAX_SINGLE_REQUEST_BYTES: u64 = 5 * GIB;
    /// The largest object a multipart upload can build: 10,000 parts of 5 GiB is more, but
    /// OSS documents 48.8 TiB.
    pub const MAX_OBJECT_BYTES: u64 = 48_800 * GIB;
    /// Every part but the last must be at least this large (checked at Complete).
    pub const MIN_PART_BYTES: u64 = 100 * 1024;
    /// The largest part (and UploadPartCopy range).
    pub const MAX_PART_BYTES: u64 = 5 * GIB;
    /// Part numbers run from 1 to 10,000.
    pub const MIN_PART_NUMBER: u32 = 1;
    pub const MAX_PART_NUMBER: u32 = 10_000;
    /// The most entries a listing page (ListObjects, ListParts, ListMultipartUploads) returns.
    pub const MAX_LIST_PAGE: u32 = 1000;
}
