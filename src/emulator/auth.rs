//! Request authentication: V1 and V4 header signatures, V1 and V4 presigned URLs, STS
//! tokens and clock skew, as one pure function of the request parts and the time.
//!
//! The canonical forms come from [`crate::oss::sign`], the same code the client signs with;
//! nothing here re-implements a signer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::oss::credentials::Credentials;
use crate::oss::protocol;
use crate::oss::sign::{SignableRequest, v1, v4};

/// What is verified: the request as the emulator received it (bucket and key from routing,
/// decoded query pairs, every header).
pub type AuthRequest<'a> = SignableRequest<'a>;

/// Largest accepted difference between the request time and the server time.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// How a request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The AccessKey ID that signed the request.
    pub access_key_id: String,
    /// `V1`/`V4`, header or presigned URL.
    pub method: AuthMethod,
}

/// The four ways to sign an OSS request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `Authorization: OSS ak:sig`.
    V1Header,
    /// `Authorization: OSS4-HMAC-SHA256 …`.
    V4Header,
    /// `?OSSAccessKeyId=…&Expires=…&Signature=…`.
    V1Presigned,
    /// `?x-oss-signature-version=OSS4-HMAC-SHA256&…&x-oss-signature=…`.
    V4Presigned,
}

/// Verifies a request against the accepted `credentials` at time `now`.
pub fn verify(
    req: &AuthRequest<'_>,
    credentials: &[Credentials],
    region: &str,
    now: SystemTime,
) -> Result<Verified, ApiError> {
    if let Some(auth) = req.header("authorization") {
        if auth.starts_with(v4::ALGORITHM) {
            return verify_v4_header(req, &auth, credentials, region, now);
        }
        if auth.starts_with("OSS ") {
            return verify_v1_header(req, &auth, credentials, now);
        }
        return Err(
            ApiError::invalid_argument("Authorization header is invalid.")
                .with("Authorization", auth),
        );
    }
    if v4::is_presigned(req.query) {
        return verify_v4_query(req, credentials, region, now);
    }
    if v1::is_presigned(req.query) || query(req, "Signature").is_some() {
        return verify_v1_query(req, credentials, now);
    }
    Err(ApiError::access_denied(
        "You have no right to access this object because of bucket acl.",
    ))
}

fn query<'a>(req: &'a AuthRequest<'_>, name: &str) -> Option<&'a str> {
    req.query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn find<'a>(
    credentials: &'a [Credentials],
    access_key_id: &str,
) -> Result<&'a Credentials, ApiError> {
    credentials
        .iter()
        .find(|c| c.access_key_id == access_key_id)
        .ok_or_else(|| ApiError::invalid_access_key_id(access_key_id))
}

/// An STS credential requires its token, from the header or the given query parameter.
fn check_token(
    req: &AuthRequest<'_>,
    cred: &Credentials,
    query_param: Option<&str>,
) -> Result<(), ApiError> {
    let sent = req
        .header(protocol::header::SECURITY_TOKEN)
        .or_else(|| query_param.and_then(|p| query(req, p)).map(str::to_owned));
    match (&cred.security_token, sent) {
        (None, None) => Ok(()),
        (Some(expected), Some(sent)) => {
            if bool::from(expected.as_bytes().ct_eq(sent.as_bytes())) {
                Ok(())
            } else {
                Err(ApiError::invalid_security_token())
            }
        }
        // A temporary key without its token (or a token with a long-term key).
        (Some(_), None) | (None, Some(_)) => {
            Err(ApiError::invalid_access_key_id(&cred.access_key_id))
        }
    }
}

fn unix(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i128,
        Err(e) => -(e.duration().as_secs() as i128),
    }
}

fn check_skew(request_time: SystemTime, now: SystemTime) -> Result<(), ApiError> {
    let diff = (unix(request_time) - unix(now)).unsigned_abs();
    if diff > u128::from(MAX_SKEW.as_secs()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )
        .ec("0002-00000504")
        .with("RequestTime", httpdate::fmt_http_date(request_time))
        .with("ServerTime", httpdate::fmt_http_date(now))
        .with("MaxAllowedSkewMilliseconds", "900000"));
    }
    Ok(())
}

fn mismatch(string_to_sign: &str, provided: &str, access_key_id: &str) -> ApiError {
    let bytes: Vec<String> = string_to_sign.bytes().map(|b| format!("{b:02x}")).collect();
    ApiError::new(
        StatusCode::FORBIDDEN,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
    .with("StringToSign", string_to_sign)
    .with("StringToSignBytes", bytes.join(" "))
    .with("SignatureProvided", provided)
    .with("OSSAccessKeyId", access_key_id)
}

fn equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn verify_v1_header(
    req: &AuthRequest<'_>,
    auth: &str,
    credentials: &[Credentials],
    now: SystemTime,
) -> Result<Verified, ApiError> {
    let parsed = v1::ParsedAuthorization::parse(auth).ok_or_else(|| {
        ApiError::invalid_argument("Authorization header is invalid.").with("Authorization", auth)
    })?;
    let cred = find(credentials, &parsed.access_key_id)?;
    // PY2/oss2/ali-oss sign x-oss-date when present (ali-oss sends only that), else Date.
    let date = v1::signed_date(req).ok_or_else(|| {
        ApiError::access_denied("Missing Date or x-oss-date header.").ec("0002-00000503")
    })?;
    let request_time = httpdate::parse_http_date(&date)
        .ok()
        .or_else(|| v4::parse_datetime(&date))
        .ok_or_else(|| {
            ApiError::access_denied(format!("Invalid date {date:?}.")).ec("0002-00000503")
        })?;
    check_skew(request_time, now)?;
    check_token(req, cred, None)?;
    let sts = v1::string_to_sign(req, &date, &[]);
    let expected = v1::signature(&cred.access_key_secret, &sts);
    if !equal(&expected, &parsed.signature) {
        return Err(mismatch(&sts, &parsed.signature, &parsed.access_key_id));
    }
    Ok(Verified {
        access_key_id: parsed.access_key_id,
        method: AuthMethod::V1Header,
    })
}

fn verify_v1_query(
    req: &AuthRequest<'_>,
    credentials: &[Credentials],
    now: SystemTime,
) -> Result<Verified, ApiError> {
    let p = v1::ParsedPresign::parse(req.query).ok_or_else(|| {
        ApiError::access_denied(
            "The presigned URL needs one OSSAccessKeyId, one Expires (Unix seconds) and one Signature.",
        )
    })?;
    let cred = find(credentials, &p.access_key_id)?;
    if unix(now) > i128::from(p.expires) {
        return Err(ApiError::access_denied("Request has expired.")
            .with(
                "Expires",
                httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(p.expires)),
            )
            .with("ServerTime", httpdate::fmt_http_date(now)));
    }
    check_token(req, cred, Some("security-token"))?;
    let sts = v1::string_to_sign(req, &p.expires_text, &[]);
    let expected = v1::signature(&cred.access_key_secret, &sts);
    if !equal(&expected, &p.signature) {
        return Err(mismatch(&sts, &p.signature, &p.access_key_id));
    }
    Ok(Verified {
        access_key_id: p.access_key_id,
        method: AuthMethod::V1Presigned,
    })
}

fn check_scope(
    date: &str,
    datetime: &str,
    scope_region: &str,
    product: &str,
    region: &str,
) -> Result<(), ApiError> {
    if !datetime.starts_with(date) {
        return Err(ApiError::invalid_argument(format!(
            "Invalid signing date in the credential scope: {date:?} is not the date of {datetime:?}."
        )));
    }
    if scope_region != region {
        return Err(ApiError::invalid_argument(format!(
            "Invalid signing region in the credential scope: expected {region:?}, got {scope_region:?}."
        )));
    }
    if product != v4::PRODUCT {
        return Err(ApiError::invalid_argument(format!(
            "Invalid signing product in the credential scope: expected \"oss\", got {product:?}."
        )));
    }
    Ok(())
}

fn v4_compute(
    req: &AuthRequest<'_>,
    cred: &Credentials,
    datetime: &str,
    date: &str,
    region: &str,
    additional: &[String],
) -> (String, String, String) {
    let scope = v4::scope(date, region, v4::PRODUCT);
    let canonical = v4::canonical_request(req, additional);
    let sts = v4::string_to_sign(datetime, &scope, &canonical);
    let key = v4::signing_key(&cred.access_key_secret, date, region, v4::PRODUCT);
    (v4::signature(&key, &sts), sts, canonical)
}

fn verify_v4_header(
    req: &AuthRequest<'_>,
    auth: &str,
    credentials: &[Credentials],
    region: &str,
    now: SystemTime,
) -> Result<Verified, ApiError> {
    let parsed = v4::ParsedAuthorization::parse(auth).ok_or_else(|| {
        ApiError::invalid_argument("Authorization header is invalid.")
            .with("Authorization", auth)
            .ec("0002-00000209")
    })?;
    let cred = find(credentials, &parsed.access_key_id)?;
    if let Some(payload) = req.header(protocol::header::CONTENT_SHA256)
        && payload != v4::UNSIGNED_PAYLOAD
    {
        return Err(ApiError::invalid_argument(format!(
            "x-oss-content-sha256 must be {}.",
            v4::UNSIGNED_PAYLOAD
        ))
        .ec("0002-00000214"));
    }
    let datetime = req
        .header(protocol::header::DATE)
        .ok_or_else(|| ApiError::access_denied("Missing x-oss-date header.").ec("0002-00000503"))?;
    let request_time = v4::parse_datetime(&datetime).ok_or_else(|| {
        ApiError::invalid_argument(format!(
            "x-oss-date {datetime:?} is not in the ISO 8601 basic format YYYYMMDDTHHMMSSZ."
        ))
        .ec("0002-00000502")
    })?;
    check_scope(
        &parsed.date,
        &datetime,
        &parsed.region,
        &parsed.product,
        region,
    )?;
    check_skew(request_time, now)?;
    check_token(req, cred, None)?;
    let (expected, sts, canonical) = v4_compute(
        req,
        cred,
        &datetime,
        &parsed.date,
        region,
        &parsed.additional_headers,
    );
    if !equal(&expected, &parsed.signature) {
        return Err(mismatch(&sts, &parsed.signature, &parsed.access_key_id)
            .with("CanonicalRequest", canonical));
    }
    Ok(Verified {
        access_key_id: parsed.access_key_id,
        method: AuthMethod::V4Header,
    })
}

fn verify_v4_query(
    req: &AuthRequest<'_>,
    credentials: &[Credentials],
    region: &str,
    now: SystemTime,
) -> Result<Verified, ApiError> {
    let p = v4::ParsedPresign::parse(req.query).ok_or_else(|| {
        ApiError::invalid_argument(
            "The presigned URL needs one each of x-oss-signature-version=OSS4-HMAC-SHA256, \
             x-oss-credential, x-oss-date (YYYYMMDDTHHMMSSZ), x-oss-expires and a hex x-oss-signature.",
        )
    })?;
    let cred = find(credentials, &p.access_key_id)?;
    if !(1..=v4::MAX_PRESIGN_EXPIRES).contains(&p.expires) {
        return Err(ApiError::invalid_argument(format!(
            "x-oss-expires {} must be 1 to {} seconds.",
            p.expires,
            v4::MAX_PRESIGN_EXPIRES
        ))
        .ec("0002-00000232"));
    }
    check_scope(&p.date, &p.datetime, &p.region, &p.product, region)?;
    let request_time = v4::parse_datetime(&p.datetime)
        .ok_or_else(|| ApiError::invalid_argument("x-oss-date is not YYYYMMDDTHHMMSSZ."))?;
    // Signed in the future by more than the allowed skew.
    if unix(request_time) - unix(now) > i128::from(MAX_SKEW.as_secs()) {
        check_skew(request_time, now)?;
    }
    if unix(now) > unix(request_time) + i128::from(p.expires) {
        return Err(ApiError::access_denied("Request has expired.")
            .with("ServerTime", httpdate::fmt_http_date(now)));
    }
    check_token(req, cred, Some(protocol::header::SECURITY_TOKEN))?;
    let signed_query = v4::ParsedPresign::signed_query(req.query);
    let signed = SignableRequest {
        query: &signed_query,
        ..*req
    };
    let (expected, sts, canonical) = v4_compute(
        &signed,
        cred,
        &p.datetime,
        &p.date,
        region,
        &p.additional_headers,
    );
    if !equal(&expected, &p.signature) {
        return Err(
            mismatch(&sts, &p.signature, &p.access_key_id).with("CanonicalRequest", canonical)
        );
    }
    Ok(Verified {
        access_key_id: p.access_key_id,
        method: AuthMethod::V4Presigned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::sign::{SignatureVersion, sign_request};

    fn creds(token: Option<&str>) -> Vec<Credentials> {
        vec![Credentials {
            access_key_id: "ak".into(),
            access_key_secret: "sk".into(),
            security_token: token.map(str::to_owned),
        }]
    }

    fn signed(
        version: SignatureVersion,
        c: &Credentials,
        now: SystemTime,
    ) -> Vec<(String, String)> {
        let mut headers = vec![("content-type".to_owned(), "text/plain".to_owned())];
        sign_request(
            version,
            "PUT",
            Some("bkt"),
            Some("a b/c+d"),
            &[("tagging".to_owned(), String::new())],
            &mut headers,
            c,
            "cn-hangzhou",
            now,
        );
        headers
    }

    fn req<'a>(headers: &'a [(String, String)], query: &'a [(String, String)]) -> AuthRequest<'a> {
        AuthRequest {
            method: "PUT",
            bucket: Some("bkt"),
            key: Some("a b/c+d"),
            query,
            headers,
        }
    }

    #[test]
    fn round_trips_and_skew_and_sts() {
        let now = UNIX_EPOCH + Duration::from_secs(1_763_800_000);
        let q = vec![("tagging".to_owned(), String::new())];
        for version in [SignatureVersion::V1, SignatureVersion::V4] {
            let c = creds(None);
            let h = signed(version, &c[0], now);
            let ok = verify(&req(&h, &q), &c, "cn-hangzhou", now).unwrap();
            assert_eq!(ok.access_key_id, "ak");
            let later = now + Duration::from_secs(16 * 60);
            let err = verify(&req(&h, &q), &c, "cn-hangzhou", later).unwrap_err();
            assert_eq!(err.code, "RequestTimeTooSkewed");
            let err = verify(&req(&h, &[]), &c, "cn-hangzhou", now).unwrap_err();
            assert_eq!(err.code, "SignatureDoesNotMatch");
            // STS: the token is required and must match.
            let sts = creds(Some("tok"));
            let h = signed(version, &sts[0], now);
            verify(&req(&h, &q), &sts, "cn-hangzhou", now).unwrap();
            let other = creds(Some("other"));
            let err = verify(&req(&h, &q), &other, "cn-hangzhou", now).unwrap_err();
            assert_eq!(err.code, "InvalidSecurityToken");
            let without: Vec<_> = h
                .iter()
                .filter(|(n, _)| n != "x-oss-security-token")
                .cloned()
                .collect();
            let err = verify(&req(&without, &q), &sts, "cn-hangzhou", now).unwrap_err();
            assert_eq!(err.code, "InvalidAccessKeyId");
        }
    }

    #[test]
    fn anonymous_and_unknown_key() {
        let now = SystemTime::now();
        let err = verify(&req(&[], &[]), &creds(None), "cn-hangzhou", now).unwrap_err();
        assert_eq!(err.code, "AccessDenied");
        let h = signed(SignatureVersion::V4, &creds(None)[0], now);
        let other = vec![Credentials {
            access_key_id: "other".into(),
            access_key_secret: "sk".into(),
            security_token: None,
        }];
        let q = vec![("tagging".to_owned(), String::new())];
        let err = verify(&req(&h, &q), &other, "cn-hangzhou", now).unwrap_err();
        assert_eq!(err.code, "InvalidAccessKeyId");
        let err = verify(&req(&h, &q), &creds(None), "cn-beijing", now).unwrap_err();
        assert_eq!(err.code, "InvalidArgument");
    }

    #[test]
    fn presigned_urls() {
        let now = UNIX_EPOCH + Duration::from_secs(1_763_800_000);
        for token in [None, Some("tok+/=")] {
            let c = creds(token);
            let base = vec![("versionId".to_owned(), "v1".to_owned())];
            let headers: Vec<(String, String)> = Vec::new();
            let r = AuthRequest {
                method: "GET",
                bucket: Some("bkt"),
                key: Some("k"),
                query: &base,
                headers: &headers,
            };
            // V4
            let mut q = base.clone();
            q.extend(v4::presign(&r, &c[0], "cn-hangzhou", "oss", now, 600, &[]));
            let r4 = AuthRequest { query: &q, ..r };
            assert_eq!(
                verify(&r4, &c, "cn-hangzhou", now).unwrap().method,
                AuthMethod::V4Presigned
            );
            let err = verify(&r4, &c, "cn-hangzhou", now + Duration::from_secs(601)).unwrap_err();
            assert_eq!(err.message, "Request has expired.");
            let r4_get = AuthRequest {
                method: "PUT",
                ..r4
            };
            assert_eq!(
                verify(&r4_get, &c, "cn-hangzhou", now).unwrap_err().code,
                "SignatureDoesNotMatch"
            );
            // V1
            let expires = 1_763_800_600;
            let mut q = base.clone();
            q.extend(v1::presign(&r, &c[0], expires));
            let r1 = AuthRequest { query: &q, ..r };
            assert_eq!(
                verify(&r1, &c, "cn-hangzhou", now).unwrap().method,
                AuthMethod::V1Presigned
            );
            let err = verify(&r1, &c, "cn-hangzhou", now + Duration::from_secs(601)).unwrap_err();
            assert_eq!(err.code, "AccessDenied");
        }
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_auth_input(
            auth in proptest::option::of("(OSS4-HMAC-SHA256 |OSS )?.{0,120}"),
            date in proptest::option::of(".{0,40}"),
            query in proptest::collection::vec(
                ("(x-oss-[a-z-]{0,12}|OSSAccessKeyId|Expires|Signature|security-token)", ".{0,40}"),
                0..6,
            ),
        ) {
            let mut headers = Vec::new();
            if let Some(a) = auth { headers.push(("authorization".to_owned(), a)); }
            if let Some(d) = date { headers.push(("x-oss-date".to_owned(), d)); }
            let req = AuthRequest {
                method: "GET",
                bucket: Some("b"),
                key: Some("k"),
                query: &query,
                headers: &headers,
            };
            let creds = vec![Credentials {
                access_key_id: "ak".into(),
                access_key_secret: "sk".into(),
                security_token: None,
            }];
            // Random input never verifies (and never panics).
            prop_assert!(verify(&req, &creds, "cn-hangzhou", SystemTime::now()).is_err());
        }
    }
}
