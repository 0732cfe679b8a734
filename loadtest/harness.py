"""Running Locust headless against a stack, and watching the stack's processes while it runs.

Used by loadtest/run.py (`make loadtest`), the experiments and the CI smoke
test. Locust always runs as its own process: it monkey-patches the standard
library with gevent, which must not meet boto3 or moto in one interpreter.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bookrec_local.definitions import ROOT
from bookrec_local.stack import Stack

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
RESULTS = HERE / "results"
DEFAULT_STATE_DIR = ROOT / ".run"


# Users the load test signs in as, in the local stack's Cognito user pool.
SYNTHETIC_USER_PREFIX = "loadtest-"


def say(message: str) -> None:
    print(f"[loadtest] {message}", flush=True)


def results_dir(label: str, base: Path = RESULTS) -> Path:
    out = base / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{label}"
    out.mkdir(parents=True, exist_ok=False)
    return out


def write_identities(stack: Stack, count: int, path: Path, workers: int = 8) -> Path:
    """Users of a local stack's Cognito, signed in: [{"access_token", "sub", "username"}] as JSON at `path`."""
    from concurrent.futures import ThreadPoolExecutor

    run = datetime.now(UTC).strftime("%H%M%S")
    with ThreadPoolExecutor(workers) as pool:
        identities = list(pool.map(lambda n: stack.sign_in(f"{SYNTHETIC_USER_PREFIX}{run}-{n}"), range(count)))
    path.write_text(json.dumps(identities))
    return path


@contextmanager
def stack_for(host: str | None, state_dir: Path, *, port_offset: int = 0, seed: str = "full",
              alb_workers: int = 1, keep: bool = False) -> Iterator[tuple[str, Stack | None]]:
    """The URL to load, and the local stack behind it when there is one; starts (and later stops) it if needed.

    A stack started here runs without rate limits: one load generator is one client address."""
    if host:
        yield host, None
        return
    stack = Stack(state_dir, port_offset, seed=seed, alb_workers=alb_workers, rate_limit="0")
    started_here = not stack.running()
    if started_here:
        say(f"starting a local stack (seed {seed}, state in {stack.state_dir}), rate limits off")
        stack.up()
    else:
        say(f"using the running stack at {stack.alb_url} ({stack.state_dir}); if it was started with rate "
            "limits on, 429s count as failures (RATE_LIMIT=0 make up starts one without)")
    try:
        yield stack.alb_url, stack
    finally:
        if started_here and not keep:
            say("stopping the stack started for this run")
            stack.down()


class ProcessWatcher:
    """CPU use of named process trees (a granian master and its worker, the ALB and its workers...)."""

    def __init__(self, roots: Mapping[str, int]) -> None:
        self.roots = dict(roots)
        self._procs: dict[int, psutil.Process] = {}
        self.samples: list[tuple[float, str, float, float]] = []  # time, name, cpu %, rss MB

    def _tree(self, pid: int) -> list[psutil.Process]:
        try:
            root = self._procs.get(pid) or psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        return [self._procs.setdefault(p.pid, p) for p in tree]

    def sample(self) -> None:
        now = time.time()
        for name, pid in self.roots.items():
            cpu = rss = 0.0
            for proc in self._tree(pid):
                try:
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss / 2**20
                except psutil.Error:
                    continue
            self.samples.append((now, name, cpu, rss))

    def write(self, path: Path) -> None:
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", "process", "cpu_percent", "rss_mb"])
            writer.writerows((int(t), n, round(c, 1), round(r, 1)) for t, n, c, r in self.samples)


@dataclass
class LocustRun:
    scenario: str
    host: str
    out: Path
    tags: Sequence[str] = ()
    classes: Sequence[str] = ()
    processes: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    watch: Mapping[str, int] = field(default_factory=dict)  # extra processes to sample (name -> pid)
    tokens: Path | None = None  # identities the raters sign in as (write_identities)
    exit_code: int | None = None
    started_at: str = ""
    wall_seconds: float = 0.0

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", self.host,
               "--csv", str(self.out / "locust"), "--csv-full-history", "--html", str(self.out / "report.html"),
               "--json-file", str(self.out / "locust"), "--only-summary", "--logfile", str(self.out / "locust.log"),
               "--loglevel", "INFO", "--stop-timeout", "10"]
        if self.processes > 1:
            cmd += ["--processes", str(self.processes)]
        if self.tags:
            cmd += ["--tags", *self.tags]
        return cmd + list(self.classes)

    def run(self, timeout: float | None = None) -> int:
        env = {**os.environ, "LOADTEST_SCENARIO": self.scenario, **self.env}
        if self.tokens is not None:
            env["LOADTEST_TOKENS"] = str(self.tokens)
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        say(f"locust: scenario {self.scenario} against {self.host} -> {self.out}")
        started = time.monotonic()
        with (self.out / "locust.stdout").open("w") as stdout:
            proc = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.STDOUT)
            watcher = ProcessWatcher({**self.watch, "locust": proc.pid})
            try:
                while proc.poll() is None:
                    watcher.sample()
                    if timeout is not None and time.monotonic() - started > timeout:
                        proc.terminate()
                    time.sleep(1.0)
            except KeyboardInterrupt:
                proc.terminate()
                proc.wait(30)
                raise
            finally:
                watcher.write(self.out / "cpu.csv")
        self.wall_seconds = time.monotonic() - started
        self.exit_code = proc.returncode
        return self.exit_code


def locust_errors(out: Path, limit: int = 20) -> list[str]:
    """Error lines Locust logged (why it stopped early), for the console."""
    lines = []
    for name in ("locust.log", "locust.stdout"):
        path = out / name
        if path.exists():
            lines += [line for line in path.read_text(errors="replace").splitlines()
                      if "/ERROR/" in line or "Error" in line or "Traceback" in line]
    return lines[-limit:]
