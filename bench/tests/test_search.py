"""The search make targets of the README run as written, at their smallest size, and print their figures."""

from __future__ import annotations

import re

import pytest

from bench.tests.makes import make

pytestmark = pytest.mark.slow

# A timing line of `measure`: "  <kind>  p50 1.23  p99 4.56  max 7.89 ms | CPU p50 1.11  p99 2.22 ms".
TIMED = r"p50\s+\d+\.\d+\s+p99\s+\d+\.\d+\s+max\s+\d+\.\d+ ms \| CPU p50\s+\d+\.\d+\s+p99\s+\d+\.\d+ ms"
FIGURE = r"\d+\.\d{3}"


def test_make_bench_search_prints_every_kind_of_figure():
    out = make("bench-search", "SEARCH_ARGS=--sizes 2000")
    assert re.search(r"2,000 books: build \d+\.\d s .* \d+\.\d s CPU", out)
    assert re.search(r"index \d+ MiB, [\d,]+ terms, [\d,]+ all-field postings; RSS \d+ MB", out)
    for kind in ("full text: common word", "full text: deep offset (9,980)",
                 "advanced: author word, by title", "autocomplete (1, 3, 6 characters)",
                 "typo: one long word, two edits", "prefix: title with its last word half typed",
                 "facets of a common word (search included)",
                 "worst: one 500-character word (abcdefghij x 50)",
                 "worst: 16 common words, the last one half typed",
                 "worst: facets + 80 facet filters, 50 common words"):
        assert re.search(re.escape(kind) + r"\s+" + TIMED, out), kind
    assert re.search(r"refresh, 1,000 rating changes: \d+ ms, longest pause of the serving thread \d+\.\d ms",
                     out)
    assert re.search(r"refresh, 100 new \+ 100 retitled books: \d+ ms, .*now 2,100 books", out)


def test_make_eval_search_prints_quality_and_costs_of_both_engines():
    out = make("eval-search", "EVAL_SEARCH_ARGS=--per-kind 5")
    assert re.search(r"11,893 books; \d+ queries \(seed 2026\)", out)
    for kind in ("title", "title_typo", "script", "isbn10"):
        # before (the recorded figures), handwritten and tantivy: first-place success and MRR@10 each
        assert re.search(rf"^{kind}\s+\d+" + rf"\s+{FIGURE}" * 6 + r"\s*$", out, re.MULTILINE), kind
    for engine in ("handwritten", "tantivy"):
        costs = rf"^{engine}" + r"\s+\d+\.\d+" * 7 + r"\s+\d+ \(\d+\)\s*$"  # build .. CPU p99, lines
        assert re.search(costs, out, re.MULTILINE), engine
        assert re.search(rf"^{engine}: (meets every target|misses .+); \d+ lines of code$", out, re.MULTILINE)


def test_make_bench_fleet_prints_the_search_reads_starts_and_the_cost_table(bench_fleet_output):
    out = bench_fleet_output
    assert re.search(r"^\s+1 changes/s:\s+[\d,]+ feed items read/hour \(\d+\.\d\d per change\)", out,
                     re.MULTILINE)
    assert re.search(r"old design: one filtered Scan read \(ScannedCount\) 300 items", out)
    assert re.search(r"N=1: interval 1: builder outcomes \{'published': 1\}; build items read 300 = 1\.00 "
                     r"full-table reads", out)
    # Books changed before the second interval: its build reads the feed, not the table.
    assert re.search(r"N=1: interval 2: builder outcomes \{'published': 1\}; build items read 0 = 0\.00 "
                     r"full-table reads", out)
    assert re.search(r"replica app start to /ready 200: \d+\.\d s \(target <= 30 s\); 1,000 books, "
                     r"artifact version 1; table items it scanned: 0", out)
    assert re.search(r"decode \(artifact\.load, then the index\) \d+\.\d\d s; 1,000 books", out)
    assert re.search(r"Scan \+ index build: \d+\.\d s for 300 books = [\d,]+ books/s", out)
    assert re.search(r"^\s+10\s+10 \|\s+[\d,]+\s+[\d,]+\s+[\d,]+$", out, re.MULTILINE)  # costs' last row
