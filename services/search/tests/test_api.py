"""The search service over HTTP against a real moto server."""

from __future__ import annotations

import asyncio

import pytest
from litestar.testing import AsyncTestClient

from bookrec_common.catalog import utc_now, with_derived_attributes
from bookrec_common.clients import dynamodb_client
from bookrec_common.dynamo import to_item

from bookrec_search.app import create_app
from bookrec_search.index import SearchIndex, autocomplete_order
from bookrec_search.settings import SearchSettings
from bookrec_search.store import BookSource

TITLES = ["The Art of War", "The Art of Loving", "Thus Spoke Zarathustra", "Ethics", "The Ethics of Ambiguity",
          "Theaetetus", "Being and Time", "The Republic of Plato"]


def put_books(dynamodb, tables, books):
    for book in books:
        dynamodb.put_item(TableName=tables["books"], Item=to_item(with_derived_attributes(book)))


def seed(dynamodb, tables):
    books = [{"book_id": f"OL{i + 1}W", "title": t, "authors": [{"author_id": None, "name": "Anon Author"}],
              "subjects": ["philosophy"], "first_publish_year": 1900 + i, "language": "eng",
              "ratings_distribution": {"4": i}} for i, t in enumerate(TITLES)]
    put_books(dynamodb, tables, books)
    return books


async def wait_ready(client):
    for _ in range(200):
        if (await client.get("/ready")).status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("index never loaded")


@pytest.fixture
async def client(tables, dynamodb):
    seed(dynamodb, tables)
    settings = SearchSettings(books_table=tables["books"], access_log=False, index_refresh_seconds=0.5)
    async with AsyncTestClient(create_app(settings)) as c:
        await wait_ready(c)
        yield c


async def test_post_and_get_search_answer_the_same(client):
    post = (await client.post("/search", json={"query": "art", "limit": 5})).json()
    get = (await client.get("/search", params={"q": "art", "limit": 5})).json()
    assert post["items"] == get["items"] and post["total"] == 2 and post["matched"] == "all_words"
    assert {i["title"] for i in post["items"]} == {"The Art of War", "The Art of Loving"}
    summary = post["items"][0]
    assert set(summary) == {"book_id", "title", "authors", "first_publish_year", "avg_rating", "rating_count",
                            "cover_id", "score"}


async def test_advanced_filters_and_echo(client):
    r = await client.post("/search/advanced", json={"title": "ethics", "min_year": 1903, "sort": "year"})
    body = r.json()
    assert r.status_code == 200 and body["filters_applied"] == {"title": "ethics", "min_year": 1903}
    assert [i["title"] for i in body["items"]] == ["The Ethics of Ambiguity", "Ethics"] and body["order"] == "desc"


async def test_autocomplete_from_index_equals_gsi_fallback_and_oracle(client, tables, dynamodb, moto_endpoint):
    books = [with_derived_attributes(b) for b in seed(dynamodb, tables)]
    for prefix in ("t", "th", "the art", "ETH", "zz"):
        from_index = (await client.get("/search/autocomplete", params={"q": prefix, "limit": 50})).json()
        assert from_index["source"] == "index"
        oracle = [b["book_id"] for b in autocomplete_order(
            b for b in books if b["title_norm"].startswith(prefix.lower()))]
        assert [i["book_id"] for i in from_index["items"]] == oracle
        shard = (await client.get(f"/search/shard/{prefix}", params={"limit": 50})).json()
        assert shard["items"] == from_index["items"]
    disabled = SearchSettings(books_table=tables["books"], access_log=False, index_enabled=False)
    async with AsyncTestClient(create_app(disabled)) as fallback:
        for prefix in ("t", "th", "the art", "ETH", "zz"):
            via_gsi = (await fallback.get("/search/autocomplete", params={"q": prefix, "limit": 50})).json()
            via_index = (await client.get("/search/autocomplete", params={"q": prefix, "limit": 50})).json()
            assert via_gsi["source"] == "dynamodb" and via_gsi["items"] == via_index["items"]


async def test_gsi_fallback_pages_through_a_bucket_larger_than_a_query_page(tables, dynamodb):
    books = [{"book_id": f"OL{i}W", "title": f"Tractatus {i:04d}", "ratings_distribution": {"3": i % 7}}
             for i in range(1, 301)]
    put_books(dynamodb, tables, books)
    settings = SearchSettings(books_table=tables["books"])
    async with dynamodb_client(settings) as client:
        source = BookSource(client, client, tables["books"])
        found = await source.titles_with_prefix("tract", page_size=40)  # 8 pages
    records = [with_derived_attributes(b) for b in books]
    assert sorted(r["book_id"] for r in found) == sorted(r["book_id"] for r in records)
    index = SearchIndex(records)
    assert [r["book_id"] for r in autocomplete_order(found)][:50] == [index.book_ids[p] for p in index.autocomplete("tract", 50)]


async def test_a_book_added_to_the_table_becomes_searchable(client, tables, dynamodb):
    assert (await client.get("/search", params={"q": "monadology"})).json()["total"] == 0
    put_books(dynamodb, tables, [{"book_id": "OL99W", "title": "Monadology", "updated_at": utc_now()}])
    for _ in range(60):
        if (await client.get("/search", params={"q": "monadology"})).json()["total"] == 1:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("/search", params={"q": "monadology"})).json()["items"][0]["book_id"] == "OL99W"
    assert "search_index_documents 9.0" in (await client.get("/metrics")).text


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/search", {"query": "a"}),
    ("POST", "/search", {"query": "  !! "}),
    ("POST", "/search", {"query": "art", "limit": 0}),
    ("POST", "/search", {"query": "art", "limit": 101}),
    ("POST", "/search", {"query": "art", "offset": 10_001}),
    ("POST", "/search", {"query": "art", "offset": -1}),
    ("POST", "/search", {"query": 5}),
    ("POST", "/search", {}),
    ("POST", "/search", {"query": "art", "bogus": 1}),
    ("GET", "/search?q=a", None),
    ("GET", "/search", None),
    ("GET", "/search?q=art&limit=abc", None),
    ("POST", "/search/advanced", {}),
    ("POST", "/search/advanced", {"sort": "year"}),
    ("POST", "/search/advanced", {"min_year": 2000, "max_year": 1990}),
    ("POST", "/search/advanced", {"min_rating": 6}),
    ("POST", "/search/advanced", {"min_rating": -1}),
    ("POST", "/search/advanced", {"title": "art", "sort": "price"}),
    ("POST", "/search/advanced", {"title": "art", "order": "up"}),
    ("POST", "/search/advanced", {"title": "!!"}),
    ("POST", "/search/advanced", {"language": "english!"}),
    ("GET", "/search/autocomplete", None),
    ("GET", "/search/autocomplete?q=%20", None),
    ("GET", "/search/autocomplete?q=t&limit=51", None),
    ("GET", "/search/shard/%21?limit=5", None),
])
async def test_bad_input_is_400_problem(client, method, path, body):
    r = await client.request(method, path, json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["errors"]
