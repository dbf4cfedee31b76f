//! Signature V4 (`OSS4-HMAC-SHA256`): canonical request, string to sign, key derivation,
//! header and presigned-URL forms, and the parser the emulator verifies with.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{SignableRequest, uri_encode};
use crate::oss::credentials::Credentials;
use crate::oss::protocol::header;

/// The algorithm name in `Authorization` and presigned URLs.
pub const ALGORITHM: &str = "OSS4-HMAC-SHA256";
/// The only payload hash OSS accepts.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The product for OSS (CloudBox uses `oss-cloudbox`).
pub const PRODUCT: &str = "oss";
/// The scope terminator.
pub const TERMINATOR: &str = "aliyun_v4_request";
/// The longest presigned URL lifetime OSS accepts, in seconds (7 days).
pub const MAX_PRESIGN_EXPIRES: u64 = 604_800;

type HmacSha256 = Hmac<Sha256>;

/// `YYYYMMDDTHHMMSSZ` (UTC) for `time`.
pub fn format_datetime(time: SystemTime) -> String {
    let t = time::OffsetDateTime::from(super::clamp_time(time));
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses `YYYYMMDDTHHMMSSZ` back into a time.
pub fn parse_datetime(value: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let parsed = time::PrimitiveDateTime::parse(value, format).ok()?;
    Some(parsed.assume_utc().into())
}

/// `/bucket/key` URI-encoded with `/` kept; `/bucket/` for a bucket, `/` for the service.
pub fn canonical_uri(bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (Some(bucket), Some(key)) => uri_encode(&format!("/{bucket}/{key}"), true),
        (Some(bucket), None) => format!("/{}/", uri_encode(bucket, true)),
        _ => "/".into(),
    }
}

/// Every parameter, key and value URI-encoded (`/` too), sorted, `k=v` or a bare `k`.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The requested additional headers that count: lower-cased, minus those signed anyway
/// (`x-oss-*`, `content-type`, `content-md5`), minus those absent or empty, unique, sorted.
pub fn additional_headers(requested: &[&str], req: &SignableRequest<'_>) -> Vec<String> {
    let mut names: Vec<String> = requested
        .iter()
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty() && !is_default_signed(name))
        .filter(|name| req.header(name).is_some_and(|v| !v.is_empty()))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn is_default_signed(lower_name: &str) -> bool {
    lower_name.starts_with(header::OSS_PREFIX)
        || lower_name == "content-type"
        || lower_name == "content-md5"
}

/// The canonical request: method, URI, query, headers, additional header names, payload hash.
pub fn canonical_request(req: &SignableRequest<'_>, additional: &[String]) -> String {
    let headers = req
        .canonical_headers(|name| is_default_signed(name) || additional.iter().any(|a| a == name));
    let mut canonical_headers = String::new();
    for (name, value) in headers {
        canonical_headers.push_str(&name);
        canonical_headers.push(':');
        canonical_headers.push_str(&value);
        canonical_headers.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.bucket, req.key),
        canonical_query(req.query),
        canonical_headers,
        additional.join(";"),
        UNSIGNED_PAYLOAD
    )
}

/// `date/region/product/aliyun_v4_request`.
pub fn scope(date: &str, region: &str, product: &str) -> String {
    format!("{date}/{region}/{product}/{TERMINATOR}")
}

/// `OSS4-HMAC-SHA256\n{datetime}\n{scope}\n{hex sha256(canonical request)}`.
pub fn string_to_sign(datetime: &str, scope: &str, canonical_request: &str) -> String {
    let hash = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    format!("{ALGORITHM}\n{datetime}\n{scope}\n{hash}")
}

#[allow(clippy::expect_used, reason = "HMAC accepts keys of any length")]
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The signing key: HMAC chain over `aliyun_v4{secret}`, date, region, product, terminator.
pub fn signing_key(secret: &str, date: &str, region: &str, product: &str) -> [u8; 32] {
    let k1 = hmac(format!("aliyun_v4{secret}").as_bytes(), date.as_bytes());
    let k2 = hmac(&k1, region.as_bytes());
    let k3 = hmac(&k2, product.as_bytes());
    hmac(&k3, TERMINATOR.as_bytes())
}

/// Lower-case hex HMAC-SHA256 of the string to sign.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac(signing_key, string_to_sign.as_bytes()))
}

/// The `Authorization` value; `AdditionalHeaders=` is left out when the list is empty
/// (OSS rejects an empty one).
pub fn authorization(
    access_key_id: &str,
    scope: &str,
    additional: &[String],
    signature: &str,
) -> String {
    if additional.is_empty() {
        format!("{ALGORITHM} Credential={access_key_id}/{scope},Signature={signature}")
    } else {
        format!(
            "{ALGORITHM} Credential={access_key_id}/{scope},AdditionalHeaders={},Signature={signature}",
            additional.join(";")
        )
    }
}

/// Signs `req` (which must already carry `x-oss-date` = `datetime`) and returns the
/// `Authorization` value.
pub fn authorization_for(
    req: &SignableRequest<'_>,
    credentials: &Credentials,
    region: &str,
    product: &str,
    datetime: &str,
    additional: &[String],
) -> String {
    let date = datetime.get(..8).unwrap_or(datetime);
    let scope = scope(date, region, product);
    let sts = string_to_sign(datetime, &scope, &canonical_request(req, additional));
    let key = signing_key(&credentials.access_key_secret, date, region, product);
    authorization(
        &credentials.access_key_id,
        &scope,
        additional,
        &signature(&key, &sts),
    )
}

/// Presigns `req`: returns the query parameters to append (including `x-oss-signature`).
/// `req.query` must not contain them already. `expires` is a duration in seconds.
pub fn presign(
    req: &SignableRequest<'_>,
    credentials: &Credentials,
    region: &str,
    product: &str,
    now: SystemTime,
    expires: u64,
    additional_requested: &[&str],
) -> Vec<(String, String)> {
    let datetime = format_datetime(now);
    let date = datetime.get(..8).unwrap_or(&datetime);
    let scope = scope(date, region, product);
    let additional = additional_headers(additional_requested, req);
    let mut added = vec![
        (header::SIGNATURE_VERSION.to_string(), ALGORITHM.to_string()),
        (header::DATE.to_string(), datetime.clone()),
        (header::EXPIRES.to_string(), expires.to_string()),
        (
            header::CREDENTIAL.to_string(),
            format!("{}/{scope}", credentials.access_key_id),
        ),
    ];
    if let Some(token) = &credentials.security_token {
        added.push((header::SECURITY_TOKEN.into(), token.clone()));
    }
    if !additional.is_empty() {
        added.push((header::ADDITIONAL_HEADERS.into(), additional.join(";")));
    }
    let mut query = req.query.to_vec();
    query.extend(added.iter().cloned());
    let signed = SignableRequest {
        query: &query,
        ..*req
    };
    let sts = string_to_sign(&datetime, &scope, &canonical_request(&signed, &additional));
    let key = signing_key(&credentials.access_key_secret, date, region, product);
    added.push((header::SIGNATURE.into(), signature(&key, &sts)));
    added
}

/// A parsed V4 `Authorization` header (what the emulator verifies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The AccessKey ID from `Credential`.
    pub access_key_id: String,
    /// `YYYYMMDD` from the scope.
    pub date: String,
    /// The region from the scope.
    pub region: String,
    /// The product from the scope (`oss`).
    pub product: String,
    /// `AdditionalHeaders`, lower-cased, in the order given.
    pub additional_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

impl ParsedAuthorization {
    /// Parses `OSS4-HMAC-SHA256 Credential=AK/DATE/REGION/PRODUCT/aliyun_v4_request,
    /// [AdditionalHeaders=a;b,] Signature=hex`, with `,` or `, ` separators and the fields
    /// in any order. `None` when malformed.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix(ALGORITHM)?;
        if !rest.starts_with(' ') {
            return None;
        }
        let mut credential = None;
        let mut additional = None;
        let mut signature = None;
        for field in rest.split(',') {
            let (name, value) = field.trim().split_once('=')?;
            let slot = match name {
                "Credential" => &mut credential,
                "AdditionalHeaders" => &mut additional,
                "Signature" => &mut signature,
                _ => return None,
            };
            if slot.replace(value.trim().to_string()).is_some() {
                return None;
            }
        }
        let credential = credential?;
        let (access_key_id, date, region, product) = parse_credential(&credential)?;
        let additional_headers = match additional {
            None => Vec::new(),
            Some(list) => parse_header_list(&list)?,
        };
        let signature = parse_hex_signature(&signature?)?;
        Some(Self {
            access_key_id: access_key_id.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            product: product.to_string(),
            additional_headers,
            signature,
        })
    }
}

/// The V4 presigned-URL parameters of an incoming request (what the emulator verifies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedPresign {
    /// The AccessKey ID from `x-oss-credential`.
    pub access_key_id: String,
    /// `YYYYMMDD` from the scope.
    pub date: String,
    /// The region from the scope.
    pub region: String,
    /// The product from the scope (`oss`).
    pub product: String,
    /// `x-oss-date` (`YYYYMMDDTHHMMSSZ`), checked to parse and to start with `date`.
    pub datetime: String,
    /// `x-oss-expires`: lifetime in seconds from `datetime` (not range-checked here).
    pub expires: u64,
    /// `x-oss-additional-headers`, lower-cased, in the order given.
    pub additional_headers: Vec<String>,
    /// `x-oss-security-token`, if present.
    pub security_token: Option<String>,
    /// The hex `x-oss-signature`, lower-cased.
    pub signature: String,
}

/// Whether decoded query parameters carry a V4 presigned signature.
pub fn is_presigned(query: &[(String, String)]) -> bool {
    query.iter().any(|(k, _)| k == header::SIGNATURE)
}

impl ParsedPresign {
    /// Parses the decoded query pairs of a presigned URL. `None` when a required parameter
    /// (`x-oss-signature-version`, `x-oss-credential`, `x-oss-date`, `x-oss-expires`,
    /// `x-oss-signature`) is missing, repeated or malformed.
    pub fn parse(query: &[(String, String)]) -> Option<Self> {
        let one = |name: &str| -> Option<Option<&str>> {
            let mut values = query.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
            let first = values.next();
            if values.next().is_some() {
                return None;
            }
            Some(first.map(String::as_str))
        };
        if one(header::SIGNATURE_VERSION)?? != ALGORITHM {
            return None;
        }
        let (access_key_id, date, region, product) = parse_credential(one(header::CREDENTIAL)??)?;
        let datetime = one(header::DATE)??;
        parse_datetime(datetime)?;
        if !datetime.starts_with(date) {
            return None;
        }
        let expires_text = one(header::EXPIRES)??;
        if expires_text.is_empty() || !expires_text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let expires = expires_text.parse().ok()?;
        let additional_headers = match one(header::ADDITIONAL_HEADERS)? {
            None => Vec::new(),
            Some(list) => parse_header_list(list)?,
        };
        let signature = parse_hex_signature(one(header::SIGNATURE)??)?;
        Some(Self {
            access_key_id: access_key_id.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            product: product.to_string(),
            datetime: datetime.to_string(),
            expires,
            additional_headers,
            security_token: one(header::SECURITY_TOKEN)?.map(String::from),
            signature,
        })
    }

    /// The query the signature covers: every pair except `x-oss-signature`.
    pub fn signed_query(query: &[(String, String)]) -> Vec<(String, String)> {
        query
            .iter()
            .filter(|(k, _)| k != header::SIGNATURE)
            .cloned()
            .collect()
    }
}

/// `AK/DATE/REGION/PRODUCT/aliyun_v4_request` → (ak, date, region, product). The AccessKey
/// ID is everything before the last four `/`-separated fields.
fn parse_credential(credential: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = credential.rsplitn(5, '/');
    let terminator = parts.next()?;
    let product = parts.next()?;
    let region = parts.next()?;
    let date = parts.next()?;
    let access_key_id = parts.next()?;
    let valid = terminator == TERMINATOR
        && !access_key_id.is_empty()
        && !region.is_empty()
        && !product.is_empty()
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit());
    valid.then_some((access_key_id, date, region, product))
}

/// `a;b` → lower-cased names; an empty list or an empty element is malformed
/// (OSS EC 0002-00000209/210).
fn parse_header_list(list: &str) -> Option<Vec<String>> {
    let names: Vec<String> = list
        .split(';')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    (!names.iter().any(String::is_empty)).then_some(names)
}

/// 64 hex digits, lower-cased.
fn parse_hex_signature(signature: &str) -> Option<String> {
    (signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| signature.to_ascii_lowercase())
}
