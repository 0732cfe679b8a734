"""Facet counts against a brute-force count, and facet filters."""

import random
from collections import Counter

import numpy as np
import pytest

from bookrec_catalog.catalog import normalise_text
from bookrec_search.facets import FacetFilter, ValuePairs, allowed, count, decade_codes, decades_of

NO_YEAR = -2**31
AUTHORS = ["Plato", "Jane Austen", "Haruki Murakami", "Лев Толстой", "Ursula K. Le Guin"]
SUBJECTS = ["Fiction", "fiction", "Philosophy", "Fantasy", "Classics", "Романы", "Science"]
LANGUAGES = ("eng", "", "rus", "jpn")


def _books(n, seed):
    rng = random.Random(seed)
    return [{"authors": rng.sample(AUTHORS, rng.randint(0, 2)),
             "subjects": rng.sample(SUBJECTS, rng.randint(0, 4)),
             "year": rng.choice([NO_YEAR, -375, 1813, 1869, 1987, 1989, 2002]),
             "language": rng.randrange(len(LANGUAGES))} for _ in range(n)]


def _columns(books):
    authors = ValuePairs.of(b["authors"] for b in books)
    subjects = ValuePairs.of(b["subjects"] for b in books)
    decades = decade_codes(decades_of(np.array([b["year"] for b in books], dtype=np.int32), NO_YEAR))
    language = np.array([b["language"] for b in books], dtype=np.int16)
    return authors, subjects, decades, language


def _brute(books, matches, limit):
    by = {"authors": Counter(), "subjects": Counter(), "decade": Counter(), "language": Counter()}
    for p in matches:
        b = books[p]
        by["authors"].update({normalise_text(a) for a in b["authors"]})
        by["subjects"].update({normalise_text(s) for s in b["subjects"]})
        if b["year"] != NO_YEAR:
            by["decade"][b["year"] // 10 * 10] += 1
        if LANGUAGES[b["language"]]:
            by["language"][LANGUAGES[b["language"]]] += 1
    return {name: sorted(counter.values(), reverse=True)[:limit] for name, counter in by.items()}, by


@pytest.mark.parametrize("share", [0.001, 0.01, 0.3, 1.0])  # both ways of gathering pairs
def test_counts_over_all_matches_equal_a_brute_force_count(share):
    books = _books(3000, seed=7)
    authors, subjects, decades, language = _columns(books)
    rng = np.random.default_rng(3)
    matches = np.flatnonzero(rng.random(len(books)) < share).astype(np.int32)
    facets = count(matches, len(books), authors, subjects, decades, language, LANGUAGES, limit=4)
    expected, by = _brute(books, matches.tolist(), 4)
    for name in ("authors", "subjects", "decade", "language"):
        assert [c.count for c in facets[name]] == expected[name]
        for c in facets[name]:  # every value's count is its own
            key = normalise_text(c.value) if isinstance(c.value, str) else c.value
            assert by[name][key] == c.count


def test_values_are_grouped_by_their_normalised_form_and_shown_as_first_met():
    pairs = ValuePairs.of([["Fiction"], ["fiction", "FICTION"], ["Science"]])
    facets = count(np.arange(3, dtype=np.int32), 3, pairs, ValuePairs.of([[]] * 3),
                   decade_codes(np.full(3, -2**31, dtype=np.int32)), np.zeros(3, dtype=np.int16), ("",))
    assert [(c.value, c.count) for c in facets["authors"]] == [("Fiction", 2), ("Science", 1)]
    assert facets["decade"] == [] and facets["language"] == []


def test_decades_round_down_bc_years_too():
    years = np.array([1994, 2000, -375, NO_YEAR], dtype=np.int32)
    assert decades_of(years, NO_YEAR)[:3].tolist() == [1990, 2000, -380]


def test_filters_keep_books_with_any_wanted_value_of_every_facet_given():
    books = _books(500, seed=11)
    authors, subjects, decades, language = _columns(books)
    codes = {c: i for i, c in enumerate(LANGUAGES)}
    wanted = FacetFilter(authors=("plato", "Лев Толстой"), subjects=("FICTION",), decades=(1987,),
                         languages=("ENG", "rus"))
    mask = allowed(wanted, len(books), authors, subjects, decades, language, codes)
    for p, b in enumerate(books):
        expect = (bool({"plato", "лев толстои"} & {normalise_text(a) for a in b["authors"]})
                  and "fiction" in {normalise_text(s) for s in b["subjects"]}
                  and b["year"] in (1987, 1989) and LANGUAGES[b["language"]] in ("eng", "rus"))
        assert mask[p] == expect
    assert not allowed(FacetFilter(authors=("Nobody",)), len(books), authors, subjects, decades, language,
                       codes).any()
    assert allowed(FacetFilter(), len(books), authors, subjects, decades, language, codes).all()


def test_updated_pairs_equal_pairs_built_afresh():
    books = _books(200, seed=5)
    pairs = ValuePairs.of(b["subjects"] for b in books)
    changed = {3: ["Poetry"], 10: [], 150: ["fiction", "Drama"]}
    appended = [["Drama"], ["Science", "Poetry"]]
    updated = pairs.updated(changed, appended, len(books))
    fresh_values = [changed.get(p, b["subjects"]) for p, b in enumerate(books)] + appended
    everything = np.arange(len(fresh_values), dtype=np.int32)
    got = Counter(updated.labels[c] for c in updated.codes_of(everything, len(fresh_values)))
    want = Counter()
    for values in fresh_values:
        seen = {}
        for v in values:
            seen.setdefault(normalise_text(v), v)
        want.update(normalise_text(v) for v in seen.values())
    assert {normalise_text(k): v for k, v in got.items()} == dict(want)
    assert np.all(np.diff(updated.books) >= 0)
