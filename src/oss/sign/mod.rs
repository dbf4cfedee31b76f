//! OSS request signing, V4 (`OSS4-HMAC-SHA256`, the default) and V1 (HMAC-SHA1).
//!
//! Everything here is pure: the time is a parameter and nothing does I/O. The client signs
//! outgoing requests with [`sign_request`]; the emulator verifies incoming ones by rebuilding
//! the same canonical forms from what it received, with the same functions. Canonical forms
//! are always built from the caller's own model (bucket, decoded key, decoded query pairs,
//! final headers), never from a re-parsed URL, so encoder and verifier cannot disagree.

pub mod v1;
pub mod v4;

use std::{fmt, str::FromStr, time::SystemTime};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::credentials::Credentials;
use crate::oss::protocol::header;

/// OSS signature versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    /// HMAC-SHA1 (`Authorization: OSS ak:signature`).
    V1,
    /// `OSS4-HMAC-SHA256` (the default; OSS retires V1 for new accounts).
    #[default]
    V4,
}

impl FromStr for SignatureVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "v1" => Ok(Self::V1),
            "v4" => Ok(Self::V4),
            other => Err(format!(
                "unknown signature version {other:?}; expected v1 or v4"
            )),
        }
    }
}

impl fmt::Display for SignatureVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V1 => "v1",
            Self::V4 => "v4",
        })
    }
}

/// What a signature covers, taken from the caller's own model.
#[derive(Clone, Copy, Debug)]
pub struct SignableRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// The bucket, if the request addresses one.
    pub bucket: Option<&'a str>,
    /// The decoded object key, if the request addresses an object.
    pub key: Option<&'a str>,
    /// Decoded query pairs; an empty value is a bare parameter (`?tagging`).
    pub query: &'a [(String, String)],
    /// Every header that is sent (any name case).
    pub headers: &'a [(String, String)],
}

impl SignableRequest<'_> {
    /// The trimmed value of a header (case-insensitive name); repeated headers joined by `,`.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }

    /// Headers with lower-case names and trimmed values, repeated names joined by `,`,
    /// sorted by name, keeping only those `keep` accepts.
    pub(crate) fn canonical_headers(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        let mut merged: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
        for (name, value) in self.headers {
            let lower = name.to_ascii_lowercase();
            if keep(&lower) {
                merged.entry(lower).or_default().push(value.trim());
            }
        }
        merged
            .into_iter()
            .map(|(name, values)| (name, values.join(",")))
            .collect()
    }
}

/// Bytes that stay literal in OSS URI encoding: `A-Z a-z 0-9 - _ . ~`.
const URI_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes every byte outside `A-Z a-z 0-9 - _ . ~` (upper-case hex); keeps `/`
/// literal when `keep_slash`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    if keep_slash {
        s.split('/')
            .map(|segment| utf8_percent_encode(segment, URI_UNRESERVED).to_string())
            .collect::<Vec<_>>()
            .join("/")
    } else {
        utf8_percent_encode(s, URI_UNRESERVED).to_string()
    }
}

/// Decodes a raw query string (`a=1&b&c=%2F`) into pairs. `+` stays `+`: OSS clients never
/// send form encoding, and `+` is a legal character in values.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// Percent-decodes `s` as UTF-8 (invalid sequences are replaced, never a panic).
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The `Date` header value for `now` (RFC 1123, GMT).
pub fn http_date(now: SystemTime) -> String {
    httpdate::fmt_http_date(clamp_time(now))
}

/// Clamps `time` into 1970-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z, the range the date
/// formatters handle without panicking.
pub(crate) fn clamp_time(time: SystemTime) -> SystemTime {
    const MAX_UNIX: u64 = 253_402_300_799;
    match time.duration_since(std::time::UNIX_EPOCH) {
        Err(_) => std::time::UNIX_EPOCH,
        Ok(d) if d.as_secs() > MAX_UNIX => {
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(MAX_UNIX)
        }
        Ok(_) => time,
    }
}

/// Client side: adds the authentication headers to `headers`, after every other header is set.
///
/// V4 adds `x-oss-date`, `x-oss-content-sha256: UNSIGNED-PAYLOAD`, `Date` (unsigned, handy for
/// clock-skew diagnostics), `x-oss-security-token` for STS, and `Authorization`. V1 adds
/// `Date`, `x-oss-security-token` for STS, and `Authorization`; it never sends `x-oss-date`
/// (SDKs disagree on which date V1 signs when both are present).
#[allow(clippy::too_many_arguments)]
pub fn sign_request(
    version: SignatureVersion,
    method: &str,
    bucket: Option<&str>,
    key: Option<&str>,
    query: &[(String, String)],
    headers: &mut Vec<(String, String)>,
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) {
    headers.retain(|(name, _)| {
        ![
            "authorization",
            "date",
            header::DATE,
            header::CONTENT_SHA256,
            header::SECURITY_TOKEN,
        ]
        .iter()
        .any(|auth| name.eq_ignore_ascii_case(auth))
    });
    if let Some(token) = &credentials.security_token {
        headers.push((header::SECURITY_TOKEN.into(), token.clone()));
    }
    headers.push(("date".into(), http_date(now)));
    let authorization = match version {
        SignatureVersion::V4 => {
            let datetime = v4::format_datetime(now);
            headers.push((header::DATE.into(), datetime.clone()));
            headers.push((header::CONTENT_SHA256.into(), v4::UNSIGNED_PAYLOAD.into()));
            let req = SignableRequest {
                method,
                bucket,
                key,
                query,
                headers,
            };
            v4::authorization_for(&req, credentials, region, v4::PRODUCT, &datetime, &[])
        }
        SignatureVersion::V1 => {
            let date = http_date(now);
            let req = SignableRequest {
                method,
                bucket,
                key,
                query,
                headers,
            };
            let string_to_sign = v1::string_to_sign(&req, &date, &[]);
            v1::authorization(
                &credentials.access_key_id,
                &v1::signature(&credentials.access_key_secret, &string_to_sign),
            )
        }
    };
    headers.push(("authorization".into(), authorization));
}

#[cfg(test)]
mod vectors;
