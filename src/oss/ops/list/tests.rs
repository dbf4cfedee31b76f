use std::time::{Duration, SystemTime};

use http::Method;

use super::*;
use crate::oss::error::OssErrorKind;
use crate::oss::ops::test_support::loopback::{Server, response};
use crate::oss::ops::test_support::*;

fn scope(prefix: Option<&str>, delimiter: Option<&str>, max_keys: Option<u32>) -> ListScope {
    ListScope {
        bucket: bucket(),
        prefix: prefix.map(str::to_string),
        delimiter: delimiter.map(str::to_string),
        max_keys,
    }
}

#[test]
fn list_objects_v2_request() {
    let mut input = ListObjectsV2Input {
        scope: scope(Some("photos/a b+c"), Some("/"), Some(2)),
        continuation_token: None,
        start_after: Some("photos/a b+c/0".into()),
    };
    let req = build_list_objects_v2(&input);
    assert_eq!(req.method, Method::GET);
    assert_eq!(req.operation, OssOperation::ListObjectsV2);
    assert_eq!(req.key, None);
    assert!(req.headers.is_empty());
    assert_eq!(
        req.query,
        pairs(&[
            ("list-type", "2"),
            ("encoding-type", "url"),
            ("prefix", "photos/a b+c"),
            ("delimiter", "/"),
            ("max-keys", "2"),
            ("start-after", "photos/a b+c/0"),
        ])
    );
    // fetch-owner is never sent
    assert_eq!(req.query_param("fetch-owner"), None);
    input.continuation_token = Some("CgJiYw--".into());
    input.start_after = None;
    input.scope = scope(None, None, None);
    assert_eq!(
        build_list_objects_v2(&input).query,
        pairs(&[
            ("list-type", "2"),
            ("encoding-type", "url"),
            ("continuation-token", "CgJiYw--"),
        ])
    );
}

/// The example answer of OSS's ListObjectsV2 page (with `encoding-type=url` and a delimiter).
const LIST_V2_DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://doc.oss-cn-hangzhou.aliyuncs.com">
  <Name>examplebucket</Name>
  <Prefix>a%2F</Prefix>
  <MaxKeys>3</MaxKeys>
  <Delimiter>%2F</Delimiter>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>CgJiYw--</NextContinuationToken>
  <Contents>
    <Key>a%2Fb%20c%2Bd</Key>
    <LastModified>2020-05-18T05:45:54.000Z</LastModified>
    <ETag>"35A27C2B9EAEEB6F48FD7FB5861D****"</ETag>
    <Type>Normal</Type>
    <Size>25</Size>
    <StorageClass>STANDARD</StorageClass>
    <Owner><ID>0022012****</ID><DisplayName>user-example</DisplayName></Owner>
  </Contents>
  <Contents>
    <Key>a%2Flog</Key>
    <LastModified>2020-05-18T05:45:55.000Z</LastModified>
    <ETag>"35A27C2B9EAEEB6F48FD7FB5861D****-2"</ETag>
    <Type>Appendable</Type>
    <Size>0</Size>
    <StorageClass>IA</StorageClass>
    <RestoreInfo>ongoing-request="true"</RestoreInfo>
  </Contents>
  <CommonPrefixes>
    <Prefix>a%2Fsub%20dir%2F</Prefix>
  </CommonPrefixes>
  <KeyCount>3</KeyCount>
</ListBucketResult>"#;

#[test]
fn list_objects_v2_result() {
    let out = parse_list_objects_v2(
        200,
        &headers(&[("x-oss-request-id", "RID")]),
        LIST_V2_DOC.as_bytes(),
    )
    .unwrap();
    assert!(out.is_truncated);
    assert_eq!(out.next_continuation_token.as_deref(), Some("CgJiYw--"));
    assert_eq!(out.request_id.as_deref(), Some("RID"));
    assert_eq!(out.common_prefixes, vec!["a/sub dir/".to_string()]);
    assert_eq!(
        out.objects[0],
        ListedObject {
            key: "a/b c+d".into(),
            size: 25,
            etag: Some("\"35A27C2B9EAEEB6F48FD7FB5861D****\"".into()),
            last_modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_589_780_754)),
            storage_class: Some(StorageClass::Standard),
            object_type: Some(ObjectType::Normal),
            version_id: None,
            is_latest: true,
            is_delete_marker: false,
        }
    );
    let log = &out.objects[1];
    assert_eq!(
        (
            log.key.as_str(),
            log.size,
            log.object_type,
            log.storage_class
        ),
        (
            "a/log",
            0,
            Some(ObjectType::Appendable),
            Some(StorageClass::Ia)
        )
    );
    assert_eq!(out.objects.len(), 2);

    // Without EncodingType keys are verbatim; an empty listing is not truncated.
    let out = parse_list_objects_v2(
        200,
        &HeaderMap::new(),
        b"<ListBucketResult><Contents><Key>a%20b</Key><Size>1</Size></Contents></ListBucketResult>",
    )
    .unwrap();
    assert_eq!(out.objects[0].key, "a%20b");
    assert_eq!(out.objects[0].storage_class, None);
    let empty = parse_list_objects_v2(
        200,
        &HeaderMap::new(),
        b"<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>",
    )
    .unwrap();
    assert!(empty.objects.is_empty() && empty.common_prefixes.is_empty() && !empty.is_truncated);
    assert_eq!(empty.next_continuation_token, None);
}

#[test]
fn list_objects_v2_refuses_broken_answers() {
    for bad in [
        &b"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>"[..],
        b"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
        b"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        b"<ListBucketResult><CommonPrefixes><Prefix></Prefix></CommonPrefixes></ListBucketResult>",
        b"<ListVersionsResult/>",
        b"<Error/>",
        b"\xff\xfe",
    ] {
        let err = parse_list_objects_v2(200, &HeaderMap::new(), bad).unwrap_err();
        assert_eq!(
            err.kind,
            OssErrorKind::InvalidResponse,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn list_object_versions_request() {
    let input = ListObjectVersionsInput {
        scope: scope(Some("logs/"), None, Some(1000)),
        key_marker: Some("logs/a b".into()),
        version_id_marker: Some("CAEQ****".into()),
    };
    let req = build_list_object_versions(&input);
    assert_eq!(req.method, Method::GET);
    assert_eq!(req.operation, OssOperation::ListObjectVersions);
    assert_eq!(
        req.query,
        pairs(&[
            ("versions", ""),
            ("encoding-type", "url"),
            ("prefix", "logs/"),
            ("max-keys", "1000"),
            ("key-marker", "logs/a b"),
            ("version-id-marker", "CAEQ****"),
        ])
    );
}

/// The example answer of OSS's ListObjectVersions page, with `encoding-type=url`, a delete
/// marker between two versions and a common prefix.
const LIST_VERSIONS_DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult>
  <Name>examplebucket-1250000000</Name>
  <Prefix/>
  <KeyMarker>example</KeyMarker>
  <VersionIdMarker>CAEQMxiBgICbof2D0BYiIGRhZjgwMzJiMjA3MjQ0ODE5MWYxZDYwMzJlZjU1****</VersionIdMarker>
  <MaxKeys>3</MaxKeys>
  <Delimiter>%2F</Delimiter>
  <IsTruncated>true</IsTruncated>
  <NextKeyMarker>example%20obj</NextKeyMarker>
  <NextVersionIdMarker>CAEQMxiBgMCZov2D0BYiIDY4MDllOTc2YmY5MjQxMzdiOGI3OTlhNTU0ODIx****</NextVersionIdMarker>
  <Version>
    <Key>example%20obj</Key>
    <VersionId>CAEQMxiBgMCZov2D0BYiIDY4MDllOTc2YmY5MjQxMzdiOGI3OTlhNTU0ODIx****</VersionId>
    <IsLatest>false</IsLatest>
    <LastModified>2019-04-09T07:27:28.000Z</LastModified>
    <ETag>"250F8A0AE989679A22926A875F0A2****"</ETag>
    <Type>Multipart</Type>
    <Size>93731</Size>
    <StorageClass>Standard</StorageClass>
    <Owner><ID>1250000000</ID><DisplayName>1250000000</DisplayName></Owner>
  </Version>
  <DeleteMarker>
    <Key>example%20obj</Key>
    <VersionId>CAEQMxiBgICAof2D0BYiIDJhMGE3N2M1YTI1NDQzOGY5NTkyNTI3MGYyMzJm****</VersionId>
    <IsLatest>true</IsLatest>
    <LastModified>2019-04-09T07:27:29.000Z</LastModified>
    <Owner><ID>1250000000</ID><DisplayName>1250000000</DisplayName></Owner>
  </DeleteMarker>
  <Version>
    <Key>plain</Key>
    <VersionId>null</VersionId>
    <IsLatest>true</IsLatest>
    <ETag>"A"</ETag>
    <Size>1</Size>
  </Version>
  <CommonPrefixes><Prefix>dir%2F</Prefix></CommonPrefixes>
  <EncodingType>url</EncodingType>
</ListVersionsResult>"#;

#[test]
fn list_object_versions_result_keeps_order() {
    let out =
        parse_list_object_versions(200, &HeaderMap::new(), LIST_VERSIONS_DOC.as_bytes()).unwrap();
    assert!(out.is_truncated);
    // EncodingType comes last in this answer: the keys and markers are still decoded.
    assert_eq!(out.next_key_marker.as_deref(), Some("example obj"));
    assert_eq!(
        out.next_version_id_marker.as_deref(),
        Some("CAEQMxiBgMCZov2D0BYiIDY4MDllOTc2YmY5MjQxMzdiOGI3OTlhNTU0ODIx****")
    );
    assert_eq!(out.common_prefixes, vec!["dir/".to_string()]);
    let got: Vec<(&str, &str, bool, bool, u64)> = out
        .versions
        .iter()
        .map(|v| {
            (
                v.key.as_str(),
                v.version_id.as_ref().unwrap().as_str(),
                v.is_latest,
                v.is_delete_marker,
                v.size,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "example obj",
                "CAEQMxiBgMCZov2D0BYiIDY4MDllOTc2YmY5MjQxMzdiOGI3OTlhNTU0ODIx****",
                false,
                false,
                93731
            ),
            (
                "example obj",
                "CAEQMxiBgICAof2D0BYiIDJhMGE3N2M1YTI1NDQzOGY5NTkyNTI3MGYyMzJm****",
                true,
                true,
                0
            ),
            ("plain", "null", true, false, 1),
        ]
    );
    assert_eq!(out.versions[0].object_type, Some(ObjectType::Multipart));
    assert_eq!(out.versions[1].etag, None);
    assert!(out.versions[1].last_modified.is_some());
    for bad in [
        &b"<ListVersionsResult><Version><Key>k</Key><Size>1</Size></Version></ListVersionsResult>"[..],
        b"<ListVersionsResult><Version><Key>k</Key><VersionId>v</VersionId></Version></ListVersionsResult>",
        b"<ListVersionsResult><DeleteMarker><Key>k</Key></DeleteMarker></ListVersionsResult>",
        b"<ListVersionsResult><DeleteMarker><Key>k</Key><VersionId>\x01</VersionId></DeleteMarker></ListVersionsResult>",
        b"<ListBucketResult/>",
    ] {
        let err = parse_list_object_versions(200, &HeaderMap::new(), bad).unwrap_err();
        assert_eq!(
            err.kind,
            OssErrorKind::InvalidResponse,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[tokio::test]
async fn client_sends_and_checks_listings() {
    let server = Server::start(|_, s| {
        let body = if s.target.contains("versions") {
            LIST_VERSIONS_DOC
        } else {
            LIST_V2_DOC
        };
        response(200, &[], body)
    })
    .await;
    let client = server.client();
    let page = client
        .list_objects_v2(&ListObjectsV2Input {
            scope: scope(Some("a/"), Some("/"), Some(3)),
            continuation_token: None,
            start_after: None,
        })
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 2);
    let versions = client
        .list_object_versions(&ListObjectVersionsInput {
            scope: scope(None, None, None),
            key_marker: Some("a b".into()),
            version_id_marker: None,
        })
        .await
        .unwrap();
    assert_eq!(versions.versions.len(), 3);
    let seen = server.seen();
    assert_eq!(
        seen[0].target,
        "/examplebucket/?list-type=2&encoding-type=url&prefix=a%2F&delimiter=%2F&max-keys=3"
    );
    assert_eq!(
        seen[1].target,
        "/examplebucket/?versions=&encoding-type=url&key-marker=a%20b"
    );

    // Refused before sending: a page size OSS refuses, an empty delimiter, a lone
    // version-id marker.
    for bad in [
        scope(None, None, Some(0)),
        scope(None, None, Some(1001)),
        scope(None, Some(""), None),
    ] {
        let err = client
            .list_objects_v2(&ListObjectsV2Input {
                scope: bad,
                continuation_token: None,
                start_after: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind, OssErrorKind::InvalidArgument);
    }
    let err = client
        .list_object_versions(&ListObjectVersionsInput {
            scope: scope(None, None, None),
            key_marker: None,
            version_id_marker: Some("v".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, OssErrorKind::InvalidArgument);
    assert_eq!(server.seen().len(), 2);
}
