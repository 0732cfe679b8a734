"""Thin HTTP handlers: parse, call the engine, shape the response."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from bookrec_common.auth import admin_only, check_internal_token
from bookrec_common.errors import (
    DependencyUnavailable,
    NotFound,
    ValidationFailed,
    decode_strictly,
    field_error,
    invalid,
)
from bookrec_common.params import BookIdPath, UserIdPath, check_book_id, check_book_ids, check_user_id
from bookrec_common.ratelimit import rate_limit
from bookrec_recommendation.engine import RecommendationEngine
from bookrec_recommendation.freshness import STAMP, AcceptedChange
from bookrec_recommendation.models import (
    Invalidated,
    InvalidateRequest,
    Recommendations,
    RecommendedBook,
    RefreshAccepted,
    SimilarBooks,
    Trending,
    TrendingItem,
    TrendingWindow,
)
from bookrec_recommendation.trending import shown
from bookrec_recommendation.trending_store import TrendingBoard

Limit = Annotated[int, Parameter(ge=1, le=100, description="how many books, 1..100")]
SimilarLimit = Annotated[int, Parameter(ge=1, le=50, description="how many books, 1..50")]
SimilarReader = Annotated[str | None, Parameter(
    description="a reader: the list ranked by their own recommendations (counted against the recommendations "
                "rate limit)")]
MAX_EXCLUDED = 100
Exclude = Annotated[list[str] | None, Parameter(
    description=f"book ids not to recommend, comma-separated or repeated: up to {MAX_EXCLUDED}")]
ReaderSubject = Annotated[str | None, Parameter(
    max_length=200, description="only books with this subject (case-insensitive)")]


# Counted per client address against RATE_LIMIT, as searches are: any id may be asked for, without a token.
@get("/recommendations/{user_id:str}", summary="Books to read next for a user",
     guards=[rate_limit("recommendations")])
async def recommend(user_id: UserIdPath, engine: NamedDependency[RecommendationEngine],
                    limit: Limit = 10, exclude: Exclude = None, subject: ReaderSubject = None) -> Recommendations:
    check_user_id(user_id)
    excluded = _excluded(exclude or [])
    if subject is not None and not subject.strip():
        raise invalid("subject", "blank subject", "query")
    if not engine.ready:
        raise DependencyUnavailable("the recommendation model is still being built", code="model_loading")
    result, source = await engine.respecting(user_id, limit, excluded, subject.strip() if subject else None)
    books = []
    for book_id, score, reason in result.items:
        described = engine.describe(book_id)
        if described is None:  # removed from the catalogue since the model was built
            continue
        title, authors = described
        books.append(RecommendedBook(book_id=book_id, title=title, authors=authors, score=score,
                                     reason=reason))
        if len(books) == limit:
            break
    return Recommendations(user_id=user_id, strategy=result.strategy, source=source,
                           model_version=result.model_version, recommendations=books)


@post("/recommendations/refresh", status_code=HTTP_202_ACCEPTED,
      summary="Take up the newest model and pre-warm the cache, in the background",
      description="Answers at once; the new model's version appears in responses once it is swapped in. "
                  "With an artifact bucket the replica loads the builder's newest model if it is newer than "
                  "its own (the builder publishes on its schedule); without one it rebuilds from the tables. "
                  "A refresh requested while an earlier one runs joins it and starts nothing "
                  "(`refresh: already_running`); otherwise `refresh: started`. Needs an admin's bearer "
                  "token.",
      guards=[admin_only], security=[{"bearer": []}])
async def refresh(engine: NamedDependency[RecommendationEngine]) -> RefreshAccepted:
    current = engine.recommender.version if engine.recommender else None
    return RefreshAccepted(current_model_version=current,
                           refresh="started" if engine.start_refresh() else "already_running")


def _excluded(values: list[str]) -> frozenset[str]:
    """`exclude=` as given (repeated, each comma-separated): every id checked, at most MAX_EXCLUDED."""
    ids = [book_id for value in values for book_id in value.split(",")]
    if len(ids) > MAX_EXCLUDED:
        raise ValidationFailed(f"at most {MAX_EXCLUDED} book ids may be excluded, {len(ids)} given",
                               errors=[field_error("exclude", f"more than {MAX_EXCLUDED} ids", "query")])
    return frozenset(check_book_ids(ids, "exclude", "query"))


@get("/books/{book_id:str}/similar", summary="Books like this one",
     description="The next book of its series first, then what its readers also rated (`reason`: how many "
                 "readers rated both), then books sharing its authors, subjects or series. Served from the "
                 "replica's memory: a book added since the model was built is not known yet (404). With "
                 "`user_id`, the same books re-ranked for that reader: those among the reader's own "
                 "recommendations (cached as `GET /recommendations/{user_id}` caches them) first.")
async def similar(request: Request, book_id: BookIdPath, engine: NamedDependency[RecommendationEngine],
                  limit: SimilarLimit = 10, user_id: SimilarReader = None) -> SimilarBooks:
    check_book_id(book_id)
    if user_id is not None:
        check_user_id(user_id, "user_id", "query")
        # the reader's own list costs what GET /recommendations does: counted against the same limit
        await rate_limit("recommendations")(request, request.route_handler)
    if not engine.ready:
        raise DependencyUnavailable("the recommendation model is still being built", code="model_loading")
    if user_id is None:
        picks, source = engine.similar(book_id), None
    else:
        picks, source = await engine.similar_for(book_id, user_id)
    if picks is None:
        raise NotFound(f"book {book_id} not found", code="book_not_found")
    items = []
    for pick in picks[:limit]:
        described = engine.describe(pick.book_id)
        if described is not None:
            items.append(RecommendedBook(book_id=pick.book_id, title=described[0], authors=described[1],
                                         score=pick.score, reason=pick.reason))
    return SimilarBooks(book_id=book_id, items=items, user_id=user_id, source=source)


def internal_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard, so a call without the internal token is refused before its body is read."""
    check_internal_token(connection, connection.app.state.internal_token)


@post("/recommendations/invalidate/{user_id:str}", status_code=HTTP_200_OK, guards=[internal_only],
      summary="Forget a user's cached recommendations (internal: called by ratings)",
      description="`cache` says what was done: deleted, not_cached, unavailable (Redis did not answer: "
                  "still 200, the entry expires by its TTL; counted in "
                  "`recommendation_cache_invalidations_total`), or disabled (no Redis configured). With "
                  "Redis up, the user's generation is bumped with the deletion, so no replica stores a list "
                  "computed from ratings read before this call; with the accepted change in the body, no "
                  "list is cached until the user's ratings as read show it (the by-user index may lag). "
                  "With Redis unavailable (down, read-only mid-failover, full, loading, busy), only this "
                  "replica's in-process copy is dropped: other replicas may answer a list up to "
                  "CACHE_FALLBACK_SECONDS (default 30) stale.")
async def invalidate(request: Request, user_id: UserIdPath, engine: NamedDependency[RecommendationEngine],
                     data: JSONBody[InvalidateRequest | None] = None) -> Invalidated:
    check_user_id(user_id)
    change = _accepted_change(await request.body())
    deletion = await engine.invalidate(user_id, change)
    return Invalidated(user_id=user_id, invalidated=deletion.removed, cache=deletion.outcome)


def _accepted_change(body: bytes) -> AcceptedChange | None:
    """The body's change, checked whole (no body: none, as older callers send)."""
    if not body.strip():
        return None
    change: InvalidateRequest = decode_strictly(body, InvalidateRequest)
    check_book_id(change.book_id, source="body")
    if not STAMP.fullmatch(change.changed_at):
        raise invalid("changed_at", "malformed stamp",
                      detail=f"{change.changed_at!r} is not a stamp such as 2026-12-02T09:00:00.000000Z")
    return AcceptedChange(change.changed_at, change.book_id, change.removed, change.kind)


Window = Annotated[TrendingWindow, Parameter(description="now, day, week or month")]
Subject = Annotated[str | None, Parameter(min_length=1, max_length=200,
                                          description="only books with this subject (case-insensitive)")]


@get("/trending", summary="Books readers rate and shelve, by window",
     description="day, week, month: readers who rated or shelved the book in the last 24, 168, 720 hours "
                 "(each reader once per book); now: Open Library's z-score of the last 24 h against the 7 "
                 "days before (books with fewer than 5 events, or not above their usual, are left out). "
                 "Served from memory, refreshed from Redis: an event shows within a minute.")
async def trending(engine: NamedDependency[RecommendationEngine], board: NamedDependency[TrendingBoard],
                   window: Window = "day", limit: Limit = 10, subject: Subject = None) -> Trending:
    recommender = engine.recommender
    if recommender is None:
        raise DependencyUnavailable("the catalogue is still loading", code="model_loading")
    if subject is not None and not subject.strip():
        raise invalid("subject", "blank subject", "query")
    books = shown(board.ranking(window), recommender.catalogue.entries, limit,
                  subject.strip() if subject else None)
    return Trending(window=window, items=[
        TrendingItem(book_id=book.book_id, title=entry.title, authors=list(entry.authors), events=book.events,
                     score=book.score) for book, entry in books])
