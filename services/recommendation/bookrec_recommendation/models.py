"""The recommendation contract."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from bookrec_recommendation.freshness import ChangeKind

# What one refresh request did (see RefreshAccepted.refresh).
RefreshOutcome = Literal["started", "already_running"]
# What one invalidation did to the user's cached entry (see Invalidated.cache).
InvalidationOutcome = Literal["deleted", "not_cached", "unavailable", "disabled"]
# Where a list came from: the shared cache, or computed for this request.
RecommendationSource = Literal["cache", "computed"]


class SimilarBooks(msgspec.Struct):
    book_id: str
    items: Annotated[list[RecommendedBook], msgspec.Meta(
        description="the series' next book first (if any), then what readers of the book also rated, then "
                    "books sharing authors, subjects or series; for a reader, those among the reader's own "
                    "recommendations first, in their order")]
    user_id: Annotated[str | None, msgspec.Meta(
        description="the reader the list is ranked for (`user_id=`); null: the list everyone gets")] = None
    source: Annotated[RecommendationSource | None, msgspec.Meta(
        description="where the reader's own list came from (cache or computed); null without a reader")] = None


class RecommendedBook(msgspec.Struct):
    book_id: str
    title: str
    authors: list[str]
    score: float
    reason: str


class Recommendations(msgspec.Struct):
    user_id: str
    strategy: str
    source: RecommendationSource
    model_version: str
    recommendations: list[RecommendedBook]


class RefreshAccepted(msgspec.Struct):
    current_model_version: Annotated[str | None, msgspec.Meta(
        description="the model answering now (null while the first one is built)")]
    refresh: Annotated[RefreshOutcome, msgspec.Meta(
        description="started: this request started a rebuild (and cache pre-warm); already_running: one "
                    "requested earlier is still running and this request joined it, starting nothing")]


class InvalidateRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The accepted change an invalidation is for (optional: without it only the generation moves)."""

    book_id: Annotated[str, msgspec.Meta(description="the book rated or shelved, or taken off")]
    changed_at: Annotated[str, msgspec.Meta(
        description="the rating's updated_at, or the shelving's shelved_at, as the ratings service wrote it "
                    "(2026-12-02T09:00:00.000000Z), or when it was removed")]
    removed: Annotated[bool, msgspec.Meta(
        description="true: the rating was removed, or the book taken off the reader's shelves")] = False
    kind: Annotated[ChangeKind, msgspec.Meta(
        description="rating (the default) or shelf: which of the reader's reads must show the change")] = "rating"


class Invalidated(msgspec.Struct):
    user_id: str
    invalidated: Annotated[bool, msgspec.Meta(
        description="true only when a cached entry of the user existed and was removed by this request")]
    cache: Annotated[InvalidationOutcome, msgspec.Meta(
        description="deleted: an entry was cached and is gone; not_cached: nothing was cached (nothing to "
                    "do); unavailable: Redis did not answer, only this replica's fallback copy (if any) was "
                    "removed, an entry in Redis lives until its TTL; disabled: no Redis configured, nothing "
                    "is cached")]


# Which trending list (see bookrec_recommendation.trending).
TrendingWindow = Literal["now", "day", "week", "month"]


class TrendingItem(msgspec.Struct):
    book_id: str
    title: str
    authors: list[str]
    events: Annotated[int, msgspec.Meta(
        description="readers who rated or shelved the book in the window (each once); for now: the last 24 h")]
    score: Annotated[float, msgspec.Meta(
        description="day/week/month: the events; now: Open Library's z-score against the 7 days before")]


class Trending(msgspec.Struct):
    window: TrendingWindow
    items: list[TrendingItem]
