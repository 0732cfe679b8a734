"""Tells the recommender that a user's cached recommendations are stale.

Best effort by design: a failed invalidation is logged and counted, never
turned into a failed rating (the cache entry expires by its TTL anyway).
Each call names the accepted change it is for (book, `updated_at` or
`shelved_at`, removed, and `kind: "shelf"` for a shelving), so the recommender
caches no list computed from ratings or shelves read before that change shows
in their by-user index (eventually consistent on DynamoDB).
"""

from __future__ import annotations

import json
import logging
from typing import Literal

import aiohttp
from prometheus_client import Counter
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from yarl import URL

from bookrec_common.auth import INTERNAL_TOKEN_HEADER

log = logging.getLogger("bookrec.ratings.invalidation")
INVALIDATION_FAILURES = Counter("invalidation_failures_total",
                                "Invalidations the recommender did not confirm")
INVALIDATIONS = Counter("invalidations_total", "Invalidations confirmed by the recommender")
# The recommender's answer when its Redis did not answer: the stale entry lives until its TTL.
CACHE_UNAVAILABLE = "unavailable"


class InvalidationFailed(Exception):
    pass


class InvalidationRefused(InvalidationFailed):
    """A 4xx: configuration, not a blip, so not retried."""


class InvalidationIncomplete(InvalidationFailed):
    """The recommender answered but could not reach its cache. Not retried: its own Redis call already
    waited out the outage, and a rating should not wait three times for it."""


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, InvalidationFailed) and not isinstance(exc, (InvalidationRefused,
                                                                         InvalidationIncomplete))


def _cache_outcome(body: bytes) -> object:
    """The `cache` field of the recommender's answer, if any (without it a 2xx confirms the invalidation)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer.get("cache") if isinstance(answer, dict) else None


class RecommendationInvalidator:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, internal_token: str, timeout: float,
                 retries: int) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._token = internal_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._attempts = retries + 1

    async def _post(self, user_id: str, request_id: str, change: dict[str, object] | None) -> None:
        # Already URL-safe (validated user id); encoded=True keeps "." and ".." from being resolved away.
        url = URL(f"{self._base_url}/recommendations/invalidate/{user_id}", encoded=True)
        headers = {"X-Request-ID": request_id, INTERNAL_TOKEN_HEADER: self._token}
        try:
            async with self._http.post(url, headers=headers, json=change, timeout=self._timeout) as response:
                if response.status >= 500:
                    raise InvalidationFailed(f"recommender answered {response.status}")
                if response.status >= 400:
                    raise InvalidationRefused(f"recommender refused it with {response.status}")
                if _cache_outcome(await response.read()) == CACHE_UNAVAILABLE:
                    raise InvalidationIncomplete("recommender could not reach its cache")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise InvalidationFailed(f"{type(exc).__name__}: {exc}") from exc

    async def invalidate(self, user_id: str, request_id: str, *, book_id: str | None = None,
                         changed_at: str | None = None, removed: bool = False,
                         kind: Literal["rating", "shelf"] = "rating") -> bool:
        """Tell the recommender; `book_id` and `changed_at` (the rating's `updated_at`, the shelf entry's
        `shelved_at`, or when it was removed) name the accepted change, `kind` which of the reader's tables
        it is in (sent only for a shelf: a recommender that predates shelves reads a rating). True if it
        confirmed."""
        if not self._base_url:
            return False
        change: dict[str, object] | None = ({"book_id": book_id, "changed_at": changed_at, "removed": removed}
                                            if book_id and changed_at else None)
        if change is not None and kind == "shelf":
            change["kind"] = kind
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_random_exponential(multiplier=0.02, max=0.1),
                retry=retry_if_exception(_is_transient),
                reraise=True,
            ):
                with attempt:
                    await self._post(user_id, request_id, change)
        except InvalidationFailed as exc:
            INVALIDATION_FAILURES.inc()
            log.warning("invalidation of %s failed: %s", user_id, exc, extra={"user_id": user_id})
            return False
        INVALIDATIONS.inc()
        return True
