//! OSS credentials: an AccessKey pair, optionally with an STS security token, and the
//! machinery that keeps temporary credentials fresh.
//!
//! * [`Credentials`]: what a request is signed with.
//! * [`TemporaryCredentials`]: credentials with an expiry, as STS issues them.
//! * [`CredentialsProvider`]: a source of temporary credentials (RRSA:
//!   [`sts::OidcRoleProvider`]; the ECS instance's RAM role: [`ecs::EcsRoleProvider`]), and
//!   [`RoleProvider`], either of them.
//! * [`Refresher`]: the one background task per process that fetches new credentials ahead of
//!   expiry and hands them to a sink (the OSS client's `set_credentials`). Requests never
//!   refresh, so a burst of calls can never cause a burst of STS calls.
pub mod ecs;
mod http;
mod refresher;
pub mod sts;

pub use refresher::{
    FIRST_BACKOFF, MAX_BACKOFF, MIN_REFRESH_INTERVAL, REFRESH_MARGIN, Refresher, failure_backoff,
    fetch_initial, refresh_delay, refresh_margin, remaining,
};

use std::fmt;
use std::future::Future;
use std::time::SystemTime;

/// An AccessKey pair, optionally with an STS security token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// AccessKey ID.
    pub access_key_id: String,
    /// AccessKey secret.
    pub access_key_secret: String,
    /// STS security token.
    pub security_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Credentials that stop working at `expiration` (STS). `Debug` redacts like [`Credentials`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemporaryCredentials {
    /// The key pair and token.
    pub credentials: Credentials,
    /// When OSS stops accepting them.
    pub expiration: SystemTime,
}

/// Why credentials could not be obtained. Messages name the setting (and environment
/// variable) to check, and never contain a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// A setting is missing or unusable.
    #[error("{setting}: {message}")]
    Config {
        /// The setting (and its environment variable) to fix.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The OIDC token file could not be read or is empty.
    #[error(
        "cannot use the OIDC token file {path} (oss.oidc_token_file / ALIBABA_CLOUD_OIDC_TOKEN_FILE): {message}"
    )]
    TokenFile {
        /// The configured path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The credentials service could not be reached or answered with something unreadable.
    #[error("{service} at {endpoint}: {message}")]
    Transport {
        /// `STS AssumeRoleWithOIDC`, ...
        service: &'static str,
        /// Where it was called.
        endpoint: String,
        /// What went wrong.
        message: String,
        /// Whether trying again may help (network errors, 5xx, throttling).
        retryable: bool,
    },
    /// The credentials service refused.
    #[error(
        "{service} at {endpoint} refused with HTTP {status} {code}: {message}{}",
        request_id.as_deref().map(|id| format!(" (RequestId {id})")).unwrap_or_default()
    )]
    Refused {
        /// `STS AssumeRoleWithOIDC`, ...
        service: &'static str,
        /// Where it was called.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// Error code (`AuthenticationFail.OIDCToken.Invalid`, ...).
        code: String,
        /// Error message.
        message: String,
        /// The service's request id.
        request_id: Option<String>,
    },
}

impl CredentialsError {
    /// Whether trying again later may succeed without changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Config { .. } | Self::TokenFile { .. } => false,
            Self::Transport { retryable, .. } => *retryable,
            Self::Refused { status, code, .. } => {
                *status >= 500 || *status == 429 || code.starts_with("Throttling")
            }
        }
    }
}

/// A source of temporary credentials.
pub trait CredentialsProvider: Send + Sync + 'static {
    /// Fetches a fresh set (one call to the credentials service).
    fn fetch(&self) -> impl Future<Output = Result<TemporaryCredentials, CredentialsError>> + Send;

    /// How the source names itself in logs, when it does (it then wins over the label given
    /// to [`Refresher::spawn`]).
    fn name(&self) -> Option<&'static str> {
        None
    }
}

/// The source of temporary credentials in use, in the order of precedence after static keys:
/// RRSA, then the ECS instance's RAM role.
#[derive(Clone, Debug)]
pub enum RoleProvider {
    /// RRSA: STS AssumeRoleWithOIDC with the projected service-account token.
    Oidc(sts::OidcRoleProvider),
    /// The RAM role of the ECS instance, from its metadata service.
    Ecs(ecs::EcsRoleProvider),
}

impl RoleProvider {
    /// The source's name in logs and errors.
    pub fn service(&self) -> &'static str {
        match self {
            Self::Oidc(_) => sts::SERVICE,
            Self::Ecs(_) => ecs::SERVICE,
        }
    }
}

impl CredentialsProvider for RoleProvider {
    async fn fetch(&self) -> Result<TemporaryCredentials, CredentialsError> {
        match self {
            Self::Oidc(p) => p.fetch().await,
            Self::Ecs(p) => p.fetch().await,
        }
    }

    fn name(&self) -> Option<&'static str> {
        Some(self.service())
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn debug_never_shows_secret_or_token() {
        let creds = Credentials {
            access_key_id: "STS.visible".into(),
            access_key_secret: "the-secret-value".into(),
            security_token: Some("the-token-value".into()),
        };
        let temp = TemporaryCredentials {
            credentials: creds.clone(),
            expiration: SystemTime::UNIX_EPOCH,
        };
        for shown in [
            format!("{creds:?}"),
            format!("{temp:?}"),
            format!("{temp:#?}"),
        ] {
            assert!(shown.contains("STS.visible"), "{shown}");
            assert!(!shown.contains("the-secret-value"), "{shown}");
            assert!(!shown.contains("the-token-value"), "{shown}");
        }
    }

    #[test]
    fn retryable_errors() {
        let refused = |status, code: &str| CredentialsError::Refused {
            service: "STS",
            endpoint: "e".into(),
            status,
            code: code.into(),
            message: "m".into(),
            request_id: Some("RID".into()),
        };
        assert!(refused(503, "ServiceUnavailable").is_retryable());
        assert!(refused(400, "Throttling.User").is_retryable());
        assert!(!refused(401, "AuthenticationFail.OIDCToken.Invalid").is_retryable());
        assert!(
            refused(401, "X")
                .to_string()
                .contains("HTTP 401 X: m (RequestId RID)")
        );
        let file = CredentialsError::TokenFile {
            path: "/p".into(),
            message: "empty".into(),
        };
        assert!(!file.is_retryable());
        assert!(file.to_string().contains("ALIBABA_CLOUD_OIDC_TOKEN_FILE"));
    }
}
