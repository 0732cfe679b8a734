"""The index on the real Open Library sample, and against brute-force oracles."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookrec_common.catalog import normalise_text, with_derived_attributes
from bookrec_etl.records import from_jsonl_row

from bookrec_search.index import Filters, SearchIndex, autocomplete_order

SAMPLE = Path(__file__).resolve().parents[3] / "data-processing" / "seed" / "philosophy_books_openlibrary.jsonl.gz"


@pytest.fixture(scope="module")
def real():
    rows = [from_jsonl_row(json.loads(line)) for line in gzip.open(SAMPLE, "rt")]
    return SearchIndex(rows)


def titles(index, result):
    return [index.titles[h.position] for h in result.hits]


def test_an_exact_title_ranks_first(real):
    assert titles(real, real.search("Zen and the Art of Motorcycle Maintenance"))[0] == \
        "Zen and the Art of Motorcycle Maintenance"
    assert titles(real, real.search("meditations"))[0] == "Meditations"


def test_an_authors_name_finds_their_books(real):
    result = real.search("pirsig")
    assert result.total >= 1
    assert all("Robert M. Pirsig" in real.authors_of(h.position) for h in result.hits)


def test_subject_words_work_and_are_accent_and_case_insensitive(real):
    assert real.search("EXISTENTIALISM").total == real.search("existentialism").total > 10
    assert real.search("Méditations").total == real.search("meditations").total


def test_all_words_else_any_word_flagged(real):
    strict = real.search("nietzsche portable")
    assert strict.matched_all_words and strict.total >= 1
    loose = real.search("plato qwertyuiop")
    assert not loose.matched_all_words and loose.total == real.search("plato").total


def test_popularity_breaks_ties():
    books = [with_derived_attributes({"book_id": f"OL{i}W", "title": "Ethics", "ratings_distribution": {"5": n}})
             for i, n in ((1, 0), (2, 50), (3, 5))]
    index = SearchIndex(books)
    assert [index.book_ids[h.position] for h in index.search("ethics").hits] == ["OL2W", "OL3W", "OL1W"]


def test_paging_is_stable_and_complete(real):
    everything = [h.position for h in real.search("philosophy", limit=100).hits]
    paged = [h.position for o in range(0, 100, 20) for h in real.search("philosophy", limit=20, offset=o).hits]
    assert paged == everything


# ---- oracles ---------------------------------------------------------------------------------
WORDS = ["mind", "logic", "ethics", "being", "time", "art"]
book_strategy = st.builds(
    lambda title, author, subject, year, dist, lang: {"title": " ".join(title), "authors": [{"author_id": None, "name": author}],
                                                       "subjects": [subject], "first_publish_year": year,
                                                       "ratings_distribution": dist, "language": lang},
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3), st.sampled_from(["Ann Lee", "Bo Kim", "Cy Day"]),
    st.sampled_from(["logic", "ethics", "art history"]), st.one_of(st.none(), st.integers(1800, 2020)),
    st.dictionaries(st.sampled_from(["1", "3", "5"]), st.integers(0, 4)), st.sampled_from(["eng", "fre", None]))


def build(raw):
    return [with_derived_attributes({**b, "book_id": f"OL{i + 1}W"}) for i, b in enumerate(raw)]


def oracle_filter(books, f: Filters):
    def words(text):
        return set(normalise_text(text).split())

    out = []
    for b in books:
        if f.title and not words(f.title) <= words(b["title"]):
            continue
        if f.author and not words(f.author) <= words(" ".join(a["name"] for a in b["authors"])):
            continue
        if f.subject and not words(f.subject) <= words(" ".join(b["subjects"])):
            continue
        year = b.get("first_publish_year")
        if f.min_year is not None and (year is None or year < f.min_year):
            continue
        if f.max_year is not None and (year is None or year > f.max_year):
            continue
        if f.min_rating is not None and (b["rating_count"] == 0 or np.float32(b["rating_sum"] / b["rating_count"]) < np.float32(f.min_rating)):
            continue
        if f.language and b.get("language") != f.language:
            continue
        out.append(b["book_id"])
    return out


filters_strategy = st.builds(
    Filters, title=st.one_of(st.none(), st.sampled_from(WORDS)), author=st.one_of(st.none(), st.sampled_from(["lee", "kim"])),
    subject=st.one_of(st.none(), st.sampled_from(["logic", "history"])),
    min_year=st.one_of(st.none(), st.integers(1800, 2020)), max_year=st.one_of(st.none(), st.integers(1800, 2020)),
    min_rating=st.one_of(st.none(), st.floats(0, 5)), language=st.one_of(st.none(), st.sampled_from(["eng", "fre"])))


@settings(max_examples=150, deadline=None)
@given(st.lists(book_strategy, min_size=1, max_size=40), filters_strategy)
def test_filters_select_exactly_what_the_oracle_selects(raw, filters):
    books = build(raw)
    result = SearchIndex(books).advanced(filters, "year", "desc", limit=100)
    index_ids = SearchIndex(books).book_ids
    assert sorted(index_ids[h.position] for h in result.hits) == sorted(oracle_filter(books, filters))


@settings(max_examples=100, deadline=None)
@given(st.lists(book_strategy, min_size=1, max_size=40), st.sampled_from(["rating", "year", "title"]),
       st.sampled_from(["asc", "desc"]))
def test_sorts_order_exactly_as_the_oracle(raw, sort, order):
    books = build(raw)
    index = SearchIndex(books)
    got = [index.book_ids[h.position] for h in index.advanced(Filters(min_year=None, title=None, language=None,
                                                                         author=None, subject=None, max_year=None,
                                                                         min_rating=0.0), sort, order, 100).hits]
    pool = [b for b in books if b["rating_count"] > 0]
    if sort == "rating":
        values = {b["book_id"]: np.float32(b["rating_sum"] / b["rating_count"]) for b in pool}
    elif sort == "year":
        pool = [b for b in pool]
        values = {b["book_id"]: b.get("first_publish_year") for b in pool}
    else:
        values = {b["book_id"]: b["title_norm"] for b in pool}
    expected_values = sorted((v for v in values.values() if v is not None), reverse=(order == "desc"))
    got_values = [values[g] for g in got if values[g] is not None]
    assert got_values == expected_values
    if sort == "year":  # books without a year come last in either order
        assert all(values[g] is None for g in got[len(got_values):])


@settings(max_examples=150, deadline=None)
@given(st.lists(book_strategy, min_size=1, max_size=40), st.text(alphabet="mlebtaio ", min_size=1, max_size=4))
def test_autocomplete_matches_the_oracle(raw, prefix):
    books = build(raw)
    index = SearchIndex(books)
    wanted = normalise_text(prefix)
    if not wanted:
        assert index.autocomplete(prefix) == []
        return
    expected = [b["book_id"] for b in autocomplete_order(b for b in books if b["title_norm"].startswith(wanted))][:10]
    assert [index.book_ids[p] for p in index.autocomplete(prefix, 10)] == expected
