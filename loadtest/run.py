"""Run a load-test scenario headless and write its report.

    python loadtest/run.py --scenario smoke                  # against the local stack (started if not running)
    python loadtest/run.py --scenario normal --host https://my-alb.example.com
    python loadtest/run.py --scenario steady --users 64 --duration 60 --classes HeavyUser --tags mix

Writes loadtest/results/<timestamp>-<scenario>/: Locust's CSV files and HTML
report, summary.json (totals, per endpoint requests/s and p50/p95/p99, the
failures, the machine, CPU of every stack process), and PNG plots (requests/s
and latency percentiles over time per endpoint, CPU by process).

Exit status: 0 when every request succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtest import harness, report, scenarios


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="smoke", choices=scenarios.NAMES)
    parser.add_argument("--host", help="base URL to load (default: the local stack's ALB)")
    parser.add_argument("--state-dir", type=Path, default=harness.DEFAULT_STATE_DIR,
                        help="local stack state directory (default .run/, as `make up`)")
    parser.add_argument("--port-offset", type=int, default=0, help="of a local stack started by this run")
    parser.add_argument("--seed", default="full", choices=["full", "sample"], help="of a stack started by this run")
    parser.add_argument("--alb-workers", type=int, default=1, help="of a stack started by this run")
    parser.add_argument("--keep-stack", action="store_true", help="leave a stack started by this run running")
    parser.add_argument("--duration", type=float, help="seconds (smoke, normal, steady; the hold of stress)")
    parser.add_argument("--users", type=int, help="users (normal, steady) or peak users (stress, spike, step)")
    parser.add_argument("--spawn-rate", type=float)
    parser.add_argument("--classes", help="comma-separated user classes for the steady scenario")
    parser.add_argument("--tags", nargs="*", default=[], help="only HeavyUser tasks with these tags (e.g. mix)")
    parser.add_argument("--think-scale", type=float, help="multiply think times (0: none)")
    parser.add_argument("--processes", type=int, default=1, help="Locust worker processes")
    parser.add_argument("--label", help="suffix of the results directory (default: the scenario)")
    parser.add_argument("--tokens", type=Path,
                        help='JSON list of {"access_token", "sub"} the raters sign in as (needed with --host; '
                             "for the local stack they are created in its Cognito)")
    parser.add_argument("--results", type=Path, default=harness.RESULTS)
    parser.add_argument("--no-plots", action="store_true")
    return parser.parse_args(argv)


def scenario_env(args: argparse.Namespace) -> dict[str, str]:
    env = {}
    for key, value in (("LOADTEST_DURATION", args.duration), ("LOADTEST_USERS", args.users),
                       ("LOADTEST_SPAWN_RATE", args.spawn_rate), ("LOADTEST_CLASSES", args.classes),
                       ("LOADTEST_THINK_SCALE", args.think_scale)):
        if value is not None:
            env[key] = str(value)
    return env


def run(args: argparse.Namespace) -> dict:
    env = scenario_env(args)
    scenario = scenarios.build(args.scenario, env)  # refuse bad options before starting anything
    out = harness.results_dir(args.label or args.scenario, args.results)
    with harness.stack_for(args.host, args.state_dir, port_offset=args.port_offset, seed=args.seed,
                           alb_workers=args.alb_workers, keep=args.keep_stack) as (host, stack):
        tokens = args.tokens
        if tokens is None and stack is not None:  # one identity per simulated user, so each checks its own
            tokens = harness.write_identities(stack, scenario.peak_users, out / "identities.json")
        locust = harness.LocustRun(args.scenario, host, out, tags=args.tags, processes=args.processes, env=env,
                                   watch=stack.pids() if stack else {}, tokens=tokens)
        harness.say(f"{scenario.description}: about {scenario.duration:.0f}s")
        locust.run(timeout=scenario.duration + 300)
    meta = {"scenario": args.scenario, "description": scenario.description, "host": host,
            "started_at": locust.started_at, "wall_seconds": round(locust.wall_seconds, 1),
            "locust_exit_code": locust.exit_code, "tags": args.tags, "processes": args.processes,
            "overrides": env, "local_stack": str(stack.state_dir) if stack else None}
    summary = report.summarise(out, meta)
    if not args.no_plots:
        report.plot(out)
    print(report.table(summary))
    if locust.exit_code not in (0, 1):  # 1 = some requests failed; anything else = Locust itself stopped
        for line in harness.locust_errors(out):
            print(f"  {line}")
    if summary["failures"]:
        print("failures:")
        for failure in summary["failures"][:10]:
            print(f"  {failure['occurrences']:>6} x {failure['method']} {failure['name']}: {failure['error']}")
    for exception in summary["exceptions"]:
        print(f"  locustfile error x{exception['count']}: {exception['message']}\n    {exception['where']}")
    harness.say(f"{'PASSED' if summary['passed'] else 'FAILED'}; results in {out}")
    return summary


def main(argv: list[str] | None = None) -> int:
    summary = run(parse(argv))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
