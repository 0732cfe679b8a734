"""The compiled loops (`kernels`) answer as the numpy they replace, kept here as their specification."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bookrec_search import kernels


def per_posting(costs: list, lists: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    return [np.broadcast_to(np.asarray(c, dtype=np.int32), (len(d),)) for c, (d, _) in zip(costs, lists, strict=True)]


def runs_strategy() -> st.SearchStrategy:
    @st.composite
    def runs(draw: st.DrawFn) -> tuple[int, list[tuple[np.ndarray, np.ndarray]], list]:
        size = draw(st.integers(1, 200))
        count = draw(st.integers(0, 6))
        lists, costs = [], []
        for _ in range(count):
            docs = np.array(sorted(draw(st.sets(st.integers(0, size - 1), max_size=60))), dtype=np.int32)
            # few distinct values, so that ties between runs are common
            values = np.array([draw(st.sampled_from([0.5, 1.0, 1.5, 2.0])) for _ in docs], dtype=np.float32)
            lists.append((docs, values))
            each = [draw(st.sampled_from([0, 1, 2, 4])) for _ in docs]  # a word's cost may differ by book
            costs.append(np.array(each, dtype=np.int32) if draw(st.booleans()) else np.int32(each[0] if each else 0))
        return size, lists, costs
    return runs()


def run(lists: list[tuple[np.ndarray, np.ndarray]], costs: list, keep: int, size: int, dense: bool) -> tuple:
    starts = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(d) for d, _ in lists], out=starts[1:])
    docs = np.concatenate([d for d, _ in lists]) if lists else np.empty(0, dtype=np.int32)
    values = np.concatenate([v for _, v in lists]) if lists else np.empty(0, dtype=np.float32)
    cost = np.concatenate(per_posting(costs, lists)) if lists else np.empty(0, dtype=np.int32)
    return tuple(a.tolist() for a in kernels.merged_runs(docs, starts, values, cost, keep, size, dense))


def best_in_numpy(lists: list[tuple[np.ndarray, np.ndarray]], costs: list) -> tuple:
    """Per document, the lowest cost, then the largest value, then the earliest list: a stable sort."""
    if not lists:
        return [], [], [], []
    docs = np.concatenate([d for d, _ in lists])
    values = np.concatenate([v for _, v in lists])
    cost = np.concatenate(per_posting(costs, lists))
    choice = np.concatenate([np.full(len(d), j, dtype=np.int16) for j, (d, _) in enumerate(lists)])
    order = np.lexsort((-values, cost, docs))
    docs, values, cost, choice = docs[order], values[order], cost[order], choice[order]
    first = np.ones(len(docs), dtype=bool)
    first[1:] = docs[1:] != docs[:-1]
    return docs[first].tolist(), values[first].tolist(), cost[first].tolist(), choice[first].tolist()


def summed_in_numpy(lists: list[tuple[np.ndarray, np.ndarray]], costs: list, size: int) -> tuple:
    """Per document, its values and costs added up list by list, in float32; the first list it is in."""
    total = np.zeros(size, dtype=np.float32)
    cost = np.zeros(size, dtype=np.int32)
    first = np.full(size, -1, dtype=np.int16)
    for j, ((docs, values), c) in enumerate(zip(lists, per_posting(costs, lists), strict=True)):
        np.add.at(total, docs, values)
        cost[docs] += c
        first[docs[first[docs] < 0]] = j
    docs = np.flatnonzero(first >= 0)
    return docs.tolist(), total[docs].tolist(), cost[docs].tolist(), first[docs].tolist()


@settings(max_examples=300, deadline=None)
@given(runs_strategy(), st.booleans())
def test_merged_runs_keep_each_documents_best_run(runs, dense):
    size, lists, costs = runs
    assert run(lists, costs, kernels.BEST, size, dense) == best_in_numpy(lists, costs)


@settings(max_examples=300, deadline=None)
@given(runs_strategy(), st.booleans())
def test_merged_runs_add_up_each_documents_runs_in_order(runs, dense):
    size, lists, costs = runs
    assert run(lists, costs, kernels.SUMMED, size, dense) == summed_in_numpy(lists, costs, size)
