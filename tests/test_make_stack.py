"""The README's stack commands run as written: `make up`, `make status`, `make bench-alb` and `make down` on a
stack in the background, and `make run` in the foreground until Ctrl-C. Each on a stack of its own (600 ports
above the session's, the sample seed), so nothing else is disturbed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from bookrec_local.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
OFFSET = int(os.environ.get("BOOKREC_STACK_PORT_OFFSET", "200")) + 600
ALB = f"http://127.0.0.1:{8080 + OFFSET}"


def environment(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "BOOKREC_STATE_DIR": str(state_dir), "BOOKREC_PORT_OFFSET": str(OFFSET),
            "BOOKREC_SEED": "sample", "RATE_LIMIT": "0"}


def make(env: dict[str, str], *arguments: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *arguments], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def answers(path: str) -> bool:
    try:
        with urllib.request.urlopen(ALB + path, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_make_up_status_bench_alb_and_down(tmp_path):
    env = environment(tmp_path / "state")
    try:
        up = make(env, "up")
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert answers("/books/OL827357W")
        status = make(env, "status")
        assert status.returncode == 0 and "search" in status.stdout + status.stderr, status.stdout + status.stderr
        bench = make(env, "bench-alb", "ALB_ARGS=--requests 100 --duration 1 --connections 4")
        assert bench.returncode == 0, bench.stdout[-3000:] + bench.stderr[-3000:]
        report = json.loads(bench.stdout[bench.stdout.index("{"):])
        assert report["service"] == "bookdetail" and report["via_alb_ms"]["p50"] > 0
    finally:
        down = make(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not answers("/health")


def test_make_run_serves_until_interrupted(tmp_path):
    env = environment(tmp_path / "state")
    # As from a terminal: Ctrl-C interrupts, even when this suite runs where SIGINT is ignored (a background job).
    run = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        ready = tmp_path / "state" / "env.json"  # written once every service is ready
        wait_until(lambda: ready.exists() or run.poll() is not None, 600, "make run's stack")
        assert run.poll() is None, run.stdout.read() if run.stdout else ""
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C, as the README says
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        make(env, "down")  # whatever a failed run left (its services run in their own sessions)
    assert "stopping" in output and "Traceback" not in output, output[-3000:]
    assert not answers("/health")
