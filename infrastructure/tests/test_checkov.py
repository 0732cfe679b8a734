"""Checkov over infrastructure/: every finding is fixed, or skipped in the Terraform with a one-line
reason (`#checkov:skip=ID:reason`). Checkov lives in its own virtualenv (.venv-checkov, `make checkov`):
its botocore pin conflicts with aiobotocore's."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from bookrec_local.definitions import ROOT

INFRASTRUCTURE = ROOT / "infrastructure"
PINNED = re.search(r"^checkov==(\S+)$", (INFRASTRUCTURE / "checkov-requirements.txt").read_text(), re.M).group(1)


def checkov_binary() -> Path | None:
    candidate = Path(os.environ.get("CHECKOV_BIN", ROOT / ".venv-checkov" / "bin" / "checkov"))
    return candidate if candidate.is_file() else None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    checkov_binary() is None,
    reason="checkov is not installed: `make checkov` creates .venv-checkov "
           "(make test runs it; the install needs PyPI)")]


@pytest.fixture(scope="module")
def report() -> dict:
    binary = checkov_binary()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    assert version == PINNED, (f".venv-checkov has checkov {version}, "
                               f"infrastructure/checkov-requirements.txt pins {PINNED}")
    result = subprocess.run(
        [str(binary), "--directory", str(INFRASTRUCTURE), "--framework", "terraform", "--output", "json",
         "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"})
    assert result.stdout.strip(), result.stderr[-2000:]
    parsed = json.loads(result.stdout)
    reports = parsed if isinstance(parsed, list) else [parsed]
    return next(r for r in reports if r.get("check_type") == "terraform")


def test_checkov_finds_nothing_unjustified(report):
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}"
              for c in report["results"]["failed_checks"]]
    assert not failed, "fix these or skip them in the code with a reason:\n" + "\n".join(failed)
    assert report["summary"]["passed"] > 100, "checkov scanned nothing: did it find the modules?"


def test_every_skip_says_why(report):
    skipped = report["results"]["skipped_checks"]
    unexplained = [f"{c['check_id']} {c['resource']}" for c in skipped
                   if len((c["check_result"].get("suppress_comment") or "").strip()) < 20]
    assert not unexplained, f"skips without a reason: {unexplained}"
