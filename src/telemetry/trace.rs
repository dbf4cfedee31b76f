//! Spans: one server span per gRPC call (parented on the caller's W3C `traceparent`), one
//! client span per OSS HTTP attempt beneath it. They are `tracing` spans; when OTLP export is
//! on, `tracing-opentelemetry` turns them into OpenTelemetry spans (see [`super::otel`]).
//!
//! Attribute names follow the OpenTelemetry semantic conventions where one exists
//! (`rpc.*`, `http.*`, `error.type`) and use `oss.*` for the rest.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context as TaskContext, Poll},
};

use futures_util::Stream;
use opentelemetry::{
    Context,
    context::FutureExt as _,
    propagation::{Extractor, TextMapPropagator},
    trace::{Status, TraceContextExt},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::{Instrument, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The gRPC service every call span names.
pub const RPC_SERVICE: &str = "ossgate.v1.ObjectService";

/// The trace context a caller sent in `traceparent` / `tracestate` metadata (gRPC metadata
/// are HTTP/2 headers). An absent or malformed `traceparent` gives an empty context, so the
/// call starts a new trace.
pub fn extract_context(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Reads propagation fields from HTTP headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// A tower layer for the gRPC server: each request runs with the caller's trace context
/// (from `traceparent` / `tracestate`) as the current OpenTelemetry context, so the call span
/// opened inside the handler becomes its child.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContextLayer;

impl<S> tower::Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService { inner }
    }
}

/// The service [`TraceContextLayer`] wraps around the gRPC routes.
#[derive(Clone, Debug)]
pub struct TraceContextService<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for TraceContextService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = opentelemetry::context::WithContext<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let parent = extract_context(request.headers());
        self.inner.call(request).with_context(parent)
    }
}

tokio::task_local! {
    /// The call being served by the current task (absent in spawned tasks and outside calls).
    static CURRENT_CALL: Arc<CallState>;
}

/// What OSS requests and byte counters report back to the call span of their task.
#[derive(Debug)]
struct CallState {
    span: Span,
    target_noted: AtomicBool,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// The server span of one ObjectService call.
#[derive(Debug)]
pub struct RpcSpan {
    state: Arc<CallState>,
}

impl RpcSpan {
    /// Opens the span of a call to `method`, a child of the trace context the caller sent
    /// (installed by [`TraceContextLayer`]), else a new trace.
    pub fn start(method: &'static str) -> Self {
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format!("{RPC_SERVICE}/{method}"),
            otel.kind = "server",
            method,
        );
        let parent = Context::current();
        if parent.span().span_context().is_valid() {
            // Fails only when no OpenTelemetry layer is installed: nothing to parent then.
            let _ = span.set_parent(parent);
        }
        span.set_attribute("rpc.system", "grpc");
        span.set_attribute("rpc.service", RPC_SERVICE);
        span.set_attribute("rpc.method", method);
        Self {
            state: Arc::new(CallState {
                span,
                target_noted: AtomicBool::new(false),
                bytes_in: AtomicU64::new(0),
                bytes_out: AtomicU64::new(0),
            }),
        }
    }

    /// The tracing span (log events of the call carry its fields).
    pub fn span(&self) -> &Span {
        &self.state.span
    }

    /// Runs the call's future inside the span, where OSS requests and byte counters find it.
    pub async fn run<F: Future>(&self, call: F) -> F::Output {
        CURRENT_CALL
            .scope(
                Arc::clone(&self.state),
                call.instrument(self.state.span.clone()),
            )
            .await
    }

    /// Records the call's outcome: the numeric gRPC `code` (0 = OK), whether it counts as a
    /// server error (the span status is then ERROR with `message`), and the payload bytes
    /// counted while it ran.
    pub fn finish(&self, code: i32, server_error: bool, message: &str) {
        let span = &self.state.span;
        span.set_attribute("rpc.grpc.status_code", i64::from(code));
        if server_error {
            span.set_status(Status::error(message.to_string()));
        }
        record_bytes(span, &self.state);
    }

    /// Keeps the span open while `stream` is consumed, recording each item's payload bytes
    /// and the first error's gRPC code (`inspect` returns `(bytes, Some((code,
    /// server_error, message)))` for an error item).
    pub fn follow_stream<S, F>(self, stream: S, inspect: F) -> RpcStream<S, F>
    where
        S: Stream + Unpin,
        F: FnMut(&S::Item) -> (u64, Option<(i32, bool, String)>),
    {
        RpcStream {
            inner: stream,
            inspect,
            call: Some(self),
        }
    }
}

fn record_bytes(span: &Span, state: &CallState) {
    let bytes_in = state.bytes_in.load(Ordering::Relaxed);
    let bytes_out = state.bytes_out.load(Ordering::Relaxed);
    if bytes_in > 0 {
        span.set_attribute("rpc.request.body.size", clamp(bytes_in));
    }
    if bytes_out > 0 {
        span.set_attribute("rpc.response.body.size", clamp(bytes_out));
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A server stream whose call span ends when the stream ends (or is dropped), with the
/// bytes it carried and the code it ended with.
pub struct RpcStream<S, F> {
    inner: S,
    inspect: F,
    call: Option<RpcSpan>,
}

impl<S, F> RpcStream<S, F> {
    fn end(&mut self, code: i32, server_error: bool, message: &str) {
        if let Some(call) = self.call.take() {
            call.finish(code, server_error, message);
        }
    }
}

impl<S, F> Stream for RpcStream<S, F>
where
    S: Stream + Unpin,
    F: FnMut(&S::Item) -> (u64, Option<(i32, bool, String)>) + Unpin,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(item)) => {
                let (bytes, error) = (this.inspect)(item);
                if let Some(call) = &this.call {
                    call.state.bytes_out.fetch_add(bytes, Ordering::Relaxed);
                }
                if let Some((code, server_error, message)) = error {
                    this.end(code, server_error, &message);
                }
            }
            Poll::Ready(None) => this.end(0, false, ""),
            Poll::Pending => {}
        }
        polled
    }
}

impl<S, F> Drop for RpcStream<S, F> {
    fn drop(&mut self) {
        // The caller went away before the end: gRPC reports CANCELLED (1).
        self.end(1, false, "");
    }
}

/// Adds payload bytes (`direction` `in` or `out`) to the call span of the current task.
pub(super) fn add_rpc_bytes(direction: &str, bytes: u64) {
    let _ = CURRENT_CALL.try_with(|state| {
        let counter = if direction == "in" {
            &state.bytes_in
        } else {
            &state.bytes_out
        };
        counter.fetch_add(bytes, Ordering::Relaxed);
    });
}

/// The client span of one OSS HTTP attempt. Dropped without [`OssSpan::finish`] (the attempt
/// was cancelled, e.g. by the call's deadline), it records `error.type = Cancelled`.
#[derive(Debug)]
pub struct OssSpan {
    span: Span,
    finished: bool,
}

/// What one OSS HTTP attempt ended with.
#[derive(Debug, Default)]
pub struct OssOutcome<'a> {
    /// The HTTP status, when OSS answered.
    pub status: Option<u16>,
    /// `x-oss-request-id`.
    pub request_id: Option<&'a str>,
    /// The OSS error code (or the client-side error kind) of a failure.
    pub error: Option<&'a str>,
    /// Request body bytes sent.
    pub bytes_sent: Option<u64>,
    /// Response body size (`Content-Length`), when known.
    pub bytes_received: Option<u64>,
}

impl OssSpan {
    /// Opens the span of attempt number `attempt` (1 = first) of an OSS request. The first
    /// OSS request of a call also names the call span's bucket and key.
    pub fn start(method: &str, operation: &str, bucket: &str, key: &str, attempt: u32) -> Self {
        let span = tracing::info_span!(
            "oss",
            otel.name = %operation,
            otel.kind = "client",
            oss.operation = %operation,
            oss.bucket = %bucket,
            oss.key = Empty,
            http.request.method = %method,
            http.request.resend_count = Empty,
            http.response.status_code = Empty,
            oss.request_id = Empty,
            error.type = Empty,
        );
        if !key.is_empty() {
            span.record("oss.key", key);
        }
        if attempt > 1 {
            // Integers as i64: tracing-opentelemetry exports unsigned ones as strings.
            span.record("http.request.resend_count", i64::from(attempt - 1));
        }
        let _ = CURRENT_CALL.try_with(|state| {
            if !state.target_noted.swap(true, Ordering::Relaxed) {
                let call = &state.span;
                call.set_attribute("oss.bucket", bucket.to_string());
                if !key.is_empty() {
                    call.set_attribute("oss.key", key.to_string());
                }
            }
        });
        Self {
            span,
            finished: false,
        }
    }

    /// The tracing span, to instrument the attempt with.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Records how the attempt ended.
    pub fn finish(mut self, outcome: &OssOutcome<'_>) {
        self.finished = true;
        if let Some(status) = outcome.status {
            self.span
                .record("http.response.status_code", i64::from(status));
        }
        if let Some(id) = outcome.request_id.filter(|id| !id.is_empty()) {
            self.span.record("oss.request_id", id);
        }
        if let Some(bytes) = outcome.bytes_sent {
            self.span
                .set_attribute("http.request.body.size", clamp(bytes));
        }
        if let Some(bytes) = outcome.bytes_received {
            self.span
                .set_attribute("http.response.body.size", clamp(bytes));
        }
        if let Some(error) = outcome.error {
            self.span.record("error.type", error);
            self.span.set_status(Status::error(error.to_string()));
        }
    }
}

impl Drop for OssSpan {
    fn drop(&mut self) {
        if !self.finished {
            self.span.record("error.type", "Cancelled");
            self.span
                .set_status(Status::error("the attempt was cancelled"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, http::HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn traceparent_and_tracestate_are_extracted() {
        let cx = extract_context(&headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "vendor=abc,other=1"),
        ]));
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid());
        assert!(sc.is_remote());
        assert!(sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(sc.trace_state().get("vendor"), Some("abc"));
    }

    #[test]
    fn missing_or_malformed_traceparent_starts_a_new_trace() {
        for bad in [
            vec![],
            vec![("traceparent", "garbage")],
            // All-zero trace id is invalid.
            vec![(
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            )],
            // Unknown future version with a bad length.
            vec![(
                "traceparent",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
        ] {
            let cx = extract_context(&headers(&bad));
            assert!(!cx.span().span_context().is_valid(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_layer_runs_the_request_in_the_callers_context() {
        use tower::{Layer, Service, ServiceExt};
        let inner = tower::service_fn(|_req: http::Request<()>| async {
            let cx = Context::current();
            let sc = cx.span().span_context().clone();
            Ok::<_, std::convert::Infallible>((sc.trace_id().to_string(), sc.span_id().to_string()))
        });
        let mut service = TraceContextLayer.layer(inner);
        let request = http::Request::builder()
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .body(())
            .unwrap();
        let (trace, span) = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(trace, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(span, "b7ad6b7169203331");
        // Without the header the handler sees no parent.
        let (trace, _) = service
            .ready()
            .await
            .unwrap()
            .call(http::Request::new(()))
            .await
            .unwrap();
        assert_eq!(trace, "00000000000000000000000000000000");
    }
}
