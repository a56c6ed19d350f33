//! The whole pipeline against an in-process OTLP/gRPC receiver: which log records leave the process,
//! with which trace, and that the shutdown flush delivers them.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{TelemetrySettings, pipeline};
use crate::ServiceInfo;

/// An OTLP/gRPC receiver that keeps the log records it is sent, with their resource's `service.name`,
/// and accepts spans.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<(String, LogRecord)>>>);

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let mut kept = self.0.lock().expect("lock");
        for resource_logs in request.into_inner().resource_logs {
            let service = resource_logs
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .map(|attribute| text(attribute.value.as_ref()))
                .unwrap_or_default();
            for record in resource_logs.scope_logs.into_iter().flat_map(|scope| scope.log_records) {
                kept.push((service.clone(), record));
            }
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        _request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Receiver {
    /// Serves OTLP/gRPC on a free loopback port: (endpoint, receiver).
    async fn start() -> (String, Self) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let receiver = Self::default();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(LogsServiceServer::new(receiver.clone()))
                .add_service(TraceServiceServer::new(receiver.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (endpoint, receiver)
    }

    fn records(&self) -> Vec<(String, LogRecord)> {
        self.0.lock().expect("lock").clone()
    }
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(text)) => text.clone(),
        _ => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_reach_the_otlp_endpoint_with_their_spans_trace_and_the_exporters_own_do_not() {
    let (endpoint, receiver) = Receiver::start().await;
    // No periodic export within the test: what arrives was sent by the shutdown flush.
    let settings =
        TelemetrySettings { otlp_endpoint: Some(endpoint), export_interval_ms: 3_600_000, ..Default::default() };
    let (dispatch, guard) = pipeline(&settings, &ServiceInfo::new("observability-test", "0", None)).expect("pipeline");
    let (trace_id, span_id) = tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("request");
        let context = span.context().span().span_context().clone();
        span.in_scope(|| {
            tracing::warn!(rows = 3, "Computed");
            tracing::warn!(target: "opentelemetry_sdk", "Exporter stack: sdk");
            tracing::warn!(target: "opentelemetry_otlp::exporter", "Exporter stack: otlp");
            tracing::warn!(target: "tonic::transport::channel", "Exporter stack: tonic");
            tracing::warn!(target: "h2::proto::connection", "Exporter stack: h2");
            tracing::warn!(target: "hyper_util::client::legacy", "Exporter stack: hyper");
            tracing::warn!(target: "tower::buffer::worker", "Exporter stack: tower");
        });
        tracing::info!("Outside any span");
        (context.trace_id().to_string(), context.span_id().to_string())
    });
    drop(dispatch);
    tokio::task::spawn_blocking(move || guard.shutdown()).await.expect("shutdown");

    let records = receiver.records();
    let bodies: Vec<String> = records.iter().map(|(_, record)| text(record.body.as_ref())).collect();
    assert_eq!(bodies, ["Computed", "Outside any span"], "only the application's records: {records:?}");
    let (service, computed) = &records[0];
    assert_eq!(service, "observability-test");
    assert_eq!((hex(&computed.trace_id), hex(&computed.span_id)), (trace_id, span_id));
    assert_eq!(computed.severity_text, "WARN");
    let rows = computed.attributes.iter().find(|attribute| attribute.key == "rows").expect("rows attribute");
    assert_eq!(rows.value.as_ref().and_then(|value| value.value.clone()), Some(Value::IntValue(3)));
    assert!(records[1].1.trace_id.is_empty(), "no trace outside a span: {:?}", records[1]);
}
