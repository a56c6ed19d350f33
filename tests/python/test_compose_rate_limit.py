"""The local stack's gateway rate limit: off by default, so a load test from the host runs (every
host client arrives from the Docker bridge's one address), and set by GATEWAY_RATE_LIMIT_RPS."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "infrastructure" / "docker" / "docker-compose.yml"
SETTING = "AXIOM25__RATE_LIMIT__REQUESTS_PER_SECOND"


def resolved_limit(extra_env):
    """The gateway's rate-limit setting as docker-compose resolves it."""
    env = {key: value for key, value in os.environ.items() if key != "GATEWAY_RATE_LIMIT_RPS"}
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "-p", "axiom25", "config"],
                            env={**env, **extra_env}, capture_output=True, text=True, check=True, timeout=60)
    gateway = result.stdout.split("\n  ui-gateway:\n", 1)[1]
    match = re.search(rf"^\s+{SETTING}: '?(\d+)'?$", gateway, re.MULTILINE)
    assert match, result.stdout
    return int(match.group(1))


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is a host package of make up")
def test_the_local_stack_gateway_has_no_per_address_limit_unless_asked():
    assert resolved_limit({}) == 0
    assert resolved_limit({"GATEWAY_RATE_LIMIT_RPS": "50"}) == 50
