"""The live-index holder with an in-process book source: watermarks, swaps, the single-flight fallback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bookrec_common.catalog import with_derived_attributes

from bookrec_search.engine import SearchEngine, iso_stamp
from bookrec_search.index import suggestion_key


class FakeSource:
    """Serves a dict of records like the books table: Scans (optionally filtered) and prefix Queries."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = {r["book_id"]: r for r in records}
        self.scans: list[str | None] = []
        self.queries = 0
        self.gate: asyncio.Event | None = None
        self.failing = False

    async def scan(self, consume, updated_after=None) -> int:
        self.scans.append(updated_after)
        page = [r for r in self.records.values() if updated_after is None or r["updated_at"] > updated_after]
        consume(page)
        return len(page)

    async def titles_with_prefix(self, prefix):
        self.queries += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise ConnectionError("table unreachable")
        matching = [r for r in self.records.values() if r["title_norm"].startswith(prefix)]
        for start in range(0, len(matching), 3):
            yield matching[start:start + 3]


def book(i: int, stamp: str, **extra: Any) -> dict[str, Any]:
    return with_derived_attributes({"book_id": f"OL{i}W", "title": f"Title {i}", "updated_at": stamp,
                                    **extra})


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_refresh_reads_from_the_previous_scan_start_less_the_overlap():
    clock = Clock(1_000_000.0)
    source = FakeSource([book(1, iso_stamp(999_000.0))])
    engine = SearchEngine(source, refresh_overlap_seconds=60, clock=clock)
    await engine.load()
    assert source.scans == [None] and engine.index.size == 1
    clock.now += 30
    # Stamped 40 s before the load began (a lagging writer): inside the overlap, so it is read.
    source.records["OL2W"] = book(2, iso_stamp(1_000_000.0 - 40))
    assert await engine.refresh() == 1
    assert source.scans[-1] == iso_stamp(1_000_000.0 - 60)
    assert engine.index.position_of("OL2W") is not None
    clock.now += 30
    await engine.refresh()
    assert source.scans[-1] == iso_stamp(1_000_030.0 - 60)


async def test_re_reading_unchanged_books_keeps_the_same_index():
    clock = Clock(2_000_000.0)
    source = FakeSource([book(i, iso_stamp(clock.now - 10)) for i in range(1, 6)])
    engine = SearchEngine(source, refresh_overlap_seconds=60, clock=clock)
    await engine.load()
    before = engine.index
    assert await engine.refresh() == 5  # all inside the overlap window
    assert engine.index is before


async def test_refresh_before_load_is_refused():
    engine = SearchEngine(FakeSource([]))
    with pytest.raises(RuntimeError):
        await engine.refresh()


async def test_concurrent_fallback_answers_share_one_query_and_failures_are_not_kept():
    records = [book(i, "2026-01-01T00:00:00.000000Z", ratings_distribution={"4": i}) for i in range(1, 12)]
    source = FakeSource(records)
    source.gate = asyncio.Event()
    engine = SearchEngine(source, fallback_cache_seconds=60)
    waiting = [asyncio.create_task(engine.suggestions_from_table("title 1")) for _ in range(5)]
    await asyncio.sleep(0.01)
    source.gate.set()
    answers = await asyncio.gather(*waiting)
    expected = sorted((r for r in records if r["title_norm"].startswith("title 1")), key=suggestion_key)
    assert source.queries == 1 and all(a == (len(expected), expected) for a in answers)
    assert await engine.suggestions_from_table("title 1") == answers[0] and source.queries == 1

    source.failing = True
    with pytest.raises(ConnectionError):
        await engine.suggestions_from_table("title 2")
    source.failing = False
    assert (await engine.suggestions_from_table("title 2"))[0] == 1 and source.queries == 3


async def test_a_caller_going_away_does_not_cancel_the_shared_query():
    source = FakeSource([book(1, "2026-01-01T00:00:00.000000Z")])
    source.gate = asyncio.Event()
    engine = SearchEngine(source)
    first = asyncio.create_task(engine.suggestions_from_table("title"))
    second = asyncio.create_task(engine.suggestions_from_table("title"))
    await asyncio.sleep(0.01)
    first.cancel()
    source.gate.set()
    assert (await second)[0] == 1 and source.queries == 1
