"""Lint and types are part of the suite: `make lint` (ruff over the tree, mypy over every bookrec_* package of
services/ and tooling/, configured in pyproject.toml) finds nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_and_mypy_find_nothing():
    done = subprocess.run(["make", "-s", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "All checks passed!" in done.stdout and "Success: no issues found" in done.stdout
