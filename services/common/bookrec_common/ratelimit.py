"""Per-client rate limits shared by every replica through Redis.

A fixed window per client, counted in Redis so that the replicas behind the
load balancer count together. The client is the verified user on
authenticated routes, else the address the load balancer saw.

Counting protocol (what each replica does):

- A hit is counted here first, and the decision is made on `known + unsent`:
  `known`, the client's total in Redis for the window as of this replica's
  last sync; `unsent`, the hits counted here since (this replica's own).
- Sync: one pipelined MULTI (INCRBY key unsent, EXPIRE key) per client with
  unsent hits, whose replies become the new `known`. A sync runs in the
  background at most `sync_seconds` after a hit, and inline (the request
  waits for it) when a client's unsent hits reach `local_allowance`, and on
  a limiter's first hit (Redis's count is unknown, or Redis was away). One
  sync is in flight at a time; requests arriving meanwhile wait for it and
  share the next one, so none waits for more than two round trips.
- Tolerance: a replica holds at most `local_allowance` admitted hits of a
  client that Redis has not seen (unsent or in flight), and admits at most
  that many between two syncs (at most `sync_seconds` apart under traffic);
  after a sync shows the client over the limit it admits none. So the total
  admitted in a window is at most
  `limit + replicas x local_allowance` (the over-admission worst case, when
  every replica spends its allowance at the same moment near the limit); a
  lone replica is exact. With `local_allowance` 1 every hit waits for its
  sync: the per-request round trip, exact across replicas.
- Every hit is counted in Redis, refused ones included, as one INCR per hit
  used to: a client over the limit stays over it on every replica.

When Redis is unavailable (`bookrec_common.clients.redis_unavailable`: down,
reset, timed out, read-only mid-failover, full, loading, busy, refusing our
AUTH) the limits open (the request goes through and is counted in a metric):
losing the limiter must not take the API down. The hits counted here but not
yet sent when a sync fails are counted in that metric too. After
`retry_redis_after` seconds the next hit tries Redis again, inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from prometheus_client import Counter

from bookrec_common.auth import require_principal
from bookrec_common.clients import redis_unavailable
from bookrec_common.errors import ProblemError
from bookrec_common.settings import ServiceSettings

log = logging.getLogger("bookrec.ratelimit")

RATE_LIMITED = Counter("rate_limited_total", "Requests refused with 429", ["limit"])
RATE_LIMIT_UNCHECKED = Counter("rate_limit_unchecked_total",
                               "Requests let through because Redis was unavailable", ["limit"])


class TooManyRequests(ProblemError):
    status, code, title = 429, "too_many_requests", "Too many requests"


def default_local_allowance(limit: int) -> int:
    """2 % of the limit (at most 100): two replicas over-admit at most 4 % of it."""
    return max(1, min(100, limit // 50))


class RateLimiter:
    """At most `limit` requests per client per `window_seconds`, across replicas (see the module's
    protocol)."""

    def __init__(self, redis: aioredis.Redis, name: str, limit: int, window_seconds: int,
                 clock: Callable[[], float] = time.time, retry_redis_after: float = 5.0,
                 sync_seconds: float = 0.1, local_allowance: int | None = None) -> None:
        self.redis = redis
        self.name = name
        self.limit = limit
        self.window = window_seconds
        self.sync_seconds = sync_seconds
        self.local_allowance = local_allowance or default_local_allowance(limit)
        self._clock = clock
        self._retry_redis_after = retry_redis_after
        self._redis_down_until = 0.0
        self._synced = False  # Redis's counts known (a first sync done since start, or since Redis came back)
        self._known: dict[tuple[str, int], int] = {}  # (client, window) -> total in Redis at the last sync
        self._unsent: dict[tuple[str, int], int] = {}  # (client, window) -> hits counted here since
        self._sending: dict[tuple[str, int], int] = {}  # hits of the sync in flight
        self._counted: dict[tuple[str, int], int] = {}  # (client, window) -> hits counted here, ever
        self._inflight: asyncio.Task[None] | None = None  # the sync in flight
        self._syncer: asyncio.Task[None] | None = None
        self._limited = RATE_LIMITED.labels(name)
        self._unchecked = RATE_LIMIT_UNCHECKED.labels(name)

    async def hit(self, client: str) -> None:
        """Count one request of `client`; raises TooManyRequests (429, Retry-After) past the limit."""
        now = self._clock()
        if now < self._redis_down_until:  # don't pay a timeout per request while Redis is away
            self._unchecked.inc()
            return
        window = int(now // self.window)
        key = (client, window)
        unsent = self._unsent[key] = self._unsent.get(key, 0) + 1
        mine = self._counted[key] = self._counted.get(key, 0) + 1
        if not self._synced or unsent + self._sending.get(key, 0) >= self.local_allowance:
            await self._catch_up(key)
            if not self._synced:  # Redis away: this hit was counted as unchecked
                return
        elif self._syncer is None:
            self._syncer = asyncio.get_running_loop().create_task(self._sync_soon())
        # This hit's place in the window: everything counted so far, less this replica's hits that came
        # after it (while it waited for a sync), as one INCR per hit would have told it.
        count = (self._known.get(key, 0) + self._sending.get(key, 0) + self._unsent.get(key, 0)
                 - (self._counted.get(key, mine) - mine))
        if count > self.limit:
            self._limited.inc()
            retry_after = max(1, math.ceil((window + 1) * self.window - now))
            raise TooManyRequests(
                f"more than {self.limit} requests in {self.window} s for this client ({self.name}); "
                f"retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)}, limit=self.limit, window_seconds=self.window)

    async def sync(self) -> None:
        """Send the hits counted here since the last sync, and learn the clients' totals over every replica.

        One sync at a time: callers arriving while one is in flight wait for it, then start the next one
        together if hits are left to send (a queue of requests never pays a round trip each)."""
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
        if self._unsent and self._inflight is None:
            if self._clock() < self._redis_down_until:  # a sync just failed: its waiters don't try again
                self._unchecked.inc(sum(self._unsent.values()))
                self._unsent = {}
                return
            self._inflight = asyncio.get_running_loop().create_task(self._send())
        if self._inflight is not None:
            await asyncio.shield(self._inflight)  # a cancelled request does not cancel the others' sync

    async def _send(self) -> None:
        self._sending, self._unsent = self._unsent, {}
        sending = list(self._sending.items())
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for (client, window), hits in sending:
                    redis_key = f"ratelimit:{self.name}:{client}:{window}"
                    pipe.incrby(redis_key, hits)
                    pipe.expire(redis_key, self.window + 1)
                replies = await pipe.execute()
        except Exception as exc:
            if not redis_unavailable(exc):
                raise
            self._redis_down_until = self._clock() + self._retry_redis_after
            self._synced = False
            self._unchecked.inc(sum(hits for _, hits in sending))
            log.warning("rate limit %s not checked: Redis unavailable (%s: %s)", self.name,
                        type(exc).__name__, exc)
            return
        finally:
            self._sending = {}
            self._inflight = None
        self._synced = True
        current = int(self._clock() // self.window)
        self._known = {key: count for key, count in self._known.items() if key[1] >= current}
        self._counted = {key: count for key, count in self._counted.items() if key[1] >= current}
        for (key, _), count in zip(sending, replies[::2], strict=True):
            self._known[key] = count

    async def _catch_up(self, key: tuple[str, int]) -> None:
        """Until Redis's counts are known and `key` has fewer hits Redis has not seen than the allowance."""
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
            if self._synced and self._unsent.get(key, 0) + self._sending.get(key, 0) < self.local_allowance:
                return
        await self.sync()

    async def _sync_soon(self) -> None:
        try:
            while self._unsent:
                await asyncio.sleep(self.sync_seconds)
                try:
                    await self.sync()
                except Exception:  # logged; the next inline sync reports it to a request
                    log.exception("rate limit %s: background sync failed", self.name)
        finally:
            self._syncer = None

    async def aclose(self) -> None:
        """Stop the background sync and send what is left (on shutdown, before Redis is closed)."""
        if self._syncer is not None:
            self._syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncer
        if self._inflight is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._inflight)
        if self._synced:
            with contextlib.suppress(Exception):
                await self.sync()


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The address the load balancer saw: the last X-Forwarded-For entry (earlier ones are the client's
    word)."""
    forwarded = connection.headers.get("x-forwarded-for", "")
    last = forwarded.rsplit(",", 1)[-1].strip()
    if last:
        return last
    return connection.client.host if connection.client else "unknown"


def rate_limit(name: str, by_user: bool = False
               ) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """A route guard counting the request against the app's limiter `name` (absent: unlimited).

    With `by_user` the client is the token's subject (so the token is verified first: 401 before 429).
    """

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        limiter: RateLimiter | None = connection.app.state.get("rate_limiters", {}).get(name)
        client = (await require_principal(connection)).subject if by_user else client_address(connection)
        if limiter is not None:
            await limiter.hit(client)

    return guard


def limiters_for(settings: ServiceSettings, redis: aioredis.Redis | None,
                 *names: str) -> dict[str, RateLimiter]:
    """The app's limiters (`app.state.rate_limiters`): none without Redis or with the limit off."""
    if redis is None or settings.rate_limit == 0:
        log.warning("rate limits off (%s)", "no REDIS_URL" if redis is None else "RATE_LIMIT=0")
        return {}
    return {name: RateLimiter(redis, name, settings.rate_limit, settings.rate_limit_window_seconds,
                              sync_seconds=settings.rate_limit_sync_seconds,
                              local_allowance=settings.rate_limit_local_allowance or None)
            for name in names}
