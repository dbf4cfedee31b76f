//! `[lock]`: the per-object lock every tag write through ossgate takes (`crate::lock`): in
//! process by default, or a Redis lease lock shared by every replica when `redis_url` is set.

use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::Settings;

/// `[lock]`: how tag writes to one object are serialized.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LockSettings {
    /// `redis://host:port/db` (or `rediss://`) of the Redis (or Tair) shared by every
    /// replica; empty = the lock is held in this process only, so tag writes are atomic per
    /// replica.
    pub redis_url: String,
    /// How long a tag write waits for the object's lock before it answers ABORTED with
    /// RetryInfo.
    #[serde(with = "super::text::millis")]
    pub wait_ms: Duration,
    /// Redis lease of a held lock; renewed every third of it while the write runs, so a
    /// replica that dies holding it frees the object after at most this long.
    #[serde(with = "super::text::millis")]
    pub lease_ms: Duration,
    /// How many replicas serve this deployment (a hint: ossgate cannot count them). Above 1
    /// without `redis_url`, the start logs a warning that patch atomicity is per replica.
    pub replicas: u32,
}

impl Default for LockSettings {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            wait_ms: Duration::from_secs(5),
            lease_ms: Duration::from_secs(10),
            replicas: 1,
        }
    }
}

impl Settings {
    pub(super) fn validate_lock(&self) -> anyhow::Result<()> {
        let lock = &self.lock;
        let url = &lock.redis_url;
        if !(url.is_empty() || url.starts_with("redis://") || url.starts_with("rediss://")) {
            bail!("lock.redis_url: must start with redis:// or rediss://");
        }
        if lock.wait_ms > Duration::from_secs(60) {
            bail!("lock.wait_ms: at most 60000 (a caller waits this long at worst)");
        }
        if lock.lease_ms < Duration::from_millis(300) || lock.lease_ms > Duration::from_secs(300) {
            bail!("lock.lease_ms: must be between 300 and 300000");
        }
        if lock.replicas == 0 {
            bail!("lock.replicas: must be at least 1");
        }
        Ok(())
    }
}

/// The URL with any password replaced, for logs and `check-config`.
pub fn redacted_redis_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}<redacted>{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;

    #[test]
    fn lock_settings_default_to_in_process_and_are_checked() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert!(settings.lock.redis_url.is_empty());
        assert_eq!(settings.lock.wait_ms, Duration::from_secs(5));
        let redis = Settings::load_from(
            None,
            env(&[
                ("OSSGATE_LOCK__REDIS_URL", "redis://127.0.0.1:6379/0"),
                ("OSSGATE_LOCK__WAIT_MS", "250"),
                ("OSSGATE_LOCK__REPLICAS", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(redis.lock.wait_ms, Duration::from_millis(250));
        assert_eq!(redis.lock.replicas, 3);
        let err = Settings::load_from(None, env(&[("OSSGATE_LOCK__REDIS_URL", "localhost:6379")]))
            .unwrap_err();
        assert!(err.to_string().contains("lock.redis_url"), "{err}");
        let err = Settings::load_from(None, env(&[("OSSGATE_LOCK__LEASE_MS", "10")])).unwrap_err();
        assert!(err.to_string().contains("lock.lease_ms"), "{err}");
    }

    #[test]
    fn redis_passwords_are_redacted() {
        assert_eq!(
            redacted_redis_url("redis://:s3cret@redis:6379/0"),
            "redis://<redacted>@redis:6379/0"
        );
        assert_eq!(
            redacted_redis_url("redis://redis:6379"),
            "redis://redis:6379"
        );
    }
}
