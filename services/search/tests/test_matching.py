"""Typo tolerance, completion of the last word, ISBN lookup and every script, through the index."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_search.documents import isbn13_of, query_terms
from bookrec_search.filtering import Filters
from bookrec_search.index import SearchIndex
from bookrec_search.scoring import EXACT_TITLE_BONUS


def book(number: int, title: str, ratings: int = 0, **extra: Any) -> dict[str, Any]:
    return with_derived_attributes({"book_id": f"OL{number}W", "title": title,
                                    "authors": [{"author_id": None, "name": "Anon Author"}],
                                    "ratings_distribution": {"4": ratings}, **extra},
                                   now="2026-01-01T00:00:00.000000Z")


def catalogue(*titles: str | tuple[str, int]) -> SearchIndex:
    return SearchIndex.from_records([book(i + 1, *(t if isinstance(t, tuple) else (t,)))
                                     for i, t in enumerate(titles)])


def found(index: SearchIndex, query: str, **kwargs: Any) -> list[str]:
    return [index.parts.titles[h.position] for h in index.search(query, 50, **kwargs).hits]


TYPO_BOOKS = catalogue("Time Travel", "Logic Primer", "The Republic", "Intuition Pumps", "Tractatus")


# ---- typos -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("query, expected", [
    ("tume", []),  # 4 characters: exact only
    ("time", ["Time Travel"]),
    ("logik", ["Logic Primer"]),  # 5 characters: one edit
    ("lgoic", ["Logic Primer"]),  # a swap of neighbours is one edit
    ("lgoik", []),  # two edits at 5 characters: too many
    ("repubilc", ["The Republic"]),  # 8 characters: one edit
    ("rupubilc", []),  # 8 characters: two edits are too many
    ("imtiution", ["Intuition Pumps"]),  # 9 characters: two edits
    ("imtiutoin", []),  # three edits
    ("tractatsu", ["Tractatus"]),
])
def test_edits_allowed_grow_with_the_word(query, expected):
    assert found(TYPO_BOOKS, query + " ") == expected  # the space: no completion of the last word


def test_corrected_words_are_reported_with_what_they_matched():
    result = TYPO_BOOKS.search("logik primer")
    assert result.matched_all_words and result.total == 1
    assert result.corrections == {"logik": ["logic"]}
    assert result.terms["logik"] == ["logic"] and result.terms["primer"] == ["primer"]
    assert TYPO_BOOKS.search("logic primer").corrections == {}


def test_an_exact_match_ranks_above_a_corrected_one_however_popular():
    index = catalogue(("Logia", 5000), "Logic", ("Logic and Logia", 0))
    result = index.search("logic ")
    assert [index.parts.titles[h.position] for h in result.hits] == ["Logic", "Logic and Logia", "Logia"]
    assert result.corrections == {}  # the word matched exactly in some books
    assert result.terms["logic"] == ["logic", "logia"]


def test_fewer_edits_rank_first():
    index = catalogue(("Transcendentl", 900), ("Transcendental", 500), "Transcendentaly")
    assert found(index, "transcendentaly ") == ["Transcendentaly", "Transcendental", "Transcendentl"]


def test_a_corrected_word_scores_by_the_term_it_matched():
    index = catalogue("Philosophy of Mind", "Philosophy of Logic", "Mind and World", "Philosophy")
    result = index.search("philosphy mind ")
    assert [index.parts.titles[h.position] for h in result.hits] == ["Philosophy of Mind"]
    assert result.matched_all_words and result.corrections == {"philosphy": ["philosophy"]}
    alone = index.search("mind ", 10)
    at = {h.position: h.score for h in alone.hits}
    assert result.hits[0].score > at[result.hits[0].position]  # the correction added its own BM25


def test_numbers_and_unspaced_scripts_are_never_corrected():
    index = catalogue("1984", "Nineteen 19845", "ノルウェイの森")
    assert found(index, "19845 ") == ["Nineteen 19845"]
    assert found(index, "19846 ") == []
    result = index.search("ノルウェエ")
    assert not result.matched_all_words and result.corrections == {}


def test_a_word_new_in_a_refresh_is_found_with_typos_and_completed():
    index = TYPO_BOOKS.updated([book(99, "Zarathustra Speaks")])
    assert found(index, "zarathustar ") == ["Zarathustra Speaks"]
    assert found(index, "zarath") == ["Zarathustra Speaks"]
    assert found(TYPO_BOOKS, "zarathustar") == []


# ---- completion of the last word -------------------------------------------------------------------
def test_the_last_word_completes_and_an_exact_word_ranks_above_a_completion():
    index = catalogue(("Harry Potter", 100), "The Pot", ("Potted History", 500))
    assert found(index, "harry pot") == ["Harry Potter"]
    assert not index.search("harry pot ").matched_all_words  # ended with a space: "pot" is a whole word
    assert found(index, "pot")[0] == "The Pot"
    assert set(found(index, "pot")) == {"The Pot", "Harry Potter", "Potted History"}
    result = index.search("pot")
    assert result.terms["pot"][0] == "pot" and set(result.terms["pot"]) == {"pot", "potter", "potted"}
    assert result.corrections == {}


def test_only_the_last_word_completes_and_not_from_one_character():
    index = catalogue("Harry Potter", "Potter Harry")
    assert not index.search("pot harry").matched_all_words
    assert not index.search("harry p").matched_all_words
    assert found(index, "harry po") == ["Harry Potter", "Potter Harry"]


def test_completions_are_capped_at_the_most_used_terms():
    titles = [f"alpha{i:03d}" for i in range(60)]
    index = SearchIndex.from_records([book(i + 1, t) for i, t in enumerate(titles)]
                                     + [book(100 + i, "alpha007 again") for i in range(5)])
    result = index.search("alpha")
    assert result.terms["alpha"][0] == "alpha007"  # the most used first
    assert 1 < len(result.terms["alpha"]) <= 25


# ---- ISBN ----------------------------------------------------------------------------------------------
ISBN_BOOKS = SearchIndex.from_records([
    book(1, "War and Peace", isbn_13=["9780140447934"]),
    book(2, "Ficciones", isbn_13=["9780804429573", "9780802130303"]),
    book(3, "978 0 14 044793 4 a numbered title", ratings=900),
    book(4, "Anna Karenina", isbn_13=["9780140447934"]),
])


@pytest.mark.parametrize("query, expected", [
    ("9780140447934", {"War and Peace", "Anna Karenina"}),
    ("978-0-14-044793-4", {"War and Peace", "Anna Karenina"}),
    ("978 0 14 044793 4", {"War and Peace", "Anna Karenina"}),
    ("0140447938", {"War and Peace", "Anna Karenina"}),
    ("0-14-044793-8", {"War and Peace", "Anna Karenina"}),
    ("080442957X", {"Ficciones"}),
    ("0-8044-2957-x", {"Ficciones"}),
    ("9780802130303", {"Ficciones"}),
])
def test_a_valid_isbn_finds_its_books_first(query, expected):
    result = ISBN_BOOKS.search(query)
    first = {ISBN_BOOKS.parts.titles[h.position] for h in result.hits[:len(expected)]}
    assert first == expected and result.matched_all_words
    assert all(h.score >= 10 for h in result.hits[:len(expected)])


def test_an_isbn_ranks_above_a_title_spelling_the_same_digits():
    titles = found(ISBN_BOOKS, "978 0 14 044793 4")
    assert set(titles[:2]) == {"War and Peace", "Anna Karenina"}
    assert titles[2] == "978 0 14 044793 4 a numbered title"


@pytest.mark.parametrize("query", ["9780140447935", "0140447939", "080442957Y", "97801404479"])
def test_an_invalid_isbn_is_searched_as_text(query):
    assert isbn13_of(query) is None
    result = ISBN_BOOKS.search(query)
    assert "War and Peace" not in {ISBN_BOOKS.parts.titles[h.position] for h in result.hits}


def test_isbns_follow_refreshes():
    index = ISBN_BOOKS.updated([book(1, "War and Peace", isbn_13=["9780199232765"]),
                                book(5, "Resurrection", isbn_13=["9780140447934"])])
    assert set(found(index, "9780140447934")) == {"Anna Karenina", "Resurrection"}
    assert found(index, "9780199232765") == ["War and Peace"]


# ---- every script --------------------------------------------------------------------------------
SCRIPTS = SearchIndex.from_records([
    book(1, "War and Peace", 50, original_title="Война и миръ"),
    book(2, "Мастер и Маргарита", 40),
    book(3, "Οδύσσεια", 30),
    book(4, "ノルウェイの森", 20),
    book(5, "ألف ليلة وليلة", 10),
    book(6, "Маска", 5),
    book(7, "ノルウェー語入門", 1),
])


@pytest.mark.parametrize("query, title", [
    ("Война", "War and Peace"),
    ("ВОЙНА И МИРЪ", "War and Peace"),
    ("мастер", "Мастер и Маргарита"),
    ("Οδυσσεια", "Οδύσσεια"),  # without the tonos
    ("ΟΔΎΣΣΕΙΑ", "Οδύσσεια"),
    ("ウェイ", "ノルウェイの森"),  # part of a Japanese title
    ("森", "ノルウェイの森"),  # one character
    ("ليلة", "ألف ليلة وليلة"),
    ("Маргарита", "Мастер и Маргарита"),
])
def test_words_of_every_script_find_their_books(query, title):
    assert found(SCRIPTS, query)[0] == title


def test_a_title_in_its_own_script_gets_the_exact_title_bonus():
    assert SCRIPTS.search("война и миръ").hits[0].score >= EXACT_TITLE_BONUS
    assert SCRIPTS.search("Οδυσσεια").hits[0].score >= EXACT_TITLE_BONUS
    assert SCRIPTS.search("ノルウェイの森").hits[0].score >= EXACT_TITLE_BONUS


def test_cyrillic_words_are_corrected_too():
    result = SCRIPTS.search("марагрита ")
    assert [SCRIPTS.parts.titles[h.position] for h in result.hits] == ["Мастер и Маргарита"]
    assert result.corrections == {"марагрита": ["маргарита"]}


@pytest.mark.parametrize("prefix, expected", [
    ("мас", ["Мастер и Маргарита", "Маска"]), ("МАСТ", ["Мастер и Маргарита"]),
    ("ノル", ["ノルウェイの森", "ノルウェー語入門"]), ("ノルウェイ", ["ノルウェイの森"]),
    ("οδυσ", ["Οδύσσεια"]), ("ألف", ["ألف ليلة وليلة"]),
])
def test_autocomplete_in_every_script(prefix, expected):
    suggestions = SCRIPTS.autocomplete(prefix)
    assert [SCRIPTS.parts.titles[p] for p in suggestions.positions] == expected


def test_query_terms_of_unspaced_scripts_are_pairs():
    assert query_terms("ノルウェイ") == ["ノル", "ルウ", "ウェ", "ェイ"]
    assert query_terms("Война и мир") == ["воина", "и", "мир"]


# ---- what facets and highlights need -------------------------------------------------------------------
def test_every_match_is_given_when_asked():
    index = catalogue(*[f"Logic {i}" for i in range(30)], "Ethics")
    result = index.search("logic", 5, with_matches=True)
    assert len(result.hits) == 5 and result.total == 30
    assert result.matches is not None and len(result.matches) == 30
    assert np.all(np.diff(result.matches) > 0)
    assert {h.position for h in result.hits} <= set(result.matches.tolist())
    assert index.search("logic", 5).matches is None
    advanced = index.advanced(Filters(title="logic"), "title", "asc", 3, with_matches=True)
    assert advanced.matches is not None and len(advanced.matches) == 30
    assert advanced.terms == {"logic": ["logic"]}
    assert len(index.advanced(Filters(title="nothing"), with_matches=True).matches) == 0


def test_a_word_in_very_many_books_is_taken_as_typed():
    records = [book(i + 1, f"Common Ground {i}") for i in range(1000)]
    index = SearchIndex.from_records([*records, book(2001, "Commons"), book(2002, "Comon Sense")])
    result = index.search("common")
    assert result.total == 1000 and result.terms == {"common": ["common"]}
    assert found(index, "commons")[0] == "Commons" and index.search("commons").total == 1001
    rare = SearchIndex.from_records([*records[:10], book(2001, "Commons")])
    assert rare.search("common").total == 11  # completed to "commons"


def test_an_original_title_repeating_the_title_counts_its_words_once():
    alpha = book(1, "Cry Wolf (Alpha, #1)", 5, original_title="Cry Wolf (Alpha)")
    with_original = SearchIndex.from_records([alpha, book(2, "Never Cry Wolf", 5)])
    without = SearchIndex.from_records([book(1, "Cry Wolf (Alpha, #1)", 5), book(2, "Never Cry Wolf", 5)])
    # each word counts through the better of the two names, once: here the title (the original is long
    # for its field's average), so the scores are those without an original title
    a = {h.position: h.score for h in with_original.search("wolf").hits}
    b = {h.position: h.score for h in without.search("wolf").hits}
    assert a == pytest.approx(b)
    assert with_original.parts.lengths[0].tolist() == without.parts.lengths[0].tolist()


def test_a_long_original_title_neither_lengthens_the_title_nor_rides_on_its_length():
    records = [book(1, "The House at Riverton", original_title="The Shifting Fog of the Old House Far Away"),
               book(2, "Seconds", original_title="Seconds: A Graphic Novel"),
               book(3, "The Lake House")]
    index = SearchIndex.from_records(records)
    plain = SearchIndex.from_records([{k: v for k, v in r.items() if k != "original_title"} for r in records])
    assert index.parts.lengths[0].tolist() == plain.parts.lengths[0].tolist() == [4.0, 1.0, 3.0]
    assert [h.score for h in index.search("riverton").hits] == \
        [h.score for h in plain.search("riverton").hits]
    assert found(index, "shifting fog") == ["The House at Riverton"]
    # found by its original title, scored by that title's own length
    like = SearchIndex.from_records([book(2, "Seconds: A Graphic Novel"), *records[:1], records[2]])
    assert index.search("graphic").hits[0].score == \
        pytest.approx(like.search("graphic").hits[0].score, rel=0.3)


def test_the_title_filter_looks_in_both_names_of_a_book():
    for title in ("война", "peace война"):
        assert [SCRIPTS.parts.titles[h.position] for h in SCRIPTS.advanced(Filters(title=title)).hits] == \
            ["War and Peace"]
    assert SCRIPTS.advanced(Filters(title="война маска")).total == 0


def test_shown_scores_never_rise_down_the_ranking_though_a_correction_can_score_more():
    index = catalogue(("A Long Story About The Potter And Many Other Things In Between", 0),
                      ("Potters Potters Potters", 900), ("Potters", 500))
    result = index.search("potter", 10)
    # the exact word ranks first
    assert index.parts.titles[result.hits[0].position].startswith("A Long Story")
    assert result.hits[1].score > result.hits[0].score  # ... though a completion scores more text
    shown = [h.shown_score for h in result.hits]
    assert shown == sorted(shown, reverse=True) and shown[0] == result.hits[0].score
    page_two = index.search("potter", 1, offset=1).hits
    assert page_two[0].shown_score == shown[1]  # the same on every page
