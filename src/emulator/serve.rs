//! The emulator's HTTP server: axum's router on hyper connections that do not wait forever
//! for slow clients. (`axum::serve` sets no timer, so hyper's header timeout never runs, and
//! nothing bounds how slowly a body may arrive.)

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, task::JoinSet, time::Instant};
use tower::ServiceExt;

/// How long a client has to send a request's headers, counted from when the connection
/// starts waiting for a request (so an idle keep-alive connection is closed after it too).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request body may take before [`BODY_MIN_BYTES_PER_SEC`] applies.
pub const BODY_GRACE: Duration = Duration::from_secs(10);

/// The slowest average rate a request body may arrive at after [`BODY_GRACE`]: 64 KiB/s, far
/// below any real client (a 5 GiB part gets 23 hours) and far above a trickle.
pub const BODY_MIN_BYTES_PER_SEC: u64 = 64 * 1024;

/// Serves `app` on `listener` until `stop` completes, then lets connections finish their
/// requests. Dropping the returned future (aborting its task) cuts every connection.
pub(super) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    stop: impl Future<Output = ()>,
) {
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // E.g. out of file descriptors: do not spin.
                    tracing::warn!(error = %err, "emulator: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = app.clone().map_request(|request: http::Request<Incoming>| {
            request.map(|body| axum::body::Body::new(MinRateBody::new(body)))
        });
        let mut closed = closed.clone();
        connections.spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = closed.wait_for(|closed| *closed) => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
}

/// A request body that fails once it has arrived more slowly than
/// [`BODY_MIN_BYTES_PER_SEC`] since [`BODY_GRACE`] after it was first read. The handler
/// answers the failure with an error and hyper closes the connection (the body was not
/// read to its end).
struct MinRateBody {
    inner: Incoming,
    /// Set at the first read: a handler that reads late (an injected delay) is not the
    /// client's slowness.
    started: Option<Instant>,
    received: u64,
    /// When the bytes received so far stop being enough.
    overdue: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl MinRateBody {
    fn new(inner: Incoming) -> Self {
        Self {
            inner,
            started: None,
            received: 0,
            overdue: None,
        }
    }

    /// The time by which more than the bytes received so far must have arrived.
    fn deadline(&self, started: Instant) -> Instant {
        let allowed = Duration::from_secs_f64(self.received as f64 / BODY_MIN_BYTES_PER_SEC as f64);
        started + BODY_GRACE + allowed
    }
}

impl http_body::Body for MinRateBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let started = *this.started.get_or_insert_with(Instant::now);
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if let Some(Ok(frame)) = &frame
                && let Some(data) = frame.data_ref()
            {
                this.received += data.len() as u64;
                this.overdue = None;
            }
            return Poll::Ready(frame.map(|frame| frame.map_err(std::io::Error::other)));
        }
        let deadline = this.deadline(started);
        let overdue = this
            .overdue
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match overdue.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the request body arrived slower than {BODY_MIN_BYTES_PER_SEC} bytes/s \
                     ({} bytes in {:.1?})",
                    this.received,
                    started.elapsed()
                ),
            )))),
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
