from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from bookrec_common.settings import AuthSettings


class RecommendationSettings(AuthSettings):
    service_name: str = "recommendation"
    port: int = 8004
    books_table: str
    ratings_table: str
    cache_ttl_seconds: int = Field(default=600, ge=0)
    # While Redis is down each replica answers from its own in-process cache, whose lists live this long;
    # an invalidation then reaches only the replica that receives it, so the others may answer a list up to
    # this many seconds stale (with Redis up, none is ever served: see RecommendationCache).
    cache_fallback_seconds: float = Field(default=30, gt=0, le=600)
    model_refresh_seconds: float = Field(default=900, ge=0)  # 0: only on POST /recommendations/refresh
    internal_token: str = ""
    # The longest list computed and cached, so a later larger `limit` is never cut short.
    cached_length: int = Field(default=100, ge=1, le=100)
    neighbours: int = Field(default=100, ge=1)
    regularisation: float = Field(default=25.0, gt=0)  # chosen by the offline evaluation
    scan_segments: int = Field(default=4, ge=1, le=64)


@lru_cache(maxsize=1)
def get_settings() -> RecommendationSettings:
    return RecommendationSettings()  # type: ignore[call-arg]
