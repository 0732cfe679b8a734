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

Build (`ItemNeighbourModel.build`): G is computed a block of rows at a
time and kept sparse in float32; each block also yields its books' K
nearest neighbours. The ridge systems are then gathered for a chunk of
books at a time from dense copies of only the rows of G they need, and
solved batched. Nothing books × books is ever dense; peak memory is about
1.5 × the sparse G.

Scoring (`ItemNeighbourModel.top`): the rated books' rows of the weights
are summed into scores for every book; only the N best are explained,
from the dense |rated| × N slice of the weights (the rated book that
contributes most to each).

Ids are str everywhere (book ids like "OL123W" or "GB123", user ids);
anything else is refused with a TypeError rather than silently missed.

Cold start: users with fewer than `min_collaborative` ratings, or whose
ratings the model has never seen, get a blend of content similarity
(shared subjects and authors with what they rated) and popularity.
Popularity ranks books by the lower confidence bound of a Bayesian
average of their ratings (prior weight: the median book's rating count),
so a handful of 5-star ratings cannot outrank thousands of 4s.
"""

from __future__ import annotations

import itertools
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


# The popularity prior: a typical spread of 1-5 star ratings, and a one-sided 95% bound.
RATING_SPREAD = 1.0
CONFIDENCE_Z = 1.645


@dataclass(frozen=True)
class Recommendation:
    book_id: str
    score: float
    reason: str


def ranked(picks: list[Recommendation]) -> list[Recommendation]:
    """Picks as shown: a score never above the one before it. Picks that fill a list from a weaker
    strategy (content after collaborative, popularity after content) come after, whatever their own
    scale; their score is capped so the list reads in order."""
    shown: list[Recommendation] = []
    for pick in picks:
        if shown and pick.score > shown[-1].score:
            pick = Recommendation(pick.book_id, shown[-1].score, pick.reason)
        shown.append(pick)
    return shown


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
        indices[start:start + rows.shape[0]], values[start:start + rows.shape[0]] = _top_k(rows, k)
    return indices, values


def _top_k(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns and values of the k largest positive entries of each dense row, best first (-1 / 0 padding)."""
    part = np.argpartition(-rows, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(rows, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    part, vals = np.take_along_axis(part, order, 1), np.take_along_axis(vals, order, 1)
    positive = vals > 0
    return np.where(positive, part, -1).astype(np.int32), np.where(positive, vals, 0).astype(np.float32)


def _codes(ids: Iterable[str], what: str) -> tuple[list[str], np.ndarray]:
    """The distinct ids, sorted, and each given id's position among them. Ids are str, else TypeError."""
    index: defaultdict[str, int] = defaultdict(itertools.count().__next__)  # a new id gets the next code
    codes = np.fromiter(map(index.__getitem__, ids), dtype=np.int64)
    wrong = next((i for i in index if not isinstance(i, str)), None)
    if wrong is not None:
        raise TypeError(f"{what} ids must be str, got {type(wrong).__name__} {wrong!r}")
    names = sorted(index)
    rank = np.empty(len(names), dtype=np.int64)
    rank[[index[name] for name in names]] = np.arange(len(names))
    return [str(name) for name in names], rank[codes]


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
    version: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-"
                         + uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        for book_id in self.book_ids:
            _require_str(book_id)
        self.index = {b: i for i, b in enumerate(self.book_ids)}

    @property
    def nbytes(self) -> int:
        w = self.weights
        return int(w.data.nbytes + w.indices.nbytes + w.indptr.nbytes + self.popularity.nbytes)

    @classmethod
    def build(cls, user_ids: Iterable[str], book_ids: Iterable[str], neighbours: int = 100,
              regularisation: float = 50.0, working_bytes: int | None = None) -> ItemNeighbourModel:
        """Build from (user, book) pairs of ratings (implicit: who rated what). Ids are str.

        In three passes, none holding anything books × books densely:
        1. co-occurrence G = BᵀB, a block of rows at a time, kept sparse (float32), and each book's K
           nearest neighbours by cosine taken from the same block;
        2. for a chunk of target books, the systems G[N,N] | G[N,j] are gathered from dense copies of
           only the rows some neighbourhood in the chunk needs; a chunk holds at most `working_bytes`
           (default: half as much as G itself, at least 64 MiB), so memory stays about 1.5 × G;
        3. the chunk's ridge systems are solved batched (float32).
        """
        users, user_codes = _codes(user_ids, "user")
        books, book_codes = _codes(book_ids, "book")
        if len(user_codes) != len(book_codes):
            raise ValueError(f"{len(user_codes)} user ids but {len(book_codes)} book ids")
        n = len(books)
        if n < 2:
            return cls(books, sp.csr_matrix((n, n), dtype=np.float32), np.ones(n, dtype=np.float32))
        rated = sp.csr_matrix((np.ones(len(user_codes), dtype=np.float32), (user_codes, book_codes)),
                              shape=(len(users), n))
        del user_codes, book_codes
        rated.data[:] = 1.0  # duplicates collapse to one
        counts = np.asarray(rated.sum(axis=0), dtype=np.float32).ravel()
        # Internally books are numbered most rated first, so each block of G rows holds rows of similar
        # length (popular books co-occur with many, rare ones with few); mapped back at the end.
        order = np.argsort(-counts, kind="stable")
        rated = rated[:, order].tocsr()
        k = min(neighbours, n - 1)
        gram_blocks, hoods = _cooccurrence_and_neighbours(rated, counts[order], k)
        hoods.sort(axis=1)  # the order within a neighbourhood is free; ascending makes the gathers sequential
        del rated
        gram_bytes = sum(b.data.nbytes + b.indices.nbytes + b.indptr.nbytes for _, b in gram_blocks)
        budget = working_bytes or max(64 * 2**20, gram_bytes // 2)
        chunk = max(64, budget // (k * (k + 1) * 4))
        rows, cols, vals = [], [], []
        for start in range(0, n, chunk):
            targets = np.arange(start, min(n, start + chunk))
            systems = _gather_systems(gram_blocks, hoods[targets], targets)
            solved = _solve(systems, regularisation)
            del systems
            hood = hoods[targets]
            keep = hood >= 0
            rows.append(hood[keep])
            cols.append(np.broadcast_to(targets[:, None], hood.shape)[keep].astype(np.int32))
            vals.append(solved[keep])
        del gram_blocks
        neighbour, target = order[np.concatenate(rows)], order[np.concatenate(cols)]
        weights = sp.csr_matrix((np.concatenate(vals), (neighbour, target)), shape=(n, n), dtype=np.float32)
        return cls(books, weights, counts)

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

    def top(self, rated_books: Iterable[str], count: int) -> ScoredBooks | None:
        """The `count` best-scored books (score > 0) and why; None if none of the rated books is known.

        Explanations are found for these books only: the dense |rated| × count slice of the weights,
        whose argmax per column names the rated book contributing most."""
        known = self._positions(rated_books)
        if not known.size:
            return None
        if count < 1:
            return ScoredBooks(*(np.empty(0, dtype=np.int64),) * 3)
        scores, columns, values, rated_rank = self._contributions(known)
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > count:
            candidates = candidates[np.argpartition(-scores[candidates], count - 1)[:count]]
        best = candidates[np.lexsort((candidates, -scores[candidates]))]
        place = np.full(len(self.book_ids), -1, dtype=np.int64)
        place[best] = np.arange(len(best))
        wanted = place[columns] >= 0
        slice_ = np.zeros((len(known), len(best)), dtype=np.float32)
        slice_[rated_rank[wanted], place[columns[wanted]]] = values[wanted]
        return ScoredBooks(best, scores[best], known[slice_.argmax(axis=0)])


def _cooccurrence_and_neighbours(rated: sp.csr_matrix, counts: np.ndarray, k: int, cells: int = 2**22
                                 ) -> tuple[list[tuple[int, sp.csr_matrix]], np.ndarray]:
    """Rows of G = BᵀB in blocks of about `cells` cells, and each book's k nearest by cosine.

    Top-k works on each block's non-zeros only, laid out row by row in a (rows × longest row) array."""
    n = rated.shape[1]
    readers = rated.T.tocsr()
    inverse_norm = (1.0 / np.sqrt(np.maximum(counts, 1e-9))).astype(np.float32)
    step = max(16, min(1024, cells // n))
    blocks: list[tuple[int, sp.csr_matrix]] = []
    hoods = np.full((n, k), -1, dtype=np.int32)
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = (readers[start:stop] @ rated).tocsr()
        block.indices = block.indices.astype(np.int32, copy=False)
        block.indptr = block.indptr.astype(np.int64, copy=False)
        blocks.append((start, block))
        lengths = np.diff(block.indptr)
        row = np.repeat(np.arange(stop - start), lengths)
        place = np.arange(block.nnz) - np.repeat(block.indptr[:-1], lengths)
        cosine = block.data * inverse_norm[start + row] * inverse_norm[block.indices]
        cosine[block.indices == start + row] = 0.0  # a book is not its own neighbour
        width = max(k, int(lengths.max(initial=0)))
        padded = np.zeros((stop - start, width), dtype=np.float32)
        padded[row, place] = cosine
        columns = np.full((stop - start, width), -1, dtype=np.int32)
        columns[row, place] = block.indices
        best = _top_k(padded, k)[0]
        hoods[start:stop] = np.where(best >= 0, np.take_along_axis(columns, np.maximum(best, 0), 1), -1)
        del padded, columns, cosine, row, place
    return blocks, hoods


def _gather_systems(blocks: list[tuple[int, sp.csr_matrix]], hoods: np.ndarray, targets: np.ndarray,
                    pieces: int = 1 << 14) -> np.ndarray:
    """[G[N_j, N_j] | G[N_j, j]] for each target j: (targets, K, K+1) float32, zero where N_j is padding."""
    k = hoods.shape[1]
    n = blocks[0][1].shape[1]
    # Padding (-1) reads column n: the dense rows get one extra column, of zeros.
    columns = np.concatenate([np.where(hoods >= 0, hoods, n), targets[:, None]], axis=1)
    systems = np.zeros((len(targets), k, k + 1), dtype=np.float32)
    flat_systems = systems.reshape(-1, k + 1)  # one row per (target, neighbour) slot
    flat = hoods.ravel()
    slots = np.flatnonzero(flat >= 0)
    slots = slots[np.argsort(flat[slots], kind="stable")]  # grouped by the G row each slot needs
    needed = flat[slots]
    bounds = np.searchsorted(needed, [start for start, _ in blocks] + [n])
    buffer = np.zeros((max(b.shape[0] for _, b in blocks), n + 1), dtype=np.float32)  # zeroed after each use
    for (start, block), lo, hi in zip(blocks, bounds[:-1], bounds[1:], strict=True):
        if lo == hi:
            continue
        rows, local = np.unique(needed[lo:hi], return_inverse=True)
        picked = block[rows - start]
        dense = buffer[:len(rows)]
        filled = np.repeat(np.arange(len(rows)) * dense.shape[1], np.diff(picked.indptr)) + picked.indices
        dense.ravel()[filled] = picked.data  # only the non-zeros are written, and zeroed again below
        for piece in range(lo, hi, pieces):
            end = min(hi, piece + pieces)
            # Flat indices, rows ascending and each neighbourhood's columns ascending: a near-sequential read.
            cells = local[piece - lo:end - lo, None] * dense.shape[1] + columns[slots[piece:end] // k]
            flat_systems[slots[piece:end]] = dense.ravel().take(cells)
        dense.ravel()[filled] = 0.0
    return systems


def _solve(systems: np.ndarray, regularisation: float, batch: int = 512) -> np.ndarray:
    """w_j = (G[N,N] + λI)⁻¹ G[N,j] for each gathered system (padding solves to 0)."""
    k = systems.shape[1]
    diagonal = np.arange(k)
    out = np.empty((len(systems), k), dtype=np.float32)
    for start in range(0, len(systems), batch):
        part = systems[start:start + batch]
        lhs = part[:, :, :k].copy()
        lhs[:, diagonal, diagonal] += regularisation
        out[start:start + batch] = np.linalg.solve(lhs, part[:, :, k:])[..., 0]
    return out


class Catalogue:
    """What the recommender knows about books: titles and authors for responses, content, popularity."""

    def __init__(self, entries: Iterable[CatalogueEntry]) -> None:
        self.entries = {e.book_id: e for e in entries}
        self.order = list(self.entries)
        counts = np.array([self.entries[b].rating_count for b in self.order], dtype=np.float64)
        sums = np.array([self.entries[b].rating_sum for b in self.order], dtype=np.float64)
        rated = counts > 0
        prior_mean = sums[rated].sum() / counts[rated].sum() if rated.any() else 3.0
        prior_weight = max(1.0, float(np.median(counts[rated]))) if rated.any() else 1.0
        # Bayesian average: few ratings pull a book towards the catalogue mean, with the weight of a
        # typical book's ratings. Ranked by its lower confidence bound, so a handful of 5s cannot beat
        # thousands of 4s: a book is credited with what its ratings show beyond doubt.
        self.bayesian = (sums + prior_weight * prior_mean) / (counts + prior_weight)
        self.prior = self.bayesian - CONFIDENCE_Z * RATING_SPREAD / np.sqrt(counts + prior_weight)
        self.popularity_rank = np.lexsort((-counts, -self.prior))
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
            picks.append(Recommendation(book_id, round(float(self.prior[position]), 4), reason))
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
                weight = (liking * math.log(1 + len(self.order) / len(holders))
                          * (2.0 if feature[0] == "a" else 1.0))
                for position in holders:
                    scores[position] += weight
                    if weight > because.get(position, (0.0, "", ""))[0]:
                        because[position] = (weight, feature, book_id)
        if not scores:
            return self.popular(count, exclude)
        top = max(scores.values())
        blended = [(s / top * (1 - popularity_weight) + popularity_weight * (self.prior[p] - 1) / 4, p)
                   for p, s in scores.items() if s > 0 and self.order[p] not in exclude]
        blended.sort(reverse=True)
        picks = []
        for score, position in blended[:count]:
            _, feature, source = because[position]
            kind = "by" if feature[0] == "a" else "about"
            name = self._display(feature)
            picks.append(Recommendation(self.order[position], round(float(score), 4),
                                        f"{kind} {name}, like {self.title(source)}"))
        if len(picks) < count:
            picks += self.popular(count - len(picks), exclude | {p.book_id for p in picks})
        return ranked(picks)

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
    active_users: list[str] = field(default_factory=list)  # the most active raters: whose lists to pre-warm

    @property
    def version(self) -> str:
        return self.model.version

    def recommend(self, rated: Mapping[str, int], count: int) -> tuple[str, list[Recommendation]]:
        """(strategy, recommendations) for a user's current ratings, excluding what they rated."""
        exclude = set(rated)
        if len(rated) >= self.min_collaborative:
            scored = self.model.top(rated, count)
            if scored is not None and len(scored.positions):
                book_ids = self.model.book_ids
                picks = [Recommendation(book_ids[position], round(float(score), 4),
                                        f"readers of {self.catalogue.title(book_ids[source])} also rated it")
                         for position, score, source in zip(scored.positions.tolist(), scored.scores.tolist(),
                                                            scored.because.tolist(), strict=True)]
                if len(picks) < count:
                    picks += self.catalogue.similar(rated, count - len(picks),
                                                    exclude | {p.book_id for p in picks})
                return "collaborative", ranked(picks)
        if rated:
            return "content+popularity", self.catalogue.similar(rated, count, exclude)
        return "popularity", self.catalogue.popular(count, exclude)


def catalogue_entry(record: Mapping[str, Any]) -> CatalogueEntry:
    return CatalogueEntry(
        book_id=record["book_id"], title=record.get("title", ""),
        authors=tuple(a.get("name", "") for a in record.get("authors", []) if isinstance(a, Mapping)),
        subjects=tuple(record.get("subjects", [])[:20]),
        rating_sum=int(record.get("rating_sum", 0)), rating_count=int(record.get("rating_count", 0)))
