//! An STS endpoint for tests: `AssumeRoleWithOIDC` on the emulator's own address, issuing
//! short-lived credentials the emulator's OSS side then accepts until they expire.
//!
//! **Off by default.** Turn it on with [`Sts::configure`] (`handle.sts().configure(…)`) or
//! `ossgate emulator --sts [--sts-duration-secs N] [--sts-expected-oidc-token T]`.
//!
//! * **Request:** `POST /` (or `GET /`) on any host, with the STS RPC parameters in the query
//!   and/or an `application/x-www-form-urlencoded` body, exactly as Alibaba Cloud STS takes
//!   them: `Action=AssumeRoleWithOIDC`, `Version=2015-04-01`, `Format=JSON`, `RoleArn`
//!   (`acs:ram::…:role/…`), `OIDCProviderArn` (`acs:ram::…:oidc-provider/…`), `OIDCToken`,
//!   `RoleSessionName`, optional `DurationSeconds` (900..=43200, default 3600). A request to
//!   `/` whose query has `Action`, or a form POST to `/`, is an STS request while STS is on.
//! * **Checks:** the token must be non-empty and, when an expected token is configured,
//!   equal to it (401 `AuthenticationFail.OIDCToken.Invalid`); a JWT whose `exp` claim has
//!   passed is 401 `AuthenticationFail.OIDCToken.Expired`; missing parameters are 400
//!   `Missing<Name>`; malformed ARNs or durations 400 `InvalidParameter.<Name>`.
//! * **Answer:** `{"RequestId", "AssumedRoleUser", "Credentials": {"AccessKeyId": "STS.…",
//!   "AccessKeySecret", "SecurityToken", "Expiration": "YYYY-MM-DDTHH:MM:SSZ"}}`; errors
//!   `{"RequestId", "HostId", "Code", "Message"}`. The lifetime is the requested duration,
//!   capped by the configured `max_duration` (tests use a few seconds).
//! * **OSS side:** the issued AccessKey/secret/token triples verify like configured keys
//!   until `Expiration`; afterwards 403 `SecurityTokenExpired`. A wrong token with an issued
//!   key is 403 `InvalidSecurityToken`, an unknown key 403 `InvalidAccessKeyId`, as before.
//! * **Counting:** [`Sts::call_count`] counts STS requests (answered or refused), so tests
//!   can prove how often a client refreshed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::Response;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use rand::distr::{Alphanumeric, SampleString};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::oss::credentials::Credentials;
use crate::oss::credentials::sts::{API_VERSION, DURATION_RANGE, format_timestamp};

/// Largest STS request body read.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Issued credentials are forgotten this long after they expire (until then they answer
/// `SecurityTokenExpired` rather than `InvalidAccessKeyId`).
const REMEMBER_EXPIRED: Duration = Duration::from_secs(3600);

/// How the STS endpoint behaves. `Debug` hides the expected token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StsConfig {
    /// Whether the endpoint answers at all.
    pub enabled: bool,
    /// Upper bound of the issued lifetime (`None`: what the caller asked for).
    pub max_duration: Option<Duration>,
    /// When set, the only OIDC token accepted.
    pub expected_oidc_token: Option<String>,
}

impl std::fmt::Debug for StsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsConfig")
            .field("enabled", &self.enabled)
            .field("max_duration", &self.max_duration)
            .field(
                "expected_oidc_token",
                &self.expected_oidc_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl StsConfig {
    /// STS on, issuing credentials that last at most `max_duration`, any non-empty token.
    pub fn enabled(max_duration: Option<Duration>) -> Self {
        Self {
            enabled: true,
            max_duration,
            expected_oidc_token: None,
        }
    }
}

/// `ossgate emulator` flags of the STS endpoint.
#[derive(clap::Args, Clone, Default)]
pub struct StsArgs {
    /// Answer STS AssumeRoleWithOIDC (POST / with Action=AssumeRoleWithOIDC) and accept the
    /// credentials it issues.
    #[arg(long)]
    pub sts: bool,
    /// Cap the lifetime of issued STS credentials at this many seconds (implies --sts).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub sts_duration_secs: Option<u64>,
    /// Accept only this OIDC token (implies --sts; default: any non-empty token).
    #[arg(long, value_name = "TOKEN")]
    pub sts_expected_oidc_token: Option<String>,
}

impl std::fmt::Debug for StsArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_config().fmt(f)
    }
}

impl StsArgs {
    /// The STS configuration these flags describe.
    pub fn to_config(&self) -> StsConfig {
        StsConfig {
            enabled: self.sts
                || self.sts_duration_secs.is_some()
                || self.sts_expected_oidc_token.is_some(),
            max_duration: self.sts_duration_secs.map(Duration::from_secs),
            expected_oidc_token: self.sts_expected_oidc_token.clone(),
        }
    }
}

struct Issued {
    credentials: Credentials,
    expires: SystemTime,
}

#[derive(Default)]
struct Inner {
    config: StsConfig,
    issued: HashMap<String, Issued>,
}

/// The emulator's STS state: configuration, issued credentials, call counter.
#[derive(Default)]
pub struct Sts {
    inner: Mutex<Inner>,
    calls: AtomicU64,
    issued: AtomicU64,
}

impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sts")
            .field("config", &self.lock().config)
            .field("calls", &self.call_count())
            .finish_non_exhaustive()
    }
}

/// The whole-second part of `t` (STS expirations have second precision).
fn floor_secs(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn random(n: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), n)
}

impl Sts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        super::lock(&self.inner)
    }

    /// Replaces the configuration (credentials already issued stay valid until they expire).
    pub fn configure(&self, config: StsConfig) {
        self.lock().config = config;
    }

    /// STS requests received (answered or refused).
    pub fn call_count(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Credentials issued so far.
    pub fn issued_count(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }

    /// Whether this request is for the STS endpoint (only while it is enabled).
    pub(crate) fn is_sts_request(&self, parts: &http::request::Parts) -> bool {
        if !self.lock().config.enabled || parts.uri.path() != "/" {
            return false;
        }
        let has_action = parts
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("Action=")));
        let form = parts.method == Method::POST
            && parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.to_ascii_lowercase()
                        .starts_with("application/x-www-form-urlencoded")
                });
        matches!(parts.method, Method::GET | Method::POST) && (has_action || form)
    }

    /// The keys the OSS side accepts at `now`: `base` plus the unexpired issued credentials.
    pub(crate) fn accepted<'a>(
        &self,
        base: &'a [Credentials],
        now: SystemTime,
    ) -> Cow<'a, [Credentials]> {
        let inner = self.lock();
        if inner.issued.is_empty() {
            return Cow::Borrowed(base);
        }
        let mut all = base.to_vec();
        all.extend(
            inner
                .issued
                .values()
                .filter(|i| now < i.expires)
                .map(|i| i.credentials.clone()),
        );
        Cow::Owned(all)
    }

    /// Turns `InvalidAccessKeyId` for a key this STS issued and that has expired into 403
    /// `SecurityTokenExpired`; any other error is returned unchanged.
    pub(crate) fn explain(&self, err: ApiError) -> ApiError {
        if err.code != "InvalidAccessKeyId" {
            return err;
        }
        let Some(key) = err
            .extra
            .iter()
            .find(|(name, _)| name == "OSSAccessKeyId")
            .map(|(_, v)| v.clone())
        else {
            return err;
        };
        let expired = self
            .lock()
            .issued
            .get(&key)
            .map(|issued| (issued.expires, SystemTime::now() >= issued.expires));
        match expired {
            Some((expires, true)) => ApiError::new(
                StatusCode::FORBIDDEN,
                "SecurityTokenExpired",
                "The security token you provided has expired.",
            )
            .with("OSSAccessKeyId", key)
            .with("Expiration", format_timestamp(expires)),
            _ => err,
        }
    }

    /// Answers one STS request (always a JSON response; never an `Err`).
    pub(crate) async fn handle(
        &self,
        parts: &http::request::Parts,
        body: Option<Body>,
    ) -> Result<Response, ApiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let request_id = uuid::Uuid::new_v4().to_string().to_ascii_uppercase();
        let outcome = match params(parts, body).await {
            Ok(params) => self.assume_role_with_oidc(&params, &request_id),
            Err(e) => Err(e),
        };
        Ok(match outcome {
            Ok(json) => json_response(StatusCode::OK, &json),
            Err(StsError {
                status,
                code,
                message,
            }) => {
                tracing::debug!(code, "STS request refused: {message}");
                json_response(
                    status,
                    &serde_json::json!({
                        "RequestId": request_id,
                        "HostId": "sts.aliyuncs.com",
                        "Code": code,
                        "Message": message,
                    }),
                )
            }
        })
    }

    fn assume_role_with_oidc(
        &self,
        params: &HashMap<String, String>,
        request_id: &str,
    ) -> Result<serde_json::Value, StsError> {
        let get = |name: &str| params.get(name).map(String::as_str);
        match get("Action") {
            Some("AssumeRoleWithOIDC") => {}
            Some(other) => {
                return Err(StsError::bad(
                    StatusCode::NOT_FOUND,
                    "InvalidAction.NotFound",
                    format!("The emulator's STS answers only AssumeRoleWithOIDC, not {other:?}."),
                ));
            }
            None => return Err(StsError::missing("Action")),
        }
        match get("Version") {
            Some(API_VERSION) => {}
            Some(other) => {
                return Err(StsError::bad(
                    StatusCode::BAD_REQUEST,
                    "InvalidVersion",
                    format!("Specified parameter Version {other:?} is not valid."),
                ));
            }
            None => return Err(StsError::missing("Version")),
        }
        if get("Format").is_some_and(|f| !f.eq_ignore_ascii_case("JSON")) {
            return Err(StsError::invalid(
                "Format",
                "The emulator's STS answers JSON only (Format=JSON).",
            ));
        }
        let role_arn = get("RoleArn").ok_or_else(|| StsError::missing("RoleArn"))?;
        if !(role_arn.starts_with("acs:ram::") && role_arn.contains(":role/")) {
            return Err(StsError::invalid(
                "RoleArn",
                "The parameter RoleArn is wrongly formed (acs:ram::<account>:role/<name>).",
            ));
        }
        let provider =
            get("OIDCProviderArn").ok_or_else(|| StsError::missing("OIDCProviderArn"))?;
        if !(provider.starts_with("acs:ram::") && provider.contains(":oidc-provider/")) {
            return Err(StsError::invalid(
                "OIDCProviderArn",
                "The parameter OIDCProviderArn is wrongly formed \
                 (acs:ram::<account>:oidc-provider/<name>).",
            ));
        }
        let session = get("RoleSessionName").ok_or_else(|| StsError::missing("RoleSessionName"))?;
        let token = get("OIDCToken").unwrap_or_default();
        if token.is_empty() {
            return Err(StsError::bad(
                StatusCode::UNAUTHORIZED,
                "AuthenticationFail.OIDCToken.Invalid",
                "The OIDCToken can not empty.",
            ));
        }
        if jwt_expired(token, SystemTime::now()) {
            return Err(StsError::bad(
                StatusCode::UNAUTHORIZED,
                "AuthenticationFail.OIDCToken.Expired",
                "This JsonWebToken is expired.",
            ));
        }
        let requested = match get("DurationSeconds") {
            None => 3600,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if DURATION_RANGE.contains(&n) => n,
                _ => {
                    return Err(StsError::invalid(
                        "DurationSeconds",
                        "The Min/Max value of DurationSeconds is 15min/12hr.",
                    ));
                }
            },
        };
        let now = SystemTime::now();
        let mut inner = self.lock();
        if let Some(expected) = &inner.config.expected_oidc_token
            && !bool::from(expected.as_bytes().ct_eq(token.as_bytes()))
        {
            return Err(StsError::bad(
                StatusCode::UNAUTHORIZED,
                "AuthenticationFail.OIDCToken.Invalid",
                "The OIDCToken is not the one this emulator was told to accept.",
            ));
        }
        let mut lifetime = Duration::from_secs(requested);
        if let Some(cap) = inner.config.max_duration {
            lifetime = lifetime.min(cap);
        }
        let expires = floor_secs(now) + lifetime;
        let credentials = Credentials {
            access_key_id: format!("STS.{}", random(24)),
            access_key_secret: random(32),
            security_token: Some(format!("CAIS{}", random(96))),
        };
        inner
            .issued
            .retain(|_, i| now < i.expires + REMEMBER_EXPIRED);
        inner.issued.insert(
            credentials.access_key_id.clone(),
            Issued {
                credentials: credentials.clone(),
                expires,
            },
        );
        drop(inner);
        self.issued.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(
            access_key_id = %credentials.access_key_id,
            lifetime_secs = lifetime.as_secs(),
            "STS issued credentials"
        );
        Ok(serde_json::json!({
            "RequestId": request_id,
            "AssumedRoleUser": {
                "Arn": format!("{role_arn}/{session}"),
                "AssumedRoleId": format!("3{}:{session}", random(16)),
            },
            "Credentials": {
                "AccessKeyId": credentials.access_key_id,
                "AccessKeySecret": credentials.access_key_secret,
                "SecurityToken": credentials.security_token,
                "Expiration": format_timestamp(expires),
            },
        }))
    }
}

/// Whether `token` is a JWT (`header.payload.signature`) whose payload's `exp` (Unix
/// seconds) is at or before `now`. Anything else is not judged expired.
fn jwt_expired(token: &str, now: SystemTime) -> bool {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return false;
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    let Some(exp) = claims.get("exp").and_then(serde_json::Value::as_u64) else {
        return false;
    };
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    exp <= now
}

struct StsError {
    status: StatusCode,
    code: String,
    message: String,
}

impl StsError {
    fn bad(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn missing(name: &str) -> Self {
        Self::bad(
            StatusCode::BAD_REQUEST,
            &format!("Missing{name}"),
            format!("{name} is mandatory for this action."),
        )
    }

    fn invalid(name: &str, message: &str) -> Self {
        Self::bad(
            StatusCode::BAD_REQUEST,
            &format!("InvalidParameter.{name}"),
            message,
        )
    }
}

fn json_response(status: StatusCode, json: &serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=utf-8")
        .body(Body::from(json.to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
fn decode_form(text: &str) -> Result<Vec<(String, String)>, StsError> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| {
                StsError::bad(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    "A parameter is not valid UTF-8 after percent-decoding.",
                )
            })
    };
    text.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The query and form parameters together (the body wins on a repeated name).
async fn params(
    parts: &http::request::Parts,
    body: Option<Body>,
) -> Result<HashMap<String, String>, StsError> {
    let mut params: HashMap<String, String> = decode_form(parts.uri.query().unwrap_or(""))?
        .into_iter()
        .collect();
    if let Some(body) = body {
        let bytes = http_body_util::Limited::new(body, MAX_FORM_BYTES)
            .collect()
            .await
            .map_err(|_| {
                StsError::bad(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    format!(
                        "The request body is unreadable or larger than {MAX_FORM_BYTES} bytes."
                    ),
                )
            })?
            .to_bytes();
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            StsError::bad(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                "The request body is not UTF-8 form data.",
            )
        })?;
        params.extend(decode_form(text)?);
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::credentials::sts::parse_response;

    fn parts(method: Method, uri: &str, form: bool) -> http::request::Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        if form {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn form(token: &str, duration: &str) -> String {
        format!(
            "RoleArn=acs%3Aram%3A%3A1%3Arole%2Fr&OIDCProviderArn=acs%3Aram%3A%3A1%3Aoidc-provider%2Fp\
             &OIDCToken={token}&RoleSessionName=ossgate&DurationSeconds={duration}"
        )
    }

    const QUERY: &str = "/?Action=AssumeRoleWithOIDC&Version=2015-04-01&Format=JSON";

    async fn call(sts: &Sts, uri: &str, body: String) -> (u16, Vec<u8>) {
        let p = parts(Method::POST, uri, true);
        let response = sts.handle(&p, Some(Body::from(body))).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    #[test]
    fn only_enabled_root_requests_are_sts() {
        let sts = Sts::default();
        assert!(!sts.is_sts_request(&parts(Method::POST, QUERY, true)));
        sts.configure(StsConfig::enabled(None));
        assert!(sts.is_sts_request(&parts(Method::POST, QUERY, false)));
        assert!(sts.is_sts_request(&parts(Method::POST, "/", true)));
        assert!(sts.is_sts_request(&parts(Method::GET, QUERY, false)));
        assert!(!sts.is_sts_request(&parts(Method::POST, "/bucket/key?Action=x", true)));
        assert!(!sts.is_sts_request(&parts(Method::POST, "/?delete", false)));
        assert!(!sts.is_sts_request(&parts(Method::GET, "/", false)));
        assert!(!sts.is_sts_request(&parts(Method::PUT, QUERY, false)));
    }

    #[tokio::test]
    async fn issues_capped_credentials_the_client_parser_reads() {
        let sts = Sts::default();
        sts.configure(StsConfig::enabled(Some(Duration::from_secs(5))));
        let before = floor_secs(SystemTime::now());
        let (status, body) = call(&sts, QUERY, form("tok", "3600")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let issued = parse_response("emulator", status, &body).unwrap();
        assert!(issued.credentials.access_key_id.starts_with("STS."));
        let lifetime = issued.expiration.duration_since(before).unwrap();
        assert!(
            lifetime >= Duration::from_secs(5) && lifetime <= Duration::from_secs(6),
            "{lifetime:?}"
        );
        assert_eq!(sts.call_count(), 1);
        assert_eq!(sts.issued_count(), 1);
        // Accepted now, alongside the configured keys.
        let base = vec![Credentials {
            access_key_id: "LTAIbase".into(),
            access_key_secret: "s".into(),
            security_token: None,
        }];
        let now = SystemTime::now();
        let accepted = sts.accepted(&base, now);
        assert_eq!(accepted.len(), 2);
        assert!(accepted.contains(&issued.credentials));
        // Not after expiry, and then explained as expired.
        let later = issued.expiration + Duration::from_millis(1);
        assert_eq!(sts.accepted(&base, later).len(), 1);
        let unknown = ApiError::invalid_access_key_id(&issued.credentials.access_key_id);
        assert_eq!(sts.explain(unknown).code, "InvalidAccessKeyId", "not yet");
        let other = ApiError::invalid_access_key_id("LTAIother");
        assert_eq!(sts.explain(other).code, "InvalidAccessKeyId");
    }

    #[tokio::test]
    async fn expired_issued_keys_are_explained() {
        let sts = Sts::default();
        sts.configure(StsConfig::enabled(Some(Duration::from_secs(1))));
        let (status, body) = call(&sts, QUERY, form("tok", "900")).await;
        let issued = parse_response("emulator", status, &body).unwrap();
        while SystemTime::now() < issued.expiration {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let err = sts.explain(ApiError::invalid_access_key_id(
            &issued.credentials.access_key_id,
        ));
        assert_eq!(err.code, "SecurityTokenExpired");
        assert_eq!(err.status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn refusals() {
        let sts = Sts::default();
        sts.configure(StsConfig {
            enabled: true,
            max_duration: None,
            expected_oidc_token: Some("right-token".into()),
        });
        let cases: Vec<(String, String, u16, &str)> = vec![
            (
                QUERY.into(),
                form("", "3600"),
                401,
                "AuthenticationFail.OIDCToken.Invalid",
            ),
            (
                QUERY.into(),
                form("wrong", "3600"),
                401,
                "AuthenticationFail.OIDCToken.Invalid",
            ),
            (
                QUERY.into(),
                form("right-token", "60"),
                400,
                "InvalidParameter.DurationSeconds",
            ),
            (
                QUERY.into(),
                "OIDCToken=right-token".into(),
                400,
                "MissingRoleArn",
            ),
            (
                "/?Action=AssumeRole&Version=2015-04-01".into(),
                form("right-token", "3600"),
                404,
                "InvalidAction.NotFound",
            ),
            (
                "/?Action=AssumeRoleWithOIDC&Version=2020-01-01".into(),
                form("right-token", "3600"),
                400,
                "InvalidVersion",
            ),
            (
                QUERY.into(),
                form("right-token", "3600").replace("role%2Fr", "user%2Fr"),
                400,
                "InvalidParameter.RoleArn",
            ),
        ];
        for (uri, body, status, code) in cases {
            let (got, answer) = call(&sts, &uri, body.clone()).await;
            let err = parse_response("emulator", got, &answer).unwrap_err();
            assert_eq!(got, status, "{uri} {body}: {err}");
            assert!(err.to_string().contains(code), "{uri} {body}: {err}");
            assert!(!err.to_string().contains("right-token"), "{err}");
        }
        assert_eq!(sts.issued_count(), 0);
        let (status, _) = call(&sts, QUERY, form("right-token", "3600")).await;
        assert_eq!(status, 200);
        assert_eq!(sts.call_count(), 8);
    }

    #[test]
    fn debug_hides_the_expected_token() {
        let args = StsArgs {
            sts: false,
            sts_duration_secs: Some(3),
            sts_expected_oidc_token: Some("hidden-token".into()),
        };
        let config = args.to_config();
        assert!(config.enabled);
        assert_eq!(config.max_duration, Some(Duration::from_secs(3)));
        assert!(!format!("{args:?}").contains("hidden-token"));
        assert!(!StsArgs::default().to_config().enabled);
    }

    #[test]
    fn expired_jwts() {
        use base64::Engine as _;
        let jwt = |claims: &str| {
            let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            format!("{}.{}.sig", enc(r#"{"alg":"RS256"}"#), enc(claims))
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(jwt_expired(&jwt(r#"{"exp":999999}"#), now));
        assert!(jwt_expired(&jwt(r#"{"exp":1000000}"#), now));
        assert!(!jwt_expired(&jwt(r#"{"exp":1000001}"#), now));
        assert!(!jwt_expired(&jwt(r#"{"sub":"x"}"#), now));
        assert!(!jwt_expired("not-a-jwt", now));
        assert!(!jwt_expired("a.%%%.c", now));
        assert!(!jwt_expired("a.b.c.d", now));
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            decode_form("a=b+c&d=%2B&e").unwrap_or_default(),
            vec![
                ("a".into(), "b c".into()),
                ("d".into(), "+".into()),
                ("e".into(), String::new())
            ]
        );
        assert!(decode_form("a=%FF").is_err());
    }
}
