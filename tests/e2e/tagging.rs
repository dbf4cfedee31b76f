//! Tags on objects, on versions and on symlinks.

use ossgate::proto;

use crate::common::*;

/// Tag values with every special character OSS allows, spaces and non-ASCII letters.
fn tricky_tags() -> proto::Tagging {
    tags(&[
        ("project", "alpha+beta"),
        ("path", "a/b/c:d=e.f_g-h"),
        ("with space", "two  spaces"),
        ("城市", "杭州 Zürich"),
        ("empty", ""),
    ])
}

async fn tag_lifecycle(signature_version: &'static str) {
    let stack = Stack::start_with(StackOptions {
        signature_version,
        ..Default::default()
    })
    .await;
    let mut client = stack.client.clone();
    let key = "docs/report 2025+final.txt";

    let mut spec = spec(BUCKET, key);
    spec.tagging = Some(tricky_tags());
    spec.metadata = [("owner".to_string(), "alice".to_string())].into();
    spec.content_type = "text/plain".into();
    let written = write(&mut client, spec, b"hello tags").await;
    assert_eq!(written.size, 10);
    assert_eq!(written.crc64ecma, ossgate::model::crc64(b"hello tags"));

    let got = client
        .get_object_tagging(proto::GetObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: key.into(),
            version_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.tagging.unwrap(), tricky_tags());

    let current = head(&mut client, BUCKET, key).await;
    assert_eq!(current.tag_count, 5);
    assert_eq!(
        current.metadata.get("owner").map(String::as_str),
        Some("alice")
    );
    assert_eq!(current.content_type, "text/plain");

    // Replace the whole set.
    let replacement = tags(&[("stage", "done"), ("reviewed-by", "bob:2025/01")]);
    client
        .put_object_tagging(proto::PutObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: key.into(),
            version_id: String::new(),
            tagging: Some(replacement.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let got = get_tags(&mut client, BUCKET, key, "").await;
    assert_eq!(got, replacement);
    assert_eq!(head(&mut client, BUCKET, key).await.tag_count, 2);

    // Delete them.
    client
        .delete_object_tagging(proto::DeleteObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: key.into(),
            version_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(get_tags(&mut client, BUCKET, key, "").await.tags.is_empty());
    assert_eq!(head(&mut client, BUCKET, key).await.tag_count, 0);

    // An empty set on PutObjectTagging clears too.
    client
        .put_object_tagging(proto::PutObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: key.into(),
            version_id: String::new(),
            tagging: Some(tags(&[("a", "1")])),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .put_object_tagging(proto::PutObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: key.into(),
            version_id: String::new(),
            tagging: Some(proto::Tagging::default()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(head(&mut client, BUCKET, key).await.tag_count, 0);
    stack.stop().await;
}

#[tokio::test]
async fn tags_written_replaced_and_deleted_v4() {
    tag_lifecycle("v4").await;
}

#[tokio::test]
async fn tags_written_replaced_and_deleted_v1() {
    tag_lifecycle("v1").await;
}

#[tokio::test]
async fn sts_token_is_sent_and_checked() {
    let stack = Stack::start_with(StackOptions {
        security_token: Some("CAIS-sts/token+with=chars".into()),
        ..Default::default()
    })
    .await;
    let mut client = stack.client.clone();
    let mut spec = spec(BUCKET, "sts.txt");
    spec.tagging = Some(tags(&[("via", "sts")]));
    write(&mut client, spec, b"sts").await;
    assert_eq!(
        get_tags(&mut client, BUCKET, "sts.txt", "").await,
        tags(&[("via", "sts")])
    );
    stack.stop().await;
}

#[tokio::test]
async fn symlink_with_tags_and_metadata() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    write(
        &mut client,
        spec(BUCKET, "data/target file.bin"),
        b"target bytes",
    )
    .await;

    client
        .put_symlink(proto::PutSymlinkRequest {
            bucket: BUCKET.into(),
            key: "links/latest".into(),
            target_key: "data/target file.bin".into(),
            tagging: Some(tags(&[("kind", "link"), ("owner", "ops team")])),
            metadata: [("purpose".to_string(), "latest-build".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let link = client
        .get_symlink(proto::GetSymlinkRequest {
            bucket: BUCKET.into(),
            key: "links/latest".into(),
            version_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(link.target_key, "data/target file.bin");
    assert_eq!(
        link.metadata.get("purpose").map(String::as_str),
        Some("latest-build")
    );
    assert_eq!(
        get_tags(&mut client, BUCKET, "links/latest", "").await,
        tags(&[("kind", "link"), ("owner", "ops team")])
    );
    // Reading through the link gives the target's bytes.
    let (_, data) = read(
        &mut client,
        proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: "links/latest".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(data, b"target bytes");

    // forbid_overwrite protects an existing link.
    let status = client
        .put_symlink(proto::PutSymlinkRequest {
            bucket: BUCKET.into(),
            key: "links/latest".into(),
            target_key: "elsewhere".into(),
            forbid_overwrite: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::AlreadyExists, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("FileAlreadyExists"));
    stack.stop().await;
}

#[tokio::test]
async fn tags_on_a_given_version() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let mut first = spec(VERSIONED_BUCKET, "versioned.txt");
    first.tagging = Some(tags(&[("generation", "1")]));
    let v1 = write(&mut client, first, b"one").await.version_id;
    let mut second = spec(VERSIONED_BUCKET, "versioned.txt");
    second.tagging = Some(tags(&[("generation", "2")]));
    let v2 = write(&mut client, second, b"two").await.version_id;
    assert!(!v1.is_empty() && !v2.is_empty() && v1 != v2, "{v1} {v2}");

    assert_eq!(
        get_tags(&mut client, VERSIONED_BUCKET, "versioned.txt", &v1).await,
        tags(&[("generation", "1")])
    );
    assert_eq!(
        get_tags(&mut client, VERSIONED_BUCKET, "versioned.txt", "").await,
        tags(&[("generation", "2")])
    );

    // Retag the old version only.
    let put = client
        .put_object_tagging(proto::PutObjectTaggingRequest {
            bucket: VERSIONED_BUCKET.into(),
            key: "versioned.txt".into(),
            version_id: v1.clone(),
            tagging: Some(tags(&[("generation", "1"), ("archived", "yes")])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.version_id, v1);
    assert_eq!(
        get_tags(&mut client, VERSIONED_BUCKET, "versioned.txt", &v1).await,
        tags(&[("generation", "1"), ("archived", "yes")])
    );
    assert_eq!(
        get_tags(&mut client, VERSIONED_BUCKET, "versioned.txt", &v2).await,
        tags(&[("generation", "2")])
    );

    // Delete the old version's tags; the current version keeps its own.
    client
        .delete_object_tagging(proto::DeleteObjectTaggingRequest {
            bucket: VERSIONED_BUCKET.into(),
            key: "versioned.txt".into(),
            version_id: v1.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        get_tags(&mut client, VERSIONED_BUCKET, "versioned.txt", &v1)
            .await
            .tags
            .is_empty()
    );
    assert_eq!(
        get_tags(&mut client, VERSIONED_BUCKET, "versioned.txt", "").await,
        tags(&[("generation", "2")])
    );

    // Old bytes stay readable by version.
    let (meta, data) = read(
        &mut client,
        proto::ReadObjectRequest {
            bucket: VERSIONED_BUCKET.into(),
            key: "versioned.txt".into(),
            version_id: v1.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(data, b"one");
    assert_eq!(meta.unwrap().version_id, v1);

    // Deleting the current object in a versioned bucket leaves a delete marker.
    let deleted = client
        .delete_object(proto::DeleteObjectRequest {
            bucket: VERSIONED_BUCKET.into(),
            key: "versioned.txt".into(),
            version_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_marker);
    let status = client
        .head_object(proto::HeadObjectRequest {
            bucket: VERSIONED_BUCKET.into(),
            key: "versioned.txt".into(),
            version_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    stack.stop().await;
}
