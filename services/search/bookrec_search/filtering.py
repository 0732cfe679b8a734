"""Advanced search's filters: per-field text (exact words, scored with that field's lists) and columns.

Over an index's parts and derived columns; pure, numpy, no I/O. `SearchIndex.advanced` pages what these
select.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bookrec_search import kernels
from bookrec_search.columns import PostingList, intersection, probe
from bookrec_search.documents import NO_YEAR, query_terms
from bookrec_search.matching import merged
from bookrec_search.parts import Derived, IndexParts
from bookrec_search.scoring import (
    FIELD_WEIGHTS,
    ORIGINAL_TITLE,
    TITLE,
    average_ratings,
    float32_at_or_below,
    idf,
    saturated,
)

SORTS = ("relevance", "rating", "year", "title")


@dataclass(frozen=True, slots=True)
class Filters:
    title: str | None = None
    author: str | None = None
    subject: str | None = None
    min_year: int | None = None
    max_year: int | None = None
    min_rating: float | None = None
    language: str | None = None


def field_text(parts: IndexParts,
               filters: Filters) -> tuple[np.ndarray | None, np.ndarray | None, list[str]] | None:
    """The books passing the title, author and subject filters (None: every book), their text scores, and
    the words looked for; None when some word is in no book's field.

    A title word may be in either of a book's names (title, original title), scored by the better one.
    """
    candidates: np.ndarray | None = None  # None: every document
    text: np.ndarray | None = None
    # (field, (docs, term frequencies)) scored for the books left, or (None, (docs, scores)) scored already
    field_lists: list[tuple[int | None, PostingList]] = []
    matched_words: dict[str, None] = {}
    for field, phrase in enumerate((filters.title, filters.author, filters.subject)):
        for word in query_terms(phrase or ""):
            found = _title_list(parts, word) if field == TITLE else _field_list(parts, field, word)
            if found is None:
                return None
            matched_words[word] = None
            field_lists.append(found)
    if field_lists:
        # One intersection over every word of every field; scores only for the books left.
        candidates, where = intersection([posting_list for _, posting_list in field_lists], parts.size)
        text = np.zeros(len(candidates), dtype=np.float32)
        for (scored_in, (docs, values)), at in zip(field_lists, where, strict=True):
            if scored_in is None:
                text += values[at]
            else:
                text += np.float32(idf(parts.size, len(docs)) * FIELD_WEIGHTS[scored_in]) * saturated(
                    values[at], parts.lengths[scored_in][candidates], parts.average_lengths[scored_in])
    return candidates, text, list(matched_words)


def _field_list(parts: IndexParts, field: int, word: str) -> tuple[int, PostingList] | None:
    term = parts.vocabulary.get(word)
    if term is None:
        return None
    docs, frequencies = parts.fields[field].get(term)
    return (field, (docs, frequencies)) if len(docs) else None


def _title_list(parts: IndexParts, word: str) -> tuple[int | None, PostingList] | None:
    """The books with `word` in either name; scored here when some has it in the original title."""
    title = _field_list(parts, TITLE, word)
    original = _field_list(parts, ORIGINAL_TITLE, word)
    if original is None:
        return title
    lists = [posting_list for posting_list in (title, original) if posting_list is not None]
    books = sum(len(docs) for _, (docs, _) in lists)
    if len(lists) > 1:  # the books in both names counted once: the shorter list searched for in the longer
        (_, (a, _)), (_, (b, _)) = sorted(lists, key=lambda found: len(found[1][0]))
        books -= len(probe(b, a, parts.size)[0])
    weight = idf(parts.size, books)
    scored = [(docs, np.float32(weight * FIELD_WEIGHTS[f]) * saturated(frequencies, parts.lengths[f][docs],
                                                                       parts.average_lengths[f]))
              for f, (docs, frequencies) in lists]
    docs, best, _, _ = merged(scored, [1.0] * len(scored), [0] * len(scored), kernels.BEST, parts.size)
    return None, (docs, best)


def column_mask(parts: IndexParts, derived: Derived, filters: Filters, candidates: np.ndarray) -> np.ndarray | None:
    """Mask of the candidates passing the year, rating and language filters (`books_passing` filters the
    whole catalogue, with the same bounds); None when none is given. Only the columns filtered are read."""
    if not _filters_columns(filters):
        return None
    bounds = _column_bounds(derived, filters)
    if bounds is None:
        return np.zeros(len(candidates), dtype=bool)
    min_year, max_year, min_average, language = bounds
    mask = np.ones(len(candidates), dtype=bool)
    if filters.min_year is not None or filters.max_year is not None:
        years = parts.years[candidates]
        mask &= (years >= min_year) & (years <= max_year)
    if filters.min_rating is not None:
        mask &= _rated_at_least(parts, derived, min_average, candidates)
    if language >= 0:
        mask &= parts.language[candidates] == language
    return mask


def books_passing(parts: IndexParts, derived: Derived, filters: Filters,
                  column: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The books (ascending) of the whole catalogue passing the year, rating and language filters, and their
    values in `column` (what they are sorted by); None when no such filter is given. One compiled pass over
    the filters' columns (`column_mask` is the numpy of it, for a few candidates): at 10M books numpy's masks,
    their nonzero and the gather of the sorted column take ~50 ms, the pass ~5."""
    if not _filters_columns(filters):
        return None
    bounds = _column_bounds(derived, filters)
    if bounds is None:
        return np.empty(0, dtype=np.int32), column[:0]
    min_year, max_year, min_average, language = bounds
    return kernels.filtered_books(kernels.read_only(parts.years), min_year, max_year,
                                  kernels.read_only(derived.avg_rating), np.float32(float32_at_or_below(min_average)),
                                  min_average, kernels.read_only(parts.rating_count),
                                  kernels.read_only(parts.rating_sum), kernels.read_only(parts.language), language,
                                  kernels.read_only(column))


def _filters_columns(filters: Filters) -> bool:
    return filters.min_year is not None or filters.max_year is not None or filters.min_rating is not None \
        or bool(filters.language)


def _column_bounds(derived: Derived, filters: Filters) -> tuple[int, int, float, int] | None:
    """The closed year range, least average and language code (-1: any) the filters ask for: the whole int32
    range and -inf ask nothing. A year filter leaves out books without a year (NO_YEAR is below every year),
    and a rating filter unrated ones (average 0; a rated book's is at least 1). None: a language no book has."""
    lowest, highest = int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max)
    min_year, max_year = lowest, highest
    if filters.min_year is not None or filters.max_year is not None:
        min_year = min(max(filters.min_year if filters.min_year is not None else lowest, NO_YEAR + 1), highest)
        max_year = max(min(filters.max_year if filters.max_year is not None else highest, highest), lowest)
    min_average = -np.inf
    if filters.min_rating is not None:
        min_average = filters.min_rating if filters.min_rating > 0 else float(np.nextafter(np.float32(0), 1))
    language = -1
    if filters.language:
        code = derived.language_codes.get(filters.language.lower())
        if code is None:
            return None
        language = code
    return min_year, max_year, float(min_average), language


def _rated_at_least(parts: IndexParts, derived: Derived, bound: float, candidates: np.ndarray) -> np.ndarray:
    """Which candidates average at least `bound`, exactly: their float32 averages (rounded down) compared with
    the float32 at or below the bound lose none that pass; of those at that float32 itself, all pass when it is
    the bound, else each is settled by its exact average (`kernels.filtered_books` is the same test)."""
    averages = derived.avg_rating[candidates]
    narrow = float32_at_or_below(bound)
    passing = averages >= narrow
    if float(narrow) != bound:  # in float64: numpy would compare the bound rounded to float32
        doubtful = np.flatnonzero(averages == narrow)
        books = candidates[doubtful]
        passing[doubtful] = average_ratings(parts.rating_count[books], parts.rating_sum[books]) >= bound
    return passing


def sorted_by(parts: IndexParts, derived: Derived, sort: str, text: np.ndarray | None) -> np.ndarray:
    """The per-book column `sort` ranks by (relevance with text: the factor the text score takes)."""
    if sort == "relevance":
        return derived.popularity if text is None else derived.prior_factor
    if sort == "title":
        return derived.title_rank
    return parts.years if sort == "year" else derived.avg_rating


def sort_key(sort: str, order: str, values: np.ndarray, text: np.ndarray | None) -> np.ndarray:
    """The candidates' keys (higher first) from their `values` of the `sorted_by` column: books without a
    year or a rating last either way."""
    sign = 1.0 if order == "desc" else -1.0
    if sort == "relevance":
        return sign * values if text is None else sign * text * values
    if sort == "title":
        return sign * values.astype(np.float64)
    if sort == "year":
        return np.where(values != NO_YEAR, sign * values, -np.inf)
    return np.where(values > 0, sign * values, -np.inf)  # an average: 0 unrated, at least 1 rated
