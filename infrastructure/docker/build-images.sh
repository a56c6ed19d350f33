#!/usr/bin/env bash
# Builds every image of the project: axiom25/<service>:$TAG for each service that exists, and
# the monitoring images. BASES=public uses the usual public base images, BASES=local the
# stand-ins of bootstrap-base-images.sh, BASES=auto (default) the public ones when they are
# present or can be pulled, else the local ones. NO_CACHE=1 builds without Docker's layer cache.
# Prints each image's size and build time.
set -euo pipefail
cd "$(dirname "$0")/../.."

TAG=${TAG:-dev}
BASES=${BASES:-auto}
SUITE=bookworm
PUBLIC_BUILDER=rust:1.95-bookworm
PUBLIC_RUNTIME=gcr.io/distroless/cc-debian12:nonroot
PUBLIC_DEBIAN=debian:bookworm-slim
LOCAL_PREFIX=${BASE_PREFIX:-axiom25-local}
SERVICES=(api ui-gateway telemetry-collector)

log() { printf '[images] %s\n' "$*" >&2; }
available() { docker image inspect "$1" >/dev/null 2>&1 || docker pull --quiet "$1" >/dev/null 2>&1; }

if [[ $BASES == auto ]]; then
    if available "$PUBLIC_BUILDER" && available "$PUBLIC_RUNTIME" && available "$PUBLIC_DEBIAN"; then
        BASES=public
    else
        BASES=local
    fi
fi
case $BASES in
public) builder=$PUBLIC_BUILDER runtime=$PUBLIC_RUNTIME debian=$PUBLIC_DEBIAN ;;
local)
    infrastructure/docker/bootstrap-base-images.sh
    builder=$LOCAL_PREFIX/rust-builder:$SUITE runtime=$LOCAL_PREFIX/cc-runtime:$SUITE debian=$LOCAL_PREFIX/debian:$SUITE
    ;;
*) log "BASES must be auto, public or local, not $BASES"; exit 2 ;;
esac
log "bases: $BASES ($builder, $runtime, $debian)"

# The revision baked into the binaries (axiom25_build_info{git_sha}) and the image label is the
# last commit that changed a build input, not HEAD: a commit that touches only tests, the chart or
# the docs builds byte-identical binaries, and a new HEAD would change the GIT_SHA build argument
# and so re-run the release build for nothing. The inputs are the build context's allowlist in
# .dockerignore (its `!` lines, less its `**/...` exclusions); "-dirty" marks uncommitted changes to
# them, so a binary built from a work tree never claims to be a commit it is not.
build_inputs() {
    local line
    while IFS= read -r line; do
        case $line in
        '' | '#'* | '*') ;;
        '!'*) printf '%s\n' "${line#!}" ;;
        *) printf ':(exclude,glob)%s\n' "$line" ;;
        esac
    done <.dockerignore
}
mapfile -t inputs < <(build_inputs)
git_sha=$(git log -1 --format=%H -- "${inputs[@]}" 2>/dev/null | cut -c1-12)
git_sha=${git_sha:-unknown}
if [[ $git_sha != unknown && -n $(git status --porcelain -- "${inputs[@]}" 2>/dev/null) ]]; then
    git_sha+=-dirty
fi
log "revision of the build inputs: $git_sha"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
build() { # build IMAGE DOCKERFILE [extra docker build args]
    local image=$1 dockerfile=$2 started=$SECONDS
    shift 2
    docker build --quiet ${NO_CACHE:+--no-cache} -f "$dockerfile" -t "$image" \
        --build-arg "VERSION=$version" --build-arg "GIT_SHA=$git_sha" "$@" . >/dev/null
    log "$image built in $((SECONDS - started))s, $(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1 / 1e6}')"
}

# One Dockerfile, one target per service; the first build compiles every binary, the rest reuse it.
for service in "${SERVICES[@]}"; do
    grep -q "^FROM runtime AS $service\$" infrastructure/docker/Dockerfile || continue
    build "axiom25/$service:$TAG" infrastructure/docker/Dockerfile --target "$service" \
        --build-arg "BUILDER_IMAGE=$builder" --build-arg "RUNTIME_IMAGE=$runtime"
done
for target in prometheus alertmanager; do
    build "axiom25/$target:$TAG" infrastructure/docker/monitoring/Dockerfile --target "$target" \
        --build-arg "DEBIAN_IMAGE=$debian"
done
build "axiom25/api-proxy:$TAG" infrastructure/docker/api-proxy/Dockerfile --build-arg "DEBIAN_IMAGE=$debian"
