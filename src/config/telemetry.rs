//! `[log]` and `[metrics]`.

use super::*;

/// `[metrics]`: the Prometheus scrape endpoint.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address serving `GET /metrics` (Prometheus text), e.g. `127.0.0.1:9464`; empty = off.
    pub listen: String,
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

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl Settings {
    /// The `[metrics]` address and the `[log]` format and filter.
    pub(super) fn validate_telemetry(&self) -> anyhow::Result<()> {
        self.metrics_addr()?;
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!("log.format: {:?} is not one of text, json", self.log.format);
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|err| anyhow::anyhow!("log.level: {:?}: {err}", self.log.level))?;
        Ok(())
    }

    /// The parsed `metrics.listen`; `None` when the endpoint is off.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        optional_addr("metrics.listen", &self.metrics.listen, "")
    }
}
