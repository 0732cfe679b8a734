"""The ratings service's settings: one typed object, read from the environment once at start (`get_settings`)."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from bookrec_common.settings import AuthSettings


class RatingsSettings(AuthSettings):
    service_name: str = "ratings"
    books_table: str
    ratings_table: str
    shelves_table: str
    # Where invalidations go: the recommender's private DNS name on AWS, its local port here.
    recommendation_url: str = ""
    internal_token: str = ""
    invalidation_timeout: float = Field(default=0.3, gt=0)
    invalidation_retries: int = Field(default=2, ge=0)
    # Optimistic concurrency: attempts of read-compute-conditional-write before a 503.
    write_max_attempts: int = Field(default=12, ge=1)
    # Rating writes and deletes per user per minute, shared by the replicas through Redis.
    rate_limit: int = Field(default=60, ge=0)

    @field_validator("recommendation_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError("RECOMMENDATION_URL must be an http(s) URL such as http://recommendation:8004")
        return value.rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> RatingsSettings:
    return RatingsSettings()  # type: ignore[call-arg]  # the required fields come from the environment
