//! CopyObject and UpdateObjectMetadata.
//!
//! CopyObject validates the request and hands it to the copier ([`crate::oss::copier`]),
//! which reads the source's HeadObject and copies it with one OSS CopyObject, or part by
//! part above `[copy] multipart_threshold_bytes`, honouring both directives the same way.
//! UpdateObjectMetadata reads the object's metadata with a
//! HeadObject, changes only what the request names, and writes the result with a CopyObject
//! of the object onto itself with `REPLACE` metadata; its tags follow the `Copy` directive
//! (kept) unless new ones are given.
//!
//! The tag policy is checked before the copy: REPLACE's tags as given; under COPY the
//! source's tags (read only when a rule covers the destination) against the destination's
//! rules.

use std::{
    collections::BTreeSet,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tonic::{Code, Status};

use super::{
    audit::Trail,
    convert::version_string,
    status::{gateway_error, invalid_argument, oss_status},
    tag_policy::CallPolicy,
    validate::{ContentFields, Validation},
};
use crate::{
    config::CopySettings,
    model::UserMetadata,
    oss::{
        Client, ContentHeaders, CopyMetadata, CopyObjectInput, CopySource, CopySourceConditions,
        CopyTagging, ObjectId, OssErrorKind,
        copier::{self, CopyOptions},
    },
    proto,
};

/// Latest timestamp accepted in a precondition (9999-12-31T23:59:59Z): HTTP dates end there.
const MAX_PRECONDITION_SECONDS: i64 = 253_402_300_799;

/// The content-header fields as (name, value) pairs, to refuse them where they do not apply.
fn content_fields_given<'a>(fields: &ContentFields<'a>) -> [(&'static str, &'a str); 5] {
    [
        ("content_type", fields.content_type),
        ("cache_control", fields.cache_control),
        ("content_disposition", fields.content_disposition),
        ("content_encoding", fields.content_encoding),
        ("expires", fields.expires),
    ]
}

/// A precondition time: a valid protobuf timestamp between 1970 and 9999.
fn precondition_time(
    v: &mut Validation,
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Option<Option<SystemTime>> {
    let Some(ts) = value else {
        return Some(None);
    };
    if !(0..=MAX_PRECONDITION_SECONDS).contains(&ts.seconds)
        || !(0..1_000_000_000).contains(&ts.nanos)
    {
        v.violation(
            field,
            "must be a timestamp between 1970-01-01 and 9999-12-31 with nanos in 0..1e9",
        );
        return None;
    }
    // Checked above: both are non-negative and in range.
    let time = UNIX_EPOCH
        + Duration::new(
            u64::try_from(ts.seconds).unwrap_or(0),
            u32::try_from(ts.nanos).unwrap_or(0),
        );
    Some(Some(time))
}

/// An ETag condition: printable ASCII (quoted as OSS returns it, or bare).
fn etag_condition(v: &mut Validation, field: &str, value: &str) -> Option<Option<String>> {
    v.header_text(field, value)
}

fn conditions(
    v: &mut Validation,
    given: Option<&proto::CopySourcePreconditions>,
) -> Option<CopySourceConditions> {
    let Some(p) = given else {
        return Some(CopySourceConditions::default());
    };
    let prefix = "source_preconditions";
    let if_match = etag_condition(v, &format!("{prefix}.if_match"), &p.if_match);
    let if_none_match = etag_condition(v, &format!("{prefix}.if_none_match"), &p.if_none_match);
    let if_modified_since = precondition_time(
        v,
        &format!("{prefix}.if_modified_since"),
        p.if_modified_since.as_ref(),
    );
    let if_unmodified_since = precondition_time(
        v,
        &format!("{prefix}.if_unmodified_since"),
        p.if_unmodified_since.as_ref(),
    );
    Some(CopySourceConditions {
        if_match: if_match?,
        if_none_match: if_none_match?,
        if_modified_since: if_modified_since?,
        if_unmodified_since: if_unmodified_since?,
    })
}

/// Validates a CopyObject request.
fn plan(req: &proto::CopyObjectRequest) -> Result<CopyObjectInput, Status> {
    let mut v = Validation::new();
    let source_bucket = v.bucket("source_bucket", &req.source_bucket);
    let source_key = v.key("source_key", &req.source_key);
    let source_version = v.version_id("source_version_id", &req.source_version_id);
    let bucket = v.bucket("destination_bucket", &req.destination_bucket);
    let key = v.key("destination_key", &req.destination_key);

    let tagging = match proto::TaggingDirective::try_from(req.tagging_directive) {
        Ok(proto::TaggingDirective::Replace) => match &req.tagging {
            Some(tagging) => v.tag_set("tagging", tagging).map(CopyTagging::Replace),
            None => {
                v.violation(
                    "tagging",
                    "is required with TAGGING_DIRECTIVE_REPLACE (an empty set removes every tag)",
                );
                None
            }
        },
        Ok(proto::TaggingDirective::Copy | proto::TaggingDirective::Unspecified) => {
            if req.tagging.is_some() {
                v.violation(
                    "tagging",
                    "is only allowed with TAGGING_DIRECTIVE_REPLACE (COPY keeps the source's tags)",
                );
                None
            } else {
                Some(CopyTagging::Copy)
            }
        }
        Err(_) => {
            v.violation(
                "tagging_directive",
                format!("{} is not a TaggingDirective value", req.tagging_directive),
            );
            None
        }
    };

    let content_fields = ContentFields {
        content_type: &req.content_type,
        cache_control: &req.cache_control,
        content_disposition: &req.content_disposition,
        content_encoding: &req.content_encoding,
        expires: &req.expires,
    };
    let metadata = match proto::MetadataDirective::try_from(req.metadata_directive) {
        Ok(proto::MetadataDirective::Replace) => {
            let metadata = v.metadata("metadata", &req.metadata);
            let content = v.content_headers("", content_fields);
            (|| {
                Some(CopyMetadata::Replace {
                    metadata: metadata?,
                    content: content?,
                })
            })()
        }
        Ok(proto::MetadataDirective::Copy | proto::MetadataDirective::Unspecified) => {
            let mut ok = true;
            if !req.metadata.is_empty() {
                v.violation(
                    "metadata",
                    "is only allowed with METADATA_DIRECTIVE_REPLACE (COPY keeps the source's)",
                );
                ok = false;
            }
            for (field, value) in content_fields_given(&content_fields) {
                if !value.is_empty() {
                    v.violation(
                        field,
                        "is only allowed with METADATA_DIRECTIVE_REPLACE (COPY keeps the source's)",
                    );
                    ok = false;
                }
            }
            ok.then_some(CopyMetadata::Copy)
        }
        Err(_) => {
            v.violation(
                "metadata_directive",
                format!(
                    "{} is not a MetadataDirective value",
                    req.metadata_directive
                ),
            );
            None
        }
    };
    let storage_class = v.storage_class("storage_class", req.storage_class);
    let acl = v.acl("acl", req.acl);
    let conditions = conditions(&mut v, req.source_preconditions.as_ref());

    v.conclude((|| {
        let source = CopySource {
            bucket: source_bucket?,
            key: source_key?,
            version_id: source_version?,
        };
        let mut input = CopyObjectInput::new(source, bucket?, key?);
        input.tagging = tagging?;
        input.metadata = metadata?;
        input.storage_class = storage_class?;
        input.acl = acl?;
        input.forbid_overwrite = req.forbid_overwrite;
        input.conditions = conditions?;
        Some(input)
    })())
}

/// How the multipart copier runs, from the `[copy]` settings.
pub fn copy_options(settings: &CopySettings) -> CopyOptions {
    CopyOptions {
        multipart_threshold: settings.multipart_threshold_bytes,
        part_size: settings.part_size_bytes,
        parallelism: settings.parallelism,
        ..CopyOptions::default()
    }
}

fn size_i64(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// CopyObject: the copier reads the source, then the audit reads the destination's tags
/// before the copy overwrites them, then the copier copies.
pub async fn copy(
    client: &Client,
    settings: &CopySettings,
    policy: &CallPolicy,
    req: proto::CopyObjectRequest,
    trail: &mut Trail,
) -> Result<proto::CopyObjectResponse, Status> {
    let input = plan(&req)?;
    let mut v = Validation::new();
    let condition = v.if_tags("if_tags", &req.if_tags);
    let condition = v.conclude(condition)?;
    let forbid_overwrite = input.forbid_overwrite;
    let (bucket, key) = (input.bucket.as_str(), input.key.as_str());
    if let CopyTagging::Replace(tags) = &input.tagging {
        policy.check("tagging", bucket, key, tags)?;
    }
    let copy = copier::plan(client, input, &copy_options(settings))
        .await
        .map_err(oss_status)?;
    let destination = copy.destination();
    let (bucket, key) = (destination.bucket.as_str(), destination.key.as_str());
    if req.tagging_directive != proto::TaggingDirective::Replace as i32
        && policy.applies(bucket, key)
    {
        // COPY gives the destination the source's tags: they must meet the destination's
        // rules. Read only when a rule applies (one more OSS request).
        let source_tags = copier::source_tags(client, &copy.source())
            .await
            .map_err(oss_status)?;
        policy.check("source", bucket, key, &source_tags)?;
    }
    // On the source version the copy is pinned to, just before the copy starts.
    if let Some(condition) = &condition {
        condition.check_current(client, &copy.source()).await?;
    }
    if !forbid_overwrite {
        trail.read_before(client, &copy.destination()).await;
    }
    let out = copy.run(client).await.map_err(oss_status)?;
    // The request that created the destination (with its tags): the CopyObject or the
    // CompleteMultipartUpload.
    trail.request_id(out.request_id.as_deref());
    if forbid_overwrite && out.version_id.is_none() {
        trail.created_object();
    }
    Ok(proto::CopyObjectResponse {
        etag: out.etag.unwrap_or_default(),
        version_id: version_string(out.version_id),
        source_version_id: version_string(out.source_version_id),
        crc64ecma: out.crc64,
        size: size_i64(out.size),
        part_count: i32::try_from(out.parts).unwrap_or(i32::MAX),
        source_tags_changed: out.source_tags_changed,
    })
}

/// What an UpdateObjectMetadata changes (the rest of the object's metadata is kept).
#[derive(Debug, Default, PartialEq, Eq)]
struct MetadataEdit {
    /// `metadata`: the user metadata is replaced as a whole.
    all_metadata: bool,
    /// `metadata.<key>` (lower case): each entry is set from the request, or removed when
    /// the request does not have it.
    metadata_keys: BTreeSet<String>,
    /// The content headers replaced (in [`content_fields_given`] order); an empty value
    /// removes the header.
    content: [bool; 5],
}

/// The request's fields as given, for [`metadata_edit`].
fn update_content_fields(req: &proto::UpdateObjectMetadataRequest) -> ContentFields<'_> {
    ContentFields {
        content_type: &req.content_type,
        cache_control: &req.cache_control,
        content_disposition: &req.content_disposition,
        content_encoding: &req.content_encoding,
        expires: &req.expires,
    }
}

/// What `req` changes: the fields its `update_mask` names, or without a mask the fields it
/// sets (non-empty metadata replaces it all, each non-empty header replaces that header), so
/// a caller that sends only metadata never loses its content headers. A field set but left
/// out of the mask is refused rather than ignored.
fn metadata_edit(
    v: &mut Validation,
    req: &proto::UpdateObjectMetadataRequest,
) -> Option<MetadataEdit> {
    let given = content_fields_given(&update_content_fields(req));
    let Some(mask) = &req.update_mask else {
        return Some(MetadataEdit {
            all_metadata: !req.metadata.is_empty(),
            metadata_keys: BTreeSet::new(),
            content: given.map(|(_, value)| !value.is_empty()),
        });
    };
    let before = v.violation_count();
    let mut edit = MetadataEdit::default();
    for (i, path) in mask.paths.iter().enumerate() {
        if path == "metadata" {
            edit.all_metadata = true;
        } else if let Some(key) = path.strip_prefix("metadata.") {
            if key.is_empty() {
                v.violation(&format!("update_mask.paths[{i}]"), "names no metadata key");
            }
            edit.metadata_keys.insert(key.to_ascii_lowercase());
        } else if let Some(index) = given.iter().position(|(name, _)| name == path) {
            edit.content[index] = true;
        } else {
            v.violation(
                &format!("update_mask.paths[{i}]"),
                format!(
                    "{path:?} is not a path of UpdateObjectMetadataRequest; use metadata, metadata.<key>, content_type, cache_control, content_disposition, content_encoding or expires"
                ),
            );
        }
    }
    for key in req.metadata.keys() {
        if !edit.all_metadata && !edit.metadata_keys.contains(&key.to_ascii_lowercase()) {
            v.violation(
                &format!("metadata[{key:?}]"),
                format!("is set but update_mask names neither metadata nor metadata.{key}"),
            );
        }
    }
    for (index, (name, value)) in given.iter().enumerate() {
        if !value.is_empty() && !edit.content[index] {
            v.violation(name, "is set but update_mask does not name it");
        }
    }
    (v.violation_count() == before).then_some(edit)
}

/// The object's user metadata after `edit` with the request's `given` entries.
fn edited_metadata(
    current: UserMetadata,
    given: UserMetadata,
    edit: &MetadataEdit,
) -> Result<UserMetadata, Status> {
    if edit.all_metadata {
        return Ok(given);
    }
    let mut entries = current.into_map();
    for key in &edit.metadata_keys {
        match given.get(key) {
            Some(value) => entries.insert(key.clone(), value.to_owned()),
            None => entries.remove(key),
        };
    }
    // Entries that were valid apart may exceed the size limit together.
    UserMetadata::from_pairs(entries).map_err(invalid_argument)
}

/// The object's content headers after `edit` with the request's `given` ones.
fn edited_content(
    mut current: ContentHeaders,
    given: ContentHeaders,
    edit: &MetadataEdit,
) -> ContentHeaders {
    let ContentHeaders {
        content_type,
        cache_control,
        content_disposition,
        content_encoding,
        expires,
    } = given;
    let slots = [
        (&mut current.content_type, content_type),
        (&mut current.cache_control, cache_control),
        (&mut current.content_disposition, content_disposition),
        (&mut current.content_encoding, content_encoding),
        (&mut current.expires, expires),
    ];
    for ((slot, value), replace) in slots.into_iter().zip(edit.content) {
        if replace {
            *slot = value;
        }
    }
    current
}

/// UpdateObjectMetadata: changes what the request names (see [`metadata_edit`]) and keeps
/// the rest, with one HeadObject for the current metadata and one CopyObject of the object
/// onto itself with `REPLACE`. The copy is pinned to the version and ETag the HEAD saw, so a
/// concurrent write fails the call (`ABORTED`) instead of being overwritten with stale
/// metadata. Tags follow the `Copy` directive (kept) unless new ones are given.
pub async fn update_metadata(
    client: &Client,
    policy: &CallPolicy,
    req: proto::UpdateObjectMetadataRequest,
    trail: &mut Trail,
) -> Result<proto::UpdateObjectMetadataResponse, Status> {
    let mut v = Validation::new();
    let bucket = v.bucket("bucket", &req.bucket);
    let key = v.key("key", &req.key);
    let metadata = v.metadata("metadata", &req.metadata);
    let content = v.content_headers("", update_content_fields(&req));
    let tags = v.tagging("tagging", req.tagging.as_ref());
    let edit = metadata_edit(&mut v, &req);
    let (object, metadata, content, tags, edit) = v.conclude((|| {
        Some((
            ObjectId::new(bucket?, key?),
            metadata?,
            content?,
            tags?,
            edit?,
        ))
    })())?;
    if let Some(tags) = &tags {
        let (bucket, key) = (object.bucket.as_str(), object.key.as_str());
        policy.check("tagging", bucket, key, tags)?;
    }
    let head = client.head_object(&object).await.map_err(oss_status)?;
    let mut source = CopySource::new(object.bucket.clone(), object.key.clone());
    source.version_id = head.version_id.clone();
    let mut input = CopyObjectInput::new(source, object.bucket.clone(), object.key.clone());
    input.conditions.if_match = head.etag.clone();
    input.metadata = CopyMetadata::Replace {
        metadata: edited_metadata(head.metadata, metadata, &edit)?,
        content: edited_content(head.content, content, &edit),
    };
    input.tagging = match tags {
        None => CopyTagging::Copy,
        Some(tags) => CopyTagging::Replace(tags),
    };
    trail.read_before(client, &object).await;
    let out = client.copy_object(&input).await.map_err(|err| {
        if err.kind == OssErrorKind::PreconditionFailed {
            gateway_error(
                Code::Aborted,
                "ObjectChanged",
                "the object changed while its metadata was being updated; nothing was changed, retry the call",
            )
        } else {
            oss_status(err)
        }
    })?;
    trail.request_id(out.request_id.as_deref());
    Ok(proto::UpdateObjectMetadataResponse {
        etag: out.etag.unwrap_or_default(),
        version_id: version_string(out.version_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{TagSet, UserMetadata};
    use tonic::Code;
    use tonic_types::StatusExt;

    fn request() -> proto::CopyObjectRequest {
        proto::CopyObjectRequest {
            source_bucket: "src-bucket".into(),
            source_key: "a/b.txt".into(),
            destination_bucket: "dst-bucket".into(),
            destination_key: "c.txt".into(),
            ..Default::default()
        }
    }

    fn fields(status: &Status) -> Vec<String> {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        status
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default()
    }

    fn tagging(pairs: &[(&str, &str)]) -> proto::Tagging {
        proto::Tagging {
            tags: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn defaults_copy_everything() {
        let plan = plan(&request()).unwrap();
        assert_eq!(plan.tagging, CopyTagging::Copy);
        assert_eq!(plan.metadata, CopyMetadata::Copy);
        assert_eq!(plan.conditions, CopySourceConditions::default());
    }

    #[test]
    fn tagging_rules_follow_the_directive() {
        let mut r = request();
        r.tagging_directive = proto::TaggingDirective::Replace.into();
        assert_eq!(fields(&plan(&r).err().unwrap()), ["tagging"]);
        r.tagging = Some(tagging(&[]));
        let p = plan(&r).unwrap();
        assert_eq!(p.tagging, CopyTagging::Replace(TagSet::empty()));
        r.tagging = Some(tagging(&[("a+b-c=d._:/ é", "v 1/2")]));
        let p = plan(&r).unwrap();
        let CopyTagging::Replace(tags) = &p.tagging else {
            panic!("REPLACE gives replacing tags")
        };
        assert_eq!(tags.get("a+b-c=d._:/ é"), Some("v 1/2"));
        r.tagging = Some(tagging(&[("bad&key", "v")]));
        assert!(fields(&plan(&r).err().unwrap())[0].starts_with("tagging"));
        for directive in [
            proto::TaggingDirective::Copy,
            proto::TaggingDirective::Unspecified,
        ] {
            r.tagging_directive = directive.into();
            r.tagging = Some(tagging(&[]));
            assert_eq!(fields(&plan(&r).err().unwrap()), ["tagging"]);
        }
        r.tagging = None;
        r.tagging_directive = 7;
        assert_eq!(fields(&plan(&r).err().unwrap()), ["tagging_directive"]);
    }

    #[test]
    fn metadata_and_content_headers_only_with_replace() {
        let mut r = request();
        r.metadata.insert("owner".into(), "x".into());
        r.content_type = "text/plain".into();
        r.expires = "Thu, 01 Dec 2094 16:00:00 GMT".into();
        assert_eq!(
            fields(&plan(&r).err().unwrap()),
            ["metadata", "content_type", "expires"]
        );
        r.metadata_directive = proto::MetadataDirective::Replace.into();
        let p = plan(&r).unwrap();
        let CopyMetadata::Replace { metadata, content } = &p.metadata else {
            panic!("replace expected");
        };
        assert_eq!(
            *metadata,
            UserMetadata::from_pairs([("owner", "x")]).unwrap()
        );
        assert_eq!(content.content_type.as_deref(), Some("text/plain"));
        assert_eq!(p.metadata.directive(), "REPLACE");
        r.metadata.insert("bad key".into(), "x".into());
        r.cache_control = "\u{7f}".into();
        let f = fields(&plan(&r).err().unwrap());
        assert!(f.iter().any(|f| f.starts_with("metadata")), "{f:?}");
        assert!(f.contains(&"cache_control".to_string()), "{f:?}");
        r.metadata_directive = 9;
        r.metadata.clear();
        r.cache_control.clear();
        assert!(fields(&plan(&r).err().unwrap()).contains(&"metadata_directive".to_string()));
    }

    #[test]
    fn names_and_preconditions_are_checked() {
        let mut r = request();
        r.source_bucket = "Bad_Bucket".into();
        r.destination_key = "/abs".into();
        r.source_version_id = "\u{1}".into();
        assert_eq!(
            fields(&plan(&r).err().unwrap()),
            ["source_bucket", "source_version_id", "destination_key"]
        );
        let mut r = request();
        r.source_preconditions = Some(proto::CopySourcePreconditions {
            if_match: "\"ABC\"".into(),
            if_none_match: "\"DEF\"".into(),
            if_modified_since: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            if_unmodified_since: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
        });
        let c = plan(&r).unwrap().conditions;
        assert_eq!(c.if_match.as_deref(), Some("\"ABC\""));
        assert_eq!(c.if_none_match.as_deref(), Some("\"DEF\""));
        assert_eq!(
            c.if_modified_since,
            Some(UNIX_EPOCH + Duration::new(1_700_000_000, 5))
        );
        r.source_preconditions = Some(proto::CopySourcePreconditions {
            if_match: "tab\there".into(),
            if_modified_since: Some(prost_types::Timestamp {
                seconds: -1,
                nanos: 0,
            }),
            if_unmodified_since: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: -3,
            }),
            ..Default::default()
        });
        assert_eq!(
            fields(&plan(&r).err().unwrap()),
            [
                "source_preconditions.if_match",
                "source_preconditions.if_modified_since",
                "source_preconditions.if_unmodified_since"
            ]
        );
    }

    #[test]
    fn storage_class_and_acl() {
        let mut r = request();
        r.storage_class = proto::StorageClass::Ia.into();
        r.acl = proto::ObjectAcl::Private.into();
        r.forbid_overwrite = true;
        let input = plan(&r).unwrap();
        assert_eq!(input.storage_class, Some(crate::model::StorageClass::Ia));
        assert_eq!(input.acl, Some(crate::model::ObjectAcl::Private));
        assert!(input.forbid_overwrite);
        r.storage_class = 99;
        r.acl = -1;
        assert_eq!(fields(&plan(&r).err().unwrap()), ["storage_class", "acl"]);
    }
}
