from __future__ import annotations

from functools import lru_cache

from bookrec_common.settings import ServiceSettings


class RatingsSettings(ServiceSettings):
    service_name: str = "ratings"
    port: int = 8003
    books_table: str
    ratings_table: str
    # Where invalidations go: the recommender's private DNS name on AWS, its local port here.
    recommendation_url: str = ""
    internal_token: str = ""
    invalidation_timeout: float = 0.3
    invalidation_retries: int = 2
    # Optimistic concurrency: attempts of read-compute-conditional-write before a 503.
    write_max_attempts: int = 12
    page_default: int = 20
    page_max: int = 100


@lru_cache(maxsize=1)
def get_settings() -> RatingsSettings:
    return RatingsSettings()  # type: ignore[call-arg]
