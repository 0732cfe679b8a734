"""search: ranked full text, advanced filters and autocomplete from an in-memory index."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide

from bookrec_common.artifacts import ArtifactStore, artifacts_reachable
from bookrec_common.clients import dynamodb_client, redis_client_for, s3_client
from bookrec_common.ratelimit import limiters_for, rate_limit
from bookrec_common.service import ReadinessCheck, create_service_app
from bookrec_search.builder import KIND
from bookrec_search.engine import SearchEngine
from bookrec_search.routes import autocomplete, autocomplete_shard, search_advanced, search_get, search_post
from bookrec_search.settings import SearchSettings, get_settings
from bookrec_search.store import BookSource, change_feed


async def _index_loaded(app: Litestar) -> dict[str, Any]:
    engine: SearchEngine = app.state.engine
    if not engine.ready:
        waiting = engine.follower is not None and engine.follower.waiting
        raise RuntimeError("waiting for the first artifact from the builder" if waiting else "index still loading")
    return engine.state()


def create_app(settings: SearchSettings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def clients(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            dynamodb = await stack.enter_async_context(dynamodb_client(settings))
            scanner = await stack.enter_async_context(dynamodb_client(settings, bulk=True))
            redis = await stack.enter_async_context(redis_client_for(settings))
            app.state.rate_limiters = limiters_for(settings, redis, "search")
            source = BookSource(dynamodb, scanner, settings.books_table, settings.scan_segments,
                                settings.autocomplete_fallback_page_size)
            artifacts = None
            if settings.artifact_bucket:
                s3 = await stack.enter_async_context(s3_client(settings, settings.s3_read_timeout))
                artifacts = ArtifactStore(s3, settings.artifact_bucket, settings.artifact_prefix or KIND)
            engine = SearchEngine(source, change_feed(dynamodb, settings.books_table), artifacts,
                                  enabled=settings.index_enabled, poll_seconds=settings.artifact_poll_seconds,
                                  refresh_overlap_seconds=settings.index_refresh_overlap_seconds,
                                  fallback_cache_seconds=settings.autocomplete_fallback_cache_seconds)
            app.state.engine = engine
            # The index loads in the background: the process answers /health at once, /ready once loaded.
            task = None
            if settings.index_enabled:
                task = asyncio.create_task(engine.run(settings.index_refresh_seconds))
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    def provide_engine(state: State) -> SearchEngine:
        return state.engine

    # With the index loaded, queries never touch DynamoDB: an outage there only delays freshness.
    readiness = [ReadinessCheck("dynamodb", lambda app: app.state.engine.source.ping(),
                                required=not settings.index_enabled)]
    if settings.index_enabled:
        readiness.append(ReadinessCheck("index", _index_loaded))
        if settings.artifact_bucket:
            readiness.append(ReadinessCheck("artifacts", lambda app: artifacts_reachable(app.state.engine.follower),
                                            required=False))
    return create_service_app(
        settings,
        # Every search route counts against the client's (address's) search limit.
        [Router("/", route_handlers=[search_post, search_get, search_advanced, autocomplete, autocomplete_shard],
                guards=[rate_limit("search")])],
        lifespan=[clients],
        dependencies={"engine": Provide(provide_engine, sync_to_thread=False)},
        readiness=readiness,
        description="Search: ranked full text (BM25F with a popularity prior), advanced filters and sorts, "
                    "title-prefix autocomplete.",
    )
