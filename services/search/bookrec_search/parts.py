"""What a search index is made of, as plain arrays and tables: pure, no I/O.

`IndexParts` is the state itself: what `building.IndexBuilder` builds, `refresh.updated` changes and an
artifact carries (`artifact.dump` / `load`). `Derived` holds the per-book columns recomputed from it on
every change (cheap and vectorised), which queries read besides. The helpers (`matching`, `filtering`,
`refresh`, `facets`) take these, never the `SearchIndex` that calls them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bookrec_search.columns import PostingLists
from bookrec_search.documents import NO_YEAR
from bookrec_search.facets import ValuePairs, decade_codes, decades_of
from bookrec_search.lexicon import IsbnMap, Lexicon
from bookrec_search.scoring import average_ratings, float32_at_or_below, mean_rating, rating_columns, rating_totals
from bookrec_search.texts import TextColumn


@dataclass(frozen=True, slots=True, eq=False)
class IndexParts:
    """The index's state, immutable: a change makes new parts sharing what it left alone.

    Per book (at its position): `book_ids` (bytes; `id_order` sorts them), display text (the series' name
    in `series`, "" for none, and the book's number in it in `series_positions`, NaN for none), `signatures`
    (of what shapes its postings and text), years, language codes (into `languages`), covers and rating
    aggregates. Per field (`scoring.FIELDS`), posting lists of term frequencies and each book's length,
    with the average lengths BM25 uses and how many books they were taken over; across fields, posting
    lists of precomputed impacts. `title_order` sorts the books by normalised title, then id.
    """

    book_ids: np.ndarray
    id_order: np.ndarray
    titles: TextColumn
    title_norms: TextColumn
    authors: TextColumn
    series: TextColumn
    series_positions: np.ndarray
    signatures: np.ndarray
    years: np.ndarray
    languages: tuple[str, ...]
    language: np.ndarray
    cover_ids: np.ndarray
    rating_count: np.ndarray
    rating_sum: np.ndarray
    vocabulary: dict[str, int]
    fields: tuple[PostingLists, ...]
    lengths: tuple[np.ndarray, ...]
    average_lengths: tuple[float, ...]
    averaged_size: int
    combined: PostingLists
    title_order: np.ndarray
    lexicon: Lexicon
    original_titles: dict[int, str]  # position -> normalised original title, where it differs
    isbns: IsbnMap
    author_values: ValuePairs  # facets: (book, value) pairs
    subject_values: ValuePairs

    @property
    def size(self) -> int:
        return len(self.book_ids)

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions of the given book ids (bytes), -1 where unknown."""
        if not self.size:
            return np.full(len(ids), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.book_ids, ids, sorter=self.id_order), self.size - 1)
        candidates = self.id_order[at].astype(np.int64)
        return np.where(self.book_ids[candidates] == ids, candidates, -1)


@dataclass(frozen=True, slots=True, eq=False)
class Derived:
    """Per-book columns derived from the parts, for scoring, filters and sorts."""

    avg_rating: np.ndarray  # float32 rounded down (scoring.float32_at_or_below), for filters and sorts (a 10M-book
    # filter reads it in 5 ms, where dividing the two rating columns again takes 80); a hit shows the exact
    # average (catalog.average)
    popularity: np.ndarray  # the prior (see scoring.rating_columns)
    prior_factor: np.ndarray  # what a text score is multiplied by
    title_rank: np.ndarray  # each book's place in title order
    decades: np.ndarray  # decade codes (facets.decade_codes)
    language_codes: dict[str, int]  # lower-cased language code -> its number in `language`
    rating_totals: tuple[int, int]  # the catalogue's ratings and stars (`scoring.rating_totals`)

    @property
    def mean_rating(self) -> float:
        """The catalogue's, which every prior is pulled towards."""
        return mean_rating(self.rating_totals)

    @classmethod
    def of(cls, parts: IndexParts) -> Derived:
        totals = rating_totals(parts.rating_count, parts.rating_sum)
        popularity, prior_factor = rating_columns(parts.rating_count, parts.rating_sum, mean_rating(totals))
        title_rank = np.empty(parts.size, dtype=np.int32)
        title_rank[parts.title_order] = np.arange(parts.size, dtype=np.int32)
        return cls(float32_at_or_below(average_ratings(parts.rating_count, parts.rating_sum)), popularity,
                   prior_factor, title_rank,
                   decade_codes(decades_of(parts.years, NO_YEAR)),
                   {code.lower(): i for i, code in enumerate(parts.languages)}, totals)

    @classmethod
    def refreshed(cls, previous: Derived, before: IndexParts, parts: IndexParts, changed: np.ndarray) -> Derived:
        """`Derived.of(parts)` where `parts` are `before` with the books at `changed` replaced and any past
        `before.size` added: what is unchanged carried over, the rest patched; the rating columns taken
        afresh (vectorised) only when a rating moved, since the catalogue's mean rating enters every prior."""
        moved = np.concatenate([changed, np.arange(before.size, parts.size)]).astype(np.intp)
        ratings = (previous.avg_rating, previous.popularity, previous.prior_factor)
        totals = previous.rating_totals
        if parts.size != before.size or (parts.rating_count[changed] != before.rating_count[changed]).any() \
                or (parts.rating_sum[changed] != before.rating_sum[changed]).any():
            # The totals follow the moved books exactly (integers); the mean they give enters every prior.
            now, then = rating_totals(parts.rating_count[moved], parts.rating_sum[moved]), \
                rating_totals(before.rating_count[changed], before.rating_sum[changed])
            totals = (totals[0] + now[0] - then[0], totals[1] + now[1] - then[1])
            averages = np.concatenate([previous.avg_rating,
                                       np.zeros(parts.size - before.size, dtype=np.float32)])
            averages[moved] = float32_at_or_below(average_ratings(parts.rating_count[moved], parts.rating_sum[moved]))
            ratings = (averages, *rating_columns(parts.rating_count, parts.rating_sum, mean_rating(totals)))
        title_rank = previous.title_rank
        if parts.title_order is not before.title_order:
            title_rank = np.empty(parts.size, dtype=np.int32)
            title_rank[parts.title_order] = np.arange(parts.size, dtype=np.int32)
        decades = previous.decades
        if parts.years is not before.years:
            decades = np.concatenate([decades, np.zeros(parts.size - before.size, dtype=decades.dtype)])
            decades[moved] = decade_codes(decades_of(parts.years[moved], NO_YEAR))
        return cls(*ratings, title_rank, decades, {code.lower(): i for i, code in enumerate(parts.languages)},
                   totals)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.avg_rating, self.popularity, self.prior_factor, self.title_rank,
                                      self.decades))
