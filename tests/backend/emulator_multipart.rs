//! The emulator's multipart uploads, AppendObject, CopyObject, UploadPartCopy and fault
//! injection over real HTTP on a loopback port, signed like the SDKs sign.

use std::time::{Duration, SystemTime};

use md5::Digest as _;
use ossgate::emulator::{self, EmulatorHandle, Fault, FaultKind, FaultOp};
use ossgate::model::crc64;
use ossgate::oss::sign::{self, SignatureVersion, uri_encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const KB: usize = 1024;

fn md5_hex(data: &[u8]) -> String {
    hex::encode_upper(md5::Md5::digest(data))
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn initiate(e: &EmulatorHandle, bucket: &str, key: &str, extra: &[(&str, &str)]) -> String {
    let mut r = Req::new("POST", bucket, key).q("uploads", "");
    for (k, v) in extra {
        r = r.h(k, v);
    }
    let r = r.send(e).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    xml_values(&text, "UploadId").remove(0)
}

async fn upload_part(
    e: &EmulatorHandle,
    bucket: &str,
    key: &str,
    id: &str,
    n: u32,
    body: &[u8],
) -> String {
    let r = Req::new("PUT", bucket, key)
        .q("partNumber", &n.to_string())
        .q("uploadId", id)
        .body(body)
        .send(e)
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    hv(&r, "etag").unwrap()
}

fn complete_xml(parts: &[(u32, &str)]) -> Vec<u8> {
    let mut s = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        s.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    s.push_str("</CompleteMultipartUpload>");
    s.into_bytes()
}

async fn complete(
    e: &EmulatorHandle,
    bucket: &str,
    key: &str,
    id: &str,
    parts: &[(u32, &str)],
) -> reqwest::Response {
    Req::new("POST", bucket, key)
        .q("uploadId", id)
        .body(&complete_xml(parts))
        .send(e)
        .await
}

async fn get(e: &EmulatorHandle, bucket: &str, key: &str) -> Vec<u8> {
    let r = Req::new("GET", bucket, key).send(e).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap().to_vec()
}

async fn get_tags(e: &EmulatorHandle, bucket: &str, key: &str) -> Vec<(String, String)> {
    let r = Req::new("GET", bucket, key).q("tagging", "").send(e).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    xml_values(&text, "Key")
        .into_iter()
        .zip(xml_values(&text, "Value"))
        .collect()
}

fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&md5::Md5::digest(p));
    }
    format!("\"{}-{}\"", md5_hex(&all), parts.len())
}

#[tokio::test]
async fn multipart_three_parts_keeps_initiate_headers() {
    let e = start().await;
    let id = initiate(
        &e,
        "bkt",
        "dir/big file",
        &[
            ("x-oss-tagging", "a=1&b=two%20words"),
            ("x-oss-meta-color", "red"),
            ("content-type", "text/plain"),
            ("x-oss-storage-class", "IA"),
            ("x-oss-object-acl", "private"),
        ],
    )
    .await;
    assert_eq!(
        e.open_uploads(),
        vec![("bkt".into(), "dir/big file".into(), id.clone())]
    );
    let (p1, p2, p3) = (data(100 * KB, 1), data(150 * KB, 2), data(10 * KB, 3));
    let r = Req::new("PUT", "bkt", "dir/big file")
        .q("partNumber", "1")
        .q("uploadId", &id)
        .h("content-md5", &md5_b64(&p1))
        .body(&p1)
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let e1 = hv(&r, "etag").unwrap();
    assert_eq!(e1, format!("\"{}\"", md5_hex(&p1)));
    assert_eq!(
        hv(&r, "x-oss-hash-crc64ecma").unwrap(),
        crc64(&p1).to_string()
    );
    let e2 = upload_part(&e, "bkt", "dir/big file", &id, 2, &p2).await;
    let e3 = upload_part(&e, "bkt", "dir/big file", &id, 3, &p3).await;
    let r = complete(
        &e,
        "bkt",
        "dir/big file",
        &id,
        &[(1, &e1), (2, &e2), (3, &e3)],
    )
    .await;
    assert_eq!(r.status(), 200);
    let whole = [p1.clone(), p2.clone(), p3.clone()].concat();
    assert_eq!(
        hv(&r, "x-oss-hash-crc64ecma").unwrap(),
        crc64(&whole).to_string()
    );
    let text = r.text().await.unwrap();
    let etag = multipart_etag(&[&p1, &p2, &p3]);
    assert_eq!(xml_values(&text, "ETag"), vec![etag.clone()]);
    assert_eq!(xml_values(&text, "Key"), vec!["dir/big file".to_owned()]);
    assert!(e.open_uploads().is_empty());
    assert_eq!(get(&e, "bkt", "dir/big file").await, whole);
    let r = Req::new("HEAD", "bkt", "dir/big file").send(&e).await;
    assert_eq!(hv(&r, "etag").unwrap(), etag);
    assert_eq!(hv(&r, "x-oss-object-type").as_deref(), Some("Multipart"));
    assert_eq!(hv(&r, "x-oss-storage-class").as_deref(), Some("IA"));
    assert_eq!(hv(&r, "content-type").as_deref(), Some("text/plain"));
    assert_eq!(hv(&r, "x-oss-meta-color").as_deref(), Some("red"));
    assert_eq!(
        hv(&r, "x-oss-hash-crc64ecma").unwrap(),
        crc64(&whole).to_string()
    );
    assert_eq!(
        get_tags(&e, "bkt", "dir/big file").await,
        vec![("a".into(), "1".into()), ("b".into(), "two words".into())]
    );
    // The upload is gone after Complete.
    let (s, code) = error_code(complete(&e, "bkt", "dir/big file", &id, &[(1, &e1)]).await).await;
    assert_eq!((s, code.as_str()), (404, "NoSuchUpload"));
    e.shutdown().await;
}

#[tokio::test]
async fn complete_all_and_versioned_complete() {
    let e = start().await;
    let id = initiate(&e, "vbkt", "all", &[]).await;
    let (p1, p2) = (data(100 * KB, 7), data(3, 8));
    // Uploaded out of order; a re-upload replaces part 2.
    upload_part(&e, "vbkt", "all", &id, 2, b"old").await;
    upload_part(&e, "vbkt", "all", &id, 2, &p2).await;
    upload_part(&e, "vbkt", "all", &id, 1, &p1).await;
    // complete-all with a body is refused.
    let r = Req::new("POST", "vbkt", "all")
        .q("uploadId", &id)
        .h("x-oss-complete-all", "yes")
        .body(&complete_xml(&[(1, "x")]))
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (400, "InvalidArgument".into()));
    let r = Req::new("POST", "vbkt", "all")
        .q("uploadId", &id)
        .h("x-oss-complete-all", "yes")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let vid = hv(&r, "x-oss-version-id").expect("a version id in a versioned bucket");
    assert_eq!(hv(&r, "etag").unwrap(), multipart_etag(&[&p1, &p2]));
    assert_eq!(get(&e, "vbkt", "all").await, [p1, p2].concat());
    let r = Req::new("HEAD", "vbkt", "all").send(&e).await;
    assert_eq!(hv(&r, "x-oss-version-id"), Some(vid));
    assert!(e.open_uploads().is_empty());
    e.shutdown().await;
}

#[tokio::test]
async fn multipart_errors() {
    let e = start().await;
    let id = initiate(&e, "bkt", "k", &[]).await;
    for bad in ["0", "10001", "x", ""] {
        let r = Req::new("PUT", "bkt", "k")
            .q("partNumber", bad)
            .q("uploadId", &id)
            .body(b"abc")
            .send(&e)
            .await;
        assert_eq!(
            error_code(r).await,
            (400, "InvalidArgument".into()),
            "partNumber={bad}"
        );
    }
    upload_part(&e, "bkt", "k", &id, 10000, b"max").await;
    let r = Req::new("PUT", "bkt", "k")
        .q("partNumber", "1")
        .q("uploadId", &id)
        .h("content-md5", &md5_b64(b"other"))
        .body(b"abc")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (400, "InvalidDigest".into()));
    // Unknown upload ID, and an upload ID used with another key.
    for (key, uid) in [("k", "NOPE"), ("other", id.as_str())] {
        let r = Req::new("PUT", "bkt", key)
            .q("partNumber", "1")
            .q("uploadId", uid)
            .body(b"abc")
            .send(&e)
            .await;
        assert_eq!(error_code(r).await, (404, "NoSuchUpload".into()));
        let r = Req::new("GET", "bkt", key)
            .q("uploadId", uid)
            .send(&e)
            .await;
        assert_eq!(error_code(r).await, (404, "NoSuchUpload".into()));
        let r = Req::new("DELETE", "bkt", key)
            .q("uploadId", uid)
            .send(&e)
            .await;
        assert_eq!(error_code(r).await, (404, "NoSuchUpload".into()));
        let (s, code) = error_code(complete(&e, "bkt", key, uid, &[(1, "x")]).await).await;
        assert_eq!((s, code.as_str()), (404, "NoSuchUpload"));
    }
    let small = data(10 * KB, 1);
    let big = data(100 * KB, 2);
    let s1 = upload_part(&e, "bkt", "k", &id, 1, &small).await;
    let b2 = upload_part(&e, "bkt", "k", &id, 2, &big).await;
    let b3 = upload_part(&e, "bkt", "k", &id, 3, &big).await;
    let cases: Vec<(Vec<(u32, &str)>, &str)> = vec![
        (vec![(2, &b2), (1, &s1)], "InvalidPartOrder"),
        (vec![(2, &b2), (2, &b2)], "InvalidPartOrder"),
        (vec![(2, &b2), (4, &b3)], "InvalidPart"),
        (
            vec![(2, &b2), (3, "\"0123456789ABCDEF0123456789ABCDEF\"")],
            "InvalidPart",
        ),
        (vec![(1, &s1), (2, &b2)], "EntityTooSmall"),
    ];
    for (parts, want) in cases {
        let (s, code) = error_code(complete(&e, "bkt", "k", &id, &parts).await).await;
        assert_eq!((s, code.as_str()), (400, want), "{parts:?}");
    }
    for body in [
        &b"not xml"[..],
        b"<Other/>",
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"",
    ] {
        let r = Req::new("POST", "bkt", "k")
            .q("uploadId", &id)
            .body(body)
            .send(&e)
            .await;
        assert_eq!(error_code(r).await, (400, "MalformedXML".into()));
    }
    // The upload survived every refused Complete; forbid-overwrite refuses an existing key.
    let r = Req::new("PUT", "bkt", "k").body(b"exists").send(&e).await;
    assert_eq!(r.status(), 200);
    let r = Req::new("POST", "bkt", "k")
        .q("uploadId", &id)
        .h("x-oss-forbid-overwrite", "true")
        .body(&complete_xml(&[(2, &b2), (3, &b3)]))
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (409, "FileAlreadyExists".into()));
    assert_eq!(get(&e, "bkt", "k").await, b"exists");
    // Abort: 204, then NoSuchUpload.
    let r = Req::new("DELETE", "bkt", "k")
        .q("uploadId", &id)
        .send(&e)
        .await;
    assert_eq!(r.status(), 204);
    let r = Req::new("DELETE", "bkt", "k")
        .q("uploadId", &id)
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (404, "NoSuchUpload".into()));
    assert!(e.open_uploads().is_empty());
    e.shutdown().await;
}

#[tokio::test]
async fn list_parts_pages_and_list_uploads() {
    let e = start().await;
    let id = initiate(&e, "bkt", "a/x y", &[("x-oss-storage-class", "IA")]).await;
    let mut etags = Vec::new();
    for n in 1..=5u32 {
        etags.push(upload_part(&e, "bkt", "a/x y", &id, n, &data(n as usize * 10, n as u8)).await);
    }
    let mut seen = Vec::new();
    let mut marker = "0".to_owned();
    loop {
        let r = Req::new("GET", "bkt", "a/x y")
            .q("uploadId", &id)
            .q("max-parts", "2")
            .q("part-number-marker", &marker)
            .v1()
            .send(&e)
            .await;
        assert_eq!(r.status(), 200);
        let t = r.text().await.unwrap();
        assert_eq!(xml_values(&t, "MaxParts"), vec!["2"]);
        assert_eq!(xml_values(&t, "PartNumberMarker"), vec![marker.clone()]);
        let numbers = xml_values(&t, "PartNumber");
        let sizes = xml_values(&t, "Size");
        let crcs = xml_values(&t, "HashCrc64ecma");
        assert_eq!(xml_values(&t, "LastModified").len(), numbers.len());
        for ((n, size), crc) in numbers.iter().zip(&sizes).zip(&crcs) {
            let n: u32 = n.parse().unwrap();
            assert_eq!(size, &(n * 10).to_string());
            assert_eq!(crc, &crc64(&data(n as usize * 10, n as u8)).to_string());
        }
        seen.extend(xml_values(&t, "ETag"));
        if xml_values(&t, "IsTruncated") == vec!["false"] {
            break;
        }
        marker = xml_values(&t, "NextPartNumberMarker").remove(0);
    }
    assert_eq!(seen, etags);
    // ListMultipartUploads, with prefix and encoding-type=url.
    let id2 = initiate(&e, "bkt", "b/other", &[]).await;
    let r = Req::new("GET", "bkt", "").q("uploads", "").send(&e).await;
    assert_eq!(r.status(), 200);
    let t = r.text().await.unwrap();
    assert!(t.contains("<ListMultipartUploadsResult>"), "{t}");
    assert_eq!(xml_values(&t, "UploadId"), vec![id.clone(), id2.clone()]);
    assert_eq!(xml_values(&t, "Initiated").len(), 2);
    let r = Req::new("GET", "bkt", "")
        .q("uploads", "")
        .q("prefix", "a/")
        .q("encoding-type", "url")
        .v1()
        .send(&e)
        .await;
    let t = r.text().await.unwrap();
    assert_eq!(xml_values(&t, "UploadId"), vec![id.clone()]);
    assert_eq!(xml_values(&t, "Key"), vec!["a%2Fx%20y"]);
    let r = Req::new("GET", "bkt", "")
        .q("uploads", "")
        .q("max-uploads", "1")
        .send(&e)
        .await;
    let t = r.text().await.unwrap();
    assert_eq!(xml_values(&t, "IsTruncated"), vec!["true"]);
    assert_eq!(xml_values(&t, "NextKeyMarker"), vec!["a/x y"]);
    e.shutdown().await;
}

#[tokio::test]
async fn upload_part_copy_ranges_from_a_versioned_source() {
    let e = start().await;
    let old = data(200 * KB, 9);
    let r = Req::new("PUT", "vbkt", "src").body(&old).send(&e).await;
    let v1 = hv(&r, "x-oss-version-id").unwrap();
    let r = Req::new("PUT", "vbkt", "src")
        .body(b"newer data")
        .send(&e)
        .await;
    let v2 = hv(&r, "x-oss-version-id").unwrap();
    assert_ne!(v1, v2);
    let id = initiate(&e, "bkt", "dst", &[]).await;
    let copy = |n: u32| {
        Req::new("PUT", "bkt", "dst")
            .q("partNumber", &n.to_string())
            .q("uploadId", &id)
    };
    // Part 1: the first 100 KiB of the OLD version.
    let r = copy(1)
        .h(
            "x-oss-copy-source",
            &format!("/vbkt/src?versionId={}", uri_encode(&v1, false)),
        )
        .h(
            "x-oss-copy-source-range",
            &format!("bytes=0-{}", 100 * KB - 1),
        )
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "x-oss-copy-source-version-id"), Some(v1.clone()));
    let e1 = hv(&r, "etag").unwrap();
    assert_eq!(e1, format!("\"{}\"", md5_hex(&old[..100 * KB])));
    let t = r.text().await.unwrap();
    assert_eq!(xml_values(&t, "ETag"), vec![e1.clone()]);
    assert_eq!(xml_values(&t, "LastModified").len(), 1);
    // Part 2: the current version, whole.
    let r = copy(2).h("x-oss-copy-source", "/vbkt/src").send(&e).await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "x-oss-copy-source-version-id"), Some(v2));
    let e2 = hv(&r, "etag").unwrap();
    // Preconditions and bad ranges.
    let src_etag = format!("\"{}\"", md5_hex(b"newer data"));
    let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    let earlier = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    for (name, value) in [
        ("x-oss-copy-source-if-match", "\"0000\""),
        ("x-oss-copy-source-if-none-match", src_etag.as_str()),
        ("x-oss-copy-source-if-modified-since", later.as_str()),
        ("x-oss-copy-source-if-unmodified-since", earlier.as_str()),
    ] {
        let r = copy(3)
            .h("x-oss-copy-source", "/vbkt/src")
            .h(name, value)
            .send(&e)
            .await;
        assert_eq!(
            error_code(r).await,
            (412, "PreconditionFailed".into()),
            "{name}"
        );
    }
    let r = copy(3)
        .h("x-oss-copy-source", "/vbkt/src")
        .h("x-oss-copy-source-if-match", &src_etag)
        .h("x-oss-copy-source-range", "bytes=100-200")
        .send(&e)
        .await;
    assert_eq!(r.status().as_u16(), 416);
    let r = copy(3)
        .h("x-oss-copy-source", "/vbkt/missing")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (404, "NoSuchKey".into()));
    let r = complete(&e, "bkt", "dst", &id, &[(1, &e1), (2, &e2)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        get(&e, "bkt", "dst").await,
        [&old[..100 * KB], b"newer data"].concat()
    );
    e.shutdown().await;
}

/// Sends raw bytes, shuts down the write side, then reads the reply.
async fn raw_exchange(e: &EmulatorHandle, bytes: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(e.addr()).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn incomplete_part_and_append_bodies_store_nothing() {
    let e = start().await;
    let id = initiate(&e, "bkt", "cut", &[]).await;
    for (method, query) in [
        (
            "PUT",
            vec![
                ("partNumber".to_owned(), "1".to_owned()),
                ("uploadId".to_owned(), id.clone()),
            ],
        ),
        (
            "POST",
            vec![
                ("append".to_owned(), String::new()),
                ("position".to_owned(), "0".to_owned()),
            ],
        ),
    ] {
        let mut headers = Vec::new();
        sign::sign_request(
            SignatureVersion::V4,
            method,
            Some("bkt"),
            Some("cut"),
            &query,
            &mut headers,
            &creds(),
            "cn-hangzhou",
            SystemTime::now(),
        );
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        let mut raw = format!(
            "{method} /bkt/cut?{} HTTP/1.1\r\nhost: {}\r\ncontent-length: 100\r\n",
            q.join("&"),
            e.addr()
        );
        for (k, v) in &headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\nonly ten b");
        let _ = raw_exchange(&e, raw.as_bytes()).await;
    }
    let r = Req::new("GET", "bkt", "cut")
        .q("uploadId", &id)
        .send(&e)
        .await;
    let t = r.text().await.unwrap();
    assert!(xml_values(&t, "PartNumber").is_empty(), "{t}");
    let r = Req::new("GET", "bkt", "cut").send(&e).await;
    assert_eq!(error_code(r).await, (404, "NoSuchKey".into()));
    e.shutdown().await;
}

async fn append(
    e: &EmulatorHandle,
    bucket: &str,
    key: &str,
    pos: u64,
    body: &[u8],
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = Req::new("POST", bucket, key)
        .q("append", "")
        .q("position", &pos.to_string())
        .body(body);
    for (k, v) in extra {
        r = r.h(k, v);
    }
    r.send(e).await
}

#[tokio::test]
async fn append_flows() {
    let e = start().await;
    let r = append(
        &e,
        "bkt",
        "log",
        0,
        b"hello",
        &[
            ("x-oss-tagging", "t=1"),
            ("x-oss-meta-m", "first"),
            ("content-type", "text/plain"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "x-oss-next-append-position").as_deref(), Some("5"));
    assert_eq!(
        hv(&r, "x-oss-hash-crc64ecma").unwrap(),
        crc64(b"hello").to_string()
    );
    // Wrong position: 409 with the position to use.
    for pos in [0, 4, 6] {
        let r = append(&e, "bkt", "log", pos, b"x", &[]).await;
        assert_eq!(hv(&r, "x-oss-next-append-position").as_deref(), Some("5"));
        assert_eq!(
            error_code(r).await,
            (409, "PositionNotEqualToLength".into())
        );
    }
    // Later appends ignore tags, metadata and content type; Content-MD5 covers the appended bytes.
    let r = append(
        &e,
        "bkt",
        "log",
        5,
        b" world",
        &[
            ("x-oss-tagging", "t=2&u=3"),
            ("x-oss-meta-m", "second"),
            ("content-md5", &md5_b64(b" world")),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "x-oss-next-append-position").as_deref(), Some("11"));
    assert_eq!(
        hv(&r, "x-oss-hash-crc64ecma").unwrap(),
        crc64(b"hello world").to_string()
    );
    let r = append(
        &e,
        "bkt",
        "log",
        11,
        b"!",
        &[("content-md5", &md5_b64(b"?"))],
    )
    .await;
    assert_eq!(error_code(r).await, (400, "InvalidDigest".into()));
    assert_eq!(get(&e, "bkt", "log").await, b"hello world");
    let r = Req::new("HEAD", "bkt", "log").send(&e).await;
    assert_eq!(hv(&r, "x-oss-object-type").as_deref(), Some("Appendable"));
    assert_eq!(hv(&r, "x-oss-next-append-position").as_deref(), Some("11"));
    assert_eq!(hv(&r, "x-oss-meta-m").as_deref(), Some("first"));
    assert_eq!(hv(&r, "content-type").as_deref(), Some("text/plain"));
    assert_eq!(
        get_tags(&e, "bkt", "log").await,
        vec![("t".into(), "1".into())]
    );
    // Missing position, bad position, non-appendable objects, a new key at a non-zero position.
    let r = Req::new("POST", "bkt", "log")
        .q("append", "")
        .body(b"x")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (400, "MissingArgument".into()));
    let r = Req::new("POST", "bkt", "log")
        .q("append", "")
        .q("position", "x")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (400, "InvalidArgument".into()));
    Req::new("PUT", "bkt", "normal").body(b"n").send(&e).await;
    let r = append(&e, "bkt", "normal", 1, b"x", &[]).await;
    assert_eq!(error_code(r).await, (409, "ObjectNotAppendable".into()));
    let id = initiate(&e, "bkt", "mp", &[]).await;
    let et = upload_part(&e, "bkt", "mp", &id, 1, b"m").await;
    assert_eq!(
        complete(&e, "bkt", "mp", &id, &[(1, &et)]).await.status(),
        200
    );
    let r = append(&e, "bkt", "mp", 1, b"x", &[]).await;
    assert_eq!(error_code(r).await, (409, "ObjectNotAppendable".into()));
    let r = append(&e, "bkt", "fresh", 3, b"x", &[]).await;
    assert_eq!(hv(&r, "x-oss-next-append-position").as_deref(), Some("0"));
    assert_eq!(
        error_code(r).await,
        (409, "PositionNotEqualToLength".into())
    );
    // Versioned: appends keep the version ID; after a delete marker position 0 starts anew.
    let r = append(&e, "vbkt", "vlog", 0, b"a", &[]).await;
    let vid = hv(&r, "x-oss-version-id").unwrap();
    let r = append(&e, "vbkt", "vlog", 1, b"b", &[]).await;
    assert_eq!(hv(&r, "x-oss-version-id"), Some(vid.clone()));
    Req::new("DELETE", "vbkt", "vlog").send(&e).await;
    let r = append(&e, "vbkt", "vlog", 0, b"c", &[]).await;
    assert_eq!(r.status(), 200);
    assert_ne!(hv(&r, "x-oss-version-id"), Some(vid));
    assert_eq!(get(&e, "vbkt", "vlog").await, b"c");
    e.shutdown().await;
}

async fn put_source(e: &EmulatorHandle, key: &str) {
    let r = Req::new("PUT", "bkt", key)
        .h("x-oss-tagging", "s=1&k=v")
        .h("x-oss-meta-origin", "src")
        .h("content-type", "text/csv")
        .body(b"source bytes")
        .send(e)
        .await;
    assert_eq!(r.status(), 200);
}

async fn head(e: &EmulatorHandle, bucket: &str, key: &str) -> reqwest::Response {
    Req::new("HEAD", bucket, key).send(e).await
}

#[tokio::test]
async fn copy_object_directives() {
    let e = start().await;
    put_source(&e, "src").await;
    let src_etag = format!("\"{}\"", md5_hex(b"source bytes"));
    // Defaults: COPY + Copy. ali-oss's extra x-oss-copy-source-* header is ignored.
    let r = Req::new("PUT", "bkt", "c1")
        .h("x-oss-copy-source", "/bkt/src")
        .h("x-oss-copy-source-x-oss-tagging-directive", "Replace")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "etag"), Some(src_etag.clone()));
    assert_eq!(
        hv(&r, "x-oss-hash-crc64ecma").unwrap(),
        crc64(b"source bytes").to_string()
    );
    let t = r.text().await.unwrap();
    assert_eq!(xml_values(&t, "ETag"), vec![src_etag.clone()]);
    assert_eq!(xml_values(&t, "LastModified").len(), 1);
    assert_eq!(get(&e, "bkt", "c1").await, b"source bytes");
    let h = head(&e, "bkt", "c1").await;
    assert_eq!(hv(&h, "x-oss-meta-origin").as_deref(), Some("src"));
    assert_eq!(hv(&h, "content-type").as_deref(), Some("text/csv"));
    assert_eq!(get_tags(&e, "bkt", "c1").await.len(), 2);
    // REPLACE + Replace (lower-case values work).
    let r = Req::new("PUT", "bkt", "c2")
        .h("x-oss-copy-source", "/bkt/src")
        .h("x-oss-metadata-directive", "replace")
        .h("x-oss-tagging-directive", "REPLACE")
        .h("x-oss-tagging", "x=9")
        .h("x-oss-meta-new", "n")
        .h("x-oss-storage-class", "IA")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let h = head(&e, "bkt", "c2").await;
    assert_eq!(hv(&h, "x-oss-meta-origin"), None);
    assert_eq!(hv(&h, "x-oss-meta-new").as_deref(), Some("n"));
    // OSS keeps the source's Content-Type when REPLACE sends none.
    assert_eq!(hv(&h, "content-type").as_deref(), Some("text/csv"));
    assert_eq!(hv(&h, "x-oss-storage-class").as_deref(), Some("IA"));
    assert_eq!(
        get_tags(&e, "bkt", "c2").await,
        vec![("x".into(), "9".into())]
    );
    // REPLACE keeps the client-side-encryption envelope (a value sent with the copy wins).
    let r = Req::new("PUT", "bkt", "cse")
        .h("x-oss-meta-client-side-encryption-key", "a2V5")
        .h("x-oss-meta-client-side-encryption-start", "c3RhcnQ=")
        .h(
            "x-oss-meta-client-side-encryption-cek-alg",
            "AES/CTR/NoPadding",
        )
        .h("x-oss-meta-origin", "src")
        .body(b"ciphertext")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let r = Req::new("PUT", "bkt", "cse-copy")
        .h("x-oss-copy-source", "/bkt/cse")
        .h("x-oss-metadata-directive", "REPLACE")
        .h("x-oss-meta-client-side-encryption-start", "bmV3")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let h = head(&e, "bkt", "cse-copy").await;
    assert_eq!(hv(&h, "x-oss-meta-origin"), None);
    for (name, want) in [
        ("x-oss-meta-client-side-encryption-key", "a2V5"),
        ("x-oss-meta-client-side-encryption-start", "bmV3"),
        (
            "x-oss-meta-client-side-encryption-cek-alg",
            "AES/CTR/NoPadding",
        ),
    ] {
        assert_eq!(hv(&h, name).as_deref(), Some(want), "{name}");
    }
    // Replace with an empty x-oss-tagging (and without one) clears the tags.
    for tagging in [Some(""), None] {
        let mut r = Req::new("PUT", "bkt", "c3")
            .h("x-oss-copy-source", "/bkt/src")
            .h("x-oss-tagging-directive", "Replace");
        if let Some(t) = tagging {
            r = r.h("x-oss-tagging", t);
        }
        assert_eq!(r.send(&e).await.status(), 200);
        assert!(get_tags(&e, "bkt", "c3").await.is_empty());
        assert_eq!(
            hv(&head(&e, "bkt", "c3").await, "x-oss-meta-origin").as_deref(),
            Some("src")
        );
    }
    // Bad directive values.
    for name in ["x-oss-metadata-directive", "x-oss-tagging-directive"] {
        let r = Req::new("PUT", "bkt", "c4")
            .h("x-oss-copy-source", "/bkt/src")
            .h(name, "MOVE")
            .send(&e)
            .await;
        assert_eq!(error_code(r).await, (400, "InvalidArgument".into()));
    }
    // In place: REPLACE rewrites metadata, keeps data, ETag and (tagging Copy) tags.
    let r = Req::new("PUT", "bkt", "src")
        .h("x-oss-copy-source", "/bkt/src")
        .h("x-oss-metadata-directive", "REPLACE")
        .h("x-oss-meta-edited", "yes")
        .h("content-type", "application/json")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "etag"), Some(src_etag.clone()));
    let h = head(&e, "bkt", "src").await;
    assert_eq!(hv(&h, "x-oss-meta-edited").as_deref(), Some("yes"));
    assert_eq!(hv(&h, "x-oss-meta-origin"), None);
    assert_eq!(hv(&h, "content-type").as_deref(), Some("application/json"));
    assert_eq!(get(&e, "bkt", "src").await, b"source bytes");
    assert_eq!(get_tags(&e, "bkt", "src").await.len(), 2);
    // forbid-overwrite.
    let r = Req::new("PUT", "bkt", "c1")
        .h("x-oss-copy-source", "/bkt/src")
        .h("x-oss-forbid-overwrite", "true")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (409, "FileAlreadyExists".into()));
    // Missing source, bad header.
    let r = Req::new("PUT", "bkt", "c5")
        .h("x-oss-copy-source", "/bkt/none")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (404, "NoSuchKey".into()));
    let r = Req::new("PUT", "bkt", "c5")
        .h("x-oss-copy-source", "/bkt")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (400, "InvalidArgument".into()));
    let r = Req::new("PUT", "bkt", "c5")
        .h("x-oss-copy-source", "/nobucket/k")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (404, "NoSuchBucket".into()));
    e.shutdown().await;
}

#[tokio::test]
async fn copy_object_sources_preconditions_and_symlinks() {
    let e = start().await;
    put_source(&e, "src").await;
    let src_etag = format!("\"{}\"", md5_hex(b"source bytes"));
    let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    let earlier = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    for (name, value) in [
        ("x-oss-copy-source-if-match", "\"0000\""),
        ("x-oss-copy-source-if-none-match", src_etag.as_str()),
        ("x-oss-copy-source-if-modified-since", later.as_str()),
        ("x-oss-copy-source-if-unmodified-since", earlier.as_str()),
    ] {
        let r = Req::new("PUT", "bkt", "p")
            .h("x-oss-copy-source", "/bkt/src")
            .h(name, value)
            .send(&e)
            .await;
        assert_eq!(
            error_code(r).await,
            (412, "PreconditionFailed".into()),
            "{name}"
        );
    }
    let r = Req::new("PUT", "bkt", "p")
        .h("x-oss-copy-source", "/bkt/src")
        .h("x-oss-copy-source-if-match", &src_etag)
        .h("x-oss-copy-source-if-none-match", "\"other\"")
        .h("x-oss-copy-source-if-modified-since", &earlier)
        .h("x-oss-copy-source-if-unmodified-since", &later)
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    // A symlink is copied as a link.
    let r = Req::new("PUT", "bkt", "link")
        .q("symlink", "")
        .h("x-oss-symlink-target", "src")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let r = Req::new("PUT", "bkt", "link2")
        .h("x-oss-copy-source", "/bkt/link")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let r = Req::new("GET", "bkt", "link2")
        .q("symlink", "")
        .send(&e)
        .await;
    assert_eq!(hv(&r, "x-oss-symlink-target").as_deref(), Some("src"));
    assert_eq!(get(&e, "bkt", "link2").await, b"source bytes");
    // Versioned source and destination; keys with '/' and spaces, encoded either way.
    Req::new("PUT", "vbkt", "dir/a b")
        .body(b"one")
        .send(&e)
        .await;
    let r = Req::new("PUT", "vbkt", "dir/a b")
        .body(b"two")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let r = Req::new("GET", "vbkt", "").q("uploads", "").send(&e).await;
    assert_eq!(r.status(), 200);
    let r = Req::new("HEAD", "vbkt", "dir/a b").send(&e).await;
    let current = hv(&r, "x-oss-version-id").unwrap();
    let r = Req::new("PUT", "vbkt", "copy")
        .h("x-oss-copy-source", "/vbkt/dir%2Fa%20b")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        hv(&r, "x-oss-copy-source-version-id"),
        Some(current.clone())
    );
    let dest_vid = hv(&r, "x-oss-version-id").unwrap();
    assert_ne!(dest_vid, current);
    assert_eq!(get(&e, "vbkt", "copy").await, b"two");
    // Appendable sources are refused.
    append(&e, "bkt", "app", 0, b"a", &[]).await;
    let r = Req::new("PUT", "bkt", "c")
        .h("x-oss-copy-source", "/bkt/app")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await.0, 400);
    e.shutdown().await;
}

#[tokio::test]
async fn copy_from_an_old_version() {
    let e = start().await;
    let r = Req::new("PUT", "vbkt", "k").body(b"first").send(&e).await;
    let v1 = hv(&r, "x-oss-version-id").unwrap();
    Req::new("PUT", "vbkt", "k").body(b"second").send(&e).await;
    let r = Req::new("PUT", "bkt", "restored")
        .h(
            "x-oss-copy-source",
            &format!("/vbkt/k?versionId={}", uri_encode(&v1, false)),
        )
        .v1()
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "x-oss-copy-source-version-id"), Some(v1));
    assert_eq!(hv(&r, "x-oss-version-id"), None);
    assert_eq!(get(&e, "bkt", "restored").await, b"first");
    let r = Req::new("PUT", "bkt", "x")
        .h("x-oss-copy-source", "/vbkt/k?versionId=nope")
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (404, "NoSuchVersion".into()));
    e.shutdown().await;
}

#[tokio::test]
async fn faults_behave_as_declared() {
    let e = start().await;
    let id = initiate(&e, "bkt", "f", &[]).await;
    let part = |n: u32| {
        Req::new("PUT", "bkt", "f")
            .q("partNumber", &n.to_string())
            .q("uploadId", &id)
            .body(b"data")
    };
    e.faults().inject(Fault {
        op: FaultOp::UploadPart,
        kind: FaultKind::Status(503, "ServiceUnavailable"),
        times: 2,
    });
    assert_eq!(e.faults().pending(), 2);
    // Other operations are not affected.
    assert_eq!(
        Req::new("PUT", "bkt", "plain")
            .body(b"p")
            .send(&e)
            .await
            .status(),
        200
    );
    for _ in 0..2 {
        assert_eq!(
            error_code(part(1).send(&e).await).await,
            (503, "ServiceUnavailable".into())
        );
    }
    assert_eq!(part(1).send(&e).await.status(), 200);
    assert_eq!(e.faults().pending(), 0);
    assert_eq!(e.faults().count(FaultOp::UploadPart), 3);
    assert_eq!(e.faults().count(FaultOp::PutObject), 1);
    assert_eq!(e.faults().count(FaultOp::InitiateMultipartUpload), 1);
    // Delay: slow, then normal.
    e.faults().inject(Fault {
        op: FaultOp::ListParts,
        kind: FaultKind::Delay(Duration::from_millis(300)),
        times: 1,
    });
    let t = std::time::Instant::now();
    let r = Req::new("GET", "bkt", "f")
        .q("uploadId", &id)
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    // DropConnection: no response at all, and nothing stored.
    e.faults().inject(Fault {
        op: FaultOp::UploadPart,
        kind: FaultKind::DropConnection,
        times: 1,
    });
    assert!(part(2).try_send(&e).await.is_err());
    // On the wire: not one byte of a response.
    e.faults().inject(Fault {
        op: FaultOp::GetObject,
        kind: FaultKind::DropConnection,
        times: 1,
    });
    let raw = raw_exchange(&e, b"GET /bkt/plain HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(raw, "");
    let r = Req::new("GET", "bkt", "f")
        .q("uploadId", &id)
        .send(&e)
        .await;
    assert_eq!(
        xml_values(&r.text().await.unwrap(), "PartNumber"),
        vec!["1"]
    );
    // Any matches every operation; faulted requests are still counted.
    e.faults().reset_counts();
    e.faults().inject(Fault {
        op: FaultOp::Any,
        kind: FaultKind::Status(500, "InternalError"),
        times: 1,
    });
    let r = Req::new("GET", "bkt", "plain").send(&e).await;
    assert_eq!(error_code(r).await, (500, "InternalError".into()));
    assert_eq!(get(&e, "bkt", "plain").await, b"p");
    assert_eq!(e.faults().count(FaultOp::GetObject), 2);
    assert_eq!(e.faults().count(FaultOp::Any), 2);
    e.faults().inject(Fault {
        op: FaultOp::GetObject,
        kind: FaultKind::Status(503, "SlowDown"),
        times: 5,
    });
    e.faults().clear();
    assert_eq!(get(&e, "bkt", "plain").await, b"p");
    e.shutdown().await;
}

#[tokio::test]
async fn open_uploads_survive_a_restart_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.data_dir = Some(dir.path().to_owned());
    let e = emulator::start(c.clone()).await.unwrap();
    let id = initiate(&e, "bkt", "durable", &[("x-oss-meta-k", "v")]).await;
    let p1 = data(100 * KB, 4);
    let e1 = upload_part(&e, "bkt", "durable", &id, 1, &p1).await;
    upload_part(&e, "bkt", "durable", &id, 2, b"first try").await;
    let e2 = upload_part(&e, "bkt", "durable", &id, 2, b"tail").await;
    let aborted = initiate(&e, "bkt", "gone", &[]).await;
    upload_part(&e, "bkt", "gone", &aborted, 1, b"x").await;
    let r = Req::new("DELETE", "bkt", "gone")
        .q("uploadId", &aborted)
        .send(&e)
        .await;
    assert_eq!(r.status(), 204);
    e.shutdown().await;
    let parts_dir = dir.path().join("uploads").join("parts");
    assert_eq!(
        std::fs::read_dir(&parts_dir).unwrap().count(),
        2,
        "replaced and aborted parts are removed"
    );

    let e = emulator::start(c.clone()).await.unwrap();
    assert_eq!(
        e.open_uploads(),
        vec![("bkt".into(), "durable".into(), id.clone())]
    );
    let r = complete(&e, "bkt", "durable", &id, &[(1, &e1), (2, &e2)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        get(&e, "bkt", "durable").await,
        [p1.as_slice(), b"tail"].concat()
    );
    assert!(e.open_uploads().is_empty());
    assert_eq!(std::fs::read_dir(&parts_dir).unwrap().count(), 0);
    append(&e, "bkt", "app", 0, b"ab", &[]).await;
    append(&e, "bkt", "app", 2, b"cd", &[]).await;
    e.shutdown().await;

    let e = emulator::start(c).await.unwrap();
    assert!(e.open_uploads().is_empty());
    assert_eq!(get(&e, "bkt", "durable").await.len(), 100 * KB + 4);
    let r = append(&e, "bkt", "app", 4, b"ef", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(get(&e, "bkt", "app").await, b"abcdef");
    e.shutdown().await;
}

/// A completed upload is its parts' data as they are (no copy at Complete): reads of any
/// range, UploadPartCopy and CopyObject see one run of bytes, in memory and on disk, and
/// overwriting or deleting the object removes its data.
async fn composed_object_reads_as_one(e: &EmulatorHandle, blobs: Option<&std::path::Path>) {
    let parts = [data(100 * KB + 7, 1), data(100 * KB, 2), data(3 * KB, 3)];
    let whole = parts.concat();
    let id = initiate(e, "bkt", "composed", &[]).await;
    let mut etags = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        etags.push(upload_part(e, "bkt", "composed", &id, i as u32 + 1, p).await);
    }
    let listed: Vec<(u32, &str)> = etags
        .iter()
        .enumerate()
        .map(|(i, t)| (i as u32 + 1, t.as_str()))
        .collect();
    let r = complete(e, "bkt", "composed", &id, &listed).await;
    assert_eq!(r.status(), 200);
    let crc = crc64(&whole).to_string();
    assert_eq!(
        hv(&r, "x-oss-hash-crc64ecma").as_deref(),
        Some(crc.as_str())
    );
    assert_eq!(get(e, "bkt", "composed").await, whole);
    let h = head(e, "bkt", "composed").await;
    assert_eq!(
        hv(&h, "x-oss-hash-crc64ecma").as_deref(),
        Some(crc.as_str())
    );
    assert_eq!(
        hv(&h, "content-length").as_deref(),
        Some(whole.len().to_string().as_str())
    );
    // Ranges inside one part, across a boundary, across all three, and the tail.
    let b1 = parts[0].len();
    let b2 = b1 + parts[1].len();
    for (a, z) in [
        (5, 99),
        (b1 - 10, b1 + 10),
        (b1, b1),
        (b1 - 1, b2 + 1),
        (3, whole.len() - 3),
        (b2, whole.len() - 1),
    ] {
        let r = Req::new("GET", "bkt", "composed")
            .h("range", &format!("bytes={a}-{z}"))
            .send(e)
            .await;
        assert_eq!(r.status(), 206, "bytes={a}-{z}");
        assert_eq!(r.bytes().await.unwrap(), &whole[a..=z], "bytes={a}-{z}");
    }
    // UploadPartCopy of a range across a boundary, and a whole-object CopyObject.
    let id2 = initiate(e, "bkt", "copied-parts", &[]).await;
    let r = Req::new("PUT", "bkt", "copied-parts")
        .q("partNumber", "1")
        .q("uploadId", &id2)
        .h("x-oss-copy-source", "/bkt/composed")
        .h(
            "x-oss-copy-source-range",
            &format!("bytes={}-{}", b1 - 100, b2 + 50),
        )
        .send(e)
        .await;
    assert_eq!(r.status(), 200);
    let t = xml_values(&r.text().await.unwrap(), "ETag").remove(0);
    let r = complete(e, "bkt", "copied-parts", &id2, &[(1, &t)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        get(e, "bkt", "copied-parts").await,
        &whole[b1 - 100..=b2 + 50]
    );
    let r = Req::new("PUT", "bkt", "copy")
        .h("x-oss-copy-source", "/bkt/composed")
        .send(e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(get(e, "bkt", "copy").await, whole);
    // Overwriting and deleting remove the composed data (two composed blobs so far:
    // "composed" and "copied-parts").
    let dirs = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|f| f.as_ref().unwrap().file_type().unwrap().is_dir())
            .count()
    };
    let count = |dir: &std::path::Path| std::fs::read_dir(dir).unwrap().count();
    let before = blobs.map(count);
    assert_eq!(blobs.map(dirs), blobs.map(|_| 2));
    let r = Req::new("PUT", "bkt", "composed")
        .body(b"small")
        .send(e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(get(e, "bkt", "composed").await, b"small");
    assert_eq!(blobs.map(count), before, "the composed blob was replaced");
    assert_eq!(blobs.map(dirs), blobs.map(|_| 1));
    for key in ["composed", "copied-parts", "copy"] {
        let r = Req::new("DELETE", "bkt", key).send(e).await;
        assert_eq!(r.status(), 204);
    }
    if let Some(dir) = blobs {
        assert_eq!(count(dir), 0);
    }
}

#[tokio::test]
async fn composed_object_reads_as_one_in_memory() {
    let e = start().await;
    composed_object_reads_as_one(&e, None).await;
    e.shutdown().await;
}

#[tokio::test]
async fn composed_object_reads_as_one_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.data_dir = Some(dir.path().to_owned());
    let e = emulator::start(c).await.unwrap();
    composed_object_reads_as_one(&e, Some(&dir.path().join("blobs"))).await;
    e.shutdown().await;
}

/// Parts are not fsynced when uploaded: one damaged by a crash is dropped at start (never
/// used), intact ones stay; unreferenced data (a composed blob whose commit never happened,
/// temp files and directories) is removed.
#[tokio::test]
async fn restart_drops_damaged_parts_and_unreferenced_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.data_dir = Some(dir.path().to_owned());
    let e = emulator::start(c.clone()).await.unwrap();
    let id = initiate(&e, "bkt", "crashy", &[]).await;
    let p1 = data(100 * KB, 5);
    let e1 = upload_part(&e, "bkt", "crashy", &id, 1, &p1).await;
    upload_part(&e, "bkt", "crashy", &id, 2, &data(100 * KB, 6)).await;
    upload_part(&e, "bkt", "crashy", &id, 3, &data(100 * KB, 7)).await;
    e.shutdown().await;

    // Damage part 2 (one byte changed) and cut part 3 short, as a crash might.
    let upload: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("uploads").join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    let file = |n: &str| {
        let data = upload["parts"][n]["data"].as_str().unwrap();
        dir.path().join("uploads").join("parts").join(data)
    };
    let mut bytes = std::fs::read(file("2")).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(file("2"), bytes).unwrap();
    std::fs::write(file("3"), &data(100 * KB, 7)[..50 * KB]).unwrap();
    // Leftovers of a Complete that crashed before its commit.
    let blobs = dir.path().join("blobs");
    for leftover in [".tmp-0123", "4567"] {
        std::fs::create_dir(blobs.join(leftover)).unwrap();
        std::fs::write(blobs.join(leftover).join("00000"), b"x").unwrap();
    }

    let e = emulator::start(c).await.unwrap();
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 0);
    let r = Req::new("GET", "bkt", "crashy")
        .q("uploadId", &id)
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let numbers = xml_values(&r.text().await.unwrap(), "PartNumber");
    assert_eq!(
        numbers,
        vec!["1".to_owned()],
        "only the intact part is listed"
    );
    assert!(!file("2").exists() && !file("3").exists());
    let r = complete(&e, "bkt", "crashy", &id, &[(1, &e1), (2, "\"AB\"")]).await;
    assert_eq!(error_code(r).await, (400, "InvalidPart".to_owned()));
    let r = complete(&e, "bkt", "crashy", &id, &[(1, &e1)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(get(&e, "bkt", "crashy").await, p1);
    e.shutdown().await;
}

/// OSS completes uploads of up to 10,000 parts: a CompleteMultipartUpload body listing all of
/// them, indented and with the quotes escaped as some SDKs send them (~1 MB), is read and
/// parsed (it fails only on the part that was never uploaded); a body beyond any legal list
/// is MalformedXML.
#[tokio::test]
async fn complete_reads_a_body_listing_10000_parts() {
    let e = start().await;
    let id = initiate(&e, "bkt", "k", &[]).await;
    let etag = upload_part(&e, "bkt", "k", &id, 1, &data(100 * KB, 1)).await;
    let mut body =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload>\n");
    for n in 1..=10_000u32 {
        let etag = etag.replace('"', "&quot;");
        body.push_str(&format!(
            "  <Part>\n    <PartNumber>{n}</PartNumber>\n    <ETag>{etag}</ETag>\n  </Part>\n"
        ));
    }
    body.push_str("</CompleteMultipartUpload>\n");
    assert!(body.len() > 1_000_000, "{}", body.len());
    let r = Req::new("POST", "bkt", "k")
        .q("uploadId", &id)
        .body(body.as_bytes())
        .send(&e)
        .await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, 400, "{text}");
    assert_eq!(xml_values(&text, "Code"), vec!["InvalidPart"], "{text}");
    assert_eq!(xml_values(&text, "PartNumber"), vec!["2"], "{text}");

    let padded = format!(
        "<CompleteMultipartUpload>{}<Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>",
        " ".repeat(3_000_000)
    );
    let r = Req::new("POST", "bkt", "k")
        .q("uploadId", &id)
        .body(padded.as_bytes())
        .send(&e)
        .await;
    assert_eq!(error_code(r).await, (400, "MalformedXML".into()));
    // Nothing was completed: the upload is still open and completes with its one part.
    let r = complete(&e, "bkt", "k", &id, &[(1, &etag)]).await;
    assert_eq!(r.status(), 200);
    e.shutdown().await;
}

/// ListParts returns the client-side-encryption envelope Initiate carried in
/// `x-oss-meta-client-side-encryption-*` (the SDKs' encryption clients resume from it).
#[tokio::test]
async fn list_parts_returns_the_client_side_encryption_envelope() {
    let e = start().await;
    let envelope = [
        ("key", "ClientEncryptionKey", "ZW5jcnlwdGVkIGtleQ=="),
        ("start", "ClientEncryptionStart", "aXY="),
        ("cek-alg", "ClientEncryptionCekAlg", "AES/CTR/NoPadding"),
        (
            "wrap-alg",
            "ClientEncryptionWrapAlg",
            "RSA/NONE/PKCS1Padding",
        ),
        ("data-size", "ClientEncryptionDataSize", "307200"),
        ("part-size", "ClientEncryptionPartSize", "102400"),
    ];
    let headers: Vec<(String, &str)> = envelope
        .iter()
        .map(|(name, _, value)| (format!("x-oss-meta-client-side-encryption-{name}"), *value))
        .collect();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let id = initiate(&e, "bkt", "cse", &headers).await;
    let r = Req::new("GET", "bkt", "cse")
        .q("uploadId", &id)
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let t = r.text().await.unwrap();
    for (_, element, value) in envelope {
        assert_eq!(xml_values(&t, element), vec![value], "{element}: {t}");
    }
    // Without the headers, no such elements.
    let id = initiate(&e, "bkt", "plain", &[]).await;
    let r = Req::new("GET", "bkt", "plain")
        .q("uploadId", &id)
        .send(&e)
        .await;
    let t = r.text().await.unwrap();
    assert!(!t.contains("ClientEncryption"), "{t}");
    e.shutdown().await;
}

/// OSS accepts keys with control characters (U+0001–U+001F, U+007F); listings return them
/// URL-encoded under `encoding-type=url`, since XML 1.0 cannot carry most of them.
#[tokio::test]
async fn keys_with_control_characters_are_legal() {
    let e = start().await;
    let key = "ctl/a\u{1}b\nc\td\u{1f}e\u{7f}";
    let r = Req::new("PUT", "bkt", key).body(b"x").send(&e).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = Req::new("GET", "bkt", key).send(&e).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"x");
    let r = Req::new("PUT", "bkt", key)
        .q("tagging", "")
        .body(b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let id = initiate(&e, "bkt", key, &[]).await;
    let r = Req::new("GET", "bkt", "")
        .q("uploads", "")
        .q("prefix", "ctl/")
        .q("encoding-type", "url")
        .send(&e)
        .await;
    let t = r.text().await.unwrap();
    assert_eq!(xml_values(&t, "UploadId"), vec![id]);
    assert_eq!(xml_values(&t, "Key"), vec!["ctl%2Fa%01b%0Ac%09d%1Fe%7F"]);
    // U+0000 stays refused.
    let r = Req::new("PUT", "bkt", "a\u{0}b").body(b"x").send(&e).await;
    assert_eq!(r.status(), 400);
    e.shutdown().await;
}

/// ListMultipartUploads pages by key, then upload ID (the order OSS's `upload-id-marker`
/// continues in), and a common prefix that ended a page is not listed again on the next.
#[tokio::test]
async fn list_uploads_pages_through_markers_and_common_prefixes() {
    let e = start().await;
    let mut expected = Vec::new();
    for key in ["d/1", "d/2", "k", "k", "k", "z"] {
        expected.push((key.to_owned(), initiate(&e, "bkt", key, &[]).await));
    }
    expected.sort();
    let list = |delimiter: &'static str, max: &'static str| {
        let e = &e;
        async move {
            let mut seen = Vec::new();
            let (mut key_marker, mut id_marker) = (String::new(), String::new());
            for _ in 0..20 {
                let r = Req::new("GET", "bkt", "")
                    .q("uploads", "")
                    .q("max-uploads", max)
                    .q("delimiter", delimiter)
                    .q("key-marker", &key_marker)
                    .q("upload-id-marker", &id_marker)
                    .send(e)
                    .await;
                assert_eq!(r.status(), 200);
                let t = r.text().await.unwrap();
                let uploads = t.split("<Upload>").skip(1).map(|u| {
                    (
                        xml_values(u, "Key").remove(0),
                        xml_values(u, "UploadId").remove(0),
                    )
                });
                seen.extend(uploads);
                let prefixes = t.split("<CommonPrefixes>").skip(1);
                seen.extend(prefixes.map(|p| (xml_values(p, "Prefix").remove(0), String::new())));
                if xml_values(&t, "IsTruncated") == vec!["false"] {
                    return seen;
                }
                key_marker = xml_values(&t, "NextKeyMarker").remove(0);
                id_marker = xml_values(&t, "NextUploadIdMarker")
                    .pop()
                    .unwrap_or_default();
            }
            panic!("the listing did not end: {seen:?}");
        }
    };
    assert_eq!(list("", "2").await, expected);
    // One entry a page: the first page ends with the common prefix "d/", which the next
    // must not list again. (Pages list uploads, then prefixes: compare sorted.)
    let mut rolled_up: Vec<(String, String)> = vec![("d/".into(), String::new())];
    rolled_up.extend(
        expected
            .iter()
            .filter(|(k, _)| !k.starts_with("d/"))
            .cloned(),
    );
    let mut seen = list("/", "1").await;
    seen.sort();
    assert_eq!(seen, rolled_up);
    e.shutdown().await;
}
