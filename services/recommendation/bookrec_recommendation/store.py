"""The only recommendation code that talks to DynamoDB and Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec
import redis.asyncio as aioredis
from cachetools import TTLCache
from prometheus_client import Counter

from bookrec_catalog.changes import is_deleted
from bookrec_catalog.dynamo import from_attribute, from_item
from bookrec_common.clients import probe_redis_writes, probe_table, redis_unavailable
from bookrec_common.feed import count_read
from bookrec_recommendation.catalogue import CatalogueEntry, catalogue_entry
from bookrec_recommendation.freshness import AcceptedChange, RatingsRead
from bookrec_recommendation.model import TrainingData
from bookrec_recommendation.models import InvalidationOutcome

log = logging.getLogger("bookrec.recommendation.store")
USER_RATINGS_INDEX = "by-user"
USER_SHELVES_INDEX = "by-user"  # the shelves table's: (user_id, shelved_at)

CACHE_HITS = Counter("recommendation_cache_hits_total", "Recommendations answered from Redis")
CACHE_MISSES = Counter("recommendation_cache_misses_total", "Recommendations computed on a cache miss")
CACHE_ERRORS = Counter("recommendation_cache_errors_total",
                       "Cache calls bypassed, Redis being unavailable: failed, or skipped for a moment after "
                       "a failure (answered uncached)")
CACHE_INVALIDATIONS = Counter(
    "recommendation_cache_invalidations_total",
    "Invalidations by outcome: deleted, not_cached, unavailable (Redis down), disabled", ["outcome"])
CACHE_STALE_WRITES = Counter(
    "recommendation_cache_stale_writes_total",
    "Computed lists not cached: the user's generation moved (an invalidation) while they were computed")

# The in-process fallback's default age bound (CACHE_FALLBACK_SECONDS in settings.py).
FALLBACK_SECONDS = 30.0
# After Redis failed, reads and stores skip it this long (a stalled Redis would cost each request a
# timeout per call); invalidations always try it.
SKIP_REDIS_SECONDS = 1.0
# A generation outlives the lists stored under it by this margin (see RecommendationCache).
GENERATION_MARGIN_SECONDS = 60

# KEYS: list, generation, latest change. ARGV: the generation's expiry (s), the accepted change it is for
# (AcceptedChange.encode; empty: none given), kept if newer than the one recorded (retries may come late).
# Returns how many lists were deleted (0 or 1).
INVALIDATE_SCRIPT = """
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then
  if (redis.call('GET', KEYS[3]) or '') < ARGV[2] then
    redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[1])
  else
    redis.call('EXPIRE', KEYS[3], ARGV[1])
  end
end
return redis.call('DEL', KEYS[1])
"""
# KEYS: list, generation. ARGV: the generation read before the ratings, the encoded list, its TTL (s).
# Returns 1 if stored, 0 if refused (an invalidation came in between).
STORE_IF_CURRENT_SCRIPT = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class RatingsSource:
    """Reads the ratings and books tables: whole-table scans for the model, one user's ratings per request."""

    def __init__(self, client: Any, books_table: str, ratings_table: str, segments: int = 4,
                 scan_client: Any = None, shelves_table: str = "") -> None:
        self._client = client
        self._shelves = shelves_table  # empty: no shelves are read (a deployment without the table)
        self._scan_client = scan_client or client
        self._books = books_table
        self._ratings = ratings_table
        self._segments = segments
        self.build_reads = 0  # items the whole-table scans read, for the artifact's manifest

    async def ping(self) -> None:
        await probe_table(self._client, self._ratings, {"book_id": "OL0W", "user_id": "-"})

    async def _scan(self, table: str, projection: str,
                    names: dict[str, str] | None = None) -> list[dict[str, Any]]:
        async def segment(number: int) -> list[dict[str, Any]]:
            request: dict[str, Any] = {"TableName": table, "ProjectionExpression": projection,
                                       "Segment": number, "TotalSegments": self._segments}
            if names:
                request["ExpressionAttributeNames"] = names
            items: list[dict[str, Any]] = []
            while True:
                response = await self._scan_client.scan(**request)
                self.build_reads += count_read("build", response)
                items += response.get("Items", [])
                if "LastEvaluatedKey" not in response:
                    return items
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

        parts = await asyncio.gather(*(segment(n) for n in range(self._segments)))
        return [item for part in parts for item in part]

    async def all_ratings(self) -> tuple[list[str], list[str]]:
        """(user ids, book ids) of every rating: who rated what, for the model."""
        items = await self._scan(self._ratings, "user_id, book_id")
        return [i["user_id"]["S"] for i in items], [i["book_id"]["S"] for i in items]

    async def catalogue(self) -> list[CatalogueEntry]:
        items = await self._scan(self._books, "book_id, title, authors, subjects, rating_sum, rating_count, "
                                              "deleted_at, #series", {"#series": "series"})
        return [catalogue_entry(book) for book in map(from_item, items) if not is_deleted(book)]

    async def training_data(self) -> TrainingData:
        """What a model is trained from: one Scan of each table, side by side."""
        (users, books), catalogue = await asyncio.gather(self.all_ratings(), self.catalogue())
        return TrainingData(users, books, catalogue)

    async def ratings_of(self, user_id: str) -> RatingsRead:
        """The user's current ratings, read now, so a rating made seconds ago counts (once the by-user
        index shows it: eventually consistent on DynamoDB, see `freshness`)."""
        request: dict[str, Any] = {
            "TableName": self._ratings, "IndexName": USER_RATINGS_INDEX,
            "KeyConditionExpression": "user_id = :u", "ExpressionAttributeValues": {":u": {"S": user_id}},
            "ProjectionExpression": "book_id, rating, updated_at",
        }
        read = RatingsRead({}, {})
        while True:
            response = await self._client.query(**request)
            count_read("serving", response)
            for item in response.get("Items", []):
                book_id = item["book_id"]["S"]
                read.stars[book_id] = from_attribute(item["rating"])
                read.updated_at[book_id] = item.get("updated_at", {}).get("S", "")
            if "LastEvaluatedKey" not in response:
                return read
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def shelves_of(self, user_id: str) -> dict[str, str]:
        """The books on the user's shelves (any shelf) and when each was put there: one Query of the
        shelves table's by-user index (a page per 1 MB), read now."""
        shelved: dict[str, str] = {}
        if not self._shelves:
            return shelved
        request: dict[str, Any] = {
            "TableName": self._shelves, "IndexName": USER_SHELVES_INDEX,
            "KeyConditionExpression": "user_id = :u", "ExpressionAttributeValues": {":u": {"S": user_id}},
            "ProjectionExpression": "book_id, shelved_at",
        }
        while True:
            response = await self._client.query(**request)
            count_read("serving", response)
            for item in response.get("Items", []):
                shelved[item["book_id"]["S"]] = item.get("shelved_at", {}).get("S", "")
            if "LastEvaluatedKey" not in response:
                return shelved
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def reader_of(self, user_id: str) -> RatingsRead:
        """The user's ratings and shelves, the two Queries side by side."""
        ratings, shelved = await asyncio.gather(self.ratings_of(user_id), self.shelves_of(user_id))
        return RatingsRead(ratings.stars, ratings.updated_at, shelved)


class CachedRecommendations(msgspec.Struct):
    strategy: str
    model_version: str
    items: list[tuple[str, float, str]]  # (book_id, score, reason), longest list computed


class CacheState(NamedTuple):
    """What a computation reads before the ratings: the user's generation (None: Redis unavailable, or no
    cache) and the newest accepted change an invalidation recorded (None: none known)."""

    generation: int | None
    latest: AcceptedChange | None


class Deletion(NamedTuple):
    outcome: InvalidationOutcome
    removed: bool  # an entry of the user was held (in Redis or this replica's fallback) and is gone


class RecommendationCache:
    """Cache-aside in Redis under `reco:{user_id}`. Every failure degrades, never turns into an error.

    Coherence across replicas: each user has a generation, `reco-gen:{user_id}`. An invalidation
    increments it and deletes the list in one script. A computation reads the generation (`state`)
    before it reads the user's ratings, and `put` stores its list only if the generation is still the
    same (one script): a list computed from ratings read before an invalidation, on any replica, is
    never stored after it. A generation expires `GENERATION_MARGIN_SECONDS` after the lists' TTL, so a
    computation would have to take that long to miss an invalidation. The same script records the
    accepted change the invalidation is for (`reco-latest:{user_id}`, the newest kept), which `state`
    reads with the generation: the engine caches a list only if the ratings it read show that change
    (`freshness`), since the by-user index may lag the write.

    Redis unavailable (`redis_unavailable`: down, read-only mid-failover, full, loading, busy, slow,
    refusing our AUTH): every call degrades (counted in `recommendation_cache_errors_total`), and for
    `skip_seconds` after a failure reads and stores do not try Redis at all (a stalled Redis would
    cost each request a timeout per call); invalidations always try it, and one that succeeds ends
    the skipping. Any other error is a bug and is raised.

    While Redis fails, answers are kept in a small in-process TTL cache instead, so an outage (and the
    empty Redis after it) does not turn every request into a DynamoDB Query. Invalidations clear its
    entries on this replica only: other replicas may answer a list up to `fallback_ttl` seconds stale.
    """

    def __init__(self, client: aioredis.Redis | None, ttl_seconds: int, fallback_size: int = 10_000,
                 fallback_ttl: float = FALLBACK_SECONDS, skip_seconds: float = SKIP_REDIS_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._skip_seconds = skip_seconds
        self._clock = clock
        self._skip_until = 0.0
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(CachedRecommendations)
        self._fallback: TTLCache[str, CachedRecommendations] = TTLCache(fallback_size, fallback_ttl)
        # redis-py's scripts: EVALSHA, loading the script again if the server does not know it.
        self._invalidate = self._store_if_current = None
        if client is not None:
            self._invalidate = client.register_script(INVALIDATE_SCRIPT)
            self._store_if_current = client.register_script(STORE_IF_CURRENT_SCRIPT)

    @property
    def enabled(self) -> bool:
        return self._client is not None and self._ttl > 0

    @staticmethod
    def key(user_id: str) -> str:
        return f"reco:{user_id}"

    @staticmethod
    def generation_key(user_id: str) -> str:
        return f"reco-gen:{user_id}"

    @staticmethod
    def latest_key(user_id: str) -> str:
        return f"reco-latest:{user_id}"

    async def ping(self) -> None:
        """Readiness: a write, since a read-only replica and a full Redis still answer PING."""
        if self._client is None:
            raise RuntimeError("no Redis configured (REDIS_URL is empty)")
        try:
            await probe_redis_writes(self._client, "reco-ready-probe")
        except Exception as exc:
            raise RuntimeError(f"lists kept in-process meanwhile: another replica may answer one up to "
                               f"{self._fallback.ttl:.0f}s stale ({type(exc).__name__}: {exc})") from exc

    async def get(self, user_id: str) -> CachedRecommendations | None:
        if not self.enabled:
            return None
        if self._skipping():
            return self._fallback.get(user_id)
        try:
            raw = await self._client.get(self.key(user_id))  # type: ignore[union-attr]  # enabled: a client is set
        except Exception as exc:  # noqa: BLE001 - `_unavailable` raises all but Redis unavailable
            self._unavailable(exc, "cache read failed")
            return self._fallback.get(user_id)
        if raw is None:
            # Just after an outage Redis is empty: answers kept meanwhile spare DynamoDB a stampede.
            return self._fallback.pop(user_id, None)
        try:
            return self._decoder.decode(raw)
        except msgspec.DecodeError:
            return None

    async def generation(self, user_id: str) -> int | None:
        """The user's generation, to be read before their ratings and handed to `put`; None: unknown."""
        return (await self.state(user_id)).generation

    async def state(self, user_id: str) -> CacheState:
        """The generation (for `put`) and the newest accepted change, in one round trip, to be read
        before the user's ratings."""
        if not self.enabled or self._skipping():
            return CacheState(None, None)
        try:
            generation, latest = await self._client.mget(  # type: ignore[union-attr]  # enabled: a client is set
                self.generation_key(user_id), self.latest_key(user_id))
        except Exception as exc:  # noqa: BLE001 - `_unavailable` raises all but Redis unavailable
            # The list then goes to the fallback only (see put).
            self._unavailable(exc, "cache generation read failed")
            return CacheState(None, None)
        return CacheState(int(generation) if generation is not None else 0,
                          AcceptedChange.decode(latest.decode() if isinstance(latest, bytes) else latest)
                          if latest is not None else None)

    async def put(self, user_id: str, value: CachedRecommendations, generation: int | None) -> bool:
        """Cache a list computed under `generation`; False if not stored in Redis (refused, or Redis down)."""
        if not self.enabled:
            return False
        if generation is None or self._skipping():
            # Unknown generation: Redis was unavailable when the computation began; an invalidation
            # meanwhile may have reached Redis, so only the short-lived fallback may hold this list.
            self._fallback[user_id] = value
            return False
        try:
            stored = await self._store_if_current(  # type: ignore[misc]  # redis-py types a Script's call as sync or async at once
                keys=[self.key(user_id), self.generation_key(user_id)],
                args=[generation, self._encoder.encode(value), self._ttl])
        except Exception as exc:  # noqa: BLE001 - `_unavailable` raises all but Redis unavailable
            self._unavailable(exc, "cache write failed")
            self._fallback[user_id] = value
            return False
        if not stored:
            CACHE_STALE_WRITES.inc()
            log.debug("list of %s not cached: invalidated while computed", user_id,
                      extra={"user_id": user_id})
        return bool(stored)

    async def delete(self, user_id: str, change: AcceptedChange | None = None) -> Deletion:
        """Bump the user's generation, record the accepted `change` it is for (if given) and forget their
        entry; Redis unavailable: a status, never raised."""
        held_here = self._fallback.pop(user_id, None) is not None
        if self._client is None:
            deletion = Deletion("disabled", held_here)
        else:
            try:
                deleted_keys = await self._invalidate(  # type: ignore[misc]  # redis-py types a Script's call as sync or async at once
                    keys=[self.key(user_id), self.generation_key(user_id), self.latest_key(user_id)],
                    args=[self._ttl + GENERATION_MARGIN_SECONDS, change.encode() if change else ""])
            except Exception as exc:  # noqa: BLE001 - `_unavailable` raises all but Redis unavailable
                # The entry then expires by its TTL; callers are told.
                self._unavailable(exc, f"cache invalidation of {user_id} failed")
                deletion = Deletion("unavailable", held_here)
            else:
                self._skip_until = 0.0  # Redis answers again
                removed = held_here or deleted_keys > 0
                deletion = Deletion("deleted" if removed else "not_cached", removed)
        CACHE_INVALIDATIONS.labels(deletion.outcome).inc()
        return deletion

    def _skipping(self) -> bool:
        if self._clock() < self._skip_until:
            CACHE_ERRORS.inc()
            return True
        return False

    def _unavailable(self, exc: Exception, what: str) -> None:
        """Count and log a call that failed with Redis unavailable; raise anything else (a bug)."""
        if not redis_unavailable(exc):
            raise exc
        CACHE_ERRORS.inc()
        self._skip_until = self._clock() + self._skip_seconds
        log.warning("%s: Redis unavailable (%s: %s)", what, type(exc).__name__, exc)
