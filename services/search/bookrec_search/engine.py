"""Holds the live index: loaded in the background at start, refreshed, swapped atomically.

Freshness: every `index_refresh_seconds` a filtered Scan fetches the books
whose `updated_at` is after the newest one indexed (the ratings service
bumps `updated_at` with every aggregate change); they are merged into the
catalogue and a new index is built in a worker thread, then swapped in with
one assignment. Requests keep using the old index meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Gauge

from bookrec_search.index import Catalogue, SearchIndex
from bookrec_search.store import BookSource

log = logging.getLogger("bookrec.search")
INDEX_DOCUMENTS = Gauge("search_index_documents", "Books in the live search index")
INDEX_TERMS = Gauge("search_index_terms", "Distinct terms over all fields of the live index")
INDEX_BYTES = Gauge("search_index_bytes", "Bytes of the live index's arrays")
INDEX_BUILT = Gauge("search_index_built_timestamp_seconds", "When the live index was swapped in")


class SearchEngine:
    def __init__(self, source: BookSource) -> None:
        self.source = source
        self.index: SearchIndex | None = None
        self._catalogue = Catalogue()
        self._watermark: str | None = None

    @property
    def ready(self) -> bool:
        return self.index is not None

    async def _swap(self) -> None:
        started = time.perf_counter()
        index = await asyncio.to_thread(self._catalogue.build)
        self.index = index
        INDEX_DOCUMENTS.set(index.size)
        INDEX_TERMS.set(index.terms)
        INDEX_BYTES.set(index.nbytes)
        INDEX_BUILT.set(time.time())
        log.info("index of %d books built in %.2fs", index.size, time.perf_counter() - started)

    def _merge(self, records: list[dict]) -> None:
        self._catalogue.merge(records)
        stamps = [r["updated_at"] for r in records if r.get("updated_at")]
        if stamps:
            self._watermark = max([self._watermark or "", *stamps])

    async def load(self) -> None:
        self._merge(await self.source.scan())
        await self._swap()

    async def refresh(self) -> int:
        changed = await self.source.scan(updated_after=self._watermark)
        if changed:
            self._merge(changed)
            await self._swap()
        return len(changed)

    async def run(self, period: float) -> None:
        while not self.ready:
            try:
                await self.load()
            except Exception:  # noqa: BLE001 - DynamoDB not there yet: /ready says so; retry
                log.exception("index load failed; retrying")
                await asyncio.sleep(5)
        while period > 0:
            await asyncio.sleep(period)
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - keep serving the current index
                log.exception("index refresh failed")
