"""JSONL of the replaced system (or Open Library-derived JSONL) and goodbooks-10k CSVs -> clean JSONL.

Streams line by line (plain or .gz); a bad line is counted and written to the
rejects file with its line number and reason, and never stops the run. Outputs
are replaced only when the whole input was read (outputs.py): a broken input
(BrokenInput) leaves the previous outputs as they were.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

import msgspec

from bookrec_etl.outputs import atomic_outputs
from bookrec_etl.progress import Progress
from bookrec_etl.records import (
    Rejected,
    from_goodbooks_row,
    from_jsonl_row,
    goodbooks_book_id,
    goodbooks_user,
    import_stamp,
    rating,
)
from bookrec_etl.report import Rejects, Report
from bookrec_etl.sources import BrokenInput, LineSource, open_text

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
    report = Report(f"import {source.name}", writes=True)
    with LineSource(source) as lines, atomic_outputs(books_out) as (out,), \
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


def _rows(reader: Any) -> Iterator[Any]:
    """A csv reader's rows; a broken compressed file says after which line it broke."""
    try:
        yield from reader
    except BrokenInput as exc:
        raise exc.at_line(reader.line_num) from None


def _genres(path: Path) -> dict[str, list[str]]:
    with open_text(path) as handle:
        return {row["book_id"].strip(): [g.strip() for g in (row.get("genres") or "").split(",") if g.strip()]
                for row in _rows(csv.DictReader(handle))}


def _book_ids(books_csv: Path) -> set[str]:
    with open_text(books_csv) as handle:
        ids = set()
        for row in _rows(csv.DictReader(handle)):
            with suppress(Rejected):  # a bad row is rejected when the books are read
                ids.add(goodbooks_book_id(row.get("book_id")))
        return ids


def import_goodbooks(books_csv: Path, genres_csv: Path, ratings_csv: Path, books_out: Path,
                     ratings_out: Path, rejects: Rejects, max_users: int | None = None,
                     progress=Progress) -> tuple[Report, Report]:
    """Books (ids GB<n>) and ratings (users gb-<n>); a book's aggregate is that of its imported ratings.

    Both outputs are put in place together, and only when every input was read; a ratings file
    without the expected header is rejected whole and replaces nothing.
    """
    known_books = _book_ids(books_csv)
    ratings_report = Report(f"import {ratings_csv.name}", writes=True)
    try:
        with atomic_outputs(ratings_out, books_out) as (ratings_file, books_file):
            distributions = _goodbooks_ratings(ratings_csv, known_books, ratings_file, ratings_report,
                                               rejects, max_users, progress)
            genres = _genres(genres_csv)
            books_report = _goodbooks_books(books_csv, genres, distributions, books_file, rejects)
    except _NotRatings:
        return Report(f"import {books_csv.name}"), ratings_report
    return books_report, ratings_report


class _NotRatings(Exception):
    """The ratings file lacks its header: nothing of this import is written."""


def _goodbooks_ratings(ratings_csv: Path, known_books: set[str], out: IO[bytes], report: Report,
                       rejects: Rejects, max_users: int | None, progress) -> dict[str, dict[str, int]]:
    distributions: dict[str, dict[str, int]] = {}
    users: dict[str, None] = {}
    pairs = _RatedPairs()
    with open_text(ratings_csv) as handle, progress(f"import {ratings_csv.name}", None, "items") as bar:
        reader = _rows(csv.reader(handle))
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["user_id", "book_id", "rating"]:
            rejects.add(report, ratings_csv.name, 1, "expected the header user_id,book_id,rating",
                        ",".join(header or []))
            raise _NotRatings
        for number, row in enumerate(reader, start=2):
            report.read += 1
            if number % PROGRESS_EVERY == 0:
                bar.advance(report.read, report.read, absolute=True)
            try:
                if len(row) != 3:
                    raise Rejected("wrong column count")
                user_id, book_id = goodbooks_user(row[0]), goodbooks_book_id(row[1])
                if book_id not in known_books:
                    raise Rejected("book_id not in books.csv")
                if max_users is not None and user_id not in users and len(users) >= max_users:
                    report.skipped["user beyond --max-users"] += 1
                    continue
                stamp = import_stamp(report.accepted)  # no dates in the source: one second apart
                record = rating(book_id, user_id, row[2], stamp)
                if not pairs.add(int(row[0]), int(row[1])):
                    raise Rejected("duplicate rating of a book by the same user")
            except Rejected as exc:
                rejects.add(report, ratings_csv.name, number, str(exc), ",".join(row))
                continue
            users[user_id] = None
            stars = distributions.setdefault(book_id, {})
            stars[str(record["rating"])] = stars.get(str(record["rating"]), 0) + 1
            write_record(out, record)
            report.accepted += 1
            report.written += 1
        bar.advance(report.read, report.read, absolute=True)
    report.notes["users"] = len(users)
    return distributions


def _goodbooks_books(books_csv: Path, genres: dict[str, list[str]], distributions: dict[str, dict[str, int]],
                     out: IO[bytes], rejects: Rejects) -> Report:
    report = Report(f"import {books_csv.name}", writes=True)
    with open_text(books_csv) as handle:
        for number, row in enumerate(_rows(csv.DictReader(handle)), start=2):
            report.read += 1
            try:
                book_id = goodbooks_book_id(row.get("book_id"))
                record = from_goodbooks_row(row, genres.get(book_id[2:], []), distributions.get(book_id))
            except Rejected as exc:
                rejects.add(report, books_csv.name, number, str(exc), ",".join(map(str, row.values())))
                continue
            write_record(out, record)
            report.accepted += 1
            report.written += 1
    return report
