//! Multipart uploads: InitiateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.
//!
//! Open uploads and their parts are kept apart from objects. On disk:
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
//!
//! Complete copies no data: it makes the parts one blob ([`Store::compose`]: hard links on
//! disk, shared buffers in memory), commits it with the store's `put` (so forbid-overwrite
//! and versioning behave as for PutObject), then drops the upload.

use crate::oss::protocol::limit::{MAX_PART_NUMBER, MAX_SINGLE_REQUEST_BYTES, MIN_PART_BYTES};
use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::request::{
    content_md5, digest_mismatch, entity_headers, read_small_body, write_options,
};
use super::shared::{
    ChunkSink, CopySource, check_source_conditions, copy_source, el, iso8601, listed_key,
    no_such_upload, pump, url_encoding, xml_response,
};
use super::{Ctx, base_response, blocking, finish, header, q_get, set, version_header};
use crate::emulator::error::ApiError;
use crate::emulator::store::{
    Kind, MemoryWriter, Pieces, StagedBlob, Store, Version, now_ms, write_atomic,
};
use crate::emulator::{EmulatorHandle, State, lock};
use crate::model::{Crc64, crc64_combine};

/// Largest CompleteMultipartUpload body. OSS completes uploads of up to 10,000 parts, and
/// one `<Part><PartNumber>10000</PartNumber><ETag>"…32 hex…"</ETag></Part>` is 79 bytes
/// (89 with the quotes escaped as `&quot;`, as some SDKs send them); 256 bytes a part leaves
/// room for indentation and line breaks. (The tagging limit of 64 KiB held only ~745 parts.)
const MAX_COMPLETE_BODY: usize = MAX_PART_NUMBER as usize * 256;
/// Default and largest `max-parts` / `max-uploads`.
const MAX_LIST: usize = 1000;

/// One uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Part {
    /// Upper-case hex MD5 (the ETag without quotes).
    etag: String,
    size: u64,
    crc64: u64,
    last_modified_ms: u64,
    /// Data ID (file name under `uploads/parts/`, or memory key).
    data: String,
}

/// One open upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Upload {
    bucket: String,
    key: String,
    upload_id: String,
    initiated_ms: u64,
    headers: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    storage_class: String,
    acl: String,
    parts: BTreeMap<u32, Part>,
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

fn io_err(e: std::io::Error) -> ApiError {
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

enum PartSink {
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
    /// Puts the data in place (not fsynced: Complete does that); returns the part, not yet
    /// referenced by its upload.
    async fn finish(mut self) -> std::io::Result<Part> {
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
fn part_is_intact(path: &Path, part: &Part) -> bool {
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
    fn persist(&self, upload: &Upload, durable: bool) -> Result<(), ApiError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let json = serde_json::to_vec(upload).map_err(|e| ApiError::internal(e.to_string()))?;
        write_atomic(root, &format!("{}.json", upload.upload_id), &json, durable).map_err(io_err)
    }

    fn forget(&self, upload: &Upload) {
        if let Some(root) = &self.root {
            let _ = std::fs::remove_file(root.join(format!("{}.json", upload.upload_id)));
            let _ = std::fs::File::open(root).and_then(|d| d.sync_all());
        }
        for p in upload.parts.values() {
            self.remove_data(&p.data);
        }
    }

    fn remove_data(&self, id: &str) {
        match &self.root {
            None => {
                lock(&self.memory).remove(id);
            }
            Some(root) => {
                let _ = std::fs::remove_file(root.join("parts").join(id));
            }
        }
    }

    async fn writer(&self) -> Result<PartWriter, ApiError> {
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
    fn get(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Upload, ApiError> {
        lock(&self.open)
            .get(upload_id)
            .filter(|u| u.bucket == bucket && u.key == key)
            .cloned()
            .ok_or_else(no_such_upload)
    }

    fn insert(&self, upload: Upload) -> Result<(), ApiError> {
        let mut open = lock(&self.open);
        self.persist(&upload, true)?;
        open.insert(upload.upload_id.clone(), upload);
        Ok(())
    }

    /// Stores a finished part (replacing the same number); removes its data on failure.
    fn commit_part(
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
    fn compose(
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
    fn remove(&self, upload_id: &str) -> Option<Upload> {
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

// ---- handlers -----------------------------------------------------------------------------

fn upload_id(ctx: &Ctx) -> Result<&str, ApiError> {
    q_get(&ctx.query, "uploadId")
        .filter(|s| !s.is_empty())
        .ok_or_else(no_such_upload)
}

pub(super) async fn initiate(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let opts = write_options(&ctx.headers)?;
    let upload = Upload {
        bucket: ctx.bucket.clone(),
        key: ctx.key.clone(),
        upload_id: uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase(),
        initiated_ms: now_ms(),
        headers: entity_headers(&ctx.headers),
        meta: opts.meta,
        tags: opts.tags,
        storage_class: opts.storage_class,
        acl: opts.acl,
        parts: BTreeMap::new(),
    };
    let id = upload.upload_id.clone();
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.uploads.insert(upload))
        .await
        .map_err(|e| ApiError::internal(format!("upload task failed: {e}")))??;
    let url = url_encoding(&ctx.query);
    let mut xml = String::from("<InitiateMultipartUploadResult>");
    xml.push_str(&el("Bucket", &ctx.bucket));
    xml.push_str(&el("Key", &listed_key(&ctx.key, url)));
    xml.push_str(&el("UploadId", &id));
    if url {
        xml.push_str(&el("EncodingType", "url"));
    }
    xml.push_str("</InitiateMultipartUploadResult>");
    xml_response(xml)
}

fn part_number(ctx: &Ctx) -> Result<u32, ApiError> {
    let raw = q_get(&ctx.query, "partNumber").unwrap_or("");
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive."
            ))
            .with("ArgumentName", "partNumber")
            .with("ArgumentValue", raw)
        })
}

pub(super) async fn upload_part(
    state: &Arc<State>,
    ctx: &Ctx,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let number = part_number(ctx)?;
    let id = upload_id(ctx)?.to_owned();
    let uploads = &state.uploads;
    uploads.get(&ctx.bucket, &ctx.key, &id)?;
    let md5 = content_md5(&ctx.headers)?;
    if let Some(len) = header(&ctx.headers, "content-length").and_then(|v| v.parse::<u64>().ok())
        && len > MAX_SINGLE_REQUEST_BYTES
    {
        return Err(ApiError::entity_too_large());
    }
    let mut writer = uploads.writer().await?;
    pump(
        body.take().unwrap_or_default(),
        &mut writer,
        MAX_SINGLE_REQUEST_BYTES,
    )
    .await?;
    if let Some(expected) = md5 {
        let got: [u8; 16] = writer.md5.clone().finalize().into();
        if got != expected {
            return Err(digest_mismatch());
        }
    }
    let part = writer.finish().await.map_err(io_err)?;
    respond_part(state, ctx, &id, number, part, None).await
}

/// Commits a part and answers UploadPart (`copy == None`) or UploadPartCopy.
async fn respond_part(
    state: &Arc<State>,
    ctx: &Ctx,
    id: &str,
    number: u32,
    part: Part,
    copy: Option<&Version>,
) -> Result<Response, ApiError> {
    let etag = part.etag.clone();
    let (crc, modified) = (part.crc64, part.last_modified_ms);
    let md5_b64 = hex::decode(&etag)
        .map(|raw| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw))
        .unwrap_or_default();
    let (st, bucket, key, id) = (
        state.clone(),
        ctx.bucket.clone(),
        ctx.key.clone(),
        id.to_owned(),
    );
    tokio::task::spawn_blocking(move || st.uploads.commit_part(&bucket, &key, &id, number, part))
        .await
        .map_err(|e| ApiError::internal(format!("upload task failed: {e}")))??;
    let mut resp = match copy {
        None => finish(base_response(StatusCode::OK), Body::empty())?,
        Some(_) => xml_response(format!(
            "<CopyPartResult>{}{}</CopyPartResult>",
            el("LastModified", &iso8601(modified)),
            el("ETag", &format!("\"{etag}\""))
        ))?,
    };
    let rh = resp.headers_mut();
    set(rh, "etag", &format!("\"{etag}\""));
    set(rh, "content-md5", &md5_b64);
    set(rh, "x-oss-hash-crc64ecma", &crc.to_string());
    if let Some(src) = copy
        && let Some(v) = &src.version_id
    {
        set(rh, "x-oss-copy-source-version-id", v);
    }
    Ok(resp)
}

/// Parses `x-oss-copy-source-range: bytes=a-b` against the source size; `None` = whole.
fn copy_range(ctx: &Ctx, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(raw) = header(&ctx.headers, "x-oss-copy-source-range") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The requested range is not satisfiable.",
        )
        .with("ArgumentValue", raw)
    };
    let spec = raw.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end: u64 = if b.trim().is_empty() {
        size.checked_sub(1).ok_or_else(bad)?
    } else {
        b.trim().parse().map_err(|_| bad())?
    };
    if start > end || end >= size {
        return Err(bad());
    }
    Ok(Some((start, end)))
}

pub(super) async fn upload_part_copy(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let number = part_number(ctx)?;
    let id = upload_id(ctx)?.to_owned();
    let uploads = &state.uploads;
    uploads.get(&ctx.bucket, &ctx.key, &id)?;
    let CopySource {
        bucket,
        key,
        version_id,
    } = copy_source(&ctx.headers)?;
    let found = state
        .store
        .read(&bucket, &key, version_id.as_deref(), true, true)?;
    let data_version = found.target.as_ref().unwrap_or(&found.version);
    let Kind::Data {
        object_type,
        size,
        etag,
        ..
    } = &data_version.kind
    else {
        return Err(ApiError::internal("unexpected object kind"));
    };
    if object_type == "Appendable" {
        return Err(super::copy::appendable_source());
    }
    check_source_conditions(&ctx.headers, etag, data_version.last_modified_ms)?;
    let (start, len) = match copy_range(ctx, *size)? {
        Some((a, b)) => (a, b - a + 1),
        None => (0, *size),
    };
    let Some(data) = found.data else {
        return Err(ApiError::internal("source data is missing"));
    };
    let mut writer = uploads.writer().await?;
    pump(
        data.into_body(start, len)?,
        &mut writer,
        MAX_SINGLE_REQUEST_BYTES,
    )
    .await?;
    let part = writer.finish().await.map_err(io_err)?;
    respond_part(state, ctx, &id, number, part, Some(&found.version)).await
}

#[derive(Deserialize)]
struct CompleteXml {
    #[serde(rename = "Part", default)]
    parts: Vec<PartXml>,
}

#[derive(Deserialize)]
struct PartXml {
    #[serde(rename = "PartNumber", default)]
    number: String,
    #[serde(rename = "ETag", default)]
    etag: String,
}

/// The `(number, etag)` list of a CompleteMultipartUpload body.
fn parse_complete(bytes: &[u8]) -> Result<Vec<(u32, String)>, ApiError> {
    let malformed = ApiError::malformed_xml;
    let xml = std::str::from_utf8(bytes).map_err(|_| malformed())?;
    let mut root = xml.trim_start_matches('\u{feff}').trim_start();
    while let Some(rest) = root
        .strip_prefix("<?")
        .or_else(|| root.strip_prefix("<!--"))
    {
        let end = rest.find('>').ok_or_else(malformed)?;
        root = rest[end + 1..].trim_start();
    }
    if !root.starts_with("<CompleteMultipartUpload") {
        return Err(malformed());
    }
    let doc: CompleteXml = quick_xml::de::from_str(xml).map_err(|_| malformed())?;
    let mut out = Vec::with_capacity(doc.parts.len());
    for p in doc.parts {
        let n = p.number.trim().parse::<u32>().map_err(|_| malformed())?;
        out.push((n, p.etag.trim().trim_matches('"').to_owned()));
    }
    if out.is_empty() {
        return Err(malformed());
    }
    Ok(out)
}

fn invalid_part(number: u32) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidPart",
        "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.",
    )
    .with("PartNumber", number.to_string())
}

pub(super) async fn complete(
    state: &Arc<State>,
    ctx: &Ctx,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let id = upload_id(ctx)?.to_owned();
    let uploads = &state.uploads;
    let upload = uploads.get(&ctx.bucket, &ctx.key, &id)?;
    let opts = write_options(&ctx.headers)?;
    let complete_all = header(&ctx.headers, "x-oss-complete-all")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"));
    let bytes = read_small_body(
        body.take().unwrap_or_default(),
        &ctx.headers,
        MAX_COMPLETE_BODY,
    )
    .await
    .map_err(|e| {
        if e.code == "MalformedXML" {
            ApiError::malformed_xml()
        } else {
            e
        }
    })?;
    let listed: Vec<(u32, String)> = if complete_all {
        if !bytes.is_empty() {
            return Err(ApiError::invalid_argument(
                "Should not speficy both complete all header and http body.",
            )
            .ec("0042-00000216"));
        }
        if upload.parts.is_empty() {
            return Err(ApiError::invalid_argument(
                "There is no part uploaded to complete.",
            ));
        }
        upload
            .parts
            .iter()
            .map(|(n, p)| (*n, p.etag.clone()))
            .collect()
    } else {
        parse_complete(&bytes)?
    };
    if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts list must specified in order by part number.",
        )
        .ec("0042-00000209"));
    }
    let mut chosen = Vec::with_capacity(listed.len());
    for (n, etag) in &listed {
        match upload.parts.get(n) {
            Some(p) if p.etag.eq_ignore_ascii_case(etag) => chosen.push((*n, p.clone())),
            _ => return Err(invalid_part(*n)),
        }
    }
    let last = chosen.len() - 1;
    for (i, (n, p)) in chosen.iter().enumerate() {
        if i < last && p.size < MIN_PART_BYTES {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "EntityTooSmall",
                "Your proposed upload smaller than the minimum allowed object size.",
            )
            .ec("0042-00000213")
            .with("PartNumber", n.to_string())
            .with("MinSizeAllowed", MIN_PART_BYTES.to_string())
            .with("ProposedSize", p.size.to_string()));
        }
    }
    // The parts become the object's data as they are (no copy); its size and CRC-64 follow
    // from theirs, its ETag from their MD5s.
    let total: u64 = chosen.iter().map(|(_, p)| p.size).sum();
    let crc64 = chosen
        .iter()
        .fold(0, |crc, (_, p)| crc64_combine(crc, p.crc64, p.size));
    let pieces: Vec<(u32, String)> = chosen.iter().map(|(n, p)| (*n, p.data.clone())).collect();
    let (st, bucket, key, id2) = (
        state.clone(),
        ctx.bucket.clone(),
        ctx.key.clone(),
        id.clone(),
    );
    let blob = tokio::task::spawn_blocking(move || {
        st.uploads
            .compose(&st.store, (&bucket, &key, &id2), &pieces, total, crc64)
    })
    .await
    .map_err(|e| ApiError::internal(format!("upload task failed: {e}")))??;
    let mut md5s = Md5::new();
    for (_, p) in &chosen {
        md5s.update(hex::decode(&p.etag).unwrap_or_default());
    }
    let etag = format!("{}-{}", hex::encode_upper(md5s.finalize()), chosen.len());
    let mut version = Version::new(Kind::Data {
        object_type: "Multipart".to_owned(),
        blob: blob.id.clone(),
        size: blob.size,
        etag: etag.clone(),
        crc64: blob.crc64,
    });
    version.headers = upload.headers.clone();
    version.meta = upload.meta.clone();
    version.tags = upload.tags.clone();
    version.storage_class = upload.storage_class.clone();
    version.acl = if ctx.headers.contains_key("x-oss-object-acl") {
        opts.acl
    } else {
        upload.acl.clone()
    };
    let crc = blob.crc64;
    let (bucket, key, forbid) = (ctx.bucket.clone(), ctx.key.clone(), opts.forbid_overwrite);
    let stored = blocking(state, move |s| {
        s.put(&bucket, &key, version, Some(blob), forbid)
    })
    .await?;
    let st = state.clone();
    let id2 = id.clone();
    let _ = tokio::task::spawn_blocking(move || st.uploads.remove(&id2)).await;
    let url = url_encoding(&ctx.query);
    let mut xml = String::from("<CompleteMultipartUploadResult>");
    if url {
        xml.push_str(&el("EncodingType", "url"));
    }
    let host = header(&ctx.headers, "host").unwrap_or("oss-emulator");
    xml.push_str(&el(
        "Location",
        &format!(
            "http://{host}/{}/{}",
            ctx.bucket,
            crate::oss::sign::uri_encode(&ctx.key, true)
        ),
    ));
    xml.push_str(&el("Bucket", &ctx.bucket));
    xml.push_str(&el("Key", &listed_key(&ctx.key, url)));
    xml.push_str(&el("ETag", &format!("\"{etag}\"")));
    xml.push_str("</CompleteMultipartUploadResult>");
    let mut resp = xml_response(xml)?;
    let rh = resp.headers_mut();
    set(rh, "etag", &format!("\"{etag}\""));
    set(rh, "x-oss-hash-crc64ecma", &crc.to_string());
    version_header(rh, &stored);
    Ok(resp)
}

pub(super) async fn abort(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let id = upload_id(ctx)?.to_owned();
    state.uploads.get(&ctx.bucket, &ctx.key, &id)?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.uploads.remove(&id))
        .await
        .map_err(|e| ApiError::internal(format!("upload task failed: {e}")))?
        .ok_or_else(no_such_upload)?;
    finish(base_response(StatusCode::NO_CONTENT), Body::empty())
}

/// A non-negative integer query parameter, or InvalidArgument.
fn q_number(query: &[(String, String)], name: &str) -> Result<Option<u64>, ApiError> {
    match query.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) if v.is_empty() => Ok(None),
        Some((_, v)) => v.parse::<u64>().map(Some).map_err(|_| {
            ApiError::invalid_argument(format!("{name} must be a non-negative integer."))
                .with("ArgumentName", name)
                .with("ArgumentValue", v.clone())
        }),
    }
}

pub(super) fn list_parts(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let id = upload_id(ctx)?;
    let upload = state.uploads.get(&ctx.bucket, &ctx.key, id)?;
    let max =
        q_number(&ctx.query, "max-parts")?.map_or(MAX_LIST, |n| (n as usize).clamp(1, MAX_LIST));
    let marker = q_number(&ctx.query, "part-number-marker")?.unwrap_or(0);
    let url = url_encoding(&ctx.query);
    let after: Vec<(&u32, &Part)> = upload
        .parts
        .iter()
        .filter(|(n, _)| u64::from(**n) > marker)
        .collect();
    let truncated = after.len() > max;
    let page = &after[..after.len().min(max)];
    let next = page.last().map_or(marker, |(n, _)| u64::from(**n));
    let mut xml = String::from("<ListPartsResult>");
    if url {
        xml.push_str(&el("EncodingType", "url"));
    }
    xml.push_str(&el("Bucket", &ctx.bucket));
    xml.push_str(&el("Key", &listed_key(&ctx.key, url)));
    xml.push_str(&el("UploadId", id));
    xml.push_str(&el("StorageClass", &upload.storage_class));
    xml.push_str(&el("PartNumberMarker", &marker.to_string()));
    xml.push_str(&el("NextPartNumberMarker", &next.to_string()));
    xml.push_str(&el("MaxParts", &max.to_string()));
    xml.push_str(&el("IsTruncated", if truncated { "true" } else { "false" }));
    for (n, p) in page {
        xml.push_str("<Part>");
        xml.push_str(&el("PartNumber", &n.to_string()));
        xml.push_str(&el("LastModified", &iso8601(p.last_modified_ms)));
        xml.push_str(&el("ETag", &format!("\"{}\"", p.etag)));
        xml.push_str(&el("HashCrc64ecma", &p.crc64.to_string()));
        xml.push_str(&el("Size", &p.size.to_string()));
        xml.push_str("</Part>");
    }
    xml.push_str("</ListPartsResult>");
    xml_response(xml)
}

pub(super) fn list_uploads(
    state: &Arc<State>,
    bucket: &str,
    query: &[(String, String)],
) -> Result<Response, ApiError> {
    state.store.is_versioned(bucket)?;
    let get = |n: &str| {
        query
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let (prefix, delimiter) = (get("prefix"), get("delimiter"));
    let (key_marker, id_marker) = (get("key-marker"), get("upload-id-marker"));
    let max = q_number(query, "max-uploads")?.map_or(MAX_LIST, |n| (n as usize).clamp(1, MAX_LIST));
    let url = url_encoding(query);
    let mut all: Vec<Upload> = lock(&state.uploads.open)
        .values()
        .filter(|u| u.bucket == bucket && u.key.starts_with(prefix))
        .cloned()
        .collect();
    // By key, then by upload ID: OSS continues after `key-marker` with "the same key and
    // an Upload ID greater than upload-id-marker", so pages only line up in this order.
    all.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
    // Entries after the markers: (key, upload id) or a common prefix.
    enum Entry {
        Upload(Upload),
        Prefix(String),
    }
    let mut entries: Vec<Entry> = Vec::new();
    for u in all {
        let rolled_up = (!delimiter.is_empty())
            .then(|| u.key[prefix.len()..].find(delimiter))
            .flatten()
            .map(|pos| u.key[..prefix.len() + pos + delimiter.len()].to_owned());
        let after = match &rolled_up {
            // A common prefix is a marker of its own (NextKeyMarker on the page that ended
            // with it): the next page starts after every key under it.
            Some(common) => key_marker.is_empty() || common.as_str() > key_marker,
            None if key_marker.is_empty() => true,
            None if id_marker.is_empty() => u.key.as_str() > key_marker,
            None => {
                u.key.as_str() > key_marker
                    || (u.key == key_marker && u.upload_id.as_str() > id_marker)
            }
        };
        if !after {
            continue;
        }
        match rolled_up {
            Some(common) => {
                if !matches!(entries.last(), Some(Entry::Prefix(last)) if *last == common) {
                    entries.push(Entry::Prefix(common));
                }
            }
            None => entries.push(Entry::Upload(u)),
        }
    }
    let truncated = entries.len() > max;
    entries.truncate(max);
    let (next_key, next_id) = match entries.last() {
        Some(Entry::Upload(u)) => (u.key.clone(), u.upload_id.clone()),
        Some(Entry::Prefix(p)) => (p.clone(), String::new()),
        None => (String::new(), String::new()),
    };
    let mut xml = String::from("<ListMultipartUploadsResult>");
    if url {
        xml.push_str(&el("EncodingType", "url"));
    }
    xml.push_str(&el("Bucket", bucket));
    xml.push_str(&el("KeyMarker", &listed_key(key_marker, url)));
    xml.push_str(&el("UploadIdMarker", id_marker));
    xml.push_str(&el("NextKeyMarker", &listed_key(&next_key, url)));
    xml.push_str(&el("NextUploadIdMarker", &next_id));
    xml.push_str(&el("Delimiter", &listed_key(delimiter, url)));
    xml.push_str(&el("Prefix", &listed_key(prefix, url)));
    xml.push_str(&el("MaxUploads", &max.to_string()));
    xml.push_str(&el("IsTruncated", if truncated { "true" } else { "false" }));
    for e in &entries {
        match e {
            Entry::Upload(u) => {
                xml.push_str("<Upload>");
                xml.push_str(&el("Key", &listed_key(&u.key, url)));
                xml.push_str(&el("UploadId", &u.upload_id));
                xml.push_str(&el("StorageClass", &u.storage_class));
                xml.push_str(&el("Initiated", &iso8601(u.initiated_ms)));
                xml.push_str("</Upload>");
            }
            Entry::Prefix(p) => {
                xml.push_str("<CommonPrefixes>");
                xml.push_str(&el("Prefix", &listed_key(p, url)));
                xml.push_str("</CommonPrefixes>");
            }
        }
    }
    xml.push_str("</ListMultipartUploadsResult>");
    xml_response(xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_xml() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"AB"</ETag></Part>
<Part><PartNumber>5</PartNumber><ETag>&quot;CD&quot;</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(
            parse_complete(xml).unwrap(),
            vec![(1, "AB".to_owned()), (5, "CD".to_owned())]
        );
        assert!(parse_complete(b"<Other><Part><PartNumber>1</PartNumber></Part></Other>").is_err());
        assert!(parse_complete(b"<CompleteMultipartUpload></CompleteMultipartUpload>").is_err());
        assert!(parse_complete(b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part></CompleteMultipartUpload>").is_err());
        assert!(parse_complete(b"not xml").is_err());
    }

    mod proptests {
        use proptest::{collection::btree_map, prelude::*};

        use super::*;
        use crate::oss::ops::multipart::{CompletedPart, complete_multipart_upload_xml};

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn parse_complete_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = parse_complete(&bytes);
            }

            #[test]
            fn parse_complete_never_panics_on_markup_soup(
                xml in "(<CompleteMultipartUpload>|<Part>|</Part>|<PartNumber>|</PartNumber>|<ETag>|</ETag>|<\\?xml ?>|<!--|-->|&amp;|&quot;|&#[0-9x]{0,4};|[0-9]{1,3}|\"|<|>| ){0,24}",
            ) {
                let _ = parse_complete(xml.as_bytes());
            }

            /// What the gateway sends in CompleteMultipartUpload is what the emulator reads.
            #[test]
            fn the_gateways_part_list_round_trips(
                parts in btree_map(1u32..=10_000, "[A-Za-z0-9&<>'=+/-]{1,40}", 1..20),
            ) {
                let completed: Vec<CompletedPart> = parts
                    .iter()
                    .rev()
                    .map(|(n, etag)| CompletedPart { part_number: *n, etag: format!("\"{etag}\"") })
                    .collect();
                let xml = complete_multipart_upload_xml(&completed);
                let parsed = parse_complete(xml.as_bytes()).unwrap();
                let expected: Vec<(u32, String)> = parts.into_iter().collect();
                prop_assert_eq!(parsed, expected);
            }
        }
    }
}
