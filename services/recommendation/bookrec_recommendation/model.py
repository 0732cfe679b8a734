"""The recommender: pure logic, no I/O.

Collaborative model: a neighbourhood-restricted linear item model. Each
book j is predicted from its K most similar books N(j) (cosine over who
rated them) by ridge regression on the item co-occurrence matrix G = BᵀB:

    w_j = (G[N,N] + λI)⁻¹ G[N,j]

It is the closed-form linear item model restricted to K neighbours per
book, so the model holds books×K weights instead of books² (memory grows
with the catalogue times K, never users×items). A user's score for book j
is Σ_{i rated} w_ij, computed from the user's current ratings at request
time, so a rating made seconds ago already counts. Offline evaluation
(bookrec_recommendation.evaluate) chose it over plain item-item cosine.

Cold start: users with fewer than `min_collaborative` ratings, or whose
ratings the model has never seen, get a blend of content similarity
(shared subjects and authors with what they rated) and popularity (a
Bayesian average of each book's ratings).
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from bookrec_common.catalog import normalise_text


@dataclass(frozen=True)
class Recommendation:
    book_id: str
    score: float
    reason: str


@dataclass(frozen=True)
class CatalogueEntry:
    book_id: str
    title: str
    authors: tuple[str, ...]
    subjects: tuple[str, ...]
    rating_sum: int = 0
    rating_count: int = 0


def top_k_per_row(matrix: sp.csr_matrix, k: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k largest off-diagonal entries of each row (padded with -1 / 0)."""
    n = matrix.shape[0]
    k = min(k, max(1, matrix.shape[1] - 1))
    indices = np.full((n, k), -1, dtype=np.int32)
    values = np.zeros((n, k), dtype=np.float32)
    for start in range(0, n, block):
        rows = matrix[start:start + block].toarray()
        rows[np.arange(rows.shape[0]), np.arange(start, start + rows.shape[0])] = 0.0
        part = np.argpartition(-rows, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(rows, part, axis=1)
        order = np.argsort(-vals, axis=1)
        part, vals = np.take_along_axis(part, order, 1), np.take_along_axis(vals, order, 1)
        part[vals <= 0] = -1
        indices[start:start + rows.shape[0]] = part
        values[start:start + rows.shape[0]] = np.where(vals > 0, vals, 0)
    return indices, values


@dataclass
class ItemNeighbourModel:
    """Sparse item-to-item weights: row i holds how much rating book i says about each neighbour."""

    book_ids: list[str]
    weights: sp.csr_matrix  # books × books, at most K non-zeros per column
    popularity: np.ndarray  # ratings per book in the training data
    version: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-"
                         + uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        self.index = {b: i for i, b in enumerate(self.book_ids)}

    @property
    def nbytes(self) -> int:
        w = self.weights
        return int(w.data.nbytes + w.indices.nbytes + w.indptr.nbytes + self.popularity.nbytes)

    @classmethod
    def build(cls, user_ids: Iterable[str], book_ids: Iterable[str], neighbours: int = 100,
              regularisation: float = 50.0) -> ItemNeighbourModel:
        """Build from (user, book) pairs of ratings (implicit: who rated what)."""
        users, user_index = np.unique(np.asarray(list(user_ids), dtype=object), return_inverse=True)
        books, book_index = np.unique(np.asarray(list(book_ids), dtype=object), return_inverse=True)
        n_books = len(books)
        if n_books < 2:
            return cls([str(b) for b in books], sp.csr_matrix((n_books, n_books), dtype=np.float32),
                       np.ones(n_books, dtype=np.float32))
        rated = sp.csr_matrix((np.ones(len(user_index), dtype=np.float32), (user_index, book_index)),
                              shape=(len(users), n_books))
        rated.data[:] = 1.0  # duplicates collapse to one
        gram = (rated.T @ rated).tocsr().astype(np.float32)
        diagonal = gram.diagonal()
        norm = sp.diags(1.0 / np.sqrt(np.maximum(diagonal, 1e-9)))
        neighbour_index, _ = top_k_per_row((norm @ gram @ norm).tocsr(), neighbours)
        k = neighbour_index.shape[1]
        rows, cols, vals = [], [], []
        for start in range(0, n_books, 256):
            targets = np.arange(start, min(n_books, start + 256))
            systems = np.zeros((len(targets), k, k), dtype=np.float32)
            rhs = np.zeros((len(targets), k), dtype=np.float32)
            for q, j in enumerate(targets):
                hood = neighbour_index[j]
                valid = hood >= 0
                sub = gram[hood[valid]][:, np.append(hood[valid], j)].toarray()
                m = int(valid.sum())
                systems[q, :m, :m] = sub[:, :m]
                rhs[q, :m] = sub[:, m]
            systems[:, np.arange(k), np.arange(k)] += regularisation
            solved = np.linalg.solve(systems, rhs[..., None])[..., 0]
            hoods = neighbour_index[targets]
            keep = hoods >= 0
            rows.append(hoods[keep])
            cols.append(np.repeat(targets, k).reshape(len(targets), k)[keep])
            vals.append(solved[keep])
        weights = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                shape=(n_books, n_books), dtype=np.float32)
        return cls([str(b) for b in books], weights, diagonal.astype(np.float32))

    def score(self, rated_books: Iterable[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """Scores of every book for a user who rated `rated_books`, and which rated book explains each."""
        known = [self.index[b] for b in rated_books if b in self.index]
        if not known:
            return None
        contributions = self.weights[known]  # |rated| × books, sparse
        scores = np.asarray(contributions.sum(axis=0)).ravel()
        strongest = np.asarray(contributions.argmax(axis=0)).ravel()
        because = np.asarray(known)[strongest]
        scores[known] = -np.inf
        return scores, because


class Catalogue:
    """What the recommender knows about books: titles and authors for responses, content, popularity."""

    def __init__(self, entries: Iterable[CatalogueEntry]) -> None:
        self.entries = {e.book_id: e for e in entries}
        self.order = list(self.entries)
        counts = np.array([self.entries[b].rating_count for b in self.order], dtype=np.float64)
        sums = np.array([self.entries[b].rating_sum for b in self.order], dtype=np.float64)
        rated = counts > 0
        prior_mean = sums[rated].sum() / counts[rated].sum() if rated.any() else 3.0
        prior_weight = float(np.median(counts[rated])) if rated.any() else 1.0
        # Bayesian average: few ratings pull a book towards the catalogue mean.
        self.bayesian = (sums + prior_weight * prior_mean) / (counts + prior_weight)
        self.popularity_rank = np.argsort(-(self.bayesian + 1e-6 * np.log1p(counts)), kind="stable")
        self.features: dict[str, list[int]] = defaultdict(list)
        for position, book_id in enumerate(self.order):
            for feature in self._features(self.entries[book_id]):
                self.features[feature].append(position)
        self.position = {b: i for i, b in enumerate(self.order)}

    @staticmethod
    def _features(entry: CatalogueEntry) -> set[str]:
        return ({f"a:{normalise_text(a)}" for a in entry.authors if a}
                | {f"s:{normalise_text(s)}" for s in entry.subjects if s})

    def __len__(self) -> int:
        return len(self.order)

    def popular(self, count: int, exclude: set[str]) -> list[Recommendation]:
        picks = []
        for position in self.popularity_rank:
            book_id = self.order[position]
            if book_id in exclude:
                continue
            entry = self.entries[book_id]
            reason = (f"popular: {entry.rating_sum / entry.rating_count:.2f} average from "
                      f"{entry.rating_count} ratings" if entry.rating_count else "popular in the catalogue")
            picks.append(Recommendation(book_id, round(float(self.bayesian[position]), 4), reason))
            if len(picks) == count:
                break
        return picks

    def similar(self, rated: Mapping[str, int], count: int, exclude: set[str],
                popularity_weight: float = 0.3) -> list[Recommendation]:
        """Books sharing subjects and authors with what the user liked, blended with popularity."""
        scores: Counter[int] = Counter()
        because: dict[int, tuple[float, str, str]] = {}
        for book_id, rating in rated.items():
            entry = self.entries.get(book_id)
            if entry is None:
                continue
            liking = (rating - 2.5) / 2.5  # 5 stars: +1, 1 star: -0.6
            for feature in self._features(entry):
                holders = self.features.get(feature, ())
                if len(holders) < 2:
                    continue
                # Rare shared features say more than common ones (inverse document frequency).
                weight = liking * math.log(1 + len(self.order) / len(holders)) * (2.0 if feature[0] == "a" else 1.0)
                for position in holders:
                    scores[position] += weight
                    if weight > because.get(position, (0.0, "", ""))[0]:
                        because[position] = (weight, feature, book_id)
        if not scores:
            return self.popular(count, exclude)
        top = max(scores.values())
        blended = [(s / top * (1 - popularity_weight) + popularity_weight * (self.bayesian[p] - 1) / 4, p)
                   for p, s in scores.items() if s > 0 and self.order[p] not in exclude]
        blended.sort(reverse=True)
        picks = []
        for score, position in blended[:count]:
            _, feature, source = because[position]
            kind, name = ("by", self._display(feature)) if feature[0] == "a" else ("about", self._display(feature))
            picks.append(Recommendation(self.order[position], round(float(score), 4),
                                        f"{kind} {name}, like {self.title(source)}"))
        if len(picks) < count:
            picks += self.popular(count - len(picks), exclude | {p.book_id for p in picks})
        return picks

    @staticmethod
    def _display(feature: str) -> str:
        return feature[2:]

    def title(self, book_id: str) -> str:
        entry = self.entries.get(book_id)
        return f"“{entry.title}”" if entry else book_id


@dataclass
class Recommender:
    """The model and the catalogue it was built with, swapped in together."""

    model: ItemNeighbourModel
    catalogue: Catalogue
    min_collaborative: int = 3
    built_at: float = field(default_factory=time.time)

    @property
    def version(self) -> str:
        return self.model.version

    def recommend(self, rated: Mapping[str, int], count: int) -> tuple[str, list[Recommendation]]:
        """(strategy, recommendations) for a user's current ratings, excluding what they rated."""
        exclude = set(rated)
        if len(rated) >= self.min_collaborative:
            scored = self.model.score(rated)
            if scored is not None:
                scores, because = scored
                finite = np.isfinite(scores) & (scores > 0)
                candidates = np.flatnonzero(finite)
                if len(candidates):
                    best = candidates[np.argsort(-scores[candidates], kind="stable")[:count + len(exclude)]]
                    picks = []
                    for position in best:
                        book_id = self.model.book_ids[position]
                        if book_id in exclude:
                            continue
                        source = self.model.book_ids[because[position]]
                        picks.append(Recommendation(book_id, round(float(scores[position]), 4),
                                                    f"readers of {self.catalogue.title(source)} also rated it"))
                        if len(picks) == count:
                            break
                    if len(picks) < count:
                        picks += self.catalogue.similar(rated, count - len(picks),
                                                        exclude | {p.book_id for p in picks})
                    return "collaborative", picks
        if rated:
            return "content+popularity", self.catalogue.similar(rated, count, exclude)
        return "popularity", self.catalogue.popular(count, exclude)


def catalogue_entry(record: Mapping[str, Any]) -> CatalogueEntry:
    return CatalogueEntry(
        book_id=record["book_id"], title=record.get("title", ""),
        authors=tuple(a.get("name", "") for a in record.get("authors", []) if isinstance(a, Mapping)),
        subjects=tuple(record.get("subjects", [])[:20]),
        rating_sum=int(record.get("rating_sum", 0)), rating_count=int(record.get("rating_count", 0)))
