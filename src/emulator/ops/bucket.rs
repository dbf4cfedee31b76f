//! Buckets and the service: PutBucket, DeleteBucket, ListBuckets (`GET /`), DescribeRegions
//! (`GET /?regions`), GetBucketInfo, GetBucketLocation, GetBucketStat. The settings a
//! bucket carries (ACL, versioning, tags, Block Public Access) are in [`settings`].
//!
//! The emulator is one account in one region (its `--region`): every bucket is in that
//! region and owned by [`OWNER_ID`](super::shared::OWNER_ID). Its endpoints are the address the request reached,
//! with the scheme (`http://127.0.0.1:9000`): a client given a bare host would assume
//! HTTPS, which the emulator does not serve (OSS answers host names without a scheme).

pub(super) mod settings;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::request::read_small_body;
use super::shared::{OWNER, Owner, iso8601, to_xml, xml_response};
use super::{Query, base_response, blocking, finish, header, q_get, set};
use crate::emulator::State;
use crate::emulator::error::ApiError;
use crate::emulator::store::{BucketConfig, BucketSummary};
use crate::model::{BucketName, StorageClass};
use crate::oss::protocol;
use crate::oss::protocol::limit::MAX_LIST_PAGE;

/// The resource group every bucket is in (OSS puts buckets in the account's default group
/// unless PutBucket names one).
const RESOURCE_GROUP_ID: &str = "rg-default";

/// Largest CreateBucketConfiguration or other bucket-settings body.
pub(super) const MAX_SETTINGS_BODY: usize = 64 * 1024;

/// ListBuckets' `max-keys` when the request names none.
const DEFAULT_MAX_BUCKETS: usize = 100;

/// An empty answer with `status`.
pub(super) fn empty(status: StatusCode) -> Result<Response, ApiError> {
    finish(base_response(status), Body::empty())
}

/// The region's name in OSS's own spelling: `oss-cn-hangzhou`.
fn location(state: &State) -> String {
    format!("oss-{}", state.region)
}

/// Where the request reached the emulator, as an endpoint: `http://` and the `Host`
/// (without a leading `<bucket>.` of virtual-host addressing).
fn endpoint(headers: &HeaderMap, bucket: Option<&str>) -> String {
    let host = header(headers, "host").unwrap_or("127.0.0.1");
    let host = bucket
        .and_then(|b| host.strip_prefix(b))
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or(host);
    format!("http://{host}")
}

// ---- PutBucket and DeleteBucket -----------------------------------------------------------

/// `<CreateBucketConfiguration>`: both elements optional.
#[derive(Deserialize, Default)]
struct CreateBucketConfiguration {
    #[serde(rename = "StorageClass")]
    storage_class: Option<String>,
    #[serde(rename = "DataRedundancyType")]
    data_redundancy_type: Option<String>,
}

/// The bucket ACL a header names (`private`, `public-read`, `public-read-write`).
pub(super) fn bucket_acl(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = header(headers, protocol::header::BUCKET_ACL) else {
        return match headers.get(protocol::header::BUCKET_ACL) {
            Some(_) => Err(invalid_acl("")),
            None => Ok(None),
        };
    };
    match raw {
        "private" | "public-read" | "public-read-write" => Ok(Some(raw.to_owned())),
        other => Err(invalid_acl(other)),
    }
}

fn invalid_acl(value: &str) -> ApiError {
    ApiError::invalid_argument("no such bucket access control exists")
        .with("ArgumentName", protocol::header::BUCKET_ACL)
        .with("ArgumentValue", value)
}

pub(super) async fn put_bucket(
    state: &Arc<State>,
    bucket: &str,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    BucketName::parse(bucket).map_err(|_| ApiError::invalid_bucket_name(bucket))?;
    let mut config = BucketConfig::default();
    if let Some(acl) = bucket_acl(headers)? {
        config.acl = acl;
    }
    let bytes =
        read_small_body(body.take().unwrap_or_default(), headers, MAX_SETTINGS_BODY).await?;
    let xml = std::str::from_utf8(&bytes).map_err(|_| ApiError::malformed_xml())?;
    let create = if xml.trim().is_empty() {
        CreateBucketConfiguration::default()
    } else {
        quick_xml::de::from_str::<CreateBucketConfiguration>(xml)
            .map_err(|_| ApiError::malformed_xml())?
    };
    if let Some(class) = create.storage_class.as_deref().map(str::trim) {
        let class = StorageClass::parse(class).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidStorageClass",
                "The storage class you specified is not valid.",
            )
        })?;
        config.storage_class = class.as_str().to_owned();
    }
    if let Some(redundancy) = create.data_redundancy_type.as_deref().map(str::trim) {
        if !matches!(redundancy, "LRS" | "ZRS") {
            return Err(
                ApiError::invalid_argument("DataRedundancyType must be LRS or ZRS.")
                    .with("ArgumentName", "DataRedundancyType")
                    .with("ArgumentValue", redundancy),
            );
        }
        config.data_redundancy_type = redundancy.to_owned();
    }
    let name = bucket.to_owned();
    blocking(state, move |s| s.create_bucket(&name, config)).await?;
    let mut resp = empty(StatusCode::OK)?;
    set(resp.headers_mut(), "location", &format!("/{bucket}"));
    Ok(resp)
}

pub(super) async fn delete_bucket(state: &Arc<State>, bucket: &str) -> Result<Response, ApiError> {
    let has_uploads = state.uploads.counts_in(bucket).0 > 0;
    let name = bucket.to_owned();
    blocking(state, move |s| s.delete_bucket(&name, has_uploads)).await?;
    empty(StatusCode::NO_CONTENT)
}

// ---- ListBuckets ----------------------------------------------------------------------------

#[derive(Serialize)]
struct ListAllMyBucketsResult {
    #[serde(rename = "Prefix")]
    prefix: String,
    #[serde(rename = "Marker")]
    marker: String,
    #[serde(rename = "MaxKeys")]
    max_keys: usize,
    #[serde(rename = "IsTruncated")]
    is_truncated: bool,
    #[serde(rename = "NextMarker", skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
    #[serde(rename = "Owner")]
    owner: Owner,
    #[serde(rename = "Buckets")]
    buckets: Buckets,
}

#[derive(Serialize)]
struct Buckets {
    #[serde(rename = "Bucket")]
    bucket: Vec<BucketEntry>,
}

#[derive(Serialize)]
struct BucketEntry {
    #[serde(rename = "CreationDate")]
    creation_date: String,
    #[serde(rename = "ExtranetEndpoint")]
    extranet_endpoint: String,
    #[serde(rename = "IntranetEndpoint")]
    intranet_endpoint: String,
    #[serde(rename = "Location")]
    location: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Region")]
    region: String,
    #[serde(rename = "ResourceGroupId")]
    resource_group_id: &'static str,
    #[serde(rename = "StorageClass")]
    storage_class: String,
}

/// The tag filter of ListBuckets: `tag-key` (with `tag-value`), or `tagging`, a list of
/// `"key":"value"` pairs that must all match.
fn tag_filter(query: &Query) -> Result<BTreeMap<String, Option<String>>, ApiError> {
    let bad = |name: &str, value: &str, why: &str| {
        ApiError::invalid_argument(why.to_owned())
            .with("ArgumentName", name)
            .with("ArgumentValue", value)
    };
    let (key, value, tagging) = (
        q_get(query, "tag-key"),
        q_get(query, "tag-value"),
        q_get(query, "tagging"),
    );
    let mut filter = BTreeMap::new();
    if let Some(tagging) = tagging.filter(|t| !t.is_empty()) {
        if key.is_some() || value.is_some() {
            return Err(bad(
                "tagging",
                tagging,
                "tagging cannot be used with tag-key or tag-value.",
            ));
        }
        let pairs: BTreeMap<String, String> = serde_json::from_str(&format!("{{{tagging}}}"))
            .map_err(|_| {
                bad(
                    "tagging",
                    tagging,
                    "tagging must be \"key\":\"value\" pairs.",
                )
            })?;
        filter.extend(pairs.into_iter().map(|(k, v)| (k, Some(v))));
    } else if let Some(key) = key.filter(|k| !k.is_empty()) {
        filter.insert(key.to_owned(), value.map(str::to_owned));
    } else if let Some(value) = value {
        return Err(bad("tag-value", value, "tag-value needs tag-key."));
    }
    Ok(filter)
}

pub(super) fn list_buckets(
    state: &Arc<State>,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let prefix = q_get(query, "prefix").unwrap_or("");
    let marker = q_get(query, "marker").unwrap_or("");
    let max_keys = match q_get(query, "max-keys") {
        None | Some("") => DEFAULT_MAX_BUCKETS,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST_PAGE as usize).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "max-keys must be an integer from 1 to {MAX_LIST_PAGE}."
                ))
                .with("ArgumentName", "max-keys")
                .with("ArgumentValue", raw)
            })?,
    };
    let filter = tag_filter(query)?;
    let matches = |b: &BucketSummary| {
        b.name.starts_with(prefix)
            && b.name.as_str() > marker
            && filter.iter().all(|(k, want)| match b.config.tags.get(k) {
                Some(have) => want.as_ref().is_none_or(|w| w == have),
                None => false,
            })
    };
    let mut found: Vec<BucketSummary> = state
        .store
        .list_buckets()
        .into_iter()
        .filter(matches)
        .collect();
    let is_truncated = found.len() > max_keys;
    found.truncate(max_keys);
    let endpoint = endpoint(headers, None);
    let bucket = found
        .into_iter()
        .map(|b| BucketEntry {
            creation_date: iso8601(b.config.created_ms),
            extranet_endpoint: endpoint.clone(),
            intranet_endpoint: endpoint.clone(),
            location: location(state),
            region: state.region.clone(),
            resource_group_id: RESOURCE_GROUP_ID,
            storage_class: b.config.storage_class,
            name: b.name,
        })
        .collect::<Vec<_>>();
    let next_marker = is_truncated
        .then(|| bucket.last().map(|b| b.name.clone()))
        .flatten();
    to_xml(
        "ListAllMyBucketsResult",
        &ListAllMyBucketsResult {
            prefix: prefix.to_owned(),
            marker: marker.to_owned(),
            max_keys,
            is_truncated,
            next_marker,
            owner: OWNER,
            buckets: Buckets { bucket },
        },
    )
}

// ---- DescribeRegions ------------------------------------------------------------------------

/// The regions DescribeRegions lists (besides the emulator's own): the public OSS regions'
/// IDs, whose endpoints follow one pattern.
const REGIONS: &[&str] = &[
    "cn-hangzhou",
    "cn-shanghai",
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-shenzhen",
    "cn-heyuan",
    "cn-guangzhou",
    "cn-chengdu",
    "cn-hongkong",
    "us-west-1",
    "us-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "eu-central-1",
    "eu-west-1",
    "me-east-1",
];

#[derive(Serialize)]
struct RegionInfoList {
    #[serde(rename = "RegionInfo")]
    region_info: Vec<RegionInfo>,
}

#[derive(Serialize)]
struct RegionInfo {
    #[serde(rename = "Region")]
    region: String,
    #[serde(rename = "InternetEndpoint")]
    internet_endpoint: String,
    #[serde(rename = "InternalEndpoint")]
    internal_endpoint: String,
    #[serde(rename = "AccelerateEndpoint")]
    accelerate_endpoint: &'static str,
}

impl RegionInfo {
    /// `id` is the OSS spelling (`oss-cn-hangzhou`).
    fn new(id: String) -> Self {
        Self {
            internet_endpoint: format!("{id}.aliyuncs.com"),
            internal_endpoint: format!("{id}-internal.aliyuncs.com"),
            accelerate_endpoint: "oss-accelerate.aliyuncs.com",
            region: id,
        }
    }
}

pub(super) fn describe_regions(state: &Arc<State>, query: &Query) -> Result<Response, ApiError> {
    let mut known: Vec<String> = REGIONS.iter().map(|r| format!("oss-{r}")).collect();
    if !known.contains(&location(state)) {
        known.push(location(state));
    }
    let wanted = q_get(query, "regions").filter(|r| !r.is_empty());
    let region_info = match wanted {
        None => known.into_iter().map(RegionInfo::new).collect(),
        Some(id) if known.iter().any(|k| k == id) => vec![RegionInfo::new(id.to_owned())],
        Some(id) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NoSuchRegion",
                format!("The specified region does not exist: {id}."),
            ));
        }
    };
    to_xml("RegionInfoList", &RegionInfoList { region_info })
}

// ---- GetBucketInfo, GetBucketLocation, GetBucketStat ---------------------------------------

#[derive(Serialize)]
struct BucketInfo {
    #[serde(rename = "Bucket")]
    bucket: BucketInfoBody,
}

#[derive(Serialize)]
struct BucketInfoBody {
    #[serde(rename = "AccessMonitor")]
    access_monitor: &'static str,
    #[serde(rename = "CreationDate")]
    creation_date: String,
    #[serde(rename = "ExtranetEndpoint")]
    extranet_endpoint: String,
    #[serde(rename = "IntranetEndpoint")]
    intranet_endpoint: String,
    #[serde(rename = "Location")]
    location: String,
    #[serde(rename = "StorageClass")]
    storage_class: String,
    #[serde(rename = "TransferAcceleration")]
    transfer_acceleration: &'static str,
    #[serde(rename = "CrossRegionReplication")]
    cross_region_replication: &'static str,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "ResourceGroupId")]
    resource_group_id: &'static str,
    #[serde(rename = "Owner")]
    owner: Owner,
    #[serde(rename = "AccessControlList")]
    access_control_list: settings::AccessControlList,
    #[serde(rename = "Comment")]
    comment: &'static str,
    #[serde(rename = "DataRedundancyType")]
    data_redundancy_type: String,
    #[serde(rename = "Versioning", skip_serializing_if = "Option::is_none")]
    versioning: Option<&'static str>,
    #[serde(rename = "ServerSideEncryptionRule")]
    sse_rule: SseRule,
    #[serde(rename = "BlockPublicAccess")]
    block_public_access: bool,
}

#[derive(Serialize)]
struct SseRule {
    /// `None`: the emulator encrypts nothing at rest.
    #[serde(rename = "SSEAlgorithm")]
    sse_algorithm: &'static str,
}

pub(super) fn get_bucket_info(
    state: &Arc<State>,
    bucket: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let config = state.store.bucket_config(bucket)?;
    let endpoint = endpoint(headers, Some(bucket));
    to_xml(
        "BucketInfo",
        &BucketInfo {
            bucket: BucketInfoBody {
                access_monitor: "Disabled",
                creation_date: iso8601(config.created_ms),
                extranet_endpoint: endpoint.clone(),
                intranet_endpoint: endpoint,
                location: location(state),
                storage_class: config.storage_class,
                transfer_acceleration: "Disabled",
                cross_region_replication: "Disabled",
                name: bucket.to_owned(),
                resource_group_id: RESOURCE_GROUP_ID,
                owner: OWNER,
                access_control_list: settings::AccessControlList { grant: config.acl },
                comment: "",
                data_redundancy_type: config.data_redundancy_type,
                versioning: config.versioning.status(),
                sse_rule: SseRule {
                    sse_algorithm: "None",
                },
                block_public_access: config.block_public_access,
            },
        },
    )
}

pub(super) fn get_bucket_location(state: &Arc<State>, bucket: &str) -> Result<Response, ApiError> {
    state.store.bucket_config(bucket)?;
    xml_response(super::shared::el("LocationConstraint", &location(state)))
}

/// `<BucketStat>`; "real" storage is what OSS bills (IA and archive objects have a
/// minimum billable size); the emulator reports the stored size for both.
#[derive(Serialize)]
struct BucketStatXml {
    #[serde(rename = "Storage")]
    storage: u64,
    #[serde(rename = "ObjectCount")]
    object_count: u64,
    #[serde(rename = "MultipartUploadCount")]
    multipart_upload_count: u64,
    #[serde(rename = "LiveChannelCount")]
    live_channel_count: u64,
    #[serde(rename = "LastModifiedTime")]
    last_modified_time: u64,
    #[serde(rename = "StandardStorage")]
    standard_storage: u64,
    #[serde(rename = "StandardObjectCount")]
    standard_object_count: u64,
    #[serde(rename = "InfrequentAccessStorage")]
    infrequent_access_storage: u64,
    #[serde(rename = "InfrequentAccessRealStorage")]
    infrequent_access_real_storage: u64,
    #[serde(rename = "InfrequentAccessObjectCount")]
    infrequent_access_object_count: u64,
    #[serde(rename = "ArchiveStorage")]
    archive_storage: u64,
    #[serde(rename = "ArchiveRealStorage")]
    archive_real_storage: u64,
    #[serde(rename = "ArchiveObjectCount")]
    archive_object_count: u64,
    #[serde(rename = "ColdArchiveStorage")]
    cold_archive_storage: u64,
    #[serde(rename = "ColdArchiveRealStorage")]
    cold_archive_real_storage: u64,
    #[serde(rename = "ColdArchiveObjectCount")]
    cold_archive_object_count: u64,
    #[serde(rename = "DeepColdArchiveStorage")]
    deep_cold_archive_storage: u64,
    #[serde(rename = "DeepColdArchiveRealStorage")]
    deep_cold_archive_real_storage: u64,
    #[serde(rename = "DeepColdArchiveObjectCount")]
    deep_cold_archive_object_count: u64,
    #[serde(rename = "MultipartPartCount")]
    multipart_part_count: u64,
    #[serde(rename = "DeleteMarkerCount")]
    delete_marker_count: u64,
}

pub(super) fn get_bucket_stat(state: &Arc<State>, bucket: &str) -> Result<Response, ApiError> {
    let stat = state.store.bucket_stat(bucket)?;
    let (uploads, parts) = state.uploads.counts_in(bucket);
    let class = |name: StorageClass| {
        stat.by_class
            .get(name.as_str())
            .copied()
            .unwrap_or_default()
    };
    let (standard, ia, archive, cold, deep) = (
        class(StorageClass::Standard),
        class(StorageClass::Ia),
        class(StorageClass::Archive),
        class(StorageClass::ColdArchive),
        class(StorageClass::DeepColdArchive),
    );
    to_xml(
        "BucketStat",
        &BucketStatXml {
            storage: stat.storage,
            object_count: stat.object_count,
            multipart_upload_count: uploads,
            live_channel_count: 0,
            last_modified_time: stat.last_modified_s,
            standard_storage: standard.1,
            standard_object_count: standard.0,
            infrequent_access_storage: ia.1,
            infrequent_access_real_storage: ia.1,
            infrequent_access_object_count: ia.0,
            archive_storage: archive.1,
            archive_real_storage: archive.1,
            archive_object_count: archive.0,
            cold_archive_storage: cold.1,
            cold_archive_real_storage: cold.1,
            cold_archive_object_count: cold.0,
            deep_cold_archive_storage: deep.1,
            deep_cold_archive_real_storage: deep.1,
            deep_cold_archive_object_count: deep.0,
            multipart_part_count: parts,
            delete_marker_count: stat.delete_markers,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Query {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn tag_filters() {
        let f = tag_filter(&q(&[("tag-key", "env")])).unwrap();
        assert_eq!(f.get("env"), Some(&None));
        let f = tag_filter(&q(&[("tag-key", "env"), ("tag-value", "test")])).unwrap();
        assert_eq!(f.get("env"), Some(&Some("test".to_owned())));
        let f = tag_filter(&q(&[("tagging", "\"env\":\"test\",\"team\":\"dev\"")])).unwrap();
        assert_eq!(f.len(), 2);
        assert!(tag_filter(&q(&[("tagging", "env=test")])).is_err());
        assert!(tag_filter(&q(&[("tag-value", "x")])).is_err());
        assert!(tag_filter(&q(&[("tagging", "\"a\":\"b\""), ("tag-key", "a")])).is_err());
    }

    #[test]
    fn endpoints_carry_the_scheme_and_drop_the_bucket_label() {
        let h = crate::emulator::ops::header_map(&[("host", "127.0.0.1:9000")]);
        assert_eq!(endpoint(&h, Some("b1")), "http://127.0.0.1:9000");
        let h = crate::emulator::ops::header_map(&[("host", "b1.oss.local:9000")]);
        assert_eq!(endpoint(&h, Some("b1")), "http://oss.local:9000");
    }
}
