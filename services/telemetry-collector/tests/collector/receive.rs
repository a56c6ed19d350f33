//! Accepted data reaches the query API and `/metrics`, over every transport and encoding.

use std::io::Write as _;

use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message as _;

use crate::helpers::*;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test]
async fn a_trace_sent_over_grpc_is_queryable_and_counted_in_span_metrics() {
    let collector = spawn_collector().await;
    let request =
        traces("checkout", vec![span(1, 1, None, "GET /cart", 12, false), span(1, 2, Some(1), "Multiply", 3, true)]);
    let answer = collector.traces().export(request).await.expect("accepted").into_inner();
    assert_eq!(answer.partial_success, None);

    let (status, trace) = collector.get_json(&format!("/api/v1/traces/{}", trace_hex(1))).await;
    assert_eq!(status, 200, "{trace}");
    let spans = trace["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0]["name"], "GET /cart");
    assert_eq!(spans[1]["parent_span_id"], spans[0]["span_id"]);
    assert_eq!(spans[1]["status_code"], "STATUS_CODE_ERROR");
    assert_eq!(spans[1]["attributes"]["rpc.method"], "Multiply");

    let (_, list) = collector.get_json("/api/v1/traces?service=checkout").await;
    let summary = &list["traces"][0];
    assert_eq!(summary["trace_id"], trace_hex(1));
    assert_eq!((summary["root_name"].as_str(), summary["span_count"].as_u64()), (Some("GET /cart"), Some(2)));
    assert_eq!(summary["error"], true);

    let exposition = collector.exposition().await;
    let labels = [
        ("service_name", "checkout"),
        ("span_name", "Multiply"),
        ("span_kind", "SPAN_KIND_CLIENT"),
        ("status_code", "STATUS_CODE_ERROR"),
    ];
    assert_eq!(exposition.value("traces_span_metrics_calls_total", &labels), Some(1.0), "{exposition}");
    let within_5ms = [labels.as_slice(), &[("le", "0.005")]].concat();
    assert_eq!(exposition.value("traces_span_metrics_duration_seconds_bucket", &within_5ms), Some(1.0));
    let within_2_5ms = [labels.as_slice(), &[("le", "0.0025")]].concat();
    assert_eq!(exposition.value("traces_span_metrics_duration_seconds_bucket", &within_2_5ms), Some(0.0));
    collector.stop().await;
}

#[tokio::test]
async fn otlp_http_accepts_protobuf_json_and_gzip_and_answers_in_the_same_encoding() {
    let collector = spawn_collector().await;
    let body = traces("web", vec![span(2, 1, None, "protobuf", 1, false)]).encode_to_vec();
    let (status, headers, answer) =
        collector.post("/v1/traces", &[("content-type", "application/x-protobuf")], body.clone()).await;
    assert_eq!((status, headers["content-type"].to_str().ok()), (200, Some("application/x-protobuf")));
    assert_eq!(ExportTraceServiceResponse::decode(answer).expect("protobuf answer").partial_success, None);

    let gzipped = traces("web", vec![span(3, 1, None, "gzip", 1, false)]).encode_to_vec();
    let headers = [("content-type", "application/x-protobuf"), ("content-encoding", "gzip")];
    let (status, _, _) = collector.post("/v1/traces", &headers, gzip(&gzipped)).await;
    assert_eq!(status, 200);

    let json = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace_hex(4), "spanId": "0102030405060708", "name": "json", "kind": 2,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000005000000",
            "someFutureField": {"ignored": true}
        }]}]
    }]});
    let (status, headers, answer) = collector
        .post("/v1/traces", &[("content-type", "application/json")], serde_json::to_vec(&json).expect("json"))
        .await;
    assert_eq!((status, headers["content-type"].to_str().ok()), (200, Some("application/json")));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&answer).expect("json answer"), serde_json::json!({}));

    for (trace, name) in [(2, "protobuf"), (3, "gzip"), (4, "json")] {
        let (status, found) = collector.get_json(&format!("/api/v1/traces/{}", trace_hex(trace))).await;
        assert_eq!(status, 200, "{name}: {found}");
        assert_eq!(found["spans"][0]["name"], name);
    }
    let (_, json_trace) = collector.get_json(&format!("/api/v1/traces/{}", trace_hex(4))).await;
    assert_eq!(json_trace["spans"][0]["span_id"], "0102030405060708");
    assert_eq!(json_trace["spans"][0]["kind"], "SPAN_KIND_SERVER");
    assert_eq!(json_trace["spans"][0]["end_time_unix_nano"], 1_700_000_000_005_000_000_u64);
    collector.stop().await;
}

#[tokio::test]
async fn spans_with_invalid_ids_are_reported_through_partial_success_and_the_rest_kept() {
    let collector = spawn_collector().await;
    let mut bad = span(5, 2, None, "bad", 1, false);
    bad.trace_id = vec![0; 16];
    let request = traces("shop", vec![span(5, 1, None, "good", 1, false), bad.clone()]);
    let answer = collector.traces().export(request.clone()).await.expect("accepted").into_inner();
    let partial = answer.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("trace_id"), "{}", partial.error_message);

    let mut over_http = request.clone();
    over_http.resource_spans[0].scope_spans[0].spans[0].trace_id = trace_id(6).to_vec();
    let (status, _, body) =
        collector.post("/v1/traces", &[("content-type", "application/x-protobuf")], over_http.encode_to_vec()).await;
    assert_eq!(status, 200);
    let partial = ExportTraceServiceResponse::decode(body).expect("answer").partial_success.expect("partial");
    assert_eq!(partial.rejected_spans, 1);

    for trace in [5, 6] {
        let (_, found) = collector.get_json(&format!("/api/v1/traces/{}", trace_hex(trace))).await;
        assert_eq!(found["spans"].as_array().map(Vec::len), Some(1), "only the valid span is kept: {found}");
    }
    collector.stop().await;
}

#[tokio::test]
async fn an_empty_request_is_accepted_with_nothing_to_report() {
    let collector = spawn_collector().await;
    let answer = collector.traces().export(ExportTraceServiceRequest::default()).await.expect("accepted");
    assert_eq!(answer.into_inner().partial_success, None);
    collector.stop().await;
}

#[tokio::test]
async fn logs_are_queryable_by_trace_and_metrics_are_re_exposed() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
    };

    let collector = spawn_collector().await;
    let record = |body: &str, time: u64| LogRecord {
        time_unix_nano: time,
        severity_text: "ERROR".into(),
        severity_number: 17,
        body: Some(AnyValue { value: Some(any_value::Value::StringValue(body.into())) }),
        trace_id: trace_id(7).to_vec(),
        span_id: 9u64.to_be_bytes().to_vec(),
        attributes: vec![string_attribute("payment.id", "p-1")],
        ..LogRecord::default()
    };
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("payments"),
            scope_logs: vec![ScopeLogs {
                log_records: vec![record("second", 2_000), record("first", 1_000)],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let answer = collector.logs().export(logs).await.expect("logs accepted").into_inner();
    assert_eq!(answer.partial_success, None);
    let (status, found) = collector.get_json(&format!("/api/v1/logs?trace_id={}", trace_hex(7))).await;
    assert_eq!(status, 200);
    let bodies: Vec<_> = found["logs"].as_array().expect("logs").iter().map(|entry| entry["body"].clone()).collect();
    assert_eq!(bodies, ["first", "second"], "sorted by time: {found}");
    assert_eq!(found["logs"][0]["service"], "payments");
    assert_eq!(found["logs"][0]["span_id"], "0000000000000009");
    assert_eq!(found["logs"][0]["attributes"]["payment.id"], "p-1");

    let point = |value: i64| NumberDataPoint {
        attributes: vec![string_attribute("queue", "orders")],
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(number_data_point::Value::AsInt(value)),
        ..NumberDataPoint::default()
    };
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("payments"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "orders.processed".into(),
                    unit: "{order}".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![point(41)],
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                        is_monotonic: true,
                    })),
                    ..Metric::default()
                }],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    };
    for _ in 0..2 {
        let answer = collector.metrics().export(metrics.clone()).await.expect("metrics accepted").into_inner();
        assert_eq!(answer.partial_success, None);
    }
    let exposition = collector.exposition().await;
    let labels = [("job", "payments"), ("queue", "orders")];
    assert_eq!(exposition.value("orders_processed_total", &labels), Some(82.0), "deltas add up: {exposition}");
    collector.stop().await;
}
