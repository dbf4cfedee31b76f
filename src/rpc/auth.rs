//! Caller authentication (bearer tokens and mTLS client certificates) and authorization (a
//! policy of principal → buckets, key prefixes and operations) for `ossgate.v1.ObjectService`.
//!
//! An [`AuthInterceptor`] runs before every ObjectService call: it turns the
//! `authorization: Bearer <token>` metadata, or else the connection's verified client
//! certificate ([`PeerIdentity`], mapped by `auth.certificates`), into a [`Principal`] and puts
//! an [`Access`] in the request extensions. Each handler then calls [`Access::check`] for every
//! bucket/key it touches before anything reaches OSS. Tokens are configured as SHA-256 hex
//! digests only. The same policy applies however the principal was established.

use std::{fmt, sync::Arc};

use super::status::echoed;
use crate::server::authn::PeerIdentity;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Code, Request, Status, metadata::MetadataMap};

/// ErrorInfo domain of auth failures.
pub const ERROR_DOMAIN: &str = "ossgate.auth";

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
            if parse_digest(&token.sha256).is_none() {
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
                if op != "*" && Operation::parse(op).is_none() {
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

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal(String);

impl Principal {
    /// A principal with this name (from a token, or later a client certificate).
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The principal's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CertificateSetting {
    /// True when `identity` holds the SAN or common name this mapping names.
    fn matches(&self, identity: &PeerIdentity) -> bool {
        let san = self.san.trim();
        let common_name = self.common_name.trim();
        if !san.is_empty() {
            identity.uris.iter().any(|uri| uri == san)
                || identity
                    .dns_names
                    .iter()
                    .any(|dns| dns.eq_ignore_ascii_case(san))
        } else {
            !common_name.is_empty() && identity.common_names.iter().any(|cn| cn == common_name)
        }
    }
}

/// What a call does to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// ReadObject, HeadObject, GetObjectTagging, GetSymlink; the source of CopyObject.
    Read,
    /// WriteObject, resumable writes, AppendObject, PutSymlink, UpdateObjectMetadata.
    Write,
    /// PutObjectTagging, DeleteObjectTagging; writes that set tags.
    Tag,
    /// The destination of CopyObject.
    Copy,
    /// DeleteObject.
    Delete,
    /// ListObjects (and FindObjects): the names and attributes of the keys under a prefix.
    List,
}

impl Operation {
    /// The policy name of the operation.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Tag => "tag",
            Self::Copy => "copy",
            Self::Delete => "delete",
            Self::List => "list",
        }
    }

    /// Parses a policy name (exact, lower case).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "read" => Self::Read,
            "write" => Self::Write,
            "tag" => Self::Tag,
            "copy" => Self::Copy,
            "delete" => Self::Delete,
            "list" => Self::List,
            _ => return None,
        })
    }
}

/// The SHA-256 of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_digest(hex_digest: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digest.trim(), &mut out).ok()?;
    Some(out)
}

/// The allow rules, compiled.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Vec<PolicyRule>,
}

impl Policy {
    /// A policy of these rules.
    pub fn new(rules: Vec<PolicyRule>) -> Self {
        Self { rules }
    }

    /// True when some rule lets `principal` do `op` on `bucket`/`key`.
    pub fn allows(&self, principal: &Principal, op: Operation, bucket: &str, key: &str) -> bool {
        self.rules.iter().any(|rule| {
            (rule.principal == "*" || rule.principal == principal.as_str())
                && rule.operations.iter().any(|o| o == "*" || o == op.as_str())
                && rule.buckets.iter().any(|b| b == "*" || b == bucket)
                && (rule.prefixes.is_empty() || rule.prefixes.iter().any(|p| key.starts_with(p)))
        })
    }
}

/// What the caller of one request may do; put in the request extensions by
/// [`AuthInterceptor`].
#[derive(Clone, Debug)]
pub struct Access {
    inner: AccessInner,
}

#[derive(Clone, Debug)]
enum AccessInner {
    /// Auth is not configured.
    Open,
    /// An authenticated principal under a policy.
    Principal(Principal, Arc<Policy>),
}

impl Access {
    /// Everything allowed (auth not configured).
    pub fn open() -> Self {
        Self {
            inner: AccessInner::Open,
        }
    }

    /// `principal` under `policy`.
    pub fn principal(principal: Principal, policy: Arc<Policy>) -> Self {
        Self {
            inner: AccessInner::Principal(principal, policy),
        }
    }

    /// The authenticated principal, if auth is configured.
    pub fn caller(&self) -> Option<&Principal> {
        match &self.inner {
            AccessInner::Open => None,
            AccessInner::Principal(p, _) => Some(p),
        }
    }

    /// The caller's access from a request's extensions. No [`Access`] (the interceptor did
    /// not run) is UNAUTHENTICATED: fail closed.
    pub fn of<T>(request: &Request<T>) -> Result<Self, Status> {
        request
            .extensions()
            .get::<Access>()
            .cloned()
            .ok_or_else(|| unauthenticated("no caller identity"))
    }

    /// True when the caller may do `op` on `bucket`/`key` ([`Self::check`] without the
    /// status), to filter what a listing returns.
    pub fn allows(&self, op: Operation, bucket: &str, key: &str) -> bool {
        match &self.inner {
            AccessInner::Open => true,
            AccessInner::Principal(principal, policy) => policy.allows(principal, op, bucket, key),
        }
    }

    /// PERMISSION_DENIED unless the caller may do `op` on `bucket`/`key`.
    pub fn check(&self, op: Operation, bucket: &str, key: &str) -> Result<(), Status> {
        match &self.inner {
            AccessInner::Open => Ok(()),
            AccessInner::Principal(principal, policy) => {
                if policy.allows(principal, op, bucket, key) {
                    Ok(())
                } else {
                    Err(denied(principal, op, bucket, key))
                }
            }
        }
    }
}

fn error_details(reason: &str, metadata: Vec<(&str, String)>) -> tonic_types::ErrorDetails {
    tonic_types::ErrorDetails::with_error_info(
        reason,
        ERROR_DOMAIN,
        metadata
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<std::collections::HashMap<_, _>>(),
    )
}

fn unauthenticated(message: &str) -> Status {
    use tonic_types::StatusExt;
    Status::with_error_details(
        Code::Unauthenticated,
        message,
        error_details("UNAUTHENTICATED", Vec::new()),
    )
}

fn denied(principal: &Principal, op: Operation, bucket: &str, key: &str) -> Status {
    use tonic_types::StatusExt;
    // Checked before validation: the names may be anything the caller sent.
    let (bucket, key) = (echoed(bucket), echoed(key));
    let metadata = vec![
        ("principal", principal.to_string()),
        ("operation", op.as_str().to_owned()),
        ("bucket", bucket.to_string()),
        ("key", key.to_string()),
    ];
    let message = format!(
        "principal \"{principal}\" may not {} {bucket}/{key}",
        op.as_str()
    );
    Status::with_error_details(
        Code::PermissionDenied,
        message,
        error_details("PERMISSION_DENIED", metadata),
    )
}

/// Validates `authorization: Bearer <token>`, or else the connection's client certificate,
/// and puts an [`Access`] in the request.
#[derive(Clone)]
pub struct AuthInterceptor {
    /// (digest, principal).
    tokens: Arc<Vec<([u8; 32], Principal)>>,
    /// Client certificate → principal, first match wins.
    certificates: Arc<Vec<CertificateSetting>>,
    policy: Arc<Policy>,
}

impl fmt::Debug for AuthInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInterceptor")
            .field("tokens", &self.tokens.len())
            .field("certificates", &self.certificates)
            .field("policy", &self.policy)
            .finish()
    }
}

impl AuthInterceptor {
    /// An interceptor for these (validated) settings.
    pub fn new(settings: &AuthSettings) -> Self {
        let tokens = settings
            .tokens
            .iter()
            .filter_map(|t| Some((parse_digest(&t.sha256)?, Principal::new(t.principal.trim()))))
            .collect();
        Self {
            tokens: Arc::new(tokens),
            certificates: Arc::new(settings.certificates.clone()),
            policy: Arc::new(Policy::new(settings.policy.clone())),
        }
    }

    /// True when callers must authenticate.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty() || !self.certificates.is_empty()
    }

    /// The caller's access from the request metadata, else from the connection's verified
    /// client certificate. A bearer token, when present, decides on its own.
    pub fn authenticate(
        &self,
        metadata: &MetadataMap,
        peer: Option<&PeerIdentity>,
    ) -> Result<Access, Status> {
        if !self.enabled() {
            return Ok(Access::open());
        }
        let Some(value) = metadata.get("authorization") else {
            return match peer {
                Some(identity) => self.certificate_principal(identity),
                None if self.certificates.is_empty() => Err(unauthenticated(
                    "missing authorization metadata (Bearer token)",
                )),
                None if self.tokens.is_empty() => Err(unauthenticated(
                    "no client certificate (connect with TLS and a client certificate)",
                )),
                None => Err(unauthenticated(
                    "no caller identity: send authorization metadata (Bearer token) or \
                     connect with a client certificate",
                )),
            };
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("authorization metadata is not \"Bearer <token>\""))?;
        let digest = hash_token(token);
        // Compare against every digest in constant time (no early exit on the match).
        let mut found = None;
        for (candidate, principal) in self.tokens.iter() {
            if bool::from(candidate.ct_eq(&digest)) {
                found = Some(principal);
            }
        }
        match found {
            Some(principal) => Ok(Access::principal(principal.clone(), self.policy.clone())),
            None => Err(unauthenticated("unknown bearer token")),
        }
    }

    fn certificate_principal(&self, identity: &PeerIdentity) -> Result<Access, Status> {
        self.certificates
            .iter()
            .find(|mapping| mapping.matches(identity))
            .map(|mapping| {
                Access::principal(
                    Principal::new(mapping.principal.trim()),
                    self.policy.clone(),
                )
            })
            .ok_or_else(|| {
                unauthenticated(&format!(
                    "the client certificate ({}) maps to no principal in auth.certificates",
                    identity.describe()
                ))
            })
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let peer = request
            .extensions()
            .get::<crate::server::tls::ConnInfo>()
            .and_then(|info| info.peer.clone());
        let access = self.authenticate(request.metadata(), peer.as_deref())?;
        request.extensions_mut().insert(access);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn rule(principal: &str, buckets: &[&str], prefixes: &[&str], ops: &[&str]) -> PolicyRule {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            principal: principal.into(),
            buckets: v(buckets),
            prefixes: v(prefixes),
            operations: v(ops),
        }
    }

    fn settings() -> AuthSettings {
        AuthSettings {
            tokens: vec![TokenSetting {
                principal: "alice".into(),
                sha256: hex::encode(hash_token("alice-token")),
            }],
            certificates: vec![
                CertificateSetting {
                    principal: "ingest".into(),
                    san: "spiffe://example.org/ns/ingest/sa/writer".into(),
                    common_name: String::new(),
                },
                CertificateSetting {
                    principal: "alice".into(),
                    san: String::new(),
                    common_name: "alice.example.org".into(),
                },
                CertificateSetting {
                    principal: "web".into(),
                    san: "Web.Example.Org".into(),
                    common_name: String::new(),
                },
            ],
            policy: vec![
                rule("alice", &["logs-bucket"], &["logs/"], &["read", "tag"]),
                rule("alice", &["*"], &["public/"], &["read"]),
                rule("admin", &["*"], &[], &["*"]),
            ],
        }
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            hex::encode(hash_token("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn policy_matches_bucket_prefix_and_operation() {
        let policy = Policy::new(settings().policy);
        let alice = Principal::new("alice");
        assert!(policy.allows(&alice, Operation::Tag, "logs-bucket", "logs/a"));
        assert!(policy.allows(&alice, Operation::Read, "logs-bucket", "logs/a"));
        assert!(!policy.allows(&alice, Operation::Write, "logs-bucket", "logs/a"));
        assert!(!policy.allows(&alice, Operation::Tag, "logs-bucket", "other/a"));
        assert!(!policy.allows(&alice, Operation::Tag, "other-bucket", "logs/a"));
        assert!(policy.allows(&alice, Operation::Read, "any-bucket", "public/x"));
        assert!(!policy.allows(&alice, Operation::Delete, "any-bucket", "public/x"));
        let admin = Principal::new("admin");
        assert!(policy.allows(&admin, Operation::Delete, "b", "k"));
        assert!(!policy.allows(&Principal::new("bob"), Operation::Read, "b", "public/x"));
    }

    #[test]
    fn list_is_its_own_operation_on_a_prefix() {
        let policy = Policy::new(vec![rule("alice", &["b"], &["team-a/"], &["list"])]);
        let alice = Principal::new("alice");
        assert_eq!(Operation::parse("list"), Some(Operation::List));
        assert!(policy.allows(&alice, Operation::List, "b", "team-a/"));
        assert!(policy.allows(&alice, Operation::List, "b", "team-a/x/"));
        // The bucket root and a shorter prefix hold keys outside team-a/.
        assert!(!policy.allows(&alice, Operation::List, "b", ""));
        assert!(!policy.allows(&alice, Operation::List, "b", "team-"));
        assert!(!policy.allows(&alice, Operation::Read, "b", "team-a/x"));
        let access = Access::principal(alice, Arc::new(policy));
        assert!(access.allows(Operation::List, "b", "team-a/k"));
        assert!(!access.allows(Operation::List, "b", "team-b/k"));
        assert!(Access::open().allows(Operation::List, "b", ""));
    }

    fn request(auth: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = auth {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn interceptor_authenticates_bearer_tokens() {
        let mut interceptor = AuthInterceptor::new(&settings());
        let ok = interceptor
            .call(request(Some("Bearer alice-token")))
            .unwrap();
        let access = Access::of(&ok).unwrap();
        assert_eq!(access.caller(), Some(&Principal::new("alice")));
        assert!(
            access
                .check(Operation::Tag, "logs-bucket", "logs/x")
                .is_ok()
        );
        let denied = access
            .check(Operation::Delete, "logs-bucket", "logs/x")
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert!(
            denied
                .message()
                .starts_with("principal \"alice\" may not delete"),
            "{denied:?}"
        );
        use tonic_types::StatusExt;
        let info = denied.get_details_error_info().unwrap();
        assert_eq!(info.reason, "PERMISSION_DENIED");
        assert_eq!(info.metadata["operation"], "delete");
        for bad in [
            None,
            Some("Bearer wrong"),
            Some("Basic alice-token"),
            Some("Bearer "),
        ] {
            let status = interceptor.call(request(bad)).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{bad:?}");
            assert!(!status.message().contains("alice-token"));
        }
        // No interceptor ran: fail closed.
        assert_eq!(
            Access::of(&request(None)).unwrap_err().code(),
            Code::Unauthenticated
        );
    }

    #[test]
    fn without_tokens_everything_is_open() {
        let mut interceptor = AuthInterceptor::new(&AuthSettings::default());
        let access = Access::of(&interceptor.call(request(None)).unwrap()).unwrap();
        assert!(access.caller().is_none());
        assert!(access.check(Operation::Delete, "b", "k").is_ok());
    }

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

    #[test]
    fn client_certificates_map_to_principals() {
        let interceptor = AuthInterceptor::new(&settings());
        let metadata = MetadataMap::new();
        let caller = |identity: &PeerIdentity| {
            interceptor
                .authenticate(&metadata, Some(identity))
                .map(|access| access.caller().cloned())
        };
        let spiffe = PeerIdentity {
            common_names: vec!["alice.example.org".into()],
            uris: vec!["spiffe://example.org/ns/ingest/sa/writer".into()],
            ..PeerIdentity::default()
        };
        // The first matching mapping wins.
        assert_eq!(caller(&spiffe).unwrap(), Some(Principal::new("ingest")));
        let cn = PeerIdentity {
            common_names: vec!["alice.example.org".into()],
            ..PeerIdentity::default()
        };
        assert_eq!(caller(&cn).unwrap(), Some(Principal::new("alice")));
        let dns = PeerIdentity {
            dns_names: vec!["web.example.org".into()],
            ..PeerIdentity::default()
        };
        assert_eq!(caller(&dns).unwrap(), Some(Principal::new("web")));
        // URIs and CNs are exact; a URI prefix or a DNS name equal to a CN is no match.
        for unknown in [
            PeerIdentity {
                uris: vec!["spiffe://example.org/ns/ingest/sa/writer/x".into()],
                ..PeerIdentity::default()
            },
            PeerIdentity {
                common_names: vec!["Alice.example.org".into()],
                ..PeerIdentity::default()
            },
            PeerIdentity {
                dns_names: vec!["alice.example.org".into()],
                ..PeerIdentity::default()
            },
            PeerIdentity::default(),
        ] {
            let status = caller(&unknown).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{unknown:?}");
            assert!(status.message().contains("auth.certificates"), "{status:?}");
        }
        // The certificate principal is under the same policy.
        let access = interceptor.authenticate(&metadata, Some(&cn)).unwrap();
        assert!(
            access
                .check(Operation::Tag, "logs-bucket", "logs/x")
                .is_ok()
        );
        assert_eq!(
            access
                .check(Operation::Write, "logs-bucket", "logs/x")
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
        // A bearer token decides on its own, even next to a certificate.
        let mut with_token = MetadataMap::new();
        with_token.insert("authorization", "Bearer wrong".parse().unwrap());
        assert_eq!(
            interceptor
                .authenticate(&with_token, Some(&spiffe))
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        // Neither: UNAUTHENTICATED, naming both ways in.
        let status = interceptor.authenticate(&metadata, None).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(
            status.message().contains("client certificate"),
            "{status:?}"
        );
    }
}
