"""Catching index parts up with the books change feed: what a replica and the builder both do.

Parts are complete up to a feed position (an artifact's watermark, a replica's last read). The feed
(`bookrec_common.feed`) is read from that position less an overlap (writers' clocks, the GSI's
propagation delay) up to now, and the added, changed (rating aggregates included) and deleted books are
merged in (`refresh.updated`, on a worker thread: numpy releases the GIL for the heavy parts), at a read
cost of the changed items alone. The new position is when the read began.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bookrec_common.feed import ChangeFeed, latest_of
from bookrec_search.parts import IndexParts
from bookrec_search.refresh import updated


async def caught_up(feed: ChangeFeed, parts: IndexParts, position: float, overlap: float,
                    clock: Callable[[], float]) -> tuple[IndexParts, float, int]:
    """`parts` (complete up to `position`) with every change since merged in: (parts, new position, records
    read). The parts given are returned as they are when nothing changed."""
    started = clock()
    records = await feed.since(position - overlap, started)
    changed, deleted = latest_of(records)
    if changed or deleted:
        parts = await asyncio.to_thread(updated, parts, changed, deleted)
    return parts, started, len(records)
