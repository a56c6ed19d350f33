//! RED metrics with the docs/contracts.md §5 names and labels, and spans exported over OTLP/gRPC.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axiom25_proto::matrix::v1::{InvertRequest, MultiplyRequest};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Request;

use crate::helpers::{ApiProcess, connect, http_get, matrix, spawn_app};

#[tokio::test]
async fn a_request_produces_the_contract_metrics_with_the_right_labels() {
    let mut app = spawn_app().await;
    let ok = MultiplyRequest { a: matrix(1, 1, &[2.]), b: matrix(1, 1, &[3.]) };
    app.client.multiply(ok).await.expect("ok");
    app.client.invert(InvertRequest { a: matrix(1, 2, &[1., 2.]) }).await.expect_err("not square");
    let (_, body) = http_get(app.admin_addr, "/metrics").await;
    for series in [
        r#"rpc_server_duration_seconds_count{rpc_service="axiom25.matrix.v1.MatrixService",rpc_method="Multiply",rpc_grpc_status_code="0"}"#,
        r#"rpc_server_duration_seconds_count{rpc_service="axiom25.matrix.v1.MatrixService",rpc_method="Invert",rpc_grpc_status_code="3"}"#,
        r#"rpc_server_duration_seconds_bucket{rpc_service="axiom25.matrix.v1.MatrixService",rpc_method="Multiply",rpc_grpc_status_code="0",le="0.001"}"#,
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
    ] {
        assert!(body.contains(series), "{series} missing from:\n{body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn calls_to_unknown_methods_share_one_bounded_label() {
    let app = spawn_app().await;
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.expect("ready");
    let codec = tonic_prost::ProstCodec::<InvertRequest, InvertRequest>::default();
    let path = http::uri::PathAndQuery::from_static("/axiom25.matrix.v1.MatrixService/NoSuchMethod");
    let status = grpc.unary(Request::new(InvertRequest { a: None }), path, codec).await.expect_err("unimplemented");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let (_, body) = http_get(app.admin_addr, "/metrics").await;
    assert!(!body.contains("NoSuchMethod"), "a raw method name became a label:\n{body}");
    assert!(body.contains(r#"rpc_method="_OTHER",rpc_grpc_status_code="12""#), "{body}");
    app.stop().await;
}

/// A minimal OTLP/gRPC trace receiver that keeps what it is sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<ResourceSpans>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().expect("lock").extend(request.into_inner().resource_spans);
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
                .add_service(TraceServiceServer::new(receiver.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (endpoint, receiver)
    }

    /// Spans received so far, each with its resource's `service.name` and `deployment.environment`.
    fn spans(&self) -> Vec<(Span, Option<String>, Option<String>)> {
        let batches = self.0.lock().expect("lock").clone();
        let mut spans = Vec::new();
        for resource_spans in &batches {
            let attribute = |key: &str| {
                resource_spans.resource.as_ref()?.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
                    match kv.value.as_ref()?.value.as_ref()? {
                        Value::StringValue(s) => Some(s.clone()),
                        _ => None,
                    }
                })
            };
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                spans.push((span.clone(), attribute("service.name"), attribute("deployment.environment")));
            }
        }
        spans
    }

    /// Waits up to 15 s for a span of `trace_id`.
    async fn wait_for_trace(&self, trace_id: &str) -> (Span, Option<String>, Option<String>) {
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                if let Some(found) = self.spans().into_iter().find(|(span, ..)| hex(&span.trace_id) == trace_id) {
                    return found;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the span reaches the OTLP endpoint")
    }
}

fn multiply_request(traceparent: Option<&str>) -> Request<MultiplyRequest> {
    let mut request = Request::new(MultiplyRequest { a: matrix(1, 1, &[2.]), b: matrix(1, 1, &[3.]) });
    if let Some(traceparent) = traceparent {
        request.metadata_mut().insert("traceparent", traceparent.parse().expect("ascii"));
    }
    request
}

/// The api binary exporting its traces to `endpoint` every 100 ms, with one more `setting`, and a
/// client of it.
async fn api_exporting_to(
    endpoint: &str,
    setting: (&str, &str),
) -> (ApiProcess, axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient<tonic::transport::Channel>) {
    let export = [("AXIOM25__TELEMETRY__OTLP_ENDPOINT", endpoint), ("AXIOM25__TELEMETRY__EXPORT_INTERVAL_MS", "100")];
    let api = ApiProcess::start(&[export[0], export[1], setting]).await;
    let client =
        axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient::new(connect(api.grpc_addr).await);
    (api, client)
}

#[tokio::test]
async fn a_server_span_joining_the_callers_trace_is_exported_over_otlp() {
    let (endpoint, receiver) = Receiver::start().await;
    let (api, mut client) = api_exporting_to(&endpoint, ("AXIOM25__TELEMETRY__ENVIRONMENT", "test")).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    client.multiply(multiply_request(Some(&format!("00-{trace_id}-00f067aa0ba902b7-01")))).await.expect("ok");

    let (span, service_name, environment) = receiver.wait_for_trace(trace_id).await;
    assert_eq!(span.name, "axiom25.matrix.v1.MatrixService/Multiply");
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7", "the span is the caller's child");
    assert_eq!(service_name.as_deref(), Some("api"));
    assert_eq!(environment.as_deref(), Some("test"));
    api.terminate().await;
}

#[tokio::test]
async fn sampling_is_parent_based_a_sampled_caller_is_followed_at_ratio_zero() {
    let (endpoint, receiver) = Receiver::start().await;
    let (api, mut client) = api_exporting_to(&endpoint, ("AXIOM25__TELEMETRY__SAMPLING_RATIO", "0")).await;
    // A new trace (ratio 0: not sampled), a caller that did not sample, then one that did.
    client.multiply(multiply_request(None)).await.expect("ok");
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    client.multiply(multiply_request(Some(&format!("00-{unsampled}-b7ad6b7169203331-00")))).await.expect("ok");
    let sampled = "4bf92f3577b34da6a3ce929d0e0e4736";
    client.multiply(multiply_request(Some(&format!("00-{sampled}-00f067aa0ba902b7-01")))).await.expect("ok");

    receiver.wait_for_trace(sampled).await;
    // Spans leave in the order they ended, so by now the earlier two would have arrived too.
    let traces: Vec<String> = receiver.spans().iter().map(|(span, ..)| hex(&span.trace_id)).collect();
    assert_eq!(traces, vec![sampled.to_owned()], "only the sampled caller's trace is exported");
    api.terminate().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn health_checks_are_measured_but_never_traced() {
    let (endpoint, receiver) = Receiver::start().await;
    let api = ApiProcess::start(&[
        ("AXIOM25__TELEMETRY__OTLP_ENDPOINT", &endpoint),
        ("AXIOM25__TELEMETRY__EXPORT_INTERVAL_MS", "100"),
    ])
    .await;
    let channel = connect(api.grpc_addr).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for _ in 0..3 {
        let mut request = Request::new(tonic_health::pb::HealthCheckRequest { service: String::new() });
        request.metadata_mut().insert("traceparent", sampled.parse().expect("ascii"));
        health.check(request).await.expect("health answers");
    }
    let after = "0af7651916cd43dd8448eb211c80319c";
    let mut client = axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient::new(channel);
    client.multiply(multiply_request(Some(&format!("00-{after}-b7ad6b7169203331-01")))).await.expect("ok");
    receiver.wait_for_trace(after).await;
    let names: Vec<String> = receiver.spans().iter().map(|(span, ..)| span.name.clone()).collect();
    assert_eq!(names, ["axiom25.matrix.v1.MatrixService/Multiply"], "no span of the health checks");
    let (_, metrics) = crate::helpers::http_get(api.admin_addr, "/metrics").await;
    assert!(metrics.contains(r#"rpc_service="grpc.health.v1.Health""#), "health checks are still measured");
    api.terminate().await;
}
