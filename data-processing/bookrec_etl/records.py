"""Source rows -> records in the bookrec schema. Pure functions: no I/O.

Every book goes through bookrec_catalog.catalog.with_derived_attributes, the
one place that derives what the services read (normalised title, prefix
bucket, aggregates). A row that cannot become a record raises Rejected with
the reason, which the caller counts and writes to the rejects file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bookrec_catalog.catalog import (
    GOODBOOKS_ID,
    OPEN_LIBRARY_WORK_ID,
    STARS,
    Series,
    cut_utf8,
    empty_distribution,
    has_word_character,
    is_book_id,
    is_user_id,
    normalise_text,
    parse_series_note,
    split_series,
    with_derived_attributes,
)
from bookrec_catalog.imported_activity import IMPORTED_ACTIVITY, activity_days
from bookrec_etl import aggregates, shelf_counts
from bookrec_etl.aggregates import DISTRIBUTION, IMPORTED
from bookrec_etl.shelf_counts import IMPORTED_SHELF_COUNTS

# Deterministic timestamps for sources that carry none, so importing twice gives the same records.
IMPORT_EPOCH = datetime(2017, 9, 1, tzinfo=UTC)
MAX_SUBJECTS = 50
MAX_ISBNS = 50
MAX_ORIGINAL_TITLE_BYTES = 1024
MAX_DESCRIPTION = 20_000  # characters; keeps every item far below DynamoDB's 400 KB
MAX_SERIES_NAME_BYTES = 1024
MAX_SERIES_POSITION = 100_000  # no series is longer; beyond it a "position" is some other number
# DynamoDB refuses a sort key over 1,024 bytes and a partition key over 2,048, in secondary indexes too
# (infrastructure/definitions/tables.json). Of the key attributes only title_norm can grow with the
# input: bookrec_catalog.catalog.title_key cuts it. book_id, user_id and title_bucket are short by
# construction; ratings' updated_at is a timestamp.

_YEAR = re.compile(r"(?<!\d)(\d{3,4})(?!\d)")
_COVER_ID = re.compile(r"/b/id/(\d+)")
_WORK_KEY = re.compile(r"(OL[1-9]\d*W)$")
_AUTHOR_ID = re.compile(r"(?:/authors/)?(OL[1-9]\d*A)")
_NOT_ISBN_CHAR = re.compile(r"[^0-9Xx]")
# ISO 639-1 (and a few BCP 47 tags seen in goodbooks) -> ISO 639-2/B, which Open Library uses.
LANGUAGES = {"en": "eng", "fr": "fre", "de": "ger", "es": "spa", "it": "ita", "pt": "por", "nl": "dut",
             "ja": "jpn", "ar": "ara", "ru": "rus", "zh": "chi", "sv": "swe", "pl": "pol", "tr": "tur",
             "da": "dan", "fi": "fin", "no": "nor", "el": "gre", "he": "heb", "hi": "hin", "ko": "kor",
             "la": "lat", "cs": "cze", "hu": "hun", "id": "ind", "fa": "per", "ro": "rum", "uk": "ukr"}
NO_LANGUAGE = {"und", "zxx"}  # undetermined, no linguistic content


class Rejected(ValueError):
    """A source row that cannot become a record; the message is the reason."""


def parse_year(value: Any) -> int | None:
    """Years arrive as ints, "1955", "November 25, 1989", "c. 1850?", "1999-03-02" or ""."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        year = int(value)
        return year if -3000 <= year <= 2100 else None
    found = [int(y) for y in _YEAR.findall(str(value)) if 100 <= int(y) <= 2100]
    # "between 1200 and 1210" -> the later year; "1999-03-02" -> 1999 (the day and month are 1-2 digits).
    return found[-1] if found else None


def clean_text(value: Any) -> str | None:
    if isinstance(value, Mapping):  # Open Library's {"type": "/type/text", "value": ...}
        value = value.get("value")
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text[:MAX_DESCRIPTION] if text else None


def clean_subjects(subjects: Any, limit: int = MAX_SUBJECTS) -> list[str]:
    """Trimmed, de-duplicated (case-insensitively), order kept."""
    seen: dict[str, str] = {}
    for subject in subjects if isinstance(subjects, list) else []:
        if not isinstance(subject, str):
            continue
        text = subject if subject.isprintable() and "  " not in subject and subject == subject.strip() \
            else " ".join(subject.split())
        if text:
            seen.setdefault(text.casefold(), text)
            if len(seen) == limit:
                break
    return list(seen.values())


def language_code(value: Any) -> str | None:
    """ISO 639-2/B; "en-US", "en" and "/languages/eng" become "eng"; unknown or undetermined -> None."""
    if isinstance(value, Mapping):
        value = value.get("key")
    if not isinstance(value, str) or not value.strip():
        return None
    given = value.strip().lower().rsplit("/", 1)[-1].split("-")[0]
    code = LANGUAGES.get(given, given if len(given) == 3 and given.isalpha() else None)
    return None if code in NO_LANGUAGE else code


def work_id(value: Any) -> str:
    """"OL45883W" or "/works/OL45883W" -> "OL45883W"."""
    match = _WORK_KEY.search(str(value or "").strip())
    if not match or not OPEN_LIBRARY_WORK_ID.match(match.group(1)):
        raise Rejected("missing or malformed work key")
    return match.group(1)


def isbn10_is_valid(isbn: str) -> bool:
    if len(isbn) != 10 or not isbn.isascii() or not isbn[:9].isdigit():
        return False
    if not (isbn[9].isdigit() or isbn[9] == "X"):
        return False
    total = sum(weight * int(digit) for weight, digit in zip(range(10, 1, -1), isbn[:9], strict=True))
    return (total + (10 if isbn[9] == "X" else int(isbn[9]))) % 11 == 0


def isbn13_check_digit(first12: str) -> str:
    total = sum(map(int, first12[0::2])) + 3 * sum(map(int, first12[1::2]))
    return str((10 - total % 10) % 10)


def isbn13_is_valid(isbn: str) -> bool:
    return len(isbn) == 13 and isbn.startswith(("978", "979")) and isbn.isdigit() and isbn.isascii() \
        and isbn13_check_digit(isbn[:12]) == isbn[12]


def isbn10_to_13(isbn10: str) -> str:
    first12 = "978" + isbn10[:9]
    return first12 + isbn13_check_digit(first12)


def as_isbn13(value: Any) -> str | None:
    """Any ISBN spelling ("978-1-935928-32-4", "0-670-03482-7", "089471984X") -> a verified ISBN-13."""
    if not isinstance(value, str):
        return None
    compact = value if value.isdigit() else _NOT_ISBN_CHAR.sub("", value).upper()
    if len(compact) == 13 and isbn13_is_valid(compact):
        return compact
    if len(compact) == 10 and isbn10_is_valid(compact):
        return isbn10_to_13(compact)
    return None


def isbn13_list(*sources: Any, limit: int = MAX_ISBNS) -> list[str]:
    """Verified, de-duplicated ISBN-13s from lists (or single strings) of any ISBN spelling."""
    found: dict[str, None] = {}
    for source in sources:
        for value in [source] if isinstance(source, str) else source if isinstance(source, list) else []:
            isbn = as_isbn13(value)
            if isbn:
                found[isbn] = None
                if len(found) == limit:
                    return list(found)
    return list(found)


def goodbooks_isbn13(isbn10: str, isbn13_float: str) -> str | None:
    """The ISBN-13 of a goodbooks row, or None when it cannot be known for sure.

    `isbn` is an ISBN-10 whose leading zeros were dropped: pad, verify, convert.
    `isbn13` is float-formatted with 12 significant digits, so the true ISBN-13
    was rounded to the nearest ten: the check digit is lost and, when it was 5
    or more, the twelfth digit was rounded up. Without a valid ISBN-10, each of
    the two possible first-twelve-digit prefixes gets its check digit
    recomputed, and the one whose ISBN-13 rounds back to the column's value is
    kept; when both (or neither) do, there is no answer. Checked against the
    rows that have both columns: the ISBN-10's ISBN-13 rounds this way to the
    float column in all but the rows where the two columns name different books.
    """
    candidate = (isbn10 or "").strip().upper()
    if candidate:
        padded = candidate.zfill(10)
        if isbn10_is_valid(padded):
            return isbn10_to_13(padded)
    try:
        value = float(isbn13_float)
        rounded = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    matches = []
    for first12 in (rounded // 10, rounded // 10 - 1):
        digits = str(first12)
        if len(digits) == 12 and digits.startswith(("978", "979")):
            isbn = digits + isbn13_check_digit(digits)
            if float(f"{int(isbn):.12g}") == value:  # rounds (half to even) to what the column holds
                matches.append(isbn)
    return matches[0] if len(matches) == 1 else None


def timestamp(value: Any) -> str | None:
    """Open Library datetimes ("2013-03-28T07:50:48.835814" or {"type", "value"}) -> ISO-8601 UTC, "Z"."""
    if isinstance(value, Mapping):
        value = value.get("value")
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 26 and value[10] == "T" and value[19] == "." and value[:4].isdigit() \
            and value[20:].isdigit():
        return value + "Z"  # the dumps' usual "2013-03-28T07:50:48.835814" (naive UTC): nothing to convert
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def import_stamp(seconds: int = 0) -> str:
    moment = IMPORT_EPOCH + timedelta(seconds=seconds)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def distribution_for(average: Any, count: Any) -> dict[str, int]:
    """A per-star distribution with exactly `count` ratings summing to round(average * count).

    Sources that give only an average and a count (the replaced system's JSONL)
    keep both through the stored aggregate: the ratings fall on the two whole
    stars around the average, so the service's sum/count arithmetic stays exact.
    """
    try:
        count, average = int(count), float(average)
    except (TypeError, ValueError):
        return empty_distribution()
    if count <= 0 or not 1.0 <= average <= 5.0:
        return empty_distribution()
    total = round(average * count)
    low = min(int(average), 4)
    high_count = min(max(total - low * count, 0), count)
    distribution = empty_distribution()
    distribution[str(low)] += count - high_count
    distribution[str(low + 1)] += high_count
    return distribution


def book(record: Mapping[str, Any]) -> dict[str, Any]:
    """A book record ready to store: validated, derived attributes set, empty fields dropped.

    `imported_distribution`, when given, is the part of the aggregate a source gives with no individual
    ratings behind it (aggregates.py); the distribution defaults to it and must hold it.
    """
    if not is_book_id(record.get("book_id")):
        raise Rejected("missing or malformed book_id")
    if not isinstance(record.get("title"), str) or not record["title"].strip():
        raise Rejected("missing title")
    kept = {k: v for k, v in record.items() if v is not None}
    # One rule for every source: a title's closing series note ("(The Hunger Games, #1)") is taken off the
    # title and becomes its series, unless the record names its series itself (then its title is as given,
    # so a record that went through here once, as a load's line has, comes out the same).
    series = clean_series(kept.pop("series", None))
    if series is None:
        kept["title"], series = split_series(kept["title"])
    if series is not None:
        kept["series"] = series.as_record()
    if IMPORTED in kept:
        try:
            kept[IMPORTED] = imported = aggregates.distribution(kept[IMPORTED])
            whole = aggregates.distribution(kept.setdefault(DISTRIBUTION, imported))
        except ValueError as exc:
            raise Rejected(f"malformed rating distribution: {exc}") from None
        if any(whole[star] < imported[star] for star in STARS):
            raise Rejected("imported_distribution holds more ratings than ratings_distribution")
    try:  # the dumps' imported shelf counts and dated events (shelf_counts.py, bookrec_catalog.imported_activity)
        if IMPORTED_SHELF_COUNTS in kept:
            kept[IMPORTED_SHELF_COUNTS] = shelf_counts.counts(kept[IMPORTED_SHELF_COUNTS])
        if IMPORTED_ACTIVITY in kept:
            kept[IMPORTED_ACTIVITY] = activity_days(kept[IMPORTED_ACTIVITY])
    except ValueError as exc:
        raise Rejected(f"malformed imported shelves or activity: {exc}") from None
    return with_derived_attributes(kept, now=record.get("created_at") or import_stamp())


def _series_position(value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        try:
            value = float(value.strip())
        except ValueError:
            raise Rejected("malformed series: position is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Rejected("malformed series: position is not a number")
    if not 0 <= value <= MAX_SERIES_POSITION:
        raise Rejected(f"malformed series: position outside 0..{MAX_SERIES_POSITION:,}")
    return int(value) if float(value).is_integer() else float(value)


def clean_series(value: Any) -> Series | None:
    """A record's own `series`: {"name", "position"} (position a number, or absent or null when the source
    has none), or a note such as "The Hunger Games, #2" (a bare name has no position). None when absent;
    Rejected when it is there but is no series."""
    if value is None:
        return None
    if isinstance(value, str):
        note = " ".join(value.split())
        if not note:
            return None
        return parse_series_note(note) or clean_series({"name": note})
    if not isinstance(value, Mapping):
        raise Rejected("malformed series: neither an object {name, position} nor a text")
    name = value.get("name")
    if not isinstance(name, str) or not has_word_character(name):
        raise Rejected("malformed series: no name")
    return Series(cut_utf8(" ".join(name.split()), MAX_SERIES_NAME_BYTES), _series_position(value.get("position")))


def author(author_id: str | None, name: str) -> dict[str, str]:
    """{author_id, name}. A name that is an Open Library author id (sources put the id where they had no
    name) is kept as the id, never shown as a name: the name is left empty."""
    name = " ".join(name.split())
    as_id = _AUTHOR_ID.fullmatch(name)
    if as_id:
        author_id, name = author_id or as_id.group(1), ""
    entry = {"name": name}
    if author_id:
        entry = {"author_id": author_id, **entry}
    return entry


def _jsonl_author(entry: Any) -> dict[str, str] | None:
    """A plain name, or {author_id or key, author_name or name}; None when it names nobody."""
    given_name: Any
    given_key: Any
    if isinstance(entry, str):
        given_name, given_key = entry, None
    elif isinstance(entry, Mapping):
        given_name = entry.get("author_name") or entry.get("name")
        given_key = entry.get("author_id") or entry.get("key")
    else:
        return None
    name = given_name if isinstance(given_name, str) else ""
    key = given_key.strip().rsplit("/", 1)[-1] if isinstance(given_key, str) and given_key.strip() else None
    found = author(key, name)
    return found if found["name"] or found.get("author_id") else None


def from_jsonl_row(row: Any) -> dict[str, Any]:
    """A row of the replaced system's JSONL, or of an Open Library-derived variant (philosophy sample)."""
    if not isinstance(row, Mapping):
        raise Rejected("not a JSON object")
    entries = row.get("authors")
    authors = [found for found in map(_jsonl_author, entries if isinstance(entries, list) else []) if found]
    cover_id = row.get("cover_id")
    if cover_id is None and isinstance(row.get("thumbnail_url"), str):
        match = _COVER_ID.search(row["thumbnail_url"])
        cover_id = int(match.group(1)) if match else None
    subtitle = row.get("subtitle")
    return book({
        "book_id": work_id(row.get("book_id") or row.get("key")),
        "title": row.get("title"),
        "subtitle": subtitle.strip() or None if isinstance(subtitle, str) else None,
        "authors": authors,
        "subjects": clean_subjects(row.get("subjects")),
        "first_publish_year": parse_year(row.get("first_publish_year")),
        "isbn_13": isbn13_list(row.get("isbn_13")),
        "language": language_code(row.get("language")),
        "description": clean_text(row.get("description")),
        "cover_id": int(cover_id) if isinstance(cover_id, (int, str)) and str(cover_id).isdigit() else None,
        "series": row.get("series"),
        # Only the replaced system's format carries an average; a bare count cannot give a sum. Its figure
        # has no individual ratings behind it: the imported part of the aggregate (aggregates.py). A row
        # without one says nothing about ratings (a re-import leaves the stored aggregate as it is).
        "imported_distribution": distribution_for(row.get("avg_rating"), row.get("rating_count"))
        if "avg_rating" in row or "rating_count" in row else None,
    })


def goodbooks_book_id(value: Any) -> str:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise Rejected("missing or malformed book_id") from None
    book_id = f"GB{number}"
    if not GOODBOOKS_ID.match(book_id):
        raise Rejected("missing or malformed book_id")
    return book_id


def original_title(title: str | None, original: str | None) -> str | None:
    """The original title, exactly as the source writes it, when it says more than the title as the source
    writes it (another script, other words), else None. The source's title keeps its series note here:
    "The Hunger Games" stays the original of "The Hunger Games (The Hunger Games, #1)" whose title is now
    "The Hunger Games", as before series, so a re-import removes no original title and search scores the
    book's two names as it did."""
    original = " ".join((original or "").split())
    if not original or not title or normalise_text(original) == normalise_text(title):
        return None
    return cut_utf8(original, MAX_ORIGINAL_TITLE_BYTES)


def from_goodbooks_row(row: Mapping[str, str], genres: list[str], distribution: Mapping[str, int] | None,
                       ) -> dict[str, Any]:
    isbn13 = goodbooks_isbn13(row.get("isbn", ""), row.get("isbn13", ""))
    image = row.get("image_url") or ""
    return book({
        "book_id": goodbooks_book_id(row.get("book_id")),
        "title": row.get("title") or row.get("original_title"),
        # The title in its own language and script ("Война и мир" for War and Peace), searchable too.
        "original_title": original_title(row.get("title"), row.get("original_title")),
        "authors": [author(None, name) for name in (row.get("authors") or "").split(",") if name.strip()],
        "subjects": clean_subjects(genres),
        "first_publish_year": parse_year(row.get("original_publication_year") or None),
        "isbn_13": [isbn13] if isbn13 else [],
        "language": language_code(row.get("language_code")),
        # Goodreads serves a "nophoto" placeholder for books without a cover: no cover is more honest.
        "cover_url": image if image.startswith("https://") and "/nophoto/" not in image else None,
        # Aggregates are those of the ratings imported with the books, so the table stays exact.
        "ratings_distribution": dict(distribution or {}),
    })


def goodbooks_user(user_id: str) -> str:
    """Goodbooks users get their own namespace: "gb-58" can never be mistaken for a user of the app."""
    try:
        return f"gb-{int(user_id)}"
    except ValueError:
        raise Rejected("malformed user_id") from None


def rating(book_id: Any, user_id: Any, stars: Any, created_at: Any, updated_at: Any = None) -> dict[str, Any]:
    """A rating line's record, each value checked (any of them may be anything a line held)."""
    if not is_book_id(book_id):
        raise Rejected("missing or malformed book_id")
    if not is_user_id(user_id):
        raise Rejected("missing or malformed user_id")
    text = "" if isinstance(stars, bool) else str(stars).strip()
    if not text.isdigit() or not text.isascii() or str(int(text)) not in STARS:
        raise Rejected("rating is not an integer 1..5")
    # updated_at is the sort key of both ratings indexes: one format, so that it sorts by time.
    created = timestamp(created_at)
    if created is None:
        raise Rejected("created_at is not an ISO-8601 timestamp")
    updated = timestamp(updated_at) if updated_at else created
    if updated is None:
        raise Rejected("updated_at is not an ISO-8601 timestamp")
    return {"book_id": book_id, "user_id": user_id, "rating": int(text), "created_at": created,
            "updated_at": updated}
