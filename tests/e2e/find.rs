//! FindObjects end to end: one query table run through both engines (the emulator's MetaQuery
//! index and the ListObjectsV2 + GetObjectTagging scan) with the same answers, errors with
//! positions, the engine choice, the policy's prefixes, and a slow reader that holds the scan
//! back (bounded memory).

use std::time::Duration;

use ossgate::{
    config::auth::AuthSettings,
    model::BucketName,
    oss::{Addressing, Client, ClientConfig, sign::SignatureVersion},
    proto::{self, FindEngine},
};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::common::*;

/// Every find in these tests ends within this.
const DEADLINE: Duration = Duration::from_secs(60);

/// A direct OSS client on the emulator, to open the bucket's MetaQuery index.
fn oss_client(stack: &Stack) -> Client {
    Client::new(ClientConfig {
        endpoint: stack.emulator.endpoint(),
        region: "cn-hangzhou".into(),
        signature_version: SignatureVersion::V4,
        addressing: Addressing::Auto,
        credentials: credentials(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Some(Duration::from_secs(30)),
    })
    .unwrap()
}

/// Opens `bucket`'s index and waits until it is Running (the emulator's preparation).
async fn open_index(stack: &Stack, bucket: &str) {
    let oss = oss_client(stack);
    let bucket = BucketName::parse(bucket).unwrap();
    oss.open_meta_query(&bucket).await.expect("OpenMetaQuery");
    for _ in 0..100 {
        if oss
            .get_meta_query_status(&bucket)
            .await
            .unwrap()
            .is_queryable()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the index never ran");
}

fn find_request(prefix: &str, query: &str, engine: FindEngine) -> proto::FindObjectsRequest {
    proto::FindObjectsRequest {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        query: query.into(),
        engine: engine as i32,
        ..Default::default()
    }
}

/// Everything one find streamed.
#[derive(Debug, Default)]
struct Found {
    /// The matches' keys, sorted.
    keys: Vec<String>,
    matches: Vec<proto::FoundObject>,
    last: Option<proto::FindProgress>,
    messages: usize,
}

async fn find_with(
    client: &mut proto::object_service_client::ObjectServiceClient<tonic::transport::Channel>,
    request: Request<proto::FindObjectsRequest>,
) -> Result<Found, Status> {
    let mut stream = client.find_objects(request).await?.into_inner();
    let mut found = Found::default();
    while let Some(message) = stream.message().await? {
        found.messages += 1;
        let progress = message.progress.expect("every message carries progress");
        assert!(
            found.last.as_ref().is_none_or(|p| !p.done),
            "done was not last"
        );
        found.matches.extend(message.matches);
        found.last = Some(progress);
    }
    found.keys = found.matches.iter().map(|m| m.key.clone()).collect();
    found.keys.sort();
    let last = found.last.as_ref().expect("a last message");
    assert!(last.done, "the stream ended without done");
    assert_eq!(last.matched as usize, found.matches.len());
    Ok(found)
}

async fn find(stack: &Stack, request: proto::FindObjectsRequest) -> Result<Found, Status> {
    let mut request = Request::new(request);
    request.set_timeout(DEADLINE);
    find_with(&mut stack.client.clone(), request).await
}

/// An object of the query table: key, size, tags.
type TableObject = (&'static str, usize, &'static [(&'static str, &'static str)]);

const OBJECTS: &[TableObject] = &[
    ("t/a.txt", 10, &[("team", "storage"), ("env", "prod")]),
    ("t/b.txt", 2000, &[("team", "storage"), ("env", "prod-eu")]),
    ("t/c.txt", 30, &[("team", "compute"), ("env", "dev")]),
    (
        "t/d.txt",
        4000,
        &[("team", "storage"), ("legal-hold", "true")],
    ),
    ("t/e.txt", 5, &[]),
    (
        "t/sub/f.txt",
        60,
        &[("team", "storage"), ("env", "staging")],
    ),
    ("t/sub/g.txt", 70, &[("team", "Storage"), ("prio", "10")]),
    ("t/sub/h.txt", 80, &[("prio", "9"), ("env", "prod")]),
    (
        "t/x y+z.txt",
        90,
        &[("team", "storage ops"), ("env", "prod")],
    ),
    // Outside the table's prefix: never returned.
    ("u/a.txt", 10, &[("team", "storage"), ("env", "prod")]),
];

/// Query, the keys it finds under `t/` (without the `t/`).
const TABLE: &[(&str, &[&str])] = &[
    (
        r#""team" = 'storage'"#,
        &["a.txt", "b.txt", "d.txt", "sub/f.txt"],
    ),
    (
        r#""team" = 'storage' AND "env" STARTS_WITH 'prod'"#,
        &["a.txt", "b.txt"],
    ),
    (
        r#""team" = 'compute' OR "prio" = '9'"#,
        &["c.txt", "sub/h.txt"],
    ),
    (
        r#""team" = 'storage' AND NOT EXISTS "legal-hold""#,
        &["a.txt", "b.txt", "sub/f.txt"],
    ),
    (r#"EXISTS "prio""#, &["sub/g.txt", "sub/h.txt"]),
    // `<>` needs the tag; NOT does not.
    (r#""env" <> 'prod'"#, &["b.txt", "c.txt", "sub/f.txt"]),
    (
        r#"NOT "env" = 'prod'"#,
        &["b.txt", "c.txt", "d.txt", "e.txt", "sub/f.txt", "sub/g.txt"],
    ),
    // Byte-wise comparison: '10' < '9'.
    (r#""prio" < '9'"#, &["sub/g.txt"]),
    (r#""team" > 'storage'"#, &["x y+z.txt"]),
    (
        r#""team" >= 'storage' AND @size < 100"#,
        &["a.txt", "sub/f.txt", "x y+z.txt"],
    ),
    (
        r#"@key STARTS_WITH 't/sub/' AND ("team" STARTS_WITH 'Stor' OR "env" = 'prod')"#,
        &["sub/g.txt", "sub/h.txt"],
    ),
    (r#"@size >= 2000"#, &["b.txt", "d.txt"]),
    (r#"@size > 4000"#, &[]),
    (r#"@key = 't/x y+z.txt'"#, &["x y+z.txt"]),
    (r#"@key STARTS_WITH 'u/'"#, &[]),
    (r#""team" = 'nobody'"#, &[]),
];

async fn write_table(stack: &Stack) {
    let mut client = stack.client.clone();
    for (key, size, pairs) in OBJECTS {
        let mut s = spec(BUCKET, key);
        s.tagging = Some(tags(pairs));
        write(&mut client, s, &pseudo_random(*size, 7)).await;
    }
}

#[tokio::test]
async fn both_engines_give_the_table_answers() {
    let stack = Stack::start().await;
    write_table(&stack).await;
    // Before the index exists, AUTO scans.
    let auto = find(&stack, find_request("t/", TABLE[0].0, FindEngine::Auto))
        .await
        .unwrap();
    assert_eq!(auto.last.unwrap().engine, FindEngine::Scan as i32);
    open_index(&stack, BUCKET).await;

    for (query, expected) in TABLE {
        let expected: Vec<String> = expected.iter().map(|k| format!("t/{k}")).collect();
        for engine in [FindEngine::Scan, FindEngine::Metaquery] {
            let found = find(&stack, find_request("t/", query, engine))
                .await
                .unwrap_or_else(|s| panic!("{engine:?} {query}: {s:?}"));
            assert_eq!(found.keys, expected, "{engine:?} {query}");
            let last = found.last.unwrap();
            assert_eq!(last.engine, engine as i32);
            assert_eq!(last.note.is_empty(), engine == FindEngine::Scan);
            for m in &found.matches {
                let (_, size, pairs) = OBJECTS.iter().find(|(k, ..)| *k == m.key).unwrap();
                assert_eq!(m.size as usize, *size);
                assert_eq!(m.tags.as_ref().unwrap(), &tags(pairs), "the whole tag set");
                assert!(
                    m.etag.starts_with('"') && m.last_modified.is_some(),
                    "{m:?}"
                );
            }
        }
    }
    // With the index running, AUTO uses it and says that it can lag.
    let auto = find(
        &stack,
        find_request("t/", TABLE[0].0, FindEngine::Unspecified),
    )
    .await
    .unwrap();
    let last = auto.last.unwrap();
    assert_eq!(last.engine, FindEngine::Metaquery as i32);
    assert!(last.note.contains("lag"), "{}", last.note);
    stack.stop().await;
}

#[tokio::test]
async fn batches_limit_and_progress() {
    let stack = Stack::start().await;
    write_table(&stack).await;
    open_index(&stack, BUCKET).await;
    for engine in [FindEngine::Scan, FindEngine::Metaquery] {
        let mut r = find_request("t/", r#"EXISTS "team""#, engine);
        r.batch_size = 2;
        let all = find(&stack, r.clone()).await.unwrap();
        assert_eq!(all.matches.len(), 7, "{engine:?}");
        assert!(
            all.messages >= 4,
            "{engine:?}: batches of 2: {}",
            all.messages
        );
        assert_eq!(all.last.unwrap().scanned, 9, "{engine:?}: objects under t/");
        r.limit = 3;
        let limited = find(&stack, r).await.unwrap();
        assert_eq!(limited.matches.len(), 3, "{engine:?}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn errors_say_where_and_why() {
    let stack = Stack::start().await;
    let cases = [
        (r#""team" = "#, "at 9: "),
        (r#""team" == 'x'"#, "at 8: "),
        (r#"("a" = 'b'"#, "at 10: "),
        (r#""a" = 'b' AND"#, "at 13: "),
    ];
    for (query, position) in cases {
        let err = find(&stack, find_request("", query, FindEngine::Scan))
            .await
            .unwrap_err();
        assert_invalid(&err, "query");
        let violations = err.get_details_bad_request().unwrap().field_violations;
        assert!(
            violations[0].description.starts_with(position),
            "{query}: {violations:?}"
        );
    }
    let mut bad = find_request("", r#""a" = 'b'"#, FindEngine::Scan);
    bad.batch_size = 5000;
    assert_invalid(&find(&stack, bad).await.unwrap_err(), "batch_size");

    // METAQUERY on a bucket without an index is refused; a missing bucket is NOT_FOUND.
    let err = find(
        &stack,
        find_request("", r#""a" = 'b'"#, FindEngine::Metaquery),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let mut missing = find_request("", r#""a" = 'b'"#, FindEngine::Auto);
    missing.bucket = "no-such-bucket-here".into();
    let err = find(&stack, missing).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    stack.stop().await;
}

#[tokio::test]
async fn policy_bounds_what_a_find_sees() {
    let stack = Stack::start().await;
    write_table(&stack).await;
    open_index(&stack, BUCKET).await;
    let auth = AuthSettings {
        tokens: vec![
            token_setting("alice", "alice-token"),
            token_setting("bob", "bob-token"),
        ],
        certificates: Vec::new(),
        policy: vec![
            policy_rule("alice", &[BUCKET], &["t/sub/"], &["list", "read"]),
            // Bob may read but not list.
            policy_rule("bob", &[BUCKET], &[], &["read"]),
        ],
    };
    let gateway = start_gateway(&stack, auth, &[]).await;
    let mut client = connect(gateway.local_addr()).await;
    let call = |prefix: &str, engine: FindEngine, token: &str| {
        let mut r = bearer(find_request(prefix, r#"EXISTS "team""#, engine), token);
        r.set_timeout(DEADLINE);
        r
    };
    for engine in [FindEngine::Scan, FindEngine::Metaquery] {
        let found = find_with(&mut client, call("t/sub/", engine, "alice-token"))
            .await
            .unwrap();
        assert_eq!(found.keys, ["t/sub/f.txt", "t/sub/g.txt"], "{engine:?}");
        // A prefix wider than alice's is refused before anything is listed.
        let err = find_with(&mut client, call("t/", engine, "alice-token"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{engine:?}");
        let err = find_with(&mut client, call("t/sub/", engine, "bob-token"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{engine:?}");
    }
    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

/// A reader that stops reading holds the scan back: the gateway reads no more tags than its
/// bounded queue and parallelism allow, instead of buffering the whole answer.
#[tokio::test]
async fn a_slow_reader_holds_the_scan_back() {
    const OBJECTS: usize = 3000;
    let stack =
        Stack::start_with_settings(&[("OSSGATE_FIND__SCAN_OPS_PER_SECOND", "100000")]).await;
    // The longest tags make each match about 4 KiB, so what the transport buffers (bytes)
    // is few matches.
    let long = "v".repeat(256);
    let pairs: Vec<(String, String)> = (0..10)
        .map(|i| (format!("k{i}{}", "k".repeat(125)), long.clone()))
        .collect();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let mut client = stack.client.clone();
            let pairs = pairs.clone();
            tokio::spawn(async move {
                for i in (w..OBJECTS).step_by(8) {
                    let mut s = spec(BUCKET, &format!("slow/{i:05}"));
                    let p: Vec<(&str, &str)> = pairs
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    s.tagging = Some(tags(&p));
                    write(&mut client, s, b"x").await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let mut r = Request::new(proto::FindObjectsRequest {
        batch_size: 100,
        ..find_request(
            "slow/",
            &format!(r#"EXISTS "k0{}""#, "k".repeat(125)),
            FindEngine::Scan,
        )
    });
    r.set_timeout(DEADLINE);
    let mut stream = stack
        .client
        .clone()
        .find_objects(r)
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    // The reader pauses until the gateway stops asking OSS for more (it must: nobody reads).
    let before = stack.emulator.request_count();
    let mut seen = before;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = stack.emulator.request_count();
        if now == seen {
            break;
        }
        seen = now;
    }
    let during = seen - before;
    eprintln!("OSS requests while the reader paused: {during}");
    assert!(
        during < (OBJECTS / 2) as u64,
        "{during} OSS requests while nobody read: the scan did not wait"
    );
    // Then it reads everything.
    let mut matched = first.matches.len();
    let mut done = false;
    while let Some(m) = stream.message().await.unwrap() {
        matched += m.matches.len();
        done = m.progress.unwrap().done;
    }
    assert!(done);
    assert_eq!(matched, OBJECTS);
    stack.stop().await;
}
