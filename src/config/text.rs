//! Settings written as text or numbers (in the file and the environment) that have a type of
//! their own: addresses, the signature version, the addressing style, durations. Each is parsed once, while the
//! settings load, and a value that does not parse stops the load with an error naming the
//! setting; `check-config` prints them back as the same text.

use std::{fmt::Display, net::SocketAddr, time::Duration};

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

use crate::oss::{Addressing, sign::SignatureVersion};

/// `value` of `setting` as a socket address; `example` follows the value in the error.
pub fn parse_addr(setting: &str, value: &str, example: &str) -> anyhow::Result<SocketAddr> {
    value
        .parse()
        .map_err(|err| anyhow::anyhow!("{setting}: {value:?} is not an address{example}: {err}"))
}

/// The address of an optional listener `setting`: `None` when `value` is empty (off).
fn parse_optional_addr(
    setting: &str,
    value: &str,
    example: &str,
) -> anyhow::Result<Option<SocketAddr>> {
    if value.is_empty() {
        return Ok(None);
    }
    parse_addr(setting, value, example).map(Some)
}

/// A setting read as a string and parsed by `parse`, whose error names the setting.
fn parsed<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    parse: impl FnOnce(&str) -> anyhow::Result<T>,
) -> Result<T, D::Error> {
    let value = String::deserialize(deserializer)?;
    parse(&value).map_err(|err| D::Error::custom(format!("{err:#}")))
}

/// `listen`.
pub(super) fn listen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    parsed(deserializer, |value| parse_addr("listen", value, ""))
}

/// `server.health_listen` (empty = off).
pub(super) fn health_listen<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    parsed(deserializer, |value| {
        parse_optional_addr("server.health_listen", value, " (e.g. 0.0.0.0:8081)")
    })
}

/// `metrics.listen` (empty = off).
pub(super) fn metrics_listen<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    parsed(deserializer, |value| {
        parse_optional_addr("metrics.listen", value, "")
    })
}

/// `oss.signature_version`: `v4` or `v1` (in any case).
pub(super) fn signature_version<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SignatureVersion, D::Error> {
    parsed(deserializer, |value| {
        value
            .parse()
            .map_err(|_| anyhow::anyhow!("oss.signature_version: {value:?} is not one of v4, v1"))
    })
}

/// `oss.addressing`: exactly `auto`, `virtual_host` or `path`.
pub(super) fn addressing<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Addressing, D::Error> {
    parsed(deserializer, |value| match value {
        "auto" => Ok(Addressing::Auto),
        "virtual_host" => Ok(Addressing::VirtualHost),
        "path" => Ok(Addressing::Path),
        other => Err(anyhow::anyhow!(
            "oss.addressing: {other:?} is not one of auto, virtual_host, path"
        )),
    })
}

/// Writes a typed setting back as its text.
pub(super) fn as_text<S: Serializer, T: Display>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Writes an optional address back as its text, empty when off.
pub(super) fn optional_addr_as_text<S: Serializer>(
    addr: &Option<SocketAddr>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match addr {
        Some(addr) => serializer.collect_str(addr),
        None => serializer.serialize_str(""),
    }
}

/// A duration written as whole milliseconds (the `*_ms` settings).
pub(super) mod millis {
    use super::{Deserialize, Deserializer, Duration, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A duration written as whole seconds (the `*_secs` settings).
pub(super) mod secs {
    use super::{Deserialize, Deserializer, Duration, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }
}
