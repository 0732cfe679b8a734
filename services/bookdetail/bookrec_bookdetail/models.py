"""The bookdetail contract: request and response bodies."""

from __future__ import annotations

from typing import Annotated

import msgspec

MAX_BATCH = 100


class Author(msgspec.Struct):
    author_id: str | None
    name: str


class Series(msgspec.Struct):
    name: str
    position: Annotated[float | None, msgspec.Meta(
        description="the book's number in the series (1, 2, 2.5), null when the source gives none")] = None


class ShelfCounts(msgspec.Struct):
    """How many readers have the book on each shelf (exact, kept beside the rating aggregates)."""

    want_to_read: int = 0
    currently_reading: int = 0
    read: int = 0


class Book(msgspec.Struct):
    book_id: str
    title: str
    subtitle: str | None
    authors: list[Author]
    subjects: list[str]
    first_publish_year: int | None
    isbn_13: list[str]
    language: str | None
    description: str | None
    cover_id: int | None
    cover_url: str | None
    avg_rating: float
    rating_count: int
    ratings_distribution: dict[str, int]
    created_at: str | None
    updated_at: str | None
    original_title: str | None = None  # the title in its own language and script, when it differs
    series: Series | None = None
    shelf_counts: ShelfCounts = msgspec.field(default_factory=ShelfCounts)


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    book_ids: Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_BATCH,
                                                description=f"1..{MAX_BATCH} book ids")]


class BatchResponse(msgspec.Struct):
    count: int
    items: list[Book]
    missing: list[str]
