"""Thin HTTP handlers: parse, call domain and store, shape the response."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from bookrec_catalog.catalog import cover_url, utc_now
from bookrec_common.activity import ActivityLog
from bookrec_common.auth import Principal, require_principal
from bookrec_common.context import request_id_of
from bookrec_common.errors import Forbidden, NotFound, decode_strictly, invalid
from bookrec_common.params import BookIdPath, UserIdPath, check_book_id, check_user_id
from bookrec_common.ratelimit import rate_limit
from bookrec_ratings.domain import ShelvingKind, decode_cursor, encode_cursor, is_shelf, user_shelf
from bookrec_ratings.invalidation import RecommendationInvalidator
from bookrec_ratings.models import (
    SHELF_RULE,
    BookRatingEntry,
    BookRatings,
    RateRequest,
    RateResponse,
    ReaderShelf,
    ShelfEntry,
    ShelveRequest,
    ShelveResponse,
    UserRatingEntry,
    UserRatings,
)
from bookrec_ratings.store import RatingStore

Limit = Annotated[int, Parameter(ge=1, le=100, description="page size, 1..100")]
Cursor = Annotated[str | None, Parameter(max_length=512, description="next_cursor of the previous page")]


def _start_key(cursor: str | None, owner: dict[str, str], moment: str = "updated_at") -> dict[str, str] | None:
    """The cursor's key, if it is one of this listing: its owner (`owner`: field -> value) and its kind
    (`moment`, the listing's time: a rating's updated_at, a shelf entry's shelved_at)."""
    if cursor is None:
        return None
    try:
        key = decode_cursor(cursor)
    except ValueError as exc:
        raise invalid("cursor", str(exc), "query", detail=str(exc)) from None
    if moment not in key or any(key.get(field) != value for field, value in owner.items()):
        raise invalid("cursor", "cursor of another listing", "query",
                      detail="cursor belongs to another listing")
    return key


def _acting_as(principal: NamedDependency[Principal], user_id: str, may_moderate: bool = False) -> str:
    """Users write only their own ratings and shelves (admins may also remove others' ratings)."""
    if user_id != principal.subject and not (may_moderate and principal.is_admin):
        raise Forbidden(f"the token's user ({principal.subject}) may not change what {user_id!r} wrote",
                        code="user_mismatch")
    return user_id


# Writes need a bearer token; the token's `sub` is the user. Counted per user against RATE_LIMIT.
_WRITE: dict[str, Any] = {"dependencies": {"principal": Provide(require_principal)},
                          "guards": [rate_limit("rating_writes", by_user=True)], "security": [{"bearer": []}]}


@post("/books/{book_id:str}/rate", summary="Rate a book 1..5 as the token's user (re-rating replaces)",
      responses=None, status_code=HTTP_201_CREATED, **_WRITE)
async def rate_book(request: Request, book_id: BookIdPath, data: JSONBody[RateRequest],
                    principal: NamedDependency[Principal],
                    ratings: NamedDependency[RatingStore],
                    invalidator: NamedDependency[RecommendationInvalidator],
                    activity: NamedDependency[ActivityLog]) -> Response[RateResponse]:
    check_book_id(book_id)
    body: RateRequest = decode_strictly(await request.body(), RateRequest)
    user_id = _acting_as(principal, body.user_id or principal.subject)
    change = await ratings.change(book_id, user_id, body.rating, utc_now())
    written = change.current or {}
    await invalidator.invalidate(user_id, request_id_of(request.scope), book_id=book_id,
                                 changed_at=written.get("updated_at"))
    await activity.record(book_id, user_id, written["updated_at"])
    result = RateResponse(book_id=book_id, user_id=user_id, rating=body.rating,
                          previous_rating=change.previous["rating"] if change.previous else None,
                          created_at=written["created_at"], updated_at=written["updated_at"])
    return Response(result, status_code=HTTP_200_OK if change.previous else HTTP_201_CREATED)


@delete("/books/{book_id:str}/ratings/{user_id:str}", status_code=HTTP_204_NO_CONTENT,
        summary="Remove a user's rating of a book and its contribution (own ratings; admins: any)", **_WRITE)
async def delete_rating(request: Request, book_id: BookIdPath, user_id: UserIdPath,
                        principal: NamedDependency[Principal],
                        ratings: NamedDependency[RatingStore],
                        invalidator: NamedDependency[RecommendationInvalidator]) -> None:
    check_book_id(book_id)
    _acting_as(principal, check_user_id(user_id), may_moderate=True)
    removed_at = utc_now()
    await ratings.change(book_id, user_id, None, removed_at)
    await invalidator.invalidate(user_id, request_id_of(request.scope), book_id=book_id, changed_at=removed_at,
                                 removed=True)


@get("/books/{book_id:str}/ratings", summary="A book's rating aggregate and its ratings, newest first")
async def book_ratings(book_id: BookIdPath, ratings: NamedDependency[RatingStore],
                       limit: Limit = 20, cursor: Cursor = None) -> BookRatings:
    check_book_id(book_id)
    start = _start_key(cursor, {"book_id": book_id})
    counts, page = await asyncio.gather(ratings.book_counts(book_id), ratings.ratings_of_book(book_id, limit, start))
    if counts is None:
        raise NotFound(f"book {book_id} not found", code="book_not_found")
    aggregate = counts.aggregate
    return BookRatings(
        book_id=book_id, average_rating=aggregate.average, total_ratings=aggregate.count,
        ratings_distribution=aggregate.distribution,
        ratings=[BookRatingEntry(user_id=r["user_id"], rating=r["rating"], updated_at=r["updated_at"])
                 for r in page.items],
        next_cursor=encode_cursor(page.last_key), shelf_counts=counts.shelves.counts,
    )


@get("/users/{user_id:str}/ratings", summary="A user's ratings, newest first")
async def user_ratings(user_id: UserIdPath, ratings: NamedDependency[RatingStore],
                       limit: Limit = 20, cursor: Cursor = None) -> UserRatings:
    check_user_id(user_id)
    page = await ratings.ratings_of_user(user_id, limit, _start_key(cursor, {"user_id": user_id}))
    items = [UserRatingEntry(book_id=r["book_id"], rating=r["rating"], updated_at=r["updated_at"])
             for r in page.items]
    return UserRatings(user_id=user_id, count=len(items), ratings=items,
                       next_cursor=encode_cursor(page.last_key))


@put("/books/{book_id:str}/shelf", status_code=HTTP_201_CREATED, responses=None,
     summary="Put a book on one of the token's user's shelves (want_to_read, currently_reading, read), "
             "moving it from another: 201 new, 200 moved or already there", **_WRITE)
async def shelve_book(request: Request, book_id: BookIdPath, data: JSONBody[ShelveRequest],
                      principal: NamedDependency[Principal],
                      ratings: NamedDependency[RatingStore],
                      invalidator: NamedDependency[RecommendationInvalidator],
                      activity: NamedDependency[ActivityLog]) -> Response[ShelveResponse]:
    check_book_id(book_id)
    body: ShelveRequest = decode_strictly(await request.body(), ShelveRequest)
    user_id = _acting_as(principal, body.user_id or principal.subject)
    change = await ratings.shelve(book_id, user_id, body.shelf, utc_now())
    entry = change.current_shelf or {}
    if change.shelving is not ShelvingKind.UNCHANGED:
        await invalidator.invalidate(user_id, request_id_of(request.scope), book_id=book_id,
                                     changed_at=entry["shelved_at"], kind="shelf")
        await activity.record(book_id, user_id, entry["shelved_at"])
    previous = change.previous_shelf["shelf"] if change.previous_shelf else None
    result = ShelveResponse(book_id=book_id, user_id=user_id, shelf=body.shelf, previous_shelf=previous,
                            shelved_at=entry["shelved_at"])
    return Response(result, status_code=HTTP_200_OK if change.previous_shelf else HTTP_201_CREATED)


@delete("/books/{book_id:str}/shelf", status_code=HTTP_204_NO_CONTENT,
        summary="Take a book off the token's user's shelves (404 not_shelved when it is on none)", **_WRITE)
async def unshelve_book(request: Request, book_id: BookIdPath, principal: NamedDependency[Principal],
                        ratings: NamedDependency[RatingStore],
                        invalidator: NamedDependency[RecommendationInvalidator]) -> None:
    check_book_id(book_id)
    removed_at = utc_now()
    await ratings.shelve(book_id, principal.subject, None, removed_at)
    await invalidator.invalidate(principal.subject, request_id_of(request.scope), book_id=book_id,
                                 changed_at=removed_at, removed=True, kind="shelf")


@get("/users/{user_id:str}/shelves/{shelf:str}", summary="A reader's shelf, most recently shelved first")
async def user_shelf_listing(user_id: UserIdPath, shelf: Annotated[str, Parameter(description=SHELF_RULE)],
                             ratings: NamedDependency[RatingStore],
                             limit: Limit = 20, cursor: Cursor = None) -> ReaderShelf:
    check_user_id(user_id)
    if not is_shelf(shelf):
        raise invalid("shelf", f"must be {SHELF_RULE}", "path", detail=f"{shelf!r} is not a shelf ({SHELF_RULE})")
    start = _start_key(cursor, {"user_shelf": user_shelf(user_id, shelf)}, "shelved_at")
    page = await ratings.shelf_of_user(user_id, shelf, limit, start)
    books = await ratings.book_summaries([entry["book_id"] for entry in page.items])
    items = [_shelf_entry(entry, books.get(entry["book_id"], {})) for entry in page.items]
    return ReaderShelf(user_id=user_id, shelf=shelf, count=len(items), items=items,
                       next_cursor=encode_cursor(page.last_key))


def _shelf_entry(entry: dict[str, Any], book: dict[str, Any]) -> ShelfEntry:
    gone = not book or "deleted_at" in book
    return ShelfEntry(book_id=entry["book_id"], title=None if gone else book.get("title"),
                      authors=[] if gone else [a.get("name", "") for a in book.get("authors", [])],
                      cover_id=None if gone else book.get("cover_id"),
                      cover_url=None if gone else cover_url(book.get("cover_id"), book.get("cover_url")),
                      shelved_at=entry["shelved_at"])
