"""The recommendation service's settings: one typed object, read from the environment once at start (`get_settings`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from bookrec_common.settings import ArtifactSettings, AuthSettings


class ModelSettings(ArtifactSettings):
    """What building the model needs: the builder runs with these alone (no token verification)."""

    service_name: str = "recommendation"
    books_table: str
    ratings_table: str
    # Replayed into the trending activity if Redis loses it (empty: only the ratings are).
    shelves_table: str = ""
    neighbours: int = Field(default=100, ge=1)
    regularisation: float = Field(default=25.0, gt=0)  # chosen by the offline evaluation
    scan_segments: int = Field(default=4, ge=1, le=64)


class RecommendationSettings(ModelSettings, AuthSettings):
    cache_ttl_seconds: int = Field(default=600, ge=0)
    # While Redis is down each replica answers from its own in-process cache, whose lists live this long;
    # an invalidation then reaches only the replica that receives it, so the others may answer a list up to
    # this many seconds stale (with Redis up, none is ever served: see RecommendationCache).
    cache_fallback_seconds: float = Field(default=30, gt=0, le=600)
    # Without an artifact bucket only: how often this process asks the change feed whether to train its own
    # model again (0: only on POST /recommendations/refresh). With one, the builder publishes and replicas
    # look every artifact_poll_seconds.
    model_refresh_seconds: float = Field(default=900, ge=0)
    internal_token: str = ""
    # The longest list computed and cached, so a later larger `limit` is never cut short.
    cached_length: int = Field(default=100, ge=1, le=100)
    # Recommendation reads per client address per minute, shared by the replicas through Redis: a miss costs
    # a DynamoDB Query and a few ms of scoring, and any id may be asked for without a token.
    rate_limit: int = Field(default=600, ge=0)
    # How often a replica reads the fleet's trending counts from Redis (they are at most 20 s old when read):
    # an event shows in GET /trending within about 20 s + this.
    trending_refresh_seconds: float = Field(default=15, gt=0, le=30)


@lru_cache(maxsize=1)
def get_settings() -> RecommendationSettings:
    return RecommendationSettings()  # type: ignore[call-arg]  # the required fields come from the environment


def get_model_settings() -> ModelSettings:
    return ModelSettings()  # type: ignore[call-arg]  # the required fields come from the environment
