"""A book's shelf counts as the ETL checks them: pure arithmetic on per-shelf counts, no I/O.

Like the rating aggregate (aggregates.py), a book's `shelf_counts` has two parts, per shelf (want_to_read,
currently_reading, read):
- imported: the Open Library reading-log dump's entries for the work (`extract --reading-log`), anonymous,
  with no entry of the shelves table behind them, kept in `imported_shelf_counts`;
- counted: one per entry of the shelves table for the book (readers' shelvings).

The rule every writer keeps: `shelf_counts == imported_shelf_counts + per-shelf count of the book's
entries`; an absent map, or an absent shelf in one, is zero (a book never imported has no imported part,
so its counts are its entries). The ratings service moves `shelf_counts` by one reader in the same
transaction as each entry; a load moves it only by the difference of the imported part (plans.py); a
book re-imported after its deletion comes back with its imported part only while its entries stay:
reconcile counts the entries and repairs the map.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bookrec_catalog.catalog import SHELVES

SHELF_COUNTS = "shelf_counts"
IMPORTED_SHELF_COUNTS = "imported_shelf_counts"
Counts = dict[str, int]


def zero() -> Counts:
    return {shelf: 0 for shelf in SHELVES}


def counts(value: Any) -> Counts:
    """A per-shelf map (missing shelves 0) -> the three counts; ValueError when it is not one (another key,
    a negative or non-integral count, not a map)."""
    if not isinstance(value, Mapping):
        raise ValueError("not a per-shelf map")
    result = zero()
    for shelf, count in value.items():
        if str(shelf) not in result:
            raise ValueError(f"{shelf!r} is not one of {', '.join(SHELVES)}")
        if isinstance(count, bool) or not isinstance(count, int | float) or count != int(count) or count < 0:
            raise ValueError(f"{shelf}: {count!r} is not a count")
        result[str(shelf)] = int(count)
    return result


def recorded_imported(record: Mapping[str, Any]) -> Counts | None:
    """The imported part the book records (absent: zero); None when it is malformed."""
    raw = record.get(IMPORTED_SHELF_COUNTS)
    if raw is None:
        return zero()
    try:
        return counts(raw)
    except ValueError:
        return None


def plus(a: Counts, b: Counts) -> Counts:
    return {shelf: a[shelf] + b[shelf] for shelf in SHELVES}


def new_imported(record: Mapping[str, Any], imported: Counts) -> tuple[Counts, bool] | None:
    """For a live book whose imported part becomes `imported` (a re-import whose dump changed): (the new
    shelf counts, whether a shelf would have gone below zero and was held at zero), or None when it is
    unchanged. A book whose stored counts or imported part are malformed moves from zero (reconcile then
    counts its entries)."""
    recorded = recorded_imported(record)
    if recorded == imported:
        return None
    stored = stored_counts(record)
    if stored is None or recorded is None:
        return dict(imported), True
    moved = {shelf: stored[shelf] - recorded[shelf] + imported[shelf] for shelf in SHELVES}
    return {shelf: max(0, n) for shelf, n in moved.items()}, any(n < 0 for n in moved.values())


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
    counted: Counts  # the book's entries, per shelf
    imported: Counts = field(default_factory=zero)  # the imported part (a malformed one: zero)
    imported_malformed: bool = False  # the repair records a zero imported part

    @property
    def target(self) -> Counts:
        """What the counts must be: imported + entries."""
        return plus(self.imported, self.counted)

    @property
    def count_off(self) -> int:
        """Readers stored minus readers shelved (negative: shelvings missing from the counts)."""
        return sum((self.stored or zero()).values()) - sum(self.target.values())

    @property
    def size(self) -> int:
        """How far off, for ordering the worst first: readers off in all, shelf by shelf (malformed: 1 more)."""
        stored = self.stored or zero()
        return sum(abs(stored[s] - self.target[s]) for s in SHELVES) + (self.stored is None)

    def describe(self) -> str:
        absent = " (none stored)" if self.raw is None else ""
        have = f"malformed {self.raw!r}" if self.stored is None else _shelves(self.stored) + absent
        entries = sum(self.counted.values())
        described = f"{entries} shelf entr{'y' if entries == 1 else 'ies'}"
        if any(self.imported.values()) or self.imported_malformed:
            malformed = "malformed, taken as " if self.imported_malformed else ""
            described = f"imported {malformed}{_shelves(self.imported)} + {described} {_shelves(self.counted)}"
        return f"{self.book_id}: stored {have}; expected {_shelves(self.target)} = {described}"


def _shelves(counts: Counts) -> str:
    return "[" + " ".join(f"{shelf}:{counts[shelf]}" for shelf in SHELVES) + "]"


def shelf_drift_of(book_id: str, record: Mapping[str, Any], counted: Counts) -> ShelfDrift | None:
    """The shelf drift of a live book `record` whose entries count `counted`, or None when its counts are its
    imported part plus its entries (an absent map with neither is exact: nothing is written to a book no
    reader shelved and no dump counted)."""
    stored = stored_counts(record)
    recorded = recorded_imported(record)
    imported = recorded if recorded is not None else zero()
    if recorded is not None and stored == plus(imported, counted):
        return None
    return ShelfDrift(book_id, stored, record.get(SHELF_COUNTS), dict(counted), imported, recorded is None)
