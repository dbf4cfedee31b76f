//! Service settings: defaults < configuration file (`--config`, TOML) < environment.
//!
//! Environment variables use the `OSSGATE_` prefix and `__` for nesting
//! (`OSSGATE_OSS__ENDPOINT` is `oss.endpoint`). The standard credential variables
//! `OSS_ACCESS_KEY_ID`, `OSS_ACCESS_KEY_SECRET` and `OSS_SESSION_TOKEN` (and their
//! `ALIBABA_CLOUD_*` twins) fill the `oss.*` credentials unless an `OSSGATE_OSS__*`
//! variable sets them; so do the RRSA variables `ALIBABA_CLOUD_ROLE_ARN`,
//! `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (`oss.role_arn`,
//! `oss.oidc_provider_arn`, `oss.oidc_token_file`). Unknown settings are errors: a typo must not be ignored.

pub mod auth;
mod find;
pub mod lock;
mod oss;
mod server;
pub mod tag_policy;
mod telemetry;
mod text;
pub mod tls;
mod transfer;

pub use find::FindSettings;
pub use oss::OssSettings;
pub use server::{READ_CHUNK_BYTES, ResponseCompression, ServerSettings, check_exposure};
pub use telemetry::{LogFormat, LogSettings, MetricsSettings};
pub use text::parse_addr;
pub use transfer::{CopySettings, ListSettings, UploadSettings};

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::model::BucketName;

/// Environment variable prefix of every setting.
pub const ENV_PREFIX: &str = "OSSGATE";

/// All settings of `ossgate serve`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// gRPC listen address.
    #[serde(deserialize_with = "text::listen")]
    pub listen: SocketAddr,
    /// Where OSS is and how to talk to it.
    pub oss: OssSettings,
    /// The embedded emulator, used when `oss.endpoint` is empty.
    pub emulator: EmulatorSettings,
    /// Server behaviour.
    pub server: ServerSettings,
    /// Streamed writes (WriteObject, resumable writes).
    pub upload: UploadSettings,
    /// CopyObject.
    pub copy: CopySettings,
    /// ListObjects (`[list]`).
    pub list: ListSettings,
    /// Logging.
    pub log: LogSettings,
    /// The Prometheus metrics endpoint (`[metrics]`).
    pub metrics: MetricsSettings,
    /// Caller authentication and authorization (`[auth]`); empty = no auth.
    pub auth: auth::AuthSettings,
    /// TLS on the gRPC listener (`[tls]`); no certificate = plaintext.
    pub tls: tls::TlsSettings,
    /// The tag audit trail (`[audit]`).
    pub audit: AuditSettings,
    /// Rules on the tags objects may carry (`[tag_policy]`).
    pub tag_policy: tag_policy::TagPolicySettings,
    /// The per-object tag-write lock (`[lock]`): in process, or Redis shared by replicas.
    pub lock: lock::LockSettings,
    /// FindObjects' scan engine (`[find]`).
    pub find: FindSettings,
}

const MIB: u64 = 1024 * 1024;

/// `[emulator]`: the embedded emulator started when no endpoint is configured.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorSettings {
    /// Directory for the emulator's data; empty keeps it in memory.
    pub data_dir: String,
    /// Buckets created at start (`name` or `name:versioned`).
    pub buckets: Vec<EmulatorBucket>,
}

/// One of `emulator.buckets`: a bucket name, with `:versioned` for a versioned bucket.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "String", into = "String")]
pub struct EmulatorBucket {
    /// The bucket's name.
    pub name: BucketName,
    /// Created with versioning enabled.
    pub versioned: bool,
}

impl TryFrom<String> for EmulatorBucket {
    type Error = String;

    fn try_from(bucket: String) -> Result<Self, Self::Error> {
        let (name, versioned) = match bucket.strip_suffix(":versioned") {
            Some(name) => (name, true),
            None => (bucket.as_str(), false),
        };
        let name = BucketName::parse(name).map_err(|violation| {
            format!(
                "emulator.buckets: {bucket:?} is not a valid bucket name: {}",
                violation.description
            )
        })?;
        Ok(Self { name, versioned })
    }
}

impl From<EmulatorBucket> for String {
    fn from(bucket: EmulatorBucket) -> Self {
        bucket.to_string()
    }
}

impl std::fmt::Display for EmulatorBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name.as_str())?;
        if self.versioned {
            f.write_str(":versioned")?;
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            oss: OssSettings::default(),
            emulator: EmulatorSettings::default(),
            server: ServerSettings::default(),
            upload: UploadSettings::default(),
            copy: CopySettings::default(),
            list: ListSettings::default(),
            log: LogSettings::default(),
            metrics: MetricsSettings::default(),
            auth: Default::default(),
            tls: Default::default(),
            audit: Default::default(),
            tag_policy: Default::default(),
            lock: Default::default(),
            find: FindSettings::default(),
        }
    }
}

impl Default for EmulatorSettings {
    fn default() -> Self {
        Self {
            data_dir: String::new(),
            // A valid name (a test checks the default), so the list is never empty.
            buckets: BucketName::parse("ossgate-dev")
                .ok()
                .map(|name| EmulatorBucket {
                    name,
                    versioned: false,
                })
                .into_iter()
                .collect(),
        }
    }
}

fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() { "" } else { "<redacted>" }
}

/// Standard credential variables, in order of preference for each setting.
const CREDENTIAL_ENV: [(&str, &[&str]); 8] = [
    (
        "access_key_id",
        &["OSS_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_ID"],
    ),
    (
        "access_key_secret",
        &["OSS_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
    ),
    (
        "security_token",
        &["OSS_SESSION_TOKEN", "ALIBABA_CLOUD_SECURITY_TOKEN"],
    ),
    ("role_arn", &["ALIBABA_CLOUD_ROLE_ARN"]),
    ("oidc_provider_arn", &["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"]),
    ("oidc_token_file", &["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]),
    ("ecs_ram_role", &["ALIBABA_CLOUD_ECS_METADATA"]),
    ("ecs_disable_imdsv1", &["ALIBABA_CLOUD_IMDSV1_DISABLED"]),
];

impl Settings {
    /// Loads settings from the process environment and an optional TOML file, then validates them.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_from(file, std::env::vars().collect())
    }

    /// Loads settings from `env` (instead of the process environment) and an optional file.
    pub fn load_from(file: Option<&Path>, env: HashMap<String, String>) -> anyhow::Result<Self> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                bail!("configuration file {} does not exist", path.display());
            }
            builder = builder.add_source(
                config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
            );
        }
        // Standard credential variables sit between the file and OSSGATE_* variables.
        let standard: HashMap<String, String> = CREDENTIAL_ENV
            .iter()
            .filter_map(|(setting, names)| {
                let value = names.iter().find_map(|name| env.get(*name))?;
                Some((format!("oss__{setting}"), value.clone()))
            })
            .collect();
        builder = builder.add_source(
            config::Environment::default()
                .separator("__")
                .source(Some(standard.into_iter().collect())),
        );
        let ossgate_env: HashMap<String, String> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(&format!("{ENV_PREFIX}_")))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("emulator.buckets")
                .try_parsing(true)
                .source(Some(ossgate_env.into_iter().collect())),
        );
        let settings: Settings = builder
            .build()
            .context("reading the configuration")?
            .try_deserialize()
            .map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.auth.validate()?;
        self.tls.validate()?;
        if !self.auth.certificates.is_empty() && !self.tls.accepts_client_certificates() {
            bail!(
                "auth.certificates: client certificates need TLS with tls.client_auth = \
                 \"optional\" or \"required\" and tls.client_ca_file"
            );
        }
        self.validate_server()?;
        // Caught here too, so `check-config` refuses a config that `serve` would refuse.
        check_exposure(
            self.listen,
            self.caller_auth_configured(),
            self.server.allow_insecure_remote,
        )?;
        self.validate_oss()?;
        self.validate_transfer()?;
        self.validate_telemetry()?;
        self.tag_policy.validate(self.auth.enabled())?;
        self.validate_lock()?;
        self.validate_find()?;
        Ok(())
    }

    /// `emulator.data_dir`, if set.
    pub fn emulator_data_dir(&self) -> Option<PathBuf> {
        (!self.emulator.data_dir.is_empty()).then(|| PathBuf::from(&self.emulator.data_dir))
    }

    /// The settings as JSON with every secret replaced by `<redacted>`.
    pub fn redacted_json(&self) -> String {
        let mut shown = self.clone();
        shown.oss.access_key_secret = redacted(&self.oss.access_key_secret).into();
        shown.oss.security_token = redacted(&self.oss.security_token).into();
        shown.upload.resumable_secret = redacted(&self.upload.resumable_secret).into();
        shown.lock.redis_url = lock::redacted_redis_url(&self.lock.redis_url);
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    }
}

/// `[audit]`: the tag audit trail.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Read an object's tags (one GetObjectTagging) just before a call replaces them, so the
    /// event can say what they were. Best effort: a failed read leaves them unknown and the
    /// call goes on; a concurrent writer may change them between the read and the call.
    /// Off by default: it adds one billed OSS request and a round trip to every mutation.
    pub read_tags_before: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::sign::SignatureVersion;

    pub(super) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(super) fn write_file(contents: &str) -> tempfile::NamedTempFile {
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), contents).unwrap();
        file
    }

    #[test]
    fn defaults_serve_on_loopback_with_the_embedded_emulator() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:50051");
        assert!(settings.uses_embedded_emulator());
        assert_eq!(settings.oss.signature_version, SignatureVersion::V4);
        let buckets: Vec<String> = settings
            .emulator
            .buckets
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(buckets, vec!["ossgate-dev"]);
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let file = write_file(
            "listen = \"127.0.0.1:7000\"\n[oss]\nendpoint = \"https://oss-cn-beijing.aliyuncs.com\"\nsignature_version = \"v1\"\naccess_key_id = \"file-ak\"\naccess_key_secret = \"file-sk\"\n",
        );
        let settings = Settings::load_from(
            Some(file.path()),
            env(&[
                ("OSSGATE_OSS__SIGNATURE_VERSION", "v4"),
                ("OSSGATE_OSS__REGION", "cn-beijing"),
                ("OSS_ACCESS_KEY_SECRET", "env-sk"),
                ("OSSGATE_EMULATOR__BUCKETS", "a-bucket,b-bucket:versioned"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(settings.oss.endpoint, "https://oss-cn-beijing.aliyuncs.com");
        assert_eq!(settings.oss.signature_version.to_string(), "v4");
        assert_eq!(settings.oss.region, "cn-beijing");
        assert_eq!(settings.oss.access_key_id, "file-ak");
        assert_eq!(settings.oss.access_key_secret, "env-sk");
        let buckets: Vec<String> = settings
            .emulator
            .buckets
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(buckets, vec!["a-bucket", "b-bucket:versioned"]);
    }

    #[test]
    fn bad_settings_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("OSSGATE_LISTEN", "nowhere")], "listen"),
            (
                &[("OSSGATE_OSS__SIGNATURE_VERSION", "v3")],
                "oss.signature_version",
            ),
            (&[("OSSGATE_OSS__ADDRESSING", "sideways")], "oss.addressing"),
            (&[("OSSGATE_OSS__ENDPOINT", "not a url")], "oss.endpoint"),
            (
                &[(
                    "OSSGATE_OSS__ENDPOINT",
                    "https://oss-cn-hangzhou.aliyuncs.com",
                )],
                "oss.access_key_id",
            ),
            (&[("OSSGATE_LOG__FORMAT", "xml")], "log.format"),
            (
                &[("OSSGATE_EMULATOR__BUCKETS", "Bad_Bucket")],
                "emulator.buckets",
            ),
            (
                &[("OSSGATE_OSS__CONNECT_TIMEOUT_MS", "soon")],
                "connect_timeout_ms",
            ),
            (&[("OSSGATE_OSS__ENDPONT", "x")], "endpont"),
            (
                &[("OSSGATE_UPLOAD__PART_SIZE_BYTES", "1000")],
                "upload.part_size_bytes",
            ),
            (&[("OSSGATE_COPY__PARALLELISM", "0")], "copy.parallelism"),
            (
                &[("OSSGATE_LIST__TAG_PARALLELISM", "65")],
                "list.tag_parallelism",
            ),
            (
                &[("OSSGATE_SERVER__MAX_CONCURRENT_CALLS", "0")],
                "server.max_concurrent_calls",
            ),
            (
                &[("OSSGATE_SERVER__MAX_CONCURRENT_STREAMING_CALLS", "0")],
                "server.max_concurrent_streaming_calls",
            ),
            (
                &[("OSSGATE_SERVER__HTTP2_KEEPALIVE_TIMEOUT_SECS", "0")],
                "server.http2_keepalive_timeout_secs",
            ),
            (
                &[("OSSGATE_SERVER__MAX_CONNECTION_AGE_GRACE_SECS", "5")],
                "server.max_connection_age_grace_secs",
            ),
            (
                &[("OSSGATE_SERVER__PREFACE_TIMEOUT_MS", "0")],
                "server.preface_timeout_ms",
            ),
            (
                &[("OSSGATE_SERVER__STREAM_IDLE_TIMEOUT_MS", "50")],
                "server.stream_idle_timeout_ms",
            ),
            (
                &[("OSSGATE_SERVER__MAX_DECODING_MESSAGE_BYTES", "1024")],
                "server.max_decoding_message_bytes",
            ),
            (
                &[("OSSGATE_SERVER__MAX_ENCODING_MESSAGE_BYTES", "1048576")],
                "server.max_encoding_message_bytes",
            ),
            (&[("OSSGATE_SERVER__TCP_NODELAY", "maybe")], "tcp_nodelay"),
            (
                &[("OSSGATE_SERVER__HEALTH_LISTEN", "localhost:8081")],
                "server.health_listen",
            ),
            (
                &[("OSSGATE_SERVER__RESPONSE_COMPRESSION", "brotli")],
                "response_compression",
            ),
            (
                &[("OSSGATE_TLS__CERT_FILE", "/nonexistent/tls.crt")],
                "tls.cert_file",
            ),
            (&[("OSSGATE_TLS__CLIENT_AUTH", "always")], "tls.client_auth"),
            (&[("OSSGATE_TLS__CERT_FLIE", "x")], "cert_flie"),
            (
                &[("OSSGATE_UPLOAD__MEMORY_BUDGET_BYTES", "1048576")],
                "upload.memory_budget_bytes",
            ),
        ];
        for (vars, setting) in cases {
            let err = Settings::load_from(None, env(vars)).unwrap_err();
            let message = format!("{err:#}");
            assert!(
                message.contains(setting),
                "error for {vars:?} should name {setting}: {message}"
            );
        }
    }

    #[test]
    fn audit_reads_tags_before_only_when_asked() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert!(!settings.audit.read_tags_before);
        let on =
            Settings::load_from(None, env(&[("OSSGATE_AUDIT__READ_TAGS_BEFORE", "true")])).unwrap();
        assert!(on.audit.read_tags_before);
    }

    #[test]
    fn mtls_settings_are_checked_together_and_count_as_caller_auth() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_file = dir.path().join("tls.crt").display().to_string();
        let key_file = dir.path().join("tls.key").display().to_string();
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        let tls = [
            ("OSSGATE_LISTEN", "0.0.0.0:50051"),
            ("OSSGATE_TLS__CERT_FILE", cert_file.as_str()),
            ("OSSGATE_TLS__KEY_FILE", key_file.as_str()),
        ];
        // TLS alone is not caller auth: a remote listen is still refused.
        let err = format!("{:#}", Settings::load_from(None, env(&tls)).unwrap_err());
        assert!(err.contains("server.allow_insecure_remote"), "{err}");
        // Required client certificates are.
        let mut required = tls.to_vec();
        required.extend([
            ("OSSGATE_TLS__CLIENT_AUTH", "required"),
            ("OSSGATE_TLS__CLIENT_CA_FILE", cert_file.as_str()),
        ]);
        let settings = Settings::load_from(None, env(&required)).unwrap();
        assert!(settings.caller_auth_configured());
        assert!(!settings.auth.enabled());

        // auth.certificates without client certificates on the listener cannot apply.
        let file = write_file("[[auth.certificates]]\nprincipal = \"p\"\nsan = \"spiffe://x/y\"\n");
        let err = format!(
            "{:#}",
            Settings::load_from(Some(file.path()), env(&tls[1..])).unwrap_err()
        );
        assert!(err.contains("auth.certificates"), "{err}");
        let mut optional = tls.to_vec();
        optional.extend([
            ("OSSGATE_TLS__CLIENT_AUTH", "optional"),
            ("OSSGATE_TLS__CLIENT_CA_FILE", cert_file.as_str()),
        ]);
        let settings = Settings::load_from(Some(file.path()), env(&optional)).unwrap();
        assert!(settings.auth.enabled());
        assert!(settings.caller_auth_configured());
    }

    #[test]
    fn unknown_setting_in_file_is_rejected() {
        let file = write_file("[oss]\nendpont = \"https://oss-cn-hangzhou.aliyuncs.com\"\n");
        let err = Settings::load_from(Some(file.path()), env(&[])).unwrap_err();
        assert!(format!("{err:#}").contains("endpont"), "{err:#}");
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_json() {
        let settings = Settings::load_from(
            None,
            env(&[
                ("OSS_ACCESS_KEY_ID", "LTAIvisible"),
                ("OSS_ACCESS_KEY_SECRET", "super-secret-value"),
                ("OSS_SESSION_TOKEN", "secret-token-value"),
            ]),
        )
        .unwrap();
        for shown in [format!("{settings:?}"), settings.redacted_json()] {
            assert!(shown.contains("LTAIvisible"));
            assert!(!shown.contains("super-secret-value"), "{shown}");
            assert!(!shown.contains("secret-token-value"), "{shown}");
        }
    }
}
