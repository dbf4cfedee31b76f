use super::*;

fn request(query: &str) -> proto::FindObjectsRequest {
    proto::FindObjectsRequest {
        bucket: "bucket-1".into(),
        prefix: "logs/".into(),
        query: query.into(),
        ..Default::default()
    }
}

fn violations(status: &Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .expect("a BadRequest")
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

#[test]
fn defaults() {
    let p = plan(request(r#""team" = 'storage'"#)).unwrap();
    assert_eq!(p.engine, proto::FindEngine::Auto);
    assert_eq!(p.batch_size, DEFAULT_BATCH);
    assert_eq!(p.limit, None);
    assert_eq!(p.scope.as_deref(), Some("logs/"));
}

#[test]
fn parse_errors_carry_position_and_reason() {
    let err = plan(request(r#""team" = "#)).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let v = violations(&err);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, "query");
    assert!(v[0].1.starts_with("at 9: "), "{v:?}");

    let err = plan(request("  ")).unwrap_err();
    assert_eq!(violations(&err), vec![("query".into(), "is empty".into())]);
}

#[test]
fn every_bad_field_is_listed() {
    let mut r = request(r#""a" = 'b'"#);
    r.bucket = "No".into();
    r.batch_size = 1001;
    r.limit = -1;
    r.engine = 99;
    let fields: Vec<String> = violations(&plan(r).unwrap_err())
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, ["bucket", "engine", "batch_size", "limit"]);
}

#[test]
fn scope_is_the_narrower_prefix() {
    assert_eq!(narrowest_scope("logs/", None).as_deref(), Some("logs/"));
    assert_eq!(
        narrowest_scope("logs/", Some("logs/2024/".into())).as_deref(),
        Some("logs/2024/")
    );
    assert_eq!(
        narrowest_scope("logs/2024/", Some("logs/".into())).as_deref(),
        Some("logs/2024/")
    );
    assert_eq!(narrowest_scope("logs/", Some("img/".into())), None);
    let p = plan(request(r#"@key STARTS_WITH 'logs/a' AND "x" = '1'"#)).unwrap();
    assert_eq!(p.scope.as_deref(), Some("logs/a"));
}
