"""The recommendation builder: one model per fleet, published to S3
(`python -m bookrec_recommendation.builder`).

A build reads the whole ratings and books tables (one Scan each) — only when something changed since
the newest artifact: every accepted rating stamps its book's change, so one Limit-1 Query per feed
shard answers "anything new?" for a handful of reads. The replicas pick the new model up and swap it in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bookrec_common.artifacts import ArtifactStore, Manifest
from bookrec_common.builder import Built, build_with, main
from bookrec_common.catalog import iso_stamp
from bookrec_common.feed import ChangeFeed, epoch_of

from bookrec_recommendation.artifact import dump
from bookrec_recommendation.model import Catalogue, ItemNeighbourModel, Recommender
from bookrec_recommendation.settings import ModelSettings, get_model_settings
from bookrec_recommendation.store import RatingsSource

log = logging.getLogger("bookrec.recommendation.builder")
KIND = "recommendation-model"
# Writes stamped this long before a build's scans began may have missed them (clocks, commit delays):
# a change that recent since the last build triggers the next one.
CHANGE_MARGIN_SECONDS = 5.0
ACTIVE_USERS = 200  # whose lists a refresh pre-warms


async def build_recommender(source: RatingsSource, neighbours: int, regularisation: float) -> Recommender:
    """The model and catalogue from one Scan of each table; the heavy part on a worker thread."""
    (users, books), catalogue = await asyncio.gather(source.all_ratings(), source.catalogue())

    def build() -> Recommender:
        model = ItemNeighbourModel.build(users, books, neighbours, regularisation)
        active = [user for user, _ in Counter(users).most_common(ACTIVE_USERS)]
        return Recommender(model, Catalogue(catalogue), active_users=active)

    return await asyncio.to_thread(build)


class ModelBuild:
    def __init__(self, source: RatingsSource, feed: ChangeFeed, neighbours: int, regularisation: float,
                 clock: Callable[[], float] = time.time,
                 margin_seconds: float = CHANGE_MARGIN_SECONDS) -> None:
        self._source = source
        self._feed = feed
        self._neighbours = neighbours
        self._regularisation = regularisation
        self._clock = clock
        self._margin = margin_seconds

    async def __call__(self, previous: Manifest | None) -> Built | None:
        if previous is not None and not await self._feed.changed_since(epoch_of(previous.watermark)):
            return None
        started = self._clock()
        reads_before = self._source.build_reads
        recommender = await build_recommender(self._source, self._neighbours, self._regularisation)
        payload = await asyncio.to_thread(dump, recommender)
        return Built(payload, iso_stamp(started - self._margin), len(recommender.model.book_ids),
                     self._source.build_reads - reads_before)


async def build(settings: ModelSettings, every: float) -> None:
    def model_build(dynamodb: Any, store: ArtifactStore) -> ModelBuild:
        source = RatingsSource(dynamodb, settings.books_table, settings.ratings_table, settings.scan_segments)
        return ModelBuild(source, ChangeFeed(dynamodb, settings.books_table), settings.neighbours,
                          settings.regularisation)

    await build_with(settings, KIND, model_build, every)


def run() -> None:
    main("Build the recommendation model once for the fleet and publish it to the artifact bucket.",
         get_model_settings, build)


if __name__ == "__main__":
    run()
