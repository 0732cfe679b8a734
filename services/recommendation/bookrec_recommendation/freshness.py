"""Whether a reader's ratings and shelves, as read, show their latest accepted change (pure: no I/O).

A request reads the reader's ratings and shelves from by-user indexes, which DynamoDB keeps eventually
consistent: a read just after a rating or a shelving may not show it yet. Every invalidation records
the change it is for (`AcceptedChange`: when, which book, set or removed, a rating or a shelving), and a
list computed from a read that does not show the newest one recorded is answered but not cached, so the
cache never keeps (for its whole TTL) a list that ignores a change the reader was told was accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, NamedTuple

# What an accepted change was: a rating set or removed, or a book put on or taken off the reader's shelves.
ChangeKind = Literal["rating", "shelf"]
NO_SHELVES: Mapping[str, str] = MappingProxyType({})

# As the ratings table writes `updated_at` (`bookrec_catalog.catalog.iso_stamp`): fixed width, so stamps
# compare as strings, in Redis's Lua as here.
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


class AcceptedChange(NamedTuple):
    changed_at: str  # the rating's updated_at or the shelving's shelved_at, or when it was removed
    book_id: str
    removed: bool
    kind: ChangeKind = "rating"

    def encode(self) -> str:
        """One string that sorts by time: the newest of two recorded changes is the greater. (A rating's
        has three fields, as before shelvings were named; a shelving's a fourth.)"""
        encoded = f"{self.changed_at} {self.book_id} {int(self.removed)}"
        return encoded if self.kind == "rating" else f"{encoded} {self.kind}"

    @classmethod
    def decode(cls, raw: str) -> AcceptedChange | None:
        parts = raw.split(" ")
        if (len(parts) not in (3, 4) or not STAMP.fullmatch(parts[0]) or parts[2] not in ("0", "1")
                or parts[3:] not in ([], ["shelf"])):
            return None
        return cls(parts[0], parts[1], parts[2] == "1", "shelf" if parts[3:] else "rating")


class RatingsRead(NamedTuple):
    """A reader's ratings (and shelves) as one read returned them."""

    stars: dict[str, int]  # book -> 1..5
    updated_at: dict[str, str]  # book -> when that rating was last set
    shelved_at: Mapping[str, str] = NO_SHELVES  # book -> when it was put on its shelf (any shelf)

    @property
    def empty(self) -> bool:
        return not self.stars and not self.shelved_at


def shows(read: RatingsRead, change: AcceptedChange | None) -> bool:
    """Whether `read` already reflects `change` (None: no change recorded, nothing to wait for): a rating
    set at or after it (the book's updated_at), a shelving at or after it (its shelved_at), or, for a
    removal, the book gone from the ratings (shelves) or set again since."""
    if change is None:
        return True
    seen = (read.shelved_at if change.kind == "shelf" else read.updated_at).get(change.book_id)
    if change.removed:
        return seen is None or seen > change.changed_at  # gone, or set again since
    return seen is not None and seen >= change.changed_at
