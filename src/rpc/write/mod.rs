//! WriteObject and the resumable-write RPCs.
//!
//! A stream is buffered up to one part. If it finishes within that part, it becomes one
//! PutObject; otherwise a multipart upload whose parts go out in parallel while the stream
//! keeps arriving. Memory per stream stays at about part size × (parts in flight + 1), and all
//! streams together stay within `upload.memory_budget_bytes`.
//!
//! Admission: a stream that does not finish in its first message is admitted only if its
//! working set (two parts, see [`working_set`]) is free in the budget right then; otherwise
//! it is refused at once with `UNAVAILABLE` (reason `OVERLOADED`, pool `upload_memory`, and
//! RetryInfo). Waiting instead would leave the stream's unread data in the HTTP/2 windows,
//! and a few such streams fill the 4 MiB connection window and stall every other call on
//! the connection. A write whose data all comes in the first message needs no admission:
//! its bytes are already in memory.
//!
//! Nothing half-written is ever presented as written. Offsets, the declared size and the
//! caller's checksums are checked before the object is committed (PutObject is sent or the
//! upload completed), and OSS's CRC-64 is checked after. A non-resumable write that fails or
//! is cancelled aborts its multipart upload. A resumable write keeps the parts OSS has
//! stored, so the caller can query how much is persisted and continue from there.

mod intake;
mod resumable;

pub use resumable::{abort_resumable, query_status, start_resumable};

use intake::Intake;
use resumable::resume;

use crate::oss::protocol::limit::MAX_OBJECT_BYTES;

use bytes::Bytes;
use tonic::{Code, Status, Streaming};
use tracing::{info, warn};

use super::{
    UploadConfig,
    audit::{Trail, tags_json},
    auth::Access,
    check_write,
    condition::TagCondition,
    convert::version_string,
    has_tags,
    status::{gateway_error, invalid_field, oss_status},
    tag_policy::CallPolicy,
    tag_write,
    validate::{NewObject, Validation},
};
use crate::{
    lock::TagWriteLock,
    model::ObjectAcl,
    oss::{
        Client, CompleteMultipartUploadInput, CompleteParts, InitiateMultipartUploadInput,
        MultipartUploadId, ObjectId, OssError, OssErrorKind, PutObjectInput,
        upload::{
            MultipartWriter, Reservation, UploadOptions, abort_upload, initiate_upload,
            plan_part_size, working_set,
        },
    },
    proto,
};

/// What the caller asked for, validated from the first message.
struct WritePlan {
    object: PutObjectInput,
    /// `spec.if_tags`: checked on the object overwritten, just before the commit.
    condition: Option<TagCondition>,
    object_size: Option<u64>,
    expected_crc64: Option<u64>,
    expected_md5: Option<[u8; 16]>,
}

/// Reads the next message; the end of the stream before `finish_write` is an error.
async fn next_message(
    stream: &mut Streaming<proto::WriteObjectRequest>,
    received: u64,
) -> Result<proto::WriteObjectRequest, Status> {
    stream
        .message()
        .await?
        .ok_or_else(|| ended_unfinished(received))
}

/// The end of a non-resumable stream before `finish_write`.
fn ended_unfinished(received: u64) -> Status {
    invalid_field(
        "finish_write",
        format!(
            "the stream ended after {received} bytes without finish_write; nothing was written"
        ),
    )
}

/// Admits a write stream into the upload memory budget (see the module documentation), or
/// refuses it at once.
fn admit(
    config: &UploadConfig,
    part_size: u64,
    object_size: Option<u64>,
) -> Result<Reservation, Status> {
    let budget = &config.options.budget;
    if part_size > budget.total() as u64 {
        return Err(invalid_field(
            "spec.object_size",
            format!(
                "needs parts of {part_size} bytes (10,000 parts at most), more than this \
                 gateway's upload.memory_budget_bytes ({} bytes)",
                budget.total()
            ),
        ));
    }
    let needed = working_set(part_size, object_size, budget.total());
    budget.try_reserve(needed).ok_or_else(|| {
        super::admission::upload_memory_full(needed, budget.total(), budget.in_use())
    })
}

/// After the message with `finish_write` the stream must end: a message after it would be
/// data the caller thinks is written. Checked before anything is committed.
async fn end_of_stream(stream: &mut Streaming<proto::WriteObjectRequest>) -> Result<(), Status> {
    match stream.message().await? {
        None => Ok(()),
        Some(_) => Err(invalid_field(
            "finish_write",
            "a message followed the one with finish_write; nothing was written",
        )),
    }
}

/// WriteObject. The caller must have `write` on the object (and `tag` when the write sets
/// tags); that is checked on the first message, before anything reaches OSS. A write with
/// tags opens an event in `trail`.
pub async fn write(
    client: &Client,
    config: &UploadConfig,
    locks: &dyn TagWriteLock,
    access: &Access,
    policy: &CallPolicy,
    trail: &mut Trail,
    mut stream: Streaming<proto::WriteObjectRequest>,
) -> Result<proto::WriteObjectResponse, Status> {
    let first = stream.message().await?.ok_or_else(|| {
        invalid_field(
            "spec",
            "the stream was empty; the first message must carry spec",
        )
    })?;
    if !first.upload_id.is_empty() {
        if first.spec.is_some() {
            return Err(invalid_field(
                "upload_id",
                "send either spec (a new object) or upload_id (a resumable write), not both",
            ));
        }
        return resume(client, config, locks, access, trail, first, stream).await;
    }
    if let Some(spec) = first.spec.as_ref() {
        let tagged = has_tags(spec.tagging.as_ref());
        if tagged {
            let tags = spec.tagging.iter().flat_map(|t| t.tags.iter());
            trail.begin("WriteObject", &spec.bucket, &spec.key, tags_json(tags));
        }
        check_write(access, &spec.bucket, &spec.key, tagged)?;
    }
    let plan = plan(&first)?;
    check_policy(policy, &plan)?;
    // A write that sets tags holds the object's tag-write lock while it commits (the
    // PutObject, or the CompleteMultipartUpload), so no patch in flight re-applies the old tags.
    // So does a conditional write, whose check and commit are then one compare-and-swap.
    let tag_lock =
        (!plan.object.attributes.tags.is_empty() || plan.condition.is_some()).then_some(locks);
    let part_size = plan_part_size(plan.object_size, config.options.part_size);
    let mut intake = Intake::new(plan.object_size, plan.expected_crc64, plan.expected_md5, 0);
    // Held until the PutObject is sent, or handed to the multipart writer.
    let reservation = if first.finish_write {
        Reservation::default()
    } else {
        admit(config, part_size, plan.object_size)?
    };

    // Buffer up to one part: a stream that ends within it is a single PutObject.
    let mut buffered: Vec<Bytes> = Vec::new();
    let mut buffered_len = 0u64;
    let mut message = first;
    loop {
        let accepted = intake.accept(message, 0)?;
        if !accepted.data.is_empty() {
            buffered_len += accepted.data.len() as u64;
            // A decoded message shares tonic's receive buffer, which can be twice its size,
            // and would keep all of it alive while the part is buffered: keep an exact copy,
            // within the working set. A one-message write is sent as it is.
            buffered.push(if accepted.finish && buffered.is_empty() {
                accepted.data
            } else {
                Bytes::copy_from_slice(&accepted.data)
            });
        }
        if accepted.finish {
            end_of_stream(&mut stream).await?;
            let (size, crc64) = intake.check_complete(None)?;
            let object = &plan.object;
            let target = ObjectId::new(object.bucket.clone(), object.key.clone());
            let held = match tag_lock {
                Some(locks) => Some(tag_write::lock(locks, &target, trail).await?),
                None => None,
            };
            if let Some(condition) = &plan.condition {
                condition.check_overwritten(client, &target).await?;
            }
            if !object.attributes.forbid_overwrite {
                trail.read_before(client, &target).await;
            }
            let out = put_single(client, &plan, buffered, size).await;
            if let Some(held) = held {
                held.release().await;
            }
            drop(reservation);
            let out = out?;
            trail.request_id(out.request_id.as_deref());
            if object.attributes.forbid_overwrite && out.version_id.is_none() {
                trail.created_object();
            }
            return Ok(proto::WriteObjectResponse {
                bucket: plan.object.bucket.to_string(),
                key: plan.object.key.to_string(),
                etag: out.etag.unwrap_or_default(),
                version_id: version_string(out.version_id),
                crc64ecma: crc64,
                size: size as i64,
                persisted_size: None,
            });
        }
        if buffered_len >= part_size {
            break;
        }
        message = next_message(&mut stream, intake.expected_offset).await?;
    }

    // More than a part: a multipart upload, aborted if anything goes wrong (the guard covers
    // the call being dropped, from the moment the Initiate is sent).
    let (initiated, mut guard) = initiate_upload(client, &initiate_input(&plan.object))
        .await
        .map_err(oss_status)?;
    let upload = initiated.upload;
    let options = UploadOptions {
        part_size,
        ..config.options.clone()
    };
    let mut writer = MultipartWriter::new(client.clone(), upload, options, Vec::new(), reservation);
    let result = match feed_multipart(&mut writer, &mut intake, buffered, &mut stream, None).await {
        Ok(StreamEnd::Closed) => Err(ended_unfinished(intake.expected_offset)),
        fed => fed,
    };
    let outcome = match result {
        Ok(_) => {
            let attributes = &plan.object.attributes;
            complete(
                writer,
                attributes.acl,
                attributes.forbid_overwrite,
                intake,
                None,
                trail,
                tag_lock,
                plan.condition.as_ref(),
            )
            .await
        }
        Err(status) => {
            // Logged by the abort: "aborted", or "left behind" with the UploadId.
            writer.abort().await;
            Err(status)
        }
    };
    // Completed, or the abort was tried (complete aborts when it fails): nothing left for
    // the guard to do.
    guard.disarm();
    outcome
}

/// How a stream fed into a multipart upload ended.
enum StreamEnd {
    /// `finish_write` arrived: the upload is to be completed.
    Finished,
    /// The caller closed its side of the stream without `finish_write`.
    Closed,
}

/// Sends the buffered chunks, then the rest of the stream, into `writer`.
async fn feed_multipart(
    writer: &mut MultipartWriter,
    intake: &mut Intake,
    buffered: Vec<Bytes>,
    stream: &mut Streaming<proto::WriteObjectRequest>,
    skip_until: Option<u64>,
) -> Result<StreamEnd, Status> {
    for chunk in buffered {
        writer.write(chunk).await.map_err(oss_status)?;
    }
    while let Some(message) = stream.message().await? {
        let accepted = intake.accept(message, skip_until.unwrap_or(0))?;
        if !accepted.data.is_empty() {
            writer.write(accepted.data).await.map_err(oss_status)?;
        }
        if accepted.finish {
            end_of_stream(stream).await?;
            return Ok(StreamEnd::Finished);
        }
    }
    Ok(StreamEnd::Closed)
}

/// Checks the caller's size and checksums, then completes the upload. Bytes that do not
/// match what the caller vouched for abort the upload, resumable or not: they are known bad.
/// A failed completion aborts a plain write's upload and keeps a resumable one's (`prefix`,
/// the CRC and length stored before this stream, is set only for resumed writes).
/// An audited write reads the tags before just ahead of the completion. A write that sets
/// tags (`tag_lock`) completes under the object's tag-write lock; when the lock cannot be
/// taken the upload is aborted (a plain write) or kept (a resumable one), as for a failed
/// completion.
#[allow(clippy::too_many_arguments)]
async fn complete(
    writer: MultipartWriter,
    acl: Option<ObjectAcl>,
    forbid_overwrite: bool,
    mut intake: Intake,
    prefix: Option<(u64, u64)>,
    trail: &mut Trail,
    tag_lock: Option<&dyn TagWriteLock>,
    condition: Option<&TagCondition>,
) -> Result<proto::WriteObjectResponse, Status> {
    let (size, crc64) = match intake.check_complete(prefix) {
        Ok(done) => done,
        Err(status) => {
            writer.abort().await;
            return Err(status);
        }
    };
    let upload = writer.upload().clone();
    let client = writer.client().clone();
    let target = ObjectId::new(upload.bucket.clone(), upload.key.clone());
    let _held = match tag_lock {
        Some(locks) => match tag_write::lock(locks, &target, trail).await {
            Ok(held) => Some(held),
            Err(status) => {
                if prefix.is_none() {
                    writer.abort().await;
                } else {
                    writer.suspend().await;
                }
                return Err(status);
            }
        },
        None => None,
    };
    if let Some(condition) = condition
        && let Err(status) = condition.check_overwritten(&client, &target).await
    {
        // As a failed completion: a plain write's upload is aborted, a resumable one kept.
        if prefix.is_none() {
            writer.abort().await;
        } else {
            writer.suspend().await;
        }
        return Err(status);
    }
    if !forbid_overwrite {
        trail.read_before(&client, &target).await;
    }
    let finished = writer
        .finish(|upload, parts| CompleteMultipartUploadInput {
            upload,
            parts: CompleteParts::List(parts),
            acl,
            forbid_overwrite,
        })
        .await;
    let (out, finished) = match finished {
        Ok(done) => done,
        Err(err) if err.kind == OssErrorKind::ChecksumMismatch => {
            return Err(corrupted(&client, &upload, err).await);
        }
        Err(err) => {
            // A part or the Complete failed (e.g. FileAlreadyExists under forbid_overwrite).
            // A resumable write (`prefix`) keeps its upload for the caller to resume or
            // abandon; a plain write's upload has no other owner, so it is aborted.
            if prefix.is_none() {
                abort_upload(&client, &upload).await;
            }
            return Err(oss_status(err));
        }
    };
    trail.request_id(out.request_id.as_deref());
    if finished.crc64 != crc64 || finished.size != size {
        // The parts OSS stored do not add up to what the caller sent.
        return Err(corrupted(
            &client,
            &upload,
            OssError::client(
                OssErrorKind::ChecksumMismatch,
                format!(
                    "the stored parts hold {} bytes with CRC-64 {}, the stream {size} bytes with CRC-64 {crc64}",
                    finished.size, finished.crc64
                ),
            ),
        )
        .await);
    }
    let MultipartUploadId { bucket, key, .. } = upload;
    info!(%bucket, %key, size, parts = finished.parts, "multipart write complete");
    if forbid_overwrite && out.version_id.is_none() {
        trail.created_object();
    }
    Ok(proto::WriteObjectResponse {
        bucket: bucket.to_string(),
        key: key.to_string(),
        etag: out.etag.unwrap_or_default(),
        version_id: version_string(out.version_id),
        crc64ecma: crc64,
        size: size as i64,
        persisted_size: None,
    })
}

/// A completed object whose checksum is wrong: delete it (it must not be presented as
/// written) and report DATA_LOSS.
async fn corrupted(client: &Client, upload: &MultipartUploadId, err: OssError) -> Status {
    warn!(bucket = %upload.bucket, key = %upload.key, error = %err, "checksum mismatch after upload; deleting the object");
    let target = ObjectId::new(upload.bucket.clone(), upload.key.clone());
    if let Err(delete_err) = client.delete_object(&target).await {
        warn!(bucket = %upload.bucket, key = %upload.key, error = %delete_err, "could not delete the corrupted object");
    }
    gateway_error(
        Code::DataLoss,
        "CRC64_MISMATCH",
        format!("{}; the object was deleted", err.message),
    )
}

/// One PutObject with the buffered bytes (all checks already passed).
async fn put_single(
    client: &Client,
    plan: &WritePlan,
    chunks: Vec<Bytes>,
    size: u64,
) -> Result<crate::oss::PutObjectOutput, Status> {
    let mut input = plan.object.clone();
    input.content_length = Some(size);
    let body = tokio_stream::iter(chunks.into_iter().map(Ok));
    match client.put_object(&input, body).await {
        Ok(out) => Ok(out),
        Err(err) if err.kind == OssErrorKind::ChecksumMismatch => {
            // Corrupted on the way: do not leave a wrong object presented as written.
            let target = ObjectId::new(input.bucket.clone(), input.key.clone());
            if let Err(delete_err) = client.delete_object(&target).await {
                warn!(bucket = %input.bucket, key = %input.key, error = %delete_err, "could not delete the corrupted object");
            }
            Err(gateway_error(
                Code::DataLoss,
                "CRC64_MISMATCH",
                format!("{}; the object was deleted", err.message),
            ))
        }
        Err(err) => Err(oss_status(err)),
    }
}

/// The Initiate request for an object's spec.
fn initiate_input(object: &PutObjectInput) -> InitiateMultipartUploadInput {
    InitiateMultipartUploadInput {
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        attributes: object.attributes.clone(),
    }
}

/// The tag policy holds for the tags the write gives the object (none given = an object
/// without tags), checked before any byte goes to OSS.
fn check_policy(policy: &CallPolicy, plan: &WritePlan) -> Result<(), Status> {
    let object = &plan.object;
    let (bucket, key) = (object.bucket.as_str(), object.key.as_str());
    policy.check("spec.tagging", bucket, key, &object.attributes.tags)
}

/// Validates a spec (with `first`'s checksums) into a plan.
fn plan(first: &proto::WriteObjectRequest) -> Result<WritePlan, Status> {
    let Some(spec) = first.spec.as_ref() else {
        return Err(invalid_field("spec", "is required in the first message"));
    };
    plan_spec(spec, first.object_checksums.as_ref())
}

fn plan_spec(
    spec: &proto::WriteObjectSpec,
    checksums: Option<&proto::ObjectChecksums>,
) -> Result<WritePlan, Status> {
    let mut v = Validation::new();
    let NewObject { target, attributes } = v.new_object("spec", spec.into());
    let object_size = match spec.object_size {
        None => Some(None),
        Some(size) if size < 0 || size as u64 > MAX_OBJECT_BYTES => {
            v.violation(
                "spec.object_size",
                format!("{size} is outside 0..={MAX_OBJECT_BYTES}"),
            );
            None
        }
        Some(size) => Some(Some(size as u64)),
    };
    let (expected_crc64, expected_md5) = checksums_of(&mut v, checksums);
    let condition = v.if_tags("spec.if_tags", &spec.if_tags);
    v.conclude((|| {
        let target = target?;
        let condition = condition?;
        let object_size = object_size?;
        let expected_md5 = expected_md5?;
        Some(WritePlan {
            object: PutObjectInput {
                bucket: target.bucket,
                key: target.key,
                content_length: object_size,
                // Given up front, OSS verifies the MD5 of a single PutObject too.
                content_md5: expected_md5,
                attributes: attributes?,
            },
            condition,
            object_size,
            expected_crc64,
            expected_md5,
        })
    })())
}

/// Reads `object_checksums`; the md5 must be 16 bytes when present.
fn checksums_of(
    v: &mut Validation,
    checksums: Option<&proto::ObjectChecksums>,
) -> (Option<u64>, Option<Option<[u8; 16]>>) {
    let Some(checksums) = checksums else {
        return (None, Some(None));
    };
    let md5 = if checksums.md5.is_empty() {
        Some(None)
    } else {
        match <[u8; 16]>::try_from(checksums.md5.as_ref()) {
            Ok(md5) => Some(Some(md5)),
            Err(_) => {
                v.violation(
                    "object_checksums.md5",
                    format!("is {} bytes; an MD5 is 16 bytes", checksums.md5.len()),
                );
                None
            }
        }
    };
    (checksums.crc64ecma, md5)
}
