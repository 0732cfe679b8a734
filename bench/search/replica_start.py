"""A replica's cold start from a snapshot file, in a process of its own (so its RSS is a replica's alone).

    python -m bench.search.replica_start FILE

What `live` does with the artifact's bytes once fetched: the SHA-256 check `ArtifactStore.fetch` makes,
`artifact.load` (the arrays are views into the bytes) and the `SearchIndex` over the parts (the columns
only queries read). The download itself is not here: from S3 it adds the snapshot's size over the task's
network throughput. Prints the times and the process's RSS; `bench_search` runs it after each build.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from bench.search.measure import rss_mb
from bookrec_search import artifact
from bookrec_search.index import SearchIndex


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        print("usage: python -m bench.search.replica_start SNAPSHOT_FILE (an existing file)", file=sys.stderr)
        raise SystemExit(2)
    before = rss_mb()
    started = time.perf_counter()
    data = Path(sys.argv[1]).read_bytes()
    read = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    checked = time.perf_counter()
    parts = artifact.load(data)
    loaded = time.perf_counter()
    index = SearchIndex(parts)
    made = time.perf_counter()
    index.warmed()
    ready = time.perf_counter()
    index.search("the")
    print(f"  replica cold start from the snapshot: {ready - started:.1f} s (read {read - started:.1f} s, "
          f"SHA-256 {checked - read:.1f} s, artifact.load {loaded - checked:.1f} s, SearchIndex "
          f"{made - loaded:.1f} s, heads, bitmaps and compiled loops {ready - made:.1f} s); "
          f"replica RSS {rss_mb():.0f} MB "
          f"(+{rss_mb() - before:.0f} for the index), "
          f"peak {high_water_mb():.0f} MB")


def high_water_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not carried over from the parent it forked from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
