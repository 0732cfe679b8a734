"""Source files -> clean JSONL in the bookrec schema, with a rejects file.

Streams line by line (plain or .gz); a bad line is counted and written to
the rejects file with its line number and reason, and never stops the run.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bookrec_etl.records import Rejected, from_goodbooks_row, from_jsonl_row, goodbooks_user, rating


@dataclass
class ImportReport:
    read: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)

    def summary(self, label: str) -> str:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in self.rejected.most_common()) or "none"
        return f"{label}: read {self.read:,}, accepted {self.accepted:,}, rejected {sum(self.rejected.values()):,} ({reasons})"


def open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


class Rejects:
    def __init__(self, path: Path | None) -> None:
        self._file = path.open("a") if path else None

    def add(self, report: ImportReport, source: str, line: int, reason: str) -> None:
        report.rejected[reason] += 1
        if self._file:
            self._file.write(json.dumps({"source": source, "line": line, "reason": reason}) + "\n")

    def close(self) -> None:
        if self._file:
            self._file.close()


def _write(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


def import_jsonl(source: Path, books_out: Path, rejects: Rejects, limit: int | None = None,
                 on_line: Callable[[], None] | None = None) -> ImportReport:
    report = ImportReport()
    with open_text(source) as lines, books_out.open("w") as out:
        for number, line in enumerate(lines, start=1):
            if limit is not None and report.accepted >= limit:
                break
            report.read += 1
            if on_line:
                on_line()
            if not line.strip():
                rejects.add(report, source.name, number, "empty line")
                continue
            try:
                record = from_jsonl_row(json.loads(line))
            except json.JSONDecodeError:
                rejects.add(report, source.name, number, "invalid JSON")
                continue
            except Rejected as exc:
                rejects.add(report, source.name, number, str(exc))
                continue
            _write(out, record)
            report.accepted += 1
    return report


def _genres(path: Path) -> dict[str, list[str]]:
    with open_text(path) as handle:
        return {row["book_id"]: [g for g in row["genres"].split(",") if g] for row in csv.DictReader(handle)}


def import_goodbooks(books_csv: Path, genres_csv: Path, ratings_csv: Path, books_out: Path, ratings_out: Path,
                     rejects: Rejects, max_users: int | None = None,
                     max_books: int | None = None) -> tuple[ImportReport, ImportReport]:
    """Books and their ratings; each book's aggregate is that of the ratings imported with it.

    `max_books` keeps goodbooks ids 1..N (the most rated books first) and only their ratings.
    """
    ratings_report = ImportReport()
    distributions: dict[str, Counter] = defaultdict(Counter)
    users: set[str] = set()
    with open_text(ratings_csv) as handle, ratings_out.open("w") as out:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != ["user_id", "book_id", "rating"]:
            raise SystemExit(f"{ratings_csv}: expected the header user_id,book_id,rating")
        for number, row in enumerate(reader, start=2):
            ratings_report.read += 1
            if len(row) != 3 or not row[0].isdigit() or not row[1].isdigit():
                rejects.add(ratings_report, ratings_csv.name, number, "malformed ratings row")
                continue
            if max_users is not None and row[0] not in users and len(users) >= max_users:
                continue
            if max_books is not None and int(row[1]) > max_books:
                continue
            try:
                record = rating(f"GB{int(row[1])}", goodbooks_user(row[0]), row[2], ratings_report.accepted)
            except Rejected as exc:
                rejects.add(ratings_report, ratings_csv.name, number, str(exc))
                continue
            users.add(row[0])
            distributions[record["book_id"]][str(record["rating"])] += 1
            _write(out, record)
            ratings_report.accepted += 1
    genres = _genres(genres_csv)
    books_report = ImportReport()
    with open_text(books_csv) as handle, books_out.open("w") as out:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            books_report.read += 1
            if max_books is not None and row.get("book_id", "").isdigit() and int(row["book_id"]) > max_books:
                continue
            try:
                record = from_goodbooks_row(row, genres, distributions.get(f"GB{row.get('book_id', '').strip()}"))
            except Rejected as exc:
                rejects.add(books_report, books_csv.name, number, str(exc))
                continue
            _write(out, record)
            books_report.accepted += 1
    return books_report, ratings_report


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as handle:
        for line in handle:
            yield json.loads(line)
