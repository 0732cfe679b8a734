"""A book's rating aggregate as the ETL keeps it: pure arithmetic on per-star distributions, no I/O.

The aggregate has two parts:
- imported: stars a source gives with no individual ratings behind them (the Open Library ratings
  dump's per-work stars, the replaced system's average and count), kept in `imported_distribution`;
- counted: one star per row of the ratings table for the book (goodbooks ratings, readers' ratings).

The invariant: `ratings_distribution == imported_distribution + per-star count of the book's rows`, and
`rating_sum`, `rating_count`, `avg_rating` derive from `ratings_distribution`
(bookrec_catalog.catalog.with_derived_attributes). A book written by an ETL that predates
`imported_distribution` (a "legacy" book) has no record of its imported part: it is taken as whatever
its stored stars hold beyond its rows, so such a book drifts only where it holds fewer stars than rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bookrec_catalog.catalog import STARS, average

Distribution = dict[str, int]
IMPORTED = "imported_distribution"
DISTRIBUTION = "ratings_distribution"
# Everything the aggregate is made of: an import never overwrites these on a book that exists.
AGGREGATE_ATTRIBUTES = frozenset({DISTRIBUTION, "rating_sum", "rating_count", "avg_rating", IMPORTED})


def zero() -> Distribution:
    return {star: 0 for star in STARS}


def distribution(value: Any) -> Distribution:
    """A per-star map (stars as "1".."5" or 1..5, missing stars 0) -> the five counts; ValueError when it
    is not one (another key, a negative or non-integral count)."""
    if value is None:
        return zero()
    if not isinstance(value, Mapping):
        raise ValueError("not a per-star map")
    counts = zero()
    for star, count in value.items():
        if str(star) not in counts:
            raise ValueError(f"star {star!r} is not one of 1..5")
        if isinstance(count, bool) or not isinstance(count, int | float) or count != int(count) or count < 0:
            raise ValueError(f"star {star}: {count!r} is not a count")
        counts[str(star)] = int(count)
    return counts


def plus(a: Distribution, b: Distribution) -> Distribution:
    return {star: a[star] + b[star] for star in STARS}


def minus(a: Distribution, b: Distribution) -> Distribution:
    """a - b star by star; may be negative (the caller decides what a negative star means)."""
    return {star: a[star] - b[star] for star in STARS}


def at_least_zero(d: Distribution) -> Distribution:
    return {star: max(0, n) for star, n in d.items()}


def is_zero(d: Distribution) -> bool:
    return not any(d.values())


def derived(d: Distribution) -> dict[str, Any]:
    """The attributes that follow from a distribution, as bookrec_catalog.catalog derives them."""
    total = sum(int(star) * n for star, n in d.items())
    count = sum(d.values())
    return {"rating_sum": total, "rating_count": count, "avg_rating": average(total, count)}


def aggregate(d: Distribution) -> dict[str, Any]:
    """Every stored attribute of an aggregate whose distribution is `d`."""
    return {DISTRIBUTION: dict(d), **derived(d)}


def stored_distribution(record: Mapping[str, Any]) -> Distribution:
    """The stored `ratings_distribution`; a malformed one counts as nothing (reconcile then rewrites it)."""
    try:
        return distribution(record.get(DISTRIBUTION))
    except ValueError:
        return zero()


def expected(stored: Distribution, imported: Distribution | None, counted: Distribution) -> Distribution:
    """What the distribution must be: imported + counted; for a legacy book (imported None), the stored
    stars where they are at least the counted ones, else the counted ones."""
    if imported is None:
        return {star: max(stored[star], counted[star]) for star in STARS}
    return plus(imported, counted)


@dataclass(frozen=True)
class Drift:
    """A book whose stored aggregate is not what its imported part and its rows make."""

    book_id: str
    stored: Distribution
    stored_derived: dict[str, Any]  # rating_sum, rating_count, avg_rating as stored
    imported: Distribution | None  # None: a legacy book
    counted: Distribution
    target: Distribution  # what it must be

    @property
    def count_off(self) -> int:
        """Stored count minus the right one (negative: ratings missing from the aggregate)."""
        return int(self.stored_derived.get("rating_count") or 0) - sum(self.target.values())

    @property
    def size(self) -> int:
        """How far off, for ordering the worst first: the count readers see off, stars off, and one more
        when sum, count or average disagree with the right ones."""
        stars = sum(abs(n) for n in minus(self.stored, self.target).values())
        return abs(self.count_off) + stars + (self.stored_derived != derived(self.target))

    def describe(self) -> str:
        have, want, rows = self.stored_derived, derived(self.target), sum(self.counted.values())
        imported = "legacy (no imported part recorded)" if self.imported is None else \
            f"imported {_stars(self.imported)}"
        return (f"{self.book_id}: stored count {have.get('rating_count')} sum {have.get('rating_sum')} "
                f"avg {have.get('avg_rating')} {_stars(self.stored)}; expected count {want['rating_count']} "
                f"sum {want['rating_sum']} avg {want['avg_rating']} {_stars(self.target)} "
                f"= {imported} + {rows} rating{'' if rows == 1 else 's'} {_stars(self.counted)}")


def _stars(d: Distribution) -> str:
    return "[" + " ".join(f"{star}:{d[star]}" for star in STARS) + "]"


def drift_of(book_id: str, record: Mapping[str, Any], counted: Distribution,
             imported: Distribution | None = None, adopt: bool = False) -> Drift | None:
    """The drift of a live book `record` whose rows count `counted`, or None when it is exact.

    `imported` with `adopt`: the imported part to hold from now on (a re-imported line's), whatever the
    record says; otherwise the record's own (`imported_distribution`, absent for a legacy book). A book
    that is to adopt an imported part it does not record yet drifts until it records it.
    """
    stored = stored_distribution(record)
    recorded = recorded_imported(record)
    part = imported if adopt else recorded
    target = expected(stored, part, counted)
    if stored == target and self_consistent(record) and (not adopt or recorded == imported):
        return None
    stored_derived = {name: record.get(name) for name in ("rating_sum", "rating_count", "avg_rating")}
    return Drift(book_id, stored, stored_derived, part, counted, target)


def self_consistent(record: Mapping[str, Any]) -> bool:
    """Whether the stored map is exactly five counts and sum, count and average follow from it."""
    stored = stored_distribution(record)
    return _raw_matches(record, stored) and \
        {name: record.get(name) for name in ("rating_sum", "rating_count", "avg_rating")} == derived(stored)


def recorded_imported(record: Mapping[str, Any]) -> Distribution | None:
    """The imported part the book records; None for a legacy book (a malformed one counts as none)."""
    if IMPORTED not in record:
        return None
    try:
        return distribution(record[IMPORTED])
    except ValueError:
        return None


def _raw_matches(record: Mapping[str, Any], stored: Distribution) -> bool:
    """Whether the stored map is exactly the five counts (not malformed, no star missing)."""
    raw = record.get(DISTRIBUTION)
    return isinstance(raw, Mapping) and set(map(str, raw)) == set(STARS) and \
        all(raw[star] == stored[star] for star in STARS)


def new_imported(record: Mapping[str, Any], imported: Distribution) -> tuple[Distribution, bool] | None:
    """For a live book whose imported part becomes `imported` (a re-import whose source figure changed):
    (the new distribution, whether a star would have gone below zero and was held at zero), or None when
    the book records no imported part (legacy: its rows must be counted first) or it is unchanged."""
    recorded = recorded_imported(record)
    if recorded is None or recorded == imported:
        return None
    moved = plus(minus(stored_distribution(record), recorded), imported)
    return at_least_zero(moved), any(n < 0 for n in moved.values())
