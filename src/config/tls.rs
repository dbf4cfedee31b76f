//! `[tls]`: TLS on the gRPC listener (certificate files, client certificates, reloading). The
//! listener that loads the files and reloads them is `server::tls`.

use std::{fmt, time::Duration};

use anyhow::bail;
use serde::{Deserialize, Serialize};

/// `[tls]`: TLS on the gRPC listener. No `cert_file` = plaintext.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file with the server certificate chain (leaf first); empty = no TLS.
    pub cert_file: String,
    /// PEM file with the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// PEM file with the CA certificates that client certificates must chain to.
    pub client_ca_file: String,
    /// `none`, `optional` (a client may present a certificate) or `required` (it must).
    pub client_auth: ClientAuth,
    /// How often the three files are read again to pick up new certificates; 0 = never.
    #[serde(with = "super::text::millis")]
    pub reload_interval_ms: Duration,
    /// How long a client has to complete the TLS handshake.
    #[serde(with = "super::text::millis")]
    pub handshake_timeout_ms: Duration,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cert_file: String::new(),
            key_file: String::new(),
            client_ca_file: String::new(),
            client_auth: ClientAuth::None,
            reload_interval_ms: Duration::from_millis(10_000),
            handshake_timeout_ms: Duration::from_millis(10_000),
        }
    }
}

/// Whether and how clients present certificates (`tls.client_auth`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(try_from = "String", rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificates are asked for.
    #[default]
    None,
    /// A client may present a certificate; if it does, it must chain to `tls.client_ca_file`.
    Optional,
    /// Every client must present a certificate chaining to `tls.client_ca_file`.
    Required,
}

impl TlsSettings {
    /// True when the listener speaks TLS.
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty()
    }

    /// True when every connection must present a client certificate from the configured CA.
    pub fn requires_client_certificates(&self) -> bool {
        self.enabled() && self.client_auth == ClientAuth::Required
    }

    /// True when clients may authenticate with certificates (`optional` or `required`).
    pub fn accepts_client_certificates(&self) -> bool {
        self.enabled()
            && matches!(
                self.client_auth,
                ClientAuth::Optional | ClientAuth::Required
            )
    }

    /// Checks the settings, naming the first bad setting. The files are read and checked by
    /// the listener that uses them (`server::tls::check`), not here: config reads no files.
    pub fn validate(&self) -> anyhow::Result<()> {
        let client_auth = self.client_auth;
        if self.cert_file.is_empty() != self.key_file.is_empty() {
            bail!(
                "tls.cert_file and tls.key_file must be set together (or neither, for plaintext)"
            );
        }
        if !self.enabled() {
            if !self.client_ca_file.is_empty() || client_auth != ClientAuth::None {
                bail!(
                    "tls.client_ca_file / tls.client_auth: client certificates need TLS; set \
                     tls.cert_file and tls.key_file"
                );
            }
            return Ok(());
        }
        match (client_auth, self.client_ca_file.is_empty()) {
            (ClientAuth::None, false) => bail!(
                "tls.client_auth: tls.client_ca_file is set but client_auth is \"none\"; set \
                 \"optional\" or \"required\" (or remove client_ca_file)"
            ),
            (ClientAuth::Optional | ClientAuth::Required, true) => bail!(
                "tls.client_ca_file: client_auth {:?} needs the CA that client certificates \
                 chain to",
                self.client_auth.as_str()
            ),
            _ => {}
        }
        let handshake_timeout_ms = self.handshake_timeout_ms.as_millis();
        if !(100..=600_000).contains(&handshake_timeout_ms) {
            bail!("tls.handshake_timeout_ms: {handshake_timeout_ms} is outside 100..=600000");
        }
        let reload_interval_ms = self.reload_interval_ms.as_millis();
        if reload_interval_ms != 0 && reload_interval_ms < 50 {
            bail!(
                "tls.reload_interval_ms: {reload_interval_ms} is below 50 (0 turns reloading off)"
            );
        }
        Ok(())
    }
}

impl ClientAuth {
    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for ClientAuth {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "none" => Ok(Self::None),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            _ => Err(format!(
                "tls.client_auth: {value:?} is not one of none, optional, required"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_client_auth_is_named() {
        let err = serde_json::from_str::<TlsSettings>(r#"{"client_auth": "sometimes"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.client_auth"), "{err}");
    }
}
