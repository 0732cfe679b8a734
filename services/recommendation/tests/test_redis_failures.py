"""The recommender while its Redis fails, each state on a redis-server of the test's own
(`bookrec_local.redis_faults`): over HTTP, reads answer 200 (the cache bypassed, counted), the
per-address limit opens (counted), invalidations answer `unavailable` (counted), `/ready` says
degraded, and everything comes back once Redis does, without a restart; for a moment after a failure
reads skip Redis (a stalled one would cost each a timeout). The builder gets no lease,
builds nothing, says so and exits 0."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from litestar.testing import AsyncTestClient

from bookrec_catalog.catalog import utc_now, with_derived_attributes
from bookrec_catalog.dynamo import to_item
from bookrec_common.clients import redis_client
from bookrec_common.ratelimit import RATE_LIMIT_UNCHECKED
from bookrec_local.prometheus import current
from bookrec_local.redis_faults import STATES
from bookrec_recommendation.app import create_app
from bookrec_recommendation.settings import RecommendationSettings
from bookrec_recommendation.store import (
    CACHE_ERRORS,
    CACHE_INVALIDATIONS,
    CachedRecommendations,
    RecommendationCache,
)

PASSWORD = "the-right-token"  # the wrong_password state rotates it under the service
TOKEN = "internal-secret"
LIST = CachedRecommendations("collaborative", "v1", [("OL1W", 1.0, "because")])


def seed(dynamodb, tables) -> None:
    for i in range(1, 9):
        dynamodb.put_item(TableName=tables["books"], Item=to_item(with_derived_attributes(
            {"book_id": f"OL{i}W", "title": f"Title {i}", "subjects": ["odd" if i % 2 else "even"]})))
    now = utc_now()
    for reader in range(10):
        for i in range(1 + reader % 2, 9, 2):
            dynamodb.put_item(TableName=tables["ratings"], Item=to_item(
                {"book_id": f"OL{i}W", "user_id": f"reader{reader}", "rating": 5, "created_at": now,
                 "updated_at": now}))


async def until(condition, what: str, seconds: float = 30.0) -> None:
    """Waits for an async condition, checked every 0.1 s, at most `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not {what} after {seconds:.0f}s")
        await asyncio.sleep(0.1)


def counted() -> tuple[float, float, float]:
    return (current(RATE_LIMIT_UNCHECKED.labels("recommendations")), current(CACHE_ERRORS),
            current(CACHE_INVALIDATIONS.labels("unavailable")))


@pytest.mark.parametrize("state", STATES)
async def test_every_redis_failure_degrades_the_recommender_and_it_comes_back(
        state, failing_redis, tables, dynamodb, issuer):
    seed(dynamodb, tables)
    server = failing_redis(state, password=PASSWORD)
    settings = RecommendationSettings(
        books_table=tables["books"], ratings_table=tables["ratings"], redis_url=server.url,
        redis_auth_token=PASSWORD, internal_token=TOKEN, access_log=False, model_refresh_seconds=0,
        neighbours=3, regularisation=1.0, rate_limit=4, **issuer.settings())
    internal = {"X-Internal-Token": TOKEN}
    async with AsyncTestClient(create_app(settings)) as client:
        async def ready() -> bool:
            return (await client.get("/ready")).status_code == 200

        await until(ready, "ready")
        assert (await client.get("/recommendations/reader1")).json()["source"] == "computed"
        assert (await client.get("/recommendations/reader1")).json()["source"] == "cache"  # Redis serves

        server.fail()
        unchecked, errors, unavailable = counted()
        answers = [await client.get(f"/recommendations/reader{i}") for i in range(2, 7)]  # past the limit
        assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
        assert {a.json()["source"] for a in answers} == {"computed"}
        invalidated = await client.post("/recommendations/invalidate/reader1", headers=internal)
        assert invalidated.status_code == 200 and invalidated.json()["cache"] == "unavailable"
        degraded = (await client.get("/ready")).json()
        assert degraded["status"] == "degraded" and degraded["checks"]["redis"]["ok"] is False
        now_unchecked, now_errors, now_unavailable = counted()
        assert now_unchecked - unchecked == 5  # every request let through is counted
        assert now_errors - errors >= 5  # at least one bypassed call per list computed
        assert now_unavailable - unavailable == 1

        server.heal()

        async def invalidations_reach_redis() -> bool:
            answer = await client.post("/recommendations/invalidate/reader9", headers=internal)
            return answer.json()["cache"] != "unavailable"

        await until(invalidations_reach_redis, f"recovered from {state}")
        assert (await client.get("/recommendations/reader8")).json()["source"] == "computed"
        assert (await client.get("/recommendations/reader8")).json()["source"] == "cache"
        assert (await client.get("/ready")).json()["status"] == "ready"


@pytest.mark.parametrize("state", STATES)
def test_the_builder_gets_no_lease_builds_nothing_says_so_and_exits_0(
        state, failing_redis, tables, artifact_bucket, moto_endpoint):
    server = failing_redis(state, password=PASSWORD)
    server.fail()
    run = subprocess.run([sys.executable, "-m", "bookrec_recommendation.builder"], capture_output=True,
                         text=True, timeout=120,
                         env={**os.environ, "REDIS_URL": server.url, "REDIS_AUTH_TOKEN": PASSWORD})
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"outcome": "redis_unavailable"' in run.stdout and "Traceback" not in run.stdout + run.stderr


async def test_after_a_failure_reads_skip_redis_and_an_invalidation_that_reaches_it_ends_that(failing_redis):
    server = failing_redis("read_only")
    async with redis_client(server.url) as client:
        cache = RecommendationCache(client, 600, clock=lambda: 1000.0)  # frozen: no skip ends by itself
        calls = 0
        real_get = client.get

        async def counted_get(*args, **kwargs):
            nonlocal calls
            calls += 1
            return await real_get(*args, **kwargs)

        client.get = counted_get  # type: ignore[method-assign]  # a test double in its place
        server.fail()
        assert await cache.put("reader", LIST, await cache.generation("reader")) is False  # the write fails
        errors = current(CACHE_ERRORS)
        assert await cache.get("reader") == LIST and calls == 0  # from this replica's fallback, Redis skipped
        assert await cache.state("reader") == (None, None)  # so a list computed now is not stored in Redis
        assert current(CACHE_ERRORS) - errors == 2  # each bypass counted
        assert (await cache.delete("reader")).outcome == "unavailable"  # invalidations always try
        server.heal()
        assert (await cache.delete("reader")).outcome == "not_cached"  # reached Redis: skipping over
        assert await cache.get("reader") is None and calls == 1
