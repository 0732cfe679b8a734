"""Catalogue keys derived from a book record, computed in one place.

The ETL, the services and the tests all derive `title_norm`, `title_bucket`
and the rating aggregate fields through these functions, so a stored book and
a searched one can never disagree about how a title is normalised.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import regex

OPEN_LIBRARY_WORK_ID = re.compile(r"^OL[1-9][0-9]{0,11}W$")
# Goodbooks-10k ids are namespaced so they can never collide with Open Library ids.
GOODBOOKS_ID = re.compile(r"^GB[1-9][0-9]{0,7}$")
BOOK_ID = re.compile(r"^(?:OL[1-9][0-9]{0,11}W|GB[1-9][0-9]{0,7})$")
BOOK_ID_RULE = "an Open Library work id such as OL45883W, or a goodbooks id such as GB123"
# A user id is a token's `sub` (a UUID on Cognito) or an imported reader's id (gb-58): paths, keys, cursors.
USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
USER_ID_RULE = "1..64 characters of A-Z a-z 0-9 _ . @ -"

STARS = ("1", "2", "3", "4", "5")
# The reading-log shelves a reader can put a book on (Open Library's three); a book is on at most one per reader.
SHELVES = ("want_to_read", "currently_reading", "read")
# DynamoDB refuses a sort key over 1,024 bytes, in secondary indexes too: title_norm (the title-prefix
# index's sort key) is cut well under that, on a character boundary; the title itself stays whole.
TITLE_KEY_BYTES = 512
# Letters that carry no combining mark to strip, folded the way readers type them without it.
_FOLDED_LETTERS = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe",
                                 "ı": "i", "ħ": "h", "ŧ": "t", "ŀ": "l", "ĸ": "k"})
# Marks are folded only after letters of scripts whose readers write them optionally (é, ά, ё, Arabic
# vowel signs); elsewhere a mark is part of the letter (Japanese dakuten, Devanagari and Thai vowels).
_OPTIONAL_MARKS = regex.compile(r"([\p{Script=Latin}\p{Script=Greek}\p{Script=Cyrillic}"
                                r"\p{Script=Arabic}\p{Script=Hebrew}])\p{Mn}+")
_OTHER_DIGIT = regex.compile(r"(?![0-9])\p{Nd}")
# a mark is kept only on a letter or digit: a stray one is no word
_NOT_WORD = regex.compile(r"(?:[^\p{L}\p{M}\p{N}]|(?<![\p{L}\p{M}\p{N}])\p{M})+")
_ASCII_NOT_WORD = re.compile(r"[^0-9a-z]+")
# Scripts written without spaces between words: searchable by any part through character bigrams.
_UNSPACED_RUN = regex.compile(r"[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Thai}\p{scx=Lao}"
                              r"\p{scx=Khmer}\p{scx=Myanmar}\p{scx=Tibetan}]+")


def normalise_text(text: str) -> str:
    """The one text normaliser: of keys, the title-prefix index, the search index and queries alike.

    NFKC (full-width forms, ligatures, compatibility digits), case folding (ß → ss, final sigma),
    letters folded as readers type them (ł → l, æ → ae), optional diacritics dropped (é → e, Greek
    tonos, ё → е), digits of every script as 0-9, and anything that is not a letter, mark or digit of
    some script turned into a single space.
    """
    if not text:
        return ""
    if text.isascii():
        return _ASCII_NOT_WORD.sub(" ", text.lower()).strip()
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_FOLDED_LETTERS)
    folded = unicodedata.normalize("NFC", _OPTIONAL_MARKS.sub(r"\1", unicodedata.normalize("NFD", folded)))
    folded = _OTHER_DIGIT.sub(lambda digit: str(unicodedata.decimal(digit.group())), folded)
    return _NOT_WORD.sub(" ", folded).strip()


def _segments(word: str) -> list[str]:
    """A normalised word split into its spaced part(s) and its runs of unspaced script."""
    if word.isascii():
        return [word]
    pieces, start = [], 0
    for run in _UNSPACED_RUN.finditer(word):
        if run.start() > start:
            pieces.append(word[start:run.start()])
        pieces.append(run.group())
        start = run.end()
    if start < len(word):
        pieces.append(word[start:])
    return pieces


def _bigrams(run: str) -> list[str]:
    return [run[i:i + 2] for i in range(len(run) - 1)] or [run]


def search_terms(text: str, *, query: bool = False) -> list[str]:
    """The terms of `text` that search indexes and matches.

    Spaced scripts give their words. Unspaced runs (Chinese, Japanese, Thai...) give overlapping
    character bigrams, so any part of two or more characters is found; documents also index each
    character once, so a one-character query finds them too. Query order is kept.
    """
    terms: list[str] = []
    for word in normalise_text(text).split():
        for piece in _segments(word):
            if not _UNSPACED_RUN.fullmatch(piece):
                terms.append(piece)
                continue
            terms.extend(_bigrams(piece))
            if not query and len(piece) > 1:
                terms.extend(dict.fromkeys(piece))
    return terms


_WORD_RUN = regex.compile(r"[\p{L}\p{M}\p{N}]+")


def term_spans(text: str) -> list[tuple[str, int, int]]:
    """Every search term of `text` (as documents index them) with the characters it came from.

    (term, start, end) with offsets into `text` itself: a word's term spans the word; a bigram or a
    single character of an unspaced run spans those characters when normalising kept the run's
    length (it does for Chinese, Japanese and Thai text), else the whole run.
    """
    spans = []
    for run in _WORD_RUN.finditer(text):
        normalised = normalise_text(run.group())
        aligned = len(normalised) == len(run.group())
        for word in normalised.split():
            for piece in _segments(word):
                if not _UNSPACED_RUN.fullmatch(piece):
                    spans.append((piece, run.start(), run.end()))
                    continue
                at = normalised.find(piece) if aligned else -1
                for size in (2, 1):
                    for i in range(len(piece) - size + 1):
                        start = run.start() + at + i if at >= 0 else run.start()
                        spans.append((piece[i:i + size], start, start + size if at >= 0 else run.end()))
    return spans


# A series note ends a goodbooks title: "(The Hunger Games, #1)", "(Discworld, #2; Rincewind #2)",
# "(Nightfall, #1-2)". Its first entry is the series: a name, then "#" and the book's number in it.
_SERIES_ENTRY = re.compile(r"^(?:Includes:\s*)?(?P<name>.*?)[\s,]*#\s*(?P<position>\d+(?:\.\d+)?)"
                           r"(?P<rest>.*)$", re.DOTALL)
# What after the number makes it no single position: a range (#1-3, #0.1 - 0.4, #1-4 + 3.5), or more
# numbers (#4.1, #4.3; #0.5, 2.5). Anything else after it (", Part 1", ": Part 2 of 2") is left aside.
_NOT_ONE_POSITION = re.compile(r"^\s*(?:[-\u2013+]\s*\d|,\s*#?\s*\d)")
_RANGE_OF_ONE = re.compile(r"^\s*[-\u2013]\s*(?P<end>\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True, slots=True)
class Series:
    """A book's series and its number in it (None: the source gives no single number, e.g. a box set)."""

    name: str
    position: int | float | None = None

    def as_record(self) -> dict[str, Any]:
        """As the book item stores it: `{"name", "position"}`, `position` absent when there is none."""
        return {"name": self.name} if self.position is None else {"name": self.name, "position": self.position}


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _final_parenthetical(title: str) -> tuple[str, str] | None:
    """(what precedes, what is inside) of the parenthetical ending `title` (nested ones kept whole)."""
    text = title.rstrip()
    if not text.endswith(")"):
        return None
    depth = 0
    for at in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[at], 0)
        if depth == 0:
            return text[:at], text[at + 1:-1]
    return None


def parse_series_note(note: str) -> Series | None:
    """The series a note names ("The Hunger Games, #1"; of several, "Discworld, #2; Rincewind #2", the
    first), or None when it is no series note: no "#" followed by a number, or no name before it."""
    entry = _SERIES_ENTRY.match(note.split(";", 1)[0].strip())
    if entry is None:
        return None
    name = " ".join(entry["name"].split()).rstrip(",:").strip()
    if not has_word_character(name):
        return None
    rest = entry["rest"]
    single = _RANGE_OF_ONE.match(rest)
    if single is not None and single["end"] == entry["position"]:  # "#1-1": one book after all
        rest = ""
    position = None if _NOT_ONE_POSITION.match(rest) else _number(entry["position"])
    return Series(name, position)


def split_series(title: str) -> tuple[str, Series | None]:
    """A title without its closing series note, and the series: "Catching Fire (The Hunger Games, #2)" ->
    ("Catching Fire", Series("The Hunger Games", 2)). A title without one comes back as it was, with None:
    a parenthetical without "#" and a number ("(Complete Collection)", "(Star Wars)") is no series note, nor
    is a "#" outside one ("Saga #1"); a title that is nothing but a note keeps it."""
    parts = _final_parenthetical(title)
    if parts is None or "#" not in parts[1]:
        return title, None
    series = parse_series_note(parts[1])
    bare = " ".join(parts[0].split())
    if series is None or not has_word_character(bare):
        return title, None
    return bare, series


def has_word_character(text: str) -> bool:
    """Whether `text` holds a letter or digit of any script (a query without one has nothing to find)."""
    return bool(normalise_text(text))


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


def is_book_id(value: object) -> bool:
    # fullmatch: the patterns' `$` alone would also accept a trailing newline.
    return isinstance(value, str) and BOOK_ID.fullmatch(value) is not None


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID.fullmatch(value) is not None


def empty_distribution() -> dict[str, int]:
    return {star: 0 for star in STARS}


def average(rating_sum: int, rating_count: int) -> float:
    return round(rating_sum / rating_count, 4) if rating_count else 0.0


# Open Library's large cover image of a cover id (covers.openlibrary.org/b/id/<id>-<S|M|L>.jpg).
COVER_URL = "https://covers.openlibrary.org/b/id/{cover_id}-L.jpg"


def cover_url(cover_id: object, stored_url: object = None) -> str | None:
    """A book's cover image, wherever a book is shown: the URL its source gave (`cover_url`, goodbooks' image)
    when there is one, else Open Library's large cover of its `cover_id` (a positive integer); None without
    either."""
    if isinstance(stored_url, str) and stored_url:
        return stored_url
    if isinstance(cover_id, int) and not isinstance(cover_id, bool) and cover_id > 0:
        return COVER_URL.format(cover_id=cover_id)
    return None


def iso_stamp(epoch_seconds: float) -> str:
    """A moment as every stamp of the data is written (`2026-12-02T09:00:00.000000Z`): they sort as strings."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def utc_now() -> str:
    return iso_stamp(time.time())


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
