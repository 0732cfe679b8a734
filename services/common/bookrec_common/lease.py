"""A builder's lease in Redis: one holder at a time per kind of artifact, with expiry and fencing.

`acquire` sets `lease:<kind>` only if absent, with a TTL, and draws the next fencing token from
`lease-fence:<kind>` (INCR; raised above the newest published version should Redis lose it): tokens
only grow, so the artifact a holder publishes carries a version above every earlier holder's
(`bookrec_common.artifacts` refuses to publish under a lower one). While building, `kept` renews the
lease every third of its TTL; a holder that dies stops renewing and the lease expires, so the next
builder takes over within one TTL. A holder that stalls past its TTL loses the lease and, being
fenced, cannot overwrite what its successor published.

Each step is one Lua script, so check-and-set never races between builders. When Redis cannot serve
(`bookrec_common.clients.redis_unavailable`: down, read-only mid-failover, full, loading, busy, refusing
our AUTH), `acquire` and `token_above` raise `LeaseUnavailable`: no lease, so no build this run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from bookrec_common.clients import redis_unavailable

log = logging.getLogger("bookrec.lease")

_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_ADVANCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local floor = tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[2]) or '0') < floor then redis.call('SET', KEYS[2], floor) end
return redis.call('INCR', KEYS[2])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLost(Exception):
    """The lease expired or was taken while its holder was still working."""


class LeaseUnavailable(Exception):
    """Redis cannot grant or extend the lease now: whoever asked must not build."""


@contextlib.contextmanager
def _unavailable_as_refusal() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if not redis_unavailable(exc):
            raise
        raise LeaseUnavailable(f"{type(exc).__name__}: {exc}") from exc


class Lease:
    def __init__(self, redis: Any, kind: str, ttl_seconds: float = 30.0, holder: str | None = None,
                 namespace: str = "") -> None:
        self._redis = redis
        self.kind = kind
        self.ttl_ms = int(ttl_seconds * 1000)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # The namespace (the artifact bucket) keeps fleets that share a Redis from taking each other's lease.
        scope = f"{namespace}:{kind}" if namespace else kind
        self._keys = [f"lease:{scope}", f"lease-fence:{scope}"]
        self._acquire = redis.register_script(_ACQUIRE)
        self._advance = redis.register_script(_ADVANCE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self) -> int | None:
        """The fencing token if the lease is now ours, None while someone else holds it."""
        with _unavailable_as_refusal():
            token = await self._acquire(keys=self._keys, args=[self.holder, self.ttl_ms])
        return int(token) if token else None

    async def token_above(self, version: int) -> int | None:
        """A fresh token above `version` (the newest published), None if the lease is no longer ours.

        Redis may have lost the counter (a failover without persistence, a flush): tokens would restart
        low and every publish be refused as superseded. The published version is the floor instead."""
        with _unavailable_as_refusal():
            token = await self._advance(keys=self._keys, args=[self.holder, version])
        return int(token) if token else None

    async def renew(self) -> bool:
        return bool(await self._renew(keys=self._keys[:1], args=[self.holder, self.ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=self._keys[:1], args=[self.holder])

    async def holder_now(self) -> str | None:
        raw = await self._redis.get(self._keys[0])
        return raw.decode() if isinstance(raw, bytes) else raw

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[asyncio.Event]:
        """Renew the held lease in the background; the event is set if it is lost meanwhile, or if Redis
        could not renew it for a whole TTL (it may have expired there: a successor may hold it)."""
        lost = asyncio.Event()

        async def renew_forever() -> None:
            renewed = time.monotonic()
            while True:
                await asyncio.sleep(self.ttl_ms / 3000)
                try:
                    still_ours = await self.renew()
                except Exception as exc:
                    if not redis_unavailable(exc):
                        lost.set()  # stop the build; the error surfaces when the lease is left
                        raise
                    log.warning("lease %s renewal failed: %s: %s", self.kind, type(exc).__name__, exc)
                    if time.monotonic() - renewed < self.ttl_ms / 1000:
                        continue  # a blip: retry until the TTL runs out
                    still_ours = False
                else:
                    renewed = time.monotonic()
                if not still_ours:
                    log.warning("lease %s lost by %s", self.kind, self.holder)
                    lost.set()
                    return

        task = asyncio.create_task(renew_forever())
        try:
            yield lost
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):
                await self.release()
