"""search: ranked full text, advanced filters and autocomplete from an in-memory index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide

from bookrec_common.clients import dynamodb_client, redis_client_for
from bookrec_common.ratelimit import limiters_for, rate_limit
from bookrec_common.replica import artifact_store, kept_loaded, live_checks
from bookrec_common.service import ReadinessCheck, create_service_app
from bookrec_search.artifact import KIND
from bookrec_search.live import LiveIndex
from bookrec_search.routes import autocomplete, autocomplete_shard, search_advanced, search_get, search_post
from bookrec_search.settings import SearchSettings, get_settings
from bookrec_search.store import BookSource, change_feed


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
            live = LiveIndex(source, change_feed(dynamodb, settings.books_table),
                             await artifact_store(stack, settings, KIND), enabled=settings.index_enabled,
                             refresh_seconds=settings.index_refresh_seconds,
                             refresh_overlap_seconds=settings.index_refresh_overlap_seconds,
                             poll_seconds=settings.artifact_poll_seconds,
                             fallback_cache_seconds=settings.autocomplete_fallback_cache_seconds,
                             pretouch_ratio=settings.index_pretouch_ratio)
            app.state.live = live
            if settings.index_enabled:
                # The index loads in the background: the process answers /health at once, /ready once loaded.
                await stack.enter_async_context(kept_loaded(live))
            yield

    def provide_live(state: State) -> LiveIndex:
        return state.live

    # With the index loaded, queries never touch DynamoDB: an outage there only delays freshness.
    readiness = [ReadinessCheck("dynamodb", lambda app: app.state.live.source.ping(),
                                required=not settings.index_enabled)]
    if settings.index_enabled:
        readiness += live_checks("index", lambda app: app.state.live,
                                 artifacts=bool(settings.artifact_bucket), loading="index still loading")
    return create_service_app(
        settings,
        # Every search route counts against the client's (address's) search limit.
        [Router("/", route_handlers=[search_post, search_get, search_advanced, autocomplete,
                                     autocomplete_shard], guards=[rate_limit("search")])],
        lifespan=[clients],
        dependencies={"live": Provide(provide_live, sync_to_thread=False)},
        readiness=readiness,
        description="Search: ranked full text (BM25F with a popularity prior), advanced filters and sorts, "
                    "title-prefix autocomplete.",
    )
