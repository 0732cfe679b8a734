"""The scenario presets of loadtest/scenarios.py as Locust LoadTestShapes.

The locustfile binds exactly one of them (LOADTEST_SCENARIO), because Locust
runs the first shape class it finds in a locustfile.
"""

from __future__ import annotations

from typing import ClassVar

from locust import LoadTestShape, User

from loadtest import scenarios


class ScenarioShape(LoadTestShape):
    abstract = True
    scenario_name = ""
    user_classes: ClassVar[dict[str, type[User]]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.scenario = scenarios.build(self.scenario_name)
        unknown = {c for stage in self.scenario.stages for c in stage.classes} - set(self.user_classes)
        if unknown:
            raise ValueError(f"scenario {self.scenario_name!r} names unknown user classes {sorted(unknown)}")

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        stage = self.scenario.at(self.get_run_time())
        if stage is None:
            return None
        return stage.users, stage.spawn_rate, [self.user_classes[name] for name in stage.classes]


# One shape per preset of scenarios.py, so a new preset needs no shape of its own.
PRESETS: dict[str, type[ScenarioShape]] = {
    name: type(f"{name.title()}Shape", (ScenarioShape,), {"scenario_name": name}) for name in scenarios.NAMES
}


def select(name: str, user_classes: dict[str, type[User]]) -> type[ScenarioShape]:
    if name not in PRESETS:
        raise ValueError(f"unknown scenario {name!r}; one of {', '.join(PRESETS)}")
    shape = PRESETS[name]
    shape.user_classes = user_classes
    return shape
