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


class RefreshAccepted(msgspec.Struct):
    current_model_version: str | None
    refreshing: bool


class Invalidated(msgspec.Struct):
    user_id: str
    invalidated: bool
