"""Open Library bulk dump lines -> the facts the catalogue needs. Pure: no I/O.

A dump line is `type \\t key \\t revision \\t last_modified \\t json`. Only the
JSON fields used here are decoded (msgspec skips the rest without building
them), which is what keeps extraction fast on multi-gigabyte dumps. Fields
are typed `Any` because their shapes vary with the age of the record; the
functions below accept every shape seen in the real dumps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec

from bookrec_catalog.imported_activity import day_number
from bookrec_etl import records
from bookrec_etl.lifecycle_records import delete_line, redirect_line
from bookrec_etl.records import Rejected, clean_subjects, clean_text, isbn13_list, language_code, parse_year

WORK, EDITION, AUTHOR = b"/type/work", b"/type/edition", b"/type/author"
REDIRECT, DELETE = b"/type/redirect", b"/type/delete"
TYPE_PREFIX = b"/type/"
COLUMNS = 5


class WorkDoc(msgspec.Struct):
    title: Any = None
    subtitle: Any = None
    authors: Any = None
    subjects: Any = None
    first_publish_date: Any = None
    description: Any = None
    covers: Any = None
    original_languages: Any = None
    created: Any = None
    last_modified: Any = None


class EditionDoc(msgspec.Struct):
    works: Any = None
    isbn_13: Any = None
    isbn_10: Any = None
    covers: Any = None
    languages: Any = None
    publish_date: Any = None


class AuthorDoc(msgspec.Struct):
    name: Any = None
    personal_name: Any = None


class RedirectDoc(msgspec.Struct):
    location: Any = None


_DECODERS = {kind: msgspec.json.Decoder(doc) for kind, doc in
             ((WORK, WorkDoc), (EDITION, EditionDoc), (AUTHOR, AuthorDoc), (REDIRECT, RedirectDoc))}


@dataclass(frozen=True, slots=True)
class DumpRecord:
    kind: bytes  # one of the /type/... constants
    key: str
    last_modified: str
    doc: Any  # the decoded struct; None for deletes


def split_line(line: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """A dump line -> (type, key, last_modified, JSON body), undecoded; Rejected when it is no dump line."""
    columns = line.rstrip(b"\r\n").split(b"\t", COLUMNS - 1)
    if len(columns) != COLUMNS:
        raise Rejected("wrong column count")
    kind, key, _revision, last_modified, body = columns
    if not kind.startswith(TYPE_PREFIX):
        raise Rejected("unknown type")
    return kind, key, last_modified, body


def namespace(key: bytes) -> bytes:
    """"/authors/OL23A" -> b"/authors/": what a redirect or delete is of (they share one type)."""
    end = key.find(b"/", 1)
    if not key.startswith(b"/") or end < 2:
        raise Rejected("missing or malformed key")
    return key[:end + 1]


def decode_record(kind: bytes, key: bytes, last_modified: bytes, body: bytes) -> DumpRecord:
    """The parts of a line of a type this extractor reads -> DumpRecord, or Rejected naming what is wrong."""
    if not key:
        raise Rejected("missing or malformed key")
    if kind == DELETE:
        return DumpRecord(kind, key.decode("utf-8", "replace"), "", None)
    try:
        doc = _DECODERS[kind].decode(body)
    except msgspec.ValidationError:
        raise Rejected("JSON is not an object") from None
    except msgspec.DecodeError:
        raise Rejected("invalid JSON") from None
    return DumpRecord(kind, key.decode("utf-8", "replace"), last_modified.decode("ascii", "replace"), doc)


def _number(prefix: str, suffix: str, key: Any) -> int | None:
    """"/works/OL45W" -> 45 (string tests rather than a regex: this runs for every key of every dump)."""
    if not isinstance(key, str) or not key.startswith(prefix) or not key.endswith(suffix):
        return None
    digits = key[len(prefix):-1]
    if not digits.isdigit() or not digits.isascii() or digits[0] == "0":
        return None
    return int(digits)


def author_number(key: Any) -> int | None:
    """"/authors/OL23A" -> 23."""
    return _number("/authors/OL", "A", key)


def work_number(key: Any) -> int | None:
    """"/works/OL45W" -> 45."""
    return _number("/works/OL", "W", key)


def edition_number(key: Any) -> int | None:
    """"/books/OL7M" -> 7."""
    return _number("/books/OL", "M", key)


def redirect_target(record: DumpRecord, numbering=work_number) -> int:
    target = numbering(record.doc.location)
    if target is None:
        raise Rejected("redirect without a valid location")
    return target


def author_name(doc: AuthorDoc) -> str:
    for value in (doc.name, doc.personal_name):
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    raise Rejected("missing name")


def work_author_numbers(authors: Any) -> list[int]:
    """Author references of every shape: {"author": {"key"}}, {"author": key}, {"key"}, a plain key."""
    numbers: dict[int, None] = {}
    for entry in authors if isinstance(authors, list) else []:
        if isinstance(entry, dict):
            entry = entry.get("author", entry)
            if isinstance(entry, dict):
                entry = entry.get("key")
        number = author_number(entry)
        if number is not None:
            numbers[number] = None
    return list(numbers)


def first_cover(covers: Any) -> int | None:
    """Open Library marks removed covers with -1."""
    for cover in covers if isinstance(covers, list) else []:
        if isinstance(cover, int) and not isinstance(cover, bool) and cover > 0:
            return cover
    return None


class WorkFacts(msgspec.Struct, array_like=True):
    """What the works dump says about one work, before authors, editions and ratings are joined.

    Kept on disk between the passes (msgpack, fields by position).
    """

    title: str
    subtitle: str | None
    author_numbers: list[int]
    subjects: list[str]
    first_publish_year: int | None
    description: str | None
    cover_id: int | None
    language: str | None
    created_at: str | None
    updated_at: str | None


WORK_FACTS_ENCODER = msgspec.msgpack.Encoder()
WORK_FACTS_DECODER = msgspec.msgpack.Decoder(WorkFacts)


def work_facts(record: DumpRecord) -> WorkFacts:
    doc: WorkDoc = record.doc
    title = doc.title if isinstance(doc.title, str) else None
    if not title or not title.strip():
        raise Rejected("missing title")
    subtitle = doc.subtitle.strip() or None if isinstance(doc.subtitle, str) else None
    languages = doc.original_languages if isinstance(doc.original_languages, list) else []
    return WorkFacts(
        title=" ".join(title.split()),
        subtitle=subtitle,
        author_numbers=work_author_numbers(doc.authors),
        subjects=clean_subjects(doc.subjects),
        first_publish_year=parse_year(doc.first_publish_date),
        description=clean_text(doc.description),
        cover_id=first_cover(doc.covers),
        language=next((code for code in map(language_code, languages) if code), None),
        created_at=records.timestamp(doc.created) or records.timestamp(record.last_modified),
        updated_at=records.timestamp(doc.last_modified) or records.timestamp(record.last_modified),
    )


@dataclass(slots=True)
class EditionFacts:
    work_numbers: list[int]
    isbn_13: list[str]
    cover_id: int | None
    language: str | None
    year: int | None


def edition_facts(record: DumpRecord) -> EditionFacts:
    doc: EditionDoc = record.doc
    numbers = [work_number(w.get("key")) for w in doc.works if isinstance(w, dict)] \
        if isinstance(doc.works, list) else []
    works = [w for w in numbers if w is not None]
    if not works:
        raise Rejected("edition without a work")
    languages = doc.languages if isinstance(doc.languages, list) else []
    return EditionFacts(
        work_numbers=works,
        isbn_13=isbn13_list(doc.isbn_13, doc.isbn_10),
        cover_id=first_cover(doc.covers),
        language=next((code for code in map(language_code, languages) if code), None),
        year=parse_year(doc.publish_date),
    )


def most_common_language(languages: list[str]) -> str | None:
    """The language most of a work's editions are in (ties: the first seen)."""
    return Counter(languages).most_common(1)[0][0] if languages else None


@dataclass(frozen=True, slots=True)
class RatingLine:
    work: int
    stars: int
    day: int  # days since 1970-01-01


# The reading-log dump's shelf names -> bookrec's shelves (bookrec_catalog.catalog.SHELVES).
READING_LOG_SHELVES = {b"Want to Read": "want_to_read", b"Currently Reading": "currently_reading",
                       b"Already Read": "read"}


@dataclass(frozen=True, slots=True)
class ReadingLogLine:
    work: int
    shelf: str
    day: int


def _dated_columns(line: bytes) -> tuple[int, bytes, int]:
    """`work key \\t edition key (may be empty or \\N) \\t value \\t date` -> (work, value, day)."""
    columns = line.rstrip(b"\r\n").split(b"\t")
    if len(columns) != 4:
        raise Rejected("wrong column count")
    work = work_number(columns[0].decode("utf-8", "replace"))
    if work is None:
        raise Rejected("missing or malformed key")
    try:
        day = _day(columns[3])
    except ValueError:
        raise Rejected("date is not YYYY-MM-DD") from None
    return work, columns[2], day


@lru_cache(maxsize=16_384)
def _day(raw: bytes) -> int:
    """A date column -> days since 1970 (cached: a dump's tens of millions of lines share a few thousand dates)."""
    return day_number(raw.decode("ascii"))


def parse_rating_line(line: bytes) -> RatingLine:
    """`work key \\t edition key (may be empty or \\N) \\t rating \\t date`."""
    work, rating, day = _dated_columns(line)
    if rating not in (b"1", b"2", b"3", b"4", b"5"):
        raise Rejected("rating is not an integer 1..5")
    return RatingLine(work, int(rating), day)


def parse_reading_log_line(line: bytes) -> ReadingLogLine:
    """`work key \\t edition key (may be empty or \\N) \\t shelf name \\t date`."""
    work, name, day = _dated_columns(line)
    shelf = READING_LOG_SHELVES.get(name)
    if shelf is None:
        raise Rejected("shelf is not Want to Read, Currently Reading or Already Read")
    return ReadingLogLine(work, shelf, day)


# What becomes of a deleted or redirected work (Workspace.work_lifecycle's `what`): its line, and the note
# the extract summary counts it under.
LIFECYCLE_NOTES = {
    "deleted": "delete lines (works the dump deletes)",
    "redirect": "redirect lines (works merged into another)",
    "to deleted": "delete lines for redirects ending at a deleted work",
    "cycle": "redirect cycles or chains over 10 hops (no line: the works stay)",
    "unknown target": "redirects to works not in the dump (no line: the works stay)",
}


def lifecycle_line(number: int, target: int | None, what: str) -> dict[str, Any] | None:
    """The load line of a work the dump deleted or redirected (lifecycle_records.py), None for none: a
    redirect to a work of the dump moves its readers there; one whose chain ends at a deleted work is a
    deletion; a cycle, or a target the dump does not hold, says nothing certain, and the work stays."""
    if what in ("deleted", "to deleted"):
        return delete_line(f"OL{number}W")
    if what == "redirect" and target is not None:
        return redirect_line(f"OL{number}W", f"OL{target}W")
    return None
