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
    """term -> sorted document numbers and term frequencies, in three flat arrays."""

    def __init__(self, per_document_tokens: Sequence[list[str]]) -> None:
        counts: dict[str, dict[int, int]] = {}
        lengths = np.zeros(len(per_document_tokens), dtype=np.float32)
        for doc, tokens in enumerate(per_document_tokens):
            lengths[doc] = len(tokens)
            for token in tokens:
                bucket = counts.setdefault(token, {})
                bucket[doc] = bucket.get(doc, 0) + 1
        self.terms = {term: i for i, term in enumerate(counts)}
        sizes = np.fromiter((len(d) for d in counts.values()), dtype=np.int64, count=len(counts))
        self.offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.offsets[1:])
        self.docs = np.empty(int(self.offsets[-1]), dtype=np.int32)
        self.freqs = np.empty(int(self.offsets[-1]), dtype=np.float32)
        for i, per_doc in enumerate(counts.values()):
            start = self.offsets[i]
            self.docs[start:start + len(per_doc)] = np.fromiter(per_doc.keys(), dtype=np.int32, count=len(per_doc))
            self.freqs[start:start + len(per_doc)] = np.fromiter(per_doc.values(), dtype=np.float32,
                                                                  count=len(per_doc))
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


def tokens_of(text: str) -> list[str]:
    return normalise_text(text).split()


class SearchIndex:
    """Built once from book records, then read-only: a refresh builds a new one and swaps it in."""

    def __init__(self, books: Iterable[Mapping[str, Any]], prior_weight: float = 10.0) -> None:
        records = list(books)
        self.size = len(records)
        self.book_ids = [r["book_id"] for r in records]
        self.titles = [r.get("title", "") for r in records]
        self.authors = [[a.get("name", "") for a in r.get("authors", []) if isinstance(a, Mapping)] for r in records]
        self.cover_ids = [r.get("cover_id") for r in records]
        self.title_norm = [r.get("title_norm") or normalise_text(r.get("title", "")) for r in records]
        self.years = np.array([r["first_publish_year"] if isinstance(r.get("first_publish_year"), int) else NO_YEAR
                               for r in records], dtype=np.int32)
        self.rating_count = np.array([int(r.get("rating_count", 0)) for r in records], dtype=np.int64)
        self.rating_sum = np.array([int(r.get("rating_sum", 0)) for r in records], dtype=np.int64)
        self.avg_rating = np.where(self.rating_count > 0, self.rating_sum / np.maximum(self.rating_count, 1),
                                   0.0).astype(np.float32)
        languages = [r.get("language") or "" for r in records]
        self.language_codes = {code: i for i, code in enumerate(sorted(set(languages)))}
        self.language = np.array([self.language_codes[code] for code in languages], dtype=np.int16)
        rated = self.rating_count > 0
        mean = float(self.rating_sum[rated].sum() / self.rating_count[rated].sum()) if rated.any() else 3.0
        bayes = (self.rating_sum + prior_weight * mean) / (self.rating_count + prior_weight)
        self.popularity = (np.log1p(self.rating_count) * bayes / 5.0).astype(np.float32)
        self.fields = {
            "title": Postings([tokens_of(r.get("title", "")) + tokens_of(r.get("subtitle") or "") for r in records]),
            "authors": Postings([[t for a in names for t in tokens_of(a)] for names in self.authors]),
            "subjects": Postings([[t for s in r.get("subjects", []) for t in tokens_of(s)] for r in records]),
        }
        # Autocomplete: most rated first, then best average, then A..Z (the same order as the GSI path).
        self.autocomplete_rank = np.empty(self.size, dtype=np.int32)
        self.autocomplete_rank[np.lexsort((np.array(self.title_norm, dtype=object).astype(str)
                                           if self.size else np.empty(0, dtype=str),
                                           -self.avg_rating, -self.rating_count))] = np.arange(self.size)
        # Normalised titles in sorted order, with the document behind each.
        order = sorted(range(self.size), key=self.title_norm.__getitem__)
        self.sorted_titles = [self.title_norm[i] for i in order]
        self.sorted_positions = np.array(order, dtype=np.int32)
        self.title_rank = np.empty(self.size, dtype=np.int32)
        self.title_rank[self.sorted_positions] = np.arange(self.size, dtype=np.int32)
        self.position = {b: i for i, b in enumerate(self.book_ids)}

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

    def _term_docs(self, term: str, fields: Sequence[str]) -> np.ndarray:
        parts = [self.fields[f].get(term)[0] for f in fields]
        parts = [p for p in parts if len(p)]
        if not parts:
            return np.empty(0, dtype=np.int32)
        return parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))

    def _text_scores(self, terms: Sequence[str], fields: Sequence[str], scores: np.ndarray) -> None:
        for term in terms:
            df = len(self._term_docs(term, fields))
            if not df:
                continue
            idf = self._idf(df)
            for name in fields:
                postings = self.fields[name]
                docs, freqs = postings.get(term)
                if not len(docs):
                    continue
                norm = K1 * (1 - B + B * postings.lengths[docs] / max(postings.average_length, 1e-9))
                scores[docs] += idf * FIELD_WEIGHTS[name] * freqs * (K1 + 1) / (freqs + norm)

    def _matching(self, terms: Sequence[str], fields: Sequence[str], all_words: bool) -> np.ndarray:
        """Boolean mask of documents containing all (or any) of the terms."""
        hits = np.zeros(self.size, dtype=np.int16)
        for term in dict.fromkeys(terms):
            hits[self._term_docs(term, fields)] += 1
        return hits >= len(set(terms)) if all_words else hits > 0

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
        mask = self._matching(terms, fields, all_words=True)
        matched_all = bool(mask.any())
        if not matched_all:
            mask = self._matching(terms, fields, all_words=False)
        scores = np.zeros(self.size, dtype=np.float32)
        self._text_scores(terms, fields, scores)
        scores *= 1 + PRIOR_STRENGTH * self.popularity
        normalised = " ".join(terms)
        exact = np.flatnonzero(mask)
        if len(exact) and normalised:
            for position in exact[np.fromiter((self.title_norm[p] == normalised for p in exact), dtype=bool,
                                              count=len(exact))]:
                scores[position] += EXACT_TITLE_BONUS
        return SearchResult(int(mask.sum()), self._rank(mask, scores, offset, limit), matched_all)

    def advanced(self, filters: Filters, sort: str = "relevance", order: str = "desc", limit: int = 20,
                 offset: int = 0) -> SearchResult:
        mask = np.ones(self.size, dtype=bool)
        scores = np.zeros(self.size, dtype=np.float32)
        for text, field_name in ((filters.title, "title"), (filters.author, "authors"), (filters.subject, "subjects")):
            if text:
                terms = tokens_of(text)
                mask &= self._matching(terms, [field_name], all_words=True)
                self._text_scores(terms, [field_name], scores)
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
