#!/usr/bin/env python3
"""Runs the ui-gateway benchmarks and writes docs/benchmarks/gateway.md.

    make bench-gateway      (= .venv/bin/python tools/bench/gateway_report.py)

1. `cargo bench -p axiom25-ui-gateway --bench gateway`: a 16×16 Multiply through the REST API
   against the same call straight to the api over gRPC, same run, same concurrency, release builds
   (benches/gateway.rs documents the method), and CPU per REST call of the gateway at a steady
   80 calls/s against a bare tonic server's per gRPC call (the floor), same run;
2. page weight and render time of `/` in headless Chromium (tools/bench/gateway_page.py) against
   a release gateway in front of a release api.
"""

import json
import os
import pathlib
import platform
import subprocess
import sys

from axiom25_testkit import launch

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "docs/benchmarks/gateway.md"
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def run(command, **kwargs):
    print("+", " ".join(command), file=sys.stderr, flush=True)
    return subprocess.run(command, cwd=ROOT, check=True, **kwargs)


def page_weight():
    with launch(TARGET / "release/axiom25-api") as api:
        gateway_env = {"AXIOM25__API__ENDPOINT": api.url("grpc"), "AXIOM25__OPS__COLLECTOR_ENDPOINT": ""}
        with launch(TARGET / "release/axiom25-ui-gateway", gateway_env, ports=("http", "admin")) as gateway:
            output = run([sys.executable, "tools/bench/gateway_page.py", "--url", f"{gateway.url('http')}/", "--runs", "20"],
                         capture_output=True, text=True).stdout
            return json.loads(output)


def verdict(bench):
    single = next(result for result in bench["results"] if result["concurrency"] == 1)
    added = single["rest"]["p50_ms"] - single["grpc"]["p50_ms"]
    ratio = max(r["rest"]["throughput_per_s"] for r in bench["results"]) / max(
        r["grpc"]["throughput_per_s"] for r in bench["results"])
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    return (
        f"Against the targets: added p50 at one client {added:.3f} ms (≤ 0.15 ms: {met(added <= 0.15)}); "
        f"throughput {ratio:.2f}× direct (≥ 0.7×: {met(ratio >= 0.7)}). On this machine the REST path "
        "runs three processes on two cores (client, gateway, api) where the direct path runs two, so "
        "the throughput ratio is bounded by the gateway's CPU per call against the api's."
    )


def steady_section(steady):
    ratio = steady["gateway_over_bare"]
    return [
        f"## Gateway CPU per REST call against the floor (16x16 Multiply, steady {steady['rate_per_s']} calls/s)",
        "",
        f"One client, {steady['calls']:.0f} calls on each path in alternating rounds; CPU is utime+stime of each",
        "process from `/proc`. The floor is `axiom25-bare-tonic` (services/api/benches/peer/bare_tonic.rs): tonic's",
        "default server on the same proto, no layers, no telemetry. Target: gateway ≤ 2× the bare server's CPU per",
        "gRPC call.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| gateway CPU per REST call | {steady['gateway_cpu_us_per_rest_call']:.0f} µs |",
        f"| api CPU per REST call (behind the gateway) | {steady['api_cpu_us_per_rest_call']:.0f} µs |",
        f"| bare tonic CPU per gRPC call | {steady['bare_cpu_us_per_grpc_call']:.0f} µs |",
        f"| gateway / bare | {ratio:.2f}× ({'met' if ratio <= 2 else '**not met**'}) |",
        f"| REST p50 / bare gRPC p50 | {steady['rest_p50_ms']:.3f} ms / {steady['bare_grpc_p50_ms']:.3f} ms |",
        "",
    ]


def main():
    run(["cargo", "build", "--release", "--locked", "-p", "axiom25-api", "--features", "axiom25-api/bare-tonic",
         "-p", "axiom25-ui-gateway"])
    env = {**os.environ, "AXIOM25_API_BIN": str(TARGET / "release/axiom25-api"),
           "AXIOM25_BARE_TONIC_BIN": str(TARGET / "release/axiom25-bare-tonic")}
    run(["cargo", "bench", "--locked", "-p", "axiom25-ui-gateway", "--bench", "gateway"], env=env)
    bench = json.loads((ROOT / "target/bench/gateway.json").read_text())  # benches/gateway.rs writes there
    page = page_weight()

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        "# ui-gateway benchmarks",
        "",
        "Produced by `make bench-gateway` (`tools/bench/gateway_report.py`), release builds, loopback,",
        f"{bench['cpus']} cores ({cpu}) shared by the load generator, the gateway and the api.",
        "",
        f"## REST through the gateway vs gRPC straight to the api ({bench['matrix']} Multiply)",
        "",
        "`cargo bench -p axiom25-ui-gateway --bench gateway`. Per concurrency level, "
        f"{bench['rounds']} alternating rounds of {bench['calls_per_round']} calls on each path, each client",
        "with its own connection (HTTP/1.1 keep-alive to the gateway, HTTP/2 to the api); latency is the",
        "client's, from sending the request to the last byte of the answer. The gateway answers JSON,",
        "the api protobuf. Targets: added p50 ≤ 0.15 ms, REST throughput ≥ 0.7× direct.",
        "",
        "| clients | gRPC p50 | REST p50 | added p50 | gRPC p99 | REST p99 | gRPC calls/s | REST calls/s | REST / gRPC | gateway CPU per call |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in bench["results"]:
        grpc, rest = result["grpc"], result["rest"]
        lines.append(
            f"| {result['concurrency']} | {grpc['p50_ms']:.3f} ms | {rest['p50_ms']:.3f} ms | "
            f"{rest['p50_ms'] - grpc['p50_ms']:+.3f} ms | {grpc['p99_ms']:.3f} ms | {rest['p99_ms']:.3f} ms | "
            f"{grpc['throughput_per_s']:,.0f} | {rest['throughput_per_s']:,.0f} | "
            f"{rest['throughput_per_s'] / grpc['throughput_per_s']:.2f}× | {result['gateway_cpu_us_per_call']:.0f} µs |"
        )
    peak_grpc = max(result["grpc"]["throughput_per_s"] for result in bench["results"])
    peak_rest = max(result["rest"]["throughput_per_s"] for result in bench["results"])
    rss = max(result["gateway_rss_kib"] for result in bench["results"]) / 1024
    lines += [
        "",
        f"Maximum throughput over the levels: gRPC {peak_grpc:,.0f} calls/s, REST {peak_rest:,.0f} calls/s "
        f"({peak_rest / peak_grpc:.2f}×). Gateway RSS after the run: {rss:.1f} MiB.",
        "",
        verdict(bench),
        "",
        *steady_section(bench["steady"]),
        "## Page weight and render time of `/`",
        "",
        f"`tools/bench/gateway_page.py`, {page['browser']}, {page['runs']} cold loads. Target: < 100 KB.",
        "",
        "| resource | on the wire | body |",
        "|---|---|---|",
    ]
    for entry in [page["page"], *page["resources"]]:
        name = entry["name"].split("/", 3)[-1]
        lines.append(f"| `/{name}` | {entry['transfer_bytes']:,} B | {entry['decoded_body_bytes']:,} B |")
    total = page["total"]
    lines += [
        f"| **total ({total['requests']} requests)** | **{total['transfer_bytes']:,} B** | **{total['decoded_body_bytes']:,} B** |",
        "",
        f"DOMContentLoaded: median {page['dom_content_loaded_ms']['median']} ms "
        f"(min {page['dom_content_loaded_ms']['min']}, max {page['dom_content_loaded_ms']['max']}); "
        f"load event: median {page['load_ms']['median']} ms "
        f"(min {page['load_ms']['min']}, max {page['load_ms']['max']}).",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
