"""make bench-etl runs as the README has it, at its smallest sizes, and prints every figure."""

from __future__ import annotations

import re

import pytest

from bench.tests.makes import make

pytestmark = pytest.mark.slow


def test_make_bench_etl_prints_extract_load_reimport_and_reconcile_figures():
    out = make("bench-etl", "ETL_ARGS=--gigabytes 0.005 --load-items 300")
    assert re.search(r"^\[extract\] input [\d.]+ GB uncompressed, [\d.]+ GB gzip; wall \d+\.\d+s, CPU \d+\.\d+s "
                     r".*: [\d.]+ MB/s, [\d,]+ records/s; [\d,]+ books written$", out, re.MULTILINE)
    assert re.search(r"^\[extract\] peak RSS of the extract processes together: [\d,]+ MB", out, re.MULTILINE)
    for kind in ("books", "ratings"):
        assert re.search(rf"^\[load\] {kind}\s+8 writers: 300 items in \d+\.\d+s = [\d,]+ items/s", out, re.MULTILINE)
    assert re.search(r"^\[load\] books re-imported unchanged, 8 writers: 300 lines .* 0 written", out, re.MULTILINE)
    assert re.search(r"^\[reconcile\] 300 books, 300 ratings in \d+\.\d+s = [\d,]+ items/s; drift: 0$", out,
                     re.MULTILINE)


def test_make_bench_etl_at_full_dump_shape_prints_each_dump_the_extrapolation_and_the_first_load():
    """The full-size run of the README (`--works 5000000 --editions 10000000 --authors 2000000 ...`), scaled down."""
    out = make("bench-etl", "ETL_ARGS=--works 3000 --editions 6000 --authors 1200 --processes 2 --load-items 200 "
                            "--load-writers 8 --first-load-only")
    for name, lines in (("authors", "1,200"), ("works", "3,000"), ("editions", "6,000")):
        assert re.search(rf"^\[extract\] {name}: {lines} lines, [\d.]+ GB uncompressed \([\d,]+ B a line\) in "
                         rf"[\d.]+s: [\d,]+ lines/s, [\d.]+ MB/s", out, re.MULTILINE), name
    assert re.search(r"^\[extract\] write books: [\d,]+ in [\d.]+s: [\d,]+ books/s; CPU [\d.]+s", out, re.MULTILINE)
    for basis in ("wall time", "CPU seconds"):
        assert re.search(rf"^\[extrapolate\] from {basis}.*: the full dumps of 2023-10-31 .*: [\d,]+ min in all$", out,
                         re.MULTILINE), basis
    assert re.search(r"^\[estimate\] estimate: 200 books → ≤ 200 read units, ≤ [\d,]+ write units", out, re.MULTILINE)
    assert re.search(r"^\[load\] books\s+8 writers: 200 items in \d+\.\d+s", out, re.MULTILINE)
    assert re.search(r"^\[first load\] 30M books by load .* = \$[\d,]+; .*: [\d.]+ h", out, re.MULTILINE)
    assert re.search(r"^\[first load\] 30M books by import from S3 .* = \$[\d.]+, no write units$", out, re.MULTILINE)
    assert "[load] ratings" not in out and "[reconcile]" not in out
