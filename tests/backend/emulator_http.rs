//! The emulator over real HTTP on a loopback port: operations, headers, OSS-shaped errors,
//! authentication, addressing, durability and robustness.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use ossgate::emulator::{self, EmulatorHandle};
use ossgate::model::crc64;
use ossgate::oss::sign::{self, SignableRequest, SignatureVersion, uri_encode, v1, v4};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test]
async fn put_get_head_meta_delete_round_trip() {
    let e = start().await;
    let data = b"hello world, this is ossgate";
    let md5 = md5_b64(data);
    let r = Req::new("PUT", "bkt", "dir/obj 1+x.txt")
        .h("content-type", "text/plain")
        .h("content-md5", &md5)
        .h("x-oss-tagging", "a=1&b=x%20y%2B%2F")
        .h("x-oss-meta-Color", "Red")
        .h("x-oss-storage-class", "IA")
        .h("x-oss-object-acl", "private")
        .body(data)
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let md5_hex = hex::encode_upper(
        base64::engine::general_purpose::STANDARD
            .decode(&md5)
            .unwrap(),
    );
    assert_eq!(hv(&r, "etag").unwrap(), format!("\"{md5_hex}\""));
    assert_eq!(
        hv(&r, "x-oss-hash-crc64ecma").unwrap(),
        crc64(data).to_string()
    );
    assert_eq!(hv(&r, "server").as_deref(), Some("AliyunOSS"));
    assert_eq!(hv(&r, "x-oss-request-id").unwrap().len(), 24);
    assert!(hv(&r, "x-oss-version-id").is_none());

    let r = Req::new("GET", "bkt", "dir/obj 1+x.txt").send(&e).await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "content-type").as_deref(), Some("text/plain"));
    assert_eq!(hv(&r, "x-oss-tagging-count").as_deref(), Some("2"));
    assert_eq!(hv(&r, "x-oss-meta-color").as_deref(), Some("Red"));
    assert_eq!(hv(&r, "x-oss-storage-class").as_deref(), Some("IA"));
    assert_eq!(hv(&r, "x-oss-object-type").as_deref(), Some("Normal"));
    assert!(hv(&r, "last-modified").is_some());
    assert_eq!(r.bytes().await.unwrap().as_ref(), data);

    let r = Req::new("GET", "bkt", "dir/obj 1+x.txt")
        .h("range", "bytes=6-10")
        .send(&e)
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        hv(&r, "content-range").unwrap(),
        format!("bytes 6-10/{}", data.len())
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"world");

    let r = Req::new("HEAD", "bkt", "dir/obj 1+x.txt")
        .v1()
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "content-length").unwrap(), data.len().to_string());
    assert_eq!(
        hv(&r, "x-oss-hash-crc64ecma").unwrap(),
        crc64(data).to_string()
    );

    let r = Req::new("HEAD", "bkt", "dir/obj 1+x.txt")
        .q("objectMeta", "")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "content-length").unwrap(), data.len().to_string());
    assert!(hv(&r, "etag").is_some());

    let r = Req::new("GET", "bkt", "dir/obj 1+x.txt")
        .q("tagging", "")
        .send(&e)
        .await;
    let xml = r.text().await.unwrap();
    let tags = ossgate::oss::xml::parse_tagging_xml(&xml).unwrap();
    assert_eq!(
        tags,
        vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "x y+/".to_owned())
        ]
    );

    let r = Req::new("DELETE", "bkt", "dir/obj 1+x.txt").send(&e).await;
    assert_eq!(r.status(), 204);
    let r = Req::new("DELETE", "bkt", "dir/obj 1+x.txt").send(&e).await;
    assert_eq!(r.status(), 204, "deleting a missing object is 204");
    let (status, code, xml) =
        error_response(Req::new("GET", "bkt", "dir/obj 1+x.txt").send(&e).await).await;
    assert_eq!((status, code.as_str()), (404, "NoSuchKey"));
    assert!(xml.contains("<RequestId>") && xml.contains("<HostId>") && xml.contains("<EC>"));
    assert_eq!(e.request_count(), 9);
    e.shutdown().await;
}

#[tokio::test]
async fn head_errors_have_no_body_but_x_oss_err() {
    let e = start().await;
    let r = Req::new("HEAD", "bkt", "missing").send(&e).await;
    assert_eq!(r.status(), 404);
    assert_eq!(hv(&r, "x-oss-ec").as_deref(), Some("0026-00000001"));
    let err = base64::engine::general_purpose::STANDARD
        .decode(hv(&r, "x-oss-err").unwrap())
        .unwrap();
    assert!(
        String::from_utf8(err)
            .unwrap()
            .contains("<Code>NoSuchKey</Code>")
    );
    assert!(r.bytes().await.unwrap().is_empty());
    e.shutdown().await;
}

#[tokio::test]
async fn auth_errors() {
    let e = start().await;
    // Wrong secret.
    let (s, code, xml) =
        error_response(Req::new("GET", "bkt", "k").secret("nope").send(&e).await).await;
    assert_eq!((s, code.as_str()), (403, "SignatureDoesNotMatch"));
    assert!(xml.contains("<StringToSign>"));
    let (s, code, _) = error_response(
        Req::new("GET", "bkt", "k")
            .v1()
            .secret("nope")
            .send(&e)
            .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (403, "SignatureDoesNotMatch"));
    // Unknown key.
    let mut r = Req::new("GET", "bkt", "k");
    r.creds.access_key_id = "other".into();
    let (s, code, _) = error_response(r.send(&e).await).await;
    assert_eq!((s, code.as_str()), (403, "InvalidAccessKeyId"));
    // Anonymous.
    let r = client()
        .get(format!("{}/bkt/k", e.endpoint()))
        .send()
        .await
        .unwrap();
    let (s, code, _) = error_response(r).await;
    assert_eq!((s, code.as_str()), (403, "AccessDenied"));
    // Clock skew: a request signed 20 minutes ago.
    let mut headers = Vec::new();
    sign::sign_request(
        SignatureVersion::V4,
        "GET",
        Some("bkt"),
        Some("k"),
        &[],
        &mut headers,
        &creds(),
        "cn-hangzhou",
        SystemTime::now() - Duration::from_secs(20 * 60),
    );
    let mut rb = client().get(format!("{}/bkt/k", e.endpoint()));
    for (k, v) in &headers {
        rb = rb.header(k, v);
    }
    let (s, code, xml) = error_response(rb.send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (403, "RequestTimeTooSkewed"));
    assert!(xml.contains("<MaxAllowedSkewMilliseconds>900000"));
    // Missing bucket (signed correctly).
    let (s, code, _) = error_response(Req::new("GET", "nobucket", "k").send(&e).await).await;
    assert_eq!((s, code.as_str()), (404, "NoSuchBucket"));
    e.shutdown().await;
}

/// OSS checks that the bucket exists before it checks who is asking: a missing bucket is 404
/// NoSuchBucket even for an unknown AccessKeyId, a wrong secret or an anonymous request
/// (the SDKs' `is_bucket_exist()` relies on it); an existing bucket still answers 403.
#[tokio::test]
async fn missing_bucket_is_404_before_authentication() {
    let e = start().await;
    for bucket in ["nobucket", BUCKET] {
        let want = if bucket == BUCKET {
            (403, "InvalidAccessKeyId")
        } else {
            (404, "NoSuchBucket")
        };
        for key in ["", "k"] {
            let mut r = Req::new("GET", bucket, key);
            if key.is_empty() {
                r = r.q("uploads", "");
            }
            r.creds.access_key_id = "unknown-ak".into();
            let (s, code, body) = error_response(r.send(&e).await).await;
            assert_eq!((s, code.as_str()), want, "{bucket}/{key}: {body}");
        }
    }
    let (s, code, _) = error_response(
        Req::new("HEAD", "nobucket", "k")
            .secret("nope")
            .send(&e)
            .await,
    )
    .await;
    assert_eq!(s, 404, "{code}");
    let r = client()
        .get(format!("{}/nobucket/k", e.endpoint()))
        .send()
        .await
        .unwrap();
    let (s, code, _) = error_response(r).await;
    assert_eq!((s, code.as_str()), (404, "NoSuchBucket"));
    e.shutdown().await;
}

#[tokio::test]
async fn presigned_urls_v1_and_v4() {
    let e = start().await;
    let r = Req::new("PUT", "bkt", "p/k 1")
        .body(b"presigned")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let no_query: Vec<(String, String)> = Vec::new();
    let no_headers: Vec<(String, String)> = Vec::new();
    let req = SignableRequest {
        method: "GET",
        bucket: Some("bkt"),
        key: Some("p/k 1"),
        query: &no_query,
        headers: &no_headers,
    };
    let now = SystemTime::now();
    let expires = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    for params in [
        v4::presign(&req, &creds(), "cn-hangzhou", "oss", now, 300, &[]),
        v1::presign(&req, &creds(), expires),
    ] {
        let q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, false), uri_encode(v, false)))
            .collect();
        let url = format!("{}/bkt/p/k%201?{}", e.endpoint(), q.join("&"));
        let r = client().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"presigned");
        // The same URL cannot be used to PUT.
        let r = client().put(&url).body("x").send().await.unwrap();
        assert_eq!(r.status(), 403);
    }
    e.shutdown().await;
}

#[tokio::test]
async fn sts_token_is_required() {
    let mut c = config();
    c.credentials[0].security_token = Some("sts-token+/=".into());
    let e = emulator::start(c).await.unwrap();
    let mut r = Req::new("PUT", "bkt", "k").body(b"x");
    r.creds.security_token = Some("sts-token+/=".into());
    assert_eq!(r.send(&e).await.status(), 200);
    let mut r = Req::new("GET", "bkt", "k").v1();
    r.creds.security_token = Some("sts-token+/=".into());
    assert_eq!(r.send(&e).await.status(), 200);
    let mut r = Req::new("GET", "bkt", "k");
    r.creds.security_token = Some("wrong".into());
    let (s, code, _) = error_response(r.send(&e).await).await;
    assert_eq!((s, code.as_str()), (403, "InvalidSecurityToken"));
    let (s, code, _) = error_response(Req::new("GET", "bkt", "k").send(&e).await).await;
    assert_eq!((s, code.as_str()), (403, "InvalidAccessKeyId"));
    e.shutdown().await;
}

#[tokio::test]
async fn write_errors() {
    let e = start().await;
    // Content-MD5 mismatch stores nothing.
    let r = Req::new("PUT", "bkt", "md5")
        .h("content-md5", &md5_b64(b"other"))
        .body(b"data")
        .send(&e)
        .await;
    let (s, code, _) = error_response(r).await;
    assert_eq!((s, code.as_str()), (400, "InvalidDigest"));
    let (s, code, _) = error_response(Req::new("GET", "bkt", "md5").send(&e).await).await;
    assert_eq!((s, code.as_str()), (404, "NoSuchKey"));
    // forbid-overwrite.
    assert_eq!(
        Req::new("PUT", "bkt", "once")
            .body(b"1")
            .send(&e)
            .await
            .status(),
        200
    );
    let r = Req::new("PUT", "bkt", "once")
        .h("x-oss-forbid-overwrite", "true")
        .body(b"2")
        .send(&e)
        .await;
    let (s, code, _) = error_response(r).await;
    assert_eq!((s, code.as_str()), (409, "FileAlreadyExists"));
    let r = Req::new("GET", "bkt", "once").send(&e).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"1");
    // Invalid tags and metadata: 400 InvalidArgument with 0010-/0011- ECs.
    for (name, value, ec) in [
        ("x-oss-tagging", "a=b=c", "0010-00000219"),
        ("x-oss-tagging", "k=v%21", "0010-00000217"),
        ("x-oss-meta-bad_key", "v", "0011-00000004"),
    ] {
        let r = Req::new("PUT", "bkt", "t")
            .h(name, value)
            .body(b"1")
            .send(&e)
            .await;
        assert_eq!(hv(&r, "x-oss-ec").as_deref(), Some(ec), "{name}: {value}");
        let (s, code, _) = error_response(r).await;
        assert_eq!((s, code.as_str()), (400, "InvalidArgument"));
    }
    let big = "v".repeat(8200);
    let r = Req::new("PUT", "bkt", "t")
        .h("x-oss-meta-big", &big)
        .body(b"1")
        .send(&e)
        .await;
    assert_eq!(hv(&r, "x-oss-ec").as_deref(), Some("0011-00000002"));
    // Malformed tagging XML.
    let r = Req::new("PUT", "bkt", "once")
        .q("tagging", "")
        .body(b"<Tagging><oops")
        .send(&e)
        .await;
    let (s, code, _) = error_response(r).await;
    assert_eq!((s, code.as_str()), (400, "MalformedXML"));
    // Unsupported method and sub-resource.
    let (s, code, _) = error_response(Req::new("PATCH", "bkt", "once").send(&e).await).await;
    assert_eq!((s, code.as_str()), (405, "MethodNotAllowed"));
    let r = Req::new("POST", "bkt", "once")
        .q("select", "")
        .send(&e)
        .await;
    let (s, code, _) = error_response(r).await;
    assert_eq!((s, code.as_str()), (501, "NotImplemented"));
    // Too large declared body.
    let raw = signed_put_head(&e, "big", 6_000_000_000);
    let reply = raw_exchange(&e, raw.as_bytes(), true).await;
    assert!(reply.contains("EntityTooLarge"), "{reply}");
    e.shutdown().await;
}

#[tokio::test]
async fn unknown_operations_are_501_not_a_misleading_error() {
    let e = start().await;
    // Operations the emulator lacks, on an existing bucket.
    for req in [
        Req::new("GET", BUCKET, "").q("cors", ""),
        Req::new("POST", BUCKET, "k").q("select", ""),
        Req::new("PUT", BUCKET, "").q("lifecycle", ""),
        Req::new("POST", "", ""),
    ] {
        let what = req.url("");
        let (s, code, body) = error_response(req.send(&e).await).await;
        assert_eq!(
            (s, code.as_str()),
            (501, "NotImplemented"),
            "{what}: {body}"
        );
    }
    // On a missing bucket they are NoSuchBucket, as in OSS (is_bucket_exist() sends
    // GetBucketAcl and relies on it).
    for req in [
        Req::new("GET", "no-such-bucket", "").q("acl", ""),
        Req::new("GET", "no-such-bucket", "").q("cors", ""),
        Req::new("GET", "no-such-bucket", "k"),
    ] {
        let (s, code, _) = error_response(req.send(&e).await).await;
        assert_eq!((s, code.as_str()), (404, "NoSuchBucket"));
    }
    e.shutdown().await;
}

/// The head (request line and headers, V4-signed, up to the blank line) of a PUT of
/// `bkt/key` declaring `content_length` bytes, for raw exchanges.
fn signed_put_head(e: &EmulatorHandle, key: &str, content_length: u64) -> String {
    let mut headers = Vec::new();
    sign::sign_request(
        SignatureVersion::V4,
        "PUT",
        Some("bkt"),
        Some(key),
        &[],
        &mut headers,
        &creds(),
        "cn-hangzhou",
        SystemTime::now(),
    );
    let mut head = format!(
        "PUT /bkt/{key} HTTP/1.1\r\nhost: {}\r\ncontent-length: {content_length}\r\n",
        e.addr()
    );
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head + "\r\n"
}

/// Sends raw bytes; with `half_close` shuts down the write side, then reads the reply.
async fn raw_exchange(e: &EmulatorHandle, bytes: &[u8], half_close: bool) -> String {
    let mut s = tokio::net::TcpStream::connect(e.addr()).await.unwrap();
    s.write_all(bytes).await.unwrap();
    if half_close {
        let _ = s.shutdown().await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Connects and sends `head`, then `trickle` every 500 ms (until the server closes), and
/// returns what the server sent and how long until it closed the connection (at most
/// `limit`; `None` if it was still open then).
async fn trickle(
    e: &EmulatorHandle,
    head: String,
    trickle: &'static [u8],
    limit: Duration,
) -> (String, Option<Duration>) {
    let started = tokio::time::Instant::now();
    let (mut reader, mut writer) = tokio::net::TcpStream::connect(e.addr())
        .await
        .unwrap()
        .into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let sending = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if writer.write_all(trickle).await.is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    let closed = tokio::time::timeout(limit, reader.read_to_end(&mut out))
        .await
        .ok()
        .map(|_| started.elapsed());
    sending.abort();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Issue 11 point 9: the emulator kept slow-header and 10 B/s body connections forever.
#[tokio::test]
async fn slow_headers_and_trickling_bodies_are_disconnected() {
    let e = start().await;
    let limit = emulator::HEADER_READ_TIMEOUT.max(emulator::BODY_GRACE) + Duration::from_secs(8);
    // A header line every 500 ms, never the blank line that ends them.
    let slow_headers = trickle(
        &e,
        format!("PUT /bkt/slow HTTP/1.1\r\nhost: {}\r\n", e.addr()),
        b"x-slow: 1\r\n",
        limit,
    );
    // A signed PUT of 1,000,000 bytes whose body comes at 10 bytes a second.
    let trickled_body = trickle(
        &e,
        signed_put_head(&e, "trickled", 1_000_000),
        b"01234",
        limit,
    );
    let ((_, headers_closed), (reply, body_closed)) = tokio::join!(slow_headers, trickled_body);
    let headers_closed = headers_closed.expect("a slow-header connection is closed");
    assert!(
        headers_closed >= emulator::HEADER_READ_TIMEOUT - Duration::from_secs(1),
        "closed after {headers_closed:?}: not before the header timeout"
    );
    let body_closed = body_closed.expect("a trickling-body connection is closed");
    assert!(body_closed >= emulator::BODY_GRACE - Duration::from_secs(1));
    assert!(
        reply.starts_with("HTTP/1.1 4"),
        "the request is answered with an error: {reply}"
    );
    let (s, code, _) = error_response(Req::new("GET", "bkt", "trickled").send(&e).await).await;
    assert_eq!((s, code.as_str()), (404, "NoSuchKey"), "nothing is stored");
    // Clients at normal speed are not affected.
    let r = Req::new("PUT", "bkt", "fast").body(b"fast").send(&e).await;
    assert_eq!(r.status(), 200);
    e.shutdown().await;
}

#[tokio::test]
async fn incomplete_body_stores_nothing_and_chunked_body_works() {
    let e = start().await;
    let raw = signed_put_head(&e, "cut", 100) + "only ten b";
    let _ = raw_exchange(&e, raw.as_bytes(), true).await;
    let (s, code, _) = error_response(Req::new("GET", "bkt", "cut").send(&e).await).await;
    assert_eq!((s, code.as_str()), (404, "NoSuchKey"));

    // Chunked transfer encoding (no Content-Length).
    let mut headers = Vec::new();
    sign::sign_request(
        SignatureVersion::V1,
        "PUT",
        Some("bkt"),
        Some("chunked"),
        &[],
        &mut headers,
        &creds(),
        "cn-hangzhou",
        SystemTime::now(),
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"abc".to_vec()),
        Ok(b"def".to_vec()),
        Ok(vec![b'g'; 100_000]),
    ];
    let mut rb =
        client()
            .put(format!("{}/bkt/chunked", e.endpoint()))
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )));
    for (k, v) in &headers {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = Req::new("GET", "bkt", "chunked").send(&e).await;
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), 100_006);
    assert_eq!(&body[..6], b"abcdef");
    e.shutdown().await;
}

#[tokio::test]
async fn versioned_bucket_tags_delete_markers_and_versions() {
    let e = start().await;
    let r = Req::new("PUT", "vbkt", "k").body(b"v1").send(&e).await;
    let v1_id = hv(&r, "x-oss-version-id").unwrap();
    let r = Req::new("PUT", "vbkt", "k").body(b"v2").send(&e).await;
    let v2_id = hv(&r, "x-oss-version-id").unwrap();
    assert_ne!(v1_id, v2_id);
    // Tag the old version only.
    let tags = ossgate::oss::xml::tagging_xml(
        &ossgate::model::TagSet::from_pairs([("old", "yes")]).unwrap(),
    );
    let r = Req::new("PUT", "vbkt", "k")
        .q("tagging", "")
        .q("versionId", &v1_id)
        .body(tags.as_bytes())
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(hv(&r, "x-oss-version-id").as_deref(), Some(v1_id.as_str()));
    let r = Req::new("HEAD", "vbkt", "k").send(&e).await;
    assert_eq!(hv(&r, "x-oss-tagging-count"), None);
    assert_eq!(hv(&r, "x-oss-version-id").as_deref(), Some(v2_id.as_str()));
    let r = Req::new("HEAD", "vbkt", "k")
        .q("versionId", &v1_id)
        .send(&e)
        .await;
    assert_eq!(hv(&r, "x-oss-tagging-count").as_deref(), Some("1"));
    // Delete: a marker.
    let r = Req::new("DELETE", "vbkt", "k").send(&e).await;
    assert_eq!(r.status(), 204);
    assert_eq!(hv(&r, "x-oss-delete-marker").as_deref(), Some("true"));
    let marker = hv(&r, "x-oss-version-id").unwrap();
    let r = Req::new("GET", "vbkt", "k").send(&e).await;
    assert_eq!(hv(&r, "x-oss-delete-marker").as_deref(), Some("true"));
    let (s, code, _) = error_response(r).await;
    assert_eq!((s, code.as_str()), (404, "NoSuchKey"));
    let r = Req::new("GET", "vbkt", "k")
        .q("versionId", &v1_id)
        .send(&e)
        .await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"v1");
    let (s, code, _) = error_response(
        Req::new("GET", "vbkt", "k")
            .q("versionId", "nope")
            .send(&e)
            .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (404, "NoSuchVersion"));
    // Removing the marker brings v2 back.
    let r = Req::new("DELETE", "vbkt", "k")
        .q("versionId", &marker)
        .send(&e)
        .await;
    assert_eq!(r.status(), 204);
    let r = Req::new("GET", "vbkt", "k").send(&e).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"v2");
    // Delete the tagging of v1.
    let r = Req::new("DELETE", "vbkt", "k")
        .q("tagging", "")
        .q("versionId", &v1_id)
        .send(&e)
        .await;
    assert_eq!(r.status(), 204);
    let r = Req::new("GET", "vbkt", "k")
        .q("tagging", "")
        .q("versionId", &v1_id)
        .send(&e)
        .await;
    assert!(r.text().await.unwrap().contains("<TagSet></TagSet>"));
    e.shutdown().await;
}

#[tokio::test]
async fn symlinks() {
    let e = start().await;
    Req::new("PUT", "bkt", "dir/target 1.txt")
        .body(b"target data")
        .send(&e)
        .await;
    // oss2 style (fully encoded) and pyv2 style (raw) targets.
    for (link, target) in [("l1", "dir%2Ftarget%201.txt"), ("l2", "dir/target 1.txt")] {
        let r = Req::new("PUT", "bkt", link)
            .q("symlink", "")
            .h("x-oss-symlink-target", target)
            .h("x-oss-tagging", "kind=link")
            .h("x-oss-meta-owner", "me")
            .send(&e)
            .await;
        assert_eq!(r.status(), 200);
        let r = Req::new("GET", "bkt", link).q("symlink", "").send(&e).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            hv(&r, "x-oss-symlink-target").as_deref(),
            Some("dir/target%201.txt")
        );
        assert_eq!(hv(&r, "x-oss-meta-owner").as_deref(), Some("me"));
        let r = Req::new("GET", "bkt", link).send(&e).await;
        assert_eq!(hv(&r, "x-oss-object-type").as_deref(), Some("Symlink"));
        assert_eq!(hv(&r, "x-oss-tagging-count").as_deref(), Some("1"));
        assert_eq!(
            hv(&r, "x-oss-hash-crc64ecma").unwrap(),
            crc64(b"target data").to_string()
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), b"target data");
    }
    // GetSymlink on a normal object.
    let (s, code, _) = error_response(
        Req::new("GET", "bkt", "dir/target 1.txt")
            .q("symlink", "")
            .send(&e)
            .await,
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "NotSymlink"));
    // Target gone.
    Req::new("DELETE", "bkt", "dir/target 1.txt").send(&e).await;
    let (s, code, _) = error_response(Req::new("GET", "bkt", "l1").send(&e).await).await;
    assert_eq!((s, code.as_str()), (404, "SymlinkTargetNotExist"));
    let r = Req::new("HEAD", "bkt", "l1").send(&e).await;
    assert_eq!(r.status(), 404);
    assert_eq!(hv(&r, "x-oss-ec").as_deref(), Some("0026-00000012"));
    // Missing target header.
    let (s, code, _) =
        error_response(Req::new("PUT", "bkt", "l3").q("symlink", "").send(&e).await).await;
    assert_eq!((s, code.as_str()), (400, "MissingArgument"));
    e.shutdown().await;
}

#[tokio::test]
async fn virtual_host_and_sld_addressing() {
    let e = start().await;
    let mut r = Req::new("PUT", "bkt", "vh/key").body(b"vhost");
    r.host = Some("bkt.oss-cn-hangzhou.aliyuncs.com".into());
    assert_eq!(r.send(&e).await.status(), 200);
    // sld form: bucket in Host and path.
    let mut headers = Vec::new();
    sign::sign_request(
        SignatureVersion::V1,
        "GET",
        Some("bkt"),
        Some("vh/key"),
        &[],
        &mut headers,
        &creds(),
        "cn-hangzhou",
        SystemTime::now(),
    );
    let mut rb = client()
        .get(format!("{}/bkt/vh/key", e.endpoint()))
        .header("host", "bkt.oss-cn-hangzhou.aliyuncs.com");
    for (k, v) in &headers {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"vhost");
    e.shutdown().await;
}

#[tokio::test]
async fn data_survives_a_restart_on_the_same_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.data_dir = Some(dir.path().to_owned());
    let e = emulator::start(c.clone()).await.unwrap();
    let r = Req::new("PUT", "bkt", "durable/ö k")
        .h("x-oss-tagging", "t=1")
        .h("x-oss-meta-m", "v")
        .body(b"durable data")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let r = Req::new("PUT", "bkt", "link")
        .q("symlink", "")
        .h("x-oss-symlink-target", "durable/%C3%B6%20k")
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let r = Req::new("PUT", "vbkt", "v").body(b"one").send(&e).await;
    let vid = hv(&r, "x-oss-version-id").unwrap();
    Req::new("PUT", "vbkt", "v").body(b"two").send(&e).await;
    // An overwritten object leaves only its newest data behind.
    Req::new("PUT", "bkt", "over").body(b"old").send(&e).await;
    Req::new("PUT", "bkt", "over").body(b"new").send(&e).await;
    e.shutdown().await;

    let e = emulator::start(c).await.unwrap();
    let r = Req::new("GET", "bkt", "link").send(&e).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        hv(&r, "x-oss-meta-m"),
        None,
        "the link has its own metadata"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"durable data");
    let r = Req::new("GET", "bkt", "durable/ö k").send(&e).await;
    assert_eq!(hv(&r, "x-oss-meta-m").as_deref(), Some("v"));
    assert_eq!(hv(&r, "x-oss-tagging-count").as_deref(), Some("1"));
    let r = Req::new("GET", "bkt", "link")
        .q("symlink", "")
        .send(&e)
        .await;
    assert_eq!(
        hv(&r, "x-oss-symlink-target").as_deref(),
        Some("durable/%C3%B6%20k")
    );
    let r = Req::new("GET", "vbkt", "v")
        .q("versionId", &vid)
        .send(&e)
        .await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"one");
    let r = Req::new("GET", "bkt", "over").send(&e).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"new");
    // Blobs: durable, link has none, v1, v2, over = 4 files.
    let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
    assert_eq!(blobs, 4);
    e.shutdown().await;
}

#[tokio::test]
async fn hostile_requests_do_not_break_the_server() {
    let e = start().await;
    let addr = e.addr();
    for raw in [
        "GET /bkt/%FF%FE HTTP/1.1\r\nhost: x\r\n\r\n".to_owned(),
        "GET /bkt/k?a=%FF HTTP/1.1\r\nhost: x\r\n\r\n".to_owned(),
        "BREW /bkt/k HTTP/1.1\r\nhost: x\r\n\r\n".to_owned(),
        format!(
            "GET /bkt/k HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
            "a".repeat(200_000)
        ),
        "GET /bkt/k HTTP/1.1\r\nhost: x\r\nauthorization: OSS4-HMAC-SHA256 garbage\r\n\r\n"
            .to_owned(),
        "GET /bkt/k HTTP/1.1\r\nhost: x\r\nauthorization: OSS :\r\n\r\n".to_owned(),
        "GET /bkt/k?x-oss-signature=1&x-oss-credential=a/b/c HTTP/1.1\r\nhost: x\r\n\r\n"
            .to_owned(),
        "GET /bkt/k?Signature=1&OSSAccessKeyId=test-ak&Expires=zz HTTP/1.1\r\nhost: x\r\n\r\n"
            .to_owned(),
        "GET / HTTP/1.1\r\nhost: [::1\r\n\r\n".to_owned(),
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(raw.as_bytes()).await;
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        let reply = String::from_utf8_lossy(&buf[..n]);
        assert!(
            reply.starts_with("HTTP/1.1 4") || reply.starts_with("HTTP/1.1 5"),
            "{raw:.80}: {reply}"
        );
    }
    // Still serving.
    let r = Req::new("PUT", "bkt", "alive").body(b"yes").send(&e).await;
    assert_eq!(r.status(), 200);
    e.shutdown().await;
}

#[tokio::test]
async fn request_count_counts_every_request() {
    let e = start().await;
    assert_eq!(e.request_count(), 0);
    Req::new("GET", "bkt", "a").send(&e).await;
    client()
        .get(format!("{}/", e.endpoint()))
        .send()
        .await
        .unwrap();
    Req::new("GET", "bkt", "b").secret("bad").send(&e).await;
    assert_eq!(e.request_count(), 3);
    e.shutdown().await;
}

#[tokio::test]
async fn conditional_get() {
    let e = start().await;
    let r = Req::new("PUT", "bkt", "cond").body(b"data").send(&e).await;
    let etag = hv(&r, "etag").unwrap();
    let r = Req::new("GET", "bkt", "cond")
        .h("if-match", &etag)
        .send(&e)
        .await;
    assert_eq!(r.status(), 200);
    let r = Req::new("GET", "bkt", "cond")
        .h("if-match", "\"0000\"")
        .send(&e)
        .await;
    let (s, code, _) = error_response(r).await;
    assert_eq!((s, code.as_str()), (412, "PreconditionFailed"));
    let r = Req::new("GET", "bkt", "cond")
        .h("if-none-match", &etag)
        .send(&e)
        .await;
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    let r = Req::new("HEAD", "bkt", "cond")
        .h("if-modified-since", &future)
        .send(&e)
        .await;
    assert_eq!(r.status(), 304);
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600));
    let r = Req::new("GET", "bkt", "cond")
        .h("if-unmodified-since", &past)
        .send(&e)
        .await;
    assert_eq!(r.status(), 412);
    e.shutdown().await;
}

#[tokio::test]
async fn latin1_header_bytes_fail_validation_not_the_signature() {
    let e = start().await;
    // Python's http.client sends a non-ASCII str header as Latin-1; the SDK signed the text.
    let mut headers = vec![("x-oss-meta-name".to_owned(), "caf\u{e9}".to_owned())];
    sign::sign_request(
        SignatureVersion::V4,
        "PUT",
        Some("bkt"),
        Some("latin1"),
        &[],
        &mut headers,
        &creds(),
        "cn-hangzhou",
        SystemTime::now(),
    );
    let mut raw: Vec<u8> = format!(
        "PUT /bkt/latin1 HTTP/1.1\r\nhost: {}\r\ncontent-length: 1\r\nconnection: close\r\n",
        e.addr()
    )
    .into_bytes();
    for (k, v) in &headers {
        raw.extend_from_slice(k.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend(v.chars().map(|c| c as u32 as u8));
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\nx");
    let reply = raw_exchange(&e, &raw, false).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("<Code>InvalidArgument</Code>"), "{reply}");
    assert!(reply.contains("0011-00000004"), "{reply}");
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_overwrites_on_disk_leave_one_whole_object() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.data_dir = Some(dir.path().to_owned());
    let e = std::sync::Arc::new(emulator::start(c.clone()).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let body = vec![i; 64 * 1024];
            let r = Req::new("PUT", "bkt", "contended")
                .body(&body)
                .send(&e)
                .await;
            assert_eq!(r.status(), 200);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = Req::new("GET", "bkt", "contended").send(&e).await;
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), 64 * 1024);
    assert!(
        body.iter().all(|&b| b == body[0]),
        "one writer's data, whole"
    );
    let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
    assert_eq!(blobs, 1, "overwritten data is removed");
    std::sync::Arc::try_unwrap(e).unwrap().shutdown().await;
}

#[tokio::test]
async fn early_errors_on_large_uploads_reach_the_client() {
    let e = start().await;
    let big = vec![7u8; 8 * 1024 * 1024];
    for _ in 0..3 {
        let r = Req::new("PUT", "bkt", "big")
            .secret("wrong")
            .body(&big)
            .send(&e)
            .await;
        let (s, code, _) = error_response(r).await;
        assert_eq!((s, code.as_str()), (403, "SignatureDoesNotMatch"));
        let r = Req::new("PUT", "bkt", "big")
            .h("x-oss-tagging", "a=b=c")
            .body(&big)
            .send(&e)
            .await;
        let (s, code, _) = error_response(r).await;
        assert_eq!((s, code.as_str()), (400, "InvalidArgument"));
    }
    e.shutdown().await;
}
