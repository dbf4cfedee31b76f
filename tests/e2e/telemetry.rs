//! The Prometheus `/metrics` endpoint: RPC latency by method and code, bytes in and out,
//! OSS requests and errors by operation and code, in-flight uploads and the memory budget.
//!
//! The metrics are process-wide and other tests run in parallel, so every assertion is on
//! a lower bound of how much a counter moved.

use ossgate::proto;

use crate::common::*;

#[tokio::test]
async fn metrics_endpoint_counts_rpcs_bytes_and_oss_requests() {
    let stack = Stack::start_with(StackOptions {
        settings: vec![("OSSGATE_METRICS__LISTEN", "127.0.0.1:0".to_string())],
        ..Default::default()
    })
    .await;
    let addr = stack
        .server
        .as_ref()
        .and_then(|s| s.metrics_addr())
        .expect("the metrics endpoint is on");
    let mut client = stack.client.clone();
    let before = scrape(addr).await;

    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(7) % 251) as u8)
        .collect();
    write(&mut client, spec(BUCKET, "telemetry/object.bin"), &data).await;
    let (_, read_back) = read(
        &mut client,
        proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: "telemetry/object.bin".into(),
            ..Default::default()
        },
    )
    .await
    .expect("read succeeds");
    assert_eq!(read_back, data);
    let missing = client
        .get_object_tagging(proto::GetObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: "telemetry/missing".into(),
            version_id: String::new(),
        })
        .await
        .expect_err("the object does not exist");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let after = scrape(addr).await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);

    for series in [
        r#"ossgate_rpc_duration_seconds_count{code="Ok",method="WriteObject"}"#,
        r#"ossgate_rpc_duration_seconds_count{code="Ok",method="ReadObject"}"#,
        r#"ossgate_rpc_duration_seconds_count{code="NotFound",method="GetObjectTagging"}"#,
        r#"ossgate_rpc_duration_seconds_bucket{code="Ok",method="WriteObject",le="+Inf"}"#,
        r#"ossgate_oss_request_duration_seconds_count{operation="PUT"}"#,
        r#"ossgate_oss_request_duration_seconds_count{operation="GET"}"#,
        r#"ossgate_oss_request_duration_seconds_count{operation="GET ?tagging"}"#,
        r#"ossgate_oss_errors_total{code="NoSuchKey",operation="GET ?tagging"}"#,
    ] {
        assert!(moved(series) >= 1.0, "{series} did not move:\n{after}");
    }
    assert!(
        moved(r#"ossgate_rpc_bytes_total{direction="in",method="WriteObject"}"#)
            >= data.len() as f64
    );
    assert!(
        moved(r#"ossgate_rpc_bytes_total{direction="out",method="ReadObject"}"#)
            >= data.len() as f64
    );
    // Latency sums are in seconds and positive.
    assert!(moved(r#"ossgate_rpc_duration_seconds_sum{code="Ok",method="WriteObject"}"#) > 0.0);
    // The gauges are exported (their values depend on other tests running in parallel).
    assert!(after.contains("# TYPE ossgate_uploads_in_flight gauge"));
    assert!(after.contains("# TYPE ossgate_upload_memory_bytes gauge"));
    assert!(after.contains("\nossgate_upload_memory_bytes "));

    stack.stop().await;
    // The endpoint stops with the server.
    assert!(
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn metrics_endpoint_is_off_by_default() {
    let stack = Stack::start().await;
    assert!(stack.server.as_ref().unwrap().metrics_addr().is_none());
    stack.stop().await;
}

#[test]
fn a_bad_metrics_address_names_the_setting() {
    let err = ossgate::config::Settings::load_from(
        None,
        [(
            "OSSGATE_METRICS__LISTEN".to_string(),
            "not-an-address".to_string(),
        )]
        .into(),
    )
    .expect_err("rejected");
    assert!(format!("{err:#}").contains("metrics.listen"), "{err:#}");
}

/// Collects finished spans in memory.
#[derive(Clone, Debug, Default)]
struct Collected(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanExporter for Collected {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

fn attr(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<opentelemetry::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

// A current-thread runtime (the default for #[tokio::test]): the gateway and emulator run on
// this thread too, so the subscriber set for it below sees the server's spans.
#[tokio::test]
async fn oss_attempt_spans_are_children_of_the_call_and_record_retries() {
    use opentelemetry::{
        Value,
        trace::{SpanKind, Status, TracerProvider as _},
    };
    use ossgate::emulator::{Fault, FaultKind, FaultOp};
    use tracing_subscriber::layer::SubscriberExt;

    let collected = Collected::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(collected.clone())
        .build();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("e2e"))),
    );
    let stack = Stack::start_with(StackOptions {
        settings: vec![("OSSGATE_OSS__RETRY_BASE_DELAY_MS", "1".to_string())],
        ..Default::default()
    })
    .await;
    let mut client = stack.client.clone();
    write(&mut client, spec(BUCKET, "telemetry/retried.txt"), b"hello").await;
    // A span callsite first reached by a test on another thread while this subscriber was
    // being set may have cached "no subscriber wants it": recompute with this one present.
    tracing::callsite::rebuild_interest_cache();
    stack.emulator.faults().inject(Fault {
        op: FaultOp::PutObjectTagging,
        kind: FaultKind::Status(503, "ServiceUnavailable"),
        times: 1,
    });
    client
        .put_object_tagging(proto::PutObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: "telemetry/retried.txt".into(),
            tagging: Some(proto::Tagging {
                tags: [("team".to_string(), "storage".to_string())].into(),
            }),
            ..Default::default()
        })
        .await
        .expect("the retry succeeds");
    stack.stop().await;
    provider.force_flush().unwrap();

    let spans = collected.0.lock().unwrap().clone();
    let rpc = spans
        .iter()
        .find(|s| s.name == "ossgate.v1.ObjectService/PutObjectTagging")
        .unwrap_or_else(|| {
            panic!(
                "no call span in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(rpc.span_kind, SpanKind::Server);
    assert_eq!(attr(rpc, "rpc.system"), Some(Value::from("grpc")));
    assert_eq!(
        attr(rpc, "rpc.method"),
        Some(Value::from("PutObjectTagging"))
    );
    assert_eq!(attr(rpc, "rpc.grpc.status_code"), Some(Value::I64(0)));
    assert_eq!(
        attr(rpc, "oss.key"),
        Some(Value::from("telemetry/retried.txt"))
    );
    let mut attempts: Vec<_> = spans
        .iter()
        .filter(|s| s.parent_span_id == rpc.span_context.span_id() && s.name == "PutObjectTagging")
        .collect();
    attempts.sort_by_key(|s| s.start_time);
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    let (first, second) = (attempts[0], attempts[1]);
    assert!(attempts.iter().all(|s| s.span_kind == SpanKind::Client
        && s.span_context.trace_id() == rpc.span_context.trace_id()));
    assert_eq!(
        attr(first, "http.response.status_code"),
        Some(Value::I64(503))
    );
    assert_eq!(
        attr(first, "error.type"),
        Some(Value::from("ServiceUnavailable"))
    );
    assert!(matches!(first.status, Status::Error { .. }));
    assert_eq!(attr(first, "http.request.resend_count"), None);
    assert_eq!(
        attr(second, "http.response.status_code"),
        Some(Value::I64(200))
    );
    assert_eq!(
        attr(second, "http.request.resend_count"),
        Some(Value::I64(1))
    );
    assert_eq!(second.status, Status::Unset);
    for attempt in [first, second] {
        assert!(
            matches!(attr(attempt, "oss.request_id"), Some(Value::String(id)) if !id.as_str().is_empty()),
            "{attempt:#?}"
        );
    }
}
