"""Catching an index up with the books change feed: what a replica and the builder both do.

An index is complete up to a feed position (an artifact's watermark, a replica's last read). The feed
(`bookrec_common.feed`) is read from that position less an overlap (writers' clocks, the GSI's
propagation delay) up to now, and the added, changed (rating aggregates included) and deleted books are
merged in on a worker thread (numpy releases the GIL for the heavy parts), at a read cost of the changed
items alone: into the parts by `refresh.updated` (the builder, an artifact just loaded), or into a whole
index by `SearchIndex.updated` (a serving replica: what queries derive from the index is carried over,
not derived afresh). The new position is when the read began.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from bookrec_common.feed import ChangeFeed, latest_of

State = TypeVar("State")  # index parts (the builder), or a whole index (a replica: `SearchIndex.updated`)


async def caught_up(feed: ChangeFeed, state: State, position: float, overlap: float, clock: Callable[[], float],
                    merge: Callable[[State, Sequence[Mapping[str, Any]], Sequence[str]], State],
                    ) -> tuple[State, float, int]:
    """`state` (complete up to `position`) with every change since merged in by `merge(state, changed,
    deleted)` (`refresh.updated` for parts): (state, new position, records read). The state given is
    returned as it is when nothing changed."""
    started = clock()
    records = await feed.since(position - overlap, started)
    changed, deleted = latest_of(records)
    if changed or deleted:
        state = await asyncio.to_thread(merge, state, changed, deleted)
    return state, started, len(records)
