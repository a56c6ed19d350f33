"""The Grafana dashboards, as code (grafanalib): an SLO overview generated from slo.yaml, one dashboard
per service (RED over the compute routes only: health probes, reflection and the admin port are not
traffic), and releases (traffic and errors per colour and version).

Every query takes `$instance` (a regex, `.*` for all) and `$__rate_interval`; the live test
substitutes both and runs each one against the running Prometheus.
"""
from __future__ import annotations

import json

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

import slo

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
MATRIX = 'rpc_service="axiom25.matrix.v1.MatrixService"'
GRPC_SERVER_ERRORS = 'rpc_grpc_status_code=~"2|4|12|13|14|15"'
REST = 'http_route=~"/api/v1/matrix/.*"'
RATE = "$__rate_interval"


def target(expr: str, legend: str = "", ref: str = "A") -> g.Target:
    return g.Target(expr=expr, legendFormat=legend, refId=ref, datasource=DATASOURCE)


def timeseries(title: str, targets: list[g.Target], unit: str = "", description: str = "") -> g.TimeSeries:
    return g.TimeSeries(title=title, targets=targets, unit=unit, dataSource=DATASOURCE, description=description or None)


def rate_by(title: str, series: str, label: str) -> g.TimeSeries:
    """Per-second rate of the counter `series`, one line per value of `label`."""
    return timeseries(title, [target(f"sum by ({label}) (rate({series}[{RATE}]))", f"{{{{{label}}}}}")], "reqps")


def error_ratio(title: str, bad: str, total: str, by: str, description: str = "", legend: str = "") -> g.TimeSeries:
    """The share of `total` that is `bad`, one line per value of `by` (0 while nothing is bad)."""
    return timeseries(title, [target(ratio_or_zero(bad, total, by), legend or f"{{{{{by}}}}}")], "percentunit", description)


def stat(title: str, targets: list[g.Target], unit: str = "", description: str = "") -> g.Stat:
    return g.Stat(title=title, targets=targets, format=unit or "none", dataSource=DATASOURCE, reduceCalc="lastNotNull",
                  description=description or None)


def ratio_or_zero(bad: str, total: str, by: str) -> str:
    """bad / total per `by`, 0 (not empty) where total has events and bad has none."""
    totals = f"sum by ({by}) (rate({total}[{RATE}]))"
    return f"(sum by ({by}) (rate({bad}[{RATE}])) or 0 * {totals}) / {totals}"


def counter_rate(selector: str, by: str = "job") -> str:
    """A counter created at its first event: 0 until then, not empty."""
    return f"sum by ({by}) (rate({selector}[{RATE}])) or vector(0)"


def quantiles(histogram: str, selector: str, by: str = "le") -> list[g.Target]:
    return [
        target(f"histogram_quantile({q}, sum by ({by}) (rate({histogram}_bucket{{{selector}}}[{RATE}])))", f"p{int(q * 100)}", ref)
        for q, ref in ((0.5, "A"), (0.99, "B"))
    ]


def instance_variable(job: str) -> g.Template:
    return g.Template(
        name="instance",
        label="Instance",
        query=f'label_values(up{{job="{job}"}}, instance)',
        dataSource=DATASOURCE,
        includeAll=True,
        multi=True,
        allValue=".*",
        default="$__all",
    )


def dashboard(uid: str, title: str, panels: list[g.Panel], variables: list[g.Template] = ()) -> g.Dashboard:
    datasource = g.Template(name="datasource", label="Data source", query="prometheus", type="datasource")
    width, height = 8, 8
    for index, panel in enumerate(panels):
        panel.gridPos = g.GridPos(h=height, w=width, x=(index % 3) * width, y=(index // 3) * height)
    return g.Dashboard(
        title=title,
        uid=uid,
        tags=["axiom25"],
        timezone="utc",
        refresh="30s",
        time=g.Time("now-1h", "now"),
        panels=panels,
        templating=g.Templating(list=[datasource, *variables]),
    ).auto_panel_ids()


def overview(spec: slo.Spec) -> g.Dashboard:
    panels: list[g.Panel] = []
    for journey in spec.journeys:
        sel = slo.selector(journey)
        panels += [
            stat(
                f"{journey.title}: SLI over {spec.window} (objective {slo.number(journey.objective * 100)} %)",
                [target(f"1 - slo:sli_error:ratio_rate{spec.window}{sel}", journey.name)],
                "percentunit",
                journey.description,
            ),
            stat(f"{journey.title}: error budget left", [target(f"slo:error_budget_remaining:ratio{sel}", journey.name)], "percentunit"),
            timeseries(
                f"{journey.title}: burn rate (1 = budget lasts the window)",
                [target(f"slo:sli_error:ratio_rate{w}{sel} / on (slo) group_left slo:error_budget:ratio{sel}", w, ref)
                 for w, ref in (("5m", "A"), ("1h", "B"), ("6h", "C"))],
            ),
        ]
    panels.append(
        timeseries("Alerts firing", [target('sum by (alertname, severity) (ALERTS{alertstate="firing"})', "{{alertname}} ({{severity}})")])
    )
    return dashboard("axiom25-overview", "AXIOM-25 overview: SLOs and error budgets", panels)


def api() -> g.Dashboard:
    sel = f'job="api",instance=~"$instance",{MATRIX}'
    count = f"rpc_server_duration_seconds_count{{{sel}}}"
    panels = [
        rate_by("MatrixService calls per second by method", count, "rpc_method"),
        error_ratio("Server error ratio by method", f"rpc_server_duration_seconds_count{{{sel},{GRPC_SERVER_ERRORS}}}", count, "rpc_method",
                    "UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS."),
        timeseries("Duration p50 / p99", quantiles("rpc_server_duration_seconds", sel), "s"),
        rate_by("Calls by status code", count, "rpc_grpc_status_code"),
        timeseries(
            "In flight and computing",
            [
                target('sum(axiom25_api_requests_in_flight{job="api",instance=~"$instance"})', "in flight", "A"),
                target('sum(axiom25_api_computations_running{job="api",instance=~"$instance"})', "computing", "B"),
            ],
        ),
        timeseries("Shed (UNAVAILABLE) per second", [target(counter_rate('axiom25_api_requests_shed_total{job="api",instance=~"$instance"}'), "shed")], "reqps"),
        timeseries("CPU", [target(f'rate(process_cpu_seconds_total{{job="api",instance=~"$instance"}}[{RATE}])', "{{instance}}")], "percentunit"),
        timeseries("Resident memory", [target('process_resident_memory_bytes{job="api",instance=~"$instance"}', "{{instance}}")], "bytes"),
    ]
    return dashboard("axiom25-api", "AXIOM-25 api", panels, [instance_variable("api")])


def ui_gateway() -> g.Dashboard:
    sel = f'job="ui-gateway",instance=~"$instance",{REST}'
    count = f"http_server_request_duration_seconds_count{{{sel}}}"
    client = 'rpc_client_duration_seconds_count{job="ui-gateway",instance=~"$instance"}'
    panels = [
        rate_by("REST calls per second by route", count, "http_route"),
        error_ratio("REST 5xx ratio", f'http_server_request_duration_seconds_count{{{sel},http_response_status_code=~"5.."}}', count, "job",
                    legend="5xx"),
        timeseries("REST duration p50 / p99", quantiles("http_server_request_duration_seconds", sel), "s"),
        rate_by("REST answers by status", count, "http_response_status_code"),
        rate_by("Calls to the api by code", client, "rpc_grpc_status_code"),
        timeseries("Calls to the api p99", [target(
            f'histogram_quantile(0.99, sum by (le) (rate(rpc_client_duration_seconds_bucket{{job="ui-gateway",instance=~"$instance"}}[{RATE}])))', "p99")], "s"),
        timeseries("Upstreams ready", [target('min by (upstream) (axiom25_gateway_upstream_ready{job="ui-gateway",instance=~"$instance"})', "{{upstream}}")]),
        timeseries(
            "Rate limited and key failures per second",
            [
                target(counter_rate('axiom25_gateway_rate_limited_total{job="ui-gateway",instance=~"$instance"}'), "429", "A"),
                target(counter_rate('axiom25_gateway_auth_failures_total{job="ui-gateway",instance=~"$instance"}'), "401", "B"),
            ],
            "reqps",
        ),
        timeseries("Resident memory", [target('process_resident_memory_bytes{job="ui-gateway",instance=~"$instance"}', "{{instance}}")], "bytes"),
    ]
    return dashboard("axiom25-ui-gateway", "AXIOM-25 ui-gateway", panels, [instance_variable("ui-gateway")])


def telemetry_collector() -> g.Dashboard:
    job = 'job="telemetry-collector",instance=~"$instance"'
    signals = (("spans", "A"), ("metric_points", "B"), ("log_records", "C"))
    panels = [
        timeseries("Accepted per second by signal", [
            # 0 for a signal no one has sent yet (the counter appears with its first item).
            target(f"sum(rate(otelcol_receiver_accepted_{s}_total{{{job}}}[{RATE}])) or vector(0)", s, ref) for s, ref in signals], "ops"),
        timeseries("Refused per second by signal", [
            target(f"sum(rate(otelcol_receiver_refused_{s}_total{{{job}}}[{RATE}])) or vector(0)", s, ref) for s, ref in signals], "ops"),
        timeseries("Requests refused by reason", [target(counter_rate(f"axiom25_collector_requests_refused_total{{{job}}}", "signal, reason"), "{{signal}} {{reason}}")], "reqps"),
        timeseries("Dropped after acceptance", [target(counter_rate(f"axiom25_collector_dropped_items_total{{{job}}}", "signal, reason"), "{{signal}} {{reason}}")], "ops"),
        timeseries("Forwarding queue fill", [target(
            f"(max by (exporter, data_type) (otelcol_exporter_queue_size{{{job}}}) / max by (exporter, data_type) (otelcol_exporter_queue_capacity{{{job}}})) or vector(0)",
            "{{exporter}} {{data_type}}")], "percentunit", "0 when no forwarding destination is configured."),
        timeseries("Memory", [
            target(f"sum(axiom25_collector_memory_heap_bytes{{{job}}})", "stores (heap)", "A"),
            target(f"sum(axiom25_collector_memory_in_flight_bytes{{{job}}})", "in flight", "B"),
            target(f"sum(process_resident_memory_bytes{{{job}}})", "resident", "C"),
        ], "bytes"),
        timeseries("Store items", [target(f"sum by (store) (axiom25_collector_store_items{{{job}}})", "{{store}}")]),
        timeseries("Span-metrics series", [target(f"sum(axiom25_collector_spanmetrics_series{{{job}}})", "series")]),
        timeseries("Span duration p50 / p99 by service", [
            target(f"histogram_quantile({q}, sum by (le, service_name) (rate(traces_span_metrics_duration_seconds_bucket{{{job},span_kind=\"SPAN_KIND_SERVER\"}}[{RATE}])))",
                   f"{{{{service_name}}}} p{int(q * 100)}", ref)
            for q, ref in ((0.5, "A"), (0.99, "B"))], "s"),
    ]
    return dashboard("axiom25-telemetry-collector", "AXIOM-25 telemetry-collector", panels, [instance_variable("telemetry-collector")])


def releases() -> g.Dashboard:
    # axiom25_release_info{color, version} (docs/contracts.md §8): the colour and deployed version of each
    # api instance, joined onto its metrics by instance.
    release = 'group by (job, instance, color, version) (axiom25_release_info{job="api"})'
    count = f'rpc_server_duration_seconds_count{{job="api",{MATRIX}}}'
    per_release = f"sum by (color, version) (rate({count}[{RATE}]) * on (job, instance) group_left (color, version) {release})"
    errors = (f"sum by (color, version) (rate(rpc_server_duration_seconds_count{{job=\"api\",{MATRIX},{GRPC_SERVER_ERRORS}}}[{RATE}])"
              f" * on (job, instance) group_left (color, version) {release})")
    legend = "{{color}} {{version}}"
    panels = [
        timeseries("Calls per second by colour and version", [target(per_release, legend)], "reqps"),
        timeseries("Server error ratio by colour and version", [target(f"({errors} or 0 * {per_release}) / {per_release}", legend)], "percentunit"),
        timeseries("p99 by colour and version", [target(
            f"histogram_quantile(0.99, sum by (le, color, version) (rate(rpc_server_duration_seconds_bucket{{job=\"api\",{MATRIX}}}[{RATE}])"
            f" * on (job, instance) group_left (color, version) {release}))", legend)], "s"),
        timeseries("Instances per colour and version", [target(
            'count by (color, version) (axiom25_release_info{job="api"})', legend)]),
        timeseries("REST answers by release", [target(
            f'sum by (http_response_status_code) (rate(http_server_request_duration_seconds_count{{job="ui-gateway",{REST}}}[{RATE}]))',
            "{{http_response_status_code}}")], "reqps", "What clients saw across a switch."),
    ]
    return dashboard("axiom25-releases", "AXIOM-25 releases", panels)


def all_dashboards(spec: slo.Spec) -> dict[str, dict]:
    boards = {
        "overview": overview(spec),
        "api": api(),
        "ui-gateway": ui_gateway(),
        "telemetry-collector": telemetry_collector(),
        "releases": releases(),
    }
    return {name: json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder)) for name, board in boards.items()}


def to_json(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def queries(document: dict) -> list[tuple[str, str]]:
    """(panel title, expr) of every panel target."""
    return [(panel["title"], t["expr"]) for panel in document["panels"] for t in panel.get("targets", [])]
