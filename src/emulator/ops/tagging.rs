//! Object tagging: PutObjectTagging, GetObjectTagging, DeleteObjectTagging (versionId).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;

use super::request::{read_small_body, tag_ec, tag_error};
use super::{Ctx, base_response, blocking, finish, version_header};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::model::TagSet;
use crate::oss::xml::{parse_tagging_xml, tagging_xml};

/// Largest PutObjectTagging body: 10 tags of at most 128 + 256 characters, each up to 4
/// bytes of UTF-8 or a 5-byte XML escape, fit in under 20 KB; 64 KiB leaves room for
/// whitespace. (CompleteMultipartUpload has its own, larger limit.)
const MAX_TAGGING_BODY: usize = 64 * 1024;

pub(super) async fn put_tagging(
    state: &Arc<State>,
    ctx: &Ctx,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_small_body(body, &ctx.headers, MAX_TAGGING_BODY).await?;
    let xml =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::malformed_xml().ec("0010-00000101"))?;
    let pairs =
        parse_tagging_xml(xml).map_err(|_| ApiError::malformed_xml().ec("0010-00000101"))?;
    let tags = TagSet::from_pairs(pairs.clone())
        .map_err(|violations| tag_error(violations, tag_ec(&pairs)))?
        .into_map();
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.clone());
    let vid = ctx.version_id().map(str::to_owned);
    let v = blocking(state, move |s| {
        s.set_tags(&bucket, &key, vid.as_deref(), tags)
    })
    .await?;
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    version_header(resp.headers_mut(), &v);
    Ok(resp)
}

pub(super) fn get_tagging(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let found = state
        .store
        .read(&ctx.bucket, &ctx.key, ctx.version_id(), false, false)?;
    let tags = TagSet::from_pairs(found.version.tags.clone())
        .map_err(|_| ApiError::internal("stored tags are invalid"))?;
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        tagging_xml(&tags)
    );
    let mut resp = finish(
        base_response(StatusCode::OK).header("content-type", "application/xml"),
        Body::from(xml),
    )?;
    version_header(resp.headers_mut(), &found.version);
    Ok(resp)
}

pub(super) async fn delete_tagging(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.clone());
    let vid = ctx.version_id().map(str::to_owned);
    let v = blocking(state, move |s| {
        s.set_tags(&bucket, &key, vid.as_deref(), BTreeMap::new())
    })
    .await?;
    let mut resp = finish(base_response(StatusCode::NO_CONTENT), Body::empty())?;
    version_header(resp.headers_mut(), &v);
    Ok(resp)
}
