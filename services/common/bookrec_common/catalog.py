"""Catalogue keys derived from a book record, computed in one place.

The ETL, the services and the tests all derive `title_norm`, `title_bucket`
and the rating aggregate fields through these functions, so a stored book and
a searched one can never disagree about how a title is normalised.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

OPEN_LIBRARY_WORK_ID = re.compile(r"^OL[1-9][0-9]{0,11}W$")
# Goodbooks-10k ids are namespaced so they can never collide with Open Library ids.
GOODBOOKS_ID = re.compile(r"^GB[1-9][0-9]{0,7}$")
BOOK_ID = re.compile(r"^(?:OL[1-9][0-9]{0,11}W|GB[1-9][0-9]{0,7})$")

STARS = ("1", "2", "3", "4", "5")
# DynamoDB refuses a sort key over 1,024 bytes, in secondary indexes too: title_norm (the title-prefix
# index's sort key) is cut well under that, on a character boundary; the title itself stays whole.
TITLE_KEY_BYTES = 512
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_text(text: str) -> str:
    """Lower-case, strip accents, turn punctuation into spaces, collapse spaces."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_ALNUM.sub(" ", without_marks.casefold()).strip()


def cut_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, never inside a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")  # drops only the cut character's leading bytes


def title_key(title: str) -> str:
    """The normalised title as stored in the title-prefix index (`title_norm`)."""
    return cut_utf8(normalise_text(title), TITLE_KEY_BYTES).rstrip()


def title_bucket(title_norm: str) -> str:
    """Partition key of the title-prefix index: the first character of the normalised title."""
    return title_norm[:1] or "_"


def is_book_id(value: str) -> bool:
    return bool(BOOK_ID.fullmatch(value))


def empty_distribution() -> dict[str, int]:
    return {star: 0 for star in STARS}


def average(rating_sum: int, rating_count: int) -> float:
    return round(rating_sum / rating_count, 4) if rating_count else 0.0


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def with_derived_attributes(book: dict[str, Any], now: str | None = None) -> dict[str, Any]:
    """Return a copy of a book record with every derived attribute the services read.

    Aggregates: `ratings_distribution` is authoritative when present; sum,
    count and average are recomputed from it so they always agree.
    """
    record = dict(book)
    record["title"] = " ".join(str(record.get("title", "")).split())
    record["title_norm"] = title_key(record["title"])
    record["title_bucket"] = title_bucket(record["title_norm"])
    distribution = empty_distribution()
    for star, count in (record.get("ratings_distribution") or {}).items():
        if str(star) in distribution:
            distribution[str(star)] = int(count)
    record["ratings_distribution"] = distribution
    record["rating_count"] = sum(distribution.values())
    record["rating_sum"] = sum(int(star) * count for star, count in distribution.items())
    record["avg_rating"] = average(record["rating_sum"], record["rating_count"])
    stamp = now or utc_now()
    record.setdefault("created_at", stamp)
    record["updated_at"] = record.get("updated_at") or stamp
    return record
