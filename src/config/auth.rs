//! `[auth]`: callers' bearer tokens (as SHA-256 digests), client certificate → principal
//! mappings, and the allow rules of the policy. The edge authenticates with the first two
//! (`server::authn`); the RPCs authorize with the policy (`rpc::auth`).

use serde::{Deserialize, Serialize};

/// The operations a policy rule may name (besides `*`): the names of `rpc::auth::Operation`,
/// which a test there keeps in step.
pub const OPERATION_NAMES: [&str; 6] = ["read", "write", "tag", "copy", "delete", "list"];

/// `[auth]`: callers' tokens and certificates, and what each principal may do. No tokens and
/// no certificates = auth disabled.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Accepted bearer tokens, as SHA-256 digests.
    pub tokens: Vec<TokenSetting>,
    /// Client certificates (mTLS) → principals; the first matching entry wins.
    pub certificates: Vec<CertificateSetting>,
    /// Allow rules; everything not allowed is denied.
    pub policy: Vec<PolicyRule>,
}

/// One client-certificate mapping (`auth.certificates`): a verified client certificate whose
/// SAN (DNS name or URI, e.g. a SPIFFE ID) or subject common name equals the given value is
/// `principal`. Exactly one of `san` and `common_name` is set.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CertificateSetting {
    /// The principal such a certificate authenticates.
    pub principal: String,
    /// A DNS SAN (compared without regard to ASCII case) or URI SAN (compared exactly).
    pub san: String,
    /// The subject's common name (CN), compared exactly.
    pub common_name: String,
}

/// One accepted bearer token (`auth.tokens`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSetting {
    /// Who presents this token.
    pub principal: String,
    /// Lower- or upper-case hex SHA-256 of the token (`printf %s TOKEN | sha256sum`).
    pub sha256: String,
}

/// One allow rule (`auth.policy`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyRule {
    /// The principal this rule applies to (`*` = every authenticated principal).
    pub principal: String,
    /// Bucket names, or `*` for every bucket.
    pub buckets: Vec<String>,
    /// Key prefixes (`""` = every key); empty list = every key.
    pub prefixes: Vec<String>,
    /// Operations: `read`, `write`, `tag`, `copy`, `delete`, `list`, or `*`.
    pub operations: Vec<String>,
}

impl AuthSettings {
    /// True when callers must authenticate (tokens or certificate mappings configured).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty() || !self.certificates.is_empty()
    }

    /// Checks the tokens and rules, naming the first bad setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (i, token) in self.tokens.iter().enumerate() {
            if token.principal.trim().is_empty() {
                anyhow::bail!("auth.tokens[{i}].principal: must not be empty");
            }
            if token.digest().is_none() {
                anyhow::bail!(
                    "auth.tokens[{i}].sha256: must be 64 hex digits (the SHA-256 of the token, never the token itself)"
                );
            }
        }
        for (i, mapping) in self.certificates.iter().enumerate() {
            if mapping.principal.trim().is_empty() {
                anyhow::bail!("auth.certificates[{i}].principal: must not be empty");
            }
            if mapping.san.trim().is_empty() == mapping.common_name.trim().is_empty() {
                anyhow::bail!(
                    "auth.certificates[{i}]: set exactly one of san (a DNS or URI SAN) and common_name"
                );
            }
        }
        for (i, rule) in self.policy.iter().enumerate() {
            if rule.principal.trim().is_empty() {
                anyhow::bail!("auth.policy[{i}].principal: must not be empty");
            }
            if rule.buckets.is_empty() {
                anyhow::bail!("auth.policy[{i}].buckets: name at least one bucket or \"*\"");
            }
            if rule.operations.is_empty() {
                anyhow::bail!("auth.policy[{i}].operations: name at least one operation or \"*\"");
            }
            for op in &rule.operations {
                if op != "*" && !OPERATION_NAMES.contains(&op.as_str()) {
                    anyhow::bail!(
                        "auth.policy[{i}].operations: {op:?} is not one of read, write, tag, copy, delete, list, *"
                    );
                }
            }
        }
        if !self.enabled() && !self.policy.is_empty() {
            anyhow::bail!(
                "auth.policy: rules without any auth.tokens or auth.certificates would never apply"
            );
        }
        Ok(())
    }
}

impl TokenSetting {
    /// The configured digest, `None` when `sha256` is not 64 hex digits.
    pub fn digest(&self) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(self.sha256.trim(), &mut out).ok()?;
        Some(out)
    }
}

/// The `[auth]` settings the tests of authentication (`server::authn`), authorization
/// (`rpc::auth`) and these checks share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub(crate) fn rule(
        principal: &str,
        buckets: &[&str],
        prefixes: &[&str],
        ops: &[&str],
    ) -> PolicyRule {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            principal: principal.into(),
            buckets: v(buckets),
            prefixes: v(prefixes),
            operations: v(ops),
        }
    }

    fn certificate(principal: &str, san: &str, common_name: &str) -> CertificateSetting {
        CertificateSetting {
            principal: principal.into(),
            san: san.into(),
            common_name: common_name.into(),
        }
    }

    pub(crate) fn settings() -> AuthSettings {
        AuthSettings {
            tokens: vec![TokenSetting {
                principal: "alice".into(),
                // The SHA-256 of "alice-token".
                sha256: "9c220f200955d76c0a38d308225e0ef10c5f971acaf2f8d1d8f732affa5bd1dc".into(),
            }],
            certificates: vec![
                certificate("ingest", "spiffe://example.org/ns/ingest/sa/writer", ""),
                certificate("alice", "", "alice.example.org"),
                certificate("web", "Web.Example.Org", ""),
            ],
            policy: vec![
                rule("alice", &["logs-bucket"], &["logs/"], &["read", "tag"]),
                rule("alice", &["*"], &["public/"], &["read"]),
                rule("admin", &["*"], &[], &["*"]),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::settings;
    use super::*;

    #[test]
    fn bad_auth_settings_are_named() {
        let mut s = settings();
        s.tokens[0].sha256 = "alice-token".into();
        assert!(format!("{:#}", s.validate().unwrap_err()).contains("auth.tokens[0].sha256"));
        let mut s = settings();
        s.policy[1].operations = vec!["admin".into()];
        assert!(format!("{:#}", s.validate().unwrap_err()).contains("auth.policy[1].operations"));
        let mut s = settings();
        s.policy[0].buckets.clear();
        assert!(format!("{:#}", s.validate().unwrap_err()).contains("auth.policy[0].buckets"));
        let s = AuthSettings {
            tokens: Vec::new(),
            certificates: Vec::new(),
            policy: settings().policy,
        };
        assert!(format!("{:#}", s.validate().unwrap_err()).contains("auth.policy"));
        assert!(settings().validate().is_ok());
        let mut s = settings();
        s.certificates[0].common_name = "also".into();
        assert!(format!("{:#}", s.validate().unwrap_err()).contains("auth.certificates[0]"));
        let mut s = settings();
        s.certificates[1].common_name.clear();
        assert!(format!("{:#}", s.validate().unwrap_err()).contains("auth.certificates[1]"));
        let mut s = settings();
        s.certificates[2].principal = " ".into();
        assert!(
            format!("{:#}", s.validate().unwrap_err()).contains("auth.certificates[2].principal")
        );
        // Certificates alone enable auth, and make policies meaningful.
        let s = AuthSettings {
            tokens: Vec::new(),
            ..settings()
        };
        assert!(s.enabled());
        assert!(s.validate().is_ok());
    }
}
