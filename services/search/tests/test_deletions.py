"""Deleted books are gone from every answer, come back when given again, and unknown ids change nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_search.facets import FacetFilter
from bookrec_search.filtering import Filters
from bookrec_search.index import SearchIndex

STAMP = "2026-01-01T00:00:00.000000Z"
ISBN = "978-0-306-40615-7"  # a valid ISBN-13, on the doomed book only


def book(book_id: str, title: str, author: str, subjects: list[str], **extra: Any) -> dict[str, Any]:
    return with_derived_attributes({"book_id": book_id, "title": title,
                                    "authors": [{"author_id": None, "name": author}], "subjects": subjects,
                                    "first_publish_year": 1990, "language": "eng",
                                    "ratings_distribution": {"4": 3}, **extra}, now=STAMP)


# The doomed book has words, an author, a subject, an ISBN and an original title no other book has.
DOOMED = book("OL99W", "Quixotic Zebras", "Xavier Quillfeather", ["Cryptozoology"],
              original_title="Кихотские зебры", isbn_13=[ISBN], first_publish_year=1871, language="rus")
OTHERS = [book(f"OL{i}W", title, author, subjects) for i, (title, author, subjects) in enumerate([
    ("Quiet Zebras of the Plain", "Ann Lee", ["Zoology"]),
    ("The Quiet Mind", "Bo Kim", ["Philosophy"]),
    ("Zebra Stripes", "Ann Lee", ["Zoology", "Cryptozoology"]),
    ("Quixote", "Cy Day", ["Fiction"]),
    ("Minds and Zebras", "Bo Kim", ["Philosophy", "Zoology"]),
], start=1)]


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex.from_records([OTHERS[0], OTHERS[1], DOOMED, *OTHERS[2:]])


def ids(index: SearchIndex, positions) -> list[str]:
    return [index.book(int(p))["book_id"] for p in positions]


def hit_ids(index: SearchIndex, result) -> list[str]:
    return ids(index, [h.position for h in result.hits])


def answers(index: SearchIndex) -> dict[str, Any]:
    """Everything the index tells about the doomed book, by its own answers."""
    def searched(query: str, **kw: Any) -> tuple:
        result = index.search(query, 50, **kw)
        return hit_ids(index, result), result.total, result.terms, result.corrections

    def advanced(filters: Filters, sort: str) -> tuple:
        result = index.advanced(filters, sort, "desc", 50)
        return hit_ids(index, result), result.total

    facets = index.facets(index.search("zebras", with_matches=True).matches, limit=100)
    return {
        "ranked": searched("quixotic zebras"), "exact title": searched("Quixotic Zebras"),
        "original title": searched("Кихотские зебры"), "isbn": searched(ISBN),
        "typo": searched("quixotik"), "completion": searched("quixoti"), "author": searched("quillfeather"),
        "facet filter": searched("zebras", facet_filter=FacetFilter(subjects=("Cryptozoology",))),
        "advanced title": advanced(Filters(title="zebras"), "relevance"),
        "advanced author": advanced(Filters(author="quillfeather"), "rating"),
        "advanced columns": advanced(Filters(max_year=1900), "year"),
        "advanced all": advanced(Filters(), "title"),
        "autocomplete": (ids(index, index.autocomplete("qui", 10).positions),
                         index.autocomplete("qui").total),
        "facets": {name: sorted((c.value, c.count) for c in counts) for name, counts in facets.items()},
        "isbn map": ids(index, index.parts.isbns.find(9780306406157)),
        "position": index.position_of("OL99W"),
    }


def test_a_deleted_book_is_gone_from_every_answer(index):
    before = answers(index)
    # The doomed book is where it should be before the deletion, by the index's own answers.
    for kind in ("ranked", "exact title", "original title", "isbn", "typo", "completion", "author",
                 "facet filter"):
        assert before[kind][0][0] == "OL99W", kind
    assert before["typo"][3] == {"quixotik": ["quixotic"]}
    for kind in ("advanced title", "advanced author", "advanced columns", "advanced all"):
        assert "OL99W" in before[kind][0], kind
    assert "OL99W" in before["autocomplete"][0] and before["isbn map"] == ["OL99W"]
    assert ("Xavier Quillfeather", 1) in before["facets"]["authors"]
    assert ("rus", 1) in before["facets"]["language"]

    gone = index.updated([], deleted=["OL99W"])
    after = answers(gone)
    assert gone.size == index.size - 1 and after["position"] is None and after["isbn map"] == []
    for kind in ("ranked", "exact title", "original title", "isbn", "typo", "completion", "author"):
        assert "OL99W" not in after[kind][0], kind  # (others may now match through the any-word fallback)
    for kind in ("facet filter", "advanced title", "advanced author", "advanced columns", "advanced all"):
        assert after[kind][:2] == ([b for b in before[kind][0] if b != "OL99W"], before[kind][1] - 1), kind
    # Its words match nothing, so they are neither highlighted, completed nor offered as corrections.
    for kind in ("typo", "completion", "ranked", "author"):
        matched = {t for terms in after[kind][2].values() for t in terms} | \
            {t for terms in after[kind][3].values() for t in terms}
        assert not matched & {"quixotic", "quillfeather", "кихотские"}, kind
    assert after["autocomplete"] == ([b for b in before["autocomplete"][0] if b != "OL99W"],
                                     before["autocomplete"][1] - 1)
    assert ("Xavier Quillfeather", 1) not in after["facets"]["authors"]
    assert all(value != "rus" for value, _ in after["facets"]["language"])
    assert all(value != 1870 for value, _ in after["facets"]["decade"])
    assert dict(after["facets"]["subjects"]).get("Cryptozoology") == 1  # Zebra Stripes still has it
    # What is left answers as a fresh build of the books left (with the same field averages).
    fresh = SearchIndex.from_records(OTHERS, gone.parts.average_lengths)
    assert answers(gone) == {**answers(fresh), "position": None}


def test_a_deleted_book_given_again_comes_back(index):
    gone = index.updated([], deleted=["OL99W"])
    back = gone.updated([DOOMED])
    assert back.position_of("OL99W") is not None and back.size == index.size
    again = answers(back)
    del again["position"]
    expected = answers(index)
    del expected["position"]
    assert again == expected


def test_deleting_and_changing_in_one_update(index):
    retitled = book("OL2W", "The Quiet Quixotic Heart", "Bo Kim", ["Philosophy"])
    added = book("OL50W", "Zebras Again", "Ann Lee", ["Zoology"])
    both = index.updated([retitled, added, DOOMED], deleted=["OL99W", "OL5W"])
    assert both.position_of("OL99W") is None and both.position_of("OL5W") is None  # deletion wins
    fresh = SearchIndex.from_records([OTHERS[0], retitled, *OTHERS[2:4], added], both.parts.average_lengths)
    expected = answers(fresh)
    assert answers(both) == expected


def test_unknown_ids_are_ignored_and_no_change_is_the_same_index(index):
    assert index.updated([], deleted=["OL12345W", "", "not a book"]) is index
    assert index.updated([DOOMED], deleted=["OL12345W"]) is index
    assert index.updated([], deleted=[]) is index
    smaller = index.updated([], deleted=["OL12345W", "OL1W"])
    assert smaller.size == index.size - 1 and smaller.position_of("OL1W") is None


def test_deleting_every_book_leaves_an_empty_index_that_grows_again(index):
    empty = index.updated([], deleted=[b["book_id"] for b in [DOOMED, *OTHERS]])
    assert empty.size == 0 and empty.search("zebras").total == 0 and empty.autocomplete("q").total == 0
    assert empty.advanced(Filters()).total == 0 and empty.terms == 0
    grown = empty.updated(OTHERS)
    assert hit_ids(grown, grown.search("zebra stripes", 1)) == ["OL3W"]


def test_deleted_positions_leave_every_structure_consistent(index):
    gone = index.updated([], deleted=["OL99W", "OL2W"])
    assert sorted(gone.parts.book_ids.tolist()) == [b for b in sorted(index.parts.book_ids.tolist())
                                               if b not in (b"OL99W", b"OL2W")]
    assert np.array_equal(np.sort(gone.parts.title_order), np.arange(gone.size))
    assert np.array_equal(np.sort(gone.parts.id_order), np.arange(gone.size))
    for lists in (*gone.parts.fields, gone.parts.combined):
        assert lists.offsets[-1] == len(lists.docs) and (lists.docs < gone.size).all()
    assert gone.parts.author_values.books.max() < gone.size
    assert gone.parts.subject_values.books.max() < gone.size
    assert all(p < gone.size for p in gone.parts.original_titles)
