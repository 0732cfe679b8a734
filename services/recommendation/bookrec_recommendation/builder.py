"""The recommendation builder: one model per fleet, published to S3
(`python -m bookrec_recommendation.builder`).

A build reads the whole ratings and books tables (one Scan each), only when something changed since the
newest artifact's watermark (`catchup`). The replicas pick the new model up and swap it in (`live`).
Under the same lease, every run first rebuilds the trending activity from the ratings and shelves tables
if Redis lost it (`trending_store.rebuild_if_lost`; one marker read when it did not), then sets the
books' imported activity changed since the last run (`trending_store.sync_imported`: the change feed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bookrec_common.activity import ActivityLog
from bookrec_common.artifacts import ArtifactStore, Manifest
from bookrec_common.builder import Built, build_with, main
from bookrec_common.clients import redis_client_for
from bookrec_common.feed import ChangeFeed
from bookrec_recommendation.artifact import KIND, dump
from bookrec_recommendation.catchup import CHANGE_MARGIN_SECONDS, behind, watermark
from bookrec_recommendation.model import train
from bookrec_recommendation.settings import ModelSettings, get_model_settings
from bookrec_recommendation.store import RatingsSource
from bookrec_recommendation.trending_store import ActivityTables, ImportedActivity, keep_trending


class ModelBuild:
    def __init__(self, source: RatingsSource, feed: ChangeFeed, neighbours: int, regularisation: float,
                 clock: Callable[[], float] = time.time,
                 margin_seconds: float = CHANGE_MARGIN_SECONDS,
                 trending: Callable[[], Awaitable[object]] | None = None) -> None:
        self._source = source
        self._trending = trending
        self._feed = feed
        self._neighbours = neighbours
        self._regularisation = regularisation
        self._clock = clock
        self._margin = margin_seconds

    async def __call__(self, previous: Manifest | None) -> Built | None:
        if self._trending is not None:  # derived state too, rebuilt from the tables only if Redis lost it
            await self._trending()
        if previous is not None and not await behind(self._feed, previous.watermark):
            return None
        started = self._clock()
        reads_before = self._source.build_reads
        data = await self._source.training_data()
        recommender = await asyncio.to_thread(train, data, self._neighbours, self._regularisation)
        payload = await asyncio.to_thread(dump, recommender)
        return Built(payload, watermark(started, self._margin), len(recommender.model.book_ids),
                     self._source.build_reads - reads_before)


async def build(settings: ModelSettings, every: float) -> None:
    async with redis_client_for(settings, timeout=5.0) as redis:
        activity = ActivityLog(redis)

        def model_build(dynamodb: Any, store: ArtifactStore) -> ModelBuild:
            source = RatingsSource(dynamodb, settings.books_table, settings.ratings_table,
                                   settings.scan_segments)
            tables = ActivityTables(dynamodb, settings.ratings_table, settings.shelves_table)
            imported = ImportedActivity(dynamodb, settings.books_table)
            return ModelBuild(source, ChangeFeed(dynamodb, settings.books_table), settings.neighbours,
                              settings.regularisation, trending=lambda: keep_trending(activity, tables, imported))

        await build_with(settings, KIND, model_build, every)


def run() -> None:
    main("Build the recommendation model once for the fleet and publish it to the artifact bucket.",
         get_model_settings, build)


if __name__ == "__main__":
    run()
