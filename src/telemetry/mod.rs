//! Process-wide telemetry shared by the RPC layer and the OSS client:
//! - logs: `tracing` events on stderr, text or JSON (`log.format`), filtered by `log.level`;
//! - traces ([`trace`]): a server span per ObjectService call, parented on the caller's W3C
//!   `traceparent`, and a client span per OSS HTTP attempt beneath it, exported over OTLP
//!   when `OTEL_EXPORTER_OTLP_ENDPOINT` is set ([`otel`]);
//! - metrics ([`metrics`]): Prometheus text on the optional `/metrics` endpoint, mirrored
//!   into OTLP metrics when the endpoint is set.
//!
//! Everything is global so that the OSS client records its requests without knowing about
//! the RPC layer (the layering rule: `oss` never depends on `rpc`).

mod metrics;
pub mod otel;
pub mod trace;

use std::{
    fmt,
    io::IsTerminal,
    sync::{Arc, OnceLock},
};

use anyhow::Context;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{metrics::SdkMeterProvider, trace::SdkTracerProvider};
use tracing::{
    Dispatch, Event, Subscriber,
    dispatcher::WeakDispatch,
    field::{Field, Visit},
};
use tracing_subscriber::{
    Layer,
    field::RecordFields,
    fmt::{
        FmtContext, FormatEvent, FormatFields, MakeWriter,
        format::{Format, Json, Writer},
    },
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

pub use metrics::{
    InFlightUpload, Metrics, MetricsServer, metrics, serve, set_upload_memory_source,
};
pub use trace::{OssOutcome, OssSpan, RpcSpan, TraceContextLayer, extract_context};

/// Installs the global tracing subscriber (text or JSON logs on stderr) and, when the
/// `OTEL_*` environment asks for it, the OTLP trace and metric exporters. Keep the returned
/// guard alive for the life of the process: dropping it flushes and stops the exporters.
pub fn init(settings: &crate::config::Settings) -> anyhow::Result<TelemetryGuard> {
    let dispatch = DispatchSlot::default();
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log.level)
        .with_context(|| format!("log.level: {:?}", settings.log.level))?;
    // Colours only for a person at a terminal: a file, a pipe or a container log gets plain
    // text (tracing-subscriber colours by default, whatever stderr is).
    let ansi = ansi_colours(std::io::stderr().is_terminal());
    let logs = log_layer(
        settings.log.format.as_str(),
        ansi,
        std::io::stderr,
        &dispatch,
    )
    .with_filter(filter);
    let resource = otel::resource();
    let tracer = if otel::traces_enabled() {
        Some(otel::tracer_provider(resource.clone())?)
    } else {
        None
    };
    let spans = tracer.as_ref().map(|provider| {
        // ossgate's own spans (and the events inside them) whatever log.level says.
        let spans_filter =
            tracing_subscriber::filter::Targets::new().with_target("ossgate", tracing::Level::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("ossgate"))
            .with_tracked_inactivity(false)
            .with_filter(spans_filter)
    });
    let meter = if otel::metrics_enabled() {
        let provider = otel::meter_provider(resource)?;
        opentelemetry::global::set_meter_provider(provider.clone());
        metrics::install_otel(&opentelemetry::global::meter("ossgate"));
        Some(provider)
    } else {
        None
    };
    let installed = tracing_subscriber::registry()
        .with(dispatch)
        .with(logs)
        .with(spans)
        .try_init();
    // A second init (tests start several servers in one process) keeps the first subscriber.
    drop(installed);
    if tracer.is_some() || meter.is_some() {
        tracing::info!(
            traces = tracer.is_some(),
            metrics = meter.is_some(),
            "exporting telemetry over OTLP"
        );
    }
    Ok(TelemetryGuard { tracer, meter })
}

/// The log lines of `format` (`json`, else text) written to `writer`.
fn log_layer<S, W>(
    format: &str,
    ansi: bool,
    writer: W,
    dispatch: &DispatchSlot,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    if format == "json" {
        tracing_subscriber::fmt::layer()
            .json()
            .event_format(JsonWithTraceIds::new(dispatch))
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .fmt_fields(TextFields)
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed()
    }
}

/// A subscriber that writes every event, in the gateway's log format `format` (`text` or
/// `json`, without colours), to `writer`: how tests see exactly what the gateway logs.
pub fn log_subscriber<W>(format: &str, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let dispatch = DispatchSlot::default();
    let logs = log_layer(format, false, writer, &dispatch);
    tracing_subscriber::registry().with(dispatch).with(logs)
}

/// Whether text logs are coloured: only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>).
fn ansi_colours(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// JSON log lines, each starting with the `trace_id` and `span_id` of the span it was logged
/// in when that span is traced (so a log line leads to its trace).
struct JsonWithTraceIds {
    json: Format<Json>,
    dispatch: DispatchSlot,
}

impl JsonWithTraceIds {
    fn new(dispatch: &DispatchSlot) -> Self {
        Self {
            json: tracing_subscriber::fmt::format().json(),
            dispatch: dispatch.clone(),
        }
    }
}

/// The subscriber a layer stack was installed in (tracing gives no access to it while an
/// event is being dispatched, and the OpenTelemetry span context is read through it).
#[derive(Clone, Default)]
struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

impl<S: Subscriber> Layer<S> for DispatchSlot {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.json.format_event(ctx, Writer::new(&mut line), event)?;
        let dispatch = self.dispatch.0.get().and_then(WeakDispatch::upgrade);
        let ids = ctx
            .parent_span()
            .zip(dispatch)
            .and_then(|(span, dispatch)| {
                tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)
            });
        let ids = ids.map(|cx| cx.span().span_context().clone());
        match (ids, line.strip_prefix('{')) {
            (Some(sc), Some(rest)) if sc.is_valid() => write!(
                writer,
                r#"{{"trace_id":"{}","span_id":"{}",{rest}"#,
                sc.trace_id(),
                sc.span_id()
            ),
            _ => writer.write_str(&line),
        }
    }
}

/// Text-log fields as `name=value`, leaving out the `otel.*` fields that only name a span and
/// its kind for the OpenTelemetry exporter.
///
/// Field values come from callers (keys, buckets, tags, metadata, error messages that quote
/// them), so no value may end a line or pass for another field: string values are quoted with
/// Rust's escapes (`"a\nb"`), any other value is written bare only when it is one plain token
/// and quoted the same way otherwise, and the message keeps its text with control characters
/// escaped. One event is always one line, and its fields parse back unambiguously. (A message
/// is the gateway's own text: caller text belongs in fields, never in the message.)
struct TextFields;

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = TextVisitor {
            writer: &mut writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct TextVisitor<'a, 'writer> {
    writer: &'a mut Writer<'writer>,
    empty: bool,
    result: fmt::Result,
}

impl TextVisitor<'_, '_> {
    /// Writes ` name=value` (`value` already rendered); the message as bare text.
    fn write_field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("otel.") {
            return;
        }
        let sep = if self.empty { "" } else { " " };
        self.empty = false;
        self.result = if name == "message" {
            write!(self.writer, "{sep}{}", LineSafe(value))
        } else {
            write!(self.writer, "{sep}{name}={value}")
        };
    }
}

impl Visit for TextVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write_field(field, format_args!("{value}"));
        } else {
            self.write_field(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.write_field(field, format_args!("{value:?}"));
            return;
        }
        // `%display` and `?debug` values arrive here: render them to see whether they are
        // one plain token (numbers, codes) or text that must be quoted.
        let text = format!("{value:?}");
        if is_plain_token(&text) {
            self.write_field(field, format_args!("{text}"));
        } else {
            self.write_field(field, format_args!("{text:?}"));
        }
    }
}

/// A value that can stand bare after `name=`: not empty, and no character that could end the
/// line, separate fields or open a quote.
fn is_plain_token(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '=' | '\\'))
}

/// Text with control characters (and the Unicode line and paragraph separators) escaped as
/// Rust does (`\n`, `\u{1b}`), so it stays on one line whatever it holds.
struct LineSafe<T>(T);

impl<T: fmt::Display> fmt::Display for LineSafe<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl fmt::Write for Escaping<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                for c in s.chars() {
                    if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                        write!(self.0, "{}", c.escape_debug())?;
                    } else {
                        self.0.write_char(c)?;
                    }
                }
                Ok(())
            }
        }
        write!(Escaping(f), "{}", self.0)
    }
}

/// Keeps process-wide telemetry alive; dropping it flushes and shuts down the exporters.
#[must_use = "telemetry stops when the guard is dropped"]
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl TelemetryGuard {
    fn shutdown(&mut self) {
        if let Some(tracer) = self.tracer.take()
            && let Err(e) = tracer.shutdown()
        {
            eprintln!("ossgate: flushing traces failed: {e}");
        }
        if let Some(meter) = self.meter.take()
            && let Err(e) = meter.shutdown()
        {
            eprintln!("ossgate: flushing metrics failed: {e}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if self.tracer.is_none() && self.meter.is_none() {
            return;
        }
        // The exporters' background threads wait on the gRPC channel, which the runtime
        // drives: block this worker without stalling the runtime.
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.shutdown())
            }
            _ => self.shutdown(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn text_logs_are_plain_unless_written_to_a_terminal() {
        // A file, a pipe or a container log never gets escape codes.
        assert!(!ansi_colours(false));
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_logs_leave_out_the_otel_span_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(TextFields)
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "rpc",
                otel.name = "ossgate.v1.ObjectService/HeadObject",
                otel.kind = "server",
                method = "HeadObject",
                later = tracing::field::Empty,
            );
            span.record("later", 7);
            span.in_scope(|| tracing::info!(code = "OK", note = "a b", "call finished"));
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains(r#"rpc{method="HeadObject" later=7}: "#),
            "{text}"
        );
        assert!(
            text.contains(r#"call finished code="OK" note="a b""#),
            "{text}"
        );
        assert!(!text.contains("otel."), "{text}");
    }

    #[test]
    fn text_log_values_stay_on_their_line_and_in_their_field() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = log_subscriber("text", move || writer.clone());
        let forged =
            "k\n2026-01-01T00:00:00Z  INFO ossgate::audit: tag mutation principal=\"alice\"";
        tracing::subscriber::with_default(subscriber, || {
            let shown = format!("{forged} \u{1b}[2K");
            tracing::info!(key = forged, shown = %shown, count = 3, code = ?tonic::Code::Ok, "seen {forged}");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        // Strings quoted and escaped, plain tokens bare, the message escaped in place.
        assert!(text.contains(&format!("key={forged:?}")), "{text}");
        assert!(text.contains(r#"shown="k\n2026"#), "{text}");
        assert!(text.contains(" count=3 code=Ok"), "{text}");
        assert!(text.contains(r#"seen k\n2026-01-01"#), "{text}");
    }

    #[test]
    fn json_logs_carry_the_trace_and_span_ids() {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let provider = SdkTracerProvider::builder().build();
        let dispatch = DispatchSlot::default();
        let subscriber = tracing_subscriber::registry()
            .with(dispatch.clone())
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .event_format(JsonWithTraceIds::new(&dispatch))
                    .with_writer(move || writer.clone()),
            );
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any span");
            let span = tracing::info_span!("rpc", method = "HeadObject");
            span.in_scope(|| tracing::info!(code = "OK", "call finished"));
            let sc = span.context().span().span_context().clone();
            (sc.trace_id().to_string(), sc.span_id().to_string())
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].get("trace_id").is_none(), "{text}");
        assert_eq!(lines[1]["trace_id"], trace_id.as_str(), "{text}");
        assert_eq!(lines[1]["span_id"], span_id.as_str(), "{text}");
        assert_eq!(lines[1]["fields"]["message"], "call finished", "{text}");
        assert_eq!(lines[1]["span"]["method"], "HeadObject", "{text}");
    }
}
