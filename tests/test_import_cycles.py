"""No import cycle anywhere between the project's modules (every import counted, inside functions and
TYPE_CHECKING blocks too): each package's layers are held in its own tests; this one holds the whole."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bookrec_local.imports import package_modules, reached

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(init.parent.name for pattern in ("services/*/bookrec_*/__init__.py", "tooling/bookrec_*/__init__.py",
                                                   "data-processing/bookrec_*/__init__.py")
                  for init in ROOT.glob(pattern))


def test_every_package_is_found():
    assert {"bookrec_catalog", "bookrec_common", "bookrec_search", "bookrec_etl", "bookrec_local"} <= set(PACKAGES)
    assert all(importlib.util.find_spec(package) for package in PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_itself_back(package):
    cycles = [module for module in package_modules(package) if module in reached(module)]
    assert cycles == [], f"in import cycles: {cycles}"
