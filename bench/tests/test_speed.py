"""make bench-speed runs as the README has it, every step at its smallest size, and prints each step's figures:
the framework ceiling direct and through HAProxy, the in-memory routes through the local ALB, the CPU budget and
the recommender's build and latency."""

from __future__ import annotations

import os
import re

import pytest

from bench.tests.makes import make

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
OFFSET = int(os.environ.get("BOOKREC_STACK_PORT_OFFSET", "200"))


def test_make_bench_speed_prints_every_step_s_figures(tmp_path):
    out = make("bench-speed",
               f"CEILING_ARGS=--seconds 2 --connections 8 --results {tmp_path}",
               f"TARGETS_ARGS=--seed sample --users 4 --duration 3 --warmup 1 --port-offset {OFFSET + 900} "
               f"--results {tmp_path}",
               f"BUDGET_ARGS=--seed sample --seconds 3 --services search --port-offset {OFFSET + 940} "
               f"--results {tmp_path}",
               "RECO_SPEED_ARGS=--users 100")
    # framework ceiling: one wrk result per path (direct, then through the local ALB)
    assert len(re.findall(r'"requests_per_s": \d+', out)) >= 2, out[-3000:]
    # the in-memory routes through the ALB: Locust's table row and wrk's figures
    assert re.search(r"^memory, alb workers 1\s+\d+\.\d\s+", out, re.MULTILINE), out[-3000:]
    assert re.search(r"wrk memory, alb workers 1: \{.*\"requests_per_s\"", out), out[-3000:]
    # the CPU budget by part, and the recommender at the bundled data's scale
    assert re.search(r"^handler\s+\d+\s+\d+ %$", out, re.MULTILINE) and re.search(r"^non-2xx\s+0$", out, re.MULTILINE)
    assert re.search(r"\[goodbooks\] ratings [\d,]+  books [\d,]+  build \d+\.\d s", out)
