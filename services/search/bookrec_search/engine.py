"""The live search index: loaded in the background at start, kept fresh, swapped atomically.

Load: a parallel segmented Scan feeds an IndexBuilder page by page; the
arrays are built on a worker thread; `/ready` answers 503 until then.

Freshness: every `index_refresh_seconds` a filtered Scan reads the books whose
`updated_at` is after the start of the previous successful scan, less
`index_refresh_overlap_seconds` (the ratings service and the ETL stamp
`updated_at` on every change, rating aggregates included). The overlap covers
writers whose clocks lag ours or whose writes land a little after they were
stamped; re-reading a book that did not change costs nothing, as
`SearchIndex.updated` returns the same index. Changes are merged into a new
index on a worker thread (numpy releases the GIL for the heavy parts) and
swapped in with one assignment; requests keep reading the old index meanwhile.
Books deleted from the table stay searchable until the service restarts (no
route deletes books).

While the index is loading (or disabled by configuration) autocomplete is
answered from the title-prefix GSI; identical prefixes asked at the same
time share one Query, and answers are kept for `fallback_cache_seconds`.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge

from bookrec_search.index import BLOCK_TOP, IndexBuilder, SearchIndex, suggestion_key
from bookrec_search.store import BookSource

log = logging.getLogger("bookrec.search")
INDEX_DOCUMENTS = Gauge("search_index_documents", "Books in the live search index")
INDEX_TERMS = Gauge("search_index_terms", "Distinct words in the live search index")
INDEX_BYTES = Gauge("search_index_bytes", "Bytes held by the live search index")
INDEX_SWAPPED = Gauge("search_index_swapped_timestamp_seconds", "When the live index was last swapped in")
INDEX_BUILD_SECONDS = Gauge("search_index_last_build_seconds", "Duration of the last index build or merge")
REFRESH_CHANGES = Counter("search_index_refreshed_books", "Changed books read by index refreshes")
REFRESH_FAILURES = Counter("search_index_refresh_failures", "Index loads and refreshes that failed")
FALLBACK_QUERIES = Counter("search_autocomplete_fallback_queries", "Autocomplete answers taken from the GSI")

FALLBACK_CACHE_ENTRIES = 1024
# How many titles match a prefix, and the best BLOCK_TOP of them in order.
SuggestionPage = tuple[int, list[dict[str, Any]]]


def iso_stamp(epoch_seconds: float) -> str:
    """The same form as bookrec_common.catalog.utc_now(), so stamps compare as strings."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


class SearchEngine:
    def __init__(self, source: BookSource, *, enabled: bool = True, refresh_overlap_seconds: float = 60.0,
                 fallback_cache_seconds: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.enabled = enabled
        self.index: SearchIndex | None = None
        self._overlap = refresh_overlap_seconds
        self._clock = clock
        self._scanned_from: float | None = None  # start of the last successful scan
        self._fallback_ttl = fallback_cache_seconds
        self._fallback: OrderedDict[str, tuple[float, asyncio.Task[SuggestionPage]]] = OrderedDict()

    @property
    def ready(self) -> bool:
        return self.index is not None

    def _publish(self, index: SearchIndex, seconds: float) -> None:
        self.index = index
        INDEX_DOCUMENTS.set(index.size)
        INDEX_TERMS.set(index.terms)
        INDEX_BYTES.set(index.nbytes)
        INDEX_SWAPPED.set(time.time())
        INDEX_BUILD_SECONDS.set(seconds)

    async def load(self) -> None:
        started = self._clock()
        builder = IndexBuilder()
        read = await self.source.scan(builder.add_all)
        building = time.perf_counter()
        index = await asyncio.to_thread(builder.build)
        self._publish(index, time.perf_counter() - building)
        self._scanned_from = started
        log.info("index of %d books loaded in %.1fs", read, self._clock() - started)

    async def refresh(self) -> int:
        """Merge the books changed since the last scan; returns how many were read."""
        if self.index is None or self._scanned_from is None:
            raise RuntimeError("refresh before the first load")
        started = self._clock()
        changed: list[dict[str, Any]] = []
        await self.source.scan(changed.extend, updated_after=iso_stamp(self._scanned_from - self._overlap))
        if changed:
            merging = time.perf_counter()
            current = self.index
            updated = await asyncio.to_thread(current.updated, changed)
            if updated is not current:
                self._publish(updated, time.perf_counter() - merging)
                log.info("index refreshed: %d books read, now %d books", len(changed), updated.size)
            REFRESH_CHANGES.inc(len(changed))
        self._scanned_from = started
        return len(changed)

    async def run(self, period: float, retry_seconds: float = 5.0) -> None:
        """Load, then refresh every `period` seconds (0: never) until cancelled."""
        while self.index is None:
            try:
                await self.load()
            except Exception:  # noqa: BLE001 - DynamoDB not reachable yet: /ready says so; try again
                REFRESH_FAILURES.inc()
                log.exception("index load failed; retrying in %.0fs", retry_seconds)
                await asyncio.sleep(retry_seconds)
        while period > 0:
            await asyncio.sleep(period)
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - keep serving the current index; the next run catches up
                REFRESH_FAILURES.inc()
                log.exception("index refresh failed")

    async def suggestions_from_table(self, normalised_prefix: str) -> SuggestionPage:
        """How many titles start with the prefix, and the best BLOCK_TOP of them, from the GSI."""
        now = time.monotonic()
        entry = self._fallback.get(normalised_prefix)
        failed = entry is not None and entry[1].done() and (entry[1].cancelled() or entry[1].exception())
        if entry is None or entry[0] < now or failed:
            # One Query per prefix at a time, in its own task: a caller that goes away does not cancel it.
            task = asyncio.create_task(self._query_suggestions(normalised_prefix))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failures reach the callers
            entry = self._fallback[normalised_prefix] = (now + self._fallback_ttl, task)
            while len(self._fallback) > FALLBACK_CACHE_ENTRIES:
                self._fallback.popitem(last=False)
        return await asyncio.shield(entry[1])

    async def _query_suggestions(self, normalised_prefix: str) -> SuggestionPage:
        FALLBACK_QUERIES.inc()
        total, best = 0, []
        async for page in self.source.titles_with_prefix(normalised_prefix):
            total += len(page)
            best = heapq.nsmallest(BLOCK_TOP, [*best, *page], key=suggestion_key)
        return total, best
