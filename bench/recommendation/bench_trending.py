"""Trending benchmark: the write path's cost per event, the refresh's cost, and GET /trending in-process.

    python -m bench.recommendation.bench_trending [--requests N] [--events N]

Prints figures; asserts nothing. On a moto server and a redis-server of its own: the bundled goodbooks
ratings (~240K, ~10K books) are recorded as activity events spread over 30 days (as the local stack's
replay does), pipelined through `ActivityLog.add` (one EVALSHA per event); printed are the events per
second, the Redis memory per event (INFO used_memory), the fleet's computation of the counts (one
process per period) and what each replica reads per refresh (one GET: its size, and the time to read,
decode and rank it). Then the same ratings as Open Library's dumps would give them (anonymous, counted per
book and day: `imported_activity`) are set as the books' imported shares (`ActivityLog.set_imported`, one
EVALSHA per book), then set again (a repeat: nothing changes): books per second and Redis memory per
book-day. Then the recommendation app (its catalogue from the goodbooks books, its model from
the ratings of 100 readers) answers GET /trending through Litestar's test client: p50/p99 per request.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import time
import uuid

import numpy as np
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_common.activity import ActivityCounts, ActivityEvent, ActivityLog
from bookrec_etl.seed import seed_files
from bookrec_local import definitions
from bookrec_local.activity_seed import replay_time
from bookrec_local.benchkit import emulator_and_redis, write_items
from bookrec_local.procs import local_dynamodb
from bookrec_recommendation.app import create_app
from bookrec_recommendation.settings import RecommendationSettings
from bookrec_recommendation.trending_store import TrendingBoard


def percentiles(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms (n={len(ms)})"


def goodbooks_books() -> list[dict]:
    genres: dict[str, list[str]] = {}
    with gzip.open(seed_files()["goodbooks_genres"], "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            genres[f"GB{row['book_id']}"] = row["genres"].split(",")
    with gzip.open(seed_files()["goodbooks_books"], "rt", encoding="utf-8") as f:
        return [with_derived_attributes({"book_id": f"GB{row['book_id']}", "title": row["title"],
                                         "authors": [{"author_id": None, "name": row["authors"]}],
                                         "subjects": genres.get(f"GB{row['book_id']}", [])[:20]})
                for row in csv.DictReader(f)]


def ratings() -> np.ndarray:
    return np.loadtxt(seed_files()["goodbooks_ratings"], delimiter=",", skiprows=1, dtype=np.int64,
                      usecols=(0, 1, 2))


async def write_path(redis_url: str, rows: np.ndarray, now: float) -> None:
    client = aioredis.from_url(redis_url)
    activity = ActivityLog(client, clock=lambda: now)
    events = [ActivityEvent(f"GB{b}", f"gb{u}", replay_time(f"gb{u}", f"GB{b}", now)) for u, b, _ in rows.tolist()]
    before = int((await client.info("memory"))["used_memory"])
    started = time.perf_counter()
    sent = await activity.add(events)
    took = time.perf_counter() - started
    used = int((await client.info("memory"))["used_memory"]) - before
    print(f"write path: {sent:,} events in {took:.1f}s ({sent / took:,.0f}/s pipelined, 500 a round trip), "
          f"one EVALSHA each; Redis memory {used / 2**20:.1f} MiB, {used / sent:.0f} bytes per event "
          f"({len(set(zip(rows[:, 0].tolist(), rows[:, 1].tolist(), strict=True))):,} reader-book pairs)")
    started = time.perf_counter()
    counts = await activity.counts()
    took = time.perf_counter() - started
    raw = counts.to_json()
    print(f"fleet's computation (one process per 20 s): {took * 1000:.0f} ms; {len(counts.recent)} now "
          f"candidates; shared copy {len(raw) / 1024:.0f} KiB")
    await client.set("trending:counts", raw)
    board = TrendingBoard(activity)
    samples = []
    for _ in range(50):
        started = time.perf_counter()
        board.take(ActivityCounts.from_json(await client.get("trending:counts")))
        samples.append(time.perf_counter() - started)
    print(f"replica refresh (GET + decode + rank): {percentiles(samples)}")
    await imported_shares(client, events, now)
    await client.aclose()


async def imported_shares(client: aioredis.Redis, events: list[ActivityEvent], now: float) -> None:
    """The events as a dump's anonymous per-day counts, set as each book's imported share, then set again."""
    activity = ActivityLog(client, prefix=f"imported-{uuid.uuid4().hex[:6]}:", clock=lambda: now)
    shares: dict[str, dict[int, int]] = {}
    for event in events:
        hour = int(event.at // 86400) * 24
        shares.setdefault(event.book_id, {})[hour] = shares.get(event.book_id, {}).get(hour, 0) + 1
    pairs = sum(len(hours) for hours in shares.values())
    before = int((await client.info("memory"))["used_memory"])
    started = time.perf_counter()
    changed = await activity.set_imported(shares.items())
    took = time.perf_counter() - started
    used = int((await client.info("memory"))["used_memory"]) - before
    started = time.perf_counter()
    again = await activity.set_imported(shares.items())
    repeat = time.perf_counter() - started
    print(f"imported activity: {changed:,} books, {pairs:,} book-days set in {took:.1f}s ({changed / took:,.0f} "
          f"books/s, one EVALSHA each); again: {again} changed in {repeat:.1f}s; Redis memory "
          f"{used / 2**20:.1f} MiB, {used / pairs:.0f} bytes per book-day")


async def requests(endpoint: str, redis_url: str, n: int) -> None:
    prefix = f"b{uuid.uuid4().hex[:6]}"
    dynamodb = local_dynamodb(endpoint)
    names = definitions.create_tables(dynamodb, prefix)
    books = goodbooks_books()
    write_items(dynamodb, names["books"], books)
    rows = ratings()
    few = rows[np.isin(rows[:, 0], np.unique(rows[:, 0])[:100])]
    write_items(dynamodb, names["ratings"], [{"book_id": f"GB{b}", "user_id": f"gb{u}", "rating": r,
                                              "created_at": "2017-09-01T00:00:00.000000Z",
                                              "updated_at": "2017-09-01T00:00:00.000000Z"}
                                             for u, b, r in few.tolist()])
    settings = RecommendationSettings(books_table=names["books"], ratings_table=names["ratings"],
                                      redis_url=redis_url, access_log=False, model_refresh_seconds=0,
                                      rate_limit=0, trending_refresh_seconds=1, jwt_jwks_url="http://127.0.0.1:1/jwks",
                                      jwt_issuer="bench", jwt_audience="bench")
    subjects = ["fantasy", "Classics", "young-adult", "poetry"]
    async with AsyncTestClient(create_app(settings)) as client:
        for _ in range(600):
            if (await client.get("/ready")).status_code == 200:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # a refresh after the model: the counts are in memory
        shown = (await client.get("/trending?window=week&limit=3")).json()
        print("week's top 3:", [(i["title"], i["events"]) for i in shown["items"]])
        queries = [f"/trending?window={w}&limit={limit}" for w in ("now", "day", "week", "month")
                   for limit in (10, 100)] + [f"/trending?window=month&limit=20&subject={s}" for s in subjects]
        for query in queries[:4]:  # warm up
            await client.get(query)
        samples = []
        for i in range(n):
            started = time.perf_counter()
            response = await client.get(queries[i % len(queries)])
            samples.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
        print(f"GET /trending in-process (test client, windows, limits 10/100, subjects): {percentiles(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--events", type=int, default=None, help="record only the first N ratings (default all)")
    args = parser.parse_args()
    with emulator_and_redis() as (endpoint, redis_url):
        asyncio.run(write_path(redis_url, ratings()[:args.events], time.time()))
        asyncio.run(requests(endpoint, redis_url, args.requests))


if __name__ == "__main__":
    main()
