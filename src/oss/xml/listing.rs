//! The bodies of ListObjectsV2 (`<ListBucketResult>`) and ListObjectVersions
//! (`<ListVersionsResult>`).
//!
//! Each document is read as one sequence of children rather than as named fields: OSS may
//! interleave `<Version>` and `<DeleteMarker>` (their order is the listing's order, newest
//! version of a key first) and `<Contents>` and `<CommonPrefixes>`, and serde's named `Vec`
//! fields refuse a list whose elements are not adjacent. Unknown children are `Other`.

use serde::Deserialize;

/// One `<Contents>` (ListObjectsV2) or `<Version>` / `<DeleteMarker>` (ListObjectVersions).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ListedEntry {
    /// `Key` (URL-encoded when the document's `EncodingType` is `url`).
    #[serde(rename = "Key")]
    pub key: Option<String>,
    /// `VersionId` (ListObjectVersions only).
    #[serde(rename = "VersionId")]
    pub version_id: Option<String>,
    /// `IsLatest` (ListObjectVersions only).
    #[serde(rename = "IsLatest")]
    pub is_latest: Option<String>,
    /// `LastModified` (ISO 8601).
    #[serde(rename = "LastModified")]
    pub last_modified: Option<String>,
    /// `ETag` (quoted); absent on delete markers.
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    /// `Type`: Normal, Appendable, Multipart (Symlink is listed as Symlink).
    #[serde(rename = "Type")]
    pub object_type: Option<String>,
    /// `Size` in bytes; absent on delete markers.
    #[serde(rename = "Size")]
    pub size: Option<String>,
    /// `StorageClass`.
    #[serde(rename = "StorageClass")]
    pub storage_class: Option<String>,
}

/// One `<CommonPrefixes>`: a group of keys that share the prefix up to the delimiter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ListedPrefix {
    /// `Prefix` (URL-encoded when the document's `EncodingType` is `url`).
    #[serde(rename = "Prefix")]
    pub prefix: Option<String>,
}

/// A child of `<ListBucketResult>` or `<ListVersionsResult>`, in document order.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum ListingChild {
    /// `<Contents>`: an object (ListObjectsV2).
    Contents(ListedEntry),
    /// `<Version>`: a version of an object (ListObjectVersions).
    Version(ListedEntry),
    /// `<DeleteMarker>` (ListObjectVersions).
    DeleteMarker(ListedEntry),
    /// `<CommonPrefixes>`.
    CommonPrefixes(ListedPrefix),
    /// `<EncodingType>`.
    EncodingType(String),
    /// `<IsTruncated>`.
    IsTruncated(String),
    /// `<NextContinuationToken>` (ListObjectsV2).
    NextContinuationToken(String),
    /// `<NextKeyMarker>` (ListObjectVersions).
    NextKeyMarker(String),
    /// `<NextVersionIdMarker>` (ListObjectVersions).
    NextVersionIdMarker(String),
    /// Any other child (`Name`, `Prefix`, `MaxKeys`, `KeyCount`, …), not needed here.
    #[serde(other)]
    Other,
}

/// `<ListBucketResult>` or `<ListVersionsResult>`: its children in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ListingDocument {
    /// Every child element.
    #[serde(rename = "$value")]
    pub children: Vec<ListingChild>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::xml::parse_document;

    #[test]
    fn keeps_document_order_and_skips_unknown_children() {
        let doc: ListingDocument = parse_document(
            "<ListVersionsResult><Name>b</Name><IsTruncated>true</IsTruncated>\
             <Version><Key>a</Key><VersionId>2</VersionId><Owner><ID>1</ID></Owner></Version>\
             <DeleteMarker><Key>a</Key><VersionId>1</VersionId></DeleteMarker>\
             <CommonPrefixes><Prefix>c/</Prefix></CommonPrefixes><Version><Key>d</Key></Version>\
             <Future><X>1</X></Future><Empty/></ListVersionsResult>",
            "ListVersionsResult",
        )
        .unwrap();
        let kinds: Vec<&str> = doc
            .children
            .iter()
            .map(|c| match c {
                ListingChild::Version(_) => "V",
                ListingChild::DeleteMarker(_) => "D",
                ListingChild::CommonPrefixes(_) => "P",
                ListingChild::IsTruncated(_) => "T",
                _ => "-",
            })
            .collect();
        assert_eq!(kinds, ["-", "T", "V", "D", "P", "V", "-", "-"]);
        let empty: ListingDocument =
            parse_document("<ListBucketResult/>", "ListBucketResult").unwrap();
        assert!(empty.children.is_empty());
    }
}
