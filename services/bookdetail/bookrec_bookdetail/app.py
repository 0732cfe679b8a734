"""bookdetail: one book, or a batch, straight from the books table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from bookrec_bookdetail.routes import get_book, get_books_batch
from bookrec_bookdetail.settings import BookdetailSettings, get_settings
from bookrec_bookdetail.store import BookStore
from bookrec_common.clients import dynamodb_client
from bookrec_common.service import ReadinessCheck, create_service_app


def create_app(settings: BookdetailSettings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def clients(app: Litestar) -> AsyncIterator[None]:
        async with dynamodb_client(settings) as dynamodb:
            app.state.books = BookStore(dynamodb, settings.books_table, settings.batch_max_attempts)
            yield

    def provide_books(state: State) -> BookStore:
        return state.books

    return create_service_app(
        settings,
        [get_book, get_books_batch],
        lifespan=[clients],
        dependencies={"books": Provide(provide_books, sync_to_thread=False)},
        readiness=[ReadinessCheck("dynamodb", lambda app: app.state.books.ping())],
        description="Book details: one book by id, or up to 100 in one batch.",
    )
