"""The SLO generator: what it derives from slo.yaml, and that the checked-in files are what it derives."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import slo
from conftest import ROOT

GENERATE = ROOT / "tools" / "monitoring" / "generate.py"


def spec_with(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(slo.SPEC.read_text())
    change(raw)
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_spec_holds_the_five_journeys_of_contracts_section_7_with_their_objectives():
    spec = slo.load()
    assert {j.name: j.objective for j in spec.journeys} == {
        "rest-compute": 0.999,
        "rest-compute-latency": 0.99,
        "grpc-compute": 0.999,
        "grpc-compute-latency": 0.99,
        "telemetry-ingest": 0.999,
    }
    assert spec.window == "30d"
    assert [(r.severity, r.long, r.short, r.factor) for r in spec.burn_rates] == [
        ("page", "1h", "5m", 14.4), ("page", "6h", "30m", 6), ("ticket", "1d", "2h", 3), ("ticket", "3d", "6h", 1)]


def test_every_journey_is_recorded_for_every_window_with_its_budget_and_the_budget_left():
    groups = slo.rule_groups(slo.load())["groups"]
    recorded = {(r["record"], r["labels"]["slo"]) for g in groups for r in g["rules"] if "record" in r}
    for journey in slo.load().journeys:
        for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
            assert (f"slo:sli_error:ratio_rate{window}", journey.name) in recorded
        for name in ("slo:objective:ratio", "slo:error_budget:ratio", "slo:error_budget_remaining:ratio", "slo:burn_rate:ratio_rate1h"):
            assert (name, journey.name) in recorded


def test_the_page_alert_needs_both_windows_of_a_pair_over_the_burn_threshold():
    journey = next(j for j in slo.load().journeys if j.name == "grpc-compute")
    rules = [r for g in slo.rule_groups(slo.load())["groups"] for r in g["rules"] if r.get("alert") == journey.alert]
    page = next(r for r in rules if r["labels"]["severity"] == "page")
    ticket = next(r for r in rules if r["labels"]["severity"] == "ticket")
    # 14.4 x 0.1 % and 6 x 0.1 %; 3 x and 1 x for the ticket.
    assert 'slo:sli_error:ratio_rate1h{slo="grpc-compute"} > 0.0144' in page["expr"]
    assert 'slo:sli_error:ratio_rate5m{slo="grpc-compute"} > 0.0144' in page["expr"]
    assert 'slo:sli_error:ratio_rate6h{slo="grpc-compute"} > 0.006' in page["expr"]
    assert "and" in page["expr"] and " or " in page["expr"]
    assert 'slo:sli_error:ratio_rate3d{slo="grpc-compute"} > 0.001' in ticket["expr"]
    assert page["annotations"]["runbook_url"].endswith("#grpccomputeerrorbudgetburn")


def test_a_window_without_events_records_no_ratio_rather_than_nan():
    journey = slo.load().journeys[0]
    assert journey.error_ratio("5m").rstrip().endswith("> 0)")


def test_several_counters_are_summed_one_by_one_because_rate_over_a_name_regex_collides():
    ingest = next(j for j in slo.load().journeys if j.name == "telemetry-ingest")
    ratio = ingest.error_ratio("5m")
    assert "__name__" not in ratio
    assert ratio.count("otelcol_receiver_refused_spans_total") == 2  # in bad and in total
    assert "axiom25_collector_dropped_items_total" in ratio


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw["journeys"][0]["sli"].update(good="x_bucket"), "exactly one of `bad` and `good`"),
        (lambda raw: raw["journeys"][0].update(objective=1.5), "objective must be between 0 and 1"),
        (lambda raw: raw["journeys"][0].update(alert="rest_compute"), "not CamelCase"),
        (lambda raw: raw["burn_rates"][0].update(short="10m"), "window 10m is not recorded"),
    ],
)
def test_a_spec_that_cannot_work_is_refused_with_the_reason(tmp_path, change, message):
    with pytest.raises(SystemExit, match=message):
        slo.load(spec_with(tmp_path, change))


def test_the_generated_files_are_what_the_spec_and_the_dashboards_produce():
    result = subprocess.run([sys.executable, str(GENERATE), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_generated_file_edited_by_hand_is_reported_as_drift(tmp_path):
    target = ROOT / "infrastructure" / "monitoring" / "prometheus" / "rules" / "slo.yml"
    original = target.read_text()
    try:
        target.write_text(original.replace("vector(0.999)", "vector(0.99)", 1))
        result = subprocess.run([sys.executable, str(GENERATE), "--check"], capture_output=True, text=True)
    finally:
        target.write_text(original)
    assert result.returncode == 1
    assert "infrastructure/monitoring/prometheus/rules/slo.yml" in result.stderr
