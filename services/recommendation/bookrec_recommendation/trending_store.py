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

Imported activity (`sync_imported`, run by the builder right after): the books' `imported_activity` (the
Open Library dumps' dated events, which `bookrec-etl load` stores on the books) is set as each book's share
of the counts (`ActivityLog.set_imported`: set, not added, so a repeat changes nothing). Each run reads only
the books changed since the last one (the change feed: a load restamps exactly the books it changes); the
first run after the state was lost, or after a gap longer than the feed's retention, Scans the books.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from prometheus_client import Counter

from bookrec_catalog.dynamo import from_item
from bookrec_catalog.imported_activity import IMPORTED_ACTIVITY
from bookrec_common.activity import SHARE_SECONDS, ActivityCounts, ActivityEvent, ActivityLog, epoch_seconds
from bookrec_common.clients import redis_unavailable
from bookrec_common.feed import ChangeFeed, FeedGap, count_read
from bookrec_common.lease import Lease, LeaseUnavailable
from bookrec_recommendation.catchup import CHANGE_MARGIN_SECONDS
from bookrec_recommendation.trending import (
    WINDOW_HOURS,
    TrendingBook,
    imported_hours,
    ranked_by_events,
    ranked_by_z,
)

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


# A book and its imported activity as stored (None: none).
ImportedShare = tuple[str, Any]


class ImportedActivity:
    """The books' imported activity, for `sync_imported`: the books changed after a position (the change
    feed, each changed item read once), or every book that holds some (one Scan, filtered)."""

    def __init__(self, client: Any, books_table: str) -> None:
        self._client = client
        self._table = books_table
        self._feed = ChangeFeed(client, books_table, "book_id, #activity", {"#activity": IMPORTED_ACTIVITY})
        self.reads = 0

    async def changed_since(self, after: float, now: float) -> list[ImportedShare]:
        """Every book changed after `after` (a deleted one: no activity); FeedGap past the feed's retention."""
        before = self._feed.items_read
        records = await self._feed.since(after, now)
        self.reads += self._feed.items_read - before
        latest = {record["book_id"]: record for record in records if isinstance(record.get("book_id"), str)}
        return [(book_id, None if "deleted_at" in record else record.get(IMPORTED_ACTIVITY))
                for book_id, record in latest.items()]

    async def every_book(self) -> AsyncIterator[list[ImportedShare]]:
        """Each page of the books that hold imported activity (the Scan reads, and bills, every book)."""
        request: dict[str, Any] = {
            "TableName": self._table, "ProjectionExpression": "book_id, #activity",
            "FilterExpression": "attribute_exists(#activity) AND attribute_not_exists(deleted_at)",
            "ExpressionAttributeNames": {"#activity": IMPORTED_ACTIVITY}}
        while True:
            response = await self._client.scan(**request)
            self.reads += count_read("build", response)
            yield [(item["book_id"]["S"], from_item(item).get(IMPORTED_ACTIVITY)) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


async def sync_imported(activity: ActivityLog, source: ImportedActivity,
                        clock: Callable[[], float] = time.time) -> int | None:
    """Set the trending share of every book whose imported activity may have changed since the last sync;
    the books whose share changed, or None with trending off. Idempotent: a share set twice counts once.
    Redis failures are raised: the builder's run reports them."""
    if not activity.enabled:
        return None
    began = clock()
    now_hour, kept = activity.hour_now(), activity.kept_hours
    position = await activity.imported_position()
    shares: list[ImportedShare] | None = None
    if position is not None:
        try:
            shares = await source.changed_since(position, began)
        except FeedGap as exc:
            log.warning("trending: imported activity resynced from a Scan of the books (%s)", exc)
    changed = 0
    if shares is not None:
        changed = await activity.set_imported((b, imported_hours(a, now_hour, kept)) for b, a in shares)
    else:
        held, seen = await activity.imported_books(), set[str]()
        async for page in source.every_book():
            seen.update(book_id for book_id, _ in page)
            changed += await activity.set_imported((b, imported_hours(a, now_hour, kept)) for b, a in page)
        changed += await activity.set_imported((book_id, {}) for book_id in sorted(held - seen))
    # Changes stamped shortly before `began` may not have reached the feed's index yet: read them again next time.
    await activity.set_imported_position(began - CHANGE_MARGIN_SECONDS)
    if changed:
        log.info("trending: imported activity of %d books set (%d items read)", changed, source.reads)
    return changed


async def keep_trending(activity: ActivityLog, tables: ActivityTables, imported: ImportedActivity) -> None:
    """The builder's trending step: rebuild from the tables if Redis lost the activity, then apply the books'
    imported activity changed since the last run."""
    await rebuild_if_lost(activity, tables)
    await sync_imported(activity, imported)
