//! The identity of an OSS request: which API operation it is. Each builder in [`super`] sets
//! it, so telemetry reads it from the request instead of guessing it from method, query and
//! headers.

use http::Method;

/// An OSS API operation the gateway sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OssOperation {
    /// `PUT /{key}`.
    PutObject,
    /// `GET /{key}`.
    GetObject,
    /// `HEAD /{key}`.
    HeadObject,
    /// `DELETE /{key}`.
    DeleteObject,
    /// `PUT /{key}` with `x-oss-copy-source`.
    CopyObject,
    /// `POST /{key}?append`.
    AppendObject,
    /// `PUT /{key}?symlink`.
    PutSymlink,
    /// `GET /{key}?symlink`.
    GetSymlink,
    /// `PUT /{key}?tagging`.
    PutObjectTagging,
    /// `GET /{key}?tagging`.
    GetObjectTagging,
    /// `DELETE /{key}?tagging`.
    DeleteObjectTagging,
    /// `POST /{key}?uploads`.
    InitiateMultipartUpload,
    /// `GET /?uploads`.
    ListMultipartUploads,
    /// `PUT /{key}?partNumber&uploadId`.
    UploadPart,
    /// `PUT /{key}?partNumber&uploadId` with `x-oss-copy-source`.
    UploadPartCopy,
    /// `POST /{key}?uploadId`.
    CompleteMultipartUpload,
    /// `DELETE /{key}?uploadId`.
    AbortMultipartUpload,
    /// `GET /{key}?uploadId`.
    ListParts,
    /// `GET /?list-type=2`.
    ListObjectsV2,
    /// `GET /?versions`.
    ListObjectVersions,
    /// `GET /?metaQuery`.
    GetMetaQueryStatus,
    /// `POST /?metaQuery&comp=query`.
    DoMetaQuery,
    /// `POST /?metaQuery&comp=add`.
    OpenMetaQuery,
    /// `POST /?metaQuery&comp=delete`.
    CloseMetaQuery,
}

impl OssOperation {
    /// The HTTP method the operation is sent with.
    pub fn method(self) -> Method {
        match self {
            Self::GetObject
            | Self::GetSymlink
            | Self::GetObjectTagging
            | Self::ListMultipartUploads
            | Self::ListParts
            | Self::ListObjectsV2
            | Self::ListObjectVersions
            | Self::GetMetaQueryStatus => Method::GET,
            Self::HeadObject => Method::HEAD,
            Self::DeleteObject | Self::DeleteObjectTagging | Self::AbortMultipartUpload => {
                Method::DELETE
            }
            Self::AppendObject
            | Self::InitiateMultipartUpload
            | Self::CompleteMultipartUpload
            | Self::DoMetaQuery
            | Self::OpenMetaQuery
            | Self::CloseMetaQuery => Method::POST,
            Self::PutObject
            | Self::CopyObject
            | Self::PutSymlink
            | Self::PutObjectTagging
            | Self::UploadPart
            | Self::UploadPartCopy => Method::PUT,
        }
    }

    /// The OSS API name (`PutObjectTagging`, `UploadPart`, ...): the name of the request's span.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PutObject => "PutObject",
            Self::GetObject => "GetObject",
            Self::HeadObject => "HeadObject",
            Self::DeleteObject => "DeleteObject",
            Self::CopyObject => "CopyObject",
            Self::AppendObject => "AppendObject",
            Self::PutSymlink => "PutSymlink",
            Self::GetSymlink => "GetSymlink",
            Self::PutObjectTagging => "PutObjectTagging",
            Self::GetObjectTagging => "GetObjectTagging",
            Self::DeleteObjectTagging => "DeleteObjectTagging",
            Self::InitiateMultipartUpload => "InitiateMultipartUpload",
            Self::ListMultipartUploads => "ListMultipartUploads",
            Self::UploadPart => "UploadPart",
            Self::UploadPartCopy => "UploadPartCopy",
            Self::CompleteMultipartUpload => "CompleteMultipartUpload",
            Self::AbortMultipartUpload => "AbortMultipartUpload",
            Self::ListParts => "ListParts",
            Self::ListObjectsV2 => "ListObjectsV2",
            Self::ListObjectVersions => "ListObjectVersions",
            Self::GetMetaQueryStatus => "GetMetaQueryStatus",
            Self::DoMetaQuery => "DoMetaQuery",
            Self::OpenMetaQuery => "OpenMetaQuery",
            Self::CloseMetaQuery => "CloseMetaQuery",
        }
    }

    /// The `operation` label of the OSS metrics and of the retry budget's log: the HTTP method
    /// plus the sub-resource, such as `GET ?tagging`, `PUT ?partNumber` or `DELETE`
    /// (object-level requests have none). Coarser than [`Self::name`] (a copy is labelled like
    /// a put) and kept so: dashboards and alerts select on these values.
    pub const fn metric_label(self) -> &'static str {
        match self {
            Self::PutObject | Self::CopyObject => "PUT",
            Self::GetObject => "GET",
            Self::HeadObject => "HEAD",
            Self::DeleteObject => "DELETE",
            Self::AppendObject => "POST ?append",
            Self::PutSymlink => "PUT ?symlink",
            Self::GetSymlink => "GET ?symlink",
            Self::PutObjectTagging => "PUT ?tagging",
            Self::GetObjectTagging => "GET ?tagging",
            Self::DeleteObjectTagging => "DELETE ?tagging",
            Self::InitiateMultipartUpload => "POST ?uploads",
            Self::ListMultipartUploads => "GET ?uploads",
            Self::UploadPart | Self::UploadPartCopy => "PUT ?partNumber",
            Self::CompleteMultipartUpload => "POST ?uploadId",
            Self::AbortMultipartUpload => "DELETE ?uploadId",
            Self::ListParts => "GET ?uploadId",
            Self::ListObjectsV2 => "GET ?list-type",
            Self::ListObjectVersions => "GET ?versions",
            Self::GetMetaQueryStatus => "GET ?metaQuery",
            Self::DoMetaQuery | Self::OpenMetaQuery | Self::CloseMetaQuery => "POST ?metaQuery",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OssOperation::*;

    // The names and labels telemetry derived from method, query and headers before requests
    // carried their operation: spans and metrics must keep them.
    #[test]
    fn span_names() {
        assert_eq!(PutObjectTagging.name(), "PutObjectTagging");
        assert_eq!(GetObjectTagging.name(), "GetObjectTagging");
        assert_eq!(UploadPart.name(), "UploadPart");
        assert_eq!(UploadPartCopy.name(), "UploadPartCopy");
        assert_eq!(InitiateMultipartUpload.name(), "InitiateMultipartUpload");
        assert_eq!(CompleteMultipartUpload.name(), "CompleteMultipartUpload");
        assert_eq!(CopyObject.name(), "CopyObject");
        assert_eq!(PutObject.name(), "PutObject");
        assert_eq!(HeadObject.name(), "HeadObject");
    }

    #[test]
    fn metric_labels_carry_the_subresource() {
        assert_eq!(GetObjectTagging.metric_label(), "GET ?tagging");
        assert_eq!(PutObject.metric_label(), "PUT");
        assert_eq!(UploadPart.metric_label(), "PUT ?partNumber");
        assert_eq!(UploadPartCopy.metric_label(), "PUT ?partNumber");
    }

    #[test]
    fn methods() {
        assert_eq!(PutObjectTagging.method(), http::Method::PUT);
        assert_eq!(ListMultipartUploads.method(), http::Method::GET);
        assert_eq!(AbortMultipartUpload.method(), http::Method::DELETE);
        assert_eq!(AppendObject.method(), http::Method::POST);
        assert_eq!(HeadObject.method(), http::Method::HEAD);
    }
}
