"""The package's imports go one way: the core knows no I/O and never the `SearchIndex` that calls it, the
replica's side and the build side never import each other, and nothing imports in a circle (every import
counted, inside functions too)."""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

import pytest

PACKAGE = "bookrec_search"
CORE = ["scoring", "parts", "columns", "documents", "lexicon", "facets", "building", "matching", "filtering",
        "refresh", "index", "highlight"]
HELPERS = ["scoring", "parts", "columns", "documents", "lexicon", "facets", "building", "matching",
           "filtering", "refresh", "artifact", "catchup"]  # what index.py calls: never index.py back
IO_LIBRARIES = ("litestar", "boto3", "botocore", "aioboto3", "aiobotocore", "redis", "aiohttp")


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every module `module` imports (absolute names, any depth of the code), as written."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    names = set()
    for node in ast.walk(ast.parse(Path(spec.origin).read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names
                         if _is_module(f"{node.module}.{alias.name}"))
    return frozenset(names)


def _is_module(name: str) -> bool:
    """Whether `name` is a module (`from package import module`), not a name inside one."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def reached(module: str, within: tuple[str, ...] = ("bookrec_",)) -> set[str]:
    """Every module `module` imports, directly or through the project's own modules."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for name in imports_of(todo.pop()):
            if name not in seen:
                seen.add(name)
                if name.startswith(within):
                    todo.append(name)
    return seen


def own(name: str) -> str:
    return f"{PACKAGE}.{name}"


def package_modules() -> list[str]:
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    return sorted(own(path.stem) for path in root.glob("*.py") if path.stem != "__init__")


@pytest.mark.parametrize("module", CORE)
def test_the_core_does_no_io(module):
    io = sorted(name for name in reached(own(module)) if name.split(".")[0] in IO_LIBRARIES)
    assert io == [], f"{module} reaches {io}"


@pytest.mark.parametrize("module", HELPERS)
def test_the_helpers_take_arrays_never_the_index_that_calls_them(module):
    assert own("index") not in reached(own(module))


SIDES = [("live", "builder"), ("builder", "live"), ("builder", "index"), ("builder", "app"),
         ("builder", "routes"), ("live", "app"), ("live", "routes")]


@pytest.mark.parametrize(("module", "never"), SIDES)
def test_the_replica_side_and_the_build_side_never_import_each_other(module, never):
    assert own(never) not in reached(own(module))


def test_no_module_of_the_package_imports_itself_back():
    for module in package_modules():
        assert module not in reached(module), f"{module} is in an import cycle"


def test_the_app_and_the_builder_take_the_artifact_kind_from_the_artifact_format():
    for module in ("app", "builder"):
        spec = importlib.util.find_spec(own(module))
        assert spec is not None and spec.origin is not None
        kinds = [node.module for node in ast.walk(ast.parse(Path(spec.origin).read_text()))
                 if isinstance(node, ast.ImportFrom) and any(alias.name == "KIND" for alias in node.names)]
        assert kinds == [own("artifact")], module
