"""ratings: users rate books 1..5; the book's aggregate changes in the same transaction."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from bookrec_common.activity import ActivityLog
from bookrec_common.auth import token_verifier
from bookrec_common.clients import dynamodb_client, http_session, redis_client_for
from bookrec_common.ratelimit import limiters_for
from bookrec_common.service import ReadinessCheck, create_service_app
from bookrec_ratings.invalidation import RecommendationInvalidator
from bookrec_ratings.routes import (
    book_ratings,
    delete_rating,
    rate_book,
    shelve_book,
    unshelve_book,
    user_ratings,
    user_shelf_listing,
)
from bookrec_ratings.settings import RatingsSettings, get_settings
from bookrec_ratings.store import RatingStore

log = logging.getLogger("bookrec.ratings")


def create_app(settings: RatingsSettings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def clients(app: Litestar) -> AsyncIterator[None]:
        if not settings.recommendation_url:
            log.warning("RECOMMENDATION_URL is not set: cached recommendations will not be invalidated")
        async with AsyncExitStack() as stack:
            dynamodb = await stack.enter_async_context(dynamodb_client(settings))
            http = await stack.enter_async_context(http_session())
            redis = await stack.enter_async_context(redis_client_for(settings))
            app.state.token_verifier = token_verifier(settings, http)
            app.state.rate_limiters = limiters_for(settings, redis, "rating_writes")
            app.state.activity = ActivityLog(redis)
            app.state.ratings = RatingStore(dynamodb, settings.books_table, settings.ratings_table,
                                            settings.write_max_attempts, shelves_table=settings.shelves_table)
            app.state.invalidator = RecommendationInvalidator(
                http, settings.recommendation_url, settings.internal_token, settings.invalidation_timeout,
                settings.invalidation_retries)
            yield

    def provide_ratings(state: State) -> RatingStore:
        return state.ratings

    def provide_invalidator(state: State) -> RecommendationInvalidator:
        return state.invalidator

    def provide_activity(state: State) -> ActivityLog:
        return state.activity

    return create_service_app(
        settings,
        [rate_book, delete_rating, book_ratings, user_ratings, shelve_book, unshelve_book, user_shelf_listing],
        lifespan=[clients],
        dependencies={"ratings": Provide(provide_ratings, sync_to_thread=False),
                      "invalidator": Provide(provide_invalidator, sync_to_thread=False),
                      "activity": Provide(provide_activity, sync_to_thread=False)},
        readiness=[ReadinessCheck("dynamodb", lambda app: app.state.ratings.ping())],
        description="Ratings and shelves: rate books 1..5 and shelve them (want_to_read, currently_reading, "
                    "read), with exact per-book aggregates and shelf counts; list a book's or a user's "
                    "ratings and a reader's shelves.",
    )
