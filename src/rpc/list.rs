//! ListObjects: one page of the objects under a prefix (OSS ListObjectsV2), or of every
//! version and delete marker (OSS ListObjectVersions), with common prefixes for a delimiter
//! and, on request, each result's tag set.
//!
//! The service checks `list` on the requested prefix (and `read` with `include_tags`) before
//! this runs. Every result and common prefix is checked again here, so nothing outside what
//! the caller may list is returned and no tag outside what it may read is fetched, whatever
//! OSS answers.

mod page_token;

use futures_util::{StreamExt as _, TryStreamExt as _};
use tonic::Status;

use super::{
    auth::{Access, Operation},
    convert::{object_type_to_proto, storage_class_to_proto, tagging_to_proto, timestamp},
    status::oss_status,
    validate::Validation,
};
use crate::{
    model::{BucketName, ObjectKey, VersionId},
    oss::{
        Client, ListObjectVersionsInput, ListObjectsV2Input, ListScope, ListedObject, ObjectId,
        OssError, OssErrorKind, protocol::limit::MAX_LIST_PAGE,
    },
    proto,
};
use page_token::{ListingQuery, Resume};

/// How ListObjects runs (`[list]` settings).
#[derive(Clone, Debug)]
pub struct ListOptions {
    /// GetObjectTagging requests one `include_tags` page has in flight at most.
    pub tag_parallelism: usize,
}

/// A validated ListObjects request.
struct ListRequest {
    bucket: BucketName,
    prefix: Option<String>,
    delimiter: Option<String>,
    start_after: Option<String>,
    page_size: u32,
    versions: bool,
    include_tags: bool,
    resume: Option<Resume>,
}

/// An optional key-shaped field (a prefix, a start_after): empty, or a valid key.
fn optional_key(v: &mut Validation, field: &str, value: &str) -> Option<Option<String>> {
    if value.is_empty() {
        return Some(None);
    }
    v.key(field, value).map(|key| Some(key.to_string()))
}

fn validate(req: &proto::ListObjectsRequest) -> Result<ListRequest, Status> {
    let mut v = Validation::new();
    let bucket = v.bucket("bucket", &req.bucket);
    let prefix = optional_key(&mut v, "prefix", &req.prefix);
    let start_after = optional_key(&mut v, "start_after", &req.start_after);
    // OSS groups on a delimiter character; "/" is the usual one.
    let delimiter = {
        let mut chars = req.delimiter.chars();
        match (chars.next(), chars.next()) {
            (None, _) => Some(None),
            (Some(c), None) if !c.is_control() => Some(Some(req.delimiter.clone())),
            _ => {
                v.violation(
                    "delimiter",
                    "must be empty or one character that is not a control character",
                );
                None
            }
        }
    };
    let page_size = match u32::try_from(req.page_size) {
        Ok(0) => Some(MAX_LIST_PAGE),
        Ok(n) if n <= MAX_LIST_PAGE => Some(n),
        _ => {
            v.violation(
                "page_size",
                format!(
                    "{} is outside 1..={MAX_LIST_PAGE} (0 means {MAX_LIST_PAGE})",
                    req.page_size
                ),
            );
            None
        }
    };
    let resume = if req.page_token.is_empty() {
        Some(None)
    } else {
        match page_token::decode(&query_of(req), &req.page_token) {
            Ok(resume) => Some(Some(resume)),
            Err(e) => {
                v.violation("page_token", e.to_string());
                None
            }
        }
    };
    v.conclude((|| {
        Some(ListRequest {
            bucket: bucket?,
            prefix: prefix?,
            delimiter: delimiter?,
            start_after: start_after?,
            page_size: page_size?,
            versions: req.versions,
            include_tags: req.include_tags,
            resume: resume?,
        })
    })())
}

fn query_of(req: &proto::ListObjectsRequest) -> ListingQuery<'_> {
    ListingQuery {
        bucket: &req.bucket,
        prefix: &req.prefix,
        delimiter: &req.delimiter,
        start_after: &req.start_after,
        versions: req.versions,
    }
}

/// One page read from OSS, before filtering.
struct Page {
    objects: Vec<ListedObject>,
    prefixes: Vec<String>,
    next: Option<Resume>,
}

/// A truncated answer without a way to continue, or one that would list the same page
/// again, is OSS misbehaving: fail rather than hand the caller an endless listing.
fn stuck(what: &str) -> Status {
    oss_status(OssError::client(
        OssErrorKind::InvalidResponse,
        format!("{what} is truncated but gives no new place to continue from"),
    ))
}

async fn read_page(client: &Client, r: &ListRequest) -> Result<Page, Status> {
    let scope = ListScope {
        bucket: r.bucket.clone(),
        prefix: r.prefix.clone(),
        delimiter: r.delimiter.clone(),
        max_keys: Some(r.page_size),
    };
    if !r.versions {
        let continuation_token = match &r.resume {
            Some(Resume::Continuation(token)) => Some(token.clone()),
            _ => None,
        };
        let input = ListObjectsV2Input {
            scope,
            // OSS ignores start-after with a continuation token: send it on the first page.
            start_after: r
                .start_after
                .clone()
                .filter(|_| continuation_token.is_none()),
            continuation_token: continuation_token.clone(),
        };
        let out = client.list_objects_v2(&input).await.map_err(oss_status)?;
        let next = match (out.is_truncated, out.next_continuation_token) {
            (false, _) => None,
            (true, Some(token)) if Some(&token) != continuation_token.as_ref() => {
                Some(Resume::Continuation(token))
            }
            (true, _) => return Err(stuck("ListObjectsV2")),
        };
        return Ok(Page {
            objects: out.objects,
            prefixes: out.common_prefixes,
            next,
        });
    }
    let (key_marker, version_id_marker) = match &r.resume {
        Some(Resume::Markers {
            key_marker,
            version_id_marker,
        }) => (Some(key_marker.clone()), version_id_marker.clone()),
        // The first page starts after start_after, as the key marker.
        _ => (r.start_after.clone(), None),
    };
    let input = ListObjectVersionsInput {
        scope,
        key_marker: key_marker.clone(),
        version_id_marker: version_id_marker.clone(),
    };
    let out = client
        .list_object_versions(&input)
        .await
        .map_err(oss_status)?;
    let next = match (out.is_truncated, out.next_key_marker) {
        (false, _) => None,
        (true, Some(key))
            if (Some(&key), out.next_version_id_marker.as_ref())
                != (key_marker.as_ref(), version_id_marker.as_ref()) =>
        {
            Some(Resume::Markers {
                key_marker: key,
                version_id_marker: out.next_version_id_marker,
            })
        }
        (true, _) => return Err(stuck("ListObjectVersions")),
    };
    Ok(Page {
        objects: out.versions,
        prefixes: out.common_prefixes,
        next,
    })
}

/// ListObjects (the caller's `list`, and `read` with `include_tags`, on the prefix are
/// checked by the service).
pub async fn list(
    client: &Client,
    options: &ListOptions,
    access: &Access,
    req: proto::ListObjectsRequest,
) -> Result<proto::ListObjectsResponse, Status> {
    let r = validate(&req)?;
    let page = read_page(client, &r).await?;
    let bucket = r.bucket.as_str();
    // Under a permitted prefix every key is permitted; this holds even if OSS answered
    // with keys outside the prefix.
    let objects: Vec<ListedObject> = page
        .objects
        .into_iter()
        .filter(|o| access.allows(Operation::List, bucket, &o.key))
        .collect();
    let prefixes: Vec<String> = page
        .prefixes
        .into_iter()
        .filter(|p| access.allows(Operation::List, bucket, p))
        .collect();
    let tags = if r.include_tags {
        fetch_tags(client, options, access, &r, &objects).await?
    } else {
        vec![None; objects.len()]
    };
    Ok(proto::ListObjectsResponse {
        objects: objects
            .into_iter()
            .zip(tags)
            .map(|(o, tags)| listed_to_proto(o, tags))
            .collect(),
        prefixes,
        next_page_token: page
            .next
            .map(|resume| page_token::encode(&query_of(&req), &resume))
            .unwrap_or_default(),
    })
}

/// The tag set of each object, in order: at most `tag_parallelism` GetObjectTagging in
/// flight, each retried by the client inside the retry budget and the call's deadline.
/// Delete markers have none; an object deleted since it was listed (NOT_FOUND) or whose key
/// the gateway cannot address has none either, rather than failing the page.
async fn fetch_tags(
    client: &Client,
    options: &ListOptions,
    access: &Access,
    r: &ListRequest,
    objects: &[ListedObject],
) -> Result<Vec<Option<proto::Tagging>>, Status> {
    let bucket = r.bucket.as_str();
    let targets: Vec<Option<ObjectId>> = objects
        .iter()
        .map(|o| {
            (!o.is_delete_marker && access.allows(Operation::Read, bucket, &o.key))
                .then(|| ObjectKey::parse(&o.key).ok())
                .flatten()
                .map(|key| ObjectId::new(r.bucket.clone(), key).with_version(tag_version(r, o)))
        })
        .collect();
    futures_util::stream::iter(targets.into_iter().map(|target| tags_of(client, target)))
        .buffered(options.tag_parallelism.max(1))
        .try_collect()
        .await
}

/// The version whose tags a result shows: none for a current listing (the current
/// object's), the listed version for a version listing. The current `null` version (an
/// object written while versioning was off, or in an unversioned bucket) is read as the
/// current object, which it is, without relying on `versionId=null`.
fn tag_version(r: &ListRequest, o: &ListedObject) -> Option<VersionId> {
    let version = o.version_id.clone().filter(|_| r.versions)?;
    (!(o.is_latest && version.as_str() == "null")).then_some(version)
}

async fn tags_of(
    client: &Client,
    target: Option<ObjectId>,
) -> Result<Option<proto::Tagging>, Status> {
    let Some(target) = target else {
        return Ok(None);
    };
    match client.get_object_tagging(&target).await {
        Ok(out) => Ok(Some(tagging_to_proto(out.tags))),
        Err(e) if e.kind == OssErrorKind::NotFound => Ok(None),
        Err(e) => Err(oss_status(e)),
    }
}

fn listed_to_proto(o: ListedObject, tags: Option<proto::Tagging>) -> proto::ListedObject {
    proto::ListedObject {
        key: o.key,
        size: i64::try_from(o.size).unwrap_or(i64::MAX),
        etag: o.etag.unwrap_or_default(),
        last_modified: o.last_modified.map(timestamp),
        storage_class: storage_class_to_proto(o.storage_class).into(),
        object_type: object_type_to_proto(o.object_type).into(),
        version_id: o
            .version_id
            .map(|v| v.as_str().to_string())
            .unwrap_or_default(),
        is_latest: o.is_latest,
        is_delete_marker: o.is_delete_marker,
        tags,
    }
}
