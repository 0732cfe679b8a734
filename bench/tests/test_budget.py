"""make bench-budget runs as the README has it, at its smallest size (the sample seed, search only, 3 s), and
prints the per-request CPU budget by part."""

from __future__ import annotations

import os
import re

import pytest

from bench.tests.makes import make

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
OFFSET = int(os.environ.get("BOOKREC_STACK_PORT_OFFSET", "200")) + 800  # a stack of its own


def test_make_bench_budget_prints_cpu_per_request_by_part(tmp_path):
    out = make("bench-budget", f"BUDGET_ARGS=--seed sample --seconds 3 --services search --port-offset {OFFSET} "
                               f"--results {tmp_path}")
    for part in ("server", "framework", "middlewares", "logging", "metrics", "rate limit", "handler"):
        assert re.search(rf"^{part}\s+\d+\s+\d+ %$", out, re.MULTILINE), part
    assert re.search(r"^total\s+\d+$", out, re.MULTILINE) and re.search(r"^non-2xx\s+0$", out, re.MULTILINE)
