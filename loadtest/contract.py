"""Response bodies of the public routes as a client sees them (the services' OpenAPI documents and models).

Decoding a body into these structs checks every field's presence and type in
C (msgspec), cheap enough to run on every response of a load test. Extra
fields are allowed: the contract may grow without breaking the load test.
`ANSWERS` names the routes whose documented answer each struct restates;
loadtest/tests/test_contract_schema.py holds every field and type of these
structs to those documents, so a contract that drifts breaks a test, not a
load run. A field with a default is one only some of its routes send.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class BookSummary(msgspec.Struct):
    book_id: str
    title: str
    authors: list[str]
    first_publish_year: int | None
    avg_rating: float
    rating_count: int
    cover_id: int | None
    score: float


class SearchPage(msgspec.Struct):
    total: int
    count: int
    offset: int
    limit: int
    items: list[BookSummary]
    query: str | None = None  # full-text and autocomplete answers
    filters_applied: dict[str, str | float] | None = None  # advanced search answers


class Author(msgspec.Struct):
    author_id: str | None
    name: str


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


class Batch(msgspec.Struct):
    count: int
    items: list[Book]
    missing: list[str]


class Rate(msgspec.Struct):
    book_id: str
    user_id: str
    rating: int
    previous_rating: int | None
    created_at: str
    updated_at: str


class BookRating(msgspec.Struct):
    user_id: str
    rating: int
    updated_at: str


class BookRatings(msgspec.Struct):
    book_id: str
    average_rating: float
    total_ratings: int
    ratings_distribution: dict[str, int]
    ratings: list[BookRating]
    next_cursor: str | None


class UserRating(msgspec.Struct):
    book_id: str
    rating: int
    updated_at: str


class UserRatings(msgspec.Struct):
    user_id: str
    count: int
    ratings: list[UserRating]
    next_cursor: str | None


class Recommendation(msgspec.Struct):
    book_id: str
    title: str
    authors: list[str]
    score: float
    reason: str


class Recommendations(msgspec.Struct):
    user_id: str
    strategy: str
    source: Literal["cache", "computed"]
    model_version: str
    recommendations: list[Recommendation]


Shelf = Literal["want_to_read", "currently_reading", "read"]


class Shelving(msgspec.Struct):
    book_id: str
    user_id: str
    shelf: Shelf
    previous_shelf: Shelf | None
    shelved_at: str


class ShelfEntry(msgspec.Struct):
    book_id: str
    title: str | None
    authors: list[str]
    cover_id: int | None
    shelved_at: str


class ReaderShelf(msgspec.Struct):
    user_id: str
    shelf: Shelf
    count: int
    items: list[ShelfEntry]
    next_cursor: str | None


class SimilarBooks(msgspec.Struct):
    book_id: str
    items: list[Recommendation]
    user_id: str | None = None
    source: Literal["cache", "computed"] | None = None


class TrendingBook(msgspec.Struct):
    book_id: str
    title: str
    authors: list[str]
    events: int
    score: float


class Trending(msgspec.Struct):
    window: Literal["now", "day", "week", "month"]
    items: list[TrendingBook]


class Problem(msgspec.Struct):
    """RFC 9457 Problem Details, as every error of every route is answered."""

    type: str
    title: str
    status: int
    detail: str | None = None
    code: str | None = None


# Each struct: the routes (service in infrastructure/definitions/services.json, method, OpenAPI path) whose
# 2xx answer it decodes. Problem is every error of every route, made by bookrec_common.errors.
ANSWERS: dict[type[msgspec.Struct], tuple[tuple[str, str, str], ...]] = {
    SearchPage: (("search", "GET", "/search"), ("search", "POST", "/search"),
                 ("search", "POST", "/search/advanced"), ("search", "GET", "/search/autocomplete"),
                 ("search", "GET", "/search/shard/{prefix}")),
    Book: (("bookdetail", "GET", "/books/{book_id}"),),
    Batch: (("bookdetail", "POST", "/books/batch"),),
    Rate: (("ratings", "POST", "/books/{book_id}/rate"),),
    BookRatings: (("ratings", "GET", "/books/{book_id}/ratings"),),
    UserRatings: (("ratings", "GET", "/users/{user_id}/ratings"),),
    Recommendations: (("recommendation", "GET", "/recommendations/{user_id}"),),
    Shelving: (("ratings", "PUT", "/books/{book_id}/shelf"),),
    ReaderShelf: (("ratings", "GET", "/users/{user_id}/shelves/{shelf}"),),
    SimilarBooks: (("recommendation", "GET", "/books/{book_id}/similar"),),
    Trending: (("recommendation", "GET", "/trending"),),
}
