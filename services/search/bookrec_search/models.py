"""The search contract."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Limit = Annotated[int, msgspec.Meta(ge=1, le=100, description="1..100")]
Offset = Annotated[int, msgspec.Meta(ge=0, le=10_000, description="0..10,000")]
Year = Annotated[int, msgspec.Meta(ge=-5000, le=3000)]


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[str, msgspec.Meta(max_length=500)]
    limit: Limit = 20
    offset: Offset = 0


class AdvancedSearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    author: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    subject: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    min_year: Year | None = None
    max_year: Year | None = None
    min_rating: Annotated[float, msgspec.Meta(ge=0, le=5, description="0..5")] | None = None
    language: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}$")] | None = None
    sort: Literal["relevance", "rating", "year", "title"] = "relevance"
    order: Literal["asc", "desc"] | None = None
    limit: Limit = 20
    offset: Offset = 0


class BookSummary(msgspec.Struct):
    book_id: str
    title: str
    authors: list[str]
    first_publish_year: int | None
    avg_rating: float
    rating_count: int
    cover_id: int | None
    score: float


class Correction(msgspec.Struct):
    """A query word found only through typo correction, and the words it was taken for."""

    word: str  # as normalised (lower case, accents folded)
    corrected_to: list[str]


class SearchResponse(msgspec.Struct):
    query: str
    total: int
    count: int
    offset: int
    limit: int
    matched: Literal["all_words", "any_word"]
    items: list[BookSummary]
    corrections: list[Correction] = []


class AdvancedSearchResponse(msgspec.Struct):
    filters_applied: dict[str, str | float]  # one JSON type per value: "number" covers years too
    sort: str
    order: str
    total: int
    count: int
    offset: int
    limit: int
    items: list[BookSummary]


class AutocompleteResponse(msgspec.Struct):
    """The search shape (clients of the replaced system read `count` and `items`), plus where it came from."""

    query: str
    total: int
    count: int
    offset: int
    limit: int
    source: Literal["index", "dynamodb"]
    items: list[BookSummary]
