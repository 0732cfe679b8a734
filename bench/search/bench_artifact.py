"""Artifact and deletion benchmark: dump/load seconds and bytes, deleting a few books; at 50K and 1M books.

    python -m bench.search.bench_artifact [--sizes 50000 1000000] [--seed 7] [--authors-dump FILE]

The books and the build are bench_search's (synthetic, seed 7). Per size: `artifact.dump` (seconds,
bytes), `artifact.load` and the index made of what it loaded (seconds, RSS growth: the arrays are views
into the bytes), that index's answers to a few queries compared with the original's, and
`updated(..., deleted=...)` with 5 deleted books (the change feed's usual share), on the original and on
the loaded index. Prints figures; asserts only that the loaded index answers as the original.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from bench.search.bench_search import build
from bench.search.measure import load_average, peak_rss_mb, rss_mb
from bookrec_search import artifact
from bookrec_search.filtering import Filters
from bookrec_search.index import SearchIndex

QUERIES = ["the", "love and war", "histroy of", "harry pot", "war"]


def answers(index: SearchIndex) -> list:
    out: list = [[(index.book(h.position), h.score) for h in index.search(q, 20).hits] for q in QUERIES]
    advanced = index.advanced(Filters(min_year=1990), "rating", "desc")
    out.append([index.book(h.position) for h in advanced.hits])
    out.append([index.book(p) for p in index.autocomplete("the", 10).positions])
    return out


def run(n: int, seed: int, authors_dump: Path | None) -> None:
    print(f"{n:,} books; {load_average()}")
    index = build(n, seed, authors_dump)
    started, cpu = time.perf_counter(), time.process_time()
    data = artifact.dump(index.parts)
    print(f"  dump: {time.perf_counter() - started:.2f} s ({time.process_time() - cpu:.2f} s CPU), "
          f"{len(data) / 2**20:.0f} MiB ({len(data):,} bytes); index.nbytes {index.nbytes / 2**20:.0f} MiB")
    started = time.perf_counter()
    digest = hashlib.sha256(data).hexdigest()
    print(f"  SHA-256 of the bytes (the replica's check before load): {time.perf_counter() - started:.2f} s")
    before = rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    loaded = SearchIndex(artifact.load(data))
    print(f"  load: {time.perf_counter() - started:.2f} s ({time.process_time() - cpu:.2f} s CPU), "
          f"RSS +{rss_mb() - before:.0f} MB over the bytes already held")
    assert answers(loaded) == answers(index), "the loaded index answers differently"
    doomed = [index.book(p)["book_id"] for p in range(0, index.size, index.size // 5)][:5]
    for name, which in (("original", index), ("loaded", loaded)):
        started = time.perf_counter()
        smaller = which.updated([], deleted=doomed)
        print(f"  delete 5 books ({name} index): {(time.perf_counter() - started) * 1000:.0f} ms "
              f"(now {smaller.size:,})")
    print(f"  peak RSS {peak_rss_mb():.0f} MB; {digest[:12]}…")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[50_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--authors-dump", type=Path, metavar="FILE", help="as bench_search's")
    arguments = parser.parse_args()
    for n in arguments.sizes:
        run(n, arguments.seed, arguments.authors_dump)


if __name__ == "__main__":
    main()
