"""The framework's ceiling on this machine, alone and behind the local ALB.

    python loadtest/experiments/framework_ceiling.py [--seconds 30] [--connections 64]

Starts loadtest/experiments/ceiling/app.py (one in-memory Litestar handler,
no middleware, logging or I/O) under granian with the services' own command
line, and replays GET /books/{id} with wrk: first straight at granian, then
through the local ALB (HAProxy with the configuration generated from routes.json,
tooling/bookrec_local/haproxy.py) with that app as the bookdetail target.
The two figures bound what any route can reach here, and their difference is
what the ALB process costs. Writes loadtest/results/<timestamp>-framework-ceiling/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bookrec_local import definitions
from bookrec_local.haproxy import default_targets, haproxy_binary, render_config
from bookrec_local.procs import free_port, http_ok, start, stop, wait_until
from bookrec_local.stack import granian_command
from loadtest import harness, report
from loadtest.experiments.common import run_wrk, say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--alb-workers", type=int, default=1, help="HAProxy threads")
    parser.add_argument("--results", type=Path, default=harness.RESULTS)
    args = parser.parse_args(argv)
    out = harness.results_dir("framework-ceiling", args.results)
    paths = out / "paths.txt"
    paths.write_text("".join(f"/books/OL{n}W\n" for n in range(1, 1001)))
    app_port, alb_port = free_port(), free_port()
    # The ceiling app has no /health: its one route serves as bookdetail's health check.
    health = {**{name: spec["health_path"] for name, spec in definitions.services().items()},
              "bookdetail": "/books/OL1W"}
    config = out / "haproxy.cfg"
    targets = {**default_targets(), "bookdetail": [f"127.0.0.1:{app_port}"]}
    config.write_text(render_config(definitions.routes(), targets, port=alb_port, threads=args.alb_workers,
                                    health_paths=health))
    app = start(granian_command("loadtest.experiments.ceiling", app_port), out / "granian.log")
    alb = start([haproxy_binary(), "-f", str(config), "-db"], out / "alb.log")
    results = {}
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{app_port}/books/OL1W"), 60, "ceiling app", app)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{alb_port}/books/OL1W"), 60, "local ALB", alb)
        for name, port in (("granian", app_port),
                           (f"local ALB (HAProxy, {args.alb_workers} thread) + granian", alb_port)):
            say(f"wrk {args.connections} connections for {args.seconds}s: {name}")
            results[name] = run_wrk(f"http://127.0.0.1:{port}", paths, args.seconds, args.connections)
            say(json.dumps({k: v for k, v in results[name].items() if k != "raw"}))
    finally:
        stop(alb)
        stop(app)
    summary = {"experiment": "framework ceiling: in-memory Litestar handler under granian", "machine": report.machine(),
               "cpus": os.cpu_count(), "results": results}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    say(f"results in {out}")
    return 0 if all(r.get("non_2xx", 0) == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
