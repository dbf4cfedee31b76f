//! Multipart uploads (docs/oss-protocol.md, "Multipart uploads"): InitiateMultipartUpload,
//! UploadPart, CompleteMultipartUpload, AbortMultipartUpload,
//! ListParts, and ListMultipartUploads for a bucket.
//!
//! Initiate, Complete, ListParts and ListMultipartUploads send
//! `encoding-type=url` (as the Python SDK v2 does), so keys in the XML
//! answers arrive URL-encoded and are decoded here; an answer without
//! `<EncodingType>url</EncodingType>` is read verbatim.

use crate::oss::protocol::header;
use crate::oss::protocol::limit::{MAX_PART_NUMBER, MIN_PART_NUMBER};
use crate::oss::protocol::query;

use bytes::Bytes;
use http::HeaderMap;

use super::{ObjectAttributes, OssOperation, OssRequest, Resp};
use crate::model::{BucketName, ObjectAcl, ObjectKey, VersionId, crc64};
use crate::oss::client::{Client, MAX_XML_BODY};
use crate::oss::error::{OssError, OssErrorKind};
use crate::oss::sign::percent_decode;
use crate::oss::xml::{
    CompleteMultipartUploadResult, InitiateMultipartUploadResult, parse_document,
};

pub mod listing;
pub use listing::{
    ListMultipartUploadsInput, ListMultipartUploadsOutput, ListPartsInput, ListPartsOutput,
    MultipartUpload, Part, build_list_multipart_uploads, build_list_parts,
    parse_list_multipart_uploads, parse_list_parts,
};

/// One multipart upload: where it goes and OSS's upload ID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MultipartUploadId {
    /// The bucket.
    pub bucket: BucketName,
    /// The key the object will have.
    pub key: ObjectKey,
    /// The `UploadId` OSS assigned.
    pub upload_id: String,
}

impl MultipartUploadId {
    /// Names upload `upload_id` of `bucket`/`key`.
    pub fn new(bucket: BucketName, key: ObjectKey, upload_id: impl Into<String>) -> Self {
        MultipartUploadId {
            bucket,
            key,
            upload_id: upload_id.into(),
        }
    }

    /// A request on this upload: `?uploadId=` after `before` query pairs.
    pub(crate) fn request(&self, operation: OssOperation, before: &[(&str, &str)]) -> OssRequest {
        let mut req = OssRequest::new(operation, &self.bucket, Some(&self.key));
        for (k, v) in before {
            req.query_set(k, *v);
        }
        req.query_set(query::UPLOAD_ID, self.upload_id.as_str());
        req
    }

    /// An empty upload ID would turn `?uploadId=` into a different request.
    pub(crate) fn check(&self) -> Result<(), OssError> {
        if self.upload_id.trim().is_empty() {
            return Err(OssError::invalid_argument("the upload ID is empty"));
        }
        Ok(())
    }
}

/// Marks a body-less POST/PUT with `Content-Length: 0`, as the SDKs send it
/// (the HTTP stack omits the header for an empty body; it is not signed).
pub(crate) fn no_body(req: &mut OssRequest) {
    req.header_set("content-length", "0");
}

pub(crate) fn check_part_number(n: u32) -> Result<(), OssError> {
    if (MIN_PART_NUMBER..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(OssError::invalid_argument(format!(
            "part number {n} is outside {MIN_PART_NUMBER}..={MAX_PART_NUMBER}"
        )))
    }
}

/// Decodes `value` when the document says `EncodingType` is `url`.
pub(crate) fn decode_if(url_encoded: bool, value: Option<String>) -> Option<String> {
    value.map(|v| if url_encoded { percent_decode(&v) } else { v })
}

pub(crate) fn is_url(encoding_type: &Option<String>) -> bool {
    encoding_type
        .as_deref()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("url"))
}

pub(crate) fn xml_text<'a>(r: &Resp<'_>, body: &'a [u8], what: &str) -> Result<&'a str, OssError> {
    std::str::from_utf8(body).map_err(|_| r.invalid(format!("{what} body is not UTF-8")))
}

pub(crate) fn opt_number<T: std::str::FromStr>(
    r: &Resp<'_>,
    what: &str,
    v: Option<&str>,
) -> Result<Option<T>, OssError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<T>()
            .map(Some)
            .map_err(|_| r.invalid(format!("{what} is not a number: {s:?}"))),
    }
}

pub(crate) fn flag(v: Option<&str>) -> bool {
    v.is_some_and(|s| s.trim().eq_ignore_ascii_case("true"))
}

pub(crate) fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------- Initiate

/// Input of InitiateMultipartUpload: everything about the object except its
/// bytes (OSS applies it when the upload is completed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitiateMultipartUploadInput {
    /// The bucket.
    pub bucket: BucketName,
    /// The object key.
    pub key: ObjectKey,
    /// What the object gets when the upload completes. OSS documents the ACL on
    /// CompleteMultipartUpload: prefer [`CompleteMultipartUploadInput::acl`]. With
    /// forbid-overwrite the Initiate already fails with `AlreadyExists` if the key exists.
    pub attributes: ObjectAttributes,
}

impl InitiateMultipartUploadInput {
    /// An upload with no options.
    pub fn new(bucket: BucketName, key: ObjectKey) -> Self {
        InitiateMultipartUploadInput {
            bucket,
            key,
            attributes: ObjectAttributes::default(),
        }
    }
}

/// Result of InitiateMultipartUpload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitiateMultipartUploadOutput {
    /// The new upload (bucket and key from the request, upload ID from OSS).
    pub upload: MultipartUploadId,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `POST /{key}?uploads&encoding-type=url` with no body.
pub fn build_initiate_multipart_upload(input: &InitiateMultipartUploadInput) -> OssRequest {
    let mut req = OssRequest::new(
        OssOperation::InitiateMultipartUpload,
        &input.bucket,
        Some(&input.key),
    );
    req.query_set(query::UPLOADS, "");
    req.query_set(query::ENCODING_TYPE, "url");
    no_body(&mut req);
    input.attributes.push_to(&mut req);
    req
}

/// Parses an InitiateMultipartUpload success; the `UploadId` is required.
pub fn parse_initiate_multipart_upload(
    input: &InitiateMultipartUploadInput,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<InitiateMultipartUploadOutput, OssError> {
    let r = Resp::new(status, headers);
    let text = xml_text(&r, body, "InitiateMultipartUpload")?;
    let doc: InitiateMultipartUploadResult = parse_document(text, "InitiateMultipartUploadResult")
        .ok_or_else(|| r.invalid("unparsable InitiateMultipartUploadResult body"))?;
    let upload_id = non_empty(doc.upload_id)
        .ok_or_else(|| r.invalid("InitiateMultipartUploadResult without an UploadId"))?;
    Ok(InitiateMultipartUploadOutput {
        upload: MultipartUploadId::new(input.bucket.clone(), input.key.clone(), upload_id),
        request_id: r.request_id(),
    })
}

// ---------------------------------------------------------------- UploadPart

/// Input of UploadPart. The body is held in memory, so a failed attempt is
/// retried with the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPartInput {
    /// The upload.
    pub upload: MultipartUploadId,
    /// 1..=10000; re-uploading a number replaces that part.
    pub part_number: u32,
    /// The part's bytes (every part but the last must be ≥ 100 KiB, checked
    /// by OSS at Complete).
    pub body: Bytes,
    /// MD5 of `body`, sent as `Content-MD5`; OSS rejects a mismatch with
    /// `InvalidDigest`. See [`super::content_md5_of`] for the header form.
    pub content_md5: Option<[u8; 16]>,
}

/// Result of UploadPart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPartOutput {
    /// The part's `ETag` (quoted), needed for CompleteMultipartUpload.
    pub etag: String,
    /// `x-oss-hash-crc64ecma` of the part, when OSS sent it; when present it
    /// equals [`Self::sent_crc64`] (checked).
    pub crc64: Option<u64>,
    /// CRC-64/XZ of the bytes sent.
    pub sent_crc64: u64,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `PUT /{key}?partNumber={n}&uploadId={id}` with the part as body.
pub fn build_upload_part(input: &UploadPartInput) -> OssRequest {
    let part = input.part_number.to_string();
    let mut req = input.upload.request(
        OssOperation::UploadPart,
        &[(query::PART_NUMBER, part.as_str())],
    );
    if let Some(md5) = &input.content_md5 {
        use base64::Engine as _;
        req.header_set(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(md5),
        );
    }
    req.bytes_body(input.body.clone(), false);
    req
}

/// Parses an UploadPart success and checks OSS's CRC-64 against `sent_crc64`.
pub fn parse_upload_part(
    status: u16,
    headers: &HeaderMap,
    sent_crc64: u64,
) -> Result<UploadPartOutput, OssError> {
    let r = Resp::new(status, headers);
    let etag = r
        .etag()
        .ok_or_else(|| r.invalid("UploadPart response without an ETag"))?;
    let crc = r.crc64()?;
    if let Some(server) = crc
        && server != sent_crc64
    {
        return Err(OssError {
            http_status: Some(status),
            request_id: r.request_id(),
            ..OssError::client(
                OssErrorKind::ChecksumMismatch,
                format!(
                    "OSS reports CRC-64 {server} for the part, the client sent bytes with CRC-64 {sent_crc64}"
                ),
            )
        });
    }
    Ok(UploadPartOutput {
        etag,
        crc64: crc,
        sent_crc64,
        request_id: r.request_id(),
    })
}

// ---------------------------------------------------------------- Complete

/// One part named in CompleteMultipartUpload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CompletedPart {
    /// The part number.
    pub part_number: u32,
    /// The ETag UploadPart/UploadPartCopy returned (quotes included).
    pub etag: String,
}

/// Which parts make up the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompleteParts {
    /// Exactly these parts, sent as XML in ascending part-number order
    /// (whatever order they are given in; gaps allowed, duplicates refused).
    List(Vec<CompletedPart>),
    /// Every uploaded part, by number (`x-oss-complete-all: yes`, empty body).
    All,
}

/// Input of CompleteMultipartUpload. Storage class, metadata and tags were
/// fixed at Initiate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompleteMultipartUploadInput {
    /// The upload.
    pub upload: MultipartUploadId,
    /// The parts.
    pub parts: CompleteParts,
    /// `x-oss-object-acl` of the object; `None` = inherit.
    pub acl: Option<ObjectAcl>,
    /// `x-oss-forbid-overwrite: true`: fail with `AlreadyExists` if the key exists.
    pub forbid_overwrite: bool,
}

impl CompleteMultipartUploadInput {
    /// Completes `upload` with `parts` and no options.
    pub fn new(upload: MultipartUploadId, parts: CompleteParts) -> Self {
        CompleteMultipartUploadInput {
            upload,
            parts,
            acl: None,
            forbid_overwrite: false,
        }
    }
}

/// Result of CompleteMultipartUpload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompleteMultipartUploadOutput {
    /// The object's ETag (`"…-N"`), from the XML body, else the header.
    pub etag: Option<String>,
    /// `x-oss-version-id` (versioned buckets).
    pub version_id: Option<VersionId>,
    /// `x-oss-hash-crc64ecma` of the whole object, when OSS sent it.
    pub crc64: Option<u64>,
    /// `Location` from the XML body.
    pub location: Option<String>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// The `<CompleteMultipartUpload>` body for `parts`, sorted by part number.
pub fn complete_multipart_upload_xml(parts: &[CompletedPart]) -> String {
    let mut sorted: Vec<&CompletedPart> = parts.iter().collect();
    sorted.sort_by_key(|p| p.part_number);
    let mut xml = String::from("<CompleteMultipartUpload>");
    for p in sorted {
        xml.push_str("<Part><PartNumber>");
        xml.push_str(&p.part_number.to_string());
        xml.push_str("</PartNumber><ETag>");
        xml.push_str(&escape_text(&p.etag));
        xml.push_str("</ETag></Part>");
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// Escapes XML text content (`&`, `<`, `>`; quotes may stay literal).
fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Builds `POST /{key}?encoding-type=url&uploadId={id}`: with a part list, the
/// XML body and its `Content-MD5`; with [`CompleteParts::All`],
/// `x-oss-complete-all: yes` and no body (OSS refuses both together).
pub fn build_complete_multipart_upload(input: &CompleteMultipartUploadInput) -> OssRequest {
    let mut req = input.upload.request(
        OssOperation::CompleteMultipartUpload,
        &[(query::ENCODING_TYPE, "url")],
    );
    match &input.parts {
        CompleteParts::All => {
            req.header_set(header::COMPLETE_ALL, "yes");
            no_body(&mut req);
        }
        CompleteParts::List(parts) => {
            req.bytes_body(Bytes::from(complete_multipart_upload_xml(parts)), true)
        }
    }
    if let Some(acl) = input.acl {
        req.header_set(header::ACL, acl.as_str());
    }
    if input.forbid_overwrite {
        req.header_set(header::FORBID_OVERWRITE, "true");
    }
    req
}

fn check_parts(parts: &CompleteParts) -> Result<(), OssError> {
    let CompleteParts::List(parts) = parts else {
        return Ok(());
    };
    if parts.is_empty() {
        return Err(OssError::invalid_argument(
            "CompleteMultipartUpload needs at least one part",
        ));
    }
    let mut numbers: Vec<u32> = parts.iter().map(|p| p.part_number).collect();
    numbers.sort_unstable();
    for n in &numbers {
        check_part_number(*n)?;
    }
    if let Some(w) = numbers.windows(2).find(|w| w[0] == w[1]) {
        return Err(OssError::invalid_argument(format!(
            "part number {} is listed twice",
            w[0]
        )));
    }
    if let Some(p) = parts.iter().find(|p| p.etag.trim().is_empty()) {
        return Err(OssError::invalid_argument(format!(
            "part {} has an empty ETag",
            p.part_number
        )));
    }
    Ok(())
}

/// Parses a CompleteMultipartUpload success (headers and XML body; an empty
/// body is accepted).
pub fn parse_complete_multipart_upload(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<CompleteMultipartUploadOutput, OssError> {
    let r = Resp::new(status, headers);
    let text = xml_text(&r, body, "CompleteMultipartUpload")?;
    let doc = if text.trim().is_empty() {
        CompleteMultipartUploadResult::default()
    } else {
        parse_document(text, "CompleteMultipartUploadResult")
            .ok_or_else(|| r.invalid("unparsable CompleteMultipartUploadResult body"))?
    };
    Ok(CompleteMultipartUploadOutput {
        etag: non_empty(doc.etag).or_else(|| r.etag()),
        version_id: r.version_id()?,
        crc64: r.crc64()?,
        location: non_empty(doc.location),
        request_id: r.request_id(),
    })
}

// ---------------------------------------------------------------- Abort

/// Result of AbortMultipartUpload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbortMultipartUploadOutput {
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `DELETE /{key}?uploadId={id}`.
pub fn build_abort_multipart_upload(upload: &MultipartUploadId) -> OssRequest {
    upload.request(OssOperation::AbortMultipartUpload, &[])
}

// ---------------------------------------------------------------- sends

impl Client {
    /// InitiateMultipartUpload: starts an upload and returns its ID.
    pub async fn initiate_multipart_upload(
        &self,
        input: &InitiateMultipartUploadInput,
    ) -> Result<InitiateMultipartUploadOutput, OssError> {
        self.send_and_parse(
            &build_initiate_multipart_upload(input),
            MAX_XML_BODY,
            |status, headers, body| parse_initiate_multipart_upload(input, status, headers, body),
        )
        .await
    }

    /// UploadPart: stores one part. The in-memory body makes the request
    /// replayable, so retryable failures are retried. A CRC-64 from OSS that
    /// differs from the bytes sent is `ChecksumMismatch`.
    pub async fn upload_part(&self, input: &UploadPartInput) -> Result<UploadPartOutput, OssError> {
        input.upload.check()?;
        check_part_number(input.part_number)?;
        let sent_crc64 = crc64(&input.body);
        let resp = self.send(&build_upload_part(input)).await?;
        parse_upload_part(resp.status().as_u16(), resp.headers(), sent_crc64)
    }

    /// CompleteMultipartUpload: assembles the object. If a retried attempt
    /// gets `NotFound` (`NoSuchUpload`), an earlier attempt may have completed
    /// it (OSS keeps processing after a dropped connection): check the object.
    pub async fn complete_multipart_upload(
        &self,
        input: &CompleteMultipartUploadInput,
    ) -> Result<CompleteMultipartUploadOutput, OssError> {
        input.upload.check()?;
        check_parts(&input.parts)?;
        self.send_and_parse(
            &build_complete_multipart_upload(input),
            MAX_XML_BODY,
            parse_complete_multipart_upload,
        )
        .await
    }

    /// AbortMultipartUpload: discards the upload and its parts. An unknown
    /// (or already aborted or completed) upload is `NotFound`.
    pub async fn abort_multipart_upload(
        &self,
        upload: &MultipartUploadId,
    ) -> Result<AbortMultipartUploadOutput, OssError> {
        upload.check()?;
        let resp = self.send(&build_abort_multipart_upload(upload)).await?;
        Ok(AbortMultipartUploadOutput {
            request_id: Resp::new(resp.status().as_u16(), resp.headers()).request_id(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Payload;
    use super::super::test_support::capture_sign::{signature, with_pyv2_empty_md5};
    use super::super::test_support::*;

    use crate::model::{StorageClass, TagSet, UserMetadata};
    use http::Method;

    use super::*;
    use crate::oss::sign::SignatureVersion::{V1, V4};

    /// The upload id of the SDK captures (the listing tests use it too).
    pub(super) const UPLOAD: &str = "0004B9895DBBB6EC98E36B8A5A7F3E21";

    pub(super) fn upload() -> MultipartUploadId {
        MultipartUploadId::new(bucket(), key("multipart/big.bin"), UPLOAD)
    }

    #[test]
    fn initiate_matches_pyv2_capture() {
        let mut input = InitiateMultipartUploadInput::new(bucket(), key("multipart/big.bin"));
        input.attributes.storage_class = Some(StorageClass::Standard);
        input.attributes.metadata = UserMetadata::from_pairs([("origin", "capture")]).unwrap();
        input.attributes.content.content_type = Some("application/octet-stream".into());
        input.attributes.tags = TagSet::from_pairs([("a", "1"), ("b", "2")]).unwrap();
        let req = build_initiate_multipart_upload(&input);
        assert_eq!(req.method, Method::POST);
        assert_eq!(
            req.query,
            pairs(&[("uploads", ""), ("encoding-type", "url")])
        );
        assert_eq!(req.payload, Payload::Empty);
        assert_eq!(
            sorted(&req),
            owned(&[
                ("x-oss-storage-class", "Standard"),
                ("x-oss-meta-origin", "capture"),
                ("content-type", "application/octet-stream"),
                ("x-oss-tagging", "a=1&b=2"),
                ("content-length", "0"),
            ])
        );
        let pyv2 = with_pyv2_empty_md5(&req);
        assert_eq!(
            signature(&pyv2, V4),
            "6d7b65c3789b0c2fb4eb245feb0d77896d4e49af978abc495d99d67d7b62a11c"
        );
        assert_eq!(signature(&pyv2, V1), "f5HMxQpH8DKGSSpbUPOI7wkku1E=");
    }

    #[test]
    fn initiate_with_acl_and_forbid_overwrite() {
        let mut input = InitiateMultipartUploadInput::new(bucket(), key("k"));
        input.attributes.acl = Some(ObjectAcl::Private);
        input.attributes.forbid_overwrite = true;
        input.attributes.content.cache_control = Some("no-cache".into());
        let req = build_initiate_multipart_upload(&input);
        assert_eq!(
            sorted(&req),
            owned(&[
                ("cache-control", "no-cache"),
                ("content-length", "0"),
                ("x-oss-forbid-overwrite", "true"),
                ("x-oss-object-acl", "private"),
            ])
        );
    }

    #[test]
    fn initiate_result() {
        let input = InitiateMultipartUploadInput::new(bucket(), key("multipart/big.bin"));
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult>
  <Bucket>examplebucket</Bucket>
  <Key>multipart%2Fbig.bin</Key>
  <UploadId>0004B9895DBBB6EC98E36B8A5A7F3E21</UploadId>
  <EncodingType>url</EncodingType>
</InitiateMultipartUploadResult>"#;
        let out = parse_initiate_multipart_upload(
            &input,
            200,
            &headers(&[("x-oss-request-id", "R")]),
            body,
        )
        .unwrap();
        assert_eq!(out.upload, upload());
        assert_eq!(out.request_id.as_deref(), Some("R"));
        for bad in [
            &b"<InitiateMultipartUploadResult><UploadId> </UploadId></InitiateMultipartUploadResult>"[..],
            b"<InitiateMultipartUploadResult/>",
            b"<Other><UploadId>x</UploadId></Other>",
            b"",
            &[0xff],
        ] {
            let err = parse_initiate_multipart_upload(&input, 200, &HeaderMap::new(), bad)
                .unwrap_err();
            assert_eq!(err.kind, OssErrorKind::InvalidResponse, "{bad:?}");
        }
    }

    #[test]
    fn upload_part_matches_both_captures() {
        let input = UploadPartInput {
            upload: upload(),
            part_number: 3,
            body: Bytes::from_static(b"0123456789abcdef"),
            content_md5: None,
        };
        let req = build_upload_part(&input);
        assert_eq!(req.method, Method::PUT);
        assert_eq!(
            req.query,
            pairs(&[("partNumber", "3"), ("uploadId", UPLOAD)])
        );
        assert!(req.headers.is_empty(), "{:?}", req.headers);
        assert_eq!(
            req.payload,
            Payload::Bytes(Bytes::from_static(b"0123456789abcdef"))
        );
        assert!(req.is_replayable());
        // pyv2 and oss2 send the same signed request
        assert_eq!(
            signature(&req, V4),
            "b366658c535f7b6795c393f3936208a57d00a10d5de1d09deb8c83a18afcee26"
        );
        assert_eq!(signature(&req, V1), "2bdHjVT/rKAHCJiw8Yyd5Ns1g9c=");
        let with_md5 = UploadPartInput {
            content_md5: Some([0u8; 16]),
            ..input
        };
        assert_eq!(
            build_upload_part(&with_md5).header("content-md5"),
            Some("AAAAAAAAAAAAAAAAAAAAAA==")
        );
    }

    #[test]
    fn upload_part_result_checks_crc() {
        let sent = crc64(b"0123456789abcdef");
        let h = headers(&[
            ("etag", "\"A\""),
            ("x-oss-hash-crc64ecma", &sent.to_string()),
            ("x-oss-request-id", "R"),
        ]);
        let out = parse_upload_part(200, &h, sent).unwrap();
        assert_eq!(out.etag, "\"A\"");
        assert_eq!(out.crc64, Some(sent));
        assert_eq!(out.sent_crc64, sent);
        let err = parse_upload_part(200, &h, sent ^ 1).unwrap_err();
        assert_eq!(err.kind, OssErrorKind::ChecksumMismatch);
        assert_eq!(err.request_id.as_deref(), Some("R"));
        // no CRC header: accepted, nothing to compare
        let out = parse_upload_part(200, &headers(&[("etag", "\"A\"")]), sent).unwrap();
        assert_eq!(out.crc64, None);
        // no ETag: unusable for Complete
        let err = parse_upload_part(200, &HeaderMap::new(), sent).unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
        let err = parse_upload_part(
            200,
            &headers(&[("etag", "\"A\""), ("x-oss-hash-crc64ecma", "x")]),
            sent,
        )
        .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
    }

    const CAPTURE_COMPLETE_XML: &str = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"3349DC700140D7F86A0784842780****\"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>\"8C315065167132444177411FDA14****\"</ETag></Part></CompleteMultipartUpload>";

    fn capture_parts_reversed() -> Vec<CompletedPart> {
        vec![
            CompletedPart {
                part_number: 2,
                etag: "\"8C315065167132444177411FDA14****\"".into(),
            },
            CompletedPart {
                part_number: 1,
                etag: "\"3349DC700140D7F86A0784842780****\"".into(),
            },
        ]
    }

    #[test]
    fn complete_with_list_matches_pyv2_capture_and_sorts() {
        let input = CompleteMultipartUploadInput::new(
            upload(),
            CompleteParts::List(capture_parts_reversed()),
        );
        let req = build_complete_multipart_upload(&input);
        assert_eq!(req.method, Method::POST);
        assert_eq!(
            req.query,
            pairs(&[("encoding-type", "url"), ("uploadId", UPLOAD)])
        );
        assert_eq!(
            req.payload,
            Payload::Bytes(Bytes::from_static(CAPTURE_COMPLETE_XML.as_bytes()))
        );
        assert_eq!(
            sorted(&req),
            owned(&[("content-md5", "8pasx+21R+t+Q9PBuggtQw==")])
        );
        assert_eq!(req.header("x-oss-complete-all"), None);
        assert_eq!(
            signature(&req, V4),
            "248398aa40cdc48a7885b7b3fa92dbcf3a85a5b0985b1284470085fc38019f46"
        );
        assert_eq!(signature(&req, V1), "ltNl3SykjCThjbES/d3W5rhxViI=");
    }

    #[test]
    fn part_list_ordering_and_escaping() {
        let parts: Vec<CompletedPart> = [7u32, 1, 10_000, 3]
            .iter()
            .map(|n| CompletedPart {
                part_number: *n,
                etag: format!("\"E{n}&<>\""),
            })
            .collect();
        let xml = complete_multipart_upload_xml(&parts);
        let numbers: Vec<u32> = xml
            .split("<PartNumber>")
            .skip(1)
            .map(|s| s.split('<').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(numbers, vec![1, 3, 7, 10_000]);
        assert!(xml.contains("<ETag>\"E7&amp;&lt;&gt;\"</ETag>"), "{xml}");
    }

    #[test]
    fn complete_all_has_header_and_no_body() {
        let mut input = CompleteMultipartUploadInput::new(upload(), CompleteParts::All);
        let req = build_complete_multipart_upload(&input);
        assert_eq!(req.payload, Payload::Empty);
        assert_eq!(
            sorted(&req),
            owned(&[("x-oss-complete-all", "yes"), ("content-length", "0")])
        );
        let pyv2 = with_pyv2_empty_md5(&req);
        assert_eq!(
            signature(&pyv2, V4),
            "33b54295d1218071929808fcb661393a3a9c541436d69e7474b0ecb67554b755"
        );
        assert_eq!(signature(&pyv2, V1), "XNVf9dysoT7eREQpYuCwCli59zE=");
        // a list never carries the complete-all header; options on both
        input.acl = Some(ObjectAcl::PublicReadWrite);
        input.forbid_overwrite = true;
        let req = build_complete_multipart_upload(&input);
        assert_eq!(
            sorted(&req),
            owned(&[
                ("content-length", "0"),
                ("x-oss-complete-all", "yes"),
                ("x-oss-forbid-overwrite", "true"),
                ("x-oss-object-acl", "public-read-write"),
            ])
        );
        input.parts = CompleteParts::List(capture_parts_reversed());
        let req = build_complete_multipart_upload(&input);
        assert_eq!(req.header("x-oss-complete-all"), None);
        assert!(matches!(req.payload, Payload::Bytes(ref b) if !b.is_empty()));
    }

    #[test]
    fn complete_part_checks() {
        let part = |n: u32, e: &str| CompletedPart {
            part_number: n,
            etag: e.into(),
        };
        assert!(check_parts(&CompleteParts::All).is_ok());
        assert!(check_parts(&CompleteParts::List(capture_parts_reversed())).is_ok());
        for bad in [
            vec![],
            vec![part(0, "\"E\"")],
            vec![part(10_001, "\"E\"")],
            vec![part(2, "\"E\""), part(1, "\"F\""), part(2, "\"G\"")],
            vec![part(1, " ")],
        ] {
            let err = check_parts(&CompleteParts::List(bad.clone())).unwrap_err();
            assert_eq!(err.kind, OssErrorKind::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn complete_result() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUploadResult>
  <EncodingType>url</EncodingType>
  <Location>http://examplebucket.oss-cn-hangzhou.aliyuncs.com/multipart/big.bin</Location>
  <Bucket>examplebucket</Bucket>
  <Key>multipart%2Fbig.bin</Key>
  <ETag>"097DE458AD02B5F89F9D0530231876****-2"</ETag>
</CompleteMultipartUploadResult>"#;
        let out = parse_complete_multipart_upload(
            200,
            &headers(&[
                ("x-oss-version-id", "V"),
                ("x-oss-hash-crc64ecma", "11051210869376104954"),
                ("x-oss-request-id", "R"),
            ]),
            body,
        )
        .unwrap();
        assert_eq!(
            out.etag.as_deref(),
            Some("\"097DE458AD02B5F89F9D0530231876****-2\"")
        );
        assert_eq!(out.version_id.as_ref().map(|v| v.as_str()), Some("V"));
        assert_eq!(out.crc64, Some(11_051_210_869_376_104_954));
        assert_eq!(
            out.location.as_deref(),
            Some("http://examplebucket.oss-cn-hangzhou.aliyuncs.com/multipart/big.bin")
        );
        let out =
            parse_complete_multipart_upload(200, &headers(&[("etag", "\"H\"")]), b"").unwrap();
        assert_eq!(out.etag.as_deref(), Some("\"H\""));
        let err = parse_complete_multipart_upload(200, &HeaderMap::new(), b"<html>").unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
    }

    #[test]
    fn abort_matches_pyv2_capture() {
        let req = build_abort_multipart_upload(&upload());
        assert_eq!(req.method, Method::DELETE);
        assert_eq!(req.query, pairs(&[("uploadId", UPLOAD)]));
        assert!(req.headers.is_empty());
        assert_eq!(req.payload, Payload::Empty);
        let pyv2 = with_pyv2_empty_md5(&req);
        assert_eq!(
            signature(&pyv2, V4),
            "f613b795fd59bc0ced15cbe852da1e8162ceacd82e7c2ffc9dad6ac7389b1587"
        );
        assert_eq!(signature(&pyv2, V1), "m2zBMRPCdrHTFnQiba7AP2IkHOs=");
    }
}

#[cfg(test)]
mod send_tests {
    use super::super::test_support::loopback::{Server, response};
    use super::*;

    fn upload() -> MultipartUploadId {
        MultipartUploadId::new(
            BucketName::parse("examplebucket").unwrap(),
            ObjectKey::parse("big file+1.bin").unwrap(),
            "UP1",
        )
    }

    #[tokio::test]
    async fn upload_part_is_retried_and_crc_checked() {
        let server = Server::start(|i, s| {
            if i == 0 {
                return response(503, &[], "<Error><Code>ServiceUnavailable</Code></Error>");
            }
            let crc = if i == 1 { crc64(&s.body) } else { 7 };
            response(
                200,
                &[
                    ("etag", "\"P\""),
                    ("x-oss-hash-crc64ecma", &crc.to_string()),
                ],
                "",
            )
        })
        .await;
        let client = server.client();
        let input = UploadPartInput {
            upload: upload(),
            part_number: 2,
            body: Bytes::from_static(b"part bytes"),
            content_md5: None,
        };
        let out = client.upload_part(&input).await.unwrap();
        assert_eq!(out.etag, "\"P\"");
        assert_eq!(out.crc64, Some(crc64(b"part bytes")));
        let seen = server.seen();
        assert_eq!(seen.len(), 2, "the 503 was retried with the same bytes");
        for s in &seen {
            assert_eq!(s.method, "PUT");
            assert_eq!(
                s.target,
                "/examplebucket/big%20file%2B1.bin?partNumber=2&uploadId=UP1"
            );
            assert_eq!(&s.body[..], b"part bytes");
            assert_eq!(s.headers["content-length"], "10");
        }
        let err = client.upload_part(&input).await.unwrap_err();
        assert_eq!(err.kind, OssErrorKind::ChecksumMismatch);
        // invalid input never reaches the server
        let before = server.seen().len();
        for bad in [
            UploadPartInput {
                part_number: 0,
                ..input.clone()
            },
            UploadPartInput {
                part_number: 10_001,
                ..input.clone()
            },
            UploadPartInput {
                upload: MultipartUploadId {
                    upload_id: String::new(),
                    ..upload()
                },
                ..input.clone()
            },
        ] {
            let err = client.upload_part(&bad).await.unwrap_err();
            assert_eq!(err.kind, OssErrorKind::InvalidArgument);
        }
        assert_eq!(server.seen().len(), before);
    }

    #[tokio::test]
    async fn initiate_complete_abort_round_trip() {
        let server = Server::start(|_, s| match (s.method.as_str(), s.target.as_str()) {
            ("POST", t) if t.contains("uploads") => response(
                200,
                &[],
                "<InitiateMultipartUploadResult><Bucket>examplebucket</Bucket><Key>big%20file%2B1.bin</Key><UploadId>UP1</UploadId><EncodingType>url</EncodingType></InitiateMultipartUploadResult>",
            ),
            ("POST", _) => response(
                200,
                &[("x-oss-hash-crc64ecma", "5"), ("x-oss-version-id", "V")],
                "<CompleteMultipartUploadResult><ETag>\"X-1\"</ETag></CompleteMultipartUploadResult>",
            ),
            ("DELETE", _) => response(204, &[], ""),
            _ => response(400, &[], ""),
        })
        .await;
        let client = server.client();
        let init = client
            .initiate_multipart_upload(&InitiateMultipartUploadInput::new(
                upload().bucket,
                upload().key,
            ))
            .await
            .unwrap();
        assert_eq!(init.upload, upload());
        let out = client
            .complete_multipart_upload(&CompleteMultipartUploadInput::new(
                init.upload.clone(),
                CompleteParts::All,
            ))
            .await
            .unwrap();
        assert_eq!(out.etag.as_deref(), Some("\"X-1\""));
        assert_eq!(out.crc64, Some(5));
        client.abort_multipart_upload(&init.upload).await.unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), 3);
        assert_eq!(
            seen[0].target,
            "/examplebucket/big%20file%2B1.bin?uploads=&encoding-type=url"
        );
        assert!(seen[1].body.is_empty());
        assert_eq!(seen[0].headers["content-length"], "0");
        assert_eq!(seen[1].headers["content-length"], "0");
        assert_eq!(seen[1].headers["x-oss-complete-all"], "yes");
        assert_eq!(seen[2].method, "DELETE");
        assert_eq!(
            seen[2].target,
            "/examplebucket/big%20file%2B1.bin?uploadId=UP1"
        );
    }
}
