"""The ETL installs only what it uses: in a fresh virtualenv, `pip install ./services/catalog ./data-processing`
brings the catalogue rules and the ETL's own dependencies, and no web stack (the services' framework, async
clients and Redis come with bookrec-common, which the ETL does not need)."""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB_STACK = {"litestar", "aioboto3", "aiobotocore", "redis", "granian", "aiohttp", "bookrec-common"}


@pytest.mark.slow
def test_the_etl_installs_without_the_web_stack(tmp_path):
    # Installed from copies: a non-editable install builds in its source tree, which must stay clean.
    skip = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests")
    for package in ("services/catalog", "data-processing"):
        shutil.copytree(ROOT / package, tmp_path / "src" / package, ignore=skip)
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c", str(ROOT / "constraints.txt"),
         str(tmp_path / "src" / "services" / "catalog"), str(tmp_path / "src" / "data-processing")],
        capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format", "freeze"], capture_output=True, text=True,
                            check=True).stdout
    packages = {line.split("==")[0].lower().replace("_", "-") for line in listed.splitlines()}
    assert {"bookrec-etl", "bookrec-catalog", "boto3"} <= packages
    assert not packages & WEB_STACK, sorted(packages & WEB_STACK)
    ran = subprocess.run([str(tmp_path / "venv" / "bin" / "bookrec-etl"), "--help"], capture_output=True, text=True)
    assert ran.returncode == 0 and "reconcile" in ran.stdout, ran.stderr
    every_module = ("import importlib, pkgutil, bookrec_etl; [importlib.import_module(m.name) for m in "
                    "pkgutil.walk_packages(bookrec_etl.__path__, 'bookrec_etl.') if m.name != 'bookrec_etl.__main__']")
    imported = subprocess.run([str(python), "-c", every_module], capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr[-3000:]
