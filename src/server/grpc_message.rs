//! Re-encodes the `grpc-message` of every answer with exactly what the gRPC spec asks for.
//!
//! The spec percent-encodes only bytes outside printable ASCII (0x20–0x7E) and `%`. tonic
//! encodes more (space, `"`, `#`, `<`, `>`, `` ` ``, `?`, `{`, `}`), which decoders that follow
//! the spec undo, but grpc-js decodes with JavaScript's `decodeURI`, which leaves `%23` and
//! `%3F` as they are: a Node caller saw `what%3F%23100%` for a key `what?#100%`. Encoding
//! only what the spec requires gives every client the message as it was written.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};
use tonic::body::Body;
use tower::{Layer, Service};

/// What the gRPC spec percent-encodes in `grpc-message`: controls, `%` and (always, in
/// `utf8_percent_encode`) every non-ASCII byte.
const GRPC_MESSAGE_SET: &AsciiSet = &CONTROLS.add(b'%');

/// The `grpc-message` header.
const GRPC_MESSAGE: &str = "grpc-message";

/// `message` percent-encoded as the gRPC spec says.
pub fn encode(message: &str) -> String {
    utf8_percent_encode(message, GRPC_MESSAGE_SET).to_string()
}

/// Rewrites `grpc-message` in `headers` (response headers of a trailers-only answer, or
/// trailers) from any percent-encoding to the spec's. A value that does not decode to UTF-8
/// is left as it was.
fn reencode(headers: &mut HeaderMap) {
    let Some(value) = headers.get(GRPC_MESSAGE) else {
        return;
    };
    let Ok(message) = percent_decode(value.as_bytes()).decode_utf8() else {
        return;
    };
    let encoded = encode(&message);
    if encoded.as_bytes() != value.as_bytes()
        && let Ok(value) = HeaderValue::from_str(&encoded)
    {
        headers.insert(GRPC_MESSAGE, value);
    }
}

/// Adds [`GrpcMessage`] to a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMessageLayer;

impl<S> Layer<S> for GrpcMessageLayer {
    type Service = GrpcMessage<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMessage { inner }
    }
}

/// Re-encodes `grpc-message` in response headers and trailers (see the module docs).
#[derive(Clone, Debug)]
pub struct GrpcMessage<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcMessage<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
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
        let call = self.inner.call(request);
        Box::pin(async move {
            let mut response = call.await?;
            reencode(response.headers_mut());
            // map_frame keeps is_end_stream, so a trailers-only answer stays one.
            Ok(response.map(|body| {
                Body::new(body.map_frame(|frame| match frame.into_trailers() {
                    Ok(mut trailers) => {
                        reencode(&mut trailers);
                        http_body::Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                }))
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    #[test]
    fn only_controls_percent_and_non_ascii_are_encoded() {
        assert_eq!(
            encode("key what?#100% {a} <b> \"c\" `d`"),
            "key what?#100%25 {a} <b> \"c\" `d`"
        );
        assert_eq!(encode("line\nbreak é"), "line%0Abreak %C3%A9");
    }

    #[test]
    fn tonic_encoded_messages_are_reencoded_and_others_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(
            GRPC_MESSAGE,
            HeaderValue::from_static("no%20such%20key%20what%3F%23100%25"),
        );
        reencode(&mut headers);
        assert_eq!(headers[GRPC_MESSAGE], "no such key what?#100%25");
        // Not UTF-8 once decoded: kept.
        headers.insert(GRPC_MESSAGE, HeaderValue::from_static("%FF"));
        reencode(&mut headers);
        assert_eq!(headers[GRPC_MESSAGE], "%FF");
    }

    #[tokio::test]
    async fn headers_and_trailers_are_rewritten_and_trailers_only_answers_stay_so() {
        let message = "no such key: what?#100%";
        let mut svc = GrpcMessageLayer.layer(tower::service_fn(
            move |_: http::Request<Body>| async move {
                Ok::<_, std::convert::Infallible>(
                    tonic::Status::not_found(message).into_http::<Body>(),
                )
            },
        ));
        let response = svc.call(http::Request::new(Body::default())).await.unwrap();
        assert!(response.body().is_end_stream());
        assert_eq!(
            response.headers()[GRPC_MESSAGE],
            "no such key: what?#100%25"
        );
        assert_eq!(
            tonic::Status::from_header_map(response.headers())
                .unwrap()
                .message(),
            message
        );

        let mut svc = GrpcMessageLayer.layer(tower::service_fn(
            move |_: http::Request<Body>| async move {
                let mut trailers = HeaderMap::new();
                tonic::Status::internal(message)
                    .add_header(&mut trailers)
                    .unwrap();
                let body = http_body_util::StreamBody::new(futures_util::stream::iter([Ok::<
                    _,
                    std::convert::Infallible,
                >(
                    http_body::Frame::trailers(trailers),
                )]));
                Ok::<_, std::convert::Infallible>(http::Response::new(Body::new(body)))
            },
        ));
        let response = svc.call(http::Request::new(Body::default())).await.unwrap();
        let trailers = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .trailers()
            .cloned()
            .unwrap();
        assert_eq!(trailers[GRPC_MESSAGE], "no such key: what?#100%25");
    }
}
