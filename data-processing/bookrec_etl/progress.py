"""Progress: a rich bar with rate and ETA on a terminal, a plain log line every few seconds otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress

log = logging.getLogger("bookrec.etl")
LOG_EVERY_SECONDS = 10.0


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n:,.0f} B"
        n /= 1000
    return f"{n:,.1f} GB"


class Progress:
    """Tracks one step. `total` and `advance(done=...)` are bytes of input (or items when `unit="items"`)."""

    def __init__(self, label: str, total: int | None, unit: str = "bytes",
                 interactive: bool | None = None) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.done = 0
        self.records = 0
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._started = self._last_log = time.monotonic()
        self._cpu = time.process_time()  # this process's CPU: the closing line says what the step cost it
        self._bar: RichProgress | None = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.interactive:
            amount = DownloadColumn() if self.unit == "bytes" else MofNCompleteColumn()
            rate = TransferSpeedColumn() if self.unit == "bytes" else TextColumn("{task.fields[rate]}")
            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                     amount, rate, TextColumn("{task.fields[records]}"),
                                     TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, records="", rate="")
        return self

    def advance(self, done: int = 0, records: int = 0, *, absolute: bool = False) -> None:
        """Add `done` units and `records` records (or set them when absolute)."""
        if absolute:
            self.done, self.records = done, records
        else:
            self.done += done
            self.records += records
        now = time.monotonic()
        elapsed = max(now - self._started, 1e-9)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, records=f"{self.records:,} records",
                             rate=f"{self.done / elapsed:,.0f} {self.unit}/s")
        elif now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            log.info("%s", self.line(elapsed))

    def line(self, elapsed: float) -> str:
        amount = _size(self.done) if self.unit == "bytes" else f"{self.done:,} {self.unit}"
        if self.total:
            total = _size(self.total) if self.unit == "bytes" else f"{self.total:,}"
            amount += f" of {total} ({100 * self.done / self.total:.0f}%)"
        per_second = self.done / elapsed
        rate = f"{_size(per_second)}/s" if self.unit == "bytes" else f"{per_second:,.0f} {self.unit}/s"
        text = f"{self.label}: {amount}, {rate}"
        if self.records and self.unit == "bytes":
            text += f", {self.records:,} records ({self.records / elapsed:,.0f}/s)"
        if self.total and self.done:
            text += f", ETA {max(self.total - self.done, 0) * elapsed / self.done:,.0f}s"
        return text

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        else:
            ending = "done" if exc_type is None else "stopped"
            elapsed = max(time.monotonic() - self._started, 1e-9)
            log.info("%s, %.2fs, CPU %.2fs (%s)", self.line(elapsed), elapsed, time.process_time() - self._cpu,
                     ending)
