//! One module per operation family. Each operation is a pure request builder
//! (`build_*`, returning an [`OssRequest`]), a pure response parser
//! (`parse_*`, from status and headers) and an async method on
//! [`crate::oss::Client`] that joins them through the client's single
//! sign-and-send path.

pub mod append;
pub mod copy;
pub mod list;
pub mod metaquery;
pub mod multipart;
pub mod object;
pub mod operation;
pub mod symlink;
pub mod tagging;

pub use append::{AppendObjectInput, AppendObjectOutput};
pub use copy::{
    CopyMetadata, CopyObjectInput, CopyObjectOutput, CopySource, CopySourceConditions, CopyTagging,
    UploadPartCopyInput, UploadPartCopyOutput,
};
pub use list::{
    ListObjectVersionsInput, ListObjectVersionsOutput, ListObjectsV2Input, ListObjectsV2Output,
    ListScope, ListedObject,
};
pub use metaquery::{
    DoMetaQueryInput, DoMetaQueryOutput, MetaQueryCondition, MetaQueryFile, MetaQueryStatus,
};
pub use multipart::{
    AbortMultipartUploadOutput, CompleteMultipartUploadInput, CompleteMultipartUploadOutput,
    CompleteParts, CompletedPart, InitiateMultipartUploadInput, InitiateMultipartUploadOutput,
    ListMultipartUploadsInput, ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput,
    MultipartUpload, MultipartUploadId, Part, UploadPartInput, UploadPartOutput,
};
pub use object::{
    ByteRange, ByteStream, ContentRange, DeleteObjectInput, DeleteObjectOutput, GetObjectInput,
    GetObjectOutput, HeadObjectInput, ObjectHead, PutObjectInput, PutObjectOutput,
};
pub use operation::OssOperation;
pub use symlink::{GetSymlinkInput, GetSymlinkOutput, PutSymlinkInput, PutSymlinkOutput};
pub use tagging::{
    DeleteObjectTaggingInput, DeleteObjectTaggingOutput, GetObjectTaggingInput,
    GetObjectTaggingOutput, PutObjectTaggingInput, PutObjectTaggingOutput,
};

use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::model::{
    BucketName, ObjectAcl, ObjectKey, StorageClass, TagSet, UserMetadata, VersionId,
};
use crate::oss::error::OssError;
use crate::oss::protocol::header;
use crate::oss::protocol::query;

/// What a request sends as its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// No body.
    Empty,
    /// A small body held in memory (XML documents); replayable, so the
    /// request may be retried.
    Bytes(Bytes),
    /// The caller's byte stream, supplied at send time; sent once, never retried.
    Stream,
}

/// A complete description of one OSS request, from the caller's own model:
/// everything the signer covers and the URL is built from. Auth headers
/// (`Authorization`, `x-oss-date`, …) are added at send time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OssRequest {
    /// Which OSS API operation this is (set by its builder).
    pub operation: OssOperation,
    /// HTTP method (the operation's).
    pub method: Method,
    /// The bucket.
    pub bucket: BucketName,
    /// The object key (decoded), if the request targets an object.
    pub key: Option<ObjectKey>,
    /// Query parameters, decoded; an empty value is a bare parameter (`?tagging`).
    pub query: Vec<(String, String)>,
    /// Request headers (lower-case names) other than the auth headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub payload: Payload,
}

impl OssRequest {
    pub(crate) fn new(
        operation: OssOperation,
        bucket: &BucketName,
        key: Option<&ObjectKey>,
    ) -> Self {
        OssRequest {
            operation,
            method: operation.method(),
            bucket: bucket.clone(),
            key: key.cloned(),
            query: Vec::new(),
            headers: Vec::new(),
            payload: Payload::Empty,
        }
    }

    /// The value of header `name` (case-insensitive), if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of query parameter `name`, if set.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the request may be sent again after a failure.
    pub fn is_replayable(&self) -> bool {
        !matches!(self.payload, Payload::Stream)
    }

    pub(crate) fn header_set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into().trim().to_string();
        self.headers.push((name.to_ascii_lowercase(), value));
    }

    pub(crate) fn header_opt(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.header_set(name, v);
        }
    }

    pub(crate) fn query_set(&mut self, name: &str, value: impl Into<String>) {
        self.query.push((name.to_string(), value.into()));
    }

    pub(crate) fn version(&mut self, version_id: Option<&VersionId>) {
        if let Some(v) = version_id {
            self.query_set(query::VERSION_ID, v.as_str());
        }
    }

    /// Sets an in-memory body, with `Content-MD5` when `with_md5`.
    pub(crate) fn bytes_body(&mut self, body: Bytes, with_md5: bool) {
        if with_md5 {
            self.header_set("content-md5", content_md5_of(&body));
        }
        self.payload = Payload::Bytes(body);
    }

    /// The headers every object-creating write shares.
    pub(crate) fn write_headers(&mut self, w: WriteHeaders<'_>) {
        if let Some(acl) = w.acl {
            self.header_set(header::ACL, acl.as_str());
        }
        if let Some(sc) = w.storage_class {
            self.header_set(header::STORAGE_CLASS, sc.as_str());
        }
        for (name, value) in w.metadata.header_pairs() {
            self.header_set(&name, value);
        }
        if !w.tags.is_empty() {
            self.header_set(header::TAGGING, w.tags.to_header_value());
        }
        if w.forbid_overwrite {
            self.header_set(header::FORBID_OVERWRITE, "true");
        }
    }
}

/// What a write gives the object it creates: content headers, user metadata, tags, storage
/// class, ACL, and whether it may replace an existing object. PutObject,
/// InitiateMultipartUpload, AppendObject and PutSymlink each hold one and send it with
/// [`ObjectAttributes::push_to`], so the four cannot drift apart in what they send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectAttributes {
    /// Content-Type, Cache-Control, Content-Disposition, Content-Encoding, Expires.
    pub content: ContentHeaders,
    /// User metadata (`x-oss-meta-*`).
    pub metadata: UserMetadata,
    /// Tags (`x-oss-tagging`); empty = no tags.
    pub tags: TagSet,
    /// `x-oss-storage-class`; `None` = the bucket's default.
    pub storage_class: Option<StorageClass>,
    /// `x-oss-object-acl`; `None` = inherit from the bucket.
    pub acl: Option<ObjectAcl>,
    /// `x-oss-forbid-overwrite: true`: fail with `AlreadyExists` if the key exists.
    pub forbid_overwrite: bool,
}

impl ObjectAttributes {
    /// Sends the attributes as request headers.
    pub(crate) fn push_to(&self, req: &mut OssRequest) {
        self.push_with(req, self.forbid_overwrite);
    }

    /// [`Self::push_to`] without `x-oss-forbid-overwrite`, for AppendObject, which has no
    /// such header.
    pub(crate) fn push_without_forbid_overwrite(&self, req: &mut OssRequest) {
        self.push_with(req, false);
    }

    fn push_with(&self, req: &mut OssRequest, forbid_overwrite: bool) {
        self.content.push_to(req);
        req.write_headers(WriteHeaders {
            metadata: &self.metadata,
            tags: &self.tags,
            storage_class: self.storage_class,
            acl: self.acl,
            forbid_overwrite,
        });
    }
}

/// Borrowed write options: those of [`ObjectAttributes`], or CopyObject's under its
/// directives.
pub(crate) struct WriteHeaders<'a> {
    pub metadata: &'a UserMetadata,
    pub tags: &'a TagSet,
    pub storage_class: Option<StorageClass>,
    pub acl: Option<ObjectAcl>,
    pub forbid_overwrite: bool,
}

/// Base64 of the MD5 of `body` (the `Content-MD5` header value).
pub fn content_md5_of(body: &[u8]) -> String {
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

/// The standard entity headers of an object, sent on writes and returned by
/// HEAD/GET. Values are sent trimmed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentHeaders {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Expires` (sent and returned verbatim).
    pub expires: Option<String>,
}

impl ContentHeaders {
    const NAMES: [&'static str; 5] = [
        "content-type",
        "cache-control",
        "content-disposition",
        "content-encoding",
        "expires",
    ];

    fn fields(&self) -> [&Option<String>; 5] {
        [
            &self.content_type,
            &self.cache_control,
            &self.content_disposition,
            &self.content_encoding,
            &self.expires,
        ]
    }

    pub(crate) fn push_to(&self, req: &mut OssRequest) {
        for (name, value) in Self::NAMES.iter().zip(self.fields()) {
            req.header_opt(name, value.as_deref());
        }
    }

    pub(crate) fn from_response(resp: &Resp<'_>) -> ContentHeaders {
        let get = |i: usize| resp.string(Self::NAMES[i]);
        ContentHeaders {
            content_type: get(0),
            cache_control: get(1),
            content_disposition: get(2),
            content_encoding: get(3),
            expires: get(4),
        }
    }
}

/// Read access to a success response's status and headers, with the lenient
/// rules every parser shares: absent or empty headers are `None`; a numeric
/// header that is present but malformed is an `InvalidResponse` error.
pub(crate) struct Resp<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
}

impl<'a> Resp<'a> {
    pub(crate) fn new(status: u16, headers: &'a HeaderMap) -> Self {
        Resp { status, headers }
    }

    /// Header value as text (non-UTF-8 bytes replaced), trimmed; `None` when absent or empty.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        let v = self.headers.get(name)?;
        let s = String::from_utf8_lossy(v.as_bytes());
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_string())
    }

    pub(crate) fn request_id(&self) -> Option<String> {
        self.string(header::REQUEST_ID)
    }

    pub(crate) fn invalid(&self, message: impl Into<String>) -> OssError {
        OssError::invalid_response(message, self.status, self.request_id())
    }

    pub(crate) fn u64(&self, name: &str) -> Result<Option<u64>, OssError> {
        match self.string(name) {
            None => Ok(None),
            Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
                self.invalid(format!("header {name} is not an unsigned integer: {s:?}"))
            }),
        }
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        self.string(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    pub(crate) fn etag(&self) -> Option<String> {
        self.string("etag")
    }

    pub(crate) fn crc64(&self) -> Result<Option<u64>, OssError> {
        self.u64(header::HASH_CRC64ECMA)
    }

    pub(crate) fn version_id(&self) -> Result<Option<VersionId>, OssError> {
        match self.string(header::VERSION_ID) {
            None => Ok(None),
            Some(s) => VersionId::parse(&s)
                .map(Some)
                .map_err(|v| self.invalid(format!("bad x-oss-version-id: {}", v.description))),
        }
    }

    /// `Last-Modified`; an unparsable date is `None` (it is informational).
    pub(crate) fn last_modified(&self) -> Option<SystemTime> {
        httpdate::parse_http_date(&self.string("last-modified")?).ok()
    }

    pub(crate) fn metadata(&self) -> UserMetadata {
        let owned: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(k, _)| k.as_str().starts_with(header::META_PREFIX))
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).trim().to_string(),
                )
            })
            .collect();
        UserMetadata::from_headers(owned.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// Parses an ISO 8601 / RFC 3339 time from an XML result; `None` if unparsable.
pub(crate) fn parse_iso_time(s: Option<&str>) -> Option<SystemTime> {
    let s = s?.trim();
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn md5_of_empty_body_matches_pyv2() {
        assert_eq!(content_md5_of(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
        // CAP pyv2-v4-PutObject.http: body "hello oss\n"
        assert_eq!(content_md5_of(b"hello oss\n"), "S0EUoYu/KkxURvmvzPmSPw==");
    }

    #[test]
    fn resp_helpers_are_lenient_but_strict_on_numbers() {
        let h = headers(&[
            ("x-oss-request-id", "RID"),
            ("x-oss-hash-crc64ecma", "11051210869376104954"),
            ("content-length", "abc"),
            ("x-oss-delete-marker", "True"),
            ("etag", "\"5B3C1A2E053D763E1B002CC607C5A0FE\""),
            ("last-modified", "Wed, 15 Jan 2025 08:30:00 GMT"),
            ("x-oss-meta-author", "alice"),
            ("X-OSS-META-Purpose", " unit test "),
            ("cache-control", ""),
        ]);
        let r = Resp::new(200, &h);
        assert_eq!(r.crc64().unwrap(), Some(0x995D_C9BB_DF19_39FA));
        let err = r.u64("content-length").unwrap_err();
        assert_eq!(err.kind, crate::oss::OssErrorKind::InvalidResponse);
        assert_eq!(err.request_id.as_deref(), Some("RID"));
        assert_eq!(r.u64("x-oss-next-append-position").unwrap(), None);
        assert!(r.flag("x-oss-delete-marker"));
        assert!(!r.flag("x-oss-nope"));
        assert_eq!(
            r.etag().as_deref(),
            Some("\"5B3C1A2E053D763E1B002CC607C5A0FE\"")
        );
        assert_eq!(
            r.last_modified(),
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_736_929_800))
        );
        let md = r.metadata();
        assert_eq!(md.get("author"), Some("alice"));
        assert_eq!(md.get("purpose"), Some("unit test"));
        assert_eq!(md.len(), 2);
        assert_eq!(r.string("cache-control"), None);
    }

    #[test]
    fn write_headers_omit_defaults() {
        let mut req = OssRequest::new(OssOperation::PutObject, &bucket(), Some(&key("k")));
        req.write_headers(WriteHeaders {
            metadata: &UserMetadata::empty(),
            tags: &TagSet::empty(),
            storage_class: None,
            acl: None,
            forbid_overwrite: false,
        });
        assert!(req.headers.is_empty());
    }
}
