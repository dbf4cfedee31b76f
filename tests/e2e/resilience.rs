//! Resilience: OSS failures retried within the retry budget, a clean failure once it is
//! spent, and call deadlines that end the call with DEADLINE_EXCEEDED and leave no upload
//! behind.

use std::time::Duration;

use ossgate::{
    emulator::{Fault, FaultKind, FaultOp},
    model::crc64,
    proto::{self, object_service_client::ObjectServiceClient},
};
use tonic::{Code, Request};
use tonic_types::StatusExt;

use crate::common::*;

/// The smallest part OSS allows, so a few hundred KiB make a multipart upload.
const PART: usize = 128 * 1024;

/// A stack with short backoffs and `settings` on top.
async fn stack_with(settings: &[(&'static str, &str)]) -> Stack {
    let mut all = vec![
        ("OSSGATE_OSS__RETRY_BASE_DELAY_MS", "10".to_string()),
        ("OSSGATE_OSS__RETRY_MAX_DELAY_MS", "50".to_string()),
        ("OSSGATE_UPLOAD__PART_SIZE_BYTES", PART.to_string()),
    ];
    all.extend(settings.iter().map(|(k, v)| (*k, v.to_string())));
    Stack::start_with(StackOptions {
        settings: all,
        ..Default::default()
    })
    .await
}

/// A budget of exactly `burst` retries that never refills.
const TWO_RETRIES_EVER: &[(&str, &str)] = &[
    ("OSSGATE_OSS__RETRY_BUDGET_BURST", "2"),
    ("OSSGATE_OSS__RETRY_BUDGET_RATIO", "0"),
    ("OSSGATE_OSS__RETRY_BUDGET_MIN_PER_SEC", "0"),
];

fn fault(op: FaultOp, kind: FaultKind, times: u32) -> Fault {
    Fault { op, kind, times }
}

fn put_tags_request(key: &str, pairs: &[(&str, &str)]) -> proto::PutObjectTaggingRequest {
    proto::PutObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        version_id: String::new(),
        tagging: Some(tags(pairs)),
    }
}

/// Waits (boundedly) until the emulator has no open multipart upload: aborts of cancelled
/// calls run in the background.
async fn no_open_uploads(stack: &Stack) {
    for _ in 0..100 {
        if stack.emulator.open_uploads().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("orphaned uploads: {:?}", stack.emulator.open_uploads());
}

/// A gRPC client over plain hyper HTTP/2: unlike a tonic `Channel`, it keeps no timer of
/// its own for `grpc-timeout`, so what the caller sees is exactly what the server answered.
fn client_without_local_deadline(
    stack: &Stack,
) -> ObjectServiceClient<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        tonic::body::Body,
    >,
> {
    let addr = stack.server.as_ref().expect("running").local_addr();
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let origin: http::Uri = format!("http://{addr}").parse().expect("uri");
    ObjectServiceClient::with_origin(http, origin)
}

#[tokio::test]
async fn injected_503s_and_dropped_connections_on_tagging_are_retried_to_success() {
    let stack = stack_with(&[]).await;
    let mut client = stack.client.clone();
    write(&mut client, spec(BUCKET, "tagged.txt"), b"hello").await;
    let faults = stack.emulator.faults();
    faults.reset_counts();

    faults.inject(fault(
        FaultOp::PutObjectTagging,
        FaultKind::Status(503, "ServiceUnavailable"),
        2,
    ));
    client
        .put_object_tagging(put_tags_request("tagged.txt", &[("team", "storage")]))
        .await
        .expect("two 503s are retried");
    assert_eq!(faults.count(FaultOp::PutObjectTagging), 3, "1 + 2 retries");

    // (Counted from here: a tag change may read the tags first, for the audit trail.)
    faults.reset_counts();
    faults.inject(fault(
        FaultOp::GetObjectTagging,
        FaultKind::DropConnection,
        2,
    ));
    let got = get_tags(&mut client, BUCKET, "tagged.txt", "").await;
    assert_eq!(got.tags.get("team").map(String::as_str), Some("storage"));
    assert_eq!(faults.count(FaultOp::GetObjectTagging), 3, "1 + 2 retries");

    // Throttling is retried too.
    faults.inject(fault(
        FaultOp::DeleteObjectTagging,
        FaultKind::Status(503, "SlowDown"),
        1,
    ));
    client
        .delete_object_tagging(proto::DeleteObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: "tagged.txt".into(),
            version_id: String::new(),
        })
        .await
        .expect("throttling is retried");
    assert_eq!(faults.count(FaultOp::DeleteObjectTagging), 2);
    assert_eq!(faults.pending(), 0, "every injected fault was hit");
    stack.stop().await;
}

#[tokio::test]
async fn injected_503s_and_dropped_connections_on_upload_part_are_retried_to_success() {
    // Five attempts per request: however the four faults fall on the parts, each part
    // succeeds within its attempts.
    let stack = stack_with(&[
        ("OSSGATE_OSS__RETRY_MAX_ATTEMPTS", "5"),
        ("OSSGATE_UPLOAD__PARALLELISM", "3"),
    ])
    .await;
    let mut client = stack.client.clone();
    let faults = stack.emulator.faults();
    faults.inject(fault(
        FaultOp::UploadPart,
        FaultKind::Status(503, "ServiceUnavailable"),
        2,
    ));
    faults.inject(fault(FaultOp::UploadPart, FaultKind::DropConnection, 2));
    let data = pseudo_random(5 * PART + 999, 11);
    let written = write_chunks(&mut client, spec(BUCKET, "retried.bin"), &data, 64 * 1024)
        .await
        .expect("part failures are retried");
    assert_eq!(written.crc64ecma, crc64(&data));
    assert!(read_all(&stack, BUCKET, "retried.bin", "").await == data);
    assert_eq!(
        faults.count(FaultOp::UploadPart),
        6 + 4,
        "6 parts + 4 retries"
    );
    assert_eq!(faults.pending(), 0);
    no_open_uploads(&stack).await;
    stack.stop().await;
}

#[tokio::test]
async fn an_exhausted_retry_budget_fails_fast_with_the_last_error() {
    let stack = stack_with(TWO_RETRIES_EVER).await;
    let mut client = stack.client.clone();
    write(&mut client, spec(BUCKET, "busy.txt"), b"x").await;
    let faults = stack.emulator.faults();
    faults.reset_counts();
    faults.inject(fault(
        FaultOp::PutObjectTagging,
        FaultKind::Status(503, "ServiceUnavailable"),
        1000,
    ));

    // The first call spends the whole budget on its two retries.
    let status = client
        .put_object_tagging(put_tags_request("busy.txt", &[("a", "1")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(faults.count(FaultOp::PutObjectTagging), 3);

    // The next one is not retried: one request, the same error, and why.
    let status = client
        .put_object_tagging(put_tags_request("busy.txt", &[("a", "2")]))
        .await
        .unwrap_err();
    assert_eq!(faults.count(FaultOp::PutObjectTagging), 4, "no retry");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        oss_reason(&status).as_deref(),
        Some("ServiceUnavailable"),
        "{status:?}"
    );
    assert!(
        status.message().contains("retry budget is exhausted"),
        "{status:?}"
    );
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(
        info.metadata.get("http_status").map(String::as_str),
        Some("503")
    );

    // Throttling without budget: RESOURCE_EXHAUSTED telling the caller when to retry.
    faults.clear();
    faults.reset_counts();
    faults.inject(fault(
        FaultOp::GetObjectTagging,
        FaultKind::Status(503, "SlowDown"),
        1000,
    ));
    let status = client
        .get_object_tagging(proto::GetObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: "busy.txt".into(),
            version_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("SlowDown"));
    assert!(status.get_error_details().retry_info().is_some());
    assert_eq!(faults.count(FaultOp::GetObjectTagging), 1, "no retry");

    // Once OSS recovers, calls succeed again (a first attempt needs no budget).
    faults.clear();
    client
        .put_object_tagging(put_tags_request("busy.txt", &[("a", "3")]))
        .await
        .expect("OSS is back");
    stack.stop().await;
}

#[tokio::test]
async fn an_exhausted_retry_budget_fails_a_multipart_write_cleanly() {
    let mut settings = TWO_RETRIES_EVER.to_vec();
    settings.extend([
        ("OSSGATE_OSS__RETRY_MAX_ATTEMPTS", "5"),
        ("OSSGATE_UPLOAD__PARALLELISM", "1"),
    ]);
    let stack = stack_with(&settings).await;
    let mut client = stack.client.clone();
    let faults = stack.emulator.faults();
    faults.inject(fault(
        FaultOp::UploadPart,
        FaultKind::Status(503, "ServiceUnavailable"),
        1000,
    ));
    let data = pseudo_random(4 * PART, 12);
    let status = write_chunks(&mut client, spec(BUCKET, "unlucky.bin"), &data, 64 * 1024)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("ServiceUnavailable"));
    assert!(
        status.message().contains("retry budget is exhausted"),
        "{status:?}"
    );
    // The first part: one attempt and the budget's two retries; no other part was sent.
    assert_eq!(faults.count(FaultOp::UploadPart), 3);
    faults.clear();
    // The abort needs no retry, so it still goes through.
    no_open_uploads(&stack).await;
    assert_eq!(faults.count(FaultOp::AbortMultipartUpload), 1);
    assert!(!exists(&stack, BUCKET, "unlucky.bin").await);
    stack.stop().await;
}

#[tokio::test]
async fn a_deadline_shorter_than_a_slow_oss_call_is_deadline_exceeded() {
    let stack = stack_with(&[]).await;
    let mut setup = stack.client.clone();
    write(&mut setup, spec(BUCKET, "slow.txt"), b"x").await;
    let faults = stack.emulator.faults();
    faults.inject(fault(
        FaultOp::PutObjectTagging,
        FaultKind::Delay(Duration::from_secs(30)),
        1,
    ));
    let mut client = client_without_local_deadline(&stack);
    let mut request = Request::new(put_tags_request("slow.txt", &[("late", "yes")]));
    request.set_timeout(Duration::from_millis(300));
    let status = client.put_object_tagging(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(faults.count(FaultOp::PutObjectTagging), 1, "not retried");

    stack.stop().await;
}

#[tokio::test]
async fn a_retry_that_could_not_finish_before_the_deadline_is_not_started() {
    let stack = stack_with(&[
        ("OSSGATE_OSS__RETRY_BASE_DELAY_MS", "5000"),
        ("OSSGATE_OSS__RETRY_MAX_DELAY_MS", "5000"),
    ])
    .await;
    let faults = stack.emulator.faults();
    faults.inject(fault(
        FaultOp::GetObjectTagging,
        FaultKind::Status(503, "ServiceUnavailable"),
        1000,
    ));
    // The first retry would wait at least 2.5 s; the caller allows 1 s.
    let mut client = client_without_local_deadline(&stack);
    let mut request = Request::new(proto::GetObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: "any".into(),
        version_id: String::new(),
    });
    request.set_timeout(Duration::from_secs(1));
    let status = client.get_object_tagging(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("ServiceUnavailable"));
    assert_eq!(faults.count(FaultOp::GetObjectTagging), 1);
    stack.stop().await;
}

#[tokio::test]
async fn a_deadline_during_a_slow_multipart_write_leaves_no_upload_and_no_object() {
    let stack = stack_with(&[("OSSGATE_UPLOAD__PARALLELISM", "2")]).await;
    let faults = stack.emulator.faults();
    faults.inject(fault(
        FaultOp::UploadPart,
        FaultKind::Delay(Duration::from_secs(30)),
        1000,
    ));
    let data = pseudo_random(4 * PART, 13);
    let mut client = client_without_local_deadline(&stack);
    let mut request = Request::new(tokio_stream::iter(write_messages(
        spec(BUCKET, "late.bin"),
        &data,
        64 * 1024,
    )));
    request.set_timeout(Duration::from_secs(1));
    let status = client.write_object(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        faults.count(FaultOp::InitiateMultipartUpload) == 1
            && faults.count(FaultOp::UploadPart) >= 1,
        "the upload had started: {:?}",
        faults.counts()
    );
    // The cancelled write's guard aborts the upload in the background.
    no_open_uploads(&stack).await;
    assert!(faults.count(FaultOp::AbortMultipartUpload) >= 1);
    assert_eq!(faults.count(FaultOp::CompleteMultipartUpload), 0);
    assert!(!exists(&stack, BUCKET, "late.bin").await);
    stack.stop().await;
}

#[tokio::test]
async fn the_read_timeout_ends_a_stalled_oss_request() {
    let stack = stack_with(&[("OSSGATE_OSS__READ_TIMEOUT_MS", "300")]).await;
    let mut client = stack.client.clone();
    write(&mut client, spec(BUCKET, "stalled.txt"), b"x").await;
    let faults = stack.emulator.faults();
    faults.reset_counts();
    faults.inject(fault(
        FaultOp::GetObjectTagging,
        FaultKind::Delay(Duration::from_secs(30)),
        1,
    ));
    let status = client
        .get_object_tagging(proto::GetObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: "stalled.txt".into(),
            version_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        oss_reason(&status).as_deref(),
        Some("Timeout"),
        "{status:?}"
    );
    // A request that timed out may have been carried out: it is not sent again.
    assert_eq!(faults.count(FaultOp::GetObjectTagging), 1);
    stack.stop().await;
}
