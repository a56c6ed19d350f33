"""The services' log records over OTLP, with the real binaries: an api call made with a traceparent
leaves the api's log line for that trace in the collector's logs query and in the gateway's trace
view, and the line still queued when the api stops is flushed on its way out."""

import html
import os
import re
import secrets
import time

import grpc
import pytest
from axiom25_testkit import launch, request, samples

from conftest import ROOT, stopped_cleanly, telemetry_env

API_BINARY = os.environ.get("AXIOM25_API_BIN", ROOT / "target/debug/axiom25-api")
GATEWAY_BINARY = os.environ.get("AXIOM25_GATEWAY_BIN", ROOT / "target/debug/axiom25-ui-gateway")
# The RED middleware writes one debug line per finished call, in the call's span.
CALL_LOG = {"AXIOM25__TELEMETRY__LOG_LEVEL": "info,axiom25_observability=debug"}


def multiply_with_trace(pb, address):
    """One Multiply call carrying a fresh sampled traceparent; the trace id."""
    matrix_pb2, matrix_pb2_grpc = pb
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    with grpc.insecure_channel(address) as channel:
        stub = matrix_pb2_grpc.MatrixServiceStub(channel)
        one = matrix_pb2.Matrix(rows=1, cols=1, data=[2.0])
        stub.Multiply(
            matrix_pb2.MultiplyRequest(a=one, b=one),
            metadata=(("traceparent", f"00-{trace_id}-{parent_id}-01"),),
            timeout=20,
        )
    return trace_id


def api_call_logs(collector_admin, trace_id, timeout=20):
    """The api's `Call finished` records of `trace_id` in the collector's logs query, once there."""
    deadline = time.monotonic() + timeout
    while True:
        answer = request(f"http://127.0.0.1:{collector_admin}/api/v1/logs?trace_id={trace_id}", timeout=10)
        assert answer.status == 200, answer.text
        found = [log for log in answer.json()["logs"] if log["service"] == "api" and log["body"] == "Call finished"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def api_server_spans(collector_admin, trace_id, timeout=20):
    """The api's server spans of `trace_id` in the collector, once there (spans and log records
    travel in separate batches)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = request(f"http://127.0.0.1:{collector_admin}/api/v1/traces/{trace_id}", timeout=10)
        spans = answer.json()["spans"] if answer.status == 200 else []
        found = [span for span in spans if span["service"] == "api" and span["kind"] == "SPAN_KIND_SERVER"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api_and_gateway(collector):
    """An api that exports its spans and debug log lines to the module's collector, and a gateway
    whose /ops view reads that collector."""
    api = launch(API_BINARY, {**telemetry_env(collector["grpc"]), **CALL_LOG})
    try:
        gateway = launch(
            GATEWAY_BINARY,
            {
                "AXIOM25__API__ENDPOINT": api.url("grpc"),
                "AXIOM25__OPS__COLLECTOR_ENDPOINT": f"http://127.0.0.1:{collector['admin']}",
                "AXIOM25__RATE_LIMIT__REQUESTS_PER_SECOND": "0",
            },
            ports=("http", "admin"),
        )
        try:
            yield api, gateway
        finally:
            stopped_cleanly(gateway)
    finally:
        stopped_cleanly(api)


def test_the_api_log_line_of_a_traced_call_is_in_the_collector_and_the_trace_view(pb, collector, api_and_gateway):
    api, gateway = api_and_gateway
    trace_id = multiply_with_trace(pb, api.address("grpc"))

    logs = api_call_logs(collector["admin"], trace_id)
    assert len(logs) == 1, logs
    record = logs[0]
    assert record["trace_id"] == trace_id and re.fullmatch("[0-9a-f]{16}", record["span_id"]), record
    assert record["severity_text"] == "DEBUG"
    assert record["attributes"]["rpc.grpc.status_code"] == 0, record
    server = api_server_spans(collector["admin"], trace_id)
    assert [span["span_id"] for span in server] == [record["span_id"]], "the line belongs to the server span"

    page = request(f"{gateway.url('http')}/ops/traces/{trace_id}", timeout=10)
    assert page.status == 200, page.text
    section = page.text[page.text.index('id="logs"') :]
    rows = [
        [html.unescape(re.sub("<[^>]+>", "", cell)) for cell in re.findall("<td[^>]*>(.*?)</td>", row)]
        for row in re.findall('<tr class="log">(.*?)</tr>', section)
    ]
    assert [row[1:4] for row in rows] == [["DEBUG", "api", "Call finished"]], section
    assert "rpc.grpc.status_code=0" in rows[0][4].split(), section

    exposition = request(f"{api.url('admin')}/metrics", timeout=10).text
    assert sum(samples(exposition, "axiom25_telemetry_logs_exported_total")) >= 1, exposition
    assert not samples(exposition, "axiom25_telemetry_logs_dropped_total", reason="queue_full"), exposition


def test_a_log_line_still_queued_when_the_api_stops_is_flushed_to_the_collector(pb, collector):
    # No periodic export during the test: only the shutdown flush can deliver the line.
    env = {**telemetry_env(collector["grpc"]), **CALL_LOG, "AXIOM25__TELEMETRY__EXPORT_INTERVAL_MS": "3600000"}
    api = launch(API_BINARY, env)
    try:
        trace_id = multiply_with_trace(pb, api.address("grpc"))
        assert api_call_logs(collector["admin"], trace_id, timeout=1) == [], "exported before the flush"
    finally:
        stopped_cleanly(api)
    logs = api_call_logs(collector["admin"], trace_id, timeout=5)
    assert [log["trace_id"] for log in logs] == [trace_id], logs
