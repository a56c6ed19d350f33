"""Fixtures: the real binaries on free loopback ports (the api alone, the collector alone, and the
api + collector + ui-gateway wired together), and Python stubs generated from proto/."""

import dataclasses
import os
import pathlib
import sys

import grpc
import pytest
from axiom25_testkit import launch

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """Modules generated from proto/ with grpcio-tools (never committed)."""
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("generated")
    proto_root = ROOT / "proto"
    source = proto_root / "axiom25/matrix/v1/matrix.proto"
    includes = pathlib.Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        ["protoc", f"-I{proto_root}", f"-I{includes}", f"--python_out={out}", f"--grpc_python_out={out}", str(source)]
    )
    assert code == 0, "protoc failed"
    sys.path.insert(0, str(out))
    from axiom25.matrix.v1 import matrix_pb2, matrix_pb2_grpc

    return matrix_pb2, matrix_pb2_grpc


def stopped_cleanly(service):
    assert service.stop() == 0, "the service did not exit cleanly on SIGTERM"


@pytest.fixture(scope="session")
def api_address():
    """Starts the api binary (AXIOM25_API_BIN, default the debug build) and yields host:port."""
    api = launch(os.environ.get("AXIOM25_API_BIN", ROOT / "target/debug/axiom25-api"))
    try:
        yield api.address("grpc")
    finally:
        stopped_cleanly(api)


@pytest.fixture(scope="module")
def collector():
    """Starts the collector binary (AXIOM25_COLLECTOR_BIN, default the debug build); yields its ports."""
    binary = os.environ.get("AXIOM25_COLLECTOR_BIN", ROOT / "target/debug/axiom25-telemetry-collector")
    collector = launch(binary, ports=("grpc", "http", "admin"))
    try:
        yield {key: collector.port(key) for key in ("grpc", "http", "admin")}
    finally:
        stopped_cleanly(collector)


@pytest.fixture(scope="session")
def stub(pb, api_address):
    _, matrix_pb2_grpc = pb
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    channel = grpc.insecure_channel(api_address, options=options)
    grpc.channel_ready_future(channel).result(timeout=20)
    yield matrix_pb2_grpc.MatrixServiceStub(channel)
    channel.close()


def telemetry_env(collector_grpc_port):
    """Every trace sampled and exported to the collector within a fraction of a second."""
    return {
        "AXIOM25__TELEMETRY__OTLP_ENDPOINT": f"http://127.0.0.1:{collector_grpc_port}",
        "AXIOM25__TELEMETRY__SAMPLING_RATIO": "1.0",
        "AXIOM25__TELEMETRY__EXPORT_INTERVAL_MS": "100",
    }


@dataclasses.dataclass(frozen=True)
class Gateway:
    """A running ui-gateway: its public base URL (no trailing slash) and its collector's admin URL."""

    url: str
    collector_url: str
    admin_url: str


@pytest.fixture(scope="module")
def gateway(collector):
    """Starts an api and a ui-gateway (AXIOM25_GATEWAY_BIN, default the debug build) that both
    export every trace to the module's collector; the gateway's rate limit is off."""
    api_binary = os.environ.get("AXIOM25_API_BIN", ROOT / "target/debug/axiom25-api")
    gateway_binary = os.environ.get("AXIOM25_GATEWAY_BIN", ROOT / "target/debug/axiom25-ui-gateway")
    telemetry = telemetry_env(collector["grpc"])
    api = launch(api_binary, telemetry)
    try:
        collector_url = f"http://127.0.0.1:{collector['admin']}"
        gateway = launch(
            gateway_binary,
            {
                "AXIOM25__API__ENDPOINT": api.url("grpc"),
                "AXIOM25__OPS__COLLECTOR_ENDPOINT": collector_url,
                "AXIOM25__OPS__POLL_INTERVAL_MS": "500",
                "AXIOM25__RATE_LIMIT__REQUESTS_PER_SECOND": "0",
                **telemetry,
            },
            ports=("http", "admin"),
        )
        try:
            yield Gateway(url=gateway.url("http"), collector_url=collector_url, admin_url=gateway.url("admin"))
        finally:
            stopped_cleanly(gateway)
    finally:
        stopped_cleanly(api)
