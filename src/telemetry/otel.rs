//! OTLP export of traces and metrics, configured only by the standard `OTEL_*` environment
//! variables: nothing is exported unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or the signal's own
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) is set.
//! The SDK reads the rest itself: the protocol (`OTEL_EXPORTER_OTLP_PROTOCOL`, `grpc` or
//! `http/protobuf`, the default), headers, timeout, sampler, batch and export-interval
//! settings. `OTEL_SDK_DISABLED=true` or `OTEL_{TRACES,METRICS}_EXPORTER=none` turn a signal
//! off. The service name is `ossgate` unless `OTEL_SERVICE_NAME` or `service.name` in
//! `OTEL_RESOURCE_ATTRIBUTES` says otherwise.

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::{Resource, metrics::SdkMeterProvider, trace::SdkTracerProvider};

/// A variable that is set to something other than blanks.
fn set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

fn sdk_disabled() -> bool {
    std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `OTEL_{signal}_EXPORTER` does not say `none`.
fn exporter_wanted(var: &str) -> bool {
    !std::env::var(var).is_ok_and(|v| v.trim().eq_ignore_ascii_case("none"))
}

/// Whether spans are exported.
pub(super) fn traces_enabled() -> bool {
    !sdk_disabled()
        && exporter_wanted("OTEL_TRACES_EXPORTER")
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Whether metrics are exported.
pub(super) fn metrics_enabled() -> bool {
    !sdk_disabled()
        && exporter_wanted("OTEL_METRICS_EXPORTER")
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
}

/// Whether `OTEL_RESOURCE_ATTRIBUTES` sets `key`.
fn resource_attribute_set(key: &str) -> bool {
    std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|attrs| {
        attrs
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .any(|(k, _)| k.trim() == key)
    })
}

/// The resource every span and metric carries: the SDK's detectors (`OTEL_SERVICE_NAME`,
/// `OTEL_RESOURCE_ATTRIBUTES`, telemetry.sdk.*), with `service.name = ossgate` and
/// `service.version` unless the environment names them.
pub(super) fn resource() -> Resource {
    let mut builder = Resource::builder();
    if !set("OTEL_SERVICE_NAME") && !resource_attribute_set("service.name") {
        builder = builder.with_service_name("ossgate");
    }
    if !resource_attribute_set("service.version") {
        builder =
            builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    builder.build()
}

/// The HTTP exporter's reqwest client (like the OSS client's) is built without a default
/// rustls provider: ring must be installed first.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A tracer provider with a batch OTLP exporter. Must run inside the Tokio runtime (the
/// gRPC exporter's channel lives there).
pub(super) fn tracer_provider(resource: Resource) -> anyhow::Result<SdkTracerProvider> {
    install_crypto_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .build()
        .context("OTLP trace exporter (OTEL_EXPORTER_OTLP_* settings)")?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// A meter provider with a periodic OTLP exporter (`OTEL_METRIC_EXPORT_INTERVAL`, 60 s by
/// default; whatever is pending is exported at shutdown).
pub(super) fn meter_provider(resource: Resource) -> anyhow::Result<SdkMeterProvider> {
    install_crypto_provider();
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .build()
        .context("OTLP metric exporter (OTEL_EXPORTER_OTLP_* settings)")?;
    Ok(SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(resource)
        .build())
}
