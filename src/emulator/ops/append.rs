//! AppendObject: `POST /key?append&position=N`.
//!
//! The first append (position 0, key absent or a delete marker on top) creates an Appendable
//! object with this request's headers, metadata, tags, storage class and ACL; later appends
//! ignore those, like OSS, and must name the current length as `position`. Each append
//! rewrites the object's data into a new blob and swaps it in only if nobody appended in
//! between (else PositionNotEqualToLength). In versioned buckets appends keep the version
//! ID (OSS makes no previous version for them).

use crate::oss::protocol;
use crate::oss::protocol::limit::MAX_SINGLE_REQUEST_BYTES;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use md5::{Digest, Md5};

use super::request::{content_md5, digest_mismatch, entity_headers, write_options};
use super::shared::{ChunkSink, pump, store_error};
use super::{Ctx, base_response, blocking, finish, header, q_get, set, version_header};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::store::{Kind, Staging, Version};

/// 409 PositionNotEqualToLength, with the position to use.
fn position_mismatch(next: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "PositionNotEqualToLength",
        "Position is not equal to file length",
    )
    .ec("0026-00000016")
    .header(protocol::header::NEXT_APPEND_POSITION, next.to_string())
}

/// 409 ObjectNotAppendable.
fn not_appendable() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "ObjectNotAppendable",
        "The object is not appendable",
    )
    .ec("0026-00000015")
}

/// The staging blob plus an MD5 of just the appended bytes (for Content-MD5).
struct Tee<'a> {
    staging: &'a mut Staging,
    md5: Md5,
}

impl ChunkSink for Tee<'_> {
    async fn put(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.md5.update(chunk);
        self.staging.write(chunk).await
    }
    fn written(&self) -> u64 {
        self.staging.size()
    }
}

/// The appendable size of the live version, or the error for appending to it.
fn appendable_size(current: Option<&Version>) -> Result<u64, ApiError> {
    match current {
        None => Ok(0),
        Some(v) => match &v.kind {
            Kind::Data {
                object_type, size, ..
            } if object_type == "Appendable" => Ok(*size),
            _ => Err(not_appendable()),
        },
    }
}

pub(super) async fn append(
    state: &Arc<State>,
    ctx: &Ctx,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let h = &ctx.headers;
    let Some(raw) = q_get(&ctx.query, "position") else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MissingArgument",
            "Missing Some Required Arguments.",
        )
        .ec("0016-00000501")
        .with("ArgumentName", "position"));
    };
    let position: u64 = raw.parse().map_err(|_| {
        ApiError::invalid_argument("position must be a non-negative integer.")
            .with("ArgumentName", "position")
            .with("ArgumentValue", raw)
    })?;
    if ctx.version_id().is_some() {
        return Err(ApiError::invalid_argument(
            "AppendObject does not support the versionId parameter.",
        )
        .ec("0016-00000504"));
    }
    let current = state.store.current(&ctx.bucket, &ctx.key)?;
    let size = appendable_size(current.as_ref())?;
    if position != size {
        return Err(position_mismatch(size));
    }
    // The first append sets what the object carries; later ones ignore these headers.
    let opts = match current {
        None => Some(write_options(h, &ctx.storage_class)?),
        Some(_) => None,
    };
    let md5 = content_md5(h)?;
    if let Some(len) = header(h, "content-length").and_then(|v| v.parse::<u64>().ok())
        && size.saturating_add(len) > MAX_SINGLE_REQUEST_BYTES
    {
        return Err(ApiError::entity_too_large());
    }
    let mut staging = state.store.stage().await.map_err(store_error)?;
    if let Some(v) = &current {
        let found =
            state
                .store
                .read(&ctx.bucket, &ctx.key, v.version_id.as_deref(), false, true)?;
        if found.version.last_modified_ms != v.last_modified_ms || found.version.kind != v.kind {
            return Err(position_mismatch(appendable_size(Some(&found.version))?));
        }
        let Some(data) = found.data else {
            return Err(ApiError::internal("object data is missing"));
        };
        pump(
            data.into_body(0, size)?,
            &mut staging,
            MAX_SINGLE_REQUEST_BYTES,
        )
        .await?;
    }
    let appended_md5 = {
        let mut tee = Tee {
            staging: &mut staging,
            md5: Md5::new(),
        };
        pump(
            body.take().unwrap_or_default(),
            &mut tee,
            MAX_SINGLE_REQUEST_BYTES,
        )
        .await?;
        let got: [u8; 16] = tee.md5.finalize().into();
        got
    };
    if let Some(expected) = md5
        && expected != appended_md5
    {
        return Err(digest_mismatch());
    }
    let blob = staging.finish().await.map_err(store_error)?;
    let mut version = Version::new(Kind::Data {
        object_type: "Appendable".to_owned(),
        blob: blob.id.clone(),
        size: blob.size,
        etag: blob.etag(),
        crc64: blob.crc64,
    });
    match (&current, opts) {
        (Some(v), _) => {
            version.headers = v.headers.clone();
            version.meta = v.meta.clone();
            version.tags = v.tags.clone();
            version.storage_class = v.storage_class.clone();
            version.acl = v.acl.clone();
        }
        (None, Some(opts)) => {
            version.headers = entity_headers(h);
            version.meta = opts.meta;
            version.tags = opts.tags;
            version.storage_class = opts.storage_class;
            version.acl = opts.acl;
        }
        (None, None) => {}
    }
    let (new_size, crc, etag) = (blob.size, blob.crc64, blob.etag());
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.clone());
    let result = blocking(state, move |s| {
        s.swap_current(&bucket, &key, current.as_ref(), version, Some(blob), || {
            position_mismatch(0)
        })
    })
    .await;
    let stored = match result {
        Ok(v) => v,
        Err(e) if e.code == "PositionNotEqualToLength" => {
            // Someone appended (or wrote) in between: report the length now.
            let now = state.store.current(&ctx.bucket, &ctx.key)?;
            return Err(position_mismatch(appendable_size(now.as_ref())?));
        }
        Err(e) => return Err(e),
    };
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    let rh = resp.headers_mut();
    set(rh, "etag", &format!("\"{etag}\""));
    set(
        rh,
        protocol::header::NEXT_APPEND_POSITION,
        &new_size.to_string(),
    );
    set(rh, protocol::header::HASH_CRC64ECMA, &crc.to_string());
    version_header(rh, &stored);
    Ok(resp)
}
