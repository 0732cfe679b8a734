"""Fitting the item-neighbour weights (pure: arrays in, arrays out; no I/O).

Each book j is predicted from its K most similar books N(j) (cosine over who rated them) by ridge
regression on the item co-occurrence matrix G = BᵀB:

    w_j = (G[N,N] + λI)⁻¹ G[N,j]

G is computed a block of rows at a time and kept sparse in float32; each block also yields its books'
K nearest neighbours. The ridge systems are then gathered for a chunk of books at a time from dense
copies of only the rows of G they need, and solved batched. Nothing books × books is ever dense; peak
memory is about 1.5 × the sparse G.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp


class FittedWeights(NamedTuple):
    book_ids: list[str]  # sorted; position i is row and column i of the weights
    weights: sp.csr_matrix  # books × books: row i, what rating book i says of each neighbour
    popularity: np.ndarray  # ratings per book in the training data
    cooccurrence: np.ndarray  # beside weights.data: how many readers rated both books of each weight


def fit(user_ids: Iterable[str], book_ids: Iterable[str], neighbours: int, regularisation: float,
        working_bytes: int | None = None) -> FittedWeights:
    """The weights from (user, book) pairs of ratings (implicit: who rated what). Ids are str.

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
        empty = sp.csr_matrix((n, n), dtype=np.float32)  # type: ignore[arg-type]  # stubs lack the shape form
        return FittedWeights(books, empty, np.ones(n, dtype=np.float32), np.zeros(0, dtype=np.float32))
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
    rows, cols, vals, both = [], [], [], []
    for start in range(0, n, chunk):
        targets = np.arange(start, min(n, start + chunk))
        systems = _gather_systems(gram_blocks, hoods[targets], targets)
        solved = _solve(systems, regularisation)
        hood = hoods[targets]
        keep = hood >= 0
        both.append(systems[:, :, k][keep])  # G[N_j, j]: readers of each neighbour who also rated j
        del systems
        rows.append(hood[keep])
        cols.append(np.broadcast_to(targets[:, None], hood.shape)[keep].astype(np.int32))
        vals.append(solved[keep])
    del gram_blocks
    neighbour, target = order[np.concatenate(rows)], order[np.concatenate(cols)]
    weights = sp.csr_matrix((np.concatenate(vals), (neighbour, target)), shape=(n, n), dtype=np.float32)
    # The same (row, column) pairs in the same order make the same layout: its data lines up with the weights'.
    cooccurrence = sp.csr_matrix((np.concatenate(both), (neighbour, target)), shape=(n, n), dtype=np.float32)
    if not (np.array_equal(cooccurrence.indices, weights.indices)
            and np.array_equal(cooccurrence.indptr, weights.indptr)):
        raise AssertionError("co-occurrence counts out of line with the weights")
    return FittedWeights(books, weights, counts, cooccurrence.data)


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
