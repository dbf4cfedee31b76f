//! Test harness: the real emulator and the real gateway on loopback ports, and a generated
//! gRPC client. Everything runs in the test process and stops when the test ends.
#![allow(dead_code)]

use std::collections::HashMap;

use ossgate::{
    config::Settings,
    config::auth::{AuthSettings, PolicyRule, TokenSetting},
    emulator::{self, BucketSpec, EmulatorConfig, EmulatorHandle},
    oss::credentials::Credentials,
    proto::{self, object_service_client::ObjectServiceClient},
    server::authn::hash_token,
    server::{self, RunningServer},
};
use tokio::{sync::mpsc, task::JoinHandle};
use tonic::{Code, Request, Response, Status, transport::Channel};
use tonic_types::StatusExt;

/// Plain bucket name used by the tests.
pub const BUCKET: &str = "e2e-bucket";
/// Versioned bucket name used by the tests.
pub const VERSIONED_BUCKET: &str = "e2e-versioned";
pub const ACCESS_KEY_ID: &str = "LTAIe2etestkey";
pub const ACCESS_KEY_SECRET: &str = "e2e-test-secret-0123456789";

pub fn credentials() -> Credentials {
    Credentials {
        access_key_id: ACCESS_KEY_ID.into(),
        access_key_secret: ACCESS_KEY_SECRET.into(),
        security_token: None,
    }
}

/// How the gateway is set up against the emulator.
#[derive(Clone)]
pub struct StackOptions {
    pub signature_version: &'static str,
    /// The secret the gateway signs with (the emulator always expects the right one).
    pub gateway_secret: String,
    /// An STS token the emulator requires and the gateway sends.
    pub security_token: Option<String>,
    /// More gateway settings, as `OSSGATE_*` environment variables.
    pub settings: Vec<(&'static str, String)>,
    /// The emulator keeps its data here (it survives [`Stack::restart_emulator`]); `None`
    /// keeps it in memory.
    pub emulator_data_dir: Option<std::path::PathBuf>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            signature_version: "v4",
            gateway_secret: ACCESS_KEY_SECRET.into(),
            security_token: None,
            settings: Vec::new(),
            emulator_data_dir: None,
        }
    }
}

/// A running emulator + gateway + client.
///
/// Every test gets one invariant without opting in: when it ends, the emulator holds no
/// multipart upload other than those the test declared with
/// [`Stack::expect_leftover_upload`]. [`Stack::stop`] checks it after the gateway's shutdown
/// (waiting a bounded time for aborts still running); a stack dropped without `stop` checks
/// it on drop (unless the test is already failing). A failure names each leftover.
pub struct Stack {
    pub emulator: EmulatorHandle,
    pub server: Option<RunningServer>,
    pub client: ObjectServiceClient<Channel>,
    /// How the emulator was started (on the address it bound), to start it again.
    emulator_config: EmulatorConfig,
    /// Keys whose multipart uploads the test leaves open on purpose.
    expected_leftovers: std::sync::Mutex<Vec<String>>,
    /// The invariant was checked (by `stop`).
    checked: bool,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(StackOptions::default()).await
    }

    /// A stack whose gateway has these `OSSGATE_*` settings.
    pub async fn start_with_settings(settings: &[(&'static str, &str)]) -> Self {
        Self::start_with(StackOptions {
            settings: settings.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            ..Default::default()
        })
        .await
    }

    pub async fn start_with(options: StackOptions) -> Self {
        let mut accepted = credentials();
        accepted.security_token = options.security_token.clone();
        let mut emulator_config = emulator_config(accepted, options.emulator_data_dir.clone());
        let emulator = emulator::start(emulator_config.clone())
            .await
            .expect("emulator starts");
        emulator_config.listen = emulator.addr();

        let mut env = gateway_env(&emulator);
        env.insert(
            "OSSGATE_OSS__SIGNATURE_VERSION".into(),
            options.signature_version.into(),
        );
        env.insert(
            "OSSGATE_OSS__ACCESS_KEY_SECRET".into(),
            options.gateway_secret.clone(),
        );
        if let Some(token) = &options.security_token {
            env.insert("OSSGATE_OSS__SECURITY_TOKEN".into(), token.clone());
        }
        for (name, value) in &options.settings {
            env.insert(name.to_string(), value.clone());
        }
        let settings = Settings::load_from(None, env).expect("settings load");
        let server = server::start(settings).await.expect("gateway starts");
        let client = connect(server.local_addr()).await;
        Self {
            emulator,
            server: Some(server),
            client,
            emulator_config,
            expected_leftovers: std::sync::Mutex::new(Vec::new()),
            checked: false,
        }
    }

    /// Declares that the test leaves the multipart uploads of `key` open on purpose (in any
    /// bucket), so the end-of-test check does not count them.
    pub fn expect_leftover_upload(&self, key: &str) {
        self.expected_leftovers
            .lock()
            .unwrap()
            .push(key.to_string());
    }

    /// Open multipart uploads the test did not declare, as `(bucket, key, upload_id)`.
    pub fn unexpected_uploads(&self) -> Vec<(String, String, String)> {
        let expected = self.expected_leftovers.lock().unwrap().clone();
        self.emulator
            .open_uploads()
            .into_iter()
            .filter(|(_, key, _)| !expected.contains(key))
            .collect()
    }

    /// Waits (at most 10 s: aborts may still be running in the background) until the emulator
    /// holds no undeclared multipart upload; panics naming the leftovers otherwise.
    pub async fn assert_no_leftover_uploads(&self) {
        for _ in 0..100 {
            if self.unexpected_uploads().is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "multipart uploads left behind (bucket, key, upload id): {:?}",
            self.unexpected_uploads()
        );
    }

    /// Stops the emulator (requests in flight may finish; then its port refuses
    /// connections), runs `while_down`, and starts the emulator again on the same port
    /// with the same data directory.
    pub async fn restart_emulator<F: std::future::Future>(&mut self, while_down: F) -> F::Output {
        self.emulator.stop().await;
        let result = while_down.await;
        self.emulator = emulator::start(self.emulator_config.clone())
            .await
            .expect("the emulator starts again on its port");
        result
    }

    /// Requests the emulator has received so far.
    pub fn oss_requests(&self) -> u64 {
        self.emulator.request_count()
    }

    /// Shuts the gateway down, then checks that no undeclared multipart upload is left.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        self.checked = true;
        self.assert_no_leftover_uploads().await;
    }
}

impl Drop for Stack {
    /// The end-of-test check for a stack that was not stopped. It cannot wait (no await in
    /// `drop`), so a test whose aborts run in the background calls `stop` or
    /// `assert_no_leftover_uploads` first.
    fn drop(&mut self) {
        if self.checked || std::thread::panicking() {
            return;
        }
        let leftovers = self.unexpected_uploads();
        assert!(
            leftovers.is_empty(),
            "multipart uploads left behind (bucket, key, upload id): {leftovers:?}"
        );
    }
}

/// An in-memory emulator on a loopback port with the test buckets ([`BUCKET`] and
/// [`VERSIONED_BUCKET`]), accepting `accepted`.
pub async fn start_emulator(accepted: Credentials) -> EmulatorHandle {
    emulator::start(emulator_config(accepted, None))
        .await
        .expect("emulator starts")
}

/// The emulator of the tests: loopback port 0, the two test buckets, signatures checked,
/// accepting `accepted`, in memory or in `data_dir`.
pub fn emulator_config(
    accepted: Credentials,
    data_dir: Option<std::path::PathBuf>,
) -> EmulatorConfig {
    EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        credentials: vec![accepted],
        buckets: vec![
            BucketSpec {
                name: BUCKET.into(),
                versioned: false,
            },
            BucketSpec {
                name: VERSIONED_BUCKET.into(),
                versioned: true,
            },
        ],
        region: "cn-hangzhou".into(),
        verify_signatures: true,
    }
}

/// Gateway settings, as `OSSGATE_*` variables, in front of `emulator`: loopback port 0, the
/// test keys, a 2 s shutdown grace.
pub fn gateway_env(emulator: &EmulatorHandle) -> HashMap<String, String> {
    [
        ("OSSGATE_LISTEN", "127.0.0.1:0".to_string()),
        ("OSSGATE_OSS__ENDPOINT", emulator.endpoint()),
        ("OSSGATE_OSS__REGION", "cn-hangzhou".into()),
        ("OSSGATE_OSS__ACCESS_KEY_ID", ACCESS_KEY_ID.into()),
        ("OSSGATE_OSS__ACCESS_KEY_SECRET", ACCESS_KEY_SECRET.into()),
        ("OSSGATE_SERVER__SHUTDOWN_GRACE_MS", "2000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Another gateway in front of the stack's emulator, with `auth` and the `extra` `OSSGATE_*`
/// settings.
pub async fn start_gateway(
    stack: &Stack,
    auth: AuthSettings,
    extra: &[(&str, &str)],
) -> RunningServer {
    let mut env = gateway_env(&stack.emulator);
    for (name, value) in extra {
        env.insert(name.to_string(), value.to_string());
    }
    let mut settings = Settings::load_from(None, env).expect("settings load");
    settings.auth = auth;
    settings.validate().expect("settings are valid");
    server::start(settings).await.expect("gateway starts")
}

/// A policy rule: `principal` may do `operations` in `buckets` under `prefixes`.
pub fn policy_rule(
    principal: &str,
    buckets: &[&str],
    prefixes: &[&str],
    operations: &[&str],
) -> PolicyRule {
    let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
    PolicyRule {
        principal: principal.into(),
        buckets: strings(buckets),
        prefixes: strings(prefixes),
        operations: strings(operations),
    }
}

/// The bearer `token` of `principal`, as configured (its SHA-256 in hex).
pub fn token_setting(principal: &str, token: &str) -> TokenSetting {
    TokenSetting {
        principal: principal.into(),
        sha256: hex::encode(hash_token(token)),
    }
}

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The gRPC health status of the object service over `channel`.
pub async fn health(channel: Channel) -> Result<i32, Status> {
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "ossgate.v1.ObjectService".into(),
        })
        .await
        .map(|r| r.into_inner().status)
}

/// Health answers SERVING and reflection lists the services over `channel` (they need no
/// credentials).
pub async fn assert_health_and_reflection_open(channel: Channel) {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    assert_eq!(
        health(channel.clone()).await.expect("health is open"),
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
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

/// A plaintext channel to the gateway at `addr`.
pub async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect to the gateway")
}

/// A client of the gateway at `addr` (16 MiB messages).
pub async fn connect(addr: std::net::SocketAddr) -> ObjectServiceClient<Channel> {
    client_of(channel(addr).await)
}

/// A client over `channel` (16 MiB messages).
pub fn client_of(channel: Channel) -> ObjectServiceClient<Channel> {
    ObjectServiceClient::new(channel)
        .max_decoding_message_size(16 * 1024 * 1024)
        .max_encoding_message_size(16 * 1024 * 1024)
}

pub fn tags(pairs: &[(&str, &str)]) -> proto::Tagging {
    proto::Tagging {
        tags: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

pub fn spec(bucket: &str, key: &str) -> proto::WriteObjectSpec {
    proto::WriteObjectSpec {
        bucket: bucket.into(),
        key: key.into(),
        ..Default::default()
    }
}

/// Writes `data` in chunks of `chunk` bytes with the given spec.
pub async fn write_chunks(
    client: &mut ObjectServiceClient<Channel>,
    spec: proto::WriteObjectSpec,
    data: &[u8],
    chunk: usize,
) -> Result<proto::WriteObjectResponse, Status> {
    client
        .write_object(tokio_stream::iter(write_messages(spec, data, chunk)))
        .await
        .map(|r| r.into_inner())
}

/// The messages of a WriteObject stream of `data` in chunks of `chunk` bytes (one empty
/// message for no data).
pub fn write_messages(
    spec: proto::WriteObjectSpec,
    data: &[u8],
    chunk: usize,
) -> Vec<proto::WriteObjectRequest> {
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(chunk).collect()
    };
    let count = chunks.len();
    let mut offset = 0i64;
    let mut messages = Vec::new();
    for (i, piece) in chunks.into_iter().enumerate() {
        messages.push(proto::WriteObjectRequest {
            spec: (i == 0).then(|| spec.clone()),
            write_offset: offset,
            data: bytes::Bytes::copy_from_slice(piece),
            finish_write: i + 1 == count,
            ..Default::default()
        });
        offset += piece.len() as i64;
    }
    messages
}

/// A WriteObject call that stays open after its first message (`first`, not finishing): the
/// sender of the next messages and the running call.
pub async fn open_write(
    client: &ObjectServiceClient<Channel>,
    spec: proto::WriteObjectSpec,
    first: &'static [u8],
) -> (
    mpsc::Sender<proto::WriteObjectRequest>,
    JoinHandle<Result<Response<proto::WriteObjectResponse>, Status>>,
) {
    let (tx, rx) = mpsc::channel(4);
    tx.send(proto::WriteObjectRequest {
        spec: Some(spec),
        data: bytes::Bytes::from_static(first),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut client = client.clone();
    let call = tokio::spawn(async move {
        client
            .write_object(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    (tx, call)
}

/// Writes a small object in one message.
pub async fn write(
    client: &mut ObjectServiceClient<Channel>,
    spec: proto::WriteObjectSpec,
    data: &[u8],
) -> proto::WriteObjectResponse {
    write_chunks(client, spec, data, usize::MAX)
        .await
        .expect("write succeeds")
}

/// Reads a whole object (or range) back.
pub async fn read(
    client: &mut ObjectServiceClient<Channel>,
    request: proto::ReadObjectRequest,
) -> Result<(Option<proto::ObjectMetadata>, Vec<u8>), Status> {
    let mut stream = client.read_object(request).await?.into_inner();
    let mut metadata = None;
    let mut data = Vec::new();
    while let Some(message) = stream.message().await? {
        if message.metadata.is_some() {
            assert!(metadata.is_none(), "metadata must come only once");
            metadata = message.metadata;
        }
        data.extend_from_slice(&message.data);
    }
    Ok((metadata, data))
}

/// Asserts a status is INVALID_ARGUMENT naming `field` in its BadRequest details.
pub fn assert_invalid(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad_request = details.bad_request().expect("BadRequest detail");
    assert!(
        bad_request
            .field_violations
            .iter()
            .any(|v| v.field == field && !v.description.is_empty()),
        "expected a violation for {field}, got {:?}",
        bad_request.field_violations
    );
}

/// The OSS error code in a status's ErrorInfo.
pub fn oss_reason(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
}

/// The OSS request id in a status's ErrorInfo.
pub fn oss_request_id(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("request_id").cloned())
}

/// The tag set of an object (or version), empty when it has none.
pub async fn get_tags(
    client: &mut ObjectServiceClient<Channel>,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> proto::Tagging {
    client
        .get_object_tagging(proto::GetObjectTaggingRequest {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .tagging
        .unwrap_or_default()
}

/// Replaces the tag set of an object's current version.
pub async fn put_tags(
    client: &mut ObjectServiceClient<Channel>,
    bucket: &str,
    key: &str,
    pairs: &[(&str, &str)],
) {
    client
        .put_object_tagging(proto::PutObjectTaggingRequest {
            bucket: bucket.into(),
            key: key.into(),
            version_id: String::new(),
            tagging: Some(tags(pairs)),
            ..Default::default()
        })
        .await
        .expect("PutObjectTagging succeeds");
}

/// The metadata of an object's current version.
pub async fn head(
    client: &mut ObjectServiceClient<Channel>,
    bucket: &str,
    key: &str,
) -> proto::ObjectMetadata {
    client
        .head_object(proto::HeadObjectRequest {
            bucket: bucket.into(),
            key: key.into(),
            version_id: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap()
}

/// Deterministic pseudo-random test data.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// An object's metadata, or `None` when it does not exist.
pub async fn try_head(stack: &Stack, bucket: &str, key: &str) -> Option<proto::ObjectMetadata> {
    let mut client = stack.client.clone();
    match client
        .head_object(proto::HeadObjectRequest {
            bucket: bucket.into(),
            key: key.into(),
            version_id: String::new(),
            ..Default::default()
        })
        .await
    {
        Ok(response) => response.into_inner().metadata,
        Err(status) if status.code() == Code::NotFound => None,
        Err(status) => panic!("unexpected {status:?}"),
    }
}

/// Whether an object exists.
pub async fn exists(stack: &Stack, bucket: &str, key: &str) -> bool {
    try_head(stack, bucket, key).await.is_some()
}

/// The bytes of an object (or of one version, when `version_id` is not empty).
pub async fn read_all(stack: &Stack, bucket: &str, key: &str, version_id: &str) -> Vec<u8> {
    let mut client = stack.client.clone();
    read(
        &mut client,
        proto::ReadObjectRequest {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version_id.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .1
}

/// The value of the sample `series` (name plus its exact label set), 0 when absent.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(series))
        .filter_map(|rest| rest.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The Prometheus text of the `/metrics` endpoint at `addr` (asserting its content type).
pub async fn scrape(addr: std::net::SocketAddr) -> String {
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
