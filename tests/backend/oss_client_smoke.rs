//! Smoke test: the OSS client against the in-process emulator, with both
//! signature versions: put/head/get/tagging/symlink/delete.

use crate::support::{self, BUCKET, VERSIONED_BUCKET, oss_client, read_all};
use bytes::Bytes;
use futures_util::StreamExt;
use ossgate::model::{BucketName, ObjectKey, TagSet, UserMetadata, crc64};
use ossgate::oss::sign::SignatureVersion;
use ossgate::oss::{
    BoxError, ByteRange, GetObjectInput, ObjectId, OssErrorKind, PutObjectInput,
    PutObjectTaggingInput, PutSymlinkInput,
};

async fn run(version: SignatureVersion) {
    let emulator = support::start().await;
    let client = oss_client(&emulator, version);
    let bucket = BucketName::parse(BUCKET).unwrap();
    let key = ObjectKey::parse("dir/smoke test+1 é?.txt").unwrap();
    let id = ObjectId::new(bucket.clone(), key.clone());
    let data = b"hello from the ossgate smoke test\n";

    // put (chunked, with tags and metadata)
    let mut put = PutObjectInput::new(bucket.clone(), key.clone());
    put.attributes.content.content_type = Some("text/plain".into());
    put.attributes.metadata = UserMetadata::from_pairs([("author", "smoke")]).unwrap();
    put.attributes.tags = TagSet::from_pairs([("team", "storage ops"), ("a+b", "c/d")]).unwrap();
    let halves: Vec<Result<Bytes, BoxError>> = vec![
        Ok(Bytes::from_static(&data[..10])),
        Ok(Bytes::from_static(&data[10..])),
    ];
    let out = client
        .put_object(&put, futures_util::stream::iter(halves))
        .await
        .unwrap();
    assert_eq!(out.sent_bytes, data.len() as u64);
    assert_eq!(out.sent_crc64, crc64(data));

    // forbid-overwrite with a known length
    put.attributes.forbid_overwrite = true;
    put.content_length = Some(1);
    let err = client
        .put_object(
            &put,
            futures_util::stream::iter(vec![Ok::<_, BoxError>(Bytes::from_static(b"x"))]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, OssErrorKind::AlreadyExists, "{err}");

    // head
    let head = client.head_object(&id).await.unwrap();
    assert_eq!(head.size, data.len() as u64);
    assert_eq!(head.tag_count, 2);
    assert_eq!(head.metadata.get("author"), Some("smoke"));
    assert_eq!(head.content.content_type.as_deref(), Some("text/plain"));
    if let Some(crc) = head.crc64 {
        assert_eq!(crc, crc64(data));
    }

    // get whole and ranged
    assert_eq!(read_all(&client, &bucket, &key).await, data);
    let mut ranged = GetObjectInput::new(bucket.clone(), key.clone());
    ranged.range = Some(ByteRange {
        start: 6,
        end: Some(9),
    });
    let got = client.get_object(&ranged).await.unwrap();
    assert_eq!(got.head.size, data.len() as u64);
    let body: Vec<u8> = got.body.map(|c| c.unwrap().to_vec()).concat().await;
    assert_eq!(body, &data[6..=9]);

    // tagging
    let tags = client.get_object_tagging(&id).await.unwrap();
    assert_eq!(
        tags.tags,
        vec![
            ("a+b".to_string(), "c/d".to_string()),
            ("team".to_string(), "storage ops".to_string())
        ]
    );
    let new_tags = TagSet::from_pairs([("k1", "v 1")]).unwrap();
    client
        .put_object_tagging(&PutObjectTaggingInput::new(
            bucket.clone(),
            key.clone(),
            new_tags,
        ))
        .await
        .unwrap();
    let tags = client.get_object_tagging(&id).await.unwrap();
    assert_eq!(tags.tags, vec![("k1".to_string(), "v 1".to_string())]);
    client.delete_object_tagging(&id).await.unwrap();
    assert!(
        client
            .get_object_tagging(&id)
            .await
            .unwrap()
            .tags
            .is_empty()
    );

    // symlink
    let link = ObjectKey::parse("links/to smoke").unwrap();
    client
        .put_symlink(&PutSymlinkInput::new(
            bucket.clone(),
            link.clone(),
            key.clone(),
        ))
        .await
        .unwrap();
    let sym = client
        .get_symlink(&ObjectId::new(bucket.clone(), link.clone()))
        .await
        .unwrap();
    assert_eq!(sym.target, key.as_str());

    // delete, then not found
    client.delete_object(&id).await.unwrap();
    client
        .delete_object(&ObjectId::new(bucket.clone(), link))
        .await
        .unwrap();
    let err = client.head_object(&id).await.unwrap_err();
    assert_eq!(err.kind, OssErrorKind::NotFound, "{err}");
    let err = client.get_object_tagging(&id).await.unwrap_err();
    assert_eq!(err.kind, OssErrorKind::NotFound, "{err}");

    // versioned bucket: version IDs, tagging one version, delete markers
    let vbucket = BucketName::parse(VERSIONED_BUCKET).unwrap();
    let one = |b: &'static [u8]| {
        futures_util::stream::iter(vec![Ok::<_, BoxError>(Bytes::from_static(b))])
    };
    let put = PutObjectInput::new(vbucket.clone(), key.clone());
    let v1 = client
        .put_object(&put, one(b"first"))
        .await
        .unwrap()
        .version_id
        .expect("version id");
    let v2 = client
        .put_object(&put, one(b"second"))
        .await
        .unwrap()
        .version_id
        .expect("version id");
    assert_ne!(v1, v2);
    let first = ObjectId::new(vbucket.clone(), key.clone()).with_version(Some(v1.clone()));
    let mut tagging = PutObjectTaggingInput::new(
        vbucket.clone(),
        key.clone(),
        TagSet::from_pairs([("v", "1")]).unwrap(),
    );
    tagging.version_id = Some(v1.clone());
    let out = client.put_object_tagging(&tagging).await.unwrap();
    assert_eq!(out.version_id.as_ref(), Some(&v1));
    assert_eq!(client.head_object(&first).await.unwrap().tag_count, 1);
    let current = ObjectId::new(vbucket.clone(), key.clone());
    assert_eq!(client.head_object(&current).await.unwrap().tag_count, 0);
    let del = client.delete_object(&current).await.unwrap();
    assert!(del.delete_marker);
    assert!(del.version_id.is_some());
    let err = client.head_object(&current).await.unwrap_err();
    assert_eq!(err.kind, OssErrorKind::NotFound, "{err}");
    let head = client.head_object(&first).await.unwrap();
    assert_eq!(head.size, 5);
    assert_eq!(head.version_id.as_ref(), Some(&v1));

    emulator.shutdown().await;
}

#[tokio::test]
async fn client_against_emulator_v4() {
    run(SignatureVersion::V4).await;
}

#[tokio::test]
async fn client_against_emulator_v1() {
    run(SignatureVersion::V1).await;
}
