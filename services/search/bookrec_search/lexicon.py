"""The vocabulary searched by prefix and for typos, and the ISBN map: pure, numpy, no I/O.

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
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Mapping, Sequence

import numpy as np
from rapidfuzz.distance import OSA

ABOVE_ANY_TEXT = "\U0010ffff"
ONE_TYPO, TWO_TYPOS = 5, 9  # query words this long match terms within 1 (2) edits; shorter words exactly
_HASH_BASE = np.uint64(0x100000001B3)  # odd: invertible modulo 2^64
_HASH_INVERSE = np.uint64(pow(int(_HASH_BASE), -1, 2**64))
_HASH_INVERSE_SQUARED = np.uint64(pow(int(_HASH_BASE), -2, 2**64))
RECENT_SHARE = 64  # the terms refreshes add join the build's run once they are 1/64 of it (see Neighbourhood)
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


class Neighbourhood:
    """Terms by the hashes of the strings left after deleting up to two of their characters.

    Two strings within d OSA edits (a substitution, insertion, deletion or swap of neighbours each
    count one) both reach a common string by at most d deletions each: looking up the query word's own
    deletions finds every candidate, and the OSA distance, computed for those few, settles it.

    Two sorted runs: the terms of the build, and those refreshes added since (`recent`), which a refresh
    inserts into, so that it copies a few of them, not the ~24 variants of each of the millions of terms
    (at 10M books a copy of 440 MB, 0.3 s). The recent run joins the main one once it holds more than
    1/RECENT_SHARE of it; a snapshot holds them joined (`joined`).
    """

    __slots__ = ("hashes", "ids", "recent_hashes", "recent_ids")

    def __init__(self, hashes: np.ndarray, ids: np.ndarray, recent_hashes: np.ndarray | None = None,
                 recent_ids: np.ndarray | None = None) -> None:
        self.hashes, self.ids = hashes, ids
        self.recent_hashes = np.empty(0, dtype=np.uint64) if recent_hashes is None else recent_hashes
        self.recent_ids = np.empty(0, dtype=np.int32) if recent_ids is None else recent_ids

    @classmethod
    def of(cls, terms: Mapping[str, int]) -> Neighbourhood:
        return cls(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int32)).with_terms(terms)

    def with_terms(self, terms: Mapping[str, int]) -> Neighbourhood:
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
            return Neighbourhood(added, added_ids)
        recent, recent_ids = _inserted(self.recent_hashes, self.recent_ids, added, added_ids)
        if len(recent) * RECENT_SHARE <= len(self.hashes):
            return Neighbourhood(self.hashes, self.ids, recent, recent_ids)
        return Neighbourhood(*_inserted(self.hashes, self.ids, recent, recent_ids))

    def joined(self) -> tuple[np.ndarray, np.ndarray]:
        """Hashes and ids as one sorted run (what a snapshot holds)."""
        return _inserted(self.hashes, self.ids, self.recent_hashes, self.recent_ids)

    def candidates(self, word: str, edits: int) -> np.ndarray:
        codes = _codes([word], len(word))
        variants = np.concatenate([_deletion_hashes(codes, d).ravel() for d in range(edits + 1)])
        found = [_filed_under(hashes, ids, variants) for hashes, ids in
                 ((self.hashes, self.ids), (self.recent_hashes, self.recent_ids)) if len(hashes)]
        return np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int32)

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.ids.nbytes + self.recent_hashes.nbytes + self.recent_ids.nbytes


def _filed_under(hashes: np.ndarray, ids: np.ndarray, variants: np.ndarray) -> np.ndarray:
    """The ids filed under any of `variants` in one sorted run."""
    lo = np.searchsorted(hashes, variants, side="left")
    hi = np.searchsorted(hashes, variants, side="right")
    spans = hi - lo
    total = int(spans.sum())
    if not total:
        return np.empty(0, dtype=np.int32)
    return ids[np.repeat(lo - (np.cumsum(spans) - spans), spans) + np.arange(total)]


def _inserted(hashes: np.ndarray, ids: np.ndarray, added: np.ndarray,
              added_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A sorted run with sorted `added` merged in (an insert: a few into many, not a sort of all)."""
    if not len(added):
        return hashes, ids
    at = np.searchsorted(hashes, added)
    return np.insert(hashes, at, added), np.insert(ids, at, added_ids)


class Lexicon:
    """The vocabulary searched by prefix (terms in sorted order) and for typos (a deletion neighbourhood)."""

    __slots__ = ("by_id", "neighbourhood", "sorted_ids", "sorted_terms")

    def __init__(self, by_id: list[str], sorted_terms: list[str], sorted_ids: np.ndarray,
                 neighbourhood: Neighbourhood) -> None:
        self.by_id = by_id
        self.sorted_terms, self.sorted_ids, self.neighbourhood = sorted_terms, sorted_ids, neighbourhood

    @staticmethod
    def correctable(term: str) -> bool:
        """Whether typos are looked for near `term` (bigrams of unspaced scripts are shorter than this)."""
        return len(term) >= ONE_TYPO - 1 and not term.isdigit()

    @classmethod
    def of(cls, vocabulary: Mapping[str, int]) -> Lexicon:
        return cls([], [], np.empty(0, dtype=np.int32), Neighbourhood.of({})).with_terms(vocabulary)

    def with_terms(self, added: Mapping[str, int]) -> Lexicon:
        """This lexicon with new terms (term -> id, the ids following the known ones); `self` is unchanged."""
        if not added:
            return self
        entering = sorted(added)
        at = [bisect.bisect_left(self.sorted_terms, t) for t in entering]
        terms: list[str] = []
        previous = 0
        for place, term in zip(at, entering, strict=True):
            terms.extend(self.sorted_terms[previous:place])
            terms.append(term)
            previous = place
        terms.extend(self.sorted_terms[previous:])
        ids = np.insert(self.sorted_ids, at, np.array([added[t] for t in entering], dtype=np.int32))
        neighbourhood = self.neighbourhood.with_terms({t: i for t, i in added.items() if self.correctable(t)})
        return Lexicon(self.by_id + sorted(added, key=added.__getitem__), terms, ids, neighbourhood)

    def with_prefix(self, prefix: str) -> np.ndarray:
        """Ids of the terms starting with `prefix` (itself included)."""
        lo = bisect.bisect_left(self.sorted_terms, prefix)
        hi = bisect.bisect_left(self.sorted_terms, prefix + ABOVE_ANY_TEXT, lo)
        return self.sorted_ids[lo:hi]

    def near(self, word: str, edits: int) -> list[tuple[int, int]]:
        """(term id, edits) of the terms other than `word` within `edits` OSA edits (a transposition is
        one)."""
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


class IsbnMap:
    """ISBN-13s (as numbers, ascending) and the positions of the books carrying them."""

    __slots__ = ("isbns", "positions")

    def __init__(self, isbns: np.ndarray, positions: np.ndarray) -> None:
        self.isbns, self.positions = isbns, positions

    @classmethod
    def of(cls, isbns: np.ndarray, positions: np.ndarray) -> IsbnMap:
        order = np.lexsort((positions, isbns))
        return cls(isbns[order].astype(np.int64), positions[order].astype(np.int32))

    def find(self, isbn: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.isbns, [isbn, isbn + 1])
        return np.unique(self.positions[lo:hi])

    def replaced(self, removed: np.ndarray, isbns: Sequence[int], positions: Sequence[int]) -> IsbnMap:
        """Without the entries of removed positions (a mask), with the given ones added."""
        keep = ~removed[self.positions] if len(self.positions) else np.zeros(0, dtype=bool)
        return IsbnMap.of(np.concatenate([self.isbns[keep], np.array(isbns, dtype=np.int64)]),
                           np.concatenate([self.positions[keep], np.array(positions, dtype=np.int32)]))

    def without(self, removed: np.ndarray, renumbered: np.ndarray) -> IsbnMap:
        """Without the entries of removed positions (a mask), the others renumbered (old -> new, monotone:
        the order by ISBN, then position, holds)."""
        keep = ~removed[self.positions] if len(self.positions) else np.zeros(0, dtype=bool)
        return IsbnMap(self.isbns[keep], renumbered[self.positions[keep]])

    @property
    def nbytes(self) -> int:
        return self.isbns.nbytes + self.positions.nbytes
