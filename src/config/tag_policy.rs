//! `[tag_policy]`: declarative rules on the tags an object may carry. Each rule is scoped by
//! bucket, key prefix and optionally principal; every rule that applies to a write must hold.
//! The rules are evaluated by `rpc::tag_policy` on every call that sets tags.

use std::{collections::BTreeMap, fmt};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::model::{BucketName, TagSet};

/// `[tag_policy]`: the rules (none = every valid tag set is accepted).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TagPolicySettings {
    /// `[[tag_policy.rules]]`, in the order the errors name them.
    pub rules: Vec<TagRule>,
}

/// One rule (`[[tag_policy.rules]]`): where it applies and what it requires.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TagRule {
    /// Named in violations (with the rule's index); may be empty.
    pub name: String,
    /// Bucket names, or `*` for every bucket. Required: a rule names where it applies.
    pub buckets: Vec<String>,
    /// Key prefixes; empty = every key.
    pub prefixes: Vec<String>,
    /// Principals the rule applies to (`*` = every authenticated caller); empty = every
    /// caller, authenticated or not.
    pub principals: Vec<String>,
    /// Tags every object in scope must carry.
    pub required_keys: Vec<String>,
    /// The only tag keys allowed; empty = any key.
    pub allowed_keys: Vec<String>,
    /// Per tag key, the values allowed: an exact value, a prefix wildcard (`team-*`), or a
    /// regular expression after `~` (`~^v[0-9]+$`). A tag not listed here may have any value.
    pub allowed_values: BTreeMap<String, Vec<ValuePattern>>,
    /// The case every tag key must be in.
    pub key_case: Case,
    /// The case every tag value must be in.
    pub value_case: Case,
    /// At most this many tags (OSS allows 10).
    pub max_tags: Option<usize>,
}

/// A letter case a rule can require (`any`, `lower`, `upper`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub enum Case {
    /// No rule.
    #[default]
    Any,
    /// No upper-case letter.
    Lower,
    /// No lower-case letter.
    Upper,
}

impl Case {
    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Lower => "lower",
            Self::Upper => "upper",
        }
    }

    /// True when `text` is in this case (letters without case, digits and symbols always are).
    pub fn holds(self, text: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Lower => !text.chars().any(char::is_uppercase),
            Self::Upper => !text.chars().any(char::is_lowercase),
        }
    }
}

impl TryFrom<String> for Case {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "any" => Ok(Self::Any),
            "lower" => Ok(Self::Lower),
            "upper" => Ok(Self::Upper),
            _ => Err(format!(
                "tag_policy.rules: case {value:?} is not one of any, lower, upper"
            )),
        }
    }
}

impl From<Case> for String {
    fn from(case: Case) -> Self {
        case.as_str().to_owned()
    }
}

/// One allowed value of a tag: written `value`, `prefix*` or `~regex`. `*` and `~` are not
/// tag characters, so neither form can be mistaken for a literal value.
#[derive(Clone, Debug)]
pub enum ValuePattern {
    /// Exactly this value.
    Exact(String),
    /// Any value starting with this (written with a trailing `*`).
    Prefix(String),
    /// Any value the whole of which matches this expression (written after `~`; anchored).
    Regex(regex::Regex),
}

impl ValuePattern {
    /// True when `value` is allowed by this pattern.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(exact) => value == exact,
            Self::Prefix(prefix) => value.starts_with(prefix.as_str()),
            Self::Regex(regex) => regex.is_match(value),
        }
    }
}

impl TryFrom<String> for ValuePattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if let Some(pattern) = text.strip_prefix('~') {
            let invalid = |err: regex::Error| {
                format!("tag_policy.rules: allowed value {text:?} is not a valid regex: {err}")
            };
            // Checked as written first, so an error quotes the caller's pattern.
            regex::Regex::new(pattern).map_err(invalid)?;
            // Anchored: the whole value must match, as "allowed values" reads.
            return regex::Regex::new(&format!("^(?:{pattern})$"))
                .map(Self::Regex)
                .map_err(invalid);
        }
        if let Some(prefix) = text.strip_suffix('*') {
            if prefix.contains('*') {
                return Err(format!(
                    "tag_policy.rules: allowed value {text:?} may hold one '*', at its end"
                ));
            }
            return Ok(Self::Prefix(prefix.to_owned()));
        }
        Ok(Self::Exact(text))
    }
}

impl fmt::Display for ValuePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(exact) => f.write_str(exact),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
            Self::Regex(regex) => {
                // Shown as written: without the anchors added when it was compiled.
                let source = regex.as_str();
                let inner = source
                    .strip_prefix("^(?:")
                    .and_then(|s| s.strip_suffix(")$"))
                    .unwrap_or(source);
                write!(f, "~{inner}")
            }
        }
    }
}

impl From<ValuePattern> for String {
    fn from(pattern: ValuePattern) -> Self {
        pattern.to_string()
    }
}

impl Serialize for ValuePattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ValuePattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::try_from(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl PartialEq for ValuePattern {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl TagRule {
    /// How violations and errors name the rule: `tag_policy.rules[i]`, with its name.
    pub fn label(&self, index: usize) -> String {
        if self.name.is_empty() {
            format!("tag_policy.rules[{index}]")
        } else {
            format!("tag_policy.rules[{index}] ({:?})", self.name)
        }
    }

    /// True when the rule requires anything at all.
    fn constrains(&self) -> bool {
        !self.required_keys.is_empty()
            || !self.allowed_keys.is_empty()
            || !self.allowed_values.is_empty()
            || self.key_case != Case::Any
            || self.value_case != Case::Any
            || self.max_tags.is_some()
    }

    /// Checks one rule (the `index`th), naming the first problem.
    fn validate(&self, index: usize, auth_enabled: bool) -> anyhow::Result<()> {
        let at = format!("tag_policy.rules[{index}]");
        if self.buckets.is_empty() {
            bail!("{at}.buckets: name at least one bucket or \"*\"");
        }
        for bucket in &self.buckets {
            if bucket != "*"
                && let Err(violation) = BucketName::parse(bucket)
            {
                bail!(
                    "{at}.buckets: {bucket:?} is not a bucket name: {}",
                    violation.description
                );
            }
        }
        for principal in &self.principals {
            if principal.trim().is_empty() {
                bail!("{at}.principals: a principal must not be empty");
            }
        }
        if !self.principals.is_empty() && !auth_enabled {
            bail!(
                "{at}.principals: without auth.tokens or auth.certificates no caller has a \
                 principal, so the rule would never apply"
            );
        }
        if !self.constrains() {
            bail!(
                "{at}: requires nothing; set required_keys, allowed_keys, allowed_values, \
                 key_case, value_case or max_tags"
            );
        }
        let max = TagSet::MAX_TAGS;
        if let Some(limit) = self.max_tags {
            if limit > max {
                bail!("{at}.max_tags: {limit} is above OSS's own limit of {max} tags");
            }
            if limit < self.required_keys.len() {
                bail!(
                    "{at}.max_tags: {limit} is fewer than the {} required_keys, so no tag set \
                     could satisfy the rule",
                    self.required_keys.len()
                );
            }
        }
        for (field, keys) in [
            ("required_keys", &self.required_keys),
            ("allowed_keys", &self.allowed_keys),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for key in keys {
                self.check_key(&format!("{at}.{field}"), key)?;
                if !seen.insert(key) {
                    bail!("{at}.{field}: {key:?} is listed twice");
                }
            }
        }
        for (key, patterns) in &self.allowed_values {
            let field = format!("{at}.allowed_values.{key}");
            self.check_key(&field, key)?;
            if patterns.is_empty() {
                bail!("{field}: an empty list would refuse every value; list at least one");
            }
            for pattern in patterns {
                let literal = match pattern {
                    ValuePattern::Exact(value) => value,
                    ValuePattern::Prefix(prefix) => prefix,
                    ValuePattern::Regex(_) => continue,
                };
                if let Err(violations) = TagSet::from_pairs([(key.as_str(), literal.as_str())]) {
                    let why = violations
                        .into_iter()
                        .map(|v| v.description)
                        .collect::<Vec<_>>()
                        .join("; ");
                    bail!("{field}: {pattern:?} can never be a tag value: {why}");
                }
                if matches!(pattern, ValuePattern::Exact(_)) && !self.value_case.holds(literal) {
                    bail!(
                        "{field}: {literal:?} contradicts value_case = {:?}",
                        self.value_case.as_str()
                    );
                }
            }
        }
        Ok(())
    }

    /// A key the rule names must be a valid tag key, in the rule's case, and allowed.
    fn check_key(&self, field: &str, key: &str) -> anyhow::Result<()> {
        if let Err(violations) = TagSet::from_pairs([(key, "")]) {
            let why = violations
                .into_iter()
                .map(|v| v.description)
                .collect::<Vec<_>>()
                .join("; ");
            bail!("{field}: {key:?} is not a valid tag key: {why}");
        }
        if !self.key_case.holds(key) {
            bail!(
                "{field}: {key:?} contradicts key_case = {:?}",
                self.key_case.as_str()
            );
        }
        if !self.allowed_keys.is_empty() && !self.allowed_keys.iter().any(|k| k == key) {
            bail!("{field}: {key:?} is not one of allowed_keys, so it could never be set");
        }
        Ok(())
    }
}

impl TagPolicySettings {
    /// Checks every rule, naming the first bad setting. Rules scoped by principal need caller
    /// authentication (`auth_enabled`).
    pub fn validate(&self, auth_enabled: bool) -> anyhow::Result<()> {
        let mut names = std::collections::BTreeMap::new();
        for (index, rule) in self.rules.iter().enumerate() {
            rule.validate(index, auth_enabled)?;
            if !rule.name.is_empty()
                && let Some(first) = names.insert(rule.name.as_str(), index)
            {
                bail!(
                    "tag_policy.rules[{index}].name: {:?} is already the name of \
                     tag_policy.rules[{first}]; violations must name one rule",
                    rule.name
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        Settings,
        tests::{env, write_file},
    };

    fn load(toml: &str) -> anyhow::Result<Settings> {
        let file = write_file(toml);
        Settings::load_from(Some(file.path()), env(&[]))
    }

    fn error(toml: &str) -> String {
        format!("{:#}", load(toml).unwrap_err())
    }

    const GOOD: &str = r#"
[[tag_policy.rules]]
name = "team-tags"
buckets = ["ossgate-dev"]
prefixes = ["reports/"]
required_keys = ["team"]
allowed_keys = ["team", "env", "Cost-Center"]
max_tags = 3
[tag_policy.rules.allowed_values]
team = ["storage", "web-*"]
env = ["~dev|prod"]
Cost-Center = ["cc-*"]
"#;

    #[test]
    fn rules_are_read_from_the_file_into_types() {
        let settings = load(GOOD).unwrap();
        let rule = &settings.tag_policy.rules[0];
        assert_eq!(rule.name, "team-tags");
        assert_eq!(rule.max_tags, Some(3));
        assert_eq!(rule.key_case, Case::Any);
        // Map keys keep their case.
        assert!(rule.allowed_keys.contains(&"Cost-Center".to_string()));
        assert!(rule.allowed_values.contains_key("Cost-Center"));
        let team = &rule.allowed_values["team"];
        assert!(matches!(&team[0], ValuePattern::Exact(v) if v == "storage"));
        assert!(matches!(&team[1], ValuePattern::Prefix(p) if p == "web-"));
        let env = &rule.allowed_values["env"][0];
        assert!(env.matches("dev") && env.matches("prod"));
        // Anchored: the whole value must match.
        assert!(!env.matches("prod2") && !env.matches("xdev"));
        assert_eq!(env.to_string(), "~dev|prod");
        // Shown as written in the effective settings.
        assert!(settings.redacted_json().contains("\"~dev|prod\""));
        assert!(settings.redacted_json().contains("\"web-*\""));
    }

    #[test]
    fn bad_rules_are_named_with_what_is_wrong() {
        let base = "[[tag_policy.rules]]\nbuckets = [\"ossgate-dev\"]\n";
        let cases: &[(&str, &str)] = &[
            // Bad regex.
            (
                "[tag_policy.rules.allowed_values]\nenv = [\"~(dev\"]\n",
                "is not a valid regex",
            ),
            // Requires nothing.
            ("", "tag_policy.rules[0]: requires nothing"),
            (
                "max_tags = 11\n",
                "tag_policy.rules[0].max_tags: 11 is above",
            ),
            (
                "max_tags = 1\nrequired_keys = [\"a\", \"b\"]\n",
                "tag_policy.rules[0].max_tags: 1 is fewer than the 2 required_keys",
            ),
            (
                "required_keys = [\"team\"]\nallowed_keys = [\"env\"]\n",
                "tag_policy.rules[0].required_keys: \"team\" is not one of allowed_keys",
            ),
            (
                "key_case = \"lower\"\nrequired_keys = [\"Team\"]\n",
                "contradicts key_case = \"lower\"",
            ),
            ("key_case = \"camel\"\n", "is not one of any, lower, upper"),
            (
                "value_case = \"upper\"\n[tag_policy.rules.allowed_values]\nenv = [\"dev\"]\n",
                "tag_policy.rules[0].allowed_values.env: \"dev\" contradicts value_case",
            ),
            (
                "[tag_policy.rules.allowed_values]\nenv = []\n",
                "tag_policy.rules[0].allowed_values.env: an empty list",
            ),
            (
                "[tag_policy.rules.allowed_values]\nenv = [\"a&b\"]\n",
                "can never be a tag value",
            ),
            (
                "[tag_policy.rules.allowed_values]\nenv = [\"a*b*\"]\n",
                "may hold one '*'",
            ),
            (
                "required_keys = [\"a&b\"]\n",
                "tag_policy.rules[0].required_keys: \"a&b\" is not a valid tag key",
            ),
            (
                "required_keys = [\"a\", \"a\"]\n",
                "tag_policy.rules[0].required_keys: \"a\" is listed twice",
            ),
            (
                "principals = [\"alice\"]\nmax_tags = 2\n",
                "tag_policy.rules[0].principals: without auth.tokens",
            ),
            ("bogus = 1\n", "bogus"),
        ];
        for (extra, expected) in cases {
            let message = error(&format!("{base}{extra}"));
            assert!(
                message.contains(expected),
                "{extra:?}: expected {expected:?} in {message}"
            );
        }
        let message = error("[[tag_policy.rules]]\nmax_tags = 2\n");
        assert!(
            message.contains("tag_policy.rules[0].buckets: name at least one bucket"),
            "{message}"
        );
        let message = error("[[tag_policy.rules]]\nbuckets = [\"Bad_Bucket\"]\nmax_tags = 2\n");
        assert!(
            message.contains("tag_policy.rules[0].buckets: \"Bad_Bucket\""),
            "{message}"
        );
        let twice = "[[tag_policy.rules]]\nname = \"r\"\nbuckets = [\"*\"]\nmax_tags = 2\n";
        let message = error(&format!("{twice}{twice}"));
        assert!(
            message.contains("tag_policy.rules[1].name: \"r\" is already the name"),
            "{message}"
        );
    }

    #[test]
    fn principal_rules_are_valid_with_auth() {
        let rules = TagPolicySettings {
            rules: vec![TagRule {
                buckets: vec!["*".into()],
                principals: vec!["alice".into()],
                max_tags: Some(2),
                ..Default::default()
            }],
        };
        assert!(rules.validate(true).is_ok());
        assert!(rules.validate(false).is_err());
    }

    #[test]
    fn cases_hold_for_letters_only() {
        assert!(Case::Lower.holds("team-1/é"));
        assert!(!Case::Lower.holds("Team"));
        assert!(Case::Upper.holds("TEAM-1"));
        assert!(!Case::Upper.holds("TEAm"));
        assert!(Case::Any.holds("MiXeD"));
    }
}
