"""The shared rate limiter against a real Redis, and against none."""

from __future__ import annotations

import pytest

from bookrec_common.clients import redis_client
from bookrec_common.ratelimit import RATE_LIMIT_UNCHECKED, RateLimiter, TooManyRequests


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
        before = RATE_LIMIT_UNCHECKED.labels("test-down")._value.get()
        for _ in range(3):
            await limiter.hit("erin")  # never raises: the API stays up without its limiter
        assert RATE_LIMIT_UNCHECKED.labels("test-down")._value.get() == before + 3
