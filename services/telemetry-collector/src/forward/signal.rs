//! The three OTLP signals: a request and response type, how many items a request holds, the
//! export call of its OTLP service, and the names the OpenTelemetry Collector gives their metrics.

use std::future::Future;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::ForwardSettings;
use super::encoded::unary;
use crate::otlp::{ExportRequest, ResponseBody};

/// Items refused one by one in an otherwise successful answer (`partial_success`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialRejection {
    /// `rejected_spans`, `rejected_data_points` or `rejected_log_records`.
    pub rejected: i64,
    /// The explanation, possibly empty.
    pub message: String,
}

/// One OTLP signal the collector receives and can forward upstream.
pub trait Signal: Send + Sync + 'static {
    /// The export request of this signal's OTLP service.
    type Request: ExportRequest + Send + 'static;
    /// The export response of this signal's OTLP service.
    type Response: ResponseBody + Send + 'static;

    /// `traces`, `metrics` or `logs`: the `signal` and `data_type` metric labels.
    const NAME: &'static str;
    /// The `exporter` metric label, as the OpenTelemetry Collector names its OTLP exporters.
    const EXPORTER: &'static str;
    /// The gRPC path of the service's `Export` method.
    const PATH: &'static str;
    /// Counter of items the receivers accepted.
    const ACCEPTED_METRIC: &'static str;
    /// Counter of items the receivers refused.
    const REFUSED_METRIC: &'static str;
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

    /// The answer to a request of which `rejected` items, if any, were refused one by one.
    fn response(rejected: Option<PartialRejection>) -> Self::Response;

    /// The partial rejection `response` carries, if any.
    fn rejection(response: Self::Response) -> Option<PartialRejection>;

    /// Sends the encoded request over `channel`; `Ok` carries the upstream's partial rejection,
    /// if any.
    fn export(
        channel: Channel,
        request: Request<Bytes>,
    ) -> impl Future<Output = Result<Option<PartialRejection>, Status>> + Send {
        async move { unary::<Self::Response>(channel, request, Self::PATH).await.map(Self::rejection) }
    }
}

/// One marker type and [`Signal`] impl per row: `Type("name", "items noun", endpoint setting,
/// item counter): Request => Response(PartialSuccess.rejected field) at "export path";`. Every
/// metric name is built from the items noun, so the three signals cannot drift apart.
macro_rules! signals {
    ($(
        $(#[$doc:meta])*
        $signal:ident($name:literal, $items:literal, $endpoint:ident, $count:ident):
            $request:ident => $response:ident($partial:ident.$rejected:ident) at $path:literal;
    )+) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $signal;

        impl Signal for $signal {
            type Request = $request;
            type Response = $response;
            const NAME: &'static str = $name;
            const EXPORTER: &'static str = concat!("otlp/", $name);
            const PATH: &'static str = $path;
            const ACCEPTED_METRIC: &'static str = concat!("otelcol_receiver_accepted_", $items, "_total");
            const REFUSED_METRIC: &'static str = concat!("otelcol_receiver_refused_", $items, "_total");
            const SENT_METRIC: &'static str = concat!("otelcol_exporter_sent_", $items, "_total");
            const SEND_FAILED_METRIC: &'static str = concat!("otelcol_exporter_send_failed_", $items, "_total");
            const ENQUEUE_FAILED_METRIC: &'static str = concat!("otelcol_exporter_enqueue_failed_", $items, "_total");

            fn endpoint(settings: &ForwardSettings) -> &str {
                &settings.$endpoint
            }

            fn items(request: &$request) -> usize {
                $count(request)
            }

            fn response(rejected: Option<PartialRejection>) -> $response {
                let partial_success =
                    rejected.map(|rejected| $partial { $rejected: rejected.rejected, error_message: rejected.message });
                $response { partial_success }
            }

            fn rejection(response: $response) -> Option<PartialRejection> {
                let partial = response.partial_success?;
                Some(PartialRejection { rejected: partial.$rejected, message: partial.error_message })
            }
        }
    )+};
}

signals! {
    /// Traces: items are spans.
    Traces("traces", "spans", traces_endpoint, spans):
        ExportTraceServiceRequest => ExportTraceServiceResponse(ExportTracePartialSuccess.rejected_spans)
        at "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    /// Metrics: items are data points.
    Metrics("metrics", "metric_points", metrics_endpoint, data_points):
        ExportMetricsServiceRequest => ExportMetricsServiceResponse(ExportMetricsPartialSuccess.rejected_data_points)
        at "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    /// Logs: items are log records.
    Logs("logs", "log_records", logs_endpoint, log_records):
        ExportLogsServiceRequest => ExportLogsServiceResponse(ExportLogsPartialSuccess.rejected_log_records)
        at "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
}

fn spans(request: &ExportTraceServiceRequest) -> usize {
    request.resource_spans.iter().flat_map(|resource| &resource.scope_spans).map(|scope| scope.spans.len()).sum()
}

fn data_points(request: &ExportMetricsServiceRequest) -> usize {
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

fn log_records(request: &ExportLogsServiceRequest) -> usize {
    request.resource_logs.iter().flat_map(|resource| &resource.scope_logs).map(|scope| scope.log_records.len()).sum()
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
    fn metric_names_are_the_opentelemetry_collectors() {
        assert_eq!(
            (Traces::EXPORTER, Traces::ACCEPTED_METRIC, Traces::SENT_METRIC),
            ("otlp/traces", "otelcol_receiver_accepted_spans_total", "otelcol_exporter_sent_spans_total")
        );
        assert_eq!(Metrics::ENQUEUE_FAILED_METRIC, "otelcol_exporter_enqueue_failed_metric_points_total");
        assert_eq!(Logs::REFUSED_METRIC, "otelcol_receiver_refused_log_records_total");
        assert_eq!(Logs::SEND_FAILED_METRIC, "otelcol_exporter_send_failed_log_records_total");
        assert_eq!(Metrics::PATH, "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export");
    }

    #[test]
    fn a_partial_rejection_reads_back_from_the_answer_it_is_written_into() {
        let rejected = PartialRejection { rejected: 3, message: "bad points".into() };
        assert_eq!(Metrics::rejection(Metrics::response(Some(rejected.clone()))), Some(rejected));
        assert_eq!(Logs::response(None), ExportLogsServiceResponse::default());
        assert_eq!(Traces::rejection(ExportTraceServiceResponse::default()), None);
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
