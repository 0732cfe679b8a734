"""The load targets: in-memory routes, DynamoDB-bound routes, and the seed-style mix, through the local ALB.

    python loadtest/experiments/targets.py [--groups memory dynamo mix] [--alb-workers 1 2] [--profile]

Groups (HeavyUser task tags, no think time, every response validated):
  memory  search GET/POST, advanced, autocomplete, recommendations of real users
          (cached once warm): routes that never touch DynamoDB once warm
  dynamo  details, batch, book ratings, user ratings
  mix     search 3, details 2, batch 2, rate 1, book ratings 1, user ratings 1, advanced 1, autocomplete 1

Each group runs once per ALB worker count given (HAProxy threads). For the memory group, wrk
(C, a few % of a core) also replays the GET routes the catalogue gives, so the
stack's ceiling is visible without Locust's own CPU cost. For the dynamo group
the emulator's ceiling for the same DynamoDB calls is measured directly
(loadtest/experiments/emulator_ceiling.py). With --profile, the busiest stack
process of each run is sampled with py-spy under the same load.
Writes loadtest/results/<timestamp>-targets/.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import urllib.parse
from pathlib import Path

from bookrec_local.stack import Stack
from loadtest import harness
from loadtest.catalogue import discover, typing_prefixes, urllib_fetch
from loadtest.experiments.common import arguments, experiment_stack, measure, run_wrk, say, write_experiment


def wrk_paths(url: str, count: int = 2000, seed: int = 11) -> list[str]:
    """GET paths of the in-memory routes, drawn from the catalogue like the Locust users draw them."""
    cat = discover(urllib_fetch(url), seed=seed)
    rng = random.Random(seed)
    titles = list(cat.books.values())
    paths = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.5:
            paths.append(f"/search?q={urllib.parse.quote(rng.choice(cat.queries))}&limit=20")
        elif kind < 0.8 or not cat.users:
            prefixes = typing_prefixes(rng.choice(titles), max_chars=8)
            paths.append(f"/search/autocomplete?q={urllib.parse.quote(rng.choice(prefixes))}&limit=10")
        else:
            paths.append(f"/recommendations/{rng.choice(cat.users[:100])}?limit=10")
    return paths


def emulator_ceiling(stack: Stack, out: Path, seconds: int) -> dict:
    """The moto server's own rate for the dynamo group's DynamoDB calls (separate process: it imports boto)."""
    result = out / "emulator_ceiling.json"
    env = stack.env
    subprocess.run([sys.executable, "-m", "loadtest.experiments.emulator_ceiling",
                    "--endpoint", env["AWS_ENDPOINT_URL"],
                    "--books-table", env["BOOKS_TABLE"], "--ratings-table", env["RATINGS_TABLE"],
                    "--seconds", str(seconds), "--output", str(result)],
                   check=True)
    return json.loads(result.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--groups", nargs="+", default=["memory", "dynamo", "mix"],
                        choices=["memory", "dynamo", "mix"])
    parser.add_argument("--alb-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--wrk-connections", type=int, default=64)
    args = parser.parse_args(argv)
    out = harness.results_dir("targets", args.results)
    variants, extra = [], {"users": args.users, "duration_s": args.duration, "wrk": {}}
    with experiment_stack(args) as experiment:
        stack = experiment.stack
        try:
            for workers in args.alb_workers:
                stack.start_alb(workers)
                for group in args.groups:
                    name = f"{group}, alb workers {workers}"
                    variants.append(measure(experiment, out, name, users=args.users, duration=args.duration,
                                            warmup=args.warmup, tags=[group], processes=args.processes,
                                            profile=args.profile))
                    if group == "memory":
                        paths_file = out / "wrk_paths.txt"
                        if not paths_file.exists():
                            paths_file.write_text("\n".join(wrk_paths(stack.alb_url)) + "\n")
                        result = run_wrk(stack.alb_url, paths_file, int(args.duration), args.wrk_connections)
                        extra["wrk"][name] = result
                        say(f"wrk {name}: {json.dumps({k: v for k, v in result.items() if k != 'raw'})}")
            if "dynamo" in args.groups:
                extra["emulator_ceiling"] = emulator_ceiling(stack, out, int(args.duration))
        finally:
            stack.start_alb(1)
    summary = write_experiment(out, "targets through the local ALB", variants, extra)
    return 0 if all(v["failures"] == 0 for v in summary["variants"]) else 1


if __name__ == "__main__":
    sys.exit(main())
