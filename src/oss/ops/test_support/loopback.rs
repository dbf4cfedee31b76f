//! A loopback HTTP/1.1 server for the client's send-path tests (client, multipart, append,
//! copy): records requests, answers with `reply(index, request)`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::oss::credentials::Credentials;
use crate::oss::sign::SignatureVersion;
use crate::oss::{Addressing, Client, ClientConfig};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: HeaderMap,
    /// What arrived of the body.
    pub body: Bytes,
    /// The body did not arrive whole (the sender aborted it).
    pub aborted: bool,
}

type Reply = Arc<dyn Fn(usize, &Seen) -> http::Response<Full<Bytes>> + Send + Sync>;

/// The server; it stops with the test's runtime.
pub struct Server {
    pub addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub async fn start(
        reply: impl Fn(usize, &Seen) -> http::Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let reply: Reply = Arc::new(reply);
        let seen2 = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = Arc::clone(&seen2);
                let reply = Arc::clone(&reply);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        let reply = Arc::clone(&reply);
                        async move {
                            let (parts, body) = req.into_parts();
                            let (body, aborted) = match body.collect().await {
                                Ok(collected) => (collected.to_bytes(), false),
                                Err(_) => (Bytes::new(), true),
                            };
                            let s = Seen {
                                method: parts.method.to_string(),
                                target: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.as_str().to_string())
                                    .unwrap_or_default(),
                                headers: parts.headers,
                                body,
                                aborted,
                            };
                            let index = {
                                let mut v = seen.lock().unwrap();
                                v.push(s.clone());
                                v.len() - 1
                            };
                            Ok::<_, Infallible>(reply(index, &s))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Server { addr, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client(&self) -> Client {
        Client::new(ClientConfig {
            endpoint: format!("http://{}", self.addr),
            region: "cn-hangzhou".into(),
            signature_version: SignatureVersion::V4,
            addressing: Addressing::Auto,
            credentials: Credentials {
                access_key_id: "LTAI5tExampleAccessKeyId".into(),
                access_key_secret: "ExampleAccessKeySecret0123456789abc".into(),
                security_token: None,
            },
            connect_timeout: Duration::from_secs(2),
            request_timeout: Some(Duration::from_secs(10)),
        })
        .unwrap()
    }
}

pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Full<Bytes>> {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}
