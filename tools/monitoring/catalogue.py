"""The alert and dashboard catalogue of docs/ops/observability_stack_spec.md, generated from the SLO
spec, the rule files and the dashboards; the text between the `BEGIN catalogue` and `END catalogue`
markers is replaced, the rest of the document is written by hand."""
from __future__ import annotations

import re

import slo

MARKERS = re.compile(r"(<!-- BEGIN catalogue.*?-->\n).*?(<!-- END catalogue -->)", re.S)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(document: str, spec: slo.Spec, rule_files: dict[str, dict], dashboards: dict[str, dict]) -> str:
    lines = ["### SLOs (from infrastructure/monitoring/slo.yaml)", "",
             "| journey | service | objective | window | alert |", "|---|---|---|---|---|"]
    for journey in spec.journeys:
        lines.append(f"| {journey.name} | {journey.service} | {slo.number(journey.objective * 100)} % | {spec.window} | {journey.alert} |")
    lines += ["", "Burn-rate windows: " + "; ".join(
        f"{r.severity} {slo.number(r.factor)}x over {r.long} and {r.short}" for r in spec.burn_rates) + ".", ""]
    lines += ["### Alerts (from infrastructure/monitoring/prometheus/rules)", "",
              "| alert | severity | for | file | summary | runbook |", "|---|---|---|---|---|---|"]
    for name, document_ in sorted(rule_files.items()):
        for group in document_["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                runbook = rule["annotations"]["runbook_url"]
                lines.append(
                    f"| {rule['alert']} | {rule['labels']['severity']} | {rule.get('for', '0s')} | {name} | "
                    f"{_cell(rule['annotations']['summary'])} | [runbook](../../{runbook}) |"
                )
    recorded = sorted({rule["record"] for d in rule_files.values() for g in d["groups"] for rule in g["rules"] if "record" in rule})
    lines += ["", "Recording rules: " + ", ".join(f"`{name}`" for name in recorded) + ".", ""]
    lines += ["### Dashboards (from tools/monitoring/dashboards.py)", "",
              "| uid | title | panels |", "|---|---|---|"]
    for board in dashboards.values():
        titles = "; ".join(_cell(panel["title"]) for panel in board["panels"])
        lines.append(f"| {board['uid']} | {board['title']} | {titles} |")
    body = "\n".join(lines) + "\n"
    if not MARKERS.search(document):
        raise SystemExit("observability_stack_spec.md: no BEGIN/END catalogue markers")
    return MARKERS.sub(lambda m: m[1] + body + m[2], document)
