//! The validation and logging edge, through the real gateway and emulator: log lines that
//! caller text cannot forge, bounded echoes of huge input, the `tag` permission on every path
//! that sets tags, and requests the gateway refuses itself (data after `finish_write`,
//! undecodable messages, the keys `.` and `..`, negative offsets).

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes};
use ossgate::{
    config::auth::AuthSettings,
    proto::{self, object_service_client::ObjectServiceClient},
};
use serde_json::Value;
use tonic::{
    Code, Request, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::Channel,
};
use tonic_types::StatusExt;

use crate::audit_capture::Capture;
use crate::common::*;

const MALLORY: &str = "mallory-token";
const TAGGER: &str = "tagger-token";
const NO_TAG: &str = "no-tag-token";

/// A gateway with auth: `mallory` and `tagger` may do everything in [`BUCKET`], `notagger`
/// everything but `tag`.
async fn auth_client(stack: &Stack) -> (ossgate::server::RunningServer, Client) {
    let all = ["read", "write", "tag", "copy", "delete"];
    let auth = AuthSettings {
        tokens: vec![
            token_setting("mallory", MALLORY),
            token_setting("tagger", TAGGER),
            token_setting("notagger", NO_TAG),
        ],
        policy: vec![
            policy_rule("mallory", &[BUCKET], &[], &all),
            policy_rule("tagger", &[BUCKET], &[], &all),
            policy_rule(
                "notagger",
                &[BUCKET],
                &[],
                &["read", "write", "copy", "delete"],
            ),
        ],
        ..Default::default()
    };
    let server = start_gateway(stack, auth, &[]).await;
    let client = connect(server.local_addr()).await;
    (server, client)
}

type Client = ObjectServiceClient<Channel>;

// ------------------------------------------------------------------ log injection

/// A key made to forge a text line and a JSON line: a fake audit event by `alice`. It is
/// a legal OSS key (OSS keys may hold U+0001–U+001F and U+007F), so calls with it succeed
/// and are logged with it.
fn legal_forging_key() -> String {
    let text = "2026-12-04T21:00:00.000000Z  INFO ossgate::audit: tag mutation method=\"PutObjectTagging\" principal=\"alice\" bucket=\"e2e-bucket\" key=\"victim\" outcome=\"ok\" code=\"OK\"";
    let json = r#"{"timestamp":"2026-12-04T21:00:00.000000Z","level":"INFO","fields":{"message":"tag mutation","principal":"alice","key":"victim","outcome":"ok"},"target":"ossgate::audit"}"#;
    format!("k\n{text}\r\n{json}\u{1b}[2K\u{85}\u{2028}end\" principal=\"alice")
}

/// The same key made illegal by a trailing NUL (U+0000 is the one control character OSS
/// refuses), so every path fails the same way after quoting the key in its status.
fn refused_forging_key() -> String {
    format!("{}\u{0}", legal_forging_key())
}

/// Rust's escapes undone (`\n`, `\"`, `\u{1b}`, ...): the text a quoted log value stands for.
fn unescape(quoted: &str) -> String {
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next().expect("an escape") {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            '0' => out.push('\0'),
            'u' => {
                let hex: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
            }
            other => out.push(other),
        }
    }
    out
}

/// Where a quoted value that starts at `text[0] == '"'` ends (just after its closing quote).
fn quoted_end(text: &str) -> usize {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        if !escaped && c == '"' {
            return i + 1;
        }
        escaped = !escaped && c == '\\';
    }
    panic!("unterminated quote in {text:?}")
}

/// A text log line taken apart as the formatter writes it: `TIMESTAMP  LEVEL
/// span{fields}:span{fields}: target: message name=value ...`. Returns the level, the
/// target, and the rest (message and fields). Quoted values may hold anything; outside
/// them the structure is the formatter's.
fn text_line(line: &str) -> (&str, &str, &str) {
    let (timestamp, rest) = line.split_once(' ').expect("timestamp");
    assert!(
        timestamp.len() >= 20 && timestamp.ends_with('Z') && timestamp[..4].parse::<u32>().is_ok(),
        "a line that the formatter did not start: {line:?}"
    );
    let (level, mut rest) = rest.trim_start().split_once(' ').expect("level");
    assert!(
        ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
        "{line:?}"
    );
    // Spans: `name{...}:` each, their field values quoted.
    while let Some(open) = rest.find(['{', ':', ' ']) {
        if !rest[open..].starts_with('{') {
            break;
        }
        let mut i = open + 1;
        while !rest[i..].starts_with('}') {
            i += if rest[i..].starts_with('"') {
                quoted_end(&rest[i..])
            } else {
                rest[i..].chars().next().unwrap().len_utf8()
            };
        }
        rest = rest[i + 1..].strip_prefix(':').expect("span end");
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    }
    let (target, rest) = rest.split_once(": ").expect("target");
    (level, target, rest)
}

/// The `name=value` fields of an event's text after its message `message`.
fn text_fields(text: &str, message: &str) -> Vec<(String, String)> {
    let mut rest = text.strip_prefix(message).expect("the message");
    let mut fields = Vec::new();
    while let Some(after_space) = rest.strip_prefix(' ') {
        let (name, value) = after_space.split_once('=').expect("name=value");
        let (value, next) = if value.starts_with('"') {
            let end = quoted_end(value);
            (unescape(&value[1..end - 1]), &value[end..])
        } else {
            let end = value.find(' ').unwrap_or(value.len());
            (value[..end].to_owned(), &value[end..])
        };
        fields.push((name.to_owned(), value));
        rest = next;
    }
    assert_eq!(rest, "", "unparsed: {text}");
    fields
}

/// Paths that are audited with the key as the caller sent it (refused calls too).
const AUDITED_PATHS: [&str; 6] = [
    "put-tagging",
    "delete-tagging",
    "update-metadata-tags",
    "write",
    "symlink",
    "copy-replace",
];

#[tokio::test]
async fn caller_text_cannot_forge_log_lines_in_either_format() {
    let stack = Stack::start().await;
    let (server, mut client) = auth_client(&stack).await;
    for (key, refused) in [(refused_forging_key(), true), (legal_forging_key(), false)] {
        for format in ["text", "json"] {
            let capture = Capture::default();
            let writer = capture.clone();
            let subscriber = ossgate::telemetry::log_subscriber(format, move || writer.clone());
            let guard = tracing::subscriber::set_default(subscriber);
            for path in AUDITED_PATHS {
                // A refused key (its NUL) is audited all the same; a legal one reaches OSS,
                // where paths on a missing object fail with NOT_FOUND and the rest succeed.
                let result = set_tags_by(&mut client, MALLORY, path, &key).await;
                if refused {
                    let status = result.unwrap_err();
                    assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
                } else if let Err(status) = result {
                    assert_eq!(status.code(), Code::NotFound, "{path}: {status:?}");
                }
            }
            let audited = AUDITED_PATHS.len();
            drop(guard);
            let text = capture.text();
            let mut events = 0;
            for line in text.lines() {
                if format == "json" {
                    let line: Value =
                        serde_json::from_str(line).expect("every line is one JSON object");
                    if line["target"] == "ossgate::audit" {
                        events += 1;
                        assert_eq!(line["fields"]["principal"], "mallory", "{line}");
                        // The key as sent (a path that creates an object adds `.{path}`).
                        let logged = line["fields"]["key"].as_str().unwrap();
                        assert!(logged.starts_with(&key), "{line}");
                    }
                    continue;
                }
                let (_, target, rest) = text_line(line);
                assert!(
                    !line.contains('\u{1b}')
                        && !line.contains('\u{85}')
                        && !line.contains('\u{2028}'),
                    "{line:?}"
                );
                if target == "ossgate::audit" {
                    events += 1;
                    let fields = text_fields(rest, "tag mutation");
                    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
                    let mut unique = names.clone();
                    unique.sort();
                    unique.dedup();
                    assert_eq!(unique.len(), names.len(), "a field appears twice: {line}");
                    let field =
                        |name: &str| fields.iter().find(|(n, _)| n == name).unwrap().1.clone();
                    assert_eq!(field("principal"), "mallory", "{line}");
                    assert!(field("key").starts_with(&key), "{line}");
                    if refused {
                        assert_eq!(field("outcome"), "failed", "{line}");
                    }
                } else if refused && rest.starts_with("call failed ") {
                    // The status message quotes the key: one quoted field, whatever it holds.
                    let fields = text_fields(rest, "call failed");
                    assert!(
                        fields
                            .iter()
                            .any(|(n, v)| n == "error" && v.contains("object key")),
                        "{line}"
                    );
                }
            }
            assert_eq!(
                events, audited,
                "{format}: one audit line per call:\n{text}"
            );
        }
    }
    server.shutdown().await.unwrap();
    stack.stop().await;
}

// ------------------------------------------------------------------ bounded echoes

/// Bytes a status puts into headers: its message and its details.
fn status_size(status: &Status) -> usize {
    status.message().len() + status.details().len()
}

#[tokio::test]
async fn huge_input_is_echoed_clipped_in_statuses_and_logs() {
    let stack = Stack::start().await;
    let (server, mut auth) = auth_client(&stack).await;
    let mut client = stack.client.clone();
    let put = |bucket: String, tagging: proto::Tagging| proto::PutObjectTaggingRequest {
        bucket,
        key: "k".into(),
        tagging: Some(tagging),
        ..Default::default()
    };

    // 5,000 characters: the caller gets INVALID_ARGUMENT, not RESOURCE_EXHAUSTED.
    let status = client
        .put_object_tagging(put("a".repeat(5000), tags(&[])))
        .await
        .unwrap_err();
    assert_invalid(&status, "bucket");
    assert!(status_size(&status) < 4096, "{}", status_size(&status));
    assert!(
        status.message().contains("bytes elided"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("is 5000 characters"),
        "{}",
        status.message()
    );

    // 1 MiB, with the gateway's log captured: the log grows by kilobytes, not megabytes.
    let capture = Capture::default();
    let writer = capture.clone();
    let guard =
        tracing::subscriber::set_default(ossgate::telemetry::log_subscriber("text", move || {
            writer.clone()
        }));
    let huge = "b".repeat(1 << 20);
    let status = client
        .put_object_tagging(put(huge.clone(), tags(&[])))
        .await
        .unwrap_err();
    assert_invalid(&status, "bucket");
    assert!(status_size(&status) < 4096, "{}", status_size(&status));
    // Checked before validation: a denied caller's names are clipped too.
    let status = auth
        .put_object_tagging(bearer(put(huge.clone(), tags(&[])), NO_TAG))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status_size(&status) < 4096, "{}", status_size(&status));
    drop(guard);
    // The gateway's own lines (h2 and tower trace their frames too).
    let logged: usize = capture
        .text()
        .lines()
        .filter(|line| text_line(line).1.starts_with("ossgate"))
        .map(str::len)
        .sum();
    assert!(logged < 128 * 1024, "{logged} bytes logged for two calls");

    // A thousand bad tags: the first violations are listed, the rest counted.
    let many: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("bad&{i:04}"), "v".into()))
        .collect();
    let tagging = proto::Tagging {
        tags: many.into_iter().collect(),
    };
    let status = client
        .put_object_tagging(put(BUCKET.into(), tagging))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status_size(&status) < 8192, "{}", status_size(&status));
    let listed = status
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .len();
    assert!((1..1000).contains(&listed), "{listed}");
    let more: usize = status
        .message()
        .strip_suffix(" more")
        .and_then(|m| m.rsplit_once("; and "))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", status.message()));
    // Every bad key is a problem, listed or counted.
    assert!(listed + more >= 1000, "{listed} + {more}");
    assert_eq!(stack.oss_requests(), 0, "nothing reached OSS");
    server.shutdown().await.unwrap();
    stack.stop().await;
}

// ------------------------------------------------------------------ the tag permission

/// Each path that sets tags, as one call by the principal of `token` on `key` (a path that
/// creates an object creates `{key}.{path}`, from `key` where it needs a source).
async fn set_tags_by(
    client: &mut Client,
    token: &str,
    path: &str,
    key: &str,
) -> Result<(), Status> {
    let tagged = || Some(tags(&[("set-by", "caller")]));
    let new_key = format!("{key}.{path}");
    let mut tagged_spec = spec(BUCKET, &new_key);
    tagged_spec.tagging = tagged();
    match path {
        "write" => client
            .write_object(bearer(
                tokio_stream::iter(write_messages(tagged_spec, b"data", 4)),
                token,
            ))
            .await
            .map(drop),
        "resumable-start" => client
            .start_resumable_write(bearer(
                proto::StartResumableWriteRequest {
                    spec: Some(tagged_spec),
                },
                token,
            ))
            .await
            .map(drop),
        "first-append" => {
            let message = proto::AppendObjectRequest {
                spec: Some(proto::AppendObjectSpec {
                    bucket: BUCKET.into(),
                    key: new_key,
                    tagging: tagged(),
                    ..Default::default()
                }),
                position: 0,
                data: Bytes::from_static(b"data"),
            };
            client
                .append_object(bearer(tokio_stream::iter(vec![message]), token))
                .await
                .map(drop)
        }
        "symlink" => client
            .put_symlink(bearer(
                proto::PutSymlinkRequest {
                    bucket: BUCKET.into(),
                    key: new_key,
                    target_key: key.into(),
                    tagging: tagged(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        "copy-replace" => client
            .copy_object(bearer(
                proto::CopyObjectRequest {
                    source_bucket: BUCKET.into(),
                    source_key: key.into(),
                    destination_bucket: BUCKET.into(),
                    destination_key: new_key,
                    tagging_directive: proto::TaggingDirective::Replace.into(),
                    tagging: tagged(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        "update-metadata-tags" | "update-metadata-no-tags" => client
            .update_object_metadata(bearer(
                proto::UpdateObjectMetadataRequest {
                    bucket: BUCKET.into(),
                    key: key.into(),
                    tagging: if path == "update-metadata-tags" {
                        tagged()
                    } else {
                        Some(tags(&[]))
                    },
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        "put-tagging" => client
            .put_object_tagging(bearer(
                proto::PutObjectTaggingRequest {
                    bucket: BUCKET.into(),
                    key: key.into(),
                    tagging: tagged(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        "delete-tagging" => client
            .delete_object_tagging(bearer(
                proto::DeleteObjectTaggingRequest {
                    bucket: BUCKET.into(),
                    key: key.into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        other => unreachable!("{other}"),
    }
}

#[tokio::test]
async fn every_path_that_sets_tags_needs_the_tag_permission() {
    let stack = Stack::start().await;
    let (server, mut client) = auth_client(&stack).await;
    let mut object = spec(BUCKET, "perm/object");
    object.tagging = Some(tags(&[("original", "yes")]));
    write(&mut stack.client.clone(), object, b"object").await;
    let original = tags(&[("original", "yes")]);
    let paths = [
        ("write", true),
        ("resumable-start", true),
        ("first-append", true),
        ("symlink", true),
        ("copy-replace", true),
        ("update-metadata-tags", false),
        ("update-metadata-no-tags", false),
        ("put-tagging", false),
        ("delete-tagging", false),
    ];
    for (path, creates) in paths {
        let status = set_tags_by(&mut client, NO_TAG, path, "perm/object")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{path}: {status:?}");
        assert!(
            status.message().contains("may not tag"),
            "{path}: {status:?}"
        );
        if creates {
            let key = format!("perm/object.{path}");
            assert!(!exists(&stack, BUCKET, &key).await, "{path} created {key}");
        }
        let now = get_tags(&mut stack.client.clone(), BUCKET, "perm/object", "").await;
        assert_eq!(now, original, "{path} changed the tags");
    }
    // The same calls with the permission succeed: the tag check was what refused them. The
    // resumable write started here stays open on purpose: finishing it is the caller's.
    stack.expect_leftover_upload("perm/object.resumable-start");
    for (path, _) in paths {
        set_tags_by(&mut client, TAGGER, path, "perm/object")
            .await
            .unwrap_or_else(|status| panic!("{path}: {status:?}"));
    }
    // CopyObject REPLACE without tags and UpdateObjectMetadata without tagging set none.
    client
        .copy_object(bearer(
            proto::CopyObjectRequest {
                source_bucket: BUCKET.into(),
                source_key: "perm/object".into(),
                destination_bucket: BUCKET.into(),
                destination_key: "perm/untagged-copy".into(),
                tagging_directive: proto::TaggingDirective::Replace.into(),
                tagging: Some(tags(&[])),
                ..Default::default()
            },
            NO_TAG,
        ))
        .await
        .expect("a copy that sets no tags needs no tag permission");
    server.shutdown().await.unwrap();
    stack.stop().await;
}

// ------------------------------------------------------------------ refused by the gateway

#[tokio::test]
async fn data_after_finish_write_is_refused_and_nothing_is_written() {
    let stack = Stack::start_with_settings(&[("OSSGATE_UPLOAD__PART_SIZE_BYTES", "102400")]).await;
    let mut client = stack.client.clone();
    // Within one part (a single PutObject) and beyond it (a multipart upload).
    for (key, size) in [("late/small", 1000usize), ("late/large", 300_000)] {
        let data = pseudo_random(size, 7);
        let mut messages = write_messages(spec(BUCKET, key), &data, 64 * 1024);
        messages.push(proto::WriteObjectRequest {
            write_offset: size as i64,
            data: Bytes::from_static(b"late"),
            ..Default::default()
        });
        let status = client
            .write_object(tokio_stream::iter(messages))
            .await
            .unwrap_err();
        assert_invalid(&status, "finish_write");
        assert!(!exists(&stack, BUCKET, key).await, "{key} was written");
    }
    // No upload was left behind either.
    assert_eq!(crate::copy::open_uploads(&stack, BUCKET).await, 0);
    stack.stop().await;
}

/// Sends and receives raw message bytes, to put bytes on the wire that no client would.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self {
        *self
    }
    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put(item);
        Ok(())
    }
    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

#[tokio::test]
async fn undecodable_messages_are_invalid_argument_and_not_server_errors() {
    let stack = Stack::start_with_settings(&[("OSSGATE_METRICS__LISTEN", "127.0.0.1:0")]).await;
    let server = stack.server.as_ref().unwrap();
    let metrics = server.metrics_addr().unwrap();
    let before = scrape(metrics).await;
    let mut grpc = tonic::client::Grpc::new(channel(server.local_addr()).await);
    // Field 1 (bucket) says 5 bytes follow; 2 do.
    let malformed = Bytes::from_static(b"\x0a\x05ab");
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            Request::new(malformed.clone()),
            PathAndQuery::from_static("/ossgate.v1.ObjectService/HeadObject"),
            RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("HeadObjectRequest"), "{status:?}");
    grpc.ready().await.unwrap();
    let status = grpc
        .client_streaming(
            Request::new(tokio_stream::iter(vec![malformed])),
            PathAndQuery::from_static("/ossgate.v1.ObjectService/WriteObject"),
            RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let after = scrape(metrics).await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        moved(r#"ossgate_rpc_duration_seconds_count{code="Internal",method="WriteObject"}"#),
        0.0,
        "{after}"
    );
    assert!(
        moved(r#"ossgate_rpc_duration_seconds_count{code="InvalidArgument",method="WriteObject"}"#)
            >= 1.0,
        "{after}"
    );
    assert_eq!(stack.oss_requests(), 0);
    stack.stop().await;
}

#[tokio::test]
async fn dot_keys_are_refused_by_validation_before_oss() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    for key in [".", ".."] {
        let head = client
            .head_object(proto::HeadObjectRequest {
                bucket: BUCKET.into(),
                key: key.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        let put = client
            .put_object_tagging(proto::PutObjectTaggingRequest {
                bucket: BUCKET.into(),
                key: key.into(),
                tagging: Some(tags(&[])),
                ..Default::default()
            })
            .await
            .unwrap_err();
        let written = write_chunks(&mut client, spec(BUCKET, key), b"x", 1)
            .await
            .unwrap_err();
        for (status, field) in [(head, "key"), (put, "key"), (written, "spec.key")] {
            assert_invalid(&status, field);
            assert!(!status.message().contains("OSS:"), "{status:?}");
        }
    }
    // No request was sent, and none was counted: such a key cannot reach the OSS client,
    // whose ObjectKey type no longer holds one (the process-wide request metrics are shared
    // with tests running in parallel, so the emulator's own count is the one checked).
    assert_eq!(stack.oss_requests(), 0);
    stack.stop().await;
}

#[tokio::test]
async fn resuming_at_a_negative_offset_is_refused_as_negative() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let upload_id = client
        .start_resumable_write(proto::StartResumableWriteRequest {
            spec: Some(spec(BUCKET, "resume/negative")),
        })
        .await
        .unwrap()
        .into_inner()
        .upload_id;
    let message = proto::WriteObjectRequest {
        upload_id: upload_id.clone(),
        write_offset: -1,
        data: Bytes::from_static(b"x"),
        finish_write: true,
        ..Default::default()
    };
    let status = client
        .write_object(tokio_stream::iter(vec![message]))
        .await
        .unwrap_err();
    assert_invalid(&status, "write_offset");
    assert!(status.message().contains("-1 is negative"), "{status:?}");
    assert!(
        !status.message().contains("18446744073709551615"),
        "{status:?}"
    );
    client
        .abort_resumable_write(proto::AbortResumableWriteRequest { upload_id })
        .await
        .unwrap();
    stack.stop().await;
}

// ------------------------------------------------------------------ UpdateObjectMetadata

fn string_map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

#[tokio::test]
async fn update_metadata_changes_only_what_is_named() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let key = "update/object";
    let mut object = spec(BUCKET, key);
    object.content_type = "text/csv".into();
    object.cache_control = "max-age=60".into();
    object.content_disposition = "attachment".into();
    object.metadata = string_map(&[("owner", "alice"), ("stage", "raw")]);
    object.tagging = Some(tags(&[("team", "data")]));
    write(&mut client, object, b"a,b\n1,2\n").await;
    let update = |metadata: &[(&str, &str)], update_mask| proto::UpdateObjectMetadataRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        metadata: string_map(metadata),
        update_mask,
        ..Default::default()
    };

    // No mask, only metadata: the metadata is replaced, the content headers are kept.
    client
        .update_object_metadata(update(&[("Stage", "clean")], None))
        .await
        .unwrap();
    let h = head(&mut client, BUCKET, key).await;
    assert_eq!(h.metadata, string_map(&[("stage", "clean")]));
    assert_eq!(
        (
            h.content_type.as_str(),
            h.cache_control.as_str(),
            h.content_disposition.as_str()
        ),
        ("text/csv", "max-age=60", "attachment")
    );

    // One entry set, one removed, one header cleared: the rest stays.
    let mut request = update(
        &[("reviewer", "bob")],
        mask(&["metadata.reviewer", "metadata.stage", "cache_control"]),
    );
    request.content_type = String::new();
    client.update_object_metadata(request).await.unwrap();
    let h = head(&mut client, BUCKET, key).await;
    assert_eq!(h.metadata, string_map(&[("reviewer", "bob")]));
    assert_eq!(h.cache_control, "");
    assert_eq!(
        (h.content_type.as_str(), h.content_disposition.as_str()),
        ("text/csv", "attachment")
    );

    // The whole metadata named with an empty map clears it.
    client
        .update_object_metadata(update(&[], mask(&["metadata"])))
        .await
        .unwrap();
    let h = head(&mut client, BUCKET, key).await;
    assert!(h.metadata.is_empty(), "{:?}", h.metadata);
    assert_eq!(h.content_type, "text/csv");
    assert_eq!(
        get_tags(&mut client, BUCKET, key, "").await,
        tags(&[("team", "data")])
    );
    assert_eq!(read_all(&stack, BUCKET, key, "").await, b"a,b\n1,2\n");

    // Set but not named, or named wrong: refused, nothing sent.
    let requests_before = stack.oss_requests();
    let mut request = update(&[("owner", "carol")], mask(&["content_type", "size"]));
    request.cache_control = "no-store".into();
    let status = client.update_object_metadata(request).await.unwrap_err();
    assert_invalid(&status, "metadata[\"owner\"]");
    assert_invalid(&status, "cache_control");
    assert_invalid(&status, "update_mask.paths[1]");
    assert_eq!(stack.oss_requests(), requests_before);
    stack.stop().await;
}
