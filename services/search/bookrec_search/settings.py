"""The search service's settings: one typed object, read from the environment once at start (`get_settings`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from bookrec_common.settings import ArtifactSettings


class SearchSettings(ArtifactSettings):
    service_name: str = "search"
    books_table: str
    # How soon added or changed books (rating aggregates included) become searchable; 0 turns refreshes off.
    index_refresh_seconds: float = Field(default=30.0, ge=0)
    # Each refresh reads the feed from this much before the previous read began: writers' clocks and the
    # GSI's propagation delay. Shorter than the refresh period, a change is read at most twice.
    index_refresh_overlap_seconds: float = Field(default=15.0, ge=0)
    # Off: no index; autocomplete answers from the title-prefix GSI and full-text search answers 503.
    index_enabled: bool = True
    scan_segments: int = Field(default=4, ge=1, le=64)
    # How long a GSI autocomplete answer is reused while the index is loading or off.
    autocomplete_fallback_cache_seconds: float = Field(default=10.0, ge=0)
    # Items per GSI Query page (0: DynamoDB's own 1 MB pages); smaller pages bound each call's latency.
    autocomplete_fallback_page_size: int = Field(default=0, ge=0, le=10_000)
    # Once its first index is in place, a replica faults in this many times the index's bytes of heap on a
    # background thread and frees them, for its refreshes to build in (a process's first refreshes would
    # otherwise fault in their memory: 11-13 s instead of 2 at 10M books). Only where the allocator keeps
    # what is freed (services.json's MALLOC_MMAP_MAX_=0); 0 turns it off.
    index_pretouch_ratio: float = Field(default=1.4, ge=0, le=4)
    # Searches per client address per minute, shared by the replicas through Redis.
    rate_limit: int = Field(default=1200, ge=0)


@lru_cache(maxsize=1)
def get_settings() -> SearchSettings:
    return SearchSettings()  # type: ignore[call-arg]  # the required fields come from the environment
