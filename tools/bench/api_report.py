#!/usr/bin/env python3
"""Runs the api benchmarks and writes docs/benchmarks/api.md.

    make bench            (= .venv/bin/python tools/bench/api_report.py)

1. criterion benches of every operation at 8, 64, 256, 512 (`cargo bench --bench linalg`), once with
   one thread per computation (the service default) and once with every core;
2. numpy (OpenBLAS) on the same kinds of matrices, same threads, same run;
3. the service bench (`cargo bench --features bare-tonic --bench service`): start to SERVING, idle
   RSS, and CPU per call of the api against a bare tonic server on the same proto, same run.

    .venv/bin/python tools/bench/api_report.py --service-only

reruns only the service bench and rewrites only the "## Service" section of the report.
"""

import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import timeit

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRITERION = ROOT / "target/criterion"
OUT = ROOT / "docs/benchmarks/api.md"
OPS = ["multiply", "solve", "solve_vector", "solve_tall", "invert", "determinant", "decompose_lu", "decompose_qr",
       "decompose_cholesky", "decompose_svd", "decompose_eigen", "analyze"]
COMPARED = ["multiply", "solve", "invert"]
SIZES = [8, 64, 256, 512]
CORES = os.cpu_count() or 1

NUMPY_SNIPPET = r"""
import json, sys, timeit
import numpy as np
rng = np.random.default_rng(7)
out = {}
for n in (256, 512):
    a = rng.random((n, n)) - 0.5 + n * np.eye(n)
    b = rng.random((n, n)) - 0.5
    cases = {"multiply": lambda: a @ b, "solve": lambda: np.linalg.solve(a, b), "invert": lambda: np.linalg.inv(a)}
    for name, fn in cases.items():
        fn()
        number = max(1, int(0.2 / max(timeit.timeit(fn, number=1), 1e-6)))
        runs = timeit.repeat(fn, number=number, repeat=7)
        out[f"{name}/{n}"] = sorted(r / number for r in runs)[len(runs) // 2]
json.dump(out, sys.stdout)
"""


def run(command, env=None):
    print("+", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})}, check=True)


def criterion_seconds(group, n, baseline):
    path = CRITERION / group / str(n) / baseline / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"] / 1e9


def numpy_seconds(threads):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run([sys.executable, "-c", NUMPY_SNIPPET], env=env, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def blas_name():
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        return "unknown BLAS"


def fmt_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


SERVICE_HEADING = "## Service"


def service_section():
    run(["cargo", "bench", "--locked", "-p", "axiom25-api", "--features", "bare-tonic", "--bench", "service"])
    service = json.loads((ROOT / "target/bench/service.json").read_text())
    s = service["start_to_serving_ms"]
    big, small = service["multiply_64_in_flight"]["case"], service["multiply_16_steady"]["case"]
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines = [
        f"{SERVICE_HEADING} against its floor (`cargo bench -p axiom25-api --features bare-tonic --bench service`)",
        "",
        "Release binaries on loopback. The api runs as deployed: every trace sampled (`sampling_ratio: 1.0`) and",
        "exported over OTLP/gRPC to a span sink in the bench process, RED metrics, JSON logs at `info`. Its floor",
        "is `axiom25-bare-tonic` (services/api/benches/peer/bare_tonic.rs): tonic's default server and runtime on",
        "the same proto, no layers, no telemetry, the same conversion and product on the calling task.",
        f"CPU per call is utime+stime of the server process from `/proc` over {service['rounds']} alternating rounds",
        "per case, so the figure does not depend on the client; latency is the client's.",
        "",
        "| case | server | CPU per call | p50 | p99 | calls/s |",
        "|---|---|---|---|---|---|",
    ]
    for title, case in ((f"64×64 Multiply, {service['multiply_64_in_flight']['in_flight']} in flight", big),
                        (f"16×16 Multiply, steady {service['multiply_16_steady']['rate_per_s']} calls/s", small)):
        for name in ("api", "bare"):
            r = case[name]
            lines.append(f"| {title} | {name} | {r['cpu_us_per_call']:.0f} µs | {r['p50_ms']:.3f} ms | "
                         f"{r['p99_ms']:.3f} ms | {r['throughput_per_s']:,.0f} |")
    b99 = big["api"]["p99_ms"]
    lines += [
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| api / bare CPU per call, 64×64, 8 in flight ≤ 1.25× | {big['cpu_ratio']:.2f}× | {met(big['cpu_ratio'] <= 1.25)} |",
        f"| api / bare CPU per call, 16×16, 80 calls/s ≤ 1.3× | {small['cpu_ratio']:.2f}× | {met(small['cpu_ratio'] <= 1.3)} |",
        f"| api p99, 64×64, 8 clients < 2 ms | {b99:.3f} ms | {met(b99 < 2)} |",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| process start → gRPC health SERVING, p50 of {s['runs']} | {s['p50']:.1f} ms (max {s['max']:.1f} ms) | < 100 ms |",
        f"| idle RSS | {service['idle_rss_mib']:.1f} MiB | < 30 MiB |",
        f"| RSS after the load above | {service['rss_after_load_mib']:.1f} MiB | |",
        f"| spans the api exported during the run | {service['spans_exported']:,} | |",
        "",
        "The load generator runs in the same 2-core machine as the servers, so client and servers share the CPU;",
        "low-rate figures swing by half from run to run here, which is why the targets are same-run ratios.",
        "",
    ]
    return lines


def splice_service(lines):
    """Replaces the service section of the existing report, keeping the sections before it."""
    text = OUT.read_text()
    head = text[: text.index(SERVICE_HEADING)] if SERVICE_HEADING in text else text + "\n"
    OUT.write_text(head + "\n".join(lines))


def main():
    if "--service-only" in sys.argv[1:]:
        splice_service(service_section())
        print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)
        return
    run(["cargo", "bench", "--locked", "-p", "axiom25-api", "--bench", "linalg", "--", "--noplot",
         "--save-baseline", "seq"], {"LINALG_BENCH_PAR": "seq"})
    run(["cargo", "bench", "--locked", "-p", "axiom25-api", "--bench", "linalg", "--", "--noplot",
         "--save-baseline", "all"], {"LINALG_BENCH_PAR": str(CORES)})
    numpy_seq, numpy_all = numpy_seconds(1), numpy_seconds(CORES)

    import numpy as np

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# api benchmarks",
        "",
        "Produced by `make bench` (`tools/bench/api_report.py`); numbers are medians unless stated.",
        f"Machine: {cpu}, {CORES} cores, {platform.system()} {platform.release()}; {rustc}; "
        f"numpy {np.__version__} with {blas_name()}.",
        "",
        "## Every operation (criterion, `cargo bench -p axiom25-api --bench linalg`)",
        "",
        "`LINALG_BENCH_PAR=seq` is one thread per computation, the service default "
        f"(`compute.threads_per_request: 1`); `LINALG_BENCH_PAR={CORES}` uses every core.",
        "",
        "| operation | " + " | ".join(f"n={n} (1 thread)" for n in SIZES) + f" | n=256 ({CORES} threads) | n=512 ({CORES} threads) |",
        "|---|" + "---|" * (len(SIZES) + 2),
    ]
    for op in OPS:
        cells = [fmt_time(criterion_seconds(op, n, "seq")) for n in SIZES]
        cells += [fmt_time(criterion_seconds(op, n, "all")) for n in (256, 512)]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Against numpy (OpenBLAS), same run",
        "",
        "Throughput ratio = numpy time / faer time (≥ 1 means faer is faster). Target ≥ 0.8.",
        "`solve` has an n×n right-hand side, as `numpy.linalg.solve(a, b)` with square `b`.",
        "",
        "| operation | threads | faer | numpy | ratio |",
        "|---|---|---|---|---|",
    ]
    for op in COMPARED:
        for n in (256, 512):
            for threads, baseline, reference in ((1, "seq", numpy_seq), (CORES, "all", numpy_all)):
                ours, theirs = criterion_seconds(op, n, baseline), reference[f"{op}/{n}"]
                lines.append(f"| {op} {n}×{n} | {threads} | {fmt_time(ours)} | {fmt_time(theirs)} | {theirs / ours:.2f}× |")
    lines += ["", *service_section()]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
