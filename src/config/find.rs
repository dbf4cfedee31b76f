//! `[find]`: how FindObjects' scan engine runs.

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::Settings;

/// `[find]`: the scan engine's parallelism and its ceiling on OSS requests.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FindSettings {
    /// GetObjectTagging requests of one scan in flight at the same time.
    pub scan_parallelism: usize,
    /// OSS requests per second (ListObjectsV2 pages and GetObjectTagging) that all scans
    /// together may send, so a find cannot starve the other calls; bursts up to one second's
    /// worth.
    pub scan_ops_per_second: u32,
}

impl Default for FindSettings {
    fn default() -> Self {
        Self {
            scan_parallelism: 16,
            scan_ops_per_second: 1000,
        }
    }
}

impl Settings {
    /// `[find]`'s parallelism and rate.
    pub(super) fn validate_find(&self) -> anyhow::Result<()> {
        let parallelism = self.find.scan_parallelism;
        if !(1..=256).contains(&parallelism) {
            bail!("find.scan_parallelism: {parallelism} is outside 1..=256");
        }
        let rate = self.find.scan_ops_per_second;
        if !(1..=1_000_000).contains(&rate) {
            bail!("find.scan_ops_per_second: {rate} is outside 1..=1000000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_checked() {
        let mut s = Settings::default();
        s.validate_find().unwrap();
        s.find.scan_parallelism = 0;
        let err = format!("{:#}", s.validate_find().unwrap_err());
        assert!(err.contains("find.scan_parallelism"), "{err}");
        s.find = FindSettings {
            scan_ops_per_second: 0,
            ..FindSettings::default()
        };
        let err = format!("{:#}", s.validate_find().unwrap_err());
        assert!(err.contains("find.scan_ops_per_second"), "{err}");
    }
}
