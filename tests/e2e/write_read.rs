//! Streamed writes, reads and ranges; nothing half-written is ever stored.

use bytes::Bytes;
use ossgate::proto;

use crate::common::*;

#[tokio::test]
async fn many_chunks_round_trip_with_ranges() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let data = pseudo_random(3 * 1024 * 1024 + 17, 7);
    let mut s = spec(BUCKET, "big/object.bin");
    s.object_size = Some(data.len() as i64);
    s.content_type = "application/octet-stream".into();
    let written = write_chunks(&mut client, s, &data, 64 * 1024 + 3)
        .await
        .unwrap();
    assert_eq!(written.size as usize, data.len());
    assert_eq!(written.crc64ecma, ossgate::model::crc64(&data));

    let (meta, back) = read(
        &mut client,
        proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: "big/object.bin".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(back == data, "bytes differ");
    let meta = meta.unwrap();
    assert_eq!(meta.size as usize, data.len());
    assert_eq!(meta.crc64ecma, Some(written.crc64ecma));
    assert_eq!(meta.object_type, proto::ObjectType::Normal as i32);

    for (offset, limit) in [
        (0, Some(1)),
        (1000, Some(5000)),
        (data.len() as i64 - 10, None),
        (5, None),
    ] {
        let (_, part) = read(
            &mut client,
            proto::ReadObjectRequest {
                bucket: BUCKET.into(),
                key: "big/object.bin".into(),
                read_offset: Some(offset),
                read_limit: limit,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let start = offset as usize;
        let end = limit.map_or(data.len(), |l| start + l as usize);
        assert!(part == data[start..end], "range {offset}+{limit:?} differs");
    }
    // A zero-length read returns the metadata only.
    let (meta, part) = read(
        &mut client,
        proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: "big/object.bin".into(),
            read_limit: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(part.is_empty());
    assert_eq!(meta.unwrap().size as usize, data.len());
    stack.stop().await;
}

#[tokio::test]
async fn empty_object_and_checksums() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let written = write(&mut client, spec(BUCKET, "empty"), b"").await;
    assert_eq!(written.size, 0);
    assert!(exists(&stack, BUCKET, "empty").await);

    // Correct crc64 and md5 given up front are accepted.
    let data = b"checked content";
    let md5: [u8; 16] = {
        use md5::Digest;
        md5::Md5::digest(data).into()
    };
    let ok = client
        .write_object(tokio_stream::iter(vec![proto::WriteObjectRequest {
            spec: Some(spec(BUCKET, "checked")),
            data: Bytes::from_static(data),
            finish_write: true,
            object_checksums: Some(proto::ObjectChecksums {
                crc64ecma: Some(ossgate::model::crc64(data)),
                md5: Bytes::copy_from_slice(&md5),
            }),
            ..Default::default()
        }]))
        .await;
    assert!(ok.is_ok(), "{ok:?}");

    // A wrong crc64 on the last message fails and stores nothing.
    let status = client
        .write_object(tokio_stream::iter(vec![
            proto::WriteObjectRequest {
                spec: Some(spec(BUCKET, "bad-crc")),
                data: Bytes::from_static(b"part one "),
                ..Default::default()
            },
            proto::WriteObjectRequest {
                write_offset: 9,
                data: Bytes::from_static(b"part two"),
                finish_write: true,
                object_checksums: Some(proto::ObjectChecksums {
                    crc64ecma: Some(12345),
                    md5: Bytes::new(),
                }),
                ..Default::default()
            },
        ]))
        .await
        .unwrap_err();
    assert_invalid(&status, "object_checksums.crc64ecma");
    assert!(!exists(&stack, BUCKET, "bad-crc").await);

    // A wrong md5 up front: stored nothing either.
    let status = client
        .write_object(tokio_stream::iter(vec![proto::WriteObjectRequest {
            spec: Some(spec(BUCKET, "bad-md5")),
            data: Bytes::from_static(b"abc"),
            finish_write: true,
            object_checksums: Some(proto::ObjectChecksums {
                crc64ecma: None,
                md5: Bytes::copy_from_slice(&[0u8; 16]),
            }),
            ..Default::default()
        }]))
        .await
        .unwrap_err();
    assert_invalid(&status, "object_checksums.md5");
    assert!(!exists(&stack, BUCKET, "bad-md5").await);
    stack.stop().await;
}

#[tokio::test]
async fn broken_streams_store_nothing() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let chunk = Bytes::from(vec![b'x'; 200_000]);

    // Ends without finish_write.
    let status = client
        .write_object(tokio_stream::iter(vec![
            proto::WriteObjectRequest {
                spec: Some(spec(BUCKET, "unfinished")),
                data: chunk.clone(),
                ..Default::default()
            },
            proto::WriteObjectRequest {
                write_offset: 200_000,
                data: chunk.clone(),
                ..Default::default()
            },
        ]))
        .await
        .unwrap_err();
    assert_invalid(&status, "finish_write");
    assert!(!exists(&stack, BUCKET, "unfinished").await);

    // A gap in the offsets.
    let status = client
        .write_object(tokio_stream::iter(vec![
            proto::WriteObjectRequest {
                spec: Some(spec(BUCKET, "gap")),
                data: chunk.clone(),
                ..Default::default()
            },
            proto::WriteObjectRequest {
                write_offset: 999_999,
                data: chunk.clone(),
                finish_write: true,
                ..Default::default()
            },
        ]))
        .await
        .unwrap_err();
    assert_invalid(&status, "write_offset");
    assert!(!exists(&stack, BUCKET, "gap").await);

    // More bytes than declared, and fewer.
    let mut declared = spec(BUCKET, "declared");
    declared.object_size = Some(10);
    let status = write_chunks(&mut client, declared.clone(), &[1u8; 11], 4)
        .await
        .unwrap_err();
    assert_invalid(&status, "data");
    let status = write_chunks(&mut client, declared, &[1u8; 9], 4)
        .await
        .unwrap_err();
    assert_invalid(&status, "spec.object_size");
    assert!(!exists(&stack, BUCKET, "declared").await);

    // The caller goes away mid-stream.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(proto::WriteObjectRequest {
        spec: Some(spec(BUCKET, "cancelled")),
        data: chunk.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    tx.send(proto::WriteObjectRequest {
        write_offset: 200_000,
        data: chunk.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cancelling = stack.client.clone();
    let call = tokio::spawn(async move {
        cancelling
            .write_object(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    call.abort();
    drop(tx);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!exists(&stack, BUCKET, "cancelled").await);
    stack.stop().await;
}
