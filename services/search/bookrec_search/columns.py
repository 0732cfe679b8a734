"""Posting lists and the operations over them (intersections, probes, splices), and the sorted titles.
Pure, no I/O. (Packed strings are `texts`.)

Posting lists are immutable once built; an update returns a new object and shares nothing mutable with
the old one, so a request reading the old index during a swap never sees a half-applied change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from bookrec_search import kernels
from bookrec_search.texts import TextColumn

TERM_SHIFT = 32  # a (term, document) pair packed as term << 32 | document, so pairs sort term-major
DOC_MASK = (1 << TERM_SHIFT) - 1
MAX_FREQUENCY = np.iinfo(np.uint8).max  # BM25 saturates long before: tf 255 is within 0.5% of the limit
SPLICE_STEPS = 20_000  # up to this many drops and inserts, splice by copying stretches; beyond, by masks
DENSE_PROBE_SHARE = 32  # probe a list through a dense map once candidates exceed 1/32 of the documents

PostingList = tuple[np.ndarray, np.ndarray]  # ascending document numbers, one value each


class PostingLists:
    """Per term id: ascending document numbers and one value per document, in flat arrays by offsets.

    The value is a term frequency (uint8, capped) for a field's lists, or a
    precomputed score contribution (float32) for the all-fields lists.
    """

    __slots__ = ("docs", "offsets", "values")

    def __init__(self, offsets: np.ndarray, docs: np.ndarray, values: np.ndarray) -> None:
        self.offsets = offsets
        self.docs = docs
        self.values = values

    @classmethod
    def from_pairs(cls, keys: np.ndarray, values: np.ndarray, term_count: int) -> PostingLists:
        """From sorted, unique packed (term, document) keys and their values."""
        counts = np.bincount(keys >> TERM_SHIFT, minlength=term_count) if len(keys) else np.zeros(term_count)
        offsets = np.zeros(term_count + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(offsets, (keys & DOC_MASK).astype(np.int32), values)

    @classmethod
    def from_occurrences(cls, terms: np.ndarray, docs: np.ndarray, term_count: int) -> PostingLists:
        """One (term, document) pair per token occurrence; repeats become the term frequency."""
        keys, frequencies = occurrence_counts(terms, docs)
        return cls.from_pairs(keys, frequencies, term_count)

    @property
    def term_count(self) -> int:
        return len(self.offsets) - 1

    def get(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        if term >= self.term_count:
            return self.docs[:0], self.values[:0]
        start, stop = self.offsets[term], self.offsets[term + 1]
        return self.docs[start:stop], self.values[start:stop]

    def terms_of_postings(self, start_term: int = 0, stop_term: int | None = None) -> np.ndarray:
        """The term id of every posting of terms start_term..stop_term-1, in posting order."""
        stop_term = self.term_count if stop_term is None else stop_term
        sizes = np.diff(self.offsets[start_term:stop_term + 1])
        return np.repeat(np.arange(start_term, stop_term, dtype=np.int64), sizes)

    def postings_of(self, removed: np.ndarray) -> np.ndarray:
        """Packed (term, document) keys, ascending, of every posting of the `removed` documents (a mask by
        document): one pass over the documents of every list."""
        places = np.flatnonzero(removed[self.docs]) if removed.any() else np.empty(0, dtype=np.int64)
        return ((np.searchsorted(self.offsets, places, side="right") - 1) << TERM_SHIFT) | self.docs[places]

    def places_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For packed (term, document) keys: where each is or would go, and whether it is there."""
        terms, docs = keys >> TERM_SHIFT, keys & DOC_MASK
        known = terms < self.term_count
        clipped = np.minimum(terms, max(self.term_count - 1, 0))
        lo = np.where(known, self.offsets[clipped], len(self.docs))
        hi = np.where(known, self.offsets[np.minimum(clipped + 1, self.term_count)], len(self.docs))
        at = searched_within(self.docs, lo, hi, docs)
        present = (at < hi) & (self.docs[np.minimum(at, max(len(self.docs) - 1, 0))] == docs) \
            if len(self.docs) else np.zeros(len(keys), dtype=bool)
        return at, present

    def replaced(self, dropped: np.ndarray, keys: np.ndarray, values: np.ndarray,
                 term_count: int) -> PostingLists:
        """Drop the postings `dropped` (packed (term, document) keys, ascending; those not here are ignored),
        then merge in new pairs.

        `keys` are sorted, unique packed (term, document) pairs. Cost: a
        binary search per dropped and per new pair, and one copy of the arrays
        with the changes spliced in; a pair both dropped and added keeps its
        place (only its value changes), so a book re-rated or lightly edited
        moves few postings, and one whose words all stay moves none (the
        document array is then shared). The dropped keys of a refresh come from
        one pass over the all-fields lists, which hold every field's pairs.
        """
        at, present = self.places_of(dropped)
        drops, drop_keys = at[present], dropped[present]
        # A pair both dropped and added (a word a rewritten book kept) keeps its place: its value is set there.
        found = np.minimum(np.searchsorted(drop_keys, keys), max(len(drop_keys) - 1, 0))
        kept = (drop_keys[found] == keys) if len(drop_keys) else np.zeros(len(keys), dtype=bool)
        patch_at, patch_values = drops[found[kept]], values[kept]  # places as they are, and their new values
        still = np.ones(len(drops), dtype=bool)
        still[found[kept]] = False
        drops, drop_keys, keys, values = drops[still], drop_keys[still], keys[~kept], values[~kept]
        sizes = np.zeros(term_count, dtype=np.int64)
        sizes[:self.term_count] = np.diff(self.offsets)
        sizes -= np.bincount(drop_keys >> TERM_SHIFT, minlength=term_count)
        new_terms = keys >> TERM_SHIFT
        new_docs = (keys & DOC_MASK).astype(np.int32)
        sizes += np.bincount(new_terms, minlength=term_count)
        offsets = np.zeros(term_count + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        if not len(drops) and not len(keys):  # the same pairs: the documents are shared, only values copied
            patched = self.values
            if len(patch_at):
                patched = patched.copy()
                patched[patch_at] = patch_values
            return PostingLists(offsets, self.docs, patched)
        at, _ = self.places_of(keys)  # each new pair goes before the posting now at its place
        docs, new_values = spliced((self.docs, self.values), drops, at, (new_docs, values.astype(self.values.dtype)))
        # The kept pairs' values set in the spliced copy (no copy of the values before it): each kept place
        # moved down by the drops before it and up by the pairs put in at or before it.
        new_values[patch_at - np.searchsorted(drops, patch_at) + np.searchsorted(at, patch_at, side="right")] = \
            patch_values
        return PostingLists(offsets, docs, new_values)

    def without(self, removed: np.ndarray, renumbered: np.ndarray) -> PostingLists:
        """Without the postings of the `removed` documents (a mask by document), the others renumbered
        (`renumbered`: old document number -> new; monotone, so every list stays ascending)."""
        dropped = removed[self.docs]
        drops = np.flatnonzero(dropped)
        sizes = np.diff(self.offsets)
        if len(drops):
            sizes = sizes - np.bincount(np.searchsorted(self.offsets, drops, side="right") - 1,
                                        minlength=self.term_count)
        offsets = np.zeros(self.term_count + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        kept = ~dropped
        return PostingLists(offsets, renumbered[self.docs[kept]], self.values[kept])

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.docs.nbytes + self.values.nbytes)


Probe = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # candidates -> (places of those found, where)


def intersection(lists: Sequence[PostingList], size: int,
                 probes: Sequence[Probe | None] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Documents (of `size`) in every list, ascending, and, per list, where each of them sits in that list.

    Starts from the shortest list; each longer one is probed through its `probes` entry when it has one
    (a common term's bitmap), else by binary search, or, when many candidates remain, through a dense
    document -> place map (one pass instead of a search each).
    """
    order = sorted(range(len(lists)), key=lambda j: len(lists[j][0]))
    candidates = lists[order[0]][0]
    if len(lists) == 1:
        return candidates, [slice(None)]  # type: ignore[list-item]  # the whole list, without a copy
    where: dict[int, np.ndarray] = {}
    for j in order[1:]:
        given = probes[j] if j < len(probes) else None
        found, at = given(candidates) if given is not None else probe(lists[j][0], candidates, size)
        candidates = candidates[found]
        where = {k: v[found] for k, v in where.items()} if where else {order[0]: found}
        where[j] = at
    return candidates, [where[j] for j in range(len(lists))]


def probe(docs: np.ndarray, candidates: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The places of the candidates in the ascending `docs` (of `size` documents), and where each is in it."""
    if not len(docs):
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    if len(candidates) * DENSE_PROBE_SHARE > size:  # through the list's bits: a pass over it, none over every book
        return kernels.bitmap_probe(*kernels.ranked_bits(docs, size), candidates)
    at = np.minimum(np.searchsorted(docs, candidates), len(docs) - 1)
    at[docs[at] != candidates] = -1
    found = np.flatnonzero(at >= 0)
    return found, at[found]


def sorted_union(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The distinct values of `arrays`, ascending: their concatenation sorted, each value kept once (numpy's
    unique hashes first: 15 ms for 100,000 book positions, where this takes 0.7)."""
    values = np.sort(np.concatenate(arrays))
    kept = np.ones(len(values), dtype=bool)
    np.not_equal(values[1:], values[:-1], out=kept[1:])
    return values[kept]


def spliced(arrays: tuple[np.ndarray, ...], drops: np.ndarray, at: np.ndarray,
            inserted: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Parallel arrays without the places `drops`, with `inserted[k][i]` put before place `at[i]`.

    Both `drops` and `at` are ascending places in the arrays as they are. A
    few changes are spliced in with one copy of the stretches between them;
    many go through a mask and numpy's insert.
    """
    if len(drops) + len(at) > SPLICE_STEPS:
        keep = np.ones(len(arrays[0]), dtype=bool)
        keep[drops] = False
        shifted = at - np.searchsorted(drops, at)  # the same places once the drops are gone
        return tuple(np.insert(a[keep], shifted, new) for a, new in zip(arrays, inserted, strict=True))
    # Every kept stretch and every inserted run as a view, put together by one concatenate per array.
    places = np.union1d(at, drops)
    first = np.searchsorted(at, places, side="left")
    last = np.searchsorted(at, places, side="right")
    dropped = np.isin(places, drops, assume_unique=True)
    resume = places + dropped  # where the next kept stretch starts
    starts = np.concatenate([[0], resume]).tolist()
    stops = [*places.tolist(), len(arrays[0])]
    runs = list(zip(first.tolist(), last.tolist(), strict=True))
    outs = []
    for a, new in zip(arrays, inserted, strict=True):
        pieces = [a[starts[0]:stops[0]]]
        for (lo, hi), start, stop in zip(runs, starts[1:], stops[1:], strict=True):
            pieces.append(new[lo:hi])
            pieces.append(a[start:stop])
        outs.append(np.concatenate(pieces).astype(a.dtype, copy=False))
    return tuple(outs)


def searched_within(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Per query i, the first place in values[lo[i]:hi[i]] (ascending there) holding at least wanted[i]
    (hi[i] when none does): numpy's searchsorted, run for every query at once over its own range
    (a bisection of vector steps: log2 of the longest range, never a Python step per query)."""
    lo, hi = lo.astype(np.int64, copy=True), hi.astype(np.int64, copy=True)
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) // 2
        below = open_ & (values[np.minimum(mid, len(values) - 1)] < wanted)
        lo = np.where(below, mid + 1, lo)
        hi = np.where(open_ & ~below, mid, hi)


def occurrence_counts(terms: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique packed (term, document) keys and how often each occurred (capped at MAX_FREQUENCY)."""
    packed = (terms.astype(np.int64) << TERM_SHIFT) | docs.astype(np.int64)
    keys, counts = np.unique(packed, return_counts=True)
    return keys, np.minimum(counts, MAX_FREQUENCY).astype(np.uint8)


def summed_pairs(keys: Sequence[np.ndarray], values: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Union of packed (term, document) pairs; values of the same pair are added (float32 result)."""
    if not keys:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    summed = np.bincount(inverse, weights=np.concatenate(values), minlength=len(unique))
    return unique, summed.astype(np.float32)


def largest_pairs(keys: Sequence[np.ndarray], values: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Union of packed (term, document) pairs; of the same pair, the largest value (float32 result)."""
    all_keys, all_values = np.concatenate(keys), np.concatenate(values)
    order = np.lexsort((all_values, all_keys))
    all_keys, all_values = all_keys[order], all_values[order]
    last = np.ones(len(all_keys), dtype=bool)
    last[:-1] = all_keys[1:] != all_keys[:-1]
    return all_keys[last], all_values[last].astype(np.float32)


class SortedTitles:
    """The normalised titles in title order, as a sequence `bisect` can search without materialising it."""

    __slots__ = ("_order", "_titles")

    def __init__(self, order: np.ndarray, titles: TextColumn) -> None:
        self._order = order
        self._titles = titles

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, i: int) -> str:
        return self._titles[int(self._order[i])]


class SortedTitleKeys(SortedTitles):
    def __init__(self, order: np.ndarray, titles: TextColumn, book_ids: np.ndarray) -> None:
        super().__init__(order, titles)
        self._book_ids = book_ids

    def __getitem__(self, i: int) -> tuple[str, str]:  # type: ignore[override]  # by one position only, never a slice
        position = int(self._order[i])
        return self._titles[position], self._book_ids[position].decode()
