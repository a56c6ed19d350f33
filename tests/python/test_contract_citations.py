"""Code and docs cite the contracts a clone carries (docs/contracts.md), never the steering file outside it."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "docs" / "contracts.md"


def tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_file_cites_a_contracts_file_outside_the_repository():
    offenders = []
    for path in tracked_files():
        if path in (CONTRACTS, Path(__file__).resolve()) or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if "CONTRACTS" in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "cite docs/contracts.md §N instead:\n" + "\n".join(offenders)


def test_every_cited_section_exists_in_docs_contracts():
    sections = set(re.findall(r"^## (\d+)\. ", CONTRACTS.read_text(), re.M))
    cited = set()
    for path in tracked_files():
        if path.suffix in {".rs", ".py", ".md", ".yaml", ".yml", ".proto", ".toml", ".tpl", ".sh"} and path.is_file():
            cited |= set(re.findall(r"docs/contracts\.md §(\d+)", path.read_text()))
    assert cited and cited <= sections, f"cited {sorted(cited)}, present {sorted(sections)}"
