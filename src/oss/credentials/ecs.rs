//! ECS RAM role: temporary credentials of the RAM role attached to the ECS instance, read
//! from the instance metadata service, as the Alibaba Cloud credentials SDKs do.
//!
//! * **Session token (IMDSv2, "hardened mode"):** `PUT {endpoint}/latest/api/token` with
//!   `X-aliyun-ecs-metadata-token-ttl-seconds: 21600` returns a token, sent as
//!   `X-aliyun-ecs-metadata-token` on the reads below. If the token request or a read with
//!   it fails, the read is tried once more without a token, unless
//!   `oss.ecs_disable_imdsv1` (`ALIBABA_CLOUD_IMDSV1_DISABLED=true`) forbids it.
//! * **Role name:** the configured one, or with `auto`
//!   `GET {endpoint}/latest/meta-data/ram/security-credentials/` (the role's name as text).
//! * **Credentials:** `GET {endpoint}/latest/meta-data/ram/security-credentials/{role}` →
//!   `{"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration":
//!   "2017-11-01T05:20:01Z", "LastUpdated", "Code": "Success"}`.
//!
//! A fresh session token is asked for at every fetch (one fetch per refresh). The metadata
//! service is never reached through an HTTP proxy.

use std::time::Duration;

use serde::Deserialize;

use super::http::{self, Answer, IssuedCredentials};
use super::{CredentialsError, CredentialsProvider, TemporaryCredentials};

/// How this source is named in errors and logs.
pub const SERVICE: &str = "ECS instance metadata (RAM role)";
/// The instance metadata service of every ECS instance.
pub const DEFAULT_ENDPOINT: &str = "http://100.100.100.200";
/// `oss.ecs_ram_role` value that asks the metadata service for the role's name.
pub const AUTO: &str = "auto";
/// Environment variable of the role name (as the SDKs read it).
pub const ROLE_ENV: &str = "ALIBABA_CLOUD_ECS_METADATA";
/// Environment variable that forbids reads without a session token (`true`).
pub const IMDSV1_DISABLED_ENV: &str = "ALIBABA_CLOUD_IMDSV1_DISABLED";
/// Lifetime asked for the metadata session token (the SDKs' value: 6 hours).
pub const TOKEN_TTL_SECS: u32 = 21_600;
/// Header asking for a session token of that lifetime.
pub const TOKEN_TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
/// Header carrying the session token.
pub const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
/// Path of the session-token API.
pub const TOKEN_PATH: &str = "/latest/api/token";
/// Path of the role's credentials (followed by the role name).
pub const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";

const ROLE_SETTING: &str = "oss.ecs_ram_role (ALIBABA_CLOUD_ECS_METADATA)";
const ENDPOINT_SETTING: &str = "oss.ecs_metadata_endpoint";
const IMDSV1_SETTING: &str = "oss.ecs_disable_imdsv1 (ALIBABA_CLOUD_IMDSV1_DISABLED)";

/// A RAM role name: 1 to 64 letters, digits, `.`, `-` or `_` (safe as a URL path segment).
pub fn valid_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Checks a metadata endpoint: an `http://` or `https://` URL with a host, without path
/// (other than `/`), query or fragment. The message says what is wrong.
pub fn check_endpoint(endpoint: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(endpoint.trim())
        .map_err(|e| format!("{endpoint:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "{endpoint:?} must be an http:// or https:// URL with a host and nothing after it"
        ));
    }
    Ok(url)
}

/// What the ECS RAM role source needs. Nothing here is secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcsRoleConfig {
    /// The metadata service (`http://100.100.100.200`, `http://127.0.0.1:PORT` in tests).
    pub endpoint: String,
    /// The role; `None` asks the metadata service at every fetch.
    pub role: Option<String>,
    /// Never read without a session token.
    pub disable_imdsv1: bool,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
}

/// Fetches the instance's RAM role credentials from the metadata service.
#[derive(Clone, Debug)]
pub struct EcsRoleProvider {
    http: reqwest::Client,
    base: reqwest::Url,
    config: EcsRoleConfig,
}

impl EcsRoleProvider {
    /// Checks `config` and builds the HTTP client (no network I/O).
    pub fn new(config: EcsRoleConfig) -> Result<Self, CredentialsError> {
        let base = check_endpoint(&config.endpoint)
            .map_err(|message| CredentialsError::config(ENDPOINT_SETTING, message))?;
        if let Some(role) = &config.role
            && !valid_role_name(role)
        {
            return Err(CredentialsError::config(
                ROLE_SETTING,
                format!("{role:?} is not a RAM role name (1 to 64 letters, digits, . - _)"),
            ));
        }
        // The metadata service answers only on the instance's own link: no proxy.
        let http = http::http_client(config.connect_timeout, config.request_timeout, true)
            .map_err(|e| {
                CredentialsError::config(
                    ENDPOINT_SETTING,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Self { http, base, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &EcsRoleConfig {
        &self.config
    }

    fn url(&self, path: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    fn transport(&self, message: String, retryable: bool) -> CredentialsError {
        CredentialsError::transport(SERVICE, &self.config.endpoint, message, retryable)
    }

    /// Sends a request and reads its answer (see [`http::send`]).
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, CredentialsError> {
        let hint = format!("; check {ENDPOINT_SETTING}");
        http::send(request, &hint, |message, retryable| {
            self.transport(message, retryable)
        })
        .await
    }

    /// A metadata session token; `None` when the service gave none and plain reads are
    /// allowed.
    async fn session_token(&self) -> Result<Option<String>, CredentialsError> {
        let request = self
            .http
            .put(self.url(TOKEN_PATH))
            .header(TOKEN_TTL_HEADER, TOKEN_TTL_SECS.to_string());
        let failure = match self.send(request).await {
            Ok(answer) if answer.status == 200 => {
                let token = String::from_utf8(answer.body)
                    .map(|t| t.trim().to_owned())
                    .unwrap_or_default();
                if !token.is_empty() {
                    return Ok(Some(token));
                }
                "an empty token".to_owned()
            }
            Ok(answer) => format!("HTTP {}", answer.status),
            Err(err) => err.to_string(),
        };
        if self.config.disable_imdsv1 {
            return Err(self.transport(
                format!(
                    "no metadata session token (PUT {TOKEN_PATH}: {failure}), and \
                     {IMDSV1_SETTING} forbids reading without one"
                ),
                true,
            ));
        }
        tracing::debug!(
            failure,
            "no ECS metadata session token; reading without one"
        );
        Ok(None)
    }

    /// GET `path` with the session token, then (if allowed) once more without it.
    async fn get(&self, path: &str, token: Option<&str>) -> Result<Answer, CredentialsError> {
        let request = |token: Option<&str>| {
            let mut request = self.http.get(self.url(path));
            if let Some(token) = token {
                request = request.header(TOKEN_HEADER, token);
            }
            request
        };
        let first = self.send(request(token)).await;
        let failed = match &first {
            Ok(answer) => answer.status != 200,
            Err(_) => true,
        };
        if failed && token.is_some() && !self.config.disable_imdsv1 {
            return self.send(request(None)).await;
        }
        first
    }

    /// The role attached to the instance.
    async fn discover_role(&self, token: Option<&str>) -> Result<String, CredentialsError> {
        let answer = self.get(CREDENTIALS_PATH, token).await?;
        parse_role_name(&self.config.endpoint, answer.status, &answer.body)
    }
}

/// The role name the metadata service lists (its first line).
pub fn parse_role_name(
    endpoint: &str,
    status: u16,
    body: &[u8],
) -> Result<String, CredentialsError> {
    let transport = |message: String, retryable: bool| {
        CredentialsError::transport(SERVICE, endpoint, message, retryable)
    };
    if status == 404 {
        return Err(transport(
            format!(
                "GET {CREDENTIALS_PATH} answered HTTP 404: the instance has no RAM role \
                 attached; attach one, or check {ROLE_SETTING} and {ENDPOINT_SETTING}"
            ),
            false,
        ));
    }
    if status != 200 {
        return Err(transport(
            format!("GET {CREDENTIALS_PATH} answered HTTP {status}; check {ENDPOINT_SETTING}"),
            status >= 500 || status == 429,
        ));
    }
    let text = String::from_utf8_lossy(body);
    let role = text.lines().map(str::trim).find(|l| !l.is_empty());
    match role {
        Some(role) if valid_role_name(role) => Ok(role.to_owned()),
        Some(role) => Err(transport(
            format!(
                "the metadata service named the role {:?}, which is not a RAM role name; set \
                 {ROLE_SETTING} to the role's name",
                &role[..role.len().min(80)]
            ),
            false,
        )),
        None => Err(transport(
            format!(
                "the instance has no RAM role attached (GET {CREDENTIALS_PATH} is empty); \
                 attach one or check {ROLE_SETTING}"
            ),
            false,
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EcsResponse {
    code: Option<String>,
    message: Option<String>,
    #[serde(flatten)]
    credentials: IssuedCredentials,
}

/// Turns the metadata service's answer for `role` into credentials or an error (never
/// echoing a secret).
pub fn parse_credentials(
    endpoint: &str,
    role: &str,
    status: u16,
    body: &[u8],
) -> Result<TemporaryCredentials, CredentialsError> {
    let transport = |message: String, retryable: bool| {
        CredentialsError::transport(SERVICE, endpoint, message, retryable)
    };
    let path = format!("{CREDENTIALS_PATH}{role}");
    if status == 404 {
        return Err(transport(
            format!(
                "GET {path} answered HTTP 404: the role {role:?} is not attached to this \
                 instance; check {ROLE_SETTING}, or set it to `auto`"
            ),
            false,
        ));
    }
    if status != 200 {
        return Err(transport(
            format!("GET {path} answered HTTP {status}; check {ENDPOINT_SETTING}"),
            status >= 500 || status == 429,
        ));
    }
    let Ok(parsed) = serde_json::from_slice::<EcsResponse>(body) else {
        return Err(transport(
            format!("GET {path}: the answer is not JSON"),
            false,
        ));
    };
    if parsed.code.as_deref() != Some("Success") {
        return Err(transport(
            format!(
                "GET {path}: Code is {:?}, not \"Success\"{}",
                parsed.code.as_deref().unwrap_or(""),
                parsed
                    .message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            // The service answers while it rotates the role's credentials.
            true,
        ));
    }
    parsed.credentials.into_temporary(
        |what| transport(format!("GET {path}: the answer has no {what}"), false),
        |text| {
            transport(
                format!("GET {path}: Expiration {text:?} is not an RFC 3339 time"),
                false,
            )
        },
    )
}

impl CredentialsProvider for EcsRoleProvider {
    async fn fetch(&self) -> Result<TemporaryCredentials, CredentialsError> {
        let token = self.session_token().await?;
        let role = match &self.config.role {
            Some(role) => role.clone(),
            None => self.discover_role(token.as_deref()).await?,
        };
        let answer = self
            .get(&format!("{CREDENTIALS_PATH}{role}"), token.as_deref())
            .await?;
        parse_credentials(&self.config.endpoint, &role, answer.status, &answer.body)
    }

    fn name(&self) -> Option<&'static str> {
        Some(SERVICE)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::{
        Router,
        extract::{Path, State},
        http::{HeaderMap, Method, StatusCode},
        routing::any,
    };

    use super::*;

    const OK: &str = r#"{"AccessKeyId":"STS.ecs-key","AccessKeySecret":"ecs-secret-value","SecurityToken":"ecs-token-value","Expiration":"2030-01-02T03:04:05Z","LastUpdated":"2030-01-01T21:04:05Z","Code":"Success"}"#;

    #[test]
    fn credentials_parse_and_errors_name_the_setting() {
        let got = parse_credentials("http://m", "role-a", 200, OK.as_bytes()).unwrap();
        assert_eq!(got.credentials.access_key_id, "STS.ecs-key");
        assert_eq!(got.credentials.access_key_secret, "ecs-secret-value");
        assert_eq!(
            got.credentials.security_token.as_deref(),
            Some("ecs-token-value")
        );
        assert_eq!(
            got.expiration,
            super::super::sts::parse_timestamp("2030-01-02T03:04:05Z").unwrap()
        );

        let err = parse_credentials("http://m", "role-a", 404, b"Not Found").unwrap_err();
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(text.contains("oss.ecs_ram_role"), "{text}");
        assert!(text.contains("ALIBABA_CLOUD_ECS_METADATA"), "{text}");
        assert!(text.contains("role-a"), "{text}");

        let err = parse_credentials("http://m", "r", 500, b"").unwrap_err();
        assert!(err.is_retryable());
        assert!(
            err.to_string().contains("oss.ecs_metadata_endpoint"),
            "{err}"
        );

        let failed = OK.replace("\"Success\"", "\"Failed\"");
        let err = parse_credentials("http://m", "r", 200, failed.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("\"Failed\""), "{err}");
        assert!(
            !err.to_string().contains("ecs-secret-value"),
            "no secret in {err}"
        );

        for (field, needle) in [
            ("\"AccessKeyId\":\"STS.ecs-key\",", "AccessKeyId"),
            ("\"SecurityToken\":\"ecs-token-value\",", "SecurityToken"),
            ("\"Expiration\":\"2030-01-02T03:04:05Z\",", "Expiration"),
        ] {
            let body = OK.replace(field, "");
            let err = parse_credentials("http://m", "r", 200, body.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
            assert!(!err.to_string().contains("ecs-secret-value"), "{err}");
        }
        let bad_time = OK.replace("2030-01-02T03:04:05Z", "tomorrow");
        let err = parse_credentials("http://m", "r", 200, bad_time.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
        let err = parse_credentials("http://m", "r", 200, b"<html>").unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }

    #[test]
    fn role_names_are_discovered_and_checked() {
        assert_eq!(
            parse_role_name("http://m", 200, b"ossgate-role\n").unwrap(),
            "ossgate-role"
        );
        let err = parse_role_name("http://m", 404, b"").unwrap_err();
        assert!(err.to_string().contains("no RAM role attached"), "{err}");
        assert!(err.to_string().contains("oss.ecs_ram_role"), "{err}");
        assert!(parse_role_name("http://m", 200, b"  \n").is_err());
        assert!(parse_role_name("http://m", 200, b"../../etc").is_err());
        assert!(
            parse_role_name("http://m", 503, b"")
                .unwrap_err()
                .is_retryable()
        );
        assert!(valid_role_name("EcsRamRole.ossgate_1-a"));
        assert!(!valid_role_name(""));
        assert!(!valid_role_name("a/b"));
        assert!(!valid_role_name(&"a".repeat(65)));
    }

    #[test]
    fn endpoints_and_roles_are_checked_before_any_call() {
        assert!(check_endpoint(DEFAULT_ENDPOINT).is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "100.100.100.200",
            "ftp://x",
            "http://x/latest",
            "http://x?a=b",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
        let config = |endpoint: &str, role: Option<&str>| EcsRoleConfig {
            endpoint: endpoint.into(),
            role: role.map(str::to_owned),
            disable_imdsv1: false,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
        };
        let err = EcsRoleProvider::new(config("nope", None)).unwrap_err();
        assert!(
            err.to_string().contains("oss.ecs_metadata_endpoint"),
            "{err}"
        );
        let err = EcsRoleProvider::new(config(DEFAULT_ENDPOINT, Some("a b"))).unwrap_err();
        assert!(err.to_string().contains("oss.ecs_ram_role"), "{err}");
    }

    /// What the fake metadata service saw.
    #[derive(Default)]
    struct Seen {
        token_puts: u32,
        gets: Vec<(String, Option<String>)>,
    }

    #[derive(Clone)]
    struct Fake {
        seen: Arc<Mutex<Seen>>,
        /// Answer the token API at all.
        tokens: bool,
    }

    async fn metadata(
        State(fake): State<Fake>,
        method: Method,
        headers: HeaderMap,
        Path(path): Path<String>,
    ) -> (StatusCode, String) {
        let path = format!("/{path}");
        let mut seen = fake.seen.lock().unwrap();
        if method == Method::PUT && path == TOKEN_PATH {
            seen.token_puts += 1;
            let ttl = headers.get(TOKEN_TTL_HEADER).and_then(|v| v.to_str().ok());
            if !fake.tokens || ttl != Some("21600") {
                return (StatusCode::FORBIDDEN, String::new());
            }
            return (StatusCode::OK, "session-token-1".into());
        }
        let token = headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        seen.gets.push((path.clone(), token));
        match path.as_str() {
            CREDENTIALS_PATH => (StatusCode::OK, "ossgate-role".into()),
            p if p == format!("{CREDENTIALS_PATH}ossgate-role") => (StatusCode::OK, OK.into()),
            _ => (StatusCode::NOT_FOUND, "Not Found".into()),
        }
    }

    async fn serve(tokens: bool) -> (String, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/{*path}", any(metadata))
            .with_state(Fake {
                seen: seen.clone(),
                tokens,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), seen)
    }

    fn provider(endpoint: &str, role: Option<&str>, disable_imdsv1: bool) -> EcsRoleProvider {
        EcsRoleProvider::new(EcsRoleConfig {
            endpoint: endpoint.into(),
            role: role.map(str::to_owned),
            disable_imdsv1,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn fetch_uses_a_session_token_and_discovers_the_role() {
        let (endpoint, seen) = serve(true).await;
        let got = provider(&endpoint, None, true).fetch().await.unwrap();
        assert_eq!(got.credentials.access_key_id, "STS.ecs-key");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.token_puts, 1);
        let token = Some("session-token-1".to_owned());
        assert_eq!(
            seen.gets,
            vec![
                (CREDENTIALS_PATH.to_owned(), token.clone()),
                (format!("{CREDENTIALS_PATH}ossgate-role"), token),
            ]
        );
    }

    #[tokio::test]
    async fn without_a_token_reads_fall_back_unless_forbidden() {
        let (endpoint, seen) = serve(false).await;
        let got = provider(&endpoint, Some("ossgate-role"), false)
            .fetch()
            .await
            .unwrap();
        assert_eq!(got.credentials.access_key_id, "STS.ecs-key");
        assert_eq!(
            seen.lock().unwrap().gets,
            vec![(format!("{CREDENTIALS_PATH}ossgate-role"), None)]
        );
        let err = provider(&endpoint, Some("ossgate-role"), true)
            .fetch()
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ALIBABA_CLOUD_IMDSV1_DISABLED"), "{text}");
        assert!(text.contains("HTTP 403"), "{text}");
        // No plain read was made.
        assert_eq!(seen.lock().unwrap().gets.len(), 1);
    }

    #[tokio::test]
    async fn a_wrong_role_or_a_dead_endpoint_names_the_setting() {
        let (endpoint, _) = serve(true).await;
        let err = provider(&endpoint, Some("other-role"), false)
            .fetch()
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("oss.ecs_ram_role"), "{err}");
        // Nothing listens on port 1: a retryable error naming the endpoint setting.
        let err = provider("http://127.0.0.1:1", None, false)
            .fetch()
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(text.contains("oss.ecs_metadata_endpoint"), "{text}");
        assert!(text.contains("http://127.0.0.1:1"), "{text}");
    }
}
