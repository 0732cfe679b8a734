"""Where an interrupted load resumes: how many lines of its file are in the tables, and which lines.

The checkpoint names the tables and holds `lines_done` with a digest of those first lines. A rerun
resumes only when its file still begins with exactly those lines: the same file after Ctrl-C or a
crash, or a complete copy of a file that was cut short (a truncated download). Any other file, or the
same name with other content, loads from the start, which is always correct because a load is
idempotent.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("bookrec.etl")


def prefix_digest() -> Any:
    """The running digest of a file's first lines (fed line by line, newlines included)."""
    return hashlib.blake2b(digest_size=16)


@dataclass(frozen=True)
class Saved:
    lines_done: int
    digest: str


@dataclass
class Checkpoint:
    """Lines [0, lines_done) of a file are in the tables; written atomically, removed on success."""

    path: Path | None

    @staticmethod
    def _tables(tables: Any) -> dict[str, Any]:
        return {"books_table": tables.books, "ratings_table": tables.ratings}

    def read(self, tables: Any) -> Saved | None:
        """What a previous run of these tables left, or None (no checkpoint, or one for other tables)."""
        if self.path is None or not self.path.exists():
            return None
        try:
            saved = json.loads(self.path.read_text())
            found = Saved(int(saved["lines_done"]), str(saved["prefix_blake2b"]))
        except (ValueError, KeyError, TypeError):
            log.warning("checkpoint %s is unreadable: loading from the start", self.path)
            return None
        if {k: saved.get(k) for k in self._tables(tables)} != self._tables(tables):
            log.warning("checkpoint %s is for other tables: loading from the start", self.path)
            return None
        return found

    @property
    def temporary(self) -> Path | None:
        """Where a new checkpoint is written before it replaces the old one."""
        return None if self.path is None else _temporary(self.path)

    def write(self, source: Path, tables: Any, lines_done: int, digest: str) -> None:
        if self.path is None:
            return
        tmp = _temporary(self.path)
        tmp.write_text(json.dumps({"source": str(source.resolve()), **self._tables(tables),
                                   "lines_done": lines_done, "prefix_blake2b": digest}))
        tmp.replace(self.path)  # atomic: a kill never leaves half a checkpoint

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")
