"""A book's shelf counts as the ETL checks them: pure arithmetic on per-shelf counts, no I/O.

The rule the ratings service keeps, in the same transaction as each shelf entry: a book's `shelf_counts`
holds, for each shelf (want_to_read, currently_reading, read), how many of its entries in the shelves
table are on that shelf; an absent map, or an absent shelf in it, is zero. A load never writes it
(plans.py), so a book re-imported after its deletion comes back without it while its entries stay:
reconcile counts the entries and repairs the map.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bookrec_catalog.catalog import SHELVES

SHELF_COUNTS = "shelf_counts"
Counts = dict[str, int]


def zero() -> Counts:
    return {shelf: 0 for shelf in SHELVES}


def stored_counts(record: Mapping[str, Any]) -> Counts | None:
    """The stored counts (absent map or shelf: zero); None when the map is malformed (another key, a
    negative or non-integral count, not a map)."""
    raw = record.get(SHELF_COUNTS)
    if raw is None:
        return zero()
    if not isinstance(raw, Mapping) or not set(map(str, raw)) <= set(SHELVES):
        return None
    counts = zero()
    for shelf, count in raw.items():
        if isinstance(count, bool) or not isinstance(count, int | float) or count != int(count) or count < 0:
            return None
        counts[str(shelf)] = int(count)
    return counts


@dataclass(frozen=True)
class ShelfDrift:
    """A book whose stored shelf counts are not its entries in the shelves table, shelf by shelf."""

    book_id: str
    stored: Counts | None  # None: malformed
    raw: Any  # the stored map as read (None: absent)
    counted: Counts  # what it must be

    @property
    def count_off(self) -> int:
        """Readers stored minus readers shelved (negative: shelvings missing from the counts)."""
        return sum((self.stored or zero()).values()) - sum(self.counted.values())

    @property
    def size(self) -> int:
        """How far off, for ordering the worst first: readers off in all, shelf by shelf (malformed: 1 more)."""
        stored = self.stored or zero()
        return sum(abs(stored[s] - self.counted[s]) for s in SHELVES) + (self.stored is None)

    def describe(self) -> str:
        absent = " (none stored)" if self.raw is None else ""
        have = f"malformed {self.raw!r}" if self.stored is None else _shelves(self.stored) + absent
        entries = sum(self.counted.values())
        return (f"{self.book_id}: stored {have}; expected {_shelves(self.counted)} = "
                f"{entries} shelf entr{'y' if entries == 1 else 'ies'}")


def _shelves(counts: Counts) -> str:
    return "[" + " ".join(f"{shelf}:{counts[shelf]}" for shelf in SHELVES) + "]"


def shelf_drift_of(book_id: str, record: Mapping[str, Any], counted: Counts) -> ShelfDrift | None:
    """The shelf drift of a live book `record` whose entries count `counted`, or None when it is exact (an
    absent map with no entries is exact: nothing is written to a book no reader shelved)."""
    stored = stored_counts(record)
    if stored == counted:
        return None
    return ShelfDrift(book_id, stored, record.get(SHELF_COUNTS), dict(counted))
