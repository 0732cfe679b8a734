"""Champion lists (`heads`): a one-term query ranked from its term's head answers exactly as a full ranking,
on a fresh index and on one carried through refreshes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_search import bitmaps as bitmaps_module
from bookrec_search import heads as heads_module
from bookrec_search import index as index_module
from bookrec_search import matching as matching_module
from bookrec_search import ranking as ranking_module
from bookrec_search.index import SearchIndex
from bookrec_search.ranking import ExactTitles

from .test_index import WORDS, book_strategy, build, catalogue, change_strategy

QUERIES = [*WORDS, "lee", "Émile", "history", "the zzz", "zzz mind", "Mind!", "the mind", "art The logic"]


@contextlib.contextmanager
def small_heads(size: int = 4) -> Iterator[list[bool]]:
    """Heads for every term in at least `size` + 1 books, taken as typed from there (as a common word is at
    scale); yields, per page asked, whether a head gave it."""
    used: list[bool] = []
    page = heads_module.page_from_head

    def spied(*args, **kwargs):
        answer = page(*args, **kwargs)
        used.append(answer is not None)
        return answer

    with mock.patch.multiple(heads_module, HEAD_MIN_BOOKS=size + 1, HEAD_SIZE=size), \
            mock.patch.object(matching_module, "TAKEN_AS_TYPED", size + 1), \
            mock.patch.object(heads_module, "page_from_head", spied):
        yield used


def answer(index: SearchIndex, query: str, limit: int, offset: int = 0) -> tuple:
    """A page as a client asks for it (heads serve it if they can), with the query's matches asked apart
    (every book ranked: a page asked with its matches reads them all anyway)."""
    result = index.search(query, limit, offset)
    with mock.patch.object(heads_module, "HEAD_MIN_BOOKS", 10**9):
        matches = index.search(query, limit, offset, with_matches=True).matches
    return ([(index.book(h.position)["book_id"], h.score, h.shown_score) for h in result.hits], result.total,
            result.matched_all_words, result.terms, result.corrections, sorted(matches.tolist()),
            result.ignored)


def full(index: SearchIndex, query: str, limit: int, offset: int = 0) -> tuple:
    with mock.patch.object(heads_module, "HEAD_MIN_BOOKS", 10**9):
        return answer(index, query, limit, offset)


def test_a_common_word_on_the_real_sample_is_ranked_from_its_head(sample_books):
    index = SearchIndex.from_records(sample_books)
    for query in ("the", "of", "philosophy", "history", "the qqxzv", "PHILOSOPHY!"):
        for limit, offset in ((1, 0), (10, 0), (20, 40)):
            with small_heads(size=128) as used:
                assert answer(index, query, limit, offset) == full(index, query, limit, offset)
            assert used == [True], (query, limit, offset)
    with small_heads(size=128) as used:  # a page past half the head takes a deeper one
        assert answer(index, "the", 20, 60) == full(index, "the", 20, 60)
        assert index.heads.of(index.parts.vocabulary["the"], 80).size == 256
        assert answer(index, "the", 20, 0) == full(index, "the", 20, 0)  # a shallow page reads a small head
        assert index.heads.of(index.parts.vocabulary["the"], 20).size == 128
    assert used == [True, True]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue, st.sampled_from(QUERIES), st.integers(0, 1), st.integers(1, 2))
def test_pages_from_heads_are_those_of_a_full_ranking(raw, query, offset, limit):
    index = SearchIndex.from_records(build(raw))
    with small_heads():
        assert answer(index, query, limit, offset) == full(index, query, limit, offset)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue, st.lists(change_strategy, min_size=1, max_size=8), st.lists(book_strategy, max_size=4),
       st.lists(st.integers(0, 45), max_size=3))
def test_heads_carried_through_refreshes_answer_as_a_full_ranking(raw, changes, new_raw, doomed):
    books = build(raw)
    index = SearchIndex.from_records(books)
    with small_heads():
        for query in QUERIES:  # takes the heads the refresh then carries
            index.search(query, 2)
        edited = []
        for i, kind, other in changes:
            base = books[i % len(books)]
            if kind == "rating":  # a book from nowhere to the top: the case a stale head would miss
                edited.append(with_derived_attributes({**base, "ratings_distribution": {"5": 40}}))
            elif kind == "text":
                edited.append(with_derived_attributes({**base, "title": other["title"], "title_norm": None}))
            else:
                edited.append(with_derived_attributes({**base, "ratings_distribution":
                                                       other["ratings_distribution"]}))
        updated = index.updated(edited + build(new_raw, start=1000), deleted=[f"OL{1 + i}W" for i in doomed])
        for query in QUERIES:
            for limit in (1, 2):
                assert answer(updated, query, limit) == full(updated, query, limit)


def test_several_common_words_on_the_real_sample_are_ranked_from_their_heads(sample_books):
    index = SearchIndex.from_records(sample_books)
    every = heads_module.page_from_heads
    served: list[bool] = []

    def spied(*args, **kwargs):
        page = every(*args, **kwargs)
        served.append(page is not None)
        return page

    with mock.patch.object(heads_module, "page_from_heads", spied):
        for query in ("the of", "OF THE", "history of the", "philosophy of", "The Philosophy",
                      "a history of philosophy"):
            for limit, offset in ((1, 0), (10, 0), (20, 40)):
                served.clear()
                with small_heads(size=128):
                    assert answer(index, query, limit, offset) == full(index, query, limit, offset)
                if query in ("the of", "OF THE"):  # two words in thousands of books: the heads hold the page
                    assert served and served[-1], (query, limit, offset)


def test_a_carried_head_serves_the_next_version_and_sees_a_book_rise(sample_books):
    index = SearchIndex.from_records(sample_books)
    with small_heads(size=64) as used:
        ranked = [book_id for book_id, *_ in full(index, "philosophy", 1000)[0]]
        term = index.parts.vocabulary["philosophy"]
        head = index.heads.of(term, 20)
        took = head.positions.size
        assert took >= 64  # and the books tied with the 64th
        docs, impacts = index.parts.combined.get(term)
        outside = ~index_module.np.isin(docs, head.positions) & index_module.np.isin(
            docs, [index.position_of(b) for b in ranked[300:]])
        last = index.book(int(docs[outside][impacts[outside].argmax()]))["book_id"]  # ranked past 300
        record = next(b for b in sample_books if b["book_id"] == last)
        risen = with_derived_attributes({**record, "ratings_distribution": {"5": 10**8}})
        updated = index.updated([risen, *sample_books[:20]])
        carried = updated.heads.of(term, 20)
        assert updated.position_of(last) in carried.positions  # carried, with the book given to the refresh
        assert len(carried.positions) > took
        used.clear()
        first = answer(updated, "philosophy", 32)
        assert used == [True] and first == full(updated, "philosophy", 32)
        assert last in [book_id for book_id, *_ in first[0]]  # from past rank 300 to the first page


def test_a_rating_rise_of_the_catalogue_mean_widens_the_bound():
    head = heads_module.Head(positions=heads_module.np.array([0], dtype=heads_module.np.int32), size=1, bound=2.0,
                             mean=3.0, max_impact=5.0)
    assert head.bound_at(2.5) == 2.0
    assert head.bound_at(3.5) == 2.0 + 0.5 * heads_module.MEAN_SLOPE * 5.0
    assert 0.03 < heads_module.MEAN_SLOPE < 0.04  # 0.15 / 5 x max over counts of ln(1 + c) x 10 / (c + 10)


def test_a_warmed_index_has_taken_its_commonest_terms_heads_and_bitmaps(sample_books):
    index = SearchIndex.from_records(sample_books)
    with small_heads(size=128), mock.patch.multiple(bitmaps_module, DENSE_MIN_BOOKS=300, DENSE_SHARE=0.0):
        assert len(index.heads) == 0 and len(index.bitmaps) == 0
        books = index_module.np.diff(index.parts.combined.offsets)
        assert index.warmed() is index
        common = int((books >= 129).sum())
        assert len(index.heads) == common + min(common, heads_module.DEEP_HEADS)  # the commonest twice: deep too
        assert len(index.bitmaps) == int((books >= 300).sum())
        assert answer(index, "philosophy of", 10) == full(index, "philosophy of", 10)


def test_books_tied_at_the_cut_join_the_head_so_a_page_inside_the_tie_is_vouched_for():
    # 300 unrated books of one title share one key, below 20 rated ones: a head of 128 takes them all in
    # (not the query's exact title, which would make them candidates anyway).
    books = build([{"title": "Your Mind", "authors": [], "subjects": [], "ratings_distribution": {}}] * 300
                  + [{"title": "Mind and Time", "authors": [], "subjects": ["logic"],
                      "ratings_distribution": {"5": 3}}] * 20)
    index = SearchIndex.from_records(books)
    with small_heads(size=128) as used:
        assert answer(index, "mind", 20, 40) == full(index, "mind", 20, 40)
        head = index.heads.of(index.parts.vocabulary["mind"], 60)
        assert len(head.positions) == 320 and head.bound == float("-inf")
    assert used == [True]
    index = SearchIndex.from_records(books)  # no head taken yet
    with small_heads(size=32) as used:  # 300 tied books are more than four times a head of 64
        assert answer(index, "mind", 20, 0) == full(index, "mind", 20, 0)  # the 20 rated books, above the tie
        assert answer(index, "mind", 20, 10) == full(index, "mind", 20, 10)  # into the tie: every book ranked
    assert used == [True, False]


def test_of_many_exact_titles_only_the_best_are_candidates_and_the_page_is_the_same():
    books = build([{"title": "Mind", "authors": [], "subjects": [], "ratings_distribution": {"4": i % 7}}
                   for i in range(400)]
                  + [{"title": "Mind and Time", "authors": [], "subjects": ["mind"],
                      "ratings_distribution": {"5": 9}}] * 50)
    index = SearchIndex.from_records(books)
    with small_heads(size=64) as used:
        for offset in (0, 10, 30):
            assert answer(index, "mind", 20, offset) == full(index, "mind", 20, offset)
    assert used == [True, True, True]


def test_when_the_head_holds_a_page_of_exact_titles_the_others_are_never_listed():
    # 400 books titled "Mind": the head of 64 holds the best of them, which no exact title outside it can pass.
    books = build([{"title": "Mind", "authors": [], "subjects": ["logic"] * (i % 3),
                    "ratings_distribution": {"4": i % 7}} for i in range(400)]
                  + [{"title": "Mind and Time", "authors": [], "subjects": ["mind"],
                      "ratings_distribution": {"5": 9}}] * 50)
    index = SearchIndex.from_records(books)
    expected = {offset: full(index, "mind", 20, offset) for offset in (0, 10)}
    with small_heads(size=64) as used, \
            mock.patch.object(ExactTitles, "positions", side_effect=AssertionError("listed every exact title")):
        for offset in (0, 10):
            assert answer(index, "mind", 20, offset) == expected[offset]
    assert used == [True, True]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 400), st.integers(0, 60), st.data())
def test_exact_titles_are_the_same_tested_per_book_or_searched_for(size, lo, data):
    rng = np.random.default_rng(size)
    order = rng.permutation(size).astype(np.int32)
    rank = np.empty(size, dtype=np.int32)
    rank[order] = np.arange(size, dtype=np.int32)
    lo = min(lo, size)
    hi = data.draw(st.integers(lo, size))
    originals = np.array(sorted(data.draw(st.sets(st.integers(0, size - 1), max_size=5))), dtype=np.int32)
    originals = originals[(rank[originals] < lo) | (rank[originals] >= hi)]  # kept only where it differs
    titles = ExactTitles(lo, hi, originals, order, rank)
    candidates = np.array(sorted(data.draw(st.sets(st.integers(0, size - 1)))), dtype=np.int32)
    expected = np.isin(candidates, np.concatenate([order[lo:hi], originals]))
    assert titles.among(candidates).tolist() == expected.tolist()
    assert titles.bonus_mask(candidates).tolist() == expected.tolist()
    with mock.patch.object(ranking_module, "SEARCHED_TITLES_RATIO", 0):  # always searched for
        assert titles.bonus_mask(candidates).tolist() == expected.tolist()
    assert titles.count == len(titles.positions()) == hi - lo + len(originals)
