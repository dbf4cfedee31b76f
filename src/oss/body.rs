//! The bodies of OSS exchanges: a response body read whole up to a limit, a response body
//! streamed to the caller (its CRC-64 checked at the end), and the caller's request body
//! stream, counted, CRC'd and held to its declared length. Kept apart from the client's
//! signing, sending and retrying, which these only plug into.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

use super::error::{OssError, OssErrorKind};
use super::ops::ByteStream;
use super::protocol::header;
use crate::model::Crc64;

/// The error type of caller-supplied body streams.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Maps a reqwest failure to `Timeout` or `Transport`, with its cause chain. The request's
/// URL is left out: it names the internal OSS endpoint, and the message reaches the caller
/// (the operation, bucket and key are in the log line and the caller's own request).
pub(crate) fn transport_error(e: reqwest::Error) -> OssError {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        OssError::client(OssErrorKind::Timeout, message)
    } else {
        OssError::client(OssErrorKind::Transport, message)
    }
}

/// Reads a response body of at most `limit` bytes.
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Bytes, OssError> {
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get(header::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if buf.len() + chunk.len() > limit {
            return Err(OssError::invalid_response(
                format!("response body larger than {limit} bytes"),
                status,
                request_id,
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Wraps a response body as a [`ByteStream`]; with `expect_crc`, checks the
/// CRC-64 of everything received at the end.
pub(crate) fn response_stream(
    resp: reqwest::Response,
    expect_crc: Option<u64>,
    request_id: Option<String>,
) -> ByteStream {
    let status = resp.status().as_u16();
    Box::pin(ResponseBody {
        inner: Box::pin(resp.bytes_stream()),
        crc: expect_crc.map(|want| (Crc64::new(), want)),
        status,
        request_id,
        done: false,
    })
}

struct ResponseBody {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    crc: Option<(Crc64, u64)>,
    status: u16,
    request_id: Option<String>,
    done: bool,
}

impl Stream for ResponseBody {
    type Item = Result<Bytes, OssError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some((crc, _)) = &mut this.crc {
                    crc.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                let mut err = transport_error(e);
                err.request_id = this.request_id.clone();
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.done = true;
                match &this.crc {
                    Some((crc, want)) if crc.value() != *want => Poll::Ready(Some(Err(OssError {
                        http_status: Some(this.status),
                        request_id: this.request_id.clone(),
                        ..OssError::client(
                            OssErrorKind::ChecksumMismatch,
                            format!(
                                "received bytes have CRC-64 {}, OSS reports {want}",
                                crc.value()
                            ),
                        )
                    }))),
                    _ => Poll::Ready(None),
                }
            }
        }
    }
}

/// Shared between an upload body and the code that sent it.
pub(crate) struct UploadState {
    pub(crate) bytes: u64,
    pub(crate) crc: Crc64,
    /// Why the body stream stopped the upload (our caller's failure or a length mismatch).
    pub(crate) abort: Option<(OssErrorKind, String)>,
}

/// The caller's body stream, counted, CRC'd and length-checked.
pub(crate) struct TrackedBody {
    pub(crate) inner: Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>,
    pub(crate) state: Arc<Mutex<UploadState>>,
    pub(crate) declared: Option<u64>,
    pub(crate) done: bool,
}

impl TrackedBody {
    fn abort(
        &mut self,
        kind: OssErrorKind,
        message: String,
    ) -> Poll<Option<Result<Bytes, BoxError>>> {
        self.done = true;
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .abort = Some((kind, message.clone()));
        Poll::Ready(Some(Err(message.into())))
    }
}

impl Stream for TrackedBody {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let total = {
                    let mut st = this.state.lock().unwrap_or_else(PoisonError::into_inner);
                    st.bytes = st.bytes.saturating_add(chunk.len() as u64);
                    st.crc.update(&chunk);
                    st.bytes
                };
                match this.declared {
                    Some(declared) if total > declared => this.abort(
                        OssErrorKind::InvalidArgument,
                        format!("the body is longer than its declared length of {declared} bytes"),
                    ),
                    _ => Poll::Ready(Some(Ok(chunk))),
                }
            }
            Poll::Ready(Some(Err(e))) => this.abort(
                OssErrorKind::Cancelled,
                format!("the request body stream failed: {e}"),
            ),
            Poll::Ready(None) => {
                let total = this
                    .state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .bytes;
                match this.declared {
                    Some(declared) if total < declared => this.abort(
                        OssErrorKind::InvalidArgument,
                        format!(
                            "the body ended after {total} bytes, short of its declared length of {declared} bytes"
                        ),
                    ),
                    _ => {
                        this.done = true;
                        Poll::Ready(None)
                    }
                }
            }
        }
    }
}
