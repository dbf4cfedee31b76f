//! DeleteMultipleObjects (`POST /bucket?delete`): up to 1000 keys (and version IDs) in one
//! `<Delete>` body, which must carry a Content-MD5. Each key is deleted as DeleteObject
//! would (a delete marker in a versioned bucket, a version removed for good with its ID);
//! keys that do not exist count as deleted, as on OSS. Quiet mode answers an empty result.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::request::read_small_body;
use super::shared::listed_key;
use super::shared::to_xml;
use super::{Query, blocking, q_get};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::model::ObjectKey;

/// The most objects one request may delete.
pub(super) const MAX_DELETE_OBJECTS: usize = 1000;

/// The largest `<Delete>` body: 1000 keys of at most 1023 bytes, escaped, fit in 8 MiB.
const MAX_DELETE_BODY: usize = 8 * 1024 * 1024;

#[derive(Deserialize)]
struct DeleteXml {
    #[serde(rename = "Quiet", default)]
    quiet: Option<String>,
    #[serde(rename = "Object", default)]
    objects: Vec<ObjectXml>,
}

#[derive(Deserialize)]
struct ObjectXml {
    #[serde(rename = "Key", default)]
    key: Option<String>,
    #[serde(rename = "VersionId", default)]
    version_id: Option<String>,
}

#[derive(Serialize)]
struct DeleteResult {
    #[serde(rename = "EncodingType", skip_serializing_if = "Option::is_none")]
    encoding_type: Option<&'static str>,
    #[serde(rename = "Deleted")]
    deleted: Vec<Deleted>,
}

#[derive(Serialize)]
struct Deleted {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "VersionId", skip_serializing_if = "Option::is_none")]
    version_id: Option<String>,
    #[serde(rename = "DeleteMarker", skip_serializing_if = "Option::is_none")]
    delete_marker: Option<bool>,
    #[serde(
        rename = "DeleteMarkerVersionId",
        skip_serializing_if = "Option::is_none"
    )]
    delete_marker_version_id: Option<String>,
}

/// One object to delete.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    key: String,
    version_id: Option<String>,
}

/// The `<Delete>` document as sent.
fn read_delete_xml(bytes: &[u8]) -> Result<DeleteXml, ApiError> {
    let xml = std::str::from_utf8(bytes).map_err(|_| ApiError::malformed_xml())?;
    quick_xml::de::from_str(xml).map_err(|_| ApiError::malformed_xml())
}

/// Parses and checks the `<Delete>` body: (quiet, objects).
fn parse_delete(bytes: &[u8]) -> Result<(bool, Vec<Target>), ApiError> {
    let doc = read_delete_xml(bytes)?;
    let quiet = match doc.quiet.as_deref().map(str::trim) {
        None | Some("") => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(ApiError::malformed_xml()),
    };
    if doc.objects.is_empty() || doc.objects.len() > MAX_DELETE_OBJECTS {
        return Err(ApiError::malformed_xml().with(
            "Reason",
            format!("A Delete names 1 to {MAX_DELETE_OBJECTS} objects."),
        ));
    }
    let mut targets = Vec::with_capacity(doc.objects.len());
    for o in doc.objects {
        let Some(key) = o.key.filter(|k| !k.is_empty()) else {
            return Err(ApiError::malformed_xml().ec("0016-00000613"));
        };
        ObjectKey::parse(&key).map_err(|v| {
            ApiError::invalid_object_name(format!(
                "The specified object is not valid: {}",
                v.description
            ))
        })?;
        targets.push(Target {
            key,
            version_id: o.version_id.filter(|v| !v.is_empty()),
        });
    }
    Ok((quiet, targets))
}

pub(super) async fn delete_multiple(
    state: &Arc<State>,
    bucket: &str,
    query: &Query,
    headers: &http::HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let versioned = state.store.is_versioned(bucket)?;
    if !headers.contains_key("content-md5") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MissingArgument",
            "Missing Some Required Arguments.",
        )
        .with("ArgumentName", "Content-MD5")
        .ec("0016-00000606"));
    }
    let url = match q_get(query, "encoding-type") {
        None | Some("") => false,
        Some(v) if v.eq_ignore_ascii_case("url") => true,
        Some(v) => return Err(super::listing::invalid_argument("encoding-type", v)),
    };
    let bytes = read_small_body(body.take().unwrap_or_default(), headers, MAX_DELETE_BODY).await?;
    let (quiet, targets) = parse_delete(&bytes)?;
    let bucket_name = bucket.to_owned();
    let deleted = blocking(state, move |s| {
        let mut out = Vec::with_capacity(targets.len());
        for t in targets {
            let result = match s.delete(&bucket_name, &t.key, t.version_id.as_deref()) {
                Ok(d) => d,
                // A version that is not there is gone already: deleted, as on OSS.
                Err(e) if e.code == "NoSuchVersion" => crate::emulator::store::Deleted {
                    version_id: t.version_id.clone(),
                    delete_marker: false,
                },
                Err(e) => return Err(e),
            };
            out.push((t, result));
        }
        Ok(out)
    })
    .await?;
    let deleted = if quiet {
        Vec::new()
    } else {
        deleted
            .into_iter()
            .map(|(t, d)| {
                let key = listed_key(&t.key, url);
                match t.version_id {
                    // A version removed by ID; if it was a delete marker, say so.
                    Some(id) => Deleted {
                        key,
                        version_id: Some(id.clone()),
                        delete_marker: d.delete_marker.then_some(true),
                        delete_marker_version_id: d.delete_marker.then_some(id),
                    },
                    // A delete marker created (versioned), or the object removed.
                    None if versioned && d.delete_marker => Deleted {
                        key,
                        version_id: None,
                        delete_marker: Some(true),
                        delete_marker_version_id: d.version_id,
                    },
                    None => Deleted {
                        key,
                        version_id: None,
                        delete_marker: None,
                        delete_marker_version_id: None,
                    },
                }
            })
            .collect()
    };
    to_xml(
        "DeleteResult",
        &DeleteResult {
            encoding_type: url.then_some("url"),
            deleted,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_bodies() {
        let (quiet, t) = parse_delete(
            b"<?xml version=\"1.0\"?><Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object>\
              <Object><Key>c</Key><VersionId>v1</VersionId></Object></Delete>",
        )
        .unwrap();
        assert!(quiet);
        assert_eq!(
            t,
            vec![
                Target {
                    key: "a&b".into(),
                    version_id: None
                },
                Target {
                    key: "c".into(),
                    version_id: Some("v1".into())
                }
            ]
        );
        // Keys keep their spaces and control characters (the SDKs send them as character
        // references).
        let doc = read_delete_xml(
            b"<Delete><Object><Key> a b </Key></Object><Object><Key>x&#01;&#10;&#09;</Key></Object></Delete>",
        )
        .unwrap();
        let keys: Vec<&str> = doc
            .objects
            .iter()
            .filter_map(|o| o.key.as_deref())
            .collect();
        assert_eq!(keys, [" a b ", "x\u{1}\n\t"]);
        assert!(parse_delete(b"<Delete></Delete>").is_err());
        assert!(
            parse_delete(b"<Delete><Object><VersionId>v</VersionId></Object></Delete>").is_err()
        );
        let many = format!(
            "<Delete>{}</Delete>",
            "<Object><Key>k</Key></Object>".repeat(1001)
        );
        assert!(parse_delete(many.as_bytes()).is_err());
        assert!(parse_delete(b"<Delete><Object><Key>k</Key>").is_err());
    }
}
