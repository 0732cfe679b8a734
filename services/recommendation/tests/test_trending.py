"""Trending: the pure ranking and z-score, and GET /trending over HTTP against moto server and a real Redis
(events recorded through the ActivityLog that ratings uses)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient

from bookrec_common.activity import ActivityLog
from bookrec_common.clients import redis_client
from bookrec_local.imports import io_reached, reached
from bookrec_local.prometheus import current
from bookrec_recommendation.app import create_app
from bookrec_recommendation.catalogue import CatalogueEntry
from bookrec_recommendation.trending import TrendingBook, ranked_by_events, ranked_by_z, shown, z_score
from bookrec_recommendation.trending_store import REFRESH_FAILURES, TrendingBoard

from .test_api import BOOKS, seed, settings_for, wait_ready

HOUR = 3600
DAY = 24 * HOUR


# --- the domain, pure ---

def test_z_score_is_open_librarys_against_a_hand_computation():
    # previous days 1..7: mean 4, population variance (9+4+1+0+1+4+9)/7 = 4, so σ = 2;
    # z = (20 - 4) / (2 + 1) = 16/3.
    assert z_score(20, [1, 2, 3, 4, 5, 6, 7]) == pytest.approx(16 / 3)
    # a flat history: σ = 0, z = (6 - 3) / 1
    assert z_score(6, [3] * 7) == pytest.approx(3.0)


def test_z_score_is_zero_under_five_events_however_quiet_the_days_before():
    assert z_score(4, [0] * 7) == 0.0
    assert z_score(5, [0] * 7) == pytest.approx(5.0)


def test_windows_rank_by_events_then_book_id_and_now_leaves_out_books_not_above_their_usual():
    assert [b.book_id for b in ranked_by_events([("B", 2), ("C", 5), ("A", 2), ("D", 0)])] == ["C", "A", "B"]
    now = ranked_by_z({"steady": (10, (10,) * 7), "rising": (8, (1,) * 7), "quiet": (3, (0,) * 7)})
    assert [(b.book_id, b.events, b.score) for b in now] == [("rising", 8, 7.0)]


def test_shown_skips_books_the_catalogue_lacks_and_matches_subjects_case_insensitively():
    entries = {b: CatalogueEntry(b, f"T{b}", ("a",), subjects) for b, subjects in
               [("A", ("Fantasy", "Magic")), ("B", ("philosophy",)), ("C", ("fantasy",))]}
    ranking = [TrendingBook(b, 9 - i, 9.0 - i) for i, b in enumerate(["GONE", "A", "B", "C"])]
    assert [b.book_id for b, _ in shown(ranking, entries, 10)] == ["A", "B", "C"]
    assert [b.book_id for b, _ in shown(ranking, entries, 10, "FANTASY")] == ["A", "C"]
    assert [b.book_id for b, _ in shown(ranking, entries, 1, "fantasy")] == ["A"]
    assert shown(ranking, entries, 10, "poetry") == []


# --- the API ---

def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
async def redis(redis_url):
    client = aioredis.from_url(redis_url)
    # The service's keys are fixed ("trending:"): start each test from none, the shared counts' lease included.
    async for key in client.scan_iter(match="trending:*"):
        await client.delete(key)
    await client.delete("lease:trending-counts")
    yield client
    await client.aclose()


@pytest.fixture
async def service(tables, dynamodb, redis, redis_url, issuer):
    seed(dynamodb, tables)
    # The app runs in the test client's own loop: its periodic refresh (every 0.1 s here) is what reads Redis.
    async with AsyncTestClient(create_app(settings_for(tables, redis_url, issuer,
                                                       trending_refresh_seconds=0.1))) as client:
        await wait_ready(client)
        yield client


async def _recomputed(redis, board, after: float) -> None:
    """Drop the shared counts and the lease, and wait until the replica computed and stored them again."""
    await redis.delete("lease:trending-counts", "trending:counts")
    for _ in range(400):
        if await redis.exists("trending:counts") and (board.refreshed_at or 0) > after:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the trending counts were never computed")


async def refreshed(service, redis) -> None:
    """Until the replica ranks counts computed after everything the test recorded. Twice: a computation already
    running when the counts are first dropped may have read before the test's events and store its counts
    after; the second drop clears those, and what is stored after it comes from a computation that started
    after the first drop, when every event was in."""
    board = service.app.state.trending
    for _ in range(2):
        await _recomputed(redis, board, time.time())
    seen = time.time()
    for _ in range(400):  # the replica takes what it stored right after storing it: wait for that take
        if (board.refreshed_at or 0) > seen:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the replica never took the recomputed counts")


async def test_trending_ranks_readers_per_window_with_titles_and_skips_unknown_books(service, redis):
    activity = ActivityLog(redis)
    now = time.time()
    for reader in range(3):  # OL7W: 3 readers today, one of them twice
        await activity.record("OL7W", f"r{reader}", stamp(now - 60))
    await activity.record("OL7W", "r0", stamp(now - 30))
    for reader in range(2):  # OL1W: 2 readers today, 4 more three days ago
        await activity.record("OL1W", f"r{reader}", stamp(now - 120))
    for reader in range(2, 6):
        await activity.record("OL1W", f"r{reader}", stamp(now - 3 * DAY))
    await activity.record("OL999W", "r0", stamp(now - 60))  # not in the catalogue
    await refreshed(service, redis)

    day = (await service.get("/trending?window=day")).json()
    assert day["window"] == "day"
    assert [(i["book_id"], i["events"], i["score"]) for i in day["items"]] == [("OL7W", 3, 3.0), ("OL1W", 2, 2.0)]
    assert day["items"][0]["title"] == "Title OL7W" and day["items"][0]["authors"] == ["fantasy author"]
    week = (await service.get("/trending?window=week")).json()
    assert [(i["book_id"], i["events"]) for i in week["items"]] == [("OL1W", 6), ("OL7W", 3)]
    assert (await service.get("/trending")).json()["window"] == "day"  # the default


async def test_subject_and_limit_narrow_the_list(service, redis):
    activity = ActivityLog(redis)
    now = time.time()
    for rank, book_id in enumerate(["OL8W", "OL2W", "OL9W", "OL3W"]):  # most readers first
        for reader in range(5 - rank):
            await activity.record(book_id, f"r{reader}", stamp(now - 60))
    await refreshed(service, redis)
    assert BOOKS["OL2W"] == "philosophy" and BOOKS["OL8W"] == "fantasy"
    philosophy = (await service.get("/trending?window=month&subject=PhiloSophy")).json()
    assert [i["book_id"] for i in philosophy["items"]] == ["OL2W", "OL3W"]
    one = (await service.get("/trending?window=month&limit=1")).json()
    assert [i["book_id"] for i in one["items"]] == ["OL8W"]
    assert (await service.get("/trending?window=month&subject=poetry")).json()["items"] == []


async def test_now_scores_a_book_above_its_usual_days(service, redis):
    activity = ActivityLog(redis)
    now = time.time()
    hour_start = now // HOUR * HOUR
    for reader in range(8):  # 8 readers in the last 24 hours
        await activity.record("OL4W", f"today{reader}", stamp(now - 60))
    for k in range(1, 8):  # k readers in the k-th 24 hours before them: 1..7
        for reader in range(k):
            await activity.record("OL4W", f"day{k}-{reader}", stamp(hour_start - k * DAY + 60))
    for reader in range(4):  # under 5 events: not trending now, whatever its history
        await activity.record("OL5W", f"r{reader}", stamp(now - 60))
    await refreshed(service, redis)
    items = (await service.get("/trending?window=now")).json()["items"]
    # mean 4, σ 2: z = (8 - 4) / 3
    assert [(i["book_id"], i["events"]) for i in items] == [("OL4W", 8)]
    assert items[0]["score"] == pytest.approx(4 / 3, abs=1e-4)


@pytest.mark.parametrize("query", ["window=year", "window=", "limit=0", "limit=101", "limit=ten", "subject=",
                                   "subject=%20", f"subject={'x' * 201}"])
async def test_bad_input_is_a_400_problem(service, query):
    r = await service.get(f"/trending?{query}")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("state", ["read_only", "timeout", "connection_reset"])
async def test_while_redis_fails_a_replica_keeps_serving_the_rankings_in_hand(failing_redis, state):
    server = failing_redis(state)
    async with redis_client(server.url, timeout=0.5) as client:
        activity = ActivityLog(client)
        board = TrendingBoard(activity)
        await activity.record("OL6W", "r0", stamp(time.time() - 60))
        assert await board.refresh()
        server.fail()
        before = current(REFRESH_FAILURES)
        assert not await board.refresh()
        assert current(REFRESH_FAILURES) == before + 1
    assert [b.book_id for b in board.ranking("day")] == ["OL6W"]


def test_the_trending_domain_does_no_io_and_the_builder_never_reaches_the_replica_side():
    assert io_reached("bookrec_recommendation.trending") == []
    reached_by_builder = reached("bookrec_recommendation.builder")
    assert "bookrec_recommendation.engine" not in reached_by_builder
    assert "bookrec_recommendation.live" not in reached_by_builder
