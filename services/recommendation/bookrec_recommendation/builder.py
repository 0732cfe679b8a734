"""The recommendation builder: one model per fleet, published to S3 (`python -m bookrec_recommendation.builder`).

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
from contextlib import AsyncExitStack

from bookrec_common.artifacts import ArtifactStore, Manifest
from bookrec_common.builder import BuilderMisconfigured, Built, main, run_builds
from bookrec_common.clients import dynamodb_client, redis_client_for, s3_client
from bookrec_common.feed import ChangeFeed, epoch_of, iso_stamp
from bookrec_common.lease import Lease
from bookrec_common.logs import configure_logging

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
                 clock: Callable[[], float] = time.time, margin_seconds: float = CHANGE_MARGIN_SECONDS) -> None:
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
    if not settings.artifact_bucket or not settings.redis_url:
        raise BuilderMisconfigured("ARTIFACT_BUCKET and REDIS_URL must be set (the artifact bucket and the lease)")
    async with AsyncExitStack() as stack:
        dynamodb = await stack.enter_async_context(dynamodb_client(settings, bulk=True))
        s3 = await stack.enter_async_context(s3_client(settings, settings.s3_read_timeout))
        redis = await stack.enter_async_context(redis_client_for(settings, timeout=5.0))
        store = ArtifactStore(s3, settings.artifact_bucket, KIND)
        source = RatingsSource(dynamodb, settings.books_table, settings.ratings_table, settings.scan_segments)
        model_build = ModelBuild(source, ChangeFeed(dynamodb, settings.books_table), settings.neighbours,
                                 settings.regularisation)
        lease = Lease(redis, KIND, settings.build_lease_seconds, namespace=settings.artifact_bucket)
        await run_builds(lease, store, model_build, every)


def run() -> None:
    settings = get_model_settings()
    configure_logging(f"{settings.service_name}-builder", settings.log_level)
    main("Build the recommendation model once for the fleet and publish it to the artifact bucket.",
         lambda every: build(settings, every))


if __name__ == "__main__":
    run()
