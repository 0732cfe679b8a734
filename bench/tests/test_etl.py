"""make bench-etl runs as the README has it, at its smallest size, and prints every figure."""

from __future__ import annotations

import re

import pytest

from bench.tests.makes import make

pytestmark = pytest.mark.slow


def test_make_bench_etl_prints_extract_load_reimport_and_reconcile_figures():
    out = make("bench-etl", "ETL_ARGS=--gigabytes 0.005 --load-items 300")
    assert re.search(r"^\[extract plain\] wall \d+\.\d+s, CPU \d+\.\d+s .*: [\d.]+ MB/s, .* [\d,]+ records/s", out,
                     re.MULTILINE)
    assert re.search(r"^\[extract plain\] peak RSS of the extract process: \d+ MB", out, re.MULTILINE)
    for kind in ("books", "ratings"):
        assert re.search(rf"^\[load\] {kind}\s+8 writers: 300 items in \d+\.\d+s = [\d,]+ items/s", out, re.MULTILINE)
    assert re.search(r"^\[load\] books re-imported unchanged, 8 writers: 300 lines .* 0 written", out, re.MULTILINE)
    assert re.search(r"^\[reconcile\] 300 books, 300 ratings in \d+\.\d+s = [\d,]+ items/s; drift: 0$", out,
                     re.MULTILINE)
