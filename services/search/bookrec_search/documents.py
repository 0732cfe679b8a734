"""What the index keeps of a book record, and the terms of text and queries: pure, no I/O.

Terms
-----
Text is indexed and queried as `bookrec_catalog.catalog.search_terms` gives it:
words of every script, normalised (NFKC, case folded, diacritics folded);
scripts written without spaces (Chinese, Japanese, Thai...) as overlapping
character pairs, documents also under each single character. A book's
subtitle is part of its title field, and so are its series' name and its number
in it ("Catching Fire" with `series` {"name": "The Hunger Games", "position": 2}
is found as "hunger games 2", and as its goodbooks title "Catching Fire (The
Hunger Games, #2)", which held both). Its `original_title` (its title in its
own script) is a field of its own, scored as a second title: a term counts
through whichever of the two names it scores better in (see the scoring
specification in services/search/README.md), so a book whose original title repeats its title does
not count those words twice, nor does a long original title lengthen the title.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from bookrec_catalog.catalog import normalise_text, search_terms

NO_YEAR = int(np.iinfo(np.int32).min)
NO_COVER = int(np.iinfo(np.int32).min)  # any negative cover is none (an artifact may hold int64's minimum)
MAX_WHOLE = int(np.iinfo(np.int32).max)  # covers and rating totals are kept in int32: larger ones are bad data
NO_POSITION = float("nan")  # a book with no series, or no number in its series
NAME_SEPARATOR = "\x1f"


def tokens_of(text: str) -> list[str]:
    """The terms a document's text is indexed under (see `bookrec_catalog.catalog.search_terms`)."""
    return search_terms(text)


def query_terms(text: str) -> list[str]:
    """The distinct terms a query looks for, in query order."""
    return list(dict.fromkeys(search_terms(text, query=True)))


_ISBN_SEPARATORS = re.compile(r"[\s\-\u2010\u2011\u2012\u2013]+")
_ISBN_13 = re.compile(r"97[89][0-9]{10}")
_ISBN_10 = re.compile(r"[0-9]{9}[0-9X]")


def _isbn13_check_digit(first12: str) -> str:
    return str(-sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12)) % 10)


def isbn13_of(text: str) -> str | None:
    """The ISBN-13 that `text` spells (ISBN-13 or ISBN-10, hyphens and spaces allowed), when its check digit
    is right; None otherwise."""
    compact = _ISBN_SEPARATORS.sub("", text.strip()).upper()
    if _ISBN_13.fullmatch(compact):
        return compact if _isbn13_check_digit(compact[:12]) == compact[12] else None
    if _ISBN_10.fullmatch(compact):
        total = sum(w * int(d) for w, d in zip(range(10, 1, -1), compact[:9], strict=True))
        if (total + (10 if compact[9] == "X" else int(compact[9]))) % 11:
            return None
        first12 = "978" + compact[:9]
        return first12 + _isbn13_check_digit(first12)
    return None


@lru_cache(maxsize=1 << 16)
def _shared_tokens(text: str) -> tuple[str, ...]:
    """Tokens of an author name or subject: these repeat across many books, so normalise each once."""
    return tuple(tokens_of(text))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _series(record: Mapping[str, Any]) -> tuple[str, float]:
    """(name, position) of the record's `series` ("", NaN without one; NaN position without a number)."""
    series = record.get("series")
    if not isinstance(series, Mapping) or not _text(series.get("name")).strip():
        return "", NO_POSITION
    position = series.get("position")
    if isinstance(position, bool) or not isinstance(position, (int, float)) or not math.isfinite(position):
        position = NO_POSITION
    return " ".join(series["name"].split()), float(position)


def series_summary(name: str, position: float) -> dict[str, Any] | None:
    """The hit's `series`: {"name", "position"} (position None when the series gives no number), or None."""
    return {"name": name, "position": None if math.isnan(position) else position} if name else None


def _series_text(name: str, position: float) -> str:
    """The series as the title field indexes it: "The Hunger Games 2", "Twilight 1.5", "Nightfall"."""
    if math.isnan(position):
        return name
    return f"{name} {int(position) if position.is_integer() else position}"


def _whole(value: Any, default: int, low: int = -2**62, high: int = 2**62) -> int:
    """An integer attribute, or `default` when it is missing, not a number or out of range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return int(value) if low <= value <= high else default


@dataclass(frozen=True, slots=True)
class Document:
    """What the index keeps of one book record."""

    book_id: str
    title: str
    title_norm: str
    authors: str  # display names joined by NAME_SEPARATOR
    subjects: tuple[str, ...]  # display strings
    tokens: tuple[list[str], list[str], list[str], list[str]]  # per field, in FIELDS order
    original_title_norm: str  # the normalised title in its own script, when it differs
    series: str  # the series' display name ("" without one)
    series_position: float  # the book's number in it (NaN without one)
    isbns: tuple[int, ...]  # valid ISBN-13s
    year: int
    language: str
    cover_id: int
    rating_count: int
    rating_sum: int
    signature: int  # of everything that shapes postings or display text

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Document:
        title, subtitle = _text(record.get("title")), _text(record.get("subtitle"))
        original = _text(record.get("original_title"))
        names = _author_names(record)
        subjects = [s for s in record.get("subjects") or [] if isinstance(s, str)]
        title_norm = _text(record.get("title_norm")) or normalise_text(title)
        original_norm = normalise_text(original)
        authors = NAME_SEPARATOR.join(names)
        series, position = _series(record)
        series_text = _series_text(series, position)
        isbns = record.get("isbn_13")
        found = [isbn13_of(i) for i in isbns if isinstance(i, str)] if isinstance(isbns, list) else []
        isbn_numbers = tuple(sorted({int(i) for i in found if i}))
        signature = hashlib.blake2b("\x1e".join([title, subtitle, original, title_norm, authors, series_text,
                                                 *subjects, *map(str, isbn_numbers)]).encode(),
                                    digest_size=8).digest()
        return cls(
            book_id=record["book_id"], title=title, title_norm=title_norm, authors=authors,
            subjects=tuple(subjects),
            tokens=(tokens_of(title) + tokens_of(subtitle) + tokens_of(series_text),
                    [t for n in names for t in _shared_tokens(n)],
                    [t for s in subjects for t in _shared_tokens(s)],
                    tokens_of(original) if original_norm else []),
            original_title_norm="" if original_norm in ("", normalise_text(title)) else original_norm,
            series=series, series_position=position,
            isbns=isbn_numbers,
            year=_whole(record.get("first_publish_year"), NO_YEAR, -99_999, 99_999),
            language=_text(record.get("language")),
            cover_id=_whole(record.get("cover_id"), NO_COVER, 0, MAX_WHOLE),
            rating_count=_whole(record.get("rating_count"), 0, 0, MAX_WHOLE),
            rating_sum=_whole(record.get("rating_sum"), 0, 0, MAX_WHOLE),
            signature=int.from_bytes(signature, "little", signed=True))


def names_of(authors: str) -> list[str]:
    """Author display names from their joined form."""
    return authors.split(NAME_SEPARATOR) if authors else []


def _author_names(record: Mapping[str, Any]) -> list[str]:
    authors = record.get("authors")
    return [a["name"] for a in authors if isinstance(a, Mapping) and _text(a.get("name"))] \
        if isinstance(authors, list) else []


def book_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """The book summary fields of a plain record, exactly as `SearchIndex.book()` gives them."""
    year = _whole(record.get("first_publish_year"), NO_YEAR, -99_999, 99_999)
    cover = _whole(record.get("cover_id"), NO_COVER, 0, MAX_WHOLE)
    count = _whole(record.get("rating_count"), 0, 0, MAX_WHOLE)
    total = _whole(record.get("rating_sum"), 0, 0, MAX_WHOLE)
    return {"book_id": record["book_id"], "title": _text(record.get("title")),
            "authors": _author_names(record),
            "first_publish_year": None if year == NO_YEAR else year,
            "avg_rating": round(total / count, 4) if count else 0.0, "rating_count": count,
            "cover_id": None if cover < 0 else cover, "series": series_summary(*_series(record))}


def suggestion_key(record: Mapping[str, Any]) -> tuple:
    """Autocomplete order over plain records, as the index orders them: most rated, best rated, A..Z, id."""
    count = _whole(record.get("rating_count"), 0, 0, MAX_WHOLE)
    average = _whole(record.get("rating_sum"), 0, 0, MAX_WHOLE) / count if count else 0.0
    return (-count, -average, _text(record.get("title_norm")) or normalise_text(_text(record.get("title"))),
            record.get("book_id", ""))


def id_array(book_ids: Sequence[str]) -> np.ndarray:
    """Book ids as fixed-width bytes, as wide as the longest."""
    return np.array([i.encode() for i in book_ids], dtype="S") if book_ids else np.empty(0, dtype="S1")

