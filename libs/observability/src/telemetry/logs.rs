//! Log records over OTLP: the OpenTelemetry bridge for `tracing` events, exporting through a bounded
//! [`ExportQueue`] to the endpoint spans go to.
//!
//! A record written inside a span carries that span's trace and span ids: tracing-opentelemetry
//! makes the span's OpenTelemetry context current while the span is entered, and the SDK's logger
//! stamps each record with the current context.

use std::time::Duration;

use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogExporter as _, SdkLoggerProvider};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

use super::export_queue::QueuedLog;
use super::{ExportQueue, ExportQueueError, ExportQueueSettings, TelemetrySettings};

/// Target prefixes of the exporter's own stack. Their events stay on stdout only: exporting them
/// would log while exporting, and a failing export would feed itself.
pub const UNEXPORTED_TARGETS: [&str; 5] = ["opentelemetry", "tonic", "h2", "hyper", "tower"];

/// Starts the log export queue towards `endpoint` and the logger provider that feeds it.
pub(super) fn provider(
    settings: &TelemetrySettings,
    endpoint: String,
    resource: Resource,
) -> Result<SdkLoggerProvider, ExportQueueError> {
    let timeout = Duration::from_millis(settings.export_timeout_ms);
    let exporter_resource = resource.clone();
    let queue = ExportQueue::<QueuedLog>::start(ExportQueueSettings::from(settings), move || {
        let mut exporter = opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(timeout)
            .build()?;
        exporter.set_resource(&exporter_resource);
        Ok(exporter)
    })?;
    Ok(SdkLoggerProvider::builder().with_resource(resource).with_log_processor(queue).build())
}

/// The layer that turns `tracing` events into log records of `provider`, except those of
/// [`UNEXPORTED_TARGETS`].
pub(super) fn layer<S>(provider: &SdkLoggerProvider) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let targets = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(UNEXPORTED_TARGETS.map(|target| (target, LevelFilter::OFF)));
    OpenTelemetryTracingBridge::new(provider).with_filter(targets)
}
