//! PutSymlink and GetSymlink.

use tonic::Status;

use super::{
    audit::Trail,
    convert::{self, version_string},
    status::oss_status,
    tag_policy::CallPolicy,
    validate::Validation,
};
use crate::{
    oss::{Client, ObjectAttributes, ObjectId, PutSymlinkInput},
    proto,
};

pub async fn put(
    client: &Client,
    policy: &CallPolicy,
    req: proto::PutSymlinkRequest,
    trail: &mut Trail,
) -> Result<proto::PutSymlinkResponse, Status> {
    let mut v = Validation::new();
    let bucket = v.bucket("bucket", &req.bucket);
    let key = v.key("key", &req.key);
    let target = v.key("target_key", &req.target_key);
    let tags = v.tagging("tagging", req.tagging.as_ref());
    let metadata = v.metadata("metadata", &req.metadata);
    let storage_class = v.storage_class("storage_class", req.storage_class);
    let acl = v.acl("acl", req.acl);
    let input = v.conclude((|| {
        Some(PutSymlinkInput {
            bucket: bucket?,
            key: key?,
            target: target?,
            attributes: ObjectAttributes {
                tags: tags?.unwrap_or_default(),
                metadata: metadata?,
                storage_class: storage_class?,
                acl: acl?,
                forbid_overwrite: req.forbid_overwrite,
                // A link has no content headers of its own.
                content: Default::default(),
            },
        })
    })())?;
    let (bucket, key) = (input.bucket.as_str(), input.key.as_str());
    policy.check("tagging", bucket, key, &input.attributes.tags)?;
    if !input.attributes.forbid_overwrite {
        let object = ObjectId::new(input.bucket.clone(), input.key.clone());
        trail.read_before(client, &object).await;
    }
    let out = client.put_symlink(&input).await.map_err(oss_status)?;
    trail.request_id(out.request_id.as_deref());
    if input.attributes.forbid_overwrite && out.version_id.is_none() {
        trail.created_object();
    }
    Ok(proto::PutSymlinkResponse {
        version_id: version_string(out.version_id),
    })
}

pub async fn get(
    client: &Client,
    req: proto::GetSymlinkRequest,
) -> Result<proto::GetSymlinkResponse, Status> {
    let mut v = Validation::new();
    let target = v.object_ref(&req.bucket, &req.key, &req.version_id);
    let target = v.conclude(target)?;
    let out = client.get_symlink(&target).await.map_err(oss_status)?;
    Ok(proto::GetSymlinkResponse {
        target_key: out.target,
        metadata: convert::metadata_to_proto(out.metadata),
        etag: out.etag.unwrap_or_default(),
        last_modified: out.last_modified.map(convert::timestamp),
        version_id: version_string(out.version_id),
    })
}
