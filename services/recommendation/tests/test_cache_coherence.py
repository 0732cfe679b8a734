"""Cache coherence across replicas: two engines sharing one real Redis and the moto tables.

The race made deterministic with the engine's `after_ratings_read` seam: replica A misses and reads the
user's ratings; the user rates a book and replica B carries out the invalidation; then A stores.

Freshness: the by-user index lags writes on DynamoDB (the emulator's does not), made deterministic by
a ratings read that returns the state before the write: a list computed from it is never cached.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack

import pytest
import redis.asyncio as aioredis

from bookrec_catalog.catalog import utc_now, with_derived_attributes
from bookrec_catalog.dynamo import to_item
from bookrec_common.clients import dynamodb_client
from bookrec_common.feed import ChangeFeed
from bookrec_common.settings import ServiceSettings
from bookrec_local.prometheus import current
from bookrec_recommendation.engine import LAGGING_READS, RecommendationEngine
from bookrec_recommendation.freshness import AcceptedChange, RatingsRead
from bookrec_recommendation.live import LiveModel
from bookrec_recommendation.settings import RecommendationSettings
from bookrec_recommendation.store import (
    CACHE_MISSES,
    CACHE_STALE_WRITES,
    FALLBACK_SECONDS,
    GENERATION_MARGIN_SECONDS,
    CachedRecommendations,
    RatingsSource,
    RecommendationCache,
)

TTL = 600
BOOKS = {f"OL{i}W": ("philosophy" if i <= 6 else "fantasy") for i in range(1, 13)}
JUST_RATED = "OL6W"  # the one philosophy book the subject has not rated yet: their best pick
LIST = CachedRecommendations("collaborative", "v1", [("OL1W", 1.0, "because")])


def rate(dynamodb, tables, user_id: str, book_id: str) -> str:
    """Writes a 5-star rating; returns its updated_at."""
    now = utc_now()
    dynamodb.put_item(TableName=tables["ratings"], Item=to_item(
        {"book_id": book_id, "user_id": user_id, "rating": 5, "created_at": now, "updated_at": now}))
    return now


def shelve(dynamodb, tables, user_id: str, book_id: str) -> str:
    """Puts a book on the user's want-to-read shelf; returns its shelved_at."""
    now = utc_now()
    dynamodb.put_item(TableName=tables["shelves"], Item=to_item(
        {"book_id": book_id, "user_id": user_id, "shelf": "want_to_read", "shelved_at": now,
         "user_shelf": f"{user_id}#want_to_read"}))
    return now


def seed(dynamodb, tables, subject: str) -> None:
    for book_id, subject_area in BOOKS.items():
        dynamodb.put_item(TableName=tables["books"], Item=to_item(with_derived_attributes(
            {"book_id": book_id, "title": f"Title {book_id}",
             "authors": [{"author_id": None, "name": subject_area + " author"}],
             "subjects": [subject_area]})))
    for u in range(20):
        shelf = [b for b, s in BOOKS.items() if s == ("philosophy" if u % 2 else "fantasy")]
        for b in shelf[: 4 + u % 3]:
            rate(dynamodb, tables, f"reader{u}", b)
    for b in ["OL1W", "OL2W", "OL3W", "OL4W", "OL5W"]:
        rate(dynamodb, tables, subject, b)


def book_ids(recommendations: CachedRecommendations) -> list[str]:
    return [book_id for book_id, _, _ in recommendations.items]


class UncheckedCache(RecommendationCache):
    """The cache as it was: stores whatever was computed, whatever happened meanwhile (the control)."""

    async def put(self, user_id: str, value: CachedRecommendations, generation: int | None) -> bool:
        return await super().put(user_id, value, await self.generation(user_id))


@pytest.fixture
async def redis(redis_url):
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def subject() -> str:
    return f"subject{uuid.uuid4().hex[:8]}"  # Redis is shared by the whole session: keys of our own


@pytest.fixture
async def replicas(tables, dynamodb, redis_url, subject):
    """make(cache_class=RecommendationCache) -> an engine with its own clients: one replica."""
    seed(dynamodb, tables, subject)
    async with AsyncExitStack() as stack:
        async def make(cache_class: type[RecommendationCache] = RecommendationCache) -> RecommendationEngine:
            dynamo = await stack.enter_async_context(dynamodb_client(ServiceSettings()))
            redis_client = aioredis.from_url(redis_url)
            stack.push_async_callback(redis_client.aclose)
            source = RatingsSource(dynamo, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
            live = LiveModel(source, ChangeFeed(dynamo, tables["books"]), neighbours=5, regularisation=1.0)
            await live.load()
            return RecommendationEngine(live, source, cache_class(redis_client, TTL), cached_length=100)

        yield make


class Pause:
    """An `after_ratings_read` hook that holds the first computation until released."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    async def __call__(self, user_id: str) -> None:
        self.calls += 1
        if self.calls == 1:
            self.reached.set()
            await self.release.wait()


@pytest.mark.parametrize("coherent", [True, False], ids=["generation-checked", "unchecked-control"])
async def test_a_list_computed_before_an_invalidation_on_another_replica_is_never_served(
        replicas, dynamodb, tables, redis, subject, coherent):
    a = await replicas(RecommendationCache if coherent else UncheckedCache)
    b = await replicas()
    pause = a.after_ratings_read = Pause()
    stale_writes = current(CACHE_STALE_WRITES)

    in_flight = asyncio.create_task(a.recommendations(subject))
    await asyncio.wait_for(pause.reached.wait(), 10)  # A has read the ratings, not stored yet
    rate(dynamodb, tables, subject, JUST_RATED)
    invalidation = await b.invalidate(subject)  # the invalidation reaches B only
    assert invalidation.outcome == "not_cached"  # nothing stored yet: only the generation moved
    pause.release.set()
    computed, source = await asyncio.wait_for(in_flight, 10)
    # What A computed was stale: the scenario would serve the just-rated book if A's list were stored.
    assert source == "computed" and JUST_RATED in book_ids(computed)

    on_a, source_a = await a.recommendations(subject)
    on_b, source_b = await b.recommendations(subject)
    if not coherent:  # the control: the bug this test exists for
        assert source_a == source_b == "cache" and JUST_RATED in book_ids(on_a) and on_b == on_a
        return
    assert current(CACHE_STALE_WRITES) - stale_writes == 1
    assert source_a == "computed" and JUST_RATED not in book_ids(on_a)
    assert source_b == "cache" and on_b == on_a  # B is served what A computed afresh, stored this time
    assert await redis.ttl(RecommendationCache.key(subject)) > 0


async def test_a_request_after_an_invalidation_never_joins_a_computation_begun_before_it(
        replicas, dynamodb, tables, subject):
    a = await replicas()
    pause = a.after_ratings_read = Pause()
    misses = current(CACHE_MISSES)

    before = asyncio.create_task(a.recommendations(subject))
    await asyncio.wait_for(pause.reached.wait(), 10)
    missed = asyncio.Event()
    cache_get = a.cache.get

    async def get_then_signal(user_id: str) -> CachedRecommendations | None:
        try:
            return await cache_get(user_id)
        finally:
            missed.set()  # the caller goes on to the in-flight table without yielding

    a.cache.get = get_then_signal  # type: ignore[method-assign]  # a test double in its place
    joined = asyncio.create_task(a.recommendations(subject))  # asked before the rating: joins
    await asyncio.wait_for(missed.wait(), 10)
    a.cache.get = cache_get  # type: ignore[method-assign]  # a test double in its place
    rate(dynamodb, tables, subject, JUST_RATED)
    await a.invalidate(subject)  # on the same replica this time
    after, source = await asyncio.wait_for(a.recommendations(subject), 10)  # would hang if it joined
    assert source == "computed" and JUST_RATED not in book_ids(after)
    pause.release.set()
    (stale, _), (also_stale, _) = await asyncio.wait_for(asyncio.gather(before, joined), 10)
    assert JUST_RATED in book_ids(stale) and also_stale == stale
    assert current(CACHE_MISSES) - misses == 2
    assert await a.recommendations(subject) == (after, "cache")


async def test_a_store_after_an_invalidation_is_refused(redis, redis_url, subject):
    cache = RecommendationCache(redis, TTL)
    generation = await cache.generation(subject)
    await cache.delete(subject)
    stale_writes = current(CACHE_STALE_WRITES)
    assert await cache.put(subject, LIST, generation) is False
    assert await redis.get(cache.key(subject)) is None and await cache.get(subject) is None
    assert current(CACHE_STALE_WRITES) - stale_writes == 1


async def test_a_store_with_no_invalidation_since_the_generation_was_read_is_accepted(redis, subject):
    cache = RecommendationCache(redis, TTL)
    await cache.delete(subject)
    generation = await cache.generation(subject)
    assert await cache.put(subject, LIST, generation) is True
    assert await cache.get(subject) == LIST
    assert 0 < await redis.ttl(cache.key(subject)) <= TTL


async def test_a_store_for_a_user_never_invalidated_is_accepted(redis, subject):
    cache = RecommendationCache(redis, TTL)
    assert await cache.generation(subject) == 0
    assert await cache.put(subject, LIST, 0) is True and await cache.get(subject) == LIST


async def test_an_invalidation_of_an_empty_cache_still_bumps_the_generation(redis, subject):
    cache = RecommendationCache(redis, TTL)
    before = await cache.generation(subject)
    deletion = await cache.delete(subject)
    assert (deletion.outcome, deletion.removed) == ("not_cached", False)
    assert await cache.generation(subject) == before + 1
    # It outlives every list stored under it, and then goes: no key per user forever.
    assert TTL < await redis.ttl(cache.generation_key(subject)) <= TTL + GENERATION_MARGIN_SECONDS


async def test_an_invalidation_deletes_the_list_and_bumps_the_generation_together(redis, subject):
    cache = RecommendationCache(redis, TTL)
    assert await cache.put(subject, LIST, await cache.generation(subject))
    deletion = await cache.delete(subject)
    assert (deletion.outcome, deletion.removed) == ("deleted", True)
    assert await cache.get(subject) is None and await cache.generation(subject) == 1


async def test_a_list_computed_while_the_generation_was_unknown_goes_to_the_fallback_only(redis, subject):
    cache = RecommendationCache(redis, TTL)
    assert await cache.put(subject, LIST, None) is False
    assert await redis.get(cache.key(subject)) is None
    assert await cache.get(subject) == LIST  # once, from this replica's fallback, as after an outage


async def test_redis_down_degrades_the_generation_and_the_store_without_raising(subject):
    down = aioredis.from_url("redis://127.0.0.1:9/0", socket_timeout=0.25, socket_connect_timeout=0.25)
    cache = RecommendationCache(down, TTL, fallback_ttl=5)
    try:
        generation = await cache.generation(subject)
        assert generation is None
        assert await cache.put(subject, LIST, generation) is False
        assert await cache.get(subject) == LIST
        assert (await cache.delete(subject)).outcome == "unavailable"
    finally:
        await down.aclose()


def test_the_fallback_bound_is_a_setting_defaulting_to_the_stores_own(monkeypatch):
    assert RecommendationSettings.model_fields["cache_fallback_seconds"].default == FALLBACK_SECONDS
    monkeypatch.setenv("CACHE_FALLBACK_SECONDS", "5")
    settings = RecommendationSettings(books_table="b", ratings_table="r", jwt_jwks_url="x", jwt_issuer="x",
                                      jwt_audience="x")
    assert settings.cache_fallback_seconds == 5


class LaggingIndex:
    """The by-user read of a replica, as DynamoDB's index may serve it just after a write: while `lagging`,
    each read of the user returns what was read before the write (`hold()`), then the table again."""

    def __init__(self, engine: RecommendationEngine) -> None:
        self._read = engine.source.ratings_of
        self.previous: RatingsRead | None = None
        engine.source.ratings_of = self.ratings_of  # type: ignore[method-assign]  # a test double in its place

    async def hold(self, user_id: str) -> None:
        self.previous = await self._read(user_id)

    def catch_up(self) -> None:
        self.previous = None

    async def ratings_of(self, user_id: str) -> RatingsRead:
        return self.previous if self.previous is not None else await self._read(user_id)


@pytest.mark.parametrize("change_named", [True, False], ids=["change-checked", "unnamed-control"])
async def test_a_list_computed_from_a_read_that_lags_the_latest_rating_is_never_cached(
        replicas, dynamodb, tables, redis, subject, change_named):
    a = await replicas()
    b = await replicas()
    index = LaggingIndex(a)
    await index.hold(subject)  # what A's index will keep answering for a while
    rated_at = rate(dynamodb, tables, subject, JUST_RATED)
    change = AcceptedChange(rated_at, JUST_RATED, removed=False) if change_named else None
    await b.invalidate(subject, change)  # the accepted rating, through the other replica
    lagging = current(LAGGING_READS)

    first, source = await a.recommendations(subject)
    assert source == "computed" and JUST_RATED in book_ids(first)  # computed from the read before the rating
    if not change_named:  # the control: the lagging list is cached, served for the whole TTL
        assert await a.recommendations(subject) == (first, "cache")
        return
    _, source = await a.recommendations(subject)
    assert source == "computed" and await redis.get(RecommendationCache.key(subject)) is None
    assert current(LAGGING_READS) - lagging == 2
    index.catch_up()
    fresh, source = await a.recommendations(subject)
    assert source == "computed" and JUST_RATED not in book_ids(fresh)
    assert await b.recommendations(subject) == (fresh, "cache")  # shown the rating: cached, for every replica


async def test_a_list_still_showing_a_removed_rating_is_never_cached(
        replicas, dynamodb, tables, redis, subject):
    a = await replicas()
    rate(dynamodb, tables, subject, JUST_RATED)
    index = LaggingIndex(a)
    await index.hold(subject)  # still shows JUST_RATED
    dynamodb.delete_item(TableName=tables["ratings"],
                         Key={"book_id": {"S": JUST_RATED}, "user_id": {"S": subject}})
    await a.invalidate(subject, AcceptedChange(utc_now(), JUST_RATED, removed=True))
    stale, source = await a.recommendations(subject)
    assert source == "computed" and JUST_RATED not in book_ids(stale)  # still excluded as rated
    assert await redis.get(RecommendationCache.key(subject)) is None
    index.catch_up()
    assert (await a.recommendations(subject))[1] == "computed"
    fresh, source = await a.recommendations(subject)
    assert source == "cache" and JUST_RATED in book_ids(fresh)  # no longer rated: recommendable again


async def test_the_newest_accepted_change_is_kept_whatever_order_invalidations_arrive_in(redis, subject):
    cache = RecommendationCache(redis, TTL)
    newer = AcceptedChange("2026-12-02T09:00:01.000000Z", "OL2W", removed=False)
    older = AcceptedChange("2026-12-02T09:00:00.000000Z", "OL1W", removed=True)
    await cache.delete(subject, newer)
    await cache.delete(subject, older)  # a retry arriving late
    await cache.delete(subject)  # a caller naming no change keeps what is known
    state = await cache.state(subject)
    assert state.latest == newer and state.generation == 3
    assert TTL < await redis.ttl(cache.latest_key(subject)) <= TTL + GENERATION_MARGIN_SECONDS


@pytest.mark.parametrize("coherent", [True, False], ids=["generation-checked", "unchecked-control"])
async def test_a_list_computed_before_a_shelving_invalidated_on_another_replica_is_never_served(
        replicas, dynamodb, tables, subject, coherent):
    a = await replicas(RecommendationCache if coherent else UncheckedCache)
    b = await replicas()
    pause = a.after_ratings_read = Pause()
    in_flight = asyncio.create_task(a.recommendations(subject))
    await asyncio.wait_for(pause.reached.wait(), 10)  # A has read ratings and shelves, not stored yet
    shelved_at = shelve(dynamodb, tables, subject, JUST_RATED)
    await b.invalidate(subject, AcceptedChange(shelved_at, JUST_RATED, removed=False, kind="shelf"))
    pause.release.set()
    computed, _ = await asyncio.wait_for(in_flight, 10)
    assert JUST_RATED in book_ids(computed)  # read before the shelving
    on_a, source_a = await a.recommendations(subject)
    if not coherent:  # the control: the list still offering the shelved book is served from the cache
        assert source_a == "cache" and JUST_RATED in book_ids(on_a)
        return
    assert source_a == "computed" and JUST_RATED not in book_ids(on_a)
    assert await b.recommendations(subject) == (on_a, "cache")


class LaggingShelves:
    """As LaggingIndex, for the shelves table's by-user index: while held, each read of the user's shelves
    returns what was read before the write."""

    def __init__(self, engine: RecommendationEngine) -> None:
        self._shelves = engine.source.shelves_of
        self.held: dict[str, str] | None = None
        engine.source.shelves_of = self.shelves_of  # type: ignore[method-assign]  # a test double in its place

    async def hold(self, user_id: str) -> None:
        self.held = await self._shelves(user_id)

    def catch_up(self) -> None:
        self.held = None

    async def shelves_of(self, user_id: str) -> dict[str, str]:
        return self.held if self.held is not None else await self._shelves(user_id)


@pytest.mark.parametrize("change_named", [True, False], ids=["change-checked", "unnamed-control"])
async def test_a_list_computed_from_a_read_that_lags_the_latest_shelving_is_never_cached(
        replicas, dynamodb, tables, redis, subject, change_named):
    a = await replicas()
    b = await replicas()
    index = LaggingShelves(a)
    await index.hold(subject)  # no shelves yet, and A's index keeps answering that for a while
    shelved_at = shelve(dynamodb, tables, subject, JUST_RATED)
    change = AcceptedChange(shelved_at, JUST_RATED, removed=False, kind="shelf") if change_named else None
    await b.invalidate(subject, change)
    lagging = current(LAGGING_READS)

    first, source = await a.recommendations(subject)
    assert source == "computed" and JUST_RATED in book_ids(first)  # computed from the read before the shelving
    if not change_named:  # the control: the lagging list is cached, served for the whole TTL
        assert await a.recommendations(subject) == (first, "cache")
        return
    assert await redis.get(RecommendationCache.key(subject)) is None
    assert current(LAGGING_READS) - lagging == 1
    index.catch_up()
    fresh, source = await a.recommendations(subject)
    assert source == "computed" and JUST_RATED not in book_ids(fresh)
    assert await b.recommendations(subject) == (fresh, "cache")


async def test_a_list_still_showing_a_book_taken_off_the_shelves_is_never_cached(
        replicas, dynamodb, tables, redis, subject):
    a = await replicas()
    shelve(dynamodb, tables, subject, JUST_RATED)
    index = LaggingShelves(a)
    await index.hold(subject)  # still shows JUST_RATED shelved
    dynamodb.delete_item(TableName=tables["shelves"], Key={"book_id": {"S": JUST_RATED}, "user_id": {"S": subject}})
    await a.invalidate(subject, AcceptedChange(utc_now(), JUST_RATED, removed=True, kind="shelf"))
    stale, source = await a.recommendations(subject)
    assert source == "computed" and JUST_RATED not in book_ids(stale)  # still excluded as shelved
    assert await redis.get(RecommendationCache.key(subject)) is None
    index.catch_up()
    assert (await a.recommendations(subject))[1] == "computed"
    fresh, source = await a.recommendations(subject)
    assert source == "cache" and JUST_RATED in book_ids(fresh)  # off the shelves: recommendable again
