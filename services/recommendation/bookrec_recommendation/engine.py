"""Answers requests with the replica's current model (`live`), through the cache.

Cache coherence across replicas (see RecommendationCache): a computation reads the user's cache
generation before their ratings and stores its list only if no invalidation came in between, on any
replica. An invalidation also forgets this replica's computation in flight for the user, so a request
after it never joins a computation that read the ratings before it. A list is cached only if the
ratings read show the user's latest accepted change (`freshness`: the by-user index may lag); else it
is answered uncached (counted). Concurrent cache misses for the same user share one computation.

Readers without ratings or shelves (new ids, and anyone may ask for any id) all get the model's
popularity list: one list per model, held here, and nothing cached per id, so unknown ids cost Redis no
memory.

A reader's list leaves out everything they rated or shelved (both read per computation; a shelved book
counts as interest, `model.interest`). `exclude` and `subject` filter the cached list (the longest,
`cached_length`, for the reader alone) per request; when that leaves fewer than asked, the list is computed
afresh for the request with the exclusions and the subject (the model's picks among the subject's books,
then content and popularity among them), answered and never cached (counted).

Similar books (`similar`): a pure function of the model and the book, so kept in this process (an LRU
per model), not in Redis: computing one costs about what a Redis round trip does, no reader's write
changes it, and a replica swapping models drops all of them at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cachetools import LRUCache
from prometheus_client import Counter

from bookrec_recommendation.catalogue import Recommendation
from bookrec_recommendation.freshness import AcceptedChange, shows
from bookrec_recommendation.live import LiveModel
from bookrec_recommendation.model import Recommender, interest
from bookrec_recommendation.models import RecommendationSource
from bookrec_recommendation.similar import for_reader
from bookrec_recommendation.store import (
    CACHE_HITS,
    CACHE_MISSES,
    CachedRecommendations,
    Deletion,
    RatingsSource,
    RecommendationCache,
)

log = logging.getLogger("bookrec.recommendation")
LAGGING_READS = Counter(
    "recommendation_cache_lagging_reads_total",
    "Computed lists answered but not cached: the ratings read did not show the user's latest accepted "
    "change yet (the by-user index lagging the write)")
SHARED_POPULARITY = Counter(
    "recommendation_shared_popularity_total",
    "Answers to readers without ratings from the model's one popularity list (nothing cached per id)")
SCOPED_LISTS = Counter(
    "recommendation_scoped_computations_total",
    "Lists computed for one request because its exclude/subject left the reader's cached list too short")
SIMILAR_ANSWERS = Counter("recommendation_similar_total", "Similar-book lists answered, by where from",
                          ["source"])
SIMILAR_LENGTH = 50  # the longest similar list computed and kept (the route's largest limit)
SIMILAR_KEPT = 2048  # similar lists kept per replica (~8 KB each)


@dataclass(frozen=True)
class Computed:
    recommendations: CachedRecommendations
    generation: int | None  # read before the ratings (what `cache.put` checks)
    shows_latest: bool  # the ratings read show the latest accepted change recorded
    shared: bool  # the model's popularity list, for readers without ratings: never cached per user


class RecommendationEngine:
    def __init__(self, live: LiveModel, source: RatingsSource, cache: RecommendationCache, cached_length: int,
                 *, after_ratings_read: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.live = live
        self.source = source
        self.cache = cache
        self.cached_length = cached_length
        self._in_flight: dict[str, asyncio.Future[tuple[CachedRecommendations, RecommendationSource]]] = {}
        self._popular: tuple[Recommender, CachedRecommendations] | None = None
        self._similar: tuple[Recommender | None, LRUCache[str, list[Recommendation]]] = (
            None, LRUCache(SIMILAR_KEPT))
        self._refresh_task: asyncio.Task[None] | None = None
        # Test seam: awaited with the user id between reading their ratings and storing the list, so a
        # test can hold a computation there (a race between replicas made deterministic). None: no pause.
        self.after_ratings_read = after_ratings_read

    @property
    def ready(self) -> bool:
        return self.live.ready

    @property
    def recommender(self) -> Recommender | None:
        return self.live.recommender

    def start_refresh(self) -> bool:
        """Refresh the model and pre-warm in the background. True if this call started it; False if it
        joined the requested refresh still running. (A periodic rebuild running meanwhile is not joined:
        the new refresh starts after it, so ratings written since the periodic scan began are included.)"""
        if self._refresh_task is not None and not self._refresh_task.done():
            return False
        self._refresh_task = asyncio.create_task(self._refresh())
        return True

    async def _refresh(self) -> None:
        try:
            report = await self.live.refresh()
            await self.warm(report.active_users)
        except Exception:  # the old model keeps serving
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
        read = await self.source.reader_of(user_id)
        if self.after_ratings_read is not None:
            await self.after_ratings_read(user_id)
        if read.empty:
            return Computed(self._shared_popular(recommender), state.generation, True, shared=True)
        strategy, picks = recommender.recommend(interest(read.stars, read.shelved_at), self.cached_length)
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

    async def recommendations(self, user_id: str) -> tuple[CachedRecommendations, RecommendationSource]:
        """(recommendations, source) where source is "cache" or "computed"."""
        cached = await self.cache.get(user_id)
        if cached is not None:
            CACHE_HITS.inc()
            return cached, "cache"
        pending = self._in_flight.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)
        CACHE_MISSES.inc()
        future: asyncio.Future[tuple[CachedRecommendations, RecommendationSource]] = (
            asyncio.get_running_loop().create_future())
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

    async def respecting(self, user_id: str, limit: int, exclude: frozenset[str] = frozenset(),
                         subject: str | None = None) -> tuple[CachedRecommendations, RecommendationSource]:
        """The reader's list (`recommendations`) less `exclude`, within `subject` (case-insensitive), cut at
        `limit`; computed afresh for this request, uncached, if filtering left fewer than `limit` of a
        cached list that may have held more."""
        recommender = self.recommender
        assert recommender is not None
        result, source = await self.recommendations(user_id)
        within = recommender.catalogue.with_subject(subject) if subject is not None else None
        entries = recommender.catalogue.entries
        kept = [item for item in result.items if item[0] in entries and item[0] not in exclude
                and (within is None or item[0] in within)][:limit]
        if len(kept) == limit or (not exclude and within is None) or len(result.items) < self.cached_length:
            return CachedRecommendations(result.strategy, result.model_version, kept), source
        SCOPED_LISTS.inc()
        read = await self.source.reader_of(user_id)
        strategy, picks = recommender.recommend(interest(read.stars, read.shelved_at), limit, exclude, within)
        return CachedRecommendations(strategy, recommender.version,
                                     [(p.book_id, p.score, p.reason) for p in picks]), "computed"

    def similar(self, book_id: str) -> list[Recommendation] | None:
        """The book's similar list (SIMILAR_LENGTH long at most), kept per model; None for a book the
        catalogue does not hold."""
        recommender = self.recommender
        assert recommender is not None
        model, kept = self._similar
        if model is not recommender:
            model, kept = self._similar = (recommender, LRUCache(SIMILAR_KEPT))
        found = kept.get(book_id)
        if found is not None:
            SIMILAR_ANSWERS.labels("memory").inc()
            return found
        computed = recommender.similar(book_id, SIMILAR_LENGTH)
        if computed is not None:
            SIMILAR_ANSWERS.labels("computed").inc()
            kept[book_id] = computed
        return computed

    async def similar_for(self, book_id: str, user_id: str
                          ) -> tuple[list[Recommendation] | None, RecommendationSource | None]:
        """The book's similar list re-ranked for the reader by their own list (`similar.for_reader`), and
        where the reader's list came from (None with the book unknown: nothing read)."""
        picks = self.similar(book_id)
        if picks is None:
            return None, None
        result, source = await self.recommendations(user_id)
        following = self.recommender.catalogue.next_in_series(book_id) if self.recommender else None
        return for_reader(picks, (item[0] for item in result.items),
                          following.book_id if following is not None else None), source

    async def invalidate(self, user_id: str, change: AcceptedChange | None = None) -> Deletion:
        """Forget the user's cached list everywhere and this replica's computation of it in flight;
        `change`, the accepted rating it is for, is what a list must show to be cached from now on."""
        self._in_flight.pop(user_id, None)  # its waiters still get its answer; later requests compute anew
        return await self.cache.delete(user_id, change)

    def describe(self, book_id: str) -> tuple[str, list[str]] | None:
        recommender = self.recommender
        entry = recommender.catalogue.entries.get(book_id) if recommender else None
        return (entry.title, list(entry.authors)) if entry else None
