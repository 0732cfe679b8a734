"""Highlights point at the characters of the matched words, in the text as shown."""

from bookrec_catalog.catalog import search_terms
from bookrec_search.highlight import ranges


def _shown(text, found):
    return [text[s:e] for s, e in found]


def test_matched_words_are_found_in_their_own_spelling():
    title = "Les Misérables (Les Misérables, #1)"
    assert _shown(title, ranges(title, {"miserables"})) == ["Misérables", "Misérables"]
    stone = "Harry Potter and the Sorcerer's Stone"
    assert _shown(stone, ranges(stone, {"sorcerer", "stone"})) == ["Sorcerer", "Stone"]


def test_every_script_and_unspaced_runs_by_their_characters():
    assert _shown("Война и мир", ranges("Война и мир", set(search_terms("война", query=True)))) == ["Война"]
    assert _shown("Ἰλιάς", ranges("Ἰλιάς", set(search_terms("Ιλιας", query=True)))) == ["Ἰλιάς"]
    title = "ノルウェイの森 [Noruwei no Mori]"
    assert _shown(title, ranges(title, set(search_terms("ウェイ", query=True)))) == ["ウェイ"]
    assert _shown(title, ranges(title, {"森", "mori"})) == ["森", "Mori"]
    kafka = "海辺のカフカ"
    assert _shown(kafka, ranges(kafka, set(search_terms("カフカ", query=True)))) == ["カフカ"]


def test_nothing_matched_nothing_shown():
    assert ranges("The Hobbit", {"ring"}) == [] and ranges("", {"x"}) == []
    assert ranges("The Hobbit", set()) == []


def test_ranges_are_merged_and_ascending():
    title = "Stone, stone and STONE"
    assert ranges(title, {"stone"}) == [(0, 5), (7, 12), (17, 22)]
