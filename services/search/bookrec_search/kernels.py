"""Loops over millions of postings that numpy would run as many passes, compiled (numba) on first use.

A numpy expression of a probe or a merge reads and writes its whole input once per operation: probing 2.5
million books in a ranked bitmap is a dozen passes over 20 MB arrays (28 ms at 10M books), where one
compiled loop reads each book once (3 ms). Each kernel here is the loop a numpy version would spell, over
plain arrays, with that version kept in the tests as its specification. Compiled once per process, for each
input type (0.2-3 s each, 12.5 s in all): a replica starts compiling them on a thread as it starts
(`live.LiveIndex`), and warming an index (`SearchIndex.warmed`) finishes what is left before it serves.
"""

from __future__ import annotations

import numba
import numpy as np

_M1, _M2, _M4 = np.uint64(0x5555555555555555), np.uint64(0x3333333333333333), np.uint64(0x0F0F0F0F0F0F0F0F)
_H01, _ONE = np.uint64(0x0101010101010101), np.uint64(1)


def read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view of `array` (no copy): a kernel given columns that may be either (a loaded artifact's
    are read-only, a refreshed one's not) then compiles for one type only."""
    view = array.view()
    view.flags.writeable = False
    return view


@numba.njit(inline="always")
def _popcount(x: np.uint64) -> np.int32:
    x = x - ((x >> _ONE) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int32((x * _H01) >> np.uint64(56))


@numba.njit(nogil=True)
def bitmap_probe(bits: np.ndarray, before: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The places of the candidates whose bit is set in `bits`, and where each of them is in the list: the
    set bits before its own (the books before it), from `before` (per 64-bit word) and a popcount."""
    found = np.empty(len(candidates), dtype=np.int32)
    at = np.empty(len(candidates), dtype=np.int32)
    m = 0
    for i in range(len(candidates)):
        book = candidates[i]
        word, bit = bits[book >> 6], np.uint64(book & 63)
        if (word >> bit) & _ONE:
            found[m], at[m] = i, before[book >> 6] + _popcount(word & ((_ONE << bit) - _ONE))
            m += 1
    return found[:m], at[:m]


@numba.njit(nogil=True)
def ranked_bits(docs: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ascending `docs` (of `size` documents) as bits, one a document, and the documents before each 64-bit
    word: what `bitmap_probe` reads. One pass over the list and the words, where numpy spends a pass over a
    mask of every document and another to pack it."""
    words = -(-size // 64)
    bits, before = np.zeros(words, dtype=np.uint64), np.empty(words, dtype=np.int32)
    p = 0
    for word in range(words):
        before[word] = p
        end, held = (word + 1) * 64, np.uint64(0)
        while p < len(docs) and docs[p] < end:
            held |= _ONE << np.uint64(docs[p] & 63)
            p += 1
        bits[word] = held
    return bits, before


RUN_BITS = 16  # a heap entry is (document << RUN_BITS) | run: ordered by document, then run
BEST, SUMMED = 0, 1  # what `merged_runs` keeps of a document found in several runs


@numba.njit(inline="always")
def _sift_down(heap: np.ndarray, n: int) -> None:
    i, item = 0, heap[0]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= item:
            break
        heap[i] = heap[child]
        i = child
    heap[i] = item


@numba.njit(inline="always")
def _combined(values: np.ndarray, costs: np.ndarray, runs: np.ndarray, at: int, value: np.float32, cost: np.int32,
              run: int, keep: int) -> None:
    """Another posting of the document kept at `at`: added up (SUMMED), or kept if better (BEST: a lower
    cost, then a larger value; on a tie the earlier run stays)."""
    if keep == SUMMED:
        values[at] += value
        costs[at] += cost
    elif cost < costs[at] or (cost == costs[at] and value > values[at]):
        values[at], costs[at], runs[at] = value, cost, run


@numba.njit(nogil=True)
def merged_runs(docs: np.ndarray, starts: np.ndarray, values: np.ndarray, costs: np.ndarray, keep: int,
                size: int, dense: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The union of the runs docs[starts[r]:starts[r + 1]] (each ascending, of `size` documents; `values`
    and `costs` are the postings'), ascending, with per document either (BEST) the value, cost and run of its
    best posting: the lowest cost, then the largest value, then the earliest run; or (SUMMED) its values and
    costs added up in run order (float32), and the first run it is in. Through a heap of the runs' next
    documents (N log runs steps for N postings), or when `dense` arrays over every document (a step a
    posting, then a pass over the documents)."""
    runs, total = len(starts) - 1, starts[-1]
    out_docs = np.empty(total, dtype=np.int32)
    out_values = np.empty(total, dtype=np.float32)
    out_costs = np.empty(total, dtype=np.int32)
    out_runs = np.empty(total, dtype=np.int16)
    m = 0
    if dense:
        value_of = np.zeros(size, dtype=np.float32)
        cost_of = np.zeros(size, dtype=np.int32)
        run_of = np.full(size, -1, dtype=np.int16)
        for r in range(runs):
            for p in range(starts[r], starts[r + 1]):
                doc, value, cost = docs[p], values[p], costs[p]
                if run_of[doc] < 0:
                    value_of[doc], cost_of[doc], run_of[doc] = value, cost, r
                else:
                    _combined(value_of, cost_of, run_of, doc, value, cost, r, keep)
        for doc in range(size):
            if run_of[doc] >= 0:
                out_docs[m], out_values[m], out_costs[m], out_runs[m] = doc, value_of[doc], cost_of[doc], run_of[doc]
                m += 1
        return out_docs[:m], out_values[:m], out_costs[:m], out_runs[:m]
    place = starts[:-1].copy()
    heap = np.empty(runs, dtype=np.int64)
    n = 0
    for r in range(runs):
        if starts[r] < starts[r + 1]:
            heap[n] = (np.int64(docs[starts[r]]) << RUN_BITS) | r
            n += 1
    heap[:n].sort()  # a sorted array is a heap
    mask = (1 << RUN_BITS) - 1
    while n:
        r = heap[0] & mask
        p = place[r]
        doc, value, cost = docs[p], values[p], costs[p]
        if m and out_docs[m - 1] == doc:
            _combined(out_values, out_costs, out_runs, m - 1, value, cost, r, keep)
        else:
            out_docs[m], out_values[m], out_costs[m], out_runs[m] = doc, value, cost, r
            m += 1
        place[r] = p + 1
        if p + 1 < starts[r + 1]:
            heap[0] = (np.int64(docs[p + 1]) << RUN_BITS) | r
        else:
            n -= 1
            heap[0] = heap[n]
        _sift_down(heap, n)
    return out_docs[:m], out_values[:m], out_costs[:m], out_runs[:m]


@numba.njit(inline="always")
def _lowest_bit_index(bits: np.uint64) -> int:
    return int(_popcount((bits & (~bits + _ONE)) - _ONE))


@numba.njit(inline="always")
def _passes(years: np.ndarray, min_year: int, max_year: int, averages: np.ndarray, narrow: np.float32,
            languages: np.ndarray, language: int, any_language: bool, book: int) -> bool:
    return ((years[book] >= min_year) & (years[book] <= max_year) & (averages[book] >= narrow)
            & ((languages[book] == language) | any_language))


@numba.njit(inline="always")
def _exact(averages: np.ndarray, narrow: np.float32, min_average: float, counts: np.ndarray, sums: np.ndarray,
           book: int) -> bool:
    """Whether a book whose float32 average (rounded down) is at least `narrow`, the float32 at or below
    `min_average`, averages at least `min_average` exactly: one above `narrow` does, and one at it does when
    `narrow` is `min_average`; else its exact average says."""
    return averages[book] != narrow or narrow == min_average or sums[book] / max(counts[book], 1) >= min_average


@numba.njit(nogil=True)
def filtered_books(years: np.ndarray, min_year: int, max_year: int, averages: np.ndarray, narrow: np.float32,
                   min_average: float, counts: np.ndarray, sums: np.ndarray, languages: np.ndarray,
                   language: int, column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The books, ascending, whose year is within [min_year, max_year], average (from their rating `counts`
    and `sums`, exactly; `averages` is its float32 copy rounded down, `narrow` the float32 at or below
    `min_average`) at least `min_average` and language `language` (any when negative); and their values in
    `column` (what they are then sorted by). Every column is read (a test that reads nothing is dearer: its
    branch stops the loop being vectorised); each 64 books' tests make one word of bits without a branch,
    and only the set bits are then visited."""
    size, any_language = len(averages), language < 0
    out = np.empty(size, dtype=np.int32)
    values = np.empty(size, dtype=column.dtype)
    m, whole = 0, size - size % 64
    for base in range(0, whole, 64):
        bits = np.uint64(0)
        for j in range(64):  # a fixed count: vectorised
            passes = _passes(years, min_year, max_year, averages, narrow, languages, language, any_language,
                             base + j)
            bits |= np.uint64(passes) << np.uint64(j)
        while bits:
            book = base + _lowest_bit_index(bits)
            if _exact(averages, narrow, min_average, counts, sums, book):
                out[m], values[m] = book, column[book]
                m += 1
            bits &= bits - _ONE
    for book in range(whole, size):  # the last books, fewer than 64
        if _passes(years, min_year, max_year, averages, narrow, languages, language, any_language, book) \
                and _exact(averages, narrow, min_average, counts, sums, book):
            out[m], values[m] = book, column[book]
            m += 1
    return out[:m], values[:m]


@numba.njit(inline="always")
def _ranks_before(i: int, j: int, key: np.ndarray, priors: np.ndarray, ranks: np.ndarray) -> bool:
    if key[i] != key[j]:
        return key[i] > key[j]
    if priors[i] != priors[j]:
        return priors[i] > priors[j]
    return ranks[i] < ranks[j]


@numba.njit(nogil=True)
def best_ranked(key: np.ndarray, candidates: np.ndarray, popularity: np.ndarray, title_rank: np.ndarray,
                wanted: int, cut: float) -> np.ndarray:
    """The places of the `wanted` best candidates whose key is at least `cut` (fewer if fewer are), best
    first: by `key` (higher first), then the `popularity` of their books (higher first), then their
    `title_rank` (unique: the order is total). The candidates at or above the cut are listed with their
    books' popularity and title rank (read once, in order), then ranked through a heap whose root is the
    worst kept so far: one that does not beat it costs a comparison."""
    count = 0
    for i in range(len(key)):
        count += key[i] >= cut
    kept = np.empty(count, dtype=np.int64)
    count = 0
    for i in range(len(key)):
        if key[i] >= cut:
            kept[count] = i
            count += 1
    values, priors, ranks = key[kept], popularity[candidates[kept]], title_rank[candidates[kept]]
    heap = np.empty(min(wanted, count), dtype=np.int64)
    for i in range(count):
        if i < len(heap):  # filling: the new one sifted up while it ranks after its parent
            at = i
            while at:
                parent = (at - 1) >> 1
                if not _ranks_before(heap[parent], i, values, priors, ranks):
                    break
                heap[at] = heap[parent]
                at = parent
            heap[at] = i
        elif _ranks_before(i, heap[0], values, priors, ranks):
            _sift_worst_down(heap, len(heap), i, values, priors, ranks)
    for end in range(len(heap) - 1, 0, -1):  # the worst taken off the root to the back, in turn: best first
        worst = heap[0]
        _sift_worst_down(heap, end, heap[end], values, priors, ranks)
        heap[end] = worst
    return kept[heap]


@numba.njit(inline="always")
def _sift_worst_down(heap: np.ndarray, n: int, item: int, key: np.ndarray, priors: np.ndarray,
                     ranks: np.ndarray) -> None:
    """`item` put at the root of heap[:n] (root: the worst) and moved down to its place."""
    at = 0
    while True:
        child = 2 * at + 1
        if child >= n:
            break
        if child + 1 < n and _ranks_before(heap[child], heap[child + 1], key, priors, ranks):
            child += 1
        if not _ranks_before(item, heap[child], key, priors, ranks):
            break
        heap[at] = heap[child]
        at = child
    heap[at] = item


def compile_all() -> None:
    """Compiles every kernel for the input types queries give it (once compiled, a lookup)."""
    bits, before = np.zeros(1, dtype=np.uint64), np.zeros(1, dtype=np.int32)
    for dtype in (np.int32, np.int64):
        for writeable in (True, False):  # a loaded artifact's postings are read-only views: a type of their own
            candidates = np.zeros(1, dtype=dtype)
            candidates.flags.writeable = writeable
            bitmap_probe(bits, before, candidates)
            ranked_bits(candidates, 1)
    for dense in (False, True):
        merged_runs(np.zeros(1, dtype=np.int32), np.array([0, 1]), np.zeros(1, dtype=np.float32),
                    np.zeros(1, dtype=np.int32), BEST, 1, dense)  # SUMMED is the same compiled loop
    popularity, title_rank = read_only(np.zeros(1)), read_only(np.zeros(1, dtype=np.int32))
    for key_type in (np.float32, np.float64):
        for candidate_type in (np.int32, np.int64):
            best_ranked(read_only(np.zeros(1, dtype=key_type)), read_only(np.zeros(1, dtype=candidate_type)),
                        popularity, title_rank, 1, 0.0)
    whole = read_only(np.zeros(1, dtype=np.int32))
    for sorted_by in (np.int32, np.float32, np.float64):  # years or title ranks, averages, priors
        filtered_books(whole, 0, 0, read_only(np.zeros(1, dtype=np.float32)), np.float32(0), 0.0, whole, whole,
                       read_only(np.zeros(1, dtype=np.int16)), 0, read_only(np.zeros(1, dtype=sorted_by)))
