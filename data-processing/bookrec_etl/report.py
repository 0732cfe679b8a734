"""What a run did: counts per input, and the rejects file (one JSON line per bad input line)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

EXCERPT = 200  # characters of a rejected line kept in the rejects file


@dataclass
class Report:
    """read = accepted + rejected + skipped for an input; written/retried/calls for a load."""

    label: str
    read: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)  # well-formed lines deliberately left out
    notes: Counter = field(default_factory=Counter)  # facts worth knowing that drop nothing
    written: int | None = None
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
        if self.written is not None:
            parts.append(f"written {self.written:,}")
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


class Rejects:
    """Writes {"source", "line", "reason", "excerpt"} per rejected line; counts into the report.

    The file is created at the first reject. A run starts it afresh unless `append` (a resumed load
    adds to the rejects of the run it continues).
    """

    def __init__(self, path: Path | None, append: bool = False) -> None:
        self.path = path
        self._file: IO[str] | None = None
        if path is not None and not append:
            path.unlink(missing_ok=True)

    def add(self, report: Report, source: str, line: int, reason: str, text: bytes | str = "") -> None:
        report.rejected[reason] += 1
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        if isinstance(text, bytes):
            text = text[:EXCERPT * 4].decode("utf-8", "replace")
        self._file.write(json.dumps({"source": source, "line": line, "reason": reason,
                                     "excerpt": text.rstrip("\r\n")[:EXCERPT]}, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Rejects:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
