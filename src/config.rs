//! Service settings: defaults < configuration file (`--config`, TOML) < environment.
//!
//! Environment variables use the `OSSGATE_` prefix and `__` for nesting
//! (`OSSGATE_OSS__ENDPOINT` is `oss.endpoint`). The standard credential variables
//! `OSS_ACCESS_KEY_ID`, `OSS_ACCESS_KEY_SECRET` and `OSS_SESSION_TOKEN` (and their
//! `ALIBABA_CLOUD_*` twins) fill the `oss.*` credentials unless an `OSSGATE_OSS__*`
//! variable sets them; so do the RRSA variables `ALIBABA_CLOUD_ROLE_ARN`,
//! `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (`oss.role_arn`,
//! `oss.oidc_provider_arn`, `oss.oidc_token_file`). Unknown settings are errors: a typo must not be ignored.

use crate::oss::protocol::limit::{MAX_PART_BYTES, MIN_PART_BYTES};
use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::{
    model::BucketName,
    oss::{credentials::Credentials, sign::SignatureVersion},
};

/// Environment variable prefix of every setting.
pub const ENV_PREFIX: &str = "OSSGATE";

/// All settings of `ossgate serve`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// gRPC listen address.
    pub listen: String,
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
    pub auth: crate::rpc::auth::AuthSettings,
    /// TLS on the gRPC listener (`[tls]`); no certificate = plaintext.
    pub tls: crate::server::tls::TlsSettings,
    /// The tag audit trail (`[audit]`).
    pub audit: AuditSettings,
}

/// `[metrics]`: the Prometheus scrape endpoint.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address serving `GET /metrics` (Prometheus text), e.g. `127.0.0.1:9464`; empty = off.
    pub listen: String,
}

/// `[upload]`: how WriteObject streams become OSS uploads.
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UploadSettings {
    /// Bytes per multipart part (grown automatically so 10,000 parts always suffice).
    /// A stream no longer than one part becomes a single PutObject.
    pub part_size_bytes: u64,
    /// Parts of one upload in flight at the same time.
    pub parallelism: usize,
    /// Bytes all uploads together may hold in memory; a stream waits for room.
    pub memory_budget_bytes: u64,
    /// Secret that protects resumable-write ids. Replicas that share it can resume each
    /// other's writes; empty makes a random one per process.
    pub resumable_secret: String,
}

/// `[copy]`: how CopyObject runs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CopySettings {
    /// Sources larger than this are copied with parallel UploadPartCopy.
    pub multipart_threshold_bytes: u64,
    /// Bytes per UploadPartCopy part (grown so 10,000 parts always suffice).
    pub part_size_bytes: u64,
    /// Parts copied at the same time.
    pub parallelism: usize,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            part_size_bytes: 8 * MIB,
            parallelism: 4,
            memory_budget_bytes: 192 * MIB,
            resumable_secret: String::new(),
        }
    }
}

impl Default for CopySettings {
    fn default() -> Self {
        Self {
            // OSS documents single CopyObject up to 1 GB when anything changes, 5 GB otherwise.
            multipart_threshold_bytes: 1024 * MIB,
            part_size_bytes: 64 * MIB,
            parallelism: 8,
        }
    }
}

impl fmt::Debug for UploadSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadSettings")
            .field("part_size_bytes", &self.part_size_bytes)
            .field("parallelism", &self.parallelism)
            .field("memory_budget_bytes", &self.memory_budget_bytes)
            .field("resumable_secret", &redacted(&self.resumable_secret))
            .finish()
    }
}

const MIB: u64 = 1024 * 1024;

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
    pub signature_version: String,
    /// `auto` (path style for IP and localhost endpoints, virtual host otherwise),
    /// `virtual_host` or `path`.
    pub addressing: String,
    /// AccessKey ID.
    pub access_key_id: String,
    /// AccessKey secret.
    pub access_key_secret: String,
    /// STS security token, for temporary credentials.
    pub security_token: String,
    /// TCP connect timeout to OSS.
    pub connect_timeout_ms: u64,
    // --- Resilience: read timeout, retries and the retry budget (see `crate::oss::retry`).
    /// How long to wait for OSS to start answering a sent request, then for each read of
    /// the response body; 0 = no limit.
    pub read_timeout_ms: u64,
    /// Attempts per idempotent OSS request, the first included (1 = no retries).
    pub retry_max_attempts: u32,
    /// Backoff ceiling before the first retry (×4 per further retry), jittered.
    pub retry_base_delay_ms: u64,
    /// Largest backoff between two attempts.
    pub retry_max_delay_ms: u64,
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
    pub credentials_duration_secs: u64,
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

/// `[emulator]`: the embedded emulator started when no endpoint is configured.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorSettings {
    /// Directory for the emulator's data; empty keeps it in memory.
    pub data_dir: String,
    /// Buckets created at start (`name` or `name:versioned`).
    pub buckets: Vec<String>,
}

/// `[server]`: gRPC server behaviour.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// How long in-flight calls may run after a shutdown signal before they are cut off.
    pub shutdown_grace_ms: u64,
    /// Serve without caller auth on a non-loopback address (only behind a trusted network).
    pub allow_insecure_remote: bool,
    /// Unary ObjectService calls served at once; past it calls fail fast with UNAVAILABLE.
    /// Default: 128 per CPU (at least 128).
    pub max_concurrent_calls: usize,
    /// Streaming ObjectService calls (WriteObject, AppendObject, ReadObject) open at once,
    /// counted apart from unary calls for their whole life. Default: 32 per CPU (at least 32).
    pub max_concurrent_streaming_calls: usize,
    /// Interval of HTTP/2 PING frames on idle and busy connections; 0 = no keepalive.
    pub http2_keepalive_interval_secs: u64,
    /// How long a keepalive PING may go unanswered before the connection is closed.
    pub http2_keepalive_timeout_secs: u64,
    /// After this long a connection gets a graceful GOAWAY (clients reconnect, e.g. to new
    /// replicas); 0 = connections live forever.
    pub max_connection_age_secs: u64,
    /// After max age, calls still running on the connection get this long before it is closed
    /// by force; 0 = wait for them.
    pub max_connection_age_grace_secs: u64,
    /// Largest gRPC message accepted (a WriteObject or AppendObject chunk plus its envelope).
    pub max_decoding_message_bytes: usize,
    /// Largest gRPC message sent (ReadObject sends 1 MiB chunks).
    pub max_encoding_message_bytes: usize,
    /// Set TCP_NODELAY on accepted connections (no Nagle delay on small responses).
    pub tcp_nodelay: bool,
    /// A second, plaintext listener that serves only `grpc.health.v1.Health` (the same
    /// statuses as `listen`), e.g. `0.0.0.0:8081`, for Kubernetes `grpc` probes, which cannot
    /// speak TLS; empty = off. It may be non-loopback without caller auth: it serves no data
    /// and no service list, only SERVING / NOT_SERVING.
    pub health_listen: String,
    /// How long a new connection may take to send the HTTP/2 preface (after TLS) before it
    /// is closed.
    pub preface_timeout_ms: u64,
    /// How long an ObjectService call may wait for its client's next message (or request
    /// body bytes) before it is ended with DEADLINE_EXCEEDED, freeing its call slot.
    pub stream_idle_timeout_ms: u64,
    /// Compression of responses: `none` (default), `gzip`, `zstd` or `deflate`, used only
    /// when the caller says it accepts it (`grpc-accept-encoding`). Compressed requests are
    /// accepted in all of them whatever this says.
    pub response_compression: ResponseCompression,
}

/// `server.response_compression`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResponseCompression {
    /// Responses go uncompressed: on loopback and in-cluster networks compression costs more
    /// CPU than it saves, and object bytes are often compressed already.
    #[default]
    None,
    Gzip,
    Zstd,
    Deflate,
}

impl ResponseCompression {
    /// The tonic encoding, `None` for no compression.
    pub fn encoding(self) -> Option<tonic::codec::CompressionEncoding> {
        use tonic::codec::CompressionEncoding;
        match self {
            Self::None => None,
            Self::Gzip => Some(CompressionEncoding::Gzip),
            Self::Zstd => Some(CompressionEncoding::Zstd),
            Self::Deflate => Some(CompressionEncoding::Deflate),
        }
    }
}

/// CPUs this process may use (cgroup quotas included), at least 1.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The address of an optional listener `setting`: `None` when `value` is empty (off), an
/// error naming the setting (with `example` after the value) when it does not parse.
fn optional_addr(setting: &str, value: &str, example: &str) -> anyhow::Result<Option<SocketAddr>> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|err| anyhow::anyhow!("{setting}: {value:?} is not an address{example}: {err}"))
}

/// True when binding both addresses would collide: the same fixed port on the same address,
/// or on any address when one of them is a wildcard (`0.0.0.0`, `::`). Port 0 never collides.
fn same_port(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Largest `data` chunk in a ReadObjectResponse: OSS's small network reads are coalesced up
/// to this, so a caller gets few, large messages. Here because the message size settings
/// must leave room for it.
pub const READ_CHUNK_BYTES: usize = 1024 * 1024;

/// Bounds of `server.max_decoding_message_bytes` / `max_encoding_message_bytes`.
const MIN_MESSAGE_BYTES: usize = 64 * 1024;
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// `[list]`: how ListObjects runs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ListSettings {
    /// GetObjectTagging requests one `include_tags` page has in flight at most.
    pub tag_parallelism: usize,
}

impl Default for ListSettings {
    fn default() -> Self {
        Self {
            tag_parallelism: 16,
        }
    }
}

/// `[log]`: logging.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `ossgate=debug,info`.
    pub level: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50051".into(),
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
        }
    }
}

impl Default for OssSettings {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            region: String::new(),
            signature_version: "v4".into(),
            addressing: "auto".into(),
            access_key_id: String::new(),
            access_key_secret: String::new(),
            security_token: String::new(),
            connect_timeout_ms: 5_000,
            read_timeout_ms: 120_000,
            retry_max_attempts: 3,
            retry_base_delay_ms: 100,
            retry_max_delay_ms: 5_000,
            retry_budget_ratio: 0.1,
            retry_budget_min_per_sec: 10.0,
            retry_budget_burst: 100,
            role_arn: String::new(),
            oidc_provider_arn: String::new(),
            oidc_token_file: String::new(),
            sts_endpoint: String::new(),
            role_session_name: "ossgate".into(),
            credentials_duration_secs: 3600,
            ecs_ram_role: String::new(),
            ecs_metadata_endpoint: crate::oss::credentials::ecs::DEFAULT_ENDPOINT.into(),
            ecs_disable_imdsv1: false,
        }
    }
}

impl Default for EmulatorSettings {
    fn default() -> Self {
        Self {
            data_dir: String::new(),
            buckets: vec!["ossgate-dev".into()],
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            shutdown_grace_ms: 10_000,
            allow_insecure_remote: false,
            max_concurrent_calls: (128 * cpus()).max(128),
            max_concurrent_streaming_calls: (32 * cpus()).max(32),
            http2_keepalive_interval_secs: 30,
            http2_keepalive_timeout_secs: 20,
            max_connection_age_secs: 0,
            max_connection_age_grace_secs: 0,
            max_decoding_message_bytes: 8 * MIB as usize,
            max_encoding_message_bytes: 8 * MIB as usize,
            tcp_nodelay: true,
            health_listen: String::new(),
            preface_timeout_ms: 10_000,
            // As nginx's client_body_timeout: generous for a slow producer, but a silent
            // client cannot hold a streaming slot forever.
            stream_idle_timeout_ms: 60_000,
            response_compression: ResponseCompression::None,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
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

/// The RRSA settings and their environment variables.
const RRSA_SETTINGS: [(&str, &str); 3] = [
    ("oss.role_arn", "ALIBABA_CLOUD_ROLE_ARN"),
    ("oss.oidc_provider_arn", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
    ("oss.oidc_token_file", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"),
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
        let listen = self.listen_addr()?;
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
            listen,
            self.caller_auth_configured(),
            self.server.allow_insecure_remote,
        )?;
        self.signature_version()?;
        self.addressing()?;
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
            .contains(&self.oss.credentials_duration_secs)
        {
            bail!(
                "oss.credentials_duration_secs: {} is outside STS's 900..=43200 seconds",
                self.oss.credentials_duration_secs
            );
        }
        if self.oss.access_key_id.is_empty() != self.oss.access_key_secret.is_empty() {
            bail!("oss.access_key_id and oss.access_key_secret must be set together");
        }
        if self.oss.connect_timeout_ms == 0 {
            bail!("oss.connect_timeout_ms must be greater than 0");
        }
        self.validate_retry()?;
        for bucket in &self.emulator.buckets {
            let name = bucket.strip_suffix(":versioned").unwrap_or(bucket);
            BucketName::parse(name).map_err(|violation| {
                anyhow::anyhow!(
                    "emulator.buckets: {bucket:?} is not a valid bucket name: {}",
                    violation.description
                )
            })?;
        }
        for (setting, part) in [
            ("upload.part_size_bytes", self.upload.part_size_bytes),
            ("copy.part_size_bytes", self.copy.part_size_bytes),
        ] {
            if !(MIN_PART_BYTES..=MAX_PART_BYTES).contains(&part) {
                bail!(
                    "{setting}: {part} is outside OSS's part sizes {MIN_PART_BYTES}..={MAX_PART_BYTES}"
                );
            }
        }
        for (setting, parallelism) in [
            ("upload.parallelism", self.upload.parallelism),
            ("copy.parallelism", self.copy.parallelism),
            ("list.tag_parallelism", self.list.tag_parallelism),
        ] {
            if !(1..=64).contains(&parallelism) {
                bail!("{setting}: {parallelism} is outside 1..=64");
            }
        }
        if self.upload.memory_budget_bytes < self.upload.part_size_bytes {
            bail!(
                "upload.memory_budget_bytes: {} is smaller than one part ({} bytes)",
                self.upload.memory_budget_bytes,
                self.upload.part_size_bytes
            );
        }
        if self.copy.multipart_threshold_bytes == 0 {
            bail!("copy.multipart_threshold_bytes must be greater than 0");
        }
        self.metrics_addr()?;
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!("log.format: {:?} is not one of text, json", self.log.format);
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|err| anyhow::anyhow!("log.level: {:?}: {err}", self.log.level))?;
        Ok(())
    }

    /// The `[server]` limits and timings.
    fn validate_server(&self) -> anyhow::Result<()> {
        let server = &self.server;
        for (setting, limit) in [
            ("server.max_concurrent_calls", server.max_concurrent_calls),
            (
                "server.max_concurrent_streaming_calls",
                server.max_concurrent_streaming_calls,
            ),
        ] {
            if !(1..=1_000_000).contains(&limit) {
                bail!("{setting}: {limit} is outside 1..=1000000");
            }
        }
        if server.http2_keepalive_interval_secs != 0
            && !(1..=3600).contains(&server.http2_keepalive_timeout_secs)
        {
            bail!(
                "server.http2_keepalive_timeout_secs: {} is outside 1..=3600",
                server.http2_keepalive_timeout_secs
            );
        }
        for (setting, millis, max) in [
            (
                "server.preface_timeout_ms",
                server.preface_timeout_ms,
                600_000,
            ),
            (
                "server.stream_idle_timeout_ms",
                server.stream_idle_timeout_ms,
                86_400_000,
            ),
        ] {
            if !(100..=max).contains(&millis) {
                bail!("{setting}: {millis} is outside 100..={max}");
            }
        }
        if server.max_connection_age_grace_secs != 0 && server.max_connection_age_secs == 0 {
            bail!(
                "server.max_connection_age_grace_secs: needs server.max_connection_age_secs \
                 (the grace starts when a connection reaches its maximum age)"
            );
        }
        for (setting, bytes, floor) in [
            (
                "server.max_decoding_message_bytes",
                server.max_decoding_message_bytes,
                MIN_MESSAGE_BYTES,
            ),
            // ReadObject's chunks must fit.
            (
                "server.max_encoding_message_bytes",
                server.max_encoding_message_bytes,
                READ_CHUNK_BYTES + MIN_MESSAGE_BYTES,
            ),
        ] {
            if !(floor..=MAX_MESSAGE_BYTES).contains(&bytes) {
                bail!("{setting}: {bytes} is outside {floor}..={MAX_MESSAGE_BYTES}");
            }
        }
        if let Some(health) = self.health_listen_addr()? {
            let others = [
                ("listen", Some(self.listen_addr()?)),
                ("metrics.listen", self.metrics_addr()?),
            ];
            for (setting, other) in others {
                if let Some(other) = other
                    && same_port(health, other)
                {
                    bail!(
                        "server.health_listen: {health} would share its port with {setting} \
                         ({other}); give the health listener a port of its own"
                    );
                }
            }
        }
        Ok(())
    }

    /// The parsed `server.health_listen`; `None` when the plaintext health listener is off.
    pub fn health_listen_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        optional_addr(
            "server.health_listen",
            &self.server.health_listen,
            " (e.g. 0.0.0.0:8081)",
        )
    }

    /// True when callers must prove who they are: `[auth]` tokens or certificate mappings,
    /// or TLS that requires a client certificate from the configured CA.
    pub fn caller_auth_configured(&self) -> bool {
        self.auth.enabled() || self.tls.requires_client_certificates()
    }

    /// `server.http2_keepalive_interval_secs` (`None` = off).
    pub fn http2_keepalive_interval(&self) -> Option<Duration> {
        let secs = self.server.http2_keepalive_interval_secs;
        (secs != 0).then(|| Duration::from_secs(secs))
    }

    /// `server.max_connection_age_secs` (`None` = unlimited).
    pub fn max_connection_age(&self) -> Option<Duration> {
        let secs = self.server.max_connection_age_secs;
        (secs != 0).then(|| Duration::from_secs(secs))
    }

    /// When a connection is closed by force: max age + grace (`None` = never).
    pub fn connection_force_close_after(&self) -> Option<Duration> {
        let grace = self.server.max_connection_age_grace_secs;
        let age = self.max_connection_age()?;
        (grace != 0).then(|| age + Duration::from_secs(grace))
    }

    /// The parsed `listen` address.
    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen
            .parse()
            .map_err(|err| anyhow::anyhow!("listen: {:?} is not an address: {err}", self.listen))
    }

    /// The parsed `metrics.listen`; `None` when the endpoint is off.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        optional_addr("metrics.listen", &self.metrics.listen, "")
    }

    /// The parsed `oss.signature_version`.
    pub fn signature_version(&self) -> anyhow::Result<SignatureVersion> {
        self.oss.signature_version.parse().map_err(|_| {
            anyhow::anyhow!(
                "oss.signature_version: {:?} is not one of v4, v1",
                self.oss.signature_version
            )
        })
    }

    /// The parsed `oss.addressing`.
    pub fn addressing(&self) -> anyhow::Result<crate::oss::Addressing> {
        match self.oss.addressing.as_str() {
            "auto" => Ok(crate::oss::Addressing::Auto),
            "virtual_host" => Ok(crate::oss::Addressing::VirtualHost),
            "path" => Ok(crate::oss::Addressing::Path),
            other => bail!("oss.addressing: {other:?} is not one of auto, virtual_host, path"),
        }
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
        if !(1..=60_000).contains(&oss.retry_base_delay_ms) {
            bail!(
                "oss.retry_base_delay_ms: {} is outside 1..=60000",
                oss.retry_base_delay_ms
            );
        }
        if !(oss.retry_base_delay_ms..=600_000).contains(&oss.retry_max_delay_ms) {
            bail!(
                "oss.retry_max_delay_ms: {} is outside oss.retry_base_delay_ms ({})..=600000",
                oss.retry_max_delay_ms,
                oss.retry_base_delay_ms
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
            read_timeout: (oss.read_timeout_ms != 0)
                .then(|| Duration::from_millis(oss.read_timeout_ms)),
            retry: crate::oss::retry::RetryConfig {
                max_attempts: oss.retry_max_attempts,
                base_delay: Duration::from_millis(oss.retry_base_delay_ms),
                max_delay: Duration::from_millis(oss.retry_max_delay_ms),
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
            duration: Duration::from_secs(self.oss.credentials_duration_secs),
            connect_timeout: Duration::from_millis(self.oss.connect_timeout_ms),
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
            connect_timeout: Duration::from_millis(self.oss.connect_timeout_ms),
            request_timeout: Duration::from_secs(10),
        })
    }

    /// True when no endpoint is configured and the embedded emulator serves as OSS.
    pub fn uses_embedded_emulator(&self) -> bool {
        self.oss.endpoint.is_empty()
    }

    /// `server.preface_timeout_ms` as a duration.
    pub fn preface_timeout(&self) -> Duration {
        Duration::from_millis(self.server.preface_timeout_ms)
    }

    /// `server.stream_idle_timeout_ms` as a duration.
    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.server.stream_idle_timeout_ms)
    }

    /// `server.shutdown_grace_ms` as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.server.shutdown_grace_ms)
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
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    }
}

/// `ossgate check-config`: loads and validates, prints the result with secrets redacted.
pub fn check(file: Option<&Path>) -> anyhow::Result<()> {
    let settings = Settings::load(file)?;
    println!("{}", settings.redacted_json());
    Ok(())
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

/// Refuses to serve without caller auth on a non-loopback address unless
/// `server.allow_insecure_remote` says the network is trusted. `auth_enabled`: tokens or
/// certificate mappings in `[auth]`, or TLS requiring client certificates
/// ([`Settings::caller_auth_configured`]).
///
/// Only `listen` is checked. The `server.health_listen` listener may be non-loopback without
/// caller auth: it serves grpc.health.v1 alone (SERVING or NOT_SERVING, no data, no
/// reflection), which is what a kubelet on another address needs to reach.
pub fn check_exposure(
    listen: SocketAddr,
    auth_enabled: bool,
    allow_insecure_remote: bool,
) -> anyhow::Result<()> {
    if auth_enabled || listen.ip().is_loopback() {
        return Ok(());
    }
    if allow_insecure_remote {
        tracing::warn!(
            %listen,
            "serving without caller auth on a non-loopback address (server.allow_insecure_remote)"
        );
        return Ok(());
    }
    anyhow::bail!(
        "listen: {listen} is not a loopback address and no caller auth is configured; configure \
         auth.tokens (or mTLS: tls.client_auth = \"required\" or auth.certificates) and \
         auth.policy, or set server.allow_insecure_remote = true \
         (OSSGATE_SERVER__ALLOW_INSECURE_REMOTE=true) if a trusted network protects the gateway"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write_file(contents: &str) -> tempfile::NamedTempFile {
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), contents).unwrap();
        file
    }

    #[test]
    fn defaults_serve_on_loopback_with_the_embedded_emulator() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:50051");
        assert!(settings.uses_embedded_emulator());
        assert_eq!(settings.signature_version().unwrap(), SignatureVersion::V4);
        assert_eq!(settings.emulator.buckets, vec!["ossgate-dev"]);
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
        assert_eq!(settings.listen, "127.0.0.1:7000");
        assert_eq!(settings.oss.endpoint, "https://oss-cn-beijing.aliyuncs.com");
        assert_eq!(settings.oss.signature_version, "v4");
        assert_eq!(settings.oss.region, "cn-beijing");
        assert_eq!(settings.oss.access_key_id, "file-ak");
        assert_eq!(settings.oss.access_key_secret, "env-sk");
        assert_eq!(
            settings.emulator.buckets,
            vec!["a-bucket", "b-bucket:versioned"]
        );
    }

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

    #[test]
    fn audit_reads_tags_before_only_when_asked() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert!(!settings.audit.read_tags_before);
        let on =
            Settings::load_from(None, env(&[("OSSGATE_AUDIT__READ_TAGS_BEFORE", "true")])).unwrap();
        assert!(on.audit.read_tags_before);
    }

    #[test]
    fn server_edge_defaults_are_deliberate() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        let server = &settings.server;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(server.max_concurrent_calls, (128 * cpus).max(128));
        assert_eq!(server.max_concurrent_streaming_calls, (32 * cpus).max(32));
        assert_eq!(
            settings.http2_keepalive_interval(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(server.http2_keepalive_timeout_secs, 20);
        assert_eq!(settings.preface_timeout(), Duration::from_secs(10));
        assert_eq!(settings.stream_idle_timeout(), Duration::from_secs(60));
        assert_eq!(settings.max_connection_age(), None);
        assert_eq!(settings.connection_force_close_after(), None);
        assert_eq!(server.max_decoding_message_bytes, 8 * 1024 * 1024);
        assert_eq!(server.max_encoding_message_bytes, 8 * 1024 * 1024);
        assert!(server.tcp_nodelay);
        assert!(!settings.tls.enabled());

        let tuned = Settings::load_from(
            None,
            env(&[
                ("OSSGATE_SERVER__MAX_CONNECTION_AGE_SECS", "600"),
                ("OSSGATE_SERVER__MAX_CONNECTION_AGE_GRACE_SECS", "30"),
                ("OSSGATE_SERVER__HTTP2_KEEPALIVE_INTERVAL_SECS", "0"),
                ("OSSGATE_SERVER__TCP_NODELAY", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(tuned.max_connection_age(), Some(Duration::from_secs(600)));
        assert_eq!(
            tuned.connection_force_close_after(),
            Some(Duration::from_secs(630))
        );
        assert_eq!(tuned.http2_keepalive_interval(), None);
        assert!(!tuned.server.tcp_nodelay);
    }

    #[test]
    fn plaintext_health_listener_is_off_by_default_and_checked() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(settings.server.health_listen, "");
        assert_eq!(settings.health_listen_addr().unwrap(), None);

        // From the file, overridden by the environment.
        let file = write_file("[server]\nhealth_listen = \"127.0.0.1:8081\"\n");
        let from_file = Settings::load_from(Some(file.path()), env(&[])).unwrap();
        assert_eq!(
            from_file.health_listen_addr().unwrap(),
            Some("127.0.0.1:8081".parse().unwrap())
        );
        let from_env = Settings::load_from(
            Some(file.path()),
            env(&[("OSSGATE_SERVER__HEALTH_LISTEN", "127.0.0.1:0")]),
        )
        .unwrap();
        assert_eq!(
            from_env.health_listen_addr().unwrap(),
            Some("127.0.0.1:0".parse().unwrap())
        );

        // Health alone exposes nothing: a non-loopback health listener needs no caller auth
        // and no server.allow_insecure_remote...
        let remote_health = Settings::load_from(
            None,
            env(&[("OSSGATE_SERVER__HEALTH_LISTEN", "0.0.0.0:8081")]),
        )
        .unwrap();
        assert!(!remote_health.caller_auth_configured());
        assert!(!remote_health.server.allow_insecure_remote);
        // ...and it does not make a non-loopback gRPC listener acceptable either.
        let err = format!(
            "{:#}",
            Settings::load_from(
                None,
                env(&[
                    ("OSSGATE_LISTEN", "0.0.0.0:50051"),
                    ("OSSGATE_SERVER__HEALTH_LISTEN", "127.0.0.1:8081"),
                ]),
            )
            .unwrap_err()
        );
        assert!(err.contains("server.allow_insecure_remote"), "{err}");

        // Its port must not be the gRPC or metrics port (port 0 is always a fresh port).
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("OSSGATE_SERVER__HEALTH_LISTEN", "127.0.0.1:50051")],
                "listen",
            ),
            (
                &[("OSSGATE_SERVER__HEALTH_LISTEN", "0.0.0.0:50051")],
                "listen",
            ),
            (
                &[
                    ("OSSGATE_METRICS__LISTEN", "127.0.0.1:9464"),
                    ("OSSGATE_SERVER__HEALTH_LISTEN", "[::]:9464"),
                ],
                "metrics.listen",
            ),
        ];
        for (vars, other) in cases {
            let err = format!("{:#}", Settings::load_from(None, env(vars)).unwrap_err());
            assert!(
                err.contains("server.health_listen") && err.contains(&format!("with {other} (")),
                "{vars:?}: {err}"
            );
        }
        for vars in [
            &[
                ("OSSGATE_LISTEN", "127.0.0.1:0"),
                ("OSSGATE_SERVER__HEALTH_LISTEN", "127.0.0.1:0"),
            ][..],
            &[("OSSGATE_SERVER__HEALTH_LISTEN", "127.0.0.2:50051")][..],
        ] {
            assert!(Settings::load_from(None, env(vars)).is_ok(), "{vars:?}");
        }
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

    #[test]
    fn non_loopback_without_auth_is_refused_unless_allowed() {
        let remote: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:50051".parse().unwrap();
        let local6: SocketAddr = "[::1]:50051".parse().unwrap();
        let err = format!("{:#}", check_exposure(remote, false, false).unwrap_err());
        assert!(err.contains("server.allow_insecure_remote"), "{err}");
        assert!(err.contains("auth.tokens"), "{err}");
        assert!(check_exposure(remote, false, true).is_ok());
        assert!(check_exposure(remote, true, false).is_ok());
        assert!(check_exposure(local, false, false).is_ok());
        assert!(check_exposure(local6, false, false).is_ok());
    }
}
