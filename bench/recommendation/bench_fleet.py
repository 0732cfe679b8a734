"""Fleet-scale start and reads of the recommendation service: a replica's start from the artifact, and
how often the fleet reads the whole tables.

    python -m bench.recommendation.bench_fleet [--ratings CSV] [--scan-ratings 20000]
        [--replicas 1 2 4] [--intervals 3] [--parts artifact scan fleet]

Runs against a moto server (DynamoDB + S3) and a redis-server of its own, started here and stopped at
the end. Prints figures; asserts nothing.

- artifact: the recommender built from the bundled goodbooks ratings sample (as bench_recommend builds
  it; ~240K ratings, ~10K books), published with `ArtifactStore` to the emulator's S3; then a fresh
  replica app (`create_app` with ARTIFACT_BUCKET set) timed from start to `/ready` 200, and the start's
  parts (manifest, payload, checksum, decode). The tables hold the `--scan-ratings` subset, so a replica
  that scanned instead would show it in the items it read.
- scan: the old start, the app without ARTIFACT_BUCKET scanning ratings + books (the `--scan-ratings`
  first ratings of the sample and the bundled books on the emulator), timed, and extrapolated to the
  whole sample at the measured rate (labelled: the emulator's rate, not DynamoDB's).
- fleet: full-table reads per build interval with N replica apps and N `ModelBuild` runs racing each
  interval, ratings written between intervals as the ratings service writes them (the rating, and its
  book's change stamp). Full-table reads = `dynamodb_items_read_total{purpose="build"}` / (ratings +
  books items).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gzip
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import boto3
import numpy as np
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from bench.recommendation.bench_recommend import goodbooks, goodbooks_catalogue
from bookrec_catalog.catalog import iso_stamp, utc_now
from bookrec_catalog.changes import change_shard, change_stamp
from bookrec_catalog.dynamo import to_item
from bookrec_common.artifacts import ArtifactStore
from bookrec_common.builder import build_once
from bookrec_common.clients import dynamodb_client, redis_client, s3_client
from bookrec_common.feed import ChangeFeed
from bookrec_common.lease import Lease
from bookrec_etl.seed import seed_files
from bookrec_local import definitions
from bookrec_local.benchkit import artifact_start_parts, emulator_and_redis, write_items
from bookrec_local.procs import local_dynamodb
from bookrec_recommendation.artifact import KIND, dump, load
from bookrec_recommendation.builder import ModelBuild
from bookrec_recommendation.model import ItemNeighbourModel, Recommender
from bookrec_recommendation.settings import RecommendationSettings
from bookrec_recommendation.store import RatingsSource

OLD_REFRESH_MINUTES = 15  # the old design: every replica rebuilt from both tables every 15 min
BUILD_INTERVAL_MINUTES = 15  # infrastructure/definitions/services.json: the builder's schedule


def items_read(purpose: str) -> float:
    return REGISTRY.get_sample_value("dynamodb_items_read_total", {"purpose": purpose}) or 0.0


def new_bucket(endpoint: str) -> str:
    name = f"bench-fleet-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    definitions.create_artifact_bucket(s3, name)
    return name


def settings_for(tables: dict[str, str], redis_url: str, bucket: str = "",
                 **overrides: Any) -> RecommendationSettings:
    return RecommendationSettings(books_table=tables["books"], ratings_table=tables["ratings"],
                                  redis_url=redis_url, artifact_bucket=bucket, access_log=False,
                                  log_level="WARNING", model_refresh_seconds=0, internal_token="bench",
                                  jwt_jwks_url="http://127.0.0.1:9/jwks.json", jwt_issuer="bench",
                                  jwt_audience="bench", **overrides)


async def time_to_ready(settings: RecommendationSettings,
                        limit: float = 900.0) -> tuple[float, dict[str, Any]]:
    """Seconds from the app's start (lifespan entered) to /ready 200, and what /ready said then."""
    from bookrec_recommendation.app import create_app

    started = time.perf_counter()
    async with AsyncTestClient(create_app(settings), timeout=30) as client:
        while True:
            response = await client.get("/ready")
            if response.status_code == 200:
                return time.perf_counter() - started, response.json()
            if time.perf_counter() - started > limit:
                raise TimeoutError(f"not ready after {limit:.0f} s: {response.text[:300]}")
            await asyncio.sleep(0.05)


def sample_tables(path: Path, n_ratings: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(ratings, books) items as the ETL and the ratings service write them: the first `n_ratings`
    ratings of the sample, and every bundled goodbooks book (stamped for the change feed)."""
    stamp = iso_stamp(time.time() - 3600)
    ratings = []
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as handle:
        for row in csv.DictReader(handle):
            if len(ratings) >= n_ratings:
                break
            ratings.append({"book_id": f"GB{row['book_id']}", "user_id": row["user_id"],
                            "rating": int(row["rating"]), "created_at": stamp, "updated_at": stamp})
    sums: dict[str, int] = {}
    counts: dict[str, int] = {}
    for r in ratings:
        sums[r["book_id"]] = sums.get(r["book_id"], 0) + r["rating"]
        counts[r["book_id"]] = counts.get(r["book_id"], 0) + 1
    books = []
    with gzip.open(seed_files()["goodbooks_books"], "rt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            book_id = f"GB{row['book_id']}"
            authors = [{"author_id": None, "name": a.strip()} for a in row["authors"].split(",")]
            books.append({"book_id": book_id, "title": row["title"], "authors": authors, "subjects": [],
                          "rating_sum": sums.get(book_id, 0), "rating_count": counts.get(book_id, 0),
                          **change_stamp(book_id, stamp)})
    return ratings, books


# ----------------------------------------------------------------------------------------- artifact start


async def part_artifact(endpoint: str, redis_url: str, tables: dict[str, str], path: Path) -> None:
    print(f"\n== 4. Recommendation replica start from the artifact (ratings sample {path.name}) ==")
    started = time.perf_counter()
    users, books, by_user = goodbooks(path)
    model = ItemNeighbourModel.build(users, books, neighbours=100, regularisation=25.0)
    recommender = Recommender(model, goodbooks_catalogue(by_user))
    built = time.perf_counter() - started
    started = time.perf_counter()
    payload = dump(recommender)
    dumped = time.perf_counter() - started
    bucket = new_bucket(endpoint)
    settings = settings_for(tables, redis_url, bucket, artifact_poll_seconds=60)
    async with s3_client(settings) as s3:
        store = ArtifactStore(s3, bucket, KIND)
        await store.publish(payload, version=1, watermark=iso_stamp(time.time()),
                          items=len(model.book_ids), build_reads=len(users) + len(books))
    print(f"  model from {len(users):,} ratings, {len(model.book_ids):,} books built in {built:.1f} s "
          f"(in-process, as bench_recommend); artifact {len(payload) / 2**20:.1f} MiB, dump {dumped:.2f} s")

    scanned_before = items_read("build")
    seconds, ready = await time_to_ready(settings)
    scanned = items_read("build") - scanned_before
    model_check = ready.get("checks", {}).get("model")
    print(f"  replica app start to /ready 200: {seconds:.2f} s; table items it scanned: {scanned:,.0f}"
          + ("" if scanned == 0 else "  <- it scanned the tables: the app did NOT start from the artifact")
          + (f"; /ready model check: {model_check}" if model_check else ""))

    async with s3_client(settings) as s3:
        parts = await artifact_start_parts(s3, bucket, KIND, load)
    print(f"  parts: manifest GET {parts.manifest * 1000:.0f} ms; payload GET {parts.payload * 1000:.0f} ms; "
          f"SHA-256 {parts.checksum * 1000:.0f} ms; decode (artifact.load) {parts.decode * 1000:.0f} ms "
          f"({len(parts.loaded.model.book_ids):,} books)")


# ----------------------------------------------------------------------------------------- scan start


async def part_scan(redis_url: str, tables: dict[str, str], size: int, full_size: int) -> None:
    print(f"\n== 4b. The old start: the app without an artifact bucket scans ratings + books "
          f"({size:,} items) ==")
    settings = settings_for(tables, redis_url)
    before = items_read("build")
    seconds, _ = await time_to_ready(settings)
    scanned = items_read("build") - before
    rate = scanned / seconds if scanned else float("nan")
    print(f"  app start to /ready 200: {seconds:.1f} s, {scanned:,.0f} items scanned = {rate:,.0f} items/s "
          f"(Scan + model build, on the emulator)")
    print(f"  EXTRAPOLATED to the whole sample ({full_size:,} ratings + books) at that rate: "
          f"{full_size / rate:,.0f} s per replica start, {full_size:,} items read per start and per "
          f"{OLD_REFRESH_MINUTES}-min refresh (emulator rate; DynamoDB's own differs)")


# ----------------------------------------------------------------------------------------- fleet


async def part_fleet(dynamodb: Any, endpoint: str, redis_url: str, tables: dict[str, str], size: int,
                     user_ids: list[str], book_ids: list[str], replica_counts: list[int], intervals: int,
                     ratings_per_interval: int) -> None:
    print(f"\n== 2b. Full-table reads per build interval, recommendation ({size:,} items in ratings + books; "
          f"N replica apps, N builder runs racing each interval, {ratings_per_interval} ratings written "
          f"before each interval but the first and, from 3 intervals on, the last) ==")
    rng = np.random.default_rng(9)
    base = settings_for(tables, redis_url)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(dynamodb_client(base, bulk=True))
        s3 = await stack.enter_async_context(s3_client(base))
        redis = await stack.enter_async_context(redis_client(redis_url, timeout=5.0))
        from bookrec_recommendation.app import create_app

        for n in replica_counts:
            bucket = new_bucket(endpoint)
            store = ArtifactStore(s3, bucket, KIND)
            replica_settings = settings_for(tables, redis_url, bucket, artifact_poll_seconds=0.5)
            before_all = items_read("build")
            replicas = [await stack.enter_async_context(AsyncTestClient(create_app(replica_settings),
                                                                        timeout=30))
                        for _ in range(n)]
            per_interval, built_items = [], []
            for interval in range(intervals):
                if interval > 0 and not (interval == intervals - 1 and intervals >= 3):  # the last: none
                    now = utc_now()
                    for _ in range(ratings_per_interval):
                        user_id = user_ids[int(rng.integers(len(user_ids)))]
                        book_id = book_ids[int(rng.integers(len(book_ids)))]
                        dynamodb.put_item(TableName=tables["ratings"], Item=to_item(
                            {"book_id": book_id, "user_id": user_id, "rating": int(rng.integers(1, 6)),
                             "created_at": now, "updated_at": now}))
                        stamp = {":now": {"S": now}, ":shard": {"S": change_shard(book_id)}}
                        dynamodb.update_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                                             UpdateExpression="SET changed_at = :now, change_shard = :shard",
                                             ExpressionAttributeValues=stamp)
                    await asyncio.sleep(0.01)
                before = items_read("build")
                builders = [build_once(Lease(redis, KIND, 30, holder=f"bench-{n}-{i}"), store,
                                       ModelBuild(RatingsSource(client, tables["books"], tables["ratings"]),
                                                  ChangeFeed(client, tables["books"]), 100, 25.0,
                                                  margin_seconds=0))
                            for i in range(n)]
                outcomes = await asyncio.gather(*builders)
                built = items_read("build") - before
                if interval == 0:  # the replicas wait for the first artifact
                    for replica in replicas:
                        deadline = time.perf_counter() + 120
                        while time.perf_counter() < deadline:
                            if (await replica.get("/ready")).status_code == 200:
                                break
                            await asyncio.sleep(0.1)
                await asyncio.sleep(1.5)  # a few artifact polls of every replica
                counted = {o: outcomes.count(o) for o in sorted(set(outcomes))}
                per_interval.append(built / size)
                built_items.append(built)
                print(f"  N={n}: interval {interval + 1}: builder outcomes {counted}; builders' items read "
                      f"{built:,.0f} = {built / size:.2f} full-table reads")
            total = items_read("build") - before_all
            replica_reads = total - sum(built_items)  # whatever the builders did not read
            print(f"  N={n}: builders {max(per_interval):.2f} full-table reads per interval at most (1 when "
                  f"something changed, 0 otherwise); the {n} replica(s) read {replica_reads:,.0f} table "
                  f"items (their starts included); {total / size / intervals:.2f} full-table reads per "
                  f"interval in all. Old design: {n} per {OLD_REFRESH_MINUTES}-min interval, changed or not, "
                  f"plus {n} at the replicas' start")


async def run(args: argparse.Namespace, endpoint: str, redis_url: str) -> None:
    dynamodb = local_dynamodb(endpoint)
    prefix = f"fleet{uuid.uuid4().hex[:8]}"
    tables = definitions.create_tables(dynamodb, prefix)
    ratings, books = sample_tables(args.ratings, args.scan_ratings)
    seconds = write_items(dynamodb, tables["ratings"], ratings)
    seconds += write_items(dynamodb, tables["books"], books)
    size = len(ratings) + len(books)
    print(f"tables: {len(ratings):,} ratings (the sample's first) + {len(books):,} books written in "
          f"{seconds:.1f} s")
    with gzip.open(args.ratings, "rt") if args.ratings.suffix == ".gz" else open(args.ratings) as handle:
        full_size = sum(1 for _ in handle) - 1 + len(books)
    if "artifact" in args.parts:
        await part_artifact(endpoint, redis_url, tables, args.ratings)
    if "scan" in args.parts:
        await part_scan(redis_url, tables, size, full_size)
    if "fleet" in args.parts:
        await part_fleet(dynamodb, endpoint, redis_url, tables, size, sorted({r["user_id"] for r in ratings}),
                         sorted({r["book_id"] for r in ratings}), args.replicas, args.intervals, args.changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=Path, default=seed_files()["goodbooks_ratings"],
                        help="CSV user_id,book_id,rating; default: the bundled goodbooks-10k sample")
    parser.add_argument("--scan-ratings", type=int, default=20_000,
                        help="ratings loaded into the emulator's table (the Scan start and the fleet part)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--intervals", type=int, default=3)
    parser.add_argument("--changes", type=int, default=20, help="ratings written between build intervals")
    parser.add_argument("--parts", nargs="+", default=["artifact", "scan", "fleet"],
                        choices=["artifact", "scan", "fleet"])
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the apps' and builders' own logs: warnings and errors only
    with emulator_and_redis() as (endpoint, redis_url):
        asyncio.run(run(args, endpoint, redis_url))


if __name__ == "__main__":
    main()
