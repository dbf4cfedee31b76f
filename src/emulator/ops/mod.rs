//! The one HTTP handler: counts the request, routes it, verifies it, runs the operation,
//! and renders OSS-shaped responses and errors.

use crate::oss::protocol::limit::MAX_SINGLE_REQUEST_BYTES;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;

mod append;
mod copy;
pub(super) mod multipart;
mod shared;

use crate::emulator::State;
use crate::emulator::auth::{self, AuthRequest};
use crate::emulator::error::ApiError;
use crate::emulator::route::{self, Target};
use crate::emulator::store::{Kind, Version};
use crate::model::{ObjectAcl, ObjectKey, StorageClass, TagSet, UserMetadata, Violation};
use crate::oss::xml::{parse_tagging_xml, tagging_xml};

/// Largest PutObjectTagging body: 10 tags of at most 128 + 256 characters, each up to 4
/// bytes of UTF-8 or a 5-byte XML escape, fit in under 20 KB; 64 KiB leaves room for
/// whitespace. (CompleteMultipartUpload has its own, larger limit.)
const MAX_TAGGING_BODY: usize = 64 * 1024;
/// Entity headers stored with an object and returned on GET/HEAD.
const ENTITY_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

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
    put(h, "x-oss-request-id", &request_id);
    put(h, "server", "AliyunOSS");
    put(h, "date", &httpdate::fmt_http_date(SystemTime::now()));
    put(
        h,
        "x-oss-server-time",
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
        builder = builder.header("x-oss-err", encoded);
        builder.body(Body::empty())
    } else {
        builder
            .header("content-type", "application/xml")
            .body(Body::from(xml))
    }
    .unwrap_or_else(|_| Response::new(Body::empty()));
    let h = response.headers_mut();
    if let Some(ec) = &e.ec {
        put(h, "x-oss-ec", ec);
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
    let versioned = state.store.is_versioned(&bucket)?;
    let Some(key) = key else {
        return match method {
            Method::GET if q_has(&query, "uploads") => {
                multipart::list_uploads(state, &bucket, &query)
            }
            _ => Err(ApiError::not_implemented("Bucket-level operations")),
        };
    };
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
    let q = &ctx.query;
    let copy = ctx.headers.contains_key("x-oss-copy-source");
    // PUT ?tagging and PUT ?symlink win over the multipart and copy routes.
    let tagging_or_symlink = q_has(q, "tagging") || q_has(q, "symlink");
    // Sub-resources this emulator does not implement, once the routes that use them are past.
    let unsupported = [
        "append",
        "uploads",
        "uploadId",
        "partNumber",
        "restore",
        "acl",
    ]
    .into_iter()
    .find(|name| q_has(q, name));
    match method {
        Method::POST if q_has(q, "uploads") => multipart::initiate(state, &ctx).await,
        Method::POST if q_has(q, "append") => append::append(state, &ctx, body).await,
        Method::POST if q_has(q, "uploadId") => multipart::complete(state, &ctx, body).await,
        Method::PUT if !tagging_or_symlink && (q_has(q, "uploadId") || q_has(q, "partNumber")) => {
            if copy {
                multipart::upload_part_copy(state, &ctx).await
            } else {
                multipart::upload_part(state, &ctx, body).await
            }
        }
        Method::PUT if !tagging_or_symlink && copy => copy::copy_object(state, &ctx).await,
        Method::GET if q_has(q, "uploadId") => multipart::list_parts(state, &ctx),
        Method::DELETE if q_has(q, "uploadId") => multipart::abort(state, &ctx).await,
        _ if unsupported.is_some() => Err(ApiError::not_implemented(&format!(
            "The {:?} sub-resource",
            unsupported.unwrap_or_default()
        ))),
        Method::PUT if q_has(q, "tagging") => {
            put_tagging(state, &ctx, body.take().unwrap_or_default()).await
        }
        Method::PUT if q_has(q, "symlink") => put_symlink(state, &ctx).await,
        Method::PUT => put_object(state, &ctx, body).await,
        Method::GET if q_has(q, "tagging") => get_tagging(state, &ctx),
        Method::GET if q_has(q, "symlink") => get_symlink(state, &ctx),
        Method::GET | Method::HEAD if q_has(q, "objectMeta") => get_object_meta(state, &ctx),
        Method::GET => get_object(state, &ctx, false),
        Method::HEAD => get_object(state, &ctx, true),
        Method::DELETE if q_has(q, "tagging") => delete_tagging(state, &ctx).await,
        Method::DELETE => delete_object(state, &ctx).await,
        Method::POST => Err(ApiError::not_implemented("This POST operation")),
        other => Err(ApiError::method_not_allowed(other.as_str())),
    }
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

// ---- validation of request headers --------------------------------------------------------

/// Validates `x-oss-tagging` (EC 0010-…).
fn tags_from_header(h: &HeaderMap) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(raw) = h.get("x-oss-tagging") else {
        return Ok(BTreeMap::new());
    };
    let Ok(raw) = raw.to_str() else {
        return Err(ApiError::invalid_argument(
            "The x-oss-tagging header must be URL-encoded ASCII.",
        )
        .ec("0010-00000219"));
    };
    match TagSet::parse_header_value(raw) {
        Ok(tags) => Ok(tags.into_map()),
        Err(violations) => {
            // Classify on the raw pairs for the EC.
            let mut pairs = Vec::new();
            let mut format_error = false;
            for seg in raw.trim().split('&').filter(|s| !s.is_empty()) {
                let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
                if v.contains('=') {
                    format_error = true;
                }
                match (
                    percent_encoding::percent_decode_str(k).decode_utf8(),
                    percent_encoding::percent_decode_str(v).decode_utf8(),
                ) {
                    (Ok(k), Ok(v)) => pairs.push((k.into_owned(), v.into_owned())),
                    _ => format_error = true,
                }
            }
            let ec = if format_error {
                "0010-00000219"
            } else {
                tag_ec(&pairs)
            };
            Err(tag_error(violations, ec))
        }
    }
}

/// The EC of the first problem in a set of tags that failed validation.
fn tag_ec(pairs: &[(String, String)]) -> &'static str {
    let tag_char = |c: char| c.is_alphanumeric() || " +-=._:/".contains(c);
    let mut seen = std::collections::BTreeSet::new();
    if pairs.iter().any(|(k, _)| !seen.insert(k.as_str())) {
        return "0010-00000210";
    }
    if pairs.iter().any(|(k, v)| {
        k.is_empty()
            || k.chars().count() > TagSet::MAX_KEY_CHARS
            || v.chars().count() > TagSet::MAX_VALUE_CHARS
    }) {
        return "0010-00000209";
    }
    if pairs.iter().any(|(k, _)| !k.chars().all(tag_char)) {
        return "0010-00000216";
    }
    if pairs.iter().any(|(_, v)| !v.chars().all(tag_char)) {
        return "0010-00000217";
    }
    // More than 10 tags (EC not confirmed).
    "0010-00000211"
}

fn tag_error(violations: Vec<Violation>, ec: &str) -> ApiError {
    let text: Vec<String> = violations.iter().map(|v| v.description.clone()).collect();
    ApiError::invalid_argument(format!("Invalid tags: {}", text.join("; "))).ec(ec)
}

/// Validates `x-oss-meta-*` (EC 0011-…).
fn meta_from_headers(h: &HeaderMap) -> Result<BTreeMap<String, String>, ApiError> {
    let mut pairs = Vec::new();
    for (name, value) in h {
        let Some(key) = name.as_str().strip_prefix(UserMetadata::HEADER_PREFIX) else {
            continue;
        };
        let Ok(value) = value.to_str() else {
            return Err(ApiError::invalid_argument(format!(
                "The value of x-oss-meta-{key} must be printable ASCII."
            ))
            .ec("0011-00000004"));
        };
        pairs.push((key.to_owned(), value.to_owned()));
    }
    let total: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    UserMetadata::from_pairs(pairs)
        .map(UserMetadata::into_map)
        .map_err(|violations| {
            let text: Vec<String> = violations.iter().map(|v| v.description.clone()).collect();
            let ec = if total > UserMetadata::MAX_TOTAL_BYTES {
                "0011-00000002"
            } else {
                "0011-00000004"
            };
            ApiError::invalid_argument(format!("Invalid user metadata: {}", text.join("; "))).ec(ec)
        })
}

/// Common object headers of PutObject/PutSymlink: forbid-overwrite, ACL, storage class.
struct WriteOptions {
    forbid_overwrite: bool,
    acl: String,
    storage_class: String,
    tags: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
}

fn write_options(h: &HeaderMap) -> Result<WriteOptions, ApiError> {
    let forbid_overwrite = match header(h, "x-oss-forbid-overwrite") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(ApiError::invalid_argument(format!(
                "x-oss-forbid-overwrite must be true or false, not {v:?}."
            ))
            .ec("0017-00000279"));
        }
    };
    let acl =
        match h.get("x-oss-object-acl") {
            None => ObjectAcl::Default,
            Some(v) => v.to_str().ok().and_then(ObjectAcl::parse).ok_or_else(|| {
                ApiError::invalid_argument("The x-oss-object-acl value is invalid.")
            })?,
        };
    let storage_class = match h.get("x-oss-storage-class") {
        None => StorageClass::Standard,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(StorageClass::parse)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidStorageClass",
                    "The storage class you specified is not valid.",
                )
            })?,
    };
    Ok(WriteOptions {
        forbid_overwrite,
        acl: acl.as_str().to_owned(),
        storage_class: storage_class.as_str().to_owned(),
        tags: tags_from_header(h)?,
        meta: meta_from_headers(h)?,
    })
}

/// The decoded `Content-MD5`, if sent.
fn content_md5(h: &HeaderMap) -> Result<Option<[u8; 16]>, ApiError> {
    let Some(v) = h.get("content-md5") else {
        return Ok(None);
    };
    let bad = || ApiError::invalid_digest("The Content-MD5 you specified was invalid.");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .map_err(|_| bad())?;
    <[u8; 16]>::try_from(raw.as_slice())
        .map(Some)
        .map_err(|_| bad())
}

fn digest_mismatch() -> ApiError {
    ApiError::invalid_digest("The Content-MD5 you specified did not match what we received.")
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
        set(h, "x-oss-version-id", id);
    }
}

fn http_date_ms(ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

// ---- PutObject ----------------------------------------------------------------------------

async fn put_object(
    state: &Arc<State>,
    ctx: &Ctx,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let h = &ctx.headers;
    let opts = write_options(h)?;
    let md5 = content_md5(h)?;
    if let Some(len) = header(h, "content-length").and_then(|v| v.parse::<u64>().ok())
        && len > MAX_SINGLE_REQUEST_BYTES
    {
        return Err(ApiError::entity_too_large());
    }
    let mut staging = state
        .store
        .stage()
        .await
        .map_err(|e| ApiError::internal(format!("cannot store data: {e}")))?;
    // From here on the body is ours: an error mid-way leaves nothing to drain.
    shared::pump(
        body.take().unwrap_or_default(),
        &mut staging,
        MAX_SINGLE_REQUEST_BYTES,
    )
    .await?;
    let blob = staging
        .finish()
        .await
        .map_err(|e| ApiError::internal(format!("cannot store data: {e}")))?;
    if let Some(expected) = md5
        && expected != blob.md5
    {
        return Err(digest_mismatch());
    }
    let mut version = Version::new(Kind::Data {
        object_type: "Normal".to_owned(),
        blob: blob.id.clone(),
        size: blob.size,
        etag: blob.etag(),
        crc64: blob.crc64,
    });
    version.headers = entity_headers(h);
    version.meta = opts.meta;
    version.tags = opts.tags;
    version.acl = opts.acl;
    version.storage_class = opts.storage_class;
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(blob.md5);
    let (etag, crc) = (blob.etag(), blob.crc64);
    let (bucket, key, forbid) = (ctx.bucket.clone(), ctx.key.clone(), opts.forbid_overwrite);
    let stored = blocking(state, move |s| {
        s.put(&bucket, &key, version, Some(blob), forbid)
    })
    .await?;
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    let rh = resp.headers_mut();
    set(rh, "etag", &format!("\"{etag}\""));
    set(rh, "content-md5", &md5_b64);
    set(rh, "x-oss-hash-crc64ecma", &crc.to_string());
    version_header(rh, &stored);
    Ok(resp)
}

fn entity_headers(h: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in ENTITY_HEADERS {
        if let Some(v) = header(h, name) {
            out.insert((*name).to_owned(), v.to_owned());
        }
    }
    out.entry("content-type".to_owned())
        .or_insert_with(|| "application/octet-stream".to_owned());
    out
}

// ---- GetObject / HeadObject / GetObjectMeta -----------------------------------------------

/// A parsed `Range: bytes=…` that applies to `size`, or `None` for "whole object".
fn parse_range(h: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(raw) = header(h, "range") else {
        return Ok(None);
    };
    let standard = header(h, "x-oss-range-behavior").is_some_and(|v| v == "standard");
    let unsatisfiable = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The requested range cannot be satisfied.",
        )
        .header("content-range", format!("bytes */{size}"))
    };
    let Some(spec) = raw.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), Some(end)) if start <= end => {
            if start >= size {
                None
            } else {
                Some((start, end.min(size - 1)))
            }
        }
        (Some(start), None) if b.is_empty() => (start < size).then(|| (start, size - 1)),
        (None, Some(n)) if a.is_empty() => {
            if n == 0 || size == 0 {
                None
            } else {
                Some((size - n.min(size), size - 1))
            }
        }
        _ => return Ok(None),
    };
    match range {
        Some(r) => Ok(Some(r)),
        None if standard => Err(unsatisfiable()),
        // OSS's default: an unsatisfiable range returns the whole object.
        None => Ok(None),
    }
}

fn get_object(state: &Arc<State>, ctx: &Ctx, head: bool) -> Result<Response, ApiError> {
    let found = state
        .store
        .read(&ctx.bucket, &ctx.key, ctx.version_id(), true, !head)?;
    let link = &found.version;
    let data_version = found.target.as_ref().unwrap_or(link);
    let Kind::Data {
        object_type,
        size,
        etag,
        crc64,
        ..
    } = &data_version.kind
    else {
        return Err(ApiError::internal("unexpected object kind"));
    };
    let size = *size;
    let modified_ms = link.last_modified_ms.max(data_version.last_modified_ms);
    check_conditions(&ctx.headers, etag, modified_ms)?;
    let range = if head {
        None
    } else {
        parse_range(&ctx.headers, size)?
    };
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, size),
    };
    let body = match found.data {
        Some(data) if !head => data.into_body(start, len)?,
        _ => Body::empty(),
    };
    let mut resp = finish(base_response(status), body)?;
    let rh = resp.headers_mut();
    for (name, value) in &data_version.headers {
        set(rh, name, value);
    }
    // response-* overrides (GetObject only).
    if !head {
        for (param, name) in [
            ("response-content-type", "content-type"),
            ("response-content-language", "content-language"),
            ("response-expires", "expires"),
            ("response-cache-control", "cache-control"),
            ("response-content-disposition", "content-disposition"),
            ("response-content-encoding", "content-encoding"),
        ] {
            if let Some(v) = q_get(&ctx.query, param) {
                set(rh, name, v);
            }
        }
    }
    set(rh, "content-length", &len.to_string());
    if let Some((a, b)) = range {
        set(rh, "content-range", &format!("bytes {a}-{b}/{size}"));
    }
    set(rh, "accept-ranges", "bytes");
    set(rh, "etag", &format!("\"{etag}\""));
    set(rh, "last-modified", &http_date_ms(modified_ms));
    let object_type = if found.target.is_some() {
        "Symlink"
    } else {
        object_type.as_str()
    };
    set(rh, "x-oss-object-type", object_type);
    if object_type == "Appendable" {
        set(rh, "x-oss-next-append-position", &size.to_string());
    }
    // Like OSS: appendable objects say where the next append goes.
    if object_type == "Appendable" {
        set(rh, "x-oss-next-append-position", &size.to_string());
    }
    set(rh, "x-oss-storage-class", &link.storage_class);
    set(rh, "x-oss-hash-crc64ecma", &crc64.to_string());
    if !link.tags.is_empty() {
        set(rh, "x-oss-tagging-count", &link.tags.len().to_string());
    }
    for (k, v) in &link.meta {
        set(rh, &format!("x-oss-meta-{k}"), v);
    }
    version_header(rh, link);
    Ok(resp)
}

/// If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since (GetObject, HeadObject).
fn check_conditions(h: &HeaderMap, etag: &str, modified_ms: u64) -> Result<(), ApiError> {
    let matches = |list: &str| {
        list.split(',')
            .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
            .any(|t| t == "*" || t.eq_ignore_ascii_case(etag))
    };
    let failed = || {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )
    };
    let not_modified = || ApiError::new(StatusCode::NOT_MODIFIED, "NotModified", "Not Modified");
    let modified_s = modified_ms / 1000;
    let date = |name: &str| {
        header(h, name)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    if let Some(list) = header(h, "if-match") {
        if !matches(list) {
            return Err(failed());
        }
    } else if let Some(since) = date("if-unmodified-since")
        && modified_s > since
    {
        return Err(failed());
    }
    if let Some(list) = header(h, "if-none-match") {
        if matches(list) {
            return Err(not_modified());
        }
    } else if let Some(since) = date("if-modified-since")
        && modified_s <= since
    {
        return Err(not_modified());
    }
    Ok(())
}

fn get_object_meta(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let found = state
        .store
        .read(&ctx.bucket, &ctx.key, ctx.version_id(), false, false)?;
    let v = &found.version;
    let (size, crc) = match &v.kind {
        Kind::Data { size, crc64, .. } => (*size, Some(*crc64)),
        _ => (0, None),
    };
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    let rh = resp.headers_mut();
    set(rh, "content-length", &size.to_string());
    set(rh, "etag", &format!("\"{}\"", v.etag()));
    set(rh, "last-modified", &http_date_ms(v.last_modified_ms));
    if let Some(crc) = crc {
        set(rh, "x-oss-hash-crc64ecma", &crc.to_string());
    }
    version_header(rh, v);
    Ok(resp)
}

// ---- DeleteObject -------------------------------------------------------------------------

async fn delete_object(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.clone());
    let vid = ctx.version_id().map(str::to_owned);
    let deleted = blocking(state, move |s| s.delete(&bucket, &key, vid.as_deref())).await?;
    let mut resp = finish(base_response(StatusCode::NO_CONTENT), Body::empty())?;
    let rh = resp.headers_mut();
    if ctx.versioned
        && let Some(id) = &deleted.version_id
    {
        set(rh, "x-oss-version-id", id);
    }
    if deleted.delete_marker {
        set(rh, "x-oss-delete-marker", "true");
    }
    Ok(resp)
}

// ---- tagging ------------------------------------------------------------------------------

/// Reads an XML request body of at most `limit` bytes (larger is MalformedXML), checking its
/// Content-MD5 when one is sent.
async fn read_small_body(body: Body, h: &HeaderMap, limit: usize) -> Result<Vec<u8>, ApiError> {
    let md5 = content_md5(h)?;
    let limited = http_body_util::Limited::new(body, limit);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::malformed_xml().ec("0010-00000101")
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "IncompleteBody",
                    "The request body did not arrive completely.",
                )
            }
        })?
        .to_bytes();
    if let Some(expected) = md5 {
        let got: [u8; 16] =
            md5::Digest::finalize(<md5::Md5 as md5::Digest>::new_with_prefix(&bytes)).into();
        if got != expected {
            return Err(digest_mismatch());
        }
    }
    Ok(bytes.to_vec())
}

async fn put_tagging(state: &Arc<State>, ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let bytes = read_small_body(body, &ctx.headers, MAX_TAGGING_BODY).await?;
    let xml =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::malformed_xml().ec("0010-00000101"))?;
    let pairs =
        parse_tagging_xml(xml).map_err(|_| ApiError::malformed_xml().ec("0010-00000101"))?;
    let tags = TagSet::from_pairs(pairs.clone())
        .map_err(|violations| tag_error(violations, tag_ec(&pairs)))?
        .into_map();
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.clone());
    let vid = ctx.version_id().map(str::to_owned);
    let v = blocking(state, move |s| {
        s.set_tags(&bucket, &key, vid.as_deref(), tags)
    })
    .await?;
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    version_header(resp.headers_mut(), &v);
    Ok(resp)
}

fn get_tagging(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let found = state
        .store
        .read(&ctx.bucket, &ctx.key, ctx.version_id(), false, false)?;
    let tags = TagSet::from_pairs(found.version.tags.clone())
        .map_err(|_| ApiError::internal("stored tags are invalid"))?;
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        tagging_xml(&tags)
    );
    let mut resp = finish(
        base_response(StatusCode::OK).header("content-type", "application/xml"),
        Body::from(xml),
    )?;
    version_header(resp.headers_mut(), &found.version);
    Ok(resp)
}

async fn delete_tagging(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let (bucket, key) = (ctx.bucket.clone(), ctx.key.clone());
    let vid = ctx.version_id().map(str::to_owned);
    let v = blocking(state, move |s| {
        s.set_tags(&bucket, &key, vid.as_deref(), BTreeMap::new())
    })
    .await?;
    let mut resp = finish(base_response(StatusCode::NO_CONTENT), Body::empty())?;
    version_header(resp.headers_mut(), &v);
    Ok(resp)
}

// ---- symlinks -----------------------------------------------------------------------------

async fn put_symlink(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let h = &ctx.headers;
    let Some(raw) = h.get("x-oss-symlink-target") else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MissingArgument",
            "The x-oss-symlink-target header is required.",
        )
        .ec("0043-00000001"));
    };
    // Sent raw (pyv2) or percent-encoded (oss2, ali-oss): decode either way.
    let raw = String::from_utf8_lossy(raw.as_bytes()).into_owned();
    let target = percent_encoding::percent_decode_str(&raw)
        .decode_utf8()
        .map(|c| c.into_owned())
        .unwrap_or(raw);
    ObjectKey::parse(&target).map_err(|v| {
        ApiError::invalid_argument(format!("The symlink target is invalid: {}", v.description))
    })?;
    let opts = write_options(h)?;
    let mut version = Version::new(Kind::Symlink { target });
    version.headers = entity_headers(h);
    version.meta = opts.meta;
    version.tags = opts.tags;
    version.acl = opts.acl;
    version.storage_class = opts.storage_class;
    let etag = version.etag();
    let (bucket, key, forbid) = (ctx.bucket.clone(), ctx.key.clone(), opts.forbid_overwrite);
    let stored = blocking(state, move |s| s.put(&bucket, &key, version, None, forbid)).await?;
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    let rh = resp.headers_mut();
    set(rh, "etag", &format!("\"{etag}\""));
    version_header(rh, &stored);
    Ok(resp)
}

fn get_symlink(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let found = state
        .store
        .read(&ctx.bucket, &ctx.key, ctx.version_id(), false, false)?;
    let v = &found.version;
    let Kind::Symlink { target } = &v.kind else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "NotSymlink",
            "The specified object is not a symlink.",
        )
        .ec("0043-00000101"));
    };
    let mut resp = finish(base_response(StatusCode::OK), Body::empty())?;
    let rh = resp.headers_mut();
    set(rh, "x-oss-symlink-target", &encode_key(target));
    set(rh, "etag", &format!("\"{}\"", v.etag()));
    set(rh, "last-modified", &http_date_ms(v.last_modified_ms));
    for (k, val) in &v.meta {
        set(rh, &format!("x-oss-meta-{k}"), val);
    }
    version_header(rh, v);
    Ok(resp)
}

/// Percent-encodes a key for a header, keeping `/` (`dir/obj%201.txt`).
fn encode_key(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn ranges() {
        let r = |v: &str| parse_range(&h(&[("range", v)]), 10);
        assert_eq!(r("bytes=0-4").unwrap(), Some((0, 4)));
        assert_eq!(r("bytes=5-").unwrap(), Some((5, 9)));
        assert_eq!(r("bytes=-3").unwrap(), Some((7, 9)));
        assert_eq!(r("bytes=8-100").unwrap(), Some((8, 9)));
        assert_eq!(r("bytes=20-30").unwrap(), None);
        assert_eq!(r("bytes=x").unwrap(), None);
        assert_eq!(r("bytes=4-2").unwrap(), None);
        let strict = parse_range(
            &h(&[
                ("range", "bytes=20-30"),
                ("x-oss-range-behavior", "standard"),
            ]),
            10,
        );
        assert_eq!(
            strict.unwrap_err().status,
            StatusCode::RANGE_NOT_SATISFIABLE
        );
    }

    #[test]
    fn tag_header_errors_have_ecs() {
        let ec = |v: &str| {
            tags_from_header(&h(&[("x-oss-tagging", v)]))
                .unwrap_err()
                .ec
                .clone()
        };
        assert_eq!(ec("a=b=c").as_deref(), Some("0010-00000219"));
        assert_eq!(ec("a=1&a=2").as_deref(), Some("0010-00000210"));
        assert_eq!(
            ec(&format!("{}=1", "k".repeat(129))).as_deref(),
            Some("0010-00000209")
        );
        assert_eq!(ec("k%21=1").as_deref(), Some("0010-00000216"));
        assert_eq!(ec("k=v%21").as_deref(), Some("0010-00000217"));
        let tags = tags_from_header(&h(&[("x-oss-tagging", "a=1&b=x%20y%2B%2F")])).unwrap();
        assert_eq!(tags.get("b").map(String::as_str), Some("x y+/"));
    }

    #[test]
    fn metadata_errors_have_ecs() {
        let big = "v".repeat(9000);
        let e = meta_from_headers(&h(&[("x-oss-meta-a", &big)])).unwrap_err();
        assert_eq!(e.ec.as_deref(), Some("0011-00000002"));
        let e = meta_from_headers(&h(&[("x-oss-meta-a_b", "1")])).unwrap_err();
        assert_eq!(e.ec.as_deref(), Some("0011-00000004"));
        let m = meta_from_headers(&h(&[("x-oss-meta-Color", "Red")])).unwrap();
        assert_eq!(m.get("color").map(String::as_str), Some("Red"));
    }

    #[test]
    fn key_encoding_for_symlink_header() {
        assert_eq!(encode_key("dir/obj 1.txt"), "dir/obj%201.txt");
        assert_eq!(encode_key("a+b"), "a%2Bb");
    }
}
