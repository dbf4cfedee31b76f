//! PatchObjectTagging: read → merge → write under the object's tag-write lock, then read back.
//!
//! The lock serializes every tag write that goes through ossgate (on every replica sharing
//! it), so no such write is lost. A writer that bypasses ossgate takes no lock: the read back
//! after the write is how such a writer is detected (it changed the tags between our write
//! and our read), and the response and a warning say so. One that writes between our read and
//! our write and is then overwritten by us cannot be detected from here.

use std::collections::BTreeMap;

use tonic::Status;
use tracing::warn;

use super::{
    audit::Trail,
    convert::{self, version_string},
    status::{invalid_field, oss_status},
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

/// The tags a patch leaves: `current` with the keys of `remove` dropped and those of `set`
/// added or overwritten. Pure.
pub fn merged(
    current: &[(String, String)],
    set: &TagSet,
    remove: &[String],
) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = current.iter().cloned().collect();
    for key in remove {
        tags.remove(key);
    }
    for (key, value) in set.iter() {
        tags.insert(key.to_owned(), value.to_owned());
    }
    tags
}

/// `remove`'s keys, each a valid tag key, none also in `set`.
fn removed_keys(
    v: &mut Validation,
    remove: &[String],
    set: Option<&TagSet>,
) -> Option<Vec<String>> {
    let before = v.violation_count();
    for (i, key) in remove.iter().enumerate() {
        let field = format!("remove[{i}]");
        if let Err(violations) = TagSet::from_pairs([(key.as_str(), "")]) {
            for violation in violations {
                v.violation(&field, violation.description);
            }
        } else if set.is_some_and(|set| set.get(key).is_some()) {
            v.violation(&field, format!("tag key {key:?} is in both set and remove"));
        }
    }
    (v.violation_count() == before).then(|| remove.to_vec())
}

pub async fn patch(
    client: &Client,
    locks: &dyn TagWriteLock,
    policy: &CallPolicy,
    req: proto::PatchObjectTaggingRequest,
    trail: &mut Trail,
) -> Result<proto::PatchObjectTaggingResponse, Status> {
    let mut v = Validation::new();
    let target = v.object_ref(&req.bucket, &req.key, &req.version_id);
    let set = v.tag_set(
        "set",
        &proto::Tagging {
            tags: req.set.clone(),
        },
    );
    let remove = removed_keys(&mut v, &req.remove, set.as_ref());
    if req.set.is_empty() && req.remove.is_empty() {
        v.violation("set", "set or remove must name at least one tag");
    }
    let condition = v.if_tags("if_tags", &req.if_tags);
    let (((target, set), remove), condition) =
        v.conclude(target.zip(set).zip(remove).zip(condition))?;

    let guard = tag_write::lock(locks, &target, trail).await?;
    let before = tag_write::current_tags(client, &target).await?;
    trail.read_under_lock(&before);
    if let Some(condition) = &condition {
        trail.condition(condition.text());
        condition.check(client, &target, &before).await?;
    }
    let tags = TagSet::from_pairs(merged(&before, &set, &remove)).map_err(|violations| {
        let why = violations
            .into_iter()
            .map(|v| v.description)
            .collect::<Vec<_>>()
            .join("; ");
        invalid_field("set", format!("the patched tag set is not valid: {why}"))
    })?;
    // The tag policy holds for the resulting set, which only exists under the lock.
    policy.check("set", target.bucket.as_str(), target.key.as_str(), &tags)?;
    tag_write::ensure_held(&guard)?;
    let out = client
        .put_object_tagging(&PutObjectTaggingInput {
            version_id: target.version_id.clone(),
            ..PutObjectTaggingInput::new(target.bucket.clone(), target.key.clone(), tags.clone())
        })
        .await
        .map_err(oss_status)?;
    trail.request_id(out.request_id.as_deref());

    // Read back the version written, still under the lock: only a writer outside ossgate
    // can have changed it since.
    let written = ObjectId {
        version_id: out.version_id.clone().or(target.version_id.clone()),
        ..target.clone()
    };
    let after = tag_write::current_tags(client, &written).await?;
    guard.release().await;
    let expected: BTreeMap<&str, &str> = tags.iter().collect();
    let found: BTreeMap<&str, &str> = after
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let overwritten = expected != found;
    if overwritten {
        warn!(
            bucket = %target.bucket,
            key = %target.key,
            written = %super::audit::tags_json(tags.iter()),
            read_back = %super::audit::tags_json(after.iter().map(|(k, v)| (k, v))),
            "PatchObjectTagging: the tags read back differ from those written; a writer that bypasses ossgate changed them"
        );
    }
    trail.tags_after(&after);
    Ok(proto::PatchObjectTaggingResponse {
        tagging: Some(convert::tagging_to_proto(after)),
        version_id: version_string(out.version_id),
        overwritten_by_other_writer: overwritten,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(tags: &[(&str, &str)]) -> Vec<(String, String)> {
        tags.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_patch_sets_overwrites_and_removes_and_keeps_the_rest() {
        let current = pairs(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let set = TagSet::from_pairs([("b", "20"), ("d", "4")]).unwrap();
        let tags = merged(&current, &set, &["c".to_string(), "zz".to_string()]);
        assert_eq!(
            tags.into_iter().collect::<Vec<_>>(),
            pairs(&[("a", "1"), ("b", "20"), ("d", "4")])
        );
    }

    #[test]
    fn remove_keys_are_checked() {
        let set = TagSet::from_pairs([("a", "1")]).unwrap();
        let mut v = Validation::new();
        assert!(removed_keys(&mut v, &["b".into()], Some(&set)).is_some());
        assert!(removed_keys(&mut v, &["a".into()], Some(&set)).is_none());
        assert!(removed_keys(&mut v, &["x&y".into()], Some(&set)).is_none());
        assert_eq!(v.violation_count(), 2);
    }
}
