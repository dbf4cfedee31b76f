//! Store additions for AppendObject and in-place CopyObject: a compare-and-swap commit of an
//! object's current version. A child module of [`super`] so it can use the store's internals.

use super::version::new_version_id;
use super::{ApiError, Bucket, ObjectEntry, StagedBlob, Store, Version, lock};

/// Whether two versions are the same commit (same ID, time and content).
fn same(a: &Version, b: &Version) -> bool {
    a.version_id == b.version_id && a.last_modified_ms == b.last_modified_ms && a.kind == b.kind
}

impl Store {
    /// Commits `version` as `key`'s current version only if the current live version is
    /// still `expected` (`None` = no live version: absent, or a delete marker on top).
    ///
    /// * `expected == None`: like a plain put (a new version in versioned buckets).
    /// * `expected == Some(v)`: `v` is replaced in place and keeps its version ID; its
    ///   blob is removed unless `version` references the same blob (in-place metadata edit).
    ///
    /// Otherwise `conflict()` is returned and `blob` is removed. `blob` (if any) is the blob
    /// `version` references; it is kept on success.
    pub fn swap_current(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&Version>,
        mut version: Version,
        blob: Option<StagedBlob>,
        conflict: impl FnOnce() -> ApiError,
    ) -> Result<Version, ApiError> {
        let mut freed = None;
        {
            let mut buckets = lock(&self.buckets);
            let b: &mut Bucket = buckets
                .get_mut(bucket)
                .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
            let versioned = b.versioned;
            let entry = b
                .objects
                .entry(key.to_owned())
                .or_insert_with(|| ObjectEntry {
                    key: key.to_owned(),
                    versions: Vec::new(),
                });
            let current = entry.versions.last().filter(|v| !v.is_delete_marker());
            let matches = match (current, expected) {
                (None, None) => true,
                (Some(c), Some(e)) => same(c, e),
                _ => false,
            };
            if !matches {
                if entry.versions.is_empty() {
                    b.objects.remove(key);
                }
                return Err(conflict());
            }
            let before = entry.clone();
            match expected {
                None => {
                    if versioned {
                        version.version_id = Some(new_version_id());
                    } else {
                        version.version_id = None;
                        // Only delete markers can be left in an unversioned entry.
                        entry.versions.clear();
                    }
                    entry.versions.push(version.clone());
                }
                Some(_) => {
                    let Some(slot) = entry.versions.last_mut() else {
                        return Err(conflict());
                    };
                    version.version_id = slot.version_id.clone();
                    let new_blob = version.blob().map(str::to_owned);
                    let old_blob = slot.blob().map(str::to_owned);
                    if old_blob != new_blob {
                        freed = old_blob;
                    }
                    *slot = version.clone();
                }
            }
            self.persist_or_restore(bucket, b, key, before)?;
            b.reindex(key);
            if let Some(mut blob) = blob {
                blob.keep = true;
            }
        }
        if let Some(id) = freed {
            self.blobs.remove(&id);
        }
        Ok(version)
    }

    /// The live current version of `key` (no error for a missing key or a delete marker).
    pub fn current(&self, bucket: &str, key: &str) -> Result<Option<Version>, ApiError> {
        let buckets = lock(&self.buckets);
        let b = buckets
            .get(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        Ok(b.objects
            .get(key)
            .and_then(|e| e.versions.last())
            .filter(|v| !v.is_delete_marker())
            .cloned())
    }
}
