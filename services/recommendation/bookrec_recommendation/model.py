"""The recommender: the collaborative model and the catalogue, together (pure: no I/O).

Collaborative model: a neighbourhood-restricted linear item model. Each book j is predicted from its
K most similar books N(j) (cosine over who rated them) by ridge regression on the item co-occurrence
matrix G = BᵀB (`neighbours.fit`):

    w_j = (G[N,N] + λI)⁻¹ G[N,j]

It is the closed-form linear item model restricted to K neighbours per book, so the model holds
books×K weights instead of books² (memory grows with the catalogue times K, never users×items). A
user's score for book j is Σ_{i rated} w_ij, computed from the user's current ratings at request
time, so a rating made seconds ago already counts. Offline evaluation (`make evaluate`) chose it over
plain item-item cosine.

Scoring (`ItemNeighbourModel.top`): the rated books' rows of the weights are summed into scores for
every book; only the N best are explained, from the dense |rated| × N slice of the weights (the rated
book that contributes most to each).

Ids are str everywhere (book ids like "OL123W" or "GB123", user ids); anything else is refused with a
TypeError rather than silently missed.

Cold start: users with fewer than `min_collaborative` ratings, or whose ratings the model has never
seen, get the catalogue's blend of content similarity and popularity (`catalogue`).

A reader's interest is what they rated, at their stars, and what they shelved without rating it, as
SHELVED_STARS (`interest`): a reader with shelves and no ratings gets a list of their own. Nothing they
rated or shelved is ever recommended; `exclude` removes more, `within` keeps only the books given (a
subject's), the model's picks first and content and popularity among those books after.

Similar books (`Recommender.similar`, `similar`): the books the model paired with a book, by how many
readers rated both.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from bookrec_recommendation.catalogue import Catalogue, CatalogueEntry, Recommendation, ranked
from bookrec_recommendation.neighbours import fit
from bookrec_recommendation.similar import SIMILAR_EXPONENT, PairedBooks, readers_also_liked, similar_books

ACTIVE_USERS = 200  # the most active raters, whose lists a refresh pre-warms
# A book shelved (want to read, reading, read) and not rated counts as a 4-star rating: the reader chose
# it; a rating, when there is one, says more and is kept.
SHELVED_STARS = 4


def interest(stars: Mapping[str, int], shelved: Iterable[str]) -> dict[str, int]:
    """What the model scores a reader from: their ratings, and their shelved books as SHELVED_STARS."""
    return {**dict.fromkeys(shelved, SHELVED_STARS), **stars}

def _require_str(book_id: object) -> str:
    if not isinstance(book_id, str):
        raise TypeError(f"book ids must be str, got {type(book_id).__name__} {book_id!r}")
    return book_id


@dataclass(frozen=True)
class ScoredBooks:
    """A user's best books by model position, best first, with the rated book that explains each."""

    positions: np.ndarray
    scores: np.ndarray
    because: np.ndarray


@dataclass
class ItemNeighbourModel:
    """Sparse item-to-item weights: row i holds how much rating book i says about each neighbour."""

    book_ids: list[str]
    weights: sp.csr_matrix  # books × books, at most K non-zeros per column
    popularity: np.ndarray  # ratings per book in the training data
    cooccurrence: np.ndarray | None = None  # beside weights.data: readers who rated both books of a weight
    version: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-"
                         + uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        for book_id in self.book_ids:
            _require_str(book_id)
        self.index = {b: i for i, b in enumerate(self.book_ids)}

    @property
    def nbytes(self) -> int:
        w = self.weights
        counts = self.cooccurrence.nbytes if self.cooccurrence is not None else 0
        return int(w.data.nbytes + w.indices.nbytes + w.indptr.nbytes + self.popularity.nbytes + counts)

    @classmethod
    def build(cls, user_ids: Iterable[str], book_ids: Iterable[str], neighbours: int = 100,
              regularisation: float = 50.0, working_bytes: int | None = None) -> ItemNeighbourModel:
        """Build from (user, book) pairs of ratings (implicit: who rated what). Ids are str."""
        return cls(*fit(user_ids, book_ids, neighbours, regularisation, working_bytes))

    def _positions(self, rated_books: Iterable[str]) -> np.ndarray:
        found = [self.index.get(_require_str(b), -1) for b in rated_books]
        return np.unique(np.array([p for p in found if p >= 0], dtype=np.int64))

    def score(self, rated_books: Iterable[str]) -> np.ndarray | None:
        """Every book's score for a user who rated `rated_books` (rated ones -inf); None if none is known."""
        known = self._positions(rated_books)
        if not known.size:
            return None
        return self._contributions(known)[0]

    def _contributions(self, known: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(scores, and per non-zero weight of the rated rows: its column, value, and rated row's rank)."""
        indptr = self.weights.indptr
        lengths = (indptr[known + 1] - indptr[known]).astype(np.int64)
        offsets = np.cumsum(lengths) - lengths
        entries = np.repeat(indptr[known] - offsets, lengths) + np.arange(int(lengths.sum()))
        columns, values = self.weights.indices[entries], self.weights.data[entries]
        scores = np.bincount(columns, weights=values, minlength=len(self.book_ids))
        scores[known] = -np.inf
        return scores, columns, values, np.repeat(np.arange(len(known)), lengths)

    def top(self, rated_books: Iterable[str], count: int, within: np.ndarray | None = None) -> ScoredBooks | None:
        """The `count` best-scored books (score > 0) and why; None if none of the rated books is known.
        `within`: a mask of the positions that may be picked (None: any).

        Explanations are found for these books only: the dense |rated| × count slice of the weights,
        whose argmax per column names the rated book contributing most."""
        known = self._positions(rated_books)
        if not known.size:
            return None
        if count < 1:
            return ScoredBooks(*(np.empty(0, dtype=np.int64),) * 3)
        scores, columns, values, rated_rank = self._contributions(known)
        candidates = np.flatnonzero(scores > 0)
        if within is not None:
            candidates = candidates[within[candidates]]
        if len(candidates) > count:
            candidates = candidates[np.argpartition(-scores[candidates], count - 1)[:count]]
        best = candidates[np.lexsort((candidates, -scores[candidates]))]
        place = np.full(len(self.book_ids), -1, dtype=np.int64)
        place[best] = np.arange(len(best))
        wanted = place[columns] >= 0
        slice_ = np.zeros((len(known), len(best)), dtype=np.float32)
        slice_[rated_rank[wanted], place[columns[wanted]]] = values[wanted]
        return ScoredBooks(best, scores[best], known[slice_.argmax(axis=0)])


@dataclass
class Recommender:
    """The model and the catalogue it was built with, swapped in together."""

    model: ItemNeighbourModel
    catalogue: Catalogue
    min_collaborative: int = 3
    built_at: float = field(default_factory=time.time)
    active_users: list[str] = field(default_factory=list)  # the most active raters: whose lists to pre-warm

    def __post_init__(self) -> None:
        self.pairs = PairedBooks(self.model.weights, self.model.cooccurrence)

    @property
    def version(self) -> str:
        return self.model.version

    def recommend(self, rated: Mapping[str, int], count: int, exclude: frozenset[str] = frozenset(),
                  within: frozenset[str] | None = None) -> tuple[str, list[Recommendation]]:
        """(strategy, recommendations) for a reader's interest (`interest`), excluding what it holds and
        `exclude`; given `within`, only those books."""
        excluded = set(rated) | exclude
        if len(rated) >= self.min_collaborative:
            mask = None
            if within is not None:
                mask = np.zeros(len(self.model.book_ids), dtype=bool)
                mask[[p for p in map(self.model.index.get, within) if p is not None]] = True
            scored = self.model.top(rated, count + len(exclude), mask)
            if scored is not None and len(scored.positions):
                book_ids = self.model.book_ids
                picks = [Recommendation(book_ids[position], round(float(score), 4),
                                        f"readers of {self.catalogue.title(book_ids[source])} also rated it")
                         for position, score, source in zip(scored.positions.tolist(), scored.scores.tolist(),
                                                            scored.because.tolist(), strict=True)
                         if book_ids[position] not in exclude][:count]
                if len(picks) < count:
                    picks += self.catalogue.similar(rated, count - len(picks),
                                                    excluded | {p.book_id for p in picks}, within=within)
                return "collaborative", ranked(picks)
        if rated:
            return "content+popularity", self.catalogue.similar(rated, count, excluded, within=within)
        return "popularity", self.catalogue.popular(count, excluded, within)

    def similar(self, book_id: str, count: int, exclude: frozenset[str] = frozenset(),
                exponent: float = SIMILAR_EXPONENT) -> list[Recommendation] | None:
        """Up to `count` books like `book_id` (`similar`), never one of `exclude`; None if the catalogue
        does not hold the book (unknown, or removed)."""
        if _require_str(book_id) not in self.catalogue.entries:
            return None
        position = self.model.index.get(book_id)
        scored = None if position is None else readers_also_liked(self.pairs, self.model.popularity, position,
                                                                  exponent)
        return similar_books(self.model.book_ids, scored, self.catalogue, book_id, count, exclude)



class TrainingData(NamedTuple):
    """What a recommender is trained from: who rated what (parallel lists), and the catalogue."""

    user_ids: list[str]
    book_ids: list[str]
    catalogue: list[CatalogueEntry]


def train(data: TrainingData, neighbours: int, regularisation: float) -> Recommender:
    """The recommender from one read of the tables (seconds of CPU: run it off the event loop)."""
    model = ItemNeighbourModel.build(data.user_ids, data.book_ids, neighbours, regularisation)
    active = [user for user, _ in Counter(data.user_ids).most_common(ACTIVE_USERS)]
    return Recommender(model, Catalogue(data.catalogue), active_users=active)
