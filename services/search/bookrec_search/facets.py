"""Facet counts over every match, and facet filters: pure, numpy, no I/O.

Four facets: authors and subjects (many per book), decade of first publication and language (one
per book, read from the index's own columns). Values are grouped by their normalised form
("Fiction" and "fiction" are one subject) and shown in the first spelling met.

Layout: per many-valued facet, the value codes of its (book, value) pairs in book order and where each
book's pairs start, so the pairs of the matched books are gathered as slices (work in proportion to their
pairs) or, when they hold most pairs, taken by one mask over all pairs; a count is one `bincount`. The
same books are also kept in value order (each value's books ascending, and where each value's start), so
a facet filter costs the books carrying the wanted values, not a pass over every pair. No pair keeps its
book number (the starts give it). At a million books with about five subjects and two authors each that
is some 7M pairs: 28 MB of codes, 28 MB in value order and 4 MB of starts per facet. Decades are small
codes (bincount and table lookups, no sort).

Bounded work: past SAMPLED_ABOVE matches, counts are taken over an even sample of that many of
them (every k-th match, the same on every replica) and scaled to all matches, rounded; the
response then says they are estimates. Counting every pair of a common word's third of a million
books cost 25 ms of CPU at 1M books; the sample costs what 20,000 matches cost, about 2 ms. A value
held by a share p of the matches is then off by about sqrt(p / 20,000) of the matches (1 standard
error): 0.7% of them for p = 1%.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bookrec_catalog.catalog import normalise_text

FACETS = ("authors", "subjects", "decade", "language")
NO_DECADE = np.iinfo(np.int32).min
FEW_MATCHES_SHARE = 4  # gather the matched books' slices of pairs below 1/4 of the pairs; else one mask
SAMPLED_ABOVE = 20_000  # matches counted exactly; more are counted over an even sample of this many
# Decade codes: 0 for no year, else the decade's place from the lowest one an index can hold (years are
# kept within ±99,999), so a decade count is one bincount and a decade filter one table lookup.
_LOWEST_DECADE = -100_000
DECADE_CODES = (99_990 - _LOWEST_DECADE) // 10 + 2


@dataclass(frozen=True, slots=True)
class FacetCount:
    value: str | int
    count: int


@dataclass(frozen=True, slots=True)
class FacetFilter:
    """Wanted values per facet: any value within a facet, every facet given (empty: no condition)."""

    authors: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    decades: tuple[int, ...] = ()
    languages: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.authors or self.subjects or self.decades or self.languages)


class ValuePairs:
    """One many-valued facet: (book position, value code) pairs in book order, and the value labels.

    Kept as the codes in book order with where each book's pairs start (a book's pairs are a slice), and
    the books in value order with where each value's start: no per-pair book number is held (`books`
    derives it), which at 10M books and ~5 pairs each is 4 bytes a pair, ~20 bytes a book."""

    __slots__ = ("by_value", "codes", "keys", "labels", "starts", "value_starts")

    def __init__(self, codes: np.ndarray, starts: np.ndarray, by_value: np.ndarray, value_starts: np.ndarray,
                 labels: list[str], keys: dict[str, int]) -> None:
        """From the layout itself, as a splice made it (`splicing`); `from_pairs` makes it from the pairs."""
        self.codes, self.starts, self.by_value = codes, starts.astype(place_type(len(codes)), copy=False), by_value
        self.value_starts, self.labels, self.keys = value_starts, labels, keys

    @classmethod
    def from_pairs(cls, books: np.ndarray, codes: np.ndarray, labels: list[str],
                   keys: dict[str, int]) -> ValuePairs:
        """From the pairs: `books` ascending, `codes` beside them."""
        starts = np.zeros(int(books[-1]) + 2 if len(books) else 1, dtype=np.int64)
        np.cumsum(np.bincount(books), out=starts[1:])
        # The books in value order (ascending within a value: a stable sort of pairs in book order), and
        # where each value's start. A radix sort when codes fit 16 bits (0.1 s for 4M pairs; else 0.4 s).
        sortable = codes.astype(np.uint16) if len(labels) <= 1 << 16 else codes
        by_value = books[np.argsort(sortable, kind="stable")]
        value_starts = np.zeros(len(labels) + 1, dtype=np.int64)
        np.cumsum(np.bincount(codes, minlength=len(labels)), out=value_starts[1:])
        return cls(codes, starts, by_value, value_starts, labels, keys)

    @property
    def books(self) -> np.ndarray:
        """The book of each pair, ascending (made on each call: for snapshots and rare rebuilds)."""
        covered = len(self.starts) - 1
        return np.repeat(np.arange(covered, dtype=np.int32), np.diff(self.starts))

    @classmethod
    def of(cls, values_per_book: Iterable[Sequence[str]]) -> ValuePairs:
        pairs = PairsBuilder()
        for values in values_per_book:
            pairs.add(values)
        return pairs.build()

    def updated(self, replaced: Mapping[int, Sequence[str]], appended: Sequence[Sequence[str]],
                first_new: int) -> ValuePairs:
        """A copy with the values of `replaced` books changed and `appended` books (from `first_new`)
        added."""
        labels, keys = list(self.labels), dict(self.keys)
        own_books = self.books
        kept = ~np.isin(own_books, np.fromiter(replaced, dtype=np.int32, count=len(replaced)))
        changed = [*replaced.items(), *((first_new + i, v) for i, v in enumerate(appended))]
        books, codes = _pairs(changed, labels, keys)
        all_books = np.concatenate([own_books[kept], books])
        all_codes = np.concatenate([self.codes[kept], codes])
        order = np.argsort(all_books, kind="stable")
        return ValuePairs.from_pairs(all_books[order], all_codes[order], labels, keys)

    def without(self, removed: np.ndarray, renumbered: np.ndarray) -> ValuePairs:
        """Without the pairs of the `removed` books (a mask), the others renumbered (old -> new, monotone).

        Values left without a book keep their code and label: they count 0, and counts show only values
        counted at least once."""
        books = self.books
        kept = ~removed[books] if len(books) else np.zeros(0, dtype=bool)
        return ValuePairs.from_pairs(renumbered[books[kept]], self.codes[kept], self.labels, self.keys)

    def codes_of(self, matches: np.ndarray, size: int) -> np.ndarray:
        """The value codes of the given books (ascending positions), one per pair."""
        if len(matches) * FEW_MATCHES_SHARE < len(self.codes):
            # Gather the matched books' slices: work in proportion to their pairs, not to all pairs.
            matches = matches[matches < len(self.starts) - 1]
            starts = self.starts[matches]
            lengths = self.starts[matches + 1] - starts
            offsets = np.cumsum(lengths) - lengths  # where each book's pairs go in the result
            return self.codes[np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))]
        chosen = np.zeros(size, dtype=bool)
        chosen[matches] = True
        return self.codes[np.repeat(chosen[:len(self.starts) - 1], np.diff(self.starts))]

    def books_with(self, values: Iterable[str], size: int) -> np.ndarray:
        """A mask of the books carrying any of `values` (compared normalised)."""
        wanted = {self.keys[k] for k in (normalise_text(v) for v in values) if k in self.keys}
        mask = np.zeros(size, dtype=bool)
        for code in wanted:
            mask[self.by_value[self.value_starts[code]:self.value_starts[code + 1]]] = True
        return mask

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + self.starts.nbytes + self.by_value.nbytes + self.value_starts.nbytes


class PairsBuilder:
    """A facet's (book, value code) pairs appended book by book, as `ValuePairs.of` takes them: a builder
    keeps two ints a pair instead of each book's list of strings (about 400 bytes a book)."""

    __slots__ = ("books", "codes", "keys", "labels", "size", "spelled")

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.keys: dict[str, int] = {}
        self.spelled: dict[str, int | None] = {}  # display string -> code: most values repeat across books
        self.books, self.codes = array("i"), array("i")
        self.size = 0

    def add(self, values: Sequence[str]) -> None:
        """The next book's values."""
        codes = _codes(values, self.labels, self.keys, self.spelled)
        self.books.extend([self.size] * len(codes))
        self.codes.extend(codes)
        self.size += 1

    def build(self) -> ValuePairs:
        return ValuePairs.from_pairs(np.frombuffer(self.books, dtype=np.int32).copy(),
                                     np.frombuffer(self.codes, dtype=np.int32).copy(), self.labels, self.keys)


def _pairs(values_of_books: Iterable[tuple[int, Sequence[str]]], labels: list[str],
           keys: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(book positions, value codes) of the given books' values, new values added to labels and keys."""
    spelled: dict[str, int | None] = {}  # display string -> code: most values repeat across books
    books, codes = [], []
    for position, values in values_of_books:
        for code in _codes(values, labels, keys, spelled):
            books.append(position)
            codes.append(code)
    return np.array(books, dtype=np.int32), np.array(codes, dtype=np.int32)


def _codes(values: Sequence[str], labels: list[str], keys: dict[str, int],
           spelled: dict[str, int | None]) -> list[int]:
    codes: dict[int, None] = {}
    for value in values:
        if value in spelled:
            code = spelled[value]
        else:
            key = normalise_text(value)
            code = keys.get(key) if key else None
            if key and code is None:
                code = keys[key] = len(labels)
                labels.append(value)
            spelled[value] = code
        if code is not None:
            codes[code] = None
    return list(codes)


def place_type(count: int) -> type[np.signedinteger]:
    """The narrowest signed type that holds every place in `count` items (int32 up to 2^31 - 1)."""
    return np.int32 if count < np.iinfo(np.int32).max else np.int64


def decades_of(years: np.ndarray, no_year: int) -> np.ndarray:
    """The decade of each year (1994 → 1990, -375 → -380), NO_DECADE where there is no year."""
    return np.where(years == no_year, NO_DECADE, (years // 10) * 10).astype(np.int32)


def decade_codes(decades: np.ndarray) -> np.ndarray:
    """Each decade's code (see DECADE_CODES), 0 where there is none."""
    return np.where(decades == NO_DECADE, 0, (decades.astype(np.int64) - _LOWEST_DECADE) // 10 + 1).astype(
        np.int16)


def _decade_code(decade: int) -> int:
    code = (decade - decade % 10 - _LOWEST_DECADE) // 10 + 1
    return code if 0 < code < DECADE_CODES else 0


def _top(counts: np.ndarray, labels: Sequence[str | int], limit: int) -> list[FacetCount]:
    """The `limit` largest counts, most first, ties by label order (first met first)."""
    present = np.flatnonzero(counts)
    if len(present) > limit:
        present = present[np.argpartition(-counts[present], limit - 1)[:limit]]
    order = sorted(present.tolist(), key=lambda c: (-int(counts[c]), c))
    return [FacetCount(labels[c], int(counts[c])) for c in order]


def exhaustive(matches: int) -> bool:
    """Whether facets of this many matches are exact counts (else estimates from a sample)."""
    return matches <= SAMPLED_ABOVE


def count(matches: np.ndarray, size: int, authors: ValuePairs, subjects: ValuePairs, decades: np.ndarray,
          language: np.ndarray, languages: Sequence[str], limit: int = 10) -> dict[str, list[FacetCount]]:
    """Per facet, the `limit` values with the most matched books (ascending `matches` positions); `decades`
    are decade codes (`decade_codes`). Past SAMPLED_ABOVE matches, estimates (see the module docstring)."""
    scale = 1.0
    if not exhaustive(len(matches)):
        step = -(-len(matches) // SAMPLED_ABOVE)
        scale = len(matches) / len(matches[::step])
        matches = matches[::step]

    def scaled(counts: np.ndarray) -> np.ndarray:
        return counts if scale == 1.0 else np.rint(counts * scale).astype(np.int64)

    result = {}
    for name, pairs in (("authors", authors), ("subjects", subjects)):
        counts = np.bincount(pairs.codes_of(matches, size), minlength=len(pairs.labels))
        result[name] = _top(scaled(counts), pairs.labels, limit)
    by_decade = np.bincount(decades[matches], minlength=DECADE_CODES)
    by_decade[0] = 0  # books without a year
    decade_labels = _DecadeLabels()
    result["decade"] = _top(scaled(by_decade), decade_labels, limit)
    by_language = np.bincount(language[matches], minlength=len(languages))
    by_language[[i for i, code in enumerate(languages) if not code]] = 0  # books without a language
    result["language"] = _top(scaled(by_language), list(languages), limit)
    return result


class _DecadeLabels(Sequence[int]):
    """Decade codes as the decades they stand for (1990), ordered as their codes."""

    def __getitem__(self, code: int) -> int:  # type: ignore[override]  # by one code only, never a slice
        return (code - 1) * 10 + _LOWEST_DECADE

    def __len__(self) -> int:
        return DECADE_CODES


def allowed(wanted: FacetFilter, size: int, authors: ValuePairs, subjects: ValuePairs, decades: np.ndarray,
            language: np.ndarray, language_codes: Mapping[str, int],
            positions: np.ndarray | None = None) -> np.ndarray:
    """Which of `positions` (every book when None) pass every facet given in `wanted`; `decades` are decade
    codes. Work in proportion to the books carrying the wanted authors and subjects, and to `positions`."""
    # Many positions: masks over every book, then one gather, cost less than a gather per facet.
    every = positions is None or len(positions) * 4 > size
    mask = np.ones(size if positions is None or every else len(positions), dtype=bool)

    def at(column: np.ndarray) -> np.ndarray:
        return column if every else column[positions]

    if wanted.authors:
        mask &= at(authors.books_with(wanted.authors, size))
    if wanted.subjects:
        mask &= at(subjects.books_with(wanted.subjects, size))
    if wanted.decades:
        table = np.zeros(DECADE_CODES, dtype=bool)
        table[[_decade_code(d) for d in wanted.decades]] = True
        table[0] = False  # a wanted decade out of any year's reach matches nothing
        mask &= table[at(decades)]
    if wanted.languages:
        table = np.zeros(max(language_codes.values(), default=0) + 1, dtype=bool)
        table[[language_codes[c.lower()] for c in wanted.languages if c.lower() in language_codes]] = True
        mask &= table[at(language)]
    return mask[positions] if every and positions is not None else mask
