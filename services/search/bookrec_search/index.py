"""The in-memory search index: pure, no I/O.

Documents live in column arrays (numpy); each field (title, authors,
subjects) has compressed posting lists: one sorted int32 array of document
numbers and one of term frequencies per term, addressed by offsets.

Scoring (documented contract):

    text(d)  = Σ_terms idf(t) · Σ_fields w_f · tf·(k1+1) / (tf + k1·(1 − b + b·len_f(d)/avglen_f))
               with w_title = 3, w_authors = 2, w_subjects = 1, k1 = 1.2, b = 0.75  (BM25F-style)
    prior(d) = log(1 + rating_count) · bayes_avg / 5      (bayes_avg: average pulled to the
               catalogue mean by `prior_weight` phantom ratings)
    score(d) = text(d) · (1 + 0.15 · prior(d)) + 10 · [normalised title == normalised query]

All query words must match (in any field); when none does, any-word
matching is used and the result says so.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bookrec_common.catalog import normalise_text

FIELD_WEIGHTS = {"title": 3.0, "authors": 2.0, "subjects": 1.0}
K1, B = 1.2, 0.75
PRIOR_STRENGTH = 0.15
EXACT_TITLE_BONUS = 10.0
NO_YEAR = np.iinfo(np.int32).min


@dataclass(frozen=True)
class Hit:
    position: int
    score: float


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[Hit]
    matched_all_words: bool


@dataclass(frozen=True)
class Filters:
    title: str | None = None
    author: str | None = None
    subject: str | None = None
    min_year: int | None = None
    max_year: int | None = None
    min_rating: float | None = None
    language: str | None = None


class Postings:
    """term -> sorted document numbers and term frequencies, in flat arrays addressed by offsets."""

    def __init__(self, terms: dict[str, int], offsets: np.ndarray, docs: np.ndarray, freqs: np.ndarray,
                 lengths: np.ndarray) -> None:
        self.terms = terms
        self.offsets = offsets
        self.docs = docs
        self.freqs = freqs
        self.lengths = lengths
        self.average_length = float(lengths.mean()) if len(lengths) else 0.0

    def get(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        i = self.terms.get(term)
        if i is None:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
        return self.docs[self.offsets[i]:self.offsets[i + 1]], self.freqs[self.offsets[i]:self.offsets[i + 1]]

    @property
    def nbytes(self) -> int:
        return int(self.docs.nbytes + self.freqs.nbytes + self.offsets.nbytes + self.lengths.nbytes)


class PostingsBuilder:
    """Collects (term, document) pairs in flat int arrays; one sort turns them into posting lists."""

    def __init__(self) -> None:
        self.terms: dict[str, int] = {}
        self._term_ids = array("i")
        self._docs = array("i")
        self._lengths = array("f")

    def add(self, doc: int, tokens: list[str]) -> None:
        ids = [self.terms.setdefault(token, len(self.terms)) for token in tokens]
        self._term_ids.extend(ids)
        self._docs.extend([doc] * len(ids))
        self._lengths.append(len(ids))

    def build(self) -> Postings:
        term_ids = np.frombuffer(self._term_ids, dtype=np.int32).astype(np.int64)
        docs = np.frombuffer(self._docs, dtype=np.int32).astype(np.int64)
        pairs, counts = np.unique((term_ids << 32) | docs, return_counts=True)
        term_of = (pairs >> 32).astype(np.int32)
        offsets = np.searchsorted(term_of, np.arange(len(self.terms) + 1)).astype(np.int64)
        return Postings(self.terms, offsets, (pairs & 0xFFFFFFFF).astype(np.int32), counts.astype(np.float32),
                        np.frombuffer(self._lengths, dtype=np.float32).copy())


def tokens_of(text: str) -> list[str]:
    return normalise_text(text).split()


class SearchIndex:
    """Built once from book records, then read-only: a refresh builds a new one and swaps it in."""

    def __init__(self, books: Iterable[Mapping[str, Any]], prior_weight: float = 10.0) -> None:
        # One pass over the records: columns and posting pairs, never a Python object per posting.
        self.book_ids: list[str] = []
        self.titles: list[str] = []
        self._authors: list[str] = []  # names joined by \x1f: one string per book, not a list
        self.cover_ids: list[int | None] = []
        self.title_norm: list[str] = []
        years, counts, sums, languages = array("i"), array("q"), array("q"), []
        builders = {name: PostingsBuilder() for name in FIELD_WEIGHTS}
        for doc, r in enumerate(books):
            names = [a.get("name", "") for a in r.get("authors", []) if isinstance(a, Mapping)]
            self.book_ids.append(r["book_id"])
            self.titles.append(r.get("title", ""))
            self._authors.append("\x1f".join(names))
            self.cover_ids.append(r.get("cover_id"))
            self.title_norm.append(r.get("title_norm") or normalise_text(r.get("title", "")))
            year = r.get("first_publish_year")
            years.append(year if isinstance(year, int) and not isinstance(year, bool) else NO_YEAR)
            counts.append(int(r.get("rating_count", 0)))
            sums.append(int(r.get("rating_sum", 0)))
            languages.append(r.get("language") or "")
            builders["title"].add(doc, tokens_of(r.get("title", "")) + tokens_of(r.get("subtitle") or ""))
            builders["authors"].add(doc, [t for name in names for t in tokens_of(name)])
            builders["subjects"].add(doc, [t for subject in r.get("subjects", []) for t in tokens_of(subject)])
        self.size = len(self.book_ids)
        self.years = np.frombuffer(years, dtype=np.int32).copy()
        self.rating_count = np.frombuffer(counts, dtype=np.int64).copy()
        self.rating_sum = np.frombuffer(sums, dtype=np.int64).copy()
        self.avg_rating = np.where(self.rating_count > 0, self.rating_sum / np.maximum(self.rating_count, 1),
                                   0.0).astype(np.float32)
        self.language_codes = {code: i for i, code in enumerate(sorted(set(languages)))}
        self.language = np.array([self.language_codes[code] for code in languages], dtype=np.int16)
        rated = self.rating_count > 0
        mean = float(self.rating_sum[rated].sum() / self.rating_count[rated].sum()) if rated.any() else 3.0
        bayes = (self.rating_sum + prior_weight * mean) / (self.rating_count + prior_weight)
        self.popularity = (np.log1p(self.rating_count) * bayes / 5.0).astype(np.float32)
        self.fields = {name: builder.build() for name, builder in builders.items()}
        # Autocomplete: most rated first, then best average, then A..Z (the same order as the GSI path).
        self.autocomplete_rank = np.empty(self.size, dtype=np.int32)
        self.autocomplete_rank[np.lexsort((np.array(self.title_norm, dtype=str) if self.size else np.empty(0, str),
                                           -self.avg_rating, -self.rating_count))] = np.arange(self.size)
        # Normalised titles in sorted order, with the document behind each.
        order = sorted(range(self.size), key=self.title_norm.__getitem__)
        self.sorted_titles = [self.title_norm[i] for i in order]
        self.sorted_positions = np.array(order, dtype=np.int32)
        self.title_rank = np.empty(self.size, dtype=np.int32)
        self.title_rank[self.sorted_positions] = np.arange(self.size, dtype=np.int32)

    def authors_of(self, position: int) -> list[str]:
        joined = self._authors[position]
        return joined.split("\x1f") if joined else []

    # ---- figures -------------------------------------------------------------------------------
    @property
    def terms(self) -> int:
        return sum(len(p.terms) for p in self.fields.values())

    @property
    def nbytes(self) -> int:
        arrays = (self.years, self.rating_count, self.rating_sum, self.avg_rating, self.language, self.popularity,
                  self.sorted_positions, self.title_rank)
        return sum(p.nbytes for p in self.fields.values()) + sum(a.nbytes for a in arrays)

    # ---- matching and scoring ------------------------------------------------------------------
    def _idf(self, document_frequency: int) -> float:
        return math.log(1 + (self.size - document_frequency + 0.5) / (document_frequency + 0.5))

    def _match_and_score(self, terms: Sequence[str], fields: Sequence[str], all_words: bool,
                         scores: np.ndarray) -> np.ndarray:
        """Mask of documents with all (or any) of the terms; adds their BM25F text scores into `scores`."""
        unique_terms = list(dict.fromkeys(terms))
        hits = np.zeros(self.size, dtype=np.int16)
        for term in unique_terms:
            postings_per_field = [(name, *self.fields[name].get(term)) for name in fields]
            postings_per_field = [p for p in postings_per_field if len(p[1])]
            if not postings_per_field:
                continue
            if len(postings_per_field) == 1:
                present = postings_per_field[0][1]
                document_frequency = len(present)
            else:  # a document may hold the term in several fields: count it once
                present = np.zeros(self.size, dtype=bool)
                for _, field_docs, _ in postings_per_field:
                    present[field_docs] = True
                document_frequency = int(np.count_nonzero(present))
            hits[present] += 1
            idf = self._idf(document_frequency)
            for name, field_docs, freqs in postings_per_field:
                postings = self.fields[name]
                norm = K1 * (1 - B + B * postings.lengths[field_docs] / max(postings.average_length, 1e-9))
                scores[field_docs] += idf * FIELD_WEIGHTS[name] * freqs * (K1 + 1) / (freqs + norm)
        return hits >= len(unique_terms) if all_words else hits > 0

    def _exact_titles(self, normalised: str) -> np.ndarray:
        lo = bisect.bisect_left(self.sorted_titles, normalised)
        hi = bisect.bisect_right(self.sorted_titles, normalised, lo)
        return self.sorted_positions[lo:hi]

    def _rank(self, mask: np.ndarray, scores: np.ndarray, offset: int, limit: int) -> list[Hit]:
        candidates = np.flatnonzero(mask)
        wanted = offset + limit
        if len(candidates) > wanted:
            # Keep everything tied with the last wanted score, so the tie-break decides, not partition order.
            values = scores[candidates]
            threshold = -np.partition(-values, wanted - 1)[wanted - 1]
            candidates = candidates[values >= threshold]
        # Ties broken by popularity, then by title order, so paging is stable.
        order = np.lexsort((self.title_rank[candidates], -self.popularity[candidates], -scores[candidates]))
        ranked = candidates[order][offset:wanted]
        return [Hit(int(p), float(scores[p])) for p in ranked]

    def search(self, query: str, limit: int = 20, offset: int = 0) -> SearchResult:
        terms = tokens_of(query)
        fields = list(FIELD_WEIGHTS)
        scores = np.zeros(self.size, dtype=np.float32)
        mask = self._match_and_score(terms, fields, True, scores)
        matched_all = bool(mask.any())
        if not matched_all:
            mask = self._match_and_score(terms, fields, False, np.zeros(self.size, dtype=np.float32))
        scores *= 1 + PRIOR_STRENGTH * self.popularity
        exact = self._exact_titles(" ".join(terms))
        scores[exact] += EXACT_TITLE_BONUS
        return SearchResult(int(np.count_nonzero(mask)), self._rank(mask, scores, offset, limit), matched_all)

    def advanced(self, filters: Filters, sort: str = "relevance", order: str = "desc", limit: int = 20,
                 offset: int = 0) -> SearchResult:
        mask = np.ones(self.size, dtype=bool)
        scores = np.zeros(self.size, dtype=np.float32)
        for text, field_name in ((filters.title, "title"), (filters.author, "authors"), (filters.subject, "subjects")):
            if text:
                mask &= self._match_and_score(tokens_of(text), [field_name], True, scores)
        if filters.min_year is not None:
            mask &= (self.years != NO_YEAR) & (self.years >= filters.min_year)
        if filters.max_year is not None:
            mask &= (self.years != NO_YEAR) & (self.years <= filters.max_year)
        if filters.min_rating is not None:
            mask &= (self.rating_count > 0) & (self.avg_rating >= filters.min_rating)
        if filters.language:
            code = self.language_codes.get(filters.language.lower())
            mask &= (self.language == code) if code is not None else np.zeros(self.size, dtype=bool)
        if sort == "relevance":
            key = scores * (1 + PRIOR_STRENGTH * self.popularity) + self.popularity * 1e-3
        elif sort == "rating":
            key = self.avg_rating + self.popularity * 1e-4
        elif sort == "year":
            key = self.years.astype(np.float64)
        else:  # title: "asc" is A..Z
            key = self.title_rank.astype(np.float64)
        if order == "asc":
            key = -key
        if sort == "year":
            key[self.years == NO_YEAR] = -np.inf  # books without a year go last either way
        return SearchResult(int(mask.sum()), self._rank(mask, np.asarray(key, dtype=np.float64), offset, limit), True)

    def autocomplete(self, prefix: str, limit: int = 10) -> list[int]:
        """Positions of the books whose normalised title starts with `prefix`, most popular first."""
        normalised = normalise_text(prefix)
        if not normalised:
            return []
        lo = bisect.bisect_left(self.sorted_titles, normalised)
        hi = bisect.bisect_left(self.sorted_titles, normalised + "\uffff", lo)
        positions = self.sorted_positions[lo:hi]
        if len(positions) > limit:
            positions = positions[np.argpartition(self.autocomplete_rank[positions], limit - 1)[:limit]]
        return [int(p) for p in positions[np.argsort(self.autocomplete_rank[positions])]]


def autocomplete_order(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The autocomplete ranking over plain records (the GSI path and tests use it)."""
    def key(r: Mapping[str, Any]) -> tuple:
        count = int(r.get("rating_count", 0))
        average = np.float32(int(r.get("rating_sum", 0)) / count if count else 0.0)
        return (-count, -average, r.get("title_norm") or normalise_text(r.get("title", "")))
    return sorted(records, key=key)


@dataclass
class Catalogue:
    """The records the index was built from, keyed by book id, so a refresh can merge changes."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def merge(self, changed: Iterable[dict[str, Any]]) -> int:
        n = 0
        for record in changed:
            self.records[record["book_id"]] = record
            n += 1
        return n

    def build(self) -> SearchIndex:
        return SearchIndex(self.records.values())
