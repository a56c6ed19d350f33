"""Renders the chart with real helm once per values file and hands the objects to the tests."""
from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "axiom25"
SUBCHARTS = ("api", "ui-gateway", "telemetry-collector")
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
HELM = os.environ.get("HELM", str(ROOT / ".tools" / "bin" / "helm"))
KUBECTL = os.environ.get("KUBECTL", str(ROOT / ".tools" / "bin" / "kubectl"))
RELEASE = NAMESPACE = "axiom25"


def run_helm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HELM, *args], capture_output=True, text=True, check=False)


@functools.lru_cache(maxsize=None)
def render_text(values_files: tuple[str, ...] = (), sets: tuple[str, ...] = (), api_versions: tuple[str, ...] = ()) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for path in values_files:
        args += ["-f", path]
    for item in sets:
        args += ["--set", item]
    for version in api_versions:
        args += ["--api-versions", version]
    result = run_helm(*args)
    if result.returncode != 0:
        raise AssertionError(f"helm template {' '.join(args[3:])} failed:\n{result.stderr}")
    return result.stdout


def render(*values_files: Path | str, sets: tuple[str, ...] = (), api_versions: tuple[str, ...] = ()) -> list[dict]:
    """The objects `helm template` renders, parsed."""
    text = render_text(tuple(str(p) for p in values_files), tuple(sets), tuple(api_versions))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict], kind: str, name: str) -> dict:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}: {[o['metadata']['name'] for o in find(objects, kind)]}"
    return found[0]


def ci_id(path: Path) -> str:
    return path.stem


@pytest.fixture(scope="session", params=CI_VALUES, ids=ci_id)
def ci_objects(request) -> tuple[str, list[dict]]:
    """(name, objects) of each ci/*.yaml values file."""
    return request.param.stem, render(request.param)


@pytest.fixture(scope="session")
def rendered_dir(tmp_path_factory) -> Path:
    """Every ci/*.yaml rendering written to one folder each (for checkov), monitoring CRDs on."""
    directory = tmp_path_factory.mktemp("rendered")
    for path in CI_VALUES:
        text = render_text((str(path),), (), ("monitoring.coreos.com/v1",))
        (directory / f"{path.stem}.yaml").write_text(text)
    return directory
