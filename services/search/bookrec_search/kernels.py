"""Loops over millions of postings that numpy would run as many passes, compiled (numba) on first use.

A numpy expression of a probe or a merge reads and writes its whole input once per operation: probing 2.5
million books in a ranked bitmap is a dozen passes over 20 MB arrays (28 ms at 10M books), where one
compiled loop reads each book once (3 ms). Each kernel here is the loop a numpy version would spell, over
plain arrays, with that version kept in the tests as its specification. Compiled lazily, once per process
(~0.6 s for the first, ~0.15 s for each further kernel or input type): a replica compiles them while it
warms a new index (`SearchIndex.warmed`), before it serves.
"""

from __future__ import annotations

import numba
import numpy as np

_M1, _M2, _M4 = np.uint64(0x5555555555555555), np.uint64(0x3333333333333333), np.uint64(0x0F0F0F0F0F0F0F0F)
_H01, _ONE = np.uint64(0x0101010101010101), np.uint64(1)


@numba.njit(inline="always")
def _popcount(x: np.uint64) -> np.int32:
    x = x - ((x >> _ONE) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int32((x * _H01) >> np.uint64(56))


@numba.njit(nogil=True)
def bitmap_probe(bits: np.ndarray, before: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which candidates have their bit set in `bits`, and where: the set bits before theirs (the books
    before it in the list), from `before` (per 64-bit word) and a popcount. `at` is meaningful where present."""
    present = np.empty(len(candidates), dtype=np.bool_)
    at = np.empty(len(candidates), dtype=np.int32)
    for i in range(len(candidates)):
        book = candidates[i]
        word, bit = bits[book >> 6], np.uint64(book & 63)
        present[i] = (word >> bit) & _ONE
        at[i] = before[book >> 6] + _popcount(word & ((_ONE << bit) - _ONE))
    return present, at


def compile_all() -> None:
    """Compiles every kernel for the input types queries give it (a replica does this as it warms)."""
    bits, before = np.zeros(1, dtype=np.uint64), np.zeros(1, dtype=np.int32)
    for dtype in (np.int32, np.int64):
        bitmap_probe(bits, before, np.zeros(1, dtype=dtype))
