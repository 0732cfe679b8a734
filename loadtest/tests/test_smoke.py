"""CI smoke: the README's `make loadtest SCENARIO=smoke`, shortened, against the end-to-end stack: every
journey through the local ALB, with the identities the runner signs in on the stack's Cognito.

Fails on any failed request (wrong status, wrong shape, inconsistent data,
empty results where the catalogue has some), on a route never exercised, and
on fewer requests than a working stack serves in that time.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from loadtest import harness, report

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 40
# The smoke user runs every journey in turn with think times scaled down to a fifth:
# a working local stack answers several hundred requests in 40 s; a tenth of that is a sure sign of trouble.
MIN_REQUESTS = 150
ROUTES = {
    ("GET", "/search?q=[query]"), ("POST", "/search"), ("POST", "/search/advanced"),
    ("GET", "/books/[id]"), ("POST", "/books/batch"), ("POST", "/books/[id]/rate"),
    ("GET", "/books/[id]/ratings"), ("GET", "/users/[id]/ratings"), ("GET", "/recommendations/[user]"),
}


def test_smoke_run_has_no_failures(local_stack, tmp_path):
    options = (f"--state-dir {local_stack.state_dir} --port-offset {local_stack.port_offset} "
               f"--duration {SECONDS} --think-scale 0.2 --results {tmp_path} --no-plots")
    done = subprocess.run(["make", "-s", "loadtest", "SCENARIO=smoke", f"LOADTEST_ARGS={options}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=SECONDS + 300)
    out, = tmp_path.iterdir()
    summary = json.loads((out / "summary.json").read_text())
    assert done.returncode == 0 and summary["passed"], (
        f"exit {done.returncode}: {done.stdout[-3000:]}{done.stderr[-3000:]}\n" + "\n".join(harness.locust_errors(out)))
    assert "using the running stack" in done.stdout + done.stderr  # the e2e stack, identities made on it
    totals = summary["totals"]
    assert not summary["exceptions"], summary["exceptions"]
    assert totals["requests"] >= MIN_REQUESTS, report.table(summary)
    seen = {(e["method"], e["name"]) for e in summary["endpoints"]}
    assert seen >= ROUTES, f"never exercised: {sorted(ROUTES - seen)}"
    assert seen & {("GET", "/search/autocomplete?q=[prefix]"), ("GET", "/search/shard/[prefix]")}
