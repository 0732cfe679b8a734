"""What the load test derives from catalogue books: queries and typed prefixes."""

from __future__ import annotations

from bookrec_catalog.catalog import normalise_text
from loadtest.catalogue import queries_from_title, typing_prefixes


def test_queries_are_words_of_the_title_itself():
    queries = queries_from_title("Zen and the Art of Motorcycle Maintenance")
    assert queries == ["maintenance", "zen and"]
    title_words = set(normalise_text("Zen and the Art of Motorcycle Maintenance").split())
    assert all(set(q.split()) <= title_words for q in queries)


def test_queries_skip_short_words_and_punctuation():
    assert queries_from_title("Être et le néant") == ["neant", "etre neant"]
    assert queries_from_title("I, Q") == []


def test_typing_prefixes_grow_one_character_at_a_time():
    assert typing_prefixes("Dune") == ["D", "Du", "Dun", "Dune"]
    prefixes = typing_prefixes("The Republic of Plato", max_chars=8)
    assert prefixes == ["T", "Th", "The", "The R", "The Re", "The Rep", "The Repu"]  # no prefix ends on the space


def test_typing_prefixes_skip_what_normalises_to_nothing():
    assert typing_prefixes('"Ubik"', max_chars=3) == ['"U', '"Ub']
