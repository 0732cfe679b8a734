"""Thin HTTP handlers: parse, call domain and store, shape the response."""

from __future__ import annotations

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from bookrec_bookdetail.domain import to_book, unique_ids
from bookrec_bookdetail.models import BatchRequest, BatchResponse, Book
from bookrec_bookdetail.store import BookStore
from bookrec_common.errors import NotFound
from bookrec_common.params import BookIdPath, check_book_id, check_book_ids


@post("/books/batch", status_code=HTTP_200_OK, summary="Several books in one call",
       description="1..100 ids; duplicates collapsed, order of first appearance kept, unknown ids in "
                   "`missing`.")
async def get_books_batch(data: JSONBody[BatchRequest], books: NamedDependency[BookStore]) -> BatchResponse:
    book_ids = unique_ids(check_book_ids(data.book_ids))
    found = await books.get_many(book_ids)
    items = [to_book(found[b]) for b in book_ids if b in found]
    return BatchResponse(count=len(items), items=items, missing=[b for b in book_ids if b not in found])


@get("/books/{book_id:str}", summary="One book")
async def get_book(book_id: BookIdPath, books: NamedDependency[BookStore]) -> Book:
    record = await books.get(check_book_id(book_id))
    if record is None:
        raise NotFound(f"book {book_id} not found", code="book_not_found")
    return to_book(record)
