"""What the local ALB (HAProxy) adds: per-request latency (direct vs through the ALB) and throughput.

Runs against a stack started with `make up` (BOOKREC_ALB_WORKERS sets HAProxy's threads):

    python -m bookrec_local.bench_alb [--requests 3000] [--path /books/OL827357W] [--duration 10]

Latency: sequential keep-alive requests, the same path direct to the owning
service and through the ALB; the difference of the medians and p99s is the
ALB's cost. Throughput: wrk (apt-get install wrk) at 64 connections when
available.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

from bookrec_local import definitions
from bookrec_local.routing import FixedResponse, build_router


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sequential_latencies(base: str, path: str, n: int) -> list[float]:
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.netloc, timeout=10)
    out = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"GET {base}{path} answered {response.status}")
        out.append((time.perf_counter() - started) * 1000)
    conn.close()
    return out


def _found(pattern: str, text: str) -> re.Match[str]:
    found = re.search(pattern, text)
    if found is None:
        raise SystemExit(f"wrk printed no {pattern!r}:\n{text}")
    return found


def wrk(url: str, duration: int, connections: int) -> dict[str, float] | None:
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(_found(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = _found(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests_per_s": rps, "p99_ms": float(p99.group(1)) * scale,
            "non_2xx": int(errors.group(1)) if errors else 0}


def haproxy_version(config: Path) -> str:
    """e.g. "HAProxy 2.6.12, 1 thread": what the stack's ALB runs."""
    version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split()
    threads = re.search(r"^\s*nbthread (\d+)", config.read_text(), re.M) if config.exists() else None
    count = threads.group(1) if threads else "?"
    return f"HAProxy {version[2] if len(version) > 2 else '?'}, {count} thread{'s' if count != '1' else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path,
                        default=Path(os.environ.get("BOOKREC_STATE_DIR", definitions.ROOT / ".run")),
                        help="the stack's state directory (default $BOOKREC_STATE_DIR, else .run/)")
    parser.add_argument("--path", default="/books/OL827357W")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    env = json.loads((args.state_dir / "env.json").read_text())
    alb = env["ALB_URL"]
    offset = urlparse(alb).port - 8080
    rule = build_router(definitions.routes()).route(args.path)
    if isinstance(rule, FixedResponse) or rule.service is None:
        raise SystemExit(f"{args.path} is not forwarded by the ALB")
    direct = f"http://127.0.0.1:{definitions.services()[rule.service]['port'] + offset}"

    sequential_latencies(direct, args.path, 200)  # warm both paths
    sequential_latencies(alb, args.path, 200)
    d = sequential_latencies(direct, args.path, args.requests)
    a = sequential_latencies(alb, args.path, args.requests)
    report = {
        "alb": haproxy_version(args.state_dir / "haproxy.cfg"),
        "path": args.path, "service": rule.service, "requests": args.requests,
        "direct_ms": {"p50": statistics.median(d), "p99": percentile(d, 0.99)},
        "via_alb_ms": {"p50": statistics.median(a), "p99": percentile(a, 0.99)},
    }
    report["alb_added_ms"] = {k: report["via_alb_ms"][k] - report["direct_ms"][k] for k in ("p50", "p99")}
    report["throughput_direct"] = wrk(direct + args.path, args.duration, args.connections)
    report["throughput_via_alb"] = wrk(alb + args.path, args.duration, args.connections)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
