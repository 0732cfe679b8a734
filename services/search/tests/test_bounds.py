"""What one query may cost: the words it is matched by, the words completed or corrected, facet counts and
facet filters. Checked by what the index does (which words it looks up, what it answers), never by time."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookrec_catalog.catalog import normalise_text, with_derived_attributes
from bookrec_search import facets as facet_module
from bookrec_search import index as index_module
from bookrec_search import matching
from bookrec_search.facets import FacetFilter, ValuePairs, allowed, count, decade_codes, decades_of
from bookrec_search.index import SearchIndex
from bookrec_search.lexicon import Lexicon
from bookrec_search.matching import MAX_EXPANDED_LENGTH, MAX_QUERY_WORDS

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
         "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]
LONG = "pneumonoultramicroscopicsilicovolcanoconiosis"  # 45 letters
EDGE = "abcdefghijklmnopqrstuvwx"  # as long as a word still completed and corrected


def book(number: int, title: str, **extra: Any) -> dict[str, Any]:
    return with_derived_attributes({"book_id": f"OL{number}W", "title": title,
                                    "authors": [{"author_id": None, "name": "Anon Author"}], **extra},
                                   now="2026-01-01T00:00:00.000000Z")


INDEX = SearchIndex.from_records([
    book(1, " ".join(WORDS[:MAX_QUERY_WORDS])),
    book(2, f"On {LONG}"),
    book(3, f"The {EDGE} book"),
    book(4, f"{EDGE}yz and more"),
    book(5, "Romeo and Juliet"),
])


def titles(result) -> list[str]:
    return [INDEX.parts.titles[h.position] for h in result.hits]


@pytest.fixture
def lookups(monkeypatch):
    """The words typo correction looked near, in order."""
    seen: list[str] = []
    near = Lexicon.near

    def counted(self, word: str, edits: int):
        seen.append(word)
        return near(self, word, edits)

    monkeypatch.setattr(Lexicon, "near", counted)
    return seen


def test_words_past_the_cap_take_no_part_and_are_reported():
    words = WORDS[:MAX_QUERY_WORDS]
    matched = INDEX.search(" ".join([*words, "zzzzz"]))
    assert matched.matched_all_words and titles(matched) == [" ".join(words)]
    assert matched.ignored == ["zzzzz"] and "zzzzz" not in matched.terms
    # The same unknown word among the first MAX_QUERY_WORDS does take part: no book has every word.
    inside = INDEX.search(" ".join(["zzzzz", *words]))
    assert not inside.matched_all_words and inside.ignored == [words[-1]]


def test_repeated_words_count_once_towards_the_cap():
    query = " ".join(WORDS[:MAX_QUERY_WORDS] * 3)
    result = INDEX.search(query)
    assert result.ignored == [] and result.matched_all_words


def test_a_query_past_the_cap_does_not_complete_its_last_word():
    words = WORDS[:MAX_QUERY_WORDS]
    assert INDEX.search("rome").total == 1  # the last word completes when it takes part...
    past = INDEX.search(" ".join([*words, "rome"]))
    assert past.ignored == ["rome"] and "rome" not in past.terms  # ...not when it is ignored


def test_only_the_words_taking_part_are_looked_up_for_typos(lookups):
    misspelt = [w + "x" for w in WORDS if len(w) >= 4]  # every one correctable, five letters or more
    INDEX.search(" ".join(misspelt))
    assert lookups == misspelt[:MAX_QUERY_WORDS]


def test_a_word_longer_than_the_cap_is_matched_as_typed(lookups):
    assert titles(INDEX.search(LONG)) == [f"On {LONG}"]
    assert INDEX.search(LONG[:-1] + "z" + " ").total == 0  # one edit away, too long to be corrected
    assert INDEX.search(LONG[:30]).total == 0  # not completed either
    assert INDEX.search("abcdefghij" * 50).total == 0 and lookups == []


def test_a_word_at_the_cap_is_still_corrected_and_completed(lookups):
    assert len(EDGE) == MAX_EXPANDED_LENGTH
    typo = EDGE[:10] + "q" + EDGE[11:]
    corrected = INDEX.search(typo + " ")
    assert titles(corrected) == [f"The {EDGE} book"] and corrected.corrections == {typo: [EDGE]}
    assert lookups == [typo]
    completed = INDEX.search(EDGE)  # completes to the 26-letter word, which is longer than the cap
    assert sorted(titles(completed)) == sorted([f"The {EDGE} book", f"{EDGE}yz and more"])


FALLBACK = SearchIndex.from_records(
    [book(i, "common words only") for i in range(1, 21)]
    + [book(21 + i, "common and middling") for i in range(4)] + [book(25 + i, "middling") for i in range(2)]
    + [book(27, "rarest of all"), book(28, "rarest middling")])


@pytest.mark.parametrize("limit, left_out", [(10**6, []), (10, ["common"]), (1, ["common", "middling"])])
def test_an_any_word_answer_adds_up_its_rarest_words_first(monkeypatch, limit, left_out):
    monkeypatch.setattr(matching, "FALLBACK_POSTINGS", limit)
    result = FALLBACK.search("common middling rarest zzzzz ", 50)
    assert not result.matched_all_words and result.ignored == left_out
    kept = {"common", "middling", "rarest"} - set(left_out)
    found = {FALLBACK.parts.titles[h.position] for h in result.hits}
    every_title = {FALLBACK.parts.titles[p] for p in range(FALLBACK.size)}
    assert found == {t for t in every_title if kept & set(t.split())}
    assert result.total == len(result.hits) and set(result.terms) == kept


COMMONER = SearchIndex.from_records(
    [book(i, "common words") for i in range(1, 9)] + [book(9 + i, "commons and commoners") for i in range(6)]
    + [book(15, "middling rarest"), book(16, "middling")])


@pytest.mark.parametrize("query", ["middling rarest zzzzz comm", "middling rarest comm"])
def test_a_word_an_any_word_answer_leaves_out_is_never_merged(monkeypatch, query):
    """`comm` completes to three words in 20 postings: past the lowered bound, it is counted, never merged."""
    monkeypatch.setattr(matching, "FALLBACK_POSTINGS", 10)
    merged: list[tuple[str, bool]] = []
    merge = index_module.word_match

    def counted(parts, word, alternatives, within=None, *probe_of):
        merged.append((word, within is None))
        return merge(parts, word, alternatives, within, *probe_of)

    monkeypatch.setattr(index_module, "word_match", counted)
    result = COMMONER.search(query, 50)
    assert not result.matched_all_words and result.ignored == ["comm"]
    assert {COMMONER.parts.titles[h.position] for h in result.hits} == {"middling rarest", "middling"}
    assert ("comm", True) not in merged and ("middling", True) in merged


# ---- facets ------------------------------------------------------------------------------------------
AUTHORS = ["Plato", "Jane Austen", "Haruki Murakami", "Ursula K. Le Guin", "Toni Morrison", "Italo Calvino"]
SUBJECTS = ["Fiction", "Philosophy", "Fantasy", "Classics", "Science", "Poetry", "History", "Drama"]
NO_YEAR = -2**31
LANGUAGES = ("eng", "", "fre", "jpn")


def shelf(n: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    weights = np.array([6, 5, 4, 3, 2, 1]) / 21
    authors = [[AUTHORS[int(j)] for j in rng.choice(len(AUTHORS), size=int(rng.integers(0, 3)), replace=False,
                                                   p=weights)] for _ in range(n)]
    subjects = [[SUBJECTS[int(j)] for j in rng.choice(len(SUBJECTS), size=int(rng.integers(0, 4)),
                                                     replace=False)] for _ in range(n)]
    years = np.where(rng.random(n) < 0.1, NO_YEAR, rng.integers(1850, 2025, n)).astype(np.int32)
    return {"authors": ValuePairs.of(authors), "subjects": ValuePairs.of(subjects),
            "decades": decade_codes(decades_of(years, NO_YEAR)),
            "language": rng.integers(len(LANGUAGES), size=n).astype(np.int16),
            "raw": (authors, subjects, years)}


def facet_counts(columns: dict[str, Any], matches: np.ndarray, n: int, limit: int = 50) -> dict[str, dict]:
    found = count(matches, n, columns["authors"], columns["subjects"], columns["decades"],
                  columns["language"], LANGUAGES, limit)
    return {name: {c.value: c.count for c in values} for name, values in found.items()}


def test_facets_past_the_sample_size_are_estimates_close_to_the_counts(monkeypatch):
    n = 20_000
    columns = shelf(n, seed=3)
    matches = np.arange(n, dtype=np.int32)
    assert facet_module.exhaustive(n)
    exact, exact_fewer = facet_counts(columns, matches, n), facet_counts(columns, matches[::7], n)
    monkeypatch.setattr(facet_module, "SAMPLED_ABOVE", len(matches[::7]))
    assert not facet_module.exhaustive(n) and facet_module.exhaustive(len(matches[::7]))
    assert facet_counts(columns, matches[::7], n) == exact_fewer  # up to the sample size: exact
    estimated = facet_counts(columns, matches, n)
    assert estimated != exact  # past it: estimates...
    # ...within four standard errors of the counts (a count c from 1 book in k: about sqrt(c k)), every
    # value found.
    for name in ("authors", "subjects", "decade", "language"):
        assert set(estimated[name]) == set(exact[name]), name
        for value, truth in exact[name].items():
            assert abs(estimated[name][value] - truth) <= 4 * math.sqrt(truth * 7), (name, value)


def test_decades_are_counted_and_filtered_by_code():
    years = np.array([1994, 1990, -375, NO_YEAR, 99_999, -99_999], dtype=np.int32)
    codes = decade_codes(decades_of(years, NO_YEAR))
    empty = ValuePairs.of([[]] * len(years))
    found = count(np.arange(len(years), dtype=np.int32), len(years), empty, empty, codes,
                  np.zeros(len(years), dtype=np.int16), ("",))
    assert {c.value: c.count for c in found["decade"]} == {1990: 2, -380: 1, 99_990: 1, -100_000: 1}
    wanted = FacetFilter(decades=(1995, -100_000, 5_000_000))  # a decade out of any year's reach: nothing
    mask = allowed(wanted, len(years), empty, empty, codes, np.zeros(len(years), dtype=np.int16), {"": 0})
    assert mask.tolist() == [True, True, False, False, False, True]


FILTERS = st.builds(
    FacetFilter,
    authors=st.lists(st.sampled_from([*AUTHORS, "plato", "Nobody"]), max_size=3).map(tuple),
    subjects=st.lists(st.sampled_from([*SUBJECTS, "FICTION", "Cookery"]), max_size=3).map(tuple),
    decades=st.lists(st.integers(1840, 2030), max_size=3).map(tuple),
    languages=st.lists(st.sampled_from(["eng", "FRE", "jpn", "xx"]), max_size=2).map(tuple))


@settings(max_examples=60, deadline=None)
@given(FILTERS, st.integers(0, 2**32 - 1))
def test_facet_filters_equal_a_brute_force_check_over_any_positions(wanted, seed):
    n = 400
    columns = shelf(n, seed=5)
    authors, subjects, years = columns["raw"]
    codes = {c: i for i, c in enumerate(LANGUAGES)}
    positions = np.sort(np.random.default_rng(seed).choice(n, size=60, replace=False)).astype(np.int32)

    def passes(p: int) -> bool:
        def any_of(values, chosen):
            wanted_values = {normalise_text(c) for c in chosen}
            return not chosen or bool({normalise_text(v) for v in values} & wanted_values)

        decade_ok = not wanted.decades or (years[p] != NO_YEAR
                                           and years[p] // 10 in {d // 10 for d in wanted.decades})
        language_ok = not wanted.languages or LANGUAGES[columns["language"][p]] in {
            c.lower() for c in wanted.languages}
        return any_of(authors[p], wanted.authors) and any_of(subjects[p], wanted.subjects) and decade_ok \
            and language_ok

    facet_columns = (columns["authors"], columns["subjects"], columns["decades"], columns["language"])
    every = allowed(wanted, n, *facet_columns, codes)
    some = allowed(wanted, n, *facet_columns, codes, positions)
    assert every.tolist() == [passes(p) for p in range(n)]
    assert some.tolist() == every[positions].tolist()


def test_value_order_keeps_each_values_books_ascending():
    pairs = ValuePairs.of([["b", "a"], ["a"], [], ["c", "A"], ["b"]])
    for code, label in enumerate(pairs.labels):
        books = pairs.by_value[pairs.value_starts[code]:pairs.value_starts[code + 1]].tolist()
        assert books == sorted(books) and books == [p for p, values in enumerate(
            [["b", "a"], ["a"], [], ["c", "A"], ["b"]]) if label.lower() in {v.lower() for v in values}]
