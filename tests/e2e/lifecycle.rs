//! Health, graceful shutdown and the embedded-emulator default.

use std::collections::HashMap;

use bytes::Bytes;
use ossgate::{config::Settings, proto, server};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::common::*;

#[tokio::test]
async fn shutdown_reports_not_serving_and_drains_in_flight_calls() {
    let mut stack = Stack::start().await;
    let addr = stack.server.as_ref().unwrap().local_addr();
    let channel = channel(addr).await;
    let mut health = HealthClient::new(channel);
    for service in ["", "ossgate.v1.ObjectService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "ossgate.v1.ObjectService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    // A write is in flight when the shutdown starts.
    let in_flight = spec(BUCKET, "in-flight.txt");
    let (tx, write) = open_write(&stack.client, in_flight, b"first half, ").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let server = stack.server.take().unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::NotServing as i32
    );
    drop(watch);

    tx.send(proto::WriteObjectRequest {
        write_offset: 12,
        data: Bytes::from_static(b"second half"),
        finish_write: true,
        ..Default::default()
    })
    .await
    .unwrap();
    // The stream ends after finish_write: the write is answered once it has.
    drop(tx);
    let written = write.await.unwrap().expect("the in-flight write completes");
    assert_eq!(written.into_inner().size, 23);
    shutdown.await.unwrap().unwrap();

    // The server is gone: new connections fail.
    assert!(
        tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn without_an_endpoint_the_embedded_emulator_serves() {
    let env: HashMap<String, String> = [
        ("OSSGATE_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        (
            "OSSGATE_EMULATOR__BUCKETS".to_string(),
            "ossgate-dev,ossgate-dev-versioned:versioned".to_string(),
        ),
    ]
    .into();
    let settings = Settings::load_from(None, env).unwrap();
    assert!(settings.uses_embedded_emulator());
    let server = server::start(settings).await.unwrap();
    let embedded = server.emulator().expect("embedded emulator started");
    assert!(embedded.endpoint().starts_with("http://127.0.0.1:"));
    let mut client = connect(server.local_addr()).await;
    let mut s = spec("ossgate-dev", "hello.txt");
    s.tagging = Some(tags(&[("team", "storage")]));
    write(&mut client, s, b"hello").await;
    let got = client
        .get_object_tagging(proto::GetObjectTaggingRequest {
            bucket: "ossgate-dev".into(),
            key: "hello.txt".into(),
            version_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.tagging.unwrap(), tags(&[("team", "storage")]));
    let versioned = write(&mut client, spec("ossgate-dev-versioned", "v.txt"), b"v").await;
    assert!(!versioned.version_id.is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reflection_v1_lists_the_services() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let stack = Stack::start().await;
    let addr = stack.server.as_ref().unwrap().local_addr();
    let channel = channel(addr).await;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "ossgate.v1.ObjectService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    stack.stop().await;
}
