"""Reader activity counted in a real Redis: one reader per book per window, whole-hour windows rolling,
the `now` history, and Redis failures that never reach the write that recorded the event."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bookrec_common.activity import HOUR, RECORD_FAILURES, ActivityCounts, ActivityLog, epoch_seconds
from bookrec_common.clients import redis_client
from bookrec_common.lease import Lease
from bookrec_local.prometheus import current
from bookrec_local.redis_faults import STATES

# 2026-12-06 00:00:00 UTC, on an hour boundary.
T0 = epoch_seconds("2026-12-06T00:00:00.000000Z")
DAY, WEEK, MONTH = 24, 168, 720
PASSWORD = "activity-secret"


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


async def test_windows_are_whole_hours_and_an_hour_leaves_each_window_as_the_clock_passes_it(activity, clock):
    # The clock is in hour H (T0 + 30 min). day = H-23..H, week = H-167..H, month = H-719..H.
    edges = {"day-in": T0 - 23 * HOUR, "day-out": T0 - 24 * HOUR + 3599, "week-in": T0 - 167 * HOUR,
             "week-out": T0 - 168 * HOUR + 3599, "month-in": T0 - 719 * HOUR, "month-out": T0 - 720 * HOUR + 3599}
    for book_id, at in edges.items():
        await activity.record(book_id, "reader", stamp(at))
    counts = await activity.counts()
    assert set(window(counts, DAY)) == {"day-in"}
    assert set(window(counts, WEEK)) == {"day-in", "day-out", "week-in"}
    assert set(window(counts, MONTH)) == {"day-in", "day-out", "week-in", "week-out", "month-in"}
    clock.now += HOUR  # one hour on: each window's oldest hour leaves it
    counts = await activity.counts()
    assert set(window(counts, DAY)) == set()
    assert set(window(counts, WEEK)) == {"day-in", "day-out"}
    assert set(window(counts, MONTH)) == {"day-in", "day-out", "week-in", "week-out"}
    assert await activity.roll() == 0  # rolling again within the hour subtracts nothing twice


async def test_a_reader_moving_between_hours_is_subtracted_once_when_their_latest_hour_leaves(activity, clock):
    await activity.record("B1", "alice", stamp(T0 - 23 * HOUR))
    await activity.record("B1", "alice", stamp(T0 - 2 * HOUR))  # moved out of the oldest hour of the day
    clock.now += HOUR
    assert window(await activity.counts(), DAY) == {"B1": 1}  # the old hour left without taking alice along
    clock.now += 22 * HOUR
    assert window(await activity.counts(), DAY) == {}


async def test_now_history_is_the_last_24_hours_and_the_7_blocks_of_24_before_them(activity, clock):
    hour_start = T0
    for reader in range(6):
        await activity.record("B1", f"today{reader}", stamp(clock.now - 60))
    for k in range(1, 8):  # k readers in the k-th block of 24 hours before the last 24
        for reader in range(k):
            await activity.record("B1", f"day{k}-{reader}", stamp(hour_start - k * 24 * HOUR + 60))
    for reader in range(4):  # under 5 in the last 24 h: not a candidate
        await activity.record("B2", f"r{reader}", stamp(clock.now - 60))
    counts = await activity.counts()
    assert counts.recent == {"B1": (6, (1, 2, 3, 4, 5, 6, 7))}
    # Open Library's z by hand: mean 4, population σ 2, z = (6 - 4) / (2 + 1)
    last, days = counts.recent["B1"]
    mean = sum(days) / 7
    sigma = (sum((d - mean) ** 2 for d in days) / 7) ** 0.5
    assert (mean, sigma, (last - mean) / (sigma + 1)) == (4.0, 2.0, 2 / 3)


async def test_replicas_share_one_computation_per_period_through_the_lease(redis, activity, clock):
    await activity.record("B1", "alice", stamp(clock.now - 60))
    prefix = activity.prefix
    replicas = [ActivityLog(redis, prefix=prefix, clock=clock) for _ in range(2)]
    lease_kind = f"{prefix}counts-lease"
    first = await replicas[0].shared_counts(Lease(redis, lease_kind, ttl_seconds=20))
    await activity.record("B2", "bob", stamp(clock.now - 30))
    second = await replicas[1].shared_counts(Lease(redis, lease_kind, ttl_seconds=20))
    assert first is not None and second == first  # the holder's copy, until the period ends
    assert window(second, DAY) == {"B1": 1}


async def test_a_mistake_in_the_calling_code_is_raised_not_swallowed(redis, activity):
    await redis.set(f"{activity.prefix}readers:B1", b"not a sorted set")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await activity.record("B1", "alice", stamp(T0))


@pytest.mark.parametrize("state", STATES)
async def test_recording_never_raises_while_redis_fails_and_counts_what_it_lost(failing_redis, state):
    server = failing_redis(state, password=PASSWORD)
    async with redis_client(server.url, timeout=0.5, auth_token=PASSWORD) as client:
        activity = ActivityLog(client)
        await activity.record("B1", "alice", stamp(T0))  # healthy first, connections pooled
        server.fail()
        before = current(RECORD_FAILURES)
        await activity.record("B1", "bob", stamp(T0 + 1))
        assert current(RECORD_FAILURES) == before + 1


async def test_without_redis_recording_does_nothing():
    await ActivityLog(None).record("B1", "alice", stamp(T0))
