//! The object itself: PutObject, GetObject, HeadObject, GetObjectMeta, DeleteObject.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use http::{HeaderMap, StatusCode};

use super::request::{content_md5, digest_mismatch, entity_headers, write_options};
use super::{
    Ctx, base_response, blocking, finish, header, http_date_ms, q_get, set, shared, version_header,
};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::store::{Kind, Version};
use crate::oss::protocol;
use crate::oss::protocol::limit::MAX_SINGLE_REQUEST_BYTES;

// ---- PutObject ----------------------------------------------------------------------------

pub(super) async fn put_object(
    state: &Arc<State>,
    ctx: &Ctx,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let h = &ctx.headers;
    let opts = write_options(h)?;
    let md5 = content_md5(h)?;
    if let Some(len) = header(h, "content-length").and_then(|v| v.parse::<u64>().ok())
        && len > MAX_SINGLE_REQUEST_BYTES
    {
        return Err(ApiError::entity_too_large());
    }
    // From here on the body is ours: an error mid-way leaves nothing to drain.
    let blob = shared::stage_body(&state.store, body.take().unwrap_or_default()).await?;
    if let Some(expected) = md5
        && expected != blob.md5
    {
        return Err(digest_mismatch());
    }
    let mut version = Version::new(Kind::Data {
        object_type: "Normal".to_owned(),
        blob: blob.id.clone(),
        size: blob.size,
        etag: blob.etag(),
        crc64: blob.crc64,
    });
    version.headers = entity_headers(h);
    version.meta = opts.meta;
    version.tags = opts.tags;
    version.acl = opts.acl;
    version.storage_class = opts.storage_class;
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(blob.md5);
    let (etag, crc) = (blob.etag(), blob.crc64);
    let (bucket, key, forbid) = (ctx.bucket.clone(), ctx.key.clone(), opts.forbid_overwrite);
    let stored = blocking(state, move |s| {
        s.put(&bucket, &key, version, Some(blob), forbid)
    })
    .await?;
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    let rh = resp.headers_mut();
    set(rh, "etag", &format!("\"{etag}\""));
    set(rh, "content-md5", &md5_b64);
    set(rh, protocol::header::HASH_CRC64ECMA, &crc.to_string());
    version_header(rh, &stored);
    Ok(resp)
}

// ---- GetObject / HeadObject / GetObjectMeta -----------------------------------------------

/// A parsed `Range: bytes=…` that applies to `size`, or `None` for "whole object".
pub(super) fn parse_range(h: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(raw) = header(h, "range") else {
        return Ok(None);
    };
    let standard = header(h, protocol::header::RANGE_BEHAVIOR).is_some_and(|v| v == "standard");
    let unsatisfiable = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The requested range cannot be satisfied.",
        )
        .header("content-range", format!("bytes */{size}"))
    };
    let Some(spec) = raw.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), Some(end)) if start <= end => {
            if start >= size {
                None
            } else {
                Some((start, end.min(size - 1)))
            }
        }
        (Some(start), None) if b.is_empty() => (start < size).then(|| (start, size - 1)),
        (None, Some(n)) if a.is_empty() => {
            if n == 0 || size == 0 {
                None
            } else {
                Some((size - n.min(size), size - 1))
            }
        }
        _ => return Ok(None),
    };
    match range {
        Some(r) => Ok(Some(r)),
        None if standard => Err(unsatisfiable()),
        // OSS's default: an unsatisfiable range returns the whole object.
        None => Ok(None),
    }
}

pub(super) fn get_object(state: &Arc<State>, ctx: &Ctx, head: bool) -> Result<Response, ApiError> {
    let found = state
        .store
        .read(&ctx.bucket, &ctx.key, ctx.version_id(), true, !head)?;
    let link = &found.version;
    let data_version = found.target.as_ref().unwrap_or(link);
    let Kind::Data {
        object_type,
        size,
        etag,
        crc64,
        ..
    } = &data_version.kind
    else {
        return Err(ApiError::internal("unexpected object kind"));
    };
    let size = *size;
    if !head {
        super::restore::check_readable(data_version)?;
    }
    let modified_ms = link.last_modified_ms.max(data_version.last_modified_ms);
    check_conditions(&ctx.headers, etag, modified_ms)?;
    let range = if head {
        None
    } else {
        parse_range(&ctx.headers, size)?
    };
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, size),
    };
    let body = match found.data {
        Some(data) if !head => data.into_body(start, len)?,
        _ => Body::empty(),
    };
    let mut resp = finish(base_response(status), body)?;
    let rh = resp.headers_mut();
    for (name, value) in &data_version.headers {
        set(rh, name, value);
    }
    // response-* overrides (GetObject only).
    if !head {
        for (param, name) in [
            ("response-content-type", "content-type"),
            ("response-content-language", "content-language"),
            ("response-expires", "expires"),
            ("response-cache-control", "cache-control"),
            ("response-content-disposition", "content-disposition"),
            ("response-content-encoding", "content-encoding"),
        ] {
            if let Some(v) = q_get(&ctx.query, param) {
                set(rh, name, v);
            }
        }
    }
    set(rh, "content-length", &len.to_string());
    if let Some((a, b)) = range {
        set(rh, "content-range", &format!("bytes {a}-{b}/{size}"));
    }
    set(rh, "accept-ranges", "bytes");
    set(rh, "etag", &format!("\"{etag}\""));
    set(rh, "last-modified", &http_date_ms(modified_ms));
    let object_type = if found.target.is_some() {
        "Symlink"
    } else {
        object_type.as_str()
    };
    set(rh, protocol::header::OBJECT_TYPE, object_type);
    // Like OSS: appendable objects say where the next append goes.
    if object_type == "Appendable" {
        set(
            rh,
            protocol::header::NEXT_APPEND_POSITION,
            &size.to_string(),
        );
    }
    set(rh, protocol::header::STORAGE_CLASS, &link.storage_class);
    super::restore::restore_header(rh, data_version);
    set(rh, protocol::header::HASH_CRC64ECMA, &crc64.to_string());
    if !link.tags.is_empty() {
        set(
            rh,
            protocol::header::TAGGING_COUNT,
            &link.tags.len().to_string(),
        );
    }
    for (k, v) in &link.meta {
        set(rh, &format!("{}{k}", protocol::header::META_PREFIX), v);
    }
    version_header(rh, link);
    Ok(resp)
}

/// If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since (GetObject, HeadObject).
pub(super) fn check_conditions(
    h: &HeaderMap,
    etag: &str,
    modified_ms: u64,
) -> Result<(), ApiError> {
    let matches = |list: &str| {
        list.split(',')
            .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
            .any(|t| t == "*" || t.eq_ignore_ascii_case(etag))
    };
    let failed = || {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )
    };
    let not_modified = || ApiError::new(StatusCode::NOT_MODIFIED, "NotModified", "Not Modified");
    let modified_s = modified_ms / 1000;
    let date = |name: &str| {
        header(h, name)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    if let Some(list) = header(h, "if-match") {
        if !matches(list) {
            return Err(failed());
        }
    } else if let Some(since) = date("if-unmodified-since")
        && modified_s > since
    {
        return Err(failed());
    }
    if let Some(list) = header(h, "if-none-match") {
        if matches(list) {
            return Err(not_modified());
        }
    } else if let Some(since) = date("if-modified-since")
        && modified_s <= since
    {
        return Err(not_modified());
    }
    Ok(())
}

pub(super) fn get_object_meta(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let found = state
        .store
        .read(&ctx.bucket, &ctx.key, ctx.version_id(), false, false)?;
    let v = &found.version;
    let (size, crc) = match &v.kind {
        Kind::Data { size, crc64, .. } => (*size, Some(*crc64)),
        _ => (0, None),
    };
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    let rh = resp.headers_mut();
    set(rh, "content-length", &size.to_string());
    set(rh, "etag", &format!("\"{}\"", v.etag()));
    set(rh, "last-modified", &http_date_ms(v.last_modified_ms));
    if let Some(crc) = crc {
        set(rh, protocol::header::HASH_CRC64ECMA, &crc.to_string());
    }
    version_header(rh, v);
    Ok(resp)
}

// ---- DeleteObject -------------------------------------------------------------------------

pub(super) async fn delete_object(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.clone());
    let vid = ctx.version_id().map(str::to_owned);
    let deleted = blocking(state, move |s| s.delete(&bucket, &key, vid.as_deref())).await?;
    let mut resp = finish(base_response(StatusCode::NO_CONTENT), Body::empty())?;
    let rh = resp.headers_mut();
    if ctx.versioned
        && let Some(id) = &deleted.version_id
    {
        set(rh, protocol::header::VERSION_ID, id);
    }
    if deleted.delete_marker {
        set(rh, protocol::header::DELETE_MARKER, "true");
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::emulator::ops::header_map as h;

    #[test]
    fn ranges() {
        let r = |v: &str| parse_range(&h(&[("range", v)]), 10);
        assert_eq!(r("bytes=0-4").unwrap(), Some((0, 4)));
        assert_eq!(r("bytes=5-").unwrap(), Some((5, 9)));
        assert_eq!(r("bytes=-3").unwrap(), Some((7, 9)));
        assert_eq!(r("bytes=8-100").unwrap(), Some((8, 9)));
        assert_eq!(r("bytes=20-30").unwrap(), None);
        assert_eq!(r("bytes=x").unwrap(), None);
        assert_eq!(r("bytes=4-2").unwrap(), None);
        let strict = parse_range(
            &h(&[
                ("range", "bytes=20-30"),
                ("x-oss-range-behavior", "standard"),
            ]),
            10,
        );
        assert_eq!(
            strict.unwrap_err().status,
            StatusCode::RANGE_NOT_SATISFIABLE
        );
    }
}
