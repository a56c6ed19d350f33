"""The rule files: valid for promtool, every alert fires and stays quiet in a promtool case, and every
alert carries what the person paged needs (CONVENTIONS: Charts and manifests, Alerts)."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from conftest import MONITORING, ROOT, RULES, alerts

TESTS = MONITORING / "prometheus" / "tests"
ALERT_NAMES = sorted({rule["alert"] for rule in alerts()})


def test_promtool_accepts_the_configuration_and_every_rule_file(promtool):
    for path in sorted(RULES.glob("*.yml")):
        result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_promtool_case_passes(promtool):
    cases = sorted(TESTS.glob("*_test.yml"))
    assert cases
    result = subprocess.run([promtool, "test", "rules", *map(str, cases)], capture_output=True, text=True, cwd=TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def cases_by_alert() -> dict[str, dict[str, int]]:
    seen: dict[str, dict[str, int]] = {}
    for path in TESTS.glob("*_test.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                counts = seen.setdefault(case["alertname"], {"firing": 0, "quiet": 0})
                counts["firing" if case.get("exp_alerts") else "quiet"] += 1
    return seen


@pytest.mark.parametrize("alert", ALERT_NAMES)
def test_every_alert_has_a_firing_and_a_quiet_promtool_case(alert):
    counts = cases_by_alert().get(alert, {"firing": 0, "quiet": 0})
    assert counts["firing"] >= 1, f"{alert} is never shown firing"
    if alert != "Watchdog":  # the dead man's switch is never quiet
        assert counts["quiet"] >= 1, f"{alert} is never shown quiet"


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_every_alert_is_camel_case_with_severity_service_and_the_four_annotations(rule):
    assert re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)*", rule["alert"]), rule["alert"]
    assert rule["labels"]["severity"] in {"page", "ticket", "none"}
    assert rule["labels"]["service"]
    assert set(rule["annotations"]) >= {"summary", "description", "runbook_url", "dashboard_url"}
    assert rule["annotations"]["runbook_url"].startswith("docs/ops/runbooks/alerts.md#")


def test_every_dashboard_url_names_a_generated_dashboard():
    uids = {p.stem for p in (MONITORING / "grafana" / "dashboards").glob("*.json")}
    for rule in alerts():
        uid = rule["annotations"]["dashboard_url"].split("/")[2]
        assert uid.removeprefix("axiom25-") in uids, rule["alert"]


def test_the_saturation_threshold_uses_the_apis_default_in_flight_limit():
    # The settings reference generated from the api's Settings type (make config-reference).
    schema = json.loads((ROOT / "docs" / "config" / "api.schema.json").read_text())
    default = schema["properties"]["limits"]["properties"]["max_in_flight"]["default"]
    rule = next(r for r in alerts() if r["alert"] == "ApiSaturated")
    assert f"/ {default} > 0.8" in rule["expr"]


def test_every_target_prometheus_scrapes_on_the_local_stack_is_watched_by_target_down():
    config = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]} - {"prometheus"}
    expr = next(r for r in alerts() if r["alert"] == "TargetDown")["expr"]
    watched = set(re.search(r'job=~"([^"]+)"', expr)[1].split("|"))
    assert jobs == watched
