"""Rating and shelf arithmetic, the rules of a valid rating and shelf: pure, no I/O.

A book's aggregate is its per-star distribution; sum, count and average
derive from it, so they can never disagree. Its shelf counts are readers per
shelf. A change is (previous, new) where either side may be absent: a new
rating, a re-rating or a deletion; a shelving, a move or an unshelving.
A deleted book takes only removals of what readers had (a rating, a shelf),
and has no counts to change.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Final, Literal, TypeGuard

from bookrec_catalog.catalog import SHELVES, STARS, average, is_book_id, is_user_id

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


def allowed_on_deleted_book(previous: object, new: object) -> bool:
    """Whether a change may touch a deleted book (its tombstone, or nothing once that expired): only the
    removal of a rating (or shelf entry) that exists, so a reader can clear a book that is gone from their
    ratings and shelves; nothing can be rated or shelved there."""
    return previous is not None and new is None


class Untouched(Enum):
    """A part of a reader's change left as it is (a shelving touches no rating)."""

    UNTOUCHED = "untouched"


UNTOUCHED: Final = Untouched.UNTOUCHED


# bookrec_catalog.catalog.SHELVES spelled as a type, so a wrong shelf is named by its field (test_models).
Shelf = Literal["want_to_read", "currently_reading", "read"]


def is_shelf(value: object) -> TypeGuard[Shelf]:
    return isinstance(value, str) and value in SHELVES


def user_shelf(user_id: str, shelf: str) -> str:
    """The by-user-shelf index key of a reader's shelf ('#' is never in a user id)."""
    return f"{user_id}#{shelf}"


# Open Library's rule: rating a book that is on no shelf puts it on `read`.
RATED_SHELF: Final = "read"


def shelf_after_rating(shelf: str | None, new_rating: int | None) -> str | None:
    """The shelf a book is on after its reader's rating change: `read` when it is rated from no shelf;
    otherwise where it was (a removed rating leaves the shelf alone)."""
    return RATED_SHELF if new_rating is not None and shelf is None else shelf


class ShelvingKind(StrEnum):
    SHELVED = "shelved"
    MOVED = "moved"
    UNCHANGED = "unchanged"
    UNSHELVED = "unshelved"


def shelving_kind(previous: str | None, new: str | None) -> ShelvingKind:
    if new is None:
        return ShelvingKind.UNSHELVED
    if previous is None:
        return ShelvingKind.SHELVED
    return ShelvingKind.UNCHANGED if previous == new else ShelvingKind.MOVED


def _moved(counts: dict[str, int], previous: str | None, new: str | None) -> dict[str, int]:
    """One reader's entry moved from `previous` to `new` (None = absent); a count never goes below zero."""
    moved = dict(counts)
    if previous is not None:
        moved[previous] = max(0, moved[previous] - 1)
    if new is not None:
        moved[new] += 1
    return moved


def _counts_of(stored: Any, keys: tuple[str, ...]) -> dict[str, int]:
    stored = stored if isinstance(stored, dict) else {}
    return {k: max(0, int(stored.get(k, 0))) for k in keys}


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
        return cls(_counts_of(record.get("ratings_distribution"), STARS))

    def holds(self, star: int) -> bool:
        """Whether a `star` rating is counted here (it must be, before one can be removed)."""
        return self.distribution[str(star)] > 0

    def apply(self, previous: int | None, new: int | None) -> RatingAggregate:
        """The aggregate after one user's rating moves from `previous` to `new` (None = absent).

        Removing a star the aggregate does not hold leaves that star at zero
        rather than going negative: the caller detects that case with
        `holds` and reports it, and the user's change still goes through.
        """
        return RatingAggregate(_moved(self.distribution, None if previous is None else str(previous),
                                      None if new is None else str(new)))


@dataclass(frozen=True)
class ShelfCounts:
    """How many readers have the book on each shelf; a reader's book is on one shelf at most."""

    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SHELVES})

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ShelfCounts:
        return cls(_counts_of(record.get("shelf_counts"), SHELVES))

    def holds(self, shelf: str) -> bool:
        return self.counts[shelf] > 0

    def apply(self, previous: str | None, new: str | None) -> ShelfCounts:
        """The counts after one reader's book moves from shelf `previous` to `new` (None = on none); a
        removal the counts do not hold stays at zero (the caller reports it, as for stars)."""
        return ShelfCounts(_moved(self.counts, previous, new))


# A page boundary is the last item's whole key in its table and index: a ratings listing's (the by-user
# and by-book-recent indexes share one shape), or a shelf's (by-user-shelf).
RATINGS_CURSOR = frozenset({"book_id", "user_id", "updated_at"})
SHELF_CURSOR = frozenset({"book_id", "user_id", "user_shelf", "shelved_at"})
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
    if not isinstance(key, dict) or set(key) not in (RATINGS_CURSOR, SHELF_CURSOR):
        raise ValueError(_FORGED)
    book_id, user_id = key["book_id"], key["user_id"]
    moment = key.get("updated_at", key.get("shelved_at"))
    # The key goes to DynamoDB as ExclusiveStartKey: only values it could have produced itself.
    if not (is_book_id(book_id) and is_user_id(user_id)
            and isinstance(moment, str) and TIMESTAMP.fullmatch(moment)):
        raise ValueError(_FORGED)
    if "user_shelf" in key and key["user_shelf"] not in {user_shelf(user_id, s) for s in SHELVES}:
        raise ValueError(_FORGED)
    return key
