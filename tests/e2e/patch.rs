//! PatchObjectTagging, `if_tags` conditions and the tag-write lock: the patch semantics, the
//! compare-and-swap of a condition, the audit of both, and the race of 9 writers through two
//! replicas sharing a real `redis-server` (with plain Get+Put shown to lose updates).

use std::{
    collections::BTreeMap,
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use ossgate::proto::{self, object_service_client::ObjectServiceClient};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt;

use crate::{
    audit_capture::{Capture, only_event},
    common::*,
};

/// The deadline every call of these tests sets.
const DEADLINE: Duration = Duration::from_secs(10);

/// `message` with the tests' deadline.
fn call<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(DEADLINE);
    request
}

fn patch_request(
    key: &str,
    set: &[(&str, &str)],
    remove: &[&str],
) -> proto::PatchObjectTaggingRequest {
    proto::PatchObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        set: tags(set).tags,
        remove: remove.iter().map(|k| k.to_string()).collect(),
        ..Default::default()
    }
}

async fn patch(
    client: &mut ObjectServiceClient<Channel>,
    request: proto::PatchObjectTaggingRequest,
) -> Result<proto::PatchObjectTaggingResponse, Status> {
    client
        .patch_object_tagging(call(request))
        .await
        .map(|r| r.into_inner())
}

async fn tags_of(client: &mut ObjectServiceClient<Channel>, key: &str) -> BTreeMap<String, String> {
    client
        .get_object_tagging(call(proto::GetObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: key.into(),
            version_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .tagging
        .unwrap_or_default()
        .tags
        .into_iter()
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn write_tagged(
    client: &mut ObjectServiceClient<Channel>,
    key: &str,
    pairs: &[(&str, &str)],
) {
    let mut spec = spec(BUCKET, key);
    spec.tagging = Some(tags(pairs));
    write(client, spec, b"tagged object").await;
}

/// A false condition: FAILED_PRECONDITION with the gateway's ErrorInfo reason.
fn assert_condition_failed(result: Result<impl std::fmt::Debug, Status>) {
    let status = result.expect_err("the condition is false");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "TAG_CONDITION_FAILED");
    assert_eq!(info.domain, "ossgate");
}

#[tokio::test]
async fn a_patch_sets_overwrites_and_removes_keeping_the_other_tags() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    write_tagged(&mut client, "p/one", &[("a", "1"), ("b", "2"), ("c", "3")]).await;

    let out = patch(
        &mut client,
        patch_request("p/one", &[("b", "20"), ("d", "4")], &["c", "zz"]),
    )
    .await
    .unwrap();
    let expected = map(&[("a", "1"), ("b", "20"), ("d", "4")]);
    assert_eq!(
        out.tagging
            .unwrap()
            .tags
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        expected
    );
    assert!(!out.overwritten_by_other_writer);
    assert_eq!(tags_of(&mut client, "p/one").await, expected);

    // A key in both lists, nothing to do, a bad key, or more than 10 tags after the merge.
    let status = patch(&mut client, patch_request("p/one", &[("a", "x")], &["a"]))
        .await
        .unwrap_err();
    assert_invalid(&status, "remove[0]");
    let status = patch(&mut client, patch_request("p/one", &[], &[]))
        .await
        .unwrap_err();
    assert_invalid(&status, "set");
    let status = patch(&mut client, patch_request("p/one", &[("a&b", "x")], &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let many: Vec<(String, String)> = (0..8).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let status = patch(&mut client, patch_request("p/one", &many, &[]))
        .await
        .unwrap_err();
    assert_invalid(&status, "set");
    assert_eq!(
        tags_of(&mut client, "p/one").await,
        expected,
        "refused patches wrote nothing"
    );

    // A missing object is NOT_FOUND.
    let status = patch(&mut client, patch_request("p/missing", &[("a", "1")], &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    stack.stop().await;
}

#[tokio::test]
async fn if_tags_is_a_compare_and_swap_on_put_delete_and_patch() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let key = "p/cas";
    write_tagged(&mut client, key, &[("stage", "draft"), ("owner", "ann")]).await;

    // PutObjectTagging: false writes nothing, true writes.
    let put = |condition: &str, pairs: &[(&str, &str)]| proto::PutObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        tagging: Some(tags(pairs)),
        if_tags: condition.into(),
        ..Default::default()
    };
    assert_condition_failed(
        client
            .put_object_tagging(call(put("stage = 'final'", &[("stage", "x")])))
            .await,
    );
    assert_eq!(
        tags_of(&mut client, key).await,
        map(&[("stage", "draft"), ("owner", "ann")])
    );
    client
        .put_object_tagging(call(put(
            "stage = 'draft' AND EXISTS owner",
            &[("stage", "review"), ("owner", "ann")],
        )))
        .await
        .unwrap();
    assert_eq!(
        tags_of(&mut client, key).await,
        map(&[("stage", "review"), ("owner", "ann")])
    );

    // PatchObjectTagging: the condition is on the tags before the patch.
    let mut conditional = patch_request(key, &[("stage", "final")], &[]);
    conditional.if_tags = "stage = 'draft'".into();
    assert_condition_failed(patch(&mut client, conditional.clone()).await);
    conditional.if_tags = "stage = 'review' AND @size = 13".into();
    let out = patch(&mut client, conditional).await.unwrap();
    assert_eq!(out.tagging.unwrap().tags["stage"], "final");

    // A query that does not parse is INVALID_ARGUMENT naming the field.
    let mut bad = patch_request(key, &[("x", "1")], &[]);
    bad.if_tags = "stage != 'final'".into();
    let status = patch(&mut client, bad).await.unwrap_err();
    assert_invalid(&status, "if_tags");

    // DeleteObjectTagging.
    let delete = |condition: &str| proto::DeleteObjectTaggingRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        if_tags: condition.into(),
        ..Default::default()
    };
    assert_condition_failed(
        client
            .delete_object_tagging(call(delete("NOT EXISTS owner")))
            .await,
    );
    assert_eq!(tags_of(&mut client, key).await.len(), 2);
    client
        .delete_object_tagging(call(delete("owner = 'ann'")))
        .await
        .unwrap();
    assert!(tags_of(&mut client, key).await.is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn patches_and_conditional_writes_are_audited_with_the_tags_before_and_after() {
    let (capture, _guard) = Capture::start();
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    write_tagged(&mut client, "p/audit", &[("a", "1")]).await;
    capture.clear();

    let mut request = patch_request("p/audit", &[("b", "2")], &[]);
    request.if_tags = "a = '1'".into();
    patch(&mut client, request).await.unwrap();
    let event = only_event(&capture);
    assert_eq!(event["method"], "PatchObjectTagging", "{event}");
    assert_eq!(event["tags_before"], r#"{"a":"1"}"#, "{event}");
    assert_eq!(event["tags_before_source"], "read_under_lock", "{event}");
    assert_eq!(event["tags_after"], r#"{"a":"1","b":"2"}"#, "{event}");
    assert_eq!(event["if_tags"], r#""a" = '1'"#, "{event}");
    assert_eq!(event["outcome"], "ok", "{event}");
    capture.clear();

    // A false condition is audited as a failure that changed nothing.
    let status = client
        .put_object_tagging(call(proto::PutObjectTaggingRequest {
            bucket: BUCKET.into(),
            key: "p/audit".into(),
            tagging: Some(tags(&[("c", "3")])),
            if_tags: "a = '2'".into(),
            ..Default::default()
        }))
        .await;
    assert_condition_failed(status);
    let event = only_event(&capture);
    assert_eq!(event["method"], "PutObjectTagging", "{event}");
    assert_eq!(event["tags_before"], r#"{"a":"1","b":"2"}"#, "{event}");
    assert_eq!(event["tags_before_source"], "read_under_lock", "{event}");
    assert_eq!(event["outcome"], "failed", "{event}");
    assert_eq!(event["code"], "FailedPrecondition", "{event}");
    stack.stop().await;
}

/// A `redis-server` on a free loopback port, stopped (by its process id) when dropped.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one (the Debian package `redis-server`; scripts/test.sh installs it) and waits
    /// until it answers.
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install -y redis-server)");
        let server = Self { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rounds of the race (the issue asks for 1,000; the count keeps the test under a minute).
const ROUNDS: usize = 1000;
/// Writers per round, each adding its own tag key.
const WRITERS: usize = 9;

/// How a writer adds its tag: a PatchObjectTagging, or the read-then-write a client without
/// it does (GetObjectTagging, then PutObjectTagging of the merged set).
#[derive(Clone, Copy, PartialEq)]
enum AddTag {
    Patch,
    GetThenPut,
}

async fn add_tag(
    client: &mut ObjectServiceClient<Channel>,
    key: &str,
    how: AddTag,
    tag: (&str, &str),
) {
    match how {
        AddTag::Patch => {
            patch(client, patch_request(key, &[tag], &[]))
                .await
                .unwrap();
        }
        AddTag::GetThenPut => {
            let mut current = tags_of(client, key).await;
            current.insert(tag.0.to_string(), tag.1.to_string());
            client
                .put_object_tagging(call(proto::PutObjectTaggingRequest {
                    bucket: BUCKET.into(),
                    key: key.into(),
                    tagging: Some(proto::Tagging {
                        tags: current.into_iter().collect(),
                    }),
                    ..Default::default()
                }))
                .await
                .unwrap();
        }
    }
}

/// Runs up to `rounds` rounds of [`WRITERS`] concurrent writers, alternating between the two
/// replicas, each adding its own key to one object that starts each round without tags.
/// Returns the rounds run and, per round that ended without all keys, the keys it kept;
/// stops at the first such round when `stop_at_first_loss`.
async fn race(
    replicas: [&ObjectServiceClient<Channel>; 2],
    how: AddTag,
    rounds: usize,
    stop_at_first_loss: bool,
) -> (usize, Vec<usize>) {
    let key = "race/object";
    let mut client = replicas[0].clone();
    write_tagged(&mut client, key, &[]).await;
    let mut lost = Vec::new();
    for round in 0..rounds {
        client
            .delete_object_tagging(call(proto::DeleteObjectTaggingRequest {
                bucket: BUCKET.into(),
                key: key.into(),
                ..Default::default()
            }))
            .await
            .unwrap();
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let mut client = replicas[writer % 2].clone();
                tokio::spawn(async move {
                    let tag_key = format!("writer-{writer}");
                    add_tag(&mut client, key, how, (&tag_key, &round.to_string())).await;
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        let kept = tags_of(&mut client, key).await.len();
        if kept != WRITERS {
            lost.push(kept);
            if stop_at_first_loss {
                return (round + 1, lost);
            }
        }
    }
    (rounds, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_writers_through_two_replicas_sharing_redis_lose_no_update() {
    let redis = RedisServer::start();
    let url = redis.url();
    let lock = [
        ("OSSGATE_LOCK__REDIS_URL", url.as_str()),
        ("OSSGATE_LOCK__REPLICAS", "2"),
    ];
    let stack = Stack::start_with_settings(&lock).await;
    let second = start_gateway(&stack, Default::default(), &lock).await;
    let second_client = connect(second.local_addr()).await;
    let replicas = [&stack.client, &second_client];

    // The detector first: the same race with plain Get+Put loses updates.
    let (rounds, lost) = race(replicas, AddTag::GetThenPut, 200, true).await;
    assert!(
        !lost.is_empty(),
        "Get+Put lost no update in {rounds} rounds: the race does not detect lost updates"
    );
    eprintln!("Get+Put: round {rounds} kept {} of {WRITERS} tags", lost[0]);

    let started = Instant::now();
    let (rounds, lost) = race(replicas, AddTag::Patch, ROUNDS, false).await;
    eprintln!(
        "PatchObjectTagging: {rounds} rounds of {WRITERS} writers in {:?}",
        started.elapsed()
    );
    assert!(
        lost.is_empty(),
        "{} of {rounds} rounds lost updates; tags kept in the first: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );

    second.shutdown().await.unwrap();
    stack.stop().await;
    drop(redis);
}

#[tokio::test]
async fn if_tags_guards_head_read_and_delete() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let key = "p/guarded";
    write_tagged(&mut client, key, &[("retention", "short")]).await;

    let head = |condition: &str| proto::HeadObjectRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        if_tags: condition.into(),
        ..Default::default()
    };
    assert_condition_failed(client.head_object(call(head("retention = 'long'"))).await);
    let metadata = client
        .head_object(call(head("retention = 'short' AND @size < 100")))
        .await
        .unwrap()
        .into_inner()
        .metadata
        .unwrap();
    assert_eq!(metadata.size, 13);

    let read = |condition: &str| proto::ReadObjectRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        if_tags: condition.into(),
        ..Default::default()
    };
    assert_condition_failed(client.read_object(call(read("NOT EXISTS retention"))).await);
    let mut stream = client
        .read_object(call(read("EXISTS retention")))
        .await
        .unwrap()
        .into_inner();
    let mut data = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        data.extend_from_slice(&message.data);
    }
    assert_eq!(data, b"tagged object");

    let delete = |condition: &str| proto::DeleteObjectRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        if_tags: condition.into(),
        ..Default::default()
    };
    assert_condition_failed(
        client
            .delete_object(call(delete("retention = 'long'")))
            .await,
    );
    assert!(
        exists(&stack, BUCKET, key).await,
        "a false condition deletes nothing"
    );
    client
        .delete_object(call(delete("retention = 'short'")))
        .await
        .unwrap();
    assert!(!exists(&stack, BUCKET, key).await);
    stack.stop().await;
}

#[tokio::test]
async fn if_tags_on_copy_is_checked_on_the_source() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    write_tagged(&mut client, "p/source", &[("class", "public")]).await;
    let copy = |condition: &str| proto::CopyObjectRequest {
        source_bucket: BUCKET.into(),
        source_key: "p/source".into(),
        destination_bucket: BUCKET.into(),
        destination_key: "p/copy".into(),
        if_tags: condition.into(),
        ..Default::default()
    };
    assert_condition_failed(client.copy_object(call(copy("class = 'secret'"))).await);
    assert!(
        !exists(&stack, BUCKET, "p/copy").await,
        "a false condition copies nothing"
    );
    client
        .copy_object(call(copy("class = 'public'")))
        .await
        .unwrap();
    assert_eq!(
        tags_of(&mut client, "p/copy").await,
        map(&[("class", "public")])
    );
    stack.stop().await;
}

#[tokio::test]
async fn if_tags_on_write_is_checked_on_the_object_overwritten() {
    // Parts of 100 KiB, so a 300 KiB write is a multipart upload.
    let stack = Stack::start_with_settings(&[("OSSGATE_UPLOAD__PART_SIZE_BYTES", "102400")]).await;
    let mut client = stack.client.clone();
    let key = "p/overwritten";
    let conditional = |condition: &str| {
        let mut spec = spec(BUCKET, key);
        spec.tagging = Some(tags(&[("version", "2")]));
        spec.if_tags = condition.into();
        spec
    };
    let writer = stack.client.clone();
    let write_with_deadline = |spec: proto::WriteObjectSpec, data: Vec<u8>| {
        let mut client = writer.clone();
        async move {
            let request = call(tokio_stream::iter(write_messages(spec, &data, 64 * 1024)));
            client.write_object(request).await.map(|r| r.into_inner())
        }
    };
    // No object to overwrite: the condition is false.
    assert_condition_failed(
        write_with_deadline(conditional("EXISTS version"), b"v2".to_vec()).await,
    );
    assert!(!exists(&stack, BUCKET, key).await);

    write_tagged(&mut client, key, &[("version", "1")]).await;
    let big = pseudo_random(300 * 1024, 14);
    for data in [b"v2".to_vec(), big.clone()] {
        assert_condition_failed(write_with_deadline(conditional("version = '0'"), data).await);
        assert_eq!(read_all(&stack, BUCKET, key, "").await, b"tagged object");
    }
    // True: the multipart write replaces object and tags.
    write_with_deadline(conditional("version = '1'"), big.clone())
        .await
        .unwrap();
    assert_eq!(read_all(&stack, BUCKET, key, "").await, big);
    assert_eq!(tags_of(&mut client, key).await, map(&[("version", "2")]));
    // And the single PutObject path.
    write_with_deadline(conditional("version = '2'"), b"small".to_vec())
        .await
        .unwrap();
    assert_eq!(read_all(&stack, BUCKET, key, "").await, b"small");
    stack.stop().await;
}

/// The append that creates an object with tags is a write with tags: it takes the object's
/// tag-write lock like every other. Shown with the lock held by someone else in Redis: that
/// append waits `lock.wait_ms` and is refused as TAG_LOCK_BUSY without writing; later appends,
/// which set no tags, do not wait for the lock.
#[tokio::test]
async fn the_first_append_with_tags_takes_the_tag_write_lock() {
    let redis = RedisServer::start();
    let url = redis.url();
    let stack = Stack::start_with_settings(&[
        ("OSSGATE_LOCK__REDIS_URL", url.as_str()),
        ("OSSGATE_LOCK__WAIT_MS", "300"),
    ])
    .await;
    let mut client = stack.client.clone();
    let mut redis_conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = "append/locked";
    // The lock's key in Redis (src/lock: `ossgate:taglock:<bucket>/<version or ->/<key>`).
    let lock_key = format!("ossgate:taglock:{BUCKET}/-/{key}");
    let hold = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        let lock_key = lock_key.clone();
        async move {
            let taken: bool = redis::cmd("SET")
                .arg(&lock_key)
                .arg("another-writer")
                .arg("NX")
                .arg("PX")
                .arg(30_000)
                .query_async::<Option<String>>(&mut conn)
                .await
                .unwrap()
                .is_some();
            assert!(taken, "the test holds the lock");
        }
    };
    let append = |position: i64, tagged: bool, data: &'static [u8]| proto::AppendObjectRequest {
        spec: Some(proto::AppendObjectSpec {
            bucket: BUCKET.into(),
            key: key.into(),
            tagging: tagged.then(|| tags(&[("team", "storage")])),
            ..Default::default()
        }),
        position,
        data: bytes::Bytes::from_static(data),
    };

    hold(&mut redis_conn).await;
    let status = client
        .append_object(call(tokio_stream::iter(vec![append(0, true, b"one")])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let reason = status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone());
    assert_eq!(reason.as_deref(), Some("TAG_LOCK_BUSY"), "{status:?}");
    let head = client
        .head_object(call(proto::HeadObjectRequest {
            bucket: BUCKET.into(),
            key: key.into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        head.code(),
        Code::NotFound,
        "the refused append wrote nothing"
    );

    let _: i64 = redis::cmd("DEL")
        .arg(&lock_key)
        .query_async(&mut redis_conn)
        .await
        .unwrap();
    client
        .append_object(call(tokio_stream::iter(vec![append(0, true, b"one")])))
        .await
        .unwrap();
    // A later append sets no tags: it goes through while the lock is held elsewhere.
    hold(&mut redis_conn).await;
    let next = client
        .append_object(call(tokio_stream::iter(vec![append(3, false, b"two")])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.next_append_position, 6);
    stack.stop().await;
}
