"""The search index: full text, advanced search and autocomplete over an index's parts. Pure, no I/O.

What a query matches, how books score and rank, and what one query may cost are specified in
services/search/README.md (Scoring specification); the constants and formulas are `scoring`'s, each
query word's alternatives `matching`'s. This module ranks and pages, over `IndexParts` and the columns
derived from them; the helpers it calls take those, never a `SearchIndex`.
"""

from __future__ import annotations

import bisect
import dataclasses
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bookrec_catalog.catalog import average, normalise_text
from bookrec_search import filtering, heads, kernels, ranking, refresh
from bookrec_search.bitmaps import Bitmaps
from bookrec_search.building import IndexBuilder
from bookrec_search.columns import SortedTitles, intersection
from bookrec_search.documents import (
    NO_YEAR,
    id_array,
    isbn13_of,
    names_of,
    query_terms,
    series_summary,
)
from bookrec_search.facets import FacetCount, FacetFilter, allowed, count
from bookrec_search.filtering import SORTS, Filters
from bookrec_search.lexicon import ABOVE_ANY_TEXT
from bookrec_search.matching import (
    MAX_QUERY_WORDS,
    WordMatch,
    alternatives,
    matched_terms,
    merged,
    rarest_within,
    word_match,
)
from bookrec_search.parts import IndexParts
from bookrec_search.ranking import ExactTitles, Hit
from bookrec_search.scoring import EXACT_TITLE_BONUS, ISBN_BONUS
from bookrec_search.serving import BLOCK_TOP, SUGGESTION_BLOCK, Serving

ISBN_TIER = -1  # a book found by ISBN ranks above every text match


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

    def __init__(self, parts: IndexParts, serving: Serving | None = None) -> None:
        """`serving`: what is derived from `parts` for queries, when a refresh carried it over (`updated`)."""
        self.parts = parts
        self.size = parts.size
        self.serving = serving = serving or Serving.of(parts)
        self.derived = serving.derived
        self._by_original_title = serving.by_original_title
        self._sorted_titles = SortedTitles(parts.title_order, parts.title_norms)
        self.suggestion_rank = serving.suggestion_rank
        self.block_tops = serving.block_tops  # per block of SUGGESTION_BLOCK titles, its BLOCK_TOP best
        self.heads = heads.Heads(parts.combined, self.derived.prior_factor, self.derived.mean_rating)
        self.bitmaps = Bitmaps(parts.combined, self.size)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]],
                     average_lengths: Sequence[float] | None = None) -> SearchIndex:
        return cls(IndexBuilder(average_lengths).add_all(records).build())

    # ---- what a hit shows ----------------------------------------------------------------------
    def book(self, position: int) -> dict[str, Any]:
        """The book summary fields of the document at `position` (score excluded)."""
        parts = self.parts
        year, cover = int(parts.years[position]), int(parts.cover_ids[position])
        return {"book_id": parts.book_ids[position].decode(), "title": parts.titles[position],
                "authors": names_of(parts.authors[position]),
                "first_publish_year": None if year == NO_YEAR else year,
                "avg_rating": average(int(parts.rating_sum[position]), int(parts.rating_count[position])),
                "rating_count": int(parts.rating_count[position]),
                "cover_id": None if cover < 0 else cover,
                "series": series_summary(parts.series[position], float(parts.series_positions[position]))}

    def position_of(self, book_id: str) -> int | None:
        found = self.parts.positions(id_array([book_id]))[0]
        return None if found < 0 else int(found)

    # ---- figures ---------------------------------------------------------------------------------
    @property
    def terms(self) -> int:
        """Distinct words in use (the vocabulary also keeps words that text edits left without a book)."""
        return int(np.count_nonzero(np.diff(self.parts.combined.offsets)))

    @property
    def nbytes(self) -> int:
        p = self.parts
        arrays = (p.book_ids, p.id_order, p.signatures, p.years, p.language, p.cover_ids, p.rating_count,
                  p.rating_sum, p.series_positions, *p.lengths, p.title_order, self.suggestion_rank,
                  self.block_tops, self.serving.suggestion_order)
        vocabulary = sys.getsizeof(p.vocabulary) + sum(sys.getsizeof(t) for t in p.vocabulary)
        return (sum(a.nbytes for a in arrays) + sum(f.nbytes for f in (*p.fields, p.combined))
                + self.derived.nbytes + p.titles.nbytes + p.title_norms.nbytes + p.authors.nbytes
                + p.series.nbytes + vocabulary
                + p.lexicon.nbytes + p.isbns.nbytes + p.author_values.nbytes + p.subject_values.nbytes)

    # ---- facets ----------------------------------------------------------------------------------
    def facets(self, matches: np.ndarray, limit: int = 10) -> dict[str, list[FacetCount]]:
        """Per facet (authors, subjects, decade, language), the `limit` values most common among `matches`
        (ascending positions, as `SearchResult.matches` gives them), most first; estimated from a sample past
        `facets.SAMPLED_ABOVE` matches (`facets.exhaustive`)."""
        p = self.parts
        return count(matches, self.size, p.author_values, p.subject_values, self.derived.decades, p.language,
                     p.languages, limit)

    def _passing(self, facet_filter: FacetFilter | None,
                 positions: np.ndarray | None = None) -> np.ndarray | None:
        """Which of `positions` (every book when None) pass `facet_filter`; None when it asks for nothing."""
        if not facet_filter:
            return None
        p = self.parts
        return allowed(facet_filter, self.size, p.author_values, p.subject_values, self.derived.decades,
                       p.language, self.derived.language_codes, positions)

    # ---- ranking ---------------------------------------------------------------------------------
    def _title_span(self, normalised: str, exact: bool = False) -> tuple[int, int]:
        lo = bisect.bisect_left(self._sorted_titles, normalised)
        if exact:
            return lo, bisect.bisect_right(self._sorted_titles, normalised, lo)
        return lo, bisect.bisect_left(self._sorted_titles, normalised + ABOVE_ANY_TEXT, lo)

    def _page(self, candidates: np.ndarray, key: np.ndarray, offset: int, limit: int,
              tier: np.ndarray | None = None) -> list[Hit]:
        return ranking.page(candidates, key, offset, limit, self.derived.popularity, self.derived.title_rank, tier)

    # ---- queries ---------------------------------------------------------------------------------
    def search(self, query: str, limit: int = 20, offset: int = 0, *, with_matches: bool = False,
               facet_filter: FacetFilter | None = None) -> SearchResult:
        """Full text over title, authors and subjects (matching and score: the README's specification).

        With `facet_filter`, only books passing it match (the all-words rule applies among them).
        """
        normalised = normalise_text(query)
        words = query_terms(query)
        completes = bool(words) and bool(normalise_text(query[-1:]))  # no prefix once a space ends the query
        words, ignored = words[:MAX_QUERY_WORDS], words[MAX_QUERY_WORDS:]
        completes = completes and not ignored  # the word being typed is one of those ignored
        options = [alternatives(self.parts, w, completes and i == len(words) - 1)
                   for i, w in enumerate(words)]
        if not facet_filter and not isbn13_of(query):
            one_term = self._one_term_page(normalised, words, options, ignored, offset, limit, with_matches)
            if one_term is not None:
                return one_term
            if not with_matches:
                every_term = self._every_term_page(normalised, words, options, ignored, offset, limit)
                if every_term is not None:
                    return every_term
        whole: dict[int, WordMatch] = {}  # word -> its match over every book, merged at most once

        def whole_match(i: int) -> WordMatch:
            if i not in whole:
                whole[i] = word_match(self.parts, words[i], options[i])
            return whole[i]

        postings = [sum(a.books for a in o) for o in options]  # each word's: its alternatives' books
        within = None
        if all(options) and len(options) > 1 and any(len(o) > 1 for o in options):
            ones = [o[0] for o in options if len(o) == 1]
            first = min(range(len(options)), key=postings.__getitem__)
            if ones and postings[first] >= min(a.books for a in ones):
                # Words of one term narrow the books first; the others are merged only there.
                within, _ = intersection([self.parts.combined.get(a.term_id) for a in ones], self.size,
                                         [self._probe(a.term_id) for a in ones])
            else:  # else the word of fewest postings (its alternatives') is merged whole and narrows the others
                whole[first] = word_match(self.parts, words[first], options[first])
                within = whole[first].docs
        matches: list[WordMatch] = []  # a word matching no book leaves only an any-word answer possible
        if all(options):
            matches = [whole[i] if i in whole else word_match(self.parts, w, o, within, self._probe)
                       for i, (w, o) in enumerate(zip(words, options, strict=True))]
            if within is None:
                whole.update(enumerate(matches))
        present = [m for m in matches if len(m.docs)]
        candidates: np.ndarray = np.empty(0, dtype=np.int32)
        score = np.empty(0, dtype=np.float32)
        tier = np.empty(0, dtype=np.int32)
        where: list[Any] = []
        if present and len(present) == len(matches):
            candidates, where = intersection([(m.docs, m.values) for m in matches], self.size,
                                             [self._probe(m.alternatives[0].term_id) if m.choice is None
                                              and len(m.docs) == m.alternatives[0].books else None
                                              for m in matches])
            keep = self._passing(facet_filter, candidates)
            if keep is not None:
                candidates = candidates[keep]
                kept = np.flatnonzero(keep)
                where = [kept if isinstance(at, slice) else at[keep] for at in where]
            text = np.zeros(len(candidates), dtype=np.float32)
            tier = np.zeros(len(candidates), dtype=np.int32)
            for m, at in zip(matches, where, strict=True):
                text += np.float32(m.weight) * m.values[at]
                tier += m.cost[at] if isinstance(m.cost, np.ndarray) else m.cost
            score = text * self.derived.prior_factor[candidates]
        matched_all = len(candidates) > 0
        if not matched_all:
            # The any-word fallback, over every book. Each word's postings are counted before any word is
            # merged whole: the commonest words it leaves out are never merged.
            at = [i for i, n in enumerate(postings) if n]
            added_up = rarest_within([postings[i] for i in at])
            ignored += [words[i] for i, k in zip(at, added_up, strict=True) if not k]
            present = [whole_match(i) for i, k in zip(at, added_up, strict=True) if k]  # in query order
        if not matched_all and present:
            # Each book's words added up (only words matched through a completion or correction add to its tier).
            candidates, text, tier, _ = merged([(m.docs, m.values) for m in present], [m.weight for m in present],
                                               [m.cost for m in present], kernels.SUMMED, self.size)
            keep = self._passing(facet_filter, candidates)
            if keep is not None:
                candidates, text, tier = candidates[keep], text[keep], tier[keep]
            score = text * self.derived.prior_factor[candidates]
            matches, where = present, [m.docs for m in present]
        if len(candidates):
            score[self._exact_titles(normalised).bonus_mask(candidates)] += EXACT_TITLE_BONUS
        terms, corrections = matched_terms(matches, where, matched_all)
        isbn = isbn13_of(query)
        found = self.parts.isbns.find(int(isbn)) if isbn else np.empty(0, dtype=np.int32)
        keep = self._passing(facet_filter, found) if len(found) else None
        if keep is not None:
            found = found[keep]
        if len(found):
            candidates, score, tier = self._with_isbn_hits(found, candidates, score, tier)
            matched_all = True
        return SearchResult(len(candidates), self._page(candidates, score, offset, limit, tier), matched_all,
                            terms, corrections, candidates if with_matches else None, ignored)

    def _probe(self, term: int) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
        """A quicker way to look books up in a common term's whole list (`bitmaps`), if it has one."""
        bitmap = self.bitmaps.of(term)
        return None if bitmap is None else bitmap.probe

    def _exact_titles(self, normalised: str) -> ExactTitles:
        """The books whose normalised title or original title is `normalised`."""
        lo, hi = self._title_span(normalised, exact=True)
        originals = np.unique(np.array(self._by_original_title.get(normalised, ()), dtype=np.int32))
        return ExactTitles(lo, hi, originals, self.parts.title_order, self.derived.title_rank)

    def _one_term_page(self, normalised: str, words: list[str], options: list[list[Any]], ignored: list[str],
                       offset: int, limit: int, with_matches: bool) -> SearchResult | None:
        """A query whose books all come through one term (a common word alone, or the only word with books)
        ranked from that term's head (`heads`) when it vouches for the page; None: rank them all."""
        present = [(w, o) for w, o in zip(words, options, strict=True) if o]
        if len(present) != 1 or len(present[0][1]) != 1:
            return None
        word, (term,) = present[0]
        head = self.heads.of(term.term_id, offset + limit)
        if head is None:
            return None
        docs, impacts = self.parts.combined.get(term.term_id)
        page = heads.page_from_head(head, self.heads.mean, docs, impacts, self.derived.prior_factor,
                                    np.float32(term.weight), offset + limit, self._exact_titles(normalised),
                                    EXACT_TITLE_BONUS)
        if page is None:
            return None
        matched_all = all(options)
        terms, corrections = matched_terms([word_match(self.parts, word, [term])], [docs], matched_all)
        return SearchResult(term.books, self._page(*page, offset, limit), matched_all, terms, corrections,
                            docs if with_matches else None, ignored)

    def _every_term_page(self, normalised: str, words: list[str], options: list[list[Any]], ignored: list[str],
                         offset: int, limit: int) -> SearchResult | None:
        """A query of several words, each one term with a head ("of the"), ranked from their heads
        (`heads.page_from_heads`), first as deep as the page, then as deep as heads go; its total counted from
        the terms' bitmaps when each has one. None: rank every book that has them all."""
        if len(words) < 2 or any(len(o) != 1 for o in options):
            return None
        wanted = offset + limit
        lists = [self.parts.combined.get(o[0].term_id) for o in options]
        bitmaps = [self.bitmaps.of(o[0].term_id) for o in options]
        probes = [None if b is None else b.probe for b in bitmaps]
        exact = self._exact_titles(normalised)
        page, smallest = None, min(o[0].books for o in options)
        for depth in dict.fromkeys((wanted, heads.MAX_HEAD_SIZE // 2)):
            if len(options) * heads.size_for(depth) >= smallest:
                break  # its heads hold as many books as ranking every book that has each word would score
            head_terms = []
            for (docs, impacts), (term,), probe in zip(lists, options, probes, strict=True):
                head = self.heads.of(term.term_id, depth)
                if head is None:
                    return None
                head_terms.append(heads.HeadTerm(head, docs, impacts, np.float32(term.weight), probe))
            page = heads.page_from_heads(head_terms, self.heads.mean, self.derived.prior_factor, wanted, exact,
                                         EXACT_TITLE_BONUS)
            if page is not None:
                break
        if page is None:
            return None
        if all(bitmaps):
            total = int(np.bitwise_count(np.bitwise_and.reduce([b.bits for b in bitmaps if b])).sum())
        else:
            total = len(intersection(lists, self.size, probes)[0])
        terms, corrections = matched_terms([word_match(self.parts, w, o) for w, o in zip(words, options, strict=True)],
                                           [slice(None)] * len(words), True)
        return SearchResult(total, self._page(*page, offset, limit), True, terms, corrections, None, ignored)

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
        selected = filtering.field_text(self.parts, filters)
        if selected is None:
            return SearchResult(0, [], matches=np.empty(0, dtype=np.int32) if with_matches else None)
        candidates, text, matched_words = selected
        column = filtering.sorted_by(self.parts, self.derived, sort, text)
        values: np.ndarray | None = None  # the candidates' values in `column`, when taken already
        if candidates is None:
            passed = filtering.books_passing(self.parts, self.derived, filters, column)
            if passed is not None:
                candidates, values = passed
        else:
            keep = filtering.column_mask(self.parts, self.derived, filters, candidates)
            if keep is not None:
                candidates, text = candidates[keep], None if text is None else text[keep]
        passing = self._passing(facet_filter, candidates)
        if passing is not None:
            if candidates is None:
                candidates = np.flatnonzero(passing)
            else:
                candidates, text = candidates[passing], None if text is None else text[passing]
                values = None if values is None else values[passing]
        if candidates is None:
            candidates = np.arange(self.size)
        key = filtering.sort_key(sort, order, column[candidates] if values is None else values, text)
        return SearchResult(len(candidates), self._page(candidates, key, offset, limit), True,
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
            title_order = self.parts.title_order
            positions = np.concatenate([title_order[lo:first * SUGGESTION_BLOCK], inner[inner >= 0],
                                        title_order[last * SUGGESTION_BLOCK:hi]])
        else:
            positions = self.parts.title_order[lo:hi]
        if len(positions) > limit:
            positions = positions[np.argpartition(self.suggestion_rank[positions], limit - 1)[:limit]]
        return Suggestions(hi - lo, [int(p) for p in positions[np.argsort(self.suggestion_rank[positions])]])

    def warmed(self) -> SearchIndex:
        """This index with the heads and bitmaps of its commonest terms taken now, as a replica does before it
        serves a new artifact, so that no query pays for them (a refresh carries them on), and the compiled
        loops compiled."""
        self.heads.warm()
        self.bitmaps.warm()
        kernels.compile_all()
        return self

    # ---- refresh -----------------------------------------------------------------------------------
    def updated(self, records: Iterable[Mapping[str, Any]], deleted: Iterable[str] = ()) -> SearchIndex:
        """This index with the given records added or replaced (by book id) and the `deleted` book ids gone
        (unknown ids ignored; an id in both is deleted); `self` when nothing differs."""
        index = self
        for step in refresh.steps(self.parts, records, deleted):  # each step's derived columns patched
            following = SearchIndex(step.parts, Serving.refreshed(index.serving, index.parts, step))
            given = np.concatenate([step.changed, np.arange(step.parts.size - step.added, step.parts.size)])
            following.bitmaps = index.bitmaps.for_(step.parts.combined, step.parts.size,
                                                   None if step.removed is not None else given)
            if step.parts.average_lengths == index.parts.average_lengths:  # else every impact changed
                following.heads = index.heads.carried(step.parts.combined, following.derived.prior_factor,
                                                      following.heads.mean, step.removed, given)
            index = following
        return index
