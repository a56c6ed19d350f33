"""Alertmanager's routing tree, checked with `amtool config routes test` for every route."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from conftest import MONITORING, alerts

CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"


def route(amtool: str, *labels: str) -> str:
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={CONFIG}", *labels], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_amtool_accepts_the_configuration(amtool):
    result = subprocess.run([amtool, "check-config", str(CONFIG)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=Watchdog", "severity=none", "service=prometheus"), "watchdog"),
        (("alertname=TargetDown", "severity=page", "service=api", "job=api"), "page"),
        (("alertname=GrpcComputeErrorBudgetBurn", "severity=page", "slo=grpc-compute", "service=api"), "page"),
        (("alertname=GrpcComputeErrorBudgetBurn", "severity=ticket", "slo=grpc-compute", "service=api"), "ticket"),
        (("alertname=CollectorRefusing", "severity=ticket", "service=telemetry-collector"), "ticket"),
        (("alertname=SomethingNew", "service=api"), "ticket"),
    ],
    ids=["watchdog", "target-down-page", "slo-page", "slo-ticket", "component-ticket", "unlabelled-default"],
)
def test_each_route_delivers_to_its_receiver(amtool, labels, receiver):
    assert route(amtool, *labels) == receiver


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_every_alert_of_the_rule_files_reaches_the_receiver_of_its_severity(amtool, rule):
    expected = "watchdog" if rule["alert"] == "Watchdog" else rule["labels"]["severity"]
    labels = [f"alertname={rule['alert']}", f"severity={rule['labels']['severity']}"]
    assert route(amtool, *labels) == expected


def test_grouping_is_by_alert_and_service_and_a_page_inhibits_the_ticket_of_its_slo():
    config = yaml.safe_load(CONFIG.read_text())
    assert config["route"]["group_by"] == ["alertname", "service"]
    inhibit = config["inhibit_rules"]
    assert {"source_matchers": ['severity="page"'], "target_matchers": ['severity="ticket"'], "equal": ["alertname", "slo"]} in inhibit
    down = next(rule for rule in inhibit if rule["source_matchers"] == ['alertname="TargetDown"'])
    assert down["equal"] == ["service"]


def test_every_receiver_is_a_webhook_whose_url_is_configuration():
    config = yaml.safe_load(CONFIG.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"page", "ticket", "watchdog"}
    for name, receiver in receivers.items():
        (webhook,) = receiver["webhook_configs"]
        assert webhook["url"] == f"http://host.docker.internal:9095/alerts/{name}"
