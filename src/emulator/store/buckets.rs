//! Buckets themselves: their settings (versioning, storage class, redundancy, ACL, tags,
//! Block Public Access, creation time), creating, listing and deleting them, and the
//! counts GetBucketStat reports.
//!
//! A bucket's settings are its `bucket.json`. Files written before these settings existed
//! hold only `{"versioned": bool}`; they load with the defaults below and versioning
//! Enabled when `versioned` was true.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Bucket, Store, remove_path, write_atomic};
use crate::emulator::error::ApiError;
use crate::emulator::lock;

/// A bucket's versioning state. `Off` is a bucket whose versioning was never enabled (OSS
/// reports no status then); once enabled it can only be suspended, never turned off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Never enabled: one version per key, no version IDs.
    #[default]
    Off,
    /// Every write makes a new version with its own ID.
    Enabled,
    /// Writes replace the "null" version (no ID); versions made while Enabled stay.
    Suspended,
}

impl Versioning {
    /// The `Status` of GetBucketVersioning (none while `Off`).
    pub fn status(self) -> Option<&'static str> {
        match self {
            Self::Off => None,
            Self::Enabled => Some("Enabled"),
            Self::Suspended => Some("Suspended"),
        }
    }
}

/// The settings of one bucket, as PutBucket and the bucket operations set them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketConfig {
    /// Versioning state.
    #[serde(default)]
    pub versioning: Versioning,
    /// Creation time, Unix milliseconds (0 for buckets made before it was recorded).
    #[serde(default)]
    pub created_ms: u64,
    /// The bucket's storage class (`Standard`, `IA`, …).
    #[serde(default = "default_storage_class")]
    pub storage_class: String,
    /// `LRS` or `ZRS`.
    #[serde(default = "default_redundancy")]
    pub data_redundancy_type: String,
    /// Bucket ACL (`private`, `public-read`, `public-read-write`).
    #[serde(default = "default_acl")]
    pub acl: String,
    /// Bucket tags (PutBucketTags).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Block Public Access: on for new buckets, as OSS creates them.
    #[serde(default = "default_block_public_access")]
    pub block_public_access: bool,
}

fn default_storage_class() -> String {
    "Standard".to_owned()
}
fn default_redundancy() -> String {
    "LRS".to_owned()
}
fn default_acl() -> String {
    "private".to_owned()
}
fn default_block_public_access() -> bool {
    true
}

impl Default for BucketConfig {
    fn default() -> Self {
        Self {
            versioning: Versioning::Off,
            created_ms: super::now_ms(),
            storage_class: default_storage_class(),
            data_redundancy_type: default_redundancy(),
            acl: default_acl(),
            tags: BTreeMap::new(),
            block_public_access: default_block_public_access(),
        }
    }
}

/// `bucket.json`: the settings, and the flag older files carry instead of `versioning`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct BucketMeta {
    #[serde(default, skip_serializing)]
    versioned: bool,
    #[serde(flatten)]
    config: BucketConfig,
}

impl BucketMeta {
    /// The settings a loaded file describes.
    pub(super) fn into_config(self) -> BucketConfig {
        let mut config = self.config;
        if self.versioned && config.versioning == Versioning::Off {
            config.versioning = Versioning::Enabled;
        }
        config
    }
}

/// One bucket as ListBuckets shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSummary {
    /// Bucket name.
    pub name: String,
    /// Its settings.
    pub config: BucketConfig,
}

/// What GetBucketStat counts: current data versions by storage class, all delete markers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketStat {
    /// Objects (keys whose current version is data or a symlink).
    pub object_count: u64,
    /// Their total size in bytes.
    pub storage: u64,
    /// Latest modification among them, Unix seconds (0 when empty).
    pub last_modified_s: u64,
    /// `(count, bytes)` per storage class.
    pub by_class: BTreeMap<String, (u64, u64)>,
    /// Delete markers, in any position.
    pub delete_markers: u64,
}

impl Store {
    /// Writes a bucket's `bucket.json` (on disk stores).
    fn persist_bucket(&self, name: &str, config: &BucketConfig) -> Result<(), ApiError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let dir = root.join("buckets").join(name);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir.join("objects"))?;
            let json = serde_json::to_vec(&BucketMeta {
                versioned: false,
                config: config.clone(),
            })
            .map_err(std::io::Error::other)?;
            write_atomic(&dir, "bucket.json", &json, true)
        };
        write().map_err(|e| ApiError::internal(format!("cannot write bucket settings: {e}")))
    }

    /// Creates a bucket if missing; turns versioning on if asked (never off). The buckets
    /// given at start (`--bucket NAME[:versioned]`) are made this way.
    pub fn ensure_bucket(&self, name: &str, versioned: bool) -> anyhow::Result<()> {
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.entry(name.to_owned()).or_default();
        if versioned {
            bucket.config.versioning = Versioning::Enabled;
        }
        let config = bucket.config.clone();
        drop(buckets);
        self.persist_bucket(name, &config)
            .map_err(|e| anyhow::anyhow!("{}", e.message))
    }

    /// PutBucket: creates `name` with `config`; BucketAlreadyExists (409) if it exists.
    pub fn create_bucket(&self, name: &str, config: BucketConfig) -> Result<(), ApiError> {
        let mut buckets = lock(&self.buckets);
        if buckets.contains_key(name) {
            return Err(ApiError::bucket_already_exists());
        }
        self.persist_bucket(name, &config)?;
        buckets.insert(
            name.to_owned(),
            Bucket {
                config,
                ..Bucket::default()
            },
        );
        Ok(())
    }

    /// DeleteBucket: removes an empty bucket. `has_uploads` says whether multipart uploads
    /// are still open in it (they live outside the store). Any object version or delete
    /// marker left is BucketNotEmpty (409), as in OSS.
    pub fn delete_bucket(&self, name: &str, has_uploads: bool) -> Result<(), ApiError> {
        let mut buckets = lock(&self.buckets);
        let b = buckets
            .get(name)
            .ok_or_else(|| ApiError::no_such_bucket(name))?;
        if !b.objects.is_empty() {
            return Err(ApiError::bucket_not_empty(
                "The bucket you tried to delete is not empty.",
            ));
        }
        if has_uploads {
            return Err(ApiError::bucket_not_empty(
                "The bucket you tried to delete has unfinished multipart uploads; abort them first.",
            ));
        }
        if let Some(root) = &self.root {
            remove_path(&root.join("buckets").join(name)).map_err(|e| {
                ApiError::internal(format!("cannot remove the bucket's directory: {e}"))
            })?;
        }
        buckets.remove(name);
        Ok(())
    }

    /// A bucket's settings.
    pub fn bucket_config(&self, name: &str) -> Result<BucketConfig, ApiError> {
        lock(&self.buckets)
            .get(name)
            .map(|b| b.config.clone())
            .ok_or_else(|| ApiError::no_such_bucket(name))
    }

    /// Changes a bucket's settings with `change` (which may refuse), then persists them;
    /// on a write failure the old settings stay.
    pub fn update_bucket(
        &self,
        name: &str,
        change: impl FnOnce(&mut BucketConfig) -> Result<(), ApiError>,
    ) -> Result<BucketConfig, ApiError> {
        let mut buckets = lock(&self.buckets);
        let b = buckets
            .get_mut(name)
            .ok_or_else(|| ApiError::no_such_bucket(name))?;
        let mut config = b.config.clone();
        change(&mut config)?;
        self.persist_bucket(name, &config)?;
        b.config = config.clone();
        Ok(config)
    }

    /// Every bucket, by name.
    pub fn list_buckets(&self) -> Vec<BucketSummary> {
        lock(&self.buckets)
            .iter()
            .map(|(name, b)| BucketSummary {
                name: name.clone(),
                config: b.config.clone(),
            })
            .collect()
    }

    /// GetBucketStat's counts for a bucket.
    pub fn bucket_stat(&self, name: &str) -> Result<BucketStat, ApiError> {
        let buckets = lock(&self.buckets);
        let b = buckets
            .get(name)
            .ok_or_else(|| ApiError::no_such_bucket(name))?;
        let mut stat = BucketStat::default();
        for entry in b.objects.values() {
            stat.delete_markers += entry
                .versions
                .iter()
                .filter(|v| v.is_delete_marker())
                .count() as u64;
            let Some(current) = entry.versions.last().filter(|v| !v.is_delete_marker()) else {
                continue;
            };
            let size = match &current.kind {
                super::Kind::Data { size, .. } => *size,
                _ => 0,
            };
            stat.object_count += 1;
            stat.storage += size;
            stat.last_modified_s = stat.last_modified_s.max(current.last_modified_ms / 1000);
            let class = stat
                .by_class
                .entry(current.storage_class.clone())
                .or_default();
            class.0 += 1;
            class.1 += size;
        }
        Ok(stat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_bucket_files_load_with_defaults() {
        let meta: BucketMeta = serde_json::from_str(r#"{"versioned":true}"#).unwrap();
        let config = meta.into_config();
        assert_eq!(config.versioning, Versioning::Enabled);
        assert_eq!(config.storage_class, "Standard");
        assert_eq!(config.acl, "private");
        assert!(config.block_public_access);
        let meta: BucketMeta = serde_json::from_str(r#"{"versioned":false}"#).unwrap();
        assert_eq!(meta.into_config().versioning, Versioning::Off);
    }

    #[test]
    fn create_delete_and_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = BucketConfig {
            storage_class: "IA".into(),
            ..BucketConfig::default()
        };
        store.create_bucket("b1", config.clone()).unwrap();
        let err = store.create_bucket("b1", config).unwrap_err();
        assert_eq!(err.code, "BucketAlreadyExists");
        store
            .update_bucket("b1", |c| {
                c.versioning = Versioning::Enabled;
                Ok(())
            })
            .unwrap();
        // Settings survive a restart.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let config = store.bucket_config("b1").unwrap();
        assert_eq!(config.storage_class, "IA");
        assert_eq!(config.versioning, Versioning::Enabled);
        let err = store.delete_bucket("b1", true).unwrap_err();
        assert_eq!(err.code, "BucketNotEmpty");
        store.delete_bucket("b1", false).unwrap();
        assert!(!store.has_bucket("b1"));
        assert!(!dir.path().join("buckets/b1").exists());
        assert_eq!(
            store.delete_bucket("b1", false).unwrap_err().code,
            "NoSuchBucket"
        );
    }
}
