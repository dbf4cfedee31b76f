//! PutObjectTagging, GetObjectTagging, DeleteObjectTagging (docs/oss-protocol.md, "Object
//! tagging").

use bytes::Bytes;
use http::HeaderMap;

use super::object::ObjectId;
use super::{OssOperation, OssRequest, Resp};
use crate::model::{BucketName, ObjectKey, TagSet, VersionId};
use crate::oss::client::Client;
use crate::oss::error::OssError;
use crate::oss::protocol::query;
use crate::oss::xml::{parse_tagging_xml, tagging_xml};

/// Input of PutObjectTagging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutObjectTaggingInput {
    /// The bucket.
    pub bucket: BucketName,
    /// The object key.
    pub key: ObjectKey,
    /// A specific version; `None` = the current one.
    pub version_id: Option<VersionId>,
    /// The complete new tag set (replaces every existing tag; empty = no tags).
    pub tags: TagSet,
    /// Send `Content-MD5` of the XML body (recommended).
    pub content_md5: bool,
}

impl PutObjectTaggingInput {
    /// Tags for the current version, with `Content-MD5`.
    pub fn new(bucket: BucketName, key: ObjectKey, tags: TagSet) -> Self {
        PutObjectTaggingInput {
            bucket,
            key,
            version_id: None,
            tags,
            content_md5: true,
        }
    }
}

/// Input of GetObjectTagging.
pub type GetObjectTaggingInput = ObjectId;
/// Input of DeleteObjectTagging.
pub type DeleteObjectTaggingInput = ObjectId;

/// Result of PutObjectTagging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutObjectTaggingOutput {
    /// `x-oss-version-id`: the version whose tags were set.
    pub version_id: Option<VersionId>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Result of DeleteObjectTagging.
pub type DeleteObjectTaggingOutput = PutObjectTaggingOutput;

/// Result of GetObjectTagging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetObjectTaggingOutput {
    /// The tags in document order, as OSS returned them (not re-validated).
    pub tags: Vec<(String, String)>,
    /// `x-oss-version-id`.
    pub version_id: Option<VersionId>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

fn tagging_request(operation: OssOperation, object: &ObjectId) -> OssRequest {
    let mut req = OssRequest::new(operation, &object.bucket, Some(&object.key));
    req.query_set(query::TAGGING, "");
    req.version(object.version_id.as_ref());
    req
}

/// Builds `PUT /{key}?tagging[&versionId=]` with the `<Tagging>` XML body.
pub fn build_put_object_tagging(input: &PutObjectTaggingInput) -> OssRequest {
    let object = ObjectId {
        bucket: input.bucket.clone(),
        key: input.key.clone(),
        version_id: input.version_id.clone(),
    };
    let mut req = tagging_request(OssOperation::PutObjectTagging, &object);
    req.bytes_body(Bytes::from(tagging_xml(&input.tags)), input.content_md5);
    req
}

/// Builds `GET /{key}?tagging[&versionId=]`.
pub fn build_get_object_tagging(input: &GetObjectTaggingInput) -> OssRequest {
    tagging_request(OssOperation::GetObjectTagging, input)
}

/// Builds `DELETE /{key}?tagging[&versionId=]`.
pub fn build_delete_object_tagging(input: &DeleteObjectTaggingInput) -> OssRequest {
    tagging_request(OssOperation::DeleteObjectTagging, input)
}

/// Parses a Put/DeleteObjectTagging success.
pub fn parse_tagging_write(
    status: u16,
    headers: &HeaderMap,
) -> Result<PutObjectTaggingOutput, OssError> {
    let r = Resp::new(status, headers);
    Ok(PutObjectTaggingOutput {
        version_id: r.version_id()?,
        request_id: r.request_id(),
    })
}

/// Parses a GetObjectTagging success (headers and XML body).
pub fn parse_get_object_tagging(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<GetObjectTaggingOutput, OssError> {
    let r = Resp::new(status, headers);
    let text =
        std::str::from_utf8(body).map_err(|_| r.invalid("GetObjectTagging body is not UTF-8"))?;
    let tags = parse_tagging_xml(text)
        .map_err(|e| r.invalid(format!("unparsable GetObjectTagging body: {e}")))?;
    Ok(GetObjectTaggingOutput {
        tags,
        version_id: r.version_id()?,
        request_id: r.request_id(),
    })
}

impl Client {
    /// PutObjectTagging: replaces the object's tag set.
    pub async fn put_object_tagging(
        &self,
        input: &PutObjectTaggingInput,
    ) -> Result<PutObjectTaggingOutput, OssError> {
        let resp = self.send(&build_put_object_tagging(input)).await?;
        parse_tagging_write(resp.status().as_u16(), resp.headers())
    }

    /// GetObjectTagging: the object's tags.
    pub async fn get_object_tagging(
        &self,
        input: &GetObjectTaggingInput,
    ) -> Result<GetObjectTaggingOutput, OssError> {
        self.send_and_parse(
            &build_get_object_tagging(input),
            crate::oss::client::MAX_XML_BODY,
            parse_get_object_tagging,
        )
        .await
    }

    /// DeleteObjectTagging: removes every tag of the object.
    pub async fn delete_object_tagging(
        &self,
        input: &DeleteObjectTaggingInput,
    ) -> Result<DeleteObjectTaggingOutput, OssError> {
        let resp = self.send(&build_delete_object_tagging(input)).await?;
        parse_tagging_write(resp.status().as_u16(), resp.headers())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Payload;
    use super::super::test_support::*;
    use http::Method;

    use super::*;
    use crate::oss::OssErrorKind;

    const CAPTURE_XML: &str = "<Tagging><TagSet><Tag><Key>k1</Key><Value>v1</Value></Tag><Tag><Key>key two</Key><Value>value/2</Value></Tag></TagSet></Tagging>";

    #[test]
    fn put_tagging_matches_pyv2_capture() {
        // CAP pyv2-v4-PutObjectTagging.http: versionId, Content-MD5, XML body
        let mut input = PutObjectTaggingInput::new(
            bucket(),
            key("docs/report.txt"),
            TagSet::from_pairs([("k1", "v1"), ("key two", "value/2")]).unwrap(),
        );
        input.version_id = Some(version());
        let req = build_put_object_tagging(&input);
        assert_eq!(req.method, Method::PUT);
        assert_eq!(
            req.query,
            vec![
                ("tagging".to_string(), String::new()),
                ("versionId".to_string(), CAPTURE_VERSION.to_string())
            ]
        );
        assert_eq!(
            sorted(&req),
            owned(&[("content-md5", "bx5QtSVWUDiLmN9aECSjGg==")])
        );
        assert_eq!(
            req.payload,
            Payload::Bytes(Bytes::from_static(CAPTURE_XML.as_bytes()))
        );
        assert!(req.is_replayable());
    }

    #[test]
    fn put_tagging_without_md5_matches_oss2_capture() {
        // CAP oss2-v4-PutObjectTagging.http sends no Content-MD5
        let mut input = PutObjectTaggingInput::new(
            bucket(),
            key("docs/report.txt"),
            TagSet::from_pairs([("k1", "v1"), ("key two", "value/2")]).unwrap(),
        );
        input.content_md5 = false;
        let req = build_put_object_tagging(&input);
        assert!(req.headers.is_empty());
        assert_eq!(req.query, owned(&[("tagging", "")]));
    }

    #[test]
    fn get_and_delete_tagging_requests() {
        let id = ObjectId::new(bucket(), key("docs/report.txt")).with_version(Some(version()));
        let get = build_get_object_tagging(&id);
        assert_eq!(get.method, Method::GET);
        assert_eq!(get.query_param("tagging"), Some(""));
        assert_eq!(get.query_param("versionId"), Some(CAPTURE_VERSION));
        assert!(get.headers.is_empty());
        let del = build_delete_object_tagging(&id);
        assert_eq!(del.method, Method::DELETE);
        assert_eq!(del.query, get.query);
        assert_eq!(del.payload, Payload::Empty);
    }

    #[test]
    fn get_tagging_result() {
        let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{CAPTURE_XML}");
        let out = parse_get_object_tagging(
            200,
            &headers(&[("x-oss-version-id", "V"), ("x-oss-request-id", "R")]),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            out.tags,
            vec![
                ("k1".to_string(), "v1".to_string()),
                ("key two".to_string(), "value/2".to_string())
            ]
        );
        assert_eq!(out.version_id.as_ref().map(|v| v.as_str()), Some("V"));
        let empty =
            parse_get_object_tagging(200, &HeaderMap::new(), b"<Tagging><TagSet/></Tagging>")
                .unwrap();
        assert!(empty.tags.is_empty());
        for bad in [&b"<html>nope"[..], &[0xff, 0xfe][..], b""] {
            let err = parse_get_object_tagging(200, &HeaderMap::new(), bad).unwrap_err();
            assert_eq!(err.kind, OssErrorKind::InvalidResponse);
        }
    }
}
