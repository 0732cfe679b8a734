"""Thin HTTP handlers: parse, call domain and store, shape the response."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from bookrec_common.catalog import utc_now
from bookrec_common.context import request_id_of
from bookrec_common.errors import NotFound, ValidationFailed, decode_strictly
from bookrec_common.params import check_book_id, check_user_id

from bookrec_ratings.domain import decode_cursor, encode_cursor
from bookrec_ratings.invalidation import RecommendationInvalidator
from bookrec_ratings.models import (BookRatingEntry, BookRatings, RateRequest, RateResponse, UserRatingEntry,
                                    UserRatings)
from bookrec_ratings.store import RatingStore

BOOK_CURSOR_KEYS = frozenset({"book_id", "user_id", "updated_at"})
Limit = Annotated[int, Parameter(ge=1, le=100, description="page size, 1..100")]
Cursor = Annotated[str | None, Parameter(max_length=512, description="next_cursor of the previous page")]


def _start_key(cursor: str | None, owner_field: str, owner: str) -> dict[str, str] | None:
    if cursor is None:
        return None
    try:
        key = decode_cursor(cursor, BOOK_CURSOR_KEYS)
    except ValueError as exc:
        raise ValidationFailed(str(exc), errors=[{"field": "cursor", "message": str(exc), "source": "query"}]) from None
    if key[owner_field] != owner:
        raise ValidationFailed("cursor belongs to another listing",
                               errors=[{"field": "cursor", "message": "cursor of another listing", "source": "query"}])
    return key


@post("/books/{book_id:str}/rate", summary="Rate a book 1..5 (re-rating replaces)",
      responses=None, status_code=HTTP_201_CREATED)
async def rate_book(request: Request, book_id: FromPath[str], data: JSONBody[RateRequest],
                    ratings: NamedDependency[RatingStore],
                    invalidator: NamedDependency[RecommendationInvalidator]) -> Response[RateResponse]:
    check_book_id(book_id)
    body: RateRequest = decode_strictly(await request.body(), RateRequest)
    change = await ratings.change(book_id, body.user_id, body.rating, utc_now())
    await invalidator.invalidate(body.user_id, request_id_of(request.scope))
    current = change.current
    assert current is not None
    result = RateResponse(book_id=book_id, user_id=body.user_id, rating=body.rating,
                          previous_rating=change.previous["rating"] if change.previous else None,
                          created_at=current["created_at"], updated_at=current["updated_at"])
    return Response(result, status_code=HTTP_200_OK if change.previous else HTTP_201_CREATED)


@delete("/books/{book_id:str}/ratings/{user_id:str}", status_code=HTTP_204_NO_CONTENT,
        summary="Remove a user's rating of a book and its contribution")
async def delete_rating(request: Request, book_id: FromPath[str], user_id: FromPath[str],
                        ratings: NamedDependency[RatingStore],
                        invalidator: NamedDependency[RecommendationInvalidator]) -> None:
    check_book_id(book_id)
    check_user_id(user_id)
    await ratings.change(book_id, user_id, None, utc_now())
    await invalidator.invalidate(user_id, request_id_of(request.scope))


@get("/books/{book_id:str}/ratings", summary="A book's rating aggregate and its ratings, newest first")
async def book_ratings(book_id: FromPath[str], ratings: NamedDependency[RatingStore],
                       limit: Limit = 20, cursor: Cursor = None) -> BookRatings:
    check_book_id(book_id)
    start = _start_key(cursor, "book_id", book_id)
    aggregate = await ratings.book_aggregate(book_id)
    if aggregate is None:
        raise NotFound(f"book {book_id} not found", code="book_not_found")
    page = await ratings.ratings_of_book(book_id, limit, start)
    return BookRatings(
        book_id=book_id, average_rating=aggregate.average, total_ratings=aggregate.count,
        ratings_distribution=aggregate.distribution,
        ratings=[BookRatingEntry(user_id=r["user_id"], rating=r["rating"], updated_at=r["updated_at"])
                 for r in page.items],
        next_cursor=encode_cursor(page.last_key),
    )


@get("/users/{user_id:str}/ratings", summary="A user's ratings, newest first")
async def user_ratings(user_id: FromPath[str], ratings: NamedDependency[RatingStore],
                       limit: Limit = 20, cursor: Cursor = None) -> UserRatings:
    check_user_id(user_id)
    page = await ratings.ratings_of_user(user_id, limit, _start_key(cursor, "user_id", user_id))
    items = [UserRatingEntry(book_id=r["book_id"], rating=r["rating"], updated_at=r["updated_at"])
             for r in page.items]
    return UserRatings(user_id=user_id, count=len(items), ratings=items, next_cursor=encode_cursor(page.last_key))
