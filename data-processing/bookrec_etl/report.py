"""What a run did: counts per input, and the rejects file (one JSON line per bad input line)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bookrec_etl.outputs import AtomicFile

EXCERPT = 200  # characters of a rejected line kept in the rejects file


@dataclass
class Report:
    """read = accepted + rejected + skipped for an input; written (for a step that `writes`), retried and
    calls for a load."""

    label: str
    read: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)  # well-formed lines deliberately left out
    notes: Counter = field(default_factory=Counter)  # facts worth knowing that drop nothing
    written: int = 0
    unchanged: int = 0  # lines a load found already stored as they say: nothing written
    writes: bool = False  # the step writes records: `written` is part of its summary
    retried: int = 0
    calls: int = 0
    seconds: float = 0.0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def summary(self) -> str:
        parts = [f"read {self.read:,}", f"accepted {self.accepted:,}",
                 f"rejected {self.rejected_total:,}{_reasons(self.rejected)}"]
        if self.skipped:
            parts.append(f"skipped {sum(self.skipped.values()):,}{_reasons(self.skipped)}")
        if self.writes:
            parts.append(f"written {self.written:,}")
            if self.unchanged:
                parts.append(f"unchanged {self.unchanged:,}")
            if self.calls:
                parts.append(f"retried {self.retried:,}")
                per_thousand = 1000 * self.calls / max(self.written, 1)
                parts.append(f"{self.calls:,} round trips ({per_thousand:.1f} per 1,000 items)")
            if self.seconds:
                parts.append(f"{self.written / self.seconds:,.0f} items/s")
        if self.notes:
            parts.append("; ".join(f"{what}: {n:,}" for what, n in self.notes.most_common()))
        return f"{self.label}: " + ", ".join(parts)


def _reasons(counter: Counter) -> str:
    return f" ({', '.join(f'{reason}: {n:,}' for reason, n in counter.most_common())})" if counter else ""


def excerpt(text: bytes | str) -> str:
    """The start of a line as text, for the rejects file."""
    if isinstance(text, bytes):
        text = text[:EXCERPT * 4].decode("utf-8", "replace")
    return text.rstrip("\r\n")[:EXCERPT]


class Rejects:
    """Writes {"source", "line", "reason", "excerpt"} per rejected line; counts into the report.

    Two ways to write the file:
    - `atomic` (extract and imports, whose outputs are replaced whole): the rejects go to a temporary
      file that replaces `path` when the `with` block ends without an error, together with the output
      they describe; after an error the previous rejects file is left as it was.
    - otherwise (load, a log of a load that may stop and resume): written as they come, so the rejects
      of an interrupted load stay on disk; a run starts the file afresh unless `append` (a resumed
      load adds to the rejects of the run it continues).
    The file is created at the first reject; a successful run without rejects leaves none.
    """

    def __init__(self, path: Path | None, append: bool = False, atomic: bool = False) -> None:
        self.path, self.atomic = path, atomic
        self._file: IO[bytes] | None = None
        self._pending: AtomicFile | None = None
        if path is not None and not append and not atomic:
            path.unlink(missing_ok=True)

    def add(self, report: Report, source: str, line: int, reason: str, text: bytes | str = "") -> None:
        report.rejected[reason] += 1
        if self.path is None:
            return
        entry = {"source": source, "line": line, "reason": reason, "excerpt": excerpt(text)}
        self._open().write(json.dumps(entry, ensure_ascii=False).encode("utf-8", "replace") + b"\n")

    def _open(self) -> IO[bytes]:
        if self._file is None:
            assert self.path is not None
            if self.atomic:
                self._pending = AtomicFile(self.path)
                self._file = self._pending.file
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
        return self._file

    def append_from(self, path: Path) -> None:
        """The entries another Rejects wrote to `path` (a pass run in another process), byte for byte; their
        counts are in that pass's report already."""
        if self.path is not None and path.exists() and path.stat().st_size:
            with path.open("rb") as entries:
                shutil.copyfileobj(entries, self._open())

    def close(self, failed: bool = False) -> None:
        """Finish the file; for an atomic one, put it in place (or, when `failed`, throw it away)."""
        if self._file is not None and self._pending is None:
            self._file.close()
        self._file = None
        if not self.atomic or self.path is None:
            return
        pending, self._pending = self._pending, None
        if failed:
            if pending is not None:
                pending.discard()
        elif pending is not None:
            pending.commit()
        else:
            self.path.unlink(missing_ok=True)  # the old rejects described the output this run replaced

    def __enter__(self) -> Rejects:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(failed=exc_type is not None)
