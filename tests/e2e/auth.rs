//! Caller auth: bearer tokens and the policy, enforced before anything reaches OSS; health
//! and reflection stay open.

use std::collections::HashMap;

use ossgate::{
    config::Settings,
    proto,
    rpc::auth::{AuthSettings, PolicyRule, TokenSetting, hash_token},
    server::{self, RunningServer},
};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::common::*;

const ALICE_TOKEN: &str = "alice-secret-token-1";
const ADMIN_TOKEN: &str = "admin-secret-token-2";

fn rule(principal: &str, buckets: &[&str], prefixes: &[&str], ops: &[&str]) -> PolicyRule {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
    PolicyRule {
        principal: principal.into(),
        buckets: v(buckets),
        prefixes: v(prefixes),
        operations: v(ops),
    }
}

/// A second gateway with auth in front of the stack's emulator.
async fn authed_gateway(stack: &Stack) -> RunningServer {
    let env: HashMap<String, String> = [
        ("OSSGATE_LISTEN", "127.0.0.1:0".to_string()),
        ("OSSGATE_OSS__ENDPOINT", stack.emulator.endpoint()),
        ("OSSGATE_OSS__REGION", "cn-hangzhou".into()),
        ("OSSGATE_OSS__ACCESS_KEY_ID", ACCESS_KEY_ID.into()),
        ("OSSGATE_OSS__ACCESS_KEY_SECRET", ACCESS_KEY_SECRET.into()),
        ("OSSGATE_SERVER__SHUTDOWN_GRACE_MS", "2000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut settings = Settings::load_from(None, env).expect("settings load");
    settings.auth = AuthSettings {
        tokens: vec![
            TokenSetting {
                principal: "alice".into(),
                sha256: hex::encode(hash_token(ALICE_TOKEN)),
            },
            TokenSetting {
                principal: "admin".into(),
                sha256: hex::encode(hash_token(ADMIN_TOKEN)).to_uppercase(),
            },
        ],
        certificates: Vec::new(),
        policy: vec![
            rule("alice", &[BUCKET], &["logs/"], &["read", "tag"]),
            rule("admin", &["*"], &[], &["*"]),
        ],
    };
    settings.validate().expect("auth settings are valid");
    server::start(settings).await.expect("gateway starts")
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

fn put_tagging(key: &str) -> proto::PutObjectTaggingRequest {
    proto::PutObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        tagging: Some(tags(&[("team", "auth")])),
        ..Default::default()
    }
}

fn assert_denied(status: &Status, operation: &str) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "PERMISSION_DENIED");
    assert_eq!(info.domain, "ossgate.auth");
    assert_eq!(info.metadata["principal"], "alice");
    assert_eq!(info.metadata["operation"], operation);
}

#[tokio::test]
async fn tokens_and_policy_decide_before_oss_is_reached() {
    let stack = Stack::start().await;
    let gateway = authed_gateway(&stack).await;
    let mut client = connect(gateway.local_addr()).await;

    // The admin may write anywhere.
    let mut admin = client.clone();
    for key in ["logs/a.txt", "other/b.txt"] {
        let message = proto::WriteObjectRequest {
            spec: Some(spec(BUCKET, key)),
            data: bytes::Bytes::from_static(b"hello"),
            finish_write: true,
            ..Default::default()
        };
        admin
            .write_object(with_token(
                tokio_stream::iter(vec![message]),
                Some(ADMIN_TOKEN),
            ))
            .await
            .expect("admin writes");
    }

    // Alice may tag and read under logs/.
    client
        .put_object_tagging(with_token(put_tagging("logs/a.txt"), Some(ALICE_TOKEN)))
        .await
        .expect("alice tags logs/");
    let got = client
        .get_object_tagging(with_token(
            proto::GetObjectTaggingRequest {
                bucket: BUCKET.into(),
                key: "logs/a.txt".into(),
                ..Default::default()
            },
            Some(ALICE_TOKEN),
        ))
        .await
        .expect("alice reads tags under logs/")
        .into_inner();
    assert_eq!(got.tagging.unwrap(), tags(&[("team", "auth")]));

    let before = stack.oss_requests();
    // No token, a wrong token, a non-bearer scheme: UNAUTHENTICATED.
    for auth in [None, Some("Bearer not-a-token"), Some("Basic YWxpY2U6eA==")] {
        let mut request = Request::new(put_tagging("logs/a.txt"));
        if let Some(value) = auth {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        let status = client.put_object_tagging(request).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{auth:?}: {status:?}");
        assert!(!status.message().contains(ALICE_TOKEN));
    }
    // Wrong prefix.
    let status = client
        .put_object_tagging(with_token(put_tagging("other/b.txt"), Some(ALICE_TOKEN)))
        .await
        .unwrap_err();
    assert_denied(&status, "tag");
    // Wrong operation.
    let status = client
        .delete_object(with_token(
            proto::DeleteObjectRequest {
                bucket: BUCKET.into(),
                key: "logs/a.txt".into(),
                ..Default::default()
            },
            Some(ALICE_TOKEN),
        ))
        .await
        .unwrap_err();
    assert_denied(&status, "delete");
    // Copy: read on the source is allowed, copy on the destination is not.
    let status = client
        .copy_object(with_token(
            proto::CopyObjectRequest {
                source_bucket: BUCKET.into(),
                source_key: "logs/a.txt".into(),
                destination_bucket: BUCKET.into(),
                destination_key: "logs/copy.txt".into(),
                ..Default::default()
            },
            Some(ALICE_TOKEN),
        ))
        .await
        .unwrap_err();
    assert_denied(&status, "copy");
    // A streamed write by a prefix-scoped principal.
    let message = proto::WriteObjectRequest {
        spec: Some(spec(BUCKET, "logs/new.txt")),
        data: bytes::Bytes::from_static(b"x"),
        finish_write: true,
        ..Default::default()
    };
    let status = client
        .write_object(with_token(
            tokio_stream::iter(vec![message]),
            Some(ALICE_TOKEN),
        ))
        .await
        .unwrap_err();
    assert_denied(&status, "write");
    assert_eq!(
        stack.oss_requests(),
        before,
        "denied calls must not reach OSS"
    );

    // Health and reflection need no token.
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", gateway.local_addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "ossgate.v1.ObjectService".into(),
        })
        .await
        .expect("health is open")
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest,
        };
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .expect("reflection is open")
            .into_inner();
        assert!(responses.message().await.unwrap().is_some());
    }

    gateway.shutdown().await.unwrap();
    stack.stop().await;
}
