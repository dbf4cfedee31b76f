//! Object ACLs: GetObjectAcl and PutObjectAcl (`?acl`, `x-oss-object-acl`, versionId).
//! The emulator stores the ACL (private, public-read, public-read-write or default) and
//! answers with it; it does not enforce it (every request is the owner's).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde::Serialize;

use super::shared::{OWNER, Owner, to_xml};
use super::{Ctx, base_response, blocking, finish, header, version_header};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::model::ObjectAcl;
use crate::oss::protocol;

#[derive(Serialize)]
struct AccessControlPolicy {
    #[serde(rename = "Owner")]
    owner: Owner,
    #[serde(rename = "AccessControlList")]
    access_control_list: AccessControlList,
}

#[derive(Serialize)]
struct AccessControlList {
    #[serde(rename = "Grant")]
    grant: String,
}

pub(super) fn get_acl(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let found = state
        .store
        .read(&ctx.bucket, &ctx.key, ctx.version_id(), false, false)?;
    let mut resp = to_xml(
        "AccessControlPolicy",
        &AccessControlPolicy {
            owner: OWNER,
            access_control_list: AccessControlList {
                grant: found.version.acl.clone(),
            },
        },
    )?;
    version_header(resp.headers_mut(), &found.version);
    Ok(resp)
}

pub(super) async fn put_acl(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let raw = header(&ctx.headers, protocol::header::ACL).unwrap_or("");
    let acl = ObjectAcl::parse(raw).ok_or_else(|| {
        ApiError::invalid_argument("The x-oss-object-acl value is invalid.")
            .with("ArgumentName", protocol::header::ACL)
            .with("ArgumentValue", raw)
    })?;
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.clone());
    let vid = ctx.version_id().map(str::to_owned);
    let v = blocking(state, move |s| {
        s.update_version(&bucket, &key, vid.as_deref(), |v| {
            v.acl = acl.as_str().to_owned();
            Ok(())
        })
    })
    .await?;
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    version_header(resp.headers_mut(), &v);
    Ok(resp)
}
