"""Ranked bitmaps (`bitmaps`) and the ways a word's lists are looked up among other words' books: every
way answers as a binary search."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_search import bitmaps as bitmaps_module
from bookrec_search import matching as matching_module
from bookrec_search.bitmaps import RankedBitmap
from bookrec_search.columns import intersection, probe
from bookrec_search.index import SearchIndex

from .test_index import WORDS, build, catalogue


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.data())
def test_a_bitmap_probes_as_a_binary_search(size, data):
    docs = np.array(sorted(data.draw(st.sets(st.integers(0, size - 1)))), dtype=np.int32)
    candidates = np.array(sorted(data.draw(st.sets(st.integers(0, size - 1)))), dtype=np.int32)
    found, at = RankedBitmap.of(docs, size).probe(candidates)
    searched = np.searchsorted(docs, candidates)
    present = np.flatnonzero(docs[np.minimum(searched, max(len(docs) - 1, 0))] == candidates) if len(docs) else []
    assert found.tolist() == list(present) and at.tolist() == searched[present].tolist()
    assert [a.tolist() for a in probe(docs, candidates, size)] == [found.tolist(), at.tolist()]


def test_an_intersection_through_bitmaps_is_the_same():
    rng = np.random.default_rng(3)
    size = 100_000
    lists = [(np.sort(rng.choice(size, n, replace=False)).astype(np.int32), rng.random(n).astype(np.float32))
             for n in (40_000, 3_000, 25_000)]
    plain = intersection(lists, size)
    probed = intersection(lists, size, [RankedBitmap.of(lists[0][0], size).probe, None,
                                        RankedBitmap.of(lists[2][0], size).probe])
    assert plain[0].tolist() == probed[0].tolist() and len(plain[0]) > 0
    for a, b in zip(plain[1], probed[1], strict=True):
        assert np.asarray(a).tolist() == np.asarray(b).tolist()


def answer(index: SearchIndex, query: str) -> tuple:
    result = index.search(query, 100, with_matches=True)
    return ([(h.position, h.score) for h in result.hits], result.total, result.terms, result.corrections,
            result.matches.tolist())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue, st.lists(st.sampled_from([*WORDS, "lee", "logi", "histroy", "zzz"]), min_size=2, max_size=4),
       st.booleans())
def test_searches_through_bitmaps_answer_as_without(raw, words, trailing_space):
    index = SearchIndex.from_records(build(raw))
    query = " ".join(words) + (" " if trailing_space else "")
    with mock.patch.multiple(bitmaps_module, DENSE_MIN_BOOKS=10**9):
        expected = answer(index, query)
    for reverse in (0, 10**6):  # a word's lists looked up in the other words' books, or the other way round
        with mock.patch.multiple(bitmaps_module, DENSE_MIN_BOOKS=1, DENSE_SHARE=0.0), \
                mock.patch.object(matching_module, "REVERSE_SEARCH_RATIO", reverse):
            assert answer(index, query) == expected


def test_bitmaps_outlive_a_refresh_that_leaves_the_postings(sample_books):
    index = SearchIndex.from_records(sample_books)
    with mock.patch.multiple(bitmaps_module, DENSE_MIN_BOOKS=1, DENSE_SHARE=0.0):
        index.search("philosophy of mind", 10)
        assert len(index.bitmaps) >= 2
        rated = with_derived_attributes({**sample_books[0], "ratings_distribution": {"5": 900}})
        assert index.updated([rated]).bitmaps is index.bitmaps  # the same postings
        retitled = with_derived_attributes({**sample_books[0], "title": "Another Mind", "title_norm": None})
        moved = index.updated([retitled])
        assert len(moved.bitmaps) == len(index.bitmaps)  # patched at the retitled book
        for term in ("philosophy", "mind"):
            number = moved.parts.vocabulary[term]
            patched, fresh = moved.bitmaps.of(number), RankedBitmap.of(moved.parts.combined.get(number)[0],
                                                                       moved.size)
            assert np.array_equal(patched.bits, fresh.bits) and np.array_equal(patched.before, fresh.before)
        assert moved.search("another mind", 5).total == 1
        gone = moved.updated([], deleted=[sample_books[1]["book_id"]])
        assert len(gone.bitmaps) == 0  # deletions renumber the books: made afresh when asked


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 300), st.data())
def test_a_patched_bitmap_is_the_bitmap_of_the_new_list(size, data):
    old = np.array(sorted(data.draw(st.sets(st.integers(0, size - 1)))), dtype=np.int32)
    grown = size + data.draw(st.integers(0, 70))
    changed = np.array(sorted(data.draw(st.sets(st.integers(0, grown - 1)))), dtype=np.int32)
    keep = old[~np.isin(old, changed)]
    entering = changed[data.draw(st.lists(st.booleans(), min_size=len(changed), max_size=len(changed)))
                       if len(changed) else np.zeros(0, dtype=bool)]
    new = np.union1d(keep, entering).astype(np.int32)
    patched = RankedBitmap.of(old, size).patched(new, changed, grown)
    fresh = RankedBitmap.of(new, grown)
    assert np.array_equal(patched.bits, fresh.bits) and np.array_equal(patched.before, fresh.before)
