//! The Rust `opentelemetry-otlp` exporters (written by the OpenTelemetry project, not here) send
//! traces over gRPC and HTTP, logs and metrics over gRPC; all of it reaches the query API and
//! `/metrics` with the right names, labels and values.

use opentelemetry::KeyValue;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{LogExporter, MetricExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::helpers::*;

fn resource(service: &str) -> Resource {
    Resource::builder().with_service_name(service.to_owned()).build()
}

/// Sends a server span with a client child through `exporter`; returns the trace id in hex.
fn send_trace(exporter: SpanExporter, service: &str) -> String {
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter).with_resource(resource(service)).build();
    let tracer = provider.tracer("interop");
    let mut parent = tracer.span_builder("GET /orders").with_kind(SpanKind::Server).start(&tracer);
    parent.set_attribute(KeyValue::new("http.route", "/orders"));
    parent.set_attribute(KeyValue::new("retries", 3_i64));
    let trace_id = parent.span_context().trace_id().to_string();
    let cx = opentelemetry::Context::current_with_span(parent);
    let mut child = tracer.span_builder("SELECT orders").with_kind(SpanKind::Client).start_with_context(&tracer, &cx);
    child.set_status(opentelemetry::trace::Status::error("timeout"));
    child.end();
    cx.span().end();
    provider.shutdown().expect("spans flushed");
    trace_id
}

#[test]
fn the_rust_otlp_exporters_are_understood_over_grpc_and_http() {
    // The collector on its own runtime; the exporters block their caller (simple processors) and
    // drive their connections on a second one.
    let collector_runtime = tokio::runtime::Runtime::new().expect("runtime");
    let collector = collector_runtime.block_on(spawn_collector());
    let exporter_runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _entered = exporter_runtime.enter();
    let grpc = format!("http://{}", collector.addresses.grpc);

    let over_grpc = SpanExporter::builder().with_tonic().with_endpoint(&grpc).build().expect("gRPC exporter");
    let grpc_trace = send_trace(over_grpc, "rust-grpc");
    let http_endpoint = format!("http://{}/v1/traces", collector.addresses.http);
    let over_http = SpanExporter::builder().with_http().with_endpoint(http_endpoint).build().expect("HTTP exporter");
    let http_trace = send_trace(over_http, "rust-http");

    for (trace_id, service) in [(&grpc_trace, "rust-grpc"), (&http_trace, "rust-http")] {
        let (status, trace) = collector_runtime.block_on(collector.get_json(&format!("/api/v1/traces/{trace_id}")));
        assert_eq!(status, 200, "{service}: {trace}");
        let spans = trace["spans"].as_array().expect("spans");
        assert_eq!(spans.len(), 2, "{service}: {trace}");
        let parent = spans.iter().find(|span| span["name"] == "GET /orders").expect("parent");
        let child = spans.iter().find(|span| span["name"] == "SELECT orders").expect("child");
        assert_eq!(child["parent_span_id"], parent["span_id"]);
        assert_eq!(
            (parent["kind"].as_str(), child["kind"].as_str()),
            (Some("SPAN_KIND_SERVER"), Some("SPAN_KIND_CLIENT"))
        );
        assert_eq!(parent["attributes"], serde_json::json!({"http.route": "/orders", "retries": 3}));
        assert_eq!(
            (child["status_code"].as_str(), child["status_message"].as_str()),
            (Some("STATUS_CODE_ERROR"), Some("timeout"))
        );
        assert_eq!(parent["service"], service);
    }

    let logs = LogExporter::builder().with_tonic().with_endpoint(&grpc).build().expect("log exporter");
    let logger_provider =
        SdkLoggerProvider::builder().with_simple_exporter(logs).with_resource(resource("rust-logs")).build();
    let logger = logger_provider.logger("interop");
    let mut record = logger.create_log_record();
    record.set_body("order rejected".into());
    record.set_severity_text("WARN");
    record.set_severity_number(Severity::Warn);
    record.add_attribute("order.id", 42_i64);
    let trace_id = opentelemetry::trace::TraceId::from_hex(&grpc_trace).expect("hex");
    record.set_trace_context(trace_id, opentelemetry::trace::SpanId::from(7_u64), None);
    logger.emit(record);
    logger_provider.shutdown().expect("logs flushed");
    let (_, found) = collector_runtime.block_on(collector.get_json(&format!("/api/v1/logs?trace_id={grpc_trace}")));
    let entry = &found["logs"][0];
    assert_eq!(entry["body"], "order rejected", "{found}");
    assert_eq!((entry["severity_text"].as_str(), entry["service"].as_str()), (Some("WARN"), Some("rust-logs")));
    assert_eq!(
        (entry["span_id"].as_str(), entry["attributes"]["order.id"].as_i64()),
        (Some("0000000000000007"), Some(42))
    );

    let metrics = MetricExporter::builder().with_tonic().with_endpoint(&grpc).build().expect("metric exporter");
    let meter_provider =
        SdkMeterProvider::builder().with_periodic_exporter(metrics).with_resource(resource("rust-metrics")).build();
    let meter = meter_provider.meter("interop");
    let orders = meter.u64_counter("shop.orders").with_unit("{order}").build();
    orders.add(2, &[KeyValue::new("region", "eu")]);
    orders.add(5, &[KeyValue::new("region", "eu")]);
    let latency = meter.f64_histogram("shop.latency").with_unit("s").with_boundaries(vec![0.1, 1.0]).build();
    latency.record(0.05, &[]);
    latency.record(0.5, &[]);
    meter_provider.shutdown().expect("metrics flushed");
    let exposition = collector_runtime.block_on(collector.exposition());
    assert_eq!(
        exposition.value("shop_orders_total", &[("job", "rust-metrics"), ("region", "eu")]),
        Some(7.0),
        "{exposition}"
    );
    assert_eq!(exposition.value("shop_latency_seconds_bucket", &[("job", "rust-metrics"), ("le", "0.1")]), Some(1.0));
    assert_eq!(exposition.value("shop_latency_seconds_bucket", &[("job", "rust-metrics"), ("le", "+Inf")]), Some(2.0));
    assert_eq!(exposition.value("shop_latency_seconds_count", &[("job", "rust-metrics")]), Some(2.0));

    drop(_entered);
    collector_runtime.block_on(collector.stop());
}
