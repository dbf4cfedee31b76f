//! RRSA credentials end to end: the gateway exchanges an OIDC token file for short-lived
//! credentials at the emulator's STS endpoint, one background task refreshes them, and calls
//! (including a multipart write spanning several lifetimes) never see an expired key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::common::*;
use ossgate::{
    config::Settings,
    emulator::{self, BucketSpec, EmulatorConfig, EmulatorHandle, sts::StsConfig},
    model::{BucketName, ObjectKey, TagSet},
    oss::{
        self,
        credentials::{
            CredentialsProvider,
            sts::{OidcRoleConfig, OidcRoleProvider},
        },
    },
    proto,
    server::{self, RunningServer},
};

const ROLE_ARN: &str = "acs:ram::1234567890123456:role/ossgate-oss";
const PROVIDER_ARN: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0ffee";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2ln";

/// An emulator with STS on (issued credentials last at most `lifetime`, `expected` token).
async fn emulator_with_sts(lifetime: Duration, expected: Option<&str>) -> EmulatorHandle {
    let emulator = emulator::start(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: None,
        // The static key exists but the gateway is never given it.
        credentials: vec![credentials()],
        buckets: vec![BucketSpec {
            name: BUCKET.into(),
            versioned: false,
        }],
        region: "cn-hangzhou".into(),
        verify_signatures: true,
    })
    .await
    .expect("emulator starts");
    emulator.sts().configure(StsConfig {
        enabled: true,
        max_duration: Some(lifetime),
        expected_oidc_token: expected.map(str::to_owned),
    });
    emulator
}

/// Gateway settings with RRSA only (no static key anywhere), pointed at the emulator's STS.
fn rrsa_settings(emulator: &EmulatorHandle, token_file: &Path) -> Settings {
    let env: HashMap<String, String> = [
        ("OSSGATE_LISTEN", "127.0.0.1:0".to_owned()),
        ("OSSGATE_OSS__ENDPOINT", emulator.endpoint()),
        ("OSSGATE_OSS__REGION", "cn-hangzhou".to_owned()),
        ("OSSGATE_OSS__STS_ENDPOINT", emulator.endpoint()),
        ("ALIBABA_CLOUD_ROLE_ARN", ROLE_ARN.to_owned()),
        ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", PROVIDER_ARN.to_owned()),
        (
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("OSSGATE_SERVER__SHUTDOWN_GRACE_MS", "2000".to_owned()),
        // Small parts so a modest stream becomes a many-part upload.
        ("OSSGATE_UPLOAD__PART_SIZE_BYTES", "102400".to_owned()),
        ("OSSGATE_UPLOAD__PARALLELISM", "2".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let settings = Settings::load_from(None, env).expect("RRSA-only settings are valid");
    assert!(settings.credentials().is_none(), "no static keys");
    settings
}

fn token_file(dir: &tempfile::TempDir, token: &str) -> std::path::PathBuf {
    let path = dir.path().join("token");
    std::fs::write(&path, token).unwrap();
    path
}

async fn start_gateway(
    emulator: &EmulatorHandle,
    token_file: &Path,
) -> (
    RunningServer,
    proto::object_service_client::ObjectServiceClient<tonic::transport::Channel>,
) {
    let server = server::start(rrsa_settings(emulator, token_file))
        .await
        .expect("gateway starts with RRSA");
    let client = connect(server.local_addr()).await;
    (server, client)
}

/// Issued lifetimes are whole seconds from the issuing second, so a `LIFETIME` credential is
/// valid for between `LIFETIME - 1 s` and `LIFETIME` after it is received.
const LIFETIME: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tagging_calls_keep_working_across_many_short_credential_lifetimes() {
    let emulator = emulator_with_sts(LIFETIME, Some(TOKEN)).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, TOKEN);
    let started = Instant::now();
    let (server, mut client) = start_gateway(&emulator, &token).await;
    assert_eq!(emulator.sts().call_count(), 1, "one STS call at start");

    let key = "rrsa/tagged.txt";
    let mut object = spec(BUCKET, key);
    object.tagging = Some(tags(&[("round", "0")]));
    write(&mut client, object, b"tagged under RRSA").await;

    // ~3 lifetimes of continuous tagging traffic, in concurrent waves.
    let ok = Arc::new(AtomicU64::new(0));
    let mut round = 0u64;
    while started.elapsed() < LIFETIME * 3 {
        round += 1;
        let mut wave = Vec::new();
        for i in 0..8 {
            let mut client = client.clone();
            let ok = ok.clone();
            wave.push(tokio::spawn(async move {
                if i == 0 {
                    put_tags(&mut client, BUCKET, key, &[("round", &round.to_string())]).await;
                } else {
                    get_tags(&mut client, BUCKET, key, "").await;
                }
                ok.fetch_add(1, Ordering::SeqCst);
            }));
        }
        for call in wave {
            call.await.expect("call task");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        get_tags(&mut client, BUCKET, key, "").await,
        tags(&[("round", &round.to_string())])
    );
    let elapsed = started.elapsed();
    let calls = emulator.sts().call_count();
    // Refreshed about every half lifetime (1.5..2 s, jitter only earlier): several times,
    // but never more than the schedule allows, however many calls were made.
    let most = 2 + (elapsed.as_secs_f64() / 1.2) as u64;
    assert!(
        (4..=most).contains(&calls),
        "{calls} STS calls in {elapsed:?} for {} RPCs",
        ok.load(Ordering::SeqCst)
    );
    assert!(ok.load(Ordering::SeqCst) > 10 * calls);
    assert_eq!(emulator.sts().issued_count(), calls, "no refresh failed");
    server.shutdown().await.expect("clean shutdown");
    // The refresher stopped with the server.
    tokio::time::sleep(LIFETIME).await;
    assert_eq!(emulator.sts().call_count(), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_multipart_write_spans_several_credential_lifetimes() {
    let emulator = emulator_with_sts(LIFETIME, None).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, TOKEN);
    let (server, client) = start_gateway(&emulator, &token).await;

    // 2.4 MB sent slowly (64 KiB every 300 ms, ~11 s): 24 parts of 100 KiB signed and
    // sent over ~3 credential lifetimes.
    let data: Vec<u8> = (0..2_400_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let key = "rrsa/slow-multipart.bin";
    let sender = {
        let data = data.clone();
        tokio::spawn(async move {
            let chunks: Vec<&[u8]> = data.chunks(64 * 1024).collect();
            let count = chunks.len();
            let mut offset = 0i64;
            for (i, piece) in chunks.into_iter().enumerate() {
                let message = proto::WriteObjectRequest {
                    spec: (i == 0).then(|| spec(BUCKET, key)),
                    write_offset: offset,
                    data: bytes::Bytes::copy_from_slice(piece),
                    finish_write: i + 1 == count,
                    ..Default::default()
                };
                offset += piece.len() as i64;
                if tx.send(message).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let started = Instant::now();
    let calls_before = emulator.sts().call_count();
    let written = client
        .clone()
        .write_object(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("the slow multipart write succeeds")
        .into_inner();
    sender.await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed > LIFETIME * 2, "the write took {elapsed:?}");
    assert_eq!(written.size, data.len() as i64);
    assert_eq!(written.crc64ecma, ossgate::model::crc64(&data));
    let refreshes = emulator.sts().call_count() - calls_before;
    assert!(refreshes >= 4, "{refreshes} refreshes during {elapsed:?}");

    let (_, read_back) = read(
        &mut client.clone(),
        proto::ReadObjectRequest {
            bucket: BUCKET.into(),
            key: key.into(),
            ..Default::default()
        },
    )
    .await
    .expect("read back");
    assert!(read_back == data, "read back the same bytes");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bursts_of_calls_cause_no_sts_calls() {
    // Credentials for an hour: nothing is due, so only calls could cause STS traffic.
    let emulator = emulator_with_sts(Duration::from_secs(3600), None).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, TOKEN);
    let (server, mut client) = start_gateway(&emulator, &token).await;
    write(&mut client, spec(BUCKET, "rrsa/burst.txt"), b"burst").await;
    for _ in 0..3 {
        let burst: Vec<_> = (0..200)
            .map(|_| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    get_tags(&mut client, BUCKET, "rrsa/burst.txt", "").await;
                })
            })
            .collect();
        for call in burst {
            call.await.expect("every call succeeds");
        }
    }
    assert_eq!(emulator.sts().call_count(), 1, "only the start fetched");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_file_is_read_at_each_refresh() {
    let emulator = emulator_with_sts(Duration::from_secs(2), Some("token-one")).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, "token-one");
    let (server, mut client) = start_gateway(&emulator, &token).await;
    write(&mut client, spec(BUCKET, "rrsa/rotated.txt"), b"x").await;
    // The kubelet rotates the token; STS now accepts only the new one.
    std::fs::write(&token, "token-two").unwrap();
    emulator.sts().configure(StsConfig {
        enabled: true,
        max_duration: Some(Duration::from_secs(2)),
        expected_oidc_token: Some("token-two".into()),
    });
    let issued = emulator.sts().issued_count();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // (A refresh racing the switch may be refused once; the next one uses the new token.)
    assert!(
        emulator.sts().issued_count() >= issued + 2,
        "refreshed with the new token"
    );
    // Well past the lifetime of anything issued with the old token.
    get_tags(&mut client, BUCKET, "rrsa/rotated.txt", "").await;
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn start_fails_clearly_with_a_bad_token_file() {
    let emulator = emulator_with_sts(LIFETIME, Some(TOKEN)).await;
    let dir = tempfile::tempdir().unwrap();
    let expired_jwt = {
        use base64::Engine as _;
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.c2ln",
            enc(r#"{"alg":"RS256"}"#),
            enc(r#"{"sub":"system:serviceaccount:ossgate:ossgate","exp":1600000000}"#)
        )
    };
    let cases: Vec<(Option<String>, &[&str])> = vec![
        (
            Some("a-token-sts-does-not-accept".into()),
            &["AuthenticationFail.OIDCToken.Invalid", "HTTP 401"],
        ),
        (Some(expired_jwt), &["AuthenticationFail.OIDCToken.Expired"]),
        (Some("\n".into()), &["is empty"]),
        (None, &["cannot use the OIDC token file"]),
    ];
    for (contents, expected) in cases {
        let path = dir.path().join("case-token");
        let _ = std::fs::remove_file(&path);
        if let Some(text) = &contents {
            std::fs::write(&path, text).unwrap();
        }
        let Err(err) = server::start(rrsa_settings(&emulator, &path)).await else {
            panic!("the gateway started with token {contents:?}");
        };
        let message = format!("{err:#}");
        for needle in expected
            .iter()
            .chain(&["ALIBABA_CLOUD_OIDC_TOKEN_FILE", "STS AssumeRoleWithOIDC"])
        {
            assert!(message.contains(needle), "{needle:?} not in: {message}");
        }
        if let Some(text) = &contents
            && text.trim().len() > 3
        {
            assert!(
                !message.contains(text.trim()),
                "the token leaked: {message}"
            );
        }
    }
    // Nothing was issued, and the gateway never started.
    assert_eq!(emulator.sts().issued_count(), 0);
}

#[tokio::test]
async fn expired_sts_credentials_are_refused_by_the_emulator() {
    let emulator = emulator_with_sts(Duration::from_secs(1), None).await;
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, TOKEN);
    let provider = OidcRoleProvider::new(OidcRoleConfig {
        endpoint: emulator.endpoint(),
        role_arn: ROLE_ARN.into(),
        oidc_provider_arn: PROVIDER_ARN.into(),
        oidc_token_file: token,
        role_session_name: "e2e".into(),
        duration: Duration::from_secs(900),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let issued = provider.fetch().await.expect("STS issues credentials");
    let client = oss::Client::new(oss::ClientConfig {
        endpoint: emulator.endpoint(),
        region: "cn-hangzhou".into(),
        signature_version: "v4".parse().unwrap(),
        addressing: oss::Addressing::Path,
        credentials: issued.credentials.clone(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Some(Duration::from_secs(10)),
    })
    .unwrap();
    let input = oss::PutObjectTaggingInput::new(
        BucketName::parse(BUCKET).unwrap(),
        ObjectKey::parse("rrsa/direct.txt").unwrap(),
        TagSet::from_pairs([("a", "b")]).unwrap(),
    );
    // Valid now: the request gets past authentication (the object does not exist).
    let err = client.put_object_tagging(&input).await.unwrap_err();
    assert_eq!(err.code, "NoSuchKey", "{err:?}");
    // A wrong token with the issued key.
    let mut wrong = issued.credentials.clone();
    wrong.security_token = Some("CAISwrong".into());
    client.set_credentials(wrong);
    let err = client.put_object_tagging(&input).await.unwrap_err();
    assert_eq!(err.code, "InvalidSecurityToken", "{err:?}");
    // After expiry: SecurityTokenExpired.
    client.set_credentials(issued.credentials.clone());
    while SystemTime::now() < issued.expiration {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = client.put_object_tagging(&input).await.unwrap_err();
    assert_eq!(err.code, "SecurityTokenExpired", "{err:?}");
    assert_eq!(err.http_status, Some(403));
}

// ------------------------------------------------------------------ ECS RAM role

/// A fake ECS instance metadata service in hardened mode: a session token is required
/// (`PUT /latest/api/token`), the role `ossgate-ecs-role` is attached, and its credentials
/// are real short-lived ones from the emulator's STS, which the emulator's OSS side accepts.
struct FakeMetadata {
    endpoint: String,
    token_puts: Arc<AtomicU64>,
    credential_reads: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    /// Holds the OIDC token file the fake uses to get credentials from the emulator's STS.
    _dir: tempfile::TempDir,
}

const ECS_ROLE: &str = "ossgate-ecs-role";
const METADATA_TOKEN: &str = "metadata-session-token";

#[derive(Clone)]
struct MetadataState {
    sts: OidcRoleProvider,
    token_puts: Arc<AtomicU64>,
    credential_reads: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    /// The role attached to the instance (None: no role).
    role: Option<&'static str>,
}

async fn fake_metadata(emulator: &EmulatorHandle, role: Option<&'static str>) -> FakeMetadata {
    use axum::{
        Router,
        extract::{Path as UrlPath, State},
        http::{HeaderMap, StatusCode},
        routing::{get, put},
    };
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, TOKEN);
    let sts = OidcRoleProvider::new(OidcRoleConfig {
        endpoint: emulator.endpoint(),
        role_arn: ROLE_ARN.into(),
        oidc_provider_arn: PROVIDER_ARN.into(),
        oidc_token_file: token,
        role_session_name: "ecs-instance".into(),
        duration: Duration::from_secs(900),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let state = MetadataState {
        sts,
        token_puts: Arc::default(),
        credential_reads: Arc::default(),
        refused: Arc::default(),
        role,
    };
    fn has_token(state: &MetadataState, headers: &HeaderMap) -> bool {
        let ok = headers
            .get("x-aliyun-ecs-metadata-token")
            .is_some_and(|v| v == METADATA_TOKEN);
        if !ok {
            state.refused.fetch_add(1, Ordering::SeqCst);
        }
        ok
    }
    async fn issue_token(
        State(state): State<MetadataState>,
        headers: HeaderMap,
    ) -> (StatusCode, String) {
        state.token_puts.fetch_add(1, Ordering::SeqCst);
        match headers
            .get("x-aliyun-ecs-metadata-token-ttl-seconds")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
        {
            Some(1..=21600) => (StatusCode::OK, METADATA_TOKEN.into()),
            _ => (StatusCode::BAD_REQUEST, String::new()),
        }
    }
    async fn list_role(
        State(state): State<MetadataState>,
        headers: HeaderMap,
    ) -> (StatusCode, String) {
        if !has_token(&state, &headers) {
            return (StatusCode::UNAUTHORIZED, String::new());
        }
        match state.role {
            Some(role) => (StatusCode::OK, role.into()),
            None => (StatusCode::NOT_FOUND, "Not Found".into()),
        }
    }
    async fn credentials(
        State(state): State<MetadataState>,
        UrlPath(role): UrlPath<String>,
        headers: HeaderMap,
    ) -> (StatusCode, String) {
        if !has_token(&state, &headers) {
            return (StatusCode::UNAUTHORIZED, String::new());
        }
        if state.role != Some(role.as_str()) {
            return (StatusCode::NOT_FOUND, "Not Found".into());
        }
        state.credential_reads.fetch_add(1, Ordering::SeqCst);
        let issued = match state.sts.fetch().await {
            Ok(issued) => issued,
            Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
        };
        let c = issued.credentials;
        let now = oss::credentials::sts::format_timestamp(SystemTime::now());
        let body = serde_json::json!({
            "AccessKeyId": c.access_key_id,
            "AccessKeySecret": c.access_key_secret,
            "SecurityToken": c.security_token,
            "Expiration": oss::credentials::sts::format_timestamp(issued.expiration),
            "LastUpdated": now,
            "Code": "Success",
        });
        (StatusCode::OK, body.to_string())
    }
    let (token_puts, credential_reads, refused) = (
        state.token_puts.clone(),
        state.credential_reads.clone(),
        state.refused.clone(),
    );
    let app = Router::new()
        .route("/latest/api/token", put(issue_token))
        .route(
            "/latest/meta-data/ram/security-credentials/",
            get(list_role),
        )
        .route(
            "/latest/meta-data/ram/security-credentials/{role}",
            get(credentials),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FakeMetadata {
        endpoint: format!("http://{addr}"),
        token_puts,
        credential_reads,
        refused,
        _dir: dir,
    }
}

/// Gateway settings with only an ECS RAM role (plus `more`), pointed at `metadata`.
fn ecs_settings(
    emulator: &EmulatorHandle,
    metadata_endpoint: &str,
    more: &[(&str, &str)],
) -> anyhow::Result<Settings> {
    let mut env: HashMap<String, String> = [
        ("OSSGATE_LISTEN", "127.0.0.1:0".to_owned()),
        ("OSSGATE_OSS__ENDPOINT", emulator.endpoint()),
        ("OSSGATE_OSS__REGION", "cn-hangzhou".to_owned()),
        ("ALIBABA_CLOUD_ECS_METADATA", "auto".to_owned()),
        ("ALIBABA_CLOUD_IMDSV1_DISABLED", "true".to_owned()),
        (
            "OSSGATE_OSS__ECS_METADATA_ENDPOINT",
            metadata_endpoint.to_owned(),
        ),
        ("OSSGATE_SERVER__SHUTDOWN_GRACE_MS", "2000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in more {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::load_from(None, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ecs_ram_role_credentials_are_refreshed_from_the_metadata_service() {
    let emulator = emulator_with_sts(LIFETIME, None).await;
    let metadata = fake_metadata(&emulator, Some(ECS_ROLE)).await;
    let settings = ecs_settings(&emulator, &metadata.endpoint, &[]).expect("ECS-only settings");
    assert!(settings.credentials().is_none() && settings.rrsa().is_none());
    let started = Instant::now();
    let server = server::start(settings)
        .await
        .expect("gateway starts with the ECS role");
    assert_eq!(metadata.credential_reads.load(Ordering::SeqCst), 1);
    assert_eq!(metadata.token_puts.load(Ordering::SeqCst), 1);
    let mut client = connect(server.local_addr()).await;

    let key = "ecs/tagged.txt";
    let mut object = spec(BUCKET, key);
    object.tagging = Some(tags(&[("round", "0")]));
    write(&mut client, object, b"written with the instance's role").await;
    // Calls keep working for more than two credential lifetimes.
    let mut round = 0u64;
    while started.elapsed() < LIFETIME * 5 / 2 {
        round += 1;
        put_tags(&mut client, BUCKET, key, &[("round", &round.to_string())]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        get_tags(&mut client, BUCKET, key, "").await,
        tags(&[("round", &round.to_string())])
    );
    // Refreshed by the background task (about every half lifetime), each with a fresh
    // session token, the role discovered each time, and never a read without the token.
    let reads = metadata.credential_reads.load(Ordering::SeqCst);
    assert!(
        reads >= 3,
        "{reads} credential reads in {:?}",
        started.elapsed()
    );
    assert!(
        reads <= 2 + (started.elapsed().as_secs_f64() / 1.2) as u64,
        "{reads}"
    );
    assert_eq!(metadata.token_puts.load(Ordering::SeqCst), reads);
    assert_eq!(metadata.refused.load(Ordering::SeqCst), 0);
    assert_eq!(emulator.sts().issued_count(), reads);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn static_keys_then_rrsa_win_over_the_ecs_role() {
    let emulator = emulator_with_sts(Duration::from_secs(3600), None).await;
    let metadata = fake_metadata(&emulator, Some(ECS_ROLE)).await;
    // Static keys: the metadata service is never asked.
    let settings = ecs_settings(
        &emulator,
        &metadata.endpoint,
        &[
            ("OSS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("OSS_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET),
        ],
    )
    .unwrap();
    let server = server::start(settings)
        .await
        .expect("starts with static keys");
    write(
        &mut connect(server.local_addr()).await,
        spec(BUCKET, "ecs/static.txt"),
        b"s",
    )
    .await;
    server.shutdown().await.unwrap();
    // RRSA: STS is asked, the metadata service is not.
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, TOKEN);
    let token = token.display().to_string();
    let settings = ecs_settings(
        &emulator,
        &metadata.endpoint,
        &[
            ("OSSGATE_OSS__STS_ENDPOINT", &emulator.endpoint()),
            ("ALIBABA_CLOUD_ROLE_ARN", ROLE_ARN),
            ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", PROVIDER_ARN),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", &token),
        ],
    )
    .unwrap();
    let server = server::start(settings).await.expect("starts with RRSA");
    write(
        &mut connect(server.local_addr()).await,
        spec(BUCKET, "ecs/rrsa.txt"),
        b"r",
    )
    .await;
    server.shutdown().await.unwrap();
    assert_eq!(emulator.sts().issued_count(), 1, "RRSA's one STS call");
    assert_eq!(metadata.token_puts.load(Ordering::SeqCst), 0);
    assert_eq!(metadata.credential_reads.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failing_metadata_service_stops_the_start_naming_the_setting() {
    let emulator = emulator_with_sts(Duration::from_secs(3600), None).await;
    // No role attached to the instance.
    let metadata = fake_metadata(&emulator, None).await;
    let settings = ecs_settings(&emulator, &metadata.endpoint, &[]).unwrap();
    let Err(err) = server::start(settings).await else {
        panic!("started without a role");
    };
    let message = format!("{err:#}");
    for needle in [
        "no RAM role attached",
        "oss.ecs_ram_role",
        "ALIBABA_CLOUD_ECS_METADATA",
    ] {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
    // A role name the instance does not have.
    let metadata = fake_metadata(&emulator, Some(ECS_ROLE)).await;
    let settings = ecs_settings(
        &emulator,
        &metadata.endpoint,
        &[("OSSGATE_OSS__ECS_RAM_ROLE", "another-role")],
    )
    .unwrap();
    let Err(err) = server::start(settings).await else {
        panic!("started with a role the instance lacks");
    };
    let message = format!("{err:#}");
    assert!(
        message.contains("\"another-role\" is not attached"),
        "{message}"
    );
    assert!(message.contains("oss.ecs_ram_role"), "{message}");
    // Nothing listens: a connection error naming the endpoint setting (after retries).
    let settings = ecs_settings(&emulator, "http://127.0.0.1:1", &[]).unwrap();
    let Err(err) = server::start(settings).await else {
        panic!("started without a metadata service");
    };
    let message = format!("{err:#}");
    assert!(message.contains("oss.ecs_metadata_endpoint"), "{message}");
    assert!(message.contains("http://127.0.0.1:1"), "{message}");
    assert_eq!(emulator.sts().issued_count(), 0);
}
