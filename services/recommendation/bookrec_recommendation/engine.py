"""Holds the current model and answers requests with it.

With an artifact bucket the model is the builder's (`bookrec_recommendation.builder`, once per fleet):
a replica waits for the first artifact, loads it, and swaps in newer ones as they are published; it
never scans a table. Without one, the process builds its own from one Scan of each table. Either way
the model is decoded or built off the request path (in a worker thread) and swapped in with a single
assignment: a request sees the old model or the new one, never a mix. Concurrent cache misses for the
same user share one computation.

Cache coherence across replicas (see RecommendationCache): a computation reads the user's cache
generation before their ratings and stores its list only if no invalidation came in between, on any
replica. An invalidation also forgets this replica's computation in flight for the user, so a request
after it never joins a computation that read the ratings before it. A list is cached only if the
ratings read show the user's latest accepted change (`freshness`: the by-user index may lag); else it
is answered uncached (counted).

Readers without ratings (new ids, and anyone may ask for any id) all get the model's popularity list:
one list per model, held here, and nothing cached per id, so unknown ids cost Redis no memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from bookrec_common.artifacts import ArtifactFollower, ArtifactStore, Manifest

from bookrec_recommendation.artifact import load
from bookrec_recommendation.builder import build_recommender
from bookrec_recommendation.freshness import AcceptedChange, shows
from bookrec_recommendation.model import Recommender
from bookrec_recommendation.store import (
    CACHE_HITS,
    CACHE_MISSES,
    CachedRecommendations,
    Deletion,
    RatingsSource,
    RecommendationCache,
)

log = logging.getLogger("bookrec.recommendation")
MODEL_BOOKS = Gauge("recommendation_model_books", "Books in the collaborative model")
MODEL_BYTES = Gauge("recommendation_model_bytes", "Bytes held by the collaborative model's weights")
MODEL_AGE = Gauge("recommendation_model_built_timestamp_seconds", "When the current model was built")
LAGGING_READS = Counter(
    "recommendation_cache_lagging_reads_total",
    "Computed lists answered but not cached: the ratings read did not show the user's latest accepted "
    "change yet (the by-user index lagging the write)")
SHARED_POPULARITY = Counter(
    "recommendation_shared_popularity_total",
    "Answers to readers without ratings from the model's one popularity list (nothing cached per id)")


@dataclass(frozen=True)
class Computed:
    recommendations: CachedRecommendations
    generation: int | None  # read before the ratings (what `cache.put` checks)
    shows_latest: bool  # the ratings read show the latest accepted change recorded
    shared: bool  # the model's popularity list, for readers without ratings: never cached per user


@dataclass(frozen=True)
class BuildReport:
    version: str
    books: int
    seconds: float
    active_users: list[str]


class RecommendationEngine:
    def __init__(self, source: RatingsSource, cache: RecommendationCache, cached_length: int, neighbours: int,
                 regularisation: float, *, artifacts: ArtifactStore | None = None, poll_seconds: float = 60.0,
                 after_ratings_read: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.source = source
        self.follower = ArtifactFollower(artifacts, self._install, poll_seconds) if artifacts else None
        self.cache = cache
        self.cached_length = cached_length
        self.neighbours = neighbours
        self.regularisation = regularisation
        self.recommender: Recommender | None = None
        self._in_flight: dict[str, asyncio.Future[tuple[CachedRecommendations, str]]] = {}
        self._popular: tuple[Recommender, CachedRecommendations] | None = None
        self._build_lock = asyncio.Lock()
        self._refresh_task: asyncio.Task[None] | None = None
        # Test seam: awaited with the user id between reading their ratings and storing the list, so a
        # test can hold a computation there (a race between replicas made deterministic). None: no pause.
        self.after_ratings_read = after_ratings_read

    @property
    def ready(self) -> bool:
        return self.recommender is not None

    def _swap(self, recommender: Recommender) -> None:
        self.recommender = recommender  # the atomic swap
        MODEL_BOOKS.set(len(recommender.model.book_ids))
        MODEL_BYTES.set(recommender.model.nbytes)
        MODEL_AGE.set(recommender.built_at)

    async def _install(self, manifest: Manifest, payload: bytes) -> None:
        recommender = await asyncio.to_thread(load, payload)
        recommender.model.version = f"v{manifest.version}"  # responses name the artifact they come from
        self._swap(recommender)
        log.info("model %s loaded: %d books", recommender.version, len(recommender.model.book_ids))

    async def rebuild(self) -> BuildReport:
        """Build from the tables (no artifact bucket), or load the newest artifact if newer."""
        async with self._build_lock:
            started = time.perf_counter()
            if self.follower is not None:
                await self.follower.check()
                recommender = self.recommender
                if recommender is None:
                    raise RuntimeError("no model artifact published yet")
            else:
                reads = self.source.build_reads
                recommender = await build_recommender(self.source, self.neighbours, self.regularisation)
                self._swap(recommender)
                log.info("model %s built from %d items read in %.2fs", recommender.version,
                         self.source.build_reads - reads, time.perf_counter() - started)
            return BuildReport(recommender.version, len(recommender.model.book_ids),
                               time.perf_counter() - started, recommender.active_users)

    async def refresh_forever(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await self.rebuild()
            except Exception:  # noqa: BLE001 - keep serving the old model; try again next period
                log.exception("periodic model rebuild failed")

    def start_refresh(self) -> bool:
        """Rebuild and pre-warm in the background. True if this call started it; False if it joined the
        requested refresh still running. (A periodic rebuild running meanwhile is not joined: the new
        refresh starts after it, so ratings written since the periodic scan began are included.)"""
        if self._refresh_task is not None and not self._refresh_task.done():
            return False
        self._refresh_task = asyncio.create_task(self._refresh())
        return True

    async def _refresh(self) -> None:
        try:
            report = await self.rebuild()
            await self.warm(report.active_users)
        except Exception:  # noqa: BLE001 - the old model keeps serving
            log.exception("requested model refresh failed")

    async def warm(self, user_ids: list[str]) -> int:
        """Pre-compute and cache recommendations for these users (after a rebuild)."""
        for user_id in user_ids:
            await self._keep(user_id, await self._compute(user_id))
        return len(user_ids) if self.cache.enabled else 0

    async def _compute(self, user_id: str) -> Computed:
        """The user's list, with what decides whether it may be cached."""
        recommender = self.recommender
        assert recommender is not None
        state = await self.cache.state(user_id)
        read = await self.source.ratings_of(user_id)
        if self.after_ratings_read is not None:
            await self.after_ratings_read(user_id)
        if read.empty:
            return Computed(self._shared_popular(recommender), state.generation, True, shared=True)
        strategy, picks = recommender.recommend(read.stars, self.cached_length)
        return Computed(CachedRecommendations(strategy, recommender.version,
                                              [(p.book_id, p.score, p.reason) for p in picks]),
                        state.generation, shows(read, state.latest), shared=False)

    def _shared_popular(self, recommender: Recommender) -> CachedRecommendations:
        """The model's popularity list, computed once per model for every reader without ratings."""
        held = self._popular
        if held is None or held[0] is not recommender:
            strategy, picks = recommender.recommend({}, self.cached_length)
            held = self._popular = (recommender, CachedRecommendations(
                strategy, recommender.version, [(p.book_id, p.score, p.reason) for p in picks]))
        return held[1]

    async def _keep(self, user_id: str, computed: Computed) -> None:
        """Cache a computed list, unless it is the shared one or its ratings read lagged the latest change."""
        if computed.shared:
            SHARED_POPULARITY.inc()
            return
        if not computed.shows_latest:
            LAGGING_READS.inc()
            log.debug("list of %s not cached: its ratings read lags the latest accepted change", user_id,
                     extra={"user_id": user_id})
            return
        await self.cache.put(user_id, computed.recommendations, computed.generation)

    async def recommendations(self, user_id: str) -> tuple[CachedRecommendations, str]:
        """(recommendations, source) where source is "cache" or "computed"."""
        cached = await self.cache.get(user_id)
        if cached is not None:
            CACHE_HITS.inc()
            return cached, "cache"
        pending = self._in_flight.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)
        CACHE_MISSES.inc()
        future: asyncio.Future[tuple[CachedRecommendations, str]] = asyncio.get_running_loop().create_future()
        self._in_flight[user_id] = future
        try:
            computed = await self._compute(user_id)
            await self._keep(user_id, computed)
            future.set_result((computed.recommendations, "computed"))
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # consumed here; waiters still see it
            raise
        finally:
            if self._in_flight.get(user_id) is future:  # an invalidation may have forgotten it already
                del self._in_flight[user_id]
        return computed.recommendations, "computed"

    async def invalidate(self, user_id: str, change: AcceptedChange | None = None) -> Deletion:
        """Forget the user's cached list everywhere and this replica's computation of it in flight;
        `change`, the accepted rating it is for, is what a list must show to be cached from now on."""
        self._in_flight.pop(user_id, None)  # its waiters still get its answer; later requests compute anew
        return await self.cache.delete(user_id, change)

    def describe(self, book_id: str) -> tuple[str, list[str]] | None:
        recommender = self.recommender
        entry = recommender.catalogue.entries.get(book_id) if recommender else None
        return (entry.title, list(entry.authors)) if entry else None
