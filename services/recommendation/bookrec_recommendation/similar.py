"""Books like a given one (pure: arrays in, picks out; no I/O).

Readers also liked: the books the model paired with the seed, in either direction (j among the seed's
K nearest, or the seed among j's), with how many readers rated both (`ItemNeighbourModel.cooccurrence`,
kept beside the weights). They are ranked by

    score(j) = both(seed, j) / n_j ^ β        β = SIMILAR_EXPONENT, chosen by `make evaluate` on a
                                              validation split

where n_j is how many readers rated j: β = 0 is the raw count (what everyone reads comes first),
β = 0.5 the cosine (rare books that share a few readers come first).

The seed's next book in its series comes first; content similarity (shared authors, subjects, series)
fills the list for a book the model does not know, or after the model's pairs run out
(`Catalogue.similar`), then popularity.

For a reader (`for_reader`), the same list is re-ranked by the reader's own recommendations: the series'
next book stays first, then the books of the list that their cached list holds, in its order, then the rest
as they were. It costs no more
than the reader's list does (one Redis GET when cached), and on the bundled ratings it lifts hit@10 from
1.33x popularity's to 1.68x (services/recommendation/README.md, "Similar books").
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from bookrec_recommendation.catalogue import Catalogue, Recommendation, ranked

SIMILAR_EXPONENT = 0.35


class PairedBooks:
    """The model's neighbourhoods made symmetric: for each book, every book paired with it, and how many
    readers rated both (float32 counts, exact to 16M; 8 bytes per pair)."""

    def __init__(self, weights: sp.csr_matrix, cooccurrence: np.ndarray | None) -> None:
        n = weights.shape[0]
        if cooccurrence is None or len(cooccurrence) != weights.nnz:  # a model without counts: no pairs
            both = sp.csr_matrix((n, n), dtype=np.float32)  # type: ignore[arg-type]  # stubs lack the shape form
        else:
            one_way = sp.csr_matrix((cooccurrence, weights.indices, weights.indptr), shape=weights.shape)
            both = one_way.maximum(one_way.T).tocsr()  # the same count either way: the union of the pairs
        self.indptr = both.indptr.astype(np.int64)
        self.indices = both.indices.astype(np.int32)
        self.counts = both.data.astype(np.float32)

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.indices.nbytes + self.counts.nbytes)

    def of(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """(paired positions, readers of both) of the book at `position`."""
        start, stop = self.indptr[position], self.indptr[position + 1]
        return self.indices[start:stop], self.counts[start:stop]


def readers_also_liked(pairs: PairedBooks, popularity: np.ndarray, position: int,
                       exponent: float = SIMILAR_EXPONENT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions, scores, readers of both) of the books paired with `position`, best first (ties: more
    readers of both, then position)."""
    paired, counts = pairs.of(position)
    scores = counts / np.maximum(popularity[paired], 1.0) ** exponent
    order = np.lexsort((paired, -counts, -scores))
    return paired[order], scores[order], counts[order]


def similar_books(book_ids: list[str], scored: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                  catalogue: Catalogue, book_id: str, count: int,
                  exclude: frozenset[str] = frozenset()) -> list[Recommendation]:
    """Up to `count` books like `book_id`: its series' next book, the model's pairs (`scored`, None when the
    model does not know the book), then content and popularity. Never the book itself, one outside the
    catalogue (removed since the model was built) or one of `exclude`."""
    if count < 1:
        return []
    taken = set(exclude) | {book_id}
    picks: list[Recommendation] = []
    following = catalogue.next_in_series(book_id)
    if following is not None and following.book_id not in taken:
        series = following.series
        assert series is not None
        number = f", #{series.position:g}" if series.position is not None else ""
        picks.append(Recommendation(following.book_id, 0.0, f"next in {series.name}{number}"))
        taken.add(following.book_id)
    if scored is not None:
        for position, score, both in zip(*(a.tolist() for a in scored), strict=True):
            if len(picks) == count:
                break
            candidate = book_ids[position]
            if candidate in taken or candidate not in catalogue.entries:
                continue
            taken.add(candidate)
            readers = int(both)
            picks.append(Recommendation(candidate, round(float(score), 4),
                                        f"{readers} reader{'s' if readers != 1 else ''} rated both"))
    if picks and picks[0].score == 0.0:  # the series' next book leads, at the best score of the list
        picks[0] = Recommendation(picks[0].book_id, max((p.score for p in picks), default=0.0) or 1.0,
                                  picks[0].reason)
    if len(picks) < count and book_id in catalogue.entries:
        picks += catalogue.similar({book_id: 5}, count - len(picks), taken)
    return ranked(picks[:count])


def for_reader(picks: list[Recommendation], reader_list: Iterable[str],
               series_next: str | None = None) -> list[Recommendation]:
    """`picks` (a book's similar list) re-ranked for a reader: the series' next book stays first when it leads
    (`series_next`), then those in `reader_list` (their recommendations, best first) in its order, then the
    others in their own order. Scores and reasons stay the list's."""
    lead = 1 if picks and series_next is not None and picks[0].book_id == series_next else 0
    rank: dict[str, int] = {}
    for book_id in reader_list:
        rank.setdefault(book_id, len(rank))
    rest = picks[lead:]
    order = sorted(range(len(rest)), key=lambda i: (rank.get(rest[i].book_id, len(rank)), i))
    return picks[:lead] + [rest[i] for i in order]
