//! Load shedding for `ossgate.v1.ObjectService`: a global (all connections together) limit on
//! calls in progress, with separate pools for unary and streaming calls. A call that finds its
//! pool full is refused at once with `UNAVAILABLE` instead of waiting in a queue.
//!
//! * Unary calls hold a slot until their response is sent.
//! * Streaming calls (WriteObject, AppendObject, ReadObject) hold a slot from their first
//!   message until the response stream ends or the call is cancelled. They have their own
//!   pool, so long uploads and downloads cannot starve the quick tagging calls, and a burst of
//!   tagging calls cannot stop uploads from starting.
//!
//! Why `UNAVAILABLE`: the refused call did nothing (it never reached a handler, let alone
//! OSS), so it is safe to retry anywhere, and `UNAVAILABLE` is the code gRPC clients and
//! retry policies treat as "transient, try again (maybe on another replica)". The status
//! carries `ErrorInfo` (domain `ossgate.server`, reason `OVERLOADED`, metadata `pool` and
//! `limit`) and `RetryInfo`. `RESOURCE_EXHAUSTED` stays what it means elsewhere in this API:
//! OSS throttling or a quota of the caller's.
//!
//! A call whose client goes silent does not keep its slot: when the handler waits for the
//! next request bytes and none come for `server.stream_idle_timeout_ms`, the request body
//! fails with `DEADLINE_EXCEEDED` (ErrorInfo reason [`STREAM_IDLE`]), which the handler
//! returns like any broken stream (a write is aborted, a resumable one keeps its parts).

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::future::BoxFuture;
use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use tonic::{Code, Status, body::Body, server::NamedService};
use tower::Service;

// The refusal shape is shared with the RPCs' upload memory admission, which defines it.
use crate::rpc::admission::overloaded_status;
pub use crate::rpc::admission::{ERROR_DOMAIN, OVERLOADED};

/// ErrorInfo reason of a call ended because its client sent nothing for the idle timeout.
pub const STREAM_IDLE: &str = "STREAM_IDLE";

/// How long a refused client is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// The ObjectService methods that stream (held for the whole stream).
const STREAMING_METHODS: [&str; 4] = ["WriteObject", "AppendObject", "ReadObject", "FindObjects"];

/// One pool of call slots.
#[derive(Clone, Debug)]
struct Pool {
    name: &'static str,
    limit: usize,
    slots: Arc<Semaphore>,
}

impl Pool {
    fn new(name: &'static str, limit: usize) -> Self {
        Self {
            name,
            limit,
            slots: Arc::new(Semaphore::new(limit)),
        }
    }
}

/// The shared limits; clone it into [`CallLimit`] services.
#[derive(Clone, Debug)]
pub struct CallLimits {
    unary: Pool,
    streaming: Pool,
    /// How long a call may wait for its client's next request bytes.
    idle_timeout: Duration,
}

/// The idle timeout when none is set: `server.stream_idle_timeout_ms`'s default.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl CallLimits {
    /// At most `unary` unary calls and `streaming` streaming calls at a time.
    pub fn new(unary: usize, streaming: usize) -> Self {
        Self {
            unary: Pool::new("unary", unary),
            streaming: Pool::new("streaming", streaming),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// Ends calls whose client sends nothing for `idle` while the handler waits for it.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Slots of the unary pool in use.
    pub fn unary_in_use(&self) -> usize {
        self.unary.limit - self.unary.slots.available_permits()
    }

    /// Slots of the streaming pool in use.
    pub fn streaming_in_use(&self) -> usize {
        self.streaming.limit - self.streaming.slots.available_permits()
    }

    fn pool_for(&self, path: &str) -> &Pool {
        let method = path.rsplit('/').next().unwrap_or_default();
        if STREAMING_METHODS.contains(&method) {
            &self.streaming
        } else {
            &self.unary
        }
    }
}

/// The status of a refused call.
fn overloaded(pool: &Pool) -> Status {
    overloaded_status(
        format!(
            "server overloaded: all {} {} call slots are in use (server.max_concurrent_{}); retry with backoff",
            pool.limit,
            pool.name,
            if pool.name == "unary" {
                "calls"
            } else {
                "streaming_calls"
            }
        ),
        [
            ("pool".to_owned(), pool.name.to_owned()),
            ("limit".to_owned(), pool.limit.to_string()),
        ],
        RETRY_AFTER,
    )
}

/// A load-shedding refusal as a client reads it from a status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What refused: `unary` or `streaming` (call slots) or `upload_memory`.
    pub pool: String,
    /// How long the RetryInfo says to wait.
    pub retry_after: Duration,
}

impl Refusal {
    /// The refusal `status` carries, or `None` when it is not a load-shedding refusal.
    pub fn of(status: &Status) -> Option<Self> {
        use tonic_types::StatusExt;
        if status.code() != Code::Unavailable {
            return None;
        }
        let details = status.get_error_details();
        let info = details.error_info()?;
        if info.reason != OVERLOADED || info.domain != ERROR_DOMAIN {
            return None;
        }
        Some(Self {
            pool: info.metadata.get("pool")?.clone(),
            retry_after: details.retry_info()?.retry_delay?,
        })
    }
}

/// Refusals a client has seen, by what refused.
#[derive(Debug, Default)]
pub struct RefusalCounts {
    /// By the unary or the streaming call slots.
    pub call_slots: std::sync::atomic::AtomicU64,
    /// By the upload memory budget.
    pub upload_memory: std::sync::atomic::AtomicU64,
}

impl RefusalCounts {
    /// Counts `refusal`.
    pub fn count(&self, refusal: &Refusal) {
        let counter = if refusal.pool == "upload_memory" {
            &self.upload_memory
        } else {
            &self.call_slots
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Calls `call` until it is not refused for load, as a well-behaved client of this server
/// does (the tests and benchmarks use it): before each new attempt it waits at least the
/// refusal's RetryInfo delay, backing off exponentially from 100 ms to 2 s, with jitter
/// (×0.5 to ×1.5) so refused clients do not come back together. `refused` sees each
/// refusal. Any other outcome is returned.
pub async fn call_with_backoff<T, F, Fut>(
    mut call: F,
    mut refused: impl FnMut(&Refusal),
) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match call().await {
            Err(status) => {
                let Some(refusal) = Refusal::of(&status) else {
                    return Err(status);
                };
                refused(&refusal);
                let jitter = 0.5 + rand::random::<f64>();
                tokio::time::sleep(refusal.retry_after.max(backoff).mul_f64(jitter)).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            done => return done,
        }
    }
}

/// Wraps a gRPC service with [`CallLimits`].
#[derive(Clone, Debug)]
pub struct CallLimit<S> {
    inner: S,
    limits: CallLimits,
}

impl<S> CallLimit<S> {
    /// `inner` under `limits`.
    pub fn new(inner: S, limits: CallLimits) -> Self {
        Self { inner, limits }
    }
}

impl<S: NamedService> NamedService for CallLimit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, ResBody> Service<http::Request<B>> for CallLimit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let pool = self.limits.pool_for(request.uri().path());
        let Ok(permit) = pool.slots.clone().try_acquire_owned() else {
            // Shed calls never reach a handler: count them here, so
            // ossgate_rpc_duration_seconds{code="Unavailable"} shows the load being shed.
            let method = request.uri().path().rsplit('/').next().unwrap_or_default();
            crate::telemetry::metrics().record_rpc(
                method,
                &format!("{:?}", Code::Unavailable),
                std::time::Duration::ZERO,
            );
            let response = overloaded(pool).into_http();
            return Box::pin(async move { Ok(response) });
        };
        let idle_timeout = self.limits.idle_timeout;
        let request = request.map(|body| Body::new(IdleTimeout::new(body, idle_timeout)));
        // The clone that was made ready takes the call (tower's usual pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            // The slot is held until the response body (the stream) is finished or dropped.
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _held = &permit;
                    frame
                }))
            }))
        })
    }
}

/// A request body that fails with `DEADLINE_EXCEEDED` (reason [`STREAM_IDLE`]) when the
/// handler has been waiting for the client's next bytes for `idle`. The clock runs only
/// while the handler waits: a handler busy elsewhere (storing a part) is not the client's
/// silence.
struct IdleTimeout<B> {
    inner: Pin<Box<B>>,
    idle: Duration,
    /// Set when the handler starts waiting; cleared by every frame.
    waiting_since: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> IdleTimeout<B> {
    fn new(inner: B, idle: Duration) -> Self {
        Self {
            inner: Box::pin(inner),
            idle,
            waiting_since: None,
        }
    }
}

/// The status of a call whose client went silent.
fn stream_idle(idle: Duration) -> Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let millis = idle.as_millis().to_string();
    Status::with_error_details(
        Code::DeadlineExceeded,
        format!(
            "the client sent nothing for {millis} ms (server.stream_idle_timeout_ms); the call \
             is ended"
        ),
        ErrorDetails::with_error_info(
            STREAM_IDLE,
            ERROR_DOMAIN,
            [("idle_timeout_ms".to_owned(), millis)],
        ),
    )
}

impl<B> http_body::Body for IdleTimeout<B>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = bytes::Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = this.inner.as_mut().poll_frame(cx) {
            this.waiting_since = None;
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let idle = this.idle;
        let expires = this
            .waiting_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        match expires.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.waiting_since = None;
                // tonic finds a Status in a body error and passes it on unchanged.
                Poll::Ready(Some(Err(Box::new(stream_idle(idle)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::admission::{UPLOAD_MEMORY_RETRY_AFTER, upload_memory_full};
    use tonic_types::StatusExt;

    #[test]
    fn streaming_methods_have_their_own_pool() {
        let limits = CallLimits::new(2, 1);
        for method in STREAMING_METHODS {
            let path = format!("/ossgate.v1.ObjectService/{method}");
            assert_eq!(limits.pool_for(&path).name, "streaming");
        }
        for method in [
            "PutObjectTagging",
            "HeadObject",
            "CopyObject",
            "StartResumableWrite",
        ] {
            let path = format!("/ossgate.v1.ObjectService/{method}");
            assert_eq!(limits.pool_for(&path).name, "unary");
        }
        assert_eq!(limits.unary_in_use(), 0);
        assert_eq!(limits.streaming_in_use(), 0);
    }

    #[test]
    fn refusal_is_unavailable_with_error_and_retry_info() {
        let status = overloaded(&Pool::new("unary", 7));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("server.max_concurrent_calls"));
        let details = status.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, OVERLOADED);
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata["limit"], "7");
        assert_eq!(info.metadata["pool"], "unary");
        assert_eq!(details.retry_info().unwrap().retry_delay, Some(RETRY_AFTER));
    }

    #[test]
    fn clients_read_every_refusal_alike() {
        let slots = overloaded(&Pool::new("streaming", 3));
        assert_eq!(
            Refusal::of(&slots),
            Some(Refusal {
                pool: "streaming".into(),
                retry_after: RETRY_AFTER
            })
        );
        let memory = upload_memory_full(16, 100, 90);
        assert_eq!(memory.code(), Code::Unavailable);
        assert!(
            memory.message().contains("upload.memory_budget_bytes"),
            "{memory:?}"
        );
        let details = memory.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            (OVERLOADED, ERROR_DOMAIN)
        );
        assert_eq!(info.metadata["needed"], "16");
        assert_eq!(info.metadata["limit"], "100");
        assert_eq!(
            Refusal::of(&memory).map(|r| (r.pool, r.retry_after)),
            Some(("upload_memory".into(), UPLOAD_MEMORY_RETRY_AFTER))
        );
        // Other statuses are not refusals.
        assert_eq!(Refusal::of(&Status::unavailable("OSS is down")), None);
        assert_eq!(Refusal::of(&stream_idle(Duration::from_secs(1))), None);
    }
}
