//! The one HTTP handler and the route table: counts the request, routes it, verifies it,
//! dispatches it to its operation group (one file each), and renders OSS-shaped responses
//! and errors with the response helpers below, which every group shares.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

mod acl;
mod append;
mod copy;
mod delete_multiple;
mod listing;
mod metaquery;
pub(super) mod multipart;
mod object;
mod request;
mod restore;
mod shared;
mod symlink;
mod tagging;
mod versions;

pub(crate) use restore::DEFAULT_RESTORE_DELAY;

use crate::emulator::State;
use crate::emulator::auth::{self, AuthRequest};
use crate::emulator::error::ApiError;
use crate::emulator::route::{self, Target};
use crate::emulator::store::Version;
use crate::model::ObjectKey;
use crate::oss::protocol;

type Query = Vec<(String, String)>;

fn q_has(q: &Query, name: &str) -> bool {
    q.iter().any(|(k, _)| k == name)
}

fn q_get<'a>(q: &'a Query, name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The axum fallback handler.
pub(crate) async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    req: Request,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let request_id = new_request_id();
    let is_head = req.method() == Method::HEAD;
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let host_id = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("oss-emulator")
        .to_owned();
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let outcome = match crate::emulator::faults::on_request(&state, &parts).await {
        Some(early) => early,
        None if state.sts.is_sts_request(&parts) => state.sts.handle(&parts, body.take()).await,
        None => dispatch(&state, parts, &mut body).await,
    };
    let mut response = match outcome {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(request_id, error = %e, "request failed");
            error_response(&e, is_head, &request_id, &host_id)
        }
    };
    let h = response.headers_mut();
    put(h, protocol::header::REQUEST_ID, &request_id);
    put(h, "server", "AliyunOSS");
    put(h, "date", &httpdate::fmt_http_date(SystemTime::now()));
    put(
        h,
        protocol::header::SERVER_TIME,
        &started.elapsed().as_millis().to_string(),
    );
    tracing::debug!(
        request_id,
        %method,
        path,
        status = response.status().as_u16(),
        "request"
    );
    response
}

/// Renders an error: XML body, or for HEAD no body and `x-oss-err`/`x-oss-ec` headers.
pub(crate) fn error_response(
    e: &ApiError,
    is_head: bool,
    request_id: &str,
    host_id: &str,
) -> Response {
    let xml = e.to_xml(request_id, host_id);
    let mut builder = Response::builder().status(e.status);
    // HEAD and 304 responses carry no body.
    let mut response = if is_head || e.status == StatusCode::NOT_MODIFIED {
        let encoded = base64::engine::general_purpose::STANDARD.encode(xml.as_bytes());
        builder = builder.header(protocol::header::ERR, encoded);
        builder.body(Body::empty())
    } else {
        builder
            .header("content-type", "application/xml")
            .body(Body::from(xml))
    }
    .unwrap_or_else(|_| Response::new(Body::empty()));
    let h = response.headers_mut();
    if let Some(ec) = &e.ec {
        put(h, protocol::header::EC, ec);
    }
    for (name, value) in &e.headers {
        put(h, name, value);
    }
    response
}

/// Sets a header, skipping values HTTP cannot carry (never panics).
fn put(h: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        h.insert(n, v);
    }
}

fn new_request_id() -> String {
    let id = uuid::Uuid::new_v4();
    hex::encode_upper(&id.as_bytes()[..12])
}

/// A request's headers as `(lower-case name, value)`; values that are not UTF-8 are
/// converted lossily (they can never verify, and are rejected where they matter).
fn header_list(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(n, v)| (n.as_str().to_owned(), header_text(v.as_bytes())))
        .collect()
}

/// A header value as text: UTF-8 if it is, else Latin-1 (what Python's http.client sends
/// for non-ASCII `str` values, which the SDKs signed as text). Such values then fail
/// validation with a clear error instead of a signature mismatch.
fn header_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

struct Ctx {
    bucket: String,
    key: String,
    query: Query,
    headers: HeaderMap,
    versioned: bool,
}

impl Ctx {
    fn version_id(&self) -> Option<&str> {
        q_get(&self.query, "versionId")
    }
}

/// Routes, authenticates and runs one request. Operations that read the body take it out
/// of `body` (room for a later fault injector to see what was left unread).
async fn dispatch(
    state: &Arc<State>,
    parts: http::request::Parts,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let query = route::parse_query(parts.uri.query())?;
    let host = header(&parts.headers, "host");
    let store = state.store.clone();
    let Target { bucket, key } = route::resolve(host, parts.uri.path(), &|b| store.has_bucket(b))?;
    let method = parts.method.clone();
    if state.verify_signatures {
        let headers = header_list(&parts.headers);
        auth::verify(
            &AuthRequest {
                method: method.as_str(),
                bucket: bucket.as_deref(),
                key: key.as_deref(),
                query: &query,
                headers: &headers,
            },
            &state.sts.accepted(&state.credentials, SystemTime::now()),
            &state.region,
            SystemTime::now(),
        )
        .map_err(|e| state.sts.explain(e))?;
    }
    let Some(bucket) = bucket else {
        return Err(ApiError::not_implemented(
            "Service-level operations (ListBuckets)",
        ));
    };
    let Some(key) = key else {
        return bucket_operation(state, &method, &bucket, &query, &parts.headers, body).await;
    };
    // An operation the emulator lacks is 501 whatever the bucket and key: a NoSuchBucket or
    // InvalidObjectName would tell the client something false about its request.
    let op = object_operation(&method, &query, &parts.headers)?;
    let versioned = state.store.is_versioned(&bucket)?;
    if let Err(v) = ObjectKey::parse(&key) {
        let ec = if key.starts_with('/') || key.starts_with('\\') {
            "0016-00000005"
        } else {
            "0016-00000002"
        };
        return Err(ApiError::invalid_object_name(format!(
            "The specified object is not valid: {}",
            v.description
        ))
        .ec(ec));
    }
    let ctx = Ctx {
        bucket,
        key,
        query,
        headers: parts.headers,
        versioned,
    };
    match op {
        ObjectOp::InitiateMultipartUpload => multipart::initiate(state, &ctx).await,
        ObjectOp::AppendObject => append::append(state, &ctx, body).await,
        ObjectOp::CompleteMultipartUpload => multipart::complete(state, &ctx, body).await,
        ObjectOp::UploadPartCopy => multipart::upload_part_copy(state, &ctx).await,
        ObjectOp::UploadPart => multipart::upload_part(state, &ctx, body).await,
        ObjectOp::CopyObject => copy::copy_object(state, &ctx).await,
        ObjectOp::ListParts => multipart::list_parts(state, &ctx),
        ObjectOp::AbortMultipartUpload => multipart::abort(state, &ctx).await,
        ObjectOp::PutObjectTagging => {
            tagging::put_tagging(state, &ctx, body.take().unwrap_or_default()).await
        }
        ObjectOp::PutSymlink => symlink::put_symlink(state, &ctx).await,
        ObjectOp::PutObject => object::put_object(state, &ctx, body).await,
        ObjectOp::GetObjectTagging => tagging::get_tagging(state, &ctx),
        ObjectOp::GetSymlink => symlink::get_symlink(state, &ctx),
        ObjectOp::GetObjectMeta => object::get_object_meta(state, &ctx),
        ObjectOp::GetObject => object::get_object(state, &ctx, false),
        ObjectOp::HeadObject => object::get_object(state, &ctx, true),
        ObjectOp::DeleteObjectTagging => tagging::delete_tagging(state, &ctx).await,
        ObjectOp::DeleteObject => object::delete_object(state, &ctx).await,
        ObjectOp::GetObjectAcl => acl::get_acl(state, &ctx),
        ObjectOp::PutObjectAcl => acl::put_acl(state, &ctx).await,
        ObjectOp::RestoreObject => restore::restore_object(state, &ctx, body).await,
    }
}

/// The query parameters of ListObjects (V1), which has no sub-resource of its own: a GET of
/// the bucket with anything else names an operation the emulator lacks.
const LIST_OBJECTS_PARAMS: &[&str] =
    &["prefix", "delimiter", "marker", "max-keys", "encoding-type"];

/// The route table of bucket-level requests (listings and DeleteMultipleObjects); others
/// are 501 NotImplemented.
async fn bucket_operation(
    state: &Arc<State>,
    method: &Method,
    bucket: &str,
    query: &Query,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    match *method {
        _ if q_has(query, "metaQuery") => {
            metaquery::handle(state, bucket, method, query, headers, body).await
        }
        Method::GET if q_has(query, "uploads") => {
            state.store.is_versioned(bucket)?;
            multipart::list_uploads(state, bucket, query)
        }
        Method::GET if q_has(query, "versions") => {
            versions::list_object_versions(state, bucket, query)
        }
        Method::GET if q_get(query, "list-type") == Some("2") => {
            listing::list_objects_v2(state, bucket, query)
        }
        Method::GET
            if query
                .iter()
                .all(|(k, _)| LIST_OBJECTS_PARAMS.contains(&k.as_str())) =>
        {
            listing::list_objects_v1(state, bucket, query)
        }
        Method::POST if q_has(query, "delete") => {
            delete_multiple::delete_multiple(state, bucket, query, headers, body).await
        }
        _ => Err(ApiError::not_implemented("Bucket-level operations")),
    }
}

/// The object-level operations the emulator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectOp {
    InitiateMultipartUpload,
    AppendObject,
    CompleteMultipartUpload,
    UploadPartCopy,
    UploadPart,
    CopyObject,
    ListParts,
    AbortMultipartUpload,
    PutObjectTagging,
    PutSymlink,
    PutObject,
    GetObjectTagging,
    GetSymlink,
    GetObjectMeta,
    GetObject,
    HeadObject,
    DeleteObjectTagging,
    DeleteObject,
    GetObjectAcl,
    PutObjectAcl,
    RestoreObject,
}

/// The route table of object-level requests: which operation a method, query and headers
/// name, or 501 NotImplemented (405 for a method OSS has no object operation for).
fn object_operation(method: &Method, q: &Query, headers: &HeaderMap) -> Result<ObjectOp, ApiError> {
    let copy = headers.contains_key(protocol::header::COPY_SOURCE);
    // PUT ?tagging and PUT ?symlink win over the multipart and copy routes.
    let tagging_or_symlink = q_has(q, "tagging") || q_has(q, "symlink");
    // Sub-resources this emulator does not implement, once the routes that use them are past.
    let unsupported = ["append", "uploads", "uploadId", "partNumber"]
        .into_iter()
        .find(|name| q_has(q, name));
    Ok(match *method {
        Method::POST if q_has(q, "uploads") => ObjectOp::InitiateMultipartUpload,
        Method::POST if q_has(q, "append") => ObjectOp::AppendObject,
        Method::POST if q_has(q, "uploadId") => ObjectOp::CompleteMultipartUpload,
        Method::PUT if !tagging_or_symlink && (q_has(q, "uploadId") || q_has(q, "partNumber")) => {
            if copy {
                ObjectOp::UploadPartCopy
            } else {
                ObjectOp::UploadPart
            }
        }
        Method::PUT if !tagging_or_symlink && copy => ObjectOp::CopyObject,
        Method::GET if q_has(q, "uploadId") => ObjectOp::ListParts,
        Method::DELETE if q_has(q, "uploadId") => ObjectOp::AbortMultipartUpload,
        Method::POST if q_has(q, "restore") => ObjectOp::RestoreObject,
        Method::GET if q_has(q, "acl") => ObjectOp::GetObjectAcl,
        Method::PUT if q_has(q, "acl") => ObjectOp::PutObjectAcl,
        _ if let Some(name) = unsupported => {
            return Err(ApiError::not_implemented(&format!(
                "The {name:?} sub-resource"
            )));
        }
        Method::PUT if q_has(q, "tagging") => ObjectOp::PutObjectTagging,
        Method::PUT if q_has(q, "symlink") => ObjectOp::PutSymlink,
        Method::PUT => ObjectOp::PutObject,
        Method::GET if q_has(q, "tagging") => ObjectOp::GetObjectTagging,
        Method::GET if q_has(q, "symlink") => ObjectOp::GetSymlink,
        Method::GET | Method::HEAD if q_has(q, "objectMeta") => ObjectOp::GetObjectMeta,
        Method::GET => ObjectOp::GetObject,
        Method::HEAD => ObjectOp::HeadObject,
        Method::DELETE if q_has(q, "tagging") => ObjectOp::DeleteObjectTagging,
        Method::DELETE => ObjectOp::DeleteObject,
        Method::POST => return Err(ApiError::not_implemented("This POST operation")),
        ref other => return Err(ApiError::method_not_allowed(other.as_str())),
    })
}

/// Runs a store mutation off the async threads (disk writes fsync).
async fn blocking<T: Send + 'static>(
    state: &Arc<State>,
    f: impl FnOnce(&crate::emulator::store::Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
}

fn base_response(status: StatusCode) -> http::response::Builder {
    Response::builder().status(status)
}

fn finish(builder: http::response::Builder, body: Body) -> Result<Response, ApiError> {
    builder
        .body(body)
        .map_err(|e| ApiError::internal(format!("cannot build the response: {e}")))
}

fn set(h: &mut HeaderMap, name: &str, value: &str) {
    put(h, name, value);
}

fn version_header(h: &mut HeaderMap, v: &Version) {
    if let Some(id) = &v.version_id {
        set(h, protocol::header::VERSION_ID, id);
    }
}

fn http_date_ms(ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

/// A header map from `(name, value)` pairs, for the operation groups' unit tests.
#[cfg(test)]
fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    m
}
