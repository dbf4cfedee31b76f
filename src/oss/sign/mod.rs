//! Request signing (placeholder with the contract's API until the signer lands; it signs nothing).
use std::{fmt, str::FromStr, time::SystemTime};

use super::credentials::Credentials;

/// OSS signature versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    /// HMAC-SHA1 (`OSS ak:sig`).
    V1,
    /// `OSS4-HMAC-SHA256` (the default).
    #[default]
    V4,
}

impl FromStr for SignatureVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "v1" => Ok(Self::V1),
            "v4" => Ok(Self::V4),
            other => Err(format!("unknown signature version {other:?}")),
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

/// Adds the auth headers (placeholder: adds none).
#[allow(clippy::too_many_arguments)]
pub fn sign_request(
    _version: SignatureVersion,
    _method: &str,
    _bucket: Option<&str>,
    _key: Option<&str>,
    _query: &[(String, String)],
    _headers: &mut Vec<(String, String)>,
    _credentials: &Credentials,
    _region: &str,
    _now: SystemTime,
) {
}
