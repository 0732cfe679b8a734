"""One page of ranked books: by tier, then score, then the prior, then title order. Pure, numpy.

The order is total and the same on every replica (services/search/README.md, Score): `page` takes
per-candidate keys and the per-book prior and title ranks, and cuts the page without sorting every
candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bookrec_search import kernels
from bookrec_search.columns import probe, sorted_union
from bookrec_search.kernels import read_only

SAMPLED_CUT_MIN, SAMPLED_CUT_RATIO, SAMPLE_SIZE = 50_000, 8, 4096  # when and how a top-k cut is sampled
TIER_STEP = 1e7  # above any text score: tiers rank first
SEARCHED_TITLES_RATIO = 8  # exact titles are searched for among candidates this many times more numerous


@dataclass(frozen=True, slots=True)
class ExactTitles:
    """The books whose normalised title (places `lo`..`hi` of title order) or original title is the query's:
    those the exact-title bonus goes to. Tested per book through its place in title order, so that a title
    thousands of books share ("The") costs the books tested, never a sort of all of them."""

    lo: int
    hi: int
    originals: np.ndarray  # ascending: the books whose original title it is
    title_order: np.ndarray
    title_rank: np.ndarray

    @property
    def count(self) -> int:
        return self.hi - self.lo + len(self.originals)  # a book's original title is kept only where it differs

    def among(self, positions: np.ndarray) -> np.ndarray:
        """Which of `positions` have the title."""
        place = self.title_rank[positions]
        exact = (place >= self.lo) & (place < self.hi)
        if len(self.originals):
            exact |= np.isin(positions, self.originals)
        return exact

    def positions(self) -> np.ndarray:
        """All of them, ascending."""
        return sorted_union([self.title_order[self.lo:self.hi], self.originals.astype(np.int32)])

    def bonus_mask(self, candidates: np.ndarray) -> np.ndarray:
        """Which of the ascending `candidates` have the title, the cheaper way round: a few titles searched
        for among many candidates, or many titles tested per candidate."""
        if self.count * SEARCHED_TITLES_RATIO > len(candidates):
            return self.among(candidates)
        mask = np.zeros(len(candidates), dtype=bool)
        mask[probe(candidates, self.positions(), len(self.title_rank))[1]] = True
        return mask


@dataclass(frozen=True, slots=True)
class Hit:
    """A ranked book. `score` is its text score (see Scoring); `shown_score` is what clients see: the
    score, but never above that of a hit ranked before it, since a better tier (fewer corrections) can
    hold a lower text score and a ranked list reads best with scores that never rise."""

    position: int
    score: float
    shown_score: float


def page(candidates: np.ndarray, key: np.ndarray, offset: int, limit: int, popularity: np.ndarray,
         title_rank: np.ndarray, tier: np.ndarray | None = None) -> list[Hit]:
    """Candidates ranked by tier (lower first), key (higher first), `popularity` (the prior), `title_rank`;
    the page from `offset` of at most `limit` of them. A hit's score is its key."""
    wanted = offset + limit
    if wanted <= offset or not len(candidates):
        return []
    shown = key
    if tier is not None and len(tier) and tier.min() != tier.max():
        key = key.astype(np.float64) - TIER_STEP * tier
    cut = -np.inf
    if len(candidates) > SAMPLED_CUT_MIN and wanted * SAMPLED_CUT_RATIO < len(candidates):
        # A cut-off from an even sample leaves a few times `wanted` candidates to rank; the page is exact
        # whenever at least `wanted` reach it (the wanted-th best key is then at or above it), else is
        # taken again without it.
        sample = key[::len(key) // SAMPLE_SIZE]
        keep_share = min(1.0, 4 * wanted / len(key) + 2 / SAMPLE_SIZE)
        kth = int(len(sample) * (1 - keep_share))
        cut = float(np.partition(sample, kth)[kth])
    arguments = (read_only(key), read_only(candidates), read_only(popularity), read_only(title_rank), wanted)
    ranked = kernels.best_ranked(*arguments, cut)
    if len(ranked) < wanted and cut > -np.inf:
        ranked = kernels.best_ranked(*arguments, -np.inf)
    capped = np.minimum.accumulate(shown[ranked]) if len(ranked) else shown[ranked]
    return [Hit(int(candidates[i]), float(shown[i]), float(c))
            for i, c in zip(ranked[offset:], capped[offset:], strict=True)]
