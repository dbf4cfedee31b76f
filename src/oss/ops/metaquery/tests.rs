use http::Method;

use super::*;
use crate::model::query::Query;
use crate::oss::error::OssErrorKind;
use crate::oss::ops::Payload;
use crate::oss::ops::test_support::*;

fn pushed(text: &str) -> Json {
    let query = Query::parse(text).unwrap();
    let filter = query.expr().pushdown().filter.expect("pushable");
    MetaQueryCondition::from_filter(&filter).to_json()
}

#[test]
fn status_request_and_answer() {
    let req = build_get_meta_query_status(&bucket());
    assert_eq!(req.method, Method::GET);
    assert_eq!(req.query, vec![("metaQuery".to_string(), String::new())]);
    assert_eq!(req.operation, OssOperation::GetMetaQueryStatus);

    let body = "<MetaQueryStatus><State>Running</State><Phase>IncrementalScanning</Phase>\
        <CreateTime>2021-08-02T10:49:17.289372919+08:00</CreateTime>\
        <UpdateTime>2021-08-02T10:49:17.289372919+08:00</UpdateTime></MetaQueryStatus>";
    let s =
        parse_get_meta_query_status(200, &headers(&[("x-oss-request-id", "R")]), body.as_bytes())
            .unwrap();
    assert!(s.is_queryable());
    assert_eq!(s.phase.as_deref(), Some("IncrementalScanning"));
    assert_eq!(s.request_id.as_deref(), Some("R"));

    // Ready is an index still being prepared: not queryable.
    let ready =
        "<MetaQueryStatus><State>Ready</State><Phase>FullScanning</Phase></MetaQueryStatus>";
    assert!(
        !parse_get_meta_query_status(200, &headers(&[]), ready.as_bytes())
            .unwrap()
            .is_queryable()
    );
    let err = parse_get_meta_query_status(200, &headers(&[]), b"<MetaQueryStatus/>").unwrap_err();
    assert_eq!(err.kind, OssErrorKind::InvalidResponse);
}

#[test]
fn metaquery_not_exist_is_not_found() {
    let (kind, retryable) = crate::oss::error::classify(404, "MetaQueryNotExist");
    assert_eq!(kind, OssErrorKind::NotFound);
    assert!(!retryable);
}

#[test]
fn filters_translate_to_the_documented_json() {
    assert_eq!(
        pushed(r#""team" = 'storage'"#),
        json!({"Field": "OSSTagging.team", "Value": "storage", "Operation": "eq"})
    );
    assert_eq!(
        pushed(r#""env" STARTS_WITH 'prod' AND @size >= 1024 AND @key < 'm'"#),
        json!({"Operation": "and", "SubQueries": [
            {"Field": "OSSTagging.env", "Value": "prod", "Operation": "prefix"},
            {"Field": "Size", "Value": "1024", "Operation": "gte"},
            {"Field": "Filename", "Value": "m", "Operation": "lt"},
        ]})
    );
    assert_eq!(
        pushed(r#""a" > '1' OR @modified <= '2024-01-01T08:00:00+08:00'"#),
        json!({"Operation": "or", "SubQueries": [
            {"Field": "OSSTagging.a", "Value": "1", "Operation": "gt"},
            {"Field": "FileModifiedTime", "Value": "2024-01-01T00:00:00Z", "Operation": "lte"},
        ]})
    );
    // `<>` has no MetaQuery operation: lt OR gt.
    assert_eq!(
        pushed(r#""a" <> 'x'"#),
        json!({"Operation": "or", "SubQueries": [
            {"Field": "OSSTagging.a", "Value": "x", "Operation": "lt"},
            {"Field": "OSSTagging.a", "Value": "x", "Operation": "gt"},
        ]})
    );
}

#[test]
fn scoped_condition_adds_the_prefix() {
    let c = MetaQueryCondition::from_filter(
        &Query::parse(r#""a" = '1' AND "b" = '2'"#)
            .unwrap()
            .expr()
            .pushdown()
            .filter
            .unwrap(),
    )
    .and(MetaQueryCondition::key_prefix("logs/"));
    let MetaQueryCondition::And(parts) = &c else {
        panic!("{c:?}")
    };
    assert_eq!(parts.len(), 3, "flattened");
}

#[test]
fn do_meta_query_request() {
    let input = DoMetaQueryInput {
        bucket: bucket(),
        query: MetaQueryCondition::key_prefix("a&b"),
        next_token: Some("tok<1>".into()),
        max_results: 100,
    };
    let req = build_do_meta_query(&input);
    assert_eq!(req.method, Method::POST);
    assert_eq!(
        req.query,
        vec![
            ("metaQuery".to_string(), String::new()),
            ("comp".to_string(), "query".to_string()),
            ("mode".to_string(), "basic".to_string()),
        ]
    );
    let Payload::Bytes(body) = &req.payload else {
        panic!("no body")
    };
    let body = std::str::from_utf8(body).unwrap();
    assert!(
        body.contains("<NextToken>tok&lt;1&gt;</NextToken>"),
        "{body}"
    );
    assert!(body.contains("<MaxResults>100</MaxResults>"), "{body}");
    assert!(
        body.contains(
            "<Query>{&quot;Field&quot;:&quot;Filename&quot;,&quot;Operation&quot;:&quot;prefix&quot;,&quot;Value&quot;:&quot;a&amp;b&quot;}</Query>"
        ),
        "{body}"
    );
    assert!(req.header("content-md5").is_some());
}

#[test]
fn do_meta_query_answer() {
    let body = r#"<MetaQuery><NextToken>NT</NextToken><Files>
        <File><Filename>a/1.txt</Filename><Size>12</Size>
          <FileModifiedTime>2021-06-29T14:50:13.011643661+08:00</FileModifiedTime>
          <ETag>"5B3C"</ETag><OSSTaggingCount>2</OSSTaggingCount>
          <OSSTagging><Tagging><Key>team</Key><Value>storage</Value></Tagging>
          <Tagging><Key>empty</Key><Value></Value></Tagging></OSSTagging></File>
        <File><Filename>a/2.txt</Filename><Size>0</Size></File>
        </Files></MetaQuery>"#;
    let out = parse_do_meta_query(200, &headers(&[]), body.as_bytes()).unwrap();
    assert_eq!(out.next_token.as_deref(), Some("NT"));
    assert_eq!(out.files.len(), 2);
    let f = &out.files[0];
    assert_eq!(f.key, "a/1.txt");
    assert_eq!(f.size, 12);
    assert_eq!(f.etag.as_deref(), Some("\"5B3C\""));
    assert!(f.modified.is_some());
    assert_eq!(
        f.tags,
        vec![
            ("team".to_string(), "storage".to_string()),
            ("empty".to_string(), String::new())
        ]
    );
    assert!(out.files[1].tags.is_empty());

    let last = "<MetaQuery><NextToken></NextToken><Files/></MetaQuery>";
    let out = parse_do_meta_query(200, &headers(&[]), last.as_bytes()).unwrap();
    assert_eq!(out.next_token, None);
    assert!(out.files.is_empty());

    let bad = "<MetaQuery><Files><File><Size>1</Size></File></Files></MetaQuery>";
    assert_eq!(
        parse_do_meta_query(200, &headers(&[]), bad.as_bytes())
            .unwrap_err()
            .kind,
        OssErrorKind::InvalidResponse
    );
}

#[test]
fn open_and_close_requests() {
    let open = build_open_meta_query(&bucket());
    assert_eq!(open.method, Method::POST);
    assert_eq!(
        open.query,
        vec![
            ("metaQuery".to_string(), String::new()),
            ("comp".to_string(), "add".to_string()),
            ("mode".to_string(), "basic".to_string()),
        ]
    );
    assert_eq!(open.payload, Payload::Empty);
    let close = build_close_meta_query(&bucket());
    assert_eq!(close.operation, OssOperation::CloseMetaQuery);
    assert_eq!(
        close.query,
        vec![
            ("metaQuery".to_string(), String::new()),
            ("comp".to_string(), "delete".to_string()),
        ]
    );
}
