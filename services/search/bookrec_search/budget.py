"""A cache of values made on first use, kept within a budget: the least recently used go first. Pure.

What queries derive lazily from one index version (`heads`, `bitmaps`) lives in one of these. The event
loop reads it while a refresh thread may hand its entries to the next version, hence the lock; a value is
made outside it (two threads asking at once may both make it: the later one is kept).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class BudgetedCache(Generic[Key, Value]):
    """Values by key, their sizes (`size_of`) within `budget` in all; the running total is kept, so a lookup
    costs the same however many entries there are."""

    def __init__(self, budget: int, size_of: Callable[[Value], int],
                 entries: Iterable[tuple[Key, Value]] = ()) -> None:
        self._budget, self._size_of = budget, size_of
        self._entries: dict[Key, Value] = {}  # in order of use, the least recent first
        self._total = 0
        self._lock = threading.Lock()
        with self._lock:
            for key, value in entries:
                self._put(key, value)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total(self) -> int:
        return self._total

    def items(self) -> list[tuple[Key, Value]]:
        with self._lock:
            return list(self._entries.items())

    def get(self, key: Key, make: Callable[[], Value]) -> Value:
        """The value of `key`, made by `make()` when there is none; either way now the most recently used."""
        with self._lock:
            value = self._entries.pop(key, None)
            if value is not None:
                self._total -= self._size_of(value)
        if value is None:
            value = make()
        with self._lock:
            self._put(key, value)
        return value

    def _put(self, key: Key, value: Value) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._total -= self._size_of(old)
        self._entries[key] = value
        self._total += self._size_of(value)
        while self._total > self._budget and len(self._entries) > 1:
            self._total -= self._size_of(self._entries.pop(next(iter(self._entries))))
