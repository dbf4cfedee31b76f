//! Process-wide metrics shared by the RPC layer and the OSS client: a Prometheus registry
//! served on the optional `/metrics` endpoint, mirrored into OpenTelemetry instruments that
//! the OTLP exporter pushes when it is configured (see [`super::otel`]).
//!
//! The registry is global so that the OSS client records its requests without knowing about
//! the RPC layer (the layering rule: `oss` never depends on `rpc`).

use std::{
    net::SocketAddr,
    sync::{Arc, LazyLock, OnceLock, RwLock},
    time::Duration,
};

use anyhow::Context;
use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter, ObservableGauge, UpDownCounter},
};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// Latency buckets in seconds (1 ms .. 60 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Every metric ossgate exports.
pub struct Metrics {
    registry: Registry,
    /// `ossgate_rpc_duration_seconds{method,code}`.
    pub rpc_duration: HistogramVec,
    /// `ossgate_rpc_bytes_total{method,direction}` (direction: `in` from the caller, `out` to it).
    pub rpc_bytes: IntCounterVec,
    /// `ossgate_oss_request_duration_seconds{operation}`: one observation per HTTP attempt.
    pub oss_duration: HistogramVec,
    /// `ossgate_oss_errors_total{operation,code}`: failed attempts by OSS error code
    /// (transport failures use the error kind).
    pub oss_errors: IntCounterVec,
    /// `ossgate_oss_retries_total{operation}`: attempts after the first.
    pub oss_retries: IntCounterVec,
    /// `ossgate_oss_retries_refused_total{operation}`: retries not made because the retry
    /// budget was empty (not those ruled out by the attempt limit or the call's deadline).
    pub oss_retries_refused: IntCounterVec,
    /// `ossgate_uploads_in_flight`: WriteObject calls running now.
    pub uploads_in_flight: IntGauge,
    /// `ossgate_upload_memory_bytes`: bytes the upload memory budget has handed out.
    pub upload_memory: IntGauge,
    /// Whether recordings are mirrored into the OpenTelemetry instruments (only the
    /// process-wide set is: independent sets made by tests stay private).
    mirror: bool,
}

impl Metrics {
    /// A fresh, independent set of metrics (tests use this; the process uses [`metrics`]).
    #[allow(
        clippy::expect_used,
        reason = "the definitions are static and the names unique: any test catches a mistake"
    )]
    pub fn new() -> Self {
        let registry = Registry::new();
        let rpc_duration = HistogramVec::new(
            HistogramOpts::new(
                "ossgate_rpc_duration_seconds",
                "ObjectService call latency by method and gRPC code",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "code"],
        )
        .expect("static metric definition");
        let rpc_bytes = IntCounterVec::new(
            Opts::new(
                "ossgate_rpc_bytes_total",
                "Object payload bytes received from (in) or sent to (out) gRPC callers",
            ),
            &["method", "direction"],
        )
        .expect("static metric definition");
        let oss_duration = HistogramVec::new(
            HistogramOpts::new(
                "ossgate_oss_request_duration_seconds",
                "OSS HTTP request latency by operation (one observation per attempt)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation"],
        )
        .expect("static metric definition");
        let oss_errors = IntCounterVec::new(
            Opts::new(
                "ossgate_oss_errors_total",
                "Failed OSS requests by operation and OSS error code",
            ),
            &["operation", "code"],
        )
        .expect("static metric definition");
        let oss_retries = IntCounterVec::new(
            Opts::new(
                "ossgate_oss_retries_total",
                "OSS request attempts after the first, by operation",
            ),
            &["operation"],
        )
        .expect("static metric definition");
        let oss_retries_refused = IntCounterVec::new(
            Opts::new(
                "ossgate_oss_retries_refused_total",
                "OSS retries refused because the retry budget was exhausted, by operation",
            ),
            &["operation"],
        )
        .expect("static metric definition");
        let uploads_in_flight =
            IntGauge::new("ossgate_uploads_in_flight", "WriteObject calls in progress")
                .expect("static metric definition");
        let upload_memory = IntGauge::new(
            "ossgate_upload_memory_bytes",
            "Bytes of the upload memory budget in use",
        )
        .expect("static metric definition");
        for collector in [
            Box::new(rpc_duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(rpc_bytes.clone()),
            Box::new(oss_duration.clone()),
            Box::new(oss_errors.clone()),
            Box::new(oss_retries.clone()),
            Box::new(oss_retries_refused.clone()),
            Box::new(uploads_in_flight.clone()),
            Box::new(upload_memory.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            rpc_duration,
            rpc_bytes,
            oss_duration,
            oss_errors,
            oss_retries,
            oss_retries_refused,
            uploads_in_flight,
            upload_memory,
            mirror: false,
        }
    }

    /// The process-wide set: like [`Metrics::new`], and mirrored into OpenTelemetry.
    fn process() -> Self {
        Self {
            mirror: true,
            ..Self::new()
        }
    }

    /// The OpenTelemetry instruments to mirror into, when this is the process-wide set and
    /// OTLP metrics are on.
    fn otel(&self) -> Option<&'static OtelInstruments> {
        if self.mirror { OTEL.get() } else { None }
    }

    /// Records one finished RPC.
    pub fn record_rpc(&self, method: &str, code: &str, elapsed: Duration) {
        self.rpc_duration
            .with_label_values(&[method, code])
            .observe(elapsed.as_secs_f64());
        if let Some(otel) = self.otel() {
            otel.rpc_duration.record(
                elapsed.as_secs_f64(),
                &[
                    KeyValue::new("method", method.to_string()),
                    KeyValue::new("code", code.to_string()),
                ],
            );
        }
    }

    /// Records one OSS HTTP attempt; `error_code` is `None` on success.
    pub fn record_oss(&self, operation: &str, elapsed: Duration, error_code: Option<&str>) {
        self.oss_duration
            .with_label_values(&[operation])
            .observe(elapsed.as_secs_f64());
        if let Some(code) = error_code {
            self.oss_errors.with_label_values(&[operation, code]).inc();
        }
        if let Some(otel) = self.otel() {
            let op = KeyValue::new("operation", operation.to_string());
            otel.oss_duration
                .record(elapsed.as_secs_f64(), std::slice::from_ref(&op));
            if let Some(code) = error_code {
                otel.oss_errors
                    .add(1, &[op, KeyValue::new("code", code.to_string())]);
            }
        }
    }

    /// Records a retry of an OSS request.
    pub fn record_retry(&self, operation: &str) {
        self.oss_retries.with_label_values(&[operation]).inc();
        if let Some(otel) = self.otel() {
            otel.oss_retries
                .add(1, &[KeyValue::new("operation", operation.to_string())]);
        }
    }

    /// Records a retry of an OSS request that the retry budget refused.
    pub fn record_retry_refused(&self, operation: &str) {
        self.oss_retries_refused
            .with_label_values(&[operation])
            .inc();
        if let Some(otel) = self.otel() {
            otel.oss_retries_refused
                .add(1, &[KeyValue::new("operation", operation.to_string())]);
        }
    }

    /// Adds payload bytes to `ossgate_rpc_bytes_total`.
    pub fn add_rpc_bytes(&self, method: &str, direction: &str, bytes: u64) {
        self.rpc_bytes
            .with_label_values(&[method, direction])
            .inc_by(bytes);
        if let Some(otel) = self.otel() {
            otel.rpc_bytes.add(
                bytes,
                &[
                    KeyValue::new("method", method.to_string()),
                    KeyValue::new("direction", direction.to_string()),
                ],
            );
        }
        super::trace::add_rpc_bytes(direction, bytes);
    }

    /// Moves `ossgate_uploads_in_flight` by `delta`.
    fn add_uploads_in_flight(&self, delta: i64) {
        self.uploads_in_flight.add(delta);
        if let Some(otel) = self.otel() {
            otel.uploads_in_flight.add(delta, &[]);
        }
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which ours never are.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::process);

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Keeps `ossgate_uploads_in_flight` raised while alive.
pub struct InFlightUpload(());

impl InFlightUpload {
    /// Counts one more upload in flight until dropped.
    pub fn start() -> Self {
        metrics().add_uploads_in_flight(1);
        Self(())
    }
}

impl Drop for InFlightUpload {
    fn drop(&mut self) {
        metrics().add_uploads_in_flight(-1);
    }
}

/// A running `/metrics` endpoint.
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Serves the process-wide metrics as Prometheus text on `GET /metrics` at `listen`.
/// `upload_memory` is sampled on every scrape into `ossgate_upload_memory_bytes`.
pub async fn serve(
    listen: SocketAddr,
    upload_memory: Arc<dyn Fn() -> usize + Send + Sync>,
) -> anyhow::Result<MetricsServer> {
    set_upload_memory_source(Arc::clone(&upload_memory));
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("metrics.listen: cannot bind {listen}"))?;
    let local_addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let upload_memory = Arc::clone(&upload_memory);
            async move {
                let m = metrics();
                m.upload_memory
                    .set(i64::try_from(upload_memory()).unwrap_or(i64::MAX));
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    m.render(),
                )
            }
        }),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the metrics endpoint failed");
        }
    });
    tracing::info!(%local_addr, "serving metrics on /metrics");
    Ok(MetricsServer {
        local_addr,
        stop,
        task,
    })
}

/// Reports the bytes the upload memory budget holds, for `ossgate_upload_memory_bytes` in
/// OTLP exports (the `/metrics` endpoint samples the source it is given on every scrape).
pub fn set_upload_memory_source(source: Arc<dyn Fn() -> usize + Send + Sync>) {
    let mut slot = UPLOAD_MEMORY_SOURCE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *slot = Some(source);
}

/// Where the OTLP gauge reads upload memory from.
static UPLOAD_MEMORY_SOURCE: RwLock<Option<Arc<dyn Fn() -> usize + Send + Sync>>> =
    RwLock::new(None);

/// The upload memory in use now: from the registered source, else the last scraped value.
fn upload_memory_now() -> u64 {
    let source = UPLOAD_MEMORY_SOURCE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    match source {
        Some(source) => source() as u64,
        None => u64::try_from(metrics().upload_memory.get()).unwrap_or(0),
    }
}

/// The OpenTelemetry mirror of [`Metrics`]. OTLP names are dotted with a unit (an
/// OTLP-to-Prometheus conversion gives back the `/metrics` names):
/// `ossgate.rpc.duration` (s), `ossgate.rpc.bytes` (By), `ossgate.oss.request.duration` (s),
/// `ossgate.oss.errors`, `ossgate.oss.retries`, `ossgate.oss.retries.refused`,
/// `ossgate.uploads.in_flight`,
/// `ossgate.upload.memory` (By); the attributes are the Prometheus labels.
struct OtelInstruments {
    rpc_duration: Histogram<f64>,
    rpc_bytes: Counter<u64>,
    oss_duration: Histogram<f64>,
    oss_errors: Counter<u64>,
    oss_retries: Counter<u64>,
    oss_retries_refused: Counter<u64>,
    uploads_in_flight: UpDownCounter<i64>,
    /// Kept alive so its callback stays registered.
    _upload_memory: ObservableGauge<u64>,
}

static OTEL: OnceLock<OtelInstruments> = OnceLock::new();

/// Creates the OpenTelemetry instruments on `meter` and starts mirroring into them. Only the
/// first call has an effect.
pub(super) fn install_otel(meter: &Meter) {
    let _ = OTEL.get_or_init(|| OtelInstruments {
        rpc_duration: meter
            .f64_histogram("ossgate.rpc.duration")
            .with_unit("s")
            .with_description("ObjectService call latency by method and gRPC code")
            .with_boundaries(LATENCY_BUCKETS.to_vec())
            .build(),
        rpc_bytes: meter
            .u64_counter("ossgate.rpc.bytes")
            .with_unit("By")
            .with_description(
                "Object payload bytes received from (in) or sent to (out) gRPC callers",
            )
            .build(),
        oss_duration: meter
            .f64_histogram("ossgate.oss.request.duration")
            .with_unit("s")
            .with_description("OSS HTTP request latency by operation (one observation per attempt)")
            .with_boundaries(LATENCY_BUCKETS.to_vec())
            .build(),
        oss_errors: meter
            .u64_counter("ossgate.oss.errors")
            .with_description("Failed OSS requests by operation and OSS error code")
            .build(),
        oss_retries: meter
            .u64_counter("ossgate.oss.retries")
            .with_description("OSS request attempts after the first, by operation")
            .build(),
        oss_retries_refused: meter
            .u64_counter("ossgate.oss.retries.refused")
            .with_description(
                "OSS retries refused because the retry budget was exhausted, by operation",
            )
            .build(),
        uploads_in_flight: meter
            .i64_up_down_counter("ossgate.uploads.in_flight")
            .with_description("WriteObject calls in progress")
            .build(),
        _upload_memory: meter
            .u64_observable_gauge("ossgate.upload.memory")
            .with_unit("By")
            .with_description("Bytes of the upload memory budget in use")
            .with_callback(|gauge| gauge.observe(upload_memory_now(), &[]))
            .build(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_labelled_histograms_and_counters() {
        let m = Metrics::new();
        m.record_rpc("GetObjectTagging", "Ok", Duration::from_millis(3));
        m.record_rpc("GetObjectTagging", "NotFound", Duration::from_millis(1));
        m.record_oss("GET ?tagging", Duration::from_millis(2), None);
        m.record_oss("GET ?tagging", Duration::from_millis(2), Some("NoSuchKey"));
        m.record_retry("GET ?tagging");
        m.add_rpc_bytes("WriteObject", "in", 10);
        m.add_rpc_bytes("WriteObject", "in", 5);
        let text = m.render();
        assert!(text.contains(
            "ossgate_rpc_duration_seconds_count{code=\"Ok\",method=\"GetObjectTagging\"} 1"
        ));
        assert!(text.contains(
            "ossgate_rpc_duration_seconds_count{code=\"NotFound\",method=\"GetObjectTagging\"} 1"
        ));
        assert!(
            text.contains(
                "ossgate_oss_request_duration_seconds_count{operation=\"GET ?tagging\"} 2"
            )
        );
        assert!(
            text.contains(
                "ossgate_oss_errors_total{code=\"NoSuchKey\",operation=\"GET ?tagging\"} 1"
            )
        );
        assert!(text.contains("ossgate_oss_retries_total{operation=\"GET ?tagging\"} 1"));
        assert!(
            text.contains("ossgate_rpc_bytes_total{direction=\"in\",method=\"WriteObject\"} 15")
        );
        // A 3 ms call lands in the 5 ms bucket but not the 2.5 ms one.
        assert!(text.contains(
            "ossgate_rpc_duration_seconds_bucket{code=\"Ok\",method=\"GetObjectTagging\",le=\"0.0025\"} 0"
        ));
        assert!(text.contains(
            "ossgate_rpc_duration_seconds_bucket{code=\"Ok\",method=\"GetObjectTagging\",le=\"0.005\"} 1"
        ));
    }

    #[test]
    fn refused_retries_are_counted_by_operation() {
        let m = Metrics::new();
        let text = m.render();
        assert!(
            !text.contains("ossgate_oss_retries_refused_total{"),
            "no series before a refusal:\n{text}"
        );
        m.record_retry("PUT ?tagging");
        m.record_retry_refused("PUT ?tagging");
        m.record_retry_refused("PUT ?tagging");
        m.record_retry_refused("PUT ?partNumber");
        let text = m.render();
        assert!(
            text.contains("# TYPE ossgate_oss_retries_refused_total counter"),
            "{text}"
        );
        assert!(
            text.contains("ossgate_oss_retries_refused_total{operation=\"PUT ?tagging\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ossgate_oss_retries_refused_total{operation=\"PUT ?partNumber\"} 1"),
            "{text}"
        );
        // A refusal is not a retry: the retry counter only has the one retry made.
        assert!(
            text.contains("ossgate_oss_retries_total{operation=\"PUT ?tagging\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("ossgate_oss_retries_total{operation=\"PUT ?partNumber\"}"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn endpoint_serves_prometheus_text() {
        let server = serve("127.0.0.1:0".parse().unwrap(), Arc::new(|| 4096))
            .await
            .unwrap();
        let addr = server.local_addr();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let body = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("ossgate_upload_memory_bytes 4096"), "{body}");
        assert!(
            body.contains("# TYPE ossgate_uploads_in_flight gauge"),
            "{body}"
        );
        server.shutdown().await;
    }
}
