//! ListParts (one upload's stored parts) and ListMultipartUploads (a bucket's unfinished
//! uploads): one page at a time, and every page with [`Client::list_all_parts`] and
//! [`Client::list_all_multipart_uploads`]. Like the other multipart answers, keys arrive
//! URL-encoded (`encoding-type=url`) and are decoded here.

use std::time::SystemTime;

use http::HeaderMap;

use super::{MultipartUploadId, decode_if, flag, is_url, non_empty, opt_number, xml_text};
use crate::model::{BucketName, StorageClass};
use crate::oss::client::Client;
use crate::oss::error::{OssError, OssErrorKind};
use crate::oss::ops::{OssOperation, OssRequest, Resp, parse_iso_time};
use crate::oss::protocol::query;
use crate::oss::xml::{ListMultipartUploadsResult, ListPartsResult, parse_document};

/// Largest ListParts / ListMultipartUploads body read (1000 entries are ~300 KB).
const MAX_LIST_BODY: usize = 8 << 20;
/// Pages [`Client::list_all_parts`] / [`Client::list_all_multipart_uploads`] read at most.
const MAX_PAGES: usize = 10_000;

// ---------------------------------------------------------------- ListParts

/// Input of ListParts (one page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPartsInput {
    /// The upload.
    pub upload: MultipartUploadId,
    /// `max-parts`: at most this many parts (OSS default 1000).
    pub max_parts: Option<u32>,
    /// `part-number-marker`: only parts with a larger number.
    pub part_number_marker: Option<u32>,
}

impl ListPartsInput {
    /// The first page with OSS's default size.
    pub fn new(upload: MultipartUploadId) -> Self {
        ListPartsInput {
            upload,
            max_parts: None,
            part_number_marker: None,
        }
    }
}

/// One uploaded part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The part number.
    pub part_number: u32,
    /// The part's ETag (quoted).
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// `HashCrc64ecma` of the part, when listed.
    pub crc64: Option<u64>,
    /// `LastModified`.
    pub last_modified: Option<SystemTime>,
}

/// Result of ListParts (one page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPartsOutput {
    /// The parts on this page, in the order OSS listed them (ascending).
    pub parts: Vec<Part>,
    /// More parts follow.
    pub is_truncated: bool,
    /// The marker for the next page.
    pub next_part_number_marker: Option<u32>,
    /// `StorageClass` of the upload, when listed and known.
    pub storage_class: Option<StorageClass>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `GET /{key}?encoding-type=url&uploadId={id}[&max-parts=][&part-number-marker=]`.
pub fn build_list_parts(input: &ListPartsInput) -> OssRequest {
    let mut req = input
        .upload
        .request(OssOperation::ListParts, &[(query::ENCODING_TYPE, "url")]);
    if let Some(n) = input.max_parts {
        req.query_set("max-parts", n.to_string());
    }
    if let Some(m) = input.part_number_marker {
        req.query_set("part-number-marker", m.to_string());
    }
    req
}

/// Parses a ListParts success. Every part needs a number, an ETag and a size.
pub fn parse_list_parts(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ListPartsOutput, OssError> {
    let r = Resp::new(status, headers);
    let text = xml_text(&r, body, "ListParts")?;
    let doc: ListPartsResult = parse_document(text, "ListPartsResult")
        .ok_or_else(|| r.invalid("unparsable ListPartsResult body"))?;
    let mut parts = Vec::with_capacity(doc.parts.len());
    for p in doc.parts {
        let part_number = opt_number::<u32>(&r, "PartNumber", p.part_number.as_deref())?
            .ok_or_else(|| r.invalid("ListParts part without a PartNumber"))?;
        let etag = non_empty(p.etag)
            .ok_or_else(|| r.invalid(format!("ListParts part {part_number} without an ETag")))?;
        let size = opt_number::<u64>(&r, "Size", p.size.as_deref())?
            .ok_or_else(|| r.invalid(format!("ListParts part {part_number} without a Size")))?;
        parts.push(Part {
            part_number,
            etag,
            size,
            crc64: opt_number(&r, "HashCrc64ecma", p.hash_crc64ecma.as_deref())?,
            last_modified: parse_iso_time(p.last_modified.as_deref()),
        });
    }
    Ok(ListPartsOutput {
        parts,
        is_truncated: flag(doc.is_truncated.as_deref()),
        next_part_number_marker: opt_number(
            &r,
            "NextPartNumberMarker",
            doc.next_part_number_marker.as_deref(),
        )?,
        storage_class: doc
            .storage_class
            .as_deref()
            .and_then(|s| StorageClass::parse(s.trim())),
        request_id: r.request_id(),
    })
}

// ---------------------------------------------------------------- ListMultipartUploads

/// Input of ListMultipartUploads (one page): the unfinished uploads of a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListMultipartUploadsInput {
    /// The bucket.
    pub bucket: BucketName,
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// `key-marker`: continue after this key.
    pub key_marker: Option<String>,
    /// `upload-id-marker`: with `key_marker`, continue after this upload.
    pub upload_id_marker: Option<String>,
    /// `max-uploads` (OSS default 1000).
    pub max_uploads: Option<u32>,
}

impl ListMultipartUploadsInput {
    /// The first page of `bucket`'s uploads under `prefix`.
    pub fn new(bucket: BucketName, prefix: Option<String>) -> Self {
        ListMultipartUploadsInput {
            bucket,
            prefix,
            key_marker: None,
            upload_id_marker: None,
            max_uploads: None,
        }
    }
}

/// One unfinished multipart upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartUpload {
    /// The key (decoded; not re-validated).
    pub key: String,
    /// The upload ID.
    pub upload_id: String,
    /// `Initiated`.
    pub initiated: Option<SystemTime>,
    /// `StorageClass` (what Initiate set), when OSS names a known one.
    pub storage_class: Option<StorageClass>,
}

/// Result of ListMultipartUploads (one page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListMultipartUploadsOutput {
    /// The uploads on this page.
    pub uploads: Vec<MultipartUpload>,
    /// More uploads follow.
    pub is_truncated: bool,
    /// `NextKeyMarker` (decoded).
    pub next_key_marker: Option<String>,
    /// `NextUploadIdMarker`.
    pub next_upload_id_marker: Option<String>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `GET /?uploads&encoding-type=url[&prefix=][&key-marker=][&upload-id-marker=][&max-uploads=]`.
pub fn build_list_multipart_uploads(input: &ListMultipartUploadsInput) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::ListMultipartUploads, &input.bucket, None);
    req.query_set(query::UPLOADS, "");
    req.query_set(query::ENCODING_TYPE, "url");
    if let Some(p) = &input.prefix {
        req.query_set("prefix", p.as_str());
    }
    if let Some(m) = &input.key_marker {
        req.query_set("key-marker", m.as_str());
    }
    if let Some(m) = &input.upload_id_marker {
        req.query_set("upload-id-marker", m.as_str());
    }
    if let Some(n) = input.max_uploads {
        req.query_set("max-uploads", n.to_string());
    }
    req
}

/// Parses a ListMultipartUploads success.
pub fn parse_list_multipart_uploads(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ListMultipartUploadsOutput, OssError> {
    let r = Resp::new(status, headers);
    let text = xml_text(&r, body, "ListMultipartUploads")?;
    let doc: ListMultipartUploadsResult = parse_document(text, "ListMultipartUploadsResult")
        .ok_or_else(|| r.invalid("unparsable ListMultipartUploadsResult body"))?;
    let url = is_url(&doc.encoding_type);
    let mut uploads = Vec::with_capacity(doc.uploads.len());
    for u in doc.uploads {
        let key = decode_if(url, u.key)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| r.invalid("ListMultipartUploads upload without a Key"))?;
        let upload_id = non_empty(u.upload_id)
            .ok_or_else(|| r.invalid("ListMultipartUploads upload without an UploadId"))?;
        uploads.push(MultipartUpload {
            key,
            upload_id,
            initiated: parse_iso_time(u.initiated.as_deref()),
            storage_class: u
                .storage_class
                .as_deref()
                .and_then(|c| StorageClass::parse(c.trim())),
        });
    }
    Ok(ListMultipartUploadsOutput {
        uploads,
        is_truncated: flag(doc.is_truncated.as_deref()),
        next_key_marker: decode_if(url, doc.next_key_marker).filter(|s| !s.is_empty()),
        next_upload_id_marker: non_empty(doc.next_upload_id_marker),
        request_id: r.request_id(),
    })
}

impl Client {
    /// ListParts: one page of the upload's parts.
    pub async fn list_parts(&self, input: &ListPartsInput) -> Result<ListPartsOutput, OssError> {
        input.upload.check()?;
        self.send_and_parse(&build_list_parts(input), MAX_LIST_BODY, parse_list_parts)
            .await
    }

    /// Every part of the upload, across pages, sorted by part number. A
    /// truncated page whose marker does not advance is `InvalidResponse`.
    pub async fn list_all_parts(&self, upload: &MultipartUploadId) -> Result<Vec<Part>, OssError> {
        let mut input = ListPartsInput::new(upload.clone());
        let mut parts = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.list_parts(&input).await?;
            parts.extend(page.parts);
            if !page.is_truncated {
                parts.sort_by_key(|p| p.part_number);
                return Ok(parts);
            }
            let current = input.part_number_marker.unwrap_or(0);
            match page.next_part_number_marker {
                Some(next) if next > current => input.part_number_marker = Some(next),
                other => {
                    return Err(OssError::client(
                        OssErrorKind::InvalidResponse,
                        format!(
                            "ListParts is truncated but its next marker {other:?} does not advance past {current}"
                        ),
                    ));
                }
            }
        }
        Err(OssError::client(
            OssErrorKind::InvalidResponse,
            format!("ListParts did not finish within {MAX_PAGES} pages"),
        ))
    }

    /// ListMultipartUploads: one page of a bucket's unfinished uploads.
    pub async fn list_multipart_uploads(
        &self,
        input: &ListMultipartUploadsInput,
    ) -> Result<ListMultipartUploadsOutput, OssError> {
        self.send_and_parse(
            &build_list_multipart_uploads(input),
            MAX_LIST_BODY,
            parse_list_multipart_uploads,
        )
        .await
    }

    /// Every unfinished upload of `bucket` whose key starts with `prefix`,
    /// across pages.
    pub async fn list_all_multipart_uploads(
        &self,
        bucket: &BucketName,
        prefix: Option<&str>,
    ) -> Result<Vec<MultipartUpload>, OssError> {
        let mut input = ListMultipartUploadsInput::new(bucket.clone(), prefix.map(str::to_string));
        let mut uploads = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.list_multipart_uploads(&input).await?;
            uploads.extend(page.uploads);
            if !page.is_truncated {
                return Ok(uploads);
            }
            let next = (page.next_key_marker, page.next_upload_id_marker);
            if next.0.is_none() || (next.0 == input.key_marker && next.1 == input.upload_id_marker)
            {
                return Err(OssError::client(
                    OssErrorKind::InvalidResponse,
                    "ListMultipartUploads is truncated but its next markers do not advance",
                ));
            }
            input.key_marker = next.0;
            input.upload_id_marker = next.1;
        }
        Err(OssError::client(
            OssErrorKind::InvalidResponse,
            format!("ListMultipartUploads did not finish within {MAX_PAGES} pages"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::oss::ops::test_support::capture_sign::{signature, with_pyv2_empty_md5};
    use crate::oss::ops::test_support::*;
    use std::time::SystemTime;

    use http::Method;

    use super::*;
    use crate::oss::sign::SignatureVersion::{V1, V4};

    use super::super::tests::{UPLOAD, upload};

    #[test]
    fn list_parts_matches_pyv2_capture() {
        let mut input = ListPartsInput::new(upload());
        input.max_parts = Some(100);
        let req = build_list_parts(&input);
        assert_eq!(req.method, Method::GET);
        assert_eq!(
            req.query,
            pairs(&[
                ("encoding-type", "url"),
                ("uploadId", UPLOAD),
                ("max-parts", "100")
            ])
        );
        assert!(req.headers.is_empty());
        let pyv2 = with_pyv2_empty_md5(&req);
        assert_eq!(
            signature(&pyv2, V4),
            "9ab3d92dfb8a7ed77c7d6817a3036e2153c4ae4b685b56ddc3c04941a81d2271"
        );
        assert_eq!(signature(&pyv2, V1), "9hy+BEWMKp/90tHf4ecDt/yy/1I=");
        input.part_number_marker = Some(5);
        assert_eq!(
            build_list_parts(&input).query_param("part-number-marker"),
            Some("5")
        );
    }

    #[test]
    fn list_parts_result() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult>
  <EncodingType>url</EncodingType>
  <Bucket>examplebucket</Bucket>
  <Key>multipart%2Fbig.bin</Key>
  <UploadId>0004B9895DBBB6EC98E36B8A5A7F3E21</UploadId>
  <PartNumberMarker>0</PartNumberMarker>
  <NextPartNumberMarker>5</NextPartNumberMarker>
  <MaxParts>2</MaxParts>
  <IsTruncated>true</IsTruncated>
  <StorageClass>IA</StorageClass>
  <Part>
    <PartNumber>1</PartNumber>
    <LastModified>2025-01-15T08:30:00.000Z</LastModified>
    <ETag>"3349DC700140D7F86A0784842780****"</ETag>
    <HashCrc64ecma>11051210869376104954</HashCrc64ecma>
    <Size>6291456</Size>
  </Part>
  <Part>
    <PartNumber>5</PartNumber>
    <ETag>"8EFDA8BE206636A695359836FE0A****"</ETag>
    <Size>1024</Size>
  </Part>
</ListPartsResult>"#;
        let out = parse_list_parts(200, &headers(&[("x-oss-request-id", "R")]), body).unwrap();
        assert!(out.is_truncated);
        assert_eq!(out.next_part_number_marker, Some(5));
        assert_eq!(out.storage_class, Some(StorageClass::Ia));
        assert_eq!(out.parts.len(), 2);
        assert_eq!(
            out.parts[0],
            Part {
                part_number: 1,
                etag: "\"3349DC700140D7F86A0784842780****\"".into(),
                size: 6_291_456,
                crc64: Some(11_051_210_869_376_104_954),
                last_modified: Some(
                    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_736_929_800)
                ),
            }
        );
        assert_eq!(
            (
                out.parts[1].part_number,
                out.parts[1].size,
                out.parts[1].crc64
            ),
            (5, 1024, None)
        );
        let empty = parse_list_parts(
            200,
            &HeaderMap::new(),
            b"<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>",
        )
        .unwrap();
        assert!(empty.parts.is_empty() && !empty.is_truncated);
        for bad in [
            &b"<ListPartsResult><Part><ETag>\"E\"</ETag><Size>1</Size></Part></ListPartsResult>"[..],
            b"<ListPartsResult><Part><PartNumber>1</PartNumber><Size>1</Size></Part></ListPartsResult>",
            b"<ListPartsResult><Part><PartNumber>1</PartNumber><ETag>E</ETag></Part></ListPartsResult>",
            b"<ListPartsResult><Part><PartNumber>x</PartNumber><ETag>E</ETag><Size>1</Size></Part></ListPartsResult>",
            b"<ListPartsResult><NextPartNumberMarker>-1</NextPartNumberMarker></ListPartsResult>",
            b"<Error/>",
        ] {
            let err = parse_list_parts(200, &HeaderMap::new(), bad).unwrap_err();
            assert_eq!(err.kind, OssErrorKind::InvalidResponse, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn list_multipart_uploads_request_and_result() {
        let mut input = ListMultipartUploadsInput::new(bucket(), Some("tmp/a b+c".to_string()));
        input.max_uploads = Some(10);
        input.key_marker = Some("k".into());
        input.upload_id_marker = Some("u".into());
        let req = build_list_multipart_uploads(&input);
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.key, None);
        assert_eq!(
            req.query,
            pairs(&[
                ("uploads", ""),
                ("encoding-type", "url"),
                ("prefix", "tmp/a b+c"),
                ("key-marker", "k"),
                ("upload-id-marker", "u"),
                ("max-uploads", "10"),
            ])
        );
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult>
  <EncodingType>url</EncodingType>
  <Bucket>examplebucket</Bucket>
  <KeyMarker></KeyMarker>
  <UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>tmp%2Fa%20b%2Bc%2F2</NextKeyMarker>
  <NextUploadIdMarker>U2</NextUploadIdMarker>
  <Prefix>tmp%2Fa%20b%2Bc</Prefix>
  <MaxUploads>2</MaxUploads>
  <IsTruncated>true</IsTruncated>
  <Upload>
    <Key>tmp%2Fa%20b%2Bc%2F1</Key>
    <UploadId>U1</UploadId>
    <StorageClass>Standard</StorageClass>
    <Initiated>2025-01-15T08:30:00.000Z</Initiated>
  </Upload>
  <Upload>
    <Key>tmp%2Fa%20b%2Bc%2F2</Key>
    <UploadId>U2</UploadId>
  </Upload>
</ListMultipartUploadsResult>"#;
        let out = parse_list_multipart_uploads(200, &HeaderMap::new(), body).unwrap();
        assert!(out.is_truncated);
        assert_eq!(out.next_key_marker.as_deref(), Some("tmp/a b+c/2"));
        assert_eq!(out.next_upload_id_marker.as_deref(), Some("U2"));
        let keys: Vec<(&str, &str)> = out
            .uploads
            .iter()
            .map(|u| (u.key.as_str(), u.upload_id.as_str()))
            .collect();
        assert_eq!(keys, vec![("tmp/a b+c/1", "U1"), ("tmp/a b+c/2", "U2")]);
        assert!(out.uploads[0].initiated.is_some());
        assert_eq!(out.uploads[0].storage_class, Some(StorageClass::Standard));
        assert_eq!(out.uploads[1].storage_class, None);
        // without EncodingType the keys are verbatim
        let out = parse_list_multipart_uploads(
            200,
            &HeaderMap::new(),
            b"<ListMultipartUploadsResult><Upload><Key>a%20b</Key><UploadId>U</UploadId></Upload></ListMultipartUploadsResult>",
        )
        .unwrap();
        assert_eq!(out.uploads[0].key, "a%20b");
        assert!(!out.is_truncated);
        let err = parse_list_multipart_uploads(
            200,
            &HeaderMap::new(),
            b"<ListMultipartUploadsResult><Upload><UploadId>U</UploadId></Upload></ListMultipartUploadsResult>",
        )
        .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
    }
}

#[cfg(test)]
mod send_tests {
    use crate::model::ObjectKey;
    use crate::oss::ops::test_support::loopback::{Server, response};

    use super::*;

    fn upload() -> MultipartUploadId {
        MultipartUploadId::new(
            BucketName::parse("examplebucket").unwrap(),
            ObjectKey::parse("big file+1.bin").unwrap(),
            "UP1",
        )
    }

    #[tokio::test]
    async fn list_all_parts_follows_markers() {
        let server = Server::start(|_, s| {
            let body = if s.target.contains("part-number-marker=2") {
                "<ListPartsResult><IsTruncated>false</IsTruncated><Part><PartNumber>3</PartNumber><ETag>\"C\"</ETag><Size>1</Size></Part></ListPartsResult>"
            } else {
                "<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker><Part><PartNumber>1</PartNumber><ETag>\"A\"</ETag><Size>1</Size></Part><Part><PartNumber>2</PartNumber><ETag>\"B\"</ETag><Size>1</Size></Part></ListPartsResult>"
            };
            response(200, &[], body)
        })
        .await;
        let parts = server.client().list_all_parts(&upload()).await.unwrap();
        let numbers: Vec<u32> = parts.iter().map(|p| p.part_number).collect();
        assert_eq!(numbers, vec![1, 2, 3]);
        assert_eq!(server.seen().len(), 2);

        // a truncated page whose marker does not advance is an error, not a loop
        let stuck = Server::start(|_, _| {
            response(
                200,
                &[],
                "<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>0</NextPartNumberMarker></ListPartsResult>",
            )
        })
        .await;
        let err = stuck.client().list_all_parts(&upload()).await.unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
        assert_eq!(stuck.seen().len(), 1);
    }

    #[tokio::test]
    async fn list_all_multipart_uploads_follows_markers() {
        let server = Server::start(|_, s| {
            let body = if s.target.contains("key-marker=") {
                "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated><Upload><Key>t%2Fb</Key><UploadId>U2</UploadId></Upload><EncodingType>url</EncodingType></ListMultipartUploadsResult>"
            } else {
                "<ListMultipartUploadsResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><NextKeyMarker>t%2Fa</NextKeyMarker><NextUploadIdMarker>U1</NextUploadIdMarker><Upload><Key>t%2Fa</Key><UploadId>U1</UploadId></Upload></ListMultipartUploadsResult>"
            };
            response(200, &[], body)
        })
        .await;
        let uploads = server
            .client()
            .list_all_multipart_uploads(&upload().bucket, Some("t/"))
            .await
            .unwrap();
        let got: Vec<(&str, &str)> = uploads
            .iter()
            .map(|u| (u.key.as_str(), u.upload_id.as_str()))
            .collect();
        assert_eq!(got, vec![("t/a", "U1"), ("t/b", "U2")]);
        let seen = server.seen();
        assert_eq!(
            seen[0].target,
            "/examplebucket/?uploads=&encoding-type=url&prefix=t%2F"
        );
        assert_eq!(
            seen[1].target,
            "/examplebucket/?uploads=&encoding-type=url&prefix=t%2F&key-marker=t%2Fa&upload-id-marker=U1"
        );
    }
}
