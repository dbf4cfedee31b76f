//! Shared helpers for the OSS operation and client tests: bucket, key, version and header
//! helpers (here), the SDK captures' signatures ([`capture_sign`]), a loopback HTTP server
//! ([`loopback`]).

pub mod capture_sign;
pub mod loopback;

use super::*;
use http::HeaderValue;

pub fn bucket() -> BucketName {
    BucketName::parse("examplebucket").unwrap()
}

pub fn key(k: &str) -> ObjectKey {
    ObjectKey::parse(k).unwrap()
}

/// The version ID used by the wire captures.
pub const CAPTURE_VERSION: &str =
    "CAEQNhiBgMDJgZCA0BYiIDc4MGZjZGI2OTBjOTRmNTE5NmU5NmFhZjhjYmY0****";

pub fn version() -> VersionId {
    VersionId::parse(CAPTURE_VERSION).unwrap()
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

/// Headers sorted by name for order-independent comparison.
pub fn sorted(req: &OssRequest) -> Vec<(String, String)> {
    let mut h = req.headers.clone();
    h.sort();
    h
}

/// Pairs as owned strings, in the order given (a request's query order is the wire's).
pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Pairs as owned strings, sorted.
pub fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = pairs(p);
    v.sort();
    v
}
