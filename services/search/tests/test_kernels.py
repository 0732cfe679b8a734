"""The compiled loops (`kernels`) answer as the numpy they replace, kept here as their specification."""

from __future__ import annotations

import ast
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bookrec_search import artifact, kernels
from bookrec_search.documents import NO_YEAR
from bookrec_search.index import SearchIndex
from bookrec_search.scoring import average_ratings, float32_at_or_below


def per_posting(costs: list, lists: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    return [np.broadcast_to(np.asarray(c, dtype=np.int32), (len(d),)) for c, (d, _) in zip(costs, lists, strict=True)]


def runs_strategy() -> st.SearchStrategy:
    @st.composite
    def runs(draw: st.DrawFn) -> tuple[int, list[tuple[np.ndarray, np.ndarray]], list]:
        size = draw(st.integers(1, 200))
        count = draw(st.integers(0, 6))
        lists, costs = [], []
        for _ in range(count):
            docs = np.array(sorted(draw(st.sets(st.integers(0, size - 1), max_size=60))), dtype=np.int32)
            # few distinct values, so that ties between runs are common
            values = np.array([draw(st.sampled_from([0.5, 1.0, 1.5, 2.0])) for _ in docs], dtype=np.float32)
            lists.append((docs, values))
            each = [draw(st.sampled_from([0, 1, 2, 4])) for _ in docs]  # a word's cost may differ by book
            costs.append(np.array(each, dtype=np.int32) if draw(st.booleans()) else np.int32(each[0] if each else 0))
        return size, lists, costs
    return runs()


def run(lists: list[tuple[np.ndarray, np.ndarray]], costs: list, keep: int, size: int, dense: bool) -> tuple:
    starts = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(d) for d, _ in lists], out=starts[1:])
    docs = np.concatenate([d for d, _ in lists]) if lists else np.empty(0, dtype=np.int32)
    values = np.concatenate([v for _, v in lists]) if lists else np.empty(0, dtype=np.float32)
    cost = np.concatenate(per_posting(costs, lists)) if lists else np.empty(0, dtype=np.int32)
    return tuple(a.tolist() for a in kernels.merged_runs(docs, starts, values, cost, keep, size, dense))


def best_in_numpy(lists: list[tuple[np.ndarray, np.ndarray]], costs: list) -> tuple:
    """Per document, the lowest cost, then the largest value, then the earliest list: a stable sort."""
    if not lists:
        return [], [], [], []
    docs = np.concatenate([d for d, _ in lists])
    values = np.concatenate([v for _, v in lists])
    cost = np.concatenate(per_posting(costs, lists))
    choice = np.concatenate([np.full(len(d), j, dtype=np.int16) for j, (d, _) in enumerate(lists)])
    order = np.lexsort((-values, cost, docs))
    docs, values, cost, choice = docs[order], values[order], cost[order], choice[order]
    first = np.ones(len(docs), dtype=bool)
    first[1:] = docs[1:] != docs[:-1]
    return docs[first].tolist(), values[first].tolist(), cost[first].tolist(), choice[first].tolist()


def summed_in_numpy(lists: list[tuple[np.ndarray, np.ndarray]], costs: list, size: int) -> tuple:
    """Per document, its values and costs added up list by list, in float32; the first list it is in."""
    total = np.zeros(size, dtype=np.float32)
    cost = np.zeros(size, dtype=np.int32)
    first = np.full(size, -1, dtype=np.int16)
    for j, ((docs, values), c) in enumerate(zip(lists, per_posting(costs, lists), strict=True)):
        np.add.at(total, docs, values)
        cost[docs] += c
        first[docs[first[docs] < 0]] = j
    docs = np.flatnonzero(first >= 0)
    return docs.tolist(), total[docs].tolist(), cost[docs].tolist(), first[docs].tolist()


@settings(max_examples=300, deadline=None)
@given(runs_strategy(), st.booleans())
def test_merged_runs_keep_each_documents_best_run(runs, dense):
    size, lists, costs = runs
    assert run(lists, costs, kernels.BEST, size, dense) == best_in_numpy(lists, costs)


@settings(max_examples=300, deadline=None)
@given(runs_strategy(), st.booleans())
def test_merged_runs_add_up_each_documents_runs_in_order(runs, dense):
    size, lists, costs = runs
    assert run(lists, costs, kernels.SUMMED, size, dense) == summed_in_numpy(lists, costs, size)


@st.composite
def catalogue_columns(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """Columns of up to 300 books (the compiled filter takes books 64 at a time, then the last few)."""
    size = draw(st.integers(0, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    years = rng.integers(1990, 2000, size).astype(np.int32)
    years[rng.random(size) < 0.2] = NO_YEAR
    counts = rng.integers(0, 4, size).astype(np.int32)
    sums = (counts + rng.integers(0, 4 * counts + 1)).astype(np.int32)  # each rating 1 to 5 stars
    return {"years": years, "counts": counts, "sums": sums,
            "averages": float32_at_or_below(average_ratings(counts, sums)),
            "languages": rng.integers(0, 3, size).astype(np.int16)}


@settings(max_examples=300, deadline=None)
@given(catalogue_columns(),
       st.sampled_from([(NO_YEAR, 2**31 - 1), (NO_YEAR + 1, 1995), (1993, 2**31 - 1), (1996, 1994)]),
       st.sampled_from([-np.inf, 1e-30, 1.0, 2.5, 7 / 3, 3.0000001, 4.0, 5.0]), st.integers(-1, 3))
def test_filtered_books_pass_exactly_the_books_numpy_passes(columns, years, min_average, language):
    """The year range, the exact average (a bound such as 7 / 3 is no float32) and the language, all at once."""
    lo, hi = years
    exact = average_ratings(columns["counts"], columns["sums"])
    wanted = np.flatnonzero((columns["years"] >= lo) & (columns["years"] <= hi) & (exact >= min_average)
                            & ((columns["languages"] == language) | (language < 0)))
    sorted_by = np.arange(len(columns["years"]), dtype=np.float64) / 2
    got, values = kernels.filtered_books(columns["years"], lo, hi, columns["averages"],
                                         np.float32(float32_at_or_below(min_average)), float(min_average),
                                         columns["counts"], columns["sums"], columns["languages"], language, sorted_by)
    assert got.tolist() == wanted.tolist() and values.tolist() == sorted_by[wanted].tolist()


@given(st.floats(-1e6, 1e6, allow_nan=False))
def test_float32_at_or_below_is_the_largest_float32_not_above(value):
    below = float32_at_or_below(value)
    assert below.dtype == np.float32 and below <= value < np.nextafter(below, np.float32(np.inf))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 120), st.integers(1, 130), st.sampled_from([np.float32, np.float64]),
       st.sampled_from([-np.inf, 1.0, 2.0, 4.0]))
def test_best_ranked_is_the_head_of_a_full_sort(seed, count, wanted, key_type, cut):
    """By key, then popularity, then title rank, of those at or above the cut; keys and popularities of few
    values, so that ties are many."""
    rng = np.random.default_rng(seed)
    size = 200
    popularity, title_rank = rng.integers(0, 3, size).astype(np.float64), rng.permutation(size).astype(np.int32)
    candidates = np.sort(rng.choice(size, count, replace=False)).astype(np.int32)
    key = rng.integers(0, 4, count).astype(key_type)
    order = np.lexsort((title_rank[candidates], -popularity[candidates], -key))
    got = kernels.best_ranked(key, candidates, popularity, title_rank, wanted, cut)
    assert got.tolist() == order[key[order] >= cut][:wanted].tolist()


@given(st.integers(1, 300).flatmap(lambda size: st.tuples(st.just(size), st.sets(st.integers(0, size - 1)))))
def test_ranked_bits_are_the_lists_bits_and_the_books_before_each_word(list_of):
    size, books = list_of
    docs = np.array(sorted(books), dtype=np.int32)
    marked = np.zeros(-(-size // 64) * 64, dtype=bool)
    marked[docs] = True
    bits = np.packbits(marked, bitorder="little").view(np.uint64)
    before = np.concatenate([[0], np.cumsum(np.bitwise_count(bits[:-1]))])
    got_bits, got_before = kernels.ranked_bits(docs, size)
    assert got_bits.tolist() == bits.tolist() and got_before.tolist() == before.tolist()


SERVING = """
import sys
from pathlib import Path
from bookrec_search import artifact, bitmaps, heads, kernels, matching, ranking
from bookrec_search.facets import FacetFilter
from bookrec_search.filtering import Filters
from bookrec_search.index import SearchIndex

# The paths of a catalogue of millions, engaged on the sample's 11,900 books.
heads.HEAD_MIN_BOOKS, heads.HEAD_SIZE, matching.TAKEN_AS_TYPED = 129, 128, 129
bitmaps.DENSE_MIN_BOOKS, bitmaps.DENSE_SHARE = 100, 1 / 128
ranking.SAMPLED_CUT_MIN, ranking.SAMPLE_SIZE = 50, 16
index = SearchIndex(artifact.load(Path(sys.argv[1]).read_bytes())).warmed()
compiled = {name: len(getattr(kernels, name).signatures) for name in dir(kernels)
            if hasattr(getattr(kernels, name), "signatures")}
for query in ("the", "of the", "history of the", "philosphy", "critique of pure reas", "kant hegel", "zzz qqq the",
              "the philosophy of", "Erkenntnis Wissenschaft"):
    for limit, offset in ((10, 0), (20, 200)):
        index.search(query, limit, offset)
        index.search(query, limit, offset, facet_filter=FacetFilter(decades=(1900,)))
    index.facets(index.search(query, with_matches=True).matches)
for sort in ("relevance", "rating", "year", "title"):
    for filters in (Filters(min_year=1900, max_year=2000, min_rating=3.5), Filters(language="eng"),
                    Filters(subject="philosophy", title="the"), Filters(author="kant", min_rating=1)):
        index.advanced(filters, sort, "asc", 20, 100)
index.autocomplete("the")
print({name: len(getattr(kernels, name).signatures) - count for name, count in compiled.items()})
"""


def test_a_warmed_index_serves_every_kind_of_query_without_compiling_more(sample_books, tmp_path):
    """A loaded replica compiles its loops while it warms, for every input type its queries then give them: a
    query meeting a new type would compile for ~0.2 s instead."""
    snapshot = tmp_path / "index"
    snapshot.write_bytes(artifact.dump(SearchIndex.from_records(sample_books).parts))
    ran = subprocess.run([sys.executable, "-c", SERVING, str(snapshot)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    more = ast.literal_eval(ran.stdout.strip().splitlines()[-1])
    assert set(more) >= {"bitmap_probe", "best_ranked", "filtered_books", "merged_runs", "ranked_bits"}
    assert not any(more.values()), more
