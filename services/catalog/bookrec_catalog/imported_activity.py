"""A book's imported activity: the dated events of Open Library's dumps that trending counts. Pure: no I/O.

`imported_activity` on a book is `{"YYYY-MM-DD": n}`: how many lines of the ratings and reading-log dumps
(anonymous readers, one per line) fell on each day of the last ACTIVITY_DAYS days before the dumps' newest
date. The ETL writes it (`extract`, stored by `load` and replaced by each import); the recommendation
builder sets each book's share of the trending counts to it, each day's events at the day's first hour
(UTC). Readers never write it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

IMPORTED_ACTIVITY = "imported_activity"
# The longest trending window (`month`, 720 hours): older events never count, so they are not kept.
ACTIVITY_DAYS = 30
_EPOCH = date(1970, 1, 1)


def day_number(text: str) -> int:
    """"2026-05-31" -> days since 1970-01-01; ValueError unless it is a real date written YYYY-MM-DD."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD")
    return (date.fromisoformat(text) - _EPOCH).days


def day_text(number: int) -> str:
    return date.fromordinal(_EPOCH.toordinal() + number).isoformat()


def today_number(now: float | None = None) -> int:
    moment = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    return (moment.date() - _EPOCH).days


def activity_days(value: Any) -> dict[str, int]:
    """A stored or given `imported_activity` -> {day: events}, days sorted; ValueError when it is not one
    (not a map, a key that is no date, a count that is not a positive integer, more than ACTIVITY_DAYS
    days)."""
    if not isinstance(value, Mapping):
        raise ValueError("not a map of days to events")
    if len(value) > ACTIVITY_DAYS:
        raise ValueError(f"more than {ACTIVITY_DAYS} days")
    days = {}
    for day, count in value.items():
        day_number(str(day))
        if isinstance(count, bool) or not isinstance(count, int | float) or count != int(count) or count < 1:
            raise ValueError(f"{day}: {count!r} is not a positive count")
        days[str(day)] = int(count)
    return dict(sorted(days.items()))


def hourly(days: Mapping[str, int]) -> dict[int, int]:
    """{day: events} -> {epoch hour of the day's start: events}."""
    return {day_number(day) * 24: count for day, count in days.items()}
