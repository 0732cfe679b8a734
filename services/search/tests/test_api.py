"""The search service over HTTP against a real moto server."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from bookrec_catalog.catalog import iso_stamp, normalise_text, utc_now, with_derived_attributes
from bookrec_catalog.changes import change_shard, change_stamp
from bookrec_catalog.dynamo import to_item
from bookrec_local import definitions
from bookrec_search.app import create_app
from bookrec_search.documents import suggestion_key
from bookrec_search.index import SearchIndex
from bookrec_search.settings import SearchSettings

TITLES = ["The Art of War", "The Art of Loving", "Thus Spoke Zarathustra", "Ethics",
          "The Ethics of Ambiguity", "Theaetetus", "Being and Time", "The Republic of Plato", "Éthique"]


def put_books(dynamodb, tables, books: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Written as the ETL writes them: stamped for the change feed (at `changed_at` when given)."""
    records = [with_derived_attributes(book) for book in books]
    for record in records:
        record.update(change_stamp(record["book_id"], record.get("changed_at") or utc_now()))
    for record in records:
        dynamodb.put_item(TableName=tables["books"], Item=to_item(record))
    return records


def seed(dynamodb, tables) -> list[dict[str, Any]]:
    return put_books(dynamodb, tables, [
        {"book_id": f"OL{i + 1}W", "title": t, "authors": [{"author_id": None, "name": "Anon Author"}],
         "subjects": ["philosophy"], "first_publish_year": 1900 + i, "language": "eng", "cover_id": 100 + i,
         "ratings_distribution": {"4": i, "5": i % 3}} for i, t in enumerate(TITLES)])


def settings_for(tables, **overrides) -> SearchSettings:
    return SearchSettings(**{"books_table": tables["books"], "access_log": False, **overrides})


async def wait_until(check, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.05)


async def ready(client) -> bool:
    return (await client.get("/ready")).status_code == 200


@contextlib.asynccontextmanager
async def ready_client_over(dynamodb, fill):
    """A ready service over tables of its own, filled by `fill(tables)`; the tables go afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    tables = definitions.create_tables(dynamodb, prefix)
    fill(tables)
    try:
        async with AsyncTestClient(create_app(settings_for(tables, index_refresh_seconds=0))) as c:
            await wait_until(lambda: ready(c))
            yield c
    finally:
        definitions.delete_tables(dynamodb, prefix)


@pytest.fixture
async def books(tables, dynamodb):
    return seed(dynamodb, tables)


@pytest.fixture
async def client(tables, books):
    async with AsyncTestClient(create_app(settings_for(tables, index_refresh_seconds=0.3))) as c:
        await wait_until(lambda: ready(c))
        yield c


async def test_post_and_get_search_answer_the_same_ranked_page(client):
    post = (await client.post("/search", json={"query": "the art", "limit": 5})).json()
    get = (await client.get("/search", params={"q": "the art", "limit": 5})).json()
    assert post == get
    assert post["query"] == "the art" and post["total"] == 2 and post["count"] == 2 and post["offset"] == 0
    assert post["limit"] == 5 and post["matched"] == "all_words"
    # Same words, same lengths: the rated one (OL2W) before the unrated one.
    assert [i["title"] for i in post["items"]] == ["The Art of Loving", "The Art of War"]
    assert post["items"][0]["score"] > post["items"][1]["score"]
    assert post["items"][1] == {"book_id": "OL1W", "title": "The Art of War", "authors": ["Anon Author"],
                                "first_publish_year": 1900, "avg_rating": 0.0, "rating_count": 0,
                                "cover_id": 100, "score": post["items"][1]["score"], "series": None}


async def test_any_word_fallback_is_said(client):
    body = (await client.get("/search", params={"q": "zarathustra nonexistentword"})).json()
    assert body["matched"] == "any_word" and [i["title"] for i in body["items"]] == ["Thus Spoke Zarathustra"]


async def test_accents_case_and_punctuation_do_not_matter(client):
    plain = (await client.get("/search", params={"q": "ethique"})).json()
    assert [i["title"] for i in plain["items"]] == ["Éthique"]
    assert (await client.get("/search", params={"q": "ÉTHIQUE!"})).json()["items"] == plain["items"]


async def test_advanced_filters_sort_and_echo(client, books):
    r = await client.post("/search/advanced", json={"title": "ethics", "min_year": 1903, "sort": "year"})
    body = r.json()
    assert r.status_code == 200 and body["filters_applied"] == {"title": "ethics", "min_year": 1903}
    assert body["sort"] == "year" and body["order"] == "desc" and body["total"] == 2
    assert [i["title"] for i in body["items"]] == ["The Ethics of Ambiguity", "Ethics"]
    by_title = (await client.post("/search/advanced",
                                  json={"author": "anon", "sort": "title", "limit": 3})).json()
    assert by_title["order"] == "asc" and [i["title"] for i in by_title["items"]] == \
        ["Being and Time", "Ethics", "Éthique"]
    rated = (await client.post("/search/advanced", json={"min_rating": 4.5, "language": "ENG"})).json()
    wanted = {b["book_id"] for b in books if b["avg_rating"] >= 4.5}
    assert wanted and {i["book_id"] for i in rated["items"]} == wanted


async def test_autocomplete_index_and_gsi_fallback_agree_with_the_oracle(client, tables, books):
    prefixes = ["t", "th", "The Art", "ETH", "é", "zz", "being and t"]

    def oracle(prefix: str) -> list[str]:
        wanted = normalise_text(prefix)
        return [b["book_id"] for b in sorted((b for b in books if b["title_norm"].startswith(wanted)),
                                             key=suggestion_key)]

    from_index = {}
    for prefix in prefixes:
        body = (await client.get("/search/autocomplete", params={"q": prefix, "limit": 50})).json()
        assert body["source"] == "index" and body["query"] == prefix and body["offset"] == 0
        assert [i["book_id"] for i in body["items"]] == oracle(prefix)
        assert body["total"] == len(oracle(prefix))
        shard = (await client.get(f"/search/shard/{prefix}", params={"limit": 50})).json()
        assert shard["items"] == body["items"]
        from_index[prefix] = body
    async with AsyncTestClient(create_app(settings_for(tables, index_enabled=False))) as fallback:
        assert (await fallback.get("/ready")).json()["status"] == "ready"
        for prefix in prefixes:
            body = (await fallback.get("/search/autocomplete", params={"q": prefix, "limit": 50})).json()
            assert body["source"] == "dynamodb"
            assert {**body, "source": "index"} == from_index[prefix]
        limited = (await fallback.get("/search/shard/t", params={"limit": 2})).json()
        assert [i["book_id"] for i in limited["items"]] == oracle("t")[:2]
        assert limited["total"] == len(oracle("t"))
        failed = await fallback.get("/search", params={"q": "ethics"})
        assert failed.status_code == 503 and failed.json()["code"] == "index_disabled"


async def test_gsi_fallback_pages_through_a_bucket_larger_than_a_query_page(tables, dynamodb):
    books = put_books(dynamodb, tables, [
        {"book_id": f"OL{i}W", "title": f"Tractatus {i:04d}" if i % 4 else f"Treatise {i}",
         "ratings_distribution": {"3": i % 7, "5": i % 5}} for i in range(1, 301)])
    index = SearchIndex.from_records(books)
    settings = settings_for(tables, index_enabled=False, autocomplete_fallback_page_size=40)
    async with AsyncTestClient(app := create_app(settings)) as client:
        source = app.state.live.source
        pages = []
        titles_with_prefix = source.titles_with_prefix

        async def counting(prefix):
            async for page in titles_with_prefix(prefix):
                pages.append(len(page))
                yield page

        source.titles_with_prefix = counting
        for prefix in ("t", "tract", "tractatus 01", "treatise 1"):
            body = (await client.get("/search/autocomplete", params={"q": prefix, "limit": 50})).json()
            matching = sorted((b for b in books if b["title_norm"].startswith(prefix)), key=suggestion_key)
            assert body["total"] == len(matching) > 0
            assert [i["book_id"] for i in body["items"]] == [b["book_id"] for b in matching[:50]]
            assert [i["book_id"] for i in body["items"]] == \
                [index.book(p)["book_id"] for p in index.autocomplete(prefix, 50).positions]
    assert len(pages) >= 300 // 40 and max(pages) <= 40


async def test_concurrent_fallback_requests_share_one_query(tables, books):
    async with AsyncTestClient(app := create_app(settings_for(tables, index_enabled=False))) as client:
        answers = await asyncio.gather(*(client.get("/search/autocomplete", params={"q": "the"})
                                         for _ in range(8)))
        again = await client.get("/search/shard/the")
        assert {r.status_code for r in answers} == {200} and len({r.text for r in answers}) == 1
        assert again.json()["items"] == answers[0].json()["items"]
        assert "search_autocomplete_fallback_queries_total" in (await client.get("/metrics")).text
        assert len(app.state.live._fallback) == 1  # noqa: SLF001 - one cached answer for the prefix


async def test_books_added_or_rerated_become_searchable_after_the_refresh_interval(client, tables, dynamodb):
    assert (await client.get("/search", params={"q": "monadology"})).json()["total"] == 0
    put_books(dynamodb, tables, [{"book_id": "OL99W", "title": "Monadology", "updated_at": utc_now()}])

    async def found() -> bool:
        return (await client.get("/search", params={"q": "monadology"})).json()["total"] == 1

    await wait_until(found)
    metrics = (await client.get("/metrics")).text
    assert f"search_index_documents {len(TITLES) + 1}.0" in metrics
    assert "search_index_terms " in metrics and "search_index_bytes " in metrics
    # A rating lands as the ratings service writes it: the new aggregate puts the book first for its prefix.
    dynamodb.update_item(
        TableName=tables["books"], Key={"book_id": {"S": "OL7W"}},
        UpdateExpression="SET rating_sum = :s, rating_count = :c, updated_at = :now, changed_at = :now, "
                         "change_shard = :shard",
        ExpressionAttributeValues={":s": {"N": "500"}, ":c": {"N": "100"}, ":now": {"S": utc_now()},
                                   ":shard": {"S": change_shard("OL7W")}})

    async def rerated() -> bool:
        items = (await client.get("/search/autocomplete", params={"q": "be"})).json()["items"]
        first = items[0]
        return first["book_id"] == "OL7W" and first["rating_count"] == 100 and first["avg_rating"] == 5.0

    await wait_until(rerated)


async def test_a_change_stamped_before_the_last_read_is_still_picked_up(client, tables, dynamodb):
    # A writer whose clock lags (or whose write lands late) stamps a time the previous read already covered.
    late = iso_stamp(time.time() - 10)
    put_books(dynamodb, tables, [{"book_id": "OL98W", "title": "Pensées", "changed_at": late}])

    async def found() -> bool:
        return (await client.get("/search", params={"q": "pensees"})).json()["total"] == 1

    await wait_until(found)


async def test_ready_waits_for_the_index_and_search_says_it_is_loading(tables):
    missing = settings_for(tables, books_table="no-such-table")
    async with AsyncTestClient(create_app(missing)) as client:
        not_ready = await client.get("/ready")
        assert not_ready.status_code == 503 and not not_ready.json()["checks"]["index"]["ok"]
        loading = await client.get("/search", params={"q": "ethics"})
        assert loading.status_code == 503 and loading.json()["code"] == "index_loading"
        assert loading.headers["content-type"].startswith("application/problem+json")
        assert (await client.get("/health")).status_code == 200


async def test_a_dynamodb_outage_after_loading_only_delays_freshness(client, tables, dynamodb):
    dynamodb.delete_table(TableName=tables["books"])
    await asyncio.sleep(0.8)  # a couple of failed refreshes
    # Every query is answered from memory: no table needed.
    assert (await client.get("/search", params={"q": "ethics"})).json()["total"] == 2
    assert (await client.post("/search/advanced", json={"min_year": 1905})).json()["total"] == 4
    suggestions = (await client.get("/search/autocomplete", params={"q": "the"})).json()
    assert suggestions["source"] == "index" and suggestions["total"] == 5
    probe = (await client.get("/ready")).json()
    assert probe["status"] == "degraded" and probe["checks"]["index"]["ok"]


@pytest.fixture(scope="module")
async def shared_client(dynamodb):
    """One seeded, ready service for the many read-only requests below."""
    async with ready_client_over(dynamodb, lambda tables: seed(dynamodb, tables)) as c:
        yield c


@pytest.mark.parametrize("method, path, body, field", [
    ("POST", "/search", {"query": "¿? —"}, "query"),
    ("POST", "/search", {"query": "  !! "}, "query"),
    ("POST", "/search", {"query": "art", "limit": 0}, "limit"),
    ("POST", "/search", {"query": "art", "limit": 101}, "limit"),
    ("POST", "/search", {"query": "art", "limit": "5"}, "limit"),
    ("POST", "/search", {"query": "art", "offset": 10_001}, "offset"),
    ("POST", "/search", {"query": "art", "offset": -1}, "offset"),
    ("POST", "/search", {"query": 5}, "query"),
    ("POST", "/search", {"query": "x" * 501}, "query"),
    ("POST", "/search", {}, "query"),
    ("POST", "/search", {"query": "art", "bogus": 1}, "bogus"),
    ("POST", "/search", [1, 2], "body"),
    ("GET", "/search?q=%E2%80%94%E3%80%82", None, "q"),
    ("GET", "/search", None, "q"),
    ("GET", "/search?q=", None, "q"),
    ("GET", "/search?q=art&limit=abc", None, "limit"),
    ("GET", "/search?q=art&offset=10001", None, "offset"),
    ("POST", "/search/advanced", {}, "body"),
    ("POST", "/search/advanced", {"sort": "year"}, "body"),
    ("POST", "/search/advanced", {"min_year": 2000, "max_year": 1990}, "min_year"),
    ("POST", "/search/advanced", {"min_rating": 6}, "min_rating"),
    ("POST", "/search/advanced", {"min_rating": -1}, "min_rating"),
    ("POST", "/search/advanced", {"min_rating": "4"}, "min_rating"),
    ("POST", "/search/advanced", {"min_year": 1990.5}, "min_year"),
    ("POST", "/search/advanced", {"title": "art", "sort": "price"}, "sort"),
    ("POST", "/search/advanced", {"title": "art", "order": "up"}, "order"),
    ("POST", "/search/advanced", {"title": "!!"}, "title"),
    ("POST", "/search/advanced", {"author": ""}, "author"),
    ("POST", "/search/advanced", {"language": "english!"}, "language"),
    ("POST", "/search/advanced", {"title": "art", "limit": 1000}, "limit"),
    ("GET", "/search/autocomplete", None, "q"),
    ("GET", "/search/autocomplete?q=%20", None, "q"),
    ("GET", "/search/autocomplete?q=t&limit=51", None, "limit"),
    ("GET", "/search/autocomplete?q=t&limit=0", None, "limit"),
    ("GET", f"/search/autocomplete?q={'t' * 201}", None, "q"),
    ("GET", "/search/shard/%21?limit=5", None, "prefix"),
    ("GET", f"/search/shard/{'t' * 201}", None, "prefix"),
])
async def test_bad_input_is_a_400_problem_naming_the_field(shared_client, method, path, body, field):
    r = await shared_client.request(method, path, json=body)
    assert r.status_code == 400, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["status"] == 400 and problem["code"] == "validation_failed" and problem["detail"]
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert "Traceback" not in r.text


async def test_searches_past_the_per_address_limit_are_429_counted_across_replicas(tables, books, redis_url):
    settings = settings_for(tables, index_refresh_seconds=0, redis_url=redis_url, rate_limit=4)
    async with AsyncTestClient(create_app(settings)) as one, AsyncTestClient(create_app(settings)) as two:
        await wait_until(lambda: ready(one))
        await wait_until(lambda: ready(two))
        # The load balancer appends the address it saw; what the client wrote before it is not trusted.
        client_a = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
        client_b = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
        calls = [one.get("/search", params={"q": "art"}, headers=client_a),
                 two.post("/search", json={"query": "art"}, headers=client_a),
                 one.get("/search/autocomplete", params={"q": "th"}, headers=client_a),
                 two.post("/search/advanced", json={"title": "art"}, headers=client_a),
                 one.get("/search", params={"q": "art"}, headers=client_a)]
        statuses = [(await call).status_code for call in calls]
        assert statuses == [200, 200, 200, 200, 429]
        refused = await two.get("/search", params={"q": "art"}, headers=client_a)
        assert refused.status_code == 429 and refused.json()["code"] == "too_many_requests"
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await one.get("/search", params={"q": "art"}, headers=client_b)).status_code == 200
        assert (await one.get("/health", headers=client_a)).status_code == 200  # probes are never limited
        assert 'rate_limited_total{limit="search"}' in (await one.get("/metrics")).text


# ---- every script, typos, ISBNs ------------------------------------------------------------------------
WORLD = [
    {"book_id": "GB1", "title": "War and Peace", "original_title": "Война и миръ",
     "isbn_13": ["9780140447934"], "ratings_distribution": {"5": 9}},
    {"book_id": "GB2", "title": "Мастер и Маргарита", "ratings_distribution": {"4": 5}},
    {"book_id": "GB3", "title": "Маска", "ratings_distribution": {"4": 1}},
    {"book_id": "GB4", "title": "Οδύσσεια", "authors": [{"author_id": None, "name": "Όμηρος"}]},
    {"book_id": "GB5", "title": "ノルウェイの森", "authors": [{"author_id": None, "name": "村上春樹"}],
     "ratings_distribution": {"5": 3}},
    {"book_id": "GB6", "title": "ノルウェー語入門"},
    {"book_id": "GB7", "title": "ألف ليلة وليلة", "isbn_13": ["9780804429573"]},
    {"book_id": "GB8", "title": "Thus Spoke Zarathustra"},
]


@pytest.fixture(scope="module")
async def world_client(dynamodb):
    prefix = f"w{uuid.uuid4().hex[:10]}"
    tables = definitions.create_tables(dynamodb, prefix)
    records = put_books(dynamodb, tables, WORLD)
    try:
        async with AsyncTestClient(create_app(settings_for(tables, index_refresh_seconds=0))) as c, \
                AsyncTestClient(create_app(settings_for(tables, index_enabled=False))) as fallback:
            await wait_until(lambda: ready(c))
            yield c, fallback, records
    finally:
        definitions.delete_tables(dynamodb, prefix)


@pytest.mark.parametrize("query, book_id", [
    ("война", "GB1"), ("ВОЙНА И МИРЪ", "GB1"), ("маргарита", "GB2"), ("Οδυσσεια", "GB4"), ("ομηρος", "GB4"),
    ("ウェイ", "GB5"), ("村上", "GB5"), ("森", "GB5"), ("ليلة", "GB7"), ("a", None),
])
async def test_every_script_is_searchable_over_http(world_client, query, book_id):
    client, _, _ = world_client
    for response in (await client.get("/search", params={"q": query}),
                     await client.post("/search", json={"query": query})):
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert (items[0]["book_id"] if items else None) == book_id


async def test_typos_are_forgiven_and_reported(world_client):
    client, _, _ = world_client
    body = (await client.get("/search", params={"q": "zarathustar spoke"})).json()
    assert [i["book_id"] for i in body["items"]] == ["GB8"] and body["matched"] == "all_words"
    assert body["corrections"] == [{"word": "zarathustar", "corrected_to": ["zarathustra"]}]
    exact = (await client.post("/search", json={"query": "zarathustra"})).json()
    assert exact["corrections"] == [] and [i["book_id"] for i in exact["items"]] == ["GB8"]
    typed = (await client.get("/search", params={"q": "thus spo"})).json()
    assert [i["book_id"] for i in typed["items"]] == ["GB8"] and typed["corrections"] == []


@pytest.mark.parametrize("query, book_id", [
    ("9780140447934", "GB1"), ("978-0-14-044793-4", "GB1"), ("0 14 044793 8", "GB1"), ("080442957X", "GB7"),
    ("0-8044-2957-x", "GB7"), ("9780140447935", None), ("0140447939", None),
])
async def test_isbns_find_their_books_and_bad_check_digits_are_just_text(world_client, query, book_id):
    client, _, _ = world_client
    response = await client.get("/search", params={"q": query})
    assert response.status_code == 200
    items = response.json()["items"]
    assert (items[0]["book_id"] if items else None) == book_id


@pytest.mark.parametrize("prefix", ["мас", "МАСТЕР", "ノル", "ノルウェイ", "οδυσ", "ألف", "в"])
async def test_autocomplete_in_every_script_from_the_index_and_the_gsi(world_client, prefix):
    client, fallback, records = world_client
    wanted = normalise_text(prefix)
    expected = [r["book_id"] for r in sorted((r for r in records if r["title_norm"].startswith(wanted)),
                                              key=suggestion_key)]
    from_index = (await client.get("/search/autocomplete", params={"q": prefix})).json()
    from_table = (await fallback.get("/search/autocomplete", params={"q": prefix})).json()
    assert from_index["source"] == "index" and from_table["source"] == "dynamodb"
    assert [i["book_id"] for i in from_index["items"]] == expected
    assert {**from_table, "source": "index"} == from_index
    shard = (await client.get(f"/search/shard/{prefix}")).json()
    assert shard["items"] == from_index["items"]
    if prefix != "в":
        assert expected


# ---- facets and highlights ---------------------------------------------------------------------------
SHELF = [
    {"book_id": "OL11W", "title": "Les Misérables", "authors": [{"author_id": None, "name": "Victor Hugo"}],
     "subjects": ["Fiction", "France"], "first_publish_year": 1862, "language": "fre"},
    {"book_id": "OL12W", "title": "Notre-Dame de Paris",
     "authors": [{"author_id": None, "name": "Victor Hugo"}], "subjects": ["fiction", "Paris"],
     "first_publish_year": 1831, "language": "fre"},
    {"book_id": "OL13W", "title": "Paris Stories", "authors": [{"author_id": None, "name": "Mavis Gallant"}],
     "subjects": ["Fiction", "Short stories"], "first_publish_year": 2002, "language": "eng"},
    {"book_id": "OL14W", "title": "A Moveable Feast: Paris",
     "authors": [{"author_id": None, "name": "Ernest Hemingway"}], "subjects": ["Memoir", "Paris"],
     "first_publish_year": 1964, "language": "eng"},
    {"book_id": "OL15W", "title": "Paris to the Moon",
     "authors": [{"author_id": None, "name": "Adam Gopnik"}], "subjects": ["Essays"], "language": "eng"},
]


@pytest.fixture(scope="module")
async def shelf_client(dynamodb):
    async with ready_client_over(dynamodb, lambda tables: put_books(dynamodb, tables, SHELF)) as c:
        yield c


def _facet(body, name):
    return {v["value"]: v["count"] for v in body["facets"][name]}


async def test_facets_count_every_match_not_only_the_page(shelf_client):
    body = (await shelf_client.post("/search", json={"query": "paris", "limit": 1, "facets": True})).json()
    assert body["total"] == 4 and body["count"] == 1
    assert _facet(body, "authors") == {"Victor Hugo": 1, "Mavis Gallant": 1, "Ernest Hemingway": 1,
                                       "Adam Gopnik": 1}
    # "Fiction" and "fiction" are one subject, shown in the spelling the index met first
    assert {k.lower(): v for k, v in _facet(body, "subjects").items()} == \
        {"paris": 2, "fiction": 2, "short stories": 1, "memoir": 1, "essays": 1}
    assert _facet(body, "decade") == {1830: 1, 2000: 1, 1960: 1}
    assert _facet(body, "language") == {"eng": 3, "fre": 1}
    assert body["facets"]["exhaustive"] is True  # exact counts (estimates only past 20,000 matches)
    get = (await shelf_client.get("/search", params={"q": "paris", "limit": 1, "facets": "true"})).json()
    assert get["facets"] == body["facets"]
    assert (await shelf_client.post("/search", json={"query": "paris"})).json()["facets"] is None


async def test_words_past_the_sixteenth_are_ignored_and_listed(shelf_client):
    unknown = [f"zz{i}" for i in range(15)]
    query = " ".join(["Paris", *unknown, "Les", "Misérables", "zz0"])
    body = (await shelf_client.get("/search", params={"q": query})).json()
    assert body["ignored_words"] == ["les", "miserables"]  # normalised; a repeated word counts once
    assert body["matched"] == "any_word" and body["total"] == 4  # "paris" alone matched
    plain = (await shelf_client.get("/search", params={"q": "paris"})).json()
    assert plain["ignored_words"] == []
    longest = (await shelf_client.get("/search", params={"q": "abcdefghij" * 50})).json()
    assert longest["total"] == 0 and longest["ignored_words"] == [] and longest["corrections"] == []


async def test_facet_filters_narrow_hits_and_totals(shelf_client):
    body = (await shelf_client.post("/search", json={
        "query": "paris", "facets": True,
        "facet_filters": {"languages": ["ENG"], "subjects": ["paris", "Essays"]}})).json()
    assert sorted(i["book_id"] for i in body["items"]) == ["OL14W", "OL15W"] and body["total"] == 2
    assert _facet(body, "language") == {"eng": 2}
    get = (await shelf_client.get("/search", params=[("q", "paris"), ("language", "eng"),
                                                      ("subject", "paris"), ("subject", "essays")])).json()
    assert [i["book_id"] for i in get["items"]] == [i["book_id"] for i in body["items"]]
    decade = (await shelf_client.get("/search", params={"q": "paris", "decade": 1960})).json()
    assert [i["book_id"] for i in decade["items"]] == ["OL14W"]
    advanced = (await shelf_client.post("/search/advanced", json={
        "facet_filters": {"authors": ["victor hugo"]}, "sort": "year", "facets": True})).json()
    assert [i["book_id"] for i in advanced["items"]] == ["OL11W", "OL12W"] and advanced["total"] == 2
    assert _facet(advanced, "decade") == {1860: 1, 1830: 1}


async def test_highlights_point_at_the_matched_words(shelf_client, world_client):
    body = (await shelf_client.post("/search", json={"query": "miserables hugo", "highlight": True})).json()
    item = body["items"][0]
    (start, end), = item["highlights"]["title"]
    assert item["title"][start:end] == "Misérables"
    (start, end), = item["highlights"]["authors"][0]
    assert item["authors"][0][start:end] == "Hugo"
    plain = (await shelf_client.post("/search", json={"query": "miserables"})).json()
    assert "highlights" not in plain["items"][0]
    client, _, _ = world_client
    japanese = (await client.get("/search", params={"q": "ウェイの", "highlight": "true"})).json()["items"][0]
    assert [japanese["title"][s:e] for s, e in japanese["highlights"]["title"]] == ["ウェイの"]
    typo = (await client.get("/search", params={"q": "zarathustar", "highlight": "true"})).json()["items"][0]
    assert [typo["title"][s:e] for s, e in typo["highlights"]["title"]] == ["Zarathustra"]


@pytest.mark.parametrize("body", [
    {"query": "paris", "facets": "yes"},
    {"query": "paris", "facet_filters": {"languages": ["english!"]}},
    {"query": "paris", "facet_filters": {"decades": [99999]}},
    {"query": "paris", "facet_filters": {"authors": ["x"] * 21}},
    {"query": "paris", "facet_filters": {"colour": ["red"]}},
    {"query": "paris", "facet_filters": {"authors": [""]}},
])
async def test_bad_facet_requests_are_400_problems(shelf_client, body):
    r = await shelf_client.post("/search", json=body)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("params", [{"q": "paris", "decade": "nineties"},
                                    {"q": "paris", "language": "english!"},
                                    {"q": "paris", "facets": "maybe"}])
async def test_bad_facet_parameters_are_400_problems(shelf_client, params):
    r = await shelf_client.get("/search", params=params)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
