"""The chart's monitoring parts: PrometheusRules from the same rule files as the local stack, the
dashboard ConfigMaps, and the optional monitoring subchart (Prometheus and Alertmanager for clusters
without the Prometheus Operator), checked with helm, promtool, amtool, kubernetes-validate and checkov."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from conftest import CHART, ROOT, find, one, render, render_text

DEFAULTS = CHART / "ci" / "default.yaml"
MONITORING = ROOT / "tests" / "helm" / "values" / "monitoring.yaml"
RULES = ROOT / "infrastructure" / "monitoring" / "prometheus" / "rules"
DASHBOARDS = ROOT / "infrastructure" / "monitoring" / "grafana" / "dashboards"
LOCAL_ALERTMANAGER = ROOT / "infrastructure" / "monitoring" / "alertmanager" / "alertmanager.yml"


def test_each_rule_file_becomes_one_prometheus_rule_when_the_crds_exist():
    assert not find(render(DEFAULTS), "PrometheusRule")
    objects = render(DEFAULTS, sets=("prometheusRules.labels.release=prom",), api_versions=("monitoring.coreos.com/v1",))
    rules = {r["metadata"]["name"]: r for r in find(objects, "PrometheusRule")}
    assert set(rules) == {f"axiom25-{path.stem}" for path in RULES.glob("*.yml")}
    for path in RULES.glob("*.yml"):
        rule = rules[f"axiom25-{path.stem}"]
        assert rule["spec"] == yaml.safe_load(path.read_text())
        assert rule["metadata"]["labels"]["release"] == "prom"
    off = render(DEFAULTS, sets=("prometheusRules.enabled=false",), api_versions=("monitoring.coreos.com/v1",))
    assert not find(off, "PrometheusRule")


def test_every_generated_dashboard_is_a_configmap_labelled_for_the_grafana_sidecar():
    configmaps = [c for c in find(render(DEFAULTS), "ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    shipped = {name: json.loads(text) for c in configmaps for name, text in c["data"].items()}
    assert shipped == {path.name: json.loads(path.read_text()) for path in DASHBOARDS.glob("*.json")}


def test_the_monitoring_subchart_is_off_by_default():
    objects = render(DEFAULTS)
    assert not [o for o in objects if o["metadata"]["labels"].get("app.kubernetes.io/component") == "monitoring"]


def monitoring_objects() -> list[dict]:
    return render(MONITORING)


def test_the_subchart_runs_prometheus_and_alertmanager_hardened_with_probes_and_limits():
    objects = monitoring_objects()
    for name in ("axiom25-monitoring-prometheus", "axiom25-monitoring-alertmanager"):
        deployment = one(objects, "Deployment", name)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsUser"] >= 10000 and pod["securityContext"]["runAsNonRoot"]
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["readinessProbe"] and container["livenessProbe"]
        assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
        one(objects, "Service", name)
        one(objects, "NetworkPolicy", name)


def test_prometheus_loads_the_local_stacks_rule_files_and_scrapes_each_service_through_a_headless_service():
    objects = monitoring_objects()
    rules = one(objects, "ConfigMap", "axiom25-monitoring-rules")["data"]
    assert rules == {path.name: path.read_text() for path in RULES.glob("*.yml")}
    config = yaml.safe_load(one(objects, "ConfigMap", "axiom25-monitoring-prometheus")["data"]["prometheus.yml"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"api", "ui-gateway", "telemetry-collector", "alertmanager"}
    for job, port in (("api", 8081), ("ui-gateway", 8082), ("telemetry-collector", 8888)):
        (sd,) = jobs[job]["dns_sd_configs"]
        assert sd["names"] == [f"axiom25-monitoring-scrape-{job}.axiom25.svc"] and sd["port"] == port
        service = one(objects, "Service", f"axiom25-monitoring-scrape-{job}")
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": job, "app.kubernetes.io/instance": "axiom25"}
        selected = [d for d in find(objects, "Deployment")
                    if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert selected, f"the scrape Service of {job} selects no pods"
        ports = {p["containerPort"] for d in selected for c in d["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert port in ports


def test_the_services_let_this_prometheus_scrape_their_admin_ports():
    objects = monitoring_objects()
    prometheus_labels = one(objects, "Deployment", "axiom25-monitoring-prometheus")["spec"]["template"]["metadata"]["labels"]
    for name in ("axiom25-api", "axiom25-ui-gateway", "axiom25-telemetry-collector"):
        policy = one(objects, "NetworkPolicy", name)
        peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]
                 if any(p["port"] == "admin" for p in rule.get("ports", []))]
        assert any(peer.get("podSelector", {}).get("matchLabels", {}).items() <= prometheus_labels.items() for peer in peers), name


def test_alertmanager_keeps_the_local_routes_and_inhibitions_with_the_receivers_urls_from_values():
    config = yaml.safe_load(one(monitoring_objects(), "ConfigMap", "axiom25-monitoring-alertmanager")["data"]["alertmanager.yml"])
    local = yaml.safe_load(LOCAL_ALERTMANAGER.read_text())
    assert config["route"] == local["route"] and config["inhibit_rules"] == local["inhibit_rules"]
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in config["receivers"]}
    assert urls == {name: f"http://alert-receiver.ops.svc:8080/alerts/{name}" for name in ("page", "ticket", "watchdog")}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("monitoring.alertmanager.receivers.page=",), "monitoring.alertmanager.receivers.page"),
        (("monitoring.networkPolicy.receiverEgress=null",), "receiverEgress is empty"),
    ],
)
def test_a_subchart_that_could_not_deliver_refuses_to_render(sets, message):
    with pytest.raises(AssertionError, match=message):
        render_text((str(MONITORING),), sets, ())


def test_promtool_and_amtool_accept_the_rendered_configurations(tmp_path):
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    assert promtool and amtool, "apt-get install prometheus prometheus-alertmanager"
    objects = monitoring_objects()
    (tmp_path / "prometheus.yml").write_text(one(objects, "ConfigMap", "axiom25-monitoring-prometheus")["data"]["prometheus.yml"])
    (tmp_path / "alertmanager.yml").write_text(one(objects, "ConfigMap", "axiom25-monitoring-alertmanager")["data"]["alertmanager.yml"])
    for args in ([promtool, "check", "config", "--syntax-only", str(tmp_path / "prometheus.yml")],
                 [amtool, "check-config", str(tmp_path / "alertmanager.yml")]):
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_subchart_passes_strict_kubernetes_validation_and_checkov(tmp_path):
    import kubernetes_validate as kv

    for obj in monitoring_objects():
        kv.validate(obj, "1.29.0", strict=True)
    (tmp_path / "monitoring.yaml").write_text(render_text((str(MONITORING),), (), ()))
    result = subprocess.run([str(ROOT / ".venv-tools" / "bin" / "checkov"), "--skip-download", "--framework", "kubernetes",
                             "--output", "json", "-d", str(tmp_path)], capture_output=True, text=True, check=False)
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f"{c['check_id']} {c['resource']}" for r in reports for c in r["results"]["failed_checks"]]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert sum(r["summary"]["passed"] for r in reports) > 200, "checkov ran too few checks"
    skipped = {c["check_id"] for r in reports for c in r["results"]["skipped_checks"]}
    assert skipped <= {"CKV_K8S_15", "CKV_K8S_43"}
