"""Series in search: every hit shows its book's series, and a series' name and number find the book, in a
built index, an updated one, a loaded artifact and through the HTTP API (GSI fallback included)."""

from __future__ import annotations

import pickle
import struct
import zlib

import pytest
from litestar.testing import AsyncTestClient

from bookrec_catalog.catalog import utc_now, with_derived_attributes
from bookrec_search import artifact
from bookrec_search.app import create_app
from bookrec_search.artifact import SnapshotError, dump, load
from bookrec_search.index import SearchIndex

from .test_api import put_books, ready_client_over, settings_for, wait_until

HUNGER_GAMES = "The Hunger Games"


def book(book_id: str, title: str, series: dict | None = None, ratings: int = 0, **more) -> dict:
    return with_derived_attributes({"book_id": book_id, "title": title, "series": series,
                                    "authors": [{"author_id": None, "name": "Suzanne Collins"}],
                                    "ratings_distribution": {"4": ratings}, **more})


# Titles as the ETL now stores goodbooks books: the series note off the title, in `series`.
BOOKS = [
    book("GB1", HUNGER_GAMES, {"name": HUNGER_GAMES, "position": 1}, ratings=50),
    book("GB17", "Catching Fire", {"name": HUNGER_GAMES, "position": 2}, ratings=40),
    book("GB20", "Mockingjay", {"name": HUNGER_GAMES, "position": 3}, ratings=30),
    book("GB2379", "The Hunger Games Trilogy Boxset", {"name": HUNGER_GAMES}, ratings=5),  # #1-3: no number
    book("GB4599", "Midnight Sun", {"name": "Twilight", "position": 1.5}, ratings=3),
    book("GB100", "Bossypants", ratings=20),
    book("GB101", "Fire and Ice", ratings=2),
]


def ids(index: SearchIndex, query: str, limit: int = 5) -> list[str]:
    return [index.book(hit.position)["book_id"] for hit in index.search(query, limit).hits]


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex.from_records(BOOKS)


def test_a_hit_shows_its_series_and_its_number_in_it(index):
    shown = {b["book_id"]: index.book(index.position_of(b["book_id"]))["series"] for b in BOOKS}
    assert shown == {"GB1": {"name": HUNGER_GAMES, "position": 1.0},
                     "GB17": {"name": HUNGER_GAMES, "position": 2.0},
                     "GB20": {"name": HUNGER_GAMES, "position": 3.0},
                     "GB2379": {"name": HUNGER_GAMES, "position": None},
                     "GB4599": {"name": "Twilight", "position": 1.5},
                     "GB100": None, "GB101": None}


@pytest.mark.parametrize(("query", "first"), [
    ("hunger games 2", "GB17"),
    ("hunger games 3", "GB20"),
    ("Catching Fire (The Hunger Games, #2)", "GB17"),  # the goodbooks title, note and all
    ("Mockingjay (The Hunger Games, #3)", "GB20"),
    ("catching fire", "GB17"),
    ("the hunger games", "GB1"),  # the exact title (its own name, not only its series') comes first
    ("twilight 1.5", "GB4599"),
    ("catchng fire hunger", "GB17"),  # a typo still corrected beside the series' words
])
def test_a_series_name_and_number_find_the_book(index, query, first):
    assert ids(index, query)[0] == first


def test_the_series_counts_as_the_title_field(index):
    # In the title field, weighted as the title: the series' books before one that only shares a word.
    assert ids(index, "hunger games fire") == ["GB17"]
    assert set(ids(index, "fire", 10)) == {"GB17", "GB101"}
    title_only = SearchIndex.from_records([book("GB17", "Catching Fire")])
    assert title_only.search("hunger games").total == 0  # the words came from the series alone


def test_changing_or_removing_a_series_updates_the_index_as_a_fresh_build(index):
    changed = [book("GB17", "Catching Fire", {"name": HUNGER_GAMES, "position": 2.5}, ratings=40),
               book("GB20", "Mockingjay", None, ratings=30),
               book("GB100", "Bossypants", {"name": "Tina Fey", "position": 1}, ratings=20),
               book("GB5000", "The Ballad of Songbirds and Snakes", {"name": HUNGER_GAMES, "position": 0},
                    ratings=10)]
    updated = index.updated(changed, deleted=["GB4599"])
    final = {b["book_id"]: b for b in BOOKS if b["book_id"] != "GB4599"} | {b["book_id"]: b for b in changed}
    fresh = SearchIndex.from_records(list(final.values()))
    for query in ("hunger games", "hunger games 2", "hunger games 2 5", "hunger games 0", "tina fey 1",
                  "mockingjay", "mockingjay hunger games", "twilight"):
        assert ids(updated, query, 10) == ids(fresh, query, 10), query
    assert updated.book(updated.position_of("GB17"))["series"] == {"name": HUNGER_GAMES, "position": 2.5}
    assert updated.book(updated.position_of("GB20"))["series"] is None
    assert updated.book(updated.position_of("GB5000"))["series"] == {"name": HUNGER_GAMES, "position": 0.0}
    assert updated.search("mockingjay hunger games").matched_all_words is False


def test_the_artifact_carries_the_series(index):
    loaded = SearchIndex(load(dump(index.parts)))
    for query in ("hunger games 2", "twilight", "bossypants"):
        assert [loaded.book(h.position) for h in loaded.search(query, 10).hits] == \
            [index.book(h.position) for h in index.search(query, 10).hits]


def test_an_artifact_of_the_format_before_series_is_refused_by_name():
    # Exactly what a builder before series published: format 1, parts without `series`.
    parts = {k: v for k, v in artifact.plain(SearchIndex.from_records(BOOKS).parts).items()
             if k not in ("series", "series_positions")}
    stream = pickle.dumps(parts, protocol=5)

    def sealed(version: int) -> bytes:
        return struct.pack("<8sIIQQI", artifact.MAGIC, version, 0, len(stream), 36 + len(stream),
                           zlib.crc32(stream)) + stream

    with pytest.raises(SnapshotError, match=f"format 1, this service reads {artifact.FORMAT_VERSION}"):
        load(sealed(1))
    with pytest.raises(SnapshotError, match="other parts than this format's"):  # relabelled: still refused
        load(sealed(artifact.FORMAT_VERSION))


# ---- over HTTP -----------------------------------------------------------------------------------------
async def test_search_and_autocomplete_hits_show_the_series(dynamodb):
    def fill(tables):
        put_books(dynamodb, tables, BOOKS)

    async with ready_client_over(dynamodb, fill) as client:
        page = (await client.get("/search", params={"q": "hunger games 2"})).json()
        first = page["items"][0]
        assert (first["book_id"], first["title"]) == ("GB17", "Catching Fire")
        assert first["series"] == {"name": HUNGER_GAMES, "position": 2.0}
        boxset = (await client.post("/search", json={"query": "boxset"})).json()["items"][0]
        assert boxset["series"] == {"name": HUNGER_GAMES, "position": None}
        plain = (await client.get("/search", params={"q": "bossypants"})).json()["items"][0]
        assert "series" in plain and plain["series"] is None
        advanced = (await client.post("/search/advanced", json={"title": "midnight sun"})).json()
        assert advanced["items"][0]["series"] == {"name": "Twilight", "position": 1.5}
        completed = (await client.get("/search/autocomplete", params={"q": "catch"})).json()
        assert completed["source"] == "index" and completed["items"][0]["series"]["position"] == 2.0


async def test_the_gsi_fallback_shows_the_series_as_the_index_does(tables, dynamodb):
    put_books(dynamodb, tables, BOOKS)
    async with AsyncTestClient(create_app(settings_for(tables, index_refresh_seconds=0))) as indexed:
        await wait_until(lambda: _ready(indexed))
        from_index = (await indexed.get("/search/autocomplete", params={"q": "m", "limit": 50})).json()
    async with AsyncTestClient(create_app(settings_for(tables, index_enabled=False))) as fallback:
        from_table = (await fallback.get("/search/autocomplete", params={"q": "m", "limit": 50})).json()
    assert from_table["source"] == "dynamodb" and {**from_table, "source": "index"} == from_index
    assert [(i["book_id"], i["series"]) for i in from_table["items"]] == [
        ("GB20", {"name": HUNGER_GAMES, "position": 3.0}), ("GB4599", {"name": "Twilight", "position": 1.5})]


async def test_a_reimported_series_reaches_the_hits_through_the_feed(tables, dynamodb):
    put_books(dynamodb, tables, BOOKS)
    async with AsyncTestClient(create_app(settings_for(tables, index_refresh_seconds=0.3))) as client:
        await wait_until(lambda: _ready(client))
        put_books(dynamodb, tables, [book("GB20", "Mockingjay", {"name": HUNGER_GAMES, "position": 4},
                                          ratings=30, updated_at=utc_now())])

        async def moved() -> bool:
            items = (await client.get("/search", params={"q": "hunger games 4"})).json()["items"]
            return bool(items) and items[0]["series"] == {"name": HUNGER_GAMES, "position": 4.0}

        await wait_until(moved)


async def _ready(client) -> bool:
    return (await client.get("/ready")).status_code == 200
