"""The recommendation service over HTTP against a real moto server and a real Redis."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from litestar.testing import AsyncTestClient

from bookrec_catalog.catalog import utc_now, with_derived_attributes
from bookrec_catalog.dynamo import to_item
from bookrec_local.prometheus import current
from bookrec_recommendation.app import create_app
from bookrec_recommendation.engine import SCOPED_LISTS, SHARED_POPULARITY
from bookrec_recommendation.settings import RecommendationSettings
from bookrec_recommendation.store import CACHE_MISSES

TOKEN = "internal-secret"
BOOKS = {f"OL{i}W": ("philosophy" if i <= 6 else "fantasy") for i in range(1, 13)}


def seed(dynamodb, tables):
    for book_id, subject in BOOKS.items():
        dynamodb.put_item(TableName=tables["books"], Item=to_item(with_derived_attributes(
            {"book_id": book_id, "title": f"Title {book_id}",
             "authors": [{"author_id": None, "name": subject + " author"}],
             "subjects": [subject]})))
    now = utc_now()
    for u in range(20):
        shelf = [b for b, s in BOOKS.items() if s == ("philosophy" if u % 2 else "fantasy")]
        for b in shelf[: 4 + u % 3]:
            dynamodb.put_item(TableName=tables["ratings"], Item=to_item(
                {"book_id": b, "user_id": f"reader{u}", "rating": 5, "created_at": now, "updated_at": now}))


def settings_for(tables, redis_url, issuer, **overrides):
    # No rate limit unless a test sets one: every test's requests come from one address, in one window.
    settings = {"books_table": tables["books"], "ratings_table": tables["ratings"], "redis_url": redis_url,
                "shelves_table": tables["shelves"],
                "internal_token": TOKEN, "access_log": False, "model_refresh_seconds": 0, "neighbours": 5,
                "regularisation": 1.0, "rate_limit": 0, **issuer.settings(), **overrides}
    return RecommendationSettings(**settings)


async def wait_ready(client):
    for _ in range(100):
        if (await client.get("/ready")).status_code == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("model never became ready")


@pytest.fixture
async def client(tables, dynamodb, redis_url, issuer):
    seed(dynamodb, tables)
    async with AsyncTestClient(create_app(settings_for(tables, redis_url, issuer))) as c:
        await wait_ready(c)
        yield c


async def test_cache_aside_computed_then_cache_then_invalidated(client):
    first = (await client.get("/recommendations/reader1?limit=3")).json()
    assert first["source"] == "computed" and first["strategy"] == "collaborative"
    assert len(first["recommendations"]) == 3
    rated = {f"OL{i}W" for i in range(1, 6)}  # reader1 rated the first 5 philosophy books
    assert not rated & {r["book_id"] for r in first["recommendations"]}
    assert first["recommendations"][0]["title"].startswith("Title ") and first["recommendations"][0]["reason"]
    second = (await client.get("/recommendations/reader1?limit=3")).json()
    assert second["source"] == "cache" and second["recommendations"] == first["recommendations"]
    r = await client.post("/recommendations/invalidate/reader1", headers={"X-Internal-Token": TOKEN})
    assert r.status_code == 200 and r.json() == {"user_id": "reader1", "invalidated": True, "cache": "deleted"}
    again = await client.post("/recommendations/invalidate/reader1", headers={"X-Internal-Token": TOKEN})
    # Idempotent, and truthful: the second call found nothing to delete.
    assert again.status_code == 200
    assert again.json() == {"user_id": "reader1", "invalidated": False, "cache": "not_cached"}
    assert (await client.get("/recommendations/reader1?limit=3")).json()["source"] == "computed"
    metrics = (await client.get("/metrics")).text
    assert 'recommendation_cache_invalidations_total{outcome="deleted"}' in metrics
    assert 'recommendation_cache_invalidations_total{outcome="not_cached"}' in metrics


async def test_a_larger_limit_after_a_smaller_one_is_not_cut_short(client):
    small = (await client.get("/recommendations/reader0?limit=2")).json()
    large = (await client.get("/recommendations/reader0?limit=10")).json()
    assert large["source"] == "cache" and len(small["recommendations"]) == 2
    assert len(large["recommendations"]) > 2
    assert large["recommendations"][:2] == small["recommendations"]


async def test_a_new_rating_counts_at_once_and_unknown_users_get_popularity(client, dynamodb, tables):
    cold = (await client.get("/recommendations/newcomer")).json()
    assert cold["strategy"] == "popularity" and cold["recommendations"]
    dynamodb.put_item(TableName=tables["ratings"], Item=to_item(
        {"book_id": "OL8W", "user_id": "newcomer", "rating": 5, "created_at": utc_now(), "updated_at": utc_now()}))
    await client.post("/recommendations/invalidate/newcomer", headers={"X-Internal-Token": TOKEN})
    warm = (await client.get("/recommendations/newcomer")).json()
    assert warm["strategy"] == "content+popularity"
    assert "OL8W" not in {r["book_id"] for r in warm["recommendations"]}
    assert all(BOOKS[r["book_id"]] == "fantasy" for r in warm["recommendations"][:3])


async def test_concurrent_misses_for_one_user_compute_once(client):
    before = current(CACHE_MISSES)
    answers = await asyncio.gather(*(client.get("/recommendations/reader3") for _ in range(10)))
    assert all(a.status_code == 200 for a in answers)
    assert current(CACHE_MISSES) - before == 1


async def test_invalidate_needs_the_internal_token(client):
    assert (await client.post("/recommendations/invalidate/reader1")).status_code == 401
    r = await client.post("/recommendations/invalidate/reader1", headers={"X-Internal-Token": "wrong"})
    assert r.status_code == 401 and r.json()["code"] == "internal_only"
    unread = await client.post("/recommendations/invalidate/reader1", content=b"{not json")
    assert unread.status_code == 401  # refused before its body is read


@pytest.mark.parametrize("path", ["/recommendations/bad%20id", "/recommendations/x?limit=0",
                                  "/recommendations/x?limit=101", "/recommendations/x?limit=ten"])
async def test_bad_input_is_400(client, path):
    r = await client.get(path)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")


async def test_refresh_needs_an_admin_token(client, issuer):
    assert (await client.post("/recommendations/refresh")).status_code == 401
    r = await client.post("/recommendations/refresh", headers=issuer.headers("reader1"))
    assert r.status_code == 403 and r.json()["code"] == "not_admin"
    assert (await client.get("/metrics")).status_code == 200


async def test_refresh_rebuilds_and_warms(client, issuer):
    before = (await client.get("/recommendations/reader5")).json()["model_version"]
    r = await client.post("/recommendations/refresh", headers=issuer.headers("ops", admin=True))
    assert r.status_code == 202 and r.json() == {"current_model_version": before, "refresh": "started"}
    for _ in range(100):  # the rebuild runs in the background
        after = (await client.get("/recommendations/reader5")).json()
        if after["model_version"] != before:
            break
        await client.post("/recommendations/invalidate/reader5", headers={"X-Internal-Token": TOKEN})
        await asyncio.sleep(0.1)
    assert after["model_version"] != before
    await asyncio.sleep(0.5)  # pre-warming follows the swap
    warmed = (await client.get("/recommendations/reader7")).json()
    assert warmed["source"] == "cache" and warmed["model_version"] == after["model_version"]


async def test_a_refresh_requested_while_one_runs_joins_it_and_says_so(client, issuer):
    engine = client.app.state.engine
    gate = threading.Event()  # the app runs on the test client's own loop: a thread-safe gate
    scan = engine.source.all_ratings

    async def held_scan():
        await asyncio.to_thread(gate.wait, 10)
        return await scan()

    engine.source.all_ratings = held_scan
    admin = issuer.headers("ops", admin=True)
    try:
        first = await client.post("/recommendations/refresh", headers=admin)
        second = await client.post("/recommendations/refresh", headers=admin)
    finally:
        gate.set()
    assert (first.status_code, first.json()["refresh"]) == (202, "started")
    assert (second.status_code, second.json()["refresh"]) == (202, "already_running")
    for _ in range(100):  # once that refresh is over, the next request starts a new one
        third = (await client.post("/recommendations/refresh", headers=admin)).json()
        if third["refresh"] == "started":
            break
        await asyncio.sleep(0.1)
    assert third["refresh"] == "started" and third["current_model_version"] != first.json()["current_model_version"]


async def test_without_redis_invalidate_says_the_cache_is_disabled(tables, dynamodb, issuer):
    seed(dynamodb, tables)
    async with AsyncTestClient(create_app(settings_for(tables, "", issuer))) as c:
        await wait_ready(c)
        assert (await c.get("/recommendations/reader1")).json()["source"] == "computed"
        r = await c.post("/recommendations/invalidate/reader1", headers={"X-Internal-Token": TOKEN})
        assert r.status_code == 200
        assert r.json() == {"user_id": "reader1", "invalidated": False, "cache": "disabled"}


async def test_redis_down_still_answers_and_ready_says_degraded(tables, dynamodb, issuer):
    seed(dynamodb, tables)
    async with AsyncTestClient(create_app(settings_for(tables, "redis://127.0.0.1:9/0", issuer))) as c:
        await wait_ready(c)
        ready = (await c.get("/ready")).json()
        assert ready["status"] == "degraded" and ready["checks"]["redis"]["ok"] is False
        assert "another replica may answer one up to 30s stale" in ready["checks"]["redis"]["error"]
        first = await c.get("/recommendations/reader1")
        assert first.status_code == 200 and first.json()["source"] == "computed"
        # Repeats come from the in-process fallback, not from DynamoDB, while Redis is down.
        again = await c.get("/recommendations/reader1")
        assert again.status_code == 200 and again.json()["source"] == "cache"
        # Redis unreachable: a 200 that says so, having dropped this replica's fallback copy.
        r = await c.post("/recommendations/invalidate/reader1", headers={"X-Internal-Token": TOKEN})
        assert r.status_code == 200
        assert r.json() == {"user_id": "reader1", "invalidated": True, "cache": "unavailable"}
        assert (await c.get("/recommendations/reader1")).json()["source"] == "computed"
        never_cached = await c.post("/recommendations/invalidate/reader2", headers={"X-Internal-Token": TOKEN})
        assert never_cached.status_code == 200
        assert never_cached.json() == {"user_id": "reader2", "invalidated": False, "cache": "unavailable"}
        metrics = (await c.get("/metrics")).text
        assert "recommendation_cache_errors_total" in metrics
        assert 'recommendation_cache_invalidations_total{outcome="unavailable"}' in metrics


async def test_an_invalidation_records_the_accepted_change_it_is_for(client, redis_url):
    import redis.asyncio as aioredis

    change = {"book_id": "OL8W", "changed_at": "2026-12-02T09:00:00.000000Z"}
    r = await client.post("/recommendations/invalidate/reader9", json=change,
                          headers={"X-Internal-Token": TOKEN})
    assert r.status_code == 200 and r.json()["cache"] in ("deleted", "not_cached")
    redis = aioredis.from_url(redis_url)
    try:
        assert await redis.get("reco-latest:reader9") == b"2026-12-02T09:00:00.000000Z OL8W 0"
    finally:
        await redis.aclose()


@pytest.mark.parametrize("body", [
    b'{"book_id": "OL8W", "changed_at": "yesterday"}',
    b'{"book_id": "not a book", "changed_at": "2026-12-02T09:00:00.000000Z"}',
    b'{"book_id": "OL8W", "changed_at": "2026-12-02T09:00:00.000000Z", "removed": "yes"}',
    b'{"book_id": "OL8W", "changed_at": "2026-12-02T09:00:00.000000Z", "extra": 1}',
    b'{"book_id": "OL8W"}',
    b'[1, 2]',
    b'{not json',
], ids=["stamp", "book", "removed", "unknown-field", "missing-stamp", "not-an-object", "not-json"])
async def test_a_malformed_invalidation_body_is_400_and_changes_nothing(client, redis_url, body):
    import redis.asyncio as aioredis

    redis = aioredis.from_url(redis_url)
    try:
        await client.get("/recommendations/reader11")  # cached
        generation = await redis.get("reco-gen:reader11")
        r = await client.post("/recommendations/invalidate/reader11", content=body,
                              headers={"X-Internal-Token": TOKEN, "Content-Type": "application/json"})
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", r.text
        assert r.json()["code"] in ("validation_failed", "bad_request")  # the latter: not JSON at all
        assert await redis.get("reco-gen:reader11") == generation
        assert (await client.get("/recommendations/reader11")).json()["source"] == "cache"
    finally:
        await redis.aclose()


async def test_readers_without_ratings_share_one_list_and_leave_nothing_per_id_in_redis(client, redis_url):
    import redis.asyncio as aioredis

    prefix = f"stranger-{uuid.uuid4().hex[:8]}"
    shared = current(SHARED_POPULARITY)
    answers = [(await client.get(f"/recommendations/{prefix}-{i}?limit=5")).json() for i in range(40)]
    assert {a["strategy"] for a in answers} == {"popularity"}
    assert all(a["recommendations"] == answers[0]["recommendations"] for a in answers)
    assert current(SHARED_POPULARITY) - shared == 40
    redis = aioredis.from_url(redis_url)
    try:
        assert [key async for key in redis.scan_iter(match=f"reco*{prefix}*")] == []  # ~6 KB each before
        await client.get("/recommendations/reader4")  # a reader with ratings still gets an entry of their own
        assert await redis.exists("reco:reader4") == 1
    finally:
        await redis.aclose()


@pytest.fixture
async def limited(tables, dynamodb, redis_url, issuer):
    seed(dynamodb, tables)
    async with AsyncTestClient(create_app(settings_for(tables, redis_url, issuer, rate_limit=3))) as c:
        await wait_ready(c)
        yield c


async def test_recommendation_reads_are_limited_per_address(limited):
    address = {"X-Forwarded-For": f"198.51.100.7, client-{uuid.uuid4().hex[:8]}"}  # the ALB's entry is last
    for i in range(3):
        assert (await limited.get(f"/recommendations/anyone-{i}", headers=address)).status_code == 200
    refused = await limited.get("/recommendations/anyone-else", headers=address)
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "too_many_requests" and 1 <= int(refused.headers["retry-after"]) <= 60
    other = {"X-Forwarded-For": f"client-{uuid.uuid4().hex[:8]}"}
    assert (await limited.get("/recommendations/anyone-0", headers=other)).status_code == 200
    invalidated = await limited.post("/recommendations/invalidate/anyone-0",
                                     headers={**address, "X-Internal-Token": TOKEN})
    assert invalidated.status_code == 200  # internal calls (one ratings address) are not limited


def shelve(dynamodb, tables, user_id: str, book_id: str, shelf: str = "want_to_read") -> str:
    now = utc_now()
    dynamodb.put_item(TableName=tables["shelves"], Item=to_item(
        {"book_id": book_id, "user_id": user_id, "shelf": shelf, "shelved_at": now,
         "user_shelf": f"{user_id}#{shelf}"}))
    return now


def shown(answer) -> list[str]:
    return [r["book_id"] for r in answer["recommendations"]]


async def test_a_reader_with_only_shelves_gets_a_personal_list_without_their_shelved_books(
        client, dynamodb, tables):
    for book_id in ("OL7W", "OL8W", "OL9W"):
        shelve(dynamodb, tables, "shelver", book_id)
    answer = (await client.get("/recommendations/shelver?limit=5")).json()
    assert answer["strategy"] == "collaborative" and len(answer["recommendations"]) == 5
    assert not {"OL7W", "OL8W", "OL9W"} & set(shown(answer))
    assert set(shown(answer)[:3]) == {"OL10W", "OL11W", "OL12W"}  # the fantasy books they have not shelved


async def test_a_book_shelved_is_gone_from_the_list_once_the_shelving_is_invalidated(client, dynamodb, tables):
    before = (await client.get("/recommendations/reader1")).json()
    assert "OL6W" in shown(before)
    shelved_at = shelve(dynamodb, tables, "reader1", "OL6W", "currently_reading")
    r = await client.post("/recommendations/invalidate/reader1", headers={"X-Internal-Token": TOKEN},
                          json={"book_id": "OL6W", "changed_at": shelved_at, "kind": "shelf"})
    assert r.status_code == 200 and r.json()["invalidated"] is True
    after = (await client.get("/recommendations/reader1")).json()
    assert after["source"] == "computed" and "OL6W" not in shown(after)
    assert (await client.get("/recommendations/reader1")).json()["source"] == "cache"


async def test_exclude_removes_books_repeated_or_comma_separated(client):
    full = shown((await client.get("/recommendations/reader1?limit=20")).json())
    gone = full[:3]
    answer = (await client.get(f"/recommendations/reader1?limit=20&exclude={gone[0]},{gone[1]}"
                               f"&exclude={gone[2]}")).json()
    assert answer["source"] == "cache" and shown(answer) == full[3:]


async def test_subject_scopes_the_list_whatever_the_case(client):
    answer = (await client.get("/recommendations/reader0?subject=PHILOSOPHY&limit=20")).json()
    assert shown(answer) and all(BOOKS[b] == "philosophy" for b in shown(answer))
    unknown = (await client.get("/recommendations/reader0?subject=cookery")).json()
    assert unknown["recommendations"] == []


async def test_a_subject_that_leaves_too_few_is_filled_from_the_subjects_books(tables, dynamodb, redis_url, issuer):
    seed(dynamodb, tables)
    reader = f"scoped-{uuid.uuid4().hex[:8]}"  # Redis is shared by the session: a reader of this test's own
    for book_id in ("OL1W", "OL2W", "OL3W", "OL4W", "OL5W"):
        dynamodb.put_item(TableName=tables["ratings"], Item=to_item(
            {"book_id": book_id, "user_id": reader, "rating": 5, "created_at": utc_now(), "updated_at": utc_now()}))
    async with AsyncTestClient(create_app(settings_for(tables, redis_url, issuer, cached_length=3))) as c:
        await wait_ready(c)
        cached = (await c.get(f"/recommendations/{reader}?limit=3")).json()
        assert len(cached["recommendations"]) == 3
        scoped = current(SCOPED_LISTS)
        answer = (await c.get(f"/recommendations/{reader}?limit=5&subject=fantasy&exclude=OL7W")).json()
        assert current(SCOPED_LISTS) - scoped == 1 and answer["source"] == "computed"
        assert len(shown(answer)) == 5 and all(BOOKS[b] == "fantasy" for b in shown(answer))
        assert "OL7W" not in shown(answer)
        again = (await c.get(f"/recommendations/{reader}?limit=3")).json()
        assert again["source"] == "cache" and again["recommendations"] == cached["recommendations"]


@pytest.mark.parametrize("query", ["exclude=bad%20id", "exclude=OL1W,,OL2W", "exclude=" + ",".join(
    f"OL{i}W" for i in range(101)), "subject=%20", "subject=" + "x" * 201],
    ids=["malformed", "empty-entry", "too-many", "blank-subject", "long-subject"])
async def test_bad_exclusions_and_subjects_are_400(client, query):
    r = await client.get(f"/recommendations/reader1?{query}")
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", r.text
    assert r.json()["errors"][0]["field"].split("[")[0] == query.split("=")[0]  # exclude[1]: the id at fault


def series_attribute(position: int) -> dict:
    return to_item({"s": {"name": "Saga", "position": position}})["s"]


@pytest.fixture
async def series_client(tables, dynamodb, redis_url, issuer):
    seed(dynamodb, tables)
    for book_id, position in (("OL9W", 1), ("OL11W", 2)):
        dynamodb.update_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                             UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "series"},
                             ExpressionAttributeValues={":s": series_attribute(position)})
    async with AsyncTestClient(create_app(settings_for(tables, redis_url, issuer))) as c:
        await wait_ready(c)
        yield c


async def test_similar_books_name_the_next_of_the_series_then_what_readers_also_rated(series_client):
    r = await series_client.get("/books/OL9W/similar?limit=5")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["book_id"] == "OL9W" and len(answer["items"]) == 5
    first = answer["items"][0]
    assert (first["book_id"], first["reason"], first["title"]) == ("OL11W", "next in Saga, #2", "Title OL11W")
    ids = [item["book_id"] for item in answer["items"]]
    assert "OL9W" not in ids and len(set(ids)) == 5
    assert all(BOOKS[b] == "fantasy" for b in ids)  # its readers read fantasy
    assert answer["items"][1]["reason"].endswith("readers rated both")
    assert (await series_client.get("/books/OL9W/similar?limit=5")).json() == answer  # kept in memory


async def test_a_readers_similar_list_is_the_same_books_ranked_by_their_own_list(client):
    everyone = (await client.get("/books/OL9W/similar?limit=50")).json()
    assert (everyone["user_id"], everyone["source"]) == (None, None)
    await client.post("/recommendations/invalidate/reader17", headers={"X-Internal-Token": TOKEN})
    first = (await client.get("/books/OL9W/similar?limit=50&user_id=reader17")).json()
    assert (first["user_id"], first["source"]) == ("reader17", "computed")  # the reader's list, computed once
    own = [r["book_id"] for r in (await client.get("/recommendations/reader17?limit=100")).json()["recommendations"]]
    answer = (await client.get("/books/OL9W/similar?limit=50&user_id=reader17")).json()
    assert answer["source"] == "cache" and answer["items"] == first["items"]
    shared = [item["book_id"] for item in everyone["items"]]
    ranked = [item["book_id"] for item in answer["items"]]
    mine = [b for b in own if b in shared]
    assert mine and sorted(ranked) == sorted(shared)  # the same books ...
    assert ranked == mine + [b for b in shared if b not in mine]  # ... the reader's own picks first, in order
    assert ranked != shared  # reader17 reads philosophy: their picks move up the list of a fantasy book


@pytest.mark.parametrize(("path", "status"), [("/books/OL9W/similar?user_id=bad%20id", 400),
                                              ("/books/OL99W/similar?user_id=reader17", 404)])
async def test_a_readers_similar_list_checks_the_reader_and_the_book(client, path, status):
    r = await client.get(path)
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json", r.text


@pytest.mark.parametrize(("path", "status"), [("/books/OL99W/similar", 404), ("/books/bad%20id/similar", 400),
                                              ("/books/OL1W/similar?limit=0", 400),
                                              ("/books/OL1W/similar?limit=51", 400)])
async def test_similar_books_of_an_unknown_book_are_404_and_bad_input_400(client, path, status):
    r = await client.get(path)
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json", r.text
    if status == 404:
        assert r.json()["code"] == "book_not_found"


async def test_an_invalidation_records_a_shelving_and_refuses_an_unknown_kind(client, redis_url):
    import redis.asyncio as aioredis

    change = {"book_id": "OL8W", "changed_at": "2026-12-02T09:00:00.000000Z", "removed": True, "kind": "shelf"}
    r = await client.post("/recommendations/invalidate/reader9", json=change, headers={"X-Internal-Token": TOKEN})
    assert r.status_code == 200
    bad = await client.post("/recommendations/invalidate/reader9", json={**change, "kind": "review"},
                            headers={"X-Internal-Token": TOKEN})
    assert bad.status_code == 400 and bad.json()["code"] == "validation_failed"
    redis = aioredis.from_url(redis_url)
    try:
        assert await redis.get("reco-latest:reader9") == b"2026-12-02T09:00:00.000000Z OL8W 1 shelf"
    finally:
        await redis.aclose()
