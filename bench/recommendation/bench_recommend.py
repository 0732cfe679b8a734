"""Recommender benchmark: build time and memory, recommend latency for a miss and a cache hit.

    python -m bench.recommendation.bench_recommend [--scale] [--ratings CSV] [--users N]

Prints figures; asserts nothing. Sizes: the goodbooks-10k sample bundled in
the repository (~240K real ratings, ~10K books) always, and with `--scale`
(`make bench-reco RECO_SCALE=1`) a synthetic catalogue of 50K books and 5M
distinct ratings, skewed like real ratings (Zipf-like book popularity,
log-normal user activity). Peak memory is the process's peak resident set
during the build, and its growth over the resident set before it. The miss
is computed in-process from a user's ratings (the DynamoDB Query is not
included): scoring, ranking and explaining the 100 recommendations cached
per user. The hit is a real Redis GET + decode. The replaced system's miss
(dense user-user cosine over the whole matrix, per request) is timed on the
same data for comparison. Also printed: the Redis memory one reader without
ratings (any id: no token needed) used to cost, a ~6 KB popularity list cached
per id for 600 s, now none (one list per model, held in the process), measured
as INFO's used_memory over 10,000 such entries; and the top 10 of the popularity list
(the cold-start fallback) on the bundled data, ranked by the previous
Bayesian average and by the lower confidence bound used now.

Run with one BLAS thread (OPENBLAS_NUM_THREADS=1, as the Makefile and the
service image do): the build solves thousands of 100×100 systems, where BLAS
threads only contend for the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gzip
import json
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import msgspec
import numpy as np  # after the BLAS thread setting
import redis.asyncio as aioredis

from bench.recommendation.evaluate import positive
from bookrec_etl.seed import seed_files
from bookrec_local.procs import free_port, port_open, redis_command, start, stop, wait_until
from bookrec_recommendation.catalogue import Catalogue, CatalogueEntry
from bookrec_recommendation.model import ItemNeighbourModel, Recommender
from bookrec_recommendation.store import CachedRecommendations, RecommendationCache

CACHED_LENGTH = 100  # recommendations computed and cached per user (settings.cached_length)


def _status(field: str) -> float | None:
    """A VmRSS/VmHWM figure of this process in MB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> None:
    """Start a new peak-RSS measurement (Linux: VmHWM reset); elsewhere the lifetime peak is reported."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_mb() -> float:
    current = _status("VmRSS")
    return current if current is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_mb() -> float:
    peak = _status("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[float]) -> str:
    a = np.array(samples) * 1000
    return f"p50 {np.percentile(a, 50):7.3f} ms  p99 {np.percentile(a, 99):7.3f} ms  (n={len(a)})"


def load_average() -> str:
    """The 1-minute load: on a shared machine, wall-clock tails grow with it while CPU time does not."""
    try:
        return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:
        return "load unknown"


def build(users: list[str], books: list[str], label: str, catalogue: Catalogue | None = None) -> Recommender:
    reset_peak()
    before = rss_mb()
    started, started_cpu = time.perf_counter(), time.process_time()
    model = ItemNeighbourModel.build(users, books, neighbours=100, regularisation=25.0)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - started_cpu
    peak = peak_mb()
    if catalogue is None:
        catalogue = Catalogue(CatalogueEntry(b, b, (), ()) for b in model.book_ids)
    print(f"[{label}] ratings {len(users):,}  books {len(model.book_ids):,}  build {seconds:.1f} s "
          f"(CPU {cpu_seconds:.1f} s, {load_average()})  model {model.nbytes / 2**20:.1f} MiB  "
          f"peak RSS {peak:.0f} MB (+{peak - before:.0f} MB over the {before:.0f} MB before the build)")
    return Recommender(model, catalogue)


def time_misses(recommender: Recommender, by_user: dict[str, dict[str, int]], label: str,
                n: int = 500) -> None:
    rng = np.random.default_rng(0)
    users = [u for u, rated in by_user.items() if len(rated) >= recommender.min_collaborative]
    for user in users[:20]:  # warm-up
        recommender.recommend(by_user[user], CACHED_LENGTH)
    samples, cpu = [], []
    strategies: dict[str, int] = {}
    for user in rng.choice(users, min(n, len(users)), replace=False):
        started, started_cpu = time.perf_counter(), time.thread_time()
        strategy, _ = recommender.recommend(by_user[user], CACHED_LENGTH)
        samples.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
        strategies[strategy] = strategies.get(strategy, 0) + 1
    print(f"[{label}] miss (score + rank + explain {CACHED_LENGTH}):  {percentiles(samples)}  {strategies}")
    print(f"[{label}] miss, CPU time only:            {percentiles(cpu)}  ({load_average()})")


def replaced_miss(users: list[str], books: list[str], by_user: dict[str, dict[str, int]], n: int = 5) -> None:
    """The replaced system rebuilt dense user×user cosine on each miss: time a few."""
    user_ids = {u: i for i, u in enumerate(dict.fromkeys(users))}
    book_ids = {b: i for i, b in enumerate(dict.fromkeys(books))}
    samples = []
    for user in list(by_user)[:n]:
        started = time.perf_counter()
        dense = np.zeros((len(user_ids), len(book_ids)), dtype=np.float32)
        for u, ratings in by_user.items():
            for b, r in ratings.items():
                dense[user_ids[u], book_ids[b]] = r
        unit = dense / np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-9)
        similarity = unit @ unit[user_ids[user]]
        scores = similarity @ dense
        np.argsort(-scores)[:100]
        samples.append(time.perf_counter() - started)
    print(f"[goodbooks] replaced system's miss (dense user-user per request): {percentiles(samples)}")


async def unknown_ids(client, popular: CachedRecommendations, label: str, n: int = 10_000) -> None:
    """What readers without ratings cost Redis: before, one entry per id (each computed list was stored)."""
    encoded = msgspec.json.encode(popular)
    before = (await client.info("memory"))["used_memory"]
    async with client.pipeline(transaction=False) as pipe:
        for i in range(n):
            pipe.set(f"reco:stranger-{i}", encoded, ex=600)
        await pipe.execute()
    used = (await client.info("memory"))["used_memory"] - before
    await client.flushdb()
    per_second = 100  # unknown ids asked for per second, by anyone
    held = used / n * per_second * 600 / 2**20
    print(f"[{label}] readers without ratings: the popularity list is {len(encoded):,} bytes; before, "
          f"each id cost Redis {used / n:,.0f} bytes for 600 s ({per_second}/s: {held:,.0f} MiB held); now 0 "
          f"(one list per model, in the process)")


async def time_hits(label: str, n: int = 2000, popular: CachedRecommendations | None = None) -> None:
    port = free_port()
    command = redis_command(port)
    if command is None:
        print(f"[{label}] cache hit: skipped (no redis-server)")
        return
    proc = start(command)
    try:
        wait_until(lambda: port_open(port), 15, "redis-server", proc)
        client = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
        cache = RecommendationCache(client, 600)
        value = CachedRecommendations("collaborative", "v1", [
            (f"OL{i}W", 1.0 / (i + 1), "readers of “A Title” also rated it") for i in range(100)])
        await cache.put("u1", value, await cache.generation("u1"))
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            await cache.get("u1")
            samples.append(time.perf_counter() - started)
        print(f"[{label}] cache hit (Redis GET + decode of 100 items): {percentiles(samples)}")
        if popular is not None:
            await unknown_ids(client, popular, label)
        await client.aclose()
    finally:
        stop(proc)


def goodbooks(path: Path, first_users: int | None = None
              ) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
    """(user ids, book ids) per rating of the goodbooks CSV, and each user's ratings; with `first_users`,
    only the ratings of that many users (the lowest ids)."""
    rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, usecols=(0, 1, 2))
    if first_users is not None:
        rows = rows[np.isin(rows[:, 0], np.unique(rows[:, 0])[:first_users])]
    users = [str(u) for u in rows[:, 0]]
    books = [f"GB{b}" for b in rows[:, 1]]
    by_user: dict[str, dict[str, int]] = {}
    for u, b, r in zip(users, books, rows[:, 2].tolist(), strict=True):
        by_user.setdefault(u, {})[b] = r
    return users, books, by_user


def goodbooks_catalogue(by_user: dict[str, dict[str, int]]) -> Catalogue:
    """Titles from the bundled goodbooks books, rating aggregates from the ratings read (as the ETL loads)."""
    titles = {}
    with gzip.open(seed_files()["goodbooks_books"], "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            titles[f"GB{row['book_id']}"] = row["title"]
    sums: dict[str, int] = {}
    counts: dict[str, int] = {}
    for rated in by_user.values():
        for b, r in rated.items():
            sums[b] = sums.get(b, 0) + r
            counts[b] = counts.get(b, 0) + 1
    return Catalogue(CatalogueEntry(b, titles.get(b, b), (), (), sums.get(b, 0), counts.get(b, 0))
                     for b in sorted(set(titles) | set(counts)))


def popularity_top10(catalogue: Catalogue) -> None:
    counts = np.array([catalogue.entries[b].rating_count for b in catalogue.order], dtype=np.float64)
    previous = np.argsort(-(catalogue.bayesian + 1e-6 * np.log1p(counts)), kind="stable")[:10]
    rankings = {"previous: Bayesian average, weight = median count": previous,
                "now: its lower confidence bound": catalogue.popularity_rank[:10]}
    for name, ranking in rankings.items():
        print(f"[goodbooks] popularity top 10, {name}:")
        for place, position in enumerate(ranking, start=1):
            entry = catalogue.entries[catalogue.order[position]]
            average = entry.rating_sum / max(entry.rating_count, 1)
            print(f"    {place:2d}. {entry.title[:60]:60s} {average:.2f} from {entry.rating_count:4d} "
                  "ratings")


def synthetic(n_ratings: int, n_books: int) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
    """`n_ratings` distinct (user, book) pairs: Zipf-like book popularity, log-normal user activity."""
    rng = np.random.default_rng(1)
    popularity = 1.0 / np.arange(1, n_books + 1) ** 1.0
    popularity /= popularity.sum()
    activity = np.clip(rng.lognormal(3.2, 1.1, size=4 * n_ratings // 25), 3, 3000).astype(np.int64)
    activity = activity[: np.searchsorted(np.cumsum(activity), int(n_ratings * 1.5)) + 1]
    user_of = np.repeat(np.arange(len(activity)), activity)
    book_of = rng.permutation(n_books)[rng.choice(n_books, size=len(user_of), p=popularity)]
    pairs = np.unique(user_of * n_books + book_of)  # a user rates a book once
    pairs = np.sort(rng.choice(pairs, size=min(n_ratings, len(pairs)), replace=False))
    user_of, book_of = np.divmod(pairs, n_books)
    users = [str(u) for u in user_of.tolist()]
    books = [f"OL{b}W" for b in book_of.tolist()]
    by_user: dict[str, dict[str, int]] = {}
    raters = np.unique(user_of)
    for user in rng.choice(raters, min(2000, len(raters)), replace=False).tolist():
        lo, hi = np.searchsorted(user_of, [user, user + 1])
        by_user[str(user)] = {books[i]: 4 for i in range(lo, hi)}
    return users, books, by_user


def time_similar(recommender: Recommender, label: str, n: int = 2000) -> None:
    """GET /books/{id}/similar's computation in-process (what a replica does on a miss of its LRU): the 50
    longest list kept, for books drawn at random, most-rated ones as often as rare ones."""
    from bookrec_recommendation.engine import SIMILAR_LENGTH

    rng = np.random.default_rng(1)
    books = list(recommender.catalogue.entries)
    for book_id in books[:20]:  # warm-up
        recommender.similar(book_id, SIMILAR_LENGTH)
    samples, cpu = [], []
    for book_id in rng.choice(books, min(n, len(books)), replace=False):
        started, started_cpu = time.perf_counter(), time.thread_time()
        recommender.similar(str(book_id), SIMILAR_LENGTH)
        samples.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
    pairs, counts = recommender.pairs, recommender.model.cooccurrence
    print(f"[{label}] similar books ({SIMILAR_LENGTH}, computed): {percentiles(samples)}; CPU time only "
          f"{percentiles(cpu)}  ({load_average()})")
    print(f"[{label}] neighbour pairs held for similar books: {pairs.nbytes / 2**20:.1f} MiB "
          f"({pairs.nbytes / max(len(recommender.model.book_ids), 1):.0f} bytes per book); counts beside the "
          f"weights in the model: {(counts.nbytes if counts is not None else 0) / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=Path, default=seed_files()["goodbooks_ratings"],
                        help="CSV user_id,book_id,rating; default: the bundled goodbooks-10k sample")
    parser.add_argument("--users", type=positive, default=None,
                        help="only the ratings of this many users (the lowest ids): a quicker run")
    parser.add_argument("--scale", action="store_true", help="also build at --scale-ratings/--scale-books")
    parser.add_argument("--scale-ratings", type=int, default=5_000_000)
    parser.add_argument("--scale-books", type=int, default=50_000)
    args = parser.parse_args()
    if not args.ratings.is_file():
        parser.error(f"--ratings {args.ratings}: no such file")
    users, books, by_user = goodbooks(args.ratings, args.users)
    catalogue = goodbooks_catalogue(by_user)
    recommender = build(users, books, "goodbooks", catalogue)
    time_misses(recommender, by_user, "goodbooks")
    time_similar(recommender, "goodbooks")
    popularity_top10(catalogue)
    strategy, picks = recommender.recommend({}, CACHED_LENGTH)
    popular = CachedRecommendations(strategy, recommender.version,
                                    [(p.book_id, p.score, p.reason) for p in picks])
    asyncio.run(time_hits("goodbooks", popular=popular))
    replaced_miss(users, books, by_user)
    del recommender, catalogue, users, books, by_user
    if args.scale:
        label = f"synthetic {args.scale_books / 1e3:g}K books / {args.scale_ratings / 1e6:g}M ratings"
        started = time.perf_counter()
        users, books, by_user = synthetic(args.scale_ratings, args.scale_books)
        print(f"[{label}] generated in {time.perf_counter() - started:.1f} s")
        recommender = build(users, books, label)
        time_misses(recommender, by_user, label)
        time_similar(recommender, label)
    else:
        print("[scale] skipped: `make bench-reco RECO_SCALE=1` (or --scale) builds at 50K books / 5M ratings")
    print(json.dumps({"note": "figures above; nothing asserted"}))


if __name__ == "__main__":
    main()
