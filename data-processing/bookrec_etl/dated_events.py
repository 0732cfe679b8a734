"""The dated dumps' events for trending (ratings and reading-log lines): per work and day, only those of the
last ACTIVITY_DAYS days before the newest date of the import.

Lines arrive in no particular order and the newest date is known only at the end, but it only grows: an
event more than ACTIVITY_DAYS days before the newest date seen so far can never be in the window, so it is
dropped at once; what went to disk before the newest date moved on is trimmed whenever it has moved by
another ACTIVITY_DAYS (so even a dump in date order keeps at most two windows' pairs on disk), and once
more when the dumps are read. Counts go to the workspace in batches (memory stays flat however long the
dumps).
"""

from __future__ import annotations

from bookrec_catalog.imported_activity import ACTIVITY_DAYS, today_number
from bookrec_etl.records import Rejected
from bookrec_etl.workspace import Workspace

FLUSH_PAIRS = 100_000  # distinct (work, day) pairs held in memory before they go to disk


class DatedEvents:
    def __init__(self, space: Workspace, today: int | None = None) -> None:
        self.space = space
        self.today = today_number() if today is None else today
        self.newest: int | None = None
        self._trimmed: int | None = None  # the newest date at the last trim
        self._pending: dict[tuple[int, int], int] = {}

    def add(self, work: int, day: int) -> None:
        """One line's event; Rejected when it is dated after today (it would move the window for every
        book)."""
        if day > self.today:
            raise Rejected("date after today")
        if self.newest is None or day > self.newest:
            self.newest = day
        if day <= self.newest - ACTIVITY_DAYS:
            return
        key = (work, day)
        self._pending[key] = self._pending.get(key, 0) + 1
        if len(self._pending) >= FLUSH_PAIRS:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.space.add_activity(self._pending)
            self._pending = {}
        if self.newest is not None and (self._trimmed is None or self.newest - self._trimmed >= ACTIVITY_DAYS):
            self.space.keep_activity_since(self.newest - ACTIVITY_DAYS + 1)
            self._trimmed = self.newest

    def finish(self) -> None:
        """After the last dated dump: keep only the window's days."""
        self._trimmed = None  # a last trim, wherever the newest date is
        self.flush()
