"""Source rows -> records in the bookrec schema. Pure functions: no I/O.

Every book goes through bookrec_common.catalog.with_derived_attributes, the
one place that derives what the services read (normalised title, prefix
bucket, aggregates). A row that cannot become a record raises Rejected with
the reason, which the caller counts and writes to the rejects file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bookrec_common.catalog import OPEN_LIBRARY_WORK_ID, with_derived_attributes

# Deterministic timestamps for sources that carry none, so loading twice gives the same table.
IMPORT_EPOCH = "2017-09-01T00:00:00.000000Z"
_YEAR = re.compile(r"(?<!\d)(\d{3,4})(?!\d)")
_COVER_ID = re.compile(r"/b/id/(\d+)")
_WORK_KEY = re.compile(r"(OL[1-9]\d*W)$")
LANGUAGES = {"en": "eng", "fr": "fre", "de": "ger", "es": "spa", "it": "ita", "pt": "por", "nl": "dut",
             "ja": "jpn", "ar": "ara", "ru": "rus", "zh": "chi", "sv": "swe", "pl": "pol", "tr": "tur"}


class Rejected(ValueError):
    """A source row that cannot become a record; the message is the reason."""


def parse_year(value: Any) -> int | None:
    """Years arrive as ints, "1955", "November 25, 1989", "c. 1850?" or ""."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        year = int(value)
        return year if -3000 <= year <= 2100 else None
    found = _YEAR.findall(str(value))
    return int(found[-1]) if found else None


def clean_subjects(subjects: Any, limit: int = 50) -> list[str]:
    """Trimmed, de-duplicated (case-insensitively), order kept."""
    seen: dict[str, str] = {}
    for subject in subjects or []:
        if isinstance(subject, str) and subject.strip():
            text = " ".join(subject.split())
            seen.setdefault(text.casefold(), text)
    return list(seen.values())[:limit]


def language_code(value: Any) -> str | None:
    """ISO 639-2/B; "en-US" and "en" become "eng"."""
    if not isinstance(value, str) or not value.strip():
        return None
    code = value.strip().lower().split("-")[0]
    return LANGUAGES.get(code, code if len(code) == 3 and code.isalpha() else None)


def work_id(value: Any) -> str:
    match = _WORK_KEY.search(str(value or "").strip())
    if not match or not OPEN_LIBRARY_WORK_ID.match(match.group(1)):
        raise Rejected("missing or malformed work key")
    return match.group(1)


def isbn10_is_valid(isbn: str) -> bool:
    if not re.fullmatch(r"\d{9}[\dX]", isbn):
        return False
    total = sum((10 - i) * (10 if ch == "X" else int(ch)) for i, ch in enumerate(isbn))
    return total % 11 == 0


def isbn13_check_digit(first12: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn13_is_valid(isbn: str) -> bool:
    return bool(re.fullmatch(r"97[89]\d{10}", isbn)) and isbn13_check_digit(isbn[:12]) == isbn[12]


def goodbooks_isbn13(isbn10: str, isbn13_float: str) -> str | None:
    """The ISBN-13 of a goodbooks row.

    `isbn` is an ISBN-10 whose leading zeros were dropped: pad, verify, convert.
    `isbn13` is float-formatted with 12 significant digits (check digit lost):
    its first 12 digits plus a recomputed check digit is the fallback.
    """
    candidate = (isbn10 or "").strip().upper()
    if candidate:
        padded = candidate.zfill(10)
        if isbn10_is_valid(padded):
            first12 = "978" + padded[:9]
            return first12 + isbn13_check_digit(first12)
    try:
        digits = f"{float(isbn13_float):.0f}"
    except (TypeError, ValueError):
        return None
    if len(digits) == 13 and digits.startswith(("978", "979")):
        return digits[:12] + isbn13_check_digit(digits[:12])
    return None


def book(record: Mapping[str, Any]) -> dict[str, Any]:
    """A book record ready to store: validated, derived attributes set."""
    if not str(record.get("title") or "").strip():
        raise Rejected("missing title")
    return with_derived_attributes(dict(record), now=IMPORT_EPOCH)


def from_jsonl_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the replaced system's JSONL, or of an Open Library-derived variant (philosophy sample)."""
    if not isinstance(row, Mapping):
        raise Rejected("not a JSON object")
    authors = []
    for author in row.get("authors") or []:
        if isinstance(author, str) and author.strip():
            authors.append({"author_id": None, "name": " ".join(author.split())})
        elif isinstance(author, Mapping):
            name = author.get("author_name") or author.get("name")
            if name:
                key = author.get("author_id") or author.get("key")
                authors.append({"author_id": str(key).rsplit("/", 1)[-1] if key else None, "name": str(name).strip()})
    cover_id = row.get("cover_id")
    if cover_id is None and row.get("thumbnail_url"):
        match = _COVER_ID.search(str(row["thumbnail_url"]))
        cover_id = int(match.group(1)) if match else None
    isbn = row.get("isbn_13") or []
    isbns = [i for i in ([isbn] if isinstance(isbn, str) else isbn) if isinstance(i, str) and isbn13_is_valid(i)]
    description = row.get("description")
    if isinstance(description, Mapping):
        description = description.get("value")
    return book({
        "book_id": work_id(row.get("book_id") or row.get("key")),
        "title": row.get("title"),
        "subtitle": row.get("subtitle") or None,
        "authors": authors,
        "subjects": clean_subjects(row.get("subjects")),
        "first_publish_year": parse_year(row.get("first_publish_year")),
        "isbn_13": isbns,
        "language": language_code(row.get("language")),
        "description": description or None,
        "cover_id": int(cover_id) if isinstance(cover_id, (int, str)) and str(cover_id).isdigit() else None,
    })


def from_goodbooks_row(row: Mapping[str, str], genres: Mapping[str, list[str]],
                       distribution: Mapping[str, int] | None) -> dict[str, Any]:
    try:
        number = int(row["book_id"])
    except (KeyError, ValueError):
        raise Rejected("missing or malformed book_id") from None
    isbn13 = goodbooks_isbn13(row.get("isbn", ""), row.get("isbn13", ""))
    return book({
        "book_id": f"GB{number}",
        "title": row.get("title") or row.get("original_title"),
        "authors": [{"author_id": None, "name": name.strip()} for name in (row.get("authors") or "").split(",")
                    if name.strip()],
        "subjects": clean_subjects(genres.get(row["book_id"], [])),
        "first_publish_year": parse_year(row.get("original_publication_year") or None),
        "isbn_13": [isbn13] if isbn13 else [],
        "language": language_code(row.get("language_code")),
        "cover_url": row.get("image_url") or None,
        # Aggregates are those of the ratings imported with the books, so the table stays exact.
        "ratings_distribution": dict(distribution or {}),
    })


def goodbooks_user(user_id: str) -> str:
    return f"gb-{int(user_id)}"


def rating(book_id: str, user_id: str, stars: Any, sequence: int) -> dict[str, Any]:
    if isinstance(stars, bool) or not str(stars).isdigit() or not 1 <= int(stars) <= 5:
        raise Rejected(f"rating {stars!r} is not an integer 1..5")
    # No dates in the source: one second apart in file order keeps "newest first" well defined.
    stamp = _seconds_after_epoch(sequence)
    return {"book_id": book_id, "user_id": user_id, "rating": int(stars), "created_at": stamp, "updated_at": stamp}


def _seconds_after_epoch(seconds: int) -> str:
    from datetime import UTC, datetime, timedelta

    moment = datetime(2017, 9, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
