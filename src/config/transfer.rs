//! `[upload]` (WriteObject streams → OSS uploads) and `[copy]` (CopyObject).

use std::fmt;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::{MIB, Settings, redacted};
use crate::oss::protocol::limit::{MAX_PART_BYTES, MIN_PART_BYTES};

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

impl Settings {
    /// The `[upload]` and `[copy]` part sizes, parallelism and budgets.
    pub(super) fn validate_transfer(&self) -> anyhow::Result<()> {
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
        Ok(())
    }
}
