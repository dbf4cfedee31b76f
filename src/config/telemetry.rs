//! `[log]` and `[metrics]`.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::Settings;

/// `[metrics]`: the Prometheus scrape endpoint.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address serving `GET /metrics` (Prometheus text), e.g. `127.0.0.1:9464`; empty = off.
    #[serde(
        deserialize_with = "super::text::metrics_listen",
        serialize_with = "super::text::optional_addr_as_text"
    )]
    pub listen: Option<SocketAddr>,
}

/// `log.format`: how log lines are written.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(try_from = "String", rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("log.format: {value:?} is not one of text, json")),
        }
    }
}

/// `[log]`: logging.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `ossgate=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Settings {
    /// The `[log]` filter (the format and `[metrics]` address are checked as they load).
    pub(super) fn validate_telemetry(&self) -> anyhow::Result<()> {
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|err| anyhow::anyhow!("log.level: {:?}: {err}", self.log.level))?;
        Ok(())
    }
}
