//! PutObjectTagging, GetObjectTagging, DeleteObjectTagging.

use tonic::Status;

use super::{
    audit::Trail,
    convert::{self, version_string},
    status::oss_status,
    tag_policy::CallPolicy,
    validate::Validation,
};
use crate::{
    model::TagSet,
    oss::{Client, PutObjectTaggingInput},
    proto,
};

pub async fn put(
    client: &Client,
    policy: &CallPolicy,
    req: proto::PutObjectTaggingRequest,
    trail: &mut Trail,
) -> Result<proto::PutObjectTaggingResponse, Status> {
    let mut v = Validation::new();
    let target = v.object_ref(&req.bucket, &req.key, &req.version_id);
    let tags = match &req.tagging {
        Some(tagging) => v.tag_set("tagging", tagging),
        None => {
            v.violation(
                "tagging",
                "is required; send an empty tag set to remove every tag",
            );
            None
        }
    };
    let (target, tags) = v.conclude(target.zip(tags))?;
    policy.check(
        "tagging",
        target.bucket.as_str(),
        target.key.as_str(),
        &tags,
    )?;
    trail.read_before(client, &target).await;
    let out = client
        .put_object_tagging(&PutObjectTaggingInput {
            version_id: target.version_id,
            ..PutObjectTaggingInput::new(target.bucket, target.key, tags)
        })
        .await
        .map_err(oss_status)?;
    trail.request_id(out.request_id.as_deref());
    Ok(proto::PutObjectTaggingResponse {
        version_id: version_string(out.version_id),
    })
}

pub async fn get(
    client: &Client,
    req: proto::GetObjectTaggingRequest,
) -> Result<proto::GetObjectTaggingResponse, Status> {
    let mut v = Validation::new();
    let target = v.object_ref(&req.bucket, &req.key, &req.version_id);
    let target = v.conclude(target)?;
    let out = client
        .get_object_tagging(&target)
        .await
        .map_err(oss_status)?;
    Ok(proto::GetObjectTaggingResponse {
        tagging: Some(convert::tagging_to_proto(out.tags)),
        version_id: version_string(out.version_id),
    })
}

/// DeleteObjectTagging leaves the object without tags: refused where a rule of the tag
/// policy requires one.
pub async fn delete(
    client: &Client,
    policy: &CallPolicy,
    req: proto::DeleteObjectTaggingRequest,
    trail: &mut Trail,
) -> Result<proto::DeleteObjectTaggingResponse, Status> {
    let mut v = Validation::new();
    let target = v.object_ref(&req.bucket, &req.key, &req.version_id);
    let target = v.conclude(target)?;
    let (bucket, key) = (target.bucket.as_str(), target.key.as_str());
    policy.check("", bucket, key, &TagSet::empty())?;
    trail.read_before(client, &target).await;
    let out = client
        .delete_object_tagging(&target)
        .await
        .map_err(oss_status)?;
    trail.request_id(out.request_id.as_deref());
    Ok(proto::DeleteObjectTaggingResponse {
        version_id: version_string(out.version_id),
    })
}
