"""Search behind the local ALB with one replica vs two (and HAProxy with one vs two threads).

    python loadtest/experiments/search_replicas.py [--users 64] [--duration 45] [--alb-workers 1 2] [--profile]

The second replica is started exactly as the stack starts search (same granian
command and environment, another port); the ALB is restarted with both as
targets (round robin over health-checked replicas, like a target group). Load: HeavyUser tasks tagged
`search` (full-text GET and POST, advanced, autocomplete), no think time.
Writes loadtest/results/<timestamp>-search-replicas/ (one directory per
variant, summary.json and comparison.png).
"""

from __future__ import annotations

import sys

from loadtest import harness
from loadtest.experiments.common import arguments, experiment_stack, measure, say, write_experiment


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--alb-workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    out = harness.results_dir("search-replicas", args.results)
    variants = []
    with experiment_stack(args) as experiment:
        stack = experiment.stack
        first = stack.service_port("search")
        second = first + 10
        try:
            for replicas in (1, 2):
                if replicas == 2:
                    say(f"starting a second search replica on port {second}")
                    stack.start_service("search", name="search-2", port=second)
                targets = {"search": [first, second][:replicas]}
                for workers in args.alb_workers:
                    stack.start_alb(workers, targets)
                    variants.append(measure(experiment, out, f"search x{replicas}, alb workers {workers}",
                                            users=args.users, duration=args.duration, warmup=args.warmup,
                                            tags=["search"], processes=args.processes, profile=args.profile))
        finally:
            stack.stop("search-2")
            stack.start_alb(1)
    summary = write_experiment(out, "search: one vs two replicas behind the local ALB", variants,
                               {"users": args.users, "duration_s": args.duration})
    return 0 if all(v["failures"] == 0 for v in summary["variants"]) else 1


if __name__ == "__main__":
    sys.exit(main())
