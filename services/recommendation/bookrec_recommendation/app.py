"""recommendation: collaborative filtering with a cold-start fallback, cached cache-aside in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from bookrec_common.activity import ActivityLog
from bookrec_common.auth import token_verifier
from bookrec_common.clients import dynamodb_client, http_session, redis_client_for
from bookrec_common.feed import ChangeFeed
from bookrec_common.ratelimit import limiters_for
from bookrec_common.replica import artifact_store, kept_loaded, live_checks
from bookrec_common.service import ReadinessCheck, create_service_app
from bookrec_recommendation.artifact import KIND
from bookrec_recommendation.engine import RecommendationEngine
from bookrec_recommendation.live import LiveModel
from bookrec_recommendation.routes import invalidate, recommend, refresh, similar, trending
from bookrec_recommendation.settings import RecommendationSettings, get_settings
from bookrec_recommendation.store import RatingsSource, RecommendationCache
from bookrec_recommendation.trending_store import TrendingBoard


def create_app(settings: RecommendationSettings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def clients(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            dynamodb = await stack.enter_async_context(dynamodb_client(settings))
            scanner = await stack.enter_async_context(dynamodb_client(settings, bulk=True))
            redis = await stack.enter_async_context(redis_client_for(settings))
            app.state.rate_limiters = limiters_for(settings, redis, "recommendations")
            http = await stack.enter_async_context(http_session())
            app.state.token_verifier = token_verifier(settings, http)
            source = RatingsSource(dynamodb, settings.books_table, settings.ratings_table,
                                   settings.scan_segments, scanner, shelves_table=settings.shelves_table)
            live = LiveModel(source, ChangeFeed(dynamodb, settings.books_table), settings.neighbours,
                             settings.regularisation, artifacts=await artifact_store(stack, settings, KIND),
                             poll_seconds=settings.artifact_poll_seconds,
                             refresh_seconds=settings.model_refresh_seconds)
            app.state.engine = RecommendationEngine(
                live, source, RecommendationCache(redis, settings.cache_ttl_seconds,
                                                  fallback_ttl=settings.cache_fallback_seconds),
                settings.cached_length)
            app.state.trending = TrendingBoard(ActivityLog(redis), namespace=settings.artifact_bucket,
                                               refresh_seconds=settings.trending_refresh_seconds)
            trending_kept = asyncio.create_task(app.state.trending.keep_fresh())
            stack.callback(trending_kept.cancel)
            async with kept_loaded(live):  # the model loads in the background: /health at once, /ready then
                yield

    def provide_engine(state: State) -> RecommendationEngine:
        return state.engine

    def provide_board(state: State) -> TrendingBoard:
        return state.trending

    app = create_service_app(
        settings,
        [recommend, refresh, invalidate, trending, similar],
        lifespan=[clients],
        dependencies={"engine": Provide(provide_engine, sync_to_thread=False),
                      "board": Provide(provide_board, sync_to_thread=False)},
        readiness=[
            ReadinessCheck("dynamodb", lambda app: app.state.engine.source.ping()),
            *live_checks("model", lambda app: app.state.engine.live, artifacts=bool(settings.artifact_bucket),
                         loading="model still building"),
            ReadinessCheck("redis", lambda app: app.state.engine.cache.ping(), required=False),
        ],
        description="Recommendations: collaborative filtering with a content/popularity cold start, "
                    "cached in Redis.",
    )
    app.state.internal_token = settings.internal_token  # what the invalidate endpoint's guard checks
    return app
