"""The Python test kit against stand-ins it starts itself: a fake service script, a local HTTP
server, this very process."""

import http.server
import os
import sys
import textwrap
import threading
import time

import pytest

from axiom25_testkit import launch, parse_exposition, request, samples, usage

EXPOSITION = textwrap.dedent(
    """\
    # HELP http_server_request_duration_seconds Duration.
    # TYPE http_server_request_duration_seconds histogram
    http_server_request_duration_seconds_bucket{http_route="/api/v1/matrix/{op}",http_request_method="POST",le="0.1"} 3
    http_server_request_duration_seconds_bucket{http_route="/api/v1/matrix/{op}",http_request_method="POST",le="+Inf"} 4
    http_server_request_duration_seconds_count{http_route="/api/v1/matrix/{op}",http_request_method="POST"} 4
    http_server_request_duration_seconds_sum{http_route="/api/v1/matrix/{op}",http_request_method="POST"} 0.5
    http_server_request_duration_seconds_count{http_route="/livez",http_request_method="GET"} 2
    http_server_request_duration_seconds_sum{http_route="/livez",http_request_method="GET"} 0.1
    # TYPE traces_span_metrics_calls_total counter
    traces_span_metrics_calls_total{service_name="api",status_code="STATUS_CODE_ERROR"} 1
    traces_span_metrics_calls_total{service_name="api",status_code="STATUS_CODE_UNSET"} 10
    """
)

# A stand-in service: /readyz answers 503 twice, then 200; it logs a non-JSON line, then the
# Listening line with its ports, and exits 0 on SIGTERM (bounded: 30 s at most).
FAKE_SERVICE = textwrap.dedent(
    """\
    import http.server, json, os, signal, sys, threading
    reads = []
    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            reads.append(1)
            self.send_response(200 if len(reads) > 2 else 503)
            self.end_headers()
        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", int(os.environ["AXIOM25__SERVER__ADMIN_PORT"])), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("plain text", flush=True)
    print(json.dumps({"message": "Listening", "host": os.environ["AXIOM25__SERVER__HOST"],
                      "grpc_port": int(os.environ["AXIOM25__SERVER__GRPC_PORT"]) + 4321,
                      "admin_port": server.server_address[1], "extra": os.environ.get("EXTRA")}), flush=True)
    threading.Event().wait(30)
    """
)


def script(tmp_path, source):
    path = tmp_path / "service"
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)
    return path


def test_labels_are_matched_as_a_subset_even_when_a_value_holds_braces():
    exposition = parse_exposition(EXPOSITION)
    route = "/api/v1/matrix/{op}"
    assert exposition.value("http_server_request_duration_seconds_bucket", http_route=route, le="+Inf") == 4
    assert exposition.sum("http_server_request_duration_seconds_count") == 6
    assert exposition.sum("http_server_request_duration_seconds_count", http_request_method="GET") == 2
    assert exposition.value("http_server_request_duration_seconds_count", http_route="/nope") is None
    assert samples(EXPOSITION, "traces_span_metrics_calls_total", status_code="STATUS_CODE_ERROR") == [1]
    assert samples(EXPOSITION, "traces_span_metrics_calls_total", service_name="api") == [1, 10]


def test_launch_reads_the_ports_of_the_listening_line_and_waits_until_ready(tmp_path):
    with launch(script(tmp_path, FAKE_SERVICE), {"EXTRA": "yes"}) as service:
        assert service.listening["host"] == "127.0.0.1"
        assert service.listening["extra"] == "yes"
        assert service.port("grpc") == 4321, "the grpc port was set to 0"
        assert request(f"{service.url('admin')}/readyz").status == 200, "launch returned only once ready"
    assert service.process.returncode == 0, "stopped with SIGTERM"


def test_launch_fails_for_a_binary_that_exits_before_listening(tmp_path):
    with pytest.raises(RuntimeError, match="before listening"):
        launch(script(tmp_path, "print('starting')\nraise SystemExit(3)"))


def test_launch_fails_in_time_for_a_silent_binary(tmp_path):
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="before listening"):
        launch(script(tmp_path, "import time\ntime.sleep(20)"), timeout=0.5)
    assert time.monotonic() - started < 5


def test_request_answers_error_statuses_with_their_headers_and_body():
    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            self.send_response(422)
            self.send_header("content-type", self.headers["content-type"])
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = request(f"http://127.0.0.1:{server.server_address[1]}/x", "POST", {"a": [[1]]})
    finally:
        server.shutdown()
    assert answer.status == 422
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"a": [[1]]}


def test_usage_follows_the_process_cpu_clock_and_resident_memory():
    before = usage(os.getpid())
    clock, started = time.process_time(), time.monotonic()
    # Bounded: until the kernel's CPU clock counts 200 ms, for at most 10 s on a busy machine.
    while time.process_time() - clock < 0.2 and time.monotonic() - started < 10:
        pass
    used = time.process_time() - clock
    touched = bytearray(b"\x01" * (64 << 20))
    after = usage(os.getpid())
    # /proc counts in 10 ms ticks: allow two of them.
    assert after.cpu_seconds - before.cpu_seconds >= used - 0.02
    assert after.resident_bytes - before.resident_bytes >= 48 << 20
    del touched
