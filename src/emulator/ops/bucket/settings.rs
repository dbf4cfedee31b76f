//! A bucket's settings: Get/PutBucketAcl (`?acl`), Get/PutBucketVersioning (`?versioning`),
//! Put/Get/DeleteBucketTags (`?tagging` on the bucket) and
//! Put/Get/DeleteBucketPublicAccessBlock (`?publicAccessBlock`).
//!
//! The emulator stores the ACL and Block Public Access and reports them; it enforces
//! neither (every request is the owner's). Versioning changes how the store keeps
//! versions from the next write on ([`crate::emulator::store::Versioning`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::super::shared::{OWNER, Owner, to_xml};
use super::{MAX_SETTINGS_BODY, bucket_acl, empty};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::ops::request::read_small_body;
use crate::emulator::ops::shared::xml_response;
use crate::emulator::ops::{Query, blocking, q_get};
use crate::emulator::store::{BucketConfig, Versioning};
use crate::oss::xml::{parse_tagging_xml, tags_to_xml};

/// The most tags a bucket may carry (objects: 10).
const MAX_BUCKET_TAGS: usize = 20;
/// Longest bucket tag key and value, in characters.
const MAX_TAG_KEY_CHARS: usize = 64;
const MAX_TAG_VALUE_CHARS: usize = 128;

/// Changes a bucket's settings off the async threads.
async fn update(
    state: &Arc<State>,
    bucket: &str,
    change: impl FnOnce(&mut BucketConfig) -> Result<(), ApiError> + Send + 'static,
) -> Result<BucketConfig, ApiError> {
    let name = bucket.to_owned();
    blocking(state, move |s| s.update_bucket(&name, change)).await
}

/// A small XML body as text; an empty or non-UTF-8 one is MalformedXML.
async fn xml_body(headers: &HeaderMap, body: &mut Option<Body>) -> Result<String, ApiError> {
    let bytes =
        read_small_body(body.take().unwrap_or_default(), headers, MAX_SETTINGS_BODY).await?;
    String::from_utf8(bytes)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(ApiError::malformed_xml)
}

// ---- ACL ------------------------------------------------------------------------------------

#[derive(Serialize)]
struct AccessControlPolicy {
    #[serde(rename = "Owner")]
    owner: Owner,
    #[serde(rename = "AccessControlList")]
    access_control_list: AccessControlList,
}

/// `<AccessControlList><Grant>…</Grant></AccessControlList>`.
#[derive(Serialize)]
pub(in crate::emulator::ops) struct AccessControlList {
    #[serde(rename = "Grant")]
    pub(in crate::emulator::ops) grant: String,
}

pub(in crate::emulator::ops) fn get_acl(
    state: &Arc<State>,
    bucket: &str,
) -> Result<Response, ApiError> {
    let config = state.store.bucket_config(bucket)?;
    to_xml(
        "AccessControlPolicy",
        &AccessControlPolicy {
            owner: OWNER,
            access_control_list: AccessControlList { grant: config.acl },
        },
    )
}

pub(in crate::emulator::ops) async fn put_acl(
    state: &Arc<State>,
    bucket: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    // PutBucketAcl without x-oss-acl leaves the ACL as it is, as OSS does.
    if let Some(acl) = bucket_acl(headers)? {
        update(state, bucket, move |c| {
            c.acl = acl;
            Ok(())
        })
        .await?;
    } else {
        state.store.bucket_config(bucket)?;
    }
    empty(StatusCode::OK)
}

// ---- versioning -----------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Default)]
struct VersioningConfiguration {
    #[serde(rename = "Status", skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

pub(in crate::emulator::ops) fn get_versioning(
    state: &Arc<State>,
    bucket: &str,
) -> Result<Response, ApiError> {
    let config = state.store.bucket_config(bucket)?;
    to_xml(
        "VersioningConfiguration",
        &VersioningConfiguration {
            status: config.versioning.status().map(str::to_owned),
        },
    )
}

pub(in crate::emulator::ops) async fn put_versioning(
    state: &Arc<State>,
    bucket: &str,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    state.store.bucket_config(bucket)?;
    let xml = xml_body(headers, body).await?;
    let doc: VersioningConfiguration =
        quick_xml::de::from_str(&xml).map_err(|_| ApiError::malformed_xml())?;
    let versioning = match doc.status.as_deref().map(str::trim) {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        _ => return Err(ApiError::malformed_xml()),
    };
    update(state, bucket, move |c| {
        c.versioning = versioning;
        Ok(())
    })
    .await?;
    empty(StatusCode::OK)
}

// ---- tags -----------------------------------------------------------------------------------

fn invalid_tag(why: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidTag", why)
}

/// Checks a bucket's tag set: at most 20 tags, keys of 1–64 characters not starting with
/// `aliyun` or `acs:`, values of at most 128, no key twice.
fn bucket_tags(pairs: Vec<(String, String)>) -> Result<BTreeMap<String, String>, ApiError> {
    if pairs.len() > MAX_BUCKET_TAGS {
        return Err(invalid_tag(format!(
            "A bucket can have at most {MAX_BUCKET_TAGS} tags."
        )));
    }
    let mut tags = BTreeMap::new();
    for (key, value) in pairs {
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_TAG_KEY_CHARS {
            return Err(invalid_tag(format!(
                "A tag key must be 1 to {MAX_TAG_KEY_CHARS} characters."
            )));
        }
        if key.starts_with("aliyun") || key.starts_with("acs:") {
            return Err(invalid_tag(
                "A tag key must not start with aliyun or acs:.".to_owned(),
            ));
        }
        if value.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(invalid_tag(format!(
                "A tag value must be at most {MAX_TAG_VALUE_CHARS} characters."
            )));
        }
        if tags.insert(key.clone(), value).is_some() {
            return Err(invalid_tag(format!("The tag key {key:?} appears twice.")));
        }
    }
    Ok(tags)
}

pub(in crate::emulator::ops) async fn put_tags(
    state: &Arc<State>,
    bucket: &str,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    state.store.bucket_config(bucket)?;
    let xml = xml_body(headers, body).await?;
    let pairs = parse_tagging_xml(&xml).map_err(|_| ApiError::malformed_xml())?;
    let tags = bucket_tags(pairs)?;
    update(state, bucket, move |c| {
        c.tags = tags;
        Ok(())
    })
    .await?;
    empty(StatusCode::OK)
}

pub(in crate::emulator::ops) fn get_tags(
    state: &Arc<State>,
    bucket: &str,
) -> Result<Response, ApiError> {
    let config = state.store.bucket_config(bucket)?;
    let xml = tags_to_xml(config.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    xml_response(xml)
}

/// DeleteBucketTags: all tags, or with `tagging=k1,k2` only those keys.
pub(in crate::emulator::ops) async fn delete_tags(
    state: &Arc<State>,
    bucket: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let only: Option<Vec<String>> = q_get(query, "tagging")
        .filter(|t| !t.is_empty())
        .map(|t| t.split(',').map(|k| k.trim().to_owned()).collect());
    update(state, bucket, move |c| {
        match only {
            Some(keys) => c.tags.retain(|k, _| !keys.contains(k)),
            None => c.tags.clear(),
        }
        Ok(())
    })
    .await?;
    empty(StatusCode::NO_CONTENT)
}

// ---- Block Public Access --------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct PublicAccessBlockConfiguration {
    #[serde(rename = "BlockPublicAccess")]
    block_public_access: String,
}

pub(in crate::emulator::ops) async fn put_public_access_block(
    state: &Arc<State>,
    bucket: &str,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    state.store.bucket_config(bucket)?;
    let xml = xml_body(headers, body).await?;
    let doc: PublicAccessBlockConfiguration =
        quick_xml::de::from_str(&xml).map_err(|_| ApiError::malformed_xml())?;
    let block = match doc.block_public_access.trim() {
        "true" => true,
        "false" => false,
        _ => return Err(ApiError::malformed_xml()),
    };
    update(state, bucket, move |c| {
        c.block_public_access = block;
        Ok(())
    })
    .await?;
    empty(StatusCode::OK)
}

pub(in crate::emulator::ops) fn get_public_access_block(
    state: &Arc<State>,
    bucket: &str,
) -> Result<Response, ApiError> {
    let config = state.store.bucket_config(bucket)?;
    to_xml(
        "PublicAccessBlockConfiguration",
        &PublicAccessBlockConfiguration {
            block_public_access: config.block_public_access.to_string(),
        },
    )
}

/// DeleteBucketPublicAccessBlock: the bucket no longer blocks public access.
pub(in crate::emulator::ops) async fn delete_public_access_block(
    state: &Arc<State>,
    bucket: &str,
) -> Result<Response, ApiError> {
    update(state, bucket, |c| {
        c.block_public_access = false;
        Ok(())
    })
    .await?;
    empty(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
    }

    #[test]
    fn bucket_tag_rules() {
        assert_eq!(bucket_tags(pairs(20)).unwrap().len(), 20);
        assert_eq!(bucket_tags(pairs(21)).unwrap_err().code, "InvalidTag");
        assert!(bucket_tags(vec![("".into(), "v".into())]).is_err());
        assert!(bucket_tags(vec![("aliyun:x".into(), "v".into())]).is_err());
        assert!(bucket_tags(vec![("k".into(), "v".repeat(129))]).is_err());
        assert!(bucket_tags(vec![("k".into(), "a".into()), ("k".into(), "b".into())]).is_err());
    }
}
