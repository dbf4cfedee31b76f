//! Multipart uploads: InitiateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.
//!
//! Open uploads and their parts live in [`uploads`] (the upload store); ListParts and
//! ListMultipartUploads in [`listing`]; the handlers that change uploads here.
//!
//! Complete copies no data: it makes the parts one blob ([`Store::compose`]: hard links on
//! disk, shared buffers in memory), commits it with the store's `put` (so forbid-overwrite
//! and versioning behave as for PutObject), then drops the upload.

mod listing;
mod uploads;

pub(super) use listing::{list_parts, list_uploads};
pub(crate) use uploads::Uploads;
use uploads::{Part, Upload, io_err};

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use md5::{Digest, Md5};
use serde::Deserialize;

use super::request::{
    content_md5, digest_mismatch, entity_headers, read_small_body, write_options,
};
use super::shared::{
    CopySource, check_source_conditions, copy_source, el, has_root, iso8601, listed_key,
    no_such_upload, pump, url_encoding, xml_response,
};
use super::{Ctx, base_response, blocking, finish, header, q_get, set, version_header};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::store::{Kind, Version, now_ms};
use crate::model::crc64_combine;
use crate::oss::protocol;
use crate::oss::protocol::limit::{MAX_PART_NUMBER, MAX_SINGLE_REQUEST_BYTES, MIN_PART_BYTES};

/// Largest CompleteMultipartUpload body. OSS completes uploads of up to 10,000 parts, and
/// one `<Part><PartNumber>10000</PartNumber><ETag>"…32 hex…"</ETag></Part>` is 79 bytes
/// (89 with the quotes escaped as `&quot;`, as some SDKs send them); 256 bytes a part leaves
/// room for indentation and line breaks. (The tagging limit of 64 KiB held only ~745 parts.)
const MAX_COMPLETE_BODY: usize = MAX_PART_NUMBER as usize * 256;

// ---- handlers -----------------------------------------------------------------------------

fn upload_id(ctx: &Ctx) -> Result<&str, ApiError> {
    q_get(&ctx.query, "uploadId")
        .filter(|s| !s.is_empty())
        .ok_or_else(no_such_upload)
}

pub(super) async fn initiate(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let opts = write_options(&ctx.headers, &ctx.storage_class)?;
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
        let got = writer.md5();
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
    set(rh, protocol::header::HASH_CRC64ECMA, &crc.to_string());
    if let Some(src) = copy
        && let Some(v) = &src.version_id
    {
        set(rh, protocol::header::COPY_SOURCE_VERSION_ID, v);
    }
    Ok(resp)
}

/// Parses `x-oss-copy-source-range: bytes=a-b` against the source size; `None` = whole.
fn copy_range(ctx: &Ctx, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(raw) = header(&ctx.headers, protocol::header::COPY_SOURCE_RANGE) else {
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
    // An archive source must be restored first, as for GetObject.
    super::restore::check_readable(data_version)?;
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
    if has_root(xml, "CompleteMultipartUpload") != Some(true) {
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
    let opts = write_options(&ctx.headers, &ctx.storage_class)?;
    let complete_all = header(&ctx.headers, protocol::header::COMPLETE_ALL)
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
    version.acl = if ctx.headers.contains_key(protocol::header::ACL) {
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
    set(rh, protocol::header::HASH_CRC64ECMA, &crc.to_string());
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
