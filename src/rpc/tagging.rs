//! PutObjectTagging, GetObjectTagging, DeleteObjectTagging. The two writes hold the object's
//! tag-write lock, and check their `if_tags` under it.

use tonic::Status;

use super::{
    audit::Trail,
    condition::TagCondition,
    convert::{self, version_string},
    status::oss_status,
    tag_policy::CallPolicy,
    tag_write,
    validate::Validation,
};
use crate::{
    lock::TagWriteLock,
    model::TagSet,
    oss::{Client, ObjectId, PutObjectTaggingInput},
    proto,
};

/// Under the object's lock: the tags before for the audit trail, and the condition checked
/// against them (the compare of a compare-and-swap). Without a condition the tags are read
/// only when the audit asks for them.
async fn check_under_lock(
    client: &Client,
    target: &ObjectId,
    condition: Option<&TagCondition>,
    trail: &mut Trail,
) -> Result<(), Status> {
    match condition {
        Some(condition) => {
            trail.condition(condition.text());
            let before = tag_write::current_tags(client, target).await?;
            trail.read_under_lock(&before);
            condition.check(client, target, &before).await
        }
        None => {
            trail.read_before(client, target).await;
            Ok(())
        }
    }
}

pub async fn put(
    client: &Client,
    locks: &dyn TagWriteLock,
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
    let condition = v.if_tags("if_tags", &req.if_tags);
    let ((target, tags), condition) = v.conclude(target.zip(tags).zip(condition))?;
    policy.check(
        "tagging",
        target.bucket.as_str(),
        target.key.as_str(),
        &tags,
    )?;
    let guard = tag_write::lock(locks, &target, trail).await?;
    check_under_lock(client, &target, condition.as_ref(), trail).await?;
    tag_write::ensure_held(&guard)?;
    let out = client
        .put_object_tagging(&PutObjectTaggingInput {
            version_id: target.version_id,
            ..PutObjectTaggingInput::new(target.bucket, target.key, tags)
        })
        .await
        .map_err(oss_status)?;
    guard.release().await;
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
    locks: &dyn TagWriteLock,
    policy: &CallPolicy,
    req: proto::DeleteObjectTaggingRequest,
    trail: &mut Trail,
) -> Result<proto::DeleteObjectTaggingResponse, Status> {
    let mut v = Validation::new();
    let target = v.object_ref(&req.bucket, &req.key, &req.version_id);
    let condition = v.if_tags("if_tags", &req.if_tags);
    let (target, condition) = v.conclude(target.zip(condition))?;
    let (bucket, key) = (target.bucket.as_str(), target.key.as_str());
    policy.check("", bucket, key, &TagSet::empty())?;
    let guard = tag_write::lock(locks, &target, trail).await?;
    check_under_lock(client, &target, condition.as_ref(), trail).await?;
    tag_write::ensure_held(&guard)?;
    let out = client
        .delete_object_tagging(&target)
        .await
        .map_err(oss_status)?;
    guard.release().await;
    trail.request_id(out.request_id.as_deref());
    Ok(proto::DeleteObjectTaggingResponse {
        version_id: version_string(out.version_id),
    })
}
