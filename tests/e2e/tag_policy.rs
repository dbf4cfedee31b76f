//! The tag policy (`[[tag_policy.rules]]`) against the real gateway and emulator: every path
//! that sets tags × (a valid set, each kind of rule violated). A refused call is
//! INVALID_ARGUMENT naming the rule, and nothing was written: no object, no upload, the old
//! tags kept, and (where the path reads nothing first) no OSS request at all.

use std::time::Duration;

use ossgate::{
    config::Settings,
    proto::{self, object_service_client::ObjectServiceClient},
    server::{self, RunningServer},
};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt;

use crate::common::*;

/// Every call of these tests carries this deadline.
const DEADLINE: Duration = Duration::from_secs(20);

/// Rule 0 ("team-tags") covers `p/` of the test bucket; rule 1 ("known-keys") only
/// `p/keys/`. Nothing covers `free/` or the versioned bucket.
const POLICY: &str = r#"
[[tag_policy.rules]]
name = "team-tags"
buckets = ["e2e-bucket"]
prefixes = ["p/"]
required_keys = ["team"]
key_case = "lower"
max_tags = 3
[tag_policy.rules.allowed_values]
team = ["storage", "web-*"]
env = ["~dev|prod[0-9]"]

[[tag_policy.rules]]
name = "known-keys"
buckets = ["e2e-bucket"]
prefixes = ["p/keys/"]
allowed_keys = ["team", "env"]
"#;

/// A gateway with `toml` as its configuration file, in front of the stack's emulator, with
/// 100 KiB parts (so a few hundred KiB is a multipart upload).
async fn gateway(stack: &Stack, toml: &str) -> RunningServer {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), toml).unwrap();
    let mut env = gateway_env(&stack.emulator);
    env.insert("OSSGATE_UPLOAD__PART_SIZE_BYTES".into(), "102400".into());
    let settings = Settings::load_from(Some(file.path()), env).expect("settings load");
    server::start(settings).await.expect("gateway starts")
}

/// `message` with the tests' deadline.
fn timed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(DEADLINE);
    request
}

/// A tag set the rules are tried with, and what it breaks.
struct Case {
    what: &'static str,
    tags: &'static [(&'static str, &'static str)],
    /// The key it is written under (below `p/`): rule 1 applies under `keys/`.
    under: &'static str,
    /// `None`: valid. Else the violation's field below `…tags` and part of its description.
    refused: Option<(&'static str, &'static str)>,
}

const CASES: &[Case] = &[
    Case {
        what: "valid",
        tags: &[("team", "web-frontend"), ("env", "prod2")],
        under: "keys/",
        refused: None,
    },
    Case {
        what: "required key missing",
        tags: &[("env", "dev")],
        under: "",
        refused: Some((
            "[\"team\"]",
            "rules[0] (\"team-tags\"): tag \"team\" is required",
        )),
    },
    Case {
        what: "value not in the list or prefix",
        tags: &[("team", "ops")],
        under: "",
        refused: Some((
            "[\"team\"]",
            "value \"ops\" of tag \"team\" is not allowed; allowed values: storage, web-*",
        )),
    },
    Case {
        what: "value not matching the regex",
        tags: &[("team", "storage"), ("env", "prod")],
        under: "",
        refused: Some(("[\"env\"]", "allowed values: ~dev|prod[0-9]")),
    },
    Case {
        what: "key case",
        tags: &[("team", "storage"), ("Env", "dev")],
        under: "",
        refused: Some(("[\"Env\"]", "tag key \"Env\" must be lower case")),
    },
    Case {
        what: "too many tags",
        tags: &[("team", "storage"), ("a", "1"), ("b", "2"), ("c", "3")],
        under: "",
        refused: Some(("", "4 tags; at most 3 allowed here")),
    },
    Case {
        what: "key not allowed",
        tags: &[("team", "storage"), ("color", "red")],
        under: "keys/",
        refused: Some((
            "[\"color\"]",
            "rules[1] (\"known-keys\"): tag key \"color\" is not allowed; allowed keys: team, env",
        )),
    },
];

/// The paths that set tags.
#[derive(Clone, Copy, Debug)]
enum Path {
    WriteSingle,
    WriteMultipart,
    Resumable,
    Append,
    Symlink,
    CopyReplace,
    CopyKeepingSourceTags,
    PutTagging,
    UpdateMetadata,
}

const PATHS: [Path; 9] = [
    Path::WriteSingle,
    Path::WriteMultipart,
    Path::Resumable,
    Path::Append,
    Path::Symlink,
    Path::CopyReplace,
    Path::CopyKeepingSourceTags,
    Path::PutTagging,
    Path::UpdateMetadata,
];

impl Path {
    /// The request's tagging field, as violations name it.
    fn field(self) -> &'static str {
        match self {
            Self::WriteSingle | Self::WriteMultipart | Self::Resumable | Self::Append => {
                "spec.tagging"
            }
            Self::CopyKeepingSourceTags => "source",
            _ => "tagging",
        }
    }

    /// The path replaces the tags of an object that exists already.
    fn on_existing_object(self) -> bool {
        matches!(self, Self::PutTagging | Self::UpdateMetadata)
    }

    /// OSS requests the path may make before it refuses: the copier's HeadObject and the
    /// read of the source's tags.
    fn reads_before_refusing(self) -> u64 {
        match self {
            Self::CopyKeepingSourceTags => 2,
            _ => 0,
        }
    }
}

fn write_spec(key: &str, pairs: &[(&str, &str)]) -> proto::WriteObjectSpec {
    let mut s = spec(BUCKET, key);
    s.tagging = Some(tags(pairs));
    s
}

/// Writes a small object with these tags (the scope of no rule, or valid tags).
async fn put_object(
    client: &mut ObjectServiceClient<Channel>,
    key: &str,
    pairs: &[(&str, &str)],
) -> Result<(), Status> {
    let messages = write_messages(write_spec(key, pairs), b"policy", usize::MAX);
    client
        .write_object(timed(tokio_stream::iter(messages)))
        .await
        .map(drop)
}

/// Gives `key` the tag set `pairs` through `path`.
async fn set_tags(
    client: &mut ObjectServiceClient<Channel>,
    path: Path,
    key: &str,
    pairs: &[(&str, &str)],
) -> Result<(), Status> {
    match path {
        Path::WriteSingle => put_object(client, key, pairs).await,
        Path::WriteMultipart => {
            let data = pseudo_random(300 * 1024, 14);
            let messages = write_messages(write_spec(key, pairs), &data, 64 * 1024);
            client
                .write_object(timed(tokio_stream::iter(messages)))
                .await
                .map(drop)
        }
        Path::Resumable => {
            let start = proto::StartResumableWriteRequest {
                spec: Some(write_spec(key, pairs)),
            };
            let upload_id = client
                .start_resumable_write(timed(start))
                .await?
                .into_inner()
                .upload_id;
            let finish = proto::WriteObjectRequest {
                upload_id,
                data: bytes::Bytes::from_static(b"resumed"),
                finish_write: true,
                ..Default::default()
            };
            client
                .write_object(timed(tokio_stream::iter(vec![finish])))
                .await
                .map(drop)
        }
        Path::Append => {
            let first = proto::AppendObjectRequest {
                spec: Some(proto::AppendObjectSpec {
                    bucket: BUCKET.into(),
                    key: key.into(),
                    tagging: Some(tags(pairs)),
                    ..Default::default()
                }),
                position: 0,
                data: bytes::Bytes::from_static(b"appended"),
            };
            client
                .append_object(timed(tokio_stream::iter(vec![first])))
                .await
                .map(drop)
        }
        Path::Symlink => {
            put_object(client, "free/target", &[]).await.unwrap();
            let request = proto::PutSymlinkRequest {
                bucket: BUCKET.into(),
                key: key.into(),
                target_key: "free/target".into(),
                tagging: Some(tags(pairs)),
                ..Default::default()
            };
            client.put_symlink(timed(request)).await.map(drop)
        }
        Path::CopyReplace | Path::CopyKeepingSourceTags => {
            // The source is out of every rule's scope: any tags may be written there.
            let source = format!("free/source-{}", key.replace('/', "-"));
            let source_tags: &[(&str, &str)] = match path {
                Path::CopyReplace => &[],
                _ => pairs,
            };
            put_object(client, &source, source_tags).await.unwrap();
            let request = match path {
                Path::CopyReplace => proto::CopyObjectRequest {
                    tagging_directive: proto::TaggingDirective::Replace.into(),
                    tagging: Some(tags(pairs)),
                    ..copy_request(&source, key)
                },
                _ => copy_request(&source, key),
            };
            client.copy_object(timed(request)).await.map(drop)
        }
        Path::PutTagging => {
            let request = proto::PutObjectTaggingRequest {
                bucket: BUCKET.into(),
                key: key.into(),
                version_id: String::new(),
                tagging: Some(tags(pairs)),
                ..Default::default()
            };
            client.put_object_tagging(timed(request)).await.map(drop)
        }
        Path::UpdateMetadata => {
            let request = proto::UpdateObjectMetadataRequest {
                bucket: BUCKET.into(),
                key: key.into(),
                tagging: Some(tags(pairs)),
                ..Default::default()
            };
            client
                .update_object_metadata(timed(request))
                .await
                .map(drop)
        }
    }
}

fn copy_request(source: &str, destination: &str) -> proto::CopyObjectRequest {
    proto::CopyObjectRequest {
        source_bucket: BUCKET.into(),
        source_key: source.into(),
        destination_bucket: BUCKET.into(),
        destination_key: destination.into(),
        ..Default::default()
    }
}

/// The tags of `key`, `None` when it does not exist.
async fn tags_of(
    client: &mut ObjectServiceClient<Channel>,
    key: &str,
) -> Option<Vec<(String, String)>> {
    let request = proto::GetObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        version_id: String::new(),
    };
    match client.get_object_tagging(timed(request)).await {
        Ok(response) => {
            let mut pairs: Vec<_> = response
                .into_inner()
                .tagging
                .unwrap_or_default()
                .tags
                .into_iter()
                .collect();
            pairs.sort();
            Some(pairs)
        }
        Err(status) if status.code() == Code::NotFound => None,
        Err(status) => panic!("GetObjectTagging {key}: {status:?}"),
    }
}

fn sorted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    out.sort();
    out
}

/// The status is INVALID_ARGUMENT with a BadRequest violation of `field` whose description
/// contains `text`.
fn assert_refused(status: &Status, field: &str, text: &str, context: &str) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{context}: {status:?}"
    );
    let details = status.get_error_details();
    let violations = &details.bad_request().expect("BadRequest").field_violations;
    assert!(
        violations
            .iter()
            .any(|v| v.field == field && v.description.contains(text)),
        "{context}: expected {field}: …{text}…, got {violations:?}"
    );
}

/// One cell of the matrix: `case` through `path`, on `key`. Panics on a failure.
async fn matrix_cell(
    stack: &Stack,
    mut client: ObjectServiceClient<Channel>,
    path: Path,
    case: &Case,
    key: String,
) {
    let old_tags: &[(&str, &str)] = &[("team", "storage")];
    let context = format!("{path:?} × {}", case.what);
    if path.on_existing_object() {
        put_object(&mut client, &key, old_tags).await.unwrap();
    }
    let before = stack.oss_requests();
    let result = set_tags(&mut client, path, &key, case.tags).await;
    let Some((field, text)) = case.refused else {
        result.unwrap_or_else(|s| panic!("{context}: refused: {s:?}"));
        let got = tags_of(&mut client, &key).await;
        assert_eq!(got, Some(sorted(case.tags)), "{context}");
        return;
    };
    let status = result.expect_err(&context);
    let field = format!("{}.tags{field}", path.field());
    assert_refused(&status, &field, text, &context);
    // The symlink and copy paths write their target or source first (counted in the next
    // test, call alone).
    if !matches!(
        path,
        Path::Symlink | Path::CopyReplace | Path::CopyKeepingSourceTags
    ) {
        assert_eq!(
            stack.oss_requests(),
            before + path.reads_before_refusing(),
            "{context}: the refused call reached OSS"
        );
    }
    let got = tags_of(&mut client, &key).await;
    if path.on_existing_object() {
        assert_eq!(got, Some(sorted(old_tags)), "{context}: tags changed");
    } else {
        assert_eq!(got, None, "{context}: the object was written");
    }
}

#[tokio::test]
async fn every_tag_setting_path_enforces_every_kind_of_rule() {
    let stack = std::sync::Arc::new(Stack::start().await);
    let gateway = gateway(&stack, POLICY).await;
    let client = connect(gateway.local_addr()).await;

    // Every cell runs (one after the other), and the failures are listed together.
    let mut failed = Vec::new();
    for (p, &path) in PATHS.iter().enumerate() {
        for (c, case) in CASES.iter().enumerate() {
            let key = format!("p/{}{p}-{c}", case.under);
            let (stack, client) = (stack.clone(), client.clone());
            let cell = tokio::spawn(async move {
                matrix_cell(&stack, client, path, &CASES[c], key).await;
            });
            if cell.await.is_err() {
                failed.push(format!("{path:?} × {}", case.what));
            }
        }
    }
    assert!(failed.is_empty(), "failed cells: {failed:#?}");
    assert!(
        stack.emulator.open_uploads().is_empty(),
        "a refused write left an upload"
    );
    gateway.shutdown().await.unwrap();
    let Ok(stack) = std::sync::Arc::try_unwrap(stack) else {
        panic!("a cell still holds the stack");
    };
    stack.stop().await;
}

#[tokio::test]
async fn refused_calls_send_nothing_to_oss_and_copy_reads_the_source_only_in_scope() {
    // The symlink and copy paths of the matrix write their target or source first; here the
    // call alone is counted.
    let stack = Stack::start().await;
    let gateway = gateway(&stack, POLICY).await;
    let mut client = connect(gateway.local_addr()).await;
    put_object(&mut client, "free/target", &[]).await.unwrap();
    put_object(&mut client, "free/source", &[("team", "ops")])
        .await
        .unwrap();

    let before = stack.oss_requests();
    let link = proto::PutSymlinkRequest {
        bucket: BUCKET.into(),
        key: "p/link".into(),
        target_key: "free/target".into(),
        ..Default::default()
    };
    let status = client.put_symlink(timed(link)).await.unwrap_err();
    assert_refused(&status, "tagging.tags[\"team\"]", "is required", "symlink");
    let replace = proto::CopyObjectRequest {
        tagging_directive: proto::TaggingDirective::Replace.into(),
        tagging: Some(tags(&[("team", "ops")])),
        ..copy_request("free/source", "p/copy")
    };
    let status = client.copy_object(timed(replace)).await.unwrap_err();
    assert_refused(&status, "tagging.tags[\"team\"]", "not allowed", "copy");
    assert_eq!(stack.oss_requests(), before, "a refused call reached OSS");

    // COPY reads the source (HeadObject, GetObjectTagging) and writes nothing.
    let status = client
        .copy_object(timed(copy_request("free/source", "p/copy")))
        .await
        .unwrap_err();
    assert_refused(&status, "source.tags[\"team\"]", "not allowed", "copy");
    assert_eq!(stack.oss_requests(), before + 2);
    assert_eq!(tags_of(&mut client, "p/copy").await, None);

    // Out of every rule's scope the source's tags are not even read.
    let before = stack.oss_requests();
    client
        .copy_object(timed(copy_request("free/source", "free/copy")))
        .await
        .unwrap();
    let head_and_copy = 2;
    assert_eq!(stack.oss_requests(), before + head_and_copy);
    assert_eq!(
        tags_of(&mut client, "free/copy").await,
        Some(sorted(&[("team", "ops")]))
    );
    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn removing_required_tags_is_refused_and_later_appends_are_not_checked() {
    let stack = Stack::start().await;
    let gateway = gateway(&stack, POLICY).await;
    let mut client = connect(gateway.local_addr()).await;

    // DeleteObjectTagging would leave the object without its required tag.
    put_object(&mut client, "p/kept", &[("team", "storage")])
        .await
        .unwrap();
    let delete = proto::DeleteObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: "p/kept".into(),
        version_id: String::new(),
        ..Default::default()
    };
    let status = client
        .delete_object_tagging(timed(delete.clone()))
        .await
        .unwrap_err();
    assert_refused(&status, "tags[\"team\"]", "is required", "delete tagging");
    assert_eq!(
        tags_of(&mut client, "p/kept").await,
        Some(sorted(&[("team", "storage")]))
    );
    // Outside the rules' scope it is allowed.
    put_object(&mut client, "free/x", &[("a", "b")])
        .await
        .unwrap();
    client
        .delete_object_tagging(timed(proto::DeleteObjectTaggingRequest {
            key: "free/x".into(),
            ..delete
        }))
        .await
        .unwrap();

    // An append after the first carries no tags: the object keeps the ones it was created
    // with, and the append is not refused for lacking `team`.
    let spec = proto::AppendObjectSpec {
        bucket: BUCKET.into(),
        key: "p/log".into(),
        tagging: Some(tags(&[("team", "storage")])),
        ..Default::default()
    };
    let first = proto::AppendObjectRequest {
        spec: Some(spec.clone()),
        position: 0,
        data: bytes::Bytes::from_static(b"one"),
    };
    client
        .append_object(timed(tokio_stream::iter(vec![first])))
        .await
        .unwrap();
    let next = proto::AppendObjectRequest {
        spec: Some(proto::AppendObjectSpec {
            tagging: None,
            ..spec
        }),
        position: 3,
        data: bytes::Bytes::from_static(b"two"),
    };
    client
        .append_object(timed(tokio_stream::iter(vec![next])))
        .await
        .unwrap();
    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

/// A patch is checked on its result, which exists only under the lock: dropping a required
/// tag or setting a value the rule does not allow is refused and writes nothing; a patch whose
/// result meets the rules goes through.
#[tokio::test]
async fn a_patch_is_checked_on_the_tag_set_it_would_leave() {
    let stack = Stack::start().await;
    let gateway = gateway(&stack, POLICY).await;
    let mut client = connect(gateway.local_addr()).await;
    put_object(&mut client, "p/patched", &[("team", "storage")])
        .await
        .unwrap();
    let patch = |set: &[(&str, &str)], remove: &[&str]| proto::PatchObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: "p/patched".into(),
        set: set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        remove: remove.iter().map(|k| k.to_string()).collect(),
        ..Default::default()
    };
    let status = client
        .patch_object_tagging(timed(patch(&[], &["team"])))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        "set.tags[\"team\"]",
        "is required",
        "patch removing team",
    );
    let status = client
        .patch_object_tagging(timed(patch(&[("team", "ops")], &[])))
        .await
        .unwrap_err();
    assert_refused(
        &status,
        "set.tags[\"team\"]",
        "is not allowed",
        "patch setting team=ops",
    );
    assert_eq!(
        tags_of(&mut client, "p/patched").await,
        Some(sorted(&[("team", "storage")])),
        "a refused patch writes nothing"
    );
    client
        .patch_object_tagging(timed(patch(&[("env", "dev")], &[])))
        .await
        .unwrap();
    assert_eq!(
        tags_of(&mut client, "p/patched").await,
        Some(sorted(&[("env", "dev"), ("team", "storage")]))
    );
    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn rules_scoped_by_principal_apply_to_that_principal_only() {
    let stack = Stack::start().await;
    let bot = token_setting("bot", "bot-token-1");
    let alice = token_setting("alice", "alice-token-2");
    let toml = format!(
        r#"
[[auth.tokens]]
principal = "bot"
sha256 = "{}"
[[auth.tokens]]
principal = "alice"
sha256 = "{}"
[[auth.policy]]
principal = "*"
buckets = ["*"]
operations = ["*"]

[[tag_policy.rules]]
name = "bots-label-their-objects"
buckets = ["*"]
principals = ["bot"]
required_keys = ["created-by"]
"#,
        bot.sha256, alice.sha256
    );
    let gateway = gateway(&stack, &toml).await;
    let mut client = connect(gateway.local_addr()).await;
    let write_as = |token: &'static str, key: &'static str, pairs: &'static [(&str, &str)]| {
        let mut client = client.clone();
        async move {
            let messages = write_messages(write_spec(key, pairs), b"x", usize::MAX);
            let mut request = bearer(tokio_stream::iter(messages), token);
            request.set_timeout(DEADLINE);
            client.write_object(request).await.map(drop)
        }
    };
    let status = write_as("bot-token-1", "any/bot", &[("team", "x")])
        .await
        .unwrap_err();
    assert_refused(
        &status,
        "spec.tagging.tags[\"created-by\"]",
        "rules[0] (\"bots-label-their-objects\"): tag \"created-by\" is required",
        "bot",
    );
    write_as("bot-token-1", "any/bot", &[("created-by", "bot")])
        .await
        .unwrap();
    write_as("alice-token-2", "any/alice", &[("team", "x")])
        .await
        .unwrap();
    let mut get = timed(proto::GetObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: "any/alice".into(),
        version_id: String::new(),
    });
    get.metadata_mut()
        .insert("authorization", "Bearer alice-token-2".parse().unwrap());
    let got = client.get_object_tagging(get).await.unwrap().into_inner();
    assert_eq!(got.tagging.unwrap().tags.len(), 1);
    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

/// `ossgate check-config` with `toml` as the file: (exit success, stdout, stderr).
fn check_config(toml: &str) -> (bool, String, String) {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), toml).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ossgate"))
        .args(["check-config", "--config"])
        .arg(file.path())
        .env_remove("OSSGATE_LISTEN")
        .output()
        .expect("ossgate runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_config_shows_the_rules_and_names_a_bad_one() {
    let (ok, stdout, stderr) = check_config(POLICY);
    assert!(ok, "{stderr}");
    // The patterns are printed as written.
    assert!(stdout.contains("\"~dev|prod[0-9]\""), "{stdout}");
    assert!(stdout.contains("\"web-*\""), "{stdout}");

    let bad_regex = POLICY.replace("~dev|prod[0-9]", "~(dev");
    let (ok, _, stderr) = check_config(&bad_regex);
    assert!(!ok);
    assert!(
        stderr.contains("\"~(dev\" is not a valid regex"),
        "{stderr}"
    );
    assert!(stderr.contains("tag_policy.rules[0]"), "{stderr}");

    let contradictory = POLICY.replace("max_tags = 3", "max_tags = 0");
    let (ok, _, stderr) = check_config(&contradictory);
    assert!(!ok);
    assert!(
        stderr.contains("tag_policy.rules[0].max_tags: 0 is fewer than the 1 required_keys"),
        "{stderr}"
    );
}
