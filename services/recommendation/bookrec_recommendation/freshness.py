"""Whether a reader's ratings, as read, show their latest accepted change (pure: no I/O).

A request reads the reader's ratings from the by-user index, which DynamoDB keeps eventually
consistent: a read just after a rating may not show it yet. Every invalidation records the change it
is for (`AcceptedChange`: when, which book, set or removed), and a list computed from a read that does
not show the newest one recorded is answered but not cached, so the cache never keeps (for its whole
TTL) a list that ignores a rating the reader was told was accepted.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# As the ratings table writes `updated_at` (`bookrec_catalog.catalog.iso_stamp`): fixed width, so stamps
# compare as strings, in Redis's Lua as here.
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


class AcceptedChange(NamedTuple):
    changed_at: str  # the rating's updated_at, or when it was removed
    book_id: str
    removed: bool

    def encode(self) -> str:
        """One string that sorts by time: the newest of two recorded changes is the greater."""
        return f"{self.changed_at} {self.book_id} {int(self.removed)}"

    @classmethod
    def decode(cls, raw: str) -> AcceptedChange | None:
        parts = raw.split(" ")
        if len(parts) != 3 or not STAMP.fullmatch(parts[0]) or parts[2] not in ("0", "1"):
            return None
        return cls(parts[0], parts[1], parts[2] == "1")


class RatingsRead(NamedTuple):
    """A reader's ratings as one read returned them."""

    stars: dict[str, int]  # book -> 1..5
    updated_at: dict[str, str]  # book -> when that rating was last set

    @property
    def empty(self) -> bool:
        return not self.stars


def shows(read: RatingsRead, change: AcceptedChange | None) -> bool:
    """Whether `read` already reflects `change` (None: no change recorded, nothing to wait for)."""
    if change is None:
        return True
    seen = read.updated_at.get(change.book_id)
    if change.removed:
        return seen is None or seen > change.changed_at  # gone, or set again since
    return seen is not None and seen >= change.changed_at
