//! Signature V1 (HMAC-SHA1): string to sign, header and presigned-URL forms, and the parser
//! the emulator verifies with.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::SignableRequest;
use crate::oss::credentials::Credentials;
use crate::oss::protocol::header;

type HmacSha1 = Hmac<Sha1>;

/// Query parameters that V1 signs (besides every `x-oss-*` parameter).
const SUBRESOURCES: &[&str] = &[
    "acl",
    "append",
    "bucketInfo",
    "callback",
    "callback-var",
    "cloudboxes",
    "comp",
    "continuation-token",
    "cors",
    "delete",
    "encryption",
    "lifecycle",
    "live",
    "location",
    "logging",
    "metaQuery",
    "objectMeta",
    "partNumber",
    "policy",
    "position",
    "qos",
    "referer",
    "regionList",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "security-token",
    "sequential",
    "stat",
    "status",
    "style",
    "styleName",
    "symlink",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
    "worm",
    "wormExtend",
    "wormId",
];

/// Whether a query parameter is a V1 sub-resource (signed), including any `x-oss-*` one.
pub fn is_subresource(name: &str) -> bool {
    name.starts_with(header::OSS_PREFIX) || SUBRESOURCES.contains(&name)
}

/// `/bucket/key` with the key raw (not encoded), then the sorted sub-resources.
pub fn canonical_resource(req: &SignableRequest<'_>, extra_subresources: &[&str]) -> String {
    let mut resource = match (req.bucket, req.key) {
        (Some(bucket), Some(key)) => format!("/{bucket}/{key}"),
        (Some(bucket), None) => format!("/{bucket}/"),
        _ => "/".to_string(),
    };
    let mut params: Vec<&(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| is_subresource(k) || extra_subresources.contains(&k.as_str()))
        .collect();
    params.sort();
    if !params.is_empty() {
        let joined: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        resource.push('?');
        resource.push_str(&joined.join("&"));
    }
    resource
}

/// The V1 string to sign; `date` is the `Date` header value (or `Expires` for presigning).
pub fn string_to_sign(
    req: &SignableRequest<'_>,
    date: &str,
    extra_subresources: &[&str],
) -> String {
    let mut out = String::new();
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&req.header("content-md5").unwrap_or_default());
    out.push('\n');
    out.push_str(&req.header("content-type").unwrap_or_default());
    out.push('\n');
    out.push_str(date);
    out.push('\n');
    for (name, value) in req.canonical_headers(|name| name.starts_with(header::OSS_PREFIX)) {
        out.push_str(&name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    out.push_str(&canonical_resource(req, extra_subresources));
    out
}

/// Base64 HMAC-SHA1 of the string to sign.
#[allow(clippy::expect_used, reason = "HMAC accepts keys of any length")]
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha1::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `OSS {access_key_id}:{signature}`.
pub fn authorization(access_key_id: &str, signature: &str) -> String {
    format!("OSS {access_key_id}:{signature}")
}

/// Presigns `req` until `expires` (absolute Unix seconds): returns the query parameters to
/// append. An STS token becomes the signed `security-token` sub-resource.
pub fn presign(
    req: &SignableRequest<'_>,
    credentials: &Credentials,
    expires: u64,
) -> Vec<(String, String)> {
    let mut query = req.query.to_vec();
    let mut added = Vec::new();
    if let Some(token) = &credentials.security_token {
        query.push(("security-token".into(), token.clone()));
        added.push(("security-token".to_string(), token.clone()));
    }
    let signed = SignableRequest {
        query: &query,
        ..*req
    };
    let sts = string_to_sign(&signed, &expires.to_string(), &[]);
    added.push(("OSSAccessKeyId".into(), credentials.access_key_id.clone()));
    added.push(("Expires".into(), expires.to_string()));
    added.push((
        "Signature".into(),
        signature(&credentials.access_key_secret, &sts),
    ));
    added
}

/// A parsed V1 `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The AccessKey ID.
    pub access_key_id: String,
    /// The base64 signature.
    pub signature: String,
}

impl ParsedAuthorization {
    /// Parses `OSS ak:signature`; `None` when malformed.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix("OSS ")?;
        let (access_key_id, signature) = rest.rsplit_once(':')?;
        if access_key_id.is_empty() || signature.is_empty() {
            return None;
        }
        Some(Self {
            access_key_id: access_key_id.to_string(),
            signature: signature.to_string(),
        })
    }
}

/// The date a V1 header signature covers on line 4, for VERIFYING what SDKs send:
/// `x-oss-date` when present (PY2/oss2/ali-oss sign it; ali-oss sends only that, RFC 1123),
/// else `Date`. The client itself sends only `Date` for V1.
pub fn signed_date(req: &SignableRequest<'_>) -> Option<String> {
    req.header(header::DATE).or_else(|| req.header("date"))
}

/// Whether decoded query parameters carry a V1 presigned signature.
pub fn is_presigned(query: &[(String, String)]) -> bool {
    query.iter().any(|(k, _)| k == "OSSAccessKeyId")
}

/// The V1 presigned-URL parameters of an incoming request (what the emulator verifies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedPresign {
    /// `OSSAccessKeyId`.
    pub access_key_id: String,
    /// `Expires` exactly as sent (it is what line 4 of the string to sign holds).
    pub expires_text: String,
    /// `Expires` as absolute Unix seconds.
    pub expires: u64,
    /// `security-token` (a signed sub-resource), if present.
    pub security_token: Option<String>,
    /// The base64 `Signature`.
    pub signature: String,
}

impl ParsedPresign {
    /// Parses the decoded query pairs of a V1 presigned URL. `None` when `OSSAccessKeyId`,
    /// `Expires` (decimal digits) or `Signature` is missing, empty, repeated or malformed.
    /// Verify with [`string_to_sign`] over the full query (`OSSAccessKeyId`, `Expires` and
    /// `Signature` are not sub-resources, so they drop out) and `expires_text` as the date.
    pub fn parse(query: &[(String, String)]) -> Option<Self> {
        let one = |name: &str| -> Option<Option<&str>> {
            let mut values = query.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
            let first = values.next();
            if values.next().is_some() {
                return None;
            }
            Some(first.map(String::as_str))
        };
        let access_key_id = one("OSSAccessKeyId")??;
        let expires_text = one("Expires")??;
        let signature = one("Signature")??;
        if access_key_id.is_empty()
            || signature.is_empty()
            || expires_text.is_empty()
            || !expires_text.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Self {
            access_key_id: access_key_id.to_string(),
            expires_text: expires_text.to_string(),
            expires: expires_text.parse().ok()?,
            security_token: one("security-token")?.map(String::from),
            signature: signature.to_string(),
        })
    }
}
