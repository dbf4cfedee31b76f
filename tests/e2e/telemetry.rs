//! The Prometheus `/metrics` endpoint: RPC latency by method and code, bytes in and out,
//! OSS requests and errors by operation and code, in-flight uploads and the memory budget.
//!
//! The metrics are process-wide and other tests run in parallel, so every assertion is on
//! a lower bound of how much a counter moved.

use ossgate::proto;

use crate::common::*;

/// The value of the sample `series` (name plus its exact label set), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(series))
        .filter_map(|rest| rest.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape /metrics");
    assert!(resp.status().is_success());
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    resp.text().await.expect("metrics body")
}

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
