"""The replica's model: loaded, kept fresh and swapped in (driven by app.py's lifespan through
`bookrec_common.replica`).

With an artifact bucket the model is the builder's: a replica waits for the first artifact, loads it,
and swaps in newer ones as they are published; it never scans a table. Without one, the process trains
its own from one Scan of each table, and again every `MODEL_REFRESH_SECONDS` if the change feed shows
a change since (`catchup`). Either way the model is decoded or trained off the request path (in a worker
thread) and swapped in with a single assignment: a request sees the old model or the new one, never a
mix.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge

from bookrec_common.artifacts import ArtifactStore, Manifest, Payload
from bookrec_common.feed import ChangeFeed
from bookrec_common.follower import ArtifactFollower
from bookrec_recommendation.artifact import load
from bookrec_recommendation.catchup import behind, watermark
from bookrec_recommendation.model import Recommender, train
from bookrec_recommendation.store import RatingsSource

log = logging.getLogger("bookrec.recommendation")
MODEL_BOOKS = Gauge("recommendation_model_books", "Books in the collaborative model")
MODEL_BYTES = Gauge("recommendation_model_bytes", "Bytes held by the collaborative model's weights")
MODEL_AGE = Gauge("recommendation_model_built_timestamp_seconds", "When the current model was built")


@dataclass(frozen=True)
class BuildReport:
    version: str
    books: int
    seconds: float
    active_users: list[str]


class LiveModel:
    """The current model of this replica (`bookrec_common.replica.Live`)."""

    def __init__(self, source: RatingsSource, feed: ChangeFeed, neighbours: int, regularisation: float, *,
                 artifacts: ArtifactStore | None = None, poll_seconds: float = 60.0,
                 refresh_seconds: float = 0.0, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.follower = ArtifactFollower(artifacts, self._install, poll_seconds) if artifacts else None
        self.recommender: Recommender | None = None
        self.watermark: str | None = None  # the feed position the model is complete up to
        self._feed = feed
        self._neighbours = neighbours
        self._regularisation = regularisation
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = asyncio.Lock()  # one training or artifact check at a time

    @property
    def ready(self) -> bool:
        return self.recommender is not None

    def state(self) -> dict[str, Any]:
        return {"model_version": self.recommender.version if self.recommender else None}

    def _swap(self, recommender: Recommender, model_watermark: str) -> None:
        self.recommender, self.watermark = recommender, model_watermark  # the atomic swap
        MODEL_BOOKS.set(len(recommender.model.book_ids))
        MODEL_BYTES.set(recommender.model.nbytes)
        MODEL_AGE.set(recommender.built_at)

    async def _install(self, manifest: Manifest, payload: Payload) -> None:
        recommender = await asyncio.to_thread(load, payload)
        recommender.model.version = f"v{manifest.version}"  # responses name the artifact they come from
        self._swap(recommender, manifest.watermark)
        log.info("model %s loaded: %d books", recommender.version, len(recommender.model.book_ids))

    async def _train(self) -> Recommender:
        began, started = self._clock(), time.perf_counter()
        reads = self.source.build_reads
        data = await self.source.training_data()
        recommender = await asyncio.to_thread(train, data, self._neighbours, self._regularisation)
        self._swap(recommender, watermark(began))
        log.info("model %s built from %d items read in %.2fs", recommender.version,
                 self.source.build_reads - reads, time.perf_counter() - started)
        return recommender

    async def load(self) -> None:
        """Train the first model from the tables (no artifact bucket)."""
        async with self._lock:
            await self._train()

    async def refresh(self) -> BuildReport:
        """Take up the builder's newest artifact if newer (with a bucket), else train anew from the tables."""
        async with self._lock:
            started = time.perf_counter()
            if self.follower is not None:
                await self.follower.check()
                recommender = self.recommender
                if recommender is None:
                    raise RuntimeError("no model artifact published yet")
            else:
                recommender = await self._train()
            return BuildReport(recommender.version, len(recommender.model.book_ids),
                               time.perf_counter() - started, recommender.active_users)

    async def keep_fresh(self) -> None:
        """Without a bucket, with a period: train again each period in which the feed shows a change.
        (With a bucket, newer artifacts are all there is to follow.)"""
        if self.follower is not None or self._refresh_seconds <= 0:
            return
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                if await behind(self._feed, self.watermark):
                    await self.refresh()
            except Exception:  # keep serving the old model; try again next period
                log.exception("periodic model rebuild failed")
