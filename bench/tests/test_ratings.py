"""The ratings make target of the README runs as written, at its smallest size, and prints its figures."""

from __future__ import annotations

import re

import pytest

from bench.tests.makes import make

CHANGES = r"\d+ changes in\s+\d+\.\d\ds =\s+\d+\.\d/s\s+p50\s+\d+ ms\s+p95\s+\d+ ms\s+p99\s+\d+ ms"


@pytest.mark.slow
def test_make_bench_ratings_prints_throughput_races_and_the_emulator_s_cost():
    out = make("bench-ratings", "RATINGS_ARGS=--raters 20 --replicas 1 2 --sizes 1:0")
    assert re.search(r"rating writes benchmark: \d+ CPUs, load average \d+\.\d at start", out)
    for setup in ("1 worker(s) on the threaded moto server", "1 worker(s) on the serialised moto server",
                  "2 worker(s) on the serialised moto server"):
        assert setup in out, setup
    assert len(re.findall(r"20 new raters at once\s+" + CHANGES, out)) == 3
    assert len(re.findall(r"8 re-ratings \+ 4 new at once\s+" + CHANGES, out)) == 3
    # Every run checks its aggregate against the ratings table: it must be exact.
    assert len(re.findall(r"invalidations received 32, aggregate exact", out)) == 3
    for replicas in (1, 2):
        row = rf"^\s+{replicas}\s+\d+\.\d\s+\d+\s+\d+\s+\d+\s+\d+\.\d\d\s+\d+/\d+/\d+\s+exact$"
        assert re.search(row, out, re.MULTILINE), replicas
    assert re.search(r"1 books,\s+0 ratings:\s+\d+ ms per change \(median of 10\)", out)
    assert "NOT EXACT" not in out
