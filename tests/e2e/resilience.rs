//! Resilience: OSS failures retried within the retry budget, a clean failure once it is
//! spent, and call deadlines that end the call with DEADLINE_EXCEEDED and leave no upload
//! behind.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use ossgate::{
    config::auth::AuthSettings,
    emulator::{Fault, FaultKind, FaultOp},
    model::crc64,
    proto::{self, object_service_client::ObjectServiceClient},
    server::RunningServer,
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
        ..Default::default()
    }
}

/// A gRPC client over plain hyper HTTP/2: unlike a tonic `Channel`, it keeps no timer of
/// its own for `grpc-timeout`, so what the caller sees is exactly what the server answered.
fn client_without_local_deadline(stack: &Stack) -> DeadlineClient {
    deadline_client(stack.server.as_ref().expect("running").local_addr())
}

type DeadlineClient = ObjectServiceClient<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        tonic::body::Body,
    >,
>;

/// [`client_without_local_deadline`] for the gateway at `addr`.
fn deadline_client(addr: SocketAddr) -> DeadlineClient {
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
            ..Default::default()
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
    stack.assert_no_leftover_uploads().await;
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
    stack.assert_no_leftover_uploads().await;
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
    stack.assert_no_leftover_uploads().await;
    assert!(faults.count(FaultOp::AbortMultipartUpload) >= 1);
    assert_eq!(faults.count(FaultOp::CompleteMultipartUpload), 0);
    assert!(!exists(&stack, BUCKET, "late.bin").await);
    stack.stop().await;
}

/// How long OSS's answer to InitiateMultipartUpload is held back in the tests below: well
/// past their callers' deadline.
const LATE_ANSWER: Duration = Duration::from_millis(1500);
/// The callers' deadline in those tests.
const SHORT_DEADLINE: Duration = Duration::from_millis(300);

type Forwarder = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

/// A proxy in front of OSS (`upstream`) that carries out every request at once, and to the
/// end even if the gateway hangs up, but holds back the answer to the next `slow` Initiates
/// by [`LATE_ANSWER`]: OSS has created the upload, and the gateway learns its id late. That
/// is how an upload gets orphaned. (The emulator's Delay fault waits *before* it runs a
/// request, and a caller that hangs up cancels it, so with it no upload is ever created after
/// the caller gave up.)
async fn late_initiate_proxy(upstream: String, slow: Arc<AtomicU32>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let forwarder: Forwarder =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (forwarder, upstream, slow) = (forwarder.clone(), upstream.clone(), slow.clone());
            let service = hyper::service::service_fn(move |request| {
                let (forwarder, upstream, slow) =
                    (forwarder.clone(), upstream.clone(), slow.clone());
                async move {
                    let answer = forward(forwarder, &upstream, &slow, request).await;
                    Ok::<_, std::convert::Infallible>(answer.unwrap_or_else(|err| {
                        let mut bad = http::Response::new(Full::new(Bytes::from(err)));
                        *bad.status_mut() = http::StatusCode::BAD_GATEWAY;
                        bad
                    }))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
}

/// One request through [`late_initiate_proxy`].
async fn forward(
    forwarder: Forwarder,
    upstream: &str,
    slow: &AtomicU32,
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, String> {
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let initiate = parts.method == http::Method::POST
        && parts
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "uploads" || p == "uploads="));
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{upstream}{target}")
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    parts.headers.remove(http::header::HOST);
    let forwarded = http::Request::from_parts(parts, Full::new(body));
    // In a task of its own: OSS carries the request out even if the gateway hangs up.
    let exchange = tokio::spawn(async move {
        let response = forwarder
            .request(forwarded)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((parts, body))
    });
    let (parts, body) = exchange.await.map_err(|e| e.to_string())??;
    if initiate
        && slow
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        tokio::time::sleep(LATE_ANSWER).await;
    }
    Ok(http::Response::from_parts(parts, Full::new(body)))
}

/// The stack's emulator, reached by a second gateway through [`late_initiate_proxy`].
struct LateInitiates {
    stack: Stack,
    gateway: RunningServer,
    slow: Arc<AtomicU32>,
}

impl LateInitiates {
    /// The gateway has 128 KiB upload parts and `settings` on top.
    async fn start(settings: &[(&str, &str)]) -> Self {
        let stack = stack_with(&[]).await;
        let slow = Arc::new(AtomicU32::new(0));
        let proxy = late_initiate_proxy(stack.emulator.endpoint(), slow.clone()).await;
        let endpoint = format!("http://{proxy}");
        let part = PART.to_string();
        let mut all = vec![
            ("OSSGATE_OSS__ENDPOINT", endpoint.as_str()),
            ("OSSGATE_UPLOAD__PART_SIZE_BYTES", part.as_str()),
        ];
        all.extend_from_slice(settings);
        let gateway = start_gateway(&stack, AuthSettings::default(), &all).await;
        Self {
            stack,
            gateway,
            slow,
        }
    }

    /// A client of the proxied gateway that keeps no deadline timer of its own.
    fn client(&self) -> DeadlineClient {
        deadline_client(self.gateway.local_addr())
    }

    /// OSS answers the next Initiate late; requests are counted from here.
    fn answer_next_initiate_late(&self) {
        self.stack.emulator.faults().reset_counts();
        self.slow.store(1, Ordering::SeqCst);
    }

    /// After a call ended while its Initiate was on the wire: waits (boundedly) until the
    /// late upload was aborted, then checks through ListMultipartUploads that no upload is
    /// left in the bucket. A gateway that did not see its Initiate through never learns the
    /// upload's id: the upload stays, and no abort comes.
    async fn assert_late_upload_aborted(&self) {
        let (stack, faults) = (&self.stack, self.stack.emulator.faults());
        for _ in 0..100 {
            if faults.count(FaultOp::AbortMultipartUpload) >= 1
                && stack.emulator.open_uploads().is_empty()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            crate::copy::open_uploads(stack, BUCKET).await,
            0,
            "orphaned uploads: {:?} after {:?}",
            stack.emulator.open_uploads(),
            faults.counts()
        );
        assert_eq!(
            faults.count(FaultOp::InitiateMultipartUpload),
            1,
            "{:?}",
            faults.counts()
        );
        assert_eq!(
            faults.count(FaultOp::AbortMultipartUpload),
            1,
            "{:?}",
            faults.counts()
        );
    }

    async fn stop(self) {
        self.gateway.shutdown().await.expect("clean shutdown");
        self.stack.stop().await;
    }
}

#[tokio::test]
async fn a_deadline_during_a_slow_initiate_of_a_multipart_write_leaves_no_upload() {
    let late = LateInitiates::start(&[]).await;
    late.answer_next_initiate_late();
    let data = pseudo_random(4 * PART, 14);
    let mut request = Request::new(tokio_stream::iter(write_messages(
        spec(BUCKET, "initiated-late.bin"),
        &data,
        64 * 1024,
    )));
    request.set_timeout(SHORT_DEADLINE);
    let status = late.client().write_object(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    late.assert_late_upload_aborted().await;
    let faults = late.stack.emulator.faults();
    assert_eq!(faults.count(FaultOp::UploadPart), 0);
    assert_eq!(faults.count(FaultOp::CompleteMultipartUpload), 0);
    assert!(!exists(&late.stack, BUCKET, "initiated-late.bin").await);
    late.stop().await;
}

#[tokio::test]
async fn a_deadline_during_a_slow_initiate_of_a_multipart_copy_leaves_no_upload() {
    // Sources above 256 KiB are copied part by part.
    let late = LateInitiates::start(&[
        ("OSSGATE_COPY__MULTIPART_THRESHOLD_BYTES", "262144"),
        ("OSSGATE_COPY__PART_SIZE_BYTES", "131072"),
    ])
    .await;
    let mut setup = late.stack.client.clone();
    let data = pseudo_random(3 * PART, 15);
    write_chunks(
        &mut setup,
        spec(BUCKET, "copy-source.bin"),
        &data,
        64 * 1024,
    )
    .await
    .expect("source written");
    late.answer_next_initiate_late();
    let mut request = Request::new(proto::CopyObjectRequest {
        source_bucket: BUCKET.into(),
        source_key: "copy-source.bin".into(),
        destination_bucket: BUCKET.into(),
        destination_key: "copy-dest.bin".into(),
        ..Default::default()
    });
    request.set_timeout(SHORT_DEADLINE);
    let status = late.client().copy_object(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    late.assert_late_upload_aborted().await;
    let faults = late.stack.emulator.faults();
    assert_eq!(faults.count(FaultOp::UploadPartCopy), 0);
    assert_eq!(faults.count(FaultOp::CompleteMultipartUpload), 0);
    assert!(!exists(&late.stack, BUCKET, "copy-dest.bin").await);
    late.stop().await;
}

#[tokio::test]
async fn a_deadline_during_a_slow_start_of_a_resumable_write_leaves_no_upload() {
    let late = LateInitiates::start(&[]).await;
    late.answer_next_initiate_late();
    let mut client = late.client();
    let mut request = Request::new(proto::StartResumableWriteRequest {
        spec: Some(spec(BUCKET, "resumable-late.bin")),
    });
    request.set_timeout(SHORT_DEADLINE);
    let status = client.start_resumable_write(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // The caller never got the upload id, so nobody could resume or abort the upload.
    late.assert_late_upload_aborted().await;

    // A start answered in time hands the upload over: it stays for the caller to resume.
    let started = client
        .start_resumable_write(proto::StartResumableWriteRequest {
            spec: Some(spec(BUCKET, "resumable-kept.bin")),
        })
        .await
        .expect("started")
        .into_inner();
    assert!(!started.upload_id.is_empty());
    assert_eq!(crate::copy::open_uploads(&late.stack, BUCKET).await, 1);
    late.stack.expect_leftover_upload("resumable-kept.bin");
    late.stop().await;
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
