"""Lint and types are part of the suite: `make lint` (ruff over the tree, mypy over every bookrec_* package of
services/, data-processing/ and tooling/, configured in pyproject.toml) finds nothing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_and_mypy_find_nothing():
    done = subprocess.run(["make", "-s", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "All checks passed!" in done.stdout and "Success: no issues found" in done.stdout


# An ignore names its rule and says why: "noqa: <RULE> - why", or "type: ignore[<code>]" then "# why".
IGNORE = re.compile(r"#\s*(noqa|type:\s*ignore)\b(?P<rest>.*)$")
REASONED = re.compile(r"^(: [A-Z]+\d+(, [A-Z]+\d+)* - \S.*|\[[a-z, -]+\]\s+#\s*\S.*)$")


def test_every_per_line_ignore_names_its_rule_and_says_why():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    bare = []
    for name in tracked.stdout.split():
        for number, line in enumerate((ROOT / name).read_text().splitlines(), start=1):
            found = IGNORE.search(line)
            if found and not REASONED.match(found["rest"].rstrip()):
                bare.append(f"{name}:{number}: {line.strip()}")
    assert bare == [], "\n".join(bare)
