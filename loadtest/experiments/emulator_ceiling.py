"""The DynamoDB emulator's own ceiling for the calls the DynamoDB-bound routes make.

    python loadtest/experiments/emulator_ceiling.py --endpoint http://127.0.0.1:5066 \
        --books-table bookrec-local-books --ratings-table bookrec-local-ratings [--seconds 30] [--concurrency 64]

No HTTP service in between: one asyncio process with the services' own
client (aioboto3, 64 pooled connections) replays, per simulated request, the
DynamoDB calls of that route, in the load test's `dynamo` mix:
  details (2)       GetItem books
  batch (2)         BatchGetItem books, 5..20 keys
  book ratings (1)  GetItem books + Query ratings index by-book-recent (newest first, 50)
  user ratings (1)  Query ratings index by-user (newest first, 50)
Prints and writes route-equivalents per second, DynamoDB calls per second,
p50/p99 per route, and the CPU of this client and of the emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import aioboto3
import psutil
from aiobotocore.config import AioConfig

MIX = (("details", 2), ("batch", 2), ("book_ratings", 1), ("user_ratings", 1))
CALLS = {"details": 1, "batch": 1, "book_ratings": 2, "user_ratings": 1}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


async def sample_keys(client, table: str, attribute: str, limit: int = 2000) -> list[str]:
    response = await client.scan(TableName=table, Limit=limit, ProjectionExpression=attribute)
    return sorted({item[attribute]["S"] for item in response.get("Items", [])})


async def measure(args: argparse.Namespace) -> dict:
    config = AioConfig(max_pool_connections=64, retries={"max_attempts": 1, "mode": "standard"})
    session = aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    async with session.client("dynamodb", endpoint_url=args.endpoint, config=config) as client:
        books = await sample_keys(client, args.books_table, "book_id")
        users = await sample_keys(client, args.ratings_table, "user_id") or ["nobody"]
        if not books:
            raise SystemExit(f"{args.books_table} is empty")
        rng = random.Random(5)
        routes = [name for name, weight in MIX for _ in range(weight) if not args.only or name in args.only]
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)

        async def one(route: str) -> None:
            if route == "details":
                await client.get_item(TableName=args.books_table, Key={"book_id": {"S": rng.choice(books)}})
            elif route == "batch":
                keys = rng.sample(books, min(len(books), rng.randint(5, 20)))
                await client.batch_get_item(
                    RequestItems={args.books_table: {"Keys": [{"book_id": {"S": k}} for k in keys]}})
            elif route == "book_ratings":
                book = rng.choice(books)
                await client.get_item(TableName=args.books_table, Key={"book_id": {"S": book}})
                await client.query(TableName=args.ratings_table, IndexName="by-book-recent",
                                   KeyConditionExpression="book_id = :b",
                                   ExpressionAttributeValues={":b": {"S": book}}, ScanIndexForward=False, Limit=50)
            else:
                await client.query(TableName=args.ratings_table, IndexName="by-user",
                                   KeyConditionExpression="user_id = :u",
                                   ExpressionAttributeValues={":u": {"S": rng.choice(users)}},
                                   ScanIndexForward=False, Limit=50)

        stop_at = 0.0

        async def worker() -> None:
            while time.monotonic() < stop_at:
                route = rng.choice(routes)
                started = time.perf_counter()
                try:
                    await one(route)
                except Exception:  # noqa: BLE001 - any failed call counts as an error of its route
                    errors[route] += 1
                    continue
                latencies[route].append((time.perf_counter() - started) * 1000)

        emulator = next((p for p in psutil.process_iter(["cmdline"])
                         if p.info["cmdline"] and any("moto_server" in c for c in p.info["cmdline"])
                         and str(args.endpoint.rsplit(":", 1)[1]) in p.info["cmdline"]), None)
        me = psutil.Process()
        for proc in (emulator, me):
            if proc is not None:
                proc.cpu_percent(None)
        stop_at = time.monotonic() + args.seconds
        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.monotonic() - started
        routes_done = sum(len(v) for v in latencies.values())
        calls_done = sum(len(v) * CALLS[r] for r, v in latencies.items())
        all_latencies = [x for v in latencies.values() for x in v]
        return {
            "endpoint": args.endpoint, "routes": sorted(set(routes)), "concurrency": args.concurrency,
            "seconds": round(elapsed, 1),
            "books_sampled": len(books), "users_sampled": len(users),
            "route_equivalents_per_s": round(routes_done / elapsed, 1),
            "dynamodb_calls_per_s": round(calls_done / elapsed, 1),
            "p50_ms": percentile(all_latencies, 0.5), "p99_ms": percentile(all_latencies, 0.99),
            "per_route": {r: {"per_s": round(len(v) / elapsed, 1), "p50_ms": percentile(v, 0.5),
                              "p99_ms": percentile(v, 0.99), "mean_ms": round(statistics.fmean(v), 1)}
                          for r, v in sorted(latencies.items())},
            "errors": dict(errors),
            "cpu_percent_of_one_core": {"client": me.cpu_percent(None),
                                        "emulator": emulator.cpu_percent(None) if emulator else None},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--books-table", required=True)
    parser.add_argument("--ratings-table", required=True)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--only", nargs="+", choices=[name for name, _ in MIX],
                        help="replay only these routes' calls (default: the whole mix)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
