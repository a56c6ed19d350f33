//! RED metrics with the CONTRACTS §5 names and labels, and spans exported over OTLP/gRPC.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axiom25_proto::matrix::v1::{InvertRequest, MultiplyRequest};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
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

#[tokio::test]
async fn a_server_span_joining_the_callers_trace_is_exported_over_otlp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let receiver = Receiver::default();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let api = ApiProcess::start(&[
        ("AXIOM25__TELEMETRY__OTLP_ENDPOINT", &endpoint),
        ("AXIOM25__TELEMETRY__EXPORT_INTERVAL_MS", "100"),
        ("AXIOM25__TELEMETRY__ENVIRONMENT", "test"),
    ])
    .await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = Request::new(MultiplyRequest { a: matrix(1, 1, &[2.]), b: matrix(1, 1, &[3.]) });
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    request.metadata_mut().insert("traceparent", traceparent.parse().expect("ascii"));
    let mut client =
        axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient::new(connect(api.grpc_addr).await);
    client.multiply(request).await.expect("ok");

    let found = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let batches = receiver.0.lock().expect("lock").clone();
            for resource_spans in &batches {
                let attribute =
                    |key: &str| {
                        resource_spans.resource.as_ref()?.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
                            match kv.value.as_ref()?.value.as_ref()? {
                                Value::StringValue(s) => Some(s.clone()),
                                _ => None,
                            }
                        })
                    };
                for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                    if span.name == "axiom25.matrix.v1.MatrixService/Multiply" {
                        return (span.clone(), attribute("service.name"), attribute("deployment.environment"));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the server span reaches the OTLP endpoint");
    let (span, service_name, environment) = found;
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(hex(&span.trace_id), trace_id, "the span joins the caller's trace");
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(service_name.as_deref(), Some("api"));
    assert_eq!(environment.as_deref(), Some("test"));
    api.terminate().await;
    server.abort();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
