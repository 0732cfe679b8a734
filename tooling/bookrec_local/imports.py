"""The project's import graph, read from the source (every import, inside functions and TYPE_CHECKING blocks
too), for the tests that hold the layers: a pure core that reaches no I/O library, sides that never import
each other, and no import cycle anywhere."""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

IO_LIBRARIES = ("litestar", "boto3", "botocore", "aioboto3", "aiobotocore", "redis", "aiohttp")
PROJECT = ("bookrec_",)


def _source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    return Path(spec.origin).read_text()


def _is_module(name: str) -> bool:
    """Whether `name` is a module (`from package import module`), not a name inside one."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every module `module` imports (absolute names, any depth of the code), as written."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(_source(module))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names
                         if _is_module(f"{node.module}.{alias.name}"))
    return frozenset(names)


def reached(module: str, within: tuple[str, ...] = PROJECT) -> set[str]:
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


def io_reached(module: str) -> list[str]:
    return sorted(name for name in reached(module) if name.split(".")[0] in IO_LIBRARIES)


def package_modules(package: str) -> list[str]:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, package
    root = Path(next(iter(spec.submodule_search_locations)))
    return sorted(f"{package}.{path.stem}" for path in root.glob("*.py") if path.stem != "__init__")


def where_names_come_from(module: str, name: str) -> list[str]:
    """The modules `module` takes `name` from (`from X import name`)."""
    return [node.module for node in ast.walk(ast.parse(_source(module)))
            if isinstance(node, ast.ImportFrom) and node.module and any(a.name == name for a in node.names)]
