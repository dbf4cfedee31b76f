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

use crate::oss::protocol::limit::{MAX_OBJECT_BYTES, MAX_PART_NUMBER};
use std::time::Instant;

use bytes::Bytes;
use md5::{Digest, Md5};
use tonic::{Code, Status, Streaming};
use tracing::{info, warn};

use super::{
    UploadConfig,
    audit::{Trail, tags_json},
    auth::Access,
    check_write,
    convert::version_string,
    has_tags,
    status::{gateway_error, invalid_field, oss_status},
    upload_token::ResumableUpload,
    validate::{NewObject, Validation},
};
use crate::{
    model::{BucketName, Crc64, ObjectAcl, ObjectKey, crc64_combine},
    oss::{
        Client, CompleteMultipartUploadInput, CompleteParts, InitiateMultipartUploadInput,
        MultipartUploadId, ObjectId, OssError, OssErrorKind, PutObjectInput,
        upload::{
            MultipartWriter, Reservation, StoredPart, UploadOptions, abort_upload, initiate_upload,
            plan_part_size, working_set,
        },
    },
    proto,
};

/// What the caller asked for, validated from the first message.
struct WritePlan {
    object: PutObjectInput,
    object_size: Option<u64>,
    expected_crc64: Option<u64>,
    expected_md5: Option<[u8; 16]>,
}

/// A message's `write_offset`, which may not be negative.
fn write_offset(offset: i64) -> Result<u64, Status> {
    u64::try_from(offset)
        .map_err(|_| invalid_field("write_offset", format!("{offset} is negative")))
}

/// Checks each message of a stream (offsets, size, checksums) and keeps the running CRC.
struct Intake {
    expected_offset: u64,
    limit: u64,
    object_size: Option<u64>,
    crc: Crc64,
    md5: Option<Md5>,
    expected_crc64: Option<u64>,
    expected_md5: Option<[u8; 16]>,
    first: bool,
}

/// One message's worth of checked data.
struct Accepted {
    data: Bytes,
    finish: bool,
}

impl Intake {
    fn new(plan_size: Option<u64>, crc: Option<u64>, md5: Option<[u8; 16]>, start: u64) -> Self {
        Self {
            expected_offset: start,
            limit: plan_size.unwrap_or(MAX_OBJECT_BYTES),
            object_size: plan_size,
            crc: Crc64::new(),
            md5: md5.map(|_| Md5::new()),
            expected_crc64: crc,
            expected_md5: md5,
            first: true,
        }
    }

    /// Checks one message; returns its data (with bytes before `skip_until` dropped).
    fn accept(
        &mut self,
        mut message: proto::WriteObjectRequest,
        skip_until: u64,
    ) -> Result<Accepted, Status> {
        if !self.first && (message.spec.is_some() || !message.upload_id.is_empty()) {
            return Err(invalid_field(
                "spec",
                "only the first message may carry spec or upload_id",
            ));
        }
        let offset = write_offset(message.write_offset)?;
        if offset != self.expected_offset {
            return Err(invalid_field(
                "write_offset",
                format!(
                    "{offset} does not match the {} bytes received so far",
                    self.expected_offset
                ),
            ));
        }
        let mut data = std::mem::take(&mut message.data);
        crate::telemetry::metrics().add_rpc_bytes("WriteObject", "in", data.len() as u64);
        let end = offset.saturating_add(data.len() as u64);
        if end > self.limit {
            let why = match self.object_size {
                Some(size) => format!("more than the declared object_size of {size} bytes"),
                None => format!("more than {MAX_OBJECT_BYTES} bytes, OSS's object size limit"),
            };
            return Err(invalid_field("data", format!("the stream carries {why}")));
        }
        self.expected_offset = end;
        if offset < skip_until {
            // A resumed write may resend bytes OSS already has: drop them.
            let skip = (skip_until - offset).min(data.len() as u64) as usize;
            let _ = data.split_to(skip);
        }
        self.crc.update(&data);
        if let Some(md5) = &mut self.md5 {
            md5.update(&data);
        }
        if let Some(checksums) = message.object_checksums.take() {
            if !self.first && !message.finish_write {
                return Err(invalid_field(
                    "object_checksums",
                    "may only be sent on the first or the last message",
                ));
            }
            if !self.first {
                self.late_checksums(&checksums)?;
            }
        }
        self.first = false;
        Ok(Accepted {
            data,
            finish: message.finish_write,
        })
    }

    /// Checksums that arrive with the last message.
    fn late_checksums(&mut self, checksums: &proto::ObjectChecksums) -> Result<(), Status> {
        if let Some(crc) = checksums.crc64ecma {
            self.expected_crc64 = Some(crc);
        }
        if !checksums.md5.is_empty() {
            let md5 = <[u8; 16]>::try_from(checksums.md5.as_ref()).map_err(|_| {
                invalid_field(
                    "object_checksums.md5",
                    format!("is {} bytes; an MD5 is 16 bytes", checksums.md5.len()),
                )
            })?;
            if self.md5.is_none() {
                return Err(invalid_field(
                    "object_checksums.md5",
                    "an MD5 must be announced on the first message to be checked",
                ));
            }
            self.expected_md5 = Some(md5);
        }
        Ok(())
    }

    /// At `finish_write`: the declared size and the caller's checksums against what arrived.
    /// `prefix` is the CRC and length of bytes stored before this stream (resumed writes).
    fn check_complete(&mut self, prefix: Option<(u64, u64)>) -> Result<(u64, u64), Status> {
        let (prefix_crc, prefix_len) = prefix.unwrap_or((0, 0));
        let stream_len = self
            .expected_offset
            .saturating_sub(prefix_len.min(self.expected_offset));
        let size = prefix_len.max(self.expected_offset);
        if let Some(declared) = self.object_size
            && declared != size
        {
            return Err(invalid_field(
                "spec.object_size",
                format!("declared {declared} bytes but the stream carried {size}"),
            ));
        }
        let crc = crc64_combine(prefix_crc, self.crc.value(), stream_len);
        if let Some(expected) = self.expected_crc64
            && expected != crc
        {
            return Err(invalid_field(
                "object_checksums.crc64ecma",
                format!("{expected} does not match the data received (CRC-64 {crc})"),
            ));
        }
        if let (Some(expected), Some(md5)) = (self.expected_md5, self.md5.take()) {
            let actual: [u8; 16] = md5.finalize().into();
            if expected != actual {
                return Err(invalid_field(
                    "object_checksums.md5",
                    format!(
                        "{} does not match the data received (MD5 {})",
                        hex::encode(expected),
                        hex::encode(actual)
                    ),
                ));
            }
        }
        Ok((size, crc))
    }
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
    access: &Access,
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
        return resume(client, config, access, trail, first, stream).await;
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
            if !object.forbid_overwrite {
                let target = ObjectId::new(object.bucket.clone(), object.key.clone());
                trail.read_before(client, &target).await;
            }
            let out = put_single(client, &plan, buffered, size).await;
            drop(reservation);
            let out = out?;
            trail.request_id(out.request_id.as_deref());
            if object.forbid_overwrite && out.version_id.is_none() {
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
            complete(
                writer,
                &plan.object.bucket,
                &plan.object.key,
                plan.object.acl,
                plan.object.forbid_overwrite,
                intake,
                None,
                trail,
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
/// An audited write reads the tags before just ahead of the completion.
#[allow(clippy::too_many_arguments)]
async fn complete(
    writer: MultipartWriter,
    bucket: &BucketName,
    key: &ObjectKey,
    acl: Option<ObjectAcl>,
    forbid_overwrite: bool,
    mut intake: Intake,
    prefix: Option<(u64, u64)>,
    trail: &mut Trail,
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
    if !forbid_overwrite {
        let target = ObjectId::new(bucket.clone(), key.clone());
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
        content: object.content.clone(),
        metadata: object.metadata.clone(),
        tags: object.tags.clone(),
        storage_class: object.storage_class,
        acl: object.acl,
        forbid_overwrite: object.forbid_overwrite,
    }
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
    let NewObject {
        target,
        tags,
        metadata,
        content,
        storage_class,
        acl,
    } = v.new_object("spec", spec.into());
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
    v.conclude((|| {
        let target = target?;
        let object_size = object_size?;
        let expected_md5 = expected_md5?;
        Some(WritePlan {
            object: PutObjectInput {
                bucket: target.bucket,
                key: target.key,
                content_length: object_size,
                // Given up front, OSS verifies the MD5 of a single PutObject too.
                content_md5: expected_md5,
                content: content?,
                metadata: metadata?,
                tags: tags?.unwrap_or_default(),
                storage_class: storage_class?,
                acl: acl?,
                forbid_overwrite: spec.forbid_overwrite,
            },
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

// ------------------------------------------------------------------ resumable writes

/// StartResumableWrite: validates the spec, starts the multipart upload (tags and metadata
/// go on the initiate) and returns its opaque id.
///
/// Until the id is returned, nobody but this call knows the upload: if the call ends first
/// (deadline, cancel), the upload is aborted, even when OSS answers the Initiate only after
/// the call is gone. Once returned, the upload is the caller's to resume or abandon.
pub async fn start_resumable(
    client: &Client,
    config: &UploadConfig,
    req: proto::StartResumableWriteRequest,
) -> Result<proto::StartResumableWriteResponse, Status> {
    let Some(spec) = req.spec.as_ref() else {
        return Err(invalid_field("spec", "is required"));
    };
    let plan = plan_spec(spec, None)?;
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
        forbid_overwrite: plan.object.forbid_overwrite,
        acl: plan.object.acl.map(|a| a.as_str().to_string()),
        tags: plan.object.tags.clone().into_map(),
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
async fn resume(
    client: &Client,
    config: &UploadConfig,
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
        &id.bucket,
        &id.key,
        acl,
        upload.forbid_overwrite,
        intake,
        Some((prefix_crc, persisted)),
        trail,
    )
    .await;
    if result.is_ok() {
        info!(bucket = %id.bucket, key = %id.key, "resumable write complete");
    }
    result
}
