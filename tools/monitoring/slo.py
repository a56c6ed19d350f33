"""The SLO spec (infrastructure/monitoring/slo.yaml) and what is generated from it: recording rules for
every journey and window, the error budget left, multi-window multi-burn-rate alerts, and the
promtool unit tests that show each alert firing and quiet.

The method is Sloth's and Pyrra's (Google SRE workbook, "Alerting on SLOs"): the error ratio of each
window is recorded once, the 30-day ratio is the mean of the 5-minute one, and an alert fires while a
long and a short window both burn the budget faster than a factor.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "infrastructure" / "monitoring" / "slo.yaml"
# Every window a rule is recorded for (issue 12): the burn-rate windows and the 30-day budget.
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# Repository-relative: the repository has no canonical web address yet; the anchor is what is tested.
RUNBOOK_BASE = "docs/ops/runbooks/alerts.md"
DURATION = re.compile(r"^(\d+)([smhd])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(duration: str) -> int:
    match = DURATION.match(duration)
    if match is None:
        raise ValueError(f"not a duration: {duration!r}")
    return int(match[1]) * SECONDS[match[2]]


def runbook_url(alert: str) -> str:
    """The runbook entry of an alert: one `## <AlertName>` heading in docs/ops/runbooks/alerts.md."""
    return f"{RUNBOOK_BASE}#{alert.lower()}"


def number(value: float) -> str:
    """A float as PromQL and YAML show it, without binary noise (14.4 * 0.001 -> 0.0144)."""
    return f"{value:.10g}"


@dataclass(frozen=True)
class BurnRate:
    severity: str
    long: str
    short: str
    factor: float


@dataclass(frozen=True)
class Journey:
    name: str
    alert: str
    title: str
    service: str
    description: str
    objective: float
    total: tuple[str, ...]
    bad: tuple[str, ...] | None
    good: tuple[str, ...] | None
    example: dict

    @property
    def budget(self) -> float:
        return 1 - self.objective

    @property
    def labels(self) -> dict:
        return {"slo": self.name, "service": self.service}

    def error_ratio(self, window: str) -> str:
        """The share of bad events over `window`; 0 (not empty) while events but no bad ones exist."""
        # `> 0`: a window without events has no ratio (not NaN, which would poison the 30-day mean).
        total = f"({_events(self.total, window)} > 0)"
        if self.bad is not None:
            return f"{_events(self.bad, window)}\n/\n{total}"
        return f"1 - (\n  {_events(self.good, window)}\n  /\n  {total}\n)"


def _events(selectors: tuple[str, ...], window: str) -> str:
    """Events per second of one or more counters. Several metric names are summed one by one: `rate`
    over a `__name__` regex would drop the names and collide."""
    terms = [f"(sum(rate({selector}[{window}])) or vector(0))" for selector in selectors]
    return terms[0] if len(terms) == 1 else "(" + " + ".join(terms) + ")"


def _selectors(value: str | list | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Spec:
    window: str
    burn_rates: tuple[BurnRate, ...]
    journeys: tuple[Journey, ...]


def load(path: Path = SPEC) -> Spec:
    raw = yaml.safe_load(path.read_text())
    journeys = []
    problems = []
    for item in raw["journeys"]:
        sli = item["sli"]
        if ("bad" in sli) == ("good" in sli):
            problems.append(f"{item['name']}: the SLI needs exactly one of `bad` and `good`")
        if not 0 < item["objective"] < 1:
            problems.append(f"{item['name']}: objective must be between 0 and 1")
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]+", item["alert"]):
            problems.append(f"{item['name']}: alert {item['alert']!r} is not CamelCase")
        journeys.append(
            Journey(
                name=item["name"],
                alert=item["alert"],
                title=item["title"],
                service=item["service"],
                description=item["description"],
                objective=float(item["objective"]),
                total=_selectors(sli["total"]),
                bad=_selectors(sli.get("bad")),
                good=_selectors(sli.get("good")),
                example=item["example"],
            )
        )
    burn_rates = tuple(BurnRate(**rate) for rate in raw["burn_rates"])
    for rate in burn_rates:
        for window in (rate.long, rate.short):
            if window not in WINDOWS:
                problems.append(f"burn rate {rate}: window {window} is not recorded")
    if len({j.name for j in journeys}) != len(journeys):
        problems.append("journey names must be unique")
    if problems:
        raise SystemExit("slo.yaml: " + "; ".join(problems))
    return Spec(window=raw["window"], burn_rates=burn_rates, journeys=tuple(journeys))


def selector(journey: Journey) -> str:
    return f'{{slo="{journey.name}"}}'


def alert_expr(journey: Journey, rates: list[BurnRate]) -> str:
    clauses = []
    for rate in rates:
        threshold = number(rate.factor * journey.budget)
        clauses.append(
            f"(\n  slo:sli_error:ratio_rate{rate.long}{selector(journey)} > {threshold}\n"
            f"  and\n  slo:sli_error:ratio_rate{rate.short}{selector(journey)} > {threshold}\n)"
        )
    return "\n or \n".join(clauses)


# A page waits two minutes and a ticket a quarter of an hour before they notify: the short window
# already resets them quickly once the burn stops.
FOR = {"page": "2m", "ticket": "15m"}


def rule_groups(spec: Spec) -> dict:
    groups = []
    for journey in spec.journeys:
        labels = journey.labels
        rules: list[dict] = [
            {"record": f"slo:sli_error:ratio_rate{window}", "expr": journey.error_ratio(window), "labels": labels}
            for window in WINDOWS
        ]
        rules += [
            {"record": "slo:objective:ratio", "expr": f"vector({number(journey.objective)})", "labels": labels},
            {"record": "slo:error_budget:ratio", "expr": f"vector({number(journey.budget)})", "labels": labels},
        ]
        groups.append({"name": f"slo-{journey.name}-sli", "rules": rules})

        period = spec.window
        budget_rules: list[dict] = [
            {
                "record": f"slo:sli_error:ratio_rate{period}",
                "expr": (
                    f"sum_over_time(slo:sli_error:ratio_rate5m{selector(journey)}[{period}])\n"
                    f"/ ignoring (__name__)\n"
                    f"count_over_time(slo:sli_error:ratio_rate5m{selector(journey)}[{period}])"
                ),
                "labels": labels,
            },
            {
                "record": "slo:error_budget_remaining:ratio",
                "expr": f"1 - slo:sli_error:ratio_rate{period}{selector(journey)} / {number(journey.budget)}",
                "labels": labels,
            },
            {
                "record": "slo:burn_rate:ratio_rate1h",
                "expr": f"slo:sli_error:ratio_rate1h{selector(journey)} / {number(journey.budget)}",
                "labels": labels,
            },
        ]
        for severity in ("page", "ticket"):
            rates = [rate for rate in spec.burn_rates if rate.severity == severity]
            windows = ", ".join(f"{r.factor:g}x over {r.long} and {r.short}" for r in rates)
            budget_rules.append(
                {
                    "alert": journey.alert,
                    "expr": alert_expr(journey, rates),
                    "for": FOR[severity],
                    "labels": {**labels, "severity": severity},
                    "annotations": {
                        "summary": f"{journey.title} is burning its error budget ({severity})",
                        "description": (
                            f"{journey.description} Objective {number(journey.objective * 100)} % over "
                            f"{period}; the error ratio over the long window is "
                            "{{ $value | humanizePercentage }} of events and burns the budget faster "
                            f"than {windows}."
                        ),
                        "runbook_url": runbook_url(journey.alert),
                        "dashboard_url": "/d/axiom25-overview/axiom25-overview",
                    },
                }
            )
        groups.append({"name": f"slo-{journey.name}-budget", "rules": budget_rules})
    return {"groups": groups}


def _series(labels: dict) -> str:
    name = labels["__name__"]
    rest = ",".join(f'{key}="{value}"' for key, value in labels.items() if key != "__name__")
    return f"{name}{{{rest}}}"


def _traffic(journey: Journey, failing: bool, minutes: int) -> list[dict]:
    """Input series: 60 events a minute, all good or half (bad SLI) / all (good SLI) bad."""
    steps = minutes
    if journey.bad is not None:
        bad_step = 30 if failing else 0
        return [
            {"series": _series(journey.example["total"]), "values": f"0+60x{steps}"},
            {"series": _series(journey.example["bad"]), "values": f"0+{bad_step}x{steps}"},
        ]
    good_step = 0 if failing else 60
    return [
        {"series": _series(journey.example["total"]), "values": f"0+60x{steps}"},
        {"series": _series(journey.example["good"]), "values": f"0+{good_step}x{steps}"},
    ]


def unit_tests(spec: Spec) -> dict:
    """promtool tests: each journey's page and ticket alert fires on a full outage and stays quiet
    on healthy traffic; the error budget left is recorded."""
    tests = []
    for journey in spec.journeys:
        alert = journey.alert
        # A ticket needs its `for` of 15 minutes; 30 minutes of failing traffic fires both.
        tests.append(
            {
                "interval": "1m",
                "input_series": _traffic(journey, failing=True, minutes=30),
                "alert_rule_test": [
                    {
                        "eval_time": "1m",
                        "alertname": alert,
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": "30m",
                        "alertname": alert,
                        "exp_alerts": [
                            {
                                "exp_labels": {**journey.labels, "severity": severity},
                                "exp_annotations": _annotations(spec, journey, severity),
                            }
                            for severity in ("page", "ticket")
                        ],
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": f"slo:objective:ratio{selector(journey)}",
                        "eval_time": "30m",
                        "exp_samples": [{"labels": _labels("slo:objective:ratio", journey), "value": journey.objective}],
                    },
                ],
            }
        )
        tests.append(
            {
                "interval": "1m",
                "input_series": _traffic(journey, failing=False, minutes=120),
                "alert_rule_test": [{"eval_time": "120m", "alertname": alert, "exp_alerts": []}],
                "promql_expr_test": [
                    {
                        "expr": f"slo:error_budget_remaining:ratio{selector(journey)}",
                        "eval_time": "120m",
                        "exp_samples": [{"labels": _labels("slo:error_budget_remaining:ratio", journey), "value": 1}],
                    },
                    {
                        "expr": f"slo:sli_error:ratio_rate5m{selector(journey)}",
                        "eval_time": "120m",
                        "exp_samples": [{"labels": _labels("slo:sli_error:ratio_rate5m", journey), "value": 0}],
                    },
                ],
            }
        )
    return {"rule_files": ["../rules/slo.yml"], "evaluation_interval": "1m", "tests": tests}


def _labels(name: str, journey: Journey) -> str:
    return f'{name}{{service="{journey.service}", slo="{journey.name}"}}'


def _annotations(spec: Spec, journey: Journey, severity: str) -> dict:
    rule = next(
        r
        for group in rule_groups(spec)["groups"]
        for r in group["rules"]
        if r.get("alert") == journey.alert and r["labels"]["severity"] == severity
    )
    # Bad events are also counted in `total` (60 good + 30 bad a minute); a latency SLI has none good.
    ratio = 30 / 90 if journey.bad is not None else 1.0
    annotations = dict(rule["annotations"])
    annotations["description"] = annotations["description"].replace(
        "{{ $value | humanizePercentage }}", _humanize_percentage(ratio)
    )
    return annotations


def _humanize_percentage(value: float) -> str:
    return f"{value * 100:.4g}%"
