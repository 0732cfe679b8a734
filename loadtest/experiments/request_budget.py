"""CPU per request, by part, of the services answering the in-memory routes.

    python -m loadtest.experiments.request_budget [--seconds 20] [--connections 64] [--alb]
        [--baseline REV [--rounds 2]]

On a stack of its own (started here, or found running at --state-dir/--port-offset),
both services are restarted (so they run the code as it is now), search with its
rate limit on (a limit no run reaches: every request pays for the limiter as it
does when deployed, and none is refused). Then, per service:

  search          GET /search?q=... and /search/autocomplete?q=... (half each)
  recommendation  GET /recommendations/{user} of real raters, cache warmed first

wrk drives the service's own port (no load balancer in the way) while py-spy
samples the service's process tree. The CPU the tree used during the run
(user + system, every thread), divided by the requests wrk completed, is the
budget of one request; it is split by part:

  server      granian: its native threads (HTTP parsing, sockets), and Python
              samples in granian or the event loop outside any request
  framework   litestar (routing, parameter parsing, DI, serialisation)
  middlewares bookrec_common context/errors/auth (request id, headers, problems)
  logging     the access log line (logging, the JSON formatter)
  metrics     Prometheus (the middleware and prometheus_client)
  rate limit  bookrec_common.ratelimit and the Redis client under it
  handler     the service's own package (routes, engine, store), and the shared
              domain code it calls (bookrec_common catalog, dynamo, params)
  other       Python samples no rule claims

A Python sample belongs to the innermost frame of its stack that a rule names
(library code with no part of its own, such as json, asyncio or msgspec, counts
for whoever called it). The Python thread's CPU is split by sample shares; the
native threads' CPU is the server's. With --alb, wrk then replays both
services' paths through the stack's load balancer for the system's req/s and p99.

With --baseline REV, each service also runs as an extra replica whose
bookrec_common modules of the budget (service, context, logs, metrics,
ratelimit, settings) are those of git revision REV (first on its PYTHONPATH), and
the two are measured one after the other (--rounds times, alternating): a
before/after comparison under the same conditions. --try-env NAME=VALUE adds
a replica of the current code with those variables (granian's GRANIAN_* options
included), measured the same way. --service-code REV runs the services' own
packages as committed at REV in every variant (when the working tree's are
mid-change). Absolute figures move with
whatever else runs on the machine; compare only runs made side by side. Writes
loadtest/results/<timestamp>-request-budget/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

from bookrec_local.definitions import ROOT
from bookrec_local.stack import Stack
from loadtest import harness, report
from loadtest.catalogue import discover, typing_prefixes, urllib_fetch
from loadtest.experiments.common import py_spy, run_wrk, say

PARTS = ("server", "framework", "middlewares", "logging", "metrics", "rate limit", "handler", "other")
# A limit no run reaches: the limiter does all its work, and never refuses.
UNREACHED_LIMIT = str(10**9)
PACKAGES = {"search": "bookrec_search", "recommendation": "bookrec_recommendation"}

# (part, path prefix) in the order tried on each frame; a frame no rule names is passed through to its caller.
# py-spy names a file by its path under the import root it was found in (site-packages, the stdlib, a source tree).
RULES: tuple[tuple[str, str], ...] = (
    ("rate limit", "bookrec_common/ratelimit.py"),
    ("logging", "bookrec_common/logs.py"),
    ("logging", "logging/"),
    ("logging", "pythonjsonlogger/"),
    ("metrics", "bookrec_common/metrics.py"),
    ("metrics", "litestar/plugins/prometheus/"),
    ("metrics", "prometheus_client/"),
    # Shared domain code a handler calls (text normalisation, item mapping, parameters, clients) is the handler's.
    ("handler", "bookrec_catalog/catalog.py"),
    ("handler", "bookrec_catalog/dynamo.py"),
    ("handler", "bookrec_common/params.py"),
    ("handler", "bookrec_common/clients.py"),
    ("middlewares", "bookrec_common/"),
    ("framework", "litestar/"),
    ("server", "granian/"),
)
_FRAME_FILE = re.compile(r"\((?P<file>[^()]*?)(?::-?\d+)?\)$")


def _file(frame: str) -> str:
    match = _FRAME_FILE.search(frame)
    return match["file"] if match else ""


def _under(path: str, prefix: str) -> bool:
    return path.startswith(prefix) or f"/{prefix}" in path


def part_of(frames: list[str], service_package: str, redis_part: str = "rate limit") -> str:
    """The part a sample (frames from the root to the leaf, each 'function (file:line)') is spent in.

    A sample with no Python frame is the Python thread running native code outside any Python call: the
    server's (granian's protocol and the event loop). Redis client work the event loop does outside any
    caller (reading replies) goes to `redis_part`: the rate limit in search, the cache in recommendation."""
    files = [_file(f) for f in frames if not f.startswith(("process ", "thread "))]
    if not files:
        return "server"
    for path in reversed(files):
        if _under(path, f"{service_package}/"):
            return "handler"
        for part, prefix in RULES:
            if _under(path, prefix):
                return part
    if any(_under(path, "redis/") for path in files):
        return redis_part
    if any(_under(path, "asyncio/") or _under(path, "uvloop/") for path in files):
        return "server"  # the event loop itself, between requests
    return "other"


def sample_parts(raw: Path, service_package: str, redis_part: str = "rate limit") -> Counter[str]:
    """py-spy's collapsed stacks ('frame;frame;... count' lines) counted by part."""
    parts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            parts[part_of([f for f in stack.split(";") if f], service_package, redis_part)] += int(count)
    return parts


def completed(wrk: dict) -> int:
    """Requests wrk completed ('N requests in Xs' in its report)."""
    match = re.search(r"(\d+) requests in", wrk.get("raw", ""))
    return int(match.group(1)) if match else 0


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def thread_cpu(pid: int) -> dict[tuple[int, int], tuple[str, float]]:
    """(process, thread id) -> (thread name, CPU seconds) for every thread of the process tree."""
    out = {}
    for proc in _tree(pid):
        try:
            threads = proc.threads()
        except psutil.Error:
            continue
        for thread in threads:
            try:
                name = Path(f"/proc/{proc.pid}/task/{thread.id}/comm").read_text().strip()
            except OSError:
                name = "?"
            out[(proc.pid, thread.id)] = (name, thread.user_time + thread.system_time)
    return out


def python_threads(pid: int) -> set[tuple[int, int]]:
    """The threads running Python code: those that carry the process's own name (granian names its native
    threads), and the main thread of each process."""
    out = set()
    for proc in _tree(pid):
        try:
            name = Path(f"/proc/{proc.pid}/comm").read_text().strip()
            threads = proc.threads()
        except (OSError, psutil.Error):
            continue
        for thread in threads:
            try:
                thread_name = Path(f"/proc/{proc.pid}/task/{thread.id}/comm").read_text().strip()
            except OSError:
                continue
            if thread.id == proc.pid or thread_name == name:
                out.add((proc.pid, thread.id))
    return out


@dataclass
class Budget:
    service: str
    variant: str
    requests: int
    requests_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    non_2xx: int
    cpu_seconds: float
    native_cpu_seconds: float
    samples: int
    parts_us: dict[str, float]  # CPU microseconds per request by part

    @property
    def total_us(self) -> float:
        return sum(self.parts_us.values())


def measure_service(service: str, variant: str, pid: int, url: str, paths: Path, out: Path, *, seconds: int,
                    connections: int, rate: int, run: int = 1) -> Budget:
    label = f"{service}-{variant}-{run}".replace(" ", "_")
    say(f"{service} ({variant}): warming up ({min(10, seconds)} s), then {seconds} s measured")
    run_wrk(url, paths, min(10, seconds), connections)
    raw = out / f"{label}-py-spy.txt"
    binary = py_spy()
    before = thread_cpu(pid)
    result: dict = {}
    load = threading.Thread(target=lambda: result.update(run_wrk(url, paths, seconds, connections)))
    load.start()
    if binary:
        # --nonblocking: the service is never paused, so sampling does not slow what is measured.
        subprocess.run([binary, "record", "--pid", str(pid), "--subprocesses", "--duration", str(seconds - 1),
                        "--rate", str(rate), "--format", "raw", "--output", str(raw), "--nonblocking"],
                       capture_output=True, text=True, check=False)
    load.join()
    after = thread_cpu(pid)
    python = python_threads(pid)
    used = {key: cpu - before.get(key, ("", 0.0))[1] for key, (_, cpu) in after.items()}
    cpu_total = sum(used.values())
    native = sum(cpu for key, cpu in used.items() if key not in python)
    (out / f"{label}-threads.json").write_text(json.dumps(
        [{"pid": p, "tid": t, "name": after[(p, t)][0], "python": (p, t) in python, "cpu_s": round(cpu, 3)}
         for (p, t), cpu in sorted(used.items(), key=lambda kv: -kv[1])], indent=2))
    requests = completed(result)
    if requests == 0:
        raise RuntimeError(f"wrk completed no request against {service}: {result.get('raw') or result}")
    redis_part = "rate limit" if service == "search" else "handler"
    parts = sample_parts(raw, PACKAGES[service], redis_part) if raw.exists() else Counter()
    samples = sum(parts.values())
    per_request = 1e6 / requests
    parts_us = {part: 0.0 for part in PARTS}
    python_cpu = cpu_total - native
    for part, count in parts.items():
        parts_us[part] += python_cpu * count / samples * per_request if samples else 0.0
    if not samples:
        parts_us["other"] += python_cpu * per_request
    parts_us["server"] += native * per_request
    return Budget(service, variant, requests, result["requests_per_s"], result.get("p50_ms"), result.get("p99_ms"),
                  result.get("non_2xx", 0), round(cpu_total, 3), round(native, 3), samples,
                  {k: round(v, 1) for k, v in parts_us.items()})


def combined(budgets: list[Budget]) -> list[Budget]:
    """One budget per (service, variant): the rounds' CPU over their requests, their mean req/s and p99."""
    groups: dict[tuple[str, str], list[Budget]] = {}
    for b in budgets:
        groups.setdefault((b.service, b.variant), []).append(b)
    out = []
    for (service, variant), runs in groups.items():
        requests = sum(b.requests for b in runs)
        p50s = [b.p50_ms for b in runs if b.p50_ms is not None]
        p99s = [b.p99_ms for b in runs if b.p99_ms is not None]
        out.append(Budget(service, variant, requests, sum(b.requests_per_s for b in runs) / len(runs),
                          sum(p50s) / len(p50s) if p50s else None, sum(p99s) / len(p99s) if p99s else None,
                          sum(b.non_2xx for b in runs),
                          round(sum(b.cpu_seconds for b in runs), 3), round(sum(b.native_cpu_seconds for b in runs), 3),
                          sum(b.samples for b in runs),
                          {part: round(sum(b.parts_us[part] * b.requests for b in runs) / requests, 1)
                           for part in PARTS}))
    return out


def table(budgets: list[Budget]) -> str:
    head = f"{'CPU us per request':<20}" + "".join(f"{b.service[:15]:>16}" for b in budgets)
    head += "\n" + f"{'':<20}" + "".join(f"{b.variant[:15]:>16}" for b in budgets)
    lines = [head, "-" * len(head.splitlines()[0])]
    for part in PARTS:
        cells = "".join(f"{b.parts_us[part]:>9.0f} {100 * b.parts_us[part] / b.total_us:>4.0f} %" for b in budgets)
        lines.append(f"{part:<20}{cells}")
    lines.append("-" * len(head.splitlines()[0]))
    lines.append(f"{'total':<20}" + "".join(f"{b.total_us:>16.0f}" for b in budgets))
    lines.append(f"{'req/s (wrk, direct)':<20}" + "".join(f"{b.requests_per_s:>16.0f}" for b in budgets))
    lines.append(f"{'p50 ms':<20}" + "".join(f"{b.p50_ms or 0:>16.1f}" for b in budgets))
    lines.append(f"{'p99 ms':<20}" + "".join(f"{b.p99_ms or 0:>16.1f}" for b in budgets))
    lines.append(f"{'non-2xx':<20}" + "".join(f"{b.non_2xx:>16}" for b in budgets))
    lines.append(f"{'py-spy samples':<20}" + "".join(f"{b.samples:>16}" for b in budgets))
    return "\n".join(lines)


def write_paths(stack: Stack, out: Path, seed: int = 11, count: int = 2000) -> dict[str, Path]:
    """GET paths per service, drawn from the catalogue the stack serves."""
    cat = discover(urllib_fetch(stack.alb_url), seed=seed)
    rng = random.Random(seed)
    titles = list(cat.books.values())
    search = []
    for _ in range(count):
        if rng.random() < 0.5:
            search.append(f"/search?q={urllib.parse.quote(rng.choice(cat.queries))}&limit=20")
        else:
            prefix = rng.choice(typing_prefixes(rng.choice(titles), max_chars=8))
            search.append(f"/search/autocomplete?q={urllib.parse.quote(prefix)}&limit=10")
    users = cat.users[:100]
    if not users:
        raise RuntimeError("the catalogue has no raters: seed the stack with ratings (--seed full or sample)")
    reco = [f"/recommendations/{rng.choice(users)}?limit=10" for _ in range(count)]
    files = {}
    for name, paths in (("search", search), ("recommendation", reco), ("alb", search + reco)):
        if name == "alb":
            rng.shuffle(paths)
        files[name] = out / f"paths-{name}.txt"
        files[name].write_text("\n".join(paths) + "\n")
    return files


BUDGET_MODULES = ("service.py", "context.py", "logs.py", "metrics.py", "ratelimit.py", "settings.py")


def baseline_code(revision: str, modules: list[str], scratch: Path) -> Path:
    """bookrec_common as it is, but for `modules` as of `revision` (absent there: removed), under `scratch`:
    a directory to put first on PYTHONPATH."""
    package = ROOT / "services" / "common" / "bookrec_common"
    target = scratch / "baseline" / "bookrec_common"
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__"))
    for module in modules:
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:services/common/bookrec_common/{module}"],
                               capture_output=True, check=False)
        if shown.returncode == 0:
            (target / module).write_bytes(shown.stdout)
        else:
            (target / module).unlink(missing_ok=True)
    return target.parent


def extract(revision: str, path: str, into: Path) -> None:
    """`path` (a package directory) as of `revision`, as `into`/<its last part>."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, path], capture_output=True,
                             check=True).stdout
    unpacked = into / "unpacked"
    unpacked.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(unpacked)], input=archive, check=True)
    shutil.move(str(unpacked / path), str(into / Path(path).name))


def replica_name(service: str, variant: str, n: int) -> str:
    return service if variant == "current" else f"{service}-budget-{n}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-offset", type=int, default=700)
    parser.add_argument("--state-dir", type=Path, help="default: /tmp/bookrec-budget-<port offset>")
    parser.add_argument("--seed", default="full", choices=["full", "sample"])
    parser.add_argument("--keep-stack", action="store_true", help="leave a stack started here running")
    parser.add_argument("--seconds", type=int, default=20, help="measured per service")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--services", nargs="+", default=["search", "recommendation"],
                        choices=["search", "recommendation"])
    parser.add_argument("--no-restart", action="store_true",
                        help="measure the running services as they are (search's rate limit as the stack set it)")
    parser.add_argument("--alb", action="store_true", help="also replay both services' paths through the ALB")
    parser.add_argument("--baseline", metavar="REV",
                        help="also measure each service with bookrec_common as of git revision REV (an extra "
                             "replica beside the current one), alternating with it")
    parser.add_argument("--baseline-modules", nargs="+", default=list(BUDGET_MODULES), metavar="FILE",
                        help="the bookrec_common modules taken from REV (the rest is the current code)")
    parser.add_argument("--try-env", nargs="+", metavar="NAME=VALUE",
                        help="also measure an extra replica of the current code with these environment variables "
                             "(e.g. GRANIAN_TASK_IMPL=rust: granian reads its options from GRANIAN_*)")
    parser.add_argument("--service-code", metavar="REV",
                        help="run the services' own packages as of git revision REV in every variant (when the "
                             "working tree's are mid-change)")
    parser.add_argument("--rounds", type=int, default=1, help="measurements of each variant (alternating)")
    parser.add_argument("--label", default="", help="a name for this run in the summary")
    parser.add_argument("--results", type=Path, default=harness.RESULTS)
    args = parser.parse_args(argv)
    if py_spy() is None:
        say("py-spy not found (it is in requirements-dev.txt: make deps): only totals are reported")
    out = harness.results_dir("request-budget", args.results)
    state_dir = args.state_dir or Path(tempfile.gettempdir()) / f"bookrec-budget-{args.port_offset}"
    stack = Stack(state_dir, args.port_offset, seed=args.seed, rate_limit="0")
    started_here = not stack.running()
    if started_here:
        say(f"starting a local stack (seed {args.seed}, state in {stack.state_dir})")
        stack.up()
    else:
        say(f"using the running stack at {stack.alb_url} ({stack.state_dir})")
    scratch = tempfile.TemporaryDirectory(prefix="bookrec-budget-")  # out of the source tree's reach
    variants: dict[str, dict[str, str]] = {"current": {}}
    if args.baseline:
        code = baseline_code(args.baseline, args.baseline_modules, Path(scratch.name))
        variants = {f"base {args.baseline}": {"PYTHONPATH": str(code)}, **variants}
    service_code = None
    if args.service_code:
        service_code = Path(scratch.name) / "services"
        for service in args.services:
            extract(args.service_code, f"services/{service}/{PACKAGES[service]}", service_code)
    if args.try_env:
        variants[" ".join(args.try_env)] = dict(item.split("=", 1) for item in args.try_env)
    replicas: list[str] = []
    budgets: list[Budget] = []
    alb = None
    try:
        ports: dict[tuple[str, str], int] = {}
        for service in args.services:
            limit = {"RATE_LIMIT": UNREACHED_LIMIT} if service == "search" else {}
            for n, (variant, env) in enumerate(variants.items()):
                name = replica_name(service, variant, n)
                port = stack.service_port(service) + (0 if variant == "current" else 50 + n)
                if variant == "current" and args.no_restart:
                    ports[service, variant] = port
                    continue
                say(f"starting {name} on port {port}" + (f" with RATE_LIMIT={UNREACHED_LIMIT}" if limit else "")
                    + (f", bookrec_common from {args.baseline}" if "PYTHONPATH" in env else "")
                    + (f", {variant}" if env and "PYTHONPATH" not in env else ""))
                if service_code is not None:  # the service's own package as committed, under every variant
                    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [env.get("PYTHONPATH"),
                                                                              str(service_code)]))}
                ports[service, variant] = stack.start_service(service, name=name, port=port, env={**limit, **env})
                if name != service:
                    replicas.append(name)
        # A restarted replica is ready a moment before the ALB's next health check puts it back in rotation.
        stack.await_alb_targets()
        paths = write_paths(stack, out)
        pids = stack.pids()
        for service in args.services:
            for run in range(1, args.rounds + 1):
                for n, variant in enumerate(variants):
                    name = replica_name(service, variant, n)
                    budgets.append(measure_service(service, variant, pids[name],
                                                   f"http://127.0.0.1:{ports[service, variant]}", paths[service],
                                                   out, seconds=args.seconds, connections=args.connections,
                                                   rate=args.rate, run=run))
        if args.alb:
            say(f"wrk through the ALB ({args.seconds} s, search and recommendation paths mixed)")
            alb = run_wrk(stack.alb_url, paths["alb"], args.seconds, args.connections)
    finally:
        if replicas:
            stack.stop(*replicas)
        if started_here and not args.keep_stack:
            say("stopping the stack started for this run")
            stack.down()
        scratch.cleanup()
    print(f"\n=== per-request CPU budget {args.label}".rstrip())
    print(table(combined(budgets)))
    if args.rounds > 1:
        print(f"(each column: {args.rounds} runs of {args.seconds} s, CPU summed over their requests, req/s and "
              "percentiles their means)")
    if alb:
        print(f"through the ALB: {alb['requests_per_s']:.0f} req/s, p50 {alb['p50_ms']} ms, p99 {alb['p99_ms']} ms, "
              f"non-2xx {alb['non_2xx']}")
    summary = {"experiment": "per-request CPU budget", "label": args.label, "machine": report.machine(),
               "seconds": args.seconds, "connections": args.connections,
               "budgets": [{**b.__dict__, "total_us": round(b.total_us, 1)} for b in combined(budgets)],
               "runs": [{**b.__dict__, "total_us": round(b.total_us, 1)} for b in budgets],
               "alb": {k: v for k, v in (alb or {}).items() if k != "raw"} or None}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    say(f"results in {out}")
    return 0 if all(b.non_2xx == 0 for b in budgets) and (alb is None or alb["non_2xx"] == 0) else 1


if __name__ == "__main__":
    sys.exit(main())
