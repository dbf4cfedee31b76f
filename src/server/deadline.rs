//! Call deadlines: a tower layer that reads the caller's `grpc-timeout` and ends a call that
//! outlives it with `DEADLINE_EXCEEDED`.
//!
//! tonic's transport already drops a handler at the `grpc-timeout`, but answers `CANCELLED`
//! (`TimeoutExpired` becomes `Status::cancelled`), and it bounds only the time until the
//! response headers, not a server stream. This layer, inside tonic's, ends the call a
//! little earlier (by [`margin`], so it reliably answers first) with a proper
//! `DEADLINE_EXCEEDED`, and ends a response stream that is still running at the deadline
//! with `DEADLINE_EXCEEDED` trailers.
//!
//! While the call runs, the deadline is visible to the OSS client
//! ([`crate::oss::retry::with_deadline`]): each OSS attempt is bounded by it and no retry is
//! started that could not finish in time. When the call is ended, its future is dropped,
//! which drops the OSS requests in flight, and an unfinished multipart upload is aborted in
//! the background by its `AbortOnDrop` guard, so no upload is left behind.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use tonic::{Status, body::Body};
use tower::{Layer, Service};
use tracing::info;

/// The `grpc-timeout` request header.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Adds [`Deadline`] to a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner }
    }
}

/// Ends calls that outlive their `grpc-timeout` with `DEADLINE_EXCEEDED`.
#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
}

/// Parses a `grpc-timeout` value: at most 8 digits and a unit (`H M S m u n`).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The caller's timeout, if it sent a valid `grpc-timeout`.
fn timeout_of(headers: &HeaderMap) -> Option<Duration> {
    parse_grpc_timeout(headers.get(GRPC_TIMEOUT)?.to_str().ok()?)
}

/// How much earlier than the caller's deadline the call is ended: a twentieth of the
/// timeout, between 1 ms and 10 ms (never more than half of it). tonic's own timer fires at
/// the deadline itself, and the answer must travel back before the caller's timer fires.
pub fn margin(timeout: Duration) -> Duration {
    (timeout / 20)
        .clamp(Duration::from_millis(1), Duration::from_millis(10))
        .min(timeout / 2)
}

/// The `DEADLINE_EXCEEDED` answer for a call with `timeout`.
fn deadline_exceeded(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "the call's deadline ({} ms) passed before it finished; OSS requests in flight were \
         cancelled and an unfinished upload is aborted",
        timeout.as_millis()
    ))
}

/// The last segment of a gRPC path (`/ossgate.v1.ObjectService/WriteObject` → `WriteObject`).
fn method_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Deadline<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let Some(timeout) = timeout_of(request.headers()) else {
            let call = self.inner.call(request);
            return Box::pin(async move { Ok(call.await?.map(Body::new)) });
        };
        let started = Instant::now();
        let deadline = started + timeout.saturating_sub(margin(timeout));
        let method = method_of(request.uri().path());
        let call = crate::oss::retry::with_deadline(deadline, self.inner.call(request));
        Box::pin(async move {
            match tokio::time::timeout_at(deadline.into(), call).await {
                Ok(response) => Ok(response?.map(|body| {
                    Body::new(DeadlineBody {
                        inner: Some(Box::pin(body)),
                        deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
                        timeout,
                        state: BodyState::Streaming,
                    })
                })),
                Err(_) => {
                    let elapsed = started.elapsed();
                    crate::telemetry::metrics().record_rpc(&method, "DeadlineExceeded", elapsed);
                    info!(
                        method,
                        timeout_ms = timeout.as_millis() as u64,
                        elapsed_ms = elapsed.as_micros() as f64 / 1000.0,
                        "call ended: deadline exceeded"
                    );
                    Ok(deadline_exceeded(timeout).into_http())
                }
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyState {
    Streaming,
    /// The inner body sent its trailers: the call has its status.
    TrailersSent,
    Done,
}

/// A response body that ends with `DEADLINE_EXCEEDED` trailers if it is still streaming at
/// the deadline (dropping the handler's stream and whatever OSS reads it holds).
struct DeadlineBody<B> {
    /// `None` once the deadline has dropped it.
    inner: Option<Pin<Box<B>>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    state: BodyState,
}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this
            .inner
            .as_mut()
            .filter(|_| this.state != BodyState::Done)
        else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if frame.is_trailers() {
                    this.state = BodyState::TrailersSent;
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(err))) => {
                this.state = BodyState::Done;
                return Poll::Ready(Some(Err(err.into())));
            }
            Poll::Ready(None) => {
                this.state = BodyState::Done;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if this.state == BodyState::Streaming && this.deadline.as_mut().poll(cx).is_ready() {
            this.state = BodyState::Done;
            // Drop the stream now: it holds the handler's OSS response.
            this.inner = None;
            let mut trailers = HeaderMap::new();
            let status = deadline_exceeded(this.timeout);
            trailers.insert("grpc-status", HeaderValue::from_static("4"));
            if let Ok(message) =
                HeaderValue::from_str(&super::grpc_message::encode(status.message()))
            {
                trailers.insert("grpc-message", message);
            }
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Pending
    }

    /// Forwarded, not only our own state: an error answer is trailers-only (the status in the
    /// response headers, an empty body that says so). If this said `false` there, hyper would
    /// send the headers without END_STREAM and then an empty DATA frame ending the stream,
    /// which grpc-go reports as "server closed the stream without sending trailers" and grpcio
    /// as UNKNOWN "Stream removed", losing the real status of every failed call with a deadline.
    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Some(inner) => self.state == BodyState::Done || inner.is_end_stream(),
            None => true,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.inner {
            Some(inner) if self.state != BodyState::Done => inner.size_hint(),
            _ => http_body::SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;

    #[test]
    fn grpc_timeouts_parse_per_the_spec() {
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_grpc_timeout("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_grpc_timeout("5n"), Some(Duration::from_nanos(5)));
        for bad in [
            "",
            "m",
            "100",
            "123456789m",
            "1x",
            "-1S",
            "1.5S",
            "１S",
            "1é",
        ] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_margin_is_small_and_never_most_of_the_timeout() {
        assert_eq!(margin(Duration::from_secs(10)), Duration::from_millis(10));
        assert_eq!(margin(Duration::from_millis(100)), Duration::from_millis(5));
        assert_eq!(margin(Duration::from_millis(10)), Duration::from_millis(1));
        assert_eq!(
            margin(Duration::from_micros(800)),
            Duration::from_micros(400)
        );
        assert_eq!(margin(Duration::ZERO), Duration::ZERO);
    }

    /// A service that answers after `delay`, with a body that never ends.
    #[derive(Clone)]
    struct Slow {
        delay: Duration,
    }

    impl Service<http::Request<Body>> for Slow {
        type Response = http::Response<Body>;
        type Error = std::convert::Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            let delay = self.delay;
            Box::pin(async move {
                // The OSS client sees the call's deadline.
                assert!(crate::oss::retry::deadline().is_some());
                tokio::time::sleep(delay).await;
                let body = http_body_util::StreamBody::new(futures_util::stream::pending::<
                    Result<Frame<Bytes>, std::convert::Infallible>,
                >());
                Ok(http::Response::new(Body::new(body)))
            })
        }
    }

    fn request(timeout: &str) -> http::Request<Body> {
        http::Request::builder()
            .uri("/ossgate.v1.ObjectService/GetObjectTagging")
            .header(GRPC_TIMEOUT, timeout)
            .body(Body::default())
            .unwrap()
    }

    #[tokio::test]
    async fn a_slow_handler_is_answered_with_deadline_exceeded() {
        let mut svc = DeadlineLayer.layer(Slow {
            delay: Duration::from_secs(5),
        });
        let response = svc.call(request("200m")).await.unwrap();
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    }

    #[tokio::test]
    async fn a_stream_still_running_at_the_deadline_ends_with_deadline_exceeded_trailers() {
        let mut svc = DeadlineLayer.layer(Slow {
            delay: Duration::from_millis(10),
        });
        let response = svc.call(request("300m")).await.unwrap();
        assert!(Status::from_header_map(response.headers()).is_none());
        let trailers = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .trailers()
            .cloned()
            .unwrap();
        let status = Status::from_header_map(&trailers).unwrap();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(status.message().contains("deadline"));
    }

    #[tokio::test]
    async fn an_error_answer_stays_trailers_only_under_a_deadline() {
        let mut svc = DeadlineLayer.layer(tower::service_fn(|_: http::Request<Body>| async {
            Ok::<_, std::convert::Infallible>(Status::not_found("no such key").into_http::<Body>())
        }));
        let response = svc.call(request("5S")).await.unwrap();
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(
            response.body().is_end_stream(),
            "the status is in the headers: the body must say it has ended, so that the \
             headers go out with END_STREAM and no empty DATA frame follows"
        );
    }

    #[tokio::test]
    async fn calls_without_a_timeout_pass_through() {
        let mut svc = DeadlineLayer.layer(tower::service_fn(|_: http::Request<Body>| async {
            assert!(crate::oss::retry::deadline().is_none());
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::default()))
        }));
        let request = http::Request::builder().body(Body::default()).unwrap();
        let response = svc.call(request).await.unwrap();
        assert!(Status::from_header_map(response.headers()).is_none());
    }
}
