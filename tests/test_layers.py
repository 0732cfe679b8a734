"""Both services with derived state keep the same one-way layers, under the same names: a pure core that
reaches no I/O library (in search, never the `SearchIndex` that calls it either), a replica's side (`live`)
and a build side (`builder`) that never import each other, and the artifact format as the one owner of its
`KIND`. Every import is counted, inside functions too; no cycle anywhere is test_import_cycles.py's to hold."""

from __future__ import annotations

import pytest

from bookrec_local.imports import io_reached, reached, where_names_come_from

CORE = {
    "bookrec_search": ["scoring", "parts", "columns", "documents", "lexicon", "facets", "building", "matching",
                       "filtering", "refresh", "index", "highlight", "heads", "bitmaps", "serving", "splicing",
                       "ranking", "texts", "budget", "kernels"],
    "bookrec_recommendation": ["model", "neighbours", "catalogue", "freshness", "similar", "trending"],
}
# What search's index.py calls, which must take arrays and never the index back.
INDEX_HELPERS = ["scoring", "parts", "columns", "documents", "lexicon", "facets", "building", "matching",
                 "filtering", "refresh", "artifact", "catchup", "heads", "bitmaps", "serving", "splicing", "ranking",
                 "texts", "budget", "kernels"]
# (module, a module it never reaches); the serving entry points differ by name only.
SIDES = {
    "bookrec_search": [("live", "builder"), ("builder", "live"), ("builder", "index"), ("builder", "app"),
                       ("builder", "routes"), ("live", "app"), ("live", "routes")],
    "bookrec_recommendation": [("live", "builder"), ("builder", "live"), ("builder", "engine"),
                               ("builder", "app"), ("live", "engine"), ("live", "app")],
}


@pytest.mark.parametrize(("package", "module"), [(p, m) for p, core in CORE.items() for m in core])
def test_the_core_does_no_io(package, module):
    io = io_reached(f"{package}.{module}")
    assert io == [], f"{module} reaches {io}"


@pytest.mark.parametrize("module", INDEX_HELPERS)
def test_search_s_helpers_take_arrays_never_the_index_that_calls_them(module):
    assert "bookrec_search.index" not in reached(f"bookrec_search.{module}")


@pytest.mark.parametrize(("package", "module", "never"), [(p, m, n) for p, sides in SIDES.items() for m, n in sides])
def test_the_replica_side_and_the_build_side_never_import_each_other(package, module, never):
    assert f"{package}.{never}" not in reached(f"{package}.{module}")


@pytest.mark.parametrize("package", list(CORE))
def test_the_app_and_the_builder_take_the_artifact_kind_from_the_artifact_format(package):
    for module in ("app", "builder"):
        assert where_names_come_from(f"{package}.{module}", "KIND") == [f"{package}.artifact"], module
