//! HeadObject, ReadObject and DeleteObject.

use std::pin::Pin;

use bytes::BytesMut;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{
    convert::{self, version_string},
    status::oss_status,
    tag_write,
    validate::Validation,
};
use crate::{
    config::READ_CHUNK_BYTES,
    lock::TagWriteLock,
    oss::{ByteRange, Client, GetObjectInput, GetObjectOutput, ObjectId},
    proto,
};

/// The response stream of ReadObject.
pub type ReadObjectStream =
    Pin<Box<dyn Stream<Item = Result<proto::ReadObjectResponse, Status>> + Send>>;

pub async fn head(
    client: &Client,
    req: proto::HeadObjectRequest,
) -> Result<proto::HeadObjectResponse, Status> {
    let mut v = Validation::new();
    let target = v.object_ref(&req.bucket, &req.key, &req.version_id);
    let condition = v.if_tags("if_tags", &req.if_tags);
    let (target, condition) = v.conclude(target.zip(condition))?;
    if let Some(condition) = &condition {
        condition.check_current(client, &target).await?;
    }
    let head = client.head_object(&target).await.map_err(oss_status)?;
    Ok(proto::HeadObjectResponse {
        metadata: Some(convert::object_metadata(
            target.bucket.as_str(),
            target.key.as_str(),
            head,
        )),
    })
}

/// DeleteObject. With `if_tags`, the condition is checked and the object deleted under its
/// tag-write lock, so no tag write through ossgate changes the tags in between.
pub async fn delete(
    client: &Client,
    locks: &dyn TagWriteLock,
    req: proto::DeleteObjectRequest,
) -> Result<proto::DeleteObjectResponse, Status> {
    let mut v = Validation::new();
    let target = v.object_ref(&req.bucket, &req.key, &req.version_id);
    let condition = v.if_tags("if_tags", &req.if_tags);
    let (target, condition) = v.conclude(target.zip(condition))?;
    let held = match &condition {
        Some(condition) => {
            let held = tag_write::acquire(locks, &target).await?;
            condition.check_current(client, &target).await?;
            tag_write::ensure_held(&held)?;
            Some(held)
        }
        None => None,
    };
    let out = client.delete_object(&target).await.map_err(oss_status);
    if let Some(held) = held {
        held.release().await;
    }
    let out = out?;
    Ok(proto::DeleteObjectResponse {
        version_id: version_string(out.version_id),
        delete_marker: out.delete_marker,
    })
}

pub async fn read(
    client: &Client,
    req: proto::ReadObjectRequest,
) -> Result<ReadObjectStream, Status> {
    let mut v = Validation::new();
    let target = v.object_ref(&req.bucket, &req.key, &req.version_id);
    let offset = match req.read_offset {
        Some(offset) if offset < 0 => {
            v.violation("read_offset", format!("{offset} is negative"));
            None
        }
        offset => Some(offset.unwrap_or(0) as u64),
    };
    let limit = match req.read_limit {
        Some(limit) if limit < 0 => {
            v.violation("read_limit", format!("{limit} is negative"));
            None
        }
        limit => Some(limit.map(|l| l as u64)),
    };
    let condition = v.if_tags("if_tags", &req.if_tags);
    let ((target, (offset, limit)), condition) =
        v.conclude((|| Some(((target?, (offset?, limit?)), condition?)))())?;
    // Checked just before the read: a tag change between the two is not seen.
    if let Some(condition) = &condition {
        condition.check_current(client, &target).await?;
    }

    if limit == Some(0) {
        // Nothing to read: answer with the metadata alone.
        let head = client.head_object(&target).await.map_err(oss_status)?;
        let first = proto::ReadObjectResponse {
            data: Default::default(),
            metadata: Some(convert::object_metadata(
                target.bucket.as_str(),
                target.key.as_str(),
                head,
            )),
        };
        return Ok(Box::pin(tokio_stream::once(Ok(first))));
    }

    let range = (offset > 0 || limit.is_some()).then(|| ByteRange {
        start: offset,
        end: limit.map(|l| offset.saturating_add(l) - 1),
    });
    let ObjectId {
        bucket,
        key,
        version_id,
    } = target.clone();
    let GetObjectOutput { head, mut body, .. } = client
        .get_object(&GetObjectInput {
            bucket,
            key,
            version_id,
            range,
        })
        .await
        .map_err(oss_status)?;
    let mut metadata = Some(convert::object_metadata(
        target.bucket.as_str(),
        target.key.as_str(),
        head,
    ));

    // A small task forwards coalesced chunks; when the caller goes away the send fails,
    // the task ends and the OSS response is dropped.
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        let mut buffer = BytesMut::new();
        loop {
            let next = body.next().await;
            let done = match next {
                Some(Ok(bytes)) => {
                    buffer.extend_from_slice(&bytes);
                    false
                }
                Some(Err(err)) => {
                    let _ = tx.send(Err(oss_status(err))).await;
                    return;
                }
                None => true,
            };
            while buffer.len() >= READ_CHUNK_BYTES
                || (done && (!buffer.is_empty() || metadata.is_some()))
            {
                let take = buffer.len().min(READ_CHUNK_BYTES);
                crate::telemetry::metrics().add_rpc_bytes("ReadObject", "out", take as u64);
                let message = proto::ReadObjectResponse {
                    data: buffer.split_to(take).freeze(),
                    metadata: metadata.take(),
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            if done {
                return;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}
