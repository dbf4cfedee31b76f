//! Multipart and resumable writes, appends, faults and cancellation: the heavy path.

use std::time::Duration;

use bytes::Bytes;
use ossgate::{
    emulator::{Fault, FaultKind, FaultOp},
    model::crc64,
    proto,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic_types::StatusExt;

use crate::common::*;

/// The smallest part OSS allows, so a few hundred KiB make a multipart upload.
const PART: usize = 128 * 1024;

async fn multipart_stack() -> Stack {
    Stack::start_with(StackOptions {
        settings: vec![
            ("OSSGATE_UPLOAD__PART_SIZE_BYTES", PART.to_string()),
            ("OSSGATE_UPLOAD__PARALLELISM", "3".into()),
        ],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_stream_larger_than_a_part_becomes_a_tagged_multipart_object() {
    let stack = multipart_stack().await;
    let mut client = stack.client.clone();
    let data = pseudo_random(8 * PART + 12_345, 1);
    let mut s = spec(BUCKET, "multi/part.bin");
    s.tagging = Some(tags(&[("kind", "multipart"), ("path", "a/b:c=d+e")]));
    s.metadata = [("owner".to_string(), "alice".to_string())].into();
    // Chunks that do not line up with parts.
    let written = write_chunks(&mut client, s, &data, 50_001).await.unwrap();
    assert_eq!(written.size as usize, data.len());
    assert_eq!(written.crc64ecma, crc64(&data));

    let head = try_head(&stack, BUCKET, "multi/part.bin").await.unwrap();
    assert_eq!(head.object_type, proto::ObjectType::Multipart as i32);
    assert_eq!(head.tag_count, 2);
    assert_eq!(head.crc64ecma, Some(crc64(&data)));
    assert_eq!(
        head.metadata.get("owner").map(String::as_str),
        Some("alice")
    );
    assert!(read_all(&stack, BUCKET, "multi/part.bin", "").await == data);
    assert_eq!(
        stack.emulator.faults().count(FaultOp::UploadPart),
        9,
        "8 full parts and a short last one"
    );
    stack.assert_no_leftover_uploads().await;
    stack.stop().await;
}

#[tokio::test]
async fn injected_part_failures_are_retried() {
    let stack = multipart_stack().await;
    let mut client = stack.client.clone();
    stack.emulator.faults().inject(Fault {
        op: FaultOp::UploadPart,
        kind: FaultKind::Status(503, "ServiceUnavailable"),
        times: 1,
    });
    stack.emulator.faults().inject(Fault {
        op: FaultOp::UploadPart,
        kind: FaultKind::DropConnection,
        times: 1,
    });
    let data = pseudo_random(5 * PART, 2);
    let written = write_chunks(&mut client, spec(BUCKET, "retried.bin"), &data, 64 * 1024)
        .await
        .expect("part failures are retried");
    assert_eq!(written.crc64ecma, crc64(&data));
    assert!(read_all(&stack, BUCKET, "retried.bin", "").await == data);
    // Two parts needed a second attempt (the client makes at most three per part).
    assert_eq!(stack.emulator.faults().count(FaultOp::UploadPart), 5 + 2);
    stack.assert_no_leftover_uploads().await;
    stack.stop().await;
}

#[tokio::test]
async fn a_failed_or_cancelled_multipart_write_leaves_nothing_behind() {
    let stack = multipart_stack().await;
    let mut client = stack.client.clone();

    // Parts fail for good: the write fails and its upload is aborted.
    stack.emulator.faults().inject(Fault {
        op: FaultOp::UploadPart,
        kind: FaultKind::Status(503, "ServiceUnavailable"),
        times: 1000,
    });
    let data = pseudo_random(4 * PART, 3);
    let status = write_chunks(&mut client, spec(BUCKET, "doomed.bin"), &data, 64 * 1024)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    stack.emulator.faults().clear();
    stack.assert_no_leftover_uploads().await;
    assert!(try_head(&stack, BUCKET, "doomed.bin").await.is_none());

    // A wrong CRC on the last message: nothing is completed, the upload is aborted.
    let mut messages = Vec::new();
    for (i, piece) in data.chunks(PART).enumerate() {
        messages.push(proto::WriteObjectRequest {
            spec: (i == 0).then(|| spec(BUCKET, "bad-crc.bin")),
            write_offset: (i * PART) as i64,
            data: Bytes::copy_from_slice(piece),
            finish_write: (i + 1) * PART >= data.len(),
            object_checksums: ((i + 1) * PART >= data.len()).then(|| proto::ObjectChecksums {
                crc64ecma: Some(crc64(&data) ^ 1),
                md5: Bytes::new(),
            }),
            ..Default::default()
        });
    }
    let status = client
        .write_object(tokio_stream::iter(messages))
        .await
        .unwrap_err();
    assert_invalid(&status, "object_checksums.crc64ecma");
    stack.assert_no_leftover_uploads().await;
    assert!(try_head(&stack, BUCKET, "bad-crc.bin").await.is_none());

    // The caller goes away mid-stream: the upload is aborted.
    let (tx, rx) = mpsc::channel(8);
    for (i, piece) in data.chunks(PART).take(3).enumerate() {
        tx.send(proto::WriteObjectRequest {
            spec: (i == 0).then(|| spec(BUCKET, "cancelled.bin")),
            write_offset: (i * PART) as i64,
            data: Bytes::copy_from_slice(piece),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let mut cancelling = stack.client.clone();
    let call = tokio::spawn(async move { cancelling.write_object(ReceiverStream::new(rx)).await });
    for _ in 0..50 {
        if !stack.emulator.open_uploads().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !stack.emulator.open_uploads().is_empty(),
        "the upload started"
    );
    call.abort();
    drop(tx);
    stack.assert_no_leftover_uploads().await;
    assert!(try_head(&stack, BUCKET, "cancelled.bin").await.is_none());
    stack.stop().await;
}

/// The messages of a resumable stream: `data` from `start` in `piece`-byte messages, the
/// first naming `upload_id`, the last with `finish_write` when `finish`.
fn resumable_messages(
    upload_id: &str,
    data: &[u8],
    start: usize,
    piece: usize,
    finish: bool,
) -> Vec<proto::WriteObjectRequest> {
    let pieces: Vec<&[u8]> = data[start..].chunks(piece).collect();
    let count = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| proto::WriteObjectRequest {
            upload_id: if i == 0 {
                upload_id.into()
            } else {
                String::new()
            },
            write_offset: (start + i * piece) as i64,
            data: Bytes::copy_from_slice(bytes),
            finish_write: finish && i + 1 == count,
            ..Default::default()
        })
        .collect()
}

/// Issue 11 point 11: a resumable stream that ends without finish_write right after its last
/// chunk used to cancel the parts still uploading and answer "nothing was written". As GCS
/// does, the parts finish and the answer is the persisted size; the write resumes from it.
#[tokio::test]
async fn a_resumable_stream_that_ends_unfinished_answers_the_persisted_size() {
    let stack = multipart_stack().await;
    let mut client = stack.client.clone();
    let data = pseudo_random(5 * PART + 999, 9);
    let upload_id = client
        .start_resumable_write(proto::StartResumableWriteRequest {
            spec: Some(spec(BUCKET, "ended.bin")),
        })
        .await
        .unwrap()
        .into_inner()
        .upload_id;
    // Parts are slow to store, so the last ones are still uploading when the stream ends.
    stack.emulator.faults().inject(Fault {
        op: FaultOp::UploadPart,
        kind: FaultKind::Delay(Duration::from_millis(300)),
        times: 3,
    });
    // 3 whole parts and half of the 4th, then the caller closes its side.
    let sent = 3 * PART + PART / 2;
    let ended = client
        .write_object(tokio_stream::iter(resumable_messages(
            &upload_id,
            &data[..sent],
            0,
            PART / 2,
            false,
        )))
        .await
        .expect("an unfinished resumable stream is answered, not failed")
        .into_inner();
    assert_eq!(ended.persisted_size, Some(3 * PART as i64));
    assert_eq!(
        (ended.size, ended.etag.as_str()),
        (0, ""),
        "nothing is written yet"
    );
    let queried = client
        .query_write_status(proto::QueryWriteStatusRequest {
            upload_id: upload_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queried.persisted_size, 3 * PART as i64);
    assert!(try_head(&stack, BUCKET, "ended.bin").await.is_none());

    // The next stream resumes from the persisted size and finishes.
    let written = client
        .write_object(tokio_stream::iter(resumable_messages(
            &upload_id,
            &data,
            3 * PART,
            70_000,
            true,
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.persisted_size, None);
    assert_eq!(written.size as usize, data.len());
    assert_eq!(written.crc64ecma, crc64(&data));
    assert!(read_all(&stack, BUCKET, "ended.bin", "").await == data);
    stack.assert_no_leftover_uploads().await;

    // A non-resumable stream that ends unfinished still writes nothing.
    let status = write_chunks_unfinished(&mut client, &data[..2 * PART]).await;
    assert_invalid(&status, "finish_write");
    assert!(try_head(&stack, BUCKET, "unfinished.bin").await.is_none());
    stack.assert_no_leftover_uploads().await;
    stack.stop().await;
}

/// A multipart-sized WriteObject of `data` that never sends finish_write.
async fn write_chunks_unfinished(
    client: &mut proto::object_service_client::ObjectServiceClient<tonic::transport::Channel>,
    data: &[u8],
) -> tonic::Status {
    let mut messages = write_messages(spec(BUCKET, "unfinished.bin"), data, PART / 2);
    messages.last_mut().unwrap().finish_write = false;
    client
        .write_object(tokio_stream::iter(messages))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_resumable_write_survives_a_dropped_stream() {
    let stack = multipart_stack().await;
    let mut client = stack.client.clone();
    let data = pseudo_random(6 * PART + 777, 4);
    let mut s = spec(BUCKET, "resumed.bin");
    s.tagging = Some(tags(&[("resumable", "yes")]));
    let upload_id = client
        .start_resumable_write(proto::StartResumableWriteRequest { spec: Some(s) })
        .await
        .unwrap()
        .into_inner()
        .upload_id;

    // First attempt: 3.5 parts, then the connection drops.
    let (tx, rx) = mpsc::channel(16);
    let sent = 3 * PART + PART / 2;
    for (i, piece) in data[..sent].chunks(PART / 2).enumerate() {
        tx.send(proto::WriteObjectRequest {
            upload_id: if i == 0 {
                upload_id.clone()
            } else {
                String::new()
            },
            write_offset: (i * PART / 2) as i64,
            data: Bytes::copy_from_slice(piece),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let mut dropping = stack.client.clone();
    let call = tokio::spawn(async move { dropping.write_object(ReceiverStream::new(rx)).await });
    let mut persisted = 0;
    for _ in 0..50 {
        persisted = client
            .query_write_status(proto::QueryWriteStatusRequest {
                upload_id: upload_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .persisted_size;
        if persisted >= 3 * PART as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call.abort();
    drop(tx);
    assert_eq!(persisted, 3 * PART as i64, "three whole parts are stored");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stack.emulator.open_uploads().len(), 1, "the upload is kept");

    // Resume a little before the persisted size: the overlap is skipped.
    let restart = persisted as usize - 1000;
    let mut messages = Vec::new();
    let rest = &data[restart..];
    let pieces: Vec<&[u8]> = rest.chunks(70_000).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        messages.push(proto::WriteObjectRequest {
            upload_id: if i == 0 {
                upload_id.clone()
            } else {
                String::new()
            },
            write_offset: (restart + i * 70_000) as i64,
            data: Bytes::copy_from_slice(piece),
            finish_write: last,
            object_checksums: last.then(|| proto::ObjectChecksums {
                crc64ecma: Some(crc64(&data)),
                md5: Bytes::new(),
            }),
            ..Default::default()
        });
    }
    let written = client
        .write_object(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.size as usize, data.len());
    assert_eq!(written.crc64ecma, crc64(&data));
    assert!(read_all(&stack, BUCKET, "resumed.bin", "").await == data);
    assert_eq!(
        try_head(&stack, BUCKET, "resumed.bin")
            .await
            .unwrap()
            .tag_count,
        1
    );
    stack.assert_no_leftover_uploads().await;

    // The finished write can no longer be queried; a forged id is refused.
    let status = client
        .query_write_status(proto::QueryWriteStatusRequest {
            upload_id: upload_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let mut forged = upload_id.clone().into_bytes();
    forged[4] ^= 1;
    let status = client
        .query_write_status(proto::QueryWriteStatusRequest {
            upload_id: String::from_utf8_lossy(&forged).into_owned(),
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "upload_id");

    // Abort: everything stored for it goes.
    let other = client
        .start_resumable_write(proto::StartResumableWriteRequest {
            spec: Some(spec(BUCKET, "abandoned.bin")),
        })
        .await
        .unwrap()
        .into_inner()
        .upload_id;
    assert_eq!(stack.emulator.open_uploads().len(), 1);
    client
        .abort_resumable_write(proto::AbortResumableWriteRequest { upload_id: other })
        .await
        .unwrap();
    stack.assert_no_leftover_uploads().await;
    stack.stop().await;
}

fn append_request(
    spec: Option<proto::AppendObjectSpec>,
    position: i64,
    data: &[u8],
) -> proto::AppendObjectRequest {
    proto::AppendObjectRequest {
        spec,
        position,
        data: Bytes::copy_from_slice(data),
    }
}

#[tokio::test]
async fn appends_with_tags_and_a_position_conflict() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let spec = |tagging: Option<proto::Tagging>| proto::AppendObjectSpec {
        bucket: BUCKET.into(),
        key: "log.txt".into(),
        tagging,
        content_type: "text/plain".into(),
        ..Default::default()
    };

    // Create with tags and two chunks in one stream.
    let out = client
        .append_object(tokio_stream::iter(vec![
            append_request(
                Some(spec(Some(tags(&[("stream", "app log")])))),
                0,
                b"line 1\n",
            ),
            append_request(None, 7, b"line 2\n"),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.appends, 2);
    assert_eq!(out.next_append_position, 14);
    assert_eq!(out.crc64ecma, crc64(b"line 1\nline 2\n"));

    // Continue in a new call at the right position.
    let out = client
        .append_object(tokio_stream::iter(vec![append_request(
            Some(spec(None)),
            14,
            b"line 3\n",
        )]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.next_append_position, 21);
    assert_eq!(
        read_all(&stack, BUCKET, "log.txt", "").await,
        b"line 1\nline 2\nline 3\n"
    );
    let head = try_head(&stack, BUCKET, "log.txt").await.unwrap();
    assert_eq!(head.object_type, proto::ObjectType::Appendable as i32);
    assert_eq!(head.tag_count, 1);
    assert_eq!(head.next_append_position, Some(21));

    // A stale position is ABORTED and says where to append.
    let status = client
        .append_object(tokio_stream::iter(vec![append_request(
            Some(spec(None)),
            7,
            b"late\n",
        )]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.reason, "PositionNotEqualToLength");
    assert_eq!(info.metadata["next_append_position"], "21");

    // Tags on a later append are refused before reaching OSS.
    let before = stack.oss_requests();
    let status = client
        .append_object(tokio_stream::iter(vec![append_request(
            Some(spec(Some(tags(&[("late", "tag")])))),
            21,
            b"x",
        )]))
        .await
        .unwrap_err();
    assert_invalid(&status, "spec.tagging");
    assert_eq!(stack.oss_requests(), before);

    // Appending to a normal object is refused by OSS.
    write(&mut client, spec_normal("normal.txt"), b"normal").await;
    let status = client
        .append_object(tokio_stream::iter(vec![append_request(
            Some(proto::AppendObjectSpec {
                bucket: BUCKET.into(),
                key: "normal.txt".into(),
                ..Default::default()
            }),
            6,
            b"more",
        )]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    stack.stop().await;
}

fn spec_normal(key: &str) -> proto::WriteObjectSpec {
    spec(BUCKET, key)
}

/// A 1 GiB object streamed through the gateway with default settings, read back and
/// compared byte for byte and by CRC-64, with its tags.
#[tokio::test]
async fn one_gib_round_trip() {
    const MIB: usize = 1024 * 1024;
    const TOTAL: usize = 1024 * MIB;
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let base = Bytes::from(pseudo_random(MIB, 5));
    // Chunk i is the base rotated by i bytes: cheap, and every chunk differs.
    fn rotated(base: &[u8], i: usize) -> Bytes {
        let r = i % base.len();
        let mut out = Vec::with_capacity(base.len());
        out.extend_from_slice(&base[r..]);
        out.extend_from_slice(&base[..r]);
        Bytes::from(out)
    }
    let producer_base = base.clone();
    let chunk = move |i: usize| rotated(&base, i);
    let (tx, rx) = mpsc::channel(4);
    let producer = tokio::spawn(async move {
        let mut crc = ossgate::model::Crc64::new();
        for i in 0..TOTAL / MIB {
            let data = rotated(&producer_base, i);
            crc.update(&data);
            let mut spec = spec(BUCKET, "one-gib.bin");
            spec.tagging = Some(tags(&[("size", "1 GiB")]));
            spec.object_size = Some(TOTAL as i64);
            let message = proto::WriteObjectRequest {
                spec: (i == 0).then_some(spec),
                write_offset: (i * MIB) as i64,
                data,
                finish_write: i + 1 == TOTAL / MIB,
                ..Default::default()
            };
            if tx.send(message).await.is_err() {
                break;
            }
        }
        crc.value()
    });
    let written = client
        .write_object(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let sent_crc = producer.await.unwrap();
    assert_eq!(written.size as usize, TOTAL);
    assert_eq!(written.crc64ecma, sent_crc);

    let mut stream = client
        .read_object(proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: "one-gib.bin".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut offset = 0usize;
    let mut crc = ossgate::model::Crc64::new();
    let mut expected = chunk(0);
    let mut metadata = None;
    while let Some(message) = stream.message().await.unwrap() {
        if message.metadata.is_some() {
            metadata = message.metadata;
        }
        crc.update(&message.data);
        let mut data = &message.data[..];
        while !data.is_empty() {
            let within = offset % MIB;
            if within == 0 && offset > 0 {
                expected = chunk(offset / MIB);
            }
            let take = (MIB - within).min(data.len());
            assert!(
                data[..take] == expected[within..within + take],
                "bytes differ near offset {offset}"
            );
            offset += take;
            data = &data[take..];
        }
    }
    assert_eq!(offset, TOTAL);
    assert_eq!(crc.value(), sent_crc);
    let metadata = metadata.unwrap();
    assert_eq!(metadata.crc64ecma, Some(sent_crc));
    assert_eq!(metadata.tag_count, 1);
    stack.assert_no_leftover_uploads().await;
    stack.stop().await;
}
