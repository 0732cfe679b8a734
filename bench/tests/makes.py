"""Running a README make target from a test, as a reader types it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# make bench-fleet at its smallest: both halves, two build intervals each (the second reads the feed only).
FLEET = ("FLEET_ARGS=--books 300 --rates 0 1 --periods 1 --replicas 1 --intervals 2 --changes 5 "
         "--cold-books 1000 --scan-books 300",
         "RECO_FLEET_ARGS=--scan-ratings 500 --replicas 1 --intervals 2 --changes 5")


def make(target: str, *assignments: str) -> str:
    """`make <target> <assignments>` from the repository root; its output, which must end in success."""
    done = subprocess.run(["make", "--no-print-directory", target, *assignments], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, f"make {target} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout
