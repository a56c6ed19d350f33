"""Fixtures: the real api binary on free loopback ports, and Python stubs generated from proto/."""

import json
import os
import pathlib
import subprocess
import sys
import threading

import grpc
import pytest

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


@pytest.fixture(scope="session")
def api_address():
    """Starts the api binary (AXIOM25_API_BIN, default the debug build) and yields host:port."""
    binary = os.environ.get("AXIOM25_API_BIN", str(ROOT / "target/debug/axiom25-api"))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AXIOM25__SERVER__HOST": "127.0.0.1",
        "AXIOM25__SERVER__GRPC_PORT": "0",
        "AXIOM25__SERVER__ADMIN_PORT": "0",
    }
    process = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, text=True)
    port = None
    for line in process.stdout:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "Listening":
            port = entry["grpc_port"]
            break
    assert port is not None, "the api exited before listening"
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, "the api did not exit cleanly on SIGTERM"


@pytest.fixture(scope="session")
def stub(pb, api_address):
    _, matrix_pb2_grpc = pb
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    channel = grpc.insecure_channel(api_address, options=options)
    grpc.channel_ready_future(channel).result(timeout=20)
    yield matrix_pb2_grpc.MatrixServiceStub(channel)
    channel.close()
