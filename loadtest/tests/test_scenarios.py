"""Scenario presets: the schedules Locust's shape follows."""

from __future__ import annotations

import pytest

from loadtest import scenarios


def users_over_time(scenario: scenarios.Scenario, step: float = 1.0) -> list[int]:
    out, t = [], 0.0
    while (stage := scenario.at(t)) is not None:
        out.append(stage.users)
        t += step
    return out


def test_smoke_is_one_user_for_a_minute_covering_every_journey():
    smoke = scenarios.build("smoke", {})
    assert smoke.duration == 60 and smoke.peak_users == 1
    assert smoke.stages[0].classes == ("SmokeUser",)
    assert smoke.at(59.9) is not None and smoke.at(60) is None


def test_normal_is_fifty_journey_users():
    normal = scenarios.build("normal", {})
    assert normal.peak_users == 50 and set(normal.stages[0].classes) == set(scenarios.JOURNEYS)


def test_stress_ramps_to_200_then_holds():
    stress = scenarios.build("stress", {})
    ramp, hold = stress.stages
    assert (ramp.users, ramp.spawn_rate, ramp.seconds) == (200, 1, 200)
    assert hold.users == 200 and hold.seconds == 60 and stress.duration == 260


def test_spike_jumps_to_500_at_100_per_second_and_recovers():
    spike = scenarios.build("spike", {})
    timeline = users_over_time(spike)
    assert timeline[0] == 20 and max(timeline) == 500 and timeline[-1] == 20
    peak = next(s for s in spike.stages if s.users == 500)
    assert peak.spawn_rate == 100


def test_step_load_climbs_in_equal_steps():
    step = scenarios.build("step", {"LOADTEST_DURATION": "30"})
    assert [s.users for s in step.stages] == [25, 50, 75, 100, 125, 150, 175, 200]
    assert all(s.seconds == 30 for s in step.stages)
    timeline = users_over_time(step)
    assert timeline == sorted(timeline) and len(timeline) == 8 * 30


def test_replaced_is_thirty_users_of_the_replaced_systems_mix():
    replaced = scenarios.build("replaced", {})
    assert replaced.peak_users == 30 and replaced.stages[0].classes == ("ReplacedSystemUser",)
    assert replaced.duration == 120


def test_overrides_from_the_environment():
    steady = scenarios.build("steady", {"LOADTEST_USERS": "64", "LOADTEST_DURATION": "45",
                                        "LOADTEST_CLASSES": "HeavyUser, BrowsingUser"})
    assert steady.peak_users == 64 and steady.duration == 45
    assert steady.stages[0].classes == ("HeavyUser", "BrowsingUser")
    assert scenarios.build("smoke", {"LOADTEST_DURATION": "40"}).duration == 40


@pytest.mark.parametrize("env", [{"LOADTEST_USERS": "-3"}, {"LOADTEST_DURATION": "nan"}, {"LOADTEST_USERS": "x"}])
def test_bad_overrides_are_refused(env):
    with pytest.raises(ValueError):
        scenarios.build("normal", env)


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="unknown scenario"):
        scenarios.build("soak", {})
