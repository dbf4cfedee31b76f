//! Symlinks: PutSymlink and GetSymlink (GET and HEAD on a link resolve its target in
//! the object operations).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;

use super::request::{entity_headers, write_options};
use super::{Ctx, base_response, blocking, finish, http_date_ms, set, version_header};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::store::{Kind, Version};
use crate::model::ObjectKey;
use crate::oss::protocol;

// ---- symlinks -----------------------------------------------------------------------------

pub(super) async fn put_symlink(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let h = &ctx.headers;
    let Some(raw) = h.get(protocol::header::SYMLINK_TARGET) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MissingArgument",
            "The x-oss-symlink-target header is required.",
        )
        .ec("0043-00000001"));
    };
    // Sent raw (pyv2) or percent-encoded (oss2, ali-oss): decode either way.
    let raw = String::from_utf8_lossy(raw.as_bytes()).into_owned();
    let target = percent_encoding::percent_decode_str(&raw)
        .decode_utf8()
        .map(|c| c.into_owned())
        .unwrap_or(raw);
    ObjectKey::parse(&target).map_err(|v| {
        ApiError::invalid_argument(format!("The symlink target is invalid: {}", v.description))
    })?;
    let opts = write_options(h, &ctx.storage_class)?;
    let mut version = Version::new(Kind::Symlink { target });
    version.headers = entity_headers(h);
    version.meta = opts.meta;
    version.tags = opts.tags;
    version.acl = opts.acl;
    version.storage_class = opts.storage_class;
    let etag = version.etag();
    let (bucket, key, forbid) = (ctx.bucket.clone(), ctx.key.clone(), opts.forbid_overwrite);
    let stored = blocking(state, move |s| s.put(&bucket, &key, version, None, forbid)).await?;
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    let rh = resp.headers_mut();
    set(rh, "etag", &format!("\"{etag}\""));
    version_header(rh, &stored);
    Ok(resp)
}

pub(super) fn get_symlink(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let found = state
        .store
        .read(&ctx.bucket, &ctx.key, ctx.version_id(), false, false)?;
    let v = &found.version;
    let Kind::Symlink { target } = &v.kind else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "NotSymlink",
            "The specified object is not a symlink.",
        )
        .ec("0043-00000101"));
    };
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    let rh = resp.headers_mut();
    set(rh, protocol::header::SYMLINK_TARGET, &encode_key(target));
    set(rh, "etag", &format!("\"{}\"", v.etag()));
    set(rh, "last-modified", &http_date_ms(v.last_modified_ms));
    for (k, val) in &v.meta {
        set(rh, &format!("{}{k}", protocol::header::META_PREFIX), val);
    }
    version_header(rh, v);
    Ok(resp)
}

/// Percent-encodes a key for a header, keeping `/` (`dir/obj%201.txt`).
pub(super) fn encode_key(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_encoding_for_symlink_header() {
        assert_eq!(encode_key("dir/obj 1.txt"), "dir/obj%201.txt");
        assert_eq!(encode_key("a+b"), "a%2Bb");
    }
}
