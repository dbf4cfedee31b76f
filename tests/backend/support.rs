//! The harness the emulator's HTTP tests and the OSS client smoke tests share: an emulator on a
//! loopback port with two buckets, requests signed with the crate's own signer as the SDKs sign
//! them, and the crate's OSS client pointed at the emulator.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use ossgate::emulator::{self, BucketSpec, EmulatorConfig, EmulatorHandle};
use ossgate::model::{BucketName, ObjectKey};
use ossgate::oss::credentials::Credentials;
use ossgate::oss::sign::{self, SignatureVersion, uri_encode};
use ossgate::oss::{Addressing, Client, ClientConfig, GetObjectInput};

pub const AK: &str = "test-ak";
pub const SK: &str = "test-secret";
/// The unversioned bucket.
pub const BUCKET: &str = "bkt";
/// The versioned bucket.
pub const VERSIONED_BUCKET: &str = "vbkt";

pub fn creds() -> Credentials {
    Credentials {
        access_key_id: AK.into(),
        access_key_secret: SK.into(),
        security_token: None,
    }
}

/// The emulator's configuration: an unversioned bucket [`BUCKET`] (`bkt`) and a versioned
/// [`VERSIONED_BUCKET`] (`vbkt`).
pub fn config() -> EmulatorConfig {
    let mut c = EmulatorConfig::new(AK, SK);
    c.buckets = vec![
        BucketSpec {
            name: BUCKET.into(),
            versioned: false,
        },
        BucketSpec {
            name: VERSIONED_BUCKET.into(),
            versioned: true,
        },
    ];
    c
}

pub async fn start() -> EmulatorHandle {
    emulator::start(config()).await.unwrap()
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

/// The crate's OSS client for emulator `e`, with the emulator's key pair, signing with
/// `version`.
pub fn oss_client(e: &EmulatorHandle, version: SignatureVersion) -> Client {
    Client::new(ClientConfig {
        endpoint: e.endpoint(),
        region: "cn-hangzhou".into(),
        signature_version: version,
        addressing: Addressing::Auto,
        credentials: creds(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Some(Duration::from_secs(30)),
    })
    .unwrap()
}

/// The whole current version of `bucket/key`, read with the OSS client.
pub async fn read_all(client: &Client, bucket: &BucketName, key: &ObjectKey) -> Vec<u8> {
    let out = client
        .get_object(&GetObjectInput::new(bucket.clone(), key.clone()))
        .await
        .unwrap();
    let mut data = Vec::new();
    let mut body = out.body;
    while let Some(chunk) = body.next().await {
        data.extend_from_slice(&chunk.unwrap());
    }
    data
}

/// One signed request; `key == ""` addresses the bucket.
pub struct Req {
    pub method: &'static str,
    pub bucket: String,
    pub key: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub version: SignatureVersion,
    pub creds: Credentials,
    /// A virtual-host `Host` header; the URL then leaves the bucket out of the path.
    pub host: Option<String>,
}

impl Req {
    pub fn new(method: &'static str, bucket: &str, key: &str) -> Self {
        Self {
            method,
            bucket: bucket.into(),
            key: key.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            version: SignatureVersion::V4,
            creds: creds(),
            host: None,
        }
    }
    pub fn q(mut self, k: &str, v: &str) -> Self {
        self.query.push((k.into(), v.into()));
        self
    }
    pub fn h(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn body(mut self, b: &[u8]) -> Self {
        self.body = b.to_vec();
        self
    }
    pub fn v1(mut self) -> Self {
        self.version = SignatureVersion::V1;
        self
    }
    /// Signs with this secret instead of the emulator's.
    pub fn secret(mut self, s: &str) -> Self {
        self.creds.access_key_secret = s.into();
        self
    }

    pub fn url(&self, endpoint: &str) -> String {
        let key = uri_encode(&self.key, true);
        // An empty bucket is a service-level request (ListBuckets): `GET /`.
        let mut url = if self.host.is_some() || self.bucket.is_empty() {
            format!("{endpoint}/{key}")
        } else {
            format!("{endpoint}/{}/{key}", self.bucket)
        };
        if !self.query.is_empty() {
            let q: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        uri_encode(k, false)
                    } else {
                        format!("{}={}", uri_encode(k, false), uri_encode(v, false))
                    }
                })
                .collect();
            url.push('?');
            url.push_str(&q.join("&"));
        }
        url
    }

    pub fn signed_headers(&self) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        let key = (!self.key.is_empty()).then_some(self.key.as_str());
        let bucket = (!self.bucket.is_empty()).then_some(self.bucket.as_str());
        sign::sign_request(
            self.version,
            self.method,
            bucket,
            key,
            &self.query,
            &mut headers,
            &self.creds,
            "cn-hangzhou",
            SystemTime::now(),
        );
        headers
    }

    pub async fn try_send(self, e: &EmulatorHandle) -> reqwest::Result<reqwest::Response> {
        let mut headers = self.signed_headers();
        if let Some(host) = &self.host {
            headers.push(("host".into(), host.clone()));
        }
        let mut rb = client().request(
            reqwest::Method::from_bytes(self.method.as_bytes()).unwrap(),
            self.url(&e.endpoint()),
        );
        for (k, v) in &headers {
            rb = rb.header(k, v);
        }
        rb.body(self.body).send().await
    }

    pub async fn send(self, e: &EmulatorHandle) -> reqwest::Response {
        self.try_send(e).await.unwrap()
    }
}

/// A response header's value.
pub fn hv(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Every `<tag>text</tag>` value of an XML answer, in order (`&quot;` unescaped).
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split(&close).next())
        .map(|s| s.replace("&quot;", "\""))
        .collect()
}

/// An error answer's status, its `<Code>` (empty without one) and its whole body.
pub async fn error_response(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let code = xml_values(&text, "Code")
        .into_iter()
        .next()
        .unwrap_or_default();
    (status, code, text)
}

/// An error answer's status and `<Code>`.
pub async fn error_code(r: reqwest::Response) -> (u16, String) {
    let (status, code, _) = error_response(r).await;
    (status, code)
}

/// The base64 MD5 of `data`, as `Content-MD5` carries it.
pub fn md5_b64(data: &[u8]) -> String {
    use base64::Engine as _;
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}
