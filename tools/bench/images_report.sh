#!/usr/bin/env bash
# Measures the images and writes docs/benchmarks/images.md:
#   tools/bench/images_report.sh        (make bench-images)
# cold `make images` (no layer cache; base images kept and their bootstrap timed separately), a
# rebuild after a one-line source change, image sizes, container start to ready, idle memory.
# Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=bench
export TAG
out=docs/benchmarks/images.md
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now); infrastructure/docker/bootstrap-base-images.sh 2>/dev/null; t1=$(now)
bootstrap_warm=$(elapsed "$t0" "$t1")

docker rmi -f axiom25/api:$TAG axiom25/prometheus:$TAG axiom25/alertmanager:$TAG >/dev/null 2>&1 || true
t0=$(now); NO_CACHE=1 infrastructure/docker/build-images.sh 2>/dev/null; t1=$(now)
cold=$(elapsed "$t0" "$t1")

marker=services/api/src/main.rs
cp "$marker" /tmp/axiom25-main.rs.orig
trap 'cp /tmp/axiom25-main.rs.orig "$marker"' EXIT
echo "// rebuild benchmark $(date +%s)" >>"$marker"
t0=$(now); infrastructure/docker/build-images.sh 2>/dev/null; t1=$(now)
rebuild=$(elapsed "$t0" "$t1")
cp /tmp/axiom25-main.rs.orig "$marker"
infrastructure/docker/build-images.sh 2>/dev/null

size_mb() { docker image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.1f", $1 / 1e6 }'; }

starts=()
for _ in 1 2 3 4 5; do
    t0=$(now)
    id=$(docker run -d --read-only --cap-drop ALL --security-opt no-new-privileges \
        -p 127.0.0.1::8081 axiom25/api:$TAG)
    port=$(docker port "$id" 8081/tcp | head -n 1 | sed 's/.*://')
    for _ in $(seq 1 500); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
        sleep 0.01
    done
    t1=$(now)
    starts+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')")
    last=$id
    [[ ${#starts[@]} -lt 5 ]] && docker rm -f "$id" >/dev/null
done
sleep 2
idle=$(docker stats --no-stream --format '{{.MemUsage}}' "$last" | cut -d/ -f1 | xargs)
# The test kit's RSS reader (tools/testkit), from the host's /proc.
idle_rss=$("${PY:-.venv/bin/python}" -c 'import sys; from axiom25_testkit import resident_bytes
print(f"{resident_bytes(int(sys.argv[1])) / 2**20:.1f} MiB")' "$(docker inspect --format '{{.State.Pid}}' "$last")")
docker rm -f "$last" >/dev/null
median_start=$(printf '%s\n' "${starts[@]}" | sort -n | sed -n 3p)

cat >"$out" <<MD
# Image benchmarks

Produced by \`make bench-images\` (\`tools/bench/images_report.sh\`) on $(nproc) cores,
Docker $(docker version --format '{{.Server.Version}}'), bases: local stand-ins from
\`bootstrap-base-images.sh\` (no registry on this machine).

| measure | value | target |
|---|---|---|
| \`axiom25/api\` image size (uncompressed) | $(size_mb axiom25/api:$TAG) MB | ≤ 25 MB (OpenTelemetry demo's Rust service: 47 MB) |
| \`axiom25/prometheus\` / \`axiom25/alertmanager\` size | $(size_mb axiom25/prometheus:$TAG) / $(size_mb axiom25/alertmanager:$TAG) MB | |
| container start → \`/readyz\` 200, median of 5 (\`docker run\` to first ready answer) | ${median_start} ms (runs: ${starts[*]} ms) | < 1 s |
| idle memory of the running api container: process RSS / cgroup (\`docker stats\`) | ${idle_rss} / ${idle} | |
| cold \`make images\` (no layer cache, bases present; crates fetched in the build) | ${cold} s | |
| rebuild after a one-line change in \`services/api/src/main.rs\` | ${rebuild} s | dependency work: none (cached layer) |
| second run of \`bootstrap-base-images.sh\` (bases present) | ${bootstrap_warm} s | seconds |

A first bootstrap of the local bases (debootstrap, gcc, toolchain copy, import) is timed by
\`.ci/run\`'s "base and service images" phase.
MD
echo "wrote $out" >&2
