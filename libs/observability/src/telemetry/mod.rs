//! Logs and traces: JSON logs on stdout that carry `trace_id`/`span_id`, and OpenTelemetry spans and
//! log records exported over OTLP/gRPC, each through a bounded [`ExportQueue`] that never blocks
//! request handling.

mod export_queue;
mod json_log;
mod logs;
#[cfg(test)]
mod tests;

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter as _};
use serde::Deserialize;
use tracing::Dispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use export_queue::{
    BatchExporter, ExportQueue, ExportQueueError, ExportQueueSettings, ExportStats, Queued, QueuedLog,
};
pub use logs::UNEXPORTED_TARGETS;

use crate::ServiceInfo;

/// How logs are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable lines (local debugging).
    Text,
}

/// The `telemetry` section every service's settings share.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// Log filter in `RUST_LOG` syntax, e.g. `info` or `info,axiom25_api=debug`.
    pub log_level: String,
    /// How logs are written to stdout.
    pub log_format: LogFormat,
    /// `deployment.environment` of every span.
    pub environment: String,
    /// OTLP/gRPC endpoint, e.g. `http://telemetry-collector:4317`; traces and logs are not exported when unset.
    pub otlp_endpoint: Option<String>,
    /// Fraction of new traces sampled (0.0..=1.0); a sampled parent's decision is always followed.
    pub sampling_ratio: f64,
    /// Spans, and apart from them log records, held for export before new ones are dropped (and counted).
    pub export_queue_capacity: usize,
    /// Spans or log records sent per export request.
    pub export_batch_size: usize,
    /// How often a partial batch is sent, in milliseconds.
    pub export_interval_ms: u64,
    /// Deadline of one export request, in milliseconds.
    pub export_timeout_ms: u64,
    /// How long shutdown waits to flush queued spans and log records, in milliseconds.
    pub flush_timeout_ms: u64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_level: "info".into(),
            log_format: LogFormat::Json,
            environment: "development".into(),
            otlp_endpoint: None,
            sampling_ratio: 1.0,
            export_queue_capacity: 4096,
            export_batch_size: 512,
            export_interval_ms: 1000,
            export_timeout_ms: 5000,
            flush_timeout_ms: 3000,
        }
    }
}

impl TelemetrySettings {
    /// Problems with these settings, keys prefixed with `prefix` (e.g. `telemetry`).
    #[must_use]
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(error) = EnvFilter::try_new(&self.log_level) {
            problems.push(format!("{prefix}.log_level: {error}"));
        }
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            problems.push(format!("{prefix}.sampling_ratio: must be within 0.0..=1.0, got {}", self.sampling_ratio));
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            let valid = endpoint
                .parse::<http::Uri>()
                .is_ok_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some());
            if !valid {
                problems.push(format!("{prefix}.otlp_endpoint: must be an http:// or https:// URL, got {endpoint:?}"));
            }
        }
        if self.export_queue_capacity == 0 {
            problems.push(format!("{prefix}.export_queue_capacity: must be at least 1"));
        }
        if self.export_batch_size == 0 || self.export_batch_size > self.export_queue_capacity {
            problems.push(format!("{prefix}.export_batch_size: must be within 1..=export_queue_capacity"));
        }
        for (key, value) in [
            ("export_interval_ms", self.export_interval_ms),
            ("export_timeout_ms", self.export_timeout_ms),
            ("flush_timeout_ms", self.flush_timeout_ms),
        ] {
            if value == 0 {
                problems.push(format!("{prefix}.{key}: must be at least 1"));
            }
        }
        problems
    }
}

/// Keeps telemetry running; [`TelemetryGuard::shutdown`] flushes queued spans and log records on exit.
#[derive(Debug)]
pub struct TelemetryGuard {
    traces: SdkTracerProvider,
    logs: Option<SdkLoggerProvider>,
    flush_timeout: Duration,
}

impl TelemetryGuard {
    /// Flushes queued spans and log records, both at once within the configured timeout, and stops
    /// exporting. Blocks the caller.
    pub fn shutdown(self) {
        std::thread::scope(|scope| {
            let logs = self.logs.as_ref().map(|logs| scope.spawn(|| logs.shutdown_with_timeout(self.flush_timeout)));
            if let Err(error) = self.traces.shutdown_with_timeout(self.flush_timeout) {
                tracing::warn!(%error, "Span flush incomplete");
            }
            if let Some(Ok(Err(error))) = logs.map(std::thread::ScopedJoinHandle::join) {
                tracing::warn!(%error, "Log flush incomplete");
            }
        });
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The span export queue did not start.
    #[error("starting the span export queue")]
    ExportQueue(#[source] ExportQueueError),
    /// The log export queue did not start.
    #[error("starting the log export queue")]
    LogExportQueue(#[source] ExportQueueError),
    /// `telemetry.log_level` is not a valid filter.
    #[error("telemetry.log_level")]
    LogLevel(#[from] tracing_subscriber::filter::ParseError),
    /// Another global log subscriber is installed.
    #[error("installing the global log subscriber")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// Installs the global log subscriber, trace and logger providers and the W3C propagator.
///
/// Spans always get ids (so logs and `x-trace-id` correlate) even when nothing is exported.
///
/// # Errors
/// When a global subscriber is already installed or an exporter cannot be built.
pub fn init(settings: &TelemetrySettings, info: &ServiceInfo) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let (dispatch, guard) = pipeline(settings, info)?;
    dispatch.try_init()?;
    Ok(guard)
}

/// The subscriber [`init`] installs: stdout logs, spans and, with an OTLP endpoint, their export and
/// the export of log records.
fn pipeline(settings: &TelemetrySettings, info: &ServiceInfo) -> Result<(Dispatch, TelemetryGuard), TelemetryError> {
    let resource = resource(settings, info);
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sampling_ratio)));
    let mut traces = SdkTracerProvider::builder().with_sampler(sampler).with_resource(resource.clone());
    let mut log_provider = None;
    if let Some(endpoint) = settings.otlp_endpoint.clone() {
        let timeout = Duration::from_millis(settings.export_timeout_ms);
        let span_resource = resource.clone();
        let span_endpoint = endpoint.clone();
        let queue = ExportQueue::<SpanData>::start(ExportQueueSettings::from(settings), move || {
            let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(span_endpoint)
                .with_timeout(timeout)
                .build()?;
            exporter.set_resource(&span_resource);
            Ok(exporter)
        })
        .map_err(TelemetryError::ExportQueue)?;
        traces = traces.with_span_processor(queue);
        log_provider = Some(logs::provider(settings, endpoint, resource).map_err(TelemetryError::LogExportQueue)?);
    }
    let traces = traces.build();
    let tracer = traces.tracer(info.name);

    let filter = EnvFilter::try_new(&settings.log_level)?;
    // Context activation makes an entered span's context current, which is where the logger
    // provider takes a log record's trace and span ids from.
    let otel = tracing_opentelemetry::layer().with_tracer(tracer).with_context_activation(true);
    let registry = tracing_subscriber::registry().with(filter).with(otel).with(log_provider.as_ref().map(logs::layer));
    let dispatch = match settings.log_format {
        LogFormat::Json => Dispatch::new(registry.with(json_log::layer())),
        LogFormat::Text => Dispatch::new(registry.with(tracing_subscriber::fmt::layer().with_target(true))),
    };
    Ok((
        dispatch,
        TelemetryGuard { traces, logs: log_provider, flush_timeout: Duration::from_millis(settings.flush_timeout_ms) },
    ))
}

fn resource(settings: &TelemetrySettings, info: &ServiceInfo) -> Resource {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
    let mut attributes = vec![
        KeyValue::new("service.version", info.version),
        KeyValue::new("deployment.environment", settings.environment.clone()),
        KeyValue::new("deployment.environment.name", settings.environment.clone()),
        KeyValue::new("vcs.ref.head.revision", info.git_sha),
    ];
    if !host.is_empty() {
        attributes.push(KeyValue::new("host.name", host.clone()));
        attributes.push(KeyValue::new("service.instance.id", host));
    }
    // Set by the Helm chart through the downward API.
    if let Ok(pod) = std::env::var("POD_NAME") {
        attributes.push(KeyValue::new("k8s.pod.name", pod));
    }
    Resource::builder().with_service_name(info.name).with_attributes(attributes).build()
}
