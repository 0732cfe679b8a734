"""JSONL of the replaced system (or Open Library-derived JSONL) and goodbooks-10k CSVs -> clean JSONL.

Streams line by line (plain or .gz); a bad line is counted and written to the
rejects file with its line number and reason, and never stops the run.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from bookrec_etl.progress import Progress
from bookrec_etl.records import (Rejected, from_goodbooks_row, from_jsonl_row, goodbooks_book_id,
                                 goodbooks_user, import_stamp, rating)
from bookrec_etl.report import Rejects, Report
from bookrec_etl.sources import LineSource, open_text

PROGRESS_EVERY = 2048
_ENCODER = msgspec.json.Encoder()


def write_record(out: IO[bytes], record: dict[str, Any]) -> None:
    out.write(_ENCODER.encode(record))
    out.write(b"\n")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            yield msgspec.json.decode(line)


def import_jsonl(source: Path, books_out: Path, rejects: Rejects, limit: int | None = None,
                 progress=Progress) -> Report:
    report = Report(f"import {source.name}", written=0)
    with LineSource(source) as lines, books_out.open("wb") as out, \
            progress(f"import {source.name}", lines.size, "bytes") as bar:
        for number, line in enumerate(lines, start=1):
            if limit is not None and report.accepted >= limit:
                report.notes["stopped at --limit"] = limit
                break
            report.read += 1
            if number % PROGRESS_EVERY == 0:
                bar.advance(lines.position, number, absolute=True)
            if not line.strip():
                rejects.add(report, source.name, number, "empty line", line)
                continue
            try:
                record = from_jsonl_row(msgspec.json.decode(line))
            except msgspec.DecodeError:
                rejects.add(report, source.name, number, "invalid JSON", line)
                continue
            except Rejected as exc:
                rejects.add(report, source.name, number, str(exc), line)
                continue
            write_record(out, record)
            report.accepted += 1
            report.written += 1
        bar.advance(lines.size, report.read, absolute=True)
    return report


class _RatedPairs:
    """Which (user, book) pairs were seen: a bit per book per user, small even at millions of rows."""

    def __init__(self) -> None:
        self._books_by_user: dict[int, bytearray] = {}

    def add(self, user: int, book: int) -> bool:
        """False when the pair was seen before."""
        bits = self._books_by_user.setdefault(user, bytearray())
        index, mask = divmod(book, 8)
        if index >= len(bits):
            bits.extend(bytes(index + 1 - len(bits)))
        if bits[index] & (1 << mask):
            return False
        bits[index] |= 1 << mask
        return True


def _genres(path: Path) -> dict[str, list[str]]:
    with open_text(path) as handle:
        return {row["book_id"].strip(): [g.strip() for g in (row.get("genres") or "").split(",") if g.strip()]
                for row in csv.DictReader(handle)}


def _book_ids(books_csv: Path) -> set[str]:
    with open_text(books_csv) as handle:
        ids = set()
        for row in csv.DictReader(handle):
            try:
                ids.add(goodbooks_book_id(row.get("book_id")))
            except Rejected:
                pass
        return ids


def import_goodbooks(books_csv: Path, genres_csv: Path, ratings_csv: Path, books_out: Path,
                     ratings_out: Path, rejects: Rejects, max_users: int | None = None,
                     progress=Progress) -> tuple[Report, Report]:
    """Books (ids GB<n>) and ratings (users gb-<n>); a book's aggregate is that of its imported ratings."""
    known_books = _book_ids(books_csv)
    ratings_report = Report(f"import {ratings_csv.name}", written=0)
    distributions: dict[str, dict[str, int]] = {}
    users: dict[str, None] = {}
    pairs = _RatedPairs()
    with open_text(ratings_csv) as handle, ratings_out.open("wb") as out, \
            progress(f"import {ratings_csv.name}", None, "items") as bar:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["user_id", "book_id", "rating"]:
            rejects.add(ratings_report, ratings_csv.name, 1, "expected the header user_id,book_id,rating",
                        ",".join(header or []))
            return Report(f"import {books_csv.name}"), ratings_report
        for number, row in enumerate(reader, start=2):
            ratings_report.read += 1
            if number % PROGRESS_EVERY == 0:
                bar.advance(ratings_report.read, ratings_report.read, absolute=True)
            try:
                if len(row) != 3:
                    raise Rejected("wrong column count")
                user_id, book_id = goodbooks_user(row[0]), goodbooks_book_id(row[1])
                if book_id not in known_books:
                    raise Rejected("book_id not in books.csv")
                if max_users is not None and user_id not in users and len(users) >= max_users:
                    ratings_report.skipped["user beyond --max-users"] += 1
                    continue
                stamp = import_stamp(ratings_report.accepted)  # no dates in the source: one second apart
                record = rating(book_id, user_id, row[2], stamp)
                if not pairs.add(int(row[0]), int(row[1])):
                    raise Rejected("duplicate rating of a book by the same user")
            except Rejected as exc:
                rejects.add(ratings_report, ratings_csv.name, number, str(exc), ",".join(row))
                continue
            users[user_id] = None
            stars = distributions.setdefault(book_id, {})
            stars[str(record["rating"])] = stars.get(str(record["rating"]), 0) + 1
            write_record(out, record)
            ratings_report.accepted += 1
            ratings_report.written += 1
        bar.advance(ratings_report.read, ratings_report.read, absolute=True)
    ratings_report.notes["users"] = len(users)

    genres = _genres(genres_csv)
    books_report = Report(f"import {books_csv.name}", written=0)
    with open_text(books_csv) as handle, books_out.open("wb") as out:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            books_report.read += 1
            try:
                book_id = goodbooks_book_id(row.get("book_id"))
                record = from_goodbooks_row(row, genres.get(book_id[2:], []), distributions.get(book_id))
            except Rejected as exc:
                rejects.add(books_report, books_csv.name, number, str(exc), ",".join(map(str, row.values())))
                continue
            write_record(out, record)
            books_report.accepted += 1
            books_report.written += 1
    return books_report, ratings_report
