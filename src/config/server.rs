//! `[server]` (the gRPC edge: limits, timings, HTTP/2, the health listener, compression) and
//! the exposure check of `listen`.

use std::{net::SocketAddr, time::Duration};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::{MIB, Settings};

/// `[server]`: gRPC server behaviour.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// How long in-flight calls may run after a shutdown signal before they are cut off.
    #[serde(with = "super::text::millis")]
    pub shutdown_grace_ms: Duration,
    /// Serve without caller auth on a non-loopback address (only behind a trusted network).
    pub allow_insecure_remote: bool,
    /// Unary ObjectService calls served at once; past it calls fail fast with UNAVAILABLE.
    /// Default: 128 per CPU (at least 128).
    pub max_concurrent_calls: usize,
    /// Streaming ObjectService calls (WriteObject, AppendObject, ReadObject) open at once,
    /// counted apart from unary calls for their whole life. Default: 32 per CPU (at least 32).
    pub max_concurrent_streaming_calls: usize,
    /// Interval of HTTP/2 PING frames on idle and busy connections; 0 = no keepalive.
    #[serde(with = "super::text::secs")]
    pub http2_keepalive_interval_secs: Duration,
    /// How long a keepalive PING may go unanswered before the connection is closed.
    #[serde(with = "super::text::secs")]
    pub http2_keepalive_timeout_secs: Duration,
    /// After this long a connection gets a graceful GOAWAY (clients reconnect, e.g. to new
    /// replicas); 0 = connections live forever.
    #[serde(with = "super::text::secs")]
    pub max_connection_age_secs: Duration,
    /// After max age, calls still running on the connection get this long before it is closed
    /// by force; 0 = wait for them.
    #[serde(with = "super::text::secs")]
    pub max_connection_age_grace_secs: Duration,
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
    #[serde(
        deserialize_with = "super::text::health_listen",
        serialize_with = "super::text::optional_addr_as_text"
    )]
    pub health_listen: Option<SocketAddr>,
    /// How long a new connection may take to send the HTTP/2 preface (after TLS) before it
    /// is closed.
    #[serde(with = "super::text::millis")]
    pub preface_timeout_ms: Duration,
    /// How long an ObjectService call may wait for its client's next message (or request
    /// body bytes) before it is ended with DEADLINE_EXCEEDED, freeing its call slot.
    #[serde(with = "super::text::millis")]
    pub stream_idle_timeout_ms: Duration,
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

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            shutdown_grace_ms: Duration::from_millis(10_000),
            allow_insecure_remote: false,
            max_concurrent_calls: (128 * cpus()).max(128),
            max_concurrent_streaming_calls: (32 * cpus()).max(32),
            http2_keepalive_interval_secs: Duration::from_secs(30),
            http2_keepalive_timeout_secs: Duration::from_secs(20),
            max_connection_age_secs: Duration::from_secs(0),
            max_connection_age_grace_secs: Duration::from_secs(0),
            max_decoding_message_bytes: 8 * MIB as usize,
            max_encoding_message_bytes: 8 * MIB as usize,
            tcp_nodelay: true,
            health_listen: None,
            preface_timeout_ms: Duration::from_millis(10_000),
            // As nginx's client_body_timeout: generous for a slow producer, but a silent
            // client cannot hold a streaming slot forever.
            stream_idle_timeout_ms: Duration::from_millis(60_000),
            response_compression: ResponseCompression::None,
        }
    }
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

impl Settings {
    /// The `[server]` limits and timings.
    pub(super) fn validate_server(&self) -> anyhow::Result<()> {
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
        if !server.http2_keepalive_interval_secs.is_zero()
            && !(1..=3600).contains(&server.http2_keepalive_timeout_secs.as_secs())
        {
            bail!(
                "server.http2_keepalive_timeout_secs: {} is outside 1..=3600",
                server.http2_keepalive_timeout_secs.as_secs()
            );
        }
        for (setting, millis, max) in [
            (
                "server.preface_timeout_ms",
                server.preface_timeout_ms.as_millis(),
                600_000,
            ),
            (
                "server.stream_idle_timeout_ms",
                server.stream_idle_timeout_ms.as_millis(),
                86_400_000,
            ),
        ] {
            if !(100..=max).contains(&millis) {
                bail!("{setting}: {millis} is outside 100..={max}");
            }
        }
        if !server.max_connection_age_grace_secs.is_zero()
            && server.max_connection_age_secs.is_zero()
        {
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
        if let Some(health) = self.server.health_listen {
            let others = [
                ("listen", Some(self.listen)),
                ("metrics.listen", self.metrics.listen),
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

    /// True when callers must prove who they are: `[auth]` tokens or certificate mappings,
    /// or TLS that requires a client certificate from the configured CA.
    pub fn caller_auth_configured(&self) -> bool {
        self.auth.enabled() || self.tls.requires_client_certificates()
    }

    /// `server.http2_keepalive_interval_secs` (`None` = off).
    pub fn http2_keepalive_interval(&self) -> Option<Duration> {
        let interval = self.server.http2_keepalive_interval_secs;
        (!interval.is_zero()).then_some(interval)
    }

    /// `server.max_connection_age_secs` (`None` = unlimited).
    pub fn max_connection_age(&self) -> Option<Duration> {
        let age = self.server.max_connection_age_secs;
        (!age.is_zero()).then_some(age)
    }

    /// When a connection is closed by force: max age + grace (`None` = never).
    pub fn connection_force_close_after(&self) -> Option<Duration> {
        let grace = self.server.max_connection_age_grace_secs;
        let age = self.max_connection_age()?;
        (!grace.is_zero()).then(|| age + grace)
    }

    /// `server.preface_timeout_ms` as a duration.
    pub fn preface_timeout(&self) -> Duration {
        self.server.preface_timeout_ms
    }

    /// `server.stream_idle_timeout_ms` as a duration.
    pub fn stream_idle_timeout(&self) -> Duration {
        self.server.stream_idle_timeout_ms
    }

    /// `server.shutdown_grace_ms` as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        self.server.shutdown_grace_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{env, write_file};

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
        assert_eq!(server.http2_keepalive_timeout_secs, Duration::from_secs(20));
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
        assert_eq!(settings.server.health_listen, None);

        // From the file, overridden by the environment.
        let file = write_file("[server]\nhealth_listen = \"127.0.0.1:8081\"\n");
        let from_file = Settings::load_from(Some(file.path()), env(&[])).unwrap();
        assert_eq!(
            from_file.server.health_listen,
            Some("127.0.0.1:8081".parse().unwrap())
        );
        let from_env = Settings::load_from(
            Some(file.path()),
            env(&[("OSSGATE_SERVER__HEALTH_LISTEN", "127.0.0.1:0")]),
        )
        .unwrap();
        assert_eq!(
            from_env.server.health_listen,
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
