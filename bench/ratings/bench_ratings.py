"""Rating write benchmark against moto servers over HTTP: contention, retries, and the emulator's own cost.

    python -m bench.ratings.bench_ratings [--raters 200] [--replicas 1 2 4 8] [--sizes 1:0 ...]

1. The service as deployed (granian), through its HTTP API over real
   sockets, with invalidations going to a real HTTP recommender stand-in:
   200 new raters on one book at once, then 80 re-ratings and 40 new raters
   at once. One worker (writers to a book queue on an in-process lock) and
   two workers (two replicas racing). Changes/s, latency, lost races.
2. Replicas sharing nothing but DynamoDB (only the transaction conditions
   keep them exact), all rating one hot book at once, against a moto server
   that answers one request at a time (the threaded one does not isolate
   concurrent transactions). Lost races per committed change, attempts.
3. What a TransactWriteItems costs the emulator as its tables grow (it
   copies every table a transaction touches, to roll back on failure).

Every change is the service's real transaction: a rating also reads the
reader's shelf entry and puts a book on no shelf on `read` (the entry and
the book's shelf_counts in the same transaction). Every run checks that the
aggregate equals the ratings table and the shelf counts the shelves table.
Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bookrec_catalog.catalog import SHELVES, utc_now, with_derived_attributes
from bookrec_catalog.dynamo import from_item, to_item
from bookrec_common.clients import dynamodb_client
from bookrec_common.settings import ServiceSettings
from bookrec_local import definitions
from bookrec_local.dev_issuer import TokenIssuer
from bookrec_local.procs import (
    LOCAL_AWS_ENV,
    free_port,
    http_ok,
    local_dynamodb,
    moto_command,
    port_open,
    start,
    wait_until,
)
from bookrec_ratings.store import RatingStore

BOOK = "OL45883W"


@contextmanager
def moto_server(serialised: bool) -> Iterator[tuple[str, Any]]:
    port = free_port()
    proc = start(moto_command(port, serialised=serialised))
    try:
        wait_until(lambda: port_open(port), 30, "moto server", proc)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        yield endpoint, local_dynamodb(endpoint)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:  # busy deleting big tables: it holds nothing worth waiting for
        proc.kill()
        proc.wait(10)


@contextmanager
def recommender_stand_in() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP invalidate endpoint on its own thread and loop; yields its URL and the users it saw."""
    seen: list[str] = []

    async def invalidate(request: web.Request) -> web.Response:
        seen.append(request.match_info["user_id"])
        return web.json_response({"invalidated": True})

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/recommendations/invalidate/{user_id}", invalidate)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def fresh_tables(dynamodb: Any, books: int = 1, ratings: int = 0) -> dict[str, str]:
    """New tables with `books` books and `ratings` ratings of other books than the one benchmarked."""
    tables = definitions.create_tables(dynamodb, f"b{uuid.uuid4().hex[:8]}")
    # Book items of a realistic size: the emulator's cost per transaction grows with what it copies.
    records = ({"book_id": BOOK if i == 0 else f"OL{i}W", "title": f"Book {i}",
                "subjects": ["philosophy", "ethics"], "description": "x" * 300} for i in range(books))
    book_items = [to_item(with_derived_attributes(record)) for record in records]
    stamp = utc_now()
    rating_items = [to_item({"book_id": f"GB{1 + i % 9000}", "user_id": f"reader{i}", "rating": 1 + i % 5,
                             "created_at": stamp, "updated_at": stamp}) for i in range(ratings)]

    def write(table: str, items: list[dict[str, Any]]) -> None:
        for i in range(0, len(items), 25):
            puts = [{"PutRequest": {"Item": item}} for item in items[i:i + 25]]
            dynamodb.batch_write_item(RequestItems={table: puts})

    with ThreadPoolExecutor(8) as pool:
        chunks = [(tables["books"], book_items[i:i + 1000]) for i in range(0, len(book_items), 1000)]
        chunks += [(tables["ratings"], rating_items[i:i + 1000]) for i in range(0, len(rating_items), 1000)]
        list(pool.map(lambda chunk: write(*chunk), chunks))
    return tables


def rows_of(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table, KeyConditionExpression="book_id = :b", ExpressionAttributeValues={":b": {"S": BOOK}},
        ConsistentRead=True)
    return [from_item(item) for page in pages for item in page["Items"]]


def check_exact(dynamodb: Any, tables: dict[str, str], expected: dict[str, int] | None = None) -> tuple[str, str]:
    """The book's aggregate against its ratings, and its shelf counts against its shelf entries (every rater
    rated it from no shelf: each is on `read`): "exact" or "NOT EXACT" for each."""
    stored = {row["user_id"]: row["rating"] for row in rows_of(dynamodb, tables["ratings"])}
    shelved = Counter(row["shelf"] for row in rows_of(dynamodb, tables["shelves"]))
    book = from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": BOOK}},
                                       ConsistentRead=True)["Item"])
    exact = (book["rating_count"] == len(stored) and book["rating_sum"] == sum(stored.values())
             and book["ratings_distribution"] == {str(s): list(stored.values()).count(s) for s in range(1, 6)}
             and (expected is None or stored == expected))
    shelves_exact = book.get("shelf_counts") == {shelf: shelved[shelf] for shelf in SHELVES} \
        and shelved["read"] == len(stored)
    return "exact" if exact else "NOT EXACT", "exact" if shelves_exact else "NOT EXACT"


def both(states: tuple[str, str]) -> str:
    aggregate, shelves = states
    return "exact" if aggregate == shelves == "exact" else f"NOT EXACT (aggregate {aggregate}, shelves {shelves})"


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def latency_line(label: str, latencies: list[float], elapsed: float) -> str:
    ms = [x * 1000 for x in latencies]
    return (f"  {label:<34} {len(ms):>5} changes in {elapsed:6.2f}s = {len(ms) / elapsed:6.1f}/s   "
            + "  ".join(f"p{q} {percentile(ms, q):6.0f} ms" for q in (50, 95, 99)))


@contextmanager
def ratings_service(endpoint: str, tables: dict[str, str], recommendation_url: str,
                    workers: int, issuer: TokenIssuer) -> Iterator[str]:
    """The service as deployed: granian with `workers` processes (replicas); yields its base URL."""
    port = free_port()
    env = {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": endpoint, "BOOKS_TABLE": tables["books"],
           "RATINGS_TABLE": tables["ratings"], "SHELVES_TABLE": tables["shelves"],
           "RECOMMENDATION_URL": recommendation_url,
           "ACCESS_LOG": "false", "LOG_LEVEL": "ERROR", "PORT": str(port), "WRITE_MAX_ATTEMPTS": "100",
           **{name.upper(): value for name, value in issuer.settings().items()}}
    granian = str(Path(sys.executable).with_name("granian"))
    proc = start([granian, "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", str(port),
                  "--workers", str(workers), "--no-access-log", "bookrec_ratings.app:create_app"], env=env)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/ready"), 60, "ratings service", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def counter(metrics: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith(name) and not line.startswith("#"))


async def through_http(raters: int, setups: list[tuple[int, bool]]) -> None:
    print("\n1. Through the HTTP API under granian, concurrent aiohttp clients, "
          "invalidations to a real HTTP server")
    issuer = TokenIssuer()
    for workers, serialised in setups:
        emulator = "serialised" if serialised else "threaded"
        print(f"  {workers} worker(s) on the {emulator} moto server")
        rng = random.Random(7)
        first = {f"rater{i}": rng.randint(1, 5) for i in range(raters)}
        again = {u: rng.randint(1, 5) for u in rng.sample(sorted(first), raters * 2 // 5)}
        late = {f"late{i}": rng.randint(1, 5) for i in range(raters // 5)}
        with moto_server(serialised) as (endpoint, dynamodb), recommender_stand_in() as (url, invalidated):
            tables = fresh_tables(dynamodb)
            with ratings_service(endpoint, tables, url, workers, issuer) as base:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                                 timeout=aiohttp.ClientTimeout(total=300)) as http:
                    async def rate(user: str, rating: int) -> float:
                        started = time.perf_counter()
                        async with http.post(f"{base}/books/{BOOK}/rate",
                                             json={"user_id": user, "rating": rating},
                                             headers=issuer.headers(user)) as r:
                            assert r.status in (200, 201), await r.text()
                        return time.perf_counter() - started

                    for label, batch in ((f"{len(first)} new raters at once", list(first.items())),
                                         (f"{len(again)} re-ratings + {len(late)} new at once",
                                          [*again.items(), *late.items()])):
                        rng.shuffle(batch)
                        started = time.perf_counter()
                        latencies = await asyncio.gather(*(rate(u, r) for u, r in batch))
                        print(latency_line(label, list(latencies), time.perf_counter() - started))
                    async with http.get(f"{base}/metrics") as r:
                        metrics = await r.text()
            # With one worker /metrics is the whole service; with more it is whichever worker answered.
            races = f"{counter(metrics, 'rating_write_conflicts_total'):.0f}" if workers == 1 else "n/a"
            aggregate, shelves = check_exact(dynamodb, tables, {**first, **again, **late})
            print(f"    lost races {races}, invalidations received {len(invalidated)}, aggregate {aggregate}, "
                  f"shelf counts {shelves}")


class CountingClient:
    """A DynamoDB client counting the transactions tried per user: one per attempt of that user's change
    (which writes their rating and, for a book on none of their shelves, their shelf entry)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.transactions: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def transact_write_items(self, **request: Any) -> Any:
        users = set()
        for item in request["TransactItems"]:
            write = item.get("Put") or item.get("Delete") or {}
            key = write.get("Item") or write.get("Key") or {}
            if "user_id" in key:
                users.add(key["user_id"]["S"])
        self.transactions.update(users)
        return await self._client.transact_write_items(**request)


async def replicas_racing(raters: int, replica_counts: list[int]) -> None:
    print(f"\n2. Replicas sharing only DynamoDB, {raters} new raters on one book at once "
          "(serialised moto server)")
    print(f"  {'replicas':>8} {'changes/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'lost races':>11} "
          f"{'per change':>11} {'attempts p50/p99/max':>21}  aggregate and shelf counts")
    with moto_server(serialised=True) as (_, dynamodb):
        for count in replica_counts:
            tables = fresh_tables(dynamodb)
            async with dynamodb_client(ServiceSettings()) as dynamodb_api:
                client = CountingClient(dynamodb_api)
                stores = [RatingStore(client, tables["books"], tables["ratings"], max_attempts=1000,
                                      shelves_table=tables["shelves"]) for _ in range(count)]

                async def rate(i: int, stores: list[RatingStore] = stores) -> float:
                    started = time.perf_counter()
                    await stores[i % len(stores)].change(BOOK, f"user{i}", 1 + i % 5, utc_now())
                    return time.perf_counter() - started

                started = time.perf_counter()
                latencies = [x * 1000 for x in await asyncio.gather(*(rate(i) for i in range(raters)))]
                elapsed = time.perf_counter() - started
            attempts = list(client.transactions.values())  # every rater is a distinct user
            conflicts = sum(attempts) - raters  # every change committed: each other attempt lost a race
            print(f"  {count:>8} {raters / elapsed:>10.1f} {percentile(latencies, 50):>7.0f} "
                  f"{percentile(latencies, 99):>7.0f} {conflicts:>11} {conflicts / raters:>11.2f} "
                  f"{percentile(attempts, 50):>9.0f}/{percentile(attempts, 99):.0f}/{max(attempts)}"
                  f"{'':>8}{both(check_exact(dynamodb, tables))}")
            definitions.delete_tables(dynamodb, tables["books"].rsplit("-", 1)[0])


async def emulator_cost(sizes: list[tuple[int, int]], changes: int = 10) -> None:
    print("\n3. The emulator's cost of one rating change as its tables grow (sequential changes)")
    with moto_server(serialised=False) as (_, dynamodb):
        for books, ratings in sizes:
            tables = fresh_tables(dynamodb, books, ratings)
            # Patient: the point is to measure the emulator (the service's own read timeout is 3 s).
            settings = ServiceSettings(dynamodb_read_timeout=120, dynamodb_max_attempts=1)
            async with dynamodb_client(settings) as client:
                store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
                latencies = []
                for i in range(changes):
                    started = time.perf_counter()
                    await store.change(BOOK, f"user{i}", 1 + i % 5, utc_now())
                    latencies.append((time.perf_counter() - started) * 1000)
            median = statistics.median(latencies)
            print(f"  {books:>6} books, {ratings:>6} ratings: {median:7.0f} ms per change "
                  f"(median of {changes})")
            definitions.delete_tables(dynamodb, tables["books"].rsplit("-", 1)[0])


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return int(text)


def table_size(text: str) -> tuple[int, int]:
    """BOOKS:RATINGS, at least one book (the one rated)."""
    books, _, ratings = text.partition(":")
    if not (books.isdigit() and ratings.isdigit() and int(books) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r} is not BOOKS:RATINGS (e.g. 1000:0)")
    return int(books), int(ratings)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=positive, default=200)
    parser.add_argument("--replicas", type=positive, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--sizes", nargs="+", type=table_size,
                        default=[(1, 0), (1000, 0), (10000, 0), (10000, 65000)],
                        help="BOOKS:RATINGS table sizes for the emulator-cost part (full seed ~10000:65000)")
    parser.add_argument("--only", nargs="+", choices=["http", "replicas", "emulator"],
                        default=["http", "replicas", "emulator"])
    args = parser.parse_args()
    os.environ.update(LOCAL_AWS_ENV)
    load = os.getloadavg()[0]
    print(f"rating writes benchmark: {os.cpu_count()} CPUs, load average {load:.1f} at start")
    if "http" in args.only:
        await through_http(args.raters, [(1, False), (1, True), (2, True)])
    if "replicas" in args.only:
        await replicas_racing(args.raters, args.replicas)
    if "emulator" in args.only:
        await emulator_cost(args.sizes)


if __name__ == "__main__":
    asyncio.run(main())
