//! CopyObject and UpdateObjectMetadata end to end: every directive combination below and
//! above a small multipart threshold, tags with every allowed special character, version
//! pinning, preconditions, forbid-overwrite, injected part failures, cancellation, tag
//! changes during a copy, metadata edits that keep the tags, and the audit events of copies
//! that replace tags.

use std::{collections::HashMap, time::Duration};

use ossgate::{
    emulator::{Fault, FaultKind, FaultOp},
    model::BucketName,
    oss::{Addressing, Client, ClientConfig, sign::SignatureVersion},
    proto,
};
use tonic::Code;

use crate::audit_capture::Capture;
use crate::common::*;

/// Sources above this many bytes are copied part by part in these tests.
const THRESHOLD: u64 = 256 * 1024;
/// Part size in these tests (OSS's minimum part).
const PART: u64 = 100 * 1024;
/// A source copied with one CopyObject.
const SMALL: usize = 10 * 1024 + 7;
/// A source copied with 7 parts.
const LARGE: usize = 6 * 100 * 1024 + 123;

async fn copy_stack() -> Stack {
    Stack::start_with(StackOptions {
        settings: vec![
            (
                "OSSGATE_COPY__MULTIPART_THRESHOLD_BYTES",
                THRESHOLD.to_string(),
            ),
            ("OSSGATE_COPY__PART_SIZE_BYTES", PART.to_string()),
            ("OSSGATE_COPY__PARALLELISM", "3".to_string()),
        ],
        ..Default::default()
    })
    .await
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 9) as u8) ^ seed)
        .collect()
}

/// Tags using every special character OSS allows, a space, an empty value and non-ASCII.
fn source_tags() -> proto::Tagging {
    tags(&[
        ("project+x", "a-b=c.d_e:f/g"),
        ("team name", "storage ops"),
        ("ключ", "значение 値"),
        ("empty", ""),
        ("path/to:key", "x+y z"),
    ])
}

fn replacement_tags() -> proto::Tagging {
    tags(&[("status", "copied = yes"), ("überall", "a/b+c")])
}

fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Writes a source object with tags, metadata and content headers; returns its version id.
async fn write_source(
    stack: &Stack,
    bucket: &str,
    key: &str,
    body: &[u8],
    tagging: proto::Tagging,
) -> String {
    let mut client = stack.client.clone();
    let mut spec = spec(bucket, key);
    spec.tagging = Some(tagging);
    spec.metadata = metadata(&[("owner", "alice"), ("project-id", "42")]);
    spec.content_type = "text/x-source".into();
    spec.cache_control = "max-age=60".into();
    write(&mut client, spec, body).await.version_id
}

fn copy_request(
    source_bucket: &str,
    source_key: &str,
    bucket: &str,
    key: &str,
) -> proto::CopyObjectRequest {
    proto::CopyObjectRequest {
        source_bucket: source_bucket.into(),
        source_key: source_key.into(),
        destination_bucket: bucket.into(),
        destination_key: key.into(),
        ..Default::default()
    }
}

/// A direct OSS client on the emulator (to look at what the gateway left there).
fn oss_client(stack: &Stack) -> Client {
    Client::new(ClientConfig {
        endpoint: stack.emulator.endpoint(),
        region: "cn-hangzhou".into(),
        signature_version: SignatureVersion::V4,
        addressing: Addressing::Auto,
        credentials: credentials(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Some(Duration::from_secs(30)),
    })
    .unwrap()
}

/// Unfinished multipart uploads in `bucket`, through ListMultipartUploads on the emulator.
pub(crate) async fn open_uploads(stack: &Stack, bucket: &str) -> usize {
    oss_client(stack)
        .list_all_multipart_uploads(&BucketName::parse(bucket).unwrap(), None)
        .await
        .unwrap()
        .len()
}

#[derive(Clone, Copy, Debug)]
enum Tagging {
    Unspecified,
    Copy,
    Replace,
    ReplaceEmpty,
}

#[derive(Clone, Copy, Debug)]
enum Metadata {
    Unspecified,
    Copy,
    Replace,
}

async fn directive_matrix(size: usize, multipart: bool) {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    let body = data(size, 3);
    let source = format!("matrix/source {size}+é.bin");
    write_source(&stack, BUCKET, &source, &body, source_tags()).await;

    let taggings = [
        Tagging::Unspecified,
        Tagging::Copy,
        Tagging::Replace,
        Tagging::ReplaceEmpty,
    ];
    let metadatas = [Metadata::Unspecified, Metadata::Copy, Metadata::Replace];
    for (i, tagging) in taggings.iter().enumerate() {
        for (j, meta) in metadatas.iter().enumerate() {
            let dest = format!("matrix/dest {size} {i}-{j} ü:+=.txt");
            let mut req = copy_request(BUCKET, &source, BUCKET, &dest);
            let expected_tags = match tagging {
                Tagging::Unspecified => source_tags(),
                Tagging::Copy => {
                    req.tagging_directive = proto::TaggingDirective::Copy.into();
                    source_tags()
                }
                Tagging::Replace => {
                    req.tagging_directive = proto::TaggingDirective::Replace.into();
                    req.tagging = Some(replacement_tags());
                    replacement_tags()
                }
                Tagging::ReplaceEmpty => {
                    req.tagging_directive = proto::TaggingDirective::Replace.into();
                    req.tagging = Some(tags(&[]));
                    tags(&[])
                }
            };
            let (expected_meta, expected_type, expected_cache) = match meta {
                Metadata::Unspecified => (
                    metadata(&[("owner", "alice"), ("project-id", "42")]),
                    "text/x-source",
                    "max-age=60",
                ),
                Metadata::Copy => {
                    req.metadata_directive = proto::MetadataDirective::Copy.into();
                    (
                        metadata(&[("owner", "alice"), ("project-id", "42")]),
                        "text/x-source",
                        "max-age=60",
                    )
                }
                Metadata::Replace => {
                    req.metadata_directive = proto::MetadataDirective::Replace.into();
                    req.metadata = metadata(&[("Reviewer", "bob"), ("stage", "final draft")]);
                    req.content_type = "application/x-copied".into();
                    (
                        metadata(&[("reviewer", "bob"), ("stage", "final draft")]),
                        "application/x-copied",
                        "",
                    )
                }
            };
            let what = format!("size {size}, {tagging:?} tags, {meta:?} metadata");
            let out = client
                .copy_object(req)
                .await
                .unwrap_or_else(|s| panic!("{what}: {s:?}"))
                .into_inner();
            assert_eq!(out.size, size as i64, "{what}");
            assert_eq!(out.part_count > 0, multipart, "{what}: {out:?}");
            if multipart {
                assert_eq!(
                    out.part_count as u64,
                    (size as u64).div_ceil(PART),
                    "{what}"
                );
            }
            assert!(!out.source_tags_changed, "{what}");
            assert!(!out.etag.is_empty(), "{what}");
            assert_eq!(
                out.crc64ecma,
                Some(ossgate::model::crc64(&body)),
                "{what}: the destination's CRC-64 is the source's"
            );
            assert_eq!(
                get_tags(&mut client, BUCKET, &dest, "").await,
                expected_tags,
                "{what}"
            );
            let head = head(&mut client, BUCKET, &dest).await;
            assert_eq!(head.metadata, expected_meta, "{what}");
            assert_eq!(head.content_type, expected_type, "{what}");
            assert_eq!(head.cache_control, expected_cache, "{what}");
            assert_eq!(head.tag_count as usize, expected_tags.tags.len(), "{what}");
            assert_eq!(
                read_all(&stack, BUCKET, &dest, "").await,
                body,
                "{what}: bytes"
            );
        }
    }
    assert_eq!(open_uploads(&stack, BUCKET).await, 0);
    stack.stop().await;
}

#[tokio::test]
async fn every_directive_combination_with_a_single_copy() {
    directive_matrix(SMALL, false).await;
}

#[tokio::test]
async fn every_directive_combination_with_a_multipart_copy() {
    directive_matrix(LARGE, true).await;
}

#[tokio::test]
async fn copies_across_buckets_and_with_storage_class_and_acl() {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    for (size, key) in [(SMALL, "x/small"), (LARGE, "x/large")] {
        let body = data(size, 9);
        write_source(&stack, BUCKET, key, &body, source_tags()).await;
        let mut req = copy_request(BUCKET, key, VERSIONED_BUCKET, key);
        req.storage_class = proto::StorageClass::Ia.into();
        req.acl = proto::ObjectAcl::Private.into();
        let out = client.copy_object(req).await.unwrap().into_inner();
        assert!(!out.version_id.is_empty(), "the destination is versioned");
        assert_eq!(read_all(&stack, VERSIONED_BUCKET, key, "").await, body);
        let head = head(&mut client, VERSIONED_BUCKET, key).await;
        assert_eq!(head.storage_class, proto::StorageClass::Ia as i32, "{key}");
        assert_eq!(head.version_id, out.version_id);
        assert_eq!(
            get_tags(&mut client, VERSIONED_BUCKET, key, &out.version_id).await,
            source_tags()
        );
    }
    stack.stop().await;
}

#[tokio::test]
async fn version_pinned_copies() {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    for (size, key) in [(SMALL, "v/small"), (LARGE, "v/large")] {
        let old = data(size, 1);
        let old_version = write_source(&stack, VERSIONED_BUCKET, key, &old, source_tags()).await;
        let new = data(size + 5, 2);
        let new_version =
            write_source(&stack, VERSIONED_BUCKET, key, &new, replacement_tags()).await;
        assert_ne!(old_version, new_version);

        let dest = format!("{key}-old");
        let mut req = copy_request(VERSIONED_BUCKET, key, VERSIONED_BUCKET, &dest);
        req.source_version_id = old_version.clone();
        let out = client.copy_object(req).await.unwrap().into_inner();
        assert_eq!(out.source_version_id, old_version, "{key}");
        assert_eq!(out.size, size as i64);
        assert_eq!(read_all(&stack, VERSIONED_BUCKET, &dest, "").await, old);
        assert_eq!(
            get_tags(&mut client, VERSIONED_BUCKET, &dest, "").await,
            source_tags(),
            "{key}: the old version's tags"
        );

        // Without a version id the current version is copied, and reported.
        let dest = format!("{key}-current");
        let req = copy_request(VERSIONED_BUCKET, key, VERSIONED_BUCKET, &dest);
        let out = client.copy_object(req).await.unwrap().into_inner();
        assert_eq!(out.source_version_id, new_version, "{key}");
        assert_eq!(read_all(&stack, VERSIONED_BUCKET, &dest, "").await, new);
        assert_eq!(
            get_tags(&mut client, VERSIONED_BUCKET, &dest, "").await,
            replacement_tags()
        );
    }
    assert_eq!(open_uploads(&stack, VERSIONED_BUCKET).await, 0);
    stack.stop().await;
}

fn ts(offset_secs: i64) -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    prost_types::Timestamp {
        seconds: now + offset_secs,
        nanos: 0,
    }
}

#[tokio::test]
async fn source_preconditions() {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    for (size, key) in [(SMALL, "p/small"), (LARGE, "p/large")] {
        let body = data(size, 4);
        write_source(&stack, BUCKET, key, &body, source_tags()).await;
        let etag = head(&mut client, BUCKET, key).await.etag;
        let cases: Vec<(&str, proto::CopySourcePreconditions, bool)> = vec![
            (
                "if-match (same)",
                proto::CopySourcePreconditions {
                    if_match: etag.clone(),
                    ..Default::default()
                },
                true,
            ),
            (
                "if-match (other)",
                proto::CopySourcePreconditions {
                    if_match: "\"0123456789ABCDEF0123456789ABCDEF\"".into(),
                    ..Default::default()
                },
                false,
            ),
            (
                "if-none-match (same)",
                proto::CopySourcePreconditions {
                    if_none_match: etag.clone(),
                    ..Default::default()
                },
                false,
            ),
            (
                "if-none-match (other)",
                proto::CopySourcePreconditions {
                    if_none_match: "\"0123456789ABCDEF0123456789ABCDEF\"".into(),
                    ..Default::default()
                },
                true,
            ),
            (
                "if-modified-since (an hour ago)",
                proto::CopySourcePreconditions {
                    if_modified_since: Some(ts(-3600)),
                    ..Default::default()
                },
                true,
            ),
            (
                "if-modified-since (in an hour)",
                proto::CopySourcePreconditions {
                    if_modified_since: Some(ts(3600)),
                    ..Default::default()
                },
                false,
            ),
            (
                "if-unmodified-since (in an hour)",
                proto::CopySourcePreconditions {
                    if_unmodified_since: Some(ts(3600)),
                    ..Default::default()
                },
                true,
            ),
            (
                "if-unmodified-since (an hour ago)",
                proto::CopySourcePreconditions {
                    if_unmodified_since: Some(ts(-3600)),
                    ..Default::default()
                },
                false,
            ),
        ];
        for (i, (what, conditions, passes)) in cases.into_iter().enumerate() {
            let dest = format!("{key}-{i}");
            let mut req = copy_request(BUCKET, key, BUCKET, &dest);
            req.source_preconditions = Some(conditions);
            let result = client.copy_object(req).await;
            if passes {
                let out = result.unwrap_or_else(|s| panic!("{key} {what}: {s:?}"));
                assert_eq!(out.into_inner().size, size as i64);
                assert_eq!(read_all(&stack, BUCKET, &dest, "").await, body);
            } else {
                let status = result.expect_err(what);
                assert_eq!(
                    status.code(),
                    Code::FailedPrecondition,
                    "{key} {what}: {status:?}"
                );
                assert!(!exists(&stack, BUCKET, &dest).await, "{key} {what}");
            }
        }
    }
    assert_eq!(
        open_uploads(&stack, BUCKET).await,
        0,
        "failed copies left uploads"
    );
    stack.stop().await;
}

#[tokio::test]
async fn forbid_overwrite() {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    for (size, key) in [(SMALL, "f/small"), (LARGE, "f/large")] {
        let body = data(size, 5);
        write_source(&stack, BUCKET, key, &body, source_tags()).await;
        let dest = format!("{key}-dest");
        let existing = b"already here".to_vec();
        write(&mut client, spec(BUCKET, &dest), &existing).await;
        let mut req = copy_request(BUCKET, key, BUCKET, &dest);
        req.forbid_overwrite = true;
        let status = client.copy_object(req.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::AlreadyExists, "{key}: {status:?}");
        assert_eq!(oss_reason(&status).as_deref(), Some("FileAlreadyExists"));
        assert_eq!(read_all(&stack, BUCKET, &dest, "").await, existing);
        // A new key is fine.
        req.destination_key = format!("{key}-new");
        client.copy_object(req).await.unwrap();
        assert_eq!(
            read_all(&stack, BUCKET, &format!("{key}-new"), "").await,
            body
        );
    }
    assert_eq!(open_uploads(&stack, BUCKET).await, 0);
    stack.stop().await;
}

#[tokio::test]
async fn a_part_failure_mid_copy_is_retried() {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    let body = data(LARGE, 6);
    write_source(&stack, BUCKET, "r/source", &body, source_tags()).await;
    let faults = stack.emulator.faults();
    faults.reset_counts();
    // Two parts go through, then four 503s: one part exhausts the client's three attempts
    // and is copied again in the copier's second round.
    faults.inject(Fault {
        op: FaultOp::UploadPartCopy,
        kind: FaultKind::Delay(Duration::ZERO),
        times: 2,
    });
    faults.inject(Fault {
        op: FaultOp::UploadPartCopy,
        kind: FaultKind::Status(503, "ServiceUnavailable"),
        times: 4,
    });
    let out = client
        .copy_object(copy_request(BUCKET, "r/source", BUCKET, "r/dest"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(faults.pending(), 0, "every injected fault was hit");
    let parts = (LARGE as u64).div_ceil(PART);
    assert_eq!(out.part_count as u64, parts);
    assert_eq!(faults.count(FaultOp::UploadPartCopy), parts + 4);
    assert_eq!(read_all(&stack, BUCKET, "r/dest", "").await, body);
    assert_eq!(
        get_tags(&mut client, BUCKET, "r/dest", "").await,
        source_tags()
    );
    assert_eq!(open_uploads(&stack, BUCKET).await, 0);
    stack.stop().await;
}

#[tokio::test]
async fn a_part_that_keeps_failing_fails_the_copy_and_leaves_nothing() {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    let body = data(LARGE, 7);
    write_source(&stack, BUCKET, "g/source", &body, source_tags()).await;
    let faults = stack.emulator.faults();
    faults.inject(Fault {
        op: FaultOp::UploadPartCopy,
        kind: FaultKind::Delay(Duration::ZERO),
        times: 3,
    });
    faults.inject(Fault {
        op: FaultOp::UploadPartCopy,
        kind: FaultKind::Status(503, "ServiceUnavailable"),
        times: 1000,
    });
    let status = client
        .copy_object(copy_request(BUCKET, "g/source", BUCKET, "g/dest"))
        .await
        .unwrap_err();
    faults.clear();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("ServiceUnavailable"));
    assert!(faults.count(FaultOp::AbortMultipartUpload) >= 1);
    assert_eq!(open_uploads(&stack, BUCKET).await, 0);
    assert!(!exists(&stack, BUCKET, "g/dest").await);

    // A refusal (not retryable) ends the copy at once.
    faults.reset_counts();
    faults.inject(Fault {
        op: FaultOp::UploadPartCopy,
        kind: FaultKind::Status(403, "AccessDenied"),
        times: 1,
    });
    let status = client
        .copy_object(copy_request(BUCKET, "g/source", BUCKET, "g/dest"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(open_uploads(&stack, BUCKET).await, 0);
    assert!(!exists(&stack, BUCKET, "g/dest").await);
    stack.stop().await;
}

#[tokio::test]
async fn a_cancelled_copy_leaves_no_upload() {
    let stack = copy_stack().await;
    let body = data(LARGE, 8);
    write_source(&stack, BUCKET, "c/source", &body, source_tags()).await;
    let faults = stack.emulator.faults();
    faults.inject(Fault {
        op: FaultOp::UploadPartCopy,
        kind: FaultKind::Delay(Duration::from_millis(500)),
        times: 100,
    });
    let copy = tokio::spawn({
        let mut client = stack.client.clone();
        async move {
            client
                .copy_object(copy_request(BUCKET, "c/source", BUCKET, "c/dest"))
                .await
        }
    });
    // The caller gives up while parts are being copied (dropping the call cancels it).
    while faults.count(FaultOp::UploadPartCopy) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!copy.is_finished(), "the copy should still be running");
    copy.abort();
    faults.clear();
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = open_uploads(&stack, BUCKET).await;
        if left == 0 && faults.count(FaultOp::AbortMultipartUpload) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the cancelled copy's upload was aborted");
    assert!(faults.count(FaultOp::InitiateMultipartUpload) >= 1);
    assert!(!exists(&stack, BUCKET, "c/dest").await);
    stack.stop().await;
}

#[tokio::test]
async fn source_tags_changed_during_a_copy_reach_the_destination() {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    let body = data(LARGE, 10);
    write_source(&stack, BUCKET, "t/source", &body, source_tags()).await;
    let faults = stack.emulator.faults();
    faults.reset_counts();
    faults.inject(Fault {
        op: FaultOp::UploadPartCopy,
        kind: FaultKind::Delay(Duration::from_millis(500)),
        times: 100,
    });
    let copy = tokio::spawn({
        let mut client = client.clone();
        async move {
            client
                .copy_object(copy_request(BUCKET, "t/source", BUCKET, "t/dest"))
                .await
        }
    });
    // Once parts are being copied the source's tags were read; change them now.
    while faults.count(FaultOp::UploadPartCopy) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let changed = tags(&[("status", "re tagged"), ("ключ", "новое/значение")]);
    client
        .put_object_tagging(proto::PutObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: "t/source".into(),
            version_id: String::new(),
            tagging: Some(changed.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let out = copy.await.unwrap().unwrap().into_inner();
    faults.clear();
    assert!(out.part_count > 1);
    assert!(out.source_tags_changed, "{out:?}");
    assert_eq!(get_tags(&mut client, BUCKET, "t/dest", "").await, changed);
    assert_eq!(read_all(&stack, BUCKET, "t/dest", "").await, body);

    // REPLACE does not look at the source's tags at all.
    let mut req = copy_request(BUCKET, "t/source", BUCKET, "t/dest2");
    req.tagging_directive = proto::TaggingDirective::Replace.into();
    req.tagging = Some(replacement_tags());
    let out = client.copy_object(req).await.unwrap().into_inner();
    assert!(!out.source_tags_changed);
    assert_eq!(
        get_tags(&mut client, BUCKET, "t/dest2", "").await,
        replacement_tags()
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_source_overwritten_during_a_copy_fails_it() {
    let stack = copy_stack().await;
    let client = stack.client.clone();
    write_source(&stack, BUCKET, "o/source", &data(LARGE, 11), source_tags()).await;
    let faults = stack.emulator.faults();
    faults.reset_counts();
    faults.inject(Fault {
        op: FaultOp::UploadPartCopy,
        kind: FaultKind::Delay(Duration::from_millis(1000)),
        times: 100,
    });
    let copy = tokio::spawn({
        let mut client = client.clone();
        async move {
            client
                .copy_object(copy_request(BUCKET, "o/source", BUCKET, "o/dest"))
                .await
        }
    });
    while faults.count(FaultOp::UploadPartCopy) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    write_source(&stack, BUCKET, "o/source", &data(LARGE, 12), source_tags()).await;
    let status = copy.await.unwrap().unwrap_err();
    faults.clear();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("SourceChanged"));
    assert_eq!(open_uploads(&stack, BUCKET).await, 0);
    assert!(!exists(&stack, BUCKET, "o/dest").await);
    stack.stop().await;
}

#[tokio::test]
async fn copying_a_symlink_copies_the_link() {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    let body = data(LARGE, 13);
    write_source(&stack, BUCKET, "s/target", &body, source_tags()).await;
    client
        .put_symlink(proto::PutSymlinkRequest {
            bucket: BUCKET.into(),
            key: "s/link".into(),
            target_key: "s/target".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let out = client
        .copy_object(copy_request(BUCKET, "s/link", BUCKET, "s/link-copy"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.part_count, 0, "a link is copied with one CopyObject");
    let link = client
        .get_symlink(proto::GetSymlinkRequest {
            bucket: BUCKET.into(),
            key: "s/link-copy".into(),
            version_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(link.target_key, "s/target");
    stack.stop().await;
}

#[tokio::test]
async fn copy_errors() {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    let mut req = copy_request(BUCKET, "e/missing", BUCKET, "e/dest");
    let status = client.copy_object(req.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    req.tagging_directive = proto::TaggingDirective::Replace.into();
    let status = client.copy_object(req.clone()).await.unwrap_err();
    assert_invalid(&status, "tagging");
    req.tagging_directive = proto::TaggingDirective::Copy.into();
    req.tagging = Some(tags(&[("a", "b")]));
    req.content_type = "text/plain".into();
    let status = client.copy_object(req).await.unwrap_err();
    assert_invalid(&status, "tagging");
    assert_invalid(&status, "content_type");
    assert_eq!(stack.oss_requests(), 1, "invalid requests never reach OSS");
    stack.stop().await;
}

#[tokio::test]
async fn update_metadata_keeps_tags_unless_told() {
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    for bucket in [BUCKET, VERSIONED_BUCKET] {
        for (size, key) in [(SMALL, "m/small"), (LARGE, "m/large")] {
            let body = data(size, 14);
            write_source(&stack, bucket, key, &body, source_tags()).await;
            let update = |tagging: Option<proto::Tagging>| proto::UpdateObjectMetadataRequest {
                bucket: bucket.into(),
                key: key.into(),
                metadata: metadata(&[("Reviewed-By", "carol")]),
                content_type: "application/json".into(),
                content_disposition: "attachment; filename=\"r.json\"".into(),
                tagging,
                ..Default::default()
            };
            let out = client
                .update_object_metadata(update(None))
                .await
                .unwrap()
                .into_inner();
            let h = head(&mut client, bucket, key).await;
            assert_eq!(
                h.metadata,
                metadata(&[("reviewed-by", "carol")]),
                "{bucket}"
            );
            assert_eq!(h.content_type, "application/json");
            assert_eq!(h.content_disposition, "attachment; filename=\"r.json\"");
            assert_eq!(h.cache_control, "max-age=60", "what is not resent is kept");
            assert_eq!(h.version_id, out.version_id);
            assert_eq!(h.size, size as i64);
            assert_eq!(
                get_tags(&mut client, bucket, key, "").await,
                source_tags(),
                "{bucket} {key}: tags kept"
            );
            assert_eq!(read_all(&stack, bucket, key, "").await, body);

            client
                .update_object_metadata(update(Some(replacement_tags())))
                .await
                .unwrap();
            assert_eq!(
                get_tags(&mut client, bucket, key, "").await,
                replacement_tags()
            );
            client
                .update_object_metadata(update(Some(tags(&[]))))
                .await
                .unwrap();
            assert_eq!(get_tags(&mut client, bucket, key, "").await, tags(&[]));
            assert_eq!(head(&mut client, bucket, key).await.tag_count, 0);
        }
    }
    let status = client
        .update_object_metadata(proto::UpdateObjectMetadataRequest {
            bucket: BUCKET.into(),
            key: "m/missing".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    stack.stop().await;
}

#[tokio::test]
async fn copies_that_replace_tags_are_audited_with_the_request_that_set_them() {
    let (capture, _guard) = Capture::start();
    let stack = copy_stack().await;
    let mut client = stack.client.clone();
    for (size, multipart) in [(SMALL, false), (LARGE, true)] {
        let source = format!("audit/source-{size}");
        let dest = format!("audit/dest-{size}");
        write_source(&stack, BUCKET, &source, &data(size, 9), source_tags()).await;
        capture.clear();
        let mut req = copy_request(BUCKET, &source, BUCKET, &dest);
        req.tagging_directive = proto::TaggingDirective::Replace.into();
        req.tagging = Some(tags(&[("audited", "yes")]));
        let out = client.copy_object(req).await.unwrap().into_inner();
        assert_eq!(out.part_count > 0, multipart, "{out:?}");

        let events = capture.audit();
        assert_eq!(events.len(), 1, "{events:#?}");
        let event = &events[0];
        assert_eq!(event["message"], "tag mutation", "{event}");
        assert_eq!(event["method"], "CopyObject", "{event}");
        assert_eq!(event["key"], dest.as_str(), "{event}");
        assert_eq!(event["tags_after"], r#"{"audited":"yes"}"#, "{event}");
        assert_eq!(event["outcome"], "ok", "{event}");
        // The request that created the destination with its tags: one CopyObject (a PUT),
        // or the CompleteMultipartUpload (the POSTs on the destination are Initiate, then
        // Complete).
        let expected = if multipart {
            let posts = capture.oss_requests("POST", BUCKET, &dest);
            assert_eq!(posts.len(), 2, "initiate and complete: {posts:?}");
            posts[1].clone()
        } else {
            let puts = capture.oss_requests("PUT", BUCKET, &dest);
            assert_eq!(puts.len(), 1, "{puts:?}");
            puts[0].clone()
        };
        assert!(!expected.is_empty());
        assert_eq!(event["oss_request_id"], expected.as_str(), "{event}");
    }
    stack.stop().await;
}
