"""The package's imports go one way: the pure core knows no I/O, the replica's side and the build side never
import each other (every import counted, inside functions too); no cycle anywhere is
tests/test_import_cycles.py's to hold."""

from __future__ import annotations

import pytest

from bookrec_local.imports import io_reached, reached, where_names_come_from

PACKAGE = "bookrec_recommendation"
PURE = ["model", "neighbours", "catalogue", "freshness", "similar"]
def own(name: str) -> str:
    return f"{PACKAGE}.{name}"


@pytest.mark.parametrize("module", PURE)
def test_the_core_does_no_io(module):
    io = io_reached(own(module))
    assert io == [], f"{module} reaches {io}"


SIDES = [("live", "builder"), ("builder", "live"), ("builder", "engine"), ("builder", "app"),
         ("live", "engine"), ("live", "app")]


@pytest.mark.parametrize(("module", "never"), SIDES)
def test_the_replica_side_and_the_build_side_never_import_each_other(module, never):
    assert own(never) not in reached(own(module))


def test_the_app_and_the_builder_take_the_artifact_kind_from_the_artifact_format():
    for module in ("app", "builder"):
        kinds = where_names_come_from(own(module), "KIND")
        assert kinds == [own("artifact")], module
