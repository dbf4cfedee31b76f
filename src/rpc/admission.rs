//! Admission of write streams to the upload memory budget (`upload.memory_budget_bytes`): a
//! stream the budget cannot hold now is refused at once with `UNAVAILABLE`, in the same shape
//! as the edge's load shedding (`server::limits`), so clients handle every refusal alike.

use std::time::Duration;

use tonic::{Code, Status};

/// ErrorInfo domain of load-shedding refusals.
pub const ERROR_DOMAIN: &str = "ossgate.server";

/// ErrorInfo reason of load-shedding refusals.
pub const OVERLOADED: &str = "OVERLOADED";

/// An `UNAVAILABLE` refusal with ErrorInfo (domain [`ERROR_DOMAIN`], reason [`OVERLOADED`],
/// `metadata`) and RetryInfo: the shape of every load-shedding refusal, so clients handle
/// them all alike.
pub fn overloaded_status<const N: usize>(
    message: String,
    metadata: [(String, String); N],
    retry_after: Duration,
) -> Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let mut details = ErrorDetails::with_error_info(
        OVERLOADED,
        ERROR_DOMAIN,
        std::collections::HashMap::from(metadata),
    );
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(Code::Unavailable, message, details)
}

/// How long a write refused for memory is told to wait: about the time an admitted upload
/// takes to store a part and make room (longer than the call slots' 100 ms, because each attempt
/// costs the client its first message on the wire).
pub const UPLOAD_MEMORY_RETRY_AFTER: Duration = Duration::from_millis(250);

/// The refusal of a write stream that the upload memory budget cannot admit now: the pool
/// is `upload_memory`, `limit` the budget in bytes, `needed` the stream's working set.
pub fn upload_memory_full(needed: usize, total: usize, in_use: usize) -> Status {
    overloaded_status(
        format!(
            "server overloaded: the upload memory budget (upload.memory_budget_bytes, {total} \
             bytes, {in_use} in use) cannot hold this write's {needed} bytes now; retry with backoff"
        ),
        [
            ("pool".to_owned(), "upload_memory".to_owned()),
            ("limit".to_owned(), total.to_string()),
            ("needed".to_owned(), needed.to_string()),
        ],
        UPLOAD_MEMORY_RETRY_AFTER,
    )
}
