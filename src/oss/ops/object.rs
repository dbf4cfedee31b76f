//! PutObject, GetObject, HeadObject and DeleteObject (docs/oss-protocol.md, "PutObject,
//! GetObject, HeadObject, DeleteObject").

use std::pin::Pin;
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::Stream;
use http::HeaderMap;

use super::{ContentHeaders, ObjectAttributes, OssOperation, OssRequest, Payload, Resp};
use crate::model::{BucketName, ObjectKey, ObjectType, StorageClass, UserMetadata, VersionId};
use crate::oss::client::{BoxError, Client};
use crate::oss::error::OssError;
use crate::oss::protocol::header;

/// Identifies one object, optionally one version of it. The input of
/// HeadObject, DeleteObject, GetObjectTagging, DeleteObjectTagging and GetSymlink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectId {
    /// The bucket.
    pub bucket: BucketName,
    /// The object key.
    pub key: ObjectKey,
    /// A specific version; `None` = the current one.
    pub version_id: Option<VersionId>,
}

impl ObjectId {
    /// The current version of `key` in `bucket`.
    pub fn new(bucket: BucketName, key: ObjectKey) -> Self {
        ObjectId {
            bucket,
            key,
            version_id: None,
        }
    }

    /// The same object at `version_id`.
    pub fn with_version(mut self, version_id: Option<VersionId>) -> Self {
        self.version_id = version_id;
        self
    }

    fn request(&self, operation: OssOperation) -> OssRequest {
        let mut req = OssRequest::new(operation, &self.bucket, Some(&self.key));
        req.version(self.version_id.as_ref());
        req
    }
}

/// Input of HeadObject.
pub type HeadObjectInput = ObjectId;
/// Input of DeleteObject.
pub type DeleteObjectInput = ObjectId;

// ---------------------------------------------------------------- PutObject

/// Input of PutObject (the body is passed separately as a stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutObjectInput {
    /// The bucket.
    pub bucket: BucketName,
    /// The object key.
    pub key: ObjectKey,
    /// The exact body size, when known: sent as `Content-Length` (and
    /// enforced against the stream); `None` = chunked transfer encoding.
    pub content_length: Option<u64>,
    /// MD5 of the whole body, sent as `Content-MD5`; OSS rejects a mismatch
    /// with `InvalidDigest`.
    pub content_md5: Option<[u8; 16]>,
    /// What the object gets: content headers, metadata, tags, storage class, ACL,
    /// forbid-overwrite.
    pub attributes: ObjectAttributes,
}

impl PutObjectInput {
    /// An upload of unknown size with no options.
    pub fn new(bucket: BucketName, key: ObjectKey) -> Self {
        PutObjectInput {
            bucket,
            key,
            content_length: None,
            content_md5: None,
            attributes: ObjectAttributes::default(),
        }
    }
}

/// Result of PutObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutObjectOutput {
    /// `ETag` as OSS sent it (quoted upper-case MD5 hex).
    pub etag: Option<String>,
    /// `x-oss-version-id` (versioned buckets).
    pub version_id: Option<VersionId>,
    /// `x-oss-hash-crc64ecma` as OSS reported it. When present it has been
    /// checked against [`Self::sent_crc64`].
    pub crc64: Option<u64>,
    /// CRC-64/XZ of the bytes the client sent.
    pub sent_crc64: u64,
    /// Number of body bytes the client sent.
    pub sent_bytes: u64,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds the PutObject request: `PUT /{key}` with a streamed body.
pub fn build_put_object(input: &PutObjectInput) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::PutObject, &input.bucket, Some(&input.key));
    input.attributes.push_to(&mut req);
    if let Some(md5) = &input.content_md5 {
        req.header_set(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(md5),
        );
    }
    if let Some(len) = input.content_length {
        req.header_set("content-length", len.to_string());
    }
    req.payload = Payload::Stream;
    req
}

/// Parses a PutObject success (the client fills in `sent_*` and checks the CRC).
pub fn parse_put_object(status: u16, headers: &HeaderMap) -> Result<PutObjectOutput, OssError> {
    let r = Resp::new(status, headers);
    Ok(PutObjectOutput {
        etag: r.etag(),
        version_id: r.version_id()?,
        crc64: r.crc64()?,
        sent_crc64: 0,
        sent_bytes: 0,
        request_id: r.request_id(),
    })
}

// ---------------------------------------------------------------- HeadObject / GetObject

/// An object's metadata, from HeadObject or the headers of GetObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    /// Size of the whole object in bytes (for a ranged GET: the total from `Content-Range`).
    pub size: u64,
    /// `ETag` as OSS sent it (quoted).
    pub etag: Option<String>,
    /// `x-oss-hash-crc64ecma` of the whole object (absent for some old objects).
    pub crc64: Option<u64>,
    /// `x-oss-object-type`; `None` if absent or unknown.
    pub object_type: Option<ObjectType>,
    /// `x-oss-storage-class`; `None` if absent or unknown.
    pub storage_class: Option<StorageClass>,
    /// User metadata (`x-oss-meta-*`, keys lower-case without the prefix).
    pub metadata: UserMetadata,
    /// `x-oss-tagging-count` (0 when absent).
    pub tag_count: u32,
    /// `x-oss-version-id`.
    pub version_id: Option<VersionId>,
    /// `Last-Modified`.
    pub last_modified: Option<SystemTime>,
    /// Content-Type, Cache-Control, Content-Disposition, Content-Encoding, Expires.
    pub content: ContentHeaders,
    /// `x-oss-next-append-position` (appendable objects).
    pub next_append_position: Option<u64>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds the HeadObject request: `HEAD /{key}[?versionId=]`.
pub fn build_head_object(input: &HeadObjectInput) -> OssRequest {
    input.request(OssOperation::HeadObject)
}

/// Parses a HeadObject success.
pub fn parse_head_object(status: u16, headers: &HeaderMap) -> Result<ObjectHead, OssError> {
    let r = Resp::new(status, headers);
    let size = r
        .u64("content-length")?
        .ok_or_else(|| r.invalid("HeadObject response without Content-Length"))?;
    parse_object_head(&r, size)
}

fn parse_object_head(r: &Resp<'_>, size: u64) -> Result<ObjectHead, OssError> {
    let tag_count = match r.u64(header::TAGGING_COUNT)? {
        None => 0,
        Some(n) => u32::try_from(n).map_err(|_| r.invalid("x-oss-tagging-count out of range"))?,
    };
    Ok(ObjectHead {
        size,
        etag: r.etag(),
        crc64: r.crc64()?,
        object_type: r
            .string(header::OBJECT_TYPE)
            .and_then(|s| ObjectType::parse(&s)),
        storage_class: r
            .string(header::STORAGE_CLASS)
            .and_then(|s| StorageClass::parse(&s)),
        metadata: r.metadata(),
        tag_count,
        version_id: r.version_id()?,
        last_modified: r.last_modified(),
        content: ContentHeaders::from_response(r),
        next_append_position: r.u64(header::NEXT_APPEND_POSITION)?,
        request_id: r.request_id(),
    })
}

/// An inclusive byte range `start..=end`; `end: None` = to the end of the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte (0-based).
    pub start: u64,
    /// Last byte, inclusive; `None` = the last byte of the object.
    pub end: Option<u64>,
}

impl ByteRange {
    /// The `Range` header value: `bytes=start-end` or `bytes=start-`.
    pub fn header_value(&self) -> String {
        match self.end {
            Some(end) => format!("bytes={}-{}", self.start, end),
            None => format!("bytes={}-", self.start),
        }
    }
}

/// A parsed `Content-Range: bytes start-end/total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// First byte returned.
    pub start: u64,
    /// Last byte returned (inclusive).
    pub end: u64,
    /// Size of the whole object.
    pub total: u64,
}

impl ContentRange {
    /// Parses `bytes 0-3/10`; `None` for anything else (including `*/10`).
    pub fn parse(s: &str) -> Option<ContentRange> {
        let rest = s.trim().strip_prefix("bytes")?.trim_start();
        let (range, total) = rest.split_once('/')?;
        let (start, end) = range.split_once('-')?;
        let cr = ContentRange {
            start: start.trim().parse().ok()?,
            end: end.trim().parse().ok()?,
            total: total.trim().parse().ok()?,
        };
        (cr.start <= cr.end && cr.end < cr.total).then_some(cr)
    }
}

/// Input of GetObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetObjectInput {
    /// The bucket.
    pub bucket: BucketName,
    /// The object key.
    pub key: ObjectKey,
    /// A specific version; `None` = the current one.
    pub version_id: Option<VersionId>,
    /// Only these bytes. Sent with `x-oss-range-behavior: standard`, so a
    /// range starting past the end fails with `RangeNotSatisfiable` instead of
    /// OSS's legacy "return the whole object".
    pub range: Option<ByteRange>,
}

impl GetObjectInput {
    /// The whole current version.
    pub fn new(bucket: BucketName, key: ObjectKey) -> Self {
        GetObjectInput {
            bucket,
            key,
            version_id: None,
            range: None,
        }
    }

    /// The range actually requested: `bytes=0-` is the whole object and is
    /// not sent (so an empty object reads as empty instead of failing with 416).
    pub fn effective_range(&self) -> Option<ByteRange> {
        self.range.filter(|r| r.start != 0 || r.end.is_some())
    }
}

/// The body of a GetObject: chunks as they arrive. A transport failure
/// mid-body is an `Err` item (then the stream ends); for a whole-object read
/// with a CRC header, a CRC mismatch is reported as a final
/// `ChecksumMismatch` error.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, OssError>> + Send + 'static>>;

/// Result of GetObject.
pub struct GetObjectOutput {
    /// The object's metadata (`size` is the whole object's size).
    pub head: ObjectHead,
    /// Bytes in this response's body, when known.
    pub content_length: Option<u64>,
    /// The range returned (206 responses); `None` = the whole object.
    pub content_range: Option<ContentRange>,
    /// The body.
    pub body: ByteStream,
}

impl std::fmt::Debug for GetObjectOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetObjectOutput")
            .field("head", &self.head)
            .field("content_length", &self.content_length)
            .field("content_range", &self.content_range)
            .finish_non_exhaustive()
    }
}

/// Builds the GetObject request: `GET /{key}[?versionId=]` with `Range`.
pub fn build_get_object(input: &GetObjectInput) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::GetObject, &input.bucket, Some(&input.key));
    req.version(input.version_id.as_ref());
    if let Some(range) = input.effective_range() {
        req.header_set("range", range.header_value());
        req.header_set(header::RANGE_BEHAVIOR, "standard");
    }
    req
}

/// Parses the headers of a GetObject success: (head, content length, content range).
pub fn parse_get_object_head(
    status: u16,
    headers: &HeaderMap,
) -> Result<(ObjectHead, Option<u64>, Option<ContentRange>), OssError> {
    let r = Resp::new(status, headers);
    let content_length = r.u64("content-length")?;
    let content_range = if status == 206 {
        let raw = r
            .string("content-range")
            .ok_or_else(|| r.invalid("206 response without Content-Range"))?;
        Some(
            ContentRange::parse(&raw)
                .ok_or_else(|| r.invalid(format!("unparsable Content-Range {raw:?}")))?,
        )
    } else {
        None
    };
    let size = match (content_range, content_length) {
        (Some(cr), _) => cr.total,
        (None, Some(len)) => len,
        (None, None) => return Err(r.invalid("GetObject response without Content-Length")),
    };
    Ok((parse_object_head(&r, size)?, content_length, content_range))
}

// ---------------------------------------------------------------- DeleteObject

/// Result of DeleteObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteObjectOutput {
    /// The version deleted, or the delete marker created (versioned buckets).
    pub version_id: Option<VersionId>,
    /// `x-oss-delete-marker: true`: a delete marker was created or deleted.
    pub delete_marker: bool,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds the DeleteObject request: `DELETE /{key}[?versionId=]`.
pub fn build_delete_object(input: &DeleteObjectInput) -> OssRequest {
    input.request(OssOperation::DeleteObject)
}

/// Parses a DeleteObject success (204; a missing key is also a success).
pub fn parse_delete_object(
    status: u16,
    headers: &HeaderMap,
) -> Result<DeleteObjectOutput, OssError> {
    let r = Resp::new(status, headers);
    Ok(DeleteObjectOutput {
        version_id: r.version_id()?,
        delete_marker: r.flag(header::DELETE_MARKER),
        request_id: r.request_id(),
    })
}

// ---------------------------------------------------------------- sends

impl Client {
    /// PutObject: uploads `body` as the object's content. The body is sent
    /// once (never retried); if the stream yields an error the upload is
    /// aborted and the call fails with `Cancelled`. With
    /// `input.content_length` set, a stream of a different length fails with
    /// `InvalidArgument` before OSS stores anything.
    pub async fn put_object<S>(
        &self,
        input: &PutObjectInput,
        body: S,
    ) -> Result<PutObjectOutput, OssError>
    where
        S: Stream<Item = Result<Bytes, BoxError>> + Send + 'static,
    {
        let req = build_put_object(input);
        let (resp, sent) = self
            .send_stream(&req, input.content_length, Box::pin(body))
            .await?;
        let mut out = parse_put_object(resp.status().as_u16(), resp.headers())?;
        out.sent_bytes = sent.bytes;
        out.sent_crc64 = sent.crc64;
        if let Some(server) = out.crc64
            && server != sent.crc64
        {
            return Err(OssError {
                http_status: Some(resp.status().as_u16()),
                request_id: out.request_id.clone(),
                ..OssError::client(
                    crate::oss::OssErrorKind::ChecksumMismatch,
                    format!(
                        "OSS reports CRC-64 {server} for the object, the client sent bytes with CRC-64 {}",
                        sent.crc64
                    ),
                )
            });
        }
        Ok(out)
    }

    /// GetObject: the object's metadata and a stream of its bytes.
    pub async fn get_object(&self, input: &GetObjectInput) -> Result<GetObjectOutput, OssError> {
        let req = build_get_object(input);
        let resp = self.send(&req).await?;
        let status = resp.status().as_u16();
        let (head, content_length, content_range) = parse_get_object_head(status, resp.headers())?;
        // Verify the whole-object CRC only when the body is the whole object.
        let expect_crc = if content_range.is_none() && input.effective_range().is_none() {
            head.crc64
        } else {
            None
        };
        let body = crate::oss::body::response_stream(resp, expect_crc, head.request_id.clone());
        Ok(GetObjectOutput {
            head,
            content_length,
            content_range,
            body,
        })
    }

    /// HeadObject: the object's metadata without its content.
    pub async fn head_object(&self, input: &HeadObjectInput) -> Result<ObjectHead, OssError> {
        let resp = self.send(&build_head_object(input)).await?;
        parse_head_object(resp.status().as_u16(), resp.headers())
    }

    /// DeleteObject: deletes the object (or one version). Deleting a missing
    /// key succeeds, as in OSS.
    pub async fn delete_object(
        &self,
        input: &DeleteObjectInput,
    ) -> Result<DeleteObjectOutput, OssError> {
        let resp = self.send(&build_delete_object(input)).await?;
        parse_delete_object(resp.status().as_u16(), resp.headers())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::model::{ObjectAcl, TagSet};
    use http::Method;

    use super::*;
    use crate::oss::OssErrorKind;

    /// CAP pyv2-v4-PutObject.http / oss2-v4-PutObject.http: the same inputs
    /// give the same non-auth headers.
    fn capture_put_input() -> PutObjectInput {
        let mut input = PutObjectInput::new(bucket(), key("docs/report 2025+final.txt"));
        input.content_length = Some(10);
        input.content_md5 = Some(
            base64::engine::general_purpose::STANDARD
                .decode("S0EUoYu/KkxURvmvzPmSPw==")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        input.attributes.content.content_type = Some("text/plain".into());
        input.attributes.metadata =
            UserMetadata::from_pairs([("author", "alice"), ("purpose", "unit test")]).unwrap();
        input.attributes.tags =
            TagSet::from_pairs([("project", "alpha"), ("team", "storage ops")]).unwrap();
        input.attributes.storage_class = Some(StorageClass::Ia);
        input.attributes.acl = Some(ObjectAcl::Private);
        input.attributes.forbid_overwrite = true;
        input
    }

    #[test]
    fn put_object_headers_match_capture() {
        let req = build_put_object(&capture_put_input());
        assert_eq!(req.method, Method::PUT);
        assert_eq!(req.bucket.as_str(), "examplebucket");
        assert_eq!(
            req.key.as_ref().map(|k| k.as_str()),
            Some("docs/report 2025+final.txt")
        );
        assert!(req.query.is_empty());
        assert_eq!(req.payload, Payload::Stream);
        assert!(!req.is_replayable());
        assert_eq!(
            sorted(&req),
            owned(&[
                ("x-oss-object-acl", "private"),
                ("x-oss-storage-class", "IA"),
                ("x-oss-meta-author", "alice"),
                ("x-oss-meta-purpose", "unit test"),
                ("content-md5", "S0EUoYu/KkxURvmvzPmSPw=="),
                ("content-type", "text/plain"),
                ("x-oss-tagging", "project=alpha&team=storage%20ops"),
                ("x-oss-forbid-overwrite", "true"),
                ("content-length", "10"),
            ])
        );
    }

    #[test]
    fn put_object_minimal_is_chunked() {
        let req = build_put_object(&PutObjectInput::new(bucket(), key("a")));
        assert!(req.headers.is_empty(), "{:?}", req.headers);
    }

    #[test]
    fn put_object_entity_headers_trimmed() {
        let mut input = PutObjectInput::new(bucket(), key("a"));
        input.attributes.content = ContentHeaders {
            content_type: Some(" application/json ".into()),
            cache_control: Some("no-cache".into()),
            content_disposition: Some("attachment; filename=\"a.txt\"".into()),
            content_encoding: Some("gzip".into()),
            expires: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
        };
        input.attributes.storage_class = Some(StorageClass::DeepColdArchive);
        input.attributes.acl = Some(ObjectAcl::PublicRead);
        let req = build_put_object(&input);
        assert_eq!(req.header("Content-Type"), Some("application/json"));
        assert_eq!(req.header("cache-control"), Some("no-cache"));
        assert_eq!(
            req.header("content-disposition"),
            Some("attachment; filename=\"a.txt\"")
        );
        assert_eq!(req.header("content-encoding"), Some("gzip"));
        assert_eq!(req.header("expires"), Some("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(req.header("x-oss-storage-class"), Some("DeepColdArchive"));
        assert_eq!(req.header("x-oss-object-acl"), Some("public-read"));
        assert_eq!(req.header("x-oss-forbid-overwrite"), None);
    }

    #[test]
    fn put_object_result() {
        let h = headers(&[
            ("etag", "\"5B3C1A2E053D763E1B002CC607C5A0FE\""),
            ("x-oss-hash-crc64ecma", "316181249502703"),
            ("x-oss-version-id", "v1"),
            ("x-oss-request-id", "RID"),
        ]);
        let out = parse_put_object(200, &h).unwrap();
        assert_eq!(
            out.etag.as_deref(),
            Some("\"5B3C1A2E053D763E1B002CC607C5A0FE\"")
        );
        assert_eq!(out.crc64, Some(316181249502703));
        assert_eq!(out.version_id.as_ref().map(|v| v.as_str()), Some("v1"));
        assert_eq!(out.request_id.as_deref(), Some("RID"));
        let bad = headers(&[("x-oss-hash-crc64ecma", "-1")]);
        assert_eq!(
            parse_put_object(200, &bad).unwrap_err().kind,
            OssErrorKind::InvalidResponse
        );
    }

    #[test]
    fn get_object_request_matches_capture() {
        // CAP pyv2-v4-GetObject.http: versionId + Range bytes=0-3
        let mut input = GetObjectInput::new(bucket(), key("docs/report.txt"));
        input.version_id = Some(version());
        input.range = Some(ByteRange {
            start: 0,
            end: Some(3),
        });
        let req = build_get_object(&input);
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.query, owned(&[("versionId", CAPTURE_VERSION)]));
        assert_eq!(req.header("range"), Some("bytes=0-3"));
        assert_eq!(req.header("x-oss-range-behavior"), Some("standard"));
        assert_eq!(req.payload, Payload::Empty);
        let open = ByteRange {
            start: 5,
            end: None,
        };
        assert_eq!(open.header_value(), "bytes=5-");
        let plain = build_get_object(&GetObjectInput::new(bucket(), key("k")));
        assert!(plain.headers.is_empty() && plain.query.is_empty());
        let mut from_zero = GetObjectInput::new(bucket(), key("k"));
        from_zero.range = Some(ByteRange {
            start: 0,
            end: None,
        });
        assert_eq!(from_zero.effective_range(), None);
        assert!(build_get_object(&from_zero).headers.is_empty());
        from_zero.range = Some(ByteRange {
            start: 0,
            end: Some(0),
        });
        assert_eq!(
            build_get_object(&from_zero).header("range"),
            Some("bytes=0-0")
        );
    }

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            ContentRange::parse("bytes 0-3/10"),
            Some(ContentRange {
                start: 0,
                end: 3,
                total: 10
            })
        );
        for bad in [
            "bytes */10",
            "bytes 3-1/10",
            "bytes 0-10/10",
            "0-3/10",
            "bytes a-b/c",
            "",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn get_object_head_ranged_and_whole() {
        let h = headers(&[
            ("content-length", "4"),
            ("content-range", "bytes 0-3/10"),
            ("x-oss-hash-crc64ecma", "42"),
        ]);
        let (head, len, cr) = parse_get_object_head(206, &h).unwrap();
        assert_eq!((head.size, len), (10, Some(4)));
        assert_eq!(cr.map(|c| (c.start, c.end)), Some((0, 3)));
        let h = headers(&[("content-length", "10")]);
        let (head, _, cr) = parse_get_object_head(200, &h).unwrap();
        assert_eq!((head.size, cr), (10, None));
        let err = parse_get_object_head(206, &headers(&[("content-length", "4")])).unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
        let err = parse_get_object_head(200, &HeaderMap::new()).unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
    }

    #[test]
    fn head_object_request_matches_capture() {
        // CAP pyv2-v4-HeadObject.http: no query, no extra headers
        let req = build_head_object(&ObjectId::new(bucket(), key("docs/report.txt")));
        assert_eq!(req.method, Method::HEAD);
        assert!(req.query.is_empty() && req.headers.is_empty());
        let req = build_head_object(
            &ObjectId::new(bucket(), key("docs/report.txt")).with_version(Some(version())),
        );
        assert_eq!(req.query_param("versionId"), Some(CAPTURE_VERSION));
    }

    #[test]
    fn head_object_parses_every_field() {
        let h = headers(&[
            ("content-length", "10"),
            ("etag", "\"5B3C1A2E053D763E1B002CC607C5A0FE\""),
            ("x-oss-hash-crc64ecma", "11051210869376104954"),
            ("x-oss-object-type", "Appendable"),
            ("x-oss-storage-class", "IA"),
            ("x-oss-meta-author", "alice"),
            ("x-oss-tagging-count", "2"),
            ("x-oss-version-id", "CAEQ"),
            ("content-type", "text/plain"),
            ("last-modified", "Wed, 15 Jan 2025 08:30:00 GMT"),
            ("cache-control", "no-cache"),
            ("content-disposition", "inline"),
            ("content-encoding", "gzip"),
            ("expires", "Thu, 01 Jan 2026 00:00:00 GMT"),
            ("x-oss-next-append-position", "10"),
            ("x-oss-request-id", "RID"),
        ]);
        let head = parse_head_object(200, &h).unwrap();
        assert_eq!(head.size, 10);
        assert_eq!(head.crc64, Some(11051210869376104954));
        assert_eq!(head.object_type, Some(ObjectType::Appendable));
        assert_eq!(head.storage_class, Some(StorageClass::Ia));
        assert_eq!(head.metadata.get("author"), Some("alice"));
        assert_eq!(head.tag_count, 2);
        assert_eq!(head.version_id.as_ref().map(|v| v.as_str()), Some("CAEQ"));
        assert_eq!(head.content.content_type.as_deref(), Some("text/plain"));
        assert_eq!(head.content.cache_control.as_deref(), Some("no-cache"));
        assert_eq!(head.content.content_disposition.as_deref(), Some("inline"));
        assert_eq!(head.content.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(
            head.content.expires.as_deref(),
            Some("Thu, 01 Jan 2026 00:00:00 GMT")
        );
        assert_eq!(head.next_append_position, Some(10));
        assert_eq!(head.request_id.as_deref(), Some("RID"));
        assert!(head.last_modified.is_some());
    }

    #[test]
    fn head_object_is_lenient_about_unknown_enums() {
        let h = headers(&[
            ("content-length", "0"),
            ("x-oss-object-type", "Quantum"),
            ("x-oss-storage-class", "Glacier"),
        ]);
        let head = parse_head_object(200, &h).unwrap();
        assert_eq!(head.object_type, None);
        assert_eq!(head.storage_class, None);
        assert_eq!(head.tag_count, 0);
        assert_eq!(head.crc64, None);
        let err = parse_head_object(200, &HeaderMap::new()).unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
        let err = parse_head_object(
            200,
            &headers(&[
                ("content-length", "1"),
                ("x-oss-tagging-count", "99999999999"),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
    }

    #[test]
    fn delete_object_request_and_result() {
        // CAP pyv2-v4-DeleteObject.http (pyv2's empty-body Content-MD5 is not needed)
        let req = build_delete_object(
            &ObjectId::new(bucket(), key("docs/report.txt")).with_version(Some(version())),
        );
        assert_eq!(req.method, Method::DELETE);
        assert_eq!(req.query, owned(&[("versionId", CAPTURE_VERSION)]));
        assert!(req.headers.is_empty());
        let out = parse_delete_object(
            204,
            &headers(&[("x-oss-delete-marker", "true"), ("x-oss-version-id", "DM1")]),
        )
        .unwrap();
        assert!(out.delete_marker);
        assert_eq!(out.version_id.as_ref().map(|v| v.as_str()), Some("DM1"));
        let out = parse_delete_object(204, &HeaderMap::new()).unwrap();
        assert!(!out.delete_marker && out.version_id.is_none());
    }
}
