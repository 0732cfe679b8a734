"""A process without an artifact bucket: it trains its own model at start, then again each period only if
the change feed shows a change since the model's watermark (`catchup`, as the builder asks)."""

from __future__ import annotations

import asyncio
import threading

from litestar.testing import AsyncTestClient

from bookrec_common.feed import ChangeFeed
from bookrec_recommendation.app import create_app
from bookrec_recommendation.catchup import CHANGE_MARGIN_SECONDS

from .test_api import seed, settings_for, wait_ready
from .test_artifacts import rate_as_ratings_does

BOUND = 30.0  # seconds: generous; each awaited condition comes within a few periods


class FeedLooks:
    """Counts the 'anything changed?' looks at the feed (thread-safe: the app runs on its own thread)."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        self._lock = threading.Lock()
        looked = ChangeFeed.changed_since

        async def counted(feed: ChangeFeed, after: float) -> bool:
            changed = await looked(feed, after)
            with self._lock:
                self.count += 1
            return changed

        monkeypatch.setattr(ChangeFeed, "changed_since", counted)

    async def until_more_than(self, count: int) -> None:
        async with asyncio.timeout(BOUND):
            while self.count <= count:
                await asyncio.sleep(0.02)


async def test_an_unchanged_feed_trains_nothing_and_a_change_trains_the_next_model(
        tables, dynamodb, redis_url, issuer, monkeypatch):
    seed(dynamodb, tables)  # rated and catalogued, not stamped: the feed shows nothing
    looks = FeedLooks(monkeypatch)
    settings = settings_for(tables, redis_url, issuer, model_refresh_seconds=0.05)
    async with AsyncTestClient(create_app(settings)) as client:
        await wait_ready(client)
        live = client.app.state.engine.live
        first, reads = live.recommender.version, live.source.build_reads
        assert reads > 0  # the start scanned the tables: there is no artifact bucket
        await looks.until_more_than(3)  # a few periods, each one look at the feed
        assert live.recommender.version == first and live.source.build_reads == reads  # no scan at all

        rate_as_ratings_does(dynamodb, tables, "reader3", "OL8W")  # the rating, and its book's stamp
        async with asyncio.timeout(BOUND):
            while live.recommender.version == first:
                await asyncio.sleep(0.02)
        assert live.source.build_reads > reads

        # A change within the margin before a model's reads may be missing from it: trained again until a
        # model's watermark passes the change; from then on, nothing.
        book = dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": "OL8W"}})["Item"]
        async with asyncio.timeout(BOUND + CHANGE_MARGIN_SECONDS):
            while live.watermark <= book["changed_at"]["S"]:
                await asyncio.sleep(0.02)
        # Looks are one at a time, each after the last training: every one from now on finds nothing.
        settled, reads = live.recommender.version, live.source.build_reads
        await looks.until_more_than(looks.count + 3)
        assert live.recommender.version == settled and live.source.build_reads == reads
