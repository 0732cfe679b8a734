"""`budget.BudgetedCache`: made once, kept within the budget, least recently used first out."""

from __future__ import annotations

from bookrec_search.budget import BudgetedCache


def test_values_are_made_once_and_the_least_recently_used_go_past_the_budget():
    made: list[str] = []

    def make(key: str, size: int):
        def value() -> tuple[str, int]:
            made.append(key)
            return key, size
        return value

    cache: BudgetedCache[str, tuple[str, int]] = BudgetedCache(10, lambda v: v[1], [("a", ("a", 4))])
    assert cache.get("a", make("a", 4)) == ("a", 4) and made == []  # given at the start: not made again
    cache.get("b", make("b", 4))
    cache.get("a", make("a", 4))  # "a" is now the most recently used
    cache.get("c", make("c", 4))  # 12 > 10: "b" goes
    assert [k for k, _ in cache.items()] == ["a", "c"] and cache.total == 8 and made == ["b", "c"]
    cache.get("d", make("d", 30))  # larger than the budget alone: kept, every other one goes
    assert [k for k, _ in cache.items()] == ["d"] and cache.total == 30 and len(cache) == 1
