"""The OpenTelemetry Python SDK and its OTLP exporters (gRPC and HTTP), clients no one here wrote,
against the real collector binary: what they send must appear in the query API and on /metrics
with the right names, labels and values."""

import logging

import pytest
from axiom25_testkit import request, samples
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

TRANSPORTS = ["grpc", "http"]


def exporters(transport, ports):
    """Span, log and metric exporters of one transport, aimed at the collector."""
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = f"http://127.0.0.1:{ports['grpc']}"
        return (
            OTLPSpanExporter(endpoint=endpoint, insecure=True),
            OTLPLogExporter(endpoint=endpoint, insecure=True),
            OTLPMetricExporter(endpoint=endpoint, insecure=True),
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = f"http://127.0.0.1:{ports['http']}"
    return (
        OTLPSpanExporter(endpoint=f"{base}/v1/traces"),
        OTLPLogExporter(endpoint=f"{base}/v1/logs"),
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
    )


def get(ports, path):
    answer = request(f"http://127.0.0.1:{ports['admin']}{path}", timeout=10)
    assert answer.status == 200, (path, answer.status, answer.text)
    return answer.json() if path.startswith("/api/") else answer.text


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_python_sdk_traces_reach_the_query_api_and_span_metrics(collector, transport):
    service = f"py-traces-{transport}"
    span_exporter, _, _ = exporters(transport, collector)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    tracer = provider.get_tracer("interop")
    with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as parent:
        parent.set_attributes({"http.route": "/checkout", "retries": 2, "ratio": 0.5, "cached": True})
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "card declined"))
        trace_id = format(parent.get_span_context().trace_id, "032x")
    provider.shutdown()

    listed = get(collector, f"/api/v1/traces?service={service}")["traces"]
    assert [t["trace_id"] for t in listed] == [trace_id]
    assert listed[0]["root_name"] == "GET /checkout" and listed[0]["span_count"] == 2 and listed[0]["error"]

    spans = {s["name"]: s for s in get(collector, f"/api/v1/traces/{trace_id}")["spans"]}
    parent, child = spans["GET /checkout"], spans["charge card"]
    assert child["parent_span_id"] == parent["span_id"] and parent["parent_span_id"] == ""
    assert (parent["kind"], child["kind"]) == ("SPAN_KIND_SERVER", "SPAN_KIND_CLIENT")
    assert (child["status_code"], child["status_message"]) == ("STATUS_CODE_ERROR", "card declined")
    assert parent["attributes"] == {"http.route": "/checkout", "retries": 2, "ratio": 0.5, "cached": True}
    assert parent["service"] == service
    assert parent["end_time_unix_nano"] >= child["end_time_unix_nano"] > child["start_time_unix_nano"]

    exposition = get(collector, "/metrics")
    labels = {"service_name": service, "span_name": "charge card", "span_kind": "SPAN_KIND_CLIENT"}
    assert samples(exposition, "traces_span_metrics_calls_total", status_code="STATUS_CODE_ERROR", **labels) == [1]
    assert samples(exposition, "traces_span_metrics_duration_seconds_count", **labels) == [1]
    assert samples(exposition, "traces_span_metrics_duration_seconds_bucket", le="+Inf", **labels) == [1]


@pytest.mark.parametrize("transport", TRANSPORTS)
# LoggingHandler is the SDK's documented bridge from `logging` in this release; its successor lives in
# another package (opentelemetry-instrumentation-logging).
@pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated:DeprecationWarning")
def test_python_sdk_logs_are_queryable_by_their_trace(collector, transport):
    service = f"py-logs-{transport}"
    span_exporter, log_exporter, _ = exporters(transport, collector)
    resource = Resource.create({"service.name": service})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    logger = logging.getLogger(f"interop.{transport}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
    logger.addHandler(handler)
    try:
        with tracer_provider.get_tracer("interop").start_as_current_span("with logs") as span:
            logger.warning("payment retried", extra={"attempt": 2})
            logger.info("payment settled")
            trace_id = format(span.get_span_context().trace_id, "032x")
            span_id = format(span.get_span_context().span_id, "016x")
    finally:
        logger.removeHandler(handler)
        logger_provider.shutdown()
        tracer_provider.shutdown()

    logs = get(collector, f"/api/v1/logs?trace_id={trace_id}")["logs"]
    assert [entry["body"] for entry in logs] == ["payment retried", "payment settled"]
    first = logs[0]
    assert first["severity_text"] in ("WARN", "WARNING")
    assert (first["service"], first["trace_id"], first["span_id"]) == (service, trace_id, span_id)
    assert first["attributes"]["attempt"] == 2
    assert logs[0]["time_unix_nano"] <= logs[1]["time_unix_nano"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_python_sdk_metrics_are_re_exposed_with_prometheus_names(collector, transport):
    service = f"py-metrics-{transport}"
    _, _, metric_exporter = exporters(transport, collector)
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": service}), metric_readers=[reader])
    meter = provider.get_meter("interop")
    meter.create_counter("interop.requests", unit="{request}").add(3, {"route": "/x"})
    duration = meter.create_histogram("interop.duration", unit="s")
    duration.record(0.004, {"route": "/x"})
    duration.record(0.3, {"route": "/x"})
    queue = meter.create_up_down_counter("interop.queue.depth")
    queue.add(5)
    queue.add(-2)
    provider.force_flush()
    provider.shutdown()

    exposition = get(collector, "/metrics")
    assert samples(exposition, "interop_requests_total", job=service, route="/x") == [3]
    assert samples(exposition, "interop_duration_seconds_count", job=service, route="/x") == [2]
    assert samples(exposition, "interop_duration_seconds_sum", job=service, route="/x") == [pytest.approx(0.304)]
    # The SDK's default boundaries start 0, 5, 10, …: both values are within le="5".
    assert samples(exposition, "interop_duration_seconds_bucket", job=service, le="0") == [0]
    assert samples(exposition, "interop_duration_seconds_bucket", job=service, le="5") == [2]
    assert samples(exposition, "interop_queue_depth", job=service) == [3]
    assert f"# TYPE interop_requests_total counter" in exposition
    assert f"# TYPE interop_duration_seconds histogram" in exposition
    assert f"# TYPE interop_queue_depth gauge" in exposition
