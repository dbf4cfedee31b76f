//! ListObjects through the gateway against the emulator's ListObjectsV2 and
//! ListObjectVersions: paging with opaque tokens, delimiters, versions and delete markers,
//! tags fetched per result, the `list` permission, and validation before OSS is reached.

use std::time::Duration;

use ossgate::{
    config::auth::AuthSettings,
    proto::{self, object_service_client::ObjectServiceClient},
};
use tonic::{Code, Request, transport::Channel};
use tonic_types::StatusExt;

use crate::common::*;

/// Every call sets a deadline, as a service would.
const DEADLINE: Duration = Duration::from_secs(10);

fn timed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(DEADLINE);
    request
}

fn timed_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = bearer(message, token);
    request.set_timeout(DEADLINE);
    request
}

/// Writes `key` with `body` and `tags` (through the gateway); returns its version id.
async fn put(
    client: &mut ObjectServiceClient<Channel>,
    bucket: &str,
    key: &str,
    body: &[u8],
    pairs: &[(&str, &str)],
) -> String {
    let mut spec = spec(bucket, key);
    if !pairs.is_empty() {
        spec.tagging = Some(tags(pairs));
    }
    client
        .write_object(timed(tokio_stream::iter(write_messages(
            spec,
            body,
            usize::MAX,
        ))))
        .await
        .expect("write succeeds")
        .into_inner()
        .version_id
}

fn request(bucket: &str, prefix: &str) -> proto::ListObjectsRequest {
    proto::ListObjectsRequest {
        bucket: bucket.into(),
        prefix: prefix.into(),
        ..Default::default()
    }
}

/// Every page of a listing, following `next_page_token`: the pages in order.
async fn all_pages(
    client: &mut ObjectServiceClient<Channel>,
    req: proto::ListObjectsRequest,
) -> Vec<proto::ListObjectsResponse> {
    all_pages_as(client, req, None).await
}

/// [`all_pages`] as the caller of `token`, if any.
async fn all_pages_as(
    client: &mut ObjectServiceClient<Channel>,
    mut req: proto::ListObjectsRequest,
    token: Option<&str>,
) -> Vec<proto::ListObjectsResponse> {
    let mut pages = Vec::new();
    loop {
        let call = match token {
            Some(token) => timed_bearer(req.clone(), token),
            None => timed(req.clone()),
        };
        let page = client
            .list_objects(call)
            .await
            .expect("ListObjects succeeds")
            .into_inner();
        let next = page.next_page_token.clone();
        pages.push(page);
        assert!(pages.len() < 100, "the listing does not end");
        if next.is_empty() {
            return pages;
        }
        req.page_token = next;
    }
}

fn keys(pages: &[proto::ListObjectsResponse]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.objects.iter().map(|o| o.key.clone()))
        .collect()
}

#[tokio::test]
async fn pages_follow_tokens_and_delimiters_group_prefixes() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let written = [
        "lst/a.txt",
        "lst/b c+d.txt",
        "lst/dir/1.txt",
        "lst/dir/2.txt",
        "lst/e.txt",
        "lst/zz/deep/3.txt",
        "lst/城市.txt",
    ];
    for key in written {
        put(&mut client, BUCKET, key, key.as_bytes(), &[]).await;
    }
    put(&mut client, BUCKET, "other/x.txt", b"x", &[]).await;

    // Two per page: four pages, every key once, in byte order, only under the prefix.
    let mut req = request(BUCKET, "lst/");
    req.page_size = 2;
    let pages = all_pages(&mut client, req.clone()).await;
    assert_eq!(pages.len(), 4);
    assert!(pages[..3].iter().all(|p| p.objects.len() == 2));
    assert_eq!(keys(&pages), written);
    let first = &pages[0].objects[0];
    assert_eq!(first.size, "lst/a.txt".len() as i64);
    assert!(!first.etag.is_empty());
    assert!(first.last_modified.is_some());
    assert_eq!(first.storage_class, proto::StorageClass::Standard as i32);
    assert_eq!(first.object_type, proto::ObjectType::Normal as i32);
    assert!(first.is_latest && !first.is_delete_marker && first.version_id.is_empty());
    assert!(first.tags.is_none(), "tags only when asked for");

    // A delimiter groups the subdirectories; objects and prefixes share the page size.
    req.delimiter = "/".into();
    req.page_size = 0;
    let page = client
        .list_objects(timed(req.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        keys(std::slice::from_ref(&page)),
        ["lst/a.txt", "lst/b c+d.txt", "lst/e.txt", "lst/城市.txt"]
    );
    assert_eq!(page.prefixes, ["lst/dir/", "lst/zz/"]);
    assert!(page.next_page_token.is_empty());
    req.page_size = 1;
    let pages = all_pages(&mut client, req.clone()).await;
    assert_eq!(pages.len(), 6);
    let prefixes: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.prefixes.iter().map(String::as_str))
        .collect();
    assert_eq!(prefixes, ["lst/dir/", "lst/zz/"]);

    // start_after skips to the keys after it, and is kept across pages.
    let mut req = request(BUCKET, "lst/");
    req.start_after = "lst/dir/2.txt".into();
    req.page_size = 1;
    assert_eq!(
        keys(&all_pages(&mut client, req).await),
        ["lst/e.txt", "lst/zz/deep/3.txt", "lst/城市.txt"]
    );
    // An empty prefix lists the whole bucket.
    let all = keys(&all_pages(&mut client, request(BUCKET, "")).await);
    assert!(all.contains(&"other/x.txt".to_string()) && all.len() == written.len() + 1);
    stack.stop().await;
}

#[tokio::test]
async fn versions_and_delete_markers_with_their_own_tags() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let key = "vl/doc.txt";
    let v1 = put(&mut client, VERSIONED_BUCKET, key, b"one", &[("rev", "1")]).await;
    let v2 = put(&mut client, VERSIONED_BUCKET, key, b"two!", &[("rev", "2")]).await;
    put(
        &mut client,
        VERSIONED_BUCKET,
        "vl/keep.txt",
        b"k",
        &[("keep", "yes")],
    )
    .await;
    let deleted = client
        .delete_object(timed(proto::DeleteObjectRequest {
            bucket: VERSIONED_BUCKET.into(),
            key: key.into(),
            version_id: String::new(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_marker);

    // The current listing no longer shows the deleted key.
    let mut req = request(VERSIONED_BUCKET, "vl/");
    req.include_tags = true;
    let current = all_pages(&mut client, req.clone()).await;
    assert_eq!(keys(&current), ["vl/keep.txt"]);
    assert_eq!(current[0].objects[0].tags, Some(tags(&[("keep", "yes")])));

    // The version listing shows the marker first, then the versions newest first, one per
    // page, each version with its own tags.
    req.versions = true;
    req.page_size = 1;
    let pages = all_pages(&mut client, req).await;
    let listed: Vec<&proto::ListedObject> = pages.iter().flat_map(|p| &p.objects).collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
    let marker = listed[0];
    assert_eq!(marker.key, key);
    assert!(marker.is_delete_marker && marker.is_latest);
    assert_eq!(marker.version_id, deleted.version_id);
    assert!(marker.tags.is_none());
    let (second, first) = (listed[1], listed[2]);
    assert_eq!((second.version_id.as_str(), second.size), (v2.as_str(), 4));
    assert_eq!((first.version_id.as_str(), first.size), (v1.as_str(), 3));
    assert!(!second.is_latest && !first.is_latest);
    assert!(!second.is_delete_marker && !first.is_delete_marker);
    assert_eq!(second.tags, Some(tags(&[("rev", "2")])));
    assert_eq!(first.tags, Some(tags(&[("rev", "1")])));
    assert_eq!(listed[3].key, "vl/keep.txt");
    assert!(listed[3].is_latest);
    assert_eq!(listed[3].tags, Some(tags(&[("keep", "yes")])));
    stack.stop().await;
}

#[tokio::test]
async fn include_tags_fetches_every_tag_set_of_a_full_page() {
    // More objects than the tag parallelism, so the bounded fan-out is exercised and the
    // order of results is kept.
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    let mut expected = Vec::new();
    for i in 0..40 {
        let key = format!("tg/{i:03}");
        let value = format!("v{i}");
        let pairs: Vec<(&str, &str)> = if i % 5 == 0 {
            Vec::new()
        } else {
            vec![("n", value.as_str()), ("team", "storage")]
        };
        put(&mut client, BUCKET, &key, b"x", &pairs).await;
        expected.push((key, tags(&pairs)));
    }
    let before = stack.oss_requests();
    let mut req = request(BUCKET, "tg/");
    req.include_tags = true;
    let page = client.list_objects(timed(req)).await.unwrap().into_inner();
    // One ListObjectsV2 and one GetObjectTagging per object.
    assert_eq!(stack.oss_requests() - before, 41);
    let got: Vec<(String, proto::Tagging)> = page
        .objects
        .into_iter()
        .map(|o| (o.key, o.tags.expect("tags were asked for")))
        .collect();
    assert_eq!(got, expected);

    // A version listing of an unversioned bucket: every object is its current "null"
    // version, with the same tags.
    let mut req = request(BUCKET, "tg/");
    req.include_tags = true;
    req.versions = true;
    let versions = client.list_objects(timed(req)).await.unwrap().into_inner();
    let got: Vec<(String, proto::Tagging)> = versions
        .objects
        .into_iter()
        .map(|o| {
            assert!(o.is_latest && !o.is_delete_marker, "{o:?}");
            (o.key, o.tags.expect("tags were asked for"))
        })
        .collect();
    assert_eq!(got, expected);
    stack.stop().await;
}

#[tokio::test]
async fn tag_reads_run_list_tag_parallelism_at_a_time() {
    // Each GetObjectTagging takes 100 ms (an OSS round trip, exaggerated): 24 objects at 4
    // at a time take 6 rounds, at least 600 ms, and far less than 24 rounds one by one.
    let stack = Stack::start_with_settings(&[("OSSGATE_LIST__TAG_PARALLELISM", "4")]).await;
    let mut client = stack.client.clone();
    for i in 0..24 {
        put(
            &mut client,
            BUCKET,
            &format!("par/{i:02}"),
            b"x",
            &[("i", "x")],
        )
        .await;
    }
    stack.emulator.faults().inject(ossgate::emulator::Fault {
        op: ossgate::emulator::FaultOp::GetObjectTagging,
        kind: ossgate::emulator::FaultKind::Delay(Duration::from_millis(100)),
        times: 24,
    });
    let mut req = request(BUCKET, "par/");
    req.include_tags = true;
    let started = std::time::Instant::now();
    let page = client.list_objects(timed(req)).await.unwrap().into_inner();
    let elapsed = started.elapsed();
    assert_eq!(page.objects.len(), 24);
    assert!(
        page.objects
            .iter()
            .all(|o| o.tags == Some(tags(&[("i", "x")])))
    );
    assert!(
        elapsed >= Duration::from_millis(600),
        "more than 4 tag reads ran at once: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(2000),
        "the tag reads did not run in parallel: {elapsed:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn tag_reads_are_retried_and_a_vanished_object_has_no_tags() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    for key in ["rt/a", "rt/b", "rt/c"] {
        put(&mut client, BUCKET, key, b"x", &[("k", "v")]).await;
    }
    let faults = stack.emulator.faults();
    let mut req = request(BUCKET, "rt/");
    req.include_tags = true;
    // Two 503s are retried by the client: every object still has its tags.
    faults.reset_counts();
    faults.inject(ossgate::emulator::Fault {
        op: ossgate::emulator::FaultOp::GetObjectTagging,
        kind: ossgate::emulator::FaultKind::Status(503, "ServiceUnavailable"),
        times: 2,
    });
    let page = client
        .list_objects(timed(req.clone()))
        .await
        .expect("retried tag reads succeed")
        .into_inner();
    assert!(
        page.objects
            .iter()
            .all(|o| o.tags == Some(tags(&[("k", "v")])))
    );
    assert_eq!(
        faults.count(ossgate::emulator::FaultOp::GetObjectTagging),
        5
    );
    // An object gone between the listing and its tag read (NoSuchKey) has no tags; the
    // others keep theirs.
    faults.inject(ossgate::emulator::Fault {
        op: ossgate::emulator::FaultOp::GetObjectTagging,
        kind: ossgate::emulator::FaultKind::Status(404, "NoSuchKey"),
        times: 1,
    });
    let page = client
        .list_objects(timed(req.clone()))
        .await
        .unwrap()
        .into_inner();
    let with_tags = page.objects.iter().filter(|o| o.tags.is_some()).count();
    assert_eq!((page.objects.len(), with_tags), (3, 2));
    // A lasting failure fails the page.
    faults.inject(ossgate::emulator::Fault {
        op: ossgate::emulator::FaultOp::GetObjectTagging,
        kind: ossgate::emulator::FaultKind::Status(500, "InternalError"),
        times: 100,
    });
    let status = client.list_objects(timed(req)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    faults.clear();
    stack.stop().await;
}

const ALICE: &str = "alice-list-token";
const BOB: &str = "bob-list-token";
const ADMIN: &str = "admin-list-token";

#[tokio::test]
async fn listing_needs_list_on_the_prefix_and_tags_need_read() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    for key in [
        "team-a/1.txt",
        "team-a/2.txt",
        "team-b/1.txt",
        "team-ab.txt",
    ] {
        put(&mut client, BUCKET, key, b"x", &[("owner", "someone")]).await;
    }
    let auth = AuthSettings {
        tokens: vec![
            token_setting("alice", ALICE),
            token_setting("bob", BOB),
            token_setting("admin", ADMIN),
        ],
        certificates: Vec::new(),
        policy: vec![
            policy_rule("alice", &[BUCKET], &["team-a/"], &["list", "read"]),
            policy_rule("bob", &[BUCKET], &["team-a/"], &["list"]),
            policy_rule("admin", &["*"], &[], &["*"]),
        ],
    };
    let gateway = start_gateway(&stack, auth, &[]).await;
    let mut authed = connect(gateway.local_addr()).await;

    // Alice lists her prefix, with tags; nothing of team-b or team-ab.txt.
    let mut req = request(BUCKET, "team-a/");
    req.include_tags = true;
    let page = authed
        .list_objects(timed_bearer(req.clone(), ALICE))
        .await
        .expect("alice lists team-a/")
        .into_inner();
    assert_eq!(
        keys(std::slice::from_ref(&page)),
        ["team-a/1.txt", "team-a/2.txt"]
    );
    assert!(page.objects.iter().all(|o| o.tags.is_some()));

    // Listing the bucket root, or a prefix that only starts her allowed one, is refused
    // before OSS is asked: a partial listing would look complete.
    let before = stack.oss_requests();
    for prefix in ["", "team-", "team-b/"] {
        let status = authed
            .list_objects(timed_bearer(request(BUCKET, prefix), ALICE))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "{prefix:?}: {status:?}"
        );
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.metadata["operation"], "list");
    }
    // Bob may list but not read: names yes, tags no.
    authed
        .list_objects(timed_bearer(request(BUCKET, "team-a/"), BOB))
        .await
        .expect("bob lists team-a/");
    let status = authed
        .list_objects(timed_bearer(req.clone(), BOB))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.get_details_error_info().unwrap().metadata["operation"],
        "read"
    );
    // Alice may read under team-a/ but `read` alone does not list elsewhere.
    let status = authed
        .list_objects(timed_bearer(request("other-bucket", "team-a/"), ALICE))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // Only bob's allowed listing reached OSS.
    assert_eq!(stack.oss_requests() - before, 1);

    // The admin sees everything.
    let admin = keys(&all_pages_as(&mut authed, request(BUCKET, "team"), Some(ADMIN)).await);
    assert_eq!(
        admin,
        [
            "team-a/1.txt",
            "team-a/2.txt",
            "team-ab.txt",
            "team-b/1.txt"
        ]
    );
    // Without a token: UNAUTHENTICATED.
    let status = authed
        .list_objects(timed(request(BUCKET, "team-a/")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    gateway.shutdown().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn bad_requests_and_foreign_tokens_never_reach_oss() {
    let stack = Stack::start().await;
    let mut client = stack.client.clone();
    for i in 0..3 {
        put(&mut client, BUCKET, &format!("val/{i}"), b"x", &[]).await;
    }
    let mut req = request(BUCKET, "val/");
    req.page_size = 1;
    let first = client
        .list_objects(timed(req.clone()))
        .await
        .unwrap()
        .into_inner();
    let token = first.next_page_token;
    assert!(!token.is_empty());

    let before = stack.oss_requests();
    let cases: Vec<(&str, proto::ListObjectsRequest)> = vec![
        ("bucket", request("Bad_Bucket", "")),
        (
            "page_size",
            proto::ListObjectsRequest {
                page_size: 1001,
                ..req.clone()
            },
        ),
        (
            "page_size",
            proto::ListObjectsRequest {
                page_size: -1,
                ..req.clone()
            },
        ),
        (
            "delimiter",
            proto::ListObjectsRequest {
                delimiter: "//".into(),
                ..req.clone()
            },
        ),
        (
            "delimiter",
            proto::ListObjectsRequest {
                delimiter: "\n".into(),
                ..req.clone()
            },
        ),
        (
            "prefix",
            proto::ListObjectsRequest {
                prefix: "a\u{0}b".into(),
                ..req.clone()
            },
        ),
        (
            "start_after",
            proto::ListObjectsRequest {
                start_after: "x".repeat(1024),
                ..req.clone()
            },
        ),
        (
            "page_token",
            proto::ListObjectsRequest {
                page_token: "not a token".into(),
                ..req.clone()
            },
        ),
        // The token of this listing, presented with another prefix, delimiter or kind.
        (
            "page_token",
            proto::ListObjectsRequest {
                page_token: token.clone(),
                prefix: "val/1".into(),
                ..req.clone()
            },
        ),
        (
            "page_token",
            proto::ListObjectsRequest {
                page_token: token.clone(),
                delimiter: "/".into(),
                ..req.clone()
            },
        ),
        (
            "page_token",
            proto::ListObjectsRequest {
                page_token: token.clone(),
                versions: true,
                ..req.clone()
            },
        ),
        (
            "page_token",
            proto::ListObjectsRequest {
                page_token: token.clone(),
                start_after: "val/0".into(),
                ..req.clone()
            },
        ),
    ];
    for (field, bad) in cases {
        let status = client.list_objects(timed(bad)).await.unwrap_err();
        assert_invalid(&status, field);
    }
    assert_eq!(
        stack.oss_requests(),
        before,
        "a refused request reached OSS"
    );

    // The token still works with its own query, and page_size and include_tags may change.
    let rest = client
        .list_objects(timed(proto::ListObjectsRequest {
            page_token: token,
            page_size: 10,
            include_tags: true,
            ..req
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys(std::slice::from_ref(&rest)), ["val/1", "val/2"]);
    assert!(rest.next_page_token.is_empty());

    // A bucket that does not exist is NOT_FOUND, from OSS.
    let status = client
        .list_objects(timed(request("no-such-bucket-here", "")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    stack.stop().await;
}
