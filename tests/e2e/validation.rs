//! Every validation failure reaches the caller as INVALID_ARGUMENT naming the field, and not
//! one request reaches OSS.

use ossgate::proto;
use tonic::Status;

use crate::common::*;

fn long(n: usize, c: char) -> String {
    std::iter::repeat_n(c, n).collect()
}

fn eleven_tags() -> proto::Tagging {
    proto::Tagging {
        tags: (0..11)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect(),
    }
}

/// (description, field expected in the BadRequest, the call).
async fn tagging_cases(stack: &Stack) -> Vec<(&'static str, &'static str, Status)> {
    let mut client = stack.client.clone();
    let put = |bucket: &str, key: &str, version: &str, tagging: Option<proto::Tagging>| {
        proto::PutObjectTaggingRequest {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version.into(),
            tagging,
            ..Default::default()
        }
    };
    let cases: Vec<(&'static str, &'static str, proto::PutObjectTaggingRequest)> = vec![
        ("empty bucket", "bucket", put("", "k", "", Some(tags(&[])))),
        (
            "upper-case bucket",
            "bucket",
            put("Bad-Bucket", "k", "", Some(tags(&[]))),
        ),
        (
            "short bucket",
            "bucket",
            put("ab", "k", "", Some(tags(&[]))),
        ),
        (
            "bucket with underscore",
            "bucket",
            put("a_bucket", "k", "", Some(tags(&[]))),
        ),
        ("empty key", "key", put(BUCKET, "", "", Some(tags(&[])))),
        (
            "leading slash",
            "key",
            put(BUCKET, "/abs", "", Some(tags(&[]))),
        ),
        (
            "leading backslash",
            "key",
            put(BUCKET, "\\abs", "", Some(tags(&[]))),
        ),
        (
            "1024-byte key",
            "key",
            put(BUCKET, &long(1024, 'k'), "", Some(tags(&[]))),
        ),
        (
            "NUL in key",
            "key",
            put(BUCKET, "a\u{0}b", "", Some(tags(&[]))),
        ),
        ("missing tagging", "tagging", put(BUCKET, "k", "", None)),
        (
            "11 tags",
            "tagging",
            put(BUCKET, "k", "", Some(eleven_tags())),
        ),
        (
            "129-char tag key",
            "tagging.tags[\"",
            put(BUCKET, "k", "", Some(tags(&[(&long(129, 'a'), "v")]))),
        ),
        (
            "257-char tag value",
            "tagging.tags[\"",
            put(BUCKET, "k", "", Some(tags(&[("k", &long(257, 'v'))]))),
        ),
        (
            "empty tag key",
            "tagging.tags[\"",
            put(BUCKET, "k", "", Some(tags(&[("", "v")]))),
        ),
        (
            "ampersand in tag key",
            "tagging.tags[\"",
            put(BUCKET, "k", "", Some(tags(&[("a&b", "v")]))),
        ),
        (
            "question mark in tag value",
            "tagging.tags[\"",
            put(BUCKET, "k", "", Some(tags(&[("k", "why?")]))),
        ),
    ];
    let mut out = Vec::new();
    for (what, field, request) in cases {
        let status = client.put_object_tagging(request).await.expect_err(what);
        out.push((what, field, status));
    }
    out
}

/// Like [`assert_invalid`] but `field` may be a prefix (tag violations name the tag).
fn assert_invalid_prefix(what: &str, status: &Status, field: &str) {
    use tonic_types::StatusExt;
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "{what}: {status:?}"
    );
    let details = status.get_error_details();
    let violations = &details.bad_request().expect("BadRequest").field_violations;
    assert!(
        violations
            .iter()
            .any(|v| v.field.starts_with(field) && !v.description.is_empty()),
        "{what}: expected a violation under {field}, got {violations:?}"
    );
}

#[tokio::test]
async fn bad_tagging_requests_never_reach_oss() {
    let stack = Stack::start().await;
    let before = stack.oss_requests();
    for (what, field, status) in tagging_cases(&stack).await {
        assert_invalid_prefix(what, &status, field);
    }
    assert_eq!(
        stack.oss_requests(),
        before,
        "a bad request reached the emulator"
    );
    stack.stop().await;
}

#[tokio::test]
async fn bad_writes_never_reach_oss() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let before = stack.oss_requests();

    let with = |f: &dyn Fn(&mut proto::WriteObjectSpec)| {
        let mut s = spec(BUCKET, "object.txt");
        f(&mut s);
        s
    };
    let cases: Vec<(&str, &str, proto::WriteObjectSpec)> = vec![
        (
            "bad bucket",
            "spec.bucket",
            with(&|s| s.bucket = "UPPER".into()),
        ),
        ("bad key", "spec.key", with(&|s| s.key = "/x".into())),
        (
            "bad tag",
            "spec.tagging.tags[\"",
            with(&|s| s.tagging = Some(tags(&[("k", "a#b")]))),
        ),
        (
            "metadata key with underscore",
            "spec.metadata[\"",
            with(&|s| s.metadata = [("bad_key".to_string(), "v".to_string())].into()),
        ),
        (
            "non-ASCII metadata value",
            "spec.metadata[\"",
            with(&|s| s.metadata = [("k".to_string(), "é".to_string())].into()),
        ),
        (
            "metadata over 8 KB",
            "spec.metadata",
            with(&|s| s.metadata = (0..9).map(|i| (format!("k{i}"), long(1000, 'x'))).collect()),
        ),
        (
            "unknown storage class",
            "spec.storage_class",
            with(&|s| s.storage_class = 42),
        ),
        ("unknown acl", "spec.acl", with(&|s| s.acl = 42)),
        (
            "negative size",
            "spec.object_size",
            with(&|s| s.object_size = Some(-1)),
        ),
        (
            "content type with newline",
            "spec.content_type",
            with(&|s| s.content_type = "text/plain\r\nx-oss-meta-evil: 1".into()),
        ),
    ];
    for (what, field, spec) in cases {
        let status = write_chunks(&mut client, spec, b"data", 4)
            .await
            .expect_err(what);
        assert_invalid_prefix(what, &status, field);
    }

    // A first message without spec.
    let status = client
        .write_object(tokio_stream::iter(vec![proto::WriteObjectRequest {
            data: bytes::Bytes::from_static(b"x"),
            finish_write: true,
            ..Default::default()
        }]))
        .await
        .unwrap_err();
    assert_invalid(&status, "spec");

    // A bad MD5 length.
    let status = client
        .write_object(tokio_stream::iter(vec![proto::WriteObjectRequest {
            spec: Some(spec(BUCKET, "x")),
            finish_write: true,
            object_checksums: Some(proto::ObjectChecksums {
                crc64ecma: None,
                md5: bytes::Bytes::from_static(b"short"),
            }),
            ..Default::default()
        }]))
        .await
        .unwrap_err();
    assert_invalid(&status, "object_checksums.md5");

    assert_eq!(
        stack.oss_requests(),
        before,
        "a bad write reached the emulator"
    );
    stack.stop().await;
}

#[tokio::test]
async fn every_problem_is_reported_at_once() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let status = client
        .put_symlink(proto::PutSymlinkRequest {
            bucket: "B".into(),
            key: "".into(),
            target_key: "/t".into(),
            tagging: Some(tags(&[("bad&key", "v")])),
            metadata: [("bad key".to_string(), "v".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    for field in ["bucket", "key", "target_key"] {
        assert_invalid(&status, field);
    }
    assert_invalid_prefix("tag", &status, "tagging.tags[\"bad&key\"]");
    assert_invalid_prefix("metadata", &status, "metadata[\"bad key\"]");
    assert_eq!(stack.oss_requests(), 0);

    // Reads and heads validate too.
    let status = client
        .head_object(proto::HeadObjectRequest {
            bucket: BUCKET.into(),
            key: "k".into(),
            version_id: "bad\nversion".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&status, "version_id");
    let status = read(
        &mut client,
        proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: "k".into(),
            read_offset: Some(-5),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_invalid(&status, "read_offset");
    assert_eq!(stack.oss_requests(), 0);
    stack.stop().await;
}
