"""The bookdetail service's settings: one typed object, read from the environment once at start (`get_settings`)."""

from __future__ import annotations

from functools import lru_cache

from bookrec_common.settings import ServiceSettings


class BookdetailSettings(ServiceSettings):
    service_name: str = "bookdetail"
    books_table: str
    # BatchGetItem may leave keys unprocessed under throttling; retried this many times, then 503.
    batch_max_attempts: int = 6


@lru_cache(maxsize=1)
def get_settings() -> BookdetailSettings:
    return BookdetailSettings()  # type: ignore[call-arg]  # books_table comes from the environment
