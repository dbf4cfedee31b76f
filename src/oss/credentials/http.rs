//! What the credentials providers ([`super::sts`], [`super::ecs`]) share: the HTTP client of a
//! credentials service, a bounded read of its answer, and the PascalCase credentials both
//! services answer with.

use std::time::Duration;

use super::{Credentials, CredentialsError, TemporaryCredentials, sts};

impl CredentialsError {
    /// A [`CredentialsError::Config`].
    pub(super) fn config(setting: &'static str, message: impl Into<String>) -> Self {
        Self::Config {
            setting,
            message: message.into(),
        }
    }

    /// A [`CredentialsError::Transport`].
    pub(super) fn transport(
        service: &'static str,
        endpoint: &str,
        message: String,
        retryable: bool,
    ) -> Self {
        Self::Transport {
            service,
            endpoint: endpoint.to_owned(),
            message,
            retryable,
        }
    }
}

/// Largest answer of a credentials service read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The HTTP client of a credentials service: no redirects, no HTTP proxy when `no_proxy`.
pub(super) fn http_client(
    connect_timeout: Duration,
    request_timeout: Duration,
    no_proxy: bool,
) -> reqwest::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ossgate/", env!("CARGO_PKG_VERSION")));
    if no_proxy {
        builder = builder.no_proxy();
    }
    builder.build()
}

/// One answer of a credentials service.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

/// Sends `request` and reads at most [`MAX_RESPONSE_BYTES`] of its answer. A network error is
/// `transport(its description + hint, retryable)`; a longer answer is not retryable.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
    hint: &str,
    transport: impl Fn(String, bool) -> CredentialsError,
) -> Result<Answer, CredentialsError> {
    let unreachable = |e: &reqwest::Error| transport(format!("{}{hint}", describe(e)), true);
    let mut response = request.send().await.map_err(|e| unreachable(&e))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&e))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(transport(
                format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
                false,
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { status, body })
}

/// A reqwest error with its causes (reqwest's Display alone hides "connection refused").
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The credentials STS and the ECS metadata service answer with (PascalCase JSON).
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct IssuedCredentials {
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

impl IssuedCredentials {
    /// The credentials; `incomplete(field)` for the first missing or empty field,
    /// `bad_expiration(text)` for an Expiration that is not an RFC 3339 time.
    pub(super) fn into_temporary(
        self,
        incomplete: impl Fn(&str) -> CredentialsError,
        bad_expiration: impl FnOnce(&str) -> CredentialsError,
    ) -> Result<TemporaryCredentials, CredentialsError> {
        let field = |value: Option<String>, name: &str| {
            value
                .filter(|s| !s.is_empty())
                .ok_or_else(|| incomplete(name))
        };
        let access_key_id = field(self.access_key_id, "AccessKeyId")?;
        let access_key_secret = field(self.access_key_secret, "AccessKeySecret")?;
        let security_token = field(self.security_token, "SecurityToken")?;
        let expiration_text = field(self.expiration, "Expiration")?;
        let expiration = sts::parse_timestamp(&expiration_text)
            .ok_or_else(|| bad_expiration(&expiration_text))?;
        Ok(TemporaryCredentials {
            credentials: Credentials {
                access_key_id,
                access_key_secret,
                security_token: Some(security_token),
            },
            expiration,
        })
    }
}
