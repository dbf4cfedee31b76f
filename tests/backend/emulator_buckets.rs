//! The emulator's bucket and service operations over HTTP: PutBucket, DeleteBucket,
//! ListBuckets (paging, tag filters), DescribeRegions, GetBucketInfo/Location/Stat, bucket
//! ACL, versioning (Enabled and Suspended), tags, Block Public Access, and the order in
//! which their errors come.

use ossgate::emulator::EmulatorHandle;

use crate::support::{BUCKET, Req, start};

/// Status, body.
async fn answer(r: Req, e: &EmulatorHandle) -> (u16, String) {
    let r = r.send(e).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Every `<tag>text</tag>` value, in order.
fn values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split(&close).next())
        .map(str::to_owned)
        .collect()
}

fn value(xml: &str, tag: &str) -> String {
    values(xml, tag).into_iter().next().unwrap_or_default()
}

fn code(xml: &str) -> String {
    value(xml, "Code")
}

async fn create(e: &EmulatorHandle, name: &str) {
    let (s, body) = answer(Req::new("PUT", name, ""), e).await;
    assert_eq!(s, 200, "{body}");
}

async fn put_object(e: &EmulatorHandle, bucket: &str, key: &str, data: &[u8]) -> Option<String> {
    let r = Req::new("PUT", bucket, key).body(data).send(e).await;
    assert_eq!(r.status().as_u16(), 200);
    r.headers()
        .get("x-oss-version-id")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn put_bucket_with_configuration_and_read_it_back() {
    let e = start().await;
    let config = b"<CreateBucketConfiguration><StorageClass>IA</StorageClass>\
        <DataRedundancyType>ZRS</DataRedundancyType></CreateBucketConfiguration>";
    let r = Req::new("PUT", "new-bucket", "")
        .h("x-oss-acl", "public-read")
        .body(config)
        .send(&e)
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["location"], "/new-bucket");
    assert_eq!(r.headers()["x-oss-request-id"].len(), 24);
    // Taken, a bad name, a bad class, a bad ACL, bad XML.
    let (s, body) = answer(Req::new("PUT", "new-bucket", ""), &e).await;
    assert_eq!((s, code(&body).as_str()), (409, "BucketAlreadyExists"));
    let (s, body) = answer(Req::new("PUT", "Bad_Name", ""), &e).await;
    assert_eq!((s, code(&body).as_str()), (400, "InvalidBucketName"));
    let bad_class =
        b"<CreateBucketConfiguration><StorageClass>Hot</StorageClass></CreateBucketConfiguration>";
    let (s, body) = answer(Req::new("PUT", "b-class", "").body(bad_class), &e).await;
    assert_eq!((s, code(&body).as_str()), (400, "InvalidStorageClass"));
    let (s, body) = answer(Req::new("PUT", "b-acl", "").h("x-oss-acl", "open"), &e).await;
    assert_eq!((s, code(&body).as_str()), (400, "InvalidArgument"));
    let (s, body) = answer(Req::new("PUT", "b-xml", "").body(b"<Create"), &e).await;
    assert_eq!((s, code(&body).as_str()), (400, "MalformedXML"));
    // GetBucketInfo says what PutBucket set, and the OSS defaults.
    let (s, info) = answer(Req::new("GET", "new-bucket", "").q("bucketInfo", ""), &e).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(value(&info, "Name"), "new-bucket");
    assert_eq!(value(&info, "StorageClass"), "IA");
    assert_eq!(value(&info, "DataRedundancyType"), "ZRS");
    assert_eq!(value(&info, "Grant"), "public-read");
    assert_eq!(value(&info, "BlockPublicAccess"), "true");
    assert_eq!(value(&info, "AccessMonitor"), "Disabled");
    assert_eq!(value(&info, "Location"), "oss-cn-hangzhou");
    assert_eq!(value(&info, "SSEAlgorithm"), "None");
    assert_eq!(value(&info, "ExtranetEndpoint"), e.endpoint());
    assert!(value(&info, "CreationDate").ends_with(".000Z"));
    assert!(values(&info, "Versioning").is_empty());
    let (s, loc) = answer(Req::new("GET", "new-bucket", "").q("location", ""), &e).await;
    assert_eq!(s, 200);
    assert_eq!(value(&loc, "LocationConstraint"), "oss-cn-hangzhou");
    // Objects written without x-oss-storage-class get the bucket's class.
    put_object(&e, "new-bucket", "plain", b"x").await;
    let r = Req::new("PUT", "new-bucket", "std")
        .h("x-oss-storage-class", "Standard")
        .body(b"x");
    assert_eq!(answer(r, &e).await.0, 200);
    let (s, init) = answer(Req::new("POST", "new-bucket", "mp").q("uploads", ""), &e).await;
    assert_eq!(s, 200);
    for (key, class) in [("plain", "IA"), ("std", "Standard")] {
        let r = Req::new("HEAD", "new-bucket", key).send(&e).await;
        assert_eq!(r.headers()["x-oss-storage-class"], class, "{key}");
    }
    let (_, uploads) = answer(Req::new("GET", "new-bucket", "").q("uploads", ""), &e).await;
    assert_eq!(value(&uploads, "StorageClass"), "IA", "{init}");
    // ACL: read, change, read again.
    let (_, acl) = answer(Req::new("GET", "new-bucket", "").q("acl", ""), &e).await;
    assert_eq!(value(&acl, "Grant"), "public-read");
    assert!(!value(&acl, "ID").is_empty());
    let r = Req::new("PUT", "new-bucket", "")
        .q("acl", "")
        .h("x-oss-acl", "private");
    assert_eq!(answer(r, &e).await.0, 200);
    let (_, acl) = answer(Req::new("GET", "new-bucket", "").q("acl", ""), &e).await;
    assert_eq!(value(&acl, "Grant"), "private");
    e.shutdown().await;
}

#[tokio::test]
async fn list_buckets_pages_filters_and_tags() {
    let e = start().await;
    for name in ["lb-a", "lb-b", "lb-c"] {
        create(&e, name).await;
    }
    // Paging one at a time: NextMarker leads on, the last page is not truncated.
    let mut marker = String::new();
    let mut seen = Vec::new();
    loop {
        let r = Req::new("GET", "", "")
            .q("prefix", "lb-")
            .q("max-keys", "1")
            .q("marker", &marker);
        let (s, body) = answer(r, &e).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(value(&body, "MaxKeys"), "1");
        seen.extend(values(&body, "Name"));
        if value(&body, "IsTruncated") != "true" {
            assert!(values(&body, "NextMarker").is_empty());
            break;
        }
        marker = value(&body, "NextMarker");
    }
    assert_eq!(seen, ["lb-a", "lb-b", "lb-c"]);
    // Everything, with the fields the SDKs read.
    let (_, body) = answer(Req::new("GET", "", ""), &e).await;
    assert_eq!(
        values(&body, "Name"),
        ["bkt", "lb-a", "lb-b", "lb-c", "vbkt"]
    );
    assert_eq!(value(&body, "Region"), "cn-hangzhou");
    assert_eq!(value(&body, "Location"), "oss-cn-hangzhou");
    assert_eq!(value(&body, "IntranetEndpoint"), e.endpoint());
    assert_eq!(value(&body, "StorageClass"), "Standard");
    assert!(!value(&body, "ID").is_empty());
    let (s, body) = answer(Req::new("GET", "", "").q("max-keys", "0"), &e).await;
    assert_eq!((s, code(&body).as_str()), (400, "InvalidArgument"));
    // Tags, and the three filters.
    let tagging = |pairs: &[(&str, &str)]| {
        let tags: String = pairs
            .iter()
            .map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>"))
            .collect();
        format!("<Tagging><TagSet>{tags}</TagSet></Tagging>").into_bytes()
    };
    for (bucket, tags) in [
        ("lb-a", tagging(&[("env", "test")])),
        ("lb-b", tagging(&[("env", "test"), ("team", "dev")])),
        ("lb-c", tagging(&[("env", "prod")])),
    ] {
        let r = Req::new("PUT", bucket, "").q("tagging", "").body(&tags);
        assert_eq!(answer(r, &e).await.0, 200);
    }
    let names = |r: Req| async { values(&answer(r, &e).await.1, "Name") };
    let list = || Req::new("GET", "", "").q("prefix", "lb-");
    assert_eq!(names(list().q("tag-key", "env")).await.len(), 3);
    let r = list().q("tag-key", "env").q("tag-value", "test");
    assert_eq!(names(r).await, ["lb-a", "lb-b"]);
    let r = list().q("tagging", "\"env\":\"test\",\"team\":\"dev\"");
    assert_eq!(names(r).await, ["lb-b"]);
    let (s, _) = answer(list().q("tagging", "\"a\":\"b\"").q("tag-key", "a"), &e).await;
    assert_eq!(s, 400);
    // GetBucketTags, DeleteBucketTags of one key, then of all.
    let (_, tags) = answer(Req::new("GET", "lb-b", "").q("tagging", ""), &e).await;
    assert_eq!(values(&tags, "Key"), ["env", "team"]);
    let r = Req::new("DELETE", "lb-b", "").q("tagging", "team");
    assert_eq!(answer(r, &e).await.0, 204);
    let (_, tags) = answer(Req::new("GET", "lb-b", "").q("tagging", ""), &e).await;
    assert_eq!(values(&tags, "Key"), ["env"]);
    let r = Req::new("DELETE", "lb-b", "").q("tagging", "");
    assert_eq!(answer(r, &e).await.0, 204);
    let (_, tags) = answer(Req::new("GET", "lb-b", "").q("tagging", ""), &e).await;
    assert!(values(&tags, "Key").is_empty(), "{tags}");
    let many: Vec<(String, String)> = (0..21).map(|i| (format!("k{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = Req::new("PUT", "lb-b", "")
        .q("tagging", "")
        .body(&tagging(&many));
    let (s, body) = answer(r, &e).await;
    assert_eq!((s, code(&body).as_str()), (400, "InvalidTag"));
    e.shutdown().await;
}

#[tokio::test]
async fn delete_bucket_only_when_empty() {
    let e = start().await;
    create(&e, "del-me").await;
    put_object(&e, "del-me", "k", b"data").await;
    let (s, body) = answer(Req::new("DELETE", "del-me", ""), &e).await;
    assert_eq!((s, code(&body).as_str()), (409, "BucketNotEmpty"));
    assert_eq!(answer(Req::new("DELETE", "del-me", "k"), &e).await.0, 204);
    // An open multipart upload keeps it too.
    let (s, init) = answer(Req::new("POST", "del-me", "up").q("uploads", ""), &e).await;
    assert_eq!(s, 200);
    let (s, body) = answer(Req::new("DELETE", "del-me", ""), &e).await;
    assert_eq!((s, code(&body).as_str()), (409, "BucketNotEmpty"));
    let abort = Req::new("DELETE", "del-me", "up").q("uploadId", &value(&init, "UploadId"));
    assert_eq!(answer(abort, &e).await.0, 204);
    assert_eq!(answer(Req::new("DELETE", "del-me", ""), &e).await.0, 204);
    let (s, body) = answer(Req::new("DELETE", "del-me", ""), &e).await;
    assert_eq!((s, code(&body).as_str()), (404, "NoSuchBucket"));
    // A delete marker is a version: a versioned bucket with only markers is not empty.
    create(&e, "del-marker").await;
    let enable = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let r = Req::new("PUT", "del-marker", "")
        .q("versioning", "")
        .body(enable);
    assert_eq!(answer(r, &e).await.0, 200);
    assert_eq!(
        answer(Req::new("DELETE", "del-marker", "gone"), &e).await.0,
        204
    );
    let (s, body) = answer(Req::new("DELETE", "del-marker", ""), &e).await;
    assert_eq!((s, code(&body).as_str()), (409, "BucketNotEmpty"));
    e.shutdown().await;
}

#[tokio::test]
async fn versioning_enabled_then_suspended() {
    let e = start().await;
    create(&e, "ver").await;
    let (_, v) = answer(Req::new("GET", "ver", "").q("versioning", ""), &e).await;
    assert!(values(&v, "Status").is_empty(), "{v}");
    let status = |s: &str| {
        format!("<VersioningConfiguration><Status>{s}</Status></VersioningConfiguration>")
            .into_bytes()
    };
    let put_status = |s: &str| {
        Req::new("PUT", "ver", "")
            .q("versioning", "")
            .body(&status(s))
    };
    let (s, body) = answer(put_status("On"), &e).await;
    assert_eq!((s, code(&body).as_str()), (400, "MalformedXML"));
    assert_eq!(answer(put_status("Enabled"), &e).await.0, 200);
    let (_, v) = answer(Req::new("GET", "ver", "").q("versioning", ""), &e).await;
    assert_eq!(value(&v, "Status"), "Enabled");
    let (_, info) = answer(Req::new("GET", "ver", "").q("bucketInfo", ""), &e).await;
    assert_eq!(value(&info, "Versioning"), "Enabled");
    let v1 = put_object(&e, "ver", "k", b"one").await.unwrap();
    let v2 = put_object(&e, "ver", "k", b"two").await.unwrap();
    assert_ne!(v1, v2);
    // Suspended: writes replace the "null" version; the versions with IDs stay.
    assert_eq!(answer(put_status("Suspended"), &e).await.0, 200);
    put_object(&e, "ver", "k", b"three").await;
    put_object(&e, "ver", "k", b"four").await;
    let read = |vid: &str| Req::new("GET", "ver", "k").q("versionId", vid);
    assert_eq!(answer(read(&v1), &e).await.1, "one");
    assert_eq!(answer(read("null"), &e).await.1, "four");
    assert_eq!(answer(Req::new("GET", "ver", "k"), &e).await.1, "four");
    // A delete leaves a delete marker as the null version.
    let r = Req::new("DELETE", "ver", "k").send(&e).await;
    assert_eq!(r.headers()["x-oss-delete-marker"], "true");
    assert_eq!(answer(Req::new("GET", "ver", "k"), &e).await.0, 404);
    assert_eq!(answer(read(&v2), &e).await.1, "two");
    let (_, stat) = answer(Req::new("GET", "ver", "").q("stat", ""), &e).await;
    assert_eq!(value(&stat, "DeleteMarkerCount"), "1");
    e.shutdown().await;
}

#[tokio::test]
async fn bucket_stat_counts_objects_classes_and_uploads() {
    let e = start().await;
    create(&e, "stats").await;
    let (_, stat) = answer(Req::new("GET", "stats", "").q("stat", ""), &e).await;
    for tag in [
        "Storage",
        "ObjectCount",
        "MultipartUploadCount",
        "LastModifiedTime",
    ] {
        assert_eq!(value(&stat, tag), "0", "{tag}: {stat}");
    }
    put_object(&e, "stats", "a", b"12345").await;
    let r = Req::new("PUT", "stats", "b")
        .h("x-oss-storage-class", "IA")
        .body(b"123");
    assert_eq!(answer(r, &e).await.0, 200);
    let (s, _) = answer(Req::new("POST", "stats", "up").q("uploads", ""), &e).await;
    assert_eq!(s, 200);
    let (s, stat) = answer(Req::new("GET", "stats", "").q("stat", ""), &e).await;
    assert_eq!(s, 200, "{stat}");
    assert_eq!(value(&stat, "Storage"), "8");
    assert_eq!(value(&stat, "ObjectCount"), "2");
    assert_eq!(value(&stat, "StandardStorage"), "5");
    assert_eq!(value(&stat, "StandardObjectCount"), "1");
    assert_eq!(value(&stat, "InfrequentAccessStorage"), "3");
    assert_eq!(value(&stat, "InfrequentAccessObjectCount"), "1");
    assert_eq!(value(&stat, "MultipartUploadCount"), "1");
    assert_ne!(value(&stat, "LastModifiedTime"), "0");
    e.shutdown().await;
}

#[tokio::test]
async fn block_public_access_and_regions() {
    let e = start().await;
    let block = |on: &str| {
        format!("<PublicAccessBlockConfiguration><BlockPublicAccess>{on}</BlockPublicAccess></PublicAccessBlockConfiguration>")
            .into_bytes()
    };
    let get = || Req::new("GET", BUCKET, "").q("publicAccessBlock", "");
    assert_eq!(
        value(&answer(get(), &e).await.1, "BlockPublicAccess"),
        "true"
    );
    let r = Req::new("PUT", BUCKET, "")
        .q("publicAccessBlock", "")
        .body(&block("false"));
    assert_eq!(answer(r, &e).await.0, 200);
    assert_eq!(
        value(&answer(get(), &e).await.1, "BlockPublicAccess"),
        "false"
    );
    // V1 signs publicAccessBlock as a sub-resource, as both SDKs do.
    let r = Req::new("PUT", BUCKET, "")
        .q("publicAccessBlock", "")
        .body(&block("true"))
        .v1();
    assert_eq!(answer(r, &e).await.0, 200);
    let r = Req::new("DELETE", BUCKET, "").q("publicAccessBlock", "");
    assert_eq!(answer(r, &e).await.0, 204);
    assert_eq!(
        value(&answer(get(), &e).await.1, "BlockPublicAccess"),
        "false"
    );
    // DescribeRegions: all, one, or an unknown one.
    let (s, all) = answer(Req::new("GET", "", "").q("regions", ""), &e).await;
    assert_eq!(s, 200, "{all}");
    assert!(values(&all, "Region").len() > 1);
    let (_, one) = answer(Req::new("GET", "", "").q("regions", "oss-cn-hangzhou"), &e).await;
    assert_eq!(values(&one, "Region"), ["oss-cn-hangzhou"]);
    assert_eq!(
        value(&one, "InternetEndpoint"),
        "oss-cn-hangzhou.aliyuncs.com"
    );
    assert_eq!(
        value(&one, "InternalEndpoint"),
        "oss-cn-hangzhou-internal.aliyuncs.com"
    );
    let (s, _) = answer(Req::new("GET", "", "").q("regions", "oss-mars-1"), &e).await;
    assert_eq!(s, 404);
    e.shutdown().await;
}

#[tokio::test]
async fn error_order_of_bucket_and_service_operations() {
    let e = start().await;
    let unknown = |mut r: Req| {
        r.creds.access_key_id = "unknown-ak".into();
        r
    };
    // PutBucket and PutBucketAcl check the signature first: there is no bucket to be missing.
    let (s, body) = answer(unknown(Req::new("PUT", "fresh-bucket", "")), &e).await;
    assert_eq!((s, code(&body).as_str()), (403, "InvalidAccessKeyId"));
    let r = unknown(
        Req::new("PUT", "fresh-bucket", "")
            .q("acl", "")
            .h("x-oss-acl", "private"),
    );
    let (s, body) = answer(r, &e).await;
    assert_eq!((s, code(&body).as_str()), (403, "InvalidAccessKeyId"));
    let (s, body) = answer(Req::new("PUT", "fresh-bucket", "").secret("wrong"), &e).await;
    assert_eq!((s, code(&body).as_str()), (403, "SignatureDoesNotMatch"));
    // Signed correctly, PutBucketAcl on a missing bucket is NoSuchBucket.
    let r = Req::new("PUT", "fresh-bucket", "")
        .q("acl", "")
        .h("x-oss-acl", "private");
    let (s, body) = answer(r, &e).await;
    assert_eq!((s, code(&body).as_str()), (404, "NoSuchBucket"));
    // The others: NoSuchBucket before the signature.
    for sub in ["bucketInfo", "location", "stat", "versioning", "tagging"] {
        let (s, body) = answer(unknown(Req::new("GET", "fresh-bucket", "").q(sub, "")), &e).await;
        assert_eq!((s, code(&body).as_str()), (404, "NoSuchBucket"), "{sub}");
    }
    // The service level: the signature (ListBuckets, DescribeRegions).
    let (s, body) = answer(unknown(Req::new("GET", "", "")), &e).await;
    assert_eq!((s, code(&body).as_str()), (403, "InvalidAccessKeyId"));
    let (s, body) = answer(unknown(Req::new("GET", "", "").q("regions", "")), &e).await;
    assert_eq!((s, code(&body).as_str()), (403, "InvalidAccessKeyId"));
    // V1 signs the service level as "/".
    assert_eq!(answer(Req::new("GET", "", "").v1(), &e).await.0, 200);
    e.shutdown().await;
}

#[tokio::test]
async fn buckets_and_their_settings_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::config();
    config.data_dir = Some(dir.path().to_owned());
    let e = ossgate::emulator::start(config.clone()).await.unwrap();
    let r = Req::new("PUT", "durable", "").h("x-oss-acl", "public-read");
    assert_eq!(answer(r, &e).await.0, 200);
    let enable = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let r = Req::new("PUT", "durable", "")
        .q("versioning", "")
        .body(enable);
    assert_eq!(answer(r, &e).await.0, 200);
    e.shutdown().await;
    config.listen = "127.0.0.1:0".parse().unwrap();
    let e = ossgate::emulator::start(config).await.unwrap();
    let (_, info) = answer(Req::new("GET", "durable", "").q("bucketInfo", ""), &e).await;
    assert_eq!(value(&info, "Grant"), "public-read");
    assert_eq!(value(&info, "Versioning"), "Enabled");
    e.shutdown().await;
}
