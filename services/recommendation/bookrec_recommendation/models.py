"""The recommendation contract."""

from __future__ import annotations

import msgspec


class RecommendedBook(msgspec.Struct):
    book_id: str
    title: str
    authors: list[str]
    score: float
    reason: str


class Recommendations(msgspec.Struct):
    user_id: str
    strategy: str
    source: str  # "cache" or "computed"
    model_version: str
    recommendations: list[RecommendedBook]


class RefreshResult(msgspec.Struct):
    model_version: str
    books: int
    ratings: int
    build_seconds: float
    warmed_users: int


class Invalidated(msgspec.Struct):
    user_id: str
    invalidated: bool
