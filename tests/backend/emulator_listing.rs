//! The emulator's listings, DeleteMultipleObjects, object ACLs and RestoreObject over real
//! HTTP: the XML OSS answers with (element names and order, `encoding-type=url`), paging,
//! and the errors. The official SDKs run the same operations in
//! `tests/interop/test_sdk_listing.py`.

use std::time::Duration;

use ossgate::emulator::EmulatorHandle;

use crate::support::*;

async fn put(e: &EmulatorHandle, bucket: &str, key: &str, headers: &[(&str, &str)]) {
    let mut req = Req::new("PUT", bucket, key).body(b"data");
    for (k, v) in headers {
        req = req.h(k, v);
    }
    let r = req.send(e).await;
    assert_eq!(r.status(), 200, "PUT {key}: {}", r.text().await.unwrap());
}

async fn get_text(req: Req, e: &EmulatorHandle) -> (u16, String) {
    let r = req.send(e).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The text of every `<name>` element, in order.
fn all(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open)
        .skip(1)
        .map(|s| s.split(&close).next().unwrap().to_owned())
        .collect()
}

/// Asserts that the elements appear in this order in `xml`.
fn in_order(xml: &str, names: &[&str]) {
    let positions: Vec<usize> = names
        .iter()
        .map(|n| {
            xml.find(&format!("<{n}>"))
                .or_else(|| xml.find(&format!("<{n}/>")))
                .unwrap_or_else(|| panic!("no <{n}> in {xml}"))
        })
        .collect();
    assert!(positions.is_sorted(), "{names:?} out of order in {xml}");
}

#[tokio::test]
async fn list_objects_xml_pages_and_url_encoding() {
    let e = start().await;
    for key in ["p/a b", "p/dir/x", "p/dir/y", "p/z+ü", "q"] {
        put(&e, BUCKET, key, &[]).await;
    }
    let (s, xml) = get_text(
        Req::new("GET", BUCKET, "")
            .q("prefix", "p/")
            .q("delimiter", "/")
            .q("max-keys", "2")
            .q("encoding-type", "url"),
        &e,
    )
    .await;
    assert_eq!(s, 200, "{xml}");
    in_order(
        &xml,
        &[
            "ListBucketResult",
            "Name",
            "Prefix",
            "Marker",
            "MaxKeys",
            "Delimiter",
            "EncodingType",
            "IsTruncated",
            "NextMarker",
            "Contents",
            "CommonPrefixes",
        ],
    );
    assert_eq!(all(&xml, "Key"), ["p%2Fa%20b"]);
    assert_eq!(all(&xml, "Prefix"), ["p%2F", "p%2Fdir%2F"]);
    assert_eq!(all(&xml, "NextMarker"), ["p%2Fdir%2F"]);
    assert_eq!(all(&xml, "IsTruncated"), ["true"]);
    assert!(
        xml.contains("<Owner><ID>"),
        "V1 always names the owner: {xml}"
    );
    // The next page starts after the common prefix, not inside it.
    let (_, xml) = get_text(
        Req::new("GET", BUCKET, "")
            .q("prefix", "p/")
            .q("delimiter", "/")
            .q("marker", "p/dir/"),
        &e,
    )
    .await;
    assert_eq!(all(&xml, "Key"), ["p/z+ü"]);
    assert_eq!(all(&xml, "IsTruncated"), ["false"]);
    assert!(all(&xml, "NextMarker").is_empty());

    // V2: tokens, KeyCount last, owner only with fetch-owner.
    let (s, xml) = get_text(
        Req::new("GET", BUCKET, "")
            .q("list-type", "2")
            .q("max-keys", "3"),
        &e,
    )
    .await;
    assert_eq!(s, 200, "{xml}");
    in_order(
        &xml,
        &[
            "Name",
            "Prefix",
            "MaxKeys",
            "IsTruncated",
            "NextContinuationToken",
            "Contents",
            "KeyCount",
        ],
    );
    assert!(
        xml.trim_end()
            .ends_with("<KeyCount>3</KeyCount></ListBucketResult>"),
        "{xml}"
    );
    assert!(!xml.contains("<Owner>"), "{xml}");
    let token = all(&xml, "NextContinuationToken").remove(0);
    let (_, xml) = get_text(
        Req::new("GET", BUCKET, "")
            .q("list-type", "2")
            .q("continuation-token", &token)
            .q("fetch-owner", "true"),
        &e,
    )
    .await;
    assert_eq!(all(&xml, "Key"), ["p/z+ü", "q"]);
    assert_eq!(all(&xml, "ContinuationToken"), [token]);
    assert!(xml.contains("<Owner><ID>"), "{xml}");
    e.shutdown().await;
}

#[tokio::test]
async fn listing_errors() {
    let e = start().await;
    for (req, status, code) in [
        (
            Req::new("GET", BUCKET, "").q("max-keys", "1001"),
            400,
            "InvalidArgument",
        ),
        (
            Req::new("GET", BUCKET, "").q("max-keys", "x"),
            400,
            "InvalidArgument",
        ),
        (
            Req::new("GET", BUCKET, "").q("encoding-type", "base64"),
            400,
            "InvalidArgument",
        ),
        (
            Req::new("GET", BUCKET, "")
                .q("list-type", "2")
                .q("continuation-token", "%%"),
            400,
            "InvalidArgument",
        ),
        (Req::new("GET", "no-such-bucket", ""), 404, "NoSuchBucket"),
        (
            Req::new("GET", "no-such-bucket", "").q("versions", ""),
            404,
            "NoSuchBucket",
        ),
        // Bucket sub-resources the emulator lacks stay 501, never a listing.
        (
            Req::new("GET", BUCKET, "").q("lifecycle", ""),
            501,
            "NotImplemented",
        ),
    ] {
        let what = req.url("");
        let (s, xml) = get_text(req, &e).await;
        assert_eq!(
            (s, all(&xml, "Code")),
            (status, vec![code.to_owned()]),
            "{what}: {xml}"
        );
    }
    e.shutdown().await;
}

#[tokio::test]
async fn list_object_versions_xml_and_markers() {
    let e = start().await;
    put(&e, VERSIONED_BUCKET, "k", &[]).await;
    put(&e, VERSIONED_BUCKET, "k", &[]).await;
    let r = Req::new("DELETE", VERSIONED_BUCKET, "k").send(&e).await;
    let marker = hv(&r, "x-oss-version-id").unwrap();
    let (s, xml) = get_text(Req::new("GET", VERSIONED_BUCKET, "").q("versions", ""), &e).await;
    assert_eq!(s, 200, "{xml}");
    in_order(
        &xml,
        &[
            "ListVersionsResult",
            "Name",
            "Prefix",
            "KeyMarker",
            "VersionIdMarker",
            "MaxKeys",
            "Delimiter",
            "IsTruncated",
            "DeleteMarker",
            "Version",
        ],
    );
    let ids = all(&xml, "VersionId");
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], marker, "newest first: the delete marker");
    assert_eq!(all(&xml, "IsLatest"), ["true", "false", "false"]);
    // Two per page: the second page starts inside "k", after the second entry.
    let (_, xml) = get_text(
        Req::new("GET", VERSIONED_BUCKET, "")
            .q("versions", "")
            .q("max-keys", "2"),
        &e,
    )
    .await;
    assert_eq!(all(&xml, "NextKeyMarker"), ["k"]);
    assert_eq!(all(&xml, "NextVersionIdMarker"), [ids[1].clone()]);
    let (_, xml) = get_text(
        Req::new("GET", VERSIONED_BUCKET, "")
            .q("versions", "")
            .q("key-marker", "k")
            .q("version-id-marker", &ids[1]),
        &e,
    )
    .await;
    assert_eq!(all(&xml, "VersionId"), [ids[2].clone()]);
    // An unversioned bucket lists its objects with version ID "null".
    put(&e, BUCKET, "u", &[]).await;
    let (_, xml) = get_text(Req::new("GET", BUCKET, "").q("versions", ""), &e).await;
    assert_eq!(all(&xml, "VersionId"), ["null"]);
    e.shutdown().await;
}

#[tokio::test]
async fn delete_multiple_objects_rules() {
    let e = start().await;
    put(&e, BUCKET, "a", &[]).await;
    put(&e, BUCKET, "b&c", &[]).await;
    let body = b"<Delete><Quiet>false</Quiet><Object><Key>a</Key></Object><Object><Key>b&amp;c</Key></Object><Object><Key>none</Key></Object></Delete>";
    let delete = |body: &[u8]| Req::new("POST", BUCKET, "").q("delete", "").body(body);
    // Content-MD5 is required and checked.
    let (s, xml) = get_text(delete(body), &e).await;
    assert_eq!(
        (s, all(&xml, "Code")),
        (400, vec!["MissingArgument".to_owned()]),
        "{xml}"
    );
    let (s, xml) = get_text(delete(body).h("content-md5", &md5_b64(b"other")), &e).await;
    assert_eq!(
        (s, all(&xml, "Code")),
        (400, vec!["InvalidDigest".to_owned()]),
        "{xml}"
    );
    let (s, xml) = get_text(
        delete(body)
            .h("content-md5", &md5_b64(body))
            .q("encoding-type", "url"),
        &e,
    )
    .await;
    assert_eq!(s, 200, "{xml}");
    in_order(&xml, &["DeleteResult", "EncodingType", "Deleted"]);
    assert_eq!(all(&xml, "Key"), ["a", "b%26c", "none"]);
    let r = Req::new("GET", BUCKET, "a").send(&e).await;
    assert_eq!(r.status(), 404);
    // Quiet: an empty result. More than 1000 objects: MalformedXML.
    let quiet = b"<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object></Delete>";
    let (s, xml) = get_text(delete(quiet).h("content-md5", &md5_b64(quiet)), &e).await;
    assert_eq!(s, 200);
    assert!(all(&xml, "Deleted").is_empty(), "{xml}");
    let many = format!(
        "<Delete>{}</Delete>",
        "<Object><Key>k</Key></Object>".repeat(1001)
    );
    let (s, xml) = get_text(
        delete(many.as_bytes()).h("content-md5", &md5_b64(many.as_bytes())),
        &e,
    )
    .await;
    assert_eq!(
        (s, all(&xml, "Code")),
        (400, vec!["MalformedXML".to_owned()]),
        "{xml}"
    );
    e.shutdown().await;
}

#[tokio::test]
async fn object_acl_and_restore() {
    let e = start().await;
    e.set_restore_delay(Duration::from_millis(200));
    put(&e, BUCKET, "k", &[("x-oss-object-acl", "public-read")]).await;
    let (s, xml) = get_text(Req::new("GET", BUCKET, "k").q("acl", ""), &e).await;
    assert_eq!(s, 200, "{xml}");
    in_order(
        &xml,
        &[
            "AccessControlPolicy",
            "Owner",
            "ID",
            "DisplayName",
            "AccessControlList",
            "Grant",
        ],
    );
    assert_eq!(all(&xml, "Grant"), ["public-read"]);
    let (s, xml) = get_text(Req::new("PUT", BUCKET, "k").q("acl", ""), &e).await;
    assert_eq!(
        (s, all(&xml, "Code")),
        (400, vec!["InvalidArgument".to_owned()]),
        "{xml}"
    );
    let r = Req::new("PUT", BUCKET, "k")
        .q("acl", "")
        .h("x-oss-object-acl", "private")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let (_, xml) = get_text(Req::new("GET", BUCKET, "k").q("acl", ""), &e).await;
    assert_eq!(all(&xml, "Grant"), ["private"]);

    // An archive object: HEAD works, GET waits for a restore.
    put(
        &e,
        BUCKET,
        "cold",
        &[("x-oss-storage-class", "DeepColdArchive")],
    )
    .await;
    let (s, xml) = get_text(Req::new("GET", BUCKET, "cold"), &e).await;
    assert_eq!(
        (s, all(&xml, "Code")),
        (403, vec!["InvalidObjectState".to_owned()]),
        "{xml}"
    );
    let r = Req::new("POST", BUCKET, "cold")
        .q("restore", "")
        .send(&e)
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        hv(&r, "x-oss-object-restore-priority").as_deref(),
        Some("Standard")
    );
    let (s, xml) = get_text(Req::new("POST", BUCKET, "cold").q("restore", ""), &e).await;
    assert_eq!(
        (s, all(&xml, "Code")),
        (409, vec!["RestoreAlreadyInProgress".to_owned()]),
        "{xml}"
    );
    let r = Req::new("HEAD", BUCKET, "cold").send(&e).await;
    assert_eq!(
        hv(&r, "x-oss-restore").as_deref(),
        Some("ongoing-request=\"true\"")
    );
    // Nor can it be a copy source before the restore finished.
    let copy = || {
        Req::new("PUT", BUCKET, "copy")
            .h("x-oss-copy-source", &format!("/{BUCKET}/cold"))
            .h("x-oss-storage-class", "Standard")
    };
    let (s, xml) = get_text(copy(), &e).await;
    assert_eq!(
        (s, all(&xml, "Code")),
        (403, vec!["InvalidObjectState".to_owned()]),
        "{xml}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = Req::new("GET", BUCKET, "cold").send(&e).await;
    assert_eq!(r.status(), 200);
    let restore = hv(&r, "x-oss-restore").unwrap();
    assert!(
        restore.starts_with("ongoing-request=\"false\", expiry-date=\""),
        "{restore}"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"data");
    let (s, xml) = get_text(copy(), &e).await;
    assert_eq!(s, 200, "{xml}");
    // A Standard object has nothing to restore.
    let (s, xml) = get_text(Req::new("POST", BUCKET, "k").q("restore", ""), &e).await;
    assert_eq!(
        (s, all(&xml, "Code")),
        (400, vec!["OperationNotSupported".to_owned()]),
        "{xml}"
    );
    e.shutdown().await;
}

#[tokio::test]
async fn list_parts_repeats_client_side_encryption_metadata() {
    let e = start().await;
    let cse = [
        ("x-oss-meta-client-side-encryption-key", "a2V5"),
        ("x-oss-meta-client-side-encryption-start", "c3RhcnQ="),
        (
            "x-oss-meta-client-side-encryption-cek-alg",
            "AES/CTR/NoPadding",
        ),
        (
            "x-oss-meta-client-side-encryption-wrap-alg",
            "RSA/NONE/PKCS1Padding",
        ),
        ("x-oss-meta-client-side-encryption-data-size", "1048576"),
        ("x-oss-meta-client-side-encryption-part-size", "102400"),
    ];
    let mut req = Req::new("POST", BUCKET, "cse").q("uploads", "");
    for (k, v) in cse {
        req = req.h(k, v);
    }
    let (s, xml) = get_text(req, &e).await;
    assert_eq!(s, 200, "{xml}");
    let id = all(&xml, "UploadId").remove(0);
    let (s, xml) = get_text(Req::new("GET", BUCKET, "cse").q("uploadId", &id), &e).await;
    assert_eq!(s, 200, "{xml}");
    let names = [
        "ClientEncryptionKey",
        "ClientEncryptionStart",
        "ClientEncryptionCekAlg",
        "ClientEncryptionWrapAlg",
        "ClientEncryptionDataSize",
        "ClientEncryptionPartSize",
    ];
    in_order(&xml, &names);
    for (name, (_, value)) in names.iter().zip(cse) {
        assert_eq!(all(&xml, name), [value.to_owned()], "{name}");
    }
    // An upload without them lists none.
    let (_, xml) = get_text(Req::new("POST", BUCKET, "plain").q("uploads", ""), &e).await;
    let id = all(&xml, "UploadId").remove(0);
    let (_, xml) = get_text(Req::new("GET", BUCKET, "plain").q("uploadId", &id), &e).await;
    assert!(!xml.contains("ClientEncryption"), "{xml}");
    e.shutdown().await;
}
