//! The client conformance matrix through tonic: every scenario of
//! tests/conformance/scenarios.json, with and without a deadline (`Request::set_timeout`, which
//! only sends `grpc-timeout`: the server's answer is what the cell sees), with and without
//! gzip-compressed requests. The rules are those of tests/conformance/matrix.py (described in
//! tests/conformance/README.md); the other client stacks run under pytest.
//!
//! Requests and responses travel as proto3 JSON, transcoded with `prost-reflect` from the
//! descriptor sets of `ossgate.v1` and of `google.rpc` (tonic-types), so the scenarios need no
//! code per RPC beyond choosing the generated client method.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::LazyLock,
    time::{Duration, Instant},
};

use base64::Engine as _;
use ossgate::{
    config::auth::AuthSettings,
    proto::{self, object_service_client::ObjectServiceClient},
    server::RunningServer,
};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use tonic::{
    Code, Request, Status, Streaming,
    codec::CompressionEncoding,
    metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataKey, MetadataMap},
    transport::Channel,
};

use crate::common::*;

/// Large enough for the 1 MiB messages of the large-stream scenarios.
const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// How long a cell waits for an open upload to appear or go away.
const UPLOADS_WAIT: Duration = Duration::from_secs(20);

/// tests/conformance/scenarios.json.
static SCENARIOS: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../conformance/scenarios.json")).expect("scenarios.json")
});

/// `ossgate.v1` and `google.rpc`, for transcoding JSON to and from the generated types.
fn descriptors() -> DescriptorPool {
    let mut pool = DescriptorPool::new();
    pool.decode_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .expect("ossgate descriptors");
    pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .expect("google.rpc descriptors");
    pool
}

struct Cell {
    id: String,
    deadline: Option<Duration>,
    gzip: bool,
    scenario: Value,
}

fn cells(spec: &Value) -> Vec<Cell> {
    let gzip_modes: &[bool] = if spec["stacks"]["tonic"]["gzip"] == json!(true) {
        &[false, true]
    } else {
        &[false]
    };
    let mut out = Vec::new();
    for scenario in spec["scenarios"].as_array().unwrap() {
        let deadline_ms = scenario
            .get("deadline_ms")
            .unwrap_or(&spec["deadline_ms"])
            .as_u64()
            .unwrap();
        for deadline in [false, true] {
            for &gzip in gzip_modes {
                let id = format!(
                    "tonic-{}-{}-{}",
                    if deadline { "deadline" } else { "nodeadline" },
                    if gzip { "gzip" } else { "plain" },
                    scenario["name"].as_str().unwrap()
                );
                out.push(Cell {
                    id,
                    deadline: deadline.then(|| Duration::from_millis(deadline_ms)),
                    gzip,
                    scenario: scenario.clone(),
                });
            }
        }
    }
    out
}

/// `value` with every `${name}` in its strings replaced.
fn substitute(value: &Value, variables: &[(&str, &str)]) -> Value {
    match value {
        Value::String(s) => {
            let mut s = s.clone();
            for (name, replacement) in variables {
                s = s.replace(&format!("${{{name}}}"), replacement);
            }
            Value::String(s)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute(v, variables)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, variables)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The payload of a `generated` step (matrix.py `generated_chunks`): message k is a block of
/// SHA-256("<seed>:<j>") digests rotated left by (k * 7919) mod chunk.
fn generated_chunks(generated: &Value) -> Vec<Vec<u8>> {
    let [size, chunk, seed] =
        ["size", "chunk", "seed"].map(|k| generated[k].as_u64().unwrap() as usize);
    let mut block = Vec::with_capacity(chunk + 32);
    let mut j = 0;
    while block.len() < chunk {
        block.extend_from_slice(&Sha256::digest(format!("{seed}:{j}")));
        j += 1;
    }
    block.truncate(chunk);
    (0..size.div_ceil(chunk))
        .map(|k| {
            let mut piece = block.clone();
            piece.rotate_left(k * 7919 % chunk);
            piece.truncate(size - k * chunk);
            piece
        })
        .collect()
}

/// WriteObject messages of a `generated` step, the first `count` of them.
fn write_messages(
    pool: &DescriptorPool,
    generated: &Value,
    count: Option<usize>,
) -> Vec<proto::WriteObjectRequest> {
    let chunks = generated_chunks(generated);
    let total = chunks.len();
    let chunk = generated["chunk"].as_u64().unwrap() as i64;
    let mut first_spec = Some(generated["spec"].clone());
    chunks
        .into_iter()
        .take(count.unwrap_or(total))
        .enumerate()
        .map(|(k, data)| proto::WriteObjectRequest {
            spec: first_spec
                .take()
                .map(|spec| transcode(pool, "ossgate.v1.WriteObjectSpec", &spec)),
            write_offset: k as i64 * chunk,
            data: data.into(),
            finish_write: k + 1 == total,
            ..Default::default()
        })
        .collect()
}

/// A proto3 JSON message as the generated type `T` (full name `name`).
fn transcode<T: prost::Message + Default>(pool: &DescriptorPool, name: &str, json: &Value) -> T {
    let descriptor = pool.get_message_by_name(name).expect(name);
    let dynamic = DynamicMessage::deserialize(descriptor, json).expect("proto3 JSON of the step");
    T::decode(dynamic.encode_to_vec().as_slice()).expect("transcoded message")
}

/// A message (full name `name`, encoded) as proto3 JSON.
fn to_json(pool: &DescriptorPool, name: &str, encoded: &[u8]) -> Value {
    let descriptor = pool.get_message_by_name(name).expect(name);
    let dynamic = DynamicMessage::decode(descriptor, encoded).expect("decodes");
    serde_json::to_value(&dynamic).expect("serializes")
}

/// What the client saw of one call (matrix.py `Observation`).
#[derive(Debug, Default)]
struct Observation {
    code: String,
    message: String,
    details: Vec<Value>,
    response: Option<Value>,
    messages: Vec<Value>,
    headers: Option<Value>,
    trailers: Option<Value>,
    status_proto: Option<(String, String)>,
}

fn code_name(code: Code) -> String {
    let name = match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    };
    name.to_string()
}

/// Response metadata without scenarios.json's `transport_metadata` (the framing headers
/// libraries expose to differing degrees).
fn transport_free(metadata: &MetadataMap) -> Value {
    let transport = SCENARIOS["transport_metadata"].as_array().unwrap();
    let headers = metadata.clone().into_headers();
    let mut out = serde_json::Map::new();
    for (name, value) in &headers {
        if !transport.contains(&json!(name.as_str())) {
            out.insert(
                name.as_str().to_string(),
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            );
        }
    }
    Value::Object(out)
}

/// A detail as the matrix compares it: proto3 JSON with "@type" = the name after
/// `google.rpc.`, RetryInfo's delay in milliseconds.
fn canonical_detail(mut detail: Value) -> Value {
    let name = detail["@type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default()
        .trim_start_matches("google.rpc.")
        .to_string();
    if name == "RetryInfo" {
        let delay = detail["retryDelay"].as_str().unwrap_or("0s");
        let seconds: f64 = delay.trim_end_matches('s').parse().unwrap_or(f64::NAN);
        return json!({"@type": name, "retryDelayMs": (seconds * 1000.0).round() as u64});
    }
    detail["@type"] = Value::String(name);
    detail
}

fn failure(pool: &DescriptorPool, status: &Status) -> Observation {
    let mut seen = Observation {
        code: code_name(status.code()),
        message: status.message().to_string(),
        // A trailers-only answer (every error before a response) has no separate headers.
        headers: Some(json!({})),
        trailers: Some(transport_free(status.metadata())),
        ..Default::default()
    };
    if !status.details().is_empty() {
        let proto = to_json(pool, "google.rpc.Status", status.details());
        let code = proto["code"].as_i64().unwrap_or(0) as i32;
        seen.status_proto = Some((
            code_name(Code::from_i32(code)),
            proto["message"].as_str().unwrap_or_default().to_string(),
        ));
        seen.details = proto["details"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(canonical_detail)
            .collect();
    }
    seen
}

/// One call of a step.
struct Call {
    client: ObjectServiceClient<Channel>,
    rpc: String,
    request: Value,
    messages: Vec<proto::WriteObjectRequest>,
    metadata: Vec<(String, Value)>,
    deadline: Option<Duration>,
    /// For a stream cut short: the key whose multipart upload must be open before cancelling.
    cancel_when_open: Option<String>,
}

impl Call {
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let metadata = request.metadata_mut();
        for (key, value) in &self.metadata {
            let value = value.as_str().unwrap();
            if key.ends_with("-bin") {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .unwrap();
                metadata.insert_bin(
                    MetadataKey::from_bytes(key.as_bytes()).unwrap(),
                    BinaryMetadataValue::from_bytes(&bytes),
                );
            } else {
                metadata.insert(
                    MetadataKey::from_bytes(key.as_bytes()).unwrap(),
                    AsciiMetadataValue::try_from(value).unwrap(),
                );
            }
        }
        if let Some(timeout) = self.deadline {
            request.set_timeout(timeout);
        }
        request
    }
}

/// The gateways of scenarios.json in front of one emulator (see tests/conformance/conftest.py
/// for what each is).
struct World {
    stack: Stack,
    gateways: HashMap<String, RunningServer>,
    channels: HashMap<String, Channel>,
    tasks: Vec<JoinHandle<()>>,
    pool: DescriptorPool,
}

impl World {
    async fn start(spec: &Value) -> Self {
        let stack = Stack::start().await;
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        let tokens = spec["tokens"].as_object().unwrap();
        let auth = AuthSettings {
            tokens: ["writer", "reader"]
                .iter()
                .map(|p| token_setting(p, tokens[*p].as_str().unwrap()))
                .collect(),
            certificates: Vec::new(),
            policy: spec["policy"]
                .as_array()
                .unwrap()
                .iter()
                .map(|rule| {
                    let [buckets, prefixes, operations] =
                        ["buckets", "prefixes", "operations"].map(|k| strings(&rule[k]));
                    fn refs(v: &[String]) -> Vec<&str> {
                        v.iter().map(String::as_str).collect()
                    }
                    policy_rule(
                        rule["principal"].as_str().unwrap(),
                        &refs(&buckets),
                        &refs(&prefixes),
                        &refs(&operations),
                    )
                })
                .collect(),
        };
        let mut world = Self {
            stack,
            gateways: HashMap::new(),
            channels: HashMap::new(),
            tasks: Vec::new(),
            pool: descriptors(),
        };
        for (name, gateway) in spec["gateways"].as_object().unwrap() {
            let mut settings: Vec<(String, String)> = gateway["settings"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            if let Some(delay) = gateway["oss_answer_delay_ms"].as_u64() {
                let upstream = world.stack.emulator.addr();
                let (proxy, task) = delay_proxy(upstream, Duration::from_millis(delay)).await;
                world.tasks.push(task);
                settings.push(("OSSGATE_OSS__ENDPOINT".into(), format!("http://{proxy}")));
            }
            let extra: Vec<(&str, &str)> = settings
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let server = start_gateway(&world.stack, auth.clone(), &extra).await;
            let channel = channel(server.local_addr()).await;
            if gateway["hold_one_streaming_call"] == json!(true) {
                let writer = tokens["writer"].as_str().unwrap();
                world.tasks.push(hold_streaming_slot(&server, writer).await);
            }
            world.channels.insert(name.clone(), channel);
            world.gateways.insert(name.clone(), server);
        }
        world
    }

    fn client(&self, gateway: &str, gzip: bool) -> ObjectServiceClient<Channel> {
        let client = ObjectServiceClient::new(self.channels[gateway].clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        if gzip {
            client
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip)
        } else {
            client
        }
    }

    fn open_uploads(&self, key: &str) -> usize {
        self.stack
            .emulator
            .open_uploads()
            .iter()
            .filter(|(bucket, k, _)| bucket == BUCKET && k == key)
            .count()
    }

    /// Waits (at most UPLOADS_WAIT) until `key` has `count` open uploads (or at least).
    async fn await_open_uploads(
        &self,
        key: &str,
        count: usize,
        at_least: bool,
    ) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let n = self.open_uploads(key);
            if n == count || (at_least && n >= count) {
                return Ok(());
            }
            if started.elapsed() > UPLOADS_WAIT {
                return Err(format!(
                    "{key} has {n} open multipart uploads after {UPLOADS_WAIT:?}, expected {count}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        for (_, server) in self.gateways {
            server.shutdown().await.expect("clean shutdown");
        }
        self.stack.stop().await;
    }
}

/// A loopback TCP proxy to `upstream` that forwards requests at once and every byte of the
/// answers `delay` after it arrived (a slow OSS).
async fn delay_proxy(upstream: SocketAddr, delay: Duration) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = server_read.read(&mut buffer).await {
                    tokio::time::sleep_until((Instant::now() + delay).into()).await;
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, task)
}

/// Opens a WriteObject on `server` that stays open (its first message takes the gateway's one
/// streaming slot) until the returned task is aborted, and waits until the slot is taken.
async fn hold_streaming_slot(server: &RunningServer, token: &str) -> JoinHandle<()> {
    let (tx, rx) = mpsc::channel(1);
    tx.send(proto::WriteObjectRequest {
        spec: Some(spec(BUCKET, "held/slot.bin")),
        data: bytes::Bytes::from_static(b"x"),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut client = connect(server.local_addr()).await;
    let request = bearer(tokio_stream::wrappers::ReceiverStream::new(rx), token);
    let hold = tokio::spawn(async move {
        // The sender lives as long as the call: the stream never ends by itself.
        let _open = tx;
        let outcome = client.write_object(request).await;
        panic!("the held WriteObject ended: {outcome:?}");
    });
    let started = Instant::now();
    while server.call_limits().streaming_in_use() == 0 {
        assert!(
            started.elapsed() < UPLOADS_WAIT && !hold.is_finished(),
            "the held WriteObject did not take the streaming slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hold
}

/// Drains a ReadObject stream into the observation.
async fn read_stream(
    pool: &DescriptorPool,
    headers: Value,
    mut stream: Streaming<proto::ReadObjectResponse>,
) -> Observation {
    let mut messages = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(message)) => messages.push(to_json(
                pool,
                "ossgate.v1.ReadObjectResponse",
                &message.encode_to_vec(),
            )),
            Ok(None) => break,
            Err(status) => return failure(pool, &status),
        }
    }
    let trailers = match stream.trailers().await {
        Ok(trailers) => trailers.map_or_else(|| json!({}), |t| transport_free(&t)),
        Err(status) => return failure(pool, &status),
    };
    Observation {
        code: "OK".into(),
        messages,
        headers: Some(headers),
        trailers: Some(trailers),
        ..Default::default()
    }
}

/// A unary call's outcome. tonic merges a unary call's trailers into its response metadata,
/// so they cannot be shown apart.
fn unary<T: prost::Message>(
    pool: &DescriptorPool,
    name: &str,
    result: Result<tonic::Response<T>, Status>,
) -> Observation {
    match result {
        Ok(response) => Observation {
            code: "OK".into(),
            headers: Some(transport_free(response.metadata())),
            response: Some(to_json(pool, name, &response.get_ref().encode_to_vec())),
            ..Default::default()
        },
        Err(status) => failure(pool, &status),
    }
}

async fn invoke(world: &World, mut call: Call) -> Observation {
    let pool = &world.pool;
    let method = pool
        .get_service_by_name("ossgate.v1.ObjectService")
        .unwrap()
        .methods()
        .find(|m| m.name() == call.rpc)
        .unwrap_or_else(|| panic!("no RPC {}", call.rpc));
    let input = method.input().full_name().to_string();
    let output = method.output().full_name().to_string();
    let mut client = call.client.clone();
    macro_rules! unary_call {
        ($method:ident) => {{
            let request = call.request(transcode(pool, &input, &call.request));
            unary(pool, &output, client.$method(request).await)
        }};
    }
    match call.rpc.as_str() {
        "WriteObject" => {
            let Some(key) = call.cancel_when_open.take() else {
                let messages = std::mem::take(&mut call.messages);
                let request = call.request(tokio_stream::iter(messages));
                return unary(pool, &output, client.write_object(request).await);
            };
            // Sends the messages on a stream that is then left open, and drops the call (tonic
            // resets the stream: CANCEL) once the gateway has begun the multipart upload.
            let (tx, rx) = mpsc::channel(4);
            let request = call.request(tokio_stream::wrappers::ReceiverStream::new(rx));
            let running = tokio::spawn(async move { client.write_object(request).await });
            for message in std::mem::take(&mut call.messages) {
                if tx.send(message).await.is_err() {
                    break;
                }
            }
            if running.is_finished() {
                return unary(pool, &output, running.await.unwrap());
            }
            if let Err(err) = world.await_open_uploads(&key, 1, true).await {
                running.abort();
                return Observation {
                    code: "NO_UPLOAD_BEFORE_CANCEL".into(),
                    message: err,
                    ..Default::default()
                };
            }
            running.abort();
            drop(tx);
            Observation {
                code: "CANCELLED".into(),
                message: "the call was dropped mid-stream".into(),
                ..Default::default()
            }
        }
        "ReadObject" => {
            let request = call.request(transcode(pool, &input, &call.request));
            match client.read_object(request).await {
                Ok(response) => {
                    let headers = transport_free(response.metadata());
                    read_stream(pool, headers, response.into_inner()).await
                }
                Err(status) => failure(pool, &status),
            }
        }
        "HeadObject" => unary_call!(head_object),
        "PutObjectTagging" => unary_call!(put_object_tagging),
        "GetObjectTagging" => unary_call!(get_object_tagging),
        "DeleteObjectTagging" => unary_call!(delete_object_tagging),
        "DeleteObject" => unary_call!(delete_object),
        other => panic!("the tonic runner has no mapping for {other}: add it here"),
    }
}

/// matrix.py `matches`: `{"regex": R}` matches a string R searches; `{"one_of": [E, ...]}`
/// what any E matches; objects need the same keys, each matching; arrays the same length,
/// item by item; anything else equality.
fn matches(expected: &Value, actual: &Value) -> bool {
    match expected {
        Value::Object(map) if map.len() == 1 && map.contains_key("regex") => {
            let pattern = regex::Regex::new(map["regex"].as_str().unwrap()).expect("a regex");
            actual.as_str().is_some_and(|a| pattern.is_match(a))
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("one_of") => map["one_of"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| matches(e, actual)),
        Value::Object(map) => actual.as_object().is_some_and(|a| {
            a.len() == map.len()
                && map
                    .iter()
                    .all(|(k, v)| a.get(k).is_some_and(|x| matches(v, x)))
        }),
        Value::Array(items) => actual.as_array().is_some_and(|a| {
            a.len() == items.len() && items.iter().zip(a).all(|(e, x)| matches(e, x))
        }),
        _ => expected == actual,
    }
}

fn at_path<'a>(message: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(message, |value, part| value.get(part))
}

fn expected_content(content: &Value) -> Vec<u8> {
    match content.get("base64") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap(),
        None => generated_chunks(&content["generated"]).concat(),
    }
}

/// matrix.py `check`: whether `seen` is what `expect` says.
fn check(expect: &Value, seen: &Observation) -> Result<(), String> {
    let got = format!(
        "got {} {:?} details={}",
        seen.code,
        seen.message,
        Value::Array(seen.details.clone())
    );
    if expect["code"] != json!(seen.code) {
        return Err(format!("{got}; expected {}", expect["code"]));
    }
    if let Some(message) = expect.get("message")
        && !matches(message, &json!(seen.message))
    {
        return Err(format!("{got}; expected message {message}"));
    }
    if !["OK", "CANCELLED"].contains(&seen.code.as_str()) || expect.get("details").is_some() {
        let want = expect.get("details").cloned().unwrap_or(json!([]));
        if !matches(&want, &Value::Array(seen.details.clone())) {
            return Err(format!("{got}; expected details {want}"));
        }
    }
    if let Some(proto) = &seen.status_proto
        && proto != &(seen.code.clone(), seen.message.clone())
    {
        return Err(format!(
            "grpc-status-details-bin says {proto:?}, the call {} {:?}",
            seen.code, seen.message
        ));
    }
    let empty = json!({});
    let first = seen.messages.first().unwrap_or(&empty);
    let response = seen.response.as_ref().unwrap_or(&empty);
    for (part, message) in [("response", response), ("first_message", first)] {
        for (path, value) in expect
            .get(part)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let actual = at_path(message, path).cloned().unwrap_or(json!("<absent>"));
            if !matches(value, &actual) {
                return Err(format!("{part} {path} = {actual}, expected {value}"));
            }
        }
    }
    if let Some(content) = expect.get("content") {
        let read: Vec<u8> = seen
            .messages
            .iter()
            .flat_map(|m| {
                base64::engine::general_purpose::STANDARD
                    .decode(m["data"].as_str().unwrap_or_default())
                    .unwrap()
            })
            .collect();
        let want = expected_content(content);
        if Sha256::digest(&read) != Sha256::digest(&want) {
            return Err(format!(
                "read {} bytes that differ from the {} written",
                read.len(),
                want.len()
            ));
        }
    }
    for (part, actual) in [("headers", &seen.headers), ("trailers", &seen.trailers)] {
        if let Some(want) = expect.get(part) {
            let actual = actual
                .as_ref()
                .ok_or_else(|| format!("tonic shows no response {part} for this call"))?;
            if !matches(want, actual) {
                return Err(format!("response {part} {actual}, expected {want}"));
            }
        }
    }
    Ok(())
}

async fn run_scenario(world: &World, spec: &Value, cell: &Cell) -> Result<(), String> {
    let prefix = format!("conformance/{}/", cell.id);
    let variables = [
        ("bucket", BUCKET),
        ("prefix", prefix.as_str()),
        ("cell", cell.id.as_str()),
    ];
    let scenario = &cell.scenario;
    for (index, raw) in scenario["steps"].as_array().unwrap().iter().enumerate() {
        let step = substitute(raw, &variables);
        let fail = |err: String| format!("step {}: {err}", index + 1);
        if let Some(wait) = step.get("open_uploads") {
            let count = wait["count"].as_u64().unwrap() as usize;
            world
                .await_open_uploads(wait["key"].as_str().unwrap(), count, false)
                .await
                .map_err(fail)?;
            continue;
        }
        let gateway = step
            .get("gateway")
            .or(scenario.get("gateway"))
            .and_then(Value::as_str)
            .unwrap_or("main");
        let mut metadata = Vec::new();
        let token = step.get("token").unwrap_or(&json!("writer")).clone();
        if let Some(name) = token.as_str() {
            let value = format!("Bearer {}", spec["tokens"][name].as_str().unwrap());
            metadata.push(("authorization".to_string(), json!(value)));
        }
        for (key, value) in step
            .get("metadata")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            metadata.push((key.clone(), value.clone()));
        }
        let cancel_after = step.get("cancel_after_chunks").and_then(Value::as_u64);
        let messages = match (step.get("generated"), step.get("messages")) {
            (Some(generated), _) => {
                write_messages(&world.pool, generated, cancel_after.map(|n| n as usize))
            }
            (None, Some(messages)) => messages
                .as_array()
                .unwrap()
                .iter()
                .map(|m| transcode(&world.pool, "ossgate.v1.WriteObjectRequest", m))
                .collect(),
            (None, None) => Vec::new(),
        };
        let call = Call {
            client: world.client(gateway, cell.gzip),
            rpc: step["rpc"].as_str().unwrap().to_string(),
            request: step.get("request").cloned().unwrap_or(Value::Null),
            messages,
            metadata,
            deadline: cell.deadline,
            cancel_when_open: cancel_after.map(|_| {
                step["generated"]["spec"]["key"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }),
        };
        let seen = invoke(world, call).await;
        let expect = match step.get("expect") {
            Some(expect) => expect,
            None if cell.deadline.is_some() => &step["expect_with_deadline"],
            None => &step["expect_without_deadline"],
        };
        check(expect, &seen).map_err(fail)?;
    }
    Ok(())
}

#[tokio::test]
async fn tonic_client_conformance_matrix() {
    let spec = &*SCENARIOS;
    let world = World::start(spec).await;
    let mut failures = Vec::new();
    let cells = cells(spec);
    for cell in &cells {
        match run_scenario(&world, spec, cell).await {
            Ok(()) => eprintln!("ok {}", cell.id),
            Err(err) => {
                eprintln!("FAILED {}: {err}", cell.id);
                failures.push(format!("{}: {err}", cell.id));
            }
        }
    }
    world.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {} tonic cells failed:\n{}",
        failures.len(),
        cells.len(),
        failures.join("\n")
    );
}
