"""Ranked bitmaps of the commonest terms' posting lists, to probe them in constant time. Pure, numpy.

Several words must all be in a book: `columns.intersection` starts from the shortest list and probes the
others for its books. A binary search into a term in 3 million of 10 million books costs ~40 ns a probe
(cache misses down 22 levels): 11 ms for 300,000 probes. A dense map built per query costs a pass over
every book. A bitmap of the term (one bit a book) with the count of books before each 64-bit word answers
both "is the book there" and "where in the list" with two reads and a popcount: 2 ms for the same
300,000, 5 times less. It takes size / 8 + size / 16 bytes (1.9 MB a term at 10M books), so only terms in
at least DENSE_SHARE of the books get one, on their first use in each version of the postings (4 ms for
3M postings), within BITMAP_BYTES in all, the least recently used going first. A refresh that leaves the
postings as they were (ratings, years, covers) keeps them; one that changes some books' text patches their
bits (a copy of the bits, ~1 ms a term at 10M books); one that deletes books starts them afresh.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bookrec_search import kernels
from bookrec_search.budget import BudgetedCache
from bookrec_search.columns import PostingLists

DENSE_SHARE = 1 / 64  # terms in this share of the books or more get a bitmap
DENSE_MIN_BOOKS = 20_000  # and in at least this many: below, a binary search is as quick
BITMAP_BYTES = 160 * 2**20  # bitmaps kept per version of the postings (~85 terms at 10M books)
_ONE = np.uint64(1)


class RankedBitmap:
    """One posting list's books as bits, and the books before each 64-bit word."""

    __slots__ = ("before", "bits")

    def __init__(self, bits: np.ndarray, before: np.ndarray | None = None) -> None:
        self.bits = bits
        if before is None:
            before = np.zeros(len(bits), dtype=np.int32)
            np.cumsum(np.bitwise_count(bits[:-1]), out=before[1:])
        self.before = before

    @classmethod
    def of(cls, docs: np.ndarray, size: int) -> RankedBitmap:
        return cls(*kernels.ranked_bits(docs, size))

    def patched(self, docs: np.ndarray, changed: np.ndarray, size: int) -> RankedBitmap:
        """This bitmap for the list `docs` (of `size` books), which differs from its own at most at the books
        `changed`: a copy of the bits with theirs set anew (a millisecond, not a pass over the postings)."""
        bits = np.zeros(-(-size // 64), dtype=np.uint64)
        bits[:len(self.bits)] = self.bits
        word_at, bit = changed >> 6, (changed & 63).astype(np.uint64)
        np.bitwise_and.at(bits, word_at, ~(_ONE << bit))
        at = np.minimum(np.searchsorted(docs, changed), max(len(docs) - 1, 0))
        held = docs[at] == changed if len(docs) else np.zeros(len(changed), dtype=bool)
        np.bitwise_or.at(bits, word_at[held], _ONE << bit[held])
        return RankedBitmap(bits)

    def probe(self, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The places of the candidates in the list, and where each is in it: as `columns.probe`."""
        return kernels.bitmap_probe(self.bits, self.before, candidates)

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes + self.before.nbytes)


def _bytes_of(bitmap: RankedBitmap) -> int:
    return bitmap.nbytes


class Bitmaps:
    """The bitmaps of one version of the postings, made on first use."""

    def __init__(self, combined: PostingLists, size: int,
                 bitmaps: Iterable[tuple[int, RankedBitmap]] = ()) -> None:
        self.combined, self.size = combined, size
        self._bitmaps: BudgetedCache[int, RankedBitmap] = BudgetedCache(BITMAP_BYTES, _bytes_of, bitmaps)

    def __len__(self) -> int:
        return len(self._bitmaps)

    @property
    def nbytes(self) -> int:
        return self._bitmaps.total

    def of(self, term: int) -> RankedBitmap | None:
        """The bitmap of `term`, None when it is in too few books to need one."""
        offsets = self.combined.offsets
        if term >= len(offsets) - 1:
            return None
        if offsets[term + 1] - offsets[term] < max(DENSE_MIN_BOOKS, self.size * DENSE_SHARE):
            return None
        return self._bitmaps.get(term, lambda: RankedBitmap.of(self.combined.get(term)[0], self.size))

    def warm(self) -> None:
        """Makes the bitmaps of the commonest terms, within BITMAP_BYTES."""
        books = np.diff(self.combined.offsets)
        dense = np.flatnonzero(books >= max(DENSE_MIN_BOOKS, self.size * DENSE_SHARE))
        each = -(-self.size // 64) * 12  # bits and counts of one term
        for term in dense[np.argsort(-books[dense], kind="stable")][:max(1, BITMAP_BYTES // max(each, 1))]:
            self.of(int(term))

    def for_(self, combined: PostingLists, size: int, changed: np.ndarray | None) -> Bitmaps:
        """These bitmaps for a new index version: kept when its postings are these; patched at the books
        `changed` (ascending positions, appended ones included) when only theirs differ; else none yet
        (deletions renumber the books)."""
        if combined is self.combined and size == self.size:
            return self
        if changed is None or size < self.size:
            return Bitmaps(combined, size)
        offsets, least = combined.offsets, max(DENSE_MIN_BOOKS, size * DENSE_SHARE)
        return Bitmaps(combined, size, [(term, bitmap.patched(combined.get(term)[0], changed, size))
                                        for term, bitmap in self._bitmaps.items()
                                        if term < len(offsets) - 1 and offsets[term + 1] - offsets[term] >= least])
