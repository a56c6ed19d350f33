//! The three OTLP signals as the forwarder sees them: a request type, how many items it holds, and
//! the export call of its OTLP service.

use std::future::Future;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::ForwardSettings;
use super::encoded::unary;

/// Items the upstream refused one by one in an otherwise successful answer (`partial_success`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialRejection {
    /// `rejected_spans`, `rejected_data_points` or `rejected_log_records`, as the upstream sent it.
    pub rejected: i64,
    /// The upstream's explanation, possibly empty.
    pub message: String,
}

/// One OTLP signal the collector can forward upstream.
pub trait Signal: Send + Sync + 'static {
    /// The export request of this signal's OTLP service.
    type Request: prost::Message + Send + 'static;

    /// `traces`, `metrics` or `logs`: the `signal` and `data_type` metric labels.
    const NAME: &'static str;
    /// The `exporter` metric label, as the OpenTelemetry Collector names its OTLP exporters.
    const EXPORTER: &'static str;
    /// Counter of items the upstream accepted.
    const SENT_METRIC: &'static str;
    /// Counter of items given up after trying to send them.
    const SEND_FAILED_METRIC: &'static str;
    /// Counter of items refused or dropped because the queue was full.
    const ENQUEUE_FAILED_METRIC: &'static str;

    /// This signal's upstream in `settings`; empty when it is not forwarded.
    fn endpoint(settings: &ForwardSettings) -> &str;

    /// Spans, metric data points or log records in `request`.
    fn items(request: &Self::Request) -> usize;

    /// Sends the encoded request over `channel`; `Ok` carries the upstream's partial rejection,
    /// if any.
    fn export(
        channel: Channel,
        request: Request<Bytes>,
    ) -> impl Future<Output = Result<Option<PartialRejection>, Status>> + Send;
}

/// Traces: items are spans.
#[derive(Debug, Clone, Copy)]
pub struct Traces;

/// Metrics: items are data points.
#[derive(Debug, Clone, Copy)]
pub struct Metrics;

/// Logs: items are log records.
#[derive(Debug, Clone, Copy)]
pub struct Logs;

impl Signal for Traces {
    type Request = ExportTraceServiceRequest;
    const NAME: &'static str = "traces";
    const EXPORTER: &'static str = "otlp/traces";
    const SENT_METRIC: &'static str = "otelcol_exporter_sent_spans_total";
    const SEND_FAILED_METRIC: &'static str = "otelcol_exporter_send_failed_spans_total";
    const ENQUEUE_FAILED_METRIC: &'static str = "otelcol_exporter_enqueue_failed_spans_total";

    fn endpoint(settings: &ForwardSettings) -> &str {
        &settings.traces_endpoint
    }

    fn items(request: &Self::Request) -> usize {
        request.resource_spans.iter().flat_map(|resource| &resource.scope_spans).map(|scope| scope.spans.len()).sum()
    }

    async fn export(channel: Channel, request: Request<Bytes>) -> Result<Option<PartialRejection>, Status> {
        let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
        let answer: ExportTraceServiceResponse = unary(channel, request, path).await?;
        Ok(answer
            .partial_success
            .map(|partial| PartialRejection { rejected: partial.rejected_spans, message: partial.error_message }))
    }
}

impl Signal for Metrics {
    type Request = ExportMetricsServiceRequest;
    const NAME: &'static str = "metrics";
    const EXPORTER: &'static str = "otlp/metrics";
    const SENT_METRIC: &'static str = "otelcol_exporter_sent_metric_points_total";
    const SEND_FAILED_METRIC: &'static str = "otelcol_exporter_send_failed_metric_points_total";
    const ENQUEUE_FAILED_METRIC: &'static str = "otelcol_exporter_enqueue_failed_metric_points_total";

    fn endpoint(settings: &ForwardSettings) -> &str {
        &settings.metrics_endpoint
    }

    fn items(request: &Self::Request) -> usize {
        request
            .resource_metrics
            .iter()
            .flat_map(|resource| &resource.scope_metrics)
            .flat_map(|scope| &scope.metrics)
            .map(|metric| match &metric.data {
                Some(Data::Gauge(gauge)) => gauge.data_points.len(),
                Some(Data::Sum(sum)) => sum.data_points.len(),
                Some(Data::Histogram(histogram)) => histogram.data_points.len(),
                Some(Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
                Some(Data::Summary(summary)) => summary.data_points.len(),
                None => 0,
            })
            .sum()
    }

    async fn export(channel: Channel, request: Request<Bytes>) -> Result<Option<PartialRejection>, Status> {
        let path = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
        let answer: ExportMetricsServiceResponse = unary(channel, request, path).await?;
        Ok(answer
            .partial_success
            .map(|partial| PartialRejection { rejected: partial.rejected_data_points, message: partial.error_message }))
    }
}

impl Signal for Logs {
    type Request = ExportLogsServiceRequest;
    const NAME: &'static str = "logs";
    const EXPORTER: &'static str = "otlp/logs";
    const SENT_METRIC: &'static str = "otelcol_exporter_sent_log_records_total";
    const SEND_FAILED_METRIC: &'static str = "otelcol_exporter_send_failed_log_records_total";
    const ENQUEUE_FAILED_METRIC: &'static str = "otelcol_exporter_enqueue_failed_log_records_total";

    fn endpoint(settings: &ForwardSettings) -> &str {
        &settings.logs_endpoint
    }

    fn items(request: &Self::Request) -> usize {
        request
            .resource_logs
            .iter()
            .flat_map(|resource| &resource.scope_logs)
            .map(|scope| scope.log_records.len())
            .sum()
    }

    async fn export(channel: Channel, request: Request<Bytes>) -> Result<Option<PartialRejection>, Status> {
        let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
        let answer: ExportLogsServiceResponse = unary(channel, request, path).await?;
        Ok(answer
            .partial_success
            .map(|partial| PartialRejection { rejected: partial.rejected_log_records, message: partial.error_message }))
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn resource_spans(per_scope: &[usize]) -> ResourceSpans {
        ResourceSpans {
            scope_spans: per_scope
                .iter()
                .map(|&count| ScopeSpans { spans: vec![Span::default(); count], ..ScopeSpans::default() })
                .collect(),
            ..ResourceSpans::default()
        }
    }

    #[test]
    fn spans_are_counted_across_resources_and_scopes() {
        let request = ExportTraceServiceRequest { resource_spans: vec![resource_spans(&[2, 3])] };
        let other = ExportTraceServiceRequest { resource_spans: vec![resource_spans(&[4]), resource_spans(&[0, 1])] };
        assert_eq!((Traces::items(&request), Traces::items(&other)), (5, 5));
    }

    #[test]
    fn metric_items_are_data_points_of_every_kind() {
        let gauge = Metric {
            data: Some(Data::Gauge(Gauge { data_points: vec![NumberDataPoint::default(); 3] })),
            ..Metric::default()
        };
        let histogram = Metric {
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint::default(); 2],
                ..Histogram::default()
            })),
            ..Metric::default()
        };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![gauge, histogram, Metric::default()],
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            }],
        };
        assert_eq!(Metrics::items(&request), 5);
    }

    #[test]
    fn log_items_are_log_records() {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![
                    ScopeLogs { log_records: vec![LogRecord::default(); 2], ..ScopeLogs::default() },
                    ScopeLogs { log_records: vec![LogRecord::default()], ..ScopeLogs::default() },
                ],
                ..ResourceLogs::default()
            }],
        };
        assert_eq!(Logs::items(&request), 3);
    }
}
