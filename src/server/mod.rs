//! Assembles the gRPC server (ObjectService, reflection v1 and v1alpha, grpc.health.v1) and runs
//! it until a shutdown signal, then drains in-flight calls for a bounded time.
//!
//! The edge: optional TLS/mTLS ([`crate::server::tls`]), load shedding of ObjectService calls
//! ([`limits`]), HTTP/2 keepalive, a maximum connection age (graceful GOAWAY, then an
//! optional forced close), message size limits and TCP_NODELAY, all from `[server]` and
//! `[tls]`. Health and reflection are neither authenticated nor shed.
//!
//! Optionally (`server.health_listen`) a second, plaintext listener serves only
//! grpc.health.v1 with the same statuses, for Kubernetes `grpc` probes, which cannot speak TLS.

pub mod authn;
pub mod deadline;
pub mod grpc_message;
pub mod limits;
pub mod tls;
mod wiring;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    codec::CompressionEncoding, service::interceptor::InterceptedService,
    transport::server::TcpIncoming,
};
use tonic_health::{
    ServingStatus,
    pb::{
        HealthCheckRequest, HealthCheckResponse,
        health_server::{Health, HealthServer},
    },
    server::{HealthReporter, HealthService},
};
use tracing::{info, warn};

use crate::{
    config::Settings,
    emulator::EmulatorHandle,
    oss::{self, credentials::Refresher},
    proto::object_service_server::ObjectServiceServer,
    rpc::ObjectServiceImpl,
};

/// Largest gRPC message the server accepts (a WriteObject chunk plus its envelope).
pub const MAX_DECODING_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// How long the health listener may take to stop after the gRPC listener has drained. Check
/// calls take microseconds and Watch streams are ended at once ([`ClosingHealth`]): this is
/// only a backstop.
const HEALTH_STOP_GRACE: Duration = Duration::from_secs(1);

/// HTTP/2 streams per connection on the health listener: a probe makes one call per
/// connection, and the listener needs no auth, so it grants little.
const HEALTH_MAX_CONCURRENT_STREAMS: u32 = 16;

/// Command-line arguments of `ossgate serve`.
#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// gRPC listen address (overrides the `listen` setting).
    #[arg(long)]
    pub listen: Option<String>,
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `ossgate serve`: loads settings, serves until SIGTERM or Ctrl-C, then drains.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = load_settings(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        settings.listen = crate::config::parse_addr("listen", &listen, "")?;
        settings.validate()?;
    }
    // Held until exit: flushes telemetry exporters when dropped.
    let _telemetry = crate::telemetry::init(&settings)?;
    let server = start(settings).await?;
    println!("ossgate serving gRPC on {}", server.local_addr());
    if let Some(health) = server.health_addr() {
        println!("ossgate serving plaintext health on {health}");
    }
    shutdown_signal().await;
    info!("shutdown signal received: reporting NOT_SERVING and draining in-flight calls");
    server.shutdown().await
}

/// The settings (see [`Settings::load`]), with the TLS files read and checked too: what
/// `serve` refuses before it starts, `check-config` refuses as well.
pub fn load_settings(file: Option<&std::path::Path>) -> anyhow::Result<Settings> {
    let settings = Settings::load(file)?;
    tls::check(&settings.tls)?;
    Ok(settings)
}

/// `ossgate check-config`: loads and validates, prints the result with secrets redacted.
pub fn check_config(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let settings = load_settings(file)?;
    println!("{}", settings.redacted_json());
    Ok(())
}

/// How long a shutdown waits for the aborts of multipart uploads that calls cut off by the
/// grace period (or ended just before) leave open. An abort that OSS answers takes
/// milliseconds; this bounds an unreachable OSS (connect timeout, retries).
pub const SHUTDOWN_ABORT_LIMIT: Duration = Duration::from_secs(5);

/// A running gateway: its address, and the handles needed to stop it cleanly.
pub struct RunningServer {
    local_addr: SocketAddr,
    health: HealthReporter,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    grace: Duration,
    emulator: Option<EmulatorHandle>,
    /// Refreshes RRSA credentials (stopped after the drain, which may still need them).
    refresher: Option<Refresher>,
    /// The Prometheus endpoint, when `metrics.listen` is set.
    metrics: Option<crate::telemetry::MetricsServer>,
    /// ObjectService call slots (load shedding).
    limits: limits::CallLimits,
    /// The TLS configuration in force, when TLS is on.
    tls: Option<std::sync::Arc<crate::server::tls::ServerTls>>,
    /// The OSS client: at shutdown, the uploads it still owns are aborted.
    client: oss::Client,
    /// The plaintext health listener, when `server.health_listen` is set.
    health_listener: Option<HealthListener>,
}

/// Request compressions every service accepts: all that tonic implements. grpc-go, grpcio and
/// grpc-js clients send gzip when told to; a service that did not accept it answered
/// UNIMPLEMENTED. Decompressed messages are still bounded by the decoding limit.
const ACCEPTED_ENCODINGS: [CompressionEncoding; 3] = [
    CompressionEncoding::Gzip,
    CompressionEncoding::Zstd,
    CompressionEncoding::Deflate,
];

/// `service` with every encoding of [`ACCEPTED_ENCODINGS`] accepted (each generated server type
/// has its own `accept_compressed`, hence the closure).
fn accepting_compression<S>(service: S, accept: impl Fn(S, CompressionEncoding) -> S) -> S {
    ACCEPTED_ENCODINGS.into_iter().fold(service, accept)
}

/// The ObjectService with the message limits and compressions of `[server]`.
fn object_service(
    service: ObjectServiceImpl,
    server: &crate::config::ServerSettings,
) -> ObjectServiceServer<ObjectServiceImpl> {
    let service = accepting_compression(
        ObjectServiceServer::new(service)
            .max_decoding_message_size(server.max_decoding_message_bytes)
            .max_encoding_message_size(server.max_encoding_message_bytes),
        ObjectServiceServer::accept_compressed,
    );
    match server.response_compression.encoding() {
        Some(encoding) => service.send_compressed(encoding),
        None => service,
    }
}

/// The plaintext listener of `server.health_listen`: grpc.health.v1 only.
struct HealthListener {
    local_addr: SocketAddr,
    /// Ends the listener's Watch streams.
    closing: tokio::sync::watch::Sender<bool>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl HealthListener {
    /// Binds `addr` and serves the statuses of `reporter` there over plaintext HTTP/2, and
    /// nothing else: no ObjectService, no reflection (other paths answer UNIMPLEMENTED).
    async fn start(addr: SocketAddr, reporter: HealthReporter) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("server.health_listen: cannot bind {addr}"))?;
        let local_addr = listener.local_addr()?;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (closing, closed) = tokio::sync::watch::channel(false);
        let health = accepting_compression(
            HealthServer::new(ClosingHealth {
                inner: HealthService::from_health_reporter(reporter),
                closed,
            }),
            HealthServer::accept_compressed,
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .max_concurrent_streams(Some(HEALTH_MAX_CONCURRENT_STREAMS))
                .add_service(health)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.await;
                }),
        );
        Ok(Self {
            local_addr,
            closing,
            stop,
            task,
        })
    }

    /// Stops accepting, ends Watch streams, and lets calls in progress finish for at most
    /// [`HEALTH_STOP_GRACE`].
    async fn shutdown(mut self) {
        let _ = self.closing.send(true);
        let _ = self.stop.send(());
        match tokio::time::timeout(HEALTH_STOP_GRACE, &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => warn!(error = %err, "the health listener failed"),
            Ok(Err(err)) => warn!(error = %err, "the health listener task failed"),
            Err(_) => self.task.abort(),
        }
    }
}

/// grpc.health.v1 on the health listener: the shared statuses, with Watch streams that end
/// (with OK) when the listener stops. A Watch never ends by itself, and an open one would
/// otherwise hold up the listener's graceful shutdown.
struct ClosingHealth {
    inner: HealthService,
    /// Turns true (or its sender is dropped) when the listener stops.
    closed: tokio::sync::watch::Receiver<bool>,
}

#[tonic::async_trait]
impl Health for ClosingHealth {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        self.inner.check(request).await
    }

    type WatchStream =
        futures_util::stream::BoxStream<'static, Result<HealthCheckResponse, tonic::Status>>;

    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        use futures_util::StreamExt;
        let statuses = self.inner.watch(request).await?.into_inner();
        let mut closed = self.closed.clone();
        let closing = async move {
            let _ = closed.wait_for(|closed| *closed).await;
        };
        Ok(tonic::Response::new(
            statuses.take_until(Box::pin(closing)).boxed(),
        ))
    }
}

/// Reports NOT_SERVING for ObjectService and the server as a whole, on every listener.
async fn report_not_serving(health: &HealthReporter) {
    health
        .set_not_serving::<ObjectServiceServer<ObjectServiceImpl>>()
        .await;
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
}

impl RunningServer {
    /// The address the gRPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the plaintext health listener, when `server.health_listen` is set.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener.as_ref().map(|h| h.local_addr)
    }

    /// The address of the `/metrics` endpoint, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr())
    }

    /// The embedded emulator's endpoint, when the server runs on it.
    pub fn emulator(&self) -> Option<&EmulatorHandle> {
        self.emulator.as_ref()
    }

    /// The ObjectService call limits (slots in use, for tests and diagnostics).
    pub fn call_limits(&self) -> &limits::CallLimits {
        &self.limits
    }

    /// The TLS configuration in force, when TLS is on.
    pub fn tls(&self) -> Option<&std::sync::Arc<crate::server::tls::ServerTls>> {
        self.tls.as_ref()
    }

    /// Reports NOT_SERVING, stops accepting, lets in-flight calls finish for at most the
    /// configured grace period, then stops the health listener (which answers NOT_SERVING
    /// until then) and the embedded emulator.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        report_not_serving(&self.health).await;
        let _ = self.stop.send(());
        match tokio::time::timeout(self.grace, &mut self.task).await {
            Ok(joined) => joined
                .context("the gRPC server task failed")?
                .context("the gRPC server failed")?,
            Err(_) => {
                warn!(
                    grace_ms = self.grace.as_millis() as u64,
                    "calls still running after the shutdown grace period were cut off"
                );
                self.task.abort();
            }
        }
        // Calls cut off by the grace (and aborts still running for calls that ended) would
        // leave their multipart uploads behind when the process exits: abort them now,
        // before the emulator stops. What cannot be aborted in time is logged with its
        // UploadId.
        self.client
            .owned_uploads()
            .abort_all(&self.client, SHUTDOWN_ABORT_LIMIT)
            .await;
        if let Some(health_listener) = self.health_listener.take() {
            health_listener.shutdown().await;
        }
        if let Some(refresher) = self.refresher.take() {
            refresher.stop().await;
        }
        if let Some(emulator) = self.emulator.take() {
            emulator.shutdown().await;
        }
        if let Some(metrics) = self.metrics.take() {
            metrics.shutdown().await;
        }
        info!("shutdown complete");
        Ok(())
    }
}

/// Starts the gateway (and the embedded emulator when no endpoint is configured).
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    let wiring::OssBackend {
        client,
        emulator,
        refresher,
    } = wiring::oss_backend(&settings).await?;
    let locks = wiring::tag_write_lock(&settings).await?;
    let service = wiring::object_service(client.clone(), &settings, locks);
    {
        // The OTLP gauge samples the upload budget whether or not /metrics is served.
        let sampled = service.clone();
        crate::telemetry::set_upload_memory_source(std::sync::Arc::new(move || {
            sampled.upload_memory_in_use()
        }));
    }
    let metrics = match settings.metrics.listen {
        Some(addr) => {
            let sampled = service.clone();
            Some(
                crate::telemetry::serve(
                    addr,
                    std::sync::Arc::new(move || sampled.upload_memory_in_use()),
                )
                .await?,
            )
        }
        None => None,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ObjectServiceServer<ObjectServiceImpl>>()
        .await;
    health.set_service_status("", ServingStatus::Serving).await;

    // grpcurl 1.8.6 only speaks v1alpha reflection; newer clients use v1. Serve both.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            // google.rpc.ErrorInfo, BadRequest, RetryInfo…: the details of every error. With
            // them grpcurl prints an error's details as JSON instead of "not recognized" bytes.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = accepting_compression(
        reflection().build_v1()?,
        tonic_reflection::server::v1::ServerReflectionServer::accept_compressed,
    );
    let reflection_v1alpha = accepting_compression(
        reflection().build_v1alpha()?,
        tonic_reflection::server::v1alpha::ServerReflectionServer::accept_compressed,
    );
    let health_service = accepting_compression(health_service, |service, encoding| {
        service.accept_compressed(encoding)
    });

    let listen = settings.listen;
    let auth = wiring::authenticator(&settings);
    crate::config::check_exposure(
        listen,
        settings.caller_auth_configured(),
        settings.server.allow_insecure_remote,
    )?;
    let tls = crate::server::tls::ServerTls::load(&settings.tls)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen: cannot bind {listen}"))?;
    let local_addr = listener.local_addr()?;
    // Not part of check_exposure: the health listener serves no data and lists no services.
    let health_listener = match settings.server.health_listen {
        Some(addr) => Some(HealthListener::start(addr, health.clone()).await?),
        None => None,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = &settings.server;
    let call_limits = wiring::call_limits(&settings);
    let mut builder = tonic::transport::Server::builder()
        // hyper's 1 MiB default stream window caps one upload stream at ~50 MiB/s between two
        // processes on loopback; 2 MiB per stream and 4 MiB per connection (bounded, not
        // adaptive, so unread data per connection stays at most 4 MiB) measured ~600 MiB/s.
        .initial_stream_window_size(Some(2 * 1024 * 1024))
        .initial_connection_window_size(Some(4 * 1024 * 1024))
        // Larger DATA frames: a 1 GiB upload is 1,024 frames of 1 MiB rather than 65,536 of
        // the 16 KiB default, fewer frame headers to write, parse and account for.
        .max_frame_size(Some(1024 * 1024))
        .http2_keepalive_interval(settings.http2_keepalive_interval())
        .http2_keepalive_timeout(Some(server.http2_keepalive_timeout_secs));
    if let Some(age) = settings.max_connection_age() {
        // Graceful GOAWAY at this age. tonic's own max_connection_age_grace is not used: with
        // it set, tonic skips the GOAWAY; the forced close after the grace is done by
        // tls::Conn instead.
        builder = builder.max_connection_age(age);
    }
    let router = builder
        // The caller's W3C traceparent/tracestate becomes the parent of each call's span.
        .layer(crate::telemetry::TraceContextLayer)
        // Outside the deadline layer, so its DEADLINE_EXCEEDED answers are re-encoded too.
        .layer(grpc_message::GrpcMessageLayer)
        .layer(deadline::DeadlineLayer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // Only ObjectService needs a caller identity and is shed under load: health and
        // reflection stay open.
        .add_service(limits::CallLimit::new(
            InterceptedService::new(object_service(service, server), auth),
            call_limits.clone(),
        ));
    let incoming = crate::server::tls::incoming(
        listener,
        tls.clone(),
        crate::server::tls::ConnOptions {
            tcp_nodelay: server.tcp_nodelay,
            force_close_after: settings.connection_force_close_after(),
            handshake_timeout: settings.tls.handshake_timeout_ms,
            preface_timeout: settings.preface_timeout(),
        },
    );
    let reporter = health.clone();
    let task = tokio::spawn(async move {
        let asked_to_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked = asked_to_stop.clone();
        let served = router
            .serve_with_incoming_shutdown(incoming, async move {
                if stopped.await.is_ok() {
                    asked.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            })
            .await;
        // Stopped without RunningServer::shutdown (which has reported NOT_SERVING already):
        // the health listener must not go on answering SERVING (a liveness probe on it can
        // then restart the process).
        if !asked_to_stop.load(std::sync::atomic::Ordering::Relaxed) {
            warn!("the gRPC listener stopped unexpectedly: reporting NOT_SERVING");
            report_not_serving(&reporter).await;
        }
        served
    });
    let health_addr = health_listener.as_ref().map(|h| h.local_addr);
    info!(
        %local_addr,
        health_addr = %health_addr.map_or_else(|| "off".to_string(), |addr| addr.to_string()),
        tls = tls.is_some(),
        client_auth = %settings.tls.client_auth,
        max_concurrent_calls = server.max_concurrent_calls,
        max_concurrent_streaming_calls = server.max_concurrent_streaming_calls,
        "serving gRPC"
    );
    Ok(RunningServer {
        local_addr,
        health,
        stop,
        task,
        grace: settings.shutdown_grace(),
        emulator,
        refresher,
        metrics,
        limits: call_limits,
        tls,
        health_listener,
        client,
    })
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
