//! Object storage of the emulator: buckets → objects → versions, in memory or on disk.
//!
//! Every object is a list of versions (oldest first); an unversioned bucket keeps exactly
//! one version per key, with no version ID. A version is a [`Version`]: its kind (data,
//! symlink or delete marker), headers, user metadata, tags, storage class and ACL. Object
//! data lives in blobs, addressed by an opaque ID, so later operations (append, multipart,
//! copy) only need new ways to produce a blob and a version.
//!
//! On disk (`data_dir`):
//! ```text
//! blobs/<id>                                   object data (written to blobs/.tmp-<id>, fsynced, renamed)
//! blobs/<id>/<00000..>                         or: a composed blob, its pieces in name order
//!                                              (hard links made in blobs/.tmp-<id>/, fsynced, renamed)
//! buckets/<bucket>/bucket.json                 the bucket's settings ([`BucketConfig`])
//! buckets/<bucket>/objects/<sha256(key)>.json  the key and all its versions
//! ```
//! Every JSON file is written atomically (temp file in the same directory, fsync, rename,
//! fsync of the directory). Blobs nobody references (a crash between writing data and
//! metadata) are removed at start.
//!
//! Every commit of an object (here and in [`swap`]) ends with `Bucket::reindex(key)` under the
//! same lock, which keeps the MetaQuery index ([`meta_index`]) exact; a new way to change an
//! object must do the same.
//!
//! A completed multipart upload becomes a *composed* blob: its part files are hard-linked
//! into one directory (on disk) or its parts' buffers are shared (in memory), so Complete
//! costs no copy of the data. Readers see a composed blob as one run of bytes.
//!
//! This file holds buckets and objects (put, read, delete, tags, persistence); a version and
//! what it holds are in [`version`], object data in [`blob`], atomic file writes in
//! [`files`], and the compare-and-swap commit in [`swap`].

use crate::oss::protocol;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use md5::Digest;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::ApiError;
use super::lock;

mod blob;
/// Buckets: their settings, create, list, delete, stat.
mod buckets;
mod files;
/// The key walk of the listings and in-place version updates.
mod listing;
/// The MetaQuery data index (kept up to date by every commit below).
mod meta_index;
/// The MetaQuery query JSON, sort order, paging token and aggregations.
pub mod meta_query;
/// Compare-and-swap commits for AppendObject and in-place CopyObject.
mod swap;
mod version;

pub(crate) use blob::MemoryWriter;
pub use blob::{BlobData, Pieces, StagedBlob, Staging};
use blob::{Blobs, remove_path};
pub use buckets::{BucketConfig, BucketStat, BucketSummary, Versioning};
use files::sync_dir;
pub(crate) use files::write_atomic;
pub use listing::Visit;
pub use meta_index::{MAX_RESULTS, MetaPage, MetaQueryStatus, MetaSearch, PREPARATION};
use version::new_version_id;
pub use version::{Kind, Restore, Version, now_ms};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ObjectEntry {
    key: String,
    versions: Vec<Version>,
}

#[derive(Debug, Default)]
struct Bucket {
    config: BucketConfig,
    objects: BTreeMap<String, ObjectEntry>,
    /// The MetaQuery index, while open.
    meta_index: Option<meta_index::MetaIndex>,
}

impl Bucket {
    /// Whether writes get version IDs (versioning Enabled).
    fn versioned(&self) -> bool {
        self.config.versioning == Versioning::Enabled
    }

    /// Whether versioning was ever enabled (Enabled or Suspended): then forbid-overwrite
    /// has no effect and an unknown version ID is NoSuchVersion, as in OSS.
    fn has_versioning(&self) -> bool {
        self.config.versioning != Versioning::Off
    }
}

/// Result of a DeleteObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The version ID created (delete marker) or removed, in versioned buckets.
    pub version_id: Option<String>,
    /// Whether a delete marker was created or removed.
    pub delete_marker: bool,
}

/// What `read` found.
pub struct Found {
    /// The version asked for (a symlink stays a symlink here).
    pub version: Version,
    /// For a symlink read with `follow`, the target's current version.
    pub target: Option<Version>,
    /// The data of `target` or else `version`, if it has data and it was asked for.
    pub data: Option<BlobData>,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    buckets: Mutex<BTreeMap<String, Bucket>>,
    blobs: Arc<Blobs>,
    root: Option<PathBuf>,
}

impl Store {
    /// An empty in-memory store.
    pub fn in_memory() -> Self {
        Self {
            buckets: Mutex::new(BTreeMap::new()),
            blobs: Arc::new(Blobs::Memory(Mutex::new(HashMap::new()))),
            root: None,
        }
    }

    /// Opens (creating if needed) a store under `root`, loading what is there.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let blob_dir = root.join("blobs");
        std::fs::create_dir_all(&blob_dir)
            .with_context(|| format!("cannot create {}", blob_dir.display()))?;
        std::fs::create_dir_all(root.join("buckets"))?;
        let mut buckets = BTreeMap::new();
        let mut referenced = std::collections::HashSet::new();
        for entry in std::fs::read_dir(root.join("buckets"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            let meta: buckets::BucketMeta = match std::fs::read(dir.join("bucket.json")) {
                Ok(bytes) => serde_json::from_slice(&bytes)
                    .with_context(|| format!("corrupt {}/bucket.json", dir.display()))?,
                Err(_) => continue,
            };
            let mut bucket = Bucket {
                config: meta.into_config(),
                ..Bucket::default()
            };
            let objects = dir.join("objects");
            if objects.is_dir() {
                for f in std::fs::read_dir(&objects)? {
                    let path = f?.path();
                    let is_json = path.extension().is_some_and(|e| e == "json");
                    let file_name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if file_name.starts_with(".tmp-") {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if !is_json {
                        continue;
                    }
                    let bytes = std::fs::read(&path)?;
                    let obj: ObjectEntry = serde_json::from_slice(&bytes)
                        .with_context(|| format!("corrupt {}", path.display()))?;
                    for v in &obj.versions {
                        if let Some(b) = v.blob() {
                            referenced.insert(b.to_owned());
                        }
                    }
                    bucket.objects.insert(obj.key.clone(), obj);
                }
            }
            bucket.meta_index = meta_index::load(&dir, &bucket.objects);
            buckets.insert(name, bucket);
        }
        for f in std::fs::read_dir(&blob_dir)? {
            let f = f?;
            let name = f.file_name().to_string_lossy().into_owned();
            if !referenced.contains(&name) {
                let _ = remove_path(&f.path());
            }
        }
        Ok(Self {
            buckets: Mutex::new(buckets),
            blobs: Arc::new(Blobs::Disk(blob_dir)),
            root: Some(root.to_owned()),
        })
    }

    /// Whether the bucket exists.
    pub fn has_bucket(&self, name: &str) -> bool {
        lock(&self.buckets).contains_key(name)
    }

    /// Whether the bucket exists and has versioning Enabled.
    pub fn is_versioned(&self, name: &str) -> Result<bool, ApiError> {
        lock(&self.buckets)
            .get(name)
            .map(Bucket::versioned)
            .ok_or_else(|| ApiError::no_such_bucket(name))
    }

    /// Commits a new version of `key`. `blob` must be the blob `version` references (it is
    /// kept on success and removed on failure). With `forbid_overwrite` (ignored in versioned
    /// buckets) an existing live object is a FileAlreadyExists error. Returns the version as
    /// stored (with its version ID).
    pub fn put(
        &self,
        bucket: &str,
        key: &str,
        mut version: Version,
        blob: Option<StagedBlob>,
        forbid_overwrite: bool,
    ) -> Result<Version, ApiError> {
        let mut old_blobs = Vec::new();
        {
            let mut buckets = lock(&self.buckets);
            let b = buckets
                .get_mut(bucket)
                .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
            let (versioned, has_versioning) = (b.versioned(), b.has_versioning());
            let entry = b
                .objects
                .entry(key.to_owned())
                .or_insert_with(|| ObjectEntry {
                    key: key.to_owned(),
                    versions: Vec::new(),
                });
            let live = entry.versions.last().is_some_and(|v| !v.is_delete_marker());
            if forbid_overwrite && !has_versioning && live {
                if entry.versions.is_empty() {
                    b.objects.remove(key);
                }
                return Err(ApiError::file_already_exists());
            }
            let before = entry.clone();
            if versioned {
                version.version_id = Some(new_version_id());
                entry.versions.push(version.clone());
            } else {
                version.version_id = None;
                old_blobs.extend(take_null_versions(entry));
                entry.versions.push(version.clone());
            }
            self.persist_or_restore(bucket, b, key, before)?;
            b.reindex(key);
            if let Some(mut blob) = blob {
                blob.keep = true;
            }
        }
        for id in old_blobs {
            self.blobs.remove(&id);
        }
        Ok(version)
    }

    /// Finds a version: `version_id` or else the current one. A delete marker as current
    /// version is NoSuchKey (with `x-oss-delete-marker: true`).
    fn find<'a>(
        buckets: &'a BTreeMap<String, Bucket>,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<&'a Version, ApiError> {
        let b = buckets
            .get(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        let entry = b.objects.get(key);
        let v = match version_id {
            None => entry
                .and_then(|e| e.versions.last())
                .ok_or_else(ApiError::no_such_key)?,
            Some(id) => {
                let found = entry.and_then(|e| {
                    e.versions.iter().find(|v| match &v.version_id {
                        Some(vid) => vid == id,
                        None => id == "null",
                    })
                });
                match found {
                    Some(v) => v,
                    None if b.has_versioning() || id != "null" => {
                        return Err(ApiError::no_such_version(id));
                    }
                    None => return Err(ApiError::no_such_key()),
                }
            }
        };
        if v.is_delete_marker() {
            let mut err = ApiError::no_such_key().header(protocol::header::DELETE_MARKER, "true");
            if let Some(id) = &v.version_id {
                err = err.header(protocol::header::VERSION_ID, id.clone());
            }
            return Err(err);
        }
        Ok(v)
    }

    /// Reads a version. With `follow`, a symlink is resolved to its target's current
    /// version (SymlinkTargetNotExist if gone). With `open`, the data is opened too.
    pub fn read(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        follow: bool,
        open: bool,
    ) -> Result<Found, ApiError> {
        let buckets = lock(&self.buckets);
        let version = Self::find(&buckets, bucket, key, version_id)?.clone();
        let mut target = None;
        if follow && let Kind::Symlink { target: t } = &version.kind {
            let tv = match Self::find(&buckets, bucket, t, None) {
                Ok(tv) => tv.clone(),
                Err(e) if e.status == http::StatusCode::NOT_FOUND => {
                    return Err(ApiError::symlink_target_not_exist());
                }
                Err(e) => return Err(e),
            };
            if matches!(tv.kind, Kind::Symlink { .. }) {
                return Err(ApiError::new(
                    http::StatusCode::BAD_REQUEST,
                    "InvalidTargetType",
                    "The symlink target object type is not supported.",
                ));
            }
            target = Some(tv);
        }
        let data = if open {
            match target.as_ref().unwrap_or(&version).blob() {
                Some(id) => Some(self.blobs.open(id)?),
                None => None,
            }
        } else {
            None
        };
        Ok(Found {
            version,
            target,
            data,
        })
    }

    /// Replaces the tags of a version (the current one without `version_id`).
    pub fn set_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> Result<Version, ApiError> {
        self.update_version(bucket, key, version_id, |v| {
            v.tags = tags;
            Ok(())
        })
    }

    /// DeleteObject: removes the object (unversioned), adds a delete marker (versioned,
    /// no `version_id`) or removes one version for good (`version_id`). Missing → Ok.
    pub fn delete(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Deleted, ApiError> {
        let mut removed_blobs = Vec::new();
        let result;
        {
            let mut buckets = lock(&self.buckets);
            let b = buckets
                .get_mut(bucket)
                .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
            let versioning = b.config.versioning;
            // A delete without a version ID in a bucket with versioning leaves a delete
            // marker: with its own ID (Enabled), or as the "null" version (Suspended).
            let new_marker = || {
                let mut marker = Version::new(Kind::DeleteMarker);
                if versioning == Versioning::Enabled {
                    marker.version_id = Some(new_version_id());
                }
                let deleted = Deleted {
                    version_id: Some(marker.version_id.clone().unwrap_or_else(|| "null".into())),
                    delete_marker: true,
                };
                (marker, deleted)
            };
            let Some(entry) = b.objects.get_mut(key) else {
                if versioning != Versioning::Off && version_id.is_none() {
                    // A delete marker even for a key that never existed, like OSS.
                    let (marker, deleted) = new_marker();
                    let entry = ObjectEntry {
                        key: key.to_owned(),
                        versions: vec![marker],
                    };
                    self.persist(bucket, &entry)?;
                    b.objects.insert(key.to_owned(), entry);
                    return Ok(deleted);
                }
                return Ok(Deleted {
                    version_id: version_id.map(str::to_owned),
                    delete_marker: false,
                });
            };
            let before = entry.clone();
            match (versioning, version_id) {
                (Versioning::Enabled, None) => {
                    let (marker, deleted) = new_marker();
                    entry.versions.push(marker);
                    result = deleted;
                }
                (Versioning::Suspended, None) => {
                    removed_blobs.extend(take_null_versions(entry));
                    let (marker, deleted) = new_marker();
                    entry.versions.push(marker);
                    result = deleted;
                }
                (_, Some(id)) => {
                    let pos = entry.versions.iter().position(|v| match &v.version_id {
                        Some(vid) => vid == id,
                        None => id == "null",
                    });
                    match pos {
                        Some(pos) => {
                            let v = entry.versions.remove(pos);
                            removed_blobs.extend(v.blob().map(str::to_owned));
                            result = Deleted {
                                version_id: Some(id.to_owned()),
                                delete_marker: v.is_delete_marker(),
                            };
                        }
                        None if versioning != Versioning::Off => {
                            return Err(ApiError::no_such_version(id));
                        }
                        None => {
                            return Ok(Deleted {
                                version_id: None,
                                delete_marker: false,
                            });
                        }
                    }
                }
                (Versioning::Off, None) => {
                    removed_blobs.extend(
                        entry
                            .versions
                            .drain(..)
                            .filter_map(|v| v.blob().map(str::to_owned)),
                    );
                    result = Deleted {
                        version_id: None,
                        delete_marker: false,
                    };
                }
            }
            let entry_now = entry.clone();
            if let Err(e) = self.persist(bucket, &entry_now) {
                *entry = before;
                return Err(e);
            }
            if entry_now.versions.is_empty() {
                b.objects.remove(key);
            }
            b.reindex(key);
        }
        for id in removed_blobs {
            self.blobs.remove(&id);
        }
        Ok(result)
    }

    /// Writes (or removes, when it has no versions) the metadata file of an object.
    /// Writes the entry now at `key` of `b` to disk. If that fails, the entry goes back to
    /// `before` in memory (or away, when the key was new), so memory never shows an object
    /// that the disk does not hold.
    fn persist_or_restore(
        &self,
        bucket: &str,
        b: &mut Bucket,
        key: &str,
        before: ObjectEntry,
    ) -> Result<(), ApiError> {
        let Some(now) = b.objects.get(key) else {
            return Ok(());
        };
        if let Err(e) = self.persist(bucket, now) {
            if before.versions.is_empty() {
                b.objects.remove(key);
            } else {
                b.objects.insert(key.to_owned(), before);
            }
            return Err(e);
        }
        Ok(())
    }

    fn persist(&self, bucket: &str, entry: &ObjectEntry) -> Result<(), ApiError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let dir = root.join("buckets").join(bucket).join("objects");
        let name = format!("{}.json", hex::encode(Sha256::digest(entry.key.as_bytes())));
        let result = if entry.versions.is_empty() {
            match std::fs::remove_file(dir.join(&name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => sync_dir(&dir),
            }
        } else {
            serde_json::to_vec(entry)
                .map_err(std::io::Error::other)
                .and_then(|json| write_atomic(&dir, &name, &json, true))
        };
        result.map_err(|e| ApiError::internal(format!("cannot write object metadata: {e}")))
    }
}

/// Takes the "null" versions (no version ID) out of an entry and returns their blobs. An
/// unversioned bucket has only such versions; a suspended one keeps the versions with IDs
/// made while versioning was Enabled, and a new write or delete replaces the null one.
fn take_null_versions(entry: &mut ObjectEntry) -> Vec<String> {
    let (null, kept): (Vec<Version>, Vec<Version>) = std::mem::take(&mut entry.versions)
        .into_iter()
        .partition(|v| v.version_id.is_none());
    entry.versions = kept;
    null.iter()
        .filter_map(|v| v.blob().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn blob(store: &Store, data: &[u8]) -> StagedBlob {
        let mut s = store.stage().await.unwrap();
        s.write(data).await.unwrap();
        s.finish().await.unwrap()
    }

    fn data_version(b: &StagedBlob) -> Version {
        Version::new(Kind::Data {
            object_type: "Normal".into(),
            blob: b.id.clone(),
            size: b.size,
            etag: b.etag(),
            crc64: b.crc64,
        })
    }

    #[tokio::test]
    async fn versioned_put_delete_marker_and_version_delete() {
        let store = Store::in_memory();
        store.ensure_bucket("vb", true).unwrap();
        let b = blob(&store, b"one").await;
        let v1 = store
            .put("vb", "k", data_version(&b), Some(b), false)
            .unwrap();
        let b = blob(&store, b"two").await;
        let v2 = store
            .put("vb", "k", data_version(&b), Some(b), true)
            .unwrap();
        assert_ne!(v1.version_id, v2.version_id);
        let d = store.delete("vb", "k", None).unwrap();
        assert!(d.delete_marker);
        let err = store.read("vb", "k", None, true, false).err().unwrap();
        assert_eq!(err.code, "NoSuchKey");
        let old = store
            .read("vb", "k", v1.version_id.as_deref(), true, true)
            .ok()
            .unwrap();
        assert_eq!(old.data.unwrap().read_all().unwrap(), b"one");
        store.delete("vb", "k", d.version_id.as_deref()).unwrap();
        let cur = store.read("vb", "k", None, true, true).ok().unwrap();
        assert_eq!(cur.data.unwrap().read_all().unwrap(), b"two");
        let err = store
            .read("vb", "k", Some("nope"), true, false)
            .err()
            .unwrap();
        assert_eq!(err.code, "NoSuchVersion");
    }

    #[tokio::test]
    async fn unversioned_overwrite_frees_old_blob_and_forbid_overwrite() {
        let store = Store::in_memory();
        store.ensure_bucket("b", false).unwrap();
        let b1 = blob(&store, b"one").await;
        let id1 = b1.id.clone();
        store
            .put("b", "k", data_version(&b1), Some(b1), false)
            .unwrap();
        let b2 = blob(&store, b"two").await;
        let id2 = b2.id.clone();
        let err = store
            .put("b", "k", data_version(&b2), Some(b2), true)
            .unwrap_err();
        assert_eq!(err.code, "FileAlreadyExists");
        // The refused blob is gone, the first one stays.
        assert!(store.blobs.open(&id2).is_err());
        assert!(store.blobs.open(&id1).is_ok());
        let b3 = blob(&store, b"three").await;
        store
            .put("b", "k", data_version(&b3), Some(b3), false)
            .unwrap();
        assert!(store.blobs.open(&id1).is_err());
    }

    #[tokio::test]
    async fn dropped_staging_leaves_nothing_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut s = store.stage().await.unwrap();
        s.write(b"partial").await.unwrap();
        drop(s);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("blobs"))
            .unwrap()
            .collect();
        assert!(left.is_empty());
    }
}
