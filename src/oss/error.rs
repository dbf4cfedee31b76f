//! [`OssError`]: what went wrong with one OSS request, classified.
//!
//! Server errors are parsed from the `<Error>` XML body or, for HEAD requests
//! (which have no body), from the base64 `x-oss-err` header and `x-oss-ec`.
//! [`classify`] is the single place that turns (HTTP status, code) into an
//! [`OssErrorKind`] and a retryable flag. Branch on `kind`, never on `message`
//! or `ec` (OSS says EC values may change).

use std::fmt;

use base64::Engine as _;
use http::HeaderMap;

use super::xml::ErrorDocument;
use crate::oss::protocol::header;

/// The class of an [`OssError`]; what a caller branches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OssErrorKind {
    /// The bucket, object, version, upload or symlink target does not exist (404).
    NotFound,
    /// The object exists and overwriting was forbidden (`FileAlreadyExists`, 409).
    AlreadyExists,
    /// A condition on the object's state failed: `PreconditionFailed` (412),
    /// `NotModified` (304), `PositionNotEqualToLength`, `ObjectNotAppendable`,
    /// `InvalidObjectState` (archived object not restored).
    PreconditionFailed,
    /// Another 409 conflict.
    Conflict,
    /// OSS rejected a parameter, header or body (400-class), or the client
    /// refused to build the request.
    InvalidArgument,
    /// The requested byte range is outside the object (416 `InvalidRange`).
    RangeNotSatisfiable,
    /// The caller's credentials lack permission (403 `AccessDenied`).
    AccessDenied,
    /// The credentials or signature were not accepted: `InvalidAccessKeyId`,
    /// `SignatureDoesNotMatch`, `InvalidSecurityToken`, `SecurityTokenExpired`,
    /// `RequestTimeTooSkewed`.
    Unauthenticated,
    /// OSS asked us to slow down (429, `SlowDown`, QPS/bandwidth limits).
    Throttled,
    /// OSS failed internally (5xx).
    ServerError,
    /// The method or feature is not supported (405, 501).
    Unsupported,
    /// The connection could not be made or broke (DNS, TCP, TLS, reset).
    Transport,
    /// The connect or request timeout elapsed (or OSS's `RequestTimeout`).
    Timeout,
    /// The request body stream supplied by our caller failed, so the upload was aborted.
    Cancelled,
    /// OSS answered with something the client cannot understand (a success
    /// without a required header, an unparsable body).
    InvalidResponse,
    /// Data integrity check failed: the CRC-64 OSS reports differs from the bytes sent.
    ChecksumMismatch,
    /// Anything else.
    Other,
}

impl OssErrorKind {
    /// A stable name, e.g. `NotFound`.
    pub fn as_str(self) -> &'static str {
        match self {
            OssErrorKind::NotFound => "NotFound",
            OssErrorKind::AlreadyExists => "AlreadyExists",
            OssErrorKind::PreconditionFailed => "PreconditionFailed",
            OssErrorKind::Conflict => "Conflict",
            OssErrorKind::InvalidArgument => "InvalidArgument",
            OssErrorKind::RangeNotSatisfiable => "RangeNotSatisfiable",
            OssErrorKind::AccessDenied => "AccessDenied",
            OssErrorKind::Unauthenticated => "Unauthenticated",
            OssErrorKind::Throttled => "Throttled",
            OssErrorKind::ServerError => "ServerError",
            OssErrorKind::Unsupported => "Unsupported",
            OssErrorKind::Transport => "Transport",
            OssErrorKind::Timeout => "Timeout",
            OssErrorKind::Cancelled => "Cancelled",
            OssErrorKind::InvalidResponse => "InvalidResponse",
            OssErrorKind::ChecksumMismatch => "ChecksumMismatch",
            OssErrorKind::Other => "Other",
        }
    }
}

impl fmt::Display for OssErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maps an HTTP status and an OSS error `Code` to the error kind and whether
/// repeating the same request may succeed. A known code decides; an unknown
/// or empty code falls back to the status.
pub fn classify(http_status: u16, code: &str) -> (OssErrorKind, bool) {
    use OssErrorKind as K;
    let by_code = match code {
        "NoSuchKey"
        | "NoSuchBucket"
        | "NoSuchUpload"
        | "NoSuchVersion"
        | "SymlinkTargetNotExist"
        | "MetaQueryNotExist" => Some((K::NotFound, false)),
        "FileAlreadyExists" | "BucketAlreadyExists" => Some((K::AlreadyExists, false)),
        "PreconditionFailed"
        | "NotModified"
        | "PositionNotEqualToLength"
        | "ObjectNotAppendable"
        | "InvalidObjectState" => Some((K::PreconditionFailed, false)),
        "InvalidArgument"
        | "InvalidObjectName"
        | "InvalidDigest"
        | "MalformedXML"
        | "MissingArgument"
        | "EntityTooSmall"
        | "EntityTooLarge"
        | "InvalidPart"
        | "InvalidPartOrder"
        | "InvalidTag"
        | "InvalidBucketName"
        | "MissingContentLength"
        | "InvalidTargetType"
        | "InvalidEncryptionAlgorithmError"
        | "TooManyTags" => Some((K::InvalidArgument, false)),
        "InvalidRange" => Some((K::RangeNotSatisfiable, false)),
        "AccessDenied" | "AccessForbidden" => Some((K::AccessDenied, false)),
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "InvalidSecurityToken"
        | "SecurityTokenExpired" => Some((K::Unauthenticated, false)),
        // Retryable once the clock offset is corrected (docs/oss-protocol.md, "Rules ossgate's
        // signer follows").
        "RequestTimeTooSkewed" => Some((K::Unauthenticated, true)),
        "SlowDown"
        | "TooManyRequests"
        | "QpsLimitExceeded"
        | "RequestLimitExceeded"
        | "UploadTrafficRateLimitExceeded"
        | "DownloadTrafficRateLimitExceeded" => Some((K::Throttled, true)),
        "InternalError" | "ServiceUnavailable" => Some((K::ServerError, true)),
        "RequestTimeout" => Some((K::Timeout, true)),
        "MethodNotAllowed" | "NotImplemented" => Some((K::Unsupported, false)),
        _ => None,
    };
    if let Some(found) = by_code {
        return found;
    }
    match http_status {
        304 | 412 => (K::PreconditionFailed, false),
        400 | 411 | 413 | 414 | 431 => (K::InvalidArgument, false),
        401 => (K::Unauthenticated, false),
        403 => (K::AccessDenied, false),
        404 => (K::NotFound, false),
        405 | 501 => (K::Unsupported, false),
        408 => (K::Timeout, true),
        409 => (K::Conflict, false),
        416 => (K::RangeNotSatisfiable, false),
        429 => (K::Throttled, true),
        500..=599 => (K::ServerError, true),
        _ => (K::Other, false),
    }
}

/// One failed OSS request.
///
/// For errors OSS returned, `code`, `message`, `request_id`, `ec` and
/// `http_status` come from the response (`code` is empty when OSS sent no
/// error document, e.g. a HEAD 404 without `x-oss-err`). For failures on our
/// side `http_status` is `None` and `code` names the kind (`Transport`,
/// `Timeout`, `Cancelled`, `InvalidResponse`, `ChecksumMismatch`,
/// `InvalidArgument`). Nothing here ever holds a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OssError {
    /// The class callers branch on.
    pub kind: OssErrorKind,
    /// The OSS `Code` (e.g. `NoSuchKey`), or a client-side code.
    pub code: String,
    /// Human-readable detail.
    pub message: String,
    /// `x-oss-request-id` (header, else the `RequestId` element).
    pub request_id: Option<String>,
    /// `x-oss-ec` (header, else the `EC` element).
    pub ec: Option<String>,
    /// The HTTP status, when OSS answered.
    pub http_status: Option<u16>,
    /// Whether sending the same request again may succeed.
    pub retryable: bool,
    /// `x-oss-next-append-position` of the error response: with
    /// `PositionNotEqualToLength`, the position the next append must use.
    pub next_append_position: Option<u64>,
}

impl fmt::Display for OssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.code.is_empty() && self.code != self.kind.as_str() {
            write!(f, " ({})", self.code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        let mut extra = Vec::new();
        if let Some(s) = self.http_status {
            extra.push(format!("HTTP {s}"));
        }
        if let Some(r) = &self.request_id {
            extra.push(format!("request id {r}"));
        }
        if let Some(ec) = &self.ec {
            extra.push(format!("EC {ec}"));
        }
        if !extra.is_empty() {
            write!(f, " [{}]", extra.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for OssError {}

/// Longest excerpt of a non-OSS error body kept in a message.
const BODY_EXCERPT_CHARS: usize = 200;

impl OssError {
    /// A client-side error of `kind` (no HTTP status); `code` is the kind's
    /// name and `retryable` comes from the kind (transport and timeout errors
    /// are retryable).
    pub fn client(kind: OssErrorKind, message: impl Into<String>) -> OssError {
        OssError {
            kind,
            code: kind.as_str().to_string(),
            message: message.into(),
            request_id: None,
            ec: None,
            http_status: None,
            retryable: matches!(kind, OssErrorKind::Transport | OssErrorKind::Timeout),
            next_append_position: None,
        }
    }

    /// The request could not be built from the given input.
    pub fn invalid_argument(message: impl Into<String>) -> OssError {
        OssError::client(OssErrorKind::InvalidArgument, message)
    }

    /// A success response that cannot be understood.
    pub fn invalid_response(
        message: impl Into<String>,
        http_status: u16,
        request_id: Option<String>,
    ) -> OssError {
        OssError {
            http_status: Some(http_status),
            request_id,
            ..OssError::client(OssErrorKind::InvalidResponse, message)
        }
    }

    /// Builds the error for a failed response from its status, headers and
    /// body (`body` is empty for HEAD). Never fails: a body that is not an
    /// OSS error document is summarised in the message.
    pub fn from_response(http_status: u16, headers: &HeaderMap, body: &[u8]) -> OssError {
        let header_text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let body_text = String::from_utf8_lossy(body);
        let doc = ErrorDocument::parse(&body_text).or_else(|| {
            // HEAD (and any body-less error): base64 XML in x-oss-err.
            let encoded = header_text(header::ERR)?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .ok()?;
            ErrorDocument::parse(&String::from_utf8_lossy(&decoded))
        });
        let (code, message) = match &doc {
            Some(d) => (
                d.code.clone().unwrap_or_default(),
                d.message.clone().unwrap_or_default(),
            ),
            None => (
                String::new(),
                describe_foreign_body(http_status, &body_text),
            ),
        };
        let (kind, retryable) = classify(http_status, &code);
        OssError {
            kind,
            code,
            message,
            request_id: header_text(header::REQUEST_ID)
                .or_else(|| doc.as_ref().and_then(|d| d.request_id.clone())),
            ec: header_text(header::EC).or_else(|| doc.as_ref().and_then(|d| d.ec.clone())),
            http_status: Some(http_status),
            retryable,
            next_append_position: header_text(header::NEXT_APPEND_POSITION)
                .and_then(|v| v.parse::<u64>().ok()),
        }
    }

    /// True for [`OssErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == OssErrorKind::NotFound
    }
}

/// A message for an error response without an OSS error document.
fn describe_foreign_body(status: u16, body: &str) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("unknown status");
    let excerpt: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(BODY_EXCERPT_CHARS)
        .collect();
    let excerpt = excerpt.trim();
    if excerpt.is_empty() {
        format!("HTTP {status} {reason} without an OSS error document")
    } else {
        format!("HTTP {status} {reason} without an OSS error document: {excerpt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OssErrorKind as K;
    use http::HeaderValue;

    /// Every code of docs/oss-protocol.md, "Errors", with its documented status.
    #[test]
    fn classification_table_covers_protocol_section_4() {
        let table: &[(u16, &str, OssErrorKind, bool)] = &[
            (403, "AccessDenied", K::AccessDenied, false),
            (403, "InvalidAccessKeyId", K::Unauthenticated, false),
            (403, "SignatureDoesNotMatch", K::Unauthenticated, false),
            (403, "RequestTimeTooSkewed", K::Unauthenticated, true),
            (400, "InvalidArgument", K::InvalidArgument, false),
            (404, "NoSuchBucket", K::NotFound, false),
            (404, "NoSuchKey", K::NotFound, false),
            (404, "SymlinkTargetNotExist", K::NotFound, false),
            (400, "InvalidObjectName", K::InvalidArgument, false),
            (400, "InvalidDigest", K::InvalidArgument, false),
            (409, "FileAlreadyExists", K::AlreadyExists, false),
            (
                409,
                "PositionNotEqualToLength",
                K::PreconditionFailed,
                false,
            ),
            (409, "ObjectNotAppendable", K::PreconditionFailed, false),
            (400, "EntityTooSmall", K::InvalidArgument, false),
            (400, "EntityTooLarge", K::InvalidArgument, false),
            (400, "InvalidPart", K::InvalidArgument, false),
            (400, "InvalidPartOrder", K::InvalidArgument, false),
            (404, "NoSuchUpload", K::NotFound, false),
            (400, "MalformedXML", K::InvalidArgument, false),
            (400, "MissingArgument", K::InvalidArgument, false),
            (412, "PreconditionFailed", K::PreconditionFailed, false),
            (304, "NotModified", K::PreconditionFailed, false),
            // tag validation: code uncertain (section 13), both read as InvalidArgument
            (400, "InvalidTag", K::InvalidArgument, false),
            (400, "SomeFutureTagCode", K::InvalidArgument, false),
            // beyond section 4
            (416, "InvalidRange", K::RangeNotSatisfiable, false),
            (403, "InvalidObjectState", K::PreconditionFailed, false),
            (403, "InvalidSecurityToken", K::Unauthenticated, false),
            (403, "SecurityTokenExpired", K::Unauthenticated, false),
            (503, "SlowDown", K::Throttled, true),
            (503, "QpsLimitExceeded", K::Throttled, true),
            (500, "InternalError", K::ServerError, true),
            (503, "ServiceUnavailable", K::ServerError, true),
            (400, "RequestTimeout", K::Timeout, true),
            (405, "MethodNotAllowed", K::Unsupported, false),
        ];
        for &(status, code, kind, retryable) in table {
            assert_eq!(classify(status, code), (kind, retryable), "{status} {code}");
        }
    }

    #[test]
    fn classification_falls_back_to_status() {
        let table: &[(u16, OssErrorKind, bool)] = &[
            (304, K::PreconditionFailed, false),
            (400, K::InvalidArgument, false),
            (401, K::Unauthenticated, false),
            (403, K::AccessDenied, false),
            (404, K::NotFound, false),
            (405, K::Unsupported, false),
            (408, K::Timeout, true),
            (409, K::Conflict, false),
            (411, K::InvalidArgument, false),
            (412, K::PreconditionFailed, false),
            (413, K::InvalidArgument, false),
            (416, K::RangeNotSatisfiable, false),
            (429, K::Throttled, true),
            (500, K::ServerError, true),
            (502, K::ServerError, true),
            (503, K::ServerError, true),
            (504, K::ServerError, true),
            (501, K::Unsupported, false),
            (302, K::Other, false),
            (418, K::Other, false),
        ];
        for &(status, kind, retryable) in table {
            assert_eq!(classify(status, ""), (kind, retryable), "{status}");
            assert_eq!(
                classify(status, "UnheardOfCode"),
                (kind, retryable),
                "{status}"
            );
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parses_xml_error_body_and_prefers_headers() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The specified key does not exist.</Message>
  <RequestId>BODY-RID</RequestId>
  <HostId>examplebucket.oss-cn-hangzhou.aliyuncs.com</HostId>
  <Key>docs/report.txt</Key>
  <EC>0026-00000001</EC>
</Error>"#;
        let err = OssError::from_response(
            404,
            &headers(&[
                ("x-oss-request-id", "HDR-RID"),
                ("content-type", "application/xml"),
            ]),
            body,
        );
        assert_eq!(err.kind, K::NotFound);
        assert_eq!(err.code, "NoSuchKey");
        assert_eq!(err.message, "The specified key does not exist.");
        assert_eq!(err.request_id.as_deref(), Some("HDR-RID"));
        assert_eq!(err.ec.as_deref(), Some("0026-00000001"));
        assert_eq!(err.http_status, Some(404));
        assert!(!err.retryable);
        let shown = err.to_string();
        assert!(
            shown.contains("NoSuchKey") && shown.contains("HDR-RID"),
            "{shown}"
        );
    }

    #[test]
    fn body_request_id_used_without_header() {
        let body = b"<Error><Code>FileAlreadyExists</Code><Message>The object you specified already exists and can not be overwritten.</Message><RequestId>R1</RequestId><EC>0026-00000002</EC></Error>";
        let err = OssError::from_response(409, &HeaderMap::new(), body);
        assert_eq!(err.kind, K::AlreadyExists);
        assert_eq!(err.request_id.as_deref(), Some("R1"));
        assert_eq!(err.ec.as_deref(), Some("0026-00000002"));
    }

    #[test]
    fn head_error_from_x_oss_err_header() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SymlinkTargetNotExist</Code><Message>The symlink target object does not exist</Message><RequestId>R2</RequestId><EC>0026-00000012</EC></Error>";
        let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
        let err = OssError::from_response(
            404,
            &headers(&[
                ("x-oss-err", &b64),
                ("x-oss-ec", "0026-00000012"),
                ("x-oss-request-id", "R2"),
            ]),
            b"",
        );
        assert_eq!(err.kind, K::NotFound);
        assert_eq!(err.code, "SymlinkTargetNotExist");
        assert_eq!(err.message, "The symlink target object does not exist");
        assert_eq!(err.ec.as_deref(), Some("0026-00000012"));
        assert_eq!(err.request_id.as_deref(), Some("R2"));
    }

    #[test]
    fn head_error_with_status_and_ec_only() {
        let err = OssError::from_response(
            403,
            &headers(&[("x-oss-ec", "0003-00000001"), ("x-oss-request-id", "R3")]),
            b"",
        );
        assert_eq!(err.kind, K::AccessDenied);
        assert_eq!(err.code, "");
        assert_eq!(err.ec.as_deref(), Some("0003-00000001"));
        assert_eq!(err.request_id.as_deref(), Some("R3"));
        assert!(err.message.contains("403 Forbidden"), "{}", err.message);
    }

    #[test]
    fn bad_x_oss_err_header_is_ignored() {
        let err = OssError::from_response(404, &headers(&[("x-oss-err", "!!!not base64")]), b"");
        assert_eq!(err.kind, K::NotFound);
        assert_eq!(err.code, "");
        let b64 = base64::engine::general_purpose::STANDARD.encode("<NotError/>");
        let err = OssError::from_response(404, &headers(&[("x-oss-err", &b64)]), b"");
        assert_eq!(err.code, "");
    }

    #[test]
    fn garbage_bodies_fall_back_to_status() {
        let err = OssError::from_response(
            502,
            &HeaderMap::new(),
            b"<html><body>502 Bad Gateway\r\n</body></html>",
        );
        assert_eq!(err.kind, K::ServerError);
        assert!(err.retryable);
        assert_eq!(err.code, "");
        assert!(err.message.contains("502 Bad Gateway"), "{}", err.message);
        assert!(!err.message.contains('\r'));
        let long = vec![b'x'; 10_000];
        let err = OssError::from_response(500, &HeaderMap::new(), &long);
        assert!(err.message.len() < 400);
        let err = OssError::from_response(400, &HeaderMap::new(), &[0xff, 0xfe, 0x00, 0x80]);
        assert_eq!(err.kind, K::InvalidArgument);
        let err = OssError::from_response(400, &HeaderMap::new(), b"<Error><Code>Unclosed");
        assert_eq!(err.kind, K::InvalidArgument);
    }

    #[test]
    fn client_errors() {
        let e = OssError::client(K::Timeout, "request timed out");
        assert!(e.retryable);
        assert_eq!(e.code, "Timeout");
        assert_eq!(e.http_status, None);
        assert_eq!(e.to_string(), "Timeout: request timed out");
        let e = OssError::client(K::Cancelled, "caller stream failed");
        assert!(!e.retryable);
        let e = OssError::invalid_response("missing ETag", 200, Some("R".into()));
        assert_eq!(e.kind, K::InvalidResponse);
        assert_eq!(e.http_status, Some(200));
    }
}
