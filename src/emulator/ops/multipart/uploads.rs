//! The store of open multipart uploads and their parts, kept apart from objects. On disk:
//! ```text
//! uploads/<upload id>.json   the upload (bucket, key, what Initiate set, its parts)
//! uploads/parts/<id>         one part's data (written to .tmp-<id>, renamed)
//! ```
//! Files are written atomically (temp file, rename), so no half-written part or upload is
//! ever visible. Uploading a part does not fsync: the durability point is Complete, which
//! fsyncs the parts it uses (an emulator need not make every acknowledged part survive a
//! crash). So that a crash can never leave a damaged part behind, parts are checked against
//! their recorded size and CRC-64 at start, and dropped from their upload if they differ;
//! part files nobody references are removed.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::invalid_part;
use crate::emulator::error::ApiError;
use crate::emulator::ops::shared::{ChunkSink, no_such_upload};
use crate::emulator::store::{MemoryWriter, Pieces, StagedBlob, Store, now_ms, write_atomic};
use crate::emulator::{EmulatorHandle, lock};
use crate::model::Crc64;

/// One uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Part {
    /// Upper-case hex MD5 (the ETag without quotes).
    pub(super) etag: String,
    pub(super) size: u64,
    pub(super) crc64: u64,
    pub(super) last_modified_ms: u64,
    /// Data ID (file name under `uploads/parts/`, or memory key).
    pub(super) data: String,
}

/// One open upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Upload {
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) upload_id: String,
    pub(super) initiated_ms: u64,
    pub(super) headers: BTreeMap<String, String>,
    pub(super) meta: BTreeMap<String, String>,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) storage_class: String,
    pub(super) acl: String,
    pub(super) parts: BTreeMap<u32, Part>,
}

/// The open uploads of an emulator.
#[derive(Debug)]
pub(crate) struct Uploads {
    open: Mutex<BTreeMap<String, Upload>>,
    /// Part data in memory (when `root` is `None`).
    memory: Arc<Mutex<HashMap<String, Vec<Bytes>>>>,
    /// `<data_dir>/uploads`.
    root: Option<PathBuf>,
}

pub(super) fn io_err(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("cannot store upload data: {e}"))
}

/// Part data being written; dropping it unfinished removes it.
pub(crate) struct PartWriter {
    id: String,
    md5: Md5,
    crc: Crc64,
    size: u64,
    sink: PartSink,
    memory: Arc<Mutex<HashMap<String, Vec<Bytes>>>>,
}

pub(super) enum PartSink {
    Memory(MemoryWriter),
    Disk {
        file: tokio::fs::File,
        tmp: PathBuf,
        path: PathBuf,
    },
    Done,
}

impl ChunkSink for PartWriter {
    async fn put(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.md5.update(chunk);
        self.crc.update(chunk);
        self.size += chunk.len() as u64;
        match &mut self.sink {
            PartSink::Memory(v) => v.write(chunk),
            PartSink::Disk { file, .. } => file.write_all(chunk).await?,
            PartSink::Done => return Err(std::io::Error::other("part already finished")),
        }
        Ok(())
    }
    fn written(&self) -> u64 {
        self.size
    }
}

impl PartWriter {
    /// The MD5 of the bytes written so far (checked against Content-MD5).
    pub(super) fn md5(&self) -> [u8; 16] {
        self.md5.clone().finalize().into()
    }

    /// Puts the data in place (not fsynced: Complete does that); returns the part, not yet
    /// referenced by its upload.
    pub(super) async fn finish(mut self) -> std::io::Result<Part> {
        match std::mem::replace(&mut self.sink, PartSink::Done) {
            PartSink::Memory(v) => {
                lock(&self.memory).insert(self.id.clone(), v.finish());
            }
            PartSink::Disk {
                mut file,
                tmp,
                path,
            } => {
                let r = async {
                    file.flush().await?;
                    drop(file);
                    tokio::fs::rename(&tmp, &path).await
                }
                .await;
                if let Err(e) = r {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            }
            PartSink::Done => return Err(std::io::Error::other("part already finished")),
        }
        Ok(Part {
            etag: hex::encode_upper(self.md5.clone().finalize()),
            size: self.size,
            crc64: self.crc.value(),
            last_modified_ms: now_ms(),
            data: self.id.clone(),
        })
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        if let PartSink::Disk { tmp, .. } = &self.sink {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Whether a part's file holds exactly the bytes recorded for it (size and CRC-64).
pub(super) fn part_is_intact(path: &Path, part: &Part) -> bool {
    let check = || -> std::io::Result<bool> {
        let mut f = std::fs::File::open(path)?;
        if f.metadata()?.len() != part.size {
            return Ok(false);
        }
        let mut crc = Crc64::new();
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
        }
        Ok(crc.value() == part.crc64)
    };
    check().unwrap_or(false)
}

impl Uploads {
    /// The open uploads of `bucket` whose key starts with `prefix` (ListMultipartUploads).
    pub(super) fn under_prefix(&self, bucket: &str, prefix: &str) -> Vec<Upload> {
        lock(&self.open)
            .values()
            .filter(|u| u.bucket == bucket && u.key.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// How many uploads are open in `bucket`, and how many parts they hold
    /// (GetBucketStat; DeleteBucket refuses a bucket with open uploads).
    pub(crate) fn counts_in(&self, bucket: &str) -> (u64, u64) {
        lock(&self.open)
            .values()
            .filter(|u| u.bucket == bucket)
            .fold((0, 0), |(uploads, parts), u| {
                (uploads + 1, parts + u.parts.len() as u64)
            })
    }

    /// Loads (or creates) `<data_dir>/uploads`, or starts empty in memory.
    pub(crate) fn open(data_dir: Option<&Path>) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let memory = Arc::new(Mutex::new(HashMap::new()));
        let Some(dir) = data_dir else {
            return Ok(Self {
                open: Mutex::new(BTreeMap::new()),
                memory,
                root: None,
            });
        };
        let root = dir.join("uploads");
        let parts_dir = root.join("parts");
        std::fs::create_dir_all(&parts_dir)
            .with_context(|| format!("cannot create {}", parts_dir.display()))?;
        let mut open = BTreeMap::new();
        let mut referenced = std::collections::HashSet::new();
        for f in std::fs::read_dir(&root)? {
            let path = f?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with(".tmp-") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            let mut upload: Upload = serde_json::from_slice(&bytes)
                .with_context(|| format!("corrupt {}", path.display()))?;
            // Parts are not fsynced when uploaded: after a crash one may be short or
            // damaged. Such a part is dropped (as if never uploaded), never used.
            let before = upload.parts.len();
            upload
                .parts
                .retain(|_, part| part_is_intact(&parts_dir.join(&part.data), part));
            if upload.parts.len() != before {
                tracing::warn!(
                    upload_id = %upload.upload_id,
                    dropped = before - upload.parts.len(),
                    "parts that did not survive a restart intact were dropped from their upload"
                );
                let json = serde_json::to_vec(&upload)?;
                write_atomic(&root, &name, &json, true)?;
            }
            referenced.extend(upload.parts.values().map(|p| p.data.clone()));
            open.insert(upload.upload_id.clone(), upload);
        }
        for f in std::fs::read_dir(&parts_dir)? {
            let f = f?;
            if !referenced.contains(&*f.file_name().to_string_lossy()) {
                let _ = std::fs::remove_file(f.path());
            }
        }
        Ok(Self {
            open: Mutex::new(open),
            memory,
            root: Some(root),
        })
    }

    /// Writes the upload's JSON; `durable` for Initiate (parts are made durable at Complete).
    pub(super) fn persist(&self, upload: &Upload, durable: bool) -> Result<(), ApiError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let json = serde_json::to_vec(upload).map_err(|e| ApiError::internal(e.to_string()))?;
        write_atomic(root, &format!("{}.json", upload.upload_id), &json, durable).map_err(io_err)
    }

    pub(super) fn forget(&self, upload: &Upload) {
        if let Some(root) = &self.root {
            let _ = std::fs::remove_file(root.join(format!("{}.json", upload.upload_id)));
            let _ = std::fs::File::open(root).and_then(|d| d.sync_all());
        }
        for p in upload.parts.values() {
            self.remove_data(&p.data);
        }
    }

    pub(super) fn remove_data(&self, id: &str) {
        match &self.root {
            None => {
                lock(&self.memory).remove(id);
            }
            Some(root) => {
                let _ = std::fs::remove_file(root.join("parts").join(id));
            }
        }
    }

    pub(super) async fn writer(&self) -> Result<PartWriter, ApiError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let sink = match &self.root {
            None => PartSink::Memory(MemoryWriter::default()),
            Some(root) => {
                let dir = root.join("parts");
                let tmp = dir.join(format!(".tmp-{id}"));
                let file = tokio::fs::File::create(&tmp).await.map_err(io_err)?;
                PartSink::Disk {
                    file,
                    tmp,
                    path: dir.join(&id),
                }
            }
        };
        Ok(PartWriter {
            id,
            md5: Md5::new(),
            crc: Crc64::new(),
            size: 0,
            sink,
            memory: self.memory.clone(),
        })
    }

    /// The upload, checked to belong to `bucket`/`key`.
    pub(super) fn get(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Upload, ApiError> {
        lock(&self.open)
            .get(upload_id)
            .filter(|u| u.bucket == bucket && u.key == key)
            .cloned()
            .ok_or_else(no_such_upload)
    }

    pub(super) fn insert(&self, upload: Upload) -> Result<(), ApiError> {
        let mut open = lock(&self.open);
        self.persist(&upload, true)?;
        open.insert(upload.upload_id.clone(), upload);
        Ok(())
    }

    /// Stores a finished part (replacing the same number); removes its data on failure.
    pub(super) fn commit_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        part: Part,
    ) -> Result<(), ApiError> {
        let replaced = {
            let mut open = lock(&self.open);
            let Some(upload) = open
                .get_mut(upload_id)
                .filter(|u| u.bucket == bucket && u.key == key)
            else {
                drop(open);
                self.remove_data(&part.data);
                return Err(no_such_upload());
            };
            let data = part.data.clone();
            let old = upload.parts.insert(number, part);
            if let Err(e) = self.persist(upload, false) {
                match old {
                    Some(old) => upload.parts.insert(number, old),
                    None => upload.parts.remove(&number),
                };
                drop(open);
                self.remove_data(&data);
                return Err(e);
            }
            old
        };
        if let Some(old) = replaced {
            self.remove_data(&old.data);
        }
        Ok(())
    }

    /// Makes `chosen` (part number, data ID), the parts of an open upload, one blob of the
    /// store without copying them. Holds the upload lock throughout, so a concurrent
    /// re-upload or Abort cannot remove a part's data under it. Blocking.
    pub(super) fn compose(
        &self,
        store: &Store,
        (bucket, key, upload_id): (&str, &str, &str),
        chosen: &[(u32, String)],
        size: u64,
        crc64: u64,
    ) -> Result<StagedBlob, ApiError> {
        let open = lock(&self.open);
        let upload = open
            .get(upload_id)
            .filter(|u| u.bucket == bucket && u.key == key)
            .ok_or_else(no_such_upload)?;
        for (n, data) in chosen {
            if upload.parts.get(n).is_none_or(|p| p.data != *data) {
                return Err(invalid_part(*n));
            }
        }
        let pieces = match &self.root {
            None => {
                let memory = lock(&self.memory);
                let mut buffers = Vec::new();
                for (_, data) in chosen {
                    let part = memory
                        .get(data)
                        .ok_or_else(|| ApiError::internal("part data is missing"))?;
                    buffers.extend(part.iter().cloned());
                }
                Pieces::Memory(buffers)
            }
            Some(root) => Pieces::Files(
                chosen
                    .iter()
                    .map(|(_, data)| root.join("parts").join(data))
                    .collect(),
            ),
        };
        store.compose(pieces, size, crc64).map_err(io_err)
    }

    /// Removes an upload if it is still open (after Complete or on Abort).
    pub(super) fn remove(&self, upload_id: &str) -> Option<Upload> {
        let upload = lock(&self.open).remove(upload_id)?;
        self.forget(&upload);
        Some(upload)
    }
}

impl EmulatorHandle {
    /// Every open (initiated, neither completed nor aborted) multipart upload, as
    /// `(bucket, key, upload_id)`, sorted by bucket, key and initiation.
    pub fn open_uploads(&self) -> Vec<(String, String, String)> {
        let open = lock(&self.state.uploads.open);
        let mut list: Vec<&Upload> = open.values().collect();
        list.sort_by(|a, b| {
            (&a.bucket, &a.key, a.initiated_ms, &a.upload_id).cmp(&(
                &b.bucket,
                &b.key,
                b.initiated_ms,
                &b.upload_id,
            ))
        });
        list.into_iter()
            .map(|u| (u.bucket.clone(), u.key.clone(), u.upload_id.clone()))
            .collect()
    }
}
