"""The search builder: one index artifact per fleet, published to S3 (`python -m bookrec_search.builder`).

With no artifact yet (or an unreadable one, or one older than the feed's retention) it builds from a
full Scan of the books table. Otherwise it loads the newest artifact and merges the changes read from
the feed since its watermark (`catchup`): the table is read in full once, and then only what changed.
Nothing changed: no new artifact. The replicas (`live`) pick the new one up and swap it in. The builder
works on the index's parts alone: it never serves a query, so it computes none of what queries read.

The snapshot is written to a temporary file (`tempfile`'s directory: TMPDIR, else /tmp, on the task's
ephemeral storage on AWS, sized by `infrastructure/modules/search_sizing`) and published from it, so the
builder never holds the index and the snapshot's bytes together; the file is deleted once the run is over
(`bookrec_common.builder`), or at once if the dump fails or the build is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from bookrec_catalog.catalog import iso_stamp
from bookrec_common.artifacts import ArtifactStore, CorruptArtifact, Manifest
from bookrec_common.builder import Built, build_with, main
from bookrec_common.feed import ChangeFeed, FeedGap, epoch_of
from bookrec_search.artifact import KIND, dump_to, load
from bookrec_search.building import IndexBuilder
from bookrec_search.catchup import caught_up
from bookrec_search.parts import IndexParts
from bookrec_search.refresh import updated as merged
from bookrec_search.settings import SearchSettings, get_settings
from bookrec_search.store import BookSource, change_feed

log = logging.getLogger("bookrec.search.builder")


class IndexBuild:
    def __init__(self, source: BookSource, feed: ChangeFeed, store: ArtifactStore, overlap_seconds: float,
                 clock: Callable[[], float] = time.time, snapshot_dir: str | None = None) -> None:
        self._source = source
        self._feed = feed
        self._store = store
        self._overlap = overlap_seconds
        self._clock = clock
        self._snapshot_dir = snapshot_dir  # None: tempfile's default directory

    async def __call__(self, previous: Manifest | None) -> Built | None:
        if previous is not None:
            try:
                return await self._incremental(previous)
            except (CorruptArtifact, FeedGap) as exc:
                log.warning("cannot build on version %d (%s): building from the table", previous.version, exc)
        return await self._full()

    async def _incremental(self, previous: Manifest) -> Built | None:
        read_before = self._feed.items_read
        watermark = epoch_of(previous.watermark)
        if not await self._feed.changed_since(watermark - self._overlap):
            return None  # a few reads, rather than fetching and decoding the whole previous artifact
        parts = await asyncio.to_thread(load, await self._store.fetch(previous))
        updated, position, _ = await caught_up(self._feed, parts, watermark, self._overlap, self._clock,
                                               merged)
        if updated is parts:
            return None
        return await self._built(updated, position, self._feed.items_read - read_before)

    async def _full(self) -> Built:
        started = self._clock()
        builder = IndexBuilder()
        read = await self._source.scan(builder.add_all)
        parts = await asyncio.to_thread(builder.build)
        return await self._built(parts, started, read)

    async def _built(self, parts: IndexParts, position: float, reads: int) -> Built:
        descriptor, name = tempfile.mkstemp(prefix=f"{KIND}-", suffix=".snapshot", dir=self._snapshot_dir)
        snapshot = Path(name)
        try:
            # The file object is the thread's to close; should the thread never run, collecting it closes it.
            await asyncio.to_thread(_write, parts, os.fdopen(descriptor, "wb"))
        except BaseException:  # cancelled (the lease lost) included: no file left behind
            snapshot.unlink(missing_ok=True)
            raise
        return Built(snapshot, iso_stamp(position), parts.size, reads)


def _write(parts: IndexParts, file: BinaryIO) -> None:
    with file:
        dump_to(parts, file)


async def build(settings: SearchSettings, every: float) -> None:
    def index_build(dynamodb: Any, store: ArtifactStore) -> IndexBuild:
        source = BookSource(dynamodb, dynamodb, settings.books_table, settings.scan_segments)
        return IndexBuild(source, change_feed(dynamodb, settings.books_table), store,
                          settings.index_refresh_overlap_seconds)

    await build_with(settings, KIND, index_build, every)


def run() -> None:
    main("Build the search index once for the fleet and publish it to the artifact bucket.", get_settings,
         build)


if __name__ == "__main__":
    run()
