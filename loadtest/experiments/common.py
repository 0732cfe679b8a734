"""What every experiment shares: its own stack, reconfiguring one process of it, measuring, profiling.

An experiment runs on a stack of its own (port offset 500 and a state
directory under /tmp by default), so it never disturbs a developer's
`make up` or the test stack, and it stops that stack at the end unless asked
to keep it. Processes are restarted through the stack runner's own helpers
(same granian command, same environment), so a variant differs from the
default stack only in what the variant names.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bookrec_local.definitions import ROOT
from bookrec_local.stack import Stack
from loadtest import harness, report

say = harness.say
WRK_SCRIPT = Path(__file__).with_name("wrk_paths.lua")
IDENTITIES = 256  # more than any experiment's users


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-offset", type=int, default=500)
    parser.add_argument("--state-dir", type=Path, help="default: /tmp/bookrec-loadtest-<port offset>")
    parser.add_argument("--seed", default="full", choices=["full", "sample"])
    parser.add_argument("--keep-stack", action="store_true")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--duration", type=float, default=45, help="seconds measured per variant")
    parser.add_argument("--warmup", type=float, default=15, help="seconds of the same load before measuring")
    parser.add_argument("--processes", type=int, default=1, help="Locust worker processes")
    parser.add_argument("--profile", action="store_true", help="py-spy the busiest process of each variant")
    parser.add_argument("--results", type=Path, default=harness.RESULTS)
    return parser


@dataclass
class Experiment:
    """The stack an experiment runs on, and the identities its simulated users sign in as."""

    stack: Stack
    tokens: Path

    @property
    def url(self) -> str:
        return self.stack.alb_url


@contextmanager
def experiment_stack(args: argparse.Namespace) -> Iterator[Experiment]:
    """The experiment's own stack (found running, or started and later stopped unless --keep-stack)."""
    state_dir = args.state_dir or Path(tempfile.gettempdir()) / f"bookrec-loadtest-{args.port_offset}"
    with harness.stack_for(None, state_dir, port_offset=args.port_offset, seed=args.seed,
                           keep=args.keep_stack) as (_, stack):
        # One signed-in identity per simulated user, shared by every variant.
        tokens = harness.write_identities(stack, IDENTITIES, stack.state_dir / "identities.json")
        yield Experiment(stack, tokens)


def redis_delete(stack: Stack, pattern: str) -> int:
    """Delete keys matching `pattern` in the stack's own Redis (between cache variants)."""
    url = stack.env.get("REDIS_URL")
    if not url:
        return 0
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    return len(keys)


def run_wrk(url: str, paths_file: Path, seconds: int, connections: int, threads: int = 1) -> dict:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk not installed (apt-get install wrk)"}
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          str(WRK_SCRIPT), url, "--", str(paths_file)],
                         capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float | None:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        return float(match.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[match.group(2)] if match else None

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50%"), "p90_ms": ms("90%"), "p99_ms": ms("99%"),
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0, "socket_errors": errors.group(1) if errors else None,
            "connections": connections, "threads": threads, "seconds": seconds, "raw": out}


def metrics(url: str) -> dict[str, float]:
    """A service's Prometheus counters and gauges (name{labels} -> value)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                continue
    return out


@dataclass
class Variant:
    name: str
    summary: dict[str, Any]
    out: Path


def measure(stack: Experiment, out: Path, name: str, *, users: int, duration: float, warmup: float,
            tags: list[str] | None = None, classes: str = "HeavyUser", processes: int = 1,
            env: dict[str, str] | None = None, profile: bool = False) -> Variant:
    """Warm up, then measure `users` steady users; the report of the measured part goes to out/<name>/."""
    scenario_env = {"LOADTEST_CLASSES": classes, "LOADTEST_USERS": str(users), **(env or {})}
    if warmup > 0:
        warm = out / name / "warmup"
        warm.mkdir(parents=True)
        harness.LocustRun("steady", stack.url, warm, tags=tags or [], processes=processes, tokens=stack.tokens,
                          env={**scenario_env, "LOADTEST_DURATION": str(warmup)}).run(timeout=warmup + 300)
    run_dir = out / name
    run_dir.mkdir(parents=True, exist_ok=True)
    locust = harness.LocustRun("steady", stack.url, run_dir, tags=tags or [], processes=processes,
                               env={**scenario_env, "LOADTEST_DURATION": str(duration)}, watch=stack.stack.pids(),
                               tokens=stack.tokens)
    locust.run(timeout=duration + 300)
    summary = report.summarise(run_dir, {"scenario": "steady", "variant": name, "users": users, "tags": tags or [],
                                         "classes": classes, "processes": processes, "overrides": env or {},
                                         "locust_exit_code": locust.exit_code, "started_at": locust.started_at,
                                         "host": stack.url})
    report.plot(run_dir)
    print(f"--- {name}")
    print(report.table(summary))
    for failure in summary["failures"][:5]:
        print(f"  {failure['occurrences']:>6} x {failure['method']} {failure['name']}: {failure['error']}")
    if profile and summary["busiest_process"] not in (None, "locust"):
        summary["profile"] = profile_process(stack, run_dir, summary["busiest_process"], users=users,
                                             tags=tags, classes=classes, processes=processes, env=env)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return Variant(name, summary, run_dir)


def py_spy() -> str | None:
    return shutil.which("py-spy") or (str(Path(sys.executable).with_name("py-spy"))
                                      if Path(sys.executable).with_name("py-spy").exists() else None)


def profile_process(stack: Experiment, run_dir: Path, process: str, *, users: int, tags: list[str] | None,
                    classes: str, processes: int, env: dict[str, str] | None, seconds: int = 20) -> dict[str, Any]:
    """Sample `process` with py-spy under the same load; keep a flame graph and the top functions."""
    binary = py_spy()
    pid = stack.stack.pids().get(process)
    if binary is None or pid is None:
        return {"skipped": "py-spy not installed (pip install py-spy)" if binary is None else f"no pid for {process}"}
    prof_dir = run_dir / f"profile-{process}"
    prof_dir.mkdir()
    load = harness.LocustRun("steady", stack.url, prof_dir, tags=tags or [], processes=processes,
                             tokens=stack.tokens, env={"LOADTEST_CLASSES": classes, "LOADTEST_USERS": str(users),
                                  "LOADTEST_DURATION": str(seconds + 15), **(env or {})})
    runner = threading.Thread(target=load.run, kwargs={"timeout": seconds + 300})
    runner.start()
    time.sleep(10)  # discovery and ramp-up
    raw = prof_dir / "py-spy.txt"
    subprocess.run([binary, "record", "--pid", str(pid), "--subprocesses", "--duration", str(seconds),
                    "--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"],
                   capture_output=True, text=True, check=False)
    subprocess.run([binary, "record", "--pid", str(pid), "--subprocesses", "--duration", "5", "--rate", "200",
                    "--output", str(prof_dir / "flamegraph.svg"), "--nonblocking"],
                   capture_output=True, text=True, check=False)
    runner.join()
    top = top_functions(raw) if raw.exists() else {}
    (prof_dir / "top.json").write_text(json.dumps(top, indent=2))
    return {"process": process, "pid": pid, "seconds": seconds, **top}


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def top_functions(raw: Path, n: int = 25) -> dict[str, Any]:
    """From py-spy's collapsed stacks: where samples are spent (self) and what they are under (inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        own[_short(frames[-1])] += samples
        for frame in set(map(_short, frames)):
            inclusive[frame] += samples
        modules[_module(frames[-1])] += samples

    def pct(c: int) -> float:
        return round(100 * c / total, 1) if total else 0.0

    return {"samples": total,
            "self_percent": [[f, pct(c)] for f, c in own.most_common(n)],
            "inclusive_percent": [[f, pct(c)] for f, c in inclusive.most_common(n)],
            "self_by_package_percent": [[m, pct(c)] for m, c in modules.most_common(15)]}


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = path.replace(str(ROOT) + "/", "")
    return f"{match['func']} ({path})"


def _module(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    path = match["file"] if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/lib/python3" in path:
        return "stdlib"
    if str(ROOT) in path:
        return path.replace(str(ROOT) + "/", "").split("/", 1)[0]
    return path.split("/", 1)[0] or "native"


def write_experiment(out: Path, name: str, variants: list[Variant], extra: dict[str, Any] | None = None) -> dict:
    """One summary.json and a comparison plot for all variants of an experiment."""
    rows = []
    for v in variants:
        totals = v.summary.get("totals") or {}
        rows.append({"variant": v.name, "requests_per_s": totals.get("requests_per_s"),
                     "p50_ms": totals.get("p50_ms"), "p95_ms": totals.get("p95_ms"), "p99_ms": totals.get("p99_ms"),
                     "requests": totals.get("requests"), "failures": totals.get("failures"),
                     "busiest_process": v.summary.get("busiest_process"),
                     "cpu_percent_of_one_core": v.summary.get("cpu_percent_of_one_core"),
                     "endpoints": v.summary.get("endpoints"), "run_dir": str(v.out)})
    summary = {"experiment": name, "machine": report.machine(), "variants": rows, **(extra or {})}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    comparison_plot(out, name, rows)

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    print(f"\n=== {name}")
    print(f"{'variant':<34} {'req/s':>8} {'p50':>6} {'p95':>6} {'p99':>6} {'fails':>6}  busiest")
    for r in rows:
        print(f"{r['variant']:<34} {r['requests_per_s'] or 0:>8.1f} {fmt(r['p50_ms']):>6} {fmt(r['p95_ms']):>6} "
              f"{fmt(r['p99_ms']):>6} {r['failures'] if r['failures'] is not None else '-':>6}  "
              f"{r['busiest_process']}")
    say(f"results in {out}")
    return summary


def comparison_plot(out: Path, name: str, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["variant"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    left.bar(labels, [r["requests_per_s"] or 0 for r in rows], color="tab:blue")
    left.set_ylabel("requests/s")
    left.set_title("throughput")
    width = 0.27
    xs = range(len(rows))
    for i, key in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        right.bar([x + (i - 1) * width for x in xs], [r[key] or 0 for r in rows], width, label=key[:3])
    right.set_xticks(list(xs), labels)
    right.set_ylabel("ms")
    right.set_title("latency")
    right.legend()
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(name)
    fig.tight_layout()
    fig.savefig(out / "comparison.png", dpi=110)
    plt.close(fig)
