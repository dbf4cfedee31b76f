//! The copies: CopyObject (docs/oss-protocol.md, "CopyObject") and UploadPartCopy, and the
//! copy-source pieces they share: [`CopySource`] and [`CopySourceConditions`]. UploadPartCopy
//! lives here rather than with the multipart uploads so the dependency runs one way: copies use
//! the multipart upload ID, multipart uploads know nothing of copies.

use std::time::SystemTime;

use http::HeaderMap;

use super::multipart::{MultipartUploadId, check_part_number, no_body, non_empty};
use super::object::ByteRange;
use super::{ContentHeaders, OssOperation, OssRequest, Resp, WriteHeaders, parse_iso_time};
use crate::model::{
    BucketName, ObjectAcl, ObjectKey, StorageClass, TagSet, UserMetadata, VersionId,
};
use crate::oss::client::{Client, MAX_XML_BODY};
use crate::oss::endpoint::percent_encode;
use crate::oss::error::OssError;
use crate::oss::protocol::{header, query};
use crate::oss::sign::http_date;
use crate::oss::xml::{CopyResult, parse_document};

/// Where a copy's destination gets its tags (`x-oss-tagging-directive`). Tags exist only
/// under `Replace`, so a request cannot carry tags that the directive would ignore.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CopyTagging {
    /// The source's tags (OSS's default).
    #[default]
    Copy,
    /// This set (empty = no tags, sent as an empty `x-oss-tagging` value).
    Replace(TagSet),
}

impl CopyTagging {
    /// The directive's wire value: `Copy` or `Replace` (capitalised, unlike
    /// [`CopyMetadata::directive`]).
    pub fn directive(&self) -> &'static str {
        match self {
            CopyTagging::Copy => "Copy",
            CopyTagging::Replace(_) => "Replace",
        }
    }
}

/// Where a copy's destination gets its user metadata and content headers
/// (`x-oss-metadata-directive`); they exist only under `Replace`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CopyMetadata {
    /// The source's (OSS's default).
    #[default]
    Copy,
    /// These.
    Replace {
        /// The complete user metadata.
        metadata: UserMetadata,
        /// The content headers.
        content: ContentHeaders,
    },
}

impl CopyMetadata {
    /// The directive's wire value: `COPY` or `REPLACE` (upper case, unlike
    /// [`CopyTagging::directive`]).
    pub fn directive(&self) -> &'static str {
        match self {
            CopyMetadata::Copy => "COPY",
            CopyMetadata::Replace { .. } => "REPLACE",
        }
    }
}

/// The object a copy reads: `x-oss-copy-source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySource {
    /// The source bucket (same region as the destination).
    pub bucket: BucketName,
    /// The source key.
    pub key: ObjectKey,
    /// A specific source version; `None` = the current one.
    pub version_id: Option<VersionId>,
}

impl CopySource {
    /// The current version of `key` in `bucket`.
    pub fn new(bucket: BucketName, key: ObjectKey) -> Self {
        CopySource {
            bucket,
            key,
            version_id: None,
        }
    }

    /// The `x-oss-copy-source` value: `/{bucket}/{key}[?versionId={id}]`,
    /// the key percent-encoded keeping `/` (as the Go SDK v2's
    /// `encodeSourceObject` and pyv2 do; `?` in a key becomes `%3F`), the
    /// version ID verbatim (as both SDKs send it).
    pub fn header_value(&self) -> String {
        let mut v = format!(
            "/{}/{}",
            self.bucket.as_str(),
            percent_encode(self.key.as_str(), true)
        );
        if let Some(version) = &self.version_id {
            v.push_str("?versionId=");
            v.push_str(version.as_str());
        }
        v
    }
}

/// Conditions on the copy source (`x-oss-copy-source-if-*`); a failed one is
/// `PreconditionFailed` (412, or 304 for if-none-match / if-modified-since).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopySourceConditions {
    /// Copy only if the source's ETag is this (quoted as OSS returns it).
    pub if_match: Option<String>,
    /// Copy only if the source's ETag is not this.
    pub if_none_match: Option<String>,
    /// Copy only if the source changed after this time (sent as an HTTP date).
    pub if_modified_since: Option<SystemTime>,
    /// Copy only if the source did not change after this time (sent as an HTTP date).
    pub if_unmodified_since: Option<SystemTime>,
}

impl CopySourceConditions {
    pub(crate) fn push_to(&self, req: &mut OssRequest) {
        req.header_opt(header::COPY_SOURCE_IF_MATCH, self.if_match.as_deref());
        req.header_opt(
            header::COPY_SOURCE_IF_NONE_MATCH,
            self.if_none_match.as_deref(),
        );
        if let Some(t) = self.if_modified_since {
            req.header_set(header::COPY_SOURCE_IF_MODIFIED_SINCE, http_date(t));
        }
        if let Some(t) = self.if_unmodified_since {
            req.header_set(header::COPY_SOURCE_IF_UNMODIFIED_SINCE, http_date(t));
        }
    }
}

/// Input of CopyObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyObjectInput {
    /// What to copy.
    pub source: CopySource,
    /// The destination bucket (the request goes to this bucket).
    pub bucket: BucketName,
    /// The destination key (may equal the source: an in-place metadata edit).
    pub key: ObjectKey,
    /// The destination's user metadata and content headers.
    pub metadata: CopyMetadata,
    /// The destination's tags.
    pub tagging: CopyTagging,
    /// `x-oss-storage-class` of the destination; `None` = the bucket's default.
    pub storage_class: Option<StorageClass>,
    /// `x-oss-object-acl` of the destination; `None` = inherit from the bucket.
    pub acl: Option<ObjectAcl>,
    /// `x-oss-forbid-overwrite: true`: fail with `AlreadyExists` if the destination exists.
    pub forbid_overwrite: bool,
    /// Conditions on the source.
    pub conditions: CopySourceConditions,
}

impl CopyObjectInput {
    /// A plain copy of `source` to `bucket`/`key` (metadata and tags copied).
    pub fn new(source: CopySource, bucket: BucketName, key: ObjectKey) -> Self {
        CopyObjectInput {
            source,
            bucket,
            key,
            metadata: CopyMetadata::Copy,
            tagging: CopyTagging::Copy,
            storage_class: None,
            acl: None,
            forbid_overwrite: false,
            conditions: CopySourceConditions::default(),
        }
    }
}

/// Result of CopyObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyObjectOutput {
    /// ETag of the destination (XML body, else the `ETag` header).
    pub etag: Option<String>,
    /// `LastModified` of the destination (XML body; `None` if absent or unparsable).
    pub last_modified: Option<SystemTime>,
    /// `x-oss-version-id`: the destination's new version (versioned buckets).
    pub version_id: Option<VersionId>,
    /// `x-oss-copy-source-version-id`: the source version that was copied.
    pub source_version_id: Option<VersionId>,
    /// `x-oss-hash-crc64ecma` of the destination, when OSS sent it.
    pub crc64: Option<u64>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `PUT /{destKey}` with `x-oss-copy-source` and no body. Directive
/// headers are sent only for `Replace` (`Copy` is OSS's default), and with
/// them the replacing metadata/content headers or tags.
pub fn build_copy_object(input: &CopyObjectInput) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::CopyObject, &input.bucket, Some(&input.key));
    no_body(&mut req);
    req.header_set(header::COPY_SOURCE, input.source.header_value());
    let no_metadata = UserMetadata::empty();
    let metadata = match &input.metadata {
        CopyMetadata::Copy => &no_metadata,
        CopyMetadata::Replace { metadata, content } => {
            req.header_set(header::METADATA_DIRECTIVE, input.metadata.directive());
            content.push_to(&mut req);
            metadata
        }
    };
    let no_tags = TagSet::empty();
    let tags = match &input.tagging {
        CopyTagging::Copy => &no_tags,
        CopyTagging::Replace(tags) => tags,
    };
    req.write_headers(WriteHeaders {
        metadata,
        tags,
        storage_class: input.storage_class,
        acl: input.acl,
        forbid_overwrite: input.forbid_overwrite,
    });
    if let CopyTagging::Replace(tags) = &input.tagging {
        req.header_set(header::TAGGING_DIRECTIVE, input.tagging.directive());
        if tags.is_empty() {
            // write_headers omits an empty set; Replace needs the (empty) header
            // so the destination ends up with no tags.
            req.header_set(header::TAGGING, "");
        }
    }
    input.conditions.push_to(&mut req);
    req
}

/// Parses a `<CopyObjectResult>`/`<CopyPartResult>` body (`root` names which);
/// an empty body is accepted (the ETag header is then used).
pub(crate) fn parse_copy_result(
    r: &Resp<'_>,
    body: &[u8],
    root: &str,
) -> Result<CopyResult, OssError> {
    let text =
        std::str::from_utf8(body).map_err(|_| r.invalid(format!("{root} body is not UTF-8")))?;
    if text.trim().is_empty() {
        return Ok(CopyResult::default());
    }
    parse_document::<CopyResult>(text, root)
        .ok_or_else(|| r.invalid(format!("unparsable {root} body")))
}

/// `x-oss-copy-source-version-id`.
pub(crate) fn source_version_id(r: &Resp<'_>) -> Result<Option<VersionId>, OssError> {
    match r.string(header::COPY_SOURCE_VERSION_ID) {
        None => Ok(None),
        Some(s) => VersionId::parse(&s).map(Some).map_err(|v| {
            r.invalid(format!(
                "bad x-oss-copy-source-version-id: {}",
                v.description
            ))
        }),
    }
}

/// Parses a CopyObject success (headers and `<CopyObjectResult>` body).
pub fn parse_copy_object(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<CopyObjectOutput, OssError> {
    let r = Resp::new(status, headers);
    let doc = parse_copy_result(&r, body, "CopyObjectResult")?;
    Ok(CopyObjectOutput {
        etag: doc
            .etag
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .or_else(|| r.etag()),
        last_modified: parse_iso_time(doc.last_modified.as_deref()),
        version_id: r.version_id()?,
        source_version_id: source_version_id(&r)?,
        crc64: r.crc64()?,
        request_id: r.request_id(),
    })
}

// ---------------------------------------------------------------- UploadPartCopy

/// Input of UploadPartCopy: one part copied from an existing object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPartCopyInput {
    /// The upload.
    pub upload: MultipartUploadId,
    /// 1..=10000.
    pub part_number: u32,
    /// The object to read.
    pub source: CopySource,
    /// Bytes of the source to copy (`x-oss-copy-source-range`, inclusive);
    /// `None` = the whole source.
    pub range: Option<ByteRange>,
    /// Conditions on the source.
    pub conditions: CopySourceConditions,
}

impl UploadPartCopyInput {
    /// Part `part_number` of `upload` = the whole of `source`.
    pub fn new(upload: MultipartUploadId, part_number: u32, source: CopySource) -> Self {
        UploadPartCopyInput {
            upload,
            part_number,
            source,
            range: None,
            conditions: CopySourceConditions::default(),
        }
    }
}

/// Result of UploadPartCopy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPartCopyOutput {
    /// The part's ETag (XML body, else the `ETag` header).
    pub etag: String,
    /// `LastModified` from the XML body.
    pub last_modified: Option<SystemTime>,
    /// `x-oss-copy-source-version-id`: the source version read.
    pub source_version_id: Option<VersionId>,
    /// `x-oss-hash-crc64ecma` of the part, when OSS sent it.
    pub crc64: Option<u64>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `PUT /{key}?partNumber={n}&uploadId={id}` with `x-oss-copy-source`,
/// the optional range and the source conditions; no body.
pub fn build_upload_part_copy(input: &UploadPartCopyInput) -> OssRequest {
    let part = input.part_number.to_string();
    let mut req = input.upload.request(
        OssOperation::UploadPartCopy,
        &[(query::PART_NUMBER, part.as_str())],
    );
    no_body(&mut req);
    req.header_set(header::COPY_SOURCE, input.source.header_value());
    if let Some(range) = &input.range {
        req.header_set(header::COPY_SOURCE_RANGE, range.header_value());
    }
    input.conditions.push_to(&mut req);
    req
}

/// Parses an UploadPartCopy success (headers and `<CopyPartResult>`).
pub fn parse_upload_part_copy(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<UploadPartCopyOutput, OssError> {
    let r = Resp::new(status, headers);
    let doc = parse_copy_result(&r, body, "CopyPartResult")?;
    let etag = non_empty(doc.etag)
        .or_else(|| r.etag())
        .ok_or_else(|| r.invalid("UploadPartCopy response without an ETag"))?;
    Ok(UploadPartCopyOutput {
        etag,
        last_modified: parse_iso_time(doc.last_modified.as_deref()),
        source_version_id: source_version_id(&r)?,
        crc64: r.crc64()?,
        request_id: r.request_id(),
    })
}

impl Client {
    /// CopyObject: copies `input.source` to `input.bucket`/`input.key` in one
    /// request (OSS's size limits apply, see docs/oss-protocol.md, "Limits"; use
    /// UploadPartCopy above them). Retried like any body-less request.
    pub async fn copy_object(&self, input: &CopyObjectInput) -> Result<CopyObjectOutput, OssError> {
        self.send_and_parse(&build_copy_object(input), MAX_XML_BODY, parse_copy_object)
            .await
    }

    /// UploadPartCopy: one part copied from an existing object (or a range of it).
    pub async fn upload_part_copy(
        &self,
        input: &UploadPartCopyInput,
    ) -> Result<UploadPartCopyOutput, OssError> {
        input.upload.check()?;
        check_part_number(input.part_number)?;
        if let Some(range) = &input.range
            && range.end.is_some_and(|end| end < range.start)
        {
            return Err(OssError::invalid_argument(format!(
                "copy range {} ends before it starts",
                range.header_value()
            )));
        }
        self.send_and_parse(
            &build_upload_part_copy(input),
            MAX_XML_BODY,
            parse_upload_part_copy,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::Payload;
    use super::super::test_support::capture_sign::{signature, with_pyv2_empty_md5};
    use super::super::test_support::*;
    use http::Method;

    use super::*;
    use crate::oss::OssErrorKind;
    use crate::oss::sign::SignatureVersion::{V1, V4};
    use std::time::Duration;

    /// CAP pyv2-v4-CopyObject.http / oss2-v4-CopyObject.http inputs.
    fn capture_copy_input() -> CopyObjectInput {
        let mut input = CopyObjectInput::new(
            CopySource::new(bucket(), key("src/中文 file.txt")),
            bucket(),
            key("dest/copy.txt"),
        );
        input.metadata = CopyMetadata::Replace {
            metadata: UserMetadata::from_pairs([("author", "bob")]).unwrap(),
            content: ContentHeaders {
                content_type: Some("text/plain".into()),
                ..ContentHeaders::default()
            },
        };
        input.tagging = CopyTagging::Replace(TagSet::from_pairs([("status", "copied")]).unwrap());
        input
    }

    #[test]
    fn directive_wire_values() {
        let replace_metadata = CopyMetadata::Replace {
            metadata: UserMetadata::empty(),
            content: ContentHeaders::default(),
        };
        assert_eq!(CopyMetadata::Copy.directive(), "COPY");
        assert_eq!(replace_metadata.directive(), "REPLACE");
        assert_eq!(CopyTagging::Copy.directive(), "Copy");
        assert_eq!(CopyTagging::Replace(TagSet::empty()).directive(), "Replace");
        assert_eq!(CopyMetadata::default(), CopyMetadata::Copy);
        assert_eq!(CopyTagging::default(), CopyTagging::Copy);
    }

    #[test]
    fn copy_object_matches_pyv2_capture() {
        let req = build_copy_object(&capture_copy_input());
        assert_eq!(req.method, Method::PUT);
        assert_eq!(req.key.as_ref().map(|k| k.as_str()), Some("dest/copy.txt"));
        assert!(req.query.is_empty());
        assert_eq!(req.payload, Payload::Empty);
        assert!(req.is_replayable());
        // pyv2 also sends the empty-body Content-MD5, which we do not.
        assert_eq!(
            sorted(&req),
            owned(&[
                ("content-length", "0"),
                (
                    "x-oss-copy-source",
                    "/examplebucket/src/%E4%B8%AD%E6%96%87%20file.txt"
                ),
                ("x-oss-meta-author", "bob"),
                ("content-type", "text/plain"),
                ("x-oss-metadata-directive", "REPLACE"),
                ("x-oss-tagging", "status=copied"),
                ("x-oss-tagging-directive", "Replace"),
            ])
        );
        let pyv2 = with_pyv2_empty_md5(&req);
        assert_eq!(
            signature(&pyv2, V4),
            "1de2a13d87f89309820e94766893eb8136a57a62baa70eb5535a51368513607a"
        );
        assert_eq!(signature(&pyv2, V1), "gNYem2PdaXg1p/Cn/bchtTTHCYo=");
    }

    #[test]
    fn in_place_metadata_edit_matches_capture() {
        // CAP pyv2-v4-CopyObjectInPlaceMeta.http
        let mut input = CopyObjectInput::new(
            CopySource::new(bucket(), key("docs/report.txt")),
            bucket(),
            key("docs/report.txt"),
        );
        input.metadata = CopyMetadata::Replace {
            metadata: UserMetadata::from_pairs([("reviewed", "yes")]).unwrap(),
            content: ContentHeaders {
                content_type: Some("text/plain".into()),
                ..ContentHeaders::default()
            },
        };
        let req = build_copy_object(&input);
        assert_eq!(
            sorted(&req),
            owned(&[
                ("content-length", "0"),
                ("x-oss-copy-source", "/examplebucket/docs/report.txt"),
                ("x-oss-meta-reviewed", "yes"),
                ("content-type", "text/plain"),
                ("x-oss-metadata-directive", "REPLACE"),
            ])
        );
        let pyv2 = with_pyv2_empty_md5(&req);
        assert_eq!(
            signature(&pyv2, V4),
            "0bc8deb00d9979274d7373e91ad6d91f1e8e109e763345f3b06d9331dfe5cf70"
        );
        assert_eq!(signature(&pyv2, V1), "fP1scTpH624Vkhb4vJhZ7GmB+JY=");
    }

    #[test]
    fn copy_directive_sends_no_metadata_or_tags() {
        let mut input = capture_copy_input();
        input.metadata = CopyMetadata::Copy;
        input.tagging = CopyTagging::Copy;
        let req = build_copy_object(&input);
        assert_eq!(
            sorted(&req),
            owned(&[
                ("content-length", "0"),
                (
                    "x-oss-copy-source",
                    "/examplebucket/src/%E4%B8%AD%E6%96%87%20file.txt"
                )
            ])
        );
    }

    #[test]
    fn replace_with_empty_tag_set_sends_empty_tagging_header() {
        let mut input =
            CopyObjectInput::new(CopySource::new(bucket(), key("a")), bucket(), key("b"));
        input.tagging = CopyTagging::Replace(TagSet::empty());
        let req = build_copy_object(&input);
        assert_eq!(req.header("x-oss-tagging-directive"), Some("Replace"));
        assert_eq!(req.header("x-oss-tagging"), Some(""));
        assert_eq!(
            req.headers
                .iter()
                .filter(|(k, _)| k == "x-oss-tagging")
                .count(),
            1
        );
    }

    #[test]
    fn every_option_and_precondition() {
        let mut input = CopyObjectInput::new(
            CopySource {
                bucket: BucketName::parse("src-bucket").unwrap(),
                key: key("a b/c+d?e.txt"),
                version_id: Some(version()),
            },
            bucket(),
            key("dst"),
        );
        input.storage_class = Some(StorageClass::ColdArchive);
        input.acl = Some(ObjectAcl::PublicRead);
        input.forbid_overwrite = true;
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_736_929_800);
        input.conditions = CopySourceConditions {
            if_match: Some("\"E1\"".into()),
            if_none_match: Some("\"E2\"".into()),
            if_modified_since: Some(t),
            if_unmodified_since: Some(t + Duration::from_secs(60)),
        };
        let req = build_copy_object(&input);
        assert_eq!(
            sorted(&req),
            owned(&[
                ("content-length", "0"),
                (
                    "x-oss-copy-source",
                    &format!("/src-bucket/a%20b/c%2Bd%3Fe.txt?versionId={CAPTURE_VERSION}")
                ),
                ("x-oss-storage-class", "ColdArchive"),
                ("x-oss-object-acl", "public-read"),
                ("x-oss-forbid-overwrite", "true"),
                ("x-oss-copy-source-if-match", "\"E1\""),
                ("x-oss-copy-source-if-none-match", "\"E2\""),
                (
                    "x-oss-copy-source-if-modified-since",
                    "Wed, 15 Jan 2025 08:30:00 GMT"
                ),
                (
                    "x-oss-copy-source-if-unmodified-since",
                    "Wed, 15 Jan 2025 08:31:00 GMT"
                ),
            ])
        );
    }

    #[test]
    fn copy_source_encoding() {
        let cases = [
            ("plain.txt", "/examplebucket/plain.txt"),
            (
                "dir/sub/file name.txt",
                "/examplebucket/dir/sub/file%20name.txt",
            ),
            ("a+b", "/examplebucket/a%2Bb"),
            ("what?versionId=x", "/examplebucket/what%3FversionId%3Dx"),
            ("测试/é", "/examplebucket/%E6%B5%8B%E8%AF%95/%C3%A9"),
            ("100%#&", "/examplebucket/100%25%23%26"),
            ("~keep-_.", "/examplebucket/~keep-_."),
        ];
        for (k, want) in cases {
            assert_eq!(
                CopySource::new(bucket(), key(k)).header_value(),
                want,
                "{k}"
            );
        }
    }

    #[test]
    fn copy_result_parsing() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CopyObjectResult>
  <ETag>"5B3C1A2E053D763E1B002CC607C5A0FE"</ETag>
  <LastModified>2025-01-15T08:30:00.000Z</LastModified>
</CopyObjectResult>"#;
        let h = headers(&[
            ("x-oss-version-id", "V2"),
            ("x-oss-copy-source-version-id", "V1"),
            ("x-oss-hash-crc64ecma", "42"),
            ("x-oss-request-id", "R"),
            ("etag", "\"HEADER\""),
        ]);
        let out = parse_copy_object(200, &h, body).unwrap();
        assert_eq!(
            out.etag.as_deref(),
            Some("\"5B3C1A2E053D763E1B002CC607C5A0FE\"")
        );
        assert_eq!(
            out.last_modified,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_736_929_800))
        );
        assert_eq!(out.version_id.as_ref().map(|v| v.as_str()), Some("V2"));
        assert_eq!(
            out.source_version_id.as_ref().map(|v| v.as_str()),
            Some("V1")
        );
        assert_eq!(out.crc64, Some(42));
        assert_eq!(out.request_id.as_deref(), Some("R"));
        // empty body: header ETag
        let out = parse_copy_object(200, &h, b"").unwrap();
        assert_eq!(out.etag.as_deref(), Some("\"HEADER\""));
        assert_eq!(out.last_modified, None);
        // unknown children are ignored, bad dates are None
        let out = parse_copy_object(
            200,
            &HeaderMap::new(),
            b"<CopyObjectResult><New>x</New><LastModified>yesterday</LastModified></CopyObjectResult>",
        )
        .unwrap();
        assert_eq!((out.etag, out.last_modified), (None, None));
        for bad in [
            &b"<Error><Code>x</Code></Error>"[..],
            b"<html>",
            &[0xff, 0xfe],
        ] {
            let err = parse_copy_object(200, &HeaderMap::new(), bad).unwrap_err();
            assert_eq!(err.kind, OssErrorKind::InvalidResponse);
        }
        let err =
            parse_copy_object(200, &headers(&[("x-oss-hash-crc64ecma", "nope")]), b"").unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
    }

    const UPLOAD: &str = "0004B9895DBBB6EC98E36B8A5A7F3E21";

    fn upload() -> MultipartUploadId {
        MultipartUploadId::new(bucket(), key("multipart/big.bin"), UPLOAD)
    }

    #[test]
    fn upload_part_copy_matches_pyv2_capture() {
        let mut input = UploadPartCopyInput::new(
            upload(),
            4,
            CopySource {
                bucket: bucket(),
                key: key("src/large.bin"),
                version_id: Some(version()),
            },
        );
        input.range = Some(ByteRange {
            start: 0,
            end: Some(102_399),
        });
        let req = build_upload_part_copy(&input);
        assert_eq!(req.method, Method::PUT);
        assert_eq!(
            req.query,
            owned(&[("partNumber", "4"), ("uploadId", UPLOAD)])
        );
        assert_eq!(req.payload, Payload::Empty);
        assert_eq!(
            sorted(&req),
            owned(&[
                (
                    "x-oss-copy-source",
                    &format!("/examplebucket/src/large.bin?versionId={CAPTURE_VERSION}")
                ),
                ("x-oss-copy-source-range", "bytes=0-102399"),
                ("content-length", "0"),
            ])
        );
        let pyv2 = with_pyv2_empty_md5(&req);
        assert_eq!(
            signature(&pyv2, V4),
            "f996802229b18f4e6f4f5fb371b3eea03be3b0eb16e9c736efceedd8ce8ca24d"
        );
        assert_eq!(signature(&pyv2, V1), "AnQ6HEJSu0ZSwOpzkSWYRnOCnvM=");
    }

    #[test]
    fn upload_part_copy_preconditions_and_result() {
        let mut input =
            UploadPartCopyInput::new(upload(), 1, CopySource::new(bucket(), key("a b")));
        input.conditions.if_match = Some("\"E\"".into());
        input.conditions.if_unmodified_since =
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_736_929_800));
        let req = build_upload_part_copy(&input);
        assert_eq!(
            req.header("x-oss-copy-source"),
            Some("/examplebucket/a%20b")
        );
        assert_eq!(req.header("x-oss-copy-source-range"), None);
        assert_eq!(req.header("x-oss-copy-source-if-match"), Some("\"E\""));
        assert_eq!(
            req.header("x-oss-copy-source-if-unmodified-since"),
            Some("Wed, 15 Jan 2025 08:30:00 GMT")
        );
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CopyPartResult><LastModified>2025-01-15T08:30:00.000Z</LastModified><ETag>"5B3C1A2E053D763E1B002CC607C5A0FE"</ETag></CopyPartResult>"#;
        let out = parse_upload_part_copy(
            200,
            &headers(&[("x-oss-copy-source-version-id", "SV"), ("etag", "\"H\"")]),
            body,
        )
        .unwrap();
        assert_eq!(out.etag, "\"5B3C1A2E053D763E1B002CC607C5A0FE\"");
        assert!(out.last_modified.is_some());
        assert_eq!(
            out.source_version_id.as_ref().map(|v| v.as_str()),
            Some("SV")
        );
        let out = parse_upload_part_copy(200, &headers(&[("etag", "\"H\"")]), b"").unwrap();
        assert_eq!(out.etag, "\"H\"");
        let err = parse_upload_part_copy(200, &HeaderMap::new(), b"<CopyPartResult/>").unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
        let err =
            parse_upload_part_copy(200, &HeaderMap::new(), b"<CopyObjectResult/>").unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
    }
}

#[cfg(test)]
mod send_tests {
    use super::super::test_support::loopback::{Server, response};
    use super::*;
    use crate::oss::OssErrorKind;

    #[tokio::test]
    async fn copy_object_sends_headers_and_reads_result() {
        let server = Server::start(|i, _| {
            if i == 0 {
                response(
                    200,
                    &[("x-oss-copy-source-version-id", "SV"), ("x-oss-version-id", "DV")],
                    "<CopyObjectResult><ETag>\"C\"</ETag><LastModified>2025-01-15T08:30:00.000Z</LastModified></CopyObjectResult>",
                )
            } else {
                response(412, &[], "<Error><Code>PreconditionFailed</Code><Message>x</Message></Error>")
            }
        })
        .await;
        let client = server.client();
        let bucket = BucketName::parse("examplebucket").unwrap();
        let mut input = CopyObjectInput::new(
            CopySource::new(bucket.clone(), ObjectKey::parse("src/a b?.txt").unwrap()),
            bucket,
            ObjectKey::parse("dst.txt").unwrap(),
        );
        input.tagging = CopyTagging::Replace(TagSet::empty());
        let out = client.copy_object(&input).await.unwrap();
        assert_eq!(out.etag.as_deref(), Some("\"C\""));
        assert_eq!(
            out.source_version_id.as_ref().map(|v| v.as_str()),
            Some("SV")
        );
        assert_eq!(out.version_id.as_ref().map(|v| v.as_str()), Some("DV"));
        let seen = server.seen();
        assert_eq!(seen[0].method, "PUT");
        assert_eq!(seen[0].target, "/examplebucket/dst.txt");
        assert_eq!(
            seen[0].headers["x-oss-copy-source"],
            "/examplebucket/src/a%20b%3F.txt"
        );
        assert_eq!(seen[0].headers["x-oss-tagging-directive"], "Replace");
        assert_eq!(
            seen[0].headers["x-oss-tagging"], "",
            "empty tag set sent as an empty value"
        );
        assert!(seen[0].body.is_empty());
        assert_eq!(seen[0].headers["content-length"], "0");
        input.conditions.if_match = Some("\"other\"".into());
        let err = client.copy_object(&input).await.unwrap_err();
        assert_eq!(err.kind, OssErrorKind::PreconditionFailed);
    }
}
