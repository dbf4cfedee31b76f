//! Per-object authorization of streamed writes (WriteObject, AppendObject, resumable writes)
//! and the tag audit trail of writes, against the real gateway and emulator.
//!
//! Audit events are captured with [`crate::audit_capture::Capture`], so each event's
//! `oss_request_id` is checked against the OSS request that made the change.

use ossgate::{
    config::auth::{AuthSettings, PolicyRule},
    proto::{self, object_service_client::ObjectServiceClient},
    server::RunningServer,
};
use serde_json::Value;
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

use crate::audit_capture::{Capture, only_event};
use crate::common::*;

const WRITER: &str = "writer-token-1";
const OTHER: &str = "other-token-2";
const NO_TAG: &str = "no-tag-token-3";

fn rule(principal: &str, prefixes: &[&str], ops: &[&str]) -> PolicyRule {
    policy_rule(principal, &[BUCKET, VERSIONED_BUCKET], prefixes, ops)
}

/// A gateway with auth in front of the stack's emulator:
/// * `writer`: read, write and tag under `w/`; read and write (no tag) under `notag/`;
/// * `other`: read and write under `other/` only;
/// * `notagger`: read and write under `w/`, no tag.
async fn gateway(stack: &Stack, extra: &[(&str, &str)]) -> RunningServer {
    let auth = AuthSettings {
        tokens: vec![
            token_setting("writer", WRITER),
            token_setting("other", OTHER),
            token_setting("notagger", NO_TAG),
        ],
        policy: vec![
            rule("writer", &["w/"], &["read", "write", "tag"]),
            rule("writer", &["notag/"], &["read", "write"]),
            rule("other", &["other/"], &["read", "write"]),
            rule("notagger", &["w/"], &["read", "write"]),
        ],
        ..Default::default()
    };
    // Small parts: a few hundred KB is a multipart upload.
    let mut settings = vec![("OSSGATE_UPLOAD__PART_SIZE_BYTES", "102400")];
    settings.extend_from_slice(extra);
    start_gateway(stack, auth, &settings).await
}

/// Writes `data` in 64 KiB messages as the principal of `token`.
async fn write_as(
    client: &mut ObjectServiceClient<Channel>,
    token: &str,
    spec: proto::WriteObjectSpec,
    data: &[u8],
) -> Result<proto::WriteObjectResponse, Status> {
    client
        .write_object(bearer(
            tokio_stream::iter(write_messages(spec, data, 64 * 1024)),
            token,
        ))
        .await
        .map(|r| r.into_inner())
}

async fn append_as(
    client: &mut ObjectServiceClient<Channel>,
    token: &str,
    spec: proto::AppendObjectSpec,
    position: i64,
    chunks: &[&[u8]],
) -> Result<proto::AppendObjectResponse, Status> {
    let mut messages = Vec::new();
    let mut position = position;
    for (i, chunk) in chunks.iter().enumerate() {
        messages.push(proto::AppendObjectRequest {
            spec: (i == 0).then(|| spec.clone()),
            position,
            data: bytes::Bytes::copy_from_slice(chunk),
        });
        position += chunk.len() as i64;
    }
    client
        .append_object(bearer(tokio_stream::iter(messages), token))
        .await
        .map(|r| r.into_inner())
}

/// StartResumableWrite as the principal of `token`: the upload id.
async fn start_as(
    client: &mut ObjectServiceClient<Channel>,
    token: &str,
    spec: proto::WriteObjectSpec,
) -> Result<String, Status> {
    let request = proto::StartResumableWriteRequest { spec: Some(spec) };
    let response = client.start_resumable_write(bearer(request, token)).await?;
    Ok(response.into_inner().upload_id)
}

/// QueryWriteStatus as the principal of `token`: the persisted size.
async fn query_as(
    client: &mut ObjectServiceClient<Channel>,
    token: &str,
    upload_id: &str,
) -> Result<i64, Status> {
    let request = proto::QueryWriteStatusRequest {
        upload_id: upload_id.into(),
    };
    let response = client.query_write_status(bearer(request, token)).await?;
    Ok(response.into_inner().persisted_size)
}

/// AbortResumableWrite as the principal of `token`.
async fn abort_as(
    client: &mut ObjectServiceClient<Channel>,
    token: &str,
    upload_id: &str,
) -> Result<(), Status> {
    let request = proto::AbortResumableWriteRequest {
        upload_id: upload_id.into(),
    };
    client.abort_resumable_write(bearer(request, token)).await?;
    Ok(())
}

/// Finishes a resumable write with `data` in one message, as the principal of `token`.
async fn finish_as(
    client: &mut ObjectServiceClient<Channel>,
    token: &str,
    upload_id: &str,
    data: &[u8],
) -> Result<proto::WriteObjectResponse, Status> {
    let message = proto::WriteObjectRequest {
        upload_id: upload_id.into(),
        data: bytes::Bytes::copy_from_slice(data),
        finish_write: true,
        ..Default::default()
    };
    let stream = tokio_stream::iter(vec![message]);
    let response = client.write_object(bearer(stream, token)).await?;
    Ok(response.into_inner())
}

fn append_spec(
    bucket: &str,
    key: &str,
    tagging: Option<proto::Tagging>,
) -> proto::AppendObjectSpec {
    proto::AppendObjectSpec {
        bucket: bucket.into(),
        key: key.into(),
        tagging,
        ..Default::default()
    }
}

fn tagged_spec(bucket: &str, key: &str, pairs: &[(&str, &str)]) -> proto::WriteObjectSpec {
    let mut s = spec(bucket, key);
    s.tagging = Some(tags(pairs));
    s
}

fn assert_denied(status: &Status, principal: &str, operation: &str, key: &str) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "PERMISSION_DENIED");
    assert_eq!(info.metadata["principal"], principal);
    assert_eq!(info.metadata["operation"], operation, "{status:?}");
    assert_eq!(info.metadata["key"], key, "{status:?}");
}

/// A denied call left no trace on OSS: no request at all, no object, no open upload.
async fn assert_untouched(stack: &Stack, before: u64, key: &str) {
    assert_eq!(stack.oss_requests(), before, "a denied call reached OSS");
    assert!(stack.emulator.open_uploads().is_empty());
    assert!(!exists(stack, BUCKET, key).await, "{key} exists");
}

#[tokio::test]
async fn streamed_writes_are_authorized_per_object() {
    let stack = Stack::start().await;
    let gateway = gateway(&stack, &[]).await;
    let mut client = connect(gateway.local_addr()).await;
    let small = b"hello".as_slice();
    let large = pseudo_random(300_000, 7);

    // Allowed: under the principal's prefix, single and multipart, with and without tags.
    write_as(&mut client, WRITER, spec(BUCKET, "w/plain.txt"), small)
        .await
        .expect("write under w/");
    let tagged = tagged_spec(BUCKET, "w/tagged.bin", &[("team", "a")]);
    let written = write_as(&mut client, WRITER, tagged, &large)
        .await
        .expect("multipart write with tags under w/");
    assert_eq!(written.size, large.len() as i64);
    assert_eq!(
        get_tags(&mut stack.client.clone(), BUCKET, "w/tagged.bin", "").await,
        tags(&[("team", "a")])
    );
    write_as(&mut client, WRITER, spec(BUCKET, "notag/plain.bin"), &large)
        .await
        .expect("write without tags where only write is allowed");

    // Denied by prefix, by operation (tags without `tag`), single and multipart-sized:
    // refused on the first message, before anything reaches OSS.
    let cases: Vec<(&str, proto::WriteObjectSpec, &[u8], &str)> = vec![
        (WRITER, spec(BUCKET, "other/x.txt"), small, "write"),
        (WRITER, spec(BUCKET, "other/big.bin"), &large, "write"),
        (OTHER, spec(BUCKET, "w/x.txt"), small, "write"),
        (
            WRITER,
            tagged_spec(BUCKET, "notag/t.txt", &[("k", "v")]),
            small,
            "tag",
        ),
        (
            WRITER,
            tagged_spec(BUCKET, "notag/t.bin", &[("k", "v")]),
            &large,
            "tag",
        ),
        (
            NO_TAG,
            tagged_spec(BUCKET, "w/nt.bin", &[("k", "v")]),
            &large,
            "tag",
        ),
    ];
    for (token, spec, data, operation) in cases {
        let key = spec.key.clone();
        let principal = match token {
            WRITER => "writer",
            OTHER => "other",
            _ => "notagger",
        };
        let before = stack.oss_requests();
        let status = write_as(&mut client, token, spec, data).await.unwrap_err();
        assert_denied(&status, principal, operation, &key);
        assert_untouched(&stack, before, &key).await;
    }

    // AppendObject: allowed under the prefix (with tags), denied elsewhere or without `tag`.
    let out = append_as(
        &mut client,
        WRITER,
        append_spec(BUCKET, "w/log", Some(tags(&[("kind", "log")]))),
        0,
        &[b"one ", b"two"],
    )
    .await
    .expect("append under w/");
    assert_eq!(out.next_append_position, 7);
    for (token, principal, key, tagging, operation) in [
        (OTHER, "other", "w/log2", None, "write"),
        (WRITER, "writer", "other/log", None, "write"),
        (
            WRITER,
            "writer",
            "notag/log",
            Some(tags(&[("k", "v")])),
            "tag",
        ),
    ] {
        let before = stack.oss_requests();
        let status = append_as(
            &mut client,
            token,
            append_spec(BUCKET, key, tagging),
            0,
            &[b"x"],
        )
        .await
        .unwrap_err();
        assert_denied(&status, principal, operation, key);
        assert_untouched(&stack, before, key).await;
    }
    // Someone else's appendable object, at its running position.
    let before = stack.oss_requests();
    let status = append_as(
        &mut client,
        OTHER,
        append_spec(BUCKET, "w/log", None),
        7,
        &[b"!"],
    )
    .await
    .unwrap_err();
    assert_denied(&status, "other", "write", "w/log");
    assert_eq!(stack.oss_requests(), before);
    assert_eq!(read_all(&stack, BUCKET, "w/log", "").await, b"one two");

    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn resumable_writes_check_the_object_named_in_the_upload_id() {
    let stack = Stack::start().await;
    let gateway = gateway(&stack, &[]).await;
    let mut client = connect(gateway.local_addr()).await;
    let data = pseudo_random(250_000, 11);

    // StartResumableWrite checks the spec's object.
    let before = stack.oss_requests();
    let tagged = tagged_spec(BUCKET, "notag/r.bin", &[("k", "v")]);
    let status = start_as(&mut client, WRITER, tagged).await.unwrap_err();
    assert_denied(&status, "writer", "tag", "notag/r.bin");
    assert_untouched(&stack, before, "notag/r.bin").await;

    let tagged = tagged_spec(BUCKET, "w/r.bin", &[("stage", "resumed")]);
    let upload_id = start_as(&mut client, WRITER, tagged)
        .await
        .expect("writer starts a resumable write under w/");
    assert_eq!(stack.emulator.open_uploads().len(), 1);

    // Another principal holding the id may not query, write, finish or abort it.
    let before = stack.oss_requests();
    let status = query_as(&mut client, OTHER, &upload_id).await.unwrap_err();
    assert_denied(&status, "other", "write", "w/r.bin");
    let status = abort_as(&mut client, OTHER, &upload_id).await.unwrap_err();
    assert_denied(&status, "other", "write", "w/r.bin");
    let status = finish_as(&mut client, OTHER, &upload_id, &data)
        .await
        .unwrap_err();
    assert_denied(&status, "other", "write", "w/r.bin");
    // The upload sets tags: finishing it needs `tag` too.
    let status = finish_as(&mut client, NO_TAG, &upload_id, &data)
        .await
        .unwrap_err();
    assert_denied(&status, "notagger", "tag", "w/r.bin");
    assert_eq!(stack.oss_requests(), before, "denied calls reached OSS");
    assert_eq!(
        stack.emulator.open_uploads().len(),
        1,
        "the upload is intact"
    );

    // The owner queries and finishes it.
    let persisted = query_as(&mut client, WRITER, &upload_id)
        .await
        .expect("writer queries");
    assert_eq!(persisted, 0);
    let done = finish_as(&mut client, WRITER, &upload_id, &data)
        .await
        .expect("writer finishes");
    assert_eq!(done.size, data.len() as i64);
    assert_eq!(read_all(&stack, BUCKET, "w/r.bin", "").await, data);
    assert_eq!(
        get_tags(&mut stack.client.clone(), BUCKET, "w/r.bin", "").await,
        tags(&[("stage", "resumed")])
    );

    // An abort by another principal is refused; the owner's goes through.
    let second = start_as(&mut client, WRITER, spec(BUCKET, "w/abandoned.bin"))
        .await
        .unwrap();
    let status = abort_as(&mut client, OTHER, &second).await.unwrap_err();
    assert_denied(&status, "other", "write", "w/abandoned.bin");
    assert_eq!(stack.emulator.open_uploads().len(), 1);
    abort_as(&mut client, WRITER, &second)
        .await
        .expect("writer aborts");
    assert!(stack.emulator.open_uploads().is_empty());

    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

/// Writes `data` as the writer, capturing from the start: its one audit event and the version
/// written.
async fn audited_write(
    client: &mut ObjectServiceClient<Channel>,
    capture: &Capture,
    spec: proto::WriteObjectSpec,
    data: &[u8],
) -> (Value, String) {
    capture.clear();
    let out = write_as(client, WRITER, spec, data).await.unwrap();
    (only_event(capture), out.version_id)
}

fn assert_event(
    event: &Value,
    method: &str,
    key: &str,
    version_id: &str,
    tags_after: &str,
    before: (&str, &str),
) {
    assert_eq!(event["message"], "tag mutation");
    assert_eq!(event["method"], method, "{event}");
    assert_eq!(event["principal"], "writer", "{event}");
    assert_eq!(event["bucket"], VERSIONED_BUCKET, "{event}");
    assert_eq!(event["key"], key, "{event}");
    assert_eq!(event["version_id"], version_id, "{event}");
    assert!(!version_id.is_empty());
    assert_eq!(event["tags_after"], tags_after, "{event}");
    assert_eq!(event["tags_before"], before.0, "{event}");
    assert_eq!(event["tags_before_source"], before.1, "{event}");
    assert_eq!(event["outcome"], "ok", "{event}");
    assert_eq!(event["code"], "OK", "{event}");
}

#[tokio::test]
async fn writes_with_tags_are_audited_with_the_request_that_set_them() {
    let (capture, _guard) = Capture::start();
    let stack = Stack::start().await;
    // Off by default; on here, so the events carry the tags read before each write.
    let gateway = gateway(&stack, &[("OSSGATE_AUDIT__READ_TAGS_BEFORE", "true")]).await;
    let mut client = connect(gateway.local_addr()).await;
    let b = VERSIONED_BUCKET;

    // Single PutObject with tags, new key: the tags before are read (no object: {}).
    let key = "w/simple.txt";
    let tagged = tagged_spec(b, key, &[("v", "1")]);
    let (event, version) = audited_write(&mut client, &capture, tagged, b"one").await;
    let after = r#"{"v":"1"}"#;
    assert_event(&event, "WriteObject", key, &version, after, ("{}", "read"));
    let puts = capture.oss_requests("PUT", b, key);
    assert_eq!(puts.len(), 1);
    assert_eq!(event["oss_request_id"], puts[0].as_str());
    assert_eq!(capture.oss_requests("GET", b, key).len(), 1, "one pre-read");

    // Overwrite with other tags: the previous ones are the tags before.
    let tagged = tagged_spec(b, key, &[("v", "2")]);
    let (event, version) = audited_write(&mut client, &capture, tagged, b"two").await;
    let before = (r#"{"v":"1"}"#, "read");
    assert_event(&event, "WriteObject", key, &version, r#"{"v":"2"}"#, before);
    assert_eq!(
        event["oss_request_id"],
        capture.oss_requests("PUT", b, key)[0].as_str()
    );

    // A write without tags is not a tag mutation here.
    capture.clear();
    write_as(&mut client, WRITER, spec(b, "w/untagged.txt"), b"x")
        .await
        .unwrap();
    assert!(capture.audit().is_empty());

    // Multipart with tags: one event, with the request id of CompleteMultipartUpload (the
    // last POST on the object; Initiate is the first).
    let key = "w/multipart.bin";
    let data = pseudo_random(300_000, 3);
    let tagged = tagged_spec(b, key, &[("m", "p")]);
    let (event, version) = audited_write(&mut client, &capture, tagged, &data).await;
    let after = r#"{"m":"p"}"#;
    assert_event(&event, "WriteObject", key, &version, after, ("{}", "read"));
    let posts = capture.oss_requests("POST", b, key);
    assert_eq!(posts.len(), 2, "initiate and complete");
    assert_eq!(event["oss_request_id"], posts[1].as_str());

    // forbid_overwrite in an unversioned bucket: the write creates the object, nothing to
    // read before.
    let key = "w/fresh.txt";
    let mut fresh = tagged_spec(BUCKET, key, &[("f", "1")]);
    fresh.forbid_overwrite = true;
    let (event, version) = audited_write(&mut client, &capture, fresh.clone(), b"new").await;
    assert_eq!(version, "");
    assert_eq!(event["bucket"], BUCKET);
    assert_eq!(event["key"], key);
    assert_eq!(event["outcome"], "ok");
    assert_eq!(event["version_id"], "");
    assert_eq!(event["tags_before"], "{}");
    assert_eq!(event["tags_before_source"], "new_object");
    assert_eq!(
        event["oss_request_id"],
        capture.oss_requests("PUT", BUCKET, key)[0].as_str()
    );
    assert!(
        capture.oss_requests("GET", BUCKET, key).is_empty(),
        "no pre-read"
    );
    // ... and a second one fails: logged as failed, with OSS's request id.
    capture.clear();
    let status = write_as(&mut client, WRITER, fresh, b"again")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let event = only_event(&capture);
    assert_eq!(event["outcome"], "failed");
    assert_eq!(event["code"], "AlreadyExists");
    assert_eq!(event["version_id"], "");
    assert_eq!(event["tags_before_source"], "not_read");
    assert_eq!(
        event["oss_request_id"],
        capture.oss_requests("PUT", BUCKET, key)[0].as_str()
    );
    // In a versioned bucket OSS ignores forbid_overwrite, so it proves nothing: unknown.
    let key = "w/simple.txt";
    let mut versioned = tagged_spec(b, key, &[("v", "3")]);
    versioned.forbid_overwrite = true;
    let (event, version) = audited_write(&mut client, &capture, versioned, b"three").await;
    let before = ("unknown", "not_read");
    assert_event(&event, "WriteObject", key, &version, r#"{"v":"3"}"#, before);

    // Resumable: the tags come from StartResumableWrite; the event is the finishing write.
    capture.clear();
    let key = "w/resumable.bin";
    let tagged = tagged_spec(b, key, &[("r", "1")]);
    let upload_id = start_as(&mut client, WRITER, tagged).await.unwrap();
    assert!(capture.audit().is_empty(), "starting sets no tags yet");
    let out = finish_as(&mut client, WRITER, &upload_id, &data)
        .await
        .unwrap();
    let event = only_event(&capture);
    assert_event(
        &event,
        "WriteObject",
        key,
        &out.version_id,
        r#"{"r":"1"}"#,
        ("{}", "read"),
    );
    let posts = capture.oss_requests("POST", b, key);
    assert_eq!(event["oss_request_id"], posts.last().unwrap().as_str());

    // AppendObject: the first append carries the tags; later appends are not audited.
    capture.clear();
    let key = "w/appended.log";
    let out = append_as(
        &mut client,
        WRITER,
        append_spec(b, key, Some(tags(&[("a", "1")]))),
        0,
        &[b"first ", b"second"],
    )
    .await
    .unwrap();
    assert_eq!(out.appends, 2);
    let event = only_event(&capture);
    let posts = capture.oss_requests("POST", b, key);
    assert_eq!(posts.len(), 2);
    assert_eq!(event["method"], "AppendObject");
    assert_eq!(event["oss_request_id"], posts[0].as_str());
    assert_eq!(event["tags_after"], r#"{"a":"1"}"#);
    assert_eq!(event["tags_before"], "{}");
    assert_eq!(event["tags_before_source"], "new_object");
    assert_eq!(event["outcome"], "ok");
    assert_eq!(event["principal"], "writer");
    assert!(!event["version_id"].as_str().unwrap().is_empty());
    capture.clear();
    append_as(&mut client, WRITER, append_spec(b, key, None), 12, &[b"!"])
        .await
        .unwrap();
    assert!(capture.audit().is_empty());

    // A refused write with tags is logged as failed, and nothing reached OSS.
    capture.clear();
    let status = write_as(
        &mut client,
        WRITER,
        tagged_spec(b, "notag/denied.txt", &[("d", "1")]),
        b"x",
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let event = only_event(&capture);
    assert_eq!(event["outcome"], "failed");
    assert_eq!(event["code"], "PermissionDenied");
    assert_eq!(event["key"], "notag/denied.txt");
    assert_eq!(event["oss_request_id"], "");
    assert_eq!(event["tags_before_source"], "not_read");
    assert!(
        capture
            .oss_requests("GET", b, "notag/denied.txt")
            .is_empty()
    );

    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn tagging_calls_record_the_tags_before_unless_turned_off() {
    let (capture, _guard) = Capture::start();
    let stack = Stack::start().await;
    let b = VERSIONED_BUCKET;
    let key = "w/tagging.txt";
    let mut admin = stack.client.clone();
    write(&mut admin, tagged_spec(b, key, &[("old", "1")]), b"x").await;

    for read_before in [true, false] {
        let setting = if read_before { "true" } else { "false" };
        let gateway = gateway(&stack, &[("OSSGATE_AUDIT__READ_TAGS_BEFORE", setting)]).await;
        let mut client = connect(gateway.local_addr()).await;
        let current = get_tags(&mut admin, b, key, "").await;
        let current: std::collections::BTreeMap<_, _> = current.tags.into_iter().collect();
        let current = serde_json::to_string(&current).unwrap();

        capture.clear();
        let out = client
            .put_object_tagging(bearer(
                proto::PutObjectTaggingRequest {
                    bucket: b.into(),
                    key: key.into(),
                    version_id: String::new(),
                    tagging: Some(tags(&[("new", setting)])),
                    ..Default::default()
                },
                WRITER,
            ))
            .await
            .unwrap()
            .into_inner();
        let event = only_event(&capture);
        let after = format!(r#"{{"new":"{setting}"}}"#);
        let expected_before = if read_before {
            (current.as_str(), "read")
        } else {
            ("unknown", "not_read")
        };
        assert_event(
            &event,
            "PutObjectTagging",
            key,
            &out.version_id,
            &after,
            expected_before,
        );
        assert_eq!(
            capture.oss_requests("GET", b, key).len(),
            usize::from(read_before),
            "{:#?}",
            capture.lines()
        );
        assert_eq!(
            event["oss_request_id"],
            capture.oss_requests("PUT", b, key)[0].as_str()
        );

        capture.clear();
        let out = client
            .delete_object_tagging(bearer(
                proto::DeleteObjectTaggingRequest {
                    bucket: b.into(),
                    key: key.into(),
                    version_id: String::new(),
                    ..Default::default()
                },
                WRITER,
            ))
            .await
            .unwrap()
            .into_inner();
        let event = only_event(&capture);
        let expected_before = if read_before {
            (after.as_str(), "read")
        } else {
            ("unknown", "not_read")
        };
        assert_event(
            &event,
            "DeleteObjectTagging",
            key,
            &out.version_id,
            "{}",
            expected_before,
        );
        assert_eq!(
            event["oss_request_id"],
            capture.oss_requests("DELETE", b, key)[0].as_str()
        );
        gateway.shutdown().await.unwrap();
    }
    stack.stop().await;
}
