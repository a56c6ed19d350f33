"""Unit tests of the chart: assertions on what `helm template` renders."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os

import jsonschema
import pytest
import yaml

from conftest import CHART, ROOT, SUBCHARTS, find, one, render, run_helm

DEFAULTS = CHART / "ci" / "default.yaml"
BLUE_GREEN = CHART / "ci" / "blue-green.yaml"
INGRESS_TLS = CHART / "ci" / "ingress-tls.yaml"
EXISTING_SECRET = CHART / "ci" / "existing-secret.yaml"
HPA_OFF = CHART / "ci" / "hpa-off.yaml"
COLLECTOR_DISABLED = CHART / "ci" / "collector-disabled.yaml"
UID = 65532


def deployments(objects):
    return find(objects, "Deployment")


def config_of(objects, name):
    return yaml.safe_load(one(objects, "ConfigMap", name)["data"]["config.yaml"])


def checksum(objects, name):
    return one(objects, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


# --- selectors and labels -------------------------------------------------------------------

SELECTOR_KEYS = {"app.kubernetes.io/name", "app.kubernetes.io/instance", "axiom25/color"}


def selectors(objects):
    out = {}
    for o in objects:
        if o["kind"] in ("Deployment", "PodDisruptionBudget"):
            out[(o["kind"], o["metadata"]["name"])] = o["spec"]["selector"]["matchLabels"]
        elif o["kind"] == "Service":
            out[(o["kind"], o["metadata"]["name"])] = o["spec"]["selector"]
    return out


@pytest.mark.parametrize("values", [DEFAULTS, BLUE_GREEN], ids=["single", "blue-green"])
def test_selectors_stay_the_same_when_images_config_replicas_and_labels_change(values):
    before = selectors(render(values))
    after = selectors(render(values, sets=(
        "global.imageTag=9.9.9", "api.image.tag=1.2.3", "api.config.limits.max_rows=64",
        "ui-gateway.replicaCount=7", "global.commonLabels.team=other", "global.environment=staging",
        "api.podLabels.extra=yes", "global.imageDigests.telemetry-collector=sha256:" + "a" * 64,
    )))
    assert before == after
    for name, selector in before.items():
        assert set(selector) <= SELECTOR_KEYS, f"{name} selects on {set(selector) - SELECTOR_KEYS}"


GOLDEN_SELECTORS = ROOT / "tests" / "helm" / "golden" / "selectors.json"


def selector_snapshot(objects):
    """What must never change across upgrades: Deployment and PDB selectors (immutable or
    pod-matching), Service selectors and HPA targets."""
    out = {}
    for o in sorted(objects, key=lambda o: (o["kind"], o["metadata"]["name"])):
        key = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] in ("Deployment", "PodDisruptionBudget"):
            out[key] = o["spec"]["selector"]
        elif o["kind"] == "Service":
            out[key] = o["spec"]["selector"]
        elif o["kind"] == "HorizontalPodAutoscaler":
            out[key] = o["spec"]["scaleTargetRef"]
    return out


def test_selectors_match_the_stored_golden_file():
    """An edit to a selectorLabels helper (or a Service, PDB or HPA target) breaks upgrades of
    installed releases: Deployment selectors are immutable. Regenerate the file only for a
    deliberate, documented break: AXIOM25_UPDATE_GOLDEN=1 make chart-test."""
    current = {name: selector_snapshot(render(path)) for name, path in (("default", DEFAULTS), ("blue-green", BLUE_GREEN))}
    if os.environ.get("AXIOM25_UPDATE_GOLDEN") == "1":
        GOLDEN_SELECTORS.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(GOLDEN_SELECTORS.read_text())


def test_every_selector_matches_its_own_pods_and_no_others(ci_objects):
    _, objects = ci_objects
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments(objects)}
    for d in deployments(objects):
        assert d["spec"]["selector"]["matchLabels"].items() <= pods[d["metadata"]["name"]].items()
    for kind in ("PodDisruptionBudget",):
        for o in find(objects, kind):
            matched = [n for n, labels in pods.items() if o["spec"]["selector"]["matchLabels"].items() <= labels.items()]
            assert matched == [o["metadata"]["name"]], f"{kind} {o['metadata']['name']} selects {matched}"
    for service in find(objects, "Service"):
        matched = [n for n, labels in pods.items() if service["spec"]["selector"].items() <= labels.items()]
        assert len(matched) == 1, f"Service {service['metadata']['name']} selects {matched}"


def test_every_object_carries_the_recommended_labels_and_the_release_namespace(ci_objects):
    _, objects = ci_objects
    for o in objects:
        labels = o["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "helm.sh/chart"):
            assert key in labels, f"{o['kind']}/{o['metadata']['name']} lacks {key}"
        assert o["metadata"]["namespace"] == "axiom25"


def test_common_labels_reach_every_object_but_no_selector():
    objects = render(INGRESS_TLS)
    assert all(o["metadata"]["labels"].get("team") == "matrix" for o in objects)
    assert all("team" not in s for s in selectors(objects).values())


# --- config and its checksum ----------------------------------------------------------------

def test_the_config_checksum_changes_with_that_services_config_only():
    base = render(DEFAULTS)
    changed = render(DEFAULTS, sets=("api.config.limits.max_rows=512",))
    assert config_of(changed, "axiom25-api")["limits"] == {"max_rows": 512}
    assert checksum(changed, "axiom25-api") != checksum(base, "axiom25-api")
    assert checksum(changed, "axiom25-ui-gateway") == checksum(base, "axiom25-ui-gateway")
    assert checksum(render(DEFAULTS), "axiom25-api") == checksum(base, "axiom25-api")
    environment = render(DEFAULTS, sets=("global.environment=staging",))
    for name in ("axiom25-api", "axiom25-ui-gateway", "axiom25-telemetry-collector"):
        assert checksum(environment, name) != checksum(base, name)


def test_every_deployment_mounts_its_configmap_and_passes_it_with_config(ci_objects):
    _, objects = ci_objects
    configmaps = {c["metadata"]["name"] for c in find(objects, "ConfigMap")}
    for d in deployments(objects):
        pod = d["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "config")
        assert volume["configMap"]["name"] in configmaps
        container = pod["containers"][0]
        assert container["args"] == ["--config", "/etc/axiom25/config.yaml"]
        assert {"name": "config", "mountPath": "/etc/axiom25", "readOnly": True} in container["volumeMounts"]


def test_the_chart_writes_ports_telemetry_and_shutdown_into_each_config():
    objects = render(DEFAULTS)
    api = config_of(objects, "axiom25-api")
    assert api["server"] == {"grpc_port": 50051, "admin_port": 8081}
    assert api["telemetry"] == {"environment": "production", "log_format": "json",
                                "otlp_endpoint": "http://axiom25-telemetry-collector:4317"}
    assert api["shutdown"] == {"drain_delay_ms": 0, "grace_period_ms": 20000}
    assert config_of(objects, "axiom25-ui-gateway")["server"] == {"http_port": 8080, "admin_port": 8082}
    collector = config_of(objects, "axiom25-telemetry-collector")
    assert collector["server"] == {"grpc_port": 4317, "http_port": 4318, "admin_port": 8888}
    assert "otlp_endpoint" not in collector["telemetry"], "the collector must not export its own spans to itself"


def _settings_schema(service):
    """The service's settings as JSON Schema, generated from its Rust Settings types (docs/config)."""
    return json.loads((ROOT / "docs" / "config" / f"{service}.schema.json").read_text())


def _signatures(schema):
    """`section.key` -> (JSON type, allowed values) of a settings schema or a chart's `config` schema."""
    out = {}
    for section, node in schema["properties"].items():
        for key, field in node.get("properties", {}).items():
            values = field.get("enum") or [variant["const"] for variant in field.get("oneOf", [])]
            out[f"{section}.{key}"] = (json.dumps(field.get("type")), tuple(values))
    return out


# What each chart writes into the service's config from its own values (ports, shutdown, the key
# file), so `config` must not take it.
CHART_OWNED = {
    "api": {"server.grpc_port", "server.admin_port", "shutdown.drain_delay_ms", "shutdown.grace_period_ms"},
    "ui-gateway": {"server.http_port", "server.admin_port", "shutdown.drain_delay_ms", "shutdown.grace_period_ms",
                   "auth.api_keys_file"},
    "telemetry-collector": {"server.grpc_port", "server.http_port", "server.admin_port", "shutdown.drain_delay_ms",
                            "shutdown.grace_period_ms"},
}


@pytest.mark.parametrize("chart", SUBCHARTS)
def test_each_chart_config_takes_exactly_its_service_settings_with_their_types_less_what_the_chart_writes(chart):
    values_schema = json.loads((CHART / "charts" / chart / "values.schema.json").read_text())
    settings = _signatures(_settings_schema(chart))
    assert CHART_OWNED[chart] <= set(settings), f"{chart}: the chart writes keys the service does not have"
    expected = {key: signature for key, signature in settings.items() if key not in CHART_OWNED[chart]}
    paths = [("config",)] + ([("blueGreen", "blue", "config"), ("blueGreen", "green", "config")] if chart == "api" else [])
    for path in paths:
        node = values_schema
        for key in path:
            node = node["properties"][key]
        assert _signatures(node) == expected, ".".join(path)
        assert node["additionalProperties"] is False, ".".join(path)


def test_every_config_the_chart_renders_is_valid_settings_of_its_service(ci_objects):
    name, objects = ci_objects
    checked = 0
    for d in deployments(objects):
        service = d["metadata"]["labels"]["app.kubernetes.io/name"]
        configmap = next(v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")["configMap"]["name"]
        validator = jsonschema.Draft202012Validator(_settings_schema(service))
        problems = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(config_of(objects, configmap))]
        assert not problems, f"{name}: {d['metadata']['name']}: {problems}"
        checked += 1
    assert checked >= 2, name


# --- shutdown ---------------------------------------------------------------------------------

def test_pods_sleep_in_prestop_then_get_more_grace_than_sleep_plus_drain(ci_objects):
    name, objects = ci_objects
    for d in deployments(objects):
        pod = d["spec"]["template"]["spec"]
        container = pod["containers"][0]
        component = d["metadata"]["labels"]["app.kubernetes.io/name"]
        configmap = next(v for v in pod["volumes"] if v["name"] == "config")["configMap"]["name"]
        config = config_of(objects, configmap)
        grace_ms = config["shutdown"]["grace_period_ms"]
        if name == "hpa-off":
            assert "lifecycle" not in container, "the drain delay moves into the config without native sleep"
            drain = config["shutdown"]["drain_delay_ms"] / 1000
            assert drain == 5
        else:
            drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            assert drain == 5 and config["shutdown"]["drain_delay_ms"] == 0
        assert pod["terminationGracePeriodSeconds"] > drain + grace_ms / 1000, component


# --- autoscaling ------------------------------------------------------------------------------

def test_hpa_and_replicas_are_never_both_set(ci_objects):
    _, objects = ci_objects
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in find(objects, "HorizontalPodAutoscaler")}
    for d in deployments(objects):
        if d["metadata"]["name"] in scaled:
            assert "replicas" not in d["spec"], d["metadata"]["name"]
        else:
            assert d["spec"]["replicas"] >= 1, d["metadata"]["name"]
    names = {d["metadata"]["name"] for d in deployments(objects)}
    assert scaled <= names, "an HPA targets a Deployment that does not exist"


def test_hpas_scale_on_cpu_and_memory_from_two_replicas_with_a_scale_down_window():
    objects = render(DEFAULTS)
    hpas = find(objects, "HorizontalPodAutoscaler")
    assert {h["metadata"]["name"] for h in hpas} == {"axiom25-api", "axiom25-ui-gateway"}
    for hpa in hpas:
        spec = hpa["spec"]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert spec["minReplicas"] >= 2 and spec["maxReplicas"] >= spec["minReplicas"]
        assert {m["resource"]["name"] for m in spec["metrics"]} == {"cpu", "memory"}
        assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60


def test_hpa_off_renders_fixed_replicas():
    objects = render(HPA_OFF)
    assert not find(objects, "HorizontalPodAutoscaler")
    assert one(objects, "Deployment", "axiom25-api")["spec"]["replicas"] == 3


def test_a_min_replicas_above_max_replicas_is_refused():
    result = run_helm("template", "x", str(CHART), "--set", "api.autoscaling.minReplicas=5", "--set", "api.autoscaling.maxReplicas=3")
    assert result.returncode != 0 and "api.autoscaling.minReplicas" in result.stderr


# --- disruption budgets -----------------------------------------------------------------------

def test_every_deployment_has_one_pdb_with_an_unhealthy_pod_eviction_policy(ci_objects):
    _, objects = ci_objects
    pdbs = {p["metadata"]["name"]: p for p in find(objects, "PodDisruptionBudget")}
    for d in deployments(objects):
        pdb = pdbs[d["metadata"]["name"]]
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] in ("AlwaysAllow", "IfHealthyBudget")
        assert pdb["spec"]["selector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]


def test_pdbs_keep_a_replica_up_where_there_are_several_and_never_block_a_drain_of_the_single_collector():
    objects = render(DEFAULTS)
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h["spec"] for h in find(objects, "HorizontalPodAutoscaler")}
    for name in ("axiom25-api", "axiom25-ui-gateway"):
        pdb = one(objects, "PodDisruptionBudget", name)["spec"]
        assert pdb["maxUnavailable"] < hpas[name]["minReplicas"], f"{name}: a drain may take every replica down"
    # The collector: one replica whose stores live in memory, so its budget deliberately allows
    # evicting it (maxUnavailable 1, never 0 or minAvailable 1, which would block every node drain)...
    collector = one(objects, "PodDisruptionBudget", "axiom25-telemetry-collector")["spec"]
    assert one(objects, "Deployment", "axiom25-telemetry-collector")["spec"]["replicas"] == 1
    assert collector["maxUnavailable"] == 1 and "minAvailable" not in collector
    schema = json.loads((CHART / "charts/telemetry-collector/values.schema.json").read_text())
    assert "in memory" in schema["properties"]["pdb"]["properties"]["maxUnavailable"]["description"], "the choice is documented"
    # ... and keeps all but one up once an operator runs several.
    scaled = render(DEFAULTS, sets=("telemetry-collector.replicaCount=3",))
    assert one(scaled, "PodDisruptionBudget", "axiom25-telemetry-collector")["spec"]["maxUnavailable"] == 1


# --- blue/green -------------------------------------------------------------------------------

@pytest.mark.parametrize("active", ["blue", "green"])
def test_the_api_service_follows_the_active_colour(active):
    objects = render(BLUE_GREEN, sets=(f"api.blueGreen.activeColor={active}",))
    assert one(objects, "Service", "axiom25-api")["spec"]["selector"]["axiom25/color"] == active
    for color in ("blue", "green"):
        assert one(objects, "Service", f"axiom25-api-{color}")["spec"]["selector"]["axiom25/color"] == color
        assert one(objects, "HorizontalPodAutoscaler", f"axiom25-api-{color}")["spec"]["scaleTargetRef"]["name"] == f"axiom25-api-{color}"
        assert one(objects, "PodDisruptionBudget", f"axiom25-api-{color}")["spec"]["selector"]["matchLabels"]["axiom25/color"] == color
    assert not find(objects, "Deployment", "axiom25-api")


def test_switching_colour_changes_only_the_api_service_selector_and_the_notes():
    blue = render(BLUE_GREEN, sets=("api.blueGreen.activeColor=blue",))
    green = render(BLUE_GREEN, sets=("api.blueGreen.activeColor=green",))
    differing = sorted(a["kind"] + "/" + a["metadata"]["name"] for a, b in zip(blue, green) if a != b)
    assert differing == ["Service/axiom25-api", "Service/axiom25-api-headless"]


@pytest.mark.parametrize("active", ["blue", "green"])
def test_the_gateway_calls_the_pods_of_the_active_colour_through_a_headless_service(active):
    objects = render(BLUE_GREEN, sets=(f"api.blueGreen.activeColor={active}",))
    headless = one(objects, "Service", "axiom25-api-headless")["spec"]
    main = one(objects, "Service", "axiom25-api")["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["selector"] == main["selector"] and headless["selector"]["axiom25/color"] == active
    assert headless["ports"] == [{"name": "grpc", "port": 50051, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"}]
    assert config_of(objects, "axiom25-ui-gateway")["api"]["endpoint"] == "http://axiom25-api-headless:50051"


def test_without_blue_green_the_headless_service_selects_every_api_pod_and_a_release_named_api_keeps_its_name():
    objects = render(DEFAULTS)
    assert one(objects, "Service", "axiom25-api-headless")["spec"]["selector"] == one(objects, "Service", "axiom25-api")["spec"]["selector"]
    named = run_helm("template", "my-api", str(CHART), "--namespace", "axiom25", "-f", str(DEFAULTS))
    assert named.returncode == 0, named.stderr
    objects = list(yaml.safe_load_all(named.stdout))
    objects = [o for o in objects if o]
    assert one(objects, "Service", "my-api-headless")
    assert config_of(objects, "my-api-ui-gateway")["api"]["endpoint"] == "http://my-api-headless:50051"


def test_each_colour_gets_its_own_config_and_only_its_pods_roll():
    base = render(BLUE_GREEN)
    changed = render(BLUE_GREEN, sets=("api.blueGreen.green.config.limits.max_rows=2048", "api.config.limits.max_cols=512"))
    assert config_of(changed, "axiom25-api-green")["limits"] == {"max_rows": 2048, "max_cols": 512}
    assert config_of(changed, "axiom25-api-blue")["limits"] == {"max_cols": 512}
    only_green = render(BLUE_GREEN, sets=("api.blueGreen.green.config.compute.workers=2",))
    assert checksum(only_green, "axiom25-api-green") != checksum(base, "axiom25-api-green")
    assert checksum(only_green, "axiom25-api-blue") == checksum(base, "axiom25-api-blue")


def test_each_colour_runs_its_own_image_and_replicas():
    objects = render(BLUE_GREEN, sets=("api.autoscaling.enabled=false", "api.blueGreen.green.digest=sha256:" + "b" * 64))
    blue = one(objects, "Deployment", "axiom25-api-blue")
    green = one(objects, "Deployment", "axiom25-api-green")
    assert blue["spec"]["template"]["spec"]["containers"][0]["image"] == "axiom25/api:0.1.0"
    assert green["spec"]["template"]["spec"]["containers"][0]["image"] == "axiom25/api@sha256:" + "b" * 64
    assert (blue["spec"]["replicas"], green["spec"]["replicas"]) == (2, 3)


def test_a_digest_overrides_a_tag_and_the_registry_prefixes_every_image():
    objects = render(INGRESS_TLS, sets=("api.image.tag=7.7.7",))
    images = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in deployments(objects)}
    assert images["axiom25-api"] == "registry.example.com/axiom25/axiom25/api:7.7.7"
    assert images["axiom25-ui-gateway"] == "registry.example.com/axiom25/axiom25/ui-gateway@sha256:" + "0" * 63 + "2"
    default = render(DEFAULTS, sets=("global.imageTag=2.0.0",))
    assert one(default, "Deployment", "axiom25-api")["spec"]["template"]["spec"]["containers"][0]["image"] == "axiom25/api:2.0.0"


# --- security ---------------------------------------------------------------------------------

def test_every_container_runs_with_the_secure_context_limits_and_probes(ci_objects):
    _, objects = ci_objects
    assert deployments(objects)
    for d in deployments(objects):
        pod = d["spec"]["template"]["spec"]
        name = d["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == UID
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == UID, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert sc.get("privileged", False) is False, name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), name
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{name} lacks {probe}"


@pytest.mark.parametrize("values", [DEFAULTS, BLUE_GREEN], ids=["single", "blue-green"])
def test_global_image_pull_secrets_reach_every_pod(values):
    objects = render(values, sets=("global.imagePullSecrets={registry-a,registry-b}",))
    assert deployments(objects)
    for d in deployments(objects):
        pod = d["spec"]["template"]["spec"]
        assert pod.get("imagePullSecrets") == [{"name": "registry-a"}, {"name": "registry-b"}], d["metadata"]["name"]
    for d in deployments(render(values)):
        assert "imagePullSecrets" not in d["spec"]["template"]["spec"], d["metadata"]["name"]


def test_service_accounts_never_mount_a_token():
    for sa in find(render(DEFAULTS), "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False


def test_the_api_uses_native_grpc_probes_and_the_others_http():
    objects = render(DEFAULTS)
    api = one(objects, "Deployment", "axiom25-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["startupProbe"]["grpc"] == {"port": 50051}
    assert api["readinessProbe"]["grpc"] == {"port": 50051}
    assert api["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "admin"}
    for name, port in [("axiom25-ui-gateway", "admin"), ("axiom25-telemetry-collector", "admin")]:
        c = one(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert c["startupProbe"]["httpGet"] == {"path": "/livez", "port": port}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port}
        assert {"grpc", "exec", "tcpSocket"}.isdisjoint(c["startupProbe"]), name


def test_pods_spread_over_zones_and_nodes():
    for d in deployments(render(BLUE_GREEN)):
        spread = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for constraint in spread:
            assert constraint["labelSelector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]


# --- network policies -------------------------------------------------------------------------

PEERS = {
    "dns": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}},
    "prometheus": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                   "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
    "ingress-controller": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
                           "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}},
    "otel-elsewhere": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
                       "podSelector": {"matchLabels": {"app.kubernetes.io/name": "opentelemetry-collector"}}},
}


def _peer_name(peer):
    for name, known in PEERS.items():
        if peer == known:
            return name
    assert set(peer) == {"podSelector"}, f"unexpected peer {peer}"
    labels = peer["podSelector"]["matchLabels"]
    assert labels["app.kubernetes.io/instance"] == "axiom25" and len(labels) == 2, f"peer wider than one component: {peer}"
    return labels["app.kubernetes.io/name"]


def flows(objects):
    """Every allowed (target, direction, peer, port/protocol), checking no rule is open-ended."""
    out = set()
    for policy in find(objects, "NetworkPolicy"):
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        selector = spec["podSelector"]["matchLabels"]
        if policy["metadata"]["name"].endswith("-default-deny"):
            assert "ingress" not in spec and "egress" not in spec
            continue
        target = selector["app.kubernetes.io/name"]
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction, []):
                assert rule.get(peers_key), f"{target} {direction} rule open to everyone"
                assert rule.get("ports"), f"{target} {direction} rule open on every port"
                for peer in rule[peers_key]:
                    for port in rule["ports"]:
                        out.add((target, direction, _peer_name(peer), f"{port['port']}/{port['protocol']}"))
    return out


DNS = {(t, "egress", "dns", f"53/{p}") for t in ("api", "ui-gateway", "telemetry-collector") for p in ("UDP", "TCP")}
FLOWS = DNS | {
    ("ui-gateway", "ingress", "ingress-controller", "http/TCP"),
    ("ui-gateway", "egress", "api", "grpc/TCP"),
    ("api", "ingress", "ui-gateway", "grpc/TCP"),
    ("api", "egress", "telemetry-collector", "otlp-grpc/TCP"),
    ("ui-gateway", "egress", "telemetry-collector", "otlp-grpc/TCP"),
    ("ui-gateway", "egress", "telemetry-collector", "admin/TCP"),
    ("telemetry-collector", "ingress", "ui-gateway", "admin/TCP"),
    ("telemetry-collector", "ingress", "api", "otlp-grpc/TCP"),
    ("telemetry-collector", "ingress", "api", "otlp-http/TCP"),
    ("telemetry-collector", "ingress", "ui-gateway", "otlp-grpc/TCP"),
    ("telemetry-collector", "ingress", "ui-gateway", "otlp-http/TCP"),
    ("api", "ingress", "prometheus", "admin/TCP"),
    ("ui-gateway", "ingress", "prometheus", "admin/TCP"),
    ("telemetry-collector", "ingress", "prometheus", "admin/TCP"),
}


def test_network_policies_allow_exactly_the_flows_the_system_needs():
    assert flows(render(DEFAULTS)) == FLOWS


def test_the_api_grpc_ingress_opens_the_api_to_the_ingress_controller_only_when_enabled():
    assert flows(render(INGRESS_TLS)) == FLOWS | {("api", "ingress", "ingress-controller", "grpc/TCP")}


def test_an_outside_otlp_endpoint_is_allowed_only_when_configured():
    expected = {f for f in FLOWS if "telemetry-collector" not in (f[0],)}
    expected |= {(t, "egress", "otel-elsewhere", "4317/TCP") for t in ("api", "ui-gateway")}
    objects = render(COLLECTOR_DISABLED)
    assert flows(objects) == expected
    assert config_of(objects, "axiom25-api")["telemetry"]["otlp_endpoint"] == "http://otel-collector.observability:4317"


def test_the_collector_forwards_upstream_only_where_configured():
    upstream = ("telemetry-collector.networkPolicy.upstream[0].to[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=observability",
                "telemetry-collector.networkPolicy.upstream[0].to[0].podSelector.matchLabels.app\\.kubernetes\\.io/name=opentelemetry-collector",
                "telemetry-collector.networkPolicy.upstream[0].ports[0].port=4317",
                "telemetry-collector.networkPolicy.upstream[0].ports[0].protocol=TCP")
    assert flows(render(DEFAULTS, sets=upstream)) == FLOWS | {("telemetry-collector", "egress", "otel-elsewhere", "4317/TCP")}


UPSTREAM = ("telemetry-collector.networkPolicy.upstream[0].to[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=observability",
            "telemetry-collector.networkPolicy.upstream[0].ports[0].port=4318",
            "telemetry-collector.networkPolicy.upstream[0].ports[0].protocol=TCP")
OTLP_EGRESS = ("global.networkPolicy.otlpEgress[0].to[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=observability",
               "global.networkPolicy.otlpEgress[0].ports[0].port=4317",
               "global.networkPolicy.otlpEgress[0].ports[0].protocol=TCP")


@pytest.mark.parametrize(("setting", "needed"), [
    ("telemetry-collector.config.forward.traces_endpoint=http://otel.observability:4318", "telemetry-collector.networkPolicy.upstream"),
    ("telemetry-collector.config.forward.metrics_endpoint=http://otel.observability:4318", "telemetry-collector.networkPolicy.upstream"),
    ("telemetry-collector.config.forward.logs_endpoint=http://otel.observability:4318", "telemetry-collector.networkPolicy.upstream"),
    ("global.otlpEndpoint=http://otel.observability:4317", "global.networkPolicy.otlpEgress"),
    ("global.otlpEndpoint=http://axiom25-telemetry-collector.elsewhere:4317", "global.networkPolicy.otlpEgress"),
])
def test_a_destination_the_network_policy_would_silently_block_is_refused_naming_the_value_to_set(setting, needed):
    result = run_helm("template", "axiom25", str(CHART), "--namespace", "axiom25", "--set", setting)
    assert result.returncode != 0, f"{setting} renders, and its traffic would be dropped"
    assert needed in result.stderr and setting.split("=")[0] in result.stderr, result.stderr


def test_a_destination_is_accepted_once_its_egress_is_allowed_or_the_policy_is_off():
    forward = "telemetry-collector.config.forward.traces_endpoint=http://otel.observability:4318"
    assert render(DEFAULTS, sets=(forward, *UPSTREAM))
    assert render(DEFAULTS, sets=(forward, "telemetry-collector.networkPolicy.enabled=false"))
    outside = "global.otlpEndpoint=http://otel.observability:4317"
    assert render(DEFAULTS, sets=(outside, *OTLP_EGRESS))
    assert render(DEFAULTS, sets=(outside, "api.networkPolicy.enabled=false", "ui-gateway.networkPolicy.enabled=false"))
    for own in ("axiom25-telemetry-collector", "axiom25-telemetry-collector.axiom25.svc.cluster.local", "telemetry-collector"):
        assert render(DEFAULTS, sets=(f"global.otlpEndpoint=http://{own}:4317",)), "the release's own collector needs no egress rule"


def test_every_pod_is_under_a_default_deny_policy_and_named_ports_exist(ci_objects):
    _, objects = ci_objects
    policies = find(objects, "NetworkPolicy")
    ports = {}
    for d in deployments(objects):
        labels = d["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
        assert any(p["metadata"]["name"].endswith("-default-deny") for p in covering), d["metadata"]["name"]
        assert len(covering) == 2, d["metadata"]["name"]
        ports.setdefault(labels["app.kubernetes.io/name"], set()).update(
            p["name"] for p in d["spec"]["template"]["spec"]["containers"][0]["ports"])
    for target, direction, peer, port in flows(objects):
        name = port.split("/")[0]
        if name.isdigit():
            continue
        owner = target if direction == "ingress" else peer
        if owner in ports:
            assert name in ports[owner], f"{target} {direction} {peer}: no port named {name} on {owner}"


def test_the_api_admin_port_admits_prometheus_by_default_and_the_peers_of_admin_from():
    """The release tool reaches each api pod's admin port through the API server's pod proxy
    (`POST /admin/reconnect-clients` after a switch). That traffic comes from the API server, not
    from Prometheus: a cluster whose CNI enforces policy on it lists the API server in `adminFrom`."""
    def admin_peers(objects):
        policy = one(objects, "NetworkPolicy", "axiom25-api")
        rules = [rule for rule in policy["spec"]["ingress"] if any(port["port"] == "admin" for port in rule["ports"])]
        assert len(rules) == 1, rules
        return rules[0]["from"]

    default = admin_peers(render(DEFAULTS))
    assert len(default) == 1 and default[0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "prometheus"
    widened = admin_peers(render(DEFAULTS, sets=("api.networkPolicy.adminFrom[0].ipBlock.cidr=10.0.0.10/32",)))
    assert widened[0] == default[0] and widened[1:] == [{"ipBlock": {"cidr": "10.0.0.10/32"}}], widened


# --- ingress, secrets, monitoring, dashboards -------------------------------------------------

def test_ingresses_have_a_class_hosts_and_tls():
    objects = render(INGRESS_TLS)
    gateway = one(objects, "Ingress", "axiom25-ui-gateway")["spec"]
    assert gateway["ingressClassName"] == "nginx"
    assert gateway["tls"] == [{"secretName": "matrix-example-com-tls", "hosts": ["matrix.example.com"]}]
    assert gateway["rules"][0]["http"]["paths"][0]["backend"]["service"] == {"name": "axiom25-ui-gateway", "port": {"name": "http"}}
    api = one(objects, "Ingress", "axiom25-api")
    assert api["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    assert not find(render(DEFAULTS), "Ingress")


KEY_HASHES = ["sha256:" + hashlib.sha256(key).hexdigest() for key in (b"k-0123456789abcdef0123", b"k-fedcba9876543210fedc")]


def _mounted_keys_file(objects):
    pod = one(objects, "Deployment", "axiom25-ui-gateway")["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "api-keys")
    volume = next(v for v in pod["volumes"] if v["name"] == "api-keys")
    return f"{mount['mountPath']}/{volume['secret']['items'][0]['path']}", volume["secret"]


def test_api_keys_come_as_hashes_from_the_charts_secret_or_an_existing_one_and_the_gateway_reads_that_file():
    inline = render(INGRESS_TLS)
    secret = one(inline, "Secret", "axiom25-ui-gateway-api-keys")
    assert secret["stringData"]["api-keys"].split() == KEY_HASHES
    pod = one(inline, "Deployment", "axiom25-ui-gateway")["spec"]["template"]
    assert "checksum/api-keys" in pod["metadata"]["annotations"]
    path, _ = _mounted_keys_file(inline)
    assert config_of(inline, "axiom25-ui-gateway")["auth"] == {"api_keys_file": path}
    existing = render(EXISTING_SECRET)
    assert not find(existing, "Secret")
    path, volume = _mounted_keys_file(existing)
    assert volume == {"secretName": "axiom25-gateway-keys", "items": [{"key": "keys", "path": "api-keys"}]}
    assert config_of(existing, "axiom25-ui-gateway")["auth"] == {"api_keys_file": path}
    defaults = render(DEFAULTS)
    assert not find(defaults, "Secret")
    assert "auth" not in config_of(defaults, "axiom25-ui-gateway"), "no keys: the REST API is open"


@pytest.mark.parametrize("key", ["k-0123456789abcdef0123", "sha256:" + "A" * 64, "sha256:" + "a" * 63])
def test_anything_but_a_sha256_hash_is_refused_as_an_api_key(key):
    result = run_helm("template", "axiom25", str(CHART), "--namespace", "axiom25", "--set", f"ui-gateway.apiKeys.hashes[0]={key}")
    assert result.returncode != 0 and "hashes" in result.stderr, result.stderr


def test_the_gateway_reads_ops_data_from_the_releases_collector_unless_there_is_none_or_a_value_says_otherwise():
    assert config_of(render(DEFAULTS), "axiom25-ui-gateway")["ops"] == {"collector_endpoint": "http://axiom25-telemetry-collector:8888"}
    collector = one(render(DEFAULTS), "Service", "axiom25-telemetry-collector")["spec"]["ports"]
    assert {"name": "admin", "port": 8888, "targetPort": "admin", "protocol": "TCP", "appProtocol": "http"} in collector
    assert config_of(render(COLLECTOR_DISABLED), "axiom25-ui-gateway")["ops"] == {"collector_endpoint": ""}
    elsewhere = "ui-gateway.config.ops.collector_endpoint=http://collector.observability:8888"
    assert config_of(render(COLLECTOR_DISABLED, sets=(elsewhere,)), "axiom25-ui-gateway")["ops"]["collector_endpoint"] == "http://collector.observability:8888"
    off = render(DEFAULTS, sets=("ui-gateway.config.ops.collector_endpoint=",))
    assert config_of(off, "axiom25-ui-gateway")["ops"] == {"collector_endpoint": ""}


def test_monitoring_objects_appear_only_with_the_crds_and_carry_the_selector_labels():
    assert not find(render(DEFAULTS), "ServiceMonitor")
    objects = render(DEFAULTS, sets=("global.monitoring.labels.release=prom", "api.serviceMonitor.labels.team=matrix"),
                     api_versions=("monitoring.coreos.com/v1",))
    monitors = {m["metadata"]["name"]: m for m in find(objects, "ServiceMonitor")}
    assert set(monitors) == {"axiom25-api", "axiom25-ui-gateway", "axiom25-telemetry-collector"}
    assert monitors["axiom25-api"]["metadata"]["labels"]["team"] == "matrix"
    services = find(objects, "Service")
    for monitor in monitors.values():
        assert monitor["metadata"]["labels"]["release"] == "prom"
        selected = [s for s in services if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert len(selected) == 1 and "admin" in {p["name"] for p in selected[0]["spec"]["ports"]}
    rules = {r["metadata"]["name"]: r["spec"] for r in find(objects, "PrometheusRule")}
    assert rules == {f"axiom25-{p.stem}": yaml.safe_load(p.read_text()) for p in (ROOT / "infrastructure/monitoring/prometheus/rules").glob("*.yml")}
    assert find(render(EXISTING_SECRET), "ServiceMonitor"), "global.monitoring.assumeCrds forces them"


EXPOSED_TYPES = ("api.service.type=LoadBalancer", "ui-gateway.service.type=NodePort", "telemetry-collector.service.type=LoadBalancer")


@pytest.mark.parametrize("values", [DEFAULTS, BLUE_GREEN], ids=["single", "blue-green"])
@pytest.mark.parametrize("crds", [(), ("monitoring.coreos.com/v1",)], ids=["no-crds", "crds"])
def test_admin_ports_never_leave_the_cluster_yet_prometheus_still_scrapes_them(values, crds):
    """docs/contracts.md §1: a NodePort or LoadBalancer Service never carries the admin port; the
    ServiceMonitor then scrapes a ClusterIP `<name>-admin` Service, rendered only for it."""
    objects = render(values, sets=EXPOSED_TYPES, api_versions=crds)
    services = find(objects, "Service")
    for service in services:
        if service["spec"]["type"] != "ClusterIP":
            names = {p["name"] for p in service["spec"]["ports"]}
            targets = {p["targetPort"] for p in service["spec"]["ports"]}
            assert "admin" not in names | targets, f"{service['metadata']['name']} exposes admin outside the cluster"
    exposed = {s["metadata"]["name"] for s in services if s["spec"]["type"] != "ClusterIP"}
    assert exposed == {"axiom25-api", "axiom25-ui-gateway", "axiom25-telemetry-collector"}
    admin_services = {s["metadata"]["name"] for s in services if s["metadata"]["name"].endswith("-admin")}
    monitors = find(objects, "ServiceMonitor")
    if not crds:
        assert not monitors and not admin_services, "no ServiceMonitor, so no admin Service"
        return
    assert len(monitors) == 3
    for monitor in monitors:
        selected = [s for s in services if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert selected, f"ServiceMonitor {monitor['metadata']['name']} selects no Service"
        for service in selected:
            assert service["spec"]["type"] == "ClusterIP"
            assert "admin" in {p["name"] for p in service["spec"]["ports"]}
    expected = {"axiom25-ui-gateway-admin", "axiom25-telemetry-collector-admin"}
    if values == DEFAULTS:
        expected.add("axiom25-api-admin")  # with blue/green the preview Services carry the api's admin port
    assert admin_services == expected
    assert not find(render(values, api_versions=crds), "Service", "axiom25-ui-gateway-admin"), "ClusterIP needs no admin Service"


def test_blue_green_scrapes_both_colours_through_their_preview_services():
    objects = render(BLUE_GREEN, api_versions=("monitoring.coreos.com/v1",))
    monitor = one(objects, "ServiceMonitor", "axiom25-api")
    selected = {s["metadata"]["name"] for s in find(objects, "Service")
                if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()}
    assert selected == {"axiom25-api-blue", "axiom25-api-green"}


def test_grafana_dashboards_are_labelled_configmaps_of_valid_dashboards():
    dashboards = [c for c in find(render(DEFAULTS), "ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert dashboards
    for configmap in dashboards:
        for content in configmap["data"].values():
            dashboard = json.loads(content)
            assert dashboard["uid"] and dashboard["panels"]
            assert all(t["expr"] for p in dashboard["panels"] for t in p["targets"])


def test_a_disabled_subchart_renders_nothing():
    objects = render(COLLECTOR_DISABLED)
    assert not [o for o in objects if o["metadata"]["labels"]["app.kubernetes.io/name"] == "telemetry-collector"]
    assert one(objects, "Deployment", "axiom25-api")


# --- values schema ----------------------------------------------------------------------------

BAD_VALUES = [
    ("api.autoscaling.minReplicas=1", "minReplicas"),
    ("api.blueGreen.activeColor=purple", "activeColor"),
    ("api.replicas=3", "replicas"),
    ("api.config.limits.max_rowz=10", "max_rowz"),
    ("api.config.server.grpc_port=1", "grpc_port"),
    ("api.config.shutdown.grace_period_ms=1", "shutdown"),
    ("api.config.telemetry.log_format=xml", "log_format"),
    ("api.config.limits.max_rows=0", "max_rows"),
    ("api.blueGreen.green.config.compute.workerz=2", "workerz"),
    ("ui-gateway.config.auth.api_keys_file=/keys", "api_keys_file"),
    ("ui-gateway.config.api.max_attempts=11", "max_attempts"),
    ("telemetry-collector.config.forward.full_policy=sometimes", "full_policy"),
    ("telemetry-collector.config.span_metrics.buckets_seconds[0]=0", "buckets_seconds"),
    ("ui-gateway.securityContext.runAsUser=0", "runAsUser"),
    ("ui-gateway.securityContext.allowPrivilegeEscalation=true", "allowPrivilegeEscalation"),
    ("telemetry-collector.securityContext.readOnlyRootFilesystem=false", "readOnlyRootFilesystem"),
    ("ui-gateway.securityContext.capabilities.add[0]=NET_ADMIN", "capabilities/add"),
    ("ui-gateway.securityContext.capabilities.drop=null", "drop"),
    ("api.securityContext.capabilities.drop[0]=NET_RAW", "capabilities/drop"),
    ("telemetry-collector.securityContext.capabilities.drop=null", "drop"),
    ("api.securityContext.seccompProfile.type=Unconfined", "securityContext/seccompProfile/type"),
    ("api.podSecurityContext.seccompProfile.type=Unconfined", "podSecurityContext/seccompProfile/type"),
    ("telemetry-collector.securityContext.seccompProfile.type=Unconfined", "seccompProfile/type"),
    ("ui-gateway.podSecurityContext.seccompProfile.type=Unconfined", "seccompProfile/type"),
    ("telemetry-collector.podSecurityContext.seccompProfile.type=Localhost", "localhostProfile"),
    ("api.podSecurityContext.seccompProfile=null", "seccompProfile"),
    ("telemetry-collector.config.limits.max_rows=1", "limits"),
    ("telemetry-collector.pdb.unhealthyPodEvictionPolicy=Sometimes", "unhealthyPodEvictionPolicy"),
    ("global.imageDigests.api=latest", "imageDigests"),
    ("global.imageDigests.db=sha256:" + "0" * 64, "imageDigests"),
    ("global.otlpEndpoint=collector:4317", "otlpEndpoint"),
    ("global.unknown=1", "unknown"),
    ("grafanaDashboards.enabled=maybe", "enabled"),
    ("api.ports.grpc=70000", "grpc"),
    ("ui-gateway.ingress.hosts[0].host=x", "paths"),
]


@pytest.mark.parametrize(("setting", "key"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_values_are_refused_with_a_message_naming_the_key(setting, key):
    result = run_helm("template", "axiom25", str(CHART), "--set", setting)
    assert result.returncode != 0, f"{setting} was accepted"
    assert key in result.stderr, result.stderr


def _chartgen():
    spec = importlib.util.spec_from_file_location("chartgen", ROOT / "tools" / "helm" / "chartgen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_constraint_on_a_setting_the_service_lacks_stops_the_chart_generator():
    chartgen = _chartgen()
    config = chartgen.chart_config_schema("api", [])
    chartgen.narrow(config, {"properties": {"limits": {"properties": {"max_rows": {"minimum": 1}}}}}, "api: config")
    assert config["properties"]["limits"]["properties"]["max_rows"]["minimum"] == 1
    with pytest.raises(SystemExit, match=r"api: config\.limits\.max_rowz is not a setting"):
        chartgen.narrow(config, {"properties": {"limits": {"properties": {"max_rowz": {"minimum": 1}}}}}, "api: config")


def test_a_chart_owned_key_the_service_lacks_stops_the_chart_generator():
    chartgen = _chartgen()
    assert "shutdown" not in chartgen.chart_config_schema("api", ["shutdown/drain_delay_ms", "shutdown/grace_period_ms"])["properties"]
    with pytest.raises(SystemExit, match="server/grpc_portz is not a setting of api"):
        chartgen.chart_config_schema("api", ["server/grpc_portz"])


def test_every_schema_is_strict_and_declares_global_and_enabled():
    for path in [CHART / "values.schema.json", *(CHART / "charts").glob("*/values.schema.json")]:
        schema = json.loads(path.read_text())
        assert schema["additionalProperties"] is False, path
        assert "global" in schema["properties"], path
        if path.parent != CHART:
            assert schema["properties"]["enabled"]["type"] == "boolean", path
            assert schema["properties"]["global"] == json.loads((CHART / "values.schema.json").read_text())["properties"]["global"]


def test_helm_install_refuses_bad_values_before_touching_a_cluster():
    result = run_helm("install", "axiom25", str(CHART), "--dry-run=client", "--set", "api.blueGreen.activeColor=red")
    assert result.returncode != 0 and "/blueGreen/activeColor" in result.stderr, result.stderr


def test_the_notes_tell_how_to_switch_colours():
    result = run_helm("install", "axiom25", str(CHART), "--dry-run=client", "-n", "axiom25", "-f", str(BLUE_GREEN))
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "traffic goes to green" in notes
    assert "--set api.blueGreen.activeColor=blue" in notes


@pytest.mark.parametrize(("version", "accepted"), [("1.28.0", False), ("1.29.0", True), ("1.37.0", True)])
def test_the_chart_installs_on_kubernetes_1_29_and_later(version, accepted):
    result = run_helm("template", "axiom25", str(CHART), "--kube-version", version)
    assert (result.returncode == 0) == accepted, result.stderr
