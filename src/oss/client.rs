//! [`Client`]: one place that builds URLs, signs, sends, retries and turns
//! failures into [`OssError`]. The operations themselves live in
//! [`crate::oss::ops`] (pure builders and parsers) and go through the
//! crate-internal `Client::send` / `Client::send_stream`.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::Stream;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};

use super::body::{TrackedBody, UploadState, read_body, transport_error};
use super::credentials::Credentials;
use super::endpoint::{Addressing, Endpoint, Style, derive_region, normalize_region};
use super::error::{OssError, OssErrorKind};
use super::ops::{OssRequest, Payload};
use super::retry::{Retrier, RetryConfig};
use super::sign::{SignatureVersion, sign_request};
use super::upload::OwnedUploads;
use super::xml::ErrorDocument;
use crate::model::Crc64;
use crate::oss::protocol::header;
use tracing::Instrument as _;

pub use super::body::BoxError;

/// Largest XML body read into memory (tagging documents are ~3 KB at most).
pub(crate) const MAX_XML_BODY: usize = 1 << 20;
/// Largest error body read (the rest is dropped).
const MAX_ERROR_BODY: usize = 64 << 10;

const USER_AGENT: &str = concat!("ossgate/", env!("CARGO_PKG_VERSION"));

/// How to reach OSS. `Debug` never shows the secret or token.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `https://oss-cn-hangzhou.aliyuncs.com`, `http://127.0.0.1:PORT`, or a
    /// bare host (https assumed). No path.
    pub endpoint: String,
    /// V4 signing region (`cn-hangzhou`; a leading `oss-` is stripped). Empty:
    /// derived from an `oss-<region>[-internal].aliyuncs.com` endpoint; other
    /// endpoints (IPs, emulators) need it set.
    pub region: String,
    /// V4 (default) or V1.
    pub signature_version: SignatureVersion,
    /// Virtual-host or path style; `Auto` = path style for IP/localhost endpoints.
    pub addressing: Addressing,
    /// Access key (and STS token).
    pub credentials: Credentials,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (including streaming the body); `None` = none.
    pub request_timeout: Option<Duration>,
}

/// Optional client behaviour (timeouts beyond connect, retries); `Default` keeps
/// [`Client::new`]'s behaviour: no read timeout, [`RetryConfig::default`].
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// How long to wait for OSS to start answering once a request is sent, and then for
    /// each read of the response body; `None` = no limit.
    pub read_timeout: Option<Duration>,
    /// Attempts, backoff and the retry budget.
    pub retry: RetryConfig,
}

/// A [`ClientConfig`] value that cannot work; `setting` is the configuration
/// name to fix (`oss.endpoint`, `oss.region`, ...).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct ConfigError {
    /// The configuration setting at fault.
    pub setting: &'static str,
    /// What is wrong.
    pub message: String,
}

fn config_error(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        message: message.into(),
    }
}

/// The OSS REST client. Cheap to clone (shared connection pool).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Endpoint,
    style: Style,
    region: String,
    signature_version: SignatureVersion,
    credentials: RwLock<Credentials>,
    /// Server time minus local time, learned from `RequestTimeTooSkewed`.
    clock_offset_ms: AtomicI64,
    /// Retry policy and the budget shared by every request of this client.
    retry: Retrier,
    /// Multipart uploads started through this client that must still be completed or
    /// aborted (aborted at shutdown if they are still here).
    owned_uploads: OwnedUploads,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint)
            .field("style", &self.inner.style)
            .field("region", &self.inner.region)
            .field("signature_version", &self.inner.signature_version)
            .finish_non_exhaustive()
    }
}

/// What [`Client::send_stream`] sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SentBody {
    pub bytes: u64,
    pub crc64: u64,
}

impl Client {
    /// Validates `config` and builds the client (no network I/O).
    pub fn new(config: ClientConfig) -> Result<Client, ConfigError> {
        Self::with_options(config, ClientOptions::default())
    }

    /// [`Client::new`] with a read timeout and a retry policy.
    pub fn with_options(
        config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Client, ConfigError> {
        let endpoint = Endpoint::parse(&config.endpoint)
            .map_err(|e| config_error("oss.endpoint", e.to_string()))?;
        let region = match normalize_region(&config.region) {
            r if !r.is_empty() => r,
            _ => derive_region(&endpoint.host).ok_or_else(|| {
                config_error(
                    "oss.region",
                    format!(
                        "cannot derive the signing region from endpoint host {:?}; set oss.region (e.g. cn-hangzhou)",
                        endpoint.host
                    ),
                )
            })?,
        };
        if !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(config_error(
                "oss.region",
                format!("{region:?} is not a region ID (letters, digits and '-')"),
            ));
        }
        let style = endpoint.style(config.addressing);
        if style == Style::VirtualHost && endpoint.host.parse::<std::net::IpAddr>().is_ok() {
            return Err(config_error(
                "oss.addressing",
                "virtual_host addressing needs a host name, not an IP address; use path or auto",
            ));
        }
        if config.credentials.access_key_id.trim().is_empty() {
            return Err(config_error("oss.access_key_id", "empty"));
        }
        if config.credentials.access_key_secret.is_empty() {
            return Err(config_error("oss.access_key_secret", "empty"));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT);
        if let Some(t) = config.request_timeout {
            builder = builder.timeout(t);
        }
        if let Some(t) = options.read_timeout {
            builder = builder.read_timeout(t);
        }
        if endpoint.is_ip_or_localhost() {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| {
            config_error("oss.endpoint", format!("cannot build the HTTP client: {e}"))
        })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                endpoint,
                style,
                region,
                signature_version: config.signature_version,
                credentials: RwLock::new(config.credentials),
                clock_offset_ms: AtomicI64::new(0),
                retry: Retrier::new(options.retry),
                owned_uploads: OwnedUploads::default(),
            }),
        })
    }

    /// The multipart uploads started through this client that are not finished yet.
    pub fn owned_uploads(&self) -> &OwnedUploads {
        &self.inner.owned_uploads
    }

    /// The retry policy and the budget this client's requests share.
    pub fn retrier(&self) -> &Retrier {
        &self.inner.retry
    }

    /// Asks the retry budget for one more attempt of `operation` (for callers that retry
    /// whole operations, such as part copies); logs when it is refused.
    pub fn allow_retry(&self, operation: &str, error: &OssError) -> bool {
        self.inner.retry.allow(operation, error)
    }

    /// The signing region in use.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The parsed endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The addressing style in use (never `Auto`).
    pub fn style(&self) -> Style {
        self.inner.style
    }

    /// Replaces the credentials used for requests signed from now on (for
    /// rotating STS tokens).
    pub fn set_credentials(&self, credentials: Credentials) {
        *self
            .inner
            .credentials
            .write()
            .unwrap_or_else(PoisonError::into_inner) = credentials;
    }

    /// The wire URL of `req`.
    pub fn url(&self, req: &OssRequest) -> String {
        self.inner.endpoint.url(
            self.inner.style,
            req.bucket.as_str(),
            req.key.as_ref().map(|k| k.as_str()),
            &req.query,
        )
    }

    /// The URL and every header (auth included) this client sends for `req`
    /// when signing at `now`. Pure apart from reading the credentials.
    pub fn signed_request(
        &self,
        req: &OssRequest,
        now: SystemTime,
    ) -> Result<(String, Vec<(String, String)>), OssError> {
        let mut headers = req.headers.clone();
        let credentials = self
            .inner
            .credentials
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        sign_request(
            self.inner.signature_version,
            req.method.as_str(),
            Some(req.bucket.as_str()),
            req.key.as_ref().map(|k| k.as_str()),
            &req.query,
            &mut headers,
            &credentials,
            &self.inner.region,
            now,
        );
        Ok((self.url(req), headers))
    }

    /// Local time corrected by the offset learned from `RequestTimeTooSkewed`.
    fn now(&self) -> SystemTime {
        let offset = self.inner.clock_offset_ms.load(Ordering::Relaxed);
        let now = SystemTime::now();
        let delta = Duration::from_millis(offset.unsigned_abs());
        if offset >= 0 {
            now.checked_add(delta).unwrap_or(now)
        } else {
            now.checked_sub(delta).unwrap_or(now)
        }
    }

    /// Sends `req` ([`Self::send`]) and hands the answer's status, headers and body (at most
    /// `limit` bytes) to `parse`: the path of every operation that answers with a document.
    pub(crate) async fn send_and_parse<T>(
        &self,
        req: &OssRequest,
        limit: usize,
        parse: impl FnOnce(u16, &HeaderMap, &[u8]) -> Result<T, OssError>,
    ) -> Result<T, OssError> {
        let resp = self.send(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = read_body(resp, limit).await?;
        parse(status, &headers, &body)
    }

    /// Sends a request with an empty or in-memory body, retrying retryable failures (not
    /// client-side timeouts) up to `retry.max_attempts` times with jittered backoff, while
    /// the retry budget allows. Each attempt is bounded by the call's deadline
    /// ([`super::retry::deadline`]), and no retry starts whose backoff would end after it.
    /// Returns the response only for 2xx statuses.
    pub(crate) async fn send(&self, req: &OssRequest) -> Result<reqwest::Response, OssError> {
        let body = match &req.payload {
            Payload::Empty => None,
            Payload::Bytes(b) => Some(b.clone()),
            Payload::Stream => {
                return Err(OssError::invalid_argument(
                    "a streaming request must be sent with send_stream",
                ));
            }
        };
        let retry = &self.inner.retry;
        retry.budget.on_request();
        let deadline = super::retry::deadline();
        let mut attempt = 1;
        loop {
            let sent = self.attempt(req, body.clone().map(reqwest::Body::from), None, attempt);
            let result = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline.into(), sent)
                    .await
                    .unwrap_or_else(|_| {
                        Err(OssError::client(
                            OssErrorKind::Timeout,
                            "the call's deadline passed before OSS answered",
                        ))
                    }),
                None => sent.await,
            };
            let err = match result {
                Err(e) if e.retryable && e.kind != OssErrorKind::Timeout => e,
                other => return other,
            };
            if attempt >= retry.config.max_attempts {
                return Err(err);
            }
            let delay = retry.config.backoff(attempt);
            if super::retry::passes_deadline(deadline, delay) {
                tracing::debug!(method = %req.method, bucket = req.bucket.as_str(), error = %err, "not retrying: the call's deadline comes first");
                return Err(err);
            }
            if !retry.allow(req.operation.metric_label(), &err) {
                let mut err = err;
                err.message
                    .push_str(" (not retried: the gateway's OSS retry budget is exhausted)");
                return Err(err);
            }
            tracing::debug!(
                method = %req.method,
                bucket = req.bucket.as_str(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying OSS request"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
            crate::telemetry::metrics().record_retry(req.operation.metric_label());
        }
    }

    /// Sends a request whose body is the caller's stream, once. With
    /// `content_length`, a stream of another length aborts the upload.
    pub(crate) async fn send_stream(
        &self,
        req: &OssRequest,
        content_length: Option<u64>,
        body: Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>,
    ) -> Result<(reqwest::Response, SentBody), OssError> {
        let state = Arc::new(Mutex::new(UploadState {
            bytes: 0,
            crc: Crc64::new(),
            abort: None,
        }));
        let tracked = TrackedBody {
            inner: body,
            state: Arc::clone(&state),
            declared: content_length,
            done: false,
        };
        let resp = self
            .attempt(
                req,
                Some(reqwest::Body::wrap_stream(tracked)),
                Some(&state),
                1,
            )
            .await?;
        let st = state.lock().unwrap_or_else(PoisonError::into_inner);
        Ok((
            resp,
            SentBody {
                bytes: st.bytes,
                crc64: st.crc.value(),
            },
        ))
    }

    /// One signed HTTP exchange (attempt number `attempt`, 1 = first), in its own client
    /// span. Non-2xx responses become [`OssError`]s.
    async fn attempt(
        &self,
        req: &OssRequest,
        body: Option<reqwest::Body>,
        upload: Option<&Arc<Mutex<UploadState>>>,
        attempt: u32,
    ) -> Result<reqwest::Response, OssError> {
        let started = Instant::now();
        let span = crate::telemetry::OssSpan::start(
            req.method.as_str(),
            req.operation.name(),
            req.bucket.as_str(),
            req.key.as_ref().map_or("", |k| k.as_str()),
            attempt,
        );
        let in_memory = body
            .as_ref()
            .and_then(|b| b.as_bytes())
            .map(|b| b.len() as u64);
        let result = self
            .attempt_inner(req, body, upload, started)
            .instrument(span.span().clone())
            .await;
        let code = result.as_ref().err().map(|e| {
            if e.code.is_empty() {
                format!("{:?}", e.kind)
            } else {
                e.code.clone()
            }
        });
        crate::telemetry::metrics().record_oss(
            req.operation.metric_label(),
            started.elapsed(),
            code.as_deref(),
        );
        let streamed = upload.map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).bytes);
        let mut outcome = crate::telemetry::OssOutcome {
            error: code.as_deref(),
            bytes_sent: in_memory.or(streamed),
            ..Default::default()
        };
        match &result {
            Ok(resp) => {
                outcome.status = Some(resp.status().as_u16());
                outcome.request_id = resp
                    .headers()
                    .get(header::REQUEST_ID)
                    .and_then(|v| v.to_str().ok());
                outcome.bytes_received = resp.content_length();
            }
            Err(e) => {
                outcome.status = e.http_status;
                outcome.request_id = e.request_id.as_deref();
            }
        }
        span.finish(&outcome);
        result
    }

    async fn attempt_inner(
        &self,
        req: &OssRequest,
        body: Option<reqwest::Body>,
        upload: Option<&Arc<Mutex<UploadState>>>,
        started: Instant,
    ) -> Result<reqwest::Response, OssError> {
        let (url, headers) = self.signed_request(req, self.now())?;
        let url = reqwest::Url::parse(&url).map_err(|e| {
            OssError::invalid_argument(format!("cannot build the request URL: {e}"))
        })?;
        let mut builder = self
            .inner
            .http
            .request(req.method.clone(), url)
            .headers(header_map(&headers)?);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let result = builder.send().await;
        let resp = match result {
            Ok(resp) => resp,
            Err(e) => {
                let aborted = upload.and_then(|s| {
                    s.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .abort
                        .clone()
                });
                let err = match aborted {
                    Some((kind, message)) => OssError::client(kind, message),
                    None => transport_error(e),
                };
                tracing::debug!(method = %req.method, bucket = req.bucket.as_str(), error = %err, "OSS request failed");
                return Err(err);
            }
        };
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get(header::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        tracing::debug!(
            method = %req.method,
            bucket = req.bucket.as_str(),
            key = req.key.as_ref().map(|k| k.as_str()).unwrap_or(""),
            status,
            request_id = request_id.as_str(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "OSS request"
        );
        if resp.status().is_success() {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = if req.method == Method::HEAD {
            Bytes::new()
        } else {
            // A broken error body still yields an error from status + headers.
            read_body(resp, MAX_ERROR_BODY).await.unwrap_or_default()
        };
        let err = OssError::from_response(status, &headers, &body);
        if err.code == "RequestTimeTooSkewed" {
            self.learn_clock_offset(&headers, &body);
        }
        Err(err)
    }

    /// Sets the clock offset from the server time in a `RequestTimeTooSkewed`
    /// response (`ServerTime` element, else the `Date` header).
    fn learn_clock_offset(&self, headers: &HeaderMap, body: &[u8]) {
        let from_body = ErrorDocument::parse(&String::from_utf8_lossy(body))
            .and_then(|d| d.server_time().map(str::to_string))
            .and_then(|s| {
                time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(SystemTime::from);
        let from_header = || {
            headers
                .get(http::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| httpdate::parse_http_date(s).ok())
        };
        let Some(server) = from_body.or_else(from_header) else {
            return;
        };
        let local = SystemTime::now();
        let offset_ms = match server.duration_since(local) {
            Ok(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
            Err(behind) => -i64::try_from(behind.duration().as_millis()).unwrap_or(i64::MAX),
        };
        tracing::warn!(
            offset_ms,
            "local clock differs from OSS; adjusting request times"
        );
        self.inner
            .clock_offset_ms
            .store(offset_ms, Ordering::Relaxed);
    }
}

/// Converts signed header pairs to a [`HeaderMap`]; a value HTTP cannot carry
/// is an `InvalidArgument` error naming the header (never echoing secrets).
fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, OssError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let hname = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| OssError::invalid_argument(format!("invalid header name {name:?}")))?;
        // Visible ASCII and spaces only: other bytes are legal "obs-text" in
        // HTTP/1.1 but servers and signers decode them inconsistently.
        let bad_value = || {
            OssError::invalid_argument(format!(
                "the value of header {name} cannot be sent over HTTP (only visible ASCII and spaces are allowed)"
            ))
        };
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(bad_value());
        }
        let mut hvalue = HeaderValue::from_str(value).map_err(|_| bad_value())?;
        if hname == http::header::AUTHORIZATION || hname.as_str() == header::SECURITY_TOKEN {
            hvalue.set_sensitive(true);
        }
        map.append(hname, hvalue);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BucketName, ObjectKey, TagSet, crc64};
    use crate::oss::ops::object::ObjectId;
    use crate::oss::ops::test_support::loopback::{Server as TestServer, response};
    use crate::oss::ops::{GetObjectInput, PutObjectInput};
    use futures_util::StreamExt;

    fn credentials() -> Credentials {
        Credentials {
            access_key_id: "LTAI5tExampleAccessKeyId".into(),
            access_key_secret: "ExampleAccessKeySecret0123456789abc".into(),
            security_token: None,
        }
    }

    fn config(endpoint: &str) -> ClientConfig {
        ClientConfig {
            endpoint: endpoint.to_string(),
            region: "cn-hangzhou".into(),
            signature_version: SignatureVersion::V4,
            addressing: Addressing::Auto,
            credentials: credentials(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Some(Duration::from_secs(10)),
        }
    }

    fn client(server: &TestServer) -> Client {
        Client::new(config(&server.endpoint())).unwrap()
    }

    fn bucket() -> BucketName {
        BucketName::parse("examplebucket").unwrap()
    }

    fn key(k: &str) -> ObjectKey {
        ObjectKey::parse(k).unwrap()
    }

    fn chunks(
        parts: Vec<Result<&'static str, &'static str>>,
    ) -> impl Stream<Item = Result<Bytes, BoxError>> + Send + 'static {
        futures_util::stream::iter(parts.into_iter().map(|p| match p {
            Ok(s) => Ok(Bytes::from_static(s.as_bytes())),
            Err(e) => Err(BoxError::from(e)),
        }))
    }

    #[test]
    fn config_errors_name_the_setting() {
        let mut c = config("http://127.0.0.1:9");
        c.region = String::new();
        assert_eq!(Client::new(c).unwrap_err().setting, "oss.region");
        let mut c = config("https://oss-cn-shanghai-internal.aliyuncs.com");
        c.region = String::new();
        let client = Client::new(c).unwrap();
        assert_eq!(client.region(), "cn-shanghai");
        assert_eq!(client.style(), Style::VirtualHost);
        let mut c = config("https://oss-cn-shanghai.aliyuncs.com");
        c.region = "oss-cn-beijing".into();
        assert_eq!(Client::new(c).unwrap().region(), "cn-beijing");
        assert_eq!(
            Client::new(config("ftp://x")).unwrap_err().setting,
            "oss.endpoint"
        );
        let mut c = config("http://10.0.0.1:80");
        c.addressing = Addressing::VirtualHost;
        assert_eq!(Client::new(c).unwrap_err().setting, "oss.addressing");
        let mut c = config("http://127.0.0.1:9");
        c.credentials.access_key_id = String::new();
        assert_eq!(Client::new(c).unwrap_err().setting, "oss.access_key_id");
        let mut c = config("http://127.0.0.1:9");
        c.region = "cn hangzhou".into();
        assert_eq!(Client::new(c).unwrap_err().setting, "oss.region");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = config("http://127.0.0.1:9");
        let shown = format!("{c:?} {:?}", Client::new(c.clone()).unwrap());
        assert!(!shown.contains("ExampleAccessKeySecret"), "{shown}");
    }

    #[test]
    fn urls_in_both_styles() {
        let path = Client::new(config("http://127.0.0.1:18765")).unwrap();
        let req =
            crate::oss::ops::object::build_head_object(&ObjectId::new(bucket(), key("a b/c?d")));
        assert_eq!(
            path.url(&req),
            "http://127.0.0.1:18765/examplebucket/a%20b/c%3Fd"
        );
        let vhost = Client::new(config("https://oss-cn-hangzhou.aliyuncs.com")).unwrap();
        assert_eq!(
            vhost.url(&req),
            "https://examplebucket.oss-cn-hangzhou.aliyuncs.com/a%20b/c%3Fd"
        );
    }

    #[tokio::test]
    async fn put_object_with_length_is_not_chunked() {
        let server = TestServer::start(|_, s| {
            let crc = crc64(&s.body).to_string();
            response(
                200,
                &[
                    ("etag", "\"E\""),
                    ("x-oss-hash-crc64ecma", &crc),
                    ("x-oss-request-id", "R"),
                ],
                "",
            )
        })
        .await;
        let client = client(&server);
        let mut input = PutObjectInput::new(bucket(), key("docs/report 2025+final.txt"));
        input.content_length = Some(10);
        input.attributes.tags =
            TagSet::from_pairs([("project", "alpha"), ("team", "storage ops")]).unwrap();
        let out = client
            .put_object(&input, chunks(vec![Ok("hello "), Ok("oss\n")]))
            .await
            .unwrap();
        assert_eq!(out.sent_bytes, 10);
        assert_eq!(out.sent_crc64, crc64(b"hello oss\n"));
        assert_eq!(out.crc64, Some(crc64(b"hello oss\n")));
        assert_eq!(out.etag.as_deref(), Some("\"E\""));
        assert_eq!(out.request_id.as_deref(), Some("R"));
        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        let s = &seen[0];
        assert_eq!(s.method, "PUT");
        assert_eq!(s.target, "/examplebucket/docs/report%202025%2Bfinal.txt");
        assert_eq!(s.headers["content-length"], "10");
        assert!(s.headers.get("transfer-encoding").is_none());
        assert_eq!(
            s.headers["x-oss-tagging"],
            "project=alpha&team=storage%20ops"
        );
        assert!(s.headers.get("authorization").is_some());
        assert!(!s.aborted);
        assert_eq!(&s.body[..], b"hello oss\n");
    }

    #[tokio::test]
    async fn put_object_without_length_is_chunked() {
        let server = TestServer::start(|_, _| response(200, &[], "")).await;
        let client = client(&server);
        let input = PutObjectInput::new(bucket(), key("k"));
        let out = client
            .put_object(&input, chunks(vec![Ok("abc"), Ok(""), Ok("def")]))
            .await
            .unwrap();
        assert_eq!(out.sent_bytes, 6);
        assert_eq!(out.crc64, None);
        let s = &server.seen()[0];
        assert_eq!(s.headers["transfer-encoding"], "chunked");
        assert!(s.headers.get("content-length").is_none());
        assert!(!s.aborted);
        assert_eq!(&s.body[..], b"abcdef");
    }

    #[tokio::test]
    async fn put_object_crc_mismatch_is_detected() {
        let server =
            TestServer::start(|_, _| response(200, &[("x-oss-hash-crc64ecma", "1")], "")).await;
        let err = client(&server)
            .put_object(
                &PutObjectInput::new(bucket(), key("k")),
                chunks(vec![Ok("abc")]),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::ChecksumMismatch);
    }

    #[tokio::test]
    async fn put_object_caller_stream_error_cancels() {
        let server = TestServer::start(|_, _| response(200, &[], "")).await;
        let client = client(&server);
        let err = client
            .put_object(
                &PutObjectInput::new(bucket(), key("k")),
                chunks(vec![Ok("abc"), Err("client went away")]),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::Cancelled, "{err}");
        assert!(err.message.contains("client went away"), "{err}");
        assert!(!err.retryable);
        // the server never got a complete body
        assert!(server.seen().iter().all(|s| s.aborted));
    }

    #[tokio::test]
    async fn put_object_length_mismatch_aborts() {
        let server = TestServer::start(|_, _| response(200, &[], "")).await;
        let client = client(&server);
        let mut input = PutObjectInput::new(bucket(), key("k"));
        input.content_length = Some(5);
        let err = client
            .put_object(&input, chunks(vec![Ok("abc")]))
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidArgument, "{err}");
        let err = client
            .put_object(&input, chunks(vec![Ok("abc"), Ok("def")]))
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidArgument, "{err}");
        assert!(server.seen().iter().all(|s| s.aborted));
    }

    #[tokio::test]
    async fn head_error_from_headers_only() {
        use base64::Engine as _;
        let xml = "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><RequestId>R9</RequestId></Error>";
        let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
        let server = TestServer::start(move |_, _| {
            response(
                404,
                &[
                    ("x-oss-err", &b64),
                    ("x-oss-ec", "0026-00000001"),
                    ("x-oss-request-id", "R9"),
                ],
                "",
            )
        })
        .await;
        let err = client(&server)
            .head_object(&ObjectId::new(bucket(), key("missing")))
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::NotFound);
        assert_eq!(err.code, "NoSuchKey");
        assert_eq!(err.ec.as_deref(), Some("0026-00000001"));
        assert_eq!(err.request_id.as_deref(), Some("R9"));
        assert_eq!(err.http_status, Some(404));
        assert_eq!(server.seen().len(), 1, "404 is not retried");
    }

    #[tokio::test]
    async fn get_object_streams_and_checks_crc() {
        let body = "0123456789";
        let crc = crc64(body.as_bytes()).to_string();
        let server = TestServer::start(move |i, _| {
            let crc = if i == 0 { crc.clone() } else { "7".to_string() };
            response(
                200,
                &[
                    ("x-oss-hash-crc64ecma", &crc),
                    ("etag", "\"E\""),
                    ("x-oss-object-type", "Normal"),
                ],
                body,
            )
        })
        .await;
        let client = client(&server);
        let input = GetObjectInput::new(bucket(), key("k"));
        let out = client.get_object(&input).await.unwrap();
        assert_eq!(out.head.size, 10);
        assert_eq!(out.content_length, Some(10));
        let got: Vec<Result<Bytes, OssError>> = out.body.collect().await;
        let bytes: Vec<u8> = got.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
        assert_eq!(bytes, body.as_bytes());
        // second response lies about the CRC
        let out = client.get_object(&input).await.unwrap();
        let got: Vec<Result<Bytes, OssError>> = out.body.collect().await;
        let last = got.last().unwrap().as_ref().unwrap_err();
        assert_eq!(last.kind, OssErrorKind::ChecksumMismatch);
    }

    #[tokio::test]
    async fn get_object_range_and_error_body() {
        let server = TestServer::start(|i, s| {
            if i == 0 {
                assert_eq!(s.headers["range"], "bytes=2-4");
                response(206, &[("content-range", "bytes 2-4/10"), ("x-oss-hash-crc64ecma", "1")], "234")
            } else {
                response(
                    403,
                    &[("x-oss-request-id", "R4"), ("content-type", "application/xml")],
                    "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>no</Message><EC>0003-00000001</EC></Error>",
                )
            }
        })
        .await;
        let client = client(&server);
        let mut input = GetObjectInput::new(bucket(), key("k"));
        input.range = Some(crate::oss::ops::ByteRange {
            start: 2,
            end: Some(4),
        });
        let out = client.get_object(&input).await.unwrap();
        assert_eq!(out.head.size, 10);
        assert_eq!(out.content_range.map(|r| (r.start, r.end)), Some((2, 4)));
        let got: Vec<Result<Bytes, OssError>> = out.body.collect().await;
        assert_eq!(got.len(), 1, "no CRC check on a range");
        assert_eq!(got[0].as_deref().ok(), Some(&b"234"[..]));
        let err = client.get_object(&input).await.unwrap_err();
        assert_eq!(err.kind, OssErrorKind::AccessDenied);
        assert_eq!(err.ec.as_deref(), Some("0003-00000001"));
        assert_eq!(err.request_id.as_deref(), Some("R4"));
    }

    #[tokio::test]
    async fn retryable_errors_are_retried_for_replayable_requests() {
        let server = TestServer::start(|i, _| {
            if i < 2 {
                response(503, &[], "<html>busy</html>")
            } else {
                response(204, &[("x-oss-delete-marker", "true")], "")
            }
        })
        .await;
        let out = client(&server)
            .delete_object(&ObjectId::new(bucket(), key("k")))
            .await
            .unwrap();
        assert!(out.delete_marker);
        assert_eq!(server.seen().len(), 3);
    }

    #[tokio::test]
    async fn retries_give_up_after_max_attempts() {
        let server = TestServer::start(|_, _| response(500, &[], "garbage \u{1} body")).await;
        let err = client(&server)
            .delete_object(&ObjectId::new(bucket(), key("k")))
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::ServerError);
        assert!(err.retryable);
        assert_eq!(
            server.seen().len(),
            RetryConfig::default().max_attempts as usize
        );
    }

    #[tokio::test]
    async fn streaming_uploads_are_not_retried() {
        let server = TestServer::start(|_, _| response(503, &[], "")).await;
        let err = client(&server)
            .put_object(
                &PutObjectInput::new(bucket(), key("k")),
                chunks(vec![Ok("x")]),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::ServerError);
        assert_eq!(server.seen().len(), 1);
    }

    #[tokio::test]
    async fn connection_refused_is_transport() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = Client::new(config(&format!("http://{addr}"))).unwrap();
        let err = client
            .head_object(&ObjectId::new(bucket(), key("k")))
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::Transport, "{err}");
        assert!(err.retryable);
        assert_eq!(err.http_status, None);
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                conns.push(s);
            }
        });
        let mut c = config(&format!("http://{addr}"));
        c.request_timeout = Some(Duration::from_millis(300));
        let err = Client::new(c)
            .unwrap()
            .head_object(&ObjectId::new(bucket(), key("k")))
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::Timeout, "{err}");
        hold.abort();
    }

    #[tokio::test]
    async fn header_values_http_cannot_carry_are_invalid_argument() {
        let server = TestServer::start(|_, _| response(200, &[], "")).await;
        let mut input = PutObjectInput::new(bucket(), key("k"));
        input.attributes.content.content_disposition = Some("attachment; filename=\"ünï\"".into());
        let err = client(&server)
            .put_object(&input, chunks(vec![Ok("x")]))
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidArgument);
        assert!(err.message.contains("content-disposition"), "{err}");
        assert!(server.seen().is_empty());
    }

    /// The signature part of an Authorization value (V4 `Signature=…`, V1 after `:`).
    fn signature_of(headers: &[(String, String)]) -> String {
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

    /// Our builders + the signer reproduce the official SDKs' signatures for
    /// the same inputs (CAP wire captures, signed at 2025-01-15T08:30:00Z).
    #[test]
    fn builders_reproduce_sdk_capture_signatures() {
        use crate::model::{ObjectAcl, StorageClass, UserMetadata, VersionId};
        use crate::oss::ops::object::{build_head_object, build_put_object};
        use crate::oss::ops::symlink::{PutSymlinkInput, build_put_symlink};
        use crate::oss::ops::tagging::{PutObjectTaggingInput, build_put_object_tagging};
        use base64::Engine as _;

        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_736_929_800);
        let version =
            VersionId::parse("CAEQNhiBgMDJgZCA0BYiIDc4MGZjZGI2OTBjOTRmNTE5NmU5NmFhZjhjYmY0****")
                .unwrap();

        let mut put = PutObjectInput::new(bucket(), key("docs/report 2025+final.txt"));
        put.content_length = Some(10);
        put.content_md5 = base64::engine::general_purpose::STANDARD
            .decode("S0EUoYu/KkxURvmvzPmSPw==")
            .unwrap()
            .try_into()
            .ok();
        put.attributes.content.content_type = Some("text/plain".into());
        put.attributes.metadata =
            UserMetadata::from_pairs([("author", "alice"), ("purpose", "unit test")]).unwrap();
        put.attributes.tags =
            TagSet::from_pairs([("project", "alpha"), ("team", "storage ops")]).unwrap();
        put.attributes.storage_class = Some(StorageClass::Ia);
        put.attributes.acl = Some(ObjectAcl::Private);
        put.attributes.forbid_overwrite = true;

        let tags = TagSet::from_pairs([("k1", "v1"), ("key two", "value/2")]).unwrap();
        let mut tagging_md5 = PutObjectTaggingInput::new(bucket(), key("docs/report.txt"), tags);
        tagging_md5.version_id = Some(version.clone());
        let mut tagging_plain = tagging_md5.clone();
        tagging_plain.content_md5 = false;

        let mut symlink =
            PutSymlinkInput::new(bucket(), key("link-to-report.txt"), key("docs/report.txt"));
        symlink.attributes.forbid_overwrite = true;

        let mut unicode = PutObjectInput::new(bucket(), key("测试/日志 #1?.txt"));
        unicode.content_length = Some(1);
        unicode.attributes.content.content_type = Some("text/plain".into());
        unicode.attributes.metadata =
            UserMetadata::from_pairs([("Mixed-Case", "Value With  Spaces")]).unwrap();

        let head = build_head_object(&ObjectId::new(bucket(), key("docs/report.txt")));

        let cases: Vec<(&str, OssRequest, &str, &str)> = vec![
            (
                "PutObject",
                build_put_object(&put),
                "5f88e65883849d952a5e53db112596c2621f555e61de7f9f8d2656206d805bc9",
                "cBFnVNOMeICAVe7Ah3Fkk5SJQ34=",
            ),
            (
                "pyv2 PutObjectTagging",
                build_put_object_tagging(&tagging_md5),
                "ca9c010e0ddb66aa662b4567b5381711dfb0d12a5ca623402e0fb96abfb75aed",
                "w/vI2QwcB52NFrOrsa7kNpDsa+Q=",
            ),
            (
                "oss2 PutObjectTagging",
                build_put_object_tagging(&tagging_plain),
                "25772b12c1db22bba0f97c63b844e059d367dd7623d5a92518e37296a6811bc3",
                "kx4ujX7ZjAJ0LOireKtcjasqXHI=",
            ),
            (
                "oss2 PutSymlink",
                build_put_symlink(&symlink),
                "b7a9e0a0259c0e16bbf12bec1419c9f7c9d80c56b39c65c10bec398663565f93",
                "zTCVYC5W2Jqhc1sEcnc6pn58dCs=",
            ),
            (
                "HeadObject",
                head,
                "382d4b58d17cf968253c3fa824a97d3f0fa33e436ab893b5f5344ef8530756b7",
                "746KsYxBMh4UTPDXkeJdyW1H8JE=",
            ),
            (
                "PutObjectUnicodeKey",
                build_put_object(&unicode),
                "6e18e77189214365ab423b51d33675af6dc3b122d8e9de0a967aa37b0555689c",
                "t3kP1G5O506Ljeo43ztP7azcgzY=",
            ),
        ];
        for (version, expected_index) in [(SignatureVersion::V4, 0), (SignatureVersion::V1, 1)] {
            let mut c = config("http://127.0.0.1:18765");
            c.signature_version = version;
            let client = Client::new(c).unwrap();
            for (name, req, v4, v1) in &cases {
                let (_, headers) = client.signed_request(req, at).unwrap();
                let want = [*v4, *v1][expected_index];
                assert_eq!(signature_of(&headers), want, "{name} {version:?}");
            }
        }
    }

    #[tokio::test]
    async fn clock_skew_is_learned_and_retried() {
        use base64::Engine as _;
        let server_time = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let rfc3339 = server_time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let http_date = httpdate::fmt_http_date(SystemTime::from(server_time));
        let server = TestServer::start(move |i, s| {
            let doc = |detail: &str| {
                format!(
                    "<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message>{detail}</Error>"
                )
            };
            match (i, s.method.as_str()) {
                // HEAD: no body; the server time comes from the Date header
                (0, "HEAD") => response(
                    403,
                    &[
                        ("x-oss-err", &base64::engine::general_purpose::STANDARD.encode(doc(""))),
                        ("date", &http_date),
                    ],
                    "",
                ),
                // others: ServerTime in the body's Detail
                (2, _) => response(
                    403,
                    &[],
                    &doc(&format!("<Detail><ServerTime>{rfc3339}</ServerTime></Detail>")),
                ),
                _ => response(if s.method == "HEAD" { 200 } else { 204 }, &[("content-length", "0")], ""),
            }
        })
        .await;
        let check = |date: &str| {
            let parsed = time::PrimitiveDateTime::parse(
                date,
                time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
            )
            .unwrap()
            .assume_utc();
            let off = (parsed - server_time).whole_seconds().abs();
            assert!(
                off < 120,
                "retry signed at {date}, server time {server_time}"
            );
        };
        let client = client(&server);
        client
            .head_object(&ObjectId::new(bucket(), key("k")))
            .await
            .unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        check(seen[1].headers["x-oss-date"].to_str().unwrap());

        // a fresh client learns the offset from an XML body
        let client = Client::new(config(&server.endpoint())).unwrap();
        client
            .delete_object(&ObjectId::new(bucket(), key("k")))
            .await
            .unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), 4);
        check(seen[3].headers["x-oss-date"].to_str().unwrap());
    }
}
