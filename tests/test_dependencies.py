"""Known vulnerabilities in the installed dependencies (pip-audit against PyPI's advisory data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# pip-audit asks PyPI about every installed package.
pytestmark = pytest.mark.slow


def test_no_installed_dependency_has_a_known_vulnerability():
    cli = Path(sys.executable).with_name("pip-audit")
    if not cli.exists():
        pytest.skip("pip-audit is not installed (make deps installs requirements-dev.txt)")
    result = subprocess.run([str(cli), "--format", "json", "--skip-editable", "--vulnerability-service", "pypi",
                             "--progress-spinner", "off"], capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pip-audit gave no report (exit {result.returncode}): {result.stderr[-2000:]}")
    audited = [d for d in report["dependencies"] if "skip_reason" not in d]
    if not audited:
        pytest.skip(f"no advisory data reachable from this machine: all {len(report['dependencies'])} "
                    "dependencies went unaudited (pip-audit -s pypi needs PyPI's JSON API)")
    vulnerable = {f"{d['name']} {d['version']}": [v["id"] for v in d["vulns"]] for d in audited if d["vulns"]}
    print(f"\npip-audit: {len(audited)} of {len(report['dependencies'])} dependencies audited")
    assert not vulnerable, f"known vulnerabilities: {vulnerable}"
