"""The ratings contract: request and response bodies."""

from __future__ import annotations

from typing import Annotated

import msgspec

from bookrec_catalog.catalog import SHELVES, USER_ID, USER_ID_RULE, is_user_id
from bookrec_ratings.domain import MAX_RATING, MIN_RATING, Shelf

UserId = Annotated[str, msgspec.Meta(pattern=USER_ID.pattern, min_length=1, max_length=64,
                                     description=USER_ID_RULE)]
Stars = Annotated[int, msgspec.Meta(ge=MIN_RATING, le=MAX_RATING, description="an integer 1..5")]
SHELF_RULE = f"one of {', '.join(SHELVES)}"


class RateRequest(msgspec.Struct, forbid_unknown_fields=True):
    rating: Stars
    # Absent or null: the token's user. Given, it must be that user (else 403).
    user_id: UserId | None = None

    def __post_init__(self) -> None:
        # The pattern documents the rule; this enforces it whole (a pattern's `$` lets "a\n" through).
        if self.user_id is not None and not is_user_id(self.user_id):
            raise ValueError(f"user_id must be {USER_ID_RULE}")


class RateResponse(msgspec.Struct):
    book_id: str
    user_id: str
    rating: int
    previous_rating: int | None
    created_at: str
    updated_at: str


class BookRatingEntry(msgspec.Struct):
    user_id: str
    rating: int
    updated_at: str


class BookRatings(msgspec.Struct):
    book_id: str
    average_rating: float
    total_ratings: int
    ratings_distribution: dict[str, int]
    ratings: list[BookRatingEntry]
    next_cursor: str | None
    # Readers per shelf (want_to_read, currently_reading, read), exact like the aggregate beside it.
    shelf_counts: dict[str, int]


class UserRatingEntry(msgspec.Struct):
    book_id: str
    rating: int
    updated_at: str


class UserRatings(msgspec.Struct):
    user_id: str
    count: int
    ratings: list[UserRatingEntry]
    next_cursor: str | None


class ShelveRequest(msgspec.Struct, forbid_unknown_fields=True):
    shelf: Shelf
    # As in a rating: absent or null, the token's user; given, it must be that user (else 403).
    user_id: UserId | None = None

    def __post_init__(self) -> None:
        if self.user_id is not None and not is_user_id(self.user_id):
            raise ValueError(f"user_id must be {USER_ID_RULE}")


class ShelveResponse(msgspec.Struct):
    book_id: str
    user_id: str
    shelf: Shelf
    previous_shelf: Shelf | None
    shelved_at: str


class ShelfEntry(msgspec.Struct):
    """A book on a reader's shelf; title null, authors empty, no cover: a book no longer in the catalogue."""

    book_id: str
    title: str | None
    authors: list[str]
    cover_id: int | None
    # The cover image, by the catalogue's one rule (bookrec_catalog.catalog.cover_url), as bookdetail shows it.
    cover_url: str | None
    shelved_at: str


class ReaderShelf(msgspec.Struct):
    user_id: str
    shelf: Shelf
    count: int
    items: list[ShelfEntry]
    next_cursor: str | None
