"""Rating arithmetic: pure, no I/O.

A book's aggregate is its per-star distribution; sum, count and average
derive from it, so they can never disagree. A change is (previous, new)
where either side may be absent: a new rating, a re-rating or a deletion.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from bookrec_common.catalog import STARS, average

USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class RatingAggregate:
    distribution: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STARS})

    @property
    def count(self) -> int:
        return sum(self.distribution.values())

    @property
    def total(self) -> int:
        return sum(int(star) * n for star, n in self.distribution.items())

    @property
    def average(self) -> float:
        return average(self.total, self.count)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RatingAggregate:
        stored = record.get("ratings_distribution") or {}
        return cls({s: int(stored.get(s, 0)) for s in STARS})

    def apply(self, previous: int | None, new: int | None) -> RatingAggregate:
        """The aggregate after one user's rating moves from `previous` to `new` (None = absent)."""
        distribution = dict(self.distribution)
        if previous is not None:
            if distribution[str(previous)] <= 0:
                raise ValueError(f"aggregate has no {previous}-star rating to remove")
            distribution[str(previous)] -= 1
        if new is not None:
            distribution[str(new)] += 1
        return RatingAggregate(distribution)


def encode_cursor(last_key: dict[str, str] | None) -> str | None:
    if not last_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, expected_keys: frozenset[str]) -> dict[str, str]:
    """An opaque paging token back into a key; ValueError when it was not made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValueError("cursor is not a paging token from this API") from exc
    if not isinstance(key, dict) or set(key) != expected_keys or not all(isinstance(v, str) for v in key.values()):
        raise ValueError("cursor is not a paging token from this API")
    return key
