"""tools/host/packages.sh: the one list of host packages behind `make up`, `make test` and .ci/run."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "host" / "packages.sh"


def fake_path(tmp_path, present):
    """A PATH holding only bash, coreutils-like basics and the named tools (as stubs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ["bash", "id", "printf", "cat", "env"]:
        real = shutil.which(tool)
        if real:
            (bin_dir / tool).symlink_to(real)
    for tool in present:
        stub = bin_dir / tool
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return str(bin_dir)


def run(goal, path, *extra):
    return subprocess.run(["bash", str(SCRIPT), goal, *extra], env={"PATH": path}, capture_output=True, text=True)


def test_a_missing_debootstrap_is_named_in_one_line_with_the_command_to_run(tmp_path):
    path = fake_path(tmp_path, ["curl", "make", "git", "python3", "docker-compose"])
    result = run("up", path, "--check")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["[host] missing for make up: run `sudo apt-get install -y debootstrap` and try again"]


def test_make_test_also_needs_chromium_and_its_driver_and_the_prometheus_tools(tmp_path):
    path = fake_path(tmp_path, ["curl", "make", "git", "python3", "docker-compose", "debootstrap", "promtool", "amtool"])
    result = run("test", path, "--check")
    assert result.returncode == 1
    assert "sudo apt-get install -y chromium chromium-driver` and" in result.stderr


def test_the_rule_and_route_tests_need_promtool_and_amtool(tmp_path):
    path = fake_path(tmp_path, ["curl", "make", "git", "python3", "docker-compose", "debootstrap", "chromium", "chromedriver"])
    result = run("test", path, "--check")
    assert "sudo apt-get install -y prometheus prometheus-alertmanager` and" in result.stderr


def test_nothing_is_said_when_everything_is_there(tmp_path):
    tools = ["curl", "make", "git", "python3", "docker-compose", "debootstrap", "chromium", "chromedriver", "promtool", "amtool"]
    result = run("test", fake_path(tmp_path, tools), "--check")
    assert (result.returncode, result.stderr) == (0, "")


def test_an_unknown_goal_is_a_usage_error(tmp_path):
    result = run("deploy", fake_path(tmp_path, []))
    assert result.returncode == 2 and "usage" in result.stderr


def test_ci_and_both_make_goals_use_the_one_list():
    makefile = (ROOT / "Makefile").read_text()
    assert "tools/host/packages.sh up" in makefile and "tools/host/packages.sh test" in makefile
    assert "tools/host/packages.sh test" in (ROOT / ".ci" / "run").read_text()
    assert os.access(SCRIPT, os.X_OK)
