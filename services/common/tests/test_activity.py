"""Reader activity counted in a real Redis: one reader per book per window, whole-hour windows rolling,
the `now` history, and Redis failures that never reach the write that recorded the event."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from bookrec_common.activity import HOUR, ActivityCounts, ActivityLog, epoch_seconds

# 2026-12-06 00:00:00 UTC, on an hour boundary.
T0 = epoch_seconds("2026-12-06T00:00:00.000000Z")
DAY, WEEK, MONTH = 24, 168, 720


def stamp(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(redis_url):
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 30 * 60)


@pytest.fixture
def activity(redis, clock) -> ActivityLog:
    # A prefix of the test's own: tests share the session's Redis.
    return ActivityLog(redis, prefix=f"t{uuid.uuid4().hex[:8]}:", clock=clock)


def window(counts: ActivityCounts, hours: int) -> dict[str, int]:
    return dict(counts.windows[hours])


async def test_a_reader_counts_once_per_book_however_often_they_rate_and_shelve(activity, clock):
    for minutes in (1, 5, 9):
        await activity.record("B1", "alice", stamp(T0 + minutes * 60))
    await activity.record("B1", "bob", stamp(T0 + 60))
    await activity.record("B2", "alice", stamp(T0 + 60))
    counts = await activity.counts()
    for hours in (DAY, WEEK, MONTH):
        assert window(counts, hours) == {"B1": 2, "B2": 1}


async def test_a_readers_earlier_event_moves_to_their_latest_and_stays_one(activity, clock):
    await activity.record("B1", "alice", stamp(T0 - 10 * 24 * HOUR))  # 10 days ago: month, not week
    counts = await activity.counts()
    assert window(counts, MONTH) == {"B1": 1}
    assert window(counts, WEEK) == {} and window(counts, DAY) == {}
    await activity.record("B1", "alice", stamp(T0 - 2 * HOUR))  # again, 2 h ago: in every window, once
    counts = await activity.counts()
    for hours in (DAY, WEEK, MONTH):
        assert window(counts, hours) == {"B1": 1}


async def test_an_older_or_replayed_event_changes_nothing(activity, clock):
    await activity.record("B1", "alice", stamp(T0 - HOUR))
    await activity.record("B1", "alice", stamp(T0 - 20 * 24 * HOUR))  # older than the one counted
    await activity.record("B1", "alice", stamp(T0 - HOUR))  # the same again
    counts = await activity.counts()
    for hours in (DAY, WEEK, MONTH):
        assert window(counts, hours) == {"B1": 1}
