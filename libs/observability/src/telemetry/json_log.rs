//! One JSON object per log line, carrying the OpenTelemetry `trace_id` and `span_id` of the span
//! the event happened in, so logs and traces join on the id.

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The stdout JSON log layer.
pub(super) fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    layer_with_writer(std::io::stdout)
}

fn layer_with_writer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let dispatch = Arc::new(OnceLock::new());
    tracing_subscriber::fmt::layer()
        .event_format(JsonWithTrace { dispatch: Arc::clone(&dispatch) })
        .with_writer(writer)
        .and_then(CaptureDispatch(dispatch))
}

/// Keeps the subscriber this layer is registered with. The formatter needs it to ask the
/// OpenTelemetry layer for a span's context, and `dispatcher::get_default` cannot give it: while
/// an event is being dispatched it answers the no-op dispatcher, to prevent re-entrance.
struct CaptureDispatch(Arc<OnceLock<WeakDispatch>>);

impl<S: Subscriber> Layer<S> for CaptureDispatch {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}

struct JsonWithTrace {
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl<S, N> FormatEvent<S, N> for JsonWithTrace
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(event.metadata().level().to_string()));
        line.insert("target".into(), Value::String(event.metadata().target().to_owned()));
        event.record(&mut JsonVisitor(&mut line));
        if let Some(span) = ctx.parent_span() {
            line.insert("span".into(), Value::String(span.name().to_owned()));
            // The fmt layer holds no extension lock while formatting, so asking for the span's
            // OpenTelemetry context here cannot deadlock.
            let dispatch = self.dispatch.get().and_then(WeakDispatch::upgrade);
            let context = dispatch.and_then(|dispatch| tracing_opentelemetry::get_otel_context(&span.id(), &dispatch));
            if let Some(context) = context {
                let span_context = context.span().span_context().clone();
                if span_context.is_valid() {
                    line.insert("trace_id".into(), Value::String(span_context.trace_id().to_string()));
                    line.insert("span_id".into(), Value::String(span_context.span_id().to_string()));
                }
            }
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_line_in_a_span_carries_that_spans_trace_and_span_ids() {
        let captured = Captured::default();
        let writer = captured.clone();
        let tracer = SdkTracerProvider::builder().build().tracer("test");
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .with(layer_with_writer(move || writer.clone()));
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            let context = span.context().span().span_context().clone();
            span.in_scope(|| tracing::info!(rows = 3, "Computed"));
            tracing::info!("Outside any span");
            (context.trace_id().to_string(), context.span_id().to_string())
        });

        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<Value> =
            text.lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["message"], "Computed");
        assert_eq!(lines[0]["rows"], 3);
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["span"], "request");
        assert_eq!(lines[0]["trace_id"], trace_id.as_str());
        assert_eq!(lines[0]["span_id"], span_id.as_str());
        assert!(lines[1].get("trace_id").is_none(), "no ids outside a span: {}", lines[1]);
    }
}
