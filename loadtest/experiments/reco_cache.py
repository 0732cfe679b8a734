"""The recommender's Redis cache: off, a short TTL, a long TTL, under the same load.

    python loadtest/experiments/reco_cache.py [--users 32] [--duration 45] [--short-ttl 5] [--long-ttl 600]

For each variant the recommendation service is restarted with REDIS_URL=''
(cache off) or CACHE_TTL_SECONDS, and the reco:* keys are deleted from the
stack's own Redis so no variant reads another's entries. Load: HeavyUser
tasks tagged `reco` (recommendations of real catalogue users) and `write`
(ratings, each invalidating its user's entry). The service's cache counters
from /metrics are recorded per variant. Writes
loadtest/results/<timestamp>-reco-cache/.
"""

from __future__ import annotations

import sys

from loadtest import harness
from loadtest.experiments.common import (
    arguments,
    experiment_stack,
    measure,
    metrics,
    redis_delete,
    say,
    write_experiment,
)


def cache_counters(url: str) -> dict[str, float]:
    return {k: v for k, v in metrics(url).items() if "cache" in k and not k.startswith("python_")}


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.set_defaults(users=32)
    parser.add_argument("--short-ttl", type=int, default=5)
    parser.add_argument("--long-ttl", type=int, default=600)
    parser.add_argument("--reco-users", type=int, default=100, help="real users whose recommendations are read")
    args = parser.parse_args(argv)
    out = harness.results_dir("reco-cache", args.results)
    variants, counters = [], {}
    with experiment_stack(args) as experiment:
        stack = experiment.stack
        service = stack.service_url("recommendation")
        settings = {
            "cache off": {"REDIS_URL": ""},
            f"ttl {args.short_ttl}s": {"CACHE_TTL_SECONDS": str(args.short_ttl)},
            f"ttl {args.long_ttl}s": {"CACHE_TTL_SECONDS": str(args.long_ttl)},
        }
        try:
            for name, env in settings.items():
                deleted = redis_delete(stack, "reco:*")
                say(f"{name}: restarting recommendation with {env} ({deleted} cached entries deleted)")
                stack.start_service("recommendation", env=env)
                before = cache_counters(service + "/metrics")
                variant = measure(experiment, out, name, users=args.users, duration=args.duration, warmup=args.warmup,
                                  tags=["reco", "write"], processes=args.processes, profile=args.profile,
                                  env={"LOADTEST_RECO_USERS": str(args.reco_users)})
                after = cache_counters(service + "/metrics")
                counters[name] = {k: after[k] - before.get(k, 0.0) for k in after}
                variants.append(variant)
        finally:
            redis_delete(stack, "reco:*")
            stack.start_service("recommendation")
    summary = write_experiment(out, "recommendations: cache off vs short vs long TTL", variants,
                               {"users": args.users, "duration_s": args.duration, "reco_users": args.reco_users,
                                "cache_counters_during_warmup_and_run": counters})
    return 0 if all(v["failures"] == 0 for v in summary["variants"]) else 1


if __name__ == "__main__":
    sys.exit(main())
