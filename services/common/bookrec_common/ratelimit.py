"""Per-client rate limits shared by every replica through Redis.

A fixed window per client: one INCR (and the key's expiry) per request, in
one round trip, so replicas behind the ALB count together. The client is the
verified user on authenticated routes, else the address the load balancer
saw. When Redis is unreachable the limits open (the request goes through and
is counted in a metric): losing the limiter must not take the API down.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from prometheus_client import Counter

from bookrec_common.auth import require_principal
from bookrec_common.errors import ProblemError
from bookrec_common.settings import ServiceSettings

log = logging.getLogger("bookrec.ratelimit")

RATE_LIMITED = Counter("rate_limited_total", "Requests refused with 429", ["limit"])
RATE_LIMIT_UNCHECKED = Counter("rate_limit_unchecked_total", "Requests let through because Redis was unreachable",
                               ["limit"])


class TooManyRequests(ProblemError):
    status, code, title = 429, "too_many_requests", "Too many requests"


class RateLimiter:
    """At most `limit` requests per client per `window_seconds`."""

    def __init__(self, redis: aioredis.Redis, name: str, limit: int, window_seconds: int,
                 clock: Callable[[], float] = time.time, retry_redis_after: float = 5.0) -> None:
        self.redis = redis
        self.name = name
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._retry_redis_after = retry_redis_after
        self._redis_down_until = 0.0

    async def hit(self, client: str) -> None:
        """Count one request of `client`; raises TooManyRequests (429, Retry-After) past the limit."""
        now = self._clock()
        if now < self._redis_down_until:  # don't pay a timeout per request while Redis is away
            RATE_LIMIT_UNCHECKED.labels(self.name).inc()
            return
        window = int(now // self.window)
        key = f"ratelimit:{self.name}:{client}:{window}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                count, _ = await pipe.incr(key).expire(key, self.window + 1).execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            self._redis_down_until = now + self._retry_redis_after
            RATE_LIMIT_UNCHECKED.labels(self.name).inc()
            log.warning("rate limit %s not checked: Redis unavailable (%s: %s)", self.name,
                        type(exc).__name__, exc)
            return
        if count > self.limit:
            RATE_LIMITED.labels(self.name).inc()
            retry_after = max(1, math.ceil((window + 1) * self.window - now))
            raise TooManyRequests(
                f"more than {self.limit} requests in {self.window} s for this client ({self.name}); "
                f"retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)}, limit=self.limit, window_seconds=self.window)


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The address the load balancer saw: the last X-Forwarded-For entry (earlier ones are the client's word)."""
    forwarded = connection.headers.get("x-forwarded-for", "")
    last = forwarded.rsplit(",", 1)[-1].strip()
    if last:
        return last
    return connection.client.host if connection.client else "unknown"


def rate_limit(name: str, by_user: bool = False) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler],
                                                             Awaitable[None]]:
    """A route guard counting the request against the app's limiter `name` (absent: unlimited).

    With `by_user` the client is the token's subject (so the token is verified first: 401 before 429).
    """

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        limiter: RateLimiter | None = connection.app.state.get("rate_limiters", {}).get(name)
        if by_user:
            client = (await require_principal(connection)).subject
        else:
            client = client_address(connection)
        if limiter is not None:
            await limiter.hit(client)

    return guard


def limiters_for(settings: ServiceSettings, redis: aioredis.Redis | None, *names: str) -> dict[str, RateLimiter]:
    """The app's limiters (`app.state.rate_limiters`): none without Redis or with the limit off."""
    if redis is None or settings.rate_limit == 0:
        log.warning("rate limits off (%s)", "no REDIS_URL" if redis is None else "RATE_LIMIT=0")
        return {}
    return {name: RateLimiter(redis, name, settings.rate_limit, settings.rate_limit_window_seconds)
            for name in names}
