"""Similar lists whose pairs are ranked by a random walk that discounts heavy readers (RP3β), for
`make evaluate` (`evaluate.evaluate_similar`) to measure beside the service's both/n_j^β.

RP3β (Paudel, Christoffel, Chiappe, Bernstein, "Updatable, accurate, diverse, and scalable
recommendations for interactive applications", ACM TiiS 2017) scores j for a seed s by the 2-step walk
s → reader u → j with each transition probability raised to α, then divides by j's popularity:

    score(j) = Σ_{u rated s and j} 1/deg(u)^α  /  n_j^β       deg(u): how many books u rated

(the seed's own step, 1/n_s^α, is the same for every j and changes no ranking). α = 0 is the service's
both/n_j^β. A reader who rated half the catalogue says little about what goes with the seed; α counts
them less. Variants: over the model's pairs (what a replica holds) or every co-reader; and counting only
co-readers who rated the seed ≥ 4 (who liked it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from bookrec_recommendation.catalogue import Catalogue
from bookrec_recommendation.model import ItemNeighbourModel, Recommender
from bookrec_recommendation.similar import similar_books

# (row name, every co-reader instead of the model's pairs, only co-readers who rated the seed >= 4)
VARIANTS = [("readers 1/deg^α, model's pairs", False, False),
            ("readers 1/deg^α, every co-reader", True, False),
            ("readers 1/deg^α who liked the seed, model's pairs", False, True),
            ("readers 1/deg^α who liked the seed, every co-reader", True, True)]

LIKED = 4


def walk_similar(model: ItemNeighbourModel, catalogue: Catalogue, values: sp.csr_matrix, alpha: float,
                 beta: float, every_coreader: bool, liked_seed: bool, count: int,
                 cache: dict | None = None) -> Callable[[int, set[int]], list[int]]:
    """The service's list (`similar_books`: the series' next book, the pairs, content, popularity) for a
    seed (a column of `values`, the training ratings; model ids are column numbers), the pairs ranked by
    the walk. `cache`, shared by the lists of one `values`, keeps each seed's walk sums across β."""
    recommender = Recommender(model, catalogue)
    column = np.array([int(b) for b in model.book_ids])
    position_of = np.full(values.shape[1], -1, dtype=np.int64)
    position_of[column] = np.arange(len(column))
    binary = values.astype(np.float32).tocsr()
    binary.data[:] = 1.0  # ratings are 1-5 stars: every stored entry is a book read
    readers = values.T.tocsr()
    down = np.maximum(np.asarray(binary.sum(axis=1)).ravel(), 1.0) ** -alpha
    cache = {} if cache is None else cache

    def walk(seed: int) -> np.ndarray:
        key = (seed, alpha, liked_seed)
        if key not in cache:
            row = readers[seed]
            kept = row.indices[row.data >= LIKED] if liked_seed else row.indices
            cache[key] = np.asarray(binary[kept].T @ down[kept]).ravel()  # by column
        return cache[key]

    def similar(seed: int, skip: set[int]) -> list[int]:
        position = model.index[str(seed)]
        if every_coreader:
            paired = position_of[np.flatnonzero(walk(seed))]
            paired = paired[(paired >= 0) & (paired != position)]
        else:
            paired = recommender.pairs.of(position)[0]
        strength = walk(seed)[column[paired]]
        paired, strength = paired[strength > 0], strength[strength > 0]
        scores = strength / np.maximum(model.popularity[paired], 1.0) ** beta
        order = np.lexsort((paired, -strength, -scores))  # the service's ties: the stronger, then position
        picks = similar_books(model.book_ids, (paired[order], scores[order], strength[order]), catalogue,
                              str(seed), count, frozenset(map(str, skip)))
        return [int(p.book_id) for p in picks]

    return similar
