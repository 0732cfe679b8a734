"""The framework's ceiling: a Litestar handler answering a book from memory, nothing else.

Served by granian exactly as the services are (tooling/bookrec_local/stack.py granian_command).
"""

from __future__ import annotations

from litestar import Litestar, get
from litestar.exceptions import NotFoundException

BOOKS = {f"OL{n}W": {"book_id": f"OL{n}W", "title": f"Book {n}", "authors": ["An Author"], "rating_count": n}
         for n in range(1, 1001)}


@get("/books/{book_id:str}")
async def book(book_id: str) -> dict:
    try:
        return BOOKS[book_id]
    except KeyError:
        raise NotFoundException(f"no book {book_id}") from None


def create_app() -> Litestar:
    return Litestar([book], openapi_config=None)
