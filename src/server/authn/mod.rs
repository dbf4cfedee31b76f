//! Who the caller is: the edge's authentication of ObjectService calls. A bearer token
//! (`authorization: Bearer <token>`, configured as SHA-256 hex digests only) or else the names
//! in the connection's verified client certificate (read once per connection by the TLS accept
//! loop, [`super::tls`], and mapped by `auth.certificates`) become an `rpc::auth::Principal`;
//! the [`AuthInterceptor`] puts it, under the policy, in the request extensions as an
//! `rpc::auth::Access`, which the handlers check (authorization is the RPCs').

pub mod peer;

use std::{fmt, sync::Arc};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status, metadata::MetadataMap};

pub use peer::PeerIdentity;

use crate::{
    config::auth::{AuthSettings, CertificateSetting},
    rpc::auth::{Access, Policy, Principal, unauthenticated},
};

/// True when `identity` holds the SAN or common name `mapping` names.
fn matches(mapping: &CertificateSetting, identity: &PeerIdentity) -> bool {
    let san = mapping.san.trim();
    let common_name = mapping.common_name.trim();
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

/// The SHA-256 of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
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
            .filter_map(|t| Some((t.digest()?, Principal::new(t.principal.trim()))))
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
            .find(|mapping| matches(mapping, identity))
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
            .get::<super::tls::ConnInfo>()
            .and_then(|info| info.peer.clone());
        let access = self.authenticate(request.metadata(), peer.as_deref())?;
        request.extensions_mut().insert(access);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::auth::test_support::settings;
    use crate::rpc::auth::Operation;
    use tonic::{Code, service::Interceptor};

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            hex::encode(hash_token("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
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
    }

    #[test]
    fn without_tokens_everything_is_open() {
        let mut interceptor = AuthInterceptor::new(&AuthSettings::default());
        let access = Access::of(&interceptor.call(request(None)).unwrap()).unwrap();
        assert!(access.caller().is_none());
        assert!(access.check(Operation::Delete, "b", "k").is_ok());
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
