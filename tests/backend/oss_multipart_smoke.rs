//! Smoke test: the OSS client's multipart, append and copy operations against
//! the in-process emulator, with both signature versions.

use crate::support::{self, BUCKET, oss_client, read_all};
use bytes::Bytes;
use ossgate::model::{BucketName, ObjectKey, TagSet, UserMetadata, crc64, crc64_combine};
use ossgate::oss::sign::SignatureVersion;
use ossgate::oss::{
    AppendObjectInput, ByteRange, Client, CompleteMultipartUploadInput, CompleteParts,
    CompletedPart, ContentHeaders, CopyMetadata, CopyObjectInput, CopySource, CopyTagging,
    InitiateMultipartUploadInput, ObjectId, OssErrorKind, UploadPartCopyInput, UploadPartInput,
};

async fn run(version: SignatureVersion) {
    let emulator = support::start().await;
    let client = oss_client(&emulator, version);
    let bucket = BucketName::parse(BUCKET).unwrap();
    let key = ObjectKey::parse("multi/part file+1 é?.bin").unwrap();

    // ---- multipart with an explicit part list, given out of order
    let part1: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    let part2 = b"the short last part".to_vec();
    let mut init = InitiateMultipartUploadInput::new(bucket.clone(), key.clone());
    init.attributes.tags = TagSet::from_pairs([("stage", "multi part")]).unwrap();
    init.attributes.metadata = UserMetadata::from_pairs([("origin", "smoke")]).unwrap();
    init.attributes.content.content_type = Some("application/x-smoke".into());
    let upload = client
        .initiate_multipart_upload(&init)
        .await
        .unwrap()
        .upload;
    let mut completed = Vec::new();
    for (n, data) in [(2u32, &part2), (1, &part1)] {
        let out = client
            .upload_part(&UploadPartInput {
                upload: upload.clone(),
                part_number: n,
                body: Bytes::from(data.clone()),
                content_md5: None,
            })
            .await
            .unwrap();
        assert_eq!(out.sent_crc64, crc64(data));
        completed.push(CompletedPart {
            part_number: n,
            etag: out.etag,
        });
    }
    let parts = client.list_all_parts(&upload).await.unwrap();
    let listed: Vec<(u32, u64)> = parts.iter().map(|p| (p.part_number, p.size)).collect();
    assert_eq!(
        listed,
        vec![(1, part1.len() as u64), (2, part2.len() as u64)]
    );
    let pending = client
        .list_all_multipart_uploads(&bucket, Some("multi/"))
        .await
        .unwrap();
    assert!(
        pending
            .iter()
            .any(|u| u.upload_id == upload.upload_id && u.key == key.as_str()),
        "{pending:?}"
    );
    let done = client
        .complete_multipart_upload(&CompleteMultipartUploadInput::new(
            upload.clone(),
            CompleteParts::List(completed),
        ))
        .await
        .unwrap();
    let whole = crc64_combine(crc64(&part1), crc64(&part2), part2.len() as u64);
    if let Some(crc) = done.crc64 {
        assert_eq!(crc, whole);
    }
    let head = client
        .head_object(&ObjectId::new(bucket.clone(), key.clone()))
        .await
        .unwrap();
    assert_eq!(head.size, (part1.len() + part2.len()) as u64);
    assert_eq!(head.tag_count, 1);
    assert_eq!(head.metadata.get("origin"), Some("smoke"));
    assert_eq!(
        head.content.content_type.as_deref(),
        Some("application/x-smoke")
    );
    let mut expected = part1.clone();
    expected.extend_from_slice(&part2);
    assert!(
        read_all(&client, &bucket, &key).await == expected,
        "object bytes differ"
    );
    assert!(
        client
            .list_all_multipart_uploads(&bucket, Some("multi/"))
            .await
            .unwrap()
            .is_empty(),
        "no upload is left behind"
    );

    // ---- UploadPartCopy of a range, completed with x-oss-complete-all
    let copy_key = ObjectKey::parse("multi/copied").unwrap();
    let upload2 = client
        .initiate_multipart_upload(&InitiateMultipartUploadInput::new(
            bucket.clone(),
            copy_key.clone(),
        ))
        .await
        .unwrap()
        .upload;
    let mut pc = UploadPartCopyInput::new(
        upload2.clone(),
        1,
        CopySource::new(bucket.clone(), key.clone()),
    );
    pc.range = Some(ByteRange {
        start: 10,
        end: Some(19),
    });
    let out = client.upload_part_copy(&pc).await.unwrap();
    assert!(!out.etag.is_empty());
    client
        .complete_multipart_upload(&CompleteMultipartUploadInput::new(
            upload2,
            CompleteParts::All,
        ))
        .await
        .unwrap();
    assert_eq!(
        read_all(&client, &bucket, &copy_key).await,
        &expected[10..20]
    );

    // ---- abort leaves nothing; a second abort is NotFound
    let upload3 = client
        .initiate_multipart_upload(&InitiateMultipartUploadInput::new(
            bucket.clone(),
            ObjectKey::parse("multi/aborted").unwrap(),
        ))
        .await
        .unwrap()
        .upload;
    client
        .upload_part(&UploadPartInput {
            upload: upload3.clone(),
            part_number: 1,
            body: Bytes::from_static(b"x"),
            content_md5: None,
        })
        .await
        .unwrap();
    client.abort_multipart_upload(&upload3).await.unwrap();
    let err = client.abort_multipart_upload(&upload3).await.unwrap_err();
    assert_eq!(err.kind, OssErrorKind::NotFound, "{err}");
    assert!(
        client
            .list_all_multipart_uploads(&bucket, None)
            .await
            .unwrap()
            .is_empty()
    );

    // ---- append: create, extend with a CRC check, resync after a wrong position
    let log = ObjectKey::parse("logs/app 1.log").unwrap();
    let mut append = AppendObjectInput::new(
        bucket.clone(),
        log.clone(),
        0,
        Bytes::from_static(b"line 1\n"),
    );
    append.attributes.content.content_type = Some("text/plain".into());
    append.attributes.tags = TagSet::from_pairs([("kind", "log")]).unwrap();
    let first = client.append_object(&append).await.unwrap();
    assert_eq!(first.next_position, 7);
    let mut next = AppendObjectInput::new(
        bucket.clone(),
        log.clone(),
        first.next_position,
        Bytes::from_static(b"line 2\n"),
    );
    next.previous_crc64 = first.crc64;
    let second = client.append_object(&next).await.unwrap();
    assert_eq!(second.next_position, 14);
    let stale = AppendObjectInput::new(bucket.clone(), log.clone(), 7, Bytes::from_static(b"x"));
    let err = client.append_object(&stale).await.unwrap_err();
    assert_eq!(err.code, "PositionNotEqualToLength", "{err}");
    assert_eq!(err.next_append_position, Some(14));
    assert_eq!(read_all(&client, &bucket, &log).await, b"line 1\nline 2\n");

    // ---- copy (appendable objects cannot be a source): replace metadata,
    // clear tags, source preconditions
    let dest = ObjectKey::parse("copies/part copy").unwrap();
    let mut copy = CopyObjectInput::new(
        CopySource::new(bucket.clone(), key.clone()),
        bucket.clone(),
        dest.clone(),
    );
    copy.metadata = CopyMetadata::Replace {
        metadata: UserMetadata::from_pairs([("copied", "yes")]).unwrap(),
        content: ContentHeaders {
            content_type: Some("text/x-log".into()),
            ..ContentHeaders::default()
        },
    };
    copy.tagging = CopyTagging::Replace(TagSet::empty());
    copy.conditions.if_match = head_etag(&client, &bucket, &key).await;
    client.copy_object(&copy).await.unwrap();
    let head = client
        .head_object(&ObjectId::new(bucket.clone(), dest.clone()))
        .await
        .unwrap();
    assert_eq!(head.tag_count, 0, "Replace with an empty set clears tags");
    assert_eq!(head.metadata.get("copied"), Some("yes"));
    assert_eq!(head.content.content_type.as_deref(), Some("text/x-log"));
    assert!(
        read_all(&client, &bucket, &dest).await == expected,
        "copied bytes differ"
    );
    copy.conditions.if_match = Some("\"00000000000000000000000000000000\"".into());
    let err = client.copy_object(&copy).await.unwrap_err();
    assert_eq!(err.kind, OssErrorKind::PreconditionFailed, "{err}");

    emulator.shutdown().await;
}

async fn head_etag(client: &Client, bucket: &BucketName, key: &ObjectKey) -> Option<String> {
    client
        .head_object(&ObjectId::new(bucket.clone(), key.clone()))
        .await
        .unwrap()
        .etag
}

#[tokio::test]
async fn multipart_append_copy_v4() {
    run(SignatureVersion::V4).await;
}

#[tokio::test]
async fn multipart_append_copy_v1() {
    run(SignatureVersion::V1).await;
}
