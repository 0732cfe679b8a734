"""CI smoke: a short headless Locust run of every journey through the local ALB.

Fails on any failed request (wrong status, wrong shape, inconsistent data,
empty results where the catalogue has some), on a route never exercised, and
on fewer requests than a working stack serves in that time.
"""

from __future__ import annotations

import pytest

from loadtest import harness, report

pytestmark = pytest.mark.e2e

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
    tokens = harness.write_identities(local_stack, 2, tmp_path / "identities.json")
    run = harness.LocustRun("smoke", local_stack.alb_url, tmp_path, tokens=tokens,
                            env={"LOADTEST_DURATION": str(SECONDS), "LOADTEST_THINK_SCALE": "0.2"})
    exit_code = run.run(timeout=SECONDS + 240)
    summary = report.summarise(tmp_path, {"locust_exit_code": exit_code})
    totals = summary["totals"]
    assert exit_code == 0 and totals["failures"] == 0, (
        f"locust exit {exit_code}, failures: {summary['failures']}\n" + "\n".join(harness.locust_errors(tmp_path)))
    assert not summary["exceptions"], summary["exceptions"]
    assert totals["requests"] >= MIN_REQUESTS, report.table(summary)
    seen = {(e["method"], e["name"]) for e in summary["endpoints"]}
    assert ROUTES <= seen, f"never exercised: {sorted(ROUTES - seen)}"
    assert seen & {("GET", "/search/autocomplete?q=[prefix]"), ("GET", "/search/shard/[prefix]")}
