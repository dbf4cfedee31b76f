//! `ossgate_oss_retries_refused_total{operation}` on `/metrics`: it counts the retries the
//! retry budget refused, and not those ruled out by the attempt limit or the call's deadline.
//!
//! The metrics are process-wide and other tests run in parallel. Every call here fails on
//! `DELETE ?tagging` (DeleteObjectTagging), an operation no other test exhausts a retry budget
//! on, so the refusals counted for it are this test's own.

use std::time::Duration;

use ossgate::{
    emulator::{Fault, FaultKind, FaultOp},
    proto,
};
use tonic::{Code, Request, Status};

use crate::common::*;

const REFUSED: &str = r#"ossgate_oss_retries_refused_total{operation="DELETE ?tagging"}"#;
const RETRIES: &str = r#"ossgate_oss_retries_total{operation="DELETE ?tagging"}"#;
const BUDGET_MESSAGE: &str = "retry budget is exhausted";

/// A budget of `burst` retries that never refills, `max_attempts` attempts per request and a
/// first backoff of `base_delay_ms`, with `/metrics` on.
async fn stack(burst: &str, max_attempts: &str, base_delay_ms: &str) -> Stack {
    Stack::start_with_settings(&[
        ("OSSGATE_METRICS__LISTEN", "127.0.0.1:0"),
        ("OSSGATE_OSS__RETRY_BUDGET_BURST", burst),
        ("OSSGATE_OSS__RETRY_BUDGET_RATIO", "0"),
        ("OSSGATE_OSS__RETRY_BUDGET_MIN_PER_SEC", "0"),
        ("OSSGATE_OSS__RETRY_MAX_ATTEMPTS", max_attempts),
        ("OSSGATE_OSS__RETRY_BASE_DELAY_MS", base_delay_ms),
        ("OSSGATE_OSS__RETRY_MAX_DELAY_MS", base_delay_ms),
    ])
    .await
}

/// The value of `series` (name plus its exact label set) in `/metrics`, 0 when absent.
async fn sample_of(stack: &Stack, series: &str) -> f64 {
    let addr = stack
        .server
        .as_ref()
        .and_then(|s| s.metrics_addr())
        .expect("the metrics endpoint is on");
    sample(&scrape(addr).await, series)
}

/// An object whose DeleteObjectTagging always answers 503.
async fn failing_object(stack: &Stack, key: &str) {
    write(&mut stack.client.clone(), spec(BUCKET, key), b"x").await;
    stack.emulator.faults().inject(Fault {
        op: FaultOp::DeleteObjectTagging,
        kind: FaultKind::Status(503, "ServiceUnavailable"),
        times: u32::MAX,
    });
}

/// DeleteObjectTagging of `key`, with `timeout` as the call's deadline; it must fail with
/// UNAVAILABLE.
async fn delete_tags(stack: &Stack, key: &str, timeout: Option<Duration>) -> Status {
    let mut request = Request::new(proto::DeleteObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        version_id: String::new(),
        ..Default::default()
    });
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let status = stack
        .client
        .clone()
        .delete_object_tagging(request)
        .await
        .expect_err("OSS answers 503");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    status
}

#[tokio::test]
async fn only_retries_refused_by_the_budget_are_counted() {
    // Attempts run out before the budget does: retried, not refused.
    let stack1 = stack("1", "2", "10").await;
    failing_object(&stack1, "retry-metrics/a").await;
    let (refused0, retries0) = (
        sample_of(&stack1, REFUSED).await,
        sample_of(&stack1, RETRIES).await,
    );
    let status = delete_tags(&stack1, "retry-metrics/a", None).await;
    assert!(!status.message().contains(BUDGET_MESSAGE), "{status:?}");
    assert_eq!(
        stack1.emulator.faults().count(FaultOp::DeleteObjectTagging),
        2,
        "one attempt and one retry"
    );
    assert!(sample_of(&stack1, RETRIES).await - retries0 >= 1.0);
    assert_eq!(
        sample_of(&stack1, REFUSED).await,
        refused0,
        "the attempt limit is not a refusal"
    );

    // The budget's one token is spent: the next call's retry is refused, and counted.
    let status = delete_tags(&stack1, "retry-metrics/a", None).await;
    assert!(status.message().contains(BUDGET_MESSAGE), "{status:?}");
    assert_eq!(
        stack1.emulator.faults().count(FaultOp::DeleteObjectTagging),
        3,
        "no retry"
    );
    assert_eq!(sample_of(&stack1, REFUSED).await, refused0 + 1.0);
    stack1.stop().await;

    // An empty budget, but a backoff (30 to 60 s) that would end after the call's 10 s
    // deadline: the deadline rules the retry out first, so the budget is never asked.
    let stack2 = stack("0", "3", "60000").await;
    failing_object(&stack2, "retry-metrics/b").await;
    let refused0 = sample_of(&stack2, REFUSED).await;
    let status = delete_tags(&stack2, "retry-metrics/b", Some(Duration::from_secs(10))).await;
    assert!(!status.message().contains(BUDGET_MESSAGE), "{status:?}");
    assert_eq!(
        sample_of(&stack2, REFUSED).await,
        refused0,
        "the deadline is not a refusal"
    );

    // Without a deadline the same empty budget refuses the retry.
    let status = delete_tags(&stack2, "retry-metrics/b", None).await;
    assert!(status.message().contains(BUDGET_MESSAGE), "{status:?}");
    assert_eq!(sample_of(&stack2, REFUSED).await, refused0 + 1.0);
    assert_eq!(
        stack2.emulator.faults().count(FaultOp::DeleteObjectTagging),
        2,
        "one attempt per call"
    );
    stack2.stop().await;
}
