//! AppendObject: each non-empty chunk of the caller's stream becomes one OSS AppendObject at
//! the running position. Appends are never retried (a retry could append twice); a position
//! conflict is ABORTED with the position to use in the ErrorInfo metadata
//! (`next_append_position`). The caller needs `write` on the object (and `tag` when the
//! first message sets tags), checked on the first message before anything reaches OSS; the
//! append that carries tags is audited as a tag mutation as soon as OSS answers it.

use crate::oss::protocol::limit::MAX_SINGLE_REQUEST_BYTES;
use tonic::{Status, Streaming};

use super::{
    audit::{Trail, tags_json},
    auth::Access,
    check_write,
    convert::version_string,
    has_tags,
    status::{invalid_field, oss_status},
    tag_policy::CallPolicy,
    tag_write,
    validate::{NewObject, Validation},
};
use crate::{
    lock::TagWriteLock,
    oss::{AppendObjectInput, Client, ObjectAttributes},
    proto,
};

/// AppendObject.
pub async fn append(
    client: &Client,
    locks: &dyn TagWriteLock,
    access: &Access,
    policy: &CallPolicy,
    trail: &mut Trail,
    mut stream: Streaming<proto::AppendObjectRequest>,
) -> Result<proto::AppendObjectResponse, Status> {
    let first = stream.message().await?.ok_or_else(|| {
        invalid_field(
            "spec",
            "the stream was empty; the first message must carry spec",
        )
    })?;
    let Some(spec) = first.spec.as_ref() else {
        return Err(invalid_field("spec", "is required in the first message"));
    };
    let tagged = has_tags(spec.tagging.as_ref());
    if tagged {
        let tags = spec.tagging.iter().flat_map(|t| t.tags.iter());
        trail.begin("AppendObject", &spec.bucket, &spec.key, tags_json(tags));
    }
    check_write(access, &spec.bucket, &spec.key, tagged)?;
    let mut v = Validation::new();
    let NewObject { target, attributes } = v.new_object("spec", spec.into());
    let position = match u64::try_from(first.position) {
        Ok(position) => Some(position),
        Err(_) => {
            v.violation("position", format!("{} is negative", first.position));
            None
        }
    };
    // OSS applies tags and metadata only when an append creates the object: say so instead
    // of silently dropping them.
    if first.position > 0 {
        if spec.tagging.is_some() {
            v.violation(
                "spec.tagging",
                "tags can only be set by the append that creates the object (position 0); \
                 use PutObjectTagging to change them",
            );
        }
        if !spec.metadata.is_empty() {
            v.violation(
                "spec.metadata",
                "metadata can only be set by the append that creates the object (position 0)",
            );
        }
    }
    let mut input = v.conclude((|| {
        let target = target?;
        let mut input =
            AppendObjectInput::new(target.bucket, target.key, position?, Default::default());
        input.attributes = attributes?;
        // At position 0 the object starts empty, so OSS's whole-object CRC can be checked
        // from the first append on; at a later position the prefix's CRC is unknown until
        // OSS reports it.
        input.previous_crc64 = (input.position == 0).then_some(0);
        Some(input)
    })())?;
    // Only the append that creates the object sets tags (later ones may not carry any).
    if input.position == 0 {
        let (bucket, key) = (input.bucket.as_str(), input.key.as_str());
        policy.check("spec.tagging", bucket, key, &input.attributes.tags)?;
    }
    // That append is a write with tags: it holds the object's tag-write lock, as every other
    // tag write through ossgate does, until it is answered (later appends set no tags).
    let mut tag_lock = tag_write::lock_for_tagged_write(
        locks,
        input.position == 0 && !input.attributes.tags.is_empty(),
        input.bucket.as_str(),
        input.key.as_str(),
        trail,
    )
    .await?;

    let mut response = proto::AppendObjectResponse {
        next_append_position: first.position,
        ..Default::default()
    };
    let mut message = first;
    let mut is_first = true;
    loop {
        if !is_first {
            if message.spec.is_some() {
                return Err(invalid_field(
                    "spec",
                    "only the first message may carry spec",
                ));
            }
            if message.position != response.next_append_position {
                return Err(invalid_field(
                    "position",
                    format!(
                        "{} does not match the running position {}",
                        message.position, response.next_append_position
                    ),
                ));
            }
        }
        if !message.data.is_empty() {
            let end = input.position.saturating_add(message.data.len() as u64);
            if end > MAX_SINGLE_REQUEST_BYTES {
                return Err(invalid_field(
                    "data",
                    format!(
                        "the object would grow past {MAX_SINGLE_REQUEST_BYTES} bytes, OSS's limit for appendable objects"
                    ),
                ));
            }
            input.body = message.data;
            let out = client.append_object(&input).await.map_err(oss_status)?;
            if let Some(guard) = tag_lock.take() {
                guard.release().await;
            }
            response.appends += 1;
            response.next_append_position = out.next_position as i64;
            response.version_id = version_string(out.version_id);
            if trail.is_open() {
                // This append set the tags: its outcome is the event (a failure is
                // reported by the handler with the call's status).
                trail.request_id(out.request_id.as_deref());
                if input.position == 0 {
                    // Position 0 succeeds only on a new (or empty) object.
                    trail.created_object();
                }
                trail.finish(Ok(&response), |r| r.version_id.as_str());
            }
            if let Some(crc) = out.crc64 {
                response.crc64ecma = crc;
            }
            // Later appends extend this object: their headers would be ignored by OSS.
            input.position = out.next_position;
            input.previous_crc64 = out.crc64;
            input.attributes = ObjectAttributes::default();
        }
        is_first = false;
        message = match stream.message().await? {
            Some(next) => next,
            None => {
                // No append was made: no tags were set.
                trail.discard();
                return Ok(response);
            }
        };
    }
}
