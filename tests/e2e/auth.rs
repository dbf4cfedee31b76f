//! Caller auth: bearer tokens and the policy, enforced before anything reaches OSS; health
//! and reflection stay open.

use ossgate::{config::auth::AuthSettings, proto, server::RunningServer};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::common::*;

const ALICE_TOKEN: &str = "alice-secret-token-1";
const ADMIN_TOKEN: &str = "admin-secret-token-2";

/// A second gateway with auth in front of the stack's emulator.
async fn authed_gateway(stack: &Stack) -> RunningServer {
    let mut admin = token_setting("admin", ADMIN_TOKEN);
    // Hashes are configured in either case.
    admin.sha256 = admin.sha256.to_uppercase();
    let auth = AuthSettings {
        tokens: vec![token_setting("alice", ALICE_TOKEN), admin],
        certificates: Vec::new(),
        policy: vec![
            policy_rule("alice", &[BUCKET], &["logs/"], &["read", "tag"]),
            policy_rule("admin", &["*"], &[], &["*"]),
        ],
    };
    start_gateway(stack, auth, &[]).await
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
            .write_object(bearer(tokio_stream::iter(vec![message]), ADMIN_TOKEN))
            .await
            .expect("admin writes");
    }

    // Alice may tag and read under logs/.
    client
        .put_object_tagging(bearer(put_tagging("logs/a.txt"), ALICE_TOKEN))
        .await
        .expect("alice tags logs/");
    let got = client
        .get_object_tagging(bearer(
            proto::GetObjectTaggingRequest {
                bucket: BUCKET.into(),
                key: "logs/a.txt".into(),
                ..Default::default()
            },
            ALICE_TOKEN,
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
        .put_object_tagging(bearer(put_tagging("other/b.txt"), ALICE_TOKEN))
        .await
        .unwrap_err();
    assert_denied(&status, "tag");
    // Wrong operation.
    let status = client
        .delete_object(bearer(
            proto::DeleteObjectRequest {
                bucket: BUCKET.into(),
                key: "logs/a.txt".into(),
                ..Default::default()
            },
            ALICE_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_denied(&status, "delete");
    // Copy: read on the source is allowed, copy on the destination is not.
    let status = client
        .copy_object(bearer(
            proto::CopyObjectRequest {
                source_bucket: BUCKET.into(),
                source_key: "logs/a.txt".into(),
                destination_bucket: BUCKET.into(),
                destination_key: "logs/copy.txt".into(),
                ..Default::default()
            },
            ALICE_TOKEN,
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
        .write_object(bearer(tokio_stream::iter(vec![message]), ALICE_TOKEN))
        .await
        .unwrap_err();
    assert_denied(&status, "write");
    assert_eq!(
        stack.oss_requests(),
        before,
        "denied calls must not reach OSS"
    );

    // Health and reflection need no token.
    assert_health_and_reflection_open(channel(gateway.local_addr()).await).await;

    gateway.shutdown().await.unwrap();
    stack.stop().await;
}
