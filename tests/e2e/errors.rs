//! OSS errors reach the caller with the right gRPC code and the OSS details.

use ossgate::proto;
use tonic::Code;
use tonic_types::StatusExt;

use crate::common::*;

#[tokio::test]
async fn unknown_key_is_not_found_with_oss_details() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();

    let status = client
        .get_object_tagging(proto::GetObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: "no/such/key".into(),
            version_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("NoSuchKey"));
    assert!(oss_request_id(&status).is_some_and(|id| !id.is_empty()));

    // HEAD errors come without a body; the code is still recovered.
    let status = client
        .head_object(proto::HeadObjectRequest {
            bucket: BUCKET.into(),
            key: "no/such/key".into(),
            version_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("NoSuchKey"));

    let status = read(
        &mut client,
        proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: "no/such/key".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let status = client
        .get_object_tagging(proto::GetObjectTaggingRequest {
            bucket: "no-such-bucket".into(),
            key: "k".into(),
            version_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("NoSuchBucket"));

    // Deleting a missing key is not an error (OSS answers 204).
    client
        .delete_object(proto::DeleteObjectRequest {
            bucket: BUCKET.into(),
            key: "no/such/key".into(),
            version_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap();
    stack.stop().await;
}

async fn wrong_secret_is_refused(signature_version: &'static str) {
    let stack = Stack::start_with(StackOptions {
        signature_version,
        gateway_secret: "not-the-right-secret".into(),
        ..Default::default()
    })
    .await;
    let mut client = stack.client.clone();
    let status = client
        .put_object_tagging(proto::PutObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: "k".into(),
            version_id: String::new(),
            tagging: Some(tags(&[("a", "b")])),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::PermissionDenied | Code::Unauthenticated
        ),
        "{status:?}"
    );
    assert_eq!(
        oss_reason(&status).as_deref(),
        Some("SignatureDoesNotMatch")
    );
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.domain, "oss.aliyuncs.com");
    assert_eq!(
        info.metadata.get("http_status").map(String::as_str),
        Some("403")
    );
    assert!(info.metadata.contains_key("request_id"));
    // The secret never appears in what the caller sees.
    assert!(!format!("{status:?}").contains("not-the-right-secret"));
    stack.stop().await;
}

#[tokio::test]
async fn wrong_secret_is_refused_v4() {
    wrong_secret_is_refused("v4").await;
}

#[tokio::test]
async fn wrong_secret_is_refused_v1() {
    wrong_secret_is_refused("v1").await;
}

#[tokio::test]
async fn forbid_overwrite_is_already_exists() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    write(&mut client, spec(BUCKET, "once.txt"), b"first").await;
    let mut again = spec(BUCKET, "once.txt");
    again.forbid_overwrite = true;
    let status = write_chunks(&mut client, again, b"second", 3)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(oss_reason(&status).as_deref(), Some("FileAlreadyExists"));
    let (_, data) = read(
        &mut client,
        proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: "once.txt".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(data, b"first");
    stack.stop().await;
}

/// gRPC clients compress requests when told to (grpcio `compression=Gzip`, grpc-go
/// `UseCompressor`); every encoding tonic implements is accepted on every service, and
/// responses are compressed only when `server.response_compression` says so.
#[tokio::test]
async fn compressed_requests_are_accepted_and_responses_compressed_only_when_configured() {
    use tonic::codec::CompressionEncoding;
    let encodings = [
        CompressionEncoding::Gzip,
        CompressionEncoding::Zstd,
        CompressionEncoding::Deflate,
    ];
    for (setting, expected_response_encoding) in [(None, None), (Some("zstd"), Some("zstd"))] {
        let settings: Vec<(&'static str, &str)> = setting
            .map(|value| vec![("OSSGATE_SERVER__RESPONSE_COMPRESSION", value)])
            .unwrap_or_default();
        let stack = Stack::start_with_settings(&settings).await;
        let addr = stack.server.as_ref().unwrap().local_addr();
        for encoding in encodings {
            let mut client = connect(addr)
                .await
                .send_compressed(encoding)
                .accept_compressed(CompressionEncoding::Zstd);
            // A client stream, a server stream and unary calls, all compressed.
            let key = format!("compressed/{encoding:?}");
            let data = pseudo_random(300_000, 7);
            write(&mut client, spec(BUCKET, &key), &data).await;
            let read_back = read(
                &mut client,
                proto::ReadObjectRequest {
                    bucket: BUCKET.into(),
                    key: key.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .1;
            assert_eq!(read_back, data, "{encoding:?}");
            let response = client
                .get_object_tagging(proto::GetObjectTaggingRequest {
                    bucket: BUCKET.into(),
                    key: key.clone(),
                    version_id: String::new(),
                })
                .await
                .unwrap_or_else(|status| panic!("{encoding:?}: {status:?}"));
            assert_eq!(
                response
                    .metadata()
                    .get("grpc-encoding")
                    .map(|v| v.to_str().unwrap()),
                expected_response_encoding,
                "{encoding:?} with response_compression {setting:?}"
            );
            // An error answer keeps its code and details when the request was compressed.
            let status = client
                .get_object_tagging(proto::GetObjectTaggingRequest {
                    bucket: BUCKET.into(),
                    key: "no/such/key".into(),
                    version_id: String::new(),
                })
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::NotFound, "{encoding:?}: {status:?}");
            assert_eq!(oss_reason(&status).as_deref(), Some("NoSuchKey"));
            // Health answers compressed requests too.
            let mut health =
                tonic_health::pb::health_client::HealthClient::new(channel(addr).await)
                    .send_compressed(encoding);
            let serving = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .unwrap_or_else(|status| panic!("health {encoding:?}: {status:?}"));
            assert_eq!(serving.into_inner().status, 1);
        }
        stack.stop().await;
    }
}
