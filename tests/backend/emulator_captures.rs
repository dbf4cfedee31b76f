//! Every signed request the three official SDKs sent (tests/fixtures/sdk-captures/*.jsonl:
//! alibabacloud-oss-v2, oss2, ali-oss; V1 and V4; path, virtual-host and sld addressing)
//! goes through the emulator's own routing and verification and must verify; changing one
//! path byte or one signed header must make it fail.

use std::time::SystemTime;

use ossgate::emulator::auth::{self, AuthRequest};
use ossgate::emulator::route;
use ossgate::oss::credentials::Credentials;
use ossgate::oss::sign::v4;

struct Capture {
    name: String,
    method: String,
    raw_path: String,
    headers: Vec<(String, String)>,
}

fn load() -> Vec<Capture> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdk-captures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let headers = v["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_owned(),
                        h[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            out.push(Capture {
                name: format!(
                    "{}#{} {}",
                    file.file_name().unwrap().to_string_lossy(),
                    i + 1,
                    v["op_guess"].as_str().unwrap()
                ),
                method: v["method"].as_str().unwrap().to_owned(),
                raw_path: v["raw_path"].as_str().unwrap().to_owned(),
                headers,
            });
        }
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The capture's own time: its `x-oss-date` (ISO or RFC 1123) or `Date`.
fn capture_time(headers: &[(String, String)]) -> SystemTime {
    let raw = header(headers, "x-oss-date")
        .or_else(|| header(headers, "date"))
        .expect("every capture carries a date");
    v4::parse_datetime(raw)
        .or_else(|| httpdate::parse_http_date(raw).ok())
        .expect("a parsable date")
}

fn credentials() -> Vec<Credentials> {
    vec![Credentials {
        access_key_id: "LTAIFAKEACCESSKEY".into(),
        access_key_secret: "fakeSecretKey".into(),
        security_token: None,
    }]
}

/// Routes and verifies like the emulator does.
fn check(
    method: &str,
    raw_path: &str,
    headers: &[(String, String)],
    now: SystemTime,
) -> Result<String, ossgate::emulator::ApiError> {
    let (path, query) = match raw_path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw_path, None),
    };
    let query = route::parse_query(query)?;
    let target = route::resolve(header(headers, "host"), path, &|b| b == "feas-bucket")?;
    let req = AuthRequest {
        method,
        bucket: target.bucket.as_deref(),
        key: target.key.as_deref(),
        query: &query,
        headers,
    };
    auth::verify(&req, &credentials(), "cn-hangzhou", now).map(|v| v.access_key_id)
}

#[test]
fn all_126_captured_sdk_requests_verify() {
    let captures = load();
    assert_eq!(captures.len(), 126);
    let mut failures = Vec::new();
    for c in &captures {
        let now = capture_time(&c.headers);
        match check(&c.method, &c.raw_path, &c.headers, now) {
            Ok(ak) => assert_eq!(ak, "LTAIFAKEACCESSKEY"),
            Err(e) => failures.push(format!("{}: {e} {:?}", c.name, e.extra)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_capture_routes_to_the_bucket_and_decoded_key() {
    for c in load() {
        let path = c.raw_path.split('?').next().unwrap();
        let target =
            route::resolve(header(&c.headers, "host"), path, &|b| b == "feas-bucket").unwrap();
        assert_eq!(target.bucket.as_deref(), Some("feas-bucket"), "{}", c.name);
        let key = target.key.unwrap_or_default();
        assert!(!key.starts_with("feas-bucket"), "{}: key {key:?}", c.name);
        assert!(!key.contains('%'), "{}: key {key:?} not decoded", c.name);
    }
}

#[test]
fn tampering_with_one_path_byte_or_one_signed_header_fails() {
    for c in load() {
        let now = capture_time(&c.headers);
        // One more byte in the key.
        let (path, query) = match c.raw_path.split_once('?') {
            Some((p, q)) => (p.to_owned(), format!("?{q}")),
            None => (c.raw_path.clone(), String::new()),
        };
        let tampered_path = format!("{path}x{query}");
        let err = check(&c.method, &tampered_path, &c.headers, now).unwrap_err();
        assert_eq!(err.code, "SignatureDoesNotMatch", "{} (path)", c.name);

        // One byte of a signed header changed (or a signed x-oss header added).
        let mut headers = c.headers.clone();
        let signed = headers.iter_mut().find(|(n, _)| {
            let n = n.to_ascii_lowercase();
            (n.starts_with("x-oss-") && n != "x-oss-date" && n != "x-oss-content-sha256")
                || n == "content-type"
                || n == "content-md5"
        });
        match signed {
            Some((_, v)) => v.push('x'),
            None => headers.push(("x-oss-meta-tampered".into(), "1".into())),
        }
        let err = check(&c.method, &c.raw_path, &headers, now).unwrap_err();
        assert_eq!(err.code, "SignatureDoesNotMatch", "{} (header)", c.name);
        assert!(
            err.extra.iter().any(|(n, _)| n == "StringToSign"),
            "{}: SignatureDoesNotMatch carries StringToSign",
            c.name
        );

        // Another verb.
        let method = if c.method == "GET" { "PUT" } else { "GET" };
        let err = check(method, &c.raw_path, &c.headers, now).unwrap_err();
        assert_eq!(err.code, "SignatureDoesNotMatch", "{} (method)", c.name);
    }
}

#[test]
fn captures_are_rejected_with_a_wrong_secret_or_an_hour_later() {
    for c in load() {
        let now = capture_time(&c.headers);
        let later = now + std::time::Duration::from_secs(3600);
        let err = check(&c.method, &c.raw_path, &c.headers, later).unwrap_err();
        assert_eq!(err.code, "RequestTimeTooSkewed", "{}", c.name);
        assert_eq!(err.status.as_u16(), 403);
    }
    let c = &load()[0];
    let (path, _) = (c.raw_path.clone(), ());
    let target =
        route::resolve(header(&c.headers, "host"), &path, &|b| b == "feas-bucket").unwrap();
    let wrong = vec![Credentials {
        access_key_id: "LTAIFAKEACCESSKEY".into(),
        access_key_secret: "otherSecret".into(),
        security_token: None,
    }];
    let req = AuthRequest {
        method: &c.method,
        bucket: target.bucket.as_deref(),
        key: target.key.as_deref(),
        query: &[],
        headers: &c.headers,
    };
    let err = auth::verify(&req, &wrong, "cn-hangzhou", capture_time(&c.headers)).unwrap_err();
    assert_eq!(err.code, "SignatureDoesNotMatch");
}

/// The SDK and published presigned URLs in tests/fixtures/signing-vectors.json, fed through
/// routing and verification as the emulator would receive them.
#[test]
fn presigned_urls_from_the_signing_vectors_verify_until_they_expire() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/signing-vectors.json");
    let vectors: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut checked = 0;
    for v in &vectors {
        let expected = &v["expected"];
        let Some(url) = ["url", "signed_url", "signed_url_go1"]
            .iter()
            .find_map(|k| expected[*k].as_str())
        else {
            continue;
        };
        let id = v["id"].as_str().unwrap();
        let inputs = &v["inputs"];
        let rest = url.split_once("://").unwrap().1;
        let (host, path_query) = rest.split_at(rest.find('/').unwrap());
        let (path, query) = path_query.split_once('?').unwrap();
        let bucket = inputs["bucket"].as_str().unwrap().to_owned();
        let mut headers: Vec<(String, String)> = inputs["signed_headers"]
            .as_array()
            .or_else(|| inputs["headers"].as_array())
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h[0].as_str().unwrap().to_owned(),
                            h[1].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        headers.push(("host".into(), host.to_owned()));
        let query = route::parse_query(Some(query)).unwrap();
        let target = route::resolve(Some(host), path, &|b| b == bucket).unwrap();
        assert_eq!(target.bucket.as_deref(), Some(bucket.as_str()), "{id}");
        assert_eq!(target.key.as_deref(), inputs["key"].as_str(), "{id}");
        let credentials = vec![Credentials {
            access_key_id: inputs["access_key_id"].as_str().unwrap().into(),
            access_key_secret: inputs["access_key_secret"].as_str().unwrap().into(),
            security_token: inputs["security_token"].as_str().map(str::to_owned),
        }];
        let region = inputs["region"].as_str().unwrap_or("cn-hangzhou");
        let req = AuthRequest {
            method: inputs["method"].as_str().unwrap(),
            bucket: target.bucket.as_deref(),
            key: target.key.as_deref(),
            query: &query,
            headers: &headers,
        };
        // When it was signed, and when it expires.
        let (signed_at, expires_at) = if let Some(exp) = query
            .iter()
            .find(|(k, _)| k == "Expires")
            .map(|(_, v)| v.parse::<u64>().unwrap())
        {
            (exp - 60, exp)
        } else {
            let date = &query.iter().find(|(k, _)| k == "x-oss-date").unwrap().1;
            let secs: u64 = query
                .iter()
                .find(|(k, _)| k == "x-oss-expires")
                .unwrap()
                .1
                .parse()
                .unwrap();
            let t = v4::parse_datetime(date)
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            (t, t + secs)
        };
        let at = |s: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        let ok = auth::verify(&req, &credentials, region, at(signed_at));
        assert!(ok.is_ok(), "{id}: {:?}", ok.err());
        assert!(
            auth::verify(&req, &credentials, region, at(expires_at)).is_ok(),
            "{id}: valid up to its expiry"
        );
        let err = auth::verify(&req, &credentials, region, at(expires_at + 1)).unwrap_err();
        assert_eq!(
            (err.code.as_str(), err.message.as_str()),
            ("AccessDenied", "Request has expired."),
            "{id}"
        );
        let other = AuthRequest {
            method: if req.method == "GET" { "PUT" } else { "GET" },
            ..req
        };
        let err = auth::verify(&other, &credentials, region, at(signed_at)).unwrap_err();
        assert_eq!(err.code, "SignatureDoesNotMatch", "{id}");
        checked += 1;
    }
    assert_eq!(checked, 11, "presigned URLs with a full URL in the vectors");
}
