//! Test support shared by the multipart, append and copy tests: reproduce the
//! SDK captures' signatures with our builders and the signer.

use std::time::{Duration, SystemTime};

use super::super::OssRequest;
use crate::oss::credentials::Credentials;
use crate::oss::sign::SignatureVersion;
use crate::oss::{Addressing, Client, ClientConfig};

/// The signature (V4 `Signature=…`, V1 after `:`) our client computes for
/// `req` at the captures' time (2025-01-15T08:30:00Z) with their keys.
pub fn signature(req: &OssRequest, version: SignatureVersion) -> String {
    let client = Client::new(ClientConfig {
        endpoint: "http://127.0.0.1:18765".into(),
        region: "cn-hangzhou".into(),
        signature_version: version,
        addressing: Addressing::Auto,
        credentials: Credentials {
            access_key_id: "LTAI5tExampleAccessKeyId".into(),
            access_key_secret: "ExampleAccessKeySecret0123456789abc".into(),
            security_token: None,
        },
        connect_timeout: Duration::from_secs(1),
        request_timeout: None,
    })
    .unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_736_929_800);
    let (_, headers) = client.signed_request(req, at).unwrap();
    let auth = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    match auth.split_once("Signature=") {
        Some((_, sig)) => sig.to_string(),
        None => auth.rsplit(':').next().unwrap_or_default().to_string(),
    }
}

/// `req` plus the empty-body `Content-MD5` pyv2 adds to body-less requests
/// (docs/oss-protocol.md, "Where the SDKs disagree"): everything else is ours.
pub fn with_pyv2_empty_md5(req: &OssRequest) -> OssRequest {
    let mut r = req.clone();
    r.headers
        .push(("content-md5".into(), "1B2M2Y8AsgTpgAmY7PhCfg==".into()));
    r
}
