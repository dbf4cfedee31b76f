//! CopyObject: `PUT /key` with `x-oss-copy-source: /bucket/key[?versionId=…]`.
//!
//! * `x-oss-metadata-directive`: `COPY` (default: the source's entity headers and user
//!   metadata) or `REPLACE` (this request's); `x-oss-tagging-directive`: `Copy` (default)
//!   or `Replace` (this request's `x-oss-tagging`; absent or empty = no tags). Values are
//!   matched case-insensitively; anything else is InvalidArgument.
//! * Storage class and ACL come from this request (`x-oss-storage-class` defaults to the
//!   source's, `x-oss-object-acl` to `default`).
//! * The source is read without following symlinks: copying a symlink copies the link.
//! * The four `x-oss-copy-source-if-*` headers are checked against the source (412).
//! * Appendable sources are refused (OSS: "CopyObject cannot be performed on appendable
//!   objects"); the exact OSS error code is not documented, InvalidArgument is used.
//! * Source = destination in an unversioned bucket: metadata/tags are rewritten in place
//!   (same data, same ETag); elsewhere the data is copied into a new blob and committed
//!   like PutObject (forbid-overwrite, new version in versioned buckets).
//! * Unknown `x-oss-copy-source-*` headers are ignored (ali-oss sends some).

use crate::oss::protocol;
use std::sync::Arc;

use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::request::{entity_headers, write_options};
use super::shared::{
    CopySource, check_source_conditions, copy_source, el, iso8601, stage_body, xml_response,
};
use super::{Ctx, blocking, set};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::store::{Kind, Version};

/// 400 for an appendable copy source.
pub(crate) fn appendable_source() -> ApiError {
    ApiError::invalid_argument("The source object is an appendable object, which cannot be copied.")
}

/// `Some(true)` = replace, `Some(false)` = copy, from a directive header.
fn directive(h: &HeaderMap, name: &str) -> Result<bool, ApiError> {
    let Some(v) = h.get(name) else {
        return Ok(false);
    };
    match v.to_str().map(str::trim) {
        Ok(s) if s.eq_ignore_ascii_case("copy") => Ok(false),
        Ok(s) if s.eq_ignore_ascii_case("replace") => Ok(true),
        _ => Err(
            ApiError::invalid_argument(format!("The {name} value must be Copy or Replace."))
                .with("ArgumentName", name),
        ),
    }
}

pub(super) async fn copy_object(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let h = &ctx.headers;
    let CopySource {
        bucket: src_bucket,
        key: src_key,
        version_id: src_vid,
    } = copy_source(h)?;
    let replace_meta = directive(h, protocol::header::METADATA_DIRECTIVE)?;
    let replace_tags = directive(h, protocol::header::TAGGING_DIRECTIVE)?;
    let opts = write_options(h)?;
    let found = state
        .store
        .read(&src_bucket, &src_key, src_vid.as_deref(), false, true)?;
    let src = found.version;
    if let Kind::Data { object_type, .. } = &src.kind
        && object_type == "Appendable"
    {
        return Err(appendable_source());
    }
    // An archive source must be restored first, as for GetObject.
    super::restore::check_readable(&src)?;
    check_source_conditions(h, &src.etag(), src.last_modified_ms)?;
    let same_object = src_bucket == ctx.bucket && src_key == ctx.key;
    let in_place = same_object && !ctx.versioned && {
        let cur = state.store.current(&ctx.bucket, &ctx.key)?;
        cur.is_some_and(|c| {
            c.version_id == src.version_id && c.last_modified_ms == src.last_modified_ms
        })
    };
    let mut version = Version::new(src.kind.clone());
    if replace_meta {
        version.headers = entity_headers(h);
        version.meta = opts.meta;
    } else {
        version.headers = src.headers.clone();
        version.meta = src.meta.clone();
    }
    version.tags = if replace_tags {
        opts.tags
    } else {
        src.tags.clone()
    };
    version.storage_class = if h.contains_key(protocol::header::STORAGE_CLASS) {
        opts.storage_class
    } else {
        src.storage_class.clone()
    };
    version.acl = opts.acl;
    let forbid = opts.forbid_overwrite;
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.clone());
    let stored = if in_place {
        if forbid {
            return Err(ApiError::file_already_exists());
        }
        let expected = src.clone();
        blocking(state, move |s| {
            s.swap_current(&bucket, &key, Some(&expected), version, None, || {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "ConcurrentUpdate",
                    "The object changed while it was being copied; retry.",
                )
            })
        })
        .await?
    } else {
        let blob = match (&src.kind, found.data) {
            (Kind::Data { size, .. }, Some(data)) => {
                let blob = stage_body(&state.store, data.into_body(0, *size)?).await?;
                if let Kind::Data {
                    blob: id, crc64, ..
                } = &mut version.kind
                {
                    *id = blob.id.clone();
                    *crc64 = blob.crc64;
                }
                Some(blob)
            }
            (Kind::Data { .. }, None) => {
                return Err(ApiError::internal("source data is missing"));
            }
            _ => None,
        };
        blocking(state, move |s| s.put(&bucket, &key, version, blob, forbid)).await?
    };
    let etag = stored.etag();
    let xml = format!(
        "<CopyObjectResult>{}{}</CopyObjectResult>",
        el("ETag", &format!("\"{etag}\"")),
        el("LastModified", &iso8601(stored.last_modified_ms))
    );
    let mut resp = xml_response(xml)?;
    let rh = resp.headers_mut();
    set(rh, "etag", &format!("\"{etag}\""));
    if let Some(v) = &stored.version_id {
        set(rh, protocol::header::VERSION_ID, v);
    }
    if let Some(v) = &src.version_id {
        set(rh, protocol::header::COPY_SOURCE_VERSION_ID, v);
    }
    if let Kind::Data { crc64, .. } = &stored.kind {
        set(rh, protocol::header::HASH_CRC64ECMA, &crc64.to_string());
    }
    Ok(resp)
}
