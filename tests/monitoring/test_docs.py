"""The operations docs: a runbook entry for every alert, and the catalogue generated from the rules."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT, alerts

RUNBOOKS = ROOT / "docs" / "ops" / "runbooks" / "alerts.md"
SPEC = ROOT / "docs" / "ops" / "observability_stack_spec.md"
SECTIONS = ("**Meaning**", "**Impact**", "**Diagnosis**", "**Mitigation**")


def entries() -> dict[str, str]:
    """`## Heading` -> its text, keyed by the anchor GitHub derives (lower case, no punctuation)."""
    parts = re.split(r"^## (.+)$", RUNBOOKS.read_text(), flags=re.M)[1:]
    return {re.sub(r"[^a-z0-9-]", "", title.strip().lower().replace(" ", "-")): body for title, body in zip(parts[::2], parts[1::2])}


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_every_runbook_url_has_an_entry_with_meaning_impact_diagnosis_and_mitigation(rule):
    path, anchor = rule["annotations"]["runbook_url"].split("#")
    assert (ROOT / path) == RUNBOOKS
    body = entries().get(anchor)
    assert body is not None, f"{rule['alert']}: no `## ` heading for #{anchor} in {RUNBOOKS.name}"
    positions = [body.find(section) for section in SECTIONS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), f"{rule['alert']}: sections missing or out of order"
    diagnosis = body[positions[2]:positions[3]]
    assert "```sh" in diagnosis, f"{rule['alert']}: the diagnosis names no command"


def test_no_runbook_entry_is_left_for_an_alert_that_no_longer_exists():
    anchors = {rule["annotations"]["runbook_url"].split("#")[1] for rule in alerts()}
    assert set(entries()) == anchors


def test_the_catalogue_lists_every_alert_and_dashboard():
    text = SPEC.read_text()
    catalogue = text[text.index("<!-- BEGIN catalogue"):text.index("<!-- END catalogue -->")]
    for rule in alerts():
        assert f"| {rule['alert']} | {rule['labels']['severity']} |" in catalogue
    for uid in ("axiom25-overview", "axiom25-api", "axiom25-ui-gateway", "axiom25-telemetry-collector", "axiom25-releases"):
        assert f"| {uid} |" in catalogue
