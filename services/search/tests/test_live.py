"""The live-index holder with an in-process book source and feed: positions, deletions, the fallback."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from bookrec_catalog.catalog import iso_stamp, with_derived_attributes
from bookrec_common.feed import epoch_of
from bookrec_search import live as live_module
from bookrec_search.documents import suggestion_key
from bookrec_search.live import LiveIndex


class FakeSource:
    """Serves a dict of records like the books table: Scans (optionally filtered) and prefix Queries."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = {r["book_id"]: r for r in records}
        self.scans: list[str | None] = []
        self.queries = 0
        self.gate: asyncio.Event | None = None
        self.failing = False

    async def scan(self, consume) -> int:
        self.scans.append(None)
        page = [r for r in self.records.values() if "deleted_at" not in r]
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


class FakeFeed:
    """The change feed over the same records: what changed after a moment (tombstones too)."""

    def __init__(self, source: FakeSource) -> None:
        self.source = source
        self.asked: list[float] = []

    async def since(self, after: float, now: float) -> list[dict[str, Any]]:
        self.asked.append(after)
        return sorted((r for r in self.source.records.values() if epoch_of(r["changed_at"]) > after),
                      key=lambda r: r["changed_at"])


def live_over(source: FakeSource, **options: Any) -> tuple[LiveIndex, FakeFeed]:
    feed = FakeFeed(source)
    return LiveIndex(source, feed, **options), feed


def book(i: int, stamp: str, **extra: Any) -> dict[str, Any]:
    return with_derived_attributes({"book_id": f"OL{i}W", "title": f"Title {i}", "updated_at": stamp,
                                    "changed_at": stamp, **extra})


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_refresh_reads_the_feed_from_the_previous_read_less_the_overlap():
    clock = Clock(1_000_000.0)
    source = FakeSource([book(1, iso_stamp(999_000.0))])
    live, feed = live_over(source, refresh_overlap_seconds=15, clock=clock)
    await live.load()
    assert source.scans == [None] and live.index.size == 1 and live.position == 1_000_000.0
    clock.now += 30
    # Stamped 10 s before the load began (a lagging writer): inside the overlap, so it is read.
    source.records["OL2W"] = book(2, iso_stamp(1_000_000.0 - 10))
    assert await live.refresh() == 1
    assert feed.asked[-1] == 1_000_000.0 - 15 and source.scans == [None]  # never a scan again
    assert live.index.position_of("OL2W") is not None
    clock.now += 30
    assert await live.refresh() == 0
    assert feed.asked[-1] == 1_000_030.0 - 15


async def test_a_deleted_book_leaves_the_index_and_a_re_added_one_comes_back():
    clock = Clock(3_000_000.0)
    source = FakeSource([book(i, iso_stamp(clock.now - 100)) for i in range(1, 4)])
    live, _ = live_over(source, refresh_overlap_seconds=15, clock=clock)
    await live.load()
    clock.now += 30
    source.records["OL2W"] = {"book_id": "OL2W", "deleted_at": iso_stamp(clock.now - 1),
                              "changed_at": iso_stamp(clock.now - 1)}
    await live.refresh()
    assert live.index.position_of("OL2W") is None and live.index.size == 2
    clock.now += 30
    source.records["OL2W"] = book(2, iso_stamp(clock.now - 1))
    await live.refresh()
    assert live.index.position_of("OL2W") is not None


async def test_re_reading_unchanged_books_keeps_the_same_index():
    clock = Clock(2_000_000.0)
    source = FakeSource([book(i, iso_stamp(clock.now - 10)) for i in range(1, 6)])
    live, _ = live_over(source, refresh_overlap_seconds=15, clock=clock)
    await live.load()
    before = live.index
    assert await live.refresh() == 5  # all inside the overlap window
    assert live.index is before


async def test_refresh_before_load_is_refused():
    live, _ = live_over(FakeSource([]))
    with pytest.raises(RuntimeError):
        await live.refresh()


async def test_concurrent_fallback_answers_share_one_query_and_failures_are_not_kept():
    records = [book(i, "2026-01-01T00:00:00.000000Z", ratings_distribution={"4": i}) for i in range(1, 12)]
    source = FakeSource(records)
    source.gate = asyncio.Event()
    live, _ = live_over(source, fallback_cache_seconds=60)
    waiting = [asyncio.create_task(live.suggestions_from_table("title 1")) for _ in range(5)]
    await asyncio.sleep(0.01)
    source.gate.set()
    answers = await asyncio.gather(*waiting)
    expected = sorted((r for r in records if r["title_norm"].startswith("title 1")), key=suggestion_key)
    assert source.queries == 1 and all(a == (len(expected), expected) for a in answers)
    assert await live.suggestions_from_table("title 1") == answers[0] and source.queries == 1

    source.failing = True
    with pytest.raises(ConnectionError):
        await live.suggestions_from_table("title 2")
    source.failing = False
    assert (await live.suggestions_from_table("title 2"))[0] == 1 and source.queries == 3


async def test_a_caller_going_away_does_not_cancel_the_shared_query():
    source = FakeSource([book(1, "2026-01-01T00:00:00.000000Z")])
    source.gate = asyncio.Event()
    live, _ = live_over(source)
    first = asyncio.create_task(live.suggestions_from_table("title"))
    second = asyncio.create_task(live.suggestions_from_table("title"))
    await asyncio.sleep(0.01)
    first.cancel()
    source.gate.set()
    assert (await second)[0] == 1 and source.queries == 1


async def test_a_replica_compiles_its_loops_from_the_start_before_any_index_is_loaded(monkeypatch):
    compiled: list[str] = []
    monkeypatch.setattr(live_module.kernels, "compile_all", lambda: compiled.append(threading.current_thread().name))
    source = FakeSource([book(i, iso_stamp(999_000.0)) for i in range(1, 4)])
    live, _ = live_over(source, clock=Clock(1_000_000.0))
    live.compiling.join(timeout=10)
    assert compiled == ["compile"] and live.index is None  # on its own thread, while the artifact downloads
    await live.load()
    assert len(compiled) == 2  # warming the index asks again: by then a lookup of what is compiled


@pytest.mark.parametrize("malloc_mmap_max, ratio, pretouched",
                         [("0", 1.4, True), (None, 1.4, False), ("0", 0.0, False)])
async def test_the_first_index_pre_touches_heap_for_refreshes_where_the_allocator_keeps_it(
        monkeypatch, caplog, malloc_mmap_max, ratio, pretouched):
    if malloc_mmap_max is None:
        monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    else:
        monkeypatch.setenv("MALLOC_MMAP_MAX_", malloc_mmap_max)
    asked: list[int] = []
    real = live_module.pretouch
    monkeypatch.setattr(live_module, "pretouch", lambda nbytes: (asked.append(nbytes), real(nbytes)))
    clock = Clock(1_000_000.0)
    source = FakeSource([book(i, iso_stamp(999_000.0)) for i in range(1, 40)])
    live, _ = live_over(source, pretouch_ratio=ratio, clock=clock)
    with caplog.at_level("INFO", logger="bookrec.search"):
        await live.load()
        first, first_bytes = live.pretouching, live.index.nbytes
        if pretouched:
            first.join(timeout=10)
        source.records["OL1W"] = book(1, iso_stamp(1_000_010.0), title="Retitled")
        clock.now += 30
        await live.refresh()
    assert live.index.size == 39 and live.pretouching is first  # once, for the first index only
    assert asked == ([int(first_bytes * ratio)] if pretouched else [])
    assert len([r for r in caplog.records if "pre-touched" in r.getMessage()]) == len(asked)
