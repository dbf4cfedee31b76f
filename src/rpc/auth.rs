//! Authorization for `ossgate.v1.ObjectService`: a policy of principal → buckets, key
//! prefixes and operations (`auth.policy`).
//!
//! The edge (`server::authn`) authenticates every ObjectService call (a bearer token, or the
//! connection's verified client certificate) and puts an [`Access`] (the [`Principal`] under
//! the [`Policy`]) in the request extensions. Each handler then calls [`Access::check`] for
//! every bucket/key it touches before anything reaches OSS. The same policy applies however
//! the principal was established.

use std::{fmt, sync::Arc};

use super::status::echoed;
use crate::config::auth::PolicyRule;
use tonic::{Code, Request, Status};

/// ErrorInfo domain of auth failures.
pub const ERROR_DOMAIN: &str = "ossgate.auth";

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
    /// FindObjects (and listings): the names and attributes of the keys under a prefix.
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

/// What the caller of one request may do; put in the request extensions by the edge
/// (`server::authn`).
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

    /// True when the caller may do `op` on `bucket`/`key` ([`Self::check`] without building
    /// a status), to filter what a find returns.
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

/// UNAUTHENTICATED with ErrorInfo (domain [`ERROR_DOMAIN`]): the answer to a caller without
/// a valid identity, whether the edge or a handler finds it.
pub fn unauthenticated(message: &str) -> Status {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<PolicyRule> {
        crate::config::auth::test_support::settings().policy
    }

    #[test]
    fn policy_matches_bucket_prefix_and_operation() {
        let policy = Policy::new(rules());
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
    fn the_settings_name_exactly_these_operations() {
        use crate::config::auth::OPERATION_NAMES;
        for op in [
            Operation::Read,
            Operation::Write,
            Operation::Tag,
            Operation::Copy,
            Operation::Delete,
            Operation::List,
        ] {
            assert!(OPERATION_NAMES.contains(&op.as_str()), "{op:?}");
        }
        for name in OPERATION_NAMES {
            assert_eq!(Operation::parse(name).map(Operation::as_str), Some(name));
        }
    }

    #[test]
    fn without_a_caller_identity_access_is_refused() {
        // The edge did not run: fail closed.
        assert_eq!(
            Access::of(&Request::new(())).unwrap_err().code(),
            Code::Unauthenticated
        );
    }
}
