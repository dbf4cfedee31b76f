//! `[oss]`: the endpoint, signing, credentials (static keys, RRSA, the ECS RAM role) and the
//! client's timeouts and retries, and the plain option types of `oss` they turn into.

use std::{fmt, path::PathBuf, time::Duration};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::{Settings, redacted};
use crate::oss::{credentials::Credentials, sign::SignatureVersion};

/// `[oss]`: the OSS endpoint, signing and credentials.
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OssSettings {
    /// OSS endpoint URL such as `https://oss-cn-hangzhou.aliyuncs.com`; empty starts the
    /// embedded emulator.
    pub endpoint: String,
    /// Region ID for V4 signing (`cn-hangzhou`); empty derives it from the endpoint.
    pub region: String,
    /// `v4` (default) or `v1`.
    #[serde(
        deserialize_with = "super::text::signature_version",
        serialize_with = "super::text::as_text"
    )]
    pub signature_version: SignatureVersion,
    /// `auto` (path style for IP and localhost endpoints, virtual host otherwise),
    /// `virtual_host` or `path`.
    #[serde(
        deserialize_with = "super::text::addressing",
        serialize_with = "super::text::as_text"
    )]
    pub addressing: crate::oss::Addressing,
    /// AccessKey ID.
    pub access_key_id: String,
    /// AccessKey secret.
    pub access_key_secret: String,
    /// STS security token, for temporary credentials.
    pub security_token: String,
    /// TCP connect timeout to OSS.
    #[serde(with = "super::text::millis")]
    pub connect_timeout_ms: Duration,
    // --- Resilience: read timeout, retries and the retry budget (see `crate::oss::retry`).
    /// How long to wait for OSS to start answering a sent request, then for each read of
    /// the response body; 0 = no limit.
    #[serde(with = "super::text::millis")]
    pub read_timeout_ms: Duration,
    /// Attempts per idempotent OSS request, the first included (1 = no retries).
    pub retry_max_attempts: u32,
    /// Backoff ceiling before the first retry (×4 per further retry), jittered.
    #[serde(with = "super::text::millis")]
    pub retry_base_delay_ms: Duration,
    /// Largest backoff between two attempts.
    #[serde(with = "super::text::millis")]
    pub retry_max_delay_ms: Duration,
    /// Retry budget: tokens each OSS request earns (retries may be this share of requests).
    pub retry_budget_ratio: f64,
    /// Retry budget: tokens regained per second regardless of traffic.
    pub retry_budget_min_per_sec: f64,
    /// Retry budget: most tokens held (and held at start), i.e. the largest retry burst.
    pub retry_budget_burst: u32,
    /// RRSA: the RAM role to assume with the OIDC token (`acs:ram::<account>:role/<name>`).
    pub role_arn: String,
    /// RRSA: the OIDC identity provider (`acs:ram::<account>:oidc-provider/<name>`).
    pub oidc_provider_arn: String,
    /// RRSA: the projected service-account token file (read again at every refresh).
    pub oidc_token_file: String,
    /// RRSA: the STS endpoint; empty derives `https://sts.<region>.aliyuncs.com` from the
    /// region (`https://sts.aliyuncs.com` when there is none).
    pub sts_endpoint: String,
    /// RRSA: the RoleSessionName STS records (2 to 64 letters, digits or `. @ - _`).
    pub role_session_name: String,
    /// RRSA: requested lifetime of the STS credentials, 900..=43200 seconds; they are
    /// refreshed well before they expire.
    #[serde(with = "super::text::secs")]
    pub credentials_duration_secs: Duration,
    // --- ECS RAM role (instance metadata service); used only without static keys and RRSA.
    /// ECS RAM role: the role attached to the ECS instance, `auto` to ask the metadata
    /// service which one, or empty (off).
    pub ecs_ram_role: String,
    /// ECS RAM role: the instance metadata service (`http://100.100.100.200`).
    pub ecs_metadata_endpoint: String,
    /// ECS RAM role: never read the metadata service without a session token (for
    /// instances in hardened metadata mode); by default a failed token request falls back
    /// to a plain read, as the Alibaba Cloud SDKs do.
    pub ecs_disable_imdsv1: bool,
}

impl Default for OssSettings {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            region: String::new(),
            signature_version: SignatureVersion::V4,
            addressing: crate::oss::Addressing::Auto,
            access_key_id: String::new(),
            access_key_secret: String::new(),
            security_token: String::new(),
            connect_timeout_ms: Duration::from_millis(5_000),
            read_timeout_ms: Duration::from_millis(120_000),
            retry_max_attempts: 3,
            retry_base_delay_ms: Duration::from_millis(100),
            retry_max_delay_ms: Duration::from_millis(5_000),
            retry_budget_ratio: 0.1,
            retry_budget_min_per_sec: 10.0,
            retry_budget_burst: 100,
            role_arn: String::new(),
            oidc_provider_arn: String::new(),
            oidc_token_file: String::new(),
            sts_endpoint: String::new(),
            role_session_name: "ossgate".into(),
            credentials_duration_secs: Duration::from_secs(3600),
            ecs_ram_role: String::new(),
            ecs_metadata_endpoint: crate::oss::credentials::ecs::DEFAULT_ENDPOINT.into(),
            ecs_disable_imdsv1: false,
        }
    }
}

// Secrets never reach Debug output (and so never reach logs).
impl fmt::Debug for OssSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OssSettings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("signature_version", &self.signature_version)
            .field("addressing", &self.addressing)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &redacted(&self.access_key_secret))
            .field("security_token", &redacted(&self.security_token))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("read_timeout_ms", &self.read_timeout_ms)
            .field("retry_max_attempts", &self.retry_max_attempts)
            .field("retry_base_delay_ms", &self.retry_base_delay_ms)
            .field("retry_max_delay_ms", &self.retry_max_delay_ms)
            .field("retry_budget_ratio", &self.retry_budget_ratio)
            .field("retry_budget_min_per_sec", &self.retry_budget_min_per_sec)
            .field("retry_budget_burst", &self.retry_budget_burst)
            .field("role_arn", &self.role_arn)
            .field("oidc_provider_arn", &self.oidc_provider_arn)
            .field("oidc_token_file", &self.oidc_token_file)
            .field("sts_endpoint", &self.sts_endpoint)
            .field("role_session_name", &self.role_session_name)
            .field("credentials_duration_secs", &self.credentials_duration_secs)
            .field("ecs_ram_role", &self.ecs_ram_role)
            .field("ecs_metadata_endpoint", &self.ecs_metadata_endpoint)
            .field("ecs_disable_imdsv1", &self.ecs_disable_imdsv1)
            .finish()
    }
}

/// The RRSA settings and their environment variables.
const RRSA_SETTINGS: [(&str, &str); 3] = [
    ("oss.role_arn", "ALIBABA_CLOUD_ROLE_ARN"),
    ("oss.oidc_provider_arn", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
    ("oss.oidc_token_file", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"),
];

impl Settings {
    /// The `[oss]` settings: endpoint, signing, credentials (static, RRSA, ECS role), retries.
    pub(super) fn validate_oss(&self) -> anyhow::Result<()> {
        if !self.oss.endpoint.is_empty() {
            let url = reqwest::Url::parse(&self.oss.endpoint).map_err(|err| {
                anyhow::anyhow!("oss.endpoint: {:?} is not a URL: {err}", self.oss.endpoint)
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                bail!(
                    "oss.endpoint: {:?} must be an http:// or https:// URL with a host",
                    self.oss.endpoint
                );
            }
            let static_keys =
                !self.oss.access_key_id.is_empty() && !self.oss.access_key_secret.is_empty();
            let rrsa = self.rrsa_values();
            let missing: Vec<String> = RRSA_SETTINGS
                .iter()
                .zip(rrsa)
                .filter(|(_, value)| value.trim().is_empty())
                .map(|((setting, env), _)| format!("{setting} ({env})"))
                .collect();
            let ecs = !self.oss.ecs_ram_role.trim().is_empty();
            if !static_keys && !ecs && missing.len() == RRSA_SETTINGS.len() {
                bail!(
                    "oss.endpoint is set but no credentials are: set oss.access_key_id and \
                     oss.access_key_secret (or OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET), or \
                     RRSA with oss.role_arn, oss.oidc_provider_arn and oss.oidc_token_file (or \
                     ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and \
                     ALIBABA_CLOUD_OIDC_TOKEN_FILE), or an ECS RAM role with oss.ecs_ram_role \
                     (ALIBABA_CLOUD_ECS_METADATA; `auto` asks the instance metadata service)"
                );
            }
            // Some RRSA values but not all: a mistake, even with an ECS role configured.
            if !static_keys && !missing.is_empty() && missing.len() < RRSA_SETTINGS.len() {
                bail!(
                    "RRSA credentials are incomplete: missing {}",
                    missing.join(", ")
                );
            }
        }
        if !self.oss.sts_endpoint.is_empty() {
            let url = reqwest::Url::parse(&self.oss.sts_endpoint).map_err(|err| {
                anyhow::anyhow!(
                    "oss.sts_endpoint: {:?} is not a URL: {err}",
                    self.oss.sts_endpoint
                )
            })?;
            if !matches!(url.scheme(), "http" | "https")
                || url.host_str().is_none()
                || url.query().is_some()
            {
                bail!(
                    "oss.sts_endpoint: {:?} must be an http:// or https:// URL with a host",
                    self.oss.sts_endpoint
                );
            }
        }
        self.validate_ecs()?;
        let session = &self.oss.role_session_name;
        if !(2..=64).contains(&session.len())
            || !session
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'))
        {
            bail!("oss.role_session_name: {session:?} must be 2 to 64 letters, digits or . @ - _");
        }
        if !crate::oss::credentials::sts::DURATION_RANGE
            .contains(&self.oss.credentials_duration_secs.as_secs())
        {
            bail!(
                "oss.credentials_duration_secs: {} is outside STS's 900..=43200 seconds",
                self.oss.credentials_duration_secs.as_secs()
            );
        }
        if self.oss.access_key_id.is_empty() != self.oss.access_key_secret.is_empty() {
            bail!("oss.access_key_id and oss.access_key_secret must be set together");
        }
        if self.oss.connect_timeout_ms.is_zero() {
            bail!("oss.connect_timeout_ms must be greater than 0");
        }
        self.validate_retry()?;
        Ok(())
    }

    /// The configured credentials, if any.
    pub fn credentials(&self) -> Option<Credentials> {
        (!self.oss.access_key_id.is_empty()).then(|| Credentials {
            access_key_id: self.oss.access_key_id.clone(),
            access_key_secret: self.oss.access_key_secret.clone(),
            security_token: (!self.oss.security_token.is_empty())
                .then(|| self.oss.security_token.clone()),
        })
    }

    /// The `[oss]` read timeout and retry settings.
    fn validate_retry(&self) -> anyhow::Result<()> {
        let oss = &self.oss;
        if !(1..=10).contains(&oss.retry_max_attempts) {
            bail!(
                "oss.retry_max_attempts: {} is outside 1..=10",
                oss.retry_max_attempts
            );
        }
        let (base_delay_ms, max_delay_ms) = (
            oss.retry_base_delay_ms.as_millis(),
            oss.retry_max_delay_ms.as_millis(),
        );
        if !(1..=60_000).contains(&base_delay_ms) {
            bail!("oss.retry_base_delay_ms: {base_delay_ms} is outside 1..=60000");
        }
        if !(base_delay_ms..=600_000).contains(&max_delay_ms) {
            bail!(
                "oss.retry_max_delay_ms: {max_delay_ms} is outside oss.retry_base_delay_ms ({base_delay_ms})..=600000"
            );
        }
        if !(0.0..=1.0).contains(&oss.retry_budget_ratio) {
            bail!(
                "oss.retry_budget_ratio: {} is outside 0..=1",
                oss.retry_budget_ratio
            );
        }
        if !(0.0..=100_000.0).contains(&oss.retry_budget_min_per_sec) {
            bail!(
                "oss.retry_budget_min_per_sec: {} is outside 0..=100000",
                oss.retry_budget_min_per_sec
            );
        }
        if oss.retry_budget_burst > 1_000_000 {
            bail!(
                "oss.retry_budget_burst: {} is outside 0..=1000000",
                oss.retry_budget_burst
            );
        }
        Ok(())
    }

    /// The OSS client's read timeout and retry policy from `[oss]`.
    pub fn oss_client_options(&self) -> crate::oss::ClientOptions {
        let oss = &self.oss;
        crate::oss::ClientOptions {
            read_timeout: (!oss.read_timeout_ms.is_zero()).then_some(oss.read_timeout_ms),
            retry: crate::oss::retry::RetryConfig {
                max_attempts: oss.retry_max_attempts,
                base_delay: oss.retry_base_delay_ms,
                max_delay: oss.retry_max_delay_ms,
                budget_ratio: oss.retry_budget_ratio,
                budget_min_per_sec: oss.retry_budget_min_per_sec,
                budget_burst: oss.retry_budget_burst,
            },
        }
    }

    fn rrsa_values(&self) -> [&str; 3] {
        [
            &self.oss.role_arn,
            &self.oss.oidc_provider_arn,
            &self.oss.oidc_token_file,
        ]
    }

    /// The RRSA (STS AssumeRoleWithOIDC) configuration when all three RRSA values are set.
    /// The STS endpoint is `oss.sts_endpoint`, else derived from `oss.region` or the OSS
    /// endpoint's region, else the central `https://sts.aliyuncs.com`.
    pub fn rrsa(&self) -> Option<crate::oss::credentials::sts::OidcRoleConfig> {
        use crate::oss::{credentials::sts, endpoint};
        if self.rrsa_values().iter().any(|v| v.trim().is_empty()) {
            return None;
        }
        let endpoint = if self.oss.sts_endpoint.is_empty() {
            let region = match endpoint::normalize_region(&self.oss.region) {
                r if !r.is_empty() => Some(r),
                _ => reqwest::Url::parse(&self.oss.endpoint)
                    .ok()
                    .and_then(|url| url.host_str().and_then(endpoint::derive_region)),
            };
            sts::default_endpoint(region.as_deref())
        } else {
            self.oss.sts_endpoint.clone()
        };
        Some(sts::OidcRoleConfig {
            endpoint,
            role_arn: self.oss.role_arn.trim().to_owned(),
            oidc_provider_arn: self.oss.oidc_provider_arn.trim().to_owned(),
            oidc_token_file: PathBuf::from(&self.oss.oidc_token_file),
            role_session_name: self.oss.role_session_name.clone(),
            duration: self.oss.credentials_duration_secs,
            connect_timeout: self.oss.connect_timeout_ms,
            request_timeout: Duration::from_secs(10),
        })
    }

    /// The ECS RAM role settings.
    fn validate_ecs(&self) -> anyhow::Result<()> {
        use crate::oss::credentials::ecs;
        let role = self.oss.ecs_ram_role.trim();
        if !role.is_empty() && role != ecs::AUTO && !ecs::valid_role_name(role) {
            bail!(
                "oss.ecs_ram_role: {role:?} must be a RAM role name (1 to 64 letters, digits, \
                 `.`, `-` or `_`) or `auto`"
            );
        }
        ecs::check_endpoint(&self.oss.ecs_metadata_endpoint)
            .map_err(|message| anyhow::anyhow!("oss.ecs_metadata_endpoint: {message}"))?;
        Ok(())
    }

    /// The ECS RAM role configuration when `oss.ecs_ram_role` is set (`None` = the role is
    /// discovered from the metadata service).
    pub fn ecs_role(&self) -> Option<crate::oss::credentials::ecs::EcsRoleConfig> {
        use crate::oss::credentials::ecs;
        let role = self.oss.ecs_ram_role.trim();
        if role.is_empty() {
            return None;
        }
        Some(ecs::EcsRoleConfig {
            endpoint: self.oss.ecs_metadata_endpoint.trim().to_owned(),
            role: (role != ecs::AUTO).then(|| role.to_owned()),
            disable_imdsv1: self.oss.ecs_disable_imdsv1,
            connect_timeout: self.oss.connect_timeout_ms,
            request_timeout: Duration::from_secs(10),
        })
    }

    /// True when no endpoint is configured and the embedded emulator serves as OSS.
    pub fn uses_embedded_emulator(&self) -> bool {
        self.oss.endpoint.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;

    #[test]
    fn ossgate_variables_win_over_standard_credential_variables() {
        let settings = Settings::load_from(
            None,
            env(&[
                ("OSS_ACCESS_KEY_ID", "standard"),
                ("OSS_ACCESS_KEY_SECRET", "standard-secret"),
                ("OSSGATE_OSS__ACCESS_KEY_ID", "specific"),
                ("OSS_SESSION_TOKEN", "token"),
            ]),
        )
        .unwrap();
        let creds = settings.credentials().unwrap();
        assert_eq!(creds.access_key_id, "specific");
        assert_eq!(creds.access_key_secret, "standard-secret");
        assert_eq!(creds.security_token.as_deref(), Some("token"));
    }

    #[test]
    fn rrsa_variables_configure_sts_credentials() {
        let rrsa = [
            (
                "OSSGATE_OSS__ENDPOINT",
                "https://oss-cn-beijing.aliyuncs.com",
            ),
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"),
            (
                "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                "acs:ram::1:oidc-provider/p",
            ),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/var/run/token"),
        ];
        let settings = Settings::load_from(None, env(&rrsa)).unwrap();
        assert!(settings.credentials().is_none());
        let config = settings.rrsa().unwrap();
        assert_eq!(config.endpoint, "https://sts.cn-beijing.aliyuncs.com");
        assert_eq!(config.role_arn, "acs:ram::1:role/r");
        assert_eq!(config.oidc_token_file, PathBuf::from("/var/run/token"));
        assert_eq!(config.role_session_name, "ossgate");
        assert_eq!(config.duration, Duration::from_secs(3600));

        let mut more = rrsa.to_vec();
        more.extend([
            ("OSSGATE_OSS__STS_ENDPOINT", "http://127.0.0.1:9000"),
            ("OSSGATE_OSS__ROLE_SESSION_NAME", "pod-a"),
            ("OSSGATE_OSS__CREDENTIALS_DURATION_SECS", "900"),
            ("OSSGATE_OSS__OIDC_TOKEN_FILE", "/other/token"),
        ]);
        let config = Settings::load_from(None, env(&more))
            .unwrap()
            .rrsa()
            .unwrap();
        assert_eq!(config.endpoint, "http://127.0.0.1:9000");
        assert_eq!(config.role_session_name, "pod-a");
        assert_eq!(config.duration, Duration::from_secs(900));
        assert_eq!(config.oidc_token_file, PathBuf::from("/other/token"));

        // No region anywhere: the central endpoint.
        let central = Settings::load_from(
            None,
            env(&[
                ("OSSGATE_OSS__ENDPOINT", "http://127.0.0.1:9000"),
                ("OSSGATE_OSS__ROLE_ARN", "acs:ram::1:role/r"),
                (
                    "OSSGATE_OSS__OIDC_PROVIDER_ARN",
                    "acs:ram::1:oidc-provider/p",
                ),
                ("OSSGATE_OSS__OIDC_TOKEN_FILE", "/t"),
            ]),
        )
        .unwrap();
        assert_eq!(central.rrsa().unwrap().endpoint, "https://sts.aliyuncs.com");
    }

    #[test]
    fn missing_or_bad_rrsa_settings_are_named() {
        let endpoint = (
            "OSSGATE_OSS__ENDPOINT",
            "https://oss-cn-hangzhou.aliyuncs.com",
        );
        /// Settings given, then what the error must mention.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                &[endpoint],
                &[
                    "oss.access_key_id",
                    "OSS_ACCESS_KEY_ID",
                    "ALIBABA_CLOUD_ROLE_ARN",
                ],
            ),
            (
                &[endpoint, ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r")],
                &[
                    "oss.oidc_provider_arn (ALIBABA_CLOUD_OIDC_PROVIDER_ARN)",
                    "oss.oidc_token_file (ALIBABA_CLOUD_OIDC_TOKEN_FILE)",
                ],
            ),
            (
                &[("OSSGATE_OSS__CREDENTIALS_DURATION_SECS", "60")],
                &["oss.credentials_duration_secs"],
            ),
            (
                &[("OSSGATE_OSS__STS_ENDPOINT", "sts.aliyuncs.com")],
                &["oss.sts_endpoint"],
            ),
            (
                &[("OSSGATE_OSS__ROLE_SESSION_NAME", "a b")],
                &["oss.role_session_name"],
            ),
        ];
        for (vars, expected) in cases {
            let err = format!("{:#}", Settings::load_from(None, env(vars)).unwrap_err());
            for needle in *expected {
                assert!(err.contains(needle), "{vars:?}: {err}");
            }
        }
        // Static keys alone still suffice.
        let settings = Settings::load_from(
            None,
            env(&[
                endpoint,
                ("OSS_ACCESS_KEY_ID", "ak"),
                ("OSS_ACCESS_KEY_SECRET", "sk"),
            ]),
        )
        .unwrap();
        assert!(settings.rrsa().is_none());
    }

    #[test]
    fn retry_settings_reach_the_client_options_and_are_validated() {
        let defaults = Settings::load_from(None, env(&[]))
            .unwrap()
            .oss_client_options();
        assert_eq!(defaults.read_timeout, Some(Duration::from_secs(120)));
        assert_eq!(defaults.retry, crate::oss::retry::RetryConfig::default());
        let options = Settings::load_from(
            None,
            env(&[
                ("OSSGATE_OSS__READ_TIMEOUT_MS", "0"),
                ("OSSGATE_OSS__RETRY_MAX_ATTEMPTS", "5"),
                ("OSSGATE_OSS__RETRY_BASE_DELAY_MS", "20"),
                ("OSSGATE_OSS__RETRY_MAX_DELAY_MS", "200"),
                ("OSSGATE_OSS__RETRY_BUDGET_RATIO", "0.25"),
                ("OSSGATE_OSS__RETRY_BUDGET_MIN_PER_SEC", "0"),
                ("OSSGATE_OSS__RETRY_BUDGET_BURST", "7"),
            ]),
        )
        .unwrap()
        .oss_client_options();
        assert_eq!(options.read_timeout, None);
        assert_eq!(options.retry.max_attempts, 5);
        assert_eq!(options.retry.base_delay, Duration::from_millis(20));
        assert_eq!(options.retry.max_delay, Duration::from_millis(200));
        assert_eq!(options.retry.budget_ratio, 0.25);
        assert_eq!(options.retry.budget_min_per_sec, 0.0);
        assert_eq!(options.retry.budget_burst, 7);
        for (name, value, setting) in [
            (
                "OSSGATE_OSS__RETRY_MAX_ATTEMPTS",
                "0",
                "oss.retry_max_attempts",
            ),
            (
                "OSSGATE_OSS__RETRY_BASE_DELAY_MS",
                "0",
                "oss.retry_base_delay_ms",
            ),
            (
                "OSSGATE_OSS__RETRY_MAX_DELAY_MS",
                "50",
                "oss.retry_max_delay_ms",
            ),
            (
                "OSSGATE_OSS__RETRY_BUDGET_RATIO",
                "1.5",
                "oss.retry_budget_ratio",
            ),
            (
                "OSSGATE_OSS__RETRY_BUDGET_RATIO",
                "NaN",
                "oss.retry_budget_ratio",
            ),
            (
                "OSSGATE_OSS__RETRY_BUDGET_MIN_PER_SEC",
                "-1",
                "oss.retry_budget_min_per_sec",
            ),
            (
                "OSSGATE_OSS__RETRY_BUDGET_BURST",
                "2000000",
                "oss.retry_budget_burst",
            ),
            ("OSSGATE_OSS__READ_TIMEOUT_MS", "soon", "read_timeout_ms"),
        ] {
            let err = format!(
                "{:#}",
                Settings::load_from(None, env(&[(name, value)])).unwrap_err()
            );
            assert!(err.contains(setting), "{name}={value}: {err}");
        }
    }

    #[test]
    fn ecs_ram_role_settings_come_from_the_sdk_variables_and_are_checked() {
        let endpoint = (
            "OSSGATE_OSS__ENDPOINT",
            "https://oss-cn-hangzhou.aliyuncs.com",
        );
        // Off by default.
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert!(settings.ecs_role().is_none());
        assert_eq!(settings.oss.ecs_metadata_endpoint, "http://100.100.100.200");
        // The SDKs' variables alone are enough credentials for a real endpoint.
        let settings = Settings::load_from(
            None,
            env(&[
                endpoint,
                ("ALIBABA_CLOUD_ECS_METADATA", "ossgate-role"),
                ("ALIBABA_CLOUD_IMDSV1_DISABLED", "true"),
            ]),
        )
        .unwrap();
        let ecs = settings.ecs_role().unwrap();
        assert_eq!(ecs.role.as_deref(), Some("ossgate-role"));
        assert!(ecs.disable_imdsv1);
        assert_eq!(ecs.endpoint, "http://100.100.100.200");
        // `auto` discovers the role; OSSGATE_* wins over the SDK variable.
        let settings = Settings::load_from(
            None,
            env(&[
                endpoint,
                ("ALIBABA_CLOUD_ECS_METADATA", "ossgate-role"),
                ("OSSGATE_OSS__ECS_RAM_ROLE", "auto"),
                (
                    "OSSGATE_OSS__ECS_METADATA_ENDPOINT",
                    "http://127.0.0.1:8080",
                ),
            ]),
        )
        .unwrap();
        let ecs = settings.ecs_role().unwrap();
        assert_eq!(ecs.role, None);
        assert!(!ecs.disable_imdsv1);
        assert_eq!(ecs.endpoint, "http://127.0.0.1:8080");
        for (vars, setting) in [
            (
                &[("OSSGATE_OSS__ECS_RAM_ROLE", "a/b")][..],
                "oss.ecs_ram_role",
            ),
            (
                &[("OSSGATE_OSS__ECS_METADATA_ENDPOINT", "100.100.100.200")][..],
                "oss.ecs_metadata_endpoint",
            ),
            (&[endpoint][..], "oss.ecs_ram_role"),
        ] {
            let err = format!("{:#}", Settings::load_from(None, env(vars)).unwrap_err());
            assert!(err.contains(setting), "{vars:?}: {err}");
        }
    }
}
