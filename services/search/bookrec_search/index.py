"""The in-memory search index: pure, no I/O.

Terms
-----
Text is indexed and queried as `bookrec_common.catalog.search_terms` gives it:
words of every script, normalised (NFKC, case folded, diacritics folded);
scripts written without spaces (Chinese, Japanese, Thai...) as overlapping
character pairs, documents also under each single character. A book's
`original_title` (its title in its own script) is indexed in the title field,
as the subtitle is.

Matching
--------
Each query term t matches these alternatives, each with a cost:

    t itself                                              cost 0 (exact)
    the last query word as a prefix, when the query does  cost 1 (completion)
    not end with a space and t has ≥ 2 characters: the
    10 terms starting with t in the most books
    terms within OSA edit distance e of t (a swap of two  cost 2·e (correction)
    neighbours is one edit): e ≤ 1 for t of ≥ 5
    characters, e ≤ 2 for ≥ 9; shorter words, numbers and
    character pairs of unspaced scripts are never
    corrected; at most the 32 closest (then most used)

A word that is itself in at least 1,000 books is taken as typed (its only
alternative is itself): its own books fill the first 50 pages of 20 before any
completion or correction would show, and merging the long lists of common
words costs more than the rest of the query (`total` then counts its own
books only).

In a book, t counts through its cheapest alternative present there (the
highest-scoring one among equally cheap ones). A book's tier is the sum of
those costs over the query words it has.

Scoring (the documented contract)
---------------------------------
For a document d and a term u, with field weights w_title = 3,
w_authors = 2, w_subjects = 1, k1 = 1.2, b = 0.75 and avg_f the average length
of field f (as last averaged, see Layout):

    impact(u, d) = Σ_f  w_f · tf·(k1 + 1) / (tf + k1·(1 − b + b·len_f(d) / avg_f))
    idf(u)       = ln(1 + (N − df + 0.5) / (df + 0.5))      df: documents with u in any field
    text(d)      = Σ_t m(cost) · idf(u_t) · impact(u_t, d)  u_t: the alternative t counts through in d;
                                                            m: 1 exact, 0.8 completion, 0.6 one edit,
                                                            0.4 two edits
    prior(d)     = ln(1 + rating_count) · bayes_avg / 5     bayes_avg: the average pulled towards the
                                                            catalogue mean by 10 phantom ratings
    score(d)     = text(d) · (1 + 0.15 · prior(d)) + 10 · [normalised title or original title
                                                           = normalised query]

Full text needs every query word (through some alternative) in some field;
when no book has them all, any word matches and the result says so. Books rank
by tier first (fewer edits, then exact before completed: an exact match is
always above a corrected one, a corrected word still scores by the BM25 of
the term it matched), then by score. Ties are broken by the prior, then by
normalised title A..Z, then by book id, so every ordering is total and the
same on every replica. A query that spells a valid ISBN-13 or ISBN-10 (hyphens
and spaces allowed) also finds the books carrying it (`isbn_13`), above every
text match (score + 10); an invalid check digit is just text. Advanced text
filters apply per field (all words of `title` in the title, and so on), match
exactly and score with that field's lists alone.

Typo candidates come from a deletion neighbourhood (as SymSpell): every
correctable term is filed under the 64-bit hashes of the strings left after
deleting 0 or 1 of its characters (also 2 for terms of 7 to 24 characters:
longer ones are found within one edit only),
one sorted numpy array of hashes beside one of term ids. A query word looks
up its own deletions (one binary search each), and rapidfuzz's OSA distance
settles the few candidates found. Measured against scanning the terms of each
length within reach with rapidfuzz's `cdist` (OSA, with a cut-off), which
needs no extra memory: that scan cost 2 to 4 ms of CPU per corrected word at
the vocabulary of only 20,000 books, mostly in converting every term of the
lists on each call, and grows with the vocabulary; the neighbourhood answers
in well under a millisecond at any size, for 12 bytes per variant: about 300
bytes per term (6 MB for the benchmark's 21,000 terms, some 90 MB for a
vocabulary of 300,000). New terms are hashed into it on refresh.

Layout
------
Per field, posting lists of term frequencies (for field filters); across
fields, posting lists of precomputed impacts (for full text, so a query word
costs one list, not three). Both are flat numpy arrays addressed by term
offsets. Display strings are packed in UTF-8 buffers; everything else is a
numpy column. Titles are kept in sorted order for prefix search by bisection;
the vocabulary too (completions), and as a deletion neighbourhood (corrections). ISBNs
are a sorted array of numbers beside the positions of their books.

An index is immutable. `updated()` returns a new one: rating and other column
changes copy the affected columns; text changes also merge the changed
documents' postings into copies of the lists (average field lengths stay as
they were, which a small share of changes hardly moves; once the catalogue has
grown by a quarter they are taken afresh and every impact recomputed).
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import math
import re
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from rapidfuzz.distance import OSA

from bookrec_common.catalog import normalise_text, search_terms

from bookrec_search.columns import (DOC_MASK, TERM_SHIFT, PackedText, PostingLists, TextColumn,
                                    occurrence_counts, summed_pairs)
from bookrec_search.facets import FacetCount, FacetFilter, ValuePairs, allowed, count, decades_of

FIELDS = ("title", "authors", "subjects")
FIELD_WEIGHTS = (3.0, 2.0, 1.0)
K1, B = 1.2, 0.75
PRIOR_STRENGTH = 0.15
PRIOR_RATINGS = 10.0
EXACT_TITLE_BONUS = 10.0
NO_YEAR = int(np.iinfo(np.int32).min)
NO_COVER = int(np.iinfo(np.int64).min)
NAME_SEPARATOR = "\x1f"
ABOVE_ANY_TEXT = "\U0010ffff"
SORTS = ("relevance", "rating", "year", "title")
DENSE_PROBE_SHARE = 32  # probe a list through a dense map once candidates exceed 1/32 of the documents
SAMPLED_CUT_MIN, SAMPLED_CUT_RATIO, SAMPLE_SIZE = 50_000, 8, 4096  # when and how a top-k cut is sampled
SUGGESTION_BLOCK, BLOCK_TOP = 1024, 50  # BLOCK_TOP bounds the autocomplete limit served from block tops
REAVERAGE_GROWTH = 1.25  # re-average field lengths once the catalogue outgrows them by a quarter
ONE_TYPO, TWO_TYPOS = 5, 9  # query words this long match terms within 1 (2) edits; shorter words exactly
MAX_CORRECTIONS = 32  # per query word: the closest, then the most used
TAKEN_AS_TYPED = 1000  # a word in this many books is neither completed nor corrected
PREFIX_MIN, PREFIX_TERMS = 2, 10  # the last word completes to its PREFIX_TERMS most used extensions
EXACT, PREFIX_ONLY, PER_EDIT = 0, 1, 2  # the cost of a word's match; a book's tier is the sum over words
MATCH_WEIGHTS = {EXACT: 1.0, PREFIX_ONLY: 0.8, PER_EDIT: 0.6, 2 * PER_EDIT: 0.4}  # x BM25 of the term matched
TIER_STEP = 1e7  # above any text score: tiers rank first
ISBN_BONUS = 10.0
ISBN_TIER = -1  # a book found by ISBN ranks above every text match
NO_MATCH_COST = 127


PostingList = tuple[np.ndarray, np.ndarray]  # ascending document numbers, one value each


@dataclass(frozen=True, slots=True)
class Hit:
    position: int
    score: float


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of hits and what the query matched.

    `terms`: per query word, the index terms it matched in the matching books (exact, completed
    or corrected), best first. `corrections`: the query words matched only through corrections,
    and the terms they were corrected to. `matches`: every matching position (ascending), before
    the page is cut; filled only when asked for (`with_matches=True`).
    """

    total: int
    hits: list[Hit]
    matched_all_words: bool = True
    terms: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    corrections: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    matches: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Suggestions:
    total: int
    positions: list[int]


@dataclass(frozen=True, slots=True)
class Filters:
    title: str | None = None
    author: str | None = None
    subject: str | None = None
    min_year: int | None = None
    max_year: int | None = None
    min_rating: float | None = None
    language: str | None = None


def tokens_of(text: str) -> list[str]:
    """The terms a document's text is indexed under (see `bookrec_common.catalog.search_terms`)."""
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
        total = sum(w * int(d) for w, d in zip(range(10, 1, -1), compact[:9]))
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
    tokens: tuple[list[str], list[str], list[str]]  # per field, in FIELDS order
    original_title_norm: str  # the normalised title in its own script, when it differs
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
        isbns = record.get("isbn_13")
        found = [isbn13_of(i) for i in isbns if isinstance(i, str)] if isinstance(isbns, list) else []
        isbn_numbers = tuple(sorted({int(i) for i in found if i}))
        signature = hashlib.blake2b("\x1e".join([title, subtitle, original, title_norm, authors, *subjects,
                                                 *map(str, isbn_numbers)]).encode(), digest_size=8).digest()
        return cls(
            book_id=record["book_id"], title=title, title_norm=title_norm, authors=authors,
            subjects=tuple(subjects),
            tokens=(tokens_of(title) + tokens_of(subtitle) + (tokens_of(original) if original_norm else []),
                    [t for n in names for t in _shared_tokens(n)],
                    [t for s in subjects for t in _shared_tokens(s)]),
            original_title_norm="" if original_norm in ("", normalise_text(title)) else original_norm,
            isbns=isbn_numbers,
            year=_whole(record.get("first_publish_year"), NO_YEAR, -99_999, 99_999),
            language=_text(record.get("language")), cover_id=_whole(record.get("cover_id"), NO_COVER),
            rating_count=_whole(record.get("rating_count"), 0, 0),
            rating_sum=_whole(record.get("rating_sum"), 0, 0),
            signature=int.from_bytes(signature, "little", signed=True))


def _names(authors: str) -> list[str]:
    """Author display names from their joined form."""
    return authors.split(NAME_SEPARATOR) if authors else []


def _author_names(record: Mapping[str, Any]) -> list[str]:
    authors = record.get("authors")
    return [a["name"] for a in authors if isinstance(a, Mapping) and _text(a.get("name"))] \
        if isinstance(authors, list) else []


def book_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """The book summary fields of a plain record, exactly as `SearchIndex.book()` gives them."""
    year = _whole(record.get("first_publish_year"), NO_YEAR, -99_999, 99_999)
    cover = _whole(record.get("cover_id"), NO_COVER)
    count, total = _whole(record.get("rating_count"), 0, 0), _whole(record.get("rating_sum"), 0, 0)
    return {"book_id": record["book_id"], "title": _text(record.get("title")),
            "authors": _author_names(record),
            "first_publish_year": None if year == NO_YEAR else year,
            "avg_rating": round(total / count, 4) if count else 0.0, "rating_count": count,
            "cover_id": None if cover == NO_COVER else cover}


def suggestion_key(record: Mapping[str, Any]) -> tuple:
    """Autocomplete order over plain records, as the index orders them: most rated, best rated, A..Z, id."""
    count = _whole(record.get("rating_count"), 0, 0)
    average = _whole(record.get("rating_sum"), 0, 0) / count if count else 0.0
    return (-count, -average, _text(record.get("title_norm")) or normalise_text(_text(record.get("title"))),
            record.get("book_id", ""))


def _saturated(frequencies: np.ndarray, lengths: np.ndarray, average_length: float) -> np.ndarray:
    tf = frequencies.astype(np.float32)
    return tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths / max(average_length, 1e-9)))


def _field_impacts(field: int, keys: np.ndarray, frequencies: np.ndarray, lengths: np.ndarray,
                   average_length: float) -> np.ndarray:
    return FIELD_WEIGHTS[field] * _saturated(frequencies, lengths[keys & DOC_MASK], average_length)


def _combined_lists(fields: Sequence[PostingLists], lengths: Sequence[np.ndarray], averages: Sequence[float],
                    chunk_postings: int = 1 << 21) -> PostingLists:
    """All-fields posting lists of impacts, merged a range of terms at a time to bound the memory it takes."""
    term_count = fields[0].term_count
    per_term = sum(np.diff(f.offsets) for f in fields)
    running = np.concatenate([[0], np.cumsum(per_term)])
    bounds = np.unique(np.concatenate([np.searchsorted(running, np.arange(0, running[-1], chunk_postings),
                                                       side="right") - 1, [term_count]]))
    docs, values = [], []
    sizes = np.zeros(term_count, dtype=np.int64)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        keys, impacts = [], []
        for f, postings in enumerate(fields):
            lo, hi = postings.offsets[start], postings.offsets[stop]
            field_keys = (postings.terms_of_postings(start, stop) << TERM_SHIFT) | postings.docs[lo:hi]
            keys.append(field_keys)
            impacts.append(_field_impacts(f, field_keys, postings.values[lo:hi], lengths[f], averages[f]))
        merged, summed = summed_pairs(keys, impacts)
        sizes += np.bincount(merged >> TERM_SHIFT, minlength=term_count)
        docs.append((merged & DOC_MASK).astype(np.int32))
        values.append(summed)
    offsets = np.zeros(term_count + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return PostingLists(offsets, np.concatenate(docs or [np.empty(0, np.int32)]),
                        np.concatenate(values or [np.empty(0, np.float32)]))


class _Occurrences:
    """Token occurrences of a batch of documents, per field, as term ids and document numbers."""

    def __init__(self) -> None:
        self.terms = [array("i") for _ in FIELDS]
        self.docs = [array("i") for _ in FIELDS]
        self.lengths = [array("i") for _ in FIELDS]

    def add(self, doc: int, document: Document, vocabulary: dict[str, int]) -> None:
        for field, tokens in enumerate(document.tokens):
            ids = [vocabulary.setdefault(token, len(vocabulary)) for token in tokens]
            self.terms[field].extend(ids)
            self.docs[field].extend([doc] * len(ids))
            self.lengths[field].append(len(ids))

    def field(self, field: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted unique packed (term, document) keys of the field and their term frequencies."""
        return occurrence_counts(np.frombuffer(self.terms[field], dtype=np.int32),
                                 np.frombuffer(self.docs[field], dtype=np.int32))

    def field_lengths(self, field: int) -> np.ndarray:
        return np.frombuffer(self.lengths[field], dtype=np.int32).astype(np.float32)

    def release(self, field: int) -> None:
        self.terms[field], self.docs[field] = array("i"), array("i")


class IndexBuilder:
    """Collects book records (page by page as a Scan delivers them) and builds a SearchIndex."""

    def __init__(self, average_lengths: Sequence[float] | None = None) -> None:
        self._average_lengths = average_lengths
        self._vocabulary: dict[str, int] = {}
        self._occurrences = _Occurrences()
        self._ids: list[str] = []
        self._title_norms: list[str] = []  # kept as strings until built: the title order sorts them
        self._titles, self._authors = PackedText(), PackedText()
        self._languages: list[str] = []
        self._years, self._covers = array("i"), array("q")
        self._counts, self._sums, self._signatures = array("q"), array("q"), array("q")
        self._original_titles: dict[int, str] = {}
        self._isbns, self._isbn_positions = array("q"), array("i")
        self._author_names: list[list[str]] = []  # per book, for the facets
        self._subjects: list[tuple[str, ...]] = []

    def add(self, record: Mapping[str, Any]) -> None:
        document = Document.of(record)
        position = len(self._ids)
        self._occurrences.add(position, document, self._vocabulary)
        if document.original_title_norm:
            self._original_titles[position] = document.original_title_norm
        self._isbns.extend(document.isbns)
        self._isbn_positions.extend([position] * len(document.isbns))
        self._ids.append(document.book_id)
        self._titles.append(document.title)
        self._title_norms.append(document.title_norm)
        self._authors.append(document.authors)
        self._author_names.append(_names(document.authors))
        self._subjects.append(document.subjects)
        self._languages.append(document.language)
        self._years.append(document.year)
        self._covers.append(document.cover_id)
        self._counts.append(document.rating_count)
        self._sums.append(document.rating_sum)
        self._signatures.append(document.signature)

    def add_all(self, records: Iterable[Mapping[str, Any]]) -> IndexBuilder:
        for record in records:
            self.add(record)
        return self

    def build(self) -> SearchIndex:
        size, term_count = len(self._ids), len(self._vocabulary)
        lengths = tuple(self._occurrences.field_lengths(f) for f in range(len(FIELDS)))
        averages = tuple(self._average_lengths or (float(x.mean()) if size else 0.0 for x in lengths))
        fields = []
        for f in range(len(FIELDS)):
            fields.append(PostingLists.from_pairs(*self._occurrences.field(f), term_count))
            self._occurrences.release(f)
        combined = _combined_lists(fields, lengths, averages)
        # Title order: by normalised title, then book id (two stable sorts, no tuple per book).
        title_order = sorted(range(size), key=self._ids.__getitem__)
        title_order.sort(key=self._title_norms.__getitem__)
        codes = {code: i for i, code in enumerate(dict.fromkeys(self._languages))}
        book_ids = _id_array(self._ids)
        return SearchIndex(
            book_ids=book_ids, id_order=np.argsort(book_ids, kind="stable").astype(np.int32),
            titles=self._titles.column(), title_norms=TextColumn.of(self._title_norms),
            authors=self._authors.column(), signatures=np.frombuffer(self._signatures, dtype=np.int64).copy(),
            years=np.frombuffer(self._years, dtype=np.int32).copy(),
            languages=tuple(codes), language=np.array([codes[c] for c in self._languages], dtype=np.int16),
            cover_ids=np.frombuffer(self._covers, dtype=np.int64).copy(),
            rating_count=np.frombuffer(self._counts, dtype=np.int64).copy(),
            rating_sum=np.frombuffer(self._sums, dtype=np.int64).copy(),
            vocabulary=self._vocabulary, fields=tuple(fields), lengths=lengths, average_lengths=averages,
            averaged_size=size,
            combined=combined, title_order=np.array(title_order, dtype=np.int32),
            lexicon=_Lexicon.of(self._vocabulary), original_titles=self._original_titles,
            isbns=_IsbnMap.of(np.frombuffer(self._isbns, dtype=np.int64),
                              np.frombuffer(self._isbn_positions, dtype=np.int32)),
            author_values=ValuePairs.of(self._author_names), subject_values=ValuePairs.of(self._subjects))


def _id_array(book_ids: Sequence[str]) -> np.ndarray:
    """Book ids as fixed-width bytes, as wide as the longest."""
    return np.array([i.encode() for i in book_ids], dtype="S") if book_ids else np.empty(0, dtype="S1")


_HASH_BASE = np.uint64(0x100000001B3)  # odd: invertible modulo 2^64
_HASH_INVERSE = np.uint64(pow(int(_HASH_BASE), -1, 2**64))
_HASH_INVERSE_SQUARED = np.uint64(pow(int(_HASH_BASE), -2, 2**64))
MAX_TWO_DELETIONS = 24  # longer terms are reached by one edit only (their pairs of deletions grow as n²)


def _deletion_hashes(codes: np.ndarray, deletions: int) -> np.ndarray:
    """Per row of code points (n x L), the hashes of every string left by `deletions` (0, 1 or 2) deletions.

    Polynomial hashes Σ c_k·B^k modulo 2^64 (numpy's wrapping uint64): with prefix sums A, deleting
    position i leaves A_i + (H − A_(i+1))·B⁻¹, and so on for two. Rows x variants.
    """
    n, length = codes.shape
    powers = np.cumprod(np.full(length, _HASH_BASE, dtype=np.uint64)) * _HASH_INVERSE
    prefix = np.zeros((n, length + 1), dtype=np.uint64)
    np.cumsum(codes * powers, axis=1, out=prefix[:, 1:])
    total = prefix[:, length:]
    if deletions == 0:
        return total
    if deletions == 1:
        i = np.arange(length)
        return prefix[:, i] + (total - prefix[:, i + 1]) * _HASH_INVERSE
    i, j = np.triu_indices(length, 1)
    return (prefix[:, i] + (prefix[:, j] - prefix[:, i + 1]) * _HASH_INVERSE
            + (total - prefix[:, j + 1]) * _HASH_INVERSE_SQUARED)


def _codes(terms: Sequence[str], length: int) -> np.ndarray:
    return np.frombuffer("".join(terms).encode("utf-32-le"), dtype=np.uint32).reshape(
        len(terms), length).astype(np.uint64)


class _Neighbourhood:
    """Terms by the hashes of the strings left after deleting up to two of their characters.

    Two strings within d OSA edits (a substitution, insertion, deletion or swap of neighbours each
    count one) both reach a common string by at most d deletions each: looking up the query word's own
    deletions finds every candidate, and the OSA distance, computed for those few, settles it.
    """

    __slots__ = ("hashes", "ids")

    def __init__(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        self.hashes, self.ids = hashes, ids

    @classmethod
    def of(cls, terms: Mapping[str, int]) -> _Neighbourhood:
        return cls(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int32)).with_terms(terms)

    def with_terms(self, terms: Mapping[str, int]) -> _Neighbourhood:
        by_length: dict[int, list[str]] = {}
        for term in terms:
            by_length.setdefault(len(term), []).append(term)
        hashes, ids = [np.empty(0, dtype=np.uint64)], [np.empty(0, dtype=np.int32)]
        for length, group in by_length.items():
            codes = _codes(group, length)
            group_ids = np.array([terms[t] for t in group], dtype=np.int32)
            for deletions in (0, 1, 2) if TWO_TYPOS - 2 <= length <= MAX_TWO_DELETIONS else (0, 1):
                variants = _deletion_hashes(codes, deletions)
                hashes.append(variants.ravel())
                ids.append(np.repeat(group_ids, variants.shape[1]))
        added, added_ids = np.concatenate(hashes), np.concatenate(ids)
        order = np.argsort(added, kind="stable")
        added, added_ids = added[order], added_ids[order]
        if not len(self.hashes):
            return _Neighbourhood(added, added_ids)
        at = np.searchsorted(self.hashes, added)  # a refresh adds a few terms to many: insert, not re-sort
        return _Neighbourhood(np.insert(self.hashes, at, added), np.insert(self.ids, at, added_ids))

    def candidates(self, word: str, edits: int) -> np.ndarray:
        codes = _codes([word], len(word))
        variants = np.concatenate([_deletion_hashes(codes, d).ravel() for d in range(edits + 1)])
        lo = np.searchsorted(self.hashes, variants, side="left")
        hi = np.searchsorted(self.hashes, variants, side="right")
        hit = hi > lo
        if not hit.any():
            return np.empty(0, dtype=np.int32)
        lo, hi = lo[hit], hi[hit]
        spans = hi - lo
        at = np.repeat(lo - np.concatenate([[0], np.cumsum(spans)[:-1]]), spans) + np.arange(spans.sum())
        return np.unique(self.ids[at])

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.ids.nbytes


class _Lexicon:
    """The vocabulary searched by prefix (terms in sorted order) and for typos (a deletion neighbourhood)."""

    __slots__ = ("by_id", "neighbourhood", "sorted_ids", "sorted_terms")

    def __init__(self, by_id: list[str], sorted_terms: list[str], sorted_ids: np.ndarray,
                 neighbourhood: _Neighbourhood) -> None:
        self.by_id = by_id
        self.sorted_terms, self.sorted_ids, self.neighbourhood = sorted_terms, sorted_ids, neighbourhood

    @staticmethod
    def correctable(term: str) -> bool:
        """Whether typos are looked for near `term` (bigrams of unspaced scripts are shorter than this)."""
        return len(term) >= ONE_TYPO - 1 and not term.isdigit()

    @classmethod
    def of(cls, vocabulary: Mapping[str, int]) -> _Lexicon:
        return cls([], [], np.empty(0, dtype=np.int32), _Neighbourhood.of({})).with_terms(vocabulary)

    def with_terms(self, added: Mapping[str, int]) -> _Lexicon:
        """This lexicon with new terms (term -> id, the ids following the known ones); `self` is unchanged."""
        if not added:
            return self
        entering = sorted(added)
        at = [bisect.bisect_left(self.sorted_terms, t) for t in entering]
        terms: list[str] = []
        previous = 0
        for place, term in zip(at, entering):
            terms.extend(self.sorted_terms[previous:place])
            terms.append(term)
            previous = place
        terms.extend(self.sorted_terms[previous:])
        ids = np.insert(self.sorted_ids, at, np.array([added[t] for t in entering], dtype=np.int32))
        neighbourhood = self.neighbourhood.with_terms({t: i for t, i in added.items() if self.correctable(t)})
        return _Lexicon(self.by_id + sorted(added, key=added.__getitem__), terms, ids, neighbourhood)

    def with_prefix(self, prefix: str) -> np.ndarray:
        """Ids of the terms starting with `prefix` (itself included)."""
        lo = bisect.bisect_left(self.sorted_terms, prefix)
        hi = bisect.bisect_left(self.sorted_terms, prefix + ABOVE_ANY_TEXT, lo)
        return self.sorted_ids[lo:hi]

    def near(self, word: str, edits: int) -> list[tuple[int, int]]:
        """(term id, edits) of the terms other than `word` within `edits` OSA edits (a transposition is one)."""
        found = []
        for term in self.neighbourhood.candidates(word, edits).tolist():
            distance = OSA.distance(word, self.by_id[term], score_cutoff=edits)
            if 0 < distance <= edits:
                found.append((term, distance))
        return found

    @property
    def nbytes(self) -> int:
        return (sys.getsizeof(self.by_id) + sys.getsizeof(self.sorted_terms) + self.sorted_ids.nbytes
                + self.neighbourhood.nbytes)


class _IsbnMap:
    """ISBN-13s (as numbers, ascending) and the positions of the books carrying them."""

    __slots__ = ("isbns", "positions")

    def __init__(self, isbns: np.ndarray, positions: np.ndarray) -> None:
        self.isbns, self.positions = isbns, positions

    @classmethod
    def of(cls, isbns: np.ndarray, positions: np.ndarray) -> _IsbnMap:
        order = np.lexsort((positions, isbns))
        return cls(isbns[order].astype(np.int64), positions[order].astype(np.int32))

    def find(self, isbn: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.isbns, [isbn, isbn + 1])
        return np.unique(self.positions[lo:hi])

    def replaced(self, removed: np.ndarray, isbns: Sequence[int], positions: Sequence[int]) -> _IsbnMap:
        """Without the entries of removed positions (a mask), with the given ones added."""
        keep = ~removed[self.positions] if len(self.positions) else np.zeros(0, dtype=bool)
        return _IsbnMap.of(np.concatenate([self.isbns[keep], np.array(isbns, dtype=np.int64)]),
                           np.concatenate([self.positions[keep], np.array(positions, dtype=np.int32)]))

    @property
    def nbytes(self) -> int:
        return self.isbns.nbytes + self.positions.nbytes


@dataclass(frozen=True, slots=True)
class _Alternative:
    """A term a query word matches: the word itself, a completion of it, or a correction."""

    term: str
    term_id: int
    cost: int  # EXACT, PREFIX_ONLY or PER_EDIT x edits
    weight: float  # idf of the term x MATCH_WEIGHTS[cost]
    books: int  # how many books have the term


@dataclass(frozen=True, slots=True)
class _WordMatch:
    """The books matching one query word, through its best alternative in each book."""

    word: str
    alternatives: list[_Alternative]
    docs: np.ndarray  # ascending
    values: np.ndarray  # x weight: the word's text score in each book
    weight: float
    cost: np.ndarray | int  # per book, or the same for all
    choice: np.ndarray | None  # per book, which alternative (None: the only one)


class _SortedTitles:
    """The normalised titles in title order, as a sequence `bisect` can search without materialising it."""

    __slots__ = ("_order", "_titles")

    def __init__(self, order: np.ndarray, titles: TextColumn) -> None:
        self._order = order
        self._titles = titles

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, i: int) -> str:
        return self._titles[int(self._order[i])]


class _SortedTitleKeys(_SortedTitles):
    def __init__(self, order: np.ndarray, titles: TextColumn, book_ids: np.ndarray) -> None:
        super().__init__(order, titles)
        self._book_ids = book_ids

    def __getitem__(self, i: int) -> tuple[str, str]:  # type: ignore[override]
        position = int(self._order[i])
        return self._titles[position], self._book_ids[position].decode()


class SearchIndex:
    """Immutable once built: search, advanced search and autocomplete, and `updated()` for refreshes."""

    def __init__(self, *, book_ids: np.ndarray, id_order: np.ndarray, titles: TextColumn,
                 title_norms: TextColumn, authors: TextColumn, signatures: np.ndarray, years: np.ndarray,
                 languages: tuple[str, ...], language: np.ndarray, cover_ids: np.ndarray,
                 rating_count: np.ndarray, rating_sum: np.ndarray, vocabulary: dict[str, int],
                 fields: tuple[PostingLists, ...], lengths: tuple[np.ndarray, ...],
                 average_lengths: tuple[float, ...], averaged_size: int, combined: PostingLists,
                 title_order: np.ndarray, lexicon: _Lexicon | None = None,
                 original_titles: dict[int, str] | None = None, isbns: _IsbnMap | None = None,
                 author_values: ValuePairs | None = None, subject_values: ValuePairs | None = None) -> None:
        self.book_ids, self.id_order = book_ids, id_order
        self.lexicon = lexicon or _Lexicon.of(vocabulary)
        self.original_titles = original_titles or {}  # position -> normalised original title
        self._by_original_title: dict[str, list[int]] = {}
        for position, original in self.original_titles.items():
            self._by_original_title.setdefault(original, []).append(position)
        self.isbns = isbns or _IsbnMap(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32))
        self.author_values = author_values or ValuePairs.of(())  # facets: (book, value) pairs
        self.subject_values = subject_values or ValuePairs.of(())
        self.titles, self.title_norms, self.authors = titles, title_norms, authors
        self.signatures, self.years, self.cover_ids = signatures, years, cover_ids
        self.languages, self.language = languages, language
        self.language_codes = {code.lower(): i for i, code in enumerate(languages)}
        self.decades = decades_of(years, NO_YEAR)
        self.rating_count, self.rating_sum = rating_count, rating_sum
        self.vocabulary, self.fields, self.lengths = vocabulary, fields, lengths
        # The average field lengths of BM25, and how many books they were taken over.
        self.average_lengths, self.averaged_size, self.combined = average_lengths, averaged_size, combined
        self.title_order = title_order
        self.size = len(book_ids)
        self.title_rank = np.empty(self.size, dtype=np.int32)
        self.title_rank[title_order] = np.arange(self.size, dtype=np.int32)
        self._sorted_titles = _SortedTitles(title_order, title_norms)
        # Derived from the rating columns: recomputed on every change, cheap and vectorised.
        rated = rating_count > 0
        self.avg_rating = np.where(rated, rating_sum / np.maximum(rating_count, 1), 0.0)
        mean = float(rating_sum[rated].sum() / rating_count[rated].sum()) if rated.any() else 3.0
        bayes = (rating_sum + PRIOR_RATINGS * mean) / (rating_count + PRIOR_RATINGS)
        self.popularity = np.log1p(rating_count) * bayes / 5.0
        self.prior_factor = (1 + PRIOR_STRENGTH * self.popularity).astype(np.float32)
        self.suggestion_rank = np.empty(self.size, dtype=np.int32)
        self.suggestion_rank[np.lexsort((self.title_rank, -self.avg_rating, -rating_count))] = \
            np.arange(self.size, dtype=np.int32)
        # Per block of SUGGESTION_BLOCK titles (in title order), its BLOCK_TOP best suggestions (-1: padding).
        blocks = -(-self.size // SUGGESTION_BLOCK)
        ranks = np.full(blocks * SUGGESTION_BLOCK, np.iinfo(np.int32).max, dtype=np.int32)
        ranks[:self.size] = self.suggestion_rank[title_order]
        ranks = ranks.reshape(blocks, SUGGESTION_BLOCK)
        best = np.argpartition(ranks, BLOCK_TOP - 1, axis=1)[:, :BLOCK_TOP]
        in_title_order = best + (np.arange(blocks) * SUGGESTION_BLOCK)[:, None]
        padding = np.full(blocks * SUGGESTION_BLOCK - self.size, -1, dtype=np.int32)
        padded = np.concatenate([title_order, padding])
        self.block_tops = padded[in_title_order]

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]],
                     average_lengths: Sequence[float] | None = None) -> SearchIndex:
        return IndexBuilder(average_lengths).add_all(records).build()

    # ---- what a hit shows ----------------------------------------------------------------------
    def book(self, position: int) -> dict[str, Any]:
        """The book summary fields of the document at `position` (score excluded)."""
        year, cover = int(self.years[position]), int(self.cover_ids[position])
        names = self.authors[position]
        return {"book_id": self.book_ids[position].decode(), "title": self.titles[position],
                "authors": _names(names),
                "first_publish_year": None if year == NO_YEAR else year,
                "avg_rating": round(float(self.avg_rating[position]), 4),
                "rating_count": int(self.rating_count[position]),
                "cover_id": None if cover == NO_COVER else cover}

    def position_of(self, book_id: str) -> int | None:
        found = self._positions(_id_array([book_id]))[0]
        return None if found < 0 else int(found)

    def _positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions of the given book ids (bytes), -1 where unknown."""
        if not self.size:
            return np.full(len(ids), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.book_ids, ids, sorter=self.id_order), self.size - 1)
        candidates = self.id_order[at].astype(np.int64)
        return np.where(self.book_ids[candidates] == ids, candidates, -1)

    # ---- figures ---------------------------------------------------------------------------------
    @property
    def terms(self) -> int:
        """Distinct words in use (the vocabulary also keeps words that text edits left without a book)."""
        return int(np.count_nonzero(np.diff(self.combined.offsets)))

    @property
    def nbytes(self) -> int:
        arrays = (self.book_ids, self.id_order, self.signatures, self.years, self.language, self.cover_ids,
                  self.rating_count, self.rating_sum, *self.lengths, self.title_order, self.title_rank,
                  self.avg_rating, self.popularity, self.prior_factor, self.suggestion_rank, self.block_tops,
                  self.decades)
        vocabulary = sys.getsizeof(self.vocabulary) + sum(sys.getsizeof(t) for t in self.vocabulary)
        return (sum(a.nbytes for a in arrays) + sum(p.nbytes for p in (*self.fields, self.combined))
                + self.titles.nbytes + self.title_norms.nbytes + self.authors.nbytes + vocabulary
                + self.lexicon.nbytes + self.isbns.nbytes + self.author_values.nbytes
                + self.subject_values.nbytes)

    # ---- facets ----------------------------------------------------------------------------------
    def facets(self, matches: np.ndarray, limit: int = 10) -> dict[str, list[FacetCount]]:
        """Per facet (authors, subjects, decade, language), the `limit` values most common among `matches`
        (ascending positions, as `SearchResult.matches` gives them), most first."""
        return count(matches, self.size, self.author_values, self.subject_values, self.decades, self.language,
                     self.languages, limit)

    def _facet_mask(self, facet_filter: FacetFilter | None) -> np.ndarray | None:
        """A mask of the books passing `facet_filter`; None when it asks for nothing."""
        if not facet_filter:
            return None
        return allowed(facet_filter, self.size, self.author_values, self.subject_values, self.decades,
                       self.language, self.language_codes)

    # ---- matching --------------------------------------------------------------------------------
    def _idf(self, document_frequency: int) -> float:
        return math.log(1 + (self.size - document_frequency + 0.5) / (document_frequency + 0.5))

    def _lists(self, postings: PostingLists, words: Sequence[str]) -> list[PostingList] | None:
        """The posting lists of every word, or None when some word is in no list."""
        lists = []
        for word in words:
            term = self.vocabulary.get(word)
            if term is None:
                return None
            docs, values = postings.get(term)
            if not len(docs):
                return None
            lists.append((docs, values))
        return lists

    def _intersection(self, lists: Sequence[PostingList]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Documents in every list (ascending) and, per list, where each of them sits in that list.

        Starts from the shortest list; each longer one is probed by binary search, or, when many
        candidates remain, through a dense document -> place map (one pass instead of a search each).
        """
        order = sorted(range(len(lists)), key=lambda j: len(lists[j][0]))
        candidates = lists[order[0]][0]
        if len(lists) == 1:
            return candidates, [slice(None)]  # type: ignore[list-item]  # the whole list, without a copy
        where: dict[int, np.ndarray] = {order[0]: np.arange(len(candidates))}
        for j in order[1:]:
            present, at = self._probe(lists[j][0], candidates)
            candidates = candidates[present]
            where = {k: v[present] for k, v in where.items()}
            where[j] = at[present]
        return candidates, [where[j] for j in range(len(lists))]

    def _probe(self, docs: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which candidates are in the ascending `docs`, and where (meaningful where present)."""
        if not len(docs):
            return np.zeros(len(candidates), dtype=bool), np.zeros(len(candidates), dtype=np.intp)
        if len(candidates) * DENSE_PROBE_SHARE > self.size:
            place = np.full(self.size, -1, dtype=np.int32)
            place[docs.astype(np.intp)] = np.arange(len(docs), dtype=np.int32)
            at = place[candidates]
            return at >= 0, at
        at = np.minimum(np.searchsorted(docs, candidates), len(docs) - 1)
        return docs[at] == candidates, at

    def _title_span(self, normalised: str, exact: bool = False) -> tuple[int, int]:
        lo = bisect.bisect_left(self._sorted_titles, normalised)
        if exact:
            return lo, bisect.bisect_right(self._sorted_titles, normalised, lo)
        return lo, bisect.bisect_left(self._sorted_titles, normalised + ABOVE_ANY_TEXT, lo)

    def _top(self, candidates: np.ndarray, key: np.ndarray, offset: int, limit: int,
             tier: np.ndarray | None = None) -> list[Hit]:
        """Candidates ranked by tier (lower first), key (higher first), prior, title order; one page of them.

        A hit's score is its key.
        """
        shown = key
        if tier is not None and len(tier) and tier.min() != tier.max():
            key = key.astype(np.float64) - TIER_STEP * tier
        wanted = offset + limit
        if len(candidates) > SAMPLED_CUT_MIN and wanted * SAMPLED_CUT_RATIO < len(candidates):
            # A cut-off from an even sample keeps a few times `wanted` candidates; it is exact whenever at
            # least `wanted` pass it (the wanted-th best key is then at or above it), else skipped.
            sample = key[::len(key) // SAMPLE_SIZE]
            keep_share = min(1.0, 4 * wanted / len(key) + 2 / SAMPLE_SIZE)
            kth = int(len(sample) * (1 - keep_share))
            cut = np.partition(sample, kth)[kth]
            passing = key >= cut
            if np.count_nonzero(passing) >= wanted:
                candidates, key, shown = candidates[passing], key[passing], shown[passing]
        levels: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
            lambda i: key[i], lambda i: self.popularity[candidates[i]],
            lambda i: -self.title_rank[candidates[i]].astype(np.int64))

        def best(chosen: np.ndarray, level: int, need: int) -> np.ndarray:
            if len(chosen) <= need:
                return chosen
            values = levels[level](chosen)
            if level == len(levels) - 1:  # title order is unique: no ties left
                return chosen[np.argpartition(-values, need - 1)[:need]]
            threshold = np.partition(values, len(values) - need)[len(values) - need]
            above = chosen[values > threshold]
            return np.concatenate([above, best(chosen[values == threshold], level + 1, need - len(above))])

        if wanted <= offset or not len(candidates):
            return []
        chosen = best(np.arange(len(candidates)), 0, wanted)
        positions = candidates[chosen]
        ranked = chosen[np.lexsort((self.title_rank[positions], -self.popularity[positions], -key[chosen]))]
        return [Hit(int(candidates[i]), float(shown[i])) for i in ranked[offset:wanted]]

    # ---- queries ---------------------------------------------------------------------------------
    def search(self, query: str, limit: int = 20, offset: int = 0, *, with_matches: bool = False,
               facet_filter: FacetFilter | None = None) -> SearchResult:
        """Full text over title, authors and subjects (see the module docstring for matching and score).

        With `facet_filter`, only books passing it match (the all-words rule applies among them).
        """
        passing = self._facet_mask(facet_filter)
        normalised = normalise_text(query)
        words = query_terms(query)
        completes = bool(words) and bool(normalise_text(query[-1:]))  # no prefix once a space ends the query
        options = [self._alternatives(w, completes and i == len(words) - 1) for i, w in enumerate(words)]
        within = None
        if all(options) and 1 < len(options) and any(len(o) > 1 for o in options) \
                and any(len(o) == 1 for o in options):
            # Words of one term narrow the books first; the others' alternatives are merged only there.
            within, _ = self._intersection([self.combined.get(o[0].term_id) for o in options if len(o) == 1])
        matches = [self._word_match(w, o, within) for w, o in zip(words, options)]
        if within is not None and not all(len(m.docs) for m in matches):
            matches = [self._word_match(w, o) for w, o in zip(words, options)]  # the any-word fallback
        present = [m for m in matches if len(m.docs)]
        candidates = np.empty(0, dtype=np.int32)
        score = np.empty(0, dtype=np.float32)
        tier = np.empty(0, dtype=np.int32)
        where: list[Any] = []
        if present and len(present) == len(matches):
            candidates, where = self._intersection([(m.docs, m.values) for m in matches])
            if passing is not None:
                keep = passing[candidates]
                candidates = candidates[keep]
                kept = np.flatnonzero(keep)
                where = [kept if isinstance(at, slice) else at[keep] for at in where]
            text = np.zeros(len(candidates), dtype=np.float32)
            tier = np.zeros(len(candidates), dtype=np.int32)
            for m, at in zip(matches, where):
                text += np.float32(m.weight) * m.values[at]
                tier += m.cost[at] if isinstance(m.cost, np.ndarray) else m.cost
            score = text * self.prior_factor[candidates]
        matched_all = len(candidates) > 0
        if not matched_all and within is not None:  # narrowed to books that have no word in common
            matches = [self._word_match(w, o) for w, o in zip(words, options)]
            present = [m for m in matches if len(m.docs)]
        if not matched_all and present:
            accumulated = np.zeros(self.size, dtype=np.float32)
            costs = np.zeros(self.size, dtype=np.int32)
            for m in present:
                docs = m.docs.astype(np.intp)
                # add.at with intp indices is numpy's fastest scatter-add; scores are all > 0
                np.add.at(accumulated, docs, np.float32(m.weight) * m.values)
                costs[docs] += m.cost
            if passing is not None:
                accumulated[~passing] = 0
            candidates = np.flatnonzero(accumulated > 0)  # through a bool mask: several times faster
            score = accumulated[candidates] * self.prior_factor[candidates]
            tier = costs[candidates]
            matches, where = present, [m.docs for m in present]
        if len(candidates):
            exact = [self.title_order[slice(*self._title_span(normalised, exact=True))],
                     np.array(self._by_original_title.get(normalised, ()), dtype=np.int32)]
            exact_titles = np.unique(np.concatenate(exact))  # ascending: searchsorted walks forward
            at = np.minimum(np.searchsorted(candidates, exact_titles), len(candidates) - 1)
            score[at[candidates[at] == exact_titles]] += EXACT_TITLE_BONUS
        terms, corrections = self._matched_terms(matches, where, matched_all)
        isbn = isbn13_of(query)
        found = self.isbns.find(int(isbn)) if isbn else np.empty(0, dtype=np.int32)
        if passing is not None:
            found = found[passing[found]]
        if len(found):
            candidates, score, tier = self._with_isbn_hits(found, candidates, score, tier)
            matched_all = True
        return SearchResult(len(candidates), self._top(candidates, score, offset, limit, tier), matched_all,
                            terms, corrections, candidates if with_matches else None)

    def _with_isbn_hits(self, found: np.ndarray, candidates: np.ndarray, score: np.ndarray,
                        tier: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        merged = np.union1d(candidates, found).astype(np.int32)
        merged_score = np.zeros(len(merged), dtype=np.float32)
        merged_tier = np.zeros(len(merged), dtype=np.int32)
        at = np.searchsorted(merged, candidates)
        merged_score[at], merged_tier[at] = score, tier
        at = np.searchsorted(merged, found)
        merged_score[at] += ISBN_BONUS
        merged_tier[at] = ISBN_TIER
        return merged, merged_score, merged_tier

    def _matched_terms(self, matches: Sequence[_WordMatch], where: Sequence[Any],
                       matched_all: bool) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Per query word, the terms it matched in the matching books; and the words only corrected."""
        terms: dict[str, list[str]] = {}
        corrections: dict[str, list[str]] = {}
        if not where:
            return terms, corrections
        for m, at in zip(matches, where):
            if m.choice is None:
                chosen = [m.alternatives[0]]
            else:
                picked = m.choice if not matched_all or isinstance(at, slice) else m.choice[at]
                used = np.bincount(picked, minlength=len(m.alternatives))
                chosen = [m.alternatives[j] for j in np.flatnonzero(used)]
            chosen.sort(key=lambda a: (a.cost, -a.books, a.term))
            terms[m.word] = [a.term for a in chosen]
            if chosen[0].cost >= PER_EDIT:
                corrections[m.word] = terms[m.word]
        return terms, corrections

    def _alternatives(self, word: str, completes: bool) -> list[_Alternative]:
        """The terms `word` matches: itself, its completions when it is the last word, its corrections."""
        frequency = self.combined.offsets
        found: dict[int, int] = {}  # term id -> cost
        term = self.vocabulary.get(word)
        if term is not None:
            found[term] = EXACT
            if frequency[term + 1] - frequency[term] >= TAKEN_AS_TYPED:
                # Its own books fill every page before any completion or correction would show.
                return self._alternatives_of(found)
        if completes and len(word) >= PREFIX_MIN:
            ids = self.lexicon.with_prefix(word)
            if len(ids):
                counts = frequency[ids + 1] - frequency[ids]
                if len(ids) > PREFIX_TERMS + 1:
                    keep = np.argpartition(-counts, PREFIX_TERMS)[:PREFIX_TERMS + 1]
                    ids, counts = ids[keep], counts[keep]
                for t in ids[counts > 0]:
                    found.setdefault(int(t), PREFIX_ONLY)
        if len(word) >= ONE_TYPO and not word.isdigit():
            near = self.lexicon.near(word, 2 if len(word) >= TWO_TYPOS else 1)
            counts = {t: int(frequency[t + 1] - frequency[t]) for t, _ in near}
            near = sorted((e, -counts[t], t) for t, e in near if counts[t] and t not in found)
            for edits, _, t in near[:MAX_CORRECTIONS]:
                found[t] = PER_EDIT * edits
        return self._alternatives_of(found)

    def _alternatives_of(self, found: Mapping[int, int]) -> list[_Alternative]:
        frequency = self.combined.offsets
        alternatives = []
        for t, cost in found.items():
            df = int(frequency[t + 1] - frequency[t])
            if df:
                alternatives.append(_Alternative(self.lexicon.by_id[t], t, cost,
                                                 self._idf(df) * MATCH_WEIGHTS[cost], df))
        alternatives.sort(key=lambda a: (a.cost, -a.books, a.term))
        return alternatives

    def _word_match(self, word: str, alternatives: list[_Alternative],
                    within: np.ndarray | None = None) -> _WordMatch:
        """The books matching `word` (only those `within`, when given) through its best alternative."""
        if not alternatives:
            return _WordMatch(word, [], np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32), 1.0, 0, None)
        if len(alternatives) == 1:
            a = alternatives[0]
            docs, impacts = self.combined.get(a.term_id)
            return _WordMatch(word, alternatives, docs, impacts, a.weight, a.cost, None)
        lists = [self.combined.get(a.term_id) for a in alternatives]
        if within is not None:
            probed = [self._probe(docs, within) for docs, _ in lists]
            lists = [(within[present], impacts[at[present]]) for (_, impacts), (present, at) in zip(lists, probed)]
        if sum(len(docs) for docs, _ in lists) * DENSE_PROBE_SHARE > self.size:
            # Many books: keep each book's best alternative in dense arrays, cheapest alternatives first.
            cost = np.full(self.size, NO_MATCH_COST, dtype=np.int8)
            best = np.zeros(self.size, dtype=np.float32)
            choice = np.zeros(self.size, dtype=np.int16)
            for j, (a, (docs, impacts)) in enumerate(zip(alternatives, lists)):
                values = np.float32(a.weight) * impacts
                if not j:  # nothing matched yet (choice is 0 already)
                    cost[docs], best[docs] = a.cost, values
                    continue
                current = cost[docs]
                better = (current == NO_MATCH_COST) | ((current == a.cost) & (best[docs] < values))
                docs = docs[better]
                cost[docs], best[docs], choice[docs] = a.cost, values[better], j
            docs = np.flatnonzero(cost != NO_MATCH_COST).astype(np.int32)
            return _WordMatch(word, alternatives, docs, best[docs], 1.0, cost[docs].astype(np.int32),
                              choice[docs])
        docs = np.concatenate([d for d, _ in lists])
        values = np.concatenate([np.float32(a.weight) * v for a, (_, v) in zip(alternatives, lists)])
        costs = np.concatenate([np.full(len(d), a.cost, dtype=np.int32) for a, (d, _) in zip(alternatives, lists)])
        choices = np.concatenate([np.full(len(d), j, dtype=np.int16) for j, (d, _) in enumerate(lists)])
        order = np.lexsort((-values, costs, docs))
        docs, values, costs, choices = docs[order], values[order], costs[order], choices[order]
        first = np.ones(len(docs), dtype=bool)
        first[1:] = docs[1:] != docs[:-1]
        return _WordMatch(word, alternatives, docs[first], values[first], 1.0, costs[first], choices[first])

    def advanced(self, filters: Filters, sort: str = "relevance", order: str = "desc", limit: int = 20,
                 offset: int = 0, *, with_matches: bool = False,
                 facet_filter: FacetFilter | None = None) -> SearchResult:
        """Every given filter applies, `facet_filter` too; sorted by `sort` (relevance, rating, year, title)
        in `order`.

        Books without a year (year sort) or without ratings (rating sort) come last in either order.
        """
        if sort not in SORTS or order not in ("asc", "desc"):
            raise ValueError(f"unknown sort {sort!r} {order!r}")
        candidates: np.ndarray | None = None  # None: every document
        text: np.ndarray | None = None
        field_lists: list[tuple[int, PostingList]] = []
        matched_words: dict[str, None] = {}
        for field, phrase in enumerate((filters.title, filters.author, filters.subject)):
            words = query_terms(phrase or "")
            if words:
                lists = self._lists(self.fields[field], words)
                if lists is None:
                    return SearchResult(0, [], matches=np.empty(0, dtype=np.int32) if with_matches else None)
                matched_words.update(dict.fromkeys(words))
                field_lists += [(field, posting_list) for posting_list in lists]
        if field_lists:
            # One intersection over every word of every field; scores only for the books left.
            candidates, where = self._intersection([posting_list for _, posting_list in field_lists])
            text = np.zeros(len(candidates), dtype=np.float32)
            lengths = {f: self.lengths[f][candidates] for f in {f for f, _ in field_lists}}
            for (field, (docs, frequencies)), at in zip(field_lists, where):
                text += np.float32(self._idf(len(docs)) * FIELD_WEIGHTS[field]) * _saturated(
                    frequencies[at], lengths[field], self.average_lengths[field])
        keep = self._column_filters(filters, candidates)
        passing = self._facet_mask(facet_filter)
        if passing is not None:
            passing = passing if candidates is None else passing[candidates]
            keep = passing if keep is None else keep & passing
        if keep is not None:
            if candidates is None:
                candidates = np.flatnonzero(keep)
            else:
                candidates, text = candidates[keep], None if text is None else text[keep]
        if candidates is None:
            candidates = np.arange(self.size)
        key = self._sort_key(sort, order, candidates, text)
        return SearchResult(len(candidates), self._top(candidates, key, offset, limit), True,
                            terms={w: [w] for w in matched_words},
                            matches=candidates if with_matches else None)

    def _column_filters(self, filters: Filters, candidates: np.ndarray | None) -> np.ndarray | None:
        """Mask of the candidates (or of every document) passing the year, rating and language filters."""
        def column(values: np.ndarray) -> np.ndarray:
            return values if candidates is None else values[candidates]

        mask: np.ndarray | None = None

        def both(condition: np.ndarray) -> None:
            nonlocal mask
            mask = condition if mask is None else mask & condition

        if filters.min_year is not None:
            both(column(self.years) >= max(filters.min_year, NO_YEAR + 1))  # NO_YEAR sits below every year
        if filters.max_year is not None:
            years = column(self.years)
            both(years <= filters.max_year if filters.min_year is not None else
                 (years <= filters.max_year) & (years != NO_YEAR))
        if filters.min_rating is not None:  # an unrated book has average 0 and no rating at all
            both(column(self.avg_rating) >= filters.min_rating if filters.min_rating > 0 else
                 column(self.rating_count) > 0)
        if filters.language:
            code = self.language_codes.get(filters.language.lower())
            both(column(self.language) == code if code is not None
                 else np.zeros(self.size if candidates is None else len(candidates), dtype=bool))
        return mask

    def _sort_key(self, sort: str, order: str, candidates: np.ndarray, text: np.ndarray | None) -> np.ndarray:
        sign = 1.0 if order == "desc" else -1.0
        if sort == "relevance":
            if text is None:
                return sign * self.popularity[candidates]
            return sign * text * self.prior_factor[candidates]
        if sort == "title":
            return sign * self.title_rank[candidates].astype(np.float64)
        if sort == "year":
            years = self.years[candidates]
            return np.where(years != NO_YEAR, sign * years, -np.inf)
        counts = self.rating_count[candidates]
        return np.where(counts > 0, sign * self.avg_rating[candidates], -np.inf)

    def autocomplete(self, prefix: str, limit: int = 10) -> Suggestions:
        """Books whose normalised title starts with the normalised prefix, most rated first."""
        normalised = normalise_text(prefix)
        if not normalised:
            return Suggestions(0, [])
        lo, hi = self._title_span(normalised)
        first, last = -(-lo // SUGGESTION_BLOCK), hi // SUGGESTION_BLOCK
        if limit <= BLOCK_TOP and first < last:
            # Whole blocks inside the span contribute only their best few; the ragged ends all of theirs.
            inner = self.block_tops[first:last].ravel()
            positions = np.concatenate([self.title_order[lo:first * SUGGESTION_BLOCK], inner[inner >= 0],
                                        self.title_order[last * SUGGESTION_BLOCK:hi]])
        else:
            positions = self.title_order[lo:hi]
        if len(positions) > limit:
            positions = positions[np.argpartition(self.suggestion_rank[positions], limit - 1)[:limit]]
        return Suggestions(hi - lo, [int(p) for p in positions[np.argsort(self.suggestion_rank[positions])]])

    # ---- refresh -----------------------------------------------------------------------------------
    def updated(self, records: Iterable[Mapping[str, Any]]) -> SearchIndex:
        """This index with the given records added or replaced (by book id); `self` when nothing differs."""
        latest = {r["book_id"]: r for r in records if isinstance(r.get("book_id"), str)}
        if not latest:
            return self
        documents = [Document.of(r) for r in latest.values()]
        found = self._positions(_id_array([d.book_id for d in documents]))
        known = [(d, int(p)) for d, p in zip(documents, found) if p >= 0]
        added = [d for d, p in zip(documents, found) if p < 0]
        rewritten = [(d, p) for d, p in known if d.signature != self.signatures[p]]
        changed = rewritten or added or any(self._columns_differ(d, p) for d, p in known)
        if not changed:
            return self
        parts = self._updated_columns(known, added)
        parts.update(self._updated_text(rewritten, added) if rewritten or added else self._text_parts())
        return SearchIndex(**parts)

    def _columns_differ(self, d: Document, p: int) -> bool:
        return (d.year != self.years[p] or d.cover_id != self.cover_ids[p]
                or d.rating_count != self.rating_count[p] or d.rating_sum != self.rating_sum[p]
                or d.language != self.languages[self.language[p]])

    def _updated_columns(self, known: list[tuple[Document, int]], added: list[Document]) -> dict[str, Any]:
        codes = {code: i for i, code in enumerate(self.languages)}
        for d in [*(d for d, _ in known), *added]:
            codes.setdefault(d.language, len(codes))

        def column(values: np.ndarray, value_of: Callable[[Document], int]) -> np.ndarray:
            out = np.concatenate([values, np.array([value_of(d) for d in added], dtype=values.dtype)])
            if known:
                out[[p for _, p in known]] = [value_of(d) for d, _ in known]
            return out

        return {"years": column(self.years, lambda d: d.year),
                "cover_ids": column(self.cover_ids, lambda d: d.cover_id),
                "rating_count": column(self.rating_count, lambda d: d.rating_count),
                "rating_sum": column(self.rating_sum, lambda d: d.rating_sum),
                "language": column(self.language, lambda d: codes[d.language]), "languages": tuple(codes)}

    def _text_parts(self) -> dict[str, Any]:
        return {"book_ids": self.book_ids, "id_order": self.id_order, "titles": self.titles,
                "title_norms": self.title_norms, "authors": self.authors, "signatures": self.signatures,
                "vocabulary": self.vocabulary, "fields": self.fields, "lengths": self.lengths,
                "average_lengths": self.average_lengths, "averaged_size": self.averaged_size,
                "combined": self.combined, "title_order": self.title_order, "lexicon": self.lexicon,
                "original_titles": self.original_titles, "isbns": self.isbns,
                "author_values": self.author_values, "subject_values": self.subject_values}

    def _updated_text(self, rewritten: list[tuple[Document, int]], added: list[Document]) -> dict[str, Any]:
        size = self.size + len(added)
        batch = [*rewritten, *((d, self.size + i) for i, d in enumerate(added))]
        vocabulary = dict(self.vocabulary)
        known_terms = len(vocabulary)
        occurrences = _Occurrences()
        for d, p in batch:
            occurrences.add(p, d, vocabulary)
        removed = np.zeros(self.size, dtype=bool)
        removed[[p for _, p in rewritten]] = True
        term_count = len(vocabulary)
        lexicon = self.lexicon.with_terms(dict(itertools.islice(vocabulary.items(), known_terms, None)))
        original_titles = {p: t for p, t in self.original_titles.items() if not removed[p]}
        original_titles.update((p, d.original_title_norm) for d, p in batch if d.original_title_norm)
        isbns = self.isbns.replaced(removed, [i for d, _ in batch for i in d.isbns],
                                    [p for d, p in batch for _ in d.isbns])
        rewritten_at = np.array([p for _, p in rewritten], dtype=np.int64)
        fields, lengths, impact_keys, impacts = [], [], [], []
        for f in range(len(FIELDS)):
            batch_lengths = occurrences.field_lengths(f)
            field_lengths = np.concatenate([self.lengths[f], batch_lengths[len(rewritten):]])
            field_lengths[rewritten_at] = batch_lengths[:len(rewritten)]
            keys, frequencies = occurrences.field(f)
            fields.append(self.fields[f].replaced(removed, keys, frequencies, term_count))
            lengths.append(field_lengths)
            impact_keys.append(keys)
            impacts.append(_field_impacts(f, keys, frequencies, field_lengths, self.average_lengths[f]))
        averages, averaged_size = self.average_lengths, self.averaged_size
        if size > self.averaged_size * REAVERAGE_GROWTH:
            # Grown well past the catalogue the averages describe (say, started on a table still being
            # loaded): average afresh and recompute every impact, from the field lists alone.
            averages, averaged_size = tuple(float(x.mean()) for x in lengths), size
            combined = _combined_lists(fields, lengths, averages)
        else:
            combined = self.combined.replaced(removed, *summed_pairs(impact_keys, impacts), term_count)

        new_ids = _id_array([d.book_id for d in added])
        book_ids = np.concatenate([self.book_ids, new_ids]) if added else self.book_ids
        id_sorted = np.argsort(new_ids, kind="stable")
        id_at = np.searchsorted(self.book_ids, new_ids[id_sorted], sorter=self.id_order)
        id_order = np.insert(self.id_order, id_at, (self.size + id_sorted).astype(np.int32))
        title_norms = self.title_norms.updated({p: d.title_norm for d, p in rewritten},
                                               [d.title_norm for d in added])
        signatures = np.concatenate([self.signatures, np.array([d.signature for d in added], dtype=np.int64)])
        signatures[rewritten_at] = [d.signature for d, _ in rewritten]
        # Title order: drop the moved documents, then insert each at its place among the others.
        moved = np.zeros(size, dtype=bool)
        moved[[p for _, p in batch]] = True
        kept = self.title_order[~moved[self.title_order]]
        keys = _SortedTitleKeys(kept, title_norms, book_ids)
        entering = sorted((d.title_norm, d.book_id, p) for d, p in batch)
        at = [bisect.bisect_left(keys, (title, book_id)) for title, book_id, _ in entering]
        title_order = np.insert(kept, at, np.array([p for _, _, p in entering], dtype=np.int32))
        return {"book_ids": book_ids, "id_order": id_order.astype(np.int32),
                "titles": self.titles.updated({p: d.title for d, p in rewritten}, [d.title for d in added]),
                "title_norms": title_norms,
                "authors": self.authors.updated({p: d.authors for d, p in rewritten},
                                                [d.authors for d in added]),
                "signatures": signatures, "vocabulary": vocabulary, "fields": tuple(fields),
                "lengths": tuple(lengths),
                "average_lengths": averages, "averaged_size": averaged_size, "combined": combined,
                "title_order": title_order, "lexicon": lexicon, "original_titles": original_titles,
                "isbns": isbns,
                "author_values": self.author_values.updated({p: _names(d.authors) for d, p in rewritten},
                                                            [_names(d.authors) for d in added], self.size),
                "subject_values": self.subject_values.updated({p: d.subjects for d, p in rewritten},
                                                              [d.subjects for d in added], self.size)}
