"""The replica's index: loaded at start, kept fresh from the change feed, swapped atomically (driven by
app.py's lifespan through `bookrec_common.replica`).

Load: from the newest artifact when there is an artifact bucket (the builder publishes one per fleet; a
replica never scans the table then, and waits, not ready, until the first one exists), else from a
parallel Scan of the table (a single process, tests). `/ready` answers 503 until an index is in place.

Freshness: every `refresh_seconds` the change feed is read from the index's position (`catchup`): added,
changed (rating aggregates included) and deleted books, at a cost of the changed items alone. A newer
artifact, looked for every `artifact_poll_seconds`, is loaded and caught up from its own watermark
before it is swapped in, so a swap never steps back in time. A position older than the feed's
retention reloads from the newest artifact: never a silent gap.

Changes are merged into a new index on worker threads and swapped in with one assignment; requests keep
reading the old index meanwhile. The artifact store unreachable: the current index keeps serving (and
following the feed), `/ready` says degraded, and the next look waits longer each time
(`bookrec_common.follower.ArtifactFollower`).

While the index is loading (or disabled by configuration) autocomplete is answered from the title-prefix
GSI; identical prefixes asked at the same time share one Query, and answers are kept for
`fallback_cache_seconds`.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge

from bookrec_common.artifacts import ArtifactStore, Manifest, Payload
from bookrec_common.feed import ChangeFeed, FeedGap, epoch_of
from bookrec_common.follower import ArtifactFollower
from bookrec_search import kernels
from bookrec_search.artifact import load as load_artifact
from bookrec_search.building import IndexBuilder
from bookrec_search.catchup import caught_up
from bookrec_search.documents import suggestion_key
from bookrec_search.index import BLOCK_TOP, SearchIndex
from bookrec_search.refresh import updated as refreshed
from bookrec_search.store import BookSource

log = logging.getLogger("bookrec.search")
INDEX_DOCUMENTS = Gauge("search_index_documents", "Books in the live search index")
INDEX_TERMS = Gauge("search_index_terms", "Distinct words in the live search index")
INDEX_BYTES = Gauge("search_index_bytes", "Bytes held by the live search index")
INDEX_SWAPPED = Gauge("search_index_swapped_timestamp_seconds", "When the live index was last swapped in")
INDEX_BUILD_SECONDS = Gauge("search_index_last_build_seconds", "Duration of the last index build or merge")
FEED_LAG = Gauge("search_feed_lag_seconds", "Age of the live index's change-feed position")
REFRESH_CHANGES = Counter("search_index_refreshed_books", "Changed books read by index refreshes")
REFRESH_FAILURES = Counter("search_index_refresh_failures", "Index loads and refreshes that failed")
FALLBACK_QUERIES = Counter("search_autocomplete_fallback_queries", "Autocomplete answers taken from the GSI")

FALLBACK_CACHE_ENTRIES = 1024
# How many titles match a prefix, and the best BLOCK_TOP of them in order.
SuggestionPage = tuple[int, list[dict[str, Any]]]


def pretouch(nbytes: int) -> None:
    """Faults in `nbytes` of heap and frees them: an allocator that keeps what is freed (MALLOC_MMAP_MAX_=0,
    a trim threshold above it) serves the next allocations from these pages, so a replica's first refreshes
    find their memory in place, the way the JVM's AlwaysPreTouch does for its heap."""
    started = time.perf_counter()
    block = np.ones(nbytes, dtype=np.uint8)  # every page written
    del block
    log.info("pre-touched %.1f GB of heap for refreshes in %.1fs", nbytes / 1e9, time.perf_counter() - started)


class LiveIndex:
    """This replica's index (`bookrec_common.replica.Live`) and, while it has none, the GSI's answers."""

    def __init__(self, source: BookSource, feed: ChangeFeed, artifacts: ArtifactStore | None = None, *,
                 enabled: bool = True, refresh_seconds: float = 30.0, refresh_overlap_seconds: float = 15.0,
                 poll_seconds: float = 60.0, fallback_cache_seconds: float = 10.0, pretouch_ratio: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.feed = feed
        self.follower = ArtifactFollower(artifacts, self._install, poll_seconds) if artifacts else None
        self.enabled = enabled
        self.index: SearchIndex | None = None
        self._period = refresh_seconds
        self._overlap = refresh_overlap_seconds
        self._clock = clock
        self._position: float | None = None  # changes up to here are in the index
        self._fallback_ttl = fallback_cache_seconds
        self._fallback: OrderedDict[str, tuple[float, asyncio.Task[SuggestionPage]]] = OrderedDict()
        self._pretouch_ratio = pretouch_ratio  # times the first index's bytes, faulted in once (`pretouch`)
        self.pretouching: threading.Thread | None = None
        # The compiled loops compiled while the first artifact downloads (~12 s of one core, whatever the
        # catalogue's size), not after it: warming an index then finds them compiled.
        self.compiling = threading.Thread(target=kernels.compile_all, name="compile", daemon=True)
        if enabled:
            self.compiling.start()
        FEED_LAG.set_function(lambda: self._clock() - self._position if self._position is not None else 0.0)

    @property
    def ready(self) -> bool:
        return self.index is not None

    @property
    def position(self) -> float | None:
        return self._position

    def state(self) -> dict[str, Any]:
        """What `/ready` shows of the index: its size, and how fresh it is."""
        return {"books": self.index.size if self.index is not None else 0,
                "feed_lag_seconds": round(self._clock() - self._position, 1) if self._position else None}

    def _publish(self, index: SearchIndex, position: float, seconds: float) -> None:
        if self.index is None and self._pretouch_ratio and os.environ.get("MALLOC_MMAP_MAX_") == "0":
            # A daemon thread: numpy writes the pages without the GIL, and it never holds a shutdown up.
            self.pretouching = threading.Thread(target=pretouch, args=(int(index.nbytes * self._pretouch_ratio),),
                                                name="pretouch", daemon=True)
            self.pretouching.start()
        self.index, self._position = index, position
        INDEX_DOCUMENTS.set(index.size)
        INDEX_TERMS.set(index.terms)
        INDEX_BYTES.set(index.nbytes)
        INDEX_SWAPPED.set(time.time())
        INDEX_BUILD_SECONDS.set(seconds)

    async def load(self) -> None:
        """Build the index from a full Scan of the table (no artifact bucket)."""
        started = self._clock()
        builder = IndexBuilder()
        read = await self.source.scan(builder.add_all)
        building = time.perf_counter()
        index = await asyncio.to_thread(lambda: SearchIndex(builder.build()).warmed())
        self._publish(index, started, time.perf_counter() - building)
        log.info("index of %d books loaded from the table in %.1fs", read, self._clock() - started)

    async def _install(self, manifest: Manifest, payload: Payload) -> None:
        """Decode a checked artifact (its arrays views into `payload`, no copy) and catch it up from its
        watermark before swapping it in, so a swap never steps back in time."""
        started = time.perf_counter()
        parts = await asyncio.to_thread(load_artifact, payload)
        parts, position, read = await caught_up(self.feed, parts, epoch_of(manifest.watermark), self._overlap,
                                                self._clock, refreshed)
        index = await asyncio.to_thread(lambda: SearchIndex(parts).warmed())
        self._publish(index, position, time.perf_counter() - started)
        log.info("index version %d (%d books) loaded in %.1fs, %d changes since its watermark",
                 manifest.version, index.size, time.perf_counter() - started, read)

    async def refresh(self) -> int:
        """Merge the changes since the index's position; returns how many change records were read."""
        if self.index is None or self._position is None:
            raise RuntimeError("refresh before the first load")
        current = self.index
        merging = time.perf_counter()
        # The index carries what queries derive from it (suggestion order, heads, bitmaps) through the
        # changes: a refresh costs what changed, not a new index's derivation.
        index, position, read = await caught_up(self.feed, current, self._position, self._overlap, self._clock,
                                                SearchIndex.updated)
        if self.index is not current:
            return read  # a newer artifact was swapped in meanwhile: it is caught up on its own
        if index is not current:
            self._publish(index, position, time.perf_counter() - merging)
            log.info("index refreshed: %d changes read, now %d books", read, index.size)
        else:
            self._position = position
        REFRESH_CHANGES.inc(read)
        return read

    async def _reload(self) -> None:
        if self.follower is not None:
            await self.follower.check(force=True)
        else:
            await self.load()

    async def keep_fresh(self) -> None:
        """Follow the feed every `refresh_seconds` (0: never), until cancelled; a feed position past its
        retention reloads the index."""
        while self._period > 0:
            await asyncio.sleep(self._period)
            try:
                await self.refresh()
            except FeedGap as exc:
                log.warning("%s: reloading", exc)
                try:
                    await self._reload()
                except Exception:
                    REFRESH_FAILURES.inc()
                    log.exception("reload after a feed gap failed")
            except Exception:
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
        total = 0
        best: list[dict[str, Any]] = []
        async for page in self.source.titles_with_prefix(normalised_prefix):
            total += len(page)
            best = heapq.nsmallest(BLOCK_TOP, [*best, *page], key=suggestion_key)
        return total, best
