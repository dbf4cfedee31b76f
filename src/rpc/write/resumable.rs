//! Resumable writes: StartResumableWrite starts a multipart upload and returns an opaque id
//! for it; WriteObject streams with that id add parts (skipping bytes OSS already has) and
//! complete it; QueryWriteStatus says how much is stored; AbortResumableWrite drops it. A
//! failure keeps what is stored, so the caller can resume from QueryWriteStatus.

use std::time::Instant;

use tonic::{Status, Streaming};
use tracing::info;

use super::intake::{Intake, write_offset};
use super::{
    StreamEnd, admit, check_policy, complete, end_of_stream, feed_multipart, initiate_input,
    plan_spec,
};
use crate::model::{BucketName, ObjectAcl, ObjectKey, crc64_combine};
use crate::oss::protocol::limit::MAX_PART_NUMBER;
use crate::oss::upload::{
    MultipartWriter, StoredPart, UploadOptions, initiate_upload, plan_part_size,
};
use crate::oss::{Client, MultipartUploadId};
use crate::proto;
use crate::rpc::{
    UploadConfig,
    audit::{Trail, tags_json},
    auth::Access,
    check_write,
    status::{invalid_field, oss_status},
    tag_policy::CallPolicy,
    upload_token::ResumableUpload,
};

/// StartResumableWrite: validates the spec, starts the multipart upload (tags and metadata
/// go on the initiate) and returns its opaque id.
///
/// Until the id is returned, nobody but this call knows the upload: if the call ends first
/// (deadline, cancel), the upload is aborted, even when OSS answers the Initiate only after
/// the call is gone. Once returned, the upload is the caller's to resume or abandon.
pub async fn start_resumable(
    client: &Client,
    config: &UploadConfig,
    policy: &CallPolicy,
    req: proto::StartResumableWriteRequest,
) -> Result<proto::StartResumableWriteResponse, Status> {
    let Some(spec) = req.spec.as_ref() else {
        return Err(invalid_field("spec", "is required"));
    };
    if !spec.if_tags.is_empty() {
        return Err(invalid_field(
            "spec.if_tags",
            "is not supported on resumable writes; check the condition with HeadObject's if_tags",
        ));
    }
    let plan = plan_spec(spec, None)?;
    // The tags go on the Initiate: checked once, here, before the upload exists.
    check_policy(policy, &plan)?;
    let part_size = plan_part_size(plan.object_size, config.options.part_size);
    let (initiated, mut guard) = initiate_upload(client, &initiate_input(&plan.object))
        .await
        .map_err(oss_status)?;
    let upload = initiated.upload;
    if crate::oss::retry::deadline().is_some_and(|deadline| Instant::now() >= deadline) {
        // OSS answered after the call's deadline: the caller is about to give up, and an id
        // it never receives would leave the upload behind. The guard aborts it.
        return Err(Status::deadline_exceeded(
            "the call's deadline passed before OSS answered InitiateMultipartUpload; the \
             upload is aborted",
        ));
    }
    let token = config.tokens.issue(&ResumableUpload {
        bucket: upload.bucket.to_string(),
        key: upload.key.to_string(),
        upload_id: upload.upload_id.clone(),
        part_size,
        object_size: plan.object_size,
        forbid_overwrite: plan.object.attributes.forbid_overwrite,
        acl: plan.object.attributes.acl.map(|a| a.as_str().to_string()),
        tags: plan.object.attributes.tags.clone().into_map(),
    });
    info!(bucket = %upload.bucket, key = %upload.key, part_size, "resumable write started");
    // The id goes to the caller with this answer: from here the upload lives on.
    guard.disarm();
    Ok(proto::StartResumableWriteResponse { upload_id: token })
}

/// Opens a resumable-write id into the upload it names.
fn open_token(
    config: &UploadConfig,
    token: &str,
) -> Result<(ResumableUpload, MultipartUploadId), Status> {
    let upload = config
        .tokens
        .open(token)
        .map_err(|err| invalid_field("upload_id", err.to_string()))?;
    let (Ok(bucket), Ok(key)) = (
        BucketName::parse(&upload.bucket),
        ObjectKey::parse(&upload.key),
    ) else {
        return Err(invalid_field("upload_id", "names an invalid object"));
    };
    let id = MultipartUploadId {
        bucket,
        key,
        upload_id: upload.upload_id.clone(),
    };
    Ok((upload, id))
}

/// The parts a resumed write can keep: 1, 2, ... each exactly one part long.
async fn persisted_parts(
    client: &Client,
    upload: &ResumableUpload,
    id: &MultipartUploadId,
) -> Result<Vec<StoredPart>, Status> {
    let mut parts = client.list_all_parts(id).await.map_err(|err| {
        if err.is_not_found() {
            Status::not_found(
                "the resumable write is finished or was aborted (OSS no longer knows its upload)",
            )
        } else {
            oss_status(err)
        }
    })?;
    parts.sort_by_key(|p| p.part_number);
    let mut kept = Vec::new();
    for (index, part) in parts.into_iter().enumerate() {
        let (Some(crc64), true, true) = (
            part.crc64,
            part.part_number as usize == index + 1,
            part.size == upload.part_size,
        ) else {
            break;
        };
        kept.push(StoredPart {
            part_number: part.part_number,
            etag: part.etag,
            size: part.size,
            crc64,
        });
    }
    Ok(kept)
}

/// QueryWriteStatus (needs `write` on the upload's object).
pub async fn query_status(
    client: &Client,
    config: &UploadConfig,
    access: &Access,
    req: proto::QueryWriteStatusRequest,
) -> Result<proto::QueryWriteStatusResponse, Status> {
    let (upload, id) = open_token(config, &req.upload_id)?;
    check_write(access, &upload.bucket, &upload.key, false)?;
    let parts = persisted_parts(client, &upload, &id).await?;
    let persisted: u64 = parts.iter().map(|p| p.size).sum();
    Ok(proto::QueryWriteStatusResponse {
        persisted_size: persisted as i64,
    })
}

/// AbortResumableWrite (needs `write` on the upload's object).
pub async fn abort_resumable(
    client: &Client,
    config: &UploadConfig,
    access: &Access,
    req: proto::AbortResumableWriteRequest,
) -> Result<proto::AbortResumableWriteResponse, Status> {
    let (upload, id) = open_token(config, &req.upload_id)?;
    check_write(access, &upload.bucket, &upload.key, false)?;
    client
        .abort_multipart_upload(&id)
        .await
        .map_err(oss_status)?;
    info!(bucket = %id.bucket, key = %id.key, "resumable write aborted");
    Ok(proto::AbortResumableWriteResponse {})
}

/// A resumable stream closed without `finish_write`: the parts still uploading finish (they
/// are not cancelled), bytes short of a whole part are dropped, and the answer is the
/// persisted size the next stream resumes from. The upload is kept.
async fn persisted_so_far(
    mut writer: MultipartWriter,
) -> Result<proto::WriteObjectResponse, Status> {
    if let Err(err) = writer.flush().await {
        writer.suspend().await;
        return Err(oss_status(err));
    }
    let persisted = writer.stored_bytes();
    let upload = writer.upload();
    info!(bucket = %upload.bucket, key = %upload.key, persisted, "resumable stream closed without finish_write; the upload is kept");
    Ok(proto::WriteObjectResponse {
        persisted_size: Some(persisted as i64),
        ..Default::default()
    })
}

/// WriteObject continuing a resumable write: bytes OSS already has are skipped, the rest
/// becomes further parts, and `finish_write` completes the upload. A failure keeps what is
/// stored so the caller can resume again. Needs `write` on the object, and `tag` when
/// StartResumableWrite set tags (they are applied, and audited, at completion).
pub(super) async fn resume(
    client: &Client,
    config: &UploadConfig,
    locks: &dyn crate::lock::TagWriteLock,
    access: &Access,
    trail: &mut Trail,
    mut first: proto::WriteObjectRequest,
    mut stream: Streaming<proto::WriteObjectRequest>,
) -> Result<proto::WriteObjectResponse, Status> {
    let (upload, id) = open_token(config, &first.upload_id)?;
    let tagged = !upload.tags.is_empty();
    if tagged {
        let tags = tags_json(&upload.tags);
        trail.begin("WriteObject", &upload.bucket, &upload.key, tags);
    }
    check_write(access, &upload.bucket, &upload.key, tagged)?;
    if first
        .object_checksums
        .as_ref()
        .is_some_and(|c| !c.md5.is_empty())
    {
        return Err(invalid_field(
            "object_checksums.md5",
            "is not supported for resumable writes (the bytes span several streams); use crc64ecma",
        ));
    }
    let stored = persisted_parts(client, &upload, &id).await?;
    let persisted: u64 = stored.iter().map(|p| p.size).sum();
    let start = write_offset(first.write_offset)?;
    if start > persisted {
        return Err(invalid_field(
            "write_offset",
            format!(
                "{start} is beyond the {persisted} bytes persisted; resume at or before it (QueryWriteStatus)"
            ),
        ));
    }
    if stored.len() as u64 >= u64::from(MAX_PART_NUMBER) {
        return Err(invalid_field(
            "upload_id",
            "the upload already has 10,000 parts",
        ));
    }
    let prefix_crc = stored
        .iter()
        .fold(0, |crc, p| crc64_combine(crc, p.crc64, p.size));
    let expected_crc = first.object_checksums.take().and_then(|c| c.crc64ecma);
    let mut intake = Intake::new(upload.object_size, expected_crc, None, start);
    // The running CRC covers only bytes after what OSS holds.
    let acl = upload.acl.as_deref().and_then(ObjectAcl::parse);
    let options = UploadOptions {
        part_size: upload.part_size,
        ..config.options.clone()
    };
    // Two parts, however little remains: the writer fills whole part buffers.
    let reservation = admit(config, upload.part_size, None)?;
    let mut writer = MultipartWriter::new(client.clone(), id.clone(), options, stored, reservation);
    let accepted = match intake.accept(first, persisted) {
        Ok(accepted) => accepted,
        Err(status) => return Err(status),
    };
    let fed = async {
        if !accepted.data.is_empty() {
            writer.write(accepted.data).await.map_err(oss_status)?;
        }
        if accepted.finish {
            end_of_stream(&mut stream).await?;
            return Ok(StreamEnd::Finished);
        }
        feed_multipart(
            &mut writer,
            &mut intake,
            Vec::new(),
            &mut stream,
            Some(persisted),
        )
        .await
    }
    .await;
    match fed {
        Ok(StreamEnd::Finished) => {}
        Ok(StreamEnd::Closed) => return persisted_so_far(writer).await,
        Err(status) => {
            // Keep what OSS stored: the caller resumes from QueryWriteStatus.
            writer.suspend().await;
            return Err(status);
        }
    }
    let result = complete(
        writer,
        acl,
        upload.forbid_overwrite,
        intake,
        Some((prefix_crc, persisted)),
        trail,
        tagged.then_some(locks),
        None,
    )
    .await;
    if result.is_ok() {
        info!(bucket = %id.bucket, key = %id.key, "resumable write complete");
    }
    result
}
