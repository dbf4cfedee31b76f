//! PutSymlink and GetSymlink (docs/oss-protocol.md, "PutSymlink and GetSymlink").

use std::time::SystemTime;

use http::HeaderMap;

use super::object::ObjectId;
use super::{ObjectAttributes, OssOperation, OssRequest, Resp};
use crate::model::{BucketName, ObjectKey, UserMetadata, VersionId};
use crate::oss::client::Client;
use crate::oss::endpoint::percent_encode;
use crate::oss::error::OssError;
use crate::oss::protocol::header;
use crate::oss::protocol::query;

/// Input of PutSymlink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutSymlinkInput {
    /// The bucket.
    pub bucket: BucketName,
    /// The key of the link itself.
    pub key: ObjectKey,
    /// The object the link points to (same bucket; need not exist).
    pub target: ObjectKey,
    /// What the link itself gets. Its tags (`x-oss-tagging`): the SDKs do not expose
    /// them for symlinks; OSS documents the permission for them.
    pub attributes: ObjectAttributes,
}

impl PutSymlinkInput {
    /// A link `key` → `target` with no options.
    pub fn new(bucket: BucketName, key: ObjectKey, target: ObjectKey) -> Self {
        PutSymlinkInput {
            bucket,
            key,
            target,
            attributes: ObjectAttributes::default(),
        }
    }
}

/// Result of PutSymlink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutSymlinkOutput {
    /// `ETag` of the link, if OSS sent one.
    pub etag: Option<String>,
    /// `x-oss-version-id` (versioned buckets).
    pub version_id: Option<VersionId>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Input of GetSymlink.
pub type GetSymlinkInput = ObjectId;

/// Result of GetSymlink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetSymlinkOutput {
    /// The target key, percent-decoded (not re-validated).
    pub target: String,
    /// User metadata of the link.
    pub metadata: UserMetadata,
    /// `ETag` of the link.
    pub etag: Option<String>,
    /// `Last-Modified` of the link.
    pub last_modified: Option<SystemTime>,
    /// `x-oss-version-id`.
    pub version_id: Option<VersionId>,
    /// `x-oss-request-id`.
    pub request_id: Option<String>,
}

/// Builds `PUT /{key}?symlink` with `x-oss-symlink-target` fully
/// percent-encoded (including `/`, as oss2 does; required for non-ASCII).
pub fn build_put_symlink(input: &PutSymlinkInput) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::PutSymlink, &input.bucket, Some(&input.key));
    req.query_set(query::SYMLINK, "");
    req.header_set(
        header::SYMLINK_TARGET,
        percent_encode(input.target.as_str(), false),
    );
    input.attributes.push_to(&mut req);
    req
}

/// Builds `GET /{key}?symlink[&versionId=]`.
pub fn build_get_symlink(input: &GetSymlinkInput) -> OssRequest {
    let mut req = OssRequest::new(OssOperation::GetSymlink, &input.bucket, Some(&input.key));
    req.query_set(query::SYMLINK, "");
    req.version(input.version_id.as_ref());
    req
}

/// Parses a PutSymlink success.
pub fn parse_put_symlink(status: u16, headers: &HeaderMap) -> Result<PutSymlinkOutput, OssError> {
    let r = Resp::new(status, headers);
    Ok(PutSymlinkOutput {
        etag: r.etag(),
        version_id: r.version_id()?,
        request_id: r.request_id(),
    })
}

/// Parses a GetSymlink success; the target header is required.
pub fn parse_get_symlink(status: u16, headers: &HeaderMap) -> Result<GetSymlinkOutput, OssError> {
    let r = Resp::new(status, headers);
    let raw = r
        .string(header::SYMLINK_TARGET)
        .ok_or_else(|| r.invalid("GetSymlink response without x-oss-symlink-target"))?;
    let target = percent_encoding::percent_decode_str(&raw)
        .decode_utf8_lossy()
        .into_owned();
    Ok(GetSymlinkOutput {
        target,
        metadata: r.metadata(),
        etag: r.etag(),
        last_modified: r.last_modified(),
        version_id: r.version_id()?,
        request_id: r.request_id(),
    })
}

impl Client {
    /// PutSymlink: creates or replaces the link `key` → `target`.
    pub async fn put_symlink(&self, input: &PutSymlinkInput) -> Result<PutSymlinkOutput, OssError> {
        let resp = self.send(&build_put_symlink(input)).await?;
        parse_put_symlink(resp.status().as_u16(), resp.headers())
    }

    /// GetSymlink: where the link points, and the link's own metadata.
    pub async fn get_symlink(&self, input: &GetSymlinkInput) -> Result<GetSymlinkOutput, OssError> {
        let resp = self.send(&build_get_symlink(input)).await?;
        parse_get_symlink(resp.status().as_u16(), resp.headers())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Payload;
    use super::super::test_support::*;
    use crate::model::{ObjectAcl, StorageClass, TagSet};
    use http::Method;

    use super::*;
    use crate::oss::OssErrorKind;

    #[test]
    fn put_symlink_matches_oss2_capture() {
        // CAP oss2-v4-PutSymlink.http: ?symlink, encoded target, forbid-overwrite
        let mut input =
            PutSymlinkInput::new(bucket(), key("link-to-report.txt"), key("docs/report.txt"));
        input.attributes.forbid_overwrite = true;
        let req = build_put_symlink(&input);
        assert_eq!(req.method, Method::PUT);
        assert_eq!(req.query, owned(&[("symlink", "")]));
        assert_eq!(
            sorted(&req),
            owned(&[
                ("x-oss-forbid-overwrite", "true"),
                ("x-oss-symlink-target", "docs%2Freport.txt"),
            ])
        );
        assert_eq!(req.payload, Payload::Empty);
    }

    #[test]
    fn put_symlink_with_every_option() {
        let mut input = PutSymlinkInput::new(bucket(), key("l"), key("目录/a b+c.txt"));
        input.attributes.metadata = UserMetadata::from_pairs([("Owner", "bob")]).unwrap();
        input.attributes.tags = TagSet::from_pairs([("t", "1 2")]).unwrap();
        input.attributes.storage_class = Some(StorageClass::Archive);
        input.attributes.acl = Some(ObjectAcl::Default);
        let req = build_put_symlink(&input);
        assert_eq!(
            sorted(&req),
            owned(&[
                ("x-oss-meta-owner", "bob"),
                ("x-oss-object-acl", "default"),
                ("x-oss-storage-class", "Archive"),
                ("x-oss-symlink-target", "%E7%9B%AE%E5%BD%95%2Fa%20b%2Bc.txt"),
                ("x-oss-tagging", "t=1%202"),
            ])
        );
    }

    #[test]
    fn get_symlink_request_matches_capture() {
        // CAP pyv2-v4-GetSymlink.http: ?symlink (pyv2's empty Content-MD5 not needed)
        let req = build_get_symlink(&ObjectId::new(bucket(), key("link-to-report.txt")));
        assert_eq!(req.method, Method::GET);
        assert_eq!(req.query, owned(&[("symlink", "")]));
        assert!(req.headers.is_empty());
        let req =
            build_get_symlink(&ObjectId::new(bucket(), key("l")).with_version(Some(version())));
        assert_eq!(req.query_param("versionId"), Some(CAPTURE_VERSION));
    }

    #[test]
    fn get_symlink_decodes_target_in_every_sdk_form() {
        // oss2 (%2F), ali-oss (raw /, encoded space), pyv2 (raw)
        for raw in ["dir%2Fobj%201.txt", "dir/obj%201.txt", "dir/obj 1.txt"] {
            let out = parse_get_symlink(
                200,
                &headers(&[
                    ("x-oss-symlink-target", raw),
                    ("etag", "\"E\""),
                    ("x-oss-meta-a", "b"),
                    ("x-oss-version-id", "V"),
                    ("last-modified", "Wed, 15 Jan 2025 08:30:00 GMT"),
                ]),
            )
            .unwrap();
            assert_eq!(out.target, "dir/obj 1.txt", "{raw}");
            assert_eq!(out.etag.as_deref(), Some("\"E\""));
            assert_eq!(out.metadata.get("a"), Some("b"));
            assert!(out.last_modified.is_some());
        }
        let out = parse_get_symlink(
            200,
            &headers(&[("x-oss-symlink-target", "%E6%B5%8B%E8%AF%95")]),
        )
        .unwrap();
        assert_eq!(out.target, "测试");
        let err = parse_get_symlink(200, &HeaderMap::new()).unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidResponse);
    }
}
