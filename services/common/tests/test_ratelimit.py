"""The shared rate limiter against a real Redis, and against none."""

from __future__ import annotations

import asyncio
import time

import pytest

from bookrec_common.clients import redis_client
from bookrec_common.ratelimit import RATE_LIMIT_UNCHECKED, RateLimiter, TooManyRequests
from bookrec_local.prometheus import current


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_window_allows_the_limit_then_refuses_until_the_next_window(redis_url):
    clock = Clock(60 * 16_666 + 20.0)  # 20 s into a 60 s window
    async with redis_client(redis_url) as redis:
        limiter = RateLimiter(redis, "test-window", limit=2, window_seconds=60, clock=clock)
        await limiter.hit("carol")
        await limiter.hit("carol")
        with pytest.raises(TooManyRequests) as refused:
            await limiter.hit("carol")
        assert refused.value.headers["Retry-After"] == "40" and refused.value.status == 429
        await limiter.hit("dave")  # another client's own count
        clock.now += 40
        await limiter.hit("carol")  # a new window
        ttl = await redis.ttl(f"ratelimit:test-window:carol:{int(clock.now // 60)}")
        assert 0 < ttl <= 61  # counters expire by themselves


async def test_redis_unreachable_lets_requests_through_and_counts_them():
    async with redis_client("redis://127.0.0.1:9/0") as redis:
        limiter = RateLimiter(redis, "test-down", limit=1, window_seconds=60)
        before = current(RATE_LIMIT_UNCHECKED.labels("test-down"))
        for _ in range(3):
            await limiter.hit("erin")  # never raises: the API stays up without its limiter
        assert current(RATE_LIMIT_UNCHECKED.labels("test-down")) == before + 3


# Counting locally and syncing in batches: the limit still holds across replicas, within the stated tolerance.

async def _hits(limiter: RateLimiter, client: str, n: int) -> int:
    """Hits `client` n times (a few at once, like concurrent requests); how many were admitted."""
    admitted = 0

    async def one() -> None:
        nonlocal admitted
        try:
            await limiter.hit(client)
            admitted += 1
        except TooManyRequests:
            pass

    for _ in range(n // 4):
        await asyncio.gather(*(one() for _ in range(4)))
    return admitted


async def test_two_replicas_admit_the_limit_and_at_most_their_allowances_more(redis_url):
    clock = Clock(60 * 16_667 + 5.0)
    async with redis_client(redis_url) as redis:
        replicas = [RateLimiter(redis, "test-replicas", limit=200, window_seconds=60, clock=clock,
                                local_allowance=8, sync_seconds=0.02) for _ in range(2)]
        admitted = 0
        for _ in range(25):  # the replicas take turns, each with hits the other has not seen
            for limiter in replicas:
                admitted += await _hits(limiter, "frank", 16)
        for limiter in replicas:
            await limiter.aclose()
        assert 200 <= admitted <= 200 + 2 * 8
        # Every hit reached Redis, refused ones included: a client over the limit stays over it everywhere.
        assert int(await redis.get(f"ratelimit:test-replicas:frank:{int(clock.now // 60)}")) == 2 * 25 * 16


async def test_a_lone_replica_counting_locally_is_exact(redis_url):
    clock = Clock(60 * 16_667 + 5.0)
    async with redis_client(redis_url) as redis:
        limiter = RateLimiter(redis, "test-lone", limit=50, window_seconds=60, clock=clock, local_allowance=10)
        assert await _hits(limiter, "gina", 80) == 50
        await limiter.aclose()


async def test_hits_below_the_allowance_reach_redis_within_the_sync_interval(redis_url):
    clock = Clock(60 * 16_667 + 5.0)
    async with redis_client(redis_url) as redis:
        limiter = RateLimiter(redis, "test-interval", limit=1000, window_seconds=60, clock=clock,
                              local_allowance=100, sync_seconds=0.05)
        for _ in range(4):
            await limiter.hit("hana")
        key = f"ratelimit:test-interval:hana:{int(clock.now // 60)}"
        assert int(await redis.get(key)) == 1  # the first hit synced inline: Redis's count was unknown
        await asyncio.sleep(0.3)
        assert int(await redis.get(key)) == 4
        assert 0 < await redis.ttl(key) <= 61
        await limiter.aclose()


async def test_a_client_refused_elsewhere_is_refused_here_after_a_sync(redis_url):
    clock = Clock(60 * 16_667 + 5.0)
    async with redis_client(redis_url) as redis:
        first, second = (RateLimiter(redis, "test-elsewhere", limit=10, window_seconds=60, clock=clock,
                                     local_allowance=3) for _ in range(2))
        assert await _hits(first, "ivan", 12) == 10
        await first.aclose()
        with pytest.raises(TooManyRequests) as refused:
            await second.hit("ivan")  # its first hit syncs inline and learns the total
        assert refused.value.headers["Retry-After"] == "55"
        await second.aclose()


async def test_redis_unreachable_with_local_counting_lets_everything_through():
    async with redis_client("redis://127.0.0.1:9/0") as redis:
        limiter = RateLimiter(redis, "test-down-batched", limit=5, window_seconds=60, local_allowance=3)
        before = current(RATE_LIMIT_UNCHECKED.labels("test-down-batched"))
        for _ in range(20):
            await limiter.hit("judy")  # never raises
        assert current(RATE_LIMIT_UNCHECKED.labels("test-down-batched")) == before + 20
        await limiter.aclose()


def count_pipelines(redis) -> list[None]:
    """Make `redis` note each pipeline it opens (each a round trip to Redis) in the list returned."""
    calls: list[None] = []
    real_pipeline = redis.pipeline

    def counting_pipeline(*args, **kwargs):
        calls.append(None)
        return real_pipeline(*args, **kwargs)

    redis.pipeline = counting_pipeline
    return calls


async def test_redis_is_tried_again_after_the_retry_delay():
    clock = Clock(1000.0)
    async with redis_client("redis://127.0.0.1:9/0") as redis:
        limiter = RateLimiter(redis, "test-retry", limit=5, window_seconds=60, clock=clock, retry_redis_after=5.0)
        calls = count_pipelines(redis)
        await limiter.hit("kim")
        await limiter.hit("kim")
        assert len(calls) == 1  # Redis away: no timeout paid per request
        clock.now += 5.0
        await limiter.hit("kim")
        assert len(calls) == 2


async def test_closing_a_limiter_sends_the_hits_redis_has_not_seen(redis_url):
    clock = Clock(60 * 16_667 + 5.0)
    async with redis_client(redis_url) as redis:
        limiter = RateLimiter(redis, "test-close", limit=1000, window_seconds=60, clock=clock,
                              local_allowance=100, sync_seconds=30)
        for _ in range(7):
            await limiter.hit("lena")
        await limiter.aclose()  # what the app's lifespan does on shutdown, before Redis is closed
        assert int(await redis.get(f"ratelimit:test-close:lena:{int(clock.now // 60)}")) == 7


async def test_requests_waiting_on_a_failed_sync_do_not_each_try_redis():
    async with redis_client("redis://127.0.0.1:9/0") as redis:
        limiter = RateLimiter(redis, "test-down-waiters", limit=100, window_seconds=60)
        calls = count_pipelines(redis)
        before = current(RATE_LIMIT_UNCHECKED.labels("test-down-waiters"))
        await asyncio.gather(*(limiter.hit("mia") for _ in range(10)))  # all wait for the first sync
        assert len(calls) == 1
        assert current(RATE_LIMIT_UNCHECKED.labels("test-down-waiters")) == before + 10


async def test_requests_queued_behind_a_slow_sync_share_the_next_one(redis_url):
    clock = Clock(60 * 16_667 + 5.0)
    async with redis_client(redis_url) as redis:
        limiter = RateLimiter(redis, "test-convoy", limit=10_000, window_seconds=60, clock=clock, local_allowance=2)
        calls = 0
        real_pipeline = redis.pipeline

        def slow_pipeline(*args, **kwargs):
            nonlocal calls
            calls += 1
            pipe = real_pipeline(*args, **kwargs)
            execute = pipe.execute

            async def slow_execute(*a, **k):
                await asyncio.sleep(0.02)  # Redis on a busy machine
                return await execute(*a, **k)

            pipe.execute = slow_execute
            return pipe

        redis.pipeline = slow_pipeline

        waits: list[float] = []
        hits = 0

        async def client_connection() -> None:  # one of 32 keep-alive connections of one client
            nonlocal hits
            deadline = time.perf_counter() + 0.4
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await limiter.hit("nora")
                waits.append(time.perf_counter() - started)
                hits += 1
                await asyncio.sleep(0.001)

        await asyncio.gather(*(client_connection() for _ in range(32)))
        # A request waits for the sync in flight and the next one at most, not for one round trip per
        # request queued ahead of it (up to 32 x 20 ms).
        assert max(waits) < 0.15
        await limiter.aclose()
        assert int(await redis.get(f"ratelimit:test-convoy:nora:{int(clock.now // 60)}")) == hits
