"""What the search benchmarks measure with: memory, load, and percentiles of wall and CPU time."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


def measure(name: str, fn: Callable[[int], Any], repeat: int,
            clock: Callable[[], float] = time.thread_time) -> None:
    """Wall-clock and CPU-time percentiles: on a shared machine the CPU time shows the work itself."""
    fn(0)  # warm
    wall, cpu = [], []
    for i in range(repeat):
        started, started_cpu = time.perf_counter(), clock()
        fn(i)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((clock() - started_cpu) * 1000)
    w, c = np.array(wall), np.array(cpu)
    print(f"  {name:<50s} p50 {np.percentile(w, 50):6.2f}  p99 {np.percentile(w, 99):6.2f}  "
          f"max {w.max():6.2f} ms | CPU p50 {np.percentile(c, 50):6.2f}  p99 {np.percentile(c, 99):6.2f} ms")
