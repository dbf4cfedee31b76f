//! Fault injection and per-operation request counters, for tests.
//!
//! Switched at run time through [`EmulatorHandle::faults`](crate::emulator::EmulatorHandle::faults);
//! there is deliberately no HTTP or CLI way to reach it. Every request is classified into a
//! [`FaultOp`] from its method, sub-resources and `x-oss-copy-source` header (before routing
//! and authentication) and counted. Then the first injected [`Fault`] whose `op` matches
//! (in injection order, `FaultOp::Any` matches everything) is consumed once:
//!
//! * [`FaultKind::Status`] answers with that HTTP status and an OSS `<Error>` whose `Code` is
//!   the given code; the request is not run (nothing stored, the body is not read).
//! * [`FaultKind::Delay`] sleeps, then runs the request normally.
//! * [`FaultKind::DropConnection`] closes the connection without sending a response; the
//!   request is not run.
//!
//! ```no_run
//! # async fn demo(handle: &ossgate::emulator::EmulatorHandle) {
//! use ossgate::emulator::{Fault, FaultKind, FaultOp};
//! handle.faults().inject(Fault {
//!     op: FaultOp::UploadPart,
//!     kind: FaultKind::Status(503, "ServiceUnavailable"),
//!     times: 2,
//! });
//! // … run the client …
//! assert_eq!(handle.faults().count(FaultOp::UploadPart), 5);
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{Method, StatusCode};

use crate::emulator::error::ApiError;
use crate::emulator::{EmulatorHandle, State, lock};
use crate::oss::protocol;

/// An OSS operation as the emulator classifies a request (method + sub-resources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultOp {
    /// Matches every request (for [`Fault::op`]); as a counter, every request.
    Any,
    /// `PUT /key`.
    PutObject,
    /// `GET /key`.
    GetObject,
    /// `HEAD /key`.
    HeadObject,
    /// `HEAD|GET /key?objectMeta`.
    GetObjectMeta,
    /// `DELETE /key`.
    DeleteObject,
    /// `PUT /key` with `x-oss-copy-source`.
    CopyObject,
    /// `POST /key?append&position=N`.
    AppendObject,
    /// `POST /key?uploads`.
    InitiateMultipartUpload,
    /// `PUT /key?partNumber&uploadId`.
    UploadPart,
    /// `PUT /key?partNumber&uploadId` with `x-oss-copy-source`.
    UploadPartCopy,
    /// `POST /key?uploadId`.
    CompleteMultipartUpload,
    /// `DELETE /key?uploadId`.
    AbortMultipartUpload,
    /// `GET /key?uploadId`.
    ListParts,
    /// `GET /bucket/?uploads`.
    ListMultipartUploads,
    /// `PUT /key?tagging`.
    PutObjectTagging,
    /// `GET /key?tagging`.
    GetObjectTagging,
    /// `DELETE /key?tagging`.
    DeleteObjectTagging,
    /// `PUT /key?symlink`.
    PutSymlink,
    /// `GET /key?symlink`.
    GetSymlink,
    /// Anything else.
    Other,
}

impl FaultOp {
    /// Classifies a request. `query_names` are the decoded query parameter names.
    pub fn classify(method: &Method, query_names: &[&str], copy_source: bool) -> Self {
        let has = |n: &str| query_names.contains(&n);
        match *method {
            Method::PUT if has("tagging") => Self::PutObjectTagging,
            Method::PUT if has("symlink") => Self::PutSymlink,
            Method::PUT if has("uploadId") || has("partNumber") => {
                if copy_source {
                    Self::UploadPartCopy
                } else {
                    Self::UploadPart
                }
            }
            Method::PUT if copy_source => Self::CopyObject,
            Method::PUT => Self::PutObject,
            Method::POST if has("uploads") => Self::InitiateMultipartUpload,
            Method::POST if has("append") => Self::AppendObject,
            Method::POST if has("uploadId") => Self::CompleteMultipartUpload,
            Method::POST => Self::Other,
            Method::GET if has("uploads") => Self::ListMultipartUploads,
            Method::GET if has("uploadId") => Self::ListParts,
            Method::GET if has("tagging") => Self::GetObjectTagging,
            Method::GET if has("symlink") => Self::GetSymlink,
            Method::GET | Method::HEAD if has("objectMeta") => Self::GetObjectMeta,
            Method::GET => Self::GetObject,
            Method::HEAD => Self::HeadObject,
            Method::DELETE if has("uploadId") => Self::AbortMultipartUpload,
            Method::DELETE if has("tagging") => Self::DeleteObjectTagging,
            Method::DELETE => Self::DeleteObject,
            _ => Self::Other,
        }
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this HTTP status and OSS error code (e.g. `503, "ServiceUnavailable"`).
    Status(u16, &'static str),
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Close the connection without answering.
    DropConnection,
}

/// One injected fault: applies to the next `times` requests of operation `op`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Which requests it applies to ([`FaultOp::Any`] = every request).
    pub op: FaultOp,
    /// What happens to them.
    pub kind: FaultKind,
    /// How many matching requests it applies to (then it is gone).
    pub times: u32,
}

/// The fault injector and request counters of one emulator.
#[derive(Debug, Default)]
pub struct Faults {
    pending: Mutex<Vec<Fault>>,
    counts: Mutex<BTreeMap<FaultOp, u64>>,
}

impl Faults {
    /// Adds a fault (after the ones already pending). `times == 0` adds nothing.
    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            lock(&self.pending).push(fault);
        }
    }

    /// Removes every pending fault.
    pub fn clear(&self) {
        lock(&self.pending).clear();
    }

    /// How many fault applications are still pending (sum of the remaining `times`).
    pub fn pending(&self) -> u64 {
        lock(&self.pending).iter().map(|f| u64::from(f.times)).sum()
    }

    /// How many requests of `op` arrived (faulted ones included); `Any` = all requests.
    pub fn count(&self, op: FaultOp) -> u64 {
        lock(&self.counts).get(&op).copied().unwrap_or(0)
    }

    /// Every non-zero counter.
    pub fn counts(&self) -> BTreeMap<FaultOp, u64> {
        lock(&self.counts).clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_counts(&self) {
        lock(&self.counts).clear();
    }

    /// Counts a request of `op` and takes the fault that applies to it, if any.
    fn take(&self, op: FaultOp) -> Option<FaultKind> {
        {
            let mut counts = lock(&self.counts);
            *counts.entry(op).or_insert(0) += 1;
            *counts.entry(FaultOp::Any).or_insert(0) += 1;
        }
        let mut pending = lock(&self.pending);
        let i = pending
            .iter()
            .position(|f| f.op == FaultOp::Any || f.op == op)?;
        let kind = pending[i].kind.clone();
        pending[i].times = pending[i].times.saturating_sub(1);
        if pending[i].times == 0 {
            pending.remove(i);
        }
        Some(kind)
    }
}

impl EmulatorHandle {
    /// The fault injector and per-operation request counters (see [`Faults`]).
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }
}

/// Runs at the start of every request: counts it and applies a pending fault.
/// `Some(result)` = answer with that instead of running the request.
pub(crate) async fn on_request(
    state: &State,
    parts: &http::request::Parts,
) -> Option<Result<Response, ApiError>> {
    let query = parts.uri.query().unwrap_or("");
    let decoded: Vec<String> = query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let name = s.split_once('=').map_or(s, |(k, _)| k);
            percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let names: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let op = FaultOp::classify(
        &parts.method,
        &names,
        parts.headers.contains_key(protocol::header::COPY_SOURCE),
    );
    match state.faults.take(op)? {
        FaultKind::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        FaultKind::Status(status, code) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(Err(ApiError::new(
                status,
                code,
                format!("Injected fault for {op:?}."),
            )))
        }
        FaultKind::DropConnection => Some(
            Response::builder()
                .status(StatusCode::OK)
                .header("content-length", "1")
                .body(Body::from_stream(futures_util::stream::once(async {
                    Err::<bytes::Bytes, _>(std::io::Error::other("injected connection drop"))
                })))
                .map_err(|e| ApiError::internal(e.to_string())),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_and_consume() {
        let c = |m: Method, q: &[&str], copy: bool| FaultOp::classify(&m, q, copy);
        assert_eq!(
            c(Method::PUT, &["partNumber", "uploadId"], false),
            FaultOp::UploadPart
        );
        assert_eq!(
            c(Method::PUT, &["partNumber", "uploadId"], true),
            FaultOp::UploadPartCopy
        );
        assert_eq!(c(Method::PUT, &[], true), FaultOp::CopyObject);
        assert_eq!(
            c(Method::POST, &["append", "position"], false),
            FaultOp::AppendObject
        );
        assert_eq!(
            c(Method::GET, &["uploads"], false),
            FaultOp::ListMultipartUploads
        );
        assert_eq!(
            c(Method::HEAD, &["objectMeta"], false),
            FaultOp::GetObjectMeta
        );
        let f = Faults::default();
        f.inject(Fault {
            op: FaultOp::UploadPart,
            kind: FaultKind::DropConnection,
            times: 2,
        });
        assert_eq!(f.pending(), 2);
        assert_eq!(f.take(FaultOp::PutObject), None);
        assert_eq!(f.take(FaultOp::UploadPart), Some(FaultKind::DropConnection));
        assert_eq!(f.take(FaultOp::UploadPart), Some(FaultKind::DropConnection));
        assert_eq!(f.take(FaultOp::UploadPart), None);
        assert_eq!(f.count(FaultOp::UploadPart), 3);
        assert_eq!(f.count(FaultOp::Any), 4);
        f.reset_counts();
        assert_eq!(f.count(FaultOp::Any), 0);
    }
}
