//! Object data: blobs being written ([`Staging`]), finished but uncommitted ([`StagedBlob`]),
//! composed from existing pieces ([`Pieces`], multipart Complete), and read back ([`BlobData`]).
//! In memory or as files under `blobs/` (see the layout in [`super`]).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

use super::files::sync_dir;
use super::{Store, lock};
use crate::emulator::error::ApiError;
use crate::model::Crc64;

/// Readable object data, opened while the store was locked (so a concurrent overwrite
/// cannot delete it under the reader). A composed blob has several pieces.
pub enum BlobData {
    /// In memory: the pieces in order.
    Memory(Vec<Bytes>),
    /// Open files and their lengths, in order.
    Files(Vec<(std::fs::File, u64)>),
}

/// The pieces (index, offset in the piece, length) that hold `[start, start + len)`.
fn spans(lens: impl Iterator<Item = u64>, start: u64, len: u64) -> Vec<(usize, u64, u64)> {
    let end = start.saturating_add(len);
    let mut out = Vec::new();
    let mut at = 0u64;
    for (i, piece) in lens.enumerate() {
        let (a, b) = (at.max(start), (at + piece).min(end));
        if a < b {
            out.push((i, a - at, b - a));
        }
        at += piece;
        if at >= end {
            break;
        }
    }
    out
}

impl BlobData {
    /// The bytes `[start, start + len)` as a response body.
    pub fn into_body(self, start: u64, len: u64) -> Result<axum::body::Body, ApiError> {
        match self {
            BlobData::Memory(pieces) => {
                let mut out: Vec<Bytes> = spans(pieces.iter().map(|b| b.len() as u64), start, len)
                    .into_iter()
                    .map(|(i, off, n)| pieces[i].slice(off as usize..(off + n) as usize))
                    .collect();
                Ok(match out.len() {
                    0 => axum::body::Body::empty(),
                    1 => axum::body::Body::from(out.remove(0)),
                    _ => axum::body::Body::from_stream(futures_util::stream::iter(
                        out.into_iter().map(Ok::<_, std::io::Error>),
                    )),
                })
            }
            BlobData::Files(files) => {
                let lens: Vec<u64> = files.iter().map(|(_, n)| *n).collect();
                let mut files: Vec<Option<std::fs::File>> =
                    files.into_iter().map(|(f, _)| Some(f)).collect();
                let mut readers = Vec::new();
                for (i, off, n) in spans(lens.into_iter(), start, len) {
                    let Some(mut file) = files[i].take() else {
                        continue;
                    };
                    file.seek(SeekFrom::Start(off))
                        .map_err(|e| ApiError::internal(format!("cannot read object data: {e}")))?;
                    let reader = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), n);
                    readers.push(tokio_util::io::ReaderStream::with_capacity(
                        reader,
                        64 * 1024,
                    ));
                }
                Ok(axum::body::Body::from_stream(
                    futures_util::StreamExt::flatten(futures_util::stream::iter(readers)),
                ))
            }
        }
    }

    /// All bytes (for small internal reads).
    pub fn read_all(self) -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        match self {
            BlobData::Memory(pieces) => pieces.iter().for_each(|b| v.extend_from_slice(b)),
            BlobData::Files(files) => {
                for (mut f, _) in files {
                    f.read_to_end(&mut v)?;
                }
            }
        }
        Ok(v)
    }
}

/// Existing data that becomes one blob without being copied (see [`Store::compose`]).
pub enum Pieces {
    /// In-memory buffers, in order (shared, not copied).
    Memory(Vec<Bytes>),
    /// Files on the store's file system, in order (hard-linked, not copied).
    Files(Vec<PathBuf>),
}

/// In-memory data written in blocks of at most [`MemoryWriter::BLOCK`] bytes: no
/// reallocation (and so no copying) as it grows, whatever the final size.
#[derive(Debug, Default)]
pub(crate) struct MemoryWriter {
    done: Vec<Bytes>,
    current: bytes::BytesMut,
}

impl MemoryWriter {
    /// Block size.
    const BLOCK: usize = 4 * 1024 * 1024;

    /// Appends a chunk.
    pub(crate) fn write(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            if self.current.capacity() == self.current.len() {
                if !self.current.is_empty() {
                    self.done.push(self.current.split().freeze());
                }
                self.current.reserve(Self::BLOCK);
            }
            let room = self.current.capacity() - self.current.len();
            let take = room.min(chunk.len());
            self.current.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
    }

    /// The data, as pieces in order.
    pub(crate) fn finish(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() {
            self.done.push(self.current.freeze());
        }
        self.done
    }
}

#[derive(Debug)]
pub(super) enum Blobs {
    Memory(Mutex<HashMap<String, Vec<Bytes>>>),
    Disk(PathBuf),
}

/// Removes a file, or a directory with what it holds (a composed blob).
pub(super) fn remove_path(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

impl Blobs {
    pub(super) fn remove(&self, id: &str) {
        match self {
            Blobs::Memory(map) => {
                lock(map).remove(id);
            }
            Blobs::Disk(dir) => {
                if let Err(e) = remove_path(&dir.join(id))
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!("cannot remove blob {id}: {e}");
                }
            }
        }
    }

    pub(super) fn open(&self, id: &str) -> Result<BlobData, ApiError> {
        match self {
            Blobs::Memory(map) => lock(map)
                .get(id)
                .cloned()
                .map(BlobData::Memory)
                .ok_or_else(|| ApiError::internal("object data is missing")),
            Blobs::Disk(dir) => Self::open_files(&dir.join(id))
                .map(BlobData::Files)
                .map_err(|e| ApiError::internal(format!("cannot open object data: {e}"))),
        }
    }

    /// A blob file, or the pieces of a composed blob (a directory) in name order.
    fn open_files(path: &Path) -> std::io::Result<Vec<(std::fs::File, u64)>> {
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_dir() {
            return Ok(vec![(file, meta.len())]);
        }
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            names.push(entry?.file_name());
        }
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let f = std::fs::File::open(path.join(name))?;
            let len = f.metadata()?.len();
            out.push((f, len));
        }
        Ok(out)
    }
}

/// A blob being written. Dropping it unfinished removes what was written.
pub struct Staging {
    blobs: Arc<Blobs>,
    id: String,
    /// The running MD5 (taken at `finish`).
    md5: Option<Md5>,
    crc: Crc64,
    size: u64,
    sink: Sink,
}

enum Sink {
    Memory(MemoryWriter),
    Disk {
        file: Option<tokio::fs::File>,
        tmp: PathBuf,
    },
    Done,
}

impl Staging {
    /// Appends a chunk.
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if let Some(md5) = &mut self.md5 {
            md5.update(chunk);
        }
        self.crc.update(chunk);
        self.size += chunk.len() as u64;
        match &mut self.sink {
            Sink::Memory(v) => v.write(chunk),
            Sink::Disk { file: Some(f), .. } => f.write_all(chunk).await?,
            Sink::Disk { file: None, .. } | Sink::Done => {
                return Err(std::io::Error::other("staging already finished"));
            }
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the data durable and returns the blob, not yet referenced by any object.
    pub async fn finish(mut self) -> std::io::Result<StagedBlob> {
        let sink = std::mem::replace(&mut self.sink, Sink::Done);
        match sink {
            Sink::Memory(v) => {
                if let Blobs::Memory(map) = &*self.blobs {
                    lock(map).insert(self.id.clone(), v.finish());
                }
            }
            Sink::Disk { file, tmp } => {
                let result = async {
                    if let Some(mut f) = file {
                        f.flush().await?;
                        f.sync_all().await?;
                    }
                    if let Blobs::Disk(dir) = &*self.blobs {
                        tokio::fs::rename(&tmp, dir.join(&self.id)).await?;
                    }
                    Ok::<_, std::io::Error>(())
                }
                .await;
                if let Err(e) = result {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            }
            Sink::Done => return Err(std::io::Error::other("staging already finished")),
        }
        let md5: [u8; 16] = self
            .md5
            .take()
            .map(|md5| md5.finalize().into())
            .unwrap_or_default();
        Ok(StagedBlob {
            blobs: self.blobs.clone(),
            id: self.id.clone(),
            size: self.size,
            md5,
            crc64: self.crc.value(),
            keep: false,
        })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Sink::Disk { tmp, .. } = &self.sink {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Finished data waiting to be referenced by a version; removed if dropped uncommitted.
pub struct StagedBlob {
    pub(super) blobs: Arc<Blobs>,
    /// Blob ID.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// MD5 of the data (all zeros for a blob made by [`Store::compose`]).
    pub md5: [u8; 16],
    /// CRC-64/XZ of the data.
    pub crc64: u64,
    pub(super) keep: bool,
}

impl StagedBlob {
    /// Upper-case hex MD5 (the PutObject ETag, without quotes).
    pub fn etag(&self) -> String {
        hex::encode_upper(self.md5)
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if !self.keep {
            self.blobs.remove(&self.id);
        }
    }
}

impl Store {
    /// Starts writing a new blob.
    pub async fn stage(&self) -> std::io::Result<Staging> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let sink = match &*self.blobs {
            Blobs::Memory(_) => Sink::Memory(MemoryWriter::default()),
            Blobs::Disk(dir) => {
                let tmp = dir.join(format!(".tmp-{id}"));
                let file = tokio::fs::File::create(&tmp).await?;
                Sink::Disk {
                    file: Some(file),
                    tmp,
                }
            }
        };
        Ok(Staging {
            blobs: self.blobs.clone(),
            id,
            md5: Some(Md5::new()),
            crc: Crc64::new(),
            size: 0,
            sink,
        })
    }

    /// Makes one blob of existing data without copying it (CompleteMultipartUpload): files
    /// are hard-linked into a new blob directory (`blobs/.tmp-<id>/00000…`, every piece and
    /// the directory fsynced, then renamed to `blobs/<id>`), buffers are shared. `size` and
    /// `crc64` describe the whole (the caller combines them from the pieces); its MD5 is left
    /// zero. Blocking (file system calls): run it off the async workers.
    pub fn compose(&self, pieces: Pieces, size: u64, crc64: u64) -> std::io::Result<StagedBlob> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match (&*self.blobs, pieces) {
            (Blobs::Memory(map), Pieces::Memory(buffers)) => {
                lock(map).insert(id.clone(), buffers);
            }
            (Blobs::Disk(dir), Pieces::Files(paths)) => {
                let tmp = dir.join(format!(".tmp-{id}"));
                std::fs::create_dir(&tmp)?;
                let result = (|| {
                    for (i, path) in paths.iter().enumerate() {
                        std::fs::hard_link(path, tmp.join(format!("{i:05}")))?;
                        // The one durability point of the pieces' data (parts are not
                        // fsynced when uploaded).
                        std::fs::File::open(path)?.sync_all()?;
                    }
                    sync_dir(&tmp)?;
                    std::fs::rename(&tmp, dir.join(&id))?;
                    sync_dir(dir)
                })();
                if let Err(e) = result {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Err(e);
                }
            }
            _ => {
                return Err(std::io::Error::other(
                    "pieces and store disagree on memory or disk",
                ));
            }
        }
        Ok(StagedBlob {
            blobs: self.blobs.clone(),
            id,
            size,
            md5: [0; 16],
            crc64,
            keep: false,
        })
    }
}
