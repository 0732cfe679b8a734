"""Champion lists: per common term, the books whose score for it can reach the top of a one-term query.
Pure, numpy, no I/O.

A query of one term t (alone, or the only word of an any-word answer) scores each of t's books
w · impact(t, d) · prior_factor(d), plus the exact-title bonus. Ranking all of a common term's books costs
their number: 3 million postings of "the" at 10 million books. The head of t is instead its HEAD_SIZE
books of the largest key(d) = impact(t, d) · prior_factor(d), and its bound the largest key among the rest
(a page ending past HEAD_SIZE / 2 takes a head of twice its end). A page ending at rank `wanted` is then
taken from the head and the exact titles alone whenever the wanted-th best score among them is above
w · bound: no other book can reach it, so the page, its scores and its order are exactly those of a full
ranking (a tie needs a score equal to the wanted-th, which the strict test rules out). Books tied at the
head's cut join it (up to TIE_ROOM times its size), so that the bound is below every book in it. When the
test fails (more books tied at the cut than that), the query ranks every book as before. `total` needs no
ranking: it is the term's document frequency.

A head is taken when a replica warms a new index (`warm`) or on the term's first query (one pass over its
postings), and carried to the next index version by a refresh, not taken again: the books a refresh
changed join it (their text or ratings differ), deleted ones leave it, and the bound grows by what a rise
of the catalogue's mean rating can add to any other book's prior (the prior pulls each average towards
that mean). Books a refresh did not change keep their impact and rating, so the bound still holds for
them. A head grown past TIE_ROOM + 1 times its size, or a refresh that re-averaged field lengths (every
impact changes), drops it; the next query takes it afresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bookrec_search.budget import BudgetedCache
from bookrec_search.columns import PostingLists, Probe, probe, sorted_union
from bookrec_search.ranking import ExactTitles
from bookrec_search.scoring import PRIOR_RATINGS, PRIOR_STRENGTH

HEAD_MIN_BOOKS = 20_000  # terms in fewer books rank all of them: a few milliseconds at most
HEAD_SIZE = 2048  # books per head; a deeper page takes a head of twice its end (a power of two) instead
MAX_HEAD_SIZE = 32_768  # serves pages ending at 16,384: the API's deepest ends at 10,100
DEEP_HEADS = 32  # the commonest terms are warmed with heads this deep (1M books of KEPT_POSITIONS)
TIE_ROOM = 4  # books tied at a head's cut join it while the head stays within this many times its size
MARGIN = 1e-5  # float32 rounding: w·(impact·prior) and (w·impact)·prior differ by a few ulps
KEPT_POSITIONS = 4_000_000  # heads kept per index version, in books (16 MB): the least recently used go
# d prior_factor / d mean rating, at its largest over rating counts: ln(1 + c) · s / (c + s) · strength / 5.
_COUNTS = np.arange(0, 100_000, dtype=np.float64)
MEAN_SLOPE = float((np.log1p(_COUNTS) * PRIOR_RATINGS / (_COUNTS + PRIOR_RATINGS)).max()) * PRIOR_STRENGTH / 5


@dataclass(frozen=True, slots=True)
class Head:
    positions: np.ndarray  # ascending
    size: int  # books when taken: it serves pages ending at size // 2
    bound: float  # no book of the term outside `positions` has a larger key (at `mean`)
    mean: float  # the catalogue's mean rating the bound holds at
    max_impact: float  # the term's largest impact when the head was taken

    def bound_at(self, mean: float) -> float:
        """The bound once the catalogue's mean rating is `mean`: a higher mean raises every prior a little."""
        return self.bound + max(0.0, mean - self.mean) * MEAN_SLOPE * self.max_impact


def taken(docs: np.ndarray, impacts: np.ndarray, prior_factor: np.ndarray, mean: float, size: int) -> Head:
    """The head of `size` books of a term with these postings."""
    key = impacts * prior_factor[docs]
    cut = len(key) - size - 1
    if cut < 0:
        return Head(docs.astype(np.int32), size, float("-inf"), mean, float(impacts.max(initial=0.0)))
    bound = key[np.argpartition(key, cut)[cut]]  # the (size + 1)-th largest key
    members = key >= bound
    if np.count_nonzero(members) <= TIE_ROOM * size:
        # Books tied at the cut join the head, so the bound, the largest key left out, is below them all:
        # else a page inside a tie (unrated books of one title length share a key) could never be vouched for.
        outside = key[~members]
        bound = outside.max() if len(outside) else np.float32(-np.inf)
    else:
        members = key > bound  # too many tied: the page must end above the tie, or every book is ranked
    return Head(np.sort(docs[members]), size, float(bound), mean, float(impacts.max()))


def size_for(wanted: int) -> int:
    """The head size that serves pages ending at `wanted`."""
    return max(HEAD_SIZE, 1 << (2 * wanted - 1).bit_length())


def page_from_head(head: Head, mean: float, docs: np.ndarray, impacts: np.ndarray, prior_factor: np.ndarray,
                   weight: np.float32, wanted: int, exact: ExactTitles,
                   bonus: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The books (ascending) and scores that hold a one-term query's `wanted` best, or None when the head
    cannot vouch for them. `exact`: the books the exact-title bonus goes to (those of the term count)."""
    size = len(prior_factor)
    found, head_at = probe(docs, head.positions, size)  # a refresh may have taken the term from a head's book
    head_books = head.positions[found]
    exact_in_head = exact.among(head_books)
    if np.count_nonzero(exact_in_head) >= wanted:
        # An exact title outside the head scores at most w · bound + bonus, below each of these `wanted`
        # (inside the head every key is above the bound): none of them can be on the page.
        candidates, at, exact_at = head_books, head_at, exact_in_head
    else:
        bonus_at = exact.positions()
        if len(bonus_at) > wanted:
            # Of many exact titles only the best `wanted` (and any tied with the last) can be on the page:
            # the others are each behind `wanted` books that take the same bonus.
            found, at = probe(docs, bonus_at, size)
            bonus_at = bonus_at[found]
            if len(bonus_at) > wanted:
                exact_score = weight * impacts[at] * prior_factor[bonus_at]
                bonus_at = bonus_at[exact_score >= kth_largest(exact_score, wanted)]
        candidates = sorted_union([head_books, bonus_at])
        found, at = probe(docs, candidates, size)
        candidates = candidates[found]
        exact_at = np.isin(candidates, bonus_at, assume_unique=True)
    if len(candidates) < wanted:
        return None
    text = weight * impacts[at]
    score = text * prior_factor[candidates]
    score[exact_at] += bonus
    outside = float(weight) * head.bound_at(mean) * (1 + MARGIN)  # the best any book outside can score
    if kth_largest(score, wanted) <= outside:
        return None
    if candidates is head_books and kth_largest(score[exact_at], wanted) <= outside + bonus:
        return None  # rounding: an exact title at the bound could tie the page's last
    return candidates, score


@dataclass(frozen=True, slots=True)
class HeadTerm:
    """One word of an every-word query, matched through one term: its head, postings, weight and, if it has
    one, a quicker way to look books up in its list (a bitmap)."""

    head: Head
    docs: np.ndarray
    impacts: np.ndarray
    weight: np.float32
    probe: Probe | None


def page_from_heads(terms: Sequence[HeadTerm], mean: float, prior_factor: np.ndarray, wanted: int,
                    exact: ExactTitles, bonus: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The books (ascending) and scores that hold the `wanted` best of a query of several words, each one
    term and all of them in every book, or None when the heads cannot vouch for them.

    A book in none of the heads scores at most Σ w_t · bound_t (its key for each term is at most that
    term's bound), so the books of any head that have every term, with the exact titles that do, hold the
    page whenever the wanted-th best of them scores above that. Scores are summed in query order, as when
    every book is ranked, so they are the same to the bit. The exact titles all take part: each has every word
    of the query, so there are never more of them than books a full ranking would score."""
    size = len(prior_factor)
    candidates = sorted_union([*(t.head.positions for t in terms), exact.positions()])
    text = np.zeros(len(candidates), dtype=np.float32)
    for term in terms:
        found, at = term.probe(candidates) if term.probe is not None else probe(term.docs, candidates, size)
        candidates, text = candidates[found], text[found]
        text += term.weight * term.impacts[at]
    if len(candidates) < wanted:
        return None
    score = text * prior_factor[candidates]
    score[exact.among(candidates)] += bonus
    outside = sum(float(t.weight) * t.head.bound_at(mean) for t in terms) * (1 + MARGIN)
    if kth_largest(score, wanted) <= outside:
        return None
    return candidates, score


def kth_largest(values: np.ndarray, k: int) -> float:
    return float(np.partition(values, len(values) - k)[len(values) - k])


def _books_in(head: Head) -> int:
    return len(head.positions)


class Heads:
    """The heads of one index version's common terms, taken on first use."""

    def __init__(self, combined: PostingLists, prior_factor: np.ndarray, mean: float,
                 heads: Iterable[tuple[tuple[int, int], Head]] = ()) -> None:
        self._combined, self._prior_factor, self.mean = combined, prior_factor, mean
        # By (term, size): a shallow page reads a small head even when a deep one was taken.
        self._heads: BudgetedCache[tuple[int, int], Head] = BudgetedCache(KEPT_POSITIONS, _books_in, heads)

    def __len__(self) -> int:
        return len(self._heads)

    @property
    def nbytes(self) -> int:
        return sum(h.positions.nbytes for _, h in self._heads.items())

    def of(self, term: int, wanted: int) -> Head | None:
        """The head of `term`, None when the term is too rare to need one or the page too deep for it."""
        offsets = self._combined.offsets
        size = size_for(wanted)
        too_rare = term >= len(offsets) - 1 or offsets[term + 1] - offsets[term] < HEAD_MIN_BOOKS
        if too_rare or size > MAX_HEAD_SIZE:
            return None
        return self._heads.get((term, size), lambda: taken(*self._combined.get(term), self._prior_factor,
                                                            self.mean, size))

    def warm(self) -> None:
        """Takes the heads of the terms in HEAD_MIN_BOOKS books or more, commonest first (the DEEP_HEADS
        commonest as deep as a page can ask), within KEPT_POSITIONS: one pass over their postings, about
        half of all postings."""
        books = np.diff(self._combined.offsets)
        common = np.flatnonzero(books >= HEAD_MIN_BOOKS)
        commonest = common[np.argsort(-books[common], kind="stable")]
        for term in commonest[:(KEPT_POSITIONS - DEEP_HEADS * MAX_HEAD_SIZE) // HEAD_SIZE][::-1]:
            self.of(int(term), 1)
        for term in commonest[:DEEP_HEADS][::-1]:  # deep pages are asked of the commonest words; last: kept
            self.of(int(term), MAX_HEAD_SIZE // 2)

    def carried(self, combined: PostingLists, prior_factor: np.ndarray, mean: float, removed: np.ndarray | None,
                changed: np.ndarray) -> Heads:
        """These heads for the next index version: without the books `removed` (a mask over the positions;
        the others move down in order), with the books `changed` (new positions: their text or ratings
        differ, or they are new)."""
        heads = self._heads.items()
        gone = np.flatnonzero(removed) if removed is not None else None
        given = np.unique(changed).astype(np.int32)
        carried: dict[tuple[int, int], Head] = {}
        for (term, size), head in heads:
            positions = head.positions
            if gone is not None and removed is not None:
                positions = positions[~removed[positions]]
                positions = positions - np.searchsorted(gone, positions)
            docs, _ = combined.get(term)
            if len(docs):  # the changed books with the term join (a merge: both are ascending)
                at = np.minimum(np.searchsorted(docs, given), len(docs) - 1)
                entering = given[docs[at] == given]
                place = np.searchsorted(positions, entering)
                new = positions[np.minimum(place, len(positions) - 1)] != entering if len(positions) else \
                    np.ones(len(entering), dtype=bool)
                positions = np.insert(positions, place[new], entering[new])
            if len(positions) <= (TIE_ROOM + 1) * head.size:
                # The books outside keep their impacts: the term's largest impact still bounds theirs.
                carried[term, size] = Head(positions.astype(np.int32), head.size, head.bound_at(mean), mean,
                                           head.max_impact)
        return Heads(combined, prior_factor, mean, carried.items())
