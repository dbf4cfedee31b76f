//! Conversions between the protobuf types and the model/OSS types.

use std::time::SystemTime;

use crate::{
    model::{ObjectAcl, ObjectType, StorageClass, UserMetadata, VersionId},
    oss::ObjectHead,
    proto,
};

/// `UNSPECIFIED` means "let OSS decide" (the bucket's default).
pub fn storage_class_from_proto(class: proto::StorageClass) -> Option<StorageClass> {
    match class {
        proto::StorageClass::Unspecified => None,
        proto::StorageClass::Standard => Some(StorageClass::Standard),
        proto::StorageClass::Ia => Some(StorageClass::Ia),
        proto::StorageClass::Archive => Some(StorageClass::Archive),
        proto::StorageClass::ColdArchive => Some(StorageClass::ColdArchive),
        proto::StorageClass::DeepColdArchive => Some(StorageClass::DeepColdArchive),
    }
}

/// The protobuf value of a storage class OSS reported.
pub fn storage_class_to_proto(class: Option<StorageClass>) -> proto::StorageClass {
    match class {
        None => proto::StorageClass::Unspecified,
        Some(StorageClass::Standard) => proto::StorageClass::Standard,
        Some(StorageClass::Ia) => proto::StorageClass::Ia,
        Some(StorageClass::Archive) => proto::StorageClass::Archive,
        Some(StorageClass::ColdArchive) => proto::StorageClass::ColdArchive,
        Some(StorageClass::DeepColdArchive) => proto::StorageClass::DeepColdArchive,
    }
}

/// `UNSPECIFIED` sends no ACL header.
pub fn acl_from_proto(acl: proto::ObjectAcl) -> Option<ObjectAcl> {
    match acl {
        proto::ObjectAcl::Unspecified => None,
        proto::ObjectAcl::Default => Some(ObjectAcl::Default),
        proto::ObjectAcl::Private => Some(ObjectAcl::Private),
        proto::ObjectAcl::PublicRead => Some(ObjectAcl::PublicRead),
        proto::ObjectAcl::PublicReadWrite => Some(ObjectAcl::PublicReadWrite),
    }
}

/// The protobuf value of an object type OSS reported.
pub fn object_type_to_proto(object_type: Option<ObjectType>) -> proto::ObjectType {
    match object_type {
        None => proto::ObjectType::Unspecified,
        Some(ObjectType::Normal) => proto::ObjectType::Normal,
        Some(ObjectType::Appendable) => proto::ObjectType::Appendable,
        Some(ObjectType::Multipart) => proto::ObjectType::Multipart,
        Some(ObjectType::Symlink) => proto::ObjectType::Symlink,
    }
}

/// A protobuf timestamp.
pub fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

/// A tag set as the protobuf message.
pub fn tagging_to_proto(tags: impl IntoIterator<Item = (String, String)>) -> proto::Tagging {
    proto::Tagging {
        tags: tags.into_iter().collect(),
    }
}

/// User metadata as a protobuf map.
pub fn metadata_to_proto(metadata: UserMetadata) -> std::collections::HashMap<String, String> {
    metadata.into_map().into_iter().collect()
}

/// OSS's view of an object as the protobuf message.
pub fn object_metadata(bucket: &str, key: &str, head: ObjectHead) -> proto::ObjectMetadata {
    proto::ObjectMetadata {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size: i64::try_from(head.size).unwrap_or(i64::MAX),
        etag: head.etag.unwrap_or_default(),
        crc64ecma: head.crc64,
        object_type: object_type_to_proto(head.object_type).into(),
        storage_class: storage_class_to_proto(head.storage_class).into(),
        metadata: metadata_to_proto(head.metadata),
        tag_count: i32::try_from(head.tag_count).unwrap_or(i32::MAX),
        version_id: version_string(head.version_id),
        content_type: head.content.content_type.unwrap_or_default(),
        last_modified: head.last_modified.map(timestamp),
        cache_control: head.content.cache_control.unwrap_or_default(),
        content_disposition: head.content.content_disposition.unwrap_or_default(),
        content_encoding: head.content.content_encoding.unwrap_or_default(),
        expires: head.content.expires.unwrap_or_default(),
        next_append_position: head
            .next_append_position
            .map(|p| i64::try_from(p).unwrap_or(i64::MAX)),
    }
}

/// A version id as the protobuf string ("" when the bucket is not versioned).
pub fn version_string(version_id: Option<VersionId>) -> String {
    version_id.map(VersionId::into_string).unwrap_or_default()
}
