"""Fleet-scale reads of the search service: what a replica reads, what the fleet reads, how fast one starts.

    python -m bench.search.bench_fleet [--books 10000] [--periods 6] [--replicas 1 2 4]
        [--intervals 3] [--cold-books 1000000] [--scan-books 50000] [--parts feed fleet cold scan]
        [--authors-dump FILE]

Runs against a moto server (DynamoDB + S3) and a redis-server of its own, started here and stopped at
the end. Four parts, each printing its figures (asserts nothing):

- feed: items read per hour by ONE replica in steady state at 0, 1 and 10 book changes a second.
  `LiveIndex.refresh()` runs on a simulated clock (period `index_refresh_seconds`, overlap
  `index_refresh_overlap_seconds`, the settings' defaults) while changes stamped by that clock are
  written (rating updates of existing books, as `change_stamp` stamps them). Beside it, the old design:
  one filtered Scan of the same table (its ScannedCount, what DynamoDB bills) × refreshes an hour,
  extrapolated to 1M books.
- fleet: full-table reads per build interval with N replicas and N builder runs racing each interval
  (several scheduled or started at once), changes written between intervals. Full-table reads =
  `dynamodb_items_read_total{purpose="build"}` / table size. Beside it, the old design's count.
- cold: a fresh replica (the app, `create_app` + polling `/ready`) starting from an artifact of
  `--cold-books` synthetic books (built as bench_search builds them, published with `ArtifactStore` to the
  emulator's S3); also its parts (manifest, fetch, checksum, decode).
- scan: the old start, a parallel Scan of `--scan-books` books on the emulator, timed, and extrapolated
  to `--cold-books` at the measured rate (clearly labelled: the emulator's rate, not DynamoDB's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from bench.search.bench_search import build as build_index_of
from bench.search.synthetic import books as synthetic_books
from bookrec_catalog.catalog import iso_stamp, utc_now
from bookrec_catalog.changes import change_stamp
from bookrec_catalog.dynamo import to_item
from bookrec_common.artifacts import ArtifactStore
from bookrec_common.builder import build_once
from bookrec_common.clients import dynamodb_client, redis_client, s3_client
from bookrec_common.lease import Lease
from bookrec_local import definitions
from bookrec_local.benchkit import artifact_start_parts, emulator_and_redis, write_items
from bookrec_local.procs import local_dynamodb

SECONDS_PER_HOUR = 3600
OLD_REFRESH_SECONDS = 30.0  # the old design: a filtered Scan of the whole table every 30 s per replica
BUILD_INTERVAL_MINUTES = 15  # infrastructure/definitions/services.json: the builder's schedule


def items_read(purpose: str) -> float:
    return REGISTRY.get_sample_value("dynamodb_items_read_total", {"purpose": purpose}) or 0.0


def catalogue(n: int, stamp: str, seed: int = 7, first_id: int = 1,
              authors_dump: Path | None = None) -> list[dict[str, Any]]:
    """Synthetic books as bench_search makes them, stamped for the change feed at `stamp`."""
    return [{**b, **change_stamp(b["book_id"], stamp)}
            for b in synthetic_books(n, seed, first_id, authors_dump)]


def item_bytes(records: list[dict[str, Any]]) -> float:
    """Approximate stored size of an item (attribute names + values, as DynamoDB sizes them)."""
    sample = records[:: max(1, len(records) // 500)]
    return float(np.mean([len(json.dumps(to_item(r)).encode()) for r in sample]))


def rated_again(record: dict[str, Any], stamp: str, rng: np.random.Generator) -> dict[str, Any]:
    """The book after one more rating, as the ratings service writes it (aggregates and change stamp)."""
    stars = str(int(rng.integers(1, 6)))
    distribution = dict(record.get("ratings_distribution") or {})
    distribution[stars] = int(distribution.get(stars, 0)) + 1
    count = int(record.get("rating_count", 0)) + 1
    total = int(record.get("rating_sum", 0)) + int(stars)
    return {**record, "ratings_distribution": distribution, "rating_count": count, "rating_sum": total,
            "avg_rating": round(total / count, 4), **change_stamp(record["book_id"], stamp)}


def filtered_scan_count(dynamodb: Any, table: str, after: str) -> tuple[int, int]:
    """The old refresh: a Scan filtered on the change stamp; (items billed = ScannedCount, items returned)."""
    request: dict[str, Any] = {"TableName": table, "FilterExpression": "changed_at > :after",
                               "ExpressionAttributeValues": {":after": {"S": after}},
                               "ProjectionExpression": "book_id"}
    scanned = returned = 0
    while True:
        response = dynamodb.scan(**request)
        scanned += response["ScannedCount"]
        returned += response["Count"]
        if "LastEvaluatedKey" not in response:
            return scanned, returned
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def settings_for(books_table: str, redis_url: str, bucket: str = "", **overrides: Any):
    from bookrec_search.settings import SearchSettings

    return SearchSettings(books_table=books_table, redis_url=redis_url, artifact_bucket=bucket,
                          access_log=False, log_level="WARNING", rate_limit=1_000_000, **overrides)


# ----------------------------------------------------------------------------------------- part 1: feed


async def part_feed(dynamodb: Any, table: str, records: list[dict[str, Any]], rates: list[float],
                    periods: int, settings: Any) -> dict[float, float]:
    from bookrec_search.live import LiveIndex
    from bookrec_search.store import BookSource, change_feed

    period, overlap = settings.index_refresh_seconds, settings.index_refresh_overlap_seconds
    refreshes_per_hour = SECONDS_PER_HOUR / period
    print(f"\n== 1. Items read per hour by one search replica (emulator, {len(records):,} books; "
          f"refresh every {period:.0f} s, overlap {overlap:.0f} s; simulated clock, {periods} periods per "
          f"rate after one to settle) ==")
    rng = np.random.default_rng(3)
    by_id = {r["book_id"]: r for r in records}
    ids = list(by_id)
    # The simulated clock runs in the past and ends before the real now: later parts follow the feed in real
    # time and must not meet changes stamped in their future.
    now = [time.time() - len(rates) * (periods + 1) * period - 60]
    measured: dict[float, float] = {}
    async with dynamodb_client(settings, bulk=True) as client:
        source = BookSource(client, client, table, settings.scan_segments)
        live = LiveIndex(source, change_feed(client, table), None, refresh_overlap_seconds=overlap,
                         clock=lambda: now[0])
        started = time.perf_counter()
        await live.load()  # the replica's index (a Scan here; an artifact in the fleet: part 3)
        print(f"  (index loaded by a Scan in {time.perf_counter() - started:.1f} s to start from)")
        for rate in rates:
            per_refresh = []
            for number in range(periods + 1):
                begin = now[0]
                changes = round(rate * period)
                moments = begin + (np.arange(changes) + rng.random(changes)) * (period / max(changes, 1))
                written = []
                for moment in moments:
                    book_id = ids[int(rng.integers(len(ids)))]
                    by_id[book_id] = rated_again(by_id[book_id], iso_stamp(float(moment)), rng)
                    written.append(by_id[book_id])
                if written:
                    write_items(dynamodb, table, written)
                now[0] = begin + period
                before = live.feed.items_read
                await live.refresh()
                if number > 0:  # the first period after a change of rate settles the overlap
                    per_refresh.append(live.feed.items_read - before)
            per_hour = float(np.mean(per_refresh)) * refreshes_per_hour
            changes_per_hour = rate * SECONDS_PER_HOUR
            measured[rate] = per_hour
            per_change = per_hour / changes_per_hour if changes_per_hour else float("nan")
            target = 2 * changes_per_hour
            print(f"  {rate:4g} changes/s: {per_hour:10,.0f} feed items read/hour ({per_change:.2f} per "
                  f"change); target <= 2 x {changes_per_hour:,.0f} + a small constant = {target:,.0f} + c; "
                  f"per refresh {min(per_refresh)}-{max(per_refresh)}")

    scanned, returned = filtered_scan_count(dynamodb, table, iso_stamp(now[0] - period - overlap))
    per_hour = SECONDS_PER_HOUR / OLD_REFRESH_SECONDS
    print(f"  old design: one filtered Scan read (ScannedCount) {scanned:,} items to return {returned:,}; "
          f"x {per_hour:.0f} refreshes/hour = {scanned * per_hour:,.0f} items/hour at {len(records):,} "
          f"books, whatever the rate of change")
    print(f"  old design extrapolated to 1,000,000 books: {1_000_000 * per_hour:,.0f} items/hour per replica "
          f"(ScannedCount = table size, as measured above)")
    return measured


# ----------------------------------------------------------------------------------------- part 2: fleet


def new_bucket(endpoint: str) -> str:
    name = f"bench-fleet-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    definitions.create_artifact_bucket(s3, name)
    return name


async def replica_versions(clients: list[AsyncTestClient]) -> list[Any]:
    """The artifact version each replica app says (in /ready) it serves, None while it has none."""
    versions = []
    for client in clients:
        body = (await client.get("/ready")).json()
        versions.append(body.get("checks", {}).get("index", {}).get("artifact_version"))
    return versions


async def part_fleet(dynamodb: Any, endpoint: str, redis_url: str, table: str, records: list[dict[str, Any]],
                     replica_counts: list[int], intervals: int, changes_per_interval: int,
                     settings: Any) -> None:
    from bookrec_search.app import create_app
    from bookrec_search.artifact import KIND
    from bookrec_search.builder import IndexBuild
    from bookrec_search.store import BookSource, change_feed

    size = len(records)
    print(f"\n== 2. Full-table reads per build interval, search ({size:,} books; N replica apps, N builder "
          f"runs racing each interval, {changes_per_interval} changes before each interval but the first "
          f"and, from 3 intervals on, the last; full-table reads = build items read / table size) ==")
    rng = np.random.default_rng(5)
    by_id = {r["book_id"]: r for r in records}
    ids = list(by_id)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(dynamodb_client(settings, bulk=True))
        s3 = await stack.enter_async_context(s3_client(settings))
        redis = await stack.enter_async_context(redis_client(redis_url, timeout=5.0))
        for n in replica_counts:
            bucket = new_bucket(endpoint)
            store = ArtifactStore(s3, bucket, KIND)
            # Patient reads: the emulator's GSI Query walks the whole table, and N replicas share it.
            replica_settings = settings_for(table, redis_url, bucket, index_refresh_seconds=2,
                                            artifact_poll_seconds=0.5, dynamodb_read_timeout=60)
            before_all = items_read("build")
            replicas = [await stack.enter_async_context(AsyncTestClient(create_app(replica_settings),
                                                                        timeout=30))
                        for _ in range(n)]
            per_interval = []
            for interval in range(intervals):
                if interval > 0 and not (interval == intervals - 1 and intervals >= 3):  # the last: none
                    stamp = utc_now()
                    written = []
                    for _ in range(changes_per_interval):
                        book_id = ids[int(rng.integers(len(ids)))]
                        by_id[book_id] = rated_again(by_id[book_id], stamp, rng)
                        written.append(by_id[book_id])
                    write_items(dynamodb, table, written)
                    await asyncio.sleep(0.01)
                before, feed_before = items_read("build"), items_read("feed")
                builders = [build_once(Lease(redis, KIND, settings.build_lease_seconds,
                                             holder=f"bench-{n}-{i}"),
                                       store, IndexBuild(BookSource(client, client, table),
                                                         change_feed(client, table), store,
                                                         settings.index_refresh_overlap_seconds))
                            for i in range(n)]
                outcomes = await asyncio.gather(*builders)
                latest = await store.latest()
                deadline = time.perf_counter() + 60
                while time.perf_counter() < deadline:  # every replica swaps the new artifact in
                    versions = await replica_versions(replicas)
                    if latest is None or all(v == latest.version for v in versions):
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(2.5)  # a refresh of every replica
                built = items_read("build") - before
                followed = items_read("feed") - feed_before
                counted = {o: outcomes.count(o) for o in sorted(set(outcomes))}
                per_interval.append(built / size)
                print(f"  N={n}: interval {interval + 1}: builder outcomes {counted}; build items read "
                      f"{built:,.0f} = {built / size:.2f} full-table reads; feed items read (builders + "
                      f"replicas) {followed:,.0f}; replicas serve versions {versions}")
            total = items_read("build") - before_all
            old_search = n * BUILD_INTERVAL_MINUTES * 60 / OLD_REFRESH_SECONDS
            print(f"  N={n}: new design {max(per_interval):.2f} full-table reads per interval at most, "
                  f"{total / size / intervals:.2f} on average over {intervals} intervals (replica starts "
                  f"included); target exactly 1 (the first build; later builds read the feed). Old design "
                  f"per {BUILD_INTERVAL_MINUTES}-min interval: {old_search:,.0f} (N x one filtered Scan "
                  f"every {OLD_REFRESH_SECONDS:.0f} s), plus N at the replicas' start")


# ----------------------------------------------------------------------------------------- part 3: cold start


async def poll_ready(client: AsyncTestClient, started: float, limit: float = 600.0) -> float:
    while True:
        response = await client.get("/ready")
        if response.status_code == 200:
            return time.perf_counter() - started
        if time.perf_counter() - started > limit:
            raise TimeoutError(f"not ready after {limit:.0f} s: {response.text[:300]}")
        await asyncio.sleep(0.05)


async def part_cold(endpoint: str, redis_url: str, table: str, n: int, seed: int, settings: Any,
                    authors_dump: Path | None) -> None:
    from bookrec_search.app import create_app
    from bookrec_search.artifact import KIND, dump, load
    from bookrec_search.index import SearchIndex

    print(f"\n== 3. Cold start of a search replica from the artifact, {n:,} synthetic books ==")
    index = build_index_of(n, seed, authors_dump)
    started = time.perf_counter()
    payload = dump(index.parts)
    dumped = time.perf_counter() - started
    del index
    gc.collect()
    bucket = new_bucket(endpoint)
    async with s3_client(settings) as s3:
        store = ArtifactStore(s3, bucket, KIND)
        started = time.perf_counter()
        await store.publish(payload, version=1, watermark=iso_stamp(time.time()), items=n, build_reads=n)
        published = time.perf_counter() - started
    print(f"  artifact {len(payload) / 2**20:,.0f} MiB; dump {dumped:.1f} s, publish to the emulator's S3 "
          f"{published:.1f} s")
    del payload
    gc.collect()

    replica = settings_for(table, redis_url, bucket, index_refresh_seconds=30, artifact_poll_seconds=60)
    scans_before = items_read("build")
    started = time.perf_counter()
    async with AsyncTestClient(create_app(replica), timeout=30) as client:
        ready = await poll_ready(client, started)
        state = (await client.get("/ready")).json()["checks"]["index"]
    print(f"  replica app start to /ready 200: {ready:.1f} s (target <= 30 s); {state.get('books'):,} books, "
          f"artifact version {state.get('artifact_version')}; table items it scanned: "
          f"{items_read('build') - scans_before:,.0f} (the feed is read from the artifact's watermark, here "
          f"against the {table!s} table)")
    gc.collect()

    async with s3_client(settings) as s3:
        parts = await artifact_start_parts(s3, bucket, KIND,
                                           lambda payload: SearchIndex(load(payload)))
    print(f"  parts: manifest GET {parts.manifest * 1000:.0f} ms; payload GET {parts.payload:.2f} s "
          f"({parts.size / 2**20 / parts.payload:,.0f} MiB/s from the emulator); "
          f"SHA-256 {parts.checksum:.2f} s; "
          f"decode (artifact.load, then the index) {parts.decode:.2f} s; {parts.loaded.size:,} books")
    del parts


# ----------------------------------------------------------------------------------------- part 4: scan start


async def part_scan(dynamodb: Any, n: int, extrapolate_to: int, settings: Any,
                    authors_dump: Path | None) -> None:
    from bookrec_search.live import LiveIndex
    from bookrec_search.store import BookSource, change_feed

    print(f"\n== 3b. The old start: a parallel Scan of the books table on the emulator, {n:,} books ==")
    prefix = f"scan{uuid.uuid4().hex[:8]}"
    table = definitions.create_tables(dynamodb, prefix)["books"]
    try:
        records = catalogue(n, iso_stamp(time.time() - 3600), seed=11, authors_dump=authors_dump)
        seconds = write_items(dynamodb, table, records)
        print(f"  loaded with BatchWriteItem in {seconds:.1f} s ({n / seconds:,.0f} items/s)")
        del records
        async with dynamodb_client(settings, bulk=True) as client:
            live = LiveIndex(BookSource(client, client, table, settings.scan_segments),
                             change_feed(client, table), None)
            started = time.perf_counter()
            await live.load()
            seconds = time.perf_counter() - started
        rate = n / seconds
        print(f"  Scan + index build: {seconds:.1f} s for {n:,} books = {rate:,.0f} books/s "
              f"({settings.scan_segments} segments)")
        print(f"  EXTRAPOLATED to {extrapolate_to:,} books at that rate: {extrapolate_to / rate:,.0f} s "
              f"({extrapolate_to / rate / 60:.1f} min) per replica start, and {extrapolate_to:,} items read "
              f"each time (measured on the emulator; DynamoDB's own Scan rate differs)")
    finally:
        definitions.delete_tables(dynamodb, prefix)


# ----------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, endpoint: str, redis_url: str) -> None:
    dynamodb = local_dynamodb(endpoint)
    prefix = f"fleet{uuid.uuid4().hex[:8]}"
    table = definitions.create_tables(dynamodb, prefix)["books"]
    settings = settings_for(table, redis_url)
    parts = set(args.parts)
    records: list[dict[str, Any]] = []
    if parts & {"feed", "fleet", "cold"}:
        records = catalogue(args.books, iso_stamp(time.time() - 3600), authors_dump=args.authors_dump)
        seconds = write_items(dynamodb, table, records)
        print(f"books table: {len(records):,} synthetic books written in {seconds:.1f} s "
              f"({len(records) / seconds:,.0f} items/s); ~{item_bytes(records):,.0f} bytes per item (JSON of "
              f"the attribute values, approximate)")
    if "feed" in parts:
        await part_feed(dynamodb, table, records, args.rates, args.periods, settings)
    if "fleet" in parts:
        await part_fleet(dynamodb, endpoint, redis_url, table, records, args.replicas, args.intervals,
                         args.changes, settings)
    if "cold" in parts:
        await part_cold(endpoint, redis_url, table, args.cold_books, args.seed, settings, args.authors_dump)
    if "scan" in parts:
        await part_scan(dynamodb, args.scan_books, args.cold_books, settings, args.authors_dump)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--books", type=int, default=10_000, help="books in the table (parts feed and fleet)")
    parser.add_argument("--rates", type=float, nargs="+", default=[0, 1, 10], help="book changes per second")
    parser.add_argument("--periods", type=int, default=6, help="refresh periods measured per rate")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--intervals", type=int, default=3, help="build intervals per replica count")
    parser.add_argument("--changes", type=int, default=50, help="book changes between build intervals")
    parser.add_argument("--cold-books", type=int, default=1_000_000, help="books in the cold-start artifact")
    parser.add_argument("--scan-books", type=int, default=50_000, help="books for the Scan-based start")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--parts", nargs="+", default=["feed", "fleet", "cold", "scan"],
                        choices=["feed", "fleet", "cold", "scan"])
    parser.add_argument("--authors-dump", type=Path, metavar="FILE", help="as bench_search's")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the apps' and builders' own logs: warnings and errors only
    with emulator_and_redis() as (endpoint, redis_url):
        asyncio.run(run(args, endpoint, redis_url))


if __name__ == "__main__":
    main()
