//! WriteObject: the caller's stream becomes one PutObject whose body is fed while the chunks
//! arrive, so memory stays at a couple of chunks whatever the object size.
//!
//! Nothing half-written is ever stored: the newest chunk is held back until the next one
//! arrives, so the HTTP body cannot complete before `finish_write`, the size and every
//! checksum have been checked. Any problem (a bad offset, a checksum mismatch, a stream that
//! ends without `finish_write`, a cancelled call) aborts the HTTP body and OSS stores nothing.

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};
use tracing::warn;

use super::{
    convert::version_string,
    status::{gateway_error, invalid_field, oss_status},
    validate::Validation,
};
use crate::{
    model::Crc64,
    oss::{Client, ContentHeaders, ObjectId, OssErrorKind, PutObjectInput},
    proto,
};

/// The largest object a single PutObject may carry.
pub const MAX_PUT_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the caller asked for, validated from the first message.
struct WritePlan {
    input: PutObjectInput,
    object_size: Option<u64>,
    expected_crc64: Option<u64>,
    expected_md5: Option<[u8; 16]>,
}

/// What arrived, once the stream is complete and checked.
struct Received {
    size: u64,
    crc64: u64,
}

/// Why feeding the body stopped.
enum PumpError {
    /// The caller's stream was wrong or broke: the body was aborted.
    Caller(Status),
    /// The upload ended (OSS answered or failed) before the body was complete.
    UploadEnded,
}

pub async fn write(
    client: &Client,
    mut stream: Streaming<proto::WriteObjectRequest>,
) -> Result<proto::WriteObjectResponse, Status> {
    let first = stream.message().await?.ok_or_else(|| {
        invalid_field(
            "spec",
            "the stream was empty; the first message must carry spec",
        )
    })?;
    let plan = plan(&first)?;
    let bucket = plan.input.bucket.to_string();
    let key = plan.input.key.to_string();

    let (tx, rx) = mpsc::channel::<Result<Bytes, BoxError>>(2);
    let upload = client.put_object(&plan.input, ReceiverStream::new(rx));
    let pump = feed_body(first, &mut stream, tx, &plan);
    let (uploaded, pumped) = tokio::join!(upload, pump);

    let received = match pumped {
        Err(PumpError::Caller(status)) => return Err(status),
        Err(PumpError::UploadEnded) => {
            return Err(match uploaded {
                Err(err) => oss_status(err),
                Ok(_) => gateway_error(
                    Code::Internal,
                    "UPLOAD_ENDED_EARLY",
                    "OSS accepted the object before the stream was complete",
                ),
            });
        }
        Ok(received) => received,
    };
    let out = match uploaded {
        Ok(out) => out,
        Err(err) if err.kind == OssErrorKind::ChecksumMismatch => {
            // Corrupted on the way: do not leave a wrong object presented as written.
            warn!(%bucket, %key, error = %err, "CRC-64 mismatch after upload; deleting the object");
            let target = ObjectId::new(plan.input.bucket.clone(), plan.input.key.clone());
            if let Err(delete_err) = client.delete_object(&target).await {
                warn!(%bucket, %key, error = %delete_err, "could not delete the corrupted object");
            }
            return Err(gateway_error(
                Code::DataLoss,
                "CRC64_MISMATCH",
                format!("{}; the object was deleted", err.message),
            ));
        }
        Err(err) => return Err(oss_status(err)),
    };
    Ok(proto::WriteObjectResponse {
        bucket,
        key,
        etag: out.etag.unwrap_or_default(),
        version_id: version_string(out.version_id),
        crc64ecma: received.crc64,
        size: received.size as i64,
    })
}

/// Validates the first message into a plan.
fn plan(first: &proto::WriteObjectRequest) -> Result<WritePlan, Status> {
    let Some(spec) = first.spec.as_ref() else {
        return Err(invalid_field("spec", "is required in the first message"));
    };
    let mut v = Validation::new();
    let target = v.object_ref_at("spec", &spec.bucket, &spec.key, "");
    let tags = v.tagging("spec.tagging", spec.tagging.as_ref());
    let metadata = v.metadata("spec.metadata", &spec.metadata);
    let content_type = v.header_text("spec.content_type", &spec.content_type);
    let cache_control = v.header_text("spec.cache_control", &spec.cache_control);
    let content_disposition = v.header_text("spec.content_disposition", &spec.content_disposition);
    let content_encoding = v.header_text("spec.content_encoding", &spec.content_encoding);
    let expires = v.header_text("spec.expires", &spec.expires);
    let storage_class = v.storage_class("spec.storage_class", spec.storage_class);
    let acl = v.acl("spec.acl", spec.acl);
    let object_size = match spec.object_size {
        None => Some(None),
        Some(size) if size < 0 || size as u64 > MAX_PUT_OBJECT_BYTES => {
            v.violation(
                "spec.object_size",
                format!("{size} is outside 0..={MAX_PUT_OBJECT_BYTES}"),
            );
            None
        }
        Some(size) => Some(Some(size as u64)),
    };
    let (expected_crc64, expected_md5) = checksums(&mut v, first.object_checksums.as_ref());
    let plan = v.conclude((|| {
        let target = target?;
        let object_size = object_size?;
        let expected_md5 = expected_md5?;
        Some(WritePlan {
            input: PutObjectInput {
                bucket: target.bucket,
                key: target.key,
                content_length: object_size,
                // Given up front, OSS verifies the MD5 too.
                content_md5: expected_md5,
                content: ContentHeaders {
                    content_type: content_type?,
                    cache_control: cache_control?,
                    content_disposition: content_disposition?,
                    content_encoding: content_encoding?,
                    expires: expires?,
                },
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
    })())?;
    Ok(plan)
}

/// Reads `object_checksums`; the md5 must be 16 bytes when present.
fn checksums(
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

/// Feeds the caller's chunks into the HTTP body, checking offsets, size and checksums. On a
/// caller error it pushes an error into the body so the upload is aborted, not completed.
async fn feed_body(
    first: proto::WriteObjectRequest,
    stream: &mut Streaming<proto::WriteObjectRequest>,
    tx: mpsc::Sender<Result<Bytes, BoxError>>,
    plan: &WritePlan,
) -> Result<Received, PumpError> {
    let result = feed_checked(first, stream, &tx, plan).await;
    if let Err(PumpError::Caller(status)) = &result {
        let _ = tx
            .send(Err(format!("write aborted: {}", status.message()).into()))
            .await;
    }
    result
}

async fn feed_checked(
    first: proto::WriteObjectRequest,
    stream: &mut Streaming<proto::WriteObjectRequest>,
    tx: &mpsc::Sender<Result<Bytes, BoxError>>,
    plan: &WritePlan,
) -> Result<Received, PumpError> {
    let caller =
        |field: &str, description: String| PumpError::Caller(invalid_field(field, description));
    let limit = plan.object_size.unwrap_or(MAX_PUT_OBJECT_BYTES);
    let mut crc = Crc64::new();
    let mut md5 = Md5::new();
    let mut received: u64 = 0;
    let mut held: Option<Bytes> = None;
    let mut message = first;
    let mut is_first = true;
    let mut late_checksums = None;
    loop {
        if !is_first && message.spec.is_some() {
            return Err(caller(
                "spec",
                "only the first message may carry spec".into(),
            ));
        }
        if message.write_offset < 0 || message.write_offset as u64 != received {
            return Err(caller(
                "write_offset",
                format!(
                    "{} does not match the {received} bytes received so far",
                    message.write_offset
                ),
            ));
        }
        let data = message.data;
        let total = received.saturating_add(data.len() as u64);
        if total > limit {
            let why = match plan.object_size {
                Some(size) => format!("more than the declared spec.object_size of {size} bytes"),
                None => format!("more than {MAX_PUT_OBJECT_BYTES} bytes, the single-upload limit"),
            };
            return Err(caller("data", format!("the stream carries {why}")));
        }
        crc.update(&data);
        if plan.expected_md5.is_some() || message.object_checksums.is_some() {
            md5.update(&data);
        }
        received = total;
        if message.object_checksums.is_some() && !is_first {
            if !message.finish_write {
                return Err(caller(
                    "object_checksums",
                    "may only be sent on the first or the last message".into(),
                ));
            }
            late_checksums = message.object_checksums.take();
        }
        if message.finish_write {
            check_complete(plan, received, &crc, md5, late_checksums.as_ref())?;
            for chunk in held
                .take()
                .into_iter()
                .chain((!data.is_empty()).then_some(data))
            {
                tx.send(Ok(chunk))
                    .await
                    .map_err(|_| PumpError::UploadEnded)?;
            }
            return Ok(Received {
                size: received,
                crc64: crc.value(),
            });
        }
        // Hold back the newest chunk: the body must not be complete before finish_write.
        if !data.is_empty()
            && let Some(previous) = held.replace(data)
        {
            tx.send(Ok(previous))
                .await
                .map_err(|_| PumpError::UploadEnded)?;
        }
        message = match stream.message().await {
            Ok(Some(next)) => next,
            Ok(None) => {
                return Err(caller(
                    "finish_write",
                    format!(
                        "the stream ended after {received} bytes without finish_write; nothing was written"
                    ),
                ));
            }
            Err(status) => return Err(PumpError::Caller(status)),
        };
        is_first = false;
    }
}

/// Checks the declared size and every checksum the caller sent against what arrived.
fn check_complete(
    plan: &WritePlan,
    received: u64,
    crc: &Crc64,
    md5: Md5,
    late: Option<&proto::ObjectChecksums>,
) -> Result<(), PumpError> {
    let caller =
        |field: &str, description: String| PumpError::Caller(invalid_field(field, description));
    if let Some(size) = plan.object_size
        && size != received
    {
        return Err(caller(
            "spec.object_size",
            format!("declared {size} bytes but the stream carried {received}"),
        ));
    }
    let expected_crc = late.and_then(|c| c.crc64ecma).or(plan.expected_crc64);
    if let Some(expected) = expected_crc
        && expected != crc.value()
    {
        return Err(caller(
            "object_checksums.crc64ecma",
            format!(
                "{expected} does not match the data received (CRC-64 {})",
                crc.value()
            ),
        ));
    }
    let late_md5 = match late.map(|c| c.md5.as_ref()) {
        Some(bytes) if !bytes.is_empty() => Some(<[u8; 16]>::try_from(bytes).map_err(|_| {
            caller(
                "object_checksums.md5",
                format!("is {} bytes; an MD5 is 16 bytes", bytes.len()),
            )
        })?),
        _ => None,
    };
    if let Some(expected) = late_md5.or(plan.expected_md5) {
        let actual: [u8; 16] = md5.finalize().into();
        if expected != actual {
            return Err(caller(
                "object_checksums.md5",
                format!(
                    "{} does not match the data received (MD5 {})",
                    hex::encode(expected),
                    hex::encode(actual)
                ),
            ));
        }
    }
    Ok(())
}
