//! The tag policy (`[tag_policy]`): every rule whose scope (bucket, key prefix, principal)
//! covers an object must hold for the tag set a call is about to give it. Each handler that
//! sets tags calls [`TagPolicy::check`] on the final set before anything reaches OSS; a
//! violation is INVALID_ARGUMENT whose BadRequest names the rule and what failed.

use std::sync::Arc;

use tonic::{Request, Status};

use super::{
    auth::{Access, Principal},
    status::invalid_argument,
};
use crate::{
    config::tag_policy::{TagPolicySettings, TagRule},
    model::{TagSet, Violation},
};

/// The rules, shared by every call (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct TagPolicy {
    rules: Arc<[TagRule]>,
}

impl TagPolicy {
    /// The policy of these settings (validated by `Settings::validate`).
    pub fn new(settings: &TagPolicySettings) -> Self {
        Self {
            rules: settings.rules.clone().into(),
        }
    }

    /// True when some rule applies to `bucket`/`key` written by `principal` (`None`: auth is
    /// off). A call that must read tags to check them (a copy keeping the source's tags)
    /// reads them only then.
    pub fn applies(&self, bucket: &str, key: &str, principal: Option<&Principal>) -> bool {
        self.rules
            .iter()
            .any(|rule| in_scope(rule, bucket, key, principal))
    }

    /// What is wrong with giving `bucket`/`key` the tags `tags` on behalf of `principal`:
    /// one violation per failed requirement of every rule in scope, rooted at `field` (the
    /// request's tagging field, e.g. `tagging` or `spec.tagging`).
    pub fn violations(
        &self,
        field: &str,
        bucket: &str,
        key: &str,
        principal: Option<&Principal>,
        tags: &TagSet,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            if in_scope(rule, bucket, key, principal) {
                rule_violations(rule, index, field, tags, &mut out);
            }
        }
        out
    }

    /// INVALID_ARGUMENT (BadRequest naming each rule and what failed) unless every rule in
    /// scope holds for `tags`. The one check every tag-setting path calls, on the complete
    /// set the object would get (after a patch: the merged result).
    pub fn check(
        &self,
        field: &str,
        bucket: &str,
        key: &str,
        principal: Option<&Principal>,
        tags: &TagSet,
    ) -> Result<(), Status> {
        if self.rules.is_empty() {
            return Ok(());
        }
        let violations = self.violations(field, bucket, key, principal, tags);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(invalid_argument(violations))
        }
    }
}

/// The policy as it applies to one call's caller: what the handlers that set tags are given.
#[derive(Clone, Debug, Default)]
pub struct CallPolicy {
    policy: TagPolicy,
    caller: Option<Principal>,
}

impl TagPolicy {
    /// The policy for the caller of `request` (no principal when auth is off; a call without
    /// an identity is refused before any check).
    pub fn for_request<T>(&self, request: &Request<T>) -> CallPolicy {
        CallPolicy {
            policy: self.clone(),
            caller: Access::of(request)
                .ok()
                .and_then(|access| access.caller().cloned()),
        }
    }
}

impl CallPolicy {
    /// [`TagPolicy::check`] for this caller.
    pub fn check(&self, field: &str, bucket: &str, key: &str, tags: &TagSet) -> Result<(), Status> {
        self.policy
            .check(field, bucket, key, self.caller.as_ref(), tags)
    }

    /// [`TagPolicy::applies`] for this caller.
    pub fn applies(&self, bucket: &str, key: &str) -> bool {
        self.policy.applies(bucket, key, self.caller.as_ref())
    }
}

fn in_scope(rule: &TagRule, bucket: &str, key: &str, principal: Option<&Principal>) -> bool {
    rule.buckets.iter().any(|b| b == "*" || b == bucket)
        && (rule.prefixes.is_empty() || rule.prefixes.iter().any(|p| key.starts_with(p.as_str())))
        && (rule.principals.is_empty()
            || principal.is_some_and(|p| {
                rule.principals
                    .iter()
                    .any(|name| name == "*" || name == p.as_str())
            }))
}

/// Appends what `tags` fails of `rule` (the `index`th) to `out`. Names and messages are
/// built only for a violation: a passing check allocates nothing.
fn rule_violations(
    rule: &TagRule,
    index: usize,
    field: &str,
    tags: &TagSet,
    out: &mut Vec<Violation>,
) {
    // `tags` itself when the request has no tagging field (DeleteObjectTagging).
    let root = || {
        if field.is_empty() {
            "tags".to_owned()
        } else {
            format!("{field}.tags")
        }
    };
    let mut refuse = |field: String, what: String| {
        let label = rule.label(index);
        out.push(Violation::new(field, format!("tag policy {label}: {what}")));
    };
    let tag_field = |key: &str| format!("{}[{key:?}]", root());
    if let Some(max) = rule.max_tags
        && tags.len() > max
    {
        let what = format!("{} tags; at most {max} allowed here", tags.len());
        refuse(root(), what);
    }
    for required in &rule.required_keys {
        if tags.get(required).is_none() {
            refuse(tag_field(required), format!("tag {required:?} is required"));
        }
    }
    for (key, value) in tags.iter() {
        if !rule.allowed_keys.is_empty() && !rule.allowed_keys.iter().any(|k| k == key) {
            let allowed = rule.allowed_keys.join(", ");
            refuse(
                tag_field(key),
                format!("tag key {key:?} is not allowed; allowed keys: {allowed}"),
            );
            continue;
        }
        if !rule.key_case.holds(key) {
            let case = rule.key_case.as_str();
            refuse(
                tag_field(key),
                format!("tag key {key:?} must be {case} case"),
            );
        }
        if !rule.value_case.holds(value) {
            let case = rule.value_case.as_str();
            refuse(
                tag_field(key),
                format!("value {value:?} of tag {key:?} must be {case} case"),
            );
        }
        if let Some(patterns) = rule.allowed_values.get(key)
            && !patterns.iter().any(|p| p.matches(value))
        {
            let allowed: Vec<String> = patterns.iter().map(ToString::to_string).collect();
            let allowed = allowed.join(", ");
            refuse(
                tag_field(key),
                format!("value {value:?} of tag {key:?} is not allowed; allowed values: {allowed}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tag_policy::{Case, ValuePattern};
    use tonic::Code;
    use tonic_types::StatusExt;

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    fn patterns(xs: &[&str]) -> Vec<ValuePattern> {
        xs.iter()
            .map(|s| ValuePattern::try_from(s.to_string()).unwrap())
            .collect()
    }

    fn tags(pairs: &[(&str, &str)]) -> TagSet {
        TagSet::from_pairs(pairs.iter().copied()).unwrap()
    }

    /// Rule 0 ("team") on reports/ of bucket-a: team required, from a list or web-*; env by
    /// regex; at most 3 tags; keys in lower case. Rule 1 (unnamed) for alice anywhere in any
    /// bucket: values in upper case, only team/env/owner keys.
    fn policy() -> TagPolicy {
        TagPolicy::new(&TagPolicySettings {
            rules: vec![
                TagRule {
                    name: "team".into(),
                    buckets: strings(&["bucket-a"]),
                    prefixes: strings(&["reports/"]),
                    required_keys: strings(&["team"]),
                    allowed_values: [
                        ("team".to_string(), patterns(&["storage", "web-*"])),
                        ("env".to_string(), patterns(&["~dev|prod[0-9]?"])),
                    ]
                    .into(),
                    key_case: Case::Lower,
                    max_tags: Some(3),
                    ..Default::default()
                },
                TagRule {
                    buckets: strings(&["*"]),
                    principals: strings(&["alice"]),
                    allowed_keys: strings(&["team", "env", "owner"]),
                    value_case: Case::Upper,
                    ..Default::default()
                },
            ],
        })
    }

    fn failures(
        policy: &TagPolicy,
        bucket: &str,
        key: &str,
        who: Option<&str>,
        set: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let principal = who.map(Principal::new);
        policy
            .violations("tagging", bucket, key, principal.as_ref(), &tags(set))
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect()
    }

    #[test]
    fn a_set_that_meets_every_rule_in_scope_passes() {
        let p = policy();
        for set in [
            &[("team", "storage")][..],
            &[("team", "web-frontend"), ("env", "prod2")],
            &[("team", "web-"), ("env", "dev"), ("x", "y")],
        ] {
            assert_eq!(failures(&p, "bucket-a", "reports/q1", None, set), []);
        }
        // Out of scope: another prefix, another bucket, another principal.
        assert_eq!(failures(&p, "bucket-a", "other/q1", None, &[]), []);
        assert_eq!(failures(&p, "bucket-b", "reports/q1", None, &[]), []);
        assert_eq!(
            failures(&p, "bucket-b", "k", Some("bob"), &[("Any", "thing")]),
            []
        );
        assert!(p.applies("bucket-a", "reports/x", None));
        assert!(!p.applies("bucket-b", "reports/x", None));
        assert!(p.applies("bucket-b", "reports/x", Some(&Principal::new("alice"))));
        assert!(
            TagPolicy::default()
                .check("t", "b", "k", None, &tags(&[]))
                .is_ok()
        );
    }

    #[test]
    fn each_rule_kind_is_named_when_it_fails() {
        let p = policy();
        let one = |who: Option<&str>, set: &[(&str, &str)]| {
            let got = failures(&p, "bucket-a", "reports/q1", who, set);
            assert_eq!(got.len(), 1, "{set:?}: {got:?}");
            got.into_iter().next().unwrap()
        };
        let label = "tag policy tag_policy.rules[0] (\"team\")";
        // Required key.
        assert_eq!(
            one(None, &[("env", "dev")]),
            (
                "tagging.tags[\"team\"]".into(),
                format!("{label}: tag \"team\" is required")
            )
        );
        // Value from a list or prefix wildcard.
        let (field, why) = one(None, &[("team", "ops")]);
        assert_eq!(field, "tagging.tags[\"team\"]");
        assert_eq!(
            why,
            format!(
                "{label}: value \"ops\" of tag \"team\" is not allowed; allowed values: storage, web-*"
            )
        );
        // Regex, anchored.
        let (_, why) = one(None, &[("team", "storage"), ("env", "prod22")]);
        assert!(why.contains("allowed values: ~dev|prod[0-9]?"), "{why}");
        // Case rule.
        let (field, why) = one(None, &[("team", "storage"), ("Env", "dev")]);
        assert_eq!(field, "tagging.tags[\"Env\"]");
        assert!(why.ends_with("tag key \"Env\" must be lower case"), "{why}");
        // Maximum number of tags.
        let (field, why) = one(
            None,
            &[("team", "storage"), ("a", "1"), ("b", "2"), ("c", "3")],
        );
        assert_eq!(field, "tagging.tags");
        assert!(why.ends_with("4 tags; at most 3 allowed here"), "{why}");
        // The principal-scoped rule: allowed keys and value case, named by index.
        let got = failures(
            &p,
            "bucket-z",
            "k",
            Some("alice"),
            &[("team", "OPS"), ("color", "RED"), ("owner", "bob")],
        );
        let label = "tag policy tag_policy.rules[1]:";
        assert_eq!(
            got,
            [
                (
                    "tagging.tags[\"color\"]".to_string(),
                    format!(
                        "{label} tag key \"color\" is not allowed; allowed keys: team, env, owner"
                    )
                ),
                (
                    "tagging.tags[\"owner\"]".to_string(),
                    format!("{label} value \"bob\" of tag \"owner\" must be upper case")
                ),
            ]
        );
    }

    #[test]
    fn every_rule_in_scope_must_hold() {
        let p = policy();
        // alice in bucket-a/reports/: both rules apply, and both fail.
        let got = failures(
            &p,
            "bucket-a",
            "reports/q1",
            Some("alice"),
            &[("team", "ops")],
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].1.contains("rules[0]") && got[1].1.contains("rules[1]"));
    }

    #[test]
    fn a_violation_is_invalid_argument_with_bad_request() {
        let status = policy()
            .check("spec.tagging", "bucket-a", "reports/x", None, &tags(&[]))
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details.bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "spec.tagging.tags[\"team\"]");
        assert!(
            status.message().contains("tag_policy.rules[0]"),
            "{status:?}"
        );
    }
}
