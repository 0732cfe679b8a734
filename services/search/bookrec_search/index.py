"""The in-memory search index: pure, no I/O.

Terms are as `bookrec_search.documents` describes.

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

Bounds: only the first 16 distinct query terms take part (a character pair
of an unspaced script is a term); later ones are ignored, reported in
`SearchResult.ignored`, and a query that has some never completes its last
word, which is then one of them. A term longer than 24 characters is matched
as typed: its deletion variants, the typo lookup's work, grow as its length
squared (a 500-character word cost 65 ms of CPU at 1M books), and the
neighbourhood keeps no two-deletion variants past 24 characters anyway. The
any-word fallback adds up its words' books rarest word first, up to a million
(the rarest always); the commoner words past that are left out of it and
reported as ignored too: sixteen words each in a third of a million books
would otherwise cost a scatter-add over five million postings. So a query
costs at most 16 words' lookups, each bounded as above.

In a book, t counts through its cheapest alternative present there (the
highest-scoring one among equally cheap ones). A book's tier is the sum of
those costs over the query words it has.

Scoring (the documented contract)
---------------------------------
For a document d and a term u, with field weights w_title = w_original = 3,
w_authors = 2, w_subjects = 1, k1 = 1.2, b = 0.75 and avg_f the average length
of field f (as last averaged, see Layout):

    s_f(u, d)    = w_f · tf·(k1 + 1) / (tf + k1·(1 − b + b·len_f(d) / avg_f))
    impact(u, d) = max(s_title, s_original) + s_authors + s_subjects
                   (title and original title are two names of the book: the better one counts)
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

Typo candidates come from a deletion neighbourhood (see `bookrec_search.lexicon`).

Layout
------
Per field, posting lists of term frequencies (for field filters); across
fields, posting lists of precomputed impacts (for full text, so a query word
costs one list, not three). Both are flat numpy arrays addressed by term
offsets. Display strings are packed in UTF-8 buffers; everything else is a
numpy column. Titles are kept in sorted order for prefix search by bisection;
the vocabulary too (completions), and as a deletion neighbourhood (corrections). ISBNs
are a sorted array of numbers beside the positions of their books.

An index is immutable. `updated()` returns a new one: deleted books are
compacted away (see `bookrec_search.refresh`); rating and other column
changes copy the affected columns; text changes also merge the changed
documents' postings into copies of the lists (average field lengths stay as
they were, which a small share of changes hardly moves; once the catalogue has
grown by a quarter they are taken afresh and every impact recomputed).

Modules
-------
`documents` (a record as indexed, terms, ISBNs), `building` (postings, impacts,
`IndexBuilder`), `lexicon` (completions, typo candidates, the ISBN map),
`matching` (each query word's alternatives and books), `filtering` (advanced
search's filters and sorts), `refresh` (`updated()`), `columns` (packed text,
posting lists), `facets`, `snapshot` (an index as bytes and back); this module
ranks and pages.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bookrec_common.catalog import normalise_text
from bookrec_search import filtering, refresh
from bookrec_search.building import FIELD_WEIGHTS, FIELDS, K1, B, IndexBuilder
from bookrec_search.columns import PostingLists, SortedTitles, TextColumn
from bookrec_search.documents import (
    NO_COVER,
    NO_YEAR,
    Document,
    book_summary,
    id_array,
    isbn13_of,
    names_of,
    query_terms,
    suggestion_key,
    tokens_of,
)
from bookrec_search.facets import FacetCount, FacetFilter, ValuePairs, allowed, count, decade_codes, decades_of
from bookrec_search.filtering import SORTS, Filters
from bookrec_search.lexicon import ABOVE_ANY_TEXT, IsbnMap, Lexicon
from bookrec_search.matching import MAX_QUERY_WORDS, alternatives, matched_terms, rarest_within, word_match

__all__ = [
    "BLOCK_TOP",
    "EXACT_TITLE_BONUS",
    "FIELDS",
    "FIELD_WEIGHTS",
    "K1",
    "PRIOR_RATINGS",
    "PRIOR_STRENGTH",
    "B",
    "Document",
    "FacetCount",
    "FacetFilter",
    "Filters",
    "Hit",
    "IndexBuilder",
    "SearchIndex",
    "SearchResult",
    "Suggestions",
    "book_summary",
    "isbn13_of",
    "query_terms",
    "suggestion_key",
    "tokens_of",
]

PRIOR_STRENGTH = 0.15
PRIOR_RATINGS = 10.0
EXACT_TITLE_BONUS = 10.0
DENSE_PROBE_SHARE = 32  # probe a list through a dense map once candidates exceed 1/32 of the documents
SAMPLED_CUT_MIN, SAMPLED_CUT_RATIO, SAMPLE_SIZE = 50_000, 8, 4096  # when and how a top-k cut is sampled
SUGGESTION_BLOCK, BLOCK_TOP = 1024, 50  # BLOCK_TOP bounds the autocomplete limit served from block tops
TIER_STEP = 1e7  # above any text score: tiers rank first
ISBN_BONUS = 10.0
ISBN_TIER = -1  # a book found by ISBN ranks above every text match


PostingList = tuple[np.ndarray, np.ndarray]  # ascending document numbers, one value each


@dataclass(frozen=True, slots=True)
class Hit:
    """A ranked book. `score` is its text score (see Scoring); `shown_score` is what clients see: the
    score, but never above that of a hit ranked before it, since a better tier (fewer corrections) can
    hold a lower text score and a ranked list reads best with scores that never rise."""

    position: int
    score: float
    shown_score: float


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of hits and what the query matched.

    `terms`: per query word, the index terms it matched in the matching books (exact, completed
    or corrected), best first. `corrections`: the query words matched only through corrections,
    and the terms they were corrected to. `matches`: every matching position (ascending), before
    the page is cut; filled only when asked for (`with_matches=True`). `ignored`: the query's words
    past the first MAX_QUERY_WORDS, which did not take part.
    """

    total: int
    hits: list[Hit]
    matched_all_words: bool = True
    terms: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    corrections: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    matches: np.ndarray | None = None
    ignored: list[str] = dataclasses.field(default_factory=list)  # query words past MAX_QUERY_WORDS


@dataclass(frozen=True, slots=True)
class Suggestions:
    total: int
    positions: list[int]


class SearchIndex:
    """Immutable once built: search, advanced search and autocomplete, and `updated()` for refreshes."""

    def __init__(self, *, book_ids: np.ndarray, id_order: np.ndarray, titles: TextColumn,
                 title_norms: TextColumn, authors: TextColumn, signatures: np.ndarray, years: np.ndarray,
                 languages: tuple[str, ...], language: np.ndarray, cover_ids: np.ndarray,
                 rating_count: np.ndarray, rating_sum: np.ndarray, vocabulary: dict[str, int],
                 fields: tuple[PostingLists, ...], lengths: tuple[np.ndarray, ...],
                 average_lengths: tuple[float, ...], averaged_size: int, combined: PostingLists,
                 title_order: np.ndarray, lexicon: Lexicon | None = None,
                 original_titles: dict[int, str] | None = None, isbns: IsbnMap | None = None,
                 author_values: ValuePairs | None = None, subject_values: ValuePairs | None = None) -> None:
        self.book_ids, self.id_order = book_ids, id_order
        self.lexicon = lexicon or Lexicon.of(vocabulary)
        self.original_titles = original_titles or {}  # position -> normalised original title
        self._by_original_title: dict[str, list[int]] = {}
        for position, original in self.original_titles.items():
            self._by_original_title.setdefault(original, []).append(position)
        self.isbns = isbns or IsbnMap(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32))
        self.author_values = author_values or ValuePairs.of(())  # facets: (book, value) pairs
        self.subject_values = subject_values or ValuePairs.of(())
        self.titles, self.title_norms, self.authors = titles, title_norms, authors
        self.signatures, self.years, self.cover_ids = signatures, years, cover_ids
        self.languages, self.language = languages, language
        self.language_codes = {code.lower(): i for i, code in enumerate(languages)}
        self.decades = decade_codes(decades_of(years, NO_YEAR))  # codes: see facets.decade_codes
        self.rating_count, self.rating_sum = rating_count, rating_sum
        self.vocabulary, self.fields, self.lengths = vocabulary, fields, lengths
        # The average field lengths of BM25, and how many books they were taken over.
        self.average_lengths, self.averaged_size, self.combined = average_lengths, averaged_size, combined
        self.title_order = title_order
        self.size = len(book_ids)
        self.title_rank = np.empty(self.size, dtype=np.int32)
        self.title_rank[title_order] = np.arange(self.size, dtype=np.int32)
        self._sorted_titles = SortedTitles(title_order, title_norms)
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
                "authors": names_of(names),
                "first_publish_year": None if year == NO_YEAR else year,
                "avg_rating": round(float(self.avg_rating[position]), 4),
                "rating_count": int(self.rating_count[position]),
                "cover_id": None if cover == NO_COVER else cover}

    def position_of(self, book_id: str) -> int | None:
        found = self.positions(id_array([book_id]))[0]
        return None if found < 0 else int(found)

    def positions(self, ids: np.ndarray) -> np.ndarray:
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
        (ascending positions, as `SearchResult.matches` gives them), most first; estimated from a sample past
        `facets.SAMPLED_ABOVE` matches (`facets.exhaustive`)."""
        return count(matches, self.size, self.author_values, self.subject_values, self.decades, self.language,
                     self.languages, limit)

    def _passing(self, facet_filter: FacetFilter | None,
                 positions: np.ndarray | None = None) -> np.ndarray | None:
        """Which of `positions` (every book when None) pass `facet_filter`; None when it asks for nothing."""
        if not facet_filter:
            return None
        return allowed(facet_filter, self.size, self.author_values, self.subject_values, self.decades,
                       self.language, self.language_codes, positions)

    # ---- matching --------------------------------------------------------------------------------
    def idf(self, document_frequency: int) -> float:
        return math.log(1 + (self.size - document_frequency + 0.5) / (document_frequency + 0.5))

    def intersection(self, lists: Sequence[PostingList]) -> tuple[np.ndarray, list[np.ndarray]]:
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
            present, at = self.probe(lists[j][0], candidates)
            candidates = candidates[present]
            where = {k: v[present] for k, v in where.items()}
            where[j] = at[present]
        return candidates, [where[j] for j in range(len(lists))]

    def probe(self, docs: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
        ranked = ranked[:wanted]
        capped = np.minimum.accumulate(shown[ranked]) if len(ranked) else shown[ranked]
        return [Hit(int(candidates[i]), float(shown[i]), float(c))
                for i, c in zip(ranked[offset:], capped[offset:], strict=True)]

    # ---- queries ---------------------------------------------------------------------------------
    def search(self, query: str, limit: int = 20, offset: int = 0, *, with_matches: bool = False,
               facet_filter: FacetFilter | None = None) -> SearchResult:
        """Full text over title, authors and subjects (see the module docstring for matching and score).

        With `facet_filter`, only books passing it match (the all-words rule applies among them).
        """
        normalised = normalise_text(query)
        words = query_terms(query)
        completes = bool(words) and bool(normalise_text(query[-1:]))  # no prefix once a space ends the query
        words, ignored = words[:MAX_QUERY_WORDS], words[MAX_QUERY_WORDS:]
        completes = completes and not ignored  # the word being typed is one of those ignored
        options = [alternatives(self, w, completes and i == len(words) - 1) for i, w in enumerate(words)]
        whole: dict[int, Any] = {}  # word -> its match over every book, merged once however often needed

        def whole_matches() -> list[Any]:
            for i, (w, o) in enumerate(zip(words, options, strict=True)):
                if i not in whole:
                    whole[i] = word_match(self, w, o)
            return [whole[i] for i in range(len(words))]

        within = None
        if all(options) and len(options) > 1 and any(len(o) > 1 for o in options):
            singles = [self.combined.get(o[0].term_id) for o in options if len(o) == 1]
            if singles:  # words of one term narrow the books first; the others are merged only there
                within, _ = self.intersection(singles)
            else:  # else the word in fewest books is merged whole and narrows the others
                first = min(range(len(options)), key=lambda i: sum(a.books for a in options[i]))
                whole[first] = word_match(self, words[first], options[first])
                within = whole[first].docs
        matches = [whole[i] if i in whole else word_match(self, w, o, within)
                   for i, (w, o) in enumerate(zip(words, options, strict=True))]
        if within is not None and not all(len(m.docs) for m in matches):
            matches = whole_matches()  # the any-word fallback
        present = [m for m in matches if len(m.docs)]
        candidates = np.empty(0, dtype=np.int32)
        score = np.empty(0, dtype=np.float32)
        tier = np.empty(0, dtype=np.int32)
        where: list[Any] = []
        if present and len(present) == len(matches):
            candidates, where = self.intersection([(m.docs, m.values) for m in matches])
            keep = self._passing(facet_filter, candidates)
            if keep is not None:
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
            matches = whole_matches()
            present = [m for m in matches if len(m.docs)]
        if not matched_all and present:
            kept = rarest_within(present)
            ignored += [m.word for m, k in zip(present, kept, strict=True) if not k]
            present = [m for m, k in zip(present, kept, strict=True) if k]  # in query order: sums as before
            accumulated = np.zeros(self.size, dtype=np.float32)
            costs = None  # only words matched through a completion or correction add to a book's tier
            for m in present:
                docs = m.docs.astype(np.intp)
                # add.at with intp indices is numpy's fastest scatter-add; scores are all > 0
                np.add.at(accumulated, docs, np.float32(m.weight) * m.values)
                if isinstance(m.cost, np.ndarray) or m.cost:
                    costs = np.zeros(self.size, dtype=np.int32) if costs is None else costs
                    costs[docs] += m.cost
            candidates = np.flatnonzero(accumulated > 0)  # through a bool mask: several times faster
            keep = self._passing(facet_filter, candidates)
            if keep is not None:
                candidates = candidates[keep]
            score = accumulated[candidates] * self.prior_factor[candidates]
            tier = np.zeros(len(candidates), dtype=np.int32) if costs is None else costs[candidates]
            matches, where = present, [m.docs for m in present]
        if len(candidates):
            exact = [self.title_order[slice(*self._title_span(normalised, exact=True))],
                     np.array(self._by_original_title.get(normalised, ()), dtype=np.int32)]
            exact_titles = np.unique(np.concatenate(exact))  # ascending: searchsorted walks forward
            at = np.minimum(np.searchsorted(candidates, exact_titles), len(candidates) - 1)
            score[at[candidates[at] == exact_titles]] += EXACT_TITLE_BONUS
        terms, corrections = matched_terms(matches, where, matched_all)
        isbn = isbn13_of(query)
        found = self.isbns.find(int(isbn)) if isbn else np.empty(0, dtype=np.int32)
        keep = self._passing(facet_filter, found) if len(found) else None
        if keep is not None:
            found = found[keep]
        if len(found):
            candidates, score, tier = self._with_isbn_hits(found, candidates, score, tier)
            matched_all = True
        return SearchResult(len(candidates), self._top(candidates, score, offset, limit, tier), matched_all,
                            terms, corrections, candidates if with_matches else None, ignored)

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

    def advanced(self, filters: Filters, sort: str = "relevance", order: str = "desc", limit: int = 20,
                 offset: int = 0, *, with_matches: bool = False,
                 facet_filter: FacetFilter | None = None) -> SearchResult:
        """Every given filter applies, `facet_filter` too; sorted by `sort` (relevance, rating, year, title)
        in `order`.

        Books without a year (year sort) or without ratings (rating sort) come last in either order.
        """
        if sort not in SORTS or order not in ("asc", "desc"):
            raise ValueError(f"unknown sort {sort!r} {order!r}")
        selected = filtering.field_text(self, filters)
        if selected is None:
            return SearchResult(0, [], matches=np.empty(0, dtype=np.int32) if with_matches else None)
        candidates, text, matched_words = selected
        keep = filtering.column_mask(self, filters, candidates)
        passing = self._passing(facet_filter, candidates)
        if passing is not None:
            keep = passing if keep is None else keep & passing
        if keep is not None:
            if candidates is None:
                candidates = np.flatnonzero(keep)
            else:
                candidates, text = candidates[keep], None if text is None else text[keep]
        if candidates is None:
            candidates = np.arange(self.size)
        key = filtering.sort_key(self, sort, order, candidates, text)
        return SearchResult(len(candidates), self._top(candidates, key, offset, limit), True,
                            terms={w: [w] for w in matched_words},
                            matches=candidates if with_matches else None)

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
    def updated(self, records: Iterable[Mapping[str, Any]], deleted: Iterable[str] = ()) -> SearchIndex:
        """This index with the given records added or replaced (by book id) and the `deleted` book ids gone
        (unknown ids ignored; an id in both is deleted); `self` when nothing differs."""
        return refresh.updated(self, records, deleted)
