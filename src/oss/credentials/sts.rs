//! RRSA (RAM Roles for Service Accounts): exchanges the Kubernetes projected OIDC token for
//! temporary OSS credentials with the Alibaba Cloud STS RPC API `AssumeRoleWithOIDC`.
//!
//! The call is not signed: the OIDC token is the proof of identity. It is
//! `POST {endpoint}/?Action=AssumeRoleWithOIDC&Version=2015-04-01&Format=JSON&Timestamp=…`
//! with a form body `RoleArn`, `OIDCProviderArn`, `OIDCToken`, `RoleSessionName`,
//! `DurationSeconds`, answered by JSON `{"RequestId", "Credentials": {"AccessKeyId",
//! "AccessKeySecret", "SecurityToken", "Expiration": "2021-10-20T04:27:09Z"}}` or, on error,
//! `{"RequestId", "Code", "Message"}`. The token file is read again for every call: the
//! kubelet rotates it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::http::{self, IssuedCredentials};
use super::{CredentialsError, CredentialsProvider, TemporaryCredentials};
use crate::oss::sign::uri_encode;

/// Environment variable of the RAM role ARN (set by ACK's pod identity webhook, or by hand).
pub const ROLE_ARN_ENV: &str = "ALIBABA_CLOUD_ROLE_ARN";
/// Environment variable of the OIDC provider ARN.
pub const OIDC_PROVIDER_ARN_ENV: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
/// Environment variable of the projected service-account token file.
pub const OIDC_TOKEN_FILE_ENV: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";

/// How this source is named in errors and logs.
pub const SERVICE: &str = "STS AssumeRoleWithOIDC";
/// STS API version.
pub const API_VERSION: &str = "2015-04-01";
/// Shortest and longest session STS grants (the role's MaxSessionDuration may lower the top).
pub const DURATION_RANGE: std::ops::RangeInclusive<u64> = 900..=43_200;
/// Largest token file read (STS accepts tokens of 4 to 20,000 characters).
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// The STS endpoint for `region` (`https://sts.cn-hangzhou.aliyuncs.com`), or the central
/// `https://sts.aliyuncs.com` when the region is unknown.
pub fn default_endpoint(region: Option<&str>) -> String {
    match region.map(str::trim) {
        Some(r) if !r.is_empty() => format!("https://sts.{r}.aliyuncs.com"),
        _ => "https://sts.aliyuncs.com".to_owned(),
    }
}

/// What RRSA needs. Nothing here is secret (the token stays in its file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcRoleConfig {
    /// STS endpoint URL (`https://sts.cn-hangzhou.aliyuncs.com`, `http://127.0.0.1:PORT`).
    pub endpoint: String,
    /// `acs:ram::<account>:role/<name>`.
    pub role_arn: String,
    /// `acs:ram::<account>:oidc-provider/<name>`.
    pub oidc_provider_arn: String,
    /// The projected service-account token.
    pub oidc_token_file: PathBuf,
    /// Session name recorded by STS and ActionTrail.
    pub role_session_name: String,
    /// Requested lifetime of the credentials.
    pub duration: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-call timeout.
    pub request_timeout: Duration,
}

/// Fetches temporary credentials with `AssumeRoleWithOIDC`.
#[derive(Clone, Debug)]
pub struct OidcRoleProvider {
    http: reqwest::Client,
    url: reqwest::Url,
    config: OidcRoleConfig,
}

impl OidcRoleProvider {
    /// Checks `config` and builds the HTTP client (no network I/O).
    pub fn new(config: OidcRoleConfig) -> Result<Self, CredentialsError> {
        let url = reqwest::Url::parse(&config.endpoint).map_err(|e| {
            CredentialsError::config(
                "oss.sts_endpoint",
                format!("{:?} is not a URL: {e}", config.endpoint),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.query().is_some()
        {
            return Err(CredentialsError::config(
                "oss.sts_endpoint",
                format!(
                    "{:?} must be an http:// or https:// URL with a host and no query",
                    config.endpoint
                ),
            ));
        }
        for (setting, value) in [
            (
                "oss.role_arn (ALIBABA_CLOUD_ROLE_ARN)",
                config.role_arn.as_str(),
            ),
            (
                "oss.oidc_provider_arn (ALIBABA_CLOUD_OIDC_PROVIDER_ARN)",
                config.oidc_provider_arn.as_str(),
            ),
        ] {
            if value.trim().is_empty() {
                return Err(CredentialsError::config(setting, "empty"));
            }
        }
        if config.oidc_token_file.as_os_str().is_empty() {
            return Err(CredentialsError::config(
                "oss.oidc_token_file (ALIBABA_CLOUD_OIDC_TOKEN_FILE)",
                "empty",
            ));
        }
        check_session_name(&config.role_session_name)?;
        if config.duration < Duration::from_secs(1) {
            return Err(CredentialsError::config(
                "oss.credentials_duration_secs",
                "must be at least 1 second",
            ));
        }
        let host = url.host_str().unwrap_or_default();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let http = http::http_client(config.connect_timeout, config.request_timeout, loopback)
            .map_err(|e| {
                CredentialsError::config(
                    "oss.sts_endpoint",
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Self { http, url, config })
    }

    /// The STS endpoint in use.
    pub fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    /// The configuration in use.
    pub fn config(&self) -> &OidcRoleConfig {
        &self.config
    }

    async fn read_token(&self) -> Result<String, CredentialsError> {
        let path = &self.config.oidc_token_file;
        let file_error = |message: String| CredentialsError::TokenFile {
            path: path.display().to_string(),
            message,
        };
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| file_error(e.to_string()))?;
        if meta.len() > MAX_TOKEN_BYTES {
            return Err(file_error(format!(
                "{} bytes is too large for an OIDC token",
                meta.len()
            )));
        }
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| file_error(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| file_error("not UTF-8 text".into()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(file_error("the file is empty".into()));
        }
        Ok(token.to_owned())
    }
}

/// RoleSessionName: 2 to 64 characters of letters, digits and `. @ - _`.
fn check_session_name(name: &str) -> Result<(), CredentialsError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(CredentialsError::config(
            "oss.role_session_name",
            format!("{name:?} must be 2 to 64 letters, digits or . @ - _"),
        ))
    }
}

/// `2006-01-02T15:04:05Z` (UTC, whole seconds), as the STS RPC API writes times.
pub fn format_timestamp(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses an STS `Expiration` (`2021-10-20T04:27:09Z`; any RFC 3339 time).
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// The query parameters of the call (the form body has the rest).
pub fn query_params(now: SystemTime) -> Vec<(&'static str, String)> {
    vec![
        ("Action", "AssumeRoleWithOIDC".to_owned()),
        ("Version", API_VERSION.to_owned()),
        ("Format", "JSON".to_owned()),
        ("Timestamp", format_timestamp(now)),
    ]
}

/// The `application/x-www-form-urlencoded` body of the call.
pub fn form_body(config: &OidcRoleConfig, token: &str) -> String {
    let duration = config.duration.as_secs().to_string();
    [
        ("RoleArn", config.role_arn.as_str()),
        ("OIDCProviderArn", config.oidc_provider_arn.as_str()),
        ("OIDCToken", token),
        ("RoleSessionName", config.role_session_name.as_str()),
        ("DurationSeconds", duration.as_str()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", uri_encode(v, false)))
    .collect::<Vec<_>>()
    .join("&")
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsResponse {
    request_id: Option<String>,
    code: Option<String>,
    message: Option<String>,
    credentials: Option<IssuedCredentials>,
}

/// Turns an STS answer into credentials or an error (never echoing secrets).
pub fn parse_response(
    endpoint: &str,
    status: u16,
    body: &[u8],
) -> Result<TemporaryCredentials, CredentialsError> {
    let transport = |message: String, retryable: bool| {
        CredentialsError::transport(SERVICE, endpoint, message, retryable)
    };
    let parsed: Option<StsResponse> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let retryable = status >= 500 || status == 429;
        return match parsed {
            Some(StsResponse {
                code: Some(code),
                message,
                request_id,
                ..
            }) => Err(CredentialsError::Refused {
                service: SERVICE,
                endpoint: endpoint.to_owned(),
                status,
                code,
                message: message.unwrap_or_default(),
                request_id,
            }),
            _ => Err(transport(
                format!(
                    "HTTP {status} without an STS error document: {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
                retryable,
            )),
        };
    }
    let Some(parsed) = parsed else {
        return Err(transport("the answer is not JSON".into(), false));
    };
    let incomplete = |what: &str| {
        transport(
            format!(
                "the answer has no Credentials.{what} (RequestId {})",
                parsed.request_id.as_deref().unwrap_or("none")
            ),
            false,
        )
    };
    // No Credentials at all: the first field is missing.
    let credentials = parsed.credentials.unwrap_or_default();
    credentials.into_temporary(incomplete, |text| {
        transport(
            format!("Credentials.Expiration {text:?} is not an RFC 3339 time"),
            false,
        )
    })
}

impl CredentialsProvider for OidcRoleProvider {
    async fn fetch(&self) -> Result<TemporaryCredentials, CredentialsError> {
        let token = self.read_token().await?;
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .extend_pairs(query_params(SystemTime::now()));
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form_body(&self.config, &token));
        let answer = http::send(request, "", |message, retryable| {
            CredentialsError::transport(SERVICE, &self.config.endpoint, message, retryable)
        })
        .await?;
        parse_response(&self.config.endpoint, answer.status, &answer.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, token_file: &std::path::Path) -> OidcRoleConfig {
        OidcRoleConfig {
            endpoint: endpoint.into(),
            role_arn: "acs:ram::123456789012:role/ossgate-oss".into(),
            oidc_provider_arn: "acs:ram::123456789012:oidc-provider/ack-rrsa-c1".into(),
            oidc_token_file: token_file.into(),
            role_session_name: "ossgate".into(),
            duration: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            default_endpoint(Some("cn-hangzhou")),
            "https://sts.cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(default_endpoint(Some("")), "https://sts.aliyuncs.com");
        assert_eq!(default_endpoint(None), "https://sts.aliyuncs.com");
    }

    #[test]
    fn timestamps_round_trip_in_the_sts_format() {
        let t = parse_timestamp("2021-10-20T04:27:09Z").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_634_704_029
        );
        assert_eq!(format_timestamp(t), "2021-10-20T04:27:09Z");
        assert!(parse_timestamp("2021-10-20 04:27:09").is_none());
        assert!(parse_timestamp("").is_none());
    }

    #[test]
    fn request_parameters() {
        let c = config("https://sts.aliyuncs.com", std::path::Path::new("/t"));
        let body = form_body(&c, "ey.J+/=");
        assert_eq!(
            body,
            "RoleArn=acs%3Aram%3A%3A123456789012%3Arole%2Fossgate-oss&\
             OIDCProviderArn=acs%3Aram%3A%3A123456789012%3Aoidc-provider%2Fack-rrsa-c1&\
             OIDCToken=ey.J%2B%2F%3D&RoleSessionName=ossgate&DurationSeconds=3600"
        );
        let q = query_params(SystemTime::UNIX_EPOCH);
        assert_eq!(
            q,
            vec![
                ("Action", "AssumeRoleWithOIDC".to_owned()),
                ("Version", "2015-04-01".to_owned()),
                ("Format", "JSON".to_owned()),
                ("Timestamp", "1970-01-01T00:00:00Z".to_owned()),
            ]
        );
    }

    #[test]
    fn parses_credentials() {
        let body = br#"{"RequestId":"3D57EAD2","AssumedRoleUser":{"Arn":"acs:ram::1:role/r/s"},
            "Credentials":{"SecurityToken":"CAIS****","Expiration":"2021-10-20T04:27:09Z",
            "AccessKeySecret":"wyLTSmsyPGP1ohvvw8xYgB29dlGI8KMiH2pK****","AccessKeyId":"STS.NUgYrLnoC37mZZCNnAbez****"}}"#;
        let t = parse_response("e", 200, body).unwrap();
        assert_eq!(t.credentials.access_key_id, "STS.NUgYrLnoC37mZZCNnAbez****");
        assert_eq!(t.credentials.security_token.as_deref(), Some("CAIS****"));
        assert_eq!(Some(t.expiration), parse_timestamp("2021-10-20T04:27:09Z"));
    }

    #[test]
    fn errors_are_classified_and_never_echo_secrets() {
        let body = br#"{"RequestId":"R1","HostId":"sts.aliyuncs.com","Code":"AuthenticationFail.OIDCToken.Expired","Message":"This JsonWebToken is expired."}"#;
        let err = parse_response("https://sts.aliyuncs.com", 401, body).unwrap_err();
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(
            text.contains("HTTP 401 AuthenticationFail.OIDCToken.Expired: This JsonWebToken is expired. (RequestId R1)"),
            "{text}"
        );
        let throttled = parse_response("e", 400, br#"{"Code":"Throttling.User"}"#).unwrap_err();
        assert!(throttled.is_retryable());
        let gateway = parse_response("e", 502, b"<html>bad gateway</html>").unwrap_err();
        assert!(gateway.is_retryable(), "{gateway}");
        for (body, missing) in [
            (&br#"{"RequestId":"R"}"#[..], "AccessKeyId"),
            (
                br#"{"Credentials":{"AccessKeyId":"a","AccessKeySecret":"s","SecurityToken":"t"}}"#,
                "Expiration",
            ),
            (
                br#"{"Credentials":{"AccessKeyId":"a","AccessKeySecret":"","SecurityToken":"t","Expiration":"2021-10-20T04:27:09Z"}}"#,
                "AccessKeySecret",
            ),
        ] {
            let err = parse_response("e", 200, body).unwrap_err().to_string();
            assert!(err.contains(missing), "{err}");
        }
        let bad_time = br#"{"Credentials":{"AccessKeyId":"a","AccessKeySecret":"hidden-secret","SecurityToken":"hidden-token","Expiration":"tomorrow"}}"#;
        let err = parse_response("e", 200, bad_time).unwrap_err().to_string();
        assert!(err.contains("tomorrow") && !err.contains("hidden"), "{err}");
        assert!(parse_response("e", 200, b"not json").is_err());
    }

    #[test]
    fn configuration_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        assert!(OidcRoleProvider::new(config("https://sts.aliyuncs.com", &token)).is_ok());
        let cases: Vec<(OidcRoleConfig, &str)> = vec![
            (config("sts.aliyuncs.com", &token), "oss.sts_endpoint"),
            (config("ftp://sts", &token), "oss.sts_endpoint"),
            (
                OidcRoleConfig {
                    role_arn: " ".into(),
                    ..config("https://s", &token)
                },
                "ALIBABA_CLOUD_ROLE_ARN",
            ),
            (
                OidcRoleConfig {
                    oidc_provider_arn: String::new(),
                    ..config("https://s", &token)
                },
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            ),
            (
                OidcRoleConfig {
                    oidc_token_file: PathBuf::new(),
                    ..config("https://s", &token)
                },
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
            ),
            (
                OidcRoleConfig {
                    role_session_name: "has space".into(),
                    ..config("https://s", &token)
                },
                "oss.role_session_name",
            ),
        ];
        for (c, setting) in cases {
            let err = OidcRoleProvider::new(c).unwrap_err().to_string();
            assert!(err.contains(setting), "{err} should name {setting}");
        }
    }

    #[tokio::test]
    async fn token_file_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        let provider = OidcRoleProvider::new(config("http://127.0.0.1:1", &token)).unwrap();
        let err = provider.fetch().await.unwrap_err();
        assert!(matches!(err, CredentialsError::TokenFile { .. }), "{err}");
        std::fs::write(&token, "  \n").unwrap();
        let err = provider.fetch().await.unwrap_err().to_string();
        assert!(
            err.contains("empty") && err.contains("oss.oidc_token_file"),
            "{err}"
        );
        std::fs::write(&token, "header.payload.sig\n").unwrap();
        assert_eq!(provider.read_token().await.unwrap(), "header.payload.sig");
        // Unreachable endpoint: a retryable transport error naming the endpoint.
        let err = provider.fetch().await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("http://127.0.0.1:1"), "{err}");
        assert!(!err.to_string().contains("header.payload.sig"), "{err}");
    }
}
