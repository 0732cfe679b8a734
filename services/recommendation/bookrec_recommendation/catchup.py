"""What the recommender's two sides share about the books change feed: whether a model is behind it.

A model is complete up to its watermark: when the table reads it was trained from began, less a margin
(writers' clocks, commit delays). Every accepted rating stamps its book's change, so "has anything
changed since the watermark?" is one Limit-1 Query per feed shard (at most 8 items read), where
training again costs a Scan of both tables. The builder asks before each build (an unchanged fleet
publishes nothing); a process without an artifact bucket asks before each periodic rebuild.
"""

from __future__ import annotations

from bookrec_catalog.catalog import iso_stamp
from bookrec_common.feed import ChangeFeed, epoch_of

# Writes stamped this long before a model's reads began may have missed them (clocks, commit delays):
# a change that recent since the last model triggers the next one.
CHANGE_MARGIN_SECONDS = 5.0


def watermark(reads_began: float, margin_seconds: float = CHANGE_MARGIN_SECONDS) -> str:
    """The feed position complete in a model trained from reads that began at `reads_began` (epoch s)."""
    return iso_stamp(reads_began - margin_seconds)


async def behind(feed: ChangeFeed, model_watermark: str | None) -> bool:
    """Whether any book changed after `model_watermark` (None: there is no model yet, so it is behind)."""
    return model_watermark is None or await feed.changed_since(epoch_of(model_watermark))
