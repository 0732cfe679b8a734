"""recommendation: collaborative filtering with a cold-start fallback, cached cache-aside in Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from bookrec_common.artifacts import ArtifactStore, artifacts_reachable
from bookrec_common.auth import token_verifier
from bookrec_common.clients import dynamodb_client, http_session, redis_client_for, s3_client
from bookrec_common.ratelimit import limiters_for
from bookrec_common.service import ReadinessCheck, create_service_app

from bookrec_recommendation.builder import KIND
from bookrec_recommendation.engine import RecommendationEngine
from bookrec_recommendation.routes import invalidate, recommend, refresh
from bookrec_recommendation.settings import RecommendationSettings, get_settings
from bookrec_recommendation.store import RatingsSource, RecommendationCache

log = logging.getLogger("bookrec.recommendation")


async def _model_loaded(app: Litestar) -> dict[str, Any]:
    engine: RecommendationEngine = app.state.engine
    if not engine.ready:
        waiting = engine.follower is not None and engine.follower.waiting
        raise RuntimeError("waiting for the first artifact from the builder" if waiting
                           else "model still building")
    assert engine.recommender is not None
    return {"model_version": engine.recommender.version,
            **(engine.follower.state() if engine.follower else {})}


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
            artifacts = None
            if settings.artifact_bucket:
                s3 = await stack.enter_async_context(s3_client(settings, settings.s3_read_timeout))
                artifacts = ArtifactStore(s3, settings.artifact_bucket, settings.artifact_prefix or KIND)
            engine = RecommendationEngine(
                RatingsSource(dynamodb, settings.books_table, settings.ratings_table, settings.scan_segments,
                              scanner),
                RecommendationCache(redis, settings.cache_ttl_seconds,
                                    fallback_ttl=settings.cache_fallback_seconds),
                settings.cached_length, settings.neighbours, settings.regularisation,
                artifacts=artifacts, poll_seconds=settings.artifact_poll_seconds)
            app.state.engine = engine

            async def keep_model() -> None:
                if engine.follower is not None:  # the builder's model: never a scan here
                    await engine.follower.first()
                    await engine.follower.follow()  # until cancelled
                    return
                # No artifact bucket: this process builds its own model.
                while not engine.ready:
                    try:
                        await engine.rebuild()
                    except Exception:  # noqa: BLE001 - DynamoDB not there yet: /ready says so; retry
                        log.exception("model build failed; retrying")
                        await asyncio.sleep(5)
                if settings.model_refresh_seconds > 0:
                    await engine.refresh_forever(settings.model_refresh_seconds)

            task = asyncio.create_task(keep_model())
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def provide_engine(state: State) -> RecommendationEngine:
        return state.engine

    app = create_service_app(
        settings,
        [recommend, refresh, invalidate],
        lifespan=[clients],
        dependencies={"engine": Provide(provide_engine, sync_to_thread=False)},
        readiness=[
            ReadinessCheck("dynamodb", lambda app: app.state.engine.source.ping()),
            ReadinessCheck("model", _model_loaded),
            ReadinessCheck("redis", lambda app: app.state.engine.cache.ping(), required=False),
            *([ReadinessCheck("artifacts", lambda app: artifacts_reachable(app.state.engine.follower),
                              required=False)] if settings.artifact_bucket else []),
        ],
        description="Recommendations: collaborative filtering with a content/popularity cold start, "
                    "cached in Redis.",
    )
    app.state.internal_token = settings.internal_token  # what the invalidate endpoint's guard checks
    return app
