"""The replica's trending rankings: read from Redis every `refresh_seconds`, ranked here, served from memory.

Each refresh asks `ActivityLog.shared_counts` for the fleet's counts: the replica that takes the
`trending-counts` lease (a TTL of `SHARE_SECONDS`, never renewed: each period one process) rolls the
windows, reads them and stores the result in one key; every other replica reads that key (one GET of
at most 4 × depth entries). Ranking (`trending`, pure) happens on each replica.

Freshness: an event is counted in Redis as it is written; the shared counts are at most SHARE_SECONDS old
when read, and a replica reads every `refresh_seconds`, so a request sees an event within about
SHARE_SECONDS + refresh_seconds (20 + 15 s by default: under a minute).

While Redis is unavailable the rankings in hand keep serving (stale, counted, logged); with no Redis
configured there is nothing to rank and every window is empty.

Rebuild (`rebuild_if_lost`, run by the recommendation builder under its lease): when the activity's
marker is gone (Redis lost its data, or a first deployment), every rating's `updated_at` and every
shelving's `shelved_at` within the kept horizon are replayed into the activity, then the marker is set.
The tables hold only the latest rating and the current shelf of each reader and book, which is all a
window counts (one reader per book, at their latest event), so the windows come back as they were,
except for readers whose rating or shelf was removed since (their events are gone with the rows).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from prometheus_client import Counter

from bookrec_common.activity import SHARE_SECONDS, ActivityCounts, ActivityEvent, ActivityLog, epoch_seconds
from bookrec_common.clients import redis_unavailable
from bookrec_common.feed import count_read
from bookrec_common.lease import Lease, LeaseUnavailable
from bookrec_recommendation.trending import WINDOW_HOURS, TrendingBook, ranked_by_events, ranked_by_z

log = logging.getLogger("bookrec.trending")
REFRESH_FAILURES = Counter("trending_refresh_failures_total",
                           "Trending refreshes that could not read Redis (the rankings in hand kept serving)")


class TrendingBoard:
    def __init__(self, activity: ActivityLog, *, namespace: str = "", refresh_seconds: float = 15.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.activity = activity
        self.refresh_seconds = refresh_seconds
        self._lease = (Lease(activity.redis, "trending-counts", SHARE_SECONDS, namespace=namespace)
                       if activity.enabled else None)
        self._clock = clock
        self.rankings: dict[str, list[TrendingBook]] = {window: [] for window in WINDOW_HOURS}
        self.refreshed_at: float | None = None

    def ranking(self, window: str) -> list[TrendingBook]:
        return self.rankings[window]

    def take(self, counts: ActivityCounts) -> None:
        rankings = {window: ranked_by_events(counts.windows.get(hours, ()))
                    for window, hours in WINDOW_HOURS.items() if window != "now"}
        rankings["now"] = ranked_by_z(counts.recent)
        self.rankings = rankings
        self.refreshed_at = self._clock()

    async def refresh(self) -> bool:
        """Read the fleet's counts and rank them; False (the rankings in hand kept) if Redis could not."""
        if self._lease is None:
            return False
        try:
            counts = await self.activity.shared_counts(self._lease)
        except LeaseUnavailable as exc:
            return self._failed(exc)
        except Exception as exc:
            if not redis_unavailable(exc):
                raise
            return self._failed(exc)
        if counts is not None:
            self.take(counts)
        return counts is not None

    def _failed(self, exc: BaseException) -> bool:
        REFRESH_FAILURES.inc()
        log.warning("trending not refreshed: Redis unavailable (%s: %s)", type(exc).__name__, exc)
        return False

    async def keep_fresh(self) -> None:
        """Until cancelled; failures are logged and tried again, never raised."""
        if self._lease is None:
            log.warning("trending off: no REDIS_URL")
            return
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("trending refresh failed")
            await asyncio.sleep(self.refresh_seconds)


class ActivityTables:
    """The tables' record of reader activity, for a rebuild: ratings (`updated_at`) and shelves
    (`shelved_at`), scanned page by page (one Scan of each; a rebuild only)."""

    def __init__(self, client: Any, ratings_table: str, shelves_table: str = "") -> None:
        self._client = client
        self._sources = [(ratings_table, "updated_at")]
        if shelves_table:
            self._sources.append((shelves_table, "shelved_at"))
        self.reads = 0

    async def events(self, since: str) -> AsyncIterator[list[ActivityEvent]]:
        """Each page's events stamped at or after `since` (the filter saves transfer, not read units)."""
        for table, stamp in self._sources:
            request: dict[str, Any] = {
                "TableName": table, "ProjectionExpression": "book_id, user_id, #at",
                "FilterExpression": "#at >= :since", "ExpressionAttributeNames": {"#at": stamp},
                "ExpressionAttributeValues": {":since": {"S": since}}}
            while True:
                response = await self._client.scan(**request)
                self.reads += count_read("build", response)
                yield [ActivityEvent(item["book_id"]["S"], item["user_id"]["S"], epoch_seconds(item[stamp]["S"]))
                       for item in response.get("Items", [])]
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


async def rebuild_if_lost(activity: ActivityLog, tables: ActivityTables) -> int | None:
    """Replay the tables into the activity if its marker is gone; the events replayed, or None if the
    activity was whole (nothing done). Redis failures are raised: the builder's run reports them."""
    if not activity.enabled or await activity.complete():
        return None
    replayed = 0
    async for page in tables.events(activity.horizon_stamp()):
        replayed += await activity.add(page)
    await activity.mark_complete()
    log.info("trending rebuilt from the tables: %d events replayed, %d items read", replayed, tables.reads)
    return replayed
