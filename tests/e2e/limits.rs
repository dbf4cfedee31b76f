//! Edge limits: load shedding past `server.max_concurrent_calls` /
//! `max_concurrent_streaming_calls` (UNAVAILABLE at once, health still answering), and the
//! maximum connection age (graceful GOAWAY, then a forced close after the grace).

use std::time::Duration;

use ossgate::{
    emulator::{Fault, FaultKind, FaultOp},
    proto,
    server::limits::{CallLimits, ERROR_DOMAIN, OVERLOADED},
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::common::*;

/// Waits (bounded) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn limits(stack: &Stack) -> CallLimits {
    stack.server.as_ref().unwrap().call_limits().clone()
}

fn assert_shed(status: &Status, pool: &str) {
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, OVERLOADED);
    assert_eq!(info.domain, ERROR_DOMAIN);
    assert_eq!(info.metadata["pool"], pool);
    assert_eq!(info.metadata["limit"], "1");
    assert!(details.retry_info().is_some(), "RetryInfo");
}

fn head_request(key: &str) -> proto::HeadObjectRequest {
    proto::HeadObjectRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        version_id: String::new(),
        ..Default::default()
    }
}

async fn health_status(stack: &Stack) -> i32 {
    let addr = stack.server.as_ref().unwrap().local_addr();
    health(channel(addr).await)
        .await
        .expect("health answers under load")
}

/// `ossgate_rpc_duration_seconds_count` for `method` with code Unavailable, from the
/// process-wide registry the servers in this test binary share.
fn shed_count(method: &str) -> u64 {
    let rendered = ossgate::telemetry::metrics().render();
    rendered
        .lines()
        .filter(|line| line.starts_with("ossgate_rpc_duration_seconds_count{"))
        .filter(|line| {
            line.contains("code=\"Unavailable\"") && line.contains(&format!("method=\"{method}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn unary_calls_past_the_limit_are_shed_while_health_answers() {
    let stack = Stack::start_with_settings(&[("OSSGATE_SERVER__MAX_CONCURRENT_CALLS", "1")]).await;
    let mut client = stack.client.clone();
    write(&mut client, spec(BUCKET, "slow.txt"), b"slow").await;

    // Hold the only unary slot with a call OSS answers slowly.
    stack.emulator.faults().inject(Fault {
        op: FaultOp::GetObjectTagging,
        kind: FaultKind::Delay(Duration::from_secs(120)),
        times: 1,
    });
    let mut slow_client = stack.client.clone();
    let slow = tokio::spawn(async move {
        slow_client
            .get_object_tagging(proto::GetObjectTaggingRequest {
                bucket: BUCKET.into(),
                key: "slow.txt".into(),
                version_id: String::new(),
            })
            .await
    });
    wait_until("the slow call reaches OSS", || {
        stack.emulator.faults().count(FaultOp::GetObjectTagging) >= 1
    })
    .await;
    assert_eq!(limits(&stack).unary_in_use(), 1);

    // The next unary call is refused at once, without reaching OSS, and counted.
    let shed_before = shed_count("HeadObject");
    let before = stack.oss_requests();
    let status = client
        .head_object(head_request("slow.txt"))
        .await
        .unwrap_err();
    assert_shed(&status, "unary");
    assert_eq!(
        stack.oss_requests(),
        before,
        "a shed call must not reach OSS"
    );
    assert!(
        shed_count("HeadObject") > shed_before,
        "a shed call is counted in ossgate_rpc_duration_seconds with code Unavailable"
    );
    // Health is not shed; streaming calls have their own pool.
    assert_eq!(
        health_status(&stack).await,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    assert_eq!(read_all(&stack, BUCKET, "slow.txt", "").await, b"slow");

    // Cancelling the slow call frees its slot.
    slow.abort();
    let held = limits(&stack);
    wait_until("the cancelled call frees its slot", || {
        held.unary_in_use() == 0
    })
    .await;
    assert!(client.head_object(head_request("slow.txt")).await.is_ok());
    stack.stop().await;
}

#[tokio::test]
async fn streams_are_limited_apart_from_unary_calls() {
    let stack =
        Stack::start_with_settings(&[("OSSGATE_SERVER__MAX_CONCURRENT_STREAMING_CALLS", "1")])
            .await;
    let mut client = stack.client.clone();
    write(&mut client, spec(BUCKET, "existing.txt"), b"existing").await;

    // An upload that stays open holds the only streaming slot.
    let (tx, held) = open_write(&stack.client, spec(BUCKET, "held.txt"), b"first ").await;
    let pools = limits(&stack);
    wait_until("the open upload holds its slot", || {
        pools.streaming_in_use() == 1
    })
    .await;

    // Another upload and a download are shed ...
    let message = proto::WriteObjectRequest {
        spec: Some(spec(BUCKET, "second.txt")),
        data: bytes::Bytes::from_static(b"x"),
        finish_write: true,
        ..Default::default()
    };
    let status = client
        .write_object(tokio_stream::iter(vec![message]))
        .await
        .unwrap_err();
    assert_shed(&status, "streaming");
    let status = read(
        &mut client,
        proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: "existing.txt".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_shed(&status, "streaming");
    // ... while unary calls go on.
    client
        .put_object_tagging(proto::PutObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: "existing.txt".into(),
            tagging: Some(tags(&[("during", "upload")])),
            ..Default::default()
        })
        .await
        .expect("unary calls are not blocked by streams");

    // Finishing the upload frees the slot.
    tx.send(proto::WriteObjectRequest {
        write_offset: 6,
        data: bytes::Bytes::from_static(b"second"),
        finish_write: true,
        ..Default::default()
    })
    .await
    .unwrap();
    drop(tx);
    held.await.unwrap().expect("the held upload completes");
    wait_until("the finished upload frees its slot", || {
        pools.streaming_in_use() == 0
    })
    .await;
    assert_eq!(
        read_all(&stack, BUCKET, "held.txt", "").await,
        b"first second"
    );
    stack.stop().await;
}

#[tokio::test]
async fn old_connections_get_goaway_and_are_closed_after_the_grace() {
    let stack = Stack::start_with_settings(&[
        ("OSSGATE_SERVER__MAX_CONNECTION_AGE_SECS", "1"),
        ("OSSGATE_SERVER__MAX_CONNECTION_AGE_GRACE_SECS", "1"),
    ])
    .await;
    let addr = stack.server.as_ref().unwrap().local_addr();

    // An idle HTTP/2 connection is told to go away (GOAWAY) and closes cleanly.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (_send, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let closed = tokio::time::timeout(Duration::from_secs(20), connection)
        .await
        .expect("the server closes an old idle connection");
    assert!(closed.is_ok(), "graceful close, not an error: {closed:?}");

    // A call still running after age + grace is cut off with its connection.
    let mut client = connect(addr).await;
    write(&mut client, spec(BUCKET, "aged.txt"), b"aged").await;
    stack.emulator.faults().inject(Fault {
        op: FaultOp::GetObjectTagging,
        kind: FaultKind::Delay(Duration::from_secs(120)),
        times: 1,
    });
    let fresh = connect(addr).await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        fresh
            .clone()
            .get_object_tagging(proto::GetObjectTaggingRequest {
                bucket: BUCKET.into(),
                key: "aged.txt".into(),
                version_id: String::new(),
            }),
    )
    .await
    .expect("the forced close ends the call long before OSS answers");
    let status = outcome.unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
        ),
        "{status:?}"
    );
    assert_eq!(
        stack.emulator.faults().count(FaultOp::GetObjectTagging),
        1,
        "the call was in progress at OSS when its connection was closed"
    );
    stack.stop().await;
}

#[tokio::test]
async fn messages_over_the_decoding_limit_are_refused() {
    let stack =
        Stack::start_with_settings(&[("OSSGATE_SERVER__MAX_DECODING_MESSAGE_BYTES", "65536")])
            .await;
    let mut client = stack.client.clone();
    let data = pseudo_random(200_000, 3);
    // One 200 KB message is over the limit (tonic answers OUT_OF_RANGE) ...
    let status = write_chunks(&mut client, spec(BUCKET, "big.bin"), &data, data.len())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("65536"), "{status:?}");
    assert!(!exists(&stack, BUCKET, "big.bin").await);
    // ... the same bytes in 60 KB messages are fine.
    write_chunks(&mut client, spec(BUCKET, "big.bin"), &data, 60_000)
        .await
        .expect("chunks under the limit");
    assert_eq!(read_all(&stack, BUCKET, "big.bin", "").await, data);
    stack.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_answering_keepalive_pings_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start_with_settings(&[
        ("OSSGATE_SERVER__HTTP2_KEEPALIVE_INTERVAL_SECS", "1"),
        ("OSSGATE_SERVER__HTTP2_KEEPALIVE_TIMEOUT_SECS", "1"),
    ])
    .await;
    let addr = stack.server.as_ref().unwrap().local_addr();
    // A raw HTTP/2 client: the preface and an empty SETTINGS frame, then it never answers.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut received = Vec::new();
    let read_to_end = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut received))
        .await
        .expect("the server closes the connection of a client that does not answer pings");
    assert!(
        read_to_end.is_ok() || !received.is_empty(),
        "{read_to_end:?}"
    );
    // Walk the frames the server sent: a PING (type 6) must be among them.
    let mut frame_types = Vec::new();
    let mut rest = &received[..];
    while rest.len() >= 9 {
        let length = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        frame_types.push(rest[3]);
        rest = &rest[(9 + length).min(rest.len())..];
    }
    assert!(
        frame_types.contains(&6),
        "no PING frame among {frame_types:?}"
    );
    stack.stop().await;
}
