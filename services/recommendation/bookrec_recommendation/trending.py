"""Trending books: the windows, Open Library's `now` z-score, and the ranking (pure: no I/O).

Counts come from `bookrec_common.activity` (readers who rated or shelved a book, one per reader per book
per window, each reader at their latest event). Windows are whole UTC hours ending with the current one:

- `day`, `week`, `month`: the last 24, 168, 720 hours; score = events (readers in the window).
- `now` (Open Library's definition): z = (events in the last 24 h − mean of the 7 previous daily counts)
  / (σ + 1), σ the population standard deviation of those 7 counts; z = 0 under 5 events in the last
  24 h. Scored only for the busiest books of the last 24 h (the counts' depth); `events` is the last 24 h.

Ties rank by events, then book id, so every replica shows the same order.

Imported activity (the Open Library dumps' dated events, `bookrec_catalog.imported_activity`) counts as
readers too, each dump line one anonymous reader, each day's events at the day's first hour (UTC).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bookrec_catalog.imported_activity import activity_days, hourly
from bookrec_recommendation.catalogue import CatalogueEntry

Window = Literal["now", "day", "week", "month"]
# Each window's length in hours (the rolling aggregates `bookrec_common.activity` keeps).
WINDOW_HOURS: dict[str, int] = {"now": 24, "day": 24, "week": 168, "month": 720}
NOW_MIN_EVENTS = 5


@dataclass(frozen=True)
class TrendingBook:
    book_id: str
    events: int
    score: float


def z_score(last_day: int, previous_days: Sequence[int], min_events: int = NOW_MIN_EVENTS) -> float:
    """Open Library's trending z-score of a book: how far the last 24 h stand above its previous days."""
    if last_day < min_events or not previous_days:
        return 0.0
    mean = sum(previous_days) / len(previous_days)
    sigma = math.sqrt(sum((d - mean) ** 2 for d in previous_days) / len(previous_days))
    return (last_day - mean) / (sigma + 1)


def ranked_by_events(counts: Iterable[tuple[str, int]]) -> list[TrendingBook]:
    """A day/week/month window: most readers first."""
    books = [TrendingBook(book_id, events, float(events)) for book_id, events in counts if events > 0]
    books.sort(key=lambda b: (-b.events, b.book_id))
    return books


def ranked_by_z(recent: Mapping[str, tuple[int, Sequence[int]]]) -> list[TrendingBook]:
    """`now`: highest z first; books with z ≤ 0 are not trending now and are left out."""
    books = [TrendingBook(book_id, last_day, round(z_score(last_day, previous), 4))
             for book_id, (last_day, previous) in recent.items()]
    books = [b for b in books if b.score > 0]
    books.sort(key=lambda b: (-b.score, -b.events, b.book_id))
    return books


def imported_hours(stored: Any, now_hour: int, kept_hours: int) -> dict[int, int]:
    """A book's `imported_activity` as stored ({"YYYY-MM-DD": events}; None: none) -> {epoch hour: events}:
    each day at its first hour; a day ahead of the clock at the current hour; days before what is kept left
    out. A malformed map counts as none (the ETL validates what it writes)."""
    try:
        days = activity_days(stored) if stored is not None else {}
    except ValueError:
        return {}
    hours: dict[int, int] = {}
    for hour, events in hourly(days).items():
        hour = min(hour, now_hour)
        if hour > now_hour - kept_hours:
            hours[hour] = hours.get(hour, 0) + events
    return hours


def shown(ranking: Iterable[TrendingBook], entries: Mapping[str, CatalogueEntry], limit: int,
          subject: str | None = None) -> list[tuple[TrendingBook, CatalogueEntry]]:
    """The first `limit` books of a ranking that the catalogue knows (a deleted book, or one newer than
    the model, is skipped), only those with `subject` among their subjects if given (case-insensitive)."""
    wanted = subject.casefold() if subject is not None else None
    picked = []
    for book in ranking:
        entry = entries.get(book.book_id)
        if entry is None or (wanted is not None and all(s.casefold() != wanted for s in entry.subjects)):
            continue
        picked.append((book, entry))
        if len(picked) == limit:
            break
    return picked
