#!/usr/bin/env python3
"""Generates what the charts derive from one source, so nothing is kept in two places by hand.

- the `global` block of every subchart's values.yaml, copied from the umbrella's (between the
  `# BEGIN global` and `# END global` lines);
- every chart's values.schema.json, inferred from its values.yaml (each `# --` documented key
  becomes a property; a documented map with no documented children is free-form) plus the
  constraints in tools/helm/schema-overrides.yaml; objects are strict (`additionalProperties: false`).
  A subchart's `config` (the service's own settings) is not inferred: it is the service's Settings
  schema, docs/config/<service>.schema.json (generated from the Rust types by
  `cargo run -p axiom25-config-reference`), less the keys the chart writes itself, narrowed by the
  overrides' constraints;
- the parameter table of helm/axiom25/README.md, from the `# --` comments.

`chartgen.py` writes the files; `chartgen.py --check` writes nothing and fails naming every file
that differs from what it would write.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
UMBRELLA = ROOT / "helm" / "axiom25"
SUBCHARTS = ("api", "ui-gateway", "telemetry-collector", "monitoring")
OVERRIDES = ROOT / "tools" / "helm" / "schema-overrides.yaml"
SETTINGS_SCHEMAS = ROOT / "docs" / "config"
# Keywords of the generated Settings schemas that carry over into a chart's schema (draft-07):
# `format` (uint16, ip, ...) and `default` are documentation there, and helm checks neither.
SETTINGS_KEYWORDS = {"type", "enum", "description", "properties", "additionalProperties", "items", "minimum", "maximum", "pattern", "minLength", "maxLength"}
GLOBAL_BLOCK = re.compile(r"^# BEGIN global.*?^# END global\n", re.S | re.M)
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-/]+):(?:\s|$)")
DOC_LINE = re.compile(r"^ *# -- ?(?P<text>.*)$")
DOC_CONTINUATION = re.compile(r"^ *#   ?(?P<text>.*)$")
README_TABLE = re.compile(r"(<!-- BEGIN parameters.*?-->\n).*?(<!-- END parameters -->)", re.S)


def documented_paths(text: str) -> dict[tuple[str, ...], str]:
    """Every key path that has a `# --` comment right above it, with that comment."""
    docs: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        if (match := DOC_LINE.match(line)) is not None:
            pending = [match["text"]]
            continue
        if pending is not None and (match := DOC_CONTINUATION.match(line)) is not None:
            pending.append(match["text"])
            continue
        if (match := KEY_LINE.match(line)) is None:
            if line.strip() and not line.lstrip().startswith("#"):
                pending = None
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if pending is not None:
            docs[tuple(key for _, key in stack)] = " ".join(pending).strip()
        pending = None
    return docs


def leaves(value: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        return [leaf for key, child in value.items() for leaf in leaves(child, path + (key,))]
    return [path]


def undocumented(values: dict, docs: dict) -> list[str]:
    """Leaf keys with no documented ancestor-or-self."""
    return [
        ".".join(leaf)
        for leaf in leaves(values)
        if not any(leaf[:n] in docs for n in range(1, len(leaf) + 1))
    ]


def has_documented_children(path: tuple[str, ...], docs: dict) -> bool:
    return any(len(other) > len(path) and other[: len(path)] == path for other in docs)


# bool before int: True is an int too.
JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"), (dict, "object"))


def json_type(value: object) -> dict:
    return next(({"type": name} for kind, name in JSON_TYPES if isinstance(value, kind)), {})


def infer(value: object, path: tuple[str, ...], docs: dict) -> dict:
    schema: dict = {}
    if path in docs:
        schema["description"] = docs[path]
    if isinstance(value, dict) and has_documented_children(path, docs):
        schema.update(
            type="object",
            additionalProperties=False,
            properties={key: infer(child, path + (key,), docs) for key, child in value.items()},
        )
        return schema
    schema.update(json_type(value))
    return schema


def settings_fragment(schema: dict) -> dict:
    """A generated Settings schema (draft 2020-12) as a chart schema fragment (draft-07)."""
    out: dict = {}
    for key, value in schema.items():
        if key == "oneOf" and all("const" in variant for variant in value):
            out["enum"] = [variant["const"] for variant in value]  # a documented Rust enum
        elif key == "properties":
            out[key] = {name: settings_fragment(child) for name, child in value.items()}
        elif key == "items":
            out[key] = settings_fragment(value)
        elif key in SETTINGS_KEYWORDS:
            out[key] = copy.deepcopy(value)
    return out


def chart_config_schema(chart: str, chart_owned: list[str]) -> dict:
    """The `config` a subchart accepts: its service's settings less the keys the chart writes."""
    path = SETTINGS_SCHEMAS / f"{chart}.schema.json"
    if not path.exists():
        raise SystemExit(f"{path.relative_to(ROOT)}: missing; run `cargo run -p axiom25-config-reference`")
    schema = settings_fragment(json.loads(path.read_text()))
    schema.pop("description", None)
    for dotted in chart_owned:
        *parents, key = dotted.split("/")
        node = schema
        for parent in parents:
            node = node["properties"][parent]
        if key not in node.get("properties", {}):
            raise SystemExit(f"schema-overrides.yaml: settings: {chart}: {dotted} is not a setting of {chart}")
        del node["properties"][key]
        if parents and not node["properties"]:
            del schema["properties"][parents[0]]
    return schema


def narrow(node: dict, override: dict, where: str) -> None:
    """Adds the override's constraints to a generated Settings node; naming a key the settings
    do not have is an error, so a renamed setting cannot leave a stale constraint behind."""
    for key, value in override.items():
        if key == "properties":
            for name, child in value.items():
                if name not in node.get("properties", {}):
                    raise SystemExit(f"schema-overrides.yaml: {where}.{name} is not a setting (docs/config)")
                narrow(node["properties"][name], child, f"{where}.{name}")
        elif key == "items" and isinstance(node.get("items"), dict):
            narrow(node["items"], value, f"{where}[]")
        else:
            node[key] = copy.deepcopy(value)


def apply_override(schema: dict, path: tuple[str, ...], override: dict, strict: bool, chart: str,
                   settings_paths: set[tuple[str, ...]]) -> None:
    node = schema
    for key in path:
        properties = node.get("properties", {})
        if key not in properties:
            if strict:
                raise SystemExit(f"schema-overrides.yaml: {chart}: no key {'.'.join(path)} in values.yaml")
            return
        node = properties[key]
    if path in settings_paths:
        narrow(node, override, f"{chart}: {'.'.join(path)}")
    else:
        node.update(copy.deepcopy(override))


def chart_schema(chart: str, values_text: str, overrides: dict) -> dict:
    values = yaml.safe_load(values_text)
    docs = documented_paths(values_text)
    if missing := undocumented(values, docs):
        raise SystemExit(f"{chart}: values without a `# --` comment: {', '.join(missing)}")
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"Values of the {chart} chart (generated by tools/helm/chartgen.py)",
        **infer(values, (), docs),
    }
    schema.pop("description", None)
    settings = (overrides.get("settings") or {}).get(chart)
    settings_paths: set[tuple[str, ...]] = set()
    if settings is not None:
        config = chart_config_schema(chart, settings["chartOwned"])
        for dotted in settings["values"]:
            path = tuple(dotted.split("/"))
            node = schema
            for key in path[:-1]:
                node = node["properties"][key]
            if path[-1] not in node.get("properties", {}):
                raise SystemExit(f"schema-overrides.yaml: settings: {chart}: no key {'.'.join(path)} in values.yaml")
            described = {"description": node["properties"][path[-1]]["description"]}
            node["properties"][path[-1]] = described | copy.deepcopy(config)
            settings_paths.add(path)
    layers = [("*", False)] if chart != "axiom25" else []
    layers += [("global", False), (chart, True)]
    for layer, strict in layers:
        for dotted, override in (overrides.get(layer) or {}).items():
            path = tuple(dotted.split("/"))
            if layer == "global":
                path = ("global",) + path
            apply_override(schema, path, override, strict, chart, settings_paths)
    return schema


def render_table(prefix: str, values_text: str) -> list[str]:
    values = yaml.safe_load(values_text)
    docs = documented_paths(values_text)
    rows = []
    for path, text in docs.items():
        # A subchart's `global` and `enabled` are documented once, at the umbrella.
        if has_documented_children(path, docs) or (prefix and path[0] in ("global", "enabled")):
            continue
        value = values
        for key in path:
            value = value[key]
        default = json.dumps(value, separators=(", ", ": "))
        key = ".".join((prefix,) + path if prefix else path)
        rows.append(f"| `{key}` | {json_type(value).get('type', 'null')} | `{default}` | {text} |")
    return rows


def generate() -> dict[Path, str]:
    """Every generated file with its content."""
    out: dict[Path, str] = {}
    overrides = yaml.safe_load(OVERRIDES.read_text())
    umbrella_values = (UMBRELLA / "values.yaml").read_text()
    global_block = GLOBAL_BLOCK.search(umbrella_values)
    if global_block is None:
        raise SystemExit("helm/axiom25/values.yaml: no `# BEGIN global` ... `# END global` block")
    charts = {"axiom25": (UMBRELLA, umbrella_values)}
    for chart in SUBCHARTS:
        path = UMBRELLA / "charts" / chart / "values.yaml"
        block = global_block.group(0).split("\n", 1)[1]
        header = "# BEGIN global: copied from helm/axiom25/values.yaml by tools/helm/chartgen.py; edit it there.\n"
        text, count = GLOBAL_BLOCK.subn(lambda _: header + block, path.read_text())
        if count != 1:
            raise SystemExit(f"{path}: needs exactly one `# BEGIN global` ... `# END global` block")
        out[path] = text
        charts[chart] = (path.parent, text)
    for chart, (directory, text) in charts.items():
        schema = chart_schema(chart, text, overrides)
        out[directory / "values.schema.json"] = json.dumps(schema, indent=2) + "\n"
    readme = UMBRELLA / "README.md"
    table = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for chart, (_, text) in charts.items():
        table += render_table("" if chart == "axiom25" else chart, text)
    current = readme.read_text()
    if not README_TABLE.search(current):
        raise SystemExit(f"{readme}: no <!-- BEGIN parameters --> ... <!-- END parameters --> section")
    out[readme] = README_TABLE.sub(lambda m: m[1] + "\n".join(table) + "\n" + m[2], current)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = parser.parse_args()
    stale = []
    for path, content in generate().items():
        if path.exists() and path.read_text() == content:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("stale generated files (run `make chart-generate`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
