//! The one place where failures become gRPC statuses: validation violations become
//! INVALID_ARGUMENT with a `google.rpc.BadRequest`, and OSS errors go through one table to a
//! code with a `google.rpc.ErrorInfo` (reason = the OSS code; metadata = request id, HTTP
//! status, EC) and, for throttling, a `google.rpc.RetryInfo`.

use std::{collections::HashMap, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    lock::LockError,
    model::{Violation, clip},
    oss::{OssError, OssErrorKind},
};

/// `ErrorInfo.domain` for errors that OSS reported.
pub const OSS_ERROR_DOMAIN: &str = "oss.aliyuncs.com";
/// `ErrorInfo.domain` for errors the gateway itself detected.
pub const GATEWAY_ERROR_DOMAIN: &str = "ossgate";
/// How long a throttled caller is told to wait before retrying.
const THROTTLE_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Longest field name or description echoed in a status, in bytes (see [`clip`]).
const MAX_ECHOED_BYTES: usize = 512;
/// Longest status message, in bytes. gRPC carries the message and the details in headers,
/// which grpc-core limits to 16 KiB in all (the message percent-encoded, so up to 3x, and
/// the details in base64): this keeps both well inside.
const MAX_MESSAGE_BYTES: usize = 2048;

/// Caller input as a status or a log line may quote it: clipped to [`MAX_ECHOED_BYTES`].
pub fn echoed(text: &str) -> std::borrow::Cow<'_, str> {
    clip(text, MAX_ECHOED_BYTES)
}

/// INVALID_ARGUMENT listing the violations, in the message and as BadRequest field
/// violations. Each field and description is clipped, and violations are listed while the
/// message stays within [`MAX_MESSAGE_BYTES`]; the message counts those left out.
pub fn invalid_argument(violations: Vec<Violation>) -> Status {
    let total = violations.len();
    let mut summary = String::new();
    let mut details = ErrorDetails::new();
    let mut listed = 0;
    for violation in &violations {
        let field = echoed(&violation.field);
        let description = echoed(&violation.description);
        let entry = format!("{field}: {description}");
        // The first one always fits (each half is clipped to a quarter of the budget).
        if listed > 0 && summary.len() + entry.len() + 2 > MAX_MESSAGE_BYTES {
            break;
        }
        if listed > 0 {
            summary.push_str("; ");
        }
        summary.push_str(&entry);
        details.add_bad_request_violation(field, description);
        listed += 1;
    }
    if listed < total {
        summary.push_str(&format!("; and {} more", total - listed));
    }
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {summary}"),
        details,
    )
}

/// INVALID_ARGUMENT for a single field.
pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    invalid_argument(vec![Violation::new(field, description)])
}

/// A failure the gateway detected itself, with an ErrorInfo whose reason names it.
pub fn gateway_error(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_error_info(reason, GATEWAY_ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, clip(&message.into(), MAX_MESSAGE_BYTES), details)
}

/// How long a caller whose tag write found the object's lock busy is told to wait: about
/// one tag write.
const LOCK_BUSY_RETRY_DELAY: Duration = Duration::from_millis(100);

/// A tag write that could not take its object's lock: ABORTED (busy, or the lease was lost
/// before the write; nothing was written) or UNAVAILABLE (the lock service failed), each
/// with RetryInfo and an ErrorInfo reason `TAG_LOCK_BUSY`, `TAG_LOCK_LOST` or
/// `TAG_LOCK_UNAVAILABLE`.
pub fn lock_status(error: LockError) -> Status {
    let (code, reason, delay) = match &error {
        LockError::Busy { .. } => (Code::Aborted, "TAG_LOCK_BUSY", LOCK_BUSY_RETRY_DELAY),
        LockError::LeaseLost => (Code::Aborted, "TAG_LOCK_LOST", LOCK_BUSY_RETRY_DELAY),
        LockError::Unavailable(_) => (
            Code::Unavailable,
            "TAG_LOCK_UNAVAILABLE",
            THROTTLE_RETRY_DELAY,
        ),
    };
    let mut details = ErrorDetails::with_error_info(reason, GATEWAY_ERROR_DOMAIN, HashMap::new());
    details.set_retry_info(Some(delay));
    Status::with_error_details(code, clip(&error.to_string(), MAX_MESSAGE_BYTES), details)
}

/// The gRPC code for an OSS failure: the single mapping table.
pub fn code_for(error: &OssError) -> Code {
    // A few OSS codes say more than their class.
    match error.code.as_str() {
        // The append position moved: read x-oss-next-append-position and retry.
        "PositionNotEqualToLength" => return Code::Aborted,
        // Our clock is off; the call may succeed once it is corrected.
        "RequestTimeTooSkewed" => return Code::Unavailable,
        "EntityTooLarge" => return Code::OutOfRange,
        _ => {}
    }
    match error.kind {
        OssErrorKind::NotFound => Code::NotFound,
        OssErrorKind::AlreadyExists => Code::AlreadyExists,
        OssErrorKind::PreconditionFailed => Code::FailedPrecondition,
        OssErrorKind::Conflict => Code::Aborted,
        OssErrorKind::InvalidArgument => Code::InvalidArgument,
        OssErrorKind::RangeNotSatisfiable => Code::OutOfRange,
        // The gateway's own OSS credentials were refused: to the caller this is a permission
        // problem (UNAUTHENTICATED is kept for callers without a valid identity).
        OssErrorKind::AccessDenied | OssErrorKind::Unauthenticated => Code::PermissionDenied,
        OssErrorKind::Throttled => Code::ResourceExhausted,
        OssErrorKind::ServerError | OssErrorKind::Transport => Code::Unavailable,
        OssErrorKind::Unsupported => Code::Unimplemented,
        OssErrorKind::Timeout => Code::DeadlineExceeded,
        OssErrorKind::Cancelled => Code::Cancelled,
        OssErrorKind::ChecksumMismatch => Code::DataLoss,
        OssErrorKind::InvalidResponse | OssErrorKind::Other => Code::Internal,
    }
}

/// Converts an OSS failure into a status with ErrorInfo (and RetryInfo when throttled).
pub fn oss_status(error: OssError) -> Status {
    let code = code_for(&error);
    let mut metadata = HashMap::new();
    if let Some(request_id) = &error.request_id {
        metadata.insert("request_id".to_string(), request_id.clone());
    }
    if let Some(status) = error.http_status {
        metadata.insert("http_status".to_string(), status.to_string());
    }
    if let Some(ec) = &error.ec {
        metadata.insert("ec".to_string(), ec.clone());
    }
    // An append conflict says where the next append must go.
    if let Some(position) = error.next_append_position {
        metadata.insert("next_append_position".to_string(), position.to_string());
    }
    let reason = if error.code.is_empty() {
        format!("{:?}", error.kind)
    } else {
        error.code.clone()
    };
    let mut details = ErrorDetails::with_error_info(reason, OSS_ERROR_DOMAIN, metadata);
    if code == Code::ResourceExhausted {
        details.set_retry_info(Some(THROTTLE_RETRY_DELAY));
    }
    // OSS messages may quote the request (a key, a header value).
    let oss_message = echoed(&error.message);
    let message = match &error.request_id {
        Some(id) => format!("OSS: {oss_message} ({}; request id {id})", error.code),
        None => format!("OSS: {oss_message} ({})", error.code),
    };
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::error::classify;

    fn oss_error(http_status: u16, code: &str) -> OssError {
        let (kind, retryable) = classify(http_status, code);
        OssError {
            kind,
            code: code.into(),
            message: "message".into(),
            request_id: Some("REQ-1".into()),
            ec: Some("0016-00000502".into()),
            http_status: Some(http_status),
            retryable,
            next_append_position: None,
        }
    }

    #[test]
    fn oss_codes_map_to_grpc_codes() {
        let table: &[(u16, &str, Code)] = &[
            (404, "NoSuchKey", Code::NotFound),
            (404, "NoSuchBucket", Code::NotFound),
            (404, "NoSuchVersion", Code::NotFound),
            (404, "NoSuchUpload", Code::NotFound),
            (404, "SymlinkTargetNotExist", Code::NotFound),
            (409, "FileAlreadyExists", Code::AlreadyExists),
            (412, "PreconditionFailed", Code::FailedPrecondition),
            (409, "PositionNotEqualToLength", Code::Aborted),
            (409, "ObjectNotAppendable", Code::FailedPrecondition),
            (400, "InvalidArgument", Code::InvalidArgument),
            (400, "MalformedXML", Code::InvalidArgument),
            (400, "InvalidDigest", Code::InvalidArgument),
            (400, "InvalidObjectName", Code::InvalidArgument),
            (400, "EntityTooLarge", Code::OutOfRange),
            (416, "InvalidRange", Code::OutOfRange),
            (403, "AccessDenied", Code::PermissionDenied),
            (403, "SignatureDoesNotMatch", Code::PermissionDenied),
            (403, "InvalidAccessKeyId", Code::PermissionDenied),
            (403, "RequestTimeTooSkewed", Code::Unavailable),
            (503, "ServiceUnavailable", Code::Unavailable),
            (500, "InternalError", Code::Unavailable),
            (429, "SlowDown", Code::ResourceExhausted),
            (405, "MethodNotAllowed", Code::Unimplemented),
        ];
        for (http_status, oss_code, expected) in table {
            let status = oss_status(oss_error(*http_status, oss_code));
            assert_eq!(status.code(), *expected, "{http_status} {oss_code}");
            let info = status.get_error_details().error_info().cloned().unwrap();
            assert_eq!(info.reason, *oss_code);
            assert_eq!(info.domain, OSS_ERROR_DOMAIN);
            assert_eq!(info.metadata["request_id"], "REQ-1");
            assert_eq!(info.metadata["http_status"], http_status.to_string());
            assert_eq!(info.metadata["ec"], "0016-00000502");
            let retry = status.get_error_details().retry_info().cloned();
            assert_eq!(
                retry.is_some(),
                *expected == Code::ResourceExhausted,
                "{oss_code}"
            );
        }
    }

    #[test]
    fn client_side_failures_map_by_kind() {
        for (kind, expected) in [
            (OssErrorKind::Transport, Code::Unavailable),
            (OssErrorKind::Timeout, Code::DeadlineExceeded),
            (OssErrorKind::Cancelled, Code::Cancelled),
            (OssErrorKind::InvalidResponse, Code::Internal),
            (OssErrorKind::ChecksumMismatch, Code::DataLoss),
        ] {
            let status = oss_status(OssError::client(kind, "boom"));
            assert_eq!(status.code(), expected, "{kind:?}");
        }
    }

    #[test]
    fn lock_failures_say_whether_to_retry() {
        for (error, code, reason) in [
            (
                LockError::Busy {
                    waited: Duration::from_secs(5),
                },
                Code::Aborted,
                "TAG_LOCK_BUSY",
            ),
            (LockError::LeaseLost, Code::Aborted, "TAG_LOCK_LOST"),
            (
                LockError::Unavailable("refused".into()),
                Code::Unavailable,
                "TAG_LOCK_UNAVAILABLE",
            ),
        ] {
            let status = lock_status(error);
            assert_eq!(status.code(), code);
            let details = status.get_error_details();
            assert_eq!(details.error_info().unwrap().reason, reason);
            assert_eq!(details.error_info().unwrap().domain, GATEWAY_ERROR_DOMAIN);
            assert!(details.retry_info().is_some());
        }
    }

    #[test]
    fn violations_become_one_bad_request() {
        let status = invalid_argument(vec![
            Violation::new("bucket", "is empty"),
            Violation::new("tagging.tags[\"a&b\"]", "has '&'"),
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details.bad_request().unwrap().field_violations;
        assert_eq!(violations.len(), 2);
        assert_eq!(violations[1].field, "tagging.tags[\"a&b\"]");
        assert!(status.message().contains("bucket: is empty"));
    }
}
