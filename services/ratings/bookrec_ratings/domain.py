"""Rating arithmetic and the rules of a valid rating: pure, no I/O.

A book's aggregate is its per-star distribution; sum, count and average
derive from it, so they can never disagree. A change is (previous, new)
where either side may be absent: a new rating, a re-rating or a deletion.
A deleted book takes only deletions of existing ratings, and has no
aggregate to change.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bookrec_catalog.catalog import STARS, average, is_book_id, is_user_id

MIN_RATING, MAX_RATING = int(STARS[0]), int(STARS[-1])
# Timestamps are written by utc_now(): "2026-01-01T00:00:00.000000Z".
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$")


def is_rating(value: object) -> bool:
    """An integer 1..5; booleans are ints to Python but not ratings."""
    return type(value) is int and MIN_RATING <= value <= MAX_RATING


class ChangeKind(StrEnum):
    NEW = "new"
    RERATING = "rerating"
    DELETION = "deletion"


def kind_of(previous: int | None, new: int | None) -> ChangeKind:
    if new is None:
        return ChangeKind.DELETION
    return ChangeKind.NEW if previous is None else ChangeKind.RERATING


def allowed_on_deleted_book(previous: int | None, new: int | None) -> bool:
    """Whether a change may touch a deleted book (its tombstone, or nothing once that expired): only the
    removal of a rating that exists, so a reader can clear a book that is gone from their ratings;
    nothing can be rated there."""
    return previous is not None and new is None


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
        return cls({s: max(0, int(stored.get(s, 0))) for s in STARS})

    def holds(self, star: int) -> bool:
        """Whether a `star` rating is counted here (it must be, before one can be removed)."""
        return self.distribution[str(star)] > 0

    def apply(self, previous: int | None, new: int | None) -> RatingAggregate:
        """The aggregate after one user's rating moves from `previous` to `new` (None = absent).

        Removing a star the aggregate does not hold leaves that star at zero
        rather than going negative: the caller detects that case with
        `holds` and reports it, and the user's change still goes through.
        """
        distribution = dict(self.distribution)
        if previous is not None:
            distribution[str(previous)] = max(0, distribution[str(previous)] - 1)
        if new is not None:
            distribution[str(new)] += 1
        return RatingAggregate(distribution)


# A page boundary is the last item's key in the table and in both ratings indexes.
CURSOR_KEYS = frozenset({"book_id", "user_id", "updated_at"})
_FORGED = "cursor is not a paging token from this API"


def encode_cursor(last_key: dict[str, str] | None) -> str | None:
    if not last_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, str]:
    """An opaque paging token back into a key; ValueError unless it is one encode_cursor could have made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(_FORGED) from exc
    if not isinstance(key, dict) or set(key) != CURSOR_KEYS:
        raise ValueError(_FORGED)
    book_id, user_id, updated_at = key["book_id"], key["user_id"], key["updated_at"]
    # The key goes to DynamoDB as ExclusiveStartKey: only values it could have produced itself.
    if not (is_book_id(book_id) and is_user_id(user_id)
            and isinstance(updated_at, str) and TIMESTAMP.fullmatch(updated_at)):
        raise ValueError(_FORGED)
    return key
