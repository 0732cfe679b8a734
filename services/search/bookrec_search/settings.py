from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from bookrec_common.settings import ServiceSettings


class SearchSettings(ServiceSettings):
    service_name: str = "search"
    port: int = 8001
    books_table: str
    # How soon added or changed books (rating aggregates included) become searchable.
    index_refresh_seconds: float = Field(default=30.0, ge=0)
    # Off: autocomplete always answers from the title-prefix GSI (and search waits for nothing).
    index_enabled: bool = True
    scan_segments: int = Field(default=4, ge=1, le=64)


@lru_cache(maxsize=1)
def get_settings() -> SearchSettings:
    return SearchSettings()  # type: ignore[call-arg]
