"""Recommender benchmark: build time and memory, recommend latency for a miss and a cache hit.

    python services/recommendation/benchmarks/bench_recommend.py [--synthetic-ratings 5000000]

Prints figures; asserts nothing. Sizes: the goodbooks-10k sample (~240K real
ratings) and a synthetic catalogue with skewed popularity at 5M ratings. The
miss is computed in-process from a user's ratings (the DynamoDB Query is not
included); the hit is a real Redis GET + decode. The replaced system's miss
(dense user-user cosine over the whole matrix, per request) is timed on the
same data for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from bookrec_recommendation.evaluate import DEFAULT_RATINGS
from bookrec_recommendation.model import Catalogue, CatalogueEntry, ItemNeighbourModel, Recommender
from bookrec_recommendation.store import CachedRecommendations, RecommendationCache


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[float]) -> str:
    a = np.array(samples) * 1000
    return f"p50 {np.percentile(a, 50):7.3f} ms  p99 {np.percentile(a, 99):7.3f} ms  (n={len(a)})"


def build(users: list[str], books: list[str], label: str) -> Recommender:
    before = rss_mb()
    started = time.perf_counter()
    model = ItemNeighbourModel.build(users, books, neighbours=100, regularisation=25.0)
    seconds = time.perf_counter() - started
    catalogue = Catalogue(CatalogueEntry(b, b, (), ()) for b in model.book_ids)
    print(f"[{label}] ratings {len(users):,}  books {len(model.book_ids):,}  build {seconds:.1f} s  "
          f"model {model.nbytes / 2**20:.1f} MiB  peak RSS {rss_mb():.0f} MB (+{rss_mb() - before:.0f})")
    return Recommender(model, catalogue)


def time_misses(recommender: Recommender, by_user: dict[str, dict[str, int]], label: str, n: int = 500) -> None:
    rng = np.random.default_rng(0)
    users = list(by_user)
    samples = []
    for user in rng.choice(users, min(n, len(users)), replace=False):
        started = time.perf_counter()
        recommender.recommend(by_user[user], 100)
        samples.append(time.perf_counter() - started)
    print(f"[{label}] miss (score + rank 100):  {percentiles(samples)}")


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


async def time_hits(label: str, n: int = 2000) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        print(f"[{label}] cache hit: skipped (no redis-server)")
        return
    import redis.asyncio as aioredis

    port = 6399
    proc = subprocess.Popen([binary, "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL)
    try:
        await asyncio.sleep(0.3)
        client = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
        cache = RecommendationCache(client, 600)
        value = CachedRecommendations("collaborative", "v1", [(f"OL{i}W", 1.0 / (i + 1), "readers of “A Title” also rated it")
                                                               for i in range(100)])
        await cache.put("u1", value)
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            await cache.get("u1")
            samples.append(time.perf_counter() - started)
        print(f"[{label}] cache hit (Redis GET + decode of 100 items): {percentiles(samples)}")
        await client.aclose()
    finally:
        proc.terminate()


def goodbooks(path: Path) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
    rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, usecols=(0, 1, 2))
    users = [str(u) for u in rows[:, 0]]
    books = [f"GB{b}" for b in rows[:, 1]]
    by_user: dict[str, dict[str, int]] = {}
    for u, b, r in zip(users, books, rows[:, 2].tolist(), strict=True):
        by_user.setdefault(u, {})[b] = r
    return users, books, by_user


def synthetic(n_ratings: int, n_books: int = 20_000, per_user: int = 25) -> tuple[list[str], list[str], dict]:
    rng = np.random.default_rng(1)
    n_users = n_ratings // per_user
    popularity = 1.0 / np.arange(1, n_books + 1) ** 0.9  # Zipf-like, as real catalogues
    popularity /= popularity.sum()
    picks = rng.choice(n_books, size=n_ratings, p=popularity)
    user_of = np.repeat(np.arange(n_users), per_user)[:n_ratings]
    users = user_of.astype(str).tolist()
    books = np.char.add("OL", np.char.add(picks.astype(str), "W")).tolist()
    by_user: dict[str, dict[str, int]] = {}
    for u, b in zip(users[: per_user * 2000], books[: per_user * 2000], strict=True):
        by_user.setdefault(u, {})[b] = 4
    return users, books, by_user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=Path, default=DEFAULT_RATINGS)
    parser.add_argument("--synthetic-ratings", type=int, default=5_000_000)
    args = parser.parse_args()
    users, books, by_user = goodbooks(args.ratings)
    recommender = build(users, books, "goodbooks")
    time_misses(recommender, by_user, "goodbooks")
    asyncio.run(time_hits("goodbooks"))
    replaced_miss(users, books, by_user)
    if args.synthetic_ratings:
        users, books, by_user = synthetic(args.synthetic_ratings)
        recommender = build(users, books, f"synthetic {args.synthetic_ratings / 1e6:g}M")
        time_misses(recommender, by_user, f"synthetic {args.synthetic_ratings / 1e6:g}M")
    print(json.dumps({"note": "figures above; nothing asserted"}))


if __name__ == "__main__":
    main()
