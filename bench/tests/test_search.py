"""The search make targets of the README run as written, at their smallest size, and print their figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import regex

from bench.search.coined import Coiner
from bench.search.heaps import catalogue_fit, growth
from bench.search.synthetic import books, vocabularies
from bench.tests.makes import ROOT, make
from bookrec_catalog.catalog import search_terms
from bookrec_search.documents import Document

# A timing line of `measure`: "  <kind>  p50 1.23  p99 4.56  max 7.89 ms | CPU p50 1.11  p99 2.22 ms".
TIMED = r"p50\s+\d+\.\d+\s+p99\s+\d+\.\d+\s+max\s+\d+\.\d+ ms \| CPU p50\s+\d+\.\d+\s+p99\s+\d+\.\d+ ms"
FIGURE = r"\d+\.\d{3}"


def test_heaps_law_fits_the_bundled_books():
    fit, sizes, distinct = catalogue_fit()
    assert sizes[-1] > 11_000 and 0.4 < fit.beta < 0.8, fit  # English text: 0.4-0.7
    for n, d in zip(sizes, distinct, strict=True):
        assert abs(fit(n) / d - 1) < 0.05, (n, d, fit(n))
    assert fit(1_000_000) > 10 * distinct[-1]  # the vocabulary of a million books: 16 times the bundled


def test_synthetic_vocabulary_grows_as_the_fit_has_it():
    """Distinct terms as the index tokenizes them, counted from the records themselves, follow the fit
    within 3% from 2,000 books on (below, the real words alone are up to 4% over it); with real words
    only the vocabulary stops growing."""
    fit, _, _ = catalogue_fit()
    sizes = [2_000, 8_000, 40_000]
    terms = [tuple(t for field in Document.of(r).tokens for t in field) for r in books(sizes[-1], 7, curve=fit)]
    for n, distinct in zip(sizes, growth(terms, sizes), strict=True):
        assert abs(distinct / fit(n) - 1) < 0.03, (n, distinct, fit(n))
    closed = [tuple(t for field in Document.of(r).tokens for t in field) for r in books(sizes[-1], 7)]
    assert growth(closed, sizes)[-1] < 0.75 * fit(sizes[-1])


def test_coined_words_are_new_single_terms_of_real_scripts():
    words = [t for w in vocabularies()[0] for t in search_terms(w)]
    coiner = Coiner(words)
    coined = [coiner.next_word() for _ in range(20_000)]
    assert len(set(coined)) == len(coined) and not set(coined) & set(words)
    assert all(search_terms(w) == [w] for w in coined)
    latin = [w for w in coined if regex.fullmatch(r"\p{Script=Latin}+", w)]
    assert 0.9 < len(latin) / len(coined) < 1 and all(4 <= len(w) <= 12 for w in latin)


def test_heaps_command_prints_the_fit_and_the_author_names_growth():
    done = subprocess.run([sys.executable, "-m", "bench.search.heaps", "--authors-dump",
                           "data-processing/tests/data/ol_dump_authors_sample.txt.gz"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(r"bundled books: 11,9\d\d, [\d,]+ distinct terms; .* K = \d+\.\d\d, beta = 0\.\d{3}", done.stdout)
    assert re.search(r"extrapolated to 10,000,000 books:\s+[\d,]+ distinct terms", done.stdout)
    assert re.search(r"author names \(Open Library dump sample, 1,500\): K = \d+\.\d\d, beta = 0\.\d{3}", done.stdout)


def test_replica_start_refuses_a_missing_snapshot_in_one_line():
    done = subprocess.run([sys.executable, "-m", "bench.search.replica_start", "/nonexistent/index.snapshot"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "SNAPSHOT_FILE" in done.stderr


@pytest.mark.slow
def test_make_bench_search_prints_every_kind_of_figure():
    out = make("bench-search", "SEARCH_ARGS=--sizes 2000")
    assert re.search(r"K = \d+\.\d\d, beta = 0\.\d{3}", out)
    assert re.search(r"2,000 books: build \d+\.\d s .* \d+\.\d s CPU", out)
    assert re.search(r"distinct terms [\d,]+ \(Heaps' law fit at 2,000 books: [\d,]+\)", out)
    assert re.search(r"snapshot: \d+ MiB \(\d+ bytes per book\), dump \d+\.\d s", out)
    assert re.search(r"replica cold start from the snapshot: \d+\.\d s .* heads, bitmaps and compiled loops "
                     r"\d+\.\d s\); "
                     r"replica RSS \d+ MB", out)
    assert re.search(r"warmed: [\d,]+ heads, [\d,]+ bitmaps \(\d+ MiB\), the compiled loops compiled, in \d+\.\d s",
                     out)
    assert re.search(r"pre-touched \d+\.\d GiB of heap \(1\.4 x the index\) in \d+\.\d s .*; RSS [\d,]+ MB", out)
    assert re.search(r"index \d+ MiB, [\d,]+ terms, [\d,]+ all-field postings; RSS \d+ MB", out)
    for kind in ("full text: common word", "full text: deep offset (9,980)",
                 "advanced: author word, by title", "autocomplete (1, 3, 6 characters)",
                 "typo: one long word, two edits", "prefix: title with its last word half typed",
                 "facets of a common word (search included)",
                 "worst: one 500-character word (abcdefghij x 50)",
                 "worst: 16 common words, the last one half typed",
                 "worst: facets + 80 facet filters, 50 common words"):
        assert re.search(re.escape(kind) + r"\s+" + TIMED, out), kind
    assert re.search(r"refresh, 1,000 rating changes: \d+ ms \(\d+ ms CPU\), longest pause of the serving thread "
                     r"\d+\.\d ms",
                     out)
    assert re.search(r"refresh, 100 new \+ 100 retitled books: \d+ ms \(\d+ ms CPU\), .*now 2,100 books", out)
    assert re.search(r"refresh, 1,000 changes \(800 re-rated, 100 retitled, 100 new\): \d+ ms \(\d+ ms CPU\)", out)
    assert re.search(r"refresh, 1,000 changes, one after another as a replica refreshes: (\d+, ){4}\d+ ms", out)
    assert "allocator as a search replica's (services.json): MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0" in out


@pytest.mark.slow
def test_a_kept_snapshot_is_queried_and_refreshed_again(tmp_path):
    kept = tmp_path / "catalogue"
    make("bench-search", f"SEARCH_ARGS=--sizes 2000 --worst-only --keep-snapshot {kept}")
    assert not (tmp_path / "catalogue.2000").exists()  # --worst-only makes no snapshot
    built = make("bench-search", f"SEARCH_ARGS=--sizes 1500 --build-only --keep-snapshot {kept}")
    assert re.search(r"snapshot: [\d,]+ MiB", built) and "full text: common word" not in built  # no queries
    out = make("bench-search", f"SEARCH_ARGS=--snapshot {tmp_path / 'catalogue.1500'}")
    assert re.search(r"1,500 books loaded in \d+\.\d s; RSS [\d,]+ MB", out)
    for kind in ("full text: common word", "full text: multi-word", "worst: 16 common words, the last one half typed"):
        assert re.search(re.escape(kind) + r"\s+" + TIMED, out), kind
    assert re.search(r"refresh, 1,000 changes \(800 re-rated, 100 retitled, 100 new\): \d+ ms", out)
    missing = subprocess.run([sys.executable, "-m", "bench.search.bench_search", "--snapshot", str(tmp_path / "none")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_the_synthetic_catalogue_is_the_same_in_every_process():
    """A snapshot's books are made again in another process (`--snapshot` re-rates the first 1,000): string
    hashing differs from process to process, and must not reach the coined words."""
    script = ("import hashlib, itertools; from bench.search.synthetic import books; "
              "from bench.search.heaps import catalogue_fit; "
              "made = list(itertools.islice(books(3000, 7, curve=catalogue_fit()[0]), 3000)); "
              "print(hashlib.sha256(repr(made).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, timeout=300).stdout for seed in ("1", "2")}
    assert len(digests) == 1 and len(next(iter(digests)).strip()) == 64
