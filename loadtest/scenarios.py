"""Scenario presets as schedules: how many users of which classes, at which spawn rate, when.

Pure data and arithmetic (no locust import) so schedules are unit-tested;
loadtest/shapes.py turns the selected one into a Locust LoadTestShape.

Presets (LOADTEST_SCENARIO):
  smoke   1 user running every journey in turn, 60 s
  normal  50 users of the four everyday journeys, 5 min
  stress  heavy users (no think time) ramped from 0 to 200 at 1/s, then held 60 s
  spike   20 journey users, a jump to 500 at 100 users/s held 90 s, back to 20 for 90 s (recovery)
  step    journey users in steps of 25 every 60 s, up to 200
  steady  LOADTEST_USERS users of LOADTEST_CLASSES for LOADTEST_DURATION (experiments)
  replaced  30 users of the replaced system's read mix (~50 requests/s), 2 min: what its own load test did

Overrides (environment): LOADTEST_DURATION (seconds: the length of smoke,
normal and steady, the hold of stress), LOADTEST_USERS (users of normal and
steady, peak of stress/step), LOADTEST_SPAWN_RATE, LOADTEST_CLASSES (comma-
separated user class names for steady).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

JOURNEYS = ("BrowsingUser", "RatingUser", "ShelvingUser", "AutocompleteUser")


@dataclass(frozen=True)
class Stage:
    seconds: float  # how long this stage lasts
    users: int
    spawn_rate: float
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    stages: tuple[Stage, ...]

    @property
    def duration(self) -> float:
        return sum(stage.seconds for stage in self.stages)

    @property
    def peak_users(self) -> int:
        return max(stage.users for stage in self.stages)

    def at(self, run_time: float) -> Stage | None:
        """The stage in force `run_time` seconds into the test; None once the test is over."""
        elapsed = 0.0
        for stage in self.stages:
            elapsed += stage.seconds
            if run_time < elapsed:
                return stage
        return None


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    value = float(raw)
    if value <= 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive number, got {raw!r}")
    return value


def build(name: str, env: Mapping[str, str] | None = None) -> Scenario:
    env = os.environ if env is None else env
    duration = _number(env, "LOADTEST_DURATION", 0)
    users = int(_number(env, "LOADTEST_USERS", 0))
    spawn = _number(env, "LOADTEST_SPAWN_RATE", 0)
    if name == "smoke":
        return Scenario(name, "1 user, every journey in turn",
                        (Stage(duration or 60, 1, 1, ("SmokeUser",)),))
    if name == "normal":
        n = users or 50
        return Scenario(name, f"{n} users of the everyday journeys",
                        (Stage(duration or 300, n, spawn or 5, JOURNEYS),))
    if name == "stress":
        peak, rate = users or 200, spawn or 1
        ramp = math.ceil(peak / rate)
        return Scenario(name, f"heavy users ramped to {peak} at {rate:g}/s, then held",
                        (Stage(ramp, peak, rate, ("HeavyUser",)), Stage(duration or 60, peak, rate, ("HeavyUser",))))
    if name == "spike":
        base, peak, rate = 20, users or 500, spawn or 100
        return Scenario(name, f"{base} journey users, a spike to {peak} at {rate:g}/s, recovery",
                        (Stage(60, base, 10, JOURNEYS), Stage(90, peak, rate, JOURNEYS),
                         Stage(90, base, rate, JOURNEYS)))
    if name == "step":
        peak, step = users or 200, 25
        hold = duration or 60
        stages = tuple(Stage(hold, n, spawn or 10, JOURNEYS) for n in range(step, peak + 1, step))
        return Scenario(name, f"journey users in steps of {step} every {hold:g}s up to {peak}", stages)
    if name == "steady":
        classes = tuple(c.strip() for c in env.get("LOADTEST_CLASSES", "HeavyUser").split(",") if c.strip())
        n = users or 10
        return Scenario(name, f"{n} users of {', '.join(classes)}",
                        (Stage(duration or 60, n, spawn or n, classes),))
    if name == "replaced":
        n = users or 30
        return Scenario(name, f"{n} users of the replaced system's read mix",
                        (Stage(duration or 120, n, spawn or 10, ("ReplacedSystemUser",)),))
    raise ValueError(f"unknown scenario {name!r}; one of {', '.join(NAMES)}")


NAMES = ("smoke", "normal", "stress", "spike", "step", "steady", "replaced")
