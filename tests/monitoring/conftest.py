"""Shared fixtures of the monitoring tests: the repository's paths, the tools' modules and the
promtool/amtool binaries (Debian's `prometheus` and `prometheus-alertmanager` packages)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "infrastructure" / "monitoring"
RULES = MONITORING / "prometheus" / "rules"
sys.path.insert(0, str(ROOT / "tools" / "monitoring"))


def binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: apt-get install {package}")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return binary("promtool", "prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return binary("amtool", "prometheus-alertmanager")


def rule_files() -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(RULES.glob("*.yml"))}


def alerts() -> list[dict]:
    return [rule for doc in rule_files().values() for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def recording_rules() -> list[dict]:
    return [rule for doc in rule_files().values() for group in doc["groups"] for rule in group["rules"] if "record" in rule]
